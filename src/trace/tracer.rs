//! The tracer loop of `wedge trace`: follows every task of the tree with ptrace (clone,
//! fork, vfork, exec, and with `-- CMD` the seccomp stops at exec entry) and records each
//! event into a [`Timeline`]. Tasks are only ever stopped at those events and resumed at
//! once; at the end (the root exited, or wedge was interrupted) every task still traced is
//! let go with the same release `wedge run` uses.

use super::timeline::{self, Creation, Event, Memfd, Mode, Timeline, What};
use crate::ptrace::{self, raw};
use crate::run::{FAULTS, Tree, release};
use crate::source::live::procfs;
use ::procfs as procfs_crate;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EVENT_SECCOMP: i32 = 7;
const O_TRACESECCOMP: libc::c_int = 0x80;

/// The registers that matter at a stop: the system call number and its arguments.
struct Call {
    nr: i64,
    args: [u64; 6],
}

#[cfg(target_arch = "x86_64")]
fn call_of(tid: i32) -> Option<Call> {
    // SAFETY: plain data filled by the kernel.
    let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    if raw(
        libc::PTRACE_GETREGS,
        tid,
        0,
        &mut r as *mut libc::user_regs_struct as usize,
    ) < 0
    {
        return None;
    }
    Some(Call {
        nr: r.orig_rax as i64,
        args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
    })
}

#[cfg(target_arch = "aarch64")]
fn call_of(tid: i32) -> Option<Call> {
    // SAFETY: plain data filled by the kernel.
    let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: &mut r as *mut libc::user_regs_struct as *mut libc::c_void,
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    if raw(
        libc::PTRACE_GETREGSET,
        tid,
        libc::NT_PRSTATUS as usize,
        &mut iov as *mut libc::iovec as usize,
    ) < 0
    {
        return None;
    }
    Some(Call {
        nr: r.regs[8] as i64,
        args: [
            r.regs[0], r.regs[1], r.regs[2], r.regs[3], r.regs[4], r.regs[5],
        ],
    })
}

/// Reads `buf.len()` bytes of `tid`'s memory at `addr`.
fn read_mem(tid: i32, addr: u64, buf: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: local points at `buf`; the remote range is only read by the kernel.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// A NUL-terminated string of `tid` at `addr` (at most 4 KiB), read page by page.
fn read_cstr(tid: i32, addr: u64) -> Option<String> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let room = (4096 - (at % 4096)) as usize;
        let mut chunk = vec![0u8; room.min(256)];
        if !read_mem(tid, at, &mut chunk) {
            return None;
        }
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk);
        at += chunk.len() as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn eventmsg(tid: i32) -> u64 {
    let mut msg: libc::c_ulong = 0;
    raw(
        libc::PTRACE_GETEVENTMSG,
        tid,
        0,
        &mut msg as *mut libc::c_ulong as usize,
    );
    msg as u64
}

fn comm_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

fn link(path: &str) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// A memfd's name from a link target such as `/memfd:runc_cloned:/proc/self/exe (deleted)`.
fn memfd_name(target: &str) -> Option<String> {
    let rest = target.strip_prefix("/memfd:")?;
    Some(rest.strip_suffix(" (deleted)").unwrap_or(rest).to_string())
}

fn memfd_at(target: &str, proc_link: &str) -> Option<Memfd> {
    let name = memfd_name(target)?;
    let seals = procfs::seals_at(proc_link);
    Some(Memfd {
        name,
        seals,
        seal_names: seals
            .map(crate::facts::memory::seal_names)
            .unwrap_or_default(),
    })
}

/// What an exec entry is about to run: the path as the tracee names it, the same reachable
/// from wedge (through /proc/TID/{root,cwd,fd}), and the memfd when it is one.
fn exec_target(pid: i32, tid: i32, call: &Call) -> (String, String, Option<Memfd>) {
    let execveat = call.nr == libc::SYS_execveat;
    let (dirfd, ptr, flags) = if execveat {
        (call.args[0] as i32, call.args[1], call.args[4] as i32)
    } else {
        (libc::AT_FDCWD, call.args[0], 0)
    };
    let path = read_cstr(tid, ptr).unwrap_or_default();
    // An fd-based exec: execveat(fd, "", AT_EMPTY_PATH), fexecve's /proc/self/fd/N.
    let fd = if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        Some(dirfd)
    } else {
        ["/proc/self/fd/", "/dev/fd/", &format!("/proc/{pid}/fd/")]
            .iter()
            .find_map(|p| path.strip_prefix(p).and_then(|n| n.parse::<i32>().ok()))
    };
    if let Some(fd) = fd {
        let proc_link = format!("/proc/{pid}/fd/{fd}");
        let target = link(&proc_link).unwrap_or_default();
        let memfd = memfd_at(&target, &proc_link);
        let shown = if path.is_empty() {
            target.clone()
        } else {
            path.clone()
        };
        return (shown, proc_link, memfd);
    }
    let reach = if path.starts_with('/') {
        format!("/proc/{tid}/root{path}")
    } else if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd/{path}")
    } else {
        format!("/proc/{pid}/fd/{dirfd}/{path}")
    };
    (path, reach, None)
}

/// Why an exec of `reach` would lose privileges under ptrace: setuid, setgid, or file
/// capabilities (`security.capability`).
fn privileged(reach: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(reach).ok()?;
    let mode = md.mode();
    if mode & libc::S_ISUID != 0 {
        return Some("setuid".into());
    }
    if mode & libc::S_ISGID != 0 && mode & libc::S_IXGRP != 0 {
        return Some("setgid".into());
    }
    let c = std::ffi::CString::new(reach).ok()?;
    // SAFETY: a NUL-terminated path and name; a zero-size query writes nothing.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    (n > 0).then(|| "file capabilities".into())
}

/// The flags of the clone/clone3/fork/vfork call a creator is stopped in.
fn creation_flags(tid: i32, call: &Call) -> (u64, bool) {
    let nr = call.nr;
    if nr == libc::SYS_clone3 {
        let mut b = [0u8; 8];
        let flags = if read_mem(tid, call.args[0], &mut b) {
            u64::from_ne_bytes(b)
        } else {
            0
        };
        return (flags, true);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if nr == libc::SYS_fork {
            return (libc::SIGCHLD as u64, false);
        }
        if nr == libc::SYS_vfork {
            return (
                timeline::CLONE_VFORK | libc::CLONE_VM as u64 | libc::SIGCHLD as u64,
                false,
            );
        }
    }
    (call.args[0], false)
}

/// Per process: threads seen at most (since its last exec).
#[derive(Default)]
struct Proc {
    max_threads: u32,
}

pub struct Options {
    pub interrupted: Arc<AtomicBool>,
    /// Stop at every execve/execveat entry (seccomp filter): exec targets are seen before
    /// they run, and setuid/file-capability helpers are let go before their exec. The
    /// filter stays in the command after wedge leaves: from then on the kernel fails every
    /// exec in the tree with ENOSYS, so it is opt-in.
    pub exec_entry: bool,
    /// When a task takes a fault signal, hand the tree to the live capture as `wedge run`
    /// does (with these options); tracing ends there.
    pub crash_capture: Option<crate::run::RunOptions>,
}

/// What a trace produced: the timeline, and the live capture of a crash if one happened.
pub type Traced = (Timeline, Option<crate::model::Diagnosis>);

/// wedge has CAP_SYS_PTRACE (bit 19 of CapEff): the kernel then keeps a traced setuid
/// exec's privileges.
fn can_ptrace_privileged() -> bool {
    procfs_crate::process::Process::myself()
        .and_then(|p| p.status())
        .is_ok_and(|s| s.capeff & (1 << 19) != 0)
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Spawn(#[from] ptrace::SpawnError),
    #[error("process {0} not found")]
    NoSuchProcess(i32),
    #[error("attaching to process {0}: {1}")]
    NotPermitted(i32, String),
}

struct Tracer {
    start: Instant,
    tl: Timeline,
    tree: Tree,
    procs: BTreeMap<i32, Proc>,
    /// Every exec of the spawned command is preceded by an exec-entry stop.
    seccomp: bool,
}

impl Tracer {
    fn push(&mut self, pid: i32, tid: i32, what: What) {
        self.tl.events.push(Event {
            t_us: self.start.elapsed().as_micros() as u64,
            pid,
            tid,
            what,
        });
    }

    fn tgid(&mut self, tid: i32) -> i32 {
        *self
            .tree
            .tasks
            .entry(tid)
            .or_insert_with(|| Tree::tgid_of(tid))
    }

    /// Threads of `pid` now: the traced ones (every thread of a traced process is).
    fn threads_now(&self, pid: i32) -> u32 {
        (self.tree.tasks.values().filter(|&&g| g == pid).count() as u32).max(1)
    }

    fn on_creation(&mut self, tid: i32, vfork_event: bool) {
        let pid = self.tgid(tid);
        let child_tid = eventmsg(tid) as i32;
        let (flags, clone3) = call_of(tid)
            .map(|c| creation_flags(tid, &c))
            .unwrap_or((0, false));
        let how = timeline::classify(vfork_event, clone3, flags);
        let threads = self.threads_now(pid);
        let child = if how == Creation::Thread {
            pid
        } else {
            child_tid
        };
        self.tree.tasks.insert(child_tid, child);
        let p = self.procs.entry(pid).or_default();
        let had = p.max_threads > 1 || threads > 1;
        p.max_threads = p.max_threads.max(threads);
        if how == Creation::Thread {
            p.max_threads = p.max_threads.max(threads + 1);
        } else {
            self.procs.insert(child, Proc { max_threads: 1 });
        }
        self.push(
            pid,
            tid,
            What::Created {
                child,
                child_tid,
                how,
                flags,
                flag_names: timeline::flag_names(flags),
                namespaces: timeline::namespace_names(flags),
                creator_threads: threads,
                creator_had_threads: had,
            },
        );
    }

    /// An exec entry; returns false when the task was let go (detached) before it.
    fn on_exec_entry(&mut self, tid: i32) -> bool {
        let pid = self.tgid(tid);
        let Some(call) = call_of(tid) else {
            return true;
        };
        let (path, reach, memfd) = exec_target(pid, tid, &call);
        self.push(
            pid,
            tid,
            What::ExecCall {
                path: path.clone(),
                memfd,
            },
        );
        if let Some(reason) = privileged(&reach) {
            self.push(
                pid,
                tid,
                What::LetGo {
                    path: path.clone(),
                    reason: format!("let go before exec of {reason} {path}"),
                },
            );
            raw(libc::PTRACE_DETACH, tid, 0, 0);
            self.tree.tasks.remove(&tid);
            return false;
        }
        true
    }

    fn on_exec(&mut self, tid: i32) {
        let former = eventmsg(tid) as i32;
        if former != tid {
            self.tree.tasks.remove(&former);
        }
        let pid = self.tgid(tid);
        // The other threads are gone; the process starts afresh.
        self.tree.tasks.retain(|&t, &mut g| g != pid || t == tid);
        self.procs.insert(pid, Proc { max_threads: 1 });
        let exe_link = format!("/proc/{pid}/exe");
        let exe = link(&exe_link).unwrap_or_default();
        let memfd = memfd_at(&exe, &exe_link);
        if self.seccomp
            && !self
                .tl
                .events
                .iter()
                .any(|e| e.pid == pid && matches!(e.what, What::ExecCall { .. }))
            && pid == self.tl.root
        {
            self.seccomp = false;
            self.tl.notes.push(
                "the seccomp filter could not be installed: exec entries were not seen (setuid helpers were not let go before their exec)".into(),
            );
        }
        if !self.seccomp
            && let Some(reason) = privileged(&exe_link)
        {
            self.push(
                pid,
                tid,
                What::PrivilegedExec {
                    path: exe.clone(),
                    reason,
                    kept: can_ptrace_privileged(),
                },
            );
        }
        self.push(
            pid,
            tid,
            What::Exec {
                exe,
                comm: comm_of(pid),
                memfd,
            },
        );
    }

    fn on_exit(&mut self, tid: i32, status: i32) {
        let Some(pid) = self.tree.tasks.remove(&tid) else {
            return;
        };
        let (code, signal, core) = if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None, false)
        } else {
            (None, Some(libc::WTERMSIG(status)), libc::WCOREDUMP(status))
        };
        self.push(
            pid,
            tid,
            What::Exit {
                code,
                signal,
                core,
                thread: tid != pid,
            },
        );
    }

    /// Where each task still traced is, recorded before they are let go.
    fn record_alive(&mut self) {
        let tasks: Vec<(i32, i32)> = self.tree.tasks.iter().map(|(&t, &p)| (t, p)).collect();
        let arch = crate::model::Arch::native().unwrap_or(crate::model::Arch::X86_64);
        for (tid, pid) in tasks {
            // The capture's own reader of a thread's state, wchan and syscall.
            let Ok(th) = procfs::read_thread(pid, tid, arch) else {
                continue;
            };
            // As /proc/TID/syscall lists them: the number, then the arguments.
            let syscall = th
                .syscall
                .map(|s| std::iter::once(s.nr as u64).chain(s.args).collect());
            let state = th.state.chars().next().unwrap_or('?');
            let wchan = th.wchan.unwrap_or_default();
            self.push(
                pid,
                tid,
                What::Alive {
                    state,
                    syscall,
                    wchan,
                },
            );
        }
    }
}

/// Interrupts the tracer thread's blocking waitpid when `flag` is set: a no-op handler
/// installed without SA_RESTART makes the wait return EINTR.
struct Waker {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

extern "C" fn wake(_: libc::c_int) {}

impl Waker {
    fn start(flag: Arc<AtomicBool>) -> Waker {
        // SAFETY: a handler that does nothing; sa_flags without SA_RESTART.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = wake as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
        }
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                if flag.load(Ordering::Relaxed) {
                    // SAFETY: a signal to wedge's own tracer thread.
                    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), me, libc::SIGUSR2) };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Waker {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const FOLLOW: libc::c_int = libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACEEXEC;

/// Runs `argv` traced to its end (or until interrupted).
pub fn trace_command(argv: &[OsString], opts: &Options) -> Result<Traced, TraceError> {
    let filter = super::seccomp::exec_filter();
    let start = Instant::now();
    let root = if opts.exec_entry {
        ptrace::spawn_seized("trace", argv, FOLLOW | O_TRACESECCOMP, Some(&filter))?
    } else {
        ptrace::spawn_seized("trace", argv, FOLLOW, None)?
    };
    let mut t = Tracer {
        start,
        tl: Timeline {
            command: argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            root,
            mode: Mode::Spawned,
            ..Timeline::default()
        },
        tree: Tree::default(),
        procs: BTreeMap::new(),
        seccomp: opts.exec_entry,
    };
    // SAFETY: geteuid has no preconditions.
    if opts.exec_entry && unsafe { libc::geteuid() } != 0 {
        t.tl.notes.push(
            "--exec-entry without root: the seccomp filter needed no_new_privs, so setuid and file-capability helpers run without their privileges even when let go".into(),
        );
    }
    if !opts.exec_entry {
        t.tl.notes.push(
            "no exec-entry stops (without --exec-entry): execs are seen once done, a memfd's seals are read from /proc/PID/exe, and setuid/file-capability helpers exec while traced (the kernel keeps their privileges only if wedge has CAP_SYS_PTRACE)".into(),
        );
    }
    t.tree.tasks.insert(root, root);
    t.procs.insert(root, Proc { max_threads: 1 });
    // Before its exec the command is still a copy of wedge: name it by what it will run.
    let first = argv.first().map(|a| a.to_string_lossy().into_owned());
    t.push(
        root,
        root,
        What::Traced {
            comm: first.clone().unwrap_or_default(),
            exe: argv
                .first()
                .and_then(ptrace::resolve)
                .map(|p| p.to_string_lossy().into_owned()),
            threads: 1,
            parent: None,
        },
    );
    Ok(follow(t, opts))
}

/// Seizes every task of the tree under `pid` and follows it until `pid` exits.
pub fn trace_attached(pid: i32, opts: &Options) -> Result<Traced, TraceError> {
    if procfs::process_stat(pid).is_none() {
        return Err(TraceError::NoSuchProcess(pid));
    }
    let mut t = Tracer {
        start: Instant::now(),
        tl: Timeline {
            root: pid,
            mode: Mode::Attached,
            ..Timeline::default()
        },
        tree: Tree::default(),
        procs: BTreeMap::new(),
        seccomp: false,
    };
    // Twice: tasks created while the first pass seized are caught by the second (and any
    // created after a seize are followed by the kernel).
    for _ in 0..2 {
        let mut pids = vec![pid];
        pids.extend(procfs::descendants(pid));
        for p in pids {
            let Ok(tids) = procfs::list_tids(p) else {
                continue;
            };
            let mut seized = false;
            for tid in &tids {
                if t.tree.tasks.contains_key(tid) {
                    continue;
                }
                if raw(libc::PTRACE_SEIZE, *tid, 0, FOLLOW as usize) < 0 {
                    let e = std::io::Error::last_os_error();
                    if p == pid && t.tree.tasks.is_empty() {
                        return Err(TraceError::NotPermitted(pid, e.to_string()));
                    }
                    t.tl.notes
                        .push(format!("process {p} thread {tid} could not be seized: {e}"));
                    continue;
                }
                t.tree.tasks.insert(*tid, p);
                seized = true;
            }
            if seized && !t.procs.contains_key(&p) {
                let n = tids.len() as u32;
                t.procs.insert(p, Proc { max_threads: n });
                let parent = procfs::process_stat(p)
                    .map(|st| st.ppid)
                    .filter(|pp| t.procs.contains_key(pp));
                t.push(
                    p,
                    p,
                    What::Traced {
                        comm: comm_of(p),
                        exe: link(&format!("/proc/{p}/exe")),
                        threads: n,
                        parent,
                    },
                );
            }
        }
    }
    t.tl.notes.push(
        "attached to a running tree (-p): no seccomp filter can be added to a running process, so exec entries are not seen — setuid and file-capability helpers are not let go before their exec (under a tracer without CAP_SYS_PTRACE they would run without their privileges), and a memfd's seals are read after the exec, from /proc/PID/exe; creations before the attach are not seen, so 'had other threads' counts from the attach".into(),
    );
    Ok(follow(t, opts))
}

/// How long to poll for the next stop before sleeping in waitpid. A traced fork/exec
/// loop stops several times per process, and each stop waits for wedge to be scheduled:
/// on an idle machine that is a wake-up from an idle CPU every time. Events come in
/// bursts (a vfork, the child's first stop, its exec, its exit), so a short poll catches
/// most of the next ones without that wake-up. It is only done while a CPU is free: on a
/// busy machine the poll would take CPU time from the traced command itself
/// (docs/benchmarks.md has both cases).
const POLL: std::time::Duration = std::time::Duration::from_micros(1000);
/// How often the free-CPU check (/proc/loadavg) is made again.
const POLL_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether a CPU is free for the poll: /proc/loadavg's running count — wedge itself and
/// whatever else is runnable, the traced command included — is at most the number of CPUs
/// wedge may run on.
fn cpu_free(loadavg: &str, cpus: usize) -> bool {
    loadavg
        .split_whitespace()
        .nth(3)
        .and_then(|f| f.split('/').next())
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|running| running <= cpus)
}

/// waitpid(-1, __WALL), polling first while a CPU is free (see [`POLL`]).
struct Waiter {
    cpus: usize,
    poll: bool,
    checked: Option<std::time::Instant>,
}

impl Waiter {
    fn new() -> Waiter {
        Waiter {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            poll: false,
            checked: None,
        }
    }

    fn wait(&mut self, status: &mut libc::c_int) -> libc::pid_t {
        let now = std::time::Instant::now();
        if self
            .checked
            .is_none_or(|t| now.duration_since(t) >= POLL_CHECK)
        {
            self.checked = Some(now);
            self.poll = self.cpus > 1
                && std::fs::read_to_string("/proc/loadavg").is_ok_and(|l| cpu_free(&l, self.cpus));
        }
        while self.poll && now.elapsed() < POLL {
            // SAFETY: status is a valid out-pointer.
            let tid = unsafe { libc::waitpid(-1, status, libc::__WALL | libc::WNOHANG) };
            if tid != 0 {
                return tid;
            }
            std::hint::spin_loop();
        }
        // SAFETY: as above.
        unsafe { libc::waitpid(-1, status, libc::__WALL) }
    }
}

fn follow(mut t: Tracer, opts: &Options) -> Traced {
    let mut crash = None;
    t.tl.kernel_release = crate::hostcheck::kernel_release();
    let _waker = Waker::start(Arc::clone(&opts.interrupted));
    let mut waiter = Waiter::new();
    let root = t.tl.root;
    loop {
        if opts.interrupted.load(Ordering::Relaxed) {
            t.record_alive();
            release(&mut t.tree, None, false);
            t.tl.notes.push(
                "wedge was interrupted: it let every task go, and the command runs on untraced"
                    .into(),
            );
            break;
        }
        let mut status = 0;
        let tid = waiter.wait(&mut status);
        if tid < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // Nothing left to wait for.
            break;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            t.on_exit(tid, status);
            if tid == root {
                t.tl.status = Some(ptrace::shell_status(status));
                // The root is gone: what is left (a daemon, a pause process) runs on.
                t.record_alive();
                release(&mut t.tree, None, false);
                break;
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        // A new task's first stop may come before its creator's event, which registers it
        // (with its thread group, without reading /proc): nothing is looked up here.
        let sig = libc::WSTOPSIG(status);
        let ev = (status >> 16) & 0xff;
        match ev {
            0 => {
                if FAULTS.contains(&sig) {
                    // SAFETY: plain data the kernel fills.
                    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
                    raw(
                        libc::PTRACE_GETSIGINFO,
                        tid,
                        0,
                        &mut si as *mut libc::siginfo_t as usize,
                    );
                    // SAFETY: si_addr read as a plain field.
                    let addr = unsafe { si.si_addr() } as u64;
                    let pid = t.tgid(tid);
                    t.push(
                        pid,
                        tid,
                        What::Signal {
                            signo: sig,
                            code: si.si_code,
                            addr,
                        },
                    );
                    if let Some(ro) = &opts.crash_capture {
                        let (_, d) = crate::run::capture_fault(root, &mut t.tree, tid, sig, ro);
                        crash = Some(d);
                        t.tl.notes.push(format!(
                            "process {pid} thread {tid} took signal {sig}: the tree was captured before its handler ran (as `wedge run` does) and let go; later events are not recorded"
                        ));
                        if t.tl.mode == Mode::Spawned {
                            t.tl.status = wait_untraced(root, &opts.interrupted);
                        }
                        break;
                    }
                }
                raw(libc::PTRACE_CONT, tid, 0, sig as usize);
            }
            libc::PTRACE_EVENT_STOP => {
                if matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) {
                    raw(libc::PTRACE_LISTEN, tid, 0, 0);
                } else {
                    raw(libc::PTRACE_CONT, tid, 0, 0);
                }
            }
            libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
                t.on_creation(tid, ev == libc::PTRACE_EVENT_VFORK);
                raw(libc::PTRACE_CONT, tid, 0, 0);
            }
            libc::PTRACE_EVENT_EXEC => {
                t.on_exec(tid);
                raw(libc::PTRACE_CONT, tid, 0, 0);
            }
            EVENT_SECCOMP => {
                if t.on_exec_entry(tid) {
                    raw(libc::PTRACE_CONT, tid, 0, 0);
                }
            }
            _ => {
                raw(libc::PTRACE_CONT, tid, 0, 0);
            }
        }
    }
    if let Some(c) = match crate::hostcheck::memfd_future_write_cow() {
        crate::hostcheck::CowCheck::CowBroken => Some(true),
        crate::hostcheck::CowCheck::CowKept => Some(false),
        crate::hostcheck::CowCheck::Unsupported(_) => None,
    } {
        t.tl.cow_broken = Some(c);
    }
    (t.tl, crash)
}

/// The status of the command (our child) once it ends, no longer traced; None when wedge
/// is interrupted first.
fn wait_untraced(root: i32, interrupted: &AtomicBool) -> Option<i32> {
    loop {
        if interrupted.load(Ordering::Relaxed) {
            return None;
        }
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; root is wedge's own child.
        let r = unsafe { libc::waitpid(root, &mut status, 0) };
        if r == root && (libc::WIFEXITED(status) || libc::WIFSIGNALED(status)) {
            return Some(ptrace::shell_status(status));
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_free;

    #[test]
    fn polls_only_while_a_cpu_is_free() {
        // Fields of /proc/loadavg: 1, 5, 15 min averages, running/threads, last pid.
        assert!(cpu_free("0.05 1.09 1.51 1/412 2207\n", 2));
        assert!(!cpu_free("2.10 1.90 1.51 3/420 2207\n", 2));
        assert!(cpu_free("2.10 1.90 1.51 2/420 2207\n", 2));
        assert!(cpu_free("2.10 1.90 1.51 2/420 2207\n", 8));
        assert!(!cpu_free("garbage", 2));
    }
}
