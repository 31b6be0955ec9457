//! The fd table of a process: link targets, fdinfo, and what each kind of fd adds (pipe and
//! socket inodes and peers' addresses, memfd seals, eventfd counts, epoll and inotify
//! targets, signalfd masks, timerfd settings, pidfd pids).

use super::{ProcError, read_text};
use crate::model::{EpollTarget, Fd, FdKind, InotifyWatch, SocketInfo, UnixSocket};
use crate::source::live::sockdiag::UnixTables;
use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;

/// The parsed text of /proc/PID/fdinfo/N: the common fields and the kind-specific lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FdInfo {
    pub pos: Option<u64>,
    pub flags: Option<u32>,
    pub mnt_id: Option<u64>,
    pub ino: Option<u64>,
    /// `key: value` lines other than the four above, in order (`eventfd-count`, `sigmask`,
    /// `clockid`, `Pid`, …).
    pub fields: Vec<(String, String)>,
    pub epoll: Vec<EpollTarget>,
    pub inotify: Vec<InotifyWatch>,
}

impl FdInfo {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses fdinfo text (see samples/procfs/fdinfo-*.txt for every kind).
pub fn parse_fdinfo(text: &str) -> FdInfo {
    let mut info = FdInfo::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("tfd:") {
            if let Some(t) = parse_epoll_line(rest) {
                info.epoll.push(t);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("inotify ") {
            if let Some(w) = parse_inotify_line(rest) {
                info.inotify.push(w);
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "pos" => info.pos = v.parse().ok(),
            "flags" => info.flags = u32::from_str_radix(v, 8).ok(),
            "mnt_id" => info.mnt_id = v.parse().ok(),
            "ino" => info.ino = v.parse().ok(),
            _ => info.fields.push((k.trim().to_string(), v.to_string())),
        }
    }
    info
}

/// `tfd:        5 events: 80000019 data:                5  pos:0 ino:40e sdev:10`
fn parse_epoll_line(rest: &str) -> Option<EpollTarget> {
    let mut it = rest.split_whitespace();
    let fd = it.next()?.parse().ok()?;
    let mut events = None;
    let mut data = None;
    let mut inode = None;
    while let Some(tok) = it.next() {
        match tok {
            "events:" => events = it.next().and_then(|v| u32::from_str_radix(v, 16).ok()),
            "data:" => data = it.next().and_then(|v| u64::from_str_radix(v, 16).ok()),
            t if t.starts_with("ino:") => inode = u64::from_str_radix(&t[4..], 16).ok(),
            _ => {}
        }
    }
    Some(EpollTarget {
        fd,
        events: events?,
        data: data.unwrap_or(0),
        inode,
    })
}

/// `wd:1 ino:3c4a7 sdev:fe00000 mask:300 ignored_mask:0 …`
fn parse_inotify_line(rest: &str) -> Option<InotifyWatch> {
    let mut kv: HashMap<&str, &str> = HashMap::new();
    for tok in rest.split_whitespace() {
        if let Some((k, v)) = tok.split_once(':') {
            kv.insert(k, v);
        }
    }
    Some(InotifyWatch {
        wd: kv.get("wd")?.parse().ok()?,
        inode: u64::from_str_radix(kv.get("ino")?, 16).ok()?,
        dev: kv.get("sdev").map(|s| s.to_string()).unwrap_or_default(),
        mask: u32::from_str_radix(kv.get("mask")?, 16).ok()?,
    })
}

/// Socket tables of the process's network namespace, by inode; read once per fd table.
#[derive(Default)]
struct SocketTables {
    loaded: bool,
    by_inode: HashMap<u64, SocketInfo>,
}

impl SocketTables {
    fn get(&mut self, pid: i32, inode: u64) -> Option<SocketInfo> {
        if !self.loaded {
            self.loaded = true;
            self.load(pid);
        }
        self.by_inode.get(&inode).cloned()
    }

    fn load(&mut self, pid: i32) {
        let Ok(proc) = procfs::process::Process::new(pid) else {
            return;
        };
        if let Ok(unix) = proc.unix() {
            for u in unix {
                let socket_type = match u.socket_type as i32 {
                    libc::SOCK_STREAM => "stream",
                    libc::SOCK_DGRAM => "dgram",
                    libc::SOCK_SEQPACKET => "seqpacket",
                    _ => "other",
                };
                let state = format!("{:?}", u.state).to_ascii_lowercase();
                self.by_inode.insert(
                    u.inode,
                    SocketInfo::Unix(UnixSocket {
                        path: u.path.map(|p| p.to_string_lossy().into_owned()),
                        socket_type: socket_type.into(),
                        state,
                        peer_inode: None,
                        recv_queue: None,
                    }),
                );
            }
        }
        let mut inet = |proto: &str, inode: u64, local: String, remote: String, state: String| {
            self.by_inode.insert(
                inode,
                SocketInfo::Inet {
                    protocol: proto.into(),
                    local,
                    remote,
                    state: state.to_ascii_lowercase(),
                },
            );
        };
        for (proto, table) in [("tcp", proc.tcp()), ("tcp6", proc.tcp6())] {
            for e in table.into_iter().flatten() {
                inet(
                    proto,
                    e.inode,
                    e.local_address.to_string(),
                    e.remote_address.to_string(),
                    format!("{:?}", e.state),
                );
            }
        }
        for (proto, table) in [("udp", proc.udp()), ("udp6", proc.udp6())] {
            for e in table.into_iter().flatten() {
                inet(
                    proto,
                    e.inode,
                    e.local_address.to_string(),
                    e.remote_address.to_string(),
                    format!("{:?}", e.state),
                );
            }
        }
    }
}

/// Every open fd of `pid`, with notes on what could not be read. Cheap enough to run while
/// the process is stopped: socket details, which need the network namespace's socket
/// tables, are left for [`fill_socket_info`] after the resume.
pub fn read_fds(pid: i32) -> (Vec<Fd>, Vec<String>) {
    let dir = format!("/proc/{pid}/fd");
    let mut notes = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) => {
            if !matches!(ProcError::from_io(pid, &dir, e), ProcError::Gone { .. }) {
                notes.push(format!("fd table unreadable: {dir}: permission denied"));
            }
            return (Vec::new(), notes);
        }
    };
    let mut nums: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    nums.sort_unstable();
    let mut sockets = SocketTables {
        loaded: true, // not now: see fill_socket_info
        ..Default::default()
    };
    let mut fds = Vec::with_capacity(nums.len());
    for n in nums {
        let Ok(link) = std::fs::read_link(format!("{dir}/{n}")) else {
            continue; // closed meanwhile
        };
        let target = link.to_string_lossy().into_owned();
        let info = read_text(pid, &format!("/proc/{pid}/fdinfo/{n}"))
            .map(|t| parse_fdinfo(&t))
            .unwrap_or_default();
        let kind = classify(pid, n, &target, &info, &mut sockets);
        let inode = info.ino.or_else(|| bracketed_inode(&target));
        fds.push(Fd {
            fd: n,
            target,
            flags: info.flags,
            pos: info.pos,
            mnt_id: info.mnt_id,
            inode,
            kind,
        });
    }
    (fds, notes)
}

/// Adds what the socket tables of `pid`'s network namespace say about its socket fds
/// (unix path, type and state; tcp/udp addresses and state), each table read once.
/// Unix sockets take their type, state, name and peer from sock_diag where it answers
/// (`unix`, one dump per network namespace), else from /proc/net/unix (no peers).
pub fn fill_socket_info(pid: i32, fds: &mut [Fd], unix: &mut UnixTables) {
    let mut tables = SocketTables::default();
    for fd in fds.iter_mut() {
        if let FdKind::Socket { inode, info } = &mut fd.kind
            && info.is_none()
        {
            *info = match unix.get(pid, *inode) {
                Some(d) => Some(SocketInfo::Unix(UnixSocket {
                    path: d.name.clone(),
                    socket_type: d.type_name().into(),
                    state: d.state_name().into(),
                    peer_inode: d.peer_inode,
                    recv_queue: d.recv_queue,
                })),
                None => tables.get(pid, *inode),
            };
        }
    }
}

/// `pipe:[16056]` → 16056.
fn bracketed_inode(target: &str) -> Option<u64> {
    let inner = target.split_once(":[")?.1.strip_suffix(']')?;
    inner.parse().ok()
}

fn classify(pid: i32, fd: i32, target: &str, info: &FdInfo, sockets: &mut SocketTables) -> FdKind {
    if let Some(inode) = target
        .strip_prefix("pipe:")
        .and_then(|_| bracketed_inode(target))
    {
        return FdKind::Pipe { inode };
    }
    if let Some(inode) = target
        .strip_prefix("socket:")
        .and_then(|_| bracketed_inode(target))
    {
        return FdKind::Socket {
            inode,
            info: sockets.get(pid, inode),
        };
    }
    if let Some(anon) = target.strip_prefix("anon_inode:") {
        let name = anon.trim_start_matches('[').trim_end_matches(']');
        return match name {
            "eventfd" => FdKind::Eventfd {
                count: info
                    .field("eventfd-count")
                    .and_then(|c| u64::from_str_radix(c.trim(), 16).ok()),
            },
            "eventpoll" => FdKind::Epoll {
                targets: info.epoll.clone(),
            },
            "inotify" => FdKind::Inotify {
                watches: info.inotify.clone(),
            },
            "signalfd" => FdKind::Signalfd {
                sigmask: info.field("sigmask").map(String::from),
            },
            "timerfd" => FdKind::Timerfd {
                detail: timerfd_detail(info),
            },
            "pidfd" => FdKind::Pidfd {
                pid: info.field("Pid").and_then(|p| p.parse().ok()),
            },
            _ => FdKind::AnonInode {
                name: anon.to_string(),
            },
        };
    }
    if let Some(rest) = target.strip_prefix("/memfd:") {
        let name = rest.strip_suffix(" (deleted)").unwrap_or(rest).to_string();
        return FdKind::Memfd {
            name,
            seals: memfd_seals(pid, fd),
        };
    }
    if target.starts_with('/') {
        let deleted = target.ends_with(" (deleted)");
        // stat follows the link without opening the file: opening a FIFO could block.
        if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")) {
            let ft = meta.file_type();
            if ft.is_fifo() {
                return FdKind::Fifo {
                    path: target.to_string(),
                };
            }
            if ft.is_char_device() || ft.is_block_device() {
                return FdKind::Device {
                    path: target.to_string(),
                };
            }
        }
        return FdKind::File {
            path: target.to_string(),
            deleted,
        };
    }
    FdKind::Other
}

fn timerfd_detail(info: &FdInfo) -> Option<String> {
    let clock = match info.field("clockid")? {
        "0" => "realtime",
        "1" => "monotonic",
        "7" => "boottime",
        "8" => "realtime-alarm",
        "9" => "boottime-alarm",
        _ => "clock?",
    };
    Some(format!(
        "{clock}, next in {}, every {}",
        info.field("it_value").unwrap_or("?"),
        info.field("it_interval").unwrap_or("?")
    ))
}

/// F_GET_SEALS of a memfd, by reopening it through /proc (only ever done for memfds: other
/// kinds of fd can block on open).
fn memfd_seals(pid: i32, fd: i32) -> Option<u32> {
    seals_at(&format!("/proc/{pid}/fd/{fd}"))
}

/// F_GET_SEALS of the file a /proc link (`/proc/PID/fd/N`, `/proc/PID/exe`) leads to. Call it
/// only for memfds.
pub fn seals_at(path: &str) -> Option<u32> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    // SAFETY: F_GET_SEALS takes no argument; the fd is valid while `f` lives.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    (seals >= 0).then_some(seals as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(kind: &str) -> FdInfo {
        let p = format!(
            "{}/samples/procfs/fdinfo-{kind}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        parse_fdinfo(&std::fs::read_to_string(p).unwrap())
    }

    #[test]
    fn common_fields() {
        let f = fixture("memfd");
        assert_eq!(
            (f.pos, f.flags, f.mnt_id, f.ino),
            (Some(100), Some(0o100002), Some(0), Some(1025))
        );
    }

    #[test]
    fn epoll_targets() {
        let f = fixture("epoll");
        assert_eq!(f.epoll.len(), 2);
        assert_eq!(f.epoll[0].fd, 5);
        assert_eq!(f.epoll[0].events, 0x80000019);
        assert_eq!(f.epoll[0].inode, Some(0x40e));
        assert_eq!(f.epoll[1].data, 3);
    }

    #[test]
    fn inotify_watches() {
        let f = fixture("inotify");
        assert_eq!(f.inotify.len(), 1);
        let w = &f.inotify[0];
        assert_eq!((w.wd, w.inode, w.mask), (1, 0x3c4a7, 0x300));
    }

    #[test]
    fn kind_lines() {
        let mut t = SocketTables {
            loaded: true,
            ..Default::default()
        };
        let kind =
            |k: &str, target: &str, t: &mut SocketTables| classify(0, -1, target, &fixture(k), t);
        assert_eq!(
            kind("eventfd", "anon_inode:[eventfd]", &mut t),
            FdKind::Eventfd { count: Some(5) }
        );
        assert_eq!(
            kind("signalfd", "anon_inode:[signalfd]", &mut t),
            FdKind::Signalfd {
                sigmask: Some("0000000000004200".into())
            }
        );
        assert_eq!(
            kind("pidfd", "anon_inode:[pidfd]", &mut t),
            FdKind::Pidfd { pid: Some(7810) }
        );
        let FdKind::Timerfd { detail: Some(d) } = kind("timerfd", "anon_inode:[timerfd]", &mut t)
        else {
            panic!()
        };
        assert!(
            d.starts_with("monotonic, next in (99, 89278747), every (1, 0)"),
            "{d}"
        );
        assert_eq!(
            kind("pipe", "pipe:[16056]", &mut t),
            FdKind::Pipe { inode: 16056 }
        );
        assert_eq!(
            kind("unix", "socket:[16057]", &mut t),
            FdKind::Socket {
                inode: 16057,
                info: None
            }
        );
        assert!(matches!(
            kind("inotify", "anon_inode:inotify", &mut t),
            FdKind::Inotify { .. }
        ));
    }

    #[test]
    fn reads_a_real_fd_table() {
        // A shell holding a pipe, a unix socket pair is not needed: our own process has a
        // memfd with seals, an eventfd and a pipe once we make them.
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscalls creating fds this test owns.
        let (mfd, efd, pipe) = unsafe {
            let name = b"wedge-test\0";
            let m = libc::memfd_create(name.as_ptr().cast(), libc::MFD_ALLOW_SEALING);
            libc::fcntl(
                m,
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
            );
            let e = libc::eventfd(7, 0);
            let mut p = [0; 2];
            libc::pipe(p.as_mut_ptr());
            (m, e, p)
        };
        let (fds, notes) = read_fds(std::process::id() as i32);
        assert!(notes.is_empty(), "{notes:?}");
        let by = |n: i32| fds.iter().find(|f| f.fd == n).unwrap().kind.clone();
        assert_eq!(
            by(mfd),
            FdKind::Memfd {
                name: "wedge-test".into(),
                seals: Some((libc::F_SEAL_SHRINK | libc::F_SEAL_GROW) as u32)
            }
        );
        assert_eq!(by(efd), FdKind::Eventfd { count: Some(7) });
        assert!(matches!(by(pipe[0]), FdKind::Pipe { .. }));
        for fd in [mfd, efd, pipe[0], pipe[1]] {
            // SAFETY: closing fds this test opened.
            drop(unsafe { std::fs::File::from_raw_fd(fd) });
        }
    }
}
