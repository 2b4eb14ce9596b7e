/*
 * format.h - kcat-style output format strings, compiled once, applied per record.
 *
 * `stream-sub -f '%t [%p] at %o: %k=%v\n'` compiles its format at start-up
 * (a bad placeholder is a usage error before any data moves) into a list of
 * typed tokens; applying it to a record only appends bytes to a reused
 * buffer: no parsing and no allocation per record once the buffer has grown.
 *
 * Placeholders:
 *
 *   %t  topic               %p  partition            %o  offset
 *   %k  key                 %v  value (also %s)      %T  timestamp (ms)
 *   %K  key length          %V  value length (also %S); -1 for null
 *   %D  timestamp as RFC 3339 UTC with ms ("2026-11-24T10:00:00.123Z")
 *   %h  headers: name=value pairs joined by ",", a null value as just name
 *   %%  a literal %
 *
 * Escapes in the format: \n \t \r \\ \0 \xNN (two hex digits, any byte).
 * Any other character after "%" or "\" is a compile error naming its position
 * (1-based character column); so is a trailing lone "%" or "\".
 *
 * Key, value and header bytes are written as they are (binary stays binary).
 * A null key or value prints as nothing, as in kcat, unless a null string is
 * set with stream_format_set_null (e.g. "NULL"); an empty one always prints
 * as nothing.
 *
 * This header also defines stream_fmt_record, the one view of a record that
 * every output and input format (format.h, recfmt.h) uses.
 */
#ifndef STREAM_FORMAT_H
#define STREAM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "stream/batch.h"
#include "stream/buf.h"

/*
 * A record with its topic and partition, every pointer borrowed. Headers come
 * in one of two shapes, so neither producer nor consumer has to convert:
 *
 *   - decoded: `headers` points at header_count stream_header (what the
 *     recfmt readers return and what stream_batch_builder_append takes);
 *   - encoded: `headers` is NULL and headers_raw/headers_raw_len hold the
 *     encoded header bytes of a stream_record (what a fetch gives), decoded
 *     on the fly with stream_header_iter.
 *
 * stream_fmt_record_from_record fills one from a decoded batch record.
 */
typedef struct stream_fmt_record {
    const char *topic;   /* topic name bytes (not NUL-terminated); may be NULL if topic_len is 0 */
    size_t topic_len;    /* bytes at topic */
    int32_t partition;   /* partition id, or -1 when unknown */
    int64_t offset;      /* record offset, or -1 when unknown */
    int64_t timestamp;   /* ms since epoch, or -1 when unknown */
    const uint8_t *key;  /* NULL when key_len is -1 */
    int32_t key_len;     /* -1 for a null key */
    const uint8_t *value; /* NULL when value_len is -1 */
    int32_t value_len;   /* -1 for a null value (a tombstone) */
    const stream_header *headers; /* decoded headers, or NULL to use headers_raw */
    size_t header_count;          /* number of headers (in either shape) */
    const uint8_t *headers_raw;   /* encoded headers (batch.h layout) when headers is NULL */
    size_t headers_raw_len;       /* bytes at headers_raw */
} stream_fmt_record;

/* Fills *out from a record of a decoded batch (rec borrowed, headers encoded). */
void stream_fmt_record_from_record(stream_fmt_record *out, const char *topic, size_t topic_len,
                                   int32_t partition, const stream_record *rec);

/* Calls fn(name, value) for each header in order, whichever shape they are
 * in; stops early when fn returns non-zero and returns that. Returns 0, or
 * STREAM_ECORRUPT when encoded headers are malformed. */
int stream_fmt_record_each_header(const stream_fmt_record *rec,
                                  int (*fn)(void *arg, const stream_header *h), void *arg);

/* A compiled format; opaque. */
typedef struct stream_format stream_format;

/* Compiles `fmt` (NUL-terminated) into *out (free with stream_format_free).
 * Returns 0, STREAM_EINVAL with errbuf naming the column ("unknown
 * placeholder '%x' (...) at column 7"), or STREAM_ENOMEM. */
int stream_format_compile(const char *fmt, stream_format **out, char *errbuf, size_t errbuf_len);

/* Frees a compiled format; NULL is a no-op. */
void stream_format_free(stream_format *f);

/* Sets what a null key or value prints as (copied); NULL restores the
 * default of printing nothing. A null header value always prints as the
 * bare name. Returns 0 or STREAM_ENOMEM. */
int stream_format_set_null(stream_format *f, const char *null_text);

/* Appends the formatted record to `out` (not reset first). Does not
 * allocate beyond growing `out`. Returns 0, STREAM_ENOMEM (out->oom), or
 * STREAM_ECORRUPT for malformed encoded headers (`out` may then hold part
 * of the record: reset it). */
int stream_format_apply(const stream_format *f, const stream_fmt_record *rec, stream_buf *out);

/* Parses a delimiter as given to -D/-K ("\n", "\0", "\x1e", "|", "::", "\t\t")
 * into bytes, appended to `out`. Escapes: \n \t \r \\ \0 \xNN; anything else
 * is literal. An empty delimiter or a bad escape is STREAM_EINVAL with
 * errbuf ("bad delimiter '\q': unknown escape '\q' at column 1"). */
int stream_format_parse_delim(const char *p, size_t len, stream_buf *out, char *errbuf,
                              size_t errbuf_len);

#endif /* STREAM_FORMAT_H */
