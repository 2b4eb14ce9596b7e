/*
 * broker_repl.c - the broker's side of replication (host.h, "replication"):
 * the role, leader, leader epoch and high watermark of each partition, kept
 * in its stream__pstate, as the replicating service sets them.
 */
#include <stdio.h>

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
    bool changed = !ps->repl_known || ps->role != role || ps->leader_epoch != leader_epoch;
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
    if (changed)
        stream__services_role_changed(b, log, role, leader_epoch);
}

void stream__host_auto_create(stream_broker *b, const char *topic)
{
    if (b->repl_on && b->repl.auto_create != NULL)
        b->repl.auto_create(b->repl_arg, topic);
}

int stream__host_produce_check(stream_broker *b, stream_log *log, char *msg, size_t msg_len)
{
    if (!b->repl_on || b->repl.produce_check == NULL)
        return 0;
    stream__pstate *ps = stream__pstate_get(b, log, false);
    if (ps == NULL || !ps->repl_known)
        return 0;
    return b->repl.produce_check(b->repl_arg, log, -1, msg, msg_len);
}

int stream__host_node_address(stream_broker *b, int32_t node_id, char *host, size_t host_len,
                              uint16_t *port)
{
    if (node_id == b->node_id && b->host[0] != '\0') {
        snprintf(host, host_len, "%s", b->host);
        *port = (uint16_t)b->port;
        return 0;
    }
    if (b->repl_on && b->repl.node_address != NULL)
        return b->repl.node_address(b->repl_arg, node_id, host, host_len, port);
    return STREAM_ENOBROKER;
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
    /* Replicating, and no role given yet: nobody known to lead it. */
    bool pending = b->repl_on && !known && !(ps != NULL && ps->local);
    if (role)
        *role = pending ? STREAM__ROLE_NONE : single ? STREAM__ROLE_LEADER : ps->role;
    if (leader_id)
        *leader_id = pending ? -1 : single ? b->node_id : ps->leader_id;
    if (leader_epoch)
        *leader_epoch = pending ? -1 : single ? 0 : ps->leader_epoch;
    if (hw)
        *hw = single ? stream_log_end_offset(log) : known ? ps->high_watermark : 0;
}
