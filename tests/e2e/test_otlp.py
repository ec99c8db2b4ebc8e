"""test_otlp.py — end-to-end tests of the OpenTelemetry export (issue 14):
a real python3 target traced with --otlp to a fake collector
(otlp_collector.py) that decodes every request with OpenTelemetry's own
generated protobuf code, in both encodings; spans compared with the
statements the target ran and the entries the tool printed (names,
attributes, trace and parent ids from traceparent comments, error status,
times, resource); then the collector misbehaving: 503/429 with
Retry-After, partial success, down at start then up (the spool delivers
everything), slow; and bad configuration giving one-line errors."""
import datetime
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import PYTHON, TOOL, Fail, Target, Tracer, check, eq, main, need_bpf, test
from otlp_collector import Collector, Decoder, attrs

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
UNSAMPLED_TRACE = "5bf92f3577b34da6a3ce929d0e0e4736"

# The target: prints ready, runs its statements on "go", prints "done N",
# waits for "bye". argv[1]: database file, argv[2]: rounds of inserts.
SCRIPT = r'''
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
rounds = int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
n = 0
def run(sql, *args):
    global n
    n += 1
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.Error as e:
        return e
run("CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, total REAL)")
run("CREATE TABLE customers(name TEXT)")
for i in range(rounds):
    run("INSERT INTO orders(id, customer, total) VALUES (?, ?, ?)", i, "c%%d" %% (i %% 7), i * 1.5)
run("INSERT INTO orders(id, customer, total) VALUES (1, 'dup', 0)")
run("SELEC broken")
run("SELECT id, total FROM orders WHERE id < 3 /*action='list',traceparent='00-%s-%s-01'*/")
run("SELECT count(*) FROM orders /*traceparent='00-%s-%s-00'*/")
run("SELECT o.id FROM orders o JOIN customers c ON c.name = o.customer")
run("UPDATE orders SET total = total + 1 WHERE id = 0")
run("DELETE FROM orders WHERE id = 1")
print("done %%d" %% n, flush=True)
sys.stdin.readline()
''' % (TRACE, PARENT, UNSAMPLED_TRACE, PARENT)

_decoder = None


def decoder():
    global _decoder
    if _decoder is None:
        _decoder = Decoder()
    return _decoder


def entry_times(e):
    """(start_ns, end_ns) of a printed entry: time is the end, in µs."""
    t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    end_us = int(t.timestamp()) * 1000000 + t.microsecond
    return end_us * 1000 - e["duration"], end_us * 1000


class Run:
    """The target under the tool with --otlp; what it printed and sent."""

    def __init__(self, url, extra=(), env=None, rounds=20, spool=None):
        self.dir = tempfile.mkdtemp()
        self.spool = spool or os.path.join(self.dir, "spool")
        path = os.path.join(self.dir, "script.py")
        with open(path, "w") as f:
            f.write(SCRIPT)
        self.db = os.path.join(self.dir, "t.db")
        self.t = Target([PYTHON, path, self.db, str(rounds)])
        old = dict(os.environ)
        os.environ.update(env or {})
        try:
            self.tr = Tracer(["-p", str(self.t.pid), "--log-format", "json", "--no-store",
                              "--otlp", url, "--spool-dir", self.spool, "-v"] + list(extra))
        finally:
            os.environ.clear()
            os.environ.update(old)

    def go(self):
        self.t.go()
        return int(self.t.wait_line("done").split()[1])

    def finish(self):
        self.t.finish()
        rc = self.tr.wait(60)
        eq(rc, 0, "tracer exit code (stderr: %s)" % self.tr.stderr)
        return self.tr.entries()

    def cleanup(self):
        self.t.kill()
        if self.tr.p.poll() is None:
            self.tr.p.kill()
            self.tr.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise Fail("timed out waiting for " + what)


def summary(tr):
    lines = [l for l in tr.stderr.splitlines() if " entries, " in l and "spans exported" in l]
    check(lines, "no summary line in: %s" % tr.stderr)
    return lines[-1]


def check_spans(entries, spans, target_pid, env):
    """Every entry but the unsampled one arrives exactly once as a span with
    the attributes the conventions name."""
    want = [e for e in entries if UNSAMPLED_TRACE not in e["query"]]
    check(len(want) == len(entries) - 1, "the unsampled statement was traced once")
    eq(len(spans), len(want), "spans (one per entry but the unsampled one)")
    by_key = {}
    for rattrs, s in spans:
        a = attrs(s.get("attributes", []))
        by_key.setdefault((a["db.query.text"], int(s["endTimeUnixNano"])), []).append((rattrs, s, a))
    host = socket.gethostname()
    for e in want:
        start, end = entry_times(e)
        got = by_key.get((e["query"], end))
        check(got and len(got) == 1, "entry %r at %d: %d spans" % (e["query"], end, len(got or [])))
        rattrs, s, a = got[0]
        eq(int(s["startTimeUnixNano"]), start, "start of %r" % e["query"])
        eq(s["kind"], 3, "kind CLIENT")
        eq(a["db.system.name"], "sqlite", "db.system.name")
        eq(a["thread.id"], e["tid"], "thread.id")
        eq(a.get("db.namespace"), e.get("db"), "db.namespace")
        if "rows" in e:
            eq(a.get("db.response.returned_rows"), e["rows"], "returned rows of %r" % e["query"])
        eq(rattrs.get("process.pid"), target_pid, "process.pid")
        eq(rattrs.get("process.executable.name"), e["process"], "process.executable.name")
        eq(rattrs.get("host.name"), host, "host.name")
        eq(rattrs.get("service.name"), env.get("OTEL_SERVICE_NAME", e["process"]), "service.name")
        for kv in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
            if kv:
                k, v = kv.split("=")
                eq(rattrs.get(k), v, "resource attribute " + k)
        check(len(s["spanId"]) == 16 and len(s["traceId"]) == 32, "ids")
        q = e["query"]
        if "traceparent=" in q:
            eq(s["traceId"], TRACE, "trace id from the traceparent comment")
            eq(s.get("parentSpanId"), PARENT, "parent span id from the comment")
        else:
            check("parentSpanId" not in s, "no parent for %r" % q)
            check(s["traceId"] != TRACE, "a new trace id for %r" % q)
        if e.get("error"):
            eq(s.get("status", {}).get("code"), 2, "status ERROR for %r" % q)
            eq(s["status"].get("message"), e["error"], "status message")
            check(a.get("error.type") == a.get("db.response.status_code") != None,
                  "error.type and db.response.status_code on %r" % q)
        else:
            check(s.get("status", {}).get("code", 0) == 0, "status unset for %r" % q)
            check("error.type" not in a, "no error.type on %r" % q)
    # statements without a trace context: a new trace each
    fresh = [s["traceId"] for _, s in spans if s["traceId"] != TRACE]
    eq(len(set(fresh)), len(fresh), "distinct trace ids of the statements without context")
    eq(len(fresh), len(spans) - 1, "spans in a new trace")
    # names: operation and table, never the SQL
    names = {attrs(s["attributes"])["db.query.text"]: s["name"] for _, s in spans}
    for q, n in names.items():
        check(q == n or len(n) < len(q) or n in ("BEGIN", "COMMIT"), "name %r is not the SQL" % n)
        if q.startswith("INSERT INTO orders"):
            eq(n, "INSERT orders", "name of an insert")
        elif q.startswith("SELECT id, total FROM orders"):
            eq(n, "SELECT orders", "name of a select")
        elif q.startswith("SELECT o.id"):
            eq(n, "SELECT", "name of a join (no single table)")
        elif q.startswith("UPDATE"):
            eq(n, "UPDATE orders", "name of an update")
        elif q.startswith("SELEC "):
            eq(n, "SELEC", "name of a failed prepare")
    # the unique violation: SQLite's constraint code
    for _, s in spans:
        a = attrs(s["attributes"])
        if "'dup'" in a["db.query.text"]:
            eq(a.get("db.response.status_code"), "19", "SQLITE_CONSTRAINT")


def spans_test(protocol, gzip):
    need_bpf()
    c = Collector(decoder())
    env = {"OTEL_SERVICE_NAME": "shop-%s" % protocol[5:], "OTEL_RESOURCE_ATTRIBUTES":
           "deployment.environment.name=test,team=db",
           "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=secret%20key,x-other=1"}
    if gzip:
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
    r = Run(c.url, ["--otlp-protocol", protocol], env=env)
    try:
        n = r.go()
        entries = r.finish()
        check(len(entries) >= n, "entries: %d for %d statements" % (len(entries), n))
        eq(c.errors, [], "requests the collector refused")
        check_spans(entries, c.spans(), r.t.pid, env)
        for req in c.requests:
            eq(req["headers"].get("x-api-key"), "secret key", "header from OTEL_EXPORTER_OTLP_HEADERS")
            eq(req["gzip"], "gzip" if gzip else None, "Content-Encoding")
            eq(req["enc"], "pb" if protocol == "http/protobuf" else "json", "encoding")
        s = summary(r.tr)
        check("%d spans exported" % (len(entries) - 1) in s, "summary: " + s)
        check("1 not exported (traceparent not sampled)" in s, "summary names the unsampled: " + s)
    finally:
        r.cleanup()
        c.close()


@test
def test_otlp_protobuf_spans():
    spans_test("http/protobuf", gzip=False)


@test
def test_otlp_json_spans_gzip():
    spans_test("http/json", gzip=True)


@test
def test_otlp_only_traced():
    """--otlp-only-traced: only the statement whose traceparent is sampled
    is exported; the summary counts the others."""
    need_bpf()
    c = Collector(decoder())
    r = Run(c.url, ["--otlp-only-traced"], rounds=5)
    try:
        r.go()
        entries = r.finish()
        spans = c.spans()
        eq([attrs(s["attributes"])["db.query.text"] for _, s in spans],
           [e["query"] for e in entries if TRACE in e["query"]], "the spans exported")
        eq(spans[0][1]["traceId"], TRACE, "trace id")
        eq(spans[0][1].get("parentSpanId"), PARENT, "parent span id")
        s = summary(r.tr)
        check("1 spans exported" in s and "%d not exported (no trace id)" % (len(entries) - 2) in s,
              "summary: " + s)
    finally:
        r.cleanup()
        c.close()


@test
def test_otlp_503_429_retry_after():
    """503 twice then 429 with Retry-After: 2; then everything exactly once,
    the retries no sooner than Retry-After."""
    need_bpf()
    c = Collector(decoder(), answers=[503, 503, 429], retry_after=2)
    times = []
    orig = c.server.RequestHandlerClass.do_POST

    def timed(self):
        times.append(time.time())
        orig(self)
    c.server.RequestHandlerClass.do_POST = timed
    r = Run(c.url)
    try:
        r.go()
        wait_for(lambda: c.statuses[:3] == [503, 503, 429] and len(c.statuses) > 3, 30,
                 "the retries (statuses %r)" % c.statuses)
        entries = r.finish()
        check(len(c.statuses) >= 4, "statuses: %r" % c.statuses)
        for i in range(1, 4):
            check(times[i] - times[i - 1] >= 1.9, "retry %d came %.2fs after the previous answer "
                  "(Retry-After: 2)" % (i, times[i] - times[i - 1]))
        check_spans(entries, c.spans(), r.t.pid, {})
        s = summary(r.tr)
        check(" 0 lost" in s and "0 spooled for later" in s, "summary: " + s)
    finally:
        r.cleanup()
        c.close()


@test
def test_otlp_partial_success():
    need_bpf()
    c = Collector(decoder(), answers=["partial:2"])
    r = Run(c.url, rounds=200)
    try:
        n = r.go()
        entries = r.finish()
        spans = c.spans()
        eq(len(spans), len(entries) - 1, "spans accepted (the collector kept them all)")
        s = summary(r.tr)
        check("%d spans exported" % (len(entries) - 3) in s, "2 rejected not counted exported: " + s)
        check("2 rejected by the collector, 2 of them in part" in s, "summary: " + s)
        check("accepted a batch in part" in r.tr.stderr, "partial success logged")
        check(n > 200, "statements")
    finally:
        r.cleanup()
        c.close()


@test
def test_otlp_down_then_up():
    """No collector at start: batches go to the spool; once it listens,
    the spool delivers every span exactly once."""
    need_bpf()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = Run("http://127.0.0.1:%d" % port, rounds=300)
    c = None
    try:
        r.go()
        spool = os.path.join(r.spool, "otlp")
        wait_for(lambda: os.path.isdir(spool) and any(f.endswith(".pb") for f in os.listdir(spool)),
                 10, "spool files")
        c = Collector(decoder(), port=port)
        wait_for(lambda: len(c.spans()) >= 300, 40, "the spool to be replayed")
        entries = r.finish()
        check_spans(entries, c.spans(), r.t.pid, {})
        eq(sorted(f for f in os.listdir(spool) if not f.startswith(".")), [], "spool emptied")
        check("OTLP collector unavailable, spooling" in r.tr.stderr, "outage logged")
    finally:
        r.cleanup()
        if c:
            c.close()


@test
def test_otlp_slow_collector():
    """A collector that takes 0.3 s per request: tracing goes on (no
    ring-buffer drop, every entry printed), and every span arrives once."""
    need_bpf()
    c = Collector(decoder(), delay=0.3)
    r = Run(c.url, rounds=1500)
    try:
        t0 = time.time()
        n = r.go()
        ran_s = time.time() - t0
        entries = r.finish()
        check(len(entries) >= n, "entries printed: %d of %d" % (len(entries), n))
        check_spans(entries, c.spans(), r.t.pid, {})
        s = summary(r.tr)
        check(" 0 ring-buffer drops" in s and "0 dropped (queue full)" in s, "summary: " + s)
        print("    %d statements in %.2fs while the collector took 0.3s a request" % (n, ran_s))
    finally:
        r.cleanup()
        c.close()


@test
def test_otlp_tls_ca_from_environment():
    """HTTPS to a collector with a private CA: refused (kept in the spool)
    until OTEL_EXPORTER_OTLP_CERTIFICATE names that CA."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        c = Collector(decoder(), tls_dir=d)
        r = Run(c.url, ["--otlp-timeout", "2s"], rounds=3)
        try:
            r.go()
            entries = r.finish()
            eq(c.spans(), [], "nothing accepted over an unverified connection")
            check("%d spooled for later" % (len(entries) - 1) in summary(r.tr), summary(r.tr))
        finally:
            r.cleanup()
        r = Run(c.url, env={"OTEL_EXPORTER_OTLP_CERTIFICATE": c.cert}, rounds=3)
        try:
            r.go()
            entries = r.finish()
            check_spans(entries, c.spans(), r.t.pid, {})
        finally:
            r.cleanup()
            c.close()


def one_line_error(args, env=None, rc_want=None):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("OTEL_"):
            del e[k]
    e.update(env or {})
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([TOOL, "-p", str(os.getpid()), "--no-store", "--spool-dir", d] + args,
                           capture_output=True, text=True, timeout=30, env=e)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode != 0, "%r %r: exit 0" % (args, env))
    if rc_want is not None:
        eq(p.returncode, rc_want, "exit code of %r %r" % (args, env))
    eq(len(lines), 1, "one line for %r %r: %r" % (args, env, lines))
    check(lines[0].startswith("sqltrace-bpf: error: "), "an error line: %r" % lines[0])
    return lines[0]


@test
def test_otlp_bad_configuration():
    l = one_line_error(["--otlp", "ftp://collector:4318"], rc_want=2)
    check("--otlp" in l, l)
    l = one_line_error(["--otlp", "http://c:4318", "--otlp-protocol", "grpc"], rc_want=2)
    check("--otlp-protocol" in l, l)
    l = one_line_error(["--otlp-protocol", "http/json"], rc_want=2)
    check("need --otlp" in l, l)
    cases = [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "bad name=1"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=%zz"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "ten"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "=x"}, "OTEL_RESOURCE_ATTRIBUTES"),
    ]
    for env, name in cases:
        l = one_line_error(["--otlp", "http://127.0.0.1:9"], env=env, rc_want=1)
        check(name in l, "%r names %s: %s" % (env, name, l))
    l = one_line_error(["--otlp", "env"], rc_want=1)
    check("OTEL_EXPORTER_OTLP_ENDPOINT" in l, l)
    l = one_line_error(["--otlp", "env"], env={"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
                       rc_want=1)
    check("http://" in l, l)


if __name__ == "__main__":
    try:
        main()
    finally:
        if _decoder:
            _decoder.close()
