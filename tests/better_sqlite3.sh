#!/bin/sh
# better_sqlite3.sh — installs the npm package better-sqlite3 into DIR, once
# (tests/npm_install.sh: exit 0, 77 to skip, 1): a Node addon with its own
# SQLite (another version and build than the tool's libsqlite3), built from
# source against Debian's Node headers (/usr/include/node, no download) and
# never a prebuilt stripped binary, so it keeps its symbols. Used by
# tests/e2e/test_layout_decode.py and test_late_loads.py.
#   tests/better_sqlite3.sh DIR
export npm_config_nodedir=/usr npm_config_build_from_source=true
exec "$(dirname "$0")/npm_install.sh" "$1" better-sqlite3@12 \
	node_modules/better-sqlite3/build/Release/better_sqlite3.node 1200
