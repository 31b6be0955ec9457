#!/usr/bin/env python3
"""Support-bundle benchmark for docs/benchmarks.md: `wedge bundle` of a 50-process tree.

Starts a shell that forks 49 `sleep` children (50 processes), then, RUNS times and
interleaved on the same tree: `wedge diagnose PID --json` (the capture alone, for
reference), `wedge bundle PID -o F` and `wedge bundle PID -o F --with-binaries`. Prints a
Markdown table of median wall time, bundle size and member count. Run from the repository
root after `cargo build --release`:

    RUNS=5 python3 tests/bench/bundle_bench.py
"""
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time

RUNS = int(os.environ.get("RUNS", "5"))
PROCS = int(os.environ.get("PROCS", "50"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEDGE = os.path.join(ROOT, "target", "release", "wedge")


def timed(cmd):
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - start
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed: {p.returncode}")
    return wall, p.stdout


def main():
    work = tempfile.mkdtemp(prefix="wedge-bundle-bench-")
    tree = subprocess.Popen(
        ["sh", "-c", f"for i in $(seq {PROCS - 1}); do sleep 1000 & done; echo ready; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    tree.stdout.readline()
    pid = str(tree.pid)
    out = os.path.join(work, "b.tar.zst")
    rows = {"diagnose --json": [], "bundle": [], "bundle --with-binaries": []}
    sizes = {}
    try:
        for _ in range(RUNS):
            rows["diagnose --json"].append(timed([WEDGE, "diagnose", pid, "--json"])[0])
            for name, extra in (("bundle", []), ("bundle --with-binaries", ["--with-binaries"])):
                wall, stdout = timed([WEDGE, "bundle", pid, "-o", out, "--json"] + extra)
                rows[name].append(wall)
                info = json.loads(stdout)
                sizes[name] = (info["size"], info["members"])
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()
    print(f"{PROCS}-process tree, {RUNS} runs, medians\n")
    print("| command | wall (ms) | bundle size | members |")
    print("|---|---:|---:|---:|")
    for name, walls in rows.items():
        size, members = sizes.get(name, (None, None))
        size_s = f"{size / 1024:.0f} KiB" if size else "–"
        print(f"| wedge {name} | {statistics.median(walls) * 1000:.0f} | {size_s} | {members or '–'} |")


if __name__ == "__main__":
    main()
