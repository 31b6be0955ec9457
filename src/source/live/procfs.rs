//! TEMPORARY stand-in (replaced by the wip-procfs branch): just enough /proc to test the freeze.
use crate::model::{Arch, Fd, Host, Mapping, Process, Thread};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("process {pid} is gone")]
    Gone { pid: i32 },
    #[error("permission denied reading {path}")]
    PermissionDenied { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot parse {what}")]
    Parse { path: String, what: String },
}

fn read(pid: i32, path: String) -> Result<String, ProcError> {
    std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProcError::Gone { pid },
        _ => ProcError::Io { path, source: e },
    })
}

pub fn host() -> Host {
    Host {
        kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .into(),
        arch: Arch::native(),
        page_size: 4096,
        clock_ticks_per_second: 100,
    }
}

pub fn read_process(pid: i32) -> Result<Process, ProcError> {
    let stat = read(pid, format!("/proc/{pid}/stat"))?;
    let close = stat.rfind(')').unwrap_or(0);
    let comm = stat[stat.find('(').unwrap_or(0) + 1..close].to_string();
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    Ok(Process {
        pid,
        ppid: f.get(1).and_then(|x| x.parse().ok()).unwrap_or(0),
        comm,
        state: f.first().unwrap_or(&"?").to_string(),
        cmdline: read(pid, format!("/proc/{pid}/cmdline"))?
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        ..Default::default()
    })
}

pub fn list_tids(pid: i32) -> Result<Vec<i32>, ProcError> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|_| ProcError::Gone { pid })?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    Ok(v)
}

pub fn read_thread(pid: i32, tid: i32, _arch: Arch) -> Result<Thread, ProcError> {
    let stat = read(pid, format!("/proc/{pid}/task/{tid}/stat"))?;
    let close = stat.rfind(')').unwrap_or(0);
    Ok(Thread {
        tid,
        name: read(pid, format!("/proc/{pid}/task/{tid}/comm"))?
            .trim()
            .into(),
        state: stat[close + 2..close + 3].to_string(),
        wchan: std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).ok(),
        ..Default::default()
    })
}

pub fn read_fds(_pid: i32) -> (Vec<Fd>, Vec<String>) {
    (Vec::new(), Vec::new())
}

pub fn read_mappings(pid: i32) -> Result<Vec<Mapping>, ProcError> {
    let text = read(pid, format!("/proc/{pid}/maps"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (s, e) = it.next()?.split_once('-')?;
            let perms = it.next()?.to_string();
            let offset = u64::from_str_radix(it.next()?, 16).ok()?;
            let dev = it.next()?.to_string();
            let inode = it.next()?.parse().ok()?;
            let path: Vec<&str> = it.collect();
            Some(Mapping {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                perms,
                offset,
                dev,
                inode,
                path: if path.is_empty() {
                    None
                } else {
                    Some(path.join(" "))
                },
                ..Default::default()
            })
        })
        .collect())
}

pub fn descendants(root: i32) -> Vec<i32> {
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                && let Ok(p) = read_process(pid)
            {
                all.push((pid, p.ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &all {
            if pp == p {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}
