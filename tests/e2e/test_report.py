"""test_report.py — `sqltrace-bpf report`: figures checked against trace
files generated here with known entries (groups, nearest-rank percentiles,
errors, rows computed independently from what was written), files with only
the Go tracer's columns, a file being written meanwhile, filters, formats,
and bad input. No root needed."""
import csv
import hashlib
import io
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOOL, check, eq, main, run_tool, test  # noqa: E402
from tracegen import (SHAPES, T0, expected_groups, make_entries, write_file)  # noqa: E402,F401


def report_json(path, *args):
    rc, out, err = run_tool(["report", "--format", "json"] + list(args) + [path], timeout=120)
    eq(rc, 0, "report exit code (stderr: %s)" % err)
    return json.loads(out)


def compare(got, want, what):
    eq(len(got), len(want), "%s: number of groups" % what)
    for gr in got:
        check(gr["fingerprint"] in want, "%s: unexpected group %r" % (what, gr["fingerprint"]))
        w = want[gr["fingerprint"]]
        eq(sorted(gr.keys()), sorted(w.keys()), "%s: keys" % what)
        for k in w:
            eq(gr[k], w[k], "%s: %s of %r" % (what, k, gr["fingerprint"]))


def sort_value(g, key):
    return {"total": g["total_us"], "count": g["count"], "mean": g["mean_us"], "p99": g["p99_us"],
            "errors": g["errors"]}[key]


@test
def test_groups_match_what_was_written():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.db")
        entries = make_entries(1, 5000)
        write_file(path, entries)
        want = expected_groups(entries)
        got = report_json(path, "--limit", "0")
        compare(got, want, "all groups")
        for key in ("total", "count", "mean", "p99", "errors"):
            got = report_json(path, "--sort", key, "--limit", "3")
            eq(len(got), 3, "--limit 3")
            order = sorted(want.values(), key=lambda g: (-sort_value(g, key), -g["total_us"]))
            eq([g["fingerprint"] for g in got], [g["fingerprint"] for g in order[:3]], "order by %s" % key)


@test
def test_go_tracer_columns_only():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "go.db")
        entries = make_entries(2, 2000, with_extras=False)
        write_file(path, entries, with_extras=False)
        compare(report_json(path, "--limit", "0"), expected_groups(entries, has_rows=False), "seed columns")
        rc, out, err = run_tool(["report", "--pid", "100", path])
        check(rc != 0, "--pid on a file without pid succeeded")
        eq(out, "", "stdout of a failed report")
        eq(len(err.strip().splitlines()), 1, "one error line (%r)" % err)
        check("pid" in err, "the error names the column: %r" % err)


@test
def test_filters():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.db")
        entries = make_entries(3, 4000)
        write_file(path, entries)
        since, until = T0 + 1_000_000, T0 + 2_500_000

        def iso(us):
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + \
                ".%06dZ" % (us % 1_000_000)
        cases = [
            (["--since", iso(since)], lambda e: e["timestamp"] >= since),
            (["--until", iso(until)], lambda e: e["timestamp"] <= until),
            (["--since", iso(since), "--until", iso(until)], lambda e: since <= e["timestamp"] <= until),
            (["--pid", "200"], lambda e: e["pid"] == 200),
            (["--process", "worker"], lambda e: e["process"] == "worker"),
            (["--db-file", "/b.db"], lambda e: e["db_file"] == "/b.db"),
            (["--trace-id", "t2"], lambda e: e["trace_id"] == "t2"),
            (["--errors-only"], lambda e: e["error"] != ""),
            (["--errors-only", "--process", "app"], lambda e: e["error"] != "" and e["process"] == "app"),
        ]
        for args, keep in cases:
            sel = [e for e in entries if keep(e)]
            check(0 < len(sel) < len(entries), "case %s selects a part" % args)
            compare(report_json(path, "--limit", "0", *args), expected_groups(sel), " ".join(args))
        # a duration ago: everything written in 2025 is older than 1 hour
        eq(report_json(path, "--since", "1h"), [], "--since 1h on an old file")
        eq(sum(g["count"] for g in report_json(path, "--until", "1h", "--limit", "0")), len(entries),
           "--until 1h")


@test
def test_csv_and_text():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.db")
        entries = make_entries(4, 3000)
        long_q = "SELECT " + ", ".join("column_number_%d" % i for i in range(40)) + " FROM wide WHERE a = 1"
        entries += [{"shape": -1, "query": long_q, "duration_us": 10**7, "error": "", "timestamp": T0,
                     "trace_id": "", "op": "Query", "pid": 1, "tid": 1, "process": "x", "rows": 1,
                     "db_file": "/a.db"}]
        write_file(path, entries)
        js = report_json(path, "--limit", "0")
        rc, out, err = run_tool(["report", "--format", "csv", "--limit", "0", path])
        eq(rc, 0, "csv exit code: %s" % err)
        rows = list(csv.DictReader(io.StringIO(out, newline="")))
        eq(len(rows), len(js), "csv rows")
        for r, j in zip(rows, js):
            eq(list(r.keys()), list(j.keys()), "csv header = json keys")
            for k, v in j.items():
                want = "" if v is None else (repr(v) if isinstance(v, float) else str(v))
                if isinstance(v, float):
                    eq(float(r[k]), v, "csv %s" % k)
                else:
                    eq(r[k], want, "csv %s" % k)
        rc, out, err = run_tool(["report", "--limit", "0", path])
        eq(rc, 0, "text exit code: %s" % err)
        lines = out.splitlines()
        for ln in lines:
            check(len(ln) <= 100, "text line wider than 100 columns: %r" % ln)
        header = [ln for ln in lines if ln.split()[:1] == ["COUNT"]]
        eq(len(header), 1, "one header line")
        pos = header[0].index("FINGERPRINT")
        body = [ln for ln in lines if ln[:7].strip().isdigit()]
        eq(len(body), len(js), "one text line per group")
        for ln, j in zip(body, js):
            fp = ln[pos:]
            if len(j["fingerprint"]) <= 100 - pos:
                eq(fp, j["fingerprint"], "text fingerprint")
            else:
                check(fp.endswith("…") and j["fingerprint"].startswith(fp[:-1]), "shortened: %r" % fp)
            eq(int(ln[:7]), j["count"], "text count")
        check(any(ln[pos:].startswith("SELECT column_number_0") and ln.endswith("…") for ln in body),
              "the long fingerprint is shortened with a marker")


@test
def test_file_being_written():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "live.db")
        write_file(path, [], wal=True)
        writer = subprocess.Popen([sys.executable, "-c", """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA journal_mode=WAL')
i = 0
while True:
    db.executemany("INSERT INTO sql_traces(trace_id, op, query, duration_us, error, timestamp) "
                   "VALUES ('', 'Exec', 'INSERT INTO t VALUES (' || ? || ')', ?, '', ?)",
                   [(i + k, 7, 1764500000000000 + i + k) for k in range(64)])
    db.commit(); i += 64
    print(i, flush=True)
    time.sleep(0.002)
""", path], stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(3):
                writer.stdout.readline()
            seen = []
            for _ in range(5):
                got = report_json(path)
                eq(len(got), 1, "one group")
                eq(got[0]["fingerprint"], "INSERT INTO t VALUES (?)", "fingerprint")
                n = got[0]["count"]
                eq(n % 64, 0, "a snapshot holds whole transactions")
                eq(got[0]["total_us"], 7 * n, "total of a snapshot")
                eq(got[0]["max_us"], 7, "max")
                seen.append(n)
                time.sleep(0.05)
            check(seen == sorted(seen) and seen[-1] > seen[0], "the reports follow the writer: %s" % seen)
        finally:
            writer.kill()
            writer.wait()


@test
def test_never_modifies_the_file():
    with tempfile.TemporaryDirectory() as d:
        for wal in (False, True):
            path = os.path.join(d, "w%d.db" % wal)
            write_file(path, make_entries(5, 500), wal=wal)
            before = hashlib.sha256(open(path, "rb").read()).hexdigest()
            names = sorted(os.listdir(d))
            os.chmod(path, 0o400)
            for fmt in ("text", "json", "csv", "html"):
                rc, _, err = run_tool(["report", "--format", fmt, path])
                eq(rc, 0, "report %s (wal=%s): %s" % (fmt, wal, err))
            eq(hashlib.sha256(open(path, "rb").read()).hexdigest(), before, "file content")
            eq(sorted(os.listdir(d)), names, "files beside it (no -wal/-shm left)")


@test
def test_bad_input():
    with tempfile.TemporaryDirectory() as d:
        notdb = os.path.join(d, "notdb")
        with open(notdb, "w") as f:
            f.write("this is not a database, just text\n" * 100)
        other = os.path.join(d, "other.db")
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE something(a)")
        db.commit()
        db.close()
        badcols = os.path.join(d, "badcols.db")
        db = sqlite3.connect(badcols)
        db.execute("CREATE TABLE sql_traces(id INTEGER PRIMARY KEY, query TEXT)")
        db.commit()
        db.close()
        good = os.path.join(d, "good.db")
        write_file(good, make_entries(6, 10))
        cases = [
            (["report", os.path.join(d, "missing.db")], "No such file"),
            (["report", d], "not a regular file"),
            (["report", notdb], "not a SQLite database"),
            (["report", other], "no sql_traces table"),
            (["report", badcols], "no duration_us column"),
            (["report", "--format", "xml", good], "--format"),
            (["report", "--sort", "speed", good], "--sort"),
            (["report", "--limit", "-1", good], "--limit"),
            (["report", "--limit", "ten", good], "--limit"),
            (["report", "--since", "yesterday", good], "--since"),
            (["report", "--until", "2026-13-01T00:00:00Z", good], "--until"),
            (["report", "--pid", "abc", good], "--pid"),
            (["report", "--bogus", good], "--bogus"),
            (["report", "--limit"], "--limit"),
            (["report", good, good], "one trace file"),
        ]
        for args, word in cases:
            rc, out, err = run_tool(args)
            check(rc != 0, "%s: exit 0" % args)
            eq(out, "", "%s: stdout" % args)
            lines = err.strip().splitlines()
            eq(len(lines), 1, "%s: one error line, got %r" % (args, err))
            check(lines[0].startswith("sqltrace-bpf: error: ") and word in lines[0],
                  "%s: error %r should mention %r" % (args, lines[0], word))


@test
def test_help():
    rc, out, err = run_tool(["report", "--help"])
    eq(rc, 0, "exit code")
    check("Usage: sqltrace-bpf report" in out and "Examples:" in out, "usage and examples")
    for opt in ("--format", "--sort", "--limit", "--since", "--until", "--pid", "--process", "--db-file",
                "--trace-id", "--errors-only"):
        check(opt in out, "help mentions %s" % opt)


@test
def test_empty_file_and_default_path():
    with tempfile.TemporaryDirectory() as d:
        write_file(os.path.join(d, "traces.db"), [])
        p = subprocess.run([TOOL, "report", "--format", "json"], cwd=d, capture_output=True, text=True)
        eq(p.returncode, 0, "exit code (%s)" % p.stderr)
        eq(json.loads(p.stdout), [], "no groups")


if __name__ == "__main__":
    main()
