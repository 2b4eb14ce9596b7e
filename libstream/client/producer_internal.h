/*
 * producer_internal.h - what the producer's files share: producer.c (the
 * idea of the whole, settings, topics, producer ids, produce, reports),
 * producer_batch.c (the batch pool and the lists a batch lives on: open,
 * send, ready, pending; close and done) and producer_send.c (the tick:
 * produce requests, their responses, retries and expiry). Not installed;
 * prefix stream__.
 */
#ifndef STREAM_PRODUCER_INTERNAL_H
#define STREAM_PRODUCER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client_internal.h"
#include "stream/partition.h"

/* Builders kept for reuse and the most buffer bytes one may keep (a few
 * partitions' batches in flight at the default batch_bytes; more when
 * batch_bytes is larger, see builder_recycle); batch structs kept and the
 * most records their arrays may hold. */
#define POOL_BUILDERS      16
#define POOL_BUILDER_BYTES (1u << 20)
#define POOL_BATCHES       64
#define POOL_RECORDS       65536

typedef struct stream__ptopic stream__ptopic;
typedef struct stream__ppart stream__ppart;

typedef struct stream__pbatch {
    struct stream__pbatch *next;                  /* ready list, done list, pool */
    struct stream__pbatch *pend_prev, *pend_next; /* the partition's pending list */
    bool pending;                                 /* on that list (closed, not done) */
    uint64_t order;                               /* close order within the partition */
    unsigned rounds_counted;                      /* connect failures already counted */
    stream__ptopic *t;
    stream__ppart *pp; /* t->parts[partition] */
    int32_t partition;
    stream_batch_builder b; /* records; finished in place when closed */
    const uint8_t *bytes;   /* the finished batch (owned by b), NULL while open */
    size_t len;
    int32_t count;       /* records */
    void **opaques;      /* per record, for the reports */
    int64_t *timestamps; /* per record */
    size_t rec_cap;
    size_t mem;          /* bytes counted against buffer_bytes */
    int64_t created_ms;  /* monotonic time of the first record */
    int64_t retry_at_ms; /* not sent again before this */
    int attempts;        /* sends so far */
    int err;             /* outcome once done */
    int64_t base_offset; /* outcome: offset of the first record, -1 */
    char *msg;           /* outcome detail when err != 0 */
    stream_delivery_timing timing; /* conf.timing: its last send's */
} stream__pbatch;

struct stream__ppart {
    stream__ptopic *t;                           /* the topic it belongs to */
    int32_t id;                                  /* its partition number */
    stream__pbatch *open;                        /* accumulating, or NULL */
    stream__ppart *open_prev, *open_next;        /* the producer's open list (open != NULL) */
    stream__ppart *send_prev, *send_next;        /* the producer's send list (ready_head != NULL) */
    stream__pbatch *ready_head, *ready_tail;     /* closed, waiting to be sent, in close order */
    stream__pbatch *pending_head, *pending_tail; /* closed and not done, in close order */
    int in_flight;                               /* produce requests carrying a batch of it */
    int32_t node;        /* where those requests went (while in_flight > 0): the next
                            batch waits for them when the leader moved, to keep order */
    int32_t leader;      /* its route as of leader_gen (see producer_send.c) */
    uint64_t leader_gen; /* the client's metadata generation + 1 it was looked up
                            in; 0: never */
    uint64_t next_order; /* order of the next batch closed */
    /* idempotence */
    bool stamping;       /* producer_id/epoch/next_seq are set */
    bool restart;        /* restart the sequence (new epoch) once nothing is in flight */
    int16_t epoch;       /* epoch its batches carry */
    int32_t next_seq;    /* sequence of the next record closed into a batch */
    int64_t producer_id; /* producer id its batches carry */
};

struct stream__ptopic {
    char *name;
    uint32_t hash; /* of name, for the producer's topic index */
    size_t idx;    /* position in the producer's topics (request order) */
    int32_t partition_count;
    stream__ppart **parts; /* partition_count, each allocated once: lists point at them */
    stream_sticky sticky;
};

/* Produce requests in flight to one broker node (max_reqs each). */
typedef struct stream__pnode {
    int32_t node; /* a node id, or STREAM__NODE_BOOTSTRAP */
    int reqs;     /* requests in flight to it */
} stream__pnode;

/* One produce request in flight. */
typedef struct stream__preq {
    struct stream__preq *next, *prev;
    stream_producer *p;
    int64_t id;   /* the client's request id */
    int32_t node; /* the node it was sent to */
    size_t n;
    stream__pbatch *batches[]; /* one per partition */
} stream__preq;

struct stream_producer {
    stream_client *c;
    stream_producer_conf conf;
    stream__ptopic **topics;
    size_t ntopics, topics_cap;
    stream__ptopic **index;               /* open addressing by name hash; index_cap slots */
    size_t index_cap;                     /* a power of two > 2 * ntopics, or 0 */
    stream__ptopic *last;                 /* the topic of the last produce (fast path) */
    size_t mem;                           /* bytes held (see the top) */
    size_t outstanding;                   /* records produced and not reported */
    size_t open_batches;                  /* batches accumulating (for the tick) */
    size_t ready_batches;                 /* closed, not in flight, not done */
    stream__ppart *open_head, *open_tail; /* partitions with an open batch, oldest batch first */
    stream__ppart *send_head, *send_tail; /* partitions with ready batches */
    size_t send_parts;                    /* partitions on the send list */
    stream_batch_builder pool[POOL_BUILDERS]; /* reset builders to reuse */
    int npool;
    size_t pool_bytes;                        /* their buffers' capacity */
    stream__pbatch *free_batches; /* batch structs to reuse */
    int nfree_batches;
    stream__pbatch *done_head, *done_tail; /* waiting for their reports */
    stream__preq *reqs;                    /* produce requests in flight */
    int nreqs;
    int max_reqs;         /* cap on the requests in flight to one node */
    stream__pnode *nodes; /* requests in flight per node (few: the cluster's brokers) */
    size_t nnodes, nodes_cap;
    int64_t leader_wake_ms;  /* a partition waits for a leader: look again then */
    bool flushing;           /* close open batches without waiting for linger */
    bool full;               /* produce said EAGAIN: close open batches now, so the
                                buffer drains without waiting for their linger */
    bool idempotent;         /* conf.idempotence with acks != 0 */
    int64_t producer_id;     /* from init_producer_id; -1 before the first produce */
    int16_t producer_epoch;  /* the epoch that came with it */
    int64_t pid_request;     /* id of an init_producer_id in flight (epoch overflow), 0 */
    unsigned connect_rounds; /* the client's failed connect rounds seen */
    stream_producer_stats st;
};

/* ---- producer_batch.c: the batch pool and the lists ---- */

/* A new open batch for pp (created_ms now), from the pools when they have
 * one; NULL without memory. */
stream__pbatch *stream__producer_batch_new(stream_producer *p, stream__ppart *pp, int64_t now);
/* Frees a reported batch, or keeps it (its arrays) for the next batch_new. */
void stream__producer_batch_free(stream_producer *p, stream__pbatch *b);
/* Frees the pools (stream_producer_free). */
void stream__producer_pools_release(stream_producer *p);
/* pp got an open batch / lost it: the open list, oldest batch first. */
void stream__producer_open_link(stream_producer *p, stream__ppart *pp);
void stream__producer_open_unlink(stream_producer *p, stream__ppart *pp);
/* pp has ready batches / has none: the send list. */
void stream__producer_send_link(stream_producer *p, stream__ppart *pp);
void stream__producer_send_unlink(stream_producer *p, stream__ppart *pp);
/* Appends b to pp's ready list. */
void stream__producer_ready_push_tail(stream_producer *p, stream__ppart *pp, stream__pbatch *b);
/* Puts a batch back for a retry at its place in close order. */
void stream__producer_ready_insert(stream_producer *p, stream__ppart *pp, stream__pbatch *b);
/* Takes the head of pp's ready list, or NULL. */
stream__pbatch *stream__producer_ready_pop(stream_producer *p, stream__ppart *pp);
/* a + n on the sequence circle [0, 2^31), as the broker counts. */
int32_t stream__producer_seq_add(int32_t a, int64_t n);
/* The batch is over (err 0: stored at base_offset): its reports wait for
 * the next stream_producer_poll; its record bytes are released now. */
void stream__producer_batch_done(stream_producer *p, stream__pbatch *b, int err,
                                 int64_t base_offset, const char *msg);
/* Finishes the open batch of pp and queues it for sending. */
void stream__producer_batch_close(stream_producer *p, stream__ppart *pp);

/* ---- producer_send.c: the tick ---- */

/* The client's tick for this producer: closes lingering batches, sends
 * what may go, expires what is too old. Returns the next deadline. */
int64_t stream__producer_tick(void *arg, int64_t now);
/* Takes q off the producer's list of requests in flight. */
void stream__producer_preq_unlink(stream_producer *p, stream__preq *q);

/* ---- producer.c ---- */

/* Restarts pp's sequence under a new epoch (see producer.c's top); false
 * while it has to wait. */
bool stream__producer_restart_sequence(stream_producer *p, stream__ppart *pp);

#endif /* STREAM_PRODUCER_INTERNAL_H */
