//! `wedge bundle` and `wedge analyze` end to end: a bundle of a live probe analyzes, with
//! the probe gone, to the findings it was made with; secrets planted in a process's
//! environment, arguments and config files appear nowhere in the archive (and do with
//! `--no-redact`, so the search can fail); logs and cores bundle too; a process in D state
//! does not hold the bundle up; damaged, foreign and missing files give clear errors.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn json_of(out: &Output) -> Value {
    assert_no_panic(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): rc={:?} stdout={} stderr={}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `wedge bundle ARGS -o OUT --json`, which must succeed.
fn bundle(inputs: &[&str], out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["bundle"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["-o", out.to_str().unwrap(), "--json"]);
    args.extend_from_slice(extra);
    let o = wedge(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    json_of(&o)
}

/// `wedge analyze FILE --json`.
fn analyze(file: &Path) -> (Value, Output) {
    let o = wedge(&["analyze", file.to_str().unwrap(), "--json"]);
    (json_of(&o), o)
}

/// The archive's whole tar stream, decompressed: headers, names and contents.
fn tar_bytes(file: &Path) -> Vec<u8> {
    zstd::decode_all(std::fs::File::open(file).unwrap()).unwrap()
}

fn ids(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn live_bundle_analyzes_offline_to_identical_findings() {
    let mut cmd = Command::new(probe("pipe_waits"));
    cmd.arg("orphan");
    let (r, pids) = start_ready(cmd);
    let parent = pids[0];
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{parent}/syscall"))
            .is_ok_and(|s| s.starts_with("0 "))
    }));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.tar.zst");
    let made = bundle(&[&parent.to_string()], &file, &[]);
    // The probe is gone before the bundle is read: nothing can come from it.
    kill_descendants(parent);
    drop(r);
    let made_findings = &made["inputs"][0]["findings"];
    assert_eq!(ids(made_findings), vec!["orphan-pipe-wait"]);
    let (a, out) = analyze(&file);
    assert_eq!(out.status.code(), Some(1), "findings: exit 1");
    assert_eq!(&a["diagnoses"][0]["findings"], made_findings);
    assert_eq!(a["bundle"]["redacted"], Value::Bool(true));
    let snap = &a["diagnoses"][0];
    assert_eq!(snap["source"]["pid"], parent);
    // As on another machine: no network, a pid namespace of its own with a fresh /proc.
    let o = Command::new("unshare")
        .args([
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            wedge_bin(),
            "analyze",
        ])
        .arg(&file)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(&json_of(&o)["diagnoses"][0]["findings"], made_findings);
    // The members the issue asks for are there.
    let tar = tar_bytes(&file);
    for m in [
        "manifest.json",
        "snapshot.json",
        "report.md",
        &format!("proc/{parent}/status"),
        &format!("proc/{parent}/maps"),
        &format!("proc/{parent}/task/{parent}/stack"),
        "binaries.json",
        "host/os-release",
        "host/facts.json",
        "runtimes/runc.txt",
        "runtimes/podman.txt",
    ] {
        assert!(
            memchr::memmem::find(&tar, m.as_bytes()).is_some(),
            "{m} missing from the bundle"
        );
    }
    // The human report names the bundle and the finding.
    let o = wedge(&["analyze", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("orphan-pipe-wait"), "{text}");
    assert!(text.contains("Bundle"), "{text}");
}

#[test]
fn secrets_never_appear_in_the_bundle() {
    const ENV: &str = "planted-env-secret-4417";
    const ARG: &str = "planted-arg-secret-9021";
    const CFG: &str = "planted-config-secret-3360";
    const YAML: &str = "planted-yaml-secret-7781";
    let dir = tempfile::tempdir().unwrap();
    let json_cfg = dir.path().join("app.json");
    std::fs::write(
        &json_cfg,
        format!(r#"{{"listen": ":8080", "db": {{"user": "app", "password": "{CFG}"}}}}"#),
    )
    .unwrap();
    let yaml_cfg = dir.path().join("creds.yaml");
    std::fs::write(&yaml_cfg, format!("region: eu\napi_token: {YAML}\n")).unwrap();
    // A shell that holds the JSON config open (its children inherit it), names the YAML
    // one on its command line, and carries secrets in its environment and arguments.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec 3<"$1"; echo ready $$; while :; do sleep 1; done"#)
        .arg("sh")
        .arg(&json_cfg)
        .arg(format!("--config={}", yaml_cfg.display()))
        .arg(format!("--api-token={ARG}"))
        .env("AWS_SECRET_ACCESS_KEY", ENV);
    let (r, pids) = start_ready(cmd);
    let pid = pids[0].to_string();
    let redacted = dir.path().join("redacted.tar.zst");
    let made = bundle(&[&pid], &redacted, &[]);
    let plain = dir.path().join("plain.tar.zst");
    bundle(&[&pid], &plain, &["--no-redact"]);
    kill_descendants(pids[0]);
    drop(r);
    assert!(made["redactions"].as_u64().unwrap() >= 4, "{made}");

    let tar = tar_bytes(&redacted);
    for s in [ENV, ARG, CFG, YAML] {
        assert!(
            memchr::memmem::find(&tar, s.as_bytes()).is_none(),
            "{s} is in the bundle"
        );
    }
    // The configs themselves were collected, with their harmless values intact.
    for present in [
        "\"listen\": \":8080\"",
        "region: eu",
        "<redacted: 23 bytes>",
    ] {
        assert!(
            memchr::memmem::find(&tar, present.as_bytes()).is_some(),
            "{present} missing"
        );
    }
    // Without redaction each secret is there: the search above can fail.
    let tar = tar_bytes(&plain);
    for s in [ENV, ARG, CFG, YAML] {
        assert!(
            memchr::memmem::find(&tar, s.as_bytes()).is_some(),
            "{s} should be in the unredacted bundle"
        );
    }
    // The redacted bundle still analyzes.
    let (a, out) = analyze(&redacted);
    assert_eq!(out.status.code(), Some(0));
    let cmdline = a["diagnoses"][0]["processes"][0]["cmdline"].to_string();
    assert!(
        cmdline.contains("--api-token=<redacted: 23 bytes>"),
        "{cmdline}"
    );
}

#[test]
fn log_and_core_bundles_give_the_findings_of_log_and_core() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/logs/reader-race-probe-race-go1.19.txt");
    let dir = tempfile::tempdir().unwrap();
    // A core of a native crash (the nil_deref probe).
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    let mut r = start_dumping(Command::new(probe("nil_deref")), &run_dir);
    r.finish();
    let core = core_in(&run_dir);
    let file = dir.path().join("b.tar.zst");
    let made = bundle(
        &[sample.to_str().unwrap(), core.to_str().unwrap()],
        &file,
        &[],
    );
    let log_direct = json_of(&wedge(&["log", sample.to_str().unwrap(), "--json"]));
    let core_direct = json_of(&wedge(&["core", core.to_str().unwrap(), "--json"]));
    assert_eq!(made["inputs"][0]["kind"], "log");
    assert_eq!(made["inputs"][1]["kind"], "core");
    assert_eq!(ids(&made["inputs"][0]["findings"]), vec!["nil-reader-race"]);
    assert_eq!(made["inputs"][0]["findings"], log_direct["findings"]);
    assert_eq!(made["inputs"][1]["findings"], core_direct["findings"]);
    assert!(!ids(&core_direct["findings"]).is_empty());
    let (a, _) = analyze(&file);
    assert_eq!(a["diagnoses"][0]["findings"], log_direct["findings"]);
    assert_eq!(a["diagnoses"][1]["findings"], core_direct["findings"]);
    // The log itself travels with the bundle.
    let tar = tar_bytes(&file);
    assert!(
        memchr::memmem::find(&tar, b"logs/input-1/reader-race-probe-race-go1.19.txt").is_some()
    );
    assert!(memchr::memmem::find(&tar, b"snapshot-2.json").is_some());
}

#[test]
fn a_process_in_d_state_does_not_hold_the_bundle_up() {
    let r = Running::start(Command::new(probe("vfork_wait")));
    let ready = r.wait_line("ready", Duration::from_secs(5));
    let parent: i32 = ready.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(wait_until(Duration::from_secs(3), || state_of(
        parent, parent
    ) == Some('D')));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.tar.zst");
    let started = Instant::now();
    let made = bundle(&[&parent.to_string()], &file, &[]);
    assert!(started.elapsed() < Duration::from_secs(15));
    kill_descendants(parent);
    drop(r);
    let notes = made["collectors"].to_string();
    assert!(notes.contains("D state"), "{notes}");
    let (_, out) = analyze(&file);
    assert!(matches!(out.status.code(), Some(0 | 1)));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // Missing files and processes: exit 3.
    let o = wedge(&["analyze", "/nonexistent/b.tar.zst"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    let out = dir.path().join("x.tar.zst");
    let o = wedge(&["bundle", "/nonexistent/core", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    let o = wedge(&["bundle", "999999999", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(!out.exists(), "no bundle written for a failed run");

    // Not a bundle: garbage, a plain zstd file, a directory.
    let garbage = dir.path().join("garbage.tar.zst");
    std::fs::write(&garbage, b"this is not an archive at all").unwrap();
    let o = wedge(&["analyze", garbage.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5));
    assert!(err(&o).contains("not a wedge bundle"), "{}", err(&o));
    assert_no_panic(&o);
    let zst = dir.path().join("text.zst");
    std::fs::write(&zst, zstd::encode_all(&b"hello world"[..], 3).unwrap()).unwrap();
    let o = wedge(&["analyze", zst.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert_no_panic(&o);
    let o = wedge(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));

    // A real bundle of a log, then damaged three ways.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/logs/go1.19-nil-deref.txt");
    let good = dir.path().join("good.tar.zst");
    bundle(&[sample.to_str().unwrap()], &good, &[]);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = wedge(&["analyze", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(err(&o).contains("damaged"), "{}", err(&o));
    assert_no_panic(&o);

    // One member altered, the manifest left as it was: the sha256 says so.
    let tar = tar_bytes(&good);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut no_manifest = tar::Builder::new(Vec::new());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == "report.md" {
            data.extend_from_slice(b"tampered\n");
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder
            .append_data(&mut h.clone(), &name, &data[..])
            .unwrap();
        if name != "manifest.json" {
            no_manifest.append_data(&mut h, &name, &data[..]).unwrap();
        }
    }
    let tampered = dir.path().join("tampered.tar.zst");
    std::fs::write(
        &tampered,
        zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let o = wedge(&["analyze", tampered.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(
        err(&o).contains("report.md does not match its sha256"),
        "{}",
        err(&o)
    );
    let headless = dir.path().join("headless.tar.zst");
    std::fs::write(
        &headless,
        zstd::encode_all(&no_manifest.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let o = wedge(&["analyze", headless.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(err(&o).contains("no manifest.json"), "{}", err(&o));

    // Writing where nothing can be written.
    let o = wedge(&[
        "bundle",
        sample.to_str().unwrap(),
        "-o",
        "/nonexistent/dir/b.tar.zst",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert_no_panic(&o);
}

#[test]
fn run_bundles_the_hang_it_catches() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hang.tar.zst");
    let mut child = Command::new(wedge_bin())
        .args(["run", "--hang-after", "1s", "--bundle"])
        .arg(&file)
        .arg("--")
        .arg(probe("clone_fork"))
        .arg("buggy")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready "), "{line}");
    let parent: i32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let said = read_until(&mut err, &["bundle written", "--bundle:"]);
    kill_descendants(parent);
    // SAFETY: kill(2) on the probe this test started (through wedge).
    unsafe { libc::kill(parent, libc::SIGKILL) };
    let _ = child.wait();
    assert!(said.contains("bundle written"), "{said}");
    let (a, out) = analyze(&file);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        ids(&a["diagnoses"][0]["findings"]).contains(&"clone-fork-mix".to_string()),
        "{}",
        a["diagnoses"][0]["findings"]
    );
}

#[test]
fn without_ptrace_permission_a_partial_bundle_is_written_and_said() {
    use std::os::unix::fs::PermissionsExt;
    let mut cmd = Command::new("sleep");
    cmd.arg("60");
    let probe = Running::start(cmd);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = dir.path().join("partial.tar.zst");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            wedge_bin(),
            "bundle",
            &probe.pid.to_string(),
            "-o",
        ])
        .arg(&file)
        .arg("--json")
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = json_of(&out);
    // What nobody may not read is said, not silently missing.
    let notes = made["collectors"].to_string();
    assert!(notes.contains("environ"), "{notes}");
    let (a, o) = analyze(&file);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        a["diagnoses"][0]["processes"][0]["stopped"],
        Value::Bool(false)
    );
}

#[test]
fn a_go_bundle_keeps_its_goroutines_and_known_bug() {
    let exe = wedge::probes::build("reader_race", &probe_dir())
        .unwrap_or_else(|e| panic!("the reader_race probe needs Go (golang-go): {e}"));
    let mut cmd = Command::new(exe);
    cmd.arg("hold");
    let r = Running::start(cmd);
    r.wait_line("ready ", Duration::from_secs(20));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("go.tar.zst");
    let made = bundle(&[&r.pid.to_string()], &file, &[]);
    drop(r);
    assert_eq!(ids(&made["inputs"][0]["findings"]), vec!["nil-reader-race"]);
    let (a, _) = analyze(&file);
    let d = &a["diagnoses"][0];
    assert_eq!(d["findings"], made["inputs"][0]["findings"]);
    let goroutines = d["processes"][0]["go"]["goroutines"].as_array().unwrap();
    assert!(
        goroutines.iter().any(|g| g["frames"]
            .to_string()
            .contains("main.(*readerAtCloser).ReadAt")),
        "the racing goroutines' frames are in the bundle"
    );
    // The binary's buildinfo travels too.
    let tar = tar_bytes(&file);
    assert!(memchr::memmem::find(&tar, b"\"version\": \"go1.").is_some());
}

/// `wedge trace --bundle FILE -- ARGS`: its status, and what it said on stderr.
fn trace_bundle(file: &Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(wedge_bin())
        .args(["trace", "--bundle"])
        .arg(file)
        .arg("--")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trace_bundles_its_timeline_and_its_crash() {
    let dir = tempfile::tempdir().unwrap();
    // A risk on a run that did not hang: the timeline carries it.
    let file = dir.path().join("trace.tar.zst");
    let exe = probe("clone_fork");
    let (code, said) = trace_bundle(&file, &[exe.as_os_str(), "buggy".as_ref(), "exit".as_ref()]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("bundle written"), "{said}");
    let (a, out) = analyze(&file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(a["bundle"]["inputs"][0]["kind"], "trace");
    assert_eq!(ids(&a["diagnoses"][0]["findings"]), vec!["clone-fork-mix"]);
    let t = &a["traces"][0];
    assert_eq!(t["findings"][0]["risk"], Value::Bool(true));
    assert!(t["timeline"]["events"].as_array().unwrap().len() > 3);
    let text =
        String::from_utf8_lossy(&wedge(&["analyze", file.to_str().unwrap()]).stdout).into_owned();
    assert!(
        text.contains("raw clone") || text.contains("raw_clone"),
        "{text}"
    );

    // A crash in the traced tree: its live capture travels with the timeline.
    let file = dir.path().join("crash.tar.zst");
    let script = format!("{}; echo \"after $?\"", probe("nil_deref").display());
    let (code, said) = trace_bundle(&file, &["sh".as_ref(), "-c".as_ref(), script.as_ref()]);
    assert_eq!(code, Some(0), "{said}");
    let (a, _) = analyze(&file);
    assert!(
        ids(&a["diagnoses"][0]["findings"]).contains(&"nil-deref-crash".to_string()),
        "{}",
        a["diagnoses"][0]["findings"]
    );
    assert!(
        !a["diagnoses"][0]["processes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_compressed_log_is_read_like_triage_reads_it_and_a_bundle_is_not_rebundled() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/logs/reader-race-probe-race-go1.19.txt");
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("ci.log.zst");
    std::fs::write(
        &zst,
        zstd::encode_all(&std::fs::read(&sample).unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let file = dir.path().join("b.tar.zst");
    let made = bundle(&[zst.to_str().unwrap()], &file, &[]);
    assert_eq!(made["inputs"][0]["kind"], "log");
    assert_eq!(ids(&made["inputs"][0]["findings"]), vec!["nil-reader-race"]);
    // The compressed stream is not copied: redaction could not read inside it.
    assert!(
        made["collectors"]
            .to_string()
            .contains("compressed, not copied")
    );
    let o = wedge(&["bundle", file.to_str().unwrap(), "-o", "/dev/null"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already a bundle"));
}
