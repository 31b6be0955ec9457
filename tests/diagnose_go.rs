//! `wedge diagnose` on Go programs built here: every goroutine, with its wait reason and
//! named frames, stripped or not; and the same answers as Delve on the unstripped build.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use wedge::model::{Goroutine, Process};

fn start_goblocked(variant: &str, flags: &[&str], per_kind: usize) -> (Running, usize) {
    let exe = go_build("goblocked", variant, flags, &[("CGO_ENABLED", "0")]);
    let mut cmd = Command::new(exe);
    cmd.arg(per_kind.to_string());
    let r = Running::start(cmd);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let count: usize = ready.split_whitespace().nth(2).unwrap().parse().unwrap();
    (r, count)
}

fn user_frame(g: &Goroutine) -> &str {
    g.frames
        .iter()
        .filter_map(|f| f.function.as_deref())
        .find(|n| !n.starts_with("runtime.") && !n.starts_with("runtime/"))
        .or(g.frames.first().and_then(|f| f.function.as_deref()))
        .unwrap_or("?")
}

fn by_function<'a>(p: &'a Process, func: &str) -> Vec<&'a Goroutine> {
    p.go.as_ref()
        .unwrap()
        .goroutines
        .iter()
        .filter(|g| g.frames.iter().any(|f| f.function.as_deref() == Some(func)))
        .collect()
}

fn check_goblocked(variant: &str, flags: &[&str], found_by: &str) {
    let (probe, own_count) = start_goblocked(variant, flags, 3);
    let (d, out) = diagnose_json(probe.pid, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = d.snapshot.process(probe.pid).unwrap();
    let go = p.go.as_ref().expect("Go facts");
    assert!(go.version.starts_with("go1."), "{}", go.version);
    assert_eq!(go.allgs_found_by.as_deref(), Some(found_by), "{variant}");
    // The unstripped build's own DWARF gives the layout; stripped ones use the tables.
    let layout = if found_by == "symtab" {
        "dwarf"
    } else {
        "table"
    };
    assert_eq!(go.layout_from.as_deref(), Some(layout), "{variant}");
    assert!(go.goroutines_note.is_none(), "{:?}", go.goroutines_note);
    // runtime.NumGoroutine counts every goroutine but the runtime's own.
    let user = go.goroutines.iter().filter(|g| !g.system).count();
    assert_eq!(
        user, own_count,
        "{variant}: user goroutines vs the program's own count"
    );
    for (func, reason, n) in [
        ("main.chanReceiver", "chan receive", 3),
        ("main.mutexLocker", "semacquire", 3),
        ("main.selecter", "select", 3),
        ("main.sleeper", "sleep", 3),
    ] {
        let gs = by_function(p, func);
        assert_eq!(gs.len(), n, "{variant}: {func}");
        for g in gs {
            assert_eq!(g.status, "waiting");
            assert_eq!(g.wait_reason.as_deref(), Some(reason), "{variant}: {func}");
            assert!(g.created_by.as_ref().and_then(|c| c.function.as_deref()) == Some("main.main"));
        }
    }
    let reader = by_function(p, "main.pipeReader");
    assert_eq!(reader.len(), 1);
    assert_eq!(reader[0].status, "syscall");
    let tid = reader[0]
        .thread
        .expect("a goroutine in a syscall has a thread");
    let th = p.thread(tid).unwrap();
    assert_eq!(
        th.syscall.as_ref().and_then(|s| s.name.as_deref()),
        Some("read")
    );
    // The main goroutine has no creator, like the runtime's own traceback.
    let main = go.goroutines.iter().find(|g| g.id == 1).unwrap();
    assert!(main.created_by.is_none());
    assert_eq!(main.wait_reason.as_deref(), Some("select (no cases)"));
    // Thread stacks are named from pclntab too.
    assert!(
        p.threads
            .iter()
            .all(|t| t.frames.iter().all(|f| f.function.is_some())),
        "no ?? frames"
    );
    // The human report groups the three identical receivers into one block.
    let text =
        String::from_utf8_lossy(&wedge(&["diagnose", &probe.pid.to_string()]).stdout).into_owned();
    assert!(
        text.contains("3 goroutines (") && text.contains("[chan receive]"),
        "{text}"
    );
}

#[test]
fn goroutines_of_an_unstripped_go_program() {
    check_goblocked("normal", &[], "symtab");
}

#[test]
fn goroutines_of_a_stripped_go_program() {
    check_goblocked("stripped", &["-ldflags=-s -w"], "allgadd");
}

#[test]
fn goroutines_of_a_stripped_pie_go_program() {
    check_goblocked(
        "stripped-pie",
        &["-buildmode=pie", "-ldflags=-s -w"],
        "allgadd",
    );
}

/// Delve's `goroutines`: id → (function of the topmost user frame, wait reason, thread).
fn delve_goroutines(pid: i32) -> Vec<(i64, String, Option<String>, Option<i32>)> {
    let out = Command::new("dlv")
        .args([
            "attach",
            &pid.to_string(),
            "--allow-non-terminal-interactive=true",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .as_mut()
                .unwrap()
                .write_all(b"goroutines\nexit\nn\n")?;
            c.wait_with_output()
        })
        .expect("dlv (Debian's delve) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let l = l
                .trim_start_matches("(dlv)")
                .trim()
                .trim_start_matches('*')
                .trim();
            let rest = l.strip_prefix("Goroutine ")?;
            let (id, rest) = rest.split_once(" - User: ")?;
            let mut parts = rest.split_whitespace();
            let _loc = parts.next()?;
            let func = parts.next()?.to_string();
            let reason = rest.find('[').and_then(|i| {
                rest[i + 1..]
                    .find(']')
                    .map(|j| rest[i + 1..i + 1 + j].to_string())
            });
            let thread = rest.find("(thread ").and_then(|i| {
                rest[i + 8..]
                    .trim_end_matches(')')
                    .split(')')
                    .next()?
                    .parse()
                    .ok()
            });
            Some((id.parse().ok()?, func, reason, thread))
        })
        .collect()
}

#[test]
fn goroutines_agree_with_delve() {
    let (probe, _) = start_goblocked("normal", &[], 2);
    let (d, _) = diagnose_json(probe.pid, &[]);
    let p = d.snapshot.process(probe.pid).unwrap();
    let ours = &p.go.as_ref().unwrap().goroutines;
    let theirs = delve_goroutines(probe.pid);
    assert!(
        !any_stopped(probe.pid),
        "Delve detached without killing or leaving it stopped"
    );
    assert_eq!(
        theirs.len(),
        ours.len(),
        "same goroutines: delve {theirs:?}"
    );
    for (id, func, reason, thread) in &theirs {
        let g = ours
            .iter()
            .find(|g| g.id == *id)
            .unwrap_or_else(|| panic!("goroutine {id} missing"));
        assert_eq!(user_frame(g), func, "goroutine {id} top user frame");
        if let Some(r) = reason {
            assert_eq!(g.wait_reason.as_deref(), Some(r.as_str()), "goroutine {id}");
        }
        if let Some(t) = thread {
            assert_eq!(g.thread, Some(*t), "goroutine {id} thread");
        }
    }
}
