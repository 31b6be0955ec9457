//! Where snapshots come from: live process trees and core files (later logs and bundles).

pub mod compressed;
pub mod core;
pub mod live;
pub mod regs;
