/* fuzz_otlp_response.c — libFuzzer target for otlp__read_response()
 * (store/otlp_encode.c), which reads what an OTLP collector answers to a
 * request (an ExportTraceServiceResponse with its partial success): bytes
 * from the network. The first input byte picks the encoding (even:
 * protobuf, through protobuf-c; odd: JSON, through cJSON), the rest is the
 * body. Build and run: `make fuzz-run-otlp`; tests/unit/test_fuzz_corpus.c
 * replays tests/fuzz/corpus/otlp_response/ on every `make unit`.
 * (The Retry-After header is parsed by libcurl, CURLINFO_RETRY_AFTER.)
 *
 * Besides ASan and UBSan, it checks:
 *   - the rejected count is within 0..sent, for several values of sent;
 *   - the message is NUL-terminated inside its buffer, also when that
 *     buffer is tiny, and the same count comes back whatever its size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_encode.h"

static const char *fuzz_otlp_response_check(const uint8_t *data, size_t size)
{
	static const uint64_t sents[] = { 0, 1, 64, UINT64_MAX };
	enum otlp_protocol p;
	char msg[64], tiny[2];
	const char *body;

	if (size == 0)
		return NULL;
	p = data[0] & 1 ? OTLP_JSON : OTLP_PROTOBUF;
	body = (const char *)data + 1;
	size--;
	for (size_t i = 0; i < sizeof(sents) / sizeof(sents[0]); i++) {
		uint64_t r, r2;

		memset(msg, 'x', sizeof(msg));
		memset(tiny, 'x', sizeof(tiny));
		r = otlp__read_response(p, body, size, sents[i], msg, sizeof(msg));
		if (r > sents[i])
			return "more rejected than sent";
		if (!memchr(msg, '\0', sizeof(msg)))
			return "message not terminated";
		r2 = otlp__read_response(p, body, size, sents[i], tiny, sizeof(tiny));
		if (r2 != r)
			return "the count depends on the message buffer";
		if (!memchr(tiny, '\0', sizeof(tiny)))
			return "short message not terminated";
	}
	return NULL;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_otlp_response_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_otlp_response: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
