//! Native unwinding over a captured stack: CFI first, frame pointers next, a cautious stack
//! scan last; each frame says which found it. x86-64 signal frames (`__restore_rt`) are
//! stepped through using the saved ucontext, so crash stacks reach the interrupted code.

use super::modules::ModuleMap;
use crate::binary::cfi::{CfiScratch, RegRule};
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
    let mut frames = vec![Frame::bare(pc, sp, FrameTrust::Context)];
    // The innermost frame and a frame interrupted by a signal sit at their own pc; every
    // other pc is a return address, whose call lies at pc - 1.
    let mut exact_pc = true;
    loop {
        if frames.len() >= opts.max_frames {
            return (frames, Some(format!("frame limit ({})", opts.max_frames)));
        }
        if regs.arch == Arch::X86_64 && at_restore_rt(modules, pc) {
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
        .unwrap_or_else(|| fp_step(abi, &rf, mem, sp, stack).map(|rf| (rf, FrameTrust::Fp)));
        let step = match step {
            Ok(s) => Ok(s),
            // Scan only where unwinding failed, never past a frame that says it is the last.
            Err(Stop::Because(e)) if opts.scan => scan_step(abi, &rf, mem, modules, sp, stack)
                .ok_or(Stop::Because(e))
                .map(|rf| (rf, FrameTrust::Scan)),
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
        if nsp <= sp && trust != FrameTrust::Cfi {
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
    let Some((cfa_reg, off)) = rule.cfa else {
        return Some(Err(Stop::Because("CFA is a DWARF expression".into())));
    };
    let Some(base) = rf.get(cfa_reg) else {
        return Some(Err(Stop::Because(format!(
            "CFA register {cfa_reg} unknown"
        ))));
    };
    let cfa = base.wrapping_add(off as u64);
    let mut next = rf.clone();
    // x86-64's return-address column has no value of its own; on arm64 it is x30.
    if arch == Arch::X86_64 {
        next.set(abi.ra, None);
    }
    for (reg, r) in &rule.regs {
        let v = match r {
            RegRule::Undefined => {
                if *reg == abi.ra {
                    return Some(Err(Stop::Outermost));
                }
                None
            }
            RegRule::SameValue => rf.get(*reg),
            RegRule::Offset(n) => mem.read_u64(cfa.wrapping_add(*n as u64)).ok(),
            RegRule::ValOffset(n) => Some(cfa.wrapping_add(*n as u64)),
            RegRule::Register(r2) => rf.get(*r2),
            RegRule::Unsupported => None,
        };
        next.set(*reg, v);
    }
    next.set(abi.sp, Some(cfa));
    if next.get(abi.ra).is_none() {
        return Some(Err(Stop::Because(format!(
            "return address not in the captured stack (CFA {cfa:#x})"
        ))));
    }
    Some(Ok(next))
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
    if f.flag() & crate::binary::go::pclntab::FLAG_TOP_FRAME != 0 {
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

/// Last resort: the first word above sp that points just after a call instruction in a
/// known module. Bounded to 4 KiB of stack.
fn scan_step(
    abi: &Abi,
    rf: &RegFile,
    mem: &dyn Memory,
    modules: &ModuleMap,
    sp: u64,
    stack: (u64, u64),
) -> Option<RegFile> {
    let end = stack.1.min(sp + 4096);
    let mut slot = sp;
    while slot + 8 <= end {
        if let Ok(w) = mem.read_u64(slot)
            && follows_call(modules, w)
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

/// Whether the instruction before `addr` in its module is a call (x86-64 encodings).
fn follows_call(modules: &ModuleMap, addr: u64) -> bool {
    let Some(m) = modules.find(addr) else {
        return false;
    };
    let Some(b) = m.binary.elf.bytes_at(m.svma(addr).wrapping_sub(7), 7) else {
        return false;
    };
    let modrm_call =
        |at: usize, md: u8| b[at] == 0xff && (b[at + 1] & 0x38) == 0x10 && (b[at + 1] >> 6) == md;
    b[2] == 0xe8                                        // call rel32
        || modrm_call(5, 3)                             // call *%reg
        || modrm_call(4, 1)                             // call *disp8(%reg)
        || (b[1] == 0xff && b[2] == 0x15)               // call *disp32(%rip)
        || modrm_call(1, 2) // call *disp32(%reg)
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
