//! Register sets as the kernel lays them out (`user_regs_struct` on x86-64, `user_pt_regs` on
//! arm64): the same words come from PTRACE_GETREGSET and from a core's NT_PRSTATUS note.

use crate::model::{Arch, Registers};
use std::collections::BTreeMap;

/// Field names of x86-64 `struct user_regs_struct`, in order.
pub const X86_64_NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// Number of 64-bit words in arm64 `struct user_pt_regs`: x0..x30, sp, pc, pstate.
pub const AARCH64_WORDS: usize = 34;

/// Number of 64-bit words in the register set of `arch`.
pub fn word_count(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => X86_64_NAMES.len(),
        Arch::Aarch64 => AARCH64_WORDS,
    }
}

/// Names the words of a raw register set; `None` if there are too few words.
pub fn from_words(arch: Arch, words: &[u64]) -> Option<Registers> {
    let n = word_count(arch);
    if words.len() < n {
        return None;
    }
    let mut values = BTreeMap::new();
    match arch {
        Arch::X86_64 => {
            for (name, v) in X86_64_NAMES.iter().zip(words) {
                values.insert((*name).to_string(), *v);
            }
        }
        Arch::Aarch64 => {
            for (i, v) in words[..31].iter().enumerate() {
                values.insert(format!("x{i}"), *v);
            }
            values.insert("sp".into(), words[31]);
            values.insert("pc".into(), words[32]);
            values.insert("pstate".into(), words[33]);
        }
    }
    Some(Registers { arch, values })
}

/// Decodes native-endian bytes (as in a core note) into words, then names them.
pub fn from_bytes(arch: Arch, bytes: &[u8]) -> Option<Registers> {
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    from_words(arch, &words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_x86_64_words_in_kernel_order() {
        let words: Vec<u64> = (0..27).collect();
        let r = from_words(Arch::X86_64, &words).unwrap();
        assert_eq!(r.get("r15"), Some(0));
        assert_eq!(r.get("orig_rax"), Some(15));
        assert_eq!(r.pc(), Some(16));
        assert_eq!(r.sp(), Some(19));
        assert_eq!(r.get("fs_base"), Some(21));
        assert!(from_words(Arch::X86_64, &words[..20]).is_none());
    }

    #[test]
    fn names_aarch64_words() {
        let words: Vec<u64> = (100..134).collect();
        let r = from_words(Arch::Aarch64, &words).unwrap();
        assert_eq!(r.get("x0"), Some(100));
        assert_eq!(r.fp(), Some(129));
        assert_eq!(r.get("x30"), Some(130));
        assert_eq!(r.sp(), Some(131));
        assert_eq!(r.pc(), Some(132));
    }
}
