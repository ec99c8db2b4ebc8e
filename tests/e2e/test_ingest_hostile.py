"""test_ingest_hostile.py — the ingest server (`sqltrace-bpf ingest`) under
hostile conditions (issue 11, items 5 and 6): a full disk under the store
(every entry answered 204 is in the store; what could not be stored is
answered 503 with Retry-After and counted in the stop line), and a slowloris
client holding 200 connections from several loopback addresses (legitimate
clients are still answered, and the slow connections are closed at the
request-head deadline), the per-address connection limit, and the shorter
head deadline while most connections are taken. Loopback only, bounded in
count and time."""
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

from harness import TOOL, Fail, Skip, check, eq, main, readline_timeout, test


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Ingest:
    """`sqltrace-bpf ingest` on 127.0.0.1; stderr kept for the stop line."""

    def __init__(self, db, extra=None):
        self.port = free_port()
        self.p = subprocess.Popen([TOOL, "ingest", "--listen", "127.0.0.1:%d" % self.port, "-o", db]
                                  + (extra or []), stderr=subprocess.PIPE)
        line = readline_timeout(self.p.stderr, 10)
        check("listening" in line, "ingest did not start: %s" % line)
        self.err = line

    def stop(self, timeout=30):
        """SIGINT, then the rest of stderr; returns the exit code."""
        self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Fail("ingest did not stop within %ds" % timeout)
        self.err += self.p.stderr.read().decode("utf-8", "replace")
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def post(port, body, timeout, source="127.0.0.1"):
    """One POST on a fresh connection from source; returns (status, headers
    text, seconds taken). Raises Fail on a transport error or timeout."""
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    try:
        s.settimeout(timeout)
        data = body.encode()
        s.sendall(("POST /api/internal/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n" % len(data)).encode() + data)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError as e:
        raise Fail("POST from %s after %.1f s: %s" % (source, time.time() - t0, e))
    finally:
        s.close()
    head = reply.split(b"\r\n\r\n")[0].decode("latin-1")
    m = re.match(r"HTTP/1\.\d (\d+)", head)
    if not m:
        raise Fail("no HTTP reply from %s: %r" % (source, reply[:200]))
    return int(m.group(1)), head, time.time() - t0


def stop_line(err):
    lines = [l for l in err.splitlines() if "ingest stopped" in l]
    check(lines, "no stop line in: %s" % err[-800:])
    return lines[-1]


def field(line, name):
    m = re.search(r"\b%s=(\d+)" % name, line)
    check(m, "no %s= in the stop line: %s" % (name, line))
    return int(m.group(1))


@test
def test_full_disk_only_stored_entries_are_acknowledged():
    """A store on a 256 KiB tmpfs receives batches of 64 entries until the
    disk is full: each batch answered 204 is in the store afterwards, the
    others are answered 503 with Retry-After, and the stop line counts the
    entries accepted, stored and refused."""
    if os.geteuid() != 0:
        raise Skip("needs root to mount a tmpfs")
    with tempfile.TemporaryDirectory() as d:
        mnt = os.path.join(d, "small")
        os.mkdir(mnt, 0o700)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", mnt],
                           capture_output=True)
        eq(r.returncode, 0, "mount a tiny tmpfs: %s" % r.stderr)
        ing = None
        try:
            db = os.path.join(mnt, "traces.db")
            ing = Ingest(db)
            acked, refused, statuses = [], 0, []
            pad = "x" * 300
            for b in range(60):
                queries = ["SELECT '%d-%d' -- %s" % (b, i, pad) for i in range(64)]
                body = json.dumps([{"Op": "Exec", "Query": q, "DurationUs": 1, "Timestamp": 1}
                                   for q in queries])
                st, head, _ = post(ing.port, body, timeout=10)
                statuses.append(st)
                if st == 204:
                    acked += queries
                elif st == 503:
                    check(re.search(r"(?im)^Retry-After: \d+", head), "503 without Retry-After: %s" % head)
                    refused += len(queries)
                else:
                    raise Fail("batch %d: status %d (%s)" % (b, st, head))
                if statuses[-6:] == [503] * 6:
                    break
            ing.stop()
            line = stop_line(ing.err)
            con = sqlite3.connect(db)
            try:
                stored = set(q for (q,) in con.execute("SELECT query FROM sql_traces"))
            finally:
                con.close()
        finally:
            if ing:
                ing.kill()
            subprocess.run(["umount", "-l", mnt])
    check(503 in statuses, "the disk never filled up: %s" % statuses)
    check(acked, "nothing was accepted before the disk filled up: %s" % statuses)
    missing = [q for q in acked if q not in stored]
    check(not missing, "%d of %d entries answered 204 are not in the store (statuses %s)"
          % (len(missing), len(acked), statuses))
    eq(field(line, "accepted"), len(acked), "accepted in the stop line (%s)" % line)
    eq(field(line, "refused"), refused, "refused in the stop line (%s)" % line)
    check(field(line, "stored") >= len(acked), "stored in the stop line (%s)" % line)


SLOW_ADDRS = ["127.0.0.%d" % i for i in range(2, 12)]   # 10 addresses x 20 connections
SLOW_PER_ADDR = 20
HEAD_DEADLINE = 10          # the default --head-timeout, in seconds


@test
def test_slowloris_does_not_starve_legitimate_clients():
    """200 connections from 10 loopback addresses send their request head a
    byte a second; meanwhile 5 POSTs from 127.0.0.1 are each answered 204
    within 2 s, and every slow connection is closed by the server once the
    head deadline has passed. The whole test is bounded to about 20 s."""
    with tempfile.TemporaryDirectory() as d:
        ing = Ingest(os.path.join(d, "traces.db"))
        slow = []
        try:
            head = b"POST /api/internal/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            for addr in SLOW_ADDRS:
                for _ in range(SLOW_PER_ADDR):
                    s = socket.create_connection(("127.0.0.1", ing.port), timeout=2,
                                                 source_address=(addr, 0))
                    s.setblocking(False)
                    slow.append({"sock": s, "sent": 0, "opened": time.time(), "closed": None})
            start = time.time()
            legit = []

            def tick():
                """One header byte on every open slow connection; notes
                those the server closed."""
                now = time.time()
                for c in slow:
                    if c["closed"]:
                        continue
                    try:
                        r, _, _ = select.select([c["sock"]], [], [], 0)
                        if r and not c["sock"].recv(4096):
                            c["closed"] = now
                            continue
                        c["sock"].send(head[c["sent"]:c["sent"] + 1] if c["sent"] < len(head) else b"a")
                        c["sent"] += 1
                    except OSError:
                        c["closed"] = now

            tick()
            deadline = start + HEAD_DEADLINE + 5
            n = 0
            while time.time() < deadline:
                tick()
                if n < 5 and time.time() >= start + 1 + n:
                    st, _, took = post(ing.port, '[{"Op":"Exec","Query":"SELECT %d"}]' % n, timeout=5)
                    legit.append((st, took))
                    n += 1
                if all(c["closed"] for c in slow) and n == 5:
                    break
                time.sleep(0.2)
            still_open = sum(1 for c in slow if not c["closed"])
            early = sum(1 for c in slow if c["closed"] and c["closed"] - c["opened"] < HEAD_DEADLINE - 1)
        finally:
            for c in slow:
                c["sock"].close()
            rc = ing.stop()
    eq([st for st, _ in legit], [204] * 5, "legitimate POSTs while 200 slow connections are open")
    slowest = max(took for _, took in legit)
    check(slowest < 2, "a legitimate POST took %.1f s" % slowest)
    eq(still_open, 0, "slow connections still open %d s after they began" % (HEAD_DEADLINE + 5))
    eq(early, 0, "slow connections closed well before the head deadline")
    eq(rc, 0, "ingest exit code")
    line = stop_line(ing.err)
    eq(field(line, "accepted"), 5, "accepted (%s)" % line)


def open_slow(port, addr, n):
    """n connections from addr that have sent the start of a request head."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(addr, 0))
        s.sendall(b"POST /api/internal/traces HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        socks.append(s)
    return socks


def closed_by_server(s):
    try:
        r, _, _ = select.select([s], [], [], 0)
        return bool(r) and not s.recv(4096)
    except OSError:
        return True


@test
def test_per_address_limit():
    """With --max-per-ip 4, the 5th and 6th connection from one address are
    closed at once, while another address is served."""
    with tempfile.TemporaryDirectory() as d:
        ing = Ingest(os.path.join(d, "traces.db"), ["--max-per-ip", "4"])
        socks = []
        try:
            socks = open_slow(ing.port, "127.0.0.20", 6)
            time.sleep(1)
            closed = sum(1 for s in socks if closed_by_server(s))
            st, _, _ = post(ing.port, '[{"Op":"Exec","Query":"SELECT 1"}]', timeout=5)
        finally:
            for s in socks:
                s.close()
            rc = ing.stop()
    eq(closed, 2, "connections past the per-address limit closed")
    eq(st, 204, "another address is served")
    eq(rc, 0, "ingest exit code")


@test
def test_slow_heads_closed_sooner_under_pressure():
    """Over half of --max-connections open: a request head gets 1 s, not the
    10 s default, so slow connections make room within a few seconds."""
    with tempfile.TemporaryDirectory() as d:
        ing = Ingest(os.path.join(d, "traces.db"), ["--max-connections", "40"])
        socks = []
        try:
            for addr in ("127.0.0.21", "127.0.0.22", "127.0.0.23"):
                socks += open_slow(ing.port, addr, 10)
            start = time.time()
            while time.time() < start + 5 and not all(closed_by_server(s) for s in socks):
                time.sleep(0.2)
            took = time.time() - start
            still = sum(1 for s in socks if not closed_by_server(s))
            st, _, _ = post(ing.port, '[{"Op":"Exec","Query":"SELECT 1"}]', timeout=5)
        finally:
            for s in socks:
                s.close()
            rc = ing.stop()
    eq(still, 0, "slow connections open after 5 s with 30 of 40 connections taken")
    check(took < 4, "closing them took %.1f s" % took)
    eq(st, 204, "a legitimate POST afterwards")
    eq(rc, 0, "ingest exit code")


if __name__ == "__main__":
    main()
