"""accuracy.py — how exact sqltrace-bpf's durations are (issue 16): a
program times each execution of statements of growing cost itself, from
before its first sqlite3_step to after its last (tests/targets/prod_target
timed), and the entries' durations are compared with those, execution by
execution, in each --mode. The tool's interval lies inside the program's
(first step's entry to last step's exit), so the difference is what the
probes add around it plus the program's own loop; a duration that counted
idle time or missed the commit would stand out.

Used by bench/run.py (`make bench`); runs alone too:
  sudo python3 bench/accuracy.py [BUILD]
Needs root. Measures; asserts nothing."""
import json
import os
import statistics
import subprocess
import sys


def run(build, mode, n=20):
    tool = os.path.join(build, "sqltrace-bpf")
    target = os.path.join(build, "targets", "prod_target")
    if not os.path.exists(target):
        return {"error": "missing " + target}
    t = subprocess.Popen([target, "timed", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    tr = None
    try:
        pid = int(t.stdout.readline().split()[1])
        tr = subprocess.Popen([tool, "-p", str(pid), "--no-store", "--log-format", "json", "--mode", mode],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while True:
            line = tr.stderr.readline().decode()
            if not line or "tracing" in line:
                break
        t.stdin.write(b"go\n")
        t.stdin.flush()
        own = []
        for line in iter(t.stdout.readline, b""):
            if line.startswith(b"timed"):
                _, k, ns = line.split()
                own.append((int(k), int(ns)))
            elif line.startswith(b"done"):
                break
        t.stdin.close()
        t.wait(30)
        out, _ = tr.communicate(timeout=60)
        got = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
        got = [e for e in got if e["query"].startswith("WITH RECURSIVE")]
        if len(got) != len(own):
            return {"error": "%d entries for %d executions" % (len(got), len(own))}
        by_k = {}
        for (k, ns), e in zip(own, got):
            by_k.setdefault(k, []).append((ns, e["duration"]))
        return {"mode": mode, "by_k": {k: {"program_ns": statistics.median(a for a, _ in v),
                                           "tool_ns": statistics.median(b for _, b in v),
                                           "diff_ns": statistics.median(a - b for a, b in v),
                                           "max_over_ns": max(b - a for a, b in v)}
                                       for k, v in sorted(by_k.items())}}
    finally:
        if t.poll() is None:
            t.kill()
        if tr is not None and tr.poll() is None:
            tr.kill()


def findings(results):
    out = []
    for r in results:
        if "error" in r:
            out.append("Duration accuracy: failed: " + r["error"])
            continue
        parts = ["count to %s: program %s, tool %s (program - tool: median %s, tool above program by at most %s)" %
                 (k, fmt(v["program_ns"]), fmt(v["tool_ns"]), fmt(v["diff_ns"]), fmt(max(v["max_over_ns"], 0)))
                 for k, v in r["by_k"].items()]
        out.append("Duration accuracy, --mode %s (median of 20 executions each, the program's own timing "
                   "around its step loop vs the entry): " % r["mode"] + "; ".join(parts))
    return out


def fmt(ns):
    ns = float(ns)
    if abs(ns) >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if abs(ns) >= 1e3:
        return "%.1f us" % (ns / 1e3)
    return "%.0f ns" % ns


if __name__ == "__main__":
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "build")
    for f in findings([run(build, m) for m in ("exact", "return")]):
        print(f)
