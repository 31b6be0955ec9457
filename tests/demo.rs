//! `wedge demo`: every case shows its finding (exit 0) and every process it started is gone
//! afterwards, checked by pid; sent SIGINT halfway it exits 130 and leaves nothing behind.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn demo_cmd() -> Command {
    let mut c = Command::new(wedge_bin());
    c.args([
        "demo",
        "--runs",
        "1",
        "--timeout",
        "3s",
        "--print-pids",
        "--color",
        "never",
    ])
    .env("NO_COLOR", "1");
    c
}

#[test]
fn the_demo_shows_every_finding_and_leaves_nothing_behind() {
    let out = demo_cmd().output().expect("run wedge demo");
    let ended = ticks_now();
    assert_no_panic(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for id in wedge::confirm::with_probe() {
        assert!(stdout.contains(&format!("[{id}]")), "{id} shown: {stdout}");
    }
    assert!(stdout.contains("clone-fork-mix"));
    assert!(
        stdout.contains("verdict: confirmed on this host"),
        "{stdout}"
    );
    assert!(
        stdout.contains("5 of 5 cases showed their finding"),
        "{stdout}"
    );
    let pids = pids_in(&stderr);
    assert!(pids.len() >= 10, "{stderr}");
    assert_all_gone(&pids, ended);
}

#[test]
fn an_interrupted_demo_exits_130_and_leaves_nothing_behind() {
    let mut child = demo_cmd()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wedge demo");
    let err = child.stderr.take().unwrap();
    let pids = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&pids);
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().extend(pids_in(&line));
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // Halfway: once the demo has started a dozen processes (several cases in).
    let end = Instant::now() + Duration::from_secs(60);
    while pids.lock().unwrap().len() < 12 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        pids.lock().unwrap().len() >= 12,
        "the demo started processes"
    );
    // SAFETY: kill(2) on the wedge this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let ended = ticks_now();
    let text = reader.join().unwrap();
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert_all_gone(&pids.lock().unwrap(), ended);
}

#[test]
fn without_go_the_go_case_comes_from_the_shipped_sample() {
    let out = demo_cmd()
        .env("GO", "/nonexistent/go")
        .output()
        .expect("run wedge demo");
    let ended = ticks_now();
    assert_no_panic(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("shown from samples/snapshots/reader_race_hold.json"),
        "{stdout}"
    );
    assert!(stdout.contains("[nil-reader-race]"), "{stdout}");
    assert!(!stdout.contains("confirm nil-reader-race"), "{stdout}");
    assert_all_gone(&pids_in(&String::from_utf8_lossy(&out.stderr)), ended);
}
