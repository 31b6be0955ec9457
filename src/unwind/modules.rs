//! The executable mappings of a process as modules: which binary each address lies in, and
//! the bias between the binary's own addresses and where it is loaded.

use crate::binary::{Binary, BinaryCache, FileOpener};
use crate::model::Mapping;
use std::sync::Arc;

pub struct Module {
    pub start: u64,
    pub end: u64,
    /// runtime address = svma + bias
    pub bias: u64,
    pub path: String,
    pub binary: Arc<Binary>,
}

impl Module {
    pub fn svma(&self, addr: u64) -> u64 {
        addr.wrapping_sub(self.bias)
    }
}

#[derive(Default)]
pub struct ModuleMap {
    /// Sorted by start, disjoint.
    modules: Vec<Module>,
}

impl ModuleMap {
    /// Opens the binary behind every executable file mapping. A binary that cannot be opened
    /// becomes a note and its addresses stay unnamed.
    pub fn build(
        mappings: &[Mapping],
        opener: &dyn FileOpener,
        cache: &mut BinaryCache,
        notes: &mut Vec<String>,
    ) -> ModuleMap {
        let mut modules = Vec::new();
        for m in mappings.iter().filter(|m| m.is_exec()) {
            let Some(path) = m.file_path() else { continue };
            match cache.get(m, opener) {
                Ok(binary) => {
                    let Some(vaddr) = binary.elf.vaddr_of_offset(m.offset) else {
                        notes.push(format!(
                            "{path}: no load segment covers file offset {:#x}",
                            m.offset
                        ));
                        continue;
                    };
                    modules.push(Module {
                        start: m.start,
                        end: m.end,
                        bias: m.start.wrapping_sub(vaddr),
                        path: path.to_string(),
                        binary,
                    });
                }
                Err(e) => {
                    let note = format!("cannot read binary: {e}");
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
            }
        }
        modules.sort_by_key(|m| m.start);
        ModuleMap { modules }
    }

    /// A map of modules placed by hand (synthetic tests, or a caller that knows the
    /// layout); overlapping modules are dropped, the first one kept.
    pub fn from_modules(mut modules: Vec<Module>) -> ModuleMap {
        modules.sort_by_key(|m| m.start);
        let mut kept: Vec<Module> = Vec::with_capacity(modules.len());
        for m in modules {
            if kept.last().is_none_or(|last| last.end <= m.start) && m.start < m.end {
                kept.push(m);
            }
        }
        ModuleMap { modules: kept }
    }

    pub fn find(&self, addr: u64) -> Option<&Module> {
        let i = self.modules.partition_point(|m| m.start <= addr);
        let m = self.modules.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}
