//! `clone-fork-mix`: a process made by a raw clone calls glibc fork(), which waits forever
//! on a glibc lock (stdio list lock, malloc arenas) copied in its locked state — podman
//! #25184, fixed in podman 5.4.0. See SIGNATURES.md in the project's shared notes.

use super::Signature;
use super::versions::{AffectedModule, Version, weaken_if_fixed};

/// podman's affected range: the pause-process code from 1.4.0, fixed in 5.4.0.
const PODMAN: AffectedModule = AffectedModule {
    module: "github.com/containers/podman/",
    name: "podman",
    first: (1, 4, 0),
    fixed: (5, 4, 0),
};
use crate::facts::{Facts, PipeVerdict};
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "clone-fork-mix",
    title: "glibc fork() in a child made by a raw clone waits forever on a copied lock",
    uses: &["futex waits", "native frames", "pipe waits"],
    fixed_in: Some("podman 5.4.0"),
    affected: Some("podman 1.4.0 – 5.3.x (rootless: the pause process)"),
    workaround: Some(
        "run any podman command once first so the pause process exists, or `podman system migrate`; upgrade to podman 5.4.0 or later",
    ),
    references: &[
        "containers/podman#25184",
        "containers/podman#25245",
        "systemd/systemd#28123",
    ],
    probe: Some("clone_fork"),
    specific: true,
    matcher,
};

/// Frames of glibc's fork path that take the locks a raw clone copies.
const LOCKERS: [&str; 2] = ["_IO_list_lock", "__malloc_fork_lock_parent"];
const FORKS: [&str; 4] = ["fork", "__libc_fork", "_Fork", "__fork"];

fn matcher(s: &Snapshot, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in f
        .futex_waits
        .iter()
        .filter(|w| w.private && w.unwakeable() && w.value == Some(2))
    {
        let Some(p) = s.process(w.pid) else { continue };
        let Some(t) = p.thread(w.tid) else { continue };
        let names: Vec<&str> = t
            .frames
            .iter()
            .filter_map(|f| f.function.as_deref())
            .collect();
        let Some(locker) = names.iter().find(|n| LOCKERS.contains(n)) else {
            continue;
        };
        if !names.iter().any(|n| FORKS.contains(n)) {
            continue;
        }
        let mut evidence = vec![Evidence {
            pid: Some(w.pid),
            tid: Some(w.tid),
            mapping: w.mapping.as_ref().map(|m| m.0),
            text: format!(
                "process {} (one thread) waits in fork() → {locker} → __lll_lock_wait_private on futex {:#x} in {} (FUTEX_WAIT_PRIVATE, value 2): the lock was copied held",
                w.pid,
                w.addr,
                w.owner_file.as_deref().unwrap_or("anonymous memory"),
            ),
            ..Default::default()
        }];
        // The parent waiting on a pipe that only this child can write is the rest of the
        // picture (podman's parent reads the child's pipe).
        for pw in f
            .pipe_waits
            .iter()
            .filter(|pw| pw.reading && pw.pid == p.ppid && pw.verdict == PipeVerdict::Peers)
        {
            if pw.other_end.iter().any(|(pid, _)| *pid == w.pid) {
                evidence.push(Evidence {
                    pid: Some(pw.pid),
                    tid: Some(pw.tid),
                    fd: Some(pw.fd),
                    text: format!("its parent {} waits reading fd {} (pipe {}) that the stuck child holds open", pw.pid, pw.fd, pw.inode),
                    ..Default::default()
                });
            }
        }
        // The parent is podman's Go process where this is podman: its buildinfo may say
        // which release it is.
        let version = PODMAN.of_process(s, p.ppid);
        let version_note = if version == Version::Absent {
            String::new()
        } else {
            format!(" {}", PODMAN.sentence(&version))
        };
        out.push(SIGNATURE.finding(weaken_if_fixed(Confidence::Certain, &version), evidence, format!(
                "Process {} was created with a raw clone system call, which runs none of glibc's fork preparation, while another thread of its parent held {}. The child inherited the lock held by a thread that does not exist in it; its glibc fork() now waits for that lock forever. This is the mechanism of podman #25184 (rootless pause-process creation).{version_note}",
                w.pid,
                if *locker == "_IO_list_lock" {
                    "glibc's stdio list lock"
                } else {
                    "a malloc arena lock"
                }
            )));
    }
    out
}
