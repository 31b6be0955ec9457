//! nil-reader-race end to end on the probes/reader_race Go probe: a live capture of workers
//! parked inside an unlocked ReadAt, the mutex version of the same (no finding), and a core
//! of the real crash (GOTRACEBACK=crash). Needs Go (Debian's golang-go): without it the
//! probe does not build and these tests fail. Also the generic nil-deref-crash on the core
//! of a C program that reads through NULL.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use wedge::model::{Confidence, Diagnosis, Finding};

const READ_AT: &str = "main.(*readerAtCloser).ReadAt";

fn reader_race() -> PathBuf {
    wedge::probes::build("reader_race", &probe_dir())
        .unwrap_or_else(|e| panic!("the reader_race probe needs Go (golang-go): {e}"))
}

/// Starts the probe in `mode`, waits for `ready`, returns it and the receiver it printed.
fn start(mode: &str) -> (Running, u64) {
    let mut cmd = Command::new(reader_race());
    cmd.arg(mode);
    let r = Running::start(cmd);
    r.wait_line("ready ", Duration::from_secs(20));
    let line = r.wait_line("receiver ", Duration::from_secs(1));
    let hex = line["receiver ".len()..].trim().trim_start_matches("0x");
    (r, u64::from_str_radix(hex, 16).expect("receiver address"))
}

fn of_id<'a>(d: &'a Diagnosis, id: &str) -> Vec<&'a Finding> {
    d.findings.iter().filter(|f| f.id == id).collect()
}

#[test]
fn live_workers_inside_the_unlocked_read_at_are_the_known_bug() {
    let (probe, receiver) = start("hold");
    let (d, out) = diagnose_json(probe.pid, &[]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "exit code 1: findings");
    assert!(!any_stopped(probe.pid), "left stopped");
    let found = of_id(&d, "nil-reader-race");
    assert_eq!(found.len(), 1, "{:#?}", d.findings);
    let f = found[0];
    // Every worker is on the receiver the probe printed: the spill slot read is right.
    assert_eq!(f.confidence, Confidence::Certain, "{}", f.explanation);
    assert!(
        f.explanation
            .contains(&format!("same receiver {receiver:#x}")),
        "{}",
        f.explanation
    );
    let go = d.snapshot.processes[0].go.as_ref().unwrap();
    let inside: Vec<i64> = go
        .goroutines
        .iter()
        .filter(|g| {
            g.frames
                .iter()
                .any(|f| f.function.as_deref() == Some(READ_AT))
        })
        .map(|g| g.id)
        .collect();
    assert_eq!(inside.len(), 5, "five workers inside ReadAt");
    let mut named: Vec<i64> = f.evidence.iter().filter_map(|e| e.goroutine).collect();
    named.sort();
    assert_eq!(
        named, inside,
        "the evidence names the goroutines inside ReadAt"
    );
    assert!(f.evidence.iter().all(|e| e.text.contains(READ_AT)));
    assert!(of_id(&d, "nil-deref-crash").is_empty());
    // The human report says it too.
    let text =
        String::from_utf8_lossy(&wedge(&["diagnose", &probe.pid.to_string()]).stdout).into_owned();
    assert!(text.contains("nil-reader-race"), "{text}");
}

#[test]
fn workers_waiting_on_the_fixed_readers_mutex_are_not_reported() {
    let (probe, _) = start("fixed-hold");
    let (d, out) = diagnose_json(probe.pid, &[]);
    assert_no_panic(&out);
    assert!(!any_stopped(probe.pid), "left stopped");
    // The same five workers are inside ReadAt, but four wait for its lock.
    let go = d.snapshot.processes[0].go.as_ref().unwrap();
    let inside = go
        .goroutines
        .iter()
        .filter(|g| {
            g.frames
                .iter()
                .any(|f| f.function.as_deref() == Some(READ_AT))
        })
        .count();
    assert_eq!(inside, 5);
    assert!(of_id(&d, "nil-reader-race").is_empty(), "{:#?}", d.findings);
}

#[test]
fn the_fixed_reader_never_crashes() {
    let mut cmd = Command::new(reader_race());
    cmd.arg("fixed");
    let mut r = Running::start(cmd);
    let (code, out) = r.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("done 200 uploads"), "{out}");
}

#[test]
fn a_core_of_the_crash_is_the_known_bug_once() {
    let exe = reader_race();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg("crash").env("GOTRACEBACK", "crash");
    let mut r = start_dumping(cmd, dir.path());
    let (code, out) = r.finish();
    let uploads = out.lines().filter(|l| l.starts_with("upload ")).count();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert_eq!(code, None, "killed by SIGABRT: {stderr}");
    assert!(stderr.contains("addr=0x20"), "{stderr}");
    eprintln!("reader_race crash: faulted in upload {uploads}");
    let core = core_in(dir.path());
    let out = wedge(&[
        "core",
        core.to_str().unwrap(),
        "--exe",
        exe.to_str().unwrap(),
        "--json",
    ]);
    assert_no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code 1: findings. {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    let p = &d.snapshot.processes[0];
    assert_eq!(p.signal.as_ref().map(|s| s.signo), Some(libc::SIGABRT));
    // The goroutine the runtime's own traceback names is the faulting one.
    let faulted: Vec<_> =
        p.go.as_ref()
            .unwrap()
            .goroutines
            .iter()
            .filter(|g| g.fault.is_some())
            .collect();
    // Usually one; two workers can both reach the nil call before the first panic ends the
    // process. The one the runtime's own traceback names is among them.
    assert!(!faulted.is_empty(), "a goroutine took the fault");
    assert!(
        faulted
            .iter()
            .any(|g| stderr.contains(&format!("goroutine {} [running]", g.id))),
        "{stderr}"
    );
    assert!(
        faulted
            .iter()
            .all(|g| g.fault.as_ref().unwrap().addr == 0x20)
    );
    let found = of_id(&d, "nil-reader-race");
    assert_eq!(found.len(), 1, "once per process: {:#?}", d.findings);
    assert_eq!(found[0].confidence, Confidence::Certain);
    assert!(
        faulted
            .iter()
            .any(|g| found[0].evidence[0].goroutine == Some(g.id))
    );
    assert!(
        found[0].evidence[0]
            .text
            .contains("io.(*SectionReader).Read")
    );
    assert!(
        of_id(&d, "nil-deref-crash").is_empty(),
        "the generic finding is not repeated: {:#?}",
        d.findings
    );
}

#[test]
fn a_native_null_read_core_is_a_nil_deref_crash() {
    let exe = probe("nil_deref");
    let dir = tempfile::tempdir().unwrap();
    let mut r = start_dumping(Command::new(&exe), dir.path());
    let (code, _) = r.finish();
    assert_eq!(code, None, "killed by SIGSEGV");
    let core = core_in(dir.path());
    let out = wedge(&["core", core.to_str().unwrap(), "--json"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "findings");
    let d: Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    let p = &d.snapshot.processes[0];
    let sig = p.signal.as_ref().expect("NT_SIGINFO");
    assert_eq!((sig.signo, sig.addr), (libc::SIGSEGV, Some(0x10)));
    let found = of_id(&d, "nil-deref-crash");
    assert_eq!(found.len(), 1, "{:#?}", d.findings);
    assert_eq!(found[0].evidence[0].tid, sig.tid);
    assert!(
        found[0].explanation.contains("record_offset"),
        "{}",
        found[0].explanation
    );
    assert!(of_id(&d, "nil-reader-race").is_empty());
}
