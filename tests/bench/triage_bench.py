#!/usr/bin/env python3
"""`wedge triage` on 1,000 CI logs (issue 7's benchmark).

Writes N_LOGS (default 1000) GitHub-Actions-style logs into target/tmp/bench-triage/: each
is FILLER_LINES (default 2000) timestamped build and test lines with, in most logs, one real
dump from samples/logs/ rewritten as another run prints it (goroutine ids shifted, heap
addresses changed, other timestamps), in 8 subdirectories. Then times
`target/release/wedge triage DIR --format json` RUNS (default 5) times with the files in the
page cache and prints each run, the median (wall and CPU time), and how the failures grouped.

    cargo build --release && python3 tests/bench/triage_bench.py
"""
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_LOGS = int(os.environ.get("N_LOGS", "1000"))
FILLER = int(os.environ.get("FILLER_LINES", "2000"))
RUNS = int(os.environ.get("RUNS", "5"))
OUT = os.path.join(ROOT, "target", "tmp", "bench-triage")
# (sample, share of the logs): the rest of the logs are clean.
SAMPLES = [
    ("reader-race-probe-race-go1.19.txt", 0.20),
    ("go1.19-nil-deref.txt", 0.15),
    ("go1.25.5-nil-deref.txt", 0.10),
    ("go1.25.5-test-timeout.txt", 0.10),
    ("go1.19-deadlock.txt", 0.05),
    ("go1.25.5-race.txt", 0.05),
    ("go1.19-sigquit.txt", 0.05),
    ("memfd-stage-shared-nsexec.txt", 0.05),
]
WORDS = ["build", "cache", "layer", "sha256", "export", "image", "push", "pull", "step",
         "resolve", "done", "CACHED", "RUN", "COPY", "digest", "manifest", "config"]


def filler(rng, n, run):
    out = []
    for i in range(n):
        ts = "2026-01-%02dT03:%02d:%02d.%07dZ " % (run % 28 + 1, i // 60 % 60, i % 60, rng.randrange(10**7))
        k = rng.randrange(100)
        if k < 40:
            line = "#%d %d.%03d %s" % (rng.randrange(40), rng.randrange(100), rng.randrange(1000),
                                       " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12))))
        elif k < 60:
            line = "   Compiling crate-%d v0.%d.%d" % (rng.randrange(500), rng.randrange(30), rng.randrange(20))
        elif k < 75:
            line = "=== RUN   TestThing%d/case_%d" % (rng.randrange(1000), rng.randrange(50))
        elif k < 90:
            line = "--- PASS: TestThing%d (%d.%02ds)" % (rng.randrange(1000), rng.randrange(5), rng.randrange(100))
        else:
            line = 'time="2026-01-02T03:04:05Z" level=info msg="exporting layer sha256:%032x"' % rng.getrandbits(128)
        out.append(ts + line + "\n")
    return out


def rerun(text, run, rng):
    shift = run * 100
    text = re.sub(r"goroutine (\d+)", lambda m: "goroutine %d" % (int(m.group(1)) + shift), text)
    text = text.replace("0xc000", "0xc%03x" % (0x100 + run % 0xeff))
    return ["2026-01-%02dT05:%02d:%02d.%07dZ %s\n" % (run % 28 + 1, i // 60 % 60, i % 60, rng.randrange(10**7), l)
            for i, l in enumerate(text.splitlines())]


def generate():
    stamp = OUT + ".done-%d-%d" % (N_LOGS, FILLER)
    if os.path.exists(stamp):
        return
    shutil.rmtree(OUT, ignore_errors=True)
    for old in os.listdir(os.path.dirname(OUT)):
        if old.startswith(os.path.basename(OUT) + ".done-"):
            os.remove(os.path.join(os.path.dirname(OUT), old))
    rng = random.Random(7)
    texts = {}
    for name, _ in SAMPLES:
        with open(os.path.join(ROOT, "samples", "logs", name)) as f:
            texts[name] = f.read()
    for run in range(N_LOGS):
        x, pick = rng.random(), None
        for name, share in SAMPLES:
            if x < share:
                pick = name
                break
            x -= share
        lines = filler(rng, FILLER, run)
        if pick:
            at = rng.randrange(len(lines))
            lines[at:at] = rerun(texts[pick], run, rng)
        d = os.path.join(OUT, "job-%d" % (run % 8))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "run-%04d.log" % run), "w") as f:
            f.writelines(lines)
    open(stamp, "w").close()


def main():
    generate()
    wedge = os.path.join(ROOT, "target", "release", "wedge")
    total = 0
    for dirpath, _, files in os.walk(OUT):
        for n in files:
            p = os.path.join(dirpath, n)
            total += os.path.getsize(p)
            with open(p, "rb") as f:  # page cache
                f.read()
    times, cpus, doc = [], [], None
    for r in range(RUNS):
        t = time.perf_counter()
        p = subprocess.Popen([wedge, "triage", OUT, "--format", "json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1, 6):
            sys.exit("wedge triage failed: %d %s" % (code, p.stderr.read().decode()))
        doc = json.loads(out)
        cpu = ru.ru_utime + ru.ru_stime
        times.append(dt)
        cpus.append(cpu)
        print("run %d: wall %.3f s, cpu %.3f s, max RSS %d MiB, exit %d" % (
            r + 1, dt, cpu, ru.ru_maxrss >> 10, code))
    print("%d logs, %d bytes; median of %d: wall %.3f s (%.2f ms per log), cpu %.3f s" % (
        doc["files"]["logs"], total, RUNS, statistics.median(times),
        statistics.median(times) * 1000 / max(1, doc["files"]["logs"]), statistics.median(cpus)))
    db = OUT + ".sqlite"
    for n in range(2):
        if n == 0 and os.path.exists(db):
            os.remove(db)
        t = time.perf_counter()
        p = subprocess.run([wedge, "triage", OUT, "--format", "json", "--db", db], capture_output=True)
        if p.returncode not in (0, 1, 6):
            sys.exit("wedge triage --db failed: %d %s" % (p.returncode, p.stderr.decode()))
        print("with --db (%s database): wall %.3f s" % ("new" if n == 0 else "existing",
                                                        time.perf_counter() - t))
    for g in doc["groups"]:
        print("  %5d  %-9s %s  %s" % (g["count"], g["status"], g["fingerprint"], g["title"][:70]))


if __name__ == "__main__":
    main()
