//! Facts: what a Snapshot says about who waits on whom, derived from the snapshot alone (no
//! live process), so analysis is a pure function that recorded snapshots can test.
//! Signatures are built on facts; they never read /proc or memory themselves.

pub mod crash;
pub mod fifo;
pub mod futex;
pub mod go;
pub mod pipes;

pub use crash::{FatalFault, fatal_faults};
pub use fifo::{FifoOpenWait, fifo_open_waits};
pub use futex::{FutexWait, futex_waits};
pub use go::{GoroutineFault, InFunction, SameFunction, goroutine_faults, same_function};
pub use pipes::{PipeVerdict, PipeWait, pipe_waits};

use crate::model::Snapshot;

/// Every fact derived from one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub futex_waits: Vec<FutexWait>,
    pub pipe_waits: Vec<PipeWait>,
    pub fifo_open_waits: Vec<FifoOpenWait>,
    pub same_function: Vec<SameFunction>,
    pub fatal_faults: Vec<FatalFault>,
}

pub fn derive(s: &Snapshot) -> Facts {
    Facts {
        futex_waits: futex_waits(s),
        pipe_waits: pipe_waits(s),
        fifo_open_waits: fifo_open_waits(s),
        same_function: same_function(s),
        fatal_faults: fatal_faults(s),
    }
}

#[cfg(test)]
pub(crate) fn sample(name: &str) -> Snapshot {
    let path = format!(
        "{}/samples/snapshots/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str::<crate::model::Diagnosis>(&text)
        .unwrap()
        .snapshot
}
