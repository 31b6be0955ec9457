//! `wedge diagnose` on real native processes: what it names, and that targets always run on.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use wedge::model::{Diagnosis, FdKind};

#[test]
fn names_threads_syscalls_and_pipes_and_round_trips() {
    let probe = start_blocked_threads(&[]);
    let (d, out) = diagnose_json(probe.pid, &[]);
    assert_no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = d.snapshot.process(probe.pid).expect("probe captured");
    assert!(p.stopped, "all threads stopped together");
    assert!(
        p.pause_us.is_some_and(|us| us > 0 && us < 1_000_000),
        "pause {:?}",
        p.pause_us
    );
    assert_eq!(p.threads.len(), 4);

    // The waiter sleeps on stdout's lock: futex, private wait, value 2 (locked, waiters).
    let waiter = thread_by_name(p, "waiter");
    let sys = waiter.syscall.as_ref().expect("waiter in a syscall");
    assert_eq!(sys.name.as_deref(), Some("futex"));
    let word = sys.futex.as_ref().expect("futex word");
    assert!(word.private);
    assert_eq!(word.value, Some(2), "locked with waiters");
    assert!(
        functions(waiter)
            .iter()
            .any(|f| f == "__lll_lock_wait_private"),
        "{:?}",
        functions(waiter)
    );
    assert!(
        functions(waiter).iter().any(|f| f == "waiter"),
        "{:?}",
        functions(waiter)
    );

    // The holder reads a pipe: the syscall names the fd, the fd table says it is a pipe.
    let holder = thread_by_name(p, "holder");
    let sys = holder.syscall.as_ref().expect("holder in a syscall");
    assert_eq!(sys.name.as_deref(), Some("read"));
    let fd = sys.args[0] as i32;
    let pipe = p.fd(fd).expect("fd in table");
    let FdKind::Pipe { inode } = pipe.kind else {
        panic!("fd {fd} is {:?}", pipe.kind)
    };
    assert!(pipe.target.contains(&inode.to_string()));
    let fns = functions(holder);
    assert!(
        fns.iter().any(|f| f == "read" || f == "__libc_read"),
        "{fns:?}"
    );
    assert!(fns.iter().any(|f| f == "holder"), "{fns:?}");

    let ticker = thread_by_name(p, "ticker");
    assert!(
        functions(ticker).iter().any(|f| f == "ticker"),
        "{:?}",
        functions(ticker)
    );
    let main = p.thread(p.pid).expect("main thread");
    assert!(
        functions(main).iter().any(|f| f == "main"),
        "{:?}",
        functions(main)
    );

    // Executable mappings name the probe and libc.
    assert!(
        p.mappings
            .iter()
            .any(|m| m.is_exec() && m.path.as_deref().is_some_and(|x| x.contains("libc.so")))
    );

    // The JSON round-trips.
    let text = serde_json::to_string(&d).unwrap();
    let back: Diagnosis = serde_json::from_str(&text).unwrap();
    assert_eq!(back, d);
}

#[test]
fn human_report_shows_tree_threads_fds_and_mappings() {
    let probe = start_blocked_threads(&[]);
    let out = wedge(&["diagnose", &probe.pid.to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Process tree",
        "Threads",
        "File descriptors",
        "Notable mappings",
        "waiter",
        "__lll_lock_wait_private",
        "pipe",
    ] {
        assert!(text.contains(want), "report lacks {want:?}:\n{text}");
    }
    assert!(
        !text.contains("\x1b["),
        "no colour when NO_COLOR is set and stdout is a pipe"
    );
}

#[test]
fn target_keeps_running_after_a_capture() {
    let probe = start_blocked_threads(&[]);
    for _ in 0..3 {
        let (_, out) = diagnose_json(probe.pid, &[]);
        assert_eq!(out.status.code(), Some(0));
    }
    assert!(!any_stopped(probe.pid), "left stopped");
    let before = probe.count_lines("tick");
    assert!(
        wait_until(Duration::from_secs(2), || probe.count_lines("tick")
            > before + 5),
        "ticks stopped"
    );
}

/// Starts `wedge diagnose --debug-hold-ms` in the background and waits until it holds the
/// probe stopped.
fn hold(pid: i32, ms: u64) -> Running {
    let mut cmd = Command::new(wedge_bin());
    cmd.args([
        "diagnose",
        &pid.to_string(),
        "--json",
        "--debug-hold-ms",
        &ms.to_string(),
    ]);
    let w = Running::start(cmd);
    assert!(
        wait_until(Duration::from_secs(5), || all_traced(pid)),
        "wedge never stopped the probe"
    );
    w
}

#[test]
fn sigkill_of_wedge_mid_capture_leaves_target_running() {
    let probe = start_blocked_threads(&[]);
    let w = hold(probe.pid, 10_000);
    w.signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(2), || !any_stopped(probe.pid)),
        "probe left stopped"
    );
    let before = probe.count_lines("tick");
    assert!(
        wait_until(Duration::from_secs(2), || probe.count_lines("tick")
            > before + 5),
        "ticks stopped"
    );
}

#[test]
fn sigint_mid_capture_resumes_and_exits_130() {
    let probe = start_blocked_threads(&[]);
    let mut w = hold(probe.pid, 10_000);
    w.signal(libc::SIGINT);
    let status = w.child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!any_stopped(probe.pid), "probe left stopped");
    let before = probe.count_lines("tick");
    assert!(wait_until(Duration::from_secs(2), || probe
        .count_lines("tick")
        > before + 5));
}

#[test]
fn signal_arriving_during_the_freeze_is_redelivered() {
    let probe = start_blocked_threads(&[]);
    let mut w = hold(probe.pid, 700);
    probe.signal(libc::SIGUSR1);
    let (code, json) = w.finish();
    assert_eq!(code, Some(0));
    // Delivered after the resume, not lost: either it stayed pending in the kernel while the
    // threads sat in their interrupt stops, or wedge took it in a signal-delivery stop and
    // gave it back at detach (then the JSON names the thread).
    probe.wait_line("got SIGUSR1", Duration::from_secs(3));
    assert_eq!(
        probe.count_lines("got SIGUSR1"),
        1,
        "delivered exactly once"
    );
    let d: Diagnosis = serde_json::from_str(&json).expect("json");
    let p = d.snapshot.process(probe.pid).unwrap();
    assert!(
        p.threads
            .iter()
            .all(|t| t.redelivered_signal.is_none_or(|s| s == libc::SIGUSR1))
    );
}

#[test]
fn no_stop_reads_procfs_without_stopping() {
    let probe = start_blocked_threads(&[]);
    let (d, out) = diagnose_json(probe.pid, &["--no-stop"]);
    assert_eq!(out.status.code(), Some(0));
    let p = d.snapshot.process(probe.pid).unwrap();
    assert!(!p.stopped && p.pause_us.is_none());
    assert!(p.threads.iter().all(|t| t.registers.is_none()));
    let waiter = thread_by_name(p, "waiter");
    assert_eq!(
        waiter.syscall.as_ref().and_then(|s| s.name.as_deref()),
        Some("futex")
    );
    assert!(!p.fds.is_empty());
}

#[test]
fn children_are_included_unless_told_not_to() {
    let exe = probe("blocked_threads");
    let script = format!(
        "{0} >/dev/null & {0} >/dev/null & echo ready $$; wait",
        exe.display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    let sh = Running::start(cmd);
    sh.wait_line("ready", Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", sh.pid, sh.pid))
            .is_ok_and(|c| c.split_whitespace().count() == 2)
    }));
    std::thread::sleep(Duration::from_millis(200));
    let (d, _) = diagnose_json(sh.pid, &[]);
    let kids: Vec<i32> = d
        .snapshot
        .processes
        .iter()
        .filter(|p| p.ppid == sh.pid)
        .map(|p| p.pid)
        .collect();
    assert_eq!(
        kids.len(),
        2,
        "{:?}",
        d.snapshot
            .processes
            .iter()
            .map(|p| (p.pid, &p.comm))
            .collect::<Vec<_>>()
    );
    assert!(d.snapshot.processes.iter().all(|p| p.stopped));
    let (d, _) = diagnose_json(sh.pid, &["--no-children"]);
    assert_eq!(d.snapshot.processes.len(), 1);
    for k in kids {
        // SAFETY: kill(2) on children of the shell this test started.
        unsafe { libc::kill(k, libc::SIGKILL) };
    }
}

#[test]
fn threads_appearing_and_dying_mid_capture_are_handled() {
    let exe = probe("blocked_threads");
    let mut cmd = Command::new(&exe);
    cmd.arg("churn");
    let probe = Running::start(cmd);
    probe.wait_line("ready", Duration::from_secs(10));
    for _ in 0..10 {
        let (d, out) = diagnose_json(probe.pid, &[]);
        assert_no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = d.snapshot.process(probe.pid).unwrap();
        assert!(p.threads.iter().any(|t| t.name == "churn"));
        assert!(!any_stopped(probe.pid));
    }
}

#[test]
fn thread_in_d_state_is_reported_not_waited_for() {
    let exe = probe("vfork_wait");
    let r = Running::start(Command::new(&exe));
    let ready = r.wait_line("ready", Duration::from_secs(5));
    let pids: Vec<i32> = ready
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (parent, child) = (pids[0], pids[1]);
    assert!(wait_until(Duration::from_secs(3), || state_of(
        parent, parent
    ) == Some('D')));
    let started = std::time::Instant::now();
    let (d, out) = diagnose_json(parent, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let p = d.snapshot.process(parent).unwrap();
    assert_eq!(p.threads[0].state, "D");
    assert!(p.threads[0].registers.is_none());
    assert!(
        d.snapshot
            .notes
            .iter()
            .any(|n| n.tid == Some(parent) && n.message.contains("uninterruptible"))
    );
    let c = d
        .snapshot
        .process(child)
        .expect("the vfork child is captured");
    assert!(c.stopped && c.threads[0].registers.is_some());
    // The vfork child runs in its parent's memory until it execs: kcmp says so.
    assert_eq!(c.shares_vm_with, vec![parent]);
    assert_eq!(p.shares_vm_with, vec![child]);
    assert!(!any_stopped(parent) && !any_stopped(child));
    // SAFETY: kill(2) on the child of the probe this test started.
    unsafe { libc::kill(child, libc::SIGKILL) };
}

#[test]
fn memfd_executable_is_symbolized() {
    let launcher = probe("memfd_exec");
    let probe = start_blocked_threads(&[launcher.to_str().unwrap()]);
    let (d, out) = diagnose_json(probe.pid, &[]);
    assert_eq!(out.status.code(), Some(0));
    let p = d.snapshot.process(probe.pid).unwrap();
    let exe = p.exe.as_ref().expect("exe");
    assert_eq!(exe.memfd.as_deref(), Some("wedge-probe"), "{exe:?}");
    let main = p.thread(p.pid).expect("main thread");
    assert!(
        functions(main).iter().any(|f| f == "main"),
        "{:?}",
        functions(main)
    );
    assert!(
        functions(thread_by_name(p, "holder"))
            .iter()
            .any(|f| f == "holder")
    );
}

#[test]
fn process_in_another_mount_namespace_is_symbolized() {
    // The probe runs from a tmpfs mounted only inside its own mount namespace: its path does
    // not exist from wedge's point of view.
    let exe = probe("blocked_threads");
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("p");
    let script = format!(
        "mount -t tmpfs none {d} && cp {exe} {inner} && exec {inner}",
        d = dir.path().display(),
        exe = exe.display(),
        inner = inner.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let r = Running::start(cmd);
    let ready = r.wait_line("ready ", Duration::from_secs(10));
    let pid: i32 = ready["ready ".len()..].trim().parse().unwrap();
    assert!(
        !inner.exists(),
        "the binary is invisible outside the namespace"
    );
    assert!(wait_until(Duration::from_secs(5), || thread_named(
        pid, "waiter"
    )
    .is_some()));
    let (d, out) = diagnose_json(pid, &[]);
    assert_eq!(out.status.code(), Some(0));
    let p = d.snapshot.process(pid).unwrap();
    let main = p.thread(p.pid).expect("main thread");
    assert!(
        functions(main).iter().any(|f| f == "main"),
        "{:?}",
        functions(main)
    );
}

#[test]
fn sockets_are_described_from_the_socket_tables() {
    let script = "import socket,os,time\n\
a,b=socket.socketpair()\n\
s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
print('ready', a.fileno(), s.fileno(), flush=True)\n\
time.sleep(60)\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    let r = Running::start(cmd);
    let ready = r.wait_line("ready", Duration::from_secs(10));
    let fds: Vec<i32> = ready
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (d, out) = diagnose_json(r.pid, &[]);
    assert_eq!(out.status.code(), Some(0));
    let p = d.snapshot.process(r.pid).unwrap();
    let info = |fd: i32| match &p.fd(fd).unwrap().kind {
        FdKind::Socket { info, .. } => info.clone(),
        other => panic!("fd {fd} is {other:?}"),
    };
    match info(fds[0]) {
        Some(wedge::model::SocketInfo::Unix(u)) => assert_eq!(
            (u.socket_type.as_str(), u.state.as_str()),
            ("stream", "connected")
        ),
        other => panic!("{other:?}"),
    }
    match info(fds[1]) {
        Some(wedge::model::SocketInfo::Inet {
            protocol,
            local,
            state,
            ..
        }) => {
            assert_eq!(protocol, "tcp");
            assert!(local.starts_with("127.0.0.1:"));
            assert_eq!(state, "listen");
        }
        other => panic!("{other:?}"),
    }
}
