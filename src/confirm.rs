//! `wedge confirm` and the runs behind `wedge demo` and `wedge diagnose --confirm`: run a
//! signature's probe (probes/) many times in its buggy and its fixed variant, each run under
//! a timeout, and let wedge itself decide each run's outcome.
//!
//! A run is watched until it exits, until it hangs (every thread of its process tree off the
//! CPU for [`SETTLE`], after its ready line where it prints one) or until the timeout. A hang
//! (or a timeout) is captured live in-process and diagnosed; a crash of a variant that
//! expects one is diagnosed from the core it dumps into a temporary directory (falling back
//! to the Go runtime's panic output when the kernel's core_pattern does not write plain
//! files). "reproduced" means the signature's own id is among the findings; "clean" means the
//! run finished normally, or stayed healthy until it was diagnosed for a variant that holds
//! by design; anything else is an "other failure".
//!
//! Every process a run starts is killed (SIGKILL, by pid, deepest first) and reaped when the
//! run ends, also when it ends early because SIGINT/SIGTERM set the interrupt flag.

use crate::binary::BinaryCache;
use crate::hostcheck::{self, CowCheck};
use crate::model::{Diagnosis, Finding};
use crate::probes::{self, ProbeError};
use crate::source::live::{self, CaptureError, CaptureOptions, procfs};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long every thread of a run must stay off the CPU before the run counts as hung.
pub const SETTLE: Duration = Duration::from_millis(300);
/// How often a run is looked at.
const POLL: Duration = Duration::from_millis(25);

/// One way of running a probe.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The probe's arguments.
    pub args: &'static [&'static str],
    /// A stdout line prefix the probe prints once it is set up; the run cannot count as
    /// hung before it.
    pub ready: Option<&'static str>,
    /// The probe stays alive by design once done (a healthy wait): being diagnosed without
    /// the signature's finding is then clean, not a hang of another kind.
    pub holds: bool,
    /// The buggy variant dies of the bug: it runs with core dumps on (GOTRACEBACK=crash,
    /// RLIMIT_CORE unlimited, in a temporary directory) and its core is diagnosed.
    pub crashes: bool,
    /// Fallback when no core file appears: the faulting goroutine's first frame in the Go
    /// panic output contains this.
    pub panic_frame: Option<&'static str>,
}

const fn hang(args: &'static [&'static str], holds: bool) -> Variant {
    Variant {
        args,
        ready: Some("ready "),
        holds,
        crashes: false,
        panic_frame: None,
    }
}

const fn exits(args: &'static [&'static str]) -> Variant {
    Variant {
        args,
        ready: None,
        holds: false,
        crashes: false,
        panic_frame: None,
    }
}

/// How a signature's probe is run to confirm it and to demonstrate it.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub signature: &'static str,
    pub probe: &'static str,
    pub buggy: Variant,
    pub fixed: Variant,
    /// An emulation of a bug this host may not have (reported separately).
    pub emulation: Option<Variant>,
    /// What `wedge demo` starts and diagnoses live.
    pub demo: Variant,
    /// Said by `wedge demo` about its live case, when it is not simply the buggy variant.
    pub demo_note: Option<&'static str>,
}

/// The plans, one per signature whose catalog entry names a probe.
pub const PLANS: &[Plan] = &[
    Plan {
        signature: "clone-fork-mix",
        probe: "clone_fork",
        buggy: hang(&["buggy"], false),
        fixed: hang(&["fixed"], true),
        emulation: None,
        demo: hang(&["buggy"], false),
        demo_note: None,
    },
    Plan {
        signature: "memfd-shared-stage",
        probe: "memfd_stage",
        buggy: Variant {
            ready: Some("ready "),
            ..exits(&["buggy"])
        },
        fixed: Variant {
            ready: Some("ready "),
            ..exits(&["fixed"])
        },
        emulation: Some(hang(&["shared"], false)),
        demo: hang(&["shared"], false),
        demo_note: Some(
            "mode `shared`: the pre-5.5 kernel bug emulated with a MAP_SHARED page, so it hangs on any kernel",
        ),
    },
    Plan {
        signature: "nil-reader-race",
        probe: "reader_race",
        buggy: Variant {
            crashes: true,
            panic_frame: Some(".(*readerAtCloser).ReadAt("),
            ..exits(&["crash"])
        },
        fixed: exits(&["fixed"]),
        emulation: None,
        demo: hang(&["hold"], false),
        demo_note: Some(
            "mode `hold`: five goroutines parked inside the unlocked ReadAt, the moment before the crash",
        ),
    },
    Plan {
        signature: "orphan-pipe-wait",
        probe: "pipe_waits",
        buggy: hang(&["orphan"], false),
        fixed: hang(&["fixed"], true),
        emulation: None,
        demo: hang(&["orphan"], false),
        demo_note: None,
    },
    Plan {
        signature: "wait-cycle",
        probe: "pipe_waits",
        buggy: hang(&["cycle"], false),
        // A parent waiting on a child that can still write: a wait, not a cycle.
        fixed: hang(&["fixed"], true),
        emulation: None,
        demo: hang(&["cycle"], false),
        demo_note: None,
    },
];

pub fn plan(signature: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.signature == signature)
}

/// The signatures that have a probe, in catalog order.
pub fn with_probe() -> Vec<&'static str> {
    crate::signatures::catalog()
        .iter()
        .filter(|s| s.probe.is_some() && plan(s.id).is_some())
        .map(|s| s.id)
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("no signature {id:?}; signatures with a probe: {}", .with_probe.join(", "))]
    UnknownSignature { id: String, with_probe: Vec<String> },
    #[error("signature {id:?} has no probe to confirm it with; signatures with a probe: {}", .with_probe.join(", "))]
    NoProbe { id: String, with_probe: Vec<String> },
    #[error(transparent)]
    Build(#[from] ProbeError),
    #[error("cannot start probe {probe}: {source}")]
    Spawn {
        probe: String,
        source: std::io::Error,
    },
    #[error("interrupted: every process started was killed and reaped")]
    Interrupted,
}

/// Looks up the plan of `signature`, with the errors `wedge confirm` prints.
pub fn plan_for(signature: &str) -> Result<&'static Plan, ConfirmError> {
    let with_probe = with_probe().into_iter().map(String::from).collect();
    if !crate::signatures::catalog()
        .iter()
        .any(|s| s.id == signature)
    {
        return Err(ConfirmError::UnknownSignature {
            id: signature.to_string(),
            with_probe,
        });
    }
    plan(signature).ok_or_else(|| ConfirmError::NoProbe {
        id: signature.to_string(),
        with_probe,
    })
}

/// Where built probes are cached: `$WEDGE_PROBE_CACHE`; else `target/probes` of the
/// checkout when this wedge runs from one (`…/target/{debug,release}/wedge`); else
/// `$XDG_CACHE_HOME/wedge/probes` or `~/.cache/wedge/probes`; else a directory under /tmp.
pub fn probe_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WEDGE_PROBE_CACHE") {
        return PathBuf::from(d);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.file_name().is_some_and(|n| n == "target")
                && dir.parent().is_some_and(|p| p.join("Cargo.toml").exists())
            {
                return dir.join("probes");
            }
        }
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("wedge/probes");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".cache/wedge/probes");
    }
    // SAFETY: getuid has no preconditions.
    PathBuf::from(format!("/tmp/wedge-probes-{}", unsafe { libc::getuid() }))
}

/// Makes this process the reaper of orphans of the processes it starts, so that a probe's
/// grandchild whose parent was killed first is reaped here, not left as a zombie under a
/// pid 1 that may never reap.
pub fn become_subreaper() {
    // SAFETY: prctl with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// The outcome of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Reproduced,
    Clean,
    Other,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub outcome: Outcome,
    /// How wedge decided, in a few words.
    pub detail: String,
    pub millis: u64,
}

/// One run's result, with the diagnosis when one was made.
pub struct RunResult {
    pub record: RunRecord,
    pub diagnosis: Option<Diagnosis>,
}

/// Settings of a confirmation.
pub struct Settings<'a> {
    pub runs: u32,
    pub timeout: Duration,
    pub interrupted: Arc<AtomicBool>,
    /// Called with every pid a run's process tree had, as it is first seen.
    pub on_pid: &'a dyn Fn(i32),
    /// Called before each run: (variant name, run number from 1, runs).
    pub on_run: &'a dyn Fn(&str, u32, u32),
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantStats {
    pub variant: &'static str,
    pub args: Vec<&'static str>,
    pub runs: u32,
    pub reproduced: u32,
    pub clean: u32,
    pub other: u32,
    /// reproduced / runs.
    pub rate: f64,
    /// 95% Wilson score interval of the rate.
    pub interval95: [f64; 2],
    pub outcomes: Vec<RunRecord>,
}

impl VariantStats {
    fn new(variant: &'static str, v: &Variant, outcomes: Vec<RunRecord>) -> VariantStats {
        let count = |o| outcomes.iter().filter(|r| r.outcome == o).count() as u32;
        let runs = outcomes.len() as u32;
        let reproduced = count(Outcome::Reproduced);
        VariantStats {
            variant,
            args: v.args.to_vec(),
            runs,
            reproduced,
            clean: count(Outcome::Clean),
            other: count(Outcome::Other),
            rate: if runs == 0 {
                0.0
            } else {
                f64::from(reproduced) / f64::from(runs)
            },
            interval95: wilson(reproduced, runs),
            outcomes,
        }
    }
}

/// The 95% Wilson score interval of `k` successes in `n` trials ([0, 1] when n = 0).
pub fn wilson(k: u32, n: u32) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (k, n) = (f64::from(k), f64::from(n));
    let z = 1.959_963_984_540_054_f64;
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The buggy variant reproduces, the fixed one is clean.
    Confirmed,
    /// The buggy variant does not reproduce here.
    NotReproducible,
    /// The fixed variant reproduces or fails as well.
    FixedFailsToo,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed on this host",
            Verdict::NotReproducible => "not reproducible here",
            Verdict::FixedFailsToo => "the fixed variant fails too (investigate)",
        }
    }
}

/// A confirmation, as `wedge confirm --json` prints it (docs/json.md).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub signature: &'static str,
    pub probe: &'static str,
    pub kernel_release: String,
    pub runs: u32,
    pub timeout_ms: u64,
    pub buggy: VariantStats,
    pub fixed: VariantStats,
    pub verdict: Verdict,
    /// The verdict in words.
    pub verdict_text: String,
    /// Why, when the verdict is not `confirmed`.
    pub reason: Option<String>,
    /// The host check the verdict consulted (memfd-shared-stage): cow_kept, cow_broken or
    /// unsupported: why.
    pub host_check: Option<String>,
    /// The emulation of a bug this host may lack, when the signature has one.
    pub emulation: Option<VariantStats>,
    /// "mechanism confirmed under emulation", or why not.
    pub emulation_verdict: Option<String>,
}

/// Builds the plan's probe and runs the confirmation.
pub fn confirm(plan: &Plan, s: &Settings) -> Result<Report, ConfirmError> {
    let exe = probes::build(plan.probe, &probe_cache_dir())?;
    confirm_with(plan, &exe, s)
}

/// [`confirm`] with the probe already built.
pub fn confirm_with(plan: &Plan, exe: &Path, s: &Settings) -> Result<Report, ConfirmError> {
    let mut cache = BinaryCache::new();
    let mut series = |name: &'static str, v: &Variant| -> Result<VariantStats, ConfirmError> {
        let mut out = Vec::new();
        for i in 1..=s.runs {
            (s.on_run)(name, i, s.runs);
            out.push(run_once(plan, exe, v, s, &mut cache)?.record);
        }
        Ok(VariantStats::new(name, v, out))
    };
    let buggy = series("buggy", &plan.buggy)?;
    let fixed = series("fixed", &plan.fixed)?;
    let emulation = match &plan.emulation {
        Some(v) => Some(series("emulation", v)?),
        None => None,
    };
    let cow = (plan.signature == "memfd-shared-stage").then(hostcheck::memfd_future_write_cow);
    let host_check = cow.as_ref().map(|c| match c {
        CowCheck::CowKept => "cow_kept".to_string(),
        CowCheck::CowBroken => "cow_broken".to_string(),
        CowCheck::Unsupported(why) => format!("unsupported: {why}"),
    });
    let kernel_release = hostcheck::kernel_release();
    let first_other = |v: &VariantStats| {
        v.outcomes
            .iter()
            .find(|r| r.outcome == Outcome::Other)
            .map(|r| r.detail.clone())
    };
    let (verdict, reason) = if fixed.reproduced > 0 || fixed.other > 0 {
        let why = if fixed.reproduced > 0 {
            format!(
                "the fixed variant reproduced the finding in {} of {} runs",
                fixed.reproduced, fixed.runs
            )
        } else {
            format!(
                "the fixed variant failed in {} of {} runs: {}",
                fixed.other,
                fixed.runs,
                first_other(&fixed).unwrap_or_default()
            )
        };
        (Verdict::FixedFailsToo, Some(why))
    } else if buggy.reproduced == 0 {
        let why = match &cow {
            Some(CowCheck::CowKept) => format!(
                "kernel {kernel_release} keeps copy-on-write for private mappings of memfds sealed with F_SEAL_FUTURE_WRITE (the host check), so the stages never share their globals and the buggy seals cannot hang here"
            ),
            Some(CowCheck::Unsupported(why)) => {
                format!("the host check cannot run on kernel {kernel_release}: {why}")
            }
            _ => match first_other(&buggy) {
                Some(d) => format!(
                    "the buggy variant never showed the finding in {} runs ({} clean, {} other failures, e.g. {d})",
                    buggy.runs, buggy.clean, buggy.other
                ),
                None => format!(
                    "the buggy variant ran clean in all {} runs within {} ms",
                    buggy.runs,
                    s.timeout.as_millis()
                ),
            },
        };
        (Verdict::NotReproducible, Some(why))
    } else {
        (Verdict::Confirmed, None)
    };
    let emulation_verdict = emulation.as_ref().map(|e| {
        if e.reproduced > 0 && fixed.reproduced == 0 && fixed.other == 0 {
            format!(
                "mechanism confirmed under emulation ({} of {} runs)",
                e.reproduced, e.runs
            )
        } else {
            format!(
                "the emulation did not confirm the mechanism ({} of {} runs reproduced)",
                e.reproduced, e.runs
            )
        }
    });
    Ok(Report {
        signature: plan.signature,
        probe: plan.probe,
        kernel_release,
        runs: s.runs,
        timeout_ms: s.timeout.as_millis() as u64,
        buggy,
        fixed,
        verdict,
        verdict_text: verdict.text().to_string(),
        reason,
        host_check,
        emulation,
        emulation_verdict,
    })
}

/// A started probe: its stdout lines, the pids its tree had; everything killed by pid and
/// reaped on drop.
pub struct Started {
    child: Child,
    pub pid: i32,
    lines: Arc<Mutex<Vec<String>>>,
    /// (pid, start time in clock ticks): a pid is killed only while it is still that process.
    seen: Vec<(i32, u64)>,
    dir: Option<TempDir>,
    /// Killed and reaped already: its pid may belong to another process by now.
    done: bool,
}

/// A directory of one crashing run (its core and stderr), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "wedge-confirm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p)?;
        Ok(TempDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_time(pid: i32) -> Option<u64> {
    procfs::process_stat(pid).map(|s| s.start_time)
}

fn parent_of(pid: i32) -> Option<i32> {
    procfs::process_stat(pid).map(|s| s.ppid)
}

impl Started {
    /// Starts `exe` with `v`'s arguments (and, for a crashing variant, core dumps on in a
    /// temporary directory).
    pub fn start(exe: &Path, v: &Variant, on_pid: &dyn Fn(i32)) -> std::io::Result<Started> {
        let mut cmd = Command::new(exe);
        cmd.args(v.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("LC_ALL", "C");
        let dir = if v.crashes {
            let dir = TempDir::new()?;
            cmd.current_dir(dir.path())
                .env("GOTRACEBACK", "crash")
                .stderr(std::fs::File::create(dir.path().join("stderr"))?);
            crate::probes::enable_core_dumps(&mut cmd);
            Some(dir)
        } else {
            None
        };
        // If wedge itself dies (a second Ctrl-C exits at once, or SIGKILL), the probe dies
        // with it rather than hang on as an orphan.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id() as i32;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let mut s = Started {
            child,
            pid,
            lines,
            seen: Vec::new(),
            dir,
            done: false,
        };
        s.observe(on_pid);
        Ok(s)
    }

    /// The pids of the tree now (root first); new ones are recorded and reported.
    pub fn observe(&mut self, on_pid: &dyn Fn(i32)) -> Vec<i32> {
        let mut tree = vec![self.pid];
        tree.extend(live::procfs::descendants(self.pid));
        for &p in &tree {
            if let Some(t) = start_time(p)
                && !self.seen.contains(&(p, t))
            {
                self.seen.push((p, t));
                on_pid(p);
            }
        }
        tree
    }

    pub fn has_line(&self, prefix: &str) -> bool {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|l| l.starts_with(prefix))
    }

    /// Kills every process of the run (descendants deepest first, then the root, then any
    /// process seen earlier that is still the same process) and reaps those that are ours.
    pub fn kill(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let mut tree = live::procfs::descendants(self.pid);
        tree.reverse();
        for p in tree {
            // SAFETY: kill(2) on a descendant of a process this run started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        // SAFETY: the child this run started (not yet reaped: Child::wait below).
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.child.wait();
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        for &(p, t) in &self.seen {
            if p == self.pid || start_time(p) != Some(t) {
                continue;
            }
            // SAFETY: the same process (same start time) this run's tree had.
            unsafe { libc::kill(p, libc::SIGKILL) };
            if parent_of(p) == Some(me) {
                // An orphan reparented to us (we are a subreaper): reap it.
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(p, &mut status, 0) };
            }
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when no thread of the tree is running (R) or stopped (T/t).
fn all_off_cpu(tree: &[i32]) -> bool {
    tree.iter().all(|&p| {
        procfs::list_tids(p)
            .unwrap_or_default()
            .into_iter()
            .all(|t| procfs::task_stat(p, t).is_none_or(|st| !matches!(st.state, 'R' | 'T' | 't')))
    })
}

/// How a watched run ended.
pub enum Watch {
    Exited(std::process::ExitStatus),
    Settled,
    TimedOut,
}

/// Watches a started run until it exits, settles (after its ready line) or times out.
pub fn watch(
    run: &mut Started,
    v: &Variant,
    timeout: Duration,
    s_interrupted: &AtomicBool,
    on_pid: &dyn Fn(i32),
) -> Result<Watch, ConfirmError> {
    let end = Instant::now() + timeout;
    let mut quiet_since: Option<Instant> = None;
    loop {
        if s_interrupted.load(Ordering::SeqCst) {
            return Err(ConfirmError::Interrupted);
        }
        if let Ok(Some(status)) = run.child.try_wait() {
            return Ok(Watch::Exited(status));
        }
        let tree = run.observe(on_pid);
        let ready = v.ready.is_none_or(|p| run.has_line(p));
        if ready && all_off_cpu(&tree) {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SETTLE {
                return Ok(Watch::Settled);
            }
        } else {
            quiet_since = None;
        }
        if Instant::now() >= end {
            return Ok(Watch::TimedOut);
        }
        std::thread::sleep(POLL);
    }
}

/// Captures the run's tree live (in-process) and diagnoses it.
pub fn diagnose_run(
    pid: i32,
    interrupted: &Arc<AtomicBool>,
    cache: &mut BinaryCache,
) -> Result<Diagnosis, Result<String, ConfirmError>> {
    let opts = CaptureOptions {
        interrupted: Arc::clone(interrupted),
        ..CaptureOptions::default()
    };
    let capture = match live::capture(pid, &opts, cache) {
        Ok(c) => c,
        Err(CaptureError::NotPermitted { partial, .. }) => *partial,
        Err(CaptureError::Interrupted) => return Err(Err(ConfirmError::Interrupted)),
        Err(e) => return Err(Ok(format!("capture failed: {e}"))),
    };
    Ok(crate::analyze::diagnose_live(capture, cache))
}

fn has(d: &Diagnosis, id: &str) -> bool {
    d.findings.iter().any(|f| f.id == id)
}

fn ids(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no finding".into();
    }
    let mut v: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    v.dedup();
    v.join(", ")
}

/// One run of `v`: start, watch, decide, kill and reap.
pub fn run_once(
    plan: &Plan,
    exe: &Path,
    v: &Variant,
    s: &Settings,
    cache: &mut BinaryCache,
) -> Result<RunResult, ConfirmError> {
    let t0 = Instant::now();
    let mut run = Started::start(exe, v, s.on_pid).map_err(|source| ConfirmError::Spawn {
        probe: plan.probe.to_string(),
        source,
    })?;
    let watched = watch(&mut run, v, s.timeout, &s.interrupted, s.on_pid)?;
    let (outcome, detail, diagnosis) = match watched {
        Watch::Exited(status) => {
            if status.success() {
                (Outcome::Clean, "exited 0".to_string(), None)
            } else if v.crashes {
                crashed(plan, exe, v, &run, status, cache)
            } else {
                (Outcome::Other, format!("exited: {status}"), None)
            }
        }
        Watch::Settled | Watch::TimedOut => {
            let how = if matches!(watched, Watch::Settled) {
                "hung"
            } else {
                "still running at the timeout"
            };
            match diagnose_run(run.pid, &s.interrupted, cache) {
                Ok(d) if has(&d, plan.signature) => (
                    Outcome::Reproduced,
                    format!("{how}; diagnosed live: {}", ids(&d.findings)),
                    Some(d),
                ),
                Ok(d) if v.holds => (
                    Outcome::Clean,
                    format!("holds by design; diagnosed live: {}", ids(&d.findings)),
                    Some(d),
                ),
                Ok(d) => (
                    Outcome::Other,
                    format!("{how}; diagnosed live: {}", ids(&d.findings)),
                    Some(d),
                ),
                Err(Ok(why)) => (Outcome::Other, format!("{how}; {why}"), None),
                Err(Err(e)) => return Err(e),
            }
        }
    };
    run.kill();
    Ok(RunResult {
        record: RunRecord {
            outcome,
            detail,
            millis: t0.elapsed().as_millis() as u64,
        },
        diagnosis,
    })
}

/// A crashing variant died: diagnose its core, or else its panic output.
fn crashed(
    plan: &Plan,
    exe: &Path,
    v: &Variant,
    run: &Started,
    status: std::process::ExitStatus,
    cache: &mut BinaryCache,
) -> (Outcome, String, Option<Diagnosis>) {
    let Some(dir) = run.dir.as_ref().map(|d| d.path()) else {
        return (Outcome::Other, format!("exited: {status}"), None);
    };
    let core = std::fs::read_dir(dir).ok().and_then(|rd| {
        rd.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("core"))
        })
    });
    if let Some(core) = core {
        return match crate::source::core::open(&core) {
            Ok(c) => {
                let d = crate::analyze::diagnose_core(c, Some(exe.to_path_buf()), None, cache);
                let outcome = if has(&d, plan.signature) {
                    Outcome::Reproduced
                } else {
                    Outcome::Other
                };
                let detail = format!("crashed ({status}); core diagnosed: {}", ids(&d.findings));
                (outcome, detail, Some(d))
            }
            Err(e) => (
                Outcome::Other,
                format!("crashed ({status}); core unreadable: {e}"),
                None,
            ),
        };
    }
    // No core (core_pattern pipes cores elsewhere, or a hard limit of 0): the Go runtime's
    // traceback names the faulting goroutine's innermost frame right after its header.
    let text = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    match (v.panic_frame, panic_fault_frame(&text)) {
        (Some(want), Some(frame)) if frame.contains(want) => (
            Outcome::Reproduced,
            format!("crashed ({status}); no core file, the panic output names the fault in {want}"),
            None,
        ),
        _ => (
            Outcome::Other,
            format!("crashed ({status}); no core file and no matching panic output"),
            None,
        ),
    }
}

/// The innermost frame of the goroutine a Go fault panic names: the line after the first
/// `goroutine N [running]:` that follows the runtime's `[signal SIG…]` line.
pub fn panic_fault_frame(text: &str) -> Option<&str> {
    text.lines()
        .skip_while(|l| !l.starts_with("[signal SIG"))
        .skip_while(|l| !(l.starts_with("goroutine ") && l.ends_with("[running]:")))
        .nth(1)
}

/// Parses a duration: `500ms`, `2s`, `1.5s`, `1m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 5s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s or m)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!("{s:?}: must be more than 0 and at most 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The report in words (stdout of `wedge confirm`).
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "confirm {} with probe {} ({} runs per variant, timeout {} ms, kernel {})\n",
        r.signature, r.probe, r.runs, r.timeout_ms, r.kernel_release
    );
    let line = |v: &VariantStats| {
        format!(
            "  {:<20} runs {}  reproduced {}  clean {}  other {}  rate {:.0}% (95% CI {:.0}–{:.0}%)\n",
            // The probe's arguments, where they say more than the variant's name.
            if v.args.join(" ") == v.variant {
                v.variant.to_string()
            } else {
                format!("{} ({})", v.variant, v.args.join(" "))
            },
            v.runs,
            v.reproduced,
            v.clean,
            v.other,
            v.rate * 100.0,
            v.interval95[0] * 100.0,
            v.interval95[1] * 100.0
        )
    };
    out.push_str(&line(&r.buggy));
    out.push_str(&line(&r.fixed));
    for v in [&r.buggy, &r.fixed] {
        if let Some(o) = v.outcomes.iter().find(|o| o.outcome == Outcome::Other) {
            out.push_str(&format!("    {} other failure: {}\n", v.variant, o.detail));
        }
    }
    out.push_str(&format!("verdict: {}\n", r.verdict_text));
    if let Some(why) = &r.reason {
        out.push_str(&format!("  because {why}\n"));
    }
    if let (Some(e), Some(ev)) = (&r.emulation, &r.emulation_verdict) {
        out.push_str(&line(e));
        out.push_str(&format!("emulation: {ev}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_match_the_catalog() {
        for p in PLANS {
            let sig = crate::signatures::catalog()
                .iter()
                .find(|s| s.id == p.signature)
                .unwrap_or_else(|| panic!("{} in the catalog", p.signature));
            assert_eq!(sig.probe, Some(p.probe), "{}", p.signature);
            assert!(probes::find(p.probe).is_some());
        }
        for s in crate::signatures::catalog() {
            assert_eq!(s.probe.is_some(), plan(s.id).is_some(), "{}", s.id);
        }
    }

    #[test]
    fn wilson_intervals() {
        let [lo, hi] = wilson(5, 5);
        assert!((lo - 0.566).abs() < 0.001 && hi == 1.0, "{lo} {hi}");
        let [lo, hi] = wilson(0, 5);
        assert!(lo == 0.0 && (hi - 0.434).abs() < 0.001, "{lo} {hi}");
        let [lo, hi] = wilson(5, 10);
        assert!((lo - 0.237).abs() < 0.001 && (hi - 0.763).abs() < 0.001);
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
    }

    #[test]
    fn the_fault_frame_of_a_go_panic() {
        // stderr of `reader_race crash` (Go 1.19), its first lines.
        let text = "panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x20 pc=0x48403b]

goroutine 20 [running]:
main.(*readerAtCloser).ReadAt(0xc000064050, {0xc00006e000, 0x10000, 0x10000}, 0xa00000)
\twedge.probes/readerrace/main.go:102 +0x35b
io.(*SectionReader).Read(0xc00008c1e0, {0xc00006e000?, 0x405458?, 0xc000080060?})
";
        let frame = panic_fault_frame(text).unwrap();
        assert!(frame.contains(".(*readerAtCloser).ReadAt("), "{frame}");
        // A panic without a fault (no [signal …] line) names no fault frame.
        assert_eq!(
            panic_fault_frame("panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n"),
            None
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn unknown_and_probeless_signatures_are_errors() {
        let e = plan_for("nope").unwrap_err();
        assert!(e.to_string().contains("clone-fork-mix"), "{e}");
        let e = plan_for("lock-never-released").unwrap_err();
        assert!(matches!(e, ConfirmError::NoProbe { .. }), "{e}");
    }
}
