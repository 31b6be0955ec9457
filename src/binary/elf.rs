//! An ELF file mapped into memory: build-id, debuglink, load segments, sections (with
//! SHF_COMPRESSED sections inflated on demand). Parsed once with goblin; what later stages
//! need is kept as plain data so lookups never re-parse.

use memmap2::Mmap;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a usable ELF file: {what}")]
    Malformed { path: String, what: String },
}

/// A PT_LOAD segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    pub executable: bool,
    /// p_flags: PF_X 1, PF_W 2, PF_R 4.
    pub flags: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    /// SHT_NOBITS: no bytes in the file (.bss, or everything in a separate debug file).
    pub nobits: bool,
    pub compressed: bool,
}

/// The bytes of a file: usually the mmapped file, shared; any byte buffer for tests and
/// fuzzing.
pub type Bytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A mapped ELF file and the facts read from its headers.
pub struct ElfFile {
    pub path: String,
    pub data: Bytes,
    pub build_id: Option<Vec<u8>>,
    pub debuglink: Option<String>,
    pub loads: Vec<Load>,
    pub sections: HashMap<String, Section>,
    pub is_64: bool,
    pub little_endian: bool,
    pub machine: u16,
    /// e_type: ET_EXEC, ET_DYN, ET_CORE, …
    pub kind: u16,
}

impl ElfFile {
    pub fn open(file: &std::fs::File, path: &str) -> Result<ElfFile, ElfError> {
        // SAFETY: the file is mapped read-only and private; if another process truncates it
        // under us, reads may fault — the same risk every debugger takes with mapped files.
        let map = unsafe { Mmap::map(file) }.map_err(|source| ElfError::Io {
            path: path.to_string(),
            source,
        })?;
        ElfFile::from_bytes(Arc::new(map), path)
    }

    pub fn parse(data: Arc<Mmap>, path: &str) -> Result<ElfFile, ElfError> {
        ElfFile::from_bytes(data, path)
    }

    /// Parses an ELF image held in memory.
    pub fn from_bytes(data: Bytes, path: &str) -> Result<ElfFile, ElfError> {
        let bad = |what: String| ElfError::Malformed {
            path: path.to_string(),
            what,
        };
        let bytes: &[u8] = (*data).as_ref();
        let elf = goblin::elf::Elf::parse(bytes).map_err(|e| bad(e.to_string()))?;
        let mut build_id = None;
        if let Some(notes) = elf.iter_note_headers(bytes) {
            for note in notes.flatten() {
                if note.n_type == goblin::elf::note::NT_GNU_BUILD_ID && note.name == "GNU" {
                    build_id = Some(note.desc.to_vec());
                }
            }
        }
        if build_id.is_none()
            && let Some(notes) = elf.iter_note_sections(bytes, None)
        {
            for note in notes.flatten() {
                if note.n_type == goblin::elf::note::NT_GNU_BUILD_ID && note.name == "GNU" {
                    build_id = Some(note.desc.to_vec());
                }
            }
        }
        let loads = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
            .map(|p| Load {
                vaddr: p.p_vaddr,
                memsz: p.p_memsz,
                offset: p.p_offset,
                filesz: p.p_filesz,
                executable: p.is_executable(),
                flags: p.p_flags,
            })
            .collect();
        let mut sections = HashMap::new();
        for sh in &elf.section_headers {
            let Some(name) = elf.shdr_strtab.get_at(sh.sh_name) else {
                continue;
            };
            sections.insert(
                name.to_string(),
                Section {
                    addr: sh.sh_addr,
                    offset: sh.sh_offset,
                    size: sh.sh_size,
                    nobits: sh.sh_type == goblin::elf::section_header::SHT_NOBITS,
                    compressed: sh.sh_flags
                        & u64::from(goblin::elf::section_header::SHF_COMPRESSED)
                        != 0,
                },
            );
        }
        let debuglink = sections.get(".gnu_debuglink").and_then(|s| {
            let b = bytes.get(s.offset as usize..s.offset.checked_add(s.size)? as usize)?;
            let end = b.iter().position(|&c| c == 0)?;
            std::str::from_utf8(&b[..end]).ok().map(String::from)
        });
        Ok(ElfFile {
            path: path.to_string(),
            is_64: elf.is_64,
            little_endian: elf.little_endian,
            machine: elf.header.e_machine,
            kind: elf.header.e_type,
            build_id,
            debuglink,
            loads,
            sections,
            data,
        })
    }

    /// The raw bytes of a section in the file (None for NOBITS or out-of-file ranges).
    pub fn section_bytes(&self, name: &str) -> Option<&[u8]> {
        let s = self.sections.get(name)?;
        if s.nobits {
            return None;
        }
        self.bytes()
            .get(s.offset as usize..s.offset.checked_add(s.size)? as usize)
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// A section's contents, inflated if it is SHF_COMPRESSED (zlib).
    pub fn section_data(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let s = self.sections.get(name)?;
        let raw = self.section_bytes(name)?;
        if !s.compressed {
            return Some(Cow::Borrowed(raw));
        }
        // Elf64_Chdr: ch_type u32, reserved u32, ch_size u64, ch_addralign u64.
        let ch_type = u32::from_le_bytes(raw.get(0..4)?.try_into().ok()?);
        let size = u64::from_le_bytes(raw.get(8..16)?.try_into().ok()?);
        if ch_type != 1 || size > (1 << 32) {
            return None; // only ELFCOMPRESS_ZLIB; zstd debug sections are not read yet
        }
        let mut out = Vec::with_capacity(size as usize);
        let mut z = flate2::read::ZlibDecoder::new(raw.get(24..)?);
        std::io::Read::read_to_end(&mut z, &mut out).ok()?;
        Some(Cow::Owned(out))
    }

    /// The file offset of virtual address `svma`, if a PT_LOAD maps it from the file.
    pub fn offset_of(&self, svma: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|l| {
                l.vaddr <= svma && l.vaddr.checked_add(l.filesz).is_some_and(|end| svma < end)
            })
            .and_then(|l| l.offset.checked_add(svma - l.vaddr))
    }

    /// `len` bytes of the file at virtual address `svma`.
    pub fn bytes_at(&self, svma: u64, len: usize) -> Option<&[u8]> {
        let off = self.offset_of(svma)? as usize;
        self.bytes().get(off..off.checked_add(len)?)
    }

    /// The virtual address that a mapping at file `offset` starts at: the bias of a
    /// mapping is `mapping.start - vaddr_of_offset(mapping.offset)`.
    pub fn vaddr_of_offset(&self, offset: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|l| {
                l.offset <= offset
                    && l.offset
                        .checked_add(l.filesz.max(1))
                        .is_some_and(|end| offset < end)
            })
            .and_then(|l| l.vaddr.checked_add(offset - l.offset))
    }

    pub fn build_id_hex(&self) -> Option<String> {
        self.build_id
            .as_ref()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_bytes(bytes: &[u8]) -> Arc<Mmap> {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        // SAFETY: a private temp file only this test writes.
        Arc::new(unsafe { Mmap::map(&f) }.unwrap())
    }

    #[test]
    fn reads_our_own_executable() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let f = std::fs::File::open(&exe).unwrap();
        let e = ElfFile::open(&f, &exe.to_string_lossy()).unwrap();
        assert!(e.is_64 && e.little_endian);
        assert!(e.loads.iter().any(|l| l.executable));
        assert!(e.sections.contains_key(".eh_frame"));
    }

    #[test]
    fn malformed_and_truncated_files_are_errors() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        for cut in [4usize, 16, 63, 64, 200, 4096] {
            let r = ElfFile::parse(map_bytes(&exe[..cut.min(exe.len())]), "cut");
            if cut < 64 {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
        let mut flipped = exe[..8192.min(exe.len())].to_vec();
        for i in (0..flipped.len()).step_by(7) {
            flipped[i] ^= 0xa5;
        }
        let _ = ElfFile::parse(map_bytes(&flipped), "flipped"); // must not panic
        assert!(ElfFile::parse(map_bytes(b"not an elf file at all, no"), "text").is_err());
    }
}
