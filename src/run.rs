//! `wedge run -- CMD…`: runs a command under supervision, the way CI wraps a flaky step.
//!
//! The command's whole tree is traced with PTRACE_SEIZE and followed across clone, fork and
//! vfork, with no syscall stops (only signals and new tasks stop it). When a task receives a
//! fault signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS), it is held at that
//! moment — before any handler, Go's included, runs — and the tree is handed over to the
//! ordinary live capture: every task is interrupted, the tree is put in group-stop with
//! SIGSTOP, wedge detaches (the kernel keeps the stop), the capture seizes and copies it,
//! and the tree is continued. A hardware fault re-faults when the thread resumes; a sent
//! signal is sent again; so the command behaves as it would have without wedge. When the
//! tree makes no progress for `--hang-after` (no CPU time, no thread running), wedge lets
//! it go and captures the hang the same way. After one capture wedge stops tracing and
//! waits; the command's exit status passes through (128 + N for a death by signal N).

use crate::binary::BinaryCache;
use crate::model::{CrashSignal, Diagnosis};
use crate::ptrace::{self, SpawnError, raw as ptrace_raw};
use crate::source::live::{self, CaptureOptions, procfs};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What wedge saw happen to the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A task received a fault signal; `code` and `addr` are the siginfo's.
    Crash {
        pid: i32,
        tid: i32,
        signo: i32,
        code: i32,
        addr: u64,
    },
    /// No CPU time and no running thread for this long.
    Hang { idle: Duration },
}

pub struct RunOptions {
    pub hang_after: Option<Duration>,
    pub capture: CaptureOptions,
    pub interrupted: Arc<AtomicBool>,
}

pub struct RunOutcome {
    /// The status to exit with: the command's exit code, or 128 + signal.
    pub status: i32,
    pub event: Option<(Event, Diagnosis)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no command given (wedge run [OPTIONS] -- CMD [ARGS…])")]
    NoCommand,
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{0}")]
    System(String),
}

/// The signals wedge treats as a crash.
pub const FAULTS: [i32; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGSYS,
];

fn spawn_traced(argv: &[OsString]) -> Result<i32, RunError> {
    let opts = libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACEVFORK;
    ptrace::spawn_seized("run", argv, opts, None).map_err(|e| match e {
        SpawnError::NoCommand(_) => RunError::NoCommand,
        SpawnError::NotFound(c) => RunError::NotFound(c),
        SpawnError::System(m) => RunError::System(m),
    })
}

/// The tasks wedge traces, by tid, with their thread-group id.
#[derive(Default)]
pub(crate) struct Tree {
    pub(crate) tasks: BTreeMap<i32, i32>,
}

impl Tree {
    pub(crate) fn tgid_of(tid: i32) -> i32 {
        procfs::tgid_of(tid).unwrap_or(tid)
    }

    fn tgids(&self) -> BTreeSet<i32> {
        self.tasks.values().copied().collect()
    }

    /// (total CPU ticks, any task running) over the traced tasks.
    fn activity(&self) -> (u64, bool) {
        let mut ticks = 0;
        let mut running = false;
        for (&tid, &tgid) in &self.tasks {
            if let Some(st) = procfs::task_stat(tgid, tid) {
                running |= st.state == 'R';
                ticks += st.cpu_ticks;
            }
        }
        (ticks, running)
    }
}

/// Waits (bounded) for `tid` to report a stop or exit; other tasks' reports that arrive
/// meanwhile are left for later by waiting on `tid` only.
fn wait_stopped(tid: i32, deadline: Instant) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == tid {
            return libc::WIFSTOPPED(status);
        }
        if r < 0 || Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Lets every traced task go. With `stop`, the tree is left in group-stop (for the
/// capture); otherwise it runs on. `held` is a task already in a ptrace stop.
pub(crate) fn release(tree: &mut Tree, held: Option<i32>, stop: bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    // Stops already reported but not yet handled — new tasks' first stops among them —
    // are collected first, with the signal a signal-delivery stop took (given back below).
    let mut stopped: BTreeMap<i32, usize> = BTreeMap::new();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let tid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
        if tid <= 0 {
            break;
        }
        if libc::WIFSTOPPED(status) {
            tree.tasks.entry(tid).or_insert_with(|| Tree::tgid_of(tid));
            // A fault is not given back: it recurs when the thread re-runs the instruction.
            let sig = libc::WSTOPSIG(status);
            let plain =
                (status >> 16) & 0xff == 0 && sig != libc::SIGTRAP && !FAULTS.contains(&sig);
            stopped.insert(
                tid,
                if plain {
                    libc::WSTOPSIG(status) as usize
                } else {
                    0
                },
            );
        } else {
            tree.tasks.remove(&tid);
        }
    }
    if let Some(h) = held {
        stopped.insert(h, 0);
    }
    let tids: Vec<i32> = tree.tasks.keys().copied().collect();
    for tid in tids {
        if stopped.contains_key(&tid) {
            continue;
        }
        if ptrace_raw(libc::PTRACE_INTERRUPT, tid, 0, 0) == 0 && wait_stopped(tid, deadline) {
            stopped.insert(tid, 0);
        }
    }
    if stop {
        for tgid in tree.tgids() {
            // SAFETY: processes of the tree wedge started.
            unsafe { libc::kill(tgid, libc::SIGSTOP) };
        }
    }
    for (tid, sig) in stopped {
        ptrace_raw(libc::PTRACE_DETACH, tid, 0, sig);
    }
}

/// Waits until every process of `tgids` is in group-stop (state T), at most `limit`.
fn wait_group_stopped(tgids: &BTreeSet<i32>, limit: Duration) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        let all = tgids
            .iter()
            .all(|&p| procfs::process_stat(p).is_none_or(|st| matches!(st.state, 'T' | 'Z' | 'X')));
        if all {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs the command to its end; `report` is called once, at a crash or a hang, with the
/// diagnosis (findings included).
pub fn run(
    argv: &[OsString],
    opts: &RunOptions,
    mut report: impl FnMut(&Event, &Diagnosis),
) -> Result<RunOutcome, RunError> {
    let root = spawn_traced(argv)?;
    let mut tree = Tree::default();
    tree.tasks.insert(root, root);
    let mut event: Option<(Event, Diagnosis)> = None;
    let mut last = (0u64, Instant::now());
    let mut tracing = true;
    loop {
        let mut status = 0;
        let flags = libc::__WALL | if tracing { libc::WNOHANG } else { 0 };
        // SAFETY: status is a valid out-pointer.
        let tid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if tid < 0 {
            // No children left: the command is gone without our seeing its status.
            return Ok(RunOutcome { status: 0, event });
        }
        if tid == 0 {
            // Nothing to report: look for a hang, then poll again.
            if opts.interrupted.load(Ordering::Relaxed) {
                release(&mut tree, None, false);
                tracing = false;
                continue;
            }
            if let Some(limit) = opts.hang_after {
                let (ticks, running) = tree.activity();
                if running || ticks > last.0 {
                    last = (ticks, Instant::now());
                } else if last.1.elapsed() >= limit {
                    let idle = last.1.elapsed();
                    release(&mut tree, None, false);
                    tracing = false;
                    let d = capture(root, opts, None);
                    let ev = Event::Hang { idle };
                    report(&ev, &d);
                    event = Some((ev, d));
                    continue;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            tree.tasks.remove(&tid);
            if tid == root {
                if tracing {
                    release(&mut tree, None, false);
                }
                return Ok(RunOutcome {
                    status: ptrace::shell_status(status),
                    event,
                });
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) || !tracing {
            continue;
        }
        tree.tasks.entry(tid).or_insert_with(|| Tree::tgid_of(tid));
        let sig = libc::WSTOPSIG(status);
        let ev = (status >> 16) & 0xff;
        if ev == libc::PTRACE_EVENT_STOP {
            // A group-stop (job control) stays one; anything else (a new task's first
            // stop, our interrupt) goes on.
            if matches!(
                sig,
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
            ) {
                ptrace_raw(libc::PTRACE_LISTEN, tid, 0, 0);
            } else {
                ptrace_raw(libc::PTRACE_CONT, tid, 0, 0);
            }
            continue;
        }
        if ev != 0 {
            // clone / fork / vfork: the new task is traced already and reports its own stop.
            ptrace_raw(libc::PTRACE_CONT, tid, 0, 0);
            continue;
        }
        if !FAULTS.contains(&sig) {
            ptrace_raw(libc::PTRACE_CONT, tid, 0, sig as usize);
            continue;
        }
        // A fault: held at its delivery, before any handler.
        let (crash, d) = capture_fault(root, &mut tree, tid, sig, opts);
        tracing = false;
        report(&crash, &d);
        event = Some((crash, d));
    }
}

/// A fault signal `sig` held at its delivery stop in `tid`: the tree is handed to the live
/// capture (put in group-stop, every task detached, captured, continued); a sent signal is
/// sent again, a hardware fault recurs by itself. Tracing of the tree ends here.
pub(crate) fn capture_fault(
    root: i32,
    tree: &mut Tree,
    tid: i32,
    sig: i32,
    opts: &RunOptions,
) -> (Event, Diagnosis) {
    // SAFETY: siginfo_t is plain data; the kernel fills it.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    ptrace_raw(
        libc::PTRACE_GETSIGINFO,
        tid,
        0,
        &mut si as *mut libc::siginfo_t as usize,
    );
    // SAFETY: si_addr is meaningful for the fault signals, read as a plain field.
    let addr = unsafe { si.si_addr() } as u64;
    let pid = *tree.tasks.entry(tid).or_insert_with(|| Tree::tgid_of(tid));
    let crash = Event::Crash {
        pid,
        tid,
        signo: sig,
        code: si.si_code,
        addr,
    };
    let tgids = tree.tgids();
    release(tree, Some(tid), true);
    wait_group_stopped(&tgids, Duration::from_secs(2));
    let mut d = capture(root, opts, Some(&crash));
    if let Some(p) = d.snapshot.processes.iter_mut().find(|p| p.pid == pid) {
        p.signal = Some(CrashSignal {
            signo: sig,
            code: si.si_code,
            addr: Some(addr),
            tid: Some(tid),
            goroutine: None,
        });
    }
    d.findings = crate::signatures::run(&d.snapshot);
    // A sent signal (si_code ≤ 0) was taken from the thread: send it again. A hardware
    // fault happens again when the thread re-runs the instruction.
    if si.si_code <= 0 {
        // SAFETY: tgkill on a thread of the command's tree.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
    }
    for p in &tgids {
        // SAFETY: processes of the command's tree.
        unsafe { libc::kill(*p, libc::SIGCONT) };
    }
    (crash, d)
}

/// The ordinary live capture of the tree (it seizes, copies and resumes by itself).
fn capture(root: i32, opts: &RunOptions, crash: Option<&Event>) -> Diagnosis {
    let mut cache = BinaryCache::new();
    match live::capture(root, &opts.capture, &mut cache) {
        Ok(c) => crate::analyze::diagnose_live(c, &mut cache),
        Err(live::CaptureError::NotPermitted { partial, .. }) => {
            crate::analyze::diagnose_live(*partial, &mut cache)
        }
        Err(e) => {
            let mut s = crate::model::Snapshot::new(
                crate::model::Source::Live {
                    pid: root,
                    stopped: false,
                    children: true,
                },
                live::procfs::host(),
            );
            s.note(
                Some(root),
                None,
                format!("the capture failed: {e} ({crash:?})"),
            );
            Diagnosis {
                snapshot: s,
                findings: Vec::new(),
            }
        }
    }
}
