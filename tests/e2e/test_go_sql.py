#!/usr/bin/env python3
"""test_go_sql.py — Go executables with no C SQLite, traced at Go's
database/sql layer (bpf/gosql.bpf.c): our pure-Go driver's program
(tests/targets/go/puresql), built with symbols, stripped and as a
position-independent executable, attached with
-p, -b (started later), -n and as the command. Every call the program
made is compared with what it measured itself (argv[1], JSON lines; failed Prepare calls included): count,
text, Op, error, rows (Query: every row read; QueryRow: 1 or 0) and duration
(never longer than the program's own measurement: around the call, or
until its Rows were closed); the program's own output must be unchanged.
"""
import collections
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGETS, TOOL, Fail, Target, Tracer, check, eq, main,  # noqa: E402
                     need_bpf, run_tool, test)

PLAIN = os.path.join(TARGETS, "go-puresql")
STRIPPED = os.path.join(TARGETS, "go-puresql-stripped")
PIE = os.path.join(TARGETS, "go-puresql-pie")
SLOW_US = 150000  # SELECT sleep(150)
GO_MAX_CALLS = 16384  # bpf/gosql.h: calls in progress the BPF side follows


def untraced_output(exe):
    with tempfile.TemporaryDirectory() as d:
        t = Target([exe, os.path.join(d, "m.json")])
        try:
            t.go()
            return strip_pid(t.finish())
        finally:
            t.kill()


def strip_pid(out):
    return "\n".join(l for l in out.splitlines() if not l.startswith("ready"))


def measured(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def compare(entries, ran):
    """Entries against the calls the program measured: the same multiset of
    (op, query, error, rows), and per such group the durations, sorted, each
    no longer than the program's measurement (+1 µs of rounding): for a
    Query whose rows were counted, until its Rows were closed."""
    eq(len(entries), len(ran), "entries (one per database/sql call)")
    got = collections.defaultdict(list)
    want = collections.defaultdict(list)
    for e in entries:
        got[(e["op"], e["query"], e.get("error", ""), e.get("rows", -1))].append(e["duration"] // 1000)
    for m in ran:
        rows = m.get("rows")
        want[(m["op"], m["query"], m["error"], -1 if rows is None else rows)].append(m["us"])
    eq(sorted((k, len(v)) for k, v in got.items()), sorted((k, len(v)) for k, v in want.items()),
       "(op, query, error, rows) of every call")
    for k in want:
        for g, w in zip(sorted(got[k]), sorted(want[k])):
            check(g <= w + 1, "%s took %d µs traced, longer than the %d µs the program measured" % (k, g, w))
    slow = got[("Query", "SELECT sleep(150)", "", 1)]
    check(slow and slow[0] >= SLOW_US, "the slow query's duration: %s" % slow)


def run_traced(exe, tool_args):
    """Starts exe, attaches with tool_args + -p, runs the script; returns
    (entries, tracer, output, measured calls, lib column values)."""
    d = tempfile.mkdtemp()
    try:
        mfile = os.path.join(d, "m.json")
        db = os.path.join(d, "t.db")
        t = Target([exe, mfile])
        try:
            tr = Tracer(["-p", str(t.pid), "--log-format", "json", "-o", db] + tool_args)
            t.go()
            out = strip_pid(t.finish())
            eq(tr.wait(), 0, "tracer exit code (stderr: %s)" % tr.stderr)
        finally:
            t.kill()
        con = sqlite3.connect(db)
        libs = {r[0] for r in con.execute("SELECT DISTINCT lib FROM sql_traces")}
        con.close()
        return tr.entries(), tr, out, measured(mfile), libs
    finally:
        shutil.rmtree(d)


def by_pid(exe, layout_from):
    need_bpf()
    want_out = untraced_output(exe)
    entries, tr, out, ran, libs = run_traced(exe, ["-v"])
    eq(out, want_out, "the program's own output, traced")
    compare(entries, ran)
    eq(len(libs), 1, "one lib")
    lib = libs.pop()
    check(lib.startswith("database/sql (driver ") and "memsqlite.drv" in lib and "go1.19" in lib,
          "lib names the layer, the driver and the Go release: %r" % lib)
    errs = sorted({e["error"] for e in entries if e.get("error")})
    eq(errs, ['UNIQUE constraint failed: users.id', 'near "SELEC": syntax error', 'near "WHERE": syntax error',
              'no such table: nowhere'], "the driver's own messages")
    failed_prepare = [e for e in entries if e["query"] == "SELECT * FROM users WHERE"]
    eq([(e["op"], e["error"]) for e in failed_prepare], [("Query", 'near "WHERE": syntax error')],
       "a failed Prepare is an entry (a Prepare that succeeded is not)")
    check(len({e["tid"] for e in entries}) > 1, "goroutines ran on several threads")
    check("RET instructions" in tr.stderr, "-v lists the RET probes")
    check("rows counted" in tr.stderr, "-v says rows are counted")
    eq(summary_count(tr.stderr, "Go queries without a row count"), 1,
       "the Rows never closed: its entry comes without a row count, said in the summary")
    check("runtime offsets from " + layout_from in tr.stderr, "-v says where the offsets came from")


@test
def test_pure_go_by_pid():
    by_pid(PLAIN, "its DWARF")


@test
def test_pure_go_stripped_by_pid():
    by_pid(STRIPPED, "the release table")


@test
def test_pure_go_pie_by_pid():
    """A position-independent executable (loaded at a random address): the
    same entries, the driver's messages included."""
    by_pid(PIE, "its DWARF")


def run_script(exe):
    """Runs exe's script to its end; returns (pid, the calls it measured)."""
    with tempfile.TemporaryDirectory() as d:
        t = Target([exe, os.path.join(d, "m.json")])
        try:
            t.go()
            t.finish()
        finally:
            t.kill()
        return t.pid, measured(os.path.join(d, "m.json"))


@test
def test_pure_go_stripped_by_binary_started_later():
    need_bpf()
    tr = Tracer(["-b", STRIPPED, "--log-format", "json", "--no-store"])
    pid, ran = run_script(STRIPPED)
    time.sleep(0.3)
    eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    compare([e for e in tr.entries() if e["pid"] == pid], ran)


def live_entries(tr):
    """The entries the running tracer has written so far."""
    tr.out.seek(0)
    return [json.loads(l) for l in tr.out.read().decode("utf-8").splitlines() if l.startswith("{")]


@test
def test_pure_go_rows_never_closed_sent_when_the_process_ends():
    """-b outlives the program: a Query whose Rows it never closed is handed
    over, without a row count, once its process has ended (the tracer's
    next tick, about a second), not only when the trace ends."""
    need_bpf()
    leak = "SELECT * FROM users WHERE id = ?"
    tr = Tracer(["-b", STRIPPED, "--log-format", "json", "--no-store"])
    try:
        pid, ran = run_script(STRIPPED)
        want = sum(1 for m in ran if m["query"] == leak)
        deadline = time.time() + 6
        while True:
            got = [e for e in live_entries(tr) if e["pid"] == pid and e["query"] == leak]
            if len(got) >= want or time.time() > deadline:
                break
            time.sleep(0.2)
        eq(len(got), want, "entries of %r written while the tracer still runs" % leak)
        eq(sum(1 for e in got if e.get("rows", -1) < 0), 1, "one of them without a row count (never closed)")
    finally:
        eq(tr.stop(signal.SIGINT), 0, "tracer exit code")


@test
def test_pure_go_rows_never_closed_sent_after_the_hold_time():
    """A Query whose Rows stay open in a live process is handed over,
    without a row count, once held GOSQL_HOLD_US (30 s): never kept back
    for the whole trace."""
    need_bpf()
    leak = "SELECT * FROM users WHERE id = ?"
    with tempfile.TemporaryDirectory() as d:
        t = Target([STRIPPED, os.path.join(d, "m.json")])
        try:
            tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store"])
            t.go()
            t.wait_line("done", timeout=60)
            time.sleep(0.5)   # its JSON log is written after "done"
            want = sum(1 for m in measured(os.path.join(d, "m.json")) if m["query"] == leak)
            before = len([e for e in live_entries(tr) if e["query"] == leak])
            deadline = time.time() + 40
            while True:
                got = [e for e in live_entries(tr) if e["query"] == leak]
                if len(got) >= want or time.time() > deadline:
                    break
                time.sleep(0.5)
            alive = t.p.poll() is None
            t.finish()
        finally:
            t.kill()
        eq(tr.wait(timeout=60), 0, "tracer exit code")
    check(alive, "the program was still running")
    eq(before, want - 1, "the Query with its Rows open held back at first")
    eq(len(got), want, "entries of %r written while its Rows stay open" % leak)
    eq(sum(1 for e in got if e.get("rows", -1) < 0), 1, "one of them without a row count")


@test
def test_pure_go_by_name():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        t = Target([STRIPPED, os.path.join(d, "m.json")])
        try:
            tr = Tracer(["-n", "go-puresql-stri", "--log-format", "json", "--no-store"])
            t.go()
            t.finish()
            eq(tr.wait(), 0, "tracer exit code (stderr: %s)" % tr.stderr)
        finally:
            t.kill()
        compare(tr.entries(), measured(os.path.join(d, "m.json")))


@test
def test_pure_go_as_the_command():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        mfile = os.path.join(d, "m.json")
        p = subprocess.run(["sh", "-c", "(echo go; echo bye) | %s --log-format json --no-store -- %s %s" %
                            (TOOL, PLAIN, mfile)], capture_output=True, timeout=60)
        eq(p.returncode, 0, "tracer exit code (stderr: %s)" % p.stderr.decode())
        entries = [json.loads(l) for l in p.stdout.decode().splitlines() if l.startswith("{")]
        compare(entries, measured(mfile))


def held_calls(n):
    """Runs the target's hold mode (n calls in flight at once) traced with
    -p -v; returns (entries of SELECT wait(), tracer)."""
    with tempfile.TemporaryDirectory() as d:
        t = Target([STRIPPED, os.path.join(d, "m.json"), "hold", str(n)])
        try:
            tr = Tracer(["-p", str(t.pid), "-v", "--log-format", "json", "--no-store"])
            t.go()
            t.wait_line("held %d" % n, timeout=120)
            t.go()
            t.wait_line("done %d" % n, timeout=120)
            t.finish()
            eq(tr.wait(60), 0, "tracer exit code (stderr: %s)" % tr.stderr)
        finally:
            t.kill()
    return [e for e in tr.entries() if e["query"] == "SELECT wait()"], tr


def summary_count(stderr, what):
    """The number before `what` in the end-of-run summary, 0 when absent."""
    m = re.search(r", (\d+) " + re.escape(what), stderr)
    return int(m.group(1)) if m else 0


@test
def test_go_calls_under_the_map_size_all_traced():
    need_bpf()
    entries, tr = held_calls(2000)
    eq(len(entries), 2000, "entries of 2000 calls in flight at once")
    eq(summary_count(tr.stderr, "executions untracked (maps full)"), 0, "calls untracked")
    eq(summary_count(tr.stderr, "ring-buffer drops"), 0, "ring-buffer drops")


@test
def test_go_calls_over_the_map_size_counted():
    """More calls in flight at once than the BPF side can follow: every call
    not followed is counted and said in the summary, never lost silently."""
    need_bpf()
    n = GO_MAX_CALLS + 616
    entries, tr = held_calls(n)
    lost = summary_count(tr.stderr, "executions untracked (maps full)")
    eq(summary_count(tr.stderr, "ring-buffer drops"), 0, "ring-buffer drops")
    eq(len(entries) + lost, n, "entries (%d) + untracked (%d): every call" % (len(entries), lost))
    eq(lost, n - GO_MAX_CALLS, "calls untracked (the map full)")
    check(re.search(r"sqltrace-bpf: %d entries, .*, %d executions untracked \(maps full\)" % (len(entries), lost),
                    tr.stderr), "the end-of-run summary says it: %s" % tr.stderr[-300:])


@test
def test_go_calls_of_a_killed_process_are_freed():
    """A process killed with the map full of its calls in flight: they are
    removed (their returns never come), and the next process is traced
    in full."""
    need_bpf()
    tr = Tracer(["-b", STRIPPED, "--log-format", "json", "--no-store"])
    with tempfile.TemporaryDirectory() as d:
        a = Target([STRIPPED, os.path.join(d, "a.json"), "hold", str(GO_MAX_CALLS + 100)])
        try:
            a.go()
            a.wait_line("held", timeout=120)
        finally:
            a.kill()
        time.sleep(2.5)  # the tracer's rescan (every second) sweeps them
        b = Target([STRIPPED, os.path.join(d, "b.json"), "hold", "500"])
        try:
            b.go()
            b.wait_line("held", timeout=60)
            b.go()
            b.wait_line("done", timeout=60)
            b.finish()
        finally:
            b.kill()
    time.sleep(0.3)
    eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    eq(len([e for e in tr.entries() if e["pid"] == b.pid]), 500, "entries of the next process")


def future_release(src, d):
    """A copy of src whose build info says go1.99.0 (a release the table
    does not know)."""
    data = bytearray(open(src, "rb").read())
    i = data.find(b"\xff Go buildinf:")
    check(i >= 0 and data[i + 32 + 1:i + 32 + 5] == b"go1.", "build info found")
    n = data[i + 32]
    data[i + 32 + 1:i + 32 + 1 + n] = b"go1.99.0".ljust(n, b".")[:n]
    path = os.path.join(d, "future-go")
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755)
    return path


@test
def test_unknown_go_release_with_dwarf_is_traced():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        entries, tr, out, ran, libs = run_traced(future_release(PLAIN, d), ["-v"])
        compare(entries, ran)
        check("runtime offsets from its DWARF" in tr.stderr, "offsets from DWARF: %s" % tr.stderr)


@test
def test_unknown_go_release_is_refused_clearly():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = future_release(STRIPPED, d)
        rc, _, err = run_tool(["-b", path, "--no-store"], timeout=20)
        check(rc != 0, "refused (exit %d)" % rc)
        check("go1.99" in err and "not in this tool's table" in err, "the message says why: %r" % err)


if __name__ == "__main__":
    main()
