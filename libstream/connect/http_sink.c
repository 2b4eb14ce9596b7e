/*
 * http_sink.c - records from a consumer to an HTTP endpoint (http_sink.h).
 *
 * The idea: each partition has a queue of batches, and at most one of them
 * -- its head -- is on the wire. A batch leaves the queue only when the
 * endpoint has taken it (2xx, or its records are safe in the dead-letter
 * topic), and only then is the partition's offset after it stored for the
 * group's next commit. So order per partition holds through retries, the
 * stored offset never passes a record that was not delivered, and
 * parallelism comes from partitions: up to max_in_flight of them at once,
 * over connections libcurl's multi handle keeps open (and multiplexes on
 * HTTP/2).
 *
 * One thread, one loop: take what the consumer has ready (while less than
 * max_buffered_bytes is held), close batches that are full or have lingered,
 * start a request for each partition whose head is ready, let libcurl work,
 * settle what finished, and wait -- on the consumer when nothing is in
 * flight, else on libcurl's sockets in short slices, polling the consumer
 * in between so the group's heartbeats keep going.
 *
 * With a dead-letter topic each batch also keeps a copy of its records
 * (key, value, encoded headers), because the JSON lines are not the
 * record; without one, nothing but the body is kept.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/internal.h"
#include "stream/batch.h"
#include "stream/error.h"
#include "stream/http_sink.h"

#define DLQ_ANSWER_BYTES 512 /* of an answer's body put in stream.dlq.response */
#define WAIT_SLICE_MS    20  /* longest wait on one side while the other may have work */

typedef struct part part;

/* A request's worth of records of one partition. */
typedef struct batch {
    struct batch *next;         /* the next batch of the partition */
    part *part;                 /* its partition */
    stream_buf body;            /* the request body */
    struct curl_slist *headers; /* each: the record's Stream-* headers */
    stream_buf copies;          /* with a dead-letter topic: the records (see rec_copy) */
    int64_t first_offset;       /* offset of the first record */
    int64_t next_offset;        /* offset after the last record */
    size_t records;             /* records in the batch */
    int64_t deadline_ms;        /* linger: closed at this time at the latest */
    bool closed;                /* no more records go in */
    int attempt;                /* sends so far */
    int64_t not_before_ms;      /* a retry waits until then */
    bool in_dlq;                /* refused: its records are going to the dead-letter topic */
    size_t dlq_pending;         /* dead-letter records not yet acknowledged */
    bool dlq_failed;            /* one of them failed */
    bool orphan;                /* sent before its partition was revoked: its offset is
                                   never stored (a later assignment starts elsewhere) */
} batch;

/* A partition the sink holds records of. */
struct part {
    char *topic;       /* owned */
    int32_t partition; /* its number in topic */
    batch *head;       /* the oldest batch (the one on the wire, if any) */
    batch *tail;       /* the newest (the one records are added to) */
    bool busy;         /* head is on the wire, or in the dead-letter topic */
    bool revoked;      /* the group took it away: what is left is dropped */
};

/* The header of a record copy in batch.copies; key, value and the encoded
 * headers follow. */
typedef struct rec_copy {
    int64_t offset;       /* the record's offset in its partition */
    int64_t timestamp;    /* its timestamp (ms) */
    int32_t key_len;      /* -1: null */
    int32_t value_len;    /* -1: null */
    int32_t header_count; /* headers */
    uint32_t headers_len; /* bytes of encoded headers */
} rec_copy;

/* A request on the wire. */
typedef struct xfer {
    CURL *easy;                     /* reused for every request of this slot */
    batch *b;                       /* what it carries; NULL: the slot is free */
    struct curl_slist *headers;     /* the request's headers (conf's + ours) */
    stream_buf answer;              /* the first answer_max bytes of the body */
    size_t answer_max;              /* conf->max_answer_bytes */
    int64_t retry_after_ms;         /* the answer's Retry-After; -1: none */
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's detail on a failure */
} xfer;

typedef struct sink {
    const stream_http_sink_conf *conf; /* the caller's (borrowed) */
    stream_client *client;             /* co's client, shared by the dead-letter producer */
    stream_consumer *co;               /* where records come from (borrowed) */
    stream_producer *dlq;              /* the dead-letter producer; NULL without a topic */
    CURLM *multi;                      /* libcurl's: connections and requests in flight */
    xfer *xfers;                       /* max_in_flight slots */
    int in_flight;                     /* slots in use */
    part **parts;                      /* every partition seen */
    size_t nparts, cap_parts;          /* entries used and allocated in parts */
    size_t buffered;                   /* bytes held in batches */
    batch *spare;                      /* batches delivered, kept with their buffers for reuse */
    size_t nspare;                     /* batches in spare */
    uint64_t rng;                      /* backoff jitter */
    stream_http_sink_stats *stats;     /* the caller's, filled as the run goes */
    int rc;                            /* first failure; 0 */
    char *errbuf;                      /* the caller's */
    size_t errbuf_len;                 /* bytes at errbuf */
    char url_prefix[300];              /* "POST URL" for messages */
} sink;

void stream_http_sink_conf_init(stream_http_sink_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->batch_records = 500;
    conf->batch_bytes = 1 << 20;
    conf->linger_ms = 50;
    conf->max_in_flight = 8;
    conf->max_buffered_bytes = 64u << 20;
    conf->max_answer_bytes = DLQ_ANSWER_BYTES;
    conf->agent = "libstream/" STREAM_VERSION;
}

static int64_t mono_ms(void)
{
    return stream__mono_ns() / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records the first failure of the run; later ones are dropped. */
static int fail(sink *s, int rc, stream_http_sink_end end, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(sink *s, int rc, stream_http_sink_end end, const char *fmt, ...)
{
    if (s->rc != 0)
        return s->rc;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->rc = rc;
    s->stats->end = end;
    stream__errf(s->errbuf, s->errbuf_len, "%s", msg);
    return rc;
}

/* ---- batches ----------------------------------------------------------------- */

static void batch_free(batch *b)
{
    if (b == NULL)
        return;
    stream_buf_release(&b->body);
    stream_buf_release(&b->copies);
    curl_slist_free_all(b->headers);
    free(b);
}

static size_t batch_bytes(const batch *b)
{
    return b->body.len + b->copies.len;
}

/* Keeps a batch that is done for reuse: its body buffer, grown to a
 * batch's size, then serves the next batch without a realloc or an mmap
 * per request (a body of 100 KiB is above malloc's mmap threshold). */
static void batch_recycle(sink *s, batch *b)
{
    /* At most a few more than are in flight, and none grown by a huge
     * record: spares never hold much memory. */
    if (s->nspare >= (size_t)s->conf->max_in_flight + 4 || b->body.cap > 2 * s->conf->batch_bytes ||
        b->copies.cap > 2 * s->conf->batch_bytes) {
        batch_free(b);
        return;
    }
    stream_buf body = b->body, copies = b->copies;
    curl_slist_free_all(b->headers);
    stream_buf_reset(&body);
    stream_buf_reset(&copies);
    memset(b, 0, sizeof(*b));
    b->body = body;
    b->copies = copies;
    b->next = s->spare;
    s->spare = b;
    s->nspare++;
}

/* A new, empty batch: a spare one if there is one. */
static batch *batch_new(sink *s)
{
    batch *b = s->spare;
    if (b == NULL)
        return calloc(1, sizeof(*b));
    s->spare = b->next;
    s->nspare--;
    b->next = NULL;
    return b;
}

/* Takes the head batch off its partition (it was delivered or dropped). */
static void part_pop(sink *s, part *p)
{
    batch *b = p->head;
    p->head = b->next;
    if (p->tail == b)
        p->tail = NULL;
    s->buffered -= batch_bytes(b);
    batch_recycle(s, b);
}

static part *part_find(sink *s, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i]->partition == partition && strcmp(s->parts[i]->topic, topic) == 0)
            return s->parts[i];
    if (s->nparts == s->cap_parts) {
        size_t cap = s->cap_parts ? s->cap_parts * 2 : 16;
        part **np = realloc(s->parts, cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        s->parts = np;
        s->cap_parts = cap;
    }
    part *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->topic = strdup(topic)) == NULL) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    s->parts[s->nparts++] = p;
    return p;
}

/* RFC 3986 percent-encoding of every byte but unreserved ones (and '=' in
 * a header name, which separates it from the value). */
static void put_pct(stream_buf *out, const uint8_t *p, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            stream_buf_put_u8(out, c);
        } else {
            uint8_t e[3] = {'%', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
            stream_buf_put(out, e, 3);
        }
    }
}

/* Appends the NUL-terminated text in line to list; 0 or STREAM_ENOMEM. */
static int add_header(struct curl_slist **list, stream_buf *line)
{
    stream_buf_put_u8(line, 0);
    if (stream_buf_ok(line) != 0)
        return STREAM_ENOMEM;
    struct curl_slist *l = curl_slist_append(*list, (const char *)line->data);
    stream_buf_reset(line);
    if (l == NULL)
        return STREAM_ENOMEM;
    *list = l;
    return 0;
}

/* --post-each: the record's Stream-* headers (see http_sink.h). */
static int each_headers(batch *b, const stream_consumer_event *ev)
{
    stream_buf line = STREAM_BUF_INIT;
    char num[64];
    int rc = 0;
    const stream_record *r = &ev->record;
    stream_buf_put(&line, "Stream-Topic: ", 14);
    put_pct(&line, (const uint8_t *)ev->topic, strlen(ev->topic));
    rc = add_header(&b->headers, &line);
    snprintf(num, sizeof(num), "Stream-Partition: %" PRId32, ev->partition);
    stream_buf_put(&line, num, strlen(num));
    rc = rc ? rc : add_header(&b->headers, &line);
    snprintf(num, sizeof(num), "Stream-Offset: %" PRId64, r->offset);
    stream_buf_put(&line, num, strlen(num));
    rc = rc ? rc : add_header(&b->headers, &line);
    snprintf(num, sizeof(num), "Stream-Timestamp: %" PRId64, r->timestamp);
    stream_buf_put(&line, num, strlen(num));
    rc = rc ? rc : add_header(&b->headers, &line);
    if (r->key_len >= 0) {
        stream_buf_put(&line, "Stream-Key: ", 12);
        put_pct(&line, r->key, (size_t)r->key_len);
        rc = rc ? rc : add_header(&b->headers, &line);
    }
    if (r->value_len < 0) {
        stream_buf_put(&line, "Stream-Value-Null: true", 23);
        rc = rc ? rc : add_header(&b->headers, &line);
    }
    stream_header_iter it;
    stream_header h;
    stream_header_iter_start(&it, r);
    int more;
    while (rc == 0 && (more = stream_header_iter_next(&it, &h)) == 1) {
        stream_buf_put(&line, "Stream-Header: ", 15);
        put_pct(&line, h.name, (size_t)h.name_len);
        if (h.value_len >= 0) {
            stream_buf_put_u8(&line, '=');
            put_pct(&line, h.value, (size_t)h.value_len);
        }
        rc = add_header(&b->headers, &line);
    }
    if (rc == 0 && more < 0)
        rc = more;
    stream_buf_release(&line);
    return rc;
}

/* Keeps a copy of the record for the dead-letter topic. */
static void copy_record(batch *b, const stream_record *r)
{
    rec_copy c = {.offset = r->offset,
                  .timestamp = r->timestamp,
                  .key_len = r->key_len,
                  .value_len = r->value_len,
                  .header_count = r->header_count,
                  .headers_len = (uint32_t)r->headers_len};
    stream_buf_put(&b->copies, &c, sizeof(c));
    if (r->key_len > 0)
        stream_buf_put(&b->copies, r->key, (size_t)r->key_len);
    if (r->value_len > 0)
        stream_buf_put(&b->copies, r->value, (size_t)r->value_len);
    if (r->headers_len > 0)
        stream_buf_put(&b->copies, r->headers, r->headers_len);
}

/* Adds a record to its partition's open batch (a new one if needed). */
static int take_record(sink *s, const stream_consumer_event *ev, int64_t now)
{
    const stream_http_sink_conf *conf = s->conf;
    part *p = part_find(s, ev->topic, ev->partition);
    if (p == NULL)
        return fail(s, STREAM_ENOMEM, STREAM_HTTP_SINK_ERROR, "out of memory");
    p->revoked = false;
    batch *b = p->tail;
    if (b == NULL || b->closed) {
        b = batch_new(s);
        if (b == NULL)
            return fail(s, STREAM_ENOMEM, STREAM_HTTP_SINK_ERROR, "out of memory");
        b->part = p;
        b->first_offset = ev->record.offset;
        b->deadline_ms = now + conf->linger_ms;
        if (p->tail)
            p->tail->next = b;
        else
            p->head = b;
        p->tail = b;
    }
    size_t before = batch_bytes(b);
    int rc;
    char err[512] = "";
    if (conf->each) {
        const stream_record *r = &ev->record;
        if (r->value_len > 0)
            stream_buf_put(&b->body, r->value, (size_t)r->value_len);
        rc = each_headers(b, ev);
        b->closed = true;
    } else {
        rc = conf->encode(conf->encode_arg, &b->body, ev, err, sizeof(err));
    }
    if (rc == 0 && conf->dead_letter_topic)
        copy_record(b, &ev->record);
    if (rc == 0)
        rc = stream_buf_ok(&b->body) ? stream_buf_ok(&b->body) : stream_buf_ok(&b->copies);
    s->buffered += batch_bytes(b) - before;
    if (rc != 0)
        return fail(s, rc, STREAM_HTTP_SINK_ERROR, "%s",
                    err[0] ? err : "out of memory holding a record");
    b->records++;
    b->next_offset = ev->record.offset + 1;
    if (b->records >= conf->batch_records || b->body.len >= conf->batch_bytes)
        b->closed = true;
    s->stats->taken++;
    return 0;
}

/* The group took the partition away: drop what was not sent; what is on
 * the wire finishes, and its offset is not stored (the next holder
 * replays from the committed offset). */
static void part_revoke(sink *s, part *p)
{
    p->revoked = true;
    batch *keep = p->busy ? p->head : NULL;
    while (p->head && p->head != keep)
        part_pop(s, p);
    if (keep) {
        keep->orphan = true;
        while (keep->next) {
            batch *n = keep->next;
            keep->next = n->next;
            s->buffered -= batch_bytes(n);
            batch_recycle(s, n);
        }
        p->tail = keep;
    }
}

/* ---- delivery ------------------------------------------------------------------ */

/* A batch is done: delivered (2xx) or safe in the dead-letter topic. */
static void batch_done(sink *s, part *p, bool dead_lettered)
{
    batch *b = p->head;
    if (dead_lettered)
        s->stats->dead_lettered += b->records;
    else
        s->stats->delivered += b->records;
    if (s->conf->group && !p->revoked && !b->orphan)
        (void)stream_consumer_store_offset(s->co, p->topic, p->partition, b->next_offset);
    p->busy = false;
    part_pop(s, p);
}

static void on_dlq_delivery(stream_producer *prod, const stream_delivery *d, void *opaque)
{
    batch *b = d->opaque;
    (void)prod;
    (void)opaque;
    if (d->err != 0)
        b->dlq_failed = true;
    b->dlq_pending--;
}

/* Publishes each record of the head batch of p to the dead-letter topic,
 * with headers naming where it was going and what came back. */
static int dead_letter(sink *s, part *p, long status, const stream_buf *answer)
{
    batch *b = p->head;
    const uint8_t *q = b->copies.data, *end = b->copies.data + b->copies.len;
    char status_text[16], part_text[16], offset_text[24];
    snprintf(status_text, sizeof(status_text), "%ld", status);
    snprintf(part_text, sizeof(part_text), "%" PRId32, p->partition);
    size_t answer_len = answer->len < DLQ_ANSWER_BYTES ? answer->len : DLQ_ANSWER_BYTES;
    while (q < end) {
        rec_copy c;
        memcpy(&c, q, sizeof(c));
        q += sizeof(c);
        stream_record r = {.offset = c.offset,
                           .timestamp = c.timestamp,
                           .key = c.key_len >= 0 ? q : NULL,
                           .key_len = c.key_len};
        q += c.key_len > 0 ? (size_t)c.key_len : 0;
        r.value = c.value_len >= 0 ? q : NULL;
        r.value_len = c.value_len;
        q += c.value_len > 0 ? (size_t)c.value_len : 0;
        r.header_count = c.header_count;
        r.headers = q;
        r.headers_len = c.headers_len;
        q += c.headers_len;

        size_t n = (size_t)(c.header_count > 0 ? c.header_count : 0) + 6;
        stream_header *h = calloc(n, sizeof(*h));
        if (h == NULL)
            return fail(s, STREAM_ENOMEM, STREAM_HTTP_SINK_ERROR, "out of memory");
        size_t k = 0;
        stream_header_iter it;
        stream_header_iter_start(&it, &r);
        while (k < n - 6 && stream_header_iter_next(&it, &h[k]) == 1)
            k++;
        snprintf(offset_text, sizeof(offset_text), "%" PRId64, c.offset);
#define DLQ_HEADER(name, val, len)                                                                 \
    h[k++] = (stream_header){(const uint8_t *)(name), (int32_t)strlen(name),                       \
                             (const uint8_t *)(val), (int32_t)(len)}
        DLQ_HEADER("stream.dlq.url", s->conf->url, strlen(s->conf->url));
        DLQ_HEADER("stream.dlq.status", status_text, strlen(status_text));
        DLQ_HEADER("stream.dlq.response", answer->data ? (const char *)answer->data : "",
                   answer_len);
        DLQ_HEADER("stream.dlq.topic", p->topic, strlen(p->topic));
        DLQ_HEADER("stream.dlq.partition", part_text, strlen(part_text));
        DLQ_HEADER("stream.dlq.offset", offset_text, strlen(offset_text));
#undef DLQ_HEADER
        stream_producer_record pr = {.topic = s->conf->dead_letter_topic,
                                     .partition = STREAM_PARTITION_ANY,
                                     .timestamp = c.timestamp,
                                     .key = r.key,
                                     .key_len = r.key_len,
                                     .value = r.value,
                                     .value_len = r.value_len,
                                     .headers = h,
                                     .header_count = k,
                                     .opaque = b};
        char err[512];
        int rc;
        while ((rc = stream_producer_produce(s->dlq, &pr, err, sizeof(err))) == STREAM_EAGAIN)
            stream_producer_poll(s->dlq, 10);
        free(h);
        if (rc != 0)
            return fail(s, rc, STREAM_HTTP_SINK_ERROR, "dead-letter topic '%s': %s",
                        s->conf->dead_letter_topic, err);
        b->dlq_pending++;
    }
    return 0;
}

/* Partitions whose records all went to the dead-letter topic. */
static void settle_dead_letters(sink *s)
{
    for (size_t i = 0; i < s->nparts && s->rc == 0; i++) {
        part *p = s->parts[i];
        batch *b = p->head;
        if (!p->busy || b == NULL || !b->in_dlq || b->dlq_pending)
            continue;
        if (!b->dlq_failed) {
            batch_done(s, p, true);
        } else {
            fail(s, STREAM_EIO, STREAM_HTTP_SINK_ERROR,
                 "dead-letter topic '%s': a record could not be stored (see stream-sub -v)",
                 s->conf->dead_letter_topic);
        }
    }
}

/* Copies a status line's reason and the start of the answer for messages. */
static void describe_answer(const xfer *x, long status, char *out, size_t out_len)
{
    int n = 0;
    size_t len = x->answer.len < 200 ? x->answer.len : 200;
    char text[201];
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = x->answer.data[i];
        text[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    while (j > 0 && text[j - 1] == ' ')
        j--;
    text[j] = '\0';
    n = snprintf(out, out_len, "HTTP %ld", status);
    if (j > 0 && n > 0 && (size_t)n < out_len)
        snprintf(out + n, out_len - (size_t)n, ": %s%s", text, x->answer.len > len ? "..." : "");
}

/* What to do with a batch whose request finished. */
static void settle(sink *s, xfer *x, CURLcode code)
{
    batch *b = x->b;
    part *p = b->part;
    long status = 0;
    s->in_flight--;
    x->b = NULL;
    curl_multi_remove_handle(s->multi, x->easy);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    if (code == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    s->stats->requests += code == CURLE_OK;

    if (code == CURLE_OK && status >= 200 && status <= 299) {
        batch_done(s, p, false);
        return;
    }
    if (p->revoked) { /* no longer ours: the next holder sends it */
        p->busy = false;
        part_pop(s, p);
        return;
    }
    char what[400];
    bool retry;
    if (code != CURLE_OK) {
        snprintf(what, sizeof(what), "%s", x->curl_err[0] ? x->curl_err : curl_easy_strerror(code));
        retry = stream_http_curl_retryable(code);
        if (!retry) {
            const char *hint =
                (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE)
                    ? " (--cacert FILE trusts a CA; --insecure skips the check)"
                    : "";
            fail(s, STREAM_EIO, STREAM_HTTP_SINK_ERROR, "%s: %s%s", s->url_prefix, what, hint);
            return;
        }
    } else {
        describe_answer(x, status, what, sizeof(what));
        retry = stream_http_status_retryable(status);
        if (!retry) {
            if (s->conf->dead_letter_topic == NULL) {
                fail(s, STREAM_EBADREQ, STREAM_HTTP_SINK_REJECTED,
                     "%s: the endpoint refused records of topic '%s' partition %" PRId32
                     " offsets %" PRId64 "..%" PRId64 ": %s (--dead-letter TOPIC keeps such "
                     "records and goes on)",
                     s->url_prefix, p->topic, p->partition, b->first_offset, b->next_offset - 1,
                     what);
                return;
            }
            b->in_dlq = true; /* stays busy until the dead letters are stored */
            dead_letter(s, p, status, &x->answer);
            return;
        }
    }
    if (b->attempt > s->conf->http->retries) {
        fail(s, STREAM_EIO, STREAM_HTTP_SINK_GAVE_UP, "%s: gave up after %d retries: %s",
             s->url_prefix, s->conf->http->retries, what);
        return;
    }
    int64_t wait = stream_http_backoff_ms(s->conf->http, b->attempt, &s->rng);
    if (x->retry_after_ms >= 0)
        wait = x->retry_after_ms < s->conf->http->backoff_max_ms ? x->retry_after_ms
                                                                 : s->conf->http->backoff_max_ms;
    b->not_before_ms = mono_ms() + wait;
    p->busy = false;
    s->stats->retries++;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (x->answer.len < x->answer_max) {
        size_t take = x->answer_max - x->answer.len;
        stream_buf_put(&x->answer, p, len < take ? len : take);
    }
    return len; /* the rest is read and dropped: memory stays bounded */
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        int64_t d;
        if (stream_http_retry_after_ms(p + sizeof(name) - 1, len - (sizeof(name) - 1), wall_ms(),
                                       &d) == 0)
            x->retry_after_ms = d;
    } else if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->retry_after_ms = -1; /* a new answer (after a 100 Continue) */
        stream_buf_reset(&x->answer);
    }
    return len;
}

/* Puts the head batch of p on the wire in slot x. */
static int start(sink *s, part *p, xfer *x)
{
    batch *b = p->head;
    const stream_http_sink_conf *conf = s->conf;
    char line[128];
    struct curl_slist *h = NULL;
    int rc = stream_http_conf_headers(conf->http, &h);
    if (rc == 0 && !conf->each) {
        /* Ours first; curl sends every line, the caller's after ours. */
        const char *fixed[] = {"Content-Type: application/x-ndjson", "Expect:"};
        for (size_t i = 0; i < 2 && rc == 0; i++) {
            struct curl_slist *l = curl_slist_append(h, fixed[i]);
            rc = l ? 0 : STREAM_ENOMEM;
            h = l ? l : h;
        }
        snprintf(line, sizeof(line), "Stream-Partition: %" PRId32, p->partition);
        const char *more[] = {line, NULL, NULL};
        char off[64], cnt[64];
        snprintf(off, sizeof(off), "Stream-Offset: %" PRId64, b->first_offset);
        snprintf(cnt, sizeof(cnt), "Stream-Count: %zu", b->records);
        more[1] = off;
        more[2] = cnt;
        for (size_t i = 0; i < 3 && rc == 0; i++) {
            struct curl_slist *l = curl_slist_append(h, more[i]);
            rc = l ? 0 : STREAM_ENOMEM;
            h = l ? l : h;
        }
        stream_buf t = STREAM_BUF_INIT;
        stream_buf_put(&t, "Stream-Topic: ", 14);
        put_pct(&t, (const uint8_t *)p->topic, strlen(p->topic));
        rc = rc ? rc : add_header(&h, &t);
        stream_buf_release(&t);
    } else if (rc == 0) {
        const char *fixed[] = {"Content-Type: application/octet-stream", "Expect:"};
        for (size_t i = 0; i < 2 && rc == 0; i++) {
            struct curl_slist *l = curl_slist_append(h, fixed[i]);
            rc = l ? 0 : STREAM_ENOMEM;
            h = l ? l : h;
        }
        for (struct curl_slist *l = b->headers; l && rc == 0; l = l->next) {
            struct curl_slist *nl = curl_slist_append(h, l->data);
            rc = nl ? 0 : STREAM_ENOMEM;
            h = nl ? nl : h;
        }
    }
    if (rc != 0) {
        curl_slist_free_all(h);
        return fail(s, STREAM_ENOMEM, STREAM_HTTP_SINK_ERROR, "out of memory");
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, b->body.data ? (char *)b->body.data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->body.len);
    x->headers = h;
    x->b = b;
    x->retry_after_ms = -1;
    x->curl_err[0] = '\0';
    stream_buf_reset(&x->answer);
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
        x->b = NULL;
        curl_slist_free_all(h);
        x->headers = NULL;
        return fail(s, STREAM_EIO, STREAM_HTTP_SINK_ERROR, "libcurl refused a request");
    }
    b->attempt++;
    p->busy = true;
    s->in_flight++;
    return 0;
}

/* Closes lingering batches and starts what may start; returns the next
 * time something is due (a linger or a retry), or INT64_MAX. */
static int64_t schedule(sink *s, int64_t now, bool flush)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < s->nparts && s->rc == 0; i++) {
        part *p = s->parts[i];
        batch *b = p->head;
        if (b == NULL || p->busy)
            continue;
        if (!b->closed && (flush || now >= b->deadline_ms))
            b->closed = true;
        if (!b->closed) {
            next = b->deadline_ms < next ? b->deadline_ms : next;
            continue;
        }
        if (b->not_before_ms > now) {
            next = b->not_before_ms < next ? b->not_before_ms : next;
            continue;
        }
        if (s->in_flight >= s->conf->max_in_flight)
            continue;
        for (int k = 0; k < s->conf->max_in_flight; k++) {
            if (s->xfers[k].b == NULL) {
                start(s, p, &s->xfers[k]);
                break;
            }
        }
    }
    return next;
}

/* Lets libcurl work and settles what finished. */
static void pump(sink *s)
{
    int running;
    curl_multi_perform(s->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x && x->b)
            settle(s, x, m->data.result);
    }
}

/* ---- the run ------------------------------------------------------------------- */

static int setup(sink *s)
{
    const stream_http_sink_conf *conf = s->conf;
    int rc = stream_http_global_init(s->errbuf, s->errbuf_len);
    if (rc != 0)
        return rc;
    snprintf(s->url_prefix, sizeof(s->url_prefix), "POST %s", conf->url);
    s->multi = curl_multi_init();
    s->xfers = calloc((size_t)conf->max_in_flight, sizeof(*s->xfers));
    if (s->multi == NULL || s->xfers == NULL)
        return stream__fail(STREAM_ENOMEM, s->errbuf, s->errbuf_len, "out of memory");
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conf->max_in_flight);
    for (int i = 0; i < conf->max_in_flight; i++) {
        xfer *x = &s->xfers[i];
        x->answer_max = conf->max_answer_bytes;
        x->easy = curl_easy_init();
        if (x->easy == NULL)
            return stream__fail(STREAM_ENOMEM, s->errbuf, s->errbuf_len, "out of memory");
        rc = stream_http_easy_setup(conf->http, x->easy, conf->agent, s->errbuf, s->errbuf_len);
        if (rc != 0)
            return rc;
        curl_easy_setopt(x->easy, CURLOPT_URL, conf->url);
        curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
        /* Wait for a connection that is being set up rather than open
         * another: on HTTP/2 the requests then share one connection. */
        curl_easy_setopt(x->easy, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->curl_err);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    }
    if (conf->dead_letter_topic) {
        stream_producer_conf pc;
        stream_producer_conf_init(&pc);
        pc.on_delivery = on_dlq_delivery;
        rc = stream_producer_new(s->client, &pc, &s->dlq, s->errbuf, s->errbuf_len);
        if (rc != 0)
            return rc;
    }
    s->rng = (uint64_t)stream__mono_ns() | 1;
    return 0;
}

static void teardown(sink *s)
{
    if (s->dlq)
        stream_producer_free(s->dlq, s->rc == 0 ? 10000 : 0);
    for (int i = 0; s->xfers && i < s->conf->max_in_flight; i++) {
        xfer *x = &s->xfers[i];
        if (x->easy) {
            if (x->b)
                curl_multi_remove_handle(s->multi, x->easy);
            curl_easy_cleanup(x->easy);
        }
        curl_slist_free_all(x->headers);
        stream_buf_release(&x->answer);
    }
    free(s->xfers);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    for (size_t i = 0; i < s->nparts; i++) {
        part *p = s->parts[i];
        while (p->head)
            part_pop(s, p);
        free(p->topic);
        free(p);
    }
    free(s->parts);
    while (s->spare) {
        batch *b = s->spare;
        s->spare = b->next;
        batch_free(b);
    }
}

/* Takes what the consumer has ready (up to a round's worth); returns true
 * when it took or saw anything. */
static bool take(sink *s, int timeout_ms, bool *consumer_done)
{
    const stream_http_sink_conf *conf = s->conf;
    stream_consumer_event ev;
    bool any = false;
    int64_t now = mono_ms();
    for (int n = 0; n < 4096 && s->rc == 0; n++) {
        if (s->buffered >= conf->max_buffered_bytes ||
            (conf->count && s->stats->taken >= conf->count)) {
            if (n == 0) /* paused: the group's heartbeats still go out */
                stream_client_poll(s->client, 0);
            break;
        }
        int rc = stream_consumer_poll(s->co, n == 0 ? timeout_ms : 0, &ev);
        if (rc < 0) {
            fail(s, rc, STREAM_HTTP_SINK_ERROR, "consumer: %s", stream_strerror(rc));
            break;
        }
        if (rc == 0) {
            *consumer_done = stream_consumer_done(s->co);
            break;
        }
        any = true;
        switch (ev.type) {
        case STREAM_EVENT_RECORD:
            take_record(s, &ev, now);
            break;
        case STREAM_EVENT_ERROR:
            fail(s, ev.err, STREAM_HTTP_SINK_ERROR, "%s",
                 ev.msg ? ev.msg : stream_strerror(ev.err));
            break;
        case STREAM_EVENT_REVOKED: {
            part *p = part_find(s, ev.topic, ev.partition);
            if (p)
                part_revoke(s, p);
            break;
        }
        default:
            break;
        }
    }
    return any;
}

static bool idle(const sink *s)
{
    if (s->in_flight > 0)
        return false;
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i]->head)
            return false;
    return true;
}

int stream_http_sink_run(stream_client *c, stream_consumer *co, const stream_http_sink_conf *conf,
                         stream_http_sink_stats *stats, char *errbuf, size_t errbuf_len)
{
    memset(stats, 0, sizeof(*stats));
    if (conf->url == NULL || conf->http == NULL || (!conf->each && conf->encode == NULL) ||
        conf->max_in_flight < 1 || conf->batch_records < 1) {
        stats->end = STREAM_HTTP_SINK_ERROR;
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "http sink: url, http, encode, max_in_flight and batch_records are "
                            "required");
    }
    sink s = {.conf = conf,
              .client = c,
              .co = co,
              .stats = stats,
              .errbuf = errbuf,
              .errbuf_len = errbuf_len};
    int rc = setup(&s);
    if (rc != 0) {
        stats->end = STREAM_HTTP_SINK_ERROR;
        teardown(&s);
        return rc;
    }
    bool consumer_done = false;
    for (;;) {
        if (conf->abort && *conf->abort)
            break;
        bool stopping = (conf->stop && *conf->stop) || consumer_done ||
                        (conf->count && stats->taken >= conf->count);
        int64_t now = mono_ms();
        int64_t next = schedule(&s, now, stopping);
        if (s.rc != 0)
            break;
        if (stopping && idle(&s))
            break;
        /* Wait for whichever side may have work: the consumer when nothing
         * is on the wire, else libcurl in short slices. */
        int wait = WAIT_SLICE_MS;
        if (next != INT64_MAX)
            wait = next - now < wait ? (int)(next - now > 0 ? next - now : 0) : wait;
        bool took = false;
        if (!stopping) {
            took = take(&s, s.in_flight == 0 ? wait : 0, &consumer_done);
        } else {
            stream_client_poll(c, 0);
        }
        if (s.dlq) {
            stream_producer_poll(s.dlq, 0);
            settle_dead_letters(&s);
        }
        if (s.rc != 0)
            break;
        if (s.in_flight > 0) {
            int numfds;
            curl_multi_poll(s.multi, NULL, 0, took ? 0 : wait, &numfds);
            pump(&s);
        } else if (stopping && !took) {
            /* Only retries and dead letters are pending: wait a little. */
            struct timespec ts = {0, (long)(wait > 0 ? wait : 1) * 1000000L};
            if (s.dlq)
                stream_producer_poll(s.dlq, wait > 0 ? wait : 1);
            else
                nanosleep(&ts, NULL);
        }
        if (s.rc != 0)
            break;
    }
    rc = s.rc;
    teardown(&s);
    if (rc == 0)
        stats->end = STREAM_HTTP_SINK_DONE;
    return rc;
}
