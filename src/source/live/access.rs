//! Why the kernel refused to let wedge stop a process, in words a person can act on.
//!
//! The facts are gathered from /proc ([`AccessFacts::gather`]); the explanation is a pure
//! function of them ([`explain_refusal`]), so every case is testable.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// CAP_SYS_PTRACE's bit in the capability sets of /proc/PID/status.
const CAP_SYS_PTRACE: u32 = 19;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessFacts {
    pub target_pid: i32,
    pub our_euid: u32,
    pub we_have_cap_sys_ptrace: bool,
    /// /proc/sys/kernel/yama/ptrace_scope; None where Yama is not built in.
    pub yama_scope: Option<u32>,
    /// Real and effective uid of the target.
    pub target_uids: (u32, u32),
    /// A debugger already attached to the target (TracerPid), with its name.
    pub tracer: Option<(i32, String)>,
    /// The target's user namespace is neither ours nor one we own (a descendant of ours).
    pub foreign_user_namespace: bool,
    /// The target is a descendant of wedge (Yama scope 1 allows that).
    pub target_is_descendant: bool,
}

impl AccessFacts {
    /// Reads what decides ptrace permission, for `pid`. Missing facts stay at their defaults.
    pub fn gather(pid: i32) -> AccessFacts {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |text: &str, key: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        };
        let uids = |text: &str| -> Vec<u32> {
            field(text, "Uid:")
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let own_uids = uids(&own);
        let target_uids = uids(&status);
        let cap_eff = field(&own, "CapEff:")
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .unwrap_or(0);
        let tracer = field(&status, "TracerPid:")
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|&t| t > 0)
            .map(|t| {
                let comm = std::fs::read_to_string(format!("/proc/{t}/comm")).unwrap_or_default();
                (t, comm.trim().to_string())
            });
        let yama_scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        AccessFacts {
            target_pid: pid,
            our_euid: own_uids.get(1).copied().unwrap_or(u32::MAX),
            we_have_cap_sys_ptrace: cap_eff & (1 << CAP_SYS_PTRACE) != 0,
            yama_scope,
            target_uids: (
                target_uids.first().copied().unwrap_or(u32::MAX),
                target_uids.get(1).copied().unwrap_or(u32::MAX),
            ),
            tracer,
            foreign_user_namespace: !user_namespace_is_ours_or_below(pid),
            target_is_descendant: is_descendant_of_self(pid),
        }
    }
}

/// One line saying why PTRACE_SEIZE was refused, and what to do about it.
pub fn explain_refusal(f: &AccessFacts) -> String {
    let pid = f.target_pid;
    if let Some((tpid, comm)) = &f.tracer {
        return format!(
            "process {pid} is already traced by pid {tpid} ({comm}); only one tracer may attach: \
             detach that debugger first"
        );
    }
    match f.yama_scope {
        Some(3) => {
            return format!(
                "Yama ptrace_scope is 3: the kernel forbids attaching to any process \
                 (it cannot be lowered without a reboot); cannot stop process {pid}"
            );
        }
        Some(2) if !f.we_have_cap_sys_ptrace => {
            return format!(
                "Yama ptrace_scope is 2: only CAP_SYS_PTRACE may attach; run wedge as root to stop process {pid}"
            );
        }
        Some(1) if !f.we_have_cap_sys_ptrace && !f.target_is_descendant => {
            return format!(
                "Yama ptrace_scope is 1: without CAP_SYS_PTRACE only descendants may be attached; \
                 run wedge as root (or with sysctl kernel.yama.ptrace_scope=0) to stop process {pid}"
            );
        }
        _ => {}
    }
    if f.foreign_user_namespace {
        return format!(
            "process {pid} is in a user namespace that wedge's own user namespace does not own \
             (wedge runs inside a container or an unprivileged namespace); run wedge from the \
             host's initial user namespace"
        );
    }
    if !f.we_have_cap_sys_ptrace {
        let (ruid, euid) = f.target_uids;
        if ruid != f.our_euid || euid != f.our_euid {
            return format!(
                "not root and no CAP_SYS_PTRACE: process {pid} runs as uid {euid} and wedge as uid {}; \
                 run wedge as root (sudo) or as the same user",
                f.our_euid
            );
        }
        return format!(
            "no CAP_SYS_PTRACE and process {pid} is not dumpable (a setuid/setgid or \
             capability-raising program); run wedge as root"
        );
    }
    format!(
        "the kernel refused to attach to process {pid} although wedge has CAP_SYS_PTRACE: a \
         security module (SELinux, AppArmor) forbids it"
    )
}

/// True when wedge runs in the initial user namespace, whose uid_map is the identity over
/// the whole range.
fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f == ["0", "0", "4294967295"]
    })
}

/// True unless the target's user namespace is provably outside ours. Walks the target's
/// namespace parents (NS_GET_PARENT) looking for our own. When the target's namespace cannot
/// even be opened, only a wedge in the initial namespace is assumed to own it.
fn user_namespace_is_ours_or_below(pid: i32) -> bool {
    let Ok(ours) = std::fs::metadata("/proc/self/ns/user") else {
        return true;
    };
    let Ok(file) = std::fs::File::open(format!("/proc/{pid}/ns/user")) else {
        return in_initial_user_namespace();
    };
    let mut fd: OwnedFd = file.into();
    for _ in 0..33 {
        let Ok(meta) = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
            return true;
        };
        if meta.ino() == ours.ino() && meta.dev() == ours.dev() {
            return true;
        }
        // NS_GET_PARENT = _IO(0xb7, 0x2); fails with EPERM at the edge of what we may see.
        // SAFETY: the ioctl takes no argument and returns a new fd or -1.
        let parent = unsafe { libc::ioctl(fd.as_raw_fd(), 0xb702 as _) };
        if parent < 0 {
            return false;
        }
        // SAFETY: the kernel just returned this fd to us; nobody else owns it.
        fd = unsafe { OwnedFd::from_raw_fd(parent) };
    }
    false
}

fn is_descendant_of_self(pid: i32) -> bool {
    let me = std::process::id() as i32;
    let mut cur = pid;
    for _ in 0..4096 {
        if cur == me {
            return true;
        }
        if cur <= 1 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{cur}/stat")) else {
            return false;
        };
        // ppid is the second field after the parenthesised comm, which may contain spaces.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        match after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            Some(pp) => cur = pp,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AccessFacts {
        AccessFacts {
            target_pid: 77,
            our_euid: 1000,
            target_uids: (0, 0),
            ..Default::default()
        }
    }

    #[test]
    fn names_an_existing_tracer_first() {
        let f = AccessFacts {
            tracer: Some((55, "gdb".into())),
            yama_scope: Some(3),
            ..base()
        };
        let m = explain_refusal(&f);
        assert!(m.contains("already traced by pid 55 (gdb)"), "{m}");
    }

    #[test]
    fn explains_each_yama_scope() {
        for (scope, want) in [
            (3, "ptrace_scope is 3"),
            (2, "ptrace_scope is 2"),
            (1, "ptrace_scope is 1"),
        ] {
            let m = explain_refusal(&AccessFacts {
                yama_scope: Some(scope),
                ..base()
            });
            assert!(m.contains(want), "{scope}: {m}");
        }
        // Scope 1 lets a parent attach to its descendants, so it is not the reason then.
        let m = explain_refusal(&AccessFacts {
            yama_scope: Some(1),
            target_is_descendant: true,
            ..base()
        });
        assert!(m.contains("not root and no CAP_SYS_PTRACE"), "{m}");
    }

    #[test]
    fn explains_user_namespaces_and_privilege() {
        let m = explain_refusal(&AccessFacts {
            foreign_user_namespace: true,
            we_have_cap_sys_ptrace: true,
            ..base()
        });
        assert!(m.contains("user namespace"), "{m}");
        let m = explain_refusal(&base());
        assert!(m.contains("not root") && m.contains("uid 0"), "{m}");
        let m = explain_refusal(&AccessFacts {
            we_have_cap_sys_ptrace: true,
            ..base()
        });
        assert!(m.contains("security module"), "{m}");
    }

    #[test]
    fn gathers_facts_about_ourselves() {
        let me = std::process::id() as i32;
        let f = AccessFacts::gather(me);
        assert!(
            f.target_is_descendant,
            "a process is its own descendant for Yama's purpose"
        );
        assert!(!f.foreign_user_namespace);
        assert_eq!(f.target_uids.1, f.our_euid);
    }
}
