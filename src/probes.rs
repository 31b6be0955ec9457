//! The probe programs of probes/: sources embedded in wedge, built on demand with the system
//! C compiler or the Go command, cached by a hash of sources and flags so repeated runs reuse
//! the binary.
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
    pub source: ProbeSource,
}

/// What a probe is written in, with its sources and build flags.
#[derive(Debug, Clone, Copy)]
pub enum ProbeSource {
    /// One C file, built with `$CC` (default `cc`).
    C {
        source: &'static str,
        cflags: &'static [&'static str],
    },
    /// A Go module (file name → contents, go.mod included), built with `$GO` (default
    /// `go`) as shipped tools are: stripped.
    Go {
        files: &'static [(&'static str, &'static str)],
        flags: &'static [&'static str],
    },
}

pub const PROBES: &[Probe] = &[
    Probe {
        name: "blocked_threads",
        about: "threads parked on a stdio lock, a pipe read and nanosleep",
        source: ProbeSource::C {
            source: include_str!("../probes/native/blocked_threads.c"),
            cflags: &["-O1", "-g", "-pthread"],
        },
    },
    Probe {
        name: "memfd_exec",
        about: "runs a program from a memfd, as runc runs itself",
        source: ProbeSource::C {
            source: include_str!("../probes/native/memfd_exec.c"),
            cflags: &["-O1", "-g"],
        },
    },
    Probe {
        name: "clone_fork",
        about: "clone-fork-mix: glibc fork() in a raw-clone child while a parent thread holds stdio's list lock",
        source: ProbeSource::C {
            source: include_str!("../probes/clone_fork/clone_fork.c"),
            cflags: &["-O1", "-g", "-pthread"],
        },
    },
    Probe {
        name: "vfork_wait",
        about: "a parent held in uninterruptible sleep (D) by a vfork child that never execs",
        source: ProbeSource::C {
            source: include_str!("../probes/native/vfork_wait.c"),
            cflags: &["-O1", "-g"],
        },
    },
    Probe {
        name: "dead_owner",
        about: "lock-never-released: a pthread mutex whose owner thread exited holding it (or `twice`: locked twice by one thread)",
        source: ProbeSource::C {
            source: include_str!("../probes/native/dead_owner.c"),
            cflags: &["-O1", "-g", "-pthread"],
        },
    },
    Probe {
        name: "nil_deref",
        about: "dies of SIGSEGV at address 0x10: a field read through a NULL pointer",
        source: ProbeSource::C {
            source: include_str!("../probes/native/nil_deref.c"),
            cflags: &["-O1", "-g"],
        },
    },
    Probe {
        name: "reader_race",
        about: "nil-reader-race: five goroutines read one unlocked ReaderAt through SectionReaders (modes hold, crash, fixed, fixed-hold)",
        source: ProbeSource::Go {
            files: &[
                ("go.mod", include_str!("../probes/reader_race/go.mod")),
                ("main.go", include_str!("../probes/reader_race/main.go")),
            ],
            flags: &["-trimpath", "-ldflags=-s -w"],
        },
    },
    Probe {
        name: "pipe_waits",
        about: "orphan-pipe-wait and wait-cycle: reads that wait on a pipe or socket only the waiter (or a waiting peer) holds",
        source: ProbeSource::C {
            source: include_str!("../probes/native/pipe_waits.c"),
            cflags: &["-O1", "-g"],
        },
    },
    Probe {
        name: "idle_server",
        about: "no-false-positive check: a multi-threaded server with nothing to do (accept, epoll_wait, condition variables, join)",
        source: ProbeSource::C {
            source: include_str!("../probes/native/idle_server.c"),
            cflags: &["-O1", "-g", "-pthread"],
        },
    },
    Probe {
        name: "memfd_stage",
        about: "memfd-shared-stage: nsexec-like stage-0/stage-1 start from a sealed memfd copy of itself (buggy|fixed|shared [hold]; shared emulates the pre-5.5 kernel bug)",
        source: ProbeSource::C {
            source: include_str!("../probes/memfd_stage/memfd_stage.c"),
            cflags: &["-O1", "-g"],
        },
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no probe named {0:?}")]
    Unknown(String),
    #[error("cannot run the C compiler {cc:?}: {source} (install gcc)")]
    NoCompiler { cc: String, source: std::io::Error },
    #[error("cannot run the Go command {go:?}: {source} (install golang-go, or set GO)")]
    NoGo { go: String, source: std::io::Error },
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
    build_with(name, cache_dir, None)
}

/// [`build`] with the compiler (or Go command) given instead of taken from `$CC` / `$GO`.
pub fn build_with(name: &str, cache_dir: &Path, tool: Option<&str>) -> Result<PathBuf, ProbeError> {
    let probe = find(name).ok_or_else(|| ProbeError::Unknown(name.to_string()))?;
    let tool = match (tool, probe.source) {
        (Some(t), _) => t.to_string(),
        (None, ProbeSource::C { .. }) => std::env::var("CC").unwrap_or_else(|_| "cc".into()),
        (None, ProbeSource::Go { .. }) => std::env::var("GO").unwrap_or_else(|_| "go".into()),
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match probe.source {
        ProbeSource::C { source, cflags } => {
            source.hash(&mut h);
            cflags.hash(&mut h);
        }
        ProbeSource::Go { files, flags } => {
            files.hash(&mut h);
            flags.hash(&mut h);
        }
    }
    tool.hash(&mut h);
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
    let tmp = out.with_extension(format!("tmp{unique}"));
    let result = match probe.source {
        ProbeSource::C { source, cflags } => {
            let src = src_dir.join(format!("{}.c", probe.name));
            std::fs::write(&src, source).map_err(cache_err)?;
            Command::new(&tool)
                .args(cflags)
                .arg("-o")
                .arg(&tmp)
                .arg(&src)
                .output()
                .map_err(|source| ProbeError::NoCompiler {
                    cc: tool.clone(),
                    source,
                })
        }
        ProbeSource::Go { files, flags } => {
            for (file, text) in files {
                std::fs::write(src_dir.join(file), text).map_err(cache_err)?;
            }
            // A build cache and module cache of the probe cache's own: nothing is written
            // to the user's home, and nothing is downloaded (the probes have no
            // dependencies).
            Command::new(&tool)
                .arg("build")
                .args(flags)
                .arg("-o")
                .arg(&tmp)
                .arg(".")
                .current_dir(&src_dir)
                .env("GOCACHE", cache_dir.join("go-build"))
                .env("GOPATH", cache_dir.join("gopath"))
                .env("GOFLAGS", "-buildvcs=false")
                .env("GOPROXY", "off")
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0")
                .output()
                .map_err(|source| ProbeError::NoGo {
                    go: tool.clone(),
                    source,
                })
        }
    };
    let _ = std::fs::remove_dir_all(&src_dir);
    let output = result?;
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

/// Makes `cmd` dump core when it crashes: raises its RLIMIT_CORE soft limit as far as the
/// hard limit allows (infinity where permitted). Cores land where core_pattern says.
pub fn enable_core_dumps(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getrlimit/setrlimit are async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 {
                let mut cur = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_CORE, &mut cur);
                cur.rlim_cur = cur.rlim_max;
                libc::setrlimit(libc::RLIMIT_CORE, &cur);
            }
            Ok(())
        });
    }
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

    #[test]
    fn go_probes_build_stripped_and_say_when_go_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let exe = build("reader_race", dir.path()).expect("go (golang-go) is installed");
        let elf = std::fs::read(&exe).unwrap();
        assert!(
            !elf.windows(7).any(|w| w == b".symtab"),
            "built stripped (-ldflags=-s -w)"
        );
        // A Go command that does not exist: a clear error, not a panic.
        let e = build_with("reader_race", dir.path(), Some("/nonexistent/go")).unwrap_err();
        assert!(matches!(e, ProbeError::NoGo { .. }), "{e:?}");
        assert!(e.to_string().contains("install golang-go"), "{e}");
    }
}
