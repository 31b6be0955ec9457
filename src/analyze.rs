//! From a capture to a diagnosis: unwind and symbolize the copied stacks (after the target
//! was resumed), read Go runtimes, then derive findings. Nothing here touches ptrace: live
//! captures and core files go through the same steps over the Memory trait.

use crate::binary::{BinaryCache, FileOpener, LiveOpener};
use crate::goruntime::target::{self, GoTarget};
use crate::goruntime::walk;
use crate::memory::Memory;
use crate::model::{Arch, Diagnosis, Finding, Process, Snapshot};
use crate::source::core::{Core, CoreOpener};
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
    let empty = crate::memory::MemoryImage::new();
    let arch = snapshot.host.arch.unwrap_or(Arch::X86_64);
    let mut notes = Vec::new();
    for p in snapshot.processes.iter_mut() {
        let mem = memory.get(&p.pid).unwrap_or(&empty);
        let opener = LiveOpener { pid: p.pid };
        notes.extend(analyze_process(
            p,
            mem,
            &opener,
            cache,
            go_targets.get(&p.pid),
            arch,
            monotonic_ns,
        ));
    }
    finish(snapshot, notes)
}

/// The same for a core file: binaries through `--exe` / `--sysroot`.
pub fn diagnose_core(
    core: Core,
    exe: Option<std::path::PathBuf>,
    sysroot: Option<std::path::PathBuf>,
    cache: &mut BinaryCache,
) -> Diagnosis {
    let Core {
        mut snapshot,
        memory,
        arch,
        ..
    } = core;
    let mut notes = Vec::new();
    for p in snapshot.processes.iter_mut() {
        let opener = CoreOpener {
            exe: exe.clone(),
            exe_path: p.exe.as_ref().map(|e| e.path.clone()),
            sysroot: sysroot.clone(),
        };
        let t = target::for_process(p, cache, &opener, arch);
        notes.extend(analyze_process(
            p,
            &memory,
            &opener,
            cache,
            t.as_ref(),
            arch,
            None,
        ));
    }
    finish(snapshot, notes)
}

/// The same for a log: the text gave names, files and lines already; only the catalog runs.
pub fn diagnose_log(snapshot: Snapshot) -> Diagnosis {
    diagnose_snapshot(snapshot)
}

/// A snapshot already analyzed (frames named, goroutines read), as a bundle holds it: only
/// the catalog runs.
pub fn diagnose_snapshot(snapshot: Snapshot) -> Diagnosis {
    finish(snapshot, Vec::new())
}

/// Unwinds a process's threads and reads its goroutines; returns notes.
fn analyze_process(
    p: &mut Process,
    mem: &dyn Memory,
    opener: &dyn FileOpener,
    cache: &mut BinaryCache,
    go_target: Option<&GoTarget>,
    arch: Arch,
    now_ns: Option<u64>,
) -> Vec<(i32, String)> {
    let mut module_notes = Vec::new();
    let modules = ModuleMap::build(&p.mappings, opener, cache, &mut module_notes);
    unwind::unwind_process(p, mem, &modules, &UnwindOptions::default());
    if let (Some(target), Some(go)) = (go_target, p.go.as_mut())
        && go.goroutines_note.is_none()
    {
        let w = walk::goroutines(target, mem, &modules, &p.threads, arch, now_ns);
        go.goroutines = w.goroutines;
        go.goroutines_note = w.note;
    }
    if p.threads.iter().any(|t| t.registers.is_some()) {
        module_notes.into_iter().map(|n| (p.pid, n)).collect()
    } else {
        Vec::new()
    }
}

fn finish(mut snapshot: Snapshot, notes: Vec<(i32, String)>) -> Diagnosis {
    for (pid, n) in notes {
        snapshot.note(Some(pid), None, n);
    }
    let findings: Vec<Finding> = crate::signatures::run(&snapshot);
    Diagnosis { snapshot, findings }
}
