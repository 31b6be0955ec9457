//! Live capture: walk the process tree, freeze it, copy what analysis needs, resume it.

pub mod access;
pub mod capture;
pub mod freeze;
pub mod gocopy;
pub mod kcmp;
pub mod procfs;
pub mod ptrace;
pub mod sockdiag;

pub use capture::{CaptureError, CaptureOptions, LiveCapture, capture};
