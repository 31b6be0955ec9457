//! Signatures on running probes: the buggy variant is reported with evidence naming the
//! right process and thread; the fixed variant is not.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn start_clone_fork(variant: &str) -> (Running, i32, i32) {
    let exe = probe("clone_fork");
    let mut cmd = Command::new(exe);
    cmd.arg(variant);
    let (r, pids) = start_ready(cmd);
    (r, pids[0], pids[1])
}

#[test]
fn clone_fork_mix_is_reported_on_the_buggy_probe() {
    let (r, parent, child) = start_clone_fork("buggy");
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{child}/syscall"))
            .is_ok_and(|s| s.starts_with("202 "))
    }));
    let (d, out) = diagnose_json(parent, &[]);
    kill_descendants(parent);
    drop(r);
    assert_eq!(out.status.code(), Some(1), "findings: exit 1");
    let f = d
        .findings
        .iter()
        .find(|f| f.id == "clone-fork-mix")
        .expect("clone-fork-mix");
    assert_eq!(f.evidence[0].pid, Some(child));
    assert_eq!(f.evidence[0].tid, Some(child));
    assert!(
        f.evidence
            .iter()
            .any(|e| e.pid == Some(parent) && e.fd.is_some()),
        "the parent's pipe wait"
    );
    assert!(
        !d.findings.iter().any(|f| f.id == "lock-never-released"),
        "not repeated as generic"
    );
}

#[test]
fn the_fixed_probe_reports_nothing() {
    let (r, parent, _) = start_clone_fork("fixed");
    r.wait_line("child forked", Duration::from_secs(5));
    let (d, out) = diagnose_json(parent, &[]);
    kill_descendants(parent);
    drop(r);
    assert_eq!(out.status.code(), Some(0), "{:#?}", d.findings);
    assert!(d.findings.is_empty());
    assert_eq!(
        d.snapshot.processes.len(),
        3,
        "parent, child and grandchild were captured"
    );
}

#[test]
fn the_catalog_is_printed() {
    let out = wedge(&["signatures", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "clone-fork-mix" && s["probe"] == "clone_fork")
    );
}

/// Starts the pipe_waits probe in `mode`; returns it with the parent's and child's pids once
/// both sit in read(2).
fn start_pipe_waits(mode: &str) -> (Running, i32, i32) {
    let mut cmd = Command::new(probe("pipe_waits"));
    cmd.arg(mode);
    let (r, pids) = start_ready(cmd);
    let in_read = |pid: i32| {
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{pid}/syscall"))
                .is_ok_and(|s| s.starts_with("0 "))
        })
    };
    assert!(in_read(pids[0]), "the parent reads");
    if mode != "orphan" && mode != "fixed" {
        assert!(in_read(pids[1]), "the child reads");
    }
    (r, pids[0], pids[1])
}

#[test]
fn orphan_pipe_wait_names_the_reader_and_the_forgotten_write_end() {
    let (r, parent, _) = start_pipe_waits("orphan");
    let (d, out) = diagnose_json(parent, &[]);
    kill_descendants(parent);
    drop(r);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
    let f = &d.findings[0];
    assert_eq!(f.id, "orphan-pipe-wait");
    assert_eq!(f.confidence, wedge::model::Confidence::Certain);
    assert_eq!(
        (f.evidence[0].pid, f.evidence[0].tid),
        (Some(parent), Some(parent))
    );
    let p = d.snapshot.process(parent).unwrap();
    let read_fd = f.evidence[0].fd.unwrap();
    let write_fd = f.evidence[1].fd.unwrap();
    let inode = |fd: i32| match p.fd(fd).unwrap().kind {
        wedge::model::FdKind::Pipe { inode } => inode,
        ref k => panic!("fd {fd} is {k:?}"),
    };
    assert_eq!(inode(read_fd), inode(write_fd), "both ends of one pipe");
    assert_ne!(read_fd, write_fd);
}

#[test]
fn a_reader_whose_writer_sleeps_is_not_stuck() {
    let (r, parent, child) = start_pipe_waits("fixed");
    let (d, out) = diagnose_json(parent, &[]);
    kill_descendants(parent);
    drop(r);
    assert_eq!(out.status.code(), Some(0), "{:#?}", d.findings);
    assert_eq!(d.snapshot.processes.len(), 2);
    assert!(d.snapshot.process(child).is_some());
}

fn assert_cycle(mode: &str) -> wedge::model::Diagnosis {
    let (r, parent, child) = start_pipe_waits(mode);
    let (d, out) = diagnose_json(parent, &[]);
    kill_descendants(parent);
    drop(r);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
    let f = &d.findings[0];
    assert_eq!(f.id, "wait-cycle");
    assert_eq!(f.confidence, wedge::model::Confidence::Certain);
    let mut who: Vec<(Option<i32>, Option<i32>)> =
        f.evidence.iter().map(|e| (e.pid, e.tid)).collect();
    who.sort();
    let mut want = vec![(Some(parent), Some(parent)), (Some(child), Some(child))];
    want.sort();
    assert_eq!(who, want);
    assert!(f.evidence.iter().all(|e| e.fd.is_some()));
    d
}

#[test]
fn wait_cycle_over_two_pipes() {
    assert_cycle("cycle");
}

#[test]
fn wait_cycle_over_a_socketpair_uses_the_peers_sock_diag_reports() {
    let d = assert_cycle("cycle-sock");
    let peers: Vec<(u64, Option<u64>)> = d
        .snapshot
        .processes
        .iter()
        .flat_map(|p| p.fds.iter())
        .filter_map(|f| match &f.kind {
            wedge::model::FdKind::Socket {
                inode,
                info: Some(wedge::model::SocketInfo::Unix(u)),
            } => Some((*inode, u.peer_inode)),
            _ => None,
        })
        .collect();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert_eq!(peers[0].1, Some(peers[1].0));
    assert_eq!(peers[1].1, Some(peers[0].0));
}

/// Starts dead_owner in `mode`; returns it, its pid and the owner tid the mutex records,
/// once main sleeps on the mutex.
fn start_dead_owner(mode: &[&str]) -> (Running, i32, i32) {
    let mut cmd = Command::new(probe("dead_owner"));
    cmd.args(mode);
    let (r, v) = start_ready(cmd);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{}/syscall", v[0]))
            .is_ok_and(|s| s.starts_with("202 "))
    }));
    (r, v[0], v[1])
}

#[test]
fn a_mutex_whose_owner_exited_is_never_released_though_other_threads_live() {
    let (r, pid, owner) = start_dead_owner(&[]);
    let (d, out) = diagnose_json(pid, &[]);
    drop(r);
    assert_eq!(out.status.code(), Some(1), "{:#?}", d.findings);
    assert_eq!(
        d.snapshot.process(pid).unwrap().threads.len(),
        2,
        "main and idle"
    );
    let f = d
        .findings
        .iter()
        .find(|f| f.id == "lock-never-released")
        .expect("lock-never-released");
    assert_eq!(f.evidence[0].tid, Some(pid));
    assert!(
        f.explanation.contains(&format!("owner, tid {owner}")),
        "{}",
        f.explanation
    );
}

#[test]
fn a_mutex_locked_twice_by_one_thread_is_named_so() {
    let (r, pid, owner) = start_dead_owner(&["twice"]);
    assert_eq!(owner, pid, "main holds it");
    let (d, out) = diagnose_json(pid, &[]);
    drop(r);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
    assert!(
        d.findings[0]
            .explanation
            .contains("locked a non-recursive mutex twice")
    );
}
