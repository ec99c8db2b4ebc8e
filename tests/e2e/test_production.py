"""test_production.py — issue 16: exact and harmless under production
conditions. Targets that behave as real programs do (tests/targets/
prod_target.c): threads busy while the tracer attaches, a callback left by
longjmp, coroutines switching stacks inside SQLite calls, statements reused
after idle time, a store that stalls, a slow reader of stdout. Each compares
what was captured with what ran, and the tracer's summary with both."""
import collections
import os
import re
import sqlite3
import subprocess
import tempfile
import threading
import time

from harness import (TARGETS, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf, readline_timeout,
                     test)

PROD = os.path.join(TARGETS, "prod_target")


def summary_line(stderr):
    lines = [l for l in stderr.splitlines() if re.match(r"sqltrace-bpf: \d+ entries", l)]
    if not lines:
        raise Fail("no summary line in: %s" % stderr)
    return lines[-1]


def summary_count(line, what):
    m = re.search(r"(\d+) " + re.escape(what), line)
    return int(m.group(1)) if m else 0


def run_traced(argv, tool_args=None):
    """Starts prod_target argv, attaches, lets it run; returns (entries,
    tracer, target output)."""
    t = Target([PROD] + argv)
    try:
        tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store"] + (tool_args or []))
        t.go()
        lines = []
        while True:
            line = readline_timeout(t.p.stdout, 60)
            if line == "":
                raise Fail("target ended before 'done' (exit %r): %s" % (t.p.wait(), "".join(lines)))
            if line.startswith("done"):
                break
            lines.append(line)
        t.finish()
        out = "".join(lines)
        eq(t.p.returncode, 0, "target exit status")
        eq(tr.wait(60), 0, "tracer exit code (stderr: %s)" % tr.stderr)
        return tr.entries(), tr, out
    finally:
        t.kill()


@test
def test_attach_while_threads_hammer_loses_no_thread():
    """The tracer attaches while 8 threads are inside sqlite3_step and
    sqlite3_exec; every statement each thread runs afterwards is captured
    (before, one thread in three runs was blind for good)."""
    need_bpf()
    for rnd in range(3):
        entries, tr, out = run_traced(["hammer", "8", "200"])
        eq(summary_count(summary_line(tr.stderr), "ring-buffer drops"), 0, "drops")
        got = collections.Counter(e["query"] for e in entries if e["query"].startswith("SELECT 'T"))
        for th in range(8):
            n = sum(got["SELECT 'T%d-%d'" % (th, i)] for i in range(200))
            eq(n, 200, "round %d: statements of thread %d captured" % (rnd, th))
        eq(sum(got.values()), 1600, "round %d: no statement twice" % rnd)


@test
def test_longjmp_out_of_an_exec_callback_leaves_the_thread_traced():
    need_bpf()
    entries, tr, out = run_traced(["longjmp", "100"])
    got = [e["query"] for e in entries if e["query"].startswith("INSERT INTO j")]
    eq(got, ["INSERT INTO j VALUES (%d)" % i for i in range(100)], "INSERTs after the longjmp")


@test
def test_coroutines_switching_inside_sqlite_run_unharmed():
    """An SQL function, an sqlite3_exec callback and an authorizer (inside a
    prepare) switch to another coroutine, which switches back from inside
    its own step: under the default probes the program runs as it does
    alone (uretprobes killed it with SIGILL) and every statement of both
    coroutines is captured."""
    need_bpf()
    alone = subprocess.run([PROD, "coro", "20"], input=b"go\n\n", capture_output=True, timeout=30)
    eq(alone.returncode, 0, "exit status untraced")
    entries, tr, out = run_traced(["coro", "20"])
    want = [l for l in alone.stdout.decode().splitlines() if l.startswith("switches")]
    eq(out.strip(), want[0] if want else "?", "the program's output")
    queries = collections.Counter(e["query"] for e in entries)
    for i in range(20):
        eq(queries["SELECT sw(), 'a-%d'" % i], 1, "statement switching inside its step, round %d" % i)
        eq(queries["SELECT 'e-%d'" % i], 1, "sqlite3_exec switching in its callback, round %d" % i)
        eq(queries["SELECT 'p-%d'" % i], 1, "statement whose prepare switched, round %d" % i)
    # B's statements: each resumption finishes one and starts the next;
    # the last one is left suspended when A is done.
    for i in range(59):
        eq(queries["SELECT sw(), 'co-%d'" % i], 1, "the other coroutine's statement %d" % i)
    eq(queries["SELECT sw(), 'co-59'"], 0, "B's unfinished statement")
    rows = [e for e in entries if e["query"].startswith("SELECT sw()")]
    check(all(e.get("rows") == 1 and "error" not in e for e in rows), "rows and results: %r" % rows[:2])


@test
def test_statement_reused_after_idle_time_is_not_timed_with_it():
    """A cached statement run every 300 ms: its duration is the execution,
    not the idle time, whether the program resets it right after the run
    (C, Python) or just before the next one (Go's mattn), in every mode."""
    need_bpf()
    for mode in ("exact", "return"):
        entries, tr, out = run_traced(["idle", "300", "4"], ["--mode", mode])
        for q in ("SELECT 'idle-reset-after'", "SELECT 'idle-reset-before'"):
            runs = [e for e in entries if e["query"] == q]
            eq(len(runs), 4, "%s: executions of %s" % (mode, q))
            for e in runs:
                check(e["duration"] < 100000000,
                      "%s: %s took %d ns: idle time counted" % (mode, q, e["duration"]))
                eq(e.get("rows"), 1, "%s: rows" % mode)


@test
def test_mode_return_is_refused_for_nothing_and_entry_is_default():
    need_bpf()
    entries, tr, out = run_traced(["many", "10"], ["-v"])
    check("exit site" in tr.stderr and "(return)" not in tr.stderr,
          "default probes: no uretprobe: %s" % tr.stderr)
    eq(len([e for e in entries if e["query"] == "SELECT ?1"]), 10, "executions")


@test
def test_slow_stdout_reader_loses_no_line():
    """--no-store with stdout read slowly: every entry is printed (the
    printer waits; the ring buffer absorbs the burst)."""
    need_bpf()
    n = 20000
    t = Target([PROD, "many", str(n)])
    try:
        p = subprocess.Popen([TOOL, "-p", str(t.pid), "--no-store"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        err = []
        while True:
            line = readline_timeout(p.stderr, 30)
            err.append(line)
            if "tracing" in line or line == "":
                break
        lines = []

        def reader():
            while True:
                chunk = p.stdout.read(4096)
                if not chunk:
                    break
                lines.append(chunk)
                time.sleep(0.002)

        th = threading.Thread(target=reader)
        th.start()
        t.go()
        t.wait_line("done", timeout=120)
        t.finish()
        p.wait(timeout=180)
        th.join(timeout=60)
        err.append(p.stderr.read().decode())
        text = b"".join(lines).decode()
        printed = sum(1 for l in text.splitlines() if "msg=SQL" in l and "SELECT ?1" in l)
        s = summary_line("".join(err))
        eq(printed, n, "lines printed (summary: %s)" % s)
        eq(summary_count(s, "not printed"), 0, "lines dropped")
    finally:
        t.kill()


@test
def test_stdout_never_read_does_not_hang_the_tool():
    """A reader that never reads stdout (a stopped pager): SIGINT still
    ends the tool in bounded time, and what it could not print is counted."""
    need_bpf()
    n = 20000
    t = Target([PROD, "many", str(n)])
    r, w = os.pipe()
    try:
        p = subprocess.Popen([TOOL, "-p", str(t.pid), "--no-store"], stdout=w, stderr=subprocess.PIPE)
        os.close(w)
        w = None
        while True:
            line = readline_timeout(p.stderr, 30)
            if "tracing" in line or line == "":
                break
        t.go()
        t.wait_line("done", timeout=120)
        time.sleep(1)
        t0 = time.monotonic()
        p.send_signal(2)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Fail("the tool did not stop within 60 s of SIGINT with its stdout blocked")
        elapsed = time.monotonic() - t0
        s = summary_line(p.stderr.read().decode())
        check(summary_count(s, "not printed") > 0, "what was not printed is counted: %s" % s)
        check(elapsed < 45, "stopped in %.0f s" % elapsed)
        t.finish()
    finally:
        t.kill()
        os.close(r)
        if w is not None:
            os.close(w)


@test
def test_store_stalled_for_seconds_drops_nothing():
    """The store's file is locked by another process for 3 s while the
    target runs 5000 statements: the tracer waits (the ring buffer holds the
    records) and every entry is stored; before, one 100 ms timeout made it
    drop for a whole second."""
    need_bpf()
    n = 5000
    with tempfile.TemporaryDirectory() as d:
        store = os.path.join(d, "traces.db")
        t = Target([PROD, "many", str(n)])
        try:
            tr = Tracer(["-p", str(t.pid), "-o", store, "-q"])
            time.sleep(0.3)  # the store is created and initialised
            lock = sqlite3.connect(store, timeout=10, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            t.go()
            t.wait_line("done", timeout=60)
            time.sleep(3)
            lock.execute("COMMIT")
            lock.close()
            t.finish()
            eq(tr.wait(120), 0, "tracer exit (stderr: %s)" % tr.stderr)
            s = summary_line(tr.stderr)
            eq(summary_count(s, "dropped (queue full)"), 0, "dropped: %s" % s)
            eq(summary_count(s, "ring-buffer drops"), 0, "ring-buffer drops: %s" % s)
            db = sqlite3.connect(store)
            stored = db.execute("SELECT count(*) FROM sql_traces WHERE query = 'SELECT ?1'").fetchone()[0]
            db.close()
            eq(stored, n, "entries stored (%s)" % s)
        finally:
            t.kill()


@test
def test_explain_rows_and_duration():
    """EXPLAIN's DONE leaves the statement running (not halted): still the
    end of its execution, with the rows it returned, not a row more, and not
    the 300 ms before its finalize."""
    need_bpf()
    entries, tr, out = run_traced(["explain"])
    rows = int(out.split()[1])
    got = [e for e in entries if e["query"] == "EXPLAIN SELECT 1"]
    eq(len(got), 1, "executions")
    eq(got[0].get("rows"), rows, "rows")
    check(got[0]["duration"] < 100000000, "duration %d ns: the sleep before finalize counted" % got[0]["duration"])


@test
def test_failed_reprepare_is_an_error_each_time():
    """A step that fails while its statement stays ready (its table was
    dropped: the re-prepare fails) is an error, each time."""
    need_bpf()
    entries, tr, out = run_traced(["reprep"])
    got = [(e.get("error"), e.get("rows")) for e in entries if e["query"] == "SELECT y FROM x"]
    eq(got, [(None, 1), ("no such table: x", 0), ("no such table: x", 0)], "executions of SELECT y FROM x")


@test
def test_nested_exec_reports_both():
    need_bpf()
    entries, tr, out = run_traced(["nested"])
    execs = [e["query"] for e in entries if e["op"] == "Exec" and "log" in e["query"] or "outer" in e["query"]]
    check("SELECT 'outer-row'" in execs and "INSERT INTO log VALUES ('inner')" in execs, "execs: %r" % execs)
    check("nested too deep" not in tr.stderr, tr.stderr)


@test
def test_statement_shared_by_two_threads_counts_its_rows():
    need_bpf()
    entries, tr, out = run_traced(["shared"])
    """Two threads step one statement until it ends: the one that gets
    DONE ends the execution, the other's next step starts it again (SQLite
    resets a halted statement): two executions of 20000 rows, while each
    thread's steps wait for the other's."""
    a, b = [int(x) for x in out.split()[1:3]]
    got = [e for e in entries if e["query"].startswith("WITH RECURSIVE")]
    eq(a + b, 40000, "rows the program saw")
    eq([e.get("rows") for e in got], [20000, 20000], "executions and their rows")


@test
def test_failed_prepares_from_callbacks_are_reported():
    """A prepare the program makes from an sqlite3_exec callback or from an
    SQL function inside a step is the program's: its failure is an entry,
    as its statements are."""
    need_bpf()
    entries, tr, out = run_traced(["cbprep"])
    got = sorted((e["query"], e.get("error")) for e in entries if e["query"].startswith("SELEC "))
    eq(got, [("SELEC 'in-exec-callback'", 'near "SELEC": syntax error'),
             ("SELEC 'in-function'", 'near "SELEC": syntax error')], "failed prepares")
    check(any(e["query"] == "SELECT badprep()" for e in entries), "the statement around it")


@test
def test_longjmp_out_of_a_step_no_false_row():
    need_bpf()
    entries, tr, out = run_traced(["ljstep"])
    got = [e for e in entries if "lj()" in e["query"]]
    eq([e.get("rows") for e in got], [0], "rows of the statement left by longjmp")
    eq(len([e for e in entries if e["query"] == "SELECT 'after-lj'"]), 3, "statements after")


@test
def test_running_execution_evicted_from_a_full_map_is_counted():
    need_bpf()
    entries, tr, out = run_traced(["lru", "70000"])
    victim = [e for e in entries if "victim" in e["query"]]
    if not victim:
        check("untracked (maps full)" in summary_line(tr.stderr), "lost without a count: %s" %
              summary_line(tr.stderr))


@test
def test_name_with_an_impostor_traces_the_real_one():
    """-n NAME while another process of that name has no SQLite: the one
    with SQLite is traced, the other named (and watched, in case it loads
    SQLite later), and the summary says it saw none in it."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        impostor = os.path.join(d, "prod_target")
        os.symlink("/bin/sleep", impostor)
        imp = subprocess.Popen([impostor, "30"])
        t = Target([PROD, "many", "5"])
        try:
            tr = Tracer(["-n", "prod_target", "--log-format", "json", "--no-store"])
            t.go()
            t.wait_line("done")
            t.finish()
            imp.kill()
            imp.wait()
            rc = tr.wait(30)
            eq(rc, 0, "exit code (%s)" % tr.stderr)
            check("PID %d (prod_target): no SQLite in it yet" % imp.pid in tr.stderr, tr.stderr)
            check("PID %d (prod_target): 0 (no SQLite seen)" % imp.pid in tr.stderr, tr.stderr)
            eq(len([e for e in tr.entries() if e["query"] == "SELECT ?1"]), 5, "entries of the real one")
        finally:
            t.kill()
            if imp.poll() is None:
                imp.kill()


if __name__ == "__main__":
    main()
