/*
 * group_client.c - a consumer's membership in a consumer group: join,
 * heartbeats, the partitions the coordinator hands out and takes back,
 * stored and committed offsets, leave (client.h, "Consumer groups"; the wire
 * side is share/doc/protocol.md 6.10-6.14). Starting partitions from their
 * committed offsets and commits are in group_client_offsets.c; what the
 * two files share is group_client_internal.h.
 *
 * Everything is asynchronous and runs inside the client's poll: a tick
 * sends join_group, heartbeats and commits when they are due, and the
 * response callbacks change state. Only subscribe, commit and close wait.
 *
 * Each partition the group ever gave this member has a stream__gpart, kept
 * until the group is freed (events and requests in flight point at it):
 *
 *   STARTING --offsets known--> ACTIVE --revoked--> REVOKING --committed--> RELEASED
 *      |                                                                       ^
 *      +-----------------------revoked before it started----------------------+
 *
 * STARTING: given by the coordinator; its committed offset and the log's
 * range are being asked for (fetch_offsets and list_offsets, one request of
 * each for every partition starting at that moment). ACTIVE: the consumer
 * fetches it. REVOKING: no longer fetched or returned; waits for the caller
 * to store its position (or revoke_timeout_ms), then for the commit of the
 * stored offset; then it is released and the next heartbeat goes out at
 * once without it. Every state but RELEASED is "held" and listed in `owned`
 * -- the protocol's rule that a partition is never consumed by two members.
 *
 * Losing the session (EUNKNOWNMEMBER, or no answer for a whole session
 * timeout) drops every partition at once without a commit: the coordinator
 * may have given them to others. The member then joins again - after
 * EUNKNOWNMEMBER as new, after a silent session under its own id first
 * (session_lapsed: a coordinator that only moved still knows it and gives
 * its partitions back at once) - and remembers how far it processed each
 * partition (gp->resume): one given back
 * goes on from there, and that position is committed at once, unless the
 * group's committed offset is further on (another member moved it), which
 * then wins, or gone (the topic or the group was deleted). A committed
 * offset behind the resume point is our own or older (a commit refused or
 * lost with the old coordinator): starting there would repeat records and
 * take the group's offset back. Records poll returned before the loss and
 * stored after it (a sink writing out its buffer) move the point on.
 *
 * The coordinator. Group requests go to g->coord, which starts as the
 * bootstrap connection: a single broker coordinates every group, so it
 * costs nothing. In a cluster the coordinator is the leader of the group's
 * partition of __consumer_offsets; a broker that is not answers
 * ENOTCOORDINATOR. That answer, a broken connection or a timeout marks the
 * coordinator lost: find_coordinator (on the bootstrap connection, which
 * any live broker can serve) names the new one; meanwhile no join or
 * heartbeat goes out (they would only fail against the old one and run up
 * backoffs), and once it answers they go at once (coord_found). Membership
 * moves with the coordinator (the broker stores it in __consumer_offsets):
 * the new one knows the member, its generation and its partitions, so the
 * member just goes on heartbeating there, consuming all along; nothing
 * changes hands in a group of any size. Only if the move took longer than
 * the session does the member stop its partitions and join again under its
 * own id (above), getting them back from the new coordinator and going on
 * from its own positions, so even a commit lost with the old coordinator
 * repeats nothing.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "group_client_internal.h"
#include "stream/error.h"

static int64_t group_tick(void *arg, int64_t now);
static void send_heartbeat(stream__cgroup *g, int64_t now);

/* ---- configuration --------------------------------------------------------- */

void stream_group_conf_init(stream_group_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->client_id = "libstream";
    conf->session_timeout_ms = STREAM_GROUP_DEFAULT_SESSION_TIMEOUT_MS;
    conf->auto_store = true;
    conf->auto_commit = true;
    conf->auto_commit_interval_ms = 5000;
    conf->revoke_timeout_ms = 5000;
}

static int check_subscription(const stream_group_conf *conf, const char *const *topics, size_t n,
                              const char *pattern, char *errbuf, size_t errbuf_len)
{
    if (!conf || !conf->group) {
        stream__errf(errbuf, errbuf_len, "subscribe: no group");
        return STREAM_EINVAL;
    }
    char why[256];
    int rc = stream_group_name_check(conf->group, strlen(conf->group), why, sizeof why);
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len, "invalid group name '%.100s': %s", conf->group, why);
        return rc;
    }
    if (conf->session_timeout_ms < 1 || conf->session_timeout_ms > 3600000 ||
        conf->auto_commit_interval_ms < 1 || conf->auto_commit_interval_ms > 3600000 ||
        conf->revoke_timeout_ms < 0 || conf->revoke_timeout_ms > 3600000 ||
        (conf->client_id && strlen(conf->client_id) > STREAM_GROUP_CLIENT_ID_MAX)) {
        stream__errf(errbuf, errbuf_len,
                     "group settings: session_timeout_ms and auto_commit_interval_ms 1..3600000, "
                     "revoke_timeout_ms 0..3600000, client_id at most %d bytes",
                     STREAM_GROUP_CLIENT_ID_MAX);
        return STREAM_EINVAL;
    }
    if (n == 0 && !pattern) {
        stream__errf(errbuf, errbuf_len, "subscribe: no topics and no pattern");
        return STREAM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!topics[i]) {
            stream__errf(errbuf, errbuf_len, "subscribe: topic %zu is NULL", i);
            return STREAM_EINVAL;
        }
        rc = stream_topic_name_check(topics[i], strlen(topics[i]), why, sizeof why);
        if (rc < 0) {
            stream__errf(errbuf, errbuf_len, "invalid topic name '%.100s': %s", topics[i], why);
            return rc;
        }
    }
    if (pattern) {
        if (strlen(pattern) > STREAM_GROUP_PATTERN_MAX) {
            stream__errf(errbuf, errbuf_len, "pattern longer than %d bytes",
                         STREAM_GROUP_PATTERN_MAX);
            return STREAM_EINVAL;
        }
        /* The broker compiles it too; checking here reports a typo before
         * anything is sent, with regerror's words. */
        regex_t re;
        int e = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
        if (e != 0) {
            regerror(e, &re, why, sizeof why);
            regfree(&re);
            stream__errf(errbuf, errbuf_len, "bad pattern '%.100s': %s", pattern, why);
            return STREAM_EINVAL;
        }
        regfree(&re);
    }
    return 0;
}

/* ---- partitions -------------------------------------------------------------- */

stream__gpart *stream__cgroup_find(const stream__cgroup *g, const char *topic, size_t tlen,
                                   int32_t partition)
{
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        if (gp->partition == partition && strlen(gp->topic) == tlen &&
            memcmp(gp->topic, topic, tlen) == 0)
            return gp;
    }
    return NULL;
}

static stream__gpart *get_gp(stream__cgroup *g, const char *topic, size_t tlen, int32_t partition)
{
    stream__gpart *gp = stream__cgroup_find(g, topic, tlen, partition);
    if (gp)
        return gp;
    if (g->nparts == g->parts_cap) {
        size_t cap = g->parts_cap ? g->parts_cap * 2 : 16;
        stream__gpart **np = realloc(g->parts, cap * sizeof *np);
        if (!np)
            return NULL;
        g->parts = np;
        g->parts_cap = cap;
    }
    gp = calloc(1, sizeof *gp);
    if (!gp || !(gp->topic = stream__strndup(topic, tlen))) {
        free(gp);
        return NULL;
    }
    gp->partition = partition;
    gp->state = STREAM__GP_RELEASED;
    gp->stored = -1;
    gp->committed = -1;
    gp->resume = -1;
    gp->resume_max = -1;
    g->parts[g->nparts++] = gp;
    return gp;
}

bool stream__cgroup_held(const stream__gpart *gp)
{
    return gp->state != STREAM__GP_RELEASED;
}

int64_t stream__cgroup_position(const stream__cgroup *g, const stream__gpart *gp)
{
    int64_t pos = -1;
    if (stream_consumer_position(g->co, gp->topic, gp->partition, &pos) < 0)
        return -1;
    return pos;
}

/* Stores every position: the records poll has returned count as processed,
 * those of partitions lost with the session too (their resume point). */
void stream__cgroup_store_positions(stream__cgroup *g)
{
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        if (gp->resume >= 0 && gp->resume_max > gp->resume)
            gp->resume = gp->resume_max;
        if (gp->state != STREAM__GP_ACTIVE && gp->state != STREAM__GP_REVOKING)
            continue;
        int64_t pos = stream__cgroup_position(g, gp);
        if (pos >= 0)
            gp->stored = pos;
    }
}

/* The partition is no longer held: out of the consumer, a REVOKED event,
 * and the coordinator must hear it at once. */
void stream__cgroup_release(stream__cgroup *g, stream__gpart *gp, int err)
{
    bool started = gp->state == STREAM__GP_ACTIVE || gp->state == STREAM__GP_REVOKING;
    if (gp->state == STREAM__GP_REVOKING)
        g->nrevoking--;
    gp->state = STREAM__GP_RELEASED;
    gp->seq++;
    gp->start_sent = false;
    if (started) {
        stream_consumer_unassign(g->co, gp->topic, gp->partition);
        stream__consumer_push(g->co, STREAM_EVENT_REVOKED, gp->topic, gp->partition, gp->committed,
                              err, err ? "the group session ended" : NULL);
    }
    g->hb_now = true;
}

/* Every partition is gone at once: the session ended (err) or close. */
void stream__cgroup_lose_all(stream__cgroup *g, int err)
{
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        /* What was processed but maybe not committed is remembered: given
         * back (the usual end of a coordinator move), the partition goes
         * on from there instead of repeating it. Records poll returned but
         * the caller has not stored yet (a sink's buffer) may still be
         * finished: a store after the loss moves the point up to the
         * position. A STARTING partition keeps the resume point of an
         * earlier loss. */
        if ((gp->state == STREAM__GP_ACTIVE || gp->state == STREAM__GP_REVOKING) &&
            gp->stored >= 0) {
            int64_t pos = stream__cgroup_position(g, gp);
            gp->resume = gp->stored;
            gp->resume_max = pos > gp->stored ? pos : gp->stored;
        }
        if (stream__cgroup_held(gp))
            stream__cgroup_release(g, gp, err);
    }
    for (size_t i = 0; i < g->nassigned; i++)
        free(g->assigned[i].topic);
    g->nassigned = 0;
    g->joined = false;
    g->final = false;
    g->member_id[0] = '\0';
    g->generation = -1;
    g->hb_now = false;
    g->next_join_ms = 0;
}

static bool in_assignment(const stream__cgroup *g, const stream__gpart *gp)
{
    for (size_t i = 0; i < g->nassigned; i++)
        if (g->assigned[i].partition == gp->partition &&
            strcmp(g->assigned[i].topic, gp->topic) == 0)
            return true;
    return false;
}

/* Brings what is held in line with the last assignment received: revokes
 * what is no longer in it, starts what is new. A partition being revoked
 * finishes its revocation first, even if given back meanwhile; the release
 * reconciles again and starts it anew. */
static void reconcile(stream__cgroup *g)
{
    bool changed = false;
    int64_t now = stream__client_mono_ms();
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        if ((gp->state != STREAM__GP_STARTING && gp->state != STREAM__GP_ACTIVE) ||
            in_assignment(g, gp))
            continue;
        changed = true;
        if (gp->state == STREAM__GP_STARTING) {
            stream__cgroup_release(g, gp, 0); /* nothing consumed: nothing to commit */
            continue;
        }
        gp->state = STREAM__GP_REVOKING;
        g->nrevoking++;
        gp->revoked_ms = now;
        g->nudged = false;
        stream__consumer_halt(g->co, gp->topic, gp->partition);
    }
    for (size_t i = 0; i < g->nassigned; i++) {
        const stream__tp *a = &g->assigned[i];
        stream__gpart *gp = get_gp(g, a->topic, strlen(a->topic), a->partition);
        if (!gp || gp->state != STREAM__GP_RELEASED)
            continue; /* out of memory: the next answer tries again */
        gp->state = STREAM__GP_STARTING;
        gp->start_sent = false;
        gp->seq++;
        changed = true;
    }
    if (changed)
        g->rebalances++;
}

/* ---- reading partition sets ---------------------------------------------------- */

/* Replaces the last assignment with the partition set `arr` of a response
 * ([{topic, partitions: [int32]}]). 0, EPROTO (malformed) or ENOMEM; on
 * failure the old assignment stays. */
static int take_assignment(stream__cgroup *g, const msgpack_object *arr)
{
    size_t n = 0;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *t, *parts;
        if (stream_elem_map(arr, i, "assignment", &t, NULL, 0) < 0 ||
            stream_field_array(t, "partitions", &parts, NULL, 0) < 0)
            return STREAM_EPROTO;
        n += parts->via.array.size;
    }
    stream__tp *a = calloc(n ? n : 1, sizeof *a);
    if (!a)
        return STREAM_ENOMEM;
    size_t k = 0;
    int rc = 0;
    for (uint32_t i = 0; i < arr->via.array.size && rc == 0; i++) {
        const msgpack_object *t = &arr->via.array.ptr[i], *parts;
        const char *name;
        size_t len;
        char why[128];
        if (stream_field_str(t, "topic", &name, &len, NULL, 0) < 0 ||
            stream_topic_name_check(name, len, why, sizeof why) < 0 ||
            stream_field_array(t, "partitions", &parts, NULL, 0) < 0) {
            rc = STREAM_EPROTO;
            break;
        }
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *o = &parts->via.array.ptr[j];
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT32_MAX) {
                rc = STREAM_EPROTO;
                break;
            }
            a[k].partition = (int32_t)o->via.u64;
            if (!(a[k].topic = stream__strndup(name, len))) {
                rc = STREAM_ENOMEM;
                break;
            }
            k++;
        }
    }
    if (rc < 0) {
        for (size_t i = 0; i < k; i++)
            free(a[i].topic);
        free(a);
        return rc;
    }
    for (size_t i = 0; i < g->nassigned; i++)
        free(g->assigned[i].topic);
    free(g->assigned);
    g->assigned = a;
    g->nassigned = k;
    return 0;
}

/* Reads the fields join_group and heartbeat answer alike. */
static int take_answer(stream__cgroup *g, const msgpack_object *root, int64_t now)
{
    int64_t gen, hb;
    const msgpack_object *arr;
    if (stream_field_int(root, "generation", -1, INT32_MAX, &gen, NULL, 0) < 0 ||
        stream_field_int(root, "heartbeat_interval_ms", 1, INT32_MAX, &hb, NULL, 0) < 0 ||
        stream_field_array(root, "assignment", &arr, NULL, 0) < 0)
        return STREAM_EPROTO;
    /* `reconciling` says whether the assignment is final; without it the
     * interval does (it drops to exactly this value while it is not). */
    bool reconciling = hb == STREAM_GROUP_RECONCILE_HEARTBEAT_MS;
    if (stream_field_bool_opt(root, "reconciling", reconciling, &reconciling, NULL, 0) < 0)
        return STREAM_EPROTO;
    int rc = take_assignment(g, arr);
    if (rc < 0)
        return rc;
    g->generation = (int32_t)gen;
    g->heartbeat_interval_ms = (int)hb;
    g->final = !reconciling;
    g->last_contact_ms = g->sent_ms;
    g->next_hb_ms = now + hb;
    g->backoff_ms = 0;
    return 0;
}

/* ---- the coordinator ---------------------------------------------------------------- */

#define FIND_BACKOFF_MS 200

int64_t stream__cgroup_send(stream__cgroup *g, stream__resp_cb cb, void *arg)
{
    return stream__req_send_node(g->c, g->coord, cb, arg, 0, 0);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The coordinator is known again: what waited for it goes soon, not after
 * the backoffs the failed attempts ran up (membership carries on there, so
 * the sooner the heartbeat arrives the shorter the pause), but no sooner
 * than FIND_BACKOFF_MS after the last try: a coordinator that keeps
 * answering ENOTCOORDINATOR, or is named while already dead, is not
 * hammered. */
static void coord_found(stream__cgroup *g, int64_t now)
{
    g->coord_lost = false;
    int64_t soon = g->sent_ms + FIND_BACKOFF_MS > now ? g->sent_ms + FIND_BACKOFF_MS : now;
    g->next_hb_ms = min64(g->next_hb_ms, soon);
    g->next_join_ms = min64(g->next_join_ms, soon);
    g->commit_retry_ms = min64(g->commit_retry_ms, soon);
    g->start_retry_ms = min64(g->start_retry_ms, soon);
}

static void find_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__cgroup *g = arg;
    int64_t now = stream__client_mono_ms();
    g->find_id = 0;
    int64_t node, port;
    const char *host;
    size_t hlen;
    char hbuf[256];
    int err = r->err;
    if (err == 0 &&
        (stream_field_int(r->root, "node_id", 0, INT32_MAX, &node, NULL, 0) < 0 ||
         stream_field_str(r->root, "host", &host, &hlen, NULL, 0) < 0 || hlen >= sizeof hbuf ||
         stream_field_int(r->root, "port", 1, 65535, &port, NULL, 0) < 0))
        err = STREAM_EPROTO;
    if (err == STREAM_EUNKNOWNOP) {
        /* A broker from before find_coordinator: it is every group's
         * coordinator itself. */
        g->coord = STREAM__NODE_BOOTSTRAP;
        coord_found(g, now);
        return;
    }
    if (err != 0) {
        g->next_find_ms = now + FIND_BACKOFF_MS;
        return;
    }
    memcpy(hbuf, host, hlen);
    hbuf[hlen] = '\0';
    stream__client_learn_node(c, (int32_t)node, hbuf, (int)port);
    g->coord = (int32_t)node;
    coord_found(g, now);
}

/* Asks the bootstrap connection where the coordinator is now. */
static void send_find(stream__cgroup *g, int64_t now)
{
    msgpack_packer *pk = stream__req_begin(g->c, STREAM_OP_FIND_COORDINATOR, 1);
    stream_pack_kv_cstr(pk, "group", g->group);
    int64_t id = stream__req_send(g->c, find_cb, g, 0, 0);
    /* One find per FIND_BACKOFF_MS at most, answered or not: a coordinator
     * named while already dead fails the request sent to it at once, and
     * the find it sets off must not make a loop at the speed of the
     * network. */
    g->next_find_ms = now + FIND_BACKOFF_MS;
    if (id > 0)
        g->find_id = id;
}

int stream__cgroup_find_coord(stream__cgroup *g, int64_t deadline)
{
    while (g->coord_lost) {
        int64_t now = stream__client_mono_ms();
        if (now >= deadline)
            return STREAM_ETIMEDOUT;
        if (!g->find_id && now >= g->next_find_ms)
            send_find(g, now);
        int64_t left = deadline - now;
        int rc = stream_client_poll(g->c, left > FIND_BACKOFF_MS ? FIND_BACKOFF_MS : (int)left);
        if (rc < 0 && rc != STREAM_ETIMEDOUT)
            return rc;
    }
    return 0;
}

bool stream__cgroup_check_coord(stream__cgroup *g, const stream__resp *r)
{
    int err = r->err;
    if (!(err == STREAM_ENOTCOORDINATOR || !r->root || err == STREAM_ETIMEDOUT ||
          err == STREAM_ECLOSED))
        return false;
    g->coord_lost = true; /* found again at next_find_ms (send_find paces) */
    return true;
}

int stream__cgroup_next_backoff(stream__cgroup *g)
{
    g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : STREAM__CGROUP_BACKOFF_MIN_MS;
    if (g->backoff_ms > STREAM__CGROUP_BACKOFF_MAX_MS)
        g->backoff_ms = STREAM__CGROUP_BACKOFF_MAX_MS;
    return g->backoff_ms;
}

/* A failure that ends membership for good: one ERROR event for the caller. */
void stream__cgroup_fail(stream__cgroup *g, int err, const char *msg)
{
    stream__cgroup_lose_all(g, err);
    g->dead = true;
    char line[700];
    stream__errf(line, sizeof line, "group '%s': %s", g->group,
                 msg && *msg ? msg : stream_strerror(err));
    stream__consumer_push(g->co, STREAM_EVENT_ERROR, NULL, -1, -1, err, line);
}

/* ---- join ------------------------------------------------------------------------ */

static void join_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__cgroup *g = arg;
    int64_t now = stream__client_mono_ms();
    g->join_id = 0;
    int err = r->err;
    const char *msg = r->msg;
    if (err == 0) {
        const char *id;
        size_t len;
        int64_t st;
        char *mid = NULL;
        if (stream_field_str(r->root, "member_id", &id, &len, NULL, 0) < 0 || len == 0 ||
            len > STREAM_GROUP_MEMBER_ID_MAX ||
            stream_field_int(r->root, "session_timeout_ms", 1, INT32_MAX, &st, NULL, 0) < 0) {
            err = STREAM_EPROTO;
            msg = "malformed join_group answer";
        } else if (!(mid = stream__strndup(id, len))) {
            err = STREAM_ENOMEM;
            msg = "";
        } else if ((err = take_answer(g, r->root, now)) < 0) {
            free(mid);
            msg = "malformed join_group answer";
        } else {
            free(g->member_id);
            g->member_id = mid;
            g->session_timeout_ms = (int32_t)st;
            g->joined = true;
            g->nudged = false;
            reconcile(g);
        }
    }
    stream__cgroup_check_coord(g, r);
    if (g->subscribing) {
        /* The coordinator moved, or the connection went before the answer
         * came (a broker restarting; the answer waits for the membership
         * to be durable): find it and join again, as later joins do, until
         * subscribe's deadline. A broker that refuses the connection fails
         * it at once. */
        g->join_err = err;
        g->join_retry =
            err == STREAM_ENOTCOORDINATOR || err == STREAM_ECONNRESET || err == STREAM_ECLOSED;
        if (err)
            stream__errf(g->join_msg, sizeof g->join_msg, "%s",
                         msg && *msg ? msg : stream_strerror(err));
        return;
    }
    if (err == 0 || g->closing)
        return;
    if (err == STREAM_EUNKNOWNMEMBER) {
        g->member_id[0] = '\0'; /* join as new, at once */
        g->next_join_ms = now;
    } else if (!r->root || stream_err_retriable(err) || err == STREAM_ECLOSED ||
               err == STREAM_EPROTO || err == STREAM_ENOMEM) {
        g->next_join_ms = now + stream__cgroup_next_backoff(g);
    } else {
        stream__cgroup_fail(g, err, msg);
    }
}

static void pack_str_array(msgpack_packer *pk, char *const *v, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        stream_pack_cstr(pk, v[i]);
}

static int send_join(stream__cgroup *g)
{
    size_t fields = 4 + (g->ntopics || !g->pattern ? 1 : 0) + (g->pattern ? 1 : 0);
    msgpack_packer *pk = stream__req_begin(g->c, STREAM_OP_JOIN_GROUP, fields);
    stream_pack_kv_cstr(pk, "group", g->group);
    stream_pack_kv_cstr(pk, "member_id", g->member_id);
    stream_pack_kv_cstr(pk, "client_id", g->client_id);
    stream_pack_kv_int(pk, "session_timeout_ms", g->conf.session_timeout_ms);
    if (g->ntopics || !g->pattern) {
        stream_pack_key(pk, "topics");
        pack_str_array(pk, g->topics, g->ntopics);
    }
    if (g->pattern)
        stream_pack_kv_cstr(pk, "pattern", g->pattern);
    int64_t id = stream__cgroup_send(g, join_cb, g);
    if (id < 0)
        return (int)id;
    g->join_id = id;
    g->sent_ms = stream__client_mono_ms();
    return 0;
}

/* ---- heartbeat --------------------------------------------------------------------- */

static void heartbeat_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__cgroup *g = arg;
    int64_t now = stream__client_mono_ms();
    g->hb_id = 0;
    if (g->closing || !g->joined)
        return;
    int err = r->err;
    if (err == 0) {
        err = take_answer(g, r->root, now);
        if (err == 0) {
            reconcile(g);
            if (g->hb_now)
                g->next_hb_ms = now; /* something was released meanwhile */
            return;
        }
    }
    stream__cgroup_check_coord(g, r);
    if (err == STREAM_EUNKNOWNMEMBER) {
        stream__cgroup_lose_all(g, STREAM_EUNKNOWNMEMBER);
        g->next_join_ms = now;
    } else if (!r->root || stream_err_retriable(err) || err == STREAM_ECLOSED ||
               err == STREAM_EPROTO || err == STREAM_ENOMEM) {
        g->next_hb_ms = now + stream__cgroup_next_backoff(g);
    } else {
        stream__cgroup_fail(g, err, r->msg);
    }
}

/* Packs the partitions held, grouped by topic. */
static void pack_owned(stream__cgroup *g, msgpack_packer *pk)
{
    size_t ntopics = 0;
    for (size_t i = 0; i < g->nparts; i++) {
        if (!stream__cgroup_held(g->parts[i]))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = stream__cgroup_held(g->parts[j]) &&
                   strcmp(g->parts[j]->topic, g->parts[i]->topic) == 0;
        ntopics += !seen;
    }
    msgpack_pack_array(pk, ntopics);
    for (size_t i = 0; i < g->nparts; i++) {
        if (!stream__cgroup_held(g->parts[i]))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = stream__cgroup_held(g->parts[j]) &&
                   strcmp(g->parts[j]->topic, g->parts[i]->topic) == 0;
        if (seen)
            continue;
        size_t np = 0;
        for (size_t j = i; j < g->nparts; j++)
            np += stream__cgroup_held(g->parts[j]) &&
                  strcmp(g->parts[j]->topic, g->parts[i]->topic) == 0;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "topic", g->parts[i]->topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, np);
        for (size_t j = i; j < g->nparts; j++)
            if (stream__cgroup_held(g->parts[j]) &&
                strcmp(g->parts[j]->topic, g->parts[i]->topic) == 0)
                msgpack_pack_int32(pk, g->parts[j]->partition);
    }
}

static void send_heartbeat(stream__cgroup *g, int64_t now)
{
    msgpack_packer *pk = stream__req_begin(g->c, STREAM_OP_HEARTBEAT, 4);
    stream_pack_kv_cstr(pk, "group", g->group);
    stream_pack_kv_cstr(pk, "member_id", g->member_id);
    stream_pack_kv_int(pk, "generation", g->generation);
    stream_pack_key(pk, "owned");
    pack_owned(g, pk);
    int64_t id = stream__cgroup_send(g, heartbeat_cb, g);
    if (id < 0) {
        g->next_hb_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        return;
    }
    g->hb_id = id;
    g->hb_now = false;
    g->sent_ms = now;
}

/* ---- the tick ---------------------------------------------------------------------- */

/* No answer for a whole session: the coordinator may have removed us and
 * given our partitions away, so they stop now (their resume points kept).
 * But it may as well only have moved: a new coordinator restores the
 * membership with a fresh session. So the member joins again under its
 * own id: known there, it gets its partitions back at once and goes on
 * from where it got; unknown (EUNKNOWNMEMBER), it joins as new. */
static void session_lapsed(stream__cgroup *g)
{
    char *id = strdup(g->member_id);
    stream__cgroup_lose_all(g, STREAM_EUNKNOWNMEMBER);
    if (id) {
        free(g->member_id);
        g->member_id = id;
    }
}

static int64_t group_tick(void *arg, int64_t now)
{
    stream__cgroup *g = arg;
    if (g->dead || g->closing || g->subscribing)
        return INT64_MAX;
    if (g->coord_lost && !g->find_id && now >= g->next_find_ms)
        send_find(g, now);
    /* While the coordinator is being found again, membership requests
     * wait for the answer (coord_found sends them at once) rather than
     * fail against the old one and back off. */
    bool lost = g->coord_lost;
    int64_t find_wake = lost && !g->find_id ? g->next_find_ms : INT64_MAX;
    if (!g->joined) {
        if (!lost && !g->join_id && now >= g->next_join_ms && send_join(g) < 0)
            g->next_join_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        if (g->join_id || lost)
            return find_wake;
        return g->next_join_ms;
    }
    if (now - g->last_contact_ms > g->session_timeout_ms) {
        session_lapsed(g);
        if (!lost && !g->join_id && send_join(g) < 0)
            g->next_join_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        return min64(now + STREAM__CGROUP_BACKOFF_MIN_MS, find_wake);
    }
    if (!lost)
        stream__cgroup_send_start(g, now);
    stream__cgroup_advance(g, now);
    int64_t next = find_wake;
    if (!g->hb_id && !lost) {
        if (g->hb_now || now >= g->next_hb_ms)
            send_heartbeat(g, now);
        else
            next = min64(next, g->next_hb_ms);
    }
    if (g->conf.auto_commit)
        next = min64(next, g->next_commit_ms);
    if (g->commit_retry_ms > now)
        next = min64(next, g->commit_retry_ms);
    next = min64(next, g->last_contact_ms + g->session_timeout_ms + 1);
    for (size_t i = 0; i < g->nparts; i++) {
        const stream__gpart *gp = g->parts[i];
        if (gp->state == STREAM__GP_REVOKING)
            next = min64(next, gp->revoked_ms + g->conf.revoke_timeout_ms);
        else if (gp->state == STREAM__GP_STARTING && !gp->start_sent && !lost)
            next = min64(next, g->start_retry_ms > now ? g->start_retry_ms : now + 1);
    }
    return next;
}

/* ---- for consumer.c ------------------------------------------------------------------ */

void stream__cgroup_processed(stream__cgroup *g, void *part, int64_t position)
{
    stream__gpart *gp = part;
    if (g->conf.auto_store && (gp->state == STREAM__GP_ACTIVE || gp->state == STREAM__GP_REVOKING))
        gp->stored = position;
}

void stream__cgroup_before_poll(stream__cgroup *g)
{
    /* Auto-commits and heartbeats run in the tick; only a revocation or a
     * release waiting for its heartbeat need a look on every poll. */
    if (g->nrevoking == 0 && !g->hb_now)
        return;
    int64_t now = stream__client_mono_ms();
    stream__cgroup_advance(g, now);
    if (g->hb_now && !g->hb_id && g->joined && !g->closing && !g->coord_lost)
        send_heartbeat(g, now);
}

bool stream__cgroup_wants_caller(stream__cgroup *g)
{
    if (g->nrevoking == 0 || g->nudged || g->closing || !g->joined)
        return false;
    int64_t now = stream__client_mono_ms();
    for (size_t i = 0; i < g->nparts; i++)
        if (g->parts[i]->state == STREAM__GP_REVOKING &&
            !stream__cgroup_revoke_ready(g, g->parts[i], now)) {
            g->nudged = true;
            return true;
        }
    return false;
}

bool stream__cgroup_settled(const stream__cgroup *g)
{
    if (g->dead || g->closing)
        return true;
    if (!g->joined || !g->final)
        return false;
    for (size_t i = 0; i < g->nparts; i++)
        if (g->parts[i]->state == STREAM__GP_STARTING || g->parts[i]->state == STREAM__GP_REVOKING)
            return false;
    return true;
}

int stream__cgroup_fetch_wait(const stream__cgroup *g, int64_t now, int max_wait_ms)
{
    /* An auto-commit may wait behind a fetch; one a caller waits for may
     * not. */
    if (g->join_id || g->hb_id || (g->commit && g->commit->wait) || g->leave_id || g->hb_now)
        return -1;
    /* find_coordinator goes on the bootstrap connection too, and what
     * waits for its answer is the whole membership. */
    if (g->coord_lost)
        return -1;
    /* A revocation holds up a rebalance: its commit and heartbeat must not
     * queue behind a long poll either. */
    if (g->nrevoking > 0)
        return -1;
    if (!g->joined || g->closing || g->dead)
        return max_wait_ms;
    if (g->next_hb_ms <= now)
        return -2; /* the group's tick sends it in this same round */
    return g->next_hb_ms - now < max_wait_ms ? (int)(g->next_hb_ms - now) : max_wait_ms;
}

void stream__cgroup_free(stream__cgroup *g)
{
    if (!g)
        return;
    stream__client_remove_tick(g->c, group_tick, g);
    if (g->find_id)
        stream__req_cancel(g->c, g->find_id);
    if (g->join_id)
        stream__req_cancel(g->c, g->join_id);
    if (g->hb_id)
        stream__req_cancel(g->c, g->hb_id);
    if (g->leave_id)
        stream__req_cancel(g->c, g->leave_id);
    if (g->commit_id)
        stream__req_cancel(g->c, g->commit_id);
    stream__cgroup_commit_free(g->commit);
    while (g->starts) {
        stream__start_ctx *s = g->starts;
        g->starts = s->next;
        if (s->ids[0])
            stream__req_cancel(g->c, s->ids[0]);
        for (size_t i = 0; i < s->lo_n; i++)
            stream__req_cancel(g->c, s->lo_ids[i]);
        stream__cgroup_start_free(s);
    }
    for (size_t i = 0; i < g->nparts; i++) {
        free(g->parts[i]->topic);
        free(g->parts[i]);
    }
    free(g->parts);
    for (size_t i = 0; i < g->nassigned; i++)
        free(g->assigned[i].topic);
    free(g->assigned);
    for (size_t i = 0; i < g->ntopics; i++)
        free(g->topics[i]);
    free(g->topics);
    free(g->pattern);
    free(g->group);
    free(g->client_id);
    free(g->member_id);
    free(g);
}

/* ---- the public calls ---------------------------------------------------------------- */

static stream__cgroup *group_new(stream_consumer *co, const stream_group_conf *conf,
                                 const char *const *topics, size_t n, const char *pattern)
{
    stream__cgroup *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->co = co;
    g->c = stream__consumer_client(co);
    g->conf = *conf;
    g->generation = -1;
    g->group = strdup(conf->group);
    g->client_id = strdup(conf->client_id ? conf->client_id : "libstream");
    g->member_id = strdup("");
    g->coord = STREAM__NODE_BOOTSTRAP;
    g->pattern = pattern ? strdup(pattern) : NULL;
    g->topics = calloc(n ? n : 1, sizeof *g->topics);
    bool ok = g->group && g->client_id && g->member_id && (!pattern || g->pattern) && g->topics;
    for (size_t i = 0; ok && i < n; i++) {
        g->topics[i] = strdup(topics[i]);
        ok = g->topics[i] != NULL;
        g->ntopics += ok;
    }
    if (!ok || stream__client_add_tick(g->c, group_tick, g) < 0) {
        stream__cgroup_free(g); /* removing a tick never added is a no-op */
        return NULL;
    }
    g->conf.group = g->group;
    g->conf.client_id = g->client_id;
    return g;
}

int stream_consumer_subscribe(stream_consumer *co, const stream_group_conf *conf,
                              const char *const *topics, size_t n, const char *pattern,
                              int timeout_ms, char *errbuf, size_t errbuf_len)
{
    int rc = check_subscription(conf, topics, n, pattern, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (stream__consumer_group(co) || stream__consumer_assigned_any(co)) {
        stream__errf(errbuf, errbuf_len, "subscribe: the consumer is already %s",
                     stream__consumer_group(co) ? "subscribed" : "assigned partitions");
        return STREAM_EINVAL;
    }
    stream__cgroup *g = group_new(co, conf, topics, n, pattern);
    if (!g)
        return STREAM_ENOMEM;
    stream_client *c = g->c;
    int64_t deadline = stream__client_deadline(c, timeout_ms);
    g->subscribing = true;
    rc = send_join(g);
    while (rc == 0 && (g->join_id || g->join_retry)) {
        int64_t now = stream__client_mono_ms();
        if (!g->join_id && !g->find_id) {
            /* ENOTCOORDINATOR, a lost connection: find the coordinator,
             * then join there. */
            if (!g->coord_lost) {
                g->join_retry = false;
                g->join_err = 0;
                rc = send_join(g);
                continue;
            }
            if (now >= g->next_find_ms)
                send_find(g, now);
        }
        if (now >= deadline) {
            rc = STREAM_ETIMEDOUT;
            stream__errf(errbuf, errbuf_len,
                         "cannot join group '%s': no answer from %s within %d ms", g->group,
                         stream_client_broker(c),
                         timeout_ms < 0 ? stream__client_request_timeout(c) : timeout_ms);
            break;
        }
        int64_t left = deadline - now;
        if (g->join_retry && !g->find_id && left > FIND_BACKOFF_MS)
            left = FIND_BACKOFF_MS;
        rc = stream_client_poll(c, left > 1000 ? 1000 : (int)left);
        if (rc > 0)
            rc = 0;
    }
    g->subscribing = false;
    g->join_retry = false;
    if (rc == 0 && g->join_err) {
        rc = g->join_err;
        if (rc == STREAM_EUNKNOWNOP)
            stream__errf(errbuf, errbuf_len,
                         "cannot join group '%s': the broker at %s does not support consumer "
                         "groups (protocol version 2)",
                         g->group, stream_client_broker(c));
        else
            stream__errf(errbuf, errbuf_len, "cannot join group '%s': %s", g->group, g->join_msg);
    }
    if (rc < 0) {
        stream__cgroup_free(g);
        return rc;
    }
    stream__consumer_set_group(co, g);
    g->next_commit_ms = stream__client_mono_ms() + g->conf.auto_commit_interval_ms;
    return 0;
}

static void leave_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__cgroup *g = arg;
    g->leave_id = 0;
    g->leave_done = true;
}

int stream_consumer_close(stream_consumer *co, bool commit, int timeout_ms, char *errbuf,
                          size_t errbuf_len)
{
    stream__cgroup *g = stream__consumer_group(co);
    if (!g) {
        stream__errf(errbuf, errbuf_len, "close: the consumer is not a group member");
        return STREAM_EINVAL;
    }
    if (g->closing)
        return 0;
    int64_t deadline = stream__client_deadline(g->c, timeout_ms);
    /* From here on the tick sends nothing and answers change nothing, so
     * no partition starts while we leave. */
    g->closing = true;
    /* Stop fetching first, so the positions committed are the last ones. */
    for (size_t i = 0; i < g->nparts; i++)
        if (g->parts[i]->state == STREAM__GP_ACTIVE || g->parts[i]->state == STREAM__GP_REVOKING)
            stream__consumer_halt(co, g->parts[i]->topic, g->parts[i]->partition);
    if (g->conf.auto_store)
        stream__cgroup_store_positions(g);
    int rc = 0;
    if (commit && g->joined)
        rc = stream__cgroup_commit_now(g, deadline, errbuf, errbuf_len);
    if (g->joined) {
        msgpack_packer *pk = stream__req_begin(g->c, STREAM_OP_LEAVE_GROUP, 2);
        stream_pack_kv_cstr(pk, "group", g->group);
        stream_pack_kv_cstr(pk, "member_id", g->member_id);
        int64_t id = stream__cgroup_send(g, leave_cb, g);
        if (id > 0) {
            g->leave_id = id;
            int lrc = stream__client_wait(g->c, &g->leave_done, deadline);
            if (lrc < 0 && rc == 0) {
                rc = lrc;
                stream__errf(errbuf, errbuf_len, "cannot leave group '%s': %s", g->group,
                             stream_strerror(lrc));
            }
        }
    }
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        if (gp->state == STREAM__GP_ACTIVE || gp->state == STREAM__GP_REVOKING)
            stream_consumer_unassign(co, gp->topic, gp->partition);
        gp->state = STREAM__GP_RELEASED;
    }
    g->nrevoking = 0;
    g->joined = false;
    return rc;
}

int stream_consumer_group_status(const stream_consumer *co, stream_group_status *out)
{
    const stream__cgroup *g = stream__consumer_group(co);
    memset(out, 0, sizeof *out);
    out->member_id = "";
    out->generation = -1;
    if (!g)
        return STREAM_EINVAL;
    out->member_id = g->member_id;
    out->generation = g->generation;
    out->joined = g->joined;
    out->settled = g->joined && stream__cgroup_settled(g);
    for (size_t i = 0; i < g->nparts; i++)
        out->held += stream__cgroup_held(g->parts[i]);
    out->rebalances = g->rebalances;
    out->commits = g->commits;
    return 0;
}
