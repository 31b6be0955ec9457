//! A thread as captured: kernel wait state, registers, the stack copy and its unwound frames.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture wedge itself was built for.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Name of the program-counter, stack-pointer and frame-pointer registers.
    pub fn pc_sp_fp(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Arch::X86_64 => ("rip", "rsp", "rbp"),
            Arch::Aarch64 => ("pc", "sp", "x29"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Thread {
    pub tid: i32,
    /// The thread's id in its own (innermost) pid namespace, when it differs from `tid`:
    /// what gettid() returns inside a container, and what Go's m.procid holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nstid: Option<i32>,
    /// /proc/PID/task/TID/comm.
    pub name: String,
    /// One-letter state, read just before the freeze (the freeze itself shows as `t`).
    pub state: String,
    /// Kernel function the thread sleeps in (/proc/…/wchan), read just before the freeze.
    pub wchan: Option<String>,
    /// The system call the thread was in, if any.
    pub syscall: Option<Syscall>,
    /// /proc/…/stack, innermost first, when readable (root only).
    #[serde(default)]
    pub kernel_stack: Vec<String>,
    /// General-purpose registers at the stop, by name (`rip`, `rsp`, `fs_base`, `x29`, …).
    pub registers: Option<Registers>,
    /// Where the copy of the live part of the stack lies (bytes in the MemoryImage).
    pub stack: Option<StackCopy>,
    /// Unwound and symbolized frames, innermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// Why unwinding stopped where it did, when it did not reach the outermost frame.
    pub unwind_stop: Option<String>,
    /// True when this thread was stopped for the copy.
    pub stopped: bool,
    /// A signal that arrived while the thread was stopped and was re-delivered at resume.
    pub redelivered_signal: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registers {
    pub arch: Arch,
    pub values: BTreeMap<String, u64>,
}

impl Registers {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }
    pub fn pc(&self) -> Option<u64> {
        self.get(self.arch.pc_sp_fp().0)
    }
    pub fn sp(&self) -> Option<u64> {
        self.get(self.arch.pc_sp_fp().1)
    }
    pub fn fp(&self) -> Option<u64> {
        self.get(self.arch.pc_sp_fp().2)
    }
}

/// A system call a thread was in when captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Syscall {
    pub nr: i64,
    /// Name from the table of the process's architecture.
    pub name: Option<String>,
    pub args: Vec<u64>,
    /// The arguments in words: `fd=3`, `FUTEX_WAIT_PRIVATE`, a path, …
    pub decoded: Option<String>,
    /// `registers` (consistent with the freeze) or `procfs` (`--no-stop`).
    pub from: String,
    /// For futex calls: the word's address and its value during the freeze.
    pub futex: Option<FutexWord>,
    /// For calls that take a path (openat, execve, …): the path, read during the freeze.
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FutexWord {
    pub addr: u64,
    pub op: u32,
    /// The op without FUTEX_PRIVATE_FLAG / FUTEX_CLOCK_REALTIME, named: `FUTEX_WAIT`, …
    pub op_name: String,
    pub private: bool,
    /// The expected value passed to the call.
    pub expected: u32,
    /// The value of the word in memory during the freeze.
    pub value: Option<u32>,
    /// The three 32-bit words after it, read in the same freeze: for a pthread mutex, its
    /// count and owner tid (glibc's `__count`, `__owner`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<u32>,
}

/// Where the copy of a thread's stack lies: `[start, start + len)`, sp inside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackCopy {
    pub start: u64,
    pub len: u64,
    pub sp: u64,
    /// True when the live part was longer than the configured bound.
    pub truncated: bool,
}

/// How a frame was found: tells a reader how far to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameTrust {
    /// The registers of the stopped thread.
    Context,
    /// Call frame information (.eh_frame / .debug_frame).
    Cfi,
    /// The frame-pointer chain.
    Fp,
    /// Go's pclntab stack-frame sizes.
    Pclntab,
    /// A stack scan found a plausible return address: least trusted.
    Scan,
    /// Read from a traceback printed in a log: names, files and lines; pcs only where the
    /// text printed them.
    Text,
}

impl FrameTrust {
    pub fn name(self) -> &'static str {
        match self {
            FrameTrust::Context => "context",
            FrameTrust::Cfi => "cfi",
            FrameTrust::Fp => "fp",
            FrameTrust::Pclntab => "pclntab",
            FrameTrust::Scan => "scan",
            FrameTrust::Text => "text",
        }
    }
}

/// Where a frame's function name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolSource {
    /// .symtab of the binary (or of its separate debug file).
    Symtab,
    /// .dynsym: an exported symbol that covers the address.
    Dynsym,
    /// DWARF debug info.
    Dwarf,
    /// Go's pclntab.
    Pclntab,
    /// Only the nearest exported symbol below the address: the name may be wrong.
    NearestExport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub pc: u64,
    /// Stack pointer of this frame. For a frame reached by returning from the one inside it
    /// (not the innermost, not one restored from a signal frame) that is the call-frame
    /// address (CFA) of the frame inside it; this frame's own CFA is the next frame's sp.
    pub sp: u64,
    pub trust: FrameTrust,
    /// Path of the module (executable or library) the pc lies in.
    pub module: Option<String>,
    /// The pc as an address inside the module's file (what addr2line takes).
    pub module_addr: Option<u64>,
    pub function: Option<String>,
    /// Offset of the pc from the start of the function.
    pub function_offset: Option<u64>,
    pub symbol_source: Option<SymbolSource>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Calls inlined at this pc, innermost first; `function` is then the outermost.
    #[serde(default)]
    pub inlined: Vec<InlinedFrame>,
    /// Go on amd64 with the register ABI (Go 1.17+), goroutine frames only: the word at
    /// this frame's call-frame address, where the caller reserves the spill slot of the
    /// first argument (a method's receiver). It holds that argument when the function
    /// spilled it (when it is live across a call, as in a parked function); otherwise an
    /// older value. A candidate, never proof on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg0_slot: Option<u64>,
}

impl Frame {
    /// A frame with only its address and how it was found; the symbolizer fills the rest.
    pub fn bare(pc: u64, sp: u64, trust: FrameTrust) -> Frame {
        Frame {
            pc,
            sp,
            trust,
            module: None,
            module_addr: None,
            function: None,
            function_offset: None,
            symbol_source: None,
            file: None,
            line: None,
            inlined: Vec::new(),
            arg0_slot: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlinedFrame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}
