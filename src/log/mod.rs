//! `wedge log`: finds Go panics, fatal errors, goroutine dumps, race reports and runc/nsexec
//! and logrus lines inside arbitrary text (CI logs with timestamps and prefixes, journal
//! output), and builds a Snapshot of what the text shows for the signature catalog.
//!
//! The scan is one pass over the bytes: between dumps it jumps from one candidate word to the
//! next with SIMD substring search (most lines of a CI log are never looked at one by one);
//! inside a dump it reads line by line, stripping the prefix learnt from the dump's first line
//! (see [`prefix`]). Each format has its own parser: [`traceback`] (the runtime's crash and
//! dump text), [`race`] (the race detector), [`runtime_lines`] (nsexec and logrus lines).

pub mod prefix;
pub mod race;
pub mod runtime_lines;
pub mod traceback;

use crate::model::{
    CrashSignal, DataRace, GoFault, GoProcess, Host, LogMessage, NsexecLine, Process, Snapshot,
    Source,
};
use memchr::memmem::Finder;
use prefix::Prefix;
use std::collections::HashSet;
use std::io::Read;
use traceback::{Dump, DumpKind};

/// Lines of other output a dump may be interleaved with before it is considered ended.
const MAX_MISSES: u32 = 64;
/// Upper bounds on what single lines add to a snapshot (a 1 GiB debug log must not make a
/// snapshot of millions of lines).
const MAX_NSEXEC: usize = 10_000;
const MAX_MESSAGES: usize = 1_000;
const MAX_DUMPS: usize = 1_000;
/// The state of a process [`snapshot`] makes for race reports that no dump follows (every
/// other process of a log's snapshot is one dump, in the dumps' order).
pub const RACE_ONLY_STATE: &str = "race reported";
/// A race report this close (in lines) before a dump belongs to the same program.
const RACE_TO_DUMP_LINES: u64 = 20;

/// Everything the scan found.
#[derive(Debug, Default)]
pub struct LogScan {
    /// Dumps with the prefix learnt from their first line.
    pub dumps: Vec<(Dump, Prefix)>,
    /// Race reports: first line, last line, report.
    pub races: Vec<(u64, u64, DataRace)>,
    pub nsexec: Vec<NsexecLine>,
    pub messages: Vec<LogMessage>,
    pub lines: u64,
    pub bytes: u64,
    /// What had to be dropped at the caps above.
    pub dropped_nsexec: u64,
    pub dropped_messages: u64,
    pub dropped_dumps: u64,
}

impl LogScan {
    /// Whether anything traceback-like (or a runtime line) was found.
    pub fn is_empty(&self) -> bool {
        self.dumps.is_empty()
            && self.races.is_empty()
            && self.nsexec.is_empty()
            && self.messages.is_empty()
    }
}

enum Block {
    Trace(Box<traceback::Parser>),
    Race(race::Parser),
}

/// The incremental scanner: feed it chunks of any size, then [`Scanner::finish`].
pub struct Scanner {
    out: LogScan,
    /// Lines completed so far (the number of the last line handled).
    line_no: u64,
    carry: Vec<u8>,
    block: Option<(Block, Prefix, u32)>,
    finders: Vec<Finder<'static>>,
    nsexec_seen: HashSet<(u32, i32)>,
}

/// The words that can start something worth reading; everything else is skipped by search.
const NEEDLES: &[&str] = &[
    "panic: ",
    "fatal error: ",
    "unexpected fault address",
    "goroutine ",
    "SIG",
    "WARNING: DATA RACE",
    "nsexec-",
    "level=",
];

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner {
            out: LogScan::default(),
            line_no: 0,
            carry: Vec::new(),
            block: None,
            finders: NEEDLES.iter().map(|n| Finder::new(n.as_bytes())).collect(),
            nsexec_seen: HashSet::new(),
        }
    }

    /// Scans the next bytes of the text.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.out.bytes += chunk.len() as u64;
        let mut pos = 0;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..i]);
                    self.line_no += 1;
                    self.line(&line);
                    line.clear();
                    self.carry = line;
                    pos = i + 1;
                }
                None => {
                    self.carry.extend_from_slice(chunk);
                    return;
                }
            }
        }
        // Cached next hit of each needle (absolute in chunk); None = none left.
        let mut next: Vec<Option<usize>> = vec![Some(0); self.finders.len()];
        let mut searched_from: Vec<usize> = vec![usize::MAX; self.finders.len()];
        while pos < chunk.len() {
            let start = if self.block.is_some() {
                pos
            } else {
                let mut best: Option<usize> = None;
                for (k, f) in self.finders.iter().enumerate() {
                    let stale = match next[k] {
                        Some(at) => at < pos || searched_from[k] == usize::MAX,
                        None => false,
                    };
                    if stale {
                        next[k] = f.find(&chunk[pos..]).map(|i| pos + i);
                        searched_from[k] = pos;
                    }
                    if let Some(at) = next[k] {
                        best = Some(best.map_or(at, |b| b.min(at)));
                    }
                }
                match best {
                    None => {
                        // Nothing more in this chunk: count its lines, keep its last part.
                        let rest = &chunk[pos..];
                        match memchr::memrchr(b'\n', rest) {
                            Some(i) => {
                                self.line_no += count_lines(&rest[..=i]);
                                self.carry.extend_from_slice(&rest[i + 1..]);
                            }
                            None => self.carry.extend_from_slice(rest),
                        }
                        return;
                    }
                    Some(hit) => {
                        let ls =
                            memchr::memrchr(b'\n', &chunk[pos..hit]).map_or(pos, |i| pos + i + 1);
                        self.line_no += count_lines(&chunk[pos..ls]);
                        ls
                    }
                }
            };
            match memchr::memchr(b'\n', &chunk[start..]) {
                Some(i) => {
                    self.line_no += 1;
                    self.line(&chunk[start..start + i]);
                    pos = start + i + 1;
                }
                None => {
                    self.carry.extend_from_slice(&chunk[start..]);
                    return;
                }
            }
        }
    }

    /// Ends the text: the last line without a newline, an open dump.
    pub fn finish(mut self) -> LogScan {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line_no += 1;
            self.line(&line);
        }
        self.close_block();
        self.out.lines = self.line_no;
        self.out
    }

    fn line(&mut self, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line_no = self.line_no;
        if let Some((block, prefix, misses)) = &mut self.block {
            match prefix.strip(raw) {
                Some(rest) => {
                    let text = String::from_utf8_lossy(rest);
                    let ended = match block {
                        Block::Trace(p) => p.feed(&text, line_no) == traceback::Fed::Ended,
                        Block::Race(p) => match p.feed(&text, line_no) {
                            race::Fed::Taken => false,
                            race::Fed::Done => {
                                self.close_block();
                                return;
                            }
                            race::Fed::Ended => true,
                        },
                    };
                    if !ended {
                        *misses = 0;
                        return;
                    }
                    self.close_block();
                }
                None => {
                    *misses += 1;
                    if *misses <= MAX_MISSES {
                        self.single(raw, line_no);
                        return;
                    }
                    self.close_block();
                }
            }
        }
        self.idle_line(raw, line_no);
    }

    /// A line outside any dump: maybe the start of one, maybe a single runtime line.
    fn idle_line(&mut self, raw: &[u8], line_no: u64) {
        self.single(raw, line_no);
        // Candidates in the order they appear on the line.
        let mut starts: Vec<usize> = self.finders[..6]
            .iter()
            .filter_map(|f| f.find(raw))
            .collect();
        starts.sort_unstable();
        for at in starts {
            let text = String::from_utf8_lossy(&raw[at..]);
            let prefix = Prefix::learn(&raw[..at]);
            if let Some(p) = race::Parser::start(&text, line_no) {
                self.block = Some((Block::Race(p), prefix, 0));
                return;
            }
            if let Some(p) = traceback::Parser::start(&text, line_no) {
                self.block = Some((Block::Trace(Box::new(p)), prefix, 0));
                return;
            }
        }
    }

    /// nsexec and logrus lines: they may stand anywhere, also between a dump's lines.
    fn single(&mut self, raw: &[u8], line_no: u64) {
        let has_nsexec = self.finders[6].find(raw).is_some();
        let has_level = self.finders[7].find(raw).is_some();
        if !has_nsexec && !has_level {
            return;
        }
        let text = String::from_utf8_lossy(raw);
        let journal = journal_of(&text);
        if has_nsexec && let Some(n) = runtime_lines::nsexec(&text, line_no) {
            if self.nsexec_seen.len() >= MAX_NSEXEC {
                self.out.dropped_nsexec += 1;
            } else if self.nsexec_seen.insert((n.stage, n.pid)) {
                self.out.nsexec.push(n);
            }
            return;
        }
        if has_level && let Some(mut m) = runtime_lines::logrus_error(&text, line_no) {
            if self.out.messages.len() >= MAX_MESSAGES {
                self.out.dropped_messages += 1;
            } else {
                (m.program, m.pid) = journal.unzip();
                self.out.messages.push(m);
            }
        }
    }

    fn close_block(&mut self) {
        let Some((block, prefix, _)) = self.block.take() else {
            return;
        };
        match block {
            Block::Trace(p) => {
                if let Some(d) = p.finish() {
                    if self.out.dumps.len() >= MAX_DUMPS {
                        self.out.dropped_dumps += 1;
                    } else {
                        self.out.dumps.push((d, prefix));
                    }
                }
            }
            Block::Race(p) => {
                let (first, last) = (p.first_line, p.last_line);
                if let Some(r) = p.finish() {
                    if self.out.races.len() >= MAX_DUMPS {
                        self.out.dropped_dumps += 1;
                    } else {
                        self.out.races.push((first, last, r));
                    }
                }
            }
        }
    }
}

/// `host podman[123]: …` → the program and pid of a journal line.
fn journal_of(line: &str) -> Option<(String, i32)> {
    let (head, _) = line.split_once("]: ")?;
    let p = Prefix::learn(format!("{head}]: ").as_bytes());
    p.program.zip(p.pid)
}

fn count_lines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Scans a whole buffer (a mapped file).
pub fn scan_bytes(text: &[u8]) -> LogScan {
    let mut s = Scanner::new();
    s.feed(text);
    s.finish()
}

/// Scans a stream in 1 MiB reads, holding only one buffer and the line being read.
pub fn scan_reader(mut r: impl Read) -> std::io::Result<LogScan> {
    let mut s = Scanner::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.feed(&buf[..n]);
    }
    Ok(s.finish())
}

/// Scans a file, mapped when it can be (a regular file), read as a stream otherwise.
pub fn scan_file(path: &std::path::Path) -> std::io::Result<LogScan> {
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is read only; a log that another process truncates while we read
        // it can raise SIGBUS, as for any mapped file — the price of not copying 1 GiB.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&f) } {
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            return Ok(scan_bytes(&map));
        }
    }
    scan_reader(f)
}

/// The Snapshot of what the text shows: one process per dump (race reports join the dump
/// that follows them, or form a process of their own), runtime lines on the snapshot.
pub fn snapshot(scan: LogScan, path: &str) -> Snapshot {
    let mut s = Snapshot::new(
        Source::Log {
            path: path.to_string(),
        },
        Host::default(),
    );
    let LogScan {
        dumps,
        races,
        nsexec,
        messages,
        lines,
        dropped_nsexec,
        dropped_messages,
        dropped_dumps,
        ..
    } = scan;
    let mut processes: Vec<(u64, u64, Process)> = Vec::new();
    for (i, (d, prefix)) in dumps.into_iter().enumerate() {
        let note = describe(&d);
        s.note(
            prefix.pid,
            None,
            format!(
                "dump {}: lines {}–{}: {note}",
                i + 1,
                d.first_line,
                d.last_line
            ),
        );
        processes.push((d.first_line, d.last_line, process_of(d, prefix)));
    }
    let mut race_procs: Vec<(u64, u64, Process)> = Vec::new();
    for (first, last, r) in races {
        s.note(
            None,
            None,
            format!("lines {first}–{last}: race detector report (WARNING: DATA RACE)"),
        );
        if let Some(k) = processes
            .iter()
            .position(|(f, _, _)| *f >= last && *f - last <= RACE_TO_DUMP_LINES)
        {
            let go = processes[k].2.go.get_or_insert_with(GoProcess::default);
            // The reports just before this one, in an unbroken run, came from the same
            // process: the one whose dump follows.
            if let Some((_, l, _)) = race_procs.last()
                && first.saturating_sub(*l) <= RACE_TO_DUMP_LINES
                && let Some((_, _, earlier)) = race_procs.pop()
            {
                go.races
                    .extend(earlier.go.map(|g| g.races).unwrap_or_default());
            }
            go.races.push(r);
            continue;
        }
        match race_procs.last_mut() {
            Some((_, l, p)) if first.saturating_sub(*l) <= RACE_TO_DUMP_LINES => {
                *l = last;
                p.go.get_or_insert_with(GoProcess::default).races.push(r);
            }
            _ => race_procs.push((
                first,
                last,
                Process {
                    comm: "go".into(),
                    state: RACE_ONLY_STATE.into(),
                    go: Some(GoProcess {
                        races: vec![r],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        }
    }
    processes.extend(race_procs);
    processes.sort_by_key(|(f, _, _)| *f);
    s.processes = processes.into_iter().map(|(_, _, p)| p).collect();
    let unnamed = s.processes.iter().filter(|p| p.pid == 0).count();
    if unnamed == 1 {
        s.note(
            None,
            None,
            "the log does not say the pid of a dump: it shows as pid 0",
        );
    } else if unnamed > 1 {
        // Distinct pids keep the dumps apart (findings are kept once per process).
        for (n, p) in s.processes.iter_mut().filter(|p| p.pid == 0).enumerate() {
            p.pid = -(n as i32 + 1);
            p.ppid = p.pid;
        }
        s.note(
            None,
            None,
            format!(
                "the log does not say the pid of {unnamed} dumps: they show as pids -1 to \
                 -{unnamed}, in the order of the text"
            ),
        );
    }
    s.nsexec = nsexec;
    s.log_messages = messages;
    for (n, what) in [
        (dropped_nsexec, "nsexec lines"),
        (dropped_messages, "error lines"),
        (dropped_dumps, "dumps and race reports"),
    ] {
        if n > 0 {
            s.note(None, None, format!("{n} more {what} were not kept"));
        }
    }
    s.note(None, None, format!("{lines} lines read"));
    s
}

fn describe(d: &Dump) -> String {
    let what = match d.kind {
        DumpKind::Panic => format!("Go panic: {}", d.panics.join(" / ")),
        DumpKind::Fatal => format!(
            "Go fatal error: {}",
            d.fatal.as_deref().unwrap_or("unexpected fault")
        ),
        DumpKind::Signal => format!(
            "Go goroutine dump on {}",
            d.dump_signal.as_ref().map_or("a signal", |s| s.0.as_str())
        ),
        DumpKind::Goroutines => "Go goroutine dump".to_string(),
    };
    format!("{what} ({} goroutines)", d.goroutines.len())
}

fn process_of(d: Dump, prefix: Prefix) -> Process {
    let mut goroutines = d.goroutines;
    let mut signal = None;
    if let Some(sig) = &d.signal {
        // The runtime prints the goroutine that took the signal first.
        let g = goroutines.first_mut();
        let addr = sig.addr.or(d.fault_address);
        if let Some(g) = g.as_deref() {
            signal = Some(CrashSignal {
                signo: sig.signo,
                code: sig.code.unwrap_or(0),
                addr,
                tid: None,
                goroutine: Some(g.id),
            });
        }
        if let Some(g) = g {
            g.fault = Some(GoFault {
                signo: sig.signo as u32,
                addr: addr.unwrap_or(0),
                pc: sig.pc.unwrap_or(0),
            });
        }
    } else if let Some((_, signo)) = &d.dump_signal {
        signal = Some(CrashSignal {
            signo: *signo,
            code: 0,
            addr: None,
            tid: None,
            goroutine: None,
        });
    }
    let state = match d.kind {
        DumpKind::Panic => "panicked",
        DumpKind::Fatal => "fatal error",
        DumpKind::Signal => "dumped on a signal",
        DumpKind::Goroutines => "goroutines dumped",
    };
    Process {
        pid: prefix.pid.unwrap_or(0),
        comm: prefix.program.unwrap_or_else(|| "go".into()),
        state: state.into(),
        signal,
        threads: d.threads,
        go: Some(GoProcess {
            goroutines,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
