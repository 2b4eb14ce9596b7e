/*
 * client_internal.h - what the client's files share (client.c,
 * client_conn.c, client_metadata.c, client_offsets.c, producer*.c,
 * consumer.c, group_client*.c, admin.c). Not installed; prefix stream__.
 *
 * The main header of libstream/client/: the connections with their
 * pipelined requests and the routing of requests to broker nodes, the
 * metadata cache, the producer, the consumer, its group membership and the
 * admin calls; it speaks proto/ to a broker and never links the broker in.
 * Module-private parts have their own headers (client_conn.h,
 * producer_internal.h, group_client_internal.h).
 *
 * The request path:
 *
 *   stream__req_begin(c, op, n)      -> a packer positioned after "op" and "id";
 *   pack n key/value pairs               the caller packs its n fields
 *   stream__req_send(c, cb, arg, ...) -> queued; sent when the connection is
 *                                        up and fewer than max_in_flight are out
 *   ... stream_client_poll ...
 *   cb(c, resp, arg)                  -> exactly once: the response (resp->root)
 *                                        or a transport error (resp->root NULL)
 *
 * A response callback runs inside stream_client_poll (or a blocking call that
 * polls). It may queue new requests; it must not call blocking calls (they
 * would poll recursively) or free the client.
 */
#ifndef STREAM_CLIENT_INTERNAL_H
#define STREAM_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "stream/client.h"
#include "stream/proto.h"
#include "base/internal.h"

/* A response as handed to a request's callback. */
typedef struct stream__resp {
    int err;                    /* 0, the response's err (negative), or a transport
                                   error (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPROTO) */
    const char *msg;            /* NUL-terminated detail; "" when err == 0. Borrowed. */
    const msgpack_object *root; /* The response map; NULL on a transport error.
                                   Borrowed: valid during the callback only. */
    const uint8_t *payload;     /* The frame's payload (root points into it); NULL on a
                                   transport error. Borrowed likewise: copy to keep. */
    size_t payload_len;
} stream__resp;

typedef void (*stream__resp_cb)(stream_client *c, const stream__resp *r, void *arg);

/* Monotonic milliseconds (for deadlines) and wall-clock ms since the epoch. */
int64_t stream__client_mono_ms(void);
int64_t stream__client_wall_ms(void);

/* Starts a request: returns a packer that has written the map header for
 * 2 + nfields entries, "op" and "id". Pack exactly nfields pairs, then
 * _send or _abort. One request at a time is under construction. */
msgpack_packer *stream__req_begin(stream_client *c, stream_op op, size_t nfields);

/* Request flags. */
#define STREAM__REQ_NO_RESPONSE 0x1 /* acks=0 produce: done once written */

/* Queues the request begun last. cb (may be NULL) gets exactly one call,
 * never from inside _send. extra_timeout_ms is added to request_timeout_ms
 * (a long poll's max_wait_ms). Returns the request id (> 0), or STREAM_ENOMEM
 * (then cb is never called). */
int64_t stream__req_send(stream_client *c, stream__resp_cb cb, void *arg, int extra_timeout_ms,
                         int flags);

/* Node ids for stream__req_send_node: a broker's node id (>= 0), or this
 * for the bootstrap connection (see "Routing" below). */
#define STREAM__NODE_BOOTSTRAP (-1)

/* Like stream__req_send, on the connection to broker node `node` (the
 * partition's leader), made on demand; STREAM__NODE_BOOTSTRAP, or a node
 * no metadata has named, goes on the bootstrap connection, as does every
 * request for the node the bootstrap connection reached (so a single broker
 * is one connection). Returns the request id or STREAM_ENOMEM. */
int64_t stream__req_send_node(stream_client *c, int32_t node, stream__resp_cb cb, void *arg,
                              int extra_timeout_ms, int flags);

/* Takes the buffer a response was received in, so that its payload (and
 * what root points into) stays valid after the callback: call it from the
 * callback. Only a frame larger than 64 KiB that nothing else shares a
 * buffer with can be taken; otherwise NULL (copy what you need). The
 * payload is inside the returned buffer; *cap gets its size. Hand it back
 * with stream__client_give_back (or free it). */
void *stream__resp_take(stream_client *c, const stream__resp *r, size_t *cap);

/* Returns a buffer from stream__resp_take (cap: its size) for reuse; NULL
 * is a no-op. */
void stream__client_give_back(stream_client *c, void *buf, size_t cap);

/* Drops the request begun last. */
void stream__req_abort(stream_client *c);

/* Makes sure request `id` never calls its callback (it may still be sent
 * and answered; the answer is dropped). Unknown ids are ignored. */
void stream__req_cancel(stream_client *c, int64_t id);

/* A timer hook: called at every stream_client_poll with the monotonic time;
 * does what is due (send lingering batches, start the next fetch) and
 * returns the monotonic time it next wants to run (INT64_MAX: nothing
 * scheduled), so the poll does not sleep past it. */
typedef int64_t (*stream__tick_fn)(void *arg, int64_t now_ms);
int stream__client_add_tick(stream_client *c, stream__tick_fn fn, void *arg);
void stream__client_remove_tick(stream_client *c, stream__tick_fn fn, void *arg);

/* Polls until *done becomes true or the monotonic deadline passes (INT64_MAX:
 * no deadline). Returns 0 when done, STREAM_ETIMEDOUT, or a broken client's
 * error. */
int stream__client_wait(stream_client *c, const bool *done, int64_t deadline_ms);

/* The monotonic deadline for a blocking call's timeout_ms (-1: the client's
 * request_timeout_ms). */
int64_t stream__client_deadline(const stream_client *c, int timeout_ms);

/* The client's request_timeout_ms. */
int stream__client_request_timeout(const stream_client *c);

/* ---- routing (client.c, client_metadata.c) --------------------------------
 *
 * A client keeps one connection per broker node it has to reach: the
 * bootstrap connection (to one broker of the list it was given; metadata
 * and admin requests) and node connections made on demand from the
 * `brokers` of the last metadata. Produce, fetch and list_offsets for a
 * partition go to the partition's leader (stream__client_leader). When the
 * leader answers ENOTLEADER or the like, or its connection dies, the caller
 * asks stream__retry_decide what to do: refresh the topic's metadata
 * (stream__client_refresh_async, rate-limited per topic) and send again to
 * whatever leader the metadata then names. A group's requests go to its
 * coordinator (find_coordinator: group_client.c, admin.c), which on a
 * single broker is the bootstrap connection itself. */

/* The broker node the bootstrap connection's hello named (-1 before). */
int32_t stream__client_bootstrap_node(const stream_client *c);

/* True when the last metadata named more than one broker (a cluster). */
bool stream__client_clustered(const stream_client *c);

/* True when requests for `node` would go on the bootstrap connection (so
 * they queue behind group requests there). */
bool stream__client_node_on_bootstrap(stream_client *c, int32_t node);

/* Remembers the brokers of a metadata answer (n > 0): where node
 * connections connect. In a cluster (n > 1) their addresses also join the
 * bootstrap list, so losing the brokers the caller named still leaves one
 * to ask. 0 or STREAM_ENOMEM. */
int stream__client_set_brokers(stream_client *c, const stream_broker_meta *brokers, size_t n);

/* Remembers where node `node` is (host, port: from find_coordinator) when
 * no metadata named it yet, so stream__req_send_node reaches it. 0,
 * STREAM_EINVAL (a bad address) or STREAM_ENOMEM. */
int stream__client_learn_node(stream_client *c, int32_t node, const char *host, int port);

/* Takes md (borrowed) as if a metadata answer had just brought it: its
 * brokers and topics into the cache. Tests use it to name leaders no
 * broker would. 0 or STREAM_ENOMEM. */
int stream__client_metadata_apply(stream_client *c, const stream_metadata *md);

/* stream__client_leader's answer when the cache does not know the topic or
 * partition (send to the bootstrap connection, which may know). */
#define STREAM__LEADER_UNKNOWN (-2)

/* The leader of topic/partition in the metadata cache: its node id; -1 when
 * the metadata said there is none right now (an election is under way:
 * wait, refresh); STREAM__LEADER_UNKNOWN when the cache has no answer. */
int32_t stream__client_leader(stream_client *c, const char *topic, int32_t partition);

/* Counts changes of the metadata cache: a caller that keeps leaders looks
 * again when it moved. */
uint64_t stream__client_md_generation(stream_client *c);

/* The least time between two metadata refreshes of one topic (the rate
 * limit of stream__client_refresh_async). */
#define STREAM__MD_REFRESH_MIN_MS 100

/* What to do about a partition's failed request (produce, fetch,
 * list_offsets), by its error. */
typedef enum stream__retry_action {
    STREAM__RETRY_NO = 0,      /* not retriable: report it */
    STREAM__RETRY_SAME = 1,    /* retry after a backoff; the route is fine */
    STREAM__RETRY_REFRESH = 2, /* the leader may have moved or died: refresh the
                                  topic's metadata, retry after a backoff on the
                                  leader it names */
} stream__retry_action;

/* The decision for err: REFRESH for ENOTLEADER, ENOTENOUGHREPLICAS,
 * ESTALEEPOCH, ENOBROKER, ENOTOPIC, ENOPART and transport failures
 * (ECONNRESET, ECONNREFUSED, ETIMEDOUT, ECLOSED: the connection or the
 * broker went away); SAME for EAGAIN and EPROTO; NO otherwise. */
stream__retry_action stream__retry_decide(int err);

/* The leader of topic/partition in a metadata answer, a pure look-up:
 * returns its node id (and, when addr is not NULL and the answer lists the
 * node, its address in *addr, else addr->host ""), -1 when the partition
 * has no leader now, STREAM__LEADER_UNKNOWN when the answer does not have
 * the topic (or it failed) or the partition. */
int32_t stream__metadata_leader(const stream_metadata *md, const char *topic, int32_t partition,
                                stream_hostport *addr);

/* One cached topic. */
typedef struct stream__topic_md {
    char *name;              /* owned */
    int err;                 /* 0, or the error metadata returned for it */
    int32_t partition_count; /* 0 when err */
    int32_t *leaders;        /* partition_count leaders (-1: none) */
    int64_t fetched_ms;      /* monotonic time of the metadata it came from */
    int64_t refresh_ms;      /* monotonic time the last refresh was sent; 0 none */
    bool stale;              /* invalidated: refetch before trusting */
} stream__topic_md;

/* A metadata request for one topic that is out, so refreshes do not pile up. */
typedef struct stream__md_pending {
    char *topic; /* owned */
    struct stream__md_pending *next;
} stream__md_pending;

/* The metadata cache a client owns (client_metadata.c). */
typedef struct stream__md_cache {
    stream__topic_md *topics; /* sorted by name */
    size_t ntopics, cap;
    stream__md_pending *pending; /* refreshes in flight */
    uint64_t generation;         /* bumped by every change of leaders or counts */
} stream__md_cache;

stream__md_cache *stream__client_md(stream_client *c);
void stream__md_cache_release(stream__md_cache *md);
int stream__client_metadata_max_age(const stream_client *c);

/* The cached entry for topic, or NULL; may be stale or old. Borrowed until
 * the next poll. */
const stream__topic_md *stream__client_topic(stream_client *c, const char *topic);

/* Sends a metadata request for topic (unless one is already out for it, or
 * the last one went out less than STREAM__MD_REFRESH_MIN_MS ago) and
 * updates the cache when it comes back. Returns 0 or STREAM_ENOMEM. */
int stream__client_refresh_async(stream_client *c, const char *topic);

/* Copies the str field `key` of map m into *out (owned; "" when optional
 * and absent). 0, the field's error (errbuf set) or STREAM_ENOMEM. */
int stream__client_dup_field(const msgpack_object *m, const char *key, bool required, char **out,
                             char *errbuf, size_t errbuf_len);

/* Parses a successful response inside a blocking call (root borrowed). Returns
 * 0 or an error with errbuf set; a response's `err` never reaches it. */
typedef int (*stream__parse_fn)(const msgpack_object *root, void *arg, char *errbuf,
                                size_t errbuf_len);

/* Sends the request begun last and waits for its response (up to timeout_ms;
 * -1: request_timeout_ms), then runs parse on it. Returns 0, the response's
 * err (errbuf gets its msg), a transport error, STREAM_ETIMEDOUT (the request
 * is abandoned), or parse's error. */
int stream__client_call(stream_client *c, int timeout_ms, stream__parse_fn parse, void *arg,
                        char *errbuf, size_t errbuf_len);
/* The same on the connection to node (stream__req_send_node's routing). */
int stream__client_call_node(stream_client *c, int32_t node, int timeout_ms, stream__parse_fn parse,
                             void *arg, char *errbuf, size_t errbuf_len);

/* The broker's max_message_bytes from hello (its default largest batch), 0
 * while unknown. */
size_t stream__client_max_message_bytes(const stream_client *c);

/* True (once) when a stream_client_poll since the last call was interrupted
 * by a signal, so loops around it can return to their caller. */
bool stream__client_take_interrupted(stream_client *c);

/* Connection rounds that failed so far (every broker of the list tried and
 * none answered); *err and *msg (borrowed) get the last one's error and
 * "cannot connect to ..." line. The producer counts an attempt for each
 * batch waiting to be sent when this moves. */
unsigned stream__client_connect_failures(const stream_client *c, int *err, const char **msg);

/* Sends and writes what can be written now, without waiting or reading. */
void stream__client_kick(stream_client *c);

/* Like stream_client_partition_count, but a topic that does not exist is
 * created with the broker's default partition count when the broker has
 * auto.create.topics.enable (what a produce to it would do anyway), so the
 * producer knows the count before its first batch. */
int stream__client_partition_count_create(stream_client *c, const char *topic, int timeout_ms,
                                          char *errbuf, size_t errbuf_len);

/* ---- consumer groups: consumer.c <-> group_client.c ----------------------- */

/* A consumer's group membership (group_client.c); NULL for a standalone
 * consumer. The consumer owns it and frees it with stream__cgroup_free. */
typedef struct stream__cgroup stream__cgroup;

/* consumer.c, for the group code. Partitions are named by topic and
 * number; the calls do nothing for partitions the consumer does not know. */
stream_client *stream__consumer_client(const stream_consumer *co);
const stream_consumer_conf *stream__consumer_conf(const stream_consumer *co);
stream__cgroup *stream__consumer_group(const stream_consumer *co);
void stream__consumer_set_group(stream_consumer *co, stream__cgroup *g);
/* True when some partition is assigned. */
bool stream__consumer_assigned_any(const stream_consumer *co);
/* Starts (or restarts) a partition at `start` with `end` (-1: none): as
 * assign does, without any request. group_data (the group's own record of
 * the partition) comes back in stream__cgroup_processed. 0 or
 * STREAM_ENOMEM. */
int stream__consumer_start(stream_consumer *co, const char *topic, int32_t partition, int64_t start,
                           int64_t end, void *group_data);
/* Stops fetching and returning the partition's records (what was fetched
 * is dropped; the position stays what the caller has seen). */
void stream__consumer_halt(stream_consumer *co, const char *topic, int32_t partition);
/* True when the partition reached its end or is paused by an error. */
bool stream__consumer_finished(const stream_consumer *co, const char *topic, int32_t partition);
/* Queues an event for poll; topic NULL for one about the whole group. msg
 * copied (may be NULL). 0 or STREAM_ENOMEM. */
int stream__consumer_push(stream_consumer *co, stream_event_type type, const char *topic,
                          int32_t partition, int64_t offset, int err, const char *msg);

/* group_client.c, for consumer.c. */
/* At the start of a stream_consumer_poll: the record the previous call
 * returned (of the partition with this group_data) is processed, up to
 * `position` (auto_store). */
void stream__cgroup_processed(stream__cgroup *g, void *group_data, int64_t position);
/* Runs at the start of every stream_consumer_poll: moves revocations on. */
void stream__cgroup_before_poll(stream__cgroup *g);
/* True (once per revocation) when a revoked partition waits for the caller
 * to store its offsets: poll returns 0 so the caller gets to do it. */
bool stream__cgroup_wants_caller(stream__cgroup *g);
/* True when the assignment is final and nothing is on its way in or out
 * (or membership ended). */
bool stream__cgroup_settled(const stream__cgroup *g);
/* How long a fetch sent now may long-poll (at most max_wait_ms): until the
 * group's next heartbeat is due. Or "send no fetch now", because a fetch
 * would delay the group's answers: -1 while a join, heartbeat, leave or a
 * commit someone waits for is in flight, or a revocation is under way
 * (the answer runs the ticks again); -2 when the heartbeat is due (the
 * group's tick sends it next: look again at once). */
int stream__cgroup_fetch_wait(const stream__cgroup *g, int64_t now, int max_wait_ms);
/* Cancels the group's requests and frees it (no leave: see close). */
void stream__cgroup_free(stream__cgroup *g);

#endif /* STREAM_CLIENT_INTERNAL_H */
