//! The command line: one subcommand per job.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "wedge",
    version,
    about = "Why is this container-tooling process hung or crashed? wedge shows, and proves it.",
    after_help = "Exit codes (diagnose, core): 0 nothing found, 1 findings reported, 2 bad usage, \
                  3 target not found, 4 not permitted (a partial report was printed), \
                  5 other failure, 130 interrupted.\n\
                  confirm: 0 confirmed on this host, 1 not confirmed (not reproducible here, \
                  or the fixed variant fails too), 2 unknown signature or one without a probe, \
                  5 the probe cannot be built or started, 130 interrupted.\n\
                  demo: 0 every case showed its finding, 1 some case did not, 5 failure, \
                  130 interrupted. Every process confirm and demo start is killed and reaped.\n\
                  bundle: 0 written, 3 an input not found, 4 written but a live capture was \
                  not permitted (partial), 5 failure. analyze: 0 no findings, 1 findings, \
                  3 no such file, 5 not a bundle or a damaged one.\n\
                  run, trace: the command's exit status (128 + N for signal N, 127 not found); \
                  trace also 2 bad usage, 3 -p process not found, 4 not permitted to attach, \
                  5 failure, 130 interrupted before the command ended.\n\
                  triage: 0 nothing found, 1 a known bug found, 6 only generic or unknown \
                  failures found, 2 bad usage, 3 an input not found, 5 failure (a --db that is \
                  not a wedge history, or only unanalyzable artifacts), 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Freeze a live process tree briefly, copy what matters, resume it, and explain it.
    Diagnose(DiagnoseArgs),
    /// The same analysis from an ELF core file (native or Go).
    Core(CoreArgs),
    /// Find Go panics, goroutine dumps, race reports and runc/nsexec lines in a log (a file,
    /// or `-` for standard input) and explain them.
    Log(LogArgs),
    /// The catalog of known bugs and generic hang shapes wedge recognizes.
    Signatures(SignaturesArgs),
    /// Run a command under supervision: diagnose it when any process of its tree takes a
    /// fault signal (before its handler runs) or stops making progress. The report goes to
    /// stderr; the command's exit status passes through.
    Run(RunArgs),
    /// Trace a command (or attach to a running tree with -p) and record every process and
    /// thread it creates (clone flags, thread counts, namespaces), every exec (memfd seals)
    /// and exit; report the tree and the risky patterns of the known signatures, even on a
    /// run that did not hang. The report goes to stderr; the command's exit status passes
    /// through (127 command not found; with -p: the process's status, or 0 if unknown).
    Trace(TraceArgs),
    /// Prove a signature on this host: run its probe N times in its buggy and its fixed
    /// variant, diagnose each run, and give a verdict.
    Confirm(ConfirmArgs),
    /// Start each built-in buggy probe, diagnose it live, show the findings, confirm them,
    /// and clean up every process started.
    Demo(DemoArgs),
    /// Make a support bundle: capture or read each input (a pid, a core, a log), collect
    /// what a maintainer needs (/proc files, host facts, runtime versions, build-ids, logs
    /// and configs), redact secrets, and write one .tar.zst.
    Bundle(BundleArgs),
    /// Analyze a support bundle offline: the same findings, on any machine.
    Analyze(AnalyzeArgs),
    /// Scan CI artifacts (directories recursively: logs, cores, JUnit XML, bundles), run
    /// every analyzer, and group the failures by a stable fingerprint: known bugs, generic
    /// shapes and unknown failures.
    #[command(
        after_help = "Exit codes: 0 nothing found, 1 a known bug found (whatever else \
                  was), 6 generic or unknown failures only, 2 bad usage, 3 an input not found, \
                  5 failure (a --db that is not a wedge history, or nothing found while some \
                  artifacts could not be analyzed), 130 interrupted. Unreadable files are skipped \
                  with a warning."
    )]
    Triage(TriageArgs),
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// What to collect: pids (each with its descendants), core files and log files.
    #[arg(required = true, value_name = "PID|CORE|LOG")]
    pub inputs: Vec<String>,
    /// The bundle to write (conventionally FILE.tar.zst).
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
    /// Also copy the binaries themselves (by default only their build-ids and buildinfo).
    #[arg(long)]
    pub with_binaries: bool,
    /// Keep secrets: do not redact environment variables, arguments and config values
    /// whose names look secret.
    #[arg(long)]
    pub no_redact: bool,
    /// For cores: where the binaries of the machine the core came from are.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<std::path::PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The bundle (`wedge bundle -o FILE`).
    pub bundle: std::path::PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriageFormat {
    /// A table for a terminal.
    Table,
    /// One JSON document (docs/json.md).
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
    /// JUnit XML: one test case per fingerprint.
    Junit,
    /// GitHub Actions annotations (`::error file=…,title=…::…`).
    Github,
}

#[derive(Debug, Args)]
pub struct TriageArgs {
    /// Files and directories to scan.
    #[arg(required = true, value_name = "PATH")]
    pub inputs: Vec<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = TriageFormat::Table)]
    pub format: TriageFormat,
    /// Keep history in this SQLite database (created if missing): each fingerprint's first
    /// seen, last seen and count across runs.
    #[arg(long, value_name = "FILE")]
    pub db: Option<std::path::PathBuf>,
    /// A directory holding the files of the machine the cores came from.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<std::path::PathBuf>,
    /// Colour the table: auto (terminal only, NO_COLOR honoured), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    wedge::confirm::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The signature id (see `wedge signatures`; only those with a probe can be confirmed).
    pub signature: String,
    /// Runs of each variant.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Upper bound on each run: 500ms, 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DUR")]
    pub timeout: std::time::Duration,
    /// Print one JSON document (docs/json.md) instead of the text.
    #[arg(long)]
    pub json: bool,
    /// Testing aid: print "pid N" on stderr for every process started.
    #[arg(long, hide = true)]
    pub print_pids: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Runs of each variant in each confirmation.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Upper bound on each confirmation run: 500ms, 5s, 1m.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DUR")]
    pub timeout: std::time::Duration,
    /// Colour: auto (terminal only, NO_COLOR honoured), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Testing aid: print "pid N" on stderr for every process started.
    #[arg(long, hide = true)]
    pub print_pids: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Diagnose the tree when it has used no CPU and no thread has run for this long
    /// (`500ms`, `30s`, `5m`). Without it, only crashes are caught.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub hang_after: Option<std::time::Duration>,
    /// The report as JSON (on stderr, like the human report).
    #[arg(long)]
    pub json: bool,
    /// When a crash or hang is captured, also write a support bundle of it to FILE.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Attach to this running process and all its descendants (their existing threads
    /// included) instead of starting a command; follows them until the process exits.
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        conflicts_with = "command"
    )]
    pub pid: Option<i32>,
    /// The report (timeline and findings) as JSON, on stderr.
    #[arg(long)]
    pub json: bool,
    /// Also stop at every execve/execveat entry (a seccomp filter installed in the command):
    /// setuid and file-capability helpers are let go before their exec, and exec targets are
    /// seen before they run. Caveat: the filter outlives the trace, and once wedge is gone
    /// (killed, interrupted, or the command's root exited while others run on) the kernel
    /// fails every exec in those processes with ENOSYS.
    #[arg(long, conflicts_with = "pid")]
    pub exec_entry: bool,
    /// Also write a support bundle (`wedge analyze` reads it): the timeline, the fault's
    /// capture if one happened, host facts and runtime versions, redacted.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, value_name = "CMD", required_unless_present = "pid")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct SignaturesArgs {
    /// The catalog as JSON.
    #[arg(long)]
    pub json: bool,
    /// The catalog as Markdown (docs/signatures.md is this output).
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The log file, or `-` to read standard input.
    pub file: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CoreArgs {
    /// The core file.
    pub core: std::path::PathBuf,
    /// The program that dumped it, if not at the path the core names.
    #[arg(long, value_name = "PATH")]
    pub exe: Option<std::path::PathBuf>,
    /// A directory holding the files of the machine the core came from (binaries and
    /// libraries are looked up under it).
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        }
    }
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the snapshot and findings as JSON instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Show every thread and every mapping, not only the notable ones.
    #[arg(long)]
    pub all: bool,
    /// Colour the report: auto (terminal only, NO_COLOR honoured), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The process to look at; its descendants are included unless --no-children.
    pub pid: i32,
    /// Capture only this process, not its descendants.
    #[arg(long)]
    pub no_children: bool,
    /// Do not stop anything: report only what /proc shows (no registers, no stacks).
    #[arg(long)]
    pub no_stop: bool,
    /// Upper bound on the bytes of each thread's stack copied during the freeze.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    pub max_stack_bytes: usize,
    /// Upper bound on the bytes of each goroutine's stack copied during the freeze.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub max_goroutine_stack_bytes: usize,
    /// How long to wait for all threads to stop before giving up on the stragglers.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub stop_timeout_ms: u64,
    /// After the findings, confirm each matched signature that has a probe (2 runs of each
    /// variant, 5 s timeout) and add the verdicts to the report and the JSON.
    #[arg(long)]
    pub confirm: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Testing aid: keep the tree stopped this long after the copy.
    #[arg(long, hide = true, value_name = "MS")]
    pub debug_hold_ms: Option<u64>,
}
