/*
 * broker_repl.c - the broker's side of replication (host.h, "replication"):
 * the role, leader, leader epoch and high watermark of each partition, kept
 * in its stream__pstate, as the replicating service sets them.
 */
#include "broker_internal.h"
#include "stream/error.h"

void stream__host_set_replication(stream_broker *b, const stream__host_replication *hooks,
                                  void *arg)
{
    b->repl = *hooks;
    b->repl_arg = arg;
    b->repl_on = true;
}

void stream__host_set_role(stream_broker *b, stream_log *log, stream__host_role role,
                           int32_t leader_id, int32_t leader_epoch)
{
    stream__pstate *ps = stream__pstate_get(b, log, true);
    if (ps == NULL)
        return;
    if (role == STREAM__ROLE_LOCAL) {
        ps->local = true;
        return;
    }
    ps->local = false;
    if (!ps->repl_known)
        ps->high_watermark = 0;
    if (!ps->in_repl_list) {
        ps->in_repl_list = true;
        ps->rnext = b->repl_list;
        b->repl_list = ps;
        ps->durable_told = -1;
    }
    bool lost = ps->repl_known && ps->role == STREAM__ROLE_LEADER && role != STREAM__ROLE_LEADER;
    ps->repl_known = true;
    ps->role = role;
    ps->leader_id = leader_id;
    ps->leader_epoch = leader_epoch;
    if (lost) {
        /* acks=all produces waiting here are answered now (ENOTLEADER: not
         * acknowledged), and consumers' long polls, which the new leader
         * serves. */
        while (ps->produce_waiters != NULL)
            stream__waiter_finish(ps->produce_waiters->w, STREAM__WAIT_READY);
        while (ps->fetch_waiters != NULL)
            stream__waiter_finish(ps->fetch_waiters->w, STREAM__WAIT_READY);
    }
}

void stream__host_set_high_watermark(stream_broker *b, stream_log *log, int64_t hw)
{
    stream__pstate *ps = stream__pstate_get(b, log, true);
    if (ps == NULL)
        return;
    int64_t end = stream_log_end_offset(log);
    if (hw > end)
        hw = end;
    bool up = hw > ps->high_watermark;
    ps->high_watermark = hw;
    if (up)
        stream__wait_on_high_watermark(b, ps);
}

void stream__repl_on_durable(stream_broker *b)
{
    if (b->repl.durable == NULL)
        return;
    /* The hook may change roles (never remove partitions): the list holds. */
    for (stream__pstate *ps = b->repl_list; ps != NULL; ps = ps->rnext) {
        int64_t d = stream_log_durable_offset(ps->log);
        if (d != ps->durable_told) {
            ps->durable_told = d;
            b->repl.durable(b->repl_arg, ps->log, d);
        }
    }
}

void stream__repl_forget(stream_broker *b, stream__pstate *ps)
{
    if (!ps->in_repl_list)
        return;
    stream__pstate **pp = &b->repl_list;
    while (*pp != NULL && *pp != ps)
        pp = &(*pp)->rnext;
    if (*pp != NULL)
        *pp = ps->rnext;
    ps->in_repl_list = false;
}

void stream__host_partition_state(stream_broker *b, stream_log *log, stream__host_role *role,
                                  int32_t *leader_id, int32_t *leader_epoch, int64_t *hw)
{
    stream__pstate *ps = b->repl_on ? stream__pstate_get(b, log, false) : NULL;
    bool known = ps != NULL && ps->repl_known;
    bool single = !known; /* not replicated: this broker's alone */
    if (role)
        *role = single ? STREAM__ROLE_LEADER : known ? ps->role : STREAM__ROLE_NONE;
    if (leader_id)
        *leader_id = single ? b->node_id : known ? ps->leader_id : -1;
    if (leader_epoch)
        *leader_epoch = single ? 0 : known ? ps->leader_epoch : -1;
    if (hw)
        *hw = single ? stream_log_end_offset(log) : known ? ps->high_watermark : 0;
}
