//! Unix sockets as the kernel's sock_diag interface (NETLINK_SOCK_DIAG) tells them: state,
//! type, bound name, the inode of the peer socket, and queue lengths. /proc/net/unix gives
//! neither peers nor the listening flag, and without peers nobody can say which process
//! holds the other end of a socketpair a thread waits on.
//!
//! The dump is per network namespace: for a process in another one, the netlink socket is
//! opened by a short-lived thread that first joins that namespace (setns), so wedge itself
//! never moves.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;

/// One unix socket of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixDiag {
    pub inode: u64,
    /// SOCK_STREAM (1), SOCK_DGRAM (2), SOCK_SEQPACKET (5).
    pub socket_type: u8,
    /// TCP-style state: 1 established, 2 connecting, 7 unconnected, 10 listening.
    pub state: u8,
    /// Bound path; abstract names start with `@`.
    pub name: Option<String>,
    pub peer_inode: Option<u64>,
    /// Bytes waiting to be read (pending connections for a listener).
    pub recv_queue: Option<u32>,
    /// Bytes not yet read by the peer (the backlog limit for a listener).
    pub send_queue: Option<u32>,
}

impl UnixDiag {
    pub fn type_name(&self) -> &'static str {
        match self.socket_type as i32 {
            libc::SOCK_STREAM => "stream",
            libc::SOCK_DGRAM => "dgram",
            libc::SOCK_SEQPACKET => "seqpacket",
            _ => "other",
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self.state {
            1 => "connected",
            2 => "connecting",
            7 => "unconnected",
            8 => "closing",
            10 => "listening",
            _ => "other",
        }
    }
}

/// The request: every unix socket, with name, peer and queue lengths.
fn request() -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    m.push(libc::AF_UNIX as u8);
    m.push(0); // protocol
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    m.extend_from_slice(&0u32.to_ne_bytes()); // any inode
    m.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).to_ne_bytes());
    m.extend_from_slice(&[0xff; 8]); // no cookie
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// What one chunk of the reply holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// More messages follow in the next read.
    More(Vec<UnixDiag>),
    /// NLMSG_DONE was seen.
    Done(Vec<UnixDiag>),
}

/// Parses one datagram of the dump's reply. Malformed input gives an error, never a panic.
pub fn parse_reply(buf: &[u8]) -> Result<Chunk, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32_at(buf, at).unwrap_or(0) as usize;
        let kind = u16_at(buf, at + 4).unwrap_or(0);
        if len < 16 || at + len > buf.len() {
            return Err(format!("netlink message of length {len} at offset {at}"));
        }
        let body = &buf[at + 16..at + len];
        match kind {
            NLMSG_DONE => return Ok(Chunk::Done(out)),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).map(|e| -(e as i32)).unwrap_or(0);
                return Err(format!(
                    "sock_diag refused the dump: {}",
                    std::io::Error::from_raw_os_error(errno)
                ));
            }
            SOCK_DIAG_BY_FAMILY => out.push(parse_msg(body)?),
            _ => {}
        }
        at += align4(len);
    }
    Ok(Chunk::More(out))
}

/// One unix_diag_msg and its attributes.
fn parse_msg(b: &[u8]) -> Result<UnixDiag, String> {
    if b.len() < 16 {
        return Err(format!("unix_diag_msg of {} bytes", b.len()));
    }
    let mut d = UnixDiag {
        socket_type: b[1],
        state: b[2],
        inode: u32_at(b, 4).unwrap_or(0) as u64,
        name: None,
        peer_inode: None,
        recv_queue: None,
        send_queue: None,
    };
    let mut at = 16;
    while at + 4 <= b.len() {
        let len = u16_at(b, at).unwrap_or(0) as usize;
        let kind = u16_at(b, at + 2).unwrap_or(0);
        if len < 4 || at + len > b.len() {
            return Err(format!("attribute of length {len} at offset {at}"));
        }
        let payload = &b[at + 4..at + len];
        match kind {
            UNIX_DIAG_NAME => d.name = Some(socket_name(payload)),
            UNIX_DIAG_PEER => d.peer_inode = u32_at(payload, 0).map(u64::from),
            UNIX_DIAG_RQLEN => {
                d.recv_queue = u32_at(payload, 0);
                d.send_queue = u32_at(payload, 4);
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(d)
}

/// A sun_path as the kernel gives it: a leading NUL marks an abstract name (shown `@name`).
fn socket_name(raw: &[u8]) -> String {
    match raw.split_first() {
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
        _ => {
            let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        }
    }
}

fn netlink_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned from here on.
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
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A sock_diag socket in the network namespace of `pid`.
fn netlink_socket_in(pid: i32) -> std::io::Result<OwnedFd> {
    let ours =
        std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))?;
    if ours.ok() == Some(theirs) {
        return netlink_socket();
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    // setns moves only the calling thread: a thread of its own that ends right after.
    std::thread::spawn(move || {
        // SAFETY: setns on an fd we own; affects this short-lived thread only.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        netlink_socket()
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("setns thread failed")))
}

/// Every unix socket of `pid`'s network namespace.
pub fn dump_unix(pid: i32) -> Result<Vec<UnixDiag>, String> {
    let sock = netlink_socket_in(pid).map_err(|e| format!("sock_diag socket: {e}"))?;
    let fd = sock.as_raw_fd();
    let req = request();
    // SAFETY: the kernel reads req.len() bytes from a live buffer; dest is the kernel (pid 0).
    let sent = unsafe {
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(format!(
            "sock_diag send: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv into a buffer we own, at most its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("sock_diag recv: {e}"));
        }
        if n == 0 {
            return Ok(all);
        }
        match parse_reply(&buf[..n as usize])? {
            Chunk::More(v) => all.extend(v),
            Chunk::Done(v) => {
                all.extend(v);
                return Ok(all);
            }
        }
    }
}

/// Dumps keyed by network namespace inode, so a tree of many processes in one namespace
/// costs one dump.
#[derive(Default)]
pub struct UnixTables {
    by_netns: HashMap<u64, Option<HashMap<u64, UnixDiag>>>,
}

impl UnixTables {
    /// The socket `inode` as seen from `pid`'s network namespace.
    pub fn get(&mut self, pid: i32, inode: u64) -> Option<&UnixDiag> {
        let ns = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .ok()?;
        self.by_netns
            .entry(ns)
            .or_insert_with(|| {
                dump_unix(pid)
                    .ok()
                    .map(|v| v.into_iter().map(|d| (d.inode, d)).collect())
            })
            .as_ref()?
            .get(&inode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        std::fs::read(format!(
            "{}/samples/sockdiag/unix-dump.bin",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn parses_a_recorded_dump() {
        // Recorded by samples/sockdiag/record.py: a listener on a path, an abstract
        // listener, a connected socketpair and an unconnected datagram socket.
        let Chunk::More(v) = parse_reply(&fixture()).unwrap() else {
            panic!("the recorded datagram does not end the dump");
        };
        let named = |n: &str| v.iter().find(|d| d.name.as_deref() == Some(n)).unwrap();
        let l = named("/tmp/wedge-sockdiag-fixture.sock");
        assert_eq!((l.state_name(), l.type_name()), ("listening", "stream"));
        assert_eq!(l.peer_inode, None);
        let a = named("@wedge-sockdiag-abstract");
        assert_eq!(a.state_name(), "listening");
        let pair: Vec<&UnixDiag> = v
            .iter()
            .filter(|d| d.state == 1 && d.name.is_none())
            .collect();
        let (x, y) = pair
            .iter()
            .flat_map(|x| pair.iter().map(move |y| (x, y)))
            .find(|(x, y)| x.peer_inode == Some(y.inode) && y.peer_inode == Some(x.inode))
            .expect("a socketpair whose ends name each other");
        assert_ne!(x.inode, y.inode);
        assert!(
            v.iter()
                .any(|d| d.type_name() == "dgram" && d.state_name() == "unconnected")
        );
    }

    #[test]
    fn damaged_replies_are_errors() {
        let f = fixture();
        for cut in [17, 30, 50] {
            let mut b = f[..cut].to_vec();
            b[0..4].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            assert!(parse_reply(&b).is_err(), "cut at {cut}");
        }
        let mut bad_attr = f.clone();
        // The first message's first attribute claims more than the message holds.
        bad_attr[16 + 16..16 + 18].copy_from_slice(&0xfff0u16.to_ne_bytes());
        assert!(parse_reply(&bad_attr).is_err());
        assert_eq!(parse_reply(&[]).unwrap(), Chunk::More(vec![]));
    }

    #[test]
    fn a_live_socketpair_names_its_peer() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ino = |s: &std::os::unix::net::UnixStream| {
            std::fs::read_link(format!("/proc/self/fd/{}", s.as_raw_fd()))
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("socket:[")
                .trim_end_matches(']')
                .parse::<u64>()
                .unwrap()
        };
        let (ia, ib) = (ino(&a), ino(&b));
        let mut t = UnixTables::default();
        let pid = std::process::id() as i32;
        let da = t.get(pid, ia).cloned().expect("our socket is in the dump");
        assert_eq!(da.peer_inode, Some(ib));
        assert_eq!(t.get(pid, ib).unwrap().peer_inode, Some(ia));
        assert_eq!(da.state_name(), "connected");
    }
}
