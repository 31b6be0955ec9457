//! wedge: why is this container-tooling process hung or crashed, and the proof.
//!
//! The pipeline (see docs/architecture.md): a source (live process tree, core, log, bundle)
//! produces a [`model::Snapshot`]; facts are derived from it; signatures turn facts into
//! findings; renderers print them.

pub mod analyze;
pub mod binary;
pub mod bundle;
pub mod confirm;
pub mod demo;
pub mod facts;
pub mod goruntime;
pub mod hostcheck;
pub mod log;
pub mod memory;
pub mod model;
pub mod probes;
pub mod ptrace;
pub mod render;
pub mod run;
pub mod signatures;
pub mod source;
pub mod syscall;
pub mod trace;
pub mod triage;
pub mod unwind;
