#!/bin/sh
# npm_install.sh — installs one npm package for the tests into DIR, once,
# and checks that it provides FILE (a path under DIR). The callers
# (better_sqlite3.sh, otlp_proto.sh) name the package and what it must
# provide; npm_config_* variables in the environment reach npm.
#   tests/npm_install.sh DIR SPEC FILE TIMEOUT_SECONDS
# Exit status: 0 when FILE exists (now or from an earlier run); 77 when
# node/npm are missing or the npm registry cannot be reached (the caller
# skips); 1 when the install failed (npm's last lines on stderr).
set -u
dir=$1 spec=$2 file=$3 limit=$4
[ -f "$dir/$file" ] && exit 0
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
if ! timeout "$limit" npm install --no-audit --no-fund "$spec" >npm.log 2>&1; then
	tail -n 20 npm.log >&2
	exit 1
fi
[ -f "$file" ] || { echo "npm install of $spec did not provide $dir/$file" >&2; exit 1; }
exit 0
