//! The log scanner on real runtime output (samples/logs/, see its README), wrapped in CI
//! prefixes, fed in odd chunk sizes, cut short, and on garbage.

use super::*;
use crate::model::Goroutine;

fn sample(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/logs")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn scan(text: &[u8]) -> LogScan {
    scan_bytes(text)
}

fn only_dump(s: &LogScan) -> &Dump {
    assert_eq!(s.dumps.len(), 1, "{:#?}", s.dumps);
    &s.dumps[0].0
}

fn goroutine(d: &Dump, id: i64) -> &Goroutine {
    d.goroutines
        .iter()
        .find(|g| g.id == id)
        .unwrap_or_else(|| panic!("goroutine {id} in {:#?}", d.goroutines))
}

fn names(g: &Goroutine) -> Vec<String> {
    g.frames
        .iter()
        .flat_map(|f| {
            f.inlined
                .iter()
                .map(|i| i.function.clone())
                .chain(f.function.clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every sample and what must come out of it: dumps, goroutines, races.
const SAMPLES: &[(&str, usize, usize, usize)] = &[
    ("go1.19-sigquit-gotraceback-crash.txt", 1, 10, 0),
    ("go1.19-nil-deref.txt", 1, 1, 0),
    ("go1.19-nil-deref-gotraceback-system.txt", 1, 6, 0),
    ("go1.19-nested-panic.txt", 1, 1, 0),
    ("go1.19-race.txt", 0, 0, 1),
    ("go1.19-pprof-goroutine-debug2.txt", 1, 2, 0),
    ("go1.19-deadlock.txt", 1, 1, 0),
    ("go1.19-sigquit.txt", 1, 6, 0),
    ("go1.19-test-timeout.txt", 1, 3, 0),
    ("go1.25.5-nil-deref.txt", 1, 1, 0),
    ("go1.25.5-nil-deref-gotraceback-crash.txt", 1, 6, 0),
    ("go1.25.5-nested-panic.txt", 1, 1, 0),
    ("go1.25.5-race.txt", 0, 0, 1),
    ("go1.25.5-pprof-goroutine-debug2.txt", 1, 2, 0),
    ("go1.25.5-deadlock.txt", 1, 1, 0),
    ("go1.25.5-sigquit.txt", 1, 6, 0),
    ("go1.25.5-test-timeout.txt", 1, 3, 0),
];

#[test]
fn every_sample_gives_its_dumps_goroutines_and_races() {
    for (name, dumps, goroutines, races) in SAMPLES {
        let s = scan(&sample(name));
        assert_eq!(s.dumps.len(), *dumps, "{name}: dumps");
        assert_eq!(s.races.len(), *races, "{name}: races");
        if let Some((d, _)) = s.dumps.first() {
            assert_eq!(d.goroutines.len(), *goroutines, "{name}: goroutines");
            for g in &d.goroutines {
                assert!(
                    !g.frames.is_empty(),
                    "{name}: goroutine {} has frames",
                    g.id
                );
                for f in &g.frames {
                    assert!(f.file.is_some() && f.line.is_some(), "{name}: {f:?}");
                }
            }
        }
    }
}

#[test]
fn a_nil_dereference_names_its_goroutine_fault_and_creator() {
    // Go 1.19 prints worker as a frame of its own; Go 1.25 inlines it too, and hides the
    // gowrap wrapper that holds both.
    for (name, id) in [("go1.19-nil-deref.txt", 6), ("go1.25.5-nil-deref.txt", 18)] {
        let s = scan(&sample(name));
        let d = only_dump(&s);
        assert_eq!(d.kind, DumpKind::Panic);
        assert_eq!(
            d.panics,
            vec!["runtime error: invalid memory address or nil pointer dereference"]
        );
        let sig = d.signal.as_ref().expect("the [signal …] line");
        assert_eq!((sig.signo, sig.code, sig.addr), (11, Some(1), Some(0)));
        assert!(sig.pc.is_some_and(|pc| pc > 0x400000));
        let g = goroutine(d, id);
        assert_eq!(g.status, "running");
        assert_eq!(
            names(g),
            vec!["main.(*holder).read", "main.worker"],
            "{name}"
        );
        let lines: Vec<Option<u32>> = g
            .frames
            .iter()
            .flat_map(|f| f.inlined.iter().map(|i| i.line).chain([f.line]))
            .collect();
        assert_eq!(lines, vec![Some(22), Some(24)], "{name}");
        let c = g.created_by.as_ref().unwrap();
        assert_eq!(c.function.as_deref(), Some("main.spawn"));
        assert_eq!(c.line, Some(28));
        let p = process_of(d.clone(), Prefix::default());
        let g = &p.go.as_ref().unwrap().goroutines[0];
        assert_eq!(g.fault.as_ref().map(|f| (f.signo, f.addr)), Some((11, 0)));
        assert_eq!(p.signal.as_ref().and_then(|s| s.goroutine), Some(id));
    }
    // Go 1.21+: "created by X in goroutine N".
    let s = scan(&sample("go1.25.5-nil-deref.txt"));
    assert_eq!(goroutine(only_dump(&s), 18).parent_id, Some(1));
}

#[test]
fn go_1_25_crash_headers_and_pcs() {
    let s = scan(&sample("go1.25.5-nil-deref-gotraceback-crash.txt"));
    let d = only_dump(&s);
    let g = goroutine(d, 6);
    let sig = d.signal.as_ref().unwrap();
    // GOTRACEBACK=crash prints pcs: the faulting frame's is the signal's.
    let at = g.frames.iter().position(|f| f.pc == sig.pc.unwrap());
    let at = at.expect("a frame at the faulting pc");
    // worker and read are inlined into the goroutine's wrapper: the physical frame.
    assert_eq!(g.frames[at].function.as_deref(), Some("main.spawn.gowrap1"));
    let inl: Vec<&str> = g.frames[at]
        .inlined
        .iter()
        .map(|i| i.function.as_str())
        .collect();
    assert_eq!(inl, vec!["main.(*holder).read", "main.worker"]);
    assert!(names(g).contains(&"runtime.sigpanic".to_string()));
    // A SIGQUIT with GOTRACEBACK=crash adds each M's record: its g0 stack and registers.
    let s = scan(&sample("go1.19-sigquit-gotraceback-crash.txt"));
    let d = only_dump(&s);
    assert_eq!(d.threads.len(), 4, "m=0 … m=3");
    assert!(d.threads[1..].iter().all(|t| !t.frames.is_empty()));
    assert!(
        d.threads
            .iter()
            .any(|t| t.registers.as_ref().is_some_and(|r| r.get("rip").is_some())),
        "{:#?}",
        d.threads
    );
}

#[test]
fn headers_of_every_release() {
    for (line, id, status, reason, minutes, locked) in [
        ("goroutine 1 [running]:", 1, "running", None, None, false),
        (
            "goroutine 7 [chan receive, 3 minutes]:",
            7,
            "waiting",
            Some("chan receive"),
            Some(3),
            false,
        ),
        (
            "goroutine 9 [syscall, 12 minutes, locked to thread]:",
            9,
            "syscall",
            None,
            Some(12),
            true,
        ),
        (
            "goroutine 6 gp=0xc0000036c0 m=0 mp=0x5e10e0 [running]:",
            6,
            "running",
            None,
            None,
            false,
        ),
        (
            "goroutine 18 gp=0xc000102a80 m=nil [select, locked to thread]:",
            18,
            "waiting",
            Some("select"),
            None,
            true,
        ),
        (
            "goroutine 4 [sync.WaitGroup.Wait, synctest bubble 2]:",
            4,
            "waiting",
            Some("sync.WaitGroup.Wait"),
            None,
            false,
        ),
        (
            "goroutine 5 [chan receive (durable), 1 minutes]:",
            5,
            "waiting",
            Some("chan receive"),
            Some(1),
            false,
        ),
    ] {
        let g = traceback::goroutine_header(line).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(g.id, id, "{line}");
        assert_eq!(g.status, status, "{line}");
        assert_eq!(g.wait_reason.as_deref(), reason, "{line}");
        assert_eq!(
            g.waited_ns,
            minutes.map(|m: u64| m * 60_000_000_000),
            "{line}"
        );
        assert_eq!(g.locked_to_thread, locked, "{line}");
    }
    for bad in [
        "goroutine 1 [running]",
        "goroutine x [running]:",
        "goroutine 1 foo=1 [running]:",
        "goroutine 1 []:",
        "the goroutine 1 [running]:",
    ] {
        assert!(traceback::goroutine_header(bad).is_none(), "{bad}");
    }
}

#[test]
fn nested_panics_timeouts_deadlocks_and_dumps() {
    for v in ["1.19", "1.25.5"] {
        let s = scan(&sample(&format!("go{v}-nested-panic.txt")));
        let d = only_dump(&s);
        assert_eq!(d.panics, vec!["first [recovered]", "second"], "{v}");
        assert_eq!(names(&d.goroutines[0])[1], "panic", "{v}");

        let s = scan(&sample(&format!("go{v}-test-timeout.txt")));
        let d = only_dump(&s);
        assert_eq!(d.panics, vec!["test timed out after 2s"], "{v}");
        assert_eq!(
            names(&d.goroutines[0])[0],
            "testing.(*M).startAlarm.func1",
            "{v}"
        );

        let s = scan(&sample(&format!("go{v}-deadlock.txt")));
        let d = only_dump(&s);
        assert_eq!(d.kind, DumpKind::Fatal);
        assert_eq!(
            d.fatal.as_deref(),
            Some("all goroutines are asleep - deadlock!")
        );

        let s = scan(&sample(&format!("go{v}-pprof-goroutine-debug2.txt")));
        assert_eq!(only_dump(&s).kind, DumpKind::Goroutines);

        let s = scan(&sample(&format!("go{v}-sigquit.txt")));
        let d = only_dump(&s);
        assert_eq!(d.kind, DumpKind::Signal);
        assert_eq!(d.dump_signal, Some(("SIGQUIT".into(), 3)));
        assert!(
            d.goroutines.iter().all(|g| g.id != 0),
            "goroutine 0 is the M's g0, kept with the thread"
        );
        assert!(d.threads.iter().any(|t| !t.frames.is_empty()));
    }
    // The runtime's own goroutines: created by runtime functions.
    let s = scan(&sample("go1.19-sigquit-gotraceback-crash.txt"));
    let d = only_dump(&s);
    assert!(goroutine(d, 2).system, "forcegchelper");
    assert!(!goroutine(d, 1).system && !goroutine(d, 10).system);
    // Go 1.23+ tab-indents the lines of a panic message.
    let s = scan(&sample("go1.25.5-test-timeout.txt"));
    assert_eq!(
        only_dump(&s).message_lines,
        vec!["running tests:", "TestHang (2s)"]
    );
}

#[test]
fn race_reports() {
    for v in ["1.19", "1.25.5"] {
        let s = scan(&sample(&format!("go{v}-race.txt")));
        let (_, _, r) = &s.races[0];
        let kinds: Vec<&str> = r.stacks.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec!["write", "previous write", "created", "created"],
            "{v}"
        );
        assert!(r.stacks[0].addr.is_some() && r.stacks[0].goroutine.is_some());
        assert!(r.stacks.iter().all(|s| !s.frames.is_empty()));
        assert_eq!(
            r.stacks[0].frames[0].function.as_deref(),
            Some("main.main.func2"),
            "{v}"
        );
        let snap = snapshot(s, "x");
        assert_eq!(snap.processes.len(), 1);
        assert_eq!(snap.processes[0].go.as_ref().unwrap().races.len(), 1);
    }
}

/// `text` with `prefix(n)` before line n.
fn wrap(text: &[u8], prefix: impl Fn(usize) -> String) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        if !l.is_empty() || i + 1 < text.split(|&b| b == b'\n').count() {
            out.extend_from_slice(prefix(i).as_bytes());
        }
        out.extend_from_slice(l);
    }
    out
}

/// Per dump: its number of panics, and each goroutine's id and frame names; per race
/// report: each stack's heading and frame names.
type Summary = (
    Vec<(usize, Vec<(i64, Vec<String>)>)>,
    Vec<Vec<(String, Vec<Option<String>>)>>,
);

fn summary(s: &LogScan) -> Summary {
    (
        s.dumps
            .iter()
            .map(|(d, _)| {
                (
                    d.panics.len(),
                    d.goroutines.iter().map(|g| (g.id, names(g))).collect(),
                )
            })
            .collect(),
        s.races
            .iter()
            .map(|(_, _, r)| {
                r.stacks
                    .iter()
                    .map(|s| {
                        (
                            s.heading.clone(),
                            s.frames.iter().map(|f| f.function.clone()).collect(),
                        )
                    })
                    .collect()
            })
            .collect(),
    )
}

#[test]
fn ci_prefixes_are_learnt_and_stripped() {
    let prefixes: Vec<Box<dyn Fn(usize) -> String>> = vec![
        Box::new(|i| format!("2026-01-02T03:04:{:02}.{}Z ", i % 60, 1000 + i * 7)),
        Box::new(|_| "[job 12] ".to_string()),
        Box::new(|i| format!("Dec  2 11:00:{:02} host buildkitd[4321]: ", i % 60)),
        Box::new(|i| format!("2026-01-02T03:04:05.{:07}Z ", i * 13)),
    ];
    for (name, ..) in SAMPLES {
        let plain = sample(name);
        let want = summary(&scan(&plain));
        for (k, p) in prefixes.iter().enumerate() {
            let mut text = b"##[group]Run go test ./...\nsome ordinary output\n".to_vec();
            text.extend(wrap(&plain, p));
            text.extend_from_slice(b"\n##[endgroup]\n");
            let s = scan(&text);
            assert_eq!(summary(&s), want, "{name} with prefix {k}");
            if k == 2 {
                assert!(s.dumps.iter().all(|(_, p)| p.pid == Some(4321)));
            }
        }
    }
    let s = snapshot(
        scan(&wrap(&sample("go1.19-nil-deref.txt"), |_| {
            "Dec 02 11:00:00 host buildkitd[4321]: ".into()
        })),
        "j",
    );
    assert_eq!(
        (s.processes[0].pid, s.processes[0].comm.as_str()),
        (4321, "buildkitd")
    );
}

#[test]
fn interleaved_lines_of_another_stream_do_not_end_a_dump() {
    let plain = sample("go1.19-sigquit-gotraceback-crash.txt");
    let want = summary(&scan(&plain));
    let wrapped = wrap(&plain, |_| "[job 1] ".into());
    let mut text = Vec::new();
    for (i, l) in wrapped.split(|&b| b == b'\n').enumerate() {
        if i % 5 == 3 {
            text.extend_from_slice(b"other-step | compiling crate foo v1.0\n");
        }
        text.extend_from_slice(l);
        text.push(b'\n');
    }
    assert_eq!(summary(&scan(&text)), want);
}

#[test]
fn chunk_boundaries_change_nothing() {
    let mut text = b"noise line\n".repeat(50);
    for (name, ..) in SAMPLES {
        text.extend(sample(name));
        text.extend_from_slice(b"\nx level=error msg=\"boom\"\nnsexec-0[77]: hello\n");
    }
    let whole = scan(&text);
    for size in [1, 7, 64, 4096] {
        let mut s = Scanner::new();
        for c in text.chunks(size) {
            s.feed(c);
        }
        let s = s.finish();
        assert_eq!(summary(&s), summary(&whole), "chunks of {size}");
        assert_eq!(s.races.len(), whole.races.len());
        assert_eq!(s.nsexec, whole.nsexec);
        assert_eq!(s.messages, whole.messages);
        assert_eq!(s.lines, whole.lines);
        assert_eq!(
            s.dumps
                .iter()
                .map(|(d, _)| d.first_line)
                .collect::<Vec<_>>(),
            whole
                .dumps
                .iter()
                .map(|(d, _)| d.first_line)
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(whole.messages.len(), SAMPLES.len());
    assert_eq!(whole.nsexec.len(), 1, "one (stage, pid) pair");
}

#[test]
fn line_numbers_are_the_texts() {
    let mut text = b"a\nb\nc\n".to_vec();
    text.extend(sample("go1.19-nil-deref.txt"));
    let s = scan(&text);
    assert_eq!(s.dumps[0].0.first_line, 4);
    assert_eq!(s.lines, 13);
}

#[test]
fn truncated_text_never_panics_and_a_bare_panic_line_is_no_dump() {
    for (name, ..) in SAMPLES {
        let t = sample(name);
        for cut in (0..t.len()).step_by(7) {
            let _ = snapshot(scan(&t[..cut]), "cut");
        }
    }
    let t = sample("go1.19-nil-deref.txt");
    let before_header = t.windows(10).position(|w| w == b"goroutine ").unwrap();
    let s = scan(&t[..before_header]);
    assert!(s.dumps.is_empty(), "a panic line with no stack is no dump");
    assert!(scan(b"log: recovered from panic: boom\n").dumps.is_empty());
}

#[test]
fn garbage_gives_nothing() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut bytes = Vec::new();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x >> 24) as u8);
    }
    let s = scan(&bytes);
    assert!(s.is_empty());
    // Words of the format in the wrong places.
    let t = b"goroutine 1 [running]: is what it said\npanic: \n\tmain.go:1\nWARNING: DATA RACE\nno\nfatal error: x\n";
    let s = scan(t);
    assert!(s.dumps.is_empty() && s.races.is_empty(), "{s:#?}");
}

#[test]
fn nsexec_lines_of_the_memfd_probe() {
    // Real stderr of probes/memfd_stage (see samples/logs/README.md).
    let s = snapshot(scan(&sample("memfd-stage-shared-nsexec.txt")), "x");
    let m = crate::facts::stage_mismatches(&s);
    assert_eq!(m.len(), 1, "{:#?}", s.nsexec);
    assert_eq!((m[0].first.stage, m[0].then.stage), (0, 1));
    let f = crate::signatures::run(&s);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].id, "memfd-shared-stage");
    assert_eq!(f[0].evidence.len(), 2);
    assert!(
        f[0].evidence[1]
            .text
            .contains("-> stage-1 synchronisation loop")
    );
    let s = snapshot(scan(&sample("memfd-stage-fixed-nsexec.txt")), "x");
    assert!(crate::signatures::run(&s).is_empty());
}

#[test]
fn runc_error_lines() {
    let s = scan(&sample("runc-1.1.5-state-error.txt"));
    assert_eq!(s.messages.len(), 1);
    assert_eq!(s.messages[0].message, "container does not exist");
    assert!(s.dumps.is_empty());
}

#[test]
fn the_reader_race_probes_race_reports_are_the_known_bug() {
    // Real stderr of probes/reader_race built with -race, run as `crash` (README).
    let s = snapshot(scan(&sample("reader-race-probe-race-go1.19.txt")), "x");
    let races: usize = s
        .processes
        .iter()
        .filter_map(|p| p.go.as_ref())
        .map(|g| g.races.len())
        .sum();
    assert_eq!(races, 4);
    let f = crate::signatures::run(&s);
    let f: Vec<_> = f.iter().filter(|f| f.id == "nil-reader-race").collect();
    assert!(!f.is_empty(), "{f:#?}");
    // Either the crash at the end (Certain) or the races (Likely) name ReadAt.
    assert!(
        f.iter()
            .all(|f| f.evidence.iter().all(|e| e.text.contains("ReadAt")))
    );
    // The races alone, without the crash.
    let text = sample("reader-race-probe-race-go1.19.txt");
    let cut = text.windows(7).position(|w| w == b"panic: ").unwrap();
    let s = snapshot(scan(&text[..cut]), "x");
    let f = crate::signatures::run(&s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].id, "nil-reader-race");
    assert_eq!(f[0].confidence, crate::model::Confidence::Likely);
    assert!(f[0].evidence.len() >= 2);
}

#[test]
fn dumps_without_a_pid_stay_apart() {
    let mut text = sample("go1.19-nil-deref.txt");
    text.extend(sample("go1.25.5-nil-deref.txt"));
    let s = snapshot(scan(&text), "two.log");
    let pids: Vec<i32> = s.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![-1, -2]);
    // One crash finding per process: both crashes are reported.
    let d = crate::analyze::diagnose_log(s);
    let crashes = d
        .findings
        .iter()
        .filter(|f| f.id == "nil-deref-crash")
        .count();
    assert_eq!(crashes, 2, "{:#?}", d.findings);
    // One dump keeps pid 0.
    let one = snapshot(scan(&sample("go1.19-nil-deref.txt")), "one.log");
    assert_eq!(one.processes[0].pid, 0);
}

#[test]
fn race_reports_in_a_run_before_a_panic_belong_to_its_process() {
    let s = snapshot(
        scan(&sample("reader-race-probe-race-go1.19.txt")),
        "race.log",
    );
    assert_eq!(s.processes.len(), 1, "one program printed all of it");
    let p = &s.processes[0];
    assert!(p.signal.is_some());
    assert_eq!(p.go.as_ref().map(|g| g.races.len()), Some(4));
}
