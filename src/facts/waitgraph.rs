//! The wait-for graph: which thread waits on which processes or threads, and which threads
//! can never go on.
//!
//! A thread is an edge source only when wedge knows everything that could end its wait:
//! a pipe or connected unix socket (whoever holds the other end), a child it waits for
//! (that child), a lock word (value ≠ 0) on a futex without a timeout (the threads that
//! could release it). Any other wait (a timeout, poll on a listening socket, a signal) or a
//! running thread counts as able to go on. A process can go on when any of its threads
//! can; a waiting thread can when any of its wakers can. What is left after that fixpoint
//! is stuck for good: nothing inside the capture will ever wake it, and nothing outside
//! can either (every waker is known and inside).

use super::{FutexWait, PipeVerdict, PipeWait};
use crate::model::Snapshot;
use std::collections::{BTreeMap, BTreeSet};

/// What could end a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Waker {
    /// Any thread of this process (it holds the other end of a pipe, or is the child).
    Process(i32),
    /// This thread.
    Thread(i32, i32),
}

/// One edge source: a thread and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub pid: i32,
    pub tid: i32,
    /// `read on pipe fd 3`, `wait4 for child 1234`, `lock word 0x… = 2`.
    pub what: String,
    pub fd: Option<i32>,
    pub wakers: Vec<Waker>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitGraph {
    pub waits: Vec<Wait>,
    /// Threads that can never go on, as (pid, tid).
    pub stuck: BTreeSet<(i32, i32)>,
    /// Goroutines that wait on nothing at all — a nil channel, an empty select — and so can
    /// never go on, as (pid, goroutine id, the runtime's wait reason). Other goroutine waits
    /// (channels, mutexes) name no counterpart in the runtime's data: they are not edges.
    pub stuck_goroutines: Vec<(i32, i64, String)>,
}

/// Go's wait reasons for waits nothing can end.
const FOREVER: [&str; 3] = [
    "chan receive (nil chan)",
    "chan send (nil chan)",
    "select (no cases)",
];

/// Goroutines parked for good (see [`WaitGraph::stuck_goroutines`]).
fn stuck_goroutines(s: &Snapshot) -> Vec<(i32, i64, String)> {
    s.processes
        .iter()
        .filter_map(|p| p.go.as_ref().map(|go| (p.pid, go)))
        .flat_map(|(pid, go)| {
            go.goroutines.iter().filter_map(move |g| {
                let r = g.wait_reason.as_deref()?;
                (FOREVER.contains(&r) && !g.system).then(|| (pid, g.id, r.to_string()))
            })
        })
        .collect()
}

impl WaitGraph {
    pub fn wait_of(&self, pid: i32, tid: i32) -> Option<&Wait> {
        self.waits.iter().find(|w| w.pid == pid && w.tid == tid)
    }

    /// The threads a stuck thread waits on directly (a process stands for its threads).
    fn successors<'a>(
        &'a self,
        s: &'a Snapshot,
        w: &'a Wait,
    ) -> impl Iterator<Item = (i32, i32)> + 'a {
        w.wakers.iter().flat_map(move |k| -> Vec<(i32, i32)> {
            match *k {
                Waker::Thread(p, t) => vec![(p, t)],
                Waker::Process(p) => s
                    .process(p)
                    .map(|q| q.threads.iter().map(|t| (p, t.tid)).collect())
                    .unwrap_or_default(),
            }
        })
    }

    /// Groups of stuck threads that wait on each other in a circle (strongly connected
    /// components of the stuck part with more than one thread, or one thread waiting on
    /// itself), each sorted, in order of their first thread.
    pub fn cycles(&self, s: &Snapshot) -> Vec<Vec<(i32, i32)>> {
        let nodes: Vec<(i32, i32)> = self.stuck.iter().copied().collect();
        let index: BTreeMap<(i32, i32), usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let adj: Vec<Vec<usize>> = nodes
            .iter()
            .map(|&(p, t)| {
                self.wait_of(p, t)
                    .map(|w| {
                        self.successors(s, w)
                            .filter_map(|n| index.get(&n).copied())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut out: Vec<Vec<(i32, i32)>> = scc(&adj)
            .into_iter()
            .filter(|c| c.len() > 1 || adj[c[0]].contains(&c[0]))
            .map(|c| {
                let mut v: Vec<(i32, i32)> = c.into_iter().map(|i| nodes[i]).collect();
                v.sort();
                v
            })
            .collect();
        out.sort();
        out
    }
}

/// Tarjan's strongly connected components, iteratively (deep chains cannot overflow).
fn scc(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if *i == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adj[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut c = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    c.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(c);
            }
        }
    }
    out
}

/// Children `pid` may be waiting for in wait4/waitid, from the call's arguments.
fn awaited_children(s: &Snapshot, pid: i32, name: &str, args: &[u64]) -> Option<Vec<i32>> {
    let children = s.processes.iter().filter(|c| c.ppid == pid);
    let which = match name {
        "wait4" => {
            let want = *args.first()? as i64 as i32;
            match want {
                -1 => children.map(|c| c.pid).collect(),
                w if w > 0 => children.filter(|c| c.pid == w).map(|c| c.pid).collect(),
                _ => return None, // process groups: not followed
            }
        }
        "waitid" => match *args.first()? {
            0 => children.map(|c| c.pid).collect(), // P_ALL
            1 => children
                .filter(|c| args.get(1) == Some(&(c.pid as u64)))
                .map(|c| c.pid)
                .collect(), // P_PID
            _ => return None,
        },
        _ => return None,
    };
    Some(which)
}

/// Builds the graph from the snapshot and the pipe and futex facts.
pub fn wait_graph(s: &Snapshot, pipes: &[PipeWait], futexes: &[FutexWait]) -> WaitGraph {
    let mut waits = Vec::new();
    for w in pipes {
        // No captured holder: someone outside the capture holds it; not followed.
        if w.verdict == PipeVerdict::NoOtherEnd {
            continue;
        }
        let mut wakers: Vec<Waker> = w
            .other_end
            .iter()
            .map(|(p, _)| Waker::Process(*p))
            .collect();
        wakers.dedup();
        waits.push(Wait {
            pid: w.pid,
            tid: w.tid,
            what: format!(
                "{} {} {} (fd {}); the other end: {}",
                if w.reading { "reads" } else { "writes" },
                if w.socket { "unix socket" } else { "pipe" },
                w.inode,
                w.fd,
                w.other_end
                    .iter()
                    .map(|(p, fd)| format!("process {p} fd {fd}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fd: Some(w.fd),
            wakers,
        });
    }
    for f in futexes {
        let timed = s
            .process(f.pid)
            .and_then(|p| p.thread(f.tid))
            .and_then(|t| t.syscall.as_ref())
            .is_some_and(|sys| sys.args.get(3).is_some_and(|&a| a != 0));
        if timed || f.value.is_none_or(|v| v == 0) || !f.op_name.starts_with("FUTEX_WAIT") {
            continue;
        }
        waits.push(Wait {
            pid: f.pid,
            tid: f.tid,
            what: format!(
                "lock word {:#x} = {} ({})",
                f.addr,
                f.value.unwrap_or(0),
                f.waiting_in.as_deref().unwrap_or(&f.op_name)
            ),
            fd: None,
            wakers: tid_in_word(f)
                .map(|t| vec![Waker::Thread(f.pid, t)])
                .unwrap_or_else(|| {
                    f.possible_wakers
                        .iter()
                        .map(|&(p, t)| Waker::Thread(p, t))
                        .collect()
                }),
        });
    }
    for p in &s.processes {
        for t in &p.threads {
            let Some(sys) = &t.syscall else { continue };
            let Some(name) = sys.name.as_deref() else {
                continue;
            };
            // A zombie child ends the wait at once: the thread is not stuck.
            let Some(kids) = awaited_children(s, p.pid, name, &sys.args) else {
                continue;
            };
            if kids.is_empty()
                || kids.iter().any(|k| {
                    s.process(*k)
                        .is_some_and(|c| c.state == "Z" || c.state == "X")
                })
            {
                continue;
            }
            waits.push(Wait {
                pid: p.pid,
                tid: t.tid,
                what: format!("{name} for child {}", join(&kids)),
                fd: None,
                wakers: kids.into_iter().map(Waker::Process).collect(),
            });
        }
    }

    // Least fixpoint of "can go on".
    let waiting: BTreeMap<(i32, i32), &Wait> = waits.iter().map(|w| ((w.pid, w.tid), w)).collect();
    let mut free_threads: BTreeSet<(i32, i32)> = s
        .processes
        .iter()
        .flat_map(|p| p.threads.iter().map(move |t| (p.pid, t.tid)))
        .filter(|k| !waiting.contains_key(k))
        .collect();
    loop {
        let free_procs: BTreeSet<i32> = free_threads.iter().map(|(p, _)| *p).collect();
        let newly: Vec<(i32, i32)> = waiting
            .iter()
            .filter(|(k, _)| !free_threads.contains(k))
            .filter(|(_, w)| {
                w.wakers.iter().any(|k| match *k {
                    Waker::Process(p) => free_procs.contains(&p),
                    Waker::Thread(p, t) => free_threads.contains(&(p, t)),
                })
            })
            .map(|(k, _)| *k)
            .collect();
        if newly.is_empty() {
            break;
        }
        free_threads.extend(newly);
    }
    let stuck = waiting
        .keys()
        .filter(|k| !free_threads.contains(k))
        .copied()
        .collect();
    WaitGraph {
        waits,
        stuck,
        stuck_goroutines: stuck_goroutines(s),
    }
}

/// A word holding the tid of another thread of the process: pthread_join's wait on a
/// thread's tid (cleared by the kernel when that thread exits) or a PI or robust mutex's
/// owner. Only that thread can end the wait.
fn tid_in_word(f: &FutexWait) -> Option<i32> {
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    let tid = (f.value? & FUTEX_TID_MASK) as i32;
    f.possible_wakers
        .iter()
        .find(|&&(p, t)| p == f.pid && t == tid)
        .map(|&(_, t)| t)
}

fn join(v: &[i32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{futex_waits, pipe_waits, sample};

    fn graph(s: &Snapshot) -> WaitGraph {
        wait_graph(s, &pipe_waits(s), &futex_waits(s))
    }

    #[test]
    fn a_living_ticker_frees_the_lock_holder_and_its_waiter() {
        let s = sample("blocked_threads");
        let g = graph(&s);
        assert_eq!(
            g.waits.len(),
            3,
            "the pipe read, the stdio lock and main's join: {g:#?}"
        );
        let main = s.processes[0].pid;
        let waiter = s.processes[0]
            .threads
            .iter()
            .find(|t| t.name == "waiter")
            .unwrap();
        assert_eq!(
            g.wait_of(main, main).unwrap().wakers,
            vec![Waker::Thread(main, waiter.tid)],
            "pthread_join waits for the one thread whose tid is in the word"
        );
        assert!(g.stuck.is_empty());
        assert!(g.cycles(&s).is_empty());
    }

    #[test]
    fn without_the_ticker_the_process_waits_on_itself() {
        let mut s = sample("blocked_threads");
        let p = &mut s.processes[0];
        p.threads
            .retain(|t| t.name == "holder" || t.name == "waiter");
        let g = graph(&s);
        let pid = s.processes[0].pid;
        assert_eq!(g.stuck.len(), 2);
        let cycles = g.cycles(&s);
        assert_eq!(cycles.len(), 1);
        assert!(cycles[0].iter().all(|(p, _)| *p == pid));
    }

    #[test]
    fn the_clone_fork_child_is_a_dead_end_and_its_parent_waits_on_it() {
        let s = sample("clone_fork_buggy");
        let g = graph(&s);
        let root = s.processes.iter().find(|p| p.threads.len() > 1).unwrap();
        let child = s.processes.iter().find(|p| p.ppid == root.pid).unwrap();
        assert!(g.stuck.contains(&(child.pid, child.pid)), "{g:#?}");
        let reader = g
            .waits
            .iter()
            .find(|w| w.pid == root.pid && w.fd.is_some())
            .expect("the parent's pipe read");
        assert!(reader.wakers.contains(&Waker::Process(child.pid)));
        // The parent also holds the write end, but its other thread is parked for good
        // in fflush(NULL) on a full pipe nobody reads: the whole parent is stuck.
        assert!(g.stuck.contains(&(root.pid, reader.tid)));
        assert!(
            g.cycles(&s)
                .iter()
                .all(|c| c.iter().all(|(p, _)| *p == root.pid)),
            "the child is a dead end, in no circle"
        );
    }

    #[test]
    fn tarjan_finds_circles_and_self_loops() {
        let adj = vec![vec![1], vec![2], vec![0], vec![3], vec![0]];
        let mut c: Vec<Vec<usize>> = scc(&adj)
            .into_iter()
            .map(|mut v| {
                v.sort();
                v
            })
            .collect();
        c.sort();
        assert_eq!(c, vec![vec![0, 1, 2], vec![3], vec![4]]);
    }

    #[test]
    fn goroutines_waiting_on_nothing_are_stuck_for_good() {
        let mut s = sample("reader_race_hold");
        assert!(graph(&s).stuck_goroutines.is_empty());
        let go = s.processes[0].go.as_mut().unwrap();
        let user = go.goroutines.iter().position(|g| !g.system).unwrap();
        go.goroutines[user].wait_reason = Some("select (no cases)".into());
        let id = go.goroutines[user].id;
        let pid = s.processes[0].pid;
        assert_eq!(
            graph(&s).stuck_goroutines,
            vec![(pid, id, "select (no cases)".to_string())]
        );
    }
}
