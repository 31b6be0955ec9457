#!/usr/bin/env python3
"""Overhead benchmark of `wedge trace` for docs/benchmarks.md (issue 8).

A build-like workload that forks and execs a lot: a shell loop running N short processes
(`sh -c 'for i in $(seq N); do /bin/true; done'`). Its wall time is measured RUNS times,
interleaved, for each way of running it:

  plain                                     the loop alone
  wedge trace                               (report to /dev/null)
  wedge trace --exec-entry                  (plus a seccomp stop at every exec entry)
  strace -f -e trace=process -o /dev/null   (if strace is installed: apt-get install strace)

Prints a Markdown table of medians and the added wall time relative to plain. Run from the
repository root after `cargo build --release`:  RUNS=7 N=2000 python3 tests/bench/trace_overhead.py
"""
import os
import shutil
import statistics
import subprocess
import time

RUNS = int(os.environ.get("RUNS", "7"))
N = int(os.environ.get("N", "2000"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEDGE = os.path.join(ROOT, "target", "release", "wedge")


def timed(cmd):
    """(wall seconds, CPU seconds user + sys of the whole tree, the tracer included)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: status {status}")
    return wall, ru.ru_utime + ru.ru_stime


def main():
    loop = ["sh", "-c", f"for i in $(seq {N}); do /bin/true; done"]
    ways = [
        ("plain", loop),
        ("wedge trace", [WEDGE, "trace", "--"] + loop),
        ("wedge trace --exec-entry", [WEDGE, "trace", "--exec-entry", "--"] + loop),
    ]
    if shutil.which("strace"):
        ways.append(
            ("strace -f -e trace=process", ["strace", "-f", "-e", "trace=process", "-o", "/dev/null"] + loop)
        )
    else:
        print("strace not installed (apt-get install strace): its row is left out")
    walls = {name: [] for name, _ in ways}
    cpus = {name: [] for name, _ in ways}
    timed(loop)  # warm the page cache
    for _ in range(RUNS):
        for name, cmd in ways:
            wall, cpu = timed(cmd)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base = statistics.median(walls["plain"])
    cbase = statistics.median(cpus["plain"])
    print(f"{N} processes, median of {RUNS} runs, {os.cpu_count()} CPUs, kernel {os.uname().release}\n")
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    print("| how | wall (median) | added wall | CPU user+sys (median) | added CPU |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in ways:
        m = statistics.median(walls[name])
        c = statistics.median(cpus[name])
        print(
            f"| {name} | {m:.3f} s | {100 * (m - base) / base:+.1f}% | {c:.3f} s | {100 * (c - cbase) / cbase:+.1f}% |"
        )


if __name__ == "__main__":
    main()
