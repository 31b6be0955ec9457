//! The signature catalog: known bugs and generic shapes of hang, each a pure function from
//! a Snapshot's facts to findings. Signatures know bugs and nothing of ptrace or /proc.

mod clone_fork_mix;
mod lock_never_released;
pub(crate) mod memfd_shared_stage;
mod nil_deref_crash;
mod nil_reader_race;
mod orphan_pipe_wait;
mod runc_init_exec_fifo;
mod versions;
mod wait_cycle;

use crate::facts::{self, Facts};
use crate::model::{Finding, Snapshot};

/// One entry of the catalog.
pub struct Signature {
    pub id: &'static str,
    pub title: &'static str,
    /// The facts it is built on (for `wedge signatures` and docs/signatures.md).
    pub uses: &'static [&'static str],
    pub fixed_in: Option<&'static str>,
    pub affected: Option<&'static str>,
    pub workaround: Option<&'static str>,
    pub references: &'static [&'static str],
    /// The probe in probes/ that reproduces it, where one exists.
    pub probe: Option<&'static str>,
    /// A known bug (true) or a generic shape (false): generic signatures do not repeat
    /// what a known bug already explained.
    pub specific: bool,
    pub matcher: fn(&Snapshot, &Facts) -> Vec<Finding>,
}

impl Signature {
    /// A finding of this signature: its id, title, workaround, fixed version and references,
    /// with what the match found.
    pub fn finding(
        &self,
        confidence: crate::model::Confidence,
        evidence: Vec<crate::model::Evidence>,
        explanation: String,
    ) -> Finding {
        Finding {
            id: self.id.into(),
            title: self.title.into(),
            confidence,
            evidence,
            explanation,
            workaround: self.workaround.map(String::from),
            fixed_in: self.fixed_in.map(String::from),
            references: self.references.iter().map(|r| r.to_string()).collect(),
        }
    }
}

/// Every signature, known bugs first.
pub fn catalog() -> &'static [Signature] {
    &[
        clone_fork_mix::SIGNATURE,
        memfd_shared_stage::SIGNATURE,
        runc_init_exec_fifo::SIGNATURE,
        nil_reader_race::SIGNATURE,
        lock_never_released::SIGNATURE,
        orphan_pipe_wait::SIGNATURE,
        wait_cycle::SIGNATURE,
        nil_deref_crash::SIGNATURE,
    ]
}

/// Runs the catalog over a snapshot.
pub fn run(s: &Snapshot) -> Vec<Finding> {
    let facts = facts::derive(s);
    let mut findings: Vec<Finding> = Vec::new();
    for sig in catalog().iter().filter(|s| s.specific) {
        findings.extend((sig.matcher)(s, &facts));
    }
    // What a known bug explained: threads (pid, tid) and goroutines (pid, goroutine id).
    let explained: Vec<(Option<i32>, Option<i32>)> = findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(|e| (e.pid, e.tid)))
        .filter(|(_, t)| t.is_some())
        .collect();
    let explained_goroutines: Vec<(Option<i32>, i64)> = findings
        .iter()
        .flat_map(|f| f.evidence.iter())
        .filter_map(|e| e.goroutine.map(|g| (e.pid, g)))
        .collect();
    for sig in catalog().iter().filter(|s| !s.specific) {
        for f in (sig.matcher)(s, &facts) {
            let dup = f.evidence.iter().any(|e| {
                (e.tid.is_some() && explained.contains(&(e.pid, e.tid)))
                    || e.goroutine
                        .is_some_and(|g| explained_goroutines.contains(&(e.pid, g)))
            });
            if !dup {
                findings.push(f);
            }
        }
    }
    findings
}

/// docs/signatures.md, generated from the catalog (a test keeps the file current).
pub fn catalog_markdown() -> String {
    let mut out = String::from(
        "# Signature catalog\n\nGenerated from the code by `wedge signatures --markdown`; a test keeps this file current.\n",
    );
    for s in catalog() {
        out.push_str(&format!("\n## `{}` — {}\n\n", s.id, s.title));
        out.push_str(&format!(
            "- kind: {}\n",
            if s.specific {
                "known bug"
            } else {
                "generic shape"
            }
        ));
        out.push_str(&format!("- built on: {}\n", s.uses.join(", ")));
        if let Some(a) = s.affected {
            out.push_str(&format!("- affected: {a}\n"));
        }
        if let Some(v) = s.fixed_in {
            out.push_str(&format!("- fixed in: {v}\n"));
        }
        if let Some(w) = s.workaround {
            out.push_str(&format!("- workaround: {w}\n"));
        }
        if !s.references.is_empty() {
            out.push_str(&format!("- references: {}\n", s.references.join(", ")));
        }
        if let Some(p) = s.probe {
            out.push_str(&format!("- probe: `{p}`\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_signatures_md_is_current() {
        let path = format!("{}/docs/signatures.md", env!("CARGO_MANIFEST_DIR"));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            on_disk.trim_end(),
            catalog_markdown().trim_end(),
            "regenerate: wedge signatures --markdown > docs/signatures.md"
        );
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<&str> = catalog().iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), catalog().len());
    }

    #[test]
    fn no_findings_where_a_lock_holder_lives() {
        assert!(run(&facts::sample("blocked_threads")).is_empty());
    }

    #[test]
    fn clone_fork_mix_on_a_recorded_capture_of_the_probe() {
        let s = facts::sample("clone_fork_buggy");
        let findings = run(&s);
        assert_eq!(
            findings.len(),
            1,
            "the generic lock finding is not repeated: {findings:#?}"
        );
        let f = &findings[0];
        assert_eq!(f.id, "clone-fork-mix");
        assert_eq!(f.confidence, crate::model::Confidence::Certain);
        let root = s.processes.iter().find(|p| p.threads.len() > 1).unwrap();
        let child = s.processes.iter().find(|p| p.ppid == root.pid).unwrap();
        assert_eq!(
            f.evidence[0].tid,
            Some(child.pid),
            "the stuck child's thread"
        );
        assert_eq!(
            f.evidence[1].pid,
            Some(root.pid),
            "the parent waiting on the child's pipe"
        );
        assert_eq!(f.fixed_in.as_deref(), Some("podman 5.4.0"));
    }

    #[test]
    fn runc_init_verdicts_follow_its_state() {
        let explain = |s: &Snapshot| -> String {
            let f = run(s);
            assert_eq!(f.len(), 1, "{f:#?}");
            assert_eq!(f[0].id, "runc-init-exec-fifo");
            f[0].explanation.clone()
        };
        let s = facts::sample("runc_init_created");
        assert!(
            explain(&s).contains("no shim or conmon"),
            "reparented to pid 1"
        );
        let mut supervised = s.clone();
        supervised.processes[0].ppid = 4242;
        assert!(explain(&supervised).contains("expected if container wsample was just created"));
        let mut deleted = s.clone();
        for fd in deleted.processes[0].fds.iter_mut() {
            if let crate::model::FdKind::Fifo { path } = &mut fd.kind {
                path.push_str(" (deleted)");
            }
        }
        assert!(explain(&deleted).contains("the exec fifo was deleted"));
    }

    #[test]
    fn without_the_fork_frames_only_the_generic_shape_remains() {
        let mut s = facts::sample("clone_fork_buggy");
        for p in s.processes.iter_mut() {
            for t in p.threads.iter_mut() {
                t.frames.retain(|f| f.function.as_deref() != Some("fork"));
            }
        }
        let ids: Vec<String> = run(&s).into_iter().map(|f| f.id).collect();
        assert_eq!(ids, vec!["lock-never-released"]);
    }

    #[test]
    fn orphan_pipe_wait_on_a_recorded_capture() {
        let s = facts::sample("pipe_waits_orphan");
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "orphan-pipe-wait");
        assert_eq!(f[0].confidence, crate::model::Confidence::Certain);
        assert_eq!(
            f[0].evidence
                .iter()
                .filter_map(|e| e.fd)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        // With the write end closed, the read would end at EOF: nothing to report.
        let mut closed = s.clone();
        closed.processes[0].fds.retain(|f| f.fd != 4);
        assert!(run(&closed).is_empty());
    }

    #[test]
    fn wait_cycle_on_a_recorded_socketpair_and_not_without_the_peer() {
        let s = facts::sample("pipe_waits_cycle_sock");
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "wait-cycle");
        assert_eq!(f[0].evidence.len(), 2);
        assert!(f[0].evidence[0].text.contains("unix socket"));
        // A third process sleeping with a copy of the parent's end could still write to the
        // child: the circle is open.
        let mut open = s.clone();
        let mut helper = open.processes[0].clone();
        helper.pid = 999_999;
        helper.ppid = open.processes[0].pid;
        for t in helper.threads.iter_mut() {
            t.tid = 999_999;
            t.syscall = None;
        }
        open.processes.push(helper);
        assert!(run(&open).is_empty(), "{:#?}", run(&open));
    }

    /// The reader_race hold capture, turned into a crash of goroutine 6 in ReadAt: its
    /// fault recorded, sigpanic inside ReadAt, dying in the runtime's fatal panic. No thread
    /// (tid) names it, so only the goroutine id can de-duplicate.
    fn go_crash_sample() -> (Snapshot, i64) {
        let mut s = facts::sample("reader_race_hold");
        let go = s.processes[0].go.as_mut().unwrap();
        let g = go.goroutines.iter_mut().find(|g| g.id == 6).unwrap();
        let at = g
            .frames
            .iter()
            .position(|f| f.function.as_deref() == Some("main.(*readerAtCloser).ReadAt"))
            .unwrap();
        g.frames[at - 1].function = Some("runtime.sigpanic".into());
        g.frames[0].function = Some("runtime.fatalpanic".into());
        g.fault = Some(crate::model::GoFault {
            signo: 11,
            addr: 0x20,
            pc: g.frames[at].pc,
        });
        assert!(g.thread.is_none());
        (s, 6)
    }

    #[test]
    fn a_go_crash_in_read_at_is_the_known_bug_and_not_also_the_generic_one() {
        let (s, id) = go_crash_sample();
        let findings = run(&s);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.id, "nil-reader-race");
        assert_eq!(f.confidence, crate::model::Confidence::Certain);
        assert_eq!(f.evidence[0].goroutine, Some(id));
        assert!(f.evidence[0].text.contains("addr=0x20"), "{f:#?}");
    }

    #[test]
    fn a_go_crash_elsewhere_is_a_nil_deref_crash() {
        let (mut s, id) = go_crash_sample();
        let go = s.processes[0].go.as_mut().unwrap();
        for g in go.goroutines.iter_mut() {
            for f in g.frames.iter_mut() {
                if f.function.as_deref() == Some("main.(*readerAtCloser).ReadAt") {
                    f.function = Some("main.(*other).Read".into());
                }
            }
        }
        let findings = run(&s);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].id, "nil-deref-crash");
        assert_eq!(findings[0].evidence[0].goroutine, Some(id));
        assert!(
            findings[0].explanation.contains("main.(*other).Read"),
            "{}",
            findings[0].explanation
        );
    }

    #[test]
    fn buildinfo_versions_place_known_bugs_in_their_range() {
        let module = |path: &str, version: &str| crate::model::GoModule {
            path: path.into(),
            version: version.into(),
            ..Default::default()
        };
        // clone-fork-mix: the parent's buildinfo says which podman it is.
        let mut s = facts::sample("clone_fork_buggy");
        let root = s
            .processes
            .iter()
            .position(|p| p.threads.len() > 1)
            .unwrap();
        s.processes[root].go = Some(crate::model::GoProcess {
            main_module: Some(module("github.com/containers/podman/v5", "v5.4.1")),
            ..Default::default()
        });
        let f = &run(&s)[0];
        assert_eq!(f.id, "clone-fork-mix");
        assert_eq!(
            f.confidence,
            crate::model::Confidence::Likely,
            "5.4.1 has the fix"
        );
        assert!(
            f.explanation.contains("v5.4.1, which has the fix"),
            "{}",
            f.explanation
        );
        s.processes[root].go.as_mut().unwrap().main_module =
            Some(module("github.com/containers/podman/v4", "v4.9.3"));
        let f = &run(&s)[0];
        assert_eq!(f.confidence, crate::model::Confidence::Certain);
        assert!(
            f.explanation.contains("in the affected range"),
            "{}",
            f.explanation
        );

        // memfd-shared-stage: runc's own buildinfo.
        let mut s = facts::sample("memfd_stage_shared");
        for p in s.processes.iter_mut() {
            p.go = Some(crate::model::GoProcess {
                main_module: Some(module("github.com/opencontainers/runc", "v1.2.4")),
                ..Default::default()
            });
        }
        let f = run(&s);
        let f = f.iter().find(|f| f.id == "memfd-shared-stage").unwrap();
        assert!(
            f.explanation.contains("v1.2.4: in the affected range"),
            "{}",
            f.explanation
        );
    }
}
