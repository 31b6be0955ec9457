//! System call names and argument decoding for x86-64 and arm64.
//!
//! Names come from the `syscalls` crate's per-architecture tables (data, not the host's
//! libc), so a core from an arm64 machine decodes the same on an x86-64 one. Decoding knows
//! the calls threads block in; everything else prints as raw arguments.

use crate::model::{Arch, FutexWord, Registers, Syscall};

/// The name of syscall `nr` on `arch`.
pub fn name(arch: Arch, nr: i64) -> Option<&'static str> {
    let nr = usize::try_from(nr).ok()?;
    match arch {
        Arch::X86_64 => syscalls::x86_64::Sysno::new(nr).map(|s| s.name()),
        Arch::Aarch64 => syscalls::aarch64::Sysno::new(nr).map(|s| s.name()),
    }
}

/// The number of the syscall named `name` on `arch` (the reverse of [`name`]).
pub fn number(arch: Arch, name: &str) -> Option<i64> {
    (0..1024).find(|&nr| self::name(arch, nr) == Some(name))
}

const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;

fn futex_op_name(cmd: u32) -> &'static str {
    match cmd {
        0 => "FUTEX_WAIT",
        1 => "FUTEX_WAKE",
        2 => "FUTEX_FD",
        3 => "FUTEX_REQUEUE",
        4 => "FUTEX_CMP_REQUEUE",
        5 => "FUTEX_WAKE_OP",
        6 => "FUTEX_LOCK_PI",
        7 => "FUTEX_UNLOCK_PI",
        8 => "FUTEX_TRYLOCK_PI",
        9 => "FUTEX_WAIT_BITSET",
        10 => "FUTEX_WAKE_BITSET",
        11 => "FUTEX_WAIT_REQUEUE_PI",
        12 => "FUTEX_CMP_REQUEUE_PI",
        13 => "FUTEX_LOCK_PI2",
        _ => "FUTEX_?",
    }
}

/// Futex commands that put the caller to sleep on the word.
fn futex_op_waits(cmd: u32) -> bool {
    matches!(cmd, 0 | 6 | 9 | 11 | 13)
}

/// For a futex wait: the word's address, the operation, and the expected value (the word's
/// value itself is read during the freeze).
pub fn futex_word(arch: Arch, nr: i64, args: &[u64]) -> Option<FutexWord> {
    if name(arch, nr)? != "futex" {
        return None;
    }
    let op = *args.get(1)? as u32;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if !futex_op_waits(cmd) {
        return None;
    }
    Some(FutexWord {
        addr: *args.first()?,
        op,
        op_name: futex_op_name(cmd).to_string(),
        private: op & FUTEX_PRIVATE_FLAG != 0,
        expected: *args.get(2)? as u32,
        value: None,
        after: Vec::new(),
    })
}

/// Index of the argument that points at a path string, for calls that take one.
pub fn path_arg(arch: Arch, nr: i64) -> Option<usize> {
    match name(arch, nr)? {
        "open" | "creat" | "execve" | "stat" | "lstat" | "access" | "mkdir" | "unlink"
        | "readlink" | "mknod" | "chdir" | "truncate" => Some(0),
        "openat" | "openat2" | "execveat" | "newfstatat" | "faccessat" | "faccessat2"
        | "mkdirat" | "unlinkat" | "readlinkat" | "mknodat" | "statx" => Some(1),
        _ => None,
    }
}

fn clock_name(c: u64) -> String {
    match c {
        0 => "CLOCK_REALTIME".into(),
        1 => "CLOCK_MONOTONIC".into(),
        7 => "CLOCK_BOOTTIME".into(),
        _ => format!("clock {c}"),
    }
}

fn fd_arg(v: u64) -> String {
    let fd = v as i32;
    if fd == -100 {
        "AT_FDCWD".into()
    } else {
        format!("fd={fd}")
    }
}

/// The call in words, e.g. `futex(0x7f12a0, FUTEX_WAIT_PRIVATE, 2)` or `read(fd=3, 0x…, 1)`.
pub fn decode(arch: Arch, nr: i64, args: &[u64]) -> Option<String> {
    let n = name(arch, nr)?;
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    let hex = |i: usize| format!("{:#x}", a(i));
    let text = match n {
        "read" | "write" | "pread64" | "pwrite64" | "readv" | "writev" | "recvfrom" | "sendto" => {
            format!("{n}({}, {}, {})", fd_arg(a(0)), hex(1), a(2))
        }
        "recvmsg" | "sendmsg" | "recvmmsg" | "sendmmsg" | "accept" | "accept4" | "connect"
        | "fsync" | "fdatasync" | "flock" | "close" => format!("{n}({}, …)", fd_arg(a(0))),
        "fcntl" => {
            let cmd = match a(1) {
                7 => "F_SETLKW".to_string(),
                38 => "F_OFD_SETLKW".to_string(),
                c => format!("cmd {c}"),
            };
            format!("fcntl({}, {cmd}, …)", fd_arg(a(0)))
        }
        "futex" => {
            let op = a(1) as u32;
            let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
            let private = if op & FUTEX_PRIVATE_FLAG != 0 {
                "_PRIVATE"
            } else {
                ""
            };
            let timeout = if a(3) == 0 { "" } else { ", with timeout" };
            format!(
                "futex({}, {}{private}, {}{timeout})",
                hex(0),
                futex_op_name(cmd),
                a(2) as u32
            )
        }
        "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => {
            format!(
                "{n}(epfd={}, maxevents={}, timeout={})",
                a(0) as i32,
                a(2) as i32,
                a(3) as i32
            )
        }
        "poll" => format!("poll({}, nfds={}, timeout={})", hex(0), a(1), a(2) as i32),
        "ppoll" => format!("ppoll({}, nfds={}, …)", hex(0), a(1)),
        "select" | "pselect6" => format!("{n}(nfds={}, …)", a(0) as i32),
        "wait4" => format!("wait4(pid={}, …)", a(0) as i32),
        "waitid" => format!("waitid(idtype={}, id={}, …)", a(0), a(1) as i32),
        "nanosleep" => format!("nanosleep({}, …)", hex(0)),
        "clock_nanosleep" => format!(
            "clock_nanosleep({}, flags={}, {})",
            clock_name(a(0)),
            a(1),
            hex(2)
        ),
        "open" => format!("open({}, {:#o})", hex(0), a(1)),
        "openat" | "openat2" => format!("{n}({}, {}, {:#o})", fd_arg(a(0)), hex(1), a(2)),
        "execve" => format!("execve({}, …)", hex(0)),
        "execveat" => format!("execveat({}, {}, …)", fd_arg(a(0)), hex(1)),
        "pause" => "pause()".into(),
        "rt_sigsuspend" => "rt_sigsuspend(…)".into(),
        "rt_sigtimedwait" => format!("rt_sigtimedwait({}, …)", hex(0)),
        _ => {
            let shown: Vec<String> = args.iter().take(6).map(|v| format!("{v:#x}")).collect();
            format!("{n}({})", shown.join(", "))
        }
    };
    Some(text)
}

/// The syscall a stopped thread was in, from its registers: x86-64 keeps the number in
/// orig_rax (-1 when not in a syscall) and the arguments in rdi, rsi, rdx, r10, r8, r9.
/// arm64's user_pt_regs carries no syscall number, so there procfs is used instead.
pub fn from_registers(regs: &Registers) -> Option<(i64, [u64; 6])> {
    match regs.arch {
        Arch::X86_64 => {
            let nr = regs.get("orig_rax")? as i64;
            if nr < 0 {
                return None;
            }
            let mut args = [0u64; 6];
            for (slot, r) in args
                .iter_mut()
                .zip(["rdi", "rsi", "rdx", "r10", "r8", "r9"])
            {
                *slot = regs.get(r)?;
            }
            Some((nr, args))
        }
        Arch::Aarch64 => None,
    }
}

/// Longest path argument read.
const MAX_PATH: usize = 4096;

/// The syscall a stopped thread was in (from its registers), with the memory its arguments
/// point at: a futex word and the three words after it (a pthread mutex's owner lives at
/// +8), or a path string. `read(addr, len)` returns the bytes available there (fewer, or
/// none, where memory ends): the live process's memory, or a core's.
pub fn at_stop(
    arch: Arch,
    nr: i64,
    args: &[u64; 6],
    read: &dyn Fn(u64, usize) -> Vec<u8>,
) -> Syscall {
    let mut s = Syscall {
        nr,
        name: name(arch, nr).map(String::from),
        args: args.to_vec(),
        decoded: decode(arch, nr, args),
        from: "registers".into(),
        futex: None,
        path: None,
    };
    fill_memory(arch, &mut s, read);
    s
}

/// Fills a syscall's futex word or path argument through `read` (see [`at_stop`]).
pub fn fill_memory(arch: Arch, s: &mut Syscall, read: &dyn Fn(u64, usize) -> Vec<u8>) {
    if let Some(mut w) = futex_word(arch, s.nr, &s.args) {
        let bytes = read(w.addr, 16);
        let mut words = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        w.value = words.next();
        w.after = words.collect();
        s.futex = Some(w);
    }
    if let Some(i) = path_arg(arch, s.nr)
        && let Some(&ptr) = s.args.get(i)
    {
        s.path = c_string(ptr, read);
    }
}

/// A NUL-terminated string of at most MAX_PATH bytes, read page by page (the next page may
/// be unmapped).
fn c_string(addr: u64, read: &dyn Fn(u64, usize) -> Vec<u8>) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_PATH {
        let to_page_end = 4096 - (at % 4096) as usize;
        let chunk = read(at, to_page_end.min(MAX_PATH - out.len()));
        if chunk.is_empty() {
            break;
        }
        if let Some(nul) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_on_both_arches() {
        assert_eq!(name(Arch::X86_64, 202), Some("futex"));
        assert_eq!(name(Arch::Aarch64, 98), Some("futex"));
        assert_eq!(name(Arch::X86_64, 0), Some("read"));
        assert_eq!(name(Arch::Aarch64, 63), Some("read"));
        assert_eq!(name(Arch::X86_64, -1), None);
        assert_eq!(number(Arch::Aarch64, "openat"), Some(56));
    }

    #[test]
    fn decodes_blocking_calls() {
        // The clone/fork hang as SIGNATURES.md shows it: futex, FUTEX_WAIT_PRIVATE, value 2.
        assert_eq!(
            decode(Arch::X86_64, 202, &[0x7f12a0, 0x80, 2, 0, 0, 0]).unwrap(),
            "futex(0x7f12a0, FUTEX_WAIT_PRIVATE, 2)"
        );
        let w = futex_word(Arch::Aarch64, 98, &[0x1000, 0x89, 0, 0, 0, 0]).unwrap();
        assert_eq!((w.op_name.as_str(), w.private), ("FUTEX_WAIT_BITSET", true));
        assert!(
            futex_word(Arch::X86_64, 202, &[0x1000, 0x81, 1, 0, 0, 0]).is_none(),
            "a wake is no wait"
        );
        assert_eq!(
            decode(
                Arch::X86_64,
                257,
                &[(-100i64) as u64, 0x5000, 0o2000000, 0, 0, 0]
            )
            .unwrap(),
            "openat(AT_FDCWD, 0x5000, 0o2000000)"
        );
        assert_eq!(path_arg(Arch::X86_64, 257), Some(1));
        assert_eq!(path_arg(Arch::Aarch64, 221), Some(0), "execve");
        assert_eq!(
            decode(Arch::X86_64, 230, &[1, 0, 0x7f00, 0, 0, 0]).unwrap(),
            "clock_nanosleep(CLOCK_MONOTONIC, flags=0, 0x7f00)"
        );
    }

    #[test]
    fn reads_x86_64_registers() {
        let words: Vec<u64> = (0..27).collect();
        let mut r = crate::source::regs::from_words(Arch::X86_64, &words).unwrap();
        r.values.insert("orig_rax".into(), 202);
        let (nr, args) = from_registers(&r).unwrap();
        assert_eq!(nr, 202);
        assert_eq!(args[0], r.get("rdi").unwrap());
        assert_eq!(args[3], r.get("r10").unwrap());
        r.values.insert("orig_rax".into(), u64::MAX);
        assert!(from_registers(&r).is_none());
    }
}
