/*
 * stream-pub - publishes records read from standard input to a topic.
 *
 * Input is split into records by the library (stream_cli_splitter for
 * delimited text, stream_recfmt_reader for --json and --msgpack), each record
 * is handed to the producer (which copies it into a batch), and the delivery
 * reports are counted. The one promise this program makes: it exits 0 only
 * when every record it read was acknowledged by the broker (with --acks 0:
 * sent), and otherwise says how many were not and why the first one failed.
 *
 * The loop never blocks on stdin while records wait for their batch to be
 * sent or acknowledged: it polls stdin with a short timeout and drives the
 * producer in between, so `tail -f log | stream-pub` publishes each line
 * within linger.ms, and a bulk pipe is read in 1 MiB chunks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/codec.h"
#include "stream/error.h"
#include "stream/format.h"
#include "stream/http.h"
#include "stream/http_source.h"
#include "stream/progress.h"
#include "stream/recfmt.h"
#include "stream/timespec.h"

static const char usage_text[] =
    "Usage: stream-pub -t TOPIC [OPTION]... [--url URL]\n"
    "Publish records read from standard input (or URL) to TOPIC, one per line by default.\n"
    "\n"
    "  -t, --topic TOPIC          topic to publish to (required)\n"
    "  -b, --brokers HOST:PORT,.. brokers (default $STREAM_BROKERS, else 127.0.0.1:9292)\n"
    "      --tls                  TLS to the brokers, verifying their certificates\n"
    "      --tls-cacert FILE      PEM CAs to trust for the brokers (implies --tls)\n"
    "      --cert FILE            PEM client certificate for brokers that ask for one\n"
    "      --cert-key FILE        its PEM private key (--key is the record key)\n"
    "Input:\n"
    "  -D, --delimiter DELIM      record delimiter (default \\n; escapes \\n \\t \\0 \\xNN)\n"
    "  -K, --key-delimiter DELIM  split each record into key and value at the first DELIM\n"
    "  -k, --key KEY              key of every record (a key split off with -K wins)\n"
    "  -H, --header NAME=VALUE    add a header to every record (repeatable)\n"
    "  -Z, --null-empty           send empty keys and values as null (tombstones)\n"
    "  -l, --whole                all of standard input is one record\n"
    "      --json                 read JSON lines, as stream-sub --json writes them\n"
    "      --msgpack              read a MessagePack stream, as stream-sub --msgpack writes\n"
    "HTTP source (instead of standard input):\n"
    "      --url URL              GET URL; its body is the input (text/event-stream: an\n"
    "                             event per record, headers id and event)\n"
    "      --json-array           the body is a JSON array: an element per record\n"
    "      --follow               a streaming response; reconnect when it ends or fails\n"
    "      --resume               with --follow: send Last-Event-ID of the topic's last record\n"
    "      --poll SECONDS         fetch every SECONDS; an unchanged resource (ETag) gives nothing\n"
    "      --cacert FILE          TLS: verify the server with the CA certificates in FILE\n"
    "      --insecure             TLS: do not verify the server\n"
    "      --http-header 'N: V'   add a header to every request (@FILE: one per line)\n"
    "Delivery:\n"
    "  -p, --partition N          publish to partition N (default: by key, else sticky)\n"
    "      --acks 0|1|all         acknowledgement to wait for (default all: on disk)\n"
    "      --linger-ms MS         wait up to MS for a batch to fill (default 5)\n"
    "      --batch-bytes SIZE     send a batch at SIZE bytes, e.g. 64k (default 256k)\n"
    "  -z, --compression CODEC    none (default), gzip, snappy, lz4 or zstd\n"
    "      --retries N            resend a failed batch up to N times (default 30)\n"
    "      --no-idempotence       plain resends: a retry may store a batch twice\n"
    "      --ack-log FILE         append 'RECORD PARTITION OFFSET' per acknowledged record\n"
    "                             to FILE ('-': standard output)\n"
    "      --progress             show a progress line on stderr (default: when a terminal)\n"
    "      --no-progress          never show it\n"
    "  -q, --quiet                print nothing but errors (no progress line)\n"
    "  -v, --verbose              print a summary; -vv also each failed record\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n"
    "\n"
    "Exit status: 0 when every record was acknowledged, 1 when any was not (or on\n"
    "an error), 2 for bad options. See stream-pub(1).\n";

enum {
    OPT_JSON = 256,
    OPT_MSGPACK,
    OPT_ACKS,
    OPT_LINGER,
    OPT_BATCH,
    OPT_RETRIES,
    OPT_ACK_LOG,
    OPT_NO_IDEMPOTENCE,
    OPT_VERSION,
    OPT_URL,
    OPT_JSON_ARRAY,
    OPT_FOLLOW,
    OPT_POLL,
    OPT_RESUME,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_HTTP_HEADER,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
};

static const struct option long_options[] = {
    {"topic", required_argument, NULL, 't'},
    {"brokers", required_argument, NULL, 'b'},
    {"delimiter", required_argument, NULL, 'D'},
    {"key-delimiter", required_argument, NULL, 'K'},
    {"key", required_argument, NULL, 'k'},
    {"header", required_argument, NULL, 'H'},
    {"null-empty", no_argument, NULL, 'Z'},
    {"whole", no_argument, NULL, 'l'},
    {"json", no_argument, NULL, OPT_JSON},
    {"msgpack", no_argument, NULL, OPT_MSGPACK},
    {"partition", required_argument, NULL, 'p'},
    {"acks", required_argument, NULL, OPT_ACKS},
    {"linger-ms", required_argument, NULL, OPT_LINGER},
    {"batch-bytes", required_argument, NULL, OPT_BATCH},
    {"compression", required_argument, NULL, 'z'},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"ack-log", required_argument, NULL, OPT_ACK_LOG},
    {"no-idempotence", no_argument, NULL, OPT_NO_IDEMPOTENCE},
    {"quiet", no_argument, NULL, 'q'},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"url", required_argument, NULL, OPT_URL},
    {"json-array", no_argument, NULL, OPT_JSON_ARRAY},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"poll", required_argument, NULL, OPT_POLL},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"http-header", required_argument, NULL, OPT_HTTP_HEADER},
    /* Broker TLS: --cacert and --insecure are the HTTP source's (as curl's), so
     * the brokers' CAs are --tls-cacert here, and the client key --cert-key
     * (--key is the record key). */
    {"tls", no_argument, NULL, CMD_OPT_TLS},
    {"tls-cacert", required_argument, NULL, CMD_OPT_CACERT},
    {"cert", required_argument, NULL, CMD_OPT_CERT},
    {"cert-key", required_argument, NULL, CMD_OPT_CERT_KEY},
    {NULL, 0, NULL, 0},
};

/* What the options ask for. */
typedef struct pub_opts {
    const char *topic;
    const char *brokers;
    stream_buf delim;       /* record delimiter bytes (empty with -l) */
    stream_buf key_delim;   /* -K bytes; empty when not given */
    const char *key;        /* -k; NULL when not given */
    stream_header *headers; /* -H, borrowing argv */
    size_t header_count;
    bool null_empty;               /* -Z */
    bool whole;                    /* -l */
    stream_recfmt_kind structured; /* --json / --msgpack; 0 for delimited text */
    int32_t partition;             /* -p, or STREAM_PARTITION_ANY */
    stream_producer_conf pconf;
    const char *ack_log;   /* --ack-log FILE, or NULL */
    stream_progress_mode progress; /* --progress / --no-progress; AUTO: when a terminal */
    const char *url;       /* --url: read this instead of standard input; NULL: stdin */
    bool json_array;       /* --json-array: each element of the body's array is a record */
    bool follow;           /* --follow: a streaming response, reconnected when it ends */
    int64_t poll_ms;       /* --poll SECONDS, in ms; 0 when not given */
    bool resume;           /* --resume: Last-Event-ID from the topic's last record */
    stream_http_conf http; /* --cacert, --insecure, --http-header (stream/http.h) */
    bool http_opts;        /* one of those was given */
} pub_opts;

/* The run's state, shared with the delivery callback. */
typedef struct pub_state {
    uint64_t records;    /* records read and handed to the producer (or refused by it) */
    uint64_t acked;      /* delivery reports with err 0 */
    uint64_t failed;     /* reports with an error, plus records the producer refused */
    char first_err[640]; /* why the first failed record failed */
    FILE *ack_log;       /* --ack-log stream, or NULL */
    bool ack_log_failed; /* a write to it failed */
    uint64_t in_bytes;   /* bytes read from standard input */
    stream_progress progress; /* the line on stderr (records, input bytes) */
} pub_state;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void record_failure(pub_state *st, uint64_t recno, const char *why)
{
    st->failed++;
    if (st->first_err[0] == '\0')
        snprintf(st->first_err, sizeof(st->first_err), "record %" PRIu64 ": %s", recno, why);
    info(3, "record %" PRIu64 " failed: %s", recno, why);
}

static void on_delivery(stream_producer *p, const stream_delivery *d, void *opaque)
{
    pub_state *st = opaque;
    uint64_t recno = (uint64_t)(uintptr_t)d->opaque;
    if (d->err != 0) {
        record_failure(st, recno, d->msg && *d->msg ? d->msg : stream_strerror(d->err));
        return;
    }
    st->acked++;
    if (st->ack_log && fprintf(st->ack_log, "%" PRIu64 " %" PRId32 " %" PRId64 "\n", recno,
                               d->partition, d->offset) < 0)
        st->ack_log_failed = true;
}

/* Hands one record to the producer, waiting for buffer space if need be.
 * Returns 0 when the record now has a delivery report to come or failed on
 * its own (counted); a negative code when nothing after it can succeed. */
static int publish(stream_producer *p, pub_state *st, stream_producer_record *rec,
                   bool partition_from_input)
{
    char err[512];
    uint64_t recno = ++st->records;
    rec->opaque = (void *)(uintptr_t)recno;
    int rc;
    while ((rc = stream_producer_produce(p, rec, err, sizeof(err))) == STREAM_EAGAIN) {
        /* buffer_bytes in use: reports free room as acknowledgements come. */
        int prc = stream_producer_poll(p, 100);
        if (prc < 0) {
            record_failure(st, recno, stream_strerror(prc));
            return prc;
        }
    }
    if (rc == 0)
        return 0;
    record_failure(st, recno, err[0] ? err : stream_strerror(rc));
    /* A record too large, or a partition named by this one record, fails
     * alone; anything else (unknown topic, broker gone) fails them all. */
    if (rc == STREAM_ETOOLARGE || (rc == STREAM_ENOPART && partition_from_input))
        return 0;
    return rc;
}

/* Publishes one delimited record r[0..len): -K splits off its key, -k and
 * -Z apply, and it carries headers[0..header_count). Returns what publish
 * returns. */
static int publish_text(const pub_opts *o, stream_producer *p, pub_state *st, const uint8_t *r,
                        size_t len, const stream_header *headers, size_t header_count)
{
    stream_producer_record rec = {0};
    rec.topic = o->topic;
    rec.partition = o->partition;
    rec.headers = headers;
    rec.header_count = header_count;
    const uint8_t *k = (const uint8_t *)o->key, *v = r;
    size_t klen = o->key ? strlen(o->key) : 0, vlen = len;
    bool has_key = o->key != NULL;
    if (o->key_delim.len &&
        stream_cli_split_key(r, len, o->key_delim.data, o->key_delim.len, &k, &klen, &v, &vlen))
        has_key = true;
    rec.key = has_key ? k : NULL;
    rec.key_len = has_key && !(o->null_empty && klen == 0) ? (int32_t)klen : -1;
    rec.value = v;
    rec.value_len = o->null_empty && vlen == 0 ? -1 : (int32_t)vlen;
    if (rec.key_len < 0)
        rec.key = NULL;
    if (rec.value_len < 0)
        rec.value = NULL;
    return publish(p, st, &rec, false);
}

/* Publishes one --json/--msgpack record (its own key, headers, timestamp,
 * and partition unless -p overrides it). Returns what publish returns. */
static int publish_structured(const pub_opts *o, stream_producer *p, pub_state *st,
                              const stream_recfmt_in *in)
{
    stream_producer_record rec = {0};
    rec.topic = o->topic;
    bool from_input = o->partition < 0 && in->has_partition;
    rec.partition = from_input ? in->rec.partition : o->partition;
    rec.timestamp = in->has_timestamp ? in->rec.timestamp : 0;
    rec.key = in->rec.key;
    rec.key_len = in->rec.key_len;
    rec.value = in->rec.value;
    rec.value_len = in->rec.value_len;
    rec.headers = in->rec.headers;
    rec.header_count = in->rec.header_count;
    return publish(p, st, &rec, from_input);
}

/* Waits until fd has input (or EOF/error) while driving the producer, so
 * records already read are sent within linger.ms and their reports run.
 * Returns false when a signal asked to stop. */
static bool wait_input(stream_producer *p, int fd)
{
    for (;;) {
        if (stop_signal)
            return false;
        bool busy = stream_producer_outstanding(p) > 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, busy ? 1 : 500);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return true; /* let read(2) report it */
        if (busy)
            stream_producer_poll(p, 1);
    }
}

/* Reads delimited text (or, with -l, all input as one record). Returns 0,
 * or a negative code with errbuf set (input error) or st holding the error
 * (publish failure). */
static int run_delimited(const pub_opts *o, stream_producer *p, pub_state *st, char *errbuf,
                         size_t errbuf_len)
{
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, o->delim.data, o->whole ? 0 : o->delim.len, 0);
    int rc = 0;
    for (;;) {
        const uint8_t *r;
        size_t len;
        uint64_t since_poll = 0;
        while ((rc = stream_cli_splitter_next(&s, &r, &len, errbuf, errbuf_len)) == 1) {
            if ((rc = publish_text(o, p, st, r, len, o->headers, o->header_count)) < 0)
                goto out;
            /* Keep the socket busy during a long chunk of short records. */
            if (++since_poll == 8192) {
                since_poll = 0;
                stream_producer_poll(p, 0);
                stream_progress_update(&st->progress, st->records, st->in_bytes);
            }
        }
        if (rc < 0 || s.eof || stop_signal)
            break;
        stream_producer_poll(p, 0);
        if (!wait_input(p, 0))
            break;
        int n = stream_cli_splitter_fill(&s, 0, errbuf, errbuf_len);
        if (n < 0 && n != STREAM_EAGAIN) {
            rc = n;
            break;
        }
        st->in_bytes += n > 0 ? (uint64_t)n : 0;
        stream_progress_update(&st->progress, st->records, st->in_bytes);
    }
out:
    stream_cli_splitter_release(&s);
    return rc;
}

/* Reads --json lines or a --msgpack stream (lossless: key, value, headers,
 * timestamp, and partition unless -p overrides it). Same returns. */
static int run_structured(const pub_opts *o, stream_producer *p, pub_state *st, char *errbuf,
                          size_t errbuf_len)
{
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, o->structured);
    stream_recfmt_in in;
    int rc = 0;
    bool eof = false;
    for (;;) {
        while ((rc = stream_recfmt_reader_next(&r, &in, errbuf, errbuf_len)) == 1)
            if ((rc = publish_structured(o, p, st, &in)) < 0)
                goto out;
        if (rc < 0 || eof || stop_signal)
            break;
        stream_producer_poll(p, 0);
        if (!wait_input(p, 0))
            break;
        int n = stream_recfmt_reader_fill(&r, 0);
        st->in_bytes += n > 0 ? (uint64_t)n : 0;
        stream_progress_update(&st->progress, st->records, st->in_bytes);
        if (n == 0)
            eof = true; /* the reader now returns the last, unterminated record */
        else if (n < 0 && n != STREAM_EAGAIN) {
            snprintf(errbuf, errbuf_len, "cannot read standard input: %s", stream_strerror(n));
            rc = n;
            break;
        }
    }
out:
    stream_recfmt_reader_release(&r);
    return rc;
}

/* ---- --url: an HTTP body instead of standard input ------------------------- */

/* How a response's body becomes records. */
typedef enum body_kind {
    BODY_LINES,  /* delimited text (-D, -K, -l), as from standard input */
    BODY_RECFMT, /* --json / --msgpack records */
    BODY_SSE,    /* text/event-stream: an event per record */
    BODY_ARRAY,  /* --json-array: an element per record */
} body_kind;

#define URL_READ_BYTES ((size_t)64 << 10)

/* The parsers and counters of one --url run. */
typedef struct url_run {
    stream_http_source *src;
    body_kind kind;                 /* of the current response */
    bool parser_live;               /* the current kind's parser is initialised */
    stream_cli_splitter lines;      /* BODY_LINES */
    stream_recfmt_reader rf;        /* BODY_RECFMT */
    stream_sse_parser sse;          /* BODY_SSE; kept across responses (its last event ID) */
    stream_json_array_splitter arr; /* BODY_ARRAY */
    uint8_t *tmp;                   /* URL_READ_BYTES read buffer */
    stream_header *headers;         /* -H headers, then an event's id and event */
    uint64_t body_bytes;            /* bytes read from every response */
} url_run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts the parser for a response of kind k (the SSE parser keeps its
 * last event ID; the others start afresh with each response). */
static void body_begin(url_run *u, const pub_opts *o, body_kind k)
{
    if (u->parser_live) {
        if (u->kind == BODY_LINES)
            stream_cli_splitter_release(&u->lines);
        else if (u->kind == BODY_RECFMT)
            stream_recfmt_reader_release(&u->rf);
        else if (u->kind == BODY_ARRAY)
            stream_json_array_release(&u->arr);
    }
    u->kind = k;
    u->parser_live = true;
    if (k == BODY_LINES)
        stream_cli_splitter_init(&u->lines, o->delim.data, o->whole ? 0 : o->delim.len, 0);
    else if (k == BODY_RECFMT)
        stream_recfmt_reader_init(&u->rf, o->structured);
    else if (k == BODY_ARRAY)
        stream_json_array_init(&u->arr, 0);
    else
        stream_sse_reset(&u->sse);
}

/* Publishes one SSE event: data as the value (-K, -k, -Z apply), the -H
 * headers, then `id` and `event` when the stream gave them. */
static int publish_event(url_run *u, const pub_opts *o, stream_producer *p, pub_state *st,
                         const stream_sse_event *ev)
{
    size_t n = o->header_count;
    if (*ev->id)
        u->headers[n++] = (stream_header){(const uint8_t *)"id", 2, (const uint8_t *)ev->id,
                                          (int32_t)strlen(ev->id)};
    if (*ev->event)
        u->headers[n++] = (stream_header){(const uint8_t *)"event", 5, (const uint8_t *)ev->event,
                                          (int32_t)strlen(ev->event)};
    return publish_text(o, p, st, ev->data, ev->data_len, u->headers, n);
}

/* Publishes every record the parser has complete. Returns 0 or a negative
 * code (errbuf set for a parse error; st for a publish failure). */
static int body_drain(url_run *u, const pub_opts *o, stream_producer *p, pub_state *st,
                      char *errbuf, size_t errbuf_len)
{
    int rc;
    if (u->kind == BODY_LINES) {
        const uint8_t *r;
        size_t len;
        while ((rc = stream_cli_splitter_next(&u->lines, &r, &len, errbuf, errbuf_len)) == 1)
            if ((rc = publish_text(o, p, st, r, len, o->headers, o->header_count)) < 0)
                return rc;
        return rc;
    }
    stream_recfmt_in in;
    while ((rc = stream_recfmt_reader_next(&u->rf, &in, errbuf, errbuf_len)) == 1)
        if ((rc = publish_structured(o, p, st, &in)) < 0)
            return rc;
    return rc;
}

/* Turns b[0..n) of the body into records. Same returns as body_drain. */
static int body_feed(url_run *u, const pub_opts *o, stream_producer *p, pub_state *st,
                     const uint8_t *b, size_t n, char *errbuf, size_t errbuf_len)
{
    int rc = 0;
    size_t used;
    switch (u->kind) {
    case BODY_LINES:
        while (n > 0) {
            uint8_t *room;
            size_t cap;
            if (stream_cli_splitter_space(&u->lines, &room, &cap) != 0) {
                snprintf(errbuf, errbuf_len, "out of memory");
                return STREAM_ENOMEM;
            }
            size_t m = n < cap ? n : cap;
            memcpy(room, b, m);
            stream_cli_splitter_commit(&u->lines, m);
            b += m;
            n -= m;
            if ((rc = body_drain(u, o, p, st, errbuf, errbuf_len)) < 0)
                return rc;
        }
        return 0;
    case BODY_RECFMT:
        if (stream_recfmt_reader_feed(&u->rf, b, n) != 0) {
            snprintf(errbuf, errbuf_len, "out of memory");
            return STREAM_ENOMEM;
        }
        return body_drain(u, o, p, st, errbuf, errbuf_len);
    case BODY_SSE:
        while (n > 0) {
            stream_sse_event ev;
            rc = stream_sse_feed(&u->sse, b, n, &used, &ev, errbuf, errbuf_len);
            b += used;
            n -= used;
            if (rc < 0)
                return rc;
            if (rc == 1 && (rc = publish_event(u, o, p, st, &ev)) < 0)
                return rc;
        }
        return 0;
    case BODY_ARRAY:
        while (n > 0) {
            const uint8_t *e;
            size_t elen;
            rc = stream_json_array_feed(&u->arr, b, n, &used, &e, &elen, errbuf, errbuf_len);
            b += used;
            n -= used;
            if (rc < 0)
                return rc;
            if (rc == 1 && (rc = publish_text(o, p, st, e, elen, o->headers, o->header_count)) < 0)
                return rc;
        }
        return 0;
    }
    return 0;
}

/* The body has ended: the last unterminated line or record, the array's
 * close. (An SSE event the body ends inside is dropped: the reconnect asks
 * for it again with Last-Event-ID.) */
static int body_end(url_run *u, const pub_opts *o, stream_producer *p, pub_state *st, char *errbuf,
                    size_t errbuf_len)
{
    switch (u->kind) {
    case BODY_LINES:
        stream_cli_splitter_end(&u->lines);
        return body_drain(u, o, p, st, errbuf, errbuf_len);
    case BODY_RECFMT:
        stream_recfmt_reader_eof(&u->rf);
        return body_drain(u, o, p, st, errbuf, errbuf_len);
    case BODY_ARRAY:
        return stream_json_array_finish(&u->arr, errbuf, errbuf_len);
    case BODY_SSE:
        break;
    }
    return 0;
}

/* Waits delay_ms while the producer runs; false when a signal asked to stop. */
static bool url_sleep(url_run *u, stream_producer *p, pub_state *st, int64_t delay_ms)
{
    double until = now_s() + (double)delay_ms / 1000;
    while (!stop_signal && now_s() < until) {
        stream_producer_poll(p, 50);
        stream_progress_update(&st->progress, st->records, u->body_bytes);
    }
    return !stop_signal;
}

/* The partition --resume reads and writes: -p, or the topic's only one. */
static int resume_partition(const pub_opts *o, stream_client *c, int32_t *out, char *errbuf,
                            size_t errbuf_len)
{
    if (o->partition >= 0) {
        *out = o->partition;
        return 0;
    }
    char err[512];
    int n = stream_client_partition_count(c, o->topic, 10000, err, sizeof(err));
    if (n < 0) {
        snprintf(errbuf, errbuf_len, "--resume: %s", err);
        return n;
    }
    if (n != 1) {
        snprintf(errbuf, errbuf_len,
                 "--resume: topic '%s' has %d partitions: give -p N, so that the last record "
                 "is the last one published",
                 o->topic, n);
        return STREAM_EINVAL;
    }
    *out = 0;
    return 0;
}

/* One response: reads it to its end (0), or to an error (negative; errbuf
 * set; *http_error tells a transfer or HTTP failure from a parse error).
 * *got_bytes says whether it had a body. */
static int url_response(url_run *u, const pub_opts *o, stream_producer *p, pub_state *st,
                        bool *got_bytes, bool *http_error, char *errbuf, size_t errbuf_len)
{
    bool begun = false;
    for (;;) {
        if (stop_signal)
            return 0;
        bool busy = stream_producer_outstanding(p) > 0;
        int n = stream_http_source_read(u->src, u->tmp, URL_READ_BYTES, busy ? 2 : 100, errbuf,
                                        errbuf_len);
        stream_producer_poll(p, 0);
        stream_progress_update(&st->progress, st->records, u->body_bytes);
        if (n == STREAM_EAGAIN)
            continue;
        if (n < 0) {
            *http_error = true;
            return n;
        }
        if (!begun) {
            /* The headers have come: an event stream is read as events. */
            body_kind k = stream_http_source_response(u->src)->event_stream ? BODY_SSE
                          : o->json_array                                   ? BODY_ARRAY
                          : o->structured                                   ? BODY_RECFMT
                                                                            : BODY_LINES;
            body_begin(u, o, k);
            begun = true;
        }
        if (n == 0) {
            if (stream_http_source_response(u->src)->status == 304)
                return 0; /* unchanged: nothing to publish */
            return body_end(u, o, p, st, errbuf, errbuf_len);
        }
        *got_bytes = true;
        u->body_bytes += (uint64_t)n;
        int rc = body_feed(u, o, p, st, u->tmp, (size_t)n, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
}

/* Reads --url: one GET, or with --follow a stream reconnected when it ends
 * or fails, or with --poll a fetch every SECONDS. Returns 0 (the end, or a
 * signal), or a negative code with errbuf (input error) or st holding the
 * error (publish failure). */
static int run_url(const pub_opts *opts, stream_client *c, stream_producer *p, pub_state *st,
                   char *errbuf, size_t errbuf_len)
{
    pub_opts ro = *opts;
    const pub_opts *o = &ro;
    url_run u = {0};
    int rc = 0;
    char *resume_id = NULL;
    stream_sse_init(&u.sse, 0);
    u.tmp = malloc(URL_READ_BYTES);
    u.headers = calloc(o->header_count + 2, sizeof(*u.headers));
    if (u.tmp == NULL || u.headers == NULL) {
        snprintf(errbuf, errbuf_len, "out of memory");
        rc = STREAM_ENOMEM;
        goto out;
    }
    if (o->header_count)
        memcpy(u.headers, o->headers, o->header_count * sizeof(*u.headers));

    if (o->resume) {
        /* The last record stored is the last event published: the stream
         * goes on after it, neither skipping nor repeating. */
        if ((rc = resume_partition(o, c, &ro.partition, errbuf, errbuf_len)) != 0)
            goto out;
        char err[512];
        rc = stream_http_source_last_header(c, o->topic, o->partition, "id", 30000, &resume_id, err,
                                            sizeof(err));
        if (rc != 0) {
            snprintf(errbuf, errbuf_len, "--resume: %s", err);
            goto out;
        }
        if (resume_id && stream_sse_set_last_id(&u.sse, resume_id, strlen(resume_id)) != 0) {
            snprintf(errbuf, errbuf_len, "out of memory");
            rc = STREAM_ENOMEM;
            goto out;
        }
        if (resume_id)
            info(2, "resuming after event id '%s'", resume_id);
        else
            info(1,
                 "--resume: no event id in '%s' partition %d: the stream starts where the "
                 "server starts it",
                 o->topic, (int)o->partition);
    }

    stream_http_source_conf hc;
    stream_http_source_conf_init(&hc);
    hc.url = o->url;
    hc.http = &o->http;
    hc.agent = "stream-pub/" STREAM_VERSION;
    hc.conditional = o->poll_ms > 0;
    if ((rc = stream_http_source_new(&hc, &u.src, errbuf, errbuf_len)) != 0)
        goto out;

    int failures = 0; /* failed or empty responses in a row */
    uint64_t rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32); /* backoff jitter */
    bool ever_answered = false; /* some request got an HTTP answer */
    for (;;) {
        const char *last_id = (const char *)u.sse.last_id.data;
        if ((rc = stream_http_source_start(u.src, o->follow ? last_id : NULL, errbuf,
                                           errbuf_len)) != 0)
            goto out;
        bool got_bytes = false, http_error = false;
        rc = url_response(&u, o, p, st, &got_bytes, &http_error, errbuf, errbuf_len);
        const stream_http_response *resp = stream_http_source_response(u.src);
        ever_answered = ever_answered || resp->status != 0;
        if (stop_signal) {
            rc = 0;
            break;
        }
        int64_t delay;
        if (rc < 0) {
            /* Bad bytes and failed records stop the run; a transfer that
             * failed is tried again when following or polling, unless it
             * cannot help (TLS, a 4xx) or the URL never answered at all. */
            if (!http_error || (!o->follow && o->poll_ms == 0) || !resp->retryable ||
                !ever_answered)
                goto out;
            /* A response that brought data resets the backoff. */
            failures = got_bytes ? 1 : failures + 1;
            delay = resp->retry_after_ms >= 0
                        ? resp->retry_after_ms
                        : stream_http_backoff_ms(&o->http, failures + 1, &rng);
            info(1, "%s; trying again in %.1f s", errbuf, (double)delay / 1000);
            errbuf[0] = '\0';
            rc = 0;
        } else if (o->follow) {
            failures = got_bytes ? 0 : failures + 1;
            delay = u.kind == BODY_SSE && u.sse.retry_ms >= 0 && failures == 0
                        ? u.sse.retry_ms
                        : stream_http_backoff_ms(&o->http, failures + 1, &rng);
            info(2, "the stream ended; reconnecting in %.1f s", (double)delay / 1000);
        } else if (o->poll_ms > 0) {
            failures = 0;
            delay = o->poll_ms;
        } else {
            break; /* one GET, read */
        }
        if (!url_sleep(&u, p, st, delay))
            break;
    }
out:
    if (u.parser_live)
        body_begin(&u, o, BODY_SSE); /* releases the current kind's parser */
    stream_sse_release(&u.sse);
    stream_http_source_free(u.src);
    free(u.tmp);
    free(u.headers);
    free(resume_id);
    return rc;
}

static void parse_delim(const char *flag, const char *arg, stream_buf *out)
{
    char err[256];
    stream_buf_reset(out);
    if (stream_format_parse_delim(arg, strlen(arg), out, err, sizeof(err)) != 0)
        usage_error("%s: %s", flag, err);
    if (out->len > STREAM_CLI_DELIM_MAX)
        usage_error("%s: a delimiter is at most %d bytes", flag, STREAM_CLI_DELIM_MAX);
}

static void parse_options(int argc, char **argv, pub_opts *o)
{
    char err[512];
    const char *delim_arg = NULL;
    bool has_key_opts = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":t:b:D:K:k:H:Zlp:z:qvh", long_options, NULL)) != -1) {
        switch (opt) {
        case 't':
            o->topic = optarg;
            break;
        case CMD_OPT_TLS:
        case CMD_OPT_CACERT:
        case CMD_OPT_CERT:
        case CMD_OPT_CERT_KEY:
            cmd_tls_option(opt, optarg);
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 'D':
            delim_arg = optarg;
            parse_delim("-D", optarg, &o->delim);
            break;
        case 'K':
            has_key_opts = true;
            parse_delim("-K", optarg, &o->key_delim);
            break;
        case 'k':
            has_key_opts = true;
            o->key = optarg;
            break;
        case 'H': {
            stream_header *h = realloc(o->headers, (o->header_count + 1) * sizeof(*h));
            if (h == NULL)
                die("out of memory");
            o->headers = h;
            if (stream_cli_parse_header(optarg, &h[o->header_count], err, sizeof(err)) != 0)
                usage_error("-H: %s", err);
            o->header_count++;
            has_key_opts = true;
            break;
        }
        case 'Z':
            o->null_empty = true;
            has_key_opts = true;
            break;
        case 'l':
            o->whole = true;
            break;
        case OPT_JSON:
        case OPT_MSGPACK: {
            stream_recfmt_kind k = opt == OPT_JSON ? STREAM_RECFMT_JSON : STREAM_RECFMT_MSGPACK;
            if (o->structured && o->structured != k)
                usage_error("--json and --msgpack cannot be combined");
            o->structured = k;
            break;
        }
        case 'p':
            o->partition = (int32_t)cmd_parse_int(optarg, 0, INT32_MAX, "partition");
            break;
        case OPT_ACKS:
            if (stream_cli_parse_acks(optarg, &o->pconf.acks, err, sizeof(err)) != 0)
                usage_error("--acks: %s", err);
            break;
        case OPT_LINGER:
            o->pconf.linger_ms = (int)cmd_parse_int(optarg, 0, 60000, "--linger-ms");
            break;
        case OPT_BATCH: {
            int64_t n;
            if (stream_size_parse_str(optarg, &n, err, sizeof(err)) != 0)
                usage_error("--batch-bytes: %s", err);
            if (n < 1 || n > (1 << 30))
                usage_error("--batch-bytes: '%s' is out of range (1 to 1g)", optarg);
            o->pconf.batch_bytes = (size_t)n;
            if (o->pconf.max_request_bytes < o->pconf.batch_bytes)
                o->pconf.max_request_bytes = o->pconf.batch_bytes;
            break;
        }
        case 'z': {
            int codec = stream_codec_from_name(optarg);
            if (codec < 0)
                usage_error("-z: unknown codec '%s' (expected none, gzip, snappy, lz4 or zstd)",
                            optarg);
            o->pconf.codec = (stream_codec)codec;
            break;
        }
        case OPT_RETRIES:
            o->pconf.retries = (int)cmd_parse_int(optarg, 0, INT32_MAX, "--retries");
            break;
        case OPT_ACK_LOG:
            o->ack_log = optarg;
            break;
        case OPT_NO_IDEMPOTENCE:
            o->pconf.idempotence = false;
            break;
        case OPT_URL:
            o->url = optarg;
            break;
        case OPT_JSON_ARRAY:
            o->json_array = true;
            break;
        case OPT_FOLLOW:
            o->follow = true;
            break;
        case OPT_POLL:
            o->poll_ms = cmd_parse_int(optarg, 1, 86400, "--poll") * 1000;
            break;
        case OPT_RESUME:
            o->resume = true;
            break;
        case OPT_CACERT:
            o->http.cacert = optarg;
            o->http_opts = true;
            break;
        case OPT_INSECURE:
            o->http.insecure = o->http_opts = true;
            break;
        case OPT_HTTP_HEADER: {
            int rc = stream_http_conf_add_header(&o->http, optarg, err, sizeof(err));
            if (rc == STREAM_ENOMEM)
                die("out of memory");
            if (rc != 0)
                usage_error("--http-header: %s", err);
            o->http_opts = true;
            break;
        }
        case 'q':
            cmd_verbosity = 0;
            break;
        case OPT_PROGRESS:
            o->progress = STREAM_PROGRESS_ON;
            break;
        case OPT_NO_PROGRESS:
            o->progress = STREAM_PROGRESS_OFF;
            break;
        case 'v':
            cmd_verbosity = cmd_verbosity < 1 ? 2 : cmd_verbosity + 1;
            break;
        case 'h':
            cmd_help(usage_text);
        case OPT_VERSION:
            cmd_version();
        case ':':
        case '?':
            cmd_bad_option(opt, argv);
        default:
            break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s' (records are read from standard input)",
                    argv[optind]);
    if (o->topic == NULL || *o->topic == '\0')
        usage_error("no topic given (-t TOPIC)");
    if (o->structured && (delim_arg || o->key_delim.len || o->whole || has_key_opts))
        usage_error("--json and --msgpack records carry their own keys and headers: "
                    "-D, -K, -k, -H, -Z and -l do not apply");
    if (o->whole && delim_arg)
        usage_error("-l reads one record: -D does not apply");
    if (o->url == NULL && (o->json_array || o->follow || o->poll_ms || o->resume || o->http_opts))
        usage_error("--json-array, --follow, --poll, --resume, --cacert, --insecure and "
                    "--http-header go with --url URL");
    if (o->follow && o->poll_ms)
        usage_error("--follow reads a stream and --poll fetches repeatedly: choose one");
    if (o->resume && !o->follow)
        usage_error("--resume goes with --follow (it resumes an event stream)");
    if (o->json_array && (o->structured || o->whole || delim_arg))
        usage_error("--json-array splits the body itself: --json, --msgpack, -l and -D do "
                    "not apply");
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    pub_opts o = {0};
    o.partition = STREAM_PARTITION_ANY;
    stream_buf_init(&o.delim);
    stream_buf_init(&o.key_delim);
    stream_buf_put_u8(&o.delim, '\n');
    stream_producer_conf_init(&o.pconf);
    stream_http_conf_init(&o.http);
    o.http.backoff_ms = 100; /* reconnects: 100 ms, doubling to 30 s, with jitter */
    parse_options(argc, argv, &o);

    /* A closed pipe must be an error we see (EPIPE), not a silent death;
     * SIGINT/SIGTERM stop reading, and the records read are still
     * delivered and counted (a second signal kills at once). */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    pub_state st = {0};
    if (o.ack_log) {
        st.ack_log = strcmp(o.ack_log, "-") == 0 ? stdout : fopen(o.ack_log, "a");
        if (st.ack_log == NULL)
            die("cannot open %s: %s", o.ack_log, strerror(errno));
    }

    char err[1024];
    stream_client *c;
    stream_client_conf ccf;
    cmd_client_conf(&ccf, o.brokers, "stream-pub/" STREAM_VERSION);
    if (stream_cli_connect_conf(&ccf, 0, &c, err, sizeof(err)) != 0)
        die("%s", err);
    o.pconf.on_delivery = on_delivery;
    o.pconf.opaque = &st;
    stream_producer *p;
    if (stream_producer_new(c, &o.pconf, &p, err, sizeof(err)) != 0) {
        stream_client_free(c);
        die("%s", err);
    }

    /* The size is known when standard input is a file: "stream-pub < FILE". */
    uint64_t total = 0;
    struct stat sb;
    if (o.url == NULL && fstat(0, &sb) == 0 && S_ISREG(sb.st_mode)) {
        off_t at = lseek(0, 0, SEEK_CUR);
        if (at >= 0 && sb.st_size > at)
            total = (uint64_t)(sb.st_size - at);
    }
    stream_progress_mode pm = o.progress;
    if (pm == STREAM_PROGRESS_AUTO && cmd_verbosity == 0)
        pm = STREAM_PROGRESS_OFF;
    stream_progress_init(&st.progress, stderr, pm, cmd_name, total);

    err[0] = '\0';
    int rc = o.url          ? run_url(&o, c, p, &st, err, sizeof(err))
             : o.structured ? run_structured(&o, p, &st, err, sizeof(err))
                            : run_delimited(&o, p, &st, err, sizeof(err));
    bool input_error = rc < 0 && err[0] != '\0';

    /* Every record read gets its report before we judge the run; what is
     * still unreported after flush is reported failed (ECLOSED) by free. */
    stream_producer_flush(p, -1);
    stream_producer_free(p, 0);
    stream_client_free(c);
    stream_progress_finish(&st.progress);

    int status = EXIT_OK;
    if (st.ack_log && (fflush(st.ack_log) != 0 || st.ack_log_failed)) {
        warn("cannot write %s: %s", o.ack_log, strerror(errno));
        status = EXIT_FAIL;
    }
    if (st.ack_log && st.ack_log != stdout)
        fclose(st.ack_log);
    if (input_error) {
        /* The reader stops at a bad record: nothing after it lines up. */
        warn("%s (input stopped there; records read before it: %" PRIu64 ")", err, st.records);
        status = EXIT_FAIL;
    }
    if (st.failed > 0) {
        warn("%" PRIu64 " of %" PRIu64 " records failed: %s", st.failed, st.records, st.first_err);
        status = EXIT_FAIL;
    } else if (st.acked != st.records) {
        /* Cannot happen if the producer keeps its one-report promise; never
         * call a record delivered without its report. */
        warn("%" PRIu64 " of %" PRIu64 " records were not acknowledged", st.records - st.acked,
             st.records);
        status = EXIT_FAIL;
    }
    if (status == EXIT_OK)
        info(2, "%" PRIu64 " records published to '%s'", st.acked, o.topic);
    if (stop_signal)
        info(2, "stopped by signal %d after %" PRIu64 " records", (int)stop_signal, st.records);
    free(o.headers);
    stream_http_conf_release(&o.http);
    stream_buf_release(&o.delim);
    stream_buf_release(&o.key_delim);
    return status;
}
