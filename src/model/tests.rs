use super::*;
use std::collections::BTreeMap;

/// A snapshot that uses every kind of field, so the round trip covers them all.
fn rich_snapshot() -> Snapshot {
    let mut s = Snapshot::new(
        Source::Live {
            pid: 42,
            stopped: true,
            children: true,
        },
        Host {
            kernel_release: "6.1.0".into(),
            arch: Some(Arch::X86_64),
            page_size: 4096,
            clock_ticks_per_second: 100,
        },
    );
    let mut regs = BTreeMap::new();
    regs.insert("rip".to_string(), 0x401000u64);
    regs.insert("rsp".to_string(), 0x7ffc0000u64);
    let mut frame = Frame::bare(0x401000, 0x7ffc0000, FrameTrust::Context);
    frame.function = Some("main".into());
    frame.symbol_source = Some(SymbolSource::Symtab);
    frame.inlined.push(InlinedFrame {
        function: "helper".into(),
        file: Some("a.c".into()),
        line: Some(3),
    });
    let thread = Thread {
        tid: 42,
        nstid: Some(1),
        name: "probe".into(),
        state: "S".into(),
        wchan: Some("futex_wait_queue".into()),
        syscall: Some(Syscall {
            nr: 202,
            name: Some("futex".into()),
            args: vec![0x1000, 0x80, 2, 0, 0, 0],
            decoded: Some("futex(0x1000, FUTEX_WAIT_PRIVATE, 2)".into()),
            from: "registers".into(),
            futex: Some(FutexWord {
                addr: 0x1000,
                op: 0x80,
                op_name: "FUTEX_WAIT".into(),
                private: true,
                expected: 2,
                value: Some(2),
                after: vec![1, 4242, 0],
            }),
            path: None,
        }),
        kernel_stack: vec!["futex_wait_queue+0x60/0x90".into()],
        registers: Some(Registers {
            arch: Arch::X86_64,
            values: regs,
        }),
        stack: Some(StackCopy {
            start: 0x7ffbf000,
            len: 8192,
            sp: 0x7ffc0000,
            truncated: false,
        }),
        frames: vec![frame],
        unwind_stop: Some("no unwind info".into()),
        stopped: true,
        redelivered_signal: Some(10),
    };
    let fd_kinds = vec![
        FdKind::File {
            path: "/etc/passwd".into(),
            deleted: false,
        },
        FdKind::Pipe { inode: 77 },
        FdKind::Socket {
            inode: 78,
            info: Some(SocketInfo::Unix(UnixSocket {
                path: Some("@x".into()),
                socket_type: "stream".into(),
                state: "connected".into(),
                peer_inode: Some(79),
                recv_queue: Some(0),
            })),
        },
        FdKind::Memfd {
            name: "runc_cloned".into(),
            seals: Some(0x1f),
        },
        FdKind::Eventfd { count: Some(1) },
        FdKind::Epoll {
            targets: vec![EpollTarget {
                fd: 3,
                events: 0x19,
                data: 7,
                inode: Some(77),
            }],
        },
        FdKind::Inotify {
            watches: vec![InotifyWatch {
                wd: 1,
                inode: 5,
                dev: "fd:01".into(),
                mask: 0x100,
            }],
        },
        FdKind::Other,
    ];
    let fds = fd_kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Fd {
            fd: i as i32,
            target: format!("target{i}"),
            flags: Some(0o2000002),
            pos: Some(0),
            mnt_id: Some(29),
            inode: Some(i as u64),
            kind,
        })
        .collect();
    let mut ns = BTreeMap::new();
    ns.insert("mnt".to_string(), 4026531841u64);
    s.processes.push(Process {
        pid: 42,
        ppid: 1,
        nspid: vec![42, 1],
        comm: "probe".into(),
        cmdline: vec!["./probe".into(), "--buggy".into()],
        exe: Some(Exe {
            path: "/memfd:x (deleted)".into(),
            deleted: true,
            memfd: Some("x".into()),
            seals: Some(0x1f),
        }),
        state: "S".into(),
        uid: [0, 0, 0, 0],
        gid: [0, 0, 0, 0],
        namespaces: ns,
        cgroup: vec!["0::/".into()],
        start_time: 12345,
        tracer_pid: 0,
        stopped: true,
        pause_us: Some(812),
        threads: vec![thread],
        fds,
        mappings: vec![Mapping {
            start: 0x400000,
            end: 0x401000,
            perms: "r-xp".into(),
            offset: 0,
            dev: "fd:01".into(),
            inode: 99,
            path: Some("/memfd:x (deleted)".into()),
            rss_kb: Some(4),
            vm_flags: vec!["rd".into(), "ex".into()],
            ..Default::default()
        }],
        shares_vm_with: vec![43],
        auxv: [("AT_PAGESZ".to_string(), 4096u64)].into_iter().collect(),
        shares_files_with: vec![],
        signal: Some(CrashSignal {
            goroutine: None,
            signo: 11,
            code: 1,
            addr: Some(0x20),
            tid: Some(42),
        }),
        go: Some(GoProcess {
            version: "go1.19.8".into(),
            main_module: Some(GoModule {
                path: "example.com/x".into(),
                version: "(devel)".into(),
                ..Default::default()
            }),
            dependencies: vec![GoModule {
                path: "golang.org/x/sys".into(),
                version: "v0.1.0".into(),
                sum: Some("h1:abc=".into()),
                replaced_by: Some(Box::new(GoModule {
                    path: "../sys".into(),
                    version: "(devel)".into(),
                    ..Default::default()
                })),
            }],
            build_settings: vec![("CGO_ENABLED".into(), "1".into())],
            allgs_found_by: Some("allgadd".into()),
            layout_from: Some("table".into()),
            goroutines: vec![Goroutine {
                id: 7,
                status: "waiting".into(),
                wait_reason: Some("chan receive".into()),
                waited_ns: Some(60_000_000_000),
                thread: None,
                locked_to_thread: false,
                system: false,
                frames: vec![Frame::bare(0x401000, 0xc000040000, FrameTrust::Pclntab)],
                created_by: Some(Frame::bare(0x401234, 0, FrameTrust::Pclntab)),
                parent_id: Some(1),
                g_addr: 0xc000002000,
                unwind_stop: None,
                fault: Some(crate::model::GoFault {
                    signo: 11,
                    addr: 0x20,
                    pc: 0x48407b,
                }),
            }],
            goroutines_note: None,
            copy_us: Some(120),
            copy_bytes: Some(4096),
            races: vec![crate::model::DataRace {
                stacks: vec![crate::model::RaceStack {
                    heading: "Read at 0x00c000012345 by goroutine 7".into(),
                    kind: "read".into(),
                    addr: Some(0xc000012345),
                    goroutine: Some(7),
                    frames: vec![Frame::bare(0, 0, FrameTrust::Text)],
                }],
            }],
        }),
    });
    s.note(Some(42), None, "something was missing");
    s
}

#[test]
fn snapshot_round_trips_through_json() {
    let s = rich_snapshot();
    let json = serde_json::to_string_pretty(&s).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(json.contains("\"schema_version\": 1"));
}

#[test]
fn diagnosis_flattens_snapshot_beside_findings() {
    let d = Diagnosis {
        snapshot: rich_snapshot(),
        findings: vec![Finding {
            id: "x".into(),
            title: "t".into(),
            confidence: Confidence::Likely,
            evidence: vec![Evidence {
                pid: Some(42),
                text: "e".into(),
                ..Default::default()
            }],
            explanation: "why".into(),
            workaround: None,
            fixed_in: Some("1.0".into()),
            references: vec!["org/repo#1".into()],
        }],
    };
    let v: serde_json::Value = serde_json::to_value(&d).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["findings"][0]["id"], "x");
    let back: Diagnosis = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
}

#[test]
fn mapping_helpers_read_perms_and_memfd_names() {
    let m = Mapping {
        perms: "rw-s".into(),
        path: Some("/memfd:runc_cloned:/proc/self/exe (deleted)".into()),
        ..Default::default()
    };
    assert!(m.is_write() && m.is_shared() && !m.is_exec());
    assert_eq!(m.memfd_name(), Some("runc_cloned:/proc/self/exe"));
    assert!(m.is_deleted());
}
