/*
 * broker_conn.c - client connections: accepting, framing, ordered responses,
 * backpressure, idle timeouts.
 *
 * Input: bytes are read straight into the connection's buffer. A frame is a
 * 4-byte big-endian length and that many bytes; the length is checked against
 * socket.request.max.bytes before the body is buffered, so a hostile length
 * costs nothing. Each complete frame is handed to stream__dispatch on its own;
 * any framing or parse error closes this one connection (after writing what
 * is queued, the error response included).
 *
 * Output: every request gets a stream__req at the tail of the connection's
 * queue when its frame is read. Requests complete in any order (a long poll
 * may finish after a later metadata request), but only done requests at the
 * head are written, so responses leave in request order.
 *
 * Backpressure: when the bytes of finished responses not yet written (those
 * waiting behind a slower one and those handed to libuv) pass
 * max_output_bytes, or too many requests are pending, the connection stops
 * reading (and stops decoding frames it already holds) until the backlog
 * halves. A consumer that stops reading therefore stalls its own requests
 * and nothing else; broker memory per connection stays bounded by roughly
 * one frame in plus max_output_bytes (+ one response) out, beyond what the
 * kernel's socket buffers hold. A client that takes no response byte for
 * connections.max.idle.ms is stalled and is closed like an idle one.
 *
 * Descriptors: a connection is refused when its socket would leave fewer
 * than a reserve of descriptors under RLIMIT_NOFILE, so that clients can
 * never take the files the broker itself must open (segment rolls, index
 * writes, checkpoints, new topics). Refusals are logged at most once a
 * second, with a count, so that a storm cannot flood the log.
 *
 * TLS: when the broker has a TLS context every listener's connections
 * (native and services' alike) get a stream_tls session. Ciphertext is
 * read into the broker's tls_in, fed to the session and decrypted into the
 * frame reader, so framing and everything above it are unchanged; the
 * handshake happens inside those reads. Responses are encrypted as they
 * leave the head of the queue: out bytes as they are, file pieces read
 * into the broker's tls_chunk first (sendfile cannot encrypt; kernel TLS
 * is not used, see README), and the ciphertext goes to the socket with
 * uv_try_write, the rest with uv_write. Encryption stops while more than
 * half of max_output_bytes of ciphertext waits for the socket, so a
 * client that stops reading holds the same bounded memory as in plain
 * text. A session that fails (a bad certificate, a plain-text client)
 * sends its alert and closes, with a log line saying why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_internal.h"
#include "stream/error.h"
#include "stream/proto.h"

/* Bytes asked for per read. */
#define READ_CHUNK (64 * 1024)
/* A connection quiet this long gives back a read buffer grown past 256 KiB. */
#define READ_TRIM_MS 1000
/* File bytes copied into one uv_write when sendfile finds the socket full:
 * small, since all it does is make libuv wait until there is room again
 * (then sendfile goes on), but a few pages so that the wait pays off. */
#define PART_CHUNK (32 * 1024)
/* Descriptors kept free for the broker's own files: a quarter of the limit,
 * at most this many. */
#define FD_RESERVE_MAX 32
/* At most one warning about refused connections per this period. */
#define REFUSE_WARN_MS 1000
/* Largest out buffer kept for reuse (stream_broker.out_pool): an empty
 * fetch or a metadata response fits, a batch of records is not kept. */
#define SPARE_OUT_MAX 4096

/* File bytes read per SSL_write on a TLS connection (stream_broker.tls_chunk). */
#define TLS_CHUNK (64 * 1024)

static void conn_flush(stream__conn *c);
static void process_frames(stream__conn *c);
static void tls_alloc(stream__conn *c, uv_buf_t *buf);
static void tls_read(stream__conn *c, ssize_t nread);
static void tls_flush(stream__conn *c);
static void tls_refuse_plain(stream__conn *c);
static int tls_send(stream__conn *c);

/* A pooled out buffer keeps its capacity after the pool's link. */
typedef struct out_block {
    void *next;
    size_t cap;
} out_block;

void stream__req_out_get(stream__req *r)
{
    if (r->out.data != NULL)
        return;
    out_block *blk = stream__pool_get(&r->conn->broker->out_pool);
    if (blk != NULL) {
        r->out.cap = blk->cap;
        r->out.data = (uint8_t *)blk;
        r->out.len = 0;
        r->out.oom = false;
    }
}

void stream__req_out_put(stream__req *r)
{
    stream_buf *out = &r->out;
    if (out->data != NULL && !out->oom && out->cap >= sizeof(out_block) &&
        out->cap <= SPARE_OUT_MAX) {
        out_block *blk = (out_block *)out->data;
        blk->cap = out->cap;
        stream__pool_put(&r->conn->broker->out_pool, blk);
        stream_buf_init(out);
        return;
    }
    stream_buf_release(out);
}

stream__req *stream__req_new(stream__conn *c)
{
    stream__req *r = stream__pool_alloc(&c->broker->req_pool, sizeof(*r));
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    stream_buf_init(&r->out);
    r->conn = c;
    stream__req_out_get(r);
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->pending++;
    return r;
}

void stream__req_drop_files(stream__req *r)
{
    for (size_t i = 0; i < r->nfiles; i++)
        stream_log_slice_release(&r->files[i].sl);
    free(r->files);
    r->files = NULL;
    r->nfiles = r->files_cap = 0;
    r->file_bytes = 0;
}

int stream__req_add_file(stream__req *r, stream_log_slice *sl, stream_log *log)
{
    if (r->nfiles == r->files_cap) {
        size_t cap = r->files_cap ? r->files_cap * 2 : 4;
        stream__fpiece *nf = realloc(r->files, cap * sizeof(*nf));
        if (nf == NULL) {
            stream_log_slice_release(sl);
            return STREAM_ENOMEM;
        }
        r->files = nf;
        r->files_cap = cap;
    }
    r->files[r->nfiles].at = r->out.len;
    r->files[r->nfiles].sl = *sl;
    r->files[r->nfiles].log = log;
    r->nfiles++;
    r->file_bytes += sl->len;
    memset(sl, 0, sizeof(*sl)); /* the pin is the request's now */
    return 0;
}

static void req_free(stream__req *r)
{
    if (r->native_done != NULL && r->native_release != NULL)
        r->native_release(r->native_arg);
    stream__req_drop_files(r);
    free(r->chunk);
    stream_buf_release(&r->out);
    free(r);
}

/* r has been written: it and its out buffer (when small) go back to the
 * broker's pools for the next requests, of any connection. */
static void req_recycle(stream__conn *c, stream__req *r)
{
    stream__req_drop_files(r);
    free(r->chunk);
    r->chunk = NULL;
    stream__req_out_put(r);
    stream__pool_put(&c->broker->req_pool, r);
}

static void on_close(uv_handle_t *h)
{
    stream__conn *c = h->data;
    stream_broker *b = c->broker;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->nconns--;
    stream_frame_reader_release(&c->fr);
    stream_msg_release(&c->msg);
    stream_tls_free(c->tls);
    free(c);
    stream__broker_conn_gone(b);
}

void stream__conn_close(stream__conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s closed",
                 (unsigned long long)c->id, c->peer);
    if (!c->broker->svc_stopped)
        stream__services_conn_closed(c->broker, c->id);
    stream__admin_conn_closed(c->broker, c->id);
    /* Requests not yet written are dropped; parked ones leave their queues. */
    stream__req *r = c->head;
    while (r) {
        stream__req *next = r->next;
        if (r->waiter)
            stream__waiter_cancel(r->waiter);
        req_free(r);
        r = next;
    }
    c->head = c->tail = NULL;
    c->pending = 0;
    /* A response being written directly is freed here unless a part of it
     * is with libuv: then its write callback frees it. */
    if (c->sending && !c->sending->part_in_flight) {
        req_free(c->sending);
        c->sending = NULL;
    }
    /* Writes in flight get their callbacks (UV_ECANCELED) before on_close. */
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void stream__conn_break(stream__conn *c)
{
    c->broken = true;
    stream__conn_drain(c);
}

void stream__conn_stop(stream__conn *c)
{
    if (c->closing)
        return;
    if (c->processing) {
        stream__conn_drain(c);
        return;
    }
    /* Frames already read are answered first (ECLOSED: the broker is
     * stopping); process_frames then drains, since draining is set. */
    c->draining = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    process_frames(c);
}

void stream__conn_drain(stream__conn *c)
{
    c->draining = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->head == NULL && c->writes == 0 && c->sending == NULL)
        stream__conn_close(c);
}

static bool over_limits(const stream__conn *c)
{
    const stream__settings *s = &c->broker->set;
    return c->out_bytes > s->max_output_bytes || c->pending >= s->max_pending;
}

static bool under_resume_limits(const stream__conn *c)
{
    const stream__settings *s = &c->broker->set;
    return c->out_bytes <= s->max_output_bytes / 2 && c->pending < s->max_pending / 2 + 1;
}

static void swap_readers(stream_frame_reader *a, stream_frame_reader *b)
{
    stream_frame_reader t = *a;
    *a = *b;
    *b = t;
}

/* The end of a read: the broker's buffer goes back unless bytes are left in
 * it, in which case the connection keeps it and the broker has the
 * connection's empty reader instead (see stream_broker.rfr). */
static void return_reader(stream__conn *c)
{
    if (!c->fr_borrowed)
        return;
    c->fr_borrowed = false;
    if (stream_frame_reader_pending(&c->fr) == 0 && c->fr.err == 0)
        swap_readers(&c->fr, &c->broker->rfr);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    stream__conn *c = h->data;
    uint8_t *p;
    size_t n;
    if (c->tls != NULL) {
        tls_alloc(c, buf);
        return;
    }
    if (!c->fr_borrowed && stream_frame_reader_pending(&c->fr) == 0 && c->fr.err == 0) {
        swap_readers(&c->fr, &c->broker->rfr);
        c->fr_borrowed = true;
    }
    /* The reader grows only as bytes arrive, never on a frame's promise. */
    if (stream_frame_reader_prepare(&c->fr, READ_CHUNK, &p, &n) != 0) {
        buf->base = NULL;
        buf->len = 0; /* read_cb gets UV_ENOBUFS */
        return;
    }
    buf->base = (char *)p;
    buf->len = n;
}

static void read_bytes(stream__conn *c, ssize_t nread);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    stream__conn *c = s->data;
    if (c->tls != NULL && nread > 0) {
        tls_read(c, nread);
        return;
    }
    read_bytes(c, nread);
    return_reader(c);
}

static void read_bytes(stream__conn *c, ssize_t nread)
{
    if (c->closing)
        return;
    if (nread == 0)
        return; /* EAGAIN */
    if (nread < 0) {
        if (nread == UV_EOF) {
            size_t left = stream_frame_reader_pending(&c->fr);
            if (left > 0 && !c->paused)
                stream__blog(c->broker, STREAM_BROKER_DEBUG,
                             "connection %llu from %s: end of stream inside a frame "
                             "(%zu bytes dropped)",
                             (unsigned long long)c->id, c->peer, left);
            c->eof = true;
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = false;
            }
            /* Whole frames still buffered (paused) are answered first. */
            process_frames(c);
        } else {
            stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s: %s",
                         (unsigned long long)c->id, c->peer, uv_strerror((int)nread));
            stream__conn_close(c);
        }
        return;
    }
    c->last_active_ms = uv_now(&c->broker->loop);
    char err[256];
    int rc = stream_frame_reader_commit(&c->fr, (size_t)nread, err, sizeof(err));
    if (rc != 0 && rc != STREAM_EPROTO && rc != STREAM_ETOOLARGE) {
        stream__conn_close(c); /* ENOMEM */
        return;
    }
    /* A bad length is reported by _next once the frames before it are taken. */
    process_frames(c);
}

static void pause_reading(stream__conn *c)
{
    if (!c->paused) {
        stream__blog(c->broker, STREAM_BROKER_DEBUG,
                     "connection %llu from %s: pausing reads (%zu bytes queued, %zu requests "
                     "pending)",
                     (unsigned long long)c->id, c->peer, c->out_bytes, c->pending);
        c->paused = true;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
    }
}

static void start_reading(stream__conn *c)
{
    if (c->reading || c->closing || c->draining || c->eof || c->paused)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
    else
        stream__conn_close(c);
}

/* Queues a last response (id 0: the connection-level error) and closes the
 * connection once everything before it is written. */
static void fail_connection(stream__conn *c, int err, const char *msg)
{
    stream__blog(c->broker, STREAM_BROKER_WARN, "connection %llu from %s: %s; closing",
                 (unsigned long long)c->id, c->peer, msg);
    /* A service's protocol has no frame of ours to carry the error. */
    stream__req *r = c->xl == NULL ? stream__req_new(c) : NULL;
    if (r) {
        if (stream_frame_error_response(&r->out, 0, err, msg) != 0)
            r->out.len = 0;
        r->close_after = true;
        stream__req_complete(r);
    }
    stream__conn_break(c);
}

/* Hands a frame of a service listener's connection to its handler; closes
 * the connection (after what is queued) when the handler refuses it or the
 * broker is stopping. Returns 0 or the error. */
static int xdispatch(stream__conn *c, uint8_t *frame, size_t len)
{
    stream__req *r = stream__req_new(c);
    if (r == NULL) {
        stream__conn_close(c);
        return STREAM_ENOMEM;
    }
    int rc = c->broker->stopping ? STREAM_ECLOSED : c->xl->handle(c->xl->svc, r, frame, len);
    if (rc != 0 && !c->closing) {
        r->out.len = 0;
        r->close_after = true;
        stream__req_complete(r);
        stream__conn_break(c);
    }
    return rc;
}

/* Consumes every complete frame the reader holds, unless backpressure pauses
 * the connection first; the rest stays buffered. */
static void process_frames(stream__conn *c)
{
    c->processing = true;
    while (!c->closing && !c->broken) {
        if (over_limits(c)) {
            pause_reading(c);
            break;
        }
        const uint8_t *p;
        size_t n;
        int rc = stream_frame_reader_next(&c->fr, &p, &n);
        if (rc == 0)
            break;
        if (rc < 0) {
            char msg[160];
            uint8_t len_be[4];
            stream_store_be32(len_be, (uint32_t)c->fr.refused_len);
            if (rc != 0 && stream_tls_looks_like_record(len_be, sizeof(len_be)))
                snprintf(msg, sizeof(msg),
                         "a TLS handshake on a plain-text listener (the broker has no "
                         "--tls-cert): connect without --tls");
            else if (rc == STREAM_ETOOLARGE)
                snprintf(msg, sizeof(msg),
                         "frame of %lu bytes exceeds socket.request.max.bytes (%zu)",
                         (unsigned long)c->fr.refused_len, c->broker->set.max_request_bytes);
            else if (rc == STREAM_EPROTO)
                snprintf(msg, sizeof(msg), "invalid frame length %lu",
                         (unsigned long)c->fr.refused_len);
            else
                snprintf(msg, sizeof(msg), "%s", stream_strerror(rc));
            fail_connection(c, rc, msg);
            break;
        }
        /* The reader's buffer is ours and writable; produce stamps base
         * offsets into the batches in place. */
        uint8_t *frame = (uint8_t *)(uintptr_t)p;
        if ((c->xl != NULL ? xdispatch(c, frame, n) : stream__dispatch(c, frame, n)) != 0)
            break; /* dispatch queued the error and drained the connection */
    }
    c->processing = false;
    if (c->closing)
        return;
    if (over_limits(c))
        pause_reading(c);
    else
        start_reading(c);
    /* At end of stream, frames held back by a pause are answered first. */
    if (c->draining || (c->eof && !c->paused))
        stream__conn_drain(c);
    conn_flush(c);
}

/* Lifts a pause once the backlog has halved, consuming frames already
 * buffered before reading more. */
static void maybe_resume(stream__conn *c)
{
    if (c->processing || c->closing || !c->paused || !under_resume_limits(c))
        return;
    c->paused = false;
    process_frames(c);
}

/* The end of a flush: close a draining connection with nothing left to
 * write, else pause or resume reading by the backlog. */
static void after_flush(stream__conn *c)
{
    if (c->closing)
        return;
    if (c->draining && c->head == NULL && c->writes == 0 && c->sending == NULL) {
        stream__conn_close(c);
        return;
    }
    if (over_limits(c))
        pause_reading(c);
    else
        maybe_resume(c);
}

/* r has been written whole (or dropped). */
static void req_sent(stream__conn *c, stream__req *r)
{
    c->out_bytes -= r->held;
    req_recycle(c, r);
}

/* After a write finished: close when that was the last thing to do, else
 * write more and perhaps read again. */
static void after_write(stream__conn *c, bool close_after)
{
    c->last_active_ms = uv_now(&c->broker->loop);
    if (close_after) {
        stream__conn_close(c);
        return;
    }
    if (c->draining && c->head == NULL && c->writes == 0 && c->sending == NULL) {
        stream__conn_close(c);
        return;
    }
    if (c->writes == 0 && c->sending == NULL && c->head && c->head->done && c->head->nfiles > 0)
        conn_flush(c); /* a response with file pieces waited for libuv's queue to empty */
    else
        maybe_resume(c);
}

static void write_cb(uv_write_t *w, int status)
{
    stream__req *r = w->data;
    stream__conn *c = r->conn;
    c->writes--;
    if (r == c->sending) {
        /* A part of a directly written response: go on with the rest. */
        r->part_in_flight = false;
        free(r->chunk);
        r->chunk = NULL;
        if (c->closing) {
            c->sending = NULL;
            req_sent(c, r);
            return;
        }
        if (status < 0) {
            stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s: write: %s",
                         (unsigned long long)c->id, c->peer, uv_strerror(status));
            stream__conn_close(c);
            return;
        }
        c->last_active_ms = uv_now(&c->broker->loop);
        conn_flush(c);
        return;
    }
    bool close_after = r->close_after;
    req_sent(c, r);
    if (c->closing)
        return;
    if (status < 0) {
        stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s: write: %s",
                     (unsigned long long)c->id, c->peer, uv_strerror(status));
        stream__conn_close(c);
        return;
    }
    after_write(c, close_after);
}

/* Hands the part p[0..n) of c->sending to libuv, which writes it when the
 * socket has room and then calls write_cb. 0, or -1 (connection closed). */
static int send_part(stream__conn *c, stream__req *r, const uint8_t *p, size_t n)
{
    uv_buf_t ub = uv_buf_init((char *)(uintptr_t)p, (unsigned int)n);
    r->write.data = r;
    if (uv_write(&r->write, (uv_stream_t *)&c->tcp, &ub, 1, write_cb) != 0) {
        stream__conn_close(c);
        return -1;
    }
    r->part_in_flight = true;
    c->writes++;
    return 0;
}

/* The segment file of r's current piece could not be read: the
 * partition's later fetches pread and check its batches instead of sending
 * the file, so that a read error there fails that partition only
 * (broker_data.c). */
static void distrust_piece(stream__conn *c, stream__req *r)
{
    stream__pstate *ps = stream__pstate_get(c->broker, r->files[r->piece].log, false);
    if (ps != NULL)
        ps->trusted_from = INT64_MAX;
}

/* Writes c->sending (a response with file pieces) straight to the socket:
 * its out bytes with send(), the file pieces with sendfile(), so the stored
 * batches go from the page cache to the socket without a copy through this
 * process. Only runs while libuv has nothing queued on the socket (writes
 * == 0), so bytes never overtake each other. Returns 1 when all is written,
 * 0 when a part is with libuv (the socket was full; write_cb goes on), -1
 * when the connection was closed. */
static int send_direct(stream__conn *c, stream__req *r)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
        stream__conn_close(c);
        return -1;
    }
    for (;;) {
        size_t mem_end = r->piece < r->nfiles ? r->files[r->piece].at : r->out.len;
        if (r->sent_out < mem_end) {
            /* MSG_MORE: file bytes follow, so the header waits for them
             * rather than leaving in a packet of its own. */
            int flags = MSG_NOSIGNAL | (r->piece < r->nfiles ? MSG_MORE : 0);
            ssize_t n = send(fd, r->out.data + r->sent_out, mem_end - r->sent_out, flags);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                const uint8_t *p = r->out.data + r->sent_out;
                size_t len = mem_end - r->sent_out;
                r->sent_out = mem_end;
                return send_part(c, r, p, len);
            }
            if (n < 0)
                goto broken;
            r->sent_out += (size_t)n;
            continue;
        }
        if (r->piece == r->nfiles)
            return 1;
        stream__fpiece *fp = &r->files[r->piece];
        if (r->piece_sent == fp->sl.len) {
            r->piece++;
            r->piece_sent = 0;
            continue;
        }
        size_t left = fp->sl.len - r->piece_sent;
        off_t pos = fp->sl.pos + (off_t)r->piece_sent;
        ssize_t n = sendfile(fd, fp->sl.fd, &pos, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            size_t len = left < PART_CHUNK ? left : PART_CHUNK;
            r->chunk = malloc(len);
            if (r->chunk == NULL)
                goto broken;
            size_t done = 0;
            while (done < len) {
                ssize_t k = pread(fp->sl.fd, r->chunk + done, len - done,
                                  fp->sl.pos + (off_t)(r->piece_sent + done));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    errno = k < 0 ? errno : 0;
                    goto file_error;
                }
                done += (size_t)k;
            }
            r->piece_sent += len;
            return send_part(c, r, r->chunk, len);
        }
        if (n == 0) {
            errno = 0;
            goto file_error; /* the file is shorter than its slice said */
        }
        if (n < 0) {
            /* The socket failed, or (EIO) the file: either way the frame
             * cannot be finished. */
            if (errno == EIO || errno == EINVAL)
                goto file_error;
            goto broken;
        }
        r->piece_sent += (size_t)n;
    }
file_error:
    /* Part of the frame is on the wire: the only way out is to close. */
    stream__blog(c->broker, STREAM_BROKER_ERROR,
                 "connection %llu from %s: cannot read a segment file for a fetch response (%s); "
                 "closing the connection",
                 (unsigned long long)c->id, c->peer, errno ? strerror(errno) : "short file");
    distrust_piece(c, r);
    stream__conn_close(c);
    return -1;
broken:
    stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s: write: %s",
                 (unsigned long long)c->id, c->peer, strerror(errno));
    stream__conn_close(c);
    return -1;
}

/* Writes done requests from the head of the queue, in order. */
static void conn_flush(stream__conn *c)
{
    if (c->tls != NULL) {
        tls_flush(c);
        return;
    }
    if (c->sending && !c->closing) {
        if (c->sending->part_in_flight)
            return; /* write_cb goes on */
        stream__req *r = c->sending;
        int rc = send_direct(c, r);
        if (rc <= 0)
            return;
        c->sending = NULL;
        bool close_after = r->close_after;
        req_sent(c, r);
        if (close_after) {
            stream__conn_close(c);
            return;
        }
    }
    while (!c->closing && c->head && c->head->done) {
        stream__req *r = c->head;
        if (r->nfiles > 0 && c->writes > 0)
            break; /* after libuv has written what is queued: write_cb calls us */
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->pending--;
        r->next = NULL;
        if (r->silent || (r->out.len == 0 && r->nfiles == 0)) {
            req_sent(c, r);
            continue;
        }
        if (r->nfiles > 0) {
            c->sending = r;
            int rc = send_direct(c, r);
            if (rc < 0)
                return;
            if (rc == 0)
                break;
            c->sending = NULL;
            bool close_after = r->close_after;
            req_sent(c, r);
            c->last_active_ms = uv_now(&c->broker->loop);
            if (close_after) {
                stream__conn_close(c);
                return;
            }
            continue;
        }
        uv_buf_t ub = uv_buf_init((char *)r->out.data, (unsigned int)r->out.len);
        if (c->writes == 0) {
            /* Most responses fit in the socket at once. Written here they
             * cost libuv no write request, no deferred callback and no
             * POLLOUT round trip (one epoll_ctl per response); what does
             * not fit goes to uv_write, behind which nothing is tried. */
            int n = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
            if (n == (int)ub.len) {
                bool close_after = r->close_after;
                req_sent(c, r);
                c->last_active_ms = uv_now(&c->broker->loop);
                if (close_after) {
                    stream__conn_close(c);
                    return;
                }
                continue;
            }
            if (n > 0) {
                ub.base += n;
                ub.len -= (size_t)n;
            }
        }
        r->write.data = r;
        int rc = uv_write(&r->write, (uv_stream_t *)&c->tcp, &ub, 1, write_cb);
        if (rc != 0) {
            req_free(r);
            stream__conn_close(c);
            return;
        }
        c->writes++;
        if (r->close_after) {
            /* Nothing after an error that closes the connection is sent. */
            stream__conn_break(c);
            break;
        }
    }
    after_flush(c);
}

void stream__req_complete(stream__req *r)
{
    stream__conn *c = r->conn;
    if (r->native_done != NULL && !c->closing) {
        /* A native op's answer, for the service to translate: it writes
         * the real response into a fresh r->out and completes r again. */
        stream__native_done_fn done = r->native_done;
        void *arg = r->native_arg;
        r->native_done = NULL;
        stream_buf native = r->out;
        stream_buf_init(&r->out);
        bool whole = !native.oom && native.len >= 4;
        done(arg, r, whole ? native.data + 4 : NULL, whole ? native.len - 4 : 0);
        stream_buf_release(&native);
        return;
    }
    r->done = true;
    r->waiter = NULL;
    if (r->op != STREAM_OP_UNKNOWN) {
        stream__metrics_request(c->broker, r);
        r->op = STREAM_OP_UNKNOWN; /* once */
    }
    /* Counted from now, not from its write: a response finished behind a
     * slow one (a long poll at the head) is memory held all the same. File
     * pieces count too: they pin segments, and the bound is about what a
     * client that stops reading can make the broker hold. */
    r->held = r->out.len + r->file_bytes;
    c->out_bytes += r->held;
    if (c->closing)
        return;
    stream_broker *b = c->broker;
    if (b->defer_flush) {
        if (!c->flush_queued) {
            c->flush_queued = true;
            c->flush_next = b->flush_list;
            b->flush_list = c;
        }
        return;
    }
    conn_flush(c);
}

void stream__conn_defer_flush(stream_broker *b, bool on)
{
    b->defer_flush = on;
    if (on)
        return;
    /* Connections are freed only by uv_close's callback, which cannot have
     * run since they were queued: every one is still there (perhaps
     * closing). */
    while (b->flush_list) {
        stream__conn *c = b->flush_list;
        b->flush_list = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = false;
        if (!c->closing)
            conn_flush(c);
    }
}

/* Logs why a connection was refused, or only counts it when a warning went
 * out less than REFUSE_WARN_MS ago; the next warning says how many were
 * refused in between. */
static void warn_refused(stream_broker *b, const char *peer, const char *why)
{
    uint64_t now = uv_now(&b->loop);
    if (now < b->refuse_warn_next_ms) {
        b->refused_quiet++;
        return;
    }
    if (b->refused_quiet > 0)
        stream__blog(b, STREAM_BROKER_WARN,
                     "refusing connection from %s: %s (and %llu more since the last warning)", peer,
                     why, (unsigned long long)b->refused_quiet);
    else
        stream__blog(b, STREAM_BROKER_WARN, "refusing connection from %s: %s", peer, why);
    b->refused_quiet = 0;
    b->refuse_warn_next_ms = now + REFUSE_WARN_MS;
}

/* True when a connection on descriptor fd would eat into the descriptors
 * kept for the broker's files; `why` then says so. The kernel hands out the
 * lowest free descriptor, so refusing every connection whose descriptor is
 * at or above limit - reserve keeps that top range for files, exactly. */
static bool fds_short(uv_os_fd_t fd, char *why, size_t why_len)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return false;
    rlim_t reserve = rl.rlim_cur / 4 < FD_RESERVE_MAX ? rl.rlim_cur / 4 : FD_RESERVE_MAX;
    if (fd < 0 || (rlim_t)fd + reserve < rl.rlim_cur)
        return false;
    snprintf(why, why_len,
             "too many open files (descriptor %d of the limit of %llu, the last %llu kept "
             "for the broker's files; raise ulimit -n)",
             (int)fd, (unsigned long long)rl.rlim_cur, (unsigned long long)reserve);
    return true;
}

static void accept_conn(stream_broker *b, uv_stream_t *server, stream__xlistener *xl, int status);

void stream__conn_on_connection(uv_stream_t *server, int status)
{
    accept_conn(server->data, server, NULL, status);
}

void stream__conn_on_xconnection(uv_stream_t *server, int status)
{
    stream__xlistener *xl = server->data;
    accept_conn(xl->broker, server, xl, status);
}

static void accept_conn(stream_broker *b, uv_stream_t *server, stream__xlistener *xl, int status)
{
    if (status < 0) {
        /* EMFILE/ENFILE: libuv has already accepted and closed what was
         * pending (its reserve-descriptor trick), so this does not spin. */
        warn_refused(b, "?", uv_strerror(status));
        return;
    }
    stream__conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        /* Accept into a throwaway handle is not possible without memory; the
         * connection stays in the backlog until memory returns. */
        stream__blog(b, STREAM_BROKER_ERROR, "accept: out of memory");
        return;
    }
    c->broker = b;
    c->xl = xl;
    stream_frame_reader_init(&c->fr, b->set.max_request_bytes);
    stream_frame_reader_keep(&c->fr, STREAM__READ_KEEP_BYTES);
    stream_msg_init(&c->msg);
    uv_tcp_init(&b->loop, &c->tcp);
    c->tcp.data = c;
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->nconns++;
    c->id = ++b->next_conn_id;
    c->last_active_ms = uv_now(&b->loop);
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        stream__conn_close(c);
        return;
    }
    b->metrics.conns_accepted++;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            uv_ip4_name(sin, host, sizeof(host));
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(sin6, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    }
    if (b->stopping) {
        stream__conn_close(c);
        return;
    }
    /* The new connection is already counted. */
    char why[200];
    if (b->set.max_connections > 0 && b->nconns > b->set.max_connections) {
        snprintf(why, sizeof(why), "max.connections (%d) reached", b->set.max_connections);
        warn_refused(b, c->peer, why);
        stream__conn_close(c);
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && fds_short(fd, why, sizeof(why))) {
        warn_refused(b, c->peer, why);
        stream__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (b->tls_ctx != NULL && stream_tls_new(b->tls_ctx, NULL, &c->tls) != 0) {
        stream__blog(b, STREAM_BROKER_ERROR, "accept: out of memory for a TLS session");
        stream__conn_close(c);
        return;
    }
    stream__blog(b, STREAM_BROKER_DEBUG, "connection %llu from %s%s", (unsigned long long)c->id,
                 c->peer, c->tls != NULL ? " (TLS)" : "");
    start_reading(c);
}

void stream__conns_sweep_idle(stream_broker *b)
{
    uint64_t now = uv_now(&b->loop);
    stream__conn *c = b->conns;
    while (c) {
        stream__conn *next = c->next;
        /* A read buffer grown for large requests is given back once its
         * connection has sent nothing for a while (not per request: see
         * STREAM__READ_KEEP_BYTES). */
        if (!c->fr_borrowed && now - c->last_active_ms > READ_TRIM_MS)
            stream_frame_reader_trim(&c->fr);
        bool quiet = b->set.idle_ms > 0 && now - c->last_active_ms > (uint64_t)b->set.idle_ms;
        /* A connection waiting on the broker (a long poll at the head of its
         * queue, nothing being written) is not idle. One with responses
         * handed to the socket that the client has not taken for as long is
         * stalled: it holds up to max_output_bytes of broker memory for a
         * client that stopped reading, so it goes too. */
        if (!c->closing && quiet && c->writes > 0) {
            stream__blog(b, STREAM_BROKER_INFO,
                         "closing connection %llu from %s: its responses were not read for "
                         "over %lld ms (%zu bytes queued)",
                         (unsigned long long)c->id, c->peer, (long long)b->set.idle_ms,
                         c->out_bytes);
            stream__conn_close(c);
        } else if (!c->closing && quiet && c->head == NULL) {
            stream__blog(b, STREAM_BROKER_DEBUG,
                         "closing connection %llu from %s: idle for over %lld ms",
                         (unsigned long long)c->id, c->peer, (long long)b->set.idle_ms);
            stream__conn_close(c);
        }
        c = next;
    }
}

/* ---- TLS ------------------------------------------------------------------ */

/* Ciphertext on its way to the socket. */
typedef struct tls_block {
    uv_write_t write;  /* the uv_write carrying data */
    stream__conn *c;   /* the connection it is for */
    size_t len;        /* bytes of data */
    uint8_t data[];    /* the ciphertext */
} tls_block;

static void tls_alloc(stream__conn *c, uv_buf_t *buf)
{
    stream_broker *b = c->broker;
    if (b->tls_in == NULL)
        b->tls_in = malloc(READ_CHUNK);
    *buf = uv_buf_init((char *)b->tls_in, b->tls_in != NULL ? READ_CHUNK : 0);
}

/* Logs why c's session failed, sends its alert and closes c after what is
 * queued for the socket. */
static void tls_fail(stream__conn *c)
{
    const char *why = stream_tls_error(c->tls);
    stream__blog(c->broker, STREAM_BROKER_WARN, "connection %llu from %s: %s; closing",
                 (unsigned long long)c->id, c->peer, why);
    c->broken = true;
    c->tls_last = true;
    tls_flush(c);
    if (!c->closing)
        stream__conn_drain(c);
}

static void tls_read(stream__conn *c, ssize_t nread)
{
    if (c->closing || c->broken)
        return;
    c->last_active_ms = uv_now(&c->broker->loop);
    if (!c->tls_started) {
        c->tls_started = true;
        /* (Fewer than 3 bytes cannot tell: the session will.) */
        if (nread >= 3 && !stream_tls_looks_like_record(c->broker->tls_in, (size_t)nread)) {
            tls_refuse_plain(c);
            return;
        }
    }
    if (stream_tls_feed(c->tls, c->broker->tls_in, (size_t)nread) != 0) {
        stream__conn_close(c);
        return;
    }
    for (;;) {
        uint8_t *p;
        size_t n;
        if (stream_frame_reader_prepare(&c->fr, READ_CHUNK, &p, &n) != 0) {
            stream__conn_close(c); /* ENOMEM */
            return;
        }
        long got = stream_tls_read(c->tls, p, n);
        if (got == 0)
            break;
        if (got == STREAM_ECLOSED) {
            tls_flush(c);
            read_bytes(c, UV_EOF);
            return;
        }
        if (got < 0) {
            tls_fail(c);
            return;
        }
        char err[256];
        int rc = stream_frame_reader_commit(&c->fr, (size_t)got, err, sizeof(err));
        if (rc != 0 && rc != STREAM_EPROTO && rc != STREAM_ETOOLARGE) {
            stream__conn_close(c); /* ENOMEM */
            return;
        }
    }
    /* Handshake records (or nothing) go out; then the frames, as in plain
     * text. */
    tls_flush(c);
    if (!c->closing)
        process_frames(c);
}

static void tls_write_cb(uv_write_t *w, int status)
{
    tls_block *blk = (tls_block *)w;
    stream__conn *c = blk->c;
    c->writes--;
    c->tls_out_bytes -= blk->len;
    c->out_bytes -= blk->len;
    free(blk);
    if (c->closing)
        return;
    if (status < 0) {
        stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s: write: %s",
                     (unsigned long long)c->id, c->peer, uv_strerror(status));
        stream__conn_close(c);
        return;
    }
    c->last_active_ms = uv_now(&c->broker->loop);
    tls_flush(c);
}

/* Writes blk to c's socket: what the socket takes at once, the rest
 * through uv_write (counted in out_bytes until written); blk is freed once
 * written. Returns 0, or -1 when c was closed. */
static int tls_block_send(stream__conn *c, tls_block *blk)
{
    uv_buf_t ub = uv_buf_init((char *)blk->data, (unsigned int)blk->len);
    if (c->writes == 0) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
        if (w == (int)ub.len) {
            free(blk);
            c->last_active_ms = uv_now(&c->broker->loop);
            return 0;
        }
        if (w > 0) {
            ub.base += w;
            ub.len -= (size_t)w;
            blk->len = ub.len;
        }
    }
    if (uv_write(&blk->write, (uv_stream_t *)&c->tcp, &ub, 1, tls_write_cb) != 0) {
        free(blk);
        stream__conn_close(c);
        return -1;
    }
    c->writes++;
    c->tls_out_bytes += blk->len;
    c->out_bytes += blk->len;
    return 0;
}

/* A block of n bytes for c, or NULL (c closed: out of memory). */
static tls_block *tls_block_new(stream__conn *c, size_t n)
{
    tls_block *blk = malloc(sizeof(*blk) + n);
    if (blk == NULL) {
        stream__conn_close(c);
        return NULL;
    }
    blk->c = c;
    blk->len = n;
    return blk;
}

/* Sends the ciphertext c's session holds. 0, or -1 when c was closed. */
static int tls_send(stream__conn *c)
{
    size_t n = stream_tls_out_pending(c->tls);
    if (n == 0)
        return 0;
    tls_block *blk = tls_block_new(c, n);
    if (blk == NULL)
        return -1;
    blk->len = stream_tls_out_take(c->tls, blk->data, n);
    return tls_block_send(c, blk);
}

/* A native client that speaks plain text to the TLS listener gets a plain
 * error frame it can show (a service's client: nothing it could read), and
 * the connection closes. */
static void tls_refuse_plain(stream__conn *c)
{
    stream__blog(c->broker, STREAM_BROKER_WARN,
                 "connection %llu from %s: plain text on the TLS listener; closing",
                 (unsigned long long)c->id, c->peer);
    c->broken = true;
    c->tls_last = true;
    stream_buf out;
    stream_buf_init(&out);
    if (c->xl == NULL &&
        stream_frame_error_response(&out, 0, STREAM_ETLS,
                                    "this broker speaks TLS on this port: connect with --tls "
                                    "(and --cacert FILE for its CA)") == 0 &&
        !out.oom) {
        tls_block *blk = tls_block_new(c, out.len);
        if (blk == NULL) {
            stream_buf_release(&out);
            return;
        }
        memcpy(blk->data, out.data, out.len);
        if (tls_block_send(c, blk) != 0) {
            stream_buf_release(&out);
            return;
        }
    }
    stream_buf_release(&out);
    stream__conn_drain(c);
}

/* Encrypts r's response into c's session: out bytes and file pieces in
 * order, each piece read into the broker's tls_chunk. 0, or a negative
 * code (a file that cannot be read: errno says why; the session failed). */
static int tls_encrypt(stream__conn *c, stream__req *r)
{
    stream_broker *b = c->broker;
    size_t at = 0;
    for (r->piece = 0; r->piece <= r->nfiles; r->piece++) {
        size_t end = r->piece < r->nfiles ? r->files[r->piece].at : r->out.len;
        if (end > at && stream_tls_write(c->tls, r->out.data + at, end - at) != 0)
            return STREAM_ETLS;
        at = end;
        if (r->piece == r->nfiles)
            break;
        if (b->tls_chunk == NULL && (b->tls_chunk = malloc(TLS_CHUNK)) == NULL)
            return STREAM_ENOMEM;
        stream__fpiece *fp = &r->files[r->piece];
        for (size_t done = 0; done < fp->sl.len;) {
            size_t want = fp->sl.len - done < TLS_CHUNK ? fp->sl.len - done : TLS_CHUNK;
            ssize_t k = pread(fp->sl.fd, b->tls_chunk, want, fp->sl.pos + (off_t)done);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                errno = k < 0 ? errno : 0;
                return STREAM_EIO;
            }
            if (stream_tls_write(c->tls, b->tls_chunk, (size_t)k) != 0)
                return STREAM_ETLS;
            done += (size_t)k;
            /* On the wire at once: the client decrypts this while the
             * rest is read and encrypted. */
            if (tls_send(c) != 0)
                return STREAM_ECLOSED;
        }
    }
    return 0;
}

/* conn_flush for a TLS connection: encrypts done responses from the head of
 * the queue, in order, while less than half of max_output_bytes of
 * ciphertext waits for the socket, and sends them. */
static void tls_flush(stream__conn *c)
{
    if (c->closing)
        return;
    while (!c->tls_last && stream_tls_ready(c->tls) && c->head && c->head->done &&
           c->tls_out_bytes <= c->broker->set.max_output_bytes / 2) {
        stream__req *r = c->head;
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->pending--;
        r->next = NULL;
        int rc = 0;
        if (!r->silent && (r->out.len > 0 || r->nfiles > 0))
            rc = tls_encrypt(c, r);
        if (rc == STREAM_EIO) {
            stream__blog(c->broker, STREAM_BROKER_ERROR,
                         "connection %llu from %s: cannot read a segment file for a fetch "
                         "response (%s); closing the connection",
                         (unsigned long long)c->id, c->peer,
                         errno ? strerror(errno) : "short file");
            distrust_piece(c, r);
        }
        bool close_after = r->close_after;
        req_sent(c, r);
        if (rc == STREAM_ECLOSED)
            return; /* tls_send closed it */
        if (rc != 0) {
            stream__conn_close(c);
            return;
        }
        if (tls_send(c) != 0)
            return;
        if (close_after) {
            c->tls_last = true;
            stream__conn_break(c);
            break;
        }
    }
    if (tls_send(c) != 0)
        return;
    if (c->tls_last && c->writes == 0) {
        stream__conn_close(c);
        return;
    }
    after_flush(c);
}
