#!/bin/sh
# sqlite_no_api_table.sh — a libsqlite3.a that is not the system's and has no
# extension API table: better-sqlite3's amalgamation (tests/better_sqlite3.sh,
# SQLite 3.5x) compiled with SQLITE_OMIT_LOAD_EXTENSION, as a release Go
# build with mattn/go-sqlite3 and -tags sqlite_omit_load_extension carries
# it. Made once into BUILD/targets/cgo-nolx/libsqlite3.a (Go programs link
# it with CGO_LDFLAGS=-LBUILD/targets/cgo-nolx). Used by
# tests/e2e/test_go_cgo.py and bench/module.mk.
#   tests/sqlite_no_api_table.sh BUILD
# Exit status: 0, 77 when the npm registry cannot be reached, 1 on failure.
set -u
build=$1
dir=$build/targets/cgo-nolx
[ -f "$dir/libsqlite3.a" ] && exit 0
"$(dirname "$0")/better_sqlite3.sh" "$build/npm" || exit $?
src=$build/npm/node_modules/better-sqlite3/deps/sqlite3/sqlite3.c
mkdir -p "$dir" || exit 1
gcc -O2 -fPIC -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=1 -c "$src" -o "$dir/sqlite3.o" || exit 1
ar rcs "$dir/libsqlite3.a.tmp" "$dir/sqlite3.o" && mv "$dir/libsqlite3.a.tmp" "$dir/libsqlite3.a" || exit 1
rm -f "$dir/sqlite3.o"
exit 0
