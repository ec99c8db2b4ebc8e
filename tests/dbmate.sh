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

echo "$table" | exec "$(dirname "$0")/npm_pack.sh" "$dir"
