/*
 * json.h - a small strict JSON (RFC 8259) writer and reader, UTF-8 and base64.
 *
 * Just what stream needs, with no dependency: `--json` output of the programs,
 * the lossless JSON-lines record format (recfmt.h), and admin commands'
 * machine-readable output.
 *
 * Writer: appends to a stream_buf. Strings are always emitted as valid JSON
 * and valid UTF-8: `"` and `\` are escaped, control characters become \n, \t,
 * \r, \b, \f or \u00XX, DEL and non-ASCII UTF-8 pass through, and every byte
 * of an invalid UTF-8 sequence is written as \ufffd (U+FFFD). A caller that
 * must not lose bytes (recfmt) checks stream_utf8_valid first and uses
 * base64 instead. The stream_json_writer tracks commas and nesting; the
 * stream_json_put_* functions write one token with no bookkeeping.
 *
 * Reader: parses one JSON value (one line of JSON lines) into a small DOM.
 * All of the DOM lives in the stream_json_doc's arena, which is reused by the
 * next parse: after the first lines no parse allocates (steady state).
 * Strings are unescaped to UTF-8 (surrogate pairs joined; a lone surrogate is
 * an error); a string without escapes points straight into the input, so the
 * input must outlive the DOM. Duplicate object keys are kept, in order.
 * Limits: nesting depth (max_depth, default 64) and input size (max_bytes,
 * default 128 MiB); beyond them the parse fails cleanly. The parser never
 * reads past len and needs no NUL.
 */
#ifndef STREAM_JSON_H
#define STREAM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

/* ---- UTF-8 and base64 ----------------------------------------------------- */

/* True when p[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). NUL bytes are valid UTF-8. */
bool stream_utf8_valid(const void *p, size_t len);

/* Bytes the base64 of len bytes takes (padded). */
size_t stream_base64_encoded_len(size_t len);
/* Appends the base64 of p[0..len) (standard alphabet, "=" padding). */
void stream_base64_encode(stream_buf *out, const void *p, size_t len);
/* An upper bound on the bytes that decoding len characters yields. */
size_t stream_base64_decoded_max(size_t len);
/* Decodes standard base64 into out (room for stream_base64_decoded_max(len)
 * bytes) and sets *out_len. Padding may be present or absent, but if present
 * it must be right; whitespace, URL-safe characters, a length of 4n+1, and
 * non-zero bits after the last byte are rejected, so every byte string has
 * exactly one accepted encoding. Returns 0 or STREAM_EINVAL with errbuf
 * ("invalid base64 character '-' at position 7"). */
int stream_base64_decode(const char *p, size_t len, uint8_t *out, size_t *out_len, char *errbuf,
                         size_t errbuf_len);

/* ---- writer ----------------------------------------------------------------- */

/* Appends p[0..len) as a quoted JSON string (see above for escaping). */
void stream_json_put_string(stream_buf *out, const void *p, size_t len);
/* Appends a decimal integer. */
void stream_json_put_int(stream_buf *out, int64_t v);

#define STREAM_JSON_WRITER_MAX_DEPTH 64

/*
 *   stream_json_writer w;
 *   stream_json_writer_init(&w, &buf);
 *   stream_json_object_start(&w);
 *   stream_json_key(&w, "topic"); stream_json_cstring(&w, "orders");
 *   stream_json_key(&w, "partitions"); stream_json_int(&w, 3);
 *   stream_json_object_end(&w);
 *   if (stream_json_writer_ok(&w) != 0) ...     // {"topic":"orders","partitions":3}
 *
 * Output is compact (no spaces, no newline). The writer does not validate the
 * shape beyond nesting: a key outside an object is the caller's bug.
 */
typedef struct stream_json_writer {
    stream_buf *out;    /* borrowed: where the JSON goes */
    uint32_t depth;     /* private: open containers */
    uint64_t nonempty;  /* private: bit d set when level d has an element */
    bool after_key;     /* private: the next value follows a key (no comma) */
    bool overflow;      /* private: nested deeper than the maximum, or unbalanced */
} stream_json_writer;

void stream_json_writer_init(stream_json_writer *w, stream_buf *out);
/* 0, STREAM_ENOMEM (the buffer ran out), or STREAM_EINVAL (nesting beyond
 * STREAM_JSON_WRITER_MAX_DEPTH or an end without a start). */
int stream_json_writer_ok(const stream_json_writer *w);
/* Ends a document meant for a terminal or a pipe: when the writer is ok,
 * appends a newline. Returns what stream_json_writer_ok returns, or
 * STREAM_ENOMEM when the newline did not fit. */
int stream_json_writer_finish(stream_json_writer *w);
void stream_json_object_start(stream_json_writer *w);
void stream_json_object_end(stream_json_writer *w);
void stream_json_array_start(stream_json_writer *w);
void stream_json_array_end(stream_json_writer *w);
/* An object member's name; the next call writes its value. */
void stream_json_key(stream_json_writer *w, const char *key);
void stream_json_key_n(stream_json_writer *w, const void *key, size_t len);
void stream_json_string(stream_json_writer *w, const void *p, size_t len);
/* A NUL-terminated string; NULL writes null. */
void stream_json_cstring(stream_json_writer *w, const char *s);
void stream_json_int(stream_json_writer *w, int64_t v);
void stream_json_uint(stream_json_writer *w, uint64_t v);
/* Non-finite values (NaN, infinities) have no JSON form and write null. */
void stream_json_double(stream_json_writer *w, double v);
void stream_json_bool(stream_json_writer *w, bool v);
void stream_json_null(stream_json_writer *w);
/* Bytes that already are one JSON value, written as they are. */
void stream_json_raw(stream_json_writer *w, const void *p, size_t len);

/* ---- reader ----------------------------------------------------------------- */

typedef enum stream_json_type {
    STREAM_JSON_NULL = 0,
    STREAM_JSON_BOOL,
    STREAM_JSON_INT,    /* an integer literal (no fraction or exponent) that fits int64 */
    STREAM_JSON_NUMBER, /* any other number: fraction, exponent, or beyond int64 */
    STREAM_JSON_STRING,
    STREAM_JSON_ARRAY,
    STREAM_JSON_OBJECT,
} stream_json_type;

typedef struct stream_json_value stream_json_value;
typedef struct stream_json_member stream_json_member;

struct stream_json_value {
    stream_json_type type; /* which union member is set */
    const char *text;      /* borrowed from the input: the value's JSON text, */
    size_t text_len;       /* exactly as written (for taking values as JSON text) */
    union {
        bool b;   /* BOOL */
        int64_t i; /* INT */
        double d; /* NUMBER (as strtod reads it; may be +-HUGE_VAL) */
        struct {
            const char *p; /* unescaped UTF-8 (may contain NUL; not NUL-terminated) */
            size_t len;
        } str;             /* STRING */
        struct {
            const stream_json_value *items;
            size_t count;
        } arr;             /* ARRAY */
        struct {
            const stream_json_member *members; /* in input order, duplicates kept */
            size_t count;
        } obj;             /* OBJECT */
    };
};

struct stream_json_member {
    const char *key; /* unescaped UTF-8 (not NUL-terminated) */
    size_t key_len;
    stream_json_value value;
};

struct stream_json_chunk;

/* A parser and the arena its DOM lives in. Caller-owned; init/release. */
typedef struct stream_json_doc {
    uint32_t max_depth; /* public: deepest nesting accepted (default 64, at most 1000) */
    size_t max_bytes;   /* public: longest input accepted (default 128 MiB) */
    struct stream_json_chunk *chunks; /* private: arena chunks, reused across parses */
    struct stream_json_chunk *cur;    /* private: chunk being filled */
    stream_json_member *stack;        /* private: children of open containers */
    size_t stack_len, stack_cap;      /* private */
    void *c_locale;                   /* private: "C" numeric locale for strtod_l, made on
                                         first use (the program may have set another) */
} stream_json_doc;

#define STREAM_JSON_DEFAULT_MAX_DEPTH 64
#define STREAM_JSON_DEFAULT_MAX_BYTES ((size_t)128 << 20)

void stream_json_doc_init(stream_json_doc *d);
void stream_json_doc_release(stream_json_doc *d);

/* Parses exactly one JSON value from p[0..len), with optional whitespace
 * around it (so a line's "\n" or "\r\n" is fine). *root points into the doc
 * (and the input) until the next parse or release. Returns 0, STREAM_EINVAL
 * with errbuf naming the problem and its column ("invalid escape '\q' at
 * column 12", "trailing characters after the value at column 9", "nesting
 * deeper than 64 at column 65"), STREAM_ETOOLARGE (len > max_bytes) or
 * STREAM_ENOMEM. */
int stream_json_parse(stream_json_doc *d, const char *p, size_t len, const stream_json_value **root,
                      char *errbuf, size_t errbuf_len);

/* n bytes (8-byte aligned) from the doc's arena, freed by the next parse or
 * release: lets a caller keep data derived from a DOM (e.g. base64-decoded
 * bytes) alongside it without allocating per line. NULL when out of memory. */
void *stream_json_doc_alloc(stream_json_doc *d, size_t n);

/* The first member named key (NUL-terminated) of an object, or NULL (also
 * when v is not an object). */
const stream_json_value *stream_json_object_get(const stream_json_value *v, const char *key);

/* "null", "boolean", "integer", "number", "string", "array", "object". */
const char *stream_json_type_name(stream_json_type t);

#endif /* STREAM_JSON_H */
