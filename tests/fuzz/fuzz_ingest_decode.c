/* fuzz_ingest_decode.c — libFuzzer target for the ingest decoder
 * (json__decode_batch, store/json_decode.c), the code that parses what any client
 * POSTs to `sqltrace-bpf ingest`. Build and run: `make fuzz-run` (see
 * store/module.mk); tests/unit/test_fuzz_corpus.c runs the same checks
 * over the corpus on every `make unit`.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it checks:
 *   - the decoder never answers -ENOMEM on a small input: that would mean
 *     the strict pre-check accepted something cJSON refused;
 *   - an accepted batch re-encodes to JSON that decodes to the same
 *     entries (decode . encode . decode == decode).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int entry_eq(const struct st_entry *a, const struct st_entry *b)
{
	return str_eq(a->trace_id, b->trace_id) && str_eq(a->op, b->op) &&
	       str_eq(a->query, b->query) && a->duration_us == b->duration_us &&
	       str_eq(a->error, b->error) && a->timestamp_us == b->timestamp_us &&
	       a->pid == b->pid && a->tid == b->tid && str_eq(a->process, b->process) &&
	       a->rows == b->rows && a->prepare_us == b->prepare_us &&
	       a->query_len == b->query_len && str_eq(a->lib, b->lib) &&
	       str_eq(a->db_file, b->db_file) && str_eq(a->parent_span_id, b->parent_span_id);
}

/* Runs one input through the decoder and the checks above. Returns NULL
 * when all hold, else what failed. */
static const char *fuzz_check_one(const uint8_t *data, size_t size)
{
	struct st_entry **v = NULL, **w = NULL;
	struct json_buf b = { 0 };
	size_t n = 0, m = 0;
	const char *bad = NULL;
	char err[200];
	int rc;

	rc = json__decode_batch((const char *)data, size, &v, &n, err, sizeof(err));
	if (rc == -ENOMEM)
		return "decoder ran out of memory: pre-check and cJSON disagree";
	if (rc == -EINVAL)
		return err[0] ? NULL : "rejected without a reason";
	if (rc)
		return "unexpected error code";
	if (json__encode_batch(&b, v, n, 0) != (long)n)
		bad = "re-encoding failed";
	else if (json__decode_batch(b.p, b.len, &w, &m, err, sizeof(err)))
		bad = "re-encoded batch does not decode";
	else if (m != n)
		bad = "re-encoded batch has another number of entries";
	for (size_t i = 0; !bad && i < n; i++)
		if (!entry_eq(v[i], w[i]))
			bad = "re-encoded entry differs";
	json__free_batch(v, n);
	json__free_batch(w, m);
	json_buf__free(&b);
	return bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_check_one(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_ingest_decode: %s\n", bad);
		abort();
	}
	return 0;
}
