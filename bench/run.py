#!/usr/bin/env python3
"""run.py — the tracing-cost benchmark of issue 7 (docs/performance.md).

Runs the workloads of bench/workload.c (W1..W4, against :memory: and a file
database) under every configuration, in ONE run, interleaved: for each round,
for each workload x database, every configuration once, in an order rotated
from round to round; each figure is the median over the rounds.

Configurations:
  untraced      the workload alone
  sqltrace      build/sqltrace-bpf -p PID --no-store -q
  sqltrace+store  build/sqltrace-bpf -p PID -o TMP/traces.db -q (the default sink)
  sqltrace:M    --no-store -q --mode M, for each value M of --mode, when
                `sqltrace-bpf --help` offers one (read at run time)
  floor         the tool's floor (same probes, programs that do nothing), when
                --help offers one (--probe-only, --floor, or a mode named so);
                otherwise reported as "n/a: tool has no floor mode yet"
  bpftrace      bpftrace -p PID bench/bpftrace.bt LIBSQLITE3 PID
  inproc        LD_PRELOAD=build/bench/libinproc.so: sqlite3_trace_v2 profile
                callback -> recorder -> local store in a temp file
  inproc-cb     the same library with SQLTRACE_INPROC_SINK=none: the profile
                callback alone (counts, builds nothing)

A run: start the workload (it sets up its tables, prints "ready PID" and
waits), start the tracer and wait until it says it is attached (sqltrace-bpf:
its "tracing" line; bpftrace: the __BPFTRACE_NOTIFY_PROBES_ATTACHED line),
measure the tracer's idle CPU for a moment, tell the workload to go, read its
result line, give the consumer a moment to drain and read the tracer's CPU
(its threads' schedstat, minus the idle rate) and RSS while the workload is
still alive, then let the workload exit and the tracer finish (sqltrace-bpf
ends when its target exits, on a background thread while the next run starts;
bpftrace gets SIGINT and is waited for, since its uprobes trap every process)
and read its summary. untraced and inproc runs do CHEAP_FACTOR[W] x the
iterations. The binaries are copied first, so a rebuild of build/ during the
run does not mix versions. A probe census (sqltrace-bpf -v) lists what the
tool attaches, for the report.

Usage: bench/run.py [--quick] [--only W1,W2] [--db mem,file] [--configs a,b]
                    [--rounds N] [--scale F] [--modes a,b] [--build DIR]
                    [--write-doc PATH] [--json PATH]
Needs root (uprobes). No timing is asserted anywhere: this reports.
"""
import argparse
import datetime
import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import accuracy
from procstat import threads_cpu_ns
import loads
import shortlived

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

WORKLOADS = ["W1", "W2", "W3", "W4"]
DBS = ["mem", "file"]
# Iterations per run (an iteration: W1/W2 one lookup, W3 one 1000-row scan,
# W4 one 100-insert transaction). Sized so that the slowest configuration
# (bpftrace, ~50 us per lookup, ~9 us per row) stays well under a second.
ITER_FULL = {"W1": 5000, "W2": 10000, "W3": 40, "W4": 100}
ITER_QUICK = {"W1": 1500, "W2": 3000, "W3": 10, "W4": 30}
ROUNDS_FULL = 5
ROUNDS_QUICK = 3
# Configurations that cost a fraction of a microsecond per statement run this
# many times more iterations, so that their (and the baseline's) figures are
# not lost in timer and scheduler noise; every figure is per statement/row.
CHEAP_FACTOR = {"W1": 10, "W2": 10, "W3": 50, "W4": 10}  # W3: a run of >= ~40 ms
QUICK_BUDGET_S = 46.0  # --quick keeps its rounds within this (make bench-quick < 60 s)
READY_TIMEOUT_S = 60.0  # hang protection only, never a measurement


# ---------------------------------------------------------------- helpers
class Lines:
    """Reads a pipe line by line on a thread; get() waits with a timeout."""

    def __init__(self, f):
        self.q = queue.Queue()
        self.all = []
        self.t = threading.Thread(target=self._run, args=(f,), daemon=True)
        self.t.start()

    def _run(self, f):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.all.append(line)
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, pred, timeout):
        """Returns the first line for which pred is true, or None at EOF or
        after timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if pred(line):
                return line

    def join(self, timeout=10):
        self.t.join(timeout)
        return self.all


def reap(proc, timeout, sig=None):
    """Waits for proc (sending sig first when given; SIGKILL after timeout)
    and returns its rusage."""
    if sig is not None and proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
    end = time.monotonic() + timeout
    killed = False
    while True:
        try:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return ru
        if time.monotonic() > end and not killed:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.005)


def sqlite_lib_of(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "libsqlite3" in os.path.basename(parts[5]):
                return parts[5]
    return None


def parse_kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


# ----------------------------------------------------------- configurations
class Config:
    def __init__(self, name, kind, args=(), env=None, role=None, label=None, floor_ref="floor"):
        self.floor_ref = floor_ref  # the floor its added cost is divided by
        self.name = name      # short id used on the command line and in JSON
        self.kind = kind      # untraced | tool | bpftrace | inproc
        self.args = list(args)
        self.env = env or {}
        self.role = role      # floor | default | None
        self.label = label or name


def tool_help(tool):
    r = subprocess.run([tool, "--help"], capture_output=True, text=True)
    return r.stdout + r.stderr


def _mode_values(text):
    """'a (default), b, or c.' -> [a, b, c]; None unless at least two."""
    text = re.sub(r"\([^)]*\)", "", text).strip().rstrip(".;")
    vals = []
    for p in re.split(r"\s*(?:,|\||\bor\b)\s*", text):
        p = p.strip()
        if not p:
            continue
        if re.fullmatch(r"[a-z][\w\-]*", p):
            vals.append(p)
        elif vals:
            break
    return vals if len(vals) >= 2 else None


def detect_modes(help_text):
    """Values of --mode as --help lists them ("--mode a|b|c", "--mode {a,b}",
    or "MODE: a, b" / "one of a, b" on the option's lines); [] when the tool
    has no --mode."""
    lines = help_text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"--mode(?:[ =]+)(\S+)", line)
        if not m:
            continue
        tok = m.group(1).strip("{}<>[]()")
        if "|" in tok or "," in tok:
            return [v for v in re.split(r"[|,]", tok) if v]
        # values described in the text of the option (this and following
        # indented lines)
        block = line
        for nxt in lines[i + 1:i + 8]:
            if nxt.startswith("      ") and not nxt.strip().startswith("-"):
                block += " " + nxt.strip()
            else:
                break
        for m2 in re.finditer(r"(?:one of|values?:?|modes?:|:)\s*(.*)", block):
            vals = _mode_values(m2.group(1))
            if vals:
                return vals
        return None  # --mode exists but its values could not be read
    return []


def detect_default_mode(help_text, modes):
    """The mode --help marks "(default)", or None."""
    for m in modes or []:
        if re.search(rf"\b{re.escape(m)}\s*\(default\)", help_text):
            return m
    return None


FLOOR_NAMES = ("floor", "probe-only", "probes-only", "null", "noop", "nop", "empty")


def detect_floor(help_text, modes):
    """The extra arguments that give the floor, or None."""
    for m in modes or []:
        if m in FLOOR_NAMES:
            return ["--mode", m]
    m = re.search(r"(--(?:probe-only|probes-only|floor|null-probes|noop-probes|nop-probes|empty-probes))\b",
                  help_text)
    if m:
        return [m.group(1)]
    return None


def build_configs(tool, args):
    h = tool_help(tool)
    modes = detect_modes(h)
    notes = []
    if args.modes is not None:
        modes = [m for m in args.modes.split(",") if m]
    elif modes is None:
        notes.append("sqltrace-bpf --help has --mode but its values could not be read; "
                     "pass --modes a,b to bench/run.py")
        modes = []
    floor = detect_floor(h, modes)
    default_mode = detect_default_mode(h, modes)
    dm = f" (= --mode {default_mode})" if default_mode else ""
    cfgs = [
        Config("untraced", "untraced", label="untraced"),
        Config("sqltrace", "tool", ["--no-store", "-q"], role="default",
               label="sqltrace-bpf --no-store -q" + dm),
        Config("sqltrace+store", "tool", ["-q", "-o", "{store}"], label="sqltrace-bpf -o FILE -q" + dm),
    ]
    for m in modes:
        if floor and floor == ["--mode", m]:
            continue
        if m == default_mode:  # that is the `sqltrace` row
            continue
        per_mode = floor and floor[0] != "--mode"  # a floor option combines with each mode
        cfgs.append(Config(f"sqltrace:{m}", "tool", ["--no-store", "-q", "--mode", m],
                           label=f"sqltrace-bpf --mode {m}",
                           floor_ref=f"floor:{m}" if per_mode else "floor"))
        if per_mode:
            cfgs.append(Config(f"floor:{m}", "tool", ["--no-store", "-q", "--mode", m] + floor,
                               role="floor", label=f"floor of --mode {m}: sqltrace-bpf --mode {m} "
                               + " ".join(floor)))
    if floor:
        cfgs.append(Config("floor", "tool", ["--no-store", "-q"] + floor, role="floor",
                           label="floor: sqltrace-bpf " + " ".join(floor)))
    else:
        notes.append("floor: n/a: tool has no floor mode yet (sqltrace-bpf --help offers no "
                     "--probe-only/--floor option and no floor mode)")
    if shutil.which("bpftrace"):
        cfgs.append(Config("bpftrace", "bpftrace", role="bpftrace", label="bpftrace bench/bpftrace.bt"))
    else:
        notes.append("bpftrace: not installed (apt-get install bpftrace); skipped")
    cfgs.append(Config("inproc", "inproc", label="in-process trace_v2 -> store"))
    cfgs.append(Config("inproc-cb", "inproc", env={"SQLTRACE_INPROC_SINK": "none"},
                       label="in-process trace_v2, callback only"))
    if args.configs:
        keep = set(args.configs.split(",")) | {"untraced"}
        cfgs = [c for c in cfgs if c.name in keep]
    return cfgs, modes, floor, notes


def census_all(paths, tmp, cfgs):
    """Probe census of every sqltrace-bpf configuration with its own probe
    set: the default, each --mode, the floor. Returns [(name, text)]."""
    out = []
    for c in cfgs:
        if c.kind != "tool" or c.name == "sqltrace+store":
            continue
        extra = [a for a in c.args if a not in ("--no-store", "-q")]
        out.append((c.name, probe_census(paths, tmp, extra)))
    return out


# ------------------------------------------------------------------ one run
SUMMARY_RE = re.compile(r"sqltrace-bpf: (\d+) entries(?:, (\d+) stored, (\d+) dropped \(queue full\), "
                        r"(\d+) lost)?, (\d+) ring-buffer drops")
INPROC_RE = re.compile(r"inproc: (\d+) entries, (\d+) stored, (\d+) dropped \(queue full\), (\d+) lost"
                       r"; after go: (\d+) entries, (\d+) dropped")


def rm_db(p):
    for sfx in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(p + sfx)
        except OSError:
            pass


def proc_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


DRAIN_S = 0.1  # after the workload's last statement (it then waits, alive),
               # time given to the consumer to drain before its CPU is read
               # (the window's end; sqltrace-bpf drains every 20 ms)
IDLE_S = 0.1   # before "go", time over which the attached tracer's idle CPU
               # (polling, timers) is measured, to be subtracted


def run_one(cfg, w, db, n, warm, paths, tmp, seq):
    """Runs workload w on db under cfg. Returns (res, finish): res holds the
    measurements ('error' set when something failed); finish is None or a
    function that completes res with the tracer's figures once the tracer has
    exited. sqltrace-bpf's finish may run on a thread while the next run
    starts: its shutdown takes ~0.5 s of detaching and nearly no CPU, and its
    probes are bound to the (exited) target. bpftrace's may not: its uprobes
    trap every process using the library until it has exited."""
    res = {"config": cfg.name, "workload": w, "db": db}
    env = dict(os.environ)
    env.update(cfg.env)
    env["TMPDIR"] = tmp
    inproc_store = None
    if cfg.kind == "inproc":
        inproc_store = os.path.join(tmp, f"inproc-{seq}.db")
        env["LD_PRELOAD"] = paths["inproc"]
        env["SQLTRACE_INPROC_STORE"] = inproc_store
    wl = subprocess.Popen([paths["workload"], w, db, "-n", str(n), "-w", str(warm)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env)
    wout, werr = Lines(wl.stdout), Lines(wl.stderr)
    tracer = None
    terr = None
    tout_path = None
    store = None
    finish = None
    try:
        ready = wout.wait_for(lambda l: l.startswith("ready "), READY_TIMEOUT_S)
        if not ready:
            res["error"] = "workload did not start: " + " | ".join(werr.join(2)[-3:])
            return res, None
        pid = int(ready.split()[1])

        if cfg.kind == "tool":
            store = os.path.join(tmp, f"traces-{seq}.db")
            targs = [a.replace("{store}", store) for a in cfg.args]
            tracer = subprocess.Popen([paths["tool"], "-p", str(pid)] + targs,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
            terr = Lines(tracer.stderr)
            ok = terr.wait_for(lambda l: l.startswith("sqltrace-bpf: tracing")
                               or "error" in l, READY_TIMEOUT_S)
            if not ok or not ok.startswith("sqltrace-bpf: tracing"):
                res["error"] = "tracer did not attach: " + (ok or " | ".join(terr.all[-3:]) or "no output")
                return res, None
        elif cfg.kind == "bpftrace":
            lib = sqlite_lib_of(pid)
            if not lib:
                res["error"] = "no libsqlite3 in the workload's maps"
                return res, None
            tout_path = os.path.join(tmp, f"bpftrace-{seq}.out")
            benv = dict(os.environ)
            benv["__BPFTRACE_NOTIFY_PROBES_ATTACHED"] = "1"
            with open(tout_path, "wb") as tout:
                tracer = subprocess.Popen(["bpftrace", "-p", str(pid), paths["bt"], lib, str(pid)],
                                          stdin=subprocess.DEVNULL, stdout=tout,
                                          stderr=subprocess.PIPE, env=benv)
            terr = Lines(tracer.stderr)
            ok = terr.wait_for(lambda l: "__BPFTRACE_NOTIFY_PROBES_ATTACHED" in l, READY_TIMEOUT_S)
            if not ok:
                res["error"] = "bpftrace did not attach: " + " | ".join(terr.all[-3:])
                return res, None
        cpu0 = 0
        if tracer:
            i0, ti0 = threads_cpu_ns(tracer.pid), time.monotonic()
            time.sleep(IDLE_S)
            cpu0, t_go = threads_cpu_ns(tracer.pid), time.monotonic()
            res["tracer_idle_ns_per_s"] = (cpu0 - i0) / (t_go - ti0)

        wl.stdin.write(b"go\n")
        wl.stdin.flush()
        line = wout.wait_for(lambda l: l.startswith(w + " "), READY_TIMEOUT_S * 5)
        if line and tracer:
            # the target is alive and idle: let the consumer drain, then read
            # the tracer's CPU and memory before its target's exit is handled
            time.sleep(DRAIN_S)
            if tracer.poll() is None:
                raw = threads_cpu_ns(tracer.pid) - cpu0
                window = time.monotonic() - t_go
                res["tracer_cpu_raw_ns"] = raw
                res["tracer_cpu_ns"] = max(0, raw - res["tracer_idle_ns_per_s"] * window)
                res["tracer_rss_kb"] = proc_rss_kb(tracer.pid)
        wl.stdin.close()
        wl.wait()
        werr_lines = werr.join()
        if not line:
            res["error"] = f"workload failed (exit {wl.returncode}): " + " | ".join(werr_lines[-3:])
            return res, None
        kv = parse_kv(line)
        for k in ("statements", "rows", "elapsed_ns", "cpu_ns", "thread_cpu_ns", "total_statements",
                  "total_prepares", "total_steps", "total_finalizes", "setup_statements"):
            res[k] = int(kv[k])
        res["ns_per_stmt"] = res["elapsed_ns"] / res["statements"]
        res["ns_per_row"] = res["elapsed_ns"] / res["rows"]
        res["cpu_per_stmt"] = res["cpu_ns"] / res["statements"]

        if cfg.kind == "inproc":
            m = next((INPROC_RE.search(l) for l in werr_lines if INPROC_RE.search(l)), None)
            if not m:
                res["error"] = "no inproc summary: " + " | ".join(werr_lines[-3:])
                return res, None
            res["entries"] = int(m.group(5))
            res["drops"] = int(m.group(6))
            # the writer thread runs in the workload: its CPU is cpu - thread cpu
            res["tracer_cpu_ns"] = res["cpu_ns"] - res["thread_cpu_ns"]
            return res, None
        if not tracer:
            return res, None

        t, te, tp, st = tracer, terr, tout_path, store
        tracer = None  # the finisher owns it now
        finish = lambda: finish_tracer(cfg, res, t, te, tp, st, cpu0)
        return res, finish
    finally:
        if wl.poll() is None:
            wl.kill()
            wl.wait()
        if tracer is not None and tracer.poll() is None:
            reap(tracer, 5.0, signal.SIGINT)
        if finish is None:
            for p in (store, tout_path, inproc_store):
                if p:
                    rm_db(p)


def finish_tracer(cfg, res, tracer, terr, tout_path, store, cpu0):
    """Second half of a traced run, after the workload exited: the tracer's
    summary once it has exited, its total CPU and peak memory."""
    try:
        if cfg.kind == "tool":
            ru = reap(tracer, 30.0)  # it ends when its target has exited
            if tracer.returncode is None:
                ru = reap(tracer, 10.0, signal.SIGINT)
            lines = terr.join()
            m = next((SUMMARY_RE.search(l) for l in lines if SUMMARY_RE.search(l)), None)
            if not m:
                res["error"] = "no tracer summary: " + " | ".join(lines[-3:])
                return
            res["entries"] = int(m.group(1))
            res["drops"] = int(m.group(5)) + int(m.group(3) or 0) + int(m.group(4) or 0)
            um = re.search(r"(\d+) executions untracked", " ".join(lines))
            if um:
                res["drops"] += int(um.group(1))
            res["summary"] = next(l for l in lines if SUMMARY_RE.search(l))
        else:
            ru = reap(tracer, 20.0, signal.SIGINT)
            lines = terr.join()
            with open(tout_path) as f:
                out = f.read()
            maps = {k: int(v) for k, v in re.findall(r"^@(\w+): (\d+)$", out, re.M)}
            res["bt_maps"] = maps
            # bpftrace has no entry per execution: "captured" compares the
            # step calls it timed with the ones the workload made
            res["entries"] = maps.get("steps", 0)
            res["entries_of"] = res["total_steps"]
            lost = re.findall(r"Lost (\d+) events", out + "\n".join(lines))
            res["drops"] = sum(int(x) for x in lost)
        if ru:
            res["tracer_total_cpu_ns"] = int((ru.ru_utime + ru.ru_stime) * 1e9) - cpu0
            res["tracer_maxrss_kb"] = ru.ru_maxrss
            if "tracer_cpu_ns" not in res:
                res["tracer_cpu_ns"] = res["tracer_total_cpu_ns"]
    except Exception as e:  # reported in the table, never lost
        res["error"] = f"finishing the tracer: {e!r}"
    finally:
        if tracer.poll() is None:
            reap(tracer, 5.0, signal.SIGKILL)
        for p in (store, tout_path):
            if p:
                rm_db(p)


def probe_census(paths, tmp, extra=()):
    """The functions sqltrace-bpf attaches to in a workload process, from its
    -v lines ("attached NAME [(return)] at ..."): "name (entry+return), ...",
    or None when they cannot be read."""
    wl = subprocess.Popen([paths["workload"], "W2", "mem", "-n", "1", "-w", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env=dict(os.environ, TMPDIR=tmp))
    wout = Lines(wl.stdout)
    tr = None
    try:
        ready = wout.wait_for(lambda l: l.startswith("ready "), READY_TIMEOUT_S)
        if not ready:
            return None
        tr = subprocess.Popen([paths["tool"], "-p", ready.split()[1], "--no-store", "-q", "-v"] + list(extra),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        terr = Lines(tr.stderr)
        terr.wait_for(lambda l: l.startswith("sqltrace-bpf: tracing") or "error" in l, READY_TIMEOUT_S)
        probes = {}
        for l in list(terr.all):
            m = re.match(r"sqltrace-bpf: attached (\S+)( \(return\))? at", l)
            if m:
                probes.setdefault(m.group(1), set()).add("return" if m.group(2) else "entry")
        if not probes:
            return None
        kinds = {k: "+".join(x for x in ("entry", "return") if x in v) for k, v in probes.items()}
        return ", ".join(f"{k} ({v})" for k, v in kinds.items())
    finally:
        try:
            wl.stdin.close()
        except OSError:
            pass
        if tr is not None:
            reap(tr, 10.0, signal.SIGINT)
        wl.wait()


# --------------------------------------------------------------- aggregate
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def aggregate(results, cfgs, cells):
    """Per cell (workload, db) and config: medians and derived figures."""
    agg = {}
    for (w, db) in cells:
        base = [r for r in results if r["workload"] == w and r["db"] == db
                and r["config"] == "untraced" and "error" not in r]
        b_stmt = med([r["ns_per_stmt"] for r in base])
        b_row = med([r["ns_per_row"] for r in base])
        b_cpu = med([r["cpu_per_stmt"] for r in base])
        for c in cfgs:
            rs = [r for r in results if r["workload"] == w and r["db"] == db and r["config"] == c.name]
            ok = [r for r in rs if "error" not in r]
            a = {"runs": len(ok), "errors": [r["error"] for r in rs if "error" in r]}
            if ok:
                a["ns_per_stmt"] = med([r["ns_per_stmt"] for r in ok])
                a["ns_per_row"] = med([r["ns_per_row"] for r in ok])
                a["cpu_per_stmt"] = med([r["cpu_per_stmt"] for r in ok])
                if b_stmt is not None:
                    a["add_stmt"] = a["ns_per_stmt"] - b_stmt
                    a["add_row"] = a["ns_per_row"] - b_row
                    a["add_cpu_stmt"] = a["cpu_per_stmt"] - b_cpu
                if c.kind != "untraced":
                    ent = [r["entries"] for r in ok]
                    of = [r.get("entries_of", r["total_statements"]) for r in ok]
                    a["entries_min"] = min(e / o if o else 0 for e, o in zip(ent, of))
                    a["entries_last"] = (ent[-1], of[-1])
                    a["drops_max"] = max(r["drops"] for r in ok)
                    tc = [r["tracer_cpu_ns"] / r["total_statements"] for r in ok if "tracer_cpu_ns" in r]
                    a["tracer_cpu_per_stmt"] = med(tc)
                    rss = [r["tracer_maxrss_kb"] for r in ok if r.get("tracer_maxrss_kb")]
                    a["tracer_maxrss_kb"] = max(rss) if rss else None
                    rss = [r["tracer_rss_kb"] for r in ok if r.get("tracer_rss_kb")]
                    a["tracer_rss_kb"] = max(rss) if rss else None
            agg[(w, db, c.name)] = a
    # ratios to the floor (each mode's own when it has one) and to bpftrace
    names = {c.name for c in cfgs}
    floor_of = {c.name: (c.floor_ref if c.floor_ref in names else None) for c in cfgs}
    for (w, db, name), a in agg.items():
        for ref, key in ((floor_of.get(name), "x_floor"), ("bpftrace", "x_bpftrace")):
            r = agg.get((w, db, ref)) if ref else None
            if r and r.get("add_stmt") and a.get("add_stmt") is not None and r["add_stmt"] > 0:
                a[key] = a["add_stmt"] / r["add_stmt"]
    return agg


def fmt_ns(v):
    if v is None:
        return "-"
    if abs(v) >= 100000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 10000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"


def table_rows(agg, cfgs, cells, floor_note):
    head = ["workload", "config", "ns/stmt", "+ns/stmt", "+ns/row", "+cpu ns/stmt",
            "x floor", "x bpftrace", "captured", "drops", "tracer cpu ns/stmt", "tracer RSS end/peak"]
    rows = []
    for (w, db) in cells:
        for c in cfgs:
            a = agg[(w, db, c.name)]
            if not a["runs"]:
                rows.append([f"{w} {db}", c.name, "failed: " + (a["errors"][0] if a["errors"] else "?")[:60]]
                            + [""] * (len(head) - 3))
                continue
            untr = c.kind == "untraced"
            xf = a.get("x_floor")
            if untr or c.role == "floor":
                xf_s = "-"
            elif xf is not None:
                xf_s = f"{xf:.2f}"
            else:
                xf_s = "n/a" if floor_note else "-"
            xb = a.get("x_bpftrace")
            xb_s = "-" if untr or c.name == "bpftrace" or xb is None else f"{xb:.2f}"
            if untr:
                cap = "-"
            elif c.role == "floor":
                cap = "- (captures nothing)"
            else:
                e, o = a["entries_last"]
                cap = f"{e}/{o}" + ("" if a["entries_min"] == 1 or e == o else f" (min {a['entries_min']:.0%})")
            rss, peak = a.get("tracer_rss_kb"), a.get("tracer_maxrss_kb")
            rows.append([
                f"{w} {db}", c.name, fmt_ns(a["ns_per_stmt"]),
                "-" if untr else fmt_ns(a.get("add_stmt")),
                "-" if untr else fmt_ns(a.get("add_row")),
                "-" if untr else fmt_ns(a.get("add_cpu_stmt")),
                xf_s, xb_s, cap,
                "-" if untr else str(a["drops_max"]),
                "-" if untr or a.get("tracer_cpu_per_stmt") is None else fmt_ns(a["tracer_cpu_per_stmt"]),
                "-" if not rss else f"{rss / 1024:.0f} / {peak / 1024:.0f} MB" if peak else f"{rss / 1024:.0f} MB",
            ])
    return head, rows


def print_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(h.ljust(wd) for h, wd in zip(head, widths))
    print(line)
    print("-" * len(line))
    prev = None
    for r in rows:
        if prev is not None and r[0] != prev:
            print()
        prev = r[0]
        print("  ".join(str(x).ljust(wd) for x, wd in zip(r, widths)))


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- pipeline
def run_both_cores(paths, tmp, n):
    """W2 in two processes at once (one per core), both traced by one
    sqltrace-bpf storing into a local store with the default queue settings:
    the highest entry rate W2 reaches on this machine, and whether anything
    was dropped on the way. Returns a dict ('error' set on failure)."""
    res = {}
    store = os.path.join(tmp, "both-cores.db")
    wls, tracer = [], None
    try:
        for _ in range(2):
            wl = subprocess.Popen([paths["workload"], "W2", "mem", "-n", str(n), "-w", str(max(1, n // 10))],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            wls.append((wl, Lines(wl.stdout), Lines(wl.stderr)))
        pids = []
        for wl, out, err in wls:
            ready = out.wait_for(lambda l: l.startswith("ready "), READY_TIMEOUT_S)
            if not ready:
                return {"error": "workload did not start: " + " | ".join(err.join(2)[-3:])}
            pids.append(int(ready.split()[1]))
        argv = [paths["tool"]]
        for pid in pids:
            argv += ["-p", str(pid)]
        tracer = subprocess.Popen(argv + ["-o", store, "-q"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        terr = Lines(tracer.stderr)
        ok = terr.wait_for(lambda l: l.startswith("sqltrace-bpf: tracing") or "error" in l, READY_TIMEOUT_S)
        if not ok or not ok.startswith("sqltrace-bpf: tracing"):
            return {"error": "tracer did not attach: " + (ok or "no output")}
        for wl, _, _ in wls:
            wl.stdin.write(b"go\n")
            wl.stdin.flush()
        kvs = []
        for wl, out, err in wls:
            line = out.wait_for(lambda l: l.startswith("W2 "), READY_TIMEOUT_S * 5)
            if not line:
                return {"error": "workload failed: " + " | ".join(err.join(2)[-3:])}
            kvs.append(parse_kv(line))
        for wl, _, _ in wls:
            wl.stdin.close()
            wl.wait()
        reap(tracer, 30.0)
        if tracer.returncode is None:
            reap(tracer, 10.0, signal.SIGINT)
        lines = terr.join()
        m = next((SUMMARY_RE.search(l) for l in lines if SUMMARY_RE.search(l)), None)
        if not m:
            return {"error": "no tracer summary: " + " | ".join(lines[-3:])}
        res["entries"] = int(m.group(1))
        res["stored"] = int(m.group(2) or 0)
        res["drops"] = int(m.group(5)) + int(m.group(3) or 0) + int(m.group(4) or 0)
        res["statements"] = sum(int(kv["total_statements"]) for kv in kvs)
        res["rate"] = sum(int(kv["statements"]) * 1e9 / int(kv["elapsed_ns"]) for kv in kvs)
        return res
    finally:
        for wl, _, _ in wls:
            if wl.poll() is None:
                wl.kill()
                wl.wait()
        if tracer is not None and tracer.poll() is None:
            reap(tracer, 5.0, signal.SIGKILL)
        rm_db(store)


def both_cores_finding(res):
    if "error" in res:
        return f"W2 on both cores (two processes, one tracer, default queue): failed: {res['error']}"
    return (f"W2 on both cores (two processes, one tracer storing with the default queue 1024 / "
            f"batch 64): {res['rate'] / 1000:.0f}k executions/s traced in all; "
            f"{res['entries']}/{res['statements']} captured, {res['stored']} stored, "
            f"{res['drops']} dropped (target 0: {'met' if res['drops'] == 0 else 'not met'})")


def run_pipeline(paths, n, tmp):
    r = subprocess.run([paths["pipeline"], "-n", str(n), "-d", tmp], capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith("pipeline")]
    if r.returncode:
        lines.append("pipeline_bench failed: " + r.stderr.strip())
    return lines


def pipeline_table(lines):
    head = ["path", "settings", "producer", "entries", "written", "dropped", "lost", "entries/s", "ns per record()"]
    rows, other = [], []
    for l in lines:
        kv = parse_kv(l)
        parts = l.split()
        if "entries_per_s" not in kv:
            other.append(l)
            continue
        rows.append([parts[1], f"{parts[2]} (queue {kv['queue']}, batch {kv['batch']})", parts[3],
                     kv["entries"], kv["written"], kv["dropped"], kv.get("lost", "0"),
                     f"{float(kv['entries_per_s']) / 1000:.0f}k", kv["record_ns"]])
    return head, rows, other


# -------------------------------------------------------------------- doc
def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    return {
        "nproc": os.cpu_count(),
        "model": model,
        "kernel": platform.release(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "sqlite": cmd("dpkg-query", "-W", "-f=${Version}", "libsqlite3-0"),
        "bpftrace": cmd("bpftrace", "--version"),
        "commit": cmd("git", "-C", TOP, "rev-parse", "--short", "HEAD"),
        "dirty": bool(cmd("git", "-C", TOP, "status", "--porcelain", "--untracked-files=no", "--", "bpf", "user", "store")),
    }


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def findings(agg, cfgs, cells, floor_note, pipe_lines, results_all):
    """Sentences computed from this run's numbers (never hand-written, so a
    rerun cannot leave them stale)."""
    out = []
    def g(w, db, c, k):
        return agg.get((w, db, c), {}).get(k)
    for db in DBS:
        for w in ("W1", "W2"):
            if (w, db) not in cells:
                continue
            s, b, x = g(w, db, "sqltrace", "add_stmt"), g(w, db, "bpftrace", "add_stmt"), \
                g(w, db, "sqltrace", "x_bpftrace")
            f, xf = g(w, db, "floor", "add_stmt"), g(w, db, "sqltrace", "x_floor")
            if s is None:
                continue
            txt = f"{w} {db}: sqltrace-bpf (default) adds {fmt_ns(s)} ns per statement"
            if b is not None and x is not None:
                txt += (f"; bpftrace {fmt_ns(b)} ns: {x:.3f}x bpftrace (target <= 0.5x: "
                        f"{'met' if x <= 0.5 else 'not met'})")
            if f is not None and xf is not None:
                txt += (f"; floor {fmt_ns(f)} ns: {xf:.3f}x floor (target <= 1.2x: "
                        f"{'met' if xf <= 1.2 else 'not met'})")
            out.append(txt + ".")
    for db in DBS:
        if ("W3", db) in cells:
            parts = []
            for c in cfgs:
                v = g("W3", db, c.name, "add_row")
                if c.kind != "untraced" and v is not None:
                    parts.append(f"{c.name} {fmt_ns(v)}")
            if parts:
                out.append(f"W3 {db}: added ns per row: " + ", ".join(parts) + ".")
    if floor_note:
        out.append("Floor: " + floor_note.split(": ", 1)[1] + "; the 1.2x-floor target cannot be checked yet.")
    drops = [(w, db, c.name, g(w, db, c.name, "drops_max")) for (w, db) in cells for c in cfgs
             if c.name.startswith("sqltrace") and g(w, db, c.name, "drops_max")]
    tool_ran = any(c.kind == "tool" and c.role != "floor" and agg[(w, db, c.name)]["runs"]
                   for (w, db) in cells for c in cfgs)
    if not tool_ran:
        pass
    elif drops:
        out.append("sqltrace-bpf drops: " + ", ".join(f"{w} {db} {c}: {d}" for w, db, c, d in drops) + ".")
    else:
        out.append("sqltrace-bpf: no drops and every execution captured in every run "
                   "(entries = statements run)." if all(
                       (agg[(w, db, c.name)].get("entries_min") == 1) for (w, db) in cells for c in cfgs
                       if c.name.startswith("sqltrace") and agg[(w, db, c.name)]["runs"])
                   else "sqltrace-bpf: no drops reported, but some runs captured fewer entries than "
                        "statements run (see the captured column).")
    tc = [(w, db, g(w, db, "sqltrace", "tracer_cpu_per_stmt")) for (w, db) in cells
          if w in ("W1", "W2", "W4") and g(w, db, "sqltrace", "tracer_cpu_per_stmt") is not None]
    if tc:
        out.append("sqltrace-bpf's own CPU per entry (W1/W2/W4): " +
                   ", ".join(f"{w} {db} {fmt_ns(v)} ns" for w, db, v in tc) +
                   " (target < 1 us at 100k entries/s).")
    tools = [c.name for c in cfgs if c.kind == "tool" and c.role != "floor"]
    idle = [r["tracer_idle_ns_per_s"] for r in results_all if r.get("config") == "sqltrace"
            and "tracer_idle_ns_per_s" in r]
    if idle:
        out.append(f"sqltrace-bpf idle (attached, no statements): {med(idle) / 1e6:.1f} ms of CPU per second "
                   "(median; subtracted from the tracer CPU column).")
    rss = [g(w, db, c, "tracer_rss_kb") for (w, db) in cells for c in tools]
    peak = [g(w, db, c, "tracer_maxrss_kb") for (w, db) in cells for c in tools]
    rss, peak = [r for r in rss if r], [r for r in peak if r]
    if rss:
        out.append(f"sqltrace-bpf resident memory at the end of the workload: up to {max(rss) / 1024:.0f} MB, "
                   f"peak {max(peak) / 1024:.0f} MB (target < 32 MB at steady state: "
                   f"{'met' if max(rss) < 32 * 1024 else 'not met'}).")
    ip = [(w, db, g(w, db, "inproc", "add_stmt"), g(w, db, "inproc-cb", "add_stmt"),
           g(w, db, "inproc", "drops_max")) for (w, db) in cells]
    ip = [x for x in ip if x[2] is not None]
    if ip:
        out.append("In-process (trace_v2 + store) added ns/stmt: " +
                   ", ".join(f"{w} {db} {fmt_ns(a)}" + (f" (callback alone {fmt_ns(b)})" if b is not None else "")
                             + (f", {d} dropped" if d else "") for w, db, a, b, d in ip) + ".")
    for l in pipe_lines:
        kv = parse_kv(l)
        parts = l.split()
        if "entries_per_s" not in kv or parts[3] != "sustained":
            continue
        v = float(kv["entries_per_s"])
        if parts[1] == "local":
            out.append(f"Local store, {parts[2]} settings, sustained: {v / 1000:.0f}k entries/s "
                       f"(target >= 500k: {'met' if v >= 500000 else 'not met'}).")
        elif parts[1] == "remote-store":
            out.append(f"Remote sender -> ingest server -> store on loopback, {parts[2]} settings, sustained: "
                       f"{v / 1000:.0f}k entries/s (target >= 200k: {'met' if v >= 200000 else 'not met'}).")
    return out


STATIC_NOTES = """\
- **Two vCPUs, shared.** The workload, the tracer's consumer (and, in-process, the store's
  writer thread) compete for two vCPUs; on this VM other sessions' builds and tests may run
  at the same time, so absolute figures move from run to run (the load average is given
  above). Configurations are interleaved round-robin (order rotated each round) and every
  figure is a median, so the comparison within one run is fair even when the level shifts.
- **What the columns mean.** `ns/stmt` is the workload's wall-clock time per statement
  execution (median); `+ns/stmt` and `+ns/row` subtract the untraced median of the same
  workload and database (W3: 1000 rows per statement, W4: 102 statements and 100 inserted
  rows per transaction). `+cpu ns/stmt` is the same difference in the workload process's
  own CPU time (uprobe traps and BPF programs run in the traced thread and are charged to it
  as system time; in-process, the store's writer thread is in there too); it is less
  sensitive to the neighbours than wall-clock. `x floor` / `x bpftrace` divide `+ns/stmt` by
  the floor's (a mode's own floor, `floor:MODE`, when the floor is an option that combines
  with --mode) and bpftrace's. `captured` is entries the tracer reported / statements run
  after it attached (last round; "min" when a round captured less); for bpftrace it is the
  sqlite3_step calls it timed / the step calls made, since it has no notion of an execution.
  `drops`: ring-buffer drops + queue-full drops + untracked executions (sqltrace-bpf),
  lost events (bpftrace), queue-full drops after "go" (in-process); worst round.
  `tracer cpu ns/stmt`: the tracer process's own CPU (all threads, schedstat) from "go"
  until 0.1 s (--quick: 0.05 s) after the workload's last statement, the workload still
  alive (start-up, the handling of the target's exit and detach excluded), minus its idle
  CPU rate (measured over the same length while attached, before "go") times that window,
  per statement run after attach (warm-up included); the idle rate is in the findings.
  In-process: the writer thread's CPU during the measured window. `tracer RSS end/peak`:
  the tracer's resident set at the end of that window, and its peak over the whole run
  (start-up included).
- **Noise.** A difference smaller than about a tenth of the untraced figure is noise
  (negative added costs are noise too): in-process W3, and the callback-only row, are at
  that level.
- **File database**: journal_mode=WAL, synchronous=OFF (no fsync: the disk of the VM is not
  what is measured). Each autocommit statement on a file database takes and releases the
  WAL read lock (a few system calls, ~1 us each here), which is why W1/W2 on a file cost
  several times the in-memory figure.
- **bpftrace 0.17 attaches uprobes to the library file for every process** even with `-p`:
  the script filters on the PID, but other processes using the same libsqlite3 take the
  traps while it runs. It is given the same job as sqltrace-bpf on the API: prepare_v2 and
  step timed with entry+return probes, finalize counted.
- **In-process** registers `sqlite3_trace_v2(SQLITE_TRACE_PROFILE)` on every connection
  (LD_PRELOAD wrapper of sqlite3_open/_v2) and builds one entry per execution into the same
  recorder and local store the tool uses, with the tool's default queue (1024) and batch
  (64). The `inproc-cb` row registers the callback and only counts: what SQLite's own hook
  costs. Where the producer outruns the store's writer, entries are dropped (counted): a
  dropped entry costs less than a stored one, so with many drops the in-process figure is a
  lower bound of what storing everything would cost.
- **Warm-up** iterations (10%) run after the tracer attached and are traced: `captured`
  compares against everything run after "go". The table setup (10000 inserts) runs before
  the tracer attaches; in-process, where the callback sees it too, the setup's entries are
  written out and the counters snapshotted before "go".
"""


def write_doc(path, args, m, la0, la1, head, rows, notes, found, ptab, cfgs, elapsed, modes, floor,
              census):
    cmdline = "python3 bench/run.py " + " ".join(sys.argv[1:])
    ph, prow, pother = ptab
    census_md = "\n".join(f"  - `{name}`: {text or 'could not be read'}" for name, text in census) \
        or "  - (not taken with --quick)"
    kept = kept_section(path)
    doc = f"""# Performance: what tracing costs the traced program

Generated by `make bench` (bench/run.py) — rerun it to refresh this file; `make bench-quick`
(in-memory databases only, fewer iterations and rounds, under a minute) prints the same
table and writes it to build/bench/quick.md. Both need root. Filters:
`make bench BENCH_ARGS="--only W2 --db file --rounds 9"`; `--configs sqltrace,floor`;
`--modes a,b` when `--mode` values cannot be read from `--help`; `--json FILE` keeps every
run's raw figures. One workload by hand: `build/bench/workload W2 mem --no-wait`.

## Machine and run
- CPUs: {m['nproc']} × {m['model']} (a VM)
- Kernel: {m['kernel']}
- SQLite: Debian libsqlite3-0 {m['sqlite']}; {m['bpftrace']}
- Tree: {m['commit']}{' + uncommitted changes in bpf/ user/ store/' if m['dirty'] else ''}
- Date: {m['date']}; load average before / after: {la0} / {la1}; run took {elapsed:.0f} s
- Command: `{cmdline}`
- Rounds: {args.rounds}, interleaved; iterations per run: {', '.join(f'{w} {n}' for w, n in args.iters.items())}
  (+10% warm-up, traced as well); untraced and in-process runs do
  {', '.join(f'{w} {f}x' for w, f in CHEAP_FACTOR.items())} as many
- sqltrace-bpf modes found in `--help`: {', '.join(modes) if modes else 'none (no --mode option)'};
  floor: {' '.join(floor) if floor else 'n/a: tool has no floor mode yet'}
- sqltrace-bpf's probes in the workload (from `-v`):
{census_md}
- bpftrace's probes (bench/bpftrace.bt): sqlite3_prepare_v2 (entry+return), sqlite3_step
  (entry+return), sqlite3_finalize (entry)

Configurations:
""" + "\n".join(f"- `{c.name}`: {c.label}" for c in cfgs) + f"""

## Results (medians over {args.rounds} rounds)

{md_table(head, rows)}

## Findings from this run

""" + "\n".join(f"- {f}" for f in found) + """

""" + kept + """

## Pipeline without the kernel (bench/pipeline_bench.c)

One producer thread builds entries the way the ring-buffer consumer does and records them
into a recorder. `local`: the recorder writes into the local store (a temporary file, WAL,
synchronous=NORMAL as the store sets it). `remote-store`: the remote sender POSTs JSON
batches over loopback to our ingest server (in the same process), which queues them into a
local store; `remote-discard`: the same with a server sink that discards (the HTTP path
alone). Default settings: queue 1024, batch 64 on every recorder (the tool's); tuned: queue
65536, batch 1024. *sustained*: the producer waits for room, so the rate is what the
pipeline sustains, from the first record until everything is written; *offered*: it never
waits (as the tracer), and what does not fit is dropped (`dropped`; `lost`: given up later).

""" + (md_table(ph, prow) if prow else "(no pipeline results)") + "\n\n" + "\n".join(f"- {o}" for o in pother) + """

## Notes

""" + STATIC_NOTES + "".join(f"- {n}\n" for n in notes)
    with open(path, "w") as f:
        f.write(doc)


KEEP_BEGIN = "<!-- hand-written: bench/run.py keeps everything from here to the end marker -->"
KEEP_END = "<!-- end of hand-written part -->"


def kept_section(path):
    """The hand-written part of an existing report (between KEEP_BEGIN and
    KEEP_END, markers included), or an empty one to fill in: the mode
    trade-offs and the decisions taken from the numbers live there, and a
    rerun must not lose them."""
    try:
        with open(path) as f:
            old = f.read()
        i, j = old.index(KEEP_BEGIN), old.index(KEEP_END)
        if i < j:
            return old[i:j + len(KEEP_END)]
    except (OSError, ValueError):
        pass
    return (KEEP_BEGIN + "\n## Modes, trade-offs and decisions\n\n"
            "(Written by hand: what each --mode gives up, and which is the default and why, "
            "from the numbers above.)\n\n" + KEEP_END)


# -------------------------------------------------------------------- main
def snapshot(paths, tmp):
    """Copies the binaries into tmp/bin and returns their new paths: other
    engineers rebuild build/ while a benchmark runs, and one run must measure
    one version of each. A copy that does not answer --help (caught in the
    middle of a link) is taken again."""
    out = dict(paths)
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    for k, p in paths.items():
        dst = os.path.join(bindir, os.path.basename(p))
        for _ in range(10):
            shutil.copy2(p, dst)
            if k != "tool" or subprocess.run([dst, "--help"], capture_output=True).returncode == 0:
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"{p} does not run (being rebuilt?); try again")
        out[k] = dst
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="in-memory only, fewer iterations and rounds (< 1 min)")
    ap.add_argument("--only", help="workloads, e.g. W2 or W1,W3")
    ap.add_argument("--db", help="mem, file or mem,file")
    ap.add_argument("--configs", help="configuration names to run (untraced always runs)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the iteration counts")
    ap.add_argument("--modes", help="override the --mode values read from sqltrace-bpf --help")
    ap.add_argument("--build", default="build")
    ap.add_argument("--write-doc", help="write the markdown report here")
    ap.add_argument("--json", help="write every run's raw measurements here")
    ap.add_argument("--no-pipeline", action="store_true")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("bench/run.py: needs root (uprobes, bpftrace)")
    build = os.path.join(TOP, args.build) if not os.path.isabs(args.build) else args.build
    paths = {
        "tool": os.path.join(build, "sqltrace-bpf"),
        "workload": os.path.join(build, "bench", "workload"),
        "inproc": os.path.join(build, "bench", "libinproc.so"),
        "pipeline": os.path.join(build, "bench", "pipeline_bench"),
        "bt": os.path.join(HERE, "bpftrace.bt"),
    }
    for k, p in paths.items():
        if not os.path.exists(p):
            sys.exit(f"bench/run.py: {p} is missing; run `make bench` (or make {os.path.relpath(p, TOP)})")

    workloads = args.only.upper().split(",") if args.only else WORKLOADS
    dbs = args.db.split(",") if args.db else (["mem"] if args.quick else DBS)
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit(f"bench/run.py: unknown workload {w} (W1..W4)")
    for d in dbs:
        if d not in DBS:
            sys.exit(f"bench/run.py: unknown database {d} (mem, file)")
    base_iter = ITER_QUICK if args.quick else ITER_FULL
    args.iters = {w: max(1, int(base_iter[w] * args.scale)) for w in workloads}
    args.rounds = args.rounds or (ROUNDS_QUICK if args.quick else ROUNDS_FULL)
    if args.quick:  # shorter looks at the tracer; still 2-3 drain periods
        global IDLE_S, DRAIN_S
        IDLE_S = DRAIN_S = 0.05
    cells = [(w, d) for d in dbs for w in workloads]

    tmp = tempfile.mkdtemp(prefix="sqltrace-bench-")
    try:
        paths = snapshot(paths, tmp)
    except RuntimeError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(f"bench/run.py: {e}")
    cfgs, modes, floor, notes = build_configs(paths["tool"], args)
    floor_note = next((n for n in notes if n.startswith("floor:")), None)
    m = machine()
    la0 = loadavg()
    print(f"machine: {m['nproc']} x {m['model']}, kernel {m['kernel']}, load {la0}")
    print("configs: " + ", ".join(c.name for c in cfgs))
    for n in notes:
        print("note: " + n)

    results = []
    finishers = []
    t_start = time.monotonic()
    seq = 0
    try:
        census = [] if args.quick else census_all(paths, tmp, cfgs)  # --quick: time
        for name, text in census:
            print(f"probes of {name}: {text or 'could not be read'}")
        r = 0
        while r < args.rounds:
            t_round = time.monotonic()
            for (w, db) in cells:
                n = args.iters[w]
                order = cfgs[r % len(cfgs):] + cfgs[:r % len(cfgs)]
                for c in order:
                    seq += 1
                    t_run = time.monotonic()
                    nn = n * (CHEAP_FACTOR[w] if c.kind in ("untraced", "inproc") else 1)
                    try:
                        res, finish = run_one(c, w, db, nn, max(1, nn // 10), paths, tmp, seq)
                    except Exception as e:  # one broken run must not lose the others
                        res, finish = {"config": c.name, "workload": w, "db": db,
                                       "error": f"{type(e).__name__}: {e}"}, None
                    res["run_s"] = time.monotonic() - t_run
                    if finish and c.kind == "bpftrace":
                        # bpftrace's uprobes sit on the library file for every
                        # process until it has exited: the next run must not start
                        # before that
                        finish()
                    elif finish:
                        th = threading.Thread(target=finish)
                        th.start()
                        finishers.append(th)
                    res["round"] = r
                    results.append(res)
                    status = res.get("error") or f"{res['ns_per_stmt']:.0f} ns/stmt"
                    print(f"  round {r + 1}/{args.rounds} {w} {db} {c.name}: {status} "
                          f"[{res['run_s']:.1f} s]", flush=True)
            r += 1
            spent = time.monotonic() - t_round
            if args.quick and r < args.rounds:
                left = QUICK_BUDGET_S - (time.monotonic() - t_start)
                if spent > left:
                    notes.append(f"--quick stopped after {r} round(s) to stay within its time budget")
                    args.rounds = r
                    break
        for th in finishers:
            th.join()
        both = None
        if "W2" in workloads and "mem" in dbs:
            print("  W2 on both cores: two processes, one tracer with the store", flush=True)
            both = run_both_cores(paths, tmp, args.iters["W2"] * 3)
        pipe_lines = [] if args.no_pipeline else run_pipeline(paths, 30000 if args.quick else 300000, tmp)
        short = None
        loads_res = None
        acc = []
        if not args.quick:
            print("  short-lived processes under -b with a full statement map", flush=True)
            short = shortlived.run(build)
            print("  later loads: python3 importing C extensions under --", flush=True)
            loads_res = loads.run(build)
            print("  duration accuracy against the program's own timing", flush=True)
            acc = [accuracy.run(build, m) for m in (modes or ["exact"])]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - t_start
    la1 = loadavg()

    agg = aggregate(results, cfgs, cells)
    head, rows = table_rows(agg, cfgs, cells, floor_note)
    print()
    print_table(head, rows)
    ptab = pipeline_table(pipe_lines)
    if pipe_lines:
        print()
        if ptab[1]:
            print_table(ptab[0], ptab[1])
        for o in ptab[2]:
            print(o)
    found = findings(agg, cfgs, cells, floor_note, pipe_lines, results)
    if both is not None:
        found.append(both_cores_finding(both))
    if short is not None:
        found.append(shortlived.finding(short))
    if loads_res is not None:
        found.append(loads.finding(loads_res))
    found.extend(accuracy.findings(acc))
    print()
    for f in found:
        print("* " + f)
    for n in notes:
        print("note: " + n)
    print(f"\n{len(results)} runs in {elapsed:.0f} s; load average before / after: {la0} / {la1}")

    if args.write_doc:
        write_doc(args.write_doc, args, m, la0, la1, head, rows, notes, found, ptab, cfgs,
                  elapsed, modes, floor, census)
        print(f"wrote {args.write_doc}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "results": results, "pipeline": pipe_lines}, f, indent=1, default=str)
    failed = [r for r in results if "error" in r]
    if failed:
        print(f"{len(failed)} run(s) failed; first: {failed[0]['config']} {failed[0]['workload']} "
              f"{failed[0]['db']}: {failed[0]['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
