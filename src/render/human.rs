//! The human report: findings first, then the process tree, each process's threads (grouped
//! when their stacks are identical), fds and notable mappings, then what is missing.

use super::style::Style;
use crate::model::{
    Diagnosis, Fd, FdKind, Frame, Mapping, Process, Snapshot, Source, SymbolSource, Thread,
};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions {
    /// Every mapping and every thread separately, not only the notable ones.
    pub all: bool,
}

pub fn report(d: &Diagnosis, style: Style, opts: ReportOptions) -> String {
    let mut out = String::new();
    let s = &d.snapshot;
    header(&mut out, s, style);
    findings(&mut out, d, style);
    wait_graph(&mut out, s, style);
    tree(&mut out, s, style);
    // A log tells no uid, namespace or thread table: do not print empty ones.
    let from_text = matches!(s.source, crate::model::Source::Log { .. });
    for p in &s.processes {
        process(&mut out, p, style, opts, from_text);
    }
    notes(&mut out, s, style);
    out
}

/// The waits nothing will ever end (the wait-for graph's stuck part), when there are any:
/// what each stuck thread waits for, and goroutines parked on nothing.
fn wait_graph(out: &mut String, s: &Snapshot, style: Style) {
    let g = crate::facts::derive(s).wait_graph;
    if g.stuck.is_empty() && g.stuck_goroutines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", style.bold("Waits that will never end"));
    for &(pid, tid) in &g.stuck {
        let what = g.wait_of(pid, tid).map(|w| w.what.as_str()).unwrap_or("?");
        let _ = writeln!(out, "  {pid}/{tid} {what}");
    }
    for (pid, id, reason) in &g.stuck_goroutines {
        let _ = writeln!(out, "  {pid} goroutine {id} [{reason}]");
    }
    let _ = writeln!(out);
}

fn header(out: &mut String, s: &Snapshot, style: Style) {
    let threads: usize = s.processes.iter().map(|p| p.threads.len()).sum();
    let what = match &s.source {
        Source::Live { pid, stopped, .. } => {
            let how = if *stopped {
                ""
            } else {
                " (procfs only: --no-stop)"
            };
            format!("live process tree of pid {pid}{how}")
        }
        Source::Core { path } => format!("core file {path}"),
        Source::Log { path } => format!("log {path}"),
        Source::Bundle { path } => format!("bundle {path}"),
    };
    let _ = writeln!(
        out,
        "{} {what}: {} process(es), {threads} thread(s)",
        style.bold("wedge"),
        s.processes.len()
    );
    let paused: Vec<u64> = s.processes.iter().filter_map(|p| p.pause_us).collect();
    if let Some(max) = paused.iter().max() {
        let _ = writeln!(out, "stopped for at most {}, then resumed", fmt_us(*max));
    }
    out.push('\n');
}

/// The findings section of the report alone (`wedge demo` prints it).
pub fn findings_only(d: &Diagnosis, style: Style) -> String {
    let mut out = String::new();
    findings(&mut out, d, style);
    out
}

fn findings(out: &mut String, d: &Diagnosis, style: Style) {
    if d.findings.is_empty() {
        let _ = writeln!(
            out,
            "{} none: no known signature matched\n",
            style.bold("Findings:")
        );
        return;
    }
    let _ = writeln!(out, "{}", style.bold("Findings"));
    for f in &d.findings {
        let _ = writeln!(
            out,
            "  {} {} ({:?})",
            style.red(&format!("[{}]", f.id)),
            style.bold(&f.title),
            f.confidence
        );
        let _ = writeln!(out, "    {}", f.explanation);
        for e in &f.evidence {
            let _ = writeln!(out, "    - {}", e.text);
        }
        if let Some(w) = &f.workaround {
            let _ = writeln!(out, "    workaround: {w}");
        }
        if let Some(v) = &f.fixed_in {
            let _ = writeln!(out, "    fixed in: {v}");
        }
        if !f.references.is_empty() {
            let _ = writeln!(out, "    references: {}", f.references.join(", "));
        }
    }
    out.push('\n');
}

fn tree(out: &mut String, s: &Snapshot, style: Style) {
    let mut t = style.table(&["PID", "PPID", "COMM", "STATE", "THREADS", "PAUSE", "EXE"]);
    // Depth-first from the processes whose parent was not captured.
    let mut rows = Vec::new();
    let roots: Vec<&Process> = s
        .processes
        .iter()
        .filter(|p| p.ppid == p.pid || s.process(p.ppid).is_none())
        .collect();
    for r in roots {
        walk(s, r, 0, &mut rows);
    }
    for (depth, p) in rows {
        let exe = p.exe.as_ref().map(|e| e.path.as_str()).unwrap_or("?");
        t.add_row(vec![
            style.cell(format!("{}{}", "  ".repeat(depth), p.pid), false),
            style.cell(p.ppid, false),
            style.cell(&p.comm, false),
            style.cell(&p.state, p.state == "D" || p.state == "Z"),
            style.cell(p.threads.len(), false),
            style.cell(
                p.pause_us
                    .map(fmt_us)
                    .unwrap_or_else(|| "not stopped".into()),
                !p.stopped,
            ),
            style.cell(exe, false),
        ]);
    }
    let _ = writeln!(out, "{}\n{t}\n", style.bold("Process tree"));
}

fn walk<'a>(s: &'a Snapshot, p: &'a Process, depth: usize, rows: &mut Vec<(usize, &'a Process)>) {
    if rows.iter().any(|(_, q)| q.pid == p.pid) {
        return;
    }
    rows.push((depth, p));
    for c in s
        .processes
        .iter()
        .filter(|c| c.ppid == p.pid && c.pid != p.pid)
    {
        walk(s, c, depth + 1, rows);
    }
}

fn process(out: &mut String, p: &Process, style: Style, opts: ReportOptions, from_text: bool) {
    let _ = writeln!(
        out,
        "{} {}",
        style.bold(&format!("Process {} ({})", p.pid, p.comm)),
        style.dim(&p.cmdline.join(" "))
    );
    if let Some(exe) = &p.exe {
        let memfd = exe
            .memfd
            .as_ref()
            .map(|m| match exe.seals {
                Some(seals) => format!(" [memfd {m}, seals {}]", seal_names(seals)),
                None => format!(" [memfd {m}]"),
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  exe {}{memfd}", exe.path);
    }
    let ns: Vec<String> = p
        .namespaces
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    if !from_text {
        let _ = writeln!(
            out,
            "  uid {} gid {}{}{}",
            p.uid[1],
            p.gid[1],
            if p.nspid.len() > 1 {
                format!(", nspid {:?}", p.nspid)
            } else {
                String::new()
            },
            if ns.is_empty() {
                String::new()
            } else {
                format!(", ns {}", ns.join(" "))
            }
        );
    }
    if let Some(cg) = p.cgroup.first() {
        let _ = writeln!(out, "  cgroup {cg}");
    }
    for (what, with) in [
        ("address space (CLONE_VM)", &p.shares_vm_with),
        ("fd table (CLONE_FILES)", &p.shares_files_with),
    ] {
        if !with.is_empty() {
            let pids: Vec<String> = with.iter().map(|p| p.to_string()).collect();
            let _ = writeln!(out, "  shares its {what} with {}", pids.join(", "));
        }
    }
    if let Some(sig) = &p.signal {
        let addr = sig
            .addr
            .map(|a| signal_origin(sig.code, a))
            .unwrap_or_default();
        let tid = sig
            .tid
            .map(|t| format!(", taken by thread {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}",
            style.red(&format!(
                "fatal signal {} (code {}){addr}{tid}",
                signal_name(sig.signo),
                sig.code
            ))
        );
    }
    out.push('\n');
    if let Some(go) = &p.go {
        super::goroutines::section(out, go, style, opts.all);
    }
    threads(out, p, style, opts);
    fds(out, p, style);
    mappings(out, p, style, opts);
}

/// A key that is equal for threads a person would read as "the same": same state, same wait,
/// same frames.
fn stack_key(t: &Thread) -> String {
    let mut k = format!(
        "{}|{}|{}|",
        t.state,
        t.wchan.as_deref().unwrap_or(""),
        t.syscall
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .unwrap_or("")
    );
    for f in &t.frames {
        let _ = write!(
            k,
            "{}:{};",
            f.function.as_deref().unwrap_or("?"),
            f.function_offset.unwrap_or(f.pc)
        );
    }
    k
}

fn threads(out: &mut String, p: &Process, style: Style, opts: ReportOptions) {
    if p.threads.is_empty() {
        return;
    }
    let mut t = style.table(&["TID", "NAME", "STATE", "WCHAN", "SYSCALL"]);
    for th in &p.threads {
        let mut sys = th.syscall.as_ref().map(syscall_text).unwrap_or_default();
        if let Some(target) = th.syscall.as_ref().and_then(|s| fd_path_target(p, s)) {
            let _ = write!(sys, " → {target}");
        }
        t.add_row(vec![
            style.cell(th.tid, false),
            style.cell(&th.name, false),
            style.cell(&th.state, th.state == "D"),
            style.cell(th.wchan.as_deref().unwrap_or(""), false),
            style.cell(sys, false),
        ]);
    }
    let _ = writeln!(
        out,
        "  {}\n{}\n",
        style.bold("Threads"),
        indent(&t.to_string(), 2)
    );

    // Stacks, grouped: threads with identical stacks print once.
    let mut groups: Vec<(String, Vec<&Thread>)> = Vec::new();
    for th in &p.threads {
        let key = if opts.all {
            th.tid.to_string()
        } else {
            stack_key(th)
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(th),
            None => groups.push((key, vec![th])),
        }
    }
    for (_, group) in &groups {
        let first = group[0];
        let tids: Vec<String> = group.iter().map(|t| t.tid.to_string()).collect();
        let who = if group.len() == 1 {
            format!("Thread {} \"{}\"", first.tid, first.name)
        } else {
            format!(
                "{} threads ({}) \"{}\"",
                group.len(),
                tids.join(", "),
                first.name
            )
        };
        let _ = writeln!(
            out,
            "  {} {} {}",
            style.bold(&who),
            first.state,
            first.wchan.as_deref().unwrap_or("")
        );
        if let Some(sys) = &first.syscall {
            let _ = writeln!(out, "    in {}", syscall_text(sys));
        }
        if let Some(sig) = first.redelivered_signal {
            let _ = writeln!(
                out,
                "    signal {sig} arrived during the capture and was re-delivered"
            );
        }
        if first.frames.is_empty() {
            let why = if first.registers.is_none() {
                "not stopped: no stack"
            } else {
                "no frames"
            };
            let _ = writeln!(out, "    {}", style.dim(&format!("({why})")));
        }
        for (i, f) in first.frames.iter().enumerate() {
            fmt_frame(out, i, f, style);
        }
        if let Some(why) = &first.unwind_stop {
            let _ = writeln!(
                out,
                "    {}",
                style.dim(&format!("(unwinding stopped: {why})"))
            );
        }
        if !first.kernel_stack.is_empty() && opts.all {
            let _ = writeln!(out, "    kernel: {}", first.kernel_stack.join(" ← "));
        }
        out.push('\n');
    }
}

/// One frame (and the calls inlined at it), as the report prints every stack.
/// The frame's pc, or blanks where a log printed none.
fn pc_text(f: &Frame) -> String {
    if f.pc == 0 && f.trust == crate::model::FrameTrust::Text {
        " ".repeat(18)
    } else {
        format!("{:#018x}", f.pc)
    }
}

pub fn fmt_frame(out: &mut String, i: usize, f: &Frame, style: Style) {
    let module = f
        .module
        .as_deref()
        .map(|m| match m.rsplit('/').next() {
            // A binary outside the process's root (runc init after pivot_root) shows as "/".
            Some("") | None => "[exe]",
            Some(base) => base,
        })
        .unwrap_or("?");
    // Calls inlined at this pc come first, innermost first, under the same frame number.
    for inl in &f.inlined {
        let _ = writeln!(
            out,
            "    #{i:<3} {}  {} {}",
            pc_text(f),
            style.bold(&inl.function),
            style.dim("(inlined)")
        );
        if let (Some(file), Some(l)) = (&inl.file, inl.line) {
            let _ = writeln!(out, "    {:>3}  {:18}  at {file}:{l}", "", "");
        }
    }
    let name = match &f.function {
        Some(n) => {
            let off = f
                .function_offset
                .map(|o| format!("+{o:#x}"))
                .unwrap_or_default();
            let nearest = if f.symbol_source == Some(SymbolSource::NearestExport) {
                style.yellow(" (nearest export: may be wrong)")
            } else {
                String::new()
            };
            format!("{}{off}{nearest}", style.bold(n))
        }
        None => style.yellow("??"),
    };
    let _ = writeln!(
        out,
        "    #{i:<3} {}  {name}  {}  {}",
        pc_text(f),
        style.dim(module),
        style.dim(&format!("[{}]", f.trust.name()))
    );
    if let (Some(file), Some(line)) = (&f.file, f.line) {
        let _ = writeln!(out, "    {:>3}  {:18}  at {file}:{line}", "", "");
    }
}

/// For a path argument naming an fd of the process (`/proc/self/fd/5`, as runc opens its
/// exec fifo), what that fd is.
fn fd_path_target(p: &Process, s: &crate::model::Syscall) -> Option<String> {
    let path = s.path.as_deref()?;
    let n = path
        .strip_prefix("/proc/self/fd/")
        .or_else(|| path.strip_prefix("/proc/thread-self/fd/"))
        .or_else(|| path.strip_prefix(&format!("/proc/{}/fd/", p.pid)))?;
    let fd = p.fd(n.parse().ok()?)?;
    let (kind, _) = fd_kind(fd);
    Some(format!("{} ({kind})", fd.target))
}

pub fn syscall_text(s: &crate::model::Syscall) -> String {
    let mut text = s.decoded.clone().unwrap_or_else(|| {
        format!(
            "{}(…)",
            s.name.as_deref().unwrap_or(&format!("syscall {}", s.nr))
        )
    });
    if let Some(w) = &s.futex
        && let Some(v) = w.value
    {
        let _ = write!(text, " [word={v}]");
    }
    if let Some(p) = &s.path {
        let _ = write!(text, " path={p:?}");
    }
    text
}

fn fds(out: &mut String, p: &Process, style: Style) {
    if p.fds.is_empty() {
        return;
    }
    let mut t = style.table(&["FD", "TYPE", "TARGET", "FLAGS", "POS", "DETAIL"]);
    for fd in &p.fds {
        let (kind, detail) = fd_kind(fd);
        t.add_row(vec![
            style.cell(fd.fd, false),
            style.cell(kind, false),
            style.cell(&fd.target, false),
            style.cell(fd.flags.map(open_flags).unwrap_or_default(), false),
            style.cell(fd.pos.map(|p| p.to_string()).unwrap_or_default(), false),
            style.cell(detail, false),
        ]);
    }
    let _ = writeln!(
        out,
        "  {}\n{}\n",
        style.bold(&format!("File descriptors ({})", p.fds.len())),
        indent(&t.to_string(), 2)
    );
}

fn fd_kind(fd: &Fd) -> (&'static str, String) {
    match &fd.kind {
        FdKind::File { deleted, .. } => (
            "file",
            if *deleted {
                "deleted".into()
            } else {
                String::new()
            },
        ),
        FdKind::Fifo { .. } => ("fifo", String::new()),
        FdKind::Pipe { inode } => ("pipe", format!("inode {inode}")),
        FdKind::Socket { inode, info } => ("socket", {
            let mut d = format!("inode {inode}");
            match info {
                Some(crate::model::SocketInfo::Unix(u)) => {
                    let _ = write!(d, ", unix {} {}", u.socket_type, u.state);
                    if let Some(p) = &u.path {
                        let _ = write!(d, " {p}");
                    }
                    if let Some(peer) = u.peer_inode {
                        let _ = write!(d, ", peer inode {peer}");
                    }
                }
                Some(crate::model::SocketInfo::Inet {
                    protocol,
                    local,
                    remote,
                    state,
                }) => {
                    let _ = write!(d, ", {protocol} {local} → {remote} {state}");
                }
                Some(crate::model::SocketInfo::Netlink { protocol }) => {
                    let _ = write!(d, ", netlink {protocol}");
                }
                None => {}
            }
            d
        }),
        FdKind::Memfd { name, seals } => (
            "memfd",
            format!(
                "{name}{}",
                seals
                    .map(|s| format!(", seals {}", seal_names(s)))
                    .unwrap_or_default()
            ),
        ),
        FdKind::Eventfd { count } => (
            "eventfd",
            count.map(|c| format!("count {c}")).unwrap_or_default(),
        ),
        FdKind::Epoll { targets } => (
            "epoll",
            format!(
                "watches fd {}",
                targets
                    .iter()
                    .map(|t| t.fd.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        FdKind::Inotify { watches } => ("inotify", format!("{} watch(es)", watches.len())),
        FdKind::Signalfd { sigmask } => ("signalfd", sigmask.clone().unwrap_or_default()),
        FdKind::Timerfd { detail } => ("timerfd", detail.clone().unwrap_or_default()),
        FdKind::Pidfd { pid } => ("pidfd", pid.map(|p| format!("pid {p}")).unwrap_or_default()),
        FdKind::AnonInode { name } => ("anon", name.clone()),
        FdKind::Device { .. } => ("device", String::new()),
        FdKind::Other => ("?", String::new()),
    }
}

/// Where a signal came from, from siginfo's code and the word at si_addr: a fault's
/// address for a kernel-raised signal (code > 0); for one sent by a process (SI_USER 0,
/// SI_QUEUE -1, SI_TKILL -6, …) the same bytes hold the sender's pid and uid instead.
fn signal_origin(code: i32, addr: u64) -> String {
    if code > 0 {
        format!(", fault address {addr:#x}")
    } else {
        format!(", sent by pid {} (uid {})", addr as u32, addr >> 32)
    }
}

pub fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        31 => "SIGSYS",
        _ => return format!("signal {n}"),
    };
    name.to_string()
}

/// Open flags in words: access mode plus the flags that matter when reading a hang.
pub fn open_flags(f: u32) -> String {
    let mut v = vec![match f & 3 {
        0 => "r",
        1 => "w",
        _ => "rw",
    }];
    for (bit, name) in [
        (0o2000u32, "append"),
        (0o4000, "nonblock"),
        (0o2000000, "cloexec"),
        (0o200000, "directory"),
        (0o10000000, "path"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    v.join(",")
}

/// memfd seals (F_GET_SEALS) in words.
pub fn seal_names(s: u32) -> String {
    let names: Vec<&str> = [
        (1u32, "SEAL"),
        (2, "SHRINK"),
        (4, "GROW"),
        (8, "WRITE"),
        (16, "FUTURE_WRITE"),
        (32, "EXEC"),
    ]
    .iter()
    .filter(|(b, _)| s & b != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}

/// Mappings worth a look when reading a hang: code, shared memory, memfds, deleted files.
pub fn is_notable(m: &Mapping) -> bool {
    m.is_exec() || m.is_shared() || m.memfd_name().is_some() || m.is_deleted()
}

fn mappings(out: &mut String, p: &Process, style: Style, opts: ReportOptions) {
    let shown: Vec<&Mapping> = p
        .mappings
        .iter()
        .filter(|m| opts.all || is_notable(m))
        .collect();
    if shown.is_empty() {
        return;
    }
    let mut t = style.table(&["RANGE", "SIZE", "PERMS", "OFFSET", "RSS", "PATH", "VMFLAGS"]);
    for m in &shown {
        t.add_row(vec![
            style.cell(format!("{:x}-{:x}", m.start, m.end), false),
            style.cell(fmt_kb((m.end - m.start) / 1024), false),
            style.cell(
                &m.perms,
                m.memfd_name().is_some() && m.is_write() && !m.is_shared(),
            ),
            style.cell(format!("{:#x}", m.offset), false),
            style.cell(m.rss_kb.map(fmt_kb).unwrap_or_default(), false),
            style.cell(m.path.as_deref().unwrap_or("[anon]"), false),
            style.cell(m.vm_flags.join(" "), false),
        ]);
    }
    let title = if opts.all {
        format!("Mappings ({})", p.mappings.len())
    } else {
        format!(
            "Notable mappings ({} of {}: code, shared, memfd, deleted; --all for every one)",
            shown.len(),
            p.mappings.len()
        )
    };
    let _ = writeln!(
        out,
        "  {}\n{}\n",
        style.bold(&title),
        indent(&t.to_string(), 2)
    );
}

fn notes(out: &mut String, s: &Snapshot, style: Style) {
    if s.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", style.bold("What is missing"));
    for n in &s.notes {
        let who = match (n.pid, n.tid) {
            (Some(p), Some(t)) => format!("pid {p} tid {t}: "),
            (Some(p), None) => format!("pid {p}: "),
            _ => String::new(),
        };
        let _ = writeln!(out, "  - {}{}", who, style.yellow(&n.message));
    }
}

fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A wait in the runtime's words: "3 minutes", "2 hours", or seconds when short.
pub fn fmt_duration_ns(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} minutes", s / 60),
        _ => format!("{} hours", s / 3600),
    }
}

pub fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

fn fmt_kb(kb: u64) -> String {
    if kb >= 1024 * 1024 {
        format!("{:.1}G", kb as f64 / 1048576.0)
    } else if kb >= 1024 {
        format!("{:.1}M", kb as f64 / 1024.0)
    } else {
        format!("{kb}K")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_flags_and_seals() {
        assert_eq!(open_flags(0o2004002), "rw,nonblock,cloexec");
        assert_eq!(open_flags(0), "r");
        assert_eq!(seal_names(0x1f), "SEAL|SHRINK|GROW|WRITE|FUTURE_WRITE");
        assert_eq!(seal_names(0), "none");
        assert_eq!(fmt_us(812), "812 µs");
        assert_eq!(fmt_us(1500), "1.50 ms");
    }

    #[test]
    fn a_sent_signal_names_its_sender_not_a_fault_address() {
        assert_eq!(signal_origin(1, 0x20), ", fault address 0x20");
        // SI_TKILL from pid 25672, uid 0 (si_pid and si_uid share si_addr's bytes).
        assert_eq!(signal_origin(-6, 25672), ", sent by pid 25672 (uid 0)");
        assert_eq!(
            signal_origin(0, (1000u64 << 32) | 77),
            ", sent by pid 77 (uid 1000)"
        );
    }
}
