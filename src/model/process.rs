//! A process as captured: identity, namespaces, fd table and memory mappings.

use super::{GoProcess, Thread};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    /// The pid in each pid namespace, outermost first (`NSpid:` in status).
    #[serde(default)]
    pub nspid: Vec<i32>,
    pub comm: String,
    pub cmdline: Vec<String>,
    pub exe: Option<Exe>,
    /// One-letter state from /proc/PID/stat (R, S, D, T, t, Z, X, I).
    pub state: String,
    /// Real, effective, saved and filesystem uid, as in /proc/PID/status.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    /// Namespace kind (`mnt`, `pid`, `user`, …) → inode of /proc/PID/ns/KIND.
    #[serde(default)]
    pub namespaces: BTreeMap<String, u64>,
    /// Lines of /proc/PID/cgroup.
    #[serde(default)]
    pub cgroup: Vec<String>,
    /// Start time in clock ticks since boot: with the pid, identifies the process.
    pub start_time: u64,
    /// Pid of a tracer that was already attached before wedge looked (0: none).
    #[serde(default)]
    pub tracer_pid: i32,
    /// True when every captured thread was stopped together for the copy.
    pub stopped: bool,
    /// How long the process was stopped, in microseconds (first stop to last resume).
    pub pause_us: Option<u64>,
    pub threads: Vec<Thread>,
    pub fds: Vec<Fd>,
    pub mappings: Vec<Mapping>,
    /// Other captured processes sharing this one's address space (kcmp KCMP_VM): a vfork
    /// child before its exec, a clone with CLONE_VM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares_vm_with: Vec<i32>,
    /// Other captured processes sharing this one's fd table (kcmp KCMP_FILES).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares_files_with: Vec<i32>,
    /// The auxiliary vector a core records (NT_AUXV), by name: `AT_ENTRY`, `AT_BASE`,
    /// `AT_SYSINFO_EHDR` (the vDSO), `AT_PHDR`, `AT_PAGESZ`, `AT_HWCAP`, …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auxv: BTreeMap<String, u64>,
    /// The fatal signal a core file records (NT_SIGINFO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<CrashSignal>,
    /// Set for Go programs: build info and goroutines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<GoProcess>,
}

impl Process {
    pub fn thread(&self, tid: i32) -> Option<&Thread> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    pub fn fd(&self, fd: i32) -> Option<&Fd> {
        self.fds.iter().find(|f| f.fd == fd)
    }

    /// The mapping that contains `addr`, if any.
    pub fn mapping_at(&self, addr: u64) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.start <= addr && addr < m.end)
    }
}

/// A fatal signal: which, why (si_code), the faulting address, and the thread that took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashSignal {
    pub signo: i32,
    pub code: i32,
    pub addr: Option<u64>,
    pub tid: Option<i32>,
    /// The goroutine the runtime reported the signal on, when only that is known (a log's
    /// panic names the goroutine, not the thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goroutine: Option<i64>,
}

/// The executable behind /proc/PID/exe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Exe {
    /// The link target as the kernel prints it (may end in ` (deleted)`).
    pub path: String,
    pub deleted: bool,
    /// Set when the executable is a memfd: the name given to memfd_create.
    pub memfd: Option<String>,
    /// F_GET_SEALS of the executable when it is a memfd and the seals could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seals: Option<u32>,
}

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fd {
    pub fd: i32,
    /// The /proc/PID/fd/N link target, as the kernel prints it.
    pub target: String,
    /// `flags:` of fdinfo (octal in the file; open flags such as O_NONBLOCK, O_CLOEXEC).
    pub flags: Option<u32>,
    /// `pos:` of fdinfo.
    pub pos: Option<u64>,
    pub mnt_id: Option<u64>,
    /// Inode of the open file (`ino:` of fdinfo, or from the link target).
    pub inode: Option<u64>,
    pub kind: FdKind,
}

/// What kind of object an fd refers to, with the details that kind has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FdKind {
    File {
        path: String,
        deleted: bool,
    },
    /// A named pipe opened through the filesystem.
    Fifo {
        path: String,
    },
    Pipe {
        inode: u64,
    },
    Socket {
        inode: u64,
        info: Option<SocketInfo>,
    },
    Memfd {
        name: String,
        /// F_GET_SEALS of the memfd, when it could be read.
        seals: Option<u32>,
    },
    Eventfd {
        count: Option<u64>,
    },
    Epoll {
        targets: Vec<EpollTarget>,
    },
    Inotify {
        watches: Vec<InotifyWatch>,
    },
    Signalfd {
        sigmask: Option<String>,
    },
    Timerfd {
        detail: Option<String>,
    },
    Pidfd {
        pid: Option<i32>,
    },
    /// Any other anon_inode (`anon_inode:[io_uring]`, `anon_inode:bpf-map`, …).
    AnonInode {
        name: String,
    },
    Device {
        path: String,
    },
    /// Could not be classified (the link could not be read, or an unknown form).
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum SocketInfo {
    Unix(UnixSocket),
    Inet {
        protocol: String,
        local: String,
        remote: String,
        state: String,
    },
    Netlink {
        protocol: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UnixSocket {
    /// Bound path (or `@abstract` name), if any.
    pub path: Option<String>,
    /// `stream`, `dgram` or `seqpacket`.
    pub socket_type: String,
    /// `connected`, `listening`, `unconnected`, …
    pub state: String,
    /// Inode of the socket at the other end, when the kernel told (sock_diag).
    pub peer_inode: Option<u64>,
    /// Bytes waiting to be read (pending connections for a listener), from sock_diag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_queue: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpollTarget {
    pub fd: i32,
    pub events: u32,
    pub data: u64,
    pub inode: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InotifyWatch {
    pub wd: i32,
    pub inode: u64,
    pub dev: String,
    pub mask: u32,
}

/// One line of /proc/PID/maps with its /proc/PID/smaps counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `r-xp`, `rw-s`, …
    pub perms: String,
    pub offset: u64,
    /// `major:minor` in hex, as in maps.
    pub dev: String,
    pub inode: u64,
    /// Path or pseudo-name (`[stack]`, `[heap]`, `/memfd:name (deleted)`); None if anonymous.
    pub path: Option<String>,
    pub rss_kb: Option<u64>,
    pub pss_kb: Option<u64>,
    pub shared_clean_kb: Option<u64>,
    pub shared_dirty_kb: Option<u64>,
    pub private_clean_kb: Option<u64>,
    pub private_dirty_kb: Option<u64>,
    pub swap_kb: Option<u64>,
    /// Two-letter VmFlags of smaps (`rd`, `wr`, `ex`, `sh`, `mw`, …).
    #[serde(default)]
    pub vm_flags: Vec<String>,
}

impl Mapping {
    pub fn is_exec(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    pub fn is_write(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    pub fn is_shared(&self) -> bool {
        self.perms.as_bytes().get(3) == Some(&b's')
    }
    /// Backed by a memfd (`/memfd:NAME (deleted)`).
    pub fn memfd_name(&self) -> Option<&str> {
        let p = self.path.as_deref()?.strip_prefix("/memfd:")?;
        Some(p.strip_suffix(" (deleted)").unwrap_or(p))
    }
    pub fn is_deleted(&self) -> bool {
        self.path
            .as_deref()
            .is_some_and(|p| p.ends_with(" (deleted)"))
    }
    /// A regular file path (not a pseudo-name in brackets, not anonymous).
    pub fn file_path(&self) -> Option<&str> {
        let p = self.path.as_deref()?;
        if p.starts_with('[') || p.is_empty() {
            None
        } else {
            Some(p)
        }
    }
}
