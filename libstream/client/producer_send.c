/*
 * producer_send.c - the producer's tick (run by the client's poll and kick):
 * it closes batches whose linger is over, gathers the head ready batch of
 * every partition that may send into one produce request, and handles the
 * answers: stored, retried after a backoff, restarted in sequence, or
 * failed for good; batches out of delivery time expire. The whole producer
 * is described at the top of producer.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "producer_internal.h"
#include "stream/error.h"

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
    return stream__retry_decide(err) != STREAM__RETRY_NO;
}

/* ---- routing ------------------------------------------------------------- */

/* A partition whose leader the metadata says is none right now. */
#define NO_LEADER INT32_MIN

/* The node pp's batches go to now: its leader, STREAM__NODE_BOOTSTRAP when
 * the metadata cache does not know it (the bootstrap connection's broker
 * answers, or says ENOTLEADER), NO_LEADER while the partition has none.
 * Looked up again only when the client's metadata changed. */
static int32_t route_of(stream_producer *p, stream__ppart *pp)
{
    uint64_t gen = stream__client_md_generation(p->c) + 1;
    if (pp->leader_gen != gen) {
        int32_t l = stream__client_leader(p->c, pp->t->name, pp->id);
        pp->leader = l == STREAM__LEADER_UNKNOWN ? STREAM__NODE_BOOTSTRAP : l < 0 ? NO_LEADER : l;
        pp->leader_gen = gen;
    }
    return pp->leader;
}

/* pp has no leader right now (an election is under way): ask who leads
 * (rate-limited) and look again soon. */
static void wait_for_leader(stream_producer *p, stream__ppart *pp, int64_t now)
{
    stream__client_refresh_async(p->c, pp->t->name);
    if (!p->leader_wake_ms || p->leader_wake_ms > now + STREAM__MD_REFRESH_MIN_MS)
        p->leader_wake_ms = now + STREAM__MD_REFRESH_MIN_MS;
}

/* The request count of node, added when new; NULL without memory. */
static stream__pnode *pnode(stream_producer *p, int32_t node)
{
    for (size_t i = 0; i < p->nnodes; i++)
        if (p->nodes[i].node == node)
            return &p->nodes[i];
    if (p->nnodes == p->nodes_cap) {
        size_t cap = p->nodes_cap ? p->nodes_cap * 2 : 4;
        stream__pnode *nn = realloc(p->nodes, cap * sizeof *nn);
        if (!nn)
            return NULL;
        p->nodes = nn;
        p->nodes_cap = cap;
    }
    p->nodes[p->nnodes] = (stream__pnode){.node = node, .reqs = 0};
    return &p->nodes[p->nnodes++];
}

/* Whether another request may go to node now (max_reqs per node: a dead
 * broker holding its requests until they time out does not hold up the
 * others). */
static bool node_has_room(stream_producer *p, int32_t node)
{
    for (size_t i = 0; i < p->nnodes; i++)
        if (p->nodes[i].node == node)
            return p->nodes[i].reqs < p->max_reqs;
    return true;
}

void stream__producer_preq_unlink(stream_producer *p, stream__preq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        p->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    p->nreqs--;
    for (size_t i = 0; i < p->nnodes; i++)
        if (p->nodes[i].node == q->node) {
            p->nodes[i].reqs--;
            break;
        }
}

/* The broker refused an idempotent batch for its sequence: nothing of it
 * was written. */
static bool sequence_refused(int err)
{
    return err == STREAM_EOUTOFORDERSEQ || err == STREAM_EUNKNOWNPRODUCER ||
           err == STREAM_EPRODUCERFENCED;
}

/* Back into the ready list for another try at retry_at_ms. */
static void requeue(stream_producer *p, stream__pbatch *b, int err, const char *msg,
                    int64_t retry_at_ms)
{
    b->retry_at_ms = retry_at_ms;
    free(b->msg);
    b->msg = strdup(msg && msg[0] ? msg : stream_strerror(err));
    b->err = err;
    stream__producer_ready_insert(p, b->pp, b);
}

/* One batch failed with err: retry it or give up. `sent`: its request went
 * out (else a connection round failed while it waited to be sent). */
static void batch_failed(stream_producer *p, stream__pbatch *b, int err, const char *msg,
                         int64_t now, bool sent)
{
    stream__ppart *pp = b->pp;
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
    stream__retry_action act = stream__retry_decide(err);
    if (act != STREAM__RETRY_NO && b->attempts <= p->conf.retries && !timed_out) {
        /* The leader may have moved or died: the retry goes wherever the
         * refreshed metadata says (route_of), with the same bytes, so the
         * broker's sequence check stores it once whichever broker got it. */
        if (act == STREAM__RETRY_REFRESH) {
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
    stream__producer_batch_done(p, b, err, -1, full);
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

/* conf.timing: the answer's arrival and the broker's account (protocol.md
 * 6.7: `timing` in a partition entry; absent, every figure stays -1). */
static void read_timing(stream_delivery_timing *t, const msgpack_object *pm)
{
    t->acked_ns = stream__mono_ns();
    t->append_us = t->durable_us = t->round_wait_us = t->sync_us = -1;
    const msgpack_object *m = NULL;
    if (stream_field_map_opt(pm, "timing", &m, NULL, 0) != 0 || m == NULL)
        return;
    (void)stream_field_int_opt(m, "append_us", -1, INT64_MAX, -1, &t->append_us, NULL, 0);
    (void)stream_field_int_opt(m, "durable_us", -1, INT64_MAX, -1, &t->durable_us, NULL, 0);
    (void)stream_field_int_opt(m, "round_wait_us", -1, INT64_MAX, -1, &t->round_wait_us, NULL, 0);
    (void)stream_field_int_opt(m, "sync_us", -1, INT64_MAX, -1, &t->sync_us, NULL, 0);
}

static void produce_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__preq *q = arg;
    stream_producer *p = q->p;
    int64_t now = stream__client_mono_ms();
    stream__producer_preq_unlink(p, q);
    result_cursor cur = {0};
    if (r->root && r->err == 0)
        stream_field_array(r->root, "topics", &cur.topics, NULL, 0);
    for (size_t i = 0; i < q->n; i++) {
        stream__pbatch *b = q->batches[i];
        b->pp->in_flight--;
        if (r->err != 0) {
            batch_failed(p, b, r->err, r->msg, now, true);
            continue;
        }
        if (p->conf.acks == 0) {
            stream__producer_batch_done(p, b, 0, -1, NULL);
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
            stream__producer_batch_done(p, b, 0, -1, NULL);
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
        if (p->conf.timing)
            read_timing(&b->timing, pm);
        stream__producer_batch_done(p, b, 0, base, NULL);
    }
    free(q);
}

static int batch_cmp(const void *a, const void *b)
{
    const stream__pbatch *x = *(stream__pbatch *const *)a, *y = *(stream__pbatch *const *)b;
    if (x->t != y->t)
        return x->t->idx < y->t->idx ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Sends one produce request with the head ready batch of each partition that
 * may take one. Returns true when a request went out. */
static bool send_one(stream_producer *p, int64_t now)
{
    size_t cap = p->send_parts;
    stream__preq *q = NULL;
    size_t bytes = 0;
    int32_t node = NO_LEADER; /* the request's: the first partition that may go picks it */
    for (stream__ppart *pp = p->send_head, *next; pp; pp = next) {
        next = pp->send_next;
        stream__pbatch *b = pp->ready_head;
        if (b->retry_at_ms > now || pp->in_flight >= p->conf.max_in_flight_per_partition)
            continue;
        int32_t to = route_of(p, pp);
        if (to == NO_LEADER) {
            wait_for_leader(p, pp, now);
            continue;
        }
        /* Requests of the old leader still out: they are answered (or fail)
         * first, so batches never overtake each other across brokers. */
        if (pp->in_flight > 0 && pp->node != to)
            continue;
        if (node == NO_LEADER) {
            if (!node_has_room(p, to))
                continue;
        } else if (to != node) {
            continue;
        }
        if (pp->restart && !stream__producer_restart_sequence(p, pp))
            continue;
        if (bytes > 0 && bytes + b->len > p->conf.max_request_bytes)
            continue;
        if (!q) {
            q = calloc(1, sizeof *q + cap * sizeof q->batches[0]);
            if (!q)
                return false;
            q->p = p;
            node = to;
        }
        stream__producer_ready_pop(p, pp);
        pp->in_flight++;
        pp->node = to;
        q->batches[q->n++] = b;
        bytes += b->len;
    }
    if (!q)
        return false;
    stream__pnode *pn = pnode(p, node);
    if (!pn) {
        for (size_t i = 0; i < q->n; i++) {
            q->batches[i]->pp->in_flight--;
            stream__producer_ready_insert(p, q->batches[i]->pp, q->batches[i]);
        }
        free(q);
        return false;
    }
    q->node = node;
    /* Partitions served go to the back, so full requests favour no one. */
    for (size_t i = 0; i < q->n; i++) {
        stream__ppart *pp = q->batches[i]->pp;
        if (pp->ready_head && pp != p->send_tail) {
            stream__producer_send_unlink(p, pp);
            stream__producer_send_link(p, pp);
        }
    }

    /* Group the batches by topic for the request (and the response walk). */
    if (q->n > 1)
        qsort(q->batches, q->n, sizeof q->batches[0], batch_cmp);
    size_t ntopics = 0;
    for (size_t i = 0; i < q->n; i++)
        if (i == 0 || q->batches[i]->t != q->batches[i - 1]->t)
            ntopics++;
    msgpack_packer *pk = stream__req_begin(p->c, STREAM_OP_PRODUCE, 3 + p->conf.timing);
    stream_pack_kv_int(pk, "acks", p->conf.acks);
    stream_pack_kv_int(pk, "timeout_ms", stream__client_request_timeout(p->c));
    if (p->conf.timing) {
        stream_pack_kv_bool(pk, "timing", true);
        int64_t t = stream__mono_ns();
        for (size_t i = 0; i < q->n; i++)
            q->batches[i]->timing.sent_ns = t;
    }
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, ntopics);
    for (size_t i = 0; i < q->n;) {
        stream__ptopic *t = q->batches[i]->t;
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
    int64_t id = stream__req_send_node(p->c, node, produce_cb, q, 1000, flags);
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
    pn->reqs++;
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
    for (stream__ppart *pp = p->send_head, *next; pp; pp = next) {
        next = pp->send_next;
        while (pp->ready_head && now >= pp->ready_head->created_ms + p->conf.delivery_timeout_ms) {
            stream__pbatch *b = stream__producer_ready_pop(p, pp);
            char msg[600];
            stream__errf(msg, sizeof msg, "topic '%s' partition %d: not delivered within %d ms%s%s",
                         pp->t->name, (int)pp->id, p->conf.delivery_timeout_ms, b->msg ? ": " : "",
                         b->msg ? b->msg : "");
            stream__producer_batch_done(p, b, b->err ? b->err : STREAM_ETIMEDOUT, -1, msg);
        }
    }
}

/* Whether a batch of pp closed now could go out at once. If not, its open
 * batch keeps taking records (see the top): something in flight or ahead
 * of it will run the tick again when it moves. */
static bool could_send(stream_producer *p, stream__ppart *pp, int64_t now)
{
    if (pp->ready_head || pp->in_flight >= p->conf.max_in_flight_per_partition)
        return false;
    int32_t to = route_of(p, pp);
    if (to == NO_LEADER) {
        /* Closed all the same: on the ready list delivery_timeout_ms bounds
         * its wait for a leader. */
        wait_for_leader(p, pp, now);
        return true;
    }
    return (pp->in_flight == 0 || pp->node == to) && node_has_room(p, to);
}

/* Closes open batches that lingered long enough and could be sent; returns
 * the next linger deadline. The open list is in the order the batches
 * opened, so the first one not yet due ends the walk; due ones that are
 * held back stay where they are. */
static int64_t close_lingering(stream_producer *p, int64_t now)
{
    bool all = p->flushing || p->full;
    for (stream__ppart *pp = p->open_head, *next; pp; pp = next) {
        next = pp->open_next;
        int64_t due = pp->open->created_ms + p->conf.linger_ms;
        if (!all && now < due)
            return due;
        if (could_send(p, pp, now))
            stream__producer_batch_close(p, pp);
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
        stream__ptopic *t = p->topics[i];
        for (int32_t j = 0; j < t->partition_count; j++) {
            stream__ppart *pp = t->parts[j];
            stream__pbatch *list = pp->ready_head;
            if (!list)
                continue;
            pp->ready_head = pp->ready_tail = NULL;
            stream__producer_send_unlink(p, pp);
            while (list) {
                stream__pbatch *b = list;
                list = b->next;
                p->ready_batches--;
                if (b->rounds_counted == rounds) {
                    stream__producer_ready_push_tail(p, pp, b);
                    continue;
                }
                b->attempts++;
                batch_failed(p, b, err, why, now, false);
            }
        }
    }
}

int64_t stream__producer_tick(void *arg, int64_t now)
{
    stream_producer *p = arg;
    int64_t next = close_lingering(p, now);
    p->full = false;
    count_connect_failure(p, now);
    if (p->ready_batches == 0)
        return next;
    expire_ready(p, now);
    if (p->leader_wake_ms && now >= p->leader_wake_ms)
        p->leader_wake_ms = 0;
    while (send_one(p, now))
        ;
    /* Batches closed while requests were out may go now. */
    if (p->open_batches > 0) {
        int64_t n = close_lingering(p, now);
        if (n < next)
            next = n;
        while (send_one(p, now))
            ;
    }
    if (p->leader_wake_ms && p->leader_wake_ms < next)
        next = p->leader_wake_ms;
    /* Wake for the earliest retry of a batch that is waiting for its turn. */
    for (stream__ppart *pp = p->send_head; pp; pp = pp->send_next) {
        stream__pbatch *b = pp->ready_head;
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
