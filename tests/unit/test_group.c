/*
 * test_group.c - the group coordinator as clients see it: a real
 * stream-broker process spoken to over raw sockets (tests/unit/wire.h), with
 * simulated group members that heartbeat by hand, so every step of a
 * rebalance can be looked at: assignment, stickiness, revocation before
 * reassignment, session timeouts, fencing of commits, durable offsets,
 * describe/list/delete/reset, and bad input.
 *
 * Most tests share one broker (group setup) with a low
 * group.min.session.timeout.ms and use their own topic and group names; the
 * crash test starts its own broker and kills it with SIGKILL. The
 * membership record (coord/group_meta.c) is also tested in-process:
 * encoded, decoded from good, cut and corrupt bytes, and restored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "coord/group_internal.h"
#include "wire.h"

/* ---- partition sets as the tests see them ---- */

#define MAXP 64

typedef struct pset {
    int n;
    struct {
        char topic[64];
        int32_t p;
    } e[MAXP];
} pset;

static bool ps_has(const pset *s, const char *topic, int32_t p)
{
    for (int i = 0; i < s->n; i++)
        if (s->e[i].p == p && strcmp(s->e[i].topic, topic) == 0)
            return true;
    return false;
}

static void ps_add(pset *s, const char *topic, int32_t p)
{
    if (ps_has(s, topic, p))
        return;
    assert_true(s->n < MAXP);
    snprintf(s->e[s->n].topic, sizeof(s->e[0].topic), "%s", topic);
    s->e[s->n++].p = p;
}

/* Reads [{topic, partitions}] from a response. */
static void ps_read(const msgpack_object *arr, pset *out)
{
    out->n = 0;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *t = wire_elem(arr, i);
        char topic[64];
        wire_str(t, "topic", topic, sizeof(topic));
        const msgpack_object *parts = wire_array(t, "partitions");
        assert_true(parts->via.array.size > 0); /* no empty entries */
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *o = &parts->via.array.ptr[j];
            assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
            assert_false(ps_has(out, topic, (int32_t)o->via.u64));
            ps_add(out, topic, (int32_t)o->via.u64);
        }
    }
}

/* One entry per partition: the coordinator must merge them. */
static void ps_pack(msgpack_packer *pk, const pset *s)
{
    msgpack_pack_array(pk, (size_t)s->n);
    for (int i = 0; i < s->n; i++) {
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "topic", s->e[i].topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, 1);
        msgpack_pack_int32(pk, s->e[i].p);
    }
}

static bool ps_disjoint(const pset *a, const pset *b)
{
    for (int i = 0; i < a->n; i++)
        if (ps_has(b, a->e[i].topic, a->e[i].p))
            return false;
    return true;
}

static bool ps_subset(const pset *a, const pset *b)
{
    for (int i = 0; i < a->n; i++)
        if (!ps_has(b, a->e[i].topic, a->e[i].p))
            return false;
    return true;
}

/* ---- simulated members ---- */

typedef struct member {
    char id[160];
    int32_t gen;
    int interval;     /* heartbeat_interval_ms of the last response */
    bool reconciling; /* the last response's `reconciling` */
    pset assigned;    /* the last response's assignment */
    pset owned;       /* what it reports holding */
} member;

/* join_group; topic and/or pattern may be NULL (both NULL: topics []).
 * Returns the error (library code). A well-behaved member owns what it was
 * given at once. */
static int join_as(int fd, const char *group, const char *topic, const char *pattern,
                   int session_ms, member *m, const char *existing_id)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_JOIN_GROUP, id, 5 + (pattern != NULL));
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_kv_cstr(&f.pk, "member_id", existing_id ? existing_id : "");
    stream_pack_kv_cstr(&f.pk, "client_id", "test_group");
    stream_pack_kv_int(&f.pk, "session_timeout_ms", session_ms);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, topic ? 1 : 0);
    if (topic)
        stream_pack_cstr(&f.pk, topic);
    if (pattern)
        stream_pack_kv_cstr(&f.pk, "pattern", pattern);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    int err = r.err;
    if (err == 0) {
        memset(m, 0, sizeof(*m));
        wire_str(&r.msg.root, "member_id", m->id, sizeof(m->id));
        assert_true(strlen(m->id) > 0 && strlen(m->id) <= STREAM_GROUP_MEMBER_ID_MAX);
        m->gen = (int32_t)wire_int(&r.msg.root, "generation");
        m->interval = (int)wire_int(&r.msg.root, "heartbeat_interval_ms");
        assert_int_equal(stream_field_bool(&r.msg.root, "reconciling", &m->reconciling, NULL, 0),
                         0);
        assert_true(wire_int(&r.msg.root, "session_timeout_ms") > 0);
        ps_read(wire_array(&r.msg.root, "assignment"), &m->assigned);
        m->owned = m->assigned;
    }
    wire_resp_release(&r);
    return err;
}

static int join(int fd, const char *group, const char *topic, member *m)
{
    return join_as(fd, group, topic, NULL, 10000, m, NULL);
}

/* A heartbeat reporting m->owned; m->owned is left alone (a lagging
 * member). Returns the error. */
static int hb_raw(int fd, const char *group, member *m)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HEARTBEAT, id, 4);
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_kv_cstr(&f.pk, "member_id", m->id);
    stream_pack_kv_int(&f.pk, "generation", m->gen);
    stream_pack_key(&f.pk, "owned");
    ps_pack(&f.pk, &m->owned);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    int err = r.err;
    if (err == 0) {
        m->gen = (int32_t)wire_int(&r.msg.root, "generation");
        m->interval = (int)wire_int(&r.msg.root, "heartbeat_interval_ms");
        assert_int_equal(stream_field_bool(&r.msg.root, "reconciling", &m->reconciling, NULL, 0),
                         0);
        ps_read(wire_array(&r.msg.root, "assignment"), &m->assigned);
    }
    wire_resp_release(&r);
    return err;
}

/* A well-behaved member: heartbeat, then own exactly what it was given
 * (revoked partitions released at once, new ones taken). */
static int hb(int fd, const char *group, member *m)
{
    int err = hb_raw(fd, group, m);
    if (err == 0)
        m->owned = m->assigned;
    return err;
}

static int leave(int fd, const char *group, const char *member_id)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_LEAVE_GROUP, id, 2);
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_kv_cstr(&f.pk, "member_id", member_id);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    int err = r.err;
    wire_resp_release(&r);
    return err;
}

static void describe(int fd, const char *group, wire_resp *r)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_DESCRIBE_GROUP, id, 1);
    stream_pack_kv_cstr(&f.pk, "group", group);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, r);
}

/* The group's state ("" when describe fails). */
static void group_state(int fd, const char *group, char *state, size_t len)
{
    wire_resp r;
    describe(fd, group, &r);
    state[0] = '\0';
    if (r.err == 0)
        wire_str(&r.msg.root, "state", state, len);
    wire_resp_release(&r);
}

/* Heartbeats every member (well-behaved) until the group is stable. */
static void converge(int fd, const char *group, member **ms, int n)
{
    char state[32] = "";
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < n; i++)
            assert_int_equal(hb(fd, group, ms[i]), 0);
        group_state(fd, group, state, sizeof(state));
        if (strcmp(state, "stable") == 0)
            break;
    }
    assert_string_equal(state, "stable");
    /* One more round so every member has the final assignment in hand. */
    for (int i = 0; i < n; i++)
        assert_int_equal(hb(fd, group, ms[i]), 0);
}

/* Every pair of members' assignments is disjoint. */
static void assert_disjoint(member **ms, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            assert_true(ps_disjoint(&ms[i]->assigned, &ms[j]->assigned));
}

/* commit_offsets of one partition. Returns the request error; *perr gets
 * the partition's. */
static char commit1_text[512]; /* the last commit1's error message */

static int commit1(int fd, const char *group, const char *member_id, int32_t gen, const char *topic,
                   int32_t partition, int64_t offset, const char *md, int *perr)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_COMMIT_OFFSETS, id, 4);
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_kv_cstr(&f.pk, "member_id", member_id);
    stream_pack_kv_int(&f.pk, "generation", gen);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, md ? 3 : 2);
    stream_pack_kv_int(&f.pk, "partition", partition);
    stream_pack_kv_int(&f.pk, "offset", offset);
    if (md)
        stream_pack_kv_cstr(&f.pk, "metadata", md);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    int err = r.err;
    snprintf(commit1_text, sizeof(commit1_text), "%s", r.text);
    *perr = 1;
    if (err == 0) {
        const msgpack_object *t = wire_elem(wire_array(&r.msg.root, "topics"), 0);
        char name[64];
        assert_string_equal(wire_str(t, "name", name, sizeof(name)), topic);
        const msgpack_object *p = wire_elem(wire_array(t, "partitions"), 0);
        assert_int_equal(wire_int(p, "partition"), partition);
        *perr = -(int)wire_int(p, "err");
    }
    wire_resp_release(&r);
    return err;
}

/* A standalone commit (no member) that must succeed. */
static void commit_ok(int fd, const char *group, const char *topic, int32_t partition,
                      int64_t offset)
{
    int perr;
    assert_int_equal(commit1(fd, group, "", -1, topic, partition, offset, NULL, &perr), 0);
    assert_int_equal(perr, 0);
}

/* fetch_offsets of one partition: the committed offset (-1 when none). */
static int64_t fetch1(int fd, const char *group, const char *topic, int32_t partition, char *md,
                      size_t md_len)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH_OFFSETS, id, 2);
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_int32(&f.pk, partition);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *p =
        wire_elem(wire_array(wire_elem(wire_array(&r.msg.root, "topics"), 0), "partitions"), 0);
    assert_int_equal(wire_int(p, "partition"), partition);
    assert_int_equal(wire_int(p, "err"), 0);
    int64_t off = wire_int(p, "offset");
    if (md)
        wire_str(p, "metadata", md, md_len);
    if (off < 0)
        assert_int_equal(wire_int(p, "commit_timestamp"), -1);
    wire_resp_release(&r);
    return off;
}

static int delete_group(int fd, const char *group)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_DELETE_GROUP, id, 1);
    stream_pack_key(&f.pk, "groups");
    msgpack_pack_array(&f.pk, 1);
    stream_pack_cstr(&f.pk, group);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *g = wire_elem(wire_array(&r.msg.root, "groups"), 0);
    char name[300];
    assert_string_equal(wire_str(g, "group", name, sizeof(name)), group);
    int err = -(int)wire_int(g, "err");
    wire_resp_release(&r);
    return err;
}

/* reset_offsets of `topic` (NULL: the group's topics) partition p (-1: all). */
static void reset(int fd, const char *group, const char *topic, int32_t p, const char *to,
                  bool has_value, int64_t value, bool execute, wire_resp *r)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_RESET_OFFSETS, id, 3 + (topic != NULL) + has_value);
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_kv_cstr(&f.pk, "to", to);
    stream_pack_kv_bool(&f.pk, "execute", execute);
    if (has_value)
        stream_pack_kv_int(&f.pk, "value", value);
    if (topic) {
        stream_pack_key(&f.pk, "topics");
        msgpack_pack_array(&f.pk, 1);
        msgpack_pack_map(&f.pk, p >= 0 ? 2 : 1);
        stream_pack_kv_cstr(&f.pk, "name", topic);
        if (p >= 0) {
            stream_pack_key(&f.pk, "partitions");
            msgpack_pack_array(&f.pk, 1);
            msgpack_pack_int32(&f.pk, p);
        }
    }
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, r);
}

/* ---- the shared broker ---- */

static wire_broker shared;
static int conn = -1;

static int group_setup(void **state)
{
    static const char *const sets[] = {"group.min.session.timeout.ms=100",
                                       "offsets.topic.num.partitions=3", NULL};
    wire_broker_start(&shared, "test_group", sets);
    conn = wire_connect(shared.port);
    return 0;
}

static int group_teardown(void **state)
{
    if (conn >= 0)
        close(conn);
    int rc = wire_broker_stop(&shared);
    if (rc != 0)
        fprintf(stderr, "broker exited with %d; log in %s\n", rc, shared.dir);
    else
        wire_rm_rf(shared.dir);
    return rc == 0 ? 0 : -1;
}

/* ---- assignment ---- */

static void test_single_member_is_given_every_partition(void **state)
{
    assert_int_equal(wire_create_topic(conn, "one-t", 6), 0);
    member a;
    assert_int_equal(join(conn, "one-g", "one-t", &a), 0);
    assert_int_equal(a.gen, 1);
    assert_int_equal(a.assigned.n, 6);
    assert_false(a.reconciling);
    for (int p = 0; p < 6; p++)
        assert_true(ps_has(&a.assigned, "one-t", p));
    /* 10 s session: a third, capped at 3 s. */
    assert_int_equal(a.interval, 3000);
    assert_int_equal(hb(conn, "one-g", &a), 0);
    assert_int_equal(a.assigned.n, 6);
    assert_int_equal(a.gen, 1);
    char st[32];
    group_state(conn, "one-g", st, sizeof(st));
    assert_string_equal(st, "stable");
    assert_int_equal(leave(conn, "one-g", a.id), 0);
}

static void test_three_members_get_two_of_six_partitions_each(void **state)
{
    assert_int_equal(wire_create_topic(conn, "three-t", 6), 0);
    member a, b, c;
    member *ms[] = {&a, &b, &c};
    assert_int_equal(join(conn, "three-g", "three-t", &a), 0);
    assert_int_equal(join(conn, "three-g", "three-t", &b), 0);
    assert_int_equal(join(conn, "three-g", "three-t", &c), 0);
    assert_string_not_equal(a.id, b.id);
    assert_string_not_equal(b.id, c.id);
    converge(conn, "three-g", ms, 3);
    pset all = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms[i]->assigned.n, 2);
        for (int j = 0; j < 2; j++)
            ps_add(&all, ms[i]->assigned.e[j].topic, ms[i]->assigned.e[j].p);
    }
    assert_int_equal(all.n, 6);
    assert_disjoint(ms, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(leave(conn, "three-g", ms[i]->id), 0);
}

static void test_rebalance_is_sticky_and_balanced_on_join_and_leave(void **state)
{
    assert_int_equal(wire_create_topic(conn, "sticky-t", 12), 0);
    member a, b, c, d;
    member *ms[] = {&a, &b, &c, &d};
    assert_int_equal(join(conn, "sticky-g", "sticky-t", &a), 0);
    assert_int_equal(join(conn, "sticky-g", "sticky-t", &b), 0);
    assert_int_equal(join(conn, "sticky-g", "sticky-t", &c), 0);
    converge(conn, "sticky-g", ms, 3);
    pset before[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms[i]->assigned.n, 4);
        before[i] = ms[i]->assigned;
    }
    /* A fourth member: 12 / 4 = 3 each; each old member gives up exactly
     * one partition and keeps the other three. */
    assert_int_equal(join(conn, "sticky-g", "sticky-t", &d), 0);
    converge(conn, "sticky-g", ms, 4);
    assert_disjoint(ms, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ms[i]->assigned.n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(ps_subset(&ms[i]->assigned, &before[i]));
    /* Uneven: 12 over 4 members after one more partition-less topic change
     * is still even; now b leaves: its 3 go to the others, who keep theirs. */
    pset kept[4];
    for (int i = 0; i < 4; i++)
        kept[i] = ms[i]->assigned;
    assert_int_equal(leave(conn, "sticky-g", b.id), 0);
    member *rest[] = {&a, &c, &d};
    converge(conn, "sticky-g", rest, 3);
    assert_disjoint(rest, 3);
    assert_true(ps_subset(&kept[0], &a.assigned));
    assert_true(ps_subset(&kept[2], &c.assigned));
    assert_true(ps_subset(&kept[3], &d.assigned));
    for (int i = 0; i < 3; i++)
        assert_int_equal(rest[i]->assigned.n, 4);
    /* Seven partitions over three members would differ by one: check the
     * balance rule with an odd count too. */
    assert_int_equal(leave(conn, "sticky-g", d.id), 0);
    member *two[] = {&a, &c};
    converge(conn, "sticky-g", two, 2);
    assert_int_equal(a.assigned.n, 6);
    assert_int_equal(c.assigned.n, 6);
    assert_int_equal(leave(conn, "sticky-g", a.id), 0);
    assert_int_equal(leave(conn, "sticky-g", c.id), 0);

    assert_int_equal(wire_create_topic(conn, "odd-t", 7), 0);
    member x, y, z;
    member *xyz[] = {&x, &y, &z};
    assert_int_equal(join(conn, "odd-g", "odd-t", &x), 0);
    assert_int_equal(join(conn, "odd-g", "odd-t", &y), 0);
    assert_int_equal(join(conn, "odd-g", "odd-t", &z), 0);
    converge(conn, "odd-g", xyz, 3);
    int lo = 99, hi = 0, total = 0;
    for (int i = 0; i < 3; i++) {
        int n = xyz[i]->assigned.n;
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
        total += n;
    }
    assert_int_equal(total, 7);
    assert_true(hi - lo <= 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(leave(conn, "odd-g", xyz[i]->id), 0);
}

static void test_partition_moves_only_after_the_owner_releases_it(void **state)
{
    assert_int_equal(wire_create_topic(conn, "revoke-t", 4), 0);
    member a, b;
    assert_int_equal(join(conn, "revoke-g", "revoke-t", &a), 0);
    assert_int_equal(a.assigned.n, 4);
    /* b joins: its target is 2 partitions, but a holds all 4. */
    assert_int_equal(join(conn, "revoke-g", "revoke-t", &b), 0);
    assert_int_equal(b.assigned.n, 0);
    assert_true(b.interval <= STREAM_GROUP_RECONCILE_HEARTBEAT_MS); /* waiting: poll fast */
    assert_true(b.reconciling);
    assert_int_equal(hb(conn, "revoke-g", &b), 0);
    assert_int_equal(b.assigned.n, 0);
    /* a learns of the revocation but lags: it still reports all 4. */
    assert_int_equal(hb_raw(conn, "revoke-g", &a), 0);
    assert_int_equal(a.assigned.n, 2);
    assert_int_equal(a.owned.n, 4);
    assert_true(a.reconciling); /* it holds two revoked partitions */
    char st[32];
    group_state(conn, "revoke-g", st, sizeof(st));
    assert_string_equal(st, "reconciling");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hb(conn, "revoke-g", &b), 0);
        assert_int_equal(b.assigned.n, 0); /* never while a may consume them */
    }
    assert_int_equal(hb_raw(conn, "revoke-g", &a), 0); /* still lagging */
    assert_int_equal(hb(conn, "revoke-g", &b), 0);
    assert_int_equal(b.assigned.n, 0);
    /* a may still commit a revoked partition it holds (commit then release). */
    pset revoked = {0};
    for (int i = 0; i < a.owned.n; i++)
        if (!ps_has(&a.assigned, a.owned.e[i].topic, a.owned.e[i].p))
            ps_add(&revoked, a.owned.e[i].topic, a.owned.e[i].p);
    assert_int_equal(revoked.n, 2);
    int perr;
    assert_int_equal(
        commit1(conn, "revoke-g", a.id, a.gen, "revoke-t", revoked.e[0].p, 7, NULL, &perr), 0);
    assert_int_equal(perr, 0);
    /* a releases; b gets exactly the released two at its next heartbeat. */
    a.owned = a.assigned;
    assert_int_equal(hb(conn, "revoke-g", &a), 0);
    assert_int_equal(hb(conn, "revoke-g", &b), 0);
    assert_int_equal(b.assigned.n, 2);
    assert_true(ps_subset(&b.assigned, &revoked));
    assert_true(ps_disjoint(&a.assigned, &b.assigned));
    assert_false(b.reconciling);
    /* Once released, a can no longer commit it. */
    assert_int_equal(
        commit1(conn, "revoke-g", a.id, a.gen, "revoke-t", revoked.e[0].p, 8, NULL, &perr), 0);
    assert_int_equal(perr, STREAM_ENOTASSIGNED);
    assert_int_equal(fetch1(conn, "revoke-g", "revoke-t", revoked.e[0].p, NULL, 0), 7);
    group_state(conn, "revoke-g", st, sizeof(st));
    assert_string_equal(st, "stable");
    assert_int_equal(leave(conn, "revoke-g", a.id), 0);
    /* A clean leave hands over at once. */
    assert_int_equal(hb(conn, "revoke-g", &b), 0);
    assert_int_equal(b.assigned.n, 4);
    assert_int_equal(leave(conn, "revoke-g", b.id), 0);
}

static void test_session_timeout_removes_a_silent_member(void **state)
{
    assert_int_equal(wire_create_topic(conn, "session-t", 6), 0);
    member a, b;
    member *ms[] = {&a, &b};
    assert_int_equal(join_as(conn, "session-g", "session-t", NULL, 600, &a, NULL), 0);
    assert_int_equal(join_as(conn, "session-g", "session-t", NULL, 600, &b, NULL), 0);
    assert_int_equal(a.interval, 200); /* session / 3 */
    converge(conn, "session-g", ms, 2);
    assert_int_equal(a.assigned.n, 3);
    int32_t gen = a.gen;
    /* b goes silent; a keeps heartbeating and gets all six. */
    int64_t t0 = wire_now_ms();
    while (a.assigned.n < 6 && wire_now_ms() - t0 < 5000) {
        wire_sleep_ms(100);
        assert_int_equal(hb(conn, "session-g", &a), 0);
    }
    int64_t took = wire_now_ms() - t0;
    assert_int_equal(a.assigned.n, 6);
    assert_true(took >= 500 && took < 3000);
    assert_true(a.gen > gen);
    assert_int_equal(hb(conn, "session-g", &b), STREAM_EUNKNOWNMEMBER);
    int perr;
    assert_int_equal(commit1(conn, "session-g", b.id, b.gen, "session-t", 0, 1, NULL, &perr),
                     STREAM_EUNKNOWNMEMBER);
    assert_true(wire_log_contains(&shared, "session timeout"));
    /* A session asked below group.min.session.timeout.ms is raised to it. */
    member c;
    assert_int_equal(join_as(conn, "session-g", "session-t", NULL, 1, &c, NULL), 0);
    assert_int_equal(c.interval, 33);
    assert_int_equal(leave(conn, "session-g", c.id), 0);
    assert_int_equal(leave(conn, "session-g", a.id), 0);
}

/* join_group with a rebalance timeout (and a 10 s session). */
static int join_rebalance(int fd, const char *group, const char *topic, int rebalance_ms, member *m)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_JOIN_GROUP, id, 3);
    stream_pack_kv_cstr(&f.pk, "group", group);
    stream_pack_kv_int(&f.pk, "rebalance_timeout_ms", rebalance_ms);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    stream_pack_cstr(&f.pk, topic);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    int err = r.err;
    if (err == 0) {
        memset(m, 0, sizeof(*m));
        wire_str(&r.msg.root, "member_id", m->id, sizeof(m->id));
        m->gen = (int32_t)wire_int(&r.msg.root, "generation");
        ps_read(wire_array(&r.msg.root, "assignment"), &m->assigned);
        m->owned = m->assigned;
    }
    wire_resp_release(&r);
    return err;
}

static void test_member_that_never_releases_is_removed(void **state)
{
    assert_int_equal(wire_create_topic(conn, "stuck-t", 4), 0);
    member a, b;
    assert_int_equal(join_rebalance(conn, "stuck-g", "stuck-t", 700, &a), 0);
    assert_int_equal(a.assigned.n, 4);
    assert_int_equal(join(conn, "stuck-g", "stuck-t", &b), 0);
    /* a heartbeats (so its session stays alive) but never lets go. */
    int64_t t0 = wire_now_ms();
    int err = 0;
    while (wire_now_ms() - t0 < 5000) {
        err = hb_raw(conn, "stuck-g", &a);
        if (err != 0)
            break;
        assert_int_equal(hb(conn, "stuck-g", &b), 0);
        if (wire_now_ms() - t0 < 500)
            assert_int_equal(b.assigned.n, 0);
        wire_sleep_ms(100);
    }
    int64_t took = wire_now_ms() - t0;
    assert_int_equal(err, STREAM_EUNKNOWNMEMBER);
    assert_true(took >= 600 && took < 3000);
    assert_int_equal(hb(conn, "stuck-g", &b), 0);
    assert_int_equal(b.assigned.n, 4);
    assert_true(wire_log_contains(&shared, "rebalance timeout"));
    assert_int_equal(leave(conn, "stuck-g", b.id), 0);
}

static void test_pattern_subscription_picks_up_a_new_topic(void **state)
{
    assert_int_equal(wire_create_topic(conn, "pat.a", 2), 0);
    assert_int_equal(wire_create_topic(conn, "xpat.z", 2), 0);
    member m;
    assert_int_equal(join_as(conn, "pat-g", NULL, "pat\\..*", 10000, &m, NULL), 0);
    assert_int_equal(m.assigned.n, 2); /* whole-name match: not xpat.z */
    assert_true(ps_has(&m.assigned, "pat.a", 0) && ps_has(&m.assigned, "pat.a", 1));
    int32_t gen = m.gen;
    assert_int_equal(wire_create_topic(conn, "pat.b", 3), 0);
    assert_int_equal(wire_create_topic(conn, "other-pat", 1), 0);
    assert_int_equal(hb(conn, "pat-g", &m), 0);
    assert_int_equal(m.assigned.n, 5);
    for (int p = 0; p < 3; p++)
        assert_true(ps_has(&m.assigned, "pat.b", p));
    assert_true(m.gen > gen);
    /* An unrelated topic does not bump the generation. */
    gen = m.gen;
    assert_int_equal(wire_create_topic(conn, "unrelated-pat", 1), 0);
    assert_int_equal(hb(conn, "pat-g", &m), 0);
    assert_int_equal(m.gen, gen);
    /* Deleting a matched topic takes its partitions away. */
    assert_int_equal(wire_delete_topic(conn, "pat.a"), 0);
    assert_int_equal(hb(conn, "pat-g", &m), 0);
    assert_int_equal(m.assigned.n, 3);
    assert_int_equal(leave(conn, "pat-g", m.id), 0);
}

static void test_members_get_only_topics_they_subscribe_to(void **state)
{
    assert_int_equal(wire_create_topic(conn, "mix-x", 4), 0);
    assert_int_equal(wire_create_topic(conn, "mix-y", 4), 0);
    member a, b;
    member *ms[] = {&a, &b};
    assert_int_equal(join(conn, "mix-g", "mix-x", &a), 0);
    assert_int_equal(join_as(conn, "mix-g", NULL, "mix-.*", 10000, &b, NULL), 0);
    converge(conn, "mix-g", ms, 2);
    for (int i = 0; i < a.assigned.n; i++)
        assert_string_equal(a.assigned.e[i].topic, "mix-x");
    for (int p = 0; p < 4; p++)
        assert_true(ps_has(&b.assigned, "mix-y", p));
    assert_int_equal(a.assigned.n + b.assigned.n, 8);
    /* b has mix-y to itself; mix-x is shared as evenly as it can be. */
    assert_true(a.assigned.n >= 2);
    assert_disjoint(ms, 2);
    /* Re-joining with its id changes b's subscription, keeps its id. */
    member b2;
    assert_int_equal(join_as(conn, "mix-g", "mix-y", NULL, 10000, &b2, b.id), 0);
    assert_string_equal(b2.id, b.id);
    b2.owned = b.owned;
    b = b2;
    converge(conn, "mix-g", ms, 2);
    assert_int_equal(a.assigned.n, 4);
    assert_int_equal(b.assigned.n, 4);
    assert_int_equal(leave(conn, "mix-g", a.id), 0);
    assert_int_equal(leave(conn, "mix-g", b.id), 0);
}

/* ---- offsets ---- */

static void test_commit_is_fenced_by_member_generation_and_assignment(void **state)
{
    assert_int_equal(wire_create_topic(conn, "fence-t", 2), 0);
    member a, b, c;
    member *ab[] = {&a, &b}, *abc[] = {&a, &b, &c};
    assert_int_equal(join(conn, "fence-g", "fence-t", &a), 0);
    int32_t g1 = a.gen;
    assert_int_equal(join(conn, "fence-g", "fence-t", &b), 0);
    converge(conn, "fence-g", ab, 2);
    assert_int_equal(join(conn, "fence-g", "fence-t", &c), 0);
    converge(conn, "fence-g", abc, 3);
    assert_true(a.gen >= g1 + 2);
    assert_int_equal(a.assigned.n, 1); /* sticky: a keeps its one of two */
    int32_t mine = a.assigned.e[0].p, theirs = mine == 0 ? 1 : 0;
    int perr;
    /* The current generation: accepted, metadata kept. */
    assert_int_equal(commit1(conn, "fence-g", a.id, a.gen, "fence-t", mine, 5, "m1", &perr), 0);
    assert_int_equal(perr, 0);
    char md[64];
    assert_int_equal(fetch1(conn, "fence-g", "fence-t", mine, md, sizeof(md)), 5);
    assert_string_equal(md, "m1");
    /* A stale generation: refused, nothing stored. */
    assert_int_equal(commit1(conn, "fence-g", a.id, g1, "fence-t", mine, 6, NULL, &perr),
                     STREAM_EFENCED);
    assert_int_equal(commit1(conn, "fence-g", a.id, a.gen + 1, "fence-t", mine, 6, NULL, &perr),
                     STREAM_EFENCED);
    /* An unknown member. */
    assert_int_equal(commit1(conn, "fence-g", "nobody", a.gen, "fence-t", mine, 6, NULL, &perr),
                     STREAM_EUNKNOWNMEMBER);
    /* Named as sent: the id is not NUL-terminated in the request. */
    assert_non_null(strstr(commit1_text, "member 'nobody' is not in group 'fence-g'"));
    /* A partition held by someone else: per partition. */
    assert_int_equal(commit1(conn, "fence-g", a.id, a.gen, "fence-t", theirs, 6, NULL, &perr), 0);
    assert_int_equal(perr, STREAM_ENOTASSIGNED);
    assert_int_equal(commit1(conn, "fence-g", a.id, a.gen, "no-such-t", 0, 6, NULL, &perr), 0);
    assert_int_equal(perr, STREAM_ENOTASSIGNED);
    /* Bad values, per partition. */
    assert_int_equal(commit1(conn, "fence-g", a.id, a.gen, "fence-t", mine, -3, NULL, &perr), 0);
    assert_int_equal(perr, STREAM_EINVAL);
    /* Standalone commits are refused while the group has members. */
    assert_int_equal(commit1(conn, "fence-g", "", -1, "fence-t", theirs, 6, NULL, &perr),
                     STREAM_EGROUPNOTEMPTY);
    assert_int_equal(commit1(conn, "fence-g", "", 3, "fence-t", theirs, 6, NULL, &perr),
                     STREAM_EBADREQ);
    assert_int_equal(fetch1(conn, "fence-g", "fence-t", mine, NULL, 0), 5);
    assert_int_equal(fetch1(conn, "fence-g", "fence-t", theirs, NULL, 0), -1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(leave(conn, "fence-g", abc[i]->id), 0);
    /* Empty now: a standalone commit works; unknown topics and partitions
     * are refused per partition. */
    commit_ok(conn, "fence-g", "fence-t", theirs, 9);
    assert_int_equal(commit1(conn, "fence-g", "", -1, "no-such-t", 0, 1, NULL, &perr), 0);
    assert_int_equal(perr, STREAM_ENOTOPIC);
    assert_int_equal(commit1(conn, "fence-g", "", -1, "fence-t", 2, 1, NULL, &perr), 0);
    assert_int_equal(perr, STREAM_ENOPART);
    assert_int_equal(fetch1(conn, "fence-g", "fence-t", theirs, NULL, 0), 9);
}

static void test_fetch_offsets_of_unknown_group_and_all_topics(void **state)
{
    assert_int_equal(wire_create_topic(conn, "fo-a", 2), 0);
    assert_int_equal(wire_create_topic(conn, "fo-b", 3), 0);
    assert_int_equal(fetch1(conn, "fo-nobody", "fo-a", 0, NULL, 0), -1);
    commit_ok(conn, "fo-g", "fo-b", 2, 20);
    commit_ok(conn, "fo-g", "fo-a", 1, 11);
    commit_ok(conn, "fo-g", "fo-b", 0, 10);
    /* topics nil: every committed partition, sorted. */
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH_OFFSETS, id, 1);
    stream_pack_kv_cstr(&f.pk, "group", "fo-g");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(conn, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *topics = wire_array(&r.msg.root, "topics");
    assert_int_equal(topics->via.array.size, 2);
    char name[64];
    assert_string_equal(wire_str(wire_elem(topics, 0), "name", name, sizeof(name)), "fo-a");
    const msgpack_object *pa = wire_array(wire_elem(topics, 0), "partitions");
    assert_int_equal(pa->via.array.size, 1);
    assert_int_equal(wire_int(wire_elem(pa, 0), "offset"), 11);
    assert_true(wire_int(wire_elem(pa, 0), "commit_timestamp") > 1600000000000LL);
    const msgpack_object *pb = wire_array(wire_elem(topics, 1), "partitions");
    assert_int_equal(pb->via.array.size, 2);
    assert_int_equal(wire_int(wire_elem(pb, 0), "partition"), 0);
    assert_int_equal(wire_int(wire_elem(pb, 1), "offset"), 20);
    wire_resp_release(&r);
    /* A topic without partitions listed: all of its partitions. */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH_OFFSETS, id, 2);
    stream_pack_kv_cstr(&f.pk, "group", "fo-g");
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_cstr(&f.pk, "name", "fo-b");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(conn, &b, id, &r);
    assert_int_equal(r.err, 0);
    pb = wire_array(wire_elem(wire_array(&r.msg.root, "topics"), 0), "partitions");
    assert_int_equal(pb->via.array.size, 3);
    assert_int_equal(wire_int(wire_elem(pb, 1), "offset"), -1);
    wire_resp_release(&r);
    /* Unknown group, all topics: empty. */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH_OFFSETS, id, 1);
    stream_pack_kv_cstr(&f.pk, "group", "fo-nobody");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(conn, &b, id, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(wire_array(&r.msg.root, "topics")->via.array.size, 0);
    wire_resp_release(&r);
}

/* The offsets entry of describe for topic/partition. */
static const msgpack_object *lag_entry(const wire_resp *r, const char *topic, int32_t p)
{
    const msgpack_object *offs = wire_array(&r->msg.root, "offsets");
    for (uint32_t i = 0; i < offs->via.array.size; i++) {
        const msgpack_object *e = wire_elem(offs, i);
        char t[64];
        if (strcmp(wire_str(e, "topic", t, sizeof(t)), topic) == 0 && wire_int(e, "partition") == p)
            return e;
    }
    fail_msg("no offsets entry for %s-%d", topic, (int)p);
    return NULL;
}

static void test_list_and_describe_show_state_and_lag(void **state)
{
    assert_int_equal(wire_create_topic(conn, "lag-t", 2), 0);
    const int64_t ts = 1700000000000LL;
    wire_produce(conn, "lag-t", 0, 10, ts);
    wire_produce(conn, "lag-t", 1, 5, ts + 100);
    member a;
    assert_int_equal(join(conn, "lag-g", "lag-t", &a), 0);
    int perr;
    assert_int_equal(commit1(conn, "lag-g", a.id, a.gen, "lag-t", 0, 4, NULL, &perr), 0);
    assert_int_equal(perr, 0);
    assert_int_equal(commit1(conn, "lag-g", a.id, a.gen, "lag-t", 1, 5, NULL, &perr), 0);
    assert_int_equal(perr, 0);
    wire_resp r;
    describe(conn, "lag-g", &r);
    assert_int_equal(r.err, 0);
    char s[200];
    assert_string_equal(wire_str(&r.msg.root, "group", s, sizeof(s)), "lag-g");
    assert_string_equal(wire_str(&r.msg.root, "state", s, sizeof(s)), "stable");
    assert_int_equal(wire_int(&r.msg.root, "generation"), a.gen);
    const msgpack_object *members = wire_array(&r.msg.root, "members");
    assert_int_equal(members->via.array.size, 1);
    const msgpack_object *m0 = wire_elem(members, 0);
    assert_string_equal(wire_str(m0, "member_id", s, sizeof(s)), a.id);
    assert_string_equal(wire_str(m0, "client_id", s, sizeof(s)), "test_group");
    assert_string_equal(wire_str(m0, "host", s, sizeof(s)), "127.0.0.1");
    pset asg;
    ps_read(wire_array(m0, "assignment"), &asg);
    assert_int_equal(asg.n, 2);
    const msgpack_object *sub;
    assert_int_equal(stream_field_map(m0, "subscription", &sub, NULL, 0), 0);
    assert_int_equal(wire_array(sub, "topics")->via.array.size, 1);
    const msgpack_object *e0 = lag_entry(&r, "lag-t", 0), *e1 = lag_entry(&r, "lag-t", 1);
    assert_int_equal(wire_int(e0, "offset"), 4);
    assert_int_equal(wire_int(e0, "log_end_offset"), 10);
    assert_int_equal(wire_int(e0, "lag"), 6);
    assert_int_equal(wire_int(e0, "oldest_unconsumed_timestamp"), ts + 4);
    assert_string_equal(wire_str(e0, "member_id", s, sizeof(s)), a.id);
    assert_int_equal(wire_int(e1, "lag"), 0);
    assert_int_equal(wire_int(e1, "oldest_unconsumed_timestamp"), -1);
    assert_int_equal(wire_int(&r.msg.root, "total_lag"), 6);
    assert_int_equal(wire_int(&r.msg.root, "oldest_unconsumed_timestamp"), ts + 4);
    wire_resp_release(&r);

    /* list_groups: sorted, with state and member count. */
    wire_call_op(conn, STREAM_OP_LIST_GROUPS, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *groups = wire_array(&r.msg.root, "groups");
    bool seen = false;
    char prev[300] = "";
    for (uint32_t i = 0; i < groups->via.array.size; i++) {
        const msgpack_object *g = wire_elem(groups, i);
        char name[300];
        wire_str(g, "group", name, sizeof(name));
        assert_true(strcmp(prev, name) < 0);
        snprintf(prev, sizeof(prev), "%s", name);
        if (strcmp(name, "lag-g") == 0) {
            seen = true;
            assert_string_equal(wire_str(g, "state", s, sizeof(s)), "stable");
            assert_int_equal(wire_int(g, "members"), 1);
        }
    }
    assert_true(seen);
    wire_resp_release(&r);
    assert_int_equal(leave(conn, "lag-g", a.id), 0);
    group_state(conn, "lag-g", s, sizeof(s));
    assert_string_equal(s, "empty");
}

static void test_delete_group_refused_while_active(void **state)
{
    assert_int_equal(wire_create_topic(conn, "del-t", 1), 0);
    member a;
    assert_int_equal(join(conn, "del-g", "del-t", &a), 0);
    int perr;
    assert_int_equal(commit1(conn, "del-g", a.id, a.gen, "del-t", 0, 3, NULL, &perr), 0);
    assert_int_equal(delete_group(conn, "del-g"), STREAM_EGROUPNOTEMPTY);
    assert_int_equal(fetch1(conn, "del-g", "del-t", 0, NULL, 0), 3);
    assert_int_equal(hb(conn, "del-g", &a), 0); /* still a member */
    assert_int_equal(leave(conn, "del-g", a.id), 0);
    assert_int_equal(delete_group(conn, "del-g"), 0);
    assert_int_equal(fetch1(conn, "del-g", "del-t", 0, NULL, 0), -1);
    wire_resp r;
    describe(conn, "del-g", &r);
    assert_int_equal(r.err, STREAM_ENOGROUP);
    wire_resp_release(&r);
    assert_int_equal(delete_group(conn, "del-g"), STREAM_ENOGROUP);
    assert_int_equal(delete_group(conn, "bad name"), STREAM_EBADGROUP);
}

static void test_reset_offsets_dry_run_changes_nothing_execute_does(void **state)
{
    assert_int_equal(wire_create_topic(conn, "reset-t", 2), 0);
    const int64_t ts = 1700000000000LL;
    wire_produce(conn, "reset-t", 0, 10, ts);
    wire_produce(conn, "reset-t", 1, 10, ts);
    commit_ok(conn, "reset-g", "reset-t", 0, 5);
    wire_resp r;
    /* Dry run: the plan, nothing changed. */
    reset(conn, "reset-g", "reset-t", 0, "earliest", false, 0, false, &r);
    assert_int_equal(r.err, 0);
    bool ex;
    assert_int_equal(stream_field_bool(&r.msg.root, "executed", &ex, NULL, 0), 0);
    assert_false(ex);
    const msgpack_object *plan = wire_array(&r.msg.root, "offsets");
    assert_int_equal(plan->via.array.size, 1);
    assert_int_equal(wire_int(wire_elem(plan, 0), "current"), 5);
    assert_int_equal(wire_int(wire_elem(plan, 0), "new"), 0);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 0, NULL, 0), 5);
    /* Execute: the same plan, carried out. */
    reset(conn, "reset-g", "reset-t", 0, "earliest", false, 0, true, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(stream_field_bool(&r.msg.root, "executed", &ex, NULL, 0), 0);
    assert_true(ex);
    assert_int_equal(wire_int(wire_elem(wire_array(&r.msg.root, "offsets"), 0), "new"), 0);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 0, NULL, 0), 0);
    /* Whole topic, to latest: partition 1 had no offset. */
    reset(conn, "reset-g", "reset-t", -1, "latest", false, 0, true, &r);
    assert_int_equal(r.err, 0);
    plan = wire_array(&r.msg.root, "offsets");
    assert_int_equal(plan->via.array.size, 2);
    assert_int_equal(wire_int(wire_elem(plan, 1), "current"), -1);
    assert_int_equal(wire_int(wire_elem(plan, 1), "new"), 10);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 1, NULL, 0), 10);
    /* shift (all the group's topics), then one clamped to the log start;
     * offset, clamped to the end; timestamp. */
    reset(conn, "reset-g", NULL, -1, "shift", true, -3, true, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(wire_array(&r.msg.root, "offsets")->via.array.size, 2);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 0, NULL, 0), 7);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 1, NULL, 0), 7);
    reset(conn, "reset-g", "reset-t", 0, "shift", true, -100, true, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 0, NULL, 0), 0);
    reset(conn, "reset-g", "reset-t", 1, "offset", true, 1000, true, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 1, NULL, 0), 10);
    reset(conn, "reset-g", "reset-t", 1, "timestamp", true, ts + 6, true, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 1, NULL, 0), 6);
    /* Errors: nothing changes. */
    reset(conn, "reset-nocommit", "reset-t", 0, "shift", true, 1, true, &r);
    assert_int_equal(r.err, STREAM_EINVAL);
    wire_resp_release(&r);
    reset(conn, "reset-g", "reset-none", -1, "earliest", false, 0, true, &r);
    assert_int_equal(r.err, STREAM_ENOTOPIC);
    wire_resp_release(&r);
    reset(conn, "reset-g", "reset-t", 5, "earliest", false, 0, true, &r);
    assert_int_equal(r.err, STREAM_ENOPART);
    wire_resp_release(&r);
    reset(conn, "reset-g", "reset-t", 0, "sideways", false, 0, true, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    wire_resp_release(&r);
    reset(conn, "reset-g", "reset-t", 0, "offset", false, 0, true, &r);
    assert_int_equal(r.err, STREAM_EBADREQ); /* value missing */
    wire_resp_release(&r);
    /* An active group: dry run yes, execute no. */
    member a;
    assert_int_equal(join(conn, "reset-g", "reset-t", &a), 0);
    reset(conn, "reset-g", "reset-t", 1, "earliest", false, 0, false, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    reset(conn, "reset-g", "reset-t", 1, "earliest", false, 0, true, &r);
    assert_int_equal(r.err, STREAM_EGROUPNOTEMPTY);
    wire_resp_release(&r);
    assert_int_equal(fetch1(conn, "reset-g", "reset-t", 1, NULL, 0), 6);
    assert_int_equal(leave(conn, "reset-g", a.id), 0);
}

static void test_offsets_of_a_deleted_topic_are_dropped(void **state)
{
    assert_int_equal(wire_create_topic(conn, "gone-t", 2), 0);
    assert_int_equal(wire_create_topic(conn, "stays-t", 1), 0);
    commit_ok(conn, "gone-g", "gone-t", 1, 4);
    commit_ok(conn, "gone-g", "stays-t", 0, 2);
    commit_ok(conn, "gone-only", "gone-t", 0, 1);
    assert_int_equal(wire_delete_topic(conn, "gone-t"), 0);
    assert_int_equal(fetch1(conn, "gone-g", "gone-t", 1, NULL, 0), -1);
    assert_int_equal(fetch1(conn, "gone-g", "stays-t", 0, NULL, 0), 2);
    /* A group whose only offsets were on that topic is gone. */
    wire_resp r;
    describe(conn, "gone-only", &r);
    assert_int_equal(r.err, STREAM_ENOGROUP);
    wire_resp_release(&r);
    /* A new topic of the same name starts without offsets. */
    assert_int_equal(wire_create_topic(conn, "gone-t", 2), 0);
    assert_int_equal(fetch1(conn, "gone-g", "gone-t", 1, NULL, 0), -1);
}

static void test_invalid_names_and_requests_change_nothing(void **state)
{
    char long_name[300];
    memset(long_name, 'g', 250);
    long_name[250] = '\0';
    const char *bad[] = {"", "a b", "..", "grüppe", long_name};
    member m;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(join(conn, bad[i], "inv-t", &m), STREAM_EBADGROUP);
        wire_resp r;
        describe(conn, bad[i], &r);
        assert_int_equal(r.err, STREAM_EBADGROUP);
        wire_resp_release(&r);
        int perr;
        assert_int_equal(commit1(conn, bad[i], "", -1, "inv-t", 0, 1, NULL, &perr),
                         STREAM_EBADGROUP);
    }
    /* join without topics or pattern; a bad topic name; a bad pattern. */
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_JOIN_GROUP, id, 1);
    stream_pack_kv_cstr(&f.pk, "group", "inv-g");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(conn, &b, id, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    wire_resp_release(&r);
    assert_int_equal(join(conn, "inv-g", "bad/topic", &m), STREAM_EBADNAME);
    assert_int_equal(join_as(conn, "inv-g", NULL, "((", 10000, &m, NULL), STREAM_EINVAL);
    /* None of those made a group. */
    describe(conn, "inv-g", &r);
    assert_int_equal(r.err, STREAM_ENOGROUP);
    wire_resp_release(&r);
    /* Unknown members. */
    member ghost = {.gen = 1};
    snprintf(ghost.id, sizeof(ghost.id), "ghost");
    assert_int_equal(hb(conn, "inv-g", &ghost), STREAM_EUNKNOWNMEMBER);
    assert_int_equal(leave(conn, "inv-g", "ghost"), STREAM_EUNKNOWNMEMBER);
    assert_int_equal(join_as(conn, "inv-g", "inv-t", NULL, 10000, &m, "ghost"),
                     STREAM_EUNKNOWNMEMBER);
    /* A mistyped owned list. */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HEARTBEAT, id, 3);
    stream_pack_kv_cstr(&f.pk, "group", "inv-g");
    stream_pack_kv_cstr(&f.pk, "member_id", "ghost");
    stream_pack_key(&f.pk, "owned");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "topic", "inv-t");
    stream_pack_kv_cstr(&f.pk, "partitions", "0");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(conn, &b, id, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    assert_non_null(strstr(r.text, "partitions"));
    wire_resp_release(&r);
    /* Group ops over a version-1 connection do not exist. */
    int v1 = wire_connect_version(shared.port, 1);
    assert_int_equal(join(v1, "inv-g", "inv-t", &m), STREAM_EUNKNOWNOP);
    close(v1);
    assert_true(wire_still_served(conn));
}

static void find_coordinator(int fd, const char *group, wire_resp *r)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FIND_COORDINATOR, id, 1);
    stream_pack_kv_cstr(&f.pk, "group", group);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, r);
}

/* A single broker coordinates every group: find_coordinator names it, at
 * the address clients reach it; a bad group name is refused; version 2
 * connections do not have the op. */
static void test_find_coordinator_on_a_single_broker_names_itself(void **state)
{
    wire_resp r;
    find_coordinator(conn, "fc-g", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(wire_int(&r.msg.root, "port"), shared.port);
    char host[64];
    assert_string_equal(wire_str(&r.msg.root, "host", host, sizeof(host)), "127.0.0.1");
    assert_true(wire_int(&r.msg.root, "node_id") >= 0);
    wire_resp_release(&r);
    find_coordinator(conn, "", &r);
    assert_int_equal(r.err, STREAM_EBADGROUP);
    wire_resp_release(&r);
    int v2 = wire_connect_version(shared.port, 2);
    find_coordinator(v2, "fc-g", &r);
    assert_int_equal(r.err, STREAM_EUNKNOWNOP);
    wire_resp_release(&r);
    close(v2);
}

/* A request of `op` whose fields are the key/value pairs given as packers:
 * each call packs one pair. */
typedef void (*pack_fn)(msgpack_packer *pk);

static void pk_group_int(msgpack_packer *pk)
{
    stream_pack_kv_int(pk, "group", 7);
}
static void pk_group_ok(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "group", "types-g");
}
static void pk_member_int(msgpack_packer *pk)
{
    stream_pack_kv_int(pk, "member_id", 1);
}
static void pk_member_ok(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "member_id", "x");
}
static void pk_topics_str(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "topics", "t");
}
static void pk_topics_ints(msgpack_packer *pk)
{
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 3);
}
static void pk_pattern_bin(msgpack_packer *pk)
{
    stream_pack_kv_bin(pk, "pattern", "a", 1);
}
static void pk_session_float(msgpack_packer *pk)
{
    stream_pack_key(pk, "session_timeout_ms");
    msgpack_pack_double(pk, 1000.0);
}
static void pk_owned_map(msgpack_packer *pk)
{
    stream_pack_key(pk, "owned");
    msgpack_pack_map(pk, 0);
}
static void pk_owned_bad_part(msgpack_packer *pk)
{
    stream_pack_key(pk, "owned");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "topic", "t");
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_uint64(pk, UINT64_C(1) << 40);
}
static void pk_generation_str(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "generation", "1");
}
static void pk_commit_offset_str(msgpack_packer *pk)
{
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "name", "t");
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_int(pk, "partition", 0);
    stream_pack_kv_cstr(pk, "offset", "5");
}
static void pk_commit_md_int(msgpack_packer *pk)
{
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "name", "t");
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    stream_pack_kv_int(pk, "partition", 0);
    stream_pack_kv_int(pk, "offset", 5);
    stream_pack_kv_int(pk, "metadata", 5);
}
static void pk_fetch_parts_str(msgpack_packer *pk)
{
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "name", "t");
    stream_pack_kv_cstr(pk, "partitions", "0");
}
static void pk_groups_str(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "groups", "g");
}
static void pk_groups_ints(msgpack_packer *pk)
{
    stream_pack_key(pk, "groups");
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
}
static void pk_to_int(msgpack_packer *pk)
{
    stream_pack_kv_int(pk, "to", 1);
}
static void pk_to_ok(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "to", "earliest");
}
static void pk_execute_int(msgpack_packer *pk)
{
    stream_pack_kv_int(pk, "execute", 1);
}
static void pk_value_str(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "value", "1");
}
static void pk_to_offset(msgpack_packer *pk)
{
    stream_pack_kv_cstr(pk, "to", "offset");
}

static void test_mistyped_group_requests_answer_ebadreq(void **state)
{
    static const struct {
        stream_op op;
        pack_fn f[4];
    } cases[] = {
        {STREAM_OP_JOIN_GROUP, {pk_group_int, pk_topics_ints}},
        {STREAM_OP_JOIN_GROUP, {pk_group_ok, pk_topics_str}},
        {STREAM_OP_JOIN_GROUP, {pk_group_ok, pk_topics_ints}},
        {STREAM_OP_JOIN_GROUP, {pk_group_ok, pk_pattern_bin}},
        {STREAM_OP_JOIN_GROUP, {pk_group_ok, pk_member_int, pk_topics_ints}},
        {STREAM_OP_JOIN_GROUP, {pk_group_ok, pk_session_float, pk_pattern_bin}},
        {STREAM_OP_HEARTBEAT, {pk_group_ok, pk_member_ok}},
        {STREAM_OP_HEARTBEAT, {pk_group_ok, pk_member_ok, pk_owned_map}},
        {STREAM_OP_HEARTBEAT, {pk_group_ok, pk_member_ok, pk_owned_bad_part}},
        {STREAM_OP_HEARTBEAT, {pk_group_ok, pk_member_int, pk_owned_map}},
        {STREAM_OP_LEAVE_GROUP, {pk_group_ok}},
        {STREAM_OP_LEAVE_GROUP, {pk_group_int, pk_member_ok}},
        {STREAM_OP_COMMIT_OFFSETS, {pk_group_ok}},
        {STREAM_OP_COMMIT_OFFSETS, {pk_group_ok, pk_commit_offset_str}},
        {STREAM_OP_COMMIT_OFFSETS, {pk_group_ok, pk_commit_md_int}},
        {STREAM_OP_COMMIT_OFFSETS, {pk_group_ok, pk_generation_str, pk_topics_str}},
        {STREAM_OP_FETCH_OFFSETS, {pk_group_ok, pk_topics_str}},
        {STREAM_OP_FETCH_OFFSETS, {pk_group_ok, pk_fetch_parts_str}},
        {STREAM_OP_FETCH_OFFSETS, {pk_group_int}},
        {STREAM_OP_DESCRIBE_GROUP, {pk_group_int}},
        {STREAM_OP_DESCRIBE_GROUP, {NULL}},
        {STREAM_OP_DELETE_GROUP, {pk_groups_str}},
        {STREAM_OP_DELETE_GROUP, {pk_groups_ints}},
        {STREAM_OP_DELETE_GROUP, {NULL}},
        {STREAM_OP_RESET_OFFSETS, {pk_group_ok}},
        {STREAM_OP_RESET_OFFSETS, {pk_group_ok, pk_to_int}},
        {STREAM_OP_RESET_OFFSETS, {pk_group_ok, pk_to_ok, pk_execute_int}},
        {STREAM_OP_RESET_OFFSETS, {pk_group_ok, pk_to_offset, pk_value_str}},
        {STREAM_OP_RESET_OFFSETS, {pk_group_ok, pk_to_ok, pk_fetch_parts_str}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        while (n < 4 && cases[i].f[n])
            n++;
        stream_buf b = STREAM_BUF_INIT;
        stream_frame f;
        stream_frame_start(&f, &b);
        uint64_t id = wire_id();
        stream_pack_request_header(&f.pk, cases[i].op, id, n);
        for (size_t j = 0; j < n; j++)
            cases[i].f[j](&f.pk);
        assert_int_equal(stream_frame_finish(&f), 0);
        wire_resp r;
        wire_call(conn, &b, id, &r);
        if (r.err != STREAM_EBADREQ)
            fail_msg("case %zu (%s): err %d (%s), expected EBADREQ", i, stream_op_name(cases[i].op),
                     r.err, r.text);
        assert_true(r.text[0] != '\0');
        wire_resp_release(&r);
    }
    /* Nothing of those made a group, and the broker still serves. */
    wire_resp r;
    describe(conn, "types-g", &r);
    assert_int_equal(r.err, STREAM_ENOGROUP);
    wire_resp_release(&r);
    assert_true(wire_still_served(conn));
}

/* ---- durability ---- */

static void test_commits_survive_kill_9_and_restart(void **state)
{
    wire_broker br = {0};
    static const char *const sets[] = {"offsets.topic.num.partitions=2", NULL};
    wire_broker_start(&br, "test_group_crash", sets);
    int fd = wire_connect(br.port);
    assert_int_equal(wire_create_topic(fd, "crash-t", 3), 0);
    assert_int_equal(wire_create_topic(fd, "crash-gone", 1), 0);
    member a;
    assert_int_equal(join(fd, "crash-g", "crash-t", &a), 0);
    int perr;
    for (int round = 1; round <= 20; round++)
        for (int p = 0; p < 3; p++) {
            assert_int_equal(
                commit1(fd, "crash-g", a.id, a.gen, "crash-t", p, round * 10 + p, "md", &perr), 0);
            assert_int_equal(perr, 0);
        }
    commit_ok(fd, "crash-other", "crash-t", 0, 77);
    commit_ok(fd, "crash-deleted", "crash-t", 0, 5);
    assert_int_equal(delete_group(fd, "crash-deleted"), 0);
    commit_ok(fd, "crash-other", "crash-gone", 0, 3);
    assert_int_equal(wire_delete_topic(fd, "crash-gone"), 0);
    /* Mid-rebalance: b waits for partitions a still holds. */
    member b;
    assert_int_equal(join(fd, "crash-g", "crash-t", &b), 0);
    assert_int_equal(b.assigned.n, 0);
    assert_int_equal(hb_raw(fd, "crash-g", &a), 0); /* told to give some up; still holds 3 */
    assert_int_equal(a.owned.n, 3);
    assert_true(a.assigned.n > 0 && a.assigned.n < 3);
    int32_t gen = a.gen;
    assert_int_equal(hb(fd, "crash-g", &b), 0);
    assert_int_equal(b.gen, gen);
    /* A group whose last member left is gone, and stays gone. */
    member c;
    assert_int_equal(join(fd, "crash-left", "crash-t", &c), 0);
    assert_int_equal(leave(fd, "crash-left", c.id), 0);
    close(fd);
    /* Every commit and membership change above was answered, so it is on
     * disk: kill -9 now. */
    assert_int_equal(wire_broker_signal(&br, SIGKILL), -1);
    wire_broker_start(&br, "test_group_crash", sets);
    fd = wire_connect(br.port);
    assert_true(wire_log_contains(&br, "committed offsets and 2 members of"));
    char md[16];
    for (int p = 0; p < 3; p++)
        assert_int_equal(fetch1(fd, "crash-g", "crash-t", p, md, sizeof(md)), 200 + p);
    assert_string_equal(md, "md");
    assert_int_equal(fetch1(fd, "crash-other", "crash-t", 0, NULL, 0), 77);
    assert_int_equal(fetch1(fd, "crash-deleted", "crash-t", 0, NULL, 0), -1);
    assert_int_equal(fetch1(fd, "crash-other", "crash-gone", 0, NULL, 0), -1);
    /* Membership is kept, generation and held sets included: b still
     * waits for what a holds; a's heartbeats give it up; b gets it; a's
     * commits with its generation are accepted. */
    assert_int_equal(hb(fd, "crash-g", &b), 0);
    assert_int_equal(b.assigned.n, 0);
    assert_int_equal(b.gen, gen);
    assert_int_equal(hb(fd, "crash-g", &a), 0); /* reports all 3, then owns what it has */
    assert_int_equal(a.gen, gen);
    assert_int_equal(hb(fd, "crash-g", &a), 0);
    assert_int_equal(hb(fd, "crash-g", &b), 0);
    assert_int_equal(a.assigned.n + b.assigned.n, 3);
    assert_true(ps_disjoint(&a.assigned, &b.assigned));
    assert_int_equal(
        commit1(fd, "crash-g", a.id, a.gen, "crash-t", a.assigned.e[0].p, 500, NULL, &perr), 0);
    assert_int_equal(perr, 0);
    /* Who was not a member before the crash is not one after it. */
    member x = {.gen = gen};
    snprintf(x.id, sizeof(x.id), "test_group-00000000000000000000000000000000");
    assert_int_equal(hb(fd, "crash-g", &x), STREAM_EUNKNOWNMEMBER);
    wire_resp r;
    describe(fd, "crash-left", &r);
    assert_int_equal(r.err, STREAM_ENOGROUP);
    wire_resp_release(&r);
    /* Members leave, and the log says so across another crash. */
    assert_int_equal(leave(fd, "crash-g", a.id), 0);
    assert_int_equal(leave(fd, "crash-g", b.id), 0);
    close(fd);
    assert_int_equal(wire_broker_signal(&br, SIGKILL), -1);
    wire_broker_start(&br, "test_group_crash", sets);
    fd = wire_connect(br.port);
    assert_true(wire_log_contains(&br, "committed offsets and 0 members of"));
    assert_int_equal(hb(fd, "crash-g", &a), STREAM_EUNKNOWNMEMBER);
    /* The internal topic is visible and read-only. */
    assert_int_equal(wire_delete_topic(fd, STREAM_OFFSETS_TOPIC), STREAM_EBADNAME);
    close(fd);
    assert_int_equal(wire_broker_stop(&br), 0);
    wire_rm_rf(br.dir);
}

/* ---- the membership record, in-process ---- */

static stream__member *meta_member(const char *id, const char *pattern, int32_t epoch)
{
    stream__member *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->id = strdup(id);
    char cid[64];
    snprintf(cid, sizeof(cid), "client-of-%s", id);
    m->client_id = strdup(cid);
    snprintf(m->host, sizeof(m->host), "127.0.0.1");
    m->topics = calloc(2, sizeof(*m->topics));
    m->topics[0] = strdup("meta-a");
    m->topics[1] = strdup("meta-b");
    m->ntopics = 2;
    m->pattern = pattern ? strdup(pattern) : NULL;
    m->session_timeout_ms = 4000;
    m->rebalance_timeout_ms = 60000;
    m->epoch = epoch;
    m->prev_epoch = epoch - 1;
    return m;
}

/* A group of generation 2 with one member, "old-one", to restore over. */
static stream__group *meta_old_group(void)
{
    stream__group *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    g->name = strdup("meta-g");
    g->members = calloc(1, sizeof(*g->members));
    g->members[0] = meta_member("old-one", NULL, 1);
    g->nmembers = g->cap_members = 1;
    g->generation = 2;
    return g;
}

static void meta_group_free(stream__group *g)
{
    for (size_t i = 0; i < g->nmembers; i++)
        stream__member_free(g->members[i]);
    free(g->members);
    free(g->name);
    free(g);
}

/* Two members mid-rebalance: m1 still holds meta-b-2, which it was asked to
 * give up; m2 subscribes by pattern too. */
static void meta_sample(stream__member **ms)
{
    ms[0] = meta_member("m1-0123", NULL, 7);
    ms[1] = meta_member("m2-4567", "logs.*", 6);
    assert_int_equal(stream__pset_add(&ms[0]->target, "meta-a", 0), 0);
    assert_int_equal(stream__pset_add(&ms[0]->target, "meta-a", 1), 0);
    assert_int_equal(stream__pset_add(&ms[0]->assigned, "meta-a", 0), 0);
    assert_int_equal(stream__pset_add(&ms[0]->held, "meta-a", 0), 0);
    assert_int_equal(stream__pset_add(&ms[0]->held, "meta-b", 2), 0);
    assert_int_equal(stream__pset_add(&ms[1]->target, "meta-a", 2), 0);
    assert_int_equal(stream__pset_add(&ms[1]->target, "meta-b", 2), 0);
    assert_int_equal(stream__pset_add(&ms[1]->assigned, "meta-a", 2), 0);
    assert_int_equal(stream__pset_add(&ms[1]->held, "meta-a", 2), 0);
}

static void test_membership_record_round_trips_and_restores(void **state)
{
    stream__member *ms[2];
    meta_sample(ms);
    stream_buf one = STREAM_BUF_INIT, two = STREAM_BUF_INIT;
    assert_int_equal(stream__group_meta_pack(&one, 7, ms, 2), 0);
    char msg[320] = "";
    stream__group_meta meta;
    assert_int_equal(stream__group_meta_decode(one.data, one.len, &meta, msg, sizeof(msg)), 0);
    assert_int_equal(meta.generation, 7);
    assert_int_equal(meta.nmembers, 2);
    for (size_t i = 0; i < 2; i++) {
        const stream__member *a = ms[i], *b = meta.members[i];
        assert_string_equal(a->id, b->id);
        assert_string_equal(a->client_id, b->client_id);
        assert_string_equal(a->host, b->host);
        assert_int_equal(b->ntopics, 2);
        assert_string_equal(b->topics[1], "meta-b");
        assert_int_equal(b->session_timeout_ms, 4000);
        assert_int_equal(b->rebalance_timeout_ms, 60000);
        assert_int_equal(b->epoch, a->epoch);
        assert_int_equal(b->prev_epoch, a->prev_epoch);
        assert_true(stream__pset_equal(&a->target, &b->target));
        assert_true(stream__pset_equal(&a->assigned, &b->assigned));
        assert_true(stream__pset_equal(&a->held, &b->held));
        assert_false(b->compiled); /* decoding compiles nothing */
    }
    assert_null(meta.members[0]->pattern);
    assert_string_equal(meta.members[1]->pattern, "logs.*");
    /* The same bytes again from the decoded form. */
    assert_int_equal(stream__group_meta_pack(&two, meta.generation, meta.members, meta.nmembers),
                     0);
    assert_int_equal(one.len, two.len);
    assert_memory_equal(one.data, two.data, one.len);

    /* Restored over an older membership: the members are the record's,
     * sessions and the revocation clock start now. */
    stream__group *g = meta_old_group();
    assert_int_equal(stream__group_meta_restore(g, &meta, 1000, msg, sizeof(msg)), 0);
    assert_int_equal(meta.nmembers, 0);
    assert_int_equal(g->generation, 7);
    assert_int_equal(g->nmembers, 2);
    assert_string_equal(g->members[0]->id, "m1-0123");
    assert_int_equal(g->members[0]->deadline_ms, 1000 + 4000);
    assert_int_equal(g->members[0]->revoke_deadline_ms, 1000 + 60000); /* holds meta-b-2 */
    assert_int_equal(g->members[1]->revoke_deadline_ms, 0);
    assert_true(g->members[1]->compiled);
    assert_int_equal(regexec(&g->members[1]->re, "logs.app", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&g->members[1]->re, "mylogs", 0, NULL, 0), 0);
    stream__group_meta_release(&meta);
    meta_group_free(g);
    stream__member_free(ms[0]);
    stream__member_free(ms[1]);
    stream_buf_release(&one);
    stream_buf_release(&two);
}

/* Decodes p (len bytes): must fail with want and leave out empty. */
static void meta_refused(const uint8_t *p, size_t len, int want, const char *needle)
{
    stream__group_meta meta;
    char msg[320] = "";
    int rc = stream__group_meta_decode(p, len, &meta, msg, sizeof(msg));
    if (rc != want)
        fail_msg("decode of %zu bytes: %s (%s), expected %s", len, stream_err_name(rc), msg,
                 stream_err_name(want));
    assert_int_equal(meta.nmembers, 0);
    assert_null(meta.members);
    assert_true(msg[0] != '\0');
    if (needle && strstr(msg, needle) == NULL)
        fail_msg("'%s' does not say '%s'", msg, needle);
}

static void test_membership_record_corrupt_or_unknown_version_is_refused(void **state)
{
    stream__member *ms[2];
    meta_sample(ms);
    stream_buf good = STREAM_BUF_INIT, bad = STREAM_BUF_INIT;
    assert_int_equal(stream__group_meta_pack(&good, 7, ms, 2), 0);
    /* Cut anywhere: refused, nothing built. */
    for (size_t n = 0; n < good.len; n++)
        meta_refused(good.data, n, STREAM_ECORRUPT, NULL);
    meta_refused(NULL, 0, STREAM_ECORRUPT, NULL);
    /* Any byte changed: decoded or refused, never a crash; what decodes
     * packs again. */
    for (size_t i = 0; i < good.len; i++) {
        for (int x = 1; x < 256; x <<= 1) {
            stream_buf_reset(&bad);
            stream_buf_put(&bad, good.data, good.len);
            bad.data[i] ^= (uint8_t)x;
            stream__group_meta meta;
            char msg[320];
            if (stream__group_meta_decode(bad.data, bad.len, &meta, msg, sizeof(msg)) == 0) {
                stream_buf again = STREAM_BUF_INIT;
                assert_int_equal(
                    stream__group_meta_pack(&again, meta.generation, meta.members, meta.nmembers),
                    0);
                stream_buf_release(&again);
                stream__group_meta_release(&meta);
            }
        }
    }
    /* A version this broker does not know. */
    stream_frame f;
    stream_buf_reset(&bad);
    stream_frame_start(&f, &bad);
    msgpack_pack_map(&f.pk, 3);
    stream_pack_kv_int(&f.pk, "version", 2);
    stream_pack_kv_int(&f.pk, "generation", 1);
    stream_pack_key(&f.pk, "members");
    msgpack_pack_array(&f.pk, 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    meta_refused(bad.data + 4, bad.len - 4, STREAM_EUNSUPPORTED, "version 2");
    /* Records no coordinator writes: a partition held by two members, a
     * member listed twice, an assigned partition not held, an epoch past
     * the generation. */
    assert_int_equal(stream__pset_add(&ms[1]->held, "meta-b", 2), 0);
    assert_int_equal(stream__group_meta_pack(&bad, 7, ms, 2), 0);
    meta_refused(bad.data, bad.len, STREAM_ECORRUPT, "held by two members");
    stream__pset_del(&ms[1]->held, "meta-b", 2);
    stream__member *twice[2] = {ms[0], ms[0]};
    assert_int_equal(stream__group_meta_pack(&bad, 7, twice, 2), 0);
    meta_refused(bad.data, bad.len, STREAM_ECORRUPT, "listed twice");
    assert_int_equal(stream__pset_add(&ms[0]->assigned, "meta-a", 9), 0);
    assert_int_equal(stream__group_meta_pack(&bad, 7, ms, 2), 0);
    meta_refused(bad.data, bad.len, STREAM_ECORRUPT, "assigned but not held");
    stream__pset_del(&ms[0]->assigned, "meta-a", 9);
    assert_int_equal(stream__group_meta_pack(&bad, 6, ms, 2), 0);
    meta_refused(bad.data, bad.len, STREAM_ECORRUPT, "generation 6");

    /* A pattern that does not compile: decoded, but the restore refuses it
     * and the group keeps what it had. */
    free(ms[1]->pattern);
    ms[1]->pattern = strdup("(unclosed");
    assert_int_equal(stream__group_meta_pack(&bad, 7, ms, 2), 0);
    stream__group_meta meta;
    char msg[320] = "";
    assert_int_equal(stream__group_meta_decode(bad.data, bad.len, &meta, msg, sizeof(msg)), 0);
    stream__group *g = meta_old_group();
    assert_int_equal(stream__group_meta_restore(g, &meta, 1000, msg, sizeof(msg)), STREAM_ECORRUPT);
    assert_non_null(strstr(msg, "not a valid regular expression"));
    assert_int_equal(g->nmembers, 1);
    assert_string_equal(g->members[0]->id, "old-one");
    assert_int_equal(g->generation, 2);
    assert_int_equal(meta.nmembers, 2);
    stream__group_meta_release(&meta);
    meta_group_free(g);
    stream__member_free(ms[0]);
    stream__member_free(ms[1]);
    stream_buf_release(&good);
    stream_buf_release(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_member_is_given_every_partition),
        cmocka_unit_test(test_three_members_get_two_of_six_partitions_each),
        cmocka_unit_test(test_rebalance_is_sticky_and_balanced_on_join_and_leave),
        cmocka_unit_test(test_partition_moves_only_after_the_owner_releases_it),
        cmocka_unit_test(test_session_timeout_removes_a_silent_member),
        cmocka_unit_test(test_member_that_never_releases_is_removed),
        cmocka_unit_test(test_pattern_subscription_picks_up_a_new_topic),
        cmocka_unit_test(test_members_get_only_topics_they_subscribe_to),
        cmocka_unit_test(test_commit_is_fenced_by_member_generation_and_assignment),
        cmocka_unit_test(test_fetch_offsets_of_unknown_group_and_all_topics),
        cmocka_unit_test(test_list_and_describe_show_state_and_lag),
        cmocka_unit_test(test_delete_group_refused_while_active),
        cmocka_unit_test(test_reset_offsets_dry_run_changes_nothing_execute_does),
        cmocka_unit_test(test_offsets_of_a_deleted_topic_are_dropped),
        cmocka_unit_test(test_invalid_names_and_requests_change_nothing),
        cmocka_unit_test(test_mistyped_group_requests_answer_ebadreq),
        cmocka_unit_test(test_find_coordinator_on_a_single_broker_names_itself),
        cmocka_unit_test(test_commits_survive_kill_9_and_restart),
        cmocka_unit_test(test_membership_record_round_trips_and_restores),
        cmocka_unit_test(test_membership_record_corrupt_or_unknown_version_is_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
