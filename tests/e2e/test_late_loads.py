"""test_late_loads.py — issue 13, items 1, 2, 5: SQLite that a process
loads after the tracer attached (a lazy `import sqlite3`, a library opened
with dlopen under another name), or that a command run with `--` carries or
loads itself (through `env`, `sh -c 'exec ...'`), is probed before its first
statement runs; a process with no SQLite is named, not traced blind."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import (PYTHON, TARGETS, Target, Tracer, check, eq, main, need_bpf, run_tool, test)

LAZY = r'''
import os, sys
print("ready %d" % os.getpid(), flush=True)
sys.stdin.readline()
import sqlite3                      # loads _sqlite3 and libsqlite3 now
db = sqlite3.connect(":memory:")
db.execute("SELECT 'lazy-first'").fetchall()
db.execute("SELECT 'lazy-second'").fetchall()
print("done", flush=True)
sys.stdin.readline()
'''

CTYPES_COPY = r'''
import ctypes, os, sys
print("ready %d" % os.getpid(), flush=True)
sys.stdin.readline()
lib = ctypes.CDLL(sys.argv[1])      # a copy of libsqlite3 under another name, opened now
db = ctypes.c_void_p()
st = ctypes.c_void_p()
assert lib.sqlite3_open_v2(b":memory:", ctypes.byref(db), 6, None) == 0
assert lib.sqlite3_prepare_v2(db, b"SELECT 'from-dlopened-copy'", -1, ctypes.byref(st), None) == 0
while lib.sqlite3_step(st) == 100:
    pass
lib.sqlite3_finalize(st)
print("done", flush=True)
sys.stdin.readline()
'''

SQLITE_ANY = "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0"


def run_script(script, args=(), tool_args=()):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.py")
        with open(path, "w") as f:
            f.write(script)
        t = Target([PYTHON, path] + list(args))
        try:
            tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store", "-v"] + list(tool_args))
            t.go()
            t.wait_line("done")
            t.finish()
            eq(tr.wait(), 0, "tracer exit (%s)" % tr.stderr[-500:])
            return tr.entries(), tr
        finally:
            t.kill()


@test
def test_pid_without_sqlite_waits_and_catches_the_first_statement():
    need_bpf()
    entries, tr = run_script(LAZY)
    check("no SQLite in it yet" in tr.stderr and "waiting" in tr.stderr, tr.stderr[-800:])
    eq([e["query"] for e in entries], ["SELECT 'lazy-first'", "SELECT 'lazy-second'"], "entries")


@test
def test_library_opened_later_under_another_name():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "libother-sqlite.so.7")
        shutil.copy(os.path.realpath(SQLITE_ANY), copy)
        entries, tr = run_script(CTYPES_COPY, [copy])
    eq([e["query"] for e in entries], ["SELECT 'from-dlopened-copy'"], "the first statement through the new copy")
    check(re.search(r"probing \S*libother-sqlite\.so\.7", tr.stderr), "the copy probed: %s" % tr.stderr[-800:])


def run_command(argv, timeout=60):
    p = subprocess.run([os.path.join(os.path.dirname(TARGETS), "sqltrace-bpf"), "--no-store", "--log-format",
                        "json", "-v", "--"] + argv, capture_output=True, timeout=timeout,
                       input=b"go\n\n")
    import json
    entries = [json.loads(l) for l in p.stdout.decode().splitlines() if l.startswith("{")]
    return p.returncode, entries, p.stderr.decode()


@test
def test_command_loading_sqlite_late():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.py")
        with open(path, "w") as f:
            f.write(LAZY)
        for argv in ([PYTHON, path], ["env", PYTHON, path], ["sh", "-c", "exec %s %s" % (PYTHON, path)]):
            rc, entries, err = run_command(argv)
            eq(rc, 0, "exit status of %r (%s)" % (argv, err[-500:]))
            eq([e["query"] for e in entries], ["SELECT 'lazy-first'", "SELECT 'lazy-second'"],
               "entries of %r" % argv)
            check(re.search(r"PID \d+ \(python3\): 2", err), "summary names the program: %s" % err[-300:])


@test
def test_command_static_executable_through_env():
    need_bpf()
    exe = os.path.join(TARGETS, "static_ext")
    rc, entries, err = run_command(["env", exe])
    eq(rc, 0, "exit status (%s)" % err[-500:])
    eq(sorted(e["query"] for e in entries), ["CREATE TABLE static_exec(x)", "SELECT halve(10) AS static_ext"],
       "entries")


@test
def test_command_without_sqlite_is_named():
    need_bpf()
    rc, entries, err = run_command(["sleep", "0.3"])
    eq(rc, 0, "the command's exit status")
    eq(entries, [], "entries")
    check(re.search(r"PID \d+ \(sleep\): 0 \(no SQLite seen\)", err), "the summary says it saw no SQLite: %s" %
          err[-500:])


if __name__ == "__main__":
    main()
