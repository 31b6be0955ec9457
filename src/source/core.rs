//! ELF core files: threads and registers (NT_PRSTATUS), the process (NT_PRPSINFO), the
//! signal (NT_SIGINFO), mapped files (NT_FILE), and memory from PT_LOAD — mmapped, never
//! read whole. The same unwinder and Go walker then run over it through [`Memory`].

use super::compressed::{self, Compression};
use crate::binary::FileOpener;
use crate::binary::elf::{ElfError, ElfFile};
use crate::memory::{Memory, MemoryError};
use crate::model::{Arch, CrashSignal, Exe, Mapping, Process, Snapshot, Source, StackCopy, Thread};
use crate::source::regs;
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NT_PRSTATUS: u32 = 1;
const NT_PRPSINFO: u32 = 3;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;
const NT_AUXV: u32 = 6;
/// Offsets in the 64-bit `struct elf_prstatus` (x86-64 and arm64 alike).
const PRSTATUS_PID: usize = 32;
const PRSTATUS_PPID: usize = 36;
const PRSTATUS_CURSIG: usize = 12;
const PRSTATUS_REG: usize = 112;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Elf(#[from] ElfError),
    #[error("{path} is not a core file (ELF type {kind})")]
    NotACore { path: String, kind: u16 },
    #[error("{path}: unsupported machine {machine} (x86-64 and arm64 are)")]
    Machine { path: String, machine: u16 },
}

/// A segment of the core's memory: [vaddr, vaddr + memsz) with filesz bytes in the file.
#[derive(Debug, Clone, Copy)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
}

/// The memory of a core, read from the mapped file.
#[derive(Clone)]
pub struct CoreMemory {
    data: Arc<Mmap>,
    segs: Vec<Segment>,
}

impl Memory for CoreMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let err = || MemoryError::NotCaptured {
            addr,
            len: buf.len(),
        };
        let i = self.segs.partition_point(|s| s.vaddr <= addr);
        let s = self
            .segs
            .get(i.checked_sub(1).ok_or_else(err)?)
            .ok_or_else(err)?;
        let off = addr - s.vaddr;
        let end = off.checked_add(buf.len() as u64).ok_or_else(err)?;
        if end > s.filesz {
            return Err(err()); // not dumped (beyond filesz) or past the segment
        }
        let at = (s.offset + off) as usize;
        let src = self.data.get(at..at + buf.len()).ok_or_else(err)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl CoreMemory {
    /// [start, end) of the dumped segment containing `addr`.
    pub fn segment_of(&self, addr: u64) -> Option<(u64, u64)> {
        self.segs
            .iter()
            .find(|s| s.vaddr <= addr && addr < s.vaddr + s.filesz)
            .map(|s| (s.vaddr, s.vaddr + s.filesz))
    }
}

/// A parsed core: the snapshot of its process and its memory.
pub struct Core {
    pub snapshot: Snapshot,
    pub memory: CoreMemory,
    pub arch: Arch,
    /// Bytes of the file the program headers describe beyond the file's end (truncated).
    pub missing_bytes: u64,
}

pub fn open(path: &Path) -> Result<Core, CoreError> {
    let p = path.display().to_string();
    let io = |source| CoreError::Io {
        path: p.clone(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    // systemd-coredump's compressed cores: inflated into an unnamed temporary file first.
    let mut head = [0u8; 6];
    let got = std::io::Read::read(&mut f, &mut head).map_err(io)?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(io)?;
    let mut inflated = None;
    if let Some(c) = Compression::sniff(&head[..got]) {
        let started = std::time::Instant::now();
        let (file, size) = compressed::inflate(c, f, &std::env::temp_dir()).map_err(io)?;
        f = file;
        inflated = Some((c, size, started.elapsed()));
    }
    // SAFETY: read-only private mapping of a file we opened; see ElfFile::open.
    let data = Arc::new(unsafe { Mmap::map(&f) }.map_err(|source| CoreError::Io {
        path: p.clone(),
        source,
    })?);
    let file = ElfFile::from_bytes(data.clone(), &p)?;
    if file.kind != goblin::elf::header::ET_CORE {
        return Err(CoreError::NotACore {
            path: p,
            kind: file.kind,
        });
    }
    let arch = match file.machine {
        goblin::elf::header::EM_X86_64 => Arch::X86_64,
        goblin::elf::header::EM_AARCH64 => Arch::Aarch64,
        m => {
            return Err(CoreError::Machine {
                path: p,
                machine: m,
            });
        }
    };
    let mut segs: Vec<Segment> = file
        .loads
        .iter()
        .map(|l| Segment {
            vaddr: l.vaddr,
            memsz: l.memsz,
            offset: l.offset,
            filesz: l.filesz,
            flags: l.flags,
        })
        .collect();
    segs.sort_by_key(|s| s.vaddr);
    // Notes are read straight from the program headers (goblin), as every ELF note is.
    let elf = goblin::elf::Elf::parse(&data).map_err(|e| ElfError::Malformed {
        path: p.clone(),
        what: e.to_string(),
    })?;
    let file_len = data.len() as u64;
    let mut missing_bytes = 0;
    for s in segs.iter_mut() {
        let avail = file_len.saturating_sub(s.offset).min(s.filesz);
        missing_bytes += s.filesz - avail;
        s.filesz = avail;
    }

    let mut snapshot = Snapshot::new(
        Source::Core { path: p.clone() },
        crate::model::Host {
            arch: Some(arch),
            ..Default::default()
        },
    );
    let mut process = Process {
        stopped: true,
        ..Default::default()
    };
    let mut files: Vec<(u64, u64, u64, String)> = Vec::new();
    if let Some(notes) = elf.iter_note_headers(&data) {
        for note in notes.flatten() {
            let d = note.desc;
            match note.n_type {
                NT_PRSTATUS => {
                    let word = |o: usize| {
                        d.get(o..o + 4)
                            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    };
                    let tid = word(PRSTATUS_PID).unwrap_or(0);
                    if process.ppid == 0 {
                        process.ppid = word(PRSTATUS_PPID).unwrap_or(0);
                    }
                    let cursig = d
                        .get(PRSTATUS_CURSIG..PRSTATUS_CURSIG + 2)
                        .map(|b| u16::from_le_bytes([b[0], b[1]]));
                    let n = regs::word_count(arch) * 8;
                    let registers = d
                        .get(PRSTATUS_REG..PRSTATUS_REG + n)
                        .and_then(|b| regs::from_bytes(arch, b));
                    process.threads.push(Thread {
                        tid,
                        name: String::new(),
                        state: "core".into(),
                        registers,
                        stopped: true,
                        redelivered_signal: cursig.filter(|s| *s != 0).map(|s| s as i32),
                        ..Default::default()
                    });
                }
                NT_AUXV => process.auxv = parse_auxv(d),
                NT_PRPSINFO => {
                    let cstr = |b: &[u8]| {
                        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                        String::from_utf8_lossy(&b[..end]).into_owned()
                    };
                    let word = |o: usize| {
                        d.get(o..o + 4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    };
                    process.uid = [word(16).unwrap_or(0); 4];
                    process.gid = [word(20).unwrap_or(0); 4];
                    process.pid = word(24).unwrap_or(0) as i32;
                    process.ppid = word(28).unwrap_or(0) as i32;
                    process.comm = d.get(40..56).map(cstr).unwrap_or_default();
                    process.cmdline = d
                        .get(56..136)
                        .map(cstr)
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(String::from)
                        .collect();
                    process.state = d
                        .get(1)
                        .map(|c| (*c as char).to_string())
                        .unwrap_or_default();
                }
                NT_SIGINFO => {
                    let i32_at = |o: usize| {
                        d.get(o..o + 4)
                            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    };
                    let addr = d
                        .get(16..24)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
                    process.signal = Some(CrashSignal {
                        goroutine: None,
                        signo: i32_at(0).unwrap_or(0),
                        code: i32_at(8).unwrap_or(0),
                        addr,
                        tid: None,
                    });
                }
                NT_FILE => files = parse_nt_file(d),
                _ => {}
            }
        }
    }
    if process.pid == 0 {
        process.pid = process.threads.first().map(|t| t.tid).unwrap_or(0);
    }
    // The kernel writes the thread that took the signal first.
    if let (Some(sig), Some(first)) = (process.signal.as_mut(), process.threads.first()) {
        sig.tid = Some(first.tid);
    }
    let memory = CoreMemory {
        data,
        segs: segs.clone(),
    };
    // What the core's bytes hold at an address, as much as the core has of it.
    let read = |addr: u64, len: usize| -> Vec<u8> {
        let mut buf = vec![0u8; len];
        if memory.read(addr, &mut buf).is_ok() {
            return buf;
        }
        let mut word = vec![0u8; len.min(4)];
        if memory.read(addr, &mut word).is_ok() {
            word
        } else {
            Vec::new()
        }
    };
    for t in process.threads.iter_mut() {
        t.name = process.comm.clone();
        // The syscall each thread was in when the core was written (a blocked futex wait,
        // a read), with its futex word or path, as live.
        if let Some((nr, args)) = t
            .registers
            .as_ref()
            .and_then(crate::syscall::from_registers)
        {
            t.syscall = Some(crate::syscall::at_stop(arch, nr, &args, &read));
        }
        if let Some(sp) = t.registers.as_ref().and_then(|r| r.sp())
            && let Some((lo, hi)) = memory.segment_of(sp)
        {
            t.stack = Some(StackCopy {
                start: lo,
                len: hi - lo,
                sp,
                truncated: false,
            });
        }
    }
    process.mappings = mappings(&segs, &files);
    // The vDSO is in no file: the auxiliary vector says where it is.
    if let Some(&vdso) = process.auxv.get("AT_SYSINFO_EHDR") {
        for m in process.mappings.iter_mut() {
            if m.start == vdso && m.path.is_none() {
                m.path = Some("[vdso]".into());
            }
        }
    }
    if let Some((_, _, _, exe)) = files.first() {
        process.exe = Some(Exe {
            path: exe.clone(),
            deleted: exe.ends_with(" (deleted)"),
            memfd: None,
            seals: None,
        });
    }
    if let Some((c, size, took)) = inflated {
        snapshot.note(
            Some(process.pid),
            None,
            format!(
                "the core was {}-compressed: {size} bytes inflated into an unnamed temporary file in {} ms",
                c.name(),
                took.as_millis()
            ),
        );
    }
    if missing_bytes > 0 {
        snapshot.note(
            Some(process.pid),
            None,
            format!("the core is truncated: {missing_bytes} bytes of memory the headers describe are missing"),
        );
    }
    snapshot.processes.push(process);
    Ok(Core {
        snapshot,
        memory,
        arch,
        missing_bytes,
    })
}

/// NT_AUXV: (type, value) pairs of 64-bit words up to AT_NULL, named where known.
fn parse_auxv(d: &[u8]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for pair in d.chunks_exact(16) {
        let k = u64::from_le_bytes(pair[..8].try_into().unwrap_or([0; 8]));
        let v = u64::from_le_bytes(pair[8..].try_into().unwrap_or([0; 8]));
        let name = match k {
            0 => break,
            3 => "AT_PHDR",
            4 => "AT_PHENT",
            5 => "AT_PHNUM",
            6 => "AT_PAGESZ",
            7 => "AT_BASE",
            9 => "AT_ENTRY",
            11 => "AT_UID",
            16 => "AT_HWCAP",
            17 => "AT_CLKTCK",
            23 => "AT_SECURE",
            25 => "AT_RANDOM",
            26 => "AT_HWCAP2",
            31 => "AT_EXECFN",
            33 => "AT_SYSINFO_EHDR",
            51 => "AT_MINSIGSTKSZ",
            _ => {
                out.insert(format!("AT_{k}"), v);
                continue;
            }
        };
        out.insert(name.to_string(), v);
    }
    out
}

/// NT_FILE: count, page size, count × (start, end, page offset), then the names.
fn parse_nt_file(d: &[u8]) -> Vec<(u64, u64, u64, String)> {
    let word = |i: usize| {
        d.get(i * 8..i * 8 + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let (Some(count), Some(page)) = (word(0), word(1)) else {
        return Vec::new();
    };
    if count > 1 << 20 {
        return Vec::new();
    }
    let names_at = 16 + count as usize * 24;
    let mut names = d.get(names_at..).unwrap_or(&[]).split(|&c| c == 0);
    (0..count as usize)
        .filter_map(|i| {
            let start = word(2 + 3 * i)?;
            let end = word(3 + 3 * i)?;
            let off = word(4 + 3 * i)?.checked_mul(page)?;
            let name = String::from_utf8_lossy(names.next()?).into_owned();
            Some((start, end, off, name))
        })
        .collect()
}

/// Mappings from PT_LOAD segments, named and offset by NT_FILE where a file backs them.
fn mappings(segs: &[Segment], files: &[(u64, u64, u64, String)]) -> Vec<Mapping> {
    segs.iter()
        .map(|s| {
            let perms = format!(
                "{}{}{}p",
                if s.flags & 4 != 0 { 'r' } else { '-' },
                if s.flags & 2 != 0 { 'w' } else { '-' },
                if s.flags & 1 != 0 { 'x' } else { '-' }
            );
            let file = files
                .iter()
                .find(|(a, b, _, _)| *a <= s.vaddr && s.vaddr < *b);
            Mapping {
                start: s.vaddr,
                end: s.vaddr + s.memsz,
                perms,
                offset: file.map(|(a, _, off, _)| off + (s.vaddr - a)).unwrap_or(0),
                dev: "00:00".into(),
                // Distinct files get distinct keys for the binary cache.
                inode: file.map(|(_, _, _, n)| fxhash(n)).unwrap_or(0),
                path: file.map(|(_, _, _, n)| n.clone()),
                ..Default::default()
            }
        })
        .collect()
}

fn fxhash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish() | 1
}

/// Opens a core's binaries: `--exe` for the main executable, else the path under
/// `--sysroot` (a copy of the machine the core came from), else the path as is.
pub struct CoreOpener {
    pub exe: Option<PathBuf>,
    pub exe_path: Option<String>,
    pub sysroot: Option<PathBuf>,
}

impl FileOpener for CoreOpener {
    fn open(&self, m: &Mapping) -> std::io::Result<std::fs::File> {
        let path = m.path.as_deref().unwrap_or("");
        if let (Some(exe), Some(p)) = (&self.exe, &self.exe_path)
            && p == path
        {
            return std::fs::File::open(exe);
        }
        let clean = path.strip_suffix(" (deleted)").unwrap_or(path);
        match &self.sysroot {
            Some(root) => std::fs::File::open(root.join(clean.trim_start_matches('/'))),
            None => std::fs::File::open(clean),
        }
    }
}
