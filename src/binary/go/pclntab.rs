//! `.gopclntab`: Go's own table of functions, files, lines and stack-frame sizes. It survives
//! stripping, so it names every Go frame and gives the SP delta that unwinds it.
//!
//! Layouts: Go 1.16–1.17 (magic 0xfffffffa), 1.18–1.19 (0xfffffff0, adds textStart) and
//! 1.20+ (0xfffffff1, `_func` gains startLine). Found by section (`.gopclntab`,
//! `.data.rel.ro.gopclntab`) or, where an external linker merged it away, by scanning for a
//! header whose offsets all fit. Every read is bounds-checked: malformed input gives None or
//! an error, never a panic or an endless loop.

use super::GoError;
use crate::binary::elf::ElfFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PclntabVersion {
    Go116,
    Go118,
    Go120,
}

const MAGIC_GO12: u32 = 0xffff_fffb;
const MAGIC_GO116: u32 = 0xffff_fffa;
const MAGIC_GO118: u32 = 0xffff_fff0;
const MAGIC_GO120: u32 = 0xffff_fff1;
const UNSUPPORTED_GO12: &str =
    "Go 1.2–1.15 pclntab (magic 0xfffffffb) is not supported: Go 1.16 or newer is needed";
/// More functions than any real binary has (kubelet has ~100k): a bound for bad headers.
const MAX_FUNCS: usize = 10_000_000;
/// The fixed part of `_func` that every layout has (up to and including nfuncdata).
const FUNC_MIN_SIZE: usize = 44;

/// PCDATA index of the inline tree index table, and FUNCDATA index of the inline tree.
const PCDATA_INL_TREE_INDEX: u32 = 2;
const FUNCDATA_INL_TREE: u32 = 3;

/// `_func` flag bits.
pub const FLAG_TOP_FRAME: u8 = 1;
pub const FLAG_SP_WRITE: u8 = 2;

pub use crate::binary::elf::Bytes;

/// A parsed pclntab: offsets into the file's bytes.
#[derive(Clone)]
pub struct Pclntab {
    data: Bytes,
    pub version: PclntabVersion,
    /// Virtual address of the header (for moduledata's pcHeader field).
    pub header_addr: u64,
    quantum: u64,
    nfunc: usize,
    text_start: u64,
    funcnametab: usize,
    cutab: usize,
    filetab: usize,
    pctab: usize,
    pclntable: usize,
    /// Address of moduledata.gofunc: base of 1.18+ funcdata offsets (inline trees).
    gofunc: Option<u64>,
}

/// One function's record.
#[derive(Debug, Clone, Copy)]
pub struct Func<'a> {
    tab: &'a Pclntab,
    /// Offset of the `_func` in the file.
    off: usize,
    entry: u64,
    end: u64,
}

/// A call inlined at a pc: the callee's name and where in the callee the pc is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinedCall {
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn cstr_at(b: &[u8], off: usize) -> Option<&str> {
    let s = b.get(off..)?;
    let end = s.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&s[..end]).ok()
}

fn uvarint(b: &[u8], at: &mut usize) -> Option<u32> {
    let mut v = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u32) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl std::fmt::Debug for Pclntab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pclntab")
            .field("version", &self.version)
            .field("nfunc", &self.nfunc)
            .field("text_start", &self.text_start)
            .finish()
    }
}

impl Pclntab {
    fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// Finds and parses the pclntab of `elf`; Ok(None) for a binary that has none.
    ///
    /// A named section that does not hold a valid header is an error (saying why); a
    /// scan that finds no header that validates means "not a Go binary".
    pub fn find(elf: &ElfFile) -> Result<Option<Pclntab>, GoError> {
        let shared: Bytes = elf.data.clone();
        let data: &[u8] = elf.bytes();
        for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
            if let Some(s) = elf.sections.get(name)
                && !s.nobits
            {
                let off = usize::try_from(s.offset)
                    .map_err(|_| GoError::Pclntab(format!("{name} lies outside the file")))?;
                let t = Pclntab::parse_header(shared.clone(), off, s.addr)
                    .map_err(|why| GoError::Pclntab(format!("{name}: {why}")))?;
                return Ok(Some(t));
            }
        }
        // No named section (an external linker merged it into .data.rel.ro, or the
        // section headers are gone): scan the non-executable segments for a header that
        // validates.
        let mut old_layout = false;
        for l in elf.loads.iter().filter(|l| !l.executable) {
            let (Ok(start), Some(end)) =
                (usize::try_from(l.offset), l.offset.checked_add(l.filesz))
            else {
                continue;
            };
            let end = usize::try_from(end).unwrap_or(usize::MAX).min(data.len());
            let mut off = start.next_multiple_of(8);
            while off.saturating_add(72) <= end {
                match u32_at(data, off) {
                    Some(MAGIC_GO116 | MAGIC_GO118 | MAGIC_GO120) => {
                        let vaddr = l.vaddr.wrapping_add((off - start) as u64);
                        if let Ok(t) = Pclntab::parse_header(shared.clone(), off, vaddr) {
                            return Ok(Some(t));
                        }
                    }
                    Some(MAGIC_GO12) if data.get(off + 4..off + 6) == Some(&[0, 0]) => {
                        old_layout = true;
                    }
                    _ => {}
                }
                off += 8;
            }
        }
        if old_layout && elf.sections.contains_key(".go.buildinfo") {
            return Err(GoError::Pclntab(UNSUPPORTED_GO12.to_string()));
        }
        Ok(None)
    }

    /// Parses a header at file offset `off`, validating everything it points to; None when
    /// anything does not fit (see [`Pclntab::parse_header`] for the reason).
    pub fn parse_at(shared: Bytes, off: usize, header_addr: u64) -> Option<Pclntab> {
        Pclntab::parse_header(shared, off, header_addr).ok()
    }

    /// Parses a header at file offset `off`: the magic, pad, quantum and pointer size, table
    /// offsets that are in order and inside the file, and a sample of functab entries that
    /// are sorted and point at `_func` records whose entry agrees with the functab.
    pub fn parse_header(
        shared: Bytes,
        off: usize,
        header_addr: u64,
    ) -> Result<Pclntab, &'static str> {
        let data: &[u8] = (*shared).as_ref();
        let magic = u32_at(data, off).ok_or("header lies outside the file")?;
        let version = match magic {
            MAGIC_GO116 => PclntabVersion::Go116,
            MAGIC_GO118 => PclntabVersion::Go118,
            MAGIC_GO120 => PclntabVersion::Go120,
            MAGIC_GO12 => return Err(UNSUPPORTED_GO12),
            _ => return Err("unknown magic"),
        };
        let h = data.get(off..).ok_or("header lies outside the file")?;
        // The whole header (72 bytes from 1.18; 64 before, but tables always follow).
        if h.len() < 72 {
            return Err("header truncated");
        }
        if h[4..6] != [0, 0] {
            return Err("header pad bytes are not zero");
        }
        let quantum = h[6] as u64;
        if !(quantum == 1 || quantum == 4) {
            return Err("instruction quantum is neither 1 nor 4");
        }
        match h[7] {
            8 => {}
            4 => return Err("32-bit pclntab (pointer size 4) is not supported"),
            _ => return Err("pointer size is neither 4 nor 8"),
        }
        let word = |i: usize| u64_at(h, 8 + 8 * i).and_then(|v| usize::try_from(v).ok());
        let nfunc = word(0).ok_or("header truncated")?;
        let (text_start, rest) = match version {
            PclntabVersion::Go116 => (0, 1),
            _ => (u64_at(h, 24).ok_or("header truncated")?, 2),
        };
        let header_len = 8 + 8 * (rest + 6);
        let mut tables = [0usize; 5];
        let mut prev = off + header_len;
        for (i, t) in tables.iter_mut().enumerate() {
            let o = word(rest + 1 + i)
                .and_then(|w| off.checked_add(w))
                .ok_or("table offset overflows")?;
            if o < prev || o >= data.len() {
                return Err("table offsets are out of order or outside the file");
            }
            prev = o;
            *t = o;
        }
        let [funcnametab, cutab, filetab, pctab, pclntable] = tables;
        if nfunc == 0 || nfunc > MAX_FUNCS {
            return Err("implausible function count");
        }
        let entry_size = if version == PclntabVersion::Go116 {
            16
        } else {
            8
        };
        let ftab_end = (nfunc + 1)
            .checked_mul(entry_size)
            .and_then(|n| pclntable.checked_add(n))
            .ok_or("functab overflows")?;
        if ftab_end > data.len() {
            return Err("functab runs past the end of the file");
        }
        let t = Pclntab {
            data: shared.clone(),
            version,
            header_addr,
            quantum,
            nfunc,
            // 1.16–1.17 functab entries hold absolute pcs: no base to add.
            text_start: if version == PclntabVersion::Go116 {
                0
            } else {
                text_start
            },
            funcnametab,
            cutab,
            filetab,
            pctab,
            pclntable,
            gofunc: None,
        };
        // A sample of the functab, evenly spread, plus both ends: sorted, and each entry's
        // _func lies after the functab, inside the file, and names the same entry pc.
        let samples = 16.min(nfunc);
        let mut prev_entry = 0u64;
        for k in 0..=samples {
            let i = if k == samples {
                nfunc
            } else {
                k * (nfunc - 1) / samples.saturating_sub(1).max(1)
            };
            let (entry, _) = t.ftab(i).ok_or("functab truncated")?;
            if entry < prev_entry {
                return Err("functab is not sorted");
            }
            prev_entry = entry;
            if i == nfunc {
                break;
            }
            let f = t.func(i).ok_or("a functab entry points outside the file")?;
            if f.off < ftab_end || f.recorded_entry() != Some(entry) {
                return Err("a _func record disagrees with its functab entry");
            }
        }
        Ok(t)
    }

    /// Entry i of the functab: (entry pc, offset of the _func from pclntable).
    fn ftab(&self, i: usize) -> Option<(u64, usize)> {
        match self.version {
            PclntabVersion::Go116 => {
                let at = self.pclntable.checked_add(i.checked_mul(16)?)?;
                Some((
                    u64_at(self.bytes(), at)?,
                    usize::try_from(u64_at(self.bytes(), at + 8)?).ok()?,
                ))
            }
            _ => {
                let at = self.pclntable.checked_add(i.checked_mul(8)?)?;
                let e = (u32_at(self.bytes(), at)? as u64).checked_add(self.text_start)?;
                Some((e, u32_at(self.bytes(), at + 4)? as usize))
            }
        }
    }

    /// Sets moduledata.gofunc, the base of funcdata offsets (enables the inline tree).
    pub fn set_gofunc(&mut self, gofunc: u64) {
        self.gofunc = Some(gofunc);
    }

    pub fn text_start(&self) -> u64 {
        match self.version {
            PclntabVersion::Go116 => self.ftab(0).map(|(e, _)| e).unwrap_or(0),
            _ => self.text_start,
        }
    }

    pub fn func_count(&self) -> usize {
        self.nfunc
    }

    /// The function whose code contains `pc` (binary search of the functab).
    pub fn func_at(&self, pc: u64) -> Option<Func<'_>> {
        let (first, _) = self.ftab(0)?;
        let (last, _) = self.ftab(self.nfunc)?;
        if pc < first || pc >= last {
            return None;
        }
        let (mut lo, mut hi) = (0usize, self.nfunc);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.ftab(mid)?.0 <= pc {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        // A corrupt (unsorted) functab can lead the search astray: never answer with a
        // function that does not hold pc.
        self.func(lo).filter(|f| f.entry <= pc && pc < f.end)
    }

    fn func(&self, i: usize) -> Option<Func<'_>> {
        let (entry, foff) = self.ftab(i)?;
        let (end, _) = self.ftab(i + 1)?;
        if end < entry {
            return None; // a functab out of order: callers may rely on entry <= end
        }
        let off = self.pclntable.checked_add(foff)?;
        self.bytes().get(off..off.checked_add(FUNC_MIN_SIZE)?)?;
        Some(Func {
            tab: self,
            off,
            entry,
            end,
        })
    }

    pub fn funcs(&self) -> impl Iterator<Item = Func<'_>> + '_ {
        (0..self.nfunc).filter_map(move |i| self.func(i))
    }

    pub fn find_func(&self, name: &str) -> Option<Func<'_>> {
        self.funcs().find(|f| f.name() == name)
    }

    fn file_name(&self, cu_offset: u32, fileno: i32) -> Option<&str> {
        if fileno < 0 {
            return None;
        }
        let idx = (cu_offset as usize).checked_add(fileno as usize)?;
        let foff = u32_at(self.bytes(), self.cutab.checked_add(idx.checked_mul(4)?)?)?;
        if foff == u32::MAX {
            return None;
        }
        cstr_at(self.bytes(), self.filetab.checked_add(foff as usize)?)
    }

    /// Evaluates the pcvalue table at `table_off` of a function starting at `entry`, at pc.
    fn pcvalue(&self, table_off: u32, entry: u64, pc: u64) -> Option<i32> {
        if table_off == 0 {
            return None;
        }
        let mut at = self.pctab.checked_add(table_off as usize)?;
        let mut val: i32 = -1;
        let mut cur = entry;
        let mut first = true;
        // Each step advances at least one byte of the table: bounded by its size.
        for _ in 0..1_000_000 {
            let uv = uvarint(self.bytes(), &mut at)?;
            if uv == 0 && !first {
                return None;
            }
            first = false;
            let delta = if uv & 1 != 0 {
                !(uv >> 1) as i32
            } else {
                (uv >> 1) as i32
            };
            let pcdelta = uvarint(self.bytes(), &mut at)? as u64 * self.quantum;
            val = val.wrapping_add(delta);
            cur = cur.checked_add(pcdelta)?;
            if pc < cur {
                return Some(val);
            }
        }
        None
    }
}

/// Field offsets inside `_func` per layout.
struct FuncLayout {
    name_off: usize,
    pcsp: usize,
    pcfile: usize,
    pcln: usize,
    npcdata: usize,
    cu_offset: usize,
    start_line: Option<usize>,
    func_id: usize,
    flag: Option<usize>,
    nfuncdata: usize,
    pcdata: usize,
}

impl<'a> Func<'a> {
    fn layout(&self) -> FuncLayout {
        match self.tab.version {
            PclntabVersion::Go116 => FuncLayout {
                name_off: 8,
                pcsp: 20,
                pcfile: 24,
                pcln: 28,
                npcdata: 32,
                cu_offset: 36,
                start_line: None,
                func_id: 40,
                flag: Some(41),
                nfuncdata: 43,
                pcdata: 44,
            },
            PclntabVersion::Go118 => FuncLayout {
                name_off: 4,
                pcsp: 16,
                pcfile: 20,
                pcln: 24,
                npcdata: 28,
                cu_offset: 32,
                start_line: None,
                func_id: 36,
                flag: Some(37),
                nfuncdata: 39,
                pcdata: 40,
            },
            PclntabVersion::Go120 => FuncLayout {
                name_off: 4,
                pcsp: 16,
                pcfile: 20,
                pcln: 24,
                npcdata: 28,
                cu_offset: 32,
                start_line: Some(36),
                func_id: 40,
                flag: Some(41),
                nfuncdata: 43,
                pcdata: 44,
            },
        }
    }

    fn field(&self, off: usize) -> u32 {
        u32_at(self.tab.bytes(), self.off.saturating_add(off)).unwrap_or(0)
    }

    fn byte(&self, off: usize) -> u8 {
        self.tab
            .bytes()
            .get(self.off.saturating_add(off))
            .copied()
            .unwrap_or(0)
    }

    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The entry pc the `_func` record itself holds (absolute before 1.18, an offset from
    /// textStart after): it must agree with the functab.
    fn recorded_entry(&self) -> Option<u64> {
        let b = self.tab.bytes();
        match self.tab.version {
            PclntabVersion::Go116 => u64_at(b, self.off),
            _ => (u32_at(b, self.off)? as u64).checked_add(self.tab.text_start),
        }
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn name(&self) -> &'a str {
        let l = self.layout();
        let off = self.field(l.name_off) as usize;
        self.tab
            .funcnametab
            .checked_add(off)
            .and_then(|o| cstr_at(self.tab.bytes(), o))
            .unwrap_or("?")
    }

    pub fn func_id(&self) -> u8 {
        self.byte(self.layout().func_id)
    }

    pub fn flag(&self) -> u8 {
        self.layout().flag.map(|o| self.byte(o)).unwrap_or(0)
    }

    pub fn start_line(&self) -> Option<u32> {
        self.layout().start_line.map(|o| self.field(o))
    }

    /// The stack-frame size at `pc` (how far SP is below the frame's entry SP).
    pub fn sp_delta(&self, pc: u64) -> Option<i32> {
        self.tab
            .pcvalue(self.field(self.layout().pcsp), self.entry, pc)
    }

    pub fn file_line(&self, pc: u64) -> Option<(&'a str, u32)> {
        let l = self.layout();
        let fileno = self.tab.pcvalue(self.field(l.pcfile), self.entry, pc)?;
        let line = self.tab.pcvalue(self.field(l.pcln), self.entry, pc)?;
        let file = self.tab.file_name(self.field(l.cu_offset), fileno)?;
        Some((file, line.max(0) as u32))
    }

    fn pcdata(&self, idx: u32, pc: u64) -> Option<i32> {
        let l = self.layout();
        if idx >= self.field(l.npcdata) {
            return None;
        }
        let table = self.field(l.pcdata + 4 * idx as usize);
        self.tab.pcvalue(table, self.entry, pc)
    }

    fn funcdata(&self, idx: u32) -> Option<u64> {
        let l = self.layout();
        if idx >= self.byte(l.nfuncdata) as u32 {
            return None;
        }
        let npcdata = self.field(l.npcdata) as usize;
        let at = l.pcdata + 4 * npcdata + 4 * idx as usize;
        match self.tab.version {
            PclntabVersion::Go116 => {
                // 1.16–1.17: pointer-aligned array of absolute pointers after pcdata.
                let at = (self.off + at).next_multiple_of(8);
                u64_at(self.tab.bytes(), at).filter(|&p| p != 0)
            }
            _ => {
                let off = self.field(at);
                (off != u32::MAX).then_some(self.tab.gofunc? + off as u64)
            }
        }
    }

    /// Calls inlined at `pc`, innermost first, and the pc in this (outer) function where
    /// the outermost of them was called: the outer frame's file:line is at that pc.
    /// `read` returns `len` bytes at a virtual address of the binary (the inline tree lives
    /// in go:func.* data).
    pub fn inlined_at(
        &self,
        pc: u64,
        read: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> (Vec<InlinedCall>, u64) {
        let mut out = Vec::new();
        let Some(tree) = self.funcdata(FUNCDATA_INL_TREE) else {
            return (out, pc);
        };
        let mut at_pc = pc;
        for _ in 0..64 {
            let Some(ix) = self.pcdata(PCDATA_INL_TREE_INDEX, at_pc) else {
                break;
            };
            if ix < 0 {
                break;
            }
            let (size, parent_pc_off, name_off_off) = match self.tab.version {
                // 1.20+: funcID u8, _ [3], nameOff i32, parentPc i32, startLine i32
                PclntabVersion::Go120 => (16u64, 8usize, 4usize),
                // 1.16–1.19: parent i16, funcID u8, _, file i32, line i32, nameOff i32, parentPc i32
                _ => (20u64, 16usize, 12usize),
            };
            let Some(e) = read(tree + ix as u64 * size, size as usize) else {
                break;
            };
            let (Some(name_off), Some(parent_pc)) =
                (u32_at(&e, name_off_off), u32_at(&e, parent_pc_off))
            else {
                break;
            };
            let name = self
                .tab
                .funcnametab
                .checked_add(name_off as usize)
                .and_then(|o| cstr_at(self.tab.bytes(), o))
                .unwrap_or("?")
                .to_string();
            // The pc's position inside the inlined body: file/line tables of the outer
            // function at the current pc describe the innermost inlined code.
            let (file, line) = match self.file_line(at_pc) {
                Some((f, l)) => (Some(f.to_string()), Some(l)),
                None => (None, None),
            };
            out.push(InlinedCall { name, file, line });
            at_pc = self.entry + parent_pc as u64;
        }
        (out, at_pc)
    }
}

/// Go prints generic instantiations with their shape types elided: `F[...]`.
pub fn display_name(name: &str) -> String {
    let Some(open) = name.find('[') else {
        return name.to_string();
    };
    // Match the closing bracket of the first type-parameter list.
    let mut depth = 0;
    for (i, c) in name[open..].char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return format!("{}[...]{}", &name[..open], &name[open + i + 1..]);
                }
            }
            _ => {}
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names_elide_shapes() {
        assert_eq!(
            display_name("main.Map[go.shape.int,go.shape.string]"),
            "main.Map[...]"
        );
        assert_eq!(display_name("pkg.(*T[go.shape.int]).M"), "pkg.(*T[...]).M");
        assert_eq!(display_name("main.main"), "main.main");
    }

    #[test]
    fn garbage_headers_are_rejected() {
        let mut b = vec![0u8; 256];
        b[..4].copy_from_slice(&0xffff_fff1u32.to_le_bytes());
        b[6] = 1;
        b[7] = 8;
        let shared = |b: &Vec<u8>| -> Bytes { std::sync::Arc::new(b.clone()) };
        assert!(Pclntab::parse_at(shared(&b), 0, 0).is_none(), "nfunc 0");
        b[8] = 3; // nfunc 3, all offsets 0 -> functab not sorted / out of range
        for i in 0..8 {
            b[16 + 8 * i] = 0xff;
        }
        assert!(Pclntab::parse_at(shared(&b), 0, 0).is_none());
        assert!(Pclntab::parse_at(shared(&b[..10].to_vec()), 0, 0).is_none());
    }

    #[test]
    fn uvarint_bounds() {
        let mut at = 0;
        assert_eq!(uvarint(&[0x80, 0x80], &mut at), None);
        let mut at = 0;
        assert_eq!(uvarint(&[0x7f], &mut at), Some(127));
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Inputs the fuzzer (tests/fuzz, target pclntab) found panicking, kept as tests.
    #[test]
    fn short_header_after_the_magic() {
        let input: Vec<u8> = vec![0xf0, 0xff, 0xff, 0xff, 0, 0, 1];
        let bytes: Bytes = std::sync::Arc::new(input);
        assert!(Pclntab::parse_at(bytes, 0, 0).is_none());
    }
}
