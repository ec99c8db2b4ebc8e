"""harness.py — the in-tree harness for end-to-end tests: runs test
functions, prints PASS/FAIL/SKIP lines and the closing
"N passed, N failed, N skipped" line that tests/run.sh adds up.

BPF tests call need_bpf(): without root they SKIP with the reason, unless
SQLTRACE_REQUIRE_BPF=1, where they FAIL instead (CI runs them for real).
Helpers start a target program, attach the tool to it, and collect what it
printed as JSON lines (--log-format json), so tests compare what was
captured with what ran.
"""
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
TOOL = os.path.join(BUILD, "sqltrace-bpf")
TARGETS = os.path.join(BUILD, "targets")
NPM_DIR = os.path.join(BUILD, "npm")   # npm packages the tests install
PYTHON = "/usr/bin/python3"   # Debian's, linked to the system libsqlite3


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def need_bpf():
    if os.geteuid() != 0:
        reason = "needs root for BPF (run make test with sudo)"
        if os.environ.get("SQLTRACE_REQUIRE_BPF") == "1":
            raise Fail("SQLTRACE_REQUIRE_BPF=1 but " + reason)
        raise Skip(reason)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail("%s: got %r, want %r" % (what, got, want))


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def main():
    passed = failed = skipped = 0
    only = sys.argv[1] if len(sys.argv) > 1 else None
    for fn in _tests:
        if only and only not in fn.__name__:
            continue
        sys.stdout.flush()
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (fn.__name__, e))
        except Fail as e:
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e))
        except Exception:
            failed += 1
            print("FAIL %s: exception" % fn.__name__)
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("PASS %s" % fn.__name__)
        sys.stdout.flush()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


def readline_timeout(f, timeout):
    """Reads one line from a pipe within timeout seconds, or raises Fail."""
    end = time.time() + timeout
    buf = b""
    fd = f.fileno()
    while not buf.endswith(b"\n"):
        left = end - time.time()
        if left <= 0:
            raise Fail("timed out waiting for a line (got %r)" % buf)
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        ch = os.read(fd, 1)
        if not ch:
            break
        buf += ch
    return buf.decode("utf-8", "replace")


class Target:
    """A program that prints 'ready PID' and waits for a line on stdin."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.before = []
        while True:
            line = readline_timeout(self.p.stdout, 10)
            if line.startswith("ready"):
                break
            if line == "":
                raise Fail("target did not start: %s %s" % (
                    "".join(self.before), self.p.stderr.read().decode()))
            self.before.append(line)
        self.pid = self.p.pid

    def go(self):
        self.p.stdin.write(b"go\n")
        self.p.stdin.flush()

    def wait_line(self, prefix, timeout=30):
        while True:
            line = readline_timeout(self.p.stdout, timeout)
            if line == "":
                raise Fail("target ended before %r" % prefix)
            if line.startswith(prefix):
                return line

    def finish(self):
        try:
            self.p.stdin.write(b"bye\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        out = self.p.stdout.read().decode()
        self.p.wait(timeout=30)
        return out

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Tracer:
    """The tool attached to targets; stdout collected as JSON entries."""

    def __init__(self, args, wait_ready=True):
        self.out = tempfile.TemporaryFile()
        self.p = subprocess.Popen([TOOL] + args, stdout=self.out, stderr=subprocess.PIPE)
        self.err_lines = []
        if wait_ready:
            while True:
                line = readline_timeout(self.p.stderr, 30)
                if line == "":
                    self.p.wait()
                    raise Fail("tracer exited before attaching: %s" % "".join(self.err_lines))
                self.err_lines.append(line)
                if "tracing" in line:
                    break

    def wait(self, timeout=30):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise Fail("tracer did not exit within %ds" % timeout)
        self.err_lines.append(self.p.stderr.read().decode("utf-8", "replace"))
        return rc

    def stop(self, sig=2):
        self.p.send_signal(sig)
        return self.wait()

    @property
    def stderr(self):
        return "".join(self.err_lines)

    def entries(self):
        self.out.seek(0)
        res = []
        for line in self.out.read().decode("utf-8").splitlines():
            if line.strip():
                res.append(json.loads(line))
        return res


def strip_to_debug_file_only(src, dst):
    """A stripped copy of src (a fixed-address executable with SQLite linked
    in) whose SQLite cannot be found through its extension API table nor,
    for a Go program, through its cgo wrappers: the table's
    sqlite3_libversion member, which confirms it, is zeroed in the file, and
    so is .eh_frame (the cgo finder needs the functions' extents to tell a
    binding's helpers from SQLite's functions; nothing in these programs
    unwinds C frames). What remains to find SQLite by is a debug file."""
    subprocess.run(["strip", "--strip-all", "-o", dst, src], check=True)
    for line in subprocess.run(["readelf", "-SW", dst], capture_output=True, text=True).stdout.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 5 and f[1] == ".eh_frame":
            off, size = int(f[4], 16), int(f[5], 16)
            with open(dst, "r+b") as fh:
                fh.seek(off)
                fh.write(b"\0" * size)
            break
    else:
        raise Fail("%s: no .eh_frame" % dst)
    addr = {}
    for line in subprocess.run(["nm", src], capture_output=True, text=True).stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[2] in ("sqlite3_libversion", "sqlite3_libversion_number"):
            addr[f[2]] = int(f[0], 16)
    if len(addr) != 2:
        raise Fail("%s: no sqlite3_libversion symbols" % src)
    with open(dst, "r+b") as f:
        data = f.read()
        pat = struct.pack("<QQ", addr["sqlite3_libversion"], addr["sqlite3_libversion_number"])
        at = data.find(pat)
        if at < 0 or at % 8 or data.find(pat, at + 1) >= 0:
            raise Fail("%s: the API table's words are not in the file once" % src)
        f.seek(at)
        f.write(b"\0" * 8)


def npm_better_sqlite3():
    """Installs better-sqlite3 into NPM_DIR (once); Skip when the npm
    registry cannot be reached."""
    r = subprocess.run([os.path.join(ROOT, "tests", "better_sqlite3.sh"), NPM_DIR], capture_output=True,
                       text=True, timeout=1500)
    if r.returncode == 77:
        raise Skip(r.stderr.strip())
    if r.returncode != 0:
        raise Fail("installing better-sqlite3 failed: %s" % r.stderr.strip())


def program_errors(out):
    """What a target printed as "err1 MESSAGE" / "err2 MESSAGE" lines (the
    messages sqlite3_errmsg() gave it: tests/targets/static_errors.c)."""
    got = {}
    for line in out.splitlines():
        k, _, msg = line.partition(" ")
        if k in ("err1", "err2"):
            got[k] = msg
    check(set(got) == {"err1", "err2"}, "target output: %r" % out)
    return got


def run_tool(args, timeout=30):
    """Runs the tool to completion; returns (exit code, stdout, stderr)."""
    p = subprocess.run([TOOL] + args, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def trace_target(target_argv, tool_args=None, env=None):
    """Starts a target, attaches, lets it run its script, waits for both to
    end. Returns (entries, tracer, target stdout)."""
    t = Target(target_argv, env=env)
    try:
        tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store"] + (tool_args or []))
        t.go()
        out = t.finish()
        rc = tr.wait()
        eq(rc, 0, "tracer exit code (stderr: %s)" % tr.stderr)
        return tr.entries(), tr, out
    finally:
        t.kill()


def trace_python(script, tool_args=None, db_name=None):
    """trace_target for a python3 script (Debian's python3, linked to the
    system libsqlite3) that follows the target protocol: the script is
    written to a temporary directory and run with the path of a database
    file there as argv[1] when db_name is given. Returns what trace_target
    does."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "script.py")
        with open(path, "w") as f:
            f.write(script)
        argv = [PYTHON, path] + ([os.path.join(d, db_name)] if db_name else [])
        return trace_target(argv, tool_args)


def trace_script_target(tool_args=None):
    """trace_target for our C target's observer script (script_target
    script DB, tests/targets/script_target.c), on a database in a temporary
    directory. Returns what trace_target does."""
    with tempfile.TemporaryDirectory() as d:
        return trace_target([os.path.join(TARGETS, "script_target"), "script", os.path.join(d, "s.db")],
                            tool_args)
