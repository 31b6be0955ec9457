//! Memory facts: executables run from a memfd and their seals, private writable mappings of a
//! memfd (the data segment of a program run from one, as runc 1.2 runs `runc init`), backing
//! objects mapped by several captured processes, and VmFlags showing that the kernel dropped
//! VM_MAYWRITE (`mw`) from such a private mapping — the copy-on-write bug of F_SEAL_FUTURE_WRITE
//! on kernels before 5.5.

use crate::model::Snapshot;

pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;

/// `F_SEAL_SEAL|F_SEAL_WRITE|…` for a seal mask (unknown bits in hex).
pub fn seal_names(seals: u32) -> String {
    const NAMES: [(u32, &str); 6] = [
        (F_SEAL_SEAL, "F_SEAL_SEAL"),
        (F_SEAL_SHRINK, "F_SEAL_SHRINK"),
        (F_SEAL_GROW, "F_SEAL_GROW"),
        (F_SEAL_WRITE, "F_SEAL_WRITE"),
        (F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"),
        (F_SEAL_EXEC, "F_SEAL_EXEC"),
    ];
    let mut parts: Vec<String> = NAMES
        .iter()
        .filter(|(b, _)| seals & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = seals & !NAMES.iter().fold(0, |a, (b, _)| a | b);
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("|")
    }
}

/// A process whose executable is a memfd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemfdExe {
    pub pid: i32,
    /// The name given to memfd_create (`runc_cloned:/proc/self/exe`).
    pub name: String,
    /// F_GET_SEALS of the executable, when the capture could read them.
    pub seals: Option<u32>,
}

impl MemfdExe {
    /// Sealed with F_SEAL_FUTURE_WRITE (runc 1.2.0 – 1.2.5).
    pub fn future_write(&self) -> bool {
        self.seals.is_some_and(|s| s & F_SEAL_FUTURE_WRITE != 0)
    }
}

/// A private, writable mapping of a memfd (`rw-p`): for a program run from a memfd, its data
/// segment — the globals that fork must copy on write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemfdPrivateWrite {
    pub pid: i32,
    pub start: u64,
    pub end: u64,
    pub name: String,
    pub dev: String,
    pub inode: u64,
    /// Whether VmFlags has `mw` (VM_MAYWRITE); None when smaps was not read. Some(false)
    /// on a writable private mapping: the kernel dropped VM_MAYWRITE, so fork shares the
    /// pages instead of copying them on write.
    pub may_write: Option<bool>,
}

impl MemfdPrivateWrite {
    /// VmFlags are known and lack `mw`.
    pub fn lacks_may_write(&self) -> bool {
        self.may_write == Some(false)
    }
}

/// One backing object (dev + inode) mapped by more than one captured process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBacking {
    pub dev: String,
    pub inode: u64,
    pub path: Option<String>,
    /// (pid, start address) of every mapping of it, in snapshot order.
    pub mappings: Vec<(i32, u64)>,
}

impl SharedBacking {
    /// Distinct pids mapping it.
    pub fn pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.mappings.iter().map(|(p, _)| *p).collect();
        v.dedup();
        v
    }
}

pub fn memfd_exes(s: &Snapshot) -> Vec<MemfdExe> {
    s.processes
        .iter()
        .filter_map(|p| {
            let e = p.exe.as_ref()?;
            Some(MemfdExe {
                pid: p.pid,
                name: e.memfd.clone()?,
                seals: e.seals,
            })
        })
        .collect()
}

pub fn memfd_private_writes(s: &Snapshot) -> Vec<MemfdPrivateWrite> {
    let mut out = Vec::new();
    for p in &s.processes {
        for m in &p.mappings {
            let Some(name) = m.memfd_name() else { continue };
            if !m.is_write() || m.is_shared() {
                continue;
            }
            out.push(MemfdPrivateWrite {
                pid: p.pid,
                start: m.start,
                end: m.end,
                name: name.to_string(),
                dev: m.dev.clone(),
                inode: m.inode,
                may_write: (!m.vm_flags.is_empty()).then(|| m.vm_flags.iter().any(|f| f == "mw")),
            });
        }
    }
    out
}

/// Backing objects (files, memfds, shared memory; not anonymous memory) that several
/// captured processes map, ordered by dev and inode.
pub fn shared_backings(s: &Snapshot) -> Vec<SharedBacking> {
    let mut by: std::collections::BTreeMap<(String, u64), SharedBacking> = Default::default();
    for p in &s.processes {
        for m in p.mappings.iter().filter(|m| m.inode != 0) {
            let b = by
                .entry((m.dev.clone(), m.inode))
                .or_insert_with(|| SharedBacking {
                    dev: m.dev.clone(),
                    inode: m.inode,
                    path: m.path.clone(),
                    mappings: Vec::new(),
                });
            b.mappings.push((p.pid, m.start));
        }
    }
    by.into_values().filter(|b| b.pids().len() > 1).collect()
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn names_seals() {
        assert_eq!(
            seal_names(0x1f),
            "F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_FUTURE_WRITE"
        );
        assert_eq!(seal_names(0), "none");
        assert_eq!(seal_names(0x101), "F_SEAL_SEAL|0x100");
    }

    #[test]
    fn the_buggy_probe_runs_from_a_future_write_sealed_memfd() {
        let s = sample("memfd_stage_shared");
        let exes = memfd_exes(&s);
        assert_eq!(exes.len(), 2, "stage-0 and stage-1");
        for e in &exes {
            assert_eq!(e.name, "runc_cloned:/proc/self/exe");
            assert_eq!(e.seals, Some(0x1f));
            assert!(e.future_write());
        }
    }

    #[test]
    fn the_fixed_probe_is_sealed_without_future_write() {
        let s = sample("memfd_stage_fixed_hold");
        let exes = memfd_exes(&s);
        assert_eq!(exes.len(), 2);
        assert!(
            exes.iter()
                .all(|e| e.seals == Some(0xf) && !e.future_write())
        );
    }

    #[test]
    fn the_data_segment_is_a_private_writable_memfd_mapping_in_each_stage() {
        let s = sample("memfd_stage_shared");
        let w = memfd_private_writes(&s);
        let pids: Vec<i32> = w.iter().map(|m| m.pid).collect();
        let want: Vec<i32> = s.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, want, "one rw-p memfd mapping per stage");
        // Recorded on 6.18: the kernel keeps VM_MAYWRITE, copy-on-write works.
        assert!(
            w.iter()
                .all(|m| m.may_write == Some(true) && !m.lacks_may_write())
        );
        assert_eq!(w[0].inode, w[1].inode, "the same memfd");
    }

    #[test]
    fn a_mapping_without_mw_is_noticed_and_unknown_flags_are_not_guessed() {
        let mut s = sample("memfd_stage_shared");
        for m in s.processes[0].mappings.iter_mut() {
            if m.memfd_name().is_some() && m.is_write() {
                m.vm_flags.retain(|f| f != "mw");
            }
        }
        for m in s.processes[1].mappings.iter_mut() {
            m.vm_flags.clear();
        }
        let w = memfd_private_writes(&s);
        assert!(w[0].lacks_may_write());
        assert_eq!(w[1].may_write, None);
        assert!(!w[1].lacks_may_write());
    }

    #[test]
    fn both_stages_map_the_same_memfd() {
        let s = sample("memfd_stage_shared");
        let shared = shared_backings(&s);
        let memfd = shared
            .iter()
            .find(|b| {
                b.path
                    .as_deref()
                    .is_some_and(|p| p.starts_with("/memfd:runc_cloned:"))
            })
            .expect("the memfd is mapped by both stages");
        assert_eq!(memfd.pids().len(), 2);
        // Anonymous memory is never a shared backing.
        assert!(shared.iter().all(|b| b.inode != 0));
    }

    #[test]
    fn a_single_process_shares_nothing_and_old_snapshots_have_no_memfd_exe() {
        let s = sample("blocked_threads");
        assert!(shared_backings(&s).is_empty());
        assert!(memfd_exes(&s).is_empty());
        let s = sample("runc_init_created");
        assert!(
            memfd_exes(&s).is_empty(),
            "runc 1.1 with a bind-mounted exe"
        );
    }
}
