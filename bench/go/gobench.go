// gobench.go — the Go workload of `make bench` (bench/go_bench.py): a
// database/sql loop on one connection, prepared or not, through the driver
// named on the command line. Prints "ready PID", waits for a line, runs N
// calls of `SELECT ? + 0` (QueryRow + Scan), prints "ns_per_op X" by its
// own clock, then waits for a line.
//   gobench DRIVER DSN prepared|unprepared N
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: gobench DRIVER DSN prepared|unprepared N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[4])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "gobench: bad N")
		os.Exit(2)
	}
	db, err := sql.Open(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
	db.SetMaxOpenConns(1)
	var v int
	if err := db.QueryRow("SELECT 1").Scan(&v); err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
	st, err := db.Prepare("SELECT ? + 0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	r := bufio.NewReader(os.Stdin)
	r.ReadString('\n')
	prepared := os.Args[3] == "prepared"
	start := time.Now()
	for i := 0; i < n; i++ {
		if prepared {
			err = st.QueryRow(i).Scan(&v)
		} else {
			err = db.QueryRow("SELECT ? + 0", i).Scan(&v)
		}
		if err != nil || v != i {
			fmt.Fprintln(os.Stderr, "gobench: wrong result", err, v, i)
			os.Exit(1)
		}
	}
	fmt.Printf("ns_per_op %d\n", time.Since(start).Nanoseconds()/int64(n))
	r.ReadString('\n')
}
