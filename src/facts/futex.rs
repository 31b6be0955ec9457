//! Futex waits: which word a thread sleeps on, where that word lives (private or shared
//! memory, which file or library), and whether anything could ever wake it.

use crate::model::{Mapping, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FutexWait {
    pub pid: i32,
    pub tid: i32,
    pub addr: u64,
    /// FUTEX_PRIVATE_FLAG: only threads of the same process can wake it.
    pub private: bool,
    pub op_name: String,
    pub expected: u32,
    /// The word's value during the freeze.
    pub value: Option<u32>,
    /// The mapping the word lies in: start address, path (None: anonymous), shared.
    pub mapping: Option<(u64, Option<String>, bool)>,
    /// The file whose data the word belongs to: the mapping's own file, or for an
    /// anonymous mapping right after a file's writable data, that file (its .bss).
    pub owner_file: Option<String>,
    /// The innermost named frame of the waiter (e.g. `__lll_lock_wait_private`).
    pub waiting_in: Option<String>,
    /// Threads that could wake it: the other live threads of the process, and for a shared
    /// word the threads of other captured processes that map the same object — or, for a
    /// pthread mutex whose owner is recorded, that owner alone (if it still lives).
    pub possible_wakers: Vec<(i32, i32)>,
    /// For a thread waiting in pthread_mutex_lock: the owner tid glibc recorded in the
    /// mutex (`__owner`, 8 bytes after the lock word), as the process's own namespace
    /// numbers it.
    pub mutex_owner: Option<MutexOwner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutexOwner {
    pub tid: i32,
    /// The owner is a captured thread of the process (its host tid, when it lives).
    pub alive: Option<i32>,
}

/// glibc's mutex lock paths: the word a thread waits on there is a pthread_mutex_t's
/// `__lock`, with `__owner` at +8.
const MUTEX_LOCKERS: [&str; 6] = [
    "pthread_mutex_lock",
    "___pthread_mutex_lock",
    "__pthread_mutex_lock",
    "__pthread_mutex_lock_full",
    "pthread_mutex_timedlock",
    "__pthread_mutex_clocklock_common",
];

impl FutexWait {
    /// Nobody is left who could ever wake this thread.
    pub fn unwakeable(&self) -> bool {
        self.possible_wakers.is_empty()
    }
}

/// The file a mapping's memory belongs to: its own path, or — for the anonymous mapping the
/// loader places right after a library's writable data — that library (its .bss).
fn owner_file(mappings: &[Mapping], m: &Mapping) -> Option<String> {
    if let Some(p) = m.file_path() {
        return Some(p.to_string());
    }
    let prev = mappings.iter().find(|p| p.end == m.start)?;
    (prev.is_write() && prev.file_path().is_some()).then(|| prev.file_path().map(String::from))?
}

fn same_object(a: &Mapping, b: &Mapping) -> bool {
    a.inode != 0 && a.inode == b.inode && a.dev == b.dev
}

pub fn futex_waits(s: &Snapshot) -> Vec<FutexWait> {
    let mut out = Vec::new();
    for p in &s.processes {
        for t in &p.threads {
            let Some(sys) = &t.syscall else { continue };
            let Some(w) = &sys.futex else { continue };
            let mapping = p.mapping_at(w.addr);
            // Other threads of the process: any of them may release the lock — unless it
            // is itself waiting on the very same word.
            let mut wakers: Vec<(i32, i32)> = p
                .threads
                .iter()
                .filter(|o| o.tid != t.tid && o.state != "Z" && o.state != "X")
                .filter(|o| {
                    o.syscall
                        .as_ref()
                        .and_then(|s| s.futex.as_ref())
                        .is_none_or(|f| f.addr != w.addr)
                })
                .map(|o| (p.pid, o.tid))
                .collect();
            if !w.private
                && let Some(m) = mapping.filter(|m| m.is_shared())
            {
                for q in s.processes.iter().filter(|q| q.pid != p.pid) {
                    if q.mappings
                        .iter()
                        .any(|qm| qm.is_shared() && same_object(qm, m))
                    {
                        wakers.extend(q.threads.iter().map(|o| (q.pid, o.tid)));
                    }
                }
            }
            // A pthread mutex names its owner: only that thread will unlock it.
            let in_mutex = t.frames.iter().take(6).any(|f| {
                f.function
                    .as_deref()
                    .is_some_and(|n| MUTEX_LOCKERS.contains(&n))
            });
            let mutex_owner =
                w.after
                    .get(1)
                    .filter(|&&o| in_mutex && o != 0)
                    .map(|&o| MutexOwner {
                        tid: o as i32,
                        alive: p
                            .threads
                            .iter()
                            .find(|x| x.nstid.unwrap_or(x.tid) == o as i32 && x.state != "Z")
                            .map(|x| x.tid),
                    });
            if let Some(owner) = mutex_owner {
                // The waiter itself as owner: it locked twice, and nobody else unlocks.
                wakers = owner
                    .alive
                    .filter(|&tid| tid != t.tid)
                    .map(|tid| (p.pid, tid))
                    .into_iter()
                    .collect();
            }
            out.push(FutexWait {
                pid: p.pid,
                tid: t.tid,
                addr: w.addr,
                private: w.private,
                op_name: w.op_name.clone(),
                expected: w.expected,
                value: w.value,
                mapping: mapping.map(|m| (m.start, m.path.clone(), m.is_shared())),
                owner_file: mapping.and_then(|m| owner_file(&p.mappings, m)),
                waiting_in: t.frames.iter().find_map(|f| f.function.clone()),
                possible_wakers: wakers,
                mutex_owner,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_lock_waiter_in_a_recorded_capture() {
        let s = super::super::sample("blocked_threads");
        let waits = futex_waits(&s);
        let p = &s.processes[0];
        let waiter = p.threads.iter().find(|t| t.name == "waiter").unwrap();
        let w = waits.iter().find(|w| w.tid == waiter.tid).unwrap();
        assert!(w.private);
        assert_eq!(w.value, Some(2), "locked, with waiters");
        assert_eq!(w.waiting_in.as_deref(), Some("__lll_lock_wait_private"));
        // stdout's lock lies in libc's .bss: an anonymous mapping right after libc's data.
        let (_, path, shared) = w.mapping.clone().unwrap();
        assert!(path.is_none() && !shared);
        assert!(
            w.owner_file.as_deref().unwrap().contains("libc.so"),
            "{:?}",
            w.owner_file
        );
        // The holder thread still lives, so the wait is not hopeless.
        assert!(!w.unwakeable());
        assert_eq!(w.possible_wakers.len(), 3);
    }

    #[test]
    fn a_lone_thread_on_a_private_futex_can_never_be_woken() {
        let mut s = super::super::sample("blocked_threads");
        let p = &mut s.processes[0];
        let waiter = p.threads.iter().position(|t| t.name == "waiter").unwrap();
        let lone = p.threads.remove(waiter);
        p.threads = vec![lone];
        let waits = futex_waits(&s);
        assert_eq!(waits.len(), 1);
        assert!(waits[0].unwakeable());
    }

    #[test]
    fn a_mutex_owner_that_exited_leaves_no_waker() {
        let s = super::super::sample("dead_owner");
        let w = &futex_waits(&s)[0];
        let owner = w.mutex_owner.expect("glibc's __owner was read");
        assert_eq!(owner.tid, 13800);
        assert_eq!(owner.alive, None, "the owner thread exited");
        assert!(
            w.unwakeable(),
            "the idle thread is no waker: it does not own the mutex"
        );
        // Were the owner alive, it alone could wake the waiter.
        let mut alive = s.clone();
        alive.processes[0].threads[1].tid = 13800;
        let w = &futex_waits(&alive)[0];
        assert_eq!(w.possible_wakers, vec![(s.processes[0].pid, 13800)]);
    }
}
