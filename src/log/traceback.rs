//! The Go runtime's crash and dump text, one line at a time (after the log's prefix is
//! stripped): `panic: …` (with `[recovered]` and nested panics), `fatal error: …`,
//! `unexpected fault address`, the `[signal …]` line, `SIGQUIT: quit` / `PC=… m=N` and the
//! register dump of GOTRACEBACK=crash, `runtime stack:`, and goroutine stacks in every header
//! form of Go 1.17 – 1.25 (`goroutine N [status, N minutes, locked to thread]:`,
//! `goroutine N gp=0x… m=N mp=0x… [status]:`). A pprof `debug=2` dump or a bare dump is
//! the same goroutine stacks without a message.

use crate::model::{Arch, Frame, FrameTrust, Goroutine, InlinedFrame, Registers, Thread};
use std::collections::BTreeMap;

/// What started the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    Panic,
    Fatal,
    /// `SIGQUIT: quit` (or another signal the runtime dumps on).
    Signal,
    /// Goroutine stacks without a message: pprof `debug=2`, `runtime.Stack(all)`.
    Goroutines,
}

/// The `[signal SIGSEGV: segmentation violation code=0x1 addr=0x20 pc=0x…]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalLine {
    pub signo: i32,
    pub name: String,
    pub code: Option<i32>,
    pub addr: Option<u64>,
    pub pc: Option<u64>,
    pub text: String,
}

/// One Go dump found in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    pub kind: DumpKind,
    pub first_line: u64,
    pub last_line: u64,
    /// `panic:` values in the printed order (the first one's `[recovered]` included).
    pub panics: Vec<String>,
    /// Lines continuing a panic message (`\trunning tests:`, multi-line values).
    pub message_lines: Vec<String>,
    pub fatal: Option<String>,
    /// `unexpected fault address 0x…`.
    pub fault_address: Option<u64>,
    pub signal: Option<SignalLine>,
    /// `SIGQUIT: quit`: the signal name and its number.
    pub dump_signal: Option<(String, i32)>,
    pub goroutines: Vec<Goroutine>,
    /// The runtime's per-M records of GOTRACEBACK=crash and `runtime stack:` (g0 stacks).
    pub threads: Vec<Thread>,
    pub exit_status: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Messages before the first goroutine.
    Header,
    /// Frames of the last goroutine.
    Goroutine,
    /// Frames of the runtime stack (into the last thread).
    RuntimeStack,
    /// Frames of `goroutine 0` of a crash dump's M record (into the last thread).
    MStack,
    /// After a blank line.
    Between,
}

/// Whether the line belonged to the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    Taken,
    /// The dump ended before this line; the line is not part of it.
    Ended,
}

/// Lines a panic message may continue over before a goroutine header must come.
const MAX_HEADER_LINES: u32 = 64;

pub struct Parser {
    dump: Dump,
    state: State,
    header_lines: u32,
    /// Inlined frames waiting for the physical frame that holds them.
    pending_inlined: Vec<InlinedFrame>,
    /// A function line waiting for its file line.
    pending: Option<PendingFrame>,
}

#[derive(Debug)]
struct PendingFrame {
    function: String,
    inlined: bool,
    created_by: Option<Option<i64>>,
}

impl Parser {
    /// A parser when `line` starts a dump.
    pub fn start(line: &str, line_no: u64) -> Option<Parser> {
        let kind = if line.starts_with("panic: ") {
            DumpKind::Panic
        } else if line.starts_with("fatal error: ") || line.starts_with("unexpected fault address")
        {
            DumpKind::Fatal
        } else if dump_signal(line).is_some() {
            DumpKind::Signal
        } else if goroutine_header(line).is_some() {
            DumpKind::Goroutines
        } else {
            return None;
        };
        let mut p = Parser {
            dump: Dump {
                kind,
                first_line: line_no,
                last_line: line_no,
                panics: Vec::new(),
                message_lines: Vec::new(),
                fatal: None,
                fault_address: None,
                signal: None,
                dump_signal: None,
                goroutines: Vec::new(),
                threads: Vec::new(),
                exit_status: None,
            },
            state: State::Header,
            header_lines: 0,
            pending_inlined: Vec::new(),
            pending: None,
        };
        p.feed(line, line_no);
        Some(p)
    }

    pub fn feed(&mut self, line: &str, line_no: u64) -> Fed {
        let fed = self.take(line);
        if fed == Fed::Taken {
            self.dump.last_line = line_no;
        }
        fed
    }

    fn take(&mut self, line: &str) -> Fed {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A file line completes the pending function line.
        if let Some(pf) = self.pending.take() {
            if let Some((file, lineno, off, pc)) = file_line(line) {
                self.frame(pf, Some(file), lineno, off, pc);
                return Fed::Taken;
            }
            // A frame without its file line (truncated): keep the name.
            self.frame(pf, None, None, None, None);
        }
        if line.trim().is_empty() {
            if self.state != State::Header {
                self.flush_inlined();
                self.state = State::Between;
            }
            return Fed::Taken;
        }
        if let Some(g) = goroutine_header(line) {
            self.flush_inlined();
            if g.id == 0 && !self.dump.threads.is_empty() && self.dump.dump_signal.is_some() {
                // GOTRACEBACK=crash: the g0 stack of the M whose record this is.
                self.state = State::MStack;
            } else {
                self.dump.goroutines.push(g);
                self.state = State::Goroutine;
            }
            return Fed::Taken;
        }
        if register_line(line).is_some() {
            self.register(line);
            return Fed::Taken;
        }
        match self.state {
            State::Header => self.header(line),
            State::Goroutine | State::RuntimeStack | State::MStack => self.in_stack(line),
            State::Between => self.between(line),
        }
    }

    fn header(&mut self, line: &str) -> Fed {
        self.header_lines += 1;
        if let Some(rest) = line.strip_prefix("panic: ") {
            self.dump.panics.push(rest.to_string());
        } else if let Some(rest) = line.trim_start().strip_prefix("panic: ")
            && !self.dump.panics.is_empty()
        {
            // Nested panics are tab-indented.
            self.dump.panics.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("fatal error: ") {
            self.dump.fatal = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("unexpected fault address ") {
            self.dump.fault_address = parse_hex(rest.trim());
        } else if let Some(sig) = signal_line(line) {
            self.dump.signal = Some(sig);
        } else if let Some(sig) = dump_signal(line) {
            self.dump.dump_signal = Some(sig);
        } else if line.starts_with("PC=") {
            self.m_record(line);
        } else if line == "runtime stack:" {
            self.runtime_stack();
        } else if line == "-----" || line.starts_with("goroutine running on other thread") {
        } else if self.header_lines <= MAX_HEADER_LINES
            && (!self.dump.panics.is_empty() || self.dump.fatal.is_some())
        {
            self.dump.message_lines.push(line.trim_start().to_string());
        } else {
            return Fed::Ended;
        }
        Fed::Taken
    }

    fn between(&mut self, line: &str) -> Fed {
        if line == "runtime stack:" {
            self.runtime_stack();
        } else if line == "-----" {
        } else if let Some(sig) = dump_signal(line) {
            if self.dump.dump_signal.is_none() {
                self.dump.dump_signal = Some(sig);
            }
        } else if line.starts_with("PC=") {
            self.m_record(line);
        } else if let Some(rest) = line.strip_prefix("exit status ") {
            self.dump.exit_status = rest.trim().parse().ok();
        } else if line.starts_with("goroutine running on other thread") || line.starts_with("...") {
        } else {
            return Fed::Ended;
        }
        Fed::Taken
    }

    fn in_stack(&mut self, line: &str) -> Fed {
        if let Some(rest) = line.strip_prefix("created by ") {
            let (func, parent) = match rest.rsplit_once(" in goroutine ") {
                Some((f, n)) => (f, n.trim().parse().ok()),
                None => (rest, None),
            };
            self.pending = Some(PendingFrame {
                function: func.trim().to_string(),
                inlined: false,
                created_by: Some(parent),
            });
            return Fed::Taken;
        }
        if line.starts_with("...") && line.ends_with("elided...") {
            let stop = line.trim_matches('.').to_string();
            if let Some(g) = self.dump.goroutines.last_mut()
                && self.state == State::Goroutine
            {
                g.unwind_stop = Some(stop);
            }
            return Fed::Taken;
        }
        if line.starts_with("goroutine running on other thread") {
            if let Some(g) = self.dump.goroutines.last_mut() {
                g.unwind_stop = Some(line.to_string());
            }
            return Fed::Taken;
        }
        if let Some((func, inlined)) = function_line(line) {
            self.pending = Some(PendingFrame {
                function: func,
                inlined,
                created_by: None,
            });
            return Fed::Taken;
        }
        // A file line without a function line: the runtime prints those for frames it cannot
        // name (g0 stacks of other Ms in Go 1.19).
        if let Some((file, lineno, off, pc)) = file_line(line) {
            self.frame(
                PendingFrame {
                    function: String::new(),
                    inlined: false,
                    created_by: None,
                },
                Some(file),
                lineno,
                off,
                pc,
            );
            return Fed::Taken;
        }
        self.between(line)
    }

    fn runtime_stack(&mut self) {
        self.flush_inlined();
        self.dump.threads.push(Thread {
            name: "runtime stack".into(),
            ..Default::default()
        });
        self.state = State::RuntimeStack;
    }

    /// `PC=0x40268c m=0 sigcode=0`: the start of an M's record in a crash dump.
    fn m_record(&mut self, line: &str) {
        let mut t = Thread {
            name: "m".into(),
            ..Default::default()
        };
        for kv in line.split_whitespace() {
            if let Some(m) = kv.strip_prefix("m=") {
                t.name = format!("m={m}");
            } else if let Some(pc) = kv.strip_prefix("PC=").and_then(parse_hex) {
                t.frames.push(Frame::bare(pc, 0, FrameTrust::Text));
            }
        }
        // The PC frame is only the signal's pc; the M's stack follows as goroutine 0.
        t.frames.clear();
        t.state = "signalled".into();
        self.dump.threads.push(t);
    }

    fn register(&mut self, line: &str) {
        let Some((name, value)) = register_line(line) else {
            return;
        };
        if self.dump.threads.is_empty() {
            self.dump.threads.push(Thread {
                name: "m".into(),
                ..Default::default()
            });
        }
        let t = self.dump.threads.last_mut().expect("pushed above");
        let arch = if name == "rip"
            || name == "rax"
            || t.registers.as_ref().is_some_and(|r| r.arch == Arch::X86_64)
        {
            Arch::X86_64
        } else {
            Arch::Aarch64
        };
        let regs = t.registers.get_or_insert_with(|| Registers {
            arch,
            values: BTreeMap::new(),
        });
        regs.arch = arch;
        regs.values.insert(name.to_string(), value);
    }

    fn frame(
        &mut self,
        pf: PendingFrame,
        file: Option<String>,
        line: Option<u32>,
        offset: Option<u64>,
        pc: Option<u64>,
    ) {
        if pf.inlined {
            self.pending_inlined.push(InlinedFrame {
                function: pf.function,
                file,
                line,
            });
            return;
        }
        let mut f = Frame::bare(pc.unwrap_or(0), 0, FrameTrust::Text);
        f.function = (!pf.function.is_empty()).then_some(pf.function);
        f.file = file;
        f.line = line;
        f.function_offset = offset;
        if let Some(parent) = pf.created_by {
            if let Some(g) = self.dump.goroutines.last_mut() {
                // The runtime's own goroutines (GC workers, finalizers, …) are started by
                // runtime functions; the text shows that much of isSystemGoroutine.
                g.system = f
                    .function
                    .as_deref()
                    .is_some_and(|n| n.starts_with("runtime."));
                g.created_by = Some(f);
                g.parent_id = parent;
            }
            return;
        }
        f.inlined = std::mem::take(&mut self.pending_inlined);
        self.push_frame(f);
    }

    fn push_frame(&mut self, f: Frame) {
        match self.state {
            State::RuntimeStack | State::MStack => {
                if let Some(t) = self.dump.threads.last_mut() {
                    t.frames.push(f);
                }
            }
            _ => {
                if let Some(g) = self.dump.goroutines.last_mut() {
                    g.frames.push(f);
                }
            }
        }
    }

    /// Inlined frames with no physical frame after them (the stack was cut): keep them as
    /// frames of their own.
    fn flush_inlined(&mut self) {
        if let Some(pf) = self.pending.take() {
            self.frame(pf, None, None, None, None);
        }
        for i in std::mem::take(&mut self.pending_inlined) {
            let mut f = Frame::bare(0, 0, FrameTrust::Text);
            f.function = Some(i.function);
            f.file = i.file;
            f.line = i.line;
            self.push_frame(f);
        }
    }

    /// The dump, if it held goroutines or a runtime stack (a `panic:` line alone is no
    /// traceback: the text was cut, or quoted a message).
    pub fn finish(mut self) -> Option<Dump> {
        self.flush_inlined();
        if self.dump.goroutines.is_empty() && self.dump.threads.iter().all(|t| t.frames.is_empty())
        {
            return None;
        }
        Some(self.dump)
    }
}

/// `goroutine N [status…]:` in any release's form.
pub fn goroutine_header(line: &str) -> Option<Goroutine> {
    let rest = line.strip_prefix("goroutine ")?;
    let rest = rest.strip_suffix(':')?;
    let (head, bracket) = rest.split_once(" [")?;
    let bracket = bracket.strip_suffix(']')?;
    let mut words = head.split(' ');
    let id: i64 = words.next()?.parse().ok()?;
    for w in words {
        // Go 1.23+: gp=0x… m=N mp=0x… (or m=nil).
        let (k, _) = w.split_once('=')?;
        if !matches!(k, "gp" | "m" | "mp") {
            return None;
        }
    }
    let mut g = Goroutine {
        id,
        ..Default::default()
    };
    let mut parts = bracket.split(", ");
    let status = parts.next()?.trim();
    if status.is_empty() {
        return None;
    }
    let status = status.strip_suffix(" (scan)").unwrap_or(status);
    let status = status.strip_suffix(" (durable)").unwrap_or(status);
    const STATES: &[&str] = &[
        "idle",
        "runnable",
        "running",
        "syscall",
        "waiting",
        "dead",
        "copystack",
        "preempted",
    ];
    if STATES.contains(&status) {
        g.status = status.to_string();
    } else {
        g.status = "waiting".into();
        g.wait_reason = Some(status.to_string());
    }
    for p in parts {
        if let Some(m) = p.strip_suffix(" minutes") {
            g.waited_ns = m.trim().parse::<u64>().ok().map(|m| m * 60_000_000_000);
        } else if p == "locked to thread" {
            g.locked_to_thread = true;
        }
    }
    Some(g)
}

/// `SIGQUIT: quit` and the other signals the runtime names before a dump.
fn dump_signal(line: &str) -> Option<(String, i32)> {
    let (name, _) = line.split_once(": ")?;
    let signo = signal_number(name)?;
    Some((name.to_string(), signo))
}

fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "SIGHUP" => 1,
        "SIGINT" => 2,
        "SIGQUIT" => 3,
        "SIGILL" => 4,
        "SIGTRAP" => 5,
        "SIGABRT" => 6,
        "SIGBUS" => 7,
        "SIGFPE" => 8,
        "SIGSEGV" => 11,
        "SIGPIPE" => 13,
        "SIGTERM" => 15,
        "SIGSTKFLT" => 16,
        "SIGSYS" => 31,
        _ => return None,
    })
}

/// `[signal SIGSEGV: segmentation violation code=0x1 addr=0x20 pc=0x48403b]`.
pub fn signal_line(line: &str) -> Option<SignalLine> {
    let inner = line.strip_prefix("[signal ")?.strip_suffix(']')?;
    let (name, rest) = inner.split_once(':')?;
    let mut s = SignalLine {
        signo: signal_number(name.trim())?,
        name: name.trim().to_string(),
        code: None,
        addr: None,
        pc: None,
        text: line.to_string(),
    };
    for w in rest.split_whitespace() {
        if let Some(v) = w.strip_prefix("code=") {
            s.code = parse_hex(v).map(|c| c as i32).or_else(|| v.parse().ok());
        } else if let Some(v) = w.strip_prefix("addr=") {
            s.addr = parse_hex(v);
        } else if let Some(v) = w.strip_prefix("pc=") {
            s.pc = parse_hex(v);
        }
    }
    Some(s)
}

/// `rax    0x0` (amd64) or `r0      0x0` / `lr 0x…` (arm64).
fn register_line(line: &str) -> Option<(&str, u64)> {
    let mut it = line.split_whitespace();
    let name = it.next()?;
    let value = it.next()?;
    if it.next().is_some()
        || name.len() > 6
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        || !name.as_bytes()[0].is_ascii_lowercase()
        || !line.starts_with(name)
    {
        return None;
    }
    Some((name, parse_hex(value)?))
}

/// `pkg.(*T).Method(args)` → the name, and whether it is an inlined frame (`(...)`).
pub fn function_line(line: &str) -> Option<(String, bool)> {
    if line.starts_with(char::is_whitespace) || !line.ends_with(')') {
        return None;
    }
    // The argument list is the last balanced parenthesised group.
    let bytes = line.as_bytes();
    let mut depth = 0i32;
    let mut open = None;
    for (i, &b) in bytes.iter().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let open = open?;
    let name = &line[..open];
    if name.is_empty() || name.contains(' ') || name.contains('\t') {
        return None;
    }
    Some((name.to_string(), &line[open..] == "(...)"))
}

/// A frame's file line: file, line, offset from the function's entry, pc (where printed).
pub type FileLine = (String, Option<u32>, Option<u64>, Option<u64>);

/// `\t/path/file.go:123 +0x1f fp=0x… sp=0x… pc=0x…` → file, line, offset, pc.
pub fn file_line(line: &str) -> Option<FileLine> {
    if !line.starts_with(['\t', ' ']) {
        return None;
    }
    let t = line.trim();
    let (loc, tail) = match t.find(" +0x").or_else(|| t.find(" fp=")) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let (file, num) = loc.rsplit_once(':')?;
    let lineno: u32 = num.parse().ok()?;
    if file.is_empty() || !(file.contains('/') || file.contains('\\') || file.contains('.')) {
        return None;
    }
    let mut off = None;
    let mut pc = None;
    for w in tail.split_whitespace() {
        if let Some(v) = w.strip_prefix('+') {
            off = parse_hex(v);
        } else if let Some(v) = w.strip_prefix("pc=") {
            pc = parse_hex(v);
        }
    }
    Some((file.to_string(), Some(lineno), off, pc))
}

pub fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}
