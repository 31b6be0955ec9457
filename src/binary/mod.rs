//! What an executable tells us: ELF symbols, CFI, DWARF lines; cached by build-id, mmapped.
//!
//! A [`Binary`] is one ELF file plus, where one exists, its separate debug file (found by
//! build-id under /usr/lib/debug/.build-id, then by .gnu_debuglink). Symbols prefer the debug
//! file's full .symtab; DWARF (file:line, inlined calls) is loaded lazily on first use.

pub mod cfi;
pub mod elf;
pub mod go;
pub mod symbols;

use crate::model::{InlinedFrame, Mapping, SymbolSource};
use cfi::{CfiScratch, CfiSections, UnwindRule};
use elf::{ElfError, ElfFile};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use symbols::SymbolTable;

type DwarfReader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// Opens the file behind a mapping of the target.
pub trait FileOpener {
    fn open(&self, mapping: &Mapping) -> std::io::Result<std::fs::File>;
}

/// Opens a live process's files the way the process sees them: through
/// /proc/PID/map_files (works for deleted files, memfds, other mount namespaces), then
/// /proc/PID/root + path, then the path as wedge sees it.
pub struct LiveOpener {
    pub pid: i32,
}

impl FileOpener for LiveOpener {
    fn open(&self, m: &Mapping) -> std::io::Result<std::fs::File> {
        let by_range = format!("/proc/{}/map_files/{:x}-{:x}", self.pid, m.start, m.end);
        if let Ok(f) = std::fs::File::open(&by_range) {
            return Ok(f);
        }
        let path = m.file_path().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "anonymous mapping")
        })?;
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        std::fs::File::open(format!("/proc/{}/root{path}", self.pid))
            .or_else(|_| std::fs::File::open(path))
    }
}

/// A name and place for an address inside a binary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Symbolized {
    pub function: Option<String>,
    pub offset: Option<u64>,
    pub source: Option<SymbolSource>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Calls inlined at the address, innermost first.
    pub inlined: Vec<InlinedFrame>,
}

/// A separate debug file: full symbols and DWARF.
struct DebugFile {
    elf: ElfFile,
    symbols: SymbolTable,
}

pub struct Binary {
    pub elf: ElfFile,
    symbols: SymbolTable,
    debug: Option<DebugFile>,
    /// addr2line's context caches what it parsed in cells (Send, not Sync): one lookup at a
    /// time per binary.
    dwarf: OnceLock<Option<Mutex<addr2line::Context<DwarfReader>>>>,
    go: OnceLock<Option<go::GoBinary>>,
    /// Why the Go tables could not be read, when the file looked like Go but was malformed.
    go_error: OnceLock<Option<String>>,
}

impl Binary {
    /// Maps and parses the ELF file `file` (named `path`, which locates its .gnu_debuglink
    /// debug file), and finds its separate debug file.
    pub fn load(file: &std::fs::File, path: &str) -> Result<Binary, ElfError> {
        Ok(Binary::from_elf(ElfFile::open(file, path)?))
    }

    /// A binary from an already parsed ELF file.
    pub fn from_elf(elf: ElfFile) -> Binary {
        let symbols = SymbolTable::from_elf(elf.bytes());
        let debug = find_debug_file(&elf).map(|d| DebugFile {
            symbols: SymbolTable::from_elf(d.bytes()),
            elf: d,
        });
        Binary {
            elf,
            symbols,
            debug,
            dwarf: OnceLock::new(),
            go: OnceLock::new(),
            go_error: OnceLock::new(),
        }
    }

    /// The Go tables (pclntab, buildinfo, moduledata) when this is a Go binary.
    pub fn go(&self) -> Option<&go::GoBinary> {
        self.go
            .get_or_init(|| match go::GoBinary::read(&self.elf) {
                Ok(mut g) => {
                    if let Some(g) = g.as_mut() {
                        self.attach_gofunc(g);
                    }
                    let _ = self.go_error.set(None);
                    g
                }
                Err(e) => {
                    let _ = self.go_error.set(Some(e.to_string()));
                    None
                }
            })
            .as_ref()
    }

    pub fn go_error(&self) -> Option<&str> {
        self.go();
        self.go_error.get().and_then(|e| e.as_deref())
    }

    /// Gives the pclntab moduledata.gofunc (for inline trees), read from the file through
    /// the layout of the binary's Go release.
    fn attach_gofunc(&self, g: &mut go::GoBinary) {
        let (Some(md), Some(version)) = (g.moduledata, g.go_version()) else {
            return;
        };
        let arch = match self.elf.machine {
            goblin::elf::header::EM_AARCH64 => crate::model::Arch::Aarch64,
            _ => crate::model::Arch::X86_64,
        };
        let Ok(layout) = crate::goruntime::layout::RuntimeLayout::for_version(version, arch) else {
            return;
        };
        let Ok(off) = layout.offset("moduledata", "gofunc") else {
            return;
        };
        if let Some(b) = self.elf.bytes_at(md + off, 8) {
            let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
            if v != 0 {
                g.pclntab.set_gofunc(v);
            }
        }
    }

    /// Address of a data symbol (e.g. `runtime.allgs`) from .symtab, when present.
    pub fn data_symbol(&self, name: &str) -> Option<u64> {
        self.data_symbol_sized(name).map(|(a, _)| a)
    }

    /// Address and size of a data symbol from .symtab.
    pub fn data_symbol_sized(&self, name: &str) -> Option<(u64, u64)> {
        let parsed = goblin::elf::Elf::parse(self.elf.bytes()).ok()?;
        parsed
            .syms
            .iter()
            .find(|s| {
                s.st_type() == goblin::elf::sym::STT_OBJECT
                    && parsed.strtab.get_at(s.st_name) == Some(name)
            })
            .map(|s| (s.st_value, s.st_size))
    }

    pub fn debug_file(&self) -> Option<&str> {
        self.debug.as_ref().map(|d| d.elf.path.as_str())
    }

    /// The unwind rule at `svma`: .eh_frame of the binary, then .debug_frame of either file.
    pub fn unwind_rule(&self, svma: u64, scratch: &mut CfiScratch) -> Option<UnwindRule> {
        let sec = |e: &ElfFile, name: &str| e.sections.get(name).map(|s| s.addr);
        let own = CfiSections {
            eh_frame: sec(&self.elf, ".eh_frame").zip(self.elf.section_bytes(".eh_frame")),
            eh_frame_hdr: sec(&self.elf, ".eh_frame_hdr")
                .zip(self.elf.section_bytes(".eh_frame_hdr")),
            debug_frame: self.elf.section_bytes(".debug_frame"),
            text: sec(&self.elf, ".text"),
            got: sec(&self.elf, ".got"),
        };
        if let Some(r) = own.rule(svma, scratch) {
            return Some(r);
        }
        let d = self.debug.as_ref()?;
        let data = d.elf.section_data(".debug_frame")?;
        CfiSections {
            eh_frame: None,
            eh_frame_hdr: None,
            debug_frame: Some(&data),
            text: sec(&self.elf, ".text"),
            got: None,
        }
        .rule(svma, scratch)
    }

    /// Names `svma`: symbols first (debug file, then the binary), then DWARF for file:line
    /// and inlined calls. `is_return_address` is about the caller's pc: the call site is
    /// the instruction before it.
    pub fn symbolize(&self, svma: u64) -> Symbolized {
        let mut out = Symbolized::default();
        let hit = self
            .debug
            .as_ref()
            .and_then(|d| d.symbols.lookup(svma))
            .or_else(|| self.symbols.lookup(svma));
        if let Some(h) = hit {
            out.function = Some(h.name.to_string());
            out.offset = Some(h.offset);
            out.source = Some(h.source);
        }
        let ctx = self
            .dwarf()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(ctx) = &ctx
            && let Ok(mut frames) = ctx.find_frames(svma).skip_all_loads()
        {
            {
                let mut all = Vec::new();
                while let Ok(Some(f)) = frames.next() {
                    let name = f
                        .function
                        .as_ref()
                        .and_then(|n| n.demangle().ok().map(|s| s.into_owned()));
                    let (file, line) = f
                        .location
                        .map(|l| (l.file.map(String::from), l.line))
                        .unwrap_or((None, None));
                    all.push((name, file, line));
                }
                if let Some((outer_name, file, line)) = all.pop() {
                    out.file = file;
                    out.line = line;
                    if (out.function.is_none() || out.source == Some(SymbolSource::NearestExport))
                        && let Some(n) = outer_name
                    {
                        out.function = Some(n);
                        out.offset = None;
                        out.source = Some(SymbolSource::Dwarf);
                    }
                    // Frames inlined into the outer function: each names the callee and, in
                    // addr2line's order, the location inside it.
                    out.inlined = all
                        .into_iter()
                        .map(|(n, file, line)| InlinedFrame {
                            function: n.unwrap_or_else(|| "??".into()),
                            file,
                            line,
                        })
                        .collect();
                }
            }
        }
        out
    }

    fn dwarf(&self) -> Option<&Mutex<addr2line::Context<DwarfReader>>> {
        self.dwarf
            .get_or_init(|| {
                let src = match &self.debug {
                    Some(d) if d.elf.sections.contains_key(".debug_info") => &d.elf,
                    _ => &self.elf,
                };
                if !src.sections.contains_key(".debug_info") {
                    return None;
                }
                let endian = if src.little_endian {
                    gimli::RunTimeEndian::Little
                } else {
                    gimli::RunTimeEndian::Big
                };
                let load = |id: gimli::SectionId| -> Result<DwarfReader, gimli::Error> {
                    // Location lists describe variables, which names and lines never need:
                    // not inflating them saves most of a large debug file's load time.
                    let skip = matches!(
                        id,
                        gimli::SectionId::DebugLoc | gimli::SectionId::DebugLocLists
                    );
                    let data: Arc<[u8]> = (!skip)
                        .then(|| src.section_data(id.name()))
                        .flatten()
                        .map(|c| Arc::from(c.into_owned()))
                        .unwrap_or_else(|| Arc::from(Vec::new()));
                    Ok(gimli::EndianArcSlice::new(data, endian))
                };
                let dwarf = gimli::Dwarf::load(load).ok()?;
                addr2line::Context::from_dwarf(dwarf).ok().map(Mutex::new)
            })
            .as_ref()
    }

    /// Function symbols (for lookups by name, e.g. Go runtime functions in .symtab).
    pub fn symbols(&self) -> &SymbolTable {
        match &self.debug {
            Some(d) if d.symbols.has_full_table() => &d.symbols,
            _ => &self.symbols,
        }
    }
}

/// The separate debug file of `elf`, if installed: by build-id, then by .gnu_debuglink.
fn find_debug_file(elf: &ElfFile) -> Option<ElfFile> {
    let mut candidates = Vec::new();
    if let Some(id) = elf.build_id_hex()
        && id.len() > 2
    {
        candidates.push(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &id[..2],
            &id[2..]
        ));
    }
    if let Some(link) = &elf.debuglink {
        let dir = Path::new(&elf.path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        candidates.push(format!("{dir}/{link}"));
        candidates.push(format!("{dir}/.debug/{link}"));
        candidates.push(format!("/usr/lib/debug{dir}/{link}"));
    }
    for c in candidates {
        let Ok(f) = std::fs::File::open(&c) else {
            continue;
        };
        let Ok(d) = ElfFile::open(&f, &c) else {
            continue;
        };
        // A debug file must belong to this binary: same build-id when both have one.
        if elf.build_id.is_some() && d.build_id.is_some() && d.build_id != elf.build_id {
            continue;
        }
        return Some(d);
    }
    None
}

/// Identity of an opened file: the same (device, inode, size, mtime) is the same bytes, so
/// it is never parsed twice; a file replaced in place (new size or mtime) is parsed again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileKey {
    fn of(file: &std::fs::File) -> std::io::Result<FileKey> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

/// Parsed binaries, shared by every process of a capture (and `Send + Sync`, so they can be
/// used from several threads): keyed by build-id, so one library seen through two paths or
/// two containers' root filesystems is parsed once, and by the opened file's (device,
/// inode, size, mtime), so the same file is not even re-parsed to learn its build-id.
#[derive(Default)]
pub struct BinaryCache {
    by_build_id: HashMap<Vec<u8>, Arc<Binary>>,
    by_file: HashMap<FileKey, Arc<Binary>>,
    /// Mappings (device, inode as the target sees them) that could not be opened or
    /// parsed, with the reason: tried once per capture, not once per thread.
    failed: HashMap<(String, u64), String>,
}

impl BinaryCache {
    pub fn new() -> BinaryCache {
        BinaryCache::default()
    }

    /// The binary behind `mapping` of a process, opened through `opener`, or why it cannot
    /// be had (not openable, not ELF, malformed).
    pub fn get(
        &mut self,
        mapping: &Mapping,
        opener: &dyn FileOpener,
    ) -> Result<Arc<Binary>, String> {
        let failure_key = (mapping.dev.clone(), mapping.inode);
        let remember_failure = mapping.inode != 0;
        if remember_failure && let Some(why) = self.failed.get(&failure_key) {
            return Err(why.clone());
        }
        let path = mapping.path.clone().unwrap_or_default();
        let result = self.load(mapping, opener, &path);
        if remember_failure && let Err(why) = &result {
            self.failed.insert(failure_key, why.clone());
        }
        result
    }

    fn load(
        &mut self,
        mapping: &Mapping,
        opener: &dyn FileOpener,
        path: &str,
    ) -> Result<Arc<Binary>, String> {
        let file = opener.open(mapping).map_err(|e| format!("{path}: {e}"))?;
        let key = FileKey::of(&file).map_err(|e| format!("{path}: {e}"))?;
        if let Some(hit) = self.by_file.get(&key) {
            return Ok(hit.clone());
        }
        let elf = ElfFile::open(&file, path).map_err(|e| e.to_string())?;
        let binary = match elf.build_id.clone() {
            Some(id) => self
                .by_build_id
                .entry(id)
                .or_insert_with(|| Arc::new(Binary::from_elf(elf)))
                .clone(),
            None => Arc::new(Binary::from_elf(elf)),
        };
        self.by_file.insert(key, binary.clone());
        Ok(binary)
    }

    /// Number of distinct binaries parsed.
    pub fn len(&self) -> usize {
        let without_id = self
            .by_file
            .values()
            .filter(|b| b.elf.build_id.is_none())
            .count();
        self.by_build_id.len() + without_id
    }

    pub fn is_empty(&self) -> bool {
        self.by_file.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libc() -> Binary {
        let path = "/lib/x86_64-linux-gnu/libc.so.6";
        Binary::load(&std::fs::File::open(path).unwrap(), path).unwrap()
    }

    #[test]
    fn binaries_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Binary>();
        send_sync::<BinaryCache>();
    }

    /// Opens a fixed path, whatever the mapping.
    struct PathOpener(std::path::PathBuf);
    impl FileOpener for PathOpener {
        fn open(&self, _: &Mapping) -> std::io::Result<std::fs::File> {
            std::fs::File::open(&self.0)
        }
    }

    fn mapping_of(path: &str, inode: u64) -> Mapping {
        Mapping {
            start: 0x1000,
            end: 0x2000,
            perms: "r-xp".into(),
            offset: 0,
            dev: "00:01".into(),
            inode,
            path: Some(path.into()),
            rss_kb: None,
            pss_kb: None,
            shared_clean_kb: None,
            shared_dirty_kb: None,
            private_clean_kb: None,
            private_dirty_kb: None,
            swap_kb: None,
            vm_flags: Vec::new(),
        }
    }

    #[test]
    fn cache_parses_a_file_once_and_shares_copies_by_build_id() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy");
        std::fs::copy(&exe, &copy).unwrap();
        let mut cache = BinaryCache::new();
        let a = cache
            .get(&mapping_of("/a", 1), &PathOpener(exe.clone()))
            .unwrap();
        let b = cache.get(&mapping_of("/a", 1), &PathOpener(exe)).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same file: same parse");
        let c = cache.get(&mapping_of("/c", 2), &PathOpener(copy)).unwrap();
        if a.elf.build_id.is_some() {
            assert!(Arc::ptr_eq(&a, &c), "same build-id: same parse");
        }
        let missing = cache.get(
            &mapping_of("/nope", 3),
            &PathOpener(dir.path().join("nope")),
        );
        assert!(missing.err().unwrap().contains("/nope"));
        let text = dir.path().join("text");
        std::fs::write(&text, b"#!/bin/sh\necho not elf\n").unwrap();
        let bad = cache.get(&mapping_of("/text", 4), &PathOpener(text));
        assert!(bad.err().unwrap().contains("not a usable ELF"));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn libc_debug_file_names_internal_functions() {
        // Needs Debian's libc6-dbg (installed by .ci/run): without it these names do not
        // exist in libc.so.6 at all.
        let b = libc();
        assert!(
            b.debug_file().is_some(),
            "libc6-dbg's debug file is found by build-id"
        );
        let f = b.symbols().find("__lll_lock_wait_private").unwrap().clone();
        let s = b.symbolize(f.addr + 4);
        assert_eq!(s.function.as_deref(), Some("__lll_lock_wait_private"));
        assert_eq!(s.source, Some(SymbolSource::Symtab));
        assert!(
            s.file.as_deref().is_some_and(|x| x.ends_with(".c")),
            "{s:?}"
        );
        let mut scratch = CfiScratch::default();
        let rule = b.unwind_rule(f.addr + 4, &mut scratch).unwrap();
        assert!(
            matches!(rule.cfa, cfi::CfaRule::RegisterOffset(7, _)),
            "CFA on rsp"
        );
    }
}
