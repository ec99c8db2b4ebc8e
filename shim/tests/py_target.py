#!/usr/bin/env python3
"""py_target.py — test target: a Python program that sets trace ids through
the sqltrace ctypes module (shim/python/sqltrace.py) and its context manager
around sqlite3 statements, in several threads at once.

Usage: py_target.py [-t THREADS] [-r ROUNDS] [-w] [--require-lib]
  -t  threads (default 2), each with its own in-memory connection
  -r  rounds per thread (default 2)
  -w  print "ready pid=<pid>" and wait for a line on stdin before the first
      statement (a test attaches the tracer in between)
  --require-lib  exit 1 if libsqltrace could not be loaded (the module would
      otherwise degrade to no-ops with a warning)

Per thread and round, in lock step with the other threads (a barrier before
each step, so statements interleave):
  no id               SELECT 1                                  -> ""
  trace_id(outer)     CREATE TABLE (round 0) / INSERT            -> outer
    trace_id(inner)   SELECT count(*)                           -> inner
  back in outer       INSERT                                    -> outer
  back in outer       SELECT with a sqlcommenter traceparent comment
                      (both present: the shim's id wins)         -> outer
  no id               SELECT with the same comment only          -> comment's
ids: outer = "py-outer-<thread>-r<round>-<pid>", inner = "py-inner-...".

Output, one line per statement (stdout):
  ran thread=<N> tid=<native tid> trace_id=<shim id or empty> sql=<sql>
then "done statements=<total>". sqlite3 runs in autocommit mode
(isolation_level=None) so no implicit BEGIN/COMMIT is issued: the lines are
exactly the statements run. Exit status 0 on success.
"""

import argparse
import os
import sqlite3
import sys
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "python"))
import sqltrace  # noqa: E402  (path set up above)

# A valid W3C traceparent, as sqlcommenter appends it (URL-encoded dashes).
COMMENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
COMMENT = ("/*controller='users',traceparent='00%2D" + COMMENT_TRACE_ID +
           "%2D00f067aa0ba902b7%2D01'*/")

_print_lock = threading.Lock()


def run(db, n, sql, counter):
    """Runs sql to completion on db and prints the 'ran' line."""
    db.execute(sql).fetchall()
    with _print_lock:
        print("ran thread=%d tid=%d trace_id=%s sql=%s" % (
            n, threading.get_native_id(), sqltrace.get_trace_id(), sql),
            flush=True)
    counter[n] += 1


def worker(n, rounds, barrier, counter, errors):
    try:
        db = sqlite3.connect(":memory:", isolation_level=None)
        pid = os.getpid()
        for r in range(rounds):
            outer = "py-outer-%d-r%d-%d" % (n, r, pid)
            inner = "py-inner-%d-r%d-%d" % (n, r, pid)
            barrier.wait()
            run(db, n, "SELECT 1", counter)
            with sqltrace.trace_id(outer):
                barrier.wait()
                if r == 0:
                    run(db, n, "CREATE TABLE t(x INTEGER, round INTEGER)", counter)
                else:
                    run(db, n, "INSERT INTO t VALUES (%d, %d)" % (n, r), counter)
                with sqltrace.trace_id(inner):
                    barrier.wait()
                    run(db, n, "SELECT count(*) FROM t WHERE round = %d" % r, counter)
                assert sqltrace.get_trace_id() == outer, "nesting did not restore"
                barrier.wait()
                run(db, n, "INSERT INTO t VALUES (%d, %d)" % (n, r), counter)
                barrier.wait()
                run(db, n, "SELECT count(*) FROM t " + COMMENT, counter)
            assert sqltrace.get_trace_id() == "", "exit did not clear"
            barrier.wait()
            run(db, n, COMMENT + " SELECT max(round) FROM t", counter)
        db.close()
    except BaseException as exc:  # report, and release the other threads
        errors.append("thread %d: %r" % (n, exc))
        barrier.abort()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-t", type=int, default=2, metavar="THREADS")
    ap.add_argument("-r", type=int, default=2, metavar="ROUNDS")
    ap.add_argument("-w", action="store_true")
    ap.add_argument("--require-lib", action="store_true")
    args = ap.parse_args()
    if args.t < 1 or args.r < 1:
        ap.error("-t and -r must be positive")
    if args.require_lib and not sqltrace.available:
        print("libsqltrace not loaded", file=sys.stderr)
        return 1
    print("lib=%s" % sqltrace.library_path, flush=True)
    if args.w:
        print("ready pid=%d" % os.getpid(), flush=True)
        sys.stdin.readline()
    barrier = threading.Barrier(args.t)
    counter = [0] * args.t
    errors = []
    threads = [threading.Thread(target=worker, args=(n, args.r, barrier, counter, errors))
               for n in range(args.t)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        print("error " + e, flush=True)
    print("done statements=%d" % sum(counter), flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
