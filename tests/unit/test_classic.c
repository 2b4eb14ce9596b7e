/*
 * test_classic.c - Kafka's classic group protocol on the coordinator
 * (coord/classic.c), driven in-process: a real broker (stream_broker_new on
 * a temp data dir, never run) whose coordinator the test calls as the
 * Kafka listener will, on the loop's thread, turning the loop by hand so
 * the coordinator's timer fires (sessions, the rebalance timeout, the
 * initial delay). Every step of a rebalance is looked at: ids handed out
 * first (KIP-394), joins held until every member rejoined, the leader
 * alone getting the members' metadata, syncs held for the leader's
 * assignments, heartbeats telling members to rejoin, laggards and expired
 * sessions removed, fencing of commits, the protocol vote, bad joins.
 * Margins are wide (a timer is never asserted within 3x of its deadline)
 * so the ASan build on a loaded machine sees the same steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "coord/classic.h"
#include "coord/group_internal.h"
#include "stream/broker.h"
#include "stream/config.h"

typedef struct fixture {
    char dir[64];
    stream_broker *b;
    stream__coord *co;
    uv_loop_t *loop;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_classic.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    stream_config *cfg = stream_config_new();
    char err[256];
    assert_int_equal(stream_config_set(cfg, "data.dir", f->dir, err, sizeof(err)), 0);
    assert_int_equal(stream_config_set(cfg, "listen", "127.0.0.1:0", err, sizeof(err)), 0);
    /* The Kafka listener's port is another test's (kafka.bats) to take. */
    assert_int_equal(stream_config_set(cfg, "kafka.listen", "off", err, sizeof(err)), 0);
    assert_int_equal(stream_config_set(cfg, "metrics.listen", "off", err, sizeof(err)), 0);
    assert_int_equal(stream_config_set(cfg, "group.min.session.timeout.ms", "50", err, sizeof(err)),
                     0);
    assert_int_equal(
        stream_config_set(cfg, "group.initial.rebalance.delay.ms", "300", err, sizeof(err)), 0);
    stream_broker_options o;
    stream_broker_options_init(&o);
    o.config = cfg;
    int rc = stream_broker_new(&o, &f->b, err, sizeof(err));
    if (rc != 0)
        fail_msg("broker: %s", err);
    stream_config_free(cfg);
    f->co = stream__classic_coord(f->b);
    assert_non_null(f->co);
    f->loop = stream__host_loop(f->b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_broker_stop(f->b);
    stream_broker_run(f->b);
    stream_broker_free(f->b);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Lets ms pass and the coordinator's timer fire. */
static void pass(fixture *f, int ms)
{
    usleep((useconds_t)ms * 1000);
    uv_update_time(f->loop);
    uv_run(f->loop, UV_RUN_NOWAIT);
}

/* ---- a member as the test sees it ---- */

typedef struct member {
    const char *instance; /* group.instance.id; NULL: dynamic */
    char id[256];
    bool joined; /* a join answer arrived */
    int16_t join_error;
    int32_t generation;
    char leader[256];
    char protocol[64];
    int nmembers;     /* in the join answer */
    char meta[8][32]; /* the leader's view: each member's metadata */
    stream__classic_wait *jw;
    bool synced;
    int16_t sync_error;
    char assignment[64];
    stream__classic_wait *sw;
} member;

static void on_join(void *arg, const stream__classic_join_result *res)
{
    member *m = arg;
    m->joined = true;
    m->jw = NULL;
    m->join_error = res->error;
    m->generation = res->generation;
    if (res->member_id != m->id) /* a refusal may echo the id asked with, m->id itself */
        snprintf(m->id, sizeof(m->id), "%s", res->member_id);
    snprintf(m->leader, sizeof(m->leader), "%s", res->leader);
    snprintf(m->protocol, sizeof(m->protocol), "%s", res->protocol_name ? res->protocol_name : "");
    m->nmembers = (int)res->nmembers;
    for (size_t i = 0; i < res->nmembers && i < 8; i++)
        snprintf(m->meta[i], sizeof(m->meta[i]), "%.*s", (int)res->members[i].meta_len,
                 (const char *)res->members[i].meta);
}

static void on_sync(void *arg, const stream__classic_sync_result *res)
{
    member *m = arg;
    m->synced = true;
    m->sw = NULL;
    m->sync_error = res->error;
    snprintf(m->assignment, sizeof(m->assignment), "%.*s", (int)res->assignment_len,
             res->assignment ? (const char *)res->assignment : "");
}

/* The rebalance timeout joins ask for. */
static int32_t rebalance_ms = 400;

/* Sends a JoinGroup for m with protocols "range" (metadata = meta, len
 * bytes) and, when roundrobin_first, "roundrobin" before it. */
static void join_bytes(fixture *f, const char *group, member *m, const uint8_t *meta, size_t len,
                       bool roundrobin_first, bool require_id, int session_ms)
{
    stream__classic_protocol p[2] = {
        {"range", meta, len},
        {"roundrobin", meta, len},
    };
    if (roundrobin_first) {
        stream__classic_protocol t = p[0];
        p[0] = p[1];
        p[1] = t;
    }
    stream__classic_join_req req = {
        .group = group,
        .member_id = m->id,
        .client_id = "rdkafka",
        .client_host = "127.0.0.1",
        .protocol_type = "consumer",
        .protocols = p,
        .nprotocols = roundrobin_first ? 2 : 1,
        .group_instance_id = m->instance,
        .session_timeout_ms = session_ms,
        .rebalance_timeout_ms = rebalance_ms,
        .require_known_member_id = require_id,
    };
    m->joined = false;
    uv_update_time(f->loop);
    stream__classic_join(f->co, &req, on_join, m, &m->jw);
}

/* The same with a string's bytes as the metadata. */
static void join(fixture *f, const char *group, member *m, const char *meta, bool roundrobin_first,
                 bool require_id, int session_ms)
{
    join_bytes(f, group, m, (const uint8_t *)meta, strlen(meta), roundrobin_first, require_id,
               session_ms);
}

static void sync_(fixture *f, const char *group, member *m, const stream__classic_assignment *a,
                  size_t n)
{
    m->synced = false;
    uv_update_time(f->loop);
    stream__classic_sync(f->co, group, m->id, m->instance, m->generation, "consumer", m->protocol,
                         a, n, on_sync, m, &m->sw);
}

/* ---- tests ---- */

static void test_one_member_round(void **state)
{
    fixture *f = *state;
    member a = {0};
    /* v4+: the id first. */
    join(f, "g1", &a, "subA", false, true, 1000);
    assert_true(a.joined);
    assert_int_equal(a.join_error, STREAM__KAFKA_MEMBER_ID_REQUIRED);
    assert_true(strncmp(a.id, "rdkafka-", 8) == 0);
    /* Joining with it: held for the initial delay, then answered. */
    join(f, "g1", &a, "subA", false, true, 1000);
    assert_false(a.joined);
    assert_non_null(a.jw);
    pass(f, 400);
    assert_true(a.joined);
    assert_int_equal(a.join_error, 0);
    assert_int_equal(a.generation, 1);
    assert_string_equal(a.leader, a.id);
    assert_string_equal(a.protocol, "range");
    assert_int_equal(a.nmembers, 1);
    assert_string_equal(a.meta[0], "subA");
    /* Heartbeats before the sync: fine (CompletingRebalance). */
    assert_int_equal(stream__classic_heartbeat(f->co, "g1", a.id, NULL, 1), 0);
    stream__classic_assignment as = {a.id, (const uint8_t *)"p0,p1", 5};
    sync_(f, "g1", &a, &as, 1);
    assert_true(a.synced);
    assert_int_equal(a.sync_error, 0);
    assert_string_equal(a.assignment, "p0,p1");
    stream__classic_group_info info;
    assert_true(stream__classic_describe(f->co, "g1", &info, NULL, NULL));
    assert_string_equal(info.state, "Stable");
    assert_string_equal(info.protocol_type, "consumer");
    assert_string_equal(info.protocol_name, "range");
    /* Wrong generation, unknown member. */
    assert_int_equal(stream__classic_heartbeat(f->co, "g1", a.id, NULL, 7),
                     STREAM__KAFKA_ILLEGAL_GENERATION);
    assert_int_equal(stream__classic_heartbeat(f->co, "g1", "nobody", NULL, 1),
                     STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    /* Commits: the member at its generation; not a stale one; not outside. */
    assert_int_equal(stream__classic_commit_check(f->co, "g1", a.id, NULL, 1), 0);
    assert_int_equal(stream__classic_commit_check(f->co, "g1", a.id, NULL, 0),
                     STREAM__KAFKA_ILLEGAL_GENERATION);
    assert_int_equal(stream__classic_commit_check(f->co, "g1", "", NULL, -1),
                     STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    assert_int_equal(stream__classic_leave(f->co, "g1", a.id, NULL), 0);
    assert_false(stream__classic_describe(f->co, "g1", &info, NULL, NULL)); /* gone: no offsets */
    /* A standalone commit to a group nobody is in. */
    assert_int_equal(stream__classic_commit_check(f->co, "g1", "", NULL, -1), 0);
}

static void test_two_members_rebalance(void **state)
{
    fixture *f = *state;
    member a = {0}, b = {0};
    join(f, "g2", &a, "A", false, false, 1000); /* v0-v3: member made at once */
    join(f, "g2", &b, "B", false, false, 1000);
    assert_false(a.joined);
    assert_false(b.joined);
    pass(f, 400);
    assert_true(a.joined && b.joined);
    assert_int_equal(a.generation, 1);
    assert_int_equal(b.generation, 1);
    assert_string_equal(a.leader, a.id);
    assert_string_equal(b.leader, a.id);
    assert_int_equal(a.nmembers, 2); /* the leader sees everyone */
    assert_string_equal(a.meta[0], "A");
    assert_string_equal(a.meta[1], "B");
    assert_int_equal(b.nmembers, 0);
    /* The follower's sync waits for the leader's. */
    sync_(f, "g2", &b, NULL, 0);
    assert_false(b.synced);
    stream__classic_assignment as[2] = {{a.id, (const uint8_t *)"a0", 2},
                                        {b.id, (const uint8_t *)"b1", 2}};
    sync_(f, "g2", &a, as, 2);
    assert_true(a.synced && b.synced);
    assert_string_equal(a.assignment, "a0");
    assert_string_equal(b.assignment, "b1");

    /* A third member: the others hear REBALANCE_IN_PROGRESS on their
     * heartbeat, rejoin, and the round completes without waiting for the
     * rebalance timeout. */
    member c = {0};
    join(f, "g2", &c, "C", false, false, 1000);
    assert_false(c.joined);
    assert_int_equal(stream__classic_heartbeat(f->co, "g2", a.id, NULL, 1),
                     STREAM__KAFKA_REBALANCE_IN_PROGRESS);
    join(f, "g2", &a, "A", false, false, 1000);
    assert_false(a.joined);
    join(f, "g2", &b, "B", false, false, 1000);
    assert_true(a.joined && b.joined && c.joined);
    assert_int_equal(c.generation, 2);
    assert_string_equal(c.leader, a.id); /* the leader stays */
    assert_int_equal(a.nmembers, 3);
    /* A stale generation's commit is refused; in CompletingRebalance, a
     * current one waits for the sync (REBALANCE_IN_PROGRESS). */
    assert_int_equal(stream__classic_commit_check(f->co, "g2", b.id, NULL, 1),
                     STREAM__KAFKA_ILLEGAL_GENERATION);
    assert_int_equal(stream__classic_commit_check(f->co, "g2", b.id, NULL, 2),
                     STREAM__KAFKA_REBALANCE_IN_PROGRESS);

    /* The leader does not sync yet; b's sync is held meanwhile, however
     * long a heartbeats. Then c leaves: a rebalance starts. */
    sync_(f, "g2", &b, NULL, 0);
    assert_false(b.synced);
    for (int i = 0; i < 5; i++) {
        pass(f, 60); /* ... < c's 1000 ms session; nothing happens */
        assert_int_equal(stream__classic_heartbeat(f->co, "g2", a.id, NULL, 2), 0);
    }
    assert_false(b.synced);
    stream__classic_cancel(b.sw); /* b's connection closed: never called back */
    b.sw = NULL;
    assert_int_equal(stream__classic_leave(f->co, "g2", c.id, NULL), 0);
    assert_int_equal(stream__classic_heartbeat(f->co, "g2", a.id, NULL, 2),
                     STREAM__KAFKA_REBALANCE_IN_PROGRESS);
    assert_false(b.synced);
    join(f, "g2", &a, "A", false, false, 1000);
    /* b does not rejoin: after the rebalance timeout (400 ms) it is out. */
    assert_false(a.joined);
    pass(f, 450);
    assert_true(a.joined);
    assert_int_equal(a.join_error, 0);
    assert_int_equal(a.generation, 3);
    assert_int_equal(a.nmembers, 1);
    assert_int_equal(stream__classic_heartbeat(f->co, "g2", b.id, NULL, 2),
                     STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    assert_int_equal(stream__classic_leave(f->co, "g2", a.id, NULL), 0);
}

static void test_session_expiry_and_rejoin_answer(void **state)
{
    fixture *f = *state;
    member a = {0}, b = {0};
    join(f, "g3", &a, "A", false, false, 5000);
    join(f, "g3", &b, "B", false, false, 200);
    pass(f, 400);
    assert_true(a.joined && b.joined);
    stream__classic_assignment as[2] = {{a.id, (const uint8_t *)"x", 1},
                                        {b.id, (const uint8_t *)"y", 1}};
    sync_(f, "g3", &b, NULL, 0);
    sync_(f, "g3", &a, as, 2);
    assert_true(b.synced);
    /* A follower that lost its join answer joins again with the same
     * metadata: answered at once with the current generation. */
    join(f, "g3", &b, "B", false, false, 200);
    assert_true(b.joined);
    assert_int_equal(b.generation, 1);
    assert_int_equal(b.nmembers, 0);
    /* b stops heartbeating: out after its 200 ms session (a's is 5 s),
     * and a's next heartbeat says rebalance. */
    pass(f, 700);
    assert_int_equal(stream__classic_heartbeat(f->co, "g3", a.id, NULL, 1),
                     STREAM__KAFKA_REBALANCE_IN_PROGRESS);
    assert_int_equal(stream__classic_heartbeat(f->co, "g3", b.id, NULL, 1),
                     STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    join(f, "g3", &a, "A", false, false, 5000);
    assert_true(a.joined); /* the only member left rejoined: at once */
    assert_int_equal(a.generation, 2);
    assert_int_equal(stream__classic_leave(f->co, "g3", a.id, NULL), 0);
}

static void test_protocols(void **state)
{
    fixture *f = *state;
    member a = {0}, b = {0}, x = {0};
    /* a prefers roundrobin (and has range); b only range: range is the
     * one both support. */
    join(f, "g4", &a, "A", true, false, 1000);
    join(f, "g4", &b, "B", false, false, 1000);
    pass(f, 400);
    assert_true(a.joined && b.joined);
    assert_string_equal(a.protocol, "range");
    /* Another protocol type, or no common protocol: refused. */
    stream__classic_protocol p = {"sticky", (const uint8_t *)"", 0};
    stream__classic_join_req req = {.group = "g4",
                                    .member_id = "",
                                    .client_id = "x",
                                    .client_host = "127.0.0.1",
                                    .protocol_type = "consumer",
                                    .protocols = &p,
                                    .nprotocols = 1,
                                    .session_timeout_ms = 1000,
                                    .rebalance_timeout_ms = 1000};
    stream__classic_join(f->co, &req, on_join, &x, &x.jw);
    assert_true(x.joined);
    assert_int_equal(x.join_error, STREAM__KAFKA_INCONSISTENT_GROUP_PROTOCOL);
    req.protocol_type = "connect";
    x.joined = false;
    stream__classic_join(f->co, &req, on_join, &x, &x.jw);
    assert_int_equal(x.join_error, STREAM__KAFKA_INCONSISTENT_GROUP_PROTOCOL);
    /* Session timeout outside the broker's bounds. */
    req.protocol_type = "consumer";
    req.session_timeout_ms = 10;
    stream__classic_join(f->co, &req, on_join, &x, &x.jw);
    assert_int_equal(x.join_error, STREAM__KAFKA_INVALID_SESSION_TIMEOUT);
    /* Unknown member id (with a protocol that fits: Kafka checks that
     * first). */
    req.session_timeout_ms = 1000;
    req.member_id = "made-up";
    p.name = "range";
    stream__classic_join(f->co, &req, on_join, &x, &x.jw);
    assert_int_equal(x.join_error, STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    assert_int_equal(stream__classic_leave(f->co, "g4", a.id, NULL), 0);
    assert_int_equal(stream__classic_leave(f->co, "g4", b.id, NULL), 0);
}

static void test_pending_id_expires(void **state)
{
    fixture *f = *state;
    member a = {0}, ghost = {0};
    join(f, "g5", &ghost, "G", false, true, 1500); /* takes an id, never comes back */
    assert_int_equal(ghost.join_error, STREAM__KAFKA_MEMBER_ID_REQUIRED);
    rebalance_ms = 20000; /* so only the pending id's expiry can end the wait */
    join(f, "g5", &a, "A", false, false, 1000);
    rebalance_ms = 400;
    pass(f, 500);
    assert_false(a.joined); /* the pending id is waited for (past the delay)... */
    pass(f, 1500);
    assert_true(a.joined); /* ... until its session ran out */
    assert_int_equal(a.nmembers, 1);
    join(f, "g5", &ghost, "G", false, true, 100);
    assert_int_equal(ghost.join_error, STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    assert_int_equal(stream__classic_leave(f->co, "g5", a.id, NULL), 0);
}

/* ---- Kafka's consumer protocol bytes ---- */

typedef struct bytes {
    uint8_t b[256];
    size_t n;
} bytes;

static void put16(bytes *x, int v)
{
    x->b[x->n++] = (uint8_t)(v >> 8);
    x->b[x->n++] = (uint8_t)v;
}

static void put32(bytes *x, int32_t v)
{
    for (int sh = 24; sh >= 0; sh -= 8)
        x->b[x->n++] = (uint8_t)((uint32_t)v >> sh);
}

static void putstr(bytes *x, const char *s)
{
    put16(x, (int)strlen(s));
    memcpy(x->b + x->n, s, strlen(s));
    x->n += strlen(s);
}

/* A subscription (version 1, no owned partitions) to two topics. */
static bytes subscription(const char *t1, const char *t2)
{
    bytes x = {.n = 0};
    put16(&x, 1);
    put32(&x, 2);
    putstr(&x, t1);
    putstr(&x, t2);
    put32(&x, -1); /* user data */
    put32(&x, 0);  /* owned partitions */
    return x;
}

/* An assignment (version 0) of partitions p of topic t. */
static bytes assignment(const char *t, const int32_t *p, int np)
{
    bytes x = {.n = 0};
    put16(&x, 0);
    put32(&x, 1);
    putstr(&x, t);
    put32(&x, np);
    for (int i = 0; i < np; i++)
        put32(&x, p[i]);
    put32(&x, -1);
    return x;
}

static void test_consumer_protocol_decoded_for_describe(void **state)
{
    fixture *f = *state;
    char **topics;
    size_t n;
    bytes sub = subscription("orders", "clicks");
    assert_int_equal(stream__consumer_subscription_decode(sub.b, sub.n, &topics, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(topics[0], "clicks"); /* sorted */
    assert_string_equal(topics[1], "orders");
    for (size_t i = 0; i < n; i++)
        free(topics[i]);
    free(topics);
    /* Cut anywhere, or lying about a count: refused, nothing kept. */
    for (size_t cut = 0; cut < 2 + 4 + 8 - 1; cut++)
        assert_int_equal(stream__consumer_subscription_decode(sub.b, cut, &topics, &n),
                         STREAM_ECORRUPT);
    bytes lie = {.n = 0};
    put16(&lie, 0);
    put32(&lie, 1000000);
    assert_int_equal(stream__consumer_subscription_decode(lie.b, lie.n, &topics, &n),
                     STREAM_ECORRUPT);
    assert_null(topics);
    int32_t p02[] = {0, 2}, p1[] = {1};
    bytes asg = assignment("orders", p02, 2);
    stream__pset ps;
    stream__pset_init(&ps);
    assert_int_equal(stream__consumer_assignment_decode(asg.b, asg.n, &ps), 0);
    assert_true(stream__pset_has(&ps, "orders", 0) && stream__pset_has(&ps, "orders", 2));
    assert_int_equal(ps.count, 2);
    assert_int_equal(stream__consumer_assignment_decode(asg.b, asg.n - 7, &ps), STREAM_ECORRUPT);
    assert_int_equal(ps.count, 0);
    stream__pset_release(&ps);

    /* A group of two real consumers: describe_group shows what each
     * subscribes to and was given, and who owns a partition. */
    bytes sa = subscription("orders", "clicks"), sb = subscription("orders", "clicks");
    member a = {0}, b = {0};
    join_bytes(f, "g6", &a, sa.b, sa.n, false, false, 1000);
    join_bytes(f, "g6", &b, sb.b, sb.n, false, false, 1000);
    pass(f, 400);
    assert_true(a.joined && b.joined);
    bytes aa = assignment("orders", p02, 2), ab = assignment("orders", p1, 1);
    stream__classic_assignment as[2] = {{a.id, aa.b, aa.n}, {b.id, ab.b, ab.n}};
    sync_(f, "g6", &b, NULL, 0);
    sync_(f, "g6", &a, as, 2);
    assert_true(a.synced && b.synced);
    stream__group *g = stream__group_find(f->co, "g6");
    assert_non_null(g);
    assert_string_equal(stream__classic_state_name(g->classic), "Stable");
    assert_int_equal(stream__classic_members(g->classic), 2);
    assert_string_equal(stream__classic_owner(g->classic, "orders", 0), a.id);
    assert_string_equal(stream__classic_owner(g->classic, "orders", 1), b.id);
    assert_string_equal(stream__classic_owner(g->classic, "orders", 2), a.id);
    assert_null(stream__classic_owner(g->classic, "clicks", 0));
    stream__pset parts;
    stream__pset_init(&parts);
    assert_int_equal(stream__classic_add_assigned(g->classic, &parts), 0);
    assert_int_equal(parts.count, 3);
    stream__pset_release(&parts);
    /* A rebalance: nobody owns anything until the group is stable again. */
    member c = {0};
    join(f, "g6", &c, "not the consumer protocol", false, false, 1000);
    assert_null(stream__classic_owner(g->classic, "orders", 0));
    assert_int_equal(stream__classic_leave(f->co, "g6", a.id, NULL), 0);
    assert_int_equal(stream__classic_leave(f->co, "g6", b.id, NULL), 0);
    assert_int_equal(stream__classic_leave(f->co, "g6", c.id, NULL), 0);
}

static void count_instances(void *arg, const stream__classic_member_info *mi)
{
    if (mi->group_instance_id != NULL)
        (*(int *)arg)++;
}

/* KIP-345: a static member's restarted process takes its place under a
 * new member id without a rebalance; the old id is fenced. */
static void test_static_member_rejoins_without_rebalance(void **state)
{
    fixture *f = *state;
    member a = {.instance = "i-a"}, b = {.instance = "i-b"};
    /* A static member joins at once, even where KIP-394 asks a dynamic one
     * for its id first. */
    join(f, "gs", &a, "A", false, true, 1000);
    join(f, "gs", &b, "B", false, true, 1000);
    assert_false(a.joined);
    pass(f, 400);
    assert_true(a.joined && b.joined);
    assert_int_equal(a.join_error, 0);
    assert_int_equal(a.generation, 1);
    stream__classic_assignment as[2] = {{a.id, (const uint8_t *)"a0", 2},
                                        {b.id, (const uint8_t *)"b1", 2}};
    sync_(f, "gs", &b, NULL, 0);
    sync_(f, "gs", &a, as, 2);
    assert_true(a.synced && b.synced);
    int statics = 0;
    stream__classic_group_info info;
    stream__classic_describe(f->co, "gs", &info, count_instances, &statics);
    assert_int_equal(statics, 2);

    /* b's process restarts: no member id, same instance, same metadata. */
    member b2 = {.instance = "i-b"};
    join(f, "gs", &b2, "B", false, true, 1000);
    assert_true(b2.joined);
    assert_int_equal(b2.join_error, 0);
    assert_int_equal(b2.generation, 1); /* no rebalance */
    assert_string_not_equal(b2.id, b.id);
    assert_string_equal(b2.leader, a.id);
    assert_int_equal(b2.nmembers, 0);
    sync_(f, "gs", &b2, NULL, 0);
    assert_true(b2.synced);
    assert_string_equal(b2.assignment, "b1"); /* what it had */
    assert_int_equal(stream__classic_heartbeat(f->co, "gs", a.id, "i-a", 1), 0);
    stream__classic_describe(f->co, "gs", &info, NULL, NULL);
    assert_string_equal(info.state, "Stable");
    /* The old process is fenced wherever it names the instance; without
     * it, its id is simply unknown. */
    assert_int_equal(stream__classic_heartbeat(f->co, "gs", b.id, "i-b", 1),
                     STREAM__KAFKA_FENCED_INSTANCE_ID);
    assert_int_equal(stream__classic_commit_check(f->co, "gs", b.id, "i-b", 1),
                     STREAM__KAFKA_FENCED_INSTANCE_ID);
    assert_int_equal(stream__classic_heartbeat(f->co, "gs", b.id, NULL, 1),
                     STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    join(f, "gs", &b, "B", false, true, 1000);
    assert_int_equal(b.join_error, STREAM__KAFKA_FENCED_INSTANCE_ID);
    assert_int_equal(stream__classic_leave(f->co, "gs", b.id, "i-b"),
                     STREAM__KAFKA_FENCED_INSTANCE_ID);

    /* The leader restarts: told of the old leader, it does not assign. */
    member a2 = {.instance = "i-a"};
    join(f, "gs", &a2, "A", false, true, 1000);
    assert_int_equal(a2.generation, 1);
    assert_string_equal(a2.leader, a.id);
    assert_string_not_equal(a2.leader, a2.id);
    sync_(f, "gs", &a2, NULL, 0);
    assert_string_equal(a2.assignment, "a0");

    /* New metadata from a returning static member does rebalance. */
    member b3 = {.instance = "i-b"};
    join(f, "gs", &b3, "B2", false, true, 1000);
    assert_false(b3.joined);
    assert_int_equal(stream__classic_heartbeat(f->co, "gs", a2.id, "i-a", 1),
                     STREAM__KAFKA_REBALANCE_IN_PROGRESS);
    join(f, "gs", &a2, "A", false, true, 1000);
    assert_true(a2.joined && b3.joined);
    assert_int_equal(b3.generation, 2);
    assert_string_equal(a2.leader, a2.id); /* the restarted leader leads */
    assert_int_equal(a2.nmembers, 2);

    /* LeaveGroup by instance id (member id "" or the holder's). */
    assert_int_equal(stream__classic_leave(f->co, "gs", "", "i-nobody"),
                     STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    assert_int_equal(stream__classic_leave(f->co, "gs", "", "i-b"), 0);
    assert_int_equal(stream__classic_leave(f->co, "gs", a2.id, "i-a"), 0);
    stream__classic_describe(f->co, "gs", &info, NULL, NULL);
    assert_int_equal(info.nmembers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_member_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_members_rebalance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expiry_and_rejoin_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocols, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_id_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_member_rejoins_without_rebalance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_consumer_protocol_decoded_for_describe, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
