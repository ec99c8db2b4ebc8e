// goapp.go — test target: a Go program using github.com/mattn/go-sqlite3,
// built (tests/module.mk) with SQLite linked statically into the executable.
// Protocol as the C targets: prints "ready PID", waits for a line, runs an
// INSERT (Exec) and a SELECT (Query), prints "done N", waits for a line.
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"

	_ "github.com/mattn/go-sqlite3"
)

func main() {
	db, err := sql.Open("sqlite3", os.Args[1])
	if err != nil { panic(err) }
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS g(id INTEGER PRIMARY KEY, v TEXT)"); err != nil { panic(err) }
	fmt.Printf("ready %d\n", os.Getpid())
	r := bufio.NewReader(os.Stdin)
	r.ReadString('\n')
	if _, err := db.Exec("INSERT INTO g(v) VALUES (?)", "go-value"); err != nil { panic(err) }
	var n int
	if err := db.QueryRow("SELECT count(*) FROM g WHERE v = ?", "go-value").Scan(&n); err != nil { panic(err) }
	fmt.Println("done", n)
	r.ReadString('\n')
}
