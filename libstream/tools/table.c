/*
 * table.c - aligned text tables (see table.h).
 *
 * Every header and cell is kept as a NUL-terminated string in one growing
 * buffer, with an array of start offsets: two allocations for the whole
 * table, whatever its size. Widths are measured at render time, in one pass.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/table.h"

void stream_table_init(stream_table *t)
{
    memset(t, 0, sizeof(*t));
    stream_buf_init(&t->text);
}

void stream_table_release(stream_table *t)
{
    stream_buf_release(&t->text);
    free(t->starts);
    memset(t, 0, sizeof(*t));
}

/* Appends one NUL-terminated string and records where it starts. */
static void push(stream_table *t, const char *s, size_t len)
{
    if (t->err)
        return;
    if (t->nstarts == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        size_t *n = realloc(t->starts, cap * sizeof(*n));
        if (n == NULL) {
            t->err = STREAM_ENOMEM;
            return;
        }
        t->starts = n;
        t->cap = cap;
    }
    size_t at = t->text.len;
    stream_buf_put(&t->text, s, len);
    stream_buf_put_u8(&t->text, 0);
    if (stream_buf_ok(&t->text) != 0) {
        t->err = STREAM_ENOMEM;
        return;
    }
    t->starts[t->nstarts++] = at;
}

void stream_table_column(stream_table *t, const char *header, stream_table_align align)
{
    if (t->err)
        return;
    if (t->ncols == STREAM_TABLE_MAX_COLUMNS || t->nstarts != t->ncols) {
        t->err = STREAM_EINVAL; /* too many, or after the first cell */
        return;
    }
    t->align[t->ncols] = align;
    push(t, header ? header : "", header ? strlen(header) : 0);
    if (!t->err)
        t->ncols++;
}

void stream_table_cell(stream_table *t, const char *text)
{
    if (t->ncols == 0 && !t->err)
        t->err = STREAM_EINVAL;
    if (text == NULL)
        text = "-";
    push(t, text, strlen(text));
}

void stream_table_cellf(stream_table *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!t->err)
            t->err = STREAM_EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        stream_table_cell(t, small);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        if (!t->err)
            t->err = STREAM_ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    stream_table_cell(t, big);
    free(big);
}

size_t stream_table_rows(const stream_table *t)
{
    if (t->ncols == 0)
        return 0;
    return (t->nstarts - t->ncols) / t->ncols;
}

/* Code points in s (bytes that are not UTF-8 continuation bytes). */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void put_spaces(stream_buf *out, size_t n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        stream_buf_put(out, spaces, k);
        n -= k;
    }
}

/* Copies a cell, showing control characters as '?'. */
static void put_cell(stream_buf *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            stream_buf_put(out, run, (size_t)(s - run));
            stream_buf_put_u8(out, '?');
            run = s + 1;
        }
    }
    stream_buf_put(out, run, (size_t)(s - run));
}

int stream_table_render(const stream_table *t, stream_buf *out)
{
    if (t->err)
        return t->err;
    if (t->ncols == 0)
        return 0;
    size_t width[STREAM_TABLE_MAX_COLUMNS] = {0};
    for (size_t i = 0; i < t->nstarts; i++) {
        size_t w = width_of((const char *)t->text.data + t->starts[i]);
        if (w > width[i % t->ncols])
            width[i % t->ncols] = w;
    }
    size_t cells = t->nstarts;
    if (cells % t->ncols)
        cells += t->ncols - cells % t->ncols; /* pad a short last row */
    /* Where the line's text ends: after its last non-empty cell. Padding
     * and separators past it are cut before the newline, so that empty
     * cells at the end of a row leave no trailing spaces. */
    size_t text_end = out->len;
    for (size_t i = 0; i < cells; i++) {
        size_t col = i % t->ncols;
        bool last = col == t->ncols - 1;
        const char *s = i < t->nstarts ? (const char *)t->text.data + t->starts[i] : "";
        size_t pad = width[col] - width_of(s);
        if (col > 0)
            put_spaces(out, 2);
        if (t->align[col] == STREAM_ALIGN_RIGHT)
            put_spaces(out, pad);
        put_cell(out, s);
        if (*s != '\0')
            text_end = out->len;
        if (t->align[col] == STREAM_ALIGN_LEFT && !last)
            put_spaces(out, pad);
        if (last) {
            if (stream_buf_ok(out) == 0)
                out->len = text_end;
            stream_buf_put_u8(out, '\n');
            text_end = out->len;
        }
    }
    return stream_buf_ok(out);
}

const char *stream_table_human_bytes(int64_t bytes, char *buf, size_t buf_len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 0) {
        snprintf(buf, buf_len, "-");
        return buf;
    }
    if (bytes < 1024) {
        snprintf(buf, buf_len, "%lld B", (long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    /* Move up while the value would print as 1024.0 or more. */
    while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, buf_len, "%.1f %s", v, units[u]);
    return buf;
}
