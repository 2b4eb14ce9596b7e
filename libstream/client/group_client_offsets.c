/*
 * group_client_offsets.c - a group member's offsets: starting the
 * partitions it is given (their committed offset and the log's range, asked
 * for together), the offsets the caller stores, and commits (automatic,
 * on revocation, or when the caller asks and waits). Membership itself is
 * in group_client.c, which describes the whole.
 */
#include <stdlib.h>
#include <string.h>

#include "group_client_internal.h"
#include "stream/error.h"

/* ---- starting partitions ------------------------------------------------------------ */

void stream__cgroup_start_free(stream__start_ctx *s)
{
    if (!s)
        return;
    free(s->gps);
    free(s->seqs);
    free(s->committed);
    free(s->log_start);
    free(s->hw);
    free(s->err);
    free(s->lo_ids);
    free(s);
}

static void unlink_start(stream__cgroup *g, stream__start_ctx *s)
{
    for (stream__start_ctx **pp = &g->starts; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

/* Index of (topic, partition) in s, or -1. */
static long start_index(const stream__start_ctx *s, const char *name, size_t len, int64_t partition)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->gps[i]->partition == partition && strlen(s->gps[i]->topic) == len &&
            memcmp(s->gps[i]->topic, name, len) == 0)
            return (long)i;
    return -1;
}

/* Both answers are in: start what can start, retry the rest later. */
static void start_finish(stream__cgroup *g, stream__start_ctx *s)
{
    int64_t now = stream__client_mono_ms();
    const stream_consumer_conf *cc = stream__consumer_conf(g->co);
    bool retry = false;
    for (size_t i = 0; i < s->n; i++) {
        stream__gpart *gp = s->gps[i];
        if (gp->state != STREAM__GP_STARTING || gp->seq != s->seqs[i])
            continue; /* revoked meanwhile */
        if (s->failed || s->err[i] || s->log_start[i] < 0 || s->hw[i] < 0) {
            /* Not the leader (or its broker died): ask who is, for the
             * retry's list_offsets. */
            int why = s->err[i] ? s->err[i] : s->failed;
            if (stream__retry_decide(why) == STREAM__RETRY_REFRESH)
                stream__client_refresh_async(g->c, gp->topic);
            gp->start_sent = false;
            retry = true;
            continue;
        }
        int64_t start = s->committed[i];
        /* Given back after the session ended (a coordinator move): go on
         * from where this member got to, not from its last commit, unless
         * another member has committed further meanwhile. A committed
         * offset below the resume point is ours, or older than ours: one
         * whose answer was lost with the old coordinator, or none at all;
         * starting there would repeat records and take the group's offset
         * back. No committed offset where we knew one means the group's
         * offsets were deleted (the topic or the group was): the position
         * may belong to a log that is gone, so auto_offset_reset decides.
         * The log's range is no reason to refuse it: a new leader's high
         * watermark may lag behind what its predecessor let us read (the
         * consumer then waits for it), and an offset the log no longer has
         * is the consumer's out-of-range case, as a committed one's. */
        bool resumed = false;
        if (gp->resume >= 0 && start <= gp->resume && !(start < 0 && gp->committed >= 0)) {
            resumed = start != gp->resume;
            start = gp->resume;
        }
        if (start < 0) {
            if (cc->auto_offset_reset == STREAM_RESET_EARLIEST)
                start = s->log_start[i];
            else if (cc->auto_offset_reset == STREAM_RESET_LATEST)
                start = s->hw[i];
        }
        int64_t end = cc->stop_at_end ? s->hw[i] : -1;
        if (start < 0) {
            /* auto_offset_reset is ERROR: held (the coordinator gave it to
             * us) but never read, and the caller is told. */
            gp->state = STREAM__GP_ACTIVE;
            gp->committed = -1;
            gp->stored = -1;
            char msg[600];
            stream__errf(msg, sizeof msg,
                         "topic '%s' partition %d: group '%s' has no committed offset and "
                         "auto_offset_reset is error",
                         gp->topic, (int)gp->partition, g->group);
            stream__consumer_push(g->co, STREAM_EVENT_ERROR, NULL, -1, -1, STREAM_ENOENT, msg);
            continue;
        }
        if (stream__consumer_start(g->co, gp->topic, gp->partition, start, end, gp) < 0) {
            gp->start_sent = false;
            retry = true;
            continue;
        }
        gp->state = STREAM__GP_ACTIVE;
        gp->committed = s->committed[i];
        gp->resume = -1;
        gp->resume_max = -1;
        /* Nothing before the start is owed: a reset position is committed
         * like a processed one, so the group stays where it started. */
        gp->stored = start;
        /* The new coordinator learns the resumed position at once: it is
         * what a member taking the partition over later starts from. */
        if (resumed && g->conf.auto_commit)
            g->next_commit_ms = now;
        stream__consumer_push(g->co, STREAM_EVENT_ASSIGNED, gp->topic, gp->partition, start, 0,
                              NULL);
    }
    if (retry)
        g->start_retry_ms = now + stream__cgroup_next_backoff(g);
}

/* One answer of a start: fills the ctx; the second one finishes it. */
static void start_answer(stream__cgroup *g, stream__start_ctx *s, int which, const stream__resp *r)
{
    if (which == 0)
        s->ids[0] = 0;
    else
        s->lo_left--;
    const msgpack_object *topics = NULL;
    if (r->err != 0 || stream_field_array(r->root, "topics", &topics, NULL, 0) < 0) {
        s->failed = r->err ? r->err : STREAM_EPROTO;
    } else {
        for (uint32_t ti = 0; ti < topics->via.array.size; ti++) {
            const msgpack_object *t = &topics->via.array.ptr[ti], *parts;
            const char *name;
            size_t len;
            if (stream_field_str(t, "name", &name, &len, NULL, 0) < 0 ||
                stream_field_array(t, "partitions", &parts, NULL, 0) < 0)
                continue;
            for (uint32_t pi = 0; pi < parts->via.array.size; pi++) {
                const msgpack_object *pm = &parts->via.array.ptr[pi];
                int64_t partition, err = 0, v1 = -1, v2 = -1;
                if (stream_field_int(pm, "partition", 0, INT32_MAX, &partition, NULL, 0) < 0)
                    continue;
                long i = start_index(s, name, len, partition);
                if (i < 0)
                    continue;
                stream_field_int_opt(pm, "err", 0, INT32_MAX, 0, &err, NULL, 0);
                if (err) {
                    s->err[i] = -(int)err;
                    continue;
                }
                if (which == 0) {
                    stream_field_int_opt(pm, "offset", -1, INT64_MAX, -1, &v1, NULL, 0);
                    s->committed[i] = v1;
                } else {
                    stream_field_int_opt(pm, "log_start_offset", -1, INT64_MAX, -1, &v1, NULL, 0);
                    stream_field_int_opt(pm, "high_watermark", -1, INT64_MAX, -1, &v2, NULL, 0);
                    s->log_start[i] = v1;
                    s->hw[i] = v2;
                }
            }
        }
    }
    if (s->ids[0] || s->lo_left)
        return;
    unlink_start(g, s);
    if (r->err == STREAM_EBADGROUP && !g->closing)
        stream__cgroup_fail(g, r->err, r->msg);
    else if (!g->closing && g->joined)
        start_finish(g, s);
    stream__cgroup_start_free(s);
}

static void fetch_offsets_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__start_ctx *s = arg;
    stream__cgroup_check_coord(s->g, r);
    start_answer(s->g, s, 0, r);
}

static void list_offsets_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__start_ctx *s = arg;
    start_answer(s->g, s, 1, r);
}

/* Packs [{name, partitions: [...]}] of s's partitions, grouped by topic;
 * with `query`, each partition as {partition, timestamp: -1}, and only
 * those whose route (routes[i]) is `node`. */
static void pack_start_topics(msgpack_packer *pk, const stream__start_ctx *s, bool query,
                              const int32_t *routes, int32_t node)
{
#define IN(i) (!routes || routes[i] == node)
    size_t ntopics = 0;
    for (size_t i = 0; i < s->n; i++) {
        bool seen = !IN(i);
        for (size_t j = 0; j < i && !seen; j++)
            seen = IN(j) && strcmp(s->gps[j]->topic, s->gps[i]->topic) == 0;
        ntopics += !seen;
    }
    msgpack_pack_array(pk, ntopics);
    for (size_t i = 0; i < s->n; i++) {
        bool seen = !IN(i);
        for (size_t j = 0; j < i && !seen; j++)
            seen = IN(j) && strcmp(s->gps[j]->topic, s->gps[i]->topic) == 0;
        if (seen)
            continue;
        size_t np = 0;
        for (size_t j = i; j < s->n; j++)
            np += IN(j) && strcmp(s->gps[j]->topic, s->gps[i]->topic) == 0;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", s->gps[i]->topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, np);
        for (size_t j = i; j < s->n; j++) {
            if (!IN(j) || strcmp(s->gps[j]->topic, s->gps[i]->topic) != 0)
                continue;
            if (query) {
                msgpack_pack_map(pk, 2);
                stream_pack_kv_int(pk, "partition", s->gps[j]->partition);
                stream_pack_kv_int(pk, "timestamp", STREAM_LIST_LATEST);
            } else {
                msgpack_pack_int32(pk, s->gps[j]->partition);
            }
        }
    }
#undef IN
}

/* Asks for the committed offsets and log ranges of every partition waiting
 * to start. */
void stream__cgroup_send_start(stream__cgroup *g, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nparts; i++)
        n += g->parts[i]->state == STREAM__GP_STARTING && !g->parts[i]->start_sent;
    if (n == 0 || now < g->start_retry_ms)
        return;
    stream__start_ctx *s = calloc(1, sizeof *s);
    if (s) {
        s->g = g;
        s->gps = calloc(n, sizeof *s->gps);
        s->seqs = calloc(n, sizeof *s->seqs);
        s->committed = calloc(n, sizeof *s->committed);
        s->log_start = calloc(n, sizeof *s->log_start);
        s->hw = calloc(n, sizeof *s->hw);
        s->err = calloc(n, sizeof *s->err);
    }
    if (!s || !s->gps || !s->seqs || !s->committed || !s->log_start || !s->hw || !s->err) {
        stream__cgroup_start_free(s);
        g->start_retry_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        return;
    }
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        if (gp->state != STREAM__GP_STARTING || gp->start_sent)
            continue;
        s->gps[s->n] = gp;
        s->seqs[s->n] = gp->seq;
        s->committed[s->n] = -1;
        s->log_start[s->n] = -1;
        s->hw[s->n] = -1;
        s->n++;
    }
    /* Each partition's log range comes from its leader: one list_offsets
     * per node (on one broker, one request next to the fetch_offsets). */
    int32_t *routes = calloc(s->n, sizeof *routes);
    s->lo_ids = calloc(s->n, sizeof *s->lo_ids);
    if (!routes || !s->lo_ids) {
        free(routes);
        stream__cgroup_start_free(s);
        g->start_retry_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        int32_t l = stream__client_leader(g->c, s->gps[i]->topic, s->gps[i]->partition);
        routes[i] = l < 0 ? STREAM__NODE_BOOTSTRAP : l;
    }
    msgpack_packer *pk = stream__req_begin(g->c, STREAM_OP_FETCH_OFFSETS, 2);
    stream_pack_kv_cstr(pk, "group", g->group);
    stream_pack_key(pk, "topics");
    pack_start_topics(pk, s, false, NULL, 0);
    int64_t id0 = stream__cgroup_send(g, fetch_offsets_cb, s);
    bool ok = id0 > 0;
    for (size_t i = 0; ok && i < s->n; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = routes[j] != routes[i];
        if (!first)
            continue;
        pk = stream__req_begin(g->c, STREAM_OP_LIST_OFFSETS, 1);
        stream_pack_key(pk, "topics");
        pack_start_topics(pk, s, true, routes, routes[i]);
        int64_t id = stream__req_send_node(g->c, routes[i], list_offsets_cb, s, 0, 0);
        if (id < 0)
            ok = false;
        else
            s->lo_ids[s->lo_n++] = id;
    }
    free(routes);
    if (!ok) {
        if (id0 > 0)
            stream__req_cancel(g->c, id0);
        for (size_t i = 0; i < s->lo_n; i++)
            stream__req_cancel(g->c, s->lo_ids[i]);
        stream__cgroup_start_free(s);
        g->start_retry_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        return;
    }
    s->ids[0] = id0;
    s->lo_left = s->lo_n;
    for (size_t i = 0; i < s->n; i++)
        s->gps[i]->start_sent = true;
    s->next = g->starts;
    g->starts = s;
}

/* ---- commits ----------------------------------------------------------------------- */

void stream__cgroup_commit_free(stream__commit_ctx *k)
{
    if (!k)
        return;
    free(k->gps);
    free(k->offsets);
    free(k);
}

static void commit_done(stream__commit_ctx *k, int err, const char *msg)
{
    if (!k->wait)
        return;
    k->wait->done = true;
    k->wait->err = err;
    if (err)
        stream__errf(k->wait->msg, sizeof k->wait->msg, "%s",
                     msg && *msg ? msg : stream_strerror(err));
}

static void commit_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__commit_ctx *k = arg;
    stream__cgroup *g = k->g;
    int64_t now = stream__client_mono_ms();
    g->commit = NULL;
    g->commit_id = 0;
    int err = r->err;
    const char *msg = r->msg;
    const msgpack_object *topics = NULL;
    if (err == 0 && stream_field_array(r->root, "topics", &topics, NULL, 0) < 0) {
        err = STREAM_EPROTO;
        msg = "malformed commit_offsets answer";
    }
    if (err != 0) {
        stream__cgroup_check_coord(g, r);
        commit_done(k, err, msg);
        if (err == STREAM_EUNKNOWNMEMBER && g->joined && !g->closing) {
            stream__cgroup_lose_all(g, STREAM_EUNKNOWNMEMBER);
            g->next_join_ms = now;
        } else if (err == STREAM_EFENCED) {
            g->hb_now = true; /* learn the generation, then commit again */
            g->commit_retry_ms = now + STREAM__CGROUP_BACKOFF_MIN_MS;
        } else {
            g->commit_retry_ms = now + stream__cgroup_next_backoff(g);
        }
        stream__cgroup_commit_free(k);
        return;
    }
    int first_err = 0;
    char first_msg[512] = "";
    for (uint32_t ti = 0; ti < topics->via.array.size; ti++) {
        const msgpack_object *t = &topics->via.array.ptr[ti], *parts;
        const char *name;
        size_t len;
        if (stream_field_str(t, "name", &name, &len, NULL, 0) < 0 ||
            stream_field_array(t, "partitions", &parts, NULL, 0) < 0)
            continue;
        for (uint32_t pi = 0; pi < parts->via.array.size; pi++) {
            const msgpack_object *pm = &parts->via.array.ptr[pi];
            int64_t partition, perr = 0;
            if (stream_field_int(pm, "partition", 0, INT32_MAX, &partition, NULL, 0) < 0)
                continue;
            stream_field_int_opt(pm, "err", 0, INT32_MAX, 0, &perr, NULL, 0);
            for (size_t i = 0; i < k->n; i++) {
                stream__gpart *gp = k->gps[i];
                if (gp->partition != partition || !stream_str_eq(name, len, gp->topic))
                    continue;
                if (perr == 0) {
                    if (stream__cgroup_held(gp))
                        gp->committed = k->offsets[i];
                    continue;
                }
                if (!first_err) {
                    const char *text = NULL;
                    size_t tlen = 0;
                    stream_field_str_opt(pm, "msg", &text, &tlen, NULL, 0);
                    first_err = -(int)perr;
                    if (!text || tlen == 0) {
                        text = stream_strerror(first_err);
                        tlen = strlen(text);
                    }
                    stream__errf(first_msg, sizeof first_msg, "topic '%s' partition %d: %.*s",
                                 gp->topic, (int)gp->partition, (int)(tlen > 300 ? 300 : tlen),
                                 text);
                }
                /* Not held by us after all: it is someone else's now. */
                if (-(int)perr == STREAM_ENOTASSIGNED && stream__cgroup_held(gp))
                    stream__cgroup_release(g, gp, STREAM_ENOTASSIGNED);
            }
        }
    }
    g->commits++;
    if (first_err)
        g->commit_retry_ms = now + stream__cgroup_next_backoff(g);
    commit_done(k, first_err, first_msg);
    stream__cgroup_commit_free(k);
    stream__cgroup_advance(g, now);
}

/* True when gp has a stored offset the group does not have yet. */
static bool dirty(const stream__gpart *gp)
{
    return (gp->state == STREAM__GP_ACTIVE || gp->state == STREAM__GP_REVOKING) &&
           gp->stored >= 0 && gp->stored != gp->committed;
}

/* Sends one commit of every dirty partition. Returns 1 when sent, 0 when
 * there was nothing to commit, or a negative code. */
static int send_commit(stream__cgroup *g, stream__commit_wait *wait)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nparts; i++)
        n += dirty(g->parts[i]);
    if (n == 0)
        return 0;
    stream__commit_ctx *k = calloc(1, sizeof *k);
    if (k) {
        k->g = g;
        k->wait = wait;
        k->gps = calloc(n, sizeof *k->gps);
        k->offsets = calloc(n, sizeof *k->offsets);
    }
    if (!k || !k->gps || !k->offsets) {
        stream__cgroup_commit_free(k);
        return STREAM_ENOMEM;
    }
    for (size_t i = 0; i < g->nparts; i++)
        if (dirty(g->parts[i])) {
            k->gps[k->n] = g->parts[i];
            k->offsets[k->n++] = g->parts[i]->stored;
        }
    size_t ntopics = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(k->gps[j]->topic, k->gps[i]->topic) == 0;
        ntopics += !seen;
    }
    msgpack_packer *pk = stream__req_begin(g->c, STREAM_OP_COMMIT_OFFSETS, 4);
    stream_pack_kv_cstr(pk, "group", g->group);
    stream_pack_kv_cstr(pk, "member_id", g->member_id);
    stream_pack_kv_int(pk, "generation", g->generation);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, ntopics);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(k->gps[j]->topic, k->gps[i]->topic) == 0;
        if (seen)
            continue;
        size_t np = 0;
        for (size_t j = i; j < n; j++)
            np += strcmp(k->gps[j]->topic, k->gps[i]->topic) == 0;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", k->gps[i]->topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, np);
        for (size_t j = i; j < n; j++) {
            if (strcmp(k->gps[j]->topic, k->gps[i]->topic) != 0)
                continue;
            msgpack_pack_map(pk, 2);
            stream_pack_kv_int(pk, "partition", k->gps[j]->partition);
            stream_pack_kv_int(pk, "offset", k->offsets[j]);
        }
    }
    int64_t id = stream__cgroup_send(g, commit_cb, k);
    if (id < 0) {
        stream__cgroup_commit_free(k);
        return (int)id;
    }
    g->commit = k;
    g->commit_id = id;
    return 1;
}

/* True when a revoked partition may be committed and released: the caller
 * has stored its position, or had revoke_timeout_ms to do so. */
bool stream__cgroup_revoke_ready(const stream__cgroup *g, const stream__gpart *gp, int64_t now)
{
    if (now - gp->revoked_ms >= g->conf.revoke_timeout_ms)
        return true;
    int64_t pos = stream__cgroup_position(g, gp);
    return pos < 0 || gp->stored >= pos;
}

/* Moves revocations and auto-commits on; never waits. */
void stream__cgroup_advance(stream__cgroup *g, int64_t now)
{
    if (!g->joined || g->closing)
        return;
    bool need_commit = false;
    for (size_t i = 0; i < g->nparts; i++) {
        stream__gpart *gp = g->parts[i];
        if (gp->state != STREAM__GP_REVOKING || !stream__cgroup_revoke_ready(g, gp, now))
            continue;
        if (dirty(gp))
            need_commit = true;
        else
            stream__cgroup_release(g, gp, 0);
    }
    if (g->commit || now < g->commit_retry_ms)
        return;
    if (need_commit) {
        send_commit(g, NULL);
        return;
    }
    if (g->conf.auto_commit && now >= g->next_commit_ms) {
        g->next_commit_ms = now + g->conf.auto_commit_interval_ms;
        send_commit(g, NULL);
    }
}

int stream_consumer_store_positions(stream_consumer *co)
{
    stream__cgroup *g = stream__consumer_group(co);
    if (!g)
        return STREAM_EINVAL;
    stream__cgroup_store_positions(g);
    return 0;
}

int stream_consumer_store_offset(stream_consumer *co, const char *topic, int32_t partition,
                                 int64_t offset)
{
    stream__cgroup *g = stream__consumer_group(co);
    if (!g || !topic || offset < 0)
        return STREAM_EINVAL;
    stream__gpart *gp = stream__cgroup_find(g, topic, strlen(topic), partition);
    if (gp && gp->resume >= 0 && gp->state != STREAM__GP_ACTIVE &&
        gp->state != STREAM__GP_REVOKING) {
        /* Lost with the session: a record poll returned before the loss,
         * finished now, moves the resume point. */
        if (offset > gp->resume_max)
            return STREAM_ENOENT;
        if (offset > gp->resume)
            gp->resume = offset;
        return 0;
    }
    if (!gp || (gp->state != STREAM__GP_ACTIVE && gp->state != STREAM__GP_REVOKING))
        return STREAM_ENOENT;
    gp->stored = offset;
    return 0;
}

int stream_consumer_committed(const stream_consumer *co, const char *topic, int32_t partition,
                              int64_t *out)
{
    const stream__cgroup *g = stream__consumer_group(co);
    if (!g || !topic)
        return STREAM_ENOENT;
    const stream__gpart *gp = stream__cgroup_find(g, topic, strlen(topic), partition);
    if (!gp || !stream__cgroup_held(gp))
        return STREAM_ENOENT;
    *out = gp->committed;
    return 0;
}

/* Polls until no commit of ours is in flight. */
static int wait_commit_idle(stream__cgroup *g, int64_t deadline)
{
    while (g->commit) {
        int64_t now = stream__client_mono_ms();
        if (now >= deadline)
            return STREAM_ETIMEDOUT;
        int64_t left = deadline - now;
        int rc = stream_client_poll(g->c, left > 1000 ? 1000 : (int)left);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Commits what is stored and waits for the answer. */
/* One commit of what is stored, waited for. */
static int commit_once(stream__cgroup *g, int64_t deadline, char *errbuf, size_t errbuf_len)
{
    int rc = wait_commit_idle(g, deadline);
    if (rc == 0) {
        if (!g->joined) {
            stream__errf(errbuf, errbuf_len, "cannot commit for group '%s': not a member now",
                         g->group);
            return STREAM_EUNKNOWNMEMBER;
        }
        stream__commit_wait w = {0};
        rc = send_commit(g, &w);
        if (rc <= 0)
            return rc; /* nothing to commit, or could not send */
        rc = stream__client_wait(g->c, &w.done, deadline);
        if (rc < 0 && g->commit)
            g->commit->wait = NULL; /* w goes out of scope; the answer still counts */
        if (rc == 0)
            rc = w.err;
        if (rc < 0 && w.done)
            stream__errf(errbuf, errbuf_len, "cannot commit offsets of group '%s': %s", g->group,
                         w.msg);
    }
    if (rc == STREAM_ETIMEDOUT)
        stream__errf(errbuf, errbuf_len, "cannot commit offsets of group '%s': no answer in time",
                     g->group);
    return rc;
}

/* Commits, again at the coordinator found anew while the answer says it
 * moved (a cluster's failover), until the deadline. */
int stream__cgroup_commit_now(stream__cgroup *g, int64_t deadline, char *errbuf, size_t errbuf_len)
{
    for (;;) {
        int rc = commit_once(g, deadline, errbuf, errbuf_len);
        if (rc == 0 || !g->coord_lost || stream__client_mono_ms() >= deadline)
            return rc;
        if (stream__cgroup_find_coord(g, deadline) != 0)
            return rc;
    }
}

int stream_consumer_commit(stream_consumer *co, int timeout_ms, char *errbuf, size_t errbuf_len)
{
    stream__cgroup *g = stream__consumer_group(co);
    if (!g) {
        stream__errf(errbuf, errbuf_len, "commit: the consumer is not a group member");
        return STREAM_EINVAL;
    }
    if (g->closing)
        return 0;
    if (g->conf.auto_store)
        stream__cgroup_store_positions(g);
    return stream__cgroup_commit_now(g, stream__client_deadline(g->c, timeout_ms), errbuf,
                                     errbuf_len);
}
