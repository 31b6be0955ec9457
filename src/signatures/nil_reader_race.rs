//! `nil-reader-race`: BuildKit's S3 cache `readerAtCloser` read by several goroutines at
//! once without a lock (the AWS SDK's multipart uploader reads one SectionReader per part
//! concurrently); one closes and clears `rc` between another's nil check and its call, which
//! faults at addr=0x20 — moby/buildkit #6674, fixed in v0.30.0 (#6675). Live, before the
//! crash: two or more goroutines inside `(*readerAtCloser).ReadAt` past any lock, on the same
//! receiver. After it: the faulting goroutine's frames. See SIGNATURES.md in the project's
//! shared notes.

use super::Signature;
use super::versions::{AffectedModule, Version, weaken_if_fixed};
use crate::facts::{Facts, SameFunction, crash::signal_name};
use crate::model::{Confidence, Evidence, Finding, Snapshot};

pub const SIGNATURE: Signature = Signature {
    id: "nil-reader-race",
    title: "BuildKit's S3 cache reader is read concurrently without a lock: a call through a nil io.ReadCloser",
    uses: &[
        "goroutines inside the same function",
        "receiver spill slots",
        "Go faults",
        "Go buildinfo",
        "race detector reports (log)",
    ],
    fixed_in: Some("buildkit v0.30.0"),
    affected: Some("buildkit v0.14.0 – v0.29.x"),
    workaround: Some(
        "use separate buckets (or prefixes that never mix cache import and export), or export the cache with ignore-error=true; upgrade to buildkit v0.30.0 or later",
    ),
    references: &[
        "moby/buildkit#6674",
        "moby/buildkit#6675",
        "moby/buildkit#5584",
        "moby/buildkit#5597",
    ],
    probe: Some("reader_race"),
    specific: true,
    matcher,
};

/// The method, in any package (buildkit's is `…/cache/remotecache/s3.(*readerAtCloser)`).
const METHOD: &str = ".(*readerAtCloser).ReadAt";
const SECTION_READ: &str = "io.(*SectionReader).Read";
/// Faults below this address are a nil pointer (or nil method table) plus an offset.
const NULL_PAGE: u64 = 4096;
const BUILDKIT: &str = "github.com/moby/buildkit";

fn matcher(s: &Snapshot, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut crashed: Vec<i32> = Vec::new();
    for fault in f.fatal_faults.iter().filter(|x| {
        x.goroutine.is_some()
            && x.addr < NULL_PAGE
            && x.function.as_deref().is_some_and(|n| n.ends_with(METHOD))
    }) {
        // Two workers can both reach the nil call before the first one's panic kills the
        // process: one finding per process, on the first fault.
        if crashed.contains(&fault.pid) {
            continue;
        }
        let through_section = fault.frames.get(1).map(String::as_str) == Some(SECTION_READ);
        let version = buildkit(s, fault.pid);
        crashed.push(fault.pid);
        let function = fault.function.as_deref().unwrap_or_default();
        out.push(finding(
            if through_section {
                Confidence::Certain
            } else {
                Confidence::Likely
            },
            vec![Evidence {
                pid: Some(fault.pid),
                tid: fault.tid,
                goroutine: fault.goroutine,
                text: format!(
                    "goroutine {} (thread {}) faulted: {} at addr={:#x} pc={} in {function}{}",
                    fault.goroutine.unwrap_or_default(),
                    fault.tid.map_or("?".into(), |t| t.to_string()),
                    signal_name(fault.signo),
                    fault.addr,
                    fault.pc.map_or("?".into(), |pc| format!("{pc:#x}")),
                    if through_section {
                        format!(" called from {SECTION_READ}")
                    } else {
                        String::new()
                    },
                ),
                ..Default::default()
            }],
            format!(
                "Process {} died of a nil pointer dereference (address {:#x}) inside {function}: a call through an io.ReadCloser that another goroutine had just closed and set to nil. ReadAt keeps its stream, offset and closed flag without a lock, and the multipart uploader reads the same reader through one SectionReader per part from several goroutines; when their offsets differ one reopens the stream between another's nil check and its Read call. This is BuildKit #6674 (exporting cache to S3). {}",
                fault.pid,
                fault.addr,
                BUILDKIT_RANGE.sentence(&version)
            ),
        ));
    }
    for grp in f
        .same_function
        .iter()
        .filter(|g| g.function.ends_with(METHOD) && !crashed.contains(&g.pid))
    {
        let past = grp.past_lock();
        if past.len() < 2 {
            continue;
        }
        let receiver = SameFunction::shared_receiver(&past);
        let version = buildkit(s, grp.pid);
        let mut confidence = if receiver.is_some() {
            Confidence::Certain
        } else {
            Confidence::Likely
        };
        // A BuildKit with the fix: the same shape has some other cause.
        confidence = weaken_if_fixed(confidence, &version);
        let evidence = past
            .iter()
            .map(|g| Evidence {
                pid: Some(grp.pid),
                tid: g.thread,
                goroutine: Some(g.goroutine),
                text: format!(
                    "goroutine {} [{}]{} is inside {}{}",
                    g.goroutine,
                    g.wait_reason.as_deref().unwrap_or(&g.status),
                    g.thread
                        .map(|t| format!(" on thread {t}"))
                        .unwrap_or_default(),
                    grp.function,
                    g.receiver
                        .map(|r| format!(" (receiver word {r:#x})"))
                        .unwrap_or_default(),
                ),
                ..Default::default()
            })
            .collect();
        let ids: Vec<String> = past.iter().map(|g| g.goroutine.to_string()).collect();
        let waiting = grp.goroutines.len() - past.len();
        out.push(finding(
            confidence,
            evidence,
            format!(
                "{} goroutines of process {} ({}) are inside {} at once{}{}. That method keeps its stream, offset and closed flag without a lock: when their offsets differ, one closes the stream and sets it to nil while another is between its nil check and its Read call, and the process dies of a nil pointer dereference (addr=0x20). This is BuildKit #6674 (exporting cache to S3), before the crash. {}",
                past.len(),
                grp.pid,
                ids.join(", "),
                grp.function,
                match receiver {
                    Some(r) => format!(" on the same receiver {r:#x}"),
                    None => " (their receivers could not be compared)".into(),
                },
                if waiting > 0 {
                    format!(" ({waiting} more wait for a lock inside it)")
                } else {
                    String::new()
                },
                BUILDKIT_RANGE.sentence(&version)
            ),
        ));
    }
    out.extend(from_races(s, &crashed));
    out
}

/// A race detector report (`WARNING: DATA RACE`, from a log) whose accesses are inside the
/// method: the race itself, seen before it faults. Likely: the detector proves the
/// unsynchronised access, not that it will crash.
fn from_races(s: &Snapshot, crashed: &[i32]) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in s.processes.iter().filter(|p| !crashed.contains(&p.pid)) {
        let Some(go) = &p.go else { continue };
        let mut evidence = Vec::new();
        for st in go.races.iter().flat_map(|r| r.stacks.iter()) {
            let top = st.frames.first().and_then(|f| f.function.as_deref());
            if st.kind != "created" && top.is_some_and(|n| n.ends_with(METHOD)) {
                evidence.push(Evidence {
                    pid: Some(p.pid),
                    goroutine: st.goroutine,
                    text: format!(
                        "race detector: {} in {}{}",
                        st.heading,
                        top.unwrap_or_default(),
                        st.frames
                            .get(1)
                            .and_then(|f| f.function.as_deref())
                            .map(|c| format!(", called from {c}"))
                            .unwrap_or_default()
                    ),
                    ..Default::default()
                });
            }
        }
        if evidence.is_empty() {
            continue;
        }
        let version = buildkit(s, p.pid);
        out.push(finding(
            Confidence::Likely,
            evidence,
            format!(
                "The race detector saw goroutines of process {} read and write the fields of {} without synchronisation. That method keeps its stream, offset and closed flag without a lock; when two readers' offsets differ, one closes the stream and sets it to nil between another's nil check and its Read call, and the process dies of a nil pointer dereference (addr=0x20). This is BuildKit #6674 (exporting cache to S3), caught before the crash. {}",
                p.pid,
                METHOD.trim_start_matches('.'),
                BUILDKIT_RANGE.sentence(&version)
            ),
        ));
    }
    out
}

fn finding(confidence: Confidence, evidence: Vec<Evidence>, explanation: String) -> Finding {
    SIGNATURE.finding(confidence, evidence, explanation)
}

/// BuildKit's affected range for this bug.
const BUILDKIT_RANGE: AffectedModule = AffectedModule {
    module: BUILDKIT,
    name: "buildkitd",
    first: (0, 14, 0),
    fixed: (0, 30, 0),
};

fn buildkit(s: &Snapshot, pid: i32) -> Version {
    BUILDKIT_RANGE.of_process(s, pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{derive, sample};
    use crate::model::GoModule;

    #[test]
    fn live_workers_on_one_receiver_are_certain() {
        let s = sample("reader_race_hold");
        let found = matcher(&s, &derive(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.confidence, Confidence::Certain);
        assert_eq!(f.evidence.len(), 5);
        assert!(f.evidence.iter().all(|e| e.goroutine.is_some()));
        assert!(
            f.explanation.contains("same receiver 0xc000064050"),
            "{}",
            f.explanation
        );
        assert!(f.explanation.contains("names no github.com/moby/buildkit"));
    }

    #[test]
    fn buildkit_versions_change_the_verdict() {
        let mut s = sample("reader_race_hold");
        let set = |s: &mut Snapshot, v: &str| {
            s.processes[0].go.as_mut().unwrap().dependencies = vec![GoModule {
                path: BUILDKIT.into(),
                version: v.into(),
                ..Default::default()
            }];
        };
        set(&mut s, "v0.25.1");
        let f = matcher(&s, &derive(&s));
        assert_eq!(f[0].confidence, Confidence::Certain);
        assert!(f[0].explanation.contains("v0.25.1: in the affected range"));
        set(&mut s, "v0.30.1");
        let f = matcher(&s, &derive(&s));
        assert_eq!(f[0].confidence, Confidence::Likely, "fixed release");
        assert!(f[0].explanation.contains("has the fix"));
    }

    #[test]
    fn workers_waiting_for_the_mutex_are_no_race() {
        let s = sample("reader_race_fixed_hold");
        assert!(matcher(&s, &derive(&s)).is_empty());
    }

    #[test]
    fn without_receivers_only_likely() {
        let mut s = sample("reader_race_hold");
        for g in s.processes[0].go.as_mut().unwrap().goroutines.iter_mut() {
            for fr in g.frames.iter_mut() {
                fr.arg0_slot = None;
            }
        }
        let f = matcher(&s, &derive(&s));
        assert_eq!(f[0].confidence, Confidence::Likely);
    }

    #[test]
    fn a_crash_in_read_at_is_certain_only_through_a_section_reader() {
        let mut s = sample("reader_race_hold");
        let go = s.processes[0].go.as_mut().unwrap();
        let g = go.goroutines.iter_mut().find(|g| g.id == 6).unwrap();
        let at = g
            .frames
            .iter()
            .position(|f| f.function.as_deref().is_some_and(|n| n.ends_with(METHOD)))
            .unwrap();
        g.frames[at - 1].function = Some("runtime.sigpanic".into());
        g.frames[0].function = Some("runtime.fatalpanic".into());
        g.fault = Some(crate::model::GoFault {
            signo: 11,
            addr: 0x20,
            pc: 0x1,
        });
        let f = matcher(&s, &derive(&s));
        assert_eq!(
            f.len(),
            1,
            "the crash only, not also the live shape: {f:#?}"
        );
        assert_eq!(f[0].confidence, Confidence::Certain);
        assert_eq!(f[0].evidence[0].goroutine, Some(6));
        // Called from something else than io.(*SectionReader).Read: Likely.
        let go = s.processes[0].go.as_mut().unwrap();
        let g = go.goroutines.iter_mut().find(|g| g.id == 6).unwrap();
        g.frames[at + 1].function = Some("main.other".into());
        let f = matcher(&s, &derive(&s));
        assert_eq!(f[0].confidence, Confidence::Likely);
        // A fault above the first page is no nil dereference.
        let go = s.processes[0].go.as_mut().unwrap();
        let g = go.goroutines.iter_mut().find(|g| g.id == 6).unwrap();
        g.fault.as_mut().unwrap().addr = 0xc000010000;
        let f = matcher(&s, &derive(&s));
        assert!(f.iter().all(|f| !f.explanation.contains("died")), "{f:#?}");
    }
}
