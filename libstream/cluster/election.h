/*
 * election.h - partition leader election: pure functions from the cluster
 * metadata (metadata.h) to the alter_partition changes the controller
 * proposes. No clock, no I/O, no state of their own: the same metadata
 * gives the same changes, so they are unit-tested on hand-made states
 * (tests/unit/test_election.c).
 *
 * A broker is alive when it is registered and not fenced. For one
 * partition, stream__elect_partition computes what it should be:
 *
 *   isr     the current ISR without its dead members, in the same order
 *           (KRaft's behaviour when a broker is fenced). When no member is
 *           alive the ISR is left as it is: its members hold every committed
 *           record, and the first of them to come back leads again, so
 *           nothing acknowledged is lost.
 *   leader  the current leader while it is alive and in the ISR; else the
 *           first replica, in replicas order, that is alive and in the ISR;
 *           else -1 (offline). With unclean election on (the topic's
 *           unclean.leader.election.enable, else the broker default), an
 *           offline partition takes the first live replica instead, with
 *           ISR = {it}: it may lack acknowledged records (Kafka's unclean
 *           election).
 *
 * The same rule covers every event: a fenced broker loses its leaderships
 * and leaves every ISR; an unfenced one leads the offline partitions whose
 * ISR holds it; a periodic pass finds partitions left behind (a change
 * refused as stale, a controller that changed mid-burst).
 *
 * A change carries the partition_epoch it was computed from; apply refuses
 * it when the partition moved on meanwhile (STREAM_ESTALEEPOCH), so a stale
 * change is harmless and the next pass computes a fresh one.
 */
#ifndef STREAM_CLUSTER_ELECTION_H
#define STREAM_CLUSTER_ELECTION_H

#include <stdbool.h>
#include <stdint.h>

#include "metadata.h"

/* The topic config and broker setting that allow unclean election. */
#define STREAM__ELECT_UNCLEAN_KEY "unclean.leader.election.enable"

/* One alter_partition to propose. */
typedef struct stream__elect_change {
    const stream__meta_topic *topic; /* borrowed from the metadata */
    int32_t partition;
    int32_t leader;                         /* -1: none */
    int32_t isr[STREAM__META_MAX_REPLICAS]; /* the new ISR, >= 1 member */
    uint32_t n_isr;
    int32_t partition_epoch; /* the epoch it was computed from */
    bool unclean;            /* the leader comes from outside the ISR */
} stream__elect_change;

/* True when broker id is registered in md and not fenced. */
bool stream__elect_alive(const stream__meta *md, int32_t id);

/* Whether topic t allows unclean election: its override of
 * unclean.leader.election.enable when set ("true"/"false", any case), else
 * broker_default. */
bool stream__elect_unclean_enabled(const stream__meta_topic *t, bool broker_default);

/* Computes partition p of topic t (0 <= p < t->partition_count) as described
 * at the top. Returns true and fills *out when the leader or the ISR should
 * change; false when the partition is as it should be. */
bool stream__elect_partition(const stream__meta *md, const stream__meta_topic *t, int32_t p,
                             bool unclean_default, stream__elect_change *out);

/* Called for each change of stream__elect_all; return false to stop. */
typedef bool (*stream__elect_fn)(void *arg, const stream__elect_change *c);

/* Runs stream__elect_partition over every partition of every topic (in
 * topic name order, partitions in order) and calls fn for each change.
 * Returns the number of changes given to fn. */
size_t stream__elect_all(const stream__meta *md, bool unclean_default, stream__elect_fn fn,
                         void *arg);

/* The changes c[0..n) as alter_partitions entries (out[0..n)), each guarded
 * by its topic's id. out borrows from c (the isr) and from the metadata
 * (the topic's name): encode it before either changes. */
void stream__elect_alters(const stream__elect_change *c, size_t n, stream__meta_alter *out);

/* Replica placement for a new topic (Kafka's, without racks): partition p's
 * rf replicas are the brokers at positions start + p, start + p + 1, ...
 * (mod n_brokers) of brokers[] (the live brokers, by id), so leaderships
 * and replicas spread evenly. Writes partitions * rf ids to out, partition
 * 0's first. Needs 1 <= rf <= n_brokers. */
void stream__elect_place(const int32_t *brokers, uint32_t n_brokers, uint32_t start,
                         int32_t partitions, int32_t rf, int32_t *out);

/* Partitions whose ISR is smaller than their replicas (under-replicated) and
 * partitions without a leader (offline), over the whole metadata. */
void stream__elect_health(const stream__meta *md, size_t *under_replicated, size_t *offline);

#endif /* STREAM_CLUSTER_ELECTION_H */
