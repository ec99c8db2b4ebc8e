#!/bin/sh
# go_releases.sh — fetches real release builds of Go programs, one per Go
# minor release, from npm packages that ship a prebuilt linux-x64 Go CLI
# (esbuild, lefthook), into DIR, once. test_go_releases (tests/unit/) reads
# them with user/find/gosym.c. The versions are pinned: the Go release each
# was built with (its build info) is what the test expects.
#   tests/go_releases.sh DIR
# Prints one line per executable: "NAME PATH", NAME from the table below.
# Exit status: 0 when all are there; 77 when npm is missing or the npm
# registry cannot be reached (the caller skips, or fails in CI); 1 when a
# fetch failed (npm's last lines on stderr).
set -u
dir=$1
# NAME (the Go release)  PACKAGE@VERSION  FILE in the package
table='go1.18 esbuild-linux-64@0.14.39 bin/esbuild
go1.19 @esbuild/linux-x64@0.15.18 bin/esbuild
go1.20 @esbuild/linux-x64@0.18.20 bin/esbuild
go1.21 lefthook-linux-x64@1.5.7 bin/lefthook
go1.22 @esbuild/linux-x64@0.23.1 bin/esbuild
go1.23 @esbuild/linux-x64@0.24.2 bin/esbuild
go1.24 lefthook-linux-x64@1.11.16 bin/lefthook
go1.25 lefthook-linux-x64@2.0.16 bin/lefthook
go1.26 lefthook-linux-x64@2.1.17 bin/lefthook
go1.27 lefthook-linux-x64@2.2.2 bin/lefthook
go1.25-nobuildinfo @esbuild/linux-x64@0.27.7 bin/esbuild'

echo "$table" | exec "$(dirname "$0")/npm_pack.sh" "$dir"
