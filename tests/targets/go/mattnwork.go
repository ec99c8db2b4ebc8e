// mattnwork.go — test target: a Go service's database/sql workload on
// github.com/mattn/go-sqlite3 (Debian's, which links libsqlite3), built
// statically and dynamically, each stripped and not (tests/module.mk).
// After "ready PID" and a line on stdin it runs, and reports on stdout what
// it ran as the tracer must see it:
//   - a statement prepared before "ready" (before -p attaches), run first;
//   - Exec of DDL and of INSERTs with arguments, an Exec of two statements,
//     a Query of several rows,
//     a prepared Stmt reused, QueryRow;
//   - a constraint failure and a syntax error ("err KEY MESSAGE" lines with
//     the driver's message);
//   - a slow query ("slow MICROSECONDS", as the program timed it);
//   - 8 goroutines querying at once on 8 connections, with
//     runtime.Gosched between calls so that goroutines change threads;
//   - deep recursion with large frames between queries (Go grows and moves
//     the stack);
// then "done" and waits for a line.
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

const workers = 8
const perWorker = 40

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mattnwork:", err)
		os.Exit(1)
	}
}

// deep recurses with a large frame, then queries: the goroutine's stack
// is grown (copied) on the way down.
func deep(db *sql.DB, n int) int {
	var pad [512]byte
	pad[n%512] = byte(n)
	if n == 0 {
		var v int
		must(db.QueryRow("SELECT 7 * 6").Scan(&v))
		return v + int(pad[0])
	}
	return deep(db, n-1) + int(pad[n%512]) - int(byte(n))
}

func main() {
	db, err := sql.Open("sqlite3", os.Args[1]+"?_journal_mode=WAL&_busy_timeout=5000")
	must(err)
	db.SetMaxOpenConns(workers)
	// prepared before a tracer attaches (-p), run first after: its text
	// must come from the statement, no prepare having been seen
	early, err := db.Prepare("SELECT 40 + ?")
	must(err)
	fmt.Printf("ready %d\n", os.Getpid())
	r := bufio.NewReader(os.Stdin)
	r.ReadString('\n')

	for i := 0; i < 2; i++ {
		var v int
		must(early.QueryRow(i).Scan(&v))
	}

	_, err = db.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
	must(err)
	// one Exec of two statements: two entries, each with its own text
	_, err = db.Exec("CREATE TABLE notes(x);\n  INSERT INTO notes VALUES (1)")
	must(err)
	for _, name := range []string{"a", "b", "c"} {
		_, err = db.Exec("INSERT INTO items(name) VALUES (?)", name)
		must(err)
	}
	rows, err := db.Query("SELECT id, name FROM items ORDER BY id")
	must(err)
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	fmt.Println("rows", n)
	st, err := db.Prepare("SELECT name FROM items WHERE id = ?")
	must(err)
	for id := 1; id <= 3; id++ {
		var name string
		must(st.QueryRow(id).Scan(&name))
	}
	st.Close()
	var count int
	must(db.QueryRow("SELECT count(*) FROM items").Scan(&count))

	_, err = db.Exec("INSERT INTO items(name) VALUES ('a')")
	fmt.Println("err constraint", err)
	_, err = db.Exec("SELEC 1")
	fmt.Println("err syntax", err)

	start := time.Now()
	must(db.QueryRow("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) " +
		"SELECT count(*) FROM c").Scan(&count))
	fmt.Println("slow", time.Since(start).Microseconds())

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				var v int
				must(db.QueryRow("SELECT ? + 0", w*1000+i).Scan(&v))
				runtime.Gosched()
			}
		}(w)
	}
	wg.Wait()
	fmt.Println("deep", deep(db, 20000))
	fmt.Println("done")
	r.ReadString('\n')
}
