//! Facts: what a Snapshot says about who waits on whom, derived from the snapshot alone (no
//! live process), so analysis is a pure function that recorded snapshots can test.
//! Signatures are built on facts; they never read /proc or memory themselves.

pub mod crash;
pub mod fifo;
pub mod futex;
pub mod go;
pub mod memory;
pub mod nsexec;
pub mod pipes;
pub mod sockets;
pub mod waitgraph;

pub use crash::{FatalFault, fatal_faults};
pub use fifo::{FifoOpenWait, fifo_open_waits};
pub use futex::{FutexWait, futex_waits};
pub use go::{
    GoroutineFault, InFunction, LongWait, SameFunction, goroutine_faults, long_waits, same_function,
};
pub use memory::{
    MemfdExe, MemfdPrivateWrite, SharedBacking, memfd_exes, memfd_private_writes, shared_backings,
};
pub use nsexec::{StageMismatch, stage_mismatches};
pub use pipes::{PipeVerdict, PipeWait, pipe_waits};
pub use sockets::{SamePair, SocketWait, socket_waits};
pub use waitgraph::{Wait, WaitGraph, Waker, wait_graph};

use crate::model::Snapshot;

/// Every fact derived from one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub futex_waits: Vec<FutexWait>,
    pub pipe_waits: Vec<PipeWait>,
    pub fifo_open_waits: Vec<FifoOpenWait>,
    pub wait_graph: WaitGraph,
    pub socket_waits: Vec<SocketWait>,
    pub memfd_exes: Vec<MemfdExe>,
    pub memfd_private_writes: Vec<MemfdPrivateWrite>,
    pub shared_backings: Vec<SharedBacking>,
    pub same_function: Vec<SameFunction>,
    pub fatal_faults: Vec<FatalFault>,
    pub long_waits: Vec<LongWait>,
    pub stage_mismatches: Vec<StageMismatch>,
}

pub fn derive(s: &Snapshot) -> Facts {
    let futex_waits = futex_waits(s);
    let pipe_waits = pipe_waits(s);
    let wait_graph = wait_graph(s, &pipe_waits, &futex_waits);
    Facts {
        futex_waits,
        pipe_waits,
        fifo_open_waits: fifo_open_waits(s),
        wait_graph,
        socket_waits: socket_waits(s),
        memfd_exes: memfd_exes(s),
        memfd_private_writes: memfd_private_writes(s),
        shared_backings: shared_backings(s),
        same_function: same_function(s),
        fatal_faults: fatal_faults(s),
        long_waits: long_waits(s),
        stage_mismatches: stage_mismatches(s),
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
