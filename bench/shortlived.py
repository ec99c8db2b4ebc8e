"""shortlived.py — what short-lived processes cost the tracer (issue 16):
one sqltrace-bpf attached with -b to the system libsqlite3 while the
statement map is full (a process holding 65536 live statements), then 1000
processes that each run one statement and exit. Reports the tracer's CPU
per process and how long after its process ended each entry arrived.

Used by bench/run.py (`make bench`); runs alone too:
  sudo python3 bench/shortlived.py [BUILD]
Needs root. Measures; asserts nothing."""
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from procstat import threads_cpu_ns

FILLER = r"""
import sqlite3, sys
db = sqlite3.connect(":memory:", cached_statements=70000)
for i in range(int(sys.argv[1])):
    db.execute("SELECT %d" % i).fetchall()
print("filled", flush=True)
sys.stdin.readline()
"""


def system_libsqlite3():
    for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
        p = os.path.join(d, "libsqlite3.so.0")
        if os.path.exists(p):
            return os.path.realpath(p)
    return None


def run(build, nproc=1000, nstmts=65536, timeout=300):
    """Returns a dict of figures, or {'error': ...}."""
    tool = os.path.join(build, "sqltrace-bpf")
    once = os.path.join(build, "targets", "script_target")
    lib = system_libsqlite3()
    if not lib or not os.path.exists(once):
        return {"error": "needs the system libsqlite3 and %s" % once}
    tracer = subprocess.Popen([tool, "-b", lib, "--no-store", "--log-format", "json", "--max-targets", "4096"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arrived = {}
    err_lines = []

    def read_out():
        for raw in iter(tracer.stdout.readline, b""):
            try:
                q = json.loads(raw).get("query", "")
            except ValueError:
                continue
            if q.startswith("SELECT 'short-"):
                arrived[q] = time.monotonic()

    def read_err():
        for raw in iter(tracer.stderr.readline, b""):
            err_lines.append(raw.decode("utf-8", "replace"))

    t_out = threading.Thread(target=read_out, daemon=True)
    t_err = threading.Thread(target=read_err, daemon=True)
    t_out.start()
    t_err.start()
    filler = None
    try:
        end = time.monotonic() + 30
        while not any("tracing" in l for l in err_lines):
            if time.monotonic() > end or tracer.poll() is not None:
                return {"error": "tracer did not attach: " + "".join(err_lines[-3:])}
            time.sleep(0.05)
        filler = subprocess.Popen([sys.executable, "-c", FILLER, str(nstmts)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        if not filler.stdout.readline().startswith(b"filled"):
            return {"error": "the filler did not fill the statement map"}
        cpu0 = threads_cpu_ns(tracer.pid)
        ended = {}
        t0 = time.monotonic()
        for i in range(nproc):
            subprocess.run([once, "once", str(i)], check=True, timeout=30, stdout=subprocess.DEVNULL)
            ended["SELECT 'short-%d'" % i] = time.monotonic()
        wall = time.monotonic() - t0
        end = time.monotonic() + timeout
        while len(arrived) < nproc and time.monotonic() < end:
            time.sleep(0.05)
        cpu = threads_cpu_ns(tracer.pid) - cpu0
        lat = [arrived[q] - ended[q] for q in ended if q in arrived]
        return {
            "processes": nproc,
            "statements_held": nstmts,
            "captured": len(arrived),
            "wall_s": wall,
            "tracer_cpu_ms": cpu / 1e6,
            "cpu_us_per_process": cpu / 1e3 / nproc,
            "latency_median_ms": statistics.median(lat) * 1e3 if lat else None,
            "latency_max_ms": max(lat) * 1e3 if lat else None,
        }
    finally:
        if filler is not None:
            filler.kill()
            filler.wait()
        tracer.send_signal(2)
        try:
            tracer.wait(30)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()


def finding(res):
    if "error" in res:
        return "Short-lived processes under -b: failed: " + res["error"]
    lat = ("%.0f ms median, %.0f ms at most" % (res["latency_median_ms"], res["latency_max_ms"])
           if res["latency_median_ms"] is not None else "n/a")
    return ("Short-lived processes under -b with a full statement map (%d live statements): %d processes "
            "of one statement each in %.1f s, %d/%d captured; tracer CPU %.0f ms in all (%.0f us per "
            "process); entry after its process ended: %s" %
            (res["statements_held"], res["processes"], res["wall_s"], res["captured"], res["processes"],
             res["tracer_cpu_ms"], res["cpu_us_per_process"], lat))


if __name__ == "__main__":
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(finding(run(sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "build"))))
