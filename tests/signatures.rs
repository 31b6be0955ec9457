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
    let r = Running::start(cmd);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let pids: Vec<i32> = ready
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
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
