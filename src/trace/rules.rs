//! Pattern rules over a [`Timeline`]: pure functions from the recorded events to findings of
//! the ordinary signature catalog (`clone-fork-mix`, `memfd-shared-stage`), each marked as
//! a risk when the run got past the pattern, with the events that show it as evidence.

use super::timeline::{Creation, Event, Timeline, What};
use crate::facts::memory::{F_SEAL_FUTURE_WRITE, seal_names};
use crate::model::{Confidence, Evidence, Finding};
use crate::signatures::{Signature, catalog};
use serde::{Deserialize, Serialize};

/// A finding from the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceFinding {
    /// True when the pattern happened but did not bite this time (the run went on): a risk
    /// that strikes on some other run. False when the run shows the failure itself.
    pub risk: bool,
    #[serde(flatten)]
    pub finding: Finding,
}

fn signature(id: &str) -> Option<&'static Signature> {
    catalog().iter().find(|s| s.id == id)
}

fn evidence(e: &Event, text: String) -> Evidence {
    Evidence {
        pid: Some(e.pid),
        tid: Some(e.tid),
        text: format!("+{:.3} s: {text}", e.t_us as f64 / 1e6),
        ..Evidence::default()
    }
}

/// Every rule.
pub fn run(tl: &Timeline) -> Vec<TraceFinding> {
    let mut out = clone_fork_mix(tl);
    out.extend(memfd_shared_stage(tl));
    out
}

/// The events of process `pid` after index `from`, up to its exec (whose memory is fresh).
fn until_exec(tl: &Timeline, pid: i32, from: usize) -> impl Iterator<Item = &Event> {
    tl.events[from..]
        .iter()
        .filter(move |e| e.pid == pid)
        .take_while(|e| !matches!(e.what, What::Exec { .. }))
}

/// A private futex wait on value 2: glibc's lll_lock_wait_private, as fork() waiting on a
/// copied stdio or malloc lock shows.
fn private_lock_wait(syscall: &[u64]) -> bool {
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_PRIVATE: u64 = 0x80;
    syscall.first() == Some(&(libc::SYS_futex as u64))
        && syscall
            .get(2)
            .is_some_and(|op| op & !FUTEX_PRIVATE == FUTEX_WAIT)
        && syscall.get(2).is_some_and(|op| op & FUTEX_PRIVATE != 0)
        && syscall.get(3) == Some(&2)
}

/// `clone-fork-mix`: a process made by a raw clone from a process that runs (or ran) other
/// threads, which then calls glibc fork() before any exec — or is found blocked in a
/// private lock wait, never having got as far as the clone of its fork.
pub fn clone_fork_mix(tl: &Timeline) -> Vec<TraceFinding> {
    let Some(sig) = signature("clone-fork-mix") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, e) in tl.events.iter().enumerate() {
        let What::Created {
            child,
            how: Creation::RawClone,
            flags,
            creator_threads,
            creator_had_threads,
            ..
        } = &e.what
        else {
            continue;
        };
        if *creator_threads < 2 && !creator_had_threads {
            continue;
        }
        let made = evidence(
            e,
            format!(
                "process {} (with {creator_threads} thread(s){}) created process {child} with a raw clone (flags {flags:#x}: no CLONE_CHILD_SETTID/CLEARTID, so glibc's fork preparation did not run)",
                e.pid,
                if *creator_had_threads && *creator_threads < 2 {
                    ", having run others before"
                } else {
                    ""
                }
            ),
        );
        for later in until_exec(tl, *child, i + 1) {
            match &later.what {
                What::Created {
                    child: grandchild,
                    how: Creation::Fork,
                    flags,
                    ..
                } => {
                    let forked = evidence(
                        later,
                        format!(
                            "process {child}, before any exec, called glibc fork() (flags {flags:#x}) and created process {grandchild}"
                        ),
                    );
                    out.push(TraceFinding {
                        risk: true,
                        finding: sig.finding(
                            Confidence::Certain,
                            vec![made.clone(), forked],
                            format!(
                                "Process {child} was made by a raw clone from a multi-threaded process and then called glibc fork(). The raw clone copied glibc's locks (stdio list lock, malloc arenas) in whatever state the other threads held them; fork() takes those locks first. This run got through, but whenever another thread holds one of them at the moment of the clone, the fork waits forever on a lock whose owner does not exist in the child — podman #25184."
                            ),
                        ),
                    });
                    break;
                }
                What::Alive {
                    syscall: Some(sc),
                    state,
                    ..
                } if later.tid == *child && private_lock_wait(sc) => {
                    let stuck = evidence(
                        later,
                        format!(
                            "process {child} (state {state}), before any exec, was blocked in futex(FUTEX_WAIT_PRIVATE, 2) at {:#x} when the trace ended",
                            sc.get(1).copied().unwrap_or(0)
                        ),
                    );
                    out.push(TraceFinding {
                        risk: false,
                        finding: sig.finding(
                            Confidence::Likely,
                            vec![made.clone(), stuck],
                            format!(
                                "Process {child} was made by a raw clone from a multi-threaded process and then waited forever on a private glibc lock (value 2, contended), before any exec: the shape of glibc fork() waiting on a lock copied in its locked state by the raw clone, whose owner thread does not exist in the child — podman #25184. `wedge diagnose {child}` shows the stack."
                            ),
                        ),
                    });
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// `memfd-shared-stage`: an exec of a memfd sealed with F_SEAL_FUTURE_WRITE on a kernel
/// older than 5.5, or where the host check found copy-on-write broken.
pub fn memfd_shared_stage(tl: &Timeline) -> Vec<TraceFinding> {
    let Some(sig) = signature("memfd-shared-stage") else {
        return Vec::new();
    };
    let version = crate::signatures::memfd_shared_stage::kernel_version(&tl.kernel_release);
    let old = version.is_some_and(|v| v < (5, 5));
    let broken = tl.cow_broken == Some(true);
    if !old && !broken {
        return Vec::new();
    }
    let why = if broken {
        format!(
            "the host check found copy-on-write broken for such mappings (kernel {})",
            tl.kernel_release
        )
    } else {
        format!(
            "kernel {} predates the copy-on-write fix of 5.5 (commit 05d351102dbe)",
            tl.kernel_release
        )
    };
    let mut out: Vec<TraceFinding> = Vec::new();
    for e in &tl.events {
        let memfd = match &e.what {
            What::ExecCall { memfd: Some(m), .. } | What::Exec { memfd: Some(m), .. } => m,
            _ => continue,
        };
        let Some(seals) = memfd.seals.filter(|s| s & F_SEAL_FUTURE_WRITE != 0) else {
            continue;
        };
        // One finding per process (the exec entry and the exec itself both show it).
        if out
            .iter()
            .any(|f| f.finding.evidence.first().and_then(|ev| ev.pid) == Some(e.pid))
        {
            continue;
        }
        out.push(TraceFinding {
            risk: tl.status == Some(0),
            finding: sig.finding(
                Confidence::Likely,
                vec![evidence(
                    e,
                    format!(
                        "process {} executes memfd {:?} sealed {}",
                        e.pid,
                        memfd.name,
                        seal_names(seals)
                    ),
                )],
                format!(
                    "Process {} runs from a memfd sealed with F_SEAL_FUTURE_WRITE (runc 1.2.0 – 1.2.5 does this for `runc init`), and {why}: its private writable data is shared across fork, so nsexec's stages share `current_stage` and `syncfd` and the start can hang or fail with EBADF — runc #4640.",
                    e.pid
                ),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Timeline {
        let text = match name {
            "exit" => include_str!("../../samples/trace/clone_fork_buggy_exit.json"),
            "hang" => include_str!("../../samples/trace/clone_fork_buggy_hang.json"),
            _ => include_str!("../../samples/trace/memfd_stage_buggy.json"),
        };
        serde_json::from_str(text).expect("a recorded timeline")
    }

    #[test]
    fn raw_clone_then_glibc_fork_is_a_risk_on_a_run_that_finished() {
        let tl = fixture("exit");
        let f = run(&tl);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].risk);
        assert_eq!(f[0].finding.id, "clone-fork-mix");
        assert_eq!(f[0].finding.confidence, Confidence::Certain);
        assert_eq!(f[0].finding.evidence.len(), 2);
    }

    #[test]
    fn a_single_threaded_creator_or_an_exec_before_the_fork_is_not_flagged() {
        let mut tl = fixture("exit");
        for e in &mut tl.events {
            if let What::Created {
                creator_threads,
                creator_had_threads,
                ..
            } = &mut e.what
            {
                *creator_threads = 1;
                *creator_had_threads = false;
            }
        }
        assert!(clone_fork_mix(&tl).is_empty());
        // Only "had run other threads": still flagged.
        let mut tl = fixture("exit");
        for e in &mut tl.events {
            if let What::Created {
                how: Creation::RawClone,
                creator_threads,
                creator_had_threads,
                ..
            } = &mut e.what
            {
                *creator_threads = 1;
                *creator_had_threads = true;
            }
        }
        assert_eq!(clone_fork_mix(&tl).len(), 1);
        // The raw-cloned child execs before it forks: its memory is fresh, nothing to say.
        let mut tl = fixture("exit");
        let child = tl
            .events
            .iter()
            .find_map(|e| match e.what {
                What::Created {
                    child,
                    how: Creation::RawClone,
                    ..
                } => Some(child),
                _ => None,
            })
            .expect("a raw clone");
        let at = tl
            .events
            .iter()
            .position(|e| e.pid == child)
            .expect("the child's events");
        tl.events.insert(
            at,
            Event {
                t_us: 0,
                pid: child,
                tid: child,
                what: What::Exec {
                    exe: "/bin/true".into(),
                    comm: "true".into(),
                    memfd: None,
                },
            },
        );
        assert!(clone_fork_mix(&tl).is_empty());
    }

    #[test]
    fn a_raw_clone_child_left_in_a_private_lock_wait_is_flagged_as_the_hang() {
        let tl = fixture("hang");
        let f = run(&tl);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(!f[0].risk);
        assert_eq!(f[0].finding.id, "clone-fork-mix");
        assert_eq!(f[0].finding.confidence, Confidence::Likely);
        assert!(f[0].finding.evidence[1].text.contains("FUTEX_WAIT_PRIVATE"));
    }

    #[test]
    fn future_write_memfd_exec_is_a_risk_on_old_or_broken_kernels_only() {
        let mut tl = fixture("memfd");
        // Recorded on a fixed kernel (6.x, copy-on-write kept): nothing.
        assert!(run(&tl).is_empty());
        tl.kernel_release = "5.4.0-150-generic".into();
        let f = run(&tl);
        assert_eq!(f.len(), 1, "one finding per process: {f:#?}");
        assert_eq!(f[0].finding.id, "memfd-shared-stage");
        assert!(f[0].risk, "the run finished");
        assert!(
            f[0].finding.evidence[0]
                .text
                .contains("F_SEAL_FUTURE_WRITE")
        );
        tl.kernel_release = "6.1.0".into();
        tl.cow_broken = Some(true);
        tl.status = None;
        let f = run(&tl);
        assert_eq!(f.len(), 1);
        assert!(!f[0].risk);
    }
}
