//! Walking a CI job's artifacts and analyzing each: directories recursively (symlinks
//! followed, loops not), each regular file classified by its bytes, not its name, and read
//! by the one reader of its kind — the log scanner for text (also gzip, zstd, lz4 or xz
//! compressed, read through the decompressor), `source::core::open` for ELF cores (compressed
//! ones too), [`super::junit`] for JUnit XML (whose failure text goes to the log scanner),
//! and [`analyze_bundle`] for support bundles.
//!
//! A file that cannot be opened is listed and skipped; FIFOs, sockets and devices are never
//! opened (a FIFO would block); binary files that are not cores are counted and skipped.

use super::fingerprint::{self, Key};
use super::{Counts, Failure, Options, Problem, Status, TriageError, junit};
use crate::analyze;
use crate::binary::BinaryCache;
use crate::log::{self, LogScan};
use crate::model::{Diagnosis, Finding, Process, Snapshot};
use crate::source::compressed::Compression;
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes read from the start of a file to classify it.
const HEAD: usize = 8192;

/// What a file is, from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Log,
    /// An ELF core, plain or zstd/lz4/xz compressed.
    Core,
    Junit,
    /// A `wedge bundle` archive: a zstd-compressed tar holding manifest.json and
    /// snapshot.json.
    Bundle,
    /// Binary, not a core; an archive that is not a bundle.
    Binary,
}

/// The files to analyze.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<PathBuf>,
    pub unreadable: Vec<Problem>,
    /// FIFOs, sockets, devices.
    pub special: u64,
}

/// Lists the files under the inputs. A named input that does not exist is an error; what
/// cannot be listed below it is recorded and skipped.
pub fn walk(inputs: &[PathBuf]) -> Result<Walk, TriageError> {
    let mut w = Walk::default();
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut seen_files: HashSet<(u64, u64)> = HashSet::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TriageError::NotFound(input.display().to_string()));
            }
            Err(e) => w.unreadable.push(problem(input, e.to_string())),
            Ok(m) => visit(input, &m, &mut w, &mut seen_dirs, &mut seen_files),
        }
    }
    Ok(w)
}

fn problem(path: &Path, reason: impl Into<String>) -> Problem {
    Problem {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn visit(
    path: &Path,
    m: &std::fs::Metadata,
    w: &mut Walk,
    seen_dirs: &mut HashSet<(u64, u64)>,
    seen_files: &mut HashSet<(u64, u64)>,
) {
    let id = (m.dev(), m.ino());
    if m.is_file() {
        if seen_files.insert(id) {
            w.files.push(path.to_path_buf());
        }
        return;
    }
    if !m.is_dir() {
        let ft = m.file_type();
        if ft.is_fifo() || ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
            w.special += 1;
        }
        return;
    }
    // A directory reached twice (a symlink back up the tree) is walked once.
    if !seen_dirs.insert(id) {
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => {
            w.unreadable.push(problem(path, e.to_string()));
            return;
        }
    };
    let mut children: Vec<PathBuf> = Vec::new();
    for e in entries {
        match e {
            Ok(e) => children.push(e.path()),
            Err(e) => w.unreadable.push(problem(path, e.to_string())),
        }
    }
    children.sort();
    for c in children {
        match std::fs::metadata(&c) {
            Ok(m) => visit(&c, &m, w, seen_dirs, seen_files),
            Err(e) => {
                let why = if std::fs::symlink_metadata(&c).is_ok_and(|l| l.is_symlink()) {
                    format!("symlink whose target cannot be read: {e}")
                } else {
                    e.to_string()
                };
                w.unreadable.push(problem(&c, why));
            }
        }
    }
}

/// What analyzing the files gave.
#[derive(Debug, Default)]
pub struct Outcome {
    pub failures: Vec<Failure>,
    pub files: Counts,
    pub unreadable: Vec<Problem>,
    pub errors: Vec<Problem>,
}

/// One file's result.
enum One {
    Done(Kind, Vec<Failure>),
    Unreadable(String),
    /// Of a known kind, but its content could not be analyzed.
    Error(Kind, String),
    /// The analyzer itself failed.
    Failed(String),
}

/// Analyzes every file, on as many threads as there are CPUs (at most 8); the result is in
/// the files' order whatever the threads did.
pub fn analyze_all(files: &[PathBuf], opts: &Options) -> Outcome {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<One>>> = Mutex::new((0..files.len()).map(|_| None).collect());
    let started = std::time::Instant::now();
    let last_shown = Mutex::new(std::time::Duration::ZERO);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut cache = BinaryCache::new();
                loop {
                    if opts
                        .interrupted
                        .as_ref()
                        .is_some_and(|i| i.load(Ordering::SeqCst))
                    {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(path) = files.get(i) else { break };
                    // A reader that panics on some file is a wedge bug; the other files of
                    // the scan still deserve their answer.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        analyze_file(path, opts, &mut cache)
                    }))
                    .unwrap_or_else(|p| {
                        let what = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        cache = BinaryCache::new();
                        One::Failed(format!(
                            "the analyzer failed on this file (a wedge bug): {what}"
                        ))
                    });
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if opts.progress {
                        show_progress(n, files.len(), started, &last_shown);
                    }
                }
            });
        }
    });
    if opts.progress && started.elapsed() >= PROGRESS_AFTER {
        eprint!("\r\x1b[2K");
    }
    let mut out = Outcome::default();
    let results = results.into_inner().unwrap_or_default();
    for (path, r) in files.iter().zip(results) {
        match r {
            Some(One::Done(kind, failures)) => {
                count(&mut out.files, kind);
                out.failures.extend(failures);
            }
            Some(One::Error(kind, why)) => {
                count(&mut out.files, kind);
                out.errors.push(problem(path, why));
            }
            Some(One::Unreadable(why)) => out.unreadable.push(problem(path, why)),
            Some(One::Failed(why)) => out.errors.push(problem(path, why)),
            None => out
                .errors
                .push(problem(path, "not analyzed (an analyzer thread failed)")),
        }
    }
    out
}

/// Progress shows only for scans that take longer than this.
const PROGRESS_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

fn show_progress(
    n: usize,
    total: usize,
    started: std::time::Instant,
    last: &Mutex<std::time::Duration>,
) {
    let t = started.elapsed();
    if t < PROGRESS_AFTER {
        return;
    }
    let Ok(mut last) = last.lock() else { return };
    if t - *last < std::time::Duration::from_millis(100) && n != total {
        return;
    }
    *last = t;
    eprint!("\r\x1b[2Kwedge triage: {n}/{total} files");
}

fn count(c: &mut Counts, kind: Kind) {
    match kind {
        Kind::Log => c.logs += 1,
        Kind::Core => c.cores += 1,
        Kind::Junit => c.junit += 1,
        Kind::Bundle => c.bundles += 1,
        Kind::Binary => c.skipped_binary += 1,
    }
}

fn analyze_file(path: &Path, opts: &Options, cache: &mut BinaryCache) -> One {
    let kind = match classify(path) {
        Ok(k) => k,
        Err(Classify::Unreadable(e)) => return One::Unreadable(e),
        Err(Classify::Damaged(k, e)) => return One::Error(k, e),
    };
    let result = match kind {
        Kind::Binary => Ok(Vec::new()),
        Kind::Log => scan_log(path).map(|scan| failures_of_log(scan, path, None)),
        Kind::Core => match crate::source::core::open(path) {
            Ok(core) => {
                let d = analyze::diagnose_core(core, None, opts.sysroot.clone(), cache);
                Ok(failures_of_diagnosis(&d, path, None, &[]))
            }
            Err(e) => Err(format!("unreadable core: {e}")),
        },
        Kind::Junit => junit_failures(path),
        Kind::Bundle => analyze_bundle(path).map(|ds| {
            ds.iter()
                .flat_map(|d| failures_of_diagnosis(d, path, None, &[]))
                .collect()
        }),
    };
    match result {
        Ok(f) => One::Done(kind, f),
        Err(e) => One::Error(kind, e),
    }
}

enum Classify {
    Unreadable(String),
    Damaged(Kind, String),
}

/// The kind of a file, from its first bytes (and, for compressed files, from the first
/// bytes they inflate to).
pub fn classify_file(path: &Path) -> Result<Kind, String> {
    classify(path).map_err(|e| match e {
        Classify::Unreadable(e) | Classify::Damaged(_, e) => e,
    })
}

fn classify(path: &Path) -> Result<Kind, Classify> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a file replaced by a FIFO since the walk must not block the scan.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Classify::Unreadable(e.to_string()))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Classify::Unreadable("not a regular file".into()));
    }
    let mut head = Vec::with_capacity(HEAD);
    (&mut f)
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(|e| Classify::Unreadable(e.to_string()))?;
    let named_bundle = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".tar.zst"));
    if let Some(k) = elf_kind(&head) {
        return Ok(k);
    }
    if let Some(p) = Packing::sniff(&head) {
        return classify_compressed(path, p, named_bundle);
    }
    if named_bundle {
        return Err(Classify::Damaged(
            Kind::Bundle,
            "named .tar.zst but not a zstd archive (no zstd magic bytes)".into(),
        ));
    }
    if head.contains(&0) {
        return Ok(Kind::Binary);
    }
    if junit::sniff(&head) {
        return Ok(Kind::Junit);
    }
    Ok(Kind::Log)
}

/// Core for an ELF core, Binary for any other ELF file, None for what is not ELF.
fn elf_kind(head: &[u8]) -> Option<Kind> {
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    let e_type = match (head.get(5), head.get(16..18)) {
        (Some(2), Some(t)) => u16::from_be_bytes([t[0], t[1]]),
        (_, Some(t)) => u16::from_le_bytes([t[0], t[1]]),
        _ => return Some(Kind::Binary),
    };
    Some(if e_type == goblin::elf::header::ET_CORE {
        Kind::Core
    } else {
        Kind::Binary
    })
}

/// How a file is compressed: the formats of compressed cores (`source::compressed`), and
/// gzip, which triage reads for logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    Core(Compression),
    Gzip,
}

impl Packing {
    fn sniff(head: &[u8]) -> Option<Packing> {
        Compression::sniff(head)
            .map(Packing::Core)
            .or_else(|| head.starts_with(&[0x1f, 0x8b]).then_some(Packing::Gzip))
    }

    fn name(self) -> &'static str {
        match self {
            Packing::Core(c) => c.name(),
            Packing::Gzip => "gzip",
        }
    }
}

fn decoder(p: Packing, f: std::fs::File) -> std::io::Result<Box<dyn Read>> {
    let input = std::io::BufReader::new(f);
    Ok(match p {
        Packing::Core(Compression::Zstd) => {
            Box::new(zstd::stream::read::Decoder::with_buffer(input)?)
        }
        Packing::Core(Compression::Lz4) => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        Packing::Core(Compression::Xz) => {
            Box::new(liblzma::read::XzDecoder::new_multi_decoder(input))
        }
        Packing::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
    })
}

/// A log, compressed or not: the same scanner, over the inflated stream when compressed.
pub fn scan_log(path: &Path) -> Result<LogScan, String> {
    let mut head = [0u8; 6];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| e.to_string())?;
    match Packing::sniff(&head[..n]) {
        None => log::scan_file(path).map_err(|e| e.to_string()),
        Some(p) => std::fs::File::open(path)
            .and_then(|f| decoder(p, f))
            .and_then(log::scan_reader)
            .map_err(|e| format!("{} stream damaged or truncated: {e}", p.name())),
    }
}

/// A compressed file is a core, a bundle or a log by what it inflates to.
fn classify_compressed(path: &Path, p: Packing, named_bundle: bool) -> Result<Kind, Classify> {
    let damaged = |what: &str, e: &dyn std::fmt::Display| {
        let kind = match p {
            _ if named_bundle => Kind::Bundle,
            Packing::Gzip => Kind::Log,
            Packing::Core(_) => Kind::Core,
        };
        Classify::Damaged(kind, format!("{} {what}: {e}", p.name()))
    };
    let f = std::fs::File::open(path).map_err(|e| Classify::Unreadable(e.to_string()))?;
    let mut head = Vec::with_capacity(1024);
    decoder(p, f)
        .and_then(|d| d.take(1024).read_to_end(&mut head))
        .map_err(|e| damaged("stream damaged", &e))?;
    match (elf_kind(&head), p) {
        (Some(Kind::Core), Packing::Gzip) => {
            return Err(Classify::Damaged(
                Kind::Core,
                "a gzip-compressed core: wedge opens zstd, lz4 and xz cores; decompress it".into(),
            ));
        }
        (Some(k), _) => return Ok(k),
        (None, _) => {}
    }
    // A tar whose first member is manifest.json: `wedge bundle` writes it first. The
    // bundle reader (source::bundle) checks the rest when the bundle is analyzed.
    if p == Packing::Core(Compression::Zstd)
        && head.get(257..262) == Some(b"ustar")
        && head.starts_with(crate::bundle::manifest::MANIFEST.as_bytes())
        && head.get(crate::bundle::manifest::MANIFEST.len()) == Some(&0)
    {
        return Ok(Kind::Bundle);
    }
    if named_bundle {
        return Err(Classify::Damaged(
            Kind::Bundle,
            "named .tar.zst but not a wedge bundle (its first member is not manifest.json)".into(),
        ));
    }
    // Text once inflated: a compressed log.
    if !head.contains(&0) {
        return Ok(Kind::Log);
    }
    Ok(Kind::Binary)
}

/// The diagnoses a support bundle holds, one per input it was made from: the findings
/// `wedge analyze` prints.
pub fn analyze_bundle(path: &Path) -> Result<Vec<Diagnosis>, String> {
    crate::source::bundle::open(path)
        .map(|b| b.diagnoses())
        .map_err(|e| e.to_string())
}

fn junit_failures(path: &Path) -> Result<Vec<Failure>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let xml = String::from_utf8_lossy(&bytes);
    let cases = junit::cases(&xml).map_err(|e| format!("JUnit XML: {e}"))?;
    let mut out = Vec::new();
    for c in cases {
        let mut s = log::Scanner::new();
        s.feed(c.text.as_bytes());
        // Lines of the failure text are not lines of the XML file.
        out.extend(
            failures_of_log(s.finish(), path, Some(&c.test))
                .into_iter()
                .map(|f| Failure { line: None, ..f }),
        );
    }
    Ok(out)
}

/// What a dump of a log says when it is a failure (a panic, a fatal error, a signal's
/// dump; a plain goroutine listing is not).
#[derive(Debug, Clone)]
struct Crash {
    title: String,
    message: String,
    frames: Vec<String>,
    line: u64,
}

fn crash_of_dump(d: &log::traceback::Dump) -> Option<Crash> {
    use log::traceback::DumpKind;
    let (kind, mut message) = match d.kind {
        DumpKind::Panic => ("Go panic", d.panics.join(" / ")),
        DumpKind::Fatal => (
            "Go fatal error",
            d.fatal.clone().unwrap_or_else(|| "unexpected fault".into()),
        ),
        DumpKind::Signal => (
            "Go goroutine dump on a signal",
            d.dump_signal
                .as_ref()
                .map_or("a signal".into(), |s| s.0.clone()),
        ),
        DumpKind::Goroutines => return None,
    };
    for l in &d.message_lines {
        message.push('\n');
        message.push_str(l);
    }
    let frames = d
        .goroutines
        .first()
        .map(fingerprint::goroutine_top_frames)
        .or_else(|| {
            d.threads
                .first()
                .map(|t| fingerprint::top_frames(&t.frames))
        })
        .unwrap_or_default();
    let first = message.lines().next().unwrap_or("").to_string();
    Some(Crash {
        title: format!("{kind}: {first}"),
        message,
        frames,
        line: d.first_line,
    })
}

/// The failures a log's scan shows: one per finding of the catalog, and one unknown failure
/// per panic, fatal error, signal dump or race report that no finding explains.
fn failures_of_log(scan: LogScan, artifact: &Path, test: Option<&str>) -> Vec<Failure> {
    let crashes: Vec<Option<Crash>> = scan.dumps.iter().map(|(d, _)| crash_of_dump(d)).collect();
    let d = analyze::diagnose_log(log::snapshot(scan, &artifact.display().to_string()));
    // log::snapshot makes one process per dump, in the dumps' order, and one process per
    // group of race reports not next to a dump; those have the state RACE_ONLY_STATE.
    let from_dumps = d
        .snapshot
        .processes
        .iter()
        .filter(|p| p.state != RACE_ONLY)
        .count();
    let crashes = if from_dumps == crashes.len() {
        crashes
    } else {
        Vec::new()
    };
    failures_of_diagnosis(&d, artifact, test, &crashes)
}

const RACE_ONLY: &str = log::RACE_ONLY_STATE;

/// Failures of a diagnosis (of a log, a core or a bundle): findings first, then the
/// processes that failed without a finding. `crashes` are the log's dumps, in order.
fn failures_of_diagnosis(
    d: &Diagnosis,
    artifact: &Path,
    test: Option<&str>,
    crashes: &[Option<Crash>],
) -> Vec<Failure> {
    // The dump (of a log) each process was made from.
    let mut dump_i = 0;
    let dumps: Vec<Option<Crash>> = d
        .snapshot
        .processes
        .iter()
        .map(|p| {
            if p.state != RACE_ONLY && !crashes.is_empty() {
                dump_i += 1;
                crashes.get(dump_i - 1).cloned().flatten()
            } else {
                None
            }
        })
        .collect();
    let mut out: Vec<Failure> = d
        .findings
        .iter()
        .map(|f| {
            let mut failure = finding_failure(f, &d.snapshot, artifact, test);
            // The line of the dump the finding is about, for annotations.
            failure.line = d
                .snapshot
                .processes
                .iter()
                .zip(&dumps)
                .find(|(p, _)| explained(std::slice::from_ref(f), p))
                .and_then(|(_, c)| c.as_ref().map(|c| c.line));
            failure
        })
        .collect();
    // Functions the findings are about: a race report inside them is part of what a
    // finding explains (the race behind a known crash), not a failure of its own.
    let found_in: HashSet<String> = out.iter().flat_map(|f| f.frames.iter().cloned()).collect();
    for (p, crash) in d.snapshot.processes.iter().zip(dumps) {
        if explained(&d.findings, p) {
            continue;
        }
        let unknown = |title: String, message: &str, frames: Vec<String>, line| {
            let msg = fingerprint::message(message);
            Failure {
                fingerprint: fingerprint::fingerprint(Key::Unknown(&msg), &frames),
                status: Status::Unknown,
                signature: None,
                title,
                fixed_in: None,
                frames,
                detail: message.lines().next().unwrap_or("").to_string(),
                artifact: artifact.display().to_string(),
                test: test.map(String::from),
                line,
            }
        };
        if let Some(c) = crash {
            out.push(unknown(c.title, &c.message, c.frames, Some(c.line)));
        } else if let Some(sig) = &p.signal
            && crashes.is_empty()
        {
            // A core (or a bundle): the process died of a signal.
            let name = signal_name(sig.signo);
            let frames = crash_frames(p, sig.tid, sig.goroutine);
            let title = format!("fatal signal {name} in {}", p.comm);
            out.push(unknown(
                title,
                &format!("fatal signal {name}"),
                frames,
                None,
            ));
        }
        for r in p.go.iter().flat_map(|g| &g.races) {
            let frames = r
                .stacks
                .first()
                .map(|s| fingerprint::top_frames(&s.frames))
                .unwrap_or_default();
            if frames.iter().any(|f| found_in.contains(f)) {
                continue;
            }
            let at = frames.first().cloned().unwrap_or_default();
            out.push(unknown(
                format!("Go data race in {at}"),
                "data race",
                frames,
                None,
            ));
        }
    }
    out
}

fn signal_name(signo: i32) -> String {
    nix::sys::signal::Signal::try_from(signo)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signo}"))
}

/// Frames of the thread (or goroutine) that took the fatal signal; else the first thread's.
fn crash_frames(p: &Process, tid: Option<i32>, goroutine: Option<i64>) -> Vec<String> {
    if let Some(g) = goroutine
        && let Some(f) = goroutine_top(p, g)
    {
        return f;
    }
    let t = tid.and_then(|t| p.thread(t)).or_else(|| p.threads.first());
    t.map(|t| fingerprint::top_frames(&t.frames))
        .unwrap_or_default()
}

/// The top frames of goroutine `id` (or of its stack in a race report).
fn goroutine_top(p: &Process, id: i64) -> Option<Vec<String>> {
    let go = p.go.as_ref()?;
    go.goroutines
        .iter()
        .find(|g| g.id == id && !g.frames.is_empty())
        .map(fingerprint::goroutine_top_frames)
        .or_else(|| {
            go.races
                .iter()
                .flat_map(|r| &r.stacks)
                .find(|s| s.goroutine == Some(id) && !s.frames.is_empty())
                .map(|s| fingerprint::top_frames(&s.frames))
        })
}

/// Whether some finding's evidence points into this process.
fn explained(findings: &[Finding], p: &Process) -> bool {
    findings.iter().flat_map(|f| &f.evidence).any(|e| {
        if e.pid.is_some_and(|pid| pid != p.pid) {
            return false;
        }
        match (e.goroutine, e.tid) {
            (Some(g), _) => p.go.as_ref().is_some_and(|go| {
                go.goroutines.iter().any(|x| x.id == g)
                    || go
                        .races
                        .iter()
                        .flat_map(|r| &r.stacks)
                        .any(|s| s.goroutine == Some(g))
            }),
            (None, Some(t)) => p.thread(t).is_some(),
            (None, None) => e.pid.is_some(),
        }
    })
}

/// The top frames of the goroutine or thread a finding's evidence names (the first
/// evidence that names one with frames).
fn implicated_frames(f: &Finding, s: &Snapshot) -> Vec<String> {
    for e in &f.evidence {
        for p in s
            .processes
            .iter()
            .filter(|p| e.pid.is_none_or(|pid| pid == p.pid))
        {
            if let Some(g) = e.goroutine
                && let Some(frames) = goroutine_top(p, g)
            {
                return frames;
            }
            if let Some(t) = e.tid.and_then(|t| p.thread(t))
                && !t.frames.is_empty()
            {
                return fingerprint::top_frames(&t.frames);
            }
        }
    }
    Vec::new()
}

fn finding_failure(f: &Finding, s: &Snapshot, artifact: &Path, test: Option<&str>) -> Failure {
    let specific = crate::signatures::catalog()
        .iter()
        .find(|sig| sig.id == f.id)
        .is_some_and(|sig| sig.specific);
    let frames = implicated_frames(f, s);
    Failure {
        fingerprint: fingerprint::fingerprint(Key::Signature(&f.id), &frames),
        status: if specific {
            Status::KnownBug
        } else {
            Status::Generic
        },
        signature: Some(f.id.clone()),
        title: f.title.clone(),
        fixed_in: f.fixed_in.clone(),
        frames,
        detail: f
            .evidence
            .first()
            .map(|e| e.text.clone())
            .unwrap_or_else(|| f.explanation.lines().next().unwrap_or("").to_string()),
        artifact: artifact.display().to_string(),
        test: test.map(String::from),
        line: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples/logs")
            .join(name)
    }

    fn failures(name: &str) -> Vec<Failure> {
        let p = sample(name);
        failures_of_log(log::scan_file(&p).unwrap(), &p, None)
    }

    #[test]
    fn the_buildkit_sample_is_the_known_bug_and_nothing_else() {
        let f = failures("reader-race-probe-race-go1.19.txt");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].status, Status::KnownBug);
        assert_eq!(f[0].signature.as_deref(), Some("nil-reader-race"));
        assert!(f[0].fixed_in.is_some());
        assert_eq!(f[0].frames[0], "main.(*readerAtCloser).ReadAt");
    }

    #[test]
    fn unexplained_panics_races_and_fatal_errors_are_unknown() {
        for (name, title) in [
            ("go1.19-nested-panic.txt", "Go panic: first [recovered]"),
            (
                "go1.19-deadlock.txt",
                "Go fatal error: all goroutines are asleep",
            ),
            (
                "go1.25.5-test-timeout.txt",
                "Go panic: test timed out after",
            ),
            ("go1.19-race.txt", "Go data race in main."),
        ] {
            let f = failures(name);
            assert!(!f.is_empty(), "{name}");
            assert!(f.iter().all(|f| f.status == Status::Unknown), "{name}");
            assert!(f[0].title.starts_with(title), "{name}: {}", f[0].title);
            assert!(!f[0].frames.is_empty(), "{name}");
        }
        // A plain goroutine listing is not a failure.
        assert!(failures("go1.19-pprof-goroutine-debug2.txt").is_empty());
        assert!(failures("runc-1.1.5-state-error.txt").is_empty());
    }

    #[test]
    fn the_same_crash_under_other_tracebacks_has_one_fingerprint() {
        // GOTRACEBACK=system prints runtime frames and pc= on every frame; the default does
        // not; the fingerprint is the same.
        let a = failures("go1.19-nil-deref.txt");
        let b = failures("go1.19-nil-deref-gotraceback-system.txt");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].fingerprint, b[0].fingerprint, "{a:?} {b:?}");
        // Go 1.25 inlines the worker into the go statement's wrapper; GOTRACEBACK=crash
        // prints the wrapper: the same fingerprint as the default traceback.
        let c = failures("go1.25.5-nil-deref.txt");
        let d = failures("go1.25.5-nil-deref-gotraceback-crash.txt");
        assert_eq!(c[0].frames, ["main.(*holder).read", "main.worker"]);
        assert_eq!(c[0].fingerprint, d[0].fingerprint, "{c:?} {d:?}");
        assert_eq!(a[0].status, Status::Generic);
    }

    #[test]
    fn elf_kinds() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[5] = 1;
        h[16] = 4;
        assert_eq!(elf_kind(&h), Some(Kind::Core));
        h[16] = 2;
        assert_eq!(elf_kind(&h), Some(Kind::Binary));
        assert_eq!(elf_kind(b"\x7fEL"), None);
        assert_eq!(elf_kind(b"\x7fELF"), Some(Kind::Binary));
    }
}
