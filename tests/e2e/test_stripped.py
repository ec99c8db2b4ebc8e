"""End-to-end: programs with SQLite linked in and every symbol stripped.

Their SQLite is found through its extension API table (user/find/apitable.c)
and the internal functions the probes and the layout decoder need through
the calls of its API functions: a stripped copy must be traced as its
unstripped twin is, by -p, -b and --, with SQLite's own messages, rows and
texts. Targets: Debian's libsqlite3.a in a position-independent C program
(static_errors, stripped here) and in a static Go executable at fixed
addresses (goapp-static, stripped here). A program whose SQLite has no API
table (Debian's fossil: stripped, built without loadable extensions) is
named with the reason, in every mode, never traced silently blind."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (TARGETS, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf, program_errors,
                     run_tool, test, trace_target)

STATIC = os.path.join(TARGETS, "static_errors")
GO_TARGET = os.path.join(TARGETS, "goapp-static")
GO_EXPECTED = [("INSERT INTO g(v) VALUES (?)", "Exec", 0), ("SELECT count(*) FROM g WHERE v = ?", "Query", 1)]
DUP = "INSERT INTO items(id, v) VALUES (1, 'dup')"
BAD = "SELEC id FROM items"
SELECT = "SELECT id, v FROM items ORDER BY id"
FOSSIL = "/usr/bin/fossil"


def stripped(src, d, name):
    dst = os.path.join(d, name)
    subprocess.run(["strip", "--strip-all", "-o", dst, src], check=True)
    out = subprocess.run(["readelf", "-S", "-W", dst], capture_output=True, text=True).stdout
    check(".symtab" not in out, "%s still has a .symtab" % dst)
    return dst


def check_static_errors(entries, out, how):
    """The statements static_errors ran, as it saw them."""
    msgs = program_errors(out)
    by_query = {}
    for e in entries:
        by_query.setdefault(e["query"], e)
    for q in (DUP, BAD, SELECT):
        check(q in by_query, "%s: %r not traced; entries: %r" % (how, q, [e["query"] for e in entries]))
    eq(by_query[DUP].get("error"), msgs["err1"], "%s: constraint failure's message" % how)
    eq(by_query[BAD].get("error"), msgs["err2"], "%s: syntax error's message" % how)
    eq(by_query[SELECT].get("rows"), 2, "%s: rows of the SELECT" % how)
    eq(by_query[SELECT].get("error"), None, "%s: the SELECT's error" % how)
    eq(by_query[SELECT].get("op"), "Query", "%s: op" % how)


def layout_line(stderr, path):
    for l in stderr.splitlines():
        if path in l and "layout decoded from its code" in l:
            return l.split("layout decoded from its code:", 1)[1].strip()
    raise Fail("no layout line for %s: %s" % (path, stderr[-1500:]))


@test
def test_stripped_c_program_by_pid_equals_its_unstripped_twin():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        exe = stripped(STATIC, d, "static_errors_stripped")
        entries, tr, out = trace_target([exe], ["-v"])
        check_static_errors(entries, out, "-p")
        check(re.search(re.escape(exe) + r": functions named by its extension API table at 0x[0-9a-f]+ "
                        r"\(SQLite 3\.\d+\.\d+\)", tr.stderr), "-v names the finder: %s" % tr.stderr[-1500:])
        stripped_layout = layout_line(tr.stderr, exe)
        check(stripped_layout.endswith("not decoded: nothing"), "layout of the stripped copy: %s" % stripped_layout)
        check(any(exe in l and "step outcomes read from the statement at sqlite3_step's exit sites" in l
                  for l in tr.stderr.splitlines()), "steps not at their exit site: %s" % tr.stderr[-1500:])
        check(any(exe in l and "prepares probed at entry only (failures at sqlite3ErrorWithMsg)" in l
                  for l in tr.stderr.splitlines()), "prepares not entry-only: %s" % tr.stderr[-1500:])
        _, tr2, _ = trace_target([STATIC], ["-v"])
        eq(stripped_layout, layout_line(tr2.stderr, STATIC), "layout: stripped vs unstripped")


@test
def test_stripped_c_program_by_binary_started_later():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        exe = stripped(STATIC, d, "static_errors_stripped")
        tr = Tracer(["--log-format", "json", "--no-store", "-b", exe])
        try:
            t = Target([exe])
            t.go()
            out = t.finish()
            time.sleep(0.3)
        finally:
            eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
        check_static_errors([e for e in tr.entries() if e["pid"] == t.pid], out, "-b")


@test
def test_stripped_c_program_by_command():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        exe = stripped(STATIC, d, "static_errors_stripped")
        for argv in ([exe], ["sh", "-c", "exec " + exe]):
            p = subprocess.run([TOOL, "--no-store", "--log-format", "json", "--"] + argv, capture_output=True,
                               timeout=60, input=b"go\n\n")
            out = p.stdout.decode()
            eq(p.returncode, 0, "exit status of %r: %s" % (argv, p.stderr.decode()[-800:]))
            import json
            entries = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            check_static_errors(entries, out, "-- %s" % " ".join(argv))


@test
def test_stripped_static_go_program():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        exe = stripped(GO_TARGET, d, "goapp-stripped")
        out = subprocess.run(["file", exe], capture_output=True, text=True).stdout
        check("statically linked" in out and "pie" not in out, "a fixed-address static executable: %s" % out)
        entries, tr, _ = trace_target([exe, os.path.join(d, "g.db")], ["-v"])
        eq([(e["query"], e["op"], e["rows"]) for e in entries], GO_EXPECTED, "entries by -p")
        check("functions named by its extension API table" in tr.stderr, tr.stderr[-1500:])
        tr = Tracer(["--log-format", "json", "--no-store", "-b", exe])
        try:
            t = Target([exe, os.path.join(d, "g2.db")])
            t.go()
            t.finish()
            time.sleep(0.3)
        finally:
            eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
        got = [(e["query"], e["op"], e["rows"]) for e in tr.entries() if e["pid"] == t.pid]
        eq(got[-2:], GO_EXPECTED, "entries by -b")


@test
def test_fossil_is_named_with_its_reason():
    """fossil carries SQLite 3.41 but no symbols, no debug file and no API
    table: -b refuses it with that reason, -p and -- name it once and the
    summary says its SQLite could not be located."""
    need_bpf()
    if not os.path.exists(FOSSIL):
        raise Fail("fossil is not installed (make deps installs it)")
    reason = "carries SQLite (source id 20"
    rc, _, err = run_tool(["--no-store", "-b", FOSSIL, "-p", "1"])
    eq(rc, 1, "exit status of -b fossil")
    check(reason in err and "no SQLite extension API table" in err and "not SQLite" not in err, err)
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, USER="sqltrace-test", HOME=d)
        p = subprocess.run([TOOL, "--no-store", "--", FOSSIL, "init", os.path.join(d, "r.fossil")],
                           capture_output=True, timeout=60, env=env, cwd=d)
        err = p.stderr.decode()
        eq(p.returncode, 0, "exit status of -- fossil init: %s" % err[-800:])
        eq(err.count(reason), 1, "named once: %s" % err)
        check("cannot be traced" in err and "(its SQLite could not be located)" in err, err)
        # fossil's SQL shell, reading statements from its stdin
        sh = subprocess.Popen([FOSSIL, "sql", "-R", os.path.join(d, "r.fossil")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=d)
        try:
            time.sleep(0.5)
            check(sh.poll() is None, "fossil sql did not start")
            tr = Tracer(["--no-store", "--log-format", "json", "-p", str(sh.pid)])
            out, _ = sh.communicate(b"SELECT 'fossil-sql-ran';\n", timeout=30)
            check(b"fossil-sql-ran" in out, "fossil sql output: %r" % out)
            rc = tr.wait()
        finally:
            if sh.poll() is None:
                sh.kill()
                sh.wait()
        eq(tr.entries(), [], "entries from a SQLite that could not be located")
        eq(rc, 0, "tracer exit code")
        eq(tr.stderr.count(reason), 1, "-p names it once: %s" % tr.stderr)
        check("(its SQLite could not be located)" in tr.stderr, tr.stderr)


if __name__ == "__main__":
    main()
