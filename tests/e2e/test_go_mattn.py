"""End-to-end: Go services on mattn/go-sqlite3 as they are shipped.

mattnwork (tests/targets/go/mattnwork.go) is built four ways: SQLite linked
statically or dynamically, each stripped (-ldflags "-s -w") or not. Each is
traced by --, -p and -b, and what was captured is compared with what the
program ran and reported itself: every statement and its count, rows, the
driver's error messages, the slow query's duration against the program's
own clock, 8 goroutines at once (on several threads), deep recursion
between queries; and the program's own output is the same traced."""
import json
import os
import subprocess
import tempfile

from harness import TARGETS, TOOL, eq, main, need_bpf, test
from mattn_work import by_binary, by_pid, compare, plain_lines

VARIANTS = ["static", "static-stripped", "dynamic", "dynamic-stripped"]


def exe(variant):
    return os.path.join(TARGETS, "mattnwork-" + variant)


def by_command(variant, d):
    db = os.path.join(d, variant + ".db")
    p = subprocess.run([TOOL, "--no-store", "--log-format", "json", "--", exe(variant), db],
                       capture_output=True, timeout=120, input=b"go\n\n")
    eq(p.returncode, 0, "-- %s: %s" % (variant, p.stderr.decode()[-800:]))
    out = p.stdout.decode()
    entries = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    prog = "\n".join(l for l in out.splitlines() if not l.startswith("{"))
    return entries, prog


def untraced(variant, d):
    p = subprocess.run([exe(variant), os.path.join(d, variant + "-plain.db")], capture_output=True, timeout=120,
                       input=b"go\n\n")
    eq(p.returncode, 0, "untraced %s: %s" % (variant, p.stderr.decode()[-300:]))
    return p.stdout.decode()


def make_test(variant):
    def t():
        need_bpf()
        with tempfile.TemporaryDirectory() as d:
            entries, prog = by_command(variant, d)
            compare(entries, prog, "-- " + variant)
            eq(plain_lines(prog), plain_lines(untraced(variant, d)), "the program's output, traced and not")
            by_pid(exe(variant), d, variant)
    t.__name__ = "test_mattn_" + variant.replace("-", "_")
    return t


for v in VARIANTS:
    test(make_test(v))


@test
def test_mattn_static_stripped_by_binary():
    """-b on the stripped static executable, for a process started later."""
    need_bpf()
    with tempfile.TemporaryDirectory() as d:
        by_binary(exe("static-stripped"), d, "static-stripped")


if __name__ == "__main__":
    main()
