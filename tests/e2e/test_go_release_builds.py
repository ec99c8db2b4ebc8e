#!/usr/bin/env python3
"""test_go_release_builds.py — real release builds of a Go program on
mattn/go-sqlite3, as users ship them: dbmate (a database-migration CLI) from
the npm package @dbmate/linux-x64, one version per Go minor release it was
built with (go1.20 to go1.27; none was built with go1.22), each stripped
(-s), static, with sqlite_omit_load_extension (no extension API table):
only its cgo wrappers can name SQLite's functions (user/find/cgofind.c).
tests/dbmate.sh fetches the pinned versions into $BUILD/dbmate.

Per version, on migrations in a temporary directory: `up` on a new
database and `status` under `--` (with -v), then `rollback`, an `up` whose
migration breaks a UNIQUE constraint and an `up` whose migration has a
syntax error, all by dbmate processes started after a `-b` tracer attached
to the file. What was captured must be what dbmate ran, in order: every
statement of the migration files with its exact text, op and error (the
error being SQLite's message, the one dbmate printed), and dbmate's own
bookkeeping (EXPECTED below says where each comes from); nothing empty,
nothing twice. -v must say the cgo wrappers named the functions and give a
layout with db/pErr/rc/zErrMsg decoded.

Such a build has no sqlite3_sql: until the tool has learned where a
statement keeps its text, the text is the prepare's up to where SQLite left
*pzTail (bpf/sqltrace.bpf.c), so a statement that mattn prepared from a
longer migration is still reported with its own text.
Skipped only when the npm registry cannot be reached, and never in CI
(CI=true or SQLTRACE_REQUIRE_BPF=1: a failure there)."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from harness import BUILD, ROOT, TOOL, Fail, Skip, Tracer, check, eq, main, need_bpf, test

DIR = os.path.join(BUILD, "dbmate")

# NAME (tests/dbmate.sh) -> (Go release, mattn/go-sqlite3 version), as each
# build's own build info says (`go version -m`).
RELEASES = {
    "go1.20-2.0.1": ("go1.20.1", "v1.14.16"),
    "go1.21-2.20.0": ("go1.21.13", "v1.14.22"),
    "go1.23-2.24.0": ("go1.23.2", "v1.14.24"),
    "go1.24-2.28.0": ("go1.24.3", "v1.14.28"),
    "go1.25-2.29.5": ("go1.25.5", "v1.14.33"),
    "go1.26-2.32.0": ("go1.26.1", "v1.14.37"),
    "go1.27-2.36.0": ("go1.27.1", "v1.14.42"),
}

# The migration files: version -> (up statements, down statements). dbmate
# hands a section to database/sql's Exec as it is in the file, from its
# "-- migrate:up" / "-- migrate:down" line to the next section (or the end);
# mattn prepares the first statement from the section's start (so SQLite's
# text of that statement, sqlite3_sql(), begins with the marker comment) and
# each next one from the previous tail with white space trimmed
# (mattn's prepare: strings.TrimSpace of the tail), until the tail is empty.
ITEMS = ("20240101000000",
         ["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
          "INSERT INTO items (name) VALUES ('alpha');",
          "INSERT INTO items (name) VALUES ('beta');"],
         ["DROP TABLE items;"])
TAGS = ("20240102000000",
        ["CREATE TABLE tags (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items(id), tag TEXT);"],
        ["DROP TABLE tags;"])
# 'alpha' is in items already: the second statement fails, the first is
# rolled back with it.
UNIQUE = ("20240103000000",
          ["INSERT INTO items (name) VALUES ('gamma');",
           "INSERT INTO items (name) VALUES ('alpha');"],
          ["DELETE FROM items WHERE name = 'gamma';"])
UNIQUE_ERROR = "UNIQUE constraint failed: items.name"
# The same version, rewritten: the second statement does not prepare.
SYNTAX = ("20240103000000",
          ["INSERT INTO items (name) VALUES ('delta');",
           "CREATE TABEL broken (id INTEGER);"],
          ["DELETE FROM items WHERE name = 'delta';"])
SYNTAX_ERROR = 'near "TABEL": syntax error'


def section(marker, stmts):
    return "-- migrate:%s\n%s\n" % (marker, "\n".join(stmts))


def file_text(mig):
    return section("up", mig[1]) + "\n" + section("down", mig[2])


def statements(marker, stmts, text_of_section):
    """SQLite's own text of each statement of a section that mattn prepares
    one at a time (the first keeps the marker's comment line before it)."""
    out = []
    rest = text_of_section
    for i, s in enumerate(stmts):
        own = ("-- migrate:%s\n" % marker if i == 0 else "") + s
        check(rest.startswith(own), "section %r does not go on with %r" % (rest, own))
        out.append(own)
        rest = rest[len(own):].strip()
    return out


def up_section(mig, last=None):
    """The up section as dbmate passes it to Exec (the file's text up to the
    down marker); last: how many statements run (the rest after an error)."""
    text = section("up", mig[1]) + "\n"
    return statements("up", mig[1], text)[:last]


def down_section(mig):
    return statements("down", mig[2], section("down", mig[2]))


# dbmate's bookkeeping (pkg/dbmate/db.go, pkg/driver/sqlite/sqlite.go), the
# same in every version here:
# FindMigrations: MigrationsTableExists, then, when it does, SelectMigrations
# with no limit; openDatabaseForMigration: CreateMigrationsTable; each
# migration in a transaction (database/sql's Begin/Commit/Rollback: mattn
# runs BEGIN / COMMIT / ROLLBACK) around the section and InsertMigration
# (up) or DeleteMigration (down). `up` on a missing file first creates the
# database (sql.Open + Ping: a connection, only mattn's PRAGMAs), then
# FindMigrations, then openDatabaseForMigration; `rollback` the other way
# round; `status` FindMigrations only. Entries are (text, op, error,
# rows), rows only for queries (what the query returned).
EXISTS = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=$1"
SELECT = 'select version from "schema_migrations" order by version desc'
CREATE = 'create table if not exists "schema_migrations" (version varchar(128) primary key)'
INSERT = 'insert into "schema_migrations" (version) values (?)'
DELETE = 'delete from "schema_migrations" where version = ?'
# mattn's Open sets these on every new connection (busy timeout 5000 ms,
# _locking_mode and _sync at their defaults), run through sqlite3_exec.
PRAGMAS = ["PRAGMA busy_timeout = 5000;", "PRAGMA locking_mode = NORMAL;", "PRAGMA synchronous = NORMAL;"]


def q(text, rows):
    return (text, "Query", None, rows)


def x(text, error=None):
    return (text, "Exec", error, None)


def migrate(stmts, error=None, bookkeeping=INSERT):
    """BEGIN, the section's statements (the last with error), the record,
    COMMIT; or on error ROLLBACK in place of the record and COMMIT."""
    out = [x("BEGIN")]
    for i, own in enumerate(stmts):
        out.append((own, "Exec", error if error and i == len(stmts) - 1 else None, None))
    return out + ([x("ROLLBACK")] if error else [x(bookkeeping), x("COMMIT")])


EXPECTED = {
    "up": [q(EXISTS, 0), x(CREATE)] + migrate(up_section(ITEMS)) + migrate(up_section(TAGS)),
    "status": [q(EXISTS, 1), q(SELECT, 2)],
    "rollback": [x(CREATE), q(EXISTS, 1), q(SELECT, 2)] + migrate(down_section(TAGS), bookkeeping=DELETE),
    "unique": ([q(EXISTS, 1), q(SELECT, 1), x(CREATE)] + migrate(up_section(TAGS)) +
               migrate(up_section(UNIQUE), UNIQUE_ERROR)),
    "syntax": [q(EXISTS, 1), q(SELECT, 2), x(CREATE)] + migrate(up_section(SYNTAX), SYNTAX_ERROR),
}


def in_ci():
    return os.environ.get("CI") == "true" or os.environ.get("SQLTRACE_REQUIRE_BPF") == "1"


_fetched = {}


def exe(name):
    """The release's executable (tests/dbmate.sh, once); Skip when the npm
    registry cannot be reached, outside CI."""
    if not _fetched:
        r = subprocess.run([os.path.join(ROOT, "tests", "dbmate.sh"), DIR], capture_output=True, text=True,
                           timeout=2400)
        if r.returncode == 77 and not in_ci():
            raise Skip(r.stderr.strip())
        if r.returncode != 0:
            raise Fail("tests/dbmate.sh (exit %d): %s" % (r.returncode, r.stderr.strip()[-600:]))
        for line in r.stdout.splitlines():
            n, _, path = line.partition(" ")
            _fetched[n] = path
        eq(sorted(_fetched), sorted(RELEASES), "releases fetched")
    return os.path.abspath(_fetched[name])


def write_migration(d, mig, name):
    with open(os.path.join(d, "%s_%s.sql" % (mig[0], name)), "w") as f:
        f.write(file_text(mig))


def dbmate_argv(path, d, cmd):
    return [path, "--no-dump-schema", "--url", "sqlite:" + os.path.join(d, "x.sqlite3"),
            "--migrations-dir", os.path.join(d, "m"), cmd]


def by_command(path, d, cmd):
    """dbmate CMD under `-- `, with -v: (entries, dbmate's output, -v)."""
    p = subprocess.run([TOOL, "-v", "--no-store", "--log-format", "json", "--"] + dbmate_argv(path, d, cmd),
                       capture_output=True, timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    eq(p.returncode, 0, "-- dbmate %s: exit code (stderr: %s)" % (cmd, err[-800:]))
    out = p.stdout.decode("utf-8", "replace")
    entries = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return entries, "\n".join(l for l in out.splitlines() if not l.startswith("{")), err


def compare(entries, want, db, how):
    """Captured entries against want ((text, op, error, rows) in order,
    mattn's PRAGMAs aside)."""
    check(entries, "%s: nothing captured" % how)
    for e in entries:
        check(e.get("query"), "%s: an entry without text: %r" % (how, e))
        eq(e.get("db"), db, "%s: database of %r" % (how, e["query"]))
    pragmas = [e["query"] for e in entries if e["query"].startswith("PRAGMA ")]
    check(pragmas and pragmas == PRAGMAS * (len(pragmas) // len(PRAGMAS)),
          "%s: mattn's connection set-up: %r" % (how, pragmas))
    mine = [e for e in entries if not e["query"].startswith("PRAGMA ")]
    got = [(e["query"], e["op"], e.get("error"), e.get("rows", 0) if e["op"] == "Query" else None) for e in mine]
    eq(got, want, "%s: statements in order" % how)


def by_binary(path, d, runs):
    """-b on the executable; then each (cmd, prepare) in runs: prepare(),
    dbmate cmd started later. Returns [(entries, exit code, output)]."""
    tr = Tracer(["-v", "--log-format", "json", "--no-store", "-b", path])
    res = []
    try:
        for cmd, prepare in runs:
            prepare()
            p = subprocess.Popen(dbmate_argv(path, d, cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = p.communicate(timeout=120)[0].decode("utf-8", "replace")
            res.append((p.pid, p.returncode, out))
        time.sleep(0.5)
    finally:
        eq(tr.stop(signal.SIGINT), 0, "-b tracer exit code (stderr: %s)" % tr.stderr[-800:])
    entries = tr.entries()
    pids = {pid for pid, _, _ in res}
    check({e["pid"] for e in entries} <= pids, "-b: entries of other processes")
    return [([e for e in entries if e["pid"] == pid], rc, out) for pid, rc, out in res], tr.stderr


def found_by_cgo(stderr, path, how):
    lines = [l for l in stderr.splitlines() if path in l]
    check(any("functions named by its Go cgo wrappers of github.com/mattn/go-sqlite3" in l for l in lines),
          "%s: not named by the cgo wrappers: %s" % (how, lines))
    dec = [l for l in lines if "layout decoded from its code" in l]
    check(dec, "%s: -v has no layout decoded from its code: %s" % (how, lines))
    for field in ("db=", "pErr=", "rc=", "zErrMsg="):
        check(field in dec[0].split("not decoded")[0], "%s: %s not decoded: %s" % (how, field, dec[0]))
    check("not its message" not in dec[0], "%s: errors would lack SQLite's message: %s" % (how, dec[0]))


def run_release(name):
    """Runs the five dbmate commands of one release under the tool; returns
    ({cmd: entries}, db path) after checking what does not depend on the
    entries: the build's premise, -v, dbmate's own output."""
    path = exe(name)
    go, mattn = RELEASES[name]
    info = subprocess.run(["go", "version", "-m", path], capture_output=True, text=True).stdout
    check(info.splitlines() and info.splitlines()[0].endswith(": " + go), "%s: build info %r" % (name, info[:200]))
    check("\tgithub.com/mattn/go-sqlite3\t%s\t" % mattn in info, "%s: not built with mattn %s" % (name, mattn))
    check("sqlite_omit_load_extension" in info and '-ldflags="-s ' in info, "%s: build flags %s" % (name, info))
    sections = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    check(".symtab" not in sections and ".dynsym" not in sections, "%s: has a symbol table" % name)
    need_bpf()
    res = {}
    with tempfile.TemporaryDirectory() as d:
        d = os.path.realpath(d)
        db = os.path.join(d, "x.sqlite3")
        os.mkdir(os.path.join(d, "m"))
        write_migration(os.path.join(d, "m"), ITEMS, "items")
        write_migration(os.path.join(d, "m"), TAGS, "tags")
        entries, out, err = by_command(path, d, "up")
        found_by_cgo(err, path, "-- " + name)
        # zSql decoded from its code (sqlite3Reprepare's call of
        # sqlite3_sql), never left to learning by chance
        check(re.search(r"layout decoded from its code: zSql=\d+ db=0 ", err),
              "%s: zSql not decoded: %s" % (name, [l for l in err.splitlines() if "layout decoded" in l]))
        check("Applying: %s_tags.sql" % TAGS[0] in out.splitlines(), "%s up: dbmate said %r" % (name, out))
        res["up"] = entries
        entries, out, err = by_command(path, d, "status")
        check("Applied: 2" in out and "Pending: 0" in out, "%s status: dbmate said %r" % (name, out))
        res["status"] = entries

        def bad(mig):
            return lambda: write_migration(os.path.join(d, "m"), mig, "bad")
        runs, err = by_binary(path, d, [("rollback", lambda: None), ("up", bad(UNIQUE)), ("up", bad(SYNTAX))])
        found_by_cgo(err, path, "-b " + name)
        for (entries, rc, out), cmd, rc_want, said in zip(
                runs, ("rollback", "unique", "syntax"), (0, 2, 2),
                ("Rolling back: %s_tags.sql" % TAGS[0], "Error: " + UNIQUE_ERROR, "Error: " + SYNTAX_ERROR)):
            eq(rc, rc_want, "%s %s: dbmate's exit code (%s)" % (name, cmd, out))
            # The error entries must carry the message dbmate printed (the
            # driver's sqlite3_errmsg()).
            check(any(l.startswith(said) for l in out.splitlines()), "%s %s: dbmate said %r" % (name, cmd, out))
            res[cmd] = entries
    return res, db


def make_test(name):
    def t():
        res, db = run_release(name)
        for cmd, want in EXPECTED.items():
            compare(res[cmd], want, db, "%s %s" % (name, cmd))
    tag = name.split("-")[0].replace(".", "_")
    t.__name__ = "test_%s_dbmate_%s" % (tag, name.split("-")[1].replace(".", "_"))
    return t


for _n in RELEASES:
    test(make_test(_n))


if __name__ == "__main__":
    main()
