/*
 * group_assign.c - partition sets and the coordinator's assignor.
 *
 * The assignor is server-side (KIP-848): members only say what they
 * subscribe to. It runs whenever membership, a subscription or the set of
 * subscribed partitions changes, and writes each member's *target*. What a
 * member is actually given follows from the targets and from what the others
 * still hold (group.c). The rules, from protocol.md 6.10:
 *
 *   1. every partition of a subscribed topic goes to exactly one member that
 *      subscribes to its topic;
 *   2. sticky: it stays where the previous target put it if still allowed;
 *   3. balanced: a partition moves from the member with the most to an
 *      eligible member with the fewest while the two differ by two or more;
 *   4. orphans (their member left, or new partitions) go, in topic and
 *      partition order, to the eligible member with the fewest partitions,
 *      ties to the member that joined first.
 *
 * With equal subscriptions rule 3 leaves counts that differ by at most one
 * and moves the fewest partitions that achieve it: a join takes
 * floor(P / M) partitions from the others, a leave spreads only the leaver's.
 * The balancing loop is O(P * M) per move and makes at most P moves; groups
 * of thousands of partitions are fine, of millions are not.
 */
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"
#include "stream/error.h"

/* ---- partition sets ---- */

void stream__pset_init(stream__pset *s)
{
    memset(s, 0, sizeof(*s));
}

void stream__pset_clear(stream__pset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->t[i].topic);
        free(s->t[i].parts);
    }
    free(s->t);
    memset(s, 0, sizeof(*s));
}

void stream__pset_release(stream__pset *s)
{
    stream__pset_clear(s);
}

/* Index of topic in s, or where it would go (*found false). */
static size_t topic_pos(const stream__pset *s, const char *topic, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->t[mid].topic, topic);
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

/* Index of p in the sorted parts, or where it would go. */
static size_t part_pos(const stream__pset_topic *t, int32_t p, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->parts[mid] == p) {
            *found = true;
            return mid;
        }
        if (t->parts[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

bool stream__pset_has(const stream__pset *s, const char *topic, int32_t partition)
{
    bool found;
    size_t i = topic_pos(s, topic, &found);
    if (!found)
        return false;
    part_pos(&s->t[i], partition, &found);
    return found;
}

int stream__pset_add(stream__pset *s, const char *topic, int32_t partition)
{
    bool found;
    size_t i = topic_pos(s, topic, &found);
    if (!found) {
        if (s->n == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 4;
            stream__pset_topic *nt = realloc(s->t, ncap * sizeof(*nt));
            if (nt == NULL)
                return STREAM_ENOMEM;
            s->t = nt;
            s->cap = ncap;
        }
        char *name = strdup(topic);
        if (name == NULL)
            return STREAM_ENOMEM;
        memmove(&s->t[i + 1], &s->t[i], (s->n - i) * sizeof(s->t[0]));
        s->t[i] = (stream__pset_topic){.topic = name};
        s->n++;
    }
    stream__pset_topic *t = &s->t[i];
    size_t j = part_pos(t, partition, &found);
    if (found)
        return 0;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4;
        int32_t *np = realloc(t->parts, ncap * sizeof(*np));
        if (np == NULL) {
            if (t->n == 0) { /* keep the no-empty-topics rule */
                free(t->topic);
                memmove(&s->t[i], &s->t[i + 1], (s->n - i - 1) * sizeof(s->t[0]));
                s->n--;
            }
            return STREAM_ENOMEM;
        }
        t->parts = np;
        t->cap = ncap;
    }
    memmove(&t->parts[j + 1], &t->parts[j], (t->n - j) * sizeof(t->parts[0]));
    t->parts[j] = partition;
    t->n++;
    s->count++;
    return 0;
}

void stream__pset_del(stream__pset *s, const char *topic, int32_t partition)
{
    bool found;
    size_t i = topic_pos(s, topic, &found);
    if (!found)
        return;
    stream__pset_topic *t = &s->t[i];
    size_t j = part_pos(t, partition, &found);
    if (!found)
        return;
    memmove(&t->parts[j], &t->parts[j + 1], (t->n - j - 1) * sizeof(t->parts[0]));
    t->n--;
    s->count--;
    if (t->n == 0) {
        free(t->topic);
        free(t->parts);
        memmove(&s->t[i], &s->t[i + 1], (s->n - i - 1) * sizeof(s->t[0]));
        s->n--;
    }
}

int stream__pset_copy(stream__pset *dst, const stream__pset *src)
{
    stream__pset_clear(dst);
    for (size_t i = 0; i < src->n; i++)
        for (size_t j = 0; j < src->t[i].n; j++)
            if (stream__pset_add(dst, src->t[i].topic, src->t[i].parts[j]) != 0) {
                stream__pset_clear(dst);
                return STREAM_ENOMEM;
            }
    return 0;
}

bool stream__pset_equal(const stream__pset *a, const stream__pset *b)
{
    if (a->n != b->n || a->count != b->count)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->t[i].topic, b->t[i].topic) != 0 || a->t[i].n != b->t[i].n ||
            memcmp(a->t[i].parts, b->t[i].parts, a->t[i].n * sizeof(int32_t)) != 0)
            return false;
    }
    return true;
}

void stream__pset_pack(msgpack_packer *pk, const stream__pset *s)
{
    msgpack_pack_array(pk, s->n);
    for (size_t i = 0; i < s->n; i++) {
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "topic", s->t[i].topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, s->t[i].n);
        for (size_t j = 0; j < s->t[i].n; j++)
            msgpack_pack_int32(pk, s->t[i].parts[j]);
    }
}

int stream__pset_decode(const msgpack_object *arr, const char *name, stream__pset *out, char *msg,
                        size_t msg_len)
{
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *e, *parts;
        const char *p;
        size_t len;
        char topic[STREAM_TOPIC_NAME_MAX + 1];
        int rc = stream_elem_map(arr, i, name, &e, msg, msg_len);
        if (rc == 0)
            rc = stream_field_str(e, "topic", &p, &len, msg, msg_len);
        if (rc == 0)
            rc = stream_field_array(e, "partitions", &parts, msg, msg_len);
        if (rc != 0)
            return rc;
        /* A name that is no topic cannot be held: skip it (not an error, a
         * client may report a topic deleted meanwhile). */
        bool valid = stream_topic_name_check(p, len, NULL, 0) == 0;
        if (valid) {
            memcpy(topic, p, len);
            topic[len] = '\0';
        }
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *o = &parts->via.array.ptr[j];
            int64_t v;
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
                v = (int64_t)o->via.u64;
            else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
                v = o->via.i64;
            else {
                snprintf(msg, msg_len, "%s[%u].partitions[%u] must be an int32", name, i, j);
                return STREAM_EBADREQ;
            }
            if (valid && v >= 0 && stream__pset_add(out, topic, (int32_t)v) != 0)
                return STREAM_ENOMEM;
        }
    }
    return 0;
}

/* ---- the assignor ---- */

/* One partition of a subscribed topic during a computation. */
typedef struct slot {
    const stream_topic *topic; /* borrowed from the store */
    size_t ti;                 /* index of the topic among the subscribed ones */
    int32_t partition;
    long owner; /* member index, -1 for none */
} slot;

int stream__group_assign(stream_store *store, stream__group *g)
{
    size_t nm = g->nmembers;
    size_t ntopics = stream_store_topic_count(store);
    const stream_topic **subs = calloc(ntopics ? ntopics : 1, sizeof(*subs));
    uint8_t *elig = calloc((ntopics ? ntopics : 1) * (nm ? nm : 1), 1); /* [ti * nm + m] */
    size_t *count = calloc(nm ? nm : 1, sizeof(*count));
    stream__pset *next = calloc(nm ? nm : 1, sizeof(*next));
    slot *slots = NULL;
    size_t nsubs = 0, nslots = 0;
    int rc = STREAM_ENOMEM;
    if (subs == NULL || elig == NULL || count == NULL || next == NULL)
        goto out;

    /* Which topics anybody subscribes to, and who may take them. */
    for (size_t i = 0; i < ntopics; i++) {
        const stream_topic *t = stream_store_topic_at(store, i);
        bool any = false;
        for (size_t m = 0; m < nm; m++) {
            bool e = stream__member_subscribes(g->members[m], t);
            elig[nsubs * nm + m] = e;
            any |= e;
        }
        if (any) {
            subs[nsubs++] = t;
            nslots += (size_t)t->partition_count;
        }
    }
    slots = calloc(nslots ? nslots : 1, sizeof(*slots));
    if (slots == NULL)
        goto out;
    size_t k = 0;
    for (size_t ti = 0; ti < nsubs; ti++)
        for (int32_t p = 0; p < subs[ti]->partition_count; p++)
            slots[k++] = (slot){.topic = subs[ti], .ti = ti, .partition = p, .owner = -1};

    /* Rule 2: keep what the previous target allows. */
    for (size_t s = 0; s < nslots; s++) {
        for (size_t m = 0; m < nm; m++) {
            if (elig[slots[s].ti * nm + m] &&
                stream__pset_has(&g->members[m]->target, slots[s].topic->name,
                                 slots[s].partition)) {
                slots[s].owner = (long)m;
                count[m]++;
                break;
            }
        }
    }
    /* Rule 4: orphans to the least loaded eligible member. */
    for (size_t s = 0; s < nslots; s++) {
        if (slots[s].owner >= 0)
            continue;
        long best = -1;
        for (size_t m = 0; m < nm; m++)
            if (elig[slots[s].ti * nm + m] && (best < 0 || count[m] < count[best]))
                best = (long)m;
        if (best >= 0) {
            slots[s].owner = best;
            count[best]++;
        }
    }
    /* Rule 3: move one partition at a time along the steepest difference.
     * Scanning slots from the end moves the highest partitions, keeping the
     * low ones where they are (only a tie-break: any choice is as sticky). */
    for (size_t moves = 0; moves <= nslots; moves++) {
        long bs = -1, bd = -1;
        size_t bdiff = 1;
        for (size_t s = nslots; s-- > 0;) {
            long src = slots[s].owner;
            if (src < 0)
                continue;
            for (size_t d = 0; d < nm; d++) {
                if (!elig[slots[s].ti * nm + d] || count[src] < count[d] + 2)
                    continue;
                size_t diff = count[src] - count[d];
                if (diff > bdiff) {
                    bdiff = diff;
                    bs = (long)s;
                    bd = (long)d;
                }
            }
        }
        if (bs < 0)
            break;
        count[slots[bs].owner]--;
        count[bd]++;
        slots[bs].owner = bd;
    }

    for (size_t s = 0; s < nslots; s++)
        if (slots[s].owner >= 0 &&
            stream__pset_add(&next[slots[s].owner], slots[s].topic->name, slots[s].partition) != 0)
            goto out;
    rc = 0;
    for (size_t m = 0; m < nm; m++) {
        if (!stream__pset_equal(&next[m], &g->members[m]->target))
            rc = 1;
        /* Swap: the old target is freed with `next` below. */
        stream__pset tmp = g->members[m]->target;
        g->members[m]->target = next[m];
        next[m] = tmp;
    }
out:
    for (size_t m = 0; next && m < nm; m++)
        stream__pset_release(&next[m]);
    free(next);
    free(slots);
    free(count);
    free(elig);
    free(subs);
    return rc;
}
