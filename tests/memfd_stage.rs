//! memfd-shared-stage on the running memfd_stage probe: the emulated kernel bug (`shared`)
//! hangs both stages and is reported Certain with their pids and socket fds; the runc 1.2.6
//! seals (`fixed`) give nothing; the runc 1.2.0 – 1.2.5 seals (`buggy`) on this kernel are
//! judged as the host copy-on-write check says.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use wedge::hostcheck::{CowCheck, memfd_future_write_cow};
use wedge::model::{Confidence, Diagnosis, FdKind};

/// Kills the probe's descendants (stage-1) when dropped, even when an assertion fails.
struct KillDescendants(i32);

impl Drop for KillDescendants {
    fn drop(&mut self) {
        kill_descendants(self.0);
    }
}

/// Starts `memfd_stage ARGS` with stderr in a file; returns the guards, the two stage pids
/// and the stderr path. Guards drop in reverse order: the descendants die first.
fn start(args: &[&str]) -> (Running, KillDescendants, i32, i32, PathBuf) {
    let exe = probe("memfd_stage");
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "memfd_stage-{}-{}.log",
        args.join("-"),
        std::process::id()
    ));
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let r = Running::start(cmd);
    let guard = KillDescendants(r.pid);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let pids: Vec<i32> = ready
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(
        pids[0], r.pid,
        "stage-0 is the process started (re-executed in place)"
    );
    (r, guard, pids[0], pids[1], log)
}

fn wchan(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

fn memfd_findings(d: &Diagnosis) -> Vec<&wedge::model::Finding> {
    d.findings
        .iter()
        .filter(|f| f.id == "memfd-shared-stage")
        .collect()
}

fn exe_seals(d: &Diagnosis, pid: i32) -> Option<u32> {
    d.snapshot.process(pid)?.exe.as_ref()?.seals
}

#[test]
fn the_emulated_kernel_bug_hangs_both_stages_and_is_certain() {
    let (r, guard, stage0, stage1, log) = start(&["shared"]);
    assert!(
        wait_until(Duration::from_secs(5), || [stage0, stage1].iter().all(
            |p| state_of(*p, *p) == Some('S') && wchan(*p).starts_with("unix_stream")
        )),
        "both stages never blocked on their sockets: {:?} {:?}",
        wchan(stage0),
        wchan(stage1)
    );
    let (d, out) = diagnose_json(stage0, &[]);
    drop(guard);
    drop(r);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "findings: exit 1");

    // The capture: both stages run from the sealed memfd, runc 1.2.0 – 1.2.5 seals.
    for pid in [stage0, stage1] {
        let p = d.snapshot.process(pid).expect("both stages captured");
        let exe = p.exe.as_ref().unwrap();
        assert_eq!(exe.memfd.as_deref(), Some("runc_cloned:/proc/self/exe"));
        assert_eq!(
            exe_seals(&d, pid),
            Some(0x1f),
            "F_SEAL_FUTURE_WRITE and the rest"
        );
    }
    assert_eq!(d.snapshot.process(stage0).unwrap().comm, "runc:[0:PARENT]");
    assert_eq!(d.snapshot.process(stage1).unwrap().comm, "runc:[1:CHILD]");

    let f = memfd_findings(&d);
    assert_eq!(f.len(), 1, "{:#?}", d.findings);
    let f = f[0];
    assert_eq!(f.confidence, Confidence::Certain, "{}", f.explanation);
    for pid in [stage0, stage1] {
        let p = d.snapshot.process(pid).unwrap();
        let e = f
            .evidence
            .iter()
            .find(|e| e.pid == Some(pid) && e.fd.is_some())
            .unwrap_or_else(|| panic!("no socket wait of {pid} in {:#?}", f.evidence));
        assert_eq!(e.tid, Some(pid));
        let fd = p.fd(e.fd.unwrap()).unwrap();
        assert!(
            matches!(fd.kind, FdKind::Socket { .. }),
            "fd {} of {pid} is a socket: {:?}",
            fd.fd,
            fd.kind
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.pid == Some(pid) && e.mapping.is_some()),
            "the rw-p memfd mapping of {pid}"
        );
    }
    // sock_diag names each socket as the other's peer: one socketpair, proven.
    assert!(
        f.explanation
            .contains("both wait receiving on the two ends of one socketpair"),
        "{}",
        f.explanation
    );
    // The probe's log shows the shared current_stage: stage-0's pid with stage-1's number.
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains(&format!(
            "nsexec-1[{stage0}]: -> stage-1 synchronisation loop"
        )),
        "{text}"
    );
}

#[test]
fn the_runc_1_2_6_seals_give_nothing() {
    let (r, guard, stage0, stage1, log) = start(&["fixed", "hold"]);
    r.wait_line("stage-1 finished", Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(5), || [stage0, stage1]
        .iter()
        .all(|p| wchan(*p).contains("pause"))));
    let (d, out) = diagnose_json(stage0, &[]);
    drop(guard);
    drop(r);
    let _ = std::fs::remove_file(&log);
    assert_no_panic(&out);
    assert_eq!(exe_seals(&d, stage0), Some(0xf), "no F_SEAL_FUTURE_WRITE");
    assert_eq!(exe_seals(&d, stage1), Some(0xf));
    assert!(memfd_findings(&d).is_empty(), "{:#?}", d.findings);
    assert_eq!(out.status.code(), Some(0), "{:#?}", d.findings);
}

#[test]
fn the_buggy_seals_follow_the_host_check() {
    let verdict = memfd_future_write_cow();
    let (r, guard, stage0, stage1, log) = start(&["buggy", "hold"]);
    match &verdict {
        CowCheck::CowKept => {
            // Copy-on-write works: the stages finish and only the risk can be reported.
            r.wait_line("stage-1 finished", Duration::from_secs(10));
            assert!(wait_until(Duration::from_secs(5), || [stage0, stage1]
                .iter()
                .all(|p| wchan(*p).contains("pause"))));
            let (d, out) = diagnose_json(stage0, &[]);
            drop(guard);
            drop(r);
            assert_no_panic(&out);
            assert_eq!(exe_seals(&d, stage0), Some(0x1f));
            for f in memfd_findings(&d) {
                assert!(f.confidence < Confidence::Certain, "{f:#?}");
                assert!(
                    f.explanation.contains(&d.snapshot.host.kernel_release),
                    "names the kernel"
                );
            }
        }
        CowCheck::CowBroken => {
            // The kernel shares the stages' globals: the start hangs like the shared mode.
            assert!(wait_until(Duration::from_secs(5), || [stage0, stage1]
                .iter()
                .all(|p| wchan(*p).starts_with("unix_stream"))));
            let (d, _) = diagnose_json(stage0, &[]);
            drop(guard);
            drop(r);
            assert!(!memfd_findings(&d).is_empty(), "{:#?}", d.findings);
        }
        CowCheck::Unsupported(why) => {
            drop(guard);
            drop(r);
            eprintln!("host check unsupported here ({why}): nothing to compare");
        }
    }
    let _ = std::fs::remove_file(&log);
}
