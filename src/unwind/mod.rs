//! Unwinding captured stacks into frames, and naming the frames.

pub mod modules;
pub mod native;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use crate::binary::cfi::CfiScratch;
use crate::binary::{BinaryCache, FileOpener};
use crate::memory::Memory;
use crate::model::{Frame, Process};
pub use modules::ModuleMap;
pub use native::UnwindOptions;

/// Unwinds and symbolizes every thread of `process` that has registers, filling
/// `thread.frames` and `thread.unwind_stop`.
pub fn unwind_process(
    process: &mut Process,
    mem: &dyn Memory,
    modules: &ModuleMap,
    opts: &UnwindOptions,
) {
    let mut scratch = CfiScratch::default();
    for t in process.threads.iter_mut() {
        let Some(regs) = &t.registers else { continue };
        let stack = t
            .stack
            .as_ref()
            .map(|s| (s.start, s.start + s.len))
            .unwrap_or((0, 0));
        let mut u = native::unwind(regs, mem, modules, stack, opts, &mut scratch);
        symbolize_frames(&mut u.frames, &u.exact_pc, modules);
        t.frames = u.frames;
        t.unwind_stop = u.stop;
    }
}

/// Builds the module map of `process` from its mappings, then unwinds and symbolizes every
/// thread that has registers. Returns notes about binaries that could not be opened or
/// parsed: a missing binary leaves its frames unnamed, it is not an error.
pub fn unwind_and_symbolize(
    process: &mut Process,
    mem: &dyn Memory,
    opener: &dyn FileOpener,
    cache: &mut BinaryCache,
    opts: &UnwindOptions,
) -> Vec<String> {
    let mut notes = Vec::new();
    let modules = ModuleMap::build(&process.mappings, opener, cache, &mut notes);
    unwind_process(process, mem, &modules, opts);
    notes
}

/// Names a frame of Go code from pclntab (function, file:line, inlined calls); false when
/// the pc is not Go code.
fn symbolize_go(f: &mut Frame, m: &modules::Module, lookup: u64) -> bool {
    let Some(go) = m.binary.go() else {
        return false;
    };
    let Some(func) = go.pclntab.func_at(m.svma(lookup)) else {
        return false;
    };
    let elf = &m.binary.elf;
    let read = |addr: u64, len: usize| elf.bytes_at(addr, len).map(|b| b.to_vec());
    let (inlined, outer_pc) = func.inlined_at(m.svma(lookup), &read);
    f.function = Some(crate::binary::go::pclntab::display_name(func.name()));
    f.function_offset = Some(m.svma(f.pc) - func.entry());
    f.symbol_source = Some(crate::model::SymbolSource::Pclntab);
    if let Some((file, line)) = func.file_line(outer_pc) {
        f.file = Some(file.to_string());
        f.line = Some(line);
    }
    f.inlined = inlined
        .into_iter()
        .map(|c| crate::model::InlinedFrame {
            function: crate::binary::go::pclntab::display_name(&c.name),
            file: c.file,
            line: c.line,
        })
        .collect();
    true
}

/// Fills module, module_addr, function, offset, symbol source, file, line and inlined
/// calls of frames that have only pc, sp and trust. `exact_pc[i]` says frame i sits at its
/// own pc (looked up as is) rather than at a return address (looked up at pc - 1, the call).
pub fn symbolize_frames(frames: &mut [Frame], exact_pc: &[bool], modules: &ModuleMap) {
    for (i, f) in frames.iter_mut().enumerate() {
        let exact = exact_pc.get(i).copied().unwrap_or(i == 0);
        let lookup = if exact { f.pc } else { f.pc.wrapping_sub(1) };
        let Some(m) = modules.find(lookup) else {
            continue;
        };
        f.module = Some(m.path.clone());
        f.module_addr = Some(m.svma(f.pc));
        if symbolize_go(f, m, lookup) {
            continue;
        }
        let s = m.binary.symbolize(m.svma(lookup));
        f.function = s.function;
        f.function_offset = s.offset.map(|o| o + (f.pc - lookup));
        f.symbol_source = s.source;
        f.file = s.file;
        f.line = s.line;
        f.inlined = s.inlined;
    }
}
