//! wedge's entry point: parse the command line, run the job, map the outcome to an exit code.

mod cli;

use clap::Parser;
use cli::{
    AnalyzeArgs, BundleArgs, Cli, Command, ConfirmArgs, CoreArgs, DemoArgs, DiagnoseArgs, LogArgs,
    SignaturesArgs, TriageArgs,
};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wedge::model::Diagnosis;
use wedge::render::{self, ReportOptions, Style};
use wedge::source::live::{self, CaptureError, CaptureOptions};

/// Exit codes, as documented in the README and `wedge --help`.
mod exit {
    pub const CLEAN: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const NOT_PERMITTED: u8 = 4;
    pub const FAILURE: u8 = 5;
    /// triage: generic or unknown failures, no known bug.
    pub const UNKNOWN_FAILURES: u8 = 6;
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // First signal: finish safely (resume everything) and exit 130. Second: exit at once.
        let _ =
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&interrupted));
        let _ = signal_hook::flag::register(sig, Arc::clone(&interrupted));
    }
    match cli.command {
        Command::Diagnose(args) => diagnose(args, interrupted),
        Command::Core(args) => core(args),
        Command::Log(args) => log(args),
        Command::Signatures(args) => signatures(args),
        Command::Run(args) => run(args, interrupted),
        Command::Trace(args) => trace(args, interrupted),
        Command::Confirm(args) => confirm(args, interrupted),
        Command::Demo(args) => demo(args, interrupted),
        Command::Bundle(args) => bundle(args, interrupted),
        Command::Analyze(args) => analyze(args),
        Command::Triage(args) => triage(args, interrupted),
    }
}

/// Capture settings of the commands that take no capture options (`run`, `bundle`): the
/// defaults of `diagnose`.
fn default_capture(interrupted: Arc<AtomicBool>) -> CaptureOptions {
    CaptureOptions {
        interrupted,
        ..CaptureOptions::default()
    }
}

/// Progress on stderr, on a terminal only.
fn bundle_progress() -> Box<dyn Fn(&str)> {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    Box::new(move |what: &str| {
        if tty {
            eprint!("\r\x1b[2Kcollecting {what}");
        }
    })
}

fn bundle(args: BundleArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    use wedge::bundle::{self, Input, InputKind, Spec};
    let mut cache = wedge::binary::BinaryCache::new();
    let mut inputs = Vec::new();
    let mut partial: Option<String> = None;
    let progress = bundle_progress();
    for arg in &args.inputs {
        let spec = match bundle::classify(arg) {
            Ok(s) => s,
            Err((true, e)) => return fail(exit::NOT_FOUND, &e),
            Err((false, e)) => return fail(exit::FAILURE, &e),
        };
        let start = std::time::Instant::now();
        progress(arg);
        let (kind, path, diagnosis) = match spec {
            Spec::Pid(pid) => {
                let opts = default_capture(Arc::clone(&interrupted));
                let capture = match live::capture(pid, &opts, &mut cache) {
                    Ok(c) => c,
                    Err(CaptureError::NotPermitted {
                        reason, partial: p, ..
                    }) => {
                        partial = Some(reason);
                        *p
                    }
                    Err(
                        e @ (CaptureError::NoSuchProcess(_) | CaptureError::ExitedDuringCapture(_)),
                    ) => return fail(exit::NOT_FOUND, &e.to_string()),
                    Err(e @ CaptureError::Interrupted) => {
                        return fail(exit::INTERRUPTED, &e.to_string());
                    }
                    Err(e) => return fail(exit::FAILURE, &e.to_string()),
                };
                (
                    InputKind::Live,
                    None,
                    wedge::analyze::diagnose_live(capture, &mut cache),
                )
            }
            Spec::Core(path) => match wedge::source::core::open(&path) {
                Ok(c) => (
                    InputKind::Core,
                    Some(path),
                    wedge::analyze::diagnose_core(c, None, args.sysroot.clone(), &mut cache),
                ),
                Err(e) => return fail(exit::FAILURE, &e.to_string()),
            },
            Spec::Log(path) => match wedge::triage::scan::scan_log(&path) {
                Ok(scan) => {
                    let d = wedge::analyze::diagnose_log(wedge::log::snapshot(scan, arg));
                    (InputKind::Log, Some(path), d)
                }
                Err(e) => return fail(exit::FAILURE, &format!("{arg}: {e}")),
            },
        };
        inputs.push(Input {
            arg: arg.clone(),
            kind,
            path,
            diagnosis,
            trace: None,
            duration: start.elapsed(),
        });
    }
    let opts = bundle::Options {
        redact: !args.no_redact,
        with_binaries: args.with_binaries,
        command: std::env::args().collect(),
        sysroot: args.sysroot.clone(),
        progress,
    };
    let written = bundle::write(&args.output, inputs, &opts);
    end_progress();
    let written = match written {
        Ok(w) => w,
        Err(e) => return fail(exit::FAILURE, &e.to_string()),
    };
    let text = if args.json {
        let inputs: Vec<serde_json::Value> = written
            .manifest
            .inputs
            .iter()
            .zip(&written.findings)
            .map(|(i, f)| serde_json::json!({"arg": i.arg, "kind": i.kind, "findings": f}))
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "path": written.path,
            "size": written.size,
            "members": written.manifest.members.len() + 1,
            "redacted": written.manifest.redacted,
            "redactions": written.manifest.redactions,
            "inputs": inputs,
            "collectors": written.manifest.collectors,
        }))
        .unwrap_or_default()
    } else {
        bundle_summary(&written)
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    match partial {
        Some(reason) => fail(exit::NOT_PERMITTED, &reason),
        None => ExitCode::from(exit::CLEAN),
    }
}

/// What `wedge bundle` wrote, in a few lines.
fn bundle_summary(w: &wedge::bundle::Written) -> String {
    let m = &w.manifest;
    let mut t = format!(
        "wrote {}: {:.1} KiB, {} members, {}\n",
        w.path.display(),
        w.size as f64 / 1024.0,
        m.members.len() + 1,
        if m.redacted {
            format!("{} value(s) redacted", m.redactions)
        } else {
            "NOT redacted (--no-redact): it may hold secrets".to_string()
        }
    );
    for (i, (input, findings)) in m.inputs.iter().zip(&w.findings).enumerate() {
        let ids: Vec<String> = findings
            .iter()
            .map(|f| format!("{} ({:?})", f.id, f.confidence).to_lowercase())
            .collect();
        t.push_str(&format!(
            "input {}: {} {}: {}\n",
            i + 1,
            input.kind,
            input.arg,
            if ids.is_empty() {
                "no findings".to_string()
            } else {
                ids.join(", ")
            }
        ));
    }
    for c in m.collectors.iter().filter(|c| c.hit_deadline) {
        t.push_str(&format!(
            "collector {:?} hit its {} ms deadline\n",
            c.name, c.deadline_ms
        ));
    }
    t.push_str(&format!(
        "analyze it anywhere with: wedge analyze {}",
        w.path.display()
    ));
    t
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    use wedge::source::bundle::{self, BundleError};
    let b = match bundle::open(&args.bundle) {
        Ok(b) => b,
        Err(e @ BundleError::Io { .. }) if !args.bundle.exists() => {
            return fail(exit::NOT_FOUND, &e.to_string());
        }
        Err(e) => return fail(exit::FAILURE, &e.to_string()),
    };
    let analyzed = b.analyzed();
    let diagnoses: Vec<Diagnosis> = analyzed
        .iter()
        .cloned()
        .map(|a| a.into_diagnosis())
        .collect();
    let traces: Vec<&wedge::trace::TraceReport> = analyzed
        .iter()
        .filter_map(|a| match a {
            wedge::bundle::Analyzed::Trace(t) => Some(t),
            _ => None,
        })
        .collect();
    let m = &b.manifest;
    let text = if args.output.json {
        serde_json::to_string_pretty(&serde_json::json!({
            "bundle": {
                "path": args.bundle,
                "wedge_version": m.wedge_version,
                "created_unix_ms": m.created_unix_ms,
                "kernel_release": m.kernel_release,
                "redacted": m.redacted,
                "inputs": m.inputs,
            },
            "diagnoses": diagnoses,
            "traces": traces,
        }))
        .unwrap_or_default()
    } else {
        let style = Style::from_choice(args.output.color.as_str());
        let mut t = format!(
            "{} {}: made by wedge {} on kernel {}, {} input(s){}\n",
            style.bold("Bundle"),
            args.bundle.display(),
            m.wedge_version,
            m.kernel_release,
            m.inputs.len(),
            if m.redacted {
                ", redacted"
            } else {
                ", not redacted"
            }
        );
        for (input, a) in m.inputs.iter().zip(&analyzed) {
            t.push_str(&format!(
                "\n{} {} {}\n",
                style.bold("Input"),
                input.kind,
                input.arg
            ));
            t.push_str(&a.render(style, args.output.all));
        }
        t
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    if diagnoses.iter().all(|d| d.findings.is_empty()) {
        ExitCode::from(exit::CLEAN)
    } else {
        ExitCode::from(exit::FINDINGS)
    }
}

fn triage(args: TriageArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    use std::io::IsTerminal;
    use wedge::triage::{self, TriageError, Verdict, db, format};
    // The database first: a bad --db fails before minutes of scanning.
    let mut history = match &args.db {
        Some(path) => match db::Db::open(path) {
            Ok(d) => Some(d),
            Err(e) => return fail(exit::FAILURE, &e.to_string()),
        },
        None => None,
    };
    let opts = triage::Options {
        sysroot: args.sysroot.clone(),
        progress: std::io::stderr().is_terminal(),
        interrupted: Some(interrupted),
    };
    let mut report = match triage::run(&args.inputs, &opts) {
        Ok(r) => r,
        Err(e @ TriageError::NotFound(_)) => return fail(exit::NOT_FOUND, &e.to_string()),
        Err(e @ TriageError::Interrupted) => return fail(exit::INTERRUPTED, &e.to_string()),
        Err(e) => return fail(exit::FAILURE, &e.to_string()),
    };
    if let Some(h) = history.as_mut()
        && let Err(e) = h.record(&mut report, &args.inputs, &db::now_rfc3339())
    {
        return fail(exit::FAILURE, &e.to_string());
    }
    for p in &report.unreadable {
        eprintln!("wedge: skipped {}: {}", p.path, p.reason);
    }
    for p in &report.errors {
        eprintln!("wedge: could not analyze {}: {}", p.path, p.reason);
    }
    let code = match report.verdict() {
        Verdict::KnownBug => exit::FINDINGS,
        Verdict::Failures => exit::UNKNOWN_FAILURES,
        Verdict::Incomplete => exit::FAILURE,
        Verdict::Clean => exit::CLEAN,
    };
    let text = match args.format {
        cli::TriageFormat::Table => format::table(&report, Style::from_choice(args.color.as_str())),
        cli::TriageFormat::Json => format::json(&report, code),
        cli::TriageFormat::Markdown => format::markdown(&report),
        cli::TriageFormat::Junit => format::junit(&report),
        cli::TriageFormat::Github => {
            eprintln!("wedge: {}", format::summary(&report));
            format::github(&report)
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{text}");
    if !text.ends_with('\n') {
        let _ = writeln!(stdout);
    }
    ExitCode::from(code)
}

fn run(args: cli::RunArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    use wedge::run::{Event, RunError, RunOptions};
    let opts = RunOptions {
        hang_after: args.hang_after,
        capture: default_capture(Arc::new(AtomicBool::new(false))),
        interrupted,
    };
    let bundle_to = args.bundle.clone();
    let json = args.json;
    let outcome = wedge::run::run(&args.command, &opts, |ev, d| {
        let what = match ev {
            Event::Crash {
                pid,
                tid,
                signo,
                addr,
                ..
            } => format!(
                "wedge: process {pid} thread {tid} took signal {signo} (addr {addr:#x}); captured before its handler ran"
            ),
            Event::Hang { idle } => format!(
                "wedge: no progress for {:.1} s (no CPU time, no thread running); captured",
                idle.as_secs_f64()
            ),
        };
        let text = if json {
            render::json(d)
        } else {
            render::report(d, Style::from_choice("auto"), ReportOptions { all: false })
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{what}\n{text}");
        if let Some(out) = &bundle_to {
            let _ = writeln!(err, "{}", run_bundle(out, d));
        }
    });
    match outcome {
        // The command's status, as a shell would give it.
        Ok(o) => ExitCode::from(o.status.clamp(0, 255) as u8),
        Err(e @ RunError::NotFound(_)) => {
            eprintln!("wedge run: {e}");
            ExitCode::from(127)
        }
        Err(e @ RunError::NoCommand) => fail(exit::USAGE, &e.to_string()),
        Err(e) => fail(exit::FAILURE, &e.to_string()),
    }
}

/// `wedge trace --bundle FILE`: the timeline and the fault's capture, bundled.
fn trace_bundle(out: &std::path::Path, report: &wedge::trace::TraceReport) -> String {
    let diagnosis = wedge::bundle::Analyzed::Trace(report.clone()).into_diagnosis();
    let arg = if report.timeline.command.is_empty() {
        report.timeline.root.to_string()
    } else {
        report.timeline.command.join(" ")
    };
    write_one_bundle(
        out,
        wedge::bundle::Input {
            arg,
            kind: wedge::bundle::InputKind::Trace,
            path: None,
            diagnosis,
            trace: Some(report.timeline.clone()),
            duration: Duration::ZERO,
        },
    )
}

/// `wedge run --bundle FILE`: the captured diagnosis, bundled; one line saying so.
fn run_bundle(out: &std::path::Path, d: &Diagnosis) -> String {
    let arg = match &d.snapshot.source {
        wedge::model::Source::Live { pid, .. } => pid.to_string(),
        _ => String::new(),
    };
    write_one_bundle(
        out,
        wedge::bundle::Input {
            arg,
            kind: wedge::bundle::InputKind::Live,
            path: None,
            diagnosis: d.clone(),
            trace: None,
            duration: Duration::ZERO,
        },
    )
}

/// Writes a bundle of one input with the defaults (redacted, no binaries); one line that
/// says where, or why not.
fn write_one_bundle(out: &std::path::Path, input: wedge::bundle::Input) -> String {
    let opts = wedge::bundle::Options {
        redact: true,
        with_binaries: false,
        command: std::env::args().collect(),
        sysroot: None,
        progress: Box::new(|_: &str| {}),
    };
    match wedge::bundle::write(out, vec![input], &opts) {
        Ok(w) => format!(
            "wedge: bundle written to {} ({} bytes)",
            w.path.display(),
            w.size
        ),
        Err(e) => format!("wedge: --bundle: {e}"),
    }
}

fn trace(args: cli::TraceArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    use wedge::ptrace::SpawnError;
    use wedge::trace::{Options, TraceError, TraceReport};
    let opts = Options {
        interrupted: Arc::clone(&interrupted),
        exec_entry: args.exec_entry,
        crash_capture: Some(wedge::run::RunOptions {
            hang_after: None,
            capture: default_capture(Arc::new(AtomicBool::new(false))),
            interrupted: Arc::clone(&interrupted),
        }),
    };
    let result = match args.pid {
        Some(pid) => wedge::trace::trace_attached(pid, &opts),
        None => wedge::trace::trace_command(&args.command, &opts),
    };
    let traced = match result {
        Ok(t) => t,
        Err(TraceError::Spawn(e @ SpawnError::NotFound(_))) => {
            eprintln!("wedge trace: {e}");
            return ExitCode::from(127);
        }
        Err(TraceError::Spawn(e @ SpawnError::NoCommand(_))) => {
            return fail(exit::USAGE, &e.to_string());
        }
        Err(e @ TraceError::NoSuchProcess(_)) => return fail(exit::NOT_FOUND, &e.to_string()),
        Err(e @ TraceError::NotPermitted(..)) => {
            return fail(exit::NOT_PERMITTED, &e.to_string());
        }
        Err(e) => return fail(exit::FAILURE, &e.to_string()),
    };
    let report = TraceReport::new(traced);
    let text = if args.json {
        serde_json::to_string_pretty(&report).unwrap_or_default()
    } else {
        wedge::trace::render::human(&report)
    };
    let _ = writeln!(std::io::stderr().lock(), "{text}");
    if let Some(out) = &args.bundle {
        let _ = writeln!(std::io::stderr().lock(), "{}", trace_bundle(out, &report));
    }
    match report.timeline.status {
        // The command's status, as a shell would give it.
        Some(s) => ExitCode::from(s.clamp(0, 255) as u8),
        None if interrupted.load(Ordering::SeqCst) => ExitCode::from(exit::INTERRUPTED),
        None => ExitCode::from(exit::CLEAN),
    }
}

/// Progress of confirmation runs on stderr, on a terminal only.
fn progress(signature: &str) -> impl Fn(&str, u32, u32) + '_ {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    move |variant, i, n| {
        if tty {
            let done = ((i - 1) * 20 / n) as usize;
            eprint!(
                "\r\x1b[2K{signature}: {variant:<9} [{}{}] run {i}/{n}",
                "#".repeat(done),
                ".".repeat(20 - done)
            );
        }
    }
}

fn end_progress() {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

fn pid_printer(on: bool) -> impl Fn(i32) {
    move |pid| {
        if on {
            eprintln!("pid {pid}");
        }
    }
}

fn confirm(args: ConfirmArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    use wedge::confirm::{self, Settings, Verdict};
    let plan = match confirm::plan_for(&args.signature) {
        Ok(p) => p,
        Err(e) => return fail(exit::USAGE, &e.to_string()),
    };
    confirm::become_subreaper();
    let on_pid = pid_printer(args.print_pids);
    let on_run = progress(plan.signature);
    let settings = Settings {
        runs: args.runs,
        timeout: args.timeout,
        interrupted: Arc::clone(&interrupted),
        on_pid: &on_pid,
        on_run: &on_run,
    };
    let result = confirm::confirm(plan, &settings);
    end_progress();
    match result {
        Ok(r) => {
            let text = if args.json {
                serde_json::to_string_pretty(&r).unwrap_or_default()
            } else {
                confirm::render(&r)
            };
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            if r.verdict == Verdict::Confirmed {
                ExitCode::from(exit::CLEAN)
            } else {
                ExitCode::from(exit::FINDINGS)
            }
        }
        Err(e) => confirm_failure(e, &interrupted),
    }
}

/// A confirmation or demo that failed: 130 when it was interrupted (also when the
/// interruption surfaced as another error, e.g. a compiler killed by the terminal's SIGINT).
fn confirm_failure(e: wedge::confirm::ConfirmError, interrupted: &AtomicBool) -> ExitCode {
    use wedge::confirm::ConfirmError;
    if matches!(e, ConfirmError::Interrupted) || interrupted.load(Ordering::SeqCst) {
        fail(exit::INTERRUPTED, &ConfirmError::Interrupted.to_string())
    } else {
        fail(exit::FAILURE, &e.to_string())
    }
}

fn demo(args: DemoArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    use wedge::confirm::{self, Settings};
    confirm::become_subreaper();
    let on_pid = pid_printer(args.print_pids);
    let on_run = |variant: &str, i: u32, n: u32| progress("confirm")(variant, i, n);
    let settings = Settings {
        runs: args.runs,
        timeout: args.timeout,
        interrupted: Arc::clone(&interrupted),
        on_pid: &on_pid,
        on_run: &on_run,
    };
    let result = wedge::demo::run(&settings, Style::from_choice(args.color.as_str()));
    end_progress();
    match result {
        Ok(cases) if cases.iter().all(|c| c.shown) => ExitCode::from(exit::CLEAN),
        Ok(_) => ExitCode::from(exit::FINDINGS),
        Err(e) => confirm_failure(e, &interrupted),
    }
}

/// `diagnose --confirm`: the confirmation of each matched signature that has a probe.
fn confirm_findings(
    d: &Diagnosis,
    interrupted: &Arc<AtomicBool>,
) -> Result<Vec<wedge::confirm::Report>, wedge::confirm::ConfirmError> {
    use wedge::confirm::{self, Settings};
    let mut ids: Vec<&str> = d.findings.iter().map(|f| f.id.as_str()).collect();
    ids.dedup();
    let mut out = Vec::new();
    let on_pid = |_| {};
    for id in ids {
        let Some(plan) = confirm::plan(id) else {
            continue;
        };
        if out.iter().any(|r: &confirm::Report| r.signature == id) {
            continue;
        }
        confirm::become_subreaper();
        let on_run = progress(plan.signature);
        let settings = Settings {
            runs: 2,
            timeout: Duration::from_secs(5),
            interrupted: Arc::clone(interrupted),
            on_pid: &on_pid,
            on_run: &on_run,
        };
        let r = confirm::confirm(plan, &settings);
        end_progress();
        out.push(r?);
    }
    Ok(out)
}

fn signatures(args: SignaturesArgs) -> ExitCode {
    use wedge::signatures::{catalog, catalog_markdown};
    let text = if args.markdown {
        catalog_markdown()
    } else if args.json {
        let list: Vec<serde_json::Value> = catalog()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "title": s.title, "kind": if s.specific { "known bug" } else { "generic" },
                    "uses": s.uses, "affected": s.affected, "fixed_in": s.fixed_in,
                    "workaround": s.workaround, "references": s.references, "probe": s.probe,
                })
            })
            .collect();
        serde_json::to_string_pretty(&list).unwrap_or_default()
    } else {
        let style = Style::from_choice("auto");
        let mut t = style.table(&["ID", "KIND", "TITLE", "FIXED IN", "PROBE"]);
        for s in catalog() {
            t.add_row(vec![
                s.id,
                if s.specific { "known bug" } else { "generic" },
                s.title,
                s.fixed_in.unwrap_or(""),
                s.probe.unwrap_or(""),
            ]);
        }
        t.to_string()
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    ExitCode::from(exit::CLEAN)
}

fn core(args: CoreArgs) -> ExitCode {
    use wedge::source::core::{self, CoreError};
    let parsed = match core::open(&args.core) {
        Ok(c) => c,
        Err(e @ CoreError::Io { .. }) => {
            let code = if args.core.exists() {
                exit::FAILURE
            } else {
                exit::NOT_FOUND
            };
            return fail(code, &e.to_string());
        }
        Err(e) => return fail(exit::FAILURE, &e.to_string()),
    };
    if let Some(exe) = &args.exe
        && !exe.exists()
    {
        return fail(
            exit::NOT_FOUND,
            &format!("--exe {}: no such file", exe.display()),
        );
    }
    let mut cache = wedge::binary::BinaryCache::new();
    let d = wedge::analyze::diagnose_core(parsed, args.exe, args.sysroot, &mut cache);
    emit(&d, &args.output, &[]);
    if d.findings.is_empty() {
        ExitCode::from(exit::CLEAN)
    } else {
        ExitCode::from(exit::FINDINGS)
    }
}

fn log(args: LogArgs) -> ExitCode {
    let (scan, name) = if args.file == "-" {
        match wedge::log::scan_reader(std::io::stdin().lock()) {
            Ok(s) => (s, "<stdin>".to_string()),
            Err(e) => return fail(exit::FAILURE, &format!("reading standard input: {e}")),
        }
    } else {
        let path = std::path::Path::new(&args.file);
        match wedge::log::scan_file(path) {
            Ok(s) => (s, args.file.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return fail(exit::NOT_FOUND, &format!("{}: no such file", args.file));
            }
            Err(e) => return fail(exit::FAILURE, &format!("{}: {e}", args.file)),
        }
    };
    if scan.is_empty() {
        eprintln!(
            "wedge: nothing traceback-like in {name} ({} lines): no Go panic, fatal error, goroutine dump, race report, nsexec or error line",
            scan.lines
        );
    }
    let d = wedge::analyze::diagnose_log(wedge::log::snapshot(scan, &name));
    emit(&d, &args.output, &[]);
    if d.findings.is_empty() {
        ExitCode::from(exit::CLEAN)
    } else {
        ExitCode::from(exit::FINDINGS)
    }
}

fn diagnose(args: DiagnoseArgs, interrupted: Arc<AtomicBool>) -> ExitCode {
    let opts = CaptureOptions {
        children: !args.no_children,
        stop: !args.no_stop,
        max_stack_bytes: args.max_stack_bytes,
        stop_timeout: Duration::from_millis(args.stop_timeout_ms),
        hold: args.debug_hold_ms.map(Duration::from_millis),
        interrupted: Arc::clone(&interrupted),
        max_goroutine_stack_bytes: args.max_goroutine_stack_bytes,
    };
    let mut cache = wedge::binary::BinaryCache::new();
    let (capture, failure) = match live::capture(args.pid, &opts, &mut cache) {
        Ok(c) => (c, None),
        Err(CaptureError::NotPermitted {
            reason, partial, ..
        }) => (*partial, Some((exit::NOT_PERMITTED, reason))),
        Err(e @ (CaptureError::NoSuchProcess(_) | CaptureError::ExitedDuringCapture(_))) => {
            return fail(exit::NOT_FOUND, &e.to_string());
        }
        Err(e @ CaptureError::Interrupted) => return fail(exit::INTERRUPTED, &e.to_string()),
        Err(e) => return fail(exit::FAILURE, &e.to_string()),
    };
    let diagnosis = wedge::analyze::diagnose_live(capture, &mut cache);
    let mut confirmations = Vec::new();
    if args.confirm {
        match confirm_findings(&diagnosis, &interrupted) {
            Ok(c) => confirmations = c,
            Err(e @ wedge::confirm::ConfirmError::Interrupted) => {
                emit(&diagnosis, &args.output, &[]);
                return fail(exit::INTERRUPTED, &e.to_string());
            }
            // The diagnosis stands; say why it could not be confirmed.
            Err(e) => eprintln!("wedge: --confirm: {e}"),
        }
    }
    emit(&diagnosis, &args.output, &confirmations);
    match failure {
        Some((code, reason)) => fail(code, &reason),
        None if diagnosis.findings.is_empty() => ExitCode::from(exit::CLEAN),
        None => ExitCode::from(exit::FINDINGS),
    }
}

fn emit(d: &Diagnosis, out: &cli::OutputArgs, confirmations: &[wedge::confirm::Report]) {
    let text = if out.json && confirmations.is_empty() {
        render::json(d)
    } else if out.json {
        // The optional "confirmations" field beside the findings (docs/json.md).
        let mut v = serde_json::to_value(d).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "confirmations".into(),
                serde_json::to_value(confirmations).unwrap_or_default(),
            );
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        let style = Style::from_choice(out.color.as_str());
        let mut t = render::report(d, style, ReportOptions { all: out.all });
        if !confirmations.is_empty() {
            t.push_str(&format!("\n{}\n", style.bold("Confirmation on this host")));
            for c in confirmations {
                t.push_str(&wedge::confirm::render(c));
            }
        }
        t
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`wedge … | head`) is not an error worth a message.
    let _ = writeln!(stdout, "{text}");
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("wedge: {message}");
    ExitCode::from(code)
}
