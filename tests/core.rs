//! `wedge core`: native and Go cores made here by real crashes give the same threads and
//! goroutines as a live capture of the same process did.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wedge::model::Diagnosis;

fn wait_core(dir: &Path, r: &mut Running) -> PathBuf {
    let _ = r.finish();
    core_in(dir)
}

fn core_json(core: &Path, extra: &[&str]) -> Diagnosis {
    let mut args = vec!["core", core.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = wedge(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn go_crash_core_gives_the_goroutines_the_live_capture_gave() {
    for (variant, flags) in [("normal", &[][..]), ("stripped", &["-ldflags=-s -w"][..])] {
        let exe = go_build("goblocked", variant, flags, &[("CGO_ENABLED", "0")]);
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(&exe);
        cmd.arg("2").env("GOTRACEBACK", "crash");
        let mut r = start_dumping(cmd, dir.path());
        r.wait_line("ready ", Duration::from_secs(10));
        let (live, _) = diagnose_json(r.pid, &[]);
        r.signal(libc::SIGQUIT); // the runtime prints every goroutine, then aborts: a core
        let core = wait_core(dir.path(), &mut r);
        let d = core_json(&core, &["--exe", exe.to_str().unwrap()]);
        let p = &d.snapshot.processes[0];
        assert_eq!(p.pid, r.pid);
        let sig = p.signal.as_ref().expect("NT_SIGINFO");
        assert_eq!(sig.signo, libc::SIGABRT, "GOTRACEBACK=crash aborts");
        let ours = &p.go.as_ref().unwrap().goroutines;
        let theirs = &live.snapshot.processes[0].go.as_ref().unwrap().goroutines;
        // Every goroutine that was parked live is in the core, parked the same way.
        for g in theirs.iter().filter(|g| g.status == "waiting") {
            let c = ours
                .iter()
                .find(|c| c.id == g.id)
                .unwrap_or_else(|| panic!("{variant}: goroutine {} missing", g.id));
            assert_eq!(
                c.wait_reason, g.wait_reason,
                "{variant}: goroutine {}",
                g.id
            );
            let names = |g: &wedge::model::Goroutine| {
                g.frames
                    .iter()
                    .map(|f| f.function.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(c), names(g), "{variant}: goroutine {} frames", g.id);
        }
        assert!(
            p.threads
                .iter()
                .all(|t| t.frames.iter().all(|f| f.function.is_some())),
            "{variant}"
        );
    }
}

#[test]
fn native_abort_core_names_the_same_frames() {
    let exe = probe("blocked_threads");
    let dir = tempfile::tempdir().unwrap();
    let mut r = start_dumping(Command::new(&exe), dir.path());
    r.wait_line("ready ", Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(5), || thread_named(
        r.pid, "waiter"
    )
    .is_some_and(|t| state_of(r.pid, t) == Some('S'))));
    r.signal(libc::SIGABRT);
    let core = wait_core(dir.path(), &mut r);
    let d = core_json(&core, &[]);
    let p = &d.snapshot.processes[0];
    assert_eq!(p.threads.len(), 4);
    assert_eq!(p.signal.as_ref().unwrap().signo, libc::SIGABRT);
    let all: Vec<String> = p.threads.iter().flat_map(functions).collect();
    for want in [
        "__lll_lock_wait_private",
        "waiter",
        "holder",
        "ticker",
        "main",
    ] {
        assert!(all.iter().any(|f| f == want), "{want} not in {all:?}");
    }

    // systemd-coredump's compressed forms open directly, with the same threads and frames.
    let raw = std::fs::read(&core).unwrap();
    let frames = |d: &Diagnosis| -> Vec<Vec<String>> {
        d.snapshot.processes[0]
            .threads
            .iter()
            .map(functions)
            .collect()
    };
    let packed: [(&str, Vec<u8>); 3] = [
        ("zst", zstd::encode_all(&raw[..], 1).unwrap()),
        ("lz4", {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            std::io::Write::write_all(&mut e, &raw).unwrap();
            e.finish().unwrap()
        }),
        ("xz", {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            std::io::Write::write_all(&mut e, &raw).unwrap();
            e.finish().unwrap()
        }),
    ];
    for (ext, bytes) in packed {
        let path = dir.path().join(format!("core.blocked.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        let z = core_json(&path, &[]);
        assert_eq!(frames(&z), frames(&d), "{ext}");
        assert!(
            z.snapshot
                .notes
                .iter()
                .any(|n| n.message.contains("-compressed")),
            "{ext}: the report says the core was inflated"
        );
        // A cut download: a clear one-line error, no panic.
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let out = wedge(&["core", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(5), "{ext}");
        assert_no_panic(&out);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("truncated"),
            "{ext}"
        );
    }
}

#[test]
fn core_errors_are_clear() {
    let out = wedge(&["core", "/nonexistent/core"]);
    assert_eq!(out.status.code(), Some(3));
    assert_no_panic(&out);
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notcore");
    std::fs::write(&text, b"hello").unwrap();
    let out = wedge(&["core", text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    // An executable is ELF but not a core.
    let out = wedge(&["core", wedge_bin()]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a core file"));
    assert_no_panic(&out);
}

/// A native hang, post-mortem: the clone-fork probe's stuck child, aborted, gives the same
/// finding from its core as a live capture of it did (the futex wait comes from the core's
/// registers and memory).
#[test]
fn a_hung_childs_core_gives_the_live_finding() {
    let exe = probe("clone_fork");
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg("buggy");
    let r = start_dumping(cmd, dir.path());
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let child: i32 = ready.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{child}/syscall"))
            .is_ok_and(|s| s.starts_with("202 "))
    }));
    let (live, _) = diagnose_json(child, &["--no-children"]);
    // SAFETY: kill(2) on the probe's child, started by this test.
    unsafe { libc::kill(child, libc::SIGABRT) };
    let core = dir.path().join("core");
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .map_or(true, |s| s.contains(") Z"))
                && core.exists()
        }),
        "the child dumped core"
    );
    drop(r);
    let out = wedge(&[
        "core",
        core.to_str().unwrap(),
        "--json",
        "--exe",
        exe.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let post: Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    let ids = |d: &Diagnosis| d.findings.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&post), ids(&live));
    assert_eq!(ids(&post), vec!["clone-fork-mix"]);
    // The auxiliary vector: the page size, the entry point, and where the vDSO is.
    let p = &post.snapshot.processes[0];
    assert_eq!(p.auxv.get("AT_PAGESZ"), Some(&4096));
    assert!(p.auxv.contains_key("AT_ENTRY"));
    let vdso = p.auxv["AT_SYSINFO_EHDR"];
    assert!(
        p.mappings
            .iter()
            .any(|m| m.start == vdso && m.path.as_deref() == Some("[vdso]"))
    );
    let t = &post.snapshot.processes[0].threads[0];
    let sys = t
        .syscall
        .as_ref()
        .expect("the syscall from the core's registers");
    assert_eq!(sys.name.as_deref(), Some("futex"));
    assert_eq!(sys.futex.as_ref().unwrap().value, Some(2));
    assert_eq!(post.findings[0].evidence[0].tid, Some(child));
}
