//! Test-only capture of a live process: stop every thread (PTRACE_SEIZE + PTRACE_INTERRUPT),
//! copy registers and the live part of each stack, detach. A stand-in for the real freeze
//! code in `source::live`, kept small so the unwinder's tests depend on nothing but ptrace.

use crate::memory::MemoryImage;
use crate::model::{Arch, Process, Registers, StackCopy, Thread};
use nix::sys::ptrace;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process killed (by pid) and reaped when dropped.
pub struct Target {
    pub child: Child,
    pub pid: i32,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Target {
    /// Starts `exe args`, waits for "ready" on its stderr, then until `settled` holds for
    /// the syscalls its threads sit in (/proc/PID/task/*/syscall first fields).
    pub fn start(exe: &Path, args: &[&str], settled: impl Fn(&[i64]) -> bool) -> Target {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut err = child.stderr.take().unwrap();
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut err, &mut buf).unwrap();
        assert_eq!(&buf, b"ready\n");
        let t = Target { child, pid };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !settled(&t.syscalls()) {
            assert!(std::time::Instant::now() < deadline, "{:?}", t.syscalls());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        t
    }

    pub fn tids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort();
        v
    }

    fn syscalls(&self) -> Vec<i64> {
        self.tids()
            .iter()
            .map(|t| {
                std::fs::read_to_string(format!("/proc/{}/task/{t}/syscall", self.pid))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(-1)
            })
            .collect()
    }
}

/// Detaches every thread it holds when dropped: the target never stays stopped.
struct Stopped(Vec<Pid>);

impl Drop for Stopped {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = ptrace::detach(*p, None);
        }
    }
}

fn x86_64_registers(r: &libc::user_regs_struct) -> Registers {
    let pairs = [
        ("r15", r.r15),
        ("r14", r.r14),
        ("r13", r.r13),
        ("r12", r.r12),
        ("rbp", r.rbp),
        ("rbx", r.rbx),
        ("r11", r.r11),
        ("r10", r.r10),
        ("r9", r.r9),
        ("r8", r.r8),
        ("rax", r.rax),
        ("rcx", r.rcx),
        ("rdx", r.rdx),
        ("rsi", r.rsi),
        ("rdi", r.rdi),
        ("orig_rax", r.orig_rax),
        ("rip", r.rip),
        ("eflags", r.eflags),
        ("rsp", r.rsp),
        ("fs_base", r.fs_base),
    ];
    Registers {
        arch: Arch::X86_64,
        values: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Stops every thread of `pid`, copies registers and each stack from sp to the end of its
/// mapping (at most 1 MiB), and detaches.
pub fn capture(pid: i32) -> (Process, MemoryImage) {
    let mappings = crate::source::live::procfs::read_mappings(pid).unwrap();
    let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut held = Stopped(Vec::new());
    for &t in &tids {
        let p = Pid::from_raw(t);
        ptrace::seize(p, ptrace::Options::empty()).unwrap();
        held.0.push(p);
        ptrace::interrupt(p).unwrap();
    }
    for p in &held.0 {
        waitpid(*p, Some(WaitPidFlag::__WALL)).unwrap();
    }
    let mut mem = MemoryImage::new();
    let mut threads = Vec::new();
    for p in &held.0 {
        let regs = x86_64_registers(&ptrace::getregs(*p).unwrap());
        let sp = regs.sp().unwrap();
        let end = mappings
            .iter()
            .find(|m| m.start <= sp && sp < m.end)
            .map(|m| m.end.min(sp + (1 << 20)))
            .unwrap();
        let mut bytes = vec![0u8; (end - sp) as usize];
        let n = process_vm_readv(
            Pid::from_raw(pid),
            &mut [IoSliceMut::new(&mut bytes)],
            &[RemoteIoVec {
                base: sp as usize,
                len: (end - sp) as usize,
            }],
        )
        .unwrap();
        bytes.truncate(n);
        let len = bytes.len() as u64;
        mem.insert(sp, bytes);
        let tid = p.as_raw();
        threads.push(Thread {
            tid,
            name: std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .unwrap_or_default()
                .trim()
                .to_string(),
            registers: Some(regs),
            stack: Some(StackCopy {
                start: sp,
                len,
                sp,
                truncated: false,
            }),
            stopped: true,
            ..Thread::default()
        });
    }
    drop(held);
    threads.sort_by_key(|t| t.tid);
    let process = Process {
        pid,
        threads,
        mappings,
        ..Process::default()
    };
    (process, mem)
}

/// Compiles the C file `src` with `cc` and `flags` into `dir/name`, optionally stripped.
pub fn build_c(dir: &Path, name: &str, src: &Path, flags: &[&str], strip: bool) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(flags)
        .args(["-pthread", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap();
    assert!(st.success(), "cc {flags:?} failed");
    if strip {
        assert!(Command::new("strip").arg(&out).status().unwrap().success());
    }
    out
}
