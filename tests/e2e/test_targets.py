"""test_targets.py — end-to-end tests of targets beyond one PID (issue 5):
-b on a shared library and on an executable with SQLite inside, a process
in its own mount namespace, -- COMMAND, -n, many short-lived processes,
and the database file name of each entry."""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (PYTHON, TARGETS, Fail, Target, Tracer, check, eq, main, need_bpf, run_tool,
                     strip_to_debug_file_only, test, trace_target)

SCRIPT_TARGET = os.path.join(TARGETS, "script_target")
GO_TARGET = os.path.join(TARGETS, "goapp-static")


def system_libsqlite3():
    """The real path of the libsqlite3 the system's programs map."""
    for pattern in ("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0", "/lib/x86_64-linux-gnu/libsqlite3.so.0"):
        for p in glob.glob(pattern):
            return os.path.realpath(p)
    raise Fail("no system libsqlite3")


def binary_tracer(args):
    return Tracer(["--log-format", "json", "--no-store"] + args)


@test
def test_binary_library_traces_new_python_and_shell():
    need_bpf()
    tr = binary_tracer(["-b", system_libsqlite3()])
    try:
        py = subprocess.run([PYTHON, "-c", "import sqlite3; c = sqlite3.connect(':memory:'); "
                             "c.execute(\"SELECT 'from-python-b'\").fetchall()"], timeout=30)
        sh = subprocess.run(["sqlite3", ":memory:", "SELECT 'from-shell-b';"], capture_output=True,
                            timeout=30)
        eq(py.returncode, 0, "python exit")
        eq(sh.stdout, b"from-shell-b\n", "shell output")
        time.sleep(0.3)
    finally:
        eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    by_query = {e["query"]: e for e in tr.entries()}
    check("SELECT 'from-python-b'" in by_query, "python3 statement missing")
    check("SELECT 'from-shell-b';" in by_query, "sqlite3 shell statement missing")
    check(by_query["SELECT 'from-python-b'"]["process"].startswith("python3"), "python process name")
    eq(by_query["SELECT 'from-shell-b';"]["process"], "sqlite3", "shell process name")
    check(by_query["SELECT 'from-python-b'"]["pid"] != by_query["SELECT 'from-shell-b';"]["pid"],
          "two processes")


GO_EXPECTED = [("INSERT INTO g(v) VALUES (?)", "Exec", 0), ("SELECT count(*) FROM g WHERE v = ?", "Query", 1)]


@test
def test_go_static_by_pid():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        entries, tr, out = trace_target([GO_TARGET, os.path.join(d, "g.db")], ["-v"])
    eq([(e["query"], e["op"], e["rows"]) for e in entries], GO_EXPECTED, "Go program's entries")
    # Debian's static libsqlite3.a starts sqlite3_reset with `test %rdi,%rdi`,
    # which the kernel single-steps: the entry probe moves to the `je` after it.
    check(any("attached sqlite3_reset" in l and "moved 3 bytes" in l for l in tr.stderr.splitlines()),
          "reset probe placement: %s" % [l for l in tr.stderr.splitlines() if "sqlite3_reset" in l])
    eq({e.get("lib") for e in entries} - {None}, set(), "lib is not printed by slog")  # stored only
    check(all(e["process"] == "goapp-static" for e in entries), "process name")


@test
def test_go_static_by_binary():
    need_bpf()
    tr = binary_tracer(["-b", GO_TARGET])
    with tempfile.TemporaryDirectory() as d:
        t = Target([GO_TARGET, os.path.join(d, "g.db")])  # started after attach
        t.go()
        t.finish()
    time.sleep(0.3)
    eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    got = [(e["query"], e["op"], e["rows"]) for e in tr.entries() if e["pid"] == t.pid]
    # The CREATE TABLE ran before "ready", after attach: it is traced too.
    eq(got[-2:], GO_EXPECTED, "Go program's entries through -b")
    check(any(q.startswith("CREATE TABLE IF NOT EXISTS g") for q, _, _ in got), "statement run before ready")


def make_container_root(d):
    """A root filesystem for a process in its own mount namespace, whose
    libsqlite3 sits at /opt/ctr-sqlite, a path the host does not have."""
    root = os.path.join(d, "root")
    for sub in ("app", "lib/x86_64-linux-gnu", "lib64", "opt/ctr-sqlite", "tmp"):
        os.makedirs(os.path.join(root, sub))
    shutil.copy(SCRIPT_TARGET, os.path.join(root, "app"))
    for lib in ("libc.so.6", "libm.so.6"):
        shutil.copy(os.path.join("/lib/x86_64-linux-gnu", lib), os.path.join(root, "lib/x86_64-linux-gnu"))
    shutil.copy("/lib64/ld-linux-x86-64.so.2", os.path.join(root, "lib64"))
    shutil.copy(system_libsqlite3(), os.path.join(root, "opt/ctr-sqlite/libsqlite3.so.0"))
    return root


@test
def test_container_mount_namespace():
    need_bpf()
    check(not os.path.exists("/opt/ctr-sqlite"), "the host must not have /opt/ctr-sqlite")
    with tempfile.TemporaryDirectory() as d:
        root = make_container_root(d)
        env = dict(os.environ, LD_LIBRARY_PATH="/opt/ctr-sqlite")
        t = Target(["unshare", "--mount", "--root=" + root, "/app/script_target", "threads"], env=env)
        try:
            maps = open("/proc/%d/maps" % t.pid).read()
            check("/opt/ctr-sqlite/libsqlite3.so.0" in maps, "the target maps its own libsqlite3")
            tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store", "-v"])
            # A host process on the host's libsqlite3 at the same time: not traced.
            host = subprocess.run(["sqlite3", ":memory:", "SELECT 'host-side';"], capture_output=True)
            t.go()
            out = t.finish()
            eq(tr.wait(), 0, "tracer exit")
        finally:
            t.kill()
    entries = tr.entries()
    eq(len(entries), 40, "entries of the namespaced process")
    check(all(e["pid"] == t.pid for e in entries), "only the namespaced process")
    # Probed in its own file, reached through the process (its root or its
    # mapping), never through a host path.
    attach = [l for l in tr.stderr.splitlines() if "attached sqlite3_step at" in l]
    check(attach and all(" at /proc/%d/" % t.pid in l for l in attach), "attach path: %s" % attach)
    check("opt/ctr-sqlite/libsqlite3.so.0" in tr.stderr, "probing line: %s" % tr.stderr[-800:])
    check(not any("host-side" in e["query"] for e in entries), "host process traced")


def go_build_id():
    out = subprocess.run(["readelf", "-n", GO_TARGET], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    raise Fail("the Go target has no build id")


@test
def test_stripped_executable_with_debug_file():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        root = os.path.join(d, "root")
        os.makedirs(os.path.join(root, "app"))
        os.makedirs(os.path.join(root, "tmp"))
        app = os.path.join(root, "app", "goapp")
        strip_to_debug_file_only(GO_TARGET, app)
        argv = ["unshare", "--mount", "--root=" + root, "/app/goapp", "/tmp/g.db"]
        # Without a debug file: a clear error naming what was looked at.
        t = Target(argv)
        try:
            rc, out, err = run_tool(["-p", str(t.pid), "--no-store"])
        finally:
            t.kill()
        eq(rc, 1, "exit code for a stripped executable")
        check("is stripped" in err and "/usr/lib/debug/.build-id" in err, err)
        # With the debug file installed in the process's root: resolved.
        bid = go_build_id()
        dbg = os.path.join(root, "usr/lib/debug/.build-id", bid[:2], bid[2:] + ".debug")
        os.makedirs(os.path.dirname(dbg))
        subprocess.run(["objcopy", "--only-keep-debug", GO_TARGET, dbg], check=True)
        entries, tr, out = trace_target(argv)
    eq([(e["query"], e["op"], e["rows"]) for e in entries], GO_EXPECTED, "entries of the stripped program")


@test
def test_max_targets_exhaustion_is_reported():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "st_maxtgt")
        shutil.copy(SCRIPT_TARGET, prog)
        tr = binary_tracer(["-b", system_libsqlite3(), "-n", "st_maxtgt", "--max-targets", "2"])
        targets = [Target([prog, "threads"]) for _ in range(4)]
        try:
            for t in targets:
                t.go()
                t.wait_line("done")
            time.sleep(0.3)
            eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
        finally:
            for t in targets:
                t.finish()
                t.kill()
    eq(len({e["pid"] for e in tr.entries()}), 2, "processes traced with --max-targets 2")
    check("2 processes not traced: --max-targets reached" in tr.stderr, tr.stderr[-400:])


@test
def test_static_sqlite_with_an_extension_linked_before_the_program():
    """An extension's sqlite3_<name>_init linked before the program's code
    must not make SQLite's code range cover the program: its calls are the
    program's, traced."""
    need_bpf()
    entries, tr, out = trace_target([os.path.join(TARGETS, "static_ext")])
    got = sorted(e["query"] for e in entries)
    eq(got, ["CREATE TABLE static_exec(x)", "SELECT halve(10) AS static_ext"], "entries")


@test
def test_binary_with_pid_ends_when_the_pid_is_gone():
    """-b FILE -p PID: the trace ends by itself when PID exits."""
    need_bpf()
    t = Target([SCRIPT_TARGET, "idle"])
    try:
        tr = Tracer(["-b", system_libsqlite3(), "-p", str(t.pid), "--no-store"])
        t.go()
        t.finish()
        eq(tr.wait(timeout=20), 0, "the tracer ended by itself (%s)" % tr.stderr[-300:])
    finally:
        t.kill()


@test
def test_two_copies_in_one_process():
    need_bpf()
    import sqlite3
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "libsqlite3-copy.so.0")
        shutil.copy(system_libsqlite3(), copy)
        store = os.path.join(d, "t.db")
        t = Target([os.path.join(TARGETS, "two_copies"), copy])
        try:
            tr = Tracer(["-p", str(t.pid), "-o", store, "-q", "-v"])
            t.go()
            t.finish()
            eq(tr.wait(), 0, "tracer exit")
        finally:
            t.kill()
        con = sqlite3.connect(store)
        rows = con.execute("SELECT query, lib FROM sql_traces ORDER BY id").fetchall()
        con.close()
    eq(len(rows), 2, "one entry per copy: %r" % rows)
    libs = {q: lib for q, lib in rows}
    check(libs["SELECT 'from-dlopened-copy'"].endswith("/libsqlite3-copy.so.0"), "copy's lib: %r" % libs)
    check("libsqlite3.so.0" in libs["SELECT 'from-linked-copy'"] and "copy" not in libs["SELECT 'from-linked-copy'"],
          "linked lib: %r" % libs)


@test
def test_command_first_statement_and_exit_status():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "job.py")
        with open(script, "w") as f:
            f.write("import sqlite3, sys\n"
                    "c = sqlite3.connect(sys.argv[1])\n"
                    "c.execute('CREATE TABLE first_statement(x)')\n"
                    "c.execute('INSERT INTO first_statement VALUES (1)')\n"
                    "c.commit()\n"
                    "sys.exit(7)\n")
        rc, out, err = run_tool(["--log-format", "json", "--no-store", "--", PYTHON, script,
                                 os.path.join(d, "job.db")], timeout=60)
    eq(rc, 7, "exit status of the command passed through (stderr: %s)" % err)
    import json
    entries = [json.loads(l) for l in out.splitlines() if l.strip()]
    check(entries, "no entries")
    eq(entries[0]["query"], "CREATE TABLE first_statement(x)", "first statement captured")
    eq([e["query"] for e in entries], ["CREATE TABLE first_statement(x)", "BEGIN",
                                       "INSERT INTO first_statement VALUES (1)", "COMMIT"], "all of them")
    check(all(e["db"].endswith("job.db") for e in entries), "db file name")


@test
def test_exec_into_another_program_is_followed():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "x.py")
        with open(script, "w") as f:
            f.write("import os, sqlite3, sys\n"
                    "c = sqlite3.connect(':memory:')\n"
                    "print('ready', os.getpid(), flush=True); sys.stdin.readline()\n"
                    "c.execute(\"SELECT 'before-exec'\").fetchall()\n"
                    "os.execv('/usr/bin/sqlite3', ['sqlite3', ':memory:', \"SELECT 'after-exec';\"])\n")
        t = Target([PYTHON, script])
        try:
            tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store", "-v"])
            t.go()
            out = t.p.stdout.read()
            t.p.wait(timeout=30)
            eq(tr.wait(), 0, "tracer exit")
        finally:
            t.kill()
    eq(out, b"after-exec\n", "output of the exec'd shell")
    eq([(e["query"], e["process"]) for e in tr.entries()],
       [("SELECT 'before-exec'", "python3"), ("SELECT 'after-exec';", "sqlite3")], "both programs traced")
    check("ran execve" in tr.stderr, "exec noticed: %s" % tr.stderr[-500:])


@test
def test_exec_under_binary_and_name_filter_asks_again():
    """With -b and -n, a process of another name is ignored (and each of its
    threads remembers it); when it execs into a program of the traced name,
    that memory must go."""
    need_bpf()
    marker = "exec-%d" % os.getpid()
    tr = binary_tracer(["-b", system_libsqlite3(), "-n", "sqlite3"])
    try:
        r = subprocess.run([PYTHON, "-c",
                            "import os, sqlite3\n"
                            "c = sqlite3.connect(':memory:')\n"
                            "c.execute(\"SELECT 'ignored-%s'\").fetchall()\n"
                            "os.execv('/usr/bin/sqlite3', ['sqlite3', ':memory:', \"SELECT 'traced-%s';\"])\n"
                            % (marker, marker)], capture_output=True, timeout=30)
        eq(r.stdout, ("traced-%s\n" % marker).encode(), "output of the exec'd shell")
        time.sleep(0.3)
    finally:
        eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    mine = [(e["query"], e["process"]) for e in tr.entries() if marker in e["query"]]
    eq(mine, [("SELECT 'traced-%s';" % marker, "sqlite3")], "only the exec'd program's statement")


@test
def test_command_not_found():
    rc, out, err = run_tool(["--no-store", "--", "/nonexistent/program"])
    eq(rc, 127, "exit status")
    check("cannot run /nonexistent/program: command not found" in err, err)


@test
def test_many_short_lived_processes_under_binary():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "st_shortlived")
        shutil.copy(SCRIPT_TARGET, prog)
        tr = binary_tracer(["-b", system_libsqlite3(), "-n", "st_shortlived", "-v"])
        for i in range(50):
            subprocess.run([prog, "once", str(i)], check=True, timeout=30)
        # A process of another name on the same library: filtered out by -n.
        subprocess.run([SCRIPT_TARGET, "once", "999"], check=True, timeout=30)
        time.sleep(0.5)
        eq(tr.stop(signal.SIGINT), 0, "tracer exit code")
    entries = tr.entries()
    eq(sorted(e["query"] for e in entries), sorted("SELECT 'short-%d'" % i for i in range(50)),
       "one entry per short-lived process")
    eq(len({e["pid"] for e in entries}), 50, "fifty processes")
    check("50 processes through -b (50 exited)" in tr.stderr, tr.stderr[-500:])
    # Processes are forgotten at exit; their statement states are left to the
    # LRU (never walked, never reused: their owner is gone).
    check(re.search(r"state at exit: \d+ statements, 0 processes", tr.stderr),
          "per-process state left: %s" % tr.stderr[-300:])


@test
def test_name_finds_running_processes():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "st_byname")
        shutil.copy(SCRIPT_TARGET, prog)
        targets = [Target([prog, "threads"]) for _ in range(2)]
        try:
            tr = Tracer(["-n", "st_byname", "--log-format", "json", "--no-store"])
            for t in targets:
                t.go()
            for t in targets:
                t.finish()
            eq(tr.wait(), 0, "tracer exit")
        finally:
            for t in targets:
                t.kill()
    eq(sorted({e["pid"] for e in tr.entries()}), sorted(t.pid for t in targets), "both processes")
    eq(len(tr.entries()), 80, "entries")
    rc, out, err = run_tool(["-n", "st_no_such_proc", "--no-store"])
    eq(rc, 1, "exit code without such a process")
    check("no process named st_no_such_proc" in err, err)


@test
def test_db_file_names():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "named.db")
        entries, tr, out = trace_target([SCRIPT_TARGET, "script", path])
        check(entries, "no entries")
        # Opened before attach: recovered from the process.
        eq({e.get("db") for e in entries}, {path}, "file database name")
        entries, tr, out = trace_target([SCRIPT_TARGET, "threads"])
        # Opened after attach, in memory.
        eq({e.get("db") for e in entries}, {":memory:"}, "in-memory database name")
        # Two files opened before attach: each connection gets its own.
        script = os.path.join(d, "two.py")
        with open(script, "w") as f:
            f.write("import os, sqlite3, sys\n"
                    "a = sqlite3.connect(sys.argv[1]); b = sqlite3.connect(sys.argv[2])\n"
                    "a.execute('CREATE TABLE x(y)'); b.execute('CREATE TABLE x(y)')\n"
                    "print('ready', os.getpid(), flush=True); sys.stdin.readline()\n"
                    "a.execute(\"SELECT 'on-a'\").fetchall(); b.execute(\"SELECT 'on-b'\").fetchall()\n")
        pa, pb = os.path.join(d, "a.db"), os.path.join(d, "b.db")
        entries, tr, out = trace_target([PYTHON, script, pa, pb])
        eq([(e["query"], e.get("db")) for e in entries], [("SELECT 'on-a'", pa), ("SELECT 'on-b'", pb)],
           "two databases opened before attach")


@test
def test_binary_errors():
    need_bpf()
    rc, out, err = run_tool(["-b", "/nonexistent/libsqlite3.so", "--no-store"])
    eq(rc, 1, "exit code")
    check("cannot trace -b /nonexistent/libsqlite3.so: No such file or directory" in err, err)
    rc, out, err = run_tool(["-b", "/bin/sleep", "--no-store"])
    eq(rc, 1, "exit code for a file without SQLite")
    check("/bin/sleep" in err and "sqlite3_prepare_v2" in err, err)


if __name__ == "__main__":
    main()
