/* log_sink.c — the log printer sink (see log_sink.h): formats a batch into
 * one buffer and writes it with a single fwrite. A write error (closed pipe)
 * stops printing quietly; entries still go to the other consumers. */
#include "log_sink.h"

#include <errno.h>
#include <stdlib.h>

#include "strbuf.h"

struct log_sink {
	struct log_sink_opts o;
	struct strbuf buf;
	int broken;
};

static int log_sink_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct log_sink *s = ctx;
	size_t i;

	if (s->broken)
		return 0;
	strbuf__reset(&s->buf);
	for (i = 0; i < n; i++)
		slog__format_entry(&s->buf, s->o.format, batch[i], s->o.slow_us);
	if (s->buf.len && (fwrite(s->buf.p, 1, s->buf.len, s->o.out) != s->buf.len ||
			   fflush(s->o.out) != 0))
		s->broken = 1;
	return 0;
}

static void log_sink_close(void *ctx)
{
	struct log_sink *s = ctx;

	strbuf__free(&s->buf);
	free(s);
}

static const struct sink_ops log_sink_ops = {
	.name = "log",
	.write = log_sink_write,
	.close = log_sink_close,
};

struct recorder *log_sink__open(const struct log_sink_opts *o, const struct batch_opts *b)
{
	struct log_sink *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->o = *o;
	return recorder__new(b, &log_sink_ops, s);
}
