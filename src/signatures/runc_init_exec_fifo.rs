//! `runc-init-exec-fifo`: runc init waits on its exec.fifo for `runc start`. Expected right
//! after `runc create`; a hang when the container's state is gone or nobody supervises it.

use super::Signature;
use crate::facts::Facts;
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "runc-init-exec-fifo",
    title: "runc init waits on exec.fifo for `runc start`",
    uses: &["FIFO open waits", "process names and parents"],
    fixed_in: None,
    affected: None,
    workaround: Some(
        "if the container should run: `runc start ID` (or the engine's start); if it should not: `runc delete --force ID`",
    ),
    references: &["opencontainers/runc#2828"],
    probe: None,
    specific: true,
    matcher,
};

fn matcher(s: &Snapshot, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in f
        .fifo_open_waits
        .iter()
        .filter(|w| w.path.ends_with("/exec.fifo"))
    {
        let Some(p) = s.process(w.pid) else { continue };
        if !p.comm.starts_with("runc:[2:INIT]") && !p.cmdline.iter().any(|a| a == "init") {
            continue;
        }
        let id = w
            .path
            .trim_end_matches("/exec.fifo")
            .rsplit('/')
            .next()
            .unwrap_or("?")
            .to_string();
        let (confidence, verdict) = if w.deleted {
            (
                Confidence::Likely,
                format!(
                    "a hang: the exec fifo was deleted, so container {id}'s state is gone and nothing can ever start it"
                ),
            )
        } else if p.ppid <= 1 {
            (
                Confidence::Possible,
                format!(
                    "possibly a hang: container {id} was created and not started, and no shim or conmon is its parent (it was reparented to pid {}): whoever created it may be gone",
                    p.ppid
                ),
            )
        } else {
            (
                Confidence::Possible,
                format!(
                    "expected if container {id} was just created (`runc create`) and its engine has yet to start it; a hang if that start never comes"
                ),
            )
        };
        out.push(Finding {
            id: SIGNATURE.id.into(),
            title: SIGNATURE.title.into(),
            confidence,
            evidence: vec![Evidence {
                pid: Some(w.pid),
                tid: Some(w.tid),
                fd: w.via_fd,
                text: format!(
                    "{} (pid {}) is blocked opening {}{}",
                    p.comm,
                    w.pid,
                    w.path,
                    if w.deleted { " (deleted)" } else { "" }
                ),
                ..Default::default()
            }],
            explanation: format!(
                "runc init has set the container up and waits for `runc start`, which opens the other end of exec.fifo. This is {verdict}."
            ),
            workaround: SIGNATURE.workaround.map(String::from),
            fixed_in: None,
            references: SIGNATURE.references.iter().map(|r| r.to_string()).collect(),
        });
    }
    out
}
