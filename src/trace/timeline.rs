//! The timeline `wedge trace` records: what each process and thread of the traced tree did
//! (creation with its clone flags, exec, signals, exit), in order, with timestamps. Plain
//! serializable data, so the rules (rules.rs) can run on a recorded fixture.

use serde::{Deserialize, Serialize};

/// Everything recorded about one traced run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The command (`-- CMD`), or empty when attached with `-p`.
    #[serde(default)]
    pub command: Vec<String>,
    /// The root of the traced tree: the command's pid, or the `-p` pid.
    pub root: i32,
    /// `spawned` (`-- CMD`: every exec entry is seen) or `attached` (`-p`).
    pub mode: Mode,
    /// `uname -r` where the trace ran.
    #[serde(default)]
    pub kernel_release: String,
    /// The memfd copy-on-write host check (hostcheck.rs): `true` when it found the kernel
    /// bug, `false` when copy-on-write was kept, absent when it could not run.
    #[serde(default)]
    pub cow_broken: Option<bool>,
    /// In order of observation.
    pub events: Vec<Event>,
    /// What the trace could not see, and why.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The command's status as a shell gives it (exit code, 128 + signal); absent when
    /// wedge stopped before the command ended.
    #[serde(default)]
    pub status: Option<i32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Spawned,
    Attached,
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Microseconds since the trace started.
    pub t_us: u64,
    /// The process (thread-group id) the event is about.
    pub pid: i32,
    /// The thread.
    pub tid: i32,
    #[serde(flatten)]
    pub what: What,
}

/// How a task came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Creation {
    /// clone with CLONE_THREAD (pthread_create, Go's newosproc).
    Thread,
    /// glibc fork(): clone with CLONE_CHILD_SETTID and CLONE_CHILD_CLEARTID.
    Fork,
    /// vfork, or clone with CLONE_VFORK.
    Vfork,
    /// A raw clone (or fork) system call: no CLONE_CHILD_SETTID/CLEARTID, so glibc's
    /// fork preparation (atfork handlers, stdio and malloc locks) did not run.
    RawClone,
    /// clone3 creating a process (flags from its clone_args).
    Clone3,
}

impl Creation {
    pub fn as_str(self) -> &'static str {
        match self {
            Creation::Thread => "thread",
            Creation::Fork => "fork",
            Creation::Vfork => "vfork",
            Creation::RawClone => "raw clone",
            Creation::Clone3 => "clone3",
        }
    }
}

/// A memfd being executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memfd {
    /// The name given to memfd_create (`runc_cloned:/proc/self/exe`).
    pub name: String,
    /// F_GET_SEALS, when it could be read.
    pub seals: Option<u32>,
    /// The same, by name.
    #[serde(default)]
    pub seal_names: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum What {
    /// A task traced from the start of the trace (`-p`) or the command itself.
    Traced {
        comm: String,
        exe: Option<String>,
        threads: u32,
        /// Its parent, when that is traced too (`-p`: the tree as found at the attach).
        #[serde(default)]
        parent: Option<i32>,
    },
    /// `pid`/`tid` created `child` (a process; for a thread, `child_tid` in `pid`).
    Created {
        child: i32,
        child_tid: i32,
        how: Creation,
        /// The clone flags (raw value; for clone3, clone_args.flags).
        flags: u64,
        /// The flags by name (CLONE_*), namespaces included.
        flag_names: Vec<String>,
        /// CLONE_NEW* flags: the namespaces the child got new.
        #[serde(default)]
        namespaces: Vec<String>,
        /// Threads of the creator when it created the child.
        creator_threads: u32,
        /// The creator had run another thread at some point (now or earlier).
        creator_had_threads: bool,
    },
    /// An execve/execveat entry (seen only with `-- CMD`, through the seccomp filter).
    ExecCall {
        /// The path given, or for execveat with AT_EMPTY_PATH the fd's target.
        path: String,
        /// Set when the executable is a memfd.
        #[serde(default)]
        memfd: Option<Memfd>,
    },
    /// wedge detached the process before its exec: the target is setuid/setgid or has file
    /// capabilities, which an exec under ptrace would drop.
    LetGo { path: String, reason: String },
    /// An exec (seen after the fact) of a setuid/setgid or file-capability binary while
    /// traced. The kernel keeps its privileges only when the tracer has CAP_SYS_PTRACE
    /// (`kept`); use `--exec-entry` to have wedge let such helpers go before their exec.
    PrivilegedExec {
        path: String,
        reason: String,
        kept: bool,
    },
    /// An exec completed: the process now runs `exe`.
    Exec {
        exe: String,
        comm: String,
        /// Set when the exe is a memfd (`/memfd:NAME (deleted)`).
        #[serde(default)]
        memfd: Option<Memfd>,
    },
    /// A fault signal was delivered (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS).
    Signal { signo: i32, code: i32, addr: u64 },
    /// Where a task was when the trace ended and it was still alive: its current system
    /// call (from /proc/TID/syscall) and wchan.
    Alive {
        state: char,
        syscall: Option<Vec<u64>>,
        wchan: String,
    },
    /// A thread or process ended: exit code, or the signal that killed it.
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
        core: bool,
        /// True when it was a thread other than the leader.
        thread: bool,
    },
}

/// (flag, name) of the clone flags worth naming.
const CLONE_FLAGS: [(u64, &str); 23] = [
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
];

pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;

/// The names of the flags set in `flags` (the low byte, the exit signal, is left out).
pub fn flag_names(flags: u64) -> Vec<String> {
    CLONE_FLAGS
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// The CLONE_NEW* flags set in `flags`, by name.
pub fn namespace_names(flags: u64) -> Vec<String> {
    flag_names(flags)
        .into_iter()
        .filter(|n| n.starts_with("CLONE_NEW"))
        .collect()
}

/// How a task was created, from the ptrace event, the system call and its flags.
pub fn classify(vfork_event: bool, clone3: bool, flags: u64) -> Creation {
    if flags & CLONE_THREAD != 0 {
        Creation::Thread
    } else if vfork_event || flags & CLONE_VFORK != 0 {
        Creation::Vfork
    } else if clone3 {
        Creation::Clone3
    } else if flags & CLONE_CHILD_SETTID != 0 && flags & CLONE_CHILD_CLEARTID != 0 {
        Creation::Fork
    } else {
        Creation::RawClone
    }
}

impl Timeline {
    /// The events about process `pid`, in order.
    pub fn of(&self, pid: i32) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.pid == pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_fork_raw_clone_and_threads_are_told_apart() {
        // glibc 2.3x fork(): CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD.
        assert_eq!(classify(false, false, 0x1200011), Creation::Fork);
        // podman's syscall_clone(SIGCHLD | CLONE_NEWUSER …): no SETTID/CLEARTID.
        assert_eq!(classify(false, false, 0x10000011), Creation::RawClone);
        assert_eq!(classify(false, true, 0x3d0f00), Creation::Thread);
        assert_eq!(classify(true, false, 0x4111), Creation::Vfork);
        assert_eq!(classify(false, true, 0), Creation::Clone3);
        assert_eq!(namespace_names(0x10000011), vec!["CLONE_NEWUSER"]);
    }
}
