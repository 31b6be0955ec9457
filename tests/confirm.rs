//! `wedge confirm`: each run of a probe diagnosed by wedge itself. clone-fork-mix is
//! confirmed (buggy reproduced, fixed clean); memfd-shared-stage's verdict agrees with the
//! host copy-on-write check; an unknown signature or one without a probe is a usage error.
//! Every process a confirmation started is gone afterwards.

mod common;

use common::*;
use serde_json::Value;
use wedge::hostcheck::{CowCheck, memfd_future_write_cow};

/// Runs `wedge confirm ARGS --json --print-pids`; returns (exit code, document, pids).
fn confirm(args: &[&str]) -> (Option<i32>, Value, Vec<i32>, u64) {
    let mut all = vec!["confirm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--print-pids"]);
    let out = wedge(&all);
    let ended = ticks_now();
    assert_no_panic(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pids = pids_in(&stderr);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): rc={:?} {stderr}", out.status.code()));
    (out.status.code(), doc, pids, ended)
}

#[test]
fn clone_fork_mix_is_confirmed_and_nothing_is_left() {
    let (code, doc, pids, ended) = confirm(&["clone-fork-mix", "--runs", "2", "--timeout", "5s"]);
    assert_eq!(doc["verdict"], "confirmed", "{doc:#}");
    assert_eq!(code, Some(0), "confirmed: exit 0");
    assert_eq!(doc["buggy"]["runs"], 2);
    assert_eq!(doc["buggy"]["reproduced"], 2, "{doc:#}");
    assert_eq!(doc["fixed"]["clean"], 2, "{doc:#}");
    assert_eq!(doc["fixed"]["reproduced"], 0);
    assert_eq!(doc["buggy"]["rate"], 1.0);
    let lo = doc["buggy"]["interval95"][0].as_f64().unwrap();
    assert!(
        (lo - 0.342).abs() < 0.001,
        "Wilson lower bound of 2/2: {lo}"
    );
    // Parent, raw-clone child and its grandchild, (buggy: its fork never returns).
    assert!(pids.len() >= 2 * 2 + 2 * 3, "{pids:?}");
    assert_all_gone(&pids, ended);
}

#[test]
fn memfd_shared_stage_follows_the_host_check() {
    let (code, doc, pids, ended) =
        confirm(&["memfd-shared-stage", "--runs", "1", "--timeout", "5s"]);
    assert_all_gone(&pids, ended);
    match memfd_future_write_cow() {
        CowCheck::CowKept => {
            assert_eq!(doc["verdict"], "not_reproducible", "{doc:#}");
            assert_eq!(code, Some(1));
            assert_eq!(doc["host_check"], "cow_kept");
            assert_eq!(doc["buggy"]["reproduced"], 0, "{doc:#}");
            assert!(
                doc["reason"]
                    .as_str()
                    .unwrap()
                    .contains("keeps copy-on-write"),
                "{doc:#}"
            );
        }
        CowCheck::CowBroken => {
            assert_eq!(doc["host_check"], "cow_broken");
            assert_eq!(doc["verdict"], "confirmed", "{doc:#}");
        }
        CowCheck::Unsupported(_) => {
            assert_eq!(doc["verdict"], "not_reproducible", "{doc:#}");
        }
    }
    // The fixed seals never hang; the emulated kernel bug hangs on any kernel.
    assert_eq!(doc["fixed"]["clean"], 1, "{doc:#}");
    assert_eq!(doc["emulation"]["reproduced"], 1, "{doc:#}");
    assert!(
        doc["emulation_verdict"]
            .as_str()
            .unwrap()
            .starts_with("mechanism confirmed under emulation")
    );
}

#[test]
fn unknown_or_probeless_signatures_are_usage_errors() {
    for (sig, says) in [
        ("no-such-bug", "no signature \"no-such-bug\""),
        ("lock-never-released", "has no probe"),
    ] {
        let out = wedge(&["confirm", sig]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{sig}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(
            err.contains("clone-fork-mix") && err.contains("nil-reader-race"),
            "lists the signatures with a probe: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = wedge(&["confirm", "clone-fork-mix", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert_no_panic(&out);
}

#[test]
fn diagnose_confirm_adds_the_verdict_of_each_matched_signature() {
    let mut cmd = std::process::Command::new(probe("pipe_waits"));
    cmd.arg("orphan");
    let r = Running::start(cmd);
    r.wait_line("ready ", std::time::Duration::from_secs(10));
    assert!(wait_until(std::time::Duration::from_secs(5), || state_of(
        r.pid, r.pid
    ) == Some(
        'S'
    )));
    let pid = r.pid.to_string();
    let out = wedge(&["diagnose", &pid, "--confirm", "--json"]);
    drop(r);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "findings: exit 1");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = doc["confirmations"].as_array().expect("confirmations");
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0]["signature"], "orphan-pipe-wait");
    assert_eq!(c[0]["verdict"], "confirmed", "{:#}", c[0]);
    // The document still reads back as a diagnosis.
    let d: wedge::model::Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    assert!(d.findings.iter().any(|f| f.id == "orphan-pipe-wait"));
    // Without --confirm the field is absent.
    let r = {
        let mut cmd = std::process::Command::new(probe("pipe_waits"));
        cmd.arg("orphan");
        Running::start(cmd)
    };
    r.wait_line("ready ", std::time::Duration::from_secs(10));
    let (_, out) = diagnose_json(r.pid, &[]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.get("confirmations").is_none());
}

#[test]
fn an_interrupted_confirm_exits_130_and_leaves_nothing_behind() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(wedge_bin())
        .args(["confirm", "clone-fork-mix", "--runs", "50", "--print-pids"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut pids = Vec::new();
    // In the middle of the third buggy run: its parent and raw-clone child exist.
    while pids.len() < 5 {
        let Some(Ok(l)) = lines.next() else { break };
        pids.extend(pids_in(&l));
    }
    assert_eq!(pids.len(), 5, "the runs started");
    // SAFETY: kill(2) on the wedge this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let ended = ticks_now();
    for l in &rest {
        pids.extend(pids_in(l));
    }
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert_all_gone(&pids, ended);
}
