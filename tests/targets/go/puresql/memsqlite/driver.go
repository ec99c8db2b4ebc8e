// Package sqlite (driver.go) — a small in-memory database/sql driver in
// pure Go, for tests: a stand-in for modernc.org/sqlite (SQLite translated
// to Go, whose source cannot be fetched here). Registered as "memsqlite".
// It understands a tiny SQL subset and fails the way SQLite does, with an
// error type shaped like modernc's (*sqlite.Error{msg, code}):
//   CREATE TABLE t(c1 [PRIMARY KEY], c2, ...)
//   INSERT INTO t(c1, c2, ...) VALUES (?|literal, ...)   UNIQUE on the key
//   SELECT * FROM t [WHERE c = ?]                         rows in insert order
//   SELECT sleep(MS)                                      one row, after MS ms
//   SELECT deep(N)                                        recurses N frames (the stack moves)
//   SELECT panic()                                        panics inside the call
//   SELECT wait()                                         one row, once Release lets it go
// Anything else: `near "WORD": syntax error` (code 1).
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Waiting counts the calls blocked inside SELECT wait(); Release(n) lets n
// of them go (a test holds many calls in flight at once).
var (
	Waiting int64
	gate    = make(chan struct{})
)

// Release lets n calls blocked in SELECT wait() return.
func Release(n int) {
	for i := 0; i < n; i++ {
		gate <- struct{}{}
	}
}

// Error is the driver's error, as modernc's: a message and a result code.
type Error struct {
	msg  string
	code int
}

func (e *Error) Error() string { return e.msg }

// Code is the SQLite-style result code.
func (e *Error) Code() int { return e.code }

type table struct {
	cols []string
	key  int // index of the PRIMARY KEY column, -1 none
	rows [][]driver.Value
	keys map[string]bool
}

type store struct {
	mu     sync.Mutex
	tables map[string]*table
}

var stores = struct {
	sync.Mutex
	m map[string]*store
}{m: map[string]*store{}}

type drv struct{}

func (drv) Open(name string) (driver.Conn, error) {
	stores.Lock()
	defer stores.Unlock()
	s := stores.m[name]
	if s == nil {
		s = &store{tables: map[string]*table{}}
		stores.m[name] = s
	}
	return &conn{s: s}, nil
}

func init() { sql.Register("memsqlite", drv{}) }

type conn struct{ s *store }

func (c *conn) Prepare(q string) (driver.Stmt, error) {
	st, err := parse(q)
	if err != nil {
		return nil, err
	}
	st.c = c
	return st, nil
}
func (c *conn) Close() error              { return nil }
func (c *conn) Begin() (driver.Tx, error) { return tx{}, nil }

type tx struct{}

func (tx) Commit() error   { return nil }
func (tx) Rollback() error { return nil }

type stmt struct {
	c     *conn
	kind  string // create, insert, select, sleep
	tname string
	cols  []string
	vals  []string // insert: literal or "?"
	where string   // select: column compared with the one parameter
	key   int
	ms    int
	nargs int
}

func syntaxErr(word string) error {
	return &Error{msg: fmt.Sprintf("near \"%s\": syntax error", word), code: 1}
}

func words(q string) []string {
	f := strings.FieldsFunc(q, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == ',' })
	var out []string
	for _, w := range f {
		for strings.HasPrefix(w, "(") {
			w = w[1:]
		}
		w = strings.TrimRight(w, ");")
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func parse(q string) (*stmt, error) {
	w := words(q)
	if len(w) == 0 {
		return nil, &Error{msg: "not an error", code: 21}
	}
	switch strings.ToUpper(w[0]) {
	case "CREATE":
		if len(w) < 4 || strings.ToUpper(w[1]) != "TABLE" {
			return nil, syntaxErr(w[len(w)-1])
		}
		name := w[2]
		if i := strings.IndexByte(name, '('); i >= 0 {
			w = append([]string{w[0], w[1], name[:i], name[i+1:]}, w[3:]...)
			name = name[:i]
		}
		st := &stmt{kind: "create", tname: name, key: -1}
		for _, c := range w[3:] {
			switch strings.ToUpper(c) {
			case "PRIMARY", "INTEGER", "TEXT":
			case "KEY":
				st.key = len(st.cols) - 1
			default:
				st.cols = append(st.cols, c)
			}
		}
		return st, nil
	case "INSERT":
		// INSERT INTO t(c1 c2) VALUES (v1 v2)
		if len(w) < 4 || strings.ToUpper(w[1]) != "INTO" {
			return nil, syntaxErr(w[len(w)-1])
		}
		name := w[2]
		st := &stmt{kind: "insert"}
		rest := w[3:]
		if i := strings.IndexByte(name, '('); i >= 0 {
			rest = append([]string{name[i+1:]}, rest...)
			name = name[:i]
		}
		st.tname = name
		i := 0
		for ; i < len(rest) && strings.ToUpper(rest[i]) != "VALUES"; i++ {
			st.cols = append(st.cols, rest[i])
		}
		if i == len(rest) {
			return nil, syntaxErr(rest[len(rest)-1])
		}
		st.vals = rest[i+1:]
		if len(st.vals) != len(st.cols) {
			return nil, &Error{msg: fmt.Sprintf("%d values for %d columns", len(st.vals), len(st.cols)), code: 1}
		}
		for _, v := range st.vals {
			if v == "?" {
				st.nargs++
			}
		}
		return st, nil
	case "SELECT":
		if len(w) >= 2 && strings.HasPrefix(strings.ToLower(w[1]), "deep(") {
			n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(w[1]), "deep("))
			if err != nil {
				return nil, syntaxErr(w[1])
			}
			return &stmt{kind: "deep", ms: n}, nil
		}
		if len(w) >= 2 && strings.ToLower(w[1]) == "wait(" {
			return &stmt{kind: "wait"}, nil
		}
		if len(w) >= 2 && strings.ToLower(w[1]) == "panic(" {
			return &stmt{kind: "panic"}, nil
		}
		if len(w) >= 2 && strings.HasPrefix(strings.ToLower(w[1]), "sleep") {
			ms, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(w[1]), "sleep("))
			if err != nil {
				return nil, syntaxErr(w[1])
			}
			return &stmt{kind: "sleep", ms: ms}, nil
		}
		if len(w) < 4 || strings.ToUpper(w[2]) != "FROM" {
			return nil, syntaxErr(w[len(w)-1])
		}
		st := &stmt{kind: "select", tname: w[3]}
		if len(w) >= 8 && strings.ToUpper(w[4]) == "WHERE" && w[6] == "=" && w[7] == "?" {
			st.where = w[5]
			st.nargs = 1
		} else if len(w) > 4 {
			return nil, syntaxErr(w[4])
		}
		return st, nil
	}
	return nil, syntaxErr(w[0])
}

func (s *stmt) Close() error  { return nil }
func (s *stmt) NumInput() int { return s.nargs }

func key(v driver.Value) string { return fmt.Sprint(v) }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	if s.kind != "create" && s.kind != "insert" {
		// a query run with Exec: its rows are dropped
		rows, err := s.Query(args)
		if err != nil {
			return nil, err
		}
		rows.Close()
		return driver.RowsAffected(0), nil
	}
	st := s.c.s
	st.mu.Lock()
	defer st.mu.Unlock()
	switch s.kind {
	case "create":
		if st.tables[s.tname] != nil {
			return nil, &Error{msg: "table " + s.tname + " already exists", code: 1}
		}
		st.tables[s.tname] = &table{cols: s.cols, key: s.key, keys: map[string]bool{}}
		return driver.RowsAffected(0), nil
	case "insert":
		t := st.tables[s.tname]
		if t == nil {
			return nil, &Error{msg: "no such table: " + s.tname, code: 1}
		}
		row := make([]driver.Value, len(t.cols))
		a := 0
		for i, c := range s.cols {
			ci := -1
			for j, tc := range t.cols {
				if tc == c {
					ci = j
				}
			}
			if ci < 0 {
				return nil, &Error{msg: "table " + s.tname + " has no column named " + c, code: 1}
			}
			if s.vals[i] == "?" {
				row[ci] = args[a]
				a++
			} else if n, err := strconv.ParseInt(s.vals[i], 10, 64); err == nil {
				row[ci] = n
			} else {
				row[ci] = strings.Trim(s.vals[i], "'")
			}
		}
		if t.key >= 0 {
			k := key(row[t.key])
			if t.keys[k] {
				return nil, &Error{msg: "UNIQUE constraint failed: " + s.tname + "." + t.cols[t.key], code: 2067}
			}
			t.keys[k] = true
		}
		t.rows = append(t.rows, row)
		return driver.RowsAffected(1), nil
	}
	return driver.RowsAffected(0), nil
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	switch s.kind {
	case "sleep":
		time.Sleep(time.Duration(s.ms) * time.Millisecond)
		return &rows{cols: []string{"sleep"}, data: [][]driver.Value{{int64(s.ms)}}}, nil
	case "wait":
		atomic.AddInt64(&Waiting, 1)
		<-gate
		atomic.AddInt64(&Waiting, -1)
		return &rows{cols: []string{"wait"}, data: [][]driver.Value{{int64(1)}}}, nil
	case "panic":
		// A panic through database/sql's call: its return never runs.
		panic("memsqlite: panic() called")
	case "deep":
		// Recurses inside the call: the goroutine's stack grows (is
		// copied elsewhere) between the call's entry and its return.
		return &rows{cols: []string{"deep"}, data: [][]driver.Value{{recurse(s.ms)}}}, nil
	case "select":
		st := s.c.s
		st.mu.Lock()
		defer st.mu.Unlock()
		t := st.tables[s.tname]
		if t == nil {
			return nil, &Error{msg: "no such table: " + s.tname, code: 1}
		}
		r := &rows{cols: t.cols}
		wi := -1
		for j, c := range t.cols {
			if c == s.where {
				wi = j
			}
		}
		if s.where != "" && wi < 0 {
			return nil, &Error{msg: "no such column: " + s.where, code: 1}
		}
		for _, row := range t.rows {
			if wi >= 0 && key(row[wi]) != key(args[0]) {
				continue
			}
			r.data = append(r.data, append([]driver.Value(nil), row...))
		}
		return r, nil
	}
	if _, err := s.Exec(args); err != nil {
		return nil, err
	}
	return &rows{}, nil
}

// QueryContext lets database/sql pass the context through (and keeps the
// driver on the Context interfaces as modern drivers are).
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	v := make([]driver.Value, len(args))
	for i, a := range args {
		v[i] = a.Value
	}
	return s.Query(v)
}

//go:noinline
func recurse(n int) int64 {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int64(pad[0])
	}
	return recurse(n-1) + int64(pad[n%256]&1)
}

type rows struct {
	cols []string
	data [][]driver.Value
	i    int
}

func (r *rows) Columns() []string { return r.cols }
func (r *rows) Close() error      { return nil }
func (r *rows) Next(dest []driver.Value) error {
	if r.i >= len(r.data) {
		return io.EOF
	}
	copy(dest, r.data[r.i])
	r.i++
	return nil
}
