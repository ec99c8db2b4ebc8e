"""test_manpages.py — the man pages (man/) and the bash completion
(dist/bash-completion/sqltrace-bpf) against the tool itself, no root needed:
  - every page is clean for `mandoc -Tlint` (warnings and up) and for
    `man --warnings`;
  - the options `--help` lists and those the page's OPTIONS list are the
    same, for the tool, `ingest`, and every subcommand the usage names (a
    subcommand with no page, or an option missing on one side, is named);
  - completion offers the options --help lists, the subcommands, PIDs for
    -p, process names for -n and the choices of --log-format."""
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, TOOL, Fail, Skip, check, eq, main, test  # noqa: E402

MAN_DIR = os.path.join(ROOT, "man")
COMPLETION = os.path.join(ROOT, "dist", "bash-completion", "sqltrace-bpf")

# An option line of --help: "  -p, --pid PID ..." or "      --slow DUR ...";
# continuation lines are indented further.
HELP_OPT = re.compile(r"^ {1,8}(?:-[A-Za-z], )?--([a-z][a-z0-9-]*)")
# A tag line after .TP in a page: ".BR \-p \", \" \-\-pid ...", ".BI \-\-slow ..."
MAN_OPT = re.compile(r"\\-\\-([a-z][a-z0-9\\-]*)")


def help_text(sub=None):
    argv = [TOOL] + ([sub] if sub else []) + ["--help"]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise Fail("%s exited %d: %s" % (" ".join(argv), p.returncode, p.stderr.decode()))
    return p.stdout.decode()


def help_options(text):
    return {m.group(1) for m in map(HELP_OPT.match, text.splitlines()) if m}


def subcommands(text):
    """The NAME of usage lines "sqltrace-bpf NAME [OPTIONS]"."""
    subs = set()
    for line in text.splitlines():
        m = re.match(r"^(?:Usage:)? +sqltrace-bpf ([a-z][a-z0-9-]*)\b", line)
        if m:
            subs.add(m.group(1))
    return subs


def man_options(path):
    """Long options tagged in the page's OPTIONS section (.TP items)."""
    opts, in_options, after_tp = set(), False, False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".SH"):
                in_options = line.split(None, 1)[1].strip('"') == "OPTIONS" if " " in line else False
                continue
            if not in_options:
                continue
            if line.startswith(".TP"):
                after_tp = True
                continue
            if after_tp:
                after_tp = False
                m = MAN_OPT.search(line)
                if m:
                    opts.add(m.group(1).replace("\\-", "-"))
    return opts


def page_for(sub):
    """man/sqltrace-bpf[-SUB].SECTION, whatever the section."""
    name = "sqltrace-bpf" + ("-" + sub if sub else "")
    found = glob.glob(os.path.join(MAN_DIR, name + ".[1-8]"))
    return found[0] if found else None


def compare(sub):
    text = help_text(sub)
    page = page_for(sub)
    what = "sqltrace-bpf" + (" " + sub if sub else "")
    if page is None:
        raise Fail("%s has --help but no man page man/sqltrace-bpf%s.N" % (what, "-" + sub if sub else ""))
    h, m = help_options(text), man_options(page)
    # the tool has dozens; a subcommand at least --help (none read: the
    # format of its --help is not the one HELP_OPT reads)
    check(len(h) >= (10 if sub is None else 1), "too few options read from %s --help: %r" % (what, sorted(h)))
    problems = []
    for o in sorted(h - m):
        problems.append("--%s is in `%s --help` but not in %s" % (o, what, os.path.relpath(page, ROOT)))
    for o in sorted(m - h):
        problems.append("--%s is in %s but not in `%s --help`" % (o, os.path.relpath(page, ROOT), what))
    if problems:
        raise Fail("; ".join(problems))


@test
def test_pages_lint_clean():
    if not shutil.which("mandoc"):
        raise Skip("mandoc is not installed (make deps)")
    pages = sorted(glob.glob(os.path.join(MAN_DIR, "*.[1-8]")))
    check(len(pages) >= 3, "pages: %r" % pages)
    for p in pages:
        r = subprocess.run(["mandoc", "-Tlint", "-W", "style", p], capture_output=True, timeout=30)
        out = (r.stdout + r.stderr).decode()
        eq(out.strip(), "", "mandoc -Tlint -W style %s" % os.path.basename(p))
        r = subprocess.run(["man", "--warnings", "-l", p], capture_output=True, timeout=30,
                           env=dict(os.environ, MANWIDTH="80"))
        eq(r.returncode, 0, "man -l %s exit" % p)
        eq(r.stderr.decode().strip(), "", "man --warnings -l %s" % os.path.basename(p))
        check(b"NAME" in r.stdout, "man -l %s printed no page" % p)


@test
def test_lint_catches_a_broken_page():
    """The lint check above is not blind: a page with a bad macro fails it."""
    if not shutil.which("mandoc"):
        raise Skip("mandoc is not installed (make deps)")
    r = subprocess.run(["mandoc", "-Tlint", "-W", "style"], input=b".TH X 8\n.SH NAME\nx \\- y\n.BOGUS\n",
                       capture_output=True, timeout=30)
    check((r.stdout + r.stderr).strip() != b"", "mandoc said nothing about .BOGUS")


@test
def test_help_and_man_list_the_same_options():
    compare(None)


@test
def test_every_subcommand_has_a_page_that_agrees():
    subs = subcommands(help_text())
    check("ingest" in subs, "no subcommand read from --help: %r" % subs)
    problems = []
    for s in sorted(subs):
        try:
            compare(s)
        except Fail as e:
            problems.append(str(e))
    if problems:
        raise Fail("; ".join(problems))


@test
def test_comparison_names_a_missing_option():
    """The comparison reports an option by name (here: one removed from a
    copy of the page)."""
    page = page_for(None)
    with open(page) as f:
        text = f.read()
    cut = re.sub(r"\.TP\n\.BI \\-\\-slow .*?\n", ".TP\n.B x\n", text, count=1)
    check(cut != text, "the --slow item was not found in the page")
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sqltrace-man-%d.8" % os.getpid())
    with open(tmp, "w") as f:
        f.write(cut)
    try:
        missing = help_options(help_text()) - man_options(tmp)
    finally:
        os.unlink(tmp)
    eq(missing, {"slow"}, "options missing from the cut page")


def complete(words):
    """COMPREPLY of the completion function for the words (the last one is
    being completed)."""
    script = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _sqltrace_bpf; printf "%%s\\n" "${COMPREPLY[@]}"'
              % (COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1))
    r = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30)
    eq(r.stderr.decode(), "", "completion stderr")
    return [x for x in r.stdout.decode().splitlines() if x]


@test
def test_completion():
    got = set(complete([TOOL, "--"]))
    want = {"--" + o for o in help_options(help_text())}
    eq(got, want, "options completed for '--'")
    eq(complete([TOOL, "--log-f"]), ["--log-format"], "completion of --log-f")
    eq(sorted(complete([TOOL, "--log-format", ""])), ["json", "text"], "--log-format values")
    check("ingest" in complete([TOOL, ""]), "subcommands: %r" % complete([TOOL, ""]))
    check("--token-file" in complete([TOOL, "ingest", "--tok"]), "ingest options")
    pid = str(os.getpid())
    check(pid in complete([TOOL, "-p", pid[:-1]]), "own PID not offered for -p")
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    check(comm in complete([TOOL, "-n", comm[:3]]), "own process name not offered for -n")
    check("python3" in complete([TOOL, "--", "python"]), "commands after --")


if __name__ == "__main__":
    main()
