//! Live capture of a process tree: read what procfs shows, freeze, copy, resume.
//!
//! Order matters. Per-thread kernel state (state, wchan, syscall, kernel stack) and the
//! mappings are read just before the freeze, because a stopped thread shows only the ptrace
//! stop. The freeze then copies what is cheap and must be consistent: registers, the live part
//! of each stack, futex words and path arguments of the syscalls threads are in, and the fd
//! table. Everything slow (opening binaries, unwinding, symbolizing) happens after resume.

use super::access::{AccessFacts, explain_refusal};
use super::freeze::{FrozenTree, SeizeError, ThreadState};
use super::gocopy::{GoCopyPlan, copy_go};
use super::kcmp;
use super::procfs::{self, ProcError};
use super::ptrace;
use super::sockdiag::UnixTables;
use crate::binary::{BinaryCache, LiveOpener};
use crate::goruntime::target::{self, GoTarget};
use crate::memory::MemoryImage;
use crate::model::{Arch, Mapping, Process, Snapshot, Source, StackCopy};
use crate::syscall;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bytes below the stack pointer that leaf functions may use (the x86-64 red zone).
const RED_ZONE: u64 = 128;
/// Longest path argument copied from a syscall.
/// Rounds of "look for new threads and children" before giving up on a stable set.
const MAX_ROUNDS: usize = 16;

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Also capture the descendants of the pid.
    pub children: bool,
    /// Stop the threads (false: `--no-stop`, procfs only).
    pub stop: bool,
    /// Upper bound on the bytes of each thread's stack copied.
    pub max_stack_bytes: usize,
    /// How long to wait for every thread to stop.
    pub stop_timeout: Duration,
    /// Keep the tree stopped this long after the copy (tests of the guard only).
    pub hold: Option<Duration>,
    /// Set by SIGINT/SIGTERM: abandon the capture and resume.
    pub interrupted: Arc<AtomicBool>,
    /// Upper bound on the bytes of each goroutine's stack copied.
    pub max_goroutine_stack_bytes: usize,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            children: true,
            stop: true,
            max_stack_bytes: 256 * 1024,
            stop_timeout: Duration::from_millis(500),
            hold: None,
            interrupted: Arc::new(AtomicBool::new(false)),
            max_goroutine_stack_bytes: 64 * 1024,
        }
    }
}

/// A live capture: the snapshot and, per process, the memory copied during the freeze and
/// what is needed to read Go runtimes from it.
#[derive(Debug, Clone)]
pub struct LiveCapture {
    pub snapshot: Snapshot,
    pub memory: BTreeMap<i32, MemoryImage>,
    pub go_targets: BTreeMap<i32, GoTarget>,
    /// CLOCK_MONOTONIC during the freeze (Go's nanotime), in nanoseconds.
    pub monotonic_ns: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
    #[error("process {0} exited before it could be captured")]
    ExitedDuringCapture(i32),
    /// The root could not be stopped; `partial` holds what procfs showed.
    #[error("{reason}")]
    NotPermitted {
        pid: i32,
        reason: String,
        partial: Box<LiveCapture>,
    },
    #[error("wedge cannot capture itself")]
    SelfCapture,
    #[error("interrupted: every stopped thread was resumed")]
    Interrupted,
    #[error("cannot read /proc for process {pid}: {source}")]
    Proc { pid: i32, source: ProcError },
}

/// Captures the process tree of `root` (or `root` alone). Binaries are opened (before the
/// freeze, for Go programs) through `cache`, which analysis then reuses.
pub fn capture(
    root: i32,
    opts: &CaptureOptions,
    cache: &mut BinaryCache,
) -> Result<LiveCapture, CaptureError> {
    if root <= 0 || !std::path::Path::new(&format!("/proc/{root}")).exists() {
        return Err(CaptureError::NoSuchProcess(root));
    }
    if root == std::process::id() as i32 {
        return Err(CaptureError::SelfCapture);
    }
    let host = procfs::host();
    let arch = host.arch.unwrap_or(Arch::X86_64);
    let mut snapshot = Snapshot::new(
        Source::Live {
            pid: root,
            stopped: opts.stop,
            children: opts.children,
        },
        host,
    );
    let mut procs: BTreeMap<i32, Process> = BTreeMap::new();
    let mut memory: BTreeMap<i32, MemoryImage> = BTreeMap::new();
    let mut go_targets: BTreeMap<i32, GoTarget> = BTreeMap::new();

    match pre_read(root, arch, &mut snapshot) {
        Ok(p) => {
            procs.insert(root, p);
        }
        Err(ProcError::Gone { .. }) => return Err(CaptureError::NoSuchProcess(root)),
        Err(e) => {
            return Err(CaptureError::Proc {
                pid: root,
                source: e,
            });
        }
    }
    // wedge never captures itself (it may run under the target, e.g. from its shell).
    let me = std::process::id() as i32;
    if opts.children {
        for pid in procfs::descendants(root) {
            if pid != me {
                add_process(&mut procs, &mut snapshot, pid, arch);
            }
        }
    }

    // Go programs: what to copy of their runtime, worked out before anything stops.
    for (pid, p) in procs.iter_mut() {
        if let Some(t) = target::for_process(p, cache, &LiveOpener { pid: *pid }, arch) {
            go_targets.insert(*pid, t);
        }
    }

    if !opts.stop {
        let mut unix = UnixTables::default();
        for p in procs.values_mut() {
            read_fds_into(p, &mut snapshot);
            procfs::fill_socket_info(p.pid, &mut p.fds, &mut unix);
        }
        kcmp::fill_sharing(&mut procs.values_mut().collect::<Vec<_>>());
        snapshot.processes = procs.into_values().collect();
        return Ok(LiveCapture {
            snapshot,
            memory,
            go_targets,
            monotonic_ns: None,
        });
    }

    let mut frozen = FrozenTree::new();
    let mut refused: BTreeMap<i32, String> = BTreeMap::new();
    let deadline = Instant::now() + opts.stop_timeout;
    for round in 0.. {
        for (pid, p) in procs.iter_mut() {
            if refused.contains_key(pid) {
                continue;
            }
            let wanted = seizable_tids(p, &mut snapshot);
            let fresh: Vec<i32> = wanted
                .into_iter()
                .filter(|t| !frozen.holds(*pid, *t))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            match frozen.seize(*pid, &fresh) {
                Ok(()) => {}
                Err(SeizeError::Gone) => {}
                Err(SeizeError::NotPermitted(errno)) => {
                    let reason = explain_refusal(&AccessFacts::gather(*pid));
                    snapshot.note(Some(*pid), None, format!("not stopped ({errno}): {reason}"));
                    refused.insert(*pid, reason);
                }
            }
        }
        if !frozen.wait_stopped(deadline, &opts.interrupted) {
            drop(frozen);
            return Err(CaptureError::Interrupted);
        }
        // Threads created before their creator stopped, and children forked meanwhile.
        let mut new_children = false;
        if opts.children {
            for pid in procfs::descendants(root) {
                if pid != me && !procs.contains_key(&pid) {
                    new_children |= add_process(&mut procs, &mut snapshot, pid, arch);
                }
            }
        }
        for (pid, p) in procs.iter_mut() {
            if refused.contains_key(pid) {
                continue;
            }
            if let Ok(tids) = procfs::list_tids(*pid) {
                for tid in tids {
                    if p.thread(tid).is_none() {
                        match procfs::read_thread(*pid, tid, arch) {
                            Ok(t) => p.threads.push(t),
                            Err(_) => continue,
                        }
                    }
                }
            }
        }
        let unstable = procs.iter().any(|(pid, p)| {
            !refused.contains_key(pid)
                && p.threads
                    .iter()
                    .any(|t| t.state != "D" && frozen.state(*pid, t.tid).is_none())
        });
        if !unstable && !new_children {
            break;
        }
        if round + 1 >= MAX_ROUNDS {
            snapshot.note(
                None,
                None,
                "the set of threads kept changing: some threads created during the capture were not stopped",
            );
            break;
        }
        if opts.interrupted.load(Ordering::Relaxed) {
            drop(frozen);
            return Err(CaptureError::Interrupted);
        }
    }

    // The copy: everything here is cheap and must be consistent with the freeze.
    for (pid, p) in procs.iter_mut() {
        if refused.contains_key(pid) {
            continue;
        }
        let image = memory.entry(*pid).or_default();
        let stopped = frozen.stopped(*pid);
        copy_threads(
            p,
            &stopped,
            arch,
            opts.max_stack_bytes,
            image,
            &mut snapshot,
        );
        if let Some(t) = go_targets.get(pid)
            && !stopped.is_empty()
        {
            let plan = GoCopyPlan {
                allgs: t.allgs,
                offsets: t.offsets,
                wait_reasons: t.layout.wait_reasons.len(),
                max_goroutines: crate::goruntime::walk::MAX_GOROUTINES,
                max_stack_per_goroutine: opts.max_goroutine_stack_bytes,
            };
            let stats = copy_go(*pid, &plan, image);
            if let Some(go) = p.go.as_mut() {
                go.copy_us = Some(stats.micros);
                go.copy_bytes = Some(stats.bytes as u64);
                if let Some(e) = stats.error {
                    go.goroutines_note = Some(e);
                }
            }
        }
        read_fds_into(p, &mut snapshot);
        p.stopped = !stopped.is_empty()
            && p.threads
                .iter()
                .all(|t| t.stopped || frozen.state(*pid, t.tid) == Some(ThreadState::Gone));
        for t in p.threads.iter() {
            match frozen.state(*pid, t.tid) {
                Some(ThreadState::TimedOut) => snapshot.note(
                    Some(*pid),
                    Some(t.tid),
                    format!(
                        "thread did not stop within {} ms: its registers and stack are missing",
                        opts.stop_timeout.as_millis()
                    ),
                ),
                Some(ThreadState::Gone) => {
                    snapshot.note(Some(*pid), Some(t.tid), "thread exited during the capture")
                }
                _ => {}
            }
        }
    }
    let monotonic_ns = monotonic_now();
    if let Some(hold) = opts.hold {
        let until = Instant::now() + hold;
        while Instant::now() < until && !opts.interrupted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let released = frozen.resume();
    for (pid, r) in released {
        if let Some(p) = procs.get_mut(&pid) {
            p.pause_us = Some(r.pause_us);
            for (tid, sig) in r.redelivered {
                if let Some(t) = p.threads.iter_mut().find(|t| t.tid == tid) {
                    t.redelivered_signal = Some(sig);
                }
            }
        }
    }
    if opts.interrupted.load(Ordering::Relaxed) {
        return Err(CaptureError::Interrupted);
    }
    for (pid, p) in procs.iter_mut() {
        // Only its state and start time: not the whole identity read again.
        let gone = match procfs::process_stat(*pid) {
            Some(now) => matches!(now.state, 'Z' | 'X') || now.start_time != p.start_time,
            None => true,
        };
        if gone {
            snapshot.note(
                Some(*pid),
                None,
                "process exited during or right after the capture",
            );
            p.state = "X".into();
        }
    }

    // After the resume: what the network namespace's socket tables say about socket fds.
    let mut unix = UnixTables::default();
    for (pid, p) in procs.iter_mut() {
        procfs::fill_socket_info(*pid, &mut p.fds, &mut unix);
    }
    kcmp::fill_sharing(&mut procs.values_mut().collect::<Vec<_>>());
    let root_refusal = refused.get(&root).cloned();
    snapshot.processes = procs.into_values().collect();
    let capture = LiveCapture {
        snapshot,
        memory,
        go_targets,
        monotonic_ns,
    };
    match root_refusal {
        Some(reason) => Err(CaptureError::NotPermitted {
            pid: root,
            reason,
            partial: Box::new(capture),
        }),
        None => Ok(capture),
    }
}

/// Adds a child process found in the tree; false if it vanished first.
fn add_process(
    procs: &mut BTreeMap<i32, Process>,
    snapshot: &mut Snapshot,
    pid: i32,
    arch: Arch,
) -> bool {
    match pre_read(pid, arch, snapshot) {
        Ok(p) => {
            procs.insert(pid, p);
            true
        }
        Err(ProcError::Gone { .. }) => false,
        Err(e) => {
            snapshot.note(Some(pid), None, format!("not captured: {e}"));
            false
        }
    }
}

/// What procfs shows of a process before it is stopped: identity, threads, mappings.
/// Only the identity is required; what else cannot be read becomes a note.
fn pre_read(pid: i32, arch: Arch, snapshot: &mut Snapshot) -> Result<Process, ProcError> {
    let mut p = procfs::read_process(pid)?;
    match procfs::list_tids(pid) {
        Ok(tids) => {
            for tid in tids {
                match procfs::read_thread(pid, tid, arch) {
                    Ok(t) => p.threads.push(t),
                    Err(ProcError::Gone { .. }) => {}
                    Err(e) => snapshot.note(
                        Some(pid),
                        Some(tid),
                        format!("thread state unreadable: {e}"),
                    ),
                }
            }
        }
        Err(ProcError::Gone { .. }) => return Err(ProcError::Gone { pid }),
        Err(e) => snapshot.note(Some(pid), None, format!("threads unreadable: {e}")),
    }
    match procfs::read_mappings(pid) {
        Ok(m) => p.mappings = m,
        Err(ProcError::Gone { .. }) => return Err(ProcError::Gone { pid }),
        Err(e) => snapshot.note(Some(pid), None, format!("mappings unreadable: {e}")),
    }
    Ok(p)
}

/// Threads that may be stopped: not in uninterruptible sleep (D), which PTRACE_INTERRUPT
/// could wait on forever. Each skipped thread gets a note.
fn seizable_tids(p: &Process, snapshot: &mut Snapshot) -> Vec<i32> {
    let mut out = Vec::new();
    for t in &p.threads {
        if t.state == "D" {
            let msg = "thread is in uninterruptible sleep (D): not stopped, registers and stack not captured";
            if !snapshot
                .notes
                .iter()
                .any(|n| n.tid == Some(t.tid) && n.message == msg)
            {
                snapshot.note(Some(p.pid), Some(t.tid), msg);
            }
        } else if t.state != "Z" && t.state != "X" {
            out.push(t.tid);
        }
    }
    out
}

/// Registers, stack, and syscall arguments of every stopped thread of `p`.
fn copy_threads(
    p: &mut Process,
    stopped: &[i32],
    arch: Arch,
    max_stack: usize,
    image: &mut MemoryImage,
    snapshot: &mut Snapshot,
) {
    let pid = p.pid;
    let mut remapped = false;
    for t in p.threads.iter_mut() {
        if !stopped.contains(&t.tid) {
            continue;
        }
        let regs = match ptrace::registers(t.tid, arch) {
            Ok(r) => r,
            Err(nix::errno::Errno::ESRCH) => {
                snapshot.note(
                    Some(pid),
                    Some(t.tid),
                    "thread exited during the capture: registers and stack missing",
                );
                continue;
            }
            Err(e) => {
                snapshot.note(Some(pid), Some(t.tid), format!("registers unreadable: {e}"));
                continue;
            }
        };
        t.stopped = true;
        if let Some((nr, args)) = syscall::from_registers(&regs) {
            t.syscall = Some(syscall::at_stop(arch, nr, &args, &|a, n| {
                ptrace::read_memory(pid, a, n)
            }));
        } else if let Some(s) = t.syscall.as_mut() {
            // No syscall number in the registers (arm64): keep procfs's, add what we can read.
            syscall::fill_memory(arch, s, &|a, n| ptrace::read_memory(pid, a, n));
        }
        if let Some(sp) = regs.sp() {
            let mut mapping = stack_mapping(&p.mappings, sp);
            if mapping.is_none() && !remapped {
                // A thread created after the pre-read: its stack is a new mapping.
                remapped = true;
                if let Ok(m) = procfs::read_mappings(pid) {
                    p.mappings = m;
                }
                mapping = stack_mapping(&p.mappings, sp);
            }
            match mapping {
                Some((lo, hi)) => {
                    let start = sp.saturating_sub(RED_ZONE).max(lo);
                    let want_end = sp.saturating_add(max_stack as u64).min(hi);
                    let bytes = ptrace::read_memory(pid, start, (want_end - start) as usize);
                    let len = bytes.len() as u64;
                    image.insert(start, bytes);
                    t.stack = Some(StackCopy {
                        start,
                        len,
                        sp,
                        truncated: want_end < hi,
                    });
                }
                None => snapshot.note(
                    Some(pid),
                    Some(t.tid),
                    format!("stack pointer {sp:#x} is in no mapping: stack not copied"),
                ),
            }
        }
        t.registers = Some(regs);
    }
}

/// The [lo, hi) bounds of the mapping containing `sp`.
fn stack_mapping(mappings: &[Mapping], sp: u64) -> Option<(u64, u64)> {
    mappings
        .iter()
        .find(|m| m.start <= sp && sp < m.end)
        .map(|m| (m.start, m.end))
}

fn read_fds_into(p: &mut Process, snapshot: &mut Snapshot) {
    let (fds, notes) = procfs::read_fds(p.pid);
    p.fds = fds;
    for n in notes {
        snapshot.note(Some(p.pid), None, n);
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of Go's nanotime on Linux.
fn monotonic_now() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}
