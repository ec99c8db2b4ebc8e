"""test_pipeline.py — end-to-end tests of where entries go (issues 3 and
4): a real target traced into a local trace file (checked with a separate
SQLite connection), a Go-tracer file extended, an incompatible file refused
before attaching, and the remote round trip through our ingest server."""
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

from harness import (TARGETS, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf, readline_timeout,
                     run_tool, test)

SCRIPT_TARGET = os.path.join(TARGETS, "script_target")
SEED_SCHEMA = """CREATE TABLE sql_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT,
    op TEXT NOT NULL, query TEXT NOT NULL, duration_us INTEGER NOT NULL, error TEXT,
    timestamp INTEGER NOT NULL)"""


def rows_of(path, where=""):
    con = sqlite3.connect(path)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM sql_traces %s ORDER BY id" % where)]
    finally:
        con.close()


def trace_threads_into(args):
    """Traces script_target's two-thread run; stops the tracer with SIGINT
    while the target is still alive. Returns the tracer."""
    t = Target([SCRIPT_TARGET, "threads"])
    try:
        tr = Tracer(["-p", str(t.pid), "-q"] + args)
        t.go()
        t.wait_line("done")
        time.sleep(0.2)
        eq(tr.stop(signal.SIGINT), 0, "tracer exit code (%s)" % tr.stderr)
    finally:
        t.finish()
        t.kill()
    tr.target_pid = t.pid
    return tr


@test
def test_local_store_end_to_end():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "traces.db")
        tr = trace_threads_into(["-o", path])
        eq(os.stat(path).st_mode & 0o777, 0o600, "trace file mode")
        rows = rows_of(path)
    eq(len(rows), 40, "rows written before exit")
    check("40 stored, 0 dropped" in tr.stderr, tr.stderr)
    for r in rows:
        eq(r["trace_id"], "", "empty trace id stored as ''")
        eq(r["error"], "", "empty error stored as ''")
        eq(r["op"], "Query", "op")
        eq(r["pid"], tr.target_pid, "pid column")
        eq(r["process"], "script_target", "process column")
        eq(r["rows"], 1, "rows column")
        check(r["query"].startswith("SELECT "), "query column")
        check(r["timestamp"] > 1.7e15, "timestamp in unix µs")
    eq(sorted(r["query"] for r in rows),
       sorted("SELECT %d AS thread_%d_query_%d" % (i, t, i) for t in range(2) for i in range(20)),
       "the statements that ran")


@test
def test_full_queue_backpressure_into_ring_buffer():
    need_bpf()
    # A queue of 4 entries fills at once under a burst of 40: the consumer
    # waits for room (the ring buffer holds the rest) instead of dropping.
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "traces.db")
        tr = trace_threads_into(["-o", path, "--queue-size", "4", "--batch-size", "2"])
        eq(len(rows_of(path)), 40, "rows")
    check("40 stored, 0 dropped (queue full), 0 lost" in tr.stderr, tr.stderr)


@test
def test_stuck_store_neither_hangs_nor_stalls_tracing():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        mnt = os.path.join(d, "small")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", mnt], capture_output=True)
        eq(r.returncode, 0, "mount a tiny tmpfs: %s" % r.stderr)
        try:
            # Fill the store's file system once the store is open.
            t = Target([SCRIPT_TARGET, "threads"])
            try:
                tr = Tracer(["-p", str(t.pid), "-q", "-o", os.path.join(mnt, "t.db"),
                             "--queue-size", "4", "--batch-size", "2"])
                with open(os.path.join(mnt, "filler"), "wb") as f:
                    try:
                        f.write(b"x" * (1 << 20))
                    except OSError:
                        pass
                t.go()
                t.wait_line("done")
                start = time.time()
                eq(tr.stop(signal.SIGINT), 0, "exit code with a full disk")
                took = time.time() - start
            finally:
                t.finish()
                t.kill()
        finally:
            subprocess.run(["umount", "-l", mnt])
    check(took < 20, "stopping took %.1f s" % took)
    check("40 entries" in tr.stderr, tr.stderr[-500:])
    check("trace store write failed" in tr.stderr, "the failure is reported: %s" % tr.stderr[-500:])
    import re
    m = re.search(r"(\d+) stored, (\d+) dropped \(queue full\), (\d+) lost", tr.stderr)
    check(m and int(m.group(1)) + int(m.group(2)) + int(m.group(3)) == 40, "every entry accounted for: %s"
          % tr.stderr[-500:])


@test
def test_default_store_is_traces_db_in_cwd():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        t = Target([SCRIPT_TARGET, "threads"])
        try:
            p = subprocess.Popen([TOOL, "-p", str(t.pid), "-q"], cwd=d, stderr=subprocess.PIPE)
            line = readline_timeout(p.stderr, 30)
            check("storing into traces.db" in line, line)
            t.go()
            t.finish()
            eq(p.wait(timeout=30), 0, "exit")
        finally:
            t.kill()
        eq(len(rows_of(os.path.join(d, "traces.db"))), 40, "rows in ./traces.db")


@test
def test_go_tracer_file_is_extended_not_rewritten():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "go.db")
        con = sqlite3.connect(path)
        con.execute(SEED_SCHEMA)
        con.execute("INSERT INTO sql_traces(trace_id, op, query, duration_us, error, timestamp) "
                    "VALUES ('req-1', 'Query', 'SELECT 1', 12, '', 1700000000000000)")
        con.commit()
        con.close()
        trace_threads_into(["-o", path])
        rows = rows_of(path)
    eq(len(rows), 41, "the Go row and ours")
    eq((rows[0]["trace_id"], rows[0]["query"], rows[0]["pid"]), ("req-1", "SELECT 1", None),
       "the Go tracer's row kept, extra columns NULL")


@test
def test_incompatible_file_refused_before_attaching():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bad.db")
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE sql_traces (id INTEGER PRIMARY KEY, op INTEGER)")
        con.commit()
        con.close()
        before = open(path, "rb").read()
        t = Target([SCRIPT_TARGET, "idle"])
        try:
            rc, out, err = run_tool(["-p", str(t.pid), "-o", path])
        finally:
            t.kill()
        eq(rc, 1, "exit code")
        check(len(err.strip().splitlines()) == 1 and "sql_traces" in err, err)
        check("tracing" not in err, "must fail before attaching")
        eq(open(path, "rb").read(), before, "file untouched")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Ingest:
    def __init__(self, d, extra=None):
        self.port = free_port()
        self.db = os.path.join(d, "ingest.db")
        self.p = subprocess.Popen([TOOL, "ingest", "--listen", "127.0.0.1:%d" % self.port, "-o", self.db]
                                  + (extra or []), stderr=subprocess.PIPE)
        line = readline_timeout(self.p.stderr, 10)
        check("listening" in line, "ingest did not start: %s" % line)
        self.url = "http://127.0.0.1:%d/api/internal/traces" % self.port

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        eq(self.p.wait(timeout=30), 0, "ingest exit code")


@test
def test_remote_round_trip_through_ingest():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        ing = Ingest(d)
        try:
            tr = trace_threads_into(["--remote", ing.url, "--spool-dir", os.path.join(d, "spool")])
        finally:
            ing.stop()
        rows = rows_of(ing.db)
        check(not os.path.exists(os.path.join(d, "traces.db")), "--remote alone stores no local file")
    check("40 sent" in tr.stderr, tr.stderr)
    eq(sorted(r["query"] for r in rows),
       sorted("SELECT %d AS thread_%d_query_%d" % (i, t, i) for t in range(2) for i in range(20)),
       "rows at the far side")
    check(all(r["pid"] == tr.target_pid and r["process"] == "script_target" for r in rows), "extra fields")


@test
def test_remote_and_local_together():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        ing = Ingest(d)
        local = os.path.join(d, "local.db")
        try:
            trace_threads_into(["--remote", ing.url, "-o", local, "--spool-dir", os.path.join(d, "spool")])
        finally:
            ing.stop()
        eq(len(rows_of(ing.db)), 40, "remote rows")
        eq(len(rows_of(local)), 40, "local rows")


@test
def test_min_level_hides_lines_but_stores_everything():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.db")
        t = Target([SCRIPT_TARGET, "script", os.path.join(d, "s.db")])
        try:
            tr = Tracer(["-p", str(t.pid), "-o", path, "--min-level", "error", "--log-format", "json"])
            t.go()
            t.finish()
            eq(tr.wait(), 0, "exit")
        finally:
            t.kill()
        printed = tr.entries()
        stored = rows_of(path)
    eq(len(stored), 20, "everything stored")
    eq(sorted(e["query"] for e in printed), ["INSERT INTO t(id, name) VALUES (1, 'dup')", "SELEC * FROM t"],
       "only ERROR lines printed")


class TlsEndpoint:
    """A minimal HTTPS endpoint on loopback with a self-signed certificate:
    answers 204 to POSTs and keeps the JSON arrays it received."""

    def __init__(self, d):
        import http.server
        import json
        import ssl
        import threading
        self.cert = os.path.join(d, "cert.pem")
        key = os.path.join(d, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                            "-out", self.cert, "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-days", "1"], capture_output=True)
        eq(r.returncode, 0, "openssl: %s" % r.stderr[-300:])
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                received.extend(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/api/internal/traces" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()


@test
def test_remote_tls_verified_with_private_ca():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        ep = TlsEndpoint(d)
        try:
            # Unknown CA: refused (kept in the spool, not sent).
            tr = trace_threads_into(["--remote", ep.url, "--spool-dir", os.path.join(d, "spool1"),
                                     "--remote-timeout", "2s"])
            eq(ep.received, [], "nothing accepted over an unverified TLS connection")
            check("0 sent" in tr.stderr and "40 spooled for later" in tr.stderr, tr.stderr[-600:])
            # Its CA given: verified and sent.
            tr = trace_threads_into(["--remote", ep.url, "--remote-ca", ep.cert,
                                     "--spool-dir", os.path.join(d, "spool2")])
            check("40 sent" in tr.stderr, tr.stderr[-600:])
            eq(len(ep.received), 40, "entries received over TLS")
            eq(set(ep.received[0]) >= {"TraceID", "Op", "Query", "DurationUs", "Error", "Timestamp"}, True,
               "the Go tracer's keys")
        finally:
            ep.stop()


@test
def test_verbose_prints_counters_while_running():
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        t = Target([SCRIPT_TARGET, "threads"])
        try:
            tr = Tracer(["-p", str(t.pid), "-q", "-v", "-o", os.path.join(d, "t.db")])
            t.go()
            t.wait_line("done")
            time.sleep(6)  # the counters come every 5 s
            eq(tr.stop(signal.SIGINT), 0, "exit")
        finally:
            t.finish()
            t.kill()
    check("store: 40 written, 0 dropped (queue full), 0 lost" in tr.stderr, tr.stderr[-800:])


if __name__ == "__main__":
    main()
