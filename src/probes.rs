//! The probe programs of probes/: sources embedded in wedge, built on demand with the system
//! C compiler, cached by a hash of source and flags so repeated runs reuse the binary.
//!
//! Builds are atomic (compile to a temporary name, then rename), so parallel tests and
//! concurrent wedge runs can share one cache directory.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One probe program.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub name: &'static str,
    /// What the probe does, for `wedge confirm` and the docs.
    pub about: &'static str,
    pub source: &'static str,
    pub cflags: &'static [&'static str],
}

pub const PROBES: &[Probe] = &[
    Probe {
        name: "blocked_threads",
        about: "threads parked on a stdio lock, a pipe read and nanosleep",
        source: include_str!("../probes/native/blocked_threads.c"),
        cflags: &["-O1", "-g", "-pthread"],
    },
    Probe {
        name: "memfd_exec",
        about: "runs a program from a memfd, as runc runs itself",
        source: include_str!("../probes/native/memfd_exec.c"),
        cflags: &["-O1", "-g"],
    },
    Probe {
        name: "clone_fork",
        about: "clone-fork-mix: glibc fork() in a raw-clone child while a parent thread holds stdio's list lock",
        source: include_str!("../probes/clone_fork/clone_fork.c"),
        cflags: &["-O1", "-g", "-pthread"],
    },
    Probe {
        name: "vfork_wait",
        about: "a parent held in uninterruptible sleep (D) by a vfork child that never execs",
        source: include_str!("../probes/native/vfork_wait.c"),
        cflags: &["-O1", "-g"],
    },
    Probe {
        name: "pipe_waits",
        about: "orphan-pipe-wait and wait-cycle: reads that wait on a pipe or socket only the waiter (or a waiting peer) holds",
        source: include_str!("../probes/native/pipe_waits.c"),
        cflags: &["-O1", "-g"],
    },
    Probe {
        name: "idle_server",
        about: "no-false-positive check: a multi-threaded server with nothing to do (accept, epoll_wait, condition variables, join)",
        source: include_str!("../probes/native/idle_server.c"),
        cflags: &["-O1", "-g", "-pthread"],
    },
    Probe {
        name: "memfd_stage",
        about: "memfd-shared-stage: nsexec-like stage-0/stage-1 start from a sealed memfd copy of itself (buggy|fixed|shared [hold]; shared emulates the pre-5.5 kernel bug)",
        source: include_str!("../probes/memfd_stage/memfd_stage.c"),
        cflags: &["-O1", "-g"],
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no probe named {0:?}")]
    Unknown(String),
    #[error("cannot run the C compiler {cc:?}: {source} (install gcc)")]
    NoCompiler { cc: String, source: std::io::Error },
    #[error("building probe {name} failed:\n{stderr}")]
    BuildFailed { name: String, stderr: String },
    #[error("probe cache {dir}: {source}")]
    Cache { dir: String, source: std::io::Error },
}

pub fn find(name: &str) -> Option<&'static Probe> {
    PROBES.iter().find(|p| p.name == name)
}

/// Builds probe `name` into `cache_dir` (unless an identical build is there) and returns
/// the path of the executable.
pub fn build(name: &str, cache_dir: &Path) -> Result<PathBuf, ProbeError> {
    let probe = find(name).ok_or_else(|| ProbeError::Unknown(name.to_string()))?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    probe.source.hash(&mut h);
    probe.cflags.hash(&mut h);
    cc.hash(&mut h);
    let out = cache_dir.join(format!("{}-{:016x}", probe.name, h.finish()));
    if out.exists() {
        return Ok(out);
    }
    let cache_err = |source| ProbeError::Cache {
        dir: cache_dir.display().to_string(),
        source,
    };
    // Unique per build, also between threads of one process (parallel tests build the same
    // probe at once). The source keeps its real name (debug info shows it).
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let unique = format!(
        "{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let src_dir = cache_dir.join(format!("src-{}-{unique}", probe.name));
    std::fs::create_dir_all(&src_dir).map_err(cache_err)?;
    let src = src_dir.join(format!("{}.c", probe.name));
    std::fs::write(&src, probe.source).map_err(cache_err)?;
    let tmp = out.with_extension(format!("tmp{unique}"));
    let result = Command::new(&cc)
        .args(probe.cflags)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .output();
    let _ = std::fs::remove_dir_all(&src_dir);
    let output = result.map_err(|source| ProbeError::NoCompiler {
        cc: cc.clone(),
        source,
    })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ProbeError::BuildFailed {
            name: name.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    // Another build may have finished first: either binary is the same.
    std::fs::rename(&tmp, &out).map_err(cache_err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_and_reuses_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let a = build("memfd_exec", dir.path()).unwrap();
        let t = std::fs::metadata(&a).unwrap().modified().unwrap();
        let b = build("memfd_exec", dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::metadata(&b).unwrap().modified().unwrap(), t);
        assert!(matches!(
            build("nope", dir.path()),
            Err(ProbeError::Unknown(_))
        ));
    }
}
