//! runc nsexec stage/pid mismatches in a log: one pid printing lines as two different stages.
//! Each nsexec stage is its own process and prints its own `current_stage`, so a pid that
//! says `nsexec-0[P]` and then `nsexec-1[P]` is a stage-0 process reading stage-1's number:
//! the stages share their globals (runc #4640, memfd-shared-stage).

use crate::model::{NsexecLine, Snapshot};

/// Lines further apart than this belong to different runc starts (pids are reused).
pub const WINDOW_LINES: u64 = 2_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMismatch {
    pub pid: i32,
    /// The pid's first line, with its first stage.
    pub first: NsexecLine,
    /// A later line of the same pid with another stage number.
    pub then: NsexecLine,
}

pub fn stage_mismatches(s: &Snapshot) -> Vec<StageMismatch> {
    let mut out: Vec<StageMismatch> = Vec::new();
    for (j, later) in s.nsexec.iter().enumerate() {
        // pid 1 is stage-2 inside a new pid namespace in every container: never evidence.
        if later.pid <= 1 || out.iter().any(|m| m.then == *later) {
            continue;
        }
        let Some(first) = s.nsexec[..j].iter().find(|e| {
            e.pid == later.pid
                && e.stage != later.stage
                && later.line.saturating_sub(e.line) <= WINDOW_LINES
        }) else {
            continue;
        };
        if out.iter().any(|m| m.pid == later.pid && m.first == *first) {
            continue;
        }
        out.push(StageMismatch {
            pid: later.pid,
            first: first.clone(),
            then: later.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Host, Source};

    fn line(line: u64, stage: u32, pid: i32) -> NsexecLine {
        NsexecLine {
            line,
            stage,
            pid,
            message: String::new(),
        }
    }

    #[test]
    fn one_pid_two_stages_within_a_start() {
        let mut s = Snapshot::new(Source::Log { path: "x".into() }, Host::default());
        s.nsexec = vec![
            line(1, 0, 100),
            line(2, 1, 101),
            line(3, 2, 1),
            line(4, 1, 100),
        ];
        let m = stage_mismatches(&s);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].pid, m[0].first.line, m[0].then.line), (100, 1, 4));
        // A healthy start: every pid keeps its stage.
        s.nsexec = vec![line(1, 0, 100), line(2, 1, 101), line(3, 2, 1)];
        assert!(stage_mismatches(&s).is_empty());
        // A reused pid, much later: another start.
        s.nsexec = vec![line(1, 0, 100), line(1 + WINDOW_LINES + 1, 1, 100)];
        assert!(stage_mismatches(&s).is_empty());
        // pid 1 in two containers' pid namespaces.
        s.nsexec = vec![line(1, 2, 1), line(5, 0, 1)];
        assert!(stage_mismatches(&s).is_empty());
    }
}
