"""tracegen.py — trace files with known entries for the report tests:
statement shapes (each one fingerprint, written with varying literals, list
lengths, comments, spacing and keyword case), random durations, errors,
rows and extra columns, written in the local store's schema or with only
the Go tracer's columns; and the expected groups computed from the entries
themselves (nearest-rank percentiles), independently of the tool."""
import math
import random
import sqlite3

SEED_DDL = ("CREATE TABLE sql_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT, "
            "op TEXT NOT NULL, query TEXT NOT NULL, duration_us INTEGER NOT NULL, error TEXT, "
            "timestamp INTEGER NOT NULL)")
EXTRA_COLS = [("pid", "INTEGER"), ("tid", "INTEGER"), ("process", "TEXT"), ("rows", "INTEGER"),
              ("prepare_us", "INTEGER"), ("query_len", "INTEGER"), ("lib", "TEXT"),
              ("db_file", "TEXT"), ("parent_span_id", "TEXT")]

T0 = 1_764_500_000_000_000  # unix µs


def tp(rng):
    return "/*traceparent='00-%032x-%016x-01'*/" % (rng.getrandbits(128), rng.getrandbits(64))


# Statement shapes: (expected fingerprint, function making one query text).
# Every text a shape makes must land in its group, whatever its literals,
# list lengths, comments, spacing and keyword case.
SHAPES = [
    ("SELECT * FROM users WHERE id = ?",
     lambda r: random.choice(["SELECT * FROM users WHERE id = %d" % r.randint(-5, 10**6),
                              "select *  from users where id = :id",
                              "SELECT * FROM users WHERE id = ? " + tp(r)])),
    ("SELECT name FROM items WHERE id IN (?) AND kind = ?",
     lambda r: "SELECT name FROM items WHERE id IN (%s) AND kind = '%s'" % (
         ", ".join(str(r.randint(0, 99)) for _ in range(r.randint(1, 9))), r.choice(["a", "b''c", "--x"]))),
    ("INSERT INTO orders(id, customer, total) VALUES (?, ?, ?)",
     lambda r: "INSERT INTO orders(id, customer, total) VALUES %s" % ", ".join(
         "(%d, 'c%d', %.2f)" % (r.randint(1, 10**9), r.randint(0, 9), r.random() * 100)
         for _ in range(r.randint(1, 4)))),
    ("UPDATE t1 SET v = v - ?, blob = ? WHERE k = @key",
     None),  # replaced below: parameters keep their own spelling? no: see shape_update
    ("DELETE FROM \"Order Items\" WHERE created < ? -- cleanup",
     None),
]


def shape_update(r):
    return "UPDATE t1 SET v = v - %d, blob = x'%02x' WHERE k = @key" % (r.randint(1, 9), r.randint(0, 255))


def shape_delete(r):
    return "DELETE FROM \"Order Items\" WHERE created < %d -- cleanup %d" % (r.randint(0, 10**12), r.randint(0, 9))


SHAPES[3] = ("UPDATE t1 SET v = v - ?, blob = ? WHERE k = ?", shape_update)
SHAPES[4] = ("DELETE FROM \"Order Items\" WHERE created < ?", shape_delete)
ERRORS = ["UNIQUE constraint failed: orders.id", "database is locked", "near \"x\": syntax error"]


def make_entries(seed, n, with_extras=True):
    """n entries over the shapes; returns a list of dicts with the shape index."""
    rng = random.Random(seed)
    random.seed(seed)
    out = []
    for i in range(n):
        s = rng.randrange(len(SHAPES))
        # shape-dependent scale so that sorting keys differ between groups
        d = int(rng.expovariate(1.0 / (50 * (s + 1) ** 2))) + rng.randint(0, 3)
        err = rng.choice(ERRORS[:s % 3 + 1]) if rng.random() < 0.05 * s else ""
        e = {"shape": s, "query": SHAPES[s][1](rng), "duration_us": d, "error": err,
             "timestamp": T0 + i * 1000 + rng.randint(0, 999), "trace_id": rng.choice(["", "t1", "t2"]),
             "op": "Query" if s < 2 else "Exec"}
        if with_extras:
            e.update(pid=rng.choice([100, 200]), tid=1, process=rng.choice(["app", "worker"]),
                     rows=rng.choice([None, rng.randint(0, 50)]), db_file=rng.choice(["/a.db", "/b.db"]))
        out.append(e)
    return out


def write_file(path, entries, with_extras=True, wal=False):
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute(SEED_DDL)
    cols = ["trace_id", "op", "query", "duration_us", "error", "timestamp"]
    if with_extras:
        for c, t in EXTRA_COLS:
            db.execute("ALTER TABLE sql_traces ADD COLUMN %s %s" % (c, t))
        cols += ["pid", "tid", "process", "rows", "db_file"]
    db.executemany("INSERT INTO sql_traces(%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
                   [[e.get(c) for c in cols] for e in entries])
    db.commit()
    db.close()


def nearest_rank(sorted_v, p):
    return sorted_v[max(1, math.ceil(p / 100 * len(sorted_v))) - 1]


def expected_groups(entries, has_rows=True):
    """Groups computed from what was written, by shape."""
    g = {}
    for e in entries:
        x = g.setdefault(e["shape"], {"d": [], "errs": {}, "rows": 0, "ts": [], "example": e["query"]})
        x["d"].append(e["duration_us"])
        x["ts"].append(e["timestamp"])
        if e["error"]:
            x["errs"][e["error"]] = x["errs"].get(e["error"], 0) + 1
        if e.get("rows") is not None:
            x["rows"] += e["rows"]
    res = {}
    for s, x in g.items():
        d = sorted(x["d"])
        top = None
        if x["errs"]:
            best = max(x["errs"].values())
            # ties: the message seen first
            for e in entries:
                if e["shape"] == s and x["errs"].get(e["error"]) == best:
                    top = e["error"]
                    break
        res[SHAPES[s][0]] = {
            "fingerprint": SHAPES[s][0], "count": len(d), "total_us": sum(d), "mean_us": sum(d) / len(d),
            "p50_us": nearest_rank(d, 50), "p95_us": nearest_rank(d, 95), "p99_us": nearest_rank(d, 99),
            "max_us": d[-1], "errors": sum(x["errs"].values()), "rows": x["rows"] if has_rows else None,
            "example": x["example"], "first_seen": min(x["ts"]), "last_seen": max(x["ts"]),
            "top_error": top,
        }
    return res
