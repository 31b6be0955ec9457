//! A process's identity from /proc: stat, status, cmdline, exe, namespaces, cgroup.

use super::{ProcError, read_text};
use crate::model::{Exe, Process};

/// Identity of `pid`; threads, fds and mappings are left empty for the other readers.
pub fn read_process(pid: i32) -> Result<Process, ProcError> {
    let proc = procfs::process::Process::new(pid)
        .map_err(|e| ProcError::from_procfs(pid, &format!("/proc/{pid}"), e))?;
    let stat = proc
        .stat()
        .map_err(|e| ProcError::from_procfs(pid, &format!("/proc/{pid}/stat"), e))?;
    let status = proc
        .status()
        .map_err(|e| ProcError::from_procfs(pid, &format!("/proc/{pid}/status"), e))?;
    let cmdline = proc.cmdline().unwrap_or_default();
    let exe = exe_of(pid);
    let namespaces = proc
        .namespaces()
        .map(|ns| {
            ns.0.iter()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), v.identifier))
                .collect()
        })
        .unwrap_or_default();
    let cgroup = read_text(pid, &format!("/proc/{pid}/cgroup"))
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default();
    Ok(Process {
        pid,
        ppid: stat.ppid,
        nspid: status.nspid.clone().unwrap_or_default(),
        comm: stat.comm.clone(),
        cmdline,
        exe,
        state: stat.state.to_string(),
        uid: [status.ruid, status.euid, status.suid, status.fuid],
        gid: [status.rgid, status.egid, status.sgid, status.fgid],
        namespaces,
        cgroup,
        start_time: stat.starttime,
        tracer_pid: status.tracerpid,
        ..Default::default()
    })
}

/// /proc/PID/exe as the kernel prints it, with what it says about deletion and memfds.
fn exe_of(pid: i32) -> Option<Exe> {
    let link = format!("/proc/{pid}/exe");
    let target = std::fs::read_link(&link).ok()?;
    let mut exe = exe_from_link(&target.to_string_lossy());
    if exe.memfd.is_some() {
        // runc 1.2 runs from a sealed memfd: which seals it set tells its version.
        exe.seals = super::fd::seals_at(&link);
    }
    Some(exe)
}

/// Classifies an exe link target: `/memfd:NAME (deleted)`, `/path (deleted)`, `/path`.
pub fn exe_from_link(path: &str) -> Exe {
    let deleted = path.ends_with(" (deleted)");
    let memfd = path
        .strip_prefix("/memfd:")
        .map(|n| n.strip_suffix(" (deleted)").unwrap_or(n).to_string());
    Exe {
        path: path.to_string(),
        deleted,
        memfd,
        seals: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_exe_links() {
        let e = exe_from_link("/memfd:runc_cloned:/proc/self/exe (deleted)");
        assert!(e.deleted);
        assert_eq!(e.memfd.as_deref(), Some("runc_cloned:/proc/self/exe"));
        let e = exe_from_link("/usr/bin/runc");
        assert!(!e.deleted && e.memfd.is_none());
        assert!(exe_from_link("/tmp/x (deleted)").deleted);
    }

    #[test]
    fn reads_a_real_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Wait for the exec: until then the child still shows the test binary.
        let mut p = read_process(pid).unwrap();
        for _ in 0..200 {
            if p.comm == "sleep" && !p.cmdline.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            p = read_process(pid).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(p.pid, pid);
        assert_eq!(p.ppid, std::process::id() as i32);
        assert_eq!(p.comm, "sleep");
        assert_eq!(p.cmdline, vec!["sleep", "5"]);
        assert!(p.exe.unwrap().path.ends_with("/sleep"));
        assert!(p.namespaces.contains_key("mnt") && p.namespaces.contains_key("pid"));
        assert_eq!(p.nspid.first(), Some(&pid));
        assert!(p.start_time > 0);
        assert!(!p.cgroup.is_empty());
    }
}
