/*
 * recfmt.h - the lossless record formats, both ways: JSON lines and a
 * MessagePack stream.
 *
 * `stream-sub --json | stream-pub --json` (and `--msgpack`) copy records
 * unchanged: key, value, headers (ordered, duplicates and nulls kept),
 * timestamp, with null distinct from empty and binary never mangled. The
 * formats are specified for users in share/doc/formats.md; in short:
 *
 * JSON lines, one record per line (the writer's exact layout):
 *
 *   {"topic":"t","partition":0,"offset":42,"timestamp":1732442400000,
 *    "key":"k","key_encoding":"utf8","value":"AAE=","value_encoding":"base64",
 *    "headers":[["name","value"],["name",null],["bin","AAE=","base64"]]}
 *
 *   - key/value: a string, or null; *_encoding is "utf8" (the string is the
 *     bytes) or "base64" (the string is their base64). The writer uses utf8
 *     when the bytes are valid UTF-8, else base64, and writes "utf8" for null.
 *   - a header is [name, value] or [name, value, value_encoding] or
 *     [name, value, value_encoding, name_encoding]; value may be null. The
 *     writer adds the third element only for base64 values and the fourth only
 *     for names that are not valid UTF-8.
 *
 *   The reader also accepts lenient input: every field but "value" is
 *   optional ({"value":"x"}, {"key":"k","value":"v"}); a missing "value" is an
 *   error (write "value":null for a tombstone). A key, value or header value
 *   given as a number, boolean, object or array is taken as its JSON text,
 *   exactly as written ({"value":{"a":1}} publishes the 7 bytes {"a":1}).
 *   "headers" may also be an object ({"h1":"v1","h2":null}), read in order.
 *   "timestamp" may be an integer (ms) or a string in the time grammar
 *   (timespec.h; relative times are relative to the wall clock); -1 or null
 *   means "not given". Unknown fields and duplicate fields are errors (a typo
 *   like "vlaue" must not publish tombstones) unless
 *   STREAM_RECFMT_IGNORE_UNKNOWN is set. Blank lines are skipped. A line
 *   longer than max_record_bytes is refused, blank or not (it is refused as
 *   soon as that many bytes without a "\n" have arrived): what a reader
 *   returns never depends on how its input was cut into pieces.
 *
 * MessagePack stream: records back to back, each one map
 *
 *   {"topic": str, "partition": int, "offset": int, "timestamp": int,
 *    "key": bin|nil, "value": bin|nil, "headers": [[bin, bin|nil], ...]}
 *
 *   written with str keys in that order. The reader is as lenient as the JSON
 *   one about optional fields, takes str as well as bin for bytes, and applies
 *   the same unknown-field rule. It is a bounds-checked decoder of its own
 *   (not msgpack_unpacker, which allocates for declared sizes up front and
 *   keeps bad bytes after an error): a record larger than max_record_bytes is
 *   refused as soon as its size is known, never buffered.
 *
 * Reading from a pipe, incrementally:
 *
 *   stream_recfmt_reader r;
 *   stream_recfmt_reader_init(&r, STREAM_RECFMT_MSGPACK);
 *   stream_recfmt_in in;
 *   int rc, n;
 *   do {
 *       n = stream_recfmt_reader_fill(&r, 0);        // read(2) from stdin; 0 = EOF
 *       while ((rc = stream_recfmt_reader_next(&r, &in, err, sizeof err)) == 1)
 *           stream_batch_builder_append(&b, in.has_timestamp ? in.rec.timestamp : now,
 *                                       in.rec.key, in.rec.key_len,
 *                                       in.rec.value, in.rec.value_len,
 *                                       in.rec.headers, in.rec.header_count);
 *   } while (n > 0 && rc == 0);
 *   // rc < 0: error in err;  n < 0: read error
 *   stream_recfmt_reader_release(&r);
 *
 * (stream_recfmt_reader_feed takes bytes from anywhere instead of fill.) The
 * reader stops at the first error and returns it again on every later call:
 * after a bad record, nothing that follows can be trusted to line up.
 */
#ifndef STREAM_RECFMT_H
#define STREAM_RECFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/format.h"
#include "stream/json.h"

/* ---- writers ---------------------------------------------------------------- */

/* Appends rec as one JSON line (ending in "\n"). Returns 0, STREAM_ENOMEM, or
 * STREAM_ECORRUPT for malformed encoded headers (out then holds part of a
 * line: reset it). */
int stream_recfmt_write_json(stream_buf *out, const stream_fmt_record *rec);

/* Appends rec as one MessagePack map. Same returns as the JSON writer. */
int stream_recfmt_write_msgpack(stream_buf *out, const stream_fmt_record *rec);

/* ---- readers ---------------------------------------------------------------- */

typedef enum stream_recfmt_kind {
    STREAM_RECFMT_JSON = 1,    /* JSON lines, "\n"-separated ("\r\n" fine) */
    STREAM_RECFMT_MSGPACK = 2, /* MessagePack maps back to back */
} stream_recfmt_kind;

/* What a reader returns for one record. rec.headers is always the decoded
 * array (NULL only when header_count is 0), ready for
 * stream_batch_builder_append. Every pointer borrows from the reader and
 * stays valid until the next call on it. */
typedef struct stream_recfmt_in {
    stream_fmt_record rec; /* the record; fields not given are "" / -1 */
    bool has_topic;        /* "topic" was given (the caller decides what it means) */
    bool has_partition;    /* "partition" was given and not -1 (stream-pub may honour it) */
    bool has_offset;       /* "offset" was given (stream-pub ignores it) */
    bool has_timestamp;    /* "timestamp" was given and not -1/null; else use now */
} stream_recfmt_in;

/* Refuse a record (a JSON line, a MessagePack map) larger than this. */
#define STREAM_RECFMT_DEFAULT_MAX_RECORD ((size_t)64 << 20)
/* Flag: skip unknown fields instead of failing on them. */
#define STREAM_RECFMT_IGNORE_UNKNOWN 0x1u

typedef struct stream_recfmt_reader {
    stream_recfmt_kind kind;  /* public, read-only after init */
    size_t max_record_bytes;  /* public: largest record accepted
                                 (default STREAM_RECFMT_DEFAULT_MAX_RECORD) */
    unsigned flags;           /* public: STREAM_RECFMT_* flags (default 0) */
    uint64_t records;         /* read-only: records returned so far */
    uint64_t line;            /* read-only: JSON: lines consumed so far */
    uint64_t consumed;        /* read-only: input bytes consumed so far */
    stream_buf in;            /* private: buffered input, unconsumed from pos */
    size_t pos;               /* private: start of the unconsumed bytes in `in` */
    size_t scanned;           /* private: JSON: bytes after pos known to hold no "\n" */
    bool eof;                 /* private: no more input will come */
    int err;                  /* private: sticky error, 0 if none */
    stream_json_doc doc;      /* private: DOM and arena for the current JSON line */
    stream_header *headers;   /* private: decoded header array, reused */
    size_t headers_cap;       /* private */
} stream_recfmt_reader;

/* Initialises a reader of the given format (no allocation yet). */
void stream_recfmt_reader_init(stream_recfmt_reader *r, stream_recfmt_kind kind);
/* Frees everything the reader holds. */
void stream_recfmt_reader_release(stream_recfmt_reader *r);

/* Appends input bytes (copied). Returns 0, STREAM_ENOMEM, or STREAM_EINVAL
 * after stream_recfmt_reader_eof. */
int stream_recfmt_reader_feed(stream_recfmt_reader *r, const void *p, size_t len);

/* Reads once from fd (up to 64 KiB, retrying EINTR) into the reader. Returns
 * the bytes read (> 0), 0 at end of input (and marks the reader at EOF), or
 * a negative STREAM_E* code mapped from errno (STREAM_EAGAIN for a
 * non-blocking fd with nothing to read). */
int stream_recfmt_reader_fill(stream_recfmt_reader *r, int fd);

/* Marks the end of input: next then parses a last JSON line that has no
 * "\n", and reports leftover bytes of an unfinished MessagePack record as
 * STREAM_ESHORT. */
void stream_recfmt_reader_eof(stream_recfmt_reader *r);

/* Returns 1 and fills *out with the next record; 0 when more input is needed
 * (or, after EOF, when all records have been returned); or an error, with
 * errbuf naming the line (JSON) or record and byte offset (MessagePack) and
 * what is wrong: STREAM_EINVAL (malformed or invalid record), STREAM_ETOOLARGE
 * (a record over max_record_bytes), STREAM_ESHORT (input ended inside a
 * record), STREAM_ENOMEM. Errors are sticky. */
int stream_recfmt_reader_next(stream_recfmt_reader *r, stream_recfmt_in *out, char *errbuf,
                              size_t errbuf_len);

/* Parses one JSON record from line[0..len) (surrounding whitespace allowed)
 * using r's scratch memory (r may be of either kind; its buffered input is
 * untouched). For a REPL or a single argument. *out borrows from line and r
 * until the next call on r. Returns 0, STREAM_EINVAL, STREAM_ETOOLARGE or
 * STREAM_ENOMEM, with errbuf. */
int stream_recfmt_parse_json(stream_recfmt_reader *r, const char *line, size_t len,
                             stream_recfmt_in *out, char *errbuf, size_t errbuf_len);

/* Decodes one MessagePack record from the start of p[0..len). Returns 1 and
 * sets *used to the record's size; 0 when p holds only the start of a record
 * (nothing wrong yet); or STREAM_EINVAL / STREAM_ETOOLARGE / STREAM_ENOMEM
 * with errbuf. *out borrows from p and r until the next call on r. */
int stream_recfmt_parse_msgpack(stream_recfmt_reader *r, const uint8_t *p, size_t len,
                                size_t *used, stream_recfmt_in *out, char *errbuf,
                                size_t errbuf_len);

#endif /* STREAM_RECFMT_H */
