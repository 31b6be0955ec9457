//! The human report of `wedge trace`: the process tree (creation kind, execs, exit), the
//! notes, and the findings with their evidence.

use super::TraceReport;
use super::timeline::{Creation, Event, What};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One process of the tree, gathered from the events.
#[derive(Default)]
struct Node {
    how: Option<Creation>,
    parent: Option<i32>,
    namespaces: Vec<String>,
    creator_threads: u32,
    first: String,
    lines: Vec<String>,
    threads: u32,
    children: Vec<i32>,
}

fn secs(e: &Event) -> String {
    format!("+{:.3}s", e.t_us as f64 / 1e6)
}

fn exit_text(code: Option<i32>, signal: Option<i32>, core: bool) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!(
            "killed by signal {s}{}",
            if core { " (core dumped)" } else { "" }
        ),
        _ => "ended".into(),
    }
}

pub fn human(r: &TraceReport) -> String {
    let tl = &r.timeline;
    let mut nodes: BTreeMap<i32, Node> = BTreeMap::new();
    let mut order: Vec<i32> = Vec::new();
    for e in &tl.events {
        if !nodes.contains_key(&e.pid) {
            order.push(e.pid);
        }
        match &e.what {
            What::Traced {
                comm,
                exe,
                threads,
                parent,
            } => {
                if let Some(pp) = parent {
                    nodes.entry(*pp).or_default().children.push(e.pid);
                }
                let n = nodes.entry(e.pid).or_default();
                n.parent = *parent;
                n.first = format!("{comm} ({})", exe.as_deref().unwrap_or("?"));
                n.threads = *threads;
            }
            What::Created {
                child,
                how,
                namespaces,
                creator_threads,
                ..
            } => {
                if *how == Creation::Thread {
                    nodes.entry(e.pid).or_default().threads += 1;
                    continue;
                }
                nodes.entry(e.pid).or_default().children.push(*child);
                if !nodes.contains_key(child) {
                    order.push(*child);
                }
                let c = nodes.entry(*child).or_default();
                c.how = Some(*how);
                c.parent = Some(e.pid);
                c.namespaces = namespaces.clone();
                c.creator_threads = *creator_threads;
                c.first = format!("{} at {}", how.as_str(), secs(e));
            }
            What::ExecCall { .. } => {}
            What::LetGo { reason, .. } => {
                let line = format!("{} {reason}", secs(e));
                nodes.entry(e.pid).or_default().lines.push(line);
            }
            What::PrivilegedExec { path, reason, kept } => {
                let line = format!(
                    "{} exec of {reason} {path} while traced: privileges {}",
                    secs(e),
                    if *kept {
                        "kept (wedge has CAP_SYS_PTRACE)"
                    } else {
                        "dropped by the kernel (use --exec-entry to let it go first)"
                    }
                );
                nodes.entry(e.pid).or_default().lines.push(line);
            }
            What::Exec { exe, comm, memfd } => {
                let m = memfd
                    .as_ref()
                    .map(|m| {
                        format!(
                            " [memfd {:?}, seals {}]",
                            m.name,
                            if m.seal_names.is_empty() {
                                "?"
                            } else {
                                &m.seal_names
                            }
                        )
                    })
                    .unwrap_or_default();
                let line = format!("{} exec {exe} ({comm}){m}", secs(e));
                nodes.entry(e.pid).or_default().lines.push(line);
            }
            What::Signal { signo, code, addr } => {
                let line = format!(
                    "{} thread {} took signal {signo} (code {code}, addr {addr:#x})",
                    secs(e),
                    e.tid
                );
                nodes.entry(e.pid).or_default().lines.push(line);
            }
            What::Alive {
                state,
                syscall,
                wchan,
            } => {
                let sc = syscall
                    .as_ref()
                    .map(|v| {
                        v.iter()
                            .map(|x| format!("{x:#x}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let line = format!(
                    "still running at the end (thread {}, state {state}, syscall [{sc}], wchan {wchan})",
                    e.tid
                );
                nodes.entry(e.pid).or_default().lines.push(line);
            }
            What::Exit {
                code,
                signal,
                core,
                thread,
            } => {
                if *thread && code.is_some() {
                    continue;
                }
                let line = format!(
                    "{} {}{}",
                    secs(e),
                    if *thread {
                        format!("thread {} ", e.tid)
                    } else {
                        String::new()
                    },
                    exit_text(*code, *signal, *core)
                );
                nodes.entry(e.pid).or_default().lines.push(line);
            }
        }
    }
    let mut s = String::new();
    let what = if tl.command.is_empty() {
        format!("process {}", tl.root)
    } else {
        tl.command.join(" ")
    };
    let _ = writeln!(s, "wedge trace: {what}");
    let roots: Vec<i32> = order
        .iter()
        .copied()
        .filter(|p| nodes.get(p).is_some_and(|n| n.parent.is_none()))
        .collect();
    fn walk(s: &mut String, nodes: &BTreeMap<i32, Node>, pid: i32, depth: usize) {
        let Some(n) = nodes.get(&pid) else { return };
        let pad = "  ".repeat(depth);
        let mut head = format!("{pad}{pid} {}", n.first);
        if n.how.is_some() && n.creator_threads > 1 {
            let _ = write!(head, " from a {}-thread process", n.creator_threads);
        }
        if !n.namespaces.is_empty() {
            let _ = write!(head, " [new {}]", n.namespaces.join(" "));
        }
        if n.threads > 1 || (n.how.is_none() && n.threads > 0) {
            let _ = write!(head, ", {} thread(s)", n.threads.max(1));
        }
        let _ = writeln!(s, "{head}");
        for l in &n.lines {
            let _ = writeln!(s, "{pad}  · {l}");
        }
        for c in &n.children {
            walk(s, nodes, *c, depth + 1);
        }
    }
    for r in roots {
        walk(&mut s, &nodes, r, 1);
    }
    for n in &tl.notes {
        let _ = writeln!(s, "note: {n}");
    }
    match tl.status {
        Some(st) => {
            let _ = writeln!(s, "status: {st}");
        }
        None => {
            let _ = writeln!(
                s,
                "status: unknown (wedge stopped before the command ended)"
            );
        }
    }
    if let Some(d) = &r.crash {
        let _ = writeln!(
            s,
            "\nThe crash, captured before its handler ran:\n{}",
            crate::render::report(
                d,
                crate::render::Style::from_choice("auto"),
                crate::render::ReportOptions { all: false }
            )
        );
    }
    if r.findings.is_empty() {
        let _ = writeln!(s, "findings: none");
    }
    for f in &r.findings {
        let _ = writeln!(
            s,
            "\n{} {} ({:?}): {}",
            if f.risk { "RISK" } else { "FINDING" },
            f.finding.id,
            f.finding.confidence,
            f.finding.title
        );
        for ev in &f.finding.evidence {
            let _ = writeln!(s, "  - {}", ev.text);
        }
        let _ = writeln!(s, "  {}", f.finding.explanation);
        if let Some(w) = &f.finding.workaround {
            let _ = writeln!(s, "  workaround: {w}");
        }
    }
    s
}
