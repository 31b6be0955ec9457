//! `orphan-pipe-wait`: a thread waits on a pipe or unix socket whose other end only its own
//! process still holds, and no other thread of that process can go on — the generic shape
//! of a write end inherited across fork and never closed, so EOF never comes.

use super::Signature;
use crate::facts::{Facts, PipeVerdict};
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "orphan-pipe-wait",
    title: "A thread waits on a pipe or socket whose other end only its own stuck process holds",
    uses: &["pipe and unix-socket waits", "the wait-for graph"],
    fixed_in: None,
    affected: None,
    workaround: None,
    references: &[],
    probe: Some("pipe_waits"),
    specific: false,
    matcher,
};

fn matcher(s: &Snapshot, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in f.pipe_waits.iter().filter(|w| {
        w.verdict == PipeVerdict::OnlyWaitersProcess && f.wait_graph.stuck.contains(&(w.pid, w.tid))
    }) {
        let Some(p) = s.process(w.pid) else { continue };
        let object = if w.socket { "unix socket" } else { "pipe" };
        let (verb, end) = if w.reading {
            ("reads", "write end")
        } else {
            ("writes to", "read end")
        };
        let others: Vec<String> = w
            .other_end
            .iter()
            .map(|(_, fd)| format!("fd {fd}"))
            .collect();
        let mut evidence = vec![Evidence {
            pid: Some(w.pid),
            tid: Some(w.tid),
            fd: Some(w.fd),
            text: format!(
                "thread {} {verb} {object} {} through fd {}; the only {end} open anywhere in the capture is its own process's {}",
                w.tid,
                w.inode,
                w.fd,
                others.join(", ")
            ),
            ..Default::default()
        }];
        for (_, fd) in &w.other_end {
            evidence.push(Evidence {
                pid: Some(w.pid),
                fd: Some(*fd),
                text: format!("fd {fd} of process {}: the {end} nobody will use", w.pid),
                ..Default::default()
            });
        }
        let lone = p.threads.len() == 1;
        out.push(Finding {
            id: SIGNATURE.id.into(),
            title: SIGNATURE.title.into(),
            confidence: if lone { Confidence::Certain } else { Confidence::Likely },
            evidence,
            explanation: format!(
                "Process {} ({}) {} its own {object}: the {end} it waits for is held only by itself{}. {}",
                w.pid,
                p.comm,
                if w.reading { "waits for data or EOF on" } else { "waits for room in" },
                if lone {
                    ", and it has no other thread"
                } else {
                    ", and none of its other threads can go on"
                },
                if w.reading {
                    "EOF comes only when every write end is closed, so the read never ends. Usually the write end was inherited across fork (or opened without O_CLOEXEC) and never closed after the writer exited."
                } else {
                    "Nobody will ever read, so the write never ends."
                }
            ),
            workaround: Some(format!(
                "kill process {}; in its code, close the {end} (fd {}) in the process that waits, right after fork, or open it with O_CLOEXEC",
                w.pid,
                w.other_end.first().map(|(_, fd)| *fd).unwrap_or(-1)
            )),
            fixed_in: None,
            references: Vec::new(),
        });
    }
    out
}
