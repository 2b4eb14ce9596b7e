/*
 * json.c - UTF-8 checks, base64, a JSON writer and a strict JSON reader.
 *
 * The reader is a recursive descent parser bounded by max_depth. Children of
 * an open array or object are collected on one reusable stack (so nested
 * containers share it in LIFO order) and copied into the arena, contiguous,
 * when the container closes: the DOM is a handful of arrays, not a linked
 * list, and building it allocates only when the arena or stack must grow.
 * The arena is a list of chunks that is rewound, not freed, between parses.
 */
#include <locale.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/json.h"
#include "base/internal.h"

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (at most `left` bytes), or 0
 * when the bytes there are not one. Table 3-7 of the Unicode standard. */
static size_t utf8_seq_len(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    if (c < 0xe0) {
        return left >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c < 0xf0) {
        if (left < 3 || (p[2] & 0xc0) != 0x80)
            return 0;
        uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (left < 4 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
        return 0;
    uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    return p[1] >= lo && p[1] <= hi ? 4 : 0;
}

/* Bytes of s[0..len) from the start that are plain ASCII a JSON string
 * takes as they are (0x20..0x7f but '"' and '\\'), 8 at a time: the common
 * case of record text costs a few operations per 8 bytes instead of a
 * branch per byte. (Bit tricks: a byte below 0x20 or above 0x7f, or equal
 * to '"' or '\\', sets its high bit in `bad`.) */
static size_t plain_ascii_prefix(const uint8_t *s, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
        uint64_t bad = v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b);
        if ((bad & highs) != 0)
            break;
    }
    return i;
}

/* Bytes of s[0..len) from the start below 0x80, 8 at a time. */
static size_t ascii_prefix(const uint8_t *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        if ((v & 0x8080808080808080ULL) != 0)
            break;
    }
    return i;
}

bool stream_utf8_valid(const void *p, size_t len)
{
    const uint8_t *s = p;
    size_t i = 0;
    while (i < len) {
        i += ascii_prefix(s + i, len - i);
        if (i == len)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* ---- base64 ----------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t stream_base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

void stream_base64_encode(stream_buf *out, const void *p, size_t len)
{
    const uint8_t *s = p;
    if (len == 0 || len > (SIZE_MAX - 2) / 4 * 3 ||
        stream_buf_reserve(out, stream_base64_encoded_len(len)) != 0)
        return;
    uint8_t *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = (uint8_t)b64_alphabet[v >> 18];
        *o++ = (uint8_t)b64_alphabet[v >> 12 & 63];
        *o++ = (uint8_t)b64_alphabet[v >> 6 & 63];
        *o++ = (uint8_t)b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = (uint8_t)b64_alphabet[v >> 18];
        *o++ = (uint8_t)b64_alphabet[v >> 12 & 63];
        *o++ = i + 1 < len ? (uint8_t)b64_alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->data);
}

size_t stream_base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int stream_base64_decode(const char *p, size_t len, uint8_t *out, size_t *out_len, char *errbuf,
                         size_t errbuf_len)
{
    /* Strip padding first: at most two "=", only at the end of a 4n string. */
    size_t n = len;
    if (len % 4 == 0 && n > 0 && p[n - 1] == '=') {
        n--;
        if (p[n - 1] == '=')
            n--;
    }
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(p[i]);
        if (v < 0) {
            unsigned char c = (unsigned char)p[i];
            if (c >= 0x20 && c < 0x7f)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "invalid base64 character '%c' at position %zu", c, i + 1);
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "invalid base64 byte 0x%02x at position %zu", c, i + 1);
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* 2 or 3 trailing characters carry 1 or 2 bytes; the bits left over must be
     * zero or two encodings would decode to the same bytes. */
    size_t rest = n % 4;
    if (rest == 1)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "invalid base64: length %zu is not possible", len);
    if (rest == 2) {
        if (acc & 0x0f)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "invalid base64: non-zero bits after the end");
        out[o++] = (uint8_t)(acc >> 4);
    } else if (rest == 3) {
        if (acc & 0x03)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "invalid base64: non-zero bits after the end");
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    *out_len = o;
    return 0;
}

/* ---- writer ----------------------------------------------------------------- */

void stream_json_put_string(stream_buf *out, const void *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = p;
    size_t i = 0, run = 0;
    if (len == 0) { /* p may be NULL: no pointer arithmetic on it */
        stream_buf_put(out, "\"\"", 2);
        return;
    }
    stream_buf_put_u8(out, '"');
    while (i < len) {
        i += plain_ascii_prefix(s + i, len - i);
        if (i == len)
            break;
        uint8_t c = s[i];
        size_t n = 1;
        if (c >= 0x20 && c != '"' && c != '\\' &&
            (c < 0x80 || (n = utf8_seq_len(s + i, len - i)) != 0)) {
            i += n; /* part of a run copied as it is */
            continue;
        }
        stream_buf_put(out, s + run, i - run);
        switch (c) {
        case '"': stream_buf_put(out, "\\\"", 2); break;
        case '\\': stream_buf_put(out, "\\\\", 2); break;
        case '\n': stream_buf_put(out, "\\n", 2); break;
        case '\t': stream_buf_put(out, "\\t", 2); break;
        case '\r': stream_buf_put(out, "\\r", 2); break;
        case '\b': stream_buf_put(out, "\\b", 2); break;
        case '\f': stream_buf_put(out, "\\f", 2); break;
        default:
            if (c < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                stream_buf_put(out, e, 6);
            } else {
                stream_buf_put(out, "\\ufffd", 6); /* a byte of invalid UTF-8 */
            }
        }
        i++;
        run = i;
    }
    stream_buf_put(out, s + run, i - run);
    stream_buf_put_u8(out, '"');
}

void stream_json_put_int(stream_buf *out, int64_t v)
{
    char t[24];
    size_t i = sizeof t;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        t[--i] = '-';
    stream_buf_put(out, t + i, sizeof t - i);
}

void stream_json_writer_init(stream_json_writer *w, stream_buf *out)
{
    w->out = out;
    w->depth = 0;
    w->nonempty = 0;
    w->after_key = false;
    w->overflow = false;
}

int stream_json_writer_ok(const stream_json_writer *w)
{
    if (w->overflow)
        return STREAM_EINVAL;
    return stream_buf_ok(w->out);
}

int stream_json_writer_finish(stream_json_writer *w)
{
    int rc = stream_json_writer_ok(w);
    if (rc != 0)
        return rc;
    stream_buf_put_u8(w->out, '\n');
    return stream_buf_ok(w->out);
}

/* Writes the comma a new element at the current level needs. */
static void before_value(stream_json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        uint64_t bit = UINT64_C(1) << (w->depth - 1);
        if (w->nonempty & bit)
            stream_buf_put_u8(w->out, ',');
        w->nonempty |= bit;
    }
}

static void open_container(stream_json_writer *w, char c)
{
    before_value(w);
    if (w->depth >= STREAM_JSON_WRITER_MAX_DEPTH) {
        w->overflow = true;
        return;
    }
    w->depth++;
    w->nonempty &= ~(UINT64_C(1) << (w->depth - 1));
    stream_buf_put_u8(w->out, (uint8_t)c);
}

static void close_container(stream_json_writer *w, char c)
{
    if (w->depth == 0) {
        w->overflow = true;
        return;
    }
    w->depth--;
    stream_buf_put_u8(w->out, (uint8_t)c);
}

void stream_json_object_start(stream_json_writer *w)
{
    open_container(w, '{');
}

void stream_json_object_end(stream_json_writer *w)
{
    close_container(w, '}');
}

void stream_json_array_start(stream_json_writer *w)
{
    open_container(w, '[');
}

void stream_json_array_end(stream_json_writer *w)
{
    close_container(w, ']');
}

void stream_json_key_n(stream_json_writer *w, const void *key, size_t len)
{
    before_value(w);
    stream_json_put_string(w->out, key, len);
    stream_buf_put_u8(w->out, ':');
    w->after_key = true;
}

void stream_json_key(stream_json_writer *w, const char *key)
{
    stream_json_key_n(w, key, strlen(key));
}

void stream_json_string(stream_json_writer *w, const void *p, size_t len)
{
    before_value(w);
    stream_json_put_string(w->out, p, len);
}

void stream_json_cstring(stream_json_writer *w, const char *s)
{
    if (s == NULL)
        stream_json_null(w);
    else
        stream_json_string(w, s, strlen(s));
}

void stream_json_int(stream_json_writer *w, int64_t v)
{
    before_value(w);
    stream_json_put_int(w->out, v);
}

void stream_json_uint(stream_json_writer *w, uint64_t v)
{
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    before_value(w);
    stream_buf_put(w->out, t + i, sizeof t - i);
}

void stream_json_double(stream_json_writer *w, double v)
{
    if (!isfinite(v)) {
        stream_json_null(w);
        return;
    }
    /* %.17g round-trips every double; the decimal point must be "." whatever
     * the program's locale, so fix up a "," the C library may have written. */
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", v);
    for (int i = 0; i < n; i++)
        if (t[i] == ',')
            t[i] = '.';
    before_value(w);
    stream_buf_put(w->out, t, (size_t)n);
}

void stream_json_bool(stream_json_writer *w, bool v)
{
    before_value(w);
    if (v)
        stream_buf_put(w->out, "true", 4);
    else
        stream_buf_put(w->out, "false", 5);
}

void stream_json_null(stream_json_writer *w)
{
    before_value(w);
    stream_buf_put(w->out, "null", 4);
}

void stream_json_raw(stream_json_writer *w, const void *p, size_t len)
{
    before_value(w);
    stream_buf_put(w->out, p, len);
}

/* ---- arena ------------------------------------------------------------------ */

struct stream_json_chunk {
    struct stream_json_chunk *next; /* the next chunk in the reuse order */
    size_t cap;                     /* bytes at data */
    size_t used;                    /* bytes handed out since the last rewind */
    alignas(max_align_t) unsigned char data[];
};

#define CHUNK_MIN ((size_t)16 << 10)

static void arena_rewind(stream_json_doc *d)
{
    d->cur = d->chunks;
    if (d->cur != NULL)
        d->cur->used = 0;
}

void *stream_json_doc_alloc(stream_json_doc *d, size_t n)
{
    if (n > SIZE_MAX - 64)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    if (d->cur != NULL && d->cur->cap - d->cur->used >= n) {
        void *p = d->cur->data + d->cur->used;
        d->cur->used += n;
        return p;
    }
    /* Move on to the next chunk if it is big enough; else splice in a new one
     * after the current, so chunks made for earlier lines stay in use. */
    struct stream_json_chunk *next = d->cur != NULL ? d->cur->next : d->chunks;
    if (next == NULL || next->cap < n) {
        size_t cap = d->cur != NULL ? d->cur->cap * 2 : CHUNK_MIN;
        if (cap < n)
            cap = n;
        struct stream_json_chunk *c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->next = next;
        if (d->cur != NULL)
            d->cur->next = c;
        else
            d->chunks = c;
        next = c;
    }
    next->used = n;
    d->cur = next;
    return next->data;
}

void stream_json_doc_init(stream_json_doc *d)
{
    d->max_depth = STREAM_JSON_DEFAULT_MAX_DEPTH;
    d->max_bytes = STREAM_JSON_DEFAULT_MAX_BYTES;
    d->chunks = NULL;
    d->cur = NULL;
    d->stack = NULL;
    d->stack_len = 0;
    d->stack_cap = 0;
    d->c_locale = NULL;
}

void stream_json_doc_release(stream_json_doc *d)
{
    struct stream_json_chunk *c = d->chunks;
    while (c != NULL) {
        struct stream_json_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d->stack);
    if (d->c_locale != NULL)
        freelocale((locale_t)d->c_locale);
    stream_json_doc_init(d);
}

/* ---- reader ----------------------------------------------------------------- */

typedef struct parser {
    stream_json_doc *d;
    const char *p;     /* borrowed input */
    size_t len;        /* bytes at p */
    size_t pos;        /* next byte */
    char *errbuf;      /* caller's, may be NULL */
    size_t errbuf_len;
} parser;

static int perr(parser *ps, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(parser *ps, size_t at, const char *fmt, ...)
{
    if (ps->errbuf != NULL && ps->errbuf_len > 0) {
        char what[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(ps->errbuf, ps->errbuf_len, "%s at column %zu", what, at + 1);
    }
    return STREAM_EINVAL;
}

/* "unexpected 'x'" or "unexpected end of input" for the byte at pos. */
static int unexpected(parser *ps, const char *expected)
{
    if (ps->pos >= ps->len)
        return perr(ps, ps->pos, "unexpected end of input, expected %s", expected);
    unsigned char c = (unsigned char)ps->p[ps->pos];
    if (c >= 0x20 && c < 0x7f)
        return perr(ps, ps->pos, "unexpected '%c', expected %s", c, expected);
    return perr(ps, ps->pos, "unexpected byte 0x%02x, expected %s", c, expected);
}

static void skip_ws(parser *ps)
{
    while (ps->pos < ps->len) {
        char c = ps->p[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->pos++;
    }
}

static int push_member(parser *ps, const char *key, size_t key_len, const stream_json_value *v)
{
    stream_json_doc *d = ps->d;
    if (d->stack_len == d->stack_cap) {
        size_t cap = d->stack_cap ? d->stack_cap * 2 : 64;
        stream_json_member *s = realloc(d->stack, cap * sizeof *s);
        if (s == NULL)
            return STREAM_ENOMEM;
        d->stack = s;
        d->stack_cap = cap;
    }
    stream_json_member *m = &d->stack[d->stack_len++];
    m->key = key;
    m->key_len = key_len;
    m->value = *v;
    return 0;
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (h < 0)
            return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * A string, cursor on the opening quote. First pass: find the closing quote,
 * check raw runs are UTF-8 and note whether there are escapes. Without
 * escapes the result points into the input; with them it is decoded into the
 * arena (never longer than the raw text).
 */
static int parse_string(parser *ps, const char **out, size_t *out_len)
{
    size_t start = ++ps->pos, i = start;
    bool escapes = false;
    for (;;) {
        size_t run = i;
        while (i < ps->len) {
            unsigned char c = (unsigned char)ps->p[i];
            if (c == '"' || c == '\\' || c < 0x20)
                break;
            i++;
        }
        if (!stream_utf8_valid(ps->p + run, i - run)) {
            size_t j = run;
            while (j < i && utf8_seq_len((const uint8_t *)ps->p + j, i - j) != 0)
                j += utf8_seq_len((const uint8_t *)ps->p + j, i - j);
            return perr(ps, j, "invalid UTF-8 in a string");
        }
        if (i >= ps->len)
            return perr(ps, start - 1, "unterminated string");
        unsigned char c = (unsigned char)ps->p[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return perr(ps, i, "unescaped control character 0x%02x in a string", c);
        escapes = true;
        if (i + 1 >= ps->len)
            return perr(ps, start - 1, "unterminated string");
        /* Check the escape letter now: skipping an arbitrary byte would split
         * a UTF-8 sequence and misreport it. \u's digits are checked below. */
        unsigned char e = (unsigned char)ps->p[i + 1];
        if (strchr("\"\\/bfnrtu", e) == NULL || e == '\0') {
            if (e >= 0x20 && e < 0x7f)
                return perr(ps, i, "invalid escape '\\%c'", e);
            return perr(ps, i, "invalid escape '\\' + byte 0x%02x", e);
        }
        i += 2;
    }
    size_t end = i;
    ps->pos = end + 1;
    if (!escapes) {
        *out = ps->p + start;
        *out_len = end - start;
        return 0;
    }
    char *o = stream_json_doc_alloc(ps->d, end - start);
    if (o == NULL)
        return STREAM_ENOMEM;
    size_t n = 0;
    for (i = start; i < end;) {
        char c = ps->p[i];
        if (c != '\\') {
            o[n++] = c;
            i++;
            continue;
        }
        char e = ps->p[i + 1];
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (end - i < 6 || hex4(ps->p + i + 2, &cp) != 0)
                return perr(ps, i, "'\\u' needs four hex digits");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return perr(ps, i, "lone low surrogate \\u%04x", (unsigned)cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - i < 12 || ps->p[i + 6] != '\\' || ps->p[i + 7] != 'u' ||
                    hex4(ps->p + i + 8, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                    return perr(ps, i, "high surrogate \\u%04x not followed by a low one",
                                (unsigned)cp);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            n += put_utf8(o + n, cp);
            i += 4; /* plus the 2 below */
            break;
        }
        default:
            if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f)
                return perr(ps, i, "invalid escape '\\%c'", e);
            return perr(ps, i, "invalid escape '\\' + byte 0x%02x", (unsigned char)e);
        }
        i += 2;
    }
    *out = o;
    *out_len = n;
    return 0;
}

static int parse_number(parser *ps, stream_json_value *v)
{
    const char *p = ps->p;
    size_t start = ps->pos, i = start;
    bool neg = false, integral = true, overflow = false;
    uint64_t mag = 0;
    if (i < ps->len && p[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= ps->len || p[i] < '0' || p[i] > '9') {
        ps->pos = i;
        return unexpected(ps, "a digit");
    }
    if (p[i] == '0') {
        i++;
        if (i < ps->len && p[i] >= '0' && p[i] <= '9')
            return perr(ps, i - 1, "leading zero in a number");
    } else {
        while (i < ps->len && p[i] >= '0' && p[i] <= '9') {
            unsigned d = (unsigned)(p[i] - '0');
            if (mag > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
            i++;
        }
    }
    if (i < ps->len && p[i] == '.') {
        integral = false;
        i++;
        if (i >= ps->len || p[i] < '0' || p[i] > '9') {
            ps->pos = i;
            return unexpected(ps, "a digit after '.'");
        }
        while (i < ps->len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < ps->len && (p[i] == 'e' || p[i] == 'E')) {
        integral = false;
        i++;
        if (i < ps->len && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= ps->len || p[i] < '0' || p[i] > '9') {
            ps->pos = i;
            return unexpected(ps, "a digit in the exponent");
        }
        while (i < ps->len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    ps->pos = i;
    v->text = p + start;
    v->text_len = i - start;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (integral && !overflow && mag <= limit) {
        v->type = STREAM_JSON_INT;
        v->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return 0;
    }
    /* strtod needs a NUL and the "C" decimal point whatever the program's
     * locale; the copy is rare (non-integers only). */
    char *t = stream_json_doc_alloc(ps->d, i - start + 1);
    if (t == NULL)
        return STREAM_ENOMEM;
    memcpy(t, p + start, i - start);
    t[i - start] = '\0';
    if (ps->d->c_locale == NULL) {
        ps->d->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (ps->d->c_locale == NULL)
            return STREAM_ENOMEM;
    }
    v->type = STREAM_JSON_NUMBER;
    v->d = strtod_l(t, NULL, (locale_t)ps->d->c_locale);
    return 0;
}

static bool match_word(parser *ps, const char *w, size_t n)
{
    if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, w, n) != 0)
        return false;
    ps->pos += n;
    return true;
}

static int parse_value(parser *ps, stream_json_value *v, uint32_t depth);

/* An array or object, cursor on its opening bracket. */
static int parse_container(parser *ps, stream_json_value *v, uint32_t depth)
{
    bool is_obj = ps->p[ps->pos] == '{';
    char close = is_obj ? '}' : ']';
    size_t start = ps->pos;
    if (depth >= ps->d->max_depth)
        return perr(ps, ps->pos, "nesting deeper than %u", (unsigned)ps->d->max_depth);
    size_t base = ps->d->stack_len;
    ps->pos++;
    skip_ws(ps);
    if (ps->pos < ps->len && ps->p[ps->pos] == close) {
        ps->pos++;
    } else {
        for (;;) {
            const char *key = NULL;
            size_t key_len = 0;
            stream_json_value child;
            int rc;
            if (is_obj) {
                if (ps->pos >= ps->len || ps->p[ps->pos] != '"')
                    return unexpected(ps, "a member name in quotes");
                if ((rc = parse_string(ps, &key, &key_len)) != 0)
                    return rc;
                skip_ws(ps);
                if (ps->pos >= ps->len || ps->p[ps->pos] != ':')
                    return unexpected(ps, "':'");
                ps->pos++;
                skip_ws(ps);
            }
            if ((rc = parse_value(ps, &child, depth + 1)) != 0)
                return rc;
            if ((rc = push_member(ps, key, key_len, &child)) != 0)
                return rc;
            skip_ws(ps);
            if (ps->pos < ps->len && ps->p[ps->pos] == ',') {
                ps->pos++;
                skip_ws(ps);
                continue;
            }
            if (ps->pos < ps->len && ps->p[ps->pos] == close) {
                ps->pos++;
                break;
            }
            return unexpected(ps, is_obj ? "',' or '}'" : "',' or ']'");
        }
    }
    size_t count = ps->d->stack_len - base;
    /* The stack is still unallocated (NULL) when no container had children. */
    const stream_json_member *kids = count > 0 ? ps->d->stack + base : NULL;
    v->text = ps->p + start;
    v->text_len = ps->pos - start;
    if (is_obj) {
        stream_json_member *m = NULL;
        if (count > 0 && (m = stream_json_doc_alloc(ps->d, count * sizeof *m)) == NULL)
            return STREAM_ENOMEM;
        if (count > 0)
            memcpy(m, kids, count * sizeof *m);
        v->type = STREAM_JSON_OBJECT;
        v->obj.members = m;
        v->obj.count = count;
    } else {
        stream_json_value *items = NULL;
        if (count > 0 && (items = stream_json_doc_alloc(ps->d, count * sizeof *items)) == NULL)
            return STREAM_ENOMEM;
        for (size_t k = 0; k < count; k++)
            items[k] = kids[k].value;
        v->type = STREAM_JSON_ARRAY;
        v->arr.items = items;
        v->arr.count = count;
    }
    ps->d->stack_len = base;
    return 0;
}

static int parse_value(parser *ps, stream_json_value *v, uint32_t depth)
{
    if (ps->pos >= ps->len)
        return unexpected(ps, "a value");
    size_t start = ps->pos;
    char c = ps->p[ps->pos];
    switch (c) {
    case '{':
    case '[': return parse_container(ps, v, depth);
    case '"': {
        int rc = parse_string(ps, &v->str.p, &v->str.len);
        if (rc != 0)
            return rc;
        v->type = STREAM_JSON_STRING;
        break;
    }
    case 't':
    case 'f':
    case 'n':
        if (match_word(ps, "true", 4)) {
            v->type = STREAM_JSON_BOOL;
            v->b = true;
        } else if (match_word(ps, "false", 5)) {
            v->type = STREAM_JSON_BOOL;
            v->b = false;
        } else if (match_word(ps, "null", 4)) {
            v->type = STREAM_JSON_NULL;
        } else {
            return unexpected(ps, "a value");
        }
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(ps, v);
        return unexpected(ps, "a value");
    }
    v->text = ps->p + start;
    v->text_len = ps->pos - start;
    return 0;
}

int stream_json_parse(stream_json_doc *d, const char *p, size_t len, const stream_json_value **root,
                      char *errbuf, size_t errbuf_len)
{
    parser ps = {d, p, len, 0, errbuf, errbuf_len};
    if (len > d->max_bytes) {
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "JSON text of %zu bytes is over the limit of %zu", len,
                     d->max_bytes);
        return STREAM_ETOOLARGE;
    }
    if (d->max_depth > 1000)
        d->max_depth = 1000; /* the parser recurses once per level */
    arena_rewind(d);
    d->stack_len = 0;
    stream_json_value *v = stream_json_doc_alloc(d, sizeof *v);
    if (v == NULL)
        return STREAM_ENOMEM;
    skip_ws(&ps);
    if (ps.pos == len)
        return perr(&ps, ps.pos, "empty input, expected a JSON value");
    int rc = parse_value(&ps, v, 0);
    if (rc != 0)
        return rc;
    skip_ws(&ps);
    if (ps.pos != len)
        return perr(&ps, ps.pos, "trailing characters after the value");
    *root = v;
    return 0;
}

const stream_json_value *stream_json_object_get(const stream_json_value *v, const char *key)
{
    if (v == NULL || v->type != STREAM_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->obj.count; i++) {
        const stream_json_member *m = &v->obj.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return &m->value;
    }
    return NULL;
}

const char *stream_json_type_name(stream_json_type t)
{
    switch (t) {
    case STREAM_JSON_NULL: return "null";
    case STREAM_JSON_BOOL: return "boolean";
    case STREAM_JSON_INT: return "integer";
    case STREAM_JSON_NUMBER: return "number";
    case STREAM_JSON_STRING: return "string";
    case STREAM_JSON_ARRAY: return "array";
    case STREAM_JSON_OBJECT: return "object";
    }
    return "unknown";
}
