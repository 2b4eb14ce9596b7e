/*
 * client_conn.c - one connection of a client (client.c describes the
 * whole): the state machine IDLE -> CONNECTING -> HELLO -> READY, connect
 * rounds over the connection's broker list with backoff, hello (which names
 * the node reached), writing the flight list with sendmsg, reading frames
 * (large ones into a buffer of their own that a callback may take), and
 * timeouts (an overdue response closes the connection: responses are in
 * order).
 *
 * TLS (when the client has a TLS context): a socket gets a stream_tls
 * session once its connect finishes; hello waits until the handshake has
 * verified the broker. Frames are encrypted into the session as they go on
 * the wire (while less than TLS_OUT_MAX of ciphertext waits) and the
 * ciphertext is written from tls_wbuf; reads go through the session into
 * the same input buffer as plain text, so framing is unchanged. A failed
 * handshake ends the connect to that broker with the session's reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client_conn.h"
#include "stream/error.h"

/* ---- requests and lists --------------------------------------------------- */

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

void stream__creq_push(creq_list *l, creq *r)
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

void stream__creq_free(creq *r)
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
    stream__creq_free(r);
}

/* ---- a connection: made, its brokers, freed -------------------------------- */

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

void stream__conn_set_broker(conn *k, size_t bi)
{
    size_t n;
    const stream_hostport *list = conn_brokers(k, &n);
    k->bi = bi < n ? bi : 0;
    stream_hostport_format(&list[k->bi], k->addr, sizeof k->addr);
}

/* A new connection in c->conns (the bootstrap one first); NULL without
 * memory. */
conn *stream__conn_add(stream_client *c, bool bootstrap, int32_t node_id, const stream_hostport *hp)
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
    stream__conn_set_broker(k, 0);
    c->conns[c->nconns++] = k;
    return k;
}

static void close_socket(conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    stream_tls_free(k->tls);
    k->tls = NULL;
    k->tls_woff = k->tls_wlen = 0;
    if (k->ai_list)
        freeaddrinfo(k->ai_list);
    k->ai_list = k->ai_next = NULL;
    /* Bytes of a half-read frame belong to the dead connection. */
    k->in_start = k->in_len = 0;
}

void stream__conn_free(conn *k)
{
    close_socket(k);
    creq *r;
    while ((r = list_pop(&k->wait)))
        stream__creq_free(r);
    while ((r = list_pop(&k->flight)))
        stream__creq_free(r);
    free(k->in);
    free(k->tls_wbuf);
    free(k->tls_rbuf);
    free(k);
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
    stream_tls_free(k->tls);
    k->tls = NULL;
    k->tls_woff = k->tls_wlen = 0;
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
    stream__conn_set_broker(k, (k->bi + 1) % n);
    return start_broker(k);
}

static int send_hello(conn *k);

/* The non-blocking connect finished (POLLOUT). */
int stream__conn_connect_done(conn *k)
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
    if (k->c->tls_ctx != NULL) {
        size_t n;
        const stream_hostport *hp = &conn_brokers(k, &n)[k->bi];
        int rc = stream_tls_new(k->c->tls_ctx, hp->host, &k->tls);
        if (rc != 0)
            return try_next_address(k, rc, stream_strerror(rc));
        stream_tls_handshake(k->tls); /* the ClientHello, sent by write_out */
    }
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
        stream__creq_free(r);
        return try_next_address(k, STREAM_ENOMEM, "out of memory");
    }
    r->cb = hello_cb;
    r->arg = k;
    r->deadline_ms = k->connect_deadline;
    k->hello_id = r->id;
    /* Hello goes first, before anything queued. */
    stream__creq_push(&k->flight, r);
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
    stream__conn_set_broker(k, k->bi);
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
        stream__creq_push(&k->flight, r);
    }
}

bool stream__conn_want_write(const conn *k)
{
    if (k->state == ST_CONNECTING)
        return true;
    if (k->tls != NULL) {
        if (k->tls_woff < k->tls_wlen || stream_tls_out_pending(k->tls) > 0)
            return true;
        if (!stream_tls_ready(k->tls))
            return false; /* frames wait for the handshake */
    }
    for (creq *r = k->flight.head; r; r = r->next)
        if (r->written < r->frame.len)
            return true;
    return false;
}

/* The session failed: drops the connection with its reason. Returns the
 * negative count - 1 of callbacks run. */
static int tls_lost(conn *k, int ran)
{
    char why[400];
    snprintf(why, sizeof why, "TLS: %s%s", stream_tls_error(k->tls),
             !stream_tls_ready(k->tls) && strstr(stream_tls_error(k->tls), "wrong version")
                 ? " (is the broker's port plain text? it has no TLS)"
                 : "");
    ran += conn_lost(k, STREAM_ETLS, why);
    return -1 - ran;
}

/* Writes the session's ciphertext to the socket until it is all written or
 * the socket is full. 0, or -1 when the socket failed (errno). */
static int tls_send(conn *k)
{
    for (;;) {
        if (k->tls_woff == k->tls_wlen) {
            if (k->tls_wbuf == NULL && (k->tls_wbuf = malloc(TLS_WBUF)) == NULL) {
                errno = ENOMEM;
                return -1;
            }
            k->tls_woff = 0;
            k->tls_wlen = stream_tls_out_take(k->tls, k->tls_wbuf, TLS_WBUF);
            if (k->tls_wlen == 0)
                return 0;
        }
        ssize_t w = send(k->fd, k->tls_wbuf + k->tls_woff, k->tls_wlen - k->tls_woff,
                         MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0)
            return -1;
        k->tls_woff += (size_t)w;
    }
}

/* write_out over TLS: encrypts the flight list's frames (once the handshake
 * is done) and writes the ciphertext. */
static int tls_write_out(conn *k)
{
    int ran = 0;
    if (stream_tls_ready(k->tls)) {
        creq *prev = NULL, *r = k->flight.head;
        while (r && stream_tls_out_pending(k->tls) < TLS_OUT_MAX) {
            creq *next = r->next;
            if (r->written < r->frame.len) {
                if (stream_tls_write(k->tls, r->frame.data + r->written,
                                     r->frame.len - r->written) != 0)
                    return tls_lost(k, ran);
                r->written = r->frame.len;
                if (r->flags & STREAM__REQ_NO_RESPONSE) {
                    list_unlink(&k->flight, prev, r);
                    creq_finish(k->c, r, 0, "");
                    ran++;
                    r = next;
                    continue;
                }
            }
            prev = r;
            r = next;
        }
    }
    if (tls_send(k) != 0) {
        ran += conn_lost(k, STREAM_ECONNRESET, errno_text(errno, NULL));
        return -1 - ran;
    }
    return ran;
}

/* Writes what it can of the flight list. Returns callbacks run (requests
 * without a response complete here), or a negative count - 1 when the
 * connection broke (the failure already handled). */
static int write_out(conn *k)
{
    if (k->tls != NULL)
        return tls_write_out(k);
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
    stream__creq_free(r);
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

/* read() through k's session: plain bytes into p[0..want), reading and
 * feeding ciphertext as the session needs it. As read(), or -2 when the
 * session failed. */
static ssize_t tls_recv(conn *k, uint8_t *p, size_t want)
{
    if (k->tls_rbuf == NULL && (k->tls_rbuf = malloc(TLS_RBUF)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        long n = stream_tls_read(k->tls, p, want);
        if (n == STREAM_ECLOSED)
            return 0;
        if (n < 0) {
            tls_send(k); /* the alert, if the socket takes it */
            return -2;
        }
        if (n > 0)
            return n;
        /* Handshake records to answer go out before waiting for more. */
        if (tls_send(k) != 0)
            return -1;
        ssize_t r = read(k->fd, k->tls_rbuf, TLS_RBUF);
        if (r <= 0)
            return r;
        if (stream_tls_feed(k->tls, k->tls_rbuf, (size_t)r) != 0) {
            errno = ENOMEM;
            return -1;
        }
    }
}

/* Reads what is there and handles whole frames. Returns callbacks run, or a
 * negative count - 1 when the connection dropped. */
int stream__conn_read(conn *k)
{
    int ran = 0;
    for (;;) {
        size_t want;
        if (in_prepare(k, &want) < 0) {
            ran += conn_lost(k, STREAM_ENOMEM, "out of memory");
            return -1 - ran;
        }
        ssize_t n = k->tls != NULL ? tls_recv(k, k->in + k->in_len, want)
                                   : read(k->fd, k->in + k->in_len, want);
        if (n == -2)
            return tls_lost(k, ran);
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
            if (k->tls == NULL && k->state == ST_HELLO &&
                stream_tls_looks_like_record(k->in + k->in_start, k->in_len - k->in_start)) {
                ran += conn_lost(k, STREAM_ETLS,
                                 "the broker speaks TLS on this port: connect with --tls "
                                 "(and --cacert FILE for its CA)");
                return -1 - ran;
            }
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
        /* Drained the socket for now. A session may still hold decrypted
         * records that no poll would announce: it is read until it asks
         * the socket for more and the socket has none. */
        if (k->tls == NULL && (size_t)n < want)
            return ran;
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
            stream__creq_free(r);
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

/* ---- driving ------------------------------------------------------------ */

/* Everything that needs no waiting on one connection: timeouts, connects,
 * writes. Returns callbacks run; lowers *wake to when something is due. */
int stream__conn_drive(conn *k, int64_t now, int64_t *wake)
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
