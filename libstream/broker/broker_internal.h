/*
 * broker_internal.h - what the broker's files share (broker.c, broker_conn.c,
 * broker_ops.c, broker_admin.c, broker_data.c, broker_wait.c, host.c). Not
 * installed; prefix stream__. Services of the broker (coord/, ...) never include it: they see
 * the broker through host.h.
 *
 * The main header of libstream/broker/: connections, request dispatch,
 * produce and fetch, long-poll waits and the broker's life cycle, on top of
 * log/ and proto/; and the broker as a host of services (host.h), the only
 * way the folders above it (coord/, later cluster/ and kafka/) plug in.
 *
 * The shape of a request's life:
 *
 *   socket bytes -> conn input buffer -> frame (4-byte length + map)
 *     -> stream__req appended to the connection's pending queue
 *     -> op handler fills req->out and marks it done, or parks it on a
 *        stream__waiter (long-poll fetch, acks=all produce) that completes it
 *        later from a timer, an append or the flusher's durable callback
 *     -> conn_flush writes done requests from the head of the queue, so
 *        responses leave in request order however they complete.
 *
 * Everything here runs on the broker's loop thread, except the fields marked
 * "flusher thread" in stream_broker.
 */
#ifndef STREAM_BROKER_INTERNAL_H
#define STREAM_BROKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "host.h"
#include "log/producer_state.h"
#include "stream/broker.h"
#include "stream/buf.h"
#include "stream/cleaner.h"
#include "stream/log.h"
#include "stream/prom.h"
#include "stream/proto.h"
#include "stream/store.h"
#include "stream/tls.h"

#ifdef STREAM_VERSION
#define STREAM__BROKER_VERSION STREAM_VERSION
#else
#define STREAM__BROKER_VERSION "0"
#endif

typedef struct stream__conn stream__conn;
typedef struct stream__waiter stream__waiter;
typedef struct stream__pstate stream__pstate;
typedef struct stream__admin_op stream__admin_op;
typedef struct stream__clean_op stream__clean_op;

/* Free blocks of one size, last freed first, linked through their first
 * bytes; at most STREAM__POOL_MAX of them. */
typedef struct stream__pool {
    void *head;
    size_t len;
} stream__pool;
#define STREAM__POOL_MAX 4096

/* Request read buffers (the broker's shared one and each connection's) keep
 * up to this much while requests keep coming: shrinking one after each
 * 1 MiB produce and growing it again for the next cost five times the
 * request's own handling (page faults on fresh memory, the copies of each
 * doubling). A connection quiet for a second gives its back
 * (stream__conns_sweep_idle). */
#define STREAM__READ_KEEP_BYTES (16u << 20)

/* A block from the pool, or NULL when it is empty (the caller allocates). */
static inline void *stream__pool_get(stream__pool *p)
{
    void *blk = p->head;
    if (blk != NULL) {
        memcpy(&p->head, blk, sizeof(void *));
        p->len--;
    }
    return blk;
}

/* A block from the pool, else a new one of `size` bytes (what the pool
 * holds); NULL without memory. Its contents are undefined. */
static inline void *stream__pool_alloc(stream__pool *p, size_t size)
{
    void *blk = stream__pool_get(p);
    return blk != NULL ? blk : malloc(size);
}

/* Gives blk back to the pool, or frees it when the pool is full. */
static inline void stream__pool_put(stream__pool *p, void *blk)
{
    if (p->len >= STREAM__POOL_MAX) {
        free(blk);
        return;
    }
    memcpy(blk, &p->head, sizeof(void *));
    p->head = blk;
    p->len++;
}

/* Frees every block in the pool. */
static inline void stream__pool_drain(stream__pool *p)
{
    void *blk;
    while ((blk = stream__pool_get(p)) != NULL)
        free(blk);
}

/* One slot of the broker's deadline heap. The deadline is kept beside the
 * pointer so that sifting compares entries of one contiguous array instead
 * of reading every waiter it passes (a cache miss each, with a thousand
 * parked long polls touched once per poll interval). */
typedef struct stream__heap_entry {
    uint64_t deadline_ms; /* uv_now time at which w times out */
    stream__waiter *w;    /* the waiter; w->heap_index is this slot */
} stream__heap_entry;

/* A run of a segment file that belongs in a response between two bytes of
 * its `out` buffer: fetch sends stored batches with sendfile(2) instead of
 * copying them through memory. */
typedef struct stream__fpiece {
    size_t at;           /* position in out before which the file bytes go */
    stream_log_slice sl; /* the range (fd, pos, len); pinned until the piece is freed */
    stream_log *log;     /* its partition: only a key for its pstate, never read */
} stream__fpiece;

/* One request from its frame until its response is written (or dropped).
 *
 * The response is `out`, or, when `nfiles` > 0, out's bytes with the file
 * pieces spliced in at their `at` positions (in increasing order; the frame's
 * length prefix counts both). Such a response is written by broker_conn.c
 * itself (send + sendfile on the socket) once libuv has nothing queued on the
 * connection; when the socket is full, the next part goes through one
 * uv_write (file bytes copied into `chunk`) so that libuv waits for room. */
struct stream__req {
    stream__conn *conn;     /* the connection it came on */
    stream__req *next;      /* next in the connection's pending queue */
    stream_buf out;         /* the response frame, length prefix included */
    stream__waiter *waiter; /* the delayed operation still open, or NULL */
    bool done;              /* out holds the whole response */
    bool silent;            /* acks=0 produce: nothing is sent back */
    bool close_after;       /* close the connection once this is written */
    uv_write_t write;       /* the write of `out` (or of a part), once handed to libuv */
    size_t held;            /* bytes counted in conn->out_bytes (out + file bytes) */
    stream__fpiece *files;  /* file pieces of the response (owned), or NULL */
    size_t nfiles, files_cap;
    size_t file_bytes;   /* sum of the pieces' lengths */
    size_t sent_out;     /* direct write: bytes of out written (or handed to libuv) */
    size_t piece;        /* direct write: the file piece being sent */
    size_t piece_sent;   /* direct write: its bytes written (or handed to libuv) */
    uint8_t *chunk;      /* direct write: file bytes handed to a uv_write, or NULL */
    bool part_in_flight; /* direct write: a uv_write of a part is outstanding */
    stream_op op;        /* the op, once decoded (STREAM_OP_UNKNOWN before): metrics */
    int err;             /* the error it was answered with (stream__reply_error), else 0 */
    uint64_t start_ns;   /* uv_hrtime when its frame was dispatched: its latency */
    /* A native op run for a service's protocol (stream__host_native_op):
     * the native answer goes to native_done instead of the socket; if the
     * connection closes first, native_release frees native_arg. */
    stream__native_done_fn native_done;
    void (*native_release)(void *arg);
    void *native_arg;
};

/* A listener of a service's own protocol (stream__host_listen): its frames
 * go to the service's handler instead of stream__dispatch. */
typedef struct stream__xlistener {
    uv_tcp_t tcp;                 /* the listening socket; tcp.data points back here */
    stream_broker *broker;        /* owner */
    stream__frame_handler handle; /* answers each frame of its connections */
    void *svc;                    /* the service's state, passed to handle */
    bool open;                    /* tcp was initialised and is not yet closed */
    char name[16];                /* the setting's first word ("kafka"): a metrics label */
} stream__xlistener;

/* Service listeners a broker holds at most. */
#define STREAM__XLISTENERS_MAX 2

/* One client connection. */
struct stream__conn {
    stream__xlistener *xl;     /* the service listener it came on; NULL: native */
    uv_tcp_t tcp;              /* the socket; tcp.data points back here */
    stream_broker *broker;     /* owner */
    stream__conn *prev, *next; /* the broker's list of connections */
    uint64_t id;               /* for log lines */
    char peer[64];             /* "HOST:PORT" of the client */
    stream_frame_reader fr;    /* bytes read and not yet consumed as frames */
    stream__req *head, *tail;  /* pending requests, oldest first */
    size_t pending;            /* requests in the queue */
    size_t out_bytes;          /* bytes of finished responses not yet written */
    int writes;                /* uv_write calls in flight */
    stream__req *sending;      /* the response with file pieces being written
                                  directly (out of the queue), or NULL */
    uint64_t last_active_ms;   /* uv_now of the last read or completed write */
    stream_msg msg;            /* where a nested dispatch decodes (see stream_broker.msg);
                                  its zone is made only then */
    int version;               /* protocol version agreed in hello */
    bool hello;                /* the client said hello */
    bool reading;              /* uv_read_start is in effect */
    bool paused;               /* reading stopped for backpressure */
    bool eof;                  /* the client shut down its side */
    bool draining;             /* close once the queue and the writes are empty */
    bool broken;               /* a fatal error: no more frames are consumed */
    bool closing;              /* uv_close was called; no more requests or writes */
    bool processing;           /* inside process_frames: no re-entry */
    bool fr_borrowed;          /* fr is the broker's rfr, lent for this read */
    stream_tls *tls;           /* the TLS session of a TLS listener's connection, or NULL:
                                  plain text (broker_conn.c) */
    size_t tls_out_bytes;      /* ciphertext handed to the socket and not yet written */
    bool tls_started;          /* the first bytes were read (and looked like TLS) */
    bool tls_last;             /* the last response (or the session's alert) is encrypted:
                                  close once the ciphertext is written */
    bool flush_queued;         /* on the broker's flush_list */
    stream__conn *flush_next;  /* next on that list */
};

/* Broker-wide settings, read once from the config at stream_broker_new. */
typedef struct stream__settings {
    size_t max_request_bytes; /* socket.request.max.bytes: largest frame accepted */
    size_t max_output_bytes;  /* connection.max.output.bytes: pause reading above */
    size_t max_pending;       /* requests in flight per connection before pausing */
    int max_connections;      /* max.connections */
    int64_t idle_ms;          /* connections.max.idle.ms; <= 0 never */
    int64_t housekeeping_ms;  /* log.retention.check.interval.ms */
    bool auto_create;         /* auto.create.topics.enable */
} stream__settings;

/* The services a broker hosts at most (host.c's list). */
#define STREAM__SERVICES_MAX 8

/* Who answers one op of a service (host.c). */
typedef struct stream__route {
    stream__op_handler handle; /* NULL: no service answers the op */
    void *svc;                 /* the service's state, set once it started */
    size_t service;            /* its index in host.c's list */
    bool taken;                /* a core op the service answers instead */
} stream__route;

/* Per-partition broker state: the waiters parked on one log. Found by the
 * log pointer in the broker's table; removed when its log goes away. */
struct stream__pstate {
    stream_log *log;                       /* the partition (owned by the store) */
    stream__pstate *hnext;                 /* hash chain */
    struct stream__wlink *fetch_waiters;   /* long polls watching this log */
    struct stream__wlink *produce_waiters; /* acks=all produces waiting on durability */
    stream__pstate *dnext;                 /* in the broker's list of logs with produce waiters */
    bool in_durable_list;                  /* on that list */
    bool trust_known;                      /* trusted_from is set (broker_data.c) */
    int64_t trusted_from;                  /* batches at or above this offset were appended
                                              by this broker process (CRC-checked on
                                              produce): fetch may sendfile them unchecked */
    bool read_error_logged;                /* a read error was logged (once until a read
                                              succeeds again) */
    uint64_t io_failures_logged;           /* the log's I/O failures already logged */
    /* Replication (broker_repl.c); meaningful only when b->repl_on. */
    bool repl_known; /* replicated: role, leader, epoch and hw were set */
    bool local;      /* given role LOCAL: this broker's alone, served as one */
    stream__host_role role;
    int32_t leader_id;
    int32_t leader_epoch;
    int64_t high_watermark; /* consumers read below it; acks=all completes up to it */
    stream__pstate *rnext;  /* in the broker's list of replicated partitions */
    bool in_repl_list;
    int64_t durable_told; /* the durable offset last given to the durable hook */
    /* Metrics (broker_metrics.c sums them per topic at a scrape). */
    uint64_t records_in; /* records appended by produce (offsets assigned) */
    uint64_t bytes_in;   /* record batch bytes appended by produce */
    uint64_t bytes_out;  /* record batch bytes served by fetch (consumers and replicas) */
};

/* The most error codes the metrics count per op: -err indexes them. */
#define STREAM__METRIC_ERRS 64

/* What GET /metrics serves besides what it reads from the store and the
 * services at a scrape (broker_metrics.c). The HTTP server (libmicrohttpd)
 * runs on the broker's loop, through its epoll descriptor, so the plain
 * counters here are the loop's alone and need no lock; the histograms are
 * atomics because the flusher thread observes the syncs. */
typedef struct stream__metrics {
    struct MHD_Daemon *httpd;            /* the server; NULL when metrics.listen is off */
    uv_poll_t poll;                      /* MHD's epoll descriptor became readable */
    uv_timer_t timer;                    /* MHD's own deadline (idle scrapers' timeouts) */
    bool poll_open, timer_open;          /* initialised, not yet closed */
    char host[256];                      /* as bound, without brackets */
    int port;                            /* as bound */
    stream_buf page;                     /* the page being rendered (kept for the next scrape) */
    uint64_t scrapes;                    /* GET /metrics answered */
    uint64_t requests[STREAM_OP__COUNT]; /* native requests per op */
    uint64_t errors[STREAM_OP__COUNT][STREAM__METRIC_ERRS]; /* request errors per op, code */
    stream_prom_hist latency[STREAM_OP__COUNT];             /* dispatch to response, per op */
    stream_prom_hist sync_ns;                               /* a partition's sync round, ns */
    stream_prom_hist sync_records;                          /* records a sync round made durable */
    uint64_t conns_accepted; /* client connections accepted, every listener */
} stream__metrics;

struct stream_broker {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;    /* wakes the loop to stop */
    uv_async_t durable_async; /* the flusher made something durable */
    uv_signal_t sigint, sigterm;
    uv_timer_t housekeeping;    /* retention, segment rolls, idle connections */
    uv_timer_t wait_timer;      /* fires at the earliest waiter deadline */
    uv_timer_t shutdown_timer;  /* forces connections closed when draining takes long */
    uv_timer_t tick_timer;      /* calls tick_cb every tick_interval_ms */
    stream_broker_tick_cb tick_cb; /* the program's periodic hook (NULL: none) */
    void *tick_arg;                /* passed to tick_cb */
    uint64_t tick_interval_ms;     /* tick_cb's period */
    atomic_bool handles_open;   /* the handles above were initialised, not yet closed
                                   (read by stream_broker_stop from any thread) */
    uint64_t next_retention_ms; /* uv_now time of the next retention pass */
    bool handle_signals;

    stream_store *store;               /* topics and their logs */
    stream_flusher *flusher;           /* fdatasyncs every partition off the loop */
    stream__producer_ids producer_ids; /* init_producer_id's blocks (broker_data.c) */
    stream__settings set;
    stream_config *config; /* copy of the broker config (describe_configs) */
    int32_t node_id;       /* node.id */
    char data_dir[4096];
    char host[256]; /* as bound */
    int port;

    stream_broker_log_cb log_cb;
    void *log_arg;
    stream_broker_level log_level;

    /* Where requests are decoded. One zone for every connection stays in the
     * cache, where a zone per connection (a thousand idle consumers) would be
     * cold at each poll. An op can complete another connection's request and
     * so dispatch that connection's next frame before it returns: such a
     * nested dispatch decodes into the connection's own c->msg. */
    stream_msg msg;
    bool msg_busy; /* msg holds the request being dispatched */

    /* The read buffer a connection with nothing buffered reads into, lent
     * for the length of one read (broker_conn.c): the requests are consumed
     * from this one warm buffer instead of from each connection's own, cold
     * at each poll. A connection left holding bytes of it (a frame not
     * whole yet, or frames held back by backpressure) keeps it, and its own
     * empty reader becomes the broker's. */
    stream_frame_reader rfr;

    /* TLS (broker_conn.c): the context new connections are made with
     * (NULL: plain text), replaced on SIGHUP; ciphertext is read into
     * tls_in and file bytes of fetches are read into tls_chunk before
     * they are encrypted - one buffer each for every connection, since
     * each use ends before the loop moves on. */
    stream_tls_ctx *tls_ctx;
    stream_tls_ctx *tls_client; /* links to other brokers (host_tls.c); made at start */
    uint8_t *tls_in;
    uint8_t *tls_chunk;
    uv_signal_t sighup; /* when options.handle_signals: re-read the TLS files */
    bool insecure;      /* insecure: plain text may listen beyond loopback */

    stream__conn *conns;      /* every open connection */
    bool defer_flush;         /* completed requests wait on flush_list to be written
                                 (stream__conn_defer_flush) */
    stream__conn *flush_list; /* connections with responses to write then */
    int nconns;
    uint64_t next_conn_id;
    uint64_t refuse_warn_next_ms; /* uv_now before which refused connections are only
                                     counted, not logged (broker_conn.c) */
    uint64_t refused_quiet;       /* connections refused since the last such warning */

    /* Waiters ordered by deadline (binary min-heap). */
    stream__heap_entry *heap;
    size_t heap_len, heap_cap;
    uint64_t wait_armed_ms; /* the deadline wait_timer is set for, when wait_armed */
    bool wait_armed;        /* wait_timer is running */
    bool in_wait_timer;     /* inside stream__wait_on_timer: it re-arms once at the end */

    /* Freed waiters and fetch states of the common sizes, kept for reuse
     * (stream__pool_*). An idle long poll makes and frees both at every
     * poll, a timer tick frees a burst of them, and a burst overflows
     * malloc's per-size caches into its bins; from here the next poll takes
     * a block that is still in the cache. */
    stream__pool waiter_pool;
    stream__pool fetch_pool;
    /* Likewise written requests and their out buffers (up to 4 KiB), of
     * every connection together: the next request, and the next response
     * encoded, use what the last one left warm (broker_conn.c). */
    stream__pool req_pool;
    stream__pool out_pool;

    /* stream_log* -> stream__pstate. */
    stream__pstate **ptab;
    size_t ptab_cap, ptab_len;
    stream__pstate *durable_list; /* logs with produce waiters */

    pthread_mutex_t durable_mu; /* flusher thread */
    bool durable_pending;       /* flusher thread: set before durable_async */
    bool io_failed_pending;     /* flusher thread: a log latched an I/O error */

    /* The services hosted (host.c): each one's state, in the order of the
     * list, and per op the service that answers it. */
    void *svc[STREAM__SERVICES_MAX];
    size_t nsvc;      /* services started (the first nsvc of the list) */
    bool svc_stopped; /* their stop was called */
    stream__route routes[STREAM_OP__COUNT];
    stream__xlistener xl[STREAM__XLISTENERS_MAX]; /* services' listeners (host.c) */
    struct {
        char name[16];  /* "kafka" */
        char host[256]; /* the address its clients connect to */
        uint16_t port;
    } advertised[STREAM__XLISTENERS_MAX]; /* stream__host_set_advertised */
    size_t nadvertised;
    size_t nxl; /* entries of xl in use */

    /* Replication (broker_repl.c): on once a service gave its hooks. */
    bool repl_on;
    stream__host_replication repl;
    void *repl_arg;
    stream__pstate *repl_list; /* partitions with a role (their durable offsets are watched) */

    /* create_topics / delete_topics whose disk work runs on the thread
     * pool (broker_admin.c). */
    stream__admin_op *admin_ops;

    /* The log cleaner (broker_cleaner.c): passes running on the pool. */
    uv_timer_t cleaner_timer;         /* every log.cleaner.backoff.ms */
    stream__clean_op *clean_ops;      /* passes running */
    int cleaner_running;              /* how many */
    int cleaner_threads;              /* log.cleaner.threads (at most 3) */
    int64_t cleaner_backoff_ms;       /* log.cleaner.backoff.ms */
    stream_cleaner_opts cleaner_opts; /* map size, I/O limit per pass */

    stream__metrics metrics; /* GET /metrics (broker_metrics.c) */

    bool running;
    bool stop_asked; /* begin_stop asked the services whether to hold */
    bool stop_held;  /* a service holds the stop (stream__host_stop_resume ends it) */
    bool stopping;
    bool stopped; /* run returned; the store is closed */
    int run_result;
};

/* ---- broker.c ---- */
/* Parses a listen address ("HOST:PORT", "[ADDR]:PORT") into ss, the host
 * (without brackets) into host and the port; 0 or EBADCONFIG with errbuf
 * naming `setting`. */
/* 0 when a listener may be bound on host (numeric, as parsed): TLS is on,
 * insecure is set, or host is a loopback address; else STREAM_EBADCONFIG
 * with a message naming `setting` and the options that allow it. */
int stream__listen_allowed(const stream_broker *b, const char *host, const char *setting,
                           char *errbuf, size_t errbuf_len);

int stream__parse_listen(const char *s, const char *setting, struct sockaddr_storage *ss,
                         char *host, size_t host_len, int *port, char *errbuf, size_t errbuf_len);
/* Closes the services' listeners (stopping). */
void stream__xlisteners_close(stream_broker *b);
void stream__blog(stream_broker *b, stream_broker_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t stream__broker_now_ms(void); /* wall clock, ms since the epoch */

/* Store side of the life cycle (broker_ops.c): opens the data dir, logging
 * what recovery found, and attaches every log to the flusher; closes it. */
int stream__broker_open_store(stream_broker *b, const stream_config *cfg, char *errbuf,
                              size_t errbuf_len);
int stream__broker_close_store(stream_broker *b);
/* Attaches a (new) topic's logs to the flusher and the durable callback. */
int stream__broker_attach_topic(stream_broker *b, stream_topic *t);
/* The same for partitions [from, count) of t only (after add_partitions). */
int stream__broker_attach_partitions(stream_broker *b, stream_topic *t, int32_t from);
/* Detaches the topic's logs from the flusher and the durable callback. */
void stream__broker_detach_topic(stream_broker *b, stream_topic *t);
/* Retention and segment.ms rolls over every partition (housekeeping). */
void stream__broker_retention(stream_broker *b);
/* A connection was freed: finishes stopping once none is left. */
void stream__broker_conn_gone(stream_broker *b);

/* ---- broker_cleaner.c ---- */
/* Reads the log.cleaner.* settings and initialises the timer (a handle
 * closed with the others). */
void stream__cleaner_init(stream_broker *b, const stream_config *cfg);
/* Starts looking for work (run); stops it and cancels running passes
 * (stopping: the loop's drain then waits for them). */
void stream__cleaner_start(stream_broker *b);
void stream__cleaner_stop(stream_broker *b);

/* ---- broker_metrics.c ---- */
/* Sets up the counters (stream_broker_new, before anything counts). */
void stream__metrics_init(stream_broker *b);
/* Opens the metrics.listen server on the loop (unless it is off, or the
 * broker is in a cluster and it was not set: several brokers of one
 * machine would all want the default port). 0, or STREAM_EBADCONFIG,
 * STREAM_EAGAIN (address in use), STREAM_EIO with errbuf. */
int stream__metrics_start(stream_broker *b, const stream_config *cfg, char *errbuf,
                          size_t errbuf_len);
/* Closes the server's loop handles (with the broker's other handles). */
void stream__metrics_close(stream_broker *b);
/* Stops the server and frees what the metrics hold (after the loop). */
void stream__metrics_free(stream_broker *b);
/* Request r is answered (r->op, r->err, r->start_ns): counted with its
 * latency. Called once per request, from stream__req_complete. */
void stream__metrics_request(stream_broker *b, const stream__req *r);
/* A sync round of `log` made it durable up to durable_offset (the flusher
 * thread: the durable callback). */
void stream__metrics_synced(stream_broker *b, stream_log *log, int64_t durable_offset);
/* The stats op (protocol.md 6.29): the same figures in MessagePack. */
void stream__op_stats(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m);
/* Renders the whole page into b->metrics.page (for tests and the bench:
 * what a scrape serves). 0 or STREAM_ENOMEM. */
int stream__metrics_render(stream_broker *b);

/* ---- host.c ---- */
/* Starts every service of the list, in order; 0 or the first error with
 * errbuf (services started so far are stopped and freed as usual). */
int stream__services_start(stream_broker *b, char *errbuf, size_t errbuf_len);
/* Tells every started service to close its loop handles (once). */
void stream__services_stop(stream_broker *b);
/* Frees every started service (after the loop drained). */
void stream__services_free(stream_broker *b);
/* Hands the request to the service that answers op; false when none does. */
bool stream__services_dispatch(stream_broker *b, stream__req *r, uint64_t id, stream_op op,
                               const msgpack_object *m);
/* Tells every service that topic t was created / the topic `name` deleted. */
void stream__services_topic_created(stream_broker *b, stream_topic *t);
void stream__services_topic_deleted(stream_broker *b, const char *name);
void stream__services_partitions_added(stream_broker *b, stream_topic *t, int32_t old_count);
/* Appends every service's metric families to out (broker_metrics.c). */
void stream__services_metrics(stream_broker *b, stream_buf *out);
/* Services with a stats callback (the entries they add to a stats answer),
 * and their entries packed into pk. */
size_t stream__services_stats_count(stream_broker *b);
void stream__services_stats(stream_broker *b, msgpack_packer *pk);
/* Tells every service that connection conn_id closed (broker_conn.c). */
void stream__services_conn_closed(stream_broker *b, uint64_t conn_id);
/* Tells every service that log's role or leader epoch changed
 * (broker_repl.c). */
void stream__services_role_changed(stream_broker *b, stream_log *log, stream__host_role role,
                                   int32_t leader_epoch);
/* The broker was asked to stop: true when a service holds the stop until it
 * calls stream__host_stop_resume (broker.c). */
bool stream__services_stop_requested(stream_broker *b);

/* ---- broker_conn.c ---- */
/* With on, responses completed from now on are not written at once: their
 * connections are listed, and turning it off writes them all, one after
 * another (a timer tick's batch of long polls). */
void stream__conn_defer_flush(stream_broker *b, bool on);
/* libuv's connection callbacks: the native listener's, a service's. */
void stream__conn_on_connection(uv_stream_t *server, int status);
void stream__conn_on_xconnection(uv_stream_t *server, int status);
/* Gives r an out buffer from the broker's pool when it has none (a request
 * starts with one; a long poll gives its back while it waits). */
void stream__req_out_get(stream__req *r);
/* Returns r's out buffer to the pool when it is small, else frees it;
 * r->out is then empty. */
void stream__req_out_put(stream__req *r);
/* A new request at the tail of c's queue; NULL when out of memory. */
stream__req *stream__req_new(stream__conn *c);
/* Marks req done and writes whatever is ready at the head of its queue. */
void stream__req_complete(stream__req *r);
/* Appends a file piece to r's response at the current end of r->out (the
 * caller has just packed the bin header the bytes belong to). Takes the
 * slice's pin, also on failure (then released). 0 or STREAM_ENOMEM. */
int stream__req_add_file(stream__req *r, stream_log_slice *sl, stream_log *log);
/* Releases r's file pieces (before r->out is replaced by an error). */
void stream__req_drop_files(stream__req *r);
/* Closes the connection now (pending requests dropped, waiters cancelled). */
void stream__conn_close(stream__conn *c);
/* Stops reading; closes once every queued response is written. Frames
 * already buffered are still answered. */
void stream__conn_drain(stream__conn *c);
/* As drain, after a fatal error: buffered frames are dropped. */
void stream__conn_break(stream__conn *c);
/* Broker shutdown: drain, answering buffered frames with ECLOSED. */
void stream__conn_stop(stream__conn *c);
/* Closes connections idle for longer than idle_ms. */
void stream__conns_sweep_idle(stream_broker *b);

/* ---- broker_ops.c ---- */
/* Handles one frame (borrowed, writable: produce stamps offsets in place).
 * Appends a request to c's queue and completes it now or parks it. Returns 0,
 * or a negative code when the connection must be closed (a framing or parse
 * error; the request carries a last error response when one can be sent). */
int stream__dispatch(stream__conn *c, uint8_t *frame, size_t len);

/* Replaces r's response with a frame holding only id/err/msg and completes
 * it. */
void stream__reply_error(stream__req *r, uint64_t id, int err, const char *msg);
/* Finishes frame f (started on r->out) and completes r; on failure (ENOMEM,
 * ETOOLARGE) answers with that error instead. Returns 0 or that error. */
int stream__reply_finish(stream__req *r, stream_frame *f, uint64_t id);
/* Checks a topic name from a frame and copies it NUL-terminated into buf
 * (STREAM_TOPIC_NAME_MAX + 1 bytes). 0 or STREAM_EBADNAME with msg. */
int stream__topic_name(const char *p, size_t len, char *buf, char *msg, size_t msg_len);

/* Copies a str (borrowed from the frame) into buf as a C string; false when
 * it does not fit or holds a NUL byte. */
bool stream__cstr(const msgpack_object *o, char *buf, size_t len);
/* Applies a {str: str} map of settings (NULL: none) to cfg. 0 or
 * EBADCONFIG with msg. */
int stream__apply_settings(stream_config *cfg, const msgpack_object *set, char *msg,
                           size_t msg_len);

/* ---- broker_admin.c ---- */
/* create_topics, delete_topics and create_partitions: checked on the loop,
 * the disk work on libuv's thread pool, answered when it is done. */
void stream__op_create_topics(stream__conn *c, stream__req *r, uint64_t id,
                              const msgpack_object *m);
void stream__op_delete_topics(stream__conn *c, stream__req *r, uint64_t id,
                              const msgpack_object *m);
void stream__op_create_partitions(stream__conn *c, stream__req *r, uint64_t id,
                                  const msgpack_object *m);
/* Grows topic `name` to `count` partitions here and now (a service's:
 * the replica manager following the metadata), then attaches the new logs
 * and tells the services. 0 or the store's error with msg. */
int stream__broker_add_partitions(stream_broker *b, const char *name, int32_t count, char *msg,
                                  size_t msg_len);
/* A service's create (stream__broker_create_async) or grow is finished:
 * rc 0 (the topic or its new partitions are in the store, attached and
 * announced) or the store's error with msg. */
typedef void (*stream__broker_job_done_fn)(void *arg, int rc, const char *msg);
/* Creates a topic (as stream_store_create_topic) or grows one (as
 * stream__broker_add_partitions) with the disk work on libuv's thread pool;
 * done is called on the loop when it is finished, also while the broker
 * stops (before the services are freed). An error here (the store's
 * _begin refused) means done is never called. */
int stream__broker_create_async(stream_broker *b, const char *name, int32_t partitions,
                                const stream_config *overrides, bool internal,
                                stream__broker_job_done_fn done, void *arg, char *msg,
                                size_t msg_len);
int stream__broker_grow_async(stream_broker *b, const char *name, int32_t count,
                              stream__broker_job_done_fn done, void *arg, char *msg,
                              size_t msg_len);
/* Connection conn_id closed: its admin requests in flight finish unanswered. */
void stream__admin_conn_closed(stream_broker *b, uint64_t conn_id);
/* Deletes the topic named by p (len bytes) as delete_topics does, but here
 * and now (a service's delete). 0, or ENOTOPIC / EBADNAME (internal) / the
 * store's error, with msg. */
int stream__broker_delete_topic(stream_broker *b, const char *p, size_t len, char *msg,
                                size_t msg_len);

/* ---- broker_data.c ---- */
void stream__op_produce(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m);
void stream__op_fetch(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m);
void stream__op_list_offsets(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m);
void stream__op_init_producer_id(stream__conn *c, stream__req *r, uint64_t id,
                                 const msgpack_object *m);

/* ---- broker_wait.c ---- */
typedef enum stream__wait_kind {
    STREAM__WAIT_FETCH,   /* long poll: completes when min_bytes arrived */
    STREAM__WAIT_PRODUCE, /* acks=all: completes when every watched log is durable */
} stream__wait_kind;

typedef enum stream__wait_reason {
    STREAM__WAIT_READY,    /* the condition holds */
    STREAM__WAIT_TIMEOUT,  /* the deadline passed */
    STREAM__WAIT_SHUTDOWN, /* the broker is stopping (produces were flushed first) */
    STREAM__WAIT_DROPPED,  /* a watched partition is being deleted */
    STREAM__WAIT_IOERROR,  /* a watched log's sync failed (stream_log_io_error): answer now */
    STREAM__WAIT_CANCEL,   /* the connection closed: free `state`, send nothing */
} stream__wait_reason;

/* Completes (or, for CANCEL, only frees) a parked request. Called once, after
 * the waiter is unlinked and freed; `req` is NULL only for CANCEL paths where
 * the request is already gone. Owns `state`. */
typedef void (*stream__wait_fn)(stream_broker *b, stream__req *req, void *state,
                                stream__wait_reason why);

/* One watched partition of a waiter, threaded on the partition's queue. */
typedef struct stream__wlink {
    struct stream__waiter *w;          /* owner */
    stream__pstate *ps;                /* the partition's state; NULL once unlinked */
    struct stream__wlink *prev, *next; /* the partition's queue */
    int64_t need_offset;               /* produce: durable offset that satisfies it */
    bool satisfied;                    /* produce: durable offset reached */
} stream__wlink;

/* A parked request. One allocation: the links follow the struct. */
struct stream__waiter {
    stream_broker *broker;
    stream__req *req; /* the parked request */
    stream__wait_kind kind;
    size_t heap_index; /* position in the broker's heap; SIZE_MAX if none */
    size_t nlinks, cap_links;
    size_t min_bytes;   /* fetch: bytes that make it ready */
    size_t got_bytes;   /* fetch: bytes appended to its logs since parking */
    size_t outstanding; /* produce: links not yet durable */
    bool replica;       /* fetch: a follower's (woken by appends, not the high watermark) */
    stream__wait_fn complete;
    void *state;           /* the op's own state (owned) */
    stream__wlink links[]; /* one per watched partition (cap_links of them) */
};

/* A waiter for `req` with room for `nlinks` partitions; NULL when out of
 * memory. Not yet parked: call _watch for each partition, then _start. */
stream__waiter *stream__waiter_new(stream_broker *b, stream__req *req, stream__wait_kind kind,
                                   size_t nlinks, stream__wait_fn complete, void *state);
/* Watches `log` (each log at most once per waiter); need_offset is the
 * durable offset a produce waits for. 0 or STREAM_ENOMEM/STREAM_EINVAL. */
int stream__waiter_watch(stream__waiter *w, stream_log *log, int64_t need_offset);
/* Parks the waiter until its condition, timeout_ms, shutdown or cancel. */
void stream__waiter_start(stream__waiter *w, uint64_t timeout_ms);
/* Frees a waiter that was never started (does not call complete). */
void stream__waiter_discard(stream__waiter *w);
/* Unlinks and frees w, then calls its complete function with `why`. */
void stream__waiter_finish(stream__waiter *w, stream__wait_reason why);
/* Cancels a waiter without completing its request (its connection closed). */
void stream__waiter_cancel(stream__waiter *w);

/* Partition state for `log`, created when `create`. NULL if absent / ENOMEM. */
stream__pstate *stream__pstate_get(stream_broker *b, stream_log *log, bool create);
/* Finishes every waiter on `log` with DROPPED and forgets the log. Called
 * after the topic was deleted: `log` is only a key then, never read, and the
 * waiters' completions find the topic gone (ENOTOPIC). */
void stream__pstate_drop(stream_broker *b, stream_log *log);
/* `log` grew by `bytes`: wake long polls watching it. */
void stream__wait_on_append(stream_broker *b, stream_log *log, size_t bytes);
/* If `log` (partition `partition` of `topic`) has a latched I/O error:
 * answers every acks=all produce waiting on it with the error (their
 * offsets may be cut and reused), logs the failure once, and recovers the
 * log in place (stream_log_recover: cut back to the last synced offset).
 * Returns 0 when the log is healthy afterwards, else the latched error with
 * msg saying what failed. */
int stream__partition_recover(stream_broker *b, const char *topic, int32_t partition,
                              stream_log *log, char *msg, size_t msg_len);
/* Replication (broker_repl.c): the durable offsets of replicated partitions
 * moved (called by stream__wait_on_durable); and ps is going away. */
void stream__repl_on_durable(stream_broker *b);
void stream__repl_forget(stream_broker *b, stream__pstate *ps);
/* The high watermark of ps moved up: produces it covers complete and
 * consumers' long polls wake (broker_wait.c). */
void stream__wait_on_high_watermark(stream_broker *b, stream__pstate *ps);

/* The flusher's durable callback (flusher thread): wakes the loop. */
void stream__wait_durable_cb(stream_log *log, int64_t durable_offset, void *arg);
/* Loop side of durable_async: completes produces that are now durable. */
void stream__wait_on_durable(uv_async_t *a);
/* wait_timer callback: completes waiters whose deadline passed. */
void stream__wait_on_timer(uv_timer_t *t);
/* Completes every waiter now (shutdown): produces after a synchronous flush
 * of their logs, fetches with what they have. */
void stream__wait_complete_all(stream_broker *b);
/* Frees the tables (after the loop stopped). */
void stream__wait_release(stream_broker *b);

#endif /* STREAM_BROKER_INTERNAL_H */
