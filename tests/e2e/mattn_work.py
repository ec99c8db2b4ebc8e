"""mattn_work.py — what tests/targets/go/mattnwork.go runs and reports, and
the comparison of captured entries with it (test_go_mattn.py: Debian's
mattn builds; test_go_cgo.py: builds found through their cgo wrappers)."""
import collections
import os
import signal
import time

from harness import Fail, Target, Tracer, check, eq, readline_timeout

WORKERS, PER_WORKER = 8, 40

# (query, op, rows) -> count, for the program's statements
EXPECTED = {
    ("SELECT 40 + ?", "Query", 1): 2,                 # prepared before -p attaches
    ("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT UNIQUE)", "Exec", 0): 1,
    ("INSERT INTO items(name) VALUES (?)", "Exec", 0): 3,
    ("CREATE TABLE notes(x);", "Exec", 0): 1,         # one Exec of two statements
    ("INSERT INTO notes VALUES (1)", "Exec", 0): 1,
    ("SELECT id, name FROM items ORDER BY id", "Query", 3): 1,
    ("SELECT name FROM items WHERE id = ?", "Query", 1): 3,
    ("SELECT count(*) FROM items", "Query", 1): 1,
    ("INSERT INTO items(name) VALUES ('a')", "Exec", 0): 1,
    ("SELEC 1", "Exec", 0): 1,
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) "
     "SELECT count(*) FROM c", "Query", 1): 1,
    ("SELECT ? + 0", "Query", 1): WORKERS * PER_WORKER,
    ("SELECT 7 * 6", "Query", 1): 1,
}
SLOW = "WITH RECURSIVE"


def reported(out):
    """What the program said it ran: {"err constraint": msg, ..., "slow": us}."""
    got = {}
    for line in out.splitlines():
        f = line.split(" ", 2)
        if f[0] == "err" and len(f) == 3:
            got["err " + f[1]] = f[2]
        elif f[0] in ("slow", "rows", "deep"):
            got[f[0]] = int(f[1])
    check({"err constraint", "err syntax", "slow", "rows", "deep"} <= set(got), "program output: %r" % out)
    return got


def compare(entries, out, how):
    prog = reported(out)
    eq(prog["rows"], 3, "%s: the program's rows" % how)
    eq(prog["deep"], 42, "%s: the program's recursion result" % how)
    mine = [e for e in entries if not e["query"].startswith("PRAGMA ")]   # the driver's own set-up
    got = collections.Counter((e["query"], e["op"], e.get("rows", 0)) for e in mine)
    eq(dict(got), EXPECTED, "%s: statements, ops and rows" % how)
    errors = {e["query"]: e.get("error") for e in mine if e.get("error")}
    eq(errors, {"INSERT INTO items(name) VALUES ('a')": prog["err constraint"],
                "SELEC 1": prog["err syntax"]}, "%s: errors are the driver's messages" % how)
    slow = [e for e in mine if e["query"].startswith(SLOW)][0]
    us = slow["duration"] / 1000.0
    check(0.5 * prog["slow"] <= us <= prog["slow"] + 1000,
          "%s: slow query %.0f us traced, %d us by the program's clock" % (how, us, prog["slow"]))
    tids = {e["tid"] for e in mine if e["query"] == "SELECT ? + 0"}
    check(len(tids) >= 2, "%s: the goroutines' queries ran on %d thread(s)" % (how, len(tids)))


def plain_lines(out):
    """The program's output without what varies from run to run."""
    return [l for l in out.splitlines() if not l.startswith(("ready", "slow"))]


def run_to_done(t):
    """Lets target t run its workload; returns what it printed up to "done"."""
    t.go()
    lines = []
    while True:
        line = readline_timeout(t.p.stdout, 120)
        if line == "":
            raise Fail("target ended before done: %r" % lines)
        lines.append(line)
        if line.startswith("done"):
            return "".join(lines)


def by_pid(exe, d, how):
    """Runs exe, attaches with -p while it waits, lets it run; compares."""
    t = Target([exe, os.path.join(d, "p.db")])
    try:
        tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store"])
        out = run_to_done(t)
        t.finish()
    finally:
        t.kill()
    eq(tr.wait(timeout=60), 0, "-p tracer exit")
    compare(tr.entries(), out, "-p " + how)


def by_binary(exe, d, how):
    """-b on exe, then a process of it started later; compares."""
    tr = Tracer(["--log-format", "json", "--no-store", "-b", exe])
    try:
        t = Target([exe, os.path.join(d, "b.db")])
        out = run_to_done(t)
        t.finish()
        time.sleep(0.3)
    finally:
        eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    compare([e for e in tr.entries() if e["pid"] == t.pid], out, "-b " + how)
