//! What a Go binary tells without symbols: `.go.buildinfo` (versions) and `.gopclntab`
//! (functions, files, lines, frame sizes), plus `runtime.firstmoduledata`, found through
//! the pointer it holds to the pclntab.

pub mod buildinfo;
pub mod pclntab;

use crate::binary::elf::ElfFile;
pub use buildinfo::BuildInfo;
pub use pclntab::{Func, Pclntab, PclntabVersion};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoError {
    #[error("malformed .go.buildinfo: {0}")]
    BuildInfo(String),
    #[error("malformed pclntab: {0}")]
    Pclntab(String),
}

/// The Go facts of one binary.
#[derive(Debug)]
pub struct GoBinary {
    pub buildinfo: Option<BuildInfo>,
    pub pclntab: Pclntab,
    /// Virtual address of runtime.firstmoduledata, when found.
    pub moduledata: Option<u64>,
}

impl GoBinary {
    /// Ok(None) when the file is not a Go binary (no pclntab).
    pub fn read(elf: &ElfFile) -> Result<Option<GoBinary>, GoError> {
        let Some(pclntab) = Pclntab::find(elf)? else {
            return Ok(None);
        };
        let buildinfo = buildinfo::read(elf)?;
        let moduledata = find_moduledata(elf, pclntab.header_addr);
        Ok(Some(GoBinary {
            buildinfo,
            pclntab,
            moduledata,
        }))
    }

    pub fn go_version(&self) -> Option<&str> {
        self.buildinfo.as_ref().map(|b| b.go_version.as_str())
    }
}

/// runtime.firstmoduledata starts with a pointer to the pclntab header: search the data
/// segments for that word. In a PIE the word may be zero in the file with an
/// R_*_RELATIVE relocation carrying it; the relocation's target is then the answer.
fn find_moduledata(elf: &ElfFile, header_addr: u64) -> Option<u64> {
    let want = header_addr.to_le_bytes();
    for name in [".noptrdata", ".data.rel.ro", ".data"] {
        let Some(sec) = elf.sections.get(name) else {
            continue;
        };
        let Some(bytes) = elf.section_bytes(name) else {
            continue;
        };
        let mut i = 0;
        while i + 8 <= bytes.len() {
            if bytes[i..i + 8] == want {
                return Some(sec.addr + i as u64);
            }
            i += 8;
        }
    }
    let parsed = goblin::elf::Elf::parse(elf.bytes()).ok()?;
    parsed
        .dynrelas
        .iter()
        .find(|r| r.r_addend == Some(header_addr as i64) && (r.r_type == 8 || r.r_type == 1027))
        .map(|r| r.r_offset)
}
