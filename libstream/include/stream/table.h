/*
 * table.h - aligned text tables for humans (stream-topics, stream-shell).
 *
 *   stream_table t;
 *   stream_table_init(&t);
 *   stream_table_column(&t, "PARTITION", STREAM_ALIGN_RIGHT);
 *   stream_table_column(&t, "LEADER", STREAM_ALIGN_RIGHT);
 *   stream_table_cellf(&t, "%d", 0);  stream_table_cell(&t, "1");   // row 1
 *   stream_table_render(&t, &buf);    // "PARTITION  LEADER\n        0       1\n"
 *   stream_table_release(&t);
 *
 * Cells fill rows left to right; a row ends after as many cells as there are
 * columns (declare every column before the first cell). Columns are
 * separated by two spaces and padded to their widest cell or header; the
 * last column is never padded, and a line whose last cells are empty ends
 * after its last non-empty one, so no line ends in padding. Width counts UTF-8
 * code points (a fair approximation of terminal cells for names and
 * values). Control characters in cells are shown as '?', so a hostile
 * name from a broker cannot break the layout or drive the terminal.
 *
 * Memory failures latch, as in stream_buf: after one, cells are dropped and
 * stream_table_render returns STREAM_ENOMEM, so a caller checks once.
 */
#ifndef STREAM_TABLE_H
#define STREAM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

typedef enum stream_table_align {
    STREAM_ALIGN_LEFT = 0,  /* text */
    STREAM_ALIGN_RIGHT = 1, /* numbers */
} stream_table_align;

#define STREAM_TABLE_MAX_COLUMNS 32

typedef struct stream_table {
    /* private */
    size_t ncols; /* columns declared */
    stream_table_align align[STREAM_TABLE_MAX_COLUMNS];
    stream_buf text;     /* headers then cells, each NUL-terminated, in order */
    size_t *starts;      /* offset in text of each header and cell */
    size_t nstarts, cap; /* entries used / allocated in starts */
    int err;             /* 0, or the first failure, latched: STREAM_ENOMEM, or
                            STREAM_EINVAL for a misplaced column or cell */
} stream_table;

/* An empty table with no columns. Does not allocate. */
void stream_table_init(stream_table *t);
/* Frees everything; the table can be init'ed again. */
void stream_table_release(stream_table *t);

/* Declares the next column (header text copied). At most
 * STREAM_TABLE_MAX_COLUMNS, all before the first cell: otherwise the table
 * fails (render returns STREAM_EINVAL). So does a cell before any column. */
void stream_table_column(stream_table *t, const char *header, stream_table_align align);

/* Appends a cell (text copied; NULL shows as "-"). */
void stream_table_cell(stream_table *t, const char *text);
/* Appends a printf-formatted cell. */
void stream_table_cellf(stream_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Complete rows added so far. */
size_t stream_table_rows(const stream_table *t);

/* Appends the table (header line, then one line per row, each ending in
 * "\n") to out. A last row with missing cells is padded with empty cells.
 * A table without columns renders as nothing. Returns 0, STREAM_ENOMEM or
 * STREAM_EINVAL (see stream_table_column). */
int stream_table_render(const stream_table *t, stream_buf *out);

/* Writes a byte count for humans into buf ("0 B", "999 B", "1.5 KiB",
 * "12.3 MiB", "2.0 GiB": binary units, one decimal from KiB up); a negative
 * count (unknown) gives "-". Returns buf. buf_len >= 16 always suffices. */
const char *stream_table_human_bytes(int64_t bytes, char *buf, size_t buf_len);

#endif /* STREAM_TABLE_H */
