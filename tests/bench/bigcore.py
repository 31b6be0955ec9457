#!/usr/bin/env python3
"""Post-mortem benchmark for docs/benchmarks.md: `wedge core` on a large core.

Builds probes/bench/bigcore.c, lets it touch SIZE_MIB of heap, aborts it for a core of about
that size (plain file: core_pattern must not pipe), compresses a copy with zstd -1 (what
systemd-coredump stores), then times each tool RUNS times, interleaved, on the same core:
wall time and peak RSS (from wait4's rusage). Prints a Markdown table of medians. Run from
the repository root after `cargo build --release`:

    RUNS=5 SIZE_MIB=1024 python3 tests/bench/bigcore.py
"""
import os
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

RUNS = int(os.environ.get("RUNS", "5"))
SIZE = int(os.environ.get("SIZE_MIB", "1024"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEDGE = os.path.join(ROOT, "target", "release", "wedge")


def timed(cmd):
    """(wall seconds, peak RSS MiB) of one run of cmd."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed: status {status}")
    return wall, ru.ru_maxrss / 1024


def main():
    if open("/proc/sys/kernel/core_pattern").read().startswith("|"):
        raise SystemExit("core_pattern pipes cores: this benchmark needs a plain core file")
    work = tempfile.mkdtemp(prefix="wedge-bigcore-")
    exe = os.path.join(work, "bigcore")
    subprocess.run(["cc", "-O1", "-g", "-o", exe, os.path.join(ROOT, "probes/bench/bigcore.c")], check=True)
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    p = subprocess.Popen([exe, str(SIZE)], cwd=work, stdout=subprocess.PIPE)
    p.stdout.readline()
    p.send_signal(signal.SIGABRT)
    p.wait()
    core = os.path.join(work, "core")
    size = os.path.getsize(core)
    zst = core + ".zst"
    subprocess.run(["zstd", "-q", "-1", "-T0", core, "-o", zst], check=True)
    tools = {
        "wedge core": [WEDGE, "core", core, "--exe", exe],
        "wedge core (zstd)": [WEDGE, "core", zst, "--exe", exe],
        "gdb -batch bt": ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", exe, core],
        "eu-stack --core": ["eu-stack", "--core", core, "-e", exe],
    }
    tools = {k: v for k, v in tools.items() if shutil.which(v[0]) or os.path.exists(v[0])}
    results = {k: [] for k in tools}
    for _ in range(RUNS):
        for name, cmd in tools.items():
            results[name].append(timed(cmd))
    print(f"core: {size / 2**20:.0f} MiB, zstd -1: {os.path.getsize(zst) / 2**20:.1f} MiB, {RUNS} runs\n")
    print("| tool | wall (ms) | peak RSS (MiB) |")
    print("|---|---:|---:|")
    for name, rs in results.items():
        print(f"| {name} | {statistics.median(r[0] for r in rs) * 1000:.0f} | {statistics.median(r[1] for r in rs):.0f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
