// otlp_decode.js — decodes OTLP/HTTP trace requests with OpenTelemetry's own
// generated protobuf code (@opentelemetry/otlp-transformer's protobufjs
// root, installed by tests/otlp_proto.sh; NODE_PATH points at it), for the
// fake collector of tests/e2e/test_otlp.py. Never uses our .proto.
//
// One JSON request per line on stdin, one JSON answer per line on stdout:
//   {"op":"decode","enc":"pb"|"json","body":BASE64}
//     -> {"ok":true,"req":ExportTraceServiceRequest as an object (ids hex,
//        64-bit integers as strings)} or {"ok":false,"error":"..."}
//   {"op":"response","enc":"pb"|"json","rejected":N,"message":"..."}
//     -> {"ok":true,"body":BASE64}: an ExportTraceServiceResponse whose
//        partial_success names N rejected spans
// Malformed input is refused: protobuf that does not decode, that decodes
// with bytes left unaccounted for (unknown fields: re-encoding the decoded
// message must give as many bytes), or fails verify(); JSON with keys that
// are not OTLP's lowerCamelCase field names, ids that are not hex of the
// right length, or that fails verify() once converted.
'use strict';
const readline = require('readline');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const P = root.opentelemetry.proto;
const Req = P.collector.trace.v1.ExportTraceServiceRequest;
const Resp = P.collector.trace.v1.ExportTraceServiceResponse;

// message class -> { field: child class } for the nested messages
const children = new Map([
	[Req, { resourceSpans: P.trace.v1.ResourceSpans }],
	[P.trace.v1.ResourceSpans, { resource: P.resource.v1.Resource, scopeSpans: P.trace.v1.ScopeSpans }],
	[P.trace.v1.ScopeSpans, { scope: P.common.v1.InstrumentationScope, spans: P.trace.v1.Span }],
	[P.trace.v1.Span, { attributes: P.common.v1.KeyValue, status: P.trace.v1.Status,
		events: P.trace.v1.Span.Event, links: P.trace.v1.Span.Link }],
	[P.resource.v1.Resource, { attributes: P.common.v1.KeyValue }],
	[P.common.v1.InstrumentationScope, { attributes: P.common.v1.KeyValue }],
	[P.common.v1.KeyValue, { value: P.common.v1.AnyValue }],
]);
const idLen = { traceId: 16, spanId: 8, parentSpanId: 8 };

// OTLP JSON -> protobufjs plain object: checks keys, turns hex ids into bytes
function fromOtlpJson(cls, obj, path) {
	if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
		throw new Error(path + ': not an object');
	const out = {};
	for (const k of Object.keys(obj)) {
		if (!Object.prototype.hasOwnProperty.call(cls.prototype, k))
			throw new Error(path + ': unknown key ' + JSON.stringify(k));
		const v = obj[k];
		const child = (children.get(cls) || {})[k];
		if (k in idLen && cls === P.trace.v1.Span) {
			if (typeof v !== 'string' || !new RegExp('^[0-9a-f]{' + 2 * idLen[k] + '}$').test(v))
				throw new Error(path + '.' + k + ': not ' + idLen[k] + ' bytes of lowercase hex: ' + v);
			out[k] = Buffer.from(v, 'hex');
		} else if (child && Array.isArray(v)) {
			out[k] = v.map((x, i) => fromOtlpJson(child, x, path + '.' + k + '[' + i + ']'));
		} else if (child) {
			out[k] = fromOtlpJson(child, v, path + '.' + k);
		} else {
			out[k] = v;
		}
	}
	return out;
}

function toPlain(msg) {
	const o = Req.toObject(msg, { longs: String, bytes: String, defaults: false, oneofs: false });
	// bytes as hex
	for (const rs of o.resourceSpans || [])
		for (const ss of rs.scopeSpans || [])
			for (const s of ss.spans || [])
				for (const k of Object.keys(idLen))
					if (typeof s[k] === 'string')
						s[k] = Buffer.from(s[k], 'base64').toString('hex');
	return o;
}

function decode(req) {
	const body = Buffer.from(req.body, 'base64');
	let msg;
	if (req.enc === 'pb') {
		msg = Req.decode(body);
		const again = Req.encode(msg).finish();
		if (again.length !== body.length)
			throw new Error('protobuf body has ' + (body.length - again.length) +
				' bytes that are no field of ExportTraceServiceRequest');
	} else {
		const obj = JSON.parse(body.toString('utf8'));
		msg = Req.fromObject(fromOtlpJson(Req, obj, 'request'));
	}
	const err = Req.verify(msg);
	if (err)
		throw new Error('verify: ' + err);
	return toPlain(msg);
}

function response(req) {
	const obj = { partialSuccess: { rejectedSpans: req.rejected, errorMessage: req.message } };
	if (req.enc === 'pb')
		return Buffer.from(Resp.encode(Resp.fromObject(obj)).finish()).toString('base64');
	return Buffer.from(JSON.stringify({ partialSuccess: { rejectedSpans: String(req.rejected),
		errorMessage: req.message } })).toString('base64');
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
	let ans;
	try {
		const req = JSON.parse(line);
		if (req.op === 'decode')
			ans = { ok: true, req: decode(req) };
		else if (req.op === 'response')
			ans = { ok: true, body: response(req) };
		else
			ans = { ok: false, error: 'unknown op' };
	} catch (e) {
		ans = { ok: false, error: String(e && e.message || e) };
	}
	process.stdout.write(JSON.stringify(ans) + '\n');
});
