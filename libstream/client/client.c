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
 * The metadata cache and the metadata calls live in client_metadata.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "stream/error.h"

/* Frames written per sendmsg call at most. */
#define MAX_IOV 64
/* Bytes read per read() call (small frames). */
#define READ_CHUNK (256 * 1024)
/* Frames (prefix included) over this get a buffer of their own. */
#define LARGE_FRAME (64 * 1024)
/* Buffers given back and kept for reuse. */
#define SPARES 2

typedef struct creq {
    struct creq *next;
    int64_t id;         /* correlation id (> 0), unique in the client */
    stream_buf frame;   /* length prefix + payload */
    size_t written;     /* bytes of frame already written */
    stream__resp_cb cb; /* NULL once cancelled */
    void *arg;
    int64_t deadline_ms;  /* monotonic; fails with ETIMEDOUT after this */
    int extra_timeout_ms; /* added to request_timeout_ms (long polls) */
    int flags;            /* STREAM__REQ_* */
} creq;

typedef struct creq_list {
    creq *head, *tail;
    size_t n;
} creq_list;

typedef struct tick {
    stream__tick_fn fn;
    void *arg;
} tick;

typedef enum conn_state {
    ST_IDLE = 0,   /* no socket */
    ST_CONNECTING, /* connect() in progress */
    ST_HELLO,      /* connected; hello in flight */
    ST_READY,      /* hello answered; requests flow */
} conn_state;

/* One connection (see the top). */
typedef struct conn {
    stream_client *c;         /* the client it belongs to */
    bool bootstrap;           /* the bootstrap connection (c->brokers), else a node's */
    int32_t node_id;          /* node connection: its node; bootstrap: the node hello
                                 named last (-1 before any) */
    stream_hostport node_hp;  /* node connection: the node's address */
    conn_state state;         /* see the top */
    int fd;                   /* -1 when IDLE */
    size_t bi;                /* broker being tried / connected (index in the list) */
    size_t round_tried;       /* brokers tried in the current round */
    struct addrinfo *ai_list; /* addresses of the broker being tried */
    struct addrinfo *ai_next; /* next address to try */
    int64_t connect_deadline; /* monotonic: connect + hello must finish by then */
    int64_t next_attempt_ms;  /* monotonic: no new round before this */
    int backoff_ms;           /* current reconnect backoff */
    bool want_connect;        /* connect even with no request waiting */
    size_t max_message_bytes; /* the broker's largest batch (hello); 0 unknown */
    unsigned rounds_failed;   /* counts failed rounds (stream_client_connect waits on it) */
    char addr[300];           /* "host:port" of the broker being tried / connected */
    int last_err;             /* last connect failure */
    char last_msg[512];       /* its message ("cannot connect to ...") */
    uint8_t *in;              /* input buffer (NULL after a take) */
    size_t in_cap;            /* its size */
    size_t in_start;          /* first byte not handled yet (a length prefix) */
    size_t in_len;            /* bytes read into it */
    bool in_takeable;         /* the frame being handled ends at in_len */
    creq_list wait;           /* queued, not on the wire */
    creq_list flight;         /* on the wire (or being written), in order */
    int64_t hello_id;         /* id of the hello in flight */
} conn;

/* A broker the last metadata named. */
typedef struct node_addr {
    int32_t node_id;
    stream_hostport hp;
} node_addr;

struct stream_client {
    /* configuration (strings copied) */
    stream_client_conf conf;
    char *client_name;
    stream_hostport *brokers; /* the bootstrap list: as given, then brokers the metadata
                                 of a cluster named */
    size_t broker_count;
    size_t brokers_given; /* how many of them the caller gave */

    /* connections */
    conn **conns; /* conns[0] is the bootstrap connection; node connections
                     follow, each allocated once (pointers stay valid) */
    size_t nconns, conns_cap;
    node_addr *nodes; /* brokers of the last metadata that named any */
    size_t nnodes;
    struct pollfd *pfds; /* poll's array, one per connection */
    conn **pconns;       /* the connection of each pfds entry */
    size_t pfds_cap;
    conn *reading;            /* the connection whose response is being handled */
    bool interrupted;         /* a poll() was interrupted by a signal */
    uint8_t *spare[SPARES];   /* buffers given back, for reuse */
    size_t spare_cap[SPARES]; /* their sizes (0: none) */
    stream_msg msg;           /* the response being handled */

    /* requests */
    creq *building;     /* between _req_begin and _send/_abort */
    stream_buf sink;    /* where a request goes when its allocation failed */
    stream_frame frame; /* the frame being built */
    int64_t next_id;    /* next correlation id */

    tick *ticks;
    size_t nticks, ticks_cap;

    stream__md_cache md; /* metadata cache (client_metadata.c) */
};

#define BOOT(c) ((c)->conns[0])

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

void stream__errf(char *errbuf, size_t errbuf_len, const char *fmt, ...)
{
    if (!errbuf || errbuf_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errbuf_len, fmt, ap);
    va_end(ap);
}

/* A message for a socket errno: our table's words where it has them
 * ("connection refused"), the system's otherwise. */
static const char *errno_text(int e, int *code)
{
    int err = stream_err_from_errno(e);
    if (code)
        *code = err;
    if (err != STREAM_EIO)
        return stream_strerror(err);
    switch (e) {
    case EHOSTUNREACH:
        return "no route to host";
    case ENETUNREACH:
        return "network is unreachable";
    case EADDRNOTAVAIL:
        return "address not available";
    default:
        return strerror(e);
    }
}

static void list_push(creq_list *l, creq *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static creq *list_pop(creq_list *l)
{
    creq *r = l->head;
    if (!r)
        return NULL;
    l->head = r->next;
    if (!l->head)
        l->tail = NULL;
    l->n--;
    r->next = NULL;
    return r;
}

/* Removes r, whose predecessor is prev (NULL for the head). */
static void list_unlink(creq_list *l, creq *prev, creq *r)
{
    if (prev)
        prev->next = r->next;
    else
        l->head = r->next;
    if (l->tail == r)
        l->tail = prev;
    l->n--;
    r->next = NULL;
}

static void creq_free(creq *r)
{
    if (!r)
        return;
    stream_buf_release(&r->frame);
    free(r);
}

/* Runs r's callback with a transport error (or a success with no response)
 * and frees r. */
static void creq_finish(stream_client *c, creq *r, int err, const char *msg)
{
    if (r->cb) {
        stream__resp resp = {.err = err, .msg = msg ? msg : ""};
        r->cb(c, &resp, r->arg);
    }
    creq_free(r);
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

/* The list of brokers k tries in a round. */
static const stream_hostport *conn_brokers(const conn *k, size_t *count)
{
    if (k->bootstrap) {
        *count = k->c->broker_count;
        return k->c->brokers;
    }
    *count = 1;
    return &k->node_hp;
}

static void set_broker(conn *k, size_t bi)
{
    size_t n;
    const stream_hostport *list = conn_brokers(k, &n);
    k->bi = bi < n ? bi : 0;
    stream_hostport_format(&list[k->bi], k->addr, sizeof k->addr);
}

/* A new connection in c->conns (the bootstrap one first); NULL without
 * memory. */
static conn *conn_add(stream_client *c, bool bootstrap, int32_t node_id, const stream_hostport *hp)
{
    if (c->nconns == c->conns_cap) {
        size_t cap = c->conns_cap ? c->conns_cap * 2 : 4;
        conn **nc = realloc(c->conns, cap * sizeof *nc);
        if (!nc)
            return NULL;
        c->conns = nc;
        c->conns_cap = cap;
    }
    conn *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->c = c;
    k->bootstrap = bootstrap;
    k->node_id = node_id;
    if (hp)
        k->node_hp = *hp;
    k->fd = -1;
    k->backoff_ms = c->conf.reconnect_backoff_ms;
    set_broker(k, 0);
    c->conns[c->nconns++] = k;
    return k;
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
    c->client_name = strdup(conf->client_name);
    if (!c->client_name || !conn_add(c, true, -1, NULL)) {
        stream_client_free(c);
        return STREAM_ENOMEM;
    }
    c->conf.brokers = NULL; /* not kept: the parsed list is */
    c->conf.client_name = c->client_name;
    *out = c;
    return 0;
}

static void close_socket(conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    if (k->ai_list)
        freeaddrinfo(k->ai_list);
    k->ai_list = k->ai_next = NULL;
    /* Bytes of a half-read frame belong to the dead connection. */
    k->in_start = k->in_len = 0;
}

static void conn_free(conn *k)
{
    close_socket(k);
    creq *r;
    while ((r = list_pop(&k->wait)))
        creq_free(r);
    while ((r = list_pop(&k->flight)))
        creq_free(r);
    free(k->in);
    free(k);
}

void stream_client_free(stream_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nconns; i++)
        conn_free(c->conns[i]);
    free(c->conns);
    free(c->nodes);
    free(c->pfds);
    free(c->pconns);
    creq_free(c->building);
    stream_buf_release(&c->sink);
    for (int i = 0; i < SPARES; i++)
        free(c->spare[i]);
    stream_msg_release(&c->msg);
    stream__md_cache_release(&c->md);
    free(c->ticks);
    free(c->brokers);
    free(c->client_name);
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
    return conn_add(c, false, node, &na->hp);
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
                set_broker(cn, 0);
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
    creq_free(c->building);
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
    creq_free(c->building);
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
        creq_free(r);
        return rc;
    }
    r->cb = cb;
    r->arg = arg;
    r->flags = flags;
    r->extra_timeout_ms = extra_timeout_ms > 0 ? extra_timeout_ms : 0;
    r->deadline_ms = stream__client_mono_ms() + c->conf.request_timeout_ms + r->extra_timeout_ms;
    list_push(&k->wait, r);
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

/* ---- connecting ---------------------------------------------------------- */

static int fail_all(conn *k, creq_list *l, int err, const char *msg)
{
    int n = 0;
    creq *r;
    while ((r = list_pop(l))) {
        creq_finish(k->c, r, err, msg);
        n++;
    }
    return n;
}

/* Drops the connection: requests in flight fail with err (the waiting ones
 * stay for the next connection). Returns the callbacks run. */
static int conn_lost(conn *k, int err, const char *why)
{
    char msg[600];
    if (k->state == ST_HELLO) /* the round's message names the broker already */
        snprintf(msg, sizeof msg, "%s", why);
    else
        snprintf(msg, sizeof msg, "connection to %s lost: %s", k->addr, why);
    close_socket(k);
    k->state = ST_IDLE;
    k->next_attempt_ms = stream__client_mono_ms() + k->c->conf.reconnect_backoff_ms;
    k->backoff_ms = k->c->conf.reconnect_backoff_ms;
    return fail_all(k, &k->flight, err, msg);
}

/* The whole round failed: fail what waits, back off. Returns callbacks run. */
static int round_failed(conn *k, int err, const char *reason)
{
    size_t n;
    const stream_hostport *list = conn_brokers(k, &n);
    if (!k->bootstrap) {
        snprintf(k->last_msg, sizeof k->last_msg, "cannot connect to broker %d at %s: %s",
                 (int)k->node_id, k->addr, reason);
    } else if (n == 1) {
        snprintf(k->last_msg, sizeof k->last_msg, "cannot connect to %s: %s", k->addr, reason);
    } else {
        char names[400] = "";
        size_t off = 0;
        for (size_t i = 0; i < n && off < sizeof names; i++) {
            char one[300];
            stream_hostport_format(&list[i], one, sizeof one);
            int w = snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", one);
            if (w < 0)
                break;
            off += (size_t)w;
        }
        snprintf(k->last_msg, sizeof k->last_msg, "cannot connect to any of %s: %s", names, reason);
    }
    k->last_err = err;
    k->rounds_failed++;
    k->round_tried = 0;
    k->state = ST_IDLE;
    k->want_connect = false;
    close_socket(k);
    int64_t now = stream__client_mono_ms();
    int max = k->c->conf.reconnect_backoff_max_ms;
    k->next_attempt_ms = now + k->backoff_ms;
    k->backoff_ms = k->backoff_ms * 2 > max ? max : k->backoff_ms * 2;
    return fail_all(k, &k->wait, err, k->last_msg);
}

static int try_next_address(conn *k, int err, const char *reason);

/* Starts connecting to the broker k->bi: resolves it and tries its
 * addresses. */
static int start_broker(conn *k)
{
    char port[8];
    size_t n;
    const stream_hostport *hp = &conn_brokers(k, &n)[k->bi];
    snprintf(port, sizeof port, "%u", (unsigned)hp->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    if (k->ai_list)
        freeaddrinfo(k->ai_list);
    k->ai_list = k->ai_next = NULL;
    k->connect_deadline = stream__client_mono_ms() + k->c->conf.connect_timeout_ms;
    int g = getaddrinfo(hp->host, port, &hints, &k->ai_list);
    if (g != 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot resolve host '%s': %s", hp->host, gai_strerror(g));
        k->ai_list = NULL;
        return try_next_address(k, STREAM_EIO, why);
    }
    k->ai_next = k->ai_list;
    return try_next_address(k, STREAM_ECONNREFUSED, "no address");
}

/* Tries the next address of the current broker, then the next broker, and
 * fails the round when every broker has been tried. err/reason describe the
 * failure that led here. Returns callbacks run. */
static int try_next_address(conn *k, int err, const char *reason)
{
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
        k->in_start = k->in_len = 0;
    }
    while (k->ai_next) {
        struct addrinfo *ai = k->ai_next;
        k->ai_next = ai->ai_next;
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = stream_err_from_errno(errno);
            reason = errno_text(errno, NULL);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            k->fd = fd;
            k->state = ST_CONNECTING;
            return 0;
        }
        reason = errno_text(errno, &err);
        close(fd);
    }
    /* This broker is out of addresses: next broker or the round is over. */
    size_t n;
    conn_brokers(k, &n);
    k->round_tried++;
    if (k->round_tried >= n)
        return round_failed(k, err, reason);
    set_broker(k, (k->bi + 1) % n);
    return start_broker(k);
}

static int send_hello(conn *k);

/* The non-blocking connect finished (POLLOUT). */
static int connect_done(conn *k)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr == EINPROGRESS || soerr == EALREADY)
        return 0;
    if (soerr != 0) {
        int err;
        const char *why = errno_text(soerr, &err);
        return try_next_address(k, err, why);
    }
    k->state = ST_HELLO;
    return send_hello(k);
}

static void hello_cb(stream_client *c, const stream__resp *r, void *arg)
{
    conn *k = arg;
    k->hello_id = 0;
    uint64_t version = 0, max_message = 0;
    int64_t node_id = -1;
    int rc = r->err;
    char why[400];
    why[0] = '\0';
    if (rc == 0 &&
        (stream_field_uint(r->root, "version", UINT32_MAX, &version, why, sizeof why) < 0 ||
         stream_field_uint_opt(r->root, "max_message_bytes", INT32_MAX, 0, &max_message, why,
                               sizeof why) < 0 ||
         stream_field_int_opt(r->root, "node_id", INT32_MIN, INT32_MAX, -1, &node_id, why,
                              sizeof why) < 0))
        rc = STREAM_EPROTO;
    if (rc == 0 && (version < 1 || version > STREAM_PROTOCOL_VERSION)) {
        snprintf(why, sizeof why, "the broker answered protocol version %llu",
                 (unsigned long long)version);
        rc = STREAM_EPROTO;
    }
    if (rc == 0) {
        k->max_message_bytes = (size_t)max_message;
        k->state = ST_READY;
        k->last_err = 0;
        k->round_tried = 0;
        k->backoff_ms = c->conf.reconnect_backoff_ms;
        k->want_connect = false;
        if (k->bootstrap && node_id >= 0)
            k->node_id = (int32_t)node_id;
        if (k->ai_list)
            freeaddrinfo(k->ai_list);
        k->ai_list = k->ai_next = NULL;
        return;
    }
    /* The broker refused us or the connection broke during hello: this
     * broker failed; the round goes on. */
    char reason[500];
    snprintf(reason, sizeof reason, "hello failed: %s",
             why[0]      ? why
             : r->msg[0] ? r->msg
                         : stream_strerror(rc));
    int err = rc;
    if (r->root) /* an answer, not a transport failure: the peer is incompatible */
        err = rc == STREAM_EUNSUPPORTED ? STREAM_EUNSUPPORTED : STREAM_EPROTO;
    k->ai_next = NULL; /* do not try other addresses of a broker that answered */
    try_next_address(k, err, reason);
}

static int send_hello(conn *k)
{
    stream_client *c = k->c;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_HELLO, 2);
    stream_pack_kv_int(pk, "version", STREAM_PROTOCOL_VERSION);
    stream_pack_kv_cstr(pk, "client", c->client_name);
    creq *r = c->building;
    c->building = NULL;
    if (!r || stream_frame_finish(&c->frame) < 0) {
        creq_free(r);
        return try_next_address(k, STREAM_ENOMEM, "out of memory");
    }
    r->cb = hello_cb;
    r->arg = k;
    r->deadline_ms = k->connect_deadline;
    k->hello_id = r->id;
    /* Hello goes first, before anything queued. */
    list_push(&k->flight, r);
    return 0;
}

/* Starts a round if one is needed and allowed. Returns callbacks run. */
static int maybe_connect(conn *k, int64_t now)
{
    if (k->state != ST_IDLE)
        return 0;
    if (k->wait.n == 0 && !k->want_connect)
        return 0;
    if (now < k->next_attempt_ms)
        return 0;
    k->round_tried = 0;
    set_broker(k, k->bi);
    return start_broker(k);
}

/* ---- writing ------------------------------------------------------------- */

/* Moves waiting requests onto the wire while there is room. */
static void pump(conn *k, int64_t now)
{
    if (k->state != ST_READY)
        return;
    const stream_client_conf *cf = &k->c->conf;
    while (k->wait.head && k->flight.n < (size_t)cf->max_in_flight) {
        creq *r = list_pop(&k->wait);
        r->deadline_ms = now + cf->request_timeout_ms + r->extra_timeout_ms;
        list_push(&k->flight, r);
    }
}

static bool want_write(const conn *k)
{
    if (k->state == ST_CONNECTING)
        return true;
    for (creq *r = k->flight.head; r; r = r->next)
        if (r->written < r->frame.len)
            return true;
    return false;
}

/* Writes what it can of the flight list. Returns callbacks run (requests
 * without a response complete here), or a negative count - 1 when the
 * connection broke (the failure already handled). */
static int write_out(conn *k)
{
    int ran = 0;
    for (;;) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (creq *r = k->flight.head; r && n < MAX_IOV; r = r->next) {
            if (r->written == r->frame.len)
                continue;
            iov[n].iov_base = r->frame.data + r->written;
            iov[n].iov_len = r->frame.len - r->written;
            n++;
        }
        if (n == 0)
            return ran;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(k->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return ran;
            int err;
            const char *why = errno_text(errno, &err);
            (void)err;
            ran += conn_lost(k, STREAM_ECONNRESET, why);
            return -1 - ran;
        }
        size_t left = (size_t)w;
        creq *prev = NULL, *r = k->flight.head;
        while (r && left > 0) {
            creq *next = r->next;
            size_t want = r->frame.len - r->written;
            if (want == 0) {
                prev = r;
                r = next;
                continue;
            }
            size_t take = want < left ? want : left;
            r->written += take;
            left -= take;
            if (r->written == r->frame.len && (r->flags & STREAM__REQ_NO_RESPONSE)) {
                list_unlink(&k->flight, prev, r);
                creq_finish(k->c, r, 0, "");
                ran++;
            } else {
                prev = r;
            }
            r = next;
        }
    }
}

/* ---- reading ------------------------------------------------------------- */

/* Handles one response payload. Returns 1 when a callback ran, 0, or -1 when
 * the connection was dropped (protocol error). */
static int handle_frame(conn *k, const uint8_t *p, size_t len)
{
    stream_client *c = k->c;
    char eb[256];
    int rc = stream_msg_parse(p, len, &c->msg, eb, sizeof eb);
    uint64_t id = 0;
    int err = 0;
    const char *text = NULL;
    size_t text_len = 0;
    if (rc == 0)
        rc = stream_msg_response(&c->msg, &id, &err, &text, &text_len, eb, sizeof eb);
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof why, "bad response: %s", eb);
        conn_lost(k, STREAM_EPROTO, why);
        return -1;
    }
    if (id == 0) {
        /* The broker's connection-level error: it is closing on us. */
        char why[300];
        snprintf(why, sizeof why, "broker error: %.*s", (int)(text_len < 250 ? text_len : 250),
                 text ? text : stream_strerror(err));
        conn_lost(k, err ? err : STREAM_EPROTO, why);
        return -1;
    }
    creq *r = k->flight.head;
    if (!r || r->id != (int64_t)id || r->written < r->frame.len) {
        char why[128];
        snprintf(why, sizeof why, "response id %llu does not match request %lld",
                 (unsigned long long)id, r ? (long long)r->id : -1LL);
        conn_lost(k, STREAM_EPROTO, why);
        return -1;
    }
    list_pop(&k->flight);
    char msg[512];
    if (err != 0) {
        if (text && text_len)
            snprintf(msg, sizeof msg, "%.*s", (int)(text_len < 500 ? text_len : 500), text);
        else
            snprintf(msg, sizeof msg, "%s", stream_strerror(err));
    } else {
        msg[0] = '\0';
    }
    if (r->cb) {
        stream__resp resp = {
            .err = err, .msg = msg, .root = &c->msg.root, .payload = p, .payload_len = len};
        c->reading = k;
        r->cb(c, &resp, r->arg);
        c->reading = NULL;
    }
    creq_free(r);
    return 1;
}

/* A spare buffer of at least `need` bytes (the smallest that fits), or a new
 * one; NULL without memory. *cap gets its size. */
static uint8_t *buffer_get(stream_client *c, size_t need, size_t *cap)
{
    int best = -1;
    for (int i = 0; i < SPARES; i++)
        if (c->spare[i] && c->spare_cap[i] >= need &&
            (best < 0 || c->spare_cap[i] < c->spare_cap[best]))
            best = i;
    if (best >= 0) {
        uint8_t *p = c->spare[best];
        *cap = c->spare_cap[best];
        c->spare[best] = NULL;
        c->spare_cap[best] = 0;
        return p;
    }
    /* Some room over the frame: the next responses are about as large and
     * then fit in this buffer when it comes back. */
    size_t want = need > LARGE_FRAME ? need + need / 8 : need;
    uint8_t *p = malloc(want);
    *cap = p ? want : 0;
    return p;
}

void stream__client_give_back(stream_client *c, void *buf, size_t cap)
{
    if (!buf)
        return;
    int slot = -1;
    for (int i = 0; i < SPARES; i++) {
        if (!c->spare[i]) {
            slot = i;
            break;
        }
        if (c->spare_cap[i] < cap && (slot < 0 || c->spare_cap[i] < c->spare_cap[slot]))
            slot = i; /* keep the larger ones */
    }
    if (slot < 0) {
        free(buf);
        return;
    }
    free(c->spare[slot]);
    c->spare[slot] = buf;
    c->spare_cap[slot] = cap;
}

void *stream__resp_take(stream_client *c, const stream__resp *r, size_t *cap)
{
    *cap = 0;
    conn *k = c->reading;
    if (!k || !k->in_takeable || !k->in || !r->payload || r->payload < k->in ||
        r->payload + r->payload_len > k->in + k->in_len)
        return NULL;
    uint8_t *p = k->in;
    *cap = k->in_cap;
    k->in = NULL;
    k->in_cap = k->in_start = k->in_len = 0;
    k->in_takeable = false;
    return p;
}

/* A length prefix of n bytes that no frame may have: drops the connection
 * (EPROTO, as for any bytes that are not our protocol). Returns callbacks
 * run. */
static int bad_length(conn *k, uint32_t n)
{
    char why[300];
    if (n == 0)
        snprintf(why, sizeof why, "bad frame: frame with length 0");
    else
        snprintf(why, sizeof why,
                 "bad frame: frame of %" PRIu32 " bytes exceeds the maximum of %u bytes", n,
                 (unsigned)k->c->conf.max_frame_bytes);
    return conn_lost(k, STREAM_EPROTO, why);
}

/* Makes room in `in` for the next read; *want gets the bytes to ask for.
 * The pending frame's length prefix, if any, was checked. Returns 0 or
 * STREAM_ENOMEM. */
static int in_prepare(conn *k, size_t *want)
{
    size_t pending = k->in_len - k->in_start;
    size_t frame = 0; /* the pending frame's size with its prefix, when known */
    if (pending >= STREAM_FRAME_HEADER_SIZE)
        frame = STREAM_FRAME_HEADER_SIZE + (size_t)stream_load_be32(k->in + k->in_start);
    if (pending == 0)
        k->in_start = k->in_len = 0;
    size_t need = frame > LARGE_FRAME ? frame : READ_CHUNK;
    if (!k->in || k->in_cap - k->in_start < need) {
        /* Move the pending bytes to the front of a buffer that fits. */
        if (k->in && k->in_cap >= need) {
            memmove(k->in, k->in + k->in_start, pending);
        } else {
            size_t cap;
            uint8_t *p = buffer_get(k->c, need, &cap);
            if (!p)
                return STREAM_ENOMEM;
            if (pending)
                memcpy(p, k->in + k->in_start, pending);
            stream__client_give_back(k->c, k->in, k->in_cap);
            k->in = p;
            k->in_cap = cap;
        }
        k->in_start = 0;
        k->in_len = pending;
    }
    if (frame > LARGE_FRAME)
        *want = k->in_start + frame - k->in_len; /* up to its end, no further */
    else
        *want = k->in_cap - k->in_len;
    return 0;
}

/* Reads what is there and handles whole frames. Returns callbacks run, or a
 * negative count - 1 when the connection dropped. */
static int read_in(conn *k)
{
    int ran = 0;
    for (;;) {
        size_t want;
        if (in_prepare(k, &want) < 0) {
            ran += conn_lost(k, STREAM_ENOMEM, "out of memory");
            return -1 - ran;
        }
        ssize_t n = read(k->fd, k->in + k->in_len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return ran;
        if (n <= 0) {
            int err = STREAM_ECONNRESET;
            const char *why = n == 0 ? "closed by the broker" : errno_text(errno, NULL);
            ran += conn_lost(k, err, why);
            return -1 - ran;
        }
        k->in_len += (size_t)n;
        conn_state before = k->state;
        while (k->in_len - k->in_start >= STREAM_FRAME_HEADER_SIZE) {
            uint32_t len = stream_load_be32(k->in + k->in_start);
            if (len == 0 || len > k->c->conf.max_frame_bytes) {
                ran += bad_length(k, len);
                return -1 - ran;
            }
            size_t plen = len;
            if (k->in_len - k->in_start - STREAM_FRAME_HEADER_SIZE < plen)
                break;
            const uint8_t *payload = k->in + k->in_start + STREAM_FRAME_HEADER_SIZE;
            k->in_start += STREAM_FRAME_HEADER_SIZE + plen;
            k->in_takeable = k->in_start == k->in_len;
            int h = handle_frame(k, payload, plen);
            k->in_takeable = false;
            if (h < 0)
                return -1 - ran;
            ran += h;
            /* A hello failure moves on to another broker: this socket is gone. */
            if (k->state != before || k->fd < 0)
                return ran;
        }
        if ((size_t)n < want)
            return ran; /* drained the socket for now */
    }
}

/* ---- timeouts ------------------------------------------------------------ */

/* Fails overdue requests. Returns callbacks run. */
static int expire(conn *k, int64_t now)
{
    const stream_client_conf *cf = &k->c->conf;
    int ran = 0;
    if (k->state == ST_CONNECTING && now >= k->connect_deadline) {
        char why[64];
        snprintf(why, sizeof why, "timed out after %d ms", cf->connect_timeout_ms);
        k->ai_next = NULL;
        ran += try_next_address(k, STREAM_ETIMEDOUT, why);
    }
    for (creq *r = k->flight.head; r; r = r->next) {
        if (now < r->deadline_ms)
            continue;
        if (r->id == k->hello_id && k->state == ST_HELLO) {
            /* Hello unanswered: this broker failed; try the next. */
            list_pop(&k->flight);
            creq_free(r);
            k->hello_id = 0;
            char why[64];
            snprintf(why, sizeof why, "no hello response after %d ms", cf->connect_timeout_ms);
            k->ai_next = NULL;
            ran += try_next_address(k, STREAM_ETIMEDOUT, why);
            break;
        }
        /* Responses are in order: one overdue response holds up every later
         * one, so the connection is given up. */
        creq *prev = NULL;
        for (creq *q = k->flight.head; q != r; q = q->next)
            prev = q;
        list_unlink(&k->flight, prev, r);
        char msg[400];
        snprintf(msg, sizeof msg, "request to %s timed out after %d ms", k->addr,
                 cf->request_timeout_ms + r->extra_timeout_ms);
        creq_finish(k->c, r, STREAM_ETIMEDOUT, msg);
        ran++;
        ran += conn_lost(k, STREAM_ECONNRESET, "a response was overdue");
        break;
    }
    creq *prev = NULL;
    for (creq *r = k->wait.head; r;) {
        creq *next = r->next;
        if (now >= r->deadline_ms) {
            list_unlink(&k->wait, prev, r);
            char msg[600];
            if (k->last_err)
                snprintf(msg, sizeof msg, "request timed out: %s", k->last_msg);
            else
                snprintf(msg, sizeof msg, "request timed out waiting for a connection to %s",
                         k->addr);
            creq_finish(k->c, r, STREAM_ETIMEDOUT, msg);
            ran++;
        } else {
            prev = r;
        }
        r = next;
    }
    return ran;
}

static int64_t next_deadline(const conn *k)
{
    int64_t t = INT64_MAX;
    if (k->state == ST_CONNECTING && k->connect_deadline < t)
        t = k->connect_deadline;
    for (creq *r = k->flight.head; r; r = r->next)
        if (r->deadline_ms < t)
            t = r->deadline_ms;
    for (creq *r = k->wait.head; r; r = r->next)
        if (r->deadline_ms < t)
            t = r->deadline_ms;
    if (k->state == ST_IDLE && (k->wait.n || k->want_connect) && k->next_attempt_ms < t)
        t = k->next_attempt_ms;
    return t;
}

/* ---- the poll ------------------------------------------------------------ */

/* Everything that needs no waiting on one connection: timeouts, connects,
 * writes. Returns callbacks run; lowers *wake to when something is due. */
static int drive_conn(conn *k, int64_t now, int64_t *wake)
{
    int ran = expire(k, now);
    ran += maybe_connect(k, now);
    pump(k, now);
    if (k->state == ST_HELLO || k->state == ST_READY) {
        int w = write_out(k);
        ran += w >= 0 ? w : -1 - w;
        if (w < 0)
            ran += maybe_connect(k, now);
    }
    int64_t d = next_deadline(k);
    if (d < *wake)
        *wake = d;
    return ran;
}

/* Everything that needs no waiting: ticks, then every connection (a tick or
 * a callback may add one: the count is read each time). Returns callbacks
 * run; *wake gets the earliest time something is due. */
static int drive(stream_client *c, int64_t *wake)
{
    int64_t now = stream__client_mono_ms();
    *wake = run_ticks(c, now);
    int ran = 0;
    for (size_t i = 0; i < c->nconns; i++)
        ran += drive_conn(c->conns[i], now, wake);
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
        if (want_write(k))
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
                ran += connect_done(k);
        } else if (rev & (POLLIN | POLLERR | POLLHUP)) {
            int r = read_in(k);
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
    sync_call s = {.parse = parse, .arg = arg, .errbuf = errbuf, .errbuf_len = errbuf_len};
    int64_t deadline = stream__client_deadline(c, timeout_ms);
    int64_t id = stream__req_send(c, sync_cb, &s, 0, 0);
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
