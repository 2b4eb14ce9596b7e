/*
 * test_metadata.c - the cluster metadata state machine
 * (libstream/cluster/metadata.c, metadata_codec.c): every command and its
 * errors, epochs, idempotence by request id, events, the command codec,
 * snapshot round trips, hostile snapshots, and allocation failure at every
 * point of every command leaving the state as it was.
 *
 * Commands are built with the module's own encoders and applied with
 * increasing log indexes, as the quorum would.
 *
 * Built by the Makefile with the other unit tests; it links with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (TEST_LDFLAGS_test_metadata)
 * to fail each allocation in turn.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/election.h"
#include "cluster/metadata.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/partition.h"
#include "stream/proto.h"

/* ---- allocation failure on demand (linked with --wrap) ----------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

/* -1: allocations succeed; k >= 0: the allocation after k more fails (once). */
static long fail_after = -1;

static bool should_fail(void)
{
    if (fail_after < 0)
        return false;
    if (fail_after-- == 0) {
        fail_after = -1;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

/* ---- fixture ----------------------------------------------------------------- */

typedef struct seen {
    stream__meta_event_type type;
    uint64_t index;
    int32_t broker;
    char topic[256];
    int32_t partition, previous_leader;
    bool leader_changed, isr_changed;
} seen;

typedef struct fx {
    stream__meta *md;
    stream_buf b;   /* the command being built */
    uint64_t index; /* the last log index used */
    uint64_t seq;   /* the last request seq used */
    seen ev[64];    /* the first 64 events, in order */
    int n_ev;       /* events seen */
} fx;

static void on_event(void *arg, const stream__meta_event *e)
{
    fx *f = arg;
    if (f->n_ev++ >= 64)
        return; /* counted, not kept */
    seen *s = &f->ev[f->n_ev - 1];
    memset(s, 0, sizeof *s);
    s->type = e->type;
    s->index = e->index;
    s->broker = e->broker != NULL ? e->broker->id : -1;
    if (e->topic != NULL)
        snprintf(s->topic, sizeof s->topic, "%s", e->topic->name);
    s->partition = e->partition;
    s->previous_leader = e->previous_leader;
    s->leader_changed = e->leader_changed;
    s->isr_changed = e->isr_changed;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->md = stream__meta_new("cluster-1");
    assert_non_null(f->md);
    stream__meta_set_event_cb(f->md, on_event, f);
    stream_buf_init(&f->b);
    f->index = 100;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    stream__meta_free(f->md);
    stream_buf_release(&f->b);
    free(f);
    return 0;
}

static stream__meta_req req(fx *f)
{
    return (stream__meta_req){7, ++f->seq};
}

/* Applies the command in f->b at the next index (gaps of 2: Raft's own
 * entries take indexes too) and empties f->b. */
static int apply(fx *f)
{
    f->index += 2;
    int rc = stream__meta_apply(f->md, f->b.data, f->b.len, f->index);
    stream_buf_reset(&f->b);
    return rc;
}

static const stream__meta_broker *broker(fx *f, int32_t id)
{
    const stream__meta_broker *b = stream__meta_broker_find(f->md, id);
    assert_non_null(b);
    return b;
}

static const stream__meta_topic *topic(fx *f, const char *name)
{
    return stream__meta_topic_find(f->md, name, strlen(name));
}

static int register_broker(fx *f, int32_t id)
{
    char host[32];
    snprintf(host, sizeof host, "10.0.0.%d", (int)id);
    assert_int_equal(
        stream__meta_encode_register_broker(&f->b, req(f), id, host, (uint16_t)(9000 + id)), 0);
    return apply(f);
}

static int fence(fx *f, int32_t id, int64_t epoch, bool on)
{
    int rc = on ? stream__meta_encode_fence_broker(&f->b, req(f), id, epoch)
                : stream__meta_encode_unfence_broker(&f->b, req(f), id, epoch);
    assert_int_equal(rc, 0);
    return apply(f);
}

static void topic_id(uint8_t id[16], uint8_t tag)
{
    memset(id, 0, 16);
    id[0] = 0xab;
    id[15] = tag;
}

static int create_topic(fx *f, const char *name, uint8_t tag, int32_t parts, int32_t rf,
                        const int32_t *replicas, const stream__meta_kv *cfg, uint32_t n_cfg)
{
    uint8_t id[16];
    topic_id(id, tag);
    assert_int_equal(
        stream__meta_encode_create_topic(&f->b, req(f), name, id, parts, rf, replicas, cfg, n_cfg),
        0);
    return apply(f);
}

static int alter_partition(fx *f, const char *name, int32_t partition, int32_t leader,
                           const int32_t *isr, uint32_t n_isr, int32_t epoch)
{
    assert_int_equal(stream__meta_encode_alter_partition(&f->b, req(f), name, NULL, partition,
                                                         leader, isr, n_isr, epoch),
                     0);
    return apply(f);
}

static stream__meta_kv kv(const char *k, const char *v)
{
    return (stream__meta_kv){k, strlen(k), v, v != NULL ? strlen(v) : 0};
}

/* Brokers 1..3 registered, 2 and 3 unfenced (1 stays fenced). */
static void three_brokers(fx *f)
{
    for (int32_t id = 1; id <= 3; id++)
        assert_int_equal(register_broker(f, id), 0);
    assert_int_equal(fence(f, 2, broker(f, 2)->epoch, false), 0);
    assert_int_equal(fence(f, 3, broker(f, 3)->epoch, false), 0);
}

static const int32_t rf3[] = {1, 2, 3, 2, 3, 1, 3, 1, 2};

static void snapshot_of(const stream__meta *md, stream_buf *out)
{
    stream_buf_reset(out);
    assert_int_equal(stream__meta_snapshot(md, out), 0);
}

/* ---- brokers ------------------------------------------------------------------ */

static void test_register_gives_the_log_index_as_epoch_and_starts_fenced(void **state)
{
    fx *f = *state;
    assert_int_equal(register_broker(f, 5), 0);
    const stream__meta_broker *b = broker(f, 5);
    assert_int_equal(b->epoch, (int64_t)f->index);
    assert_true(b->fenced);
    assert_string_equal(b->host, "10.0.0.5");
    assert_int_equal(b->port, 9005);
    assert_int_equal(f->n_ev, 1);
    assert_int_equal(f->ev[0].type, STREAM__META_BROKER_REGISTERED);
    assert_int_equal(f->ev[0].broker, 5);
    assert_int_equal(f->ev[0].index, f->index);

    assert_int_equal(fence(f, 5, b->epoch, false), 0);
    assert_false(broker(f, 5)->fenced);
    int64_t old = broker(f, 5)->epoch;
    /* A re-registration (a restarted broker): new epoch, new address, fenced. */
    assert_int_equal(stream__meta_encode_register_broker(&f->b, req(f), 5, "broker5.example", 9999),
                     0);
    assert_int_equal(apply(f), 0);
    b = broker(f, 5);
    assert_true(b->epoch > old);
    assert_true(b->fenced);
    assert_string_equal(b->host, "broker5.example");
    assert_int_equal(b->port, 9999);
    assert_int_equal(stream__meta_broker_count(f->md), 1);

    /* Sorted by id whatever the order of registration. */
    assert_int_equal(register_broker(f, 2), 0);
    assert_int_equal(register_broker(f, 9), 0);
    assert_int_equal(stream__meta_broker_at(f->md, 0)->id, 2);
    assert_int_equal(stream__meta_broker_at(f->md, 1)->id, 5);
    assert_int_equal(stream__meta_broker_at(f->md, 2)->id, 9);
    assert_null(stream__meta_broker_at(f->md, 3));
    assert_null(stream__meta_broker_find(f->md, 3));
}

static void test_a_broker_kafka_listener_is_kept_and_survives_a_snapshot(void **state)
{
    fx *f = *state;
    assert_int_equal(stream__meta_encode_register_broker_kafka(&f->b, req(f), 4, "10.0.0.4", 9004,
                                                               "10.0.0.4", 9092),
                     0);
    assert_int_equal(apply(f), 0);
    assert_int_equal(register_broker(f, 5), 0); /* an older broker: no Kafka listener */
    assert_string_equal(broker(f, 4)->kafka_host, "10.0.0.4");
    assert_int_equal(broker(f, 4)->kafka_port, 9092);
    assert_null(broker(f, 5)->kafka_host);
    assert_int_equal(broker(f, 5)->kafka_port, 0);
    /* A snapshot carries it (and the broker without one stays without). */
    stream_buf s1 = STREAM_BUF_INIT, s2 = STREAM_BUF_INIT;
    snapshot_of(f->md, &s1);
    stream__meta *g = stream__meta_new("cluster-1");
    char err[256] = "";
    if (stream__meta_restore(g, s1.data, s1.len, err, sizeof err) != 0)
        fail_msg("restore: %s", err);
    assert_string_equal(stream__meta_broker_find(g, 4)->kafka_host, "10.0.0.4");
    assert_int_equal(stream__meta_broker_find(g, 4)->kafka_port, 9092);
    assert_null(stream__meta_broker_find(g, 5)->kafka_host);
    snapshot_of(g, &s2);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.data, s2.data, s1.len);
    stream__meta_free(g);
    /* Registering again without one drops it; a bad one is refused. */
    assert_int_equal(stream__meta_encode_register_broker(&f->b, req(f), 4, "10.0.0.4", 9004), 0);
    assert_int_equal(apply(f), 0);
    assert_null(broker(f, 4)->kafka_host);
    stream_buf_reset(&f->b);
    assert_int_equal(
        stream__meta_encode_register_broker_kafka(&f->b, req(f), 4, "h", 1, "bad host", 9092),
        STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_register_broker_kafka(&f->b, req(f), 4, "h", 1, "k", 0),
                     STREAM_EINVAL);
    stream_buf_release(&s1);
    stream_buf_release(&s2);
}

static void test_fence_and_unfence_need_the_current_epoch(void **state)
{
    fx *f = *state;
    assert_int_equal(fence(f, 1, 0, true), STREAM__META_ENOBROKER);
    assert_int_equal(register_broker(f, 1), 0);
    int64_t e1 = broker(f, 1)->epoch;
    f->n_ev = 0;
    assert_int_equal(fence(f, 1, e1 + 1, false), STREAM__META_ESTALE);
    assert_true(broker(f, 1)->fenced);
    assert_int_equal(fence(f, 1, e1, false), 0);
    assert_false(broker(f, 1)->fenced);
    assert_int_equal(fence(f, 1, e1, false), 0); /* already: nothing to do */
    assert_int_equal(fence(f, 1, e1, true), 0);
    assert_true(broker(f, 1)->fenced);
    assert_int_equal(f->n_ev, 2);
    assert_int_equal(f->ev[0].type, STREAM__META_BROKER_UNFENCED);
    assert_int_equal(f->ev[1].type, STREAM__META_BROKER_FENCED);
    /* After a re-registration the old incarnation's epoch is stale. */
    assert_int_equal(register_broker(f, 1), 0);
    assert_int_equal(fence(f, 1, e1, false), STREAM__META_ESTALE);
    assert_true(broker(f, 1)->fenced);
}

/* ---- topics ------------------------------------------------------------------- */

static void test_create_topic_leaders_isr_epochs_and_configs(void **state)
{
    fx *f = *state;
    three_brokers(f);
    f->n_ev = 0;
    stream__meta_kv cfg[] = {kv("retention.ms", "60000"), kv("cleanup.policy", "delete")};
    assert_int_equal(create_topic(f, "orders", 1, 3, 3, rf3, cfg, 2), 0);
    const stream__meta_topic *t = topic(f, "orders");
    assert_non_null(t);
    assert_int_equal(t->partition_count, 3);
    assert_int_equal(t->id[15], 1);
    /* leader = first unfenced replica (broker 1 is fenced) */
    assert_int_equal(t->partitions[0].leader, 2);
    assert_int_equal(t->partitions[1].leader, 2);
    assert_int_equal(t->partitions[2].leader, 3);
    for (int p = 0; p < 3; p++) {
        const stream__meta_partition *part = &t->partitions[p];
        assert_int_equal(part->leader_epoch, 0);
        assert_int_equal(part->partition_epoch, 0);
        assert_int_equal(part->n_replicas, 3);
        assert_int_equal(part->n_isr, 3);
        assert_memory_equal(part->replicas, rf3 + 3 * p, 3 * sizeof(int32_t));
        assert_memory_equal(part->isr, rf3 + 3 * p, 3 * sizeof(int32_t));
    }
    assert_int_equal(t->n_configs, 2); /* sorted by key */
    assert_string_equal(t->configs[0].key, "cleanup.policy");
    assert_string_equal(t->configs[1].key, "retention.ms");
    assert_string_equal(t->configs[1].value, "60000");
    assert_ptr_equal(stream__meta_topic_find_id(f->md, t->id), t);
    assert_int_equal(f->n_ev, 1);
    assert_int_equal(f->ev[0].type, STREAM__META_TOPIC_CREATED);
    assert_string_equal(f->ev[0].topic, "orders");

    /* Every replica fenced: no leader, the ISR is still the replicas. */
    const int32_t only1[] = {1};
    assert_int_equal(create_topic(f, "lonely", 2, 1, 1, only1, NULL, 0), 0);
    assert_int_equal(topic(f, "lonely")->partitions[0].leader, -1);
    assert_int_equal(topic(f, "lonely")->partitions[0].n_isr, 1);
    /* Sorted by name. */
    assert_string_equal(stream__meta_topic_at(f->md, 0)->name, "lonely");
    assert_string_equal(stream__meta_topic_at(f->md, 1)->name, "orders");
}

static void test_create_topic_errors_change_nothing(void **state)
{
    fx *f = *state;
    three_brokers(f);
    assert_int_equal(create_topic(f, "t", 1, 3, 3, rf3, NULL, 0), 0);
    f->n_ev = 0;
    assert_int_equal(create_topic(f, "t", 2, 3, 3, rf3, NULL, 0), STREAM_ETOPICEXISTS);
    assert_int_equal(create_topic(f, "u", 1, 3, 3, rf3, NULL, 0), STREAM_EEXIST); /* id taken */
    assert_int_equal(create_topic(f, "a/b", 3, 3, 3, rf3, NULL, 0), STREAM_EBADNAME);
    assert_int_equal(create_topic(f, "..", 3, 3, 3, rf3, NULL, 0), STREAM_EBADNAME);
    assert_int_equal(create_topic(f, "", 3, 3, 3, rf3, NULL, 0), STREAM_EBADNAME);
    const int32_t unknown[] = {1, 4};
    assert_int_equal(create_topic(f, "u", 3, 1, 2, unknown, NULL, 0), STREAM__META_ENOBROKER);
    stream__meta_kv bad_key = kv("a=b", "1"), bad_value = kv("x", "line\nbreak");
    assert_int_equal(create_topic(f, "u", 3, 3, 3, rf3, &bad_key, 1), STREAM_EBADCONFIG);
    assert_int_equal(create_topic(f, "u", 3, 3, 3, rf3, &bad_value, 1), STREAM_EBADCONFIG);
    assert_int_equal(stream__meta_topic_count(f->md), 1);
    assert_null(topic(f, "u"));
    assert_int_equal(f->n_ev, 0);
    /* Internal names are allowed (the coordinator's topic). */
    assert_int_equal(create_topic(f, STREAM_OFFSETS_TOPIC, 4, 3, 3, rf3, NULL, 0), 0);
}

static void test_delete_topic_and_the_topic_id_guard(void **state)
{
    fx *f = *state;
    three_brokers(f);
    assert_int_equal(create_topic(f, "t", 1, 3, 3, rf3, NULL, 0), 0);
    uint8_t old_id[16], other[16];
    topic_id(old_id, 1);
    topic_id(other, 9);
    f->n_ev = 0;
    assert_int_equal(stream__meta_encode_delete_topic(&f->b, req(f), "t", other), 0);
    assert_int_equal(apply(f), STREAM_ENOTOPIC); /* same name, another topic id */
    assert_int_equal(stream__meta_encode_delete_topic(&f->b, req(f), "t", old_id), 0);
    assert_int_equal(apply(f), 0);
    assert_null(topic(f, "t"));
    assert_int_equal(f->n_ev, 1);
    assert_int_equal(f->ev[0].type, STREAM__META_TOPIC_DELETED);
    assert_string_equal(f->ev[0].topic, "t"); /* readable during the callback */
    assert_int_equal(stream__meta_encode_delete_topic(&f->b, req(f), "t", NULL), 0);
    assert_int_equal(apply(f), STREAM_ENOTOPIC);

    /* Re-created under a new id: a change aimed at the old one misses. */
    assert_int_equal(create_topic(f, "t", 2, 3, 3, rf3, NULL, 0), 0);
    const int32_t isr[] = {2, 3};
    assert_int_equal(
        stream__meta_encode_alter_partition(&f->b, req(f), "t", old_id, 0, 2, isr, 2, 0), 0);
    assert_int_equal(apply(f), STREAM_ENOTOPIC);
    assert_int_equal(topic(f, "t")->partitions[0].n_isr, 3);
}

/* create_partitions appends partitions placed as create_topic's are, and
 * only to the count it was computed from. */
static void test_create_partitions_appends_and_refuses_stale_counts(void **state)
{
    fx *f = *state;
    three_brokers(f); /* broker 1 stays fenced */
    assert_int_equal(create_topic(f, "t", 1, 2, 3, rf3, NULL, 0), 0);
    uint8_t id[16], other[16];
    topic_id(id, 1);
    topic_id(other, 9);
    const int32_t add[] = {1, 2, 3, 3, 1, 2};
    f->n_ev = 0;
    assert_int_equal(stream__meta_encode_create_partitions(&f->b, req(f), "t", id, 2, 2, 3, add),
                     0);
    assert_int_equal(apply(f), 0);
    const stream__meta_topic *t = topic(f, "t");
    assert_int_equal(t->partition_count, 4);
    assert_int_equal(t->partitions[2].leader, 2); /* 1 is fenced: the next replica */
    assert_int_equal(t->partitions[3].leader, 3);
    assert_int_equal(t->partitions[3].n_isr, 3);
    assert_int_equal(t->partitions[3].leader_epoch, 0);
    assert_int_equal(t->partitions[0].replicas[0], 1); /* the old ones as they were */
    assert_int_equal(f->n_ev, 1);
    assert_int_equal(f->ev[0].type, STREAM__META_PARTITIONS_ADDED);
    assert_int_equal(f->ev[0].partition, 2);

    /* The same change again (count 2 no longer holds), another incarnation,
     * an unknown topic, an unregistered broker: refused, nothing changes. */
    assert_int_equal(stream__meta_encode_create_partitions(&f->b, req(f), "t", id, 2, 2, 3, add),
                     0);
    assert_int_equal(apply(f), STREAM__META_ESTALE);
    assert_int_equal(stream__meta_encode_create_partitions(&f->b, req(f), "t", other, 4, 1, 3, add),
                     0);
    assert_int_equal(apply(f), STREAM_ENOTOPIC);
    assert_int_equal(
        stream__meta_encode_create_partitions(&f->b, req(f), "nope", NULL, 4, 1, 3, add), 0);
    assert_int_equal(apply(f), STREAM_ENOTOPIC);
    const int32_t unknown[] = {2, 9};
    assert_int_equal(
        stream__meta_encode_create_partitions(&f->b, req(f), "t", NULL, 4, 1, 2, unknown), 0);
    assert_int_equal(apply(f), STREAM__META_ENOBROKER);
    assert_int_equal(topic(f, "t")->partition_count, 4);

    /* The encoder refuses what the decoder would. */
    assert_int_equal(stream__meta_encode_create_partitions(&f->b, req(f), "t", NULL, 0, 1, 3, add),
                     STREAM_EINVAL);
    assert_int_equal(
        stream__meta_encode_create_partitions(&f->b, req(f), "t", NULL, 9999, 2, 3, add),
        STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_create_partitions(&f->b, req(f), "t", NULL, 4, 0, 3, add),
                     STREAM_EINVAL);

    /* A snapshot carries the grown topic. */
    stream_buf snap = STREAM_BUF_INIT;
    snapshot_of(f->md, &snap);
    stream__meta *md2 = stream__meta_new("cluster-1");
    assert_non_null(md2);
    char err[256];
    assert_int_equal(stream__meta_restore(md2, snap.data, snap.len, err, sizeof err), 0);
    const stream__meta_topic *t2 = stream__meta_topic_find(md2, "t", 1);
    assert_int_equal(t2->partition_count, 4);
    assert_int_equal(t2->partitions[2].leader, 2);
    stream__meta_free(md2);
    stream_buf_release(&snap);
}

static void test_alter_partition_bumps_epochs_and_refuses_stale_changes(void **state)
{
    fx *f = *state;
    three_brokers(f);
    assert_int_equal(create_topic(f, "t", 1, 3, 3, rf3, NULL, 0), 0);
    f->n_ev = 0;
    const stream__meta_partition *p = &topic(f, "t")->partitions[0];
    assert_int_equal(p->leader, 2);

    /* Shrink the ISR, same leader: partition_epoch only. */
    const int32_t isr23[] = {2, 3};
    assert_int_equal(alter_partition(f, "t", 0, 2, isr23, 2, 0), 0);
    p = &topic(f, "t")->partitions[0];
    assert_int_equal(p->partition_epoch, 1);
    assert_int_equal(p->leader_epoch, 0);
    assert_int_equal(p->n_isr, 2);
    assert_int_equal(f->ev[0].type, STREAM__META_PARTITION_CHANGED);
    assert_string_equal(f->ev[0].topic, "t");
    assert_int_equal(f->ev[0].partition, 0);
    assert_true(f->ev[0].isr_changed);
    assert_false(f->ev[0].leader_changed);

    /* Move the leader: both epochs. */
    assert_int_equal(alter_partition(f, "t", 0, 3, isr23, 2, 1), 0);
    p = &topic(f, "t")->partitions[0];
    assert_int_equal(p->leader, 3);
    assert_int_equal(p->leader_epoch, 1);
    assert_int_equal(p->partition_epoch, 2);
    assert_true(f->ev[1].leader_changed);
    assert_false(f->ev[1].isr_changed);
    assert_int_equal(f->ev[1].previous_leader, 2);

    /* A stale controller or leader computed its change from epoch 1. */
    const int32_t isr2[] = {2};
    assert_int_equal(alter_partition(f, "t", 0, 2, isr2, 1, 1), STREAM__META_ESTALE);
    /* Stale wins over invalid: the change was computed from another state. */
    const int32_t isr9[] = {9};
    assert_int_equal(alter_partition(f, "t", 0, 9, isr9, 1, 0), STREAM__META_ESTALE);
    /* Invalid ones, at the current epoch. */
    assert_int_equal(alter_partition(f, "t", 0, 1, isr23, 2, 2),
                     STREAM_EINVAL); /* leader not in isr */
    const int32_t isr_bad[] = {3, 9};
    assert_int_equal(alter_partition(f, "t", 0, 3, isr_bad, 2, 2), STREAM_EINVAL);
    assert_int_equal(alter_partition(f, "t", 3, 3, isr23, 2, 0), STREAM_ENOPART);
    assert_int_equal(alter_partition(f, "nope", 0, 3, isr23, 2, 0), STREAM_ENOTOPIC);
    p = &topic(f, "t")->partitions[0];
    assert_int_equal(p->leader, 3);
    assert_int_equal(p->partition_epoch, 2);
    assert_int_equal(f->n_ev, 2);

    /* No leader at all (every ISR member gone): -1 is a leader change. */
    const int32_t isr3[] = {3};
    assert_int_equal(alter_partition(f, "t", 0, -1, isr3, 1, 2), 0);
    p = &topic(f, "t")->partitions[0];
    assert_int_equal(p->leader, -1);
    assert_int_equal(p->leader_epoch, 2);
    assert_int_equal(p->partition_epoch, 3);
}

/* One change of alter_partitions, without a guard. */
static stream__meta_alter alter(const char *name, int32_t partition, int32_t leader,
                                const int32_t *isr, uint32_t n_isr, int32_t epoch)
{
    return (stream__meta_alter){.topic = name,
                                .topic_len = strlen(name),
                                .partition = partition,
                                .leader = leader,
                                .isr = {isr, n_isr},
                                .partition_epoch = epoch};
}

static void test_alter_partitions_applies_each_change_and_skips_refused_ones(void **state)
{
    fx *f = *state;
    three_brokers(f);
    assert_int_equal(create_topic(f, "t", 1, 3, 3, rf3, NULL, 0), 0);
    assert_int_equal(create_topic(f, "u", 2, 3, 3, rf3, NULL, 0), 0);
    f->n_ev = 0;
    const int32_t isr23[] = {2, 3}, isr32[] = {3, 2}, isr9[] = {9};
    stream__meta_alter a[] = {
        alter("t", 0, 3, isr23, 2, 0),    /* applied: leader 2 -> 3 */
        alter("t", 1, 3, isr32, 2, 5),    /* stale: skipped */
        alter("u", 2, 3, isr32, 2, 0),    /* applied: isr shrinks, leader 3 stays */
        alter("t", 0, 2, isr23, 2, 0),    /* t-0 again: stale by now, skipped */
        alter("t", 2, 9, isr9, 1, 0),     /* invalid: skipped */
        alter("nope", 0, 2, isr23, 2, 0), /* no such topic: skipped */
    };
    assert_int_equal(stream__meta_encode_alter_partitions(&f->b, req(f), a, 6), 0);
    assert_int_equal(apply(f), 0);
    const stream__meta_topic *t = topic(f, "t"), *u = topic(f, "u");
    assert_int_equal(t->partitions[0].leader, 3);
    assert_int_equal(t->partitions[0].leader_epoch, 1);
    assert_int_equal(t->partitions[0].partition_epoch, 1);
    assert_int_equal(t->partitions[1].partition_epoch, 0);
    assert_int_equal(t->partitions[2].partition_epoch, 0);
    assert_int_equal(u->partitions[2].leader, 3);
    assert_int_equal(u->partitions[2].leader_epoch, 0);
    assert_int_equal(u->partitions[2].partition_epoch, 1);
    assert_int_equal(u->partitions[2].n_isr, 2);
    /* One event per change applied, in order, all at the command's index. */
    assert_int_equal(f->n_ev, 2);
    assert_int_equal(f->ev[0].type, STREAM__META_PARTITION_CHANGED);
    assert_string_equal(f->ev[0].topic, "t");
    assert_int_equal(f->ev[0].partition, 0);
    assert_true(f->ev[0].leader_changed);
    assert_int_equal(f->ev[0].previous_leader, 2);
    assert_string_equal(f->ev[1].topic, "u");
    assert_int_equal(f->ev[1].partition, 2);
    assert_false(f->ev[1].leader_changed);
    assert_true(f->ev[1].isr_changed);
    assert_int_equal(f->ev[1].index, f->ev[0].index);
    /* Every change stale now: 0, nothing changes, no event. */
    f->n_ev = 0;
    assert_int_equal(stream__meta_encode_alter_partitions(&f->b, req(f), a, 1), 0);
    assert_int_equal(apply(f), 0);
    assert_int_equal(f->n_ev, 0);
    assert_int_equal(topic(f, "t")->partitions[0].partition_epoch, 1);
}

/* A broker that leads thousands of partitions is fenced: the election's
 * changes go out in alter_partitions of at most STREAM__META_ALTER_BATCH,
 * and once applied every partition has a live leader. */
typedef struct gathered {
    stream__elect_change *c;
    size_t n;
} gathered;

static bool gather(void *arg, const stream__elect_change *c)
{
    gathered *g = arg;
    g->c[g->n++] = *c;
    return true;
}

static void test_a_fenced_brokers_leaderships_move_in_batches(void **state)
{
    fx *f = *state;
    enum { PARTS = 2500 };
    three_brokers(f);
    assert_int_equal(fence(f, 1, broker(f, 1)->epoch, false), 0);
    /* Broker 1 leads a third of each topic's partitions (placement by
     * rotation, as the controller places them). */
    static int32_t replicas[PARTS * 3];
    const int32_t ids[] = {1, 2, 3};
    stream__elect_place(ids, 3, 0, PARTS, 3, replicas);
    assert_int_equal(create_topic(f, "a", 1, PARTS, 3, replicas, NULL, 0), 0);
    assert_int_equal(create_topic(f, "b", 2, PARTS, 3, replicas, NULL, 0), 0);
    assert_int_equal(fence(f, 1, broker(f, 1)->epoch, true), 0);

    gathered g = {calloc(2 * PARTS, sizeof(stream__elect_change)), 0};
    assert_non_null(g.c);
    assert_int_equal(stream__elect_all(f->md, false, gather, &g), 2 * PARTS);
    stream__meta_alter *a = calloc(STREAM__META_ALTER_BATCH, sizeof *a);
    assert_non_null(a);
    size_t commands = 0;
    uint64_t first_index = f->index + 2;
    f->n_ev = 0;
    for (size_t i = 0; i < g.n; i += STREAM__META_ALTER_BATCH) {
        size_t n = g.n - i < STREAM__META_ALTER_BATCH ? g.n - i : STREAM__META_ALTER_BATCH;
        stream__elect_alters(&g.c[i], n, a);
        assert_int_equal(stream__meta_encode_alter_partitions(&f->b, req(f), a, (uint32_t)n), 0);
        /* About 12 bytes a partition: a batch is tens of KB, not MB. */
        assert_true(f->b.len < 16 * n + 4096);
        assert_int_equal(apply(f), 0);
        commands++;
    }
    assert_int_equal(commands,
                     (2 * PARTS + STREAM__META_ALTER_BATCH - 1) / STREAM__META_ALTER_BATCH);
    assert_int_equal(f->n_ev, 2 * PARTS);
    assert_true(f->ev[0].index == first_index);
    for (const char *name = "a"; name != NULL; name = name[0] == 'a' ? "b" : NULL) {
        const stream__meta_topic *t = topic(f, name);
        for (int32_t p = 0; p < t->partition_count; p++) {
            const stream__meta_partition *mp = &t->partitions[p];
            assert_true(mp->leader == 2 || mp->leader == 3);
            assert_int_equal(mp->n_isr, 2);
            assert_int_equal(mp->leader_epoch, mp->replicas[0] == 1 ? 1 : 0);
        }
    }
    /* Nothing left to move. */
    g.n = 0;
    assert_int_equal(stream__elect_all(f->md, false, gather, &g), 0);
    free(a);
    free(g.c);
}

static void test_alter_configs_sets_and_deletes(void **state)
{
    fx *f = *state;
    three_brokers(f);
    stream__meta_kv cfg[] = {kv("a", "1"), kv("b", "2"), kv("c", "3")};
    assert_int_equal(create_topic(f, "t", 1, 3, 3, rf3, cfg, 3), 0);
    f->n_ev = 0;
    stream__meta_kv set[] = {kv("b", "20"), kv("d", "")}, del[] = {kv("a", NULL), kv("zz", NULL)};
    assert_int_equal(stream__meta_encode_alter_configs(&f->b, req(f), "t", NULL, set, 2, del, 2),
                     0);
    assert_int_equal(apply(f), 0); /* deleting the unset "zz" is fine */
    const stream__meta_topic *t = topic(f, "t");
    assert_int_equal(t->n_configs, 3);
    assert_string_equal(t->configs[0].key, "b");
    assert_string_equal(t->configs[0].value, "20");
    assert_string_equal(t->configs[1].key, "c");
    assert_string_equal(t->configs[2].key, "d");
    assert_string_equal(t->configs[2].value, "");
    assert_int_equal(f->n_ev, 1);
    assert_int_equal(f->ev[0].type, STREAM__META_TOPIC_CONFIGS_CHANGED);

    /* The same again changes nothing: no event. */
    assert_int_equal(stream__meta_encode_alter_configs(&f->b, req(f), "t", NULL, set, 2, del, 2),
                     0);
    assert_int_equal(apply(f), 0);
    assert_int_equal(f->n_ev, 1);

    /* A key both set and deleted; a bad key; no topic. */
    stream__meta_kv both = kv("b", NULL), bad = kv("has space", "v");
    assert_int_equal(stream__meta_encode_alter_configs(&f->b, req(f), "t", NULL, set, 2, &both, 1),
                     0);
    assert_int_equal(apply(f), STREAM_EBADCONFIG);
    assert_int_equal(stream__meta_encode_alter_configs(&f->b, req(f), "t", NULL, &bad, 1, NULL, 0),
                     0);
    assert_int_equal(apply(f), STREAM_EBADCONFIG);
    assert_int_equal(stream__meta_encode_alter_configs(&f->b, req(f), "x", NULL, set, 2, NULL, 0),
                     0);
    assert_int_equal(apply(f), STREAM_ENOTOPIC);
    assert_int_equal(topic(f, "t")->n_configs, 3);
}

/* ---- idempotence ------------------------------------------------------------------ */

static void test_a_repeated_request_returns_its_result_and_changes_nothing(void **state)
{
    fx *f = *state;
    three_brokers(f);
    stream_buf cmd = STREAM_BUF_INIT, before = STREAM_BUF_INIT, after = STREAM_BUF_INIT;

    /* A create that succeeded, retried after a leader change: 0, once. */
    uint8_t id[16];
    topic_id(id, 1);
    stream__meta_req r = req(f);
    assert_int_equal(stream__meta_encode_create_topic(&cmd, r, "t", id, 3, 3, rf3, NULL, 0), 0);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, ++f->index), 0);
    f->n_ev = 0;
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, ++f->index), 0);
    assert_int_equal(f->n_ev, 0);
    assert_int_equal(stream__meta_topic_count(f->md), 1);

    /* An alter that succeeded: retried, 0 again (not "stale"), no second bump. */
    const int32_t isr[] = {2, 3};
    stream_buf_reset(&cmd);
    r = req(f);
    assert_int_equal(stream__meta_encode_alter_partition(&cmd, r, "t", NULL, 0, 2, isr, 2, 0), 0);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, ++f->index), 0);
    snapshot_of(f->md, &before);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, f->index), 0);
    snapshot_of(f->md, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    assert_int_equal(topic(f, "t")->partitions[0].partition_epoch, 1);

    /* A refused command keeps its verdict even once the cause is gone. */
    stream_buf_reset(&cmd);
    r = req(f);
    assert_int_equal(stream__meta_encode_create_topic(&cmd, r, "t", id, 3, 3, rf3, NULL, 0), 0);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, ++f->index), STREAM_ETOPICEXISTS);
    assert_int_equal(stream__meta_encode_delete_topic(&f->b, req(f), "t", NULL), 0);
    assert_int_equal(apply(f), 0);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, ++f->index), STREAM_ETOPICEXISTS);
    assert_int_equal(stream__meta_topic_count(f->md), 0);

    /* The same seq from another node is another request. */
    stream_buf_reset(&cmd);
    r.node = 8;
    assert_int_equal(stream__meta_encode_create_topic(&cmd, r, "t", id, 3, 3, rf3, NULL, 0), 0);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, ++f->index), 0);
    stream_buf_release(&cmd);
    stream_buf_release(&before);
    stream_buf_release(&after);
}

static void test_request_ids_are_remembered_within_their_bounds(void **state)
{
    fx *f = *state;
    stream_buf first = STREAM_BUF_INIT;
    stream__meta_req r = {42, 1000};
    assert_int_equal(stream__meta_encode_register_broker(&first, r, 1, "h", 1), 0);
    assert_int_equal(stream__meta_apply(f->md, first.data, first.len, ++f->index), 0);
    int64_t epoch = broker(f, 1)->epoch;
    /* 31 more from node 42: the first is still remembered. */
    for (int i = 1; i < STREAM__META_REQ_WINDOW; i++) {
        assert_int_equal(stream__meta_encode_register_broker(
                             &f->b, (stream__meta_req){42, 1000 + (uint64_t)i}, 2, "h", 1),
                         0);
        assert_int_equal(apply(f), 0);
    }
    assert_int_equal(stream__meta_apply(f->md, first.data, first.len, ++f->index), 0);
    assert_int_equal(broker(f, 1)->epoch, epoch);
    /* One more pushes it out of the window: applied again, a new epoch. */
    assert_int_equal(
        stream__meta_encode_register_broker(&f->b, (stream__meta_req){42, 2000}, 2, "h", 1), 0);
    assert_int_equal(apply(f), 0);
    assert_int_equal(stream__meta_apply(f->md, first.data, first.len, ++f->index), 0);
    assert_true(broker(f, 1)->epoch > epoch);

    /* Requesters: past the limit the one with the oldest command goes. */
    epoch = broker(f, 1)->epoch;
    stream_buf_reset(&first);
    assert_int_equal(
        stream__meta_encode_register_broker(&first, (stream__meta_req){1, 1}, 1, "h", 1), 0);
    assert_int_equal(stream__meta_apply(f->md, first.data, first.len, ++f->index), 0);
    epoch = broker(f, 1)->epoch;
    for (int32_t node = 100; node < 100 + STREAM__META_MAX_REQUESTERS - 2; node++) {
        assert_int_equal(
            stream__meta_encode_fence_broker(&f->b, (stream__meta_req){node, 1}, 1, epoch), 0);
        assert_int_equal(apply(f), 0);
    }
    /* 1024 requesters (42, 1, and 1022 more): node 1 is still known. */
    assert_int_equal(stream__meta_apply(f->md, first.data, first.len, ++f->index), 0);
    assert_int_equal(broker(f, 1)->epoch, epoch);
    /* Node 42's latest is the oldest: the 1025th requester evicts it, not 1. */
    assert_int_equal(stream__meta_encode_fence_broker(&f->b, (stream__meta_req){5000, 1}, 1, epoch),
                     0);
    assert_int_equal(apply(f), 0);
    assert_int_equal(stream__meta_apply(f->md, first.data, first.len, ++f->index), 0);
    assert_int_equal(broker(f, 1)->epoch, epoch);
    stream_buf_release(&first);
}

/* ---- the codec -------------------------------------------------------------------- */

static void test_bad_commands_are_ebadreq_and_change_nothing(void **state)
{
    fx *f = *state;
    three_brokers(f);
    assert_int_equal(create_topic(f, "t", 1, 3, 3, rf3, NULL, 0), 0);
    stream_buf good = STREAM_BUF_INIT;
    f->n_ev = 0;

    /* Every proper prefix of a valid command is refused. */
    const int32_t isr[] = {2, 3};
    assert_int_equal(stream__meta_encode_alter_partition(&good, req(f), "t", NULL, 0, 2, isr, 2, 0),
                     0);
    for (size_t n = 0; n < good.len; n++)
        assert_int_equal(stream__meta_apply(f->md, good.data, n, ++f->index), STREAM_EBADREQ);
    assert_int_equal(f->n_ev, 0);
    assert_int_equal(topic(f, "t")->partitions[0].partition_epoch, 0);
    assert_int_equal(stream__meta_applied_index(f->md), f->index);

    /* Hand-made ones, each naming what is wrong. */
#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1
    struct {
        const char *json_like; /* for the failure message */
        const uint8_t *p;
        size_t len;
        const char *needle;
    } cases[] = {
        {"[1, 2, 3]", LIT("\x93\x01\x02\x03"), "not a MessagePack map"},
        {"{}", LIT("\x80"), "missing field 'op'"},
        {"{op: nope}", LIT("\x81\xa2op\xa4nope"), "unknown metadata command"},
        {"{op: delete_topic}",
         LIT("\x81\xa2op\xac"
             "delete_topic"),
         "missing field 'req'"},
        {"{op: delete_topic, req: {node: 0, seq: 1}}",
         LIT("\x82\xa2op\xac"
             "delete_topic"
             "\xa3req\x82\xa4node\x00\xa3seq\x01"),
         "'node' is out of range"},
        {"{op: delete_topic, req: {node: 1, seq: 1}}",
         LIT("\x82\xa2op\xac"
             "delete_topic"
             "\xa3req\x82\xa4node\x01\xa3seq\x01"),
         "missing field 'name'"},
        {"{op: register_broker, req: .., id: 1, host: 'a b', port: 1}",
         LIT("\x85\xa2op\xaf"
             "register_broker"
             "\xa3req\x82\xa4node\x01\xa3seq\x01"
             "\xa2id\x01\xa4host\xa3"
             "a b"
             "\xa4port\x01"),
         "field 'host'"},
    };
#undef LIT
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stream__meta_cmd c;
        char err[256] = "";
        int rc = stream__meta_cmd_decode(cases[i].p, cases[i].len, &c, err, sizeof err);
        if (rc != STREAM_EBADREQ || strstr(err, cases[i].needle) == NULL)
            fail_msg("%s: want EBADREQ with '%s', got %s '%s'", cases[i].json_like, cases[i].needle,
                     stream_err_name(rc), err);
        stream__meta_cmd_release(&c); /* harmless after a failure */
        assert_int_equal(stream__meta_apply(f->md, cases[i].p, cases[i].len, ++f->index),
                         STREAM_EBADREQ);
    }
    assert_int_equal(f->n_ev, 0);
    stream_buf_release(&good);
}

/* Decodes b, re-encodes it, and checks the bytes are the same. */
static void assert_round_trip(const stream_buf *b, stream__meta_op op)
{
    stream__meta_cmd c;
    char err[256] = "";
    stream_buf again = STREAM_BUF_INIT;
    if (stream__meta_cmd_decode(b->data, b->len, &c, err, sizeof err) != 0)
        fail_msg("%s does not decode: %s", stream__meta_op_name(op), err);
    assert_int_equal(c.op, op);
    assert_int_equal(stream__meta_cmd_encode(&c, &again), 0);
    assert_int_equal(again.len, b->len);
    assert_memory_equal(again.data, b->data, b->len);
    stream__meta_cmd_release(&c);
    stream_buf_release(&again);
}

static void test_every_command_round_trips_through_the_codec(void **state)
{
    (void)state;
    stream_buf b = STREAM_BUF_INIT;
    stream__meta_req r = {3, UINT64_MAX};
    uint8_t id[16];
    topic_id(id, 7);
    stream__meta_kv cfg[] = {kv("retention.ms", "1"), kv("x", "")};
    const int32_t isr[] = {3, 1};

#define RT(call, op)                                                                               \
    do {                                                                                           \
        stream_buf_reset(&b);                                                                      \
        assert_int_equal(call, 0);                                                                 \
        assert_round_trip(&b, op);                                                                 \
    } while (0)
    RT(stream__meta_encode_register_broker(&b, r, 2147483647, "broker-1.example.com", 65535),
       STREAM__META_OP_REGISTER_BROKER);
    RT(stream__meta_encode_register_broker(&b, r, 1, "fe80::1%eth0", 1),
       STREAM__META_OP_REGISTER_BROKER);
    RT(stream__meta_encode_fence_broker(&b, r, 1, INT64_MAX), STREAM__META_OP_FENCE_BROKER);
    RT(stream__meta_encode_unfence_broker(&b, r, 1, 0), STREAM__META_OP_UNFENCE_BROKER);
    RT(stream__meta_encode_create_topic(&b, r, "t", id, 3, 3, rf3, cfg, 2),
       STREAM__META_OP_CREATE_TOPIC);
    RT(stream__meta_encode_create_topic(&b, r, "t", id, 1, 1, rf3, NULL, 0),
       STREAM__META_OP_CREATE_TOPIC);
    RT(stream__meta_encode_delete_topic(&b, r, "t", NULL), STREAM__META_OP_DELETE_TOPIC);
    RT(stream__meta_encode_create_partitions(&b, r, "t", id, 3, 3, 3, rf3),
       STREAM__META_OP_CREATE_PARTITIONS);
    RT(stream__meta_encode_create_partitions(&b, r, "t", NULL, 9999, 1, 1, rf3),
       STREAM__META_OP_CREATE_PARTITIONS);
    RT(stream__meta_encode_delete_topic(&b, r, "t", id), STREAM__META_OP_DELETE_TOPIC);
    RT(stream__meta_encode_alter_partition(&b, r, "t", id, 9, -1, isr, 2, INT32_MAX),
       STREAM__META_OP_ALTER_PARTITION);
    stream__meta_alter al[] = {alter("t", 0, 3, isr, 2, 0), alter("t", 1, -1, isr, 1, INT32_MAX),
                               alter("u", 0, 1, isr + 1, 1, 7), alter("t", 2, 3, isr, 2, 0)};
    al[3].has_topic_id = true; /* another guard: a topic of its own in the encoding */
    memcpy(al[3].topic_id, id, 16);
    RT(stream__meta_encode_alter_partitions(&b, r, al, 4), STREAM__META_OP_ALTER_PARTITIONS);
    RT(stream__meta_encode_alter_configs(&b, r, "t", NULL, cfg, 2, cfg, 1),
       STREAM__META_OP_ALTER_CONFIGS);
    RT(stream__meta_encode_alter_configs(&b, r, "t", id, NULL, 0, NULL, 0),
       STREAM__META_OP_ALTER_CONFIGS);
#undef RT
    /* The encoder refuses what the decoder would, leaving out as it was. */
    stream_buf_reset(&b);
    stream_buf_put(&b, "xy", 2);
    const int32_t dup[] = {1, 1}, zero_id[] = {0};
    uint8_t zero[16] = {0};
    assert_int_equal(stream__meta_encode_register_broker(&b, (stream__meta_req){0, 1}, 1, "h", 1),
                     STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_register_broker(&b, r, 1, "bad host", 1), STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_register_broker(&b, r, 1, "h", 0), STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_create_topic(&b, r, "t", id, 1, 2, dup, NULL, 0),
                     STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_create_topic(&b, r, "t", id, 1, 1, zero_id, NULL, 0),
                     STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_create_topic(&b, r, "t", zero, 1, 1, isr, NULL, 0),
                     STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_alter_partition(&b, r, "t", NULL, 0, 0, isr, 2, 0),
                     STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_alter_partition(&b, r, "t", NULL, 0, 3, isr, 0, 0),
                     STREAM_EINVAL);
    stream__meta_alter bad[] = {alter("t", 0, 0, isr, 2, 0)};
    assert_int_equal(stream__meta_encode_alter_partitions(&b, r, bad, 1), STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_alter_partitions(&b, r, al, 0), STREAM_EINVAL);
    assert_int_equal(stream__meta_encode_alter_partitions(&b, r, al, STREAM__META_ALTER_BATCH + 1),
                     STREAM_EINVAL);
    stream__meta_kv twice[] = {kv("a", "1"), kv("a", "2")};
    assert_int_equal(stream__meta_encode_alter_configs(&b, r, "t", NULL, twice, 2, NULL, 0),
                     STREAM_EINVAL);
    assert_int_equal(b.len, 2);
    assert_string_equal(stream__meta_op_name(STREAM__META_OP_ALTER_CONFIGS), "alter_configs");
    assert_string_equal(stream__meta_op_name(STREAM__META_OP__COUNT), "unknown");
    stream_buf_release(&b);
}

/* ---- snapshots ------------------------------------------------------------------- */

/* A state with a bit of everything. */
static void rich_state(fx *f)
{
    three_brokers(f);
    assert_int_equal(register_broker(f, 10), 0);
    stream__meta_kv cfg[] = {kv("retention.ms", "60000"), kv("segment.bytes", "1048576")};
    assert_int_equal(create_topic(f, "orders", 1, 3, 3, rf3, cfg, 2), 0);
    assert_int_equal(create_topic(f, "audit", 2, 1, 3, rf3, NULL, 0), 0);
    assert_int_equal(create_topic(f, STREAM_OFFSETS_TOPIC, 3, 3, 3, rf3, NULL, 0), 0);
    const int32_t isr[] = {3, 1};
    assert_int_equal(alter_partition(f, "orders", 1, 3, isr, 2, 0), 0);
    for (int i = 0; i < STREAM__META_REQ_WINDOW + 5; i++) /* a wrapped ring */
        assert_int_equal(fence(f, 10, broker(f, 10)->epoch, i % 2 == 0), 0);
}

static void test_snapshot_restore_round_trip_is_the_same_state(void **state)
{
    fx *f = *state;
    rich_state(f);
    stream_buf s1 = STREAM_BUF_INIT, s2 = STREAM_BUF_INIT;
    snapshot_of(f->md, &s1);

    fx g = {0};
    g.md = stream__meta_new("cluster-1");
    stream__meta_set_event_cb(g.md, on_event, &g);
    char err[256] = "";
    if (stream__meta_restore(g.md, s1.data, s1.len, err, sizeof err) != 0)
        fail_msg("restore: %s", err);
    snapshot_of(g.md, &s2);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.data, s2.data, s1.len);
    assert_int_equal(g.n_ev, 1);
    assert_int_equal(g.ev[0].type, STREAM__META_RESTORED);
    assert_int_equal(g.ev[0].index, f->index);
    assert_int_equal(stream__meta_applied_index(g.md), f->index);

    /* The same state through the accessors, too. */
    assert_int_equal(stream__meta_broker_count(g.md), 4);
    const stream__meta_topic *t = stream__meta_topic_find(g.md, "orders", 6);
    assert_non_null(t);
    assert_int_equal(t->partitions[1].leader, 3);
    assert_int_equal(t->partitions[1].leader_epoch, 1);
    assert_int_equal(t->partitions[1].partition_epoch, 1);
    assert_string_equal(t->configs[1].key, "segment.bytes");

    /* Request ids survived: a repeat is recognised on the restored copy
     * exactly as on the original (same verdict, no change). */
    const int32_t isr[] = {1};
    stream_buf cmd = STREAM_BUF_INIT;
    stream__meta_req r = {7, f->seq}; /* the last fence of rich_state */
    assert_int_equal(stream__meta_encode_fence_broker(&cmd, r, 10, broker(f, 10)->epoch), 0);
    g.n_ev = 0;
    assert_int_equal(stream__meta_apply(g.md, cmd.data, cmd.len, f->index + 2), 0);
    assert_int_equal(g.n_ev, 0);
    /* And both copies go on identically. */
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_alter_partition(&cmd, (stream__meta_req){9, 1}, "audit",
                                                         NULL, 0, 1, isr, 1, 0),
                     0);
    assert_int_equal(stream__meta_apply(f->md, cmd.data, cmd.len, f->index + 4), 0);
    assert_int_equal(stream__meta_apply(g.md, cmd.data, cmd.len, f->index + 4), 0);
    snapshot_of(f->md, &s1);
    snapshot_of(g.md, &s2);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.data, s2.data, s1.len);

    stream__meta_free(g.md);
    stream_buf_release(&cmd);
    stream_buf_release(&s1);
    stream_buf_release(&s2);
}

static void test_restore_refuses_damaged_snapshots_and_keeps_the_state(void **state)
{
    fx *f = *state;
    rich_state(f);
    stream_buf good = STREAM_BUF_INIT, before = STREAM_BUF_INIT, now = STREAM_BUF_INIT;
    snapshot_of(f->md, &good);
    snapshot_of(f->md, &before);
    char err[256];
    f->n_ev = 0;

    /* Every truncation. */
    for (size_t n = 0; n < good.len; n++) {
        int rc = stream__meta_restore(f->md, good.data, n, err, sizeof err);
        if (rc != STREAM_ECORRUPT)
            fail_msg("truncated to %zu of %zu bytes: %s", n, good.len, stream_err_name(rc));
    }
    /* Garbled bytes: refused or a valid other state, never a crash; after a
     * refusal the state is the one before. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    uint8_t *bad = malloc(good.len);
    assert_non_null(bad);
    int accepted = 0;
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(bad, good.data, good.len);
        for (int k = 0; k < 1 + trial % 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            bad[x % good.len] ^= (uint8_t)(1u << (x >> 32) % 8);
        }
        int rc = stream__meta_restore(f->md, bad, good.len, err, sizeof err);
        if (rc == 0) {
            accepted++;
            assert_int_equal(stream__meta_restore(f->md, good.data, good.len, err, sizeof err), 0);
            continue;
        }
        assert_true(rc == STREAM_ECORRUPT || rc == STREAM_EBADCONFIG);
        snapshot_of(f->md, &now);
        assert_int_equal(now.len, before.len);
        assert_memory_equal(now.data, before.data, before.len);
    }
    print_message("# 3000 garbled snapshots: %d accepted as another valid state\n", accepted);
    free(bad);
    assert_int_equal(f->n_ev, accepted * 2); /* RESTORED for each accepted and its undo */

    /* Another cluster's snapshot, named. */
    stream__meta *other = stream__meta_new("cluster-2");
    assert_int_equal(stream__meta_restore(other, good.data, good.len, err, sizeof err),
                     STREAM_EBADCONFIG);
    assert_non_null(strstr(err, "'cluster-1'"));
    assert_non_null(strstr(err, "'cluster-2'"));
    stream__meta_free(other);
    stream_buf_release(&good);
    stream_buf_release(&before);
    stream_buf_release(&now);
}

/* Snapshot bytes built by hand: well-formed MessagePack, inconsistent state. */
static void expect_corrupt(stream__meta *md, stream_buf *b, const char *needle)
{
    char err[256] = "";
    int rc = stream__meta_restore(md, b->data, b->len, err, sizeof err);
    if (rc != STREAM_ECORRUPT || strstr(err, needle) == NULL)
        fail_msg("want ECORRUPT with '%s', got %s: %s", needle, stream_err_name(rc), err);
    stream_buf_reset(b);
}

static int sink(void *data, const char *p, size_t n)
{
    stream_buf_put(data, p, n);
    return 0;
}

/* {version, cluster_id, applied_index, brokers: [b1, b2], topics: [t],
 * requesters: []} with the parts to break chosen by the arguments. */
static void build_snapshot(stream_buf *b, uint64_t version, int32_t broker2, int32_t leader,
                           const int32_t *isr, uint32_t n_isr, bool two_topics_same_id)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, sink);
    msgpack_pack_map(&pk, 6);
    stream_pack_kv_uint(&pk, "version", version);
    stream_pack_kv_cstr(&pk, "cluster_id", "cluster-1");
    stream_pack_kv_uint(&pk, "applied_index", 9);
    stream_pack_key(&pk, "brokers");
    msgpack_pack_array(&pk, 2);
    int32_t ids[2] = {1, broker2};
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(&pk, 5);
        stream_pack_kv_int(&pk, "id", ids[i]);
        stream_pack_kv_cstr(&pk, "host", "h");
        stream_pack_kv_uint(&pk, "port", 1);
        stream_pack_kv_int(&pk, "epoch", 3);
        stream_pack_kv_bool(&pk, "fenced", false);
    }
    stream_pack_key(&pk, "topics");
    int n_topics = two_topics_same_id ? 2 : 1;
    msgpack_pack_array(&pk, n_topics);
    for (int t = 0; t < n_topics; t++) {
        uint8_t id[16];
        topic_id(id, 1);
        msgpack_pack_map(&pk, 4);
        stream_pack_kv_cstr(&pk, "name", t == 0 ? "a" : "b");
        stream_pack_kv_bin(&pk, "id", id, 16);
        stream_pack_key(&pk, "configs");
        msgpack_pack_map(&pk, 0);
        stream_pack_key(&pk, "partitions");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 5);
        stream_pack_key(&pk, "replicas");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int32(&pk, 1);
        msgpack_pack_int32(&pk, 2);
        stream_pack_kv_int(&pk, "leader", leader);
        stream_pack_kv_int(&pk, "leader_epoch", 0);
        stream_pack_key(&pk, "isr");
        msgpack_pack_array(&pk, n_isr);
        for (uint32_t i = 0; i < n_isr; i++)
            msgpack_pack_int32(&pk, isr[i]);
        stream_pack_kv_int(&pk, "partition_epoch", 0);
    }
    stream_pack_key(&pk, "requesters");
    msgpack_pack_array(&pk, 0);
}

static void test_restore_checks_the_state_is_consistent(void **state)
{
    fx *f = *state;
    stream_buf b = STREAM_BUF_INIT;
    const int32_t isr12[] = {1, 2}, isr13[] = {1, 3}, isr11[] = {1, 1};
    char err[256] = "";

    build_snapshot(&b, 1, 2, 1, isr12, 2, false);
    if (stream__meta_restore(f->md, b.data, b.len, err, sizeof err) != 0)
        fail_msg("the consistent one: %s", err);
    stream_buf_reset(&b);
    build_snapshot(&b, 2, 2, 1, isr12, 2, false);
    expect_corrupt(f->md, &b, "version 2");
    build_snapshot(&b, 1, 1, 1, isr12, 2, false);
    expect_corrupt(f->md, &b, "broker ids not strictly ascending");
    build_snapshot(&b, 1, 3, 1, isr12, 2, false);
    expect_corrupt(f->md, &b, "a replica on an unregistered broker");
    build_snapshot(&b, 1, 2, 1, isr13, 2, false);
    expect_corrupt(f->md, &b, "an isr member that is not a replica");
    build_snapshot(&b, 1, 2, 2, isr11, 1, false);
    expect_corrupt(f->md, &b, "a leader outside the isr");
    build_snapshot(&b, 1, 2, 1, isr11, 2, false);
    expect_corrupt(f->md, &b, "names a broker twice");
    build_snapshot(&b, 1, 2, 1, isr12, 0, false);
    expect_corrupt(f->md, &b, "1 to 32 broker ids");
    build_snapshot(&b, 1, 2, 1, isr12, 2, true);
    expect_corrupt(f->md, &b, "two topics share a topic id");
    stream_buf_put(&b, "\x81\xa7version\x01", 10);
    expect_corrupt(f->md, &b, "missing field 'cluster_id'");
    /* The first, consistent one is still the state. */
    assert_int_equal(stream__meta_applied_index(f->md), 9);
    assert_non_null(stream__meta_topic_find(f->md, "a", 1));
    stream_buf_release(&b);
}

/* ---- allocation failure ------------------------------------------------------------ */

/* Applies the command in cmd with the k-th allocation failing, for every k,
 * until it goes through: each failure must be ENOMEM with the state exactly
 * as before (the quorum applies the same command again later). */
static int apply_through_failures(fx *f, const stream_buf *cmd)
{
    stream_buf before = STREAM_BUF_INIT, now = STREAM_BUF_INIT;
    snapshot_of(f->md, &before);
    int n_ev = f->n_ev, rc;
    f->index += 2;
    for (long k = 0;; k++) {
        fail_after = k;
        rc = stream__meta_apply(f->md, cmd->data, cmd->len, f->index);
        bool failed = fail_after == -1 && rc == STREAM_ENOMEM;
        fail_after = -1;
        if (!failed)
            break;
        snapshot_of(f->md, &now);
        assert_int_equal(now.len, before.len);
        assert_memory_equal(now.data, before.data, before.len);
        assert_int_equal(f->n_ev, n_ev);
        assert_true(k < 10000);
    }
    stream_buf_release(&before);
    stream_buf_release(&now);
    return rc;
}

static void test_running_out_of_memory_anywhere_changes_nothing(void **state)
{
    fx *f = *state;
    stream_buf cmd = STREAM_BUF_INIT;
    uint8_t id[16];
    topic_id(id, 1);
    stream__meta_kv cfg[] = {kv("b", "1"), kv("a", "2")}, del[] = {kv("b", NULL)};
    const int32_t isr[] = {3, 1};

    for (int32_t b = 1; b <= 3; b++) {
        stream_buf_reset(&cmd);
        assert_int_equal(stream__meta_encode_register_broker(&cmd, req(f), b, "h", 1), 0);
        assert_int_equal(apply_through_failures(f, &cmd), 0);
    }
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_register_broker(&cmd, req(f), 2, "again", 2), 0);
    assert_int_equal(apply_through_failures(f, &cmd), 0); /* re-registration */
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_unfence_broker(&cmd, req(f), 3, broker(f, 3)->epoch), 0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_create_topic(&cmd, req(f), "t", id, 3, 3, rf3, cfg, 2), 0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_alter_partition(&cmd, req(f), "t", NULL, 1, 3, isr, 2, 0),
                     0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    stream_buf_reset(&cmd);
    stream__meta_alter al[] = {alter("t", 0, 3, isr, 2, 0), alter("t", 1, 1, isr, 2, 1)};
    assert_int_equal(stream__meta_encode_alter_partitions(&cmd, req(f), al, 2), 0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    assert_int_equal(topic(f, "t")->partitions[1].partition_epoch, 2);
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_create_partitions(&cmd, req(f), "t", id, 3, 2, 3, rf3), 0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    assert_int_equal(topic(f, "t")->partition_count, 5);
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_alter_configs(&cmd, req(f), "t", NULL, cfg + 1, 1, del, 1),
                     0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    stream_buf_reset(&cmd);
    assert_int_equal(stream__meta_encode_delete_topic(&cmd, req(f), "t", NULL), 0);
    assert_int_equal(apply_through_failures(f, &cmd), 0);
    assert_int_equal(stream__meta_topic_count(f->md), 0);

    /* Restore: ENOMEM anywhere leaves the state as it was. */
    rich_state(f);
    stream_buf snap = STREAM_BUF_INIT, before = STREAM_BUF_INIT, now = STREAM_BUF_INIT;
    snapshot_of(f->md, &snap);
    assert_int_equal(register_broker(f, 77), 0); /* f now differs from snap */
    snapshot_of(f->md, &before);
    char err[256];
    for (long k = 0;; k++) {
        fail_after = k;
        int rc = stream__meta_restore(f->md, snap.data, snap.len, err, sizeof err);
        bool failed = fail_after == -1;
        fail_after = -1;
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, STREAM_ENOMEM);
        snapshot_of(f->md, &now);
        assert_int_equal(now.len, before.len);
        assert_memory_equal(now.data, before.data, before.len);
    }
    stream_buf_release(&snap);
    stream_buf_release(&before);
    stream_buf_release(&now);
    stream_buf_release(&cmd);
}

/* ---- derived and adapters ------------------------------------------------------------ */

static void test_coordinator_is_the_leader_of_the_groups_offsets_partition(void **state)
{
    fx *f = *state;
    assert_int_equal(stream__meta_coordinator(f->md, "g", 1), -1); /* no offsets topic */
    three_brokers(f);
    assert_int_equal(create_topic(f, STREAM_OFFSETS_TOPIC, 1, 3, 3, rf3, NULL, 0), 0);
    const stream__meta_topic *t = topic(f, STREAM_OFFSETS_TOPIC);
    const char *groups[] = {"payments", "audit", "g1", "g2", "g3"};
    for (size_t i = 0; i < 5; i++) {
        int32_t p = stream_partition_for_key(groups[i], strlen(groups[i]), 3);
        assert_int_equal(stream__meta_coordinator(f->md, groups[i], strlen(groups[i])),
                         t->partitions[p].leader);
    }
    /* It moves with the partition's leadership. */
    int32_t p = stream_partition_for_key("payments", 8, 3);
    const int32_t isr3[] = {3};
    assert_int_equal(alter_partition(f, STREAM_OFFSETS_TOPIC, p, 3, isr3, 1, 0), 0);
    assert_int_equal(stream__meta_coordinator(f->md, "payments", 8), 3);
}

static void test_fsm_adapter_and_constructor(void **state)
{
    fx *f = *state;
    stream__quorum_fsm fsm;
    stream__meta_fsm(f->md, &fsm);
    assert_ptr_equal(fsm.arg, f->md);
    assert_int_equal(stream__meta_encode_register_broker(&f->b, req(f), 1, "h", 1), 0);
    assert_int_equal(fsm.apply(fsm.arg, f->b.data, f->b.len, 5), 0);
    stream_buf s = STREAM_BUF_INIT;
    assert_int_equal(fsm.snapshot(fsm.arg, &s), 0);
    char err[128];
    assert_int_equal(fsm.restore(fsm.arg, s.data, s.len, err, sizeof err), 0);
    assert_int_equal(fsm.restore(fsm.arg, s.data, 3, err, sizeof err), STREAM_ECORRUPT);
    stream_buf_release(&s);
    assert_string_equal(stream__meta_cluster_id(f->md), "cluster-1");
    assert_null(stream__meta_new("bad id"));
    assert_null(stream__meta_new(""));
    assert_null(stream__meta_new(NULL));
    stream__meta_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_register_gives_the_log_index_as_epoch_and_starts_fenced),
        T(test_a_broker_kafka_listener_is_kept_and_survives_a_snapshot),
        T(test_fence_and_unfence_need_the_current_epoch),
        T(test_create_topic_leaders_isr_epochs_and_configs),
        T(test_create_topic_errors_change_nothing),
        T(test_delete_topic_and_the_topic_id_guard),
        T(test_create_partitions_appends_and_refuses_stale_counts),
        T(test_alter_partition_bumps_epochs_and_refuses_stale_changes),
        T(test_alter_partitions_applies_each_change_and_skips_refused_ones),
        T(test_a_fenced_brokers_leaderships_move_in_batches),
        T(test_alter_configs_sets_and_deletes),
        T(test_a_repeated_request_returns_its_result_and_changes_nothing),
        T(test_request_ids_are_remembered_within_their_bounds),
        T(test_bad_commands_are_ebadreq_and_change_nothing),
        T(test_every_command_round_trips_through_the_codec),
        T(test_snapshot_restore_round_trip_is_the_same_state),
        T(test_restore_refuses_damaged_snapshots_and_keeps_the_state),
        T(test_restore_checks_the_state_is_consistent),
        T(test_running_out_of_memory_anywhere_changes_nothing),
        T(test_coordinator_is_the_leader_of_the_groups_offsets_partition),
        T(test_fsm_adapter_and_constructor),
#undef T
    };
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
