//! `wedge triage` end to end over real artifacts: the real logs of samples/logs (rewritten as
//! another CI run would print them: other goroutine ids, addresses, timestamps), a real core
//! dumped by a probe, JUnit XML whose failure text is a real Go panic; grouping, history
//! across runs with --db, every output format, and what must not stop a scan (unreadable
//! entries, FIFOs, symlink loops, damaged cores and archives, a corrupt database).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn sample(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/logs")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

/// The sample as another run prints it: goroutine ids shifted, long addresses changed, each
/// line behind a CI timestamp of that run, filler lines around it.
fn rerun(text: &str, run: u32) -> String {
    let mut out = String::new();
    for i in 0..50 {
        out.push_str(&format!(
            "2026-01-0{}T03:04:{:02}.{:07}Z Step {i}: RUN make test-{run}\n",
            run % 9 + 1,
            i % 60,
            run * 7919 + i
        ));
    }
    for (n, line) in text.lines().enumerate() {
        let mut l = String::new();
        let mut rest = line;
        // goroutine N -> goroutine N+run*100 (every mention, so the report stays coherent).
        while let Some(i) = rest.find("goroutine ") {
            l.push_str(&rest[..i + 10]);
            rest = &rest[i + 10..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                let id: u64 = rest[..digits].parse().unwrap();
                l.push_str(&(id + u64::from(run) * 100).to_string());
                rest = &rest[digits..];
            }
        }
        l.push_str(rest);
        // 0xc000… heap addresses: another run, another heap.
        let l = l.replace("0xc000", &format!("0xc{:03x}", 0x100 + run));
        out.push_str(&format!(
            "2026-01-0{}T05:{:02}:{:02}.{:07}Z {l}\n",
            run % 9 + 1,
            n / 60 % 60,
            n % 60,
            run * 31 + n as u32
        ));
    }
    out.push_str("2026-01-01T06:00:00.0000000Z ##[error]Process completed with exit code 2.\n");
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit_with(test: &str, text: &str) -> String {
    let esc = xml_escape(text);
    let test = xml_escape(test);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1">
  <testsuite name="github.com/example/pkg" tests="2" failures="1">
    <testcase classname="github.com/example/pkg" name="TestFine" time="0.01"/>
    <testcase classname="github.com/example/pkg" name="{test}" time="1.20">
      <failure message="Failed">{esc}</failure>
      <system-out>=== RUN   {test}</system-out>
    </testcase>
  </testsuite>
</testsuites>
"#
    )
}

fn triage(args: &[&str]) -> Output {
    let mut a = vec!["triage"];
    a.extend_from_slice(args);
    let out = wedge(&a);
    assert_no_panic(&out);
    out
}

fn triage_json(args: &[&str]) -> (Value, Output) {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--format", "json"]);
    let out = triage(&a);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): rc={:?} stdout={} stderr={}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out)
}

fn groups(v: &Value) -> &Vec<Value> {
    v["groups"].as_array().unwrap()
}

fn group_of(v: &Value, pred: impl Fn(&Value) -> bool) -> Vec<&Value> {
    groups(v).iter().filter(|g| pred(g)).collect()
}

fn write(dir: &Path, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// A real core: probes/blocked_threads aborted (as tests/core.rs makes one).
fn abort_core(dir: &Path) -> PathBuf {
    let exe = probe("blocked_threads");
    let work = tempfile::tempdir().unwrap();
    let mut r = start_dumping(Command::new(&exe), work.path());
    r.wait_line("ready ", Duration::from_secs(10));
    r.signal(libc::SIGABRT);
    let _ = r.finish();
    let core = core_in(work.path());
    let to = dir.join("cores").join("core.blocked_threads");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(&core, &to).unwrap();
    // The same core as systemd-coredump stores it: recognized by its bytes, not its name.
    let raw = std::fs::read(&core).unwrap();
    let packed = zstd::encode_all(&raw[..], 1).unwrap();
    std::fs::write(dir.join("cores").join("blocked.dump"), packed).unwrap();
    to
}

/// The mixed artifacts of one CI run.
fn ci_run(dir: &Path, run: u32) {
    let race = sample("reader-race-probe-race-go1.19.txt");
    write(dir, "logs/buildkit-a.log", rerun(&race, run));
    write(dir, "logs/buildkit-b.log", rerun(&race, run + 1));
    write(
        dir,
        "logs/unit/nilderef.log",
        rerun(&sample("go1.19-nil-deref.txt"), run),
    );
    write(
        dir,
        "logs/unit/deadlock.txt",
        rerun(&sample("go1.19-deadlock.txt"), run),
    );
    write(
        dir,
        "logs/build.log",
        rerun(
            "everything fine\nok  \tgithub.com/example/pkg\t0.01s\n",
            run,
        ),
    );
    write(
        dir,
        "junit/report.xml",
        junit_with(
            "TestNested",
            &rerun(&sample("go1.19-nested-panic.txt"), run),
        ),
    );
    // A binary that is not a core: counted and skipped.
    let mut bin = vec![0u8, 1, 2, 3, 0xff];
    bin.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
    write(dir, "artifacts/cache.bin", bin);
}

#[test]
fn mixed_artifacts_group_by_fingerprint_and_history_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ci_run(d, 1);
    abort_core(d);
    // A symlink loop must not loop.
    std::os::unix::fs::symlink("..", d.join("logs/unit/up")).unwrap();
    let keep = tempfile::tempdir().unwrap();
    let db = keep.path().join("history.sqlite");
    let dir_s = d.to_str().unwrap();
    let db_s = db.to_str().unwrap();

    let (v, out) = triage_json(&[dir_s, "--db", db_s]);
    assert_eq!(out.status.code(), Some(1), "a known bug: exit 1");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["schema_version"], 1);
    let files = &v["files"];
    assert_eq!(files["logs"], 5, "{files}");
    assert_eq!(files["junit"], 1, "{files}");
    assert_eq!(files["cores"], 2, "{files}");
    assert_eq!(files["skipped_binary"], 1, "{files}");

    // The same BuildKit crash in two logs (other goroutine ids, addresses, timestamps):
    // one group, the known bug, with its fixed version.
    let known = group_of(&v, |g| g["signature"] == "nil-reader-race");
    assert_eq!(known.len(), 1, "{:#}", v["groups"]);
    let k = known[0];
    assert_eq!(k["status"], "known_bug");
    assert_eq!(k["count"], 2);
    assert!(k["fixed_in"].as_str().unwrap().contains("buildkit"));
    let arts: Vec<&str> = k["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        arts.iter().any(|a| a.ends_with("buildkit-a.log")),
        "{arts:?}"
    );
    assert!(
        arts.iter().any(|a| a.ends_with("buildkit-b.log")),
        "{arts:?}"
    );
    let fp = k["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 12);
    assert_eq!(k["frames"][0], "main.(*readerAtCloser).ReadAt");

    // Different failures stay apart.
    let nil = group_of(&v, |g| g["signature"] == "nil-deref-crash");
    assert_eq!(nil.len(), 1);
    assert_eq!(nil[0]["status"], "generic");
    let deadlock = group_of(&v, |g| {
        g["title"]
            .as_str()
            .unwrap()
            .contains("all goroutines are asleep")
    });
    assert_eq!(deadlock.len(), 1);
    assert_eq!(deadlock[0]["status"], "unknown");
    // The JUnit failure text is analyzed and attributed to its test case.
    let nested = group_of(&v, |g| {
        g["title"].as_str().unwrap().contains("Go panic: first")
    });
    assert_eq!(nested.len(), 1, "{:#}", v["groups"]);
    assert_eq!(nested[0]["tests"][0], "github.com/example/pkg.TestNested");
    // The core: an abort no signature explains, with the program's frames.
    let core = group_of(&v, |g| {
        g["title"]
            .as_str()
            .unwrap()
            .starts_with("fatal signal SIGABRT")
    });
    assert_eq!(core.len(), 1, "{:#}", v["groups"]);
    assert_eq!(core[0]["status"], "unknown");
    assert_eq!(
        core[0]["count"], 2,
        "plain and zstd-compressed: one fingerprint"
    );
    assert!(!core[0]["frames"].as_array().unwrap().is_empty());
    let fps: std::collections::HashSet<&str> = groups(&v)
        .iter()
        .map(|g| g["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fps.len(), groups(&v).len());
    let h1 = k["history"].clone();
    assert_eq!(h1["total_count"], 2);
    assert_eq!(h1["runs"], 1);

    // A second CI run, other ids again: the same fingerprints, history adds up.
    std::thread::sleep(Duration::from_millis(20));
    let dir2 = tempfile::tempdir().unwrap();
    ci_run(dir2.path(), 5);
    let (v2, out2) = triage_json(&[dir2.path().to_str().unwrap(), "--db", db_s]);
    assert_eq!(out2.status.code(), Some(1));
    let k2 = group_of(&v2, |g| g["signature"] == "nil-reader-race")[0];
    assert_eq!(k2["fingerprint"], fp, "same bug, same fingerprint");
    let h2 = &k2["history"];
    assert_eq!(h2["first_seen"], h1["first_seen"], "first seen stays");
    assert_ne!(h2["last_seen"], h1["last_seen"]);
    assert_eq!(h2["total_count"], 4, "2 + 2 across runs");
    assert_eq!(h2["runs"], 2);
    // The core was only in the first run: still a group there, not here.
    for g in groups(&v2) {
        let same = groups(&v)
            .iter()
            .find(|o| o["fingerprint"] == g["fingerprint"]);
        let same = same.unwrap_or_else(|| panic!("new fingerprint in run 2: {g:#}"));
        assert_eq!(g["history"]["runs"], 2, "{g:#}");
        assert_eq!(
            g["history"]["total_count"].as_u64().unwrap(),
            same["count"].as_u64().unwrap() + g["count"].as_u64().unwrap()
        );
    }
    // The table shows the history columns.
    let t = triage(&[dir2.path().to_str().unwrap(), "--db", db_s]);
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        text.contains("FIRST SEEN") && text.contains("6 in 3 run(s)"),
        "{text}"
    );
}

/// A directory with one known bug, one unknown failure, and JUnit.
fn small_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a.log",
        rerun(&sample("reader-race-probe-race-go1.19.txt"), 1),
    );
    write(d, "b.log", rerun(&sample("go1.25.5-test-timeout.txt"), 2));
    write(
        d,
        "junit.xml",
        junit_with(
            "Test\"Odd\", 100%: <x>",
            &sample("go1.25.5-nested-panic.txt"),
        ),
    );
    dir
}

#[test]
fn every_format_is_valid() {
    let dir = small_dir();
    let d = dir.path().to_str().unwrap();

    let (v, out) = triage_json(&[d]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["summary"]["known_bugs"], 1);
    assert_eq!(v["summary"]["unknown"], 2, "{v:#}");

    let out = triage(&[d, "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = String::from_utf8(out.stdout).unwrap();
    // Well-formed (the JUnit reader checks end tags) and one failed case per group: read
    // back by wedge's own JUnit reader.
    let cases = wedge::triage::junit::cases(&xml).expect("well-formed JUnit XML");
    assert_eq!(cases.iter().filter(|c| c.failed).count(), 3, "{xml}");
    assert!(xml.contains("<testcase classname=\"wedge.triage.known_bug\""));
    assert!(wedge::triage::junit::sniff(xml.as_bytes()));

    let out = triage(&[d, "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    let gh = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = gh.lines().collect();
    assert_eq!(lines.len(), 3, "{gh}");
    for l in &lines {
        assert!(
            l.starts_with("::error ") || l.starts_with("::warning "),
            "{l}"
        );
        let (props, msg) = l.split_once("::").unwrap().1.split_once("::").unwrap();
        assert!(!msg.contains('\n') && !msg.contains('\r'));
        // Properties: `key=value` separated by commas; values escaped.
        for kv in props.trim_start_matches("error ").split(',') {
            let (k, val) = kv.split_once('=').unwrap_or_else(|| panic!("{kv} in {l}"));
            assert!(["file", "line", "title"].contains(&k), "{k}");
            assert!(!val.contains(':'), "{val}");
        }
    }
    assert!(gh.contains("title=wedge%3A nil-reader-race%3A"), "{gh}");

    let out = triage(&[d, "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(1));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("### wedge triage"));
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 4, "header + 3 groups: {md}");
    let cols = rows[0].matches(" | ").count();
    assert!(
        rows.iter().all(|r| r.matches(" | ").count() == cols),
        "{md}"
    );
    assert!(md.contains("**known bug**"));

    let out = triage(&[d, "--format", "table"]);
    assert_eq!(out.status.code(), Some(1));
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(
        t.contains("nil-reader-race") && t.contains("known bug"),
        "{t}"
    );
}

#[test]
fn exit_codes_say_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "clean.log", "all good\n");
    let out = triage(&[d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "nothing found");
    assert!(String::from_utf8_lossy(&out.stdout).contains("No failures found"));
    write(d, "deadlock.log", sample("go1.25.5-deadlock.txt"));
    let out = triage(&[d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "unknown failures only");
    write(d, "bk.log", sample("reader-race-probe-race-go1.19.txt"));
    let out = triage(&[d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a known bug dominates");
    // A named input that does not exist.
    let missing = d.join("nope");
    let out = triage(&[d.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope: no such file"));
    // Usage.
    assert_eq!(triage(&[]).status.code(), Some(2));
    assert_eq!(
        triage(&[d.to_str().unwrap(), "--format", "xml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn unreadable_special_and_malformed_inputs_do_not_stop_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "bk.log", sample("reader-race-probe-race-go1.19.txt"));
    // A dangling symlink: unreadable, listed, skipped.
    std::os::unix::fs::symlink(d.join("gone"), d.join("dangling.log")).unwrap();
    // A FIFO nobody writes to: never opened (opening it would block).
    let fifo = d.join("pipe.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // A core cut after its ELF header; a .tar.zst that is not zstd; a zstd stream cut short;
    // a fake bundle (a zstd tar with an empty manifest.json and snapshot.json).
    let mut core = b"\x7fELF\x02\x01\x01\x00".to_vec();
    core.resize(16, 0);
    core.extend_from_slice(&[4, 0, 0x3e, 0]);
    core.resize(40, 0);
    write(d, "core.truncated", &core);
    write(d, "garbage.tar.zst", b"this is not an archive at all\n");
    write(
        d,
        "broken.xml",
        "<?xml version=\"1.0\"?>\n<testsuite><testcase name=\"T\"><failure>panic: x</testsuite>",
    );
    let packed = zstd::encode_all(&vec![b'x'; 100_000][..], 3).unwrap();
    write(d, "cut.tar.zst", &packed[..packed.len() / 2]);
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in [("manifest.json", "{}"), ("snapshot.json", "{}")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    write(d, "bundle.tar.zst", zstd::encode_all(&tar[..], 3).unwrap());

    let started = std::time::Instant::now();
    let (v, out) = triage_json(&[d.to_str().unwrap()]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "blocked on the FIFO?"
    );
    assert_eq!(out.status.code(), Some(1), "the known bug is still found");
    assert_eq!(v["summary"]["known_bugs"], 1);
    assert_eq!(v["files"]["skipped_special"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unreadable = v["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert!(
        unreadable[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("dangling.log")
    );
    assert!(stderr.contains("dangling.log"), "{stderr}");
    let errors = v["errors"].as_array().unwrap();
    let reason = |name: &str| -> String {
        errors
            .iter()
            .find(|e| e["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in {errors:?}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason("core.truncated").contains("core"), "{errors:?}");
    assert!(reason("garbage.tar.zst").contains("not a zstd archive"));
    assert!(reason("cut.tar.zst").contains("zstd"), "{errors:?}");
    // The reader's "not a wedge bundle (…)": this fake's manifest is empty.
    assert!(reason("bundle.tar.zst").contains("bundle"), "{errors:?}");
    assert!(reason("broken.xml").contains("malformed XML"), "{errors:?}");
    assert_eq!(errors.len(), 5, "{errors:?}");
    // Files named .tar.zst count as bundles, damaged or not; the truncated core as a core.
    assert_eq!(v["files"]["bundles"], 3);
    assert_eq!(v["files"]["cores"], 1);
    for name in [
        "core.truncated",
        "garbage.tar.zst",
        "bundle.tar.zst",
        "broken.xml",
    ] {
        assert!(stderr.contains(name), "{name} not on stderr: {stderr}");
    }

    // Only damaged artifacts, nothing found: exit 5, not "clean".
    let bad = tempfile::tempdir().unwrap();
    write(bad.path(), "core", &core);
    let out = triage(&[bad.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    // A named FIFO is skipped too, not blocked on.
    let out = triage(&[fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn compressed_logs_are_read_like_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = rerun(&sample("go1.25.5-deadlock.txt"), 3);
    write(d, "plain.log", &text);
    write(
        d,
        "job.log.zst",
        zstd::encode_all(text.as_bytes(), 3).unwrap(),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(
        &mut gz,
        rerun(&sample("go1.25.5-deadlock.txt"), 4).as_bytes(),
    )
    .unwrap();
    write(d, "job.log.gz", gz.finish().unwrap());
    // A gzip stream cut short: a clear error naming gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.repeat(50).as_bytes()).unwrap();
    let packed = gz.finish().unwrap();
    write(d, "cut.log.gz", &packed[..packed.len() / 2]);
    let (v, out) = triage_json(&[d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "unknown failures only");
    assert_eq!(v["files"]["logs"], 4, "{:#}", v["files"]);
    let g = groups(&v);
    assert_eq!(g.len(), 1, "{g:#?}");
    assert_eq!(g[0]["count"], 3, "plain, zstd and gzip: one fingerprint");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("gzip"),
        "{errors:?}"
    );
}

#[test]
fn a_corrupt_database_is_a_clear_error() {
    let dir = small_dir();
    let d = dir.path().to_str().unwrap();
    let db = dir.path().join("junk.db");
    std::fs::write(&db, vec![0x42u8; 10_000]).unwrap();
    let out = triage(&[d, "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an SQLite database"), "{err}");
    assert!(err.contains("junk.db"), "{err}");
    // An SQLite file cut in half.
    let good = dir.path().join("good.db");
    let out = triage(&[d, "--db", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = triage(&[d, "--db", cut.to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_real_bundle_groups_with_the_log_it_was_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = write(
        d,
        "job-1/build.log",
        sample("reader-race-probe-race-go1.19.txt"),
    );
    let bundle = d.join("job-2/support.tar.zst");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    let out = wedge(&[
        "bundle",
        log.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (v, out) = triage_json(&[d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a known bug");
    assert_eq!(v["files"]["bundles"], 1);
    assert_eq!(v["files"]["logs"], 1);
    assert!(
        v["errors"].as_array().unwrap().is_empty(),
        "{}",
        v["errors"]
    );
    let g = group_of(&v, |g| g["signature"] == "nil-reader-race");
    assert_eq!(
        g.len(),
        1,
        "one fingerprint for the log and its bundle: {v:#}"
    );
    assert_eq!(g[0]["count"], 2);
    assert_eq!(g[0]["artifacts"].as_array().unwrap().len(), 2);
}
