"""test_install.py — installing sqltrace-bpf as a system tool:
  - `make install DESTDIR=... PREFIX=/usr/local` writes exactly the
    expected files (and lists them), keeps an admin's config file;
    `make uninstall` leaves no file behind;
  - the systemd units pass `systemd-analyze verify` with nothing to say;
    the ingest unit carries its hardening, and its ExecStart, run by hand as
    systemd would run it (a dynamic user: nobody here; the credential and
    state directories), stores a batch it is sent; sqltrace@.service's
    ExecStart, with its config files, traces the processes of a service's
    cgroup into its state directory;
  - `make deb` builds a package lintian finds no error in, with its runtime
    dependencies declared, that `apt-get install ./pkg.deb` installs (in a
    private mount namespace whose /usr, /etc and /var are overlays, so the
    machine itself is not touched), whose --help, man pages and units work
    from the installed tree, and whose removal removes every file.
This machine may not run systemd as PID 1: the units are checked with
systemd-analyze and their ExecStart run by hand."""
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, PYTHON, ROOT, Fail, Skip, Target, check, eq, main,  # noqa: E402
                     need_bpf, readline_timeout, test)

BUILD_NAME = os.path.relpath(BUILD, ROOT)


def make(*args, timeout=600):
    r = subprocess.run(["make", "--no-print-directory", "BUILD=" + BUILD_NAME] + list(args), cwd=ROOT,
                       capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise Fail("make %s failed: %s%s" % (" ".join(args), r.stdout.decode()[-2000:], r.stderr.decode()[-2000:]))
    return r.stdout.decode()


def tree(root):
    """Files and symbolic links under root, relative to it."""
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def expected_files(prefix_rel, root):
    man = set()
    for p in glob.glob(os.path.join(ROOT, "man", "*.[1-8]")):
        man.add("%s/share/man/man%s/%s" % (prefix_rel, p[-1], os.path.basename(p)))
    py = glob.glob(os.path.join(root, prefix_rel, "lib", "python3*", "*-packages", "sqltrace.py"))
    eq(len(py), 1, "the Python module installed once: %r" % py)
    return man | {
        prefix_rel + "/sbin/sqltrace-bpf",
        prefix_rel + "/share/bash-completion/completions/sqltrace-bpf",
        prefix_rel + "/lib/systemd/system/sqltrace-ingest.service",
        prefix_rel + "/lib/systemd/system/sqltrace@.service",
        prefix_rel + "/lib/libsqltrace.so.0",
        prefix_rel + "/lib/libsqltrace.so",
        prefix_rel + "/lib/libsqltrace.a",
        prefix_rel + "/include/sqltrace.h",
        prefix_rel + "/lib/pkgconfig/sqltrace.pc",
        prefix_rel + "/share/sqltrace-bpf/installed-files",
        os.path.relpath(py[0], root),
        "etc/sqltrace/sqltrace.conf",
    }


@test
def test_install_and_uninstall_into_destdir():
    with tempfile.TemporaryDirectory() as d:
        make("install", "DESTDIR=" + d, "PREFIX=/usr/local")
        got = tree(d)
        want = expected_files("usr/local", d)
        eq(sorted(got - want), [], "files installed but not expected")
        eq(sorted(want - got), [], "files expected but not installed")
        with open(os.path.join(d, "usr/local/share/sqltrace-bpf/installed-files")) as f:
            listed = {line.rstrip("\n").lstrip("/") for line in f if line.strip()}
        eq(listed, got, "the list of installed files")
        tool = os.path.join(d, "usr/local/sbin/sqltrace-bpf")
        eq(stat.S_IMODE(os.stat(tool).st_mode), 0o755, "tool mode")
        eq(stat.S_IMODE(os.stat(os.path.join(d, "etc/sqltrace/sqltrace.conf")).st_mode), 0o644, "config mode")
        check(os.path.islink(os.path.join(d, "usr/local/lib/libsqltrace.so")), "libsqltrace.so is a link")
        r = subprocess.run([tool, "--help"], capture_output=True, timeout=30)
        eq(r.returncode, 0, "installed tool --help")
        with open(os.path.join(d, "usr/local/lib/systemd/system/sqltrace@.service")) as f:
            check("ExecStart=/usr/local/sbin/sqltrace-bpf " in f.read(), "unit names the installed tool")
        make("uninstall", "DESTDIR=" + d, "PREFIX=/usr/local")
        eq(sorted(tree(d)), [], "files left after uninstall")


@test
def test_install_keeps_the_admins_config():
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "etc/sqltrace/sqltrace.conf")
        os.makedirs(os.path.dirname(conf))
        with open(conf, "w") as f:
            f.write("# mine\nslow = 1s\n")
        make("install", "DESTDIR=" + d, "PREFIX=/usr")
        with open(conf) as f:
            eq(f.read(), "# mine\nslow = 1s\n", "config after install")
        check(os.path.exists(os.path.join(d, "usr/lib/systemd/system/sqltrace-ingest.service")),
              "PREFIX=/usr: units in /usr/lib/systemd/system")
        make("uninstall", "DESTDIR=" + d, "PREFIX=/usr")
        eq(sorted(tree(d)), ["etc/sqltrace/sqltrace.conf"], "left after uninstall")


def install_units(d):
    """Installs into d with the tool's path in the units being this build's
    tool (so systemd-analyze finds it); returns the unit directory."""
    make("install", "DESTDIR=" + d, "PREFIX=/usr/local", "SBINDIR=" + BUILD)
    return os.path.join(d, "usr/local/lib/systemd/system")


def verify(units, mandir):
    r = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True, timeout=60,
                       env=dict(os.environ, MANPATH=mandir, SYSTEMD_LOG_LEVEL="notice"))
    return r.returncode, (r.stdout + r.stderr).decode().strip()


@test
def test_units_verify_clean():
    if not shutil.which("systemd-analyze"):
        raise Skip("systemd-analyze is not installed (make deps)")
    with tempfile.TemporaryDirectory() as d:
        udir = install_units(d)
        units = [os.path.join(udir, "sqltrace-ingest.service"), os.path.join(udir, "sqltrace@myapp.service")]
        rc, out = verify(units, os.path.join(d, "usr/local/share/man"))
        eq(out, "", "systemd-analyze verify output")
        eq(rc, 0, "systemd-analyze verify exit code")
        # The check is not blind: a wrong value is reported.
        bad = os.path.join(udir, "sqltrace-bad.service")
        with open(units[0]) as f, open(bad, "w") as g:
            g.write(f.read().replace("ProtectSystem=strict", "ProtectSystem=stricter"))
        rc, out = verify([bad], os.path.join(d, "usr/local/share/man"))
        check("ProtectSystem" in out or "protect system" in out, "a bad value went unreported: %r" % out)


def unit_settings(path):
    """{key: [values]} of a unit file (all sections)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


INGEST_HARDENING = {
    "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "",
    "StateDirectory": "sqltrace", "LoadCredential": "token:/etc/sqltrace/token", "UMask": "0077",
    "SystemCallArchitectures": "native",
}


@test
def test_ingest_unit_hardening_present():
    s = unit_settings(os.path.join(ROOT, "dist/systemd/sqltrace-ingest.service.in"))
    for k, v in INGEST_HARDENING.items():
        check(k in s, "%s= missing from sqltrace-ingest.service" % k)
        eq(s[k][-1], v, "%s=" % k)
    check("@system-service" in s.get("SystemCallFilter", []), "SystemCallFilter=@system-service")
    check("%d/token" in s["ExecStart"][0], "the token comes from the credential: " + s["ExecStart"][0])
    check("--listen 127.0.0.1:" in s["ExecStart"][0], "loopback by default")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(url, body, token):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


NOBODY = 65534


@test
def test_ingest_unit_execstart_by_hand():
    """What systemd would run: ExecStart as a dynamic (here: nobody) user,
    in its state directory, the token from its credential directory."""
    need_bpf()   # root: to be another user
    if not shutil.which("setpriv"):
        raise Skip("setpriv is not installed (util-linux)")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        udir = install_units(d)
        s = unit_settings(os.path.join(udir, "sqltrace-ingest.service"))
        state = os.path.join(d, "state")
        creds = os.path.join(d, "creds")
        os.makedirs(os.path.join(state, "sqltrace"), mode=0o700)
        os.chown(os.path.join(state, "sqltrace"), NOBODY, NOBODY)
        os.chmod(state, 0o755)
        os.mkdir(creds, 0o500)
        token = "t0ken-%d" % os.getpid()
        with open(os.path.join(creds, "token"), "w") as f:
            f.write(token + "\n")
        os.chmod(os.path.join(creds, "token"), 0o400)
        os.chown(os.path.join(creds, "token"), NOBODY, NOBODY)
        os.chown(creds, NOBODY, NOBODY)
        port = free_port()
        cmd = s["ExecStart"][0].replace("%d", creds).replace("%S", state)
        cmd = cmd.replace("127.0.0.1:8080", "127.0.0.1:%d" % port)  # 8080 may be taken here
        cwd = s["WorkingDirectory"][0].replace("%S", state)
        eq(cwd, os.path.join(state, "sqltrace"), "WorkingDirectory is the state directory")
        argv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                "--no-new-privs"] + cmd.split()
        p = subprocess.Popen(argv, cwd=cwd, stderr=subprocess.PIPE,
                             preexec_fn=lambda: os.umask(int(s["UMask"][0], 8)))
        try:
            line = readline_timeout(p.stderr, 10)
            check("listening" in line, "ingest did not start: %s" % line)
            url = "http://127.0.0.1:%d/api/internal/traces" % port
            batch = json.dumps([{"Op": "Exec", "Query": "SELECT 'through the unit'", "DurationUs": 12}]).encode()
            eq(post(url, batch, "wrong"), 401, "answer to a wrong token")
            eq(post(url, batch, token), 204, "answer to the token of the credential")
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=30)
        eq(rc, 0, "ingest exit code")
        db = os.path.join(cwd, "traces.db")
        st = os.stat(db)
        eq(st.st_uid, NOBODY, "trace file owner")
        eq(stat.S_IMODE(st.st_mode) & 0o077, 0, "trace file mode (UMask=0077)")
        rows = sqlite3.connect(db).execute("SELECT query, duration_us FROM sql_traces").fetchall()
        eq(rows, [("SELECT 'through the unit'", 12)], "rows stored")


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post_ = line.partition(" - ")
            if post_.startswith("cgroup2 "):
                return pre.split()[4]
    return None


TARGET_SRC = r"""
import os, sqlite3, sys
c = sqlite3.connect(':memory:', isolation_level=None)
print('ready %d' % os.getpid(), flush=True)
sys.stdin.readline()
c.execute("CREATE TABLE svc(x)")
c.execute("INSERT INTO svc VALUES (42)")
print('done', flush=True)
sys.stdin.readline()
"""


@test
def test_instance_unit_execstart_traces_the_service_cgroup():
    """sqltrace@NAME.service's ExecStart, its config files in a directory of
    ours instead of /etc/sqltrace: a process of NAME.service's cgroup
    (system.slice/NAME.service, made here) started after it is traced into
    the state directory, as the config says."""
    need_bpf()
    base = cgroup2_mount()
    if base is None:
        raise Skip("no cgroup2 file system mounted")
    name = "sqltrace-test-%d" % os.getpid()
    made_slice = not os.path.isdir(os.path.join(base, "system.slice"))
    cg = os.path.join(base, "system.slice", name + ".service")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        udir = install_units(d)
        s = unit_settings(os.path.join(udir, "sqltrace@.service"))
        etc = os.path.join(d, "etc-sqltrace")
        os.mkdir(etc, 0o755)
        shutil.copy(os.path.join(ROOT, "dist/etc/sqltrace.conf"), os.path.join(etc, "sqltrace.conf"))
        with open(os.path.join(etc, name + ".conf"), "w") as f:
            f.write("# per instance\nflush-interval = 50ms\n")
        state = os.path.join(d, "state")
        os.makedirs(os.path.join(state, "sqltrace-bpf", name), mode=0o700)
        cmd = (s["ExecStart"][0].replace("/etc/sqltrace", etc).replace("%i", name).replace("%S", state))
        cwd = s["WorkingDirectory"][0].replace("%S", state).replace("%i", name)
        os.makedirs(cg)
        tr = t = None
        try:
            tr = subprocess.Popen(cmd.split(), cwd=cwd, stderr=subprocess.PIPE)
            err = []
            while True:
                line = readline_timeout(tr.stderr, 30)
                check(line != "", "tracer ended: %s" % "".join(err))
                err.append(line)
                if "tracing" in line:
                    break
            t = Target([PYTHON, "-c", TARGET_SRC])
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write("%d\n" % t.pid)
            while True:
                line = readline_timeout(tr.stderr, 10)
                check(line != "", "tracer ended: %s" % "".join(err))
                err.append(line)
                if "PID %d (" % t.pid in line:
                    break
            t.go()
            t.wait_line("done")
            t.finish()
            time.sleep(0.3)
            tr.send_signal(signal.SIGTERM)
            eq(tr.wait(timeout=30), 0, "tracer exit code")
        finally:
            if t:
                t.kill()
            if tr and tr.poll() is None:
                tr.kill()
                tr.wait()
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    time.sleep(0.1)
            if made_slice:
                try:
                    os.rmdir(os.path.join(base, "system.slice"))
                except OSError:
                    pass
        db = os.path.join(cwd, "traces.db")
        rows = sqlite3.connect(db).execute("SELECT query FROM sql_traces WHERE pid = ?", (t.pid,)).fetchall()
        eq([r[0] for r in rows], ["CREATE TABLE svc(x)", "INSERT INTO svc VALUES (42)"], "rows of the service")


REAL_INSTALL_SCRIPT = r"""
set -u
T=$1; ROOTDIR=$2; B=$3
for d in usr etc var; do
	mkdir -p "$T/u/$d" "$T/w/$d"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/u/$d,workdir=$T/w/$d" "/$d" || exit 90
done
snap() { find /usr/local /etc/sqltrace \( -type f -o -type l \) 2>/dev/null | LC_ALL=C sort; }
snap > "$T/before"
echo "== install"
make -C "$ROOTDIR" --no-print-directory BUILD="$B" install >"$T/make.log" 2>&1; echo "rc=$?"
echo "== run"
sqltrace-bpf --help | head -1
MANWIDTH=80 man sqltrace-bpf 2>&1 | grep -c '^NAME'
ldconfig -p | grep -c 'libsqltrace.so.0 '
/usr/bin/python3 -c 'import sqltrace; sqltrace.set_trace_id("x"); print(sqltrace.get_trace_id())'
pkg-config --modversion sqltrace
echo "== uninstall"
make -C "$ROOTDIR" --no-print-directory BUILD="$B" uninstall >>"$T/make.log" 2>&1; echo "rc=$?"
snap > "$T/after"
diff "$T/before" "$T/after"
ldconfig -p | grep -c 'libsqltrace.so.0 '
echo "== end"
"""


def run_in_overlay(script, *args):
    """Runs script in a private mount namespace whose /usr, /etc and /var are
    overlays on the machine's (what it writes there is thrown away).
    Returns the "== NAME" parts of its output as a dict."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script, "x",
                            d] + list(args), capture_output=True, timeout=600)
        out = r.stdout.decode()
        logs = ""
        for name in ("make.log", "apt.log"):
            if os.path.exists(os.path.join(d, name)):
                logs += open(os.path.join(d, name)).read()[-3000:]
    parts = {}
    for chunk in out.split("== ")[1:]:
        head, _, body = chunk.partition("\n")
        parts[head.strip()] = body.strip()
    if "end" not in parts:
        raise Fail("script did not finish: %s %s %s" % (out, r.stderr.decode(), logs))
    return parts, logs


@test
def test_real_install_and_uninstall():
    """`make install` and `make uninstall` without DESTDIR, as root, into
    /usr/local (an overlay): the tool on PATH, man finds its page, ldconfig
    and pkg-config the shim, python3 its module; afterwards /usr/local and
    /etc/sqltrace hold exactly what they held before."""
    need_bpf()   # root: mount namespaces
    if not shutil.which("unshare"):
        raise Skip("unshare missing")
    make("tool", "shim")
    parts, logs = run_in_overlay(REAL_INSTALL_SCRIPT, ROOT, BUILD_NAME)
    eq(parts["install"], "rc=0", "make install: " + logs)
    eq(parts["run"].splitlines(), ["Usage: sqltrace-bpf [OPTIONS] -p PID [-p PID ...]", "1", "1", "x", "0.1.0"],
       "the installed tool, page, library, Python module and pkg-config file")
    eq(parts["uninstall"].splitlines(), ["rc=0", "0"], "make uninstall: what differs from before, "
       "and whether ldconfig still knows libsqltrace")


DEB_SCRIPT = r"""
set -u
T=$1; DEB=$2
for d in usr etc var; do
	mkdir -p "$T/u/$d" "$T/w/$d"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/u/$d,workdir=$T/w/$d" "/$d" || exit 90
done
echo "== install"
DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB" >"$T/apt.log" 2>&1; echo "rc=$?"
echo "== help"
/usr/sbin/sqltrace-bpf --help | head -1; echo "rc=$?"
echo "== man"
MANWIDTH=80 man sqltrace-bpf 2>&1 | grep -c '^NAME'
MANWIDTH=80 man 8 sqltrace-bpf-ingest 2>&1 | grep -c '^NAME'
MANWIDTH=80 man 3 libsqltrace 2>&1 | grep -c '^NAME'
echo "== verify"
systemd-analyze verify /usr/lib/systemd/system/sqltrace-ingest.service \
	/usr/lib/systemd/system/sqltrace@myapp.service 2>&1; echo "rc=$?"
echo "== token"
stat -c '%a %U' /etc/sqltrace/token
dpkg -L sqltrace-bpf > "$T/files"
echo "== listed"
while read -r f; do [ -f "$f" ] && echo "$f"; done < "$T/files" | wc -l
echo "== remove"
DEBIAN_FRONTEND=noninteractive apt-get remove -y sqltrace-bpf >>"$T/apt.log" 2>&1; echo "rc=$?"
# conffiles stay until purge, as Debian wants
while read -r f; do [ "$f" = /etc/sqltrace/sqltrace.conf ] && continue
	{ [ -f "$f" ] || [ -L "$f" ]; } && echo "left: $f"; done < "$T/files"
echo "== purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y sqltrace-bpf >>"$T/apt.log" 2>&1; echo "rc=$?"
while read -r f; do { [ -f "$f" ] || [ -L "$f" ]; } && echo "left: $f"; done < "$T/files"
ls -d /etc/sqltrace 2>/dev/null
echo "== end"
"""


@test
def test_deb_lintian_and_dependencies():
    if not shutil.which("dpkg-deb") or not shutil.which("lintian"):
        raise Skip("dpkg-deb or lintian is not installed (make deps)")
    make("deb")
    debs = glob.glob(os.path.join(BUILD, "deb", "sqltrace-bpf_*.deb"))
    eq(len(debs), 1, "packages built: %r" % debs)
    r = subprocess.run(["lintian", "--tag-display-limit", "0", debs[0]], capture_output=True, timeout=300)
    out = r.stdout.decode()
    errors = [line for line in out.splitlines() if line.startswith("E:")]
    eq(errors, [], "lintian errors")
    check(r.returncode == 0 or not errors, "lintian exit %d: %s" % (r.returncode, r.stderr.decode()))
    deps = subprocess.run(["dpkg-deb", "-f", debs[0], "Depends"], capture_output=True).stdout.decode()
    for pkg in ("libbpf1", "libsqlite3-0", "libcurl4", "libcjson1", "libmicrohttpd12", "libcapstone4",
                "libelf1", "libc6"):
        check(pkg in deps, "%s missing from Depends: %s" % (pkg, deps))


@test
def test_deb_installs_works_and_removes():
    need_bpf()   # root: mount namespaces and apt
    if not shutil.which("apt-get") or not shutil.which("unshare"):
        raise Skip("apt-get or unshare missing")
    make("deb")
    deb = os.path.abspath(glob.glob(os.path.join(BUILD, "deb", "sqltrace-bpf_*.deb"))[0])
    parts, logs = run_in_overlay(DEB_SCRIPT, deb)
    eq(parts["install"], "rc=0", "apt-get install ./%s: %s" % (os.path.basename(deb), logs))
    check(parts["help"].startswith("Usage: sqltrace-bpf"), "installed --help: " + parts["help"])
    eq(parts["man"].split(), ["1", "1", "1"], "man sqltrace-bpf, sqltrace-bpf-ingest, libsqltrace")
    eq(parts["verify"], "rc=0", "systemd-analyze verify of the installed units")
    eq(parts["token"], "600 root", "the token postinst made")
    check(int(parts["listed"]) >= 15, "dpkg -L lists %s files: the removal check is void" % parts["listed"])
    eq(parts["remove"], "rc=0", "apt-get remove (files left but the conffile are listed)")
    eq(parts["purge"], "rc=0", "apt-get purge (files left and /etc/sqltrace are listed)")
    check(not os.path.exists("/usr/sbin/sqltrace-bpf"), "the machine itself was touched")


if __name__ == "__main__":
    main()
