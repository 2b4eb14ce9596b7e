/*
 * client.c - the client's connections to the brokers: connect, hello,
 * pipelined requests matched to in-order responses, timeouts, reconnect with
 * backoff; routing of requests to the broker node that must answer them; the
 * poll that drives every connection at once; the blocking calls.
 *
 * Connections. A client has one *bootstrap* connection, to one broker of the
 * list it was given (metadata, admin calls, consumer groups and everything
 * not tied to a partition go there), and, in a cluster, one *node*
 * connection per other broker it has to reach (a partition's leader), made
 * on demand from the addresses the metadata lists. The bootstrap connection
 * learns from hello which node it reached; requests for that node use it,
 * so on a single broker there is exactly one connection, as before
 * clusters. Every connection is the same state machine, driven by
 * stream_client_poll (one poll(2) over all their sockets):
 *
 *   IDLE --(requests waiting, backoff over)--> CONNECTING (non-blocking
 *   connect to one address of one broker) --> HELLO (hello sent, nothing
 *   else) --> READY (requests flow) --(error, EOF, overdue response)--> IDLE
 *
 * A connect "round" tries every broker of the connection's list once (the
 * bootstrap list plus, in a cluster, the brokers the metadata named; a node
 * connection's list is its one node), starting with the last one that
 * worked. When a whole round fails, every request waiting on that
 * connection fails with that error (so blocking calls return and the
 * producer retries, refreshing metadata) and the next round waits for the
 * backoff, which doubles per failed round.
 *
 * Routing (stream__req_send_node): a node connection for the node if one
 * exists, else the bootstrap connection if hello named that node (it keeps
 * the name while it reconnects: with one broker, requests wait for it as
 * they always did), else a new node connection to the node's address from
 * the last metadata; a node no metadata named goes to the bootstrap
 * connection (a broker that does not lead a partition says ENOTLEADER, and
 * the caller refreshes metadata and tries again).
 *
 * Requests live on two FIFO lists per connection: `wait` (not yet on the
 * wire) and `flight` (being written or written, response expected).
 * Responses arrive in request order, so each must match the head of
 * `flight`; anything else is a protocol error that closes the connection. A
 * request without a response (acks=0 produce) completes when its last byte
 * is written.
 *
 * Input: frames are read into one buffer per connection (`in`). A frame
 * larger than LARGE_FRAME (a fetch response) gets a buffer sized to it,
 * starting with its length prefix, and is read up to its last byte and no
 * further, so that when it is handled nothing else is in that buffer: the
 * callback may take the buffer (stream__resp_take) and keep the records
 * where they were received, instead of copying them, and give it back when
 * done (stream__client_give_back), to be read into again. Buffers given back
 * are kept (SPARES of them, for all connections) so a steady stream of large
 * responses reuses the same memory instead of faulting fresh pages in for
 * every one.
 *
 * One connection's state machine (connect, hello, write, read, time out)
 * lives in client_conn.c, the metadata cache and the metadata calls in
 * client_metadata.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_conn.h"
#include "stream/error.h"

/* ---- small helpers ------------------------------------------------------- */

int64_t stream__client_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t stream__client_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- configuration ------------------------------------------------------- */

void stream_client_conf_init(stream_client_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->brokers = STREAM_DEFAULT_BROKERS;
    conf->client_name = "libstream";
    conf->connect_timeout_ms = 5000;
    conf->request_timeout_ms = 30000;
    conf->max_in_flight = 16;
    conf->reconnect_backoff_ms = 50;
    conf->reconnect_backoff_max_ms = 2000;
    conf->max_frame_bytes = 128u << 20;
    conf->metadata_max_age_ms = 300000;
}

static int conf_check(const stream_client_conf *f, char *errbuf, size_t errbuf_len)
{
#define RANGE(field, lo, hi)                                                                       \
    if (f->field < (lo) || f->field > (hi)) {                                                      \
        stream__errf(errbuf, errbuf_len, "client setting %s must be in [%lld, %lld], got %lld",    \
                     #field, (long long)(lo), (long long)(hi), (long long)f->field);               \
        return STREAM_EINVAL;                                                                      \
    }
    RANGE(connect_timeout_ms, 1, 3600000);
    RANGE(request_timeout_ms, 1, 86400000);
    RANGE(max_in_flight, 1, 1024);
    RANGE(reconnect_backoff_ms, 0, 3600000);
    RANGE(reconnect_backoff_max_ms, f->reconnect_backoff_ms, 3600000);
    RANGE(max_frame_bytes, 1024, UINT32_MAX);
    RANGE(metadata_max_age_ms, 0, INT32_MAX);
#undef RANGE
    if (!f->client_name) {
        stream__errf(errbuf, errbuf_len, "client setting client_name must not be NULL");
        return STREAM_EINVAL;
    }
    return 0;
}

int stream_client_new(const stream_client_conf *conf, stream_client **out, char *errbuf,
                      size_t errbuf_len)
{
    stream_client_conf dflt;
    *out = NULL;
    if (!conf) {
        stream_client_conf_init(&dflt);
        conf = &dflt;
    }
    int rc = conf_check(conf, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_client *c = calloc(1, sizeof *c);
    if (!c)
        return STREAM_ENOMEM;
    c->conf = *conf;
    c->next_id = 1;
    stream_msg_init(&c->msg);
    rc = stream_parse_hostport_list(conf->brokers ? conf->brokers : STREAM_DEFAULT_BROKERS,
                                    STREAM_DEFAULT_PORT, &c->brokers, &c->broker_count, errbuf,
                                    errbuf_len);
    if (rc < 0) {
        stream_client_free(c);
        return rc;
    }
    c->brokers_given = c->broker_count;
    if (conf->tls || conf->tls_ca_file != NULL || conf->tls_cert_file != NULL) {
        stream_tls_conf tc = {.cert_file = conf->tls_cert_file,
                              .key_file = conf->tls_key_file,
                              .ca_file = conf->tls_ca_file};
        rc = stream_tls_ctx_new(&tc, false, &c->tls_ctx, errbuf, errbuf_len);
        if (rc < 0) {
            stream_client_free(c);
            return rc;
        }
    }
    c->conf.tls_ca_file = c->conf.tls_cert_file = c->conf.tls_key_file = NULL; /* read */
    c->client_name = strdup(conf->client_name);
    if (!c->client_name || !stream__conn_add(c, true, -1, NULL)) {
        stream_client_free(c);
        return STREAM_ENOMEM;
    }
    c->conf.brokers = NULL; /* not kept: the parsed list is */
    c->conf.client_name = c->client_name;
    *out = c;
    return 0;
}

void stream_client_free(stream_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nconns; i++)
        stream__conn_free(c->conns[i]);
    free(c->conns);
    free(c->nodes);
    free(c->pfds);
    free(c->pconns);
    stream__creq_free(c->building);
    stream_buf_release(&c->sink);
    for (int i = 0; i < SPARES; i++)
        free(c->spare[i]);
    stream_msg_release(&c->msg);
    stream__md_cache_release(&c->md);
    free(c->ticks);
    free(c->brokers);
    free(c->client_name);
    stream_tls_ctx_free(c->tls_ctx);
    free(c);
}

bool stream_client_connected(const stream_client *c)
{
    return BOOT(c)->state == ST_READY;
}

const char *stream_client_broker(const stream_client *c)
{
    return BOOT(c)->addr;
}

size_t stream_client_pending(const stream_client *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nconns; i++)
        n += c->conns[i]->wait.n + c->conns[i]->flight.n;
    return n;
}

int stream__client_request_timeout(const stream_client *c)
{
    return c->conf.request_timeout_ms;
}

int64_t stream__client_deadline(const stream_client *c, int timeout_ms)
{
    if (timeout_ms < 0)
        timeout_ms = c->conf.request_timeout_ms;
    return stream__client_mono_ms() + timeout_ms;
}

/* ---- routing ------------------------------------------------------------- */

static const node_addr *node_find(const stream_client *c, int32_t node_id)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].node_id == node_id)
            return &c->nodes[i];
    return NULL;
}

/* The connection requests for `node` go on (the top); NULL only without
 * memory for a new one. */
static conn *route(stream_client *c, int32_t node)
{
    if (node < 0)
        return BOOT(c);
    for (size_t i = 1; i < c->nconns; i++)
        if (c->conns[i]->node_id == node)
            return c->conns[i];
    if (BOOT(c)->node_id == node)
        return BOOT(c);
    const node_addr *na = node_find(c, node);
    if (!na)
        return BOOT(c);
    return stream__conn_add(c, false, node, &na->hp);
}

bool stream__client_node_on_bootstrap(stream_client *c, int32_t node)
{
    if (node < 0 || BOOT(c)->node_id == node)
        return true;
    for (size_t i = 1; i < c->nconns; i++)
        if (c->conns[i]->node_id == node)
            return false;
    return !node_find(c, node);
}

int stream__client_learn_node(stream_client *c, int32_t node, const char *host, int port)
{
    if (node < 0 || !host || port <= 0 || port > 65535 ||
        strlen(host) >= sizeof c->nodes[0].hp.host)
        return STREAM_EINVAL;
    if (node_find(c, node) != NULL)
        return 0; /* metadata knows it: its answer wins */
    node_addr *na = realloc(c->nodes, (c->nnodes + 1) * sizeof *na);
    if (!na)
        return STREAM_ENOMEM;
    c->nodes = na;
    na[c->nnodes].node_id = node;
    snprintf(na[c->nnodes].hp.host, sizeof na[c->nnodes].hp.host, "%s", host);
    na[c->nnodes].hp.port = (uint16_t)port;
    c->nnodes++;
    return 0;
}

bool stream__client_clustered(const stream_client *c)
{
    return c->nnodes > 1;
}

int32_t stream__client_bootstrap_node(const stream_client *c)
{
    return BOOT(c)->node_id;
}

static bool hostport_eq(const stream_hostport *a, const stream_hostport *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int stream__client_set_brokers(stream_client *c, const stream_broker_meta *brokers, size_t n)
{
    if (n == 0)
        return 0;
    node_addr *na = calloc(n, sizeof *na);
    if (!na)
        return STREAM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (brokers[i].node_id < 0 || !brokers[i].host || brokers[i].port <= 0 ||
            brokers[i].port > 65535 || strlen(brokers[i].host) >= sizeof na[k].hp.host)
            continue;
        na[k].node_id = brokers[i].node_id;
        snprintf(na[k].hp.host, sizeof na[k].hp.host, "%s", brokers[i].host);
        na[k].hp.port = (uint16_t)brokers[i].port;
        k++;
    }
    free(c->nodes);
    c->nodes = na;
    c->nnodes = k;
    /* A node that moved: its connection uses the new address from its next
     * connect on. */
    for (size_t i = 1; i < c->nconns; i++) {
        conn *cn = c->conns[i];
        const node_addr *a = node_find(c, cn->node_id);
        if (a && !hostport_eq(&a->hp, &cn->node_hp)) {
            cn->node_hp = a->hp;
            if (cn->state == ST_IDLE)
                stream__conn_set_broker(cn, 0);
        }
    }
    /* A cluster: its brokers join the bootstrap list, so that losing the
     * brokers the caller named still leaves one to ask for metadata. One
     * broker (a single node) adds nothing: its address may be another name
     * of one the caller gave. */
    if (k < 2)
        return 0;
    for (size_t i = 0; i < k; i++) {
        bool known = false;
        for (size_t j = 0; j < c->broker_count && !known; j++)
            known = hostport_eq(&c->brokers[j], &na[i].hp);
        if (known)
            continue;
        stream_hostport *nb = realloc(c->brokers, (c->broker_count + 1) * sizeof *nb);
        if (!nb)
            return STREAM_ENOMEM;
        c->brokers = nb;
        c->brokers[c->broker_count++] = na[i].hp;
    }
    return 0;
}

/* ---- building and queueing requests ------------------------------------- */

msgpack_packer *stream__req_begin(stream_client *c, stream_op op, size_t nfields)
{
    stream__creq_free(c->building);
    c->building = calloc(1, sizeof *c->building);
    if (!c->building) {
        /* Pack into a scratch buffer that is dropped; _send reports ENOMEM. */
        stream_buf_reset(&c->sink);
        c->sink.oom = true;
        stream_frame_start(&c->frame, &c->sink);
        return &c->frame.pk;
    }
    c->building->id = c->next_id++;
    stream_buf_init(&c->building->frame);
    stream_frame_start(&c->frame, &c->building->frame);
    stream_pack_request_header(&c->frame.pk, op, (uint64_t)c->building->id, nfields);
    return &c->frame.pk;
}

void stream__req_abort(stream_client *c)
{
    stream__creq_free(c->building);
    c->building = NULL;
}

int64_t stream__req_send_node(stream_client *c, int32_t node, stream__resp_cb cb, void *arg,
                              int extra_timeout_ms, int flags)
{
    creq *r = c->building;
    c->building = NULL;
    if (!r)
        return STREAM_ENOMEM;
    conn *k = route(c, node);
    int rc = k ? stream_frame_finish(&c->frame) : STREAM_ENOMEM;
    if (rc < 0) {
        stream__creq_free(r);
        return rc;
    }
    r->cb = cb;
    r->arg = arg;
    r->flags = flags;
    r->extra_timeout_ms = extra_timeout_ms > 0 ? extra_timeout_ms : 0;
    r->deadline_ms = stream__client_mono_ms() + c->conf.request_timeout_ms + r->extra_timeout_ms;
    stream__creq_push(&k->wait, r);
    return r->id;
}

int64_t stream__req_send(stream_client *c, stream__resp_cb cb, void *arg, int extra_timeout_ms,
                         int flags)
{
    return stream__req_send_node(c, -1, cb, arg, extra_timeout_ms, flags);
}

void stream__req_cancel(stream_client *c, int64_t id)
{
    for (size_t i = 0; i < c->nconns; i++) {
        creq *lists[2] = {c->conns[i]->wait.head, c->conns[i]->flight.head};
        for (int j = 0; j < 2; j++)
            for (creq *r = lists[j]; r; r = r->next)
                if (r->id == id) {
                    r->cb = NULL;
                    return;
                }
    }
}

/* ---- ticks --------------------------------------------------------------- */

int stream__client_add_tick(stream_client *c, stream__tick_fn fn, void *arg)
{
    if (c->nticks == c->ticks_cap) {
        size_t cap = c->ticks_cap ? c->ticks_cap * 2 : 4;
        tick *t = realloc(c->ticks, cap * sizeof *t);
        if (!t)
            return STREAM_ENOMEM;
        c->ticks = t;
        c->ticks_cap = cap;
    }
    c->ticks[c->nticks].fn = fn;
    c->ticks[c->nticks].arg = arg;
    c->nticks++;
    return 0;
}

void stream__client_remove_tick(stream_client *c, stream__tick_fn fn, void *arg)
{
    for (size_t i = 0; i < c->nticks; i++)
        if (c->ticks[i].fn == fn && c->ticks[i].arg == arg) {
            memmove(&c->ticks[i], &c->ticks[i + 1], (c->nticks - i - 1) * sizeof *c->ticks);
            c->nticks--;
            return;
        }
}

static int64_t run_ticks(stream_client *c, int64_t now)
{
    int64_t next = INT64_MAX;
    /* A tick may add or remove ticks (a producer freed in a callback is not
     * allowed, but be safe about the count changing). */
    for (size_t i = 0; i < c->nticks; i++) {
        int64_t t = c->ticks[i].fn(c->ticks[i].arg, now);
        if (t < next)
            next = t;
    }
    return next;
}

/* ---- the poll ------------------------------------------------------------ */

/* Everything that needs no waiting: ticks, then every connection (a tick or
 * a callback may add one: the count is read each time). Returns callbacks
 * run; *wake gets the earliest time something is due. */
static int drive(stream_client *c, int64_t *wake)
{
    int64_t now = stream__client_mono_ms();
    *wake = run_ticks(c, now);
    int ran = 0;
    for (size_t i = 0; i < c->nconns; i++)
        ran += stream__conn_drive(c->conns[i], now, wake);
    return ran;
}

/* Fills c->pfds with the sockets of every connection; returns how many, or
 * -1 without memory. */
static int poll_set(stream_client *c)
{
    if (c->pfds_cap < c->nconns) {
        size_t cap = c->nconns + 4;
        struct pollfd *p = realloc(c->pfds, cap * sizeof *p);
        if (p)
            c->pfds = p;
        conn **w = realloc(c->pconns, cap * sizeof *w);
        if (w)
            c->pconns = w;
        if (!p || !w)
            return -1;
        c->pfds_cap = cap;
    }
    int n = 0;
    for (size_t i = 0; i < c->nconns; i++) {
        conn *k = c->conns[i];
        if (k->fd < 0)
            continue;
        c->pfds[n].fd = k->fd;
        c->pfds[n].events = POLLIN;
        c->pfds[n].revents = 0;
        if (stream__conn_want_write(k))
            c->pfds[n].events |= POLLOUT;
        c->pconns[n++] = k;
    }
    return n;
}

int stream_client_poll(stream_client *c, int timeout_ms)
{
    int64_t wake;
    int ran = drive(c, &wake);
    int64_t now = stream__client_mono_ms();
    int64_t limit = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
    if (ran > 0)
        limit = now; /* report what happened before sleeping */
    if (wake < limit)
        limit = wake;
    int wait_ms;
    if (limit == INT64_MAX)
        wait_ms = -1;
    else if (limit <= now)
        wait_ms = 0;
    else
        wait_ms = limit - now > INT32_MAX ? INT32_MAX : (int)(limit - now);

    int nfds = poll_set(c);
    if (nfds < 0)
        return STREAM_ENOMEM;
    int n = poll(nfds ? c->pfds : NULL, (nfds_t)nfds, wait_ms);
    if (n < 0) {
        if (errno == EINTR)
            c->interrupted = true;
        return ran; /* poll itself failing (ENOMEM) is retried next call */
    }
    for (int i = 0; n > 0 && i < nfds; i++) {
        conn *k = c->pconns[i];
        short rev = c->pfds[i].revents;
        /* A callback of an earlier connection may have dropped this one. */
        if (!rev || k->fd != c->pfds[i].fd)
            continue;
        if (k->state == ST_CONNECTING) {
            if (rev & (POLLOUT | POLLERR | POLLHUP))
                ran += stream__conn_connect_done(k);
        } else if (rev & (POLLIN | POLLERR | POLLHUP)) {
            int r = stream__conn_read(k);
            ran += r >= 0 ? r : -1 - r;
        }
    }
    /* Callbacks may have queued requests (the next fetch, a retry): send
     * them now rather than on the next call. */
    ran += drive(c, &wake);
    return ran;
}

int stream__client_wait(stream_client *c, const bool *done, int64_t deadline_ms)
{
    while (!*done) {
        int64_t now = stream__client_mono_ms();
        if (now >= deadline_ms)
            return STREAM_ETIMEDOUT;
        int64_t left = deadline_ms - now;
        int rc = stream_client_poll(c, left > 1000 ? 1000 : (int)left);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int stream_client_connect(stream_client *c, int timeout_ms, char *errbuf, size_t errbuf_len)
{
    conn *k = BOOT(c);
    if (k->state == ST_READY)
        return 0;
    int64_t now = stream__client_mono_ms();
    int64_t deadline = INT64_MAX;
    if (timeout_ms >= 0)
        deadline = now + timeout_ms;
    unsigned rounds = k->rounds_failed;
    k->want_connect = true;
    if (k->state == ST_IDLE)
        k->next_attempt_ms = now; /* an explicit connect skips the backoff */
    while (k->state != ST_READY && k->rounds_failed == rounds) {
        now = stream__client_mono_ms();
        if (now >= deadline) {
            k->want_connect = false;
            stream__errf(errbuf, errbuf_len, "cannot connect to %s: timed out after %d ms", k->addr,
                         timeout_ms);
            return STREAM_ETIMEDOUT;
        }
        int64_t left = deadline - now;
        stream_client_poll(c, left > 1000 ? 1000 : (int)left);
    }
    if (k->state == ST_READY)
        return 0;
    stream__errf(errbuf, errbuf_len, "%s", k->last_msg);
    return k->last_err ? k->last_err : STREAM_ECONNREFUSED;
}

size_t stream__client_max_message_bytes(const stream_client *c)
{
    return BOOT(c)->max_message_bytes;
}

unsigned stream__client_connect_failures(const stream_client *c, int *err, const char **msg)
{
    const conn *k = BOOT(c);
    *err = k->last_err ? k->last_err : STREAM_ECONNREFUSED;
    *msg = k->last_msg;
    return k->rounds_failed;
}

bool stream__client_take_interrupted(stream_client *c)
{
    bool was = c->interrupted;
    c->interrupted = false;
    return was;
}

void stream__client_kick(stream_client *c)
{
    int64_t wake;
    drive(c, &wake);
}

/* ---- blocking calls ------------------------------------------------------ */

typedef struct sync_call {
    bool done;
    int err;
    stream__parse_fn parse;
    void *arg;
    char *errbuf;
    size_t errbuf_len;
} sync_call;

static void sync_cb(stream_client *c, const stream__resp *r, void *arg)
{
    sync_call *s = arg;
    s->done = true;
    s->err = r->err;
    if (r->err != 0) {
        stream__errf(s->errbuf, s->errbuf_len, "%s", r->msg[0] ? r->msg : stream_strerror(r->err));
        return;
    }
    if (s->parse) {
        s->err = s->parse(r->root, s->arg, s->errbuf, s->errbuf_len);
        if (s->err == STREAM_EBADREQ)
            s->err = STREAM_EPROTO; /* the broker sent something malformed */
    }
}

int stream__client_call(stream_client *c, int timeout_ms, stream__parse_fn parse, void *arg,
                        char *errbuf, size_t errbuf_len)
{
    return stream__client_call_node(c, STREAM__NODE_BOOTSTRAP, timeout_ms, parse, arg, errbuf,
                                    errbuf_len);
}

int stream__client_call_node(stream_client *c, int32_t node, int timeout_ms, stream__parse_fn parse,
                             void *arg, char *errbuf, size_t errbuf_len)
{
    sync_call s = {.parse = parse, .arg = arg, .errbuf = errbuf, .errbuf_len = errbuf_len};
    int64_t deadline = stream__client_deadline(c, timeout_ms);
    int64_t id = stream__req_send_node(c, node, sync_cb, &s, 0, 0);
    if (id < 0) {
        stream__errf(errbuf, errbuf_len, "cannot send request: %s", stream_strerror((int)id));
        return (int)id;
    }
    int rc = stream__client_wait(c, &s.done, deadline);
    if (rc < 0) {
        stream__req_cancel(c, id); /* s is about to go out of scope */
        if (rc == STREAM_ETIMEDOUT)
            stream__errf(errbuf, errbuf_len, "request to %s timed out after %d ms", BOOT(c)->addr,
                         timeout_ms < 0 ? c->conf.request_timeout_ms : timeout_ms);
        return rc;
    }
    return s.err;
}

stream__md_cache *stream__client_md(stream_client *c)
{
    return &c->md;
}

int stream__client_metadata_max_age(const stream_client *c)
{
    return c->conf.metadata_max_age_ms;
}
