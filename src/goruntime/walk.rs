//! After the resume: turn the copied runtime structures into goroutines with states, wait
//! reasons, threads, stacks and creators.

use super::goroutines::{G_RUNNING, G_SCAN, G_SYSCALL, RawG, read_allgs, status_name};
use super::target::GoTarget;
use crate::binary::cfi::CfiScratch;
use crate::memory::Memory;
use crate::model::{Arch, Frame, FrameTrust, GoFault, Goroutine, Registers, Thread};
use crate::unwind::{ModuleMap, UnwindOptions, native, symbolize_frames};
use std::collections::BTreeMap;

/// Most goroutines wedge reads from one process.
pub const MAX_GOROUTINES: usize = 1_000_000;

pub struct Walked {
    pub goroutines: Vec<Goroutine>,
    pub note: Option<String>,
}

/// Reads every goroutine of the process from `mem`. `threads` are the process's captured
/// threads (a running goroutine's stack is its thread's); `now_ns` is CLOCK_MONOTONIC at
/// the capture (the runtime's nanotime), for how long goroutines have waited.
pub fn goroutines(
    target: &GoTarget,
    mem: &dyn Memory,
    modules: &ModuleMap,
    threads: &[Thread],
    arch: Arch,
    now_ns: Option<u64>,
) -> Walked {
    let list = match read_allgs(mem, target.allgs, MAX_GOROUTINES) {
        Ok(l) => l,
        Err(e) => {
            return Walked {
                goroutines: Vec::new(),
                note: Some(format!("goroutine list unreadable: {e}")),
            };
        }
    };
    let o = &target.offsets;
    let reasons = target.layout.wait_reasons.len();
    let mut out = Vec::new();
    let mut rejected = 0usize;
    let mut scratch = CfiScratch::default();
    let mut procids: BTreeMap<u64, Option<i32>> = BTreeMap::new();
    // m.procid is gettid() as the thread saw it: inside a container that is the id in the
    // container's pid namespace; map it to the host tid through the threads' NSpid.
    let host_tid = |procid: i32| -> i32 {
        threads
            .iter()
            .find(|t| t.nstid == Some(procid))
            .or_else(|| {
                threads
                    .iter()
                    .find(|t| t.tid == procid && t.nstid.is_none())
            })
            .map(|t| t.tid)
            .unwrap_or(procid)
    };
    let mut procid = |m: u64| -> Option<i32> {
        if m == 0 {
            return None;
        }
        *procids.entry(m).or_insert_with(|| {
            mem.read_u64(m + o.m_procid)
                .ok()
                .map(|v| v as i32)
                .filter(|t| *t > 0)
                .map(host_tid)
        })
    };
    for &addr in &list {
        let Ok(g) = RawG::read(mem, addr, o) else {
            rejected += 1;
            continue;
        };
        if g.is_dead() {
            continue;
        }
        if g.check(reasons).is_err() {
            rejected += 1;
            continue;
        }
        let status = g.status & !G_SCAN;
        let thread = if status == G_RUNNING || status == G_SYSCALL {
            procid(g.m)
        } else {
            None
        };
        let locked = g.lockedm != 0;
        let (mut frames, unwind_stop) = stack(
            &g,
            status,
            thread,
            threads,
            mem,
            modules,
            arch,
            &mut scratch,
        );
        if register_abi_amd64(&target.version, arch) {
            fill_arg0_slots(&mut frames, mem);
        }
        out.push(Goroutine {
            id: g.goid as i64,
            status: status_name(g.status).to_string(),
            wait_reason: (status == super::goroutines::G_WAITING)
                .then(|| target.layout.wait_reason(g.waitreason).map(String::from))
                .flatten(),
            waited_ns: match (now_ns, g.waitsince) {
                (Some(now), since) if since > 0 && (since as u64) < now => Some(now - since as u64),
                _ => None,
            },
            thread: thread.or_else(|| if locked { procid(g.lockedm) } else { None }),
            locked_to_thread: locked,
            system: is_system(modules, g.startpc),
            frames,
            // Like the runtime's traceback, no creator for the main goroutine.
            created_by: if g.goid == 1 {
                None
            } else {
                created_by(modules, g.gopc)
            },
            parent_id: (g.parent_goid > 0).then_some(g.parent_goid as i64),
            g_addr: addr,
            unwind_stop,
            fault: (g.sig != 0 && g.sigpc != 0).then_some(GoFault {
                signo: g.sig,
                addr: g.sigcode1,
                pc: g.sigpc,
            }),
        });
    }
    out.sort_by_key(|g| g.id);
    let note = (rejected > 0).then(|| {
        format!(
            "{rejected} of {} entries of allgs failed the plausibility checks and were skipped",
            list.len()
        )
    });
    if !list.is_empty() && rejected * 2 > list.len() {
        return Walked {
            goroutines: Vec::new(),
            note: Some(format!(
                "most goroutine records ({rejected} of {}) are implausible: the runtime layout for {} does not fit this binary; goroutines not shown",
                list.len(),
                target.version
            )),
        };
    }
    Walked {
        goroutines: out,
        note,
    }
}

#[allow(clippy::too_many_arguments)]
fn stack(
    g: &RawG,
    status: u32,
    thread: Option<i32>,
    threads: &[Thread],
    mem: &dyn Memory,
    modules: &ModuleMap,
    arch: Arch,
    scratch: &mut CfiScratch,
) -> (Vec<Frame>, Option<String>) {
    // A running goroutine's stack is its thread's: take the thread's frames.
    if status == G_RUNNING {
        let th = thread.and_then(|t| threads.iter().find(|th| th.tid == t));
        return match th {
            Some(th) if !th.frames.is_empty() => (th.frames.clone(), th.unwind_stop.clone()),
            _ => (
                Vec::new(),
                Some("running, and its thread's stack was not captured".into()),
            ),
        };
    }
    // In a syscall on a thread whose stack we unwound: the thread shows the exact place
    // (inside the syscall wrapper) and the same Go frames above it, when it runs on the
    // goroutine's own stack (not for cgo calls, which switch to the thread's stack).
    if status == G_SYSCALL
        && let Some(th) = thread.and_then(|t| threads.iter().find(|th| th.tid == t))
        && th
            .frames
            .iter()
            .any(|f| f.sp >= g.stack_lo && f.sp < g.stack_hi)
        && th
            .frames
            .last()
            .is_some_and(|f| f.function.as_deref() == Some("runtime.goexit"))
    {
        return (th.frames.clone(), th.unwind_stop.clone());
    }
    let (pc, sp, bp) = if status == G_SYSCALL && g.syscallsp != 0 {
        (g.syscallpc, g.syscallsp, g.syscallbp)
    } else {
        (g.sched_pc, g.sched_sp, g.sched_bp)
    };
    if pc == 0 || sp == 0 {
        return (Vec::new(), Some("no saved pc".into()));
    }
    let (pcn, spn, fpn) = arch.pc_sp_fp();
    let mut values = BTreeMap::new();
    values.insert(pcn.to_string(), pc);
    values.insert(spn.to_string(), sp);
    values.insert(fpn.to_string(), bp);
    if arch == Arch::Aarch64 {
        values.insert("x30".to_string(), g.sched_lr);
    }
    let regs = Registers { arch, values };
    let opts = UnwindOptions {
        scan: false,
        ..Default::default()
    };
    // A parked goroutine's saved pc is a return address (into gopark's caller chain).
    let mut u = native::unwind(
        &regs,
        mem,
        modules,
        (g.stack_lo, g.stack_hi),
        &opts,
        scratch,
    );
    if let Some(first) = u.exact_pc.first_mut() {
        *first = false;
    }
    for f in u.frames.iter_mut() {
        if f.trust == FrameTrust::Context {
            f.trust = FrameTrust::Pclntab;
        }
    }
    symbolize_frames(&mut u.frames, &u.exact_pc, modules);
    (u.frames, u.stop)
}

/// Go 1.17+ on amd64 passes arguments in registers and has the caller reserve a spill slot
/// for each at the callee's call-frame address (arm64 keeps its saved LR there: not read).
fn register_abi_amd64(version: &str, arch: Arch) -> bool {
    let minor = version
        .strip_prefix("go1.")
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse::<u32>().ok());
    arch == Arch::X86_64 && minor.is_some_and(|m| m >= 17)
}

/// Records the word at each Go frame's call-frame address (the next frame's sp, when that
/// frame was found by pclntab's frame sizes): the first argument's spill slot.
fn fill_arg0_slots(frames: &mut [Frame], mem: &dyn Memory) {
    for i in 0..frames.len().saturating_sub(1) {
        let next = &frames[i + 1];
        if next.trust != FrameTrust::Pclntab {
            continue;
        }
        let cfa = next.sp;
        frames[i].arg0_slot = mem.read_u64(cfa).ok();
    }
}

/// The `go` statement that created a goroutine: its function at gopc, file:line at gopc - 1.
fn created_by(modules: &ModuleMap, gopc: u64) -> Option<Frame> {
    if gopc == 0 {
        return None;
    }
    let mut f = vec![Frame::bare(gopc, 0, FrameTrust::Pclntab)];
    symbolize_frames(&mut f, &[false], modules);
    f.pop().filter(|f| f.function.is_some())
}

/// The runtime's own goroutines (GC workers, finalizers, …) start in package runtime;
/// runtime.main is the program's main goroutine.
fn is_system(modules: &ModuleMap, startpc: u64) -> bool {
    let mut f = vec![Frame::bare(startpc, 0, FrameTrust::Pclntab)];
    symbolize_frames(&mut f, &[true], modules);
    f[0].function
        .as_deref()
        .is_some_and(|n| n.starts_with("runtime.") && n != "runtime.main")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_slots_only_with_the_amd64_register_abi() {
        assert!(register_abi_amd64("go1.17", Arch::X86_64));
        assert!(register_abi_amd64("go1.19.8", Arch::X86_64));
        assert!(register_abi_amd64("go1.25rc1", Arch::X86_64));
        assert!(!register_abi_amd64("go1.16.15", Arch::X86_64));
        assert!(!register_abi_amd64("go1.21.0", Arch::Aarch64));
        assert!(!register_abi_amd64("devel +abc", Arch::X86_64));
    }
}
