/*
 * producer_batch.c - the producer's batches between produce() and their
 * report: the pools that keep a steady stream from allocating per batch,
 * the lists a partition is on (open: it has a batch accumulating; send: it
 * has batches ready) and those a batch is on (ready, pending), closing a
 * batch (stamped with its producer id, epoch and sequence, then finished)
 * and ending it (done: its reports wait for the next poll). The whole
 * producer is described at the top of producer.c.
 */
#include <stdlib.h>
#include <string.h>

#include "producer_internal.h"
#include "stream/error.h"
#include "stream/partition.h"

/* ---- batches ------------------------------------------------------------- */

/* Gives the batch's builder back to the pool (or frees it): its bytes are
 * no longer needed once the batch is done. */
static void builder_recycle(stream_producer *p, stream_batch_builder *bb)
{
    /* A builder of up to twice batch_bytes is kept (a batch grows its buffer
     * by doubling): a stream of 1 MiB batches that allocated a fresh 2 MiB
     * buffer for each spent more on page faults than on the records. All
     * kept builders together stay within buffer_bytes. */
    size_t bytes = bb->buf.cap + bb->zbuf.cap;
    size_t most = 2 * p->conf.batch_bytes + 65536;
    if (most < POOL_BUILDER_BYTES)
        most = POOL_BUILDER_BYTES;
    if (p->npool < POOL_BUILDERS && bytes <= most && p->pool_bytes + bytes <= p->conf.buffer_bytes) {
        stream_batch_builder_reset(bb);
        p->pool[p->npool++] = *bb; /* the pool owns its buffers now */
        p->pool_bytes += bytes;
        stream_batch_builder_init(bb);
    } else {
        stream_batch_builder_release(bb);
    }
}

/* Frees a reported batch, or keeps it (its arrays) for the next stream__producer_batch_new. */
void stream__producer_batch_free(stream_producer *p, stream__pbatch *b)
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
stream__pbatch *stream__producer_batch_new(stream_producer *p, stream__ppart *pp, int64_t now)
{
    stream__pbatch *b = p->free_batches;
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
        p->pool_bytes -= b->b.buf.cap + b->b.zbuf.cap;
    } else {
        stream_batch_builder_init(&b->b);
        stream_batch_builder_set_codec(&b->b, p->conf.codec, p->conf.codec_level);
    }
    return b;
}

/* ---- the open and send lists --------------------------------------------- */

/* pp got an open batch: it goes last, its batch being the newest. */
void stream__producer_open_link(stream_producer *p, stream__ppart *pp)
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

void stream__producer_open_unlink(stream_producer *p, stream__ppart *pp)
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
void stream__producer_send_link(stream_producer *p, stream__ppart *pp)
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

void stream__producer_send_unlink(stream_producer *p, stream__ppart *pp)
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

void stream__producer_ready_push_tail(stream_producer *p, stream__ppart *pp, stream__pbatch *b)
{
    b->next = NULL;
    if (pp->ready_tail)
        pp->ready_tail->next = b;
    else
        pp->ready_head = b;
    pp->ready_tail = b;
    p->ready_batches++;
    stream__producer_send_link(p, pp);
}

/* Puts a batch coming back for a retry into the ready list at its place in
 * close order, so a partition's batches go out again in the order they
 * closed whatever order their failures are reported in. */
void stream__producer_ready_insert(stream_producer *p, stream__ppart *pp, stream__pbatch *b)
{
    stream__pbatch **at = &pp->ready_head;
    while (*at && (*at)->order < b->order)
        at = &(*at)->next;
    b->next = *at;
    *at = b;
    if (!b->next)
        pp->ready_tail = b;
    p->ready_batches++;
    stream__producer_send_link(p, pp);
}

static void pending_push(stream__ppart *pp, stream__pbatch *b)
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

static void pending_remove(stream__ppart *pp, stream__pbatch *b)
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
int32_t stream__producer_seq_add(int32_t a, int64_t n)
{
    return (int32_t)(((int64_t)a + n) % ((int64_t)INT32_MAX + 1));
}

stream__pbatch *stream__producer_ready_pop(stream_producer *p, stream__ppart *pp)
{
    stream__pbatch *b = pp->ready_head;
    if (b) {
        pp->ready_head = b->next;
        if (!pp->ready_head) {
            pp->ready_tail = NULL;
            stream__producer_send_unlink(p, pp);
        }
        b->next = NULL;
        p->ready_batches--;
    }
    return b;
}

/* The batch is over: its reports wait for the next stream_producer_poll. Its
 * record bytes are released now (the builder back to the pool) so produce()
 * may go on. */
void stream__producer_batch_done(stream_producer *p, stream__pbatch *b, int err,
                                 int64_t base_offset, const char *msg)
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
void stream__producer_batch_close(stream_producer *p, stream__ppart *pp)
{
    stream__ptopic *t = pp->t;
    int32_t partition = pp->id;
    stream__pbatch *b = pp->open;
    if (!b)
        return;
    pp->open = NULL;
    stream__producer_open_unlink(p, pp);
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
        stream__producer_batch_done(p, b, rc, -1, msg); /* its sequence was not used */
        return;
    }
    if (p->idempotent)
        pp->next_seq = stream__producer_seq_add(seq, b->count);
    b->order = pp->next_order++;
    pending_push(pp, b);
    stream__producer_ready_push_tail(p, pp, b);
    /* Sticky partitioning: a completed batch moves unkeyed records on. */
    if (t->sticky.current == partition && t->partition_count > 1)
        stream_sticky_next(&t->sticky, t->partition_count);
}

/* Frees the pools (stream_producer_free). */
void stream__producer_pools_release(stream_producer *p)
{
    for (int i = 0; i < p->npool; i++)
        stream_batch_builder_release(&p->pool[i]);
    while (p->free_batches) {
        stream__pbatch *b = p->free_batches;
        p->free_batches = b->next;
        free(b->opaques);
        free(b->timestamps);
        free(b);
    }
}
