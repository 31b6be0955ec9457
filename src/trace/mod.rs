//! `wedge trace`: follow a command's (or a running tree's) processes and threads as they are
//! created and exec'd, record a timeline of the facts the known signatures depend on, and
//! run pattern rules over it — so a risky pattern is caught on a run that did not hang.
//!
//! - tracer.rs: the ptrace loop (seccomp stops at exec entry only), building the timeline.
//! - timeline.rs: the serializable record; rules.rs: findings from it; render.rs: the report.

pub mod render;
pub mod rules;
pub mod seccomp;
pub mod timeline;
pub mod tracer;

pub use rules::TraceFinding;
pub use timeline::Timeline;
pub use tracer::{Options, TraceError, Traced, trace_attached, trace_command};

use serde::{Deserialize, Serialize};

/// What `wedge trace --json` prints: the timeline and the findings from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceReport {
    pub schema_version: u32,
    pub timeline: Timeline,
    /// The findings of the rules, then those of the crash capture.
    pub findings: Vec<TraceFinding>,
    /// A fault signal's live capture (as `wedge run` makes it), when one happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<crate::model::Diagnosis>,
}

impl TraceReport {
    pub fn new((timeline, crash): Traced) -> TraceReport {
        let mut findings = rules::run(&timeline);
        if let Some(d) = &crash {
            findings.extend(d.findings.iter().map(|f| TraceFinding {
                risk: false,
                finding: f.clone(),
            }));
        }
        TraceReport {
            schema_version: crate::model::SCHEMA_VERSION,
            timeline,
            findings,
            crash,
        }
    }
}
