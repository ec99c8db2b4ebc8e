"""loads.py — what watching for later loads costs a program (issue 13):
python3 importing 23 standard modules, 15 of them C extensions (each a
dlopen, each stopping the process while the tracer rescans it), timed by
the program itself, untraced and under `sqltrace-bpf -- python3`, alternated.

  sudo python3 bench/loads.py [BUILD] [ROUNDS]
Needs root. Measures; asserts nothing."""
import os
import statistics
import subprocess
import sys
import tempfile

SCRIPT = r'''
import time; t = time.monotonic()
import json, decimal, ssl, ctypes, hashlib, socket, select, sqlite3, zlib, bz2, lzma, csv, uuid, array, math
import struct, unicodedata, _asyncio, mmap, fcntl, termios, resource, grp
print("import_ms %.2f" % ((time.monotonic() - t) * 1000))
'''


def run(build, rounds=7):
    tool = os.path.join(build, "sqltrace-bpf")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "imports.py")
        with open(path, "w") as f:
            f.write(SCRIPT)
        res = {"untraced": [], "traced": []}
        for _ in range(rounds):
            for name, argv in (("untraced", [sys.executable, path]),
                               ("traced", [tool, "--no-store", "-q", "--", sys.executable, path])):
                out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
                for line in out.splitlines():
                    if line.startswith("import_ms"):
                        res[name].append(float(line.split()[1]))
    return {k: statistics.median(v) for k, v in res.items() if v}


def finding(r):
    if "untraced" not in r or "traced" not in r:
        return "Later loads: failed"
    return ("Later loads (python3 importing 23 modules, 15 C extensions, each load a stop and a rescan): "
            "%.0f ms untraced, %.0f ms under sqltrace-bpf -- (median), %.1f ms more per C extension" %
            (r["untraced"], r["traced"], (r["traced"] - r["untraced"]) / 15))


if __name__ == "__main__":
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(finding(run(sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "build"),
                      int(sys.argv[2]) if len(sys.argv) > 2 else 7)))
