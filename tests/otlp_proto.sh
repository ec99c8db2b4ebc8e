#!/bin/sh
# otlp_proto.sh — installs OpenTelemetry's own generated protobuf code for
# OTLP into DIR, once (tests/npm_install.sh: exit 0, 77 to skip, 1): the npm
# package @opentelemetry/otlp-transformer 0.57.2, the last line that ships
# the protobufjs code generated from opentelemetry-proto (later versions
# encode by hand). The tests decode what sqltrace-bpf sends with it
# (tests/e2e/otlp_decode.js), never with our own .proto. Used by
# tests/e2e/test_otlp.py.
#   tests/otlp_proto.sh DIR
exec "$(dirname "$0")/npm_install.sh" "$1" @opentelemetry/otlp-transformer@0.57.2 \
	node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js 600
