//! Live capture: walk the process tree, freeze it, copy what analysis needs, resume it.

pub mod procfs;
