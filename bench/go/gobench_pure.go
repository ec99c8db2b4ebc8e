// gobench_pure.go — the pure-Go twin of gobench.go (bench/go_bench.py): the
// same database/sql loop through the test suite's in-memory pure-Go driver
// (tests/targets/go/puresql/memsqlite, a stand-in for modernc.org/sqlite),
// so that tracing at the database/sql layer is measured. Built with
// CGO_ENABLED=0. Prints "ready PID", waits for a line, runs N calls of
// `SELECT * FROM t WHERE k = ?` (QueryRow + Scan), prints "ns_per_op X",
// waits for a line.
//   gobench_pure memsqlite DSN prepared|unprepared N
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"time"

	_ "../../tests/targets/go/puresql/memsqlite"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gobench_pure:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: gobench_pure DRIVER DSN prepared|unprepared N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[4])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "gobench_pure: bad N")
		os.Exit(2)
	}
	db, err := sql.Open(os.Args[1], os.Args[2])
	if err != nil {
		fail(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t(k PRIMARY KEY, v)"); err != nil {
		fail(err)
	}
	for k := 0; k < 16; k++ {
		if _, err := db.Exec("INSERT INTO t(k, v) VALUES (?, ?)", k, k*2); err != nil {
			fail(err)
		}
	}
	st, err := db.Prepare("SELECT * FROM t WHERE k = ?")
	if err != nil {
		fail(err)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	r := bufio.NewReader(os.Stdin)
	r.ReadString('\n')
	prepared := os.Args[3] == "prepared"
	var k, v int64
	start := time.Now()
	for i := 0; i < n; i++ {
		if prepared {
			err = st.QueryRow(int64(i % 16)).Scan(&k, &v)
		} else {
			err = db.QueryRow("SELECT * FROM t WHERE k = ?", int64(i%16)).Scan(&k, &v)
		}
		if err != nil || v != k*2 {
			fmt.Fprintln(os.Stderr, "gobench_pure: wrong result", err, k, v)
			os.Exit(1)
		}
	}
	fmt.Printf("ns_per_op %d\n", time.Since(start).Nanoseconds()/int64(n))
	r.ReadString('\n')
}
