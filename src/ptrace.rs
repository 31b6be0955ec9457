//! Tracer pieces shared by `wedge run` and `wedge trace`: the raw ptrace call, finding the
//! command as execvp would, starting it stopped and seized (optionally with a seccomp filter
//! installed before its exec), and mapping a wait status to a shell's exit status.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("no command given (wedge {0} [OPTIONS] -- CMD [ARGS…])")]
    NoCommand(&'static str),
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{0}")]
    System(String),
}

pub fn errno_msg(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// argv[0] as execvp would find it.
pub fn resolve(cmd: &OsString) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(cmd);
    if cmd.as_bytes().contains(&b'/') {
        return p.exists().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    })
}

/// ptrace(2) with integer arguments.
pub fn raw(req: libc::c_uint, tid: i32, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: the requests callers make take no pointers, or (GETSIGINFO, GETEVENTMSG,
    // GETREGSET) a pointer to caller-owned memory of the right size passed as `data`.
    unsafe {
        libc::ptrace(
            req,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    }
}

/// The exit status a shell gives for a wait status: the exit code, or 128 + signal.
pub fn shell_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        0
    }
}

/// Starts `argv` stopped (it raises SIGSTOP before exec), seizes it with `options` and lets
/// it go. With `filter`, the child installs that seccomp program (after its SIGSTOP, so the
/// tracer already follows it) right before its exec. `who` names the subcommand in errors.
pub fn spawn_seized(
    who: &'static str,
    argv: &[OsString],
    options: libc::c_int,
    filter: Option<&[libc::sock_filter]>,
) -> Result<i32, SpawnError> {
    let first = argv.first().ok_or(SpawnError::NoCommand(who))?;
    if resolve(first).is_none() {
        return Err(SpawnError::NotFound(first.to_string_lossy().into_owned()));
    }
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .map_err(|_| SpawnError::NotFound(a.to_string_lossy().into_owned()))
        })
        .collect::<Result<_, _>>()?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let prog = filter.map(|f| libc::sock_fprog {
        len: f.len() as libc::c_ushort,
        filter: f.as_ptr() as *mut libc::sock_filter,
    });
    // SAFETY: the child only calls async-signal-safe functions (raise, prctl, syscall,
    // execvp, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::System(errno_msg("fork")));
    }
    if pid == 0 {
        unsafe {
            libc::raise(libc::SIGSTOP);
            if let Some(p) = &prog {
                // Without CAP_SYS_ADMIN a filter needs no_new_privs (which also keeps
                // setuid binaries from gaining privileges: root does not need it).
                if libc::geteuid() != 0 {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                }
                // A filter that cannot be installed costs the exec-entry stops only (the
                // tracer notices their absence): the command runs regardless.
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    p as *const libc::sock_fprog,
                );
            }
            libc::execvp(ptrs[0], ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) } != pid
        || !libc::WIFSTOPPED(status)
    {
        return Err(SpawnError::System(errno_msg(
            "waiting for the command to start",
        )));
    }
    if raw(libc::PTRACE_SEIZE, pid, 0, options as usize) < 0 {
        let e = errno_msg("PTRACE_SEIZE of the command");
        // SAFETY: our own child: let it run untraced rather than leave it stopped.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        return Err(SpawnError::System(e));
    }
    // SAFETY: our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    Ok(pid)
}
