//! The goroutine section of the human report: goroutines with identical stacks grouped into
//! one block (like panicparse and `dlv goroutines -group`), the interesting groups first —
//! running, long waits, locks, channels, I/O — and the runtime's own goroutines last.

use super::human::{fmt_duration_ns, fmt_frame};
use super::style::Style;
use crate::model::{GoProcess, Goroutine};
use std::fmt::Write;

/// A wait longer than this puts a group near the top.
const LONG_WAIT_NS: u64 = 60_000_000_000;

fn rank(g: &Goroutine) -> u32 {
    let reason = g.wait_reason.as_deref().unwrap_or("");
    let long = g.waited_ns.is_some_and(|w| w >= LONG_WAIT_NS);
    if g.system {
        return 90;
    }
    match g.status.as_str() {
        "running" => 0,
        _ if long => 10,
        _ if reason.contains("semacquire")
            || reason.contains("Mutex")
            || reason.contains("RWMutex")
            || reason.contains("Cond") =>
        {
            20
        }
        _ if reason.contains("chan")
            || reason == "select"
            || reason.contains("select (no cases)") =>
        {
            30
        }
        "syscall" => 40,
        _ if reason.contains("IO wait") => 40,
        "runnable" | "preempted" => 50,
        _ => 60,
    }
}

/// What makes two goroutines "the same" to a reader: state, wait, and frames.
fn key(g: &Goroutine) -> String {
    let mut k = format!(
        "{}|{}|{}|",
        g.status,
        g.wait_reason.as_deref().unwrap_or(""),
        g.system
    );
    for f in &g.frames {
        let _ = write!(
            k,
            "{}:{};",
            f.function.as_deref().unwrap_or("?"),
            f.line.unwrap_or(0)
        );
    }
    if let Some(c) = &g.created_by {
        let _ = write!(k, "<-{}", c.function.as_deref().unwrap_or("?"));
    }
    if let Some(f) = &g.fault {
        let _ = write!(k, "!{}:{:#x}:{:#x}", f.signo, f.addr, f.pc);
    }
    k
}

pub fn section(out: &mut String, go: &GoProcess, style: Style, all: bool) {
    let mut head = if go.version.is_empty() {
        "Go".to_string()
    } else {
        format!("Go {}", go.version)
    };
    if let Some(m) = &go.main_module {
        let _ = write!(head, ", {}", m.path);
        if !m.version.is_empty() {
            let _ = write!(head, " {}", m.version);
        }
    }
    let system = go.goroutines.iter().filter(|g| g.system).count();
    let _ = write!(
        head,
        ": {} goroutines ({} of the runtime)",
        go.goroutines.len(),
        system
    );
    let _ = writeln!(out, "  {}", style.bold(&head));
    // Build facts: the settings that matter when matching a bug to a build, then modules.
    let settings: Vec<String> = go
        .build_settings
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "-buildmode" | "CGO_ENABLED" | "GOARCH" | "vcs.revision" | "vcs.modified" | "-tags"
            )
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !settings.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!("built with {}", settings.join(" ")))
        );
    }
    if !go.dependencies.is_empty() {
        let shown: Vec<String> = go
            .dependencies
            .iter()
            .take(if all { usize::MAX } else { 8 })
            .map(|d| match &d.replaced_by {
                Some(r) => format!("{} {} => {} {}", d.path, d.version, r.path, r.version),
                None => format!("{} {}", d.path, d.version),
            })
            .collect();
        let more = go.dependencies.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" … and {more} more (--all)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!("modules: {}{tail}", shown.join(", ")))
        );
    }
    if let Some(how) = &go.allgs_found_by {
        let copy = match (go.copy_us, go.copy_bytes) {
            (Some(us), Some(b)) => format!(
                ", copied {} KiB in {} during the freeze",
                b / 1024,
                super::human::fmt_us(us)
            ),
            _ => String::new(),
        };
        let layout = go
            .layout_from
            .as_deref()
            .map(|l| format!(", struct layout from {l}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!("goroutine list found by {how}{layout}{copy}"))
        );
    }
    if let Some(n) = &go.goroutines_note {
        let _ = writeln!(out, "  {}", style.yellow(n));
    }
    out.push('\n');
    let mut groups: Vec<(String, Vec<&Goroutine>)> = Vec::new();
    for g in &go.goroutines {
        let k = if all { g.id.to_string() } else { key(g) };
        match groups.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, v)) => v.push(g),
            None => groups.push((k, vec![g])),
        }
    }
    groups.sort_by_key(|(_, v)| (rank(v[0]), std::cmp::Reverse(v.len()), v[0].id));
    for (_, v) in &groups {
        let g = v[0];
        let ids: Vec<String> = v.iter().take(12).map(|g| g.id.to_string()).collect();
        let more = if v.len() > 12 {
            format!(" … +{}", v.len() - 12)
        } else {
            String::new()
        };
        let who = if v.len() == 1 {
            format!("goroutine {}", g.id)
        } else {
            format!("{} goroutines ({}{more})", v.len(), ids.join(", "))
        };
        let mut state = g.status.clone();
        if let Some(r) = &g.wait_reason {
            state = r.clone();
        }
        let waited = v.iter().filter_map(|g| g.waited_ns).max();
        if let Some(w) = waited {
            let _ = write!(state, ", {}", fmt_duration_ns(w));
        }
        if g.locked_to_thread {
            state.push_str(", locked to thread");
        }
        if let Some(t) = g.thread {
            let _ = write!(state, ", on thread {t}");
        }
        let _ = writeln!(out, "  {} [{}]", style.bold(&who), state);
        if let Some(f) = &g.fault {
            let _ = writeln!(
                out,
                "    {}",
                style.yellow(&format!(
                    "took {} at addr={:#x} pc={:#x} (g.sig, g.sigcode1, g.sigpc)",
                    crate::facts::crash::signal_name(f.signo as i32),
                    f.addr,
                    f.pc
                ))
            );
        }
        for (i, f) in g.frames.iter().enumerate() {
            fmt_frame(out, i, f, style);
        }
        if let Some(why) = &g.unwind_stop {
            let _ = writeln!(
                out,
                "    {}",
                style.dim(&format!("(unwinding stopped: {why})"))
            );
        }
        if let Some(c) = &g.created_by {
            let parent = g
                .parent_id
                .map(|p| format!(" in goroutine {p}"))
                .unwrap_or_default();
            let loc = match (&c.file, c.line) {
                (Some(f), Some(l)) => format!(" at {f}:{l}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    created by {}{parent}{}",
                c.function.as_deref().unwrap_or("?"),
                style.dim(&loc)
            );
        }
        out.push('\n');
    }
}
