/*
 * test_client_routing.c - routing requests to partition leaders
 * (libstream/client/client.c, client_metadata.c, client_offsets.c, the
 * producer's and the consumer's use of them).
 *
 * The pure decisions first: which node leads a partition in a metadata
 * answer, what to do about each error. Then real brokers: two independent
 * single-node brokers, node 1 and node 2 (node.id), cannot form one
 * cluster, so the tests name the leaders themselves
 * (stream__client_metadata_apply: the cache as if a metadata answer had
 * said so) and check that requests reach the node named, over a connection
 * of its own, that one poll drives every connection, that a dead node fails
 * only its own requests, and that the producer and the consumer follow a
 * leader that moves: records go to (and come from) the new leader, in
 * order, none twice. A last test kills the only broker the client knows of
 * and has the producer carry on with the next broker of its list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "client_kit.h"
#include "stream/client.h"
#include "stream/error.h"
#include "wire.h"

/* ---- pure decisions ------------------------------------------------------ */

static void test_retry_decide_by_error(void **state)
{
    (void)state;
    /* The leader moved or died: refresh, then retry on the new one. */
    int refresh[] = {STREAM_ENOTLEADER,  STREAM_ENOTENOUGHREPLICAS,
                     STREAM_ESTALEEPOCH, STREAM_ENOBROKER,
                     STREAM_ECONNRESET,  STREAM_ECONNREFUSED,
                     STREAM_ETIMEDOUT,   STREAM_ECLOSED,
                     STREAM_ENOTOPIC,    STREAM_ENOPART};
    for (size_t i = 0; i < sizeof refresh / sizeof refresh[0]; i++)
        assert_int_equal(stream__retry_decide(refresh[i]), STREAM__RETRY_REFRESH);
    assert_int_equal(stream__retry_decide(STREAM_EAGAIN), STREAM__RETRY_SAME);
    assert_int_equal(stream__retry_decide(STREAM_EPROTO), STREAM__RETRY_SAME);
    /* The batch itself is bad: retrying anywhere gives the same answer. */
    int never[] = {0,
                   STREAM_ECRC,
                   STREAM_ETOOLARGE,
                   STREAM_EBADNAME,
                   STREAM_EBADREQ,
                   STREAM_ECORRUPT,
                   STREAM_EINVAL,
                   STREAM_EOFFSET};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        assert_int_equal(stream__retry_decide(never[i]), STREAM__RETRY_NO);
}

/* A metadata answer of three brokers and topic "t" (3 partitions, led by
 * 2, none, 3) and "gone" (ENOTOPIC). */
static void fake_metadata(stream_metadata *md, stream_broker_meta *b, stream_topic_meta *t,
                          stream_partition_meta *p)
{
    memset(md, 0, sizeof *md);
    static char h1[] = "10.0.0.1", h2[] = "10.0.0.2", h3[] = "broker-3.example";
    static char tn[] = "t", gn[] = "gone";
    b[0] = (stream_broker_meta){.node_id = 1, .host = h1, .port = 9292};
    b[1] = (stream_broker_meta){.node_id = 2, .host = h2, .port = 9393};
    b[2] = (stream_broker_meta){.node_id = 3, .host = h3, .port = 9494};
    int32_t leaders[3] = {2, -1, 3};
    for (int i = 0; i < 3; i++)
        p[i] = (stream_partition_meta){.partition = i, .leader = leaders[i], .leader_epoch = 4};
    t[0] = (stream_topic_meta){.name = gn, .err = STREAM_ENOTOPIC};
    t[1] = (stream_topic_meta){.name = tn, .partition_count = 3, .partitions = p};
    md->broker_count = 3;
    md->brokers = b;
    md->topic_count = 2;
    md->topics = t;
}

static void test_metadata_leader_lookup(void **state)
{
    (void)state;
    stream_metadata md;
    stream_broker_meta b[3];
    stream_topic_meta t[2];
    stream_partition_meta p[3];
    fake_metadata(&md, b, t, p);
    stream_hostport hp;
    assert_int_equal(stream__metadata_leader(&md, "t", 0, &hp), 2);
    assert_string_equal(hp.host, "10.0.0.2");
    assert_int_equal(hp.port, 9393);
    assert_int_equal(stream__metadata_leader(&md, "t", 2, &hp), 3);
    assert_string_equal(hp.host, "broker-3.example");
    /* No leader right now: -1, no address. */
    assert_int_equal(stream__metadata_leader(&md, "t", 1, &hp), -1);
    assert_string_equal(hp.host, "");
    /* What the answer does not know. */
    assert_int_equal(stream__metadata_leader(&md, "t", 3, &hp), STREAM__LEADER_UNKNOWN);
    assert_int_equal(stream__metadata_leader(&md, "gone", 0, NULL), STREAM__LEADER_UNKNOWN);
    assert_int_equal(stream__metadata_leader(&md, "other", 0, NULL), STREAM__LEADER_UNKNOWN);
    assert_int_equal(stream__metadata_leader(NULL, "t", 0, NULL), STREAM__LEADER_UNKNOWN);
    /* A leader the answer lists no address for. */
    md.broker_count = 1;
    assert_int_equal(stream__metadata_leader(&md, "t", 0, &hp), 2);
    assert_string_equal(hp.host, "");
}

static void test_client_cache_routes_like_the_answer(void **state)
{
    (void)state;
    stream_metadata md;
    stream_broker_meta b[3];
    stream_topic_meta t[2];
    stream_partition_meta p[3];
    fake_metadata(&md, b, t, p);
    stream_client *c;
    assert_int_equal(stream_client_new(NULL, &c, NULL, 0), 0);
    assert_int_equal(stream__client_leader(c, "t", 0), STREAM__LEADER_UNKNOWN);
    assert_false(stream__client_clustered(c));
    uint64_t gen = stream__client_md_generation(c);
    assert_int_equal(stream__client_metadata_apply(c, &md), 0);
    assert_true(stream__client_md_generation(c) != gen);
    assert_true(stream__client_clustered(c));
    for (int32_t i = 0; i < 4; i++)
        assert_int_equal(stream__client_leader(c, "t", i),
                         stream__metadata_leader(&md, "t", i, NULL));
    assert_int_equal(stream__client_leader(c, "gone", 0), STREAM__LEADER_UNKNOWN);
    /* The same answer again changes nothing a router keeps. */
    gen = stream__client_md_generation(c);
    assert_int_equal(stream__client_metadata_apply(c, &md), 0);
    assert_int_equal(stream__client_md_generation(c), gen);
    /* No connection yet: node 2 would get one of its own; an unnamed node
     * goes to the bootstrap connection. */
    assert_false(stream__client_node_on_bootstrap(c, 2));
    assert_true(stream__client_node_on_bootstrap(c, 9));
    assert_true(stream__client_node_on_bootstrap(c, STREAM__NODE_BOOTSTRAP));
    stream_client_free(c);
}

/* ---- two brokers: node 1 and node 2 --------------------------------------- */

typedef struct two {
    client_fixture n1, n2; /* their clients are connected to each alone */
} two;

static int setup_two_with(void **state, const char *const *s2)
{
    two *t = calloc(1, sizeof *t);
    assert_non_null(t);
    const char *s1[] = {"node.id=1", NULL};
    t->n1.tag = "test_routing1";
    t->n2.tag = "test_routing2";
    client_fixture_start(&t->n1, false, s1);
    client_fixture_start(&t->n2, false, s2);
    t->n1.c = client_for(t->n1.addr);
    t->n2.c = client_for(t->n2.addr);
    *state = t;
    return 0;
}

static int setup_two(void **state)
{
    const char *s2[] = {"node.id=2", NULL};
    return setup_two_with(state, s2);
}

/* Node 2 creates no topic on produce: it answers ENOTOPIC for those it
 * does not have, as a broker that is not their leader would say
 * ENOTLEADER. */
static int setup_two_noauto(void **state)
{
    const char *s2[] = {"node.id=2", "auto.create.topics.enable=false", NULL};
    return setup_two_with(state, s2);
}

static int teardown_two(void **state)
{
    two *t = *state;
    client_fixture *f[2] = {&t->n1, &t->n2};
    for (int i = 0; i < 2; i++) {
        stream_client_free(f[i]->c);
        client_fixture_stop(f[i], SIGTERM);
        wire_rm_rf(f[i]->b.dir);
    }
    free(t);
    return 0;
}

/* Names the brokers (1: n1, 2: n2, 3: `dead_port` when > 0) and, for
 * `topic` (1 partition), leader `leader`, in c's cache. */
static void name_leader(stream_client *c, const two *t, const char *topic, int32_t leader,
                        int dead_port)
{
    char h[] = "127.0.0.1";
    stream_broker_meta b[3] = {{.node_id = 1, .host = h, .port = t->n1.b.port},
                               {.node_id = 2, .host = h, .port = t->n2.b.port},
                               {.node_id = 3, .host = h, .port = dead_port}};
    stream_partition_meta p = {.partition = 0, .leader = leader};
    stream_topic_meta tm = {.name = (char *)topic, .partition_count = 1, .partitions = &p};
    stream_metadata md = {.broker_count = dead_port > 0 ? 3 : 2,
                          .brokers = b,
                          .topic_count = topic ? 1 : 0,
                          .topics = &tm};
    assert_int_equal(stream__client_metadata_apply(c, &md), 0);
}

/* A port nobody listens on: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* One metadata request for `topic`, sent to `node`: its answer's topic err
 * (or the request's error) lands in *err, *done set. */
typedef struct md_probe {
    bool done;
    int err;
    int64_t at_ms;
    char msg[300];
} md_probe;

static void probe_cb(stream_client *c, const stream__resp *r, void *arg)
{
    (void)c;
    md_probe *m = arg;
    m->done = true;
    m->at_ms = wire_now_ms();
    m->err = r->err;
    snprintf(m->msg, sizeof m->msg, "%s", r->msg);
    if (r->err == 0) {
        const msgpack_object *topics = wire_array(r->root, "topics");
        assert_non_null(topics);
        m->err = -(int)wire_int(wire_elem(topics, 0), "err");
    }
}

/* The answer of a request whose answer is not looked at. */
static void done_cb(stream_client *c, const stream__resp *r, void *arg)
{
    (void)c;
    md_probe *m = arg;
    m->done = true;
    m->at_ms = wire_now_ms();
    m->err = r->err;
}

static void send_probe(stream_client *c, int32_t node, const char *topic, md_probe *m)
{
    memset(m, 0, sizeof *m);
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_METADATA, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    stream_pack_cstr(pk, topic);
    assert_true(stream__req_send_node(c, node, probe_cb, m, 0, 0) > 0);
}

static void wait_for(stream_client *c, const bool *done)
{
    assert_int_equal(stream__client_wait(c, done, wire_now_ms() + 10000), 0);
}

static void test_requests_reach_the_node_named(void **state)
{
    two *t = *state;
    create_topic(t->n2.c, "only_on_2", 1);
    stream_client *c = client_for(t->n1.addr);
    assert_int_equal(stream__client_bootstrap_node(c), 1);
    name_leader(c, t, NULL, -1, 0);
    md_probe a, b, boot;
    send_probe(c, 2, "only_on_2", &b);
    send_probe(c, 1, "only_on_2", &a);
    send_probe(c, STREAM__NODE_BOOTSTRAP, "only_on_2", &boot);
    wait_for(c, &b.done);
    wait_for(c, &a.done);
    wait_for(c, &boot.done);
    assert_int_equal(b.err, 0);                  /* node 2 knows it */
    assert_int_equal(a.err, STREAM_ENOTOPIC);    /* node 1 is the bootstrap broker */
    assert_int_equal(boot.err, STREAM_ENOTOPIC); /* so is the bootstrap connection */
    /* Node 2 got a connection of its own; node 1 shares the bootstrap one. */
    assert_true(stream__client_node_on_bootstrap(c, 1));
    assert_false(stream__client_node_on_bootstrap(c, 2));
    assert_int_equal(stream_client_pending(c), 0);
    stream_client_free(c);
}

static void test_one_poll_drives_every_connection(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "idle", 1);
    create_topic(t->n2.c, "other", 1);
    stream_client *c = client_for(t->n1.addr);
    name_leader(c, t, NULL, -1, 0);
    /* A long poll that waits 3 s on node 1 (nothing to read)... */
    md_probe fetch = {0};
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_FETCH, 4);
    stream_pack_kv_int(pk, "max_wait_ms", 3000);
    stream_pack_kv_int(pk, "min_bytes", 1);
    stream_pack_kv_int(pk, "max_bytes", 1 << 20);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "name", "idle");
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_int(pk, "partition", 0);
    stream_pack_kv_int(pk, "offset", 0);
    int64_t t0 = wire_now_ms();
    assert_true(stream__req_send_node(c, 1, done_cb, &fetch, 3000, 0) > 0);
    /* ... does not hold up node 2's answer. */
    md_probe m;
    send_probe(c, 2, "other", &m);
    wait_for(c, &m.done);
    assert_int_equal(m.err, 0);
    assert_false(fetch.done);
    assert_true(m.at_ms - t0 < 2000);
    wait_for(c, &fetch.done);
    assert_int_equal(fetch.err, 0);
    assert_true(fetch.at_ms - t0 >= 2000);
    stream_client_free(c);
}

static void test_dead_node_fails_only_its_requests(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "alive", 1);
    stream_client *c = client_for(t->n1.addr);
    int port = closed_port();
    name_leader(c, t, NULL, -1, port);
    md_probe dead, alive;
    send_probe(c, 3, "alive", &dead);
    send_probe(c, 1, "alive", &alive);
    wait_for(c, &dead.done);
    wait_for(c, &alive.done);
    assert_int_equal(dead.err, STREAM_ECONNREFUSED);
    char want[128];
    snprintf(want, sizeof want, "cannot connect to broker 3 at 127.0.0.1:%d: connection refused",
             port);
    assert_string_equal(dead.msg, want);
    assert_int_equal(alive.err, 0);
    assert_true(stream_client_connected(c));
    stream_client_free(c);
}

/* Values "v-N" of partition 0 of topic on the client's broker, in order. */
static void read_values(stream_client *c, const char *topic, consumed *cs)
{
    memset(cs, 0, sizeof *cs);
    consume_all(c, topic, NULL, cs);
}

static void produce_values(stream_producer *p, const char *topic, int from, int to)
{
    for (int i = from; i < to; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "v-%d", i);
        stream_producer_record rec = {.topic = topic,
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
    }
}

static void test_producer_follows_the_leader_named(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "moves", 1);
    create_topic(t->n2.c, "moves", 1);
    stream_client *c = client_for(t->n1.addr);
    reports r;
    reports_init(&r, 300);
    stream_producer *p = producer_for(c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 0);
    /* Leader 2: records go to node 2, over its own connection. */
    name_leader(c, t, "moves", 2, 0);
    produce_values(p, "moves", 0, 100);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    /* No leader (an election): batches wait and the producer asks for
     * metadata; the bootstrap broker, node 1, says it leads: they go there,
     * as does what follows. */
    name_leader(c, t, "moves", -1, 0);
    produce_values(p, "moves", 100, 200);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(stream__client_leader(c, "moves", 0), 1);
    produce_values(p, "moves", 200, 300);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.count, 300);
    assert_int_equal(r.failed, 0);
    stream_producer_free(p, 0);
    stream_client_free(c);

    consumed on1, on2;
    read_values(t->n1.c, "moves", &on1);
    read_values(t->n2.c, "moves", &on2);
    assert_int_equal(on2.n, 100);
    assert_int_equal(on1.n, 200);
    for (size_t i = 0; i < on2.n; i++) {
        char v[32];
        snprintf(v, sizeof v, "v-%zu", i);
        assert_string_equal(on2.recs[i].value, v);
        assert_int_equal(r.offset[i], (int64_t)i);
    }
    for (size_t i = 0; i < on1.n; i++) {
        char v[32];
        snprintf(v, sizeof v, "v-%zu", i + 100);
        assert_string_equal(on1.recs[i].value, v);
        assert_int_equal(r.offset[i + 100], (int64_t)i);
    }
    consumed_release(&on1);
    consumed_release(&on2);
    reports_release(&r);
}

/* The metadata names a wrong leader (node 2, which does not have the
 * partition): its refusal makes the producer refresh the metadata, from
 * the bootstrap broker, node 1, which leads, and resend there: every
 * record delivered once, in order, no error reported. */
static void test_producer_refreshes_after_a_refusal(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "here", 1);
    stream_client *c = client_for(t->n1.addr);
    reports r;
    reports_init(&r, 50);
    stream_producer *p = producer_for(c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 0);
    name_leader(c, t, "here", 2, 0);
    produce_values(p, "here", 0, 50);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.count, 50);
    assert_int_equal(r.failed, 0);
    assert_int_equal(stream__client_leader(c, "here", 0), 1);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    assert_true(st.retries >= 1);
    stream_producer_free(p, 0);
    stream_client_free(c);
    consumed on1;
    read_values(t->n1.c, "here", &on1);
    assert_int_equal(on1.n, 50);
    for (size_t i = 0; i < on1.n; i++) {
        char v[32];
        snprintf(v, sizeof v, "v-%zu", i);
        assert_string_equal(on1.recs[i].value, v);
        assert_int_equal(r.offset[i], (int64_t)i);
    }
    consumed_release(&on1);
    reports_release(&r);
}

static void test_consumer_resumes_on_the_new_leader(void **state)
{
    two *t = *state;
    /* Node 1 has a0..a19, node 2 b0..b9 (standing in for the same log: a
     * follower that got the first ten). */
    create_topic(t->n1.c, "logs", 1);
    create_topic(t->n2.c, "logs", 1);
    reports r1, r2;
    reports_init(&r1, 20);
    reports_init(&r2, 10);
    stream_producer *p1 = producer_for(t->n1.c, &r1, 1, STREAM_CODEC_NONE, 0);
    stream_producer *p2 = producer_for(t->n2.c, &r2, 1, STREAM_CODEC_NONE, 0);
    for (int i = 0; i < 20; i++) {
        char v[16];
        int len = snprintf(v, sizeof v, "a%d", i);
        stream_producer_record rec = {.topic = "logs",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p1, &rec);
        if (i < 10) {
            v[0] = 'b';
            produce_record(p2, &rec);
        }
    }
    assert_int_equal(stream_producer_flush(p1, 10000), 0);
    assert_int_equal(stream_producer_flush(p2, 10000), 0);
    stream_producer_free(p1, 0);
    stream_producer_free(p2, 0);
    reports_release(&r1);
    reports_release(&r2);

    stream_client *c = client_for(t->n1.addr);
    name_leader(c, t, "logs", 2, 0);
    stream_consumer *co = consumer_with(c, false);
    char eb[256] = "";
    /* list_offsets and fetches go to node 2. */
    stream_offset_spec spec = {.start = {STREAM_OFFSET_BEGINNING, 0},
                               .end = {STREAM_OFFSET_NONE, 0}};
    assert_int_equal(stream_consumer_assign(co, "logs", 0, &spec, eb, sizeof eb), 0);
    consumed cs = {0};
    consume_until(co, &cs, 10, true, 10000);
    /* Node 1 leads now: the consumer goes on from its position, 10. */
    name_leader(c, t, "logs", 1, 0);
    consume_until(co, &cs, 20, true, 10000);
    assert_int_equal(cs.n, 20);
    for (size_t i = 0; i < cs.n; i++) {
        char v[32];
        snprintf(v, sizeof v, "%c%zu", i < 10 ? 'b' : 'a', i);
        assert_string_equal(cs.recs[i].value, v);
        assert_int_equal(cs.recs[i].offset, (int64_t)i);
    }
    int64_t pos = -1;
    assert_int_equal(stream_consumer_position(co, "logs", 0, &pos), 0);
    assert_int_equal(pos, 20);
    consumed_release(&cs);
    stream_consumer_free(co);
    stream_client_free(c);
}

/* The leader's broker (node 2, on a node connection) dies: the producer's
 * requests there fail, it asks the bootstrap broker (node 1) who leads, and
 * resends there; the consumer likewise goes on from its position on node
 * 1. Nothing fails, nothing comes twice. */
static void test_dead_leader_connection_is_followed(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "dies", 1);
    create_topic(t->n2.c, "dies", 1);
    /* Node 1 holds a0..a9 already (standing in for a replica). */
    reports r1;
    reports_init(&r1, 10);
    stream_producer *p1 = producer_for(t->n1.c, &r1, 1, STREAM_CODEC_NONE, 0);
    for (int i = 0; i < 10; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "a%d", i);
        stream_producer_record rec = {.topic = "dies",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p1, &rec);
    }
    assert_int_equal(stream_producer_flush(p1, 10000), 0);
    stream_producer_free(p1, 0);
    reports_release(&r1);

    stream_client *c = client_for(t->n1.addr);
    name_leader(c, t, "dies", 2, 0);
    reports r;
    reports_init(&r, 20);
    stream_producer *p = producer_for(c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 0);
    produce_values(p, "dies", 0, 10); /* to node 2 */
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    stream_consumer *co = consumer_with(c, false);
    char eb[256] = "";
    stream_offset_spec spec = {.start = {STREAM_OFFSET_BEGINNING, 0},
                               .end = {STREAM_OFFSET_NONE, 0}};
    assert_int_equal(stream_consumer_assign(co, "dies", 0, &spec, eb, sizeof eb), 0);
    consumed cs = {0};
    consume_until(co, &cs, 5, true, 10000);
    client_fixture_stop(&t->n2, SIGKILL);
    produce_values(p, "dies", 10, 20); /* node 2 is gone: to node 1 */
    assert_int_equal(stream_producer_flush(p, 20000), 0);
    assert_int_equal(r.count, 20);
    assert_int_equal(r.failed, 0);
    for (size_t i = 10; i < 20; i++)
        assert_int_equal(r.offset[i], (int64_t)i); /* after a0..a9 */
    assert_int_equal(stream__client_leader(c, "dies", 0), 1);
    /* The consumer: v-0..v-4 came from node 2 (offsets 0..4); it may have
     * more of node 2's in its buffers; then node 1's from where it was. */
    consume_until(co, &cs, 20, true, 20000);
    for (size_t i = 0; i < cs.n; i++)
        assert_int_equal(cs.recs[i].offset, (int64_t)i);
    size_t k = 0;
    while (k < 10 && k < cs.n && strncmp(cs.recs[k].value, "v-", 2) == 0) {
        char v[32];
        snprintf(v, sizeof v, "v-%zu", k);
        assert_string_equal(cs.recs[k].value, v);
        k++;
    }
    assert_true(k >= 5 && k <= 10);
    for (; k < 10; k++) {
        char v[32];
        snprintf(v, sizeof v, "a%zu", k);
        assert_string_equal(cs.recs[k].value, v);
    }
    for (; k < cs.n; k++) {
        char v[32];
        snprintf(v, sizeof v, "v-%zu", k);
        assert_string_equal(cs.recs[k].value, v);
    }
    assert_int_equal(cs.n, 20);
    consumed_release(&cs);
    stream_consumer_free(co);
    stream_producer_free(p, 0);
    stream_client_free(c);
    reports_release(&r);
    /* Node 2 back, for the teardown. */
    client_fixture_start(&t->n2, true, (const char *const[]){"node.id=2", NULL});
}

static void test_list_offsets_asks_each_leader(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "ranges", 1);
    create_topic(t->n2.c, "ranges2", 1);
    reports r;
    reports_init(&r, 5);
    stream_producer *p = producer_for(t->n2.c, &r, 1, STREAM_CODEC_NONE, 0);
    produce_values(p, "ranges2", 0, 5);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    stream_producer_free(p, 0);
    reports_release(&r);

    stream_client *c = client_for(t->n1.addr);
    name_leader(c, t, "ranges2", 2, 0);
    stream_offset_query q[2] = {
        {.topic = "ranges", .partition = 0, .timestamp = STREAM_LIST_LATEST},
        {.topic = "ranges2", .partition = 0, .timestamp = STREAM_LIST_LATEST},
    };
    char eb[256] = "";
    assert_int_equal(stream_admin_list_offsets(c, q, 2, 5000, eb, sizeof eb), 0);
    assert_int_equal(q[0].err, 0);
    assert_int_equal(q[0].offset, 0); /* node 1 (bootstrap): empty */
    assert_int_equal(q[1].err, 0);
    assert_int_equal(q[1].offset, 5); /* node 2 */
    stream_client_free(c);
}

/* The broker the client bootstrapped from dies; the producer carries on
 * with the next broker of its list (which, in this test, holds a log of
 * its own: in a cluster it would be the same log, replicated). Every
 * record gets one report, without an error, and is stored where the
 * report says. */
static void test_producer_survives_its_broker(void **state)
{
    two *t = *state;
    create_topic(t->n1.c, "survive", 1);
    create_topic(t->n2.c, "survive", 1);
    char list[128];
    snprintf(list, sizeof list, "%s,%s", t->n1.addr, t->n2.addr);
    stream_client *c = client_for(list);
    reports r;
    reports_init(&r, 200);
    stream_producer *p = producer_for(c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 0);
    produce_values(p, "survive", 0, 100);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    client_fixture_stop(&t->n1, SIGKILL);
    produce_values(p, "survive", 100, 200);
    assert_int_equal(stream_producer_flush(p, 20000), 0);
    assert_int_equal(r.count, 200);
    assert_int_equal(r.failed, 0);
    assert_int_equal(stream__client_bootstrap_node(c), 2);
    stream_producer_free(p, 0);
    stream_client_free(c);

    consumed on2;
    read_values(t->n2.c, "survive", &on2);
    assert_int_equal(on2.n, 100);
    for (size_t i = 0; i < on2.n; i++) {
        char v[32];
        snprintf(v, sizeof v, "v-%zu", i + 100);
        assert_string_equal(on2.recs[i].value, v);
        assert_int_equal(r.offset[i + 100], (int64_t)i);
    }
    consumed_release(&on2);
    reports_release(&r);
    /* Node 1 back on its data, for the teardown. */
    client_fixture_start(&t->n1, true, (const char *const[]){"node.id=1", NULL});
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_decide_by_error),
        cmocka_unit_test(test_metadata_leader_lookup),
        cmocka_unit_test(test_client_cache_routes_like_the_answer),
        cmocka_unit_test_setup_teardown(test_requests_reach_the_node_named, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_one_poll_drives_every_connection, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_dead_node_fails_only_its_requests, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_producer_follows_the_leader_named, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_producer_refreshes_after_a_refusal, setup_two_noauto,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_consumer_resumes_on_the_new_leader, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_dead_leader_connection_is_followed, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_list_offsets_asks_each_leader, setup_two,
                                        teardown_two),
        cmocka_unit_test_setup_teardown(test_producer_survives_its_broker, setup_two, teardown_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
