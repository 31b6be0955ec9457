//! Memory mappings from /proc/PID/smaps (maps when smaps is unreadable).

use super::ProcError;
use crate::model::Mapping;
use procfs::process::{MMapPath, MemoryMap};

pub fn read_mappings(pid: i32) -> Result<Vec<Mapping>, ProcError> {
    let proc = procfs::process::Process::new(pid)
        .map_err(|e| ProcError::from_procfs(pid, &format!("/proc/{pid}"), e))?;
    let maps = match proc.smaps() {
        Ok(m) => m,
        Err(procfs::ProcError::PermissionDenied(_)) | Err(procfs::ProcError::Io(..)) => proc
            .maps()
            .map_err(|e| ProcError::from_procfs(pid, &format!("/proc/{pid}/maps"), e))?,
        Err(e) => {
            return Err(ProcError::from_procfs(
                pid,
                &format!("/proc/{pid}/smaps"),
                e,
            ));
        }
    };
    Ok(maps.iter().map(mapping_from).collect())
}

fn mapping_from(m: &MemoryMap) -> Mapping {
    // The procfs crate turns smaps' kB into bytes; the model keeps kB as smaps prints them.
    let kb = |k: &str| m.extension.map.get(k).map(|b| b / 1024);
    let path = match &m.pathname {
        MMapPath::Path(p) => Some(p.to_string_lossy().into_owned()),
        MMapPath::Heap => Some("[heap]".into()),
        MMapPath::Stack => Some("[stack]".into()),
        MMapPath::TStack(t) => Some(format!("[stack:{t}]")),
        MMapPath::Vdso => Some("[vdso]".into()),
        MMapPath::Vvar => Some("[vvar]".into()),
        MMapPath::Vsyscall => Some("[vsyscall]".into()),
        MMapPath::Rollup => Some("[rollup]".into()),
        MMapPath::Anonymous => None,
        MMapPath::Vsys(key) => Some(format!("/SYSV{key:08x}")),
        MMapPath::Other(o) => Some(format!("[{o}]")),
    };
    Mapping {
        start: m.address.0,
        end: m.address.1,
        perms: m.perms.as_str(),
        offset: m.offset,
        dev: format!("{:02x}:{:02x}", m.dev.0, m.dev.1),
        inode: m.inode,
        path,
        rss_kb: kb("Rss"),
        pss_kb: kb("Pss"),
        shared_clean_kb: kb("Shared_Clean"),
        shared_dirty_kb: kb("Shared_Dirty"),
        private_clean_kb: kb("Private_Clean"),
        private_dirty_kb: kb("Private_Dirty"),
        swap_kb: kb("Swap"),
        vm_flags: m
            .extension
            .vm_flags
            .iter_names()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromBufRead;

    #[test]
    fn smaps_fixture_gives_counters_and_flags() {
        let text = std::fs::read_to_string(format!(
            "{}/samples/procfs/smaps-blocked_threads.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        // The fixture is cut mid-entry at its end; parse whole entries only.
        let end = text
            .rfind("VmFlags")
            .map(|i| text[i..].find('\n').map_or(text.len(), |j| i + j))
            .unwrap();
        let maps = procfs::process::MemoryMaps::from_buf_read(&text.as_bytes()[..end]).unwrap();
        let m: Vec<Mapping> = maps.iter().map(mapping_from).collect();
        let first = &m[0];
        assert!(
            first
                .path
                .as_deref()
                .is_some_and(|p| p.contains("blocked_threads"))
        );
        assert!(first.rss_kb.is_some() && first.pss_kb.is_some());
        assert!(
            first.vm_flags.contains(&"rd".to_string()),
            "{:?}",
            first.vm_flags
        );
        assert!(m.iter().any(|x| x.is_exec()));
    }

    #[test]
    fn reads_our_own_mappings() {
        let me = std::process::id() as i32;
        let maps = read_mappings(me).unwrap();
        assert!(maps.iter().any(|m| m.path.as_deref() == Some("[stack]")));
        assert!(
            maps.iter()
                .any(|m| m.is_exec() && m.vm_flags.iter().any(|f| f == "ex"))
        );
        assert!(
            maps.windows(2).all(|w| w[0].end <= w[1].start),
            "sorted, disjoint"
        );
    }
}
