/*
 * test_election.c - partition leader election (libstream/cluster/election.c):
 * the changes computed when a leader is fenced, when the last ISR member
 * dies (offline, ISR kept), when it comes back, with unclean election on,
 * and replica placement. States are built with the metadata's own commands,
 * and each change is applied back to check that apply accepts it.
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

typedef struct fx {
    stream__meta *md;
    stream_buf b;
    uint64_t index;
    uint64_t seq;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->md = stream__meta_new("c1");
    assert_non_null(f->md);
    stream_buf_init(&f->b);
    f->index = 10;
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
    return (stream__meta_req){9, ++f->seq};
}

static int apply(fx *f)
{
    f->index += 2;
    int rc = stream__meta_apply(f->md, f->b.data, f->b.len, f->index);
    stream_buf_reset(&f->b);
    return rc;
}

static int64_t epoch_of(fx *f, int32_t id)
{
    const stream__meta_broker *mb = stream__meta_broker_find(f->md, id);
    assert_non_null(mb);
    return mb->epoch;
}

/* Registers brokers 1..n, unfenced. */
static void brokers(fx *f, int32_t n)
{
    for (int32_t id = 1; id <= n; id++) {
        assert_int_equal(
            stream__meta_encode_register_broker(&f->b, req(f), id, "127.0.0.1", (uint16_t)id), 0);
        assert_int_equal(apply(f), 0);
        assert_int_equal(stream__meta_encode_unfence_broker(&f->b, req(f), id, epoch_of(f, id)), 0);
        assert_int_equal(apply(f), 0);
    }
}

static void set_fenced(fx *f, int32_t id, bool fenced)
{
    int rc = fenced ? stream__meta_encode_fence_broker(&f->b, req(f), id, epoch_of(f, id))
                    : stream__meta_encode_unfence_broker(&f->b, req(f), id, epoch_of(f, id));
    assert_int_equal(rc, 0);
    assert_int_equal(apply(f), 0);
}

static const stream__meta_topic *create(fx *f, const char *name, int32_t parts, int32_t rf,
                                        const int32_t *replicas, bool unclean)
{
    uint8_t id[16] = {0};
    id[0] = 1;
    memcpy(id + 1, name, strlen(name) < 15 ? strlen(name) : 15);
    stream__meta_kv cfg = {STREAM__ELECT_UNCLEAN_KEY, strlen(STREAM__ELECT_UNCLEAN_KEY), "true", 4};
    assert_int_equal(stream__meta_encode_create_topic(&f->b, req(f), name, id, parts, rf, replicas,
                                                      &cfg, unclean ? 1 : 0),
                     0);
    assert_int_equal(apply(f), 0);
    const stream__meta_topic *t = stream__meta_topic_find(f->md, name, strlen(name));
    assert_non_null(t);
    return t;
}

static const stream__meta_partition *part(fx *f, const char *name, int32_t p)
{
    const stream__meta_topic *t = stream__meta_topic_find(f->md, name, strlen(name));
    assert_non_null(t);
    return &t->partitions[p];
}

/* Applies a computed change; returns apply's verdict. */
static int apply_change(fx *f, const stream__elect_change *c)
{
    assert_int_equal(stream__meta_encode_alter_partition(&f->b, req(f), c->topic->name,
                                                         c->topic->id, c->partition, c->leader,
                                                         c->isr, c->n_isr, c->partition_epoch),
                     0);
    return apply(f);
}

/* Applies every change stream__elect_all computes; returns how many. */
static bool apply_one(void *arg, const stream__elect_change *c)
{
    fx *f = arg;
    assert_int_equal(apply_change(f, c), 0);
    return true;
}

static size_t elect_all(fx *f, bool unclean_default)
{
    /* Changes are applied as they are computed: each touches its own
     * partition, and the topic pointers stay valid across alter_partition. */
    return stream__elect_all(f->md, unclean_default, apply_one, f);
}

static void assert_ids(const int32_t *ids, uint32_t n, const int32_t *want, uint32_t n_want)
{
    assert_int_equal(n, n_want);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
}

static void test_healthy_partition_needs_no_change(void **state)
{
    fx *f = *state;
    brokers(f, 3);
    const int32_t r[] = {1, 2, 3};
    const stream__meta_topic *t = create(f, "a", 1, 3, r, false);
    stream__elect_change c;
    assert_false(stream__elect_partition(f->md, t, 0, false, &c));
    assert_int_equal(elect_all(f, false), 0);
}

static void test_fenced_leader_moves_to_first_live_isr_member(void **state)
{
    fx *f = *state;
    brokers(f, 3);
    const int32_t r[] = {2, 3, 1};
    const stream__meta_topic *t = create(f, "a", 1, 3, r, false);
    assert_int_equal(part(f, "a", 0)->leader, 2);
    set_fenced(f, 2, true);
    stream__elect_change c;
    assert_true(stream__elect_partition(f->md, t, 0, false, &c));
    assert_int_equal(c.leader, 3);
    const int32_t isr[] = {3, 1};
    assert_ids(c.isr, c.n_isr, isr, 2);
    assert_int_equal(c.partition_epoch, 0);
    assert_false(c.unclean);
    assert_int_equal(apply_change(f, &c), 0);
    const stream__meta_partition *mp = part(f, "a", 0);
    assert_int_equal(mp->leader, 3);
    assert_int_equal(mp->leader_epoch, 1);
    assert_int_equal(mp->partition_epoch, 1);
    /* The same change again is refused as stale. */
    assert_int_equal(apply_change(f, &c), STREAM_ESTALEEPOCH);
}

static void test_fenced_follower_leaves_isr_leader_stays(void **state)
{
    fx *f = *state;
    brokers(f, 3);
    const int32_t r[] = {1, 2, 3};
    create(f, "a", 1, 3, r, false);
    set_fenced(f, 3, true);
    assert_int_equal(elect_all(f, false), 1);
    const stream__meta_partition *mp = part(f, "a", 0);
    assert_int_equal(mp->leader, 1);
    assert_int_equal(mp->leader_epoch, 0); /* the leader did not change */
    const int32_t isr[] = {1, 2};
    assert_ids(mp->isr, mp->n_isr, isr, 2);
}

static void test_last_isr_member_dies_partition_offline_isr_kept(void **state)
{
    fx *f = *state;
    brokers(f, 3);
    const int32_t r[] = {1, 2};
    create(f, "a", 1, 2, r, false);
    set_fenced(f, 1, true);
    assert_int_equal(elect_all(f, false), 1);
    assert_int_equal(part(f, "a", 0)->leader, 2);
    set_fenced(f, 2, true);
    assert_int_equal(elect_all(f, false), 1);
    const stream__meta_partition *mp = part(f, "a", 0);
    assert_int_equal(mp->leader, -1);
    const int32_t isr[] = {2};
    assert_ids(mp->isr, mp->n_isr, isr, 1);
    /* Nothing more to do while every ISR member is down. */
    assert_int_equal(elect_all(f, false), 0);
    /* Broker 1 comes back: not in the ISR, so it may not lead (clean). */
    set_fenced(f, 1, false);
    assert_int_equal(elect_all(f, false), 0);
    assert_int_equal(part(f, "a", 0)->leader, -1);
    /* Broker 2, the last ISR member, comes back and leads again. */
    set_fenced(f, 2, false);
    assert_int_equal(elect_all(f, false), 1);
    mp = part(f, "a", 0);
    assert_int_equal(mp->leader, 2);
    assert_ids(mp->isr, mp->n_isr, isr, 1);
}

static void test_unclean_election_takes_a_live_replica(void **state)
{
    fx *f = *state;
    brokers(f, 3);
    const int32_t r[] = {1, 2, 3};
    create(f, "clean", 1, 2, r, false);
    create(f, "dirty", 1, 2, r, true);
    set_fenced(f, 1, true);
    elect_all(f, false);
    /* Both led by 2 with ISR {2}; broker 1 comes back, 2 dies. */
    set_fenced(f, 1, false);
    set_fenced(f, 2, true);
    elect_all(f, false);
    assert_int_equal(part(f, "clean", 0)->leader, -1);
    const stream__meta_partition *mp = part(f, "dirty", 0);
    assert_int_equal(mp->leader, 1);
    const int32_t isr[] = {1};
    assert_ids(mp->isr, mp->n_isr, isr, 1);
    /* The broker default turns it on for topics without an override. */
    elect_all(f, true);
    assert_int_equal(part(f, "clean", 0)->leader, 1);
}

static void test_unclean_override_false_wins_over_broker_default(void **state)
{
    fx *f = *state;
    brokers(f, 1);
    const int32_t r[] = {1};
    uint8_t id[16] = {7};
    stream__meta_kv cfg = {STREAM__ELECT_UNCLEAN_KEY, strlen(STREAM__ELECT_UNCLEAN_KEY), "False",
                           5};
    assert_int_equal(stream__meta_encode_create_topic(&f->b, req(f), "t", id, 1, 1, r, &cfg, 1), 0);
    assert_int_equal(apply(f), 0);
    const stream__meta_topic *t = stream__meta_topic_find(f->md, "t", 1);
    assert_false(stream__elect_unclean_enabled(t, true));
}

static void test_every_partition_of_a_dead_broker_moves(void **state)
{
    fx *f = *state;
    brokers(f, 3);
    int32_t ids[] = {1, 2, 3};
    int32_t r[6 * 3];
    stream__elect_place(ids, 3, 0, 6, 3, r);
    create(f, "many", 6, 3, r, false);
    size_t led = 0;
    for (int32_t p = 0; p < 6; p++)
        led += part(f, "many", p)->leader == 2;
    assert_int_equal(led, 2);
    set_fenced(f, 2, true);
    /* Every partition changes: 2 left each ISR, and two lost their leader. */
    assert_int_equal(elect_all(f, false), 6);
    size_t under, offline;
    stream__elect_health(f->md, &under, &offline);
    assert_int_equal(under, 6);
    assert_int_equal(offline, 0);
    for (int32_t p = 0; p < 6; p++) {
        const stream__meta_partition *mp = part(f, "many", p);
        assert_int_not_equal(mp->leader, 2);
        assert_int_equal(mp->n_isr, 2);
    }
}

static void test_placement_spreads_leaders_and_replicas(void **state)
{
    (void)state;
    int32_t ids[] = {4, 5, 6};
    int32_t out[4 * 2];
    stream__elect_place(ids, 3, 1, 4, 2, out);
    const int32_t want[] = {5, 6, 6, 4, 4, 5, 5, 6};
    assert_ids(out, 8, want, 8);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_healthy_partition_needs_no_change),
        T(test_fenced_leader_moves_to_first_live_isr_member),
        T(test_fenced_follower_leaves_isr_leader_stays),
        T(test_last_isr_member_dies_partition_offline_isr_kept),
        T(test_unclean_election_takes_a_live_replica),
        T(test_unclean_override_false_wins_over_broker_default),
        T(test_every_partition_of_a_dead_broker_moves),
        cmocka_unit_test(test_placement_spreads_leaders_and_replicas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
