#!/usr/bin/env python3
"""Goroutine benchmark for docs/benchmarks.md.

Builds tests/go/goblocked (unstripped, so Delve and gdb can work at all) and runs it with
about 1k, 10k and 100k parked goroutines. For each size, every tool lists every goroutine
with its stack, RUNS times, interleaved:

  wedge diagnose PID                      (report to /dev/null; its pause_us from --json)
  dlv attach PID + goroutines -t          (Delve stops the process for its whole run)
  gdb -p PID + runtime-gdb.py 'info goroutines' (the list only: no stacks)

Prints a Markdown table of medians. Run from the repository root after
`cargo build --release`:  RUNS=3 python3 tests/bench/goroutines.py
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

RUNS = int(os.environ.get("RUNS", "3"))
SIZES = [int(x) for x in os.environ.get("SIZES", "250,2500,25000").split(",")]
TIMEOUT = int(os.environ.get("TOOL_TIMEOUT", "120"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEDGE = os.path.join(ROOT, "target", "release", "wedge")
OUT = os.path.join(ROOT, "target", "bench")


def build():
    os.makedirs(OUT, exist_ok=True)
    exe = os.path.join(OUT, "goblocked")
    env = dict(os.environ, CGO_ENABLED="0", GOCACHE=os.path.join(OUT, "gocache"), GOTOOLCHAIN="local")
    subprocess.run(["go", "build", "-o", exe, "."], cwd=os.path.join(ROOT, "tests", "go", "goblocked"),
                   env=env, check=True)
    return exe


def timed(cmd, stdin=None):
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=TIMEOUT)
        out = p.stdout
    except subprocess.TimeoutExpired:
        return None, b""
    return (time.perf_counter() - t0) * 1000.0, out


def main():
    exe = build()
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
    gdb_script = os.path.join(goroot, "src", "runtime", "runtime-gdb.py")
    rows = []
    for per_kind in SIZES:
        target = subprocess.Popen([exe, str(per_kind)], stdout=subprocess.PIPE, text=True)
        try:
            ready = target.stdout.readline().split()
            pid, count = ready[1], int(ready[2])
            res = {"wedge": [], "wedge_pause": [], "wedge_go_copy": [], "dlv": [], "gdb": []}
            for _ in range(RUNS):
                ms, out = timed([WEDGE, "diagnose", pid, "--color", "never"])
                res["wedge"].append(ms)
                _, js = timed([WEDGE, "diagnose", pid, "--json"])
                doc = json.loads(js)
                proc = doc["processes"][0]
                res["wedge_pause"].append(proc["pause_us"] / 1000.0)
                res["wedge_go_copy"].append((proc["go"].get("copy_us") or 0) / 1000.0)
                if shutil.which("dlv"):
                    ms, _ = timed(["dlv", "attach", pid, "--allow-non-terminal-interactive=true"],
                                  stdin=b"goroutines -t\nexit\nn\n")
                    res["dlv"].append(ms)
                if shutil.which("gdb") and os.path.exists(gdb_script):
                    # Only the list: runtime-gdb.py's 'goroutine all bt' does not finish in
                    # minutes at these sizes.
                    ms, _ = timed(["gdb", "-batch", "-p", pid, "-ex", f"source {gdb_script}",
                                   "-ex", "info goroutines"])
                    res["gdb"].append(ms)
            rows.append((count, res))
        finally:
            target.kill()
            target.wait()

    def med(v):
        done = [x for x in v if x is not None]
        if not v:
            return "–"
        if len(done) < len(v):
            return f"> {TIMEOUT * 1000:,} (timed out)"
        return f"{statistics.median(done):,.1f}"

    print(f"goblocked (unstripped, Go {subprocess.run(['go','version'],capture_output=True,text=True).stdout.split()[2]}),"
          f" {RUNS} runs per tool, interleaved; medians in ms. Delve and gdb stop the process for"
          f" their whole run, so their stop time is their wall time.\n")
    print("| goroutines | wedge stop (pause_us) | of which Go copy | wedge wall | dlv attach + goroutines -t | gdb + runtime-gdb.py (list only) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for count, r in rows:
        print(f"| {count:,} | {med(r['wedge_pause'])} | {med(r['wedge_go_copy'])} | {med(r['wedge'])} | {med(r['dlv'])} | {med(r['gdb'])} |")


if __name__ == "__main__":
    sys.exit(main())
