//! Writing support bundles (`wedge bundle`): one zstd-compressed tar with everything a
//! maintainer needs to analyze a hang or crash without the user's machine.
//!
//! Layout: `manifest.json` first (what was collected, each member's sha256, each
//! collector's duration and deadline), then `snapshot.json` (`snapshot-N.json` for further
//! inputs), `report.md`, `proc/PID/…` (the raw /proc files), `host/…`, `runtimes/…`,
//! `binaries.json` (and `binaries/…` with `--with-binaries`), `logs/…` and `configs/…`.
//! Redaction happens while collecting ([`redact`]); the snapshot's findings are recomputed
//! from the redacted snapshot, so `wedge analyze` (see [`crate::source::bundle`]) gives the
//! findings the report shows, on any machine.

pub mod collect;
pub mod manifest;
pub mod redact;

use crate::model::{Diagnosis, Finding, Snapshot};
use collect::{Collected, Piece, Treat, with_deadline};
use manifest::{CollectorRecord, FORMAT, FORMAT_VERSION, InputEntry, MANIFEST, Manifest};
use redact::Redactor;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What kind of thing an input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Live,
    Core,
    Log,
    /// `wedge trace --bundle`: a timeline, and the live capture of a fault if one happened.
    Trace,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Live => "live",
            InputKind::Core => "core",
            InputKind::Log => "log",
            InputKind::Trace => "trace",
        }
    }
}

/// One analyzed input: the caller captured or read it and made its diagnosis.
pub struct Input {
    /// The argument as given.
    pub arg: String,
    pub kind: InputKind,
    /// The core or log file.
    pub path: Option<PathBuf>,
    pub diagnosis: Diagnosis,
    /// The timeline of `wedge trace` (then `diagnosis` is its fault's capture, or empty).
    pub trace: Option<crate::trace::Timeline>,
    /// How long the capture and analysis took.
    pub duration: Duration,
}

pub struct Options {
    /// False with `--no-redact`.
    pub redact: bool,
    /// Copy the binaries themselves, not only their build-ids and buildinfo.
    pub with_binaries: bool,
    /// wedge's own command line (redacted before it is written).
    pub command: Vec<String>,
    /// Where a core's binaries are (`--sysroot`).
    pub sysroot: Option<PathBuf>,
    /// Called with the name of each collector as it starts.
    pub progress: Box<dyn Fn(&str)>,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub size: u64,
    pub manifest: Manifest,
    /// The findings of each input, as `wedge analyze` will give them.
    pub findings: Vec<Vec<Finding>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("nothing to bundle")]
    Empty,
}

/// How many processes' collectors run at once.
const PROC_PARALLEL: usize = 4;
/// Per-process collectors' deadline.
const PROC_DEADLINE: Duration = Duration::from_secs(2);
const HOST_DEADLINE: Duration = Duration::from_secs(5);
/// Each runtime's `--version`; the collector's own deadline is a little longer.
const RUNTIME_DEADLINE: Duration = Duration::from_secs(5);
const BINARIES_DEADLINE: Duration = Duration::from_secs(60);

/// Collects, redacts and writes the bundle to `out` (through a temporary file beside it,
/// renamed into place: a failed run leaves no half-written bundle).
pub fn write(out: &Path, inputs: Vec<Input>, opts: &Options) -> Result<Written, BundleError> {
    if inputs.is_empty() {
        return Err(BundleError::Empty);
    }
    // The runtimes' `--version` runs take the longest (podman's is ~0.3 s): start them
    // first, beside the other collectors.
    let exes: Vec<String> = inputs
        .iter()
        .flat_map(|i| i.diagnosis.snapshot.processes.iter())
        .filter_map(|p| p.exe.as_ref().map(|e| e.path.clone()))
        .collect();
    let runtimes = std::thread::spawn(move || {
        with_deadline(
            "runtime versions",
            RUNTIME_DEADLINE + Duration::from_secs(1),
            move || collect::runtime_versions(&exes, RUNTIME_DEADLINE),
        )
    });
    let mut records: Vec<CollectorRecord> = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let take = |(c, r): (Collected, CollectorRecord),
                pieces: &mut Vec<Piece>,
                records: &mut Vec<CollectorRecord>| {
        pieces.extend(c.pieces);
        records.push(r);
    };
    for (i, input) in inputs.iter().enumerate() {
        records.push(CollectorRecord {
            name: format!("input {}: {} {}", i + 1, input.kind.name(), input.arg),
            duration_ms: input.duration.as_secs_f64() * 1000.0,
            deadline_ms: 0,
            hit_deadline: false,
            notes: Vec::new(),
        });
        let snap = &input.diagnosis.snapshot;
        match input.kind {
            InputKind::Live => {
                (opts.progress)(&format!("/proc of {} processes", snap.processes.len()));
                // Four at a time: each process's collectors are independent.
                for chunk in snap.processes.chunks(PROC_PARALLEL) {
                    let running: Vec<_> = chunk
                        .iter()
                        .map(|p| {
                            let pid = p.pid;
                            let fds: Vec<_> =
                                p.fds.iter().map(|f| (f.fd, f.kind.clone())).collect();
                            let cmdline = p.cmdline.clone();
                            std::thread::spawn(move || {
                                let proc = with_deadline(
                                    &format!("proc {pid}"),
                                    PROC_DEADLINE,
                                    move || collect::proc_files(pid),
                                );
                                let files = with_deadline(
                                    &format!("files {pid}"),
                                    PROC_DEADLINE,
                                    move || collect::open_files(pid, &fds, &cmdline),
                                );
                                [proc, files]
                            })
                        })
                        .collect();
                    for r in running {
                        // A collector that panicked lost its pieces; the others stand.
                        if let Ok(done) = r.join() {
                            for d in done {
                                take(d, &mut pieces, &mut records);
                            }
                        }
                    }
                }
            }
            InputKind::Log => {
                if let Some(path) = input.path.clone() {
                    let n = i + 1;
                    take(
                        with_deadline(&format!("log {n}"), PROC_DEADLINE, move || {
                            collect::input_log(n, &path)
                        }),
                        &mut pieces,
                        &mut records,
                    );
                }
            }
            InputKind::Core | InputKind::Trace => {}
        }
        (opts.progress)("binaries");
        let files = collect::binary_files(snap, opts.sysroot.as_deref());
        let copy = opts.with_binaries;
        take(
            with_deadline(
                &format!("binaries {}", i + 1),
                BINARIES_DEADLINE,
                move || collect::binaries(files, copy),
            ),
            &mut pieces,
            &mut records,
        );
    }
    drop_shared_files(&mut pieces);
    if pieces.iter().filter(|p| p.name == "binaries.json").count() > 1 {
        // One binaries.json per input: number all but the first.
        let mut n = 0;
        for p in pieces.iter_mut().filter(|p| p.name == "binaries.json") {
            n += 1;
            if n > 1 {
                p.name = format!("binaries-{n}.json");
            }
        }
    }
    (opts.progress)("host");
    take(
        with_deadline("host", HOST_DEADLINE, collect::host_facts),
        &mut pieces,
        &mut records,
    );
    (opts.progress)("runtimes");
    match runtimes.join() {
        Ok(done) => take(done, &mut pieces, &mut records),
        Err(_) => records.push(CollectorRecord {
            name: "runtime versions".into(),
            duration_ms: 0.0,
            deadline_ms: 0,
            hit_deadline: false,
            notes: vec!["the collector failed".into()],
        }),
    }

    // Redaction: first where each secret stands (so every secret is known), then the
    // last scrub of every member.
    let mut r = Redactor::new(opts.redact);
    for p in pieces.iter_mut() {
        p.data = match p.treat {
            Treat::Plain | Treat::Binary => std::mem::take(&mut p.data),
            Treat::Environ => r.environ(&p.data),
            Treat::Cmdline => cmdline(&mut r, &p.data),
            Treat::Config => r.config(&p.data),
            Treat::Text => r.text(&p.data),
        };
    }
    let meta: Vec<(String, InputKind)> = inputs.iter().map(|i| (i.arg.clone(), i.kind)).collect();
    let mut snapshots: Vec<(Snapshot, Option<crate::trace::Timeline>)> = inputs
        .into_iter()
        .map(|i| {
            let trace = i.trace.map(|mut t| {
                t.command = r.args(&t.command);
                t
            });
            (redact_snapshot(&mut r, i.diagnosis.snapshot), trace)
        })
        .collect();
    let command = r.args(&opts.command);
    for (s, t) in snapshots.iter_mut() {
        *s = scrub(&r, std::mem::replace(s, empty_snapshot()));
        if let Some(t) = t.as_mut() {
            *t = scrub(&r, std::mem::take(t));
        }
    }
    for p in pieces.iter_mut().filter(|p| p.treat != Treat::Binary) {
        p.data = r.scrub(&p.data);
    }
    let command: Vec<String> = command
        .iter()
        .map(|a| String::from_utf8_lossy(&r.scrub(a.as_bytes())).into_owned())
        .collect();

    // The findings, from the redacted snapshots: what `wedge analyze` will say.
    let mut entries = Vec::new();
    let mut findings = Vec::new();
    let mut report = String::from("# wedge support bundle\n");
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (snap, trace)) in snapshots.into_iter().enumerate() {
        let numbered = |stem: &str| {
            if i == 0 {
                format!("{stem}.json")
            } else {
                format!("{stem}-{}.json", i + 1)
            }
        };
        let name = numbered("snapshot");
        let trace_name = trace.as_ref().map(|_| numbered("trace"));
        let mut json = serde_json::to_vec_pretty(&snap).unwrap_or_default();
        json.push(b'\n');
        members.push((name.clone(), json));
        if let (Some(t), Some(n)) = (&trace, &trace_name) {
            let mut json = serde_json::to_vec_pretty(t).unwrap_or_default();
            json.push(b'\n');
            members.push((n.clone(), json));
        }
        let analyzed = Analyzed::of(snap, trace);
        let (arg, kind) = &meta[i];
        let arg = String::from_utf8_lossy(&r.scrub(arg.as_bytes())).into_owned();
        report.push_str(&format!(
            "\n## Input {}: {arg}\n\n```text\n{}\n```\n",
            i + 1,
            analyzed.render(crate::render::Style::plain(), false)
        ));
        let found = analyzed.findings();
        entries.push(InputEntry {
            arg,
            kind: kind.name().into(),
            snapshot: name,
            trace: trace_name,
            findings: found.iter().map(|f| f.id.clone()).collect(),
        });
        findings.push(found);
    }
    members.push(("report.md".into(), r.scrub(report.as_bytes())));
    members.extend(pieces.into_iter().map(|p| (p.name, p.data)));
    dedupe_names(&mut members);

    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        wedge_version: env!("CARGO_PKG_VERSION").into(),
        created_unix_ms: now_ms(),
        command,
        redacted: r.enabled(),
        redactions: r.count,
        kernel_release: crate::hostcheck::kernel_release(),
        inputs: entries,
        collectors: records,
        members: members
            .iter()
            .map(|(name, data)| manifest::MemberEntry {
                name: name.clone(),
                size: data.len() as u64,
                sha256: manifest::sha256_hex(data),
            })
            .collect(),
    };
    let size = write_archive(out, &manifest, &members)?;
    Ok(Written {
        path: out.to_path_buf(),
        size,
        manifest,
        findings,
    })
}

/// A config or log that several processes hold open (children inherit fds) is kept once,
/// under the first pid that has it.
fn drop_shared_files(pieces: &mut Vec<Piece>) {
    let mut seen = std::collections::BTreeSet::new();
    pieces.retain(|p| {
        let Some((kind, rest)) = p.name.split_once('/') else {
            return true;
        };
        if kind != "configs" && kind != "logs" {
            return true;
        }
        let path = rest.split_once('/').map_or(rest, |(_, path)| path);
        seen.insert((
            kind.to_string(),
            path.to_string(),
            manifest::sha256_hex(&p.data),
        ))
    });
}

/// /proc/PID/cmdline: NUL-separated arguments, redacted like a command line.
fn cmdline(r: &mut Redactor, raw: &[u8]) -> Vec<u8> {
    let trailing = raw.ends_with(&[0]);
    let body = if trailing { &raw[..raw.len() - 1] } else { raw };
    let args: Vec<String> = body
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut out = r.args(&args).join("\0").into_bytes();
    if trailing {
        out.push(0);
    }
    out
}

/// Command lines and log messages, where secrets stand.
fn redact_snapshot(r: &mut Redactor, mut s: Snapshot) -> Snapshot {
    for p in s.processes.iter_mut() {
        p.cmdline = r.args(&p.cmdline);
    }
    for m in s.log_messages.iter_mut() {
        m.message = String::from_utf8_lossy(&r.text(m.message.as_bytes())).into_owned();
    }
    for l in s.nsexec.iter_mut() {
        l.message = String::from_utf8_lossy(&r.text(l.message.as_bytes())).into_owned();
    }
    s
}

/// Every string of a snapshot or timeline, scrubbed of every secret found anywhere.
fn scrub<T: serde::Serialize + serde::de::DeserializeOwned>(r: &Redactor, s: T) -> T {
    fn walk(r: &Redactor, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                let out = r.scrub(s.as_bytes());
                if out != s.as_bytes() {
                    *s = String::from_utf8_lossy(&out).into_owned();
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(r, x)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(r, x)),
            _ => {}
        }
    }
    let Ok(mut v) = serde_json::to_value(&s) else {
        return s;
    };
    walk(r, &mut v);
    serde_json::from_value(v).unwrap_or(s)
}

fn empty_snapshot() -> Snapshot {
    Snapshot::new(
        crate::model::Source::Log {
            path: String::new(),
        },
        crate::model::Host::default(),
    )
}

/// Two pieces under one name (two inputs' binaries, a config opened twice): number them.
fn dedupe_names(members: &mut [(String, Vec<u8>)]) {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (name, _) in members.iter_mut() {
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            *name = format!("{name}.{n}");
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// manifest.json, then the members, as a zstd-compressed tar.
fn write_archive(
    out: &Path,
    manifest: &Manifest,
    members: &[(String, Vec<u8>)],
) -> Result<u64, BundleError> {
    let err = |e: std::io::Error| BundleError::Write {
        path: out.display().to_string(),
        source: e,
    };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".wedge-bundle-")
        .tempfile_in(&dir)
        .map_err(err)?;
    let mtime = manifest.created_unix_ms / 1000;
    {
        let enc = zstd::Encoder::new(tmp.as_file(), 9).map_err(err)?;
        let mut tar = tar::Builder::new(enc);
        let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, data)
        };
        let mut m = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        m.push(b'\n');
        add(MANIFEST, &m).map_err(err)?;
        for (name, data) in members {
            add(name, data).map_err(err)?;
        }
        let enc = tar.into_inner().map_err(err)?;
        enc.finish().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    let size = tmp.as_file().metadata().map_err(err)?.len();
    tmp.persist(out).map_err(|e| err(e.error))?;
    Ok(size)
}

/// One input as `wedge analyze` gives it: a diagnosis, or a trace's report.
#[derive(Debug, Clone)]
pub enum Analyzed {
    Diagnosis(Diagnosis),
    Trace(crate::trace::TraceReport),
}

impl Analyzed {
    /// The catalog run on a stored snapshot; for a trace, the rules run on its timeline,
    /// with the fault capture's findings when the snapshot holds one.
    pub fn of(snapshot: Snapshot, trace: Option<crate::trace::Timeline>) -> Analyzed {
        let d = crate::analyze::diagnose_snapshot(snapshot);
        match trace {
            None => Analyzed::Diagnosis(d),
            Some(t) => {
                let crash = (!d.snapshot.processes.is_empty()).then_some(d);
                Analyzed::Trace(crate::trace::TraceReport::new((t, crash)))
            }
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        match self {
            Analyzed::Diagnosis(d) => d.findings.clone(),
            Analyzed::Trace(t) => t.findings.iter().map(|f| f.finding.clone()).collect(),
        }
    }

    /// The human report.
    pub fn render(&self, style: crate::render::Style, all: bool) -> String {
        match self {
            Analyzed::Diagnosis(d) => {
                crate::render::report(d, style, crate::render::ReportOptions { all })
            }
            Analyzed::Trace(t) => crate::trace::render::human(t),
        }
    }

    /// As a diagnosis (triage and other consumers of findings): a trace's fault capture,
    /// or an empty snapshot, with every finding of the trace.
    pub fn into_diagnosis(self) -> Diagnosis {
        match self {
            Analyzed::Diagnosis(d) => d,
            Analyzed::Trace(t) => {
                let findings = t.findings.into_iter().map(|f| f.finding).collect();
                let snapshot = match t.crash {
                    Some(d) => d.snapshot,
                    None => Snapshot::new(
                        crate::model::Source::Live {
                            pid: t.timeline.root,
                            stopped: false,
                            children: true,
                        },
                        crate::model::Host {
                            kernel_release: t.timeline.kernel_release.clone(),
                            ..Default::default()
                        },
                    ),
                };
                Diagnosis { snapshot, findings }
            }
        }
    }
}

/// What an argument of `wedge bundle` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Pid(i32),
    Core(PathBuf),
    Log(PathBuf),
}

/// A pid when it is all digits; otherwise a file, recognized by its content as triage
/// recognizes it: a core (plain or compressed), or a log (plain or compressed; JUnit XML is
/// text too). Err((true, why)): no such file or pid; Err((false, why)): not something to
/// bundle (a bundle, a binary that is not a core, an unreadable file).
pub fn classify(arg: &str) -> Result<Spec, (bool, String)> {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        return arg
            .parse()
            .map(Spec::Pid)
            .map_err(|_| (true, format!("{arg}: not a pid")));
    }
    let path = PathBuf::from(arg);
    if !path.exists() {
        return Err((true, format!("{arg}: no such file")));
    }
    use crate::triage::scan::{Kind, classify_file};
    match classify_file(&path) {
        Ok(Kind::Core) => Ok(Spec::Core(path)),
        Ok(Kind::Log | Kind::Junit) => Ok(Spec::Log(path)),
        Ok(Kind::Bundle) => Err((
            false,
            format!("{arg}: already a bundle (read it with wedge analyze)"),
        )),
        Ok(Kind::Binary) => Err((false, format!("{arg}: neither a core nor text"))),
        Err(e) => Err((false, format!("{arg}: {e}"))),
    }
}
