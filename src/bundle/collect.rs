//! The collectors of a support bundle: raw /proc files of each captured process, host and
//! OS facts, container runtimes' versions, the binaries' build-ids and buildinfo, and the
//! logs and config files the processes hold open.
//!
//! Every collector runs on its own thread under a deadline. A read that blocks (a process in
//! D state holding its mm lock, a hung network mount, `podman version` waiting on a lock) is
//! abandoned at the deadline and the bundle says so; a process in D state is never asked
//! for the files that need its mm lock. Collectors return raw bytes tagged with how they
//! must be redacted: redaction happens on the caller's thread, before anything is written.

use super::manifest::CollectorRecord;
use crate::model::{FdKind, Snapshot, Source};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a collected piece must be redacted before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treat {
    /// Nothing secret by construction (stat, maps, limits…): the last scrub only.
    Plain,
    /// /proc/PID/environ.
    Environ,
    /// /proc/PID/cmdline.
    Cmdline,
    /// A config file: JSON by keys, otherwise `key: value` lines.
    Config,
    /// Log or command output: `key=value` lines.
    Text,
    /// A binary (`--with-binaries`): copied as it is.
    Binary,
}

/// One future member of the bundle, before redaction.
#[derive(Debug, Clone)]
pub struct Piece {
    pub name: String,
    pub data: Vec<u8>,
    pub treat: Treat,
}

impl Piece {
    fn new(name: impl Into<String>, data: Vec<u8>, treat: Treat) -> Piece {
        Piece {
            name: name.into(),
            data,
            treat,
        }
    }
}

/// What a collector returns: its pieces and what it could not get.
#[derive(Debug, Default)]
pub struct Collected {
    pub pieces: Vec<Piece>,
    pub notes: Vec<String>,
}

/// Runs `f` on its own thread; gives up waiting at `deadline`. An abandoned thread is left
/// blocked where it is (the kernel read it waits on is not ours to cancel) and ends with
/// wedge.
pub fn with_deadline<F>(name: &str, deadline: Duration, f: F) -> (Collected, CollectorRecord)
where
    F: FnOnce() -> Collected + Send + 'static,
{
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("collect {name}"))
        .spawn(move || {
            let _ = tx.send(f());
        });
    let (collected, hit) = match spawned {
        Err(e) => (
            Collected {
                pieces: Vec::new(),
                notes: vec![format!("could not start: {e}")],
            },
            false,
        ),
        Ok(_) => match rx.recv_timeout(deadline) {
            Ok(c) => (c, false),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => (
                Collected {
                    pieces: Vec::new(),
                    notes: vec![format!(
                        "gave up after {} ms: a read blocked",
                        deadline.as_millis()
                    )],
                },
                true,
            ),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => (
                Collected {
                    pieces: Vec::new(),
                    notes: vec!["the collector failed".into()],
                },
                false,
            ),
        },
    };
    let record = CollectorRecord {
        name: name.to_string(),
        duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        deadline_ms: deadline.as_millis() as u64,
        hit_deadline: hit,
        notes: collected.notes.clone(),
    };
    (collected, record)
}

/// Upper bound on one /proc or config file.
const MAX_FILE: u64 = 4 << 20;
/// Upper bound on one log (its tail is kept).
const MAX_LOG: u64 = 16 << 20;

fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?.take(cap).read_to_end(&mut out)?;
    Ok(out)
}

/// The last `cap` bytes of a file (a log's end is what matters), from the next line start.
fn read_tail(path: &Path, cap: u64) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len <= cap {
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        return Ok((out, false));
    }
    f.seek(SeekFrom::Start(len - cap))?;
    let mut out = Vec::new();
    f.take(cap).read_to_end(&mut out)?;
    if let Some(nl) = out.iter().position(|&b| b == b'\n') {
        out.drain(..=nl);
    }
    Ok((out, true))
}

/// Files of /proc/PID that need no lock of the process's memory.
const PROC_FILES: [&str; 8] = [
    "stat",
    "status",
    "limits",
    "cgroup",
    "wchan",
    "stack",
    "syscall",
    "mountinfo",
];
/// Files that take the process's mm lock: not read from a process with a thread in D state.
const PROC_MM_FILES: [(&str, Treat); 3] = [
    ("cmdline", Treat::Cmdline),
    ("environ", Treat::Environ),
    ("maps", Treat::Plain),
];
const TASK_FILES: [&str; 5] = ["stat", "status", "wchan", "stack", "syscall"];

/// Raw /proc files of one process and its threads, its fd links and fdinfo, and its
/// namespace links, under `proc/PID/`.
pub fn proc_files(pid: i32) -> Collected {
    let mut c = Collected::default();
    let base = PathBuf::from(format!("/proc/{pid}"));
    if !base.exists() {
        c.notes.push(format!("process {pid} is gone"));
        return c;
    }
    let tids = crate::source::live::procfs::list_tids(pid).unwrap_or_default();
    let in_d: Vec<i32> = tids
        .iter()
        .copied()
        .filter(|&t| crate::source::live::procfs::task_stat(pid, t).is_some_and(|s| s.state == 'D'))
        .collect();
    let read =
        |rel: &str, treat: Treat, c: &mut Collected| match read_capped(&base.join(rel), MAX_FILE) {
            Ok(data) => c
                .pieces
                .push(Piece::new(format!("proc/{pid}/{rel}"), data, treat)),
            Err(e) => c.notes.push(format!("/proc/{pid}/{rel}: {e}")),
        };
    for f in PROC_FILES {
        read(f, Treat::Plain, &mut c);
    }
    if in_d.is_empty() {
        for (f, treat) in PROC_MM_FILES {
            read(f, treat, &mut c);
        }
    } else {
        c.notes.push(format!(
            "process {pid}: cmdline, environ and maps not read: thread(s) {in_d:?} in D state \
             (they need the mm lock it may hold)"
        ));
    }
    for tid in &tids {
        for f in TASK_FILES {
            read(&format!("task/{tid}/{f}"), Treat::Plain, &mut c);
        }
    }
    // fd links and fdinfo in one listing each: "N -> target" and "N: <fdinfo>".
    let mut fds = String::new();
    let mut infos = String::new();
    if let Ok(rd) = std::fs::read_dir(base.join("fd")) {
        let mut nums: Vec<i32> = rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        nums.sort_unstable();
        for n in nums {
            if let Ok(t) = std::fs::read_link(base.join(format!("fd/{n}"))) {
                fds.push_str(&format!("{n} -> {}\n", t.display()));
            }
            if let Ok(i) = std::fs::read_to_string(base.join(format!("fdinfo/{n}"))) {
                infos.push_str(&format!("== {n}\n{i}"));
            }
        }
    }
    c.pieces.push(Piece::new(
        format!("proc/{pid}/fd.txt"),
        fds.into_bytes(),
        Treat::Text,
    ));
    c.pieces.push(Piece::new(
        format!("proc/{pid}/fdinfo.txt"),
        infos.into_bytes(),
        Treat::Plain,
    ));
    let mut ns = String::new();
    if let Ok(rd) = std::fs::read_dir(base.join("ns")) {
        let mut names: Vec<String> = rd
            .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
            .collect();
        names.sort();
        for n in names {
            if let Ok(t) = std::fs::read_link(base.join("ns").join(&n)) {
                ns.push_str(&format!("{n} -> {}\n", t.display()));
            }
        }
    }
    c.pieces.push(Piece::new(
        format!("proc/{pid}/ns.txt"),
        ns.into_bytes(),
        Treat::Plain,
    ));
    c
}

/// Kernel and OS facts: /proc/version, os-release, cgroup version, the user-namespace and
/// ptrace knobs, and the memfd copy-on-write check, as `host/…` members.
pub fn host_facts() -> Collected {
    let mut c = Collected::default();
    let files: [(&str, &str, Treat); 9] = [
        ("/proc/version", "host/version", Treat::Plain),
        ("/etc/os-release", "host/os-release", Treat::Plain),
        ("/proc/cmdline", "host/kernel-cmdline", Treat::Text),
        ("/proc/meminfo", "host/meminfo", Treat::Plain),
        ("/proc/cpuinfo", "host/cpuinfo", Treat::Plain),
        (
            "/proc/sys/user/max_user_namespaces",
            "host/max_user_namespaces",
            Treat::Plain,
        ),
        (
            "/proc/sys/kernel/yama/ptrace_scope",
            "host/ptrace_scope",
            Treat::Plain,
        ),
        ("/proc/self/uid_map", "host/uid_map", Treat::Plain),
        (
            "/sys/fs/cgroup/cgroup.controllers",
            "host/cgroup.controllers",
            Treat::Plain,
        ),
    ];
    for (path, name, treat) in files {
        match read_capped(Path::new(path), MAX_FILE) {
            Ok(d) => c.pieces.push(Piece::new(name, d, treat)),
            Err(e) => c.notes.push(format!("{path}: {e}")),
        }
    }
    let cow = crate::hostcheck::memfd_future_write_cow_report();
    let facts = serde_json::json!({
        "kernel_release": crate::hostcheck::kernel_release(),
        "cgroup_v2": Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        "memfd_future_write_cow": format!("{cow:?}"),
    });
    c.pieces.push(Piece::new(
        "host/facts.json",
        serde_json::to_vec_pretty(&facts).unwrap_or_default(),
        Treat::Plain,
    ));
    c
}

/// The container runtimes wedge asks for their version, and how.
const RUNTIMES: [(&str, &[&str]); 6] = [
    ("runc", &["--version"]),
    ("crun", &["--version"]),
    ("podman", &["version"]),
    ("conmon", &["--version"]),
    ("buildkitd", &["--version"]),
    ("containerd", &["--version"]),
];

/// Each runtime found on PATH or as a captured process's executable, asked for its
/// version under `deadline`; killed by pid if it does not answer.
pub fn runtime_versions(snapshot_exes: &[String], deadline: Duration) -> Collected {
    let mut c = Collected::default();
    let mut jobs: Vec<(String, PathBuf, &'static [&'static str])> = Vec::new();
    for (name, args) in RUNTIMES {
        let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
        if let Some(p) = crate::ptrace::resolve(&std::ffi::OsString::from(name)) {
            paths.insert(p);
        }
        for e in snapshot_exes {
            let p = Path::new(e);
            if p.file_name().and_then(|f| f.to_str()) == Some(name) && p.is_file() {
                paths.insert(p.to_path_buf());
            }
        }
        for (i, p) in paths.into_iter().enumerate() {
            let label = if i == 0 {
                name.to_string()
            } else {
                format!("{name}-{}", i + 1)
            };
            jobs.push((label, p, args));
        }
    }
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(label, path, args)| {
            std::thread::spawn(move || {
                let r = run_with_deadline(&path, args, deadline);
                (label, path, args, r)
            })
        })
        .collect();
    for h in handles {
        let Ok((label, path, args, r)) = h.join() else {
            continue;
        };
        match r {
            Ok(out) => {
                let mut text = format!("$ {} {}\n", path.display(), args.join(" ")).into_bytes();
                text.extend_from_slice(&out);
                c.pieces.push(Piece::new(
                    format!("runtimes/{label}.txt"),
                    text,
                    Treat::Text,
                ));
            }
            Err(e) => c
                .notes
                .push(format!("{} {}: {e}", path.display(), args.join(" "))),
        }
    }
    c
}

/// Runs a command with no input, collecting stdout and stderr; kills it at the deadline.
fn run_with_deadline(path: &Path, args: &[&str], deadline: Duration) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_FILE).read_to_end(&mut out);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(MAX_FILE).read_to_end(&mut out);
        }
        out
    });
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = reader.join().unwrap_or_default();
                if !status.success() {
                    out.extend_from_slice(format!("\n[{status}]\n").as_bytes());
                }
                return Ok(out);
            }
            Ok(None) if start.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {} ms; killed",
                    deadline.as_millis()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// What binaries.json says of one executable or library.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BinaryFacts {
    pub path: String,
    pub pids: Vec<i32>,
    pub size: Option<u64>,
    pub build_id: Option<String>,
    /// Go buildinfo: version, main module, dependencies and settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<serde_json::Value>,
    /// The member holding the file itself (`--with-binaries`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Binaries larger than this are described but not copied.
const MAX_BINARY: u64 = 512 << 20;

/// Where to open each mapped file of a snapshot: through /proc for a live tree (works for
/// deleted files, memfds and other mount namespaces), as named for a core.
pub fn binary_files(
    snapshot: &Snapshot,
    sysroot: Option<&Path>,
) -> BTreeMap<String, (PathBuf, Vec<i32>)> {
    let live = matches!(snapshot.source, Source::Live { .. });
    let mut out: BTreeMap<String, (PathBuf, Vec<i32>)> = BTreeMap::new();
    for p in &snapshot.processes {
        let mut add = |name: &str, open: PathBuf| {
            let e = out.entry(name.to_string()).or_insert((open, Vec::new()));
            if !e.1.contains(&p.pid) {
                e.1.push(p.pid);
            }
        };
        if let Some(exe) = &p.exe {
            let open = if live {
                PathBuf::from(format!("/proc/{}/exe", p.pid))
            } else {
                under(sysroot, &exe.path)
            };
            add(&exe.path, open);
        }
        for m in &p.mappings {
            let Some(path) = m.path.as_deref() else {
                continue;
            };
            if !path.starts_with('/') || path.starts_with("/dev/") || path.starts_with("/memfd:") {
                continue;
            }
            let open = if live {
                PathBuf::from(format!("/proc/{}/root{}", p.pid, path))
            } else {
                under(sysroot, path)
            };
            add(path, open);
        }
    }
    out
}

fn under(sysroot: Option<&Path>, path: &str) -> PathBuf {
    match sysroot {
        Some(r) => r.join(path.trim_start_matches('/')),
        None => PathBuf::from(path),
    }
}

/// Build-ids and Go buildinfo of every binary a snapshot maps (binaries.json), and the
/// files themselves with `copy`.
pub fn binaries(files: BTreeMap<String, (PathBuf, Vec<i32>)>, copy: bool) -> Collected {
    let mut c = Collected::default();
    let mut facts = Vec::new();
    for (i, (path, (open, pids))) in files.into_iter().enumerate() {
        let mut f = BinaryFacts {
            path: path.clone(),
            pids,
            size: None,
            build_id: None,
            go: None,
            member: None,
            error: None,
        };
        match std::fs::File::open(&open) {
            Err(e) => f.error = Some(e.to_string()),
            Ok(file) => {
                f.size = file.metadata().ok().map(|m| m.len());
                match crate::binary::elf::ElfFile::open(&file, &path) {
                    Err(e) => f.error = Some(e.to_string()),
                    Ok(elf) => {
                        f.build_id = elf.build_id_hex();
                        if let Ok(Some(bi)) = crate::binary::go::buildinfo::read(&elf) {
                            f.go = Some(serde_json::json!({
                                "version": bi.go_version,
                                "path": bi.path,
                                "main": bi.main,
                                "deps": bi.deps,
                                "settings": bi.settings,
                            }));
                        }
                        if copy && f.size.is_some_and(|s| s <= MAX_BINARY) {
                            let base = Path::new(&path)
                                .file_name()
                                .and_then(|n| n.to_str())
                                .unwrap_or("binary");
                            let id = f.build_id.clone().unwrap_or_else(|| format!("{i}"));
                            let member = format!("binaries/{id}/{base}");
                            f.member = Some(member.clone());
                            c.pieces
                                .push(Piece::new(member, elf.bytes().to_vec(), Treat::Binary));
                        } else if copy {
                            c.notes
                                .push(format!("{path}: larger than 512 MiB, not copied"));
                        }
                    }
                }
            }
        }
        facts.push(f);
    }
    c.pieces.insert(
        0,
        Piece::new(
            "binaries.json",
            serde_json::to_vec_pretty(&facts).unwrap_or_default(),
            Treat::Plain,
        ),
    );
    c
}

/// Extensions of the files taken as config files.
const CONFIG_EXT: [&str; 10] = [
    "json",
    "yaml",
    "yml",
    "toml",
    "conf",
    "cfg",
    "ini",
    "env",
    "properties",
    "config",
];

fn is_config(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == ".env"
        || name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| CONFIG_EXT.contains(&ext.to_ascii_lowercase().as_str()))
}

fn is_log(path: &str) -> bool {
    path.ends_with(".log") || path.contains("/log/") || path.contains("/logs/")
}

/// The logs and config files a live process holds open, or names on its command line
/// (`--log FILE`, `--config FILE`, runc's `--bundle DIR` → DIR/config.json), under
/// `logs/PID/…` and `configs/PID/…`.
pub fn open_files(pid: i32, fds: &[(i32, FdKind)], cmdline: &[String]) -> Collected {
    let mut c = Collected::default();
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut wanted: Vec<(String, PathBuf)> = Vec::new();
    for (fd, kind) in fds {
        if let FdKind::File { path, .. } = kind
            && (is_config(path) || is_log(path))
        {
            wanted.push((path.clone(), PathBuf::from(format!("/proc/{pid}/fd/{fd}"))));
        }
    }
    let mut args = cmdline.iter().peekable();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let resolve = |a: &str| -> Option<String> {
        if a.starts_with('/') {
            Some(a.to_string())
        } else {
            cwd.as_ref().map(|d| d.join(a).display().to_string())
        }
    };
    while let Some(a) = args.next() {
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let takes = matches!(
            flag.trim_start_matches('-'),
            "log" | "log-path" | "config" | "config-file" | "bundle" | "b" | "conmon-pidfile"
        );
        if takes {
            let value = value.or_else(|| args.peek().map(|s| s.to_string()));
            let Some(v) = value.and_then(|v| resolve(&v)) else {
                continue;
            };
            let v = if flag.trim_start_matches('-') == "bundle" || flag == "-b" {
                format!("{}/config.json", v.trim_end_matches('/'))
            } else {
                v
            };
            if flag.trim_start_matches('-') != "conmon-pidfile" {
                wanted.push((v.clone(), root.join(v.trim_start_matches('/'))));
            }
        } else if value.is_none()
            && (is_config(a) || is_log(a))
            && !a.starts_with('-')
            && let Some(v) = resolve(a)
        {
            wanted.push((v.clone(), root.join(v.trim_start_matches('/'))));
        }
    }
    let mut seen = BTreeSet::new();
    for (path, open) in wanted {
        if !seen.insert(path.clone()) {
            continue;
        }
        // Never open anything but a regular file: a FIFO's open would block.
        match std::fs::metadata(&open) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        let clean = path.trim_start_matches('/').replace("..", "_");
        if is_log(&path) && !is_config(&path) {
            match read_tail(&open, MAX_LOG) {
                Ok((d, cut)) => {
                    if cut {
                        c.notes
                            .push(format!("{path}: only the last {} MiB", MAX_LOG >> 20));
                    }
                    c.pieces
                        .push(Piece::new(format!("logs/{pid}/{clean}"), d, Treat::Text));
                }
                Err(e) => c.notes.push(format!("{path}: {e}")),
            }
        } else {
            match read_capped(&open, MAX_FILE) {
                Ok(d) => c.pieces.push(Piece::new(
                    format!("configs/{pid}/{clean}"),
                    d,
                    Treat::Config,
                )),
                Err(e) => c.notes.push(format!("{path}: {e}")),
            }
        }
    }
    c
}

/// A log given as an input, under `logs/input-N/NAME` (its tail past 16 MiB).
pub fn input_log(n: usize, path: &Path) -> Collected {
    let mut c = Collected::default();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("log")
        .to_string();
    // Redaction reads text: a compressed log is not copied as it is (its secrets would
    // travel unredacted inside the stream); its snapshot carries what it showed.
    let mut head = [0u8; 4];
    let got = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let head = &head[..got];
    if head.starts_with(&[0x1f, 0x8b])
        || crate::source::compressed::Compression::sniff(head).is_some()
    {
        c.notes.push(format!(
            "{}: compressed, not copied (redaction reads text); its snapshot is in the bundle",
            path.display()
        ));
        return c;
    }
    match read_tail(path, MAX_LOG) {
        Ok((d, cut)) => {
            if cut {
                c.notes.push(format!(
                    "{}: only the last {} MiB",
                    path.display(),
                    MAX_LOG >> 20
                ));
            }
            c.pieces
                .push(Piece::new(format!("logs/input-{n}/{name}"), d, Treat::Text));
        }
        Err(e) => c.notes.push(format!("{}: {e}", path.display())),
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_log_names() {
        assert!(is_config("/etc/app/config.json"));
        assert!(is_config("/srv/.env"));
        assert!(is_config("/x/settings.YAML"));
        assert!(!is_config("/usr/bin/runc"));
        assert!(is_log("/var/log/podman.log"));
        assert!(is_log("/run/x/log/x"));
        assert!(!is_log("/etc/app.json"));
    }

    #[test]
    fn a_blocking_collector_is_abandoned_at_its_deadline() {
        let start = Instant::now();
        let (c, r) = with_deadline("sleepy", Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(5));
            Collected::default()
        });
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(r.hit_deadline);
        assert!(c.pieces.is_empty());
        assert!(r.notes[0].contains("gave up"), "{:?}", r.notes);
    }

    #[test]
    fn a_command_that_does_not_answer_is_killed() {
        let start = Instant::now();
        let r = run_with_deadline(Path::new("/bin/sleep"), &["30"], Duration::from_millis(100));
        assert!(r.unwrap_err().contains("killed"));
        assert!(start.elapsed() < Duration::from_secs(5));
        let ok = run_with_deadline(Path::new("/bin/echo"), &["hi"], Duration::from_secs(5));
        assert_eq!(ok.unwrap(), b"hi\n".to_vec());
    }

    #[test]
    fn tail_starts_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, b"aaaa\nbbbb\ncccc\n").unwrap();
        let (d, cut) = read_tail(&p, 8).unwrap();
        assert!(cut);
        assert_eq!(d, b"cccc\n".to_vec());
    }
}
