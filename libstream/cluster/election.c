/*
 * election.c - partition leader election (election.h): the ISR without its
 * dead members, the leader kept while alive, else the first live ISR member
 * in replicas order, else none (or, unclean, the first live replica).
 */
#include <string.h>
#include <strings.h>

#include "election.h"

bool stream__elect_alive(const stream__meta *md, int32_t id)
{
    const stream__meta_broker *mb = stream__meta_broker_find(md, id);
    return mb != NULL && !mb->fenced;
}

bool stream__elect_unclean_enabled(const stream__meta_topic *t, bool broker_default)
{
    for (uint32_t i = 0; i < t->n_configs; i++)
        if (strcmp(t->configs[i].key, STREAM__ELECT_UNCLEAN_KEY) == 0)
            return strcasecmp(t->configs[i].value, "true") == 0;
    return broker_default;
}

static bool contains(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

bool stream__elect_partition(const stream__meta *md, const stream__meta_topic *t, int32_t p,
                             bool unclean_default, stream__elect_change *out)
{
    const stream__meta_partition *mp = &t->partitions[p];
    memset(out, 0, sizeof(*out));
    out->topic = t;
    out->partition = p;
    out->partition_epoch = mp->partition_epoch;

    /* The ISR's live members, in its order; all of it when none is alive. */
    for (uint32_t i = 0; i < mp->n_isr && i < STREAM__META_MAX_REPLICAS; i++)
        if (stream__elect_alive(md, mp->isr[i]))
            out->isr[out->n_isr++] = mp->isr[i];
    bool isr_alive = out->n_isr > 0;
    if (!isr_alive) {
        out->n_isr = mp->n_isr < STREAM__META_MAX_REPLICAS ? mp->n_isr : STREAM__META_MAX_REPLICAS;
        memcpy(out->isr, mp->isr, out->n_isr * sizeof(int32_t));
    }

    out->leader = -1;
    if (mp->leader >= 0 && isr_alive && contains(out->isr, out->n_isr, mp->leader))
        out->leader = mp->leader;
    for (uint32_t i = 0; out->leader < 0 && isr_alive && i < mp->n_replicas; i++)
        if (contains(out->isr, out->n_isr, mp->replicas[i]))
            out->leader = mp->replicas[i];
    if (out->leader < 0 && stream__elect_unclean_enabled(t, unclean_default)) {
        for (uint32_t i = 0; i < mp->n_replicas; i++) {
            if (stream__elect_alive(md, mp->replicas[i])) {
                out->leader = mp->replicas[i];
                out->isr[0] = mp->replicas[i];
                out->n_isr = 1;
                out->unclean = true;
                break;
            }
        }
    }

    bool same_isr =
        out->n_isr == mp->n_isr && memcmp(out->isr, mp->isr, out->n_isr * sizeof(int32_t)) == 0;
    return out->leader != mp->leader || !same_isr;
}

size_t stream__elect_all(const stream__meta *md, bool unclean_default, stream__elect_fn fn,
                         void *arg)
{
    size_t n = 0;
    size_t nt = stream__meta_topic_count(md);
    stream__elect_change c;
    for (size_t i = 0; i < nt; i++) {
        const stream__meta_topic *t = stream__meta_topic_at(md, i);
        for (int32_t p = 0; p < t->partition_count; p++) {
            if (!stream__elect_partition(md, t, p, unclean_default, &c))
                continue;
            n++;
            if (!fn(arg, &c))
                return n;
        }
    }
    return n;
}

void stream__elect_alters(const stream__elect_change *c, size_t n, stream__meta_alter *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (stream__meta_alter){.topic = c[i].topic->name,
                                      .topic_len = strlen(c[i].topic->name),
                                      .has_topic_id = true,
                                      .partition = c[i].partition,
                                      .leader = c[i].leader,
                                      .isr = {c[i].isr, c[i].n_isr},
                                      .partition_epoch = c[i].partition_epoch};
        memcpy(out[i].topic_id, c[i].topic->id, STREAM__META_TOPIC_ID_BYTES);
    }
}

void stream__elect_place(const int32_t *brokers, uint32_t n_brokers, uint32_t start,
                         int32_t partitions, int32_t rf, int32_t *out)
{
    for (int32_t p = 0; p < partitions; p++)
        for (int32_t j = 0; j < rf; j++)
            out[(size_t)p * (size_t)rf + (size_t)j] =
                brokers[((uint64_t)start + (uint64_t)p + (uint64_t)j) % n_brokers];
}

void stream__elect_health(const stream__meta *md, size_t *under_replicated, size_t *offline)
{
    size_t under = 0, off = 0;
    size_t nt = stream__meta_topic_count(md);
    for (size_t i = 0; i < nt; i++) {
        const stream__meta_topic *t = stream__meta_topic_at(md, i);
        for (int32_t p = 0; p < t->partition_count; p++) {
            const stream__meta_partition *mp = &t->partitions[p];
            under += mp->n_isr < mp->n_replicas;
            off += mp->leader < 0;
        }
    }
    *under_replicated = under;
    *offline = off;
}
