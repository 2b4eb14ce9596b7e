/*
 * progress.c - the one-line progress bar (stream/progress.h).
 *
 * The idea is `pv`'s: a line on stderr redrawn in place with '\r' a few
 * times a second, so a long import or export shows it is alive and when it
 * will end, and that disappears from pipes and logs (AUTO draws only on a
 * terminal). The line is padded with spaces over a longer previous one
 * rather than cleared with an escape sequence, so a line forced into a file
 * (--progress) holds only text. Rates and the ETA are averages over the
 * whole run: steadier to read than the last interval's.
 */
#include <string.h>
#include <unistd.h>

#include "base/internal.h"
#include "stream/progress.h"
#include "stream/table.h"

/* Redraw at most this often (ns): often enough to look live, rarely
 * enough to cost nothing beside the work. */
#define REDRAW_NS 200000000LL

void stream_progress_init(stream_progress *p, FILE *out, stream_progress_mode mode,
                          const char *label, uint64_t total_bytes)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->label = label;
    p->total_bytes = total_bytes;
    p->start_ns = stream__mono_ns();
    if (mode == STREAM_PROGRESS_ON)
        p->enabled = true;
    else if (mode == STREAM_PROGRESS_AUTO)
        p->enabled = out != NULL && isatty(fileno(out));
}

/* "12,345,678": digits grouped by thousands for reading at a glance. */
static void grouped(char *buf, size_t len, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

/* "0:07", "1:02:03". */
static void clock_time(char *buf, size_t len, uint64_t s)
{
    if (s >= 3600)
        snprintf(buf, len, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%llu:%02llu", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
}

int stream_progress_format(char *buf, size_t len, const char *label, uint64_t records,
                           uint64_t bytes, uint64_t total_bytes, int64_t elapsed_ns,
                           const char *note, bool final)
{
    double secs = elapsed_ns > 1000000 ? (double)elapsed_ns / 1e9 : 0.001;
    char recs[32], done[32], total[32], rate_bytes[32], rate_recs[32];
    grouped(recs, sizeof(recs), records);
    stream_table_human_bytes(bytes > INT64_MAX ? INT64_MAX : (int64_t)bytes, done, sizeof(done));
    grouped(rate_recs, sizeof(rate_recs), (uint64_t)((double)records / secs));
    stream_table_human_bytes((int64_t)((double)bytes / secs), rate_bytes, sizeof(rate_bytes));
    /* The end: how long it took. Before: the ETA at the average rate, when
     * the size is known. */
    char when[128] = "";
    size_t at = 0;
    if (note != NULL && *note != '\0')
        at = (size_t)snprintf(when, sizeof(when), "  %.63s", note);
    if (final) {
        snprintf(when + at, sizeof(when) - at, "  in ");
        clock_time(when + at + 5, sizeof(when) - at - 5, (uint64_t)(secs + 0.5));
    } else if (total_bytes > 0 && bytes > 0) {
        uint64_t shown = bytes < total_bytes ? bytes : total_bytes;
        double left = (double)(total_bytes - shown) / ((double)bytes / secs);
        snprintf(when + at, sizeof(when) - at, "  ETA ");
        clock_time(when + at + 6, sizeof(when) - at - 6, (uint64_t)(left + 0.5));
    } else if (total_bytes > 0) {
        snprintf(when + at, sizeof(when) - at, "  ETA -:--");
    }
    if (total_bytes == 0)
        return snprintf(buf, len, "%s: %s records  %s  %s rec/s  %s/s%s", label, recs, done,
                        rate_recs, rate_bytes, when);
    stream_table_human_bytes(total_bytes > INT64_MAX ? INT64_MAX : (int64_t)total_bytes, total,
                             sizeof(total));
    uint64_t shown = bytes < total_bytes ? bytes : total_bytes;
    int pct = (int)(shown * 100 / total_bytes);
    return snprintf(buf, len, "%s: %s records  %s / %s  %d%%  %s rec/s  %s/s%s", label, recs, done,
                    total, pct, rate_recs, rate_bytes, when);
}

/* Draws the current line over the previous one. */
static void draw(stream_progress *p, int64_t now, bool last)
{
    char line[256];
    int n = stream_progress_format(line, sizeof(line), p->label, p->records, p->bytes,
                                   p->total_bytes, now - p->start_ns, p->note, last);
    size_t w = n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;
    int pad = p->last_width > w ? (int)(p->last_width - w) : 0;
    fprintf(p->out, "\r%s%*s%s", line, pad, "", last ? "\n" : "");
    fflush(p->out);
    p->last_width = w;
    p->last_draw_ns = now;
}

void stream_progress_update(stream_progress *p, uint64_t records, uint64_t bytes)
{
    p->records = records;
    p->bytes = bytes;
    if (!p->enabled)
        return;
    int64_t now = stream__mono_ns();
    if (now - p->last_draw_ns >= REDRAW_NS)
        draw(p, now, false);
}

void stream_progress_note(stream_progress *p, const char *note)
{
    snprintf(p->note, sizeof(p->note), "%s", note ? note : "");
}

void stream_progress_finish(stream_progress *p)
{
    if (p->enabled)
        draw(p, stream__mono_ns(), true);
    p->enabled = false;
}
