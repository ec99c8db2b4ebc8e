#!/usr/bin/env bash
# demo.sh — `make demo`: starts a small python3 program that uses SQLite,
# traces it with sqltrace-bpf into the default local store (./traces.db),
# then shows what was captured with the sqlite3 shell.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TOOL=$BUILD/sqltrace-bpf
if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root (BPF): run sudo make demo" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkfifo "$work/in"
/usr/bin/python3 tests/demo_app.py "$work/app.db" 4 < "$work/in" > "$work/app.out" &
app=$!
exec 3>"$work/in"
for _ in $(seq 50); do grep -q ready "$work/app.out" 2>/dev/null && break; sleep 0.1; done
echo "demo: tracing python3 (PID $app) for 4 seconds into ./traces.db"
echo "\$ sudo $TOOL -p $app --min-level warn"
"$TOOL" -p "$app" --min-level warn &
tracer=$!
sleep 1
echo go >&3
exec 3>&-
wait "$app" || true
wait "$tracer"
echo
echo "demo: what landed in ./traces.db, grouped by statement fingerprint:"
echo "\$ $TOOL report --limit 5"
"$TOOL" report --limit 5 traces.db
echo
echo "(also: $TOOL report --format html -o report.html; sudo $TOOL top -p PID)"
