//! Debian's own stripped runc: after `runc create`, `runc init` waits for `runc start` on the
//! exec fifo. wedge names every frame and goroutine of it and shows the fifo it waits on.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use wedge::model::FdKind;

/// A container created (not started) in a private runc state directory; deleted on drop.
struct Container {
    root: PathBuf,
    id: String,
    _dir: tempfile::TempDir,
}

/// A bundle (busybox rootfs, `sleep 1000`) and a private state directory under `dir`;
/// returns (bundle, root).
fn bundle(dir: &Path) -> (PathBuf, PathBuf) {
    let bundle = busybox_bundle(dir, &["sh", "sleep"], &["sleep", "1000"]);
    (bundle, dir.join("state"))
}

impl Container {
    fn create() -> Container {
        let dir = tempfile::tempdir().unwrap();
        let (bundle, root) = bundle(dir.path());
        let id = format!("wedge-test-{}", std::process::id());
        // runc init inherits runc's stdio and outlives it: a pipe would never reach EOF,
        // so errors go to a file.
        let log = dir.path().join("create.err");
        let status = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["create", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "runc create: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Container {
            root,
            id,
            _dir: dir,
        }
    }

    fn init_pid(&self) -> i32 {
        let out = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["state", &self.id])
            .output()
            .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        state["pid"].as_i64().unwrap() as i32
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .status();
    }
}

#[test]
fn runc_init_waiting_for_start_is_named_and_shows_the_exec_fifo() {
    assert!(
        Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists(),
        "runc is installed"
    );
    let c = Container::create();
    let pid = c.init_pid();
    let (d, out) = diagnose_json(pid, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The wait is named, and said to be possibly a hang: init was reparented (runc create
    // ran here directly, with no shim or conmon to supervise it).
    let f = d
        .findings
        .iter()
        .find(|f| f.id == "runc-init-exec-fifo")
        .expect("runc-init-exec-fifo");
    assert_eq!(f.evidence[0].tid, Some(pid));
    assert!(f.explanation.contains(&c.id), "{}", f.explanation);
    assert!(
        f.explanation.contains("no shim or conmon"),
        "{}",
        f.explanation
    );
    assert_eq!(d.findings.len(), 1);
    let p = d.snapshot.process(pid).unwrap();
    assert_eq!(p.comm, "runc:[2:INIT]");
    assert!(p.stopped);
    // Stripped, yet every frame of every thread is named.
    for t in &p.threads {
        assert!(!t.frames.is_empty(), "thread {} has frames", t.tid);
        for f in &t.frames {
            assert!(
                f.function.is_some(),
                "?? frame at {:#x} in thread {}",
                f.pc,
                t.tid
            );
        }
    }
    let go = p.go.as_ref().expect("runc is Go");
    assert!(
        go.main_module
            .as_ref()
            .is_some_and(|m| m.path == "github.com/opencontainers/runc")
    );
    assert_eq!(
        go.allgs_found_by.as_deref(),
        Some("allgadd"),
        "Debian's runc is stripped"
    );
    let main = go.goroutines.iter().find(|g| g.id == 1).unwrap();
    assert_eq!(main.status, "syscall");
    assert!(main.locked_to_thread);
    assert_eq!(
        main.thread,
        Some(pid),
        "goroutine 1 runs on the init thread (tid in the host's pid namespace)"
    );
    assert!(
        main.frames.iter().any(|f| f.function.as_deref()
            == Some("github.com/opencontainers/runc/libcontainer.(*linuxStandardInit).Init")),
        "{:?}",
        main.frames.iter().map(|f| &f.function).collect::<Vec<_>>()
    );
    // The init thread is blocked opening /proc/self/fd/N: the exec fifo.
    let init = p.thread(pid).unwrap();
    let sys = init.syscall.as_ref().unwrap();
    assert_eq!(sys.name.as_deref(), Some("openat"));
    let n: i32 = sys
        .path
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let fd = p.fd(n).unwrap();
    assert!(
        matches!(&fd.kind, FdKind::Fifo { path } if path.ends_with("/exec.fifo")),
        "{fd:?}"
    );
    let text = String::from_utf8_lossy(&wedge(&["diagnose", &pid.to_string()]).stdout).into_owned();
    assert!(text.contains("exec.fifo (fifo)"), "{text}");
    assert!(!any_stopped(pid));
}

/// `runc run` in the foreground stays as the container's parent, forwarding signals and
/// waiting for it: a healthy Go process with every thread parked, and a busybox `sleep`
/// below it. Nothing to report.
#[test]
fn runc_run_supervising_its_container_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, root) = bundle(dir.path());
    let id = format!("wedge-run-{}", std::process::id());
    let log = dir.path().join("run.err");
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(&root)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let r = Running::start(cmd);
    let started = wait_until(std::time::Duration::from_secs(20), || {
        wedge::source::live::procfs::descendants(r.pid)
            .iter()
            .any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            })
    });
    assert!(
        started,
        "runc run: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (d, out) = diagnose_json(r.pid, &[]);
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["delete", "--force", &id])
        .status();
    drop(r);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:#?}\n{}",
        d.findings,
        String::from_utf8_lossy(&out.stderr)
    );
    let comms: Vec<&str> = d
        .snapshot
        .processes
        .iter()
        .map(|p| p.comm.as_str())
        .collect();
    assert_eq!(comms, vec!["runc", "sleep"]);
}
