"""test_layout_decode.py — SQLite copies of another build than the tool's
(issue 13, item 3): their object layout is decoded from their own code
(user/find/layout_decode.c), so their failed statements carry SQLite's own
message (what sqlite3_errmsg() returned in the program) instead of the
result code's text, and their steps are probed at sqlite3_step's exit site.
Targets: Debian's libsqlite3.a linked into an executable (static_errors),
and Node with better-sqlite3 (its own SQLite 3.5x, installed from npm by
tests/better_sqlite3.sh, skipped only when the npm registry cannot be
reached). layout_check compares the decoded offsets with the ones
calibrated by running the very same SQLite build."""
import ctypes
import os
import shutil
import subprocess
import tempfile

from harness import (NPM_DIR, ROOT, TARGETS, Fail, npm_better_sqlite3, check, eq, main, need_bpf, program_errors, test,
                     trace_target)

STATIC = os.path.join(TARGETS, "static_errors")
LAYOUT_CHECK = os.path.join(TARGETS, "layout_check")
BS3_JS = os.path.join(ROOT, "tests", "targets", "node", "bs3_errors.js")
BS3_NODE = os.path.join(NPM_DIR, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node")
BS3_A = os.path.join(NPM_DIR, "node_modules", "better-sqlite3", "build", "Release", "sqlite3.a")

DUP = "INSERT INTO items(id, v) VALUES (1, 'dup')"
BAD = "SELEC id FROM items"
SELECT = "SELECT id, v FROM items ORDER BY id"


def check_copy(entries, tr, out, path):
    msgs = program_errors(out)
    by_query = {}
    for e in entries:
        by_query.setdefault(e["query"], e)
    for q in (DUP, BAD, SELECT):
        check(q in by_query, "%r not traced; entries: %r" % (q, [e["query"] for e in entries]))
    eq(by_query[DUP].get("error"), msgs["err1"], "constraint failure's message")
    eq(by_query[BAD].get("error"), msgs["err2"], "syntax error's message")
    eq(by_query[SELECT].get("rows"), 2, "rows of the SELECT")
    eq(by_query[SELECT].get("error"), None, "the SELECT's error")
    lines = [l for l in tr.stderr.splitlines() if path in l]
    check(any("layout decoded from its code" in l and "not decoded: nothing" in l for l in lines),
          "-v does not say every offset was decoded: %s" % lines)
    check(any("step outcomes read from the statement at sqlite3_step's exit sites" in l for l in lines),
          "steps not probed at the exit site: %s" % lines)


@test
def test_static_copy_reports_sqlite_messages():
    need_bpf()
    entries, tr, out = trace_target([STATIC], ["-v"])
    check_copy(entries, tr, out, STATIC)


def patch_function(exe, name, old, new):
    """Replaces the one occurrence of old in function name's code (by its
    symbol and the program headers) with new, in place."""
    sym = [l.split() for l in subprocess.run(["nm", "-S", exe], capture_output=True, text=True).stdout.splitlines()]
    addr, size = [(int(f[0], 16), int(f[1], 16)) for f in sym if len(f) == 4 and f[3] == name][0]
    for l in subprocess.run(["readelf", "-lW", exe], capture_output=True, text=True).stdout.splitlines():
        f = l.split()
        if f and f[0] == "LOAD" and int(f[2], 16) <= addr < int(f[2], 16) + int(f[4], 16):
            off = addr - int(f[2], 16) + int(f[1], 16)
            break
    with open(exe, "r+b") as fh:
        fh.seek(off)
        code = fh.read(size)
        eq(code.count(old), 1, "%s: %r in its code" % (name, old))
        fh.seek(off + code.index(old))
        fh.write(new)


@test
def test_undecodable_copy_learns_and_keeps_code_text():
    """A copy whose accessors have no names (stripped from a copy of
    static_errors) and whose sqlite3Reprepare does not give zSql away: -v
    says what was not decoded and why, zSql is learned at the first prepare
    (the learning fallback) and the texts come from the prepares until
    then; Vdbe.db comes from
    sqlite3_reset (its db->mutex call), so a statement's error carries its
    own message (Vdbe.zErrMsg), while a failed prepare's carries SQLite's
    code text (sqlite3_errstr) since db->pErr cannot be known."""
    need_bpf()
    hidden = ("sqlite3_sql", "sqlite3_db_handle", "sqlite3_errmsg", "sqlite3VdbeTransferError",
              "sqlite3VdbeResetStepResult")
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "static_errors_nonames")
        shutil.copy(STATIC, exe)
        # sqlite3Reprepare's `mov $-1,%edx` (the text's length for
        # sqlite3LockAndPrepare: NUL-terminated) made -2, which SQLite
        # takes the same way: zSql cannot be decoded through it either
        patch_function(exe, "sqlite3Reprepare", b"\xba\xff\xff\xff\xff", b"\xba\xfe\xff\xff\xff")
        subprocess.run(["objcopy"] + ["--strip-symbol=" + n for n in hidden] + [exe], check=True)
        entries, tr, out = trace_target([exe], ["-v"])
    errstr = ctypes.CDLL("libsqlite3.so.0").sqlite3_errstr
    errstr.restype = ctypes.c_char_p
    by_query = {}
    for e in entries:
        by_query.setdefault(e["query"], e)
    check(DUP in by_query and BAD in by_query and SELECT in by_query,
          "statements not traced (learning): %r" % [e["query"] for e in entries])
    eq(by_query[DUP].get("error"), program_errors(out)["err1"], "constraint failure: the statement's message")
    eq(by_query[BAD].get("error"), errstr(1).decode(), "failed prepare without a known pErr")
    eq(by_query[SELECT].get("rows"), 2, "rows of the SELECT")
    lines = [l for l in tr.stderr.splitlines() if exe in l]
    check(any("db=0" in l and "not decoded: zSql (sqlite3_sql) pErr (no sqlite3_errmsg)" in l and
              "will be learned from its first prepare" in l and
              "a failed prepare's error carries SQLite's code text" in l
              for l in lines), "-v does not say what is missing: %s" % lines)
    check(any("layout learned (zSql at " in l for l in lines), "zSql not learned: %s" % lines)


@test
def test_static_copy_layout_equals_its_calibration():
    """Debian's libsqlite3.a inside layout_check: decoded = calibrated."""
    r = subprocess.run([LAYOUT_CHECK], capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, "layout_check (decoded vs calibrated):\n%s%s" % (r.stdout, r.stderr))


def layout_check_with(sqlite_objs, name):
    """layout_check linked with the given SQLite objects, built into NPM_DIR."""
    exe = os.path.join(NPM_DIR, name)
    src = [os.path.join(ROOT, p) for p in ("tests/targets/layout_check.c", "user/find/layout.c",
                                           "user/find/layout_decode.c", "user/find/codewalk.c",
                                           "user/find/elfsym.c", "user/find/ehframe.c")]
    r = subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "user"),
                        "-I" + os.path.join(ROOT, "user", "find"), "-I" + os.path.join(ROOT, "common"),
                        "-I" + os.path.join(ROOT, "bpf")] + src + sqlite_objs +
                       ["-ldw", "-lelf", "-lz", "-lcapstone", "-lm", "-ldl", "-lpthread", "-o", exe],
                       capture_output=True, text=True, timeout=300)
    eq(r.returncode, 0, "building %s: %s" % (name, r.stderr))
    return exe


@test
def test_better_sqlite3_layout_equals_its_calibration():
    """better-sqlite3's own SQLite build: decoded from its .node = calibrated
    by running that build (its sqlite3.a linked into layout_check)."""
    npm_better_sqlite3()
    exe = layout_check_with([BS3_A], "layout_check_bs3")
    r = subprocess.run([exe, BS3_NODE], capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, "layout_check on better_sqlite3.node:\n%s%s" % (r.stdout, r.stderr))
    check("version 3040001" not in r.stdout, "better-sqlite3 bundles another SQLite version")


@test
def test_unoptimised_build_layout_equals_its_calibration():
    """SQLite built without optimisation (as a debug build of a program
    bundling it is, e.g. Rust's): every value goes through the frame. What
    is decoded equals calibration, and everything errors and steps need is
    decoded."""
    npm_better_sqlite3()
    src = os.path.join(NPM_DIR, "node_modules", "better-sqlite3", "deps", "sqlite3")
    obj = os.path.join(NPM_DIR, "sqlite3-O0.o")
    r = subprocess.run(["cc", "-O0", "-c", "-I" + src, os.path.join(src, "sqlite3.c"), "-o", obj],
                       capture_output=True, text=True, timeout=600)
    eq(r.returncode, 0, "building SQLite -O0: %s" % r.stderr)
    exe = layout_check_with([obj], "layout_check_O0")
    r = subprocess.run([exe, "--partial"], capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, "layout_check -O0 (decoded vs calibrated):\n%s%s" % (r.stdout, r.stderr))
    decoded = {l.split()[0]: int(l.split()[2]) for l in r.stdout.splitlines() if len(l.split()) == 3}
    for name in ("zSql", "db", "pErr", "Mem.z", "state", "rc", "zErrMsg", "pParse"):
        check(decoded.get(name, -1) >= 0, "%s not decoded from the -O0 build:\n%s" % (name, r.stdout))


@test
def test_better_sqlite3_reports_sqlite_messages():
    need_bpf()
    npm_better_sqlite3()
    entries, tr, out = trace_target(["node", BS3_JS, NPM_DIR], ["-v"])
    check_copy(entries, tr, out, "better_sqlite3.node")


@test
def test_better_sqlite3_required_after_attach():
    """Node requires better-sqlite3 only after the tracer attached (issue 13,
    item 1): the extension's SQLite is probed before its first statement."""
    need_bpf()
    npm_better_sqlite3()
    js = os.path.join(ROOT, "tests", "targets", "node", "bs3_late.js")
    entries, tr, out = trace_target(["node", js, NPM_DIR], ["-v"])
    eq([e["query"] for e in entries], ["SELECT 'node-first'", "SELECT 'node-second'"], "entries")


if __name__ == "__main__":
    main()
