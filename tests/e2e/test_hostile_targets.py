"""test_hostile_targets.py — end-to-end tests of targets whose files their
owner controls (issue 11): the debug file lookup inside a container's root
must stay inside that root (an absolute or ../ symlink planted there must
not make the tool, running as root, open a host file), a library truncated
by its owner while the tool reads it must not crash the tool, and `make`
with no target builds the tool."""
import ctypes
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from harness import (ROOT, TARGETS, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf, test,
                     strip_to_debug_file_only, trace_target)

GO_TARGET = os.path.join(TARGETS, "goapp-static")
SCRIPT_TARGET = os.path.join(TARGETS, "script_target")
GO_EXPECTED = [("INSERT INTO g(v) VALUES (?)", "Exec", 0), ("SELECT count(*) FROM g WHERE v = ?", "Query", 1)]

IN_OPEN = 0x20
_libc = ctypes.CDLL(None, use_errno=True)


class OpenWatch:
    """Counts the opens of one file (inotify IN_OPEN), by anyone."""

    def __init__(self, path):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        check(self.fd >= 0, "inotify_init1 failed")
        wd = _libc.inotify_add_watch(self.fd, path.encode(), IN_OPEN)
        check(wd >= 0, "inotify_add_watch %s failed" % path)

    def opens(self):
        n = 0
        while True:
            try:
                buf = os.read(self.fd, 4096)
            except BlockingIOError:
                return n
            off = 0
            while off < len(buf):
                _, mask, _, namelen = struct.unpack_from("iIII", buf, off)
                if mask & IN_OPEN:
                    n += 1
                off += 16 + namelen

    def wait_open(self, timeout):
        """Waits for one open event; True when one came."""
        end = time.time() + timeout
        while time.time() < end:
            if self.opens():
                return True
            time.sleep(0.0005)
        return False

    def close(self):
        os.close(self.fd)


def go_build_id():
    out = subprocess.run(["readelf", "-n", GO_TARGET], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    raise Fail("the Go target has no build id")


def stripped_go_root(d):
    """A root with a stripped copy of the Go target at /app/goapp; returns
    (root, path of the debug file for its build id inside root)."""
    root = os.path.join(d, "root")
    os.makedirs(os.path.join(root, "app"))
    os.makedirs(os.path.join(root, "tmp"))
    strip_to_debug_file_only(GO_TARGET, os.path.join(root, "app", "goapp"))
    bid = go_build_id()
    dbg = os.path.join(root, "usr/lib/debug/.build-id", bid[:2], bid[2:] + ".debug")
    os.makedirs(os.path.dirname(dbg))
    return root, dbg


def attach_and_stop(pid, timeout=15):
    """Runs the tool on pid. It either gives up (exits by itself) or
    attaches and traces: then it is stopped with SIGINT after it said so.
    Returns (exit code, stderr, attached)."""
    p = subprocess.Popen([TOOL, "-p", str(pid), "--no-store"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    attached = False
    err = b""
    end = time.time() + timeout
    os.set_blocking(p.stderr.fileno(), False)
    while time.time() < end and p.poll() is None:
        chunk = p.stderr.read() or b""
        err += chunk
        if b"tracing" in err:
            attached = True
            p.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise Fail("the tool neither attached nor gave up within %ds" % timeout)
    os.set_blocking(p.stderr.fileno(), True)
    err += p.stderr.read()
    return rc, err.decode("utf-8", "replace"), attached


@test
def test_debug_symlink_to_host_file_is_not_followed():
    """usr/lib/debug/.build-id/xx/yyyy.debug -> an absolute path, or a
    ../../.. path, that exists on the host (a valid debug file there, whose
    opening inotify sees) but not in the container: the lookup fails inside
    the root, the host file is never opened."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        root, dbg = stripped_go_root(d)
        host_dbg = os.path.join(d, "host-side.debug")   # outside root
        subprocess.run(["objcopy", "--only-keep-debug", GO_TARGET, host_dbg], check=True)
        up = "../" * (dbg.count("/") + 2)
        for target in (host_dbg, up + host_dbg.lstrip("/")):
            if os.path.lexists(dbg):
                os.unlink(dbg)
            os.symlink(target, dbg)
            watch = OpenWatch(host_dbg)
            t = Target(["unshare", "--mount", "--root=" + root, "/app/goapp", "/tmp/g.db"])
            try:
                rc, err, attached = attach_and_stop(t.pid)
            finally:
                t.kill()
            opened = watch.opens()
            watch.close()
            eq(opened, 0, "opens of the host file through %s (tool: %s)" % (target, err.strip()))
            check(not attached, "attached with the host's debug file through %s" % target)
            eq(rc, 1, "exit code (%s)" % err.strip())
            check("is stripped" in err, err)


@test
def test_debug_symlink_to_etc_shadow_is_not_followed():
    """The attack of the issue: the debug file is a symlink to /etc/shadow.
    The host's /etc/shadow is never opened (the root's own /etc/shadow, a
    text file, is found and refused as not ELF)."""
    need_bpf()
    if not os.path.exists("/etc/shadow"):
        raise Fail("no /etc/shadow on this host")
    with tempfile.TemporaryDirectory() as d:
        root, dbg = stripped_go_root(d)
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc", "shadow"), "w") as f:
            f.write("root:*:19000:0:99999:7:::\n")
        os.symlink("/etc/shadow", dbg)
        watch = OpenWatch("/etc/shadow")
        inside = OpenWatch(os.path.join(root, "etc", "shadow"))
        t = Target(["unshare", "--mount", "--root=" + root, "/app/goapp", "/tmp/g.db"])
        try:
            rc, err, attached = attach_and_stop(t.pid)
        finally:
            t.kill()
        host_opens, root_opens = watch.opens(), inside.opens()
        watch.close()
        inside.close()
    eq(host_opens, 0, "opens of the host's /etc/shadow (tool: %s)" % err.strip())
    check(root_opens >= 1, "the root's own /etc/shadow was looked at")
    eq(rc, 1, "exit code (%s)" % err.strip())
    check(not attached, "attached")


@test
def test_debug_symlink_inside_root_is_resolved_there():
    """An absolute symlink that makes sense inside the container (to
    /dbg/goapp.debug, a path the host does not have) is resolved in the
    container: the program is traced through its debug file."""
    need_bpf()
    check(not os.path.exists("/dbg"), "the host must not have /dbg")
    with tempfile.TemporaryDirectory() as d:
        root, dbg = stripped_go_root(d)
        os.makedirs(os.path.join(root, "dbg"))
        subprocess.run(["objcopy", "--only-keep-debug", GO_TARGET, os.path.join(root, "dbg", "goapp.debug")],
                       check=True)
        os.symlink("/dbg/goapp.debug", dbg)
        entries, tr, out = trace_target(["unshare", "--mount", "--root=" + root, "/app/goapp", "/tmp/g.db"])
    eq([(e["query"], e["op"], e["rows"]) for e in entries], GO_EXPECTED, "entries through the in-root symlink")


def make_root_with_library(d):
    """A root for script_target with its own copy of libsqlite3 (owned by
    the test, as a container's owner owns it)."""
    root = os.path.join(d, "root")
    for sub in ("app", "lib/x86_64-linux-gnu", "lib64", "opt/lib", "tmp"):
        os.makedirs(os.path.join(root, sub))
    shutil.copy(SCRIPT_TARGET, os.path.join(root, "app"))
    for lib in ("libc.so.6", "libm.so.6"):
        shutil.copy(os.path.join("/lib/x86_64-linux-gnu", lib), os.path.join(root, "lib/x86_64-linux-gnu"))
    shutil.copy("/lib64/ld-linux-x86-64.so.2", os.path.join(root, "lib64"))
    lib = os.path.join(root, "opt/lib/libsqlite3.so.0")
    src = os.path.realpath("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0")
    shutil.copy(src, lib)
    return root, lib


@test
def test_library_truncated_while_read_does_not_crash():
    """The owner of a mapped library truncates it as soon as the tool opens
    it (inotify), three times: the tool ends by itself or attaches, and is
    never killed by a signal (SIGBUS with a memory-mapped ELF reader)."""
    need_bpf()
    outcomes = []
    for trial in range(3):
        with tempfile.TemporaryDirectory() as d:
            root, lib = make_root_with_library(d)
            env = dict(os.environ, LD_LIBRARY_PATH="/opt/lib")
            t = Target(["unshare", "--mount", "--root=" + root, "/app/script_target", "threads"], env=env)
            try:
                watch = OpenWatch(lib)
                p = subprocess.Popen([TOOL, "-p", str(t.pid), "--no-store"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
                truncated = watch.wait_open(10)
                if truncated:
                    os.truncate(lib, 4096)
                watch.close()
                try:
                    rc = p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGINT)   # it attached: stop it
                    rc = p.wait(timeout=15)
                err = p.stderr.read().decode("utf-8", "replace")
            finally:
                t.kill()
        check(truncated, "the tool never opened the library (%s)" % err.strip())
        check(rc >= 0, "trial %d: the tool was killed by signal %d (stderr: %s)" % (trial, -rc, err.strip()))
        outcomes.append(rc)
    print("    exit codes: %s" % outcomes)


@test
def test_mapped_file_identity_checks_the_device():
    """A chrooted process maps /opt/lib/libsqlite3.so.0 with inode 2 (the
    first file of a fresh tmpfs, its root). /proc/PID/maps names it by its
    host path, ROOT/opt/lib/libsqlite3.so.0; the root's owner makes that
    path exist inside the root too (ROOT/ROOT/opt/lib, another tmpfs) and
    puts there a different libsqlite3.so.0, with the same inode number 2 on
    another device. The tool must probe the file the process maps (same
    inode and device), so the statements are traced; probing the
    look-alike would capture nothing."""
    need_bpf()
    d = tempfile.mkdtemp()
    root = os.path.join(d, "root")
    nested = os.path.join(root, root.lstrip("/"), "opt/lib")
    mounted = []
    t = None
    try:
        os.makedirs(root)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", root], check=True)
        mounted.append(root)
        # the library first, so it gets the first inode number, then moved
        first = os.path.join(root, "libsqlite3.so.0")
        shutil.copy(os.path.realpath("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0"), first)
        for sub in ("app", "lib/x86_64-linux-gnu", "lib64", "opt/lib", "tmp"):
            os.makedirs(os.path.join(root, sub))
        real = os.path.join(root, "opt/lib/libsqlite3.so.0")
        os.rename(first, real)
        shutil.copy(SCRIPT_TARGET, os.path.join(root, "app"))
        for lib in ("libc.so.6", "libm.so.6"):
            shutil.copy(os.path.join("/lib/x86_64-linux-gnu", lib), os.path.join(root, "lib/x86_64-linux-gnu"))
        shutil.copy("/lib64/ld-linux-x86-64.so.2", os.path.join(root, "lib64"))
        # the look-alike: first file of another tmpfs, inside the root
        os.makedirs(nested)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", nested], check=True)
        mounted.append(nested)
        shutil.copy(os.path.realpath("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0"),
                    os.path.join(nested, "libsqlite3.so.0"))
        env = dict(os.environ, LD_LIBRARY_PATH="/opt/lib")
        t = Target(["unshare", "--mount", "--root=" + root, "/app/script_target", "threads"], env=env)
        maps = open("/proc/%d/maps" % t.pid).read()
        check(real in maps, "maps names the library by its host path (the test's premise)")
        a, b = os.stat(real), os.stat("/proc/%d/root%s" % (t.pid, real))
        eq(b.st_ino, a.st_ino, "inode of the look-alike (the test's premise)")
        check(a.st_dev != b.st_dev, "the look-alike is on another device")
        tr = Tracer(["-p", str(t.pid), "--log-format", "json", "--no-store", "-v"])
        t.go()
        t.finish()
        eq(tr.wait(), 0, "tracer exit")
        entries = tr.entries()
    finally:
        if t:
            t.kill()
        for m in reversed(mounted):
            subprocess.run(["umount", m])
        shutil.rmtree(d, ignore_errors=True)
    eq(len(entries), 40, "entries of the process (probes on the file it maps)")


@test
def test_make_default_goal_builds_the_tool():
    """`make` with no target builds everything, the tool included (an
    included module.mk must not make a library the default goal)."""
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["make", "-C", ROOT, "-pqn", "BUILD=" + d], capture_output=True, text=True,
                           timeout=120)
        goal = re.search(r"^\.DEFAULT_GOAL := (.*)$", p.stdout, re.M)
        check(goal, "no .DEFAULT_GOAL in make's database")
        eq(goal.group(1).strip(), "all", "default goal")
        # and `all` has the tool among what it builds
        deps = re.search(r"^all: (.*)$", p.stdout, re.M)
        check(deps and (d + "/sqltrace-bpf") in deps.group(1).split(), "all builds the tool: %s" %
              (deps.group(1) if deps else p.stdout[-400:]))


if __name__ == "__main__":
    main()
