//! Checks of the host kernel that a finding may depend on, run on the machine wedge runs on.
//!
//! [`memfd_future_write_cow`] tells whether this kernel keeps copy-on-write for a private
//! mapping of a memfd sealed with F_SEAL_FUTURE_WRITE. Kernels 5.1 – 5.4 (and vendor kernels
//! without commit 05d351102dbe) do not: parent and child then share the pages, which is what
//! makes runc 1.2.0 – 1.2.5 hang (runc #4640, `memfd-shared-stage`).

use std::ffi::CStr;

/// What the copy-on-write check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CowCheck {
    /// The child's write stayed in the child: the kernel is fixed.
    CowKept,
    /// The parent saw the child's write: the kernel has the bug.
    CowBroken,
    /// The check could not run here (e.g. the kernel predates F_SEAL_FUTURE_WRITE, 5.1).
    Unsupported(String),
}

/// The check's verdict and the kernel it ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowReport {
    /// `uname -r`.
    pub kernel_release: String,
    pub verdict: CowCheck,
}

/// `uname -r` of this machine (empty if uname fails).
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out-pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates release.
    unsafe { CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Runs [`memfd_future_write_cow`] and names the kernel.
pub fn memfd_future_write_cow_report() -> CowReport {
    CowReport {
        kernel_release: kernel_release(),
        verdict: memfd_future_write_cow(),
    }
}

fn errno_text(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Closes an fd and unmaps a mapping on every path out of the check.
struct Resources {
    fd: i32,
    map: *mut libc::c_void,
    len: usize,
}

impl Drop for Resources {
    fn drop(&mut self) {
        if !self.map.is_null() && self.map != libc::MAP_FAILED {
            // SAFETY: map/len came from a successful mmap that nothing else refers to.
            unsafe { libc::munmap(self.map, self.len) };
        }
        if self.fd >= 0 {
            // SAFETY: fd is ours.
            unsafe { libc::close(self.fd) };
        }
    }
}

/// Creates a memfd, writes a page, seals it F_SEAL_FUTURE_WRITE, maps it MAP_PRIVATE
/// read-write, writes, forks; the child writes too and exits; the parent looks whether it
/// sees the child's write.
pub fn memfd_future_write_cow() -> CowCheck {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe {
        libc::memfd_create(
            c"wedge-cow-check".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return CowCheck::Unsupported(errno_text("memfd_create"));
    }
    let mut r = Resources {
        fd,
        map: std::ptr::null_mut(),
        len: page,
    };
    let data = vec![b'm'; page];
    // SAFETY: data is page bytes long.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), page) };
    if n != page as isize {
        return CowCheck::Unsupported(errno_text("write to the memfd"));
    }
    // SAFETY: fcntl on our fd.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_FUTURE_WRITE) } != 0 {
        let e = std::io::Error::last_os_error();
        return CowCheck::Unsupported(if e.raw_os_error() == Some(libc::EINVAL) {
            format!(
                "F_SEAL_FUTURE_WRITE is refused ({e}): kernels before 5.1 lack the seal, so they cannot have its copy-on-write bug"
            )
        } else {
            format!("F_ADD_SEALS F_SEAL_FUTURE_WRITE: {e}")
        });
    }
    // SAFETY: a fresh private mapping of our memfd.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
            fd,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return CowCheck::Unsupported(errno_text("mmap MAP_PRIVATE of the sealed memfd"));
    }
    r.map = map;
    let byte = map.cast::<u8>();
    // SAFETY: the mapping is page bytes, readable and writable.
    unsafe { std::ptr::write_volatile(byte, b'P') };
    // SAFETY: the child only writes one byte of a mapping and calls _exit, both
    // async-signal-safe; nothing else runs in it.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return CowCheck::Unsupported(errno_text("fork"));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            std::ptr::write_volatile(byte, b'C');
            libc::_exit(0);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for the child we forked.
        let w = unsafe { libc::waitpid(pid, &mut status, 0) };
        if w == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return CowCheck::Unsupported(errno_text("waitpid"));
        }
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return CowCheck::Unsupported(format!("the check's child failed (status {status:#x})"));
    }
    // SAFETY: the mapping is still ours.
    match unsafe { std::ptr::read_volatile(byte) } {
        b'P' => CowCheck::CowKept,
        b'C' => CowCheck::CowBroken,
        other => CowCheck::Unsupported(format!("the mapping holds {other:#x}, neither write")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (major, minor) of a release such as `6.18.44-fc-v1045`.
    fn version(release: &str) -> Option<(u32, u32)> {
        let mut it = release.split(|c: char| !c.is_ascii_digit());
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }

    #[test]
    fn this_kernel_keeps_copy_on_write() {
        let r = memfd_future_write_cow_report();
        eprintln!("kernel {}: {:?}", r.kernel_release, r.verdict);
        let v = version(&r.kernel_release).expect("a release like 6.18.1");
        // Kernels from 5.5 on carry 05d351102dbe; older ones may have the bug or lack the
        // seal, so on those the test only checks that the check answers.
        if v >= (5, 5) {
            assert_eq!(r.verdict, CowCheck::CowKept, "kernel {}", r.kernel_release);
        } else if v < (5, 1) {
            assert!(matches!(r.verdict, CowCheck::Unsupported(_)));
        }
    }

    #[test]
    fn the_release_matches_procfs() {
        let procfs = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(kernel_release(), procfs.trim());
        assert_eq!(version("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(version("5.4.0"), Some((5, 4)));
    }
}
