//! What a Go program's runtime shows: how it was built, and its goroutines.

use super::Frame;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GoProcess {
    /// From buildinfo, e.g. `go1.19.8`.
    pub version: String,
    pub main_module: Option<GoModule>,
    #[serde(default)]
    pub dependencies: Vec<GoModule>,
    /// `-buildmode`, `CGO_ENABLED`, `vcs.revision`, … in buildinfo's order.
    #[serde(default)]
    pub build_settings: Vec<(String, String)>,
    /// How the goroutine list was found: `symtab`, `allgadd` (the runtime's own code).
    pub allgs_found_by: Option<String>,
    /// Where the runtime's struct layout came from: `dwarf` (the binary's own) or `table`
    /// (wedge's per-release tables).
    #[serde(default)]
    pub layout_from: Option<String>,
    #[serde(default)]
    pub goroutines: Vec<Goroutine>,
    /// Why goroutines are missing or incomplete, when they are.
    pub goroutines_note: Option<String>,
    /// Time spent copying runtime structures during the freeze, and how much was copied.
    pub copy_us: Option<u64>,
    pub copy_bytes: Option<u64>,
    /// Reports of the race detector (`WARNING: DATA RACE`), from a log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub races: Vec<DataRace>,
}

/// One `WARNING: DATA RACE` report: the two conflicting accesses and where their goroutines
/// were created, as the race detector printed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DataRace {
    /// `Read at 0x… by goroutine 8:`, `Previous write at …`, then `Goroutine 8 (running)
    /// created at:` stacks, in the report's order.
    pub stacks: Vec<RaceStack>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RaceStack {
    /// The heading without its colon: `Read at 0x00c000012345 by goroutine 8`.
    pub heading: String,
    /// `read`, `write`, `previous read`, `previous write`, `created` (lower case; atomic
    /// accesses keep their word: `atomic write`).
    pub kind: String,
    pub addr: Option<u64>,
    /// None for `main goroutine`.
    pub goroutine: Option<i64>,
    /// Innermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
}

/// A signal the Go runtime recorded on a goroutine when it turned it into a panic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoFault {
    pub signo: u32,
    /// g.sigcode1: the faulting address of a SIGSEGV/SIGBUS.
    pub addr: u64,
    /// g.sigpc: the pc of the faulting instruction.
    pub pc: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GoModule {
    pub path: String,
    pub version: String,
    pub sum: Option<String>,
    /// A `=>` replacement.
    pub replaced_by: Option<Box<GoModule>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Goroutine {
    pub id: i64,
    /// `running`, `runnable`, `syscall`, `waiting`, `idle`, `copystack`, `preempted`.
    pub status: String,
    /// The runtime's words: `chan receive`, `sync.Mutex.Lock`, `IO wait`, `sleep`, …
    pub wait_reason: Option<String>,
    /// How long it has waited, in nanoseconds, where the runtime recorded it.
    pub waited_ns: Option<u64>,
    /// Thread (tid) running it, or the thread it is locked to.
    pub thread: Option<i32>,
    #[serde(default)]
    pub locked_to_thread: bool,
    /// One of the runtime's own goroutines (GC workers, finalizers, …).
    #[serde(default)]
    pub system: bool,
    /// Innermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// The `go` statement that started it.
    pub created_by: Option<Frame>,
    /// The goroutine that ran that `go` statement (Go 1.21+).
    pub parent_id: Option<i64>,
    /// Address of its runtime.g: evidence other records can point at.
    pub g_addr: u64,
    /// The last signal the runtime turned into a panic on this goroutine (g.sig, e.g. 11
    /// for SIGSEGV), with g.sigcode1 (the fault address) and g.sigpc (the faulting pc).
    /// Set from the moment of the fault on, also after a recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<GoFault>,
    pub unwind_stop: Option<String>,
}
