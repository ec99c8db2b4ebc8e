/* report_html.c — the report as one self-contained HTML page (report.h):
 * inline CSS, SVG and a few lines of script (table sorting), nothing
 * fetched (a Content-Security-Policy forbids it). Every text from the trace
 * file is HTML-escaped: it is whatever SQL the traced programs ran. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "humanize.h"
#include "report.h"

/* Writes s HTML-escaped (text and attribute values alike); bytes that are
 * not valid UTF-8 become U+FFFD, control characters a space. */
static void esc(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", f); continue;
		case '<': fputs("&lt;", f); continue;
		case '>': fputs("&gt;", f); continue;
		case '"': fputs("&quot;", f); continue;
		case '\'': fputs("&#39;", f); continue;
		case '\n': case '\t': fputc(*p, f); continue;
		default: break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fputc(' ', f);
		} else if (*p >= 0x80) {
			size_t len = *p >= 0xF0 && *p < 0xF5 ? 4 : *p >= 0xE0 && *p < 0xF0 ? 3 :
				     *p >= 0xC2 && *p < 0xE0 ? 2 : 0, k;

			for (k = 1; k < len && (p[k] & 0xC0) == 0x80; k++)
				;
			if (len && k == len) {
				fwrite(p, 1, len, f);
				p += len - 1;
			} else {
				fputs("\xef\xbf\xbd", f);
			}
		} else {
			fputc(*p, f);
		}
	}
}

static const char css[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
	"h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.5em 0 .5em}"
	".summary{color:#555}"
	"table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}"
	"th,td{padding:.3em .6em;border-bottom:1px solid #eee;text-align:right;vertical-align:top}"
	"th{background:#f0f0f5;cursor:pointer;user-select:none;white-space:nowrap}"
	"th.sorted::after{content:' \\25BE'}th.sorted.asc::after{content:' \\25B4'}"
	"td.fp{text-align:left;max-width:48em}td.fp code{white-space:pre-wrap;word-break:break-word}"
	"details{color:#555;font-size:.9em}td.err{color:#b00}"
	"svg text{font:10px sans-serif;fill:#555}.bar{fill:#4a7bd0}.bar:hover{fill:#234}"
	".p99{fill:none;stroke:#d0502a;stroke-width:1.5}.axis{stroke:#999}"
	"#errors td:first-child,th:last-child{text-align:left}";

/* Sorting: a click on a column heading orders the rows by that column's
 * data-v values (numbers, or text for the fingerprint); "#sort=KEY" in the
 * address sorts on load (a link to a sorted view). */
static const char script[] =
	"(function(){"
	"var t=document.getElementById('groups');if(!t)return;"
	"var hs=t.tHead.rows[0].cells;"
	"function sortBy(i,asc){var b=t.tBodies[0],rs=Array.prototype.slice.call(b.rows);"
	"rs.sort(function(x,y){var a=x.cells[i].dataset.v,c=y.cells[i].dataset.v,"
	"na=parseFloat(a),nc=parseFloat(c),r=(isNaN(na)||isNaN(nc))?a.localeCompare(c):na-nc;"
	"return asc?r:-r;});"
	"rs.forEach(function(r){b.appendChild(r);});"
	"for(var k=0;k<hs.length;k++){hs[k].classList.remove('sorted','asc');}"
	"hs[i].classList.add('sorted');if(asc)hs[i].classList.add('asc');"
	"t.dataset.sortedBy=hs[i].dataset.key;t.dataset.asc=asc?'1':'0';}"
	"for(var i=0;i<hs.length;i++){(function(i){if(!hs[i].dataset.key)return;"
	"hs[i].addEventListener('click',function(){var same=t.dataset.sortedBy===hs[i].dataset.key;"
	"sortBy(i,same?t.dataset.asc!=='1':hs[i].dataset.key==='fingerprint');});})(i);}"
	"var m=/sort=(\\w+)/.exec(location.hash);"
	"if(m){for(var j=0;j<hs.length;j++){if(hs[j].dataset.key===m[1])hs[j].click();}}"
	"document.body.dataset.ready='1';"
	"})();";

/* The latency histogram of one group as an inline SVG: one bar per power
 * of two between the fastest and the slowest entry, height by count (log). */
static void group_hist(FILE *f, const struct group *g)
{
	uint64_t oct[64] = {0}, maxn = 0;
	int lo = 64, hi = -1, o;
	unsigned b;
	const int W = 180, H = 36;

	for (b = 0; b < HIST_BUCKETS; b++) {
		int64_t l;

		if (!g->hist.n[b])
			continue;
		l = hist__lower(b);
		o = l <= 0 ? 0 : 63 - __builtin_clzll((unsigned long long)l);
		oct[o] += g->hist.n[b];
		lo = o < lo ? o : lo;
		hi = o > hi ? o : hi;
	}
	if (hi < 0) {
		fputs("<svg class=\"hist\" width=\"180\" height=\"36\"></svg>", f);
		return;
	}
	for (o = lo; o <= hi; o++)
		maxn = oct[o] > maxn ? oct[o] : maxn;
	fprintf(f, "<svg class=\"hist\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">", W, H, W, H);
	{
		int nb = hi - lo + 1;
		double bw = (double)(W - 2) / nb;

		for (o = lo; o <= hi; o++) {
			char a[16], c[16];
			double h = oct[o] ? 3 + (H - 14 - 3) * log1p((double)oct[o]) / log1p((double)maxn) : 0;
			int64_t from = o == 0 ? 0 : (int64_t)1 << o, to = ((int64_t)1 << (o + 1)) - 1;

			fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
				"<title>%s–%s: %" PRIu64 "</title></rect>", 1 + (o - lo) * bw, H - 12 - h,
				bw > 2 ? bw - 1 : bw, h, humanize__us(a, from), humanize__us(c, to), oct[o]);
		}
		{
			char a[16], c[16];

			fprintf(f, "<text x=\"1\" y=\"%d\">%s</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>",
				H - 1, humanize__us(a, lo == 0 ? 0 : (int64_t)1 << lo), W - 1, H - 1,
				humanize__us(c, ((int64_t)1 << (hi + 1)) - 1));
		}
	}
	fputs("</svg>", f);
}

/* Statements per second (bars) and p99 (line) over the trace's span. */
static void timeline(FILE *f, const struct report *r)
{
	const int W = 960, H = 220, L = 60, R = 60, T = 10, B = 30;
	double maxrate = 0, maxp99 = 1, bw;
	int64_t *p99 = calloc(r->nbuckets ? r->nbuckets : 1, sizeof(*p99));
	size_t i;
	char a[16];

	if (!p99)
		return;
	for (i = 0; i < r->nbuckets; i++) {
		double rate = (double)r->tl_count[i] * 1e6 / (double)r->bucket_us;

		p99[i] = hist__quantile(&r->tl_hist[i], 99, -1);
		maxrate = rate > maxrate ? rate : maxrate;
		maxp99 = (double)p99[i] > maxp99 ? (double)p99[i] : maxp99;
	}
	if (maxrate <= 0)
		maxrate = 1;
	bw = (double)(W - L - R) / (double)(r->nbuckets ? r->nbuckets : 1);
	fprintf(f, "<svg id=\"timeline\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">", W, H, W, H);
	fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", L, H - B, W - R, H - B);
	for (i = 0; i < r->nbuckets; i++) {
		double rate = (double)r->tl_count[i] * 1e6 / (double)r->bucket_us;
		double h = (H - T - B) * rate / maxrate;

		fprintf(f, "<rect class=\"bar tl\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
			"<title>+%.0fs: %.1f/s, p99 ≤ %s</title></rect>", L + i * bw, H - B - h, bw > 2 ? bw - 1 : bw, h,
			(double)i * (double)r->bucket_us / 1e6, rate, humanize__us(a, p99[i]));
	}
	fputs("<polyline class=\"p99\" points=\"", f);
	for (i = 0; i < r->nbuckets; i++)
		if (r->tl_count[i])
			fprintf(f, "%.1f,%.1f ", L + (i + 0.5) * bw, H - B - (H - T - B) * (double)p99[i] / maxp99);
	fputs("\"/>", f);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f/s</text>", L - 4, T + 8, maxrate);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>", L - 4, H - B);
	fprintf(f, "<text x=\"%d\" y=\"%d\">p99 %s</text>", W - R + 4, T + 8, humanize__us(a, (int64_t)maxp99));
	fprintf(f, "<text x=\"%d\" y=\"%d\">0s</text>", L, H - B + 14);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">+%.0fs</text>", W - R, H - B + 14,
		(double)r->nbuckets * (double)r->bucket_us / 1e6);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">statements per second (bars, left) and "
		"p99 latency (line, right; histogram estimate, within 12.5%%), %s per bar</text>",
		W / 2, H - 4, humanize__us(a, r->bucket_us));
	fputs("</svg>\n", f);
	free(p99);
}

static int cmp_err(const void *a, const void *b)
{
	const struct group_err *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->msg, y->msg);
}

int report_html__write(FILE *f, const struct report *r)
{
	char a[16], b[16], t0[32] = "", t1[32] = "";
	struct group_err *errs = NULL;
	size_t i;

	if (r->entries) {
		time_t s0 = (time_t)(r->span_min / 1000000), s1 = (time_t)(r->span_max / 1000000);
		struct tm tm0, tm1;

		gmtime_r(&s0, &tm0);
		gmtime_r(&s1, &tm1);
		strftime(t0, sizeof(t0), "%Y-%m-%d %H:%M:%S", &tm0);
		strftime(t1, sizeof(t1), "%Y-%m-%d %H:%M:%S", &tm1);
	}
	fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
	      "<meta name=\"viewport\" content=\"width=device-width\"><title>sqltrace-bpf report: ", f);
	esc(f, r->path);
	fprintf(f, "</title><style>%s</style></head>\n<body>\n<h1>SQL statements in ", css);
	esc(f, r->path);
	fprintf(f, "</h1>\n<p class=\"summary\" id=\"summary\" data-entries=\"%" PRIu64 "\" data-groups=\"%zu\">"
		"%" PRIu64 " entries, %zu fingerprints, %s in total, %" PRIu64 " errors",
		r->entries, r->ngroups, r->entries, r->ngroups, humanize__us(a, r->total_us), r->errors);
	if (r->entries)
		fprintf(f, "; from %s to %s UTC", t0, t1);
	fprintf(f, ". The %zu fingerprints with the most %s; click a heading to sort.</p>\n", r->n,
		(const char *const[]){ "total time", "calls", "mean time", "p99", "errors" }[r->sort]);

	fputs("<h2>Statements</h2>\n<table id=\"groups\"><thead><tr>"
	      "<th data-key=\"count\">calls</th><th data-key=\"total\" class=\"sorted\">total</th>"
	      "<th data-key=\"share\">%&nbsp;time</th><th data-key=\"mean\">mean</th>"
	      "<th data-key=\"p50\">p50</th><th data-key=\"p95\">p95</th><th data-key=\"p99\">p99</th>"
	      "<th data-key=\"max\">max</th><th data-key=\"errors\">errors</th>"
	      "<th>latency (log scale)</th><th data-key=\"fingerprint\">fingerprint</th></tr></thead><tbody>\n", f);
	for (i = 0; i < r->n; i++) {
		const struct group *g = r->v[i];
		double share = r->total_us > 0 ? 100.0 * (double)g->total_us / (double)r->total_us : 0;
		double mean = (double)g->total_us / (double)g->count;
		char c[16];

		fprintf(f, "<tr class=\"group\"><td data-v=\"%" PRIu64 "\">%" PRIu64 "</td>", g->count, g->count);
		fprintf(f, "<td data-v=\"%" PRId64 "\">%s</td>", g->total_us, humanize__us(a, g->total_us));
		fprintf(f, "<td data-v=\"%.3f\">%.1f</td>", share, share);
		fprintf(f, "<td data-v=\"%.3f\">%s</td>", mean, humanize__us(a, (int64_t)(mean + 0.5)));
		fprintf(f, "<td data-v=\"%" PRId64 "\">%s</td><td data-v=\"%" PRId64 "\">%s</td>"
			"<td data-v=\"%" PRId64 "\">%s</td>", g->p50_us, humanize__us(a, g->p50_us), g->p95_us,
			humanize__us(b, g->p95_us), g->p99_us, humanize__us(c, g->p99_us));
		fprintf(f, "<td data-v=\"%" PRId64 "\">%s</td>", g->max_us, humanize__us(a, g->max_us));
		fprintf(f, "<td data-v=\"%" PRIu64 "\"%s>%" PRIu64 "</td><td>", g->errors,
			g->errors ? " class=\"err\"" : "", g->errors);
		group_hist(f, g);
		fputs("</td><td class=\"fp\" data-v=\"", f);
		esc(f, g->fingerprint);
		fputs("\"><code>", f);
		esc(f, g->fingerprint);
		fputs("</code><details><summary>example", f);
		if (g->top_error)
			fputs(" and most frequent error", f);
		fputs("</summary><code>", f);
		esc(f, g->example);
		fputs("</code>", f);
		if (g->top_error) {
			fputs("<div class=\"top-error\">", f);
			esc(f, g->top_error);
			fputs("</div>", f);
		}
		fputs("</details></td></tr>\n", f);
	}
	fputs("</tbody></table>\n", f);

	fputs("<h2>Timeline</h2>\n", f);
	if (r->nbuckets && r->entries)
		timeline(f, r);
	else
		fputs("<p>No entries.</p>\n", f);

	fputs("<h2>Errors by message</h2>\n", f);
	if (r->nerrs) {
		errs = malloc(r->nerrs * sizeof(*errs));
		if (errs) {
			memcpy(errs, r->errs, r->nerrs * sizeof(*errs));
			qsort(errs, r->nerrs, sizeof(*errs), cmp_err);
			fputs("<table id=\"errors\"><thead><tr><th>message</th><th>count</th></tr></thead><tbody>\n", f);
			for (i = 0; i < r->nerrs; i++) {
				fputs("<tr><td>", f);
				esc(f, errs[i].msg);
				fprintf(f, "</td><td>%" PRIu64 "</td></tr>\n", errs[i].n);
			}
			fputs("</tbody></table>\n", f);
			free(errs);
		}
	} else {
		fputs("<p id=\"no-errors\">No statement failed.</p>\n", f);
	}
	fprintf(f, "<script>%s</script>\n</body></html>\n", script);
	return ferror(f) ? -EIO : 0;
}
