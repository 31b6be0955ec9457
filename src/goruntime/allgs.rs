//! Finding `runtime.allgs` (the slice of every goroutine) and `runtime.allglen` in a binary
//! with no symbols.
//!
//! Nothing in moduledata, g or m points at allgs, so a stripped binary only gives it away
//! through the code that uses it. `runtime.allgadd` (its name survives in pclntab; the body
//! is the same from Go 1.19 to 1.25) appends to allgs: it loads the slice's pointer, length
//! and capacity — three words at A, A+8, A+16 — and stores the new length to allglen. So the
//! addresses its instructions reference, decoded properly (x86-64 RIP-relative operands,
//! arm64 ADRP + ADD/LDR/STR pairs), contain a run A, A+8, A+16 in writable data: A is allgs;
//! the one other data address written with the length is allglen. The caller then checks the
//! candidate against the target's memory (the slice must hold plausible g pointers).

use crate::model::Arch;
use std::collections::BTreeSet;

/// Where the runtime keeps its goroutine list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllgsAddrs {
    /// Address of the `[]*g` slice header {ptr, len, cap}.
    pub allgs: u64,
    /// Address of `allglen` (a uintptr), when it could be told apart.
    pub allglen: Option<u64>,
}

/// Every data address the code of a function refers to, in order of appearance.
pub fn referenced_addresses(arch: Arch, code: &[u8], code_addr: u64) -> Vec<u64> {
    match arch {
        Arch::X86_64 => x86_64_refs(code, code_addr),
        Arch::Aarch64 => aarch64_refs(code, code_addr),
    }
}

fn x86_64_refs(code: &[u8], code_addr: u64) -> Vec<u64> {
    use iced_x86::{Decoder, DecoderOptions, OpKind, Register};
    let mut out = Vec::new();
    let mut dec = Decoder::with_ip(64, code, code_addr, DecoderOptions::NONE);
    while dec.can_decode() {
        let ins = dec.decode();
        if ins.is_invalid() {
            continue;
        }
        let rip_relative = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
            && ins.memory_base() == Register::RIP;
        if rip_relative {
            out.push(ins.ip_rel_memory_address());
        }
    }
    out
}

/// ADRP Xd, page; then ADD Xd, Xd, #lo or LDR/STR Xt, [Xd, #lo] within a few instructions.
fn aarch64_refs(code: &[u8], code_addr: u64) -> Vec<u64> {
    let words: Vec<u32> = code
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut out = Vec::new();
    for (i, &w) in words.iter().enumerate() {
        // ADRP: 1 immlo(2) 10000 immhi(19) Rd(5)
        if w & 0x9f00_0000 != 0x9000_0000 {
            continue;
        }
        let rd = w & 0x1f;
        let immlo = ((w >> 29) & 3) as i64;
        let immhi = ((w >> 5) & 0x7ffff) as i64;
        let mut imm = (immhi << 2) | immlo;
        if imm & (1 << 20) != 0 {
            imm -= 1 << 21; // sign-extend 21 bits
        }
        let pc = code_addr + 4 * i as u64;
        let page = ((pc & !0xfff) as i64).wrapping_add(imm << 12) as u64;
        for &next in words.iter().skip(i + 1).take(4) {
            let rn = (next >> 5) & 0x1f;
            if rn != rd {
                continue;
            }
            // ADD (immediate, 64-bit): 1 00 100010 sh imm12 Rn Rd
            if next & 0xff80_0000 == 0x9100_0000 {
                let imm12 = ((next >> 10) & 0xfff) as u64;
                let shift = if (next >> 22) & 1 == 1 { 12 } else { 0 };
                out.push(page + (imm12 << shift));
                break;
            }
            // LDR/STR (immediate, unsigned offset): size 111 0 01 opc imm12 Rn Rt
            if next & 0x3b00_0000 == 0x3900_0000 {
                let size = next >> 30;
                let imm12 = ((next >> 10) & 0xfff) as u64;
                out.push(page + (imm12 << size));
                break;
            }
        }
    }
    out
}

/// Picks allgs (and allglen) from the addresses `runtime.allgadd` references. `is_data`
/// tells whether an address lies in the binary's writable data (.data, .bss, .noptrbss).
pub fn from_allgadd_refs(refs: &[u64], is_data: impl Fn(u64) -> bool) -> Option<AllgsAddrs> {
    let set: BTreeSet<u64> = refs.iter().copied().filter(|a| is_data(*a)).collect();
    let allgs = set
        .iter()
        .copied()
        .find(|a| set.contains(&(a + 8)) && set.contains(&(a + 16)))
        .or_else(|| {
            // The compiler may address the pointer word through the length's base: accept
            // A+8 and A+16 both referenced.
            set.iter()
                .copied()
                .find(|a| set.contains(&(a + 8)) && !set.contains(&(a.wrapping_sub(8))))
                .map(|a| a - 8)
        })?;
    // allglen: allgadd references allglock twice (lock, unlock), allgptr and the write
    // barrier flag several times, and allglen once (the atomic store of the new length).
    let mut counts: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    for a in refs
        .iter()
        .copied()
        .filter(|a| is_data(*a) && !(allgs..allgs + 24).contains(a))
    {
        *counts.entry(a).or_default() += 1;
    }
    let once: Vec<u64> = counts
        .iter()
        .filter(|(_, n)| **n == 1)
        .map(|(a, _)| *a)
        .collect();
    let allglen = if once.len() == 1 { Some(once[0]) } else { None };
    Some(AllgsAddrs { allgs, allglen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rip_relative_loads() {
        // mov rcx, [rip+0x10] ; mov [rip+0x20], rax ; lea rdx, [rip-0x8] ; ret
        let code = [
            0x48, 0x8b, 0x0d, 0x10, 0, 0, 0, //
            0x48, 0x89, 0x05, 0x20, 0, 0, 0, //
            0x48, 0x8d, 0x15, 0xf8, 0xff, 0xff, 0xff, //
            0xc3,
        ];
        let refs = referenced_addresses(Arch::X86_64, &code, 0x1000);
        assert_eq!(
            refs,
            vec![0x1000 + 7 + 0x10, 0x1000 + 14 + 0x20, 0x1000 + 21 - 8]
        );
    }

    #[test]
    fn decodes_arm64_adrp_pairs() {
        // at 0x10000: adrp x1, #+0x2000 (page 0x12000); ldr x2, [x1, #0x18]
        let adrp: u32 = 0x9000_0000 | (2 << 5) | 1; // immhi=2 -> imm=8 pages? immhi<<2|immlo
        let ldr: u32 = 0xf940_0000 | (3 << 10) | (1 << 5) | 2; // imm12=3, scaled by 8
        let mut code = Vec::new();
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&ldr.to_le_bytes());
        let refs = referenced_addresses(Arch::Aarch64, &code, 0x10000);
        // imm = (immhi << 2) | immlo = 8 pages
        assert_eq!(refs, vec![0x10000 + 8 * 0x1000 + 0x18]);
    }

    #[test]
    fn picks_the_slice_triple_and_the_length_word() {
        // The shape of go1.19's allgadd: allglock, the slice words, allgptr (twice), the
        // write-barrier flag (twice), allglen once, allglock again.
        let refs = [
            0x5000, 0x6008, 0x6000, 0x6010, 0x7000, 0x6008, 0x7100, 0x7000, 0x7100, 0x6100, 0x5000,
        ];
        let a = from_allgadd_refs(&refs, |x| (0x5000..0x8000).contains(&x)).unwrap();
        assert_eq!(a.allgs, 0x6000);
        assert_eq!(a.allglen, Some(0x6100));
        assert!(from_allgadd_refs(&[0x5000, 0x9000], |_| true).is_none());
    }
}
