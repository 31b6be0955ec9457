//! The unwinder on real processes: C programs built here with and without debug info and
//! frame pointers, and stripped, stopped with a small ptrace helper, unwound from the copy,
//! and compared with gdb on the same process.

use super::testutil::{Target, build_c, capture};
use super::{UnwindOptions, unwind_and_symbolize};
use crate::binary::{BinaryCache, LiveOpener};
use crate::model::{Frame, Process, Thread};
use std::path::{Path, PathBuf};

const READ: i64 = 0;
const FUTEX: i64 = 202;
const CLOCK_NANOSLEEP: i64 = 230;

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/unwind/testdata/blocked.c")
}

struct Variant {
    name: &'static str,
    flags: &'static [&'static str],
    strip: bool,
}

const VARIANTS: [Variant; 4] = [
    Variant {
        name: "g-fp",
        flags: &["-g", "-O1", "-fno-omit-frame-pointer"],
        strip: false,
    },
    Variant {
        name: "g-nofp",
        flags: &["-g", "-O2", "-fomit-frame-pointer"],
        strip: false,
    },
    Variant {
        name: "nog-nofp",
        flags: &["-O2", "-fomit-frame-pointer"],
        strip: false,
    },
    Variant {
        name: "stripped",
        flags: &["-O2", "-fomit-frame-pointer"],
        strip: true,
    },
];

fn settled_on(want: &'static [i64]) -> impl Fn(&[i64]) -> bool {
    move |calls: &[i64]| want.iter().all(|w| calls.contains(w))
}

fn unwound(pid: i32) -> Process {
    let (mut p, mem) = capture(pid);
    let notes = unwind_and_symbolize(
        &mut p,
        &mem,
        &LiveOpener { pid },
        &mut BinaryCache::new(),
        &UnwindOptions::default(),
    );
    assert!(notes.is_empty(), "{notes:?}");
    p
}

fn names(t: &Thread) -> Vec<String> {
    t.frames
        .iter()
        .map(|f| f.function.clone().unwrap_or_else(|| "??".into()))
        .collect()
}

fn thread<'a>(p: &'a Process, name: &str) -> &'a Thread {
    p.threads.iter().find(|t| t.name == name).unwrap()
}

/// Asserts `want` appear in `t`'s frames in this order, each right after the previous one
/// (a name of None skips exactly one frame the test does not pin, e.g. a stripped one).
fn assert_chain(t: &Thread, want: &[Option<&[&str]>], variant: &str) {
    let got = names(t);
    let start = want[0]
        .and_then(|first| got.iter().position(|g| first.contains(&g.as_str())))
        .unwrap_or_else(|| panic!("{variant}/{}: {got:?} lacks {:?}", t.name, want[0]));
    for (i, w) in want.iter().enumerate() {
        let Some(w) = w else { continue };
        let g = got.get(start + i).map(String::as_str).unwrap_or("<end>");
        assert!(
            w.contains(&g),
            "{variant}/{}: frame {} is {g}, want one of {w:?}; all: {got:?}",
            t.name,
            start + i
        );
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn blocked_threads_unwind_to_their_callers_in_every_build() {
    let dir = tempfile::tempdir().unwrap();
    for v in &VARIANTS {
        let exe = build_c(dir.path(), v.name, &source(), v.flags, v.strip);
        let target = Target::start(&exe, &[], settled_on(&[READ, FUTEX, CLOCK_NANOSLEEP]));
        let p = unwound(target.pid);
        let own = |n: &'static [&'static str]| if v.strip { None } else { Some(n) };
        let read: &[&str] = &["read", "__libc_read"];

        let main = p.threads.iter().find(|t| t.tid == p.pid).unwrap();
        assert_chain(
            main,
            &[
                Some(read),
                own(&["read_pipe"]),
                own(&["wait_for_input"]),
                own(&["main"]),
                Some(&["__libc_start_call_main"]),
            ],
            v.name,
        );
        let waiter = thread(&p, "waiter");
        assert_chain(
            waiter,
            &[
                Some(&["__lll_lock_wait_private"]),
                Some(&["fwrite", "_IO_fwrite", "fputs", "_IO_fputs"]),
                own(&["print_line"]),
                own(&["waiter"]),
                Some(&["start_thread"]),
            ],
            v.name,
        );
        let holder = thread(&p, "holder");
        assert_chain(
            holder,
            &[
                Some(&["clock_nanosleep", "__clock_nanosleep"]),
                Some(&["nanosleep", "__nanosleep"]),
                own(&["park"]),
                own(&["holder"]),
                Some(&["start_thread"]),
            ],
            v.name,
        );
        for t in &p.threads {
            assert_eq!(t.unwind_stop, None, "{}/{}: {:?}", v.name, t.name, names(t));
            // Nothing here needs a stack scan: CFI (or frame pointers) cover every frame.
            assert!(
                t.frames
                    .iter()
                    .all(|f| f.trust != crate::model::FrameTrust::Scan),
                "{}/{}: {:?}",
                v.name,
                t.name,
                t.frames
            );
            let last = names(t).last().cloned().unwrap_or_default();
            // A stripped executable's _start has no name left, but its CFI still ends it.
            assert!(
                ["_start", "clone3", "clone"].contains(&last.as_str()) || (v.strip && last == "??"),
                "{}/{} ends in {last}",
                v.name,
                t.name
            );
        }
        if !v.strip {
            let with_lines = main
                .frames
                .iter()
                .find(|f| f.function.as_deref() == Some("read_pipe"));
            if v.flags.contains(&"-g") {
                let f = with_lines.unwrap();
                assert!(
                    f.file.as_deref().is_some_and(|x| x.ends_with("blocked.c")) && f.line.is_some(),
                    "{f:?}"
                );
            }
        }
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn nanosleep_in_main() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c(dir.path(), "sleep", &source(), &["-O2"], false);
    let target = Target::start(&exe, &["sleep"], |calls| {
        calls.iter().filter(|&&c| c == CLOCK_NANOSLEEP).count() == 2
    });
    let p = unwound(target.pid);
    let main = p.threads.iter().find(|t| t.tid == p.pid).unwrap();
    assert_chain(
        main,
        &[
            Some(&["clock_nanosleep", "__clock_nanosleep"]),
            Some(&["nanosleep", "__nanosleep"]),
            Some(&["main"]),
            Some(&["__libc_start_call_main"]),
        ],
        "sleep",
    );
    assert_eq!(main.frames[0].trust, crate::model::FrameTrust::Context);
}

/// One frame of `gdb -batch -ex 'thread apply all bt'`: the pc when gdb prints it (a
/// physical frame; inlined frames and frame 0 often have none) and the function name.
#[derive(Debug)]
struct GdbFrame {
    pc: Option<u64>,
    name: String,
}

fn gdb_backtraces(pid: i32) -> Option<std::collections::HashMap<i32, Vec<GdbFrame>>> {
    let out = std::process::Command::new("gdb")
        .args([
            "-nx",
            "-batch",
            "-p",
            &pid.to_string(),
            "-ex",
            "thread apply all bt",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut all = std::collections::HashMap::new();
    let mut current: Option<i32> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Thread ") {
            current = rest
                .split("(LWP ")
                .nth(1)
                .and_then(|x| x.split(')').next())
                .and_then(|x| x.parse().ok());
            continue;
        }
        let (Some(tid), Some(rest)) = (current, line.strip_prefix('#')) else {
            continue;
        };
        let mut words = rest.split_whitespace().skip(1);
        let mut first = words.next().unwrap_or_default();
        let mut pc = None;
        if let Some(hex) = first.strip_prefix("0x") {
            pc = u64::from_str_radix(hex, 16).ok();
            words.next(); // "in"
            first = words.next().unwrap_or_default();
        }
        all.entry(tid).or_insert_with(Vec::new).push(GdbFrame {
            pc,
            name: first.to_string(),
        });
    }
    Some(all)
}

/// glibc's internal names as gdb prints them (`__GI___libc_read`, `__GI__IO_fwrite`,
/// `__libc_start_main_impl`) and the public alias wedge prefers (`read`, `fwrite`,
/// `__libc_start_main`) name the same function.
fn same_function(ours: &str, gdb: &str) -> bool {
    fn norm(n: &str) -> &str {
        let n = n.strip_prefix("__GI_").unwrap_or(n).trim_start_matches('_');
        let n = n.strip_prefix("libc_").unwrap_or(n);
        let n = n.strip_prefix("IO_").unwrap_or(n);
        // `__libc_start_main` is the versioned alias of `__libc_start_main_impl`.
        let n = n.strip_suffix("_impl").unwrap_or(n);
        n.trim_start_matches('_')
    }
    norm(ours) == norm(gdb)
}

/// Physical frames of a gdb backtrace: the pc (None for frame 0 when gdb omits it) and the
/// outermost function at it.
fn gdb_physical(frames: &[GdbFrame]) -> Vec<(Option<u64>, String)> {
    let mut out: Vec<(Option<u64>, String)> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if i == 0 || f.pc.is_some() {
            out.push((f.pc, f.name.clone()));
        } else if let Some(last) = out.last_mut() {
            last.1 = f.name.clone(); // an inlined frame's caller at the same pc
        }
    }
    out
}

fn check_against_gdb(ours: &[Frame], gdb: &[GdbFrame], what: &str) {
    let phys = gdb_physical(gdb);
    // gdb run from the test harness stops at `main` even with `backtrace past-main on`
    // (from a shell it goes on): wedge must match every frame gdb shows, and may show more
    // only past main (the frames below main are checked by name in the other tests).
    let ends_at_main = phys.last().is_some_and(|(_, n)| n == "main");
    assert!(
        ours.len() == phys.len() || (ends_at_main && ours.len() > phys.len()),
        "{what}: frame count\nours {:?}\ngdb  {gdb:?}",
        ours.iter().map(|f| &f.function).collect::<Vec<_>>()
    );
    for (o, (pc, name)) in ours.iter().zip(&phys) {
        if let Some(pc) = pc {
            assert_eq!(o.pc, *pc, "{what}: pc of {name}");
        }
        let our = o.function.as_deref().unwrap_or("??");
        assert!(
            same_function(our, name) || (name == "??" && o.function.is_none()),
            "{what}: {our} vs gdb's {name}"
        );
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn agrees_with_gdb() {
    if std::process::Command::new("gdb")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: gdb is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for v in &VARIANTS {
        let exe = build_c(dir.path(), v.name, &source(), v.flags, v.strip);
        let target = Target::start(&exe, &[], settled_on(&[READ, FUTEX, CLOCK_NANOSLEEP]));
        let p = unwound(target.pid);
        let gdb = gdb_backtraces(target.pid).expect("gdb ran");
        for t in &p.threads {
            let g = gdb
                .get(&t.tid)
                .unwrap_or_else(|| panic!("gdb shows no thread {}: {gdb:?}", t.tid));
            check_against_gdb(&t.frames, g, &format!("{}/{}", v.name, t.name));
        }
    }
}
