//! Fatal faults: a process that died of SIGSEGV or SIGBUS, with the faulting address and
//! function. Native programs: the core's fatal signal (NT_SIGINFO) and the thread it names.
//! Go programs: the goroutine whose g.sig/g.sigcode1/g.sigpc the runtime set and that died
//! of it (with GOTRACEBACK=crash a Go core's siginfo says SIGABRT, not the fault).

use super::go::{GoroutineFault, goroutine_faults, names};
use crate::model::Snapshot;

/// SIGBUS and SIGSEGV: the same numbers on x86-64 and arm64.
pub const SIGBUS: i32 = 7;
pub const SIGSEGV: i32 = 11;

/// The name of a fault or abort signal (the same numbers on x86-64 and arm64).
pub fn signal_name(signo: i32) -> String {
    match signo {
        4 => "SIGILL".into(),
        5 => "SIGTRAP".into(),
        6 => "SIGABRT".into(),
        SIGBUS => "SIGBUS".into(),
        8 => "SIGFPE".into(),
        SIGSEGV => "SIGSEGV".into(),
        _ => format!("signal {signo}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatalFault {
    pub pid: i32,
    pub tid: Option<i32>,
    /// Set for a Go program: the goroutine that faulted.
    pub goroutine: Option<i64>,
    pub signo: i32,
    pub addr: u64,
    pub pc: Option<u64>,
    /// The function at the fault, where the frames name it.
    pub function: Option<String>,
    /// Function names from the faulting frame outward.
    pub frames: Vec<String>,
}

pub fn fatal_faults(s: &Snapshot) -> Vec<FatalFault> {
    let go: Vec<GoroutineFault> = goroutine_faults(s)
        .into_iter()
        .filter(|f| f.fatal && matches!(f.signo as i32, SIGSEGV | SIGBUS))
        .collect();
    let mut out: Vec<FatalFault> = go
        .iter()
        .map(|f| FatalFault {
            pid: f.pid,
            tid: f.thread,
            goroutine: Some(f.goroutine),
            signo: f.signo as i32,
            addr: f.addr,
            pc: Some(f.pc),
            function: f.function.clone(),
            frames: f.frames.clone(),
        })
        .collect();
    for p in &s.processes {
        let Some(sig) = &p.signal else { continue };
        if !matches!(sig.signo, SIGSEGV | SIGBUS) || go.iter().any(|f| f.pid == p.pid) {
            continue;
        }
        let Some(addr) = sig.addr else { continue };
        let thread = sig.tid.and_then(|t| p.thread(t));
        // A thread caught inside a signal handler that ran first (Go's preemption signal can
        // be queued ahead of the fault) shows the handler on top: the fault is below the
        // signal return trampoline.
        let skip = thread
            .map(|t| {
                t.frames
                    .iter()
                    .position(|f| {
                        matches!(
                            f.function.as_deref(),
                            Some(
                                "runtime.sigreturn"
                                    | "runtime.sigreturn__sigaction"
                                    | "__restore_rt"
                            )
                        )
                    })
                    .map_or(0, |i| i + 1)
            })
            .unwrap_or(0);
        let frames: Vec<String> = thread
            .map(|t| {
                t.frames[skip.min(t.frames.len())..]
                    .iter()
                    .flat_map(names)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        // A Go program caught at the fault itself (`wedge run` holds the signal before the
        // runtime's handler records it in g.sig*): the goroutine running on that thread.
        let goroutine = p.go.as_ref().and_then(|go| {
            go.goroutines
                .iter()
                .find(|g| g.thread.is_some() && g.thread == sig.tid && g.status == "running")
                .map(|g| g.id)
        });
        out.push(FatalFault {
            pid: p.pid,
            tid: sig.tid,
            goroutine,
            signo: sig.signo,
            addr,
            pc: thread.and_then(|t| t.frames.get(skip)).map(|f| f.pc),
            function: thread
                .and_then(|t| t.frames.get(skip))
                .and_then(|f| f.function.clone()),
            frames,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::sample;
    use crate::model::{CrashSignal, GoFault};

    #[test]
    fn a_native_segv_names_the_crashing_thread() {
        let mut s = sample("blocked_threads");
        assert!(fatal_faults(&s).is_empty(), "no signal, no fault");
        let p = &mut s.processes[0];
        let tid = p.threads[1].tid;
        let want = p.threads[1].frames[0].function.clone();
        p.signal = Some(CrashSignal {
            goroutine: None,
            signo: SIGSEGV,
            code: 1,
            addr: Some(0x8),
            tid: Some(tid),
        });
        let f = fatal_faults(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].tid, f[0].addr, f[0].goroutine),
            (Some(tid), 0x8, None)
        );
        assert_eq!(f[0].function, want);
        s.processes[0].signal.as_mut().unwrap().signo = 6;
        assert!(fatal_faults(&s).is_empty(), "SIGABRT is no fault");
    }

    #[test]
    fn a_recovered_go_fault_is_not_fatal() {
        let mut s = sample("reader_race_hold");
        fn gs(s: &mut crate::model::Snapshot) -> &mut crate::model::Goroutine {
            let go = s.processes[0].go.as_mut().unwrap();
            go.goroutines.iter_mut().find(|g| g.id == 6).unwrap()
        }
        gs(&mut s).fault = Some(GoFault {
            signo: 11,
            addr: 0x20,
            pc: 0x1,
        });
        assert!(fatal_faults(&s).is_empty());
        // Dying in the runtime's fatal panic makes it fatal.
        let g = gs(&mut s);
        let f0 = g.frames[0].clone();
        g.frames.insert(
            0,
            crate::model::Frame {
                function: Some("runtime.fatalpanic".into()),
                ..f0
            },
        );
        let id = g.id;
        let f = fatal_faults(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].goroutine, Some(id));
        assert_eq!(f[0].signo, SIGSEGV);
    }
}
