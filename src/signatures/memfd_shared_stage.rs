//! `memfd-shared-stage`: runc 1.2.0 – 1.2.5 runs `runc init` from a memfd sealed with
//! F_SEAL_FUTURE_WRITE; on kernels before 5.5 a private mapping of such a memfd loses
//! copy-on-write across fork, so nsexec's stages share `current_stage` and `syncfd` and the
//! start hangs or fails with EBADF — runc #4640, fixed in runc 1.2.6 (#4641, #4651).

use super::Signature;
use super::versions::{AffectedModule, Version, weaken_if_fixed};

/// runc's affected range: the seal arrived in 1.2.0 and left in 1.2.6.
const RUNC: AffectedModule = AffectedModule {
    module: "github.com/opencontainers/runc",
    name: "runc",
    first: (1, 2, 0),
    fixed: (1, 2, 6),
};
use crate::facts::memory::{F_SEAL_FUTURE_WRITE, seal_names};
use crate::facts::{Facts, SamePair, SocketWait};
use crate::model::{Confidence, Evidence, Finding, Process, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "memfd-shared-stage",
    title: "runc init's stages share their globals: memfd sealed with F_SEAL_FUTURE_WRITE on a kernel without the copy-on-write fix",
    uses: &[
        "memfd executables and seals",
        "private writable memfd mappings",
        "socket waits",
        "kernel release",
        "nsexec stage/pid mismatch (log)",
    ],
    fixed_in: Some("runc 1.2.6"),
    affected: Some(
        "runc 1.2.0 – 1.2.5 on kernels older than 5.5 (and Android vendor kernels without commit 05d351102dbe)",
    ),
    workaround: Some(
        "upgrade runc to 1.2.6 or later (or 1.3.0-rc.1+), or run a kernel with commit 05d351102dbe (5.5 or later)",
    ),
    references: &[
        "opencontainers/runc#4640",
        "opencontainers/runc#4641",
        "opencontainers/runc#4651",
    ],
    probe: Some("memfd_stage"),
    specific: true,
    matcher,
};

/// The stage number of a process named like nsexec's stages: `runc:[0:PARENT]` → 0.
fn stage_of(p: &Process) -> Option<u32> {
    let rest = p.comm.strip_prefix("runc:[")?;
    let (n, _) = rest.split_once(':')?;
    n.parse().ok()
}

/// (major, minor) of a kernel release such as `5.4.0-150-generic`.
pub(crate) fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// A stage process at risk: the process, its stage number and its executable's seals.
type Stage<'a> = (&'a Process, u32, u32);
/// Stages grouped by the memfd (dev, inode) of their data segment.
type Group<'a> = (Option<(String, u64)>, Vec<Stage<'a>>);

fn matcher(s: &Snapshot, f: &Facts) -> Vec<Finding> {
    // The stage processes at risk: a memfd executable sealed F_SEAL_FUTURE_WRITE, named
    // runc:[N:…]. Grouped by the memfd they run (one group per runc start).
    let mut groups: Vec<Group> = Vec::new();
    for e in f.memfd_exes.iter().filter(|e| e.future_write()) {
        let Some(p) = s.process(e.pid) else { continue };
        let Some(stage) = stage_of(p) else { continue };
        let data = f.memfd_private_writes.iter().find(|m| m.pid == p.pid);
        let key = data.map(|m| (m.dev.clone(), m.inode));
        let seals = e.seals.unwrap_or(F_SEAL_FUTURE_WRITE);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((p, stage, seals)),
            None => groups.push((key, vec![(p, stage, seals)])),
        }
    }
    let kernel = s.host.kernel_release.as_str();
    let version = kernel_version(kernel);
    let mut out = from_log(f);
    for (_, stages) in groups {
        let pids: Vec<i32> = stages.iter().map(|(p, _, _)| p.pid).collect();
        let waits: Vec<&SocketWait> = f
            .socket_waits
            .iter()
            .filter(|w| pids.contains(&w.pid) && w.unix != Some(false))
            .collect();
        // The hang: two different stages each blocked receiving on one socketpair.
        let mut hang: Option<(&SocketWait, &SocketWait, SamePair)> = None;
        'pairs: for (i, a) in waits.iter().enumerate() {
            for b in &waits[i + 1..] {
                if a.pid == b.pid {
                    continue;
                }
                let how = a.same_pair(b);
                if how != SamePair::No {
                    hang = Some((a, b, how));
                    break 'pairs;
                }
            }
        }
        let no_mw: Vec<_> = f
            .memfd_private_writes
            .iter()
            .filter(|m| pids.contains(&m.pid) && m.lacks_may_write())
            .collect();

        let mut evidence = Vec::new();
        for (p, stage, seals) in &stages {
            let exe = p.exe.as_ref().map(|e| e.path.as_str()).unwrap_or("?");
            evidence.push(Evidence {
                pid: Some(p.pid),
                text: format!(
                    "{} (pid {}, stage {stage}) runs {exe}, sealed {} ({seals:#x}): F_SEAL_FUTURE_WRITE is what runc 1.2.0 – 1.2.5 set",
                    p.comm,
                    p.pid,
                    seal_names(*seals)
                ),
                ..Default::default()
            });
            if let Some(m) = f.memfd_private_writes.iter().find(|m| m.pid == p.pid) {
                evidence.push(Evidence {
                    pid: Some(p.pid),
                    mapping: Some(m.start),
                    text: format!(
                        "rw-p (private) mapping of the memfd at {:#x}–{:#x} (inode {}): the data segment with nsexec's globals; VmFlags {}",
                        m.start,
                        m.end,
                        m.inode,
                        match m.may_write {
                            Some(true) => "have mw: this kernel keeps copy-on-write here",
                            Some(false) =>
                                "LACK mw: the kernel dropped VM_MAYWRITE, fork shares these pages",
                            None => "unknown (smaps not read)",
                        }
                    ),
                    ..Default::default()
                });
            }
        }
        if let Some((a, b, _)) = hang {
            for w in [a, b] {
                let name = s.process(w.pid).map(|p| p.comm.as_str()).unwrap_or("?");
                evidence.push(Evidence {
                    pid: Some(w.pid),
                    tid: Some(w.tid),
                    fd: Some(w.fd),
                    text: format!(
                        "{name} (pid {}) thread {} waits in {} on fd {} (unix socket {})",
                        w.pid, w.tid, w.syscall, w.fd, w.inode
                    ),
                    ..Default::default()
                });
            }
        }

        let kernel_text = match version {
            Some(v) if v < (5, 1) => format!(
                "kernel {kernel} predates F_SEAL_FUTURE_WRITE (5.1), so the seal cannot have been set here; the capture may come from another machine"
            ),
            Some(v) if v < (5, 5) => format!(
                "kernel {kernel} is older than 5.5: unless it carries commit 05d351102dbe (check with wedge's host copy-on-write check) it has the bug"
            ),
            Some(_) => format!(
                "kernel {kernel} is 5.5 or later and has the copy-on-write fix (05d351102dbe), unless a vendor kernel misreports its version"
            ),
            None if kernel.is_empty() => "the kernel release was not recorded".to_string(),
            None => format!("kernel release {kernel:?} could not be read as a version"),
        };
        let confidence;
        let explanation;
        if let Some((a, b, how)) = hang {
            confidence = Confidence::Certain;
            let pair = match how {
                SamePair::SameSocket => "the same socket".to_string(),
                SamePair::Peers => "the two ends of one socketpair".to_string(),
                _ => format!(
                    "sockets {} and {}: consecutive inodes, as socketpair() makes its two ends (the capture has no peer inodes)",
                    a.inode, b.inode
                ),
            };
            explanation = format!(
                "runc init's stages {} run from a memfd sealed with F_SEAL_FUTURE_WRITE (runc 1.2.0 – 1.2.5) and are stuck: pid {} and pid {} both wait receiving on {pair}, each waiting for the other to speak. This is the hang of runc #4640: the stages' shared globals (current_stage, syncfd) made them disagree about who speaks next. On the affected kernels the private mapping of the memfd loses copy-on-write across fork, so stage-0 and stage-1 see each other's writes. The {kernel_text}.{}",
                pids.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.pid,
                b.pid,
                if !no_mw.is_empty() {
                    " VmFlags confirm it: the writable private memfd mapping lacks mw."
                } else if version.is_some_and(|v| v >= (5, 5)) {
                    " On a kernel with the fix the stages' memory must have been shared some other way (wedge's memfd_stage probe in shared mode emulates the bug so); run the host copy-on-write check to confirm."
                } else {
                    ""
                }
            );
        } else {
            // Without the hang, the seal is only a risk where the kernel can have the bug:
            // runc 1.2.0 – 1.2.5 on a fixed kernel is healthy, and saying otherwise would
            // be a false alarm (exit 1) on every such machine.
            let on_buggy_kernel = version.is_none_or(|v| v < (5, 5));
            if no_mw.is_empty() && !on_buggy_kernel {
                continue;
            }
            confidence = Confidence::Likely;
            explanation = format!(
                "Processes {} are runc init stages running from a memfd sealed with F_SEAL_FUTURE_WRITE, which only runc 1.2.0 – 1.2.5 set. They are not (yet) in the hang of runc #4640 — no two stages wait on one socketpair — but the risk is there: on kernels before 5.5 a private mapping of such a memfd loses copy-on-write across fork, the stages share current_stage and syncfd, and the start hangs or fails with EBADF. The {kernel_text}.{}",
                pids.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if no_mw.is_empty() {
                    ""
                } else {
                    " The writable private memfd mapping lacks mw in VmFlags: this kernel has the bug."
                }
            );
        }
        // runc's own buildinfo, where it records a release (distribution builds do not).
        let version = RUNC.of_process(s, pids[0]);
        let confidence = weaken_if_fixed(confidence, &version);
        let explanation = if version == Version::Absent {
            explanation
        } else {
            format!("{explanation} {}", RUNC.sentence(&version))
        };
        out.push(SIGNATURE.finding(confidence, evidence, explanation));
    }
    out
}

/// From a log: a pid that printed nsexec lines under two stage numbers. Each stage is a
/// process of its own and prints its own `current_stage`; one pid with two numbers means the
/// stages share that global. Likely, not Certain: a log shows no seals and no kernel.
fn from_log(f: &Facts) -> Vec<Finding> {
    f.stage_mismatches
        .iter()
        .map(|m| {
            let show = |l: &crate::model::NsexecLine| Evidence {
                pid: Some(m.pid),
                text: format!(
                    "line {}: nsexec-{}[{}]: {}",
                    l.line, l.stage, l.pid, l.message
                ),
                ..Default::default()
            };
            Finding {
                id: SIGNATURE.id.into(),
                title: SIGNATURE.title.into(),
                confidence: Confidence::Likely,
                evidence: vec![show(&m.first), show(&m.then)],
                explanation: format!(
                    "pid {} printed runc nsexec lines as stage {} (line {}) and then as stage {} (line {}). Every nsexec stage is a process of its own and prefixes its lines with its own current_stage, so one pid with two stage numbers means the stages share that global: runc 1.2.0 – 1.2.5 runs runc init from a memfd sealed with F_SEAL_FUTURE_WRITE, and on kernels before 5.5 (without commit 05d351102dbe) a private mapping of it loses copy-on-write across fork. The stages then share syncfd too, and the start fails with EBADF or hangs (runc #4640). The log shows neither the seals nor the kernel: check runc's version and the kernel of the machine that wrote it.",
                    m.pid, m.first.stage, m.first.line, m.then.stage, m.then.line
                ),
                workaround: SIGNATURE.workaround.map(String::from),
                fixed_in: SIGNATURE.fixed_in.map(String::from),
                references: SIGNATURE.references.iter().map(|r| r.to_string()).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{derive, sample};

    fn findings(s: &Snapshot) -> Vec<Finding> {
        matcher(s, &derive(s))
    }

    #[test]
    fn the_hung_stages_are_certain_with_pids_fds_and_the_data_mapping() {
        let s = sample("memfd_stage_shared");
        let f = findings(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!(f.confidence, Confidence::Certain);
        let stage0 = s
            .processes
            .iter()
            .find(|p| p.comm == "runc:[0:PARENT]")
            .unwrap();
        let stage1 = s
            .processes
            .iter()
            .find(|p| p.comm == "runc:[1:CHILD]")
            .unwrap();
        for p in [stage0, stage1] {
            let fd = p
                .fds
                .iter()
                .find(|d| matches!(d.kind, crate::model::FdKind::Socket { .. }))
                .unwrap();
            assert!(
                f.evidence
                    .iter()
                    .any(|e| e.pid == Some(p.pid) && e.tid == Some(p.pid) && e.fd == Some(fd.fd)),
                "the socket wait of {}: {:#?}",
                p.comm,
                f.evidence
            );
            assert!(
                f.evidence
                    .iter()
                    .any(|e| e.pid == Some(p.pid) && e.mapping.is_some()),
                "the rw-p memfd mapping of {}",
                p.comm
            );
        }
        assert!(f.explanation.contains("6.18"), "{}", f.explanation);
        assert!(f.explanation.contains("consecutive inodes"));
        assert!(
            f.explanation.contains("shared some other way"),
            "a hang on a fixed kernel says so"
        );
        assert_eq!(f.fixed_in.as_deref(), Some("runc 1.2.6"));
    }

    #[test]
    fn the_fixed_seals_give_nothing() {
        assert!(findings(&sample("memfd_stage_fixed_hold")).is_empty());
    }

    #[test]
    fn the_buggy_seal_alone_is_a_risk_that_follows_the_kernel() {
        let s = sample("memfd_stage_buggy_hold");
        assert!(
            findings(&s).is_empty(),
            "6.18 has the fix: runc 1.2.0 – 1.2.5 is healthy here"
        );
        let mut old = s.clone();
        old.host.kernel_release = "4.19.157-perf+".into();
        assert_eq!(findings(&old)[0].confidence, Confidence::Likely);
        let mut no_mw = s.clone();
        for m in no_mw.processes[1].mappings.iter_mut() {
            if m.memfd_name().is_some() && m.is_write() {
                m.vm_flags.retain(|f| f != "mw");
            }
        }
        let f = findings(&no_mw);
        assert_eq!(f[0].confidence, Confidence::Likely);
        assert!(f[0].explanation.contains("lacks mw"));
    }

    #[test]
    fn only_runc_stage_names_count() {
        let mut s = sample("memfd_stage_shared");
        for p in s.processes.iter_mut() {
            p.comm = "memfd_stage".into();
        }
        assert!(findings(&s).is_empty());
    }

    #[test]
    fn stage_waits_on_unrelated_sockets_are_not_the_hang() {
        let mut s = sample("memfd_stage_shared");
        for fd in s.processes[1].fds.iter_mut() {
            if let crate::model::FdKind::Socket { inode, .. } = &mut fd.kind {
                *inode += 100;
            }
        }
        assert!(findings(&s).is_empty(), "no hang, and 6.18 has the fix");
        s.host.kernel_release = "5.4.0-150-generic".into();
        let f = findings(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].confidence, Confidence::Likely, "a risk, not the hang");
    }

    #[test]
    fn parses_stage_names_and_kernel_versions() {
        let p = Process {
            comm: "runc:[2:INIT]".into(),
            ..Default::default()
        };
        assert_eq!(stage_of(&p), Some(2));
        assert_eq!(kernel_version("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(kernel_version("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(kernel_version(""), None);
    }
}
