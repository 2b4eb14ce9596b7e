/*
 * group.c - the group coordinator: groups, members, sessions, and the ops
 * join_group, heartbeat, leave_group, list_groups and describe_group
 * (protocol.md 6.10-6.17); at the end, the coordinator as a service of the
 * broker (host.h): its ops table, start, stop and topic events. Offsets are
 * in group_offsets.c, the assignor in group_assign.c.
 *
 * A member's life: join_group makes it (with a fresh id) and triggers a
 * recomputation of the targets; every heartbeat reports `owned`, refreshes
 * its session deadline and answers with what it may consume now (`deliver`);
 * leave_group or a missed deadline removes it and triggers a recomputation.
 * The safety rule - never give a partition that another member still holds -
 * lives entirely in deliver(); see group_internal.h for the set algebra.
 * Whatever changes membership marks the group (meta_dirty): the op then
 * writes the membership record (group_meta.c) and answers once it is
 * durable (answer()), the session timer writes it after removing members.
 *
 * Recomputations are lazy for topic changes: the broker tells the
 * coordinator whenever a topic is created, deleted or given more
 * partitions, which bumps
 * co->topics_version, and a group compares it with the version its targets
 * were computed at on the next join or heartbeat of any member. Membership
 * changes recompute at once.
 *
 * Sessions: one uv timer per broker, armed at the earliest member deadline
 * over all groups (recomputed by a scan after every join and heartbeat:
 * groups are small, and a scan is cheaper than keeping a heap in step).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "classic.h"
#include "group_internal.h"
#include "stream/error.h"
#include "stream/partition.h"

/* ---- the coordinator ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A coordinator for b, its timer on b's loop; NULL on ENOMEM. */
static stream__coord *coord_new(stream_broker *b)
{
    stream__coord *co = calloc(1, sizeof(*co));
    if (co == NULL)
        return NULL;
    co->broker = b;
    const stream_config *cfg = stream__host_config(b);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Ids must differ across restarts too: a member from before a restart
     * must get EUNKNOWNMEMBER, never someone else's session. */
    co->rng = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    co->rng ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)co;
    co->min_session_ms =
        (int32_t)stream_config_int(cfg, STREAM_CONFIG_GROUP_MIN_SESSION_TIMEOUT_MS);
    co->max_session_ms =
        (int32_t)stream_config_int(cfg, STREAM_CONFIG_GROUP_MAX_SESSION_TIMEOUT_MS);
    if (co->max_session_ms < co->min_session_ms)
        co->max_session_ms = co->min_session_ms;
    uv_timer_init(stream__host_loop(b), &co->timer);
    co->timer.data = co;
    co->timer_open = true;
    return co;
}

/* Closes the timer handle (the loop then drains it). */
static void coord_close(stream__coord *co)
{
    if (co->timer_open) {
        uv_close((uv_handle_t *)&co->timer, NULL);
        co->timer_open = false;
    }
}

void stream__member_free(stream__member *m)
{
    if (m == NULL)
        return;
    free(m->id);
    free(m->client_id);
    for (size_t i = 0; i < m->ntopics; i++)
        free(m->topics[i]);
    free(m->topics);
    if (m->compiled)
        regfree(&m->re);
    free(m->pattern);
    stream__pset_release(&m->target);
    stream__pset_release(&m->assigned);
    stream__pset_release(&m->held);
    free(m);
}

static void group_free(stream__group *g)
{
    /* Whoever waits on a classic join or sync asks the new coordinator. */
    stream__classic_free(g->classic, STREAM__KAFKA_NOT_COORDINATOR);
    for (size_t i = 0; i < g->nmembers; i++)
        stream__member_free(g->members[i]);
    free(g->members);
    stream__offsets_release(g);
    free(g->name);
    free(g);
}

/* Frees every group and co (after the loop drained). NULL-safe. */
static void coord_free(stream__coord *co)
{
    if (co == NULL)
        return;
    for (size_t i = 0; i < co->ngroups; i++)
        group_free(co->groups[i]);
    free(co->groups);
    free(co->loaded_epoch);
    free(co);
}

/* ---- groups ---- */

static size_t group_pos(const stream__coord *co, const char *name, bool *found)
{
    size_t lo = 0, hi = co->ngroups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(co->groups[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

stream__group *stream__group_find(stream__coord *co, const char *name)
{
    bool found;
    size_t i = group_pos(co, name, &found);
    return found ? co->groups[i] : NULL;
}

stream__group *stream__group_get(stream__coord *co, const char *name)
{
    bool found;
    size_t i = group_pos(co, name, &found);
    if (found)
        return co->groups[i];
    if (co->ngroups == co->cap_groups) {
        size_t ncap = co->cap_groups ? co->cap_groups * 2 : 8;
        stream__group **ng = realloc(co->groups, ncap * sizeof(*ng));
        if (ng == NULL)
            return NULL;
        co->groups = ng;
        co->cap_groups = ncap;
    }
    stream__group *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->name = strdup(name)) == NULL) {
        free(g);
        return NULL;
    }
    g->topics_version = co->topics_version;
    memmove(&co->groups[i + 1], &co->groups[i], (co->ngroups - i) * sizeof(co->groups[0]));
    co->groups[i] = g;
    co->ngroups++;
    return g;
}

void stream__group_drop_partition(stream__coord *co, int32_t p, int32_t partitions)
{
    size_t k = 0;
    for (size_t i = 0; i < co->ngroups; i++) {
        stream__group *g = co->groups[i];
        if (stream_partition_for_key(g->name, strlen(g->name), partitions) == p)
            group_free(g);
        else
            co->groups[k++] = g;
    }
    co->ngroups = k;
    stream__coord_rearm(co);
}

void stream__group_gc(stream__coord *co, stream__group *g)
{
    if (g == NULL || g->nmembers > 0 || g->noffsets > 0 || stream__classic_active(g->classic))
        return;
    bool found;
    size_t i = group_pos(co, g->name, &found);
    if (!found || co->groups[i] != g)
        return;
    memmove(&co->groups[i], &co->groups[i + 1], (co->ngroups - i - 1) * sizeof(co->groups[0]));
    co->ngroups--;
    group_free(g);
}

/* True while m waits for a partition or still holds a revoked one. */
static bool member_reconciling(const stream__member *m)
{
    return !stream__pset_equal(&m->assigned, &m->target) ||
           !stream__pset_equal(&m->held, &m->assigned);
}

const char *stream__group_state(const stream__group *g)
{
    if (g->nmembers == 0)
        return "empty";
    for (size_t i = 0; i < g->nmembers; i++)
        if (member_reconciling(g->members[i]))
            return "reconciling";
    return "stable";
}

stream__member *stream__member_find(const stream__group *g, const char *id, size_t len,
                                    size_t *index)
{
    for (size_t i = 0; g && i < g->nmembers; i++) {
        if (stream_str_eq(id, len, g->members[i]->id)) {
            if (index)
                *index = i;
            return g->members[i];
        }
    }
    return NULL;
}

bool stream__member_subscribes(const stream__member *m, const stream_topic *t)
{
    size_t lo = 0, hi = m->ntopics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->topics[mid], t->name);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return m->compiled && !t->internal && regexec(&m->re, t->name, 0, NULL, 0) == 0;
}

/* Recomputes the targets; the generation grows when `changed` (membership
 * or a subscription changed) or a target moved. */
static void recompute(stream__coord *co, stream__group *g, bool changed, const char *why)
{
    stream_broker *b = co->broker;
    g->topics_version = co->topics_version;
    int rc = stream__group_assign(stream__host_store(b), g);
    if (rc < 0) {
        /* Out of memory: the old targets stay; the next event retries. */
        stream__host_log(b, STREAM_BROKER_ERROR, "group %s: cannot compute the assignment: %s",
                         g->name, stream_strerror(rc));
        g->topics_version = co->topics_version - 1; /* stale: retry at the next event */
        return;
    }
    if (!changed && rc == 0)
        return;
    g->meta_dirty = true;
    if (g->generation < INT32_MAX)
        g->generation++;
    stream__host_log(b, STREAM_BROKER_INFO, "group %s: generation %d, %zu members (%s)", g->name,
                     (int)g->generation, g->nmembers, why);
}

/* Hands m what it may consume now: its target minus what the others hold.
 * `owned` (NULL: unchanged) is what m reported holding. */
static int deliver(stream__group *g, stream__member *m, const stream__pset *owned, uint64_t now)
{
    stream__pset assign, held;
    stream__pset_init(&assign);
    stream__pset_init(&held);
    int rc = 0;
    /* held := owned ∩ held_before (a member holds only what it was given) */
    const stream__pset *from = owned ? owned : &m->held;
    for (size_t i = 0; rc == 0 && i < from->n; i++)
        for (size_t j = 0; rc == 0 && j < from->t[i].n; j++)
            if (stream__pset_has(&m->held, from->t[i].topic, from->t[i].parts[j]))
                rc = stream__pset_add(&held, from->t[i].topic, from->t[i].parts[j]);
    for (size_t i = 0; rc == 0 && i < m->target.n; i++) {
        const stream__pset_topic *t = &m->target.t[i];
        for (size_t j = 0; rc == 0 && j < t->n; j++) {
            bool taken = false;
            for (size_t x = 0; !taken && x < g->nmembers; x++)
                taken = g->members[x] != m &&
                        stream__pset_has(&g->members[x]->held, t->topic, t->parts[j]);
            if (!taken) {
                rc = stream__pset_add(&assign, t->topic, t->parts[j]);
                if (rc == 0)
                    rc = stream__pset_add(&held, t->topic, t->parts[j]);
            }
        }
    }
    if (rc != 0) {
        /* Keep the old sets: still consistent, the member retries. */
        stream__pset_release(&assign);
        stream__pset_release(&held);
        return rc;
    }
    if (!stream__pset_equal(&assign, &m->assigned) || !stream__pset_equal(&held, &m->held))
        g->meta_dirty = true;
    stream__pset_release(&m->assigned);
    stream__pset_release(&m->held);
    m->assigned = assign;
    m->held = held;
    /* A member that keeps a revoked partition blocks whoever it was moved
     * to: the clock for giving it up starts now, if not already running. */
    if (m->held.count == m->assigned.count)
        m->revoke_deadline_ms = 0;
    else if (m->revoke_deadline_ms == 0)
        m->revoke_deadline_ms = now + (uint64_t)m->rebalance_timeout_ms;
    if (m->epoch != g->generation) {
        m->prev_epoch = m->epoch;
        m->epoch = g->generation;
        g->meta_dirty = true;
    }
    return 0;
}

static int32_t heartbeat_interval(const stream__member *m)
{
    int32_t ms = m->session_timeout_ms / 3;
    if (ms > STREAM_GROUP_HEARTBEAT_MAX_MS)
        ms = STREAM_GROUP_HEARTBEAT_MAX_MS;
    if (member_reconciling(m) && ms > STREAM_GROUP_RECONCILE_HEARTBEAT_MS)
        ms = STREAM_GROUP_RECONCILE_HEARTBEAT_MS;
    return ms > 0 ? ms : 1;
}

/* Removes member i of g (left or expired) and recomputes. */
static void remove_member(stream__coord *co, stream__group *g, size_t i, const char *why)
{
    stream__member *m = g->members[i];
    memmove(&g->members[i], &g->members[i + 1], (g->nmembers - i - 1) * sizeof(g->members[0]));
    g->nmembers--;
    stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: member %s (%s) %s", g->name, m->id,
                     m->client_id, why);
    stream__member_free(m);
    g->meta_dirty = true;
    recompute(co, g, true, "a member left");
}

/* ---- sessions ---- */

static void on_timer(uv_timer_t *t)
{
    stream__coord *co = t->data;
    uint64_t now = uv_now(stream__host_loop(co->broker));
    for (size_t gi = 0; gi < co->ngroups; gi++) {
        stream__group *g = co->groups[gi];
        for (size_t i = 0; i < g->nmembers;) {
            stream__member *m = g->members[i];
            char why[128];
            if (m->deadline_ms <= now)
                snprintf(why, sizeof(why), "removed: no heartbeat for %d ms (session timeout)",
                         (int)m->session_timeout_ms);
            else if (m->revoke_deadline_ms != 0 && m->revoke_deadline_ms <= now)
                snprintf(why, sizeof(why),
                         "removed: kept revoked partitions for %d ms (rebalance timeout)",
                         (int)m->rebalance_timeout_ms);
            else {
                i++;
                continue;
            }
            remove_member(co, g, i, why);
        }
        stream__classic_tick(co, g, now);
        char msg[320];
        stream__group_meta_write(co, g, msg, sizeof(msg)); /* a failure is logged; retried */
    }
    /* Groups left with neither members nor offsets go (from the end: gc
     * shifts the array). */
    for (size_t gi = co->ngroups; gi-- > 0;)
        stream__group_gc(co, co->groups[gi]);
    stream__coord_rearm(co);
}

void stream__coord_rearm(stream__coord *co)
{
    if (!co->timer_open)
        return;
    uint64_t first = UINT64_MAX;
    for (size_t gi = 0; gi < co->ngroups; gi++) {
        for (size_t i = 0; i < co->groups[gi]->nmembers; i++) {
            const stream__member *m = co->groups[gi]->members[i];
            if (m->deadline_ms < first)
                first = m->deadline_ms;
            if (m->revoke_deadline_ms != 0 && m->revoke_deadline_ms < first)
                first = m->revoke_deadline_ms;
        }
        uint64_t c = stream__classic_deadline(co->groups[gi]->classic);
        if (c < first)
            first = c;
    }
    if (first == UINT64_MAX) {
        uv_timer_stop(&co->timer);
        return;
    }
    uint64_t now = uv_now(stream__host_loop(co->broker));
    uv_timer_start(&co->timer, on_timer, first > now ? first - now : 0, 0);
}

/* ---- request helpers ---- */

/* Reads and checks `group` into name (STREAM_GROUP_NAME_MAX + 1 bytes). */
int stream__group_field(const msgpack_object *m, char *name, char *msg, size_t msg_len)
{
    const char *p;
    size_t len;
    int rc = stream_field_str(m, "group", &p, &len, msg, msg_len);
    if (rc == 0)
        rc = stream_group_name_check(p, len, msg, msg_len);
    if (rc == 0) {
        memcpy(name, p, len);
        name[len] = '\0';
    }
    return rc;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A parsed subscription, ready to be moved into a member. */
typedef struct subscription {
    char **topics;
    size_t ntopics;
    char *pattern;
    regex_t re;
} subscription;

static void sub_release(subscription *s)
{
    for (size_t i = 0; i < s->ntopics; i++)
        free(s->topics[i]);
    free(s->topics);
    if (s->pattern) {
        regfree(&s->re);
        free(s->pattern);
    }
    memset(s, 0, sizeof(*s));
}

int stream__pattern_compile(const char *pattern, regex_t *re, char *msg, size_t msg_len)
{
    size_t len = strlen(pattern);
    char *anchored = malloc(len + 5);
    if (anchored == NULL) {
        snprintf(msg, msg_len, "out of memory");
        return STREAM_ENOMEM;
    }
    snprintf(anchored, len + 5, "^(%s)$", pattern);
    int rerr = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rerr != 0) {
        char why[160];
        regerror(rerr, re, why, sizeof(why));
        snprintf(msg, msg_len, "pattern '%.64s' is not a valid regular expression: %s", pattern,
                 why);
        return STREAM_EINVAL;
    }
    return 0;
}

void stream__names_sort_unique(char **t, size_t *n)
{
    qsort(t, *n, sizeof(*t), cmp_cstr);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        if (w > 0 && strcmp(t[w - 1], t[i]) == 0)
            free(t[i]);
        else
            t[w++] = t[i];
    }
    *n = w;
}

int stream__topics_decode(const msgpack_object *arr, char ***topics, size_t *n, char *msg,
                          size_t msg_len)
{
    size_t count = arr->via.array.size, k = 0;
    char **t = calloc(count ? count : 1, sizeof(*t));
    int rc = t ? 0 : STREAM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(arr, (uint32_t)i, "topics", &p, &len, msg, msg_len);
        if (rc == 0)
            rc = stream_topic_name_check(p, len, msg, msg_len);
        if (rc == 0 && (t[k] = stream__strndup(p, len)) == NULL)
            rc = STREAM_ENOMEM;
        if (rc == 0)
            k++;
    }
    if (rc != 0) {
        for (size_t i = 0; i < k; i++)
            free(t[i]);
        free(t);
        if (rc == STREAM_ENOMEM)
            snprintf(msg, msg_len, "out of memory");
        return rc;
    }
    stream__names_sort_unique(t, &k);
    *topics = t;
    *n = k;
    return 0;
}

/* Reads `topics` and `pattern` of a join_group. */
static int sub_parse(const msgpack_object *m, subscription *s, char *msg, size_t msg_len)
{
    const msgpack_object *topics;
    const char *pat;
    size_t plen;
    memset(s, 0, sizeof(*s));
    int rc = stream_field_array_opt(m, "topics", &topics, msg, msg_len);
    if (rc == 0)
        rc = stream_field_str_opt(m, "pattern", &pat, &plen, msg, msg_len);
    if (rc != 0)
        return rc;
    if (topics == NULL && pat == NULL) {
        snprintf(msg, msg_len, "join_group needs 'topics' or 'pattern'");
        return STREAM_EBADREQ;
    }
    if (topics == NULL)
        s->topics = calloc(1, sizeof(*s->topics));
    else if ((rc = stream__topics_decode(topics, &s->topics, &s->ntopics, msg, msg_len)) != 0)
        return rc;
    if (s->topics == NULL)
        return STREAM_ENOMEM;
    if (pat != NULL) {
        if (plen > STREAM_GROUP_PATTERN_MAX || memchr(pat, '\0', plen)) {
            snprintf(msg, msg_len, "pattern must be at most %d bytes with no NUL byte",
                     STREAM_GROUP_PATTERN_MAX);
            rc = STREAM_EINVAL;
            goto fail;
        }
        if ((s->pattern = stream__strndup(pat, plen)) == NULL) {
            rc = STREAM_ENOMEM;
            goto fail;
        }
        if ((rc = stream__pattern_compile(s->pattern, &s->re, msg, msg_len)) != 0) {
            free(s->pattern);
            s->pattern = NULL;
            goto fail;
        }
    }
    return 0;
fail:
    sub_release(s);
    return rc;
}

static bool sub_equal(const stream__member *m, const subscription *s)
{
    if (m->ntopics != s->ntopics || (m->pattern == NULL) != (s->pattern == NULL))
        return false;
    if (m->pattern && strcmp(m->pattern, s->pattern) != 0)
        return false;
    for (size_t i = 0; i < s->ntopics; i++)
        if (strcmp(m->topics[i], s->topics[i]) != 0)
            return false;
    return true;
}

/* Moves s into m (m's old subscription freed). */
static void sub_move(stream__member *m, subscription *s)
{
    for (size_t i = 0; i < m->ntopics; i++)
        free(m->topics[i]);
    free(m->topics);
    if (m->compiled)
        regfree(&m->re);
    free(m->pattern);
    m->topics = s->topics;
    m->ntopics = s->ntopics;
    m->pattern = s->pattern;
    m->compiled = s->pattern != NULL;
    if (s->pattern)
        m->re = s->re;
    memset(s, 0, sizeof(*s));
}

/* The host part of "HOST:PORT". */
static void peer_host(const char *peer, char *host, size_t len)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= len)
        n = len - 1;
    memcpy(host, peer, n);
    host[n] = '\0';
}

void stream__member_id_new(stream__coord *co, const char *client_id, char *id, size_t size)
{
    uint64_t r1 = splitmix64(&co->rng), r2 = splitmix64(&co->rng);
    size_t len = strlen(client_id);
    int prefix = (int)(len > 64 ? 64 : len);
    snprintf(id, size, "%.*s-%016llx%016llx", prefix, len ? client_id : "member",
             (unsigned long long)r1, (unsigned long long)r2);
    if (len == 0)
        snprintf(id, size, "member-%016llx%016llx", (unsigned long long)r1, (unsigned long long)r2);
}

static stream__member *member_new(stream__coord *co, const char *client_id, size_t client_len)
{
    stream__member *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    char id[STREAM_GROUP_MEMBER_ID_MAX + 1];
    m->client_id = stream__strndup(client_id ? client_id : "", client_len);
    if (m->client_id != NULL)
        stream__member_id_new(co, m->client_id, id, sizeof(id));
    m->id = m->client_id ? strdup(id) : NULL;
    if (m->id == NULL || m->client_id == NULL) {
        stream__member_free(m);
        return NULL;
    }
    stream__pset_init(&m->target);
    stream__pset_init(&m->assigned);
    stream__pset_init(&m->held);
    return m;
}

static int add_member(stream__group *g, stream__member *m)
{
    if (g->nmembers == g->cap_members) {
        size_t ncap = g->cap_members ? g->cap_members * 2 : 4;
        stream__member **nm = realloc(g->members, ncap * sizeof(*nm));
        if (nm == NULL)
            return STREAM_ENOMEM;
        g->members = nm;
        g->cap_members = ncap;
    }
    g->members[g->nmembers++] = m;
    return 0;
}

/* ---- answers about membership ---- */

/*
 * What join_group, heartbeat and leave_group answer never runs ahead of
 * the log: a member must not start on a partition, or a generation, that a
 * coordinator taking over would not know of (it could give that partition
 * to another member). So an answer waits until the group's last membership
 * record is durable - at once in the common case, where nothing changed
 * since it was - and is copied out of the group meanwhile.
 */

typedef enum answer_kind { ANSWER_JOIN, ANSWER_HEARTBEAT, ANSWER_LEAVE } answer_kind;

typedef struct member_answer {
    stream__pending p; /* first: the completion casts */
    answer_kind kind;
    int32_t partition; /* the membership record it waits for */
    int64_t need;
    char member_id[STREAM_GROUP_MEMBER_ID_MAX + 1];
    int32_t session_timeout_ms;
    int32_t generation;
    int32_t heartbeat_interval_ms;
    bool reconciling;
    stream__pset assigned; /* owned when parked, borrowed on the stack */
} member_answer;

static void answer_pack(stream__req *r, uint64_t id, const member_answer *a)
{
    stream_frame f;
    stream__host_reply_start(r, &f);
    if (a->kind == ANSWER_LEAVE) {
        stream_pack_response_header(&f.pk, id, 0, NULL, 0);
        stream__host_reply_finish(r, &f, id);
        return;
    }
    bool join = a->kind == ANSWER_JOIN;
    stream_pack_response_header(&f.pk, id, 0, NULL, join ? 6 : 4);
    if (join) {
        stream_pack_kv_cstr(&f.pk, "member_id", a->member_id);
        stream_pack_kv_int(&f.pk, "session_timeout_ms", a->session_timeout_ms);
    }
    stream_pack_kv_int(&f.pk, "generation", a->generation);
    stream_pack_kv_int(&f.pk, "heartbeat_interval_ms", a->heartbeat_interval_ms);
    stream_pack_kv_bool(&f.pk, "reconciling", a->reconciling);
    stream_pack_key(&f.pk, "assignment");
    stream__pset_pack(&f.pk, &a->assigned);
    stream__host_reply_finish(r, &f, id);
}

static void answer_encode(stream__coord *co, stream__req *r, stream__pending *p)
{
    member_answer *a = (member_answer *)p;
    char msg[240];
    int err = stream__offsets_durable_err(co, a->partition, a->need, msg, sizeof(msg));
    if (err != 0)
        stream__host_reply_error(r, p->id, err, msg);
    else
        answer_pack(r, p->id, a);
}

static void answer_destroy(stream__pending *p)
{
    member_answer *a = (member_answer *)p;
    stream__pset_release(&a->assigned);
    stream__pending_release(p);
    free(a);
}

/* Answers r about member m of g (m NULL for a leave): once g's last
 * membership record is durable. write_rc is what writing it returned: a
 * failure is answered ENOTCOORDINATOR, which clients retry after finding
 * the coordinator again (Kafka's COORDINATOR_NOT_AVAILABLE), as the
 * record may be stored once the in-sync replicas are back. */
static void answer(stream__coord *co, stream__req *r, uint64_t id, const stream__group *g,
                   const stream__member *m, answer_kind kind, int write_rc, const char *write_msg)
{
    char msg[512];
    if (write_rc != 0) {
        snprintf(msg, sizeof(msg), "cannot store the membership of group '%s': %s; try again",
                 g->name, write_msg);
        stream__host_reply_error(
            r, id, write_rc == STREAM_ENOMEM ? write_rc : STREAM_ENOTCOORDINATOR, msg);
        return;
    }
    member_answer a = {.kind = kind, .partition = g->meta_partition, .need = g->meta_need};
    if (m != NULL) {
        snprintf(a.member_id, sizeof(a.member_id), "%s", m->id);
        a.session_timeout_ms = m->session_timeout_ms;
        a.generation = g->generation;
        a.heartbeat_interval_ms = heartbeat_interval(m);
        a.reconciling = member_reconciling(m);
        a.assigned = m->assigned; /* borrowed while on the stack */
    }
    int rc = stream__offsets_durable_err(co, a.partition, a.need, msg, sizeof(msg));
    if (rc == 0) {
        answer_pack(r, id, &a);
        return;
    }
    if (rc != STREAM_ETIMEDOUT) { /* not merely "not yet": leadership lost, I/O error */
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    member_answer *w = malloc(sizeof(*w));
    if (w != NULL) {
        *w = a;
        stream__pset_init(&w->assigned);
        w->p = (stream__pending){.id = id, .encode = answer_encode, .destroy = answer_destroy};
    }
    if (w == NULL || stream__pset_copy(&w->assigned, &a.assigned) != 0 ||
        stream__pending_add(co, &w->p, a.partition, a.need) != 0) {
        if (w != NULL)
            answer_destroy(&w->p);
        stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
        return;
    }
    stream__pending_park(co, r, &w->p);
}

static void unknown_member(stream__req *r, uint64_t id, const char *group, const char *p,
                           size_t len)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "member '%.*s' is not in group '%s' (its session timed out, or it left): join "
             "again with an empty member_id",
             (int)(len > 140 ? 140 : len), p, group);
    stream__host_reply_error(r, id, STREAM_EUNKNOWNMEMBER, msg);
}

/* ---- join_group ---- */

static void op_join(void *svc, stream__req *r, uint64_t id, const msgpack_object *req)
{
    stream__coord *co = svc;
    stream_broker *b = co->broker;
    char msg[512], name[STREAM_GROUP_NAME_MAX + 1];
    const char *mid = NULL, *cid = NULL;
    size_t mid_len = 0, cid_len = 0;
    int64_t session, rebalance;
    subscription sub;
    int rc = stream_field_str_opt(req, "member_id", &mid, &mid_len, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_str_opt(req, "client_id", &cid, &cid_len, msg, sizeof(msg));
    if (rc == 0 && cid_len > STREAM_GROUP_CLIENT_ID_MAX) {
        snprintf(msg, sizeof(msg), "client_id is %zu bytes long (at most %d)", cid_len,
                 STREAM_GROUP_CLIENT_ID_MAX);
        rc = STREAM_EBADREQ;
    }
    if (rc == 0)
        rc = stream_field_int_opt(req, "session_timeout_ms", 1, INT32_MAX,
                                  STREAM_GROUP_DEFAULT_SESSION_TIMEOUT_MS, &session, msg,
                                  sizeof(msg));
    if (rc == 0)
        rc = stream_field_int_opt(req, "rebalance_timeout_ms", 1, INT32_MAX,
                                  STREAM_GROUP_DEFAULT_REBALANCE_TIMEOUT_MS, &rebalance, msg,
                                  sizeof(msg));
    if (rc == 0)
        rc = stream__group_field(req, name, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, name, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    if ((rc = sub_parse(req, &sub, msg, sizeof(msg))) != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    if (session < co->min_session_ms)
        session = co->min_session_ms;
    if (session > co->max_session_ms)
        session = co->max_session_ms;

    stream__group *g = stream__group_find(co, name);
    stream__member *m = NULL;
    bool changed;
    if (g != NULL && stream__classic_active(g->classic)) {
        sub_release(&sub);
        snprintf(msg, sizeof(msg),
                 "group '%s' is a Kafka client's group (the classic protocol): a group is one "
                 "kind or the other; use another group name",
                 name);
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, msg);
        return;
    }
    if (mid_len > 0) {
        m = stream__member_find(g, mid, mid_len, NULL);
        if (m == NULL) {
            sub_release(&sub);
            unknown_member(r, id, name, mid, mid_len);
            return;
        }
        changed = !sub_equal(m, &sub);
        if (cid && !stream_str_eq(cid, cid_len, m->client_id)) {
            char *ncid = stream__strndup(cid, cid_len);
            if (ncid) {
                free(m->client_id);
                m->client_id = ncid;
                g->meta_dirty = true;
            }
        }
        if (stream_field_find(req, "session_timeout_ms") && m->session_timeout_ms != session) {
            m->session_timeout_ms = (int32_t)session;
            g->meta_dirty = true;
        }
        if (stream_field_find(req, "rebalance_timeout_ms") &&
            m->rebalance_timeout_ms != rebalance) {
            m->rebalance_timeout_ms = (int32_t)rebalance;
            g->meta_dirty = true;
        }
    } else {
        g = stream__group_get(co, name);
        m = g ? member_new(co, cid, cid_len) : NULL;
        if (m == NULL || add_member(g, m) != 0) {
            stream__member_free(m);
            sub_release(&sub);
            stream__group_gc(co, g);
            stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
            return;
        }
        peer_host(stream__host_req_peer(r), m->host, sizeof(m->host));
        m->session_timeout_ms = (int32_t)session;
        m->rebalance_timeout_ms = (int32_t)rebalance;
        changed = true;
        stream__host_log(b, STREAM_BROKER_INFO, "group %s: member %s (%s) joined from %s", name,
                         m->id, m->client_id, m->host);
    }
    sub_move(m, &sub);
    m->deadline_ms = uv_now(stream__host_loop(b)) + (uint64_t)m->session_timeout_ms;
    if (changed || g->topics_version != co->topics_version)
        recompute(co, g, changed, mid_len > 0 ? "subscription changed" : "a member joined");
    if (deliver(g, m, NULL, uv_now(stream__host_loop(b))) != 0) {
        stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
        stream__coord_rearm(co);
        return;
    }
    stream__coord_rearm(co);
    rc = stream__group_meta_write(co, g, msg, sizeof(msg));
    answer(co, r, id, g, m, ANSWER_JOIN, rc, msg);
    size_t index;
    if (rc != 0 && mid_len == 0 && stream__member_find(g, m->id, strlen(m->id), &index) != NULL) {
        /* It never learns its id: left in, it would keep a share of the
         * targets, served by nobody, until its session ran out. */
        remove_member(co, g, index, "dropped: its join could not be stored");
        stream__coord_rearm(co);
    }
}

/* ---- heartbeat ---- */

static void op_heartbeat(void *svc, stream__req *r, uint64_t id, const msgpack_object *req)
{
    stream__coord *co = svc;
    stream_broker *b = co->broker;
    char msg[512], name[STREAM_GROUP_NAME_MAX + 1];
    const char *mid;
    size_t mid_len;
    int64_t gen;
    const msgpack_object *owned_arr;
    stream__pset owned;
    stream__pset_init(&owned);
    int rc = stream_field_str(req, "member_id", &mid, &mid_len, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int_opt(req, "generation", INT32_MIN, INT32_MAX, -1, &gen, msg,
                                  sizeof(msg));
    if (rc == 0)
        rc = stream_field_array(req, "owned", &owned_arr, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__pset_decode(owned_arr, "owned", &owned, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__group_field(req, name, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, name, msg, sizeof(msg));
    if (rc != 0) {
        stream__pset_release(&owned);
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream__group *g = stream__group_find(co, name);
    stream__member *m = stream__member_find(g, mid, mid_len, NULL);
    if (m == NULL) {
        stream__pset_release(&owned);
        unknown_member(r, id, name, mid, mid_len);
        return;
    }
    m->deadline_ms = uv_now(stream__host_loop(b)) + (uint64_t)m->session_timeout_ms;
    if (g->topics_version != co->topics_version)
        recompute(co, g, false, "topics changed");
    rc = deliver(g, m, &owned, uv_now(stream__host_loop(b)));
    stream__pset_release(&owned);
    stream__coord_rearm(co);
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, NULL);
        return;
    }
    rc = stream__group_meta_write(co, g, msg, sizeof(msg));
    answer(co, r, id, g, m, ANSWER_HEARTBEAT, rc, msg);
}

/* ---- leave_group ---- */

static void op_leave(void *svc, stream__req *r, uint64_t id, const msgpack_object *req)
{
    stream__coord *co = svc;
    char msg[512], name[STREAM_GROUP_NAME_MAX + 1];
    const char *mid;
    size_t mid_len, index;
    int rc = stream_field_str(req, "member_id", &mid, &mid_len, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__group_field(req, name, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, name, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream__group *g = stream__group_find(co, name);
    if (stream__member_find(g, mid, mid_len, &index) == NULL) {
        unknown_member(r, id, name, mid, mid_len);
        return;
    }
    remove_member(co, g, index, "left");
    stream__coord_rearm(co);
    rc = stream__group_meta_write(co, g, msg, sizeof(msg));
    answer(co, r, id, g, NULL, ANSWER_LEAVE, rc, msg);
    stream__group_gc(co, g);
}

/* ---- list_groups ---- */

static void op_list(void *svc, stream__req *r, uint64_t id, const msgpack_object *req)
{
    stream__coord *co = svc;
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 1);
    stream_pack_key(&f.pk, "groups");
    msgpack_pack_array(&f.pk, co->ngroups);
    for (size_t i = 0; i < co->ngroups; i++) {
        const stream__group *g = co->groups[i];
        bool kafka = stream__classic_active(g->classic);
        msgpack_pack_map(&f.pk, 4);
        stream_pack_kv_cstr(&f.pk, "group", g->name);
        stream_pack_kv_cstr(&f.pk, "state",
                            kafka ? stream__classic_state_name(g->classic)
                                  : stream__group_state(g));
        stream_pack_kv_uint(&f.pk, "members",
                            kafka ? stream__classic_members(g->classic) : g->nmembers);
        stream_pack_kv_int(&f.pk, "generation",
                           kafka ? stream__classic_generation(g->classic) : g->generation);
    }
    stream__host_reply_finish(r, &f, id);
}

/* ---- describe_group ---- */

void stream__member_pack_subscription(msgpack_packer *pk, const stream__member *m)
{
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, m->ntopics);
    for (size_t i = 0; i < m->ntopics; i++)
        stream_pack_cstr(pk, m->topics[i]);
    if (m->pattern)
        stream_pack_kv_cstr(pk, "pattern", m->pattern);
    else
        stream_pack_kv_nil(pk, "pattern");
}

static void pack_member(msgpack_packer *pk, const stream__member *m)
{
    msgpack_pack_map(pk, 8);
    stream_pack_kv_cstr(pk, "member_id", m->id);
    stream_pack_kv_cstr(pk, "client_id", m->client_id);
    stream_pack_kv_cstr(pk, "host", m->host);
    stream_pack_kv_int(pk, "session_timeout_ms", m->session_timeout_ms);
    stream_pack_kv_int(pk, "generation", m->epoch);
    stream_pack_key(pk, "subscription");
    msgpack_pack_map(pk, 2);
    stream__member_pack_subscription(pk, m);
    stream_pack_key(pk, "assignment");
    stream__pset_pack(pk, &m->assigned);
    stream_pack_key(pk, "target");
    stream__pset_pack(pk, &m->target);
}

/* One offsets entry of describe_group; adds to the totals. */
static void pack_lag(msgpack_packer *pk, stream_broker *b, const stream__group *g,
                     const char *topic, int32_t partition, int64_t *total_lag, int64_t *oldest)
{
    const stream__offset *o = stream__offset_find(g, topic, partition);
    const char *owner = stream__classic_owner(g->classic, topic, partition);
    if (owner == NULL)
        owner = "";
    for (size_t i = 0; i < g->nmembers; i++)
        if (stream__pset_has(&g->members[i]->assigned, topic, partition))
            owner = g->members[i]->id;
    stream_log *log = NULL;
    int64_t start = -1, end = -1, lag = -1, ts = -1;
    if (stream_store_log(stream__host_store(b), topic, partition, &log) == 0) {
        start = stream_log_start_offset(log);
        end = stream_log_end_offset(log);
    }
    if (o && log) {
        lag = end > o->offset ? end - o->offset : 0;
        int64_t first = o->offset > start ? o->offset : start;
        if (lag > 0 && first < end)
            ts = stream__record_timestamp_at(log, first);
        *total_lag += lag;
        if (ts >= 0 && (*oldest < 0 || ts < *oldest))
            *oldest = ts;
    }
    msgpack_pack_map(pk, 10);
    stream_pack_kv_cstr(pk, "topic", topic);
    stream_pack_kv_int(pk, "partition", partition);
    stream_pack_kv_cstr(pk, "member_id", owner);
    stream_pack_kv_int(pk, "offset", o ? o->offset : -1);
    stream_pack_kv_cstr(pk, "metadata", o ? o->metadata : "");
    stream_pack_kv_int(pk, "commit_timestamp", o ? o->commit_ms : -1);
    stream_pack_kv_int(pk, "log_start_offset", start);
    stream_pack_kv_int(pk, "log_end_offset", end);
    stream_pack_kv_int(pk, "lag", lag);
    stream_pack_kv_int(pk, "oldest_unconsumed_timestamp", ts);
}

static void op_describe(void *svc, stream__req *r, uint64_t id, const msgpack_object *req)
{
    stream__coord *co = svc;
    stream_broker *b = co->broker;
    char msg[512], name[STREAM_GROUP_NAME_MAX + 1];
    int rc = stream__group_field(req, name, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, name, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream__group *g = stream__group_find(co, name);
    if (g == NULL) {
        snprintf(msg, sizeof(msg), "group '%s' does not exist", name);
        stream__host_reply_error(r, id, STREAM_ENOGROUP, msg);
        return;
    }
    /* Every partition with an offset or in a target, in order. */
    stream__pset parts;
    stream__pset_init(&parts);
    for (size_t i = 0; rc == 0 && i < g->noffsets; i++)
        rc = stream__pset_add(&parts, g->offsets[i].topic, g->offsets[i].partition);
    for (size_t i = 0; rc == 0 && i < g->nmembers; i++) {
        const stream__pset *t = &g->members[i]->target;
        for (size_t j = 0; rc == 0 && j < t->n; j++)
            for (size_t k = 0; rc == 0 && k < t->t[j].n; k++)
                rc = stream__pset_add(&parts, t->t[j].topic, t->t[j].parts[k]);
    }
    if (rc == 0)
        rc = stream__classic_add_assigned(g->classic, &parts);
    if (rc != 0) {
        stream__pset_release(&parts);
        stream__host_reply_error(r, id, rc, NULL);
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 7);
    /* A Kafka client's group (classic.c) shows its members the same way. */
    bool kafka = stream__classic_active(g->classic);
    stream_pack_kv_cstr(&f.pk, "group", g->name);
    stream_pack_kv_cstr(&f.pk, "state",
                        kafka ? stream__classic_state_name(g->classic) : stream__group_state(g));
    stream_pack_kv_int(&f.pk, "generation",
                       kafka ? stream__classic_generation(g->classic) : g->generation);
    stream_pack_key(&f.pk, "members");
    if (kafka) {
        stream__classic_pack_members(&f.pk, g->classic);
    } else {
        msgpack_pack_array(&f.pk, g->nmembers);
        for (size_t i = 0; i < g->nmembers; i++)
            pack_member(&f.pk, g->members[i]);
    }
    int64_t total_lag = 0, oldest = -1;
    stream_pack_key(&f.pk, "offsets");
    msgpack_pack_array(&f.pk, parts.count);
    for (size_t i = 0; i < parts.n; i++)
        for (size_t j = 0; j < parts.t[i].n; j++)
            pack_lag(&f.pk, b, g, parts.t[i].topic, parts.t[i].parts[j], &total_lag, &oldest);
    stream_pack_kv_int(&f.pk, "total_lag", total_lag);
    stream_pack_kv_int(&f.pk, "oldest_unconsumed_timestamp", oldest);
    stream__pset_release(&parts);
    stream__host_reply_finish(r, &f, id);
}

/* ---- find_coordinator ---- */

static void op_find_coordinator(void *svc, stream__req *r, uint64_t id, const msgpack_object *req)
{
    stream__coord *co = svc;
    char msg[512], name[STREAM_GROUP_NAME_MAX + 1], host[256];
    int32_t node = -1;
    uint16_t port = 0;
    int rc = stream__group_field(req, name, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_locate(co, name, &node, msg, sizeof(msg));
    if (rc == 0 && stream__host_node_address(co->broker, node, host, sizeof(host), &port) != 0) {
        snprintf(msg, sizeof(msg),
                 "the coordinator of group '%s' is node %d, whose address is not known here yet",
                 name, (int)node);
        rc = STREAM_ENOTCOORDINATOR;
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 3);
    stream_pack_kv_int(&f.pk, "node_id", node);
    stream_pack_kv_cstr(&f.pk, "host", host);
    stream_pack_kv_int(&f.pk, "port", port);
    stream__host_reply_finish(r, &f, id);
}

/* ---- the coordinator as a service of the broker ---- */

/* The group ops, every one answered here (protocol.md 6.10-6.20). */
static const stream__service_op coord_ops[] = {
    {STREAM_OP_JOIN_GROUP, op_join},
    {STREAM_OP_HEARTBEAT, op_heartbeat},
    {STREAM_OP_LEAVE_GROUP, op_leave},
    {STREAM_OP_LIST_GROUPS, op_list},
    {STREAM_OP_DESCRIBE_GROUP, op_describe},
    {STREAM_OP_COMMIT_OFFSETS, stream__op_commit_offsets},
    {STREAM_OP_FETCH_OFFSETS, stream__op_fetch_offsets},
    {STREAM_OP_DELETE_GROUP, stream__op_delete_group},
    {STREAM_OP_RESET_OFFSETS, stream__op_reset_offsets},
    {STREAM_OP_FIND_COORDINATOR, op_find_coordinator},
};

/* Makes the coordinator and reads the committed offsets back, before the
 * first client can ask for them. */
static int coord_start(stream_broker *b, void **svc, char *errbuf, size_t errbuf_len)
{
    stream__coord *co = coord_new(b);
    *svc = co;
    /* In a cluster, offsets are loaded per partition as this broker comes
     * to lead it (coord_role_changed), never all at start. */
    if (co != NULL)
        co->clustered = stream__host_clustered(b);
    int rc = co == NULL      ? STREAM_ENOMEM
             : co->clustered ? 0
                             : stream__offsets_replay(co, errbuf, errbuf_len);
    if (rc == STREAM_ENOMEM && errbuf != NULL && errbuf_len > 0)
        snprintf(errbuf, errbuf_len, "out of memory");
    return rc;
}

static void coord_stop(void *svc)
{
    if (svc != NULL)
        coord_close(svc);
}

static void coord_release(void *svc)
{
    coord_free(svc);
}

/* Groups subscribed by pattern, or to a topic not there yet, look again at
 * their next join or heartbeat. */
static void coord_topic_created(void *svc, stream_topic *t)
{
    stream__coord *co = svc;
    co->topics_version++;
}

/* A subscribed topic that grew has new partitions to hand out: every group
 * looks again at its next join or heartbeat, as after a create. */
static void coord_partitions_added(void *svc, stream_topic *t, int32_t old_count)
{
    stream__coord *co = svc;
    co->topics_version++;
}

static void coord_topic_deleted(void *svc, const char *name)
{
    stream__coord *co = svc;
    co->topics_version++;
    stream__offsets_topic_deleted(co, name); /* groups' offsets of it go too */
}

static void coord_role_changed(void *svc, stream_log *log, stream__host_role role,
                               int32_t leader_epoch)
{
    stream__coord *co = svc;
    if (co->clustered)
        stream__coord_role_changed(co, log, role, leader_epoch);
}

/* Named once outside this folder: in the broker's list of services
 * (libstream/broker/host.c). */
const stream__service stream__coord_service = {
    .name = "group coordinator",
    .ops = coord_ops,
    .nops = sizeof(coord_ops) / sizeof(coord_ops[0]),
    .start = coord_start,
    .stop = coord_stop,
    .free = coord_release,
    .topic_created = coord_topic_created,
    .topic_deleted = coord_topic_deleted,
    .partitions_added = coord_partitions_added,
    .role_changed = coord_role_changed,
    .metrics = stream__coord_metrics,
    .stats = stream__coord_stats,
};
