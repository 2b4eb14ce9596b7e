/*
 * http_sink.h - delivers what a consumer reads to an HTTP endpoint
 * (`stream-sub --post URL`), at least once, in order per partition.
 *
 * The sink takes records from a stream_consumer and POSTs them with
 * libcurl's multi interface: connections are reused, HTTP/2 is used over
 * TLS when the server offers it (requests then share one connection as
 * streams; HTTP/1.1 otherwise), and several requests
 * are in flight at once -- but at most one per partition, so a partition's
 * records reach the endpoint in offset order, retries included: a batch is
 * retried before the next batch of its partition is sent.
 *
 * Bodies:
 *   batches (default)  up to batch_records records of one partition as JSON
 *                      lines (the caller's `encode`: stream-sub's --json
 *                      envelope), Content-Type: application/x-ndjson; a
 *                      batch is sent when full, when batch_bytes is
 *                      reached, or linger_ms after its first record;
 *   each               one request per record: the value is the body
 *                      (application/octet-stream), and the record travels
 *                      in headers:
 *                        Stream-Topic, Stream-Partition, Stream-Offset,
 *                        Stream-Timestamp (ms), Stream-Key (absent for a
 *                        null key), Stream-Value-Null: true (a tombstone,
 *                        empty body), and one Stream-Header: NAME=VALUE per
 *                        record header in order (NAME alone for a null
 *                        value);
 *                      key, names and values percent-encoded (RFC 3986:
 *                      every byte but letters, digits and -._~ as %XX).
 *   Batches carry Stream-Topic, Stream-Partition, Stream-Offset (the first
 *   record's) and Stream-Count, so an endpoint can drop a replay it has
 *   already taken. The caller's -H headers go on every request.
 *
 * Answers:
 *   2xx                delivered: with a group, the partition's offset after
 *                      the batch is stored for the next commit (records are
 *                      committed only once every record before them got a
 *                      2xx: at-least-once, a crash replays at most what was
 *                      in flight or not yet committed);
 *   408, 429, 5xx and  retried after the server's Retry-After (capped at
 *   transport errors   http->backoff_max_ms) or an exponential backoff with
 *                      jitter, at most http->retries times; then the run
 *                      stops: STREAM_HTTP_SINK_GAVE_UP;
 *   any other answer   (4xx, 3xx: redirects are not followed) with a
 *                      dead-letter topic: each record of the request is
 *                      published there (acks=all) with its key, value and
 *                      headers plus stream.dlq.url, stream.dlq.status,
 *                      stream.dlq.response (the first 512 bytes of the
 *                      answer), stream.dlq.topic, stream.dlq.partition and
 *                      stream.dlq.offset, and counts as delivered once
 *                      stored; without one, the run stops:
 *                      STREAM_HTTP_SINK_REJECTED.
 *   A refused certificate, a malformed URL or an unsupported scheme fails
 *   at once (retrying would fail the same way): STREAM_HTTP_SINK_ERROR.
 *
 * Memory is bounded: records are taken from the consumer only while less
 * than max_buffered_bytes wait (in batches or in flight), and only the
 * first max_answer_bytes of an answer's body are kept (the rest is read
 * and dropped), whatever the server sends. The consumer is still polled
 * for its group's heartbeats while the sink waits.
 */
#ifndef STREAM_HTTP_SINK_H
#define STREAM_HTTP_SINK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"
#include "stream/client.h"
#include "stream/http.h"

/* Appends one record's JSON line (with its "\n") to out. Returns 0, or a
 * negative code with errbuf (the run then stops with it). */
typedef int (*stream_http_sink_encode_fn)(void *arg, stream_buf *out,
                                          const stream_consumer_event *ev, char *errbuf,
                                          size_t errbuf_len);

typedef struct stream_http_sink_conf {
    const char *url;                   /* where to POST; borrowed */
    const stream_http_conf *http;      /* TLS, -H, timeouts, retries; borrowed */
    const char *agent;                 /* User-Agent; default "libstream/VERSION"; borrowed */
    bool each;                         /* one request per record (see above) */
    size_t batch_records;              /* records per batch; default 500 */
    size_t batch_bytes;                /* a batch is sent at this body size; default 1 MiB */
    int linger_ms;                     /* a batch waits at most this for more records;
                                          default 50 */
    int max_in_flight;                 /* requests in flight (one per partition); default 8 */
    size_t max_buffered_bytes;         /* records held before the consumer is paused;
                                          default 64 MiB */
    size_t max_answer_bytes;           /* of an answer's body kept; default 512 */
    const char *dead_letter_topic;     /* rejected records go here; NULL: stop; borrowed */
    stream_http_sink_encode_fn encode; /* batches: a record's JSON line (required) */
    void *encode_arg;                  /* passed to encode */
    bool group;                        /* the consumer is in a group: store offsets */
    uint64_t count;                    /* stop after taking this many records; 0: none */
    volatile sig_atomic_t *stop;       /* set (by a signal handler): take no more records,
                                          deliver what was taken, return; may be NULL */
    volatile sig_atomic_t *abort;      /* set: return at once, abandoning what is in
                                          flight (nothing of it is stored); may be NULL */
} stream_http_sink_conf;

/* Fills conf with the defaults above (no url, http, encode). */
void stream_http_sink_conf_init(stream_http_sink_conf *conf);

/* Why a run ended. */
typedef enum stream_http_sink_end {
    STREAM_HTTP_SINK_DONE = 0,     /* the consumer is done (-e), count reached or stopped */
    STREAM_HTTP_SINK_GAVE_UP = 1,  /* retries spent on a retryable failure */
    STREAM_HTTP_SINK_REJECTED = 2, /* a non-retryable answer and no dead-letter topic */
    STREAM_HTTP_SINK_ERROR = 3,    /* anything else (TLS refused, a partition's error,
                                      the dead-letter topic failing, out of memory) */
} stream_http_sink_end;

/* What a run did. */
typedef struct stream_http_sink_stats {
    stream_http_sink_end end; /* why it ended */
    uint64_t taken;           /* records taken from the consumer */
    uint64_t delivered;       /* records answered 2xx */
    uint64_t dead_lettered;   /* records stored in the dead-letter topic */
    uint64_t requests;        /* requests answered (any status, retries included) */
    uint64_t retries;         /* requests sent again */
} stream_http_sink_stats;

/* Runs the sink: takes records from co (assigned or subscribed; with
 * conf->group the consumer must have auto_store off) and delivers them to
 * conf->url until the consumer is done, conf->count records were taken and
 * delivered, *conf->stop is set, or something fails. c is co's client (the
 * dead-letter producer shares it). Returns 0 (stats->end DONE), or a
 * negative code with errbuf naming the URL and what failed ("POST
 * http://h/x: gave up after 5 retries: 503 Service Unavailable: <start of
 * the answer>") and stats->end saying which kind of failure. Records
 * delivered before a failure stay stored. */
int stream_http_sink_run(stream_client *c, stream_consumer *co, const stream_http_sink_conf *conf,
                         stream_http_sink_stats *stats, char *errbuf, size_t errbuf_len);

#endif /* STREAM_HTTP_SINK_H */
