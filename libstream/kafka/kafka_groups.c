/*
 * kafka_groups.c - the consumer-group APIs of the Kafka listener
 * (kafka_groups.h): each request is decoded whole (kafka_codec_groups.c),
 * its strings copied (the coordinator takes NUL-terminated ones), handed
 * to the coordinator's classic groups (coord/classic.h), and answered in
 * the version's layout - at once, or from the coordinator's callback when
 * a rebalance holds it (JoinGroup, SyncGroup), or once the offsets written
 * are durable (OffsetCommit, DeleteGroups).
 *
 * Static membership (group.instance.id, KIP-345) is the coordinator's
 * (classic.h): the instance id of JoinGroup v5+, SyncGroup, Heartbeat and
 * LeaveGroup v3+ and OffsetCommit v7+ is passed on (NULL when null), and
 * JoinGroup v5+ and DescribeGroups v4+ show each member's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/classic.h"
#include "kafka_codec_groups.h"
#include "kafka_groups.h"
#include "stream/error.h"

/* A JoinGroup or SyncGroup whose answer the coordinator holds. */
typedef struct kwait {
    struct kwait *prev, *next; /* in the listener's list of parked answers */
    stream__kafka_groups *g;
    stream__req *r;
    uint64_t conn;              /* r's connection */
    stream__classic_wait *wait; /* the coordinator's handle; NULL while the call runs */
    int16_t api_key, version;
    int32_t correlation_id;
    bool flexible;
} kwait;

struct stream__kafka_groups {
    stream_broker *broker;
    kwait *parked; /* answers held by the coordinator */
};

stream__kafka_groups *stream__kafka_groups_new(stream_broker *b)
{
    stream__kafka_groups *g = calloc(1, sizeof(*g));
    if (g != NULL)
        g->broker = b;
    return g;
}

static void unlink_wait(kwait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->g->parked = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

void stream__kafka_groups_free(stream__kafka_groups *g)
{
    if (g == NULL)
        return;
    while (g->parked != NULL) {
        kwait *w = g->parked;
        unlink_wait(w);
        stream__classic_cancel(w->wait);
        free(w);
    }
    free(g);
}

void stream__kafka_groups_conn_closed(stream__kafka_groups *g, uint64_t conn_id)
{
    for (kwait *w = g ? g->parked : NULL, *next; w != NULL; w = next) {
        next = w->next;
        if (w->conn != conn_id)
            continue;
        unlink_wait(w);
        stream__classic_cancel(w->wait);
        free(w);
    }
}

/* ---- answering ---- */

/* Starts a response: header (tags when flexible), then throttle_time_ms
 * from version throttle_from on. *start gets the frame's start. */
static stream_buf *begin(stream__req *r, int32_t correlation_id, int version, bool fl,
                         int throttle_from, size_t *start)
{
    stream_buf *out = stream__host_req_out(r);
    *start = stream__kafka_response_start(out, correlation_id, fl);
    if (version >= throttle_from)
        stream_buf_put_be32(out, 0);
    return out;
}

static void end(stream__req *r, stream_buf *out, size_t start, bool fl)
{
    stream__kafka_put_tags(out, fl);
    stream__kafka_response_finish(out, start, 0);
    stream__host_req_done(r);
}

static void put_cstr(stream_buf *out, bool fl, const char *s)
{
    stream__kafka_put_string(out, fl, s, s ? strlen(s) : 0);
}

static void put_bytes(stream_buf *out, bool fl, const uint8_t *p, size_t n)
{
    stream__kafka_put_bytes_len(out, fl, n);
    if (n > 0)
        stream_buf_put(out, p, n);
}

/* A NUL-terminated copy of s ("" for null); NULL on ENOMEM. */
static char *dup_str(stream__kafka_str s)
{
    char *c = malloc(s.len + 1);
    if (c != NULL) {
        if (s.len > 0)
            memcpy(c, s.s, s.len);
        c[s.len] = '\0';
    }
    return c;
}

/* ---- JoinGroup, SyncGroup ---- */

static void join_write(const kwait *w, const stream__classic_join_result *res)
{
    int v = w->version;
    bool fl = w->flexible;
    size_t start;
    stream_buf *out = begin(w->r, w->correlation_id, v, fl, 2, &start);
    stream_buf_put_be16(out, (uint16_t)res->error);
    stream_buf_put_be32(out, (uint32_t)res->generation);
    if (v >= 7) {
        put_cstr(out, fl, res->protocol_type);
        put_cstr(out, fl, res->protocol_name);
    } else {
        put_cstr(out, fl, res->protocol_name ? res->protocol_name : "");
    }
    put_cstr(out, fl, res->leader ? res->leader : "");
    put_cstr(out, fl, res->member_id ? res->member_id : "");
    stream__kafka_put_array_len(out, fl, res->nmembers);
    for (size_t i = 0; i < res->nmembers; i++) {
        const stream__classic_member_view *m = &res->members[i];
        put_cstr(out, fl, m->member_id);
        if (v >= 5)
            put_cstr(out, fl, m->group_instance_id);
        put_bytes(out, fl, m->meta, m->meta_len);
        stream__kafka_put_tags(out, fl);
    }
    end(w->r, out, start, fl);
}

static void sync_write(const kwait *w, const stream__classic_sync_result *res)
{
    int v = w->version;
    bool fl = w->flexible;
    size_t start;
    stream_buf *out = begin(w->r, w->correlation_id, v, fl, 1, &start);
    stream_buf_put_be16(out, (uint16_t)res->error);
    if (v >= 5) {
        put_cstr(out, fl, res->protocol_type);
        put_cstr(out, fl, res->protocol_name);
    }
    put_bytes(out, fl, res->assignment, res->assignment_len);
    end(w->r, out, start, fl);
}

/* The coordinator's answer to a parked (or at once answered) join. */
static void join_cb(void *arg, const stream__classic_join_result *res)
{
    kwait *w = arg;
    join_write(w, res);
    unlink_wait(w);
    free(w);
}

static void sync_cb(void *arg, const stream__classic_sync_result *res)
{
    kwait *w = arg;
    sync_write(w, res);
    unlink_wait(w);
    free(w);
}

void stream__kafka_groups_stopping(stream__kafka_groups *g)
{
    while (g != NULL && g->parked != NULL) {
        kwait *w = g->parked;
        stream__classic_cancel(w->wait);
        if (w->api_key == STREAM__KAFKA_JOIN_GROUP) {
            stream__classic_join_result res = {
                .error = STREAM__KAFKA_NOT_COORDINATOR, .generation = -1, .leader = ""};
            join_cb(w, &res);
        } else {
            stream__classic_sync_result res = {.error = STREAM__KAFKA_NOT_COORDINATOR};
            sync_cb(w, &res);
        }
    }
}

/* A parked-answer record for request q, linked in; NULL on ENOMEM. */
static kwait *wait_new(stream__kafka_groups *g, stream__req *r,
                       const stream__kafka_group_request *q)
{
    kwait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    *w = (kwait){.g = g,
                 .r = r,
                 .conn = stream__host_req_conn(r),
                 .api_key = q->hdr.api_key,
                 .version = q->hdr.api_version,
                 .correlation_id = q->hdr.correlation_id,
                 .flexible = q->hdr.flexible,
                 .next = g->parked};
    if (g->parked)
        g->parked->prev = w;
    g->parked = w;
    return w;
}

/* The client's host, as Kafka shows it ("/127.0.0.1"), from r's peer. */
static void client_host(stream__req *r, char *buf, size_t len)
{
    const char *peer = stream__host_req_peer(r);
    const char *colon = strrchr(peer, ':');
    int n = colon ? (int)(colon - peer) : (int)strlen(peer);
    snprintf(buf, len, "/%.*s", n, peer);
}

static int join_group(stream__kafka_groups *g, stream__coord *co, stream__req *r,
                      const stream__kafka_group_request *q)
{
    char *group = dup_str(q->group), *member = dup_str(q->member_id);
    char *client = dup_str((stream__kafka_str){q->hdr.client_id, q->hdr.client_id_len});
    char *type = dup_str(q->protocol_type);
    char *instance = q->instance_id.s ? dup_str(q->instance_id) : NULL;
    stream__classic_protocol *protos = calloc(q->nblobs ? q->nblobs : 1, sizeof(*protos));
    char **names = calloc(q->nblobs ? q->nblobs : 1, sizeof(*names));
    kwait *w = wait_new(g, r, q);
    bool ok = group && member && client && type && protos && names && w &&
              (instance || !q->instance_id.s);
    for (size_t i = 0; ok && i < q->nblobs; i++) {
        names[i] = dup_str(q->blobs[i].name);
        protos[i] = (stream__classic_protocol){
            .name = names[i], .meta = q->blobs[i].bytes, .meta_len = q->blobs[i].len};
        ok = names[i] != NULL;
    }
    int rc = 0;
    if (ok) {
        char host[128];
        client_host(r, host, sizeof(host));
        stream__classic_join_req jr = {
            .group = group,
            .member_id = member,
            .client_id = client,
            .client_host = host,
            .protocol_type = type,
            .protocols = protos,
            .nprotocols = q->nblobs,
            .group_instance_id = instance,
            .session_timeout_ms = q->session_timeout_ms,
            .rebalance_timeout_ms = q->rebalance_timeout_ms,
            .require_known_member_id = q->hdr.api_version >= 4,
        };
        stream__classic_wait *cw = NULL;
        stream__classic_join(co, &jr, join_cb, w, &cw);
        if (cw != NULL)
            w->wait = cw; /* parked; else join_cb answered and freed w */
    } else {
        if (w != NULL) {
            unlink_wait(w);
            free(w);
        }
        rc = STREAM_ENOMEM;
    }
    for (size_t i = 0; names != NULL && i < q->nblobs; i++)
        free(names[i]);
    free(names);
    free(protos);
    free(group);
    free(member);
    free(client);
    free(type);
    free(instance);
    return rc;
}

static int sync_group(stream__kafka_groups *g, stream__coord *co, stream__req *r,
                      const stream__kafka_group_request *q)
{
    char *group = dup_str(q->group), *member = dup_str(q->member_id);
    char *type = q->protocol_type.s ? dup_str(q->protocol_type) : NULL;
    char *name = q->protocol_name.s ? dup_str(q->protocol_name) : NULL;
    char *instance = q->instance_id.s ? dup_str(q->instance_id) : NULL;
    stream__classic_assignment *as = calloc(q->nblobs ? q->nblobs : 1, sizeof(*as));
    char **ids = calloc(q->nblobs ? q->nblobs : 1, sizeof(*ids));
    kwait *w = wait_new(g, r, q);
    bool ok = group && member && as && ids && w && (type || !q->protocol_type.s) &&
              (name || !q->protocol_name.s) && (instance || !q->instance_id.s);
    for (size_t i = 0; ok && i < q->nblobs; i++) {
        ids[i] = dup_str(q->blobs[i].name);
        as[i] = (stream__classic_assignment){
            .member_id = ids[i], .bytes = q->blobs[i].bytes, .len = q->blobs[i].len};
        ok = ids[i] != NULL;
    }
    int rc = 0;
    if (ok) {
        stream__classic_wait *cw = NULL;
        stream__classic_sync(co, group, member, instance, q->generation, type, name, as, q->nblobs,
                             sync_cb, w, &cw);
        if (cw != NULL)
            w->wait = cw;
    } else {
        if (w != NULL) {
            unlink_wait(w);
            free(w);
        }
        rc = STREAM_ENOMEM;
    }
    for (size_t i = 0; ids != NULL && i < q->nblobs; i++)
        free(ids[i]);
    free(ids);
    free(as);
    free(group);
    free(member);
    free(type);
    free(name);
    free(instance);
    return rc;
}

/* ---- Heartbeat, LeaveGroup ---- */

static int heartbeat(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    char *group = dup_str(q->group), *member = dup_str(q->member_id);
    char *instance = q->instance_id.s ? dup_str(q->instance_id) : NULL;
    if (group == NULL || member == NULL || (instance == NULL && q->instance_id.s)) {
        free(group);
        free(member);
        free(instance);
        return STREAM_ENOMEM;
    }
    int16_t err = stream__classic_heartbeat(co, group, member, instance, q->generation);
    free(group);
    free(member);
    free(instance);
    bool fl = q->hdr.flexible;
    size_t start;
    stream_buf *out = begin(r, q->hdr.correlation_id, q->hdr.api_version, fl, 1, &start);
    stream_buf_put_be16(out, (uint16_t)err);
    end(r, out, start, fl);
    return 0;
}

/* An error about the group rather than the member (LeaveGroup v3+ answers
 * it once, at the top). */
static bool group_level(int16_t err)
{
    return err == STREAM__KAFKA_NOT_COORDINATOR || err == STREAM__KAFKA_INVALID_GROUP_ID ||
           err == STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE ||
           err == STREAM__KAFKA_INCONSISTENT_GROUP_PROTOCOL;
}

static int leave_group(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    int v = q->hdr.api_version;
    bool fl = q->hdr.flexible;
    char *group = dup_str(q->group);
    size_t n = v >= 3 ? q->nentries : 1;
    int16_t *errs = calloc(n ? n : 1, sizeof(*errs));
    if (group == NULL || errs == NULL) {
        free(group);
        free(errs);
        return STREAM_ENOMEM;
    }
    int16_t top = 0;
    for (size_t i = 0; i < n; i++) {
        stream__kafka_str iid = v >= 3 ? q->entries[i].instance_id : (stream__kafka_str){0};
        char *member = dup_str(v >= 3 ? q->entries[i].name : q->member_id);
        char *instance = iid.s ? dup_str(iid) : NULL;
        errs[i] = member == NULL || (iid.s && instance == NULL) ? STREAM__KAFKA_UNKNOWN_SERVER_ERROR
                  : member[0] == '\0' && instance == NULL
                      ? STREAM__KAFKA_UNKNOWN_MEMBER_ID
                      : stream__classic_leave(co, group, member, instance);
        free(member);
        free(instance);
        if (group_level(errs[i]) || v < 3)
            top = errs[i];
    }
    free(group);
    size_t start;
    stream_buf *out = begin(r, q->hdr.correlation_id, v, fl, 1, &start);
    stream_buf_put_be16(out, (uint16_t)top);
    if (v >= 3) {
        stream__kafka_put_array_len(out, fl, top != 0 ? 0 : n);
        for (size_t i = 0; top == 0 && i < n; i++) {
            const stream__kafka_gentry *e = &q->entries[i];
            stream__kafka_put_string(out, fl, e->name.s, e->name.len);
            stream__kafka_put_string(out, fl, e->instance_id.s, e->instance_id.len);
            stream_buf_put_be16(out, (uint16_t)errs[i]);
            stream__kafka_put_tags(out, fl);
        }
    }
    free(errs);
    end(r, out, start, fl);
    return 0;
}

/* ---- OffsetCommit ---- */

/* What an OffsetCommit keeps until its writes are durable. */
typedef struct commit_state {
    int32_t correlation_id;
    int16_t version;
    bool flexible;
    size_t ntopics;
    char **topics;  /* the request's topic names, copied */
    size_t *counts; /* each topic's run of entries */
    stream__classic_commit *entries;
    size_t n;
} commit_state;

static void commit_free(void *arg)
{
    commit_state *s = arg;
    for (size_t i = 0; s->topics != NULL && i < s->ntopics; i++)
        free(s->topics[i]);
    free(s->topics);
    free(s->counts);
    free(s->entries);
    free(s);
}

static void commit_done(stream__req *r, void *arg)
{
    commit_state *s = arg;
    bool fl = s->flexible;
    size_t start;
    stream_buf *out = begin(r, s->correlation_id, s->version, fl, 3, &start);
    stream__kafka_put_array_len(out, fl, s->ntopics);
    size_t k = 0;
    for (size_t i = 0; i < s->ntopics; i++) {
        put_cstr(out, fl, s->topics[i]);
        stream__kafka_put_array_len(out, fl, s->counts[i]);
        for (size_t j = 0; j < s->counts[i]; j++, k++) {
            stream_buf_put_be32(out, (uint32_t)s->entries[k].partition);
            stream_buf_put_be16(out, (uint16_t)s->entries[k].error);
            stream__kafka_put_tags(out, fl);
        }
        stream__kafka_put_tags(out, fl);
    }
    end(r, out, start, fl);
}

static int offset_commit(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    commit_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return STREAM_ENOMEM;
    s->correlation_id = q->hdr.correlation_id;
    s->version = q->hdr.api_version;
    s->flexible = q->hdr.flexible;
    s->ntopics = q->ntopics;
    s->n = q->noffsets;
    s->topics = calloc(q->ntopics ? q->ntopics : 1, sizeof(*s->topics));
    s->counts = calloc(q->ntopics ? q->ntopics : 1, sizeof(*s->counts));
    s->entries = calloc(q->noffsets ? q->noffsets : 1, sizeof(*s->entries));
    char *group = dup_str(q->group), *member = dup_str(q->member_id);
    char *instance = q->instance_id.s ? dup_str(q->instance_id) : NULL;
    bool ok =
        s->topics && s->counts && s->entries && group && member && (instance || !q->instance_id.s);
    for (size_t i = 0; ok && i < q->ntopics; i++) {
        const stream__kafka_topic *t = &q->topics[i];
        s->topics[i] = dup_str((stream__kafka_str){t->name, t->name_len});
        s->counts[i] = t->count;
        ok = s->topics[i] != NULL;
        for (size_t j = t->first; ok && j < t->first + t->count; j++) {
            const stream__kafka_goffset *o = &q->offsets[j];
            s->entries[j] = (stream__classic_commit){.topic = s->topics[i],
                                                     .partition = o->partition,
                                                     .offset = o->offset,
                                                     .leader_epoch = o->leader_epoch,
                                                     .metadata = o->metadata.s,
                                                     .metadata_len = o->metadata.len};
        }
    }
    if (!ok) {
        commit_free(s);
        free(group);
        free(member);
        free(instance);
        return STREAM_ENOMEM;
    }
    stream__classic_commit_offsets(co, r, group, member, instance, q->generation, s->entries, s->n,
                                   commit_done, commit_free, s);
    free(group);
    free(member);
    free(instance);
    return 0;
}

/* ---- OffsetFetch ---- */

/* One committed offset, for the answer. */
typedef struct fetched {
    const char *topic; /* borrowed from the coordinator for the call */
    int32_t partition;
    stream__classic_fetched o; /* its metadata borrowed likewise */
} fetched;

typedef struct fetched_list {
    fetched *v;
    size_t n, cap;
    bool oom;
} fetched_list;

static void collect(void *arg, const char *topic, int32_t partition,
                    const stream__classic_fetched *o)
{
    fetched_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        fetched *nv = realloc(l->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = (fetched){topic, partition, *o};
}

static int fetched_cmp(const void *a, const void *b)
{
    const fetched *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static void put_fetched_partition(stream_buf *out, int v, bool fl, int32_t partition,
                                  const stream__classic_fetched *o, int16_t err)
{
    stream_buf_put_be32(out, (uint32_t)partition);
    stream_buf_put_be64(out, (uint64_t)o->offset);
    if (v >= 5)
        stream_buf_put_be32(out, (uint32_t)o->leader_epoch);
    put_cstr(out, fl, o->metadata ? o->metadata : "");
    stream_buf_put_be16(out, (uint16_t)err);
    stream__kafka_put_tags(out, fl);
}

/* Writes one group's topics (as asked, or every committed offset) and
 * returns the group's error. */
static int16_t fetch_group(stream__coord *co, stream_buf *out, const stream__kafka_group_request *q,
                           const stream__kafka_gentry *e)
{
    int v = q->hdr.api_version;
    bool fl = q->hdr.flexible;
    char *group = dup_str(e->name);
    if (group == NULL) {
        stream__kafka_put_array_len(out, fl, 0);
        return STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    int16_t gerr = 0;
    if (e->all_topics) {
        fetched_list l = {0};
        gerr = stream__classic_fetch_offsets(co, group, collect, &l);
        if (l.oom) {
            gerr = STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
            l.n = 0;
        }
        if (l.n > 1)
            qsort(l.v, l.n, sizeof(*l.v), fetched_cmp);
        size_t ntopics = 0;
        for (size_t i = 0; i < l.n; i++)
            ntopics += i == 0 || strcmp(l.v[i].topic, l.v[i - 1].topic) != 0;
        stream__kafka_put_array_len(out, fl, ntopics);
        for (size_t i = 0, j; i < l.n; i = j) {
            for (j = i + 1; j < l.n && strcmp(l.v[j].topic, l.v[i].topic) == 0; j++)
                ;
            put_cstr(out, fl, l.v[i].topic);
            stream__kafka_put_array_len(out, fl, j - i);
            for (size_t k = i; k < j; k++)
                put_fetched_partition(out, v, fl, l.v[k].partition, &l.v[k].o, 0);
            stream__kafka_put_tags(out, fl);
        }
        free(l.v);
        free(group);
        return gerr;
    }
    stream__kafka_put_array_len(out, fl, e->count);
    for (size_t i = e->first; i < e->first + e->count; i++) {
        const stream__kafka_topic *t = &q->topics[i];
        char *topic = dup_str((stream__kafka_str){t->name, t->name_len});
        stream__kafka_put_string(out, fl, t->name, t->name_len);
        stream__kafka_put_array_len(out, fl, t->count);
        for (size_t j = t->first; j < t->first + t->count; j++) {
            stream__classic_fetched o = {.offset = -1, .leader_epoch = -1, .metadata = ""};
            int16_t err = topic == NULL ? STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE
                                        : stream__classic_fetch_offset(co, group, topic,
                                                                       q->offsets[j].partition, &o);
            if (err != 0)
                gerr = err;
            put_fetched_partition(out, v, fl, q->offsets[j].partition, &o, err);
        }
        stream__kafka_put_tags(out, fl);
        free(topic);
    }
    free(group);
    return gerr;
}

static void offset_fetch(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    int v = q->hdr.api_version;
    bool fl = q->hdr.flexible;
    size_t start;
    stream_buf *out = begin(r, q->hdr.correlation_id, v, fl, 3, &start);
    if (v < 8) {
        int16_t err = fetch_group(co, out, q, &q->entries[0]);
        if (v >= 2)
            stream_buf_put_be16(out, (uint16_t)err);
        end(r, out, start, fl);
        return;
    }
    stream__kafka_put_array_len(out, fl, q->nentries);
    for (size_t i = 0; i < q->nentries; i++) {
        stream__kafka_put_string(out, fl, q->entries[i].name.s, q->entries[i].name.len);
        int16_t err = fetch_group(co, out, q, &q->entries[i]);
        stream_buf_put_be16(out, (uint16_t)err);
        stream__kafka_put_tags(out, fl);
    }
    end(r, out, start, fl);
}

/* ---- ListGroups, DescribeGroups, DeleteGroups ---- */

typedef struct list_ctx {
    stream_buf *out;
    const stream__kafka_group_request *q;
    size_t n;   /* groups written */
    bool count; /* first pass: count only */
} list_ctx;

/* Whether ListGroups v4's states filter lets `state` through. */
static bool state_wanted(const stream__kafka_group_request *q, const char *state)
{
    if (q->nentries == 0)
        return true;
    for (size_t i = 0; i < q->nentries; i++)
        if (strlen(state) == q->entries[i].name.len &&
            strncasecmp(state, q->entries[i].name.s, q->entries[i].name.len) == 0)
            return true;
    return false;
}

static void list_each(void *arg, const char *group, const stream__classic_group_info *info)
{
    list_ctx *c = arg;
    if (!state_wanted(c->q, info->state))
        return;
    c->n++;
    if (c->count)
        return;
    bool fl = c->q->hdr.flexible;
    put_cstr(c->out, fl, group);
    put_cstr(c->out, fl, info->protocol_type); /* "" for a group of offsets only */
    if (c->q->hdr.api_version >= 4)
        put_cstr(c->out, fl, info->state);
    stream__kafka_put_tags(c->out, fl);
}

static void list_groups(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    bool fl = q->hdr.flexible;
    size_t start;
    stream_buf *out = begin(r, q->hdr.correlation_id, q->hdr.api_version, fl, 1, &start);
    stream_buf_put_be16(out, 0);
    list_ctx c = {.out = out, .q = q, .count = true};
    stream__classic_list(co, list_each, &c);
    stream__kafka_put_array_len(out, fl, c.n);
    c.count = false;
    c.n = 0;
    stream__classic_list(co, list_each, &c);
    end(r, out, start, fl);
}

typedef struct describe_ctx {
    stream_buf *out;
    int version;
    bool fl;
} describe_ctx;

static void describe_member(void *arg, const stream__classic_member_info *m)
{
    describe_ctx *c = arg;
    put_cstr(c->out, c->fl, m->member_id);
    if (c->version >= 4)
        put_cstr(c->out, c->fl, m->group_instance_id);
    put_cstr(c->out, c->fl, m->client_id);
    put_cstr(c->out, c->fl, m->client_host);
    put_bytes(c->out, c->fl, m->meta, m->meta_len);
    put_bytes(c->out, c->fl, m->assignment, m->assignment_len);
    stream__kafka_put_tags(c->out, c->fl);
}

static void count_member(void *arg, const stream__classic_member_info *m)
{
    (*(size_t *)arg)++;
}

static int describe_groups(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    int v = q->hdr.api_version;
    bool fl = q->hdr.flexible;
    size_t start;
    stream_buf *out = begin(r, q->hdr.correlation_id, v, fl, 1, &start);
    stream__kafka_put_array_len(out, fl, q->nentries);
    describe_ctx c = {.out = out, .version = v, .fl = fl};
    for (size_t i = 0; i < q->nentries; i++) {
        char *group = dup_str(q->entries[i].name);
        if (group == NULL)
            return STREAM_ENOMEM;
        stream__classic_group_info info = {.state = "", .protocol_type = "", .protocol_name = ""};
        size_t nmembers = 0; /* classic members (a native group lists none) */
        /* A group another broker coordinates (or a bad name) is described
         * by its error alone, as Kafka does. */
        int16_t err = stream__classic_gate(co, group);
        if (err == 0)
            stream__classic_describe(co, group, &info, count_member, &nmembers);
        stream_buf_put_be16(out, (uint16_t)err);
        put_cstr(out, fl, group);
        put_cstr(out, fl, info.state);
        put_cstr(out, fl, info.protocol_type);
        put_cstr(out, fl, info.protocol_name);
        /* The members follow their count: described again to write them. */
        stream__kafka_put_array_len(out, fl, nmembers);
        if (err == 0)
            stream__classic_describe(co, group, &info, describe_member, &c);
        if (v >= 3)
            stream_buf_put_be32(out, (uint32_t)INT32_MIN); /* authorized_operations: not asked */
        stream__kafka_put_tags(out, fl);
        free(group);
    }
    end(r, out, start, fl);
    return 0;
}

typedef struct delete_state {
    int32_t correlation_id;
    int16_t version;
    bool flexible;
    stream__classic_delete *groups;
    char **names;
    size_t n;
} delete_state;

static void delete_free(void *arg)
{
    delete_state *s = arg;
    for (size_t i = 0; s->names != NULL && i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->groups);
    free(s);
}

static void delete_done(stream__req *r, void *arg)
{
    delete_state *s = arg;
    bool fl = s->flexible;
    size_t start;
    stream_buf *out = begin(r, s->correlation_id, s->version, fl, 0, &start);
    stream__kafka_put_array_len(out, fl, s->n);
    for (size_t i = 0; i < s->n; i++) {
        put_cstr(out, fl, s->names[i]);
        stream_buf_put_be16(out, (uint16_t)s->groups[i].error);
        stream__kafka_put_tags(out, fl);
    }
    end(r, out, start, fl);
}

static int delete_groups(stream__coord *co, stream__req *r, const stream__kafka_group_request *q)
{
    delete_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return STREAM_ENOMEM;
    *s = (delete_state){.correlation_id = q->hdr.correlation_id,
                        .version = q->hdr.api_version,
                        .flexible = q->hdr.flexible,
                        .n = q->nentries};
    s->groups = calloc(s->n ? s->n : 1, sizeof(*s->groups));
    s->names = calloc(s->n ? s->n : 1, sizeof(*s->names));
    bool ok = s->groups && s->names;
    for (size_t i = 0; ok && i < s->n; i++) {
        s->names[i] = dup_str(q->entries[i].name);
        s->groups[i].group = s->names[i];
        ok = s->names[i] != NULL;
    }
    if (!ok) {
        delete_free(s);
        return STREAM_ENOMEM;
    }
    stream__classic_delete_groups(co, r, s->groups, s->n, delete_done, delete_free, s);
    return 0;
}

/* ---- dispatch ---- */

int stream__kafka_groups_frame(stream__kafka_groups *g, stream__req *r, const uint8_t *frame,
                               size_t len)
{
    stream__kafka_group_request q;
    int rc = stream__kafka_group_decode(frame, len, &q);
    if (rc != 0) {
        const stream__kafka_api *api = stream__kafka_api_find(q.hdr.api_key);
        stream__host_log(g->broker, STREAM_BROKER_DEBUG,
                         "kafka: %s: closing: %s (api key %d %s, version %d)",
                         stream__host_req_peer(r),
                         rc == STREAM_EUNSUPPORTED ? "a version outside the advertised range"
                                                   : "a malformed request",
                         (int)q.hdr.api_key, api ? api->name : "", (int)q.hdr.api_version);
        stream__kafka_group_release(&q);
        return rc;
    }
    stream__coord *co = stream__classic_coord(g->broker);
    if (co == NULL) {
        stream__kafka_group_release(&q);
        return STREAM_EUNSUPPORTED;
    }
    switch (q.hdr.api_key) {
    case STREAM__KAFKA_JOIN_GROUP:
        rc = join_group(g, co, r, &q);
        break;
    case STREAM__KAFKA_SYNC_GROUP:
        rc = sync_group(g, co, r, &q);
        break;
    case STREAM__KAFKA_HEARTBEAT:
        rc = heartbeat(co, r, &q);
        break;
    case STREAM__KAFKA_LEAVE_GROUP:
        rc = leave_group(co, r, &q);
        break;
    case STREAM__KAFKA_OFFSET_COMMIT:
        rc = offset_commit(co, r, &q);
        break;
    case STREAM__KAFKA_OFFSET_FETCH:
        offset_fetch(co, r, &q);
        break;
    case STREAM__KAFKA_LIST_GROUPS:
        list_groups(co, r, &q);
        break;
    case STREAM__KAFKA_DESCRIBE_GROUPS:
        rc = describe_groups(co, r, &q);
        break;
    case STREAM__KAFKA_DELETE_GROUPS:
        rc = delete_groups(co, r, &q);
        break;
    default:
        rc = STREAM_EUNKNOWNOP;
        break;
    }
    stream__kafka_group_release(&q);
    return rc;
}
