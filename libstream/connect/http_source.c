/*
 * http_source.c - the HTTP source: a pulled GET over libcurl's multi
 * interface, the Server-Sent Events parser, the JSON array splitter, and
 * reading a topic's last record for --resume.
 *
 * The GET is driven only inside stream_http_source_read: it runs
 * curl_multi_perform and curl_multi_poll until the write callback has put
 * body bytes into the source's buffer, the transfer ends, or the caller's
 * timeout passes. The write callback takes bytes only while the buffer has
 * room; otherwise it returns CURL_WRITEFUNC_PAUSE and libcurl keeps the
 * bytes (and stops reading the socket) until read resumes it. So the bytes
 * held here never pass buffer_bytes plus one libcurl write (16 KiB).
 *
 * The parsers are plain byte-at-a-time state machines over borrowed input:
 * they keep only the current line/event/element, bounded by their maximum,
 * so a body of any size streams through them.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/internal.h"
#include "stream/error.h"
#include "stream/http.h"
#include "stream/http_source.h"
#include "stream/json.h"
#include "stream/timespec.h"

#define DEFAULT_MAX_BYTES    ((size_t)64 << 20)
#define DEFAULT_BUFFER_BYTES ((size_t)256 << 10)
#define ERR_BODY_BYTES       200 /* the start of an error answer's body kept for the message */

/* ---- Server-Sent Events ---------------------------------------------------- */

void stream_sse_init(stream_sse_parser *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof(*p));
    p->retry_ms = -1;
    p->max_event_bytes = max_event_bytes ? max_event_bytes : DEFAULT_MAX_BYTES;
    stream_buf_init(&p->line);
    stream_buf_init(&p->data);
    stream_buf_init(&p->event_type);
    stream_buf_init(&p->id_buf);
    stream_buf_init(&p->last_id);
}

void stream_sse_release(stream_sse_parser *p)
{
    stream_buf_release(&p->line);
    stream_buf_release(&p->data);
    stream_buf_release(&p->event_type);
    stream_buf_release(&p->id_buf);
    stream_buf_release(&p->last_id);
}

void stream_sse_reset(stream_sse_parser *p)
{
    stream_buf_reset(&p->line);
    stream_buf_reset(&p->data);
    stream_buf_reset(&p->event_type);
    p->after_cr = false;
    p->started = false;
    p->bom_seen = 0;
    p->failed = false;
    /* An id read from a half event is forgotten with it. */
    stream_buf_reset(&p->id_buf);
    if (p->last_id.len)
        stream_buf_put(&p->id_buf, p->last_id.data, p->last_id.len);
}

/* Replaces b's contents with p[0..len) and a NUL. */
static int set_cstr(stream_buf *b, const void *s, size_t len)
{
    stream_buf_reset(b);
    stream_buf_put(b, s, len);
    stream_buf_put_u8(b, 0);
    return stream_buf_ok(b) == 0 ? 0 : STREAM_ENOMEM;
}

int stream_sse_set_last_id(stream_sse_parser *p, const char *id, size_t len)
{
    if (set_cstr(&p->last_id, id, len) != 0 || set_cstr(&p->id_buf, id, len) != 0)
        return STREAM_ENOMEM;
    return 0;
}

static int sse_fail(stream_sse_parser *p, int err, char *errbuf, size_t errbuf_len,
                    const char *what)
{
    p->failed = true;
    if (err == STREAM_ETOOLARGE)
        return stream__fail(err, errbuf, errbuf_len,
                            "an SSE line or event longer than %zu bytes at byte %llu",
                            p->max_event_bytes, (unsigned long long)p->offset);
    return stream__fail(err, errbuf, errbuf_len, "invalid SSE: %s at byte %llu", what,
                        (unsigned long long)p->offset);
}

/* One complete line l[0..n) (without its end). Returns 1 when it
 * dispatched an event into *ev, 0 otherwise, or an error. */
static int sse_line(stream_sse_parser *p, const uint8_t *l, size_t n, stream_sse_event *ev,
                    char *errbuf, size_t errbuf_len)
{
    if (!stream_utf8_valid(l, n))
        return sse_fail(p, STREAM_EBADRECORD, errbuf, errbuf_len, "bytes that are not UTF-8");
    if (n == 0) {
        /* A blank line: the ID read so far becomes the last event ID (also
         * for an event without data), then the event goes out, if it has
         * data. */
        const char *id = p->id_buf.len ? (const char *)p->id_buf.data : "";
        if (set_cstr(&p->last_id, id, strlen(id)) != 0)
            return sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
        if (p->data.len == 0) {
            stream_buf_reset(&p->event_type);
            return 0;
        }
        if (p->event_type.len == 0 && set_cstr(&p->event_type, "", 0) != 0)
            return sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
        ev->data = p->data.data;
        ev->data_len = p->data.len - 1; /* the last LF goes */
        ev->id = (const char *)p->last_id.data;
        ev->event = (const char *)p->event_type.data;
        p->events++;
        return 1;
    }
    if (l[0] == ':')
        return 0; /* a comment */
    const uint8_t *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const uint8_t *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if (p->data.len + vlen > p->max_event_bytes)
            return sse_fail(p, STREAM_ETOOLARGE, errbuf, errbuf_len, NULL);
        stream_buf_put(&p->data, v, vlen);
        stream_buf_put_u8(&p->data, '\n');
        if (stream_buf_ok(&p->data) != 0)
            return sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        if (set_cstr(&p->event_type, v, vlen) != 0)
            return sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    } else if (flen == 2 && memcmp(l, "id", 2) == 0) {
        if (memchr(v, 0, vlen) == NULL && set_cstr(&p->id_buf, v, vlen) != 0)
            return sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    } else if (flen == 5 && memcmp(l, "retry", 5) == 0) {
        int64_t ms = 0;
        size_t i;
        for (i = 0; i < vlen && isdigit(v[i]) && ms < INT64_MAX / 10 - 10; i++)
            ms = ms * 10 + (v[i] - '0');
        if (vlen > 0 && i == vlen)
            p->retry_ms = ms;
    }
    return 0;
}

int stream_sse_feed(stream_sse_parser *p, const uint8_t *in, size_t len, size_t *used,
                    stream_sse_event *ev, char *errbuf, size_t errbuf_len)
{
    static const uint8_t bom[3] = {0xEF, 0xBB, 0xBF};
    *used = 0;
    if (p->failed)
        return stream__fail(STREAM_EBADRECORD, errbuf, errbuf_len,
                            "invalid SSE: the stream failed before");
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        if (!p->started) {
            /* A byte-order mark at the very start is not part of a line. */
            uint8_t c = in[i];
            if (c == bom[p->bom_seen]) {
                i++;
                p->offset++;
                if (++p->bom_seen == 3)
                    p->started = true;
                continue;
            }
            /* A partial mark was a line's start after all. */
            p->started = true;
            stream_buf_put(&p->line, bom, (size_t)p->bom_seen);
        }
        if (p->after_cr && in[i] == '\n') {
            i++; /* the LF of a CRLF */
            p->offset++;
            p->after_cr = false;
            continue;
        }
        p->after_cr = false;
        /* The rest of the line in this piece. */
        size_t j = i;
        while (j < len && in[j] != '\n' && in[j] != '\r')
            j++;
        size_t span = j - i;
        if (p->line.len + span > p->max_event_bytes) {
            p->offset += span;
            rc = sse_fail(p, STREAM_ETOOLARGE, errbuf, errbuf_len, NULL);
            i = j;
            break;
        }
        if (j == len) {
            /* No line end yet: keep the start of the line. */
            stream_buf_put(&p->line, in + i, span);
            p->offset += span;
            i = j;
            if (stream_buf_ok(&p->line) != 0)
                rc = sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
            break;
        }
        p->offset += span + 1;
        p->after_cr = in[j] == '\r';
        if (p->line.len == 0) {
            /* The whole line is in this piece: read it where it is. */
            rc = sse_line(p, in + i, span, ev, errbuf, errbuf_len);
        } else {
            stream_buf_put(&p->line, in + i, span);
            rc = stream_buf_ok(&p->line) != 0
                     ? sse_fail(p, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory")
                     : sse_line(p, p->line.data, p->line.len, ev, errbuf, errbuf_len);
            stream_buf_reset(&p->line);
        }
        i = j + 1;
    }
    *used = i;
    if (rc == 1) {
        /* The event's data and type were handed out: the next event starts
         * afresh. Their bytes stay where they are until the next call
         * writes over them, so *ev stays valid until then. */
        p->data.len = 0;
        p->event_type.len = 0;
    }
    return rc;
}

/* ---- the JSON array splitter ------------------------------------------------- */

enum { JA_BEFORE = 0, JA_IN, JA_AFTER, JA_FAILED };

void stream_json_array_init(stream_json_array_splitter *s, size_t max_element_bytes)
{
    memset(s, 0, sizeof(*s));
    s->max_element_bytes = max_element_bytes ? max_element_bytes : DEFAULT_MAX_BYTES;
    stream_buf_init(&s->elem);
}

void stream_json_array_release(stream_json_array_splitter *s)
{
    stream_buf_release(&s->elem);
    if (s->doc) {
        stream_json_doc_release(s->doc);
        free(s->doc);
        s->doc = NULL;
    }
}

static int ja_fail(stream_json_array_splitter *s, int err, char *errbuf, size_t errbuf_len,
                   const char *fmt, const char *detail)
{
    s->state = JA_FAILED;
    if (err == STREAM_ETOOLARGE)
        return stream__fail(err, errbuf, errbuf_len,
                            "JSON array element %llu is longer than %zu bytes",
                            (unsigned long long)s->elements + 1, s->max_element_bytes);
    char what[400];
    snprintf(what, sizeof(what), fmt, detail ? detail : "");
    return stream__fail(err, errbuf, errbuf_len, "malformed JSON array: %s at byte %llu", what,
                        (unsigned long long)s->offset);
}

static bool json_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The element in s->elem is complete: check it with the JSON parser. */
static int ja_element_done(stream_json_array_splitter *s, const uint8_t **elem, size_t *elem_len,
                           char *errbuf, size_t errbuf_len)
{
    if (s->doc == NULL) {
        s->doc = malloc(sizeof(stream_json_doc));
        if (s->doc == NULL)
            return ja_fail(s, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory%s", NULL);
        stream_json_doc_init(s->doc);
        ((stream_json_doc *)s->doc)->max_bytes = s->max_element_bytes;
    }
    const stream_json_value *root;
    char why[300];
    int rc =
        stream_json_parse(s->doc, (const char *)s->elem.data, s->elem.len, &root, why, sizeof(why));
    if (rc == STREAM_ENOMEM)
        return ja_fail(s, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory%s", NULL);
    if (rc != 0) {
        char d[360];
        snprintf(d, sizeof(d), "element %llu: %s", (unsigned long long)s->elements + 1, why);
        return ja_fail(s, STREAM_EBADRECORD, errbuf, errbuf_len, "%s", d);
    }
    s->in_element = false;
    s->want_value = false;
    s->elements++;
    *elem = s->elem.data;
    *elem_len = s->elem.len;
    return 1;
}

int stream_json_array_feed(stream_json_array_splitter *s, const uint8_t *in, size_t len,
                           size_t *used, const uint8_t **elem, size_t *elem_len, char *errbuf,
                           size_t errbuf_len)
{
    *used = 0;
    if (s->state == JA_FAILED)
        return stream__fail(STREAM_EBADRECORD, errbuf, errbuf_len,
                            "malformed JSON array: the body failed before");
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        uint8_t c = in[i];
        if (s->in_element) {
            bool scalar = s->depth == 0 && !s->in_string;
            /* A scalar ends at the first byte that cannot be part of it;
             * that byte is then read again as a separator. */
            if (scalar && (c == ',' || c == ']' || json_space(c))) {
                rc = ja_element_done(s, elem, elem_len, errbuf, errbuf_len);
                break;
            }
            i++;
            s->offset++;
            if (s->elem.len >= s->max_element_bytes) {
                rc = ja_fail(s, STREAM_ETOOLARGE, errbuf, errbuf_len, NULL, NULL);
                break;
            }
            stream_buf_put_u8(&s->elem, c);
            if (s->in_string) {
                if (s->escape)
                    s->escape = false;
                else if (c == '\\')
                    s->escape = true;
                else if (c == '"') {
                    s->in_string = false;
                    if (s->depth == 0) {
                        rc = ja_element_done(s, elem, elem_len, errbuf, errbuf_len);
                        break;
                    }
                }
            } else if (c == '"') {
                s->in_string = true;
            } else if (c == '[' || c == '{') {
                if (++s->depth > STREAM_JSON_DEFAULT_MAX_DEPTH) {
                    rc = ja_fail(s, STREAM_EBADRECORD, errbuf, errbuf_len,
                                 "element nested deeper than 64%s", NULL);
                    break;
                }
            } else if (c == ']' || c == '}') {
                if (s->depth == 0) {
                    rc = ja_fail(s, STREAM_EBADRECORD, errbuf, errbuf_len, "unbalanced '%s'",
                                 c == ']' ? "]" : "}");
                    break;
                }
                if (--s->depth == 0) {
                    rc = ja_element_done(s, elem, elem_len, errbuf, errbuf_len);
                    break;
                }
            }
            if (stream_buf_ok(&s->elem) != 0)
                rc = ja_fail(s, STREAM_ENOMEM, errbuf, errbuf_len, "out of memory%s", NULL);
            continue;
        }
        i++;
        s->offset++;
        if (json_space(c))
            continue;
        switch (s->state) {
        case JA_BEFORE:
            if (c != '[') {
                rc = ja_fail(s, STREAM_EBADRECORD, errbuf, errbuf_len,
                             "expected '[' (the body is not a JSON array)%s", NULL);
                break;
            }
            s->state = JA_IN;
            s->want_value = true;
            break;
        case JA_IN:
            if (c == ']' && (s->want_value ? s->elements == 0 : true)) {
                s->state = JA_AFTER;
                break;
            }
            if (c == ',' && !s->want_value) {
                s->want_value = true;
                break;
            }
            if (!s->want_value || c == ',' || c == ']') {
                rc = ja_fail(s, STREAM_EBADRECORD, errbuf, errbuf_len,
                             s->want_value ? "expected a value%s" : "expected ',' or ']'%s", NULL);
                break;
            }
            /* An element starts with this byte. */
            stream_buf_reset(&s->elem);
            stream_buf_put_u8(&s->elem, c);
            s->in_element = true;
            s->depth = 0;
            s->in_string = c == '"';
            s->escape = false;
            if (c == '[' || c == '{')
                s->depth = 1;
            break;
        case JA_AFTER:
            rc = ja_fail(s, STREAM_EBADRECORD, errbuf, errbuf_len,
                         "characters after the array's ']'%s", NULL);
            break;
        }
    }
    *used = i;
    return rc;
}

int stream_json_array_finish(stream_json_array_splitter *s, char *errbuf, size_t errbuf_len)
{
    if (s->state == JA_AFTER)
        return 0;
    if (s->state == JA_FAILED)
        return stream__fail(STREAM_EBADRECORD, errbuf, errbuf_len,
                            "malformed JSON array: the body failed before");
    s->state = JA_FAILED;
    if (s->offset == 0)
        return stream__fail(STREAM_EBADRECORD, errbuf, errbuf_len,
                            "malformed JSON array: the body is empty");
    return stream__fail(STREAM_EBADRECORD, errbuf, errbuf_len,
                        "malformed JSON array: the body ends inside the array after %llu "
                        "elements (byte %llu)",
                        (unsigned long long)s->elements, (unsigned long long)s->offset);
}

/* ---- the HTTP client -------------------------------------------------------- */

struct stream_http_source {
    CURLM *multi;                    /* the multi handle driving e */
    CURL *e;                         /* the one easy handle, reused for every request */
    bool attached;                   /* e is in multi (a request is running or finished) */
    bool done;                       /* the transfer finished (result in done_rc) */
    CURLcode done_rc;                /* libcurl's result of the finished transfer */
    bool paused;                     /* the write callback paused the transfer */
    char *url;                       /* conf.url, owned */
    bool conditional;                /* conf.conditional */
    struct curl_slist *base_headers; /* conf.http's -H headers, copied */
    struct curl_slist *req_headers;  /* this request's headers (base + conditional + id) */
    int idle_timeout_ms;             /* conf.idle_timeout_ms */
    int64_t last_byte_ns;            /* when bytes last came (idle timeout) */
    uint8_t *buf;                    /* body bytes not yet read, from pos to len */
    size_t cap, pos, len;            /* buf's size and the unread span */
    stream_buf err_body;             /* the start of a non-2xx answer's body */
    char *etag;                      /* the last 2xx answer's ETag, or NULL */
    char *last_modified;             /* the last 2xx answer's Last-Modified, or NULL */
    char *new_etag;                  /* this answer's ETag, kept once it succeeds */
    char *new_last_modified;         /* this answer's Last-Modified, likewise */
    char reason[128];                /* this answer's status line reason */
    char curl_err[CURL_ERROR_SIZE];  /* libcurl's detail for the last failure */
    stream_http_response resp;       /* what stream_http_source_response returns */
};

void stream_http_source_conf_init(stream_http_source_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->buffer_bytes = DEFAULT_BUFFER_BYTES;
}

static bool ok_status(long s)
{
    return (s >= 200 && s < 300) || s == 304;
}

/* Takes body bytes while there is room; pauses the transfer otherwise. */
static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
    stream_http_source *src = opaque;
    size_t bytes = size * n;
    long status = 0;
    curl_easy_getinfo(src->e, CURLINFO_RESPONSE_CODE, &status);
    src->resp.status = status;
    src->last_byte_ns = stream__mono_ns();
    if (!ok_status(status)) {
        /* An error answer's body is kept only for the message. */
        if (src->err_body.len < ERR_BODY_BYTES)
            stream_buf_put(&src->err_body, p,
                           bytes < ERR_BODY_BYTES - src->err_body.len
                               ? bytes
                               : ERR_BODY_BYTES - src->err_body.len);
        return bytes;
    }
    if (src->pos == src->len)
        src->pos = src->len = 0;
    if (src->cap - src->len < bytes && src->pos > 0) {
        memmove(src->buf, src->buf + src->pos, src->len - src->pos);
        src->len -= src->pos;
        src->pos = 0;
    }
    if (src->cap - src->len < bytes) {
        if (src->len > 0) {
            src->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
        /* One write larger than the whole buffer (conf.buffer_bytes below
         * libcurl's 16 KiB): grow to it rather than stall. */
        uint8_t *b = realloc(src->buf, bytes);
        if (b == NULL)
            return 0; /* libcurl fails the transfer (CURLE_WRITE_ERROR) */
        src->buf = b;
        src->cap = bytes;
    }
    memcpy(src->buf + src->len, p, bytes);
    src->len += bytes;
    return bytes;
}

static char *dup_header_value(const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    return stream__strndup(v, n);
}

/* Header lines: the status line (again after a redirect or 100), and the
 * fields the source uses. */
static size_t on_header(char *p, size_t size, size_t n, void *opaque)
{
    stream_http_source *src = opaque;
    size_t bytes = size * n;
    if (bytes > 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response: forget the previous one's fields. */
        src->resp.event_stream = false;
        src->resp.retry_after_ms = -1;
        free(src->new_etag);
        free(src->new_last_modified);
        src->new_etag = src->new_last_modified = NULL;
        src->reason[0] = '\0';
        const char *sp = memchr(p, ' ', bytes);
        if (sp) {
            sp = memchr(sp + 1, ' ', bytes - (size_t)(sp + 1 - p));
            if (sp) {
                size_t rl = bytes - (size_t)(sp + 1 - p);
                while (rl > 0 && (sp[rl] == '\r' || sp[rl] == '\n'))
                    rl--;
                if (rl >= sizeof(src->reason))
                    rl = sizeof(src->reason) - 1;
                memcpy(src->reason, sp + 1, rl);
                src->reason[rl] = '\0';
                char *e = strpbrk(src->reason, "\r\n");
                if (e)
                    *e = '\0';
            }
        }
        return bytes;
    }
    const char *colon = memchr(p, ':', bytes);
    if (colon == NULL)
        return bytes;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = bytes - nl - 1;
    if (nl == 12 && strncasecmp(p, "content-type", 12) == 0) {
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        src->resp.event_stream = vl >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    } else if (nl == 4 && strncasecmp(p, "etag", 4) == 0) {
        free(src->new_etag);
        src->new_etag = dup_header_value(v, vl);
    } else if (nl == 13 && strncasecmp(p, "last-modified", 13) == 0) {
        free(src->new_last_modified);
        src->new_last_modified = dup_header_value(v, vl);
    } else if (nl == 11 && strncasecmp(p, "retry-after", 11) == 0) {
        int64_t ms;
        if (stream_http_retry_after_ms(v, vl, (int64_t)time(NULL) * 1000, &ms) == 0)
            src->resp.retry_after_ms = ms;
    }
    return bytes;
}

/* Stops watching idle transfers: libcurl's progress callback, used as a
 * timer; a non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *opaque, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    stream_http_source *src = opaque;
    if (src->idle_timeout_ms <= 0 || src->paused)
        return 0;
    return stream__mono_ns() - src->last_byte_ns > (int64_t)src->idle_timeout_ms * 1000000;
}

int stream_http_source_new(const stream_http_source_conf *conf, stream_http_source **out,
                           char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    if (conf->url == NULL || *conf->url == '\0')
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no URL given");
    if (strncasecmp(conf->url, "http://", 7) != 0 && strncasecmp(conf->url, "https://", 8) != 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "'%s' is not an http:// or https:// URL", conf->url);
    int rc = stream_http_global_init(errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    stream_http_source *src = calloc(1, sizeof(*src));
    if (src == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    stream_buf_init(&src->err_body);
    src->resp.retry_after_ms = -1;
    src->url = strdup(conf->url);
    src->conditional = conf->conditional;
    src->idle_timeout_ms = conf->idle_timeout_ms;
    src->cap = conf->buffer_bytes ? conf->buffer_bytes : DEFAULT_BUFFER_BYTES;
    src->buf = malloc(src->cap);
    src->multi = curl_multi_init();
    src->e = curl_easy_init();
    stream_http_conf defaults;
    stream_http_conf_init(&defaults);
    const stream_http_conf *http = conf->http ? conf->http : &defaults;
    if (src->url == NULL || src->buf == NULL || src->multi == NULL || src->e == NULL ||
        stream_http_conf_headers(http, &src->base_headers) != 0) {
        stream_http_source_free(src);
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    }
    CURL *e = src->e;
    /* TLS, the connect timeout and the User-Agent as every connector sets
     * them; then what a source differs in: no limit on the whole exchange
     * (a --follow stream lasts as long as it lasts; idle_timeout_ms watches
     * it instead), redirects followed, any encoding libcurl decodes. */
    if ((rc = stream_http_easy_setup(http, e,
                                     conf->agent ? conf->agent : "libstream/" STREAM_VERSION,
                                     errbuf, errbuf_len)) != 0) {
        stream_http_source_free(src);
        return rc;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(e, CURLOPT_URL, src->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl decodes */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, src);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, src);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, src);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, src->curl_err);
    *out = src;
    return 0;
}

void stream_http_source_free(stream_http_source *src)
{
    if (src == NULL)
        return;
    if (src->attached)
        curl_multi_remove_handle(src->multi, src->e);
    if (src->e)
        curl_easy_cleanup(src->e);
    if (src->multi)
        curl_multi_cleanup(src->multi);
    curl_slist_free_all(src->base_headers);
    curl_slist_free_all(src->req_headers);
    stream_buf_release(&src->err_body);
    free(src->buf);
    free(src->url);
    free(src->etag);
    free(src->last_modified);
    free(src->new_etag);
    free(src->new_last_modified);
    free(src);
}

/* Appends "Name: value" to the request's header list. */
static int add_header(stream_http_source *src, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = malloc(n);
    if (h == NULL)
        return STREAM_ENOMEM;
    snprintf(h, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(src->req_headers, h);
    free(h);
    if (l == NULL)
        return STREAM_ENOMEM;
    src->req_headers = l;
    return 0;
}

int stream_http_source_start(stream_http_source *src, const char *last_event_id, char *errbuf,
                             size_t errbuf_len)
{
    if (src->attached) {
        curl_multi_remove_handle(src->multi, src->e);
        src->attached = false;
    }
    curl_slist_free_all(src->req_headers);
    src->req_headers = NULL;
    int rc = 0;
    for (struct curl_slist *h = src->base_headers; h && rc == 0; h = h->next) {
        struct curl_slist *l = curl_slist_append(src->req_headers, h->data);
        if (l == NULL)
            rc = STREAM_ENOMEM;
        else
            src->req_headers = l;
    }
    if (rc == 0 && src->conditional && src->etag)
        rc = add_header(src, "If-None-Match", src->etag);
    if (rc == 0 && src->conditional && src->last_modified)
        rc = add_header(src, "If-Modified-Since", src->last_modified);
    if (rc == 0 && last_event_id && *last_event_id)
        rc = add_header(src, "Last-Event-ID", last_event_id);
    if (rc != 0)
        return stream__fail(rc, errbuf, errbuf_len, "out of memory");
    curl_easy_setopt(src->e, CURLOPT_HTTPHEADER, src->req_headers);
    src->pos = src->len = 0;
    src->done = false;
    src->paused = false;
    src->curl_err[0] = '\0';
    stream_buf_reset(&src->err_body);
    memset(&src->resp, 0, sizeof(src->resp));
    src->resp.retry_after_ms = -1;
    src->last_byte_ns = stream__mono_ns();
    if (curl_multi_add_handle(src->multi, src->e) != CURLM_OK)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "cannot start a transfer");
    src->attached = true;
    return 0;
}

/* The finished transfer's outcome: 0 (success) or an error with errbuf. */
static int finish(stream_http_source *src, char *errbuf, size_t errbuf_len)
{
    long status = 0;
    curl_easy_getinfo(src->e, CURLINFO_RESPONSE_CODE, &status);
    src->resp.status = status;
    if (src->done_rc == CURLE_ABORTED_BY_CALLBACK) {
        src->resp.retryable = true;
        return stream__fail(STREAM_ETIMEDOUT, errbuf, errbuf_len,
                            "GET %s: nothing received for %d ms", src->url, src->idle_timeout_ms);
    }
    if (src->done_rc != CURLE_OK) {
        int err = stream_http_curl_error(src->done_rc);
        src->resp.retryable = stream_http_curl_retryable(src->done_rc);
        const char *detail = src->curl_err[0] ? src->curl_err : curl_easy_strerror(src->done_rc);
        const char *hint = err == STREAM_EPROTO ? " (--cacert FILE names a CA to trust; "
                                                  "--insecure skips verification)"
                                                : "";
        return stream__fail(err, errbuf, errbuf_len, "GET %s: %s%s", src->url, detail, hint);
    }
    if (!ok_status(status)) {
        src->resp.retryable = stream_http_status_retryable(status);
        /* The start of the body, on one line, so a user sees the server's why. */
        char body[ERR_BODY_BYTES + 1];
        size_t n = 0;
        for (size_t i = 0; i < src->err_body.len && n < ERR_BODY_BYTES; i++) {
            uint8_t c = src->err_body.data[i];
            body[n++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
        }
        while (n > 0 && body[n - 1] == ' ')
            n--;
        body[n] = '\0';
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len, "GET %s: HTTP %ld%s%s%s%s", src->url,
                            status, src->reason[0] ? " " : "", src->reason, n ? ": " : "", body);
    }
    if (status != 304) {
        /* A good answer: its validators (or their absence) are what the
         * next poll sends. */
        free(src->etag);
        free(src->last_modified);
        src->etag = src->new_etag;
        src->last_modified = src->new_last_modified;
        src->new_etag = src->new_last_modified = NULL;
    }
    return 0;
}

int stream_http_source_read(stream_http_source *src, void *buf, size_t cap, int timeout_ms,
                            char *errbuf, size_t errbuf_len)
{
    if (!src->attached)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no request started");
    int64_t deadline = stream__mono_ns() + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
    for (;;) {
        if (src->pos < src->len) {
            size_t n = src->len - src->pos;
            if (n > cap)
                n = cap;
            if (n > INT32_MAX)
                n = INT32_MAX;
            memcpy(buf, src->buf + src->pos, n);
            src->pos += n;
            src->resp.body_bytes += n;
            return (int)n;
        }
        if (src->done)
            return finish(src, errbuf, errbuf_len);
        if (src->paused) {
            /* The buffer is empty now: let libcurl deliver what it held. */
            src->paused = false;
            src->last_byte_ns = stream__mono_ns();
            curl_easy_pause(src->e, CURLPAUSE_CONT);
            if (src->pos < src->len)
                continue;
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(src->multi, &running);
        if (mc != CURLM_OK)
            return stream__fail(STREAM_EIO, errbuf, errbuf_len, "GET %s: %s", src->url,
                                curl_multi_strerror(mc));
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(src->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == src->e) {
                src->done = true;
                src->done_rc = m->data.result;
            }
        }
        if (src->pos < src->len || src->done)
            continue;
        int64_t now = stream__mono_ns();
        if (now >= deadline)
            return STREAM_EAGAIN;
        int wait_ms = (int)((deadline - now + 999999) / 1000000);
        if (wait_ms > 100)
            wait_ms = 100; /* the idle timer runs from libcurl's own calls */
        mc = curl_multi_poll(src->multi, NULL, 0, wait_ms, NULL);
        if (mc != CURLM_OK)
            return stream__fail(STREAM_EIO, errbuf, errbuf_len, "GET %s: %s", src->url,
                                curl_multi_strerror(mc));
    }
}

const stream_http_response *stream_http_source_response(const stream_http_source *src)
{
    return &src->resp;
}

/* ---- resuming ---------------------------------------------------------------- */

int stream_http_source_last_header(stream_client *c, const char *topic, int32_t partition,
                                   const char *header, int timeout_ms, char **out, char *errbuf,
                                   size_t errbuf_len)
{
    *out = NULL;
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.max_wait_ms = 100;
    stream_consumer *co;
    int rc = stream_consumer_new(c, &cc, &co, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    /* The last record: from one before the end to the end as it is now. */
    stream_offset_spec spec = {.start = {STREAM_OFFSET_FROM_END, 1}, .end = {STREAM_OFFSET_END, 0}};
    rc = stream_consumer_assign(co, topic, partition, &spec, errbuf, errbuf_len);
    int64_t deadline = stream__mono_ns() + (int64_t)timeout_ms * 1000000;
    size_t hlen = strlen(header);
    while (rc == 0 && !stream_consumer_done(co)) {
        if (stream__mono_ns() > deadline) {
            rc = stream__fail(STREAM_ETIMEDOUT, errbuf, errbuf_len,
                              "cannot read the last record of '%s' partition %d in %d ms", topic,
                              (int)partition, timeout_ms);
            break;
        }
        stream_consumer_event ev;
        int n = stream_consumer_poll(co, 100, &ev);
        if (n < 0) {
            rc = stream__fail(n, errbuf, errbuf_len, "reading '%s': %s", topic, stream_strerror(n));
            break;
        }
        if (n == 0)
            continue;
        if (ev.type == STREAM_EVENT_ERROR) {
            rc = stream__fail(ev.err, errbuf, errbuf_len, "%s", ev.msg ? ev.msg : "");
            break;
        }
        if (ev.type != STREAM_EVENT_RECORD)
            continue;
        /* The last matching header of the last record wins. */
        free(*out);
        *out = NULL;
        stream_header_iter it;
        stream_header h;
        stream_header_iter_start(&it, &ev.record);
        while (stream_header_iter_next(&it, &h) == 1) {
            if ((size_t)h.name_len != hlen || memcmp(h.name, header, hlen) != 0 || h.value_len < 0)
                continue;
            free(*out);
            *out = stream__strndup((const char *)h.value, (size_t)h.value_len);
            if (*out == NULL)
                rc = stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
        }
    }
    stream_consumer_free(co);
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
