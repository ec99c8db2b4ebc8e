#!/usr/bin/env python3
"""go_bench.py — what tracing costs a Go service (issue 12): a database/sql
loop (QueryRow + Scan, prepared and unprepared, one connection) on
mattn/go-sqlite3 linked statically (bench/go/gobench.go: SQLite's C
functions probed), stripped (SQLite found through its extension API table)
and not, and stripped against a SQLite without that table (found through
the cgo wrappers; another probe set: see docs/finding-sqlite.md), and on a
pure-Go driver (bench/go/gobench_pure.go: probed at
database/sql), stripped and not; timed by the program's own clock untraced
and traced in the same run, alternating, ROUNDS times each; the medians are
compared. Traced runs store into a local trace
file, as a user would; entries captured and ring-buffer drops are read from
it and from the summary.

Usage: sudo bench/go_bench.py [--build DIR] [--calls N] [--rounds N]
                              [--update-doc docs/performance.md]
With --update-doc the text between <!-- go-bench --> and <!-- /go-bench -->
in that file is replaced with this run's table. `make bench` runs it after
bench/run.py; `make bench-go` runs it alone.
"""
import argparse
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

BEGIN, END = "<!-- go-bench -->", "<!-- /go-bench -->"
# (binary, driver, DSN or None for a file, query the loop runs, label)
VARIANTS = [
    ("gobench-static", "sqlite3", None, "SELECT ? + 0", "mattn, static"),
    ("gobench-static-stripped", "sqlite3", None, "SELECT ? + 0", "mattn, static, stripped"),
    ("gobench-nolx-stripped", "sqlite3", None, "SELECT ? + 0",
     "mattn, static, stripped, no API table (cgo wrappers)"),
    ("gobench-pure", "memsqlite", "bench", "SELECT * FROM t WHERE k = ?", "pure Go (database/sql)"),
    ("gobench-pure-stripped", "memsqlite", "bench", "SELECT * FROM t WHERE k = ?",
     "pure Go (database/sql), stripped"),
]


def readline(f, timeout=60):
    end = time.time() + timeout
    buf = b""
    while time.time() < end:
        ch = f.read(1)
        if not ch:
            break
        if ch == b"\n":
            return buf.decode()
        buf += ch
    return buf.decode()


def one_run(exe, driver, dsn, query, mode, calls, tool, traced, tmp):
    """Returns (ns per call, entries captured, drops) of one run."""
    db = dsn or os.path.join(tmp, "bench.db")
    store = os.path.join(tmp, "traces.db")
    for p in (store, store + "-wal", store + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    t = subprocess.Popen([exe, driver, db, mode, str(calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = readline(t.stdout)
    if not line.startswith("ready"):
        t.kill()
        raise SystemExit("gobench did not start: %r" % line)
    tr = None
    if traced:
        tr = subprocess.Popen([tool, "-p", str(t.pid), "-o", store], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        while True:
            l = readline(tr.stderr)
            if not l:
                raise SystemExit("tracer did not attach")
            if "tracing" in l:
                break
    t.stdin.write(b"go\n")
    t.stdin.flush()
    line = readline(t.stdout, 600)
    if not line.startswith("ns_per_op"):
        raise SystemExit("gobench: %r" % line)
    ns = int(line.split()[1])
    t.stdin.write(b"bye\n")
    t.stdin.flush()
    t.wait(timeout=60)
    entries = drops = 0
    if tr:
        tr.send_signal(signal.SIGINT)
        err = tr.stderr.read().decode()
        tr.wait(timeout=60)
        m = re.search(r"(\d+) entries, .*?(\d+) ring-buffer drops", err)
        drops = int(m.group(2)) if m else -1
        with sqlite3.connect("file:%s?mode=ro" % store, uri=True) as c:
            entries = c.execute("SELECT count(*) FROM sql_traces WHERE query = ?", (query,)).fetchone()[0]
    return ns, entries, drops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--update-doc")
    a = ap.parse_args()
    tool = os.path.join(a.build, "sqltrace-bpf")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for binary, driver, dsn, query, variant in VARIANTS:
            exe = os.path.join(a.build, "bench", binary)
            for mode in ("unprepared", "prepared"):
                base, traced, ents, drops = [], [], [], []
                for _ in range(a.rounds):
                    base.append(one_run(exe, driver, dsn, query, mode, a.calls, tool, False, tmp)[0])
                    ns, e, d = one_run(exe, driver, dsn, query, mode, a.calls, tool, True, tmp)
                    traced.append(ns)
                    ents.append(e)
                    drops.append(d)
                b, t = statistics.median(base), statistics.median(traced)
                rows.append((variant, mode, b, t, t - b, t / b, min(ents), max(drops)))
                print("%-34s %-10s untraced %6.0f ns  traced %6.0f ns  +%5.0f ns (x%.2f)  entries %d/%d  drops %d"
                      % (variant, mode, b, t, t - b, t / b, min(ents), a.calls, max(drops)), flush=True)
    table = ["| program | database/sql call | untraced ns/call | traced ns/call | added | "
             "ratio | entries (of %d) | drops |" % a.calls, "|---|---|---|---|---|---|---|---|"]
    for v, m, b, t, d, r, e, dr in rows:
        table.append("| %s | %s | %.0f | %.0f | %+.0f | %.2f | %d | %d |" % (v, m, b, t, d, r, e, dr))
    text = ("Go service workload (`bench/go/gobench.go` on mattn/go-sqlite3: `SELECT ? + 0`; "
            "`bench/go/gobench_pure.go` on the tests' pure-Go driver: `SELECT * FROM t WHERE k = ?`; "
            "`QueryRow` + `Scan`, one connection; median of %d alternated runs of %d calls each, by the "
            "program's clock; traced = default mode storing to a local file). "
            "Reproduce: `sudo make bench-go`.\n\n%s\n" % (a.rounds, a.calls, "\n".join(table)))
    print(text)
    if a.update_doc:
        doc = open(a.update_doc).read()
        if BEGIN in doc and END in doc:
            i, j = doc.index(BEGIN) + len(BEGIN), doc.index(END)
            doc = doc[:i] + "\n" + text + doc[j:]
        else:
            doc += "\n## Go services (database/sql)\n\n%s\n%s%s\n" % (BEGIN, text, END)
        with open(a.update_doc, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    sys.exit(main())
