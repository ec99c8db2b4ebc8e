/* log_sink.c — the log printer sink (see log_sink.h): formats a batch into
 * one buffer and writes it to the output's descriptor. A reader that stops
 * reading (a paused pager, a full pipe) makes a write wait at most a
 * second: the batch is then kept (the bytes not written yet) and the write
 * fails with -EAGAIN, so the pipeline's retries and backpressure take over,
 * and at close the batcher gives it up after its deadline, counted as lost:
 * a blocked stdout never hangs the tool. A write error (closed pipe) stops
 * printing quietly; entries still go to the other consumers. */
#include "log_sink.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "strbuf.h"

#define WRITE_WAIT_MS 1000

struct log_sink {
	struct log_sink_opts o;
	struct strbuf buf;
	size_t done;       /* bytes of buf already written (a batch in progress) */
	int broken;
};

/* Writes buf[done..len) to fd, at most PIPE_BUF bytes at a time once poll()
 * says there is room (such a write never blocks on a pipe), waiting at most
 * WRITE_WAIT_MS for room. Returns 0 when all is written, -EAGAIN when the
 * reader did not make room in time, -EPIPE (or another -errno) when the
 * output is gone. */
static int write_out(struct log_sink *s, int fd)
{
	while (s->done < s->buf.len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		size_t n = s->buf.len - s->done;
		ssize_t w;
		int r = poll(&p, 1, WRITE_WAIT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -EAGAIN;
		if (r < 0)
			return -errno;
		if (p.revents & (POLLERR | POLLNVAL))
			return -EPIPE;
		if (n > 4096)
			n = 4096;
		w = write(fd, s->buf.p + s->done, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		s->done += (size_t)w;
	}
	return 0;
}

static int log_sink_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct log_sink *s = ctx;
	size_t i;
	int e;

	if (s->broken)
		return 0;
	/* Bytes left from a write that timed out: this call is the batcher's
	 * retry of that same batch (it retries before taking another). */
	if (s->done == 0) {
		strbuf__reset(&s->buf);
		for (i = 0; i < n; i++)
			slog__format_entry(&s->buf, s->o.format, batch[i], s->o.slow_us);
		fflush(s->o.out);  /* nothing buffered by stdio goes out of order */
	}
	e = write_out(s, fileno(s->o.out));
	if (e == -EAGAIN)
		return e;
	s->done = 0;
	if (e)
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
