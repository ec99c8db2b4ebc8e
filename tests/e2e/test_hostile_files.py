"""test_hostile_files.py — end-to-end tests of the files root writes and
reads for other users (issue 11, items 1, 2 and 8): an unprivileged user
(nobody, through setpriv) prepares a spool directory, a store directory, a
store file or a -wal file, or owns a token file, and the tool, run as root,
must refuse them without writing through them. Also (item 7) an endpoint
that refuses our token keeps the batches, one that calls them malformed
drops them, named in the summary."""
import os
import signal
import sqlite3
import subprocess
import tempfile
import time

from harness import (TARGETS, TOOL, Fail, Skip, Target, check, eq, main, need_bpf, readline_timeout,
                     run_tool, test)

SCRIPT_TARGET = os.path.join(TARGETS, "script_target")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SECRET = b"root-only secret, must stay as it is\n"
PYTHON = "/usr/bin/python3"
PLANTER = """
import os, sys, time
spool, target = sys.argv[1], sys.argv[2]
end = time.time() + 30
while time.time() < end:
    for seq in range(1, 4):
        for n in range(1, 65):
            try:
                os.symlink(target, os.path.join(spool, "tmp-%020d-%d.json" % (seq, n)))
            except OSError:
                pass
    time.sleep(0.005)
"""


def need_root():
    need_bpf()  # root, or a SKIP/FAIL with the reason
    if subprocess.run(NOBODY + ["true"], capture_output=True).returncode != 0:
        raise Skip("setpriv cannot switch to user nobody")


def as_nobody(*argv):
    """Runs argv as user nobody; fails the test if it fails."""
    r = subprocess.run(NOBODY + list(argv), capture_output=True)
    eq(r.returncode, 0, "as nobody: %s: %s" % (" ".join(argv), r.stderr.decode()))


def scratch():
    """A temporary directory nobody can enter but not write (0755, root)."""
    d = tempfile.TemporaryDirectory()
    os.chmod(d.name, 0o755)
    return d


def victim(d):
    """A root-only 0600 file; returns its path."""
    path = os.path.join(d, "victim")
    with open(path, "wb") as f:
        f.write(SECRET)
    os.chmod(path, 0o600)
    return path


def public_dir(d, name, mode):
    path = os.path.join(d, name)
    os.mkdir(path)
    os.chmod(path, mode)
    return path


def run_traced(args, timeout=30):
    """Runs the tool on script_target's two-thread run. When the tool
    refuses to start, returns (exit code, stderr) at once; else lets the
    target run, stops the tool with SIGINT and returns the same."""
    t = Target([SCRIPT_TARGET, "threads"])
    try:
        p = subprocess.Popen([TOOL, "-p", str(t.pid), "-q"] + args, stderr=subprocess.PIPE)
        err = []
        while True:
            line = readline_timeout(p.stderr, timeout)
            if line == "":
                p.wait(timeout=timeout)
                return p.returncode, "".join(err)
            err.append(line)
            if "tracing" in line:
                break
        t.go()
        t.wait_line("done")
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        try:
            rest = p.communicate(timeout=timeout)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            raise Fail("tool did not stop")
        return p.returncode, "".join(err) + rest.decode("utf-8", "replace")
    finally:
        t.finish()
        t.kill()


def closed_port_url():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: every POST fails, batches are spooled
    return "http://127.0.0.1:%d/api/internal/traces" % port


def one_line_error(err, *words):
    lines = [l for l in err.strip().splitlines() if l]
    check(len(lines) == 1, "one line, got: %r" % err)
    for w in words:
        check(w in lines[0], "%r in %r" % (w, lines[0]))


# ---- 1. spool directory -------------------------------------------------------

@test
def test_spool_dir_prepared_by_nobody_cannot_overwrite_root_file():
    need_root()
    with scratch() as d:
        pub = public_dir(d, "pub", 0o1777)  # like /tmp
        target = victim(d)
        spool = os.path.join(pub, "spool")
        as_nobody("mkdir", "-m", "0755", spool)
        # Its owner keeps planting symlinks under every temporary name the
        # first three spool files can have (the tool removes old ones at start).
        planter = subprocess.Popen(NOBODY + [PYTHON, "-c", PLANTER, spool, target])
        try:
            rc, err = run_traced(["--remote", closed_port_url(), "--spool-dir", spool,
                                  "--remote-timeout", "1s"])
        finally:
            planter.kill()
            planter.wait()
        with open(target, "rb") as f:
            data = f.read()
        check(data == SECRET, "the root-only file behind the planted symlinks now holds %r" % data[:60])
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, spool, "owned by")
        check("tracing" not in err, "refused before attaching")


@test
def test_spool_dir_writable_by_others_refused():
    need_root()
    with scratch() as d:
        spool = public_dir(d, "spool", 0o1777)  # root's, but anyone can add files
        target = victim(d)
        as_nobody("ln", "-s", target, os.path.join(spool, "00000000000000000001-1.json"))
        rc, err = run_traced(["--remote", closed_port_url(), "--spool-dir", spool,
                              "--remote-timeout", "1s"])
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, spool, "writable by")


@test
def test_spool_dir_created_by_the_tool_is_0700():
    need_root()
    with scratch() as d:
        spool = os.path.join(d, "new", "spool")
        rc, err = run_traced(["--remote", closed_port_url(), "--spool-dir", spool,
                              "--remote-timeout", "1s"])
        eq(rc, 0, "exit code (stderr: %s)" % err[-500:])
        eq(os.stat(spool).st_mode & 0o7777, 0o700, "spool directory mode")
        eq(os.stat(os.path.dirname(spool)).st_mode & 0o7777, 0o700, "its new parent's mode")
        files = [f for f in os.listdir(spool) if f.endswith(".json")]
        check(files, "batches were spooled")
        for f in files:
            st = os.stat(os.path.join(spool, f))
            eq((st.st_mode & 0o777, st.st_uid), (0o600, 0), "spool file %s" % f)


# ---- 2. output store --------------------------------------------------------------

@test
def test_store_symlink_in_world_writable_dir_not_followed():
    need_root()
    with scratch() as d:
        pub = public_dir(d, "pub", 0o777)  # not sticky: anyone can replace entries
        made = os.path.join(d, "made-by-root")  # does not exist yet
        as_nobody("ln", "-s", made, os.path.join(pub, "traces.db"))
        rc, err = run_traced(["-o", os.path.join(pub, "traces.db")])
        check(not os.path.exists(made), "root created the symlink's target")
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, pub, "writable by")


@test
def test_store_symlink_in_sticky_dir_refused():
    need_root()
    with scratch() as d:
        pub = public_dir(d, "tmp", 0o1777)  # like /tmp: allowed, entries stay their owner's
        made = os.path.join(d, "made-by-root")
        as_nobody("ln", "-s", made, os.path.join(pub, "traces.db"))
        rc, err = run_traced(["-o", os.path.join(pub, "traces.db")])
        check(not os.path.exists(made), "root created the symlink's target")
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, "traces.db", "symbolic link")


@test
def test_store_in_sticky_dir_is_fine_and_private():
    need_root()
    with scratch() as d:
        pub = public_dir(d, "tmp", 0o1777)
        path = os.path.join(pub, "traces.db")
        rc, err = run_traced(["-o", path])
        eq(rc, 0, "exit code (stderr: %s)" % err[-500:])
        check("40 stored" in err, err[-500:])
        st = os.stat(path)
        eq((st.st_uid, st.st_mode & 0o777), (0, 0o600), "owner and mode of the store")


@test
def test_store_file_owned_by_nobody_refused():
    need_root()
    with scratch() as d:
        path = os.path.join(d, "traces.db")
        con = sqlite3.connect(path)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE x(y)")
        con.commit()
        con.close()
        os.chown(path, 65534, 65534)
        os.chmod(path, 0o644)
        before = open(path, "rb").read()
        rc, err = run_traced(["-o", path])
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, path, "owned by")
        eq(open(path, "rb").read(), before, "file untouched")
        for side in ("-wal", "-shm"):
            check(not os.path.exists(path + side), "%s created for nobody to read" % side)


@test
def test_store_wal_planted_by_nobody_refused():
    need_root()
    with scratch() as d:
        pub = public_dir(d, "tmp", 0o1777)
        path = os.path.join(pub, "traces.db")
        con = sqlite3.connect(path)  # root's store from an earlier run, WAL, closed cleanly
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE x(y)")
        con.commit()
        con.close()
        os.chmod(path, 0o600)
        check(not os.path.exists(path + "-wal"), "no -wal left by a clean close")
        # nobody's empty -wal, world-readable: SQLite would log every row into it
        as_nobody("sh", "-c", "umask 0; : > '%s-wal'" % path)
        rc, err = run_traced(["-o", path])
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, "-wal", "owned by")
        eq(os.stat(path + "-wal").st_size, 0, "nothing written into nobody's -wal")


# ---- 8. token files ------------------------------------------------------------

@test
def test_world_readable_token_refused_by_sender_and_server():
    need_root()
    with scratch() as d:
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write("s3cret\n")
        os.chmod(tok, 0o644)
        rc, err = run_traced(["--remote", closed_port_url(), "--spool-dir", os.path.join(d, "s"),
                              "--remote-token-file", tok])
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, tok, "chmod 600")
        p = subprocess.Popen([TOOL, "ingest", "--listen", "127.0.0.1:0", "-o", os.path.join(d, "i.db"),
                              "--token-file", tok], stderr=subprocess.PIPE)
        try:
            err = p.communicate(timeout=10)[1].decode()
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Fail("ingest started with a world-readable token file")
        eq(p.returncode, 1, "ingest exit code (stderr: %s)" % err)
        check(tok in err and "chmod 600" in err, err)


@test
def test_token_owned_by_nobody_refused():
    need_root()
    with scratch() as d:
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write("s3cret\n")
        os.chmod(tok, 0o600)
        os.chown(tok, 65534, 65534)
        rc, err = run_traced(["--remote", closed_port_url(), "--spool-dir", os.path.join(d, "s"),
                              "--remote-token-file", tok])
        eq(rc, 1, "exit code (stderr: %s)" % err)
        one_line_error(err, tok, "owned by")


# ---- 7. what the endpoint answers ---------------------------------------------

class Endpoint:
    """An HTTP endpoint on loopback answering the statuses of `answers` in
    turn (then 204), keeping the JSON arrays it accepted."""

    def __init__(self, answers):
        import http.server
        import json
        import threading
        received = self.received = []
        todo = list(answers)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = todo.pop(0) if todo else 204
                if status == 204:
                    received.extend(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/api/internal/traces" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@test
def test_endpoint_401_then_204_loses_nothing():
    need_bpf()
    with scratch() as d:
        ep = Endpoint([401])
        try:
            rc, err = run_traced(["--remote", ep.url, "--spool-dir", os.path.join(d, "spool")])
        finally:
            ep.stop()
    eq(rc, 0, "exit code (stderr: %s)" % err[-800:])
    check("refused our token" in err, "the cause is said: %s" % err[-800:])
    check("40 sent" in err and "0 lost" in err, err[-800:])
    eq(len(ep.received), 40, "entries the endpoint accepted")


@test
def test_endpoint_422_drops_counted_and_named():
    need_bpf()
    with scratch() as d:
        ep = Endpoint([422] * 100)
        try:
            rc, err = run_traced(["--remote", ep.url, "--spool-dir", os.path.join(d, "spool")])
        finally:
            ep.stop()
    eq(rc, 0, "exit code (stderr: %s)" % err[-800:])
    check("40 lost (40 rejected by the endpoint as malformed)" in err, err[-800:])



if __name__ == "__main__":
    main()
