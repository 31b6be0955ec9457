//! TEMPORARY stand-in (replaced by the wip-procfs branch).
use crate::model::{Arch, FutexWord, Registers};
pub fn name(_arch: Arch, _nr: i64) -> Option<&'static str> {
    None
}
pub fn decode(_arch: Arch, _nr: i64, _args: &[u64]) -> Option<String> {
    None
}
pub fn futex_word(_arch: Arch, _nr: i64, _args: &[u64]) -> Option<FutexWord> {
    None
}
pub fn path_arg(_arch: Arch, _nr: i64) -> Option<usize> {
    None
}
pub fn from_registers(_regs: &Registers) -> Option<(i64, [u64; 6])> {
    None
}
