//! FIFO opens: a thread blocked in open/openat on a named pipe waits for the other side to
//! open it too (runc init waits on exec.fifo for `runc start`).

use crate::model::{FdKind, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoOpenWait {
    pub pid: i32,
    pub tid: i32,
    /// The FIFO's path as the process sees it (through /proc/self/fd/N when opened so).
    pub path: String,
    /// The fd it was reached through, when the path was /proc/self/fd/N.
    pub via_fd: Option<i32>,
    /// The FIFO was unlinked: nobody can open it by name any more.
    pub deleted: bool,
}

pub fn fifo_open_waits(s: &Snapshot) -> Vec<FifoOpenWait> {
    let mut out = Vec::new();
    for p in &s.processes {
        for t in &p.threads {
            let Some(sys) = &t.syscall else { continue };
            if !matches!(sys.name.as_deref(), Some("open" | "openat" | "openat2")) {
                continue;
            }
            // An open only blocks on FIFOs (and some devices): the kernel's wait is the tell.
            if !t
                .wchan
                .as_deref()
                .is_some_and(|w| w.contains("wait_for_partner") || w.contains("fifo"))
            {
                continue;
            }
            let Some(path) = sys.path.as_deref() else {
                continue;
            };
            let via_fd = ["/proc/self/fd/", "/proc/thread-self/fd/"]
                .iter()
                .find_map(|pre| path.strip_prefix(pre))
                .and_then(|n| n.parse::<i32>().ok());
            let (path, deleted) = match via_fd.and_then(|n| p.fd(n)) {
                Some(fd) => match &fd.kind {
                    FdKind::Fifo { path } => (path.clone(), path.ends_with(" (deleted)")),
                    _ => (fd.target.clone(), fd.target.ends_with(" (deleted)")),
                },
                None => (path.to_string(), false),
            };
            out.push(FifoOpenWait {
                pid: p.pid,
                tid: t.tid,
                path: path.trim_end_matches(" (deleted)").to_string(),
                via_fd,
                deleted,
            });
        }
    }
    out
}
