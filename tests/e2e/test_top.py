"""test_top.py — `sqltrace-bpf top` against real traced programs (BPF, root):
--batch snapshots of a command run under the tool (exact counts and errors
against what the program ran), of a running process (the heaviest statement
first, by the program's own measurement), and the full-screen view driven
in a real terminal (tmux: read the screen, press keys, resize, quit)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PYTHON, TOOL, Fail, Skip, Target, Tracer, check, eq, main, need_bpf,  # noqa: E402
                     run_tool, test)

# A fixed script: counts per statement shape are known exactly, and the
# script prints what it ran (shape -> count, errors, its own total time).
FIXED = r'''
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
ran = {}
def run(shape, sql, *args):
    t0 = time.perf_counter()
    err = 0
    try:
        db.execute(sql, args).fetchall()
    except sqlite3.Error:
        err = 1
    x = ran.setdefault(shape, [0, 0, 0.0])
    x[0] += 1; x[1] += err; x[2] += time.perf_counter() - t0
for i in range(300):
    run("INSERT INTO t(id, v) VALUES (?, ?)", "INSERT INTO t(id, v) VALUES (%d, 'v%d')" % (i, i))
for i in range(7):
    run("INSERT INTO t(id, v) VALUES (?, ?)", "INSERT INTO t(id, v) VALUES (%d, 'dup')" % i)
for i in range(120):
    run("SELECT v FROM t WHERE id IN (?)", "SELECT v FROM t WHERE id IN (%s)" % ",".join(str(k) for k in range(i % 9 + 1)))
for i in range(40):
    run("SELECT count(*) FROM t WHERE v = ?", "SELECT count(*) FROM t WHERE v = :v", str(i))
for i in range(3):
    run("WITH RECURSIVE c(x) AS (VALUES(?) UNION ALL SELECT x+? FROM c WHERE x < ?) SELECT sum(x) FROM c",
        "WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x < %d) SELECT sum(x) FROM c" % (300000 + i))
print(json.dumps(ran), flush=True)
'''

# A running process: a heavy statement and many cheap ones, until told to stop.
LOOP = r'''
import json, os, select, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("CREATE TABLE k(id INTEGER PRIMARY KEY, v)")
print("ready %d" % os.getpid(), flush=True)
sys.stdin.readline()
tot = {"heavy": 0.0, "cheap": 0.0}
i = 0
while not select.select([sys.stdin], [], [], 0)[0]:
    t0 = time.perf_counter()
    db.execute("WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x < 60000) SELECT sum(x) FROM c").fetchall()
    t1 = time.perf_counter()
    for j in range(30):
        db.execute("INSERT OR REPLACE INTO k(id, v) VALUES (%d, %d)" % (j, i)).fetchall()
        i += 1
    tot["heavy"] += t1 - t0
    tot["cheap"] += time.perf_counter() - t1
    time.sleep(0.005)
sys.stdin.readline()
print(json.dumps(tot), flush=True)
'''
HEAVY = "WITH RECURSIVE c(x) AS (VALUES(?) UNION ALL SELECT x+? FROM c WHERE x < ?) SELECT sum(x) FROM c"
CHEAP = "INSERT OR REPLACE INTO k(id, v) VALUES (?, ?)"

ROW = re.compile(r"^\s*([0-9.]+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+([0-9.]+)  (.*)$")


def snapshots(out):
    """--batch output -> list of (header, [row dicts])."""
    res = []
    for block in out.strip("\n").split("\n\n"):
        lines = block.splitlines()
        if not lines:
            continue
        check(lines[0].startswith("sqltrace-bpf top "), "snapshot header: %r" % lines[0])
        check(lines[1].split()[:2] == ["CALLS/S", "CALLS"], "column header: %r" % lines[1])
        rows = []
        for ln in lines[2:]:
            m = ROW.match(ln)
            check(m, "snapshot row: %r" % ln)
            rows.append({"rate": float(m.group(1)), "calls": int(m.group(2)), "errors": int(m.group(5)),
                         "share": float(m.group(6)), "fp": m.group(7)})
        res.append((lines[0], rows))
    return res


def write_script(d, text):
    path = os.path.join(d, "w.py")
    with open(path, "w") as f:
        f.write(text)
    return path


@test
def test_batch_command_exact_counts():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        script = write_script(d, FIXED)
        p = subprocess.run([TOOL, "top", "--batch", "-d", "10s", "--", PYTHON, script, os.path.join(d, "f.db")],
                           capture_output=True, text=True, timeout=120)
        eq(p.returncode, 0, "exit code (stderr: %s)" % p.stderr)
        lines = p.stdout.splitlines()
        ran = None
        for ln in lines:
            if ln.startswith("{"):
                import json
                ran = json.loads(ln)
        check(ran, "the program's own account: %r" % p.stdout[:500])
        snaps = snapshots("\n".join(ln for ln in lines if not ln.startswith("{")))
        eq(len(snaps), 1, "one last snapshot (the command ended before the first interval)")
        rows = {r["fp"]: r for r in snaps[0][1]}
        for shape, (count, errors, _) in ran.items():
            check(shape in rows, "group %r in %s" % (shape, sorted(rows)))
            eq(rows[shape]["calls"], count, "calls of %r" % shape)
            eq(rows[shape]["errors"], errors, "errors of %r" % shape)
        heaviest = max(ran, key=lambda s: ran[s][2])
        eq(snaps[0][1][0]["fp"], heaviest, "first row: the heaviest by the program's own clock")
        shares = sum(r["share"] for r in snaps[0][1])
        check(99.0 <= shares <= 101.0, "shares add up to 100%% (%.1f)" % shares)
        check(re.search(r"sqltrace-bpf: \d+ entries", p.stderr), "summary line: %r" % p.stderr)


@test
def test_top_while_storing_then_report_of_that_file():
    """top -o FILE stores like the tracer; report FILE then agrees with both
    top's counts and the program's own."""
    need_bpf()
    import json
    with tempfile.TemporaryDirectory() as d:
        script = write_script(d, FIXED)
        store = os.path.join(d, "traces.db")
        p = subprocess.run([TOOL, "top", "--batch", "-d", "10s", "-o", store, "--", PYTHON, script,
                            os.path.join(d, "f.db")], capture_output=True, text=True, timeout=120)
        eq(p.returncode, 0, "exit code (stderr: %s)" % p.stderr)
        lines = p.stdout.splitlines()
        ran = json.loads([ln for ln in lines if ln.startswith("{")][-1])
        snap = snapshots("\n".join(ln for ln in lines if not ln.startswith("{")))[-1][1]
        check(re.search(r"(\d+) stored, 0 dropped", p.stderr), "stored: %r" % p.stderr)
        rc, out, err = run_tool(["report", "--format", "json", "--limit", "0", store])
        eq(rc, 0, "report exit code: %s" % err)
        groups = {g["fingerprint"]: g for g in json.loads(out)}
        topc = {r["fp"]: r["calls"] for r in snap}
        eq({k: g["count"] for k, g in groups.items()}, topc, "report's counts = top's counts")
        for shape, (count, errors, _) in ran.items():
            eq(groups[shape]["count"], count, "report count of %r" % shape)
            eq(groups[shape]["errors"], errors, "report errors of %r" % shape)
        eq(groups["INSERT INTO t(id, v) VALUES (?, ?)"]["top_error"], "UNIQUE constraint failed: t.id",
           "the most frequent error, SQLite's message")
        eq(groups["SELECT v FROM t WHERE id IN (?)"]["rows"], sum(i % 9 + 1 for i in range(120)),
           "rows returned by the IN queries (ids 0..8 exist)")


@test
def test_batch_running_process_heaviest_first():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        script = write_script(d, LOOP)
        t = Target([PYTHON, script, os.path.join(d, "l.db")])
        try:
            tr = Tracer(["top", "--batch", "-d", "400ms", "--iterations", "4", "-p", str(t.pid)])
            t.go()
            rc = tr.wait(60)
            eq(rc, 0, "exit code after --iterations (stderr: %s)" % tr.stderr)
            out = t.finish()
        finally:
            t.kill()
        tr.out.seek(0)
        snaps = snapshots(tr.out.read().decode())
        eq(len(snaps), 4, "--iterations 4 snapshots")
        check("PID %d" % t.pid in snaps[-1][0], "targets in the header: %r" % snaps[-1][0])
        import json
        tot = json.loads(out.strip().splitlines()[-1])
        want_first = HEAVY if tot["heavy"] > tot["cheap"] else CHEAP
        rows = snaps[-1][1]
        eq(rows[0]["fp"], want_first, "the heaviest statement first (program's clock: %s)" % tot)
        fps = [r["fp"] for r in rows]
        check(HEAVY in fps and CHEAP in fps, "both statements: %s" % fps)
        cheap = [r for r in rows if r["fp"] == CHEAP][0]
        heavy = [r for r in rows if r["fp"] == HEAVY][0]
        check(cheap["rate"] > 0 and heavy["rate"] > 0, "calls/s over the last interval")
        check(25 <= cheap["calls"] / max(heavy["calls"], 1) <= 35,
              "30 cheap per heavy: %d / %d" % (cheap["calls"], heavy["calls"]))
        calls = [[r["calls"] for r in s[1] if r["fp"] == CHEAP] for s in snaps]
        check(all(calls[i] and calls[i + 1] and calls[i][0] < calls[i + 1][0] for i in range(len(calls) - 1)),
              "calls grow from snapshot to snapshot: %s" % calls)


def tmux(*args, check_rc=True):
    p = subprocess.run(["tmux", "-L", "sqltrace-top-test"] + list(args), capture_output=True, text=True, timeout=30)
    if check_rc and p.returncode != 0:
        raise Fail("tmux %s: %s" % (" ".join(args), p.stderr))
    return p.stdout


def screen(session):
    return tmux("capture-pane", "-p", "-t", session)


def wait_screen(session, pred, what, timeout=15):
    end = time.time() + timeout
    s = ""
    while time.time() < end:
        s = screen(session)
        if pred(s):
            return s
        time.sleep(0.2)
    raise Fail("screen never showed %s; last screen:\n%s" % (what, s))


@test
def test_interactive_view_in_tmux():
    need_bpf()
    if not shutil.which("tmux"):
        raise Skip("tmux is not installed (make deps installs it)")
    with tempfile.TemporaryDirectory() as d:
        script = write_script(d, LOOP)
        t = Target([PYTHON, script, os.path.join(d, "l.db")])
        t.go()
        session = "top%d" % os.getpid()
        status = os.path.join(d, "status")
        errf = os.path.join(d, "stderr")
        cmd = "%s top -d 300ms -p %d 2>%s; echo EXIT=$? > %s; echo after-top; sleep 60" % (
            TOOL, t.pid, errf, status)
        try:
            tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", "sh", "-c", cmd)
            s = wait_screen(session, lambda s: HEAVY[:40] in s and CHEAP in s, "both statements")
            lines = s.splitlines()
            check(lines[0].startswith("sqltrace-bpf top:"), "header line: %r" % lines[0])
            check("PID %d" % t.pid in s, "targets line")
            check("sorted by total time" in s, "sort line")
            rows = [ln for ln in lines if HEAVY[:40] in ln or CHEAP in ln]
            # the default order is total time; press c: calls (the cheap one has 30x more)
            tmux("send-keys", "-t", session, "c")
            s = wait_screen(session, lambda s: "sorted by calls" in s, "sort by calls")
            rows = [ln for ln in s.splitlines() if HEAVY[:40] in ln or CHEAP in ln]
            check(CHEAP in rows[0], "by calls, the cheap statement first: %r" % rows)
            tmux("send-keys", "-t", session, "p")
            s = wait_screen(session, lambda s: "sorted by p99" in s, "sort by p99")
            rows = [ln for ln in s.splitlines() if HEAVY[:40] in ln or CHEAP in ln]
            check(HEAVY[:40] in rows[0], "by p99, the heavy statement first: %r" % rows)
            # a narrow terminal: the view redraws within its width
            tmux("resize-window", "-t", session, "-x", "45", "-y", "20")
            s = wait_screen(session, lambda s: "CALLS/S %TIME" in s, "the narrow layout")
            check(all(len(ln) <= 45 for ln in s.splitlines()), "lines fit 45 columns:\n%s" % s)
            tmux("send-keys", "-t", session, "q")
            s = wait_screen(session, lambda s: "after-top" in s, "the shell after quitting")
            check("sqltrace-bpf top:" not in s, "terminal restored (the view is gone):\n%s" % s)
            eq(open(status).read().strip(), "EXIT=0", "exit status after q")
            err = open(errf).read()
            check(re.search(r"sqltrace-bpf: \d+ entries", err), "summary after quitting: %r" % err)
            check("tracing 1 process" in err, "log lines kept aside and replayed: %r" % err)
        finally:
            tmux("kill-server", check_rc=False)
            t.finish()
            t.kill()


@test
def test_top_bad_usage():
    cases = [
        (["top", "--batch", "-d", "fast", "-p", "1"], "-d"),
        (["top", "--batch", "--iterations", "0", "-p", "1"], "--iterations"),
        (["top", "--batch", "--sort", "speed", "-p", "1"], "--sort"),
        (["top", "--batch", "--bogus", "-p", "1"], "bogus"),
        (["top", "-p", "1"], "--batch"),  # not a terminal here
    ]
    for args, word in cases:
        rc, out, err = run_tool(args)
        eq(rc, 2, "%s: exit code (%s)" % (args, err))
        eq(out, "", "%s: stdout" % args)
        lines = err.strip().splitlines()
        eq(len(lines), 1, "%s: one line: %r" % (args, err))
        check(word in lines[0], "%s: %r mentions %s" % (args, lines[0], word))
    rc, out, err = run_tool(["top", "--help"])
    eq(rc, 0, "--help exit code")
    check("Examples:" in out and "--batch" in out and "--iterations" in out, "top --help")


if __name__ == "__main__":
    main()
