// main.go — test target: a Go program using database/sql with a pure-Go
// driver (./memsqlite, no C SQLite anywhere), built stripped and not
// (tests/module.mk). Protocol as the other targets: prints "ready PID",
// waits for a line on stdin, runs its script, prints "done N", waits for a
// line. Its stdout is deterministic (the e2e test compares it traced and
// untraced); what it measured itself (op, SQL, error, µs around each call)
// goes as JSON lines to the file given as argv[1].
//
// The script: Exec, Query with several rows, a prepared Stmt reused,
// QueryRow (DB and Stmt), a transaction, failing statements (constraint,
// syntax, on Exec, Query and Prepare), a slow one, one whose stack grows
// mid-call, 10 goroutines at once (blocking inside calls), a driver panic
// through a call (recovered), and queries between deep recursions.
//
// With "hold N" after the file: instead of the script, N goroutines each
// run SELECT wait() and block inside the call until all N are in flight at
// once; it prints "held N", waits for a line, then lets them go 500 at a
// time and prints "done N".
package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	memsqlite "./memsqlite"
)

type measured struct {
	Op    string `json:"op"`
	Query string `json:"query"`
	Error string `json:"error"`
	Us    int64  `json:"us"`
	Rows  *int   `json:"rows"` // rows read until Close (Query, QueryRow), else null
}

var (
	mu  sync.Mutex
	log []measured
)

func note(op, q string, t0 time.Time, err error) {
	noteRows(op, q, t0, err, -1)
}

// noteRows notes a call whose rows were read (n >= 0) until Close.
func noteRows(op, q string, t0 time.Time, err error, n int) {
	us := time.Since(t0).Microseconds()
	e := ""
	if err != nil {
		e = err.Error()
	}
	var rows *int
	if n >= 0 {
		rows = &n
	}
	mu.Lock()
	log = append(log, measured{op, q, e, us, rows})
	mu.Unlock()
}

func exec(db *sql.DB, q string, args ...interface{}) error {
	t0 := time.Now()
	_, err := db.Exec(q, args...)
	note("Exec", q, t0, err)
	return err
}

// query runs q and reads every row; the time noted is until the rows are
// closed (what the tracer's Query DurationUs covers when it counts them),
// or until the call returned when it failed.
func query(db *sql.DB, q string, args ...interface{}) (int, error) {
	t0 := time.Now()
	rows, err := db.Query(q, args...)
	if err != nil {
		note("Query", q, t0, err)
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	err = rows.Err()
	rows.Close()
	noteRows("Query", q, t0, nil, n)
	return n, err
}

// queryRow runs q with QueryRow and scans it; the time noted is until Scan
// returned (Scan closes the rows); rows: 1, or 0 when there was none.
func queryRow(r func() *sql.Row, q string) (id int, name string, err error) {
	t0 := time.Now()
	err = r().Scan(&id, &name)
	n := 1
	if err == sql.ErrNoRows {
		n = 0
	}
	noteRows("Query", q, t0, nil, n)
	return
}

//go:noinline
func deep(db *sql.DB, n int) int {
	var pad [512]byte
	pad[n%512] = 1
	if n == 0 {
		c, _ := query(db, "SELECT * FROM users WHERE id = ?", 1)
		return c
	}
	return deep(db, n-1) + int(pad[0]&0)
}

// panicking runs a statement whose driver panics, and recovers: that call
// never returns (not noted: no entry is expected for it); the calls after
// it, deeper in the stack, must still be entries.
func panicking(db *sql.DB) (r interface{}) {
	defer func() { r = recover() }()
	db.Query("SELECT panic()")
	return nil
}

func must(err error) {
	if err != nil {
		fmt.Println("unexpected error:", err)
		os.Exit(1)
	}
}

func main() {
	out, err := os.Create(os.Args[1])
	must(err)
	db, err := sql.Open("memsqlite", "test")
	must(err)
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewReader(os.Stdin)
	in.ReadString('\n')
	if len(os.Args) == 4 && os.Args[2] == "hold" {
		n, err := strconv.Atoi(os.Args[3])
		must(err)
		hold(db, n, in)
	} else {
		script(db)
	}
	enc := json.NewEncoder(out)
	for _, m := range log {
		must(enc.Encode(m))
	}
	must(out.Close())
	in.ReadString('\n')
}

// hold makes n calls in flight at once (each blocked inside the driver),
// then, after a line on stdin, lets them return 500 at a time.
func hold(db *sql.DB, n int, in *bufio.Reader) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := query(db, "SELECT wait()")
			must(err)
		}()
	}
	for atomic.LoadInt64(&memsqlite.Waiting) < int64(n) {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("held", n)
	in.ReadString('\n')
	for left := n; left > 0; left -= 500 {
		if left < 500 {
			memsqlite.Release(left)
		} else {
			memsqlite.Release(500)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	fmt.Println("done", n)
}

func script(db *sql.DB) {
	must(exec(db, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)"))
	for i := 1; i <= 3; i++ {
		must(exec(db, "INSERT INTO users(id, name) VALUES (?, ?)", i, fmt.Sprint("user", i)))
	}
	n, err := query(db, "SELECT * FROM users")
	must(err)
	fmt.Println("rows", n)

	ins, err := db.Prepare("INSERT INTO users(id, name) VALUES (?, ?)")
	must(err)
	for i := 10; i < 15; i++ {
		t0 := time.Now()
		_, err := ins.Exec(i, "prepared")
		note("Exec", "INSERT INTO users(id, name) VALUES (?, ?)", t0, err)
		must(err)
	}
	sel, err := db.Prepare("SELECT * FROM users WHERE id = ?")
	must(err)
	for i := 10; i < 13; i++ {
		id, name, err := queryRow(func() *sql.Row { return sel.QueryRow(i) }, "SELECT * FROM users WHERE id = ?")
		must(err)
		fmt.Println("stmt row", id, name)
	}
	{
		id, name, err := queryRow(func() *sql.Row { return db.QueryRow("SELECT * FROM users WHERE id = ?", 2) },
			"SELECT * FROM users WHERE id = ?")
		must(err)
		fmt.Println("row", id, name)
		_, _, err = queryRow(func() *sql.Row { return db.QueryRow("SELECT * FROM users WHERE id = ?", 999) },
			"SELECT * FROM users WHERE id = ?")
		fmt.Println("no row:", err)
	}
	tx, err := db.Begin()
	must(err)
	t0 := time.Now()
	_, err = tx.Exec("INSERT INTO users(id, name) VALUES (?, ?)", 20, "tx")
	note("Exec", "INSERT INTO users(id, name) VALUES (?, ?)", t0, err)
	must(err)
	must(tx.Commit())

	fmt.Println("dup:", exec(db, "INSERT INTO users(id, name) VALUES (?, ?)", 1, "again"))
	fmt.Println("syntax:", exec(db, "SELEC * FROM users"))
	_, err = query(db, "SELECT * FROM nowhere")
	fmt.Println("query:", err)
	t0 = time.Now()
	_, err = ins.Exec(10, "dup")
	note("Exec", "INSERT INTO users(id, name) VALUES (?, ?)", t0, err)
	fmt.Println("stmt dup:", err)

	t0 = time.Now()
	_, err = db.Prepare("SELECT * FROM users WHERE")
	note("Query", "SELECT * FROM users WHERE", t0, err)
	fmt.Println("prepare:", err)

	// Rows never closed: the entry still comes (at the end, with no row
	// count), timed until the call returned.
	t0 = time.Now()
	leaked, err := db.Query("SELECT * FROM users WHERE id = ?", 3)
	note("Query", "SELECT * FROM users WHERE id = ?", t0, err)
	must(err)
	leaked.Next()
	n, err = query(db, "SELECT sleep(150)")
	must(err)
	fmt.Println("slow rows", n)
	n, err = query(db, "SELECT deep(20000)")
	must(err)
	fmt.Println("deep rows", n)

	var wg sync.WaitGroup
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				must(exec(db, "INSERT INTO users(id, name) VALUES (?, ?)", 1000+g*100+i, "g"))
				if i%5 == 0 {
					// blocks inside the call: the goroutine resumes on
					// whichever thread is free
					_, err := query(db, "SELECT sleep(2)")
					must(err)
					runtime.Gosched()
				}
				_, err := query(db, "SELECT * FROM users WHERE id = ?", 1000+g*100+i)
				must(err)
			}
		}(g)
	}
	wg.Wait()
	fmt.Println("goroutines done")
	fmt.Println("panic:", panicking(db))
	for i := 0; i < 3; i++ {
		fmt.Println("deep", deep(db, 3000))
	}
	n, err = query(db, "SELECT * FROM users")
	must(err)
	fmt.Println("done", n)
}
