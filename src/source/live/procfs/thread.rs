//! A thread's kernel wait state from /proc/PID/task/TID: state, wchan, syscall, kernel stack.

use super::ProcError;
use crate::model::{Arch, Syscall, Thread};
use crate::syscall;
use procfs::FromRead;

/// Reads what the kernel shows about thread `tid` of `pid`. Registers, the stack copy and
/// frames are filled in later by the freeze and the unwinder.
pub fn read_thread(pid: i32, tid: i32, arch: Arch) -> Result<Thread, ProcError> {
    let base = format!("/proc/{pid}/task/{tid}");
    let stat_path = format!("{base}/stat");
    let stat = procfs::process::Stat::from_file(&stat_path)
        .map_err(|e| ProcError::from_procfs(pid, &stat_path, e))?;
    let wchan = std::fs::read_to_string(format!("{base}/wchan"))
        .ok()
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty() && w != "0");
    let syscall = procfs::process::Syscall::from_file(format!("{base}/syscall"))
        .ok()
        .and_then(|s| syscall_from_procfs(arch, s));
    // NSpid's last entry is the id inside the innermost pid namespace.
    let nstid = std::fs::read_to_string(format!("{base}/status"))
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|v| v.split_whitespace().last()?.parse::<i32>().ok())
        })
        .filter(|&n| n != tid);
    let kernel_stack = std::fs::read_to_string(format!("{base}/stack"))
        .map(|s| parse_kernel_stack(&s))
        .unwrap_or_default();
    Ok(Thread {
        tid,
        nstid,
        name: stat.comm,
        state: stat.state.to_string(),
        wchan,
        syscall,
        kernel_stack,
        ..Default::default()
    })
}

/// The syscall a blocked thread is in; None when it runs or waits outside a syscall.
fn syscall_from_procfs(arch: Arch, s: procfs::process::Syscall) -> Option<Syscall> {
    match s {
        procfs::process::Syscall::Blocked {
            syscall_number,
            argument_registers,
            ..
        } if syscall_number >= 0 => Some(Syscall {
            nr: syscall_number,
            name: syscall::name(arch, syscall_number).map(String::from),
            args: argument_registers.to_vec(),
            decoded: syscall::decode(arch, syscall_number, &argument_registers),
            from: "procfs".into(),
            futex: syscall::futex_word(arch, syscall_number, &argument_registers),
            path: None,
        }),
        _ => None,
    }
}

/// `[<0>] futex_do_wait+0x46/0x90` lines → `futex_do_wait+0x46/0x90`, innermost first.
pub fn parse_kernel_stack(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = match l.find("] ") {
                Some(i) => &l[i + 2..],
                None => l,
            };
            (!rest.is_empty()).then(|| rest.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/samples/procfs/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn kernel_stack_fixture() {
        let s = parse_kernel_stack(&sample("kstack-holder.txt"));
        assert_eq!(s[0], "anon_pipe_read+0x393/0x440");
        assert!(s.iter().any(|f| f.starts_with("ksys_read")));
    }

    #[test]
    fn syscall_fixtures_decode() {
        let parse = |f: &str| {
            let s = procfs::process::Syscall::from_read(sample(f).as_bytes()).unwrap();
            syscall_from_procfs(Arch::X86_64, s).unwrap()
        };
        let waiter = parse("syscall-waiter.txt");
        assert_eq!(waiter.name.as_deref(), Some("futex"));
        let w = waiter.futex.unwrap();
        assert_eq!(
            (w.op_name.as_str(), w.private, w.expected),
            ("FUTEX_WAIT", true, 2)
        );
        let holder = parse("syscall-holder.txt");
        assert_eq!(holder.name.as_deref(), Some("read"));
        assert_eq!(
            holder.decoded.as_deref(),
            Some("read(fd=3, 0x7f8786207ecf, 1)")
        );
        let ticker = parse("syscall-ticker.txt");
        assert_eq!(ticker.name.as_deref(), Some("clock_nanosleep"));
        // A thread not in a syscall prints "-1 sp pc", which is no syscall.
        assert!(
            procfs::process::Syscall::from_read("-1 0x7ffd 0x7f00\n".as_bytes())
                .ok()
                .and_then(|s| syscall_from_procfs(Arch::X86_64, s))
                .is_none()
        );
    }

    #[test]
    fn reads_a_sleeping_thread() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let t = read_thread(pid, pid, Arch::native().unwrap()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(t.name, "sleep");
        assert_eq!(t.state, "S");
        assert!(
            t.syscall
                .as_ref()
                .and_then(|s| s.name.as_deref())
                .is_some_and(|n| n.contains("nanosleep"))
        );
        assert!(t.wchan.is_some());
    }
}
