//! The Snapshot: the one data model every source produces and every consumer reads.
//!
//! A Snapshot is plain data (serde), versioned by [`SCHEMA_VERSION`], and round-trips through
//! JSON, so a capture made on one machine analyzes identically on another. Raw memory copied
//! during a freeze is not part of it: that lives in [`crate::memory::MemoryImage`], beside it.

mod finding;
mod go;
mod process;
mod thread;

pub use finding::{Confidence, Evidence, Finding};
pub use go::{DataRace, GoFault, GoModule, GoProcess, Goroutine, RaceStack};
pub use process::{
    CrashSignal, EpollTarget, Exe, Fd, FdKind, InotifyWatch, Mapping, Process, SocketInfo,
    UnixSocket,
};
pub use thread::{
    Arch, Frame, FrameTrust, FutexWord, InlinedFrame, Registers, StackCopy, SymbolSource, Syscall,
    Thread,
};

use serde::{Deserialize, Serialize};

/// Bumped whenever a field changes meaning or a required field is added.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything wedge knows about one capture: a live process tree, a core, a log or a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: u32,
    /// Version of the wedge that made the capture.
    pub wedge_version: String,
    pub source: Source,
    /// Milliseconds since the Unix epoch when the capture started.
    pub captured_at_unix_ms: u64,
    pub host: Host,
    pub processes: Vec<Process>,
    /// What could not be captured, and why: a partial snapshot says what it is missing.
    #[serde(default)]
    pub notes: Vec<Note>,
    /// runc's nsexec lines a log showed (`nsexec-0[1234]: …`): the first line of each
    /// (stage, pid) pair, in the text's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nsexec: Vec<NsexecLine>,
    /// Error-level lines of logrus-logging tools (runc, podman, buildkit) a log showed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_messages: Vec<LogMessage>,
}

/// A line of runc's nsexec (`libcontainer/nsenter/nsexec.c`), which prefixes every line with
/// the stage it believes it is (`current_stage`) and its pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsexecLine {
    /// 1-based line number in the log.
    pub line: u64,
    pub stage: u32,
    pub pid: i32,
    pub message: String,
}

/// A `level=error msg=…` line (logrus text format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    pub line: u64,
    pub level: String,
    pub message: String,
    /// The program, where a journal prefix (`host podman[123]:`) names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

impl Snapshot {
    /// An empty snapshot of the given source, stamped with this wedge's version and the time.
    pub fn new(source: Source, host: Host) -> Snapshot {
        let captured_at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Snapshot {
            schema_version: SCHEMA_VERSION,
            wedge_version: env!("CARGO_PKG_VERSION").to_string(),
            source,
            captured_at_unix_ms,
            host,
            processes: Vec::new(),
            notes: Vec::new(),
            nsexec: Vec::new(),
            log_messages: Vec::new(),
        }
    }

    pub fn process(&self, pid: i32) -> Option<&Process> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    pub fn note(&mut self, pid: Option<i32>, tid: Option<i32>, message: impl Into<String>) {
        self.notes.push(Note {
            pid,
            tid,
            message: message.into(),
        });
    }
}

/// Where the snapshot came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A live process tree rooted at `pid`.
    Live {
        pid: i32,
        /// False with `--no-stop`: only procfs was read, nothing was stopped.
        stopped: bool,
        /// False with `--no-children`.
        children: bool,
    },
    /// An ELF core file.
    Core { path: String },
    /// Text: a log with Go panics, goroutine dumps, runtime log lines.
    Log { path: String },
    /// A support bundle made by `wedge bundle`.
    Bundle { path: String },
}

/// Facts about the machine the capture was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Host {
    /// `uname -r`.
    pub kernel_release: String,
    pub arch: Option<Arch>,
    pub page_size: u64,
    /// `sysconf(_SC_CLK_TCK)`: the unit of process start times.
    pub clock_ticks_per_second: u64,
}

/// Something the capture could not get, or a caveat about what it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub message: String,
}

/// What `--json` prints: the snapshot and the findings made from it, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    #[serde(flatten)]
    pub snapshot: Snapshot,
    pub findings: Vec<Finding>,
}

#[cfg(test)]
mod tests;
