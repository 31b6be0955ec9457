//! `.go.buildinfo`: the Go version, main module, dependencies and build settings that every
//! Go binary since 1.13 carries, stripped or not.
//!
//! Found by section name, else by scanning the writable data segments for the 16-byte
//! aligned magic. Go 1.18+ stores the two strings inline (varint length + bytes); older
//! releases store two pointers to Go string headers, read through the load segments.

use super::GoError;
use crate::binary::elf::ElfFile;
use crate::model::GoModule;

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildInfo {
    pub go_version: String,
    /// The `path` line: the main package's import path.
    pub path: Option<String>,
    pub main: Option<GoModule>,
    pub deps: Vec<GoModule>,
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads buildinfo from a Go binary; Ok(None) when the file has none (not Go).
pub fn read(elf: &ElfFile) -> Result<Option<BuildInfo>, GoError> {
    let Some(blob) = find_blob(elf) else {
        return Ok(None);
    };
    parse_blob(Some(elf), blob).map(Some)
}

/// Parses a buildinfo blob (from its magic on) that stores its strings inline (Go 1.18+);
/// the older pointer format needs the ELF file and is refused here.
pub fn parse_blob_bytes(blob: &[u8]) -> Result<BuildInfo, GoError> {
    parse_blob(None, blob)
}

/// The bytes from the magic to the end of the section (or segment) that holds it.
fn find_blob(elf: &ElfFile) -> Option<&[u8]> {
    if let Some(b) = elf.section_bytes(".go.buildinfo")
        && b.starts_with(MAGIC)
    {
        return Some(b);
    }
    for l in elf.loads.iter().filter(|l| !l.executable) {
        let seg = elf
            .bytes()
            .get(l.offset as usize..l.offset.checked_add(l.filesz)? as usize)?;
        let mut i = 0;
        while i + 32 <= seg.len() {
            if seg[i..].starts_with(MAGIC) {
                return Some(&seg[i..]);
            }
            i += 16;
        }
    }
    None
}

fn parse_blob(elf: Option<&ElfFile>, b: &[u8]) -> Result<BuildInfo, GoError> {
    let bad = |w: &str| GoError::BuildInfo(w.to_string());
    if b.len() < 32 {
        return Err(bad("header truncated"));
    }
    let ptr_size = b[14] as usize;
    let flags = b[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let mut at = 32;
        let v = read_varint_bytes(b, &mut at).ok_or_else(|| bad("version string truncated"))?;
        let m = read_varint_bytes(b, &mut at).ok_or_else(|| bad("module info truncated"))?;
        (String::from_utf8_lossy(v).into_owned(), strip_sentinels(m))
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(bad("pointer size is neither 4 nor 8"));
        }
        let big = flags & 1 != 0;
        let word = |bytes: &[u8]| -> u64 {
            let mut v = 0u64;
            for (i, x) in bytes.iter().enumerate() {
                v |= (*x as u64) << (8 * if big { bytes.len() - 1 - i } else { i });
            }
            v
        };
        let elf = elf.ok_or_else(|| bad("pre-1.18 pointer format needs the ELF file"))?;
        let string_at = |hdr_addr: u64| -> Option<Vec<u8>> {
            let hdr = elf.bytes_at(hdr_addr, 2 * ptr_size)?;
            let data = word(&hdr[..ptr_size]);
            let len = word(&hdr[ptr_size..]) as usize;
            if len > 1 << 20 {
                return None;
            }
            elf.bytes_at(data, len).map(|s| s.to_vec())
        };
        let vp = word(b.get(16..16 + ptr_size).ok_or_else(|| bad("truncated"))?);
        let mp = word(
            b.get(16 + ptr_size..16 + 2 * ptr_size)
                .ok_or_else(|| bad("truncated"))?,
        );
        let v = string_at(vp).ok_or_else(|| bad("version pointer leads nowhere"))?;
        (
            String::from_utf8_lossy(&v).into_owned(),
            strip_sentinels(&string_at(mp).unwrap_or_default()),
        )
    };
    if !version.starts_with("go") && !version.starts_with("devel") {
        return Err(bad("no Go version string"));
    }
    let mut info = parse_modinfo(&modinfo);
    info.go_version = version;
    Ok(info)
}

fn read_uvarint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn read_varint_bytes<'b>(b: &'b [u8], at: &mut usize) -> Option<&'b [u8]> {
    let len = read_uvarint(b, at)? as usize;
    let s = b.get(*at..at.checked_add(len)?)?;
    *at += len;
    Some(s)
}

/// The module text is framed by 16 bytes of binary sentinel on each side; its last line
/// ends in a newline just before the closing sentinel. Anything else holds no module text.
fn strip_sentinels(m: &[u8]) -> String {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        String::from_utf8_lossy(&m[16..m.len() - 16]).into_owned()
    } else {
        String::new()
    }
}

/// Parses the module text (`path`, `mod`, `dep`, `=>`, `build` lines), sentinels removed.
pub fn parse_modinfo(body: &str) -> BuildInfo {
    let mut info = BuildInfo::default();
    let module = |f: &[&str]| GoModule {
        path: f.get(1).unwrap_or(&"").to_string(),
        version: f.get(2).unwrap_or(&"").to_string(),
        sum: f.get(3).map(|s| s.to_string()).filter(|s| !s.is_empty()),
        replaced_by: None,
    };
    let mut last_is_main = false;
    for line in body.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.first().copied() {
            Some("path") => info.path = f.get(1).map(|s| s.to_string()),
            Some("mod") => {
                info.main = Some(module(&f));
                last_is_main = true;
            }
            Some("dep") => {
                info.deps.push(module(&f));
                last_is_main = false;
            }
            Some("=>") => {
                let r = Some(Box::new(module(&f)));
                let target = if last_is_main {
                    info.main.as_mut()
                } else {
                    info.deps.last_mut()
                };
                if let Some(m) = target {
                    m.replaced_by = r;
                }
            }
            Some("build") => {
                if let Some((k, v)) = f.get(1).and_then(|kv| kv.split_once('=')) {
                    info.settings.push((k.to_string(), v.to_string()));
                }
            }
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_module_lines() {
        let text = "\
path\texample.com/cmd/x\n\
mod\texample.com\t(devel)\t\n\
dep\tgithub.com/a/b\tv1.2.3\th1:abc=\n\
=>\t../b\t(devel)\t\n\
build\t-compiler=gc\n\
build\tCGO_ENABLED=1\n";
        let i = parse_modinfo(text);
        assert_eq!(i.path.as_deref(), Some("example.com/cmd/x"));
        assert_eq!(i.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(i.deps.len(), 1);
        assert_eq!(i.deps[0].sum.as_deref(), Some("h1:abc="));
        assert_eq!(i.deps[0].replaced_by.as_ref().unwrap().path, "../b");
        assert_eq!(i.setting("CGO_ENABLED"), Some("1"));
    }

    #[test]
    fn varints_never_overrun() {
        let mut at = 0;
        assert_eq!(read_uvarint(&[0xff, 0xff], &mut at), None);
        let mut at = 0;
        assert_eq!(read_varint_bytes(&[5, b'a'], &mut at), None);
        assert_eq!(
            strip_sentinels(&[0xff; 40]),
            "",
            "no newline before the sentinel"
        );
        let mut framed = vec![0xffu8; 16];
        framed.extend_from_slice(b"path\tx\n");
        framed.extend_from_slice(&[0xff; 16]);
        framed.extend_from_slice(&[0; 3]);
        assert_eq!(strip_sentinels(&framed[..framed.len() - 3]), "path\tx\n");
        let mut at = 0;
        assert_eq!(read_uvarint(&[0x96, 0x01], &mut at), Some(150));
    }
}
