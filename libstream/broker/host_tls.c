/*
 * host_tls.c - TLS on the links a broker opens to other brokers (host.h):
 * the replica fetchers' peers and the link to the controller. They are
 * libuv clients of their own (cluster/peer.c, cluster/controller_link.c);
 * this is the glue that puts a stream_tls session (base/tls.c) between
 * their socket and their frames, the client-side twin of what
 * broker_conn.c does for accepted connections. Ciphertext goes out in
 * blocks of its own (handshake records) or in the link's out buffer (the
 * owner's frames); libuv writes a stream's writes in order, so records
 * never overtake each other.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "stream/error.h"

/* Ciphertext read per callback. */
#define LINK_READ (64 * 1024)

/* Handshake records on their way to the socket. */
typedef struct hs_block {
    uv_write_t write; /* the uv_write carrying data */
    uint8_t data[];   /* the records */
} hs_block;

stream_tls_ctx *stream__host_tls_client(stream_broker *b)
{
    return b->tls_client;
}

static void hs_done(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows up as a failed read */
    free(w);
}

/* Sends what the session holds outside the owner's writes. 0 or ENOMEM. */
static int send_pending(stream__tls_link *l)
{
    size_t n = stream_tls_out_pending(l->tls);
    if (n == 0)
        return 0;
    hs_block *blk = malloc(sizeof(*blk) + n);
    if (blk == NULL)
        return STREAM_ENOMEM;
    n = stream_tls_out_take(l->tls, blk->data, n);
    uv_buf_t ub = uv_buf_init((char *)blk->data, (unsigned int)n);
    if (uv_write(&blk->write, l->stream, &ub, 1, hs_done) != 0) {
        free(blk);
        return STREAM_ECONNRESET;
    }
    return 0;
}

int stream__host_tls_link_start(stream__tls_link *l, stream_tls_ctx *ctx, uv_stream_t *stream,
                           const char *host)
{
    memset(l, 0, sizeof(*l));
    stream_buf_init(&l->out);
    l->in = malloc(LINK_READ);
    if (l->in == NULL || stream_tls_new(ctx, host, &l->tls) != 0) {
        stream__host_tls_link_release(l);
        return STREAM_ENOMEM;
    }
    l->stream = stream;
    stream_tls_handshake(l->tls);
    return send_pending(l);
}

bool stream__host_tls_link_active(const stream__tls_link *l)
{
    return l->tls != NULL;
}

bool stream__host_tls_link_ready(const stream__tls_link *l)
{
    return l->tls != NULL && stream_tls_ready(l->tls);
}

void stream__host_tls_link_alloc(stream__tls_link *l, uv_buf_t *buf)
{
    *buf = uv_buf_init((char *)l->in, l->in != NULL ? LINK_READ : 0);
}

int stream__host_tls_link_read(stream__tls_link *l, size_t n, stream_frame_reader *fr)
{
    bool was_ready = stream_tls_ready(l->tls);
    if (stream_tls_feed(l->tls, l->in, n) != 0)
        return STREAM_ENOMEM;
    for (;;) {
        uint8_t *p;
        size_t room;
        if (stream_frame_reader_prepare(fr, LINK_READ, &p, &room) != 0)
            return STREAM_ENOMEM;
        long got = stream_tls_read(l->tls, p, room);
        if (got == 0)
            break;
        if (got < 0) {
            send_pending(l); /* the alert */
            return got == STREAM_ECLOSED ? STREAM_ECONNRESET : (int)got;
        }
        char err[256];
        int rc = stream_frame_reader_commit(fr, (size_t)got, err, sizeof(err));
        if (rc != 0)
            return rc;
    }
    int rc = send_pending(l);
    if (rc != 0)
        return rc;
    return !was_ready && stream_tls_ready(l->tls) ? 1 : 0;
}

int stream__host_tls_link_write(stream__tls_link *l, uv_write_t *w, const uint8_t *p, size_t n,
                           uv_write_cb cb)
{
    int rc = stream_tls_write(l->tls, p, n);
    if (rc != 0)
        return rc;
    size_t len = stream_tls_out_pending(l->tls);
    stream_buf_reset(&l->out);
    if (stream_buf_reserve(&l->out, len) != 0)
        return STREAM_ENOMEM;
    len = stream_tls_out_take(l->tls, l->out.data, len);
    uv_buf_t ub = uv_buf_init((char *)l->out.data, (unsigned int)len);
    return uv_write(w, l->stream, &ub, 1, cb) == 0 ? 0 : STREAM_ECONNRESET;
}

void stream__host_tls_link_release(stream__tls_link *l)
{
    stream_tls_free(l->tls);
    free(l->in);
    stream_buf_release(&l->out);
    memset(l, 0, sizeof(*l));
}
