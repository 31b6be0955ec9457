//! Goroutines from binaries of several Go releases (the 1.20+ pclntab, moved g fields,
//! the 1.25 gobuf), stripped, and a release newer than wedge's tables degrading honestly.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn run_and_diagnose(version: &str) -> (wedge::model::Diagnosis, usize) {
    let go = go_toolchain(version);
    let exe = go_build_with(
        &go,
        "goblocked",
        &format!("go{version}-stripped"),
        &["-ldflags=-s -w"],
    );
    let mut cmd = Command::new(exe);
    cmd.arg("2");
    let r = Running::start(cmd);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let own: usize = ready.split_whitespace().nth(2).unwrap().parse().unwrap();
    let (d, out) = diagnose_json(r.pid, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!any_stopped(r.pid));
    (d, own)
}

fn check_release(version: &str, semaphore_reason: &str) {
    let (d, own) = run_and_diagnose(version);
    let p = &d.snapshot.processes[0];
    let go = p.go.as_ref().unwrap();
    assert_eq!(go.version, format!("go{version}"));
    assert_eq!(go.allgs_found_by.as_deref(), Some("allgadd"));
    assert!(go.goroutines_note.is_none(), "{:?}", go.goroutines_note);
    assert_eq!(
        go.goroutines.iter().filter(|g| !g.system).count(),
        own,
        "go{version}"
    );
    let with = |f: &str| {
        go.goroutines
            .iter()
            .filter(|g| g.frames.iter().any(|x| x.function.as_deref() == Some(f)))
            .collect::<Vec<_>>()
    };
    for (f, reason) in [
        ("main.chanReceiver", "chan receive"),
        ("main.mutexLocker", semaphore_reason),
        ("main.sleeper", "sleep"),
    ] {
        let gs = with(f);
        assert_eq!(gs.len(), 2, "go{version} {f}");
        assert!(
            gs.iter().all(|g| g.wait_reason.as_deref() == Some(reason)),
            "go{version} {f}: {:?}",
            gs[0].wait_reason
        );
        // From 1.21 the runtime records the creating goroutine.
        assert!(
            gs.iter().all(|g| g.parent_id == Some(1)),
            "go{version}: created in goroutine 1"
        );
    }
    assert!(
        p.threads
            .iter()
            .all(|t| t.frames.iter().all(|f| f.function.is_some()))
    );
}

#[test]
fn go_1_21() {
    check_release("1.21.13", "sync.Mutex.Lock");
}

#[test]
fn go_1_23() {
    check_release("1.23.9", "sync.Mutex.Lock");
}

#[test]
fn go_1_25() {
    check_release("1.25.5", "sync.Mutex.Lock");
}

#[test]
fn a_release_newer_than_the_tables_degrades_to_thread_stacks_with_a_note() {
    let (d, _) = run_and_diagnose("1.27.3");
    let p = &d.snapshot.processes[0];
    let go = p.go.as_ref().expect("still recognized as Go");
    assert!(go.goroutines.is_empty(), "no guessed goroutines");
    let note = go.goroutines_note.as_deref().unwrap_or("");
    assert!(
        note.contains("go1.27.3") && note.contains("thread stacks only"),
        "{note}"
    );
    assert!(
        p.threads.iter().all(|t| t.registers.is_some()),
        "threads are still captured"
    );
}

#[test]
fn a_newer_release_with_dwarf_is_read_from_its_own_dwarf() {
    let go = go_toolchain("1.27.3");
    let exe = go_build_with(&go, "goblocked", "go1.27.3-unstripped", &[]);
    let mut cmd = Command::new(exe);
    cmd.arg("2");
    let r = Running::start(cmd);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let own: usize = ready.split_whitespace().nth(2).unwrap().parse().unwrap();
    let (d, _) = diagnose_json(r.pid, &[]);
    let go = d.snapshot.processes[0].go.as_ref().unwrap();
    assert_eq!(go.layout_from.as_deref(), Some("dwarf"));
    assert!(go.goroutines_note.is_none(), "{:?}", go.goroutines_note);
    assert_eq!(go.goroutines.iter().filter(|g| !g.system).count(), own);
    let chan: Vec<_> = go
        .goroutines
        .iter()
        .filter(|g| {
            g.frames
                .iter()
                .any(|f| f.function.as_deref() == Some("main.chanReceiver"))
        })
        .collect();
    assert_eq!(chan.len(), 2);
    assert!(
        chan.iter()
            .all(|g| g.wait_reason.as_deref() == Some("chan receive")),
        "names from waitReasonStrings"
    );
}
