//! Go facts: goroutines inside the same function at once (with the receiver each one's frame
//! shows, and whether it is still waiting for a lock taken in that function), and goroutines
//! that took a fault the runtime turned into a panic (g.sig, g.sigcode1, g.sigpc).
//!
//! Receivers come from [`crate::model::Frame::arg0_slot`]: on amd64 (register ABI, Go 1.17+)
//! the caller reserves the first argument's spill slot at the callee's call-frame address,
//! and a function that keeps its receiver live across a call (a parked method does) spills
//! it there. A function that does not leaves an older value, so a receiver is compared only
//! between goroutines parked in the same function and reported as "the same word", never
//! alone as proof.

use crate::model::{Frame, Goroutine, Snapshot};
use std::collections::BTreeMap;

/// One goroutine found inside a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFunction {
    pub goroutine: i64,
    /// The thread running it (running or in a syscall), if any.
    pub thread: Option<i32>,
    pub status: String,
    pub wait_reason: Option<String>,
    /// Index of the frame the function is in (0: innermost).
    pub depth: usize,
    /// The first-argument spill slot of the function's frame (the receiver of a method),
    /// when captured and the function has a frame of its own (not inlined).
    pub receiver: Option<u64>,
    /// Still waiting to take a sync.Mutex / RWMutex that this function locks: inside the
    /// function, but not yet past its lock.
    pub waiting_for_lock: bool,
}

/// Two or more goroutines of one process inside the same function at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameFunction {
    pub pid: i32,
    pub function: String,
    pub goroutines: Vec<InFunction>,
}

impl SameFunction {
    /// The goroutines inside the function and past any lock it takes.
    pub fn past_lock(&self) -> Vec<&InFunction> {
        self.goroutines
            .iter()
            .filter(|g| !g.waiting_for_lock)
            .collect()
    }

    /// The receiver word every one of `gs` (two or more) shows, when all show the same one.
    pub fn shared_receiver(gs: &[&InFunction]) -> Option<u64> {
        let first = gs.first()?.receiver?;
        (gs.len() >= 2 && first != 0 && gs.iter().all(|g| g.receiver == Some(first)))
            .then_some(first)
    }
}

/// Function names of a frame, innermost first: its inlined calls, then its own function.
pub fn names(f: &Frame) -> impl Iterator<Item = &str> {
    f.inlined
        .iter()
        .map(|i| i.function.as_str())
        .chain(f.function.as_deref())
}

/// The runtime's and sync's internals a lock wait goes through, below the lock call.
fn lock_internal(name: &str) -> bool {
    name.starts_with("runtime.") || name.starts_with("sync.runtime_")
}

fn is_lock(name: &str) -> bool {
    name.starts_with("sync.(*Mutex).") || name.starts_with("sync.(*RWMutex).")
}

/// Every group of two or more (non-runtime) goroutines of a process inside one function
/// (runtime functions excluded), by function name.
pub fn same_function(s: &Snapshot) -> Vec<SameFunction> {
    let mut out = Vec::new();
    for p in &s.processes {
        let Some(go) = &p.go else { continue };
        let mut groups: BTreeMap<&str, Vec<InFunction>> = BTreeMap::new();
        for g in go.goroutines.iter().filter(|g| !g.system) {
            let mut seen: Vec<&str> = Vec::new();
            // The nearest function inside the current one that is not runtime internals.
            let mut inner: Option<&str> = None;
            for (depth, f) in g.frames.iter().enumerate() {
                let own = f.function.as_deref();
                for name in names(f) {
                    if !name.starts_with("runtime.") && !seen.contains(&name) {
                        seen.push(name);
                        groups.entry(name).or_default().push(InFunction {
                            goroutine: g.id,
                            thread: g.thread,
                            status: g.status.clone(),
                            wait_reason: g.wait_reason.clone(),
                            depth,
                            receiver: if Some(name) == own { f.arg0_slot } else { None },
                            waiting_for_lock: inner.is_some_and(is_lock),
                        });
                    }
                    if !lock_internal(name) {
                        inner = Some(name);
                    }
                }
            }
        }
        for (function, goroutines) in groups {
            if goroutines.len() >= 2 {
                out.push(SameFunction {
                    pid: p.pid,
                    function: function.to_string(),
                    goroutines,
                });
            }
        }
    }
    out
}

/// A goroutine that took a fault the runtime turned into a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoroutineFault {
    pub pid: i32,
    pub goroutine: i64,
    pub thread: Option<i32>,
    pub signo: u32,
    /// The faulting address (g.sigcode1).
    pub addr: u64,
    /// The faulting pc (g.sigpc).
    pub pc: u64,
    /// The function that faulted: the frame just outside runtime.sigpanic, or the frame at
    /// the faulting pc.
    pub function: Option<String>,
    /// Function names from the faulting frame outward.
    pub frames: Vec<String>,
    /// The fault killed the process: it is the goroutine dying in the runtime's fatal
    /// panic, or the thread a core's fatal signal names. Otherwise it was recovered (the
    /// runtime keeps g.sig after a recover).
    pub fatal: bool,
}

/// Goroutines with a recorded fault, fatal or recovered.
pub fn goroutine_faults(s: &Snapshot) -> Vec<GoroutineFault> {
    let mut out = Vec::new();
    for p in &s.processes {
        let Some(go) = &p.go else { continue };
        for g in &go.goroutines {
            let Some(fault) = &g.fault else { continue };
            let start = fault_frame(g, fault.pc);
            let frames: Vec<String> = start
                .map(|i| {
                    g.frames[i..]
                        .iter()
                        .flat_map(|f| names(f).map(String::from).collect::<Vec<_>>())
                        .collect()
                })
                .unwrap_or_default();
            let dying = g.frames.iter().any(|f| {
                matches!(
                    f.function.as_deref(),
                    Some("runtime.fatalpanic" | "runtime.crash" | "runtime.dieFromSignal")
                )
            });
            let signalled = p.signal.as_ref().is_some_and(|sig| {
                (sig.tid.is_some() && sig.tid == g.thread) || sig.goroutine == Some(g.id)
            });
            out.push(GoroutineFault {
                pid: p.pid,
                goroutine: g.id,
                thread: g.thread,
                signo: fault.signo,
                addr: fault.addr,
                pc: fault.pc,
                function: frames.first().cloned(),
                frames,
                fatal: dying || signalled,
            });
        }
    }
    out
}

/// Index of the faulting frame: the one whose pc is the fault's, else the one just outside
/// runtime.sigpanic, else — in a traceback read from a log, which hides the runtime's frames
/// and prints no pcs — the first frame outside the runtime.
fn fault_frame(g: &Goroutine, pc: u64) -> Option<usize> {
    g.frames
        .iter()
        .position(|f| pc != 0 && f.pc == pc)
        .or_else(|| {
            g.frames
                .iter()
                .position(|f| f.function.as_deref() == Some("runtime.sigpanic"))
                .map(|i| i + 1)
                .filter(|i| *i < g.frames.len())
        })
        .or_else(|| {
            g.frames.iter().position(|f| {
                f.trust == crate::model::FrameTrust::Text
                    && f.function.as_deref().is_some_and(|n| {
                        !n.starts_with("runtime.") && n != "panic" && !n.starts_with("panic(")
                    })
            })
        })
}

/// A goroutine that has waited at least [`LONG_WAIT_NS`] (where the runtime recorded
/// when its wait began: it does so lazily, during a GC, so short or fresh waits are absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongWait {
    pub pid: i32,
    pub goroutine: i64,
    pub wait_reason: Option<String>,
    pub waited_ns: u64,
    /// The innermost frame outside the runtime: the code that waits.
    pub waiting_in: Option<String>,
}

/// One minute: the shortest wait Go's own tracebacks print (`[chan receive, 1 minutes]`).
pub const LONG_WAIT_NS: u64 = 60_000_000_000;

/// Goroutines that have waited a minute or more, longest first.
pub fn long_waits(s: &Snapshot) -> Vec<LongWait> {
    let mut out: Vec<LongWait> = s
        .processes
        .iter()
        .filter_map(|p| p.go.as_ref().map(|go| (p.pid, go)))
        .flat_map(|(pid, go)| {
            go.goroutines.iter().filter_map(move |g| {
                let waited_ns = g.waited_ns.filter(|w| *w >= LONG_WAIT_NS)?;
                Some(LongWait {
                    pid,
                    goroutine: g.id,
                    wait_reason: g.wait_reason.clone(),
                    waited_ns,
                    waiting_in: g
                        .frames
                        .iter()
                        .filter_map(|f| f.function.as_deref())
                        .find(|f| !f.starts_with("runtime.") && !f.starts_with("internal/"))
                        .map(String::from),
                })
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.waited_ns
            .cmp(&a.waited_ns)
            .then(a.goroutine.cmp(&b.goroutine))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::sample;
    use crate::model::GoFault;

    const READ_AT: &str = "main.(*readerAtCloser).ReadAt";

    #[test]
    fn five_workers_inside_read_at_with_one_receiver() {
        let s = sample("reader_race_hold");
        let groups = same_function(&s);
        let g = groups
            .iter()
            .find(|g| g.function == READ_AT)
            .expect("a ReadAt group");
        assert_eq!(g.goroutines.len(), 5);
        let past = g.past_lock();
        assert_eq!(past.len(), 5, "no lock in the buggy reader");
        // The probe printed `receiver 0xc000064050` (%p) for this capture.
        assert_eq!(SameFunction::shared_receiver(&past), Some(0xc000064050));
        // Each part has its own SectionReader: the same slot one frame out differs.
        let sections = groups
            .iter()
            .find(|g| g.function == "io.(*SectionReader).Read")
            .unwrap();
        let mut rs: Vec<u64> = sections
            .goroutines
            .iter()
            .filter_map(|g| g.receiver)
            .collect();
        rs.sort();
        rs.dedup();
        assert_eq!(rs.len(), 5, "five distinct SectionReaders");
        // Runtime functions never form groups; one goroutine alone is no group.
        assert!(groups.iter().all(|g| !g.function.starts_with("runtime.")));
        assert!(groups.iter().all(|g| g.goroutines.len() >= 2));
        assert!(goroutine_faults(&s).is_empty());
    }

    #[test]
    fn goroutines_waiting_for_the_mutex_are_not_past_it() {
        let s = sample("reader_race_fixed_hold");
        let g = same_function(&s)
            .into_iter()
            .find(|g| g.function == READ_AT)
            .unwrap();
        assert_eq!(g.goroutines.len(), 5);
        let past = g.past_lock();
        assert_eq!(past.len(), 1, "{past:#?}");
        assert_eq!(past[0].wait_reason.as_deref(), Some("chan receive"));
        assert!(
            g.goroutines
                .iter()
                .filter(|g| g.waiting_for_lock)
                .all(|g| g.wait_reason.as_deref() == Some("semacquire"))
        );
        assert_eq!(SameFunction::shared_receiver(&past), None, "one is no pair");
    }

    #[test]
    fn receivers_must_all_agree() {
        let mut s = sample("reader_race_hold");
        let go = s.processes[0].go.as_mut().unwrap();
        let g = go
            .goroutines
            .iter_mut()
            .find(|g| {
                g.frames
                    .iter()
                    .any(|f| f.function.as_deref() == Some(READ_AT))
            })
            .unwrap();
        for f in g.frames.iter_mut() {
            if f.function.as_deref() == Some(READ_AT) {
                f.arg0_slot = Some(0xc000999000);
            }
        }
        let grp = same_function(&s)
            .into_iter()
            .find(|g| g.function == READ_AT)
            .unwrap();
        assert_eq!(SameFunction::shared_receiver(&grp.past_lock()), None);
    }

    #[test]
    fn a_fault_names_the_frame_outside_sigpanic() {
        let mut s = sample("reader_race_hold");
        let go = s.processes[0].go.as_mut().unwrap();
        let g = go
            .goroutines
            .iter_mut()
            .find(|g| {
                g.frames
                    .iter()
                    .any(|f| f.function.as_deref() == Some(READ_AT))
            })
            .unwrap();
        let id = g.id;
        // Make it look like the crash: sigpanic called at the faulting pc inside ReadAt.
        let at = g
            .frames
            .iter()
            .position(|f| f.function.as_deref() == Some(READ_AT))
            .unwrap();
        g.frames[at - 1].function = Some("runtime.sigpanic".into());
        g.fault = Some(GoFault {
            signo: 11,
            addr: 0x20,
            pc: 0x1,
        });
        let faults = goroutine_faults(&s);
        assert_eq!(faults.len(), 1);
        let f = &faults[0];
        assert_eq!(f.goroutine, id);
        assert_eq!(f.addr, 0x20);
        assert_eq!(f.function.as_deref(), Some(READ_AT));
        assert_eq!(
            f.frames.get(1).map(String::as_str),
            Some("io.(*SectionReader).Read")
        );
        assert!(
            !f.fatal,
            "parked, no fatal panic, no core signal: recovered"
        );
    }

    #[test]
    fn long_waits_are_the_goroutines_waiting_a_minute_or_more() {
        let mut s = sample("reader_race_hold");
        assert!(
            long_waits(&s).is_empty(),
            "a fresh capture records no old waits"
        );
        let go = s.processes[0].go.as_mut().unwrap();
        let ids: Vec<i64> = go.goroutines.iter().map(|g| g.id).take(3).collect();
        for (g, ns) in go
            .goroutines
            .iter_mut()
            .zip([30e9 as u64, 90e9 as u64, 600e9 as u64])
        {
            g.waited_ns = Some(ns);
        }
        let w = long_waits(&s);
        assert_eq!(
            w.iter().map(|w| w.goroutine).collect::<Vec<_>>(),
            vec![ids[2], ids[1]],
            "longest first; 30 s is not long"
        );
        assert!(
            w[0].waiting_in
                .as_deref()
                .is_none_or(|f| !f.starts_with("runtime."))
        );
    }
}
