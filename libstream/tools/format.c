/*
 * format.c - compiling kcat-style format strings and applying them.
 *
 * Compilation turns the format into an array of tokens: literal runs (with
 * escapes already decoded, adjacent literals merged) and placeholders. The
 * literal bytes live in one block owned by the format, so applying a token is
 * a switch and a memcpy; numbers are written by a small itoa instead of
 * snprintf so the per-record path never interprets a format string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/format.h"
#include "stream/timespec.h"

typedef enum tok_kind {
    TOK_LITERAL,
    TOK_TOPIC,
    TOK_PARTITION,
    TOK_OFFSET,
    TOK_KEY,
    TOK_VALUE,
    TOK_TIMESTAMP,
    TOK_TIMESTAMP_ISO,
    TOK_HEADERS,
    TOK_KEY_LEN,
    TOK_VALUE_LEN,
} tok_kind;

typedef struct tok {
    tok_kind kind; /* what to write */
    size_t off;    /* TOK_LITERAL: start in stream_format.lit */
    size_t len;    /* TOK_LITERAL: bytes */
} tok;

struct stream_format {
    tok *toks;        /* the compiled format, in order */
    size_t ntoks;     /* tokens at toks */
    uint8_t *lit;     /* decoded literal bytes of every TOK_LITERAL */
    char *null_text;  /* what a null key/value prints as; NULL prints nothing */
    size_t null_len;  /* bytes at null_text */
};

void stream_fmt_record_from_record(stream_fmt_record *out, const char *topic, size_t topic_len,
                                   int32_t partition, const stream_record *rec)
{
    out->topic = topic;
    out->topic_len = topic_len;
    out->partition = partition;
    out->offset = rec->offset;
    out->timestamp = rec->timestamp;
    out->key = rec->key;
    out->key_len = rec->key_len;
    out->value = rec->value;
    out->value_len = rec->value_len;
    out->headers = NULL;
    out->header_count = rec->header_count > 0 ? (size_t)rec->header_count : 0;
    out->headers_raw = rec->headers;
    out->headers_raw_len = rec->headers_len;
}

int stream_fmt_record_each_header(const stream_fmt_record *rec,
                                  int (*fn)(void *arg, const stream_header *h), void *arg)
{
    if (rec->headers != NULL) {
        for (size_t i = 0; i < rec->header_count; i++) {
            int rc = fn(arg, &rec->headers[i]);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    if (rec->header_count == 0)
        return 0;
    if (rec->headers_raw == NULL || rec->header_count > INT32_MAX)
        return STREAM_ECORRUPT;
    /* The iterator reads from a stream_record; give it one with just the
     * encoded headers. */
    stream_record r;
    memset(&r, 0, sizeof r);
    r.header_count = (int32_t)rec->header_count;
    r.headers = rec->headers_raw;
    r.headers_len = rec->headers_raw_len;
    stream_header_iter it;
    stream_header h;
    stream_header_iter_start(&it, &r);
    int rc;
    while ((rc = stream_header_iter_next(&it, &h)) == 1) {
        rc = fn(arg, &h);
        if (rc != 0)
            return rc;
    }
    return rc < 0 ? STREAM_ECORRUPT : 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the escape whose backslash is at p[*pos]; advances past it. Returns
 * 0, or -1 with a message in why (the escape is unknown, \x lacks two hex
 * digits, or the backslash is the last character).
 */
static int unescape(const char *p, size_t len, size_t *pos, uint8_t *out, char *why,
                    size_t why_len)
{
    size_t i = *pos + 1;
    if (i >= len) {
        snprintf(why, why_len, "a lone '\\' at the end");
        return -1;
    }
    switch (p[i]) {
    case 'n': *out = '\n'; break;
    case 't': *out = '\t'; break;
    case 'r': *out = '\r'; break;
    case '0': *out = '\0'; break;
    case '\\': *out = '\\'; break;
    case 'x': {
        int hi = i + 1 < len ? hexval(p[i + 1]) : -1;
        int lo = i + 2 < len ? hexval(p[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            snprintf(why, why_len, "'\\x' needs two hex digits");
            return -1;
        }
        *out = (uint8_t)(hi << 4 | lo);
        i += 2;
        break;
    }
    default:
        if ((unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7f)
            snprintf(why, why_len, "unknown escape '\\%c' (\\n \\t \\r \\0 \\\\ \\xNN)", p[i]);
        else
            snprintf(why, why_len, "unknown escape '\\' + byte 0x%02x",
                     (unsigned char)p[i]);
        return -1;
    }
    *pos = i + 1;
    return 0;
}

static tok_kind placeholder(char c, bool *ok)
{
    *ok = true;
    switch (c) {
    case 't': return TOK_TOPIC;
    case 'p': return TOK_PARTITION;
    case 'o': return TOK_OFFSET;
    case 'k': return TOK_KEY;
    case 'v':
    case 's': return TOK_VALUE;
    case 'T': return TOK_TIMESTAMP;
    case 'D': return TOK_TIMESTAMP_ISO;
    case 'h': return TOK_HEADERS;
    case 'K': return TOK_KEY_LEN;
    case 'V':
    case 'S': return TOK_VALUE_LEN;
    default: *ok = false; return TOK_LITERAL;
    }
}

/* Appends literal bytes, merging with a literal token just before. */
static void add_literal(stream_format *f, const void *p, size_t n, size_t *lit_len)
{
    memcpy(f->lit + *lit_len, p, n);
    if (f->ntoks > 0 && f->toks[f->ntoks - 1].kind == TOK_LITERAL) {
        f->toks[f->ntoks - 1].len += n;
    } else {
        f->toks[f->ntoks++] = (tok){TOK_LITERAL, *lit_len, n};
    }
    *lit_len += n;
}

int stream_format_compile(const char *fmt, stream_format **out, char *errbuf, size_t errbuf_len)
{
    size_t len = strlen(fmt);
    stream_format *f = calloc(1, sizeof *f);
    if (f == NULL)
        return STREAM_ENOMEM;
    /* Each input character yields at most one token and one literal byte. */
    f->toks = malloc((len + 1) * sizeof *f->toks);
    f->lit = malloc(len + 1);
    if (f->toks == NULL || f->lit == NULL) {
        stream_format_free(f);
        return STREAM_ENOMEM;
    }
    size_t lit_len = 0, pos = 0;
    char why[96];
    while (pos < len) {
        char c = fmt[pos];
        if (c == '%') {
            if (pos + 1 >= len) {
                snprintf(why, sizeof why, "a lone '%%' at the end (write %%%% for a %%)");
                goto bad;
            }
            char d = fmt[pos + 1];
            if (d == '%') {
                add_literal(f, "%", 1, &lit_len);
            } else {
                bool ok;
                tok_kind k = placeholder(d, &ok);
                if (!ok) {
                    if ((unsigned char)d >= 0x20 && (unsigned char)d < 0x7f)
                        snprintf(why, sizeof why,
                                 "unknown placeholder '%%%c' (%%t %%p %%o %%k %%v %%T %%D %%h "
                                 "%%K %%V %%%%)",
                                 d);
                    else
                        snprintf(why, sizeof why, "unknown placeholder '%%' + byte 0x%02x",
                                 (unsigned char)d);
                    goto bad;
                }
                f->toks[f->ntoks++] = (tok){k, 0, 0};
            }
            pos += 2;
        } else if (c == '\\') {
            uint8_t b;
            size_t at = pos;
            if (unescape(fmt, len, &pos, &b, why, sizeof why) != 0) {
                pos = at;
                goto bad;
            }
            add_literal(f, &b, 1, &lit_len);
        } else {
            add_literal(f, &c, 1, &lit_len);
            pos++;
        }
    }
    *out = f;
    return 0;
bad:
    if (errbuf != NULL && errbuf_len > 0)
        snprintf(errbuf, errbuf_len, "bad format: %s at column %zu", why, pos + 1);
    stream_format_free(f);
    return STREAM_EINVAL;
}

void stream_format_free(stream_format *f)
{
    if (f == NULL)
        return;
    free(f->toks);
    free(f->lit);
    free(f->null_text);
    free(f);
}

int stream_format_set_null(stream_format *f, const char *null_text)
{
    char *copy = NULL;
    size_t n = 0;
    if (null_text != NULL) {
        n = strlen(null_text);
        copy = malloc(n + 1);
        if (copy == NULL)
            return STREAM_ENOMEM;
        memcpy(copy, null_text, n + 1);
    }
    free(f->null_text);
    f->null_text = copy;
    f->null_len = n;
    return 0;
}

/* Decimal digits of v, without snprintf. */
static void put_int(stream_buf *out, int64_t v)
{
    char t[24];
    size_t i = sizeof t;
    /* Work on the unsigned magnitude: -INT64_MIN does not fit an int64. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        t[--i] = '-';
    stream_buf_put(out, t + i, sizeof t - i);
}

static void put_bytes_or_null(const stream_format *f, stream_buf *out, const uint8_t *p,
                              int32_t len)
{
    if (len < 0) {
        if (f->null_text != NULL)
            stream_buf_put(out, f->null_text, f->null_len);
    } else {
        stream_buf_put(out, p, (size_t)len);
    }
}

typedef struct header_out {
    stream_buf *out; /* where to write */
    bool first;      /* no header written yet */
} header_out;

static int put_header(void *arg, const stream_header *h)
{
    header_out *ho = arg;
    if (!ho->first)
        stream_buf_put_u8(ho->out, ',');
    ho->first = false;
    stream_buf_put(ho->out, h->name, h->name_len > 0 ? (size_t)h->name_len : 0);
    if (h->value_len >= 0) {
        stream_buf_put_u8(ho->out, '=');
        stream_buf_put(ho->out, h->value, (size_t)h->value_len);
    }
    return 0;
}

int stream_format_apply(const stream_format *f, const stream_fmt_record *rec, stream_buf *out)
{
    for (size_t i = 0; i < f->ntoks; i++) {
        const tok *t = &f->toks[i];
        switch (t->kind) {
        case TOK_LITERAL: stream_buf_put(out, f->lit + t->off, t->len); break;
        case TOK_TOPIC: stream_buf_put(out, rec->topic, rec->topic_len); break;
        case TOK_PARTITION: put_int(out, rec->partition); break;
        case TOK_OFFSET: put_int(out, rec->offset); break;
        case TOK_KEY: put_bytes_or_null(f, out, rec->key, rec->key_len); break;
        case TOK_VALUE: put_bytes_or_null(f, out, rec->value, rec->value_len); break;
        case TOK_TIMESTAMP: put_int(out, rec->timestamp); break;
        case TOK_TIMESTAMP_ISO: stream_time_format_buf(out, rec->timestamp); break;
        case TOK_KEY_LEN: put_int(out, rec->key_len < 0 ? -1 : rec->key_len); break;
        case TOK_VALUE_LEN: put_int(out, rec->value_len < 0 ? -1 : rec->value_len); break;
        case TOK_HEADERS: {
            header_out ho = {out, true};
            int rc = stream_fmt_record_each_header(rec, put_header, &ho);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    return stream_buf_ok(out);
}

int stream_format_parse_delim(const char *p, size_t len, stream_buf *out, char *errbuf,
                              size_t errbuf_len)
{
    char why[96];
    size_t pos = 0;
    if (len == 0) {
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "bad delimiter '': empty");
        return STREAM_EINVAL;
    }
    while (pos < len) {
        if (p[pos] == '\\') {
            uint8_t b;
            size_t at = pos;
            if (unescape(p, len, &pos, &b, why, sizeof why) != 0) {
                if (errbuf != NULL && errbuf_len > 0)
                    snprintf(errbuf, errbuf_len, "bad delimiter '%.*s': %s at column %zu",
                             (int)(len > 32 ? 32 : len), p, why, at + 1);
                return STREAM_EINVAL;
            }
            stream_buf_put_u8(out, b);
        } else {
            stream_buf_put_u8(out, (uint8_t)p[pos++]);
        }
    }
    return stream_buf_ok(out);
}
