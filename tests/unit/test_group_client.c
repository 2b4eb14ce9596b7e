/*
 * test_group_client.c - consumer group membership in the client library
 * (group_client.c, the group admin calls of admin.c) against a real
 * stream-broker process: joining, sharing partitions, committed offsets as
 * start positions, revocation that commits before it releases, session
 * loss, a broker restart that keeps the membership, clean leave, patterns,
 * and list/describe/reset/delete.
 *
 * Each test starts $STREAM_BUILD/stream-broker on a free loopback port with
 * its data in a mkdtemp directory and a short minimum session timeout, so
 * failure detection takes about a second.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream/client.h"
#include "stream/error.h"
#include "client_kit.h"
#include "wire.h"

/* ---- a broker process per test ------------------------------------------- */

typedef struct fixture {
    wire_broker b; /* its temp dir, pid and port (tests/unit/wire.h) */
    char addr[64]; /* "127.0.0.1:PORT" */
    stream_client *c;
} fixture;

/* Starts (or restarts, on the same data; on the same port when
 * `same_port`) the broker with a short minimum session timeout and a small
 * offsets topic. */
static void broker_start(fixture *f, bool same_port)
{
    f->b.listen_port = same_port ? f->b.port : 0;
    static const char *const sets[] = {"group.min.session.timeout.ms=300",
                                       "offsets.topic.num.partitions=3", NULL};
    wire_broker_start(&f->b, "test_group_client", sets);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->b.port);
}

/* Sends `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and waits. */
static void broker_stop(fixture *f, int sig)
{
    wire_broker_signal(&f->b, sig);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    broker_start(f, false);
    f->c = client_for(f->addr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_client_free(f->c);
    broker_stop(f, SIGTERM);
    wire_rm_rf(f->b.dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Produces `per` records to each of `partitions` partitions of topic. */
static void produce(stream_client *c, const char *topic, int32_t partitions, int per)
{
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.linger_ms = 0;
    stream_producer *p;
    char eb[256] = "";
    if (stream_producer_new(c, &pc, &p, eb, sizeof eb) != 0)
        fail_msg("producer_new: %s", eb);
    for (int32_t part = 0; part < partitions; part++)
        for (int i = 0; i < per; i++) {
            char v[32];
            int len = snprintf(v, sizeof v, "%d-%d", (int)part, i);
            stream_producer_record rec = {
                .topic = topic, .partition = part, .value = v, .value_len = len};
            int rc;
            while ((rc = stream_producer_produce(p, &rec, eb, sizeof eb)) == STREAM_EAGAIN)
                stream_producer_poll(p, 50);
            if (rc != 0)
                fail_msg("produce: %s", eb);
        }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    assert_int_equal(st.records_failed, 0);
    stream_producer_free(p, 0);
}

#define MAXP   8
#define MAXOFF 4096

/* One group member with its own client, and what it has seen. */
typedef struct member {
    stream_client *c;
    stream_consumer *co;
    int records;
    int assigned, revoked, lost, errors;
    int64_t last_revoked_offset;
    uint8_t *seen; /* [partition * MAXOFF + offset]: times returned here */
} member;

static void member_start(member *m, const char *addr, const char *group, const char *topic,
                         const char *pattern, bool stop_at_end, stream_offset_reset reset,
                         void (*tweak)(stream_group_conf *))
{
    memset(m, 0, sizeof *m);
    m->seen = calloc(MAXP * MAXOFF, 1);
    assert_non_null(m->seen);
    m->c = client_for(addr);
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.max_wait_ms = 100;
    cc.stop_at_end = stop_at_end;
    cc.auto_offset_reset = reset;
    char eb[256] = "";
    if (stream_consumer_new(m->c, &cc, &m->co, eb, sizeof eb) != 0)
        fail_msg("consumer_new: %s", eb);
    stream_group_conf gc;
    stream_group_conf_init(&gc);
    gc.group = group;
    gc.client_id = "test_group_client";
    gc.session_timeout_ms = 1000;
    gc.auto_commit_interval_ms = 200;
    if (tweak)
        tweak(&gc);
    int rc = stream_consumer_subscribe(m->co, &gc, topic ? &topic : NULL, topic ? 1 : 0, pattern,
                                       -1, eb, sizeof eb);
    if (rc != 0)
        fail_msg("subscribe: %s (%s)", eb, stream_err_name(rc));
}

static void member_free(member *m)
{
    stream_consumer_free(m->co);
    stream_client_free(m->c);
    free(m->seen);
    memset(m, 0, sizeof *m);
}

/* Takes events for up to timeout_ms (or until done). */
static void member_poll(member *m, int timeout_ms)
{
    int64_t deadline = wire_now_ms() + timeout_ms;
    stream_consumer_event ev;
    do {
        int rc = stream_consumer_poll(m->co, 20, &ev);
        assert_true(rc >= 0);
        if (rc == 0)
            continue;
        switch (ev.type) {
        case STREAM_EVENT_RECORD:
            assert_true(ev.partition < MAXP && ev.offset < MAXOFF);
            m->seen[ev.partition * MAXOFF + ev.offset]++;
            m->records++;
            break;
        case STREAM_EVENT_ASSIGNED:
            m->assigned++;
            break;
        case STREAM_EVENT_REVOKED:
            if (ev.err)
                m->lost++;
            else
                m->revoked++;
            m->last_revoked_offset = ev.offset;
            break;
        case STREAM_EVENT_ERROR:
            m->errors++;
            print_message("# error event: %s\n", ev.msg);
            break;
        default:
            break;
        }
    } while (wire_now_ms() < deadline && !stream_consumer_done(m->co));
}

static size_t held(const member *m)
{
    stream_group_status st;
    assert_int_equal(stream_consumer_group_status(m->co, &st), 0);
    return st.settled ? st.held : (size_t)-1;
}

/* Polls the members in turn until pred holds or the timeout passes. */
static bool poll_until(member *ms, size_t n, int timeout_ms, bool (*pred)(member *, size_t))
{
    int64_t deadline = wire_now_ms() + timeout_ms;
    while (wire_now_ms() < deadline) {
        for (size_t i = 0; i < n; i++)
            member_poll(&ms[i], 10);
        if (pred(ms, n))
            return true;
    }
    return false;
}

static int want_total; /* poll_until predicates read these */
static size_t want_held[4];

static bool all_records(member *ms, size_t n)
{
    int total = 0;
    for (size_t i = 0; i < n; i++)
        total += ms[i].records;
    return total >= want_total;
}

static bool holding(member *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (held(&ms[i]) != want_held[i])
            return false;
    return true;
}

static bool lost_and_back(member *ms, size_t n)
{
    return ms[0].lost >= 2 && holding(ms, n);
}

static stream_group_description *describe(stream_client *c, const char *group)
{
    stream_group_description *d = NULL;
    char eb[256] = "";
    int rc = stream_admin_describe_group(c, group, -1, &d, eb, sizeof eb);
    if (rc != 0)
        fail_msg("describe_group %s: %s", group, eb);
    return d;
}

static int64_t committed_of(const stream_group_description *d, const char *topic, int32_t p)
{
    for (size_t i = 0; i < d->offset_count; i++)
        if (d->offsets[i].partition == p && strcmp(d->offsets[i].topic, topic) == 0)
            return d->offsets[i].offset;
    return -1;
}

/* ---- tests --------------------------------------------------------------- */

static void test_subscribe_refuses_bad_input_before_sending(void **state)
{
    fixture *f = *state;
    stream_consumer *co;
    char eb[256] = "";
    assert_int_equal(stream_consumer_new(f->c, NULL, &co, eb, sizeof eb), 0);
    stream_group_conf gc;
    stream_group_conf_init(&gc);
    const char *t = "t";
    assert_int_equal(stream_consumer_subscribe(co, &gc, &t, 1, NULL, -1, eb, sizeof eb),
                     STREAM_EINVAL); /* no group */
    gc.group = "bad group";
    assert_int_equal(stream_consumer_subscribe(co, &gc, &t, 1, NULL, -1, eb, sizeof eb),
                     STREAM_EBADGROUP);
    assert_non_null(strstr(eb, "bad group"));
    gc.group = "g";
    const char *bad = "no/slash";
    assert_int_equal(stream_consumer_subscribe(co, &gc, &bad, 1, NULL, -1, eb, sizeof eb),
                     STREAM_EBADNAME);
    assert_int_equal(stream_consumer_subscribe(co, &gc, NULL, 0, "logs.(", -1, eb, sizeof eb),
                     STREAM_EINVAL);
    assert_non_null(strstr(eb, "bad pattern"));
    assert_int_equal(stream_consumer_subscribe(co, &gc, NULL, 0, NULL, -1, eb, sizeof eb),
                     STREAM_EINVAL);
    gc.session_timeout_ms = 0;
    assert_int_equal(stream_consumer_subscribe(co, &gc, &t, 1, NULL, -1, eb, sizeof eb),
                     STREAM_EINVAL);
    /* Not subscribed: the group calls say so. */
    assert_int_equal(stream_consumer_commit(co, -1, eb, sizeof eb), STREAM_EINVAL);
    assert_int_equal(stream_consumer_store_positions(co), STREAM_EINVAL);
    assert_int_equal(stream_consumer_close(co, true, -1, eb, sizeof eb), STREAM_EINVAL);
    stream_consumer_free(co);

    /* An assigned consumer cannot subscribe, and a member cannot assign. */
    create_topic(f->c, "t", 1);
    assert_int_equal(stream_consumer_new(f->c, NULL, &co, eb, sizeof eb), 0);
    assert_int_equal(stream_consumer_assign(co, "t", 0, NULL, eb, sizeof eb), 0);
    gc.session_timeout_ms = 1000;
    assert_int_equal(stream_consumer_subscribe(co, &gc, &t, 1, NULL, -1, eb, sizeof eb),
                     STREAM_EINVAL);
    stream_consumer_free(co);
    assert_int_equal(stream_consumer_new(f->c, NULL, &co, eb, sizeof eb), 0);
    assert_int_equal(stream_consumer_subscribe(co, &gc, &t, 1, NULL, -1, eb, sizeof eb), 0);
    assert_int_equal(stream_consumer_assign(co, "t", 0, NULL, eb, sizeof eb), STREAM_EINVAL);
    assert_int_equal(stream_consumer_close(co, true, -1, eb, sizeof eb), 0);
    stream_consumer_free(co);
}

static void test_subscribe_to_an_unreachable_broker_fails_at_once(void **state)
{
    fixture *f = *state;
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = f->addr;
    conf.request_timeout_ms = 2000;
    stream_client *c;
    char eb[256] = "";
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    broker_stop(f, SIGTERM);
    stream_consumer *co;
    assert_int_equal(stream_consumer_new(c, NULL, &co, eb, sizeof eb), 0);
    stream_group_conf gc;
    stream_group_conf_init(&gc);
    gc.group = "g";
    const char *t = "t";
    int rc = stream_consumer_subscribe(co, &gc, &t, 1, NULL, -1, eb, sizeof eb);
    assert_true(rc == STREAM_ECONNREFUSED || rc == STREAM_ETIMEDOUT || rc == STREAM_ECONNRESET);
    assert_non_null(strstr(eb, "group 'g'"));
    stream_consumer_free(co);
    stream_client_free(c);
}

static void test_single_member_reads_all_then_resumes_from_committed(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "orders", 4);
    produce(f->c, "orders", 4, 50);

    member m;
    member_start(&m, f->addr, "g1", "orders", NULL, true, STREAM_RESET_EARLIEST, NULL);
    member_poll(&m, 10000);
    assert_true(stream_consumer_done(m.co));
    assert_int_equal(m.records, 200);
    assert_int_equal(m.assigned, 4);
    for (int p = 0; p < 4; p++)
        for (int o = 0; o < 50; o++)
            assert_int_equal(m.seen[p * MAXOFF + o], 1);
    char eb[256] = "";
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);

    stream_group_description *d = describe(f->c, "g1");
    assert_string_equal(d->state, "empty");
    assert_int_equal(d->member_count, 0);
    for (int p = 0; p < 4; p++)
        assert_int_equal(committed_of(d, "orders", p), 50);
    assert_int_equal(d->total_lag, 0);
    stream_group_description_free(d);

    /* Nothing new: a bounded member is done at once with nothing. */
    member_start(&m, f->addr, "g1", "orders", NULL, true, STREAM_RESET_EARLIEST, NULL);
    member_poll(&m, 10000);
    assert_true(stream_consumer_done(m.co));
    assert_int_equal(m.records, 0);
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);

    /* New records: exactly those come. */
    produce(f->c, "orders", 4, 5);
    member_start(&m, f->addr, "g1", "orders", NULL, true, STREAM_RESET_EARLIEST, NULL);
    member_poll(&m, 10000);
    assert_int_equal(m.records, 20);
    for (int p = 0; p < 4; p++)
        for (int o = 50; o < 55; o++)
            assert_int_equal(m.seen[p * MAXOFF + o], 1);
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
}

static void test_reset_latest_starts_a_new_group_at_the_end(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "late", 2);
    produce(f->c, "late", 2, 10);
    member m;
    member_start(&m, f->addr, "g2", "late", NULL, false, STREAM_RESET_LATEST, NULL);
    want_held[0] = 2;
    assert_true(poll_until(&m, 1, 5000, holding));
    produce(f->c, "late", 2, 3);
    want_total = 6;
    assert_true(poll_until(&m, 1, 5000, all_records));
    for (int p = 0; p < 2; p++)
        for (int o = 10; o < 13; o++)
            assert_int_equal(m.seen[p * MAXOFF + o], 1);
    assert_int_equal(m.records, 6);
    char eb[256] = "";
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
}

static void test_members_share_partitions_and_see_each_record_once(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "shared", 6);
    member ms[3];
    for (int i = 0; i < 3; i++)
        member_start(&ms[i], f->addr, "g3", "shared", NULL, false, STREAM_RESET_EARLIEST, NULL);
    want_held[0] = want_held[1] = want_held[2] = 2;
    assert_true(poll_until(ms, 3, 10000, holding));
    produce(f->c, "shared", 6, 30);
    want_total = 180;
    assert_true(poll_until(ms, 3, 10000, all_records));
    for (int p = 0; p < 6; p++)
        for (int o = 0; o < 30; o++) {
            int times = 0;
            for (int i = 0; i < 3; i++)
                times += ms[i].seen[p * MAXOFF + o];
            assert_int_equal(times, 1);
        }
    for (int i = 0; i < 3; i++)
        assert_int_equal(ms[i].records, 60);
    stream_group_description *d = describe(f->c, "g3");
    assert_string_equal(d->state, "stable");
    assert_int_equal(d->member_count, 3);
    stream_group_description_free(d);
    char eb[256] = "";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(stream_consumer_close(ms[i].co, true, -1, eb, sizeof eb), 0);
        member_free(&ms[i]);
    }
}

static void manual_store(stream_group_conf *gc)
{
    gc->auto_store = false;
    gc->auto_commit = false;
}

/* A revoked partition waits for the caller: poll returns 0 at once so it
 * can store; the stored offset is committed before the partition moves,
 * and the new owner starts exactly there. */
static void test_revocation_commits_what_was_stored_before_the_move(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "rev", 2);
    produce(f->c, "rev", 2, 20);
    member ms[2];
    member_start(&ms[0], f->addr, "g4", "rev", NULL, false, STREAM_RESET_EARLIEST, manual_store);
    want_total = 40;
    assert_true(poll_until(ms, 1, 5000, all_records));
    /* Processed: 15 of each partition. */
    assert_int_equal(stream_consumer_store_offset(ms[0].co, "rev", 0, 15), 0);
    assert_int_equal(stream_consumer_store_offset(ms[0].co, "rev", 1, 15), 0);
    assert_int_equal(stream_consumer_store_offset(ms[0].co, "rev", 7, 15), STREAM_ENOENT);

    member_start(&ms[1], f->addr, "g4", "rev", NULL, false, STREAM_RESET_EARLIEST, NULL);
    /* The first member is asked to give one partition up: its poll comes
     * back empty-handed at once while the revocation waits for it. */
    int64_t deadline = wire_now_ms() + 10000;
    stream_consumer_event ev;
    bool nudged = false;
    while (!nudged && wire_now_ms() < deadline) {
        member_poll(&ms[1], 10);
        int64_t t0 = wire_now_ms();
        int rc = stream_consumer_poll(ms[0].co, 2000, &ev);
        assert_true(rc >= 0);
        if (rc == 0 && wire_now_ms() - t0 < 1000)
            nudged = true;
    }
    assert_true(nudged);
    want_held[0] = want_held[1] = 1;
    assert_true(poll_until(ms, 2, 10000, holding));
    assert_int_equal(ms[0].revoked, 1);
    assert_int_equal(ms[0].last_revoked_offset, 15);
    /* The new owner read from 15 on: records 15..19 of its partition. */
    assert_int_equal(ms[1].assigned, 1);
    want_total = 45;
    assert_true(poll_until(ms, 2, 5000, all_records));
    assert_int_equal(ms[1].records, 5);

    stream_group_status st;
    assert_int_equal(stream_consumer_group_status(ms[0].co, &st), 0);
    assert_true(st.joined);
    assert_true(st.commits >= 1);
    assert_true(strlen(st.member_id) > 0);
    char eb[256] = "";
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stream_consumer_close(ms[i].co, true, -1, eb, sizeof eb), 0);
        member_free(&ms[i]);
    }
}

static void test_manual_commit_is_what_the_group_stores(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "man", 1);
    produce(f->c, "man", 1, 10);
    member m;
    member_start(&m, f->addr, "g5", "man", NULL, true, STREAM_RESET_EARLIEST, manual_store);
    member_poll(&m, 10000);
    assert_int_equal(m.records, 10);
    char eb[256] = "";
    stream_group_description *d = describe(f->c, "g5");
    assert_int_equal(committed_of(d, "man", 0), -1);
    stream_group_description_free(d);
    assert_int_equal(stream_consumer_store_offset(m.co, "man", 0, 7), 0);
    assert_int_equal(stream_consumer_commit(m.co, -1, eb, sizeof eb), 0);
    int64_t off = -2;
    assert_int_equal(stream_consumer_committed(m.co, "man", 0, &off), 0);
    assert_int_equal(off, 7);
    d = describe(f->c, "g5");
    assert_int_equal(committed_of(d, "man", 0), 7);
    assert_int_equal(d->offsets[0].lag, 3);
    assert_true(d->offsets[0].oldest_unconsumed_timestamp > 0);
    stream_group_description_free(d);
    /* Committing again with nothing new is fine. */
    assert_int_equal(stream_consumer_commit(m.co, -1, eb, sizeof eb), 0);
    /* close without commit leaves 7. */
    assert_int_equal(stream_consumer_store_positions(m.co), 0);
    assert_int_equal(stream_consumer_close(m.co, false, -1, eb, sizeof eb), 0);
    member_free(&m);
    d = describe(f->c, "g5");
    assert_int_equal(committed_of(d, "man", 0), 7);
    stream_group_description_free(d);
}

/* A member that stops polling loses its session: its partitions go to the
 * other within about the session timeout, and when it polls again it
 * learns it lost them and joins anew. */
static void test_silent_member_loses_its_partitions(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "sil", 4);
    member ms[2];
    member_start(&ms[0], f->addr, "g6", "sil", NULL, false, STREAM_RESET_EARLIEST, NULL);
    member_start(&ms[1], f->addr, "g6", "sil", NULL, false, STREAM_RESET_EARLIEST, NULL);
    want_held[0] = want_held[1] = 2;
    assert_true(poll_until(ms, 2, 10000, holding));
    int64_t t0 = wire_now_ms();
    want_held[0] = 4;
    assert_true(poll_until(&ms[1], 1, 10000, holding)); /* ms[0] silent */
    int64_t took = wire_now_ms() - t0;
    print_message("# partitions moved %lld ms after the member went silent\n", (long long)took);
    assert_true(took < 5000);
    /* The silent one wakes: it has lost its partitions, without a commit. */
    member_poll(&ms[0], 300);
    assert_int_equal(ms[0].lost, 2);
    want_held[0] = want_held[1] = 2;
    assert_true(poll_until(ms, 2, 10000, holding));
    char eb[256] = "";
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stream_consumer_close(ms[i].co, true, -1, eb, sizeof eb), 0);
        member_free(&ms[i]);
    }
}

static void test_close_hands_over_at_once(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "bye", 4);
    produce(f->c, "bye", 4, 10);
    member ms[2];
    member_start(&ms[0], f->addr, "g7", "bye", NULL, false, STREAM_RESET_EARLIEST, NULL);
    member_start(&ms[1], f->addr, "g7", "bye", NULL, false, STREAM_RESET_EARLIEST, NULL);
    want_held[0] = want_held[1] = 2;
    assert_true(poll_until(ms, 2, 10000, holding));
    want_total = 40;
    assert_true(poll_until(ms, 2, 10000, all_records));
    char eb[256] = "";
    assert_int_equal(stream_consumer_close(ms[0].co, true, -1, eb, sizeof eb), 0);
    /* After close: nothing held, nothing returned. */
    stream_group_status st;
    assert_int_equal(stream_consumer_group_status(ms[0].co, &st), 0);
    assert_false(st.joined);
    assert_int_equal(st.held, 0);
    stream_consumer_event ev;
    assert_int_equal(stream_consumer_poll(ms[0].co, 0, &ev), 0);
    int64_t t0 = wire_now_ms();
    want_held[0] = 4;
    assert_true(poll_until(&ms[1], 1, 5000, holding));
    /* Far below the 1 s session timeout: the leave did it. */
    assert_true(wire_now_ms() - t0 < 900);
    /* No record came twice: the leaver committed what it had. */
    produce(f->c, "bye", 4, 1);
    want_total = ms[1].records + 4;
    assert_true(poll_until(&ms[1], 1, 5000, all_records));
    int total = 0;
    for (int p = 0; p < 4; p++)
        for (int o = 0; o < 11; o++) {
            int times = ms[0].seen[p * MAXOFF + o] + ms[1].seen[p * MAXOFF + o];
            assert_int_equal(times, 1);
            total += times;
        }
    assert_int_equal(total, 44);
    assert_int_equal(stream_consumer_close(ms[1].co, true, -1, eb, sizeof eb), 0);
    member_free(&ms[0]);
    member_free(&ms[1]);
}

static void test_pattern_subscription_picks_up_new_topics(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "logs.a", 1);
    create_topic(f->c, "mylogs", 1);
    produce(f->c, "logs.a", 1, 3);
    produce(f->c, "mylogs", 1, 3);
    member m;
    member_start(&m, f->addr, "g8", NULL, "logs\\..*", false, STREAM_RESET_EARLIEST, NULL);
    want_total = 3;
    assert_true(poll_until(&m, 1, 5000, all_records));
    create_topic(f->c, "logs.b", 2);
    produce(f->c, "logs.b", 2, 2);
    want_total = 7;
    assert_true(poll_until(&m, 1, 10000, all_records));
    member_poll(&m, 200);
    assert_int_equal(m.records, 7); /* never mylogs */
    assert_int_equal(m.assigned, 3);
    char eb[256] = "";
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
}

static void test_admin_list_describe_reset_delete(void **state)
{
    fixture *f = *state;
    stream_client *c = f->c;
    char eb[256] = "";
    create_topic(c, "adm", 2);
    produce(c, "adm", 2, 10);

    stream_group_listing *gl;
    size_t n;
    assert_int_equal(stream_admin_list_groups(c, -1, &gl, &n, eb, sizeof eb), 0);
    assert_int_equal(n, 0);
    stream_group_listings_free(gl, n);
    stream_group_description *d = NULL;
    assert_int_equal(stream_admin_describe_group(c, "nope", -1, &d, eb, sizeof eb),
                     STREAM_ENOGROUP);
    assert_null(d);
    assert_int_equal(stream_admin_describe_group(c, "bad name", -1, &d, eb, sizeof eb),
                     STREAM_EBADGROUP);

    member m;
    member_start(&m, f->addr, "ga", "adm", NULL, true, STREAM_RESET_EARLIEST, NULL);
    member_poll(&m, 10000);
    assert_int_equal(m.records, 20);
    assert_int_equal(stream_consumer_commit(m.co, -1, eb, sizeof eb), 0);

    assert_int_equal(stream_admin_list_groups(c, -1, &gl, &n, eb, sizeof eb), 0);
    assert_int_equal(n, 1);
    assert_string_equal(gl[0].group, "ga");
    assert_int_equal(gl[0].members, 1);
    assert_true(gl[0].generation >= 1);
    stream_group_listings_free(gl, n);

    d = describe(c, "ga");
    assert_int_equal(d->member_count, 1);
    assert_string_equal(d->members[0].client_id, "test_group_client");
    assert_int_equal(d->members[0].topic_count, 1);
    assert_string_equal(d->members[0].topics[0], "adm");
    assert_null(d->members[0].pattern);
    assert_int_equal(d->members[0].assignment_count, 1);
    assert_int_equal(d->members[0].assignment[0].count, 2);
    assert_int_equal(d->offset_count, 2);
    assert_string_equal(d->offsets[0].member_id, d->members[0].member_id);
    assert_int_equal(d->offsets[0].offset, 10);
    assert_int_equal(d->offsets[0].log_end_offset, 10);
    assert_int_equal(d->offsets[0].lag, 0);
    stream_group_description_free(d);

    /* A dry run is fine with members; executing is not. */
    stream_group_reset req = {.group = "ga", .to = STREAM_GROUP_RESET_SHIFT, .value = -4};
    stream_group_reset_plan *plan;
    assert_int_equal(stream_admin_reset_offsets(c, &req, -1, &plan, eb, sizeof eb), 0);
    assert_false(plan->executed);
    assert_int_equal(plan->count, 2);
    assert_string_equal(plan->entries[1].topic, "adm");
    assert_int_equal(plan->entries[1].partition, 1);
    assert_int_equal(plan->entries[1].current, 10);
    assert_int_equal(plan->entries[1].new_offset, 6);
    stream_group_reset_plan_free(plan);
    req.execute = true;
    assert_int_equal(stream_admin_reset_offsets(c, &req, -1, &plan, eb, sizeof eb),
                     STREAM_EGROUPNOTEMPTY);
    const char *names[2] = {"ga", "nope"};
    stream_group_result *res;
    assert_int_equal(stream_admin_delete_groups(c, names, 2, -1, &res, eb, sizeof eb), 0);
    assert_int_equal(res[0].err, STREAM_EGROUPNOTEMPTY);
    assert_int_equal(res[1].err, STREAM_ENOGROUP);
    assert_string_equal(res[1].group, "nope");
    stream_group_results_free(res, 2);

    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);

    /* Without members: the executed plan is the dry run's, and it sticks. */
    int32_t p1 = 1;
    stream_group_reset_topic rt = {.topic = "adm", .partitions = &p1, .partition_count = 1};
    req = (stream_group_reset){.group = "ga",
                               .topics = &rt,
                               .topic_count = 1,
                               .to = STREAM_GROUP_RESET_OFFSET,
                               .value = 3,
                               .execute = true};
    assert_int_equal(stream_admin_reset_offsets(c, &req, -1, &plan, eb, sizeof eb), 0);
    assert_true(plan->executed);
    assert_int_equal(plan->count, 1);
    assert_int_equal(plan->entries[0].new_offset, 3);
    stream_group_reset_plan_free(plan);
    d = describe(c, "ga");
    assert_int_equal(committed_of(d, "adm", 0), 10);
    assert_int_equal(committed_of(d, "adm", 1), 3);
    assert_int_equal(d->total_lag, 7);
    stream_group_description_free(d);
    req.to = STREAM_GROUP_RESET_EARLIEST;
    rt.topic = "missing";
    assert_int_equal(stream_admin_reset_offsets(c, &req, -1, &plan, eb, sizeof eb),
                     STREAM_ENOTOPIC);

    assert_int_equal(stream_admin_delete_groups(c, names, 1, -1, &res, eb, sizeof eb), 0);
    assert_int_equal(res[0].err, 0);
    stream_group_results_free(res, 1);
    assert_int_equal(stream_admin_describe_group(c, "ga", -1, &d, eb, sizeof eb), STREAM_ENOGROUP);
}

static void test_committed_offsets_survive_a_broker_crash(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "dur", 2);
    produce(f->c, "dur", 2, 10);
    member m;
    member_start(&m, f->addr, "g9", "dur", NULL, true, STREAM_RESET_EARLIEST, NULL);
    member_poll(&m, 10000);
    assert_int_equal(m.records, 20);
    char eb[256] = "";
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
    stream_client_free(f->c);
    broker_stop(f, SIGKILL);
    broker_start(f, false);
    f->c = client_for(f->addr);
    stream_group_description *d = describe(f->c, "g9");
    assert_int_equal(committed_of(d, "dur", 0), 10);
    assert_int_equal(committed_of(d, "dur", 1), 10);
    stream_group_description_free(d);
    produce(f->c, "dur", 2, 1);
    member_start(&m, f->addr, "g9", "dur", NULL, true, STREAM_RESET_EARLIEST, NULL);
    member_poll(&m, 10000);
    assert_int_equal(m.records, 2);
    assert_int_equal(m.seen[0 * MAXOFF + 10], 1);
    assert_int_equal(m.seen[1 * MAXOFF + 10], 1);
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
}

static void hourly_commits(stream_group_conf *gc)
{
    gc->auto_commit_interval_ms = 3600000;
}

static void hourly_commits_long_session(stream_group_conf *gc)
{
    gc->auto_commit_interval_ms = 3600000;
    gc->session_timeout_ms = 4000;
}

/* The member's id, copied (status gives a borrowed pointer). */
static void member_id_of(const member *m, char *id, size_t len)
{
    stream_group_status st;
    assert_int_equal(stream_consumer_group_status(m->co, &st), 0);
    snprintf(id, len, "%s", st.member_id);
}

/* A broker restart is a coordinator move that keeps the membership: the
 * member finds the broker again and goes on with the same id and
 * partitions, never losing them. */
static void test_member_carries_on_after_broker_restart(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "co", 2);
    produce(f->c, "co", 2, 5);
    member m;
    member_start(&m, f->addr, "g12", "co", NULL, false, STREAM_RESET_EARLIEST,
                 hourly_commits_long_session);
    want_total = 10;
    assert_true(poll_until(&m, 1, 5000, all_records));
    want_held[0] = 2;
    assert_true(poll_until(&m, 1, 5000, holding));
    char id[160], eb[256] = "";
    member_id_of(&m, id, sizeof id);
    stream_group_status st;
    assert_int_equal(stream_consumer_group_status(m.co, &st), 0);
    int32_t gen = st.generation;
    stream_client_free(f->c);
    f->c = NULL;
    broker_stop(f, SIGTERM);
    broker_start(f, true); /* the member's client knows only this address */
    f->c = client_for(f->addr);
    produce(f->c, "co", 2, 2);
    want_total = 14;
    assert_true(poll_until(&m, 1, 10000, all_records));
    member_poll(&m, 300);
    assert_int_equal(m.lost, 0);
    assert_int_equal(m.revoked, 0);
    assert_int_equal(stream_consumer_group_status(m.co, &st), 0);
    assert_string_equal(st.member_id, id);
    assert_int_equal(st.generation, gen);
    for (int p = 0; p < 2; p++)
        for (int o = 0; o < 7; o++)
            assert_int_equal(m.seen[p * MAXOFF + o], 1);
    stream_group_description *d = describe(f->c, "g12");
    assert_int_equal(d->member_count, 1);
    assert_string_equal(d->members[0].member_id, id);
    stream_group_description_free(d);
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
}

/* Takes events until the member has lost `n` partitions with the session
 * (the broker is down: no record may come). */
static void poll_until_lost(member *m, int n)
{
    int64_t deadline = wire_now_ms() + 10000;
    while (m->lost < n && wire_now_ms() < deadline) {
        int records = m->records;
        member_poll(m, 50);
        assert_int_equal(m->records, records);
    }
    assert_int_equal(m->lost, n);
}

/* The broker down for longer than the session: the member stops its
 * partitions (it cannot know it was not removed), then joins the restarted
 * broker again under its own id, which the broker restored: it gets them
 * back and goes on from its own positions, not its last commit. */
static void test_member_whose_session_lapsed_joins_again_under_its_own_id(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "rj", 2);
    produce(f->c, "rj", 2, 5);
    member m;
    member_start(&m, f->addr, "g10", "rj", NULL, false, STREAM_RESET_EARLIEST, hourly_commits);
    want_total = 10;
    assert_true(poll_until(&m, 1, 5000, all_records));
    char eb[256] = "", id[160];
    assert_int_equal(stream_consumer_commit(m.co, -1, eb, sizeof eb), 0);
    produce(f->c, "rj", 2, 2); /* read, never committed */
    want_total = 14;
    assert_true(poll_until(&m, 1, 5000, all_records));
    member_id_of(&m, id, sizeof id);
    stream_client_free(f->c);
    f->c = NULL;
    broker_stop(f, SIGTERM);
    poll_until_lost(&m, 2);
    broker_start(f, true); /* the member's client knows only this address */
    f->c = client_for(f->addr);
    produce(f->c, "rj", 2, 2);
    want_total = 18;
    assert_true(poll_until(&m, 1, 10000, all_records));
    want_held[0] = 2;
    assert_true(poll_until(&m, 1, 10000, lost_and_back));
    assert_int_equal(m.lost, 2);
    char again[160];
    member_id_of(&m, again, sizeof again);
    assert_string_equal(again, id);
    /* Exactly once: the records read after the last commit (5 and 6) are
     * not read again; the positions the member went on from (at least 7)
     * were committed without waiting for the hourly auto-commit. */
    member_poll(&m, 300);
    for (int p = 0; p < 2; p++)
        for (int o = 0; o < 9; o++)
            assert_int_equal(m.seen[p * MAXOFF + o], 1);
    stream_group_description *d = describe(f->c, "g10");
    assert_true(committed_of(d, "rj", 0) >= 7);
    assert_true(committed_of(d, "rj", 1) >= 7);
    stream_group_description_free(d);
    assert_int_equal(stream_consumer_close(m.co, true, -1, eb, sizeof eb), 0);
    member_free(&m);
}

static void manual_store_hourly(stream_group_conf *gc)
{
    gc->auto_store = false;
    gc->auto_commit_interval_ms = 3600000;
}

/* Records poll returned before the session was lost and stored after the
 * loss (a sink writing out its buffer, as stream-sub's) count: the
 * partition given back goes on after them, and that is committed at once. */
static void test_a_store_after_the_loss_moves_the_resume_point(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "sl", 1);
    produce(f->c, "sl", 1, 6);
    member m;
    member_start(&m, f->addr, "g11", "sl", NULL, false, STREAM_RESET_EARLIEST, manual_store_hourly);
    want_total = 6;
    assert_true(poll_until(&m, 1, 5000, all_records));
    char eb[256] = "";
    assert_int_equal(stream_consumer_store_offset(m.co, "sl", 0, 2), 0);
    assert_int_equal(stream_consumer_commit(m.co, -1, eb, sizeof eb), 0);
    /* Down for longer than the session: the member loses the partition
     * (up to the loss only: records 2..5 are returned, not stored yet). */
    stream_client_free(f->c);
    f->c = NULL;
    broker_stop(f, SIGTERM);
    poll_until_lost(&m, 1);
    broker_start(f, true);
    f->c = client_for(f->addr);
    assert_int_equal(stream_consumer_store_offset(m.co, "sl", 0, 7), STREAM_ENOENT);
    assert_int_equal(stream_consumer_store_positions(m.co), 0);
    produce(f->c, "sl", 1, 2);
    want_total = 8;
    assert_true(poll_until(&m, 1, 10000, all_records));
    for (int o = 0; o < 8; o++)
        assert_int_equal(m.seen[o], 1);
    stream_group_description *d = describe(f->c, "g11");
    assert_int_equal(committed_of(d, "sl", 0), 6);
    stream_group_description_free(d);
    assert_int_equal(stream_consumer_close(m.co, false, -1, eb, sizeof eb), 0);
    member_free(&m);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subscribe_refuses_bad_input_before_sending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_to_an_unreachable_broker_fails_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_member_reads_all_then_resumes_from_committed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_latest_starts_a_new_group_at_the_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_members_share_partitions_and_see_each_record_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_commits_what_was_stored_before_the_move,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_commit_is_what_the_group_stores, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_member_loses_its_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_hands_over_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pattern_subscription_picks_up_new_topics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_list_describe_reset_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_committed_offsets_survive_a_broker_crash, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_member_carries_on_after_broker_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_member_whose_session_lapsed_joins_again_under_its_own_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_store_after_the_loss_moves_the_resume_point, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
