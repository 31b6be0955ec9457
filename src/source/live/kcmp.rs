//! Which processes of a captured tree share kernel objects, asked of the kernel with
//! kcmp(2): one address space (KCMP_VM: a vfork child before its exec, a clone with
//! CLONE_VM) or one fd table (KCMP_FILES: CLONE_FILES). Two processes sharing memory see
//! each other's writes to every lock and global; sharing an fd table, each other's
//! closes — the facts behind several hangs that look impossible from one process alone.

use crate::model::Process;

const KCMP_VM: i32 = 1;
const KCMP_FILES: i32 = 2;

/// Past this many processes, only parent and child are compared (the pairwise check is
/// quadratic).
const PAIRWISE_LIMIT: usize = 256;

/// kcmp(2): Some(true) when `a` and `b` share the object of kind `kind`.
fn same(a: i32, b: i32, kind: i32) -> Option<bool> {
    // SAFETY: kcmp takes plain integers and reads nothing from our memory.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a, b, kind, 0, 0) };
    (r >= 0).then_some(r == 0)
}

/// Fills `shares_vm_with` and `shares_files_with` of every process. Pairs kcmp refuses
/// (permissions, a process gone) are left out.
pub fn fill_sharing(procs: &mut [&mut Process]) {
    let pids: Vec<(i32, i32)> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let pairs: Vec<(usize, usize)> = if pids.len() <= PAIRWISE_LIMIT {
        (0..pids.len())
            .flat_map(|i| (i + 1..pids.len()).map(move |j| (i, j)))
            .collect()
    } else {
        (0..pids.len())
            .filter_map(|j| {
                let i = pids.iter().position(|(p, _)| *p == pids[j].1)?;
                Some((i, j))
            })
            .collect()
    };
    for (i, j) in pairs {
        let (a, b) = (pids[i].0, pids[j].0);
        if same(a, b, KCMP_VM) == Some(true) {
            procs[i].shares_vm_with.push(b);
            procs[j].shares_vm_with.push(a);
        }
        if same(a, b, KCMP_FILES) == Some(true) {
            procs[i].shares_files_with.push(b);
            procs[j].shares_files_with.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_shares_with_itself_and_not_with_its_parent() {
        let me = std::process::id() as i32;
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        assert_eq!(same(me, me, KCMP_VM), Some(true));
        assert_eq!(same(me, me, KCMP_FILES), Some(true));
        assert_eq!(same(me, parent, KCMP_VM), Some(false));
        assert_eq!(same(me, -1, KCMP_VM), None, "an error is no answer");
    }
}
