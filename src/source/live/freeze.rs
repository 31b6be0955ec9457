//! The freeze guard: stops every thread of a process tree together and always lets them go.
//!
//! Threads are seized with PTRACE_SEIZE and stopped with PTRACE_INTERRUPT; waits never block
//! (a thread in the kernel may take a while to stop, one in D state may never), so a deadline
//! bounds the freeze. [`FrozenTree`] detaches on every path: explicitly through
//! [`FrozenTree::resume`], or in `Drop` on an error, a panic or an interrupt. If wedge itself
//! is killed, the kernel detaches and the targets run on. A signal the target received while
//! stopped (a signal-delivery stop) is handed back at detach.

use super::ptrace::{self, WaitOutcome};
use nix::errno::Errno;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    /// Interrupted, not yet seen stopped.
    Stopping,
    Stopped,
    /// Exited while we held it.
    Gone,
    /// Seized but it did not stop before the deadline (e.g. stuck in the kernel).
    TimedOut,
}

#[derive(Debug)]
struct Seized {
    pid: i32,
    tid: i32,
    state: ThreadState,
    /// Signal taken from the thread by a signal-delivery stop: re-delivered at detach.
    signal: Option<i32>,
}

/// How one process came out of the freeze.
#[derive(Debug, Clone, Default)]
pub struct Released {
    /// From the first interrupt of any of its threads to the last detach.
    pub pause_us: u64,
    /// Signals re-delivered at detach, by thread.
    pub redelivered: BTreeMap<i32, i32>,
    /// Threads that never stopped (they were left to the kernel to detach).
    pub timed_out: Vec<i32>,
}

/// Error seizing the first thread of a process: the whole process cannot be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeizeError {
    Gone,
    NotPermitted(Errno),
}

/// Every thread wedge holds, across the processes of a tree.
#[derive(Debug, Default)]
pub struct FrozenTree {
    threads: Vec<Seized>,
    first_stop: BTreeMap<i32, Instant>,
    released: bool,
}

impl FrozenTree {
    pub fn new() -> FrozenTree {
        FrozenTree::default()
    }

    /// True when `tid` of `pid` is already held (stopped, stopping, gone or timed out).
    pub fn holds(&self, pid: i32, tid: i32) -> bool {
        self.threads.iter().any(|t| t.pid == pid && t.tid == tid)
    }

    /// Seizes and interrupts the threads of `pid`. A thread that vanished is skipped; if the
    /// kernel refuses the first one, nothing of the process is held and the errno is returned.
    pub fn seize(&mut self, pid: i32, tids: &[i32]) -> Result<(), SeizeError> {
        let mut any = self.threads.iter().any(|t| t.pid == pid);
        for &tid in tids {
            if self.holds(pid, tid) {
                continue;
            }
            match ptrace::seize(tid) {
                Ok(()) => {}
                Err(Errno::ESRCH) => continue,
                Err(e) if !any => return Err(SeizeError::NotPermitted(e)),
                Err(_) => continue,
            }
            self.first_stop.entry(pid).or_insert_with(Instant::now);
            let state = match ptrace::interrupt(tid) {
                Ok(()) => ThreadState::Stopping,
                Err(_) => ThreadState::Gone,
            };
            self.threads.push(Seized {
                pid,
                tid,
                state,
                signal: None,
            });
            any = true;
        }
        if any { Ok(()) } else { Err(SeizeError::Gone) }
    }

    /// Waits until every interrupted thread stopped or exited, or the deadline passed, or
    /// `interrupted` was set (then returns false).
    pub fn wait_stopped(&mut self, deadline: Instant, interrupted: &AtomicBool) -> bool {
        let mut spins = 0u32;
        loop {
            let mut pending = false;
            for t in self.threads.iter_mut() {
                if t.state != ThreadState::Stopping {
                    continue;
                }
                match ptrace::poll_stop(t.tid) {
                    WaitOutcome::Running => pending = true,
                    WaitOutcome::Stopped { signal } => {
                        t.state = ThreadState::Stopped;
                        if signal.is_some() {
                            t.signal = signal;
                        }
                    }
                    WaitOutcome::Gone => t.state = ThreadState::Gone,
                }
            }
            if !pending {
                return true;
            }
            if interrupted.load(Ordering::Relaxed) {
                return false;
            }
            if Instant::now() >= deadline {
                for t in self.threads.iter_mut() {
                    if t.state == ThreadState::Stopping {
                        t.state = ThreadState::TimedOut;
                    }
                }
                return true;
            }
            // Stops usually arrive within microseconds: spin briefly, then back off.
            spins += 1;
            if spins < 200 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    pub fn state(&self, pid: i32, tid: i32) -> Option<ThreadState> {
        self.threads
            .iter()
            .find(|t| t.pid == pid && t.tid == tid)
            .map(|t| t.state)
    }

    /// Threads of `pid` that are stopped now.
    pub fn stopped(&self, pid: i32) -> Vec<i32> {
        self.threads
            .iter()
            .filter(|t| t.pid == pid && t.state == ThreadState::Stopped)
            .map(|t| t.tid)
            .collect()
    }

    pub fn pids(&self) -> Vec<i32> {
        self.first_stop.keys().copied().collect()
    }

    /// Detaches every thread, re-delivering the signals taken from them, and says per
    /// process how long it was stopped.
    pub fn resume(&mut self) -> BTreeMap<i32, Released> {
        let mut out: BTreeMap<i32, Released> = BTreeMap::new();
        for t in self.threads.iter_mut() {
            let r = out.entry(t.pid).or_default();
            match t.state {
                ThreadState::Stopped => {
                    if ptrace::detach(t.tid, t.signal).is_ok()
                        && let Some(sig) = t.signal
                    {
                        r.redelivered.insert(t.tid, sig);
                    }
                }
                ThreadState::Stopping | ThreadState::TimedOut => {
                    // It may have stopped since; if so, let it go now. Otherwise the kernel
                    // detaches it when wedge exits.
                    if let WaitOutcome::Stopped { signal } = ptrace::poll_stop(t.tid) {
                        let _ = ptrace::detach(t.tid, signal.or(t.signal));
                    } else {
                        r.timed_out.push(t.tid);
                    }
                }
                ThreadState::Gone => {}
            }
            t.state = ThreadState::Gone;
        }
        let now = Instant::now();
        for (pid, started) in &self.first_stop {
            if let Some(r) = out.get_mut(pid) {
                r.pause_us = now.duration_since(*started).as_micros() as u64;
            }
        }
        self.released = true;
        out
    }
}

impl Drop for FrozenTree {
    fn drop(&mut self) {
        if !self.released {
            self.resume();
        }
    }
}
