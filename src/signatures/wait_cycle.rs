//! `wait-cycle`: threads that wait on each other in a circle — across processes through
//! pipes, sockets and child waits, or inside one process through held locks — so none of
//! them can ever go on.

use super::Signature;
use crate::facts::Facts;
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "wait-cycle",
    title: "Threads wait on each other in a circle: a deadlock",
    uses: &[
        "the wait-for graph",
        "pipe and unix-socket waits",
        "futex waits",
        "child waits",
    ],
    fixed_in: None,
    affected: None,
    workaround: None,
    references: &[],
    probe: Some("pipe_waits"),
    specific: false,
    matcher,
};

fn matcher(s: &Snapshot, f: &Facts) -> Vec<Finding> {
    let g = &f.wait_graph;
    let mut out = Vec::new();
    for cycle in g.cycles(s) {
        let mut pids: Vec<i32> = cycle.iter().map(|(p, _)| *p).collect();
        pids.dedup();
        // Inside one process, only circles of held locks (ABBA) are this signature's: a
        // process waiting on a pipe it holds both ends of is orphan-pipe-wait's shape, or a
        // consequence of a stuck process elsewhere that holds the same ends.
        if pids.len() == 1
            && cycle
                .iter()
                .any(|(p, t)| g.wait_of(*p, *t).is_some_and(|w| w.fd.is_some()))
        {
            continue;
        }
        let only_locks = cycle.iter().all(|(p, t)| {
            g.wait_of(*p, *t)
                .is_some_and(|w| w.fd.is_none() && w.what.starts_with("lock"))
        });
        let evidence: Vec<Evidence> = cycle
            .iter()
            .filter_map(|&(p, t)| {
                let w = g.wait_of(p, t)?;
                let name = s
                    .process(p)
                    .and_then(|q| q.thread(t))
                    .map(|th| th.name.as_str())
                    .unwrap_or("?");
                Some(Evidence {
                    pid: Some(p),
                    tid: Some(t),
                    fd: w.fd,
                    text: format!("{p}/{t} ({name}) {}", w.what),
                    ..Default::default()
                })
            })
            .collect();
        let who = if pids.len() > 1 {
            format!(
                "processes {}",
                pids.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("threads of process {}", pids[0])
        };
        out.push(Finding {
            id: SIGNATURE.id.into(),
            title: SIGNATURE.title.into(),
            // Lock wakers are a guess (any other thread could release a lock); pipe,
            // socket and child waits name exactly who could end them.
            confidence: if only_locks { Confidence::Likely } else { Confidence::Certain },
            evidence,
            explanation: format!(
                "The {who} form a circle: each waits for something only another member of the circle can do, and every one of them is waiting. Nothing inside the capture can break it, and nothing outside holds the other ends. Only a signal (a timeout, a kill) ends it."
            ),
            workaround: Some(
                "kill one member of the circle to release the others; in the code, make one side close its ends or write before it reads".into(),
            ),
            fixed_in: None,
            references: Vec::new(),
        });
    }
    out
}
