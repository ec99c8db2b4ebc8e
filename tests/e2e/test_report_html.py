"""test_report_html.py — `sqltrace-bpf report --format html` in a real
browser: the page is opened in headless Chromium (Debian's `chromium`),
its DOM after the scripts ran (--dump-dom) is checked against figures
computed here from the entries written, and a screenshot is kept under the
build folder (BUILD/artifacts/report.png). No root needed."""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Fail, Skip, check, eq, main, run_tool, test  # noqa: E402
import tracegen as gen  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Dom(html.parser.HTMLParser):
    """Just enough of a DOM: every element with its attributes, its parent
    and the text directly inside it."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "area", "base", "col", "source"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = {"tag": "#root", "attrs": {}, "children": [], "text": "", "parent": None}
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "children": [], "text": "", "parent": self.cur}
        self.cur["children"].append(el)
        if tag not in self.VOID:
            self.cur = el

    def handle_startendtag(self, tag, attrs):
        self.cur["children"].append({"tag": tag, "attrs": dict(attrs), "children": [], "text": "",
                                     "parent": self.cur})

    def handle_endtag(self, tag):
        el = self.cur
        while el is not None and el["tag"] != tag:
            el = el["parent"]
        if el is not None and el["parent"] is not None:
            self.cur = el["parent"]

    def handle_data(self, data):
        self.cur["text"] += data


def walk(el):
    yield el
    for c in el["children"]:
        yield from walk(c)


def find(el, tag=None, cls=None, id=None):
    return [e for e in walk(el) if (tag is None or e["tag"] == tag) and
            (cls is None or cls in e["attrs"].get("class", "").split()) and
            (id is None or e["attrs"].get("id") == id)]


def text(el):
    return el["text"] + "".join(text(c) for c in el["children"])


def chromium(args, d):
    if not CHROMIUM:
        raise Skip("chromium is not installed (make deps installs it)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--user-data-dir=" + os.path.join(d, "profile")] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise Fail("chromium failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return p.stdout


def load(url, d):
    dom = Dom()
    dom.feed(chromium(["--dump-dom", url], d))
    return dom.root


@test
def test_html_renders_groups_and_charts():
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "t.db")
        entries = gen.make_entries(11, 6000)
        # a statement whose text would break out of the page if not escaped
        for i in range(3):
            entries.append({"shape": -1, "query": "SELECT '</code><script>document.title=\"pwned\"</script>' "
                            "FROM x WHERE y = %d" % i, "duration_us": 5, "error": "<b>bold</b> error",
                            "timestamp": gen.T0 + i, "trace_id": "", "op": "Query", "pid": 1, "tid": 1,
                            "process": "p", "rows": 0, "db_file": "/a.db"})
        gen.write_file(db, entries)
        page = os.path.join(d, "report.html")
        rc, out, err = run_tool(["report", "--format", "html", "--limit", "0", "-o", page, db], timeout=120)
        eq(rc, 0, "report exit code: %s" % err)
        raw = open(page, encoding="utf-8").read()
        check(not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", raw, re.I), "no external resource")
        check("<script>document.title" not in raw, "SQL text is escaped")
        groups = json.loads(run_tool(["report", "--format", "json", "--limit", "0", db])[1])

        root = load("file://" + page, d)
        body = find(root, "body")[0]
        eq(body["attrs"].get("data-ready"), "1", "the page's script ran")
        title = text(find(root, "title")[0])
        check("pwned" not in title, "no script from the SQL ran")
        rows = find(find(root, "table", id="groups")[0], "tr", cls="group")
        eq(len(rows), len(groups), "one row per group")
        for row, g in zip(rows, groups):
            tds = find(row, "td")
            fp = [td for td in tds if "fp" in td["attrs"].get("class", "").split()][0]
            eq(text(find(fp, "code")[0]), g["fingerprint"], "fingerprint cell (in total order)")
            eq(int(tds[0]["attrs"]["data-v"]), g["count"], "count cell")
            eq(int(tds[1]["attrs"]["data-v"]), g["total_us"], "total cell")
            eq(int(tds[6]["attrs"]["data-v"]), g["p99_us"], "p99 cell")
            svg = find(row, "svg", cls="hist")
            eq(len(svg), 1, "a histogram per group")
            bars = find(svg[0], "rect", cls="bar")
            check(len(bars) > 0, "histogram bars")
            n = sum(int(text(find(b, "title")[0]).rsplit(": ", 1)[1]) for b in bars)
            eq(n, g["count"], "histogram counts add up to the group's count")
        tl = find(root, "svg", id="timeline")
        eq(len(tl), 1, "a timeline")
        tlbars = find(tl[0], "rect", cls="tl")
        span_s = (max(e["timestamp"] for e in entries) - min(e["timestamp"] for e in entries)) / 1e6
        check(len(tlbars) >= int(span_s), "a bar per second at least (%d bars, %.1fs)" % (len(tlbars), span_s))
        check(find(tl[0], "polyline", cls="p99"), "a p99 line")
        errs = {}
        for e in entries:
            if e["error"]:
                errs[e["error"]] = errs.get(e["error"], 0) + 1
        etab = find(root, "table", id="errors")
        eq(len(etab), 1, "errors table")
        got = {}
        for tr in find(find(etab[0], "tbody")[0], "tr"):
            tds = find(tr, "td")
            got[text(tds[0])] = int(text(tds[1]))
        eq(got, errs, "errors by message")

        # sorting in the page (the script), through #sort=KEY
        root = load("file://" + page + "#sort=count", d)
        rows = find(find(root, "table", id="groups")[0], "tr", cls="group")
        counts = [int(find(r, "td")[0]["attrs"]["data-v"]) for r in rows]
        eq(counts, sorted(counts, reverse=True), "rows sorted by count in the browser")
        check(counts != [g["count"] for g in groups] or len(set(counts)) == 1,
              "sorting changed the order (total order differs from count order)")

        art = os.path.join(BUILD, "artifacts")
        os.makedirs(art, exist_ok=True)
        shot = os.path.join(art, "report.png")
        if os.path.exists(shot):
            os.unlink(shot)
        chromium(["--screenshot=" + shot, "--window-size=1280,1400", "file://" + page], d)
        check(os.path.getsize(shot) > 10000, "a screenshot at %s" % shot)
        shutil.copy(page, os.path.join(art, "report.html"))
        print("    screenshot: %s" % shot)


@test
def test_html_empty_file():
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "t.db")
        gen.write_file(db, [])
        page = os.path.join(d, "r.html")
        rc, _, err = run_tool(["report", "--format", "html", "-o", page, db])
        eq(rc, 0, "exit code: %s" % err)
        root = load("file://" + page, d)
        eq(find(root, "body")[0]["attrs"].get("data-ready"), "1", "script ran")
        eq(len(find(root, "tr", cls="group")), 0, "no rows")
        check(find(root, "p", id="no-errors"), "says no statement failed")


if __name__ == "__main__":
    main()
