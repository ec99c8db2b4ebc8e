"""demo_app.py — a small program using SQLite the way a service does, for
`make demo`: an orders table, a statement cache (reused statements), a slow
query, a failing insert. Runs for a few seconds, then exits."""
import os
import sqlite3
import sys
import time

path = sys.argv[1] if len(sys.argv) > 1 else "demo-app.db"
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 4
con = sqlite3.connect(path, isolation_level=None)
con.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, customer TEXT, total REAL)")
print("ready %d" % os.getpid(), flush=True)
sys.stdin.readline()
end = time.time() + seconds
i = 0
while time.time() < end:
    i += 1
    con.execute("INSERT INTO orders(customer, total) VALUES (?, ?)", ("customer-%d" % (i % 7), i * 1.5))
    con.execute("SELECT count(*), sum(total) FROM orders WHERE customer = ?", ("customer-%d" % (i % 7),)).fetchone()
    if i % 20 == 0:
        # A deliberately slow query: a recursive CTE counting to 1M.
        con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
                    "SELECT max(x) FROM c").fetchone()
    if i % 25 == 0:
        try:
            con.execute("INSERT INTO orders(id, customer, total) VALUES (1, 'dup', 0)")
        except sqlite3.IntegrityError:
            pass
    time.sleep(0.02)
print("done", flush=True)
