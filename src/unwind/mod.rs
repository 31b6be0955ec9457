//! TEMPORARY stand-in (replaced by the wip-unwind branch).
use crate::binary::{BinaryCache, FileOpener};
use crate::memory::Memory;
use crate::model::{Frame, FrameTrust, Process};
pub struct UnwindOptions {
    pub max_frames: usize,
    pub scan: bool,
}
impl Default for UnwindOptions {
    fn default() -> Self {
        UnwindOptions {
            max_frames: 256,
            scan: true,
        }
    }
}
pub fn unwind_process(
    process: &mut Process,
    _mem: &dyn Memory,
    _opener: &dyn FileOpener,
    _cache: &mut BinaryCache,
    _opts: &UnwindOptions,
) -> Vec<String> {
    for t in process.threads.iter_mut() {
        if let Some(r) = &t.registers {
            t.frames = vec![Frame::bare(
                r.pc().unwrap_or(0),
                r.sp().unwrap_or(0),
                FrameTrust::Context,
            )];
        }
    }
    Vec::new()
}
