//! `nil-deref-crash` (generic): a process died of SIGSEGV or SIGBUS at an address in the
//! first page — a read or call through a nil pointer (or a nil interface's method table)
//! plus a small offset. Native programs: the core's fatal signal and its thread; Go
//! programs: the goroutine whose g.sigcode1/g.sigpc the runtime set (a GOTRACEBACK=crash
//! core's siginfo says SIGABRT).

use super::Signature;
use crate::facts::{Facts, crash::signal_name};
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "nil-deref-crash",
    title: "Died of a nil pointer dereference (a fault in the first page)",
    uses: &["fatal signal (core)", "Go faults", "native frames"],
    fixed_in: None,
    affected: None,
    workaround: None,
    references: &[],
    probe: None,
    specific: false,
    matcher,
};

const NULL_PAGE: u64 = 4096;

fn matcher(_s: &Snapshot, f: &Facts) -> Vec<Finding> {
    // One finding per process, on its first fault (a second thread can fault too before
    // the first one's crash ends the process).
    let mut seen: Vec<i32> = Vec::new();
    f.fatal_faults
        .iter()
        .filter(|x| x.addr < NULL_PAGE)
        .filter(|x| {
            let first = !seen.contains(&x.pid);
            seen.push(x.pid);
            first
        })
        .map(|x| {
            let function = x.function.as_deref().unwrap_or("an unnamed function");
            let who = match (x.goroutine, x.tid) {
                (Some(g), Some(t)) => format!("goroutine {g} (thread {t})"),
                (Some(g), None) => format!("goroutine {g}"),
                (None, Some(t)) => format!("thread {t}"),
                (None, None) => "a thread".into(),
            };
            let caller = x
                .frames
                .get(1)
                .map(|c| format!(", called from {c}"))
                .unwrap_or_default();
            Finding {
                id: SIGNATURE.id.into(),
                title: SIGNATURE.title.into(),
                confidence: Confidence::Certain,
                evidence: vec![Evidence {
                    pid: Some(x.pid),
                    tid: x.tid,
                    goroutine: x.goroutine,
                    text: format!(
                        "{who} took {} at addr={:#x}{} in {function}{caller}",
                        signal_name(x.signo),
                        x.addr,
                        x.pc.map(|pc| format!(" pc={pc:#x}")).unwrap_or_default(),
                    ),
                    ..Default::default()
                }],
                explanation: format!(
                    "Process {} died when {who} accessed address {:#x} in {function}: a pointer (or a Go interface's method table) that was nil, plus a small offset. Look at what {function} reads there and who sets it to nil{}.",
                    x.pid,
                    x.addr,
                    if x.goroutine.is_some() {
                        "; in Go, a field set to nil by another goroutine without a lock is a common cause"
                    } else {
                        ""
                    }
                ),
                workaround: None,
                fixed_in: None,
                references: Vec::new(),
            }
        })
        .collect()
}
