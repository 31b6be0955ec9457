//! Native unwinding over a captured stack: CFI first, frame pointers next, a cautious stack
//! scan last; each frame says which found it. x86-64 signal frames (`__restore_rt`) are
//! stepped through using the saved ucontext, so crash stacks reach the interrupted code.

use super::modules::ModuleMap;
use crate::binary::cfi::{CfaRule, CfiScratch, RegRule, UnwindRule, evaluate_expression};
use crate::memory::Memory;
use crate::model::{Arch, Frame, FrameTrust, Registers};

/// DWARF register numbers of what the unwinder tracks.
struct Abi {
    sp: u16,
    fp: u16,
    ra: u16,
    /// Register names by DWARF number.
    names: &'static [(u16, &'static str)],
}

const X86_64: Abi = Abi {
    sp: 7,
    fp: 6,
    ra: 16,
    names: &[
        (0, "rax"),
        (1, "rdx"),
        (2, "rcx"),
        (3, "rbx"),
        (4, "rsi"),
        (5, "rdi"),
        (6, "rbp"),
        (7, "rsp"),
        (8, "r8"),
        (9, "r9"),
        (10, "r10"),
        (11, "r11"),
        (12, "r12"),
        (13, "r13"),
        (14, "r14"),
        (15, "r15"),
    ],
};

const AARCH64: Abi = Abi {
    sp: 31,
    fp: 29,
    ra: 30,
    names: &[
        (19, "x19"),
        (20, "x20"),
        (21, "x21"),
        (22, "x22"),
        (23, "x23"),
        (24, "x24"),
        (25, "x25"),
        (26, "x26"),
        (27, "x27"),
        (28, "x28"),
        (29, "x29"),
        (30, "x30"),
        (31, "sp"),
    ],
};

fn abi(arch: Arch) -> &'static Abi {
    match arch {
        Arch::X86_64 => &X86_64,
        Arch::Aarch64 => &AARCH64,
    }
}

/// Register values by DWARF number; None = unknown.
#[derive(Clone)]
struct RegFile([Option<u64>; 33]);

impl RegFile {
    fn get(&self, r: u16) -> Option<u64> {
        self.0.get(r as usize).copied().flatten()
    }
    fn set(&mut self, r: u16, v: Option<u64>) {
        if let Some(slot) = self.0.get_mut(r as usize) {
            *slot = v;
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct UnwindOptions {
    pub max_frames: usize,
    pub scan: bool,
}

impl Default for UnwindOptions {
    fn default() -> Self {
        UnwindOptions {
            max_frames: 256,
            scan: true,
        }
    }
}

/// Bytes of x86-64 `__restore_rt`: mov $15, %rax; syscall (rt_sigreturn).
const RESTORE_RT: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
/// Offset of uc_mcontext.gregs in the ucontext at the trampoline's stack pointer.
const UC_MCONTEXT: u64 = 40;
/// gregs order in x86-64 mcontext_t (REG_R8 … REG_RIP), as DWARF numbers (16 = rip).
const GREGS: [u16; 17] = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16];

/// The result of unwinding one thread.
pub struct Unwound {
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// Per frame: the pc is where the thread was (innermost frame, or interrupted by a
    /// signal), not a return address.
    pub exact_pc: Vec<bool>,
    /// Why unwinding stopped; None when it reached the outermost frame.
    pub stop: Option<String>,
}

/// Unwinds one thread.
pub fn unwind(
    regs: &Registers,
    mem: &dyn Memory,
    modules: &ModuleMap,
    stack: (u64, u64),
    opts: &UnwindOptions,
    scratch: &mut CfiScratch,
) -> Unwound {
    let mut exact = vec![true];
    let (frames, stop) = unwind_inner(regs, mem, modules, stack, opts, scratch, &mut exact);
    exact.truncate(frames.len());
    Unwound {
        frames,
        exact_pc: exact,
        stop,
    }
}

fn unwind_inner(
    regs: &Registers,
    mem: &dyn Memory,
    modules: &ModuleMap,
    stack: (u64, u64),
    opts: &UnwindOptions,
    scratch: &mut CfiScratch,
    exact: &mut Vec<bool>,
) -> (Vec<Frame>, Option<String>) {
    let abi = abi(regs.arch);
    let mut rf = RegFile([None; 33]);
    for (n, name) in abi.names {
        rf.set(*n, regs.get(name));
    }
    let (Some(mut pc), Some(mut sp)) = (regs.pc(), regs.sp()) else {
        return (Vec::new(), Some("no pc or sp in the registers".into()));
    };
    rf.set(abi.sp, Some(sp));
    if regs.arch == Arch::X86_64 {
        // DWARF column 16 is rip: CFI expressions (PLT stubs) read it.
        rf.set(abi.ra, Some(pc));
    }
    let mut frames = vec![Frame::bare(pc, sp, FrameTrust::Context)];
    // The innermost frame and a frame interrupted by a signal sit at their own pc; every
    // other pc is a return address, whose call lies at pc - 1.
    let mut exact_pc = true;
    loop {
        if frames.len() >= opts.max_frames {
            return (frames, Some(format!("frame limit ({})", opts.max_frames)));
        }
        if regs.arch == Arch::X86_64 && at_restore_rt(modules, pc) {
            // The handler returned into the restorer; nothing called it: name it by its
            // own pc, not by the byte before it.
            if let Some(e) = exact.last_mut() {
                *e = true;
            }
            match signal_frame(mem, sp) {
                Some(saved) => {
                    rf = saved;
                    pc = rf.get(16).unwrap_or(0);
                    sp = rf.get(abi.sp).unwrap_or(0);
                    exact_pc = true;
                    if pc == 0 {
                        return (frames, Some("signal frame without a pc".into()));
                    }
                    frames.push(Frame::bare(pc, sp, FrameTrust::Cfi));
                    exact.push(true);
                    continue;
                }
                None => {
                    return (
                        frames,
                        Some("signal frame not in the captured stack".into()),
                    );
                }
            }
        }
        let lookup = if exact_pc { pc } else { pc.wrapping_sub(1) };
        // Go code: pclntab's frame sizes are authoritative (Go emits no .eh_frame, and asm
        // functions break the frame-pointer chain). Then CFI, then frame pointers.
        let step = go_step(
            regs.arch,
            abi,
            &rf,
            mem,
            modules,
            pc,
            lookup,
            frames.len() == 1,
        )
        .map(|r| r.map(|rf| (rf, FrameTrust::Pclntab)))
        .or_else(|| {
            cfi_step(regs.arch, abi, &rf, mem, modules, lookup, scratch)
                .map(|r| r.map(|rf| (rf, FrameTrust::Cfi)))
        })
        .unwrap_or_else(|| {
            if regs.arch == Arch::Aarch64
                && frames.len() == 1
                && let Some(next) = aarch64_leaf_step(abi, &rf, mem, modules, pc)
            {
                return Ok((next, FrameTrust::Fp));
            }
            fp_step(abi, &rf, mem, sp, stack).map(|rf| (rf, FrameTrust::Fp))
        });
        let step = match step {
            Ok(s) => Ok(s),
            // Scan only where unwinding failed, never past a frame that says it is the last.
            Err(Stop::Because(e)) if opts.scan => {
                scan_step(regs.arch, abi, &rf, mem, modules, sp, stack)
                    .ok_or(Stop::Because(e))
                    .map(|rf| (rf, FrameTrust::Scan))
            }
            Err(e) => Err(e),
        };
        let (next, trust) = match step {
            Ok(s) => s,
            Err(Stop::Outermost) => return (frames, None),
            Err(Stop::Because(why)) => return (frames, Some(why)),
        };
        let (Some(npc), Some(nsp)) = (next.get(abi.ra), next.get(abi.sp)) else {
            return (frames, Some("return address unknown".into()));
        };
        if npc == 0 {
            return (frames, None);
        }
        // A return address must point into code we know; anything else is a sign the
        // unwind went wrong (or ran off the end of the stack), not a frame.
        if modules.find(npc.wrapping_sub(1)).is_none() && !modules.is_empty() {
            return (
                frames,
                Some(format!("return address {npc:#x} is not in any loaded code")),
            );
        }
        // Only CFI (and the arm64 leaf step, which returns through the link register) may
        // leave the stack pointer where it was.
        let leaf = regs.arch == Arch::Aarch64 && frames.len() == 1 && nsp == sp && npc != pc;
        if nsp <= sp && trust != FrameTrust::Cfi && !leaf {
            return (
                frames,
                Some(format!("stack pointer did not grow ({nsp:#x} <= {sp:#x})")),
            );
        }
        if nsp < sp || (nsp == sp && npc == pc) {
            return (frames, Some("unwinding made no progress".into()));
        }
        pc = npc;
        sp = nsp;
        rf = next;
        exact_pc = false;
        frames.push(Frame::bare(pc, sp, trust));
        exact.push(false);
    }
}

enum Stop {
    /// The frame says it is the last one (its return address is undefined).
    Outermost,
    Because(String),
}

/// One step by CFI: Some(Ok) stepped, Some(Err) CFI says stop, None no CFI for this pc.
fn cfi_step(
    arch: Arch,
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    modules: &ModuleMap,
    lookup: u64,
    scratch: &mut CfiScratch,
) -> Option<Result<RegFile, Stop>> {
    let module = modules.find(lookup)?;
    let rule = module.binary.unwind_rule(module.svma(lookup), scratch)?;
    Some(apply_rule(arch, abi, rf, mem, &rule))
}

/// The caller's registers from the callee's by one CFI row.
fn apply_rule(
    arch: Arch,
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    rule: &UnwindRule,
) -> Result<RegFile, Stop> {
    let reg = |r: u16| rf.get(r);
    let read = |addr: u64, size: u8| -> Option<u64> {
        let mut b = [0u8; 8];
        let buf = b.get_mut(..usize::from(size))?;
        mem.read(addr, buf).ok()?;
        Some(u64::from_le_bytes(b))
    };
    let cfa = match &rule.cfa {
        CfaRule::RegisterOffset(cfa_reg, off) => {
            let Some(base) = rf.get(*cfa_reg) else {
                return Err(Stop::Because(format!("CFA register {cfa_reg} unknown")));
            };
            base.wrapping_add(*off as u64)
        }
        CfaRule::Expression(e) => evaluate_expression(e, None, &reg, &read)
            .map_err(|e| Stop::Because(format!("CFA expression: {e}")))?,
    };
    let mut next = rf.clone();
    // x86-64's return-address column has no value of its own; on arm64 it is x30.
    if arch == Arch::X86_64 {
        next.set(abi.ra, None);
    }
    for (r, rule) in &rule.regs {
        let v = match rule {
            RegRule::Undefined => {
                if *r == abi.ra {
                    return Err(Stop::Outermost);
                }
                None
            }
            RegRule::SameValue => rf.get(*r),
            RegRule::Offset(n) => mem.read_u64(cfa.wrapping_add(*n as u64)).ok(),
            RegRule::ValOffset(n) => Some(cfa.wrapping_add(*n as u64)),
            RegRule::Register(r2) => rf.get(*r2),
            RegRule::Expression(e) => evaluate_expression(e, Some(cfa), &reg, &read)
                .ok()
                .and_then(|addr| mem.read_u64(addr).ok()),
            RegRule::ValExpression(e) => evaluate_expression(e, Some(cfa), &reg, &read).ok(),
            RegRule::Constant(c) => Some(*c),
            RegRule::Unsupported => None,
        };
        next.set(*r, v);
    }
    next.set(abi.sp, Some(cfa));
    if next.get(abi.ra).is_none() {
        return Err(Stop::Because(format!(
            "return address not in the captured stack (CFA {cfa:#x})"
        )));
    }
    Ok(next)
}

/// One step of a Go function by its pclntab SP delta: None when `lookup` is not Go code.
#[allow(clippy::too_many_arguments)]
fn go_step(
    arch: Arch,
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    modules: &ModuleMap,
    pc: u64,
    lookup: u64,
    innermost: bool,
) -> Option<Result<RegFile, Stop>> {
    let module = modules.find(lookup)?;
    let go = module.binary.go()?;
    let f = go.pclntab.func_at(module.svma(lookup))?;
    // The Go signal handler is marked as the top of its (signal) stack, but on x86-64 its
    // return address is the restorer (runtime.sigreturn__sigaction, the same bytes as
    // glibc's __restore_rt), whose signal frame leads back to the interrupted code: a Go
    // program that dies of a signal it raised from a signal handler (GOTRACEBACK=crash)
    // shows its faulting goroutine only that way. Step over it; the signal-frame step does
    // the rest.
    if f.flag() & crate::binary::go::pclntab::FLAG_TOP_FRAME != 0
        && !(arch == Arch::X86_64 && f.name() == "runtime.sigtramp")
    {
        return Some(Err(Stop::Outermost));
    }
    // The frame size at the pc itself: a return address lies inside its caller.
    let Some(delta) = f.sp_delta(module.svma(pc)) else {
        return Some(Err(Stop::Because(format!(
            "no frame size for {} (assembly?)",
            f.name()
        ))));
    };
    let sp = rf.get(abi.sp)?;
    let mut next = rf.clone();
    match arch {
        Arch::X86_64 => {
            let cfa = sp.wrapping_add(delta as u64).wrapping_add(8);
            let Ok(ra) = mem.read_u64(cfa - 8) else {
                return Some(Err(Stop::Because(
                    "return address not in the captured stack".into(),
                )));
            };
            // Go saves the caller's frame pointer just below the return address.
            if delta >= 8
                && let Ok(bp) = mem.read_u64(cfa - 16)
            {
                next.set(abi.fp, Some(bp));
            }
            next.set(abi.ra, Some(ra));
            next.set(abi.sp, Some(cfa));
        }
        Arch::Aarch64 => {
            let cfa = sp.wrapping_add(delta as u64);
            // A frameless leaf still has its return address in the link register.
            let ra = if delta == 0 && innermost {
                rf.get(abi.ra)
            } else {
                mem.read_u64(sp).ok()
            };
            let Some(ra) = ra else {
                return Some(Err(Stop::Because(
                    "return address not in the captured stack".into(),
                )));
            };
            next.set(abi.ra, Some(ra));
            next.set(abi.sp, Some(cfa));
        }
    }
    Some(Ok(next))
}

/// One step by the frame-pointer chain: [fp] is the caller's fp, [fp + 8] the return address.
fn fp_step(
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    sp: u64,
    stack: (u64, u64),
) -> Result<RegFile, Stop> {
    let fp = rf
        .get(abi.fp)
        .ok_or(Stop::Because("no unwind info and no frame pointer".into()))?;
    if fp < sp || fp % 8 != 0 || fp + 16 > stack.1 {
        return Err(Stop::Because(format!(
            "no unwind info and frame pointer {fp:#x} is not on the stack"
        )));
    }
    let (Ok(prev_fp), Ok(ra)) = (mem.read_u64(fp), mem.read_u64(fp + 8)) else {
        return Err(Stop::Because(
            "frame pointer chain leaves the captured stack".into(),
        ));
    };
    let mut next = rf.clone();
    next.set(abi.fp, Some(prev_fp));
    next.set(abi.ra, Some(ra));
    next.set(abi.sp, Some(fp + 16));
    Ok(next)
}

/// An arm64 innermost frame without CFI: a leaf that has not saved its link register
/// returns through x30 while sp and x29 stay the caller's. Taken only when the frame record
/// at x29 does not already hold x30 (then the function saved it, and the fp chain is
/// right), x30 follows a call, and x30 is not inside the function we are in (a call this
/// function made and that returned leaves x30 pointing into itself).
fn aarch64_leaf_step(
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    modules: &ModuleMap,
    pc: u64,
) -> Option<RegFile> {
    let lr = rf.get(abi.ra)?;
    if let Some(fp) = rf.get(abi.fp)
        && mem.read_u64(fp.wrapping_add(8)).ok() == Some(lr)
    {
        return None;
    }
    if !follows_call(Arch::Aarch64, modules, lr) {
        return None;
    }
    if let (Some(here), Some(there)) = (modules.find(pc), modules.find(lr.wrapping_sub(4))) {
        let name = |m: &super::modules::Module, a: u64| {
            m.binary
                .symbols()
                .lookup(m.svma(a))
                .map(|h| (h.name.to_string(), a - h.offset))
        };
        if std::ptr::eq(here, there)
            && name(here, pc).is_some()
            && name(here, pc) == name(there, lr - 4)
        {
            return None;
        }
    }
    // x30 stays as it is in the caller's file: the caller's own frame record holds its lr.
    Some(rf.clone())
}

/// Last resort: the first word above sp that points just after a call instruction in a
/// known module. Bounded to 4 KiB of stack.
fn scan_step(
    arch: Arch,
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    modules: &ModuleMap,
    sp: u64,
    stack: (u64, u64),
) -> Option<RegFile> {
    let end = stack.1.min(sp.saturating_add(4096));
    let mut slot = sp;
    while slot + 8 <= end {
        if let Ok(w) = mem.read_u64(slot)
            && follows_call(arch, modules, w)
        {
            let mut next = rf.clone();
            next.set(abi.ra, Some(w));
            next.set(abi.sp, Some(slot + 8));
            return Some(next);
        }
        slot += 8;
    }
    None
}

/// Whether the instruction before `addr` in its module (the bytes of the mapped file) is
/// a call.
fn follows_call(arch: Arch, modules: &ModuleMap, addr: u64) -> bool {
    let Some(m) = modules.find(addr.wrapping_sub(1)) else {
        return false;
    };
    let back = match arch {
        Arch::X86_64 => 7,
        Arch::Aarch64 => 4,
    };
    match m
        .binary
        .elf
        .bytes_at(m.svma(addr).wrapping_sub(back), back as usize)
    {
        Some(b) => ends_with_call(arch, b),
        None => false,
    }
}

/// Whether `before` (the 7 bytes before an x86-64 address, the 4 before an arm64 one) ends
/// with a call instruction.
fn ends_with_call(arch: Arch, before: &[u8]) -> bool {
    match arch {
        Arch::X86_64 => {
            let Ok(b) = <[u8; 7]>::try_from(before) else {
                return false;
            };
            let modrm_call = |at: usize, md: u8| {
                b[at] == 0xff && (b[at + 1] & 0x38) == 0x10 && (b[at + 1] >> 6) == md
            };
            b[2] == 0xe8                              // call rel32
                || modrm_call(5, 3)                   // call *%reg
                || modrm_call(4, 1)                   // call *disp8(%reg)
                || (b[1] == 0xff && b[2] == 0x15)     // call *disp32(%rip)
                || modrm_call(1, 2) // call *disp32(%reg)
        }
        Arch::Aarch64 => {
            let Ok(b) = <[u8; 4]>::try_from(before) else {
                return false;
            };
            let insn = u32::from_le_bytes(b);
            insn & 0xfc00_0000 == 0x9400_0000 // bl imm26
                || insn & 0xffff_fc1f == 0xd63f_0000 // blr xN
                || insn & 0xfeff_f800 == 0xd63f_0800 // blraa/blrab xN, xM (and *z forms)
        }
    }
}

fn at_restore_rt(modules: &ModuleMap, pc: u64) -> bool {
    let Some(m) = modules.find(pc) else {
        return false;
    };
    m.binary.elf.bytes_at(m.svma(pc), RESTORE_RT.len()) == Some(&RESTORE_RT[..])
}

/// The registers saved in the ucontext of an x86-64 signal frame whose trampoline runs at sp.
fn signal_frame(mem: &dyn Memory, sp: u64) -> Option<RegFile> {
    let mut rf = RegFile([None; 33]);
    for (i, reg) in GREGS.iter().enumerate() {
        rf.set(
            *reg,
            Some(mem.read_u64(sp + UC_MCONTEXT + 8 * i as u64).ok()?),
        );
    }
    Some(rf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryImage;
    use crate::unwind::modules::Module;
    use std::collections::BTreeMap;

    fn regs(arch: Arch, pairs: &[(&str, u64)]) -> Registers {
        Registers {
            arch,
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn frame_pointer_chain_on_aarch64() {
        // Three frames linked by x29 with no module to give CFI: pure fp unwinding.
        let mut mem = MemoryImage::new();
        let mut stack = vec![0u8; 0x100];
        let put =
            |s: &mut Vec<u8>, off: usize, v: u64| s[off..off + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut stack, 0x20, 0x7000_0040); // frame at +0x20: prev fp
        put(&mut stack, 0x28, 0x4000_1000); //                 lr
        put(&mut stack, 0x40, 0); //           frame at +0x40: end of chain
        put(&mut stack, 0x48, 0x4000_2000);
        mem.insert(0x7000_0000, stack);
        let r = regs(
            Arch::Aarch64,
            &[
                ("pc", 0x4000_0000),
                ("sp", 0x7000_0000),
                ("x29", 0x7000_0020),
                ("x30", 0x4000_0ff0),
            ],
        );
        let Unwound { frames, stop, .. } = unwind(
            &r,
            &mem,
            &ModuleMap::default(),
            (0x7000_0000, 0x7000_0100),
            &UnwindOptions {
                scan: false,
                ..Default::default()
            },
            &mut CfiScratch::default(),
        );
        let pcs: Vec<u64> = frames.iter().map(|f| f.pc).collect();
        assert_eq!(pcs, vec![0x4000_0000, 0x4000_1000, 0x4000_2000]);
        assert_eq!(frames[1].trust, FrameTrust::Fp);
        assert!(stop.is_some(), "the chain ends at fp 0: {stop:?}");
    }

    /// A minimal ELF (header, one R+X PT_LOAD of the whole file at vaddr 0) whose bytes
    /// from offset 0x100 on are `code`: enough for the unwinder to check instructions.
    fn synthetic_module(machine: u16, base: u64, code: &[(u64, u32)]) -> Module {
        let mut f = vec![0u8; 0x400];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1;
        let put16 =
            |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |f: &mut Vec<u8>, at: usize, v: u64| f[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put16(&mut f, 16, 3); // ET_DYN
        put16(&mut f, 18, machine);
        put32(&mut f, 20, 1);
        put64(&mut f, 32, 64); // e_phoff
        put16(&mut f, 52, 64); // e_ehsize
        put16(&mut f, 54, 56); // e_phentsize
        put16(&mut f, 56, 1); // e_phnum
        put32(&mut f, 64, 1); // PT_LOAD
        put32(&mut f, 68, 5); // R+X
        put64(&mut f, 64 + 32, 0x400); // p_filesz
        put64(&mut f, 64 + 40, 0x400); // p_memsz
        put64(&mut f, 64 + 48, 0x1000);
        for &(at, insn) in code {
            put32(&mut f, at as usize, insn);
        }
        let elf =
            crate::binary::elf::ElfFile::from_bytes(std::sync::Arc::new(f), "synthetic").unwrap();
        Module {
            start: base,
            end: base + 0x400,
            bias: base,
            path: "synthetic".into(),
            binary: std::sync::Arc::new(crate::binary::Binary::from_elf(elf)),
        }
    }

    const ARM_NOP: u32 = 0xd503_201f;
    const ARM_BL: u32 = 0x9400_0040; // bl +0x100
    const ARM_BLR_X8: u32 = 0xd63f_0100;
    const EM_AARCH64: u16 = 183;

    fn stack_image(start: u64, words: &[(u64, u64)], len: usize) -> MemoryImage {
        let mut bytes = vec![0u8; len];
        for &(off, v) in words {
            bytes[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
        }
        let mut mem = MemoryImage::new();
        mem.insert(start, bytes);
        mem
    }

    #[test]
    fn aarch64_leaf_returns_through_the_link_register() {
        // leaf at +0x200 (no frame record of its own), called by +0x100 (bl), whose
        // caller's call sits at +0x300. x29 still points at the caller's frame record.
        let base = 0x55_0000_0000;
        let modules = ModuleMap::from_modules(vec![synthetic_module(
            EM_AARCH64,
            base,
            &[
                (0x100, ARM_BL),
                (0x104, ARM_NOP),
                (0x300, ARM_BLR_X8),
                (0x304, ARM_NOP),
            ],
        )]);
        let sp = 0x7fff_0000;
        let mem = stack_image(sp, &[(0x40, 0), (0x48, base + 0x304)], 0x100);
        let r = regs(
            Arch::Aarch64,
            &[
                ("pc", base + 0x208),
                ("sp", sp),
                ("x29", sp + 0x40),
                ("x30", base + 0x104),
            ],
        );
        let u = unwind(
            &r,
            &mem,
            &modules,
            (sp, sp + 0x100),
            &UnwindOptions {
                max_frames: 16,
                scan: false,
            },
            &mut CfiScratch::default(),
        );
        let got: Vec<(u64, FrameTrust)> = u.frames.iter().map(|f| (f.pc - base, f.trust)).collect();
        assert_eq!(
            got,
            vec![
                (0x208, FrameTrust::Context),
                (0x104, FrameTrust::Fp),
                (0x304, FrameTrust::Fp)
            ]
        );
        assert_eq!(u.exact_pc, vec![true, false, false]);
        assert!(u.stop.is_some_and(|s| s.contains("frame pointer")));

        // When the frame record already holds x30, the function saved it: no extra frame.
        let r2 = regs(
            Arch::Aarch64,
            &[
                ("pc", base + 0x208),
                ("sp", sp),
                ("x29", sp + 0x40),
                ("x30", base + 0x304),
            ],
        );
        let u = unwind(
            &r2,
            &mem,
            &modules,
            (sp, sp + 0x100),
            &UnwindOptions {
                max_frames: 16,
                scan: false,
            },
            &mut CfiScratch::default(),
        );
        assert_eq!(
            u.frames.iter().map(|f| f.pc - base).collect::<Vec<_>>(),
            vec![0x208, 0x304]
        );
    }

    #[test]
    fn aarch64_scan_takes_only_words_after_a_call() {
        let base = 0x55_0000_0000;
        let modules = ModuleMap::from_modules(vec![synthetic_module(
            EM_AARCH64,
            base,
            &[(0x1ec, ARM_NOP), (0x300, ARM_BL)],
        )]);
        let sp = 0x7fff_0000;
        // Not code; code not after a call; then a real return address.
        let mem = stack_image(
            sp,
            &[(0, 0x1234_5678), (8, base + 0x1f0), (16, base + 0x304)],
            0x100,
        );
        let r = regs(
            Arch::Aarch64,
            &[("pc", base + 0x200), ("sp", sp), ("x29", 0x10), ("x30", 0)],
        );
        let u = unwind(
            &r,
            &mem,
            &modules,
            (sp, sp + 0x100),
            &UnwindOptions::default(),
            &mut CfiScratch::default(),
        );
        assert_eq!(u.frames.len(), 2, "{:?}", u.frames);
        assert_eq!(
            (u.frames[1].pc, u.frames[1].sp, u.frames[1].trust),
            (base + 0x304, sp + 24, FrameTrust::Scan)
        );
        let no_scan = unwind(
            &r,
            &mem,
            &modules,
            (sp, sp + 0x100),
            &UnwindOptions {
                scan: false,
                ..Default::default()
            },
            &mut CfiScratch::default(),
        );
        assert_eq!(no_scan.frames.len(), 1);
        assert!(no_scan.stop.is_some());
    }

    #[test]
    fn call_instructions_are_recognised() {
        let x = |b: &[u8]| ends_with_call(Arch::X86_64, b);
        assert!(x(&[0x90, 0x90, 0xe8, 1, 2, 3, 4])); // call rel32
        assert!(x(&[0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xd0])); // call *%rax
        assert!(x(&[0x90, 0xff, 0x15, 1, 2, 3, 4])); // call *disp32(%rip)
        assert!(x(&[0x90, 0x90, 0x90, 0x90, 0xff, 0x50, 0x08])); // call *8(%rax)
        assert!(!x(&[0x90; 7]));
        assert!(!x(&[0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xe0])); // jmp *%rax
        assert!(!x(&[0xe8, 0, 0])); // too short
        let a = |i: u32| ends_with_call(Arch::Aarch64, &i.to_le_bytes());
        assert!(a(ARM_BL) && a(ARM_BLR_X8) && a(0xd73f_0811) && a(0xd63f_081f));
        assert!(!a(ARM_NOP) && !a(0x1400_0040) && !a(0xd61f_0100)); // b, br
    }

    fn regfile(pairs: &[(u16, u64)]) -> RegFile {
        let mut rf = RegFile([None; 33]);
        for &(r, v) in pairs {
            rf.set(r, Some(v));
        }
        rf
    }

    #[test]
    fn cfi_rows_are_applied_x86_64() {
        // After `push %rbp; mov %rsp,%rbp`: CFA = rbp + 16, rip at CFA - 8, rbp at CFA - 16;
        // rbx saved at CFA - 24, r12 is in r13 (a register rule), r14 is undefined.
        let sp = 0x7fff_0000;
        let mem = stack_image(
            sp,
            &[(0x28, 0x7fff_00a0), (0x30, 0x40_1000), (0x20, 0xb0b)],
            0x100,
        );
        let rf = regfile(&[
            (7, sp),
            (6, sp + 0x28),
            (3, 1),
            (13, 0x1313),
            (14, 0x1414),
            (16, 0x40_0500),
        ]);
        let rule = UnwindRule {
            cfa: CfaRule::RegisterOffset(6, 16),
            regs: vec![
                (16, RegRule::Offset(-8)),
                (6, RegRule::Offset(-16)),
                (3, RegRule::Offset(-24)),
                (12, RegRule::Register(13)),
                (14, RegRule::Undefined),
                (15, RegRule::Constant(7)),
            ],
        };
        let Ok(next) = apply_rule(Arch::X86_64, &X86_64, &rf, &mem, &rule) else {
            panic!("rule applies");
        };
        assert_eq!(next.get(7), Some(sp + 0x38), "sp = CFA");
        assert_eq!(next.get(16), Some(0x40_1000));
        assert_eq!(next.get(6), Some(0x7fff_00a0));
        assert_eq!(next.get(3), Some(0xb0b));
        assert_eq!(next.get(12), Some(0x1313));
        assert_eq!(
            next.get(13),
            Some(0x1313),
            "callee-saved, untouched: same value"
        );
        assert_eq!(next.get(14), None);
        assert_eq!(next.get(15), Some(7));

        // The return address outside the copy: a stop with a reason, not a guess.
        let short = stack_image(sp, &[], 0x10);
        assert!(
            matches!(apply_rule(Arch::X86_64, &X86_64, &rf, &short, &rule), Err(Stop::Because(w)) if w.contains("not in the captured stack"))
        );
        // Undefined return address: the outermost frame.
        let last = UnwindRule {
            cfa: CfaRule::RegisterOffset(7, 8),
            regs: vec![(16, RegRule::Undefined)],
        };
        assert!(matches!(
            apply_rule(Arch::X86_64, &X86_64, &rf, &mem, &last),
            Err(Stop::Outermost)
        ));
        // CFA on a register we do not know.
        let unknown = UnwindRule {
            cfa: CfaRule::RegisterOffset(9, 8),
            regs: vec![],
        };
        assert!(matches!(
            apply_rule(Arch::X86_64, &X86_64, &rf, &mem, &unknown),
            Err(Stop::Because(_))
        ));
    }

    #[test]
    fn cfi_expressions_are_applied() {
        // A PLT entry after its push (rip & 15 = 0xb): CFA = rsp + 16; rip at CFA - 8.
        let sp = 0x7fff_0000;
        let mem = stack_image(sp, &[(8, 0x40_2222), (0x10, 0x5555)], 0x100);
        let rf = regfile(&[(7, sp), (16, 0x40_101b)]);
        let plt = vec![
            0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22,
        ];
        let rule = UnwindRule {
            cfa: CfaRule::Expression(plt),
            regs: vec![
                (16, RegRule::Offset(-8)),
                // rbx at [CFA + 0] by expression, r12 = CFA + 1 by value expression.
                (3, RegRule::Expression(vec![0x23, 0x00])),
                (12, RegRule::ValExpression(vec![0x23, 0x01])),
            ],
        };
        let Ok(next) = apply_rule(Arch::X86_64, &X86_64, &rf, &mem, &rule) else {
            panic!("expression rule applies");
        };
        assert_eq!(next.get(7), Some(sp + 16));
        assert_eq!(next.get(16), Some(0x40_2222));
        assert_eq!(next.get(3), Some(0x5555));
        assert_eq!(next.get(12), Some(sp + 17));
        let broken = UnwindRule {
            cfa: CfaRule::Expression(vec![0x77]),
            regs: vec![],
        };
        assert!(
            matches!(apply_rule(Arch::X86_64, &X86_64, &rf, &mem, &broken), Err(Stop::Because(w)) if w.contains("CFA expression"))
        );
    }

    #[test]
    fn cfi_rows_are_applied_aarch64() {
        // `stp x29, x30, [sp, #-32]!; mov x29, sp`: CFA = x29 + 32, x29 at CFA - 32, x30 at
        // CFA - 24. The return address is the restored x30.
        let sp = 0x7fff_0000;
        let mem = stack_image(sp, &[(0, 0x7fff_0080), (8, 0x40_3004)], 0x100);
        let rf = regfile(&[(31, sp), (29, sp), (30, 0x40_0010), (19, 0x19)]);
        let rule = UnwindRule {
            cfa: CfaRule::RegisterOffset(29, 32),
            regs: vec![(29, RegRule::Offset(-32)), (30, RegRule::Offset(-24))],
        };
        let Ok(next) = apply_rule(Arch::Aarch64, &AARCH64, &rf, &mem, &rule) else {
            panic!("rule applies");
        };
        assert_eq!(next.get(31), Some(sp + 32));
        assert_eq!(next.get(30), Some(0x40_3004));
        assert_eq!(next.get(29), Some(0x7fff_0080));
        assert_eq!(next.get(19), Some(0x19));
        // A leaf with no rule for x30: the link register is the return address.
        let leaf = UnwindRule {
            cfa: CfaRule::RegisterOffset(31, 0),
            regs: vec![],
        };
        let Ok(next) = apply_rule(Arch::Aarch64, &AARCH64, &rf, &mem, &leaf) else {
            panic!("leaf rule applies");
        };
        assert_eq!((next.get(30), next.get(31)), (Some(0x40_0010), Some(sp)));
    }

    #[test]
    fn x86_64_signal_frame_restores_the_interrupted_registers() {
        let mut mem = MemoryImage::new();
        let sp = 0x7fff_0000u64;
        let mut uc = vec![0u8; 40 + 17 * 8];
        let set = |uc: &mut Vec<u8>, i: usize, v: u64| {
            uc[40 + 8 * i..48 + 8 * i].copy_from_slice(&v.to_le_bytes())
        };
        set(&mut uc, 15, 0x7fff_8000); // rsp
        set(&mut uc, 16, 0x40_1234); //   rip
        set(&mut uc, 10, 0x7fff_8100); // rbp
        mem.insert(sp, uc);
        let rf = signal_frame(&mem, sp).unwrap();
        assert_eq!(rf.get(16), Some(0x40_1234));
        assert_eq!(rf.get(7), Some(0x7fff_8000));
        assert_eq!(rf.get(6), Some(0x7fff_8100));
        assert!(signal_frame(&mem, sp + 0x1000).is_none());
    }
}
