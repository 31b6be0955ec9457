//! Bad input and bad luck: every error path of `wedge diagnose` gives one clear line, the
//! documented exit code, never a panic, and a partial report where one is possible.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// Runs `wedge ARGS` under a wrapper command (setpriv, unshare) that changes who it is.
fn wedge_under(wrapper: &[&str], args: &[&str]) -> std::process::Output {
    Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(wedge_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{} (util-linux): {e}", wrapper[0]))
}

#[test]
fn missing_pid_is_exit_3_with_one_line() {
    let out = wedge(&["diagnose", "4194304"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "wedge: no process with pid 4194304");
    assert_no_panic(&out);
}

#[test]
fn bad_usage_is_exit_2() {
    for args in [&["diagnose", "abc"][..], &["diagnose"], &["frobnicate"]] {
        let out = wedge(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_no_panic(&out);
    }
}

#[test]
fn not_root_is_explained_and_procfs_is_still_reported() {
    let probe = start_blocked_threads(&[]);
    // Run wedge as nobody, without capabilities, against a root-owned probe.
    let pid = probe.pid.to_string();
    let out = wedge_under(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ],
        &["diagnose", &pid],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not root and no CAP_SYS_PTRACE"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("Process tree") && report.contains("not stopped"),
        "{report}"
    );
    assert!(!any_stopped(probe.pid));
}

#[test]
fn already_traced_names_the_tracer() {
    let probe = start_blocked_threads(&[]);
    let mut first = Command::new(wedge_bin());
    first.args([
        "diagnose",
        &probe.pid.to_string(),
        "--debug-hold-ms",
        "10000",
    ]);
    let first = Running::start(first);
    assert!(wait_until(Duration::from_secs(5), || all_traced(probe.pid)));
    let out = wedge(&["diagnose", &probe.pid.to_string()]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already traced by pid {} (wedge)", first.pid)),
        "{err}"
    );
    first.signal(libc::SIGINT);
    assert!(wait_until(Duration::from_secs(3), || !any_stopped(
        probe.pid
    )));
}

#[test]
fn foreign_user_namespace_is_explained() {
    let probe = start_blocked_threads(&[]);
    // wedge inside a fresh user namespace: root there, nobody over the host's processes.
    let pid = probe.pid.to_string();
    let out = wedge_under(
        &["unshare", "--user", "--map-root-user", "--"],
        &["diagnose", &pid],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("user namespace"), "{err}");
    assert!(!any_stopped(probe.pid));
}

#[test]
fn process_exiting_during_capture_gives_a_partial_report() {
    let probe = start_blocked_threads(&[]);
    let mut cmd = Command::new(wedge_bin());
    cmd.args([
        "diagnose",
        &probe.pid.to_string(),
        "--json",
        "--debug-hold-ms",
        "800",
    ]);
    let mut w = Running::start(cmd);
    assert!(wait_until(Duration::from_secs(5), || all_traced(probe.pid)));
    probe.signal(libc::SIGKILL);
    let (code, json) = w.finish();
    assert_eq!(code, Some(0));
    let d: wedge::model::Diagnosis = serde_json::from_str(&json).expect("json");
    assert!(
        d.snapshot
            .notes
            .iter()
            .any(|n| n.message.contains("exited")),
        "{:?}",
        d.snapshot.notes
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let out = wedge(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for code in [
        "0 nothing found",
        "1 findings reported",
        "3 target not found",
        "4 not permitted",
        "130 interrupted",
    ] {
        assert!(text.contains(code), "{code}: {text}");
    }
}
