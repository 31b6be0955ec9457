//! `lock-never-released`: a thread sleeps on a private futex and no thread that could
//! release it exists any more — the generic shape of a lock copied into a child by a fork
//! or clone, or left behind by a thread that died.

use super::Signature;
use crate::facts::Facts;
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "lock-never-released",
    title: "A thread waits on a lock that no living thread can release",
    uses: &["futex waits", "the threads of each process"],
    fixed_in: None,
    affected: None,
    workaround: None,
    references: &[],
    probe: None,
    specific: false,
    matcher,
};

fn matcher(_s: &Snapshot, f: &Facts) -> Vec<Finding> {
    f.futex_waits
        .iter()
        .filter(|w| w.private && w.unwakeable() && w.value.is_some_and(|v| v != 0))
        .map(|w| {
            let place = w.owner_file.clone().unwrap_or_else(|| "anonymous memory".into());
            Finding {
                id: SIGNATURE.id.into(),
                title: SIGNATURE.title.into(),
                confidence: Confidence::Likely,
                evidence: vec![Evidence {
                    pid: Some(w.pid),
                    tid: Some(w.tid),
                    mapping: w.mapping.as_ref().map(|m| m.0),
                    text: format!(
                        "thread {} sleeps in {}({:#x}) [{}] in {place}; word = {}; no other thread can wake it",
                        w.tid,
                        w.op_name,
                        w.addr,
                        w.waiting_in.as_deref().unwrap_or("?"),
                        w.value.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                    ),
                    ..Default::default()
                }],
                explanation: match w.mutex_owner {
                    Some(o) if o.alive == Some(w.tid) => format!(
                        "Thread {} of process {} waits for a pthread mutex it already holds itself (owner tid {} in the mutex): it locked a non-recursive mutex twice. Nobody else will unlock it; the wait will never end.",
                        w.tid, w.pid, o.tid
                    ),
                    Some(o) => format!(
                        "Thread {} of process {} waits for a pthread mutex whose owner, tid {} (recorded in the mutex), no longer exists: that thread exited, or was lost in a fork, while holding it. Nobody will unlock it; the wait will never end.",
                        w.tid, w.pid, o.tid
                    ),
                    None => format!(
                        "Thread {} of process {} waits on a private futex that is held (value {}), and it is the only thread left that could touch it: whoever took the lock is gone. The wait will never end.",
                        w.tid,
                        w.pid,
                        w.value.unwrap_or(0)
                    ),
                },
                workaround: Some("kill the process; find out what copied the lock held (a fork or clone while another thread held it) or which thread died holding it".into()),
                fixed_in: None,
                references: Vec::new(),
            }
        })
        .collect()
}
