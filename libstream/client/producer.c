/*
 * producer.c - per-partition batching, produce requests, retries and
 * delivery reports.
 *
 * A record's life:
 *
 *   produce()  -> appended to its partition's open batch (a batch builder)
 *   close      -> the batch is finished (compressed) when it is full, or
 *                 when linger_ms has passed (or on flush) and its partition
 *                 could send it now, and queued on its partition's ready
 *                 list
 *   send       -> the tick gathers the head ready batch of every partition
 *                 that may have another request in flight into one produce
 *                 request (capped at max_request_bytes)
 *   response   -> per partition: success -> done (offsets known); retriable
 *                 error -> back into its partition's ready list, in close
 *                 order, after a backoff; other errors or out of
 *                 retries/time -> done with the error
 *   report     -> done batches wait on a list until stream_producer_poll
 *                 runs their records' delivery reports, so reports never run
 *                 inside produce() or another object's poll
 *
 * Accumulation (as Kafka's accumulator does): a batch whose linger is over
 * stays open, taking records up to batch_bytes, while its partition could
 * not send it anyway (max_in_flight_per_partition requests out, an older
 * batch ready, or max_reqs requests out). A response frees the way (the
 * tick runs after each), and the next request carries all that piled up
 * instead of one small batch per record queueing behind the ones in flight.
 * With linger_ms 0 and a quick broker each record still leaves at once;
 * behind a slow acks=all (a group commit) batches grow with the wait.
 *
 * Bookkeeping follows the partitions in use, not those known: partitions
 * with an open batch are on a list in the order the batches opened (so
 * linger deadlines come in order), those with ready batches on another, and
 * the tick walks only those. Done batches and builders go to small pools:
 * a steady stream allocates nothing per batch, let alone per record.
 *
 * Memory: buffer_bytes bounds the record bytes held from produce() until the
 * batch completes (reported or not); produce() says EAGAIN above it. The
 * pools keep at most POOL_BUILDERS builders of at most POOL_BUILDER_BYTES
 * each on top.
 *
 * Idempotence (Kafka's idempotent producer; the rules the broker applies are
 * in producer_state.h). Each partition has a producer id, an epoch and the
 * sequence of its next record; a batch is stamped with them when it closes
 * (before finish: the CRC covers them), and a resend is the same bytes. A
 * partition keeps every closed batch not yet done on its `pending` list in
 * close order; the ready list is kept in that order too, and only its head
 * is ever sent, so batches leave in sequence. The broker refuses a batch
 * that does not follow the last one it stored (EOUTOFORDERSEQ), e.g. one
 * sent behind a batch that failed: such a batch was not written, so it goes
 * back in order without counting an attempt. If the refused batch is the
 * oldest pending one, no resend of the current sequence can ever fit (its
 * predecessor failed for good, or the broker lost it): the partition
 * restarts its sequence under a new epoch (a local bump, as Kafka's KIP-360
 * does for idempotent producers) once none of its requests is in flight,
 * restamping its pending batches from sequence 0 in order. An epoch past
 * INT16_MAX takes a new producer id instead.
 *
 * Wire format (share/doc/protocol.md, "produce"):
 *   request  {acks, timeout_ms, topics: [{name, partitions: [{partition,
 *            records: bin}]}]}
 *   response {topics: [{name, partitions: [{partition, err, msg?,
 *            base_offset}]}]}
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_internal.h"
#include "stream/error.h"
#include "stream/partition.h"

/* Batches a partition may have in flight with idempotence: the broker
 * recognises a resend among a producer's last 5 batches only. */
#define IDEMPOTENT_MAX_IN_FLIGHT 5

/* Bytes counted per record on top of key, value and headers (varints,
 * report bookkeeping). */
#define RECORD_OVERHEAD 32

/* Builders kept for reuse and the most buffer bytes one may keep (a few
 * partitions' batches in flight at the default batch_bytes); batch structs
 * kept and the most records their arrays may hold. */
#define POOL_BUILDERS      16
#define POOL_BUILDER_BYTES (1u << 20)
#define POOL_BATCHES       64
#define POOL_RECORDS       65536

typedef struct ptopic ptopic;
typedef struct ppart ppart;

typedef struct pbatch {
    struct pbatch *next;                  /* ready list, done list, pool */
    struct pbatch *pend_prev, *pend_next; /* the partition's pending list */
    bool pending;                         /* on that list (closed, not done) */
    uint64_t order;                       /* close order within the partition */
    unsigned rounds_counted;              /* connect failures already counted */
    ptopic *t;
    ppart *pp; /* t->parts[partition] */
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
} pbatch;

struct ppart {
    ptopic *t;                           /* the topic it belongs to */
    int32_t id;                          /* its partition number */
    pbatch *open;                        /* accumulating, or NULL */
    ppart *open_prev, *open_next;        /* the producer's open list (open != NULL) */
    ppart *send_prev, *send_next;        /* the producer's send list (ready_head != NULL) */
    pbatch *ready_head, *ready_tail;     /* closed, waiting to be sent, in close order */
    pbatch *pending_head, *pending_tail; /* closed and not done, in close order */
    int in_flight;                       /* produce requests carrying a batch of it */
    uint64_t next_order;                 /* order of the next batch closed */
    /* idempotence */
    bool stamping;       /* producer_id/epoch/next_seq are set */
    bool restart;        /* restart the sequence (new epoch) once nothing is in flight */
    int16_t epoch;       /* epoch its batches carry */
    int32_t next_seq;    /* sequence of the next record closed into a batch */
    int64_t producer_id; /* producer id its batches carry */
};

struct ptopic {
    char *name;
    uint32_t hash; /* of name, for the producer's topic index */
    size_t idx;    /* position in the producer's topics (request order) */
    int32_t partition_count;
    ppart **parts; /* partition_count, each allocated once: lists point at them */
    stream_sticky sticky;
};

/* One produce request in flight. */
typedef struct preq {
    struct preq *next, *prev;
    stream_producer *p;
    int64_t id; /* the client's request id */
    size_t n;
    pbatch *batches[]; /* one per partition */
} preq;

struct stream_producer {
    stream_client *c;
    stream_producer_conf conf;
    ptopic **topics;
    size_t ntopics, topics_cap;
    ptopic **index;               /* open addressing by name hash; index_cap slots */
    size_t index_cap;             /* a power of two > 2 * ntopics, or 0 */
    ptopic *last;                 /* the topic of the last produce (fast path) */
    size_t mem;                   /* bytes held (see the top) */
    size_t outstanding;           /* records produced and not reported */
    size_t open_batches;          /* batches accumulating (for the tick) */
    size_t ready_batches;         /* closed, not in flight, not done */
    ppart *open_head, *open_tail; /* partitions with an open batch, oldest batch first */
    ppart *send_head, *send_tail; /* partitions with ready batches */
    size_t send_parts;            /* partitions on the send list */
    stream_batch_builder pool[POOL_BUILDERS]; /* reset builders to reuse */
    int npool;
    pbatch *free_batches; /* batch structs to reuse */
    int nfree_batches;
    pbatch *done_head, *done_tail; /* waiting for their reports */
    preq *reqs;                    /* produce requests in flight */
    int nreqs;
    int max_reqs;            /* cap on nreqs */
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

/* ---- configuration ------------------------------------------------------- */

void stream_producer_conf_init(stream_producer_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->acks = STREAM_ACKS_ALL;
    conf->linger_ms = 5;
    conf->batch_bytes = 256 * 1024;
    conf->buffer_bytes = 64u << 20;
    conf->max_request_bytes = 4u << 20;
    conf->codec = STREAM_CODEC_NONE;
    conf->codec_level = 0;
    conf->retries = 30;
    conf->retry_backoff_ms = 100;
    conf->retry_backoff_max_ms = 1000;
    conf->delivery_timeout_ms = 120000;
    conf->max_in_flight_per_partition = 5;
    conf->idempotence = true;
}

static int conf_check(const stream_producer_conf *f, char *errbuf, size_t errbuf_len)
{
#define RANGE(field, lo, hi)                                                                       \
    if ((long long)f->field < (long long)(lo) || (long long)f->field > (long long)(hi)) {          \
        stream__errf(errbuf, errbuf_len, "producer setting %s must be in [%lld, %lld], got %lld",  \
                     #field, (long long)(lo), (long long)(hi), (long long)f->field);               \
        return STREAM_EINVAL;                                                                      \
    }
    if (f->acks != 0 && f->acks != 1 && f->acks != STREAM_ACKS_ALL) {
        stream__errf(errbuf, errbuf_len, "producer setting acks must be 0, 1 or -1 (all), got %d",
                     f->acks);
        return STREAM_EINVAL;
    }
    RANGE(linger_ms, 0, 60000);
    RANGE(batch_bytes, 1, 1u << 30);
    RANGE(max_request_bytes, f->batch_bytes, 1u << 30);
    RANGE(buffer_bytes, f->batch_bytes, (size_t)1 << 40);
    RANGE(retries, 0, INT32_MAX);
    RANGE(retry_backoff_ms, 0, 3600000);
    RANGE(retry_backoff_max_ms, f->retry_backoff_ms, 3600000);
    RANGE(delivery_timeout_ms, 1, INT32_MAX);
    RANGE(max_in_flight_per_partition, 1, 1024);
#undef RANGE
    if (f->idempotence && f->acks != 0 &&
        f->max_in_flight_per_partition > IDEMPOTENT_MAX_IN_FLIGHT) {
        stream__errf(errbuf, errbuf_len,
                     "producer setting max_in_flight_per_partition must be at most %d with "
                     "idempotence (the broker remembers a producer's last %d batches), got %d",
                     IDEMPOTENT_MAX_IN_FLIGHT, IDEMPOTENT_MAX_IN_FLIGHT,
                     f->max_in_flight_per_partition);
        return STREAM_EINVAL;
    }
    stream_batch_builder probe;
    stream_batch_builder_init(&probe);
    int rc = stream_batch_builder_set_codec(&probe, f->codec, f->codec_level);
    stream_batch_builder_release(&probe);
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len,
                     "producer setting codec/codec_level: %s level %d is not "
                     "supported",
                     stream_codec_name(f->codec), f->codec_level);
        return STREAM_EINVAL;
    }
    return 0;
}

static int64_t producer_tick(void *arg, int64_t now);

int stream_producer_new(stream_client *c, const stream_producer_conf *conf, stream_producer **out,
                        char *errbuf, size_t errbuf_len)
{
    stream_producer_conf dflt;
    *out = NULL;
    if (!conf) {
        stream_producer_conf_init(&dflt);
        conf = &dflt;
    }
    int rc = conf_check(conf, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_producer *p = calloc(1, sizeof *p);
    if (!p)
        return STREAM_ENOMEM;
    p->c = c;
    p->conf = *conf;
    p->max_reqs = 16;
    p->idempotent = conf->idempotence && conf->acks != 0;
    p->producer_id = -1;
    int err;
    const char *msg;
    p->connect_rounds = stream__client_connect_failures(c, &err, &msg);
    if (stream__client_add_tick(c, producer_tick, p) < 0) {
        free(p);
        return STREAM_ENOMEM;
    }
    *out = p;
    return 0;
}

/* ---- batches ------------------------------------------------------------- */

/* Gives the batch's builder back to the pool (or frees it): its bytes are
 * no longer needed once the batch is done. */
static void builder_recycle(stream_producer *p, stream_batch_builder *bb)
{
    if (p->npool < POOL_BUILDERS && bb->buf.cap + bb->zbuf.cap <= POOL_BUILDER_BYTES) {
        stream_batch_builder_reset(bb);
        p->pool[p->npool++] = *bb; /* the pool owns its buffers now */
        stream_batch_builder_init(bb);
    } else {
        stream_batch_builder_release(bb);
    }
}

/* Frees a reported batch, or keeps it (its arrays) for the next batch_new. */
static void batch_free(stream_producer *p, pbatch *b)
{
    if (!b)
        return;
    stream_batch_builder_release(&b->b);
    free(b->msg);
    b->msg = NULL;
    if (p->nfree_batches < POOL_BATCHES && b->rec_cap <= POOL_RECORDS) {
        b->next = p->free_batches;
        p->free_batches = b;
        p->nfree_batches++;
        return;
    }
    free(b->opaques);
    free(b->timestamps);
    free(b);
}

/* A new open batch for pp, from the pools when they have one. */
static pbatch *batch_new(stream_producer *p, ppart *pp, int64_t now)
{
    pbatch *b = p->free_batches;
    if (b) {
        p->free_batches = b->next;
        p->nfree_batches--;
        void **opaques = b->opaques;
        int64_t *timestamps = b->timestamps;
        size_t rec_cap = b->rec_cap;
        memset(b, 0, sizeof *b);
        b->opaques = opaques;
        b->timestamps = timestamps;
        b->rec_cap = rec_cap;
    } else {
        b = calloc(1, sizeof *b);
        if (!b)
            return NULL;
    }
    b->t = pp->t;
    b->pp = pp;
    b->partition = pp->id;
    b->created_ms = now;
    b->base_offset = -1;
    if (p->npool > 0) {
        b->b = p->pool[--p->npool]; /* reset when it went in; the codec is ours */
    } else {
        stream_batch_builder_init(&b->b);
        stream_batch_builder_set_codec(&b->b, p->conf.codec, p->conf.codec_level);
    }
    return b;
}

/* ---- the open and send lists --------------------------------------------- */

/* pp got an open batch: it goes last, its batch being the newest. */
static void open_link(stream_producer *p, ppart *pp)
{
    pp->open_next = NULL;
    pp->open_prev = p->open_tail;
    if (p->open_tail)
        p->open_tail->open_next = pp;
    else
        p->open_head = pp;
    p->open_tail = pp;
    p->open_batches++;
}

static void open_unlink(stream_producer *p, ppart *pp)
{
    if (pp->open_prev)
        pp->open_prev->open_next = pp->open_next;
    else
        p->open_head = pp->open_next;
    if (pp->open_next)
        pp->open_next->open_prev = pp->open_prev;
    else
        p->open_tail = pp->open_prev;
    pp->open_prev = pp->open_next = NULL;
    p->open_batches--;
}

/* pp has ready batches: on the send list (at the end when not there yet). */
static void send_link(stream_producer *p, ppart *pp)
{
    if (pp->send_prev || p->send_head == pp)
        return;
    pp->send_next = NULL;
    pp->send_prev = p->send_tail;
    if (p->send_tail)
        p->send_tail->send_next = pp;
    else
        p->send_head = pp;
    p->send_tail = pp;
    p->send_parts++;
}

static void send_unlink(stream_producer *p, ppart *pp)
{
    if (!pp->send_prev && p->send_head != pp)
        return;
    if (pp->send_prev)
        pp->send_prev->send_next = pp->send_next;
    else
        p->send_head = pp->send_next;
    if (pp->send_next)
        pp->send_next->send_prev = pp->send_prev;
    else
        p->send_tail = pp->send_prev;
    pp->send_prev = pp->send_next = NULL;
    p->send_parts--;
}

/* ---- ready lists ---------------------------------------------------------- */

static void ready_push_tail(stream_producer *p, ppart *pp, pbatch *b)
{
    b->next = NULL;
    if (pp->ready_tail)
        pp->ready_tail->next = b;
    else
        pp->ready_head = b;
    pp->ready_tail = b;
    p->ready_batches++;
    send_link(p, pp);
}

/* Puts a batch coming back for a retry into the ready list at its place in
 * close order, so a partition's batches go out again in the order they
 * closed whatever order their failures are reported in. */
static void ready_insert(stream_producer *p, ppart *pp, pbatch *b)
{
    pbatch **at = &pp->ready_head;
    while (*at && (*at)->order < b->order)
        at = &(*at)->next;
    b->next = *at;
    *at = b;
    if (!b->next)
        pp->ready_tail = b;
    p->ready_batches++;
    send_link(p, pp);
}

static void pending_push(ppart *pp, pbatch *b)
{
    b->pend_prev = pp->pending_tail;
    b->pend_next = NULL;
    if (pp->pending_tail)
        pp->pending_tail->pend_next = b;
    else
        pp->pending_head = b;
    pp->pending_tail = b;
    b->pending = true;
}

static void pending_remove(ppart *pp, pbatch *b)
{
    if (!b->pending)
        return;
    if (b->pend_prev)
        b->pend_prev->pend_next = b->pend_next;
    else
        pp->pending_head = b->pend_next;
    if (b->pend_next)
        b->pend_next->pend_prev = b->pend_prev;
    else
        pp->pending_tail = b->pend_prev;
    b->pend_prev = b->pend_next = NULL;
    b->pending = false;
}

/* a + n on the sequence circle [0, 2^31), as the broker counts. */
static int32_t seq_add(int32_t a, int64_t n)
{
    return (int32_t)(((int64_t)a + n) % ((int64_t)INT32_MAX + 1));
}

static pbatch *ready_pop(stream_producer *p, ppart *pp)
{
    pbatch *b = pp->ready_head;
    if (b) {
        pp->ready_head = b->next;
        if (!pp->ready_head) {
            pp->ready_tail = NULL;
            send_unlink(p, pp);
        }
        b->next = NULL;
        p->ready_batches--;
    }
    return b;
}

/* The batch is over: its reports wait for the next stream_producer_poll. Its
 * record bytes are released now (the builder back to the pool) so produce()
 * may go on. */
static void batch_done(stream_producer *p, pbatch *b, int err, int64_t base_offset, const char *msg)
{
    pending_remove(b->pp, b);
    b->err = err;
    b->base_offset = err ? -1 : base_offset;
    if (err) {
        free(b->msg);
        b->msg = strdup(msg && msg[0] ? msg : stream_strerror(err));
    }
    builder_recycle(p, &b->b);
    b->bytes = NULL;
    p->mem -= b->mem;
    b->mem = 0;
    b->next = NULL;
    if (p->done_tail)
        p->done_tail->next = b;
    else
        p->done_head = b;
    p->done_tail = b;
}

/* Finishes the open batch of pp and queues it for sending. */
static void batch_close(stream_producer *p, ppart *pp)
{
    ptopic *t = pp->t;
    int32_t partition = pp->id;
    pbatch *b = pp->open;
    if (!b)
        return;
    pp->open = NULL;
    open_unlink(p, pp);
    int32_t seq = 0;
    if (p->idempotent) {
        if (!pp->stamping) {
            pp->producer_id = p->producer_id;
            pp->epoch = p->producer_epoch;
            pp->next_seq = 0;
            pp->stamping = true;
        }
        seq = pp->next_seq;
        stream_batch_builder_set_producer(&b->b, pp->producer_id, pp->epoch, seq);
    }
    int rc = stream_batch_builder_finish(&b->b, &b->bytes, &b->len);
    if (rc < 0) {
        char msg[200];
        stream__errf(msg, sizeof msg, "topic '%s' partition %d: cannot build batch: %s", t->name,
                     partition, stream_strerror(rc));
        batch_done(p, b, rc, -1, msg); /* its sequence was not used */
        return;
    }
    if (p->idempotent)
        pp->next_seq = seq_add(seq, b->count);
    b->order = pp->next_order++;
    pending_push(pp, b);
    ready_push_tail(p, pp, b);
    /* Sticky partitioning: a completed batch moves unkeyed records on. */
    if (t->sticky.current == partition && t->partition_count > 1)
        stream_sticky_next(&t->sticky, t->partition_count);
}

/* ---- topics -------------------------------------------------------------- */

/* FNV-1a: topic names are short, and one pass beats comparing with every
 * topic when records go to many. */
static uint32_t name_hash(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

static ptopic *topic_find(stream_producer *p, const char *name)
{
    if (p->last && strcmp(p->last->name, name) == 0)
        return p->last;
    if (p->index_cap == 0)
        return NULL;
    uint32_t h = name_hash(name);
    for (size_t i = h & (p->index_cap - 1);; i = (i + 1) & (p->index_cap - 1)) {
        ptopic *t = p->index[i];
        if (!t)
            return NULL;
        if (t->hash == h && strcmp(t->name, name) == 0)
            return p->last = t;
    }
}

static void index_put(ptopic **index, size_t cap, ptopic *t)
{
    size_t j = t->hash & (cap - 1);
    while (index[j])
        j = (j + 1) & (cap - 1);
    index[j] = t;
}

/* Puts t into the index, doubling it first when it would be half full. */
static int index_add(stream_producer *p, ptopic *t)
{
    if (2 * (p->ntopics + 1) > p->index_cap) {
        size_t cap = p->index_cap ? p->index_cap * 2 : 16;
        ptopic **ni = calloc(cap, sizeof *ni);
        if (!ni)
            return STREAM_ENOMEM;
        for (size_t i = 0; i < p->ntopics; i++)
            index_put(ni, cap, p->topics[i]);
        free(p->index);
        p->index = ni;
        p->index_cap = cap;
    }
    index_put(p->index, p->index_cap, t);
    return 0;
}

/* Grows t to `count` partitions (a topic only grows). Each partition is
 * allocated on its own so that the lists' pointers to it stay valid. */
static int topic_grow(ptopic *t, int32_t count)
{
    if (count <= t->partition_count)
        return 0;
    ppart **np = realloc(t->parts, (size_t)count * sizeof *np);
    if (!np)
        return STREAM_ENOMEM;
    t->parts = np;
    for (int32_t i = t->partition_count; i < count; i++) {
        ppart *pp = calloc(1, sizeof *pp);
        if (!pp)
            return STREAM_ENOMEM; /* the ones made so far count */
        pp->t = t;
        pp->id = i;
        np[i] = pp;
        t->partition_count = i + 1;
    }
    return 0;
}

/* Grows t when the client's metadata knows more partitions than t has.
 * Only when a record needs a partition t does not have, or a batch opens:
 * not a metadata look-up per record. */
static int topic_refresh(stream_producer *p, ptopic *t)
{
    const stream__topic_md *md = stream__client_topic(p->c, t->name);
    if (md && md->err == 0 && md->partition_count > t->partition_count)
        return topic_grow(t, md->partition_count);
    return 0;
}

static void topic_free(ptopic *t)
{
    for (int32_t j = 0; j < t->partition_count; j++)
        free(t->parts[j]);
    free(t->parts);
    free(t->name);
    free(t);
}

static int topic_get(stream_producer *p, const char *name, ptopic **out, char *errbuf,
                     size_t errbuf_len)
{
    ptopic *t = topic_find(p, name);
    if (t) {
        *out = t;
        return 0;
    }
    int count = stream_topic_name_check(name, strlen(name), errbuf, errbuf_len);
    if (count < 0)
        return count;
    count = stream__client_partition_count_create(p->c, name, -1, errbuf, errbuf_len);
    if (count < 0)
        return count;
    if (p->ntopics == p->topics_cap) {
        size_t cap = p->topics_cap ? p->topics_cap * 2 : 4;
        ptopic **nt = realloc(p->topics, cap * sizeof *nt);
        if (!nt)
            return STREAM_ENOMEM;
        p->topics = nt;
        p->topics_cap = cap;
    }
    t = calloc(1, sizeof *t);
    if (!t)
        return STREAM_ENOMEM;
    t->name = strdup(name);
    if (!t->name || topic_grow(t, count) < 0) {
        topic_free(t);
        return STREAM_ENOMEM;
    }
    t->hash = name_hash(name);
    t->idx = p->ntopics;
    if (index_add(p, t) < 0) {
        topic_free(t);
        return STREAM_ENOMEM;
    }
    stream_sticky_init(&t->sticky, (uint64_t)stream__client_wall_ms() * 2654435761u ^
                                       (uint64_t)getpid() ^ (uint64_t)(uintptr_t)t);
    p->topics[p->ntopics++] = t;
    *out = p->last = t;
    return 0;
}

/* ---- producer ids --------------------------------------------------------- */

typedef struct pid_answer {
    int64_t id;
    int64_t epoch;
} pid_answer;

static int parse_pid(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    pid_answer *a = arg;
    if (stream_field_int(root, "producer_id", 0, INT64_MAX, &a->id, errbuf, errbuf_len) < 0 ||
        stream_field_int(root, "producer_epoch", 0, INT16_MAX, &a->epoch, errbuf, errbuf_len) < 0)
        return STREAM_EPROTO;
    return 0;
}

/* The first produce of an idempotent producer waits for its id. */
static int get_producer_id(stream_producer *p, char *errbuf, size_t errbuf_len)
{
    (void)stream__req_begin(p->c, STREAM_OP_INIT_PRODUCER_ID, 0);
    pid_answer a;
    char why[400] = "";
    int rc = stream__client_call(p->c, -1, parse_pid, &a, why, sizeof why);
    if (rc == STREAM_EUNKNOWNOP) {
        stream__errf(errbuf, errbuf_len,
                     "broker %s gives no producer ids (%s): it is too old for idempotent "
                     "producers; turn idempotence off",
                     stream_client_broker(p->c), why);
        return rc;
    }
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len, "cannot get a producer id from %s: %s",
                     stream_client_broker(p->c), why[0] ? why : stream_strerror(rc));
        return rc;
    }
    p->producer_id = a.id;
    p->producer_epoch = (int16_t)a.epoch;
    return 0;
}

static void pid_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream_producer *p = arg;
    p->pid_request = 0;
    pid_answer a;
    /* On failure the next tick asks again. */
    if (r->err == 0 && r->root && parse_pid(r->root, &a, NULL, 0) == 0) {
        p->producer_id = a.id;
        p->producer_epoch = (int16_t)a.epoch;
    }
}

/* Asks for a new producer id in the background (a partition's epoch ran out). */
static void request_producer_id(stream_producer *p)
{
    if (p->pid_request != 0)
        return;
    (void)stream__req_begin(p->c, STREAM_OP_INIT_PRODUCER_ID, 0);
    int64_t id = stream__req_send(p->c, pid_cb, p, 0, 0);
    if (id > 0)
        p->pid_request = id;
}

/* Restarts pp's sequence under a new epoch (or a new producer id once the
 * epoch is used up), restamping its pending batches from sequence 0 in
 * order. Only when none of its requests is in flight: an answer still to
 * come could be for a batch of the old sequence. Returns false while it has
 * to wait. */
static bool restart_sequence(stream_producer *p, ppart *pp)
{
    if (pp->in_flight > 0)
        return false;
    if (pp->epoch == INT16_MAX) {
        if (p->producer_id == pp->producer_id) {
            request_producer_id(p);
            return false;
        }
        pp->producer_id = p->producer_id;
        pp->epoch = p->producer_epoch;
    } else {
        pp->epoch++;
    }
    pp->next_seq = 0;
    for (pbatch *b = pp->pending_head; b; b = b->pend_next) {
        stream_batch_builder_set_producer(&b->b, pp->producer_id, pp->epoch, pp->next_seq);
        pp->next_seq = seq_add(pp->next_seq, b->count);
    }
    pp->restart = false;
    return true;
}

/* ---- produce ------------------------------------------------------------- */

static size_t record_size(const stream_producer_record *r)
{
    size_t n = RECORD_OVERHEAD;
    if (r->key_len > 0)
        n += (size_t)r->key_len;
    if (r->value_len > 0)
        n += (size_t)r->value_len;
    for (size_t i = 0; i < r->header_count; i++) {
        n += 8;
        if (r->headers[i].name_len > 0)
            n += (size_t)r->headers[i].name_len;
        if (r->headers[i].value_len > 0)
            n += (size_t)r->headers[i].value_len;
    }
    return n;
}

static int record_check(const stream_producer_record *r, char *errbuf, size_t errbuf_len)
{
    if (!r->topic || !r->topic[0]) {
        stream__errf(errbuf, errbuf_len, "record has no topic");
        return STREAM_EINVAL;
    }
    if (r->key_len < -1 || r->value_len < -1 || (r->key_len > 0 && !r->key) ||
        (r->value_len > 0 && !r->value) || (r->header_count && !r->headers)) {
        stream__errf(errbuf, errbuf_len, "topic '%s': bad record lengths", r->topic);
        return STREAM_EINVAL;
    }
    for (size_t i = 0; i < r->header_count; i++) {
        const stream_header *h = &r->headers[i];
        if (h->name_len < 0 || h->value_len < -1 || (h->name_len > 0 && !h->name) ||
            (h->value_len > 0 && !h->value)) {
            stream__errf(errbuf, errbuf_len, "topic '%s': bad header %zu", r->topic, i);
            return STREAM_EINVAL;
        }
    }
    if (r->partition < STREAM_PARTITION_ANY) {
        stream__errf(errbuf, errbuf_len, "topic '%s': bad partition %d", r->topic,
                     (int)r->partition);
        return STREAM_EINVAL;
    }
    return 0;
}

static int grow_records(pbatch *b)
{
    if ((size_t)b->count < b->rec_cap)
        return 0;
    size_t cap = b->rec_cap ? b->rec_cap * 2 : 64;
    void **no = realloc(b->opaques, cap * sizeof *no);
    if (!no)
        return STREAM_ENOMEM;
    b->opaques = no;
    int64_t *nt = realloc(b->timestamps, cap * sizeof *nt);
    if (!nt)
        return STREAM_ENOMEM;
    b->timestamps = nt;
    b->rec_cap = cap;
    return 0;
}

static void kick(stream_producer *p);

int stream_producer_produce(stream_producer *p, const stream_producer_record *rec, char *errbuf,
                            size_t errbuf_len)
{
    int rc = record_check(rec, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    size_t size = record_size(rec);
    if (size > p->conf.max_request_bytes) {
        stream__errf(errbuf, errbuf_len,
                     "topic '%s': a record of %zu bytes is larger than max_request_bytes (%zu)",
                     rec->topic, size, p->conf.max_request_bytes);
        return STREAM_ETOOLARGE;
    }
    if (p->mem > 0 && p->mem + size > p->conf.buffer_bytes) {
        p->full = true;
        return STREAM_EAGAIN;
    }
    if (p->idempotent && p->producer_id < 0) {
        rc = get_producer_id(p, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }

    ptopic *t;
    rc = topic_get(p, rec->topic, &t, errbuf, errbuf_len);
    if (rc < 0)
        return rc;

    /* Normalise: a NULL pointer is null whatever the length. */
    const void *key = rec->key;
    int32_t key_len = key ? rec->key_len : -1;
    const void *value = rec->value;
    int32_t value_len = value ? rec->value_len : -1;
    if (key_len < 0)
        key = NULL;
    if (value_len < 0)
        value = NULL;

    int32_t part = rec->partition;
    if (part >= 0) {
        if (part >= t->partition_count && (rc = topic_refresh(p, t)) < 0)
            return rc;
        if (part >= t->partition_count) {
            stream__errf(errbuf, errbuf_len, "topic '%s' has %d partitions, no partition %d",
                         t->name, (int)t->partition_count, (int)part);
            return STREAM_ENOPART;
        }
    } else {
        part = stream_partition_choose(&t->sticky, key, key_len, t->partition_count);
        if (part < 0) {
            stream__errf(errbuf, errbuf_len, "topic '%s': cannot choose a partition", t->name);
            return part;
        }
    }

    ppart *pp = t->parts[part];
    /* A batch also stays under the broker's max.message.bytes (from hello),
     * which it would refuse with ETOOLARGE. */
    size_t limit = p->conf.batch_bytes;
    size_t broker_max = stream__client_max_message_bytes(p->c);
    if (broker_max > 0 && broker_max < limit)
        limit = broker_max;
    if (pp->open && pp->open->count > 0 && stream_batch_builder_size(&pp->open->b) + size > limit) {
        batch_close(p, pp);
        /* Closing may have moved the sticky partition; the record keeps the
         * partition it was given. */
    }
    if (!pp->open) {
        /* Now and then (not per record): has the topic grown? */
        if ((rc = topic_refresh(p, t)) < 0)
            return rc;
        pp->open = batch_new(p, pp, stream__client_mono_ms());
        if (!pp->open)
            return STREAM_ENOMEM;
        open_link(p, pp);
    }
    pbatch *b = pp->open;
    if (grow_records(b) < 0)
        return STREAM_ENOMEM;
    int64_t ts = rec->timestamp ? rec->timestamp : stream__client_wall_ms();
    rc = stream_batch_builder_append(&b->b, ts, key, key_len, value, value_len, rec->headers,
                                     rec->header_count);
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len, "topic '%s' partition %d: cannot add record: %s", t->name,
                     (int)part, stream_strerror(rc));
        return rc;
    }
    b->opaques[b->count] = rec->opaque;
    b->timestamps[b->count] = ts;
    b->count++;
    b->mem += size;
    p->mem += size;
    p->outstanding++;
    if (stream_batch_builder_size(&b->b) >= limit) {
        batch_close(p, pp);
        kick(p);
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------- */

static int64_t backoff_ms(const stream_producer *p, int attempts)
{
    int64_t b = p->conf.retry_backoff_ms;
    for (int i = 1; i < attempts && b < p->conf.retry_backoff_max_ms; i++)
        b *= 2;
    return b < p->conf.retry_backoff_max_ms ? b : p->conf.retry_backoff_max_ms;
}

static bool retriable(int err)
{
    return stream_err_retriable(err) || err == STREAM_ENOTOPIC || err == STREAM_ENOPART ||
           err == STREAM_EPROTO;
}

static void preq_unlink(stream_producer *p, preq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        p->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    p->nreqs--;
}

/* The broker refused an idempotent batch for its sequence: nothing of it
 * was written. */
static bool sequence_refused(int err)
{
    return err == STREAM_EOUTOFORDERSEQ || err == STREAM_EUNKNOWNPRODUCER ||
           err == STREAM_EPRODUCERFENCED;
}

/* Back into the ready list for another try at retry_at_ms. */
static void requeue(stream_producer *p, pbatch *b, int err, const char *msg, int64_t retry_at_ms)
{
    b->retry_at_ms = retry_at_ms;
    free(b->msg);
    b->msg = strdup(msg && msg[0] ? msg : stream_strerror(err));
    b->err = err;
    ready_insert(p, b->pp, b);
}

/* One batch failed with err: retry it or give up. `sent`: its request went
 * out (else a connection round failed while it waited to be sent). */
static void batch_failed(stream_producer *p, pbatch *b, int err, const char *msg, int64_t now,
                         bool sent)
{
    ppart *pp = b->pp;
    bool timed_out = now >= b->created_ms + p->conf.delivery_timeout_ms;
    int last_err;
    const char *last_msg;
    b->rounds_counted = stream__client_connect_failures(p->c, &last_err, &last_msg);
    bool seq = p->idempotent && sequence_refused(err);
    if (seq && !timed_out) {
        /* Not written, and not this batch's own failure: it waits for the
         * batch ahead of it. If there is none, the sequence it carries can
         * never fit again: restart it (see the top). */
        if (pp->pending_head == b)
            pp->restart = true;
        b->attempts--; /* and not in st.retries: nothing failed of its own */
        requeue(p, b, err, msg, now);
        return;
    }
    if (retriable(err) && b->attempts <= p->conf.retries && !timed_out) {
        if (err == STREAM_ENOTLEADER || err == STREAM_ENOTOPIC || err == STREAM_ENOPART) {
            stream_client_invalidate_metadata(p->c, b->t->name);
            stream__client_refresh_async(p->c, b->t->name);
        }
        if (sent)
            p->st.retries++;
        requeue(p, b, err, msg, now + backoff_ms(p, b->attempts));
        return;
    }
    char full[600];
    if (timed_out && (retriable(err) || seq))
        stream__errf(full, sizeof full, "topic '%s' partition %d: not delivered within %d ms: %s",
                     b->t->name, (int)b->partition, p->conf.delivery_timeout_ms,
                     msg && msg[0] ? msg : stream_strerror(err));
    else if (retriable(err))
        stream__errf(full, sizeof full, "topic '%s' partition %d: failed after %d attempts: %s",
                     b->t->name, (int)b->partition, b->attempts,
                     msg && msg[0] ? msg : stream_strerror(err));
    else
        stream__errf(full, sizeof full, "topic '%s' partition %d: %s", b->t->name,
                     (int)b->partition, msg && msg[0] ? msg : stream_strerror(err));
    batch_done(p, b, err, -1, full);
}

/* Finds the result for (topic, partition) in a produce response. */
static const msgpack_object *find_result(const msgpack_object *topics, const char *topic,
                                         int32_t partition)
{
    if (!topics || topics->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *t = &topics->via.array.ptr[i];
        const char *name;
        size_t len;
        if (stream_field_str(t, "name", &name, &len, NULL, 0) < 0 ||
            !stream_str_eq(name, len, topic))
            continue;
        const msgpack_object *parts;
        if (stream_field_array(t, "partitions", &parts, NULL, 0) < 0)
            continue;
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *pm = &parts->via.array.ptr[j];
            int64_t pn;
            if (stream_field_int(pm, "partition", 0, INT32_MAX, &pn, NULL, 0) == 0 &&
                pn == partition)
                return pm;
        }
    }
    return NULL;
}

/* Walks a produce response in request order, as the broker answers, so a
 * response for a thousand partitions costs no thousand searches; anything
 * else falls back to find_result. */
typedef struct result_cursor {
    const msgpack_object *topics; /* the response's topics, or NULL */
    uint32_t ti, pj;              /* where the next result should be */
    const msgpack_object *parts;  /* topics[ti]'s partitions, NULL before looking */
} result_cursor;

static const msgpack_object *next_result(result_cursor *rc, const char *topic, int32_t partition)
{
    const msgpack_object *ts = rc->topics;
    if (!ts || ts->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    for (int step = 0; step < 2 && rc->ti < ts->via.array.size; step++) {
        const msgpack_object *t = &ts->via.array.ptr[rc->ti];
        const char *name;
        size_t len;
        if (stream_field_str(t, "name", &name, &len, NULL, 0) < 0 ||
            !stream_str_eq(name, len, topic)) {
            if (step == 0 && rc->parts) { /* this topic is over: try the next */
                rc->ti++;
                rc->pj = 0;
                rc->parts = NULL;
                continue;
            }
            break;
        }
        if (!rc->parts && stream_field_array(t, "partitions", &rc->parts, NULL, 0) < 0)
            break;
        if (rc->pj < rc->parts->via.array.size) {
            const msgpack_object *pm = &rc->parts->via.array.ptr[rc->pj];
            int64_t pn;
            if (stream_field_int(pm, "partition", 0, INT32_MAX, &pn, NULL, 0) == 0 &&
                pn == partition) {
                rc->pj++;
                return pm;
            }
        }
        break;
    }
    return find_result(ts, topic, partition);
}

static void produce_cb(stream_client *c, const stream__resp *r, void *arg)
{
    preq *q = arg;
    stream_producer *p = q->p;
    int64_t now = stream__client_mono_ms();
    preq_unlink(p, q);
    result_cursor cur = {0};
    if (r->root && r->err == 0)
        stream_field_array(r->root, "topics", &cur.topics, NULL, 0);
    for (size_t i = 0; i < q->n; i++) {
        pbatch *b = q->batches[i];
        b->pp->in_flight--;
        if (r->err != 0) {
            batch_failed(p, b, r->err, r->msg, now, true);
            continue;
        }
        if (p->conf.acks == 0) {
            batch_done(p, b, 0, -1, NULL);
            continue;
        }
        const msgpack_object *pm = next_result(&cur, b->t->name, b->partition);
        int64_t err = 0, base = -1;
        const char *text = NULL;
        size_t text_len = 0;
        if (!pm || stream_field_int_opt(pm, "err", 0, INT32_MAX, 0, &err, NULL, 0) < 0) {
            batch_failed(p, b, STREAM_EPROTO, "produce response without this partition", now, true);
            continue;
        }
        if (err == -STREAM_EDUPLICATESEQ && p->idempotent) {
            /* Stored by an earlier send, too long ago for its offset. */
            batch_done(p, b, 0, -1, NULL);
            continue;
        }
        if (err != 0) {
            char msg[512];
            stream_field_str_opt(pm, "msg", &text, &text_len, NULL, 0);
            stream__errf(msg, sizeof msg, "%.*s", (int)(text_len > 500 ? 500 : text_len),
                         text ? text : "");
            batch_failed(p, b, -(int)err, msg, now, true);
            continue;
        }
        if (stream_field_int(pm, "base_offset", 0, INT64_MAX, &base, NULL, 0) < 0) {
            batch_failed(p, b, STREAM_EPROTO, "produce response without base_offset", now, true);
            continue;
        }
        batch_done(p, b, 0, base, NULL);
    }
    free(q);
}

static int batch_cmp(const void *a, const void *b)
{
    const pbatch *x = *(pbatch *const *)a, *y = *(pbatch *const *)b;
    if (x->t != y->t)
        return x->t->idx < y->t->idx ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Sends one produce request with the head ready batch of each partition that
 * may take one. Returns true when a request went out. */
static bool send_one(stream_producer *p, int64_t now)
{
    size_t cap = p->send_parts;
    preq *q = NULL;
    size_t bytes = 0;
    for (ppart *pp = p->send_head, *next; pp; pp = next) {
        next = pp->send_next;
        pbatch *b = pp->ready_head;
        if (b->retry_at_ms > now || pp->in_flight >= p->conf.max_in_flight_per_partition)
            continue;
        if (pp->restart && !restart_sequence(p, pp))
            continue;
        if (bytes > 0 && bytes + b->len > p->conf.max_request_bytes)
            continue;
        if (!q) {
            q = calloc(1, sizeof *q + cap * sizeof q->batches[0]);
            if (!q)
                return false;
            q->p = p;
        }
        ready_pop(p, pp);
        pp->in_flight++;
        q->batches[q->n++] = b;
        bytes += b->len;
    }
    if (!q)
        return false;
    /* Partitions served go to the back, so full requests favour no one. */
    for (size_t i = 0; i < q->n; i++) {
        ppart *pp = q->batches[i]->pp;
        if (pp->ready_head && pp != p->send_tail) {
            send_unlink(p, pp);
            send_link(p, pp);
        }
    }

    /* Group the batches by topic for the request (and the response walk). */
    if (q->n > 1)
        qsort(q->batches, q->n, sizeof q->batches[0], batch_cmp);
    size_t ntopics = 0;
    for (size_t i = 0; i < q->n; i++)
        if (i == 0 || q->batches[i]->t != q->batches[i - 1]->t)
            ntopics++;
    msgpack_packer *pk = stream__req_begin(p->c, STREAM_OP_PRODUCE, 3);
    stream_pack_kv_int(pk, "acks", p->conf.acks);
    stream_pack_kv_int(pk, "timeout_ms", stream__client_request_timeout(p->c));
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, ntopics);
    for (size_t i = 0; i < q->n;) {
        ptopic *t = q->batches[i]->t;
        size_t j = i;
        while (j < q->n && q->batches[j]->t == t)
            j++;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", t->name);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, j - i);
        for (size_t k = i; k < j; k++) {
            msgpack_pack_map(pk, 2);
            stream_pack_kv_int(pk, "partition", q->batches[k]->partition);
            stream_pack_kv_bin(pk, "records", q->batches[k]->bytes, q->batches[k]->len);
        }
        i = j;
    }
    int flags = p->conf.acks == 0 ? STREAM__REQ_NO_RESPONSE : 0;
    /* The broker answers an acks=all produce by timeout_ms; give its answer
     * a second to arrive before the client gives up on it. */
    int64_t id = stream__req_send(p->c, produce_cb, q, 1000, flags);
    for (size_t i = 0; i < q->n; i++) {
        q->batches[i]->attempts++;
        p->st.batches_sent++;
        p->st.bytes_sent += q->batches[i]->len;
    }
    if (id < 0) {
        /* Could not even queue it (out of memory): fail like a transport
         * error so the batches are retried. */
        for (size_t i = 0; i < q->n; i++) {
            q->batches[i]->pp->in_flight--;
            batch_failed(p, q->batches[i], (int)id, "out of memory", now, true);
        }
        free(q);
        return false;
    }
    p->st.requests_sent++;
    q->id = id;
    q->next = p->reqs;
    if (p->reqs)
        p->reqs->prev = q;
    p->reqs = q;
    p->nreqs++;
    return true;
}

/* Fails ready batches whose delivery time is over. */
static void expire_ready(stream_producer *p, int64_t now)
{
    for (ppart *pp = p->send_head, *next; pp; pp = next) {
        next = pp->send_next;
        while (pp->ready_head && now >= pp->ready_head->created_ms + p->conf.delivery_timeout_ms) {
            pbatch *b = ready_pop(p, pp);
            char msg[600];
            stream__errf(msg, sizeof msg, "topic '%s' partition %d: not delivered within %d ms%s%s",
                         pp->t->name, (int)pp->id, p->conf.delivery_timeout_ms, b->msg ? ": " : "",
                         b->msg ? b->msg : "");
            batch_done(p, b, b->err ? b->err : STREAM_ETIMEDOUT, -1, msg);
        }
    }
}

/* Whether a batch of pp closed now could go out at once. If not, its open
 * batch keeps taking records (see the top): something in flight or ahead
 * of it will run the tick again when it moves. */
static bool could_send(const stream_producer *p, const ppart *pp)
{
    return !pp->ready_head && pp->in_flight < p->conf.max_in_flight_per_partition &&
           p->nreqs < p->max_reqs;
}

/* Closes open batches that lingered long enough and could be sent; returns
 * the next linger deadline. The open list is in the order the batches
 * opened, so the first one not yet due ends the walk; due ones that are
 * held back stay where they are. */
static int64_t close_lingering(stream_producer *p, int64_t now)
{
    bool all = p->flushing || p->full;
    for (ppart *pp = p->open_head, *next; pp; pp = next) {
        next = pp->open_next;
        int64_t due = pp->open->created_ms + p->conf.linger_ms;
        if (!all && now < due)
            return due;
        if (could_send(p, pp))
            batch_close(p, pp);
    }
    return INT64_MAX;
}

/* A connection round failed since the last tick: every batch waiting to be
 * sent counts an attempt (and fails when out of them), as the batches of
 * the requests that were waiting did; so while no broker answers, batches
 * fail within the reconnect backoffs, not a few per round. Batches whose
 * own request failed with this round are counted already. */
static void count_connect_failure(stream_producer *p, int64_t now)
{
    int err;
    const char *msg;
    unsigned rounds = stream__client_connect_failures(p->c, &err, &msg);
    if (rounds == p->connect_rounds)
        return;
    p->connect_rounds = rounds;
    if (p->ready_batches == 0)
        return;
    char why[600];
    snprintf(why, sizeof why, "%s", msg);
    /* Rare, so every partition: the send list changes under batch_failed. */
    for (size_t i = 0; i < p->ntopics; i++) {
        ptopic *t = p->topics[i];
        for (int32_t j = 0; j < t->partition_count; j++) {
            ppart *pp = t->parts[j];
            pbatch *list = pp->ready_head;
            if (!list)
                continue;
            pp->ready_head = pp->ready_tail = NULL;
            send_unlink(p, pp);
            while (list) {
                pbatch *b = list;
                list = b->next;
                p->ready_batches--;
                if (b->rounds_counted == rounds) {
                    ready_push_tail(p, pp, b);
                    continue;
                }
                b->attempts++;
                batch_failed(p, b, err, why, now, false);
            }
        }
    }
}

static int64_t producer_tick(void *arg, int64_t now)
{
    stream_producer *p = arg;
    int64_t next = close_lingering(p, now);
    p->full = false;
    count_connect_failure(p, now);
    if (p->ready_batches == 0)
        return next;
    expire_ready(p, now);
    while (p->nreqs < p->max_reqs && send_one(p, now))
        ;
    /* Batches closed while requests were out may go now. */
    if (p->open_batches > 0 && p->nreqs < p->max_reqs) {
        int64_t n = close_lingering(p, now);
        if (n < next)
            next = n;
        while (p->nreqs < p->max_reqs && send_one(p, now))
            ;
    }
    /* Wake for the earliest retry of a batch that is waiting for its turn. */
    for (ppart *pp = p->send_head; pp; pp = pp->send_next) {
        pbatch *b = pp->ready_head;
        int64_t due = b->retry_at_ms > now ? b->retry_at_ms : INT64_MAX;
        int64_t dl = b->created_ms + p->conf.delivery_timeout_ms;
        if (dl < due)
            due = dl;
        if (due < next)
            next = due;
    }
    return next;
}

/* Sends what is ready without waiting and without running reports (the
 * client's kick runs this producer's tick). */
static void kick(stream_producer *p)
{
    stream__client_kick(p->c);
}

/* ---- reports, poll, flush, free ------------------------------------------- */

static int fire_reports(stream_producer *p)
{
    int n = 0;
    while (p->done_head) {
        pbatch *b = p->done_head;
        p->done_head = b->next;
        if (!p->done_head)
            p->done_tail = NULL;
        for (int32_t i = 0; i < b->count; i++) {
            stream_delivery d = {
                .topic = b->t->name,
                .partition = b->partition,
                .offset = b->err == 0 && b->base_offset >= 0 ? b->base_offset + i : -1,
                .timestamp = b->timestamps[i],
                .err = b->err,
                .msg = b->err ? (b->msg ? b->msg : stream_strerror(b->err)) : "",
                .opaque = b->opaques[i],
            };
            if (b->err) {
                p->st.records_failed++;
                p->st.last_err = b->err;
            } else {
                p->st.records_delivered++;
            }
            p->outstanding--;
            if (p->conf.on_delivery)
                p->conf.on_delivery(p, &d, p->conf.opaque);
            n++;
        }
        batch_free(p, b);
    }
    return n;
}

int stream_producer_poll(stream_producer *p, int timeout_ms)
{
    int n = fire_reports(p);
    int rc = stream_client_poll(p->c, n > 0 ? 0 : timeout_ms);
    if (rc < 0)
        return rc;
    return n + fire_reports(p);
}

int stream_producer_flush(stream_producer *p, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : stream__client_mono_ms() + timeout_ms;
    p->flushing = true;
    int rc = 0;
    while (p->outstanding > 0) {
        int64_t now = stream__client_mono_ms();
        if (now >= deadline) {
            rc = STREAM_ETIMEDOUT;
            break;
        }
        int64_t left = deadline - now;
        int r = stream_producer_poll(p, left > 1000 ? 1000 : (int)left);
        if (r < 0) {
            rc = r;
            break;
        }
    }
    p->flushing = false;
    return rc;
}

size_t stream_producer_outstanding(const stream_producer *p)
{
    return p->outstanding;
}

void stream_producer_stats_get(const stream_producer *p, stream_producer_stats *out)
{
    *out = p->st;
}

void stream_producer_free(stream_producer *p, int timeout_ms)
{
    if (!p)
        return;
    stream_producer_flush(p, timeout_ms < 0 ? p->conf.delivery_timeout_ms : timeout_ms);
    stream__client_remove_tick(p->c, producer_tick, p);
    if (p->pid_request != 0)
        stream__req_cancel(p->c, p->pid_request);
    /* What is left fails: requests in flight are abandoned (their answers
     * dropped), ready and open batches never go out. */
    while (p->reqs) {
        preq *q = p->reqs;
        stream__req_cancel(p->c, q->id);
        preq_unlink(p, q);
        for (size_t i = 0; i < q->n; i++)
            batch_done(p, q->batches[i], STREAM_ECLOSED, -1, "producer closed");
        free(q);
    }
    for (size_t i = 0; i < p->ntopics; i++) {
        ptopic *t = p->topics[i];
        for (int32_t j = 0; j < t->partition_count; j++) {
            ppart *pp = t->parts[j];
            pbatch *b;
            while ((b = ready_pop(p, pp)))
                batch_done(p, b, STREAM_ECLOSED, -1, "producer closed");
            if (pp->open) {
                open_unlink(p, pp);
                batch_done(p, pp->open, STREAM_ECLOSED, -1, "producer closed");
                pp->open = NULL;
            }
        }
    }
    fire_reports(p);
    for (size_t i = 0; i < p->ntopics; i++)
        topic_free(p->topics[i]);
    free(p->topics);
    free(p->index);
    for (int i = 0; i < p->npool; i++)
        stream_batch_builder_release(&p->pool[i]);
    while (p->free_batches) {
        pbatch *b = p->free_batches;
        p->free_batches = b->next;
        free(b->opaques);
        free(b->timestamps);
        free(b);
    }
    free(p);
}
