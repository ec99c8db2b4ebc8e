#!/bin/sh
# otlp_proto.sh — installs OpenTelemetry's own generated protobuf code for
# OTLP into DIR, once: the npm package @opentelemetry/otlp-transformer 0.57
# ships protobufjs code generated from opentelemetry-proto (the collector's
# trace service messages, build/src/generated/root.js). The tests decode
# what sqltrace-bpf sends with it (tests/e2e/otlp_decode.js), never with
# our own .proto. Used by tests/e2e/test_otlp.py.
#   tests/otlp_proto.sh DIR
# Exit status: 0 when DIR/node_modules holds it (now or from an earlier
# run); 77 when node/npm are missing or the npm registry cannot be reached
# (the caller skips); 1 when the install failed.
set -u
dir=$1
gen=$dir/node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js
[ -f "$gen" ] && exit 0
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
# 0.57.x: the last line that ships the protobufjs code generated from the
# .proto files (later versions encode by hand).
if ! timeout 600 npm install --no-audit --no-fund @opentelemetry/otlp-transformer@0.57.2 \
	>npm.log 2>&1; then
	tail -n 20 npm.log >&2
	exit 1
fi
[ -f "$gen" ] || { echo "npm install did not provide $gen" >&2; exit 1; }
exit 0
