//! wedge's entry point: parse the command line, run the job, map the outcome to an exit code.

mod cli;

use clap::Parser;
use cli::{Cli, Command, CoreArgs, DiagnoseArgs, LogArgs, SignaturesArgs};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use wedge::model::Diagnosis;
use wedge::render::{self, ReportOptions, Style};
use wedge::source::live::{self, CaptureError, CaptureOptions};

/// Exit codes, as documented in the README and `wedge --help`.
mod exit {
    pub const CLEAN: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const NOT_FOUND: u8 = 3;
    pub const NOT_PERMITTED: u8 = 4;
    pub const FAILURE: u8 = 5;
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
    }
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
    emit(&d, &args.output);
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
    emit(&d, &args.output);
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
        interrupted,
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
    emit(&diagnosis, &args.output);
    match failure {
        Some((code, reason)) => fail(code, &reason),
        None if diagnosis.findings.is_empty() => ExitCode::from(exit::CLEAN),
        None => ExitCode::from(exit::FINDINGS),
    }
}

fn emit(d: &Diagnosis, out: &cli::OutputArgs) {
    let text = if out.json {
        render::json(d)
    } else {
        render::report(
            d,
            Style::from_choice(out.color.as_str()),
            ReportOptions { all: out.all },
        )
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`wedge … | head`) is not an error worth a message.
    let _ = writeln!(stdout, "{text}");
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("wedge: {message}");
    ExitCode::from(code)
}
