//! The seccomp-bpf program `wedge trace -- CMD` installs in the command before its exec:
//! SECCOMP_RET_TRACE for execve and execveat (a PTRACE_EVENT_SECCOMP stop at their entry),
//! SECCOMP_RET_ALLOW for everything else, so no other system call ever stops.
//!
//! Caveat, from the kernel: a SECCOMP_RET_TRACE with no tracer attached fails the call with
//! ENOSYS. Once wedge is gone (or has detached), an exec in the tree fails; see README.

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: BPF_JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The program: trace execve/execveat of the native architecture, allow the rest.
pub fn exec_filter() -> Vec<libc::sock_filter> {
    vec![
        // seccomp_data.arch (offset 4): another ABI (i386, x32) is allowed through.
        stmt(BPF_LD_W_ABS, 4),
        jeq(AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, RET_ALLOW),
        // seccomp_data.nr (offset 0).
        stmt(BPF_LD_W_ABS, 0),
        jeq(libc::SYS_execve as u32, 2, 0),
        jeq(libc::SYS_execveat as u32, 1, 0),
        stmt(BPF_RET_K, RET_ALLOW),
        stmt(BPF_RET_K, RET_TRACE),
    ]
}
