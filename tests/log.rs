//! `wedge log` end to end: the real crash output of probes/reader_race piped to `wedge log -`
//! is the known bug on the goroutine that faulted, also behind a CI prefix; the nsexec lines
//! of probes/memfd_stage are memfd-shared-stage; exit codes; garbage says so on stderr.
//! Needs Go (Debian's golang-go) for the probe.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use wedge::model::{Confidence, Diagnosis};

fn log_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(wedge_bin())
        .arg("log")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wedge");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> Diagnosis {
    assert_no_panic(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): rc={:?} stderr={}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The stderr of the reader_race probe run until its race faults.
fn crash_output() -> String {
    let exe = wedge::probes::build("reader_race", &probe_dir())
        .unwrap_or_else(|e| panic!("the reader_race probe needs Go (golang-go): {e}"));
    let out = Command::new(exe)
        .arg("crash")
        .env_remove("GOTRACEBACK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a Go panic exits 2");
    String::from_utf8(out.stderr).unwrap()
}

/// `goroutine N [running]:` of the panic: the goroutine that faulted.
fn faulting_goroutine(text: &str) -> i64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("goroutine ") && l.ends_with("[running]:"))
        .expect("a running goroutine in the panic");
    line["goroutine ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_reader_race_crash_text_is_the_known_bug_on_the_faulting_goroutine() {
    let text = crash_output();
    assert!(text.contains("addr=0x20"), "{text}");
    let g = faulting_goroutine(&text);
    let wrapped: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| format!("2026-01-02T03:04:{:02}.{:07}Z {l}\n", i % 60, i * 31))
        .collect();
    for input in [text.as_str(), wrapped.as_str()] {
        let out = log_stdin(&["-", "--json"], input.as_bytes());
        assert_eq!(out.status.code(), Some(1), "findings: exit 1");
        let d = json(&out);
        let found: Vec<_> = d
            .findings
            .iter()
            .filter(|f| f.id == "nil-reader-race")
            .collect();
        assert_eq!(found.len(), 1, "{:#?}", d.findings);
        let f = found[0];
        assert_eq!(f.confidence, Confidence::Certain, "{}", f.explanation);
        assert_eq!(f.evidence[0].goroutine, Some(g), "{:#?}", f.evidence);
        assert!(f.evidence[0].text.contains(&format!("goroutine {g} ")));
        assert!(f.evidence[0].text.contains("addr=0x20"));
        assert!(
            d.findings.iter().all(|f| f.id != "nil-deref-crash"),
            "the generic finding does not repeat the known bug"
        );
    }
    // The human report names it too.
    let out = log_stdin(&["-"], text.as_bytes());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("nil-reader-race"), "{report}");
    assert!(report.contains(&format!("goroutine {g}")), "{report}");
}

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/logs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn nsexec_lines_with_a_stage_pid_mismatch_are_memfd_shared_stage() {
    let out = wedge(&["log", &sample("memfd-stage-shared-nsexec.txt"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let d = json(&out);
    assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
    assert_eq!(d.findings[0].id, "memfd-shared-stage");
    assert_eq!(d.findings[0].confidence, Confidence::Likely);
    let out = wedge(&["log", &sample("memfd-stage-fixed-nsexec.txt")]);
    assert_eq!(out.status.code(), Some(0), "a healthy start");
}

#[test]
fn exit_codes_and_garbage() {
    let out = wedge(&["log", "/nonexistent/build.log"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
    let out = wedge(&["log"]);
    assert_eq!(out.status.code(), Some(2), "usage");
    let out = wedge(&["log", "/"]);
    assert_eq!(out.status.code(), Some(5), "a directory is no log");
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let out = log_stdin(&["-", "--json"], &garbage);
    assert_eq!(out.status.code(), Some(0));
    let d = json(&out);
    assert!(d.findings.is_empty() && d.snapshot.processes.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing traceback-like"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A dump without findings: exit 0, and no "nothing found" message.
    let out = wedge(&["log", &sample("go1.19-deadlock.txt")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}
