//! `wedge demo`: the main job on built-in examples. For each signature with a probe it starts
//! the buggy probe, diagnoses it live, prints the findings, confirms them with a few runs of
//! the buggy and the fixed variant, and kills and reaps every process it started (also when
//! interrupted). Without a Go toolchain the Go case is shown from a recorded diagnosis of
//! the real probe, samples/snapshots/reader_race_hold.json, and the demo says so.

use crate::binary::BinaryCache;
use crate::confirm::{self, ConfirmError, PLANS, Plan, Settings, Started, Watch};
use crate::model::Diagnosis;
use crate::probes::{self, ProbeError};
use crate::render::{Style, human::findings_only};
use std::io::Write;
use std::time::Duration;

/// `wedge diagnose --json` of `reader_race hold`, recorded on the development machine.
const READER_RACE_SAMPLE: &str = include_str!("../samples/snapshots/reader_race_hold.json");

/// How long a demo case may take to hang.
const LIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one demo case showed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub signature: &'static str,
    /// "live" or "sample".
    pub source: &'static str,
    /// The case's diagnosis had the signature's finding.
    pub shown: bool,
    pub verdict: Option<String>,
}

fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Runs the demo; Ok(results) unless interrupted or a probe could not be built or started.
pub fn run(s: &Settings, style: Style) -> Result<Vec<CaseResult>, ConfirmError> {
    let cache_dir = confirm::probe_cache_dir();
    say(&format!(
        "wedge demo: {} known hangs and crashes, each started for real on this machine, diagnosed live, then confirmed ({} runs per variant, timeout {} ms). Probes are built into {}.\n",
        PLANS.len(),
        s.runs,
        s.timeout.as_millis(),
        cache_dir.display()
    ));
    let mut cache = BinaryCache::new();
    let mut results = Vec::new();
    for (i, plan) in PLANS.iter().enumerate() {
        say(&style.bold(&format!(
            "── {}/{}: {} (probe {} {})",
            i + 1,
            PLANS.len(),
            plan.signature,
            plan.probe,
            plan.demo.args.join(" ")
        )));
        if let Some(note) = plan.demo_note {
            say(&format!("   {note}"));
        }
        let exe = match probes::build(plan.probe, &cache_dir) {
            Ok(e) => e,
            Err(ProbeError::NoGo { go, .. }) if plan.probe == "reader_race" => {
                results.push(from_sample(plan, &go, style));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let shown = live_case(plan, &exe, s, &mut cache, style)?;
        let report = confirm::confirm_with(plan, &exe, s)?;
        say(&indent(&confirm::render(&report)));
        results.push(CaseResult {
            signature: plan.signature,
            source: "live",
            shown,
            verdict: Some(report.verdict_text.clone()),
        });
    }
    let shown = results.iter().filter(|r| r.shown).count();
    say(&format!(
        "demo: {shown} of {} cases showed their finding; every process started was killed and reaped.",
        results.len()
    ));
    Ok(results)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts the demo variant, waits for it to hang, diagnoses it, prints the findings.
fn live_case(
    plan: &Plan,
    exe: &std::path::Path,
    s: &Settings,
    cache: &mut BinaryCache,
    style: Style,
) -> Result<bool, ConfirmError> {
    let mut run =
        Started::start(exe, &plan.demo, s.on_pid).map_err(|source| ConfirmError::Spawn {
            probe: plan.probe.to_string(),
            source,
        })?;
    let w = confirm::watch(&mut run, &plan.demo, LIVE_TIMEOUT, &s.interrupted, s.on_pid)?;
    if let Watch::Exited(status) = w {
        say(&format!(
            "   the probe exited ({status}) instead of hanging"
        ));
        return Ok(false);
    }
    say(&format!(
        "   started pid {}; it hangs; `wedge diagnose {}` says:\n",
        run.pid, run.pid
    ));
    let d = match confirm::diagnose_run(run.pid, &s.interrupted, cache) {
        Ok(d) => d,
        Err(Err(e)) => return Err(e),
        Err(Ok(why)) => {
            say(&format!("   {why}"));
            return Ok(false);
        }
    };
    run.kill();
    say(&indent(&findings_only(&d, style)));
    Ok(d.findings.iter().any(|f| f.id == plan.signature))
}

/// The Go case without Go: the recorded diagnosis, re-matched by this wedge's catalog.
fn from_sample(plan: &Plan, go: &str, style: Style) -> CaseResult {
    say(&format!(
        "   no Go toolchain here ({go:?} does not run): shown from samples/snapshots/reader_race_hold.json, a recorded `wedge diagnose --json` of the real probe in mode hold; it is not confirmed on this host (install golang-go to run it live)\n"
    ));
    let shown = match serde_json::from_str::<Diagnosis>(READER_RACE_SAMPLE) {
        Ok(mut d) => {
            d.findings = crate::signatures::run(&d.snapshot);
            say(&indent(&findings_only(&d, style)));
            d.findings.iter().any(|f| f.id == plan.signature)
        }
        Err(e) => {
            say(&format!("   the sample does not parse: {e}"));
            false
        }
    };
    CaseResult {
        signature: plan.signature,
        source: "sample",
        shown,
        verdict: None,
    }
}
