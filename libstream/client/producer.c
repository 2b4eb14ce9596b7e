/*
 * producer.c - per-partition batching, produce requests, retries and
 * delivery reports. This file holds the settings, topics, producer ids,
 * produce() and the reports; the batch pool and the lists a batch lives on
 * are in producer_batch.c, the tick that sends, retries and expires in
 * producer_send.c, and what the three share in producer_internal.h.
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
 *                 request per leader (capped at max_request_bytes), sent on
 *                 that broker's connection
 *   response   -> per partition: success -> done (offsets known); retriable
 *                 error -> back into its partition's ready list, in close
 *                 order, after a backoff (and, when the leader may have
 *                 moved or died, a metadata refresh: the resend goes to the
 *                 leader it names); other errors or out of retries/time ->
 *                 done with the error
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
 * pools keep at most POOL_BUILDERS builders of at most twice batch_bytes
 * (1 MiB at least) each, and within buffer_bytes in all, on top.
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
#include <time.h>
#include <unistd.h>

#include "producer_internal.h"
#include "stream/error.h"
#include "stream/partition.h"

/* Batches a partition may have in flight with idempotence: the broker
 * recognises a resend among a producer's last 16 batches only. */
#define IDEMPOTENT_MAX_IN_FLIGHT 16

/* Between asks for a producer id while brokers come and go. */
#define PID_RETRY_PAUSE_MS 100

/* Bytes counted per record on top of key, value and headers (varints,
 * report bookkeeping). */
#define RECORD_OVERHEAD 32

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
    conf->max_in_flight_per_partition = 16;
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
    if (stream__client_add_tick(c, stream__producer_tick, p) < 0) {
        free(p);
        return STREAM_ENOMEM;
    }
    *out = p;
    return 0;
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

static stream__ptopic *topic_find(stream_producer *p, const char *name)
{
    if (p->last && strcmp(p->last->name, name) == 0)
        return p->last;
    if (p->index_cap == 0)
        return NULL;
    uint32_t h = name_hash(name);
    for (size_t i = h & (p->index_cap - 1);; i = (i + 1) & (p->index_cap - 1)) {
        stream__ptopic *t = p->index[i];
        if (!t)
            return NULL;
        if (t->hash == h && strcmp(t->name, name) == 0)
            return p->last = t;
    }
}

static void index_put(stream__ptopic **index, size_t cap, stream__ptopic *t)
{
    size_t j = t->hash & (cap - 1);
    while (index[j])
        j = (j + 1) & (cap - 1);
    index[j] = t;
}

/* Puts t into the index, doubling it first when it would be half full. */
static int index_add(stream_producer *p, stream__ptopic *t)
{
    if (2 * (p->ntopics + 1) > p->index_cap) {
        size_t cap = p->index_cap ? p->index_cap * 2 : 16;
        stream__ptopic **ni = calloc(cap, sizeof *ni);
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
static int topic_grow(stream__ptopic *t, int32_t count)
{
    if (count <= t->partition_count)
        return 0;
    stream__ppart **np = realloc(t->parts, (size_t)count * sizeof *np);
    if (!np)
        return STREAM_ENOMEM;
    t->parts = np;
    for (int32_t i = t->partition_count; i < count; i++) {
        stream__ppart *pp = calloc(1, sizeof *pp);
        if (!pp)
            return STREAM_ENOMEM; /* the ones made so far count */
        pp->t = t;
        pp->id = i;
        pp->node = STREAM__NODE_BOOTSTRAP;
        np[i] = pp;
        t->partition_count = i + 1;
    }
    return 0;
}

/* Grows t when the client's metadata knows more partitions than t has.
 * Only when a record needs a partition t does not have, or a batch opens:
 * not a metadata look-up per record. */
static int topic_refresh(stream_producer *p, stream__ptopic *t)
{
    const stream__topic_md *md = stream__client_topic(p->c, t->name);
    if (md && md->err == 0 && md->partition_count > t->partition_count)
        return topic_grow(t, md->partition_count);
    return 0;
}

static void topic_free(stream__ptopic *t)
{
    for (int32_t j = 0; j < t->partition_count; j++)
        free(t->parts[j]);
    free(t->parts);
    free(t->name);
    free(t);
}

static int topic_get(stream_producer *p, const char *name, stream__ptopic **out, char *errbuf,
                     size_t errbuf_len)
{
    stream__ptopic *t = topic_find(p, name);
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
        stream__ptopic **nt = realloc(p->topics, cap * sizeof *nt);
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

/* Errors after which another broker (or the same one, back) may give the
 * id: the one asked was stopping or is gone. Nothing was done there. */
static bool pid_retriable(int rc)
{
    return rc == STREAM_ECONNRESET || rc == STREAM_ECONNREFUSED || rc == STREAM_ECLOSED ||
           rc == STREAM_ENOTLEADER;
}

/* The first produce of an idempotent producer waits for its id, asking
 * again (PID_RETRY_PAUSE_MS apart, within the request timeout) while the
 * broker it asked goes away: a rolling restart must not fail a producer
 * that starts in the middle of it. */
static int get_producer_id(stream_producer *p, char *errbuf, size_t errbuf_len)
{
    pid_answer a;
    char why[400] = "";
    int rc;
    int64_t give_up = stream__client_mono_ms() + stream__client_request_timeout(p->c);
    for (;;) {
        (void)stream__req_begin(p->c, STREAM_OP_INIT_PRODUCER_ID, 0);
        why[0] = '\0';
        rc = stream__client_call(p->c, -1, parse_pid, &a, why, sizeof why);
        if (!pid_retriable(rc) || stream__client_mono_ms() + PID_RETRY_PAUSE_MS >= give_up)
            break;
        struct timespec ts = {0, PID_RETRY_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
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
bool stream__producer_restart_sequence(stream_producer *p, stream__ppart *pp)
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
    for (stream__pbatch *b = pp->pending_head; b; b = b->pend_next) {
        stream_batch_builder_set_producer(&b->b, pp->producer_id, pp->epoch, pp->next_seq);
        pp->next_seq = stream__producer_seq_add(pp->next_seq, b->count);
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

static int grow_records(stream__pbatch *b)
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

/* Sends what is ready without waiting and without running reports (the
 * client's kick runs this producer's tick). */
static void kick(stream_producer *p)
{
    stream__client_kick(p->c);
}

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

    stream__ptopic *t;
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

    stream__ppart *pp = t->parts[part];
    /* A batch also stays under the broker's max.message.bytes (from hello),
     * which it would refuse with ETOOLARGE. */
    size_t limit = p->conf.batch_bytes;
    size_t broker_max = stream__client_max_message_bytes(p->c);
    if (broker_max > 0 && broker_max < limit)
        limit = broker_max;
    if (pp->open && pp->open->count > 0 && stream_batch_builder_size(&pp->open->b) + size > limit) {
        stream__producer_batch_close(p, pp);
        /* Closing may have moved the sticky partition; the record keeps the
         * partition it was given. */
    }
    if (!pp->open) {
        /* Now and then (not per record): has the topic grown? */
        if ((rc = topic_refresh(p, t)) < 0)
            return rc;
        pp->open = stream__producer_batch_new(p, pp, stream__client_mono_ms());
        if (!pp->open)
            return STREAM_ENOMEM;
        stream__producer_open_link(p, pp);
    }
    stream__pbatch *b = pp->open;
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
        stream__producer_batch_close(p, pp);
        kick(p);
    }
    return 0;
}

/* ---- reports, poll, flush, free ------------------------------------------- */

static int fire_reports(stream_producer *p)
{
    int n = 0;
    while (p->done_head) {
        stream__pbatch *b = p->done_head;
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
                .timing = b->err == 0 && b->timing.acked_ns > 0 ? &b->timing : NULL,
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
        stream__producer_batch_free(p, b);
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
    stream__client_remove_tick(p->c, stream__producer_tick, p);
    if (p->pid_request != 0)
        stream__req_cancel(p->c, p->pid_request);
    /* What is left fails: requests in flight are abandoned (their answers
     * dropped), ready and open batches never go out. */
    while (p->reqs) {
        stream__preq *q = p->reqs;
        stream__req_cancel(p->c, q->id);
        stream__producer_preq_unlink(p, q);
        for (size_t i = 0; i < q->n; i++)
            stream__producer_batch_done(p, q->batches[i], STREAM_ECLOSED, -1, "producer closed");
        free(q);
    }
    for (size_t i = 0; i < p->ntopics; i++) {
        stream__ptopic *t = p->topics[i];
        for (int32_t j = 0; j < t->partition_count; j++) {
            stream__ppart *pp = t->parts[j];
            stream__pbatch *b;
            while ((b = stream__producer_ready_pop(p, pp)))
                stream__producer_batch_done(p, b, STREAM_ECLOSED, -1, "producer closed");
            if (pp->open) {
                stream__producer_open_unlink(p, pp);
                stream__producer_batch_done(p, pp->open, STREAM_ECLOSED, -1, "producer closed");
                pp->open = NULL;
            }
        }
    }
    fire_reports(p);
    for (size_t i = 0; i < p->ntopics; i++)
        topic_free(p->topics[i]);
    free(p->topics);
    free(p->index);
    free(p->nodes);
    stream__producer_pools_release(p);
    free(p);
}
