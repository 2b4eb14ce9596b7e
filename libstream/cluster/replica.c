/*
 * replica.c - the replica manager (replica.h): makes this broker's logs
 * follow the cluster metadata, as leader or follower of each partition it
 * has a replica of, with Kafka's ISR protocol.
 *
 * Leader. Produce appends here (the broker core stamps the leader epoch
 * into each batch: stream_log_set_leader_epoch). Each follower fetches with
 * replica_id set and says how far its own log is on disk (durable_offset);
 * the replica_fetch hook records it. The high watermark is the lowest
 * durable offset over the ISR, this broker's own included, and never goes
 * down: acks=all completes under it and consumers read below it (the core
 * does both from stream__host_set_high_watermark). acks=all needs the ISR
 * to hold min.insync.replicas, at the append and again when it completes.
 * Every TICK_MS the leader compares its followers with the ISR: a member
 * whose fetches have not reached the log end for replica.lag.time.max.ms is
 * asked out, a replica whose disk has reached the high watermark is asked
 * in (alter_isr, through the controller; the answer comes back as metadata).
 *
 * Follower. On becoming one (a new leader or a new epoch), it first asks the
 * leader for the end of its own latest leader epoch (offset_for_leader_epoch)
 * and truncates what lies past it: records the leader never had, written
 * while this broker led an epoch nobody else followed (KIP-101/279). Then
 * one fetcher per leader broker fetches all the partitions it follows there
 * in one request, appends the batches as they are
 * (stream_log_append_replica), and fetches again once they are on disk here,
 * so that the next fetch tells the leader (fetches do not wait longer than
 * DURABLE_WAIT_MS for the disk). A follower keeps the leader's high
 * watermark (capped at its own log end) for the day it leads.
 *
 * The ISR the high watermark is computed over is the maximal one (Kafka's
 * KIP-497): the committed ISR plus the replicas an alter_isr still in
 * flight asks in, so a replica counts from the moment it is asked for and
 * can never be elected lacking a record this leader acknowledged. A
 * fenced broker is never asked in, and an ask the controller turns down
 * stops counting at once (else a broker that stopped right after its last
 * fetch would hold the high watermark until it came back).
 *
 * Topics. Every topic of the metadata exists locally (this broker creates
 * it, all partitions, when the metadata gets it, and adds the partitions
 * the metadata adds to it, the disk work on libuv's thread pool as the
 * broker's own create_topics does: a topic of thousands of partitions
 * takes seconds to make, which must not stall this broker's clients,
 * heartbeats and fetchers; until the job is done the topic, or its new
 * partitions, are not there yet, then a sync picks them up; partitions it has no
 * replica of stay empty and name their leader to clients); one the
 * metadata loses is deleted here. Topics the metadata never had (from
 * before the cluster) get role LOCAL: the broker serves them as a single
 * node does. Until the first sync (the controller calls it only once this
 * run's registration is applied, so the metadata is current) every
 * partition is refused: a restarted former leader must not serve a
 * partition it no longer leads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "election.h"
#include "peer.h"
#include "replica.h"
#include "stream/batch.h"
#include "stream/prom.h"

#define TICK_MS  50
#define RETRY_MS 100 /* after a failed fetch or truncation */
#define RETRY_SOON_MS                                                                              \
    5                          /* ...refused as not the leader: it may not have applied the        \
                                  change yet (the follower and the new leader learn it from        \
                                  the same metadata entry, in either order) */
#define FETCH_MAX_WAIT_MS  500 /* the leader's long poll */
#define FETCH_MAX_BYTES    (8 << 20)
#define PART_MAX_BYTES     (1 << 20)
#define ISR_ASK_AGAIN_MS   500  /* an unanswered alter_isr is asked again */
#define ISR_JOIN_FRESH_MS  1000 /* a replica joins the ISR only if caught up this recently */
#define DEFAULT_LAG_MAX_MS 10000
#define MAX_FETCHERS       64
#define MAXR               STREAM__META_MAX_REPLICAS

/* The leader's view of one follower. */
typedef struct follower {
    int32_t id;
    int64_t leo;           /* its fetch offset: its log end; -1 before its first fetch */
    int64_t durable;       /* its log is on disk below this; -1 likewise */
    uint64_t caught_up_ms; /* uv_now when a fetch last reached this leader's log end */
} follower;

typedef struct rpart {
    struct rpart *hnext; /* chain of the table by log */
    char topic[STREAM_TOPIC_NAME_MAX + 1];
    int32_t partition;
    stream_log *log;
    int32_t leader, leader_epoch, partition_epoch;
    int32_t replicas[MAXR], isr[MAXR];
    uint32_t n_replicas, n_isr;
    int32_t min_insync;
    bool leading;
    follower fol[MAXR]; /* leading: the other replicas */
    uint32_t n_fol;
    uint64_t isr_asked_ms;    /* leading: last alter_isr sent... */
    int32_t isr_asked_pepoch; /* ...computed from this partition_epoch... */
    int32_t isr_asked[MAXR];  /* ...asking for this ISR */
    uint32_t n_isr_asked;
    int64_t durable_sent; /* following: the durable offset the last fetch told */
    bool need_truncate;   /* following: ask the leader before fetching */
    bool truncating;      /* offset_for_leader_epoch in flight... */
    int32_t trunc_epoch;  /* ...asked while following this leader epoch */
    size_t at;            /* its index in rm->parts */
} rpart;

/* Fetches from one leader broker. */
typedef struct fetcher {
    struct stream__replica *rm;
    int32_t leader;
    char host[STREAM__META_HOST_MAX + 1];
    uint16_t port;
    stream__peer *peer;
    int in_flight;     /* fetches sent, not answered: a long poll, and a report */
    uint64_t retry_at; /* uv_now before which nothing is sent */
    bool used;
} fetcher;

struct stream__replica {
    stream_broker *b;
    int32_t node_id;
    const stream__meta *md; /* the metadata of the last sync (the controller's, long-lived) */
    stream__replica_alter_isr_fn alter_isr;
    void *alter_isr_arg;
    stream__replica_auto_create_fn auto_create;
    void *auto_create_arg;
    rpart **parts; /* every partition with a replica here */
    size_t nparts, cap;
    rpart **htab; /* by log pointer */
    size_t hcap;
    fetcher fetchers[MAX_FETCHERS];
    /* Sets of topic names, sorted (binary search: a sync of ten thousand
     * topics looks each up without walking the others). */
    char (*managed)[STREAM_TOPIC_NAME_MAX + 1]; /* topics created from the metadata */
    size_t nmanaged, managed_cap;
    char (*making)[STREAM_TOPIC_NAME_MAX + 1]; /* topics being created or grown off the loop */
    size_t nmaking, making_cap;
    char (*changed)[STREAM_TOPIC_NAME_MAX + 1]; /* topics changed since the last sync */
    size_t nchanged, changed_cap;
    /* re-read every topic at the next sync (the first, a restore, or a
     * change the set had no memory for) */
    bool all_changed;
    uint64_t synced_topics; /* topics looked at by syncs so far (the debug log says) */
    uv_timer_t tick;
    bool tick_open;
    bool stopped;
    int64_t lag_max_ms;
    /* Metrics (stream__replica_metrics), counted as this node sees them. */
    uint64_t isr_shrinks;      /* the ISR of a partition led here lost members */
    uint64_t isr_expands;      /* ... gained members */
    uint64_t leader_elections; /* this node became a partition's leader */
};

static uint64_t now_ms(stream__replica *rm)
{
    return uv_now(stream__host_loop(rm->b));
}

static bool has(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* The error of an answer or of one of its entries: the wire carries codes
 * positive (protocol.md 5.3); 0 when absent. */
static int wire_err(const msgpack_object *m)
{
    const msgpack_object *e = stream_field_find(m, "err");
    if (e == NULL || e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > INT32_MAX)
        return 0;
    return -(int)e->via.u64;
}

/* "1,2,3" */
static void ids_text(const int32_t *ids, uint32_t n, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? "," : "", (int)ids[i]);
}

/* ---- the table of partitions --------------------------------------------- */

static size_t hslot(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (size_t)(x & (cap - 1));
}

static rpart *find_log(stream__replica *rm, const stream_log *log)
{
    if (rm->hcap == 0)
        return NULL;
    for (rpart *p = rm->htab[hslot(log, rm->hcap)]; p; p = p->hnext)
        if (p->log == log)
            return p;
    return NULL;
}

static int rehash(stream__replica *rm, size_t ncap)
{
    rpart **nt = calloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < rm->nparts; i++) {
        rpart *p = rm->parts[i];
        size_t h = hslot(p->log, ncap);
        p->hnext = nt[h];
        nt[h] = p;
    }
    free(rm->htab);
    rm->htab = nt;
    rm->hcap = ncap;
    return 0;
}

static rpart *part_add(stream__replica *rm, const char *topic, int32_t partition, stream_log *log)
{
    if (rm->nparts == rm->cap) {
        size_t ncap = rm->cap ? rm->cap * 2 : 16;
        rpart **np = realloc(rm->parts, ncap * sizeof(*np));
        if (np == NULL)
            return NULL;
        rm->parts = np;
        rm->cap = ncap;
    }
    rpart *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->partition = partition;
    p->log = log;
    p->leader = -1;
    p->leader_epoch = -1;
    p->isr_asked_pepoch = -1;
    p->at = rm->nparts;
    rm->parts[rm->nparts++] = p;
    if (rm->nparts > rm->hcap / 2) {
        /* The rehash chains every part, this one included. */
        if (rehash(rm, rm->hcap ? rm->hcap * 2 : 64) != 0) {
            rm->nparts--;
            free(p);
            return NULL;
        }
        return p;
    }
    size_t h = hslot(log, rm->hcap);
    p->hnext = rm->htab[h];
    rm->htab[h] = p;
    return p;
}

static void part_remove(stream__replica *rm, rpart *p)
{
    rpart **pp = &rm->htab[hslot(p->log, rm->hcap)];
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = p->hnext;
    rm->parts[p->at] = rm->parts[--rm->nparts];
    rm->parts[p->at]->at = p->at;
    free(p);
}

static rpart *find_name(stream__replica *rm, const char *topic, size_t len, int32_t partition)
{
    for (size_t i = 0; i < rm->nparts; i++) {
        rpart *p = rm->parts[i];
        if (p->partition == partition && strlen(p->topic) == len &&
            memcmp(p->topic, topic, len) == 0)
            return p;
    }
    return NULL;
}

/* ---- leader ---------------------------------------------------------------- */

static follower *find_fol(rpart *p, int32_t id)
{
    for (uint32_t i = 0; i < p->n_fol; i++)
        if (p->fol[i].id == id)
            return &p->fol[i];
    return NULL;
}

/* Lowers *hw to id's durable offset; false when it is not known yet. */
static bool member_bound(stream__replica *rm, rpart *p, int32_t id, int64_t *hw)
{
    if (id == rm->node_id)
        return true;
    follower *f = find_fol(p, id);
    if (f == NULL || f->durable < 0)
        return false; /* not heard from since this broker leads: wait */
    if (f->durable < *hw)
        *hw = f->durable;
    return true;
}

/* Moves the high watermark up to the lowest durable offset over the
 * maximal ISR: the ISR, and the members of an alter_isr still pending
 * (Kafka's KIP-497 rule). A replica asked in counts from the moment it is
 * asked for: once the controller commits the change it may be elected,
 * so nothing it lacks may be acknowledged meanwhile. */
static void update_hw(stream__replica *rm, rpart *p)
{
    int64_t hw = stream_log_durable_offset(p->log);
    for (uint32_t i = 0; i < p->n_isr; i++)
        if (!member_bound(rm, p, p->isr[i], &hw))
            return;
    if (p->isr_asked_pepoch == p->partition_epoch)
        for (uint32_t i = 0; i < p->n_isr_asked; i++)
            if (!has(p->isr, p->n_isr, p->isr_asked[i]) &&
                !member_bound(rm, p, p->isr_asked[i], &hw))
                return;
    int64_t cur;
    stream__host_partition_state(rm->b, p->log, NULL, NULL, NULL, &cur);
    if (hw > cur)
        stream__host_set_high_watermark(rm->b, p->log, hw);
}

static void become_leader(stream__replica *rm, rpart *p)
{
    uint64_t now = now_ms(rm);
    p->leading = true;
    p->need_truncate = false;
    p->n_fol = 0;
    for (uint32_t i = 0; i < p->n_replicas; i++) {
        if (p->replicas[i] == rm->node_id)
            continue;
        /* A full lag period of grace before anyone leaves the ISR. */
        p->fol[p->n_fol++] =
            (follower){.id = p->replicas[i], .leo = -1, .durable = -1, .caught_up_ms = now};
    }
    stream_log_set_leader_epoch(p->log, p->leader_epoch);
    stream__host_set_role(rm->b, p->log, STREAM__ROLE_LEADER, rm->node_id, p->leader_epoch);
    stream__host_log(rm->b, STREAM_BROKER_INFO,
                     "%s-%d: leader in epoch %d (log end %lld, isr of %u)", p->topic,
                     (int)p->partition, (int)p->leader_epoch,
                     (long long)stream_log_end_offset(p->log), (unsigned)p->n_isr);
    update_hw(rm, p);
}

static void become_follower(stream__replica *rm, rpart *p)
{
    p->leading = false;
    p->n_fol = 0;
    p->need_truncate = p->leader >= 0;
    p->truncating = false;
    p->durable_sent = -1;
    stream_log_set_leader_epoch(p->log, -1);
    stream__host_set_role(rm->b, p->log, p->leader >= 0 ? STREAM__ROLE_FOLLOWER : STREAM__ROLE_NONE,
                          p->leader, p->leader_epoch);
    stream__host_log(rm->b, STREAM_BROKER_DEBUG, "%s-%d: follower of node %d in epoch %d", p->topic,
                     (int)p->partition, (int)p->leader, (int)p->leader_epoch);
}

/* Asks the controller for isr (n ids) unless the same change is pending. */
static void ask_isr(stream__replica *rm, rpart *p, const int32_t *isr, uint32_t n)
{
    uint64_t now = now_ms(rm);
    if (rm->alter_isr == NULL ||
        (p->isr_asked_pepoch == p->partition_epoch && now - p->isr_asked_ms < ISR_ASK_AGAIN_MS))
        return;
    char txt[200];
    ids_text(isr, n, txt, sizeof txt);
    stream__host_log(rm->b, STREAM_BROKER_DEBUG,
                     "%s-%d: asking for isr %s (from partition epoch %d)", p->topic,
                     (int)p->partition, txt, (int)p->partition_epoch);
    if (rm->alter_isr(rm->alter_isr_arg, p->topic, p->partition, isr, n, p->partition_epoch) == 0) {
        p->isr_asked_ms = now;
        p->isr_asked_pepoch = p->partition_epoch;
        memcpy(p->isr_asked, isr, n * sizeof(int32_t));
        p->n_isr_asked = n;
    }
}

/* Shrinks or expands the ISR as the followers' progress says. */
static void check_isr(stream__replica *rm, rpart *p)
{
    uint64_t now = now_ms(rm);
    int64_t hw;
    stream__host_partition_state(rm->b, p->log, NULL, NULL, NULL, &hw);
    int32_t isr[MAXR];
    uint32_t n = 0;
    bool changed = false;
    for (uint32_t i = 0; i < p->n_isr; i++) {
        follower *f = find_fol(p, p->isr[i]);
        if (p->isr[i] != rm->node_id && f != NULL &&
            (int64_t)(now - f->caught_up_ms) > rm->lag_max_ms) {
            changed = true; /* out: behind for too long */
            stream__host_log(rm->b, STREAM_BROKER_WARN,
                             "%s-%d: node %d is %lld ms behind: asking it out of the ISR", p->topic,
                             (int)p->partition, (int)f->id, (long long)(now - f->caught_up_ms));
            continue;
        }
        isr[n++] = p->isr[i];
    }
    for (uint32_t i = 0; i < p->n_fol; i++) {
        follower *f = &p->fol[i];
        /* A fenced broker (stopping, or gone) is never asked in: the
         * controller would refuse it, and meanwhile it would count in the
         * maximal ISR and hold the high watermark back (KIP-841). */
        if (!has(p->isr, p->n_isr, f->id) && f->durable >= 0 && f->durable >= hw &&
            f->leo >= stream_log_end_offset(p->log) && now - f->caught_up_ms < ISR_JOIN_FRESH_MS &&
            n < MAXR && rm->md != NULL && stream__elect_alive(rm->md, f->id)) {
            isr[n++] = f->id; /* in: it has everything acknowledged, on disk */
            changed = true;
            stream__host_log(rm->b, STREAM_BROKER_DEBUG,
                             "%s-%d: node %d caught up (log end %lld, on disk %lld, high "
                             "watermark %lld): asking it into the ISR",
                             p->topic, (int)p->partition, (int)f->id, (long long)f->leo,
                             (long long)f->durable, (long long)hw);
        }
    }
    if (changed)
        ask_isr(rm, p, isr, n);
}

/* The replica_fetch hook: a follower's fetch of a partition this broker
 * should lead. */
static int on_replica_fetch(void *arg, stream_log *log, int32_t replica_id, int32_t leader_epoch,
                            int64_t fetch_offset, int64_t durable_offset, char *msg, size_t msg_len)
{
    stream__replica *rm = arg;
    rpart *p = find_log(rm, log);
    if (p == NULL || !p->leading) {
        snprintf(msg, msg_len, "not the leader");
        return STREAM_ENOTLEADER;
    }
    if (leader_epoch >= 0 && leader_epoch < p->leader_epoch) {
        snprintf(msg, msg_len, "leader epoch %d is stale: the current one is %d", (int)leader_epoch,
                 (int)p->leader_epoch);
        return STREAM_ESTALEEPOCH;
    }
    if (leader_epoch > p->leader_epoch) {
        snprintf(msg, msg_len, "leader epoch %d is newer than this leader's %d", (int)leader_epoch,
                 (int)p->leader_epoch);
        return STREAM_ENOTLEADER;
    }
    follower *f = find_fol(p, replica_id);
    if (f == NULL) {
        snprintf(msg, msg_len, "node %d is not a replica of this partition", (int)replica_id);
        return STREAM_ENOBROKER;
    }
    int64_t end = stream_log_end_offset(log);
    if (fetch_offset > end)
        return 0; /* answered EOFFSET by the read: the follower truncates */
    f->leo = fetch_offset;
    f->durable = durable_offset < fetch_offset ? durable_offset : fetch_offset;
    if (fetch_offset >= end)
        f->caught_up_ms = now_ms(rm);
    update_hw(rm, p);
    return 0;
}

static int on_produce_check(void *arg, stream_log *log, int acks, char *msg, size_t msg_len)
{
    stream__replica *rm = arg;
    rpart *p = find_log(rm, log);
    if (p == NULL || acks != -1 || (int32_t)p->n_isr >= p->min_insync)
        return 0;
    snprintf(msg, msg_len,
             "%.150s-%d: %u in-sync replica%s, min.insync.replicas is %d: not acknowledged",
             p->topic, (int)p->partition, (unsigned)p->n_isr, p->n_isr == 1 ? "" : "s",
             (int)p->min_insync);
    return STREAM_ENOTENOUGHREPLICAS;
}

static void on_auto_create(void *arg, const char *topic)
{
    stream__replica *rm = arg;
    if (rm->auto_create != NULL)
        rm->auto_create(rm->auto_create_arg, topic);
}

/* Where clients reach node_id (find_coordinator), from the metadata. */
static int on_node_address(void *arg, int32_t node_id, char *host, size_t host_len, uint16_t *port)
{
    stream__replica *rm = arg;
    const stream__meta_broker *mb =
        rm->md != NULL ? stream__meta_broker_find(rm->md, node_id) : NULL;
    if (mb == NULL || mb->host == NULL)
        return STREAM_ENOBROKER;
    snprintf(host, host_len, "%s", mb->host);
    *port = mb->port;
    return 0;
}

/* ---- follower -------------------------------------------------------------- */

static void kick(fetcher *f);

static fetcher *fetcher_of(stream__replica *rm, int32_t leader)
{
    for (size_t i = 0; i < MAX_FETCHERS; i++)
        if (rm->fetchers[i].used && rm->fetchers[i].leader == leader)
            return &rm->fetchers[i];
    return NULL;
}

static void on_durable(void *arg, stream_log *log, int64_t durable)
{
    (void)durable;
    stream__replica *rm = arg;
    rpart *p = find_log(rm, log);
    if (p == NULL)
        return;
    if (p->leading) {
        update_hw(rm, p);
        return;
    }
    fetcher *f = fetcher_of(rm, p->leader);
    if (f != NULL)
        kick(f);
}

/* Truncation answer: {topics: [{name, partitions: [{partition, err,
 * leader_epoch, end_offset}]}]}, for one partition. */
static void truncate_to(stream__replica *rm, rpart *p, int32_t found_epoch, int64_t leader_end)
{
    int64_t end = stream_log_end_offset(p->log);
    int64_t mine = end;
    if (found_epoch >= 0) {
        int32_t fe;
        int64_t e;
        if (stream_log_epoch_end_offset(p->log, found_epoch, &fe, &e) == 0 && fe == found_epoch &&
            e >= 0 && e < mine)
            mine = e;
    }
    int64_t to = leader_end >= 0 && leader_end < mine ? leader_end : mine;
    if (to < end && to >= stream_log_start_offset(p->log)) {
        int rc = stream_log_truncate_to(p->log, to);
        stream__host_log(rm->b, rc == 0 ? STREAM_BROKER_WARN : STREAM_BROKER_ERROR,
                         "%s-%d: truncated from %lld to %lld (records the leader of epoch %d "
                         "never had)%s%s",
                         p->topic, (int)p->partition, (long long)end, (long long)to,
                         (int)p->leader_epoch,
                         rc == 0 ? "" : ": failed: ", rc == 0 ? "" : stream_strerror(rc));
        if (rc != 0)
            return;
    }
    int64_t hw;
    stream__host_partition_state(rm->b, p->log, NULL, NULL, NULL, &hw);
    if (hw > stream_log_end_offset(p->log))
        stream__host_set_high_watermark(rm->b, p->log, stream_log_end_offset(p->log));
    p->need_truncate = false;
}

static void on_trunc_answer(void *arg, int err, const msgpack_object *resp)
{
    fetcher *f = arg;
    stream__replica *rm = f->rm;
    if (rm->stopped)
        return;
    int64_t rerr = err, found = -1, end = -1, partition = -1;
    const msgpack_object *topics, *parts, *tm, *pm;
    const char *name = NULL;
    size_t nlen = 0;
    if (rerr == 0)
        rerr = wire_err(resp);
    if (rerr == 0 &&
        (stream_field_array(resp, "topics", &topics, NULL, 0) != 0 || topics->via.array.size != 1 ||
         stream_elem_map(topics, 0, "topics", &tm, NULL, 0) != 0 ||
         stream_field_str(tm, "name", &name, &nlen, NULL, 0) != 0 ||
         stream_field_array(tm, "partitions", &parts, NULL, 0) != 0 || parts->via.array.size != 1 ||
         stream_elem_map(parts, 0, "partitions", &pm, NULL, 0) != 0 ||
         stream_field_int(pm, "partition", 0, INT32_MAX, &partition, NULL, 0) != 0))
        rerr = STREAM_EPROTO;
    rpart *p = rerr == 0 ? find_name(rm, name, nlen, (int32_t)partition) : NULL;
    if (rerr == 0)
        rerr = wire_err(pm);
    if (rerr == 0 && (stream_field_int(pm, "leader_epoch", -1, INT32_MAX, &found, NULL, 0) != 0 ||
                      stream_field_int(pm, "end_offset", -1, INT64_MAX, &end, NULL, 0) != 0))
        rerr = STREAM_EPROTO;
    if (rerr != 0) {
        /* Ask again later (every partition of this leader still truncating). */
        for (size_t i = 0; i < rm->nparts; i++)
            if (rm->parts[i]->leader == f->leader)
                rm->parts[i]->truncating = false;
        f->retry_at = now_ms(rm) + (rerr == STREAM_ENOTLEADER ? RETRY_SOON_MS : RETRY_MS);
        return;
    }
    if (p == NULL)
        return;
    p->truncating = false;
    if (p->leading || p->leader != f->leader || p->leader_epoch != p->trunc_epoch)
        return; /* moved on meanwhile: asked again */
    truncate_to(rm, p, (int32_t)found, end);
    kick(f);
}

static void send_truncation(fetcher *f, rpart *p)
{
    stream__replica *rm = f->rm;
    int32_t latest = stream_log_latest_epoch(p->log);
    if (latest < 0) {
        /* Nothing written under an epoch here (an empty log, or records
         * from before the cluster): nothing can diverge. */
        p->need_truncate = false;
        return;
    }
    p->trunc_epoch = p->leader_epoch;
    msgpack_packer *pk = stream__peer_begin(f->peer, STREAM_OP_OFFSET_FOR_LEADER_EPOCH, 2);
    stream_pack_kv_int(pk, "replica_id", rm->node_id);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "name", p->topic);
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    stream_pack_kv_int(pk, "partition", p->partition);
    stream_pack_kv_int(pk, "leader_epoch", latest);
    stream_pack_kv_int(pk, "current_leader_epoch", p->leader_epoch);
    if (stream__peer_send(f->peer, on_trunc_answer, f) != 0) {
        f->retry_at = now_ms(rm) + RETRY_MS;
        return;
    }
    p->truncating = true;
}

/* Applies one partition's entry of a fetch answer. */
static void fetched_part(stream__replica *rm, fetcher *f, rpart *p, const msgpack_object *pm)
{
    int err = wire_err(pm);
    int64_t hw = -1;
    const uint8_t *rec = NULL;
    size_t len = 0;
    if (err == STREAM_EOFFSET) {
        p->need_truncate = true; /* this log is past the leader's: diverged */
        return;
    }
    if (err != 0) {
        /* not the leader (yet): metadata will tell */
        f->retry_at = now_ms(rm) + (err == STREAM_ENOTLEADER ? RETRY_SOON_MS : RETRY_MS);
        return;
    }
    if (stream_field_int(pm, "high_watermark", -1, INT64_MAX, &hw, NULL, 0) != 0 ||
        stream_field_bin(pm, "records", &rec, &len, NULL, 0) != 0)
        return;
    /* Two fetches may be answered from one offset (a long poll and the
     * report sent behind it): what is here already is skipped. */
    int64_t leo = stream_log_end_offset(p->log);
    while (len >= STREAM_BATCH_HEADER_SIZE) {
        int64_t base = (int64_t)stream_load_be64(rec);
        int64_t last = base + (int32_t)stream_load_be32(rec + STREAM_BATCH_OFF_LAST_OFFSET_DELTA);
        size_t size = 12 + (size_t)stream_load_be32(rec + 8);
        if (base >= leo || size > len)
            break;
        if (last >= leo) {
            p->need_truncate = true; /* batches that do not line up: diverged */
            return;
        }
        rec += size;
        len -= size;
    }
    if (len > 0) {
        int64_t end;
        char eb[256];
        int rc = stream_log_append_replica(p->log, rec, len, &end, eb, sizeof eb);
        if (rc == STREAM_EOFFSET) {
            p->need_truncate = true;
        } else if (rc != 0) {
            stream__host_log(rm->b, STREAM_BROKER_ERROR,
                             "%s-%d: cannot append the leader's "
                             "records: %s",
                             p->topic, (int)p->partition, eb);
            f->retry_at = now_ms(rm) + RETRY_MS;
        }
        stream_log_request_flush(p->log);
        stream__host_appended(rm->b, p->log, len);
    }
    int64_t end = stream_log_end_offset(p->log);
    if (hw > end)
        hw = end;
    if (hw >= 0)
        stream__host_set_high_watermark(rm->b, p->log, hw);
}

static void on_fetch_answer(void *arg, int err, const msgpack_object *resp)
{
    fetcher *f = arg;
    stream__replica *rm = f->rm;
    if (f->in_flight > 0)
        f->in_flight--;
    if (rm->stopped)
        return;
    const msgpack_object *topics;
    if (err == 0)
        err = wire_err(resp);
    if (err != 0 || stream_field_array(resp, "topics", &topics, NULL, 0) != 0) {
        f->retry_at = now_ms(rm) + RETRY_MS;
        return;
    }
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *tm, *parts;
        const char *name;
        size_t nlen;
        if (stream_elem_map(topics, i, "topics", &tm, NULL, 0) != 0 ||
            stream_field_str(tm, "name", &name, &nlen, NULL, 0) != 0 ||
            stream_field_array(tm, "partitions", &parts, NULL, 0) != 0)
            continue;
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *pm;
            int64_t partition;
            if (stream_elem_map(parts, j, "partitions", &pm, NULL, 0) != 0 ||
                stream_field_int(pm, "partition", 0, INT32_MAX, &partition, NULL, 0) != 0)
                continue;
            rpart *p = find_name(rm, name, nlen, (int32_t)partition);
            if (p != NULL && !p->leading && p->leader == f->leader && !p->need_truncate)
                fetched_part(rm, f, p, pm);
        }
    }
    kick(f);
}

/* Sends what the fetcher has to send: truncation questions first, then one
 * fetch for every partition ready to fetch. With none in flight it is a long
 * poll; with the long poll in flight, a second one (max_wait 0) goes out as
 * soon as this disk has more than the last fetch told: the leader learns
 * the durable offsets when the request arrives (its high watermark moves,
 * acks=all completes), though the answer waits behind the long poll. */
static void kick(fetcher *f)
{
    stream__replica *rm = f->rm;
    uint64_t now = now_ms(rm);
    if (rm->stopped || !f->used || now < f->retry_at)
        return;
    if (f->peer == NULL) {
        f->peer = stream__peer_new(stream__host_loop(rm->b), f->host, f->port,
                                   "stream-broker replica fetcher",
                                   stream__host_tls_client(rm->b));
        if (f->peer == NULL)
            return;
    }
    for (size_t i = 0; i < rm->nparts; i++) {
        rpart *p = rm->parts[i];
        if (!p->leading && p->leader == f->leader && p->need_truncate && !p->truncating)
            send_truncation(f, p); /* (may find nothing to ask and clear need_truncate) */
    }
    size_t n = 0;
    bool unreported = false;
    for (size_t i = 0; i < rm->nparts; i++) {
        rpart *p = rm->parts[i];
        if (p->leading || p->leader != f->leader || p->need_truncate || p->truncating)
            continue;
        n++;
        if (stream_log_durable_offset(p->log) > p->durable_sent)
            unreported = true;
    }
    if (n == 0 || f->in_flight >= 2 || (f->in_flight == 1 && !unreported))
        return;
    msgpack_packer *pk = stream__peer_begin(f->peer, STREAM_OP_FETCH, 5);
    stream_pack_kv_int(pk, "replica_id", rm->node_id);
    stream_pack_kv_int(pk, "max_wait_ms", f->in_flight == 0 ? FETCH_MAX_WAIT_MS : 0);
    stream_pack_kv_int(pk, "min_bytes", 1);
    stream_pack_kv_int(pk, "max_bytes", FETCH_MAX_BYTES);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < rm->nparts; i++) {
        rpart *p = rm->parts[i];
        if (p->leading || p->leader != f->leader || p->need_truncate || p->truncating)
            continue;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", p->topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, 1);
        msgpack_pack_map(pk, 5);
        stream_pack_kv_int(pk, "partition", p->partition);
        stream_pack_kv_int(pk, "offset", stream_log_end_offset(p->log));
        stream_pack_kv_int(pk, "max_bytes", PART_MAX_BYTES);
        stream_pack_kv_int(pk, "leader_epoch", p->leader_epoch);
        p->durable_sent = stream_log_durable_offset(p->log);
        stream_pack_kv_int(pk, "durable_offset", p->durable_sent);
    }
    if (stream__peer_send(f->peer, on_fetch_answer, f) != 0) {
        f->retry_at = now + RETRY_MS;
        return;
    }
    f->in_flight++;
}

/* ---- matching the metadata ------------------------------------------------- */

static void fetcher_drop(fetcher *f)
{
    stream__peer_free(f->peer);
    memset(f, 0, sizeof(*f));
}

/* The fetchers match the leaders followed now (at the addresses the
 * metadata gives). */
static void sync_fetchers(stream__replica *rm, const stream__meta *md)
{
    for (size_t i = 0; i < MAX_FETCHERS; i++) {
        fetcher *f = &rm->fetchers[i];
        if (!f->used)
            continue;
        bool needed = false;
        for (size_t k = 0; k < rm->nparts && !needed; k++)
            needed = !rm->parts[k]->leading && rm->parts[k]->leader == f->leader;
        const stream__meta_broker *mb = stream__meta_broker_find(md, f->leader);
        if (!needed || mb == NULL || mb->port != f->port || strcmp(mb->host, f->host) != 0)
            fetcher_drop(f);
    }
    for (size_t k = 0; k < rm->nparts; k++) {
        rpart *p = rm->parts[k];
        if (p->leading || p->leader < 0 || fetcher_of(rm, p->leader) != NULL)
            continue;
        const stream__meta_broker *mb = stream__meta_broker_find(md, p->leader);
        if (mb == NULL)
            continue;
        for (size_t i = 0; i < MAX_FETCHERS; i++) {
            fetcher *f = &rm->fetchers[i];
            if (f->used)
                continue;
            f->used = true;
            f->rm = rm;
            f->leader = p->leader;
            snprintf(f->host, sizeof(f->host), "%s", mb->host);
            f->port = mb->port;
            break;
        }
    }
}

/* The topic's overrides from the metadata, as a topic config (NULL: none or
 * no memory; keys this broker does not know are skipped). */
static stream_config *topic_overrides(const stream__meta_topic *t)
{
    if (t->n_configs == 0)
        return NULL;
    stream_config *cfg = stream_config_new_topic();
    for (uint32_t i = 0; cfg != NULL && i < t->n_configs; i++)
        (void)stream_config_set(cfg, t->configs[i].key, t->configs[i].value, NULL, 0);
    return cfg;
}

static int32_t min_insync_of(stream__replica *rm, const stream__meta_topic *t)
{
    for (uint32_t i = 0; i < t->n_configs; i++)
        if (strcmp(t->configs[i].key, "min.insync.replicas") == 0)
            return (int32_t)strtol(t->configs[i].value, NULL, 10);
    const stream_config *cfg = stream__host_config(rm->b);
    if (stream_config_setting_find("min.insync.replicas", false) != NULL)
        return (int32_t)stream_config_get_int(cfg, "min.insync.replicas");
    return 1;
}

typedef char topic_name[STREAM_TOPIC_NAME_MAX + 1];

/* A sorted set of topic names (managed, making, changed): the position of
 * name, or -1 with *ins (when not NULL) where it would go. */
static long name_find(topic_name *names, size_t n, const char *name, size_t *ins)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(names[mid], name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (ins != NULL)
        *ins = lo;
    return -1;
}

static long name_pos(topic_name *names, size_t n, const char *name)
{
    return name_find(names, n, name, NULL);
}

static bool name_add(topic_name **names, size_t *n, size_t *cap, const char *name)
{
    size_t at = 0;
    if (name_find(*names, *n, name, &at) >= 0)
        return true;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *nm = realloc(*names, ncap * sizeof(**names));
        if (nm == NULL)
            return false;
        *names = nm;
        *cap = ncap;
    }
    memmove(*names + at + 1, *names + at, (*n - at) * sizeof(**names));
    snprintf((*names)[at], sizeof(**names), "%s", name);
    (*n)++;
    return true;
}

static void name_remove(topic_name *names, size_t *n, const char *name)
{
    long i = name_pos(names, *n, name);
    if (i >= 0) {
        memmove(names + i, names + i + 1, (*n - (size_t)i - 1) * sizeof(*names));
        (*n)--;
    }
}

static bool is_managed(stream__replica *rm, const char *name)
{
    return name_pos(rm->managed, rm->nmanaged, name) >= 0;
}

static void manage(stream__replica *rm, const char *name)
{
    (void)name_add(&rm->managed, &rm->nmanaged, &rm->managed_cap, name);
}

/* ---- topics made off the loop --------------------------------------------------- */

typedef struct making_job {
    stream__replica *rm;
    char name[STREAM_TOPIC_NAME_MAX + 1];
    bool grow;
} making_job;

/* The thread pool's work is done (the topic or its partitions are in the
 * store, or not): sync again to pick them up. A failure is only logged and
 * retried at the next metadata change, not at once (the same error would
 * come back: an open-file limit, a full disk). */
static void on_made(void *arg, int rc, const char *msg)
{
    making_job *j = arg;
    stream__replica *rm = j->rm;
    name_remove(rm->making, &rm->nmaking, j->name);
    if (rc != 0)
        stream__host_log(rm->b, STREAM_BROKER_ERROR, "cluster: cannot %s topic %s here: %s",
                         j->grow ? "add partitions to" : "create", j->name, msg);
    else
        manage(rm, j->name); /* deleted from the metadata meanwhile: the sync deletes it */
    if (rc == 0)
        stream__replica_topic_changed(rm, j->name);
    free(j);
    if (rc == 0 && !rm->stopped && rm->md != NULL)
        stream__replica_sync(rm, rm->md);
}

/* Starts making topic mt here (grow: its partitions the store lacks). */
static void make_topic(stream__replica *rm, const stream__meta_topic *mt, bool grow)
{
    char msg[512];
    making_job *j = calloc(1, sizeof(*j));
    if (j == NULL || !name_add(&rm->making, &rm->nmaking, &rm->making_cap, mt->name)) {
        free(j);
        return; /* out of memory: the next sync tries again */
    }
    j->rm = rm;
    j->grow = grow;
    snprintf(j->name, sizeof(j->name), "%s", mt->name);
    int rc;
    if (grow) {
        rc = stream__host_add_partitions_async(rm->b, mt->name, mt->partition_count, on_made, j,
                                               msg, sizeof msg);
    } else {
        stream_config *ov = topic_overrides(mt);
        rc = stream__host_create_topic_async(rm->b, mt->name, mt->partition_count, ov,
                                             stream_topic_is_internal(mt->name, strlen(mt->name)),
                                             on_made, j, msg, sizeof msg);
        stream_config_free(ov);
    }
    if (rc != 0) {
        name_remove(rm->making, &rm->nmaking, mt->name);
        free(j);
        stream__host_log(rm->b, STREAM_BROKER_ERROR, "cluster: cannot %s topic %s here: %s",
                         grow ? "add partitions to" : "create", mt->name, msg);
    }
}

/* One partition of the metadata with a replica here. */
static void sync_part(stream__replica *rm, const stream__meta_topic *mt, int32_t i, stream_log *log,
                      int32_t min_insync)
{
    const stream__meta_partition *mp = &mt->partitions[i];
    rpart *p = find_log(rm, log);
    bool fresh = p == NULL;
    if (fresh && (p = part_add(rm, mt->name, i, log)) == NULL)
        return;
    bool moved = fresh || p->leader != mp->leader || p->leader_epoch != mp->leader_epoch;
    p->leader = mp->leader;
    p->leader_epoch = mp->leader_epoch;
    p->partition_epoch = mp->partition_epoch;
    p->n_replicas = mp->n_replicas;
    memcpy(p->replicas, mp->replicas, mp->n_replicas * sizeof(int32_t));
    if (!fresh && (p->n_isr != mp->n_isr || memcmp(p->isr, mp->isr, mp->n_isr * sizeof(int32_t)))) {
        if (mp->leader == rm->node_id && !moved && mp->n_isr < p->n_isr)
            rm->isr_shrinks++;
        else if (mp->leader == rm->node_id && !moved && mp->n_isr > p->n_isr)
            rm->isr_expands++;
        char was[200], now[200];
        ids_text(p->isr, p->n_isr, was, sizeof was);
        ids_text(mp->isr, mp->n_isr, now, sizeof now);
        stream__host_log(rm->b, STREAM_BROKER_DEBUG, "%s-%d: isr %s -> %s (partition epoch %d)",
                         mt->name, (int)i, was, now, (int)mp->partition_epoch);
    }
    p->n_isr = mp->n_isr;
    memcpy(p->isr, mp->isr, mp->n_isr * sizeof(int32_t));
    p->min_insync = min_insync;
    if (mp->leader == rm->node_id) {
        if (moved || !p->leading) {
            rm->leader_elections++;
            become_leader(rm, p);
        } else
            update_hw(rm, p); /* the ISR may have shrunk */
    } else if (moved || p->leading) {
        become_follower(rm, p);
    }
}

/* Gives up the replica of log (moved away, or its topic left the
 * metadata), if it has one here. */
static void forget_part(stream__replica *rm, stream_log *log)
{
    rpart *p = find_log(rm, log);
    if (p == NULL)
        return;
    stream__host_set_role(rm->b, log, STREAM__ROLE_NONE, -1, p->leader_epoch);
    part_remove(rm, p);
}

/* Makes this broker match the metadata about one topic: created or grown
 * here, each partition led, followed or only named, or deleted here when
 * the metadata lost it. A topic the metadata never had is served as a
 * single node serves it. */
static void sync_topic(stream__replica *rm, const stream__meta *md, const char *name)
{
    stream_broker *b = rm->b;
    stream_topic *t = stream_store_topic(stream__host_store(b), name);
    const stream__meta_topic *mt = stream__meta_topic_find(md, name, strlen(name));
    bool making = name_pos(rm->making, rm->nmaking, name) >= 0;
    rm->synced_topics++;
    if (mt == NULL) {
        if (!is_managed(rm, name)) {
            for (int32_t i = 0; t != NULL && i < t->partition_count; i++)
                stream__host_set_role(b, t->partitions[i], STREAM__ROLE_LOCAL, rm->node_id, -1);
            return;
        }
        for (int32_t i = 0; t != NULL && i < t->partition_count; i++)
            forget_part(rm, t->partitions[i]);
        if (making)
            return; /* deleted once its job is done */
        char msg[512];
        if (t != NULL && stream__host_delete_topic(b, name, msg, sizeof msg) != 0)
            stream__host_log(b, STREAM_BROKER_ERROR, "cluster: cannot delete topic %s here: %s",
                             name, msg);
        name_remove(rm->managed, &rm->nmanaged, name);
        return;
    }
    if (t == NULL) {
        if (!making)
            make_topic(rm, mt, false); /* synced once made */
        return;
    }
    /* The topic grew in the metadata: its new partitions here too. */
    if (t->partition_count < mt->partition_count && !making)
        make_topic(rm, mt, true);
    manage(rm, name);
    int32_t min_insync = min_insync_of(rm, mt);
    for (int32_t i = 0; i < mt->partition_count && i < t->partition_count; i++) {
        const stream__meta_partition *mp = &mt->partitions[i];
        if (has(mp->replicas, mp->n_replicas, rm->node_id)) {
            sync_part(rm, mt, i, t->partitions[i], min_insync);
        } else {
            /* No replica here (any more): clients are told who leads it. */
            forget_part(rm, t->partitions[i]);
            stream__host_set_role(b, t->partitions[i], STREAM__ROLE_NONE, mp->leader,
                                  mp->leader_epoch);
        }
    }
}

void stream__replica_topic_changed(stream__replica *rm, const char *topic)
{
    if (rm != NULL && !rm->all_changed &&
        !name_add(&rm->changed, &rm->nchanged, &rm->changed_cap, topic))
        rm->all_changed = true; /* out of memory: re-read everything */
}

void stream__replica_all_changed(stream__replica *rm)
{
    if (rm != NULL)
        rm->all_changed = true;
}

/* Every topic a sync may have to look at: the metadata's, the store's and
 * the ones made from the metadata (deleted from it since), into the
 * changed set; false when out of memory. */
static bool change_all(stream__replica *rm, const stream__meta *md)
{
    stream_store *store = stream__host_store(rm->b);
    bool ok = true;
    for (size_t k = 0; ok && k < stream__meta_topic_count(md); k++)
        ok = name_add(&rm->changed, &rm->nchanged, &rm->changed_cap,
                      stream__meta_topic_at(md, k)->name);
    for (size_t k = 0; ok && k < stream_store_topic_count(store); k++)
        ok = name_add(&rm->changed, &rm->nchanged, &rm->changed_cap,
                      stream_store_topic_at(store, k)->name);
    for (size_t k = 0; ok && k < rm->nmanaged; k++)
        ok = name_add(&rm->changed, &rm->nchanged, &rm->changed_cap, rm->managed[k]);
    return ok;
}

void stream__replica_metrics(const stream__replica *rm, stream_buf *out)
{
    stream_prom_family(out, "stream_isr_shrinks_total", STREAM_PROM_COUNTER,
                       "ISR changes that removed replicas of partitions led here.");
    stream_prom_sample(out, "stream_isr_shrinks_total", NULL, 0, (double)rm->isr_shrinks);
    stream_prom_family(out, "stream_isr_expands_total", STREAM_PROM_COUNTER,
                       "ISR changes that added replicas of partitions led here.");
    stream_prom_sample(out, "stream_isr_expands_total", NULL, 0, (double)rm->isr_expands);
    stream_prom_family(out, "stream_leader_elections_total", STREAM_PROM_COUNTER,
                       "Times this broker became a partition's leader.");
    stream_prom_sample(out, "stream_leader_elections_total", NULL, 0, (double)rm->leader_elections);
    size_t under = 0;
    for (size_t i = 0; i < rm->nparts; i++)
        if (rm->parts[i]->leading && rm->parts[i]->n_isr < rm->parts[i]->n_replicas)
            under++;
    stream_prom_family(out, "stream_partitions_under_replicated", STREAM_PROM_GAUGE,
                       "Partitions led here whose ISR is smaller than their replica set.");
    stream_prom_sample(out, "stream_partitions_under_replicated", NULL, 0, (double)under);
    stream_prom_family(out, "stream_replica_fetch_lag_records", STREAM_PROM_GAUGE,
                       "Partitions led here: records the furthest follower lacks (its fetch "
                       "offset to this log end; before its first fetch, the whole log).");
    for (size_t i = 0; i < rm->nparts; i++) {
        const rpart *p = rm->parts[i];
        if (!p->leading || p->n_fol == 0)
            continue;
        int64_t end = stream_log_end_offset(p->log), lag = 0;
        for (uint32_t k = 0; k < p->n_fol; k++) {
            int64_t leo = p->fol[k].leo >= 0 ? p->fol[k].leo : 0;
            if (end - leo > lag)
                lag = end - leo;
        }
        char part[16];
        snprintf(part, sizeof(part), "%d", (int)p->partition);
        stream_prom_label l[] = {{"topic", p->topic}, {"partition", part}};
        stream_prom_sample(out, "stream_replica_fetch_lag_records", l, 2, (double)lag);
    }
}

void stream__replica_sync(stream__replica *rm, const stream__meta *md)
{
    if (rm->stopped)
        return;
    rm->md = md;
    if (rm->all_changed) {
        if (!change_all(rm, md)) {
            stream__host_log(rm->b, STREAM_BROKER_ERROR,
                             "cluster: out of memory syncing the replicas: tried again at the "
                             "next change");
            return;
        }
        rm->all_changed = false;
    }
    /* Only the topics changed since the last sync: a change costs its
     * topic, not every topic (a create of ten thousand topics one by one
     * re-read them all each time). The set is taken first: a sync may
     * start jobs whose ends add to it again. */
    size_t n = rm->nchanged;
    topic_name *names = rm->changed;
    rm->changed = NULL;
    rm->nchanged = rm->changed_cap = 0;
    uint64_t before = rm->synced_topics;
    for (size_t i = 0; i < n; i++)
        sync_topic(rm, md, names[i]);
    free(names);
    if (n > 0)
        stream__host_log(rm->b, STREAM_BROKER_DEBUG,
                         "cluster: replica sync of %llu topic(s), %llu in all since start",
                         (unsigned long long)(rm->synced_topics - before),
                         (unsigned long long)rm->synced_topics);
    sync_fetchers(rm, md);
    for (size_t i = 0; i < MAX_FETCHERS; i++)
        if (rm->fetchers[i].used)
            kick(&rm->fetchers[i]);
}

/* ---- the tick ---------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    stream__replica *rm = t->data;
    if (rm->stopped)
        return;
    for (size_t i = 0; i < rm->nparts; i++)
        if (rm->parts[i]->leading)
            check_isr(rm, rm->parts[i]);
    for (size_t i = 0; i < MAX_FETCHERS; i++)
        if (rm->fetchers[i].used)
            kick(&rm->fetchers[i]);
}

/* ---- offset_for_leader_epoch (the leader answers) ----------------------------- */

void stream__replica_op_offset_for_epoch(stream__replica *rm, stream__req *r, uint64_t id,
                                         const msgpack_object *m)
{
    char msg[512];
    const msgpack_object *topics;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof msg);
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++) {
        const msgpack_object *tm, *parts;
        const char *name;
        size_t len;
        rc = stream_elem_map(topics, i, "topics", &tm, msg, sizeof msg);
        if (rc == 0)
            rc = stream_field_str(tm, "name", &name, &len, msg, sizeof msg);
        if (rc == 0)
            rc = stream_field_array(tm, "partitions", &parts, msg, sizeof msg);
        for (uint32_t j = 0; rc == 0 && j < parts->via.array.size; j++) {
            const msgpack_object *pm;
            int64_t v;
            rc = stream_elem_map(parts, j, "partitions", &pm, msg, sizeof msg);
            if (rc == 0)
                rc = stream_field_int(pm, "partition", 0, INT32_MAX, &v, msg, sizeof msg);
            if (rc == 0)
                rc = stream_field_int(pm, "leader_epoch", -1, INT32_MAX, &v, msg, sizeof msg);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "current_leader_epoch", -1, INT32_MAX, -1, &v, msg,
                                          sizeof msg);
        }
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, topics->via.array.size);
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *tm, *parts;
        const char *name;
        size_t len;
        stream_elem_map(topics, i, "topics", &tm, NULL, 0);
        stream_field_str(tm, "name", &name, &len, NULL, 0);
        stream_field_array(tm, "partitions", &parts, NULL, 0);
        msgpack_pack_map(&f.pk, 2);
        stream_pack_key(&f.pk, "name");
        msgpack_pack_str(&f.pk, len);
        msgpack_pack_str_body(&f.pk, name, len);
        stream_pack_key(&f.pk, "partitions");
        msgpack_pack_array(&f.pk, parts->via.array.size);
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *pm;
            int64_t partition, epoch, current;
            stream_elem_map(parts, j, "partitions", &pm, NULL, 0);
            stream_field_int(pm, "partition", 0, INT32_MAX, &partition, NULL, 0);
            stream_field_int(pm, "leader_epoch", -1, INT32_MAX, &epoch, NULL, 0);
            stream_field_int_opt(pm, "current_leader_epoch", -1, INT32_MAX, -1, &current, NULL, 0);
            rpart *p = find_name(rm, name, len, (int32_t)partition);
            int err = 0;
            int32_t found = -1;
            int64_t end = -1;
            if (p == NULL || !p->leading) {
                err = STREAM_ENOTLEADER;
                snprintf(msg, sizeof msg, "this broker does not lead that partition");
            } else if (current >= 0 && current < p->leader_epoch) {
                err = STREAM_ESTALEEPOCH;
                snprintf(msg, sizeof msg, "leader epoch %d is stale: the current one is %d",
                         (int)current, (int)p->leader_epoch);
            } else if (current > p->leader_epoch) {
                err = STREAM_ENOTLEADER;
                snprintf(msg, sizeof msg, "leader epoch %d is newer than this leader's %d",
                         (int)current, (int)p->leader_epoch);
            } else {
                err = stream_log_epoch_end_offset(p->log, (int32_t)epoch, &found, &end);
                if (err != 0)
                    snprintf(msg, sizeof msg, "%s", stream_strerror(err));
            }
            msgpack_pack_map(&f.pk, 3 + stream_err_fields(err));
            stream_pack_kv_int(&f.pk, "partition", partition);
            stream_pack_err(&f.pk, err, msg);
            stream_pack_kv_int(&f.pk, "leader_epoch", err ? -1 : found);
            stream_pack_kv_int(&f.pk, "end_offset", err ? -1 : end);
        }
    }
    stream__host_reply_finish(r, &f, id);
}

/* ---- life cycle ---------------------------------------------------------------- */

int stream__replica_start(stream_broker *b, int32_t node_id, stream__replica **out, char *errbuf,
                          size_t errbuf_len)
{
    stream__replica *rm = calloc(1, sizeof(*rm));
    *out = rm;
    if (rm == NULL) {
        snprintf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    rm->b = b;
    rm->node_id = node_id;
    rm->lag_max_ms = DEFAULT_LAG_MAX_MS;
    rm->all_changed = true; /* the first sync reads everything */
    if (stream_config_setting_find("replica.lag.time.max.ms", false) != NULL)
        rm->lag_max_ms = stream_config_get_int(stream__host_config(b), "replica.lag.time.max.ms");
    stream__host_replication hooks = {
        .replica_fetch = on_replica_fetch,
        .durable = on_durable,
        .produce_check = on_produce_check,
        .auto_create = on_auto_create,
        .node_address = on_node_address,
    };
    stream__host_set_replication(b, &hooks, rm);
    uv_timer_init(stream__host_loop(b), &rm->tick);
    rm->tick.data = rm;
    rm->tick_open = true;
    uv_timer_start(&rm->tick, on_tick, TICK_MS, TICK_MS);
    return 0;
}

void stream__replica_isr_refused(stream__replica *rm, const char *topic, int32_t partition,
                                 int32_t partition_epoch)
{
    if (rm == NULL || rm->stopped)
        return;
    rpart *p = find_name(rm, topic, strlen(topic), partition);
    if (p == NULL || !p->leading || p->isr_asked_pepoch != partition_epoch)
        return;
    /* Not applied: the maximal ISR is the committed one again, and the
     * same change may be asked for at once. */
    p->isr_asked_pepoch = -1;
    p->n_isr_asked = 0;
    update_hw(rm, p);
}

void stream__replica_set_alter_isr(stream__replica *rm, stream__replica_alter_isr_fn fn, void *arg)
{
    rm->alter_isr = fn;
    rm->alter_isr_arg = arg;
}

void stream__replica_set_auto_create(stream__replica *rm, stream__replica_auto_create_fn fn,
                                     void *arg)
{
    rm->auto_create = fn;
    rm->auto_create_arg = arg;
}

void stream__replica_stop(stream__replica *rm)
{
    if (rm == NULL || rm->stopped)
        return;
    rm->stopped = true;
    if (rm->tick_open) {
        uv_close((uv_handle_t *)&rm->tick, NULL);
        rm->tick_open = false;
    }
    for (size_t i = 0; i < MAX_FETCHERS; i++)
        if (rm->fetchers[i].used)
            fetcher_drop(&rm->fetchers[i]);
}

void stream__replica_free(stream__replica *rm)
{
    if (rm == NULL)
        return;
    while (rm->nparts > 0)
        part_remove(rm, rm->parts[rm->nparts - 1]);
    free(rm->parts);
    free(rm->htab);
    free(rm->managed);
    free(rm->making);
    free(rm->changed);
    free(rm);
}
