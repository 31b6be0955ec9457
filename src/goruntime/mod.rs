//! Reading a Go program's runtime from outside: struct layouts per release, the list of all
//! goroutines, and their state.

pub mod allgs;
pub mod dwarf_layout;
pub mod goroutines;
pub mod layout;
pub mod target;
pub mod walk;
