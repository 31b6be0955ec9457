//! Readers for /proc: process identity, threads' kernel wait state, fds and mappings.
//!
//! The `procfs` crate parses every file it knows (stat, status, maps, smaps, namespaces,
//! net tables, syscall); the formats it does not know (fdinfo's per-kind lines, kernel
//! stacks) have one parser each here, tested on fixtures captured from real processes
//! (samples/procfs/).

mod fd;
mod maps;
mod process;
mod thread;

pub use fd::{FdInfo, fill_socket_info, parse_fdinfo, read_fds, seals_at};
pub use maps::read_mappings;
pub use process::read_process;
pub use thread::{parse_kernel_stack, read_thread};

use crate::model::{Arch, Host};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("process {pid} is gone")]
    Gone { pid: i32 },
    #[error("permission denied reading {path}")]
    PermissionDenied { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot parse {what}")]
    Parse { path: String, what: String },
}

impl ProcError {
    /// Maps an error of the procfs crate for a file of `pid`.
    fn from_procfs(pid: i32, path: &str, e: procfs::ProcError) -> ProcError {
        match e {
            procfs::ProcError::NotFound(_) => ProcError::Gone { pid },
            procfs::ProcError::PermissionDenied(_) => ProcError::PermissionDenied {
                path: path.to_string(),
            },
            procfs::ProcError::Io(e, _) => ProcError::from_io(pid, path, e),
            other => ProcError::Parse {
                path: path.to_string(),
                what: other.to_string(),
            },
        }
    }

    fn from_io(pid: i32, path: &str, e: std::io::Error) -> ProcError {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => ProcError::Gone { pid },
            Some(libc::EACCES) | Some(libc::EPERM) => ProcError::PermissionDenied {
                path: path.to_string(),
            },
            _ => ProcError::Io {
                path: path.to_string(),
                source: e,
            },
        }
    }
}

/// Reads a small /proc file as text.
fn read_text(pid: i32, path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|e| ProcError::from_io(pid, path, e))
}

/// Facts about this machine.
pub fn host() -> Host {
    let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    // SAFETY: as above.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(0) as u64;
    Host {
        kernel_release,
        arch: Arch::native(),
        page_size,
        clock_ticks_per_second: ticks,
    }
}

/// What /proc/PID/stat (or a task's stat) says of a process or thread, as supervision
/// (`wedge run`, `wedge confirm`) needs it: no detail, no error (None: it is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStat {
    /// One-letter state (R, S, D, T, t, Z, X, I).
    pub state: char,
    pub ppid: i32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time in clock ticks since boot: with the pid, identifies the process.
    pub start_time: u64,
}

impl From<procfs::process::Stat> for TaskStat {
    fn from(s: procfs::process::Stat) -> TaskStat {
        TaskStat {
            state: s.state,
            ppid: s.ppid,
            cpu_ticks: s.utime + s.stime,
            start_time: s.starttime,
        }
    }
}

/// /proc/PID/stat of a process (CPU time summed over its threads).
pub fn process_stat(pid: i32) -> Option<TaskStat> {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .ok()
        .map(TaskStat::from)
}

/// /proc/PID/task/TID/stat of one thread.
pub fn task_stat(pid: i32, tid: i32) -> Option<TaskStat> {
    procfs::process::Process::new(pid)
        .and_then(|p| p.task_from_tid(tid))
        .and_then(|t| t.stat())
        .ok()
        .map(TaskStat::from)
}

/// The thread-group id (pid) of thread `tid`.
pub fn tgid_of(tid: i32) -> Option<i32> {
    procfs::process::Process::new(tid)
        .and_then(|p| p.status())
        .ok()
        .map(|s| s.tgid)
}

/// Thread ids of `pid`, sorted.
pub fn list_tids(pid: i32) -> Result<Vec<i32>, ProcError> {
    let path = format!("/proc/{pid}/task");
    let rd = std::fs::read_dir(&path).map_err(|e| ProcError::from_io(pid, &path, e))?;
    let mut tids: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Pids whose parent chain reaches `root` (root excluded), breadth-first. One pass over
/// /proc: reading every process's stat once is cheaper and more complete than following
/// /proc/PID/task/TID/children (which misses children of non-leader threads' exits).
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            if let Ok(stat) = p.stat() {
                parent_of.push((stat.pid, stat.ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for &(pid, ppid) in &parent_of {
            if frontier.contains(&ppid) && pid != root && !out.contains(&pid) {
                out.push(pid);
                next.push(pid);
            }
        }
        frontier = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts() {
        let h = host();
        assert!(!h.kernel_release.is_empty());
        assert!(h.page_size >= 4096 && h.page_size.is_power_of_two());
        assert!(h.clock_ticks_per_second > 0);
    }

    #[test]
    fn lists_our_threads_and_children() {
        let me = std::process::id() as i32;
        let t = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)));
        assert!(list_tids(me).unwrap().len() >= 2);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let kids = descendants(me);
        assert!(kids.contains(&(child.id() as i32)), "{kids:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        t.join().unwrap();
        assert!(matches!(list_tids(4_194_304), Err(ProcError::Gone { .. })));
    }
}
