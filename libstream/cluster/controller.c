/*
 * controller.c - the cluster as a service of the broker (broker/host.h): runs
 * this node's voter of the metadata quorum (quorum.h) with the cluster
 * metadata (metadata.h) as its state machine, registers the broker and keeps
 * it alive with heartbeats; on the quorum's leader (the controller) it
 * fences silent brokers and elects partition leaders; it hooks the replica
 * manager (replica.h) to the metadata. Admin ops are in controller_admin.c,
 * the link to the controller in controller_link.c (controller_internal.h
 * has the whole picture).
 *
 * Configured by cluster.voters (stream-broker --cluster); empty, the
 * service does nothing but answer describe_cluster with a one-broker view,
 * so a single node behaves exactly as before. Configured:
 *
 *   start   the replica manager starts, then, when node.id is one of the
 *           voters, the quorum on the broker's loop with its files in
 *           <data.dir>/__cluster_metadata/ (which also keeps cluster.id).
 *           Another node.id is a data-only broker: no quorum; each tick
 *           until a controller is known it asks the next voter, on its
 *           Raft address, who leads (quorum.h), then follows the metadata
 *           over the link: fetch_metadata {since} every heartbeat interval
 *           and whenever the heartbeat's answer (metadata_index) is ahead;
 *           the image is restored into its copy (indexes only go forward)
 *           and, as on a voter, every change arms the 0 ms timer. It
 *           registers, heartbeats, is fenced and shuts down as a voter does.
 *   tick    every TICK_MS (or broker.heartbeat.interval.ms when shorter):
 *           - until registered with an epoch of this run: the leader
 *             proposes its own registration (register_broker with a request
 *             id fixed for the registration, then unfence_broker with the
 *             epoch it got), retrying with the same ids until both are
 *             applied; a follower sends register_broker over the link and
 *             the leader proposes the same two commands on its behalf. Done
 *             is seen in this node's own copy of the metadata.
 *           - once registered: broker_heartbeat {node_id, broker_epoch}
 *             every broker.heartbeat.interval.ms over the link (the
 *             controller hears itself in memory). Fenced in the metadata,
 *             or told ESTALEEPOCH / ENOBROKER: register again (new epoch).
 *           - on the controller: fence every unfenced broker silent for
 *             broker.session.timeout.ms (a new controller gives each a
 *             whole session from when it took over), then an election
 *             pass (election.h) when something changed and every
 *             ELECT_RECHECK_MS anyway.
 *   events  every metadata change (restore included) arms a 0 ms timer:
 *           one replica sync, and an election pass, per burst of changes.
 *   closed  a broker's heartbeat connection closed (kill -9 closes it at
 *           once): the controller fences it without waiting.
 *   SIGTERM controlled shutdown: this broker asks to be fenced (its
 *           leaderships move, it leaves every ISR) and holds the stop until
 *           its metadata shows that; the controller then also hands the
 *           quorum to another voter (at most HANDOVER_MAX_MS) so the others
 *           see those commits at once.
 *   stop    stops the replica manager, the link and the quorum (its files
 *           are consistent: Raft syncs before it acknowledges).
 *
 * Liveness is the controller's memory only, never the state machine (apply
 * must be deterministic): the last heartbeat per broker and the connection
 * it came on.
 *
 * Request ids: node = this node; a registration's seq is the wall clock in
 * microseconds when it began (never repeats across restarts), unfence
 * seq + 1; other commands count up from the first seq + 2.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "controller.h"
#include "controller_internal.h"
#include "election.h"
#include "stream/error.h"
#include "stream/prom.h"

#define TICK_MS           50 /* the tick: sessions, elections, registration, heartbeats */
#define META_DIR          "__cluster_metadata"
#define LINK_RESEND_MS    1000 /* a follower repeats its registration this often */
#define ELECT_RECHECK_MS  500  /* a full election pass at least this often on the controller */
#define HEALTH_LIST_MAX   100  /* partitions listed per kind in describe_cluster */
#define PREVIOUS_GRACE_MS 300  /* at least, for the previous controller to heartbeat a new one */
#define HANDOVER_MAX_MS   1000 /* a stopping controller waits this long at most for a successor */
#define FETCH_DELTAS_MAX  (4u << 20) /* deltas answered at most; beyond, the image */

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* ---- registration on the leader ---- */

static void drive(ctl_reg_job *j);

static void on_proposed(void *arg, int status, int result)
{
    ctl_reg_job *j = arg;
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
static void drive(ctl_reg_job *j)
{
    controller *ctl = j->ctl;
    if (j->busy || j->done || ctl->q == NULL || !stream__quorum_is_leader(ctl->q))
        return;
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc;
    if (!j->registered)
        rc = stream__meta_encode_register_broker_kafka(
            &cmd, (stream__meta_req){j->node, j->seq}, j->node, j->host, j->port,
            j->kafka_host[0] != '\0' ? j->kafka_host : NULL, j->kafka_port);
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

/* kafka_host (kafka_host_len bytes, NULL: none) and kafka_port: the
 * broker's Kafka listener, registered with it. */
static void job_reset(ctl_reg_job *j, controller *ctl, int32_t node, uint64_t seq, const char *host,
                      size_t host_len, uint16_t port, const char *kafka_host, size_t kafka_host_len,
                      uint16_t kafka_port)
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
    if (kafka_host != NULL && kafka_host_len < sizeof(j->kafka_host)) {
        memcpy(j->kafka_host, kafka_host, kafka_host_len);
        j->kafka_host[kafka_host_len] = '\0';
        j->kafka_port = kafka_port;
    }
}

static int64_t leaderships_of(const stream__meta *md, int32_t id);

/* ---- request ids ---- */

uint64_t ctl_next_seq(controller *ctl)
{
    return ctl->next_seq++;
}

bool ctl_is_controller(const controller *ctl)
{
    return ctl->q != NULL && !ctl->stopped && stream__quorum_is_leader(ctl->q);
}

int32_t ctl_leader(const controller *ctl)
{
    if (ctl->q != NULL)
        return stream__quorum_leader(ctl->q);
    return ctl->data_only ? ctl->ctl_id : -1;
}

bool ctl_running(const controller *ctl)
{
    return ctl->configured && !ctl->stopped && (ctl->q != NULL || ctl->data_only);
}

void ctl_forget_controller(controller *ctl)
{
    if (!ctl->data_only || ctl->ctl_id < 0)
        return;
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: lost the controller (node %d at %s:%u); asking the voters",
                     (int)ctl->ctl_id, ctl->ctl_host, (unsigned)ctl->ctl_port);
    ctl->ctl_id = -1;
    ctl->fetch_inflight = false;
    ctl_link_close(ctl);
}

/* ---- liveness, on the controller ---- */

/* The liveness entry of broker id, made (as heard from now) when missing;
 * NULL without memory. */
static ctl_live *live_get(controller *ctl, int32_t id)
{
    for (size_t i = 0; i < ctl->nlive; i++)
        if (ctl->live[i].id == id)
            return &ctl->live[i];
    if (ctl->nlive == ctl->cap_live) {
        size_t cap = ctl->cap_live ? ctl->cap_live * 2 : 8;
        ctl_live *l = realloc(ctl->live, cap * sizeof(*l));
        if (l == NULL)
            return NULL;
        ctl->live = l;
        ctl->cap_live = cap;
    }
    ctl_live *l = &ctl->live[ctl->nlive++];
    memset(l, 0, sizeof(*l));
    l->id = id;
    l->epoch = -1;
    l->last_ms = uv_now(stream__host_loop(ctl->b));
    return l;
}

typedef struct fence_arg {
    controller *ctl;
    int32_t id;
    int64_t epoch;
} fence_arg;

static void on_fenced(void *arg, int status, int result)
{
    fence_arg *fa = arg;
    controller *ctl = fa->ctl;
    if (!ctl->stopped) {
        ctl_live *l = live_get(ctl, fa->id);
        if (l != NULL && l->epoch == fa->epoch)
            l->fence_inflight = false;
        if (status == 0 && result != 0 && result != STREAM_ESTALEEPOCH)
            stream__host_log(ctl->b, STREAM_BROKER_WARN, "cluster: fence_broker %d refused: %s",
                             (int)fa->id, stream_strerror(result));
    }
    free(fa);
}

/* Proposes fence_broker for broker id at epoch (once at a time). */
static void fence(controller *ctl, ctl_live *l, int64_t epoch, const char *why)
{
    if (l->fence_inflight && l->epoch == epoch)
        return;
    fence_arg *fa = malloc(sizeof(*fa));
    if (fa == NULL)
        return;
    *fa = (fence_arg){ctl, l->id, epoch};
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc = stream__meta_encode_fence_broker(
        &cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)}, l->id, epoch);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_fenced, fa);
    stream_buf_release(&cmd);
    if (rc != 0) {
        free(fa);
        return;
    }
    l->epoch = epoch;
    l->fence_inflight = true;
    stream__host_log(ctl->b, STREAM_BROKER_INFO, "cluster: fencing broker %d (epoch %lld): %s",
                     (int)l->id, (long long)epoch, why);
}

/* Fences every unfenced broker silent for longer than the session timeout
 * (the controller itself is alive by definition). */
static void check_sessions(controller *ctl)
{
    uint64_t now = uv_now(stream__host_loop(ctl->b));
    size_t n = stream__meta_broker_count(ctl->md);
    for (size_t i = 0; i < n; i++) {
        const stream__meta_broker *mb = stream__meta_broker_at(ctl->md, i);
        if (mb->fenced || mb->id == ctl->node_id)
            continue;
        ctl_live *l = live_get(ctl, mb->id);
        if (l == NULL)
            return;
        if (l->epoch != mb->epoch) {
            /* Not heard from in this epoch yet: its session starts now. */
            l->epoch = mb->epoch;
            l->last_ms = now;
            l->fence_inflight = false;
        }
        if (now - l->last_ms > ctl->session_ms) {
            char why[96];
            snprintf(why, sizeof(why), "no heartbeat for %llu ms",
                     (unsigned long long)(now - l->last_ms));
            fence(ctl, l, mb->epoch, why);
        }
    }
}

/* ---- metadata events: replica sync and elections, coalesced ---- */

static void on_soon(uv_timer_t *t)
{
    controller *ctl = t->data;
    ctl->soon_armed = false;
    if (ctl->stopped)
        return;
    /* Not before this node was registered in this run: until then its copy
     * of the metadata may be an old one being replayed (a restart), where
     * it still leads partitions that others lead now. */
    if (ctl->rm != NULL && ctl->caught_up)
        stream__replica_sync(ctl->rm, ctl->md);
    if (ctl->elect_dirty)
        ctl_elect_pass(ctl);
    ctl_isr_flush(ctl);
}

void ctl_soon(controller *ctl)
{
    if (!ctl->soon_open || ctl->soon_armed || ctl->stopped)
        return;
    ctl->soon_armed = true;
    uv_timer_start(&ctl->soon, on_soon, 0, 0);
}

static void on_meta_event(void *arg, const stream__meta_event *ev)
{
    controller *ctl = arg;
    /* What the next replica sync must look at. */
    if (ev->type == STREAM__META_RESTORED)
        stream__replica_all_changed(ctl->rm);
    else if (ev->topic != NULL)
        stream__replica_topic_changed(ctl->rm, ev->topic->name);
    switch (ev->type) {
    case STREAM__META_BROKER_REGISTERED:
    case STREAM__META_BROKER_UNFENCED:
        if (ctl_is_controller(ctl)) {
            /* A new session: heard from now. */
            ctl_live *l = live_get(ctl, ev->broker->id);
            if (l != NULL) {
                l->epoch = ev->broker->epoch;
                l->last_ms = uv_now(stream__host_loop(ctl->b));
                l->fence_inflight = false;
            }
        }
        ctl->elect_dirty = true;
        break;
    case STREAM__META_BROKER_FENCED:
    case STREAM__META_TOPIC_CREATED:
    case STREAM__META_PARTITIONS_ADDED:
    case STREAM__META_RESTORED:
        ctl->elect_dirty = true;
        break;
    default:
        break;
    }
    ctl_soon(ctl);
}

static void on_quorum_change(void *arg, const stream__quorum_change *c)
{
    controller *ctl = arg;
    if (c->is_leader && !c->was_leader) {
        /* A new controller: every broker gets a whole session from now,
         * except the previous controller: Raft moved away from it because
         * it fell silent for an election timeout, so it is probably dead;
         * alive, it connects and heartbeats within a few intervals. */
        uint64_t now = uv_now(stream__host_loop(ctl->b));
        ctl->leader_since = now;
        ctl->nlive = 0;
        ctl->elect_dirty = true;
        if (ctl->last_leader > 0 && ctl->last_leader != ctl->node_id) {
            ctl_live *l = live_get(ctl, ctl->last_leader);
            const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->last_leader);
            uint64_t grace = 3 * ctl->hb_interval_ms < PREVIOUS_GRACE_MS ? PREVIOUS_GRACE_MS
                                                                         : 3 * ctl->hb_interval_ms;
            /* Its end closed or refused our link: it is gone, fence it now. */
            if (ctl->link_lost_leader == ctl->last_leader)
                grace = 0;
            if (l != NULL && mb != NULL && grace < ctl->session_ms) {
                l->epoch = mb->epoch;
                l->last_ms = now - (ctl->session_ms - grace);
            }
        }
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: this broker (node %d) is the controller, term %llu",
                         (int)ctl->node_id, (unsigned long long)c->term);
    }
    if (c->leader_id > 0 && c->leader_id != ctl->node_id)
        ctl->last_leader = c->leader_id;
    ctl_link_follow(ctl);
}

/* ---- this broker: registration and heartbeats over the link ---- */

/* Starts a new registration (a new epoch): after a fence, or when the
 * controller no longer knows this epoch. */
static void re_register(controller *ctl, const char *why)
{
    if (!ctl->registered)
        return;
    stream__host_log(ctl->b, STREAM_BROKER_WARN,
                     "cluster: this broker (node %d, epoch %lld) %s; "
                     "registering again",
                     (int)ctl->node_id, (long long)ctl->epoch, why);
    ctl->registered = false;
    ctl->epoch = -1;
    ctl->seq = now_us();
    ctl->asked_at = 0;
    ctl->own.used = false;
    ctl->last_register_ms = 0;
}

static void send_fetch_metadata(controller *ctl);

/* The index of this node's copy of the metadata: what its quorum applied,
 * or on a data-only broker the image it follows. */
static uint64_t own_applied(const controller *ctl)
{
    return ctl->q != NULL ? stream__quorum_applied_index(ctl->q)
                          : stream__meta_applied_index(ctl->md);
}

/* A voter's applied index as this node knows it: its own from its quorum;
 * on the controller, the others' from their heartbeats; elsewhere, as the
 * controller last told in a heartbeat answer. 0: not known. */
static uint64_t voter_applied(controller *ctl, size_t i)
{
    int32_t id = ctl->voters[i].id;
    if (id == ctl->node_id)
        return own_applied(ctl);
    if (ctl_is_controller(ctl)) {
        for (size_t k = 0; k < ctl->nlive; k++)
            if (ctl->live[k].id == id)
                return ctl->live[k].applied_index;
        return 0;
    }
    return ctl->voter_applied[i];
}

/* Keeps the voters' applied indexes of a heartbeat answer (optional
 * "voters": [{node_id, applied_index}]; anything malformed is skipped). */
static void keep_voter_applied(controller *ctl, const msgpack_object *resp)
{
    const msgpack_object *arr;
    if (stream_field_array(resp, "voters", &arr, NULL, 0) != 0)
        return;
    for (uint32_t k = 0; k < arr->via.array.size; k++) {
        const msgpack_object *e = &arr->via.array.ptr[k];
        int64_t id;
        uint64_t index;
        if (e->type != MSGPACK_OBJECT_MAP ||
            stream_field_int(e, "node_id", 1, INT32_MAX, &id, NULL, 0) != 0 ||
            stream_field_uint(e, "applied_index", UINT64_MAX, &index, NULL, 0) != 0)
            continue;
        for (size_t i = 0; i < ctl->n_voters; i++)
            if (ctl->voters[i].id == (int32_t)id)
                ctl->voter_applied[i] = index;
    }
}

static void on_heartbeat_answer(controller *ctl, void *arg, int err, const char *msg,
                                size_t msg_len, const msgpack_object *resp)
{
    int64_t epoch = (int64_t)(intptr_t)arg;
    if (ctl->stopped)
        return;
    if (err == 0 && resp != NULL)
        keep_voter_applied(ctl, resp);
    if (err == 0 && ctl->data_only && resp != NULL) {
        /* The controller's metadata is ahead of this copy: follow it now. */
        uint64_t index;
        if (stream_field_uint_opt(resp, "metadata_index", UINT64_MAX, 0, &index, NULL, 0) == 0 &&
            index > stream__meta_applied_index(ctl->md))
            send_fetch_metadata(ctl);
    }
    if (err == STREAM_ENOTLEADER)
        ctl_forget_controller(ctl);
    if (err == 0 || epoch != ctl->epoch)
        return;
    if (err == STREAM_ESTALEEPOCH || err == STREAM_ENOBROKER) {
        char why[300];
        snprintf(why, sizeof(why), "was refused by the controller: %.*s", (int)msg_len,
                 msg ? msg : "");
        re_register(ctl, why);
    }
}

static void send_heartbeat(controller *ctl)
{
    msgpack_packer *pk = ctl_link_begin(ctl, STREAM_OP_BROKER_HEARTBEAT, 3, ctl->session_ms,
                                        on_heartbeat_answer, (void *)(intptr_t)ctl->epoch);
    if (pk == NULL)
        return;
    stream_pack_kv_int(pk, "node_id", ctl->node_id);
    stream_pack_kv_int(pk, "broker_epoch", ctl->epoch);
    stream_pack_kv_uint(pk, "applied_index", own_applied(ctl));
    if (ctl_link_end(ctl) == 0)
        ctl->hb_last_sent = uv_now(stream__host_loop(ctl->b));
}

static void ignore_answer(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                          const msgpack_object *resp)
{
    (void)ctl, (void)arg, (void)err, (void)msg, (void)msg_len, (void)resp;
}

static void send_register(controller *ctl)
{
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    const char *khost = NULL;
    uint16_t kport = 0;
    bool kafka = stream__host_advertised(ctl->b, "kafka", &khost, &kport);
    msgpack_packer *pk =
        ctl_link_begin(ctl, STREAM_OP_REGISTER_BROKER, kafka ? 6 : 4, 5000, ignore_answer, NULL);
    if (pk == NULL)
        return;
    stream_pack_kv_int(pk, "node_id", ctl->node_id);
    stream_pack_kv_cstr(pk, "host", host);
    stream_pack_kv_uint(pk, "port", port);
    stream_pack_kv_uint(pk, "seq", ctl->seq);
    if (kafka) {
        stream_pack_kv_cstr(pk, "kafka_host", khost);
        stream_pack_kv_uint(pk, "kafka_port", kport);
    }
    if (ctl_link_end(ctl) == 0)
        ctl->last_register_ms = uv_now(stream__host_loop(ctl->b));
}

/* ---- a data-only broker: finding the controller, following the metadata ---- */

#define ASK_TIMEOUT_MS                                                                             \
    1000                 /* a voter that does not answer a "who leads" in this long is skipped     \
                          */
#define ASK_PAUSE_MS 100 /* between questions while no controller is known */

static void on_who(void *arg, int status, const stream__quorum_who *who, const char *msg)
{
    controller *ctl = arg;
    ctl->ask = NULL;
    if (ctl->stopped)
        return;
    if (status != 0 || who->leader_id < 0 || who->leader_port == 0) {
        const stream__quorum_voter *v =
            &ctl->voters[(ctl->ask_next + ctl->n_voters - 1) % ctl->n_voters];
        stream__host_log(ctl->b, STREAM_BROKER_DEBUG, "cluster: voter %d at %s:%u: %s", (int)v->id,
                         v->host, (unsigned)v->port,
                         status != 0 ? msg
                         : who->leader_id < 0
                             ? "knows no controller yet"
                             : "does not know the controller's client address yet");
        if (ctl->ask_next % ctl->n_voters == 0 && !ctl->ask_failing) {
            ctl->ask_failing = true;
            stream__host_log(ctl->b, STREAM_BROKER_INFO,
                             "cluster: no voter names a controller yet; waiting for the "
                             "metadata quorum");
        }
        return;
    }
    ctl->ask_failing = false;
    ctl->ctl_id = who->leader_id;
    snprintf(ctl->ctl_host, sizeof(ctl->ctl_host), "%s", who->leader_host);
    ctl->ctl_port = who->leader_port;
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: voter %d names node %d (%s:%u) the controller", (int)who->node_id,
                     (int)who->leader_id, who->leader_host, (unsigned)who->leader_port);
    ctl_link_follow(ctl);
}

/* Asks the next voter who leads, while no controller is known. */
static void tick_find_controller(controller *ctl, uint64_t now)
{
    if (ctl->ctl_id >= 0 || ctl->ask != NULL || now - ctl->ask_last_ms < ASK_PAUSE_MS)
        return;
    const stream__quorum_voter *v = &ctl->voters[ctl->ask_next % ctl->n_voters];
    ctl->ask_next++;
    ctl->ask_last_ms = now;
    int rc = stream__quorum_ask_who(stream__host_loop(ctl->b), v, ASK_TIMEOUT_MS, on_who, ctl,
                                    &ctl->ask);
    if (rc != 0)
        stream__host_log(ctl->b, STREAM_BROKER_DEBUG, "cluster: cannot ask voter %d: %s",
                         (int)v->id, stream_strerror(rc));
}

static void on_metadata_answer(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                               const msgpack_object *resp)
{
    (void)arg;
    ctl->fetch_inflight = false;
    if (ctl->stopped)
        return;
    if (err != 0) {
        if (err == STREAM_ENOTLEADER)
            ctl_forget_controller(ctl);
        else if (err != STREAM_ECONNRESET)
            stream__host_log(ctl->b, STREAM_BROKER_WARN, "cluster: fetch_metadata: %.*s",
                             (int)msg_len, msg ? msg : stream_strerror(err));
        return;
    }
    char eb[512];
    uint64_t index;
    const uint8_t *image = NULL;
    size_t image_len = 0;
    const uint8_t *deltas = NULL;
    size_t deltas_len = 0;
    uint64_t since = 0;
    int rc = stream_field_uint(resp, "metadata_index", UINT64_MAX, &index, eb, sizeof(eb));
    if (rc == 0)
        rc = stream_field_bin_opt(resp, "image", &image, &image_len, eb, sizeof(eb));
    if (rc == 0)
        rc = stream_field_bin_opt(resp, "deltas", &deltas, &deltas_len, eb, sizeof(eb));
    if (rc == 0 && deltas != NULL)
        rc = stream_field_uint(resp, "since", UINT64_MAX, &since, eb, sizeof(eb));
    if (rc != 0) {
        stream__host_log(ctl->b, STREAM_BROKER_WARN, "cluster: fetch_metadata answer: %s", eb);
        return;
    }
    uint64_t mine = stream__meta_applied_index(ctl->md);
    if (deltas != NULL) {
        /* The commands since this copy, applied as a voter applies them;
         * an answer to a question about another index is ignored. */
        if (since != mine || index <= mine)
            return;
        rc = stream__journal_apply(ctl->md, deltas, deltas_len, eb, sizeof(eb));
        if (rc != 0)
            stream__host_log(ctl->b, STREAM_BROKER_ERROR,
                             "cluster: the controller's metadata deltas (index %llu to %llu) "
                             "refused: %s",
                             (unsigned long long)mine, (unsigned long long)index,
                             rc == STREAM_ENOMEM ? "out of memory" : eb);
        else
            stream__host_log(ctl->b, STREAM_BROKER_DEBUG,
                             "cluster: metadata index %llu -> %llu by deltas (%zu bytes)",
                             (unsigned long long)mine,
                             (unsigned long long)stream__meta_applied_index(ctl->md), deltas_len);
        return;
    }
    /* Only forward: an older image (a new controller still applying what
     * the last one had applied) is ignored. */
    if (image == NULL || index <= mine)
        return;
    rc = stream__meta_restore(ctl->md, image, image_len, eb, sizeof(eb));
    if (rc != 0) {
        stream__host_log(ctl->b, STREAM_BROKER_ERROR,
                         "cluster: the controller's metadata image (index %llu) refused: %s",
                         (unsigned long long)index, eb);
        return;
    }
    if (!ctl->have_image)
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: following the metadata from the controller (index %llu)",
                         (unsigned long long)stream__meta_applied_index(ctl->md));
    else
        stream__host_log(ctl->b, STREAM_BROKER_DEBUG,
                         "cluster: metadata index %llu -> %llu by the whole image (%zu bytes)",
                         (unsigned long long)mine,
                         (unsigned long long)stream__meta_applied_index(ctl->md), image_len);
    ctl->have_image = true;
}

/* fetch_metadata {since}: the controller's image when it is ahead. */
static void send_fetch_metadata(controller *ctl)
{
    if (ctl->fetch_inflight)
        return;
    msgpack_packer *pk =
        ctl_link_begin(ctl, STREAM_OP_FETCH_METADATA, 2, ctl->session_ms, on_metadata_answer, NULL);
    if (pk == NULL)
        return;
    stream_pack_kv_uint(pk, "since", stream__meta_applied_index(ctl->md));
    /* Deltas once it follows: its first copy in a run is the image. */
    stream_pack_kv_bool(pk, "deltas", ctl->have_image);
    ctl->fetch_inflight = true; /* before _end: a failure there answers at once */
    if (ctl_link_end(ctl) == 0)
        ctl->fetch_last_ms = uv_now(stream__host_loop(ctl->b));
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

/* Until registered: the leader proposes its own registration, a follower
 * asks the leader over the link. */
static void tick_register(controller *ctl, int32_t leader, uint64_t now)
{
    if (registered_here(ctl)) {
        const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->node_id);
        ctl->registered = true;
        ctl->epoch = mb->epoch;
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: this broker (node %d) is registered, epoch %lld",
                         (int)ctl->node_id, (long long)mb->epoch);
        ctl->hb_last_sent = 0;
        ctl->caught_up = true;
        ctl_soon(ctl); /* the replica manager's first sync */
        return;
    }
    if (leader < 0)
        return;
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    if (ctl->data_only && !ctl->have_image)
        return; /* registered is judged against the metadata: none yet */
    if (ctl->asked_at == 0)
        ctl->asked_at = (ctl->q != NULL ? stream__quorum_applied_index(ctl->q)
                                        : stream__meta_applied_index(ctl->md)) +
                        1;
    if (leader == ctl->node_id) {
        if (!ctl->own.used) {
            const char *khost = NULL;
            uint16_t kport = 0;
            stream__host_advertised(ctl->b, "kafka", &khost, &kport);
            job_reset(&ctl->own, ctl, ctl->node_id, ctl->seq, host, strlen(host), port, khost,
                      khost != NULL ? strlen(khost) : 0, kport);
        }
        if (!ctl->own.done)
            drive(&ctl->own);
        return;
    }
    if (ctl->lk.connected && now - ctl->last_register_ms >= LINK_RESEND_MS)
        send_register(ctl);
}

/* Once registered: heartbeats, and a new registration when the metadata
 * says this epoch is fenced or gone. */
static void tick_registered(controller *ctl, int32_t leader, uint64_t now)
{
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->node_id);
    if (mb == NULL || mb->epoch != ctl->epoch || mb->fenced) {
        re_register(ctl, mb == NULL                ? "is not in the metadata"
                         : mb->epoch != ctl->epoch ? "was registered again elsewhere"
                                                   : "was fenced");
        return;
    }
    if (leader < 0 || leader == ctl->node_id)
        return; /* the controller hears itself in memory */
    if (now - ctl->hb_last_sent >= ctl->hb_interval_ms)
        send_heartbeat(ctl);
}

/* Controlled shutdown: once this broker is fenced in its own metadata and
 * leads nothing (its leaderships moved, it left every ISR), the broker may
 * stop. */
static void tick_shutdown(controller *ctl)
{
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->node_id);
    if (mb != NULL && !mb->fenced && mb->epoch == ctl->epoch)
        return;
    /* Fenced: the controller's election follows at once (a fenced broker
     * leads nothing: an ISR member takes over, or the partition waits
     * offline for one). */
    if (leaderships_of(ctl->md, ctl->node_id) > 0)
        return;
    /* The controller hands the quorum over before it stops: the others
     * learn the commits that moved its leaderships from the new leader at
     * once, not after an election timeout (a stopped leader's last
     * commits reach the others only with the next heartbeat it sends). */
    if (ctl->q != NULL && stream__quorum_is_leader(ctl->q) && ctl->n_voters > 1) {
        uint64_t now = uv_now(stream__host_loop(ctl->b));
        if (ctl->handover_since == 0) {
            ctl->handover_since = now;
            int rc = stream__quorum_transfer(ctl->q);
            if (rc != 0)
                stream__host_log(ctl->b, STREAM_BROKER_WARN,
                                 "cluster: controlled shutdown: cannot hand the quorum over: %s",
                                 stream_strerror(rc));
            else
                stream__host_log(ctl->b, STREAM_BROKER_INFO,
                                 "cluster: controlled shutdown: handing the quorum over");
        }
        if (now - ctl->handover_since < HANDOVER_MAX_MS)
            return;
    }
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: controlled shutdown: this broker is fenced and leads nothing; "
                     "stopping");
    ctl->shutting_down = false;
    ctl->registered = false; /* not again: the broker stops */
    stream__host_stop_resume(ctl->b);
}

static void on_tick(uv_timer_t *t)
{
    controller *ctl = t->data;
    if (!ctl_running(ctl))
        return;
    ctl_link_expire(ctl); /* forwarded requests time out while the broker drains too */
    if (stream__host_stopping(ctl->b))
        return;
    uint64_t now = uv_now(stream__host_loop(ctl->b));
    if (ctl->data_only)
        tick_find_controller(ctl, now);
    int32_t leader = ctl_leader(ctl);
    ctl_link_follow(ctl);
    /* A data-only broker polls the metadata every heartbeat interval (the
     * heartbeat's answer also says when it is behind). */
    if (ctl->data_only && now - ctl->fetch_last_ms >= ctl->hb_interval_ms)
        send_fetch_metadata(ctl);
    if (ctl->shutting_down)
        tick_shutdown(ctl);
    else if (!ctl->registered)
        tick_register(ctl, leader, now);
    else
        tick_registered(ctl, leader, now);
    if (ctl_is_controller(ctl)) {
        check_sessions(ctl);
        if (ctl->elect_dirty || now - ctl->elect_last >= ELECT_RECHECK_MS)
            ctl_elect_pass(ctl);
        ctl_migrate_offsets_topic(ctl);
    }
}

/* ---- ops ---- */

static void pack_broker(msgpack_packer *pk, int32_t id, const char *host, uint16_t port,
                        int64_t epoch, bool fenced, int64_t leaderships)
{
    msgpack_pack_map(pk, 6);
    stream_pack_kv_int(pk, "node_id", id);
    stream_pack_kv_cstr(pk, "host", host);
    stream_pack_kv_uint(pk, "port", port);
    stream_pack_kv_int(pk, "epoch", epoch);
    stream_pack_kv_bool(pk, "fenced", fenced);
    stream_pack_kv_int(pk, "leaderships", leaderships);
}

/* Partitions led by broker id. */
static int64_t leaderships_of(const stream__meta *md, int32_t id)
{
    int64_t n = 0;
    size_t nt = stream__meta_topic_count(md);
    for (size_t i = 0; i < nt; i++) {
        const stream__meta_topic *t = stream__meta_topic_at(md, i);
        for (int32_t p = 0; p < t->partition_count; p++)
            n += t->partitions[p].leader == id;
    }
    return n;
}

/* "under_replicated" (offline false) or "offline": the count, then the
 * first HEALTH_LIST_MAX partitions as [{topic, partition}]. */
static void pack_health(msgpack_packer *pk, const stream__meta *md, bool offline)
{
    size_t under, off;
    stream__elect_health(md, &under, &off);
    size_t n = offline ? off : under;
    stream_pack_kv_uint(pk, offline ? "offline_count" : "under_replicated_count", n);
    stream_pack_key(pk, offline ? "offline" : "under_replicated");
    msgpack_pack_array(pk, (uint32_t)(n < HEALTH_LIST_MAX ? n : HEALTH_LIST_MAX));
    size_t packed = 0, nt = stream__meta_topic_count(md);
    for (size_t i = 0; i < nt && packed < HEALTH_LIST_MAX; i++) {
        const stream__meta_topic *t = stream__meta_topic_at(md, i);
        for (int32_t p = 0; p < t->partition_count && packed < HEALTH_LIST_MAX; p++) {
            const stream__meta_partition *mp = &t->partitions[p];
            if (offline ? mp->leader >= 0 : mp->n_isr >= mp->n_replicas)
                continue;
            msgpack_pack_map(pk, 2);
            stream_pack_kv_cstr(pk, "topic", t->name);
            stream_pack_kv_int(pk, "partition", p);
            packed++;
        }
    }
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
    stream_pack_response_header(&f.pk, id, 0, NULL, 12);
    if (!ctl_running(ctl)) {
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
        /* A single node leads every partition it has. */
        int64_t parts = 0;
        stream_store *st = stream__host_store(ctl->b);
        for (size_t i = 0; i < stream_store_topic_count(st); i++)
            parts += stream_store_topic_at(st, i)->partition_count;
        pack_broker(&f.pk,
                    (int32_t)stream_config_int(stream__host_config(ctl->b), STREAM_CONFIG_NODE_ID),
                    host, port, -1, false, parts);
        stream_pack_kv_bool(&f.pk, "clustered", false);
        stream_pack_kv_uint(&f.pk, "under_replicated_count", 0);
        stream_pack_key(&f.pk, "under_replicated");
        msgpack_pack_array(&f.pk, 0);
        stream_pack_kv_uint(&f.pk, "offline_count", 0);
        stream_pack_key(&f.pk, "offline");
        msgpack_pack_array(&f.pk, 0);
        stream__host_reply_finish(r, &f, id);
        return;
    }
    stream_pack_kv_cstr(&f.pk, "cluster_id", ctl->cluster_id);
    stream_pack_kv_int(&f.pk, "node_id", ctl->node_id);
    /* A data-only broker: the controller it follows, no term, the index of
     * its copy of the metadata. */
    stream_pack_kv_int(&f.pk, "leader_id", ctl_leader(ctl));
    stream_pack_kv_uint(&f.pk, "term", ctl->q != NULL ? stream__quorum_term(ctl->q) : 0);
    stream_pack_kv_uint(&f.pk, "applied_index", own_applied(ctl));
    stream_pack_key(&f.pk, "voters");
    msgpack_pack_array(&f.pk, (uint32_t)ctl->n_voters);
    for (size_t i = 0; i < ctl->n_voters; i++) {
        msgpack_pack_map(&f.pk, 4);
        stream_pack_kv_int(&f.pk, "node_id", ctl->voters[i].id);
        stream_pack_kv_cstr(&f.pk, "host", ctl->voters[i].host);
        stream_pack_kv_uint(&f.pk, "port", ctl->voters[i].port);
        stream_pack_kv_uint(&f.pk, "applied_index", voter_applied(ctl, i));
    }
    size_t n = stream__meta_broker_count(ctl->md);
    stream_pack_key(&f.pk, "brokers");
    msgpack_pack_array(&f.pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const stream__meta_broker *mb = stream__meta_broker_at(ctl->md, i);
        pack_broker(&f.pk, mb->id, mb->host, mb->port, mb->epoch, mb->fenced,
                    leaderships_of(ctl->md, mb->id));
    }
    stream_pack_kv_bool(&f.pk, "clustered", true);
    pack_health(&f.pk, ctl->md, false);
    pack_health(&f.pk, ctl->md, true);
    stream__host_reply_finish(r, &f, id);
}

/* A follower asks the leader to register it (broker to broker). */
static void op_register_broker(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[256];
    int64_t node;
    const char *host, *khost = NULL;
    size_t host_len, khost_len = 0;
    uint64_t port, seq, kport = 0;
    if (!ctl_running(ctl)) {
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "this broker is not in a cluster");
        return;
    }
    int rc = stream_field_int(m, "node_id", 1, INT32_MAX, &node, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_str_opt(m, "kafka_host", &khost, &khost_len, msg, sizeof(msg));
    if (rc == 0 && khost != NULL)
        rc = stream_field_uint(m, "kafka_port", 65535, &kport, msg, sizeof(msg));
    if (rc == 0 && khost != NULL && (kport == 0 || khost_len == 0 || khost_len > 255)) {
        rc = STREAM_EBADREQ;
        snprintf(msg, sizeof(msg), "kafka_host must be 1 to 255 bytes and kafka_port 1 to 65535");
    }
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
    if (!ctl_is_controller(ctl)) {
        snprintf(msg, sizeof(msg), "not the controller; the leader is node %d",
                 (int)ctl_leader(ctl));
        stream__host_reply_error(r, id, STREAM_ENOTLEADER, msg);
        return;
    }
    ctl_reg_job *j = NULL, *free_slot = NULL;
    for (size_t i = 0; i < CTL_MAX_REMOTE && j == NULL; i++) {
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
        memcmp(j->host, host, host_len) != 0 || j->kafka_port != kport)
        job_reset(j, ctl, (int32_t)node, seq, host, host_len, (uint16_t)port, khost, khost_len,
                  (uint16_t)kport);
    else if (j->done)
        j->done = j->registered = false; /* asked again: not seen there yet; replays are no-ops */
    drive(j);
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 0);
    stream__host_reply_finish(r, &f, id);
}

/* broker_heartbeat: a registered broker is alive (controller only). */
static void op_broker_heartbeat(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[256];
    int64_t node, epoch;
    if (!ctl_running(ctl)) {
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "this broker is not in a cluster");
        return;
    }
    bool shutting_down;
    uint64_t applied;
    int rc = stream_field_int(m, "node_id", 1, INT32_MAX, &node, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int(m, "broker_epoch", 0, INT64_MAX, &epoch, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "shutting_down", false, &shutting_down, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_uint_opt(m, "applied_index", UINT64_MAX, 0, &applied, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    if (!ctl_is_controller(ctl)) {
        snprintf(msg, sizeof(msg), "not the controller; the controller is node %d",
                 (int)ctl_leader(ctl));
        stream__host_reply_error(r, id, STREAM_ENOTLEADER, msg);
        return;
    }
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, (int32_t)node);
    if (mb == NULL) {
        snprintf(msg, sizeof(msg), "broker %lld is not registered", (long long)node);
        stream__host_reply_error(r, id, STREAM_ENOBROKER, msg);
        return;
    }
    if (mb->epoch != epoch) {
        snprintf(msg, sizeof(msg),
                 "broker %lld: epoch %lld is stale (current %lld); register again", (long long)node,
                 (long long)epoch, (long long)mb->epoch);
        stream__host_reply_error(r, id, STREAM_ESTALEEPOCH, msg);
        return;
    }
    if (mb->fenced) {
        snprintf(msg, sizeof(msg), "broker %lld (epoch %lld) is fenced; register again",
                 (long long)node, (long long)epoch);
        stream__host_reply_error(r, id, STREAM_ESTALEEPOCH, msg);
        return;
    }
    ctl_live *l = live_get(ctl, (int32_t)node);
    if (l != NULL) {
        if (l->epoch != epoch)
            l->fence_inflight = false;
        l->epoch = epoch;
        l->last_ms = uv_now(stream__host_loop(ctl->b));
        l->conn = stream__host_req_conn(r);
        if (applied > 0)
            l->applied_index = applied;
        if (shutting_down)
            fence(ctl, l, epoch, "controlled shutdown");
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 2);
    /* A data-only broker fetches the metadata when this is ahead of its copy. */
    stream_pack_kv_uint(&f.pk, "metadata_index", stream__meta_applied_index(ctl->md));
    /* Every broker can then show how far each voter has applied. */
    stream_pack_key(&f.pk, "voters");
    msgpack_pack_array(&f.pk, (uint32_t)ctl->n_voters);
    for (size_t i = 0; i < ctl->n_voters; i++) {
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_int(&f.pk, "node_id", ctl->voters[i].id);
        stream_pack_kv_uint(&f.pk, "applied_index", voter_applied(ctl, i));
    }
    stream__host_reply_finish(r, &f, id);
}

/* fetch_metadata {since, deltas}: the metadata for a data-only broker, which
 * has no quorum. Any voter answers from its own copy: metadata_index, and
 * when that copy is ahead of since, the commands after since (deltas, when
 * asked for and its journal still holds them all, within
 * FETCH_DELTAS_MAX) or else the whole image (the snapshot's encoding,
 * metadata.h). */
static void op_fetch_metadata(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[256];
    uint64_t since;
    if (!ctl_running(ctl)) {
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "this broker is not in a cluster");
        return;
    }
    bool deltas;
    int rc = stream_field_uint(m, "since", UINT64_MAX, &since, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "deltas", false, &deltas, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    if (ctl->q == NULL) {
        snprintf(msg, sizeof(msg),
                 "a data-only broker has no metadata of its own; the "
                 "controller is node %d",
                 (int)ctl_leader(ctl));
        stream__host_reply_error(r, id, STREAM_ENOTLEADER, msg);
        return;
    }
    uint64_t index = stream__meta_applied_index(ctl->md);
    stream_buf image;
    stream_buf_init(&image);
    bool as_deltas = index > since && deltas &&
                     stream__journal_since(ctl->journal, since, FETCH_DELTAS_MAX, &image) == 0;
    if (index > since && !as_deltas &&
        (stream__meta_snapshot(ctl->md, &image) != 0 || stream_buf_ok(&image) != 0)) {
        stream_buf_release(&image);
        stream__host_reply_error(r, id, STREAM_ENOMEM, "out of memory");
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, index <= since ? 1 : as_deltas ? 3 : 2);
    stream_pack_kv_uint(&f.pk, "metadata_index", index);
    if (as_deltas) {
        stream_pack_kv_uint(&f.pk, "since", since);
        stream_pack_kv_bin(&f.pk, "deltas", image.data, image.len);
    } else if (index > since) {
        stream_pack_kv_bin(&f.pk, "image", image.data, image.len);
    }
    stream__host_reply_finish(r, &f, id);
    stream_buf_release(&image);
}

static void op_offset_for_leader_epoch(void *svc, stream__req *r, uint64_t id,
                                       const msgpack_object *m)
{
    controller *ctl = svc;
    if (ctl->rm == NULL) {
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "this broker is not in a cluster");
        return;
    }
    stream__replica_op_offset_for_epoch(ctl->rm, r, id, m);
}

/* ---- the service ---- */

static const stream__service_op controller_ops[] = {
    {STREAM_OP_DESCRIBE_CLUSTER, op_describe_cluster},
    {STREAM_OP_REGISTER_BROKER, op_register_broker},
    {STREAM_OP_BROKER_HEARTBEAT, op_broker_heartbeat},
    {STREAM_OP_ALTER_ISR, ctl_op_alter_isr},
    {STREAM_OP_OFFSET_FOR_LEADER_EPOCH, op_offset_for_leader_epoch},
    {STREAM_OP_FETCH_METADATA, op_fetch_metadata},
};

/* The state machine of a voter: the metadata, with every command applied
 * kept in the journal too. */
static int journal_apply(void *arg, const uint8_t *cmd, size_t len, uint64_t index)
{
    controller *ctl = arg;
    int rc = stream__meta_apply(ctl->md, cmd, len, index);
    if (rc != STREAM_ENOMEM)
        stream__journal_add(ctl->journal, index, cmd, len);
    return rc;
}

static int journal_snapshot(void *arg, stream_buf *out)
{
    controller *ctl = arg;
    return stream__meta_snapshot(ctl->md, out);
}

static int journal_restore(void *arg, const uint8_t *p, size_t len, char *errbuf, size_t errbuf_len)
{
    controller *ctl = arg;
    int rc = stream__meta_restore(ctl->md, p, len, errbuf, errbuf_len);
    if (rc == 0)
        stream__journal_reset(ctl->journal, stream__meta_applied_index(ctl->md));
    return rc;
}

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
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len, "cluster.voters: %s", err);
    ctl->node_id = (int32_t)stream_config_int(cfg, STREAM_CONFIG_NODE_ID);
    bool found = false;
    char ids[STREAM__QUORUM_MAX_VOTERS * 12] = "";
    for (size_t i = 0; i < ctl->n_voters; i++) {
        found = found || ctl->voters[i].id == ctl->node_id;
        size_t k = strlen(ids);
        snprintf(ids + k, sizeof(ids) - k, "%s%d", i ? ", " : "", (int)ctl->voters[i].id);
    }
    if (!found && ctl->node_id <= 0)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "node.id %d: a broker in a cluster needs a node id >= 1 (set "
                            "--node-id; the voters are %s)",
                            (int)ctl->node_id, ids);
    /* Outside the voters: a data-only broker, following the metadata. */
    ctl->data_only = !found;
    const char *id = stream_config_str(cfg, STREAM_CONFIG_CLUSTER_ID);
    if (!stream__cluster_id_ok(id, strlen(id), STREAM__QUORUM_CLUSTER_ID_MAX))
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "cluster.id '%s': expected 1 to %d of A-Z a-z 0-9 . _ -", id,
                            STREAM__QUORUM_CLUSTER_ID_MAX);
    snprintf(ctl->cluster_id, sizeof(ctl->cluster_id), "%s", id);
    ctl->hb_interval_ms =
        (uint64_t)stream_config_int(cfg, STREAM_CONFIG_BROKER_HEARTBEAT_INTERVAL_MS);
    ctl->session_ms = (uint64_t)stream_config_int(cfg, STREAM_CONFIG_BROKER_SESSION_TIMEOUT_MS);
    if (ctl->session_ms <= ctl->hb_interval_ms)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "broker.session.timeout.ms (%llu) must be larger than "
                            "broker.heartbeat.interval.ms (%llu)",
                            (unsigned long long)ctl->session_ms,
                            (unsigned long long)ctl->hb_interval_ms);
    ctl->default_rf = stream_config_int(cfg, STREAM_CONFIG_DEFAULT_REPLICATION_FACTOR);
    if (ctl->default_rf == 0)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "default.replication.factor: 0 is not a factor; use 1 to 32, "
                            "or -1 for min(3, live brokers)");
    ctl->unclean_default = stream_config_bool(cfg, STREAM_CONFIG_UNCLEAN_LEADER_ELECTION_ENABLE);
    ctl->configured = true;
    return 0;
}

/* A broker asks this voter who leads (quorum.h): the client addresses. */
static void on_who_asked(void *arg, stream__quorum_who *who)
{
    controller *ctl = arg;
    const char *host;
    uint16_t port;
    stream__host_listen_address(ctl->b, &host, &port);
    snprintf(who->host, sizeof(who->host), "%s", host);
    who->port = port;
    if (who->leader_id == ctl->node_id) {
        snprintf(who->leader_host, sizeof(who->leader_host), "%s", host);
        who->leader_port = port;
        return;
    }
    const stream__meta_broker *mb =
        who->leader_id > 0 ? stream__meta_broker_find(ctl->md, who->leader_id) : NULL;
    if (mb != NULL) {
        snprintf(who->leader_host, sizeof(who->leader_host), "%s", mb->host);
        who->leader_port = mb->port;
    }
}

static int controller_start(stream_broker *b, void **svc, char *errbuf, size_t errbuf_len)
{
    controller *ctl = calloc(1, sizeof(*ctl));
    *svc = ctl;
    if (ctl == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    ctl->b = b;
    ctl->epoch = -1;
    ctl->link_lost_leader = -1;
    ctl->ctl_id = -1;
    const stream_config *cfg = stream__host_config(b);
    int rc = read_settings(ctl, cfg, errbuf, errbuf_len);
    if (rc != 0 || !ctl->configured)
        return rc;
    char data_dir[4096], dir[4200];
    rc = stream_config_data_dir(cfg, data_dir, sizeof(data_dir));
    if (rc != 0)
        return stream__fail(rc, errbuf, errbuf_len, "cannot find the data directory: %s",
                            stream_strerror(rc));
    snprintf(dir, sizeof(dir), "%s/%s", data_dir, META_DIR);
    ctl->md = stream__meta_new(ctl->cluster_id);
    if (ctl->md == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    stream__meta_set_event_cb(ctl->md, on_meta_event, ctl);
    ctl->seq = now_us();
    ctl->next_seq = ctl->seq + 2;
    uv_timer_init(stream__host_loop(b), &ctl->tick);
    ctl->tick.data = ctl;
    ctl->tick_open = true;
    uv_timer_init(stream__host_loop(b), &ctl->soon);
    ctl->soon.data = ctl;
    ctl->soon_open = true;

    rc = stream__replica_start(b, ctl->node_id, &ctl->rm, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    stream__replica_set_alter_isr(ctl->rm, ctl_alter_isr_local, ctl);
    stream__replica_set_auto_create(ctl->rm, stream__controller_auto_create, ctl);
    ctl_admin_start(ctl);
    uint64_t period = ctl->hb_interval_ms < TICK_MS ? ctl->hb_interval_ms : TICK_MS;
    if (ctl->data_only) {
        uv_timer_start(&ctl->tick, on_tick, 0, period);
        stream__host_log(b, STREAM_BROKER_INFO,
                         "cluster '%s': node %d, a data-only broker (outside the %zu voters): "
                         "following the metadata from the controller",
                         ctl->cluster_id, (int)ctl->node_id, ctl->n_voters);
        return 0;
    }

    stream__quorum_config qc;
    stream__quorum_config_init(&qc);
    qc.node_id = ctl->node_id;
    memcpy(qc.voters, ctl->voters, sizeof(ctl->voters));
    qc.n_voters = ctl->n_voters;
    qc.data_dir = dir;
    qc.cluster_id = ctl->cluster_id;
    qc.on_change = on_quorum_change;
    qc.change_arg = ctl;
    qc.who = on_who_asked;
    qc.who_arg = ctl;
    stream__quorum_fsm fsm;
    stream__meta_fsm(ctl->md, &fsm);
    ctl->journal = stream__journal_new(STREAM__JOURNAL_MAX_BYTES);
    if (ctl->journal == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    fsm.arg = ctl;
    fsm.apply = journal_apply;
    fsm.snapshot = journal_snapshot;
    fsm.restore = journal_restore;
    char err[1024];
    rc = stream__quorum_start(stream__host_loop(b), &qc, &fsm, &ctl->q, err, sizeof(err));
    if (rc != 0)
        return stream__fail(rc, errbuf, errbuf_len, "cluster: %s", err);
    uv_timer_start(&ctl->tick, on_tick, period, period);
    stream__host_log(b, STREAM_BROKER_INFO, "cluster '%s': node %d of %zu voters, metadata in %s",
                     ctl->cluster_id, (int)ctl->node_id, ctl->n_voters, dir);
    return 0;
}

static void on_shutdown_answer(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                               const msgpack_object *resp)
{
    (void)arg, (void)resp;
    if (err == 0 || !ctl->shutting_down)
        return;
    stream__host_log(ctl->b, STREAM_BROKER_WARN,
                     "cluster: controlled shutdown refused (%.*s); stopping anyway", (int)msg_len,
                     msg ? msg : stream_strerror(err));
    ctl->shutting_down = false;
    stream__host_stop_resume(ctl->b);
}

/* Controlled shutdown: asks the controller to fence this broker, which
 * moves its leaderships to in-sync replicas and takes it out of every ISR
 * (so leaders need not wait for it), and holds the stop until the metadata
 * shows it (tick_shutdown). No hold without a registration or a way to the
 * controller. */
static bool controller_stop_requested(void *svc)
{
    controller *ctl = svc;
    if (ctl == NULL || !ctl_running(ctl) || !ctl->registered)
        return false;
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, ctl->node_id);
    if (mb == NULL || mb->fenced || mb->epoch != ctl->epoch)
        return false;
    if (ctl_is_controller(ctl)) {
        ctl_live *l = live_get(ctl, ctl->node_id);
        if (l == NULL)
            return false;
        fence(ctl, l, ctl->epoch, "controlled shutdown");
        if (!l->fence_inflight)
            return false;
    } else {
        msgpack_packer *pk =
            ctl_link_begin(ctl, STREAM_OP_BROKER_HEARTBEAT, 3, 2000, on_shutdown_answer, NULL);
        if (pk == NULL)
            return false;
        stream_pack_kv_int(pk, "node_id", ctl->node_id);
        stream_pack_kv_int(pk, "broker_epoch", ctl->epoch);
        stream_pack_kv_bool(pk, "shutting_down", true);
        ctl->shutting_down = true; /* before _end: a failure there answers at once */
        if (ctl_link_end(ctl) != 0)
            return false;
    }
    ctl->shutting_down = true;
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: controlled shutdown: moving %lld leaderships away first",
                     (long long)leaderships_of(ctl->md, ctl->node_id));
    return true;
}

static void controller_conn_closed(void *svc, uint64_t conn)
{
    controller *ctl = svc;
    if (ctl == NULL || !ctl->configured)
        return;
    ctl_admin_conn_closed(ctl, conn);
    bool fence_now = ctl_is_controller(ctl) && !stream__host_stopping(ctl->b);
    for (size_t i = 0; i < ctl->nlive; i++) {
        ctl_live *l = &ctl->live[i];
        if (l->conn != conn)
            continue;
        l->conn = 0;
        const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, l->id);
        if (fence_now && mb != NULL && !mb->fenced && mb->epoch == l->epoch)
            fence(ctl, l, mb->epoch, "its connection to the controller closed");
    }
}

static void controller_stop(void *svc)
{
    controller *ctl = svc;
    if (ctl == NULL || ctl->stopped)
        return;
    ctl_isr_flush(ctl); /* the quorum's stop decides them, like any proposal */
    ctl->stopped = true;
    if (ctl->tick_open) {
        uv_close((uv_handle_t *)&ctl->tick, NULL);
        ctl->tick_open = false;
    }
    if (ctl->soon_open) {
        uv_close((uv_handle_t *)&ctl->soon, NULL);
        ctl->soon_open = false;
    }
    ctl_link_close(ctl);
    stream__quorum_ask_cancel(ctl->ask);
    ctl->ask = NULL;
    if (ctl->rm != NULL)
        stream__replica_stop(ctl->rm);
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
    stream__replica_free(ctl->rm);
    ctl_admin_free(ctl);
    stream__meta_free(ctl->md);
    free(ctl->live);
    free(ctl->elect_batch);
    free(ctl->elect_alters);
    free(ctl->isr_q);
    stream__journal_free(ctl->journal);
    free(ctl->lk.calls);
    free(ctl);
}

/* Named once outside this folder: in the broker's list of services
 * (libstream/broker/host.c). */
/* GET /metrics: the quorum as this voter sees it, offline partitions on
 * the quorum's leader (the controller: one broker reports them, as
 * Kafka's active controller does), and the replica manager's families. */
static void controller_metrics(void *svc, stream_buf *out)
{
    controller *ctl = svc;
    if (ctl->q != NULL) {
        static const char *const names[] = {"stream_raft_term", "stream_raft_commit_index",
                                            "stream_raft_applied_index"};
        static const char *const helps[] = {
            "The metadata quorum's current Raft term.",
            "The highest metadata log index known committed.",
            "The highest metadata log index applied here.",
        };
        uint64_t v[] = {stream__quorum_term(ctl->q), stream__quorum_commit_index(ctl->q),
                        stream__quorum_applied_index(ctl->q)};
        for (size_t i = 0; i < 3; i++) {
            stream_prom_family(out, names[i], STREAM_PROM_GAUGE, helps[i]);
            stream_prom_sample(out, names[i], NULL, 0, (double)v[i]);
        }
        stream_prom_family(out, "stream_raft_leader", STREAM_PROM_GAUGE,
                           "1 when this broker leads the metadata quorum (is the controller).");
        stream_prom_sample(out, "stream_raft_leader", NULL, 0,
                           stream__quorum_is_leader(ctl->q) ? 1 : 0);
    }
    if (ctl->md != NULL && ctl->q != NULL && stream__quorum_is_leader(ctl->q)) {
        size_t under = 0, offline = 0;
        stream__elect_health(ctl->md, &under, &offline);
        stream_prom_family(out, "stream_partitions_offline", STREAM_PROM_GAUGE,
                           "Partitions without a leader (reported by the controller only).");
        stream_prom_sample(out, "stream_partitions_offline", NULL, 0, (double)offline);
    }
    if (ctl->rm != NULL)
        stream__replica_metrics(ctl->rm, out);
}

const stream__service stream__controller_service = {
    .name = "controller",
    .ops = controller_ops,
    .nops = sizeof(controller_ops) / sizeof(controller_ops[0]),
    .start = controller_start,
    .stop = controller_stop,
    .free = controller_free,
    .conn_closed = controller_conn_closed,
    .stop_requested = controller_stop_requested,
    .metrics = controller_metrics,
};

/* ---- for the layers above (controller.h) ---- */

const stream__meta *stream__controller_metadata(stream_broker *b)
{
    controller *ctl = stream__host_service_state(b, &stream__controller_service);
    return ctl != NULL && ctl_running(ctl) ? ctl->md : NULL;
}

int32_t stream__controller_leader_id(stream_broker *b)
{
    controller *ctl = stream__host_service_state(b, &stream__controller_service);
    return ctl != NULL && ctl_running(ctl) ? ctl_leader(ctl) : -1;
}
