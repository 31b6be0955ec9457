//! wedge's entry point: parse the command line, run the job, map the outcome to an exit code.

mod cli;

use clap::Parser;
use cli::{
    Cli, Command, ConfirmArgs, CoreArgs, DemoArgs, DiagnoseArgs, LogArgs, SignaturesArgs,
    TriageArgs,
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
        Command::Confirm(args) => confirm(args, interrupted),
        Command::Demo(args) => demo(args, interrupted),
        Command::Triage(args) => triage(args, interrupted),
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
        capture: CaptureOptions {
            children: true,
            stop: true,
            max_stack_bytes: 256 * 1024,
            stop_timeout: Duration::from_millis(500),
            hold: None,
            interrupted: Arc::new(AtomicBool::new(false)),
            max_goroutine_stack_bytes: 64 * 1024,
        },
        interrupted,
    };
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
