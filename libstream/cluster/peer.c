/*
 * peer.c - a broker's connection to another broker (peer.h).
 *
 * Over TLS (the broker serves TLS: a context is given) the connect is
 * followed by the handshake (host_tls.c); frames queued meanwhile are
 * written once it has verified the other broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "stream/error.h"

#define PEER_MAX_FRAME (256u << 20) /* a replica fetch answers up to its max_bytes */
/* The read buffer kept between frames: a follower's fetch answers (up to
 * 8 MiB, replica.c) would otherwise shrink it and grow it back each time. */
#define PEER_KEEP_BYTES (16u << 20)

typedef struct peer_req {
    struct peer_req *next;
    uint64_t id;
    stream__peer_cb cb;
    void *arg;
} peer_req;

typedef enum peer_state { PEER_IDLE, PEER_CONNECTING, PEER_READY, PEER_CLOSING } peer_state;

struct stream__peer {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t connect;
    char host[256];
    uint16_t port;
    char name[64];
    peer_state state;
    bool freed;        /* stream__peer_free was called: free once closed */
    bool handle_open;  /* tcp initialised, not yet closed */
    stream_buf queued; /* frames waiting for the connection or the write */
    stream_buf writing;
    bool write_busy;
    uv_write_t write;
    stream_frame_reader fr;
    stream_msg msg;
    peer_req *head, *tail; /* outstanding, oldest first (hello included) */
    size_t outstanding;
    uint64_t next_id;
    stream_frame f; /* the request being built */
    bool building;
    stream_tls_ctx *tls_ctx; /* TLS to the other broker (borrowed), or NULL */
    stream__tls_link tl;     /* the session of the connection, once connected */
};

static void peer_fail(stream__peer *p, int err);

static void on_close(uv_handle_t *h)
{
    stream__peer *p = h->data;
    p->handle_open = false;
    p->state = PEER_IDLE;
    stream__host_tls_link_release(&p->tl);
    if (p->freed) {
        stream_buf_release(&p->queued);
        stream_buf_release(&p->writing);
        stream_frame_reader_release(&p->fr);
        stream_msg_release(&p->msg);
        free(p);
    }
}

static void close_handle(stream__peer *p)
{
    if (p->handle_open && p->state != PEER_CLOSING) {
        p->state = PEER_CLOSING;
        uv_close((uv_handle_t *)&p->tcp, on_close);
    }
}

/* Answers every outstanding request with err (transport failure). */
static void fail_all(stream__peer *p, int err)
{
    peer_req *q = p->head;
    p->head = p->tail = NULL;
    p->outstanding = 0;
    while (q != NULL) {
        peer_req *next = q->next;
        if (!p->freed && q->cb != NULL)
            q->cb(q->arg, err, NULL);
        free(q);
        q = next;
    }
}

static void peer_fail(stream__peer *p, int err)
{
    stream_buf_reset(&p->queued);
    close_handle(p);
    fail_all(p, err);
}

static void flush_out(stream__peer *p);

static void on_write(uv_write_t *w, int status)
{
    stream__peer *p = w->data;
    p->write_busy = false;
    stream_buf_reset(&p->writing);
    if (status != 0) {
        peer_fail(p, STREAM_ECONNRESET);
        return;
    }
    flush_out(p);
}

static void flush_out(stream__peer *p)
{
    if (p->state != PEER_READY || p->write_busy || p->queued.len == 0)
        return;
    if (stream__host_tls_link_active(&p->tl) && !stream__host_tls_link_ready(&p->tl))
        return; /* after the handshake */
    stream_buf tmp = p->writing;
    p->writing = p->queued;
    p->queued = tmp;
    stream_buf_reset(&p->queued);
    uv_buf_t b = uv_buf_init((char *)p->writing.data, (unsigned)p->writing.len);
    p->write.data = p;
    if (stream__host_tls_link_active(&p->tl)) {
        if (stream__host_tls_link_write(&p->tl, &p->write, p->writing.data, p->writing.len,
                                   on_write) != 0) {
            peer_fail(p, STREAM_ECONNRESET);
            return;
        }
    } else if (uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, on_write) != 0) {
        peer_fail(p, STREAM_ECONNRESET);
        return;
    }
    p->write_busy = true;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    stream__peer *p = h->data;
    uint8_t *ptr;
    size_t n;
    if (stream__host_tls_link_active(&p->tl)) {
        stream__host_tls_link_alloc(&p->tl, buf);
        return;
    }
    if (stream_frame_reader_prepare(&p->fr, hint, &ptr, &n) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)ptr, n);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    stream__peer *p = s->data;
    char eb[256];
    if (nread < 0) {
        peer_fail(p, STREAM_ECONNRESET);
        return;
    }
    if (nread == 0)
        return;
    int rc;
    if (stream__host_tls_link_active(&p->tl)) {
        rc = stream__host_tls_link_read(&p->tl, (size_t)nread, &p->fr);
        if (rc < 0) {
            /* The other broker logs the reason too. */
            peer_fail(p, rc == STREAM_ETLS ? STREAM_ETLS : STREAM_ECONNRESET);
            return;
        }
        if (rc == 1)
            flush_out(p); /* what waited for the handshake */
        rc = 0;
    } else {
        rc = stream_frame_reader_commit(&p->fr, (size_t)nread, eb, sizeof eb);
    }
    const uint8_t *payload;
    size_t len;
    while (rc == 0 && (rc = stream_frame_reader_next(&p->fr, &payload, &len)) == 1) {
        rc = stream_msg_parse(payload, len, &p->msg, eb, sizeof eb);
        uint64_t id;
        int err;
        const char *text;
        size_t text_len;
        if (rc == 0)
            rc = stream_msg_response(&p->msg, &id, &err, &text, &text_len, eb, sizeof eb);
        if (rc != 0)
            break;
        peer_req *q = p->head;
        if (q == NULL || q->id != id) {
            rc = STREAM_EPROTO; /* answers come in request order */
            break;
        }
        p->head = q->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->outstanding--;
        if (q->cb != NULL)
            q->cb(q->arg, 0, &p->msg.root);
        free(q);
        if (p->state != PEER_READY)
            return; /* a callback freed it, or it failed meanwhile */
    }
    if (rc < 0)
        peer_fail(p, STREAM_EPROTO);
}

static void on_connect(uv_connect_t *req, int status)
{
    stream__peer *p = req->data;
    if (p->state != PEER_CONNECTING)
        return;
    if (status != 0) {
        peer_fail(p, STREAM_ECONNREFUSED);
        return;
    }
    p->state = PEER_READY;
    uv_tcp_nodelay(&p->tcp, 1);
    if (p->tls_ctx != NULL &&
        stream__host_tls_link_start(&p->tl, p->tls_ctx, (uv_stream_t *)&p->tcp, p->host) != 0) {
        peer_fail(p, STREAM_ENOMEM);
        return;
    }
    if (uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0) {
        peer_fail(p, STREAM_ECONNRESET);
        return;
    }
    flush_out(p);
}

/* Opens the connection and queues hello ahead of everything else. */
static int peer_connect(stream__peer *p)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(p->host, p->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(p->host, p->port, (struct sockaddr_in6 *)&ss) != 0)
        return STREAM_EINVAL;
    stream_frame_reader_release(&p->fr);
    stream_frame_reader_init(&p->fr, PEER_MAX_FRAME);
    stream_frame_reader_keep(&p->fr, PEER_KEEP_BYTES);
    if (uv_tcp_init(p->loop, &p->tcp) != 0)
        return STREAM_EIO;
    p->tcp.data = p;
    p->handle_open = true;
    p->connect.data = p;
    /* hello goes first: put it in front of what is queued. */
    stream_buf rest = p->queued;
    stream_buf_init(&p->queued);
    stream_frame f;
    stream_frame_start(&f, &p->queued);
    uint64_t id = ++p->next_id;
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, id, 2);
    stream_pack_kv_uint(&f.pk, "version", STREAM_PROTOCOL_VERSION);
    stream_pack_kv_cstr(&f.pk, "client", p->name);
    int rc = stream_frame_finish(&f);
    peer_req *q = rc == 0 ? calloc(1, sizeof(*q)) : NULL;
    if (q != NULL)
        stream_buf_put(&p->queued, rest.data, rest.len);
    if (q == NULL || stream_buf_ok(&p->queued) != 0) {
        free(q);
        stream_buf_release(&rest);
        close_handle(p);
        return STREAM_ENOMEM;
    }
    stream_buf_release(&rest);
    q->id = id;
    q->next = p->head; /* hello's answer comes first */
    p->head = q;
    if (p->tail == NULL)
        p->tail = q;
    p->outstanding++;
    p->state = PEER_CONNECTING;
    if (uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&ss, on_connect) != 0) {
        peer_fail(p, STREAM_ECONNREFUSED);
        return STREAM_ECONNREFUSED;
    }
    return 0;
}

stream__peer *stream__peer_new(uv_loop_t *loop, const char *host, uint16_t port, const char *name,
                               stream_tls_ctx *tls)
{
    stream__peer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->tls_ctx = tls;
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->port = port;
    snprintf(p->name, sizeof(p->name), "%s", name);
    stream_buf_init(&p->queued);
    stream_buf_init(&p->writing);
    stream_frame_reader_init(&p->fr, PEER_MAX_FRAME);
    stream_frame_reader_keep(&p->fr, PEER_KEEP_BYTES);
    stream_msg_init(&p->msg);
    return p;
}

bool stream__peer_is(const stream__peer *p, const char *host, uint16_t port)
{
    return p->port == port && strcmp(p->host, host) == 0;
}

msgpack_packer *stream__peer_begin(stream__peer *p, stream_op op, size_t nfields)
{
    stream_frame_start(&p->f, &p->queued);
    stream_pack_request_header(&p->f.pk, op, ++p->next_id, nfields);
    p->building = true;
    return &p->f.pk;
}

int stream__peer_send(stream__peer *p, stream__peer_cb cb, void *arg)
{
    uint64_t id = p->next_id; /* the request's (hello may take the next one) */
    p->building = false;
    if (p->state == PEER_CLOSING) {
        /* Still closing after a failure: the owner asks again later. */
        stream_frame_abort(&p->f);
        return STREAM_ECLOSED;
    }
    peer_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        stream_frame_abort(&p->f);
        return STREAM_ENOMEM;
    }
    if (stream_frame_finish(&p->f) != 0) {
        free(q);
        return STREAM_ENOMEM;
    }
    if (p->state == PEER_IDLE) {
        int rc = peer_connect(p);
        if (rc != 0) {
            stream_buf_reset(&p->queued);
            free(q);
            return rc;
        }
    }
    q->id = id;
    q->cb = cb;
    q->arg = arg;
    if (p->tail != NULL)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    p->outstanding++;
    flush_out(p);
    return 0;
}

size_t stream__peer_outstanding(const stream__peer *p)
{
    return p->outstanding;
}

void stream__peer_free(stream__peer *p)
{
    if (p == NULL)
        return;
    p->freed = true;
    fail_all(p, STREAM_ECLOSED); /* no callbacks: freed */
    if (p->handle_open) {
        close_handle(p);
        return; /* on_close frees */
    }
    stream_buf_release(&p->queued);
    stream_buf_release(&p->writing);
    stream_frame_reader_release(&p->fr);
    stream_msg_release(&p->msg);
    free(p);
}
