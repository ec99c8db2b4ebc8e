#!/bin/sh
# better_sqlite3.sh — installs the npm package better-sqlite3 into DIR, once:
# a Node addon with its own SQLite (another version and build than the
# tool's libsqlite3), built from source against the installed Node's
# headers so it keeps its symbols. Used by tests/e2e/test_layout_decode.py.
#   tests/better_sqlite3.sh DIR
# Exit status: 0 when DIR/node_modules/better-sqlite3 holds the built addon
# (now or from an earlier run); 77 when node/npm are missing or the npm
# registry cannot be reached (the caller skips); 1 when the install failed.
set -u
dir=$1
mod=$dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node
[ -f "$mod" ] && exit 0
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "node and npm are not installed" >&2
	exit 77
fi
if ! timeout 30 npm ping >/dev/null 2>&1; then
	echo "the npm registry cannot be reached" >&2
	exit 77
fi
mkdir -p "$dir" || exit 1
cd "$dir" || exit 1
[ -f package.json ] || echo '{ "private": true }' > package.json
# nodedir: Debian's Node headers (/usr/include/node), no download of them;
# build_from_source: no prebuilt (stripped) binary from elsewhere.
if ! npm_config_nodedir=/usr npm_config_build_from_source=true timeout 1200 \
	npm install --no-audit --no-fund better-sqlite3@12 >npm.log 2>&1; then
	tail -n 20 npm.log >&2
	exit 1
fi
[ -f "$mod" ] || { echo "npm install did not build $mod" >&2; exit 1; }
exit 0
