//! Test-only helpers for the unwinder's tests: start C programs (killed by pid on drop),
//! build them in several ways, and capture them with wedge's real freeze.

use crate::memory::MemoryImage;
use crate::model::Process;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process killed (by pid) and reaped when dropped.
pub struct Target {
    pub child: Child,
    pub pid: i32,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Target {
    /// Starts `exe args`, waits for "ready" on its stderr, then until `settled` holds for
    /// the syscalls its threads sit in (/proc/PID/task/*/syscall first fields).
    pub fn start(exe: &Path, args: &[&str], settled: impl Fn(&[i64]) -> bool) -> Target {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut err = child.stderr.take().unwrap();
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut err, &mut buf).unwrap();
        assert_eq!(&buf, b"ready\n");
        let t = Target { child, pid };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !settled(&t.syscalls()) {
            assert!(std::time::Instant::now() < deadline, "{:?}", t.syscalls());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        t
    }

    pub fn tids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort();
        v
    }

    fn syscalls(&self) -> Vec<i64> {
        self.tids()
            .iter()
            .map(|t| {
                std::fs::read_to_string(format!("/proc/{}/task/{t}/syscall", self.pid))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(-1)
            })
            .collect()
    }
}

/// Captures `pid` with wedge's own freeze (all threads stopped together, registers and
/// live stacks copied, then resumed), for the unwinder to work on.
pub fn capture(pid: i32) -> (Process, MemoryImage) {
    let opts = crate::source::live::CaptureOptions {
        children: false,
        max_stack_bytes: 1 << 20,
        ..Default::default()
    };
    let mut cache = crate::binary::BinaryCache::new();
    let mut c = crate::source::live::capture(pid, &opts, &mut cache).expect("capture");
    let mem = c.memory.remove(&pid).unwrap_or_default();
    let mut process = c.snapshot.processes.remove(0);
    process.threads.sort_by_key(|t| t.tid);
    (process, mem)
}

/// Compiles the C file `src` with `cc` and `flags` into `dir/name`, optionally stripped.
pub fn build_c(dir: &Path, name: &str, src: &Path, flags: &[&str], strip: bool) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(flags)
        .args(["-pthread", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap();
    assert!(st.success(), "cc {flags:?} failed");
    if strip {
        assert!(Command::new("strip").arg(&out).status().unwrap().success());
    }
    out
}
