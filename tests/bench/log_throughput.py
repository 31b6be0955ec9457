#!/usr/bin/env python3
"""`wedge log` throughput on a generated CI log (issue 6's benchmark).

Writes SIZE_MIB (default 1024) MiB of GitHub-Actions-style lines — timestamps, compiler and
test output, ~4% logrus `level=info` lines, `##[group]` markers — with a few real dumps from
samples/logs/ (wrapped in the same timestamps) spread through it, then times
`target/release/wedge log FILE --json` RUNS (default 3) times with the file in the page
cache, and prints each run and the median in MB/s (10^6 bytes per second), both of wall time
and of CPU time (user + system: what the scan costs when the machine is shared).

    cargo build --release && python3 tests/bench/log_throughput.py
"""
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = int(os.environ.get("SIZE_MIB", "1024")) << 20
RUNS = int(os.environ.get("RUNS", "3"))
OUT = os.path.join(ROOT, "target", "tmp", "bench-ci.log")
DUMPS = [
    "go1.19-nil-deref.txt",
    "go1.19-sigquit-gotraceback-crash.txt",
    "go1.25.5-race.txt",
    "go1.25.5-test-timeout.txt",
    "memfd-stage-shared-nsexec.txt",
]


def ordinary_block(rng, n):
    words = ["build", "cache", "layer", "sha256", "export", "image", "push", "pull", "step",
             "resolve", "done", "CACHED", "RUN", "COPY", "digest", "manifest", "config"]
    lines = []
    for i in range(n):
        ts = "2026-01-02T03:%02d:%02d.%07dZ " % (i // 3600 % 60, i // 60 % 60, rng.randrange(10**7))
        k = rng.randrange(100)
        if k < 40:
            line = "#%d %d.%03d %s" % (rng.randrange(40), rng.randrange(100), rng.randrange(1000),
                                       " ".join(rng.choice(words) for _ in range(rng.randrange(3, 12))))
        elif k < 60:
            line = "   Compiling crate-%d v0.%d.%d (/home/runner/work/src/crate-%d)" % (
                rng.randrange(500), rng.randrange(30), rng.randrange(20), rng.randrange(500))
        elif k < 75:
            line = "=== RUN   TestThing%d/case_%d" % (rng.randrange(1000), rng.randrange(50))
        elif k < 88:
            line = "--- PASS: TestThing%d (%d.%02ds)" % (rng.randrange(1000), rng.randrange(5), rng.randrange(100))
        elif k < 92:
            line = 'time="2026-01-02T03:04:05Z" level=info msg="exporting layer sha256:%032x"' % rng.getrandbits(128)
        elif k < 93:
            line = "##[group]Run make test-%d" % rng.randrange(100)
        elif k < 94:
            line = "##[endgroup]"
        else:
            line = "ok  \tgithub.com/example/pkg%d\t%d.%03ds" % (rng.randrange(200), rng.randrange(9), rng.randrange(1000))
        lines.append(ts + line + "\n")
    return "".join(lines).encode()


def wrapped(name):
    with open(os.path.join(ROOT, "samples", "logs", name), "rb") as f:
        text = f.read().decode()
    return "".join("2026-01-02T04:05:06.%07dZ %s\n" % (i, l) for i, l in enumerate(text.splitlines())).encode()


def generate():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    if os.path.exists(OUT) and os.path.getsize(OUT) >= SIZE:
        return
    rng = random.Random(6)
    blocks = [ordinary_block(rng, 40000) for _ in range(4)]
    dumps = [wrapped(n) for n in DUMPS]
    every = SIZE // (len(dumps) + 1)
    written, next_dump, i = 0, every, 0
    with open(OUT + ".tmp", "wb") as f:
        while written < SIZE:
            b = blocks[i % len(blocks)]
            f.write(b)
            written += len(b)
            i += 1
            if dumps and written >= next_dump:
                d = dumps.pop(0)
                f.write(d)
                written += len(d)
                next_dump += every
    os.rename(OUT + ".tmp", OUT)


def main():
    generate()
    wedge = os.path.join(ROOT, "target", "release", "wedge")
    size = os.path.getsize(OUT)
    subprocess.run(["cat", OUT], stdout=subprocess.DEVNULL, check=True)  # page cache
    times, cpus = [], []
    for r in range(RUNS):
        t = time.perf_counter()
        p = subprocess.Popen([wedge, "log", OUT, "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            sys.exit("wedge log failed: %d %s" % (code, p.stderr.read().decode()))
        cpu = ru.ru_utime + ru.ru_stime
        times.append(dt)
        cpus.append(cpu)
        print("run %d: wall %.3f s (%.0f MB/s), cpu %.3f s (%.0f MB/s), max RSS %d MiB, exit %d" % (
            r + 1, dt, size / dt / 1e6, cpu, size / cpu / 1e6, ru.ru_maxrss >> 10, code))
    med, medc = statistics.median(times), statistics.median(cpus)
    print("file %s: %d bytes; median of %d: wall %.3f s = %.0f MB/s, cpu %.3f s = %.0f MB/s" % (
        OUT, size, RUNS, med, size / med / 1e6, medc, size / medc / 1e6))


if __name__ == "__main__":
    main()
