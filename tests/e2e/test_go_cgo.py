#!/usr/bin/env python3
"""test_go_cgo.py — Go services whose C SQLite only Go's function table can
locate: mattnwork (tests/targets/go/mattnwork.go) built with
`-tags sqlite_omit_load_extension` against a SQLite that is not the
system's (better-sqlite3's amalgamation, compiled here with
SQLITE_OMIT_LOAD_EXTENSION: no extension API table), linked statically and
dynamically, stripped. The tool must find SQLite through the cgo wrappers
(user/find/cgofind.c; the dynamic build keeps SQLite's names in .dynsym),
decode that copy's layout from its own code (never
the system's), and capture exactly what the program ran: every statement
and its count, rows, the driver's error messages, the slow query against
the program's clock, 8 goroutines on several threads, deep recursion — by
--, -p and -b (a process started later). The builds are made once into
$BUILD/targets/cgo-nolx/."""
import json
import os
import re
import signal
import subprocess
import tempfile

from harness import BUILD, ROOT, TARGETS, TOOL, Fail, Skip, Tracer, check, eq, main, need_bpf, test
from mattn_work import by_binary, by_pid, compare, plain_lines

DIR = os.path.join(TARGETS, "cgo-nolx")
GO_SRC = os.path.join(ROOT, "tests", "targets", "go")
SYSTEM_VERSION = subprocess.run(["/usr/bin/python3", "-c", "import sqlite3; print(sqlite3.sqlite_version)"],
                                capture_output=True, text=True).stdout.strip()


def exe(variant):
    return os.path.join(DIR, "mattnwork-" + variant)


def build():
    """libsqlite3.a without loadable-extension support
    (tests/sqlite_no_api_table.sh), and mattnwork against it: static,
    static-stripped, dynamic-stripped (once)."""
    r = subprocess.run([os.path.join(ROOT, "tests", "sqlite_no_api_table.sh"), BUILD], capture_output=True,
                       text=True, timeout=1800)
    if r.returncode == 77:
        raise Skip(r.stderr.strip())
    if r.returncode != 0:
        raise Fail("building SQLite without the API table failed: %s" % r.stderr.strip()[-800:])
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", CGO_ENABLED="1",
               GOCACHE=os.path.join(BUILD, "gocache"), CGO_LDFLAGS="-L%s -lm -ldl -lpthread" % DIR)
    for variant, ldflags in (("static", '-linkmode external -extldflags "-static"'),
                             ("static-stripped", '-s -w -linkmode external -extldflags "-static"'),
                             ("dynamic-stripped", "-s -w")):
        src = os.path.join(GO_SRC, "mattnwork.go")
        if os.path.exists(exe(variant)) and os.path.getmtime(exe(variant)) >= os.path.getmtime(src):
            continue
        r = subprocess.run(["go", "build", "-tags", "sqlite_omit_load_extension", "-ldflags", ldflags,
                            "-o", exe(variant) + ".tmp", "mattnwork.go"], cwd=GO_SRC, env=env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise Fail("go build %s: %s" % (variant, r.stderr[-800:]))
        os.rename(exe(variant) + ".tmp", exe(variant))


def found_by_cgo(stderr, path, cgo):
    """-v says the copy was found through its cgo wrappers (cgo: the static
    build; the dynamic one exports SQLite's functions in .dynsym, which
    strip keeps), with a layout decoded from its own code, and gives
    SQLite's messages."""
    lines = [l for l in stderr.splitlines() if path in l]
    check(not cgo or any("functions named by its Go cgo wrappers of github.com/mattn/go-sqlite3" in l for l in lines),
          "not found through the cgo wrappers: %s" % lines)
    dec = [l for l in lines if "layout decoded from its code" in l]
    check(dec, "-v has no layout decoded from its code: %s" % lines)
    for field in ("db=", "pErr=", "rc=", "zErrMsg="):
        check(field in dec[0].split("not decoded")[0], "%s not decoded: %s" % (field, dec[0]))
    check("not its message" not in dec[0], "errors would lack SQLite's message: %s" % dec[0])


def twin_zsql():
    """zSql as the unstripped static build's symbols give it (sqlite3_sql)."""
    tr = Tracer(["-v", "--no-store", "-b", exe("static")])
    tr.stop(signal.SIGINT)
    m = re.search(r"layout decoded from its code: zSql=(\d+)", tr.stderr)
    check(m, "the unstripped build's layout: %s" % tr.stderr[-600:])
    return int(m.group(1))


def file_offset(exe_path, name):
    """The file offset of function name in exe_path (its symbol)."""
    addr = [int(f[0], 16) for f in (l.split() for l in subprocess.run(
        ["nm", exe_path], capture_output=True, text=True).stdout.splitlines()) if len(f) == 3 and f[2] == name]
    check(len(addr) == 1, "%s: symbol %s" % (exe_path, name))
    for l in subprocess.run(["readelf", "-lW", exe_path], capture_output=True, text=True).stdout.splitlines():
        f = l.split()
        if f and f[0] == "LOAD" and int(f[2], 16) <= addr[0] < int(f[2], 16) + int(f[4], 16):
            return addr[0] - int(f[2], 16) + int(f[1], 16)
    raise Fail("%s: %s in no segment" % (exe_path, name))


def by_command(variant, d):
    p = subprocess.run([TOOL, "-v", "--no-store", "--log-format", "json", "--", exe(variant),
                        os.path.join(d, "c.db")], capture_output=True, timeout=180, input=b"go\n\n")
    eq(p.returncode, 0, "-- %s: %s" % (variant, p.stderr.decode()[-800:]))
    out = p.stdout.decode()
    entries = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    prog = "\n".join(l for l in out.splitlines() if not l.startswith("{"))
    return entries, prog, p.stderr.decode()


def untraced(variant, d):
    p = subprocess.run([exe(variant), os.path.join(d, "plain.db")], capture_output=True, timeout=120,
                       input=b"go\n\n")
    eq(p.returncode, 0, "untraced %s: %s" % (variant, p.stderr.decode()[-300:]))
    return p.stdout.decode()


@test
def test_builds_have_no_api_table_and_another_sqlite():
    """The premise: the stripped builds carry a SQLite other than the
    system's, without an API table (the tool says so for the copy only a
    cgo finder can locate: here the unstripped twin's symbols tell which
    version it is), and every function the cgo finder names in the
    unstripped build is its symbol (tests/unit/test_cgofind.c)."""
    build()
    v = subprocess.run(["sh", "-c", "strings '%s' | grep -m1 -o '^3\\.[0-9]*\\.[0-9]*$'" % exe("static")],
                       capture_output=True, text=True).stdout.strip()
    check(v and v != SYSTEM_VERSION, "the build's SQLite %r is the system's %r" % (v, SYSTEM_VERSION))
    nm = subprocess.run(["nm", exe("static")], capture_output=True, text=True).stdout
    check(" sqlite3_step\n" in nm and "sqlite3Apis" not in nm, "static build: API table present or no SQLite")
    r = subprocess.run([os.path.join(BUILD, "tests", "test_cgofind"), exe("static")], capture_output=True,
                       text=True)
    check(r.returncode == 0 and "PASS test_extra_build" in r.stdout, "test_cgofind on this build:\n%s" % r.stdout)


def make_test(variant):
    def t():
        need_bpf()
        build()
        with tempfile.TemporaryDirectory() as d:
            entries, prog, err = by_command(variant, d)
            found_by_cgo(err, exe(variant), variant.startswith("static"))
            if variant.startswith("static"):
                # zSql decoded from its code (sqlite3Reprepare's call of
                # sqlite3_sql), as the twin's symbols say
                check(" zSql=%d " % twin_zsql() in err, "zSql not decoded as the twin's: %s" %
                      [l for l in err.splitlines() if "layout decoded" in l])
                # sqlite3LockAndPrepare through sqlite3_prepare_v2 alone (no
                # sqlite3_prepare_v3 wrapper): the twin's, and prepares are
                # probed at entry only, failures at sqlite3ErrorWithMsg
                want = "attached sqlite3LockAndPrepare at %s+0x%x " % (exe(variant),
                                                                       file_offset(exe("static"), "sqlite3LockAndPrepare"))
                check(want in err, "%r not in -v: %s" % (want, [l for l in err.splitlines() if "Prepare" in l]))
                check("prepares probed at entry only (failures at sqlite3ErrorWithMsg)" in err,
                      "prepares: %s" % [l for l in err.splitlines() if "prepares" in l])
            compare(entries, prog, "-- " + variant)
            eq(plain_lines(prog), plain_lines(untraced(variant, d)), "the program's output, traced and not")
            by_pid(exe(variant), d, variant)
    t.__name__ = "test_cgo_" + variant.replace("-", "_")
    return t


for v in ("static-stripped", "dynamic-stripped"):
    test(make_test(v))


@test
def test_cgo_static_stripped_by_binary():
    """-b on the stripped static executable, for a process started later."""
    need_bpf()
    build()
    with tempfile.TemporaryDirectory() as d:
        by_binary(exe("static-stripped"), d, "static-stripped")


if __name__ == "__main__":
    main()
