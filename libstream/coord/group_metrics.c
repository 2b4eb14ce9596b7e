/*
 * group_metrics.c - the group coordinator's families for GET /metrics
 * (the broker's scrape calls stream__coord_metrics on the loop; the
 * exposition writer is base/prom.c).
 *
 * The stats op's "groups" (protocol.md 6.29) are the same figures in
 * MessagePack (stream__coord_stats).
 *
 * Lag is figured as describe_group figures it (group.c, pack_lag): per
 * committed partition, records from the committed offset to the log end,
 * and the age of the oldest record not yet consumed, read from the log
 * (one batch header and its records, in the page cache when the consumer
 * is near the end). Only the groups this broker coordinates are here: in
 * a cluster each coordinator exports its own, and Prometheus sums.
 */
#include <stdio.h>

#include "group_internal.h"
#include "stream/prom.h"

/* The members of g, in either protocol. */
static size_t members(const stream__group *g)
{
    return stream__classic_active(g->classic) ? stream__classic_members(g->classic) : g->nmembers;
}

static int32_t generation(const stream__group *g)
{
    return stream__classic_active(g->classic) ? stream__classic_generation(g->classic)
                                              : g->generation;
}

/* The lag of committed offset o: records to the log end, and seconds since
 * the oldest unconsumed record (0 when caught up). False when the
 * partition is not here (a cluster) or was deleted. */
static bool offset_lag(stream__coord *co, const stream__offset *o, int64_t now_ms, int64_t *lag,
                       double *seconds)
{
    stream_log *log;
    if (stream_store_log(stream__host_store(co->broker), o->topic, o->partition, &log) != 0)
        return false;
    int64_t start = stream_log_start_offset(log), end = stream_log_end_offset(log);
    *lag = end > o->offset ? end - o->offset : 0;
    int64_t first = o->offset > start ? o->offset : start;
    int64_t ts = *lag > 0 && first < end ? stream__record_timestamp_at(log, first) : -1;
    *seconds = ts >= 0 && now_ms > ts ? (double)(now_ms - ts) / 1000.0 : 0;
    return true;
}

static void lag_family(stream__coord *co, stream_buf *out, bool seconds)
{
    const char *name = seconds ? "stream_group_lag_seconds" : "stream_group_lag_records";
    stream_prom_family(out, name, STREAM_PROM_GAUGE,
                       seconds ? "Age of the oldest record a group has not consumed in a "
                                 "partition (0 when caught up)."
                               : "Records between a group's committed offset and the log end.");
    int64_t now_ms = (int64_t)stream__host_now_ms();
    for (size_t i = 0; i < co->ngroups; i++) {
        const stream__group *g = co->groups[i];
        for (size_t k = 0; k < g->noffsets; k++) {
            const stream__offset *o = &g->offsets[k];
            int64_t lag;
            double secs;
            if (!offset_lag(co, o, now_ms, &lag, &secs))
                continue;
            char part[16];
            snprintf(part, sizeof(part), "%d", (int)o->partition);
            stream_prom_label l[] = {{"group", g->name}, {"topic", o->topic}, {"partition", part}};
            stream_prom_sample(out, name, l, 3, seconds ? secs : (double)lag);
        }
    }
}

void stream__coord_metrics(void *svc, stream_buf *out)
{
    stream__coord *co = svc;
    stream_prom_family(out, "stream_group_members", STREAM_PROM_GAUGE,
                       "Members of a consumer group this broker coordinates.");
    for (size_t i = 0; i < co->ngroups; i++) {
        stream_prom_label l[] = {{"group", co->groups[i]->name}};
        stream_prom_sample(out, "stream_group_members", l, 1, (double)members(co->groups[i]));
    }
    stream_prom_family(out, "stream_group_rebalances_total", STREAM_PROM_COUNTER,
                       "Assignments a group has computed (its generation).");
    for (size_t i = 0; i < co->ngroups; i++) {
        stream_prom_label l[] = {{"group", co->groups[i]->name}};
        stream_prom_sample(out, "stream_group_rebalances_total", l, 1,
                           (double)generation(co->groups[i]));
    }
    lag_family(co, out, false);
    lag_family(co, out, true);
}

void stream__coord_stats(void *svc, msgpack_packer *pk)
{
    stream__coord *co = svc;
    int64_t now_ms = (int64_t)stream__host_now_ms();
    stream_pack_key(pk, "groups");
    msgpack_pack_array(pk, co->ngroups);
    for (size_t i = 0; i < co->ngroups; i++) {
        const stream__group *g = co->groups[i];
        size_t here = 0; /* partitions of its offsets held here */
        stream_log *log;
        for (size_t k = 0; k < g->noffsets; k++)
            here += stream_store_log(stream__host_store(co->broker), g->offsets[k].topic,
                                     g->offsets[k].partition, &log) == 0;
        int64_t lag;
        double secs;
        msgpack_pack_map(pk, 4);
        stream_pack_kv_cstr(pk, "group", g->name);
        stream_pack_kv_uint(pk, "members", members(g));
        stream_pack_kv_int(pk, "generation", generation(g));
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, here);
        for (size_t k = 0; k < g->noffsets; k++) {
            const stream__offset *o = &g->offsets[k];
            if (!offset_lag(co, o, now_ms, &lag, &secs))
                continue;
            msgpack_pack_map(pk, 4);
            stream_pack_kv_cstr(pk, "topic", o->topic);
            stream_pack_kv_int(pk, "partition", o->partition);
            stream_pack_kv_int(pk, "lag_records", lag);
            stream_pack_key(pk, "lag_seconds");
            msgpack_pack_double(pk, secs);
        }
    }
}
