/*
 * controller.c - the cluster as a service of the broker (broker/host.h): runs
 * this node's voter of the metadata quorum (quorum.h) with the cluster
 * metadata (metadata.h) as its state machine, registers the broker with it,
 * and answers describe_cluster and register_broker (protocol.md 6.21, 6.22).
 *
 * Configured by cluster.voters (stream-broker --cluster); empty, the
 * service does nothing but answer describe_cluster with a one-broker view,
 * so a single node behaves exactly as before. Configured:
 *
 *   start   node.id must be one of the voters (a broker outside the quorum,
 *           a data-only broker, is not supported yet); the quorum starts
 *           on the broker's loop with its files in
 *           <data.dir>/__cluster_metadata/ (which also keeps cluster.id).
 *   tick    every TICK_MS until this broker is registered and unfenced with
 *           an epoch of this run: the leader proposes its own registration
 *           (register_broker with a request id fixed for the run, then
 *           unfence_broker with the epoch it got), retrying with the same
 *           request ids until both are applied; a follower sends the
 *           leader a register_broker request over the native protocol
 *           (link below) and the leader proposes the same two commands on
 *           its behalf. Done is seen in this node's own copy of the
 *           metadata: a registration newer than what this node had applied
 *           when it first asked, unfenced.
 *   stop    stops the quorum (its files are consistent: Raft syncs before it
 *           acknowledges) and the link.
 *
 * Fencing is not done yet: the controller unfences a broker as soon as it
 * registers and never fences one that falls silent (broker heartbeats and
 * broker.session.timeout.ms come with failover of partition leaders). Topics
 * are still each broker's own; the metadata's topics stay empty.
 *
 * The request ids: node = this node, seq = the wall clock in microseconds at
 * start (never repeats across restarts); register uses seq, unfence seq + 1.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "broker/host.h"
#include "cluster_internal.h"
#include "metadata.h"
#include "quorum.h"
#include "stream/error.h"

#define TICK_MS        200
#define META_DIR       "__cluster_metadata"
#define MAX_REMOTE     64   /* registrations proposed on behalf of others at once */
#define LINK_RESEND_MS 1000 /* a follower repeats its request this often */

/* One broker's registration driven by the leader: its own, or a follower's. */
typedef struct reg_job {
    struct controller *ctl;
    int32_t node;
    uint64_t seq; /* register: seq; unfence: seq + 1 */
    char host[256];
    uint16_t port;
    bool used;
    bool busy;       /* a proposal in flight */
    bool registered; /* register_broker applied; epoch is its epoch */
    bool done;       /* unfence_broker applied too */
    int64_t epoch;
} reg_job;

/* A follower's connection to the leader's client port. */
typedef struct peer_link {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    stream_buf out;  /* the frames being written */
    char rbuf[4096]; /* answers are read and dropped: done is seen in the metadata */
    int32_t leader;  /* whose port this is */
    bool open;       /* tcp initialised (close it) */
    bool connected;
    bool writing;
    uint64_t next_id;
    uint64_t last_sent; /* uv_now of the last request */
} peer_link;

typedef struct controller {
    stream_broker *b;
    bool configured;
    stream__quorum *q;
    stream__meta *md;
    int32_t node_id;
    char cluster_id[STREAM__QUORUM_CLUSTER_ID_MAX + 1];
    stream__quorum_voter voters[STREAM__QUORUM_MAX_VOTERS];
    size_t n_voters;
    uv_timer_t tick;
    bool tick_open;
    bool stopped;
    uint64_t seq;      /* this run's request ids */
    uint64_t asked_at; /* applied index when this node first asked; 0: not yet */
    bool registered;   /* seen in this node's metadata */
    reg_job own;
    reg_job remote[MAX_REMOTE];
    peer_link lk;
    bool link_closing;
} controller;

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* ---- registration on the leader ---- */

static void drive(reg_job *j);

static void on_proposed(void *arg, int status, int result)
{
    reg_job *j = arg;
    controller *ctl = j->ctl;
    j->busy = false;
    if (status != 0 || ctl->stopped)
        return; /* outcome unknown here: retried with the same request id */
    if (!j->registered) {
        const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, j->node);
        if (result != 0 || mb == NULL) {
            stream__host_log(ctl->b, STREAM_BROKER_WARN, "register_broker %d refused: %s",
                             (int)j->node, stream_strerror(result));
            return;
        }
        j->registered = true;
        j->epoch = mb->epoch;
        drive(j);
        return;
    }
    if (result != 0) {
        /* Stale: a newer registration of that broker came in meanwhile. */
        stream__host_log(ctl->b, STREAM_BROKER_WARN, "unfence_broker %d refused: %s", (int)j->node,
                         stream_strerror(result));
        j->registered = false;
        return;
    }
    j->done = true;
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: broker %d (%s:%u) registered with epoch %lld, unfenced",
                     (int)j->node, j->host, (unsigned)j->port, (long long)j->epoch);
}

/* Proposes the job's next command unless one is in flight or this node does
 * not lead. */
static void drive(reg_job *j)
{
    controller *ctl = j->ctl;
    if (j->busy || j->done || ctl->q == NULL || !stream__quorum_is_leader(ctl->q))
        return;
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc;
    if (!j->registered)
        rc = stream__meta_encode_register_broker(&cmd, (stream__meta_req){j->node, j->seq}, j->node,
                                                 j->host, j->port);
    else
        rc = stream__meta_encode_unfence_broker(&cmd, (stream__meta_req){j->node, j->seq + 1},
                                                j->node, j->epoch);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_proposed, j);
    if (rc == 0)
        j->busy = true;
    else if (rc != STREAM_ENOTLEADER)
        stream__host_log(ctl->b, STREAM_BROKER_WARN, "cluster: cannot propose for broker %d: %s",
                         (int)j->node, stream_strerror(rc));
    stream_buf_release(&cmd);
}

static void job_reset(reg_job *j, controller *ctl, int32_t node, uint64_t seq, const char *host,
                      size_t host_len, uint16_t port)
{
    memset(j, 0, sizeof(*j));
    j->ctl = ctl;
    j->used = true;
    j->node = node;
    j->seq = seq;
    if (host_len >= sizeof(j->host))
        host_len = sizeof(j->host) - 1;
    memcpy(j->host, host, host_len);
    j->host[host_len] = '\0';
    j->port = port;
}

/* ---- a follower's link to the leader ---- */

static void link_on_close(uv_handle_t *h)
{
    peer_link *l = h->data;
    controller *ctl = (controller *)((char *)l - offsetof(controller, lk));
    stream_buf_release(&l->out);
    l->open = false;
    ctl->link_closing = false;
}

static void link_close(controller *ctl)
{
    peer_link *l = &ctl->lk;
    if (!l->open || ctl->link_closing)
        return;
    ctl->link_closing = true;
    l->connected = false;
    l->writing = false;
    uv_close((uv_handle_t *)&l->tcp, link_on_close);
}

static void link_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    peer_link *l = h->data;
    *buf = uv_buf_init(l->rbuf, sizeof(l->rbuf));
}

static void link_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    peer_link *l = s->data;
    controller *ctl = (controller *)((char *)l - offsetof(controller, lk));
    if (n < 0)
        link_close(ctl);
}

static void link_on_write(uv_write_t *w, int status)
{
    peer_link *l = w->data;
    controller *ctl = (controller *)((char *)l - offsetof(controller, lk));
    l->writing = false;
    stream_buf_reset(&l->out);
    if (status != 0)
        link_close(ctl);
}

/* Sends hello (first == true) and register_broker for this node. */
static void link_send(controller *ctl, bool first)
{
    peer_link *l = &ctl->lk;
    if (l->writing)
        return;
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    stream_buf_reset(&l->out);
    stream_frame f;
    if (first) {
        stream_frame_start(&f, &l->out);
        stream_pack_request_header(&f.pk, STREAM_OP_HELLO, ++l->next_id, 2);
        stream_pack_kv_uint(&f.pk, "version", STREAM_PROTOCOL_VERSION);
        stream_pack_kv_cstr(&f.pk, "client", "stream-broker controller link");
        if (stream_frame_finish(&f) != 0)
            return;
    }
    stream_frame_start(&f, &l->out);
    stream_pack_request_header(&f.pk, STREAM_OP_REGISTER_BROKER, ++l->next_id, 4);
    stream_pack_kv_int(&f.pk, "node_id", ctl->node_id);
    stream_pack_kv_cstr(&f.pk, "host", host);
    stream_pack_kv_uint(&f.pk, "port", port);
    stream_pack_kv_uint(&f.pk, "seq", ctl->seq);
    if (stream_frame_finish(&f) != 0)
        return;
    uv_buf_t ub = uv_buf_init((char *)l->out.data, (unsigned)l->out.len);
    l->write.data = l;
    if (uv_write(&l->write, (uv_stream_t *)&l->tcp, &ub, 1, link_on_write) != 0) {
        link_close(ctl);
        return;
    }
    l->writing = true;
    l->last_sent = uv_now(stream__host_loop(ctl->b));
}

static void link_on_connect(uv_connect_t *req, int status)
{
    peer_link *l = req->data;
    controller *ctl = (controller *)((char *)l - offsetof(controller, lk));
    if (status != 0 || ctl->stopped || ctl->link_closing) {
        link_close(ctl);
        return;
    }
    l->connected = true;
    if (uv_read_start((uv_stream_t *)&l->tcp, link_on_alloc, link_on_read) != 0) {
        link_close(ctl);
        return;
    }
    link_send(ctl, true);
}

/* Connects to the leader's client address (from the metadata: the leader
 * registers itself first). */
static void link_open(controller *ctl, int32_t leader)
{
    peer_link *l = &ctl->lk;
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, leader);
    if (mb == NULL || ctl->link_closing)
        return; /* not known here yet: next tick */
    struct sockaddr_storage ss;
    if (uv_ip4_addr(mb->host, mb->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(mb->host, mb->port, (struct sockaddr_in6 *)&ss) != 0)
        return;
    memset(l, 0, offsetof(peer_link, rbuf));
    stream_buf_init(&l->out);
    uv_tcp_init(stream__host_loop(ctl->b), &l->tcp);
    l->tcp.data = l;
    l->open = true;
    l->leader = leader;
    l->connect.data = l;
    if (uv_tcp_connect(&l->connect, &l->tcp, (struct sockaddr *)&ss, link_on_connect) != 0)
        link_close(ctl);
}

/* ---- the tick ---- */

/* True when this node's metadata shows a registration of this run, unfenced. */
static bool registered_here(controller *ctl)
{
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->node_id);
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    return mb != NULL && ctl->asked_at > 0 && (uint64_t)mb->epoch >= ctl->asked_at && !mb->fenced &&
           mb->port == port && strcmp(mb->host, host) == 0;
}

static void on_tick(uv_timer_t *t)
{
    controller *ctl = t->data;
    if (ctl->stopped || ctl->q == NULL || stream__host_stopping(ctl->b))
        return;
    if (ctl->registered)
        return;
    if (registered_here(ctl)) {
        ctl->registered = true;
        const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->node_id);
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: this broker (node %d) is registered, epoch %lld",
                         (int)ctl->node_id, (long long)mb->epoch);
        link_close(ctl);
        return;
    }
    int32_t leader = stream__quorum_leader(ctl->q);
    if (leader < 0)
        return;
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    if (ctl->asked_at == 0)
        ctl->asked_at = stream__quorum_applied_index(ctl->q) + 1;
    if (leader == ctl->node_id) {
        link_close(ctl);
        if (!ctl->own.used)
            job_reset(&ctl->own, ctl, ctl->node_id, ctl->seq, host, strlen(host), port);
        if (ctl->own.done)
            return; /* applied at the leader; this node sees it on the next tick */
        drive(&ctl->own);
        return;
    }
    peer_link *l = &ctl->lk;
    if (l->open && l->leader != leader)
        link_close(ctl);
    if (!l->open)
        link_open(ctl, leader);
    else if (l->connected && uv_now(stream__host_loop(ctl->b)) - l->last_sent >= LINK_RESEND_MS)
        link_send(ctl, false);
}

/* ---- ops ---- */

static void pack_broker(msgpack_packer *pk, int32_t id, const char *host, uint16_t port,
                        int64_t epoch, bool fenced)
{
    msgpack_pack_map(pk, 5);
    stream_pack_kv_int(pk, "node_id", id);
    stream_pack_kv_cstr(pk, "host", host);
    stream_pack_kv_uint(pk, "port", port);
    stream_pack_kv_int(pk, "epoch", epoch);
    stream_pack_kv_bool(pk, "fenced", fenced);
}

static void op_describe_cluster(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    (void)m;
    controller *ctl = svc;
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 8);
    if (!ctl->configured || ctl->q == NULL) {
        /* A single node: itself, no quorum. */
        stream_pack_kv_cstr(&f.pk, "cluster_id", "");
        stream_pack_kv_int(&f.pk, "node_id",
                           stream_config_int(stream__host_config(ctl->b), STREAM_CONFIG_NODE_ID));
        stream_pack_kv_int(&f.pk, "leader_id", -1);
        stream_pack_kv_uint(&f.pk, "term", 0);
        stream_pack_kv_uint(&f.pk, "applied_index", 0);
        stream_pack_key(&f.pk, "voters");
        msgpack_pack_array(&f.pk, 0);
        stream_pack_key(&f.pk, "brokers");
        msgpack_pack_array(&f.pk, 1);
        pack_broker(&f.pk,
                    (int32_t)stream_config_int(stream__host_config(ctl->b), STREAM_CONFIG_NODE_ID),
                    host, port, -1, false);
        stream_pack_kv_bool(&f.pk, "clustered", false);
        stream__host_reply_finish(r, &f, id);
        return;
    }
    stream_pack_kv_cstr(&f.pk, "cluster_id", ctl->cluster_id);
    stream_pack_kv_int(&f.pk, "node_id", ctl->node_id);
    stream_pack_kv_int(&f.pk, "leader_id", stream__quorum_leader(ctl->q));
    stream_pack_kv_uint(&f.pk, "term", stream__quorum_term(ctl->q));
    stream_pack_kv_uint(&f.pk, "applied_index", stream__quorum_applied_index(ctl->q));
    stream_pack_key(&f.pk, "voters");
    msgpack_pack_array(&f.pk, (uint32_t)ctl->n_voters);
    for (size_t i = 0; i < ctl->n_voters; i++) {
        msgpack_pack_map(&f.pk, 3);
        stream_pack_kv_int(&f.pk, "node_id", ctl->voters[i].id);
        stream_pack_kv_cstr(&f.pk, "host", ctl->voters[i].host);
        stream_pack_kv_uint(&f.pk, "port", ctl->voters[i].port);
    }
    size_t n = stream__meta_broker_count(ctl->md);
    stream_pack_key(&f.pk, "brokers");
    msgpack_pack_array(&f.pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const stream__meta_broker *mb = stream__meta_broker_at(ctl->md, i);
        pack_broker(&f.pk, mb->id, mb->host, mb->port, mb->epoch, mb->fenced);
    }
    stream_pack_kv_bool(&f.pk, "clustered", true);
    stream__host_reply_finish(r, &f, id);
}

/* A follower asks the leader to register it (broker to broker). */
static void op_register_broker(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[256];
    int64_t node;
    const char *host;
    size_t host_len;
    uint64_t port, seq;
    if (!ctl->configured || ctl->q == NULL) {
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "this broker is not in a cluster");
        return;
    }
    int rc = stream_field_int(m, "node_id", 1, INT32_MAX, &node, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_str(m, "host", &host, &host_len, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_uint(m, "port", 65535, &port, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_uint(m, "seq", UINT64_MAX - 1, &seq, msg, sizeof(msg));
    if (rc == 0 && (port == 0 || host_len == 0 || host_len > 255)) {
        rc = STREAM_EBADREQ;
        snprintf(msg, sizeof(msg), "host must be 1 to 255 bytes and port 1 to 65535");
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    if (!stream__quorum_is_leader(ctl->q)) {
        snprintf(msg, sizeof(msg), "not the controller; the leader is node %d",
                 (int)stream__quorum_leader(ctl->q));
        stream__host_reply_error(r, id, STREAM_ENOTLEADER, msg);
        return;
    }
    reg_job *j = NULL, *free_slot = NULL;
    for (size_t i = 0; i < MAX_REMOTE && j == NULL; i++) {
        if (ctl->remote[i].used && ctl->remote[i].node == (int32_t)node)
            j = &ctl->remote[i];
        else if (!ctl->remote[i].used && free_slot == NULL)
            free_slot = &ctl->remote[i];
    }
    if (j != NULL && j->seq != seq && j->busy) {
        stream__host_reply_error(r, id, STREAM_EAGAIN, "an earlier registration is in flight");
        return;
    }
    if (j == NULL)
        j = free_slot;
    if (j == NULL) {
        stream__host_reply_error(r, id, STREAM_EAGAIN, "too many registrations at once");
        return;
    }
    if (!j->used || j->seq != seq || j->port != port || strlen(j->host) != host_len ||
        memcmp(j->host, host, host_len) != 0)
        job_reset(j, ctl, (int32_t)node, seq, host, host_len, (uint16_t)port);
    else if (j->done)
        j->done = j->registered = false; /* asked again: not seen there yet; replays are no-ops */
    drive(j);
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 0);
    stream__host_reply_finish(r, &f, id);
}

/* ---- the service ---- */

static const stream__service_op controller_ops[] = {
    {STREAM_OP_DESCRIBE_CLUSTER, op_describe_cluster},
    {STREAM_OP_REGISTER_BROKER, op_register_broker},
};

/* Reads the cluster settings; 0 with ctl->configured false when there is no
 * cluster.voters. */
static int read_settings(controller *ctl, const stream_config *cfg, char *errbuf, size_t errbuf_len)
{
    const char *voters = stream_config_str(cfg, STREAM_CONFIG_CLUSTER_VOTERS);
    if (voters == NULL || voters[strspn(voters, " \t,")] == '\0')
        return 0;
    char err[512];
    if (stream__quorum_voters_parse(voters, ctl->voters, STREAM__QUORUM_MAX_VOTERS, &ctl->n_voters,
                                    err, sizeof(err)) != 0)
        return stream__cluster_fail(STREAM_EBADCONFIG, errbuf, errbuf_len, "cluster.voters: %s",
                                    err);
    ctl->node_id = (int32_t)stream_config_int(cfg, STREAM_CONFIG_NODE_ID);
    bool found = false;
    char ids[STREAM__QUORUM_MAX_VOTERS * 12] = "";
    for (size_t i = 0; i < ctl->n_voters; i++) {
        found = found || ctl->voters[i].id == ctl->node_id;
        size_t k = strlen(ids);
        snprintf(ids + k, sizeof(ids) - k, "%s%d", i ? ", " : "", (int)ctl->voters[i].id);
    }
    if (!found)
        return stream__cluster_fail(
            STREAM_EBADCONFIG, errbuf, errbuf_len,
            "node.id %d is not one of the voters of cluster.voters (%s): data-only brokers, "
            "outside the metadata quorum, are not supported yet%s",
            (int)ctl->node_id, ids, ctl->node_id == 0 ? " (set --node-id)" : "");
    const char *id = stream_config_str(cfg, STREAM_CONFIG_CLUSTER_ID);
    if (!stream__cluster_id_ok(id, strlen(id), STREAM__QUORUM_CLUSTER_ID_MAX))
        return stream__cluster_fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                                    "cluster.id '%s': expected 1 to %d of A-Z a-z 0-9 . _ -", id,
                                    STREAM__QUORUM_CLUSTER_ID_MAX);
    snprintf(ctl->cluster_id, sizeof(ctl->cluster_id), "%s", id);
    ctl->configured = true;
    return 0;
}

static int controller_start(stream_broker *b, void **svc, char *errbuf, size_t errbuf_len)
{
    controller *ctl = calloc(1, sizeof(*ctl));
    *svc = ctl;
    if (ctl == NULL)
        return stream__cluster_fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    ctl->b = b;
    const stream_config *cfg = stream__host_config(b);
    int rc = read_settings(ctl, cfg, errbuf, errbuf_len);
    if (rc != 0 || !ctl->configured)
        return rc;
    char data_dir[4096], dir[4200];
    rc = stream_config_data_dir(cfg, data_dir, sizeof(data_dir));
    if (rc != 0)
        return stream__cluster_fail(rc, errbuf, errbuf_len, "cannot find the data directory: %s",
                                    stream_strerror(rc));
    snprintf(dir, sizeof(dir), "%s/%s", data_dir, META_DIR);
    ctl->md = stream__meta_new(ctl->cluster_id);
    if (ctl->md == NULL)
        return stream__cluster_fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    stream__quorum_config qc;
    stream__quorum_config_init(&qc);
    qc.node_id = ctl->node_id;
    memcpy(qc.voters, ctl->voters, sizeof(ctl->voters));
    qc.n_voters = ctl->n_voters;
    qc.data_dir = dir;
    qc.cluster_id = ctl->cluster_id;
    stream__quorum_fsm fsm;
    stream__meta_fsm(ctl->md, &fsm);
    char err[1024];
    rc = stream__quorum_start(stream__host_loop(b), &qc, &fsm, &ctl->q, err, sizeof(err));
    if (rc != 0)
        return stream__cluster_fail(rc, errbuf, errbuf_len, "cluster: %s", err);
    ctl->seq = now_us();
    uv_timer_init(stream__host_loop(b), &ctl->tick);
    ctl->tick.data = ctl;
    ctl->tick_open = true;
    uv_timer_start(&ctl->tick, on_tick, TICK_MS / 4, TICK_MS);
    stream__host_log(b, STREAM_BROKER_INFO, "cluster '%s': node %d of %zu voters, metadata in %s",
                     ctl->cluster_id, (int)ctl->node_id, ctl->n_voters, dir);
    return 0;
}

static void controller_stop(void *svc)
{
    controller *ctl = svc;
    if (ctl == NULL || ctl->stopped)
        return;
    ctl->stopped = true;
    if (ctl->tick_open) {
        uv_close((uv_handle_t *)&ctl->tick, NULL);
        ctl->tick_open = false;
    }
    link_close(ctl);
    if (ctl->q != NULL) {
        stream__quorum *q = ctl->q;
        ctl->q = NULL;
        stream__quorum_stop(q, NULL, NULL);
    }
}

static void controller_free(void *svc)
{
    controller *ctl = svc;
    if (ctl == NULL)
        return;
    stream__meta_free(ctl->md);
    free(ctl);
}

/* Named once outside this folder: in the broker's list of services
 * (libstream/broker/host.c). */
const stream__service stream__controller_service = {
    .name = "controller",
    .ops = controller_ops,
    .nops = sizeof(controller_ops) / sizeof(controller_ops[0]),
    .start = controller_start,
    .stop = controller_stop,
    .free = controller_free,
};
