//! Reading runtime.g structures: the goroutine list, each goroutine's state, and the
//! checks that keep a wrong layout or a wrong address from turning into garbage.
//!
//! Every value read is validated (see [`RawG::check`]): a goroutine that fails is dropped
//! and counted, and a list where most fail is rejected as a whole.

use super::layout::{LayoutError, RuntimeLayout};
use crate::memory::Memory;

/// Offsets of the fields wedge reads, resolved once from a [`RuntimeLayout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GOffsets {
    pub g_size: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub m: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_g: u64,
    pub sched_lr: u64,
    pub sched_bp: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    pub syscallbp: Option<u64>,
    pub atomicstatus: u64,
    pub goid: u64,
    pub waitsince: u64,
    pub waitreason: u64,
    pub lockedm: u64,
    pub sig: Option<u64>,
    pub sigcode0: u64,
    pub sigcode1: u64,
    pub sigpc: u64,
    pub parent_goid: Option<u64>,
    pub gopc: u64,
    pub startpc: u64,
    pub m_procid: u64,
    pub m_curg: u64,
    pub m_size: u64,
}

impl GOffsets {
    pub fn from_layout(l: &RuntimeLayout) -> Result<GOffsets, LayoutError> {
        let sched = l.offset("g", "sched")?;
        let stack = l.offset("g", "stack")?;
        Ok(GOffsets {
            g_size: l.size("g")?,
            stack_lo: stack + l.offset("stack", "lo")?,
            stack_hi: stack + l.offset("stack", "hi")?,
            m: l.offset("g", "m")?,
            sched_sp: sched + l.offset("gobuf", "sp")?,
            sched_pc: sched + l.offset("gobuf", "pc")?,
            sched_g: sched + l.offset("gobuf", "g")?,
            sched_lr: sched + l.offset("gobuf", "lr")?,
            sched_bp: sched + l.offset("gobuf", "bp")?,
            syscallsp: l.offset("g", "syscallsp")?,
            syscallpc: l.offset("g", "syscallpc")?,
            syscallbp: l.offset("g", "syscallbp").ok(),
            atomicstatus: l.offset("g", "atomicstatus")?,
            goid: l.offset("g", "goid")?,
            waitsince: l.offset("g", "waitsince")?,
            waitreason: l.offset("g", "waitreason")?,
            lockedm: l.offset("g", "lockedm")?,
            sig: l.offset("g", "sig").ok(),
            sigcode0: l.offset("g", "sigcode0")?,
            sigcode1: l.offset("g", "sigcode1")?,
            sigpc: l.offset("g", "sigpc")?,
            parent_goid: l.offset("g", "parentGoid").ok(),
            gopc: l.offset("g", "gopc")?,
            startpc: l.offset("g", "startpc")?,
            m_procid: l.offset("m", "procid")?,
            m_curg: l.offset("m", "curg")?,
            m_size: l.size("m")?,
        })
    }
}

/// Goroutine status values (runtime/runtime2.go), stable since Go 1.0 for these.
pub const G_IDLE: u32 = 0;
pub const G_RUNNABLE: u32 = 1;
pub const G_RUNNING: u32 = 2;
pub const G_SYSCALL: u32 = 3;
pub const G_WAITING: u32 = 4;
pub const G_DEAD: u32 = 6;
pub const G_COPYSTACK: u32 = 8;
pub const G_PREEMPTED: u32 = 9;
/// Set on top of a status while the GC scans the stack.
pub const G_SCAN: u32 = 0x1000;

pub fn status_name(status: u32) -> &'static str {
    match status & !G_SCAN {
        G_IDLE => "idle",
        G_RUNNABLE => "runnable",
        G_RUNNING => "running",
        G_SYSCALL => "syscall",
        G_WAITING => "waiting",
        G_DEAD => "dead",
        G_COPYSTACK => "copystack",
        G_PREEMPTED => "preempted",
        _ => "unknown",
    }
}

/// The fields of one runtime.g, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawG {
    pub addr: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub m: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_g: u64,
    pub sched_lr: u64,
    pub sched_bp: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    pub syscallbp: u64,
    pub status: u32,
    pub goid: u64,
    pub waitsince: i64,
    pub waitreason: u8,
    pub lockedm: u64,
    /// g.sig: the signal the runtime last turned into a panic on this goroutine (0: none).
    pub sig: u32,
    pub sigcode0: u64,
    pub sigcode1: u64,
    pub sigpc: u64,
    pub parent_goid: u64,
    pub gopc: u64,
    pub startpc: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GError {
    #[error("g at {0:#x} is not in the captured memory")]
    NotCaptured(u64),
    #[error("g at {addr:#x}: {what}")]
    Implausible { addr: u64, what: String },
}

impl RawG {
    /// Reads the g at `addr`.
    pub fn read(mem: &dyn Memory, addr: u64, o: &GOffsets) -> Result<RawG, GError> {
        let mut buf = vec![0u8; o.g_size as usize];
        mem.read(addr, &mut buf)
            .map_err(|_| GError::NotCaptured(addr))?;
        let u64_at = |off: u64| -> u64 {
            let i = off as usize;
            buf.get(i..i + 8)
                .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .unwrap_or(0)
        };
        let u32_at = |off: u64| -> u32 {
            let i = off as usize;
            buf.get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        Ok(RawG {
            addr,
            stack_lo: u64_at(o.stack_lo),
            stack_hi: u64_at(o.stack_hi),
            m: u64_at(o.m),
            sched_sp: u64_at(o.sched_sp),
            sched_pc: u64_at(o.sched_pc),
            sched_g: u64_at(o.sched_g),
            sched_lr: u64_at(o.sched_lr),
            sched_bp: u64_at(o.sched_bp),
            syscallsp: u64_at(o.syscallsp),
            syscallpc: u64_at(o.syscallpc),
            syscallbp: o.syscallbp.map(u64_at).unwrap_or(0),
            status: u32_at(o.atomicstatus),
            goid: u64_at(o.goid),
            waitsince: u64_at(o.waitsince) as i64,
            waitreason: buf.get(o.waitreason as usize).copied().unwrap_or(0),
            lockedm: u64_at(o.lockedm),
            sig: o.sig.map(u32_at).unwrap_or(0),
            sigcode0: u64_at(o.sigcode0),
            sigcode1: u64_at(o.sigcode1),
            sigpc: u64_at(o.sigpc),
            parent_goid: o.parent_goid.map(u64_at).unwrap_or(0),
            gopc: u64_at(o.gopc),
            startpc: u64_at(o.startpc),
        })
    }

    pub fn is_dead(&self) -> bool {
        self.status & !G_SCAN == G_DEAD
    }

    /// Plausibility checks for a live (not dead) goroutine; `reasons` is the number of
    /// known wait reasons.
    pub fn check(&self, reasons: usize) -> Result<(), GError> {
        let bad = |what: String| GError::Implausible {
            addr: self.addr,
            what,
        };
        let st = self.status & !G_SCAN;
        if st > G_PREEMPTED || st == 5 || st == 7 {
            return Err(bad(format!("status {:#x}", self.status)));
        }
        if self.goid == 0 || self.goid > (1 << 48) {
            return Err(bad(format!("goid {}", self.goid)));
        }
        let size = self.stack_hi.wrapping_sub(self.stack_lo);
        if self.stack_lo >= self.stack_hi
            || size < 2048
            || !size.is_power_of_two()
            || size > (1 << 30)
        {
            return Err(bad(format!(
                "stack [{:#x}, {:#x})",
                self.stack_lo, self.stack_hi
            )));
        }
        if st != G_RUNNING && self.sched_g != 0 && self.sched_g != self.addr {
            return Err(bad(format!(
                "sched.g {:#x} is not the g itself",
                self.sched_g
            )));
        }
        if st == G_WAITING && (self.waitreason as usize) >= reasons.max(1) {
            return Err(bad(format!("wait reason {}", self.waitreason)));
        }
        Ok(())
    }

    /// Where the goroutine's saved stack pointer lies: sched.sp, or syscallsp in a syscall.
    pub fn saved_sp(&self) -> u64 {
        if self.status & !G_SCAN == G_SYSCALL && self.syscallsp != 0 {
            self.syscallsp
        } else {
            self.sched_sp
        }
    }
}

/// Reads the `[]*g` slice header at `allgs` and returns its element pointers.
pub fn read_allgs(mem: &dyn Memory, allgs: u64, max: usize) -> Result<Vec<u64>, GError> {
    let ptr = mem
        .read_u64(allgs)
        .map_err(|_| GError::NotCaptured(allgs))?;
    let len = mem
        .read_u64(allgs + 8)
        .map_err(|_| GError::NotCaptured(allgs))?;
    let cap = mem
        .read_u64(allgs + 16)
        .map_err(|_| GError::NotCaptured(allgs))?;
    if len > cap || len as usize > max || (len > 0 && ptr == 0) {
        return Err(GError::Implausible {
            addr: allgs,
            what: format!("allgs {{ptr {ptr:#x}, len {len}, cap {cap}}}"),
        });
    }
    let mut bytes = vec![0u8; len as usize * 8];
    mem.read(ptr, &mut bytes)
        .map_err(|_| GError::NotCaptured(ptr))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryImage;
    use crate::model::Arch;

    fn offsets() -> (GOffsets, usize) {
        let l = RuntimeLayout::for_version("go1.21.0", Arch::X86_64).unwrap();
        (GOffsets::from_layout(&l).unwrap(), l.wait_reasons.len())
    }

    fn put(buf: &mut [u8], off: u64, v: u64) {
        buf[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn good_g(o: &GOffsets, addr: u64) -> Vec<u8> {
        let mut g = vec![0u8; o.g_size as usize];
        put(&mut g, o.stack_lo, 0xc000100000);
        put(&mut g, o.stack_hi, 0xc000102000);
        put(&mut g, o.sched_g, addr);
        put(&mut g, o.sched_sp, 0xc000101f00);
        put(&mut g, o.goid, 42);
        g[o.atomicstatus as usize] = G_WAITING as u8;
        g[o.waitreason as usize] = 14;
        g
    }

    #[test]
    fn reads_and_accepts_a_plausible_g() {
        let (o, reasons) = offsets();
        let mut mem = MemoryImage::new();
        mem.insert(0xc000002000, good_g(&o, 0xc000002000));
        let g = RawG::read(&mem, 0xc000002000, &o).unwrap();
        assert_eq!(g.goid, 42);
        assert_eq!(status_name(g.status), "waiting");
        assert_eq!(g.check(reasons), Ok(()));
    }

    #[test]
    fn rejects_garbage() {
        let (o, reasons) = offsets();
        for (field, value) in [
            (o.goid, 0u64),
            (o.stack_hi, 0xc000101000 + 3),
            (o.sched_g, 0x1234),
        ] {
            let mut g = good_g(&o, 0x1000);
            put(&mut g, field, value);
            let mut mem = MemoryImage::new();
            mem.insert(0x1000, g);
            let g = RawG::read(&mem, 0x1000, &o).unwrap();
            assert!(g.check(reasons).is_err(), "field at {field} = {value:#x}");
        }
        let mut g = good_g(&o, 0x1000);
        g[o.atomicstatus as usize] = 7;
        let mut mem = MemoryImage::new();
        mem.insert(0x1000, g);
        assert!(
            RawG::read(&mem, 0x1000, &o)
                .unwrap()
                .check(reasons)
                .is_err()
        );
        assert_eq!(
            RawG::read(&mem, 0x9000, &o),
            Err(GError::NotCaptured(0x9000))
        );
    }

    #[test]
    fn reads_the_goroutine_list() {
        let mut mem = MemoryImage::new();
        let mut hdr = Vec::new();
        for v in [0x7000u64, 2, 4] {
            hdr.extend_from_slice(&v.to_le_bytes());
        }
        mem.insert(0x5000, hdr);
        let mut arr = Vec::new();
        for v in [0xc000001000u64, 0xc000002000] {
            arr.extend_from_slice(&v.to_le_bytes());
        }
        mem.insert(0x7000, arr);
        assert_eq!(
            read_allgs(&mem, 0x5000, 1000).unwrap(),
            vec![0xc000001000, 0xc000002000]
        );
        assert!(read_allgs(&mem, 0x5000, 1).is_err(), "longer than allowed");
    }
}
