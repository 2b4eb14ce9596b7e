/*
 * controller_elect.c - the controller's election pass (controller_internal.h):
 * every partition through election.h's rule, the changes proposed as
 * alter_partitions commands of up to STREAM__META_ALTER_BATCH partitions
 * each, so a fenced broker that led 10,000 partitions moves them in 10
 * metadata commands (10 Raft entries, a few hundred KB in all) instead of
 * 10,000. A pass runs only when the last one's commands are all decided:
 * their outcome changes what to compute, and a change skipped as stale is
 * computed afresh by the next pass (the last decision of a pass asks for
 * one).
 */
#include <stdlib.h>

#include "controller_internal.h"
#include "election.h"
#include "stream/error.h"

static void on_elected(void *arg, int status, int result)
{
    controller *ctl = arg;
    ctl->elect_inflight--;
    if (ctl->stopped)
        return;
    /* Lost, or some of its changes skipped as stale (alter_partitions
     * answers 0 all the same): the next pass computes what is left. */
    (void)result;
    if (status != 0 || ctl->elect_inflight == 0)
        ctl->elect_dirty = true;
}

#define MOVES_LOGGED 20 /* leader moves logged one by one per pass; then a count */

/* Proposes the changes gathered so far as one alter_partitions. False when
 * it could not be proposed (the pass stops; the next one starts over). */
static bool propose_batch(controller *ctl)
{
    if (ctl->elect_n == 0)
        return true;
    stream__elect_alters(ctl->elect_batch, ctl->elect_n, ctl->elect_alters);
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc = stream__meta_encode_alter_partitions(
        &cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)}, ctl->elect_alters, ctl->elect_n);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_elected, ctl);
    stream_buf_release(&cmd);
    ctl->elect_n = 0;
    if (rc != 0) {
        ctl->elect_dirty = true;
        return false;
    }
    ctl->elect_inflight++;
    return true;
}

static bool gather_change(void *arg, const stream__elect_change *c)
{
    controller *ctl = arg;
    const stream__meta_partition *mp = &c->topic->partitions[c->partition];
    if (c->leader != mp->leader && ctl->elect_moves++ < MOVES_LOGGED)
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: %s-%d: leader %d -> %d%s (%u in the ISR)", c->topic->name,
                         (int)c->partition, (int)mp->leader, (int)c->leader,
                         c->unclean ? " (unclean: from outside the ISR)" : "", (unsigned)c->n_isr);
    ctl->elect_batch[ctl->elect_n++] = *c;
    return ctl->elect_n < STREAM__META_ALTER_BATCH || propose_batch(ctl);
}

/* One election pass over every partition, unless the last one's proposals
 * are still in flight (their outcome changes what to compute). Its changes
 * go out in alter_partitions of up to STREAM__META_ALTER_BATCH each. */
void ctl_elect_pass(controller *ctl)
{
    if (!ctl_is_controller(ctl) || ctl->elect_inflight > 0)
        return;
    if (ctl->elect_batch == NULL) {
        ctl->elect_batch = calloc(STREAM__META_ALTER_BATCH, sizeof(*ctl->elect_batch));
        ctl->elect_alters = calloc(STREAM__META_ALTER_BATCH, sizeof(*ctl->elect_alters));
        if (ctl->elect_batch == NULL || ctl->elect_alters == NULL) {
            free(ctl->elect_batch);
            free(ctl->elect_alters);
            ctl->elect_batch = NULL;
            ctl->elect_alters = NULL;
            return; /* out of memory: the next tick tries again */
        }
    }
    ctl->elect_dirty = false;
    ctl->elect_last = uv_now(stream__host_loop(ctl->b));
    ctl->elect_n = 0;
    ctl->elect_moves = 0;
    size_t n = stream__elect_all(ctl->md, ctl->unclean_default, gather_change, ctl);
    (void)propose_batch(ctl);
    if (ctl->elect_moves > MOVES_LOGGED)
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: %zu leaders moved in all (%zu changes, in batches of %d)",
                         ctl->elect_moves, n, STREAM__META_ALTER_BATCH);
}
