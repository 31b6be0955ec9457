//! Everything needed to read one Go process's runtime, worked out from its binary before
//! the freeze: the release's struct layout, and where `runtime.allgs` is loaded.

use super::allgs::{self, AllgsAddrs};
use super::goroutines::GOffsets;
use super::layout::RuntimeLayout;
use crate::binary::{Binary, BinaryCache, FileOpener};
use crate::model::{Arch, GoModule, GoProcess, Process};

/// How the goroutine list was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// The `runtime.allgs` symbol of .symtab.
    Symtab,
    /// Decoding the code of `runtime.allgadd` (stripped binaries).
    Allgadd,
}

impl FoundBy {
    pub fn name(self) -> &'static str {
        match self {
            FoundBy::Symtab => "symtab",
            FoundBy::Allgadd => "allgadd",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GoTarget {
    pub version: String,
    pub layout: RuntimeLayout,
    pub offsets: GOffsets,
    /// Runtime address of the allgs slice header (load bias applied).
    pub allgs: u64,
    /// Runtime address of allglen, when known: a cross-check of the slice length.
    pub allglen: Option<u64>,
    pub found_by: FoundBy,
    /// Where the struct layout came from: `dwarf` or `table`.
    pub layout_from: &'static str,
}

/// Works out the [`GoTarget`] of a Go binary loaded with `bias`, or says why not.
pub fn plan(binary: &Binary, bias: u64, arch: Arch) -> Result<GoTarget, String> {
    let go = binary.go().ok_or("not a Go binary")?;
    let version = go
        .go_version()
        .ok_or("no buildinfo: the Go release, and so the runtime's layout, is unknown")?
        .to_string();
    // DWARF, when the binary has it, is exact for every release; else the tables.
    let (layout, layout_from) = match super::dwarf_layout::layout(binary, &version, arch) {
        Some(l) => (l, "dwarf"),
        None => (
            RuntimeLayout::for_version(&version, arch).map_err(|e| e.to_string())?,
            "table",
        ),
    };
    let offsets = GOffsets::from_layout(&layout).map_err(|e| e.to_string())?;
    let (addrs, found_by) = match binary.data_symbol("runtime.allgs") {
        Some(a) => (
            AllgsAddrs {
                allgs: a,
                allglen: binary.data_symbol("runtime.allglen"),
            },
            FoundBy::Symtab,
        ),
        None => (from_allgadd(binary, arch)?, FoundBy::Allgadd),
    };
    Ok(GoTarget {
        version,
        layout,
        offsets,
        allgs: addrs.allgs.wrapping_add(bias),
        allglen: addrs.allglen.map(|a| a.wrapping_add(bias)),
        found_by,
        layout_from,
    })
}

fn from_allgadd(binary: &Binary, arch: Arch) -> Result<AllgsAddrs, String> {
    let go = binary.go().ok_or("not a Go binary")?;
    let f = go
        .pclntab
        .find_func("runtime.allgadd")
        .ok_or("runtime.allgadd is not in pclntab")?;
    let len = (f.end() - f.entry()) as usize;
    let code = binary
        .elf
        .bytes_at(f.entry(), len)
        .ok_or("runtime.allgadd's code is not in the file")?;
    let refs = allgs::referenced_addresses(arch, code, f.entry());
    // Writable data: any non-executable load segment that is larger in memory than in the
    // file or is written (.data, .bss, .noptrbss all live in the RW segment).
    let data: Vec<(u64, u64)> = binary
        .elf
        .loads
        .iter()
        .filter(|l| !l.executable)
        .map(|l| (l.vaddr, l.vaddr + l.memsz))
        .collect();
    let text = |a: u64| {
        binary
            .elf
            .loads
            .iter()
            .any(|l| l.executable && l.vaddr <= a && a < l.vaddr + l.memsz)
    };
    allgs::from_allgadd_refs(&refs, |a| {
        !text(a) && data.iter().any(|(lo, hi)| *lo <= a && a < *hi)
    })
    .ok_or_else(|| "runtime.allgadd does not reference a slice header".to_string())
}

/// For a Go program: its build facts into `p.go`, and the plan to read its goroutines
/// (None, with the reason in `p.go`, when they cannot be read).
pub fn for_process(
    p: &mut Process,
    cache: &mut BinaryCache,
    opener: &dyn FileOpener,
    arch: Arch,
) -> Option<GoTarget> {
    let exe = p.exe.as_ref().map(|e| e.path.clone());
    let mapping = p
        .mappings
        .iter()
        .find(|m| m.is_exec() && m.path.is_some() && m.path == exe)
        .or_else(|| {
            p.mappings
                .iter()
                .find(|m| m.is_exec() && m.file_path().is_some())
        })?
        .clone();
    let binary = cache.get(&mapping, opener).ok()?;
    let go = binary.go()?;
    let mut info = GoProcess::default();
    if let Some(bi) = &go.buildinfo {
        info.version = bi.go_version.clone();
        info.main_module = bi.main.clone();
        info.dependencies = bi.deps.clone();
        info.build_settings = bi.settings.clone();
        if info.main_module.is_none()
            && let Some(path) = &bi.path
        {
            info.main_module = Some(GoModule {
                path: path.clone(),
                ..Default::default()
            });
        }
    }
    let bias = binary
        .elf
        .vaddr_of_offset(mapping.offset)
        .map(|v| mapping.start.wrapping_sub(v))
        .unwrap_or(0);
    let t = match plan(&binary, bias, arch) {
        Ok(t) => {
            info.allgs_found_by = Some(t.found_by.name().to_string());
            info.layout_from = Some(t.layout_from.to_string());
            Some(t)
        }
        Err(e) => {
            info.goroutines_note = Some(format!("goroutines not read: {e}; thread stacks only"));
            None
        }
    };
    p.go = Some(info);
    t
}
