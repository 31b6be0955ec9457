//! `wedge trace`: the tree of a traced command (clone flags, execs, exits) and the risky
//! patterns found on runs that did not hang; tracing changes neither the command's status
//! nor its output, and killing or interrupting wedge never leaves a task stopped.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use wedge::trace::TraceReport;
use wedge::trace::timeline::{Creation, What};

/// The JSON report at the end of wedge's stderr (the command's own stderr comes first).
fn report_in(stderr: &[u8]) -> TraceReport {
    let s = String::from_utf8_lossy(stderr);
    let at = s
        .rfind("{\n  \"schema_version\"")
        .unwrap_or_else(|| panic!("no JSON report in:\n{s}"));
    serde_json::from_str(s[at..].trim()).unwrap_or_else(|e| panic!("{e}:\n{}", &s[at..]))
}

fn trace(args: &[&std::ffi::OsStr]) -> (Output, TraceReport) {
    let out = Command::new(wedge_bin())
        .args(["trace", "--json", "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = report_in(&out.stderr);
    (out, r)
}

fn ids(r: &TraceReport) -> Vec<(&str, bool)> {
    r.findings
        .iter()
        .map(|f| (f.finding.id.as_str(), f.risk))
        .collect()
}

/// Every task of `pids` (and their descendants) is not stopped (T or t), several times over
/// half a second.
fn never_stopped(pids: &[i32]) {
    for _ in 0..10 {
        for &p in pids {
            let mut all = vec![p];
            all.extend(wedge::source::live::procfs::descendants(p));
            for q in all {
                for t in tids(q) {
                    let st = state_of(q, t);
                    assert!(
                        !matches!(st, Some('T') | Some('t')),
                        "process {q} thread {t} is stopped ({st:?})"
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_tree(pid: i32) {
    kill_descendants(pid);
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn clone_fork_buggy_is_flagged_on_runs_that_do_not_hang_and_fixed_never_is() {
    let exe = probe("clone_fork");
    for run in 0..4 {
        let (out, r) = trace(&[exe.as_os_str(), "buggy".as_ref(), "exit".as_ref()]);
        assert_eq!(out.status.code(), Some(0), "run {run}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("child forked"));
        assert_eq!(ids(&r), vec![("clone-fork-mix", true)], "run {run}");
        let f = &r.findings[0].finding;
        assert_eq!(f.confidence, wedge::model::Confidence::Certain);
        assert!(f.evidence[0].text.contains("raw clone"), "{f:#?}");
        assert!(f.evidence[1].text.contains("glibc fork()"), "{f:#?}");
    }
    for run in 0..4 {
        let (out, r) = trace(&[exe.as_os_str(), "fixed".as_ref(), "exit".as_ref()]);
        assert_eq!(out.status.code(), Some(0), "run {run}");
        assert!(r.findings.is_empty(), "run {run}: {:#?}", r.findings);
        // The fixed child's own child is a raw clone too.
        let raw = r
            .timeline
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.what,
                    What::Created {
                        how: Creation::RawClone,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(raw, 2, "{:#?}", r.timeline.events);
    }
}

/// `wedge trace --json -- ARGS` started, with its stderr going to a file: the command's
/// processes inherit it, so a pipe would not reach its end while they live.
struct Traced {
    child: std::process::Child,
    err: tempfile::NamedTempFile,
}

impl Traced {
    /// Waits for wedge (not for the command) and returns its status and stderr.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<u8>) {
        let status = self.child.wait().unwrap();
        (status, std::fs::read(self.err.path()).unwrap())
    }
}

/// Starts `wedge trace --json -- ARGS`; returns it with the probe's "ready" pids.
fn start_ready_trace(args: &[&std::ffi::OsStr]) -> (Traced, i32, i32) {
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(wedge_bin())
        .args(["trace", "--json", "--"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut w = line.split_whitespace().skip(1);
    let parent: i32 = w.next().and_then(|p| p.parse().ok()).expect(&line);
    let kid: i32 = w.next().and_then(|p| p.parse().ok()).expect(&line);
    (Traced { child, err }, parent, kid)
}

#[test]
fn clone_fork_buggy_hang_is_flagged_when_its_root_is_killed() {
    let exe = probe("clone_fork");
    for variant in ["buggy", "fixed"] {
        let (w, parent, kid) = start_ready_trace(&[exe.as_os_str(), variant.as_ref()]);
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on the probe's parent, started by this test.
        unsafe { libc::kill(parent, libc::SIGKILL) };
        let (status, err) = w.finish();
        never_stopped(&[kid]);
        kill_tree(kid);
        assert_eq!(
            status.code(),
            Some(128 + 9),
            "the root's status passes through"
        );
        let r = report_in(&err);
        if variant == "buggy" {
            assert_eq!(
                ids(&r),
                vec![("clone-fork-mix", false)],
                "{:#?}",
                r.findings
            );
            assert!(
                r.findings[0].finding.evidence[1]
                    .text
                    .contains("FUTEX_WAIT_PRIVATE")
            );
        } else {
            assert!(r.findings.is_empty(), "{:#?}", r.findings);
        }
    }
}

#[test]
fn tracing_changes_neither_status_nor_output() {
    let script = "echo out; echo err >&2; /bin/echo two; ls / >/dev/null; exit 7";
    let plain = Command::new("sh").args(["-c", script]).output().unwrap();
    let (traced, r) = trace(&["sh".as_ref(), "-c".as_ref(), script.as_ref()]);
    assert_eq!(traced.status.code(), plain.status.code());
    assert_eq!(traced.stdout, plain.stdout);
    assert!(String::from_utf8_lossy(&traced.stderr).starts_with("err\n"));
    assert_eq!(r.timeline.status, Some(7));
    let execs: Vec<&str> = r
        .timeline
        .events
        .iter()
        .filter_map(|e| match &e.what {
            What::Exec { exe, .. } => Some(exe.as_str()),
            _ => None,
        })
        .collect();
    assert!(execs.contains(&"/usr/bin/echo") || execs.contains(&"/bin/echo"));
    // A death by signal: 128 + N, as the shell reports it.
    let (killed, _) = trace(&["sh".as_ref(), "-c".as_ref(), "kill -TERM $$".as_ref()]);
    assert_eq!(killed.status.code(), Some(128 + 15));
    // Not found: 127, like a shell.
    let out = wedge(&["trace", "--", "/nonexistent/wedge-trace-cmd"]);
    assert_eq!(out.status.code(), Some(127));
    assert_no_panic(&out);
}

/// Killing wedge (SIGKILL) or interrupting it (SIGINT) mid-trace: the command runs on —
/// threads, children and grandchildren — never stopped, and finishes normally.
#[test]
fn killing_or_interrupting_wedge_leaves_nothing_stopped() {
    let exe = probe("clone_fork");
    for sig in [libc::SIGKILL, libc::SIGINT] {
        let (w, parent, kid) = start_ready_trace(&[exe.as_os_str(), "fixed".as_ref()]);
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill(2) on the wedge this test started.
        unsafe { libc::kill(w.child.id() as i32, sig) };
        let (status, err) = w.finish();
        never_stopped(&[parent]);
        let alive = std::path::Path::new(&format!("/proc/{parent}")).exists();
        kill_tree(parent);
        kill_tree(kid);
        assert!(alive, "the command survives wedge's end");
        if sig == libc::SIGINT {
            assert_eq!(status.code(), Some(130));
            let r = report_in(&err);
            assert_eq!(r.timeline.status, None);
            assert!(r.timeline.notes.iter().any(|n| n.contains("interrupted")));
        }
    }
    // A command that still has work to do (an exec included) finishes it.
    for sig in [libc::SIGKILL, libc::SIGINT] {
        let mut w = Command::new(wedge_bin())
            .args(["trace", "--", "sh", "-c", "sleep 0.6; /bin/echo after"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let pid = w.id() as i32;
        let sh = wedge::source::live::procfs::descendants(pid);
        // SAFETY: kill(2) on the wedge this test started.
        unsafe { libc::kill(pid, sig) };
        never_stopped(&sh);
        let mut out = String::new();
        w.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let _ = w.wait();
        assert_eq!(out, "after\n", "signal {sig}");
    }
}

/// A busybox bundle whose container runs `sh -c 'echo hello; exit 3'`.
fn busybox_bundle_sh(dir: &std::path::Path) -> std::path::PathBuf {
    busybox_bundle(dir, &["sh"], &["sh", "-c", "echo hello; exit 3"])
}

#[test]
fn traced_runc_run_finishes_and_its_tree_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = busybox_bundle_sh(dir.path());
    let state = dir.path().join("state");
    let id = format!("wedge-trace-{}", std::process::id());
    let (out, r) = trace(&[
        "runc".as_ref(),
        "--root".as_ref(),
        state.as_os_str(),
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        id.as_ref(),
    ]);
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .status();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let tl = &r.timeline;
    let root = tl.root;
    // runc itself, multi-threaded (Go).
    assert!(
        tl.of(root)
            .any(|e| matches!(&e.what, What::Exec { exe, .. } if exe.ends_with("/runc")))
    );
    assert!(tl.of(root).any(|e| matches!(
        e.what,
        What::Created {
            how: Creation::Thread,
            ..
        }
    )));
    // runc init: a process of runc's (Go's os/exec: clone with CLONE_VFORK) that execs runc.
    let init = tl
        .of(root)
        .find_map(|e| match e.what {
            What::Created {
                child,
                how: Creation::Vfork,
                ..
            } => Some(child),
            _ => None,
        })
        .expect("runc init");
    assert!(tl.of(init).any(|e| matches!(e.what, What::Exec { .. })));
    // nsexec's stages: raw clones, the last one execs the container's busybox sh, which
    // exits 3 (and so does runc run).
    let mut stage = init;
    let mut depth = 0;
    while let Some(next) = tl.of(stage).find_map(|e| match e.what {
        What::Created {
            child,
            how: Creation::RawClone,
            ..
        } => Some(child),
        _ => None,
    }) {
        stage = next;
        depth += 1;
    }
    assert!(depth >= 1, "{:#?}", tl.events);
    assert!(
        tl.of(stage)
            .any(|e| matches!(&e.what, What::Exec { comm, .. } if comm == "sh")),
        "{:#?}",
        tl.events
    );
    assert!(tl.of(stage).any(|e| matches!(
        e.what,
        What::Exit {
            code: Some(3),
            thread: false,
            ..
        }
    )));
    assert_eq!(tl.status, Some(3));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

/// The (major, minor, patch) of `podman --version`.
fn podman_version() -> Option<(u32, u32, u32)> {
    let out = Command::new("podman").arg("--version").output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let v = s.split_whitespace().last()?;
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

const USER: &str = "wedgetrace";

/// A non-root user with subordinate ids, created if absent.
fn rootless_user() -> u32 {
    if Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success()
    {
    } else {
        let ok = Command::new("useradd").args(["-m", USER]).status().unwrap();
        assert!(ok.success(), "useradd {USER}");
    }
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(f)
                .unwrap();
            writeln!(file, "{USER}:200000:65536").unwrap();
        }
    }
    let out = Command::new("id").args(["-u", USER]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn traced_rootless_podman_reports_its_pause_process_creation() {
    let uid = rootless_user();
    // A private home and runtime directory: no pause process of an earlier run is joined,
    // so this podman creates its own (the rootless path runs in full).
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    for p in [dir.path(), run.as_path()] {
        std::os::unix::fs::chown(p, Some(uid), None).unwrap();
    }
    let home = format!("HOME={}", dir.path().display());
    let xdg = format!("XDG_RUNTIME_DIR={}", run.display());
    let info = Command::new("runuser")
        .args(["-u", USER, "--", "env", &home, &xdg, "podman", "info"])
        .output()
        .unwrap();
    let pause = || {
        std::fs::read_to_string(run.join("libpod/tmp/pause.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    if !info.status.success() {
        if let Some(p) = pause() {
            kill_tree(p);
        }
        eprintln!(
            "SKIP: rootless podman does not work in this environment (`runuser -u {USER} -- podman info` failed):\n{}",
            String::from_utf8_lossy(&info.stderr)
        );
        return;
    }
    // That podman info made the pause process: end it, so the traced run makes a new one.
    let first = pause().expect("pause.pid");
    kill_tree(first);
    assert!(wait_until(Duration::from_secs(5), || {
        wedge::source::live::procfs::process_stat(first).is_none_or(|s| s.state == 'Z')
    }));
    let _ = std::fs::remove_file(run.join("libpod/tmp/pause.pid"));
    let started = Instant::now();
    let (out, r) = trace(&[
        "runuser".as_ref(),
        "-u".as_ref(),
        USER.as_ref(),
        "--".as_ref(),
        "env".as_ref(),
        home.as_ref(),
        xdg.as_ref(),
        "podman".as_ref(),
        "info".as_ref(),
        "--format".as_ref(),
        "{{.Host.Security.Rootless}}".as_ref(),
    ]);
    let paused = pause();
    if let Some(p) = paused {
        never_stopped(&[p]);
        kill_tree(p);
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "true\n");
    let tl = &r.timeline;
    // The user namespace is made by a creation with CLONE_NEWUSER, and the id maps by the
    // setuid helpers, which kept their privileges (the podman run succeeded).
    let userns = tl
        .events
        .iter()
        .find(|e| {
            matches!(&e.what, What::Created { namespaces, .. } if namespaces.iter().any(|n| n == "CLONE_NEWUSER"))
        })
        .expect("a CLONE_NEWUSER creation");
    let helpers: Vec<&str> = tl
        .events
        .iter()
        .filter_map(|e| match &e.what {
            What::Exec { exe, .. } if exe.ends_with("newuidmap") || exe.ends_with("newgidmap") => {
                Some(exe.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(helpers.len(), 2, "{helpers:?}");
    let What::Created { how, child, .. } = &userns.what else {
        unreachable!()
    };
    let pause_exec = paused.is_some_and(|p| {
        tl.of(p)
            .any(|e| matches!(&e.what, What::Exec { exe, .. } if exe.contains("catatonit") || exe.contains("podman")))
    });
    let raw_then_fork = *how == Creation::RawClone
        && tl.of(*child).any(|e| {
            matches!(
                e.what,
                What::Created {
                    how: Creation::Fork,
                    ..
                }
            )
        });
    let flagged = ids(&r).contains(&("clone-fork-mix", true));
    eprintln!(
        "podman {:?}: pause process made by raw clone + glibc fork: {raw_then_fork} (pause process seen exec'ing: {pause_exec}); clone-fork-mix risk reported: {flagged}; {:.1} s",
        podman_version(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(flagged, raw_then_fork, "{:#?}", r.findings);
    // Versions before 5.4.0 create the pause process that way (podman #25184).
    if podman_version().is_some_and(|v| v < (5, 4, 0)) {
        assert!(raw_then_fork, "{:#?}", tl.events);
    }
}

#[test]
fn attaching_with_p_follows_a_running_tree_to_its_end() {
    let mut sh = Command::new("sh")
        .args(["-c", "sleep 0.5; /bin/echo x; exit 4"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = sh.id() as i32;
    assert!(wait_until(Duration::from_secs(5), || {
        !wedge::source::live::procfs::descendants(pid).is_empty()
    }));
    let out = wedge(&["trace", "--json", "-p", &pid.to_string()]);
    let mut stdout = String::new();
    sh.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = sh.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(4),
        "the command's own status is unchanged"
    );
    assert_eq!(stdout, "x\n");
    assert_eq!(out.status.code(), Some(4), "the status passes through");
    let r = report_in(&out.stderr);
    let tl = &r.timeline;
    assert_eq!(tl.mode, wedge::trace::timeline::Mode::Attached);
    // The sleep running at the attach is sh's child; the echo is created and exec'd later.
    assert!(
        tl.events
            .iter()
            .any(|e| matches!(e.what, What::Traced { parent: Some(p), .. } if p == pid))
    );
    assert!(tl.of(pid).any(|e| matches!(e.what, What::Created { .. })));
    assert!(
        tl.events
            .iter()
            .any(|e| matches!(&e.what, What::Exec { exe, .. } if exe.ends_with("/echo")))
    );
    assert!(
        tl.notes
            .iter()
            .any(|n| n.contains("exec entries are not seen"))
    );
    // A pid that does not exist: 3.
    let gone = wedge(&["trace", "-p", "999999999"]);
    assert_eq!(gone.status.code(), Some(3));
    assert_no_panic(&gone);
}

/// A fault in the tree is captured as `wedge run` captures it (before the handler), its
/// findings join the trace's, and the command ends as it would have.
#[test]
fn a_crash_in_the_tree_is_captured_like_wedge_run_does() {
    let exe = probe("nil_deref");
    let script = format!("{}; echo \"after $?\"", exe.display());
    let (out, r) = trace(&["sh".as_ref(), "-c".as_ref(), script.as_ref()]);
    assert_eq!(out.status.code(), Some(0), "sh's own status");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("after 139\n"));
    assert!(r.timeline.events.iter().any(|e| matches!(
        e.what,
        What::Signal {
            signo: 11,
            addr: 0x10,
            ..
        }
    )));
    let d = r.crash.as_ref().expect("the crash capture");
    assert!(d.findings.iter().any(|f| f.id == "nil-deref-crash"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.finding.id == "nil-deref-crash" && !f.risk)
    );
}

/// With --exec-entry a setuid helper (newuidmap, from uidmap) is let go before its exec, and
/// the rest of the tree is still followed.
#[test]
fn exec_entry_lets_a_setuid_helper_go_before_its_exec() {
    if !std::path::Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("SKIP: /usr/bin/newuidmap is not installed (Debian package uidmap)");
        return;
    }
    let out = Command::new(wedge_bin())
        .args([
            "trace",
            "--json",
            "--exec-entry",
            "--",
            "sh",
            "-c",
            "newuidmap 2>/dev/null; /bin/echo $?",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // newuidmap ran (its usage error: 1), with no trace of wedge.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    let r = report_in(&out.stderr);
    let let_go = r
        .timeline
        .events
        .iter()
        .find_map(|e| match &e.what {
            What::LetGo { path, reason } => Some((path.clone(), reason.clone())),
            _ => None,
        })
        .expect("newuidmap let go");
    assert!(let_go.0.ends_with("newuidmap"), "{let_go:?}");
    assert!(
        let_go.1.starts_with("let go before exec of setuid"),
        "{let_go:?}"
    );
    assert!(
        r.timeline
            .events
            .iter()
            .any(|e| matches!(&e.what, What::Exec { exe, .. } if exe.ends_with("/echo")))
    );
}
