"""test_prepare.py — end-to-end tests of how prepares are observed: by
default at their entry only (the statement is met at its first step, a
failure at sqlite3ErrorWithMsg), so statements SQLite prepares and runs for
itself inside a prepare must stay hidden, a prepare SQLite retries after a
schema change must not show as a failure, and --prepare-time brings back the
return probe and the prepare_us field."""
import os
import tempfile

from harness import TARGETS, check, eq, main, need_bpf, test, trace_python, trace_script_target, trace_target

SCRIPT_TARGET = os.path.join(TARGETS, "script_target")


def summary(e):
    return (e["query"], e["op"], e.get("rows"), e.get("error"))


# A file with ANALYZE statistics: a new connection's first prepare loads the
# schema and sqlite_stat1 (and sqlite_stat4 where built in) with statements
# of SQLite's own. A second connection's cached schema goes stale when the
# first creates a table: its next prepare fails with SQLITE_SCHEMA inside
# SQLite, which retries it and succeeds.
SCHEMA_SCRIPT = r'''
import os, sqlite3, sys
path = sys.argv[1]
setup = sqlite3.connect(path)
setup.execute("CREATE TABLE a(x INTEGER, y TEXT)")
setup.execute("CREATE INDEX ax ON a(x)")
setup.executemany("INSERT INTO a VALUES (?, ?)", [(i % 50, str(i)) for i in range(500)])
setup.commit()
setup.execute("ANALYZE")
setup.commit()
setup.close()
print("ready", os.getpid(), flush=True); sys.stdin.readline()
c1 = sqlite3.connect(path, isolation_level=None)
assert len(c1.execute("SELECT y FROM a WHERE x = 7").fetchall()) == 10
c2 = sqlite3.connect(path, isolation_level=None)
assert c2.execute("SELECT count(*) FROM a").fetchall() == [(500,)]
c1.execute("CREATE TABLE b(z)")
assert c2.execute("SELECT z FROM b").fetchall() == []
try:
    c2.execute("SELECT nope FROM b")
    raise SystemExit("prepare did not fail")
except sqlite3.OperationalError:
    pass
print("done", flush=True); sys.stdin.readline()
'''


@test
def test_internal_statements_and_schema_retry_stay_hidden():
    need_bpf()
    entries, tr, out = trace_python(SCHEMA_SCRIPT, ["-v"], "a.db")
    check("prepares probed at entry only" in tr.stderr,
          "default placement not reported by -v: %s" % tr.stderr[-2000:])
    eq([summary(e) for e in entries], [
        ("SELECT y FROM a WHERE x = 7", "Query", 10, None),
        ("SELECT count(*) FROM a", "Query", 1, None),
        ("CREATE TABLE b(z)", "Exec", 0, None),
        ("SELECT z FROM b", "Query", 0, None),
        ("SELECT nope FROM b", "Query", 0, "no such column: nope"),
    ], "entries: SQLite's own statements hidden, the retried prepare not a failure")
    failed = entries[-1]
    check(failed["duration"] >= 0 and "prepare" in failed, "a failed prepare is timed: %r" % failed)
    check(all("prepare" not in e for e in entries[:-1]), "no prepare time by default")


# An rtree table on a fresh connection: connecting it calls
# sqlite3_table_column_metadata inside the program's prepare, which reports
# a miss through sqlite3ErrorWithMsg, as a failing prepare does. Then an
# authorizer (a callback of the program's, inside its prepare) runs a
# statement on another connection before denying the prepare.
CALLBACK_SCRIPT = r'''
import os, sqlite3, sys
path = sys.argv[1]
s = sqlite3.connect(path)
s.execute("CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1)")
s.execute("INSERT INTO rt VALUES (1, 0, 1)")
s.execute("CREATE TABLE secret(v)")
s.commit()
s.close()
other = sqlite3.connect(":memory:")
print("ready", os.getpid(), flush=True); sys.stdin.readline()
c = sqlite3.connect(path, isolation_level=None)
assert c.execute("SELECT id FROM rt WHERE x0 >= 0").fetchall() == [(1,)]
def auth(action, a, b, dbname, source):
    other.execute("SELECT 'from-callback'").fetchall()
    return sqlite3.SQLITE_DENY if (a, b) == ("secret", "v") else sqlite3.SQLITE_OK
c.set_authorizer(auth)
try:
    c.execute("SELECT v FROM secret")
    raise SystemExit("prepare was not denied")
except sqlite3.DatabaseError:
    pass
c.set_authorizer(None)
print("done", flush=True); sys.stdin.readline()
'''


@test
def test_errors_inside_a_prepare_that_are_not_its_failure():
    need_bpf()
    entries, tr, out = trace_python(CALLBACK_SCRIPT, db_name="r.db")
    got = [summary(e) for e in entries]
    eq(got[0], ("SELECT id FROM rt WHERE x0 >= 0", "Query", 1, None), "rtree query, no false failure")
    callback = [g for g in got[1:-1]]
    check(callback and all(g == ("SELECT 'from-callback'", "Query", 1, None) for g in callback),
          "the callback's statements: %r" % callback)
    eq(got[-1][:3], ("SELECT v FROM secret", "Query", 0), "the denied prepare")
    check(got[-1][3] and "prohibited" in got[-1][3], "its error: %r" % (got[-1][3],))


@test
def test_prepare_time_option_probes_the_return():
    need_bpf()
    entries, tr, out = trace_script_target(["--prepare-time", "-v"])
    check("prepares probed at entry and return" in tr.stderr, "placement with --prepare-time")
    check(any("sqlite3ErrorWithMsg" in l for l in tr.stderr.splitlines()) is False,
          "sqlite3ErrorWithMsg probed although the return is")
    inserts = [e for e in entries if e["query"].startswith("INSERT INTO t(id, name) VALUES (?1")]
    eq(len(inserts), 5, "inserts")
    check("prepare" in inserts[0] and all("prepare" not in e for e in inserts[1:]),
          "prepare time must come with the first execution only")
    check("prepare" not in entries[-3], "a statement prepared before attach has no prepare time")
    errs = [summary(e) for e in entries if e.get("error")]
    eq(errs, [("INSERT INTO t(id, name) VALUES (1, 'dup')", "Exec", 0, "UNIQUE constraint failed: t.id"),
              ("SELEC * FROM t", "Exec", 0, 'near "SELEC": syntax error')], "failures")


@test
def test_statement_address_reused_on_another_connection():
    """A finalized statement's state is kept for the next statement at its
    address: the connection (db_file) must be the new statement's."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.db"), os.path.join(d, "b.db")
        entries, tr, out = trace_target([SCRIPT_TARGET, "twodb", a, b])
    eq([e["query"] for e in entries], ["SELECT 'on-%d'" % k for k in range(6)], "statements")
    for k, e in enumerate(entries):
        eq(e.get("db"), a if k % 2 == 0 else b, "connection of %r" % e["query"])


@test
def test_statement_finalized_inside_a_call_leaves_no_state():
    """A statement finalized by the program's SQL function, inside another
    statement's step, is the program's call: its execution (one row read)
    ends there with its record, and the next statement at its address starts
    afresh: its own rows and connection, not the finalized one's."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.db"), os.path.join(d, "b.db")
        entries, tr, out = trace_target([SCRIPT_TARGET, "cbfinal", a, b])
    eq([summary(e) for e in entries],
       [("SELECT 'victim' UNION ALL SELECT 'victim2'", "Query", 1, None), ("SELECT fin()", "Query", 1, None),
        ("SELECT 'after'", "Query", 1, None)], "entries")
    eq(entries[0].get("db"), a, "connection of the finalized statement")
    eq(entries[2].get("db"), b, "connection of the statement after")


if __name__ == "__main__":
    main()
