//! Socket waits: threads blocked receiving on a socket fd, with what the capture knows of
//! the socket (unix or not, its peer) and which captured fds share it.

use crate::model::{FdKind, Snapshot, SocketInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketWait {
    pub pid: i32,
    pub tid: i32,
    pub fd: i32,
    /// `read`, `recvmsg`, …
    pub syscall: String,
    pub inode: u64,
    /// A unix-domain socket (from the socket tables; None when they said nothing).
    pub unix: Option<bool>,
    /// Inode of the socket at the other end, when the capture knows it.
    pub peer_inode: Option<u64>,
}

impl SocketWait {
    /// True when `other` waits on this socket, on its peer, or (peers unknown) on the
    /// socket allocated right next to it, as socketpair() allocates its two ends.
    pub fn same_pair(&self, other: &SocketWait) -> SamePair {
        if self.inode == other.inode {
            SamePair::SameSocket
        } else if self.peer_inode == Some(other.inode) || other.peer_inode == Some(self.inode) {
            SamePair::Peers
        } else if self.peer_inode.is_none()
            && other.peer_inode.is_none()
            && self.inode.abs_diff(other.inode) == 1
        {
            SamePair::AdjacentInodes
        } else {
            SamePair::No
        }
    }
}

/// How two socket waits are known to be on one socketpair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamePair {
    SameSocket,
    /// The socket tables name each as the other's peer.
    Peers,
    /// Peers unknown; the inodes are consecutive, as socketpair() makes them.
    AdjacentInodes,
    No,
}

pub fn socket_waits(s: &Snapshot) -> Vec<SocketWait> {
    let mut out = Vec::new();
    for p in &s.processes {
        for t in &p.threads {
            let Some(sys) = &t.syscall else { continue };
            let Some(name) = sys.name.as_deref() else {
                continue;
            };
            if !matches!(name, "read" | "readv" | "recvmsg" | "recvfrom" | "recvmmsg") {
                continue;
            }
            let fd = *sys.args.first().unwrap_or(&u64::MAX) as i32;
            let Some(f) = p.fd(fd) else { continue };
            let FdKind::Socket { inode, info } = &f.kind else {
                continue;
            };
            let (unix, peer_inode) = match info {
                Some(SocketInfo::Unix(u)) => (Some(true), u.peer_inode),
                Some(_) => (Some(false), None),
                None => (None, None),
            };
            out.push(SocketWait {
                pid: p.pid,
                tid: t.tid,
                fd,
                syscall: name.to_string(),
                inode: *inode,
                unix,
                peer_inode,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_hung_stages_wait_on_one_socketpair() {
        let s = super::super::sample("memfd_stage_shared");
        let w = socket_waits(&s);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(
            w.iter()
                .all(|w| w.unix == Some(true) && w.syscall == "read")
        );
        assert_ne!(w[0].pid, w[1].pid);
        assert_eq!(w[0].same_pair(&w[1]), SamePair::AdjacentInodes);
        let mut far = w[1].clone();
        far.inode += 10;
        assert_eq!(w[0].same_pair(&far), SamePair::No);
        far.peer_inode = Some(w[0].inode);
        assert_eq!(w[0].same_pair(&far), SamePair::Peers);
    }

    #[test]
    fn held_stages_in_pause_wait_on_no_socket() {
        assert!(socket_waits(&super::super::sample("memfd_stage_fixed_hold")).is_empty());
    }
}
