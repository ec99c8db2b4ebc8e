"""otlp_collector.py — a fake OpenTelemetry collector for the tests: an
OTLP/HTTP receiver (Python http.server) on loopback that decodes every
request with OpenTelemetry's own generated protobuf code (otlp_decode.js,
run under node with the package tests/otlp_proto.sh installs), never with
our encoder, and refuses anything malformed with 400.

Behaviour is scripted: `answers` is a list consumed one per request, each
an int status (with Retry-After when retry_after is set) or the string
"partial:N" (200 with a partial_success of N rejected spans); once empty,
every request gets 200 with an empty ExportTraceServiceResponse. `delay`
slows every answer down. Accepted requests (status 200) are kept in
`requests` as decoded objects, with their headers."""
import base64
import gzip
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import BUILD, ROOT, Skip

NPM_DIR = os.path.join(BUILD, "npm-otlp")
DECODER = os.path.join(ROOT, "tests", "e2e", "otlp_decode.js")


def install_proto():
    """Installs OpenTelemetry's generated code once; Skip when npm cannot."""
    rc = subprocess.run([os.path.join(ROOT, "tests", "otlp_proto.sh"), NPM_DIR],
                        capture_output=True, text=True, timeout=900)
    if rc.returncode == 77:
        raise Skip("OpenTelemetry's protobuf code not installable: " + rc.stderr.strip())
    if rc.returncode != 0:
        raise RuntimeError("tests/otlp_proto.sh failed: " + rc.stderr)


class Decoder:
    """otlp_decode.js as a long-lived child (one line per request)."""

    def __init__(self):
        install_proto()
        env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
        self.p = subprocess.Popen(["node", DECODER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env=env, text=True)
        self.mu = threading.Lock()

    def call(self, req):
        with self.mu:
            self.p.stdin.write(json.dumps(req) + "\n")
            self.p.stdin.flush()
            line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("otlp_decode.js died")
        return json.loads(line)

    def decode(self, enc, body):
        return self.call({"op": "decode", "enc": enc, "body": base64.b64encode(body).decode()})

    def response(self, enc, rejected, message):
        a = self.call({"op": "response", "enc": enc, "rejected": rejected, "message": message})
        return base64.b64decode(a["body"])

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


class Collector:
    def __init__(self, decoder, port=0, answers=None, retry_after=None, delay=0.0, tls_dir=None):
        self.decoder = decoder
        self.answers = list(answers or [])
        self.retry_after = retry_after
        self.delay = delay
        self.requests = []      # accepted: {"req": decoded, "headers": {...}, "enc": ...}
        self.statuses = []      # every answer given, in order
        self.errors = []        # why a request was refused as malformed
        self.mu = threading.Lock()
        coll = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body=b"", ctype="application/x-protobuf", extra=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                with coll.mu:
                    coll.statuses.append(status)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if coll.delay:
                    threading.Event().wait(coll.delay)
                ctype = self.headers.get("Content-Type", "")
                enc = {"application/x-protobuf": "pb", "application/json": "json"}.get(ctype)
                if self.path != "/v1/traces" or enc is None:
                    coll.errors.append("path %s content-type %s" % (self.path, ctype))
                    return self.answer(404 if self.path != "/v1/traces" else 415)
                if self.headers.get("Content-Encoding") == "gzip":
                    try:
                        body = gzip.decompress(body)
                    except OSError as e:
                        coll.errors.append("gzip: %s" % e)
                        return self.answer(400)
                with coll.mu:
                    script = coll.answers.pop(0) if coll.answers else 200
                if isinstance(script, int) and script != 200:
                    extra = {"Retry-After": str(coll.retry_after)} if coll.retry_after else None
                    return self.answer(script, b"", extra=extra)
                d = coll.decoder.decode(enc, body)
                if not d["ok"]:
                    coll.errors.append(d["error"])
                    return self.answer(400, d["error"].encode(), "text/plain")
                with coll.mu:
                    coll.requests.append({"req": d["req"], "headers": dict(self.headers.items()),
                                          "enc": enc, "gzip": self.headers.get("Content-Encoding")})
                reply = b""
                if isinstance(script, str) and script.startswith("partial:"):
                    reply = coll.decoder.response(enc, int(script[8:]), "some spans refused")
                elif enc == "json":
                    reply = b"{}"
                self.answer(200, reply, "application/json" if enc == "json" else "application/x-protobuf")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        if tls_dir:
            # HTTPS with a self-signed certificate for 127.0.0.1 (self.cert)
            import ssl
            self.cert = os.path.join(tls_dir, "cert.pem")
            key = os.path.join(tls_dir, "key.pem")
            r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                                key, "-out", self.cert, "-subj", "/CN=127.0.0.1", "-addext",
                                "subjectAltName=IP:127.0.0.1", "-days", "1"], capture_output=True)
            if r.returncode:
                raise RuntimeError("openssl: %s" % r.stderr[-300:])
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self):
        """Every span accepted: (resource attributes dict, span dict) pairs."""
        res = []
        with self.mu:
            reqs = list(self.requests)
        for r in reqs:
            for rs in r["req"].get("resourceSpans", []):
                rattrs = attrs(rs.get("resource", {}).get("attributes", []))
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        res.append((rattrs, s))
        return res

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attrs(kvs):
    """OTLP attributes as a dict (string and int values)."""
    out = {}
    for kv in kvs:
        v = kv.get("value", {})
        if "stringValue" in v:
            out[kv["key"]] = v["stringValue"]
        elif "intValue" in v:
            out[kv["key"]] = int(v["intValue"])
        else:
            out[kv["key"]] = v
    return out
