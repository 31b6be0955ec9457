//! Healthy processes report no findings: a sleeping shell, an idle multi-threaded C server,
//! a busy Go HTTP server and an idle podman service. (Debian's runc running a container is
//! in tests/runc.rs.) Each would be a false alarm at 3 a.m.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Diagnoses `pid` and asserts exit 0 with no findings; returns the diagnosis.
fn assert_quiet(pid: i32) -> wedge::model::Diagnosis {
    let (d, out) = diagnose_json(pid, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "findings on a healthy process: {:#?}\n{}",
        d.findings,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.findings.is_empty());
    d
}

fn ready_pid(r: &Running) -> i32 {
    let line = r.wait_line("ready ", Duration::from_secs(60));
    line[6..].trim().parse().unwrap()
}

#[test]
fn a_shell_waiting_for_sleep() {
    let mut cmd = Command::new("sh");
    // `; true` keeps sh from exec'ing sleep itself: sh waits in wait4 for its child.
    cmd.args(["-c", "echo ready $$; sleep 1000; true"]);
    let r = Running::start(cmd);
    let sh = ready_pid(&r);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"))
            .is_ok_and(|c| !c.trim().is_empty())
            && std::fs::read_to_string(format!("/proc/{sh}/syscall"))
                .is_ok_and(|s| s.starts_with("61 ") || s.starts_with("247 "))
    }));
    let d = assert_quiet(sh);
    kill_descendants(sh);
    drop(r);
    assert_eq!(d.snapshot.processes.len(), 2, "sh and sleep");
}

#[test]
fn an_idle_multithreaded_server() {
    let r = Running::start(Command::new(probe("idle_server")));
    let pid = ready_pid(&r);
    assert!(wait_until(Duration::from_secs(5), || tids(pid).len() == 8
        && tids(pid).iter().all(|t| state_of(pid, *t) == Some('S'))));
    let d = assert_quiet(pid);
    drop(r);
    let p = d.snapshot.process(pid).unwrap();
    assert_eq!(p.threads.len(), 8);
    // The listeners are known as such (sock_diag), not as unconnected sockets.
    let listening = p
        .fds
        .iter()
        .filter(|f| {
            matches!(&f.kind, wedge::model::FdKind::Socket { info: Some(wedge::model::SocketInfo::Unix(u)), .. } if u.state == "listening")
        })
        .count();
    assert_eq!(listening, 1, "the abstract unix listener");
}

#[test]
fn a_busy_go_http_server() {
    let exe = go_build("httpbusy", "stripped", &["-ldflags=-s -w"], &[]);
    let r = Running::start(Command::new(exe));
    let pid = ready_pid(&r);
    // Several captures while it serves: none may report anything.
    for _ in 0..3 {
        let d = assert_quiet(pid);
        let go = d.snapshot.process(pid).unwrap().go.as_ref().unwrap();
        assert!(
            go.goroutines.len() > 10,
            "{} goroutines",
            go.goroutines.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(r);
}

#[test]
fn an_idle_podman_service() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("podman.sock");
    let log = dir.path().join("podman.log");
    let mut cmd = Command::new("podman");
    cmd.args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let r = Running::start(cmd);
    assert!(
        wait_until(Duration::from_secs(30), || sock.exists()),
        "podman system service did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_millis(300));
    let d = assert_quiet(r.pid);
    kill_descendants(r.pid);
    drop(r);
    let p = &d.snapshot.processes[0];
    assert_eq!(p.comm, "podman");
    assert!(p.go.is_some());
}
