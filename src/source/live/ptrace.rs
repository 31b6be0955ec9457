//! Thin, checked wrappers over the ptrace calls the freeze needs (seize, interrupt, wait,
//! get registers, detach) and over process_vm_readv.

use crate::model::{Arch, Registers};
use crate::source::regs;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;
use std::io::IoSliceMut;

/// What a non-blocking wait on a seized thread saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Not stopped yet.
    Running,
    /// In a ptrace stop; `signal` is set when the stop was a signal-delivery stop, i.e. the
    /// signal was taken from the thread and must be given back at detach.
    Stopped { signal: Option<i32> },
    /// The thread exited (or was killed).
    Gone,
}

pub fn seize(tid: i32) -> Result<(), Errno> {
    ptrace::seize(Pid::from_raw(tid), ptrace::Options::empty())
}

pub fn interrupt(tid: i32) -> Result<(), Errno> {
    ptrace::interrupt(Pid::from_raw(tid))
}

/// Looks once, without blocking, whether `tid` reached a ptrace stop.
///
/// Raw waitpid rather than nix's: nix cannot represent real-time stop signals and would
/// consume the status while reporting an error.
pub fn poll_stop(tid: i32) -> WaitOutcome {
    let mut status: libc::c_int = 0;
    // SAFETY: status is a valid out-pointer for the duration of the call.
    let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
    if rc == 0 {
        return WaitOutcome::Running;
    }
    if rc < 0 {
        return match Errno::last() {
            Errno::ECHILD | Errno::ESRCH => WaitOutcome::Gone,
            _ => WaitOutcome::Running,
        };
    }
    if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
        return WaitOutcome::Gone;
    }
    if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        // An event stop (PTRACE_EVENT_STOP from our interrupt, or a group stop) took nothing
        // from the thread; a plain signal-delivery stop took `sig`, which we must give back.
        // SIGTRAP|0x80 would be a syscall stop, which we never ask for.
        return if event != 0 || sig == (libc::SIGTRAP | 0x80) {
            WaitOutcome::Stopped { signal: None }
        } else {
            WaitOutcome::Stopped { signal: Some(sig) }
        };
    }
    WaitOutcome::Running
}

/// Lets a stopped thread go, giving back a signal it was stopped for (any signal number,
/// real-time ones included: glibc uses SIGRTMIN and SIGRTMIN+1 internally).
pub fn detach(tid: i32, signal: Option<i32>) -> Result<(), Errno> {
    let sig = signal.unwrap_or(0) as usize;
    // SAFETY: PTRACE_DETACH takes no pointers; data is the signal number to deliver.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid as libc::pid_t,
            std::ptr::null_mut::<libc::c_void>(),
            sig as *mut libc::c_void,
        )
    };
    if rc < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// The general-purpose registers of a stopped thread (PTRACE_GETREGSET, NT_PRSTATUS).
pub fn registers(tid: i32, arch: Arch) -> Result<Registers, Errno> {
    let n = regs::word_count(arch);
    let mut words = vec![0u64; n];
    let mut iov = libc::iovec {
        iov_base: words.as_mut_ptr().cast(),
        iov_len: n * 8,
    };
    // SAFETY: iov points at a buffer of iov_len bytes that outlives the call; the kernel
    // writes at most iov_len bytes and updates iov_len to what it wrote.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid as libc::pid_t,
            libc::NT_PRSTATUS as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec as *mut libc::c_void,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    words.truncate(iov.iov_len / 8);
    regs::from_words(arch, &words).ok_or(Errno::EIO)
}

/// Copies `len` bytes at `addr` of process `pid`; returns what could be read (a short copy
/// stops at the first unreadable page).
pub fn read_memory(pid: i32, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut done = 0usize;
    while done < len {
        let remote = [RemoteIoVec {
            base: (addr + done as u64) as usize,
            len: len - done,
        }];
        let mut local = [IoSliceMut::new(&mut buf[done..])];
        match process_vm_readv(Pid::from_raw(pid), &mut local, &remote) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    buf.truncate(done);
    buf
}

/// Most iovecs one process_vm_readv call takes (IOV_MAX).
const IOV_MAX: usize = 1024;

/// Copies many ranges with as few system calls as possible (up to IOV_MAX ranges a call).
/// A range that cannot be read (or only partly) comes back short or empty; the others are
/// unaffected.
pub fn read_many(pid: i32, ranges: &[(u64, usize)]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = ranges.iter().map(|&(_, len)| vec![0u8; len]).collect();
    let mut got = vec![0usize; ranges.len()];
    let mut i = 0;
    while i < ranges.len() {
        let end = (i + IOV_MAX).min(ranges.len());
        let remote: Vec<RemoteIoVec> = ranges[i..end]
            .iter()
            .map(|&(base, len)| RemoteIoVec {
                base: base as usize,
                len,
            })
            .collect();
        let n = {
            let mut local: Vec<IoSliceMut> =
                out[i..end].iter_mut().map(|b| IoSliceMut::new(b)).collect();
            process_vm_readv(Pid::from_raw(pid), &mut local, &remote).unwrap_or(0)
        };
        // The kernel fills iovecs in order and stops at the first fault: account for what
        // arrived, then retry from the range that failed (alone, so it cannot stall others).
        let mut left = n;
        let mut j = i;
        while j < end && left >= ranges[j].1 {
            got[j] = ranges[j].1;
            left -= ranges[j].1;
            j += 1;
        }
        if j < end {
            // Range j is short: read it byte-exactly on its own, then go on after it.
            let (base, len) = ranges[j];
            let part = read_memory(pid, base, len);
            got[j] = part.len();
            out[j][..part.len()].copy_from_slice(&part);
            j += 1;
        }
        i = j;
    }
    for (b, n) in out.iter_mut().zip(got) {
        b.truncate(n);
    }
    out
}
