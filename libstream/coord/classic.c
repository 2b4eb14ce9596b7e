/*
 * classic.c - Kafka's classic consumer-group protocol on the coordinator
 * (classic.h has the model): a group's classic state hangs off its
 * stream__group (g->classic), beside its committed offsets, so a group is
 * found, dropped with its offsets partition and garbage-collected as a
 * native one is. Deadlines (sessions, the rebalance timeout, the initial
 * delay, KIP-394's pending ids) join the coordinator's one timer
 * (group.c's stream__coord_rearm and on_timer call in here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "classic.h"
#include "group_internal.h"
#include "stream/error.h"

typedef enum classic_state {
    CLASSIC_EMPTY,
    CLASSIC_PREPARING,  /* holding joins until every member rejoined */
    CLASSIC_COMPLETING, /* joins answered; waiting for the leader's sync */
    CLASSIC_STABLE,
} classic_state;

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable"};

typedef struct cproto {
    char *name;
    uint8_t *meta;
    size_t len;
} cproto;

typedef struct cmember {
    char *id;
    char *instance_id; /* group.instance.id (KIP-345); NULL: a dynamic member */
    char *client_id;
    char *host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    cproto *protocols; /* in the member's order of preference */
    size_t nprotocols;
    uint8_t *assignment; /* from the leader's last sync */
    size_t assignment_len;
    char **topics; /* "consumer" protocol: its subscription, decoded (display) */
    size_t ntopics;
    stream__pset assigned;      /* "consumer" protocol: its assignment, decoded (display) */
    uint64_t deadline_ms;       /* session end (uv_now time); not while awaiting a join */
    stream__classic_wait *join; /* its parked JoinGroup, or NULL */
    stream__classic_wait *sync; /* its parked SyncGroup, or NULL */
} cmember;

typedef struct pending_id { /* KIP-394: an id handed out, not yet joined with */
    char *id;
    uint64_t deadline_ms;
} pending_id;

struct stream__classic {
    classic_state state;
    int32_t generation;
    char *protocol_type; /* of the group (set by its first member) */
    char *protocol;      /* chosen at the last completed rebalance */
    char *leader;        /* member id of the leader, or NULL */
    cmember **members;   /* in join order */
    size_t n, cap;
    pending_id *pending;
    size_t npending, cap_pending;
    uint64_t rebalance_deadline_ms; /* PREPARING: laggards are removed then */
    uint64_t delay_deadline_ms;     /* PREPARING from empty: wait for more until then (0: no) */
    uint64_t delay_limit_ms;        /* ... but never past this */
};

struct stream__classic_wait {
    bool sync;
    stream__classic_join_cb join_cb;
    stream__classic_sync_cb sync_cb;
    void *arg;
    cmember *member; /* whose join or sync slot holds it */
};

/* ---- small helpers ---- */

static uint64_t now_ms(stream__coord *co)
{
    return uv_now(stream__host_loop(co->broker));
}

static uint8_t *memdup(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len ? len : 1);
    if (q != NULL && len > 0)
        memcpy(q, p, len);
    return q;
}

static void protos_free(cproto *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].meta);
    }
    free(p);
}

/* Copies a join's protocols; NULL on ENOMEM. */
static cproto *protos_copy(const stream__classic_protocol *src, size_t n)
{
    cproto *p = calloc(n ? n : 1, sizeof(*p));
    for (size_t i = 0; p != NULL && i < n; i++) {
        p[i].name = strdup(src[i].name);
        p[i].meta = memdup(src[i].meta, src[i].meta_len);
        p[i].len = src[i].meta_len;
        if (p[i].name == NULL || p[i].meta == NULL) {
            protos_free(p, i + 1);
            p = NULL;
        }
    }
    return p;
}

static bool protos_equal(const cmember *m, const stream__classic_protocol *p, size_t n)
{
    if (m->nprotocols != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m->protocols[i].name, p[i].name) != 0 || m->protocols[i].len != p[i].meta_len ||
            (p[i].meta_len > 0 && memcmp(m->protocols[i].meta, p[i].meta, p[i].meta_len) != 0))
            return false;
    return true;
}

static const cproto *member_proto(const cmember *m, const char *name)
{
    for (size_t i = 0; name != NULL && i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, name) == 0)
            return &m->protocols[i];
    return NULL;
}

static cmember *find_member(const stream__classic *c, const char *id, size_t *index)
{
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        if (strcmp(c->members[i]->id, id) == 0) {
            if (index)
                *index = i;
            return c->members[i];
        }
    }
    return NULL;
}

/* The member holding static id `instance_id`, or NULL. */
static cmember *find_static(const stream__classic *c, const char *instance_id)
{
    for (size_t i = 0; c != NULL && instance_id != NULL && i < c->n; i++)
        if (c->members[i]->instance_id != NULL &&
            strcmp(c->members[i]->instance_id, instance_id) == 0)
            return c->members[i];
    return NULL;
}

/* KIP-345's fence: a request that names an instance id must come from the
 * member id holding it now (and a static member's requests name its own). */
static int16_t fence_check(const stream__classic *c, const char *member_id, const char *instance_id)
{
    if (instance_id == NULL)
        return 0;
    const cmember *s = find_static(c, instance_id);
    if (s != NULL && strcmp(s->id, member_id) != 0)
        return STREAM__KAFKA_FENCED_INSTANCE_ID;
    const cmember *m = find_member(c, member_id, NULL);
    if (m != NULL && m->instance_id != NULL && strcmp(m->instance_id, instance_id) != 0)
        return STREAM__KAFKA_FENCED_INSTANCE_ID;
    return 0;
}

static ssize_t find_pending(const stream__classic *c, const char *id)
{
    for (size_t i = 0; c != NULL && i < c->npending; i++)
        if (strcmp(c->pending[i].id, id) == 0)
            return (ssize_t)i;
    return -1;
}

static void drop_pending(stream__classic *c, size_t i)
{
    free(c->pending[i].id);
    c->pending[i] = c->pending[--c->npending];
}

/* ---- answering parked requests ---- */

static void join_fail(stream__classic_join_cb cb, void *arg, int16_t error, const char *member_id)
{
    stream__classic_join_result res = {
        .error = error, .generation = -1, .leader = "", .member_id = member_id ? member_id : ""};
    cb(arg, &res);
}

static void sync_fail(stream__classic_sync_cb cb, void *arg, int16_t error)
{
    stream__classic_sync_result res = {.error = error};
    cb(arg, &res);
}

/* Takes m's parked join (NULL when none): the caller answers it. */
static stream__classic_wait *take_join(cmember *m)
{
    stream__classic_wait *w = m->join;
    m->join = NULL;
    return w;
}

static stream__classic_wait *take_sync(cmember *m)
{
    stream__classic_wait *w = m->sync;
    m->sync = NULL;
    return w;
}

/* Answers and frees whatever m has parked with `error`. */
static void fail_waits(cmember *m, int16_t error)
{
    stream__classic_wait *w = take_join(m);
    if (w != NULL) {
        join_fail(w->join_cb, w->arg, error, m->id);
        free(w);
    }
    if ((w = take_sync(m)) != NULL) {
        sync_fail(w->sync_cb, w->arg, error);
        free(w);
    }
}

static void member_free(cmember *m)
{
    if (m == NULL)
        return;
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->host);
    protos_free(m->protocols, m->nprotocols);
    free(m->assignment);
    for (size_t i = 0; i < m->ntopics; i++)
        free(m->topics[i]);
    free(m->topics);
    stream__pset_release(&m->assigned);
    free(m);
}

void stream__classic_cancel(stream__classic_wait *w)
{
    if (w == NULL)
        return;
    if (w->member != NULL) {
        if (w->member->join == w)
            w->member->join = NULL;
        if (w->member->sync == w)
            w->member->sync = NULL;
    }
    free(w);
}

/* Parks an answer in m's join or sync slot; a request already parked there
 * (the member sent another: its connection died and came back) is answered
 * REBALANCE_IN_PROGRESS, which makes a client join again. NULL on ENOMEM. */
static stream__classic_wait *park(cmember *m, bool sync, stream__classic_join_cb jcb,
                                  stream__classic_sync_cb scb, void *arg)
{
    stream__classic_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    *w = (stream__classic_wait){
        .sync = sync, .join_cb = jcb, .sync_cb = scb, .arg = arg, .member = m};
    stream__classic_wait *old = sync ? take_sync(m) : take_join(m);
    if (old != NULL) {
        if (sync)
            sync_fail(old->sync_cb, old->arg, STREAM__KAFKA_REBALANCE_IN_PROGRESS);
        else
            join_fail(old->join_cb, old->arg, STREAM__KAFKA_REBALANCE_IN_PROGRESS, m->id);
        free(old);
    }
    if (sync)
        m->sync = w;
    else
        m->join = w;
    return w;
}

/* ---- the group's classic state ---- */

static stream__classic *classic_get(stream__group *g)
{
    if (g->classic == NULL)
        g->classic = calloc(1, sizeof(*g->classic));
    return g->classic;
}

void stream__classic_free(stream__classic *c, int16_t error)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        fail_waits(c->members[i], error);
        member_free(c->members[i]);
    }
    free(c->members);
    for (size_t i = 0; i < c->npending; i++)
        free(c->pending[i].id);
    free(c->pending);
    free(c->protocol_type);
    free(c->protocol);
    free(c->leader);
    free(c);
}

bool stream__classic_active(const stream__classic *c)
{
    return c != NULL && (c->n > 0 || c->npending > 0);
}

uint64_t stream__classic_deadline(const stream__classic *c)
{
    uint64_t first = UINT64_MAX;
    if (c == NULL)
        return first;
    for (size_t i = 0; i < c->n; i++)
        if (c->members[i]->join == NULL && c->members[i]->deadline_ms < first)
            first = c->members[i]->deadline_ms;
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].deadline_ms < first)
            first = c->pending[i].deadline_ms;
    if (c->state == CLASSIC_PREPARING) {
        if (c->rebalance_deadline_ms < first)
            first = c->rebalance_deadline_ms;
        if (c->delay_deadline_ms != 0 && c->delay_deadline_ms < first)
            first = c->delay_deadline_ms;
    }
    return first;
}

/* The longest rebalance timeout of the members: how long a rebalance
 * waits for them. */
static int32_t max_rebalance_timeout(const stream__classic *c)
{
    int32_t t = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->members[i]->rebalance_timeout_ms > t)
            t = c->members[i]->rebalance_timeout_ms;
    return t;
}

/* The protocol every member supports that most members prefer (each votes
 * for its first choice among those all support; ties go to the earliest in
 * the leader's order), or NULL when there is none. */
static const char *choose_protocol(const stream__classic *c)
{
    if (c->n == 0)
        return NULL;
    const cmember *first = c->members[0];
    const char *best = NULL;
    size_t best_votes = 0;
    for (size_t k = 0; k < first->nprotocols; k++) {
        const char *cand = first->protocols[k].name;
        bool all = true;
        for (size_t i = 1; all && i < c->n; i++)
            all = member_proto(c->members[i], cand) != NULL;
        if (!all)
            continue;
        size_t votes = 0;
        for (size_t i = 0; i < c->n; i++) {
            /* member i's first protocol that every member supports */
            const cmember *m = c->members[i];
            for (size_t j = 0; j < m->nprotocols; j++) {
                bool everyone = true;
                for (size_t x = 0; everyone && x < c->n; x++)
                    everyone = member_proto(c->members[x], m->protocols[j].name) != NULL;
                if (everyone) {
                    votes += strcmp(m->protocols[j].name, cand) == 0;
                    break;
                }
            }
        }
        if (best == NULL || votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

/* Whether a join with these protocols fits the group (Kafka's
 * supportsProtocols): an empty group takes any type with some protocol;
 * else the same type, and a protocol every member supports. */
static bool supports(const stream__classic *c, const char *type, const stream__classic_protocol *p,
                     size_t n, const char *except)
{
    if (type == NULL || type[0] == '\0' || n == 0)
        return false;
    size_t others = 0;
    for (size_t i = 0; c != NULL && i < c->n; i++)
        others += except == NULL || strcmp(c->members[i]->id, except) != 0;
    if (others == 0)
        return true;
    if (c->protocol_type == NULL || strcmp(c->protocol_type, type) != 0)
        return false;
    for (size_t k = 0; k < n; k++) {
        bool all = true;
        for (size_t i = 0; all && i < c->n; i++)
            if (except == NULL || strcmp(c->members[i]->id, except) != 0)
                all = member_proto(c->members[i], p[k].name) != NULL;
        if (all)
            return true;
    }
    return false;
}

static void remove_at(stream__coord *co, stream__group *g, size_t i, const char *why,
                      int16_t error);
static void maybe_complete_join(stream__coord *co, stream__group *g);

/* Starts (or restarts) a rebalance: held syncs are told to join again. */
static void prepare_rebalance(stream__coord *co, stream__group *g, const char *why)
{
    stream__classic *c = g->classic;
    uint64_t now = now_ms(co);
    if (c->state == CLASSIC_COMPLETING)
        for (size_t i = 0; i < c->n; i++) {
            stream__classic_wait *w = take_sync(c->members[i]);
            if (w != NULL) {
                sync_fail(w->sync_cb, w->arg, STREAM__KAFKA_REBALANCE_IN_PROGRESS);
                free(w);
            }
        }
    int32_t timeout = max_rebalance_timeout(c);
    if (c->state == CLASSIC_EMPTY) {
        const stream_config *cfg = stream__host_config(co->broker);
        int64_t delay = stream_config_int(cfg, STREAM_CONFIG_GROUP_INITIAL_REBALANCE_DELAY_MS);
        if (delay > timeout)
            delay = timeout;
        c->delay_deadline_ms = delay > 0 ? now + (uint64_t)delay : 0;
        c->delay_limit_ms = now + (uint64_t)timeout;
    }
    if (c->state != CLASSIC_PREPARING)
        stream__host_log(co->broker, STREAM_BROKER_INFO,
                         "group %s: rebalancing generation %d, %zu members (%s)", g->name,
                         (int)c->generation, c->n, why);
    c->state = CLASSIC_PREPARING;
    c->rebalance_deadline_ms = now + (uint64_t)timeout;
}

/* Answers a join with the current generation: at the end of a rebalance,
 * or for a member that missed its answer or rejoined with nothing new
 * (COMPLETING, STABLE). The leader's answer lists every member. */
static void join_current(stream__classic *c, cmember *m, stream__classic_join_cb cb, void *arg)
{
    bool leader = c->leader != NULL && strcmp(c->leader, m->id) == 0;
    stream__classic_member_view *views = leader ? calloc(c->n, sizeof(*views)) : NULL;
    if (leader && views == NULL) {
        join_fail(cb, arg, STREAM__KAFKA_REBALANCE_IN_PROGRESS, m->id);
        return;
    }
    for (size_t i = 0; leader && i < c->n; i++) {
        const cproto *p = member_proto(c->members[i], c->protocol);
        views[i] = (stream__classic_member_view){.member_id = c->members[i]->id,
                                                 .group_instance_id = c->members[i]->instance_id,
                                                 .meta = p->meta,
                                                 .meta_len = p->len};
    }
    stream__classic_join_result res = {
        .generation = c->generation,
        .protocol_type = c->protocol_type,
        .protocol_name = c->protocol,
        .leader = c->leader,
        .member_id = m->id,
        .members = views,
        .nmembers = leader ? c->n : 0,
    };
    cb(arg, &res);
    free(views);
}

/* Ends the rebalance: members that did not rejoin go, the generation
 * grows, and every held join is answered. */
static void complete_join(stream__coord *co, stream__group *g)
{
    stream__classic *c = g->classic;
    for (size_t i = c->n; i-- > 0;)
        if (c->members[i]->join == NULL)
            remove_at(co, g, i, "removed: did not join the rebalance in time",
                      STREAM__KAFKA_UNKNOWN_MEMBER_ID);
    c->delay_deadline_ms = 0;
    if (c->generation < INT32_MAX)
        c->generation++;
    free(c->protocol);
    c->protocol = NULL;
    if (c->n == 0) {
        c->state = CLASSIC_EMPTY;
        free(c->leader);
        c->leader = NULL;
        stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: generation %d, empty", g->name,
                         (int)c->generation);
        return;
    }
    const char *proto = choose_protocol(c);
    c->protocol = proto ? strdup(proto) : NULL;
    if (c->leader == NULL || find_member(c, c->leader, NULL) == NULL) {
        free(c->leader);
        c->leader = strdup(c->members[0]->id);
    }
    if (c->protocol == NULL || c->leader == NULL) {
        /* Out of memory (a protocol always exists: joins are checked).
         * Everyone is told to join again. */
        for (size_t i = 0; i < c->n; i++)
            fail_waits(c->members[i], STREAM__KAFKA_REBALANCE_IN_PROGRESS);
        return;
    }
    c->state = CLASSIC_COMPLETING;
    stream__host_log(co->broker, STREAM_BROKER_INFO,
                     "group %s: generation %d, %zu members, protocol %s, leader %s", g->name,
                     (int)c->generation, c->n, c->protocol, c->leader);
    bool consumer = strcmp(c->protocol_type, "consumer") == 0;
    for (size_t i = 0; consumer && i < c->n; i++) {
        /* What `stream-topics group` shows; a member whose bytes do not
         * read shows no topics (the group works all the same). */
        cmember *m = c->members[i];
        const cproto *p = member_proto(m, c->protocol);
        char **topics;
        size_t ntopics;
        if (stream__consumer_subscription_decode(p->meta, p->len, &topics, &ntopics) == 0) {
            for (size_t k = 0; k < m->ntopics; k++)
                free(m->topics[k]);
            free(m->topics);
            m->topics = topics;
            m->ntopics = ntopics;
        }
        stream__pset_clear(&m->assigned);
    }
    uint64_t now = now_ms(co);
    /* Answers go in join order; the leader's lists every member. */
    for (size_t i = 0; i < c->n; i++) {
        cmember *m = c->members[i];
        m->deadline_ms = now + (uint64_t)m->session_timeout_ms;
        stream__classic_wait *w = take_join(m);
        if (w != NULL) {
            join_current(c, m, w->join_cb, w->arg);
            free(w);
        }
    }
}

/* PREPARING and nobody is missing (or the wait is over): complete. */
static void maybe_complete_join(stream__coord *co, stream__group *g)
{
    stream__classic *c = g->classic;
    if (c == NULL || c->state != CLASSIC_PREPARING)
        return;
    uint64_t now = now_ms(co);
    if (c->delay_deadline_ms != 0 && now < c->delay_deadline_ms && now < c->rebalance_deadline_ms)
        return;
    bool all = c->npending == 0;
    for (size_t i = 0; all && i < c->n; i++)
        all = c->members[i]->join != NULL;
    if (all || now >= c->rebalance_deadline_ms)
        complete_join(co, g);
}

/* Removes member i (answering what it has parked with `error`); the others
 * rebalance. */
static void remove_at(stream__coord *co, stream__group *g, size_t i, const char *why, int16_t error)
{
    stream__classic *c = g->classic;
    cmember *m = c->members[i];
    memmove(&c->members[i], &c->members[i + 1], (c->n - i - 1) * sizeof(c->members[0]));
    c->n--;
    stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: member %s (%s) %s", g->name, m->id,
                     m->client_id, why);
    fail_waits(m, error);
    member_free(m);
    if (c->state == CLASSIC_STABLE || c->state == CLASSIC_COMPLETING)
        prepare_rebalance(co, g, "a member left");
}

void stream__classic_tick(stream__coord *co, stream__group *g, uint64_t now)
{
    stream__classic *c = g->classic;
    if (c == NULL)
        return;
    for (size_t i = c->npending; i-- > 0;)
        if (c->pending[i].deadline_ms <= now)
            drop_pending(c, i);
    for (size_t i = c->n; i-- > 0;) {
        cmember *m = c->members[i];
        if (m->join == NULL && m->deadline_ms <= now) {
            char why[96];
            snprintf(why, sizeof(why), "removed: no heartbeat for %d ms (session timeout)",
                     (int)m->session_timeout_ms);
            remove_at(co, g, i, why, STREAM__KAFKA_UNKNOWN_MEMBER_ID);
        }
    }
    if (c->state == CLASSIC_PREPARING && c->delay_deadline_ms != 0 && now >= c->delay_deadline_ms)
        c->delay_deadline_ms = 0;
    maybe_complete_join(co, g);
}

/* ---- the calls ---- */

stream__coord *stream__classic_coord(stream_broker *b)
{
    return stream__host_service_state(b, &stream__coord_service);
}

/* The group for a call, or NULL with *error (NOT_COORDINATOR in a cluster
 * when another broker coordinates it; INVALID_GROUP_ID for a bad name). */
static stream__group *group_for(stream__coord *co, const char *name, bool create, int16_t *error)
{
    char msg[256];
    if (stream_group_name_check(name, strlen(name), msg, sizeof(msg)) != 0) {
        *error = STREAM__KAFKA_INVALID_GROUP_ID;
        return NULL;
    }
    if (stream__coord_gate(co, name, msg, sizeof(msg)) != 0) {
        *error = STREAM__KAFKA_NOT_COORDINATOR;
        return NULL;
    }
    stream__group *g = create ? stream__group_get(co, name) : stream__group_find(co, name);
    if (g == NULL)
        *error = create ? STREAM__KAFKA_UNKNOWN_SERVER_ERROR : STREAM__KAFKA_UNKNOWN_MEMBER_ID;
    else if (g->nmembers > 0)
        *error = STREAM__KAFKA_INCONSISTENT_GROUP_PROTOCOL; /* a native group */
    else if (create && classic_get(g) == NULL)
        *error = STREAM__KAFKA_UNKNOWN_SERVER_ERROR;
    else
        return g;
    return NULL;
}

/* Makes a member from a join; NULL on ENOMEM. */
static cmember *member_from(const stream__classic_join_req *req, const char *id)
{
    cmember *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    stream__pset_init(&m->assigned);
    m->id = strdup(id);
    m->client_id = strdup(req->client_id ? req->client_id : "");
    m->host = strdup(req->client_host ? req->client_host : "");
    m->instance_id = req->group_instance_id ? strdup(req->group_instance_id) : NULL;
    m->protocols = protos_copy(req->protocols, req->nprotocols);
    m->nprotocols = req->nprotocols;
    m->session_timeout_ms = req->session_timeout_ms;
    m->rebalance_timeout_ms = req->rebalance_timeout_ms;
    if (m->id == NULL || m->client_id == NULL || m->host == NULL || m->protocols == NULL ||
        (req->group_instance_id != NULL && m->instance_id == NULL)) {
        if (m->protocols == NULL)
            m->nprotocols = 0;
        member_free(m);
        return NULL;
    }
    return m;
}

static int add(stream__classic *c, cmember *m)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4;
        cmember **nm = realloc(c->members, ncap * sizeof(*nm));
        if (nm == NULL)
            return STREAM_ENOMEM;
        c->members = nm;
        c->cap = ncap;
    }
    c->members[c->n++] = m;
    return 0;
}

/* Updates m from a rejoin (protocols and timeouts). */
static int update_member(cmember *m, const stream__classic_join_req *req)
{
    if (!protos_equal(m, req->protocols, req->nprotocols)) {
        cproto *p = protos_copy(req->protocols, req->nprotocols);
        if (p == NULL)
            return STREAM_ENOMEM;
        protos_free(m->protocols, m->nprotocols);
        m->protocols = p;
        m->nprotocols = req->nprotocols;
    }
    m->session_timeout_ms = req->session_timeout_ms;
    m->rebalance_timeout_ms = req->rebalance_timeout_ms;
    return 0;
}

/* Parks m's join for the rebalance under way, which it may complete. */
static void park_join(stream__coord *co, stream__group *g, cmember *m, stream__classic_join_cb cb,
                      void *arg, stream__classic_wait **wait)
{
    stream__classic_wait *w = park(m, false, cb, NULL, arg);
    if (w == NULL) {
        join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR, m->id);
        return;
    }
    *wait = w;
    maybe_complete_join(co, g);
    if (m->join != w) /* answered already (complete_join ran) */
        *wait = NULL;
    stream__coord_rearm(co);
}

/* A static member's process is back (a JoinGroup with its instance id and
 * no member id): it takes over member m under a new member id, and what
 * the old id has parked is answered FENCED_INSTANCE_ID. A STABLE group
 * whose metadata from it is unchanged is not rebalanced: the member gets
 * the current generation and, at its SyncGroup, the assignment it had.
 * That answer names the leader as it was, so that a returning leader,
 * seeing another id than its new one, does not assign again (a stable
 * group would not pass a new assignment on), as Kafka does. */
static void static_rejoin(stream__coord *co, stream__group *g, cmember *m,
                          const stream__classic_join_req *req, stream__classic_join_cb cb,
                          void *arg, stream__classic_wait **wait)
{
    stream__classic *c = g->classic;
    char id[STREAM_GROUP_MEMBER_ID_MAX + 1];
    stream__member_id_new(co, req->client_id ? req->client_id : "", id, sizeof(id));
    bool was_leader = c->leader != NULL && strcmp(c->leader, m->id) == 0;
    bool same = protos_equal(m, req->protocols, req->nprotocols);
    char *nid = strdup(id), *client = strdup(req->client_id ? req->client_id : "");
    char *host = strdup(req->client_host ? req->client_host : "");
    char *leader = was_leader ? strdup(id) : NULL;
    if (nid == NULL || client == NULL || host == NULL || (was_leader && leader == NULL) ||
        update_member(m, req) != 0) {
        free(nid);
        free(client);
        free(host);
        free(leader);
        join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    fail_waits(m, STREAM__KAFKA_FENCED_INSTANCE_ID);
    stream__host_log(co->broker, STREAM_BROKER_INFO,
                     "group %s: static member %s (instance %s) joined again as %s from %s%s",
                     g->name, m->id, m->instance_id, nid, host,
                     c->state == CLASSIC_STABLE && same ? ", no rebalance" : "");
    char *old_id = m->id, *old_leader = NULL;
    m->id = nid;
    free(m->client_id);
    m->client_id = client;
    free(m->host);
    m->host = host;
    if (was_leader) {
        old_leader = c->leader;
        c->leader = leader;
    }
    m->deadline_ms = now_ms(co) + (uint64_t)m->session_timeout_ms;
    if (c->state == CLASSIC_STABLE && same) {
        stream__classic_join_result res = {
            .generation = c->generation,
            .protocol_type = c->protocol_type,
            .protocol_name = c->protocol,
            .leader = was_leader ? old_leader : c->leader,
            .member_id = m->id,
        };
        cb(arg, &res);
    } else if (c->state == CLASSIC_COMPLETING && same) {
        join_current(c, m, cb, arg);
    } else {
        if (c->state != CLASSIC_PREPARING)
            prepare_rebalance(co, g, "a static member's metadata changed");
        park_join(co, g, m, cb, arg, wait);
    }
    free(old_id);
    free(old_leader);
    stream__coord_rearm(co);
}

void stream__classic_join(stream__coord *co, const stream__classic_join_req *req,
                          stream__classic_join_cb cb, void *arg, stream__classic_wait **wait)
{
    *wait = NULL;
    int16_t error = 0;
    const char *mid = req->member_id ? req->member_id : "";
    if (req->session_timeout_ms < co->min_session_ms ||
        req->session_timeout_ms > co->max_session_ms) {
        join_fail(cb, arg, STREAM__KAFKA_INVALID_SESSION_TIMEOUT, mid);
        return;
    }
    stream__group *g = group_for(co, req->group, true, &error);
    if (g == NULL) {
        join_fail(cb, arg, error, mid);
        return;
    }
    stream__classic *c = g->classic;
    uint64_t now = now_ms(co);
    const char *iid = req->group_instance_id;
    cmember *m = mid[0] ? find_member(c, mid, NULL) : NULL;
    cmember *st = find_static(c, iid);
    ssize_t pend = mid[0] ? find_pending(c, mid) : -1;
    if (mid[0] != '\0' && fence_check(c, mid, iid) != 0) {
        join_fail(cb, arg, STREAM__KAFKA_FENCED_INSTANCE_ID, mid);
        return;
    }
    if (!supports(c, req->protocol_type, req->protocols, req->nprotocols,
                  m    ? m->id
                  : st ? st->id
                       : NULL)) {
        join_fail(cb, arg, STREAM__KAFKA_INCONSISTENT_GROUP_PROTOCOL, mid);
        stream__group_gc(co, g);
        return;
    }
    if (mid[0] == '\0' && st != NULL) {
        static_rejoin(co, g, st, req, cb, arg, wait);
        return;
    }
    if (mid[0] != '\0' && m == NULL && pend < 0) {
        join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_MEMBER_ID, mid);
        stream__group_gc(co, g);
        return;
    }
    char id[STREAM_GROUP_MEMBER_ID_MAX + 1];
    if (m == NULL && pend < 0) {
        stream__member_id_new(co, req->client_id ? req->client_id : "", id, sizeof(id));
        if (req->require_known_member_id && iid == NULL) {
            /* KIP-394: the id first, so a client that times out on its
             * first join does not leave a member behind (a static member
             * has its instance id for that). */
            if (c->npending == c->cap_pending) {
                size_t ncap = c->cap_pending ? c->cap_pending * 2 : 4;
                pending_id *np = realloc(c->pending, ncap * sizeof(*np));
                if (np == NULL) {
                    join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR, "");
                    return;
                }
                c->pending = np;
                c->cap_pending = ncap;
            }
            char *copy = strdup(id);
            if (copy == NULL) {
                join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR, "");
                return;
            }
            c->pending[c->npending++] = (pending_id){copy, now + (uint64_t)req->session_timeout_ms};
            join_fail(cb, arg, STREAM__KAFKA_MEMBER_ID_REQUIRED, id);
            stream__coord_rearm(co);
            return;
        }
        mid = id;
    }
    if (m == NULL) {
        /* A new member (or a pending id joining): it takes part in a
         * rebalance. */
        m = member_from(req, mid);
        if (m == NULL || add(c, m) != 0) {
            member_free(m);
            join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR, mid);
            stream__group_gc(co, g);
            return;
        }
        if (pend >= 0)
            drop_pending(c, (size_t)pend);
        if (c->protocol_type == NULL || c->n == 1) {
            free(c->protocol_type);
            c->protocol_type = strdup(req->protocol_type);
        }
        stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: member %s (%s) joined from %s",
                         g->name, m->id, m->client_id, m->host);
        if (c->state == CLASSIC_PREPARING && c->delay_deadline_ms != 0) {
            /* Still gathering the first members: wait a little more. */
            uint64_t delay = (uint64_t)stream_config_int(
                stream__host_config(co->broker), STREAM_CONFIG_GROUP_INITIAL_REBALANCE_DELAY_MS);
            c->delay_deadline_ms =
                now + delay < c->delay_limit_ms ? now + delay : c->delay_limit_ms;
        }
        if (c->state != CLASSIC_PREPARING)
            prepare_rebalance(co, g, "a member joined");
        else
            c->rebalance_deadline_ms = now + (uint64_t)max_rebalance_timeout(c);
    } else {
        bool same = protos_equal(m, req->protocols, req->nprotocols);
        if (update_member(m, req) != 0) {
            join_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR, mid);
            return;
        }
        m->deadline_ms = now + (uint64_t)m->session_timeout_ms;
        bool leader = c->leader != NULL && strcmp(c->leader, m->id) == 0;
        if (c->state == CLASSIC_COMPLETING && same) {
            join_current(c, m, cb, arg);
            return;
        }
        if (c->state == CLASSIC_STABLE && same && !leader) {
            join_current(c, m, cb, arg);
            return;
        }
        if (c->state != CLASSIC_PREPARING)
            prepare_rebalance(co, g,
                              same ? "the leader joined again" : "a member's metadata changed");
    }
    park_join(co, g, m, cb, arg, wait);
}

/* Looks up (group, member, generation) for sync and heartbeat. */
static cmember *check_member(stream__coord *co, const char *group, const char *member_id,
                             const char *instance_id, int32_t generation, stream__group **gout,
                             int16_t *error)
{
    stream__group *g = group_for(co, group, false, error);
    *gout = g;
    if (g == NULL)
        return NULL;
    if ((*error = fence_check(g->classic, member_id, instance_id)) != 0)
        return NULL;
    cmember *m = find_member(g->classic, member_id, NULL);
    if (m == NULL) {
        *error = STREAM__KAFKA_UNKNOWN_MEMBER_ID;
        return NULL;
    }
    if (generation != g->classic->generation) {
        *error = STREAM__KAFKA_ILLEGAL_GENERATION;
        return NULL;
    }
    *error = 0;
    return m;
}

void stream__classic_sync(stream__coord *co, const char *group, const char *member_id,
                          const char *instance_id, int32_t generation, const char *protocol_type,
                          const char *protocol_name, const stream__classic_assignment *assignments,
                          size_t nassignments, stream__classic_sync_cb cb, void *arg,
                          stream__classic_wait **wait)
{
    *wait = NULL;
    stream__group *g;
    int16_t error;
    cmember *m = check_member(co, group, member_id, instance_id, generation, &g, &error);
    if (m == NULL) {
        sync_fail(cb, arg, error);
        return;
    }
    stream__classic *c = g->classic;
    if ((protocol_type != NULL &&
         (c->protocol_type == NULL || strcmp(protocol_type, c->protocol_type) != 0)) ||
        (protocol_name != NULL &&
         (c->protocol == NULL || strcmp(protocol_name, c->protocol) != 0))) {
        sync_fail(cb, arg, STREAM__KAFKA_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    m->deadline_ms = now_ms(co) + (uint64_t)m->session_timeout_ms;
    if (c->state == CLASSIC_PREPARING || c->state == CLASSIC_EMPTY) {
        sync_fail(cb, arg, STREAM__KAFKA_REBALANCE_IN_PROGRESS);
        return;
    }
    stream__classic_sync_result res = {.protocol_type = c->protocol_type,
                                       .protocol_name = c->protocol};
    if (c->state == CLASSIC_STABLE) {
        res.assignment = m->assignment;
        res.assignment_len = m->assignment_len;
        cb(arg, &res);
        return;
    }
    /* COMPLETING: everyone waits for the leader's assignments. */
    stream__classic_wait *w = park(m, true, NULL, cb, arg);
    if (w == NULL) {
        sync_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR);
        return;
    }
    *wait = w;
    if (strcmp(m->id, c->leader) != 0)
        return;
    /* The leader: store every member's bytes (none listed: empty), then
     * answer every parked sync. */
    uint8_t **bytes = calloc(c->n, sizeof(*bytes));
    size_t *lens = calloc(c->n, sizeof(*lens));
    bool ok = bytes != NULL && lens != NULL;
    for (size_t i = 0; ok && i < c->n; i++) {
        const stream__classic_assignment *a = NULL;
        for (size_t k = 0; k < nassignments; k++)
            if (assignments[k].member_id != NULL &&
                strcmp(assignments[k].member_id, c->members[i]->id) == 0)
                a = &assignments[k];
        bytes[i] = memdup(a ? a->bytes : NULL, a ? a->len : 0);
        lens[i] = a ? a->len : 0;
        ok = bytes[i] != NULL;
    }
    if (!ok) {
        for (size_t i = 0; bytes != NULL && i < c->n; i++)
            free(bytes[i]);
        free(bytes);
        free(lens);
        *wait = NULL;
        stream__classic_cancel(w);
        sync_fail(cb, arg, STREAM__KAFKA_UNKNOWN_SERVER_ERROR);
        return;
    }
    bool consumer = strcmp(c->protocol_type, "consumer") == 0;
    for (size_t i = 0; i < c->n; i++) {
        cmember *x = c->members[i];
        free(x->assignment);
        x->assignment = bytes[i];
        x->assignment_len = lens[i];
        stream__pset_clear(&x->assigned);
        if (consumer)
            stream__consumer_assignment_decode(x->assignment, x->assignment_len, &x->assigned);
    }
    free(bytes);
    free(lens);
    c->state = CLASSIC_STABLE;
    stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: generation %d stable", g->name,
                     (int)c->generation);
    for (size_t i = 0; i < c->n; i++) {
        cmember *x = c->members[i];
        stream__classic_wait *xw = take_sync(x);
        if (xw == NULL)
            continue;
        if (xw == w)
            *wait = NULL;
        stream__classic_sync_result r = {.protocol_type = c->protocol_type,
                                         .protocol_name = c->protocol,
                                         .assignment = x->assignment,
                                         .assignment_len = x->assignment_len};
        xw->sync_cb(xw->arg, &r);
        free(xw);
    }
}

int16_t stream__classic_heartbeat(stream__coord *co, const char *group, const char *member_id,
                                  const char *instance_id, int32_t generation)
{
    stream__group *g;
    int16_t error;
    cmember *m = check_member(co, group, member_id, instance_id, generation, &g, &error);
    if (m == NULL)
        return error;
    m->deadline_ms = now_ms(co) + (uint64_t)m->session_timeout_ms;
    stream__coord_rearm(co);
    return g->classic->state == CLASSIC_PREPARING ? STREAM__KAFKA_REBALANCE_IN_PROGRESS : 0;
}

int16_t stream__classic_leave(stream__coord *co, const char *group, const char *member_id,
                              const char *instance_id)
{
    int16_t error;
    stream__group *g = group_for(co, group, false, &error);
    if (g == NULL)
        return error;
    if (instance_id != NULL) {
        /* By instance id: the member id, if given, must be the holder's. */
        const cmember *s = find_static(g->classic, instance_id);
        if (s == NULL)
            return STREAM__KAFKA_UNKNOWN_MEMBER_ID;
        if (member_id[0] != '\0' && strcmp(s->id, member_id) != 0)
            return STREAM__KAFKA_FENCED_INSTANCE_ID;
        member_id = s->id;
    }
    size_t i;
    if (find_member(g->classic, member_id, &i) == NULL) {
        ssize_t p = find_pending(g->classic, member_id);
        if (p < 0)
            return STREAM__KAFKA_UNKNOWN_MEMBER_ID;
        drop_pending(g->classic, (size_t)p);
    } else {
        remove_at(co, g, i, "left", STREAM__KAFKA_UNKNOWN_MEMBER_ID);
        maybe_complete_join(co, g);
    }
    stream__coord_rearm(co);
    stream__group_gc(co, g);
    return 0;
}

int16_t stream__classic_commit_check(stream__coord *co, const char *group, const char *member_id,
                                     const char *instance_id, int32_t generation)
{
    int16_t error;
    stream__group *g = group_for(co, group, false, &error);
    if (g == NULL)
        /* No group yet: a standalone commit creates it. */
        return error == STREAM__KAFKA_UNKNOWN_MEMBER_ID && generation < 0 &&
                       (member_id == NULL || member_id[0] == '\0')
                   ? 0
                   : error;
    stream__classic *c = g->classic;
    if (generation < 0 && (member_id == NULL || member_id[0] == '\0'))
        return stream__classic_active(c) ? STREAM__KAFKA_UNKNOWN_MEMBER_ID : 0;
    int16_t fenced = fence_check(c, member_id ? member_id : "", instance_id);
    if (fenced != 0)
        return fenced;
    cmember *m = find_member(c, member_id ? member_id : "", NULL);
    if (m == NULL)
        return STREAM__KAFKA_UNKNOWN_MEMBER_ID;
    if (generation != c->generation)
        return STREAM__KAFKA_ILLEGAL_GENERATION;
    if (c->state == CLASSIC_COMPLETING)
        return STREAM__KAFKA_REBALANCE_IN_PROGRESS;
    m->deadline_ms = now_ms(co) + (uint64_t)m->session_timeout_ms;
    return 0;
}

bool stream__classic_describe(stream__coord *co, const char *group,
                              stream__classic_group_info *info,
                              void (*each)(void *arg, const stream__classic_member_info *m),
                              void *arg)
{
    stream__group *g = stream__group_find(co, group);
    *info = (stream__classic_group_info){.state = "Dead", .protocol_type = "", .protocol_name = ""};
    if (g == NULL)
        return false;
    if (g->nmembers > 0) {
        info->state = stream__group_state(g);
        info->protocol_type = "stream";
        info->nmembers = g->nmembers;
        return true;
    }
    stream__classic *c = g->classic;
    info->state = state_names[c ? c->state : CLASSIC_EMPTY];
    info->protocol_type = c && c->protocol_type && c->n ? c->protocol_type : "";
    info->protocol_name = c && c->protocol && c->state != CLASSIC_PREPARING ? c->protocol : "";
    info->nmembers = c ? c->n : 0;
    for (size_t i = 0; each != NULL && c != NULL && i < c->n; i++) {
        const cmember *m = c->members[i];
        const cproto *p = member_proto(m, c->protocol);
        stream__classic_member_info mi = {
            .member_id = m->id,
            .group_instance_id = m->instance_id,
            .client_id = m->client_id,
            .client_host = m->host,
            .meta = p ? p->meta : NULL,
            .meta_len = p ? p->len : 0,
            .assignment = c->state == CLASSIC_STABLE ? m->assignment : NULL,
            .assignment_len = c->state == CLASSIC_STABLE ? m->assignment_len : 0,
        };
        each(arg, &mi);
    }
    return true;
}

void stream__classic_list(stream__coord *co,
                          void (*each)(void *arg, const char *group,
                                       const stream__classic_group_info *info),
                          void *arg)
{
    for (size_t i = 0; i < co->ngroups; i++) {
        stream__classic_group_info info;
        if (stream__classic_gate(co, co->groups[i]->name) == 0 &&
            stream__classic_describe(co, co->groups[i]->name, &info, NULL, NULL))
            each(arg, co->groups[i]->name, &info);
    }
}

int stream__classic_locate(stream__coord *co, const char *group, int32_t *node)
{
    char msg[512];
    return stream__coord_locate(co, group, node, msg, sizeof(msg));
}

/* ---- the native view (group.c's describe_group and list_groups) ---- */

const char *stream__classic_state_name(const stream__classic *c)
{
    return state_names[c ? c->state : CLASSIC_EMPTY];
}

size_t stream__classic_members(const stream__classic *c)
{
    return c ? c->n : 0;
}

int32_t stream__classic_generation(const stream__classic *c)
{
    return c ? c->generation : 0;
}

const char *stream__classic_owner(const stream__classic *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; c != NULL && c->state == CLASSIC_STABLE && i < c->n; i++)
        if (stream__pset_has(&c->members[i]->assigned, topic, partition))
            return c->members[i]->id;
    return NULL;
}

int stream__classic_add_assigned(const stream__classic *c, stream__pset *parts)
{
    int rc = 0;
    for (size_t i = 0; c != NULL && c->state == CLASSIC_STABLE && i < c->n; i++) {
        const stream__pset *a = &c->members[i]->assigned;
        for (size_t t = 0; rc == 0 && t < a->n; t++)
            for (size_t k = 0; rc == 0 && k < a->t[t].n; k++)
                rc = stream__pset_add(parts, a->t[t].topic, a->t[t].parts[k]);
    }
    return rc;
}

void stream__classic_pack_members(msgpack_packer *pk, const stream__classic *c)
{
    size_t n = c ? c->n : 0;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const cmember *m = c->members[i];
        /* An assignment only once the leader's sync made the group stable. */
        stream__pset none;
        stream__pset_init(&none);
        const stream__pset *a = c->state == CLASSIC_STABLE ? &m->assigned : &none;
        msgpack_pack_map(pk, 8);
        stream_pack_kv_cstr(pk, "member_id", m->id);
        stream_pack_kv_cstr(pk, "client_id", m->client_id);
        stream_pack_kv_cstr(pk, "host", m->host);
        stream_pack_kv_int(pk, "session_timeout_ms", m->session_timeout_ms);
        stream_pack_kv_int(pk, "generation", c->generation);
        stream_pack_key(pk, "subscription");
        msgpack_pack_map(pk, 2);
        stream_pack_key(pk, "topics");
        msgpack_pack_array(pk, m->ntopics);
        for (size_t k = 0; k < m->ntopics; k++)
            stream_pack_cstr(pk, m->topics[k]);
        stream_pack_kv_nil(pk, "pattern");
        stream_pack_key(pk, "assignment");
        stream__pset_pack(pk, a);
        stream_pack_key(pk, "target");
        stream__pset_pack(pk, a);
    }
}
