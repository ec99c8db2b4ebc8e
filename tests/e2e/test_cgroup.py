"""test_cgroup.py — `--cgroup PATH`: every process in a cgroup, now and
later. Each test makes its own cgroup under the cgroup2 mount, starts the
tracer on it, puts real target processes in (moved in after the tracer
started, already there, in a cgroup below, in the cgroup made again as
systemd does when a service restarts) and compares the statements captured
for each process with those it ran."""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PYTHON, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf,  # noqa: E402
                     readline_timeout, run_tool, test)

# A python3 target: SQLite loaded before "ready", its statements (tagged
# with TAG) run after the "go" line.
TARGET_SRC = r"""
import sqlite3, sys
tag = sys.argv[1]
c = sqlite3.connect(':memory:', isolation_level=None)  # no implicit BEGIN
print('ready %d' % __import__('os').getpid(), flush=True)
sys.stdin.readline()
c.execute("CREATE TABLE t_%s(x)" % tag)
c.execute("INSERT INTO t_%s VALUES (1)" % tag)
c.execute("SELECT count(*) FROM t_%s" % tag).fetchall()
print('done', flush=True)
sys.stdin.readline()
"""


def expected(tag):
    return ["CREATE TABLE t_%s(x)" % tag, "INSERT INTO t_%s VALUES (1)" % tag,
            "SELECT count(*) FROM t_%s" % tag]


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.startswith("cgroup2 "):
                return pre.split()[4]
    return None


class Cgroup:
    def __init__(self, name):
        base = cgroup2_mount()
        if base is None:
            raise Fail("no cgroup2 file system mounted")
        self.base = base
        self.rel = "sqltrace-test-%d-%s" % (os.getpid(), name)
        self.path = os.path.join(base, self.rel)
        self.make()

    def make(self):
        os.mkdir(self.path)

    def add(self, pid, sub=None):
        d = os.path.join(self.path, sub) if sub else self.path
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write("%d\n" % pid)

    def remove(self):
        """Moves what is left back to the root cgroup and removes the cgroup
        (and those below it)."""
        for d, subs, _ in sorted(os.walk(self.path), key=lambda w: -len(w[0])):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                pids = []
            for p in pids:
                try:
                    with open(os.path.join(self.base, "cgroup.procs"), "w") as f:
                        f.write("%d\n" % p)
                except OSError:
                    pass
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def start_target(tag):
    return Target([PYTHON, "-c", TARGET_SRC, tag])


def wait_stderr(tr, needle, timeout=10):
    """Reads the tracer's stderr until a line holds needle."""
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            raise Fail("tracer never said %r: %s" % (needle, tr.stderr))
        line = readline_timeout(tr.p.stderr, left)
        if line == "":
            raise Fail("tracer ended before saying %r: %s" % (needle, tr.stderr))
        tr.err_lines.append(line)
        if needle in line:
            return line


def run_and_finish(t):
    t.go()
    t.wait_line("done")
    t.finish()


def queries_of(entries, pid):
    return [e["query"] for e in entries if e.get("pid") == pid]


@test
def test_cgroup_traces_process_moved_in_after_start():
    need_bpf()
    cg = Cgroup("moved")
    tr = t = other = None
    try:
        tr = Tracer(["--cgroup", cg.path, "--log-format", "json", "--no-store"])
        t = start_target("moved")
        other = start_target("outside")   # never in the cgroup: not traced
        cg.add(t.pid)
        wait_stderr(tr, "PID %d (" % t.pid)
        run_and_finish(t)
        run_and_finish(other)
        time.sleep(0.3)
        eq(tr.stop(), 0, "tracer exit code")
        ents = tr.entries()
        eq(queries_of(ents, t.pid), expected("moved"), "statements of the process moved in")
        eq(queries_of(ents, other.pid), [], "statements of a process outside the cgroup")
        check("joined: tracing it" in tr.stderr, tr.stderr)
    finally:
        for x in (t, other):
            if x:
                x.kill()
        if tr and tr.p.poll() is None:
            tr.p.kill()
        cg.remove()


@test
def test_cgroup_relative_path_already_there_and_below():
    """A process in the cgroup before the tracer starts, and one in a cgroup
    below it; the cgroup named relative to the cgroup2 mount."""
    need_bpf()
    cg = Cgroup("rel")
    os.mkdir(os.path.join(cg.path, "child"))
    tr = a = b = None
    try:
        a = start_target("before")
        cg.add(a.pid)
        tr = Tracer(["--cgroup", cg.rel, "--log-format", "json", "--no-store"])
        b = start_target("below")
        cg.add(b.pid, "child")
        wait_stderr(tr, "PID %d (" % b.pid)
        run_and_finish(a)
        run_and_finish(b)
        time.sleep(0.3)
        eq(tr.stop(), 0, "tracer exit code")
        ents = tr.entries()
        eq(queries_of(ents, a.pid), expected("before"), "statements of the process there before")
        eq(queries_of(ents, b.pid), expected("below"), "statements of the process in the cgroup below")
    finally:
        for x in (a, b):
            if x:
                x.kill()
        if tr and tr.p.poll() is None:
            tr.p.kill()
        cg.remove()


@test
def test_cgroup_made_again_is_followed():
    """The service stops (its processes end, the cgroup is removed) and
    starts again (a new cgroup of the same path): the tracer goes on and
    traces the new processes."""
    need_bpf()
    cg = Cgroup("again")
    tr = a = b = None
    try:
        tr = Tracer(["--cgroup", cg.path, "--log-format", "json", "--no-store"])
        a = start_target("first")
        cg.add(a.pid)
        wait_stderr(tr, "PID %d (" % a.pid)
        run_and_finish(a)
        cg.remove()
        time.sleep(0.3)
        check(tr.p.poll() is None, "the tracer ended when its cgroup went away: " + tr.stderr)
        cg.make()
        b = start_target("second")
        cg.add(b.pid)
        wait_stderr(tr, "PID %d (" % b.pid)
        run_and_finish(b)
        time.sleep(0.3)
        eq(tr.stop(), 0, "tracer exit code")
        ents = tr.entries()
        eq(queries_of(ents, a.pid), expected("first"), "statements before the restart")
        eq(queries_of(ents, b.pid), expected("second"), "statements after the restart")
    finally:
        for x in (a, b):
            if x:
                x.kill()
        if tr and tr.p.poll() is None:
            tr.p.kill()
        cg.remove()


SCRIPT_TARGET = os.path.join(os.path.dirname(TOOL), "targets", "script_target")


@test
def test_cgroup_exec_traced_from_first_statement():
    """A program exec'd in the cgroup (as systemd starts a service: the
    process joins, then execs) that runs its statement at once and exits,
    is traced from that first statement: stopped at its exec until probed,
    not left to the 100 ms scan. A C program with libsqlite3, and python3
    loading it later (import), five times each."""
    need_bpf()
    cg = Cgroup("exec")
    tr = None
    ran = []
    try:
        tr = Tracer(["--cgroup", cg.path, "--log-format", "json", "--no-store"])
        procs = os.path.join(cg.path, "cgroup.procs")
        for i in range(5):
            p = subprocess.run(["sh", "-c", 'echo $$ > "$1" && exec "$2" once "$3"', "sh", procs, SCRIPT_TARGET,
                                str(i)], capture_output=True, timeout=30)
            eq(p.returncode, 0, "script_target exit: %s" % p.stderr.decode())
            ran.append("SELECT 'short-%d'" % i)
            py = ("import sqlite3; c = sqlite3.connect(':memory:'); c.execute(\"SELECT 'py-%d'\").fetchall()" % i)
            p = subprocess.run(["sh", "-c", 'echo $$ > "$1" && exec "$2" -c "$3"', "sh", procs, PYTHON, py],
                               capture_output=True, timeout=30)
            eq(p.returncode, 0, "python3 exit: %s" % p.stderr.decode())
            ran.append("SELECT 'py-%d'" % i)
        time.sleep(0.3)
        eq(tr.stop(), 0, "tracer exit code")
        got = [e["query"] for e in tr.entries()]
        eq(got, ran, "statements captured, in order")
    finally:
        if tr and tr.p.poll() is None:
            tr.p.kill()
        cg.remove()


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@test
def test_cgroup_processes_that_ended_hold_nothing():
    """A service's processes come and go: those that ended give back their
    probes and pidfds, so the tracer's open files do not grow with them
    (while every statement is still captured)."""
    need_bpf()
    cg = Cgroup("churn")
    tr = None
    procs = os.path.join(cg.path, "cgroup.procs")

    def run_some(first, n):
        for i in range(first, first + n):
            p = subprocess.run(["sh", "-c", 'echo $$ > "$1" && exec "$2" once "$3"', "sh", procs,
                                SCRIPT_TARGET, str(i)], capture_output=True, timeout=30)
            eq(p.returncode, 0, "script_target exit: %s" % p.stderr.decode())
        time.sleep(0.5)  # their exits handled

    try:
        tr = Tracer(["--cgroup", cg.path, "--log-format", "json", "--no-store"])
        run_some(0, 5)
        fds_before = len(os.listdir("/proc/%d/fd" % tr.p.pid))
        run_some(5, 40)
        # (a loaded machine may take a moment over the last exits; holding
        # them grows by ~19 files per process)
        for _ in range(50):
            fds_after = len(os.listdir("/proc/%d/fd" % tr.p.pid))
            if fds_after <= fds_before + 8:
                break
            time.sleep(0.1)
        check(fds_after <= fds_before + 8, "open files grew from %d to %d over 40 processes" % (fds_before, fds_after))
        eq(tr.stop(), 0, "tracer exit code")
        eq([e["query"] for e in tr.entries()], ["SELECT 'short-%d'" % i for i in range(45)], "statements")
        check("45 processes through --cgroup (45 exited)" in tr.stderr, "summary: " + tr.stderr[-500:])
    finally:
        if tr and tr.p.poll() is None:
            tr.p.kill()
        cg.remove()


STATIC_SRC = "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n"


def killed_tracer_leaves_nothing_stopped(sub):
    """The tracer stops a process that execs in the cgroup (or one below
    it: sub) until it is probed; killed (SIGKILL) meanwhile, its watchdog
    continues the stopped processes of the cgroup and of those below it.
    Here a static program with no SQLite (never a target, so not continued
    for being one) is stopped by hand, as the BPF side would stop it."""
    need_bpf()
    cg = Cgroup("watchdog" + ("-" + sub if sub else ""))
    if sub:
        os.makedirs(os.path.join(cg.path, sub, "deeper"))
    tr = None
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "pause_static")
        with open(exe + ".c", "w") as f:
            f.write(STATIC_SRC)
        r = subprocess.run(["cc", "-static", "-O1", exe + ".c", "-o", exe], capture_output=True)
        if r.returncode != 0:
            raise Fail("cannot build a static program: %s" % r.stderr.decode())
        p = subprocess.Popen([exe])
        try:
            tr = Tracer(["--cgroup", cg.path, "--log-format", "json", "--no-store", "-v"])
            cg.add(p.pid, os.path.join(sub, "deeper") if sub else None)
            wait_stderr(tr, "PID %d not traced" % p.pid)
            os.kill(p.pid, signal.SIGSTOP)
            for _ in range(50):
                if proc_state(p.pid) == "T":
                    break
                time.sleep(0.02)
            eq(proc_state(p.pid), "T", "process stopped")
            tr.p.kill()
            tr.p.wait()
            for _ in range(100):
                if proc_state(p.pid) != "T":
                    break
                time.sleep(0.05)
            check(proc_state(p.pid) != "T", "process left stopped after the tracer was killed")
        finally:
            p.kill()
            p.wait()
            if tr and tr.p.poll() is None:
                tr.p.kill()
            cg.remove()


@test
def test_cgroup_killed_tracer_leaves_nothing_stopped():
    killed_tracer_leaves_nothing_stopped(None)


@test
def test_cgroup_killed_tracer_leaves_nothing_stopped_below():
    killed_tracer_leaves_nothing_stopped("inner")


@test
def test_cgroup_errors():
    rc, _, err = run_tool(["--cgroup", "/nonexistent/cg"])
    check(rc != 0, "exit code %d" % rc)
    check("--cgroup /nonexistent/cg: no such cgroup directory" in err, err)
    rc, _, err = run_tool(["--cgroup", "x", "-b", "/bin/true"])
    eq(rc, 2, "exit code of --cgroup with -b")
    check("cannot be combined" in err, err)


if __name__ == "__main__":
    main()
