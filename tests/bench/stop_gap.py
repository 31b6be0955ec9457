#!/usr/bin/env python3
"""Stop-time benchmark for docs/benchmarks.md.

Starts probes/bench/gap64 (64 threads sleeping 200 us in a loop, recording the longest gap
between wake-ups) and runs each tool on it in turn, RUNS times, interleaved so that all tools
see the same machine conditions. For each run it records the tool's wall time and the longest
gap the target saw while the tool ran: how long the tool stopped it. Prints a Markdown table
of medians. Run from the repository root after `cargo build --release`:

    RUNS=7 python3 tests/bench/stop_gap.py
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

RUNS = int(os.environ.get("RUNS", "7"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEDGE = os.path.join(ROOT, "target", "release", "wedge")
OUT = os.path.join(ROOT, "target", "bench")


def main():
    os.makedirs(OUT, exist_ok=True)
    gap64 = os.path.join(OUT, "gap64")
    subprocess.run(["cc", "-O2", "-g", "-pthread", "-o", gap64,
                    os.path.join(ROOT, "probes", "bench", "gap64.c")], check=True)
    if not os.path.exists(WEDGE):
        sys.exit("build wedge first: cargo build --release")
    target = subprocess.Popen([gap64], stdout=subprocess.PIPE, text=True)
    try:
        ready = target.stdout.readline()
        pid = int(ready.split()[1])
        time.sleep(0.5)

        def gap():
            target.send_signal(signal.SIGUSR2)
            line = target.stdout.readline()
            return int(line.split()[1])

        tools = {"no tool (baseline jitter)": ["true"],
                 "wedge diagnose": [WEDGE, "diagnose", str(pid), "--json"]}
        if shutil.which("eu-stack"):
            tools["eu-stack -p"] = ["eu-stack", "-p", str(pid)]
        if shutil.which("gdb"):
            tools["gdb -batch 'thread apply all bt'"] = [
                "gdb", "-batch", "-p", str(pid), "-ex", "thread apply all bt"]
        results = {name: {"gap": [], "wall": [], "pause": []} for name in tools}
        for _ in range(RUNS):
            for name, cmd in tools.items():
                gap()  # start a fresh interval
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                wall = time.perf_counter() - t0
                time.sleep(0.05)
                results[name]["gap"].append(gap() / 1000.0)
                results[name]["wall"].append(wall * 1000.0)
                if name.startswith("wedge"):
                    doc = json.loads(proc.stdout)
                    pauses = [p["pause_us"] for p in doc["processes"] if p.get("pause_us")]
                    results[name]["pause"].append(max(pauses) / 1000.0)
        print(f"Target: gap64 (64 threads), {RUNS} runs per tool, interleaved; medians.\n")
        print("| tool | longest stop seen by the target (ms) | tool's own pause_us (ms) | wall time (ms) |")
        print("|---|---:|---:|---:|")
        for name, r in results.items():
            pause = f"{statistics.median(r['pause']):.2f}" if r["pause"] else "–"
            print(f"| {name} | {statistics.median(r['gap']):.2f} | {pause} | "
                  f"{statistics.median(r['wall']):.1f} |")
    finally:
        target.kill()
        target.wait()


if __name__ == "__main__":
    main()
