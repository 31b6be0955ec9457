//! `wedge triage`: turns a CI job's artifacts (logs, cores, JUnit XML, support bundles)
//! into a short list of failures, each with a stable fingerprint, named as a known bug, a
//! generic shape of the catalog, or an unknown failure.
//!
//! [`scan`] walks the inputs, sniffs each file's kind from its bytes and runs the analyzer
//! of that kind (the same log and core readers as `wedge log` and `wedge core`);
//! [`fingerprint`] makes the grouping key; [`db`] keeps history across runs; [`format`]
//! prints the result (table, JSON, Markdown, JUnit, GitHub Actions annotations).

pub mod db;
pub mod fingerprint;
pub mod format;
pub mod junit;
pub mod scan;

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a failure is: a known bug (a specific signature of the catalog), a generic shape the
/// catalog recognizes (a nil dereference crash, a lock never released), or a failure no
/// signature explains (a panic, fatal error, fatal signal or data race).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    KnownBug,
    Generic,
    Unknown,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::KnownBug => "known bug",
            Status::Generic => "generic",
            Status::Unknown => "unknown",
        }
    }
}

/// One failure found in one artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub fingerprint: String,
    pub status: Status,
    /// The signature id; None for an unknown failure.
    pub signature: Option<String>,
    pub title: String,
    pub fixed_in: Option<String>,
    /// The normalized top frames the fingerprint was made of.
    pub frames: Vec<String>,
    /// One line of detail from this occurrence (the finding's first evidence, the panic
    /// message as printed).
    pub detail: String,
    /// The artifact's path as given (lossy UTF-8).
    pub artifact: String,
    /// For JUnit XML: `classname.name` of the test case whose failure text showed it.
    pub test: Option<String>,
    /// 1-based line in the artifact, where known.
    pub line: Option<u64>,
}

/// Cross-run history of a fingerprint (with `--db`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct History {
    /// RFC 3339 UTC.
    pub first_seen: String,
    pub last_seen: String,
    /// Occurrences summed over every recorded run, this one included.
    pub total_count: u64,
    /// Runs that saw it, this one included.
    pub runs: u64,
}

/// Every failure of one fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub fingerprint: String,
    pub status: Status,
    pub signature: Option<String>,
    pub title: String,
    pub fixed_in: Option<String>,
    pub frames: Vec<String>,
    /// Occurrences in this run.
    pub count: u64,
    /// The detail of the first occurrence.
    pub detail: String,
    /// Artifacts it was seen in (each once, in scan order).
    pub artifacts: Vec<String>,
    /// JUnit test cases it was seen in.
    pub tests: Vec<String>,
    /// Line of the first occurrence in the first artifact, where known.
    pub line: Option<u64>,
    pub history: Option<History>,
}

/// A file that could not be read or analyzed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// Files seen, by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub logs: u64,
    pub cores: u64,
    pub junit: u64,
    pub bundles: u64,
    /// Binary files that are not cores, and archives that are not bundles: skipped.
    pub skipped_binary: u64,
    /// FIFOs, sockets, devices: never opened.
    pub skipped_special: u64,
}

/// The outcome of a triage.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Most important first: known bugs, generic, unknown; then by count.
    pub groups: Vec<Group>,
    pub files: Counts,
    /// Files that could not be opened or listed (skipped with a warning).
    pub unreadable: Vec<Problem>,
    /// Files of a known kind whose content could not be analyzed (a truncated core, a
    /// damaged archive).
    pub errors: Vec<Problem>,
    pub elapsed_ms: u64,
}

/// What a triage concludes, most important first (the exit status follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At least one known bug, whatever else was found.
    KnownBug,
    /// Generic or unknown failures, no known bug.
    Failures,
    /// Nothing found, but some artifacts could not be analyzed.
    Incomplete,
    /// Nothing found in artifacts that were all analyzed.
    Clean,
}

impl Report {
    pub fn has(&self, status: Status) -> bool {
        self.groups.iter().any(|g| g.status == status)
    }

    pub fn verdict(&self) -> Verdict {
        if self.has(Status::KnownBug) {
            Verdict::KnownBug
        } else if !self.groups.is_empty() {
            Verdict::Failures
        } else if !self.errors.is_empty() {
            Verdict::Incomplete
        } else {
            Verdict::Clean
        }
    }
}

/// What the command line chose.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where cores' binaries and libraries are looked up.
    pub sysroot: Option<PathBuf>,
    /// Show progress on stderr (a terminal, a long scan).
    pub progress: bool,
    /// Set on SIGINT/SIGTERM: no new file is started, the run ends with
    /// [`TriageError::Interrupted`].
    pub interrupted: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Why a triage could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("interrupted")]
    Interrupted,
}

/// Scans the inputs and groups what they show.
pub fn run(inputs: &[PathBuf], opts: &Options) -> Result<Report, TriageError> {
    let started = std::time::Instant::now();
    let walk = scan::walk(inputs)?;
    let mut out = scan::analyze_all(&walk.files, opts);
    if opts
        .interrupted
        .as_ref()
        .is_some_and(|i| i.load(std::sync::atomic::Ordering::SeqCst))
    {
        return Err(TriageError::Interrupted);
    }
    out.files.skipped_special += walk.special;
    let mut unreadable = walk.unreadable;
    unreadable.extend(out.unreadable);
    Ok(Report {
        groups: group(out.failures),
        files: out.files,
        unreadable,
        errors: out.errors,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Groups failures by fingerprint, most important first.
pub fn group(failures: Vec<Failure>) -> Vec<Group> {
    let mut by: BTreeMap<String, Group> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for f in failures {
        let g = by.entry(f.fingerprint.clone()).or_insert_with(|| {
            order.push(f.fingerprint.clone());
            Group {
                fingerprint: f.fingerprint.clone(),
                status: f.status,
                signature: f.signature.clone(),
                title: f.title.clone(),
                fixed_in: f.fixed_in.clone(),
                frames: f.frames.clone(),
                count: 0,
                detail: f.detail.clone(),
                artifacts: Vec::new(),
                tests: Vec::new(),
                line: f.line,
                history: None,
            }
        });
        g.count += 1;
        if !g.artifacts.contains(&f.artifact) {
            g.artifacts.push(f.artifact);
        }
        if let Some(t) = f.test
            && !g.tests.contains(&t)
        {
            g.tests.push(t);
        }
    }
    let mut groups: Vec<Group> = order.into_iter().filter_map(|k| by.remove(&k)).collect();
    groups.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then(b.count.cmp(&a.count))
            .then(a.title.cmp(&b.title))
            .then(a.fingerprint.cmp(&b.fingerprint))
    });
    groups
}
