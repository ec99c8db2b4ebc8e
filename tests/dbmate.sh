#!/bin/sh
# dbmate.sh — fetches real release builds of dbmate (a Go database-migration
# CLI on mattn/go-sqlite3, shipped stripped and static, built with
# sqlite_omit_load_extension: no symbol table, no extension API table) from
# the npm package @dbmate/linux-x64 into DIR, once: one version per Go minor
# release dbmate was built with. test_go_release_builds (tests/e2e/) traces
# them. The versions are pinned: the Go release and the mattn/go-sqlite3
# version in each one's build info are what the test expects.
#   tests/dbmate.sh DIR
# Prints one line per executable: "NAME PATH", NAME from the table below.
# Exit status: 0 when all are there; 77 when npm is missing or the npm
# registry cannot be reached (the caller skips, or fails in CI); 1 when a
# fetch failed (npm's last lines on stderr).
set -u
dir=$1
# NAME (Go release, dbmate version)  PACKAGE@VERSION  FILE in the package
# No dbmate release on npm was built with go1.22 (2.20.0 has go1.21.13,
# 2.21.0 go1.23.0).
table='go1.20-2.0.1 @dbmate/linux-x64@2.0.1 bin/dbmate
go1.21-2.20.0 @dbmate/linux-x64@2.20.0 bin/dbmate
go1.23-2.24.0 @dbmate/linux-x64@2.24.0 bin/dbmate
go1.24-2.28.0 @dbmate/linux-x64@2.28.0 bin/dbmate
go1.25-2.29.5 @dbmate/linux-x64@2.29.5 bin/dbmate
go1.26-2.32.0 @dbmate/linux-x64@2.32.0 bin/dbmate
go1.27-2.36.0 @dbmate/linux-x64@2.36.0 bin/dbmate'

missing=$(echo "$table" | while read -r name spec file; do
	[ -f "$dir/$name/package/$file" ] || echo "$spec"
done)
if [ -n "$missing" ]; then
	if ! command -v npm >/dev/null; then
		echo "npm is not installed" >&2
		exit 77
	fi
	if ! timeout 30 npm ping >/dev/null 2>&1; then
		echo "the npm registry cannot be reached" >&2
		exit 77
	fi
fi
echo "$table" | while read -r name spec file; do
	d="$dir/$name"
	if [ ! -f "$d/package/$file" ]; then
		rm -rf "$d" && mkdir -p "$d" || exit 1
		if ! (cd "$d" && timeout 300 npm pack --silent "$spec" >npm.log 2>&1 &&
			tar xzf ./*.tgz && rm -f ./*.tgz); then
			tail -n 20 "$d/npm.log" >&2
			echo "fetching $spec failed" >&2
			exit 1
		fi
		[ -f "$d/package/$file" ] || { echo "$spec did not provide $file" >&2; exit 1; }
	fi
	echo "$name $d/package/$file"
done
