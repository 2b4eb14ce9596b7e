/*
 * cli.c - helpers the command-line programs share (see cli.h): connecting
 * with an actionable message, option values, the delimited-input splitter,
 * and writing output that may be a closed pipe.
 *
 * The splitter is the hot path of `stream-pub`: it reads stdin in 1 MiB
 * chunks into one buffer and hands out records as pointers into it, so a
 * million short lines cost a handful of read(2) calls and no allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "stream/cli.h"
#include "stream/error.h"
#include "base/internal.h"

#define DEFAULT_MAX_RECORD ((size_t)64 << 20)
/* Make room before a read when less than this is free at the buffer's end:
 * tiny reads would cost a syscall each. */
#define MIN_READ ((size_t)64 << 10)

/* ---- connecting ------------------------------------------------------------ */

int stream_cli_connect(const char *brokers, const char *client_name, int timeout_ms,
                       stream_client **out, char *errbuf, size_t errbuf_len)
{
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    if (brokers != NULL)
        conf.brokers = brokers;
    if (client_name != NULL)
        conf.client_name = client_name;
    return stream_cli_connect_conf(&conf, timeout_ms, out, errbuf, errbuf_len);
}

int stream_cli_connect_conf(const stream_client_conf *given, int timeout_ms, stream_client **out,
                            char *errbuf, size_t errbuf_len)
{
    stream_client_conf conf = *given;
    if (timeout_ms > 0) {
        conf.connect_timeout_ms = timeout_ms;
        conf.request_timeout_ms = timeout_ms;
    }
    *out = NULL;
    stream_client *c;
    int rc = stream_client_new(&conf, &c, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    char why[512] = "";
    rc = stream_client_connect(c, -1, why, sizeof(why));
    if (rc != 0) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "cannot connect to %s: %s", conf.brokers,
                     stream_strerror(rc));
        /* The one failure a newcomer meets first: say what to check. */
        stream__errf(errbuf, errbuf_len, "%s%s", why,
                     rc == STREAM_ECONNREFUSED ? " (is stream-broker running?)" : "");
        stream_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- option values --------------------------------------------------------- */

int stream_cli_parse_acks(const char *s, int *out, char *errbuf, size_t errbuf_len)
{
    if (strcmp(s, "0") == 0)
        *out = 0;
    else if (strcmp(s, "1") == 0)
        *out = 1;
    else if (strcasecmp(s, "all") == 0 || strcmp(s, "-1") == 0)
        *out = STREAM_ACKS_ALL;
    else {
        stream__errf(errbuf, errbuf_len, "bad acks '%s': expected 0, 1 or all", s);
        return STREAM_EINVAL;
    }
    return 0;
}

/* Inserts id into the sorted list unless it is there. */
static int partitions_add(stream_cli_partitions *list, int32_t id)
{
    size_t i = 0;
    while (i < list->count && list->ids[i] < id)
        i++;
    if (i < list->count && list->ids[i] == id)
        return 0;
    int32_t *ids = realloc(list->ids, (list->count + 1) * sizeof(*ids));
    if (ids == NULL)
        return STREAM_ENOMEM;
    memmove(ids + i + 1, ids + i, (list->count - i) * sizeof(*ids));
    ids[i] = id;
    list->ids = ids;
    list->count++;
    return 0;
}

int stream_cli_partitions_parse(stream_cli_partitions *list, const char *s, char *errbuf,
                                size_t errbuf_len)
{
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char item[24];
        bool ok = n > 0 && n < sizeof(item);
        long long v = -1;
        if (ok) {
            memcpy(item, p, n);
            item[n] = '\0';
            char *end;
            errno = 0;
            v = strtoll(item, &end, 10);
            ok = errno == 0 && *end == '\0' && item[0] >= '0' && item[0] <= '9' && v >= 0 &&
                 v <= INT32_MAX;
        }
        if (!ok) {
            stream__errf(errbuf, errbuf_len,
                         "bad partition '%.*s' in '%s': expected a number from 0 "
                         "to %d",
                         (int)(n < 64 ? n : 64), p, s, INT32_MAX);
            return STREAM_EINVAL;
        }
        if (partitions_add(list, (int32_t)v) != 0)
            return STREAM_ENOMEM;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

void stream_cli_partitions_release(stream_cli_partitions *list)
{
    free(list->ids);
    list->ids = NULL;
    list->count = 0;
}

int stream_cli_parse_header(const char *s, stream_header *out, char *errbuf, size_t errbuf_len)
{
    const char *eq = strchr(s, '=');
    size_t name_len = eq ? (size_t)(eq - s) : strlen(s);
    if (name_len == 0) {
        stream__errf(errbuf, errbuf_len, "bad header '%s': expected name=value", s);
        return STREAM_EINVAL;
    }
    if (name_len > INT32_MAX || (eq && strlen(eq + 1) > INT32_MAX)) {
        stream__errf(errbuf, errbuf_len, "bad header: too long");
        return STREAM_EINVAL;
    }
    out->name = (const uint8_t *)s;
    out->name_len = (int32_t)name_len;
    if (eq) {
        out->value = (const uint8_t *)eq + 1;
        out->value_len = (int32_t)strlen(eq + 1);
    } else {
        out->value = NULL;
        out->value_len = -1;
    }
    return 0;
}

bool stream_cli_split_key(const uint8_t *p, size_t len, const uint8_t *delim, size_t delim_len,
                          const uint8_t **key, size_t *key_len, const uint8_t **value,
                          size_t *value_len)
{
    if (delim_len == 0 || len < delim_len)
        return false;
    const uint8_t *q = memmem(p, len, delim, delim_len);
    if (q == NULL)
        return false;
    *key = p;
    *key_len = (size_t)(q - p);
    *value = q + delim_len;
    *value_len = len - *key_len - delim_len;
    return true;
}

/* ---- the splitter ---------------------------------------------------------- */

void stream_cli_splitter_init(stream_cli_splitter *s, const void *delim, size_t delim_len,
                              size_t max_record_bytes)
{
    memset(s, 0, sizeof(*s));
    if (delim_len > STREAM_CLI_DELIM_MAX)
        delim_len = STREAM_CLI_DELIM_MAX;
    if (delim_len > 0)
        memcpy(s->delim, delim, delim_len);
    s->delim_len = delim_len;
    s->max_record_bytes = max_record_bytes ? max_record_bytes : DEFAULT_MAX_RECORD;
}

void stream_cli_splitter_release(stream_cli_splitter *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = s->len = s->pos = s->scanned = 0;
}

/* Makes at least MIN_READ bytes free after len: drop consumed bytes first,
 * grow only when the pending record fills the buffer. */
static int make_room(stream_cli_splitter *s)
{
    if (s->pos == s->len) {
        s->pos = s->len = 0;
    }
    if (s->cap - s->len >= MIN_READ)
        return 0;
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
        if (s->cap - s->len >= MIN_READ)
            return 0;
    }
    size_t cap = s->cap ? s->cap * 2 : STREAM_CLI_SPLITTER_CHUNK;
    if (cap < s->cap)
        return STREAM_ENOMEM;
    uint8_t *b = realloc(s->buf, cap);
    if (b == NULL)
        return STREAM_ENOMEM;
    s->buf = b;
    s->cap = cap;
    return 0;
}

int stream_cli_splitter_space(stream_cli_splitter *s, uint8_t **p, size_t *room)
{
    if (make_room(s) != 0)
        return STREAM_ENOMEM;
    *p = s->buf + s->len;
    *room = s->cap - s->len;
    return 0;
}

void stream_cli_splitter_commit(stream_cli_splitter *s, size_t n)
{
    s->len += n;
}

void stream_cli_splitter_end(stream_cli_splitter *s)
{
    s->eof = true;
}

int stream_cli_splitter_fill(stream_cli_splitter *s, int fd, char *errbuf, size_t errbuf_len)
{
    if (s->eof)
        return 0;
    uint8_t *p;
    size_t room;
    if (stream_cli_splitter_space(s, &p, &room) != 0) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    ssize_t n = read(fd, p, room);
    if (n > 0) {
        stream_cli_splitter_commit(s, (size_t)n);
        return (int)n;
    }
    if (n == 0) {
        stream_cli_splitter_end(s);
        return 0;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        return STREAM_EAGAIN;
    int e = errno;
    stream__errf(errbuf, errbuf_len, "cannot read %s: %s", fd == 0 ? "standard input" : "input",
                 strerror(e));
    return stream_err_from_errno(e);
}

static int too_large(stream_cli_splitter *s, char *errbuf, size_t errbuf_len)
{
    stream__errf(errbuf, errbuf_len, "record %llu is longer than %zu bytes",
                 (unsigned long long)s->records + 1, s->max_record_bytes);
    return STREAM_ETOOLARGE;
}

int stream_cli_splitter_next(stream_cli_splitter *s, const uint8_t **rec, size_t *len, char *errbuf,
                             size_t errbuf_len)
{
    if (s->done)
        return 0;
    size_t pending = s->len - s->pos;
    if (s->delim_len == 0) {
        if (pending > s->max_record_bytes)
            return too_large(s, errbuf, errbuf_len);
        if (!s->eof)
            return 0;
        *rec = s->buf ? s->buf + s->pos : (const uint8_t *)"";
        *len = pending;
        s->pos = s->len;
        s->done = true;
        s->records++;
        return 1;
    }
    if (s->buf == NULL) { /* nothing read yet (and NULL + 0 is undefined) */
        if (s->eof)
            s->done = true;
        return 0;
    }
    const uint8_t *start = s->buf + s->pos;
    const uint8_t *q = NULL;
    if (pending > s->scanned) {
        q = s->delim_len == 1
                ? memchr(start + s->scanned, s->delim[0], pending - s->scanned)
                : memmem(start + s->scanned, pending - s->scanned, s->delim, s->delim_len);
    }
    if (q != NULL) {
        size_t n = (size_t)(q - start);
        if (n > s->max_record_bytes)
            return too_large(s, errbuf, errbuf_len);
        *rec = start;
        *len = n;
        s->pos += n + s->delim_len;
        s->scanned = 0;
        s->records++;
        return 1;
    }
    /* No delimiter starts before the last delim_len - 1 bytes: a longer one
     * may still complete with the next read. */
    s->scanned = pending >= s->delim_len ? pending - (s->delim_len - 1) : 0;
    if (pending > s->max_record_bytes)
        return too_large(s, errbuf, errbuf_len);
    if (!s->eof)
        return 0;
    s->done = true;
    if (pending == 0)
        return 0;
    *rec = start;
    *len = pending;
    s->pos = s->len;
    s->records++;
    return 1;
}

/* ---- output ------------------------------------------------------------------ */

int stream_cli_write_all(int fd, const void *p, size_t len, char *errbuf, size_t errbuf_len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE)
                return STREAM_ECLOSED;
            int e = errno;
            stream__errf(errbuf, errbuf_len, "cannot write %s: %s",
                         fd == 1 ? "standard output" : "output", strerror(e));
            int rc = stream_err_from_errno(e);
            return rc == STREAM_ECONNRESET || rc == STREAM_EAGAIN ? STREAM_EIO : rc;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}
