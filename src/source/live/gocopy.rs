//! Copying a Go program's runtime state during the freeze: the goroutine list, every g, the
//! live part of every goroutine stack, and the m's that run them. Reads are batched
//! (process_vm_readv with up to 1024 ranges a call) and bounded; walking the copy happens
//! after the resume, over the MemoryImage.

use super::ptrace;
use crate::goruntime::goroutines::{GOffsets, RawG, read_allgs};
use crate::memory::MemoryImage;
use std::collections::BTreeSet;
use std::time::Instant;

/// What to copy from one Go process; made before the freeze from its binary.
#[derive(Debug, Clone)]
pub struct GoCopyPlan {
    /// Runtime address of the `runtime.allgs` slice header.
    pub allgs: u64,
    pub offsets: GOffsets,
    /// Number of wait reasons of this release (for the plausibility checks).
    pub wait_reasons: usize,
    pub max_goroutines: usize,
    pub max_stack_per_goroutine: usize,
}

/// How the copy went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoCopyStats {
    /// Goroutines in allgs (dead ones included).
    pub listed: usize,
    /// Live goroutines whose g and stack were copied.
    pub copied: usize,
    pub bytes: usize,
    pub micros: u64,
    pub error: Option<String>,
}

pub fn copy_go(pid: i32, plan: &GoCopyPlan, image: &mut MemoryImage) -> GoCopyStats {
    let started = Instant::now();
    let mut stats = GoCopyStats::default();
    let finish = |mut s: GoCopyStats| {
        s.micros = started.elapsed().as_micros() as u64;
        s
    };
    // The slice header, then the array of g pointers.
    let hdr = ptrace::read_memory(pid, plan.allgs, 24);
    stats.bytes += hdr.len();
    if hdr.len() < 24 {
        stats.error = Some(format!("allgs at {:#x} is unreadable", plan.allgs));
        return finish(stats);
    }
    image.insert(plan.allgs, hdr.clone());
    let word = |i: usize| u64::from_le_bytes(hdr[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (ptr, len) = (word(0), word(1) as usize);
    if len > plan.max_goroutines {
        stats.error = Some(format!(
            "{len} goroutines: more than the limit of {}; none copied",
            plan.max_goroutines
        ));
        return finish(stats);
    }
    let arr = ptrace::read_memory(pid, ptr, len * 8);
    stats.bytes += arr.len();
    image.insert(ptr, arr);
    let gs = match read_allgs(image, plan.allgs, plan.max_goroutines) {
        Ok(gs) => gs,
        Err(e) => {
            stats.error = Some(e.to_string());
            return finish(stats);
        }
    };
    stats.listed = gs.len();

    // Every g, in as few calls as possible.
    let g_size = plan.offsets.g_size as usize;
    let ranges: Vec<(u64, usize)> = gs.iter().map(|&g| (g, g_size)).collect();
    for (&(addr, _), bytes) in ranges.iter().zip(ptrace::read_many(pid, &ranges)) {
        stats.bytes += bytes.len();
        image.insert(addr, bytes);
    }

    // The live part of each live goroutine's stack, and the m's that run goroutines.
    let mut stacks = Vec::new();
    let mut ms = BTreeSet::new();
    for &addr in &gs {
        let Ok(g) = RawG::read(image, addr, &plan.offsets) else {
            continue;
        };
        if g.is_dead() || g.check(plan.wait_reasons).is_err() {
            continue;
        }
        stats.copied += 1;
        if g.m != 0 {
            ms.insert(g.m);
        }
        if g.lockedm != 0 {
            ms.insert(g.lockedm);
        }
        let sp = g.saved_sp();
        if sp >= g.stack_lo && sp < g.stack_hi {
            let len = ((g.stack_hi - sp) as usize).min(plan.max_stack_per_goroutine);
            stacks.push((sp, len));
        } else if g.stack_lo < g.stack_hi {
            // Running on another stack (g0, a signal stack): take the top of its own.
            let len = ((g.stack_hi - g.stack_lo) as usize).min(plan.max_stack_per_goroutine);
            stacks.push((g.stack_hi - len as u64, len));
        }
    }
    let m_ranges: Vec<(u64, usize)> = ms
        .into_iter()
        .map(|m| (m, plan.offsets.m_size as usize))
        .collect();
    stacks.extend(m_ranges);
    for (&(addr, _), bytes) in stacks.iter().zip(ptrace::read_many(pid, &stacks)) {
        stats.bytes += bytes.len();
        image.insert(addr, bytes);
    }
    finish(stats)
}
