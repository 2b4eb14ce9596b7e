/*
 * host.h - the broker as a host of services: the one interface between the
 * broker core (libstream/broker/) and the services that run inside it, on
 * its loop: the group coordinator (libstream/coord/), the controller and
 * replica manager (libstream/cluster/) and the Kafka listener
 * (libstream/kafka/, on a listener of its own: stream__host_listen). A
 * service includes this header and nothing else of broker/, and calls only
 * the stream__host_* functions below (tests/check-layers.sh checks both).
 * Not installed; prefix stream__.
 *
 * A service is described by a stream__service: the ops it answers, each
 * with a handler, and the callbacks through which the broker runs it:
 *
 *   stream_broker_new   start     in the order of the broker's list
 *                                 (host.c), once the store is open and
 *                                 before the listener accepts: what a
 *                                 service loads (committed offsets) is
 *                                 there before the first client asks
 *   a request           handler   for each op of its table; the core's own
 *                                 ops (hello, metadata, produce, ...) are
 *                                 never routed to a service
 *   create / delete     topic_created, topic_deleted: after the store did it
 *   add partitions      partitions_added: likewise
 *   stopping            stop      close the service's loop handles (the
 *                                 loop then runs their close callbacks)
 *   after the loop      free      release everything the service holds
 *
 * The broker core knows no service by name beyond the list that starts
 * them; a service knows the broker only as the opaque stream_broker it is
 * given at start, and a request only as an opaque stream__req.
 *
 * A handler answers its request exactly once: at once (reply_start +
 * reply_finish, or reply_error), or later from a completion
 * (stream__host_wait_durable). Fields of the request (msgpack strings and
 * bins) point into the frame and are valid only until the handler returns.
 *
 * Everything here runs on the broker's loop thread.
 */
#ifndef STREAM_BROKER_HOST_H
#define STREAM_BROKER_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "stream/broker.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/log.h"
#include "stream/proto.h"
#include "stream/store.h"
#include "stream/tls.h"

/* A client's request, from its frame until its response is written. Opaque
 * outside broker/. */
typedef struct stream__req stream__req;

/* A partition's role on this broker (see "replication" below). */
typedef enum stream__host_role {
    STREAM__ROLE_LEADER = 0,
    STREAM__ROLE_FOLLOWER = 1,
    STREAM__ROLE_NONE = 2,
    STREAM__ROLE_LOCAL = 3,
} stream__host_role;

/* Answers request r (op fields in m, borrowed) with correlation id `id`.
 * `svc` is what the service's start returned. */
typedef void (*stream__op_handler)(void *svc, stream__req *r, uint64_t id, const msgpack_object *m);

/* One op a service answers. */
typedef struct stream__service_op {
    stream_op op;              /* the op (its protocol version is checked first) */
    stream__op_handler handle; /* who answers it */
} stream__service_op;

/* A service, as the broker's list holds it (a constant). */
typedef struct stream__service {
    const char *name;              /* for messages: "group coordinator" */
    const stream__service_op *ops; /* the ops it answers; no op twice in the list */
    size_t nops;                   /* entries in ops */
    /* Starts the service on b: *svc gets its state, passed to every other
     * callback and handler. 0, or an error with errbuf (the broker then
     * fails to start); a state left in *svc by a failed start is still
     * stopped and freed. */
    int (*start)(stream_broker *b, void **svc, char *errbuf, size_t errbuf_len);
    /* The broker is stopping (or failed to start): close loop handles. */
    void (*stop)(void *svc);
    /* The loop is done: free the state. */
    void (*free)(void *svc);
    /* Topic t was created (by a client, auto-creation or a service). NULL:
     * not interested. */
    void (*topic_created)(void *svc, stream_topic *t);
    /* The topic called `name` was deleted; its logs are gone. NULL: not
     * interested. */
    void (*topic_deleted)(void *svc, const char *name);
    /* Topic t grew from old_count partitions to t->partition_count (the new
     * ones empty, attached to the flusher). NULL: not interested. */
    void (*partitions_added)(void *svc, stream_topic *t, int32_t old_count);
    /* The client connection conn_id (stream__host_req_conn) closed: its
     * requests not yet answered are gone (never touch them again). Called
     * before the broker stops the services too. NULL: not interested. */
    void (*conn_closed)(void *svc, uint64_t conn_id);
    /* The broker was asked to stop (a signal, stream_broker_stop), before it
     * stops accepting and serving clients. Return true to hold the stop
     * until the service calls stream__host_stop_resume (or 3 s passed, or
     * a second signal came): a cluster broker first moves its partition
     * leaderships away (controlled shutdown). NULL: never holds. */
    bool (*stop_requested)(void *svc);
    /* The replicating service changed log's role or leader epoch
     * (stream__host_set_role): the group coordinator loads or drops the
     * groups of an offsets partition it starts or stops leading. Called
     * after the change, on the loop. NULL: not interested. */
    void (*role_changed)(void *svc, stream_log *log, stream__host_role role, int32_t leader_epoch);
    /* A scrape of GET /metrics: append the service's families in
     * Prometheus's text format (stream/prom.h) to out, on the loop. NULL:
     * none. */
    void (*metrics)(void *svc, stream_buf *out);
    /* The stats op (protocol.md 6.29): pack exactly one key and its value
     * into the answer's map (the coordinator's "groups"), on the loop.
     * NULL: none. */
    void (*stats)(void *svc, msgpack_packer *pk);
} stream__service;

/* ---- the broker, as a service sees it ---- */

/* The state of service s on b (what its start returned), NULL when b does
 * not run it (or not yet): for a service that uses another one below it
 * (the Kafka listener and the group coordinator). */
void *stream__host_service_state(stream_broker *b, const stream__service *s);

/* The broker's loop: for a service's timers. */
uv_loop_t *stream__host_loop(stream_broker *b);
/* The topics and their logs. A service appends to a log directly (log.h)
 * and then calls stream__host_appended. */
stream_store *stream__host_store(stream_broker *b);
/* The broker's configuration (the group.* settings, ...). */
const stream_config *stream__host_config(stream_broker *b);
/* The address clients connect to, as bound (the host as configured in
 * `listen`, without IPv6 brackets; the port as bound, 0 before the listener
 * is bound, which happens after the services start). The host is valid as
 * long as b. */
void stream__host_listen_address(stream_broker *b, const char **host, uint16_t *port);
/* True once the broker has begun stopping (not while a service holds the
 * stop: see stream__service.stop_requested). */
bool stream__host_stopping(stream_broker *b);
/* A service that held the stop is done: the broker stops now. No-op when
 * nothing holds it. */
void stream__host_stop_resume(stream_broker *b);
/* This broker's node.id (0 on a single node unless set). */
int32_t stream__host_node_id(stream_broker *b);
/* True when the broker runs in a cluster (cluster.voters is set): topics
 * come from the metadata, the replicating service sets partition roles, and
 * the group coordinator creates nothing locally. Known from the start. */
bool stream__host_clustered(stream_broker *b);
/* A line for the broker's log (no trailing newline). */
void stream__host_log(stream_broker *b, stream_broker_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The wall clock, ms since the epoch (commit timestamps). */
uint64_t stream__host_now_ms(void);

/* ---- answering a request ---- */

/* Starts the response frame of r in f (anything r held before is dropped). */
void stream__host_reply_start(stream__req *r, stream_frame *f);
/* Finishes f and sends it; on failure (ENOMEM, ETOOLARGE) answers with that
 * error instead. Returns 0 or that error. */
int stream__host_reply_finish(stream__req *r, stream_frame *f, uint64_t id);
/* Packs `configs` as describe_configs answers it (protocol.md 6.5): every
 * setting of the scope (topic's when topic is not NULL, with its
 * overrides), sorted by name, with value, is_default, source and doc. */
void stream__host_pack_configs(msgpack_packer *pk, const stream_config *broker,
                               const stream_config *topic);
/* Answers r with only id, err and msg (msg NULL: none). */
void stream__host_reply_error(stream__req *r, uint64_t id, int err, const char *msg);
/* "HOST:PORT" of the client r came from (valid while r is). */
const char *stream__host_req_peer(const stream__req *r);
/* The id of the connection r came on: unique among this broker's
 * connections for as long as it runs (conn_closed names it). */
uint64_t stream__host_req_conn(const stream__req *r);

/* ---- topics, appends, durability ---- */

/* Creates a topic as create_topics does (internal: the name may start with
 * "__"), attaches its logs to the flusher and tells every service
 * (topic_created). *out gets the topic. 0 or the store's error with msg. */
int stream__host_create_topic(stream_broker *b, const char *name, int32_t partitions,
                              const stream_config *overrides, bool internal, stream_topic **out,
                              char *msg, size_t msg_len);
/* Grows topic `name` to `count` partitions as create_partitions does, but
 * here and now on the loop (the replica manager following the metadata);
 * the new logs are attached to the flusher and every service is told
 * (partitions_added). 0 or the store's error with msg. */
int stream__host_add_partitions(stream_broker *b, const char *name, int32_t count, char *msg,
                                size_t msg_len);
/* Called on the loop when stream__host_create_topic_async's or
 * stream__host_add_partitions_async's work is finished: rc 0 (the topic, or
 * its new partitions, are in the store, attached to the flusher, and every
 * service was told) or the store's error with msg. */
typedef void (*stream__host_job_done_fn)(void *arg, int rc, const char *msg);
/* The same two off the loop: the checks and the name's reservation now,
 * the disk work on libuv's thread pool, then done(arg, ...) on the loop
 * (also while the broker stops: before the services are freed). 0, or the
 * store's error with msg, and then done is never called. */
int stream__host_create_topic_async(stream_broker *b, const char *name, int32_t partitions,
                                    const stream_config *overrides, bool internal,
                                    stream__host_job_done_fn done, void *arg, char *msg,
                                    size_t msg_len);
int stream__host_add_partitions_async(stream_broker *b, const char *name, int32_t count,
                                      stream__host_job_done_fn done, void *arg, char *msg,
                                      size_t msg_len);
/* Deletes a topic as delete_topics does (not an internal one); its logs
 * are gone when this returns. 0 or the error with msg. */
int stream__host_delete_topic(stream_broker *b, const char *name, char *msg, size_t msg_len);
/* A service appended `bytes` to `log`: long polls watching it wake, as
 * after a produce. */
void stream__host_appended(stream_broker *b, stream_log *log, size_t bytes);

/* A request parked until its writes are durable. Embedded in the service's
 * own state, whose address `done` gets back. */
typedef struct stream__host_wait stream__host_wait;
/* Completes a parked request: encode the answer into r (see reply_*) unless
 * `cancelled` (the connection closed: r must not be touched), then free w's
 * state. Called exactly once. */
typedef void (*stream__host_done_fn)(stream_broker *b, stream__req *r, stream__host_wait *w,
                                     bool cancelled);
struct stream__host_wait {
    stream__host_done_fn done;
};

/*
 * Parks r until each logs[i] is durable up to need[i], or until timeout_ms
 * passes, the broker stops or a log is deleted; then calls w->done (which
 * checks durability itself to choose its answer). A replicated partition is
 * durable up to its high watermark (every ISR member has it on disk). When
 * there is nothing to wait for (n is 0, or every log is durable already) or
 * no way to (the broker is stopping, no memory, a log named twice), the
 * logs not yet durable are flushed here and w->done is called before this
 * returns. The arrays are read only during the call.
 */
void stream__host_wait_durable(stream_broker *b, stream__req *r, stream_log *const *logs,
                               const int64_t *need, size_t n, uint64_t timeout_ms,
                               stream__host_wait *w);

/* ---- a listener of the service's own protocol ----------------------------
 *
 * A service may open a listener of its own (the Kafka listener). Its
 * connections are the broker's like any other (framing by a 4-byte
 * big-endian length checked against socket.request.max.bytes before it is
 * buffered, responses in request order, backpressure, idle timeouts, file
 * pieces sent with sendfile), but each frame goes to the service's handler
 * with a new request, and nothing of the native protocol is ever written on
 * them: a frame over the limit, a handler's refusal or the broker stopping
 * closes the connection after the responses before it.
 */

/* Answers one frame (len bytes at frame, without its length prefix;
 * writable, valid until the handler returns) with request r: write the
 * whole response frame (length prefix included) into stream__host_req_out
 * and call stream__host_req_done, now or later (r may be parked: see
 * stream__host_fetch, stream__host_wait_durable); or stream__host_req_drop
 * to answer nothing. Returns 0, or a negative error to close the
 * connection instead (r untouched: the host drops it). */
typedef int (*stream__frame_handler)(void *svc, stream__req *r, uint8_t *frame, size_t len);

/* Binds and listens on `addr` (HOST:PORT as `listen` takes it; port 0
 * picks one) for handler h with state svc; *port gets the port bound.
 * `setting` names the option in messages ("kafka.listen"). Called from a
 * service's start; the listener closes when the broker stops. 0, or
 * STREAM_EBADCONFIG, STREAM_EAGAIN (address in use), STREAM_EIO,
 * STREAM_ENOMEM (no slot left), with errbuf. */
int stream__host_listen(stream_broker *b, const char *addr, const char *setting,
                        stream__frame_handler h, void *svc, uint16_t *port, char *errbuf,
                        size_t errbuf_len);
/* Publishes the client address of the service's listener under `name`
 * ("kafka"), for another service to advertise (the controller registers
 * it with the broker in the cluster metadata). Called from the service's
 * start, after stream__host_listen; a second call with the same name
 * replaces the first. */
void stream__host_set_advertised(stream_broker *b, const char *name, const char *host,
                                 uint16_t port);
/* The address published under `name`: true with *host (valid as long as
 * b) and *port, false when none was. */
bool stream__host_advertised(stream_broker *b, const char *name, const char **host, uint16_t *port);
/* The response buffer of a service listener's request r (empty when the
 * handler is called). */
stream_buf *stream__host_req_out(stream__req *r);
/* r's response is whole in stream__host_req_out: it is written in turn. */
void stream__host_req_done(stream__req *r);
/* r gets no response (Kafka's acks=0 produce). */
void stream__host_req_drop(stream__req *r);
/* r gets no response and its connection closes once the responses before
 * it are written (an answer that cannot be made: better than a client
 * waiting for it forever). */
void stream__host_req_close(stream__req *r);

/* ---- the native admin ops, for a service's protocol ----------------------
 *
 * A service speaking another protocol (the Kafka listener) has the broker's
 * own ops do the work: it encodes the request as a native client would, the
 * broker runs it exactly as it runs a native client's (through the service
 * that took the op, when one did: in a cluster the controller, which
 * proposes topic changes to the metadata quorum or forwards them to the
 * controller), and the native answer comes back to the service to
 * translate into its own.
 */

/* Receives the native answer to a request run by stream__host_native_op:
 * resp (len bytes, one MessagePack map as protocol.md describes the op's
 * response; NULL when the answer could not be made) is borrowed for the
 * call. Write r's response into stream__host_req_out and call
 * stream__host_req_done (or stream__host_req_close). */
typedef void (*stream__native_done_fn)(void *arg, stream__req *r, const uint8_t *resp, size_t len);

/* Runs the native request in req (len bytes: one MessagePack map with op,
 * id and the op's fields) for r, a service listener's request; done(arg)
 * gets the answer, now or later, exactly once - unless r's connection
 * closes first: then release(arg) is called instead (release may be NULL).
 * Only the admin ops: create_topics, delete_topics, create_partitions,
 * describe_configs, alter_configs, metadata, describe_cluster. Returns 0, or
 * STREAM_EPROTO / STREAM_EINVAL (not such a request; nothing was called). */
int stream__host_native_op(stream__req *r, const uint8_t *req, size_t len,
                           stream__native_done_fn done, void (*release)(void *arg), void *arg);

/* ---- produce and fetch, for a service's protocol -------------------------
 *
 * The native protocol's own produce, fetch, list_offsets and
 * init_producer_id, with the decoding and encoding left to the caller: the
 * same checks (batch CRC and header, max.message.bytes, the idempotent
 * producer's sequence, leadership), the same appends and the same reads,
 * long polls and sendfile. Error codes are STREAM_E*; `msg` says why.
 */

/* One partition's produce, as stream__host_produce leaves it. */
typedef struct stream__produce_result {
    int err;                  /* 0 or STREAM_E* */
    char msg[320];            /* why, when err */
    int64_t base_offset;      /* the first offset assigned (or the one a resend got); -1 */
    int64_t log_start_offset; /* -1 on error */
    int64_t need_durable;     /* acks=all: the log must be durable up to here; 0: no wait */
} stream__produce_result;

/* Appends the batches in records (len bytes, writable: base offsets are
 * stamped in place) to partition `partition` of topic (topic_len bytes,
 * not NUL-terminated; auto-created when the broker allows it), all or
 * none, as the native produce does with acks (-1, 0, 1). res says how it
 * went; with need_durable > 0 the caller waits (stream__host_wait_durable
 * on stream__host_partition_log) and then calls stream__host_produce_settle. */
void stream__host_produce(stream_broker *b, const char *topic, size_t topic_len, int32_t partition,
                          uint8_t *records, size_t len, int acks, stream__produce_result *res);
/* After the wait for res->need_durable ended: sets res->err (ETIMEDOUT,
 * EIO, ENOTLEADER, ...) when the records are not durable as acks=all
 * requires. */
void stream__host_produce_settle(stream_broker *b, const char *topic, int32_t partition,
                                 stream__produce_result *res);
/* The log of topic (NUL-terminated) partition, or NULL. */
stream_log *stream__host_partition_log(stream_broker *b, const char *topic, int32_t partition);

/* One partition of a fetch, and what it got. */
typedef struct stream__fetch_answer {
    int32_t partition;
    int err;                  /* 0 or STREAM_E* */
    const char *msg;          /* why, when err (borrowed for the call) */
    int64_t high_watermark;   /* -1 on error */
    int64_t log_start_offset; /* -1 on error */
} stream__fetch_answer;

/* How a fetch's response is written: the core calls these in order,
 * begin, then per topic `topic`, per partition `partition` (which writes
 * the entry up to the length of its record bytes, nbytes: the bytes follow
 * in the frame, possibly sent from the file) and partition_end, then
 * topic_end, and end; the core patches the frame's length (f's start,
 * counting the file bytes). A partition may be written twice: the core
 * cuts the frame back to the entry's start and writes it again with fewer
 * bytes when stored data turns out damaged. `fail` answers instead when
 * the response cannot be made (ENOMEM, ETOOLARGE). */
typedef struct stream__fetch_codec {
    void (*begin)(stream_frame *f, uint64_t id, int version, size_t ntopics);
    void (*topic)(stream_frame *f, int version, const char *name, size_t nparts);
    void (*partition)(stream_frame *f, int version, const stream__fetch_answer *a, size_t nbytes);
    void (*partition_end)(stream_frame *f, int version);
    void (*topic_end)(stream_frame *f, int version);
    void (*end)(stream_frame *f, int version);
    void (*fail)(stream__req *r, uint64_t id, int version, int err);
} stream__fetch_codec;

/* One topic of a fetch: a name (borrowed for the call) and how many of the
 * parts, in order, are its. */
typedef struct stream__fetch_topic {
    const char *name;
    size_t name_len;
    size_t nparts;
} stream__fetch_topic;

/* One partition of a fetch. */
typedef struct stream__fetch_part {
    int32_t partition;
    int64_t offset;   /* the first offset wanted */
    size_t max_bytes; /* this partition's limit (the first batch goes whole) */
} stream__fetch_part;

/* Fetches for r, a consumer's fetch: answers at once when min_bytes are
 * there (or max_wait_ms is 0, or a partition fails), else parks r until
 * enough is appended or max_wait_ms passes, as the native fetch does. The
 * response is written by codec (a constant) with the request's correlation
 * id and version; the arrays are copied. */
void stream__host_fetch(stream_broker *b, stream__req *r, uint64_t id, int version,
                        const stream__fetch_codec *codec, int64_t max_wait_ms, size_t min_bytes,
                        size_t max_bytes, const stream__fetch_topic *topics, size_t ntopics,
                        const stream__fetch_part *parts, size_t nparts);

/* The offset list_offsets gives for timestamp ts (STREAM_OFFSET_EARLIEST,
 * STREAM_OFFSET_LATEST, or ms since the epoch: the first record at or after
 * it, *found_ts its timestamp; the log end and -1 when there is none) of
 * topic's partition. 0 or the error with msg. */
int stream__host_list_offset(stream_broker *b, const char *topic, size_t topic_len,
                             int32_t partition, int64_t ts, int64_t *offset, int64_t *found_ts,
                             char *msg, size_t msg_len);
/* A new producer id (epoch 0), as init_producer_id gives. 0 or the error
 * with msg. */
int stream__host_producer_id(stream_broker *b, int64_t *pid, char *msg, size_t msg_len);

/* ---- a service in place of a core op ---- */

/* From now on op (one the core answers: metadata, create_topics,
 * delete_topics, alter_configs, ...) is answered by handler h with state svc
 * instead. Called from a service's start; a cluster's controller takes the
 * admin ops so that they go through the metadata quorum. */
void stream__host_take_op(stream_broker *b, stream_op op, stream__op_handler h, void *svc);

/* ---- replication ---------------------------------------------------------
 *
 * A single broker leads every partition it has, its high watermark is its
 * log end, and acks=all waits for its own disk. A replicating service (the
 * cluster's replica manager) changes that by giving the broker hooks
 * (stream__host_set_replication) and then a role per partition:
 *
 *   LEADER    produce appends here, each batch stamped with the leader
 *             epoch; consumers read below the high watermark; acks=all
 *             completes once the high watermark (which the service sets:
 *             the lowest durable log end over the ISR) passes the batch
 *   FOLLOWER  produce and consumer fetch get ENOTLEADER (naming the leader);
 *             the service appends the leader's batches itself
 *   NONE      not a replica here (or no leader known): as FOLLOWER
 *
 *   LOCAL     a topic of this broker alone (from before it joined a
 *             cluster): served as a single broker serves it
 *
 * With hooks set, a partition the service has not given a role yet is
 * refused to clients (ENOTLEADER, "catching up"): a restarted broker must
 * not serve a partition, as if it were its own, before it knows who leads
 * it now (it may have led it before the restart and lost it meanwhile).
 */
typedef struct stream__host_replication {
    /* A replica fetch (fetch with replica_id >= 0) asked for `log` from
     * fetch_offset, its log being durable up to durable_offset, believing
     * the leader epoch is leader_epoch. Returns 0 to serve it, or an error
     * for that partition (ESTALEEPOCH, ENOTLEADER, ENOBROKER) with msg. */
    int (*replica_fetch)(void *arg, stream_log *log, int32_t replica_id, int32_t leader_epoch,
                         int64_t fetch_offset, int64_t durable_offset, char *msg, size_t msg_len);
    /* log's durable offset advanced to durable_offset (on the loop). */
    void (*durable)(void *arg, stream_log *log, int64_t durable_offset);
    /* A produce with acks (-1, 0, 1) is about to append to log, which this
     * broker leads. 0 to go on, or an error with msg: ENOTENOUGHREPLICAS
     * when acks is -1 and the ISR is smaller than min.insync.replicas. */
    int (*produce_check)(void *arg, stream_log *log, int acks, char *msg, size_t msg_len);
    /* A produce named a topic that does not exist here: the service may
     * have it created through the cluster (the produce gets ENOTOPIC now;
     * the producer retries). NULL: no auto-creation. */
    void (*auto_create)(void *arg, const char *topic);
    /* The client address of broker node_id as the cluster knows it: 0 with
     * host (NUL-terminated, at most host_len bytes) and *port, or ENOBROKER.
     * NULL: no other node is known. */
    int (*node_address)(void *arg, int32_t node_id, char *host, size_t host_len, uint16_t *port);
} stream__host_replication;

/* Turns replication on with these hooks (copied) and arg. Once, at start. */
void stream__host_set_replication(stream_broker *b, const stream__host_replication *hooks,
                                  void *arg);
/* Sets log's role, its leader's node id (-1: none) and leader epoch. As
 * LEADER, appends from now on are stamped with leader_epoch. */
void stream__host_set_role(stream_broker *b, stream_log *log, stream__host_role role,
                           int32_t leader_id, int32_t leader_epoch);
/* Sets log's high watermark (never beyond its log end): wakes long polls
 * and completes acks=all produces it now covers. */
void stream__host_set_high_watermark(stream_broker *b, stream_log *log, int64_t hw);
/* Asks the replicating service to create topic through the cluster
 * (auto_create); no-op without one. The topic appears later (the replica
 * manager creates it from the metadata and topic_created fires). */
void stream__host_auto_create(stream_broker *b, const char *topic);
/* The produce_check hook for a service's own acks=all append to log: 0, or
 * ENOTENOUGHREPLICAS / ENOTLEADER with msg. 0 without replication. */
int stream__host_produce_check(stream_broker *b, stream_log *log, char *msg, size_t msg_len);
/* The client address of node_id: this broker's own listen address for its
 * own id, else the node_address hook's answer; ENOBROKER when unknown. */
int stream__host_node_address(stream_broker *b, int32_t node_id, char *host, size_t host_len,
                              uint16_t *port);
/* What the broker holds for log: role, leader, leader epoch, high
 * watermark. Any pointer may be NULL. A partition not replicated (no
 * hooks, or LOCAL) is LEADER, this node, epoch 0, its log end; one that
 * waits for its first role is NONE, leader -1, epoch -1. */
void stream__host_partition_state(stream_broker *b, stream_log *log, stream__host_role *role,
                                  int32_t *leader_id, int32_t *leader_epoch, int64_t *hw);

/* ---- TLS on links to other brokers (host_tls.c) ---- */

/* The context of this broker's links to other brokers when it serves TLS:
 * its own certificate and key as client certificate, tls.ca (else the
 * system's CAs) to verify theirs; NULL without TLS. The pointer stays
 * valid for the broker's life (SIGHUP renews its files in place). */
stream_tls_ctx *stream__host_tls_client(stream_broker *b);

/* A client-side TLS session on a libuv TCP connection, embedded in its
 * owner (a peer, the controller link). The owner calls _start once the
 * connect finished, gives _alloc and _read its read path (ciphertext in,
 * frames out into its frame reader), writes its frames with _write (one at
 * a time, as before) once _ready, and calls _release after the handle
 * closed. A zeroed link is "no TLS": _active false. */
typedef struct stream__tls_link {
    stream_tls *tls;     /* the session, or NULL: plain text */
    uv_stream_t *stream; /* the connection's handle */
    uint8_t *in;         /* ciphertext read buffer */
    stream_buf out;      /* ciphertext of the owner's write in flight */
} stream__tls_link;

/* Starts the handshake with the broker at host (its certificate must name
 * it) and sends the client's first records. 0 or STREAM_ENOMEM. */
int stream__host_tls_link_start(stream__tls_link *l, stream_tls_ctx *ctx, uv_stream_t *stream,
                           const char *host);
/* True when l carries TLS. */
bool stream__host_tls_link_active(const stream__tls_link *l);
/* True once its handshake finished: frames may be written. */
bool stream__host_tls_link_ready(const stream__tls_link *l);
/* The read buffer for the handle's alloc callback. */
void stream__host_tls_link_alloc(stream__tls_link *l, uv_buf_t *buf);
/* n ciphertext bytes were read into the alloc buffer: decrypts them into
 * fr and sends what the handshake answers. Returns 1 when the handshake
 * finished just now (write what waited), 0, or STREAM_ETLS (the session
 * failed: stream_tls_error(l->tls) says why) or STREAM_ENOMEM. */
int stream__host_tls_link_read(stream__tls_link *l, size_t n, stream_frame_reader *fr);
/* Encrypts p[0..n) and writes the ciphertext with w, calling cb when it is
 * written. One such write at a time. 0, or a negative code (cb not called). */
int stream__host_tls_link_write(stream__tls_link *l, uv_write_t *w, const uint8_t *p, size_t n,
                           uv_write_cb cb);
/* Frees the session and buffers; l is zeroed ("no TLS"). */
void stream__host_tls_link_release(stream__tls_link *l);

#endif /* STREAM_BROKER_HOST_H */
