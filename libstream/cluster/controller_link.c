/*
 * controller_link.c - a broker's connection to the controller: the native
 * protocol to the quorum leader's client port (its address from the
 * metadata: the leader registers itself first). It carries the broker's
 * registration and heartbeats, the replica manager's alter_isr, and the
 * admin requests a non-controller forwards. Requests are pipelined and
 * answered by id; a closed link fails every call with ECONNRESET, a call
 * unanswered by its deadline fails with ETIMEDOUT (the answer, if it comes
 * later, is dropped).
 *
 * The link stays open while its leader leads: the controller fences a
 * broker whose link closes (kill -9 closes it at once), which is what makes
 * failover quick.
 *
 * When the broker serves TLS the link does too (host_tls.c): the
 * controller's certificate must name the address connected to, and hello
 * waits for the handshake.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller_internal.h"

#define LINK_MAX_FRAME (64u << 20)

static controller *of_link(ctl_link *l)
{
    return (controller *)((char *)l - offsetof(controller, lk));
}

/* Calls every awaited callback with err and forgets them. */
static void fail_calls(controller *ctl, int err, const char *msg)
{
    ctl_link *l = &ctl->lk;
    while (l->ncalls > 0) {
        ctl_link_call c = l->calls[--l->ncalls];
        c.cb(ctl, c.arg, err, msg, msg ? strlen(msg) : 0, NULL);
    }
}

static void on_close(uv_handle_t *h)
{
    ctl_link *l = h->data;
    stream_buf_release(&l->out);
    stream_buf_release(&l->queued);
    stream_frame_reader_release(&l->fr);
    stream_msg_release(&l->msg);
    stream__host_tls_link_release(&l->tl);
    l->open = false;
    l->closing = false;
}

void ctl_link_close(controller *ctl)
{
    ctl_link *l = &ctl->lk;
    if (!l->open || l->closing)
        return;
    l->closing = true;
    l->connected = false;
    l->writing = false;
    uv_close((uv_handle_t *)&l->tcp, on_close);
    fail_calls(ctl, STREAM_ECONNRESET, "the link to the controller closed");
}

/* The peer closed the link or refused it: remembered, as a sign that the
 * leader it pointed at is gone (a new controller uses it, see
 * controller.c), then closed. */
static void lost(controller *ctl)
{
    ctl->link_lost_leader = ctl->lk.leader;
    ctl_link_close(ctl);
    ctl_forget_controller(ctl);
}

static void start_write(controller *ctl);

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    ctl_link *l = h->data;
    uint8_t *p;
    size_t n;
    if (stream__host_tls_link_active(&l->tl)) {
        stream__host_tls_link_alloc(&l->tl, buf);
        return;
    }
    if (stream_frame_reader_prepare(&l->fr, hint, &p, &n) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)p, (unsigned)n);
}

/* One response: its call's callback. */
static void on_frame(controller *ctl, const uint8_t *p, size_t n)
{
    ctl_link *l = &ctl->lk;
    char eb[256];
    if (stream_msg_parse(p, n, &l->msg, eb, sizeof(eb)) != 0)
        return;
    uint64_t id;
    int err;
    const char *text;
    size_t text_len;
    if (stream_msg_response(&l->msg, &id, &err, &text, &text_len, eb, sizeof(eb)) != 0)
        return;
    for (size_t i = 0; i < l->ncalls; i++) {
        if (l->calls[i].id != id)
            continue;
        ctl_link_call c = l->calls[i];
        l->calls[i] = l->calls[--l->ncalls];
        c.cb(ctl, c.arg, err, text, text_len, &l->msg.root);
        return;
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    ctl_link *l = s->data;
    controller *ctl = of_link(l);
    if (n < 0) {
        lost(ctl);
        return;
    }
    if (n == 0)
        return;
    char eb[256];
    if (stream__host_tls_link_active(&l->tl)) {
        int rc = stream__host_tls_link_read(&l->tl, (size_t)n, &l->fr);
        if (rc < 0) {
            if (rc == STREAM_ETLS)
                stream__host_log(ctl->b, STREAM_BROKER_WARN, "link to the controller: %s",
                                 stream_tls_error(l->tl.tls));
            lost(ctl);
            return;
        }
        if (rc == 1)
            start_write(ctl); /* hello and what waited for the handshake */
    } else if (stream_frame_reader_commit(&l->fr, (size_t)n, eb, sizeof(eb)) != 0) {
        ctl_link_close(ctl);
        return;
    }
    const uint8_t *p;
    size_t len;
    int rc;
    while (l->open && !l->closing && (rc = stream_frame_reader_next(&l->fr, &p, &len)) == 1)
        on_frame(ctl, p, len);
}

static void on_write(uv_write_t *w, int status)
{
    ctl_link *l = w->data;
    controller *ctl = of_link(l);
    l->writing = false;
    stream_buf_reset(&l->out);
    if (status != 0) {
        if (status != UV_ECANCELED)
            lost(ctl);
        return;
    }
    start_write(ctl);
}

/* Writes the queued frames unless a write is in flight. */
static void start_write(controller *ctl)
{
    ctl_link *l = &ctl->lk;
    if (l->writing || !l->connected || l->queued.len == 0)
        return;
    if (stream__host_tls_link_active(&l->tl) && !stream__host_tls_link_ready(&l->tl))
        return; /* after the handshake */
    stream_buf tmp = l->out;
    l->out = l->queued;
    l->queued = tmp;
    stream_buf_reset(&l->queued);
    uv_buf_t ub = uv_buf_init((char *)l->out.data, (unsigned)l->out.len);
    l->write.data = l;
    if (stream__host_tls_link_active(&l->tl)) {
        if (stream__host_tls_link_write(&l->tl, &l->write, l->out.data, l->out.len, on_write) != 0) {
            ctl_link_close(ctl);
            return;
        }
    } else if (uv_write(&l->write, (uv_stream_t *)&l->tcp, &ub, 1, on_write) != 0) {
        ctl_link_close(ctl);
        return;
    }
    l->writing = true;
}

static void ignore_answer(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                          const msgpack_object *resp)
{
    (void)ctl, (void)arg, (void)err, (void)msg, (void)msg_len, (void)resp;
}

static void on_connect(uv_connect_t *req, int status)
{
    ctl_link *l = req->data;
    controller *ctl = of_link(l);
    if (l->closing)
        return;
    if (status != 0 || ctl->stopped) {
        if (status != 0)
            lost(ctl);
        else
            ctl_link_close(ctl);
        return;
    }
    l->connected = true;
    if (ctl->link_lost_leader == l->leader)
        ctl->link_lost_leader = -1; /* it is back */
    stream_tls_ctx *tls = stream__host_tls_client(ctl->b);
    if (tls != NULL &&
        stream__host_tls_link_start(&l->tl, tls, (uv_stream_t *)&l->tcp, l->host) != 0) {
        ctl_link_close(ctl);
        return;
    }
    if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) != 0) {
        ctl_link_close(ctl);
        return;
    }
    msgpack_packer *pk = ctl_link_begin(ctl, STREAM_OP_HELLO, 2, 5000, ignore_answer, NULL);
    if (pk == NULL)
        return;
    stream_pack_kv_uint(pk, "version", STREAM_PROTOCOL_VERSION);
    stream_pack_kv_cstr(pk, "client", "stream-broker controller link");
    ctl_link_end(ctl);
    /* Heartbeat at once: a new controller hears from this broker soon. */
    ctl->hb_last_sent = 0;
}

/* Connects to the leader's client address: from the metadata on a voter
 * (the leader registers itself first), as the voters told it on a
 * data-only broker. */
static void link_open(controller *ctl, int32_t leader)
{
    ctl_link *l = &ctl->lk;
    const char *host;
    uint16_t port;
    if (ctl->data_only) {
        host = ctl->ctl_host;
        port = ctl->ctl_port;
    } else {
        const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, leader);
        if (mb == NULL)
            return; /* not known here yet: next tick */
        host = mb->host;
        port = mb->port;
    }
    if (l->closing)
        return;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return;
    l->open = true;
    l->connected = false;
    l->writing = false;
    l->leader = leader;
    snprintf(l->host, sizeof(l->host), "%s", host);
    stream_buf_init(&l->out);
    stream_buf_init(&l->queued);
    stream_frame_reader_init(&l->fr, LINK_MAX_FRAME);
    stream_msg_init(&l->msg);
    uv_tcp_init(stream__host_loop(ctl->b), &l->tcp);
    uv_tcp_nodelay(&l->tcp, 1);
    l->tcp.data = l;
    l->connect.data = l;
    if (uv_tcp_connect(&l->connect, &l->tcp, (struct sockaddr *)&ss, on_connect) != 0)
        ctl_link_close(ctl);
}

void ctl_link_follow(controller *ctl)
{
    ctl_link *l = &ctl->lk;
    int32_t leader = ctl_leader(ctl);
    if (leader == ctl->node_id || ctl->stopped) {
        ctl_link_close(ctl);
        return;
    }
    /* No leader known for a moment (an election): keep the link, which the
     * controller takes for this broker's liveness, until another is known. */
    if (leader < 0)
        return;
    if (l->open && l->leader != leader)
        ctl_link_close(ctl);
    if (!l->open && !l->closing)
        link_open(ctl, leader);
}

msgpack_packer *ctl_link_begin(controller *ctl, stream_op op, size_t extra_fields,
                               uint64_t timeout_ms, ctl_link_cb cb, void *arg)
{
    ctl_link *l = &ctl->lk;
    if (!l->open || !l->connected || l->closing)
        return NULL;
    if (l->ncalls == l->cap_calls) {
        size_t cap = l->cap_calls ? l->cap_calls * 2 : 16;
        ctl_link_call *c = realloc(l->calls, cap * sizeof(*c));
        if (c == NULL)
            return NULL;
        l->calls = c;
        l->cap_calls = cap;
    }
    uint64_t id = ++l->next_id;
    l->calls[l->ncalls++] = (ctl_link_call){
        id,
        cb,
        arg,
        uv_now(stream__host_loop(ctl->b)) + timeout_ms,
    };
    stream_frame_start(&l->begun, &l->queued);
    stream_pack_request_header(&l->begun.pk, op, id, extra_fields);
    return &l->begun.pk;
}

int ctl_link_end(controller *ctl)
{
    ctl_link *l = &ctl->lk;
    int rc = stream_frame_finish(&l->begun);
    if (rc != 0) {
        ctl_link_call c = l->calls[--l->ncalls];
        c.cb(ctl, c.arg, rc, "cannot encode the request", 25, NULL);
        return rc;
    }
    start_write(ctl);
    return 0;
}

void ctl_link_expire(controller *ctl)
{
    ctl_link *l = &ctl->lk;
    uint64_t now = uv_now(stream__host_loop(ctl->b));
    for (size_t i = 0; i < l->ncalls;) {
        if (l->calls[i].deadline > now) {
            i++;
            continue;
        }
        ctl_link_call c = l->calls[i];
        l->calls[i] = l->calls[--l->ncalls];
        c.cb(ctl, c.arg, STREAM_ETIMEDOUT, "the controller did not answer in time", 37, NULL);
    }
}
