//! Where snapshots come from: live process trees, core files and support bundles (logs are
//! read in `crate::log`).

pub mod bundle;
pub mod compressed;
pub mod core;
pub mod live;
pub mod regs;
