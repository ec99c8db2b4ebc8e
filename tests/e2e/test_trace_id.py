"""test_trace_id.py — end-to-end tests of trace-id correlation (issue 6):
the shim's per-thread ids (C, dynamically and statically linked, and
Python through ctypes), sqlcommenter traceparent comments, and
--trace-id-from."""
import os
import tempfile

from harness import BUILD, PYTHON, ROOT, Fail, check, eq, main, need_bpf, test, trace_python, trace_target

SHIM_THREADS = os.path.join(BUILD, "shim", "tests", "shim_threads")
SHIM_THREADS_STATIC = os.path.join(BUILD, "shim", "tests", "shim_threads_static")
SHIM_LIB = os.path.join(BUILD, "shim", "libsqltrace.so.0")
PY_TARGET = os.path.join(ROOT, "shim", "tests", "py_target.py")
COMMENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
COMMENT_SPAN = "00f067aa0ba902b7"


def ran_lines(out):
    """(tid, shim trace id, sql) of every statement the target says it ran."""
    res = []
    for line in out.splitlines():
        if not line.startswith("ran "):
            continue
        head, sql = line.split(" sql=", 1)
        fields = dict(kv.split("=", 1) for kv in head.split()[1:])
        res.append((int(fields["tid"]), fields["trace_id"], sql))
    return res


def by_tid(pairs):
    res = {}
    for tid, item in pairs:
        res.setdefault(tid, []).append(item)
    return res


def compare(entries, ran, expected_id):
    """Per thread, in order: every statement ran has one entry with its text
    and expected_id(shim id, sql) as TraceID; nothing else."""
    got = by_tid((e["tid"], (e["query"], e.get("trace_id", ""))) for e in entries)
    want = by_tid((tid, (sql, expected_id(sid, sql))) for tid, sid, sql in ran)
    eq(sorted(got), sorted(want), "threads")
    for tid in want:
        eq(got[tid], want[tid], "statements and trace ids of thread %d" % tid)


def shim_only(shim_id, sql):
    return shim_id


@test
def test_shim_c_four_threads():
    need_bpf()
    entries, tr, out = trace_target([SHIM_THREADS, "-w"])
    ran = ran_lines(out)
    eq(len(ran), 4 * (3 * 4 + 2), "statements the target ran")
    eq(len({tid for tid, _, _ in ran}), 4, "threads")
    check(len({sid for _, sid, _ in ran if sid}) == 12, "12 distinct ids (4 threads x 3 rounds)")
    compare(entries, ran, shim_only)


@test
def test_shim_static_in_executable():
    need_bpf()
    entries, tr, out = trace_target([SHIM_THREADS_STATIC, "-w", "-t", "2", "-r", "2"])
    compare(entries, ran_lines(out), shim_only)


def comment_or_shim(shim_id, sql):
    if shim_id:
        return shim_id
    return COMMENT_TRACE if "traceparent=" in sql else ""


def py_env():
    return dict(os.environ, SQLTRACE_LIB=SHIM_LIB, PYTHONPATH=os.path.join(ROOT, "shim", "python"))


@test
def test_shim_python_ctypes_and_context_manager():
    need_bpf()
    entries, tr, out = trace_target([PYTHON, PY_TARGET, "-w", "--require-lib", "-t", "2", "-r", "2"],
                                    env=py_env())
    ran = ran_lines(out)
    check(any(sid.startswith("py-inner-") for _, sid, _ in ran), "nested context manager used")
    compare(entries, ran, comment_or_shim)
    spans = {e.get("parent_span_id") for e in entries if e.get("trace_id") == COMMENT_TRACE}
    eq(spans, {COMMENT_SPAN}, "parent span of comment-carried ids")


@test
def test_trace_id_from_shim_ignores_comments():
    need_bpf()
    entries, tr, out = trace_target([PYTHON, PY_TARGET, "-w", "--require-lib", "-t", "1", "-r", "1"],
                                    ["--trace-id-from", "shim"], env=py_env())
    compare(entries, ran_lines(out), shim_only)


@test
def test_trace_id_from_comment_ignores_shim():
    need_bpf()
    entries, tr, out = trace_target([PYTHON, PY_TARGET, "-w", "--require-lib", "-t", "1", "-r", "1"],
                                    ["--trace-id-from", "comment"], env=py_env())
    compare(entries, ran_lines(out),
            lambda sid, sql: COMMENT_TRACE if "traceparent=" in sql else "")


SQLCOMMENTER_CASES = [
    # (sql, trace id, parent span)
    ("/*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/ SELECT 1",
     "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
    ("SELECT 2 /*action='run',traceparent='00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01',"
     "route='%2Fusers%2F1'*/", "1af7651916cd43dd8448eb211c80319c", "c7ad6b7169203331"),
    ("SELECT 3 /*traceparent='00%2D2af7651916cd43dd8448eb211c80319c%2Dd7ad6b7169203331%2D00'*/",
     "2af7651916cd43dd8448eb211c80319c", "d7ad6b7169203331"),
    # malformed: ignored, never misread
    ("SELECT 4 /*traceparent='00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01'*/", "", None),
    ("SELECT 5 /*traceparent='00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01'*/", "", None),
    ("SELECT 6 /*traceparent='00-00000000000000000000000000000000-b7ad6b7169203331-01'*/", "", None),
    ("SELECT 7 /*traceparent='ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/", "", None),
    ("SELECT 8 /*traceparent='00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01'*/", "", None),
    ("SELECT '/*traceparent=''00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01''*/' AS s", "", None),
    ("SELECT 9 -- traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'", "", None),
]


@test
def test_sqlcommenter_comments():
    need_bpf()
    script = r'''
import os, sqlite3, sys
con = sqlite3.connect(":memory:", isolation_level=None)
print("ready", os.getpid(), flush=True); sys.stdin.readline()
for sql in %r:
    con.execute(sql).fetchall()
print("done", flush=True); sys.stdin.readline()
''' % [c[0] for c in SQLCOMMENTER_CASES]
    entries, tr, out = trace_python(script)
    eq([e["query"] for e in entries], [c[0] for c in SQLCOMMENTER_CASES], "statements")
    for e, (sql, trace, span) in zip(entries, SQLCOMMENTER_CASES):
        eq(e.get("trace_id", ""), trace, "trace id of %r" % sql)
        eq(e.get("parent_span_id"), span, "parent span of %r" % sql)


@test
def test_make_install_and_pkg_config():
    import subprocess
    with tempfile.TemporaryDirectory() as d:
        dest = os.path.join(d, "dest")
        r = subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + dest, "PREFIX=/usr/local",
                            "BUILD=" + os.path.relpath(BUILD, ROOT)], capture_output=True, text=True)
        eq(r.returncode, 0, "make install: %s" % r.stderr[-500:])
        for f in ("usr/local/include/sqltrace.h", "usr/local/lib/libsqltrace.so.0", "usr/local/lib/libsqltrace.a",
                  "usr/local/lib/pkgconfig/sqltrace.pc"):
            check(os.path.exists(os.path.join(dest, f)), "installed: " + f)
        env = dict(os.environ, PKG_CONFIG_LIBDIR=os.path.join(dest, "usr/local/lib/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=dest)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sqltrace"], capture_output=True,
                               text=True, env=env)
        eq(flags.returncode, 0, "pkg-config: %s" % flags.stderr)
        src = os.path.join(d, "p.c")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\n#include <sqltrace.h>\nint main(void) {\n'
                    '  sqltrace_set_trace_id("req-42"); puts(sqltrace_get_trace_id());\n'
                    '  sqltrace_clear_trace_id(); return sqltrace_get_trace_id()[0] != 0; }\n')
        exe = os.path.join(d, "p")
        r = subprocess.run(["cc", src, "-o", exe] + flags.stdout.split() +
                           ["-Wl,-rpath," + os.path.join(dest, "usr/local/lib")], capture_output=True, text=True)
        eq(r.returncode, 0, "compile with pkg-config flags: %s" % r.stderr)
        r = subprocess.run([exe], capture_output=True, text=True)
        eq((r.returncode, r.stdout), (0, "req-42\n"), "program linked with the installed shim")


if __name__ == "__main__":
    main()
