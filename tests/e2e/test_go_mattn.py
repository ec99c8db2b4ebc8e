"""End-to-end: Go services on mattn/go-sqlite3 as they are shipped.

mattnwork (tests/targets/go/mattnwork.go) is built four ways: SQLite linked
statically or dynamically, each stripped (-ldflags "-s -w") or not. Each is
traced by --, -p and -b, and what was captured is compared with what the
program ran and reported itself: every statement and its count, rows, the
driver's error messages, the slow query's duration against the program's
own clock, 8 goroutines at once (on several threads), deep recursion
between queries; and the program's own output is the same traced."""
import collections
import json
import os
import signal
import subprocess
import tempfile
import time

from harness import TARGETS, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf, readline_timeout, test

VARIANTS = ["static", "static-stripped", "dynamic", "dynamic-stripped"]
WORKERS, PER_WORKER = 8, 40

# (query, op, rows) -> count, for the program's statements
EXPECTED = {
    ("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT UNIQUE)", "Exec", 0): 1,
    ("INSERT INTO items(name) VALUES (?)", "Exec", 0): 3,
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


def exe(variant):
    return os.path.join(TARGETS, "mattnwork-" + variant)


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


def by_command(variant, d):
    db = os.path.join(d, variant + ".db")
    p = subprocess.run([TOOL, "--no-store", "--log-format", "json", "--", exe(variant), db],
                       capture_output=True, timeout=120, input=b"go\n\n")
    eq(p.returncode, 0, "-- %s: %s" % (variant, p.stderr.decode()[-800:]))
    out = p.stdout.decode()
    entries = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    prog = "\n".join(l for l in out.splitlines() if not l.startswith("{"))
    return entries, prog


def untraced(variant, d):
    p = subprocess.run([exe(variant), os.path.join(d, variant + "-plain.db")], capture_output=True, timeout=120,
                       input=b"go\n\n")
    eq(p.returncode, 0, "untraced %s: %s" % (variant, p.stderr.decode()[-300:]))
    return p.stdout.decode()


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


def make_test(variant):
    def t():
        need_bpf()
        with tempfile.TemporaryDirectory() as d:
            entries, prog = by_command(variant, d)
            compare(entries, prog, "-- " + variant)
            eq(plain_lines(prog), plain_lines(untraced(variant, d)), "the program's output, traced and not")
            # -p on the running program
            t = Target([exe(variant), os.path.join(d, variant + "-p.db")])
            try:
                tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store"])
                out = run_to_done(t)
                t.finish()
            finally:
                t.kill()
            eq(tr.wait(timeout=60), 0, "-p tracer exit")
            compare(tr.entries(), out, "-p " + variant)
    t.__name__ = "test_mattn_" + variant.replace("-", "_")
    return t


for v in VARIANTS:
    test(make_test(v))


@test
def test_mattn_static_stripped_by_binary():
    """-b on the stripped static executable, for a process started later."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        tr = Tracer(["--log-format", "json", "--no-store", "-b", exe("static-stripped")])
        try:
            t = Target([exe("static-stripped"), os.path.join(d, "b.db")])
            out = run_to_done(t)
            t.finish()
            time.sleep(0.3)
        finally:
            eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
        compare([e for e in tr.entries() if e["pid"] == t.pid], out, "-b static-stripped")


if __name__ == "__main__":
    main()
