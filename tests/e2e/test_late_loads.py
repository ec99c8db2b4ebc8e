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


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@test
def test_tracer_killed_never_leaves_its_target_stopped():
    """SIGKILL of the tracer while its target loads SQLite over and over
    (each load stops it for a moment): the watchdog continues it, also
    after a late probe hit while the kernel removes the dead tracer's
    probes."""
    need_bpf()
    import random
    import signal
    import time
    loop = subprocess.Popen([os.path.join(TARGETS, "dlloop"), "1000000", "1000"], stdout=subprocess.DEVNULL)
    try:
        for i in range(6):
            tr = Tracer(["-p", str(loop.pid), "--no-store", "-q"])
            time.sleep(0.2 + random.random() * 0.4)
            tr.p.send_signal(signal.SIGKILL)
            tr.p.wait()
            time.sleep(1.5)
            eq(proc_state(loop.pid) != "T", True, "round %d: the target is not left stopped" % i)
    finally:
        loop.kill()
        loop.wait()


LAZY_INPUT = r'''
import time, sys
time.sleep(2)
import sqlite3
db = sqlite3.connect(":memory:")
db.execute("SELECT 'fg-first'").fetchall()
print("GOT " + input("type> "), flush=True)
db.execute("SELECT 'fg-after'").fetchall()
'''


@test
def test_foreground_job_of_a_shell_is_not_stopped():
    """An interactive shell's foreground job that imports sqlite3 after the
    tracer attached: its shell must not see it Stopped (it would take the
    terminal back and leave the job stopped in the background); the job
    reads the terminal as usual. It is told of the load rather than stopped,
    so its statements are captured from just after the load on (the first,
    run at once, may be missed; that is said on stderr)."""
    need_bpf()
    import pty
    import select
    import time
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "fgjob.py")
        with open(script, "w") as f:
            f.write(LAZY_INPUT)
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["PS1"] = "PROMPT$ "
            os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
        out = b""

        def pump(t):
            nonlocal out
            end = time.time() + t
            while time.time() < end:
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        return

        tr = None
        try:
            pump(0.8)
            os.write(fd, ("%s %s\n" % (PYTHON, script)).encode())
            pump(0.5)
            pids = subprocess.run(["pgrep", "-f", script], capture_output=True, text=True).stdout.split()
            check(pids, "the job started")
            tr = Tracer(["-p", pids[0], "--no-store", "--log-format", "json"])
            pump(3)
            os.write(fd, b"hello\n")
            pump(1.5)
            text = out.decode(errors="replace")
            check("GOT hello" in text and "Stopped" not in text, "the job ran in the foreground: %r" % text[-400:])
            eq(tr.wait(30), 0, "tracer exit")
            check("SELECT 'fg-after'" in [e["query"] for e in tr.entries()], "entries: %r" % tr.entries())
            check("foreground job" in tr.stderr, tr.stderr)
        finally:
            if tr is not None and tr.p.poll() is None:
                tr.p.kill()
            os.kill(pid, 9)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
