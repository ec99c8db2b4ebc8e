#!/bin/sh
# npm_pack.sh — fetches files from npm packages without installing them
# (npm pack, then tar), into DIR/NAME/package/, once each. The packages come
# on stdin, one per line: "NAME PACKAGE@VERSION FILE" (FILE: a path in the
# package). Used by go_releases.sh and dbmate.sh.
#   ... | tests/npm_pack.sh DIR
# Prints one line per package: "NAME PATH" (PATH: the file).
# Exit status: 0 when all are there; 77 when npm is missing or the npm
# registry cannot be reached (the caller skips, or fails in CI); 1 when a
# fetch failed (npm's last lines on stderr).
set -u
dir=$1
table=$(cat)
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
