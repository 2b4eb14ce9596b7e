/*
 * group_meta.c - the membership record: a group's generation and members
 * (subscriptions, sessions, and the target/assigned/held sets of
 * group_internal.h) as one record of the group's partition of
 * __consumer_offsets, written whenever any of it changes. A broker that
 * takes the group over (the new leader of that partition, or a single
 * broker restarting) reads the last one back, so the members carry on with
 * the same ids, generation and partitions instead of joining a new group
 * that knows nothing of who held what. Kafka's GroupMetadataManager keeps a
 * group-metadata record in __consumer_offsets for the same reason. Layout:
 * protocol.md 6.10 "Storage".
 *
 * Three steps, each testable alone:
 *
 *   pack     (generation, members) -> the record's value;
 *   decode   the value, hostile bytes -> stream__group_meta: members built
 *            and checked, their patterns not compiled (a decoder runs no
 *            regcomp, so it can be fuzzed without a regex engine's worst
 *            cases);
 *   restore  stream__group_meta -> a group: patterns compiled, sessions
 *            started afresh; all or nothing.
 *
 * And one that ties them to the log: stream__group_meta_write, which the
 * ops of group.c call after a change (the record goes through the same
 * replicated append as commits, group_offsets.c).
 */
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"
#include "stream/error.h"

/* ---- pack ---- */

static void pack_member(msgpack_packer *pk, const stream__member *m)
{
    msgpack_pack_map(pk, 12);
    stream_pack_kv_cstr(pk, "member_id", m->id);
    stream_pack_kv_cstr(pk, "client_id", m->client_id);
    stream_pack_kv_cstr(pk, "host", m->host);
    stream_pack_kv_int(pk, "session_timeout_ms", m->session_timeout_ms);
    stream_pack_kv_int(pk, "rebalance_timeout_ms", m->rebalance_timeout_ms);
    stream__member_pack_subscription(pk, m);
    stream_pack_kv_int(pk, "epoch", m->epoch);
    stream_pack_kv_int(pk, "prev_epoch", m->prev_epoch);
    stream_pack_key(pk, "target");
    stream__pset_pack(pk, &m->target);
    stream_pack_key(pk, "assigned");
    stream__pset_pack(pk, &m->assigned);
    stream_pack_key(pk, "held");
    stream__pset_pack(pk, &m->held);
}

int stream__group_meta_pack(stream_buf *out, int32_t generation, stream__member *const *members,
                            size_t n)
{
    stream_frame f;
    stream_buf_reset(out);
    stream_frame_start(&f, out);
    msgpack_pack_map(&f.pk, 3);
    stream_pack_kv_int(&f.pk, "version", STREAM__GROUP_META_VERSION);
    stream_pack_kv_int(&f.pk, "generation", generation);
    stream_pack_key(&f.pk, "members");
    msgpack_pack_array(&f.pk, n);
    for (size_t i = 0; i < n; i++)
        pack_member(&f.pk, members[i]);
    int rc = stream_frame_finish(&f);
    if (rc != 0)
        return rc;
    /* The frame's length prefix is not part of the record. */
    memmove(out->data, out->data + 4, out->len - 4);
    out->len -= 4;
    return 0;
}

/* ---- decode ---- */

void stream__group_meta_release(stream__group_meta *meta)
{
    for (size_t i = 0; i < meta->nmembers; i++)
        stream__member_free(meta->members[i]);
    free(meta->members);
    memset(meta, 0, sizeof(*meta));
}

/* Copies a str field of at most max bytes, no NUL byte, into a new string. */
static int take_str(const msgpack_object *m, const char *key, size_t max, bool required, char **out,
                    const char *who, char *msg, size_t msg_len)
{
    const char *p = NULL;
    size_t len = 0;
    int rc = required ? stream_field_str(m, key, &p, &len, msg, msg_len)
                      : stream_field_str_opt(m, key, &p, &len, msg, msg_len);
    if (rc != 0)
        return STREAM_ECORRUPT;
    if (p == NULL) {
        *out = NULL;
        return 0;
    }
    if (len > max || memchr(p, '\0', len) != NULL) {
        snprintf(msg, msg_len, "%s: %s is longer than %zu bytes or holds a NUL byte", who, key,
                 max);
        return STREAM_ECORRUPT;
    }
    *out = stream__strndup(p, len);
    return *out ? 0 : STREAM_ENOMEM;
}

/* A partition set, strictly: every topic name valid, every partition an
 * int32 >= 0 (the lenient reader of requests, stream__pset_decode, skips
 * what it cannot use; a record that holds such a thing is not ours). */
static int take_pset(const msgpack_object *m, const char *key, stream__pset *out, const char *who,
                     char *msg, size_t msg_len)
{
    const msgpack_object *arr;
    if (stream_field_array(m, key, &arr, msg, msg_len) != 0)
        return STREAM_ECORRUPT;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *e, *parts;
        const char *p;
        size_t len;
        char topic[STREAM_TOPIC_NAME_MAX + 1];
        if (stream_elem_map(arr, i, key, &e, msg, msg_len) != 0 ||
            stream_field_str(e, "topic", &p, &len, msg, msg_len) != 0 ||
            stream_field_array(e, "partitions", &parts, msg, msg_len) != 0)
            return STREAM_ECORRUPT;
        if (stream_topic_name_check(p, len, NULL, 0) != 0) {
            snprintf(msg, msg_len, "%s: %s[%u] is no topic name", who, key, i);
            return STREAM_ECORRUPT;
        }
        memcpy(topic, p, len);
        topic[len] = '\0';
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *o = &parts->via.array.ptr[j];
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT32_MAX) {
                snprintf(msg, msg_len, "%s: %s[%u].partitions[%u] is not a partition", who, key, i,
                         j);
                return STREAM_ECORRUPT;
            }
            if (stream__pset_add(out, topic, (int32_t)o->via.u64) != 0)
                return STREAM_ENOMEM;
        }
    }
    return 0;
}

/* The subscribed names, sorted and made distinct as a join does. */
static int take_topics(const msgpack_object *mo, stream__member *m, const char *who, char *msg,
                       size_t msg_len)
{
    const msgpack_object *arr;
    char why[200];
    if (stream_field_array(mo, "topics", &arr, msg, msg_len) != 0)
        return STREAM_ECORRUPT;
    int rc = stream__topics_decode(arr, &m->topics, &m->ntopics, why, sizeof(why));
    if (rc != 0)
        snprintf(msg, msg_len, "%s: %s", who, why);
    return rc == 0 || rc == STREAM_ENOMEM ? rc : STREAM_ECORRUPT;
}

/* Element i of `members`: a member whose pattern (if any) is not compiled. */
static int take_member(const msgpack_object *arr, uint32_t i, stream__member **out, char *msg,
                       size_t msg_len)
{
    const msgpack_object *mo;
    char who[32];
    snprintf(who, sizeof(who), "members[%u]", i);
    if (stream_elem_map(arr, i, "members", &mo, msg, msg_len) != 0)
        return STREAM_ECORRUPT;
    stream__member *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return STREAM_ENOMEM;
    *out = m;
    char *host = NULL;
    int64_t session, rebalance, epoch, prev;
    int rc = take_str(mo, "member_id", STREAM_GROUP_MEMBER_ID_MAX, true, &m->id, who, msg, msg_len);
    if (rc == 0 && m->id[0] == '\0') {
        snprintf(msg, msg_len, "%s: member_id is empty", who);
        rc = STREAM_ECORRUPT;
    }
    if (rc == 0)
        rc = take_str(mo, "client_id", STREAM_GROUP_CLIENT_ID_MAX, true, &m->client_id, who, msg,
                      msg_len);
    if (rc == 0)
        rc = take_str(mo, "host", sizeof(m->host) - 1, true, &host, who, msg, msg_len);
    if (rc == 0) {
        memcpy(m->host, host, strlen(host) + 1);
        rc = take_str(mo, "pattern", STREAM_GROUP_PATTERN_MAX, false, &m->pattern, who, msg,
                      msg_len);
    }
    free(host);
    if (rc == 0 &&
        (stream_field_int(mo, "session_timeout_ms", 1, INT32_MAX, &session, msg, msg_len) != 0 ||
         stream_field_int(mo, "rebalance_timeout_ms", 1, INT32_MAX, &rebalance, msg, msg_len) !=
             0 ||
         stream_field_int(mo, "epoch", 0, INT32_MAX, &epoch, msg, msg_len) != 0 ||
         stream_field_int(mo, "prev_epoch", 0, INT32_MAX, &prev, msg, msg_len) != 0))
        rc = STREAM_ECORRUPT;
    if (rc == 0)
        rc = take_topics(mo, m, who, msg, msg_len);
    if (rc == 0)
        rc = take_pset(mo, "target", &m->target, who, msg, msg_len);
    if (rc == 0)
        rc = take_pset(mo, "assigned", &m->assigned, who, msg, msg_len);
    if (rc == 0)
        rc = take_pset(mo, "held", &m->held, who, msg, msg_len);
    if (rc != 0)
        return rc;
    m->session_timeout_ms = (int32_t)session;
    m->rebalance_timeout_ms = (int32_t)rebalance;
    m->epoch = (int32_t)epoch;
    m->prev_epoch = (int32_t)prev;
    return 0;
}

/* The invariants of group_internal.h that a restored group relies on: ids
 * distinct, each member's assigned within what it holds, and no partition
 * held by two members (so none is ever given to two). A record that breaks
 * one was not written by a coordinator: refusing it keeps the group's
 * previous state. */
static int check_members(const stream__group_meta *meta, int32_t generation, char *msg,
                         size_t msg_len)
{
    for (size_t i = 0; i < meta->nmembers; i++) {
        const stream__member *m = meta->members[i];
        if (m->epoch > generation || m->prev_epoch > m->epoch) {
            snprintf(msg, msg_len,
                     "member %.140s: epoch %d (previous %d) is not within the generation %d", m->id,
                     (int)m->epoch, (int)m->prev_epoch, (int)generation);
            return STREAM_ECORRUPT;
        }
        for (size_t t = 0; t < m->assigned.n; t++)
            for (size_t k = 0; k < m->assigned.t[t].n; k++)
                if (!stream__pset_has(&m->held, m->assigned.t[t].topic,
                                      m->assigned.t[t].parts[k])) {
                    snprintf(msg, msg_len, "member %.140s: %.200s-%d is assigned but not held",
                             m->id, m->assigned.t[t].topic, (int)m->assigned.t[t].parts[k]);
                    return STREAM_ECORRUPT;
                }
        for (size_t j = 0; j < i; j++) {
            const stream__member *o = meta->members[j];
            if (strcmp(m->id, o->id) == 0) {
                snprintf(msg, msg_len, "member %.140s is listed twice", m->id);
                return STREAM_ECORRUPT;
            }
            for (size_t t = 0; t < m->held.n; t++)
                for (size_t k = 0; k < m->held.t[t].n; k++)
                    if (stream__pset_has(&o->held, m->held.t[t].topic, m->held.t[t].parts[k])) {
                        snprintf(msg, msg_len, "%.200s-%d is held by two members",
                                 m->held.t[t].topic, (int)m->held.t[t].parts[k]);
                        return STREAM_ECORRUPT;
                    }
        }
    }
    return 0;
}

int stream__group_meta_decode(const uint8_t *p, size_t len, stream__group_meta *out, char *msg,
                              size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    /* Through the scanning parser, not msgpack_unpack_next: msgpack-c
     * allocates for a container's declared size before reading it, and a
     * few corrupt bytes can declare billions of elements. */
    stream_msg u;
    stream_msg_init(&u);
    int rc = STREAM_ECORRUPT;
    int64_t version, generation;
    const msgpack_object *arr;
    char why[200];
    if (p == NULL || len == 0) {
        snprintf(msg, msg_len, "empty");
        goto out;
    }
    if ((rc = stream_msg_parse(p, len, &u, why, sizeof(why))) != 0) {
        snprintf(msg, msg_len, "not one MessagePack map: %s", why);
        rc = rc == STREAM_ENOMEM ? rc : STREAM_ECORRUPT;
        goto out;
    }
    rc = STREAM_ECORRUPT;
    if (stream_field_int(&u.root, "version", INT64_MIN, INT64_MAX, &version, msg, msg_len) != 0)
        goto out;
    if (version != STREAM__GROUP_META_VERSION) {
        snprintf(msg, msg_len, "membership record version %lld (this broker reads %d)",
                 (long long)version, STREAM__GROUP_META_VERSION);
        rc = STREAM_EUNSUPPORTED;
        goto out;
    }
    if (stream_field_int(&u.root, "generation", 0, INT32_MAX, &generation, msg, msg_len) != 0 ||
        stream_field_array(&u.root, "members", &arr, msg, msg_len) != 0)
        goto out;
    out->generation = (int32_t)generation;
    uint32_t n = arr->via.array.size;
    out->members = calloc(n ? n : 1, sizeof(*out->members));
    if (out->members == NULL) {
        rc = STREAM_ENOMEM;
        goto out;
    }
    rc = 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = take_member(arr, i, &out->members[i], msg, msg_len);
        if (out->members[i] != NULL)
            out->nmembers++;
    }
    if (rc == 0)
        rc = check_members(out, out->generation, msg, msg_len);
out:
    if (rc == STREAM_ENOMEM)
        snprintf(msg, msg_len, "out of memory");
    stream_msg_release(&u);
    if (rc != 0)
        stream__group_meta_release(out);
    return rc;
}

/* ---- restore ---- */

int stream__group_meta_restore(stream__group *g, stream__group_meta *meta, uint64_t now, char *msg,
                               size_t msg_len)
{
    /* Everything that can fail first, so that a failure changes nothing. */
    stream__member **members = NULL;
    if (meta->nmembers > 0 && (members = malloc(meta->nmembers * sizeof(*members))) == NULL) {
        snprintf(msg, msg_len, "out of memory");
        return STREAM_ENOMEM;
    }
    for (size_t i = 0; i < meta->nmembers; i++) {
        stream__member *m = meta->members[i];
        if (m->pattern == NULL || m->compiled)
            continue;
        int rc = stream__pattern_compile(m->pattern, &m->re, msg, msg_len);
        if (rc != 0) {
            free(members);
            return rc == STREAM_ENOMEM ? rc : STREAM_ECORRUPT;
        }
        m->compiled = true;
    }
    for (size_t i = 0; i < g->nmembers; i++)
        stream__member_free(g->members[i]);
    free(g->members);
    for (size_t i = 0; i < meta->nmembers; i++) {
        stream__member *m = meta->members[i];
        members[i] = m;
        /* A session runs from the takeover: a live member's next heartbeat
         * finds it; a dead one's expires as it would have. */
        m->deadline_ms = now + (uint64_t)m->session_timeout_ms;
        m->revoke_deadline_ms =
            m->held.count != m->assigned.count ? now + (uint64_t)m->rebalance_timeout_ms : 0;
    }
    g->members = members;
    g->nmembers = g->cap_members = meta->nmembers;
    g->generation = meta->generation;
    free(meta->members);
    memset(meta, 0, sizeof(*meta));
    return 0;
}

/* ---- write ---- */

int stream__group_meta_write(stream__coord *co, stream__group *g, char *msg, size_t msg_len)
{
    if (!g->meta_dirty)
        return 0;
    /* A group that is about to go (no members, no offsets) leaves a
     * tombstone, so that a replay does not bring it back; one that keeps
     * its offsets keeps its generation in an empty record. */
    bool tombstone = g->nmembers == 0 && g->noffsets == 0;
    if (tombstone && !g->meta_written) {
        g->meta_dirty = false;
        return 0;
    }
    stream_buf value = STREAM_BUF_INIT;
    int rc =
        tombstone ? 0 : stream__group_meta_pack(&value, g->generation, g->members, g->nmembers);
    if (rc != 0) {
        snprintf(msg, msg_len, "out of memory");
        stream_buf_release(&value);
        return rc;
    }
    stream__offset_rec rec = {
        .membership = true, .tombstone = tombstone, .value = value.data, .value_len = value.len};
    int32_t partition;
    int64_t need;
    rc = stream__offsets_write(co, g->name, &rec, 1, &partition, &need, msg, msg_len);
    stream_buf_release(&value);
    if (rc != 0)
        return rc; /* still dirty: the next change or heartbeat writes it */
    g->meta_dirty = false;
    g->meta_written = !tombstone;
    g->meta_partition = partition;
    g->meta_need = need;
    return 0;
}
