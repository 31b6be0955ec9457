//! Where snapshots come from: live process trees (and later cores, logs and bundles).

pub mod live;
pub mod regs;
