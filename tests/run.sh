#!/usr/bin/env bash
# run.sh — runs every test program (unit binaries, then end-to-end scripts)
# and prints one closing line "N passed, N failed, N skipped" over all of them.
# Each program prints its own PASS/FAIL/SKIP lines and closing line; this
# script adds the closing lines up. Exit status is non-zero on any failure.
#   tests/run.sh [--unit] [NAME-FILTER]
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
unit_only=0
[ "${1:-}" = "--unit" ] && { unit_only=1; shift; }
filter=${1:-}
passed=0 failed=0 skipped=0 broken=()

run_one() {  # $1 = display name, rest = command
	local name=$1; shift
	[ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && return
	echo "=== $name"
	local out rc
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out"
	local line
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL $name: no closing line (exit $rc)"
		failed=$((failed + 1)); broken+=("$name"); return
	fi
	local p f s
	p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
	s=$(sed -nE 's/.*, ([0-9]+) skipped.*/\1/p' <<<"$line"); s=${s:-0}
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
		broken+=("$name")
		[ "$f" -eq 0 ] && failed=$((failed + 1))
	fi
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
if [ $unit_only -eq 0 ]; then
	for t in tests/e2e/test_*.py; do
		[ -f "$t" ] && run_one "$(basename "$t")" python3 "$t"
	done
fi
echo
[ ${#broken[@]} -gt 0 ] && echo "failing: ${broken[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
