/*
 * client.h - the client side of the native protocol: a connection to the
 * brokers, a metadata cache, a producer, a consumer and admin calls.
 *
 * Every program that talks to a broker (stream-pub, stream-sub, stream-topics,
 * stream-shell, stream-bench) goes through this header; none of them speaks
 * the wire protocol (share/doc/protocol.md) itself.
 *
 * The model
 * ---------
 * A stream_client has a bootstrap connection to one broker of the list it
 * was given ("h1:p1,h2:p2"; tried in order, any live one will do): metadata,
 * admin calls and consumer groups use it (in a cluster a group talks to its
 * coordinator, found with find_coordinator). In a cluster, the producer and
 * the consumer also need each partition's leader: the client opens one more
 * connection per broker node it has to reach, on demand, at the address the
 * metadata gives (the bootstrap connection serves the node it reached, so on
 * a single broker there is one connection). On every connection requests are
 * pipelined: up to `max_in_flight` are on the wire at once and responses come
 * back in request order, matched by correlation id. More requests than that
 * wait in a queue. stream_client_poll drives every connection at once (one
 * poll(2)), so a long poll on one broker never holds up another's answers.
 *
 * No hidden threads. The caller drives all I/O by calling
 * stream_client_poll() (or the poll/flush calls of the producer and consumer,
 * and every blocking call, which are loops around it). Callbacks (delivery
 * reports, internal response handlers) run only inside those calls, on the
 * caller's thread. A client and everything created on it (producer,
 * consumer) belong to one thread; use one client per thread.
 *
 * Connection loss: when the connection drops (or a response is overdue by
 * request_timeout_ms, which closes it: responses are in order, so one lost
 * response blocks every later one), every request in flight fails with
 * STREAM_ECONNRESET or STREAM_ETIMEDOUT and the client reconnects on the next
 * request, with exponential backoff between attempts (reconnect_backoff_ms
 * doubling up to reconnect_backoff_max_ms). The producer retries such
 * requests; blocking calls report them.
 *
 * Leaders (a cluster): produce, fetch and list_offsets for a partition go to
 * its leader as the cached metadata names it. When a leader answers
 * ENOTLEADER (another broker leads now), ENOTENOUGHREPLICAS (acks=all with
 * too few in-sync replicas), or its connection dies, the producer and the
 * consumer refresh that topic's metadata (at most every 100 ms per topic)
 * and carry on with the leader it names: the producer resends the same
 * batches (idempotence keeps each stored once, in order; see "Retries"), the
 * consumer fetches again from its position (nothing skipped, nothing
 * twice). While a partition has no leader (leader -1: an election), its
 * batches wait, within delivery_timeout_ms. The brokers a cluster's metadata
 * lists also join the bootstrap list, so losing every broker named at start
 * still leaves the others to ask.
 *
 * Errors: every call returns 0 (or a documented non-negative value) or a
 * negative STREAM_E* code from error.h. Calls that can fail for reasons a user
 * must see take `char *errbuf, size_t errbuf_len` (errbuf may be NULL), written
 * only on failure with one line that names the broker, topic, partition or
 * offset involved, e.g. "cannot connect to 127.0.0.1:9292: connection refused".
 * Programs print that line (adding, e.g., "(is stream-broker running?)");
 * the library never prints.
 *
 * Timeouts: for blocking metadata and admin calls, a `timeout_ms` of -1
 * means "the client's request_timeout_ms"; other calls say what -1 means
 * (poll: wait forever). 0 means "do not wait" where that makes sense.
 *
 * Ownership order: free the producer and consumer before their client.
 *
 * Responses in order per connection: a consumer's long-polling fetch (up to
 * max_wait_ms) delays every response queued behind it on the same
 * connection. A program that produces and consumes at the same time should
 * give the producer and the consumer a client each.
 */
#ifndef STREAM_CLIENT_H
#define STREAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/batch.h"
#include "stream/timespec.h"

/* ------------------------------------------------------------------------ */
/* The client: connection, pipelining, metadata                              */
/* ------------------------------------------------------------------------ */

typedef struct stream_client stream_client;

#define STREAM_DEFAULT_BROKERS "127.0.0.1:9292"

typedef struct stream_client_conf {
    const char *brokers;          /* "host:port,host:port" (IPv6 as [addr]:port); copied by
                                     _new. Default "127.0.0.1:9292". */
    const char *client_name;      /* Sent in hello; copied. Default "libstream". */
    int connect_timeout_ms;       /* One TCP connect + hello, per broker tried. Default 5000. */
    int request_timeout_ms;       /* A request unanswered this long fails with ETIMEDOUT and
                                     the connection is closed. Also the default of blocking
                                     calls. Default 30000. Long-poll fetches get their
                                     max_wait_ms on top. */
    int max_in_flight;            /* Requests on the wire at once per connection
                                     (pipelining). 1..1024, default 16. */
    int reconnect_backoff_ms;     /* First wait before reconnecting. Default 50. */
    int reconnect_backoff_max_ms; /* Cap of the doubling wait. Default 2000. */
    uint32_t max_frame_bytes;     /* A response frame larger than this closes the connection
                                     (EPROTO). Default 128 MiB: fetch responses are bounded by
                                     the consumer's max_bytes well below this. */
    int metadata_max_age_ms;      /* Cached metadata older than this is refreshed when next
                                     needed. Default 300000. */
    bool tls;                     /* Speak TLS to every broker, verifying its certificate
                                     and that it names the host connected to. Default
                                     false; implied by tls_ca_file and tls_cert_file. */
    const char *tls_ca_file;      /* PEM CAs trusted for the brokers' certificates; NULL:
                                     the system's. Read by _new. */
    const char *tls_cert_file;    /* PEM client certificate for brokers that ask for one
                                     (with tls_key_file); NULL: none. Read by _new. */
    const char *tls_key_file;     /* Its PEM private key. */
} stream_client_conf;

/* Fills conf with the defaults above. */
void stream_client_conf_init(stream_client_conf *conf);

/* Validates conf (every field in range, the broker list parses, the TLS
 * files load) and creates a client. Does no I/O: the first request, or
 * stream_client_connect, connects. conf may be NULL for all defaults.
 * Returns 0, STREAM_EINVAL (errbuf says which field or file), STREAM_ENOMEM.
 * Over TLS a broker whose certificate does not verify fails the connect
 * with STREAM_ETLS, errbuf naming the reason ("certificate verification
 * failed: certificate has expired"). */
int stream_client_new(const stream_client_conf *conf, stream_client **out, char *errbuf,
                      size_t errbuf_len);

/* Closes the connection and frees the client. Requests still pending are
 * dropped without their callbacks running (free the producer/consumer
 * first: they finish or fail their own work). NULL is a no-op. */
void stream_client_free(stream_client *c);

/* Connects now (if not connected) and waits for the broker's hello response,
 * trying each broker of the list in order until one answers. Returns 0,
 * STREAM_ECONNREFUSED, STREAM_ETIMEDOUT, STREAM_EPROTO (the peer does not
 * speak our protocol version), STREAM_EIO (name resolution and other
 * failures). errbuf: "cannot connect to 127.0.0.1:9292: connection refused"
 * (several brokers: "cannot connect to any of h1:p1, h2:p2: ...", with the
 * last broker's reason). timeout_ms bounds the whole call (-1: the
 * connect_timeout_ms per broker). Programs call this first so an unreachable
 * broker is reported before any work starts. */
int stream_client_connect(stream_client *c, int timeout_ms, char *errbuf, size_t errbuf_len);

/* Does the I/O that is ready (send queued requests, read responses, connect,
 * time out overdue requests, reconnect after backoff) and runs the callbacks
 * that follow, waiting at most timeout_ms (0: do not wait; -1: until
 * something happens) for the first event. Returns the number of responses
 * processed (>= 0), 0 also when interrupted by a signal (so a SIGINT flag
 * can be checked), or a negative code only for a broken client (ENOMEM). */
int stream_client_poll(stream_client *c, int timeout_ms);

/* True while a connection is established and its hello answered. */
bool stream_client_connected(const stream_client *c);

/* "host:port" of the broker connected to (or last tried). Borrowed; valid
 * until the next call on c. */
const char *stream_client_broker(const stream_client *c);

/* Requests sent or queued and not yet answered. */
size_t stream_client_pending(const stream_client *c);

/* The metadata of a cluster as the metadata op returns it. */
typedef struct stream_broker_meta {
    int32_t node_id; /* Broker id. */
    char *host;      /* Owned by the stream_metadata. */
    int port;
} stream_broker_meta;

typedef struct stream_partition_meta {
    int32_t partition;        /* Partition number, 0..partition_count-1. */
    int err;                  /* 0, or why this partition is unavailable. */
    int32_t leader;           /* Node id of the leader; -1 when there is none. */
    int32_t leader_epoch;     /* -1 when the broker does not report one. */
    int64_t log_start_offset; /* First offset still stored; -1 when not reported. */
    int64_t high_watermark;   /* Offset after the last readable record; -1 when not
                                 reported. */
    int64_t size_bytes;       /* Bytes on disk; -1 when not reported. */
    int64_t log_end_offset;   /* Offset the next record gets; -1 when not reported. */
    bool compacted;           /* The broker reported the two below (a topic with
                                 cleanup.policy compact). */
    int32_t dirty_ratio_ppm;  /* Share of the closed segments' bytes not cleaned yet,
                                 in millionths. */
    int64_t last_clean_ms;    /* Wall clock of the last cleaning since the broker
                                 started; -1 none. */
    int32_t *replicas;        /* Owned: the replicas' node ids, preferred leader first. A
                                 single node (which does not send them): its own id. */
    uint32_t replica_count;
    int32_t *isr;             /* Owned: the in-sync replicas (a single node: itself). */
    uint32_t isr_count;
} stream_partition_meta;

typedef struct stream_topic_meta {
    char *name;                        /* Owned by the stream_metadata. */
    int err;                           /* 0, STREAM_ENOTOPIC, ... */
    bool internal;                     /* Name starts with "__". */
    int32_t partition_count;           /* Entries in partitions (0 when err). */
    stream_partition_meta *partitions; /* Sorted by partition number. */
} stream_topic_meta;

typedef struct stream_metadata {
    size_t broker_count;
    stream_broker_meta *brokers;
    size_t topic_count;
    stream_topic_meta *topics; /* Sorted by name. */
} stream_metadata;

/* Asks the broker for the metadata of `topics` (n names), or of every topic
 * when topics is NULL (listing), waits for it, refreshes the client's cache
 * from it and returns it in *out (free with stream_metadata_free). A topic
 * that does not exist comes back with err STREAM_ENOTOPIC; the call itself
 * returns 0. Returns 0, STREAM_ECONNREFUSED/ECONNRESET/ETIMEDOUT (transport),
 * or the error the broker returned for the whole request. */
int stream_client_metadata(stream_client *c, const char *const *topics, size_t n, int timeout_ms,
                           stream_metadata **out, char *errbuf, size_t errbuf_len);

/* Frees metadata from stream_client_metadata. NULL is a no-op. */
void stream_metadata_free(stream_metadata *md);

/* The topic's partition count from the cache, fetching metadata (blocking, up
 * to timeout_ms) when the topic is not cached or the entry is too old.
 * Returns the count (> 0), STREAM_ENOTOPIC ("unknown topic 'x'"), or a
 * transport error. */
int stream_client_partition_count(stream_client *c, const char *topic, int timeout_ms, char *errbuf,
                                  size_t errbuf_len);

/* Marks the cached metadata of `topic` (NULL: all topics) stale so the next
 * use fetches it again. The producer and consumer do this themselves on
 * ENOTOPIC, ENOTLEADER and ENOPART. */
void stream_client_invalidate_metadata(stream_client *c, const char *topic);

/* ------------------------------------------------------------------------ */
/* Producer                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Records are copied at once into a per-partition batch (stream_batch_builder)
 * so the caller may reuse its buffers after stream_producer_produce returns.
 * A batch is sent when it reaches batch_bytes, when linger_ms has passed
 * since its first record, or on flush. One produce request carries the ready
 * batches of every partition led by the same broker (one request per
 * leader; a partition whose leader moved sends to the new one once its
 * requests to the old one are answered, so batches never overtake each
 * other). While a partition
 * cannot send (max_in_flight_per_partition requests of it are out, or an
 * earlier batch of it waits), its batch stays open past linger_ms and keeps
 * filling up to batch_bytes, as Kafka's producer does: the next request
 * carries everything that accumulated meanwhile, so records do not queue up
 * one small batch each behind a slow acknowledgement (acks=all).
 *
 * Partition choice: the record's partition when >= 0; else, for a non-null
 * key, murmur2(key) mod partitions (Kafka's; stream_partition_for_key); else
 * the sticky partition, which changes when that topic's batch is sent.
 *
 * Delivery reports: exactly one per record, through conf.on_delivery, run
 * only inside stream_producer_poll, _flush and _free (never inside _produce
 * or another object's poll). err 0 means the broker acknowledged the record
 * at `offset` (acks 1 or all); successes come in produce order per partition
 * (without idempotence, unless a retry overtook: see below). With acks=0 nothing is acknowledged: the report comes when
 * the request has been written to the socket, with err 0 and offset -1.
 * A record is never reported delivered before that.
 *
 * Retries: a batch whose request fails with a retriable error (ECONNRESET,
 * ECONNREFUSED, ETIMEDOUT, ENOTLEADER, ENOTENOUGHREPLICAS, ESTALEEPOCH,
 * ENOBROKER, ENOPART, ENOTOPIC, EAGAIN, ECLOSED, EPROTO) is sent again, to
 * the partition's leader as metadata refreshed meanwhile names it (every
 * error but EAGAIN and EPROTO refreshes it), after retry_backoff_ms
 * (doubling up to retry_backoff_max_ms), at most
 * `retries` times and never after delivery_timeout_ms from the record's
 * produce call; then its records are reported with the last error. Other
 * errors (ECRC, ETOOLARGE, EBADNAME, EBADREQ, ...) fail at once. While no
 * broker can be reached, each failed connection round counts one attempt
 * for every batch waiting to be sent, so a dead broker is reported within
 * the reconnect backoffs however many batches wait.
 *
 * Idempotence (conf.idempotence, the default; Kafka's idempotent producer):
 * at its first produce the producer gets a producer id from the broker
 * (init_producer_id; produce may block for it, as for metadata) and numbers
 * each partition's records; every batch carries the id, an epoch and the
 * sequence number of its first record, and a resend is the same bytes. The
 * broker stores a batch only if it is the next in sequence, and answers a
 * resend of one of the producer's last 16 batches with the offset it stored
 * it at, writing nothing. So a request that landed but whose response was
 * lost is not stored twice, and a batch behind a failed one is refused
 * (EOUTOFORDERSEQ) and resent in order, never overtaking it: every record
 * reported delivered is stored exactly once, in produce order per partition.
 * When a batch fails for good, the partition's sequence restarts under a
 * new epoch once its requests in flight are answered. A resend the broker
 * knows was stored but too long ago to know where (EDUPLICATESEQ) is
 * reported delivered with offset -1. Without idempotence (or with acks 0)
 * delivery is at-least-once: a resent batch may be stored twice, and a
 * retry may overtake a later batch unless max_in_flight_per_partition is 1.
 */
typedef struct stream_producer stream_producer;

/* With stream_producer_conf.timing: where the time of the record's last
 * send went (stream-bench e2e -v). Client times are CLOCK_MONOTONIC
 * nanoseconds; the broker's are microseconds, -1 when it did not say
 * (acks=1 waits for nothing; a round older than the broker remembers). */
typedef struct stream_delivery_timing {
    int64_t sent_ns;       /* the request carrying it was handed to the connection */
    int64_t acked_ns;      /* its answer arrived */
    int64_t append_us;     /* broker: from the request's handling to the append */
    int64_t durable_us;    /* broker: from the append to the answer (acks=all) */
    int64_t round_wait_us; /* broker: from the append to the start of the sync round
                              on its own disk that covered it */
    int64_t sync_us;       /* broker: that round (its fdatasyncs) */
} stream_delivery_timing;

/* What a delivery report says about one record. */
typedef struct stream_delivery {
    const char *topic; /* Borrowed; valid during the callback. */
    int32_t partition; /* The partition chosen (-1 if none could be). */
    int64_t offset;    /* The record's offset; -1 with acks=0 or on error. */
    int64_t timestamp; /* The record's timestamp (after 0 became "now"). */
    int err;           /* 0: stored (acks 1/all) or sent (acks 0). Else why not. */
    const char *msg;   /* Detail when err != 0 ("topic 'x' partition 3: not
                          leader for partition"); borrowed; "" when err == 0. */
    void *opaque;      /* The record's opaque from stream_producer_record. */
    const stream_delivery_timing *timing; /* NULL unless conf.timing and stored;
                                             borrowed, valid during the callback */
} stream_delivery;

typedef void (*stream_delivery_cb)(stream_producer *p, const stream_delivery *d, void *opaque);

#define STREAM_ACKS_ALL (-1)

typedef struct stream_producer_conf {
    int acks;                        /* 0, 1 or STREAM_ACKS_ALL (-1, default). */
    int linger_ms;                   /* Wait for more records up to this. 0..60000, default 5. */
    size_t batch_bytes;              /* Send a partition's batch at this size (uncompressed).
                                        Default 256 KiB. A single larger record makes a batch
                                        of its own. */
    size_t buffer_bytes;             /* Bytes of records held (accumulating or in flight)
                                        before produce returns EAGAIN. Default 64 MiB. */
    size_t max_request_bytes;        /* Cap on one produce request (sum of batches).
                                        Default 4 MiB (>= batch_bytes). */
    stream_codec codec;              /* Compression of batches. Default STREAM_CODEC_NONE. */
    int codec_level;                 /* 0: the codec's default. */
    int retries;                     /* Resends of a failed batch. 0..INT32_MAX, default 30
                                        (with the backoffs: ride out about a minute of
                                        broker outage). */
    int retry_backoff_ms;            /* Default 100. */
    int retry_backoff_max_ms;        /* Default 1000. */
    int delivery_timeout_ms;         /* Report failure if not delivered by then. Default
                                        120000. */
    int max_in_flight_per_partition; /* Produce requests in flight per partition. Default 16,
                                        at most 16 with idempotence (the broker remembers a
                                        producer's last 16 batches); 1 keeps order through
                                        retries without idempotence. */
    bool idempotence;                /* Default true: resends and retries never duplicate
                                        or reorder records (see above). Ignored with acks
                                        0, which hears of no error to retry. */
    stream_delivery_cb on_delivery;  /* May be NULL (then failures are only counted). */
    void *opaque;                    /* Passed to on_delivery. */
    bool timing;                     /* Default false: ask the broker where each request's
                                        time went; reports carry it (stream_delivery.timing). */
} stream_producer_conf;

/* Fills conf with the defaults above. */
void stream_producer_conf_init(stream_producer_conf *conf);

/* Creates a producer that sends through client c (borrowed: c must outlive
 * the producer). conf NULL: defaults. Returns 0, STREAM_EINVAL (errbuf names
 * the field), STREAM_ENOMEM. */
int stream_producer_new(stream_client *c, const stream_producer_conf *conf, stream_producer **out,
                        char *errbuf, size_t errbuf_len);

/* Waits up to timeout_ms (-1: delivery_timeout_ms) for outstanding records
 * (stream_producer_flush), then reports the rest as failed with
 * STREAM_ECLOSED and frees the producer. NULL is a no-op. */
void stream_producer_free(stream_producer *p, int timeout_ms);

#define STREAM_PARTITION_ANY (-1) /* let the partitioner choose */

/* One record to produce. Zero-initialise it ({0}) and set what you need:
 * note that partition 0 is a real partition, so set STREAM_PARTITION_ANY
 * explicitly for partitioning by key or sticky. */
typedef struct stream_producer_record {
    const char *topic;            /* Required. */
    int32_t partition;            /* >= 0, or STREAM_PARTITION_ANY. */
    int64_t timestamp;            /* ms since epoch; 0 = now. */
    const void *key;              /* NULL with key_len -1 (or 0) for a null key. */
    int32_t key_len;              /* -1 null; NULL key with 0 also means null. */
    const void *value;            /* Likewise. */
    int32_t value_len;            /* -1 null (a tombstone). */
    const stream_header *headers; /* header_count entries; a NULL value with
                                     value_len -1 is a null header value. */
    size_t header_count;
    void *opaque; /* Returned in this record's delivery report. */
} stream_producer_record;

/* Appends a copy of the record to its partition's batch. Never blocks on the
 * network, except to fetch the metadata of a topic not seen before and, with
 * idempotence, the producer id at the first produce (each up to the client's
 * request_timeout_ms). A topic that does not exist is created
 * then, with the broker's default partition count, when the broker has
 * auto.create.topics.enable (as its first produce would), so the partition
 * count is known before any record is partitioned. Returns 0 (the record now
 * has exactly one delivery report to come), or — with no report to come —
 *   STREAM_EAGAIN     buffer_bytes are in use: call stream_producer_poll and
 *                     try again,
 *   STREAM_ENOTOPIC   the topic does not exist (and the broker does not
 *                     create topics on produce),
 *   STREAM_EBADNAME   the topic name breaks the grammar,
 *   STREAM_ENOPART    partition >= the topic's partition count,
 *   STREAM_ETOOLARGE  the record alone exceeds max_request_bytes,
 *   STREAM_EINVAL     a bad field (no topic, length < -1, NULL with length),
 *   STREAM_EUNKNOWNOP the broker gives no producer ids (too old for
 *                     idempotence: turn conf.idempotence off),
 *   a transport error while fetching metadata or the producer id,
 *   STREAM_ENOMEM.
 * errbuf names the topic and partition. */
int stream_producer_produce(stream_producer *p, const stream_producer_record *rec, char *errbuf,
                            size_t errbuf_len);

/* Sends batches whose linger has passed, does the client's I/O (waiting at
 * most timeout_ms) and runs delivery reports. Returns the number of reports
 * run, or a negative code for a broken client. */
int stream_producer_poll(stream_producer *p, int timeout_ms);

/* Sends every batch now and polls until every record produced so far has had
 * its delivery report, or timeout_ms passed (-1: no limit other than each
 * record's delivery_timeout_ms). Returns 0 when none is outstanding,
 * STREAM_ETIMEDOUT otherwise. Returns 0 even if some deliveries failed:
 * count failures in the callback or with stream_producer_stats. */
int stream_producer_flush(stream_producer *p, int timeout_ms);

/* Records produced and not yet reported. */
size_t stream_producer_outstanding(const stream_producer *p);

typedef struct stream_producer_stats {
    uint64_t records_delivered; /* Reports with err 0. */
    uint64_t records_failed;    /* Reports with err != 0. */
    uint64_t batches_sent;      /* Produce-request batches, retries included. */
    uint64_t requests_sent;     /* Produce requests (each with at most one batch per
                                   partition), retries included. */
    uint64_t retries;           /* Batches sent again after a failure of their own (not
                                   idempotent resends behind a failed batch). */
    uint64_t bytes_sent;        /* Batch bytes written (after compression). */
    int last_err;               /* The last failed report's code, 0 if none. */
} stream_producer_stats;

/* Copies the counters into *out. */
void stream_producer_stats_get(const stream_producer *p, stream_producer_stats *out);

/* ------------------------------------------------------------------------ */
/* Consumer                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A consumer reads partitions either assigned by the caller with start
 * positions (standalone: stream_consumer_assign), or handed to it by a
 * consumer group it joined (stream_consumer_subscribe, "Consumer groups"
 * below). It keeps one fetch request in flight for all its partitions
 * (one per leader in a cluster: each partition in one fetch at a time)
 * while the caller works through the previous response (fetch ahead), so at
 * most two responses (2 x max_bytes) are held (in a cluster, one more per
 * leader). Fetches long-poll on the
 * broker (max_wait_ms, min_bytes), so a caught-up consumer costs nothing.
 *
 * Records are returned one at a time by stream_consumer_poll, borrowing
 * key, value and headers from the fetch buffer (no per-record allocation);
 * they stay valid until the next call to stream_consumer_poll, _seek,
 * _assign, _unassign or _free. Batches that begin before the position (a
 * fetch returns whole batches) have their earlier records skipped; batches
 * are CRC-checked (check_crc) and decompressed by the batch iterator.
 *
 * Positions: the position of a partition is the offset of the next record
 * poll will return. It advances past every record returned.
 */
typedef struct stream_consumer stream_consumer;

/* Start and end positions are timespec.h's stream_offset_spec (what
 * stream_offset_spec_parse makes of `-o beginning`, `-o -10`, `-o @-1h..end`):
 *   start: BEGINNING (log start), END (high watermark), ABSOLUTE N, FROM_END N
 *          (N before the end, clamped to the log start), FROM_START N (log
 *          start + N, clamped to the end), TIME ms (first record with a
 *          timestamp >= ms, or the end when there is none). STORED is what
 *          a consumer group does (stream_consumer_subscribe): assign
 *          answers STREAM_EUNSUPPORTED for it.
 *   end:   NONE (follow; or, with conf.stop_at_end, END), END (the high
 *          watermark as it was at assign: a snapshot), ABSOLUTE N, FROM_END N,
 *          TIME ms; exclusive. Resolved once, at assign/seek time.
 */

/* What to do when a fetch position is out of range (STREAM_EOFFSET: below
 * the log start after retention, or past the end). */
typedef enum stream_offset_reset {
    STREAM_RESET_ERROR = 0,    /* Report a STREAM_EVENT_ERROR (with the valid range) and
                                  pause the partition until seek. Default. */
    STREAM_RESET_EARLIEST = 1, /* Move to the log start offset and go on. */
    STREAM_RESET_LATEST = 2,   /* Move to the high watermark and go on. */
} stream_offset_reset;

typedef struct stream_consumer_conf {
    int max_wait_ms;             /* Long poll: the broker answers an empty fetch after
                                    this. Default 500. */
    int32_t min_bytes;           /* ... or as soon as this many bytes are ready. Default 1. */
    int32_t max_bytes;           /* Cap of one fetch response (a first batch larger than
                                    this is still returned whole). Default 8 MiB. */
    int32_t max_partition_bytes; /* Cap per partition within a fetch. Default 2 MiB. */
    bool stop_at_end;            /* -e: a partition assigned without an end stops at the
                                    high watermark seen when it was assigned (a snapshot,
                                    so a busy topic still ends); default false (follow). */
    stream_offset_reset auto_offset_reset; /* Default STREAM_RESET_ERROR. */
    bool check_crc;                        /* CRC-check fetched batches. Default true. */
} stream_consumer_conf;

/* Fills conf with the defaults above. */
void stream_consumer_conf_init(stream_consumer_conf *conf);

/* Creates a consumer fetching through client c (borrowed: c must outlive
 * it). Returns 0, STREAM_EINVAL (errbuf names the field), STREAM_ENOMEM. */
int stream_consumer_new(stream_client *c, const stream_consumer_conf *conf, stream_consumer **out,
                        char *errbuf, size_t errbuf_len);

/* Frees the consumer (a fetch in flight is abandoned). NULL is a no-op. */
void stream_consumer_free(stream_consumer *co);

#define STREAM_PARTITION_ALL (-1) /* every partition of the topic */

/* Adds topic/partition (or every partition: STREAM_PARTITION_ALL) to the
 * assignment, from spec->start to spec->end (see above; spec NULL: from the
 * beginning, no end). Blocking: checks the topic and partition against
 * metadata and resolves the positions with list_offsets requests, so a bad
 * topic or a transport failure is reported here. A partition whose start is
 * already at or past its end is done at once (an EOF event follows).
 * Assigning a partition already assigned moves it (like seek). Returns 0,
 * STREAM_ENOTOPIC ("unknown topic 'x'"), STREAM_ENOPART ("topic 'x' has 3
 * partitions, no partition 7"), STREAM_EINVAL (bad spec),
 * STREAM_EUNSUPPORTED (STORED), transport errors, STREAM_ENOMEM. */
int stream_consumer_assign(stream_consumer *co, const char *topic, int32_t partition,
                           const stream_offset_spec *spec, char *errbuf, size_t errbuf_len);

/* Removes topic/partition (STREAM_PARTITION_ALL: the whole topic) from the
 * assignment; records already fetched for it are dropped. 0 or STREAM_ENOENT. */
int stream_consumer_unassign(stream_consumer *co, const char *topic, int32_t partition);

/* Moves an assigned partition (STREAM_PARTITION_ALL: every assigned
 * partition of the topic) to `to` (resolved like a start position: blocking
 * for anything but STREAM_OFFSET_ABSOLUTE). Fetched records not yet returned
 * are dropped; a paused partition (after an offset error) resumes; the end
 * stays what assign made it. Returns 0, STREAM_ENOENT (not assigned),
 * STREAM_EINVAL, transport errors. */
int stream_consumer_seek(stream_consumer *co, const char *topic, int32_t partition,
                         stream_offset_pos to, char *errbuf, size_t errbuf_len);

/* The position (next offset poll returns) of an assigned partition in *out.
 * 0 or STREAM_ENOENT. */
int stream_consumer_position(const stream_consumer *co, const char *topic, int32_t partition,
                             int64_t *out);

typedef enum stream_event_type {
    STREAM_EVENT_NONE = 0,
    STREAM_EVENT_RECORD = 1,   /* A record: topic, partition, record. */
    STREAM_EVENT_EOF = 2,      /* The partition reached its end: when it has an end
                                  (spec end or stop_at_end), once, there (the partition
                                  then stops); otherwise each time it catches up with the
                                  high watermark. offset is the position. */
    STREAM_EVENT_ERROR = 3,    /* A partition failed: err and msg say why. For STREAM_EOFFSET
                                  under STREAM_RESET_ERROR, log_start_offset and
                                  high_watermark give the valid range and the partition
                                  is paused until seek (or unassign). A group failure
                                  that ends membership (see stream_consumer_subscribe)
                                  has topic NULL and partition -1. */
    STREAM_EVENT_ASSIGNED = 4, /* Group mode: the group gave this partition to the
                                  consumer; records follow from offset (the committed
                                  offset, or where auto_offset_reset put it). */
    STREAM_EVENT_REVOKED = 5,  /* Group mode: the partition is no longer consumed here.
                                  err 0: revoked by a rebalance, after its processed
                                  offset (offset; -1 if none) was committed; err
                                  STREAM_EUNKNOWNMEMBER: lost (the session ended), nothing
                                  committed. */
} stream_event_type;

typedef struct stream_consumer_event {
    stream_event_type type;
    const char *topic; /* Borrowed (valid until the next poll). */
    int32_t partition;
    stream_record record;     /* RECORD: offset, timestamp, key, value, headers (iterate
                                 them with stream_header_iter); all borrowed. */
    int64_t offset;           /* EOF: the position; ERROR: the offset that failed. */
    int err;                  /* ERROR: the code. */
    const char *msg;          /* ERROR: one line naming topic, partition and what
                                 failed ("topic 'x' partition 0: offset 500 is out of
                                 range ..."); borrowed (valid until the next poll). */
    int64_t log_start_offset; /* ERROR (EOFFSET): the valid range; else -1. */
    int64_t high_watermark;
} stream_consumer_event;

/* Returns the next event: 1 with *ev filled, 0 when timeout_ms (0: do not
 * wait, -1: forever) passed without one, when interrupted by a signal, or
 * when stream_consumer_done. Negative only for a broken client/consumer
 * (ENOMEM). Transport errors are retried (reconnect, refetch from the
 * position) rather than returned; they show as a pause. In group mode it
 * also returns 0 at once, once per revocation, when a revoked partition
 * waits for the caller to store its offsets (see "Consumer groups"). */
int stream_consumer_poll(stream_consumer *co, int timeout_ms, stream_consumer_event *ev);

/* True when something is assigned and every assigned partition has an end
 * and has reached it (or is paused by an error), and every event has been
 * returned. In group mode (with conf.stop_at_end): when the group's
 * assignment is final (nothing is on its way in or out) and every partition
 * held has reached its end -- also when that is no partition at all. */
bool stream_consumer_done(const stream_consumer *co);

/* ------------------------------------------------------------------------ */
/* Consumer groups                                                           */
/* ------------------------------------------------------------------------ */

/*
 * stream_consumer_subscribe makes the consumer a member of a consumer group
 * (share/doc/protocol.md 6.10): the broker's coordinator shares the
 * partitions of the subscribed topics among the members, each partition to
 * one member at a time, and the group's committed offsets say how far it
 * got. There is no assignor here: the coordinator hands out partitions in
 * the answers to heartbeats, which the consumer sends on a timer run by
 * its own poll (stream_consumer_poll, and every call that polls the
 * client), every heartbeat_interval_ms the broker asks for. Call poll at
 * least every few seconds, well within session_timeout_ms, or the group
 * removes the member.
 *
 * A partition given to the consumer starts at the group's committed offset;
 * when there is none (or it is out of range), conf.auto_offset_reset says
 * where (EARLIEST, LATEST; ERROR: a STREAM_EVENT_ERROR, and the partition
 * stays unread). With conf.stop_at_end, its end is the high watermark as
 * it was when the partition was given to this consumer (a snapshot per
 * partition, so a busy topic still ends).
 *
 * Three offsets per partition held:
 *
 *   position   the next offset poll returns (as without a group)
 *   stored     records before it are processed: what the next commit sends
 *   committed  what the group has stored durably
 *
 * With auto_store (the default), each stream_consumer_poll call first
 * stores the position after the record the previous call returned: a
 * record counts as processed once the caller asks for the next one. A program that must not lose
 * records it has not finished with (stream-sub writes to a pipe) turns
 * auto_store off and calls stream_consumer_store_positions (or _offset)
 * after each record is really done. With auto_commit (the default) stored
 * offsets that changed are committed every auto_commit_interval_ms; else
 * call stream_consumer_commit. So delivery is at-least-once: records after
 * the last commit come again to whoever holds the partition next.
 *
 * Rebalances follow the protocol's rule "revocation before reassignment": a
 * revoked partition is no longer fetched or returned at once; when the
 * caller has stored its position (poll returns 0 at once, one time, so a
 * caller that finishes its work when idle does so; after revoke_timeout_ms
 * whatever is stored counts), the stored offset is committed, the partition
 * is released and a STREAM_EVENT_REVOKED follows. A partition given gets a
 * STREAM_EVENT_ASSIGNED before its first record. A coordinator move (a
 * broker restart; in a cluster, the coordinator's broker stopping or dying)
 * does not end the session: the broker keeps the membership with the
 * committed offsets, and the consumer finds the new coordinator and goes on
 * with the same partitions. When the session ends (the coordinator removed
 * the member: it missed its session timeout), or no answer came for a whole
 * session timeout, every partition is lost at once, without a commit
 * (REVOKED with err STREAM_EUNKNOWNMEMBER), and the consumer joins again by
 * itself (under its own member id first: a coordinator that still knows it
 * gives its partitions back at once). A partition it is given back goes on
 * from its stored offset (committed at once with auto_commit), unless
 * another member has committed further meanwhile or the group's offsets
 * were deleted (with the topic or the group): so a coordinator move repeats
 * nothing. Transport errors are retried; a group error that ends
 * membership for good (the group or a topic name refused) is one
 * STREAM_EVENT_ERROR with topic NULL, after which the consumer holds
 * nothing.
 *
 * stream_consumer_close leaves cleanly: it stops fetching, commits what is
 * stored and sends leave_group, so the others take over at once. Freeing a
 * member without closing it just stops (the group notices after its session
 * timeout).
 *
 * A subscribed consumer cannot also assign partitions (STREAM_EINVAL).
 */
typedef struct stream_group_conf {
    const char *group;           /* The group (required; [a-zA-Z0-9._-]{1,249}); copied. */
    const char *client_id;       /* Shown by describe_group; copied. Default "libstream". */
    int session_timeout_ms;      /* The member is removed after this long without a heartbeat;
                                    the broker clamps it to its group.min/max.session.timeout.ms.
                                    1..3600000, default 10000. */
    bool auto_store;             /* A record is processed when poll is called again.
                                    Default true. */
    bool auto_commit;            /* Commit changed stored offsets every
                                    auto_commit_interval_ms. Default true. */
    int auto_commit_interval_ms; /* 1..3600000, default 5000. */
    int revoke_timeout_ms;       /* How long a revoked partition waits for the caller to store
                                    its position before what is stored is committed anyway.
                                    0..3600000, default 5000. */
} stream_group_conf;

/* Fills conf with the defaults above (group NULL). */
void stream_group_conf_init(stream_group_conf *conf);

/* Joins conf->group subscribed to `topics` (n names; topics that do not
 * exist yet count once created) and/or `pattern` (NULL for none: a POSIX
 * extended regex that must match a whole topic name, "logs.*"; internal
 * topics never match). Blocking: sends join_group and waits for its answer
 * (timeout_ms; -1: request_timeout_ms), so a bad name or an unreachable
 * broker is reported here; partitions arrive as poll runs. Returns 0,
 * STREAM_EINVAL (conf out of range, no topics and no pattern, a pattern
 * that does not compile, already subscribed or assigned), STREAM_EBADGROUP,
 * STREAM_EBADNAME (a topic name), STREAM_EUNKNOWNOP (the broker does not
 * speak protocol version 2), transport errors, STREAM_ENOMEM; errbuf says
 * which. */
int stream_consumer_subscribe(stream_consumer *co, const stream_group_conf *conf,
                              const char *const *topics, size_t n, const char *pattern,
                              int timeout_ms, char *errbuf, size_t errbuf_len);

/* Marks every record poll has returned as processed: stored := position for
 * every partition held; for one lost with the session (not given back yet),
 * the records returned before the loss, which it then goes on after if
 * given back. STREAM_EINVAL when not subscribed. */
int stream_consumer_store_positions(stream_consumer *co);

/* Marks records of one held partition before `offset` as processed (or of
 * one lost with the session and not given back yet, up to its position at
 * the loss, as stream_consumer_store_positions). Returns 0, STREAM_ENOENT
 * (not held, or beyond what a lost one returned), STREAM_EINVAL (offset <
 * 0, or not subscribed). */
int stream_consumer_store_offset(stream_consumer *co, const char *topic, int32_t partition,
                                 int64_t offset);

/* Commits the stored offsets that changed (with auto_store, after storing
 * every position) and waits for the answer (timeout_ms; -1:
 * request_timeout_ms). Returns 0 (also when there was nothing to commit),
 * STREAM_EINVAL (not subscribed), STREAM_EUNKNOWNMEMBER (the session
 * ended; nothing was committed), STREAM_EFENCED (a rebalance is under way:
 * poll, then commit again), a partition's error (STREAM_ENOTASSIGNED, ...;
 * the others were committed), transport errors, STREAM_ETIMEDOUT. */
int stream_consumer_commit(stream_consumer *co, int timeout_ms, char *errbuf, size_t errbuf_len);

/* The last offset this consumer knows committed for a partition it holds,
 * -1 when none. 0 or STREAM_ENOENT. */
int stream_consumer_committed(const stream_consumer *co, const char *topic, int32_t partition,
                              int64_t *out);

/* Leaves the group cleanly: stops fetching, commits the stored offsets (when
 * `commit`; with auto_store after storing every position), sends leave_group
 * and waits for both answers (timeout_ms in all; -1: request_timeout_ms).
 * Afterwards the consumer holds nothing and poll returns 0; free it.
 * Returns 0, the commit's error (the leave is sent anyway), the leave's,
 * STREAM_ETIMEDOUT; STREAM_EINVAL when not subscribed. Safe to call again. */
int stream_consumer_close(stream_consumer *co, bool commit, int timeout_ms, char *errbuf,
                          size_t errbuf_len);

/* What a member knows about its group (for programs' -v output and tests). */
typedef struct stream_group_status {
    const char *member_id; /* "" until joined; borrowed until the next poll */
    int32_t generation;    /* last received; -1 before */
    bool joined;           /* a member now (between join and leave/loss) */
    bool settled;          /* joined, the assignment is final and every partition
                              given has started, none waits to be released */
    size_t held;           /* partitions held (started, starting or being revoked) */
    uint64_t rebalances;   /* assignments that changed what is held */
    uint64_t commits;      /* commit requests answered without error */
} stream_group_status;

/* Fills *out. STREAM_EINVAL when not subscribed. */
int stream_consumer_group_status(const stream_consumer *co, stream_group_status *out);

/* ------------------------------------------------------------------------ */
/* Admin: blocking calls                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Each call sends one request, waits for its response (up to timeout_ms; -1:
 * request_timeout_ms) and returns 0 when the request was answered — per-topic
 * outcomes are then in the results, each with its own err and msg — or a
 * negative code when it was not (transport error, the whole request refused;
 * then no results). Results are owned by the caller and freed with their
 * _free function.
 */

/* A per-topic outcome. */
typedef struct stream_topic_result {
    char *topic; /* Owned. */
    int err;     /* 0, STREAM_ETOPICEXISTS, STREAM_ENOTOPIC, STREAM_EBADNAME,
                    STREAM_EBADCONFIG, ... */
    char *msg;   /* Owned; "" when err == 0. */
} stream_topic_result;

/* Frees n results and the array. NULL is a no-op. */
void stream_topic_results_free(stream_topic_result *r, size_t n);

/* A configuration entry (topic settings such as retention.ms). */
typedef struct stream_config_entry {
    const char *name;   /* "retention.ms". */
    const char *value;  /* "86400000"; in alter, NULL resets to the default. */
    bool is_default;    /* describe: nobody set it; the built-in default applies. */
    const char *source; /* describe: "topic" (set on the topic), "broker" (the broker's
                           config), "default" (built in). NULL in requests. */
    const char *doc;    /* describe: one line saying what the setting does; may be NULL. */
} stream_config_entry;

typedef struct stream_new_topic {
    const char *name;
    int32_t partitions;                 /* >= 1; 0 for the broker's default. */
    const stream_config_entry *configs; /* config_count entries (is_default ignored). */
    size_t config_count;
    int32_t replication_factor; /* Replicas per partition, 1..32; 0 for the broker's
                                   default.replication.factor. A single node allows 1;
                                   a cluster refuses more than its live brokers. */
} stream_new_topic;

/* Creates n topics. *results gets n entries in the same order. Create,
 * delete and alter ask again, for up to 3 s, while the broker refuses the
 * whole request with ENOTLEADER (in a cluster: no controller to hand it to,
 * for a moment after an election). */
int stream_admin_create_topics(stream_client *c, const stream_new_topic *topics, size_t n,
                               int timeout_ms, stream_topic_result **results, char *errbuf,
                               size_t errbuf_len);

/* Deletes n topics. *results gets n entries in the same order. */
int stream_admin_delete_topics(stream_client *c, const char *const *names, size_t n, int timeout_ms,
                               stream_topic_result **results, char *errbuf, size_t errbuf_len);

/* A topic to grow (Kafka's NewPartitions). */
typedef struct stream_new_partitions {
    const char *name;
    int32_t count; /* the topic's new partition count: larger than its current one */
} stream_new_partitions;

/* Adds partitions to n topics (Kafka's CreatePartitions: a count only
 * grows). The new partitions start empty; keyed records map to partitions
 * by murmur2(key) mod count, so keys move with the count, as in Kafka.
 * *results gets n entries in the same order: err STREAM_ENOTOPIC,
 * STREAM_EINVAL (the count is not larger than the current one, or over the
 * broker's limits - its partition limit, its open files), STREAM_EAGAIN
 * (partitions are being added already), ... The topics' cached metadata is
 * dropped, so the next produce or fetch sees the new count. A broker of
 * protocol version < 4 answers STREAM_EUNKNOWNOP. */
int stream_admin_create_partitions(stream_client *c, const stream_new_partitions *topics, size_t n,
                                   int timeout_ms, stream_topic_result **results, char *errbuf,
                                   size_t errbuf_len);

/* One topic's configuration as described by the broker. */
typedef struct stream_topic_config {
    char *topic; /* Owned. */
    int err;     /* 0 or STREAM_ENOTOPIC, ... */
    char *msg;   /* Owned; "" when err == 0. */
    size_t entry_count;
    stream_config_entry *entries; /* Sorted by name; strings owned by this struct. */
} stream_topic_config;

/* Frees n configs and the array. NULL is a no-op. */
void stream_topic_configs_free(stream_topic_config *cfg, size_t n);

/* Describes the configuration of n topics (every setting, with is_default).
 * *out gets n entries in the same order. */
int stream_admin_describe_configs(stream_client *c, const char *const *topics, size_t n,
                                  int timeout_ms, stream_topic_config **out, char *errbuf,
                                  size_t errbuf_len);

/* Sets (or, with value NULL, resets) `count` settings of one topic; settings
 * not named keep their values. On success *result (may be NULL if not
 * wanted) has the topic's outcome: err STREAM_EBADCONFIG with a msg naming
 * the bad key or value, STREAM_ENOTOPIC, ... */
int stream_admin_alter_configs(stream_client *c, const char *topic,
                               const stream_config_entry *entries, size_t count, int timeout_ms,
                               stream_topic_result **result, char *errbuf, size_t errbuf_len);

#define STREAM_LIST_EARLIEST (-2) /* list_offsets: the log start offset */
#define STREAM_LIST_LATEST   (-1) /* list_offsets: the high watermark */

/* One list_offsets question and its answer. */
typedef struct stream_offset_query {
    const char *topic;       /* in */
    int32_t partition;       /* in */
    int64_t timestamp;       /* in: STREAM_LIST_EARLIEST, STREAM_LIST_LATEST, or ms since
                                epoch: the first offset whose timestamp >= it. */
    int64_t offset;          /* out: the offset; for a timestamp past every record, the high
                                watermark (-1 on error). */
    int64_t found_timestamp; /* out: the timestamp of the record at offset; -1 for
                                EARLIEST/LATEST, when no record matched, on error. */
    int err;                 /* out: 0, STREAM_ENOTOPIC, STREAM_ENOPART, ... */
} stream_offset_query;

/* Answers n queries in one request, filling each query's out fields. */
int stream_admin_list_offsets(stream_client *c, stream_offset_query *queries, size_t n,
                              int timeout_ms, char *errbuf, size_t errbuf_len);

/* ---- consumer groups (protocol version 2) ---------------------------------- */

/* A set of partitions of one topic, as group answers list them. */
typedef struct stream_topic_partitions {
    char *topic;         /* Owned. */
    int32_t *partitions; /* Owned; count entries, ascending. */
    size_t count;
} stream_topic_partitions;

/* One group of list_groups. */
typedef struct stream_group_listing {
    char *group;        /* Owned. */
    char *state;        /* Owned: "empty", "reconciling" or "stable". */
    int32_t members;    /* How many. */
    int32_t generation; /* The group's generation. */
} stream_group_listing;

/* Lists every group, sorted by name, into *out (*n entries; free with
 * stream_group_listings_free). */
int stream_admin_list_groups(stream_client *c, int timeout_ms, stream_group_listing **out,
                             size_t *n, char *errbuf, size_t errbuf_len);
void stream_group_listings_free(stream_group_listing *g, size_t n);

/* A member as describe_group shows it. */
typedef struct stream_group_member {
    char *member_id, *client_id, *host; /* Owned. */
    int32_t session_timeout_ms;         /* In force. */
    int32_t generation;                 /* The last generation sent to it. */
    char **topics;                      /* Owned: topic_count subscribed names, sorted. */
    size_t topic_count;
    char *pattern;                       /* Owned; NULL when none. */
    stream_topic_partitions *assignment; /* What it was last told to consume. */
    size_t assignment_count;             /* Entries (topics) in assignment. */
    stream_topic_partitions *target;     /* Its target (differs while reconciling). */
    size_t target_count;
} stream_group_member;

/* A partition of a group: committed offset and lag. -1 for what is not
 * known (no committed offset, the partition does not exist). */
typedef struct stream_group_partition {
    char *topic; /* Owned. */
    int32_t partition;
    char *member_id;          /* Owned: the member holding it; "" for none. */
    int64_t offset;           /* Committed offset. */
    char *metadata;           /* Owned; "" when none. */
    int64_t commit_timestamp; /* ms since the epoch. */
    int64_t log_start_offset; /* Of the partition. */
    int64_t log_end_offset;   /* Of the partition (the high watermark). */
    int64_t lag;              /* log_end_offset - offset (0 past the end); -1: unknown. */
    int64_t oldest_unconsumed_timestamp; /* Timestamp of the first record not consumed;
                                            -1 when lag <= 0. */
} stream_group_partition;

/* describe_group's answer. */
typedef struct stream_group_description {
    char *group; /* Owned. */
    char *state; /* Owned: "empty", "reconciling", "stable". */
    int32_t generation;
    stream_group_member *members; /* In the order they joined. */
    size_t member_count;
    stream_group_partition *offsets; /* Sorted by topic and partition. */
    size_t offset_count;
    int64_t total_lag;                   /* Sum of the known lags. */
    int64_t oldest_unconsumed_timestamp; /* The smallest of the offsets'; -1 when none. */
} stream_group_description;

/* Describes one group. Returns 0, STREAM_ENOGROUP ("unknown group 'g'"),
 * STREAM_EBADGROUP, transport errors. */
int stream_admin_describe_group(stream_client *c, const char *group, int timeout_ms,
                                stream_group_description **out, char *errbuf, size_t errbuf_len);
void stream_group_description_free(stream_group_description *d);

/* A per-group outcome (delete). */
typedef struct stream_group_result {
    char *group; /* Owned. */
    int err;     /* 0, STREAM_ENOGROUP, STREAM_EBADGROUP, STREAM_EGROUPNOTEMPTY, ... */
    char *msg;   /* Owned; "" when err == 0. */
} stream_group_result;

/* Deletes n groups that have no members, with their committed offsets.
 * *results gets n entries in the same order. */
int stream_admin_delete_groups(stream_client *c, const char *const *groups, size_t n,
                               int timeout_ms, stream_group_result **results, char *errbuf,
                               size_t errbuf_len);
void stream_group_results_free(stream_group_result *r, size_t n);

/* Where reset_offsets moves a group's committed offsets (each new offset is
 * then clamped to the partition's log start..log end). */
typedef enum stream_group_reset_to {
    STREAM_GROUP_RESET_EARLIEST = 0,  /* the log start offset */
    STREAM_GROUP_RESET_LATEST = 1,    /* the log end offset */
    STREAM_GROUP_RESET_OFFSET = 2,    /* value */
    STREAM_GROUP_RESET_TIMESTAMP = 3, /* first offset with timestamp >= value (ms) */
    STREAM_GROUP_RESET_SHIFT = 4,     /* committed offset + value */
} stream_group_reset_to;

/* Which partitions of one topic to reset. */
typedef struct stream_group_reset_topic {
    const char *topic;
    const int32_t *partitions; /* partition_count entries; 0: every partition */
    size_t partition_count;
} stream_group_reset_topic;

typedef struct stream_group_reset {
    const char *group;
    const stream_group_reset_topic *topics; /* topic_count entries; 0: every topic the group
                                               has committed offsets for */
    size_t topic_count;
    stream_group_reset_to to;
    int64_t value; /* OFFSET, TIMESTAMP, SHIFT */
    bool execute;  /* false: only compute the plan */
} stream_group_reset;

/* One partition of a reset plan. */
typedef struct stream_group_reset_entry {
    char *topic; /* Owned. */
    int32_t partition;
    int64_t current;    /* The committed offset; -1 when none. */
    int64_t new_offset; /* Where the plan moves it. */
} stream_group_reset_entry;

typedef struct stream_group_reset_plan {
    bool executed;                     /* The plan was committed. */
    stream_group_reset_entry *entries; /* Sorted by topic and partition. */
    size_t count;
} stream_group_reset_plan;

/* Computes a reset plan and, with req->execute, commits it (refused while
 * the group has members: STREAM_EGROUPNOTEMPTY; a dry run is always
 * allowed). Returns 0 with *out (free with stream_group_reset_plan_free),
 * STREAM_EBADGROUP, STREAM_ENOTOPIC, STREAM_ENOPART, STREAM_EINVAL (shift
 * without a committed offset), STREAM_EGROUPNOTEMPTY, transport errors. */
int stream_admin_reset_offsets(stream_client *c, const stream_group_reset *req, int timeout_ms,
                               stream_group_reset_plan **out, char *errbuf, size_t errbuf_len);
void stream_group_reset_plan_free(stream_group_reset_plan *p);

/* ---- the cluster (protocol version 3) -------------------------------------- */

/* A broker as describe_cluster lists it. */
typedef struct stream_cluster_broker {
    int32_t node_id;
    char *host;    /* Owned: the address its clients connect to. */
    uint16_t port;
    int64_t epoch; /* Its registration's epoch; -1 on a single node. */
    bool fenced;   /* Registered but fenced (may not lead). */
    int64_t leaderships; /* Partitions it leads; -1 when not reported. */
} stream_cluster_broker;

/* A partition named in describe_cluster's health lists. */
typedef struct stream_cluster_partition {
    char *topic; /* Owned. */
    int32_t partition;
} stream_cluster_partition;

/* A voter of the metadata quorum: its id and Raft address. */
typedef struct stream_cluster_voter {
    int32_t node_id;
    char *host; /* Owned. */
    uint16_t port;
    int64_t applied_index; /* The last metadata entry it applied, as the answering broker
                              knows (from heartbeats, up to one interval old); -1: unknown. */
} stream_cluster_voter;

/* The cluster as the answering broker sees it (describe_cluster). */
typedef struct stream_cluster_description {
    bool clustered;         /* false: a single node, no quorum (then no voters,
                               leader_id -1, one broker: itself) */
    char *cluster_id;       /* Owned; "" on a single node. */
    int32_t node_id;        /* The answering broker. */
    int32_t leader_id;      /* The quorum's leader it knows of, -1 when none. */
    uint64_t term;          /* The quorum's current term. */
    uint64_t applied_index; /* The metadata log index the answering broker applied. */
    stream_cluster_voter *voters; /* Owned; n_voters, by id. */
    size_t n_voters;
    stream_cluster_broker *brokers; /* Owned; n_brokers, by id. */
    size_t n_brokers;
    /* Partitions whose ISR is smaller than their replicas, and partitions
     * without a leader (no in-sync replica alive): the counts (-1 when not
     * reported), and the first ones (at most 100 each; owned). */
    int64_t under_replicated_count, offline_count;
    stream_cluster_partition *under_replicated, *offline;
    size_t n_under_replicated, n_offline;
} stream_cluster_description;

/* Describes the cluster as the broker the client talks to sees it; *out is
 * freed with stream_cluster_description_free. STREAM_EUNKNOWNOP from a
 * broker older than protocol version 3. */
int stream_admin_describe_cluster(stream_client *c, int timeout_ms,
                                  stream_cluster_description **out, char *errbuf,
                                  size_t errbuf_len);
void stream_cluster_description_free(stream_cluster_description *d);

/* ---- stats (protocol.md 6.29) ----
 * What one broker has done and holds: counters since its start (rates come
 * from two snapshots and their time_ms), its partitions and the groups it
 * coordinates. In a cluster each broker answers for itself. */

/* One partition of a topic in a stats answer. */
typedef struct stream_stats_partition {
    int32_t partition;
    int64_t size_bytes;       /* Bytes its log takes on disk. */
    int64_t segments;         /* Segment files of its log. */
    int64_t log_start_offset; /* The first offset still stored. */
    int64_t log_end_offset;   /* The offset the next record gets. */
} stream_stats_partition;

/* A topic held by the answering broker. */
typedef struct stream_stats_topic {
    char *name;          /* Owned. */
    uint64_t records_in; /* Records appended by produce. */
    uint64_t bytes_in;   /* Record batch bytes appended by produce. */
    uint64_t bytes_out;  /* Record batch bytes served by fetch (consumers and replicas). */
    stream_stats_partition *partitions; /* Owned; n_partitions, as answered. */
    size_t n_partitions;
} stream_stats_topic;

/* One op the broker answered at least once. */
typedef struct stream_stats_request {
    char *op;                   /* Owned: the op's name, e.g. "produce". */
    uint64_t count;             /* Requests answered. */
    uint64_t errors;            /* Of those, answered with a request-level error. */
    double latency_seconds_sum; /* Arrival to answer, summed over count. */
} stream_stats_request;

/* The lag of a group on one partition held by the answering broker. */
typedef struct stream_stats_lag {
    char *topic;         /* Owned. */
    int32_t partition;
    int64_t lag_records; /* Committed offset to the log end. */
    double lag_seconds;  /* Age of the oldest record not consumed; 0 when caught up. */
} stream_stats_lag;

/* A consumer group the answering broker coordinates. */
typedef struct stream_stats_group {
    char *group;        /* Owned. */
    uint64_t members;   /* Members now. */
    int32_t generation; /* The group's generation (epoch). */
    stream_stats_lag *partitions; /* Owned; n_partitions, per committed partition. */
    size_t n_partitions;
} stream_stats_group;

/* One stats answer. */
typedef struct stream_stats {
    int32_t node_id;                /* The answering broker. */
    uint64_t time_ms;               /* Its wall clock at the answer, ms since the epoch. */
    stream_stats_topic *topics;     /* Owned; n_topics, by name. */
    size_t n_topics;
    stream_stats_request *requests; /* Owned; n_requests. */
    size_t n_requests;
    uint64_t connections_native;    /* Open connections on the native listener. */
    uint64_t connections_other;     /* Open connections on other listeners (kafka). */
    uint64_t resident_memory_bytes; /* The broker process's resident memory. */
    uint64_t open_fds;              /* Its open file descriptors. */
    stream_stats_group *groups;     /* Owned; n_groups (none when absent). */
    size_t n_groups;
} stream_stats;

/* Asks broker `node` (-1: any broker the client is connected to) for its
 * stats; *out is freed with stream_stats_free. STREAM_EUNKNOWNOP from a
 * broker older than protocol version 4. */
int stream_admin_stats(stream_client *c, int32_t node, int timeout_ms, stream_stats **out,
                       char *errbuf, size_t errbuf_len);
/* Decodes a stats answer's MessagePack map (`payload`, len bytes: the whole
 * response body; unknown fields ignored). Returns 0 and *out (owned), or
 * STREAM_EPROTO / STREAM_EBADREQ for bytes that are not such an answer (a
 * missing or mistyped field; errbuf names it), STREAM_ETOOLARGE or
 * STREAM_ENOMEM; then *out is NULL. */
int stream_stats_decode(const uint8_t *payload, size_t len, stream_stats **out, char *errbuf,
                        size_t errbuf_len);
void stream_stats_free(stream_stats *s);

#endif /* STREAM_CLIENT_H */
