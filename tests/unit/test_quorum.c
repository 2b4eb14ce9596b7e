/*
 * test_quorum.c - the metadata quorum (libstream/cluster/quorum.c): three
 * voters in one process, on one uv loop, on 127.0.0.1, each in its own temp
 * directory: election, ordered and identical application, proposals on a
 * follower, failover, a restarted voter catching up through an installed
 * snapshot, pending proposals failed (not silent) when the leader stops or
 * loses its quorum, another cluster's directory refused, bad voter lists.
 *
 * The state machine here is a small test one (tfsm): a list of applied
 * (index, value, result) triples, a deterministic verdict per value, and a
 * snapshot that carries the whole list, so "the same commands in the same
 * order with the same results on every voter" is one memcmp. The last test
 * runs the real cluster metadata state machine (metadata.h) on the quorum.
 *
 * Built by the Makefile with the other unit tests (make unit; alone:
 * build/asan/tests/test_quorum, TEST_FILTER=NAME for one test).
 *
 * Timings (election, failover) are printed as "# ..." lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cluster/metadata.h"
#include "cluster/quorum.h"
#include "stream/buf.h"
#include "stream/error.h"

#define NODES 3

/* ---- the test state machine ------------------------------------------------ */

typedef struct applied {
    uint64_t index;
    uint64_t value;
    int32_t result;
} applied;

typedef struct tfsm {
    applied *v; /* every command applied, in order */
    size_t n, cap;
    int restores; /* successful restores (at start and installed) */
} tfsm;

/* The verdict for a command: deterministic, sometimes an error. */
static int verdict(uint64_t value)
{
    return value % 7 == 3 ? STREAM_EEXIST : 0;
}

static int tfsm_apply(void *arg, const uint8_t *cmd, size_t len, uint64_t index)
{
    tfsm *f = arg;
    /* The value, then (test_odd_lengths...) filler bytes all equal to the
     * command's length: a command read back shifted fails here. */
    assert_true(len >= 8);
    for (size_t k = 8; k < len; k++)
        assert_int_equal(cmd[k], (uint8_t)len);
    if (f->n > 0)
        assert_true(index > f->v[f->n - 1].index);
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
        assert_non_null(f->v);
    }
    uint64_t value = stream_load_be64(cmd);
    f->v[f->n++] = (applied){index, value, verdict(value)};
    return verdict(value);
}

/* count (8) | per entry: index (8) value (8) result (4, two's complement) */
static int tfsm_snapshot(void *arg, stream_buf *out)
{
    tfsm *f = arg;
    stream_buf_put_be64(out, f->n);
    for (size_t i = 0; i < f->n; i++) {
        stream_buf_put_be64(out, f->v[i].index);
        stream_buf_put_be64(out, f->v[i].value);
        stream_buf_put_be32(out, (uint32_t)f->v[i].result);
    }
    return stream_buf_ok(out);
}

static int tfsm_restore(void *arg, const uint8_t *p, size_t len, char *errbuf, size_t errbuf_len)
{
    tfsm *f = arg;
    stream_reader r;
    uint64_t n;
    stream_reader_init(&r, p, len);
    if (stream_get_be64(&r, &n) < 0 || n > len / 20 || stream_reader_left(&r) != n * 20) {
        snprintf(errbuf, errbuf_len, "test snapshot of %zu bytes is malformed", len);
        return STREAM_ECORRUPT;
    }
    applied *v = calloc(n ? n : 1, sizeof *v);
    assert_non_null(v);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t res;
        stream_get_be64(&r, &v[i].index);
        stream_get_be64(&r, &v[i].value);
        stream_get_be32(&r, &res);
        v[i].result = (int32_t)res;
    }
    free(f->v);
    f->v = v;
    f->n = f->cap = n;
    f->restores++;
    return 0;
}

/* ---- a cluster of three voters on one loop ---------------------------------- */

typedef struct node {
    int32_t id;
    char dir[128];
    stream__quorum *q; /* NULL while stopped */
    tfsm fsm;
    stream__meta *md; /* the real state machine instead, when the cluster uses it */
    int changes;         /* on_change reports */
} node;

typedef struct cluster {
    uv_loop_t loop;
    uv_timer_t ticker; /* wakes uv_run(UV_RUN_ONCE) so waits can time out */
    char root[64];
    stream__quorum_config cfg; /* voters and settings shared by every node */
    node nodes[NODES];
    int stopped;       /* stop callbacks seen */
    bool use_metadata; /* nodes run stream__meta, not tfsm */
} cluster;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_change(void *arg, const stream__quorum_change *c)
{
    node *n = arg;
    n->changes++;
    (void)c;
}

/* Runs the loop until pred(c, arg) or timeout_ms; returns pred's last value. */
static bool run_until(cluster *c, bool (*pred)(cluster *, void *), void *arg, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!pred(c, arg)) {
        if (now_ms() > deadline)
            return false;
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(cluster *c, void *arg)
{
    (void)c;
    (void)arg;
    return false;
}

/* Runs the loop for ms milliseconds. */
static void run_for(cluster *c, int ms)
{
    run_until(c, never, NULL, ms);
}

/* A port nobody listens on right now (bind to 0, read it, close). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void on_stopped(void *arg)
{
    cluster *c = arg;
    c->stopped++;
}

static bool all_stopped(cluster *c, void *arg)
{
    return c->stopped == *(int *)arg;
}

/* Stops node i (no grace: the others see a crash) and waits until it is
 * closed. */
static void stop_node(cluster *c, int i)
{
    node *n = &c->nodes[i];
    if (n->q == NULL)
        return;
    int want = c->stopped + 1;
    stream__quorum_stop(n->q, on_stopped, c);
    n->q = NULL;
    assert_true(run_until(c, all_stopped, &want, 10000));
}

/* Starts node i from its directory with a fresh (empty) state machine.
 * Returns 0 or the start's error (errbuf filled). */
static int try_start_node(cluster *c, int i, const char *cluster_id, char *errbuf, size_t len)
{
    node *n = &c->nodes[i];
    free(n->fsm.v);
    memset(&n->fsm, 0, sizeof n->fsm);
    stream__quorum_config cfg = c->cfg;
    cfg.node_id = n->id;
    cfg.data_dir = n->dir;
    cfg.cluster_id = cluster_id;
    cfg.on_change = on_change;
    cfg.change_arg = n;
    stream__quorum_fsm fsm = {&n->fsm, tfsm_apply, tfsm_snapshot, tfsm_restore};
    if (c->use_metadata) {
        stream__meta_free(n->md);
        n->md = stream__meta_new(cluster_id);
        assert_non_null(n->md);
        stream__meta_fsm(n->md, &fsm);
    }
    return stream__quorum_start(&c->loop, &cfg, &fsm, &n->q, errbuf, len);
}

/* Starts node i, retrying while its port is still held (a restart right
 * after a stop, or a port taken between free_port and the start). */
static void start_node(cluster *c, int i)
{
    char err[512] = "";
    int rc;
    for (int attempt = 0; attempt < 50; attempt++) {
        rc = try_start_node(c, i, "test-cluster", err, sizeof err);
        if (rc == 0)
            return;
        if (strstr(err, "already in use") == NULL)
            break;
        run_for(c, 100);
    }
    fail_msg("start of node %d: %s: %s", (int)c->nodes[i].id, stream_err_name(rc), err);
}

static int setup(void **state)
{
    cluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->ticker);
    uv_timer_start(&c->ticker, on_tick, 5, 5);
    strcpy(c->root, "/tmp/test_quorum.XXXXXX");
    assert_non_null(mkdtemp(c->root));
    stream__quorum_config_init(&c->cfg);
    for (int i = 0; i < NODES; i++) {
        node *n = &c->nodes[i];
        n->id = i + 1;
        snprintf(n->dir, sizeof n->dir, "%s/node%d", c->root, n->id);
    }
    *state = c;
    return 0;
}

/* Picks ports and starts all three; a port lost to another process between
 * the pick and the start means new ports and empty directories. */
static void start_cluster(cluster *c)
{
    char err[512] = "";
    for (int attempt = 0; attempt < 5; attempt++) {
        c->cfg.n_voters = NODES;
        for (int i = 0; i < NODES; i++) {
            c->cfg.voters[i].id = c->nodes[i].id;
            strcpy(c->cfg.voters[i].host, "127.0.0.1");
            c->cfg.voters[i].port = free_port();
        }
        int i, rc = 0;
        for (i = 0; i < NODES && rc == 0; i++)
            rc = try_start_node(c, i, "test-cluster", err, sizeof err);
        if (rc == 0)
            return;
        assert_non_null(strstr(err, "already in use"));
        for (int k = 0; k < NODES; k++) {
            stop_node(c, k);
            nftw(c->nodes[k].dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    fail_msg("could not start the cluster: %s", err);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    cluster *c = *state;
    for (int i = 0; i < NODES; i++)
        stop_node(c, i);
    uv_close((uv_handle_t *)&c->ticker, NULL);
    /* Every quorum stopped: nothing of theirs may be left on the loop. */
    for (int k = 0; k < 100 && uv_run(&c->loop, UV_RUN_NOWAIT) != 0; k++)
        usleep(10000);
    int rc = uv_loop_close(&c->loop);
    if (rc != 0) {
        uv_print_all_handles(&c->loop, stderr);
        uv_walk(&c->loop, close_walk, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
    }
    for (int i = 0; i < NODES; i++) {
        free(c->nodes[i].fsm.v);
        stream__meta_free(c->nodes[i].md);
    }
    nftw(c->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(c);
    if (rc != 0)
        fail_msg("handles left open on the loop after every quorum stopped");
    return 0;
}

/* Exactly one running node leads and every running node names it. */
static bool leader_agreed(cluster *c, void *arg)
{
    int32_t *leader = arg, found = -1;
    for (int i = 0; i < NODES; i++) {
        node *n = &c->nodes[i];
        if (n->q == NULL || !stream__quorum_is_leader(n->q))
            continue;
        if (found != -1)
            return false;
        found = n->id;
    }
    if (found == -1)
        return false;
    for (int i = 0; i < NODES; i++)
        if (c->nodes[i].q != NULL && stream__quorum_leader(c->nodes[i].q) != found)
            return false;
    *leader = found;
    return true;
}

/* Waits (at most 2 s, the bound) for an agreed leader; returns its
 * index in c->nodes and the time it took in *ms. */
static int wait_leader(cluster *c, int64_t *ms)
{
    int32_t leader = -1;
    int64_t t0 = now_ms();
    assert_true(run_until(c, leader_agreed, &leader, 2000));
    if (ms != NULL)
        *ms = now_ms() - t0;
    return leader - 1;
}

/* ---- proposing -------------------------------------------------------------- */

typedef struct outcome {
    bool done;
    int status, result;
} outcome;

typedef struct batch {
    outcome *o;
    int n, done;
} batch;

typedef struct slot {
    batch *b;
    int i;
} slot;

static void on_done(void *arg, int status, int result)
{
    slot *s = arg;
    outcome *o = &s->b->o[s->i];
    assert_false(o->done); /* exactly once */
    o->done = true;
    o->status = status;
    o->result = result;
    s->b->done++;
}

static bool batch_done(cluster *c, void *arg)
{
    (void)c;
    batch *b = arg;
    return b->done == b->n;
}

/* Proposes values first..first+n-1 on node i, all at once. */
static void propose_values(cluster *c, int i, uint64_t first, int n, batch *b, slot *slots)
{
    b->o = calloc((size_t)n, sizeof *b->o);
    assert_non_null(b->o);
    b->n = n;
    b->done = 0;
    for (int k = 0; k < n; k++) {
        uint8_t cmd[8];
        stream_store_be64(cmd, first + (uint64_t)k);
        slots[k] = (slot){b, k};
        int rc = stream__quorum_propose(c->nodes[i].q, cmd, sizeof cmd, on_done, &slots[k]);
        if (rc != 0)
            fail_msg("propose %d on node %d: %s", k, (int)c->nodes[i].id, stream_err_name(rc));
    }
}

/* Proposes n values on the leader and waits until all are answered with
 * status 0 and the right verdict. */
static void propose_and_wait(cluster *c, int leader, uint64_t first, int n)
{
    batch b;
    slot *slots = calloc((size_t)n, sizeof *slots);
    assert_non_null(slots);
    propose_values(c, leader, first, n, &b, slots);
    assert_true(run_until(c, batch_done, &b, 30000));
    for (int k = 0; k < n; k++) {
        assert_int_equal(b.o[k].status, 0);
        assert_int_equal(b.o[k].result, verdict(first + (uint64_t)k));
    }
    free(b.o);
    free(slots);
}

typedef struct want_applied {
    size_t n;
} want_applied;

static bool all_applied(cluster *c, void *arg)
{
    want_applied *w = arg;
    for (int i = 0; i < NODES; i++)
        if (c->nodes[i].q != NULL && c->nodes[i].fsm.n < w->n)
            return false;
    return true;
}

/* Every running node applied the same (index, value, result) sequence. */
static void assert_same_everywhere(cluster *c, size_t n)
{
    want_applied w = {n};
    assert_true(run_until(c, all_applied, &w, 20000));
    const tfsm *ref = NULL;
    for (int i = 0; i < NODES; i++) {
        const tfsm *f = &c->nodes[i].fsm;
        if (c->nodes[i].q == NULL)
            continue;
        assert_int_equal(f->n, n);
        if (ref == NULL)
            ref = f;
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(f->v[k].index, ref->v[k].index);
            assert_int_equal(f->v[k].value, ref->v[k].value);
            assert_int_equal(f->v[k].result, ref->v[k].result);
            assert_int_equal(f->v[k].result, verdict(f->v[k].value));
        }
    }
}

/* ---- tests ------------------------------------------------------------------ */

static void expect_voters_error(const char *s, const char *needle)
{
    stream__quorum_voter v[STREAM__QUORUM_MAX_VOTERS];
    size_t n = 99;
    char err[256] = "";
    int rc = stream__quorum_voters_parse(s, v, 3, &n, err, sizeof err);
    if (rc != STREAM_EINVAL || n != 0 || strstr(err, needle) == NULL)
        fail_msg("'%s': want EINVAL with '%s', got %s: '%s'", s, needle, stream_err_name(rc), err);
}

static void test_voters_parse_accepts_the_design_syntax(void **state)
{
    (void)state;
    stream__quorum_voter v[STREAM__QUORUM_MAX_VOTERS];
    size_t n = 0;
    char err[256];
    assert_int_equal(
        stream__quorum_voters_parse(" 1@127.0.0.1:9301, 2@127.0.0.1:9302,,3@10.0.0.3:1 ,", v,
                                   STREAM__QUORUM_MAX_VOTERS, &n, err, sizeof err),
        0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].id, 1);
    assert_string_equal(v[0].host, "127.0.0.1");
    assert_int_equal(v[0].port, 9301);
    assert_int_equal(v[2].id, 3);
    assert_string_equal(v[2].host, "10.0.0.3");
    assert_int_equal(v[2].port, 1);
    assert_int_equal(
        stream__quorum_voters_parse("2147483647@255.255.255.255:65535", v, 1, &n, err, sizeof err),
        0);
    assert_int_equal(v[0].id, 2147483647);
}

static void test_voters_parse_refuses_bad_lists_clearly(void **state)
{
    (void)state;
    expect_voters_error("127.0.0.1:9301", "no '@'");
    expect_voters_error("1@127.0.0.1:9301,127.0.0.1:9302", "'127.0.0.1:9302'");
    expect_voters_error("0@127.0.0.1:9301", "node id before '@' must be a number from 1");
    expect_voters_error("x@127.0.0.1:9301", "node id");
    expect_voters_error("2147483648@127.0.0.1:9301", "node id");
    expect_voters_error("@127.0.0.1:9301", "node id");
    expect_voters_error("1@127.0.0.1:9301,1@127.0.0.1:9302", "node id 1 appears twice");
    expect_voters_error("1@127.0.0.1:9301,2@127.0.0.1:9301", "also voter 1's");
    expect_voters_error("1@127.0.0.1", "port is missing");
    expect_voters_error("1@127.0.0.1:", "port must be a number from 1 to 65535");
    expect_voters_error("1@127.0.0.1:0", "port must be");
    expect_voters_error("1@127.0.0.1:65536", "port must be");
    expect_voters_error("1@127.0.0.1:93o1", "port must be");
    expect_voters_error("1@localhost:9301", "use an IPv4 address");
    expect_voters_error("1@[::1]:9301", "use an IPv4 address");
    expect_voters_error("1@127.0.0.256:9301", "not an IPv4 address");
    expect_voters_error("1@127.1:9301", "not an IPv4 address");
    expect_voters_error("1@:9301", "use an IPv4 address");
    expect_voters_error("1@1.1.1.1:1,2@1.1.1.1:2,3@1.1.1.1:3,4@1.1.1.1:4", "more than 3 voters");
    expect_voters_error("", "no voter");
    expect_voters_error(" , ", "no voter");
}

static void test_bad_config_is_refused_before_anything_starts(void **state)
{
    cluster *c = *state;
    char err[256] = "";
    c->cfg.n_voters = 1;
    c->cfg.voters[0] = (stream__quorum_voter){1, "127.0.0.1", free_port()};
    stream__quorum_config cfg = c->cfg;
    cfg.node_id = 2;
    cfg.data_dir = c->nodes[0].dir;
    cfg.cluster_id = "c1";
    stream__quorum_fsm fsm = {&c->nodes[0].fsm, tfsm_apply, tfsm_snapshot, tfsm_restore};
    stream__quorum *q = NULL;
    assert_int_equal(stream__quorum_start(&c->loop, &cfg, &fsm, &q, err, sizeof err),
                     STREAM_EBADCONFIG);
    assert_null(q);
    assert_non_null(strstr(err, "node id 2 is not one of the voters"));
    cfg.node_id = 1;
    cfg.heartbeat_ms = cfg.election_timeout_ms;
    assert_int_equal(stream__quorum_start(&c->loop, &cfg, &fsm, &q, err, sizeof err),
                     STREAM_EBADCONFIG);
    assert_non_null(strstr(err, "election timeout"));
    cfg.heartbeat_ms = 50;
    cfg.cluster_id = "no spaces";
    assert_int_equal(stream__quorum_start(&c->loop, &cfg, &fsm, &q, err, sizeof err),
                     STREAM_EBADCONFIG);
    assert_non_null(strstr(err, "cluster id"));
    /* Nothing was created for a refused config. */
    struct stat st;
    assert_int_equal(stat(c->nodes[0].dir, &st), -1);
}

static void test_leader_elected_within_two_seconds(void **state)
{
    cluster *c = *state;
    int64_t t0 = now_ms(), ms;
    start_cluster(c);
    int leader = wait_leader(c, &ms);
    print_message("# leader elected (node %d) %lld ms after the start of the first voter\n",
                  (int)c->nodes[leader].id, (long long)(now_ms() - t0));
    assert_true(now_ms() - t0 < 2000);
    run_for(c, 3 * (int)c->cfg.poll_ms); /* reports come from the next polls */
    for (int i = 0; i < NODES; i++)
        assert_true(c->nodes[i].changes >= 1); /* each reported the leader it found */
}

static void test_thousand_proposals_apply_in_the_same_order_everywhere(void **state)
{
    cluster *c = *state;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    int64_t t0 = now_ms();
    /* Ten waves of 100 in flight at once: ordering across pipelined
     * proposals is what is checked. */
    for (int wave = 0; wave < 10; wave++)
        propose_and_wait(c, leader, 1000 + (uint64_t)wave * 100, 100);
    assert_same_everywhere(c, 1000);
    print_message("# 1000 proposals applied on all three voters in %lld ms\n",
                  (long long)(now_ms() - t0));
    /* Proposal order is log order. */
    for (size_t k = 0; k < 1000; k++)
        assert_int_equal(c->nodes[leader].fsm.v[k].value, 1000 + k);
    assert_true(stream__quorum_applied_index(c->nodes[leader].q) >= 1000);
}

static void test_propose_on_a_follower_is_enotleader_naming_the_leader(void **state)
{
    cluster *c = *state;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    int follower = (leader + 1) % NODES;
    uint8_t cmd[8] = {0};
    assert_false(stream__quorum_is_leader(c->nodes[follower].q));
    assert_int_equal(stream__quorum_propose(c->nodes[follower].q, cmd, sizeof cmd, on_done, NULL),
                     STREAM_ENOTLEADER);
    assert_int_equal(stream__quorum_leader(c->nodes[follower].q), c->nodes[leader].id);
    assert_int_equal(stream__quorum_node_id(c->nodes[follower].q), c->nodes[follower].id);
    assert_true(stream__quorum_term(c->nodes[follower].q) >= 1);
    /* Argument errors, on the leader. */
    assert_int_equal(stream__quorum_propose(c->nodes[leader].q, cmd, 0, on_done, NULL),
                     STREAM_EINVAL);
    assert_int_equal(stream__quorum_propose(c->nodes[leader].q, cmd, sizeof cmd, NULL, NULL),
                     STREAM_EINVAL);
    assert_int_equal(stream__quorum_propose(c->nodes[leader].q, cmd,
                                           STREAM__QUORUM_MAX_COMMAND_BYTES + 1, on_done, NULL),
                     STREAM_ETOOLARGE);
}

static void test_leader_stop_fails_pending_proposals_with_eclosed(void **state)
{
    cluster *c = *state;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    batch b;
    slot slots[50];
    propose_values(c, leader, 1, 50, &b, slots);
    stream__quorum_stop(c->nodes[leader].q, on_stopped, c);
    c->nodes[leader].q = NULL;
    /* Answered before stop returned, every one, with an error. */
    assert_int_equal(b.done, 50);
    for (int k = 0; k < 50; k++)
        assert_int_equal(b.o[k].status, STREAM_ECLOSED);
    int want = 1;
    assert_true(run_until(c, all_stopped, &want, 10000));
    free(b.o);
}

static void test_pending_proposals_fail_when_the_leader_loses_its_quorum(void **state)
{
    cluster *c = *state;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    for (int i = 0; i < NODES; i++)
        if (i != leader)
            stop_node(c, i);
    batch b;
    slot slots[20];
    propose_values(c, leader, 1, 20, &b, slots);
    /* Alone, the leader steps down after an election timeout; its proposals
     * cannot commit and must be answered, not forgotten. */
    assert_true(run_until(c, batch_done, &b, 5000));
    for (int k = 0; k < 20; k++)
        assert_int_equal(b.o[k].status, STREAM_ENOTLEADER);
    assert_false(stream__quorum_is_leader(c->nodes[leader].q));
    free(b.o);
}

static void test_failover_then_the_old_leader_catches_up_through_a_snapshot(void **state)
{
    cluster *c = *state;
    c->cfg.snapshot_threshold = 64;
    c->cfg.snapshot_trailing = 32;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    propose_and_wait(c, leader, 1, 100);
    assert_same_everywhere(c, 100);

    int old = leader;
    stop_node(c, old);
    int64_t ms;
    leader = wait_leader(c, &ms);
    assert_true(leader != old);
    print_message("# new leader (node %d) %lld ms after the leader (node %d) stopped\n",
                  (int)c->nodes[leader].id, (long long)ms, (int)c->nodes[old].id);
    for (int wave = 0; wave < 4; wave++)
        propose_and_wait(c, leader, 1000 + (uint64_t)wave * 100, 100);
    assert_same_everywhere(c, 500);

    /* 400 entries later, with snapshots every 64 keeping 32, the old leader's
     * log ends long before the leader's first: only a snapshot helps. */
    int64_t t0 = now_ms();
    start_node(c, old);
    int restores_at_start = c->nodes[old].fsm.restores;
    assert_same_everywhere(c, 500);
    print_message("# restarted node %d caught up in %lld ms (%d restores at start, %d after)\n",
                  (int)c->nodes[old].id, (long long)(now_ms() - t0), restores_at_start,
                  c->nodes[old].fsm.restores);
    assert_true(c->nodes[old].fsm.restores > restores_at_start);

    /* And it keeps up with what comes next. */
    propose_and_wait(c, leader, 5000, 50);
    assert_same_everywhere(c, 550);
}

/* libraft 0.15 reads a batch of entries back assuming each is padded to 8
 * bytes; quorum.c frames commands so that any length survives a restart. */
static void test_commands_of_any_length_survive_a_restart_of_every_voter(void **state)
{
    cluster *c = *state;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    enum { N = 60 };
    batch b = {0};
    slot slots[N];
    b.o = calloc(N, sizeof *b.o);
    assert_non_null(b.o);
    b.n = N;
    for (int k = 0; k < N; k++) { /* all at once: libraft writes them in batches */
        uint8_t cmd[8 + 15];
        size_t len = 8 + (size_t)(k % 16);
        stream_store_be64(cmd, 100 + (uint64_t)k);
        memset(cmd + 8, (int)len, len - 8);
        slots[k] = (slot){&b, k};
        assert_int_equal(stream__quorum_propose(c->nodes[leader].q, cmd, len, on_done, &slots[k]),
                         0);
    }
    assert_true(run_until(c, batch_done, &b, 30000));
    for (int k = 0; k < N; k++)
        assert_int_equal(b.o[k].status, 0);
    free(b.o);
    assert_same_everywhere(c, N);
    for (int i = 0; i < NODES; i++)
        stop_node(c, i);
    for (int i = 0; i < NODES; i++)
        start_node(c, i); /* fresh state machines: rebuilt from the logs */
    wait_leader(c, NULL);
    assert_same_everywhere(c, N);
    for (int k = 0; k < N; k++)
        assert_int_equal(c->nodes[0].fsm.v[k].value, 100 + (uint64_t)k);
}

static void test_a_directory_of_another_cluster_is_refused(void **state)
{
    cluster *c = *state;
    char err[512] = "";
    c->cfg.n_voters = 1;
    c->cfg.voters[0] = (stream__quorum_voter){1, "127.0.0.1", free_port()};
    assert_int_equal(try_start_node(c, 0, "alpha", err, sizeof err), 0);
    int32_t leader = -1;
    assert_true(run_until(c, leader_agreed, &leader, 3000)); /* a quorum of one */
    stop_node(c, 0);

    int rc = try_start_node(c, 0, "beta", err, sizeof err);
    assert_int_equal(rc, STREAM_EBADCONFIG);
    assert_null(c->nodes[0].q);
    assert_non_null(strstr(err, "'alpha'"));
    assert_non_null(strstr(err, "'beta'"));

    /* Files without a cluster id: whose are they? */
    char path[256];
    snprintf(path, sizeof path, "%s/cluster-id", c->nodes[0].dir);
    assert_int_equal(unlink(path), 0);
    rc = try_start_node(c, 0, "alpha", err, sizeof err);
    assert_int_equal(rc, STREAM_EBADCONFIG);
    assert_non_null(strstr(err, "holds files but no cluster-id"));

    /* A damaged cluster-id file. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("al pha\n", f);
    fclose(f);
    rc = try_start_node(c, 0, "alpha", err, sizeof err);
    assert_int_equal(rc, STREAM_ECORRUPT);
    assert_non_null(strstr(err, "damaged"));

    /* The right id again: it starts, with its state. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("alpha\n", f);
    fclose(f);
    assert_int_equal(try_start_node(c, 0, "alpha", err, sizeof err), 0);
}

static void test_an_address_in_use_is_reported(void **state)
{
    cluster *c = *state;
    char err[512] = "";
    uint16_t port = free_port();
    c->cfg.n_voters = 1;
    c->cfg.voters[0] = (stream__quorum_voter){1, "127.0.0.1", port};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(try_start_node(c, 0, "c1", err, sizeof err), STREAM_EIO);
    assert_non_null(strstr(err, "already in use"));
    close(fd);
    assert_int_equal(try_start_node(c, 0, "c1", err, sizeof err), 0);
}

/* Proposes cmd on node i and waits for its outcome; returns the status and
 * puts the verdict in *result. */
static int propose_wait(cluster *c, int i, const stream_buf *cmd, int *result)
{
    batch b = {calloc(1, sizeof(outcome)), 1, 0};
    slot s = {&b, 0};
    assert_non_null(b.o);
    int rc = stream__quorum_propose(c->nodes[i].q, cmd->data, cmd->len, on_done, &s);
    if (rc == 0) {
        assert_true(run_until(c, batch_done, &b, 10000));
        rc = b.o[0].status;
        *result = b.o[0].result;
    }
    free(b.o);
    return rc;
}

/* Every running node's state machine applied as far as the leader's. */
static bool metadata_converged(cluster *c, void *arg)
{
    int leader = *(int *)arg;
    uint64_t want = stream__meta_applied_index(c->nodes[leader].md);
    for (int i = 0; i < NODES; i++)
        if (c->nodes[i].q != NULL && stream__meta_applied_index(c->nodes[i].md) != want)
            return false;
    return true;
}

static void test_metadata_state_machine_on_three_voters(void **state)
{
    cluster *c = *state;
    c->use_metadata = true;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    stream_buf cmd = STREAM_BUF_INIT;
    stream__meta_req req = {c->nodes[leader].id, 1000};
    int result = -1;

    for (int32_t b = 1; b <= 3; b++) {
        stream_buf_reset(&cmd);
        req.seq++;
        assert_int_equal(
            stream__meta_encode_register_broker(&cmd, req, b, "127.0.0.1", (uint16_t)(9000 + b)),
            0);
        assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
        assert_int_equal(result, 0);
        const stream__meta_broker *br = stream__meta_broker_find(c->nodes[leader].md, b);
        stream_buf_reset(&cmd);
        req.seq++;
        assert_int_equal(stream__meta_encode_unfence_broker(&cmd, req, b, br->epoch), 0);
        assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
        assert_int_equal(result, 0);
    }
    static const int32_t replicas[] = {1, 2, 3, 2, 3, 1, 3, 1, 2};
    uint8_t id[16] = {7};
    stream_buf_reset(&cmd);
    req.seq++;
    assert_int_equal(
        stream__meta_encode_create_topic(&cmd, req, "orders", id, 3, 3, replicas, NULL, 0), 0);
    assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
    assert_int_equal(result, 0);
    /* A verdict travels back to the proposer. */
    assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
    assert_int_equal(result, 0); /* the same request: its recorded verdict */
    stream_buf_reset(&cmd);
    req.seq++;
    id[0] = 8;
    assert_int_equal(
        stream__meta_encode_create_topic(&cmd, req, "orders", id, 3, 3, replicas, NULL, 0), 0);
    assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
    assert_int_equal(result, STREAM_ETOPICEXISTS);

    /* The leader stops with a create in flight; the requester retries the
     * same request on the new leader; the topic exists once, whichever
     * leader's copy of the command was committed. */
    stream_buf_reset(&cmd);
    req.seq++;
    id[0] = 9;
    assert_int_equal(
        stream__meta_encode_create_topic(&cmd, req, "audit", id, 1, 3, replicas, NULL, 0), 0);
    batch b = {calloc(1, sizeof(outcome)), 1, 0};
    slot s = {&b, 0};
    assert_int_equal(stream__quorum_propose(c->nodes[leader].q, cmd.data, cmd.len, on_done, &s), 0);
    stop_node(c, leader);
    assert_int_equal(b.o[0].status, STREAM_ECLOSED);
    free(b.o);
    leader = wait_leader(c, NULL);
    assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
    assert_int_equal(result, 0);
    assert_int_equal(propose_wait(c, leader, &cmd, &result), 0);
    assert_int_equal(result, 0);
    assert_int_equal(stream__meta_topic_count(c->nodes[leader].md), 2);

    /* The survivors hold the same state, byte for byte. */
    assert_true(run_until(c, metadata_converged, &leader, 5000));
    stream_buf s1 = STREAM_BUF_INIT, s2 = STREAM_BUF_INIT;
    for (int i = 0; i < NODES; i++) {
        if (c->nodes[i].q == NULL)
            continue;
        stream_buf_reset(&s2);
        assert_int_equal(stream__meta_snapshot(c->nodes[i].md, &s2), 0);
        if (s1.len == 0) {
            assert_int_equal(stream__meta_snapshot(c->nodes[i].md, &s1), 0);
            continue;
        }
        assert_int_equal(s1.len, s2.len);
        assert_memory_equal(s1.data, s2.data, s1.len);
    }
    stream_buf_release(&s1);
    stream_buf_release(&s2);
    stream_buf_release(&cmd);
}


/* ---- who leads ---------------------------------------------------------------- */

static void test_who_line_round_trips_and_bad_lines_are_refused(void **state)
{
    (void)state;
    stream__quorum_who w = {.node_id = 2, .port = 9092, .leader_id = 3, .leader_port = 9093};
    strcpy(w.host, "127.0.0.1");
    strcpy(w.leader_host, "broker-3.example");
    char line[STREAM__QUORUM_WHO_MAX], err[256];
    int n = stream__quorum_who_format(&w, line, sizeof line);
    assert_true(n > 0);
    assert_string_equal(line, "STRMWHO1 2 127.0.0.1:9092 3 broker-3.example:9093\n");
    stream__quorum_who got;
    assert_int_equal(stream__quorum_who_parse((const uint8_t *)line, (size_t)n, &got, err, sizeof err), 0);
    assert_int_equal(got.node_id, 2);
    assert_int_equal(got.leader_id, 3);
    assert_string_equal(got.leader_host, "broker-3.example");
    assert_int_equal(got.leader_port, 9093);
    /* No leader known, or its address not known. */
    w.leader_id = -1;
    n = stream__quorum_who_format(&w, line, sizeof line);
    assert_string_equal(line, "STRMWHO1 2 127.0.0.1:9092 -1 -\n");
    assert_int_equal(stream__quorum_who_parse((const uint8_t *)line, (size_t)n, &got, err, sizeof err), 0);
    assert_int_equal(got.leader_id, -1);
    assert_int_equal(got.leader_port, 0);
    static const char *bad[] = {
        "",
        "STRMWHO1",
        "STRMWHO2 2 127.0.0.1:9092 -1 -",
        "STRMWHO1 0 127.0.0.1:9092 -1 -",
        "STRMWHO1 2 127.0.0.1 -1 -",
        "STRMWHO1 2 127.0.0.1:0 -1 -",
        "STRMWHO1 2 127.0.0.1:65536 -1 -",
        "STRMWHO1 2 :9092 -1 -",
        "STRMWHO1 2 127.0.0.1:9092 x -",
        "STRMWHO1 2 127.0.0.1:9092 -1 h:1",
        "STRMWHO1 2 127.0.0.1:9092 3 h:",
        "STRMWHO1 2 127.0.0.1:9092 3 - extra",
        "STRMWHO1 2 127.0.0.1:9092 3 -\nSTRMWHO1 2 127.0.0.1:9092 3 -",
        "STRMWHO1 99999999999 127.0.0.1:9092 -1 -",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = stream__quorum_who_parse((const uint8_t *)bad[i], strlen(bad[i]), &got, err,
                                          sizeof err);
        if (rc != STREAM_EBADREQ || strstr(err, "who-leads answer") == NULL)
            fail_msg("'%s': want EBADREQ, got %s: '%s'", bad[i], stream_err_name(rc), err);
    }
    /* A NUL inside, and one byte over the limit. */
    assert_int_equal(stream__quorum_who_parse((const uint8_t *)"STRMWHO1\0 2", 11, &got, err, sizeof err),
                     STREAM_EBADREQ);
    uint8_t big[STREAM__QUORUM_WHO_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_int_equal(stream__quorum_who_parse(big, sizeof big, &got, err, sizeof err), STREAM_EBADREQ);
    /* A host with a blank cannot be formatted. */
    strcpy(w.host, "a b");
    assert_int_equal(stream__quorum_who_format(&w, line, sizeof line), STREAM_EINVAL);
}

static void who_fill(void *arg, stream__quorum_who *who)
{
    (void)arg;
    strcpy(who->host, "127.0.0.1");
    who->port = (uint16_t)(10000 + who->node_id);
    if (who->leader_id > 0) {
        strcpy(who->leader_host, "127.0.0.1");
        who->leader_port = (uint16_t)(10000 + who->leader_id);
    }
}

typedef struct asked {
    bool done;
    int status;
    stream__quorum_who who;
} asked;

static void on_asked(void *arg, int status, const stream__quorum_who *who, const char *msg)
{
    asked *a = arg;
    a->done = true;
    a->status = status;
    if (who != NULL)
        a->who = *who;
    (void)msg;
}

static bool ask_done(cluster *c, void *arg)
{
    (void)c;
    return ((asked *)arg)->done;
}

static void test_a_voter_answers_who_leads_on_its_raft_port(void **state)
{
    cluster *c = *state;
    c->cfg.who = who_fill;
    start_cluster(c);
    int leader = wait_leader(c, NULL);
    for (int i = 0; i < NODES; i++) {
        asked a = {0};
        stream__quorum_ask *ask;
        assert_int_equal(stream__quorum_ask_who(&c->loop, &c->cfg.voters[i], 1000, on_asked, &a, &ask), 0);
        assert_true(run_until(c, ask_done, &a, 2000));
        assert_int_equal(a.status, 0);
        assert_int_equal(a.who.node_id, c->nodes[i].id);
        assert_int_equal(a.who.port, 10000 + c->nodes[i].id);
        assert_int_equal(a.who.leader_id, c->nodes[leader].id);
        assert_int_equal(a.who.leader_port, 10000 + c->nodes[leader].id);
    }
    /* Anything else on the Raft port is closed; Raft goes on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->cfg.voters[0].port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    run_for(c, 50);
    char b[8];
    assert_true(read(fd, b, sizeof b) <= 0); /* EOF, or a reset: the rest was never read */
    close(fd);
    /* A port nobody listens on: refused. */
    stream__quorum_voter none = {.id = 9, .host = "127.0.0.1", .port = free_port()};
    asked a = {0};
    stream__quorum_ask *ask;
    assert_int_equal(stream__quorum_ask_who(&c->loop, &none, 1000, on_asked, &a, &ask), 0);
    assert_true(run_until(c, ask_done, &a, 2000));
    assert_int_not_equal(a.status, 0);
    assert_int_equal(wait_leader(c, NULL), leader);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_voters_parse_accepts_the_design_syntax),
        T(test_voters_parse_refuses_bad_lists_clearly),
        T(test_bad_config_is_refused_before_anything_starts),
        T(test_leader_elected_within_two_seconds),
        T(test_thousand_proposals_apply_in_the_same_order_everywhere),
        T(test_propose_on_a_follower_is_enotleader_naming_the_leader),
        T(test_leader_stop_fails_pending_proposals_with_eclosed),
        T(test_pending_proposals_fail_when_the_leader_loses_its_quorum),
        T(test_failover_then_the_old_leader_catches_up_through_a_snapshot),
        T(test_commands_of_any_length_survive_a_restart_of_every_voter),
        T(test_a_directory_of_another_cluster_is_refused),
        T(test_an_address_in_use_is_reported),
        T(test_metadata_state_machine_on_three_voters),
        T(test_who_line_round_trips_and_bad_lines_are_refused),
        T(test_a_voter_answers_who_leads_on_its_raft_port),
#undef T
    };
    /* libuv writes to sockets with write(2): a peer closing a connection
     * mid-write would kill the process. */
    signal(SIGPIPE, SIG_IGN);
    /* TEST_FILTER=test_name (a glob) runs one test alone. */
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
