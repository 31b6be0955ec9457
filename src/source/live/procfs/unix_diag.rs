//! Peers of unix sockets from the kernel's sock_diag netlink interface (what `ss -x` shows):
//! /proc/net/unix does not say which socket is connected to which, sock_diag does. It answers
//! for the network namespace of the asking socket, i.e. wedge's own.

use std::collections::HashMap;

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UNIX_DIAG_PEER: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
/// struct unix_diag_msg: family, type, state, pad, ino, cookie[2].
const UNIX_DIAG_MSG_LEN: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Inode → peer inode of every connected unix socket in wedge's network namespace.
pub fn unix_peers() -> std::io::Result<HashMap<u64, u64>> {
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);

    // nlmsghdr + unix_diag_req (family, protocol, pad, states, ino, show, cookie[2]).
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + 24);
    req.extend_from_slice(&((NLMSG_HDRLEN + 24) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    req.push(libc::AF_UNIX as u8);
    req.push(0);
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&0u32.to_ne_bytes()); // every inode
    req.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // no cookie
    // SAFETY: sockaddr_nl is plain data; zero is the kernel's address.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: req and addr are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            raw,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }

    let mut peers = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(peers);
        }
        if parse_dump(&buf[..n as usize], &mut peers)? {
            return Ok(peers);
        }
    }
}

/// Parses one datagram of the dump into `peers`; true at NLMSG_DONE.
fn parse_dump(b: &[u8], peers: &mut HashMap<u64, u64>) -> std::io::Result<bool> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed sock_diag reply");
    let mut at = 0;
    while at + NLMSG_HDRLEN <= b.len() {
        let len = u32_at(b, at).ok_or_else(bad)? as usize;
        let kind = u16_at(b, at + 4).ok_or_else(bad)?;
        if len < NLMSG_HDRLEN || at + len > b.len() {
            return Err(bad());
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(b, at + NLMSG_HDRLEN).ok_or_else(bad)? as i32;
                return Err(std::io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                let body = &b[at + NLMSG_HDRLEN..at + len];
                let inode = u32_at(body, 4).ok_or_else(bad)? as u64;
                let mut a = UNIX_DIAG_MSG_LEN;
                while a + 4 <= body.len() {
                    let alen = u16_at(body, a).ok_or_else(bad)? as usize;
                    let atype = u16_at(body, a + 2).ok_or_else(bad)?;
                    if alen < 4 || a + alen > body.len() {
                        return Err(bad());
                    }
                    if atype == UNIX_DIAG_PEER
                        && let Some(peer) = u32_at(body, a + 4)
                        && peer != 0
                    {
                        peers.insert(inode, peer as u64);
                    }
                    a += align4(alen);
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn inode(fd: &std::os::unix::net::UnixStream) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let s = link.to_string_lossy();
        s["socket:[".len()..s.len() - 1].parse().unwrap()
    }

    #[test]
    fn names_the_peer_of_each_end_of_a_socketpair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (ia, ib) = (inode(&a), inode(&b));
        let peers = unix_peers().expect("sock_diag for unix sockets (CONFIG_UNIX_DIAG)");
        assert_eq!(peers.get(&ia), Some(&ib));
        assert_eq!(peers.get(&ib), Some(&ia));
    }

    #[test]
    fn refuses_truncated_replies() {
        let mut peers = HashMap::new();
        // A header claiming 64 bytes in a 20-byte buffer.
        let mut b = 64u32.to_ne_bytes().to_vec();
        b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        b.extend_from_slice(&[0; 14]);
        assert!(parse_dump(&b, &mut peers).is_err());
        assert!(peers.is_empty());
    }
}
