//! Pipe and unix-socket waits: for a thread blocked reading or writing a pipe or a connected
//! unix socket, which captured processes hold the other end (for a socket: the peer inode
//! sock_diag reported).

use crate::model::{FdKind, Snapshot, SocketInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeVerdict {
    /// Another process holds the other end: it may yet write (or read).
    Peers,
    /// Only the waiter's own process holds the other end.
    OnlyWaitersProcess,
    /// Nobody in the capture holds the other end: a reader gets EOF, a writer EPIPE —
    /// unless a process outside the capture holds it.
    NoOtherEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeWait {
    pub pid: i32,
    pub tid: i32,
    pub fd: i32,
    pub inode: u64,
    /// A connected unix socket rather than a pipe.
    pub socket: bool,
    /// True when blocked reading (waiting for a writer), false when writing.
    pub reading: bool,
    /// (pid, fd) of every captured fd on the other end.
    pub other_end: Vec<(i32, i32)>,
    pub verdict: PipeVerdict,
}

/// O_ACCMODE of an fd's flags: 0 read, 1 write, 2 both.
fn access(flags: Option<u32>) -> u32 {
    flags.unwrap_or(2) & 3
}

/// The channel a thread waits on through fd `fd`: (inode of this end, inode of the other
/// end's object, socket?). A pipe's two ends share one inode; a socket's peer has its own.
fn channel(kind: &FdKind) -> Option<(u64, u64, bool)> {
    match kind {
        FdKind::Pipe { inode } => Some((*inode, *inode, false)),
        FdKind::Socket {
            inode,
            info: Some(SocketInfo::Unix(u)),
        } => Some((*inode, u.peer_inode?, true)),
        _ => None,
    }
}

pub fn pipe_waits(s: &Snapshot) -> Vec<PipeWait> {
    let mut out = Vec::new();
    for p in &s.processes {
        for t in &p.threads {
            let Some(sys) = &t.syscall else { continue };
            let reading = match sys.name.as_deref() {
                Some("read" | "readv" | "pread64" | "recvfrom" | "recvmsg" | "recvmmsg") => true,
                Some("write" | "writev" | "pwrite64" | "sendto" | "sendmsg" | "sendmmsg") => false,
                _ => continue,
            };
            let fd = *sys.args.first().unwrap_or(&u64::MAX) as i32;
            let Some(f) = p.fd(fd) else { continue };
            let Some((inode, other, socket)) = channel(&f.kind) else {
                continue;
            };
            // The other end: for a pipe, a writer for a reader (write or read-write
            // access) and the reverse; for a socket, whoever holds the peer.
            let wants = |acc: u32| socket || if reading { acc != 0 } else { acc != 1 };
            let mut other_end = Vec::new();
            for q in &s.processes {
                for g in &q.fds {
                    let same = match (&g.kind, socket) {
                        (FdKind::Pipe { inode: i }, false) => *i == other,
                        (FdKind::Socket { inode: i, .. }, true) => *i == other,
                        _ => false,
                    };
                    if same && !(q.pid == p.pid && g.fd == fd) && wants(access(g.flags)) {
                        other_end.push((q.pid, g.fd));
                    }
                }
            }
            let verdict = if other_end.is_empty() {
                PipeVerdict::NoOtherEnd
            } else if other_end.iter().all(|(pid, _)| *pid == p.pid) {
                PipeVerdict::OnlyWaitersProcess
            } else {
                PipeVerdict::Peers
            };
            out.push(PipeWait {
                pid: p.pid,
                tid: t.tid,
                fd,
                inode,
                socket,
                reading,
                other_end,
                verdict,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_reads_a_pipe_only_its_own_process_can_write() {
        let s = super::super::sample("blocked_threads");
        let waits = pipe_waits(&s);
        assert_eq!(waits.len(), 1);
        let w = &waits[0];
        let p = &s.processes[0];
        assert_eq!(p.thread(w.tid).unwrap().name, "holder");
        assert!(w.reading);
        assert_eq!(w.verdict, PipeVerdict::OnlyWaitersProcess);
        assert_eq!(
            w.other_end,
            vec![(p.pid, 4)],
            "the probe's own write end, fd 4"
        );
    }

    #[test]
    fn without_the_write_end_nobody_can_write() {
        let mut s = super::super::sample("blocked_threads");
        s.processes[0].fds.retain(|f| f.fd != 4);
        let w = &pipe_waits(&s)[0];
        assert_eq!(w.verdict, PipeVerdict::NoOtherEnd);
    }
}
