/*
 * group_commit.c - the offset ops of the group coordinator: commit_offsets,
 * fetch_offsets, delete_group and reset_offsets (protocol.md 6.14, 6.15,
 * 6.18, 6.19). Storage - the __consumer_offsets records, the in-memory
 * tables, waiting for durability - is group_offsets.c.
 *
 * Each op checks the whole request first (types, group name, member and
 * generation), so a malformed or refused request changes nothing; then it
 * decides per partition (or per group), writes one batch of records for
 * everything accepted, and parks the request until that batch is durable
 * (stream__pending_park). The response is encoded from the op's state in
 * the completion, after the frame it came from is gone: everything it needs
 * is copied into that state.
 */
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"
#include "stream/error.h"

/* Reads element i of an array as an int32 (partition lists). */
static int elem_int32(const msgpack_object *arr, uint32_t i, const char *name, int32_t *out,
                      char *msg, size_t msg_len)
{
    const msgpack_object *o = &arr->via.array.ptr[i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX) {
        *out = (int32_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN) {
        *out = (int32_t)o->via.i64;
        return 0;
    }
    snprintf(msg, msg_len, "%s[%u] must be an int32", name, i);
    return STREAM_EBADREQ;
}

/* ======================================================================== */
/* commit_offsets                                                            */
/* ======================================================================== */

typedef struct commit_entry {
    int32_t partition;
    int err;
    char msg[320];
} commit_entry;

typedef struct commit_topic {
    char *name;          /* as sent (copied) */
    size_t first, count; /* its entries */
} commit_topic;

typedef struct commit_state {
    stream__pending p; /* first: pending_done casts */
    int32_t partition;
    int64_t need;
    int write_err;
    char write_msg[240];
    commit_topic *topics;
    size_t ntopics;
    commit_entry *entries;
    size_t nentries;
} commit_state;

static void commit_destroy(stream__pending *p)
{
    commit_state *s = (commit_state *)p;
    for (size_t i = 0; i < s->ntopics; i++)
        free(s->topics[i].name);
    free(s->topics);
    free(s->entries);
    stream__pending_release(p);
    free(s);
}

static void commit_encode(stream__coord *co, stream__req *r, stream__pending *p)
{
    commit_state *s = (commit_state *)p;
    char dmsg[240];
    int derr = s->write_err;
    if (derr == 0)
        derr = stream__offsets_durable_err(co, s->partition, s->need, dmsg, sizeof(dmsg));
    else
        snprintf(dmsg, sizeof(dmsg), "%s", s->write_msg);
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, p->id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, s->ntopics);
    for (size_t i = 0; i < s->ntopics; i++) {
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_cstr(&f.pk, "name", s->topics[i].name);
        stream_pack_key(&f.pk, "partitions");
        msgpack_pack_array(&f.pk, s->topics[i].count);
        for (size_t j = s->topics[i].first; j < s->topics[i].first + s->topics[i].count; j++) {
            commit_entry *e = &s->entries[j];
            int err = e->err ? e->err : derr;
            msgpack_pack_map(&f.pk, 1 + stream_err_fields(err));
            stream_pack_kv_int(&f.pk, "partition", e->partition);
            stream_pack_err(&f.pk, err, e->err ? e->msg : dmsg);
        }
    }
    stream__host_reply_finish(r, &f, p->id);
}

/* Checks the shape of a commit's `topics`; counts partition entries. */
static int commit_scan(const msgpack_object *topics, size_t *n, char *msg, size_t msg_len)
{
    *n = 0;
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *t, *parts;
        const char *p;
        size_t len;
        int rc = stream_elem_map(topics, i, "topics", &t, msg, msg_len);
        if (rc == 0)
            rc = stream_field_str(t, "name", &p, &len, msg, msg_len);
        if (rc == 0)
            rc = stream_field_array(t, "partitions", &parts, msg, msg_len);
        for (uint32_t j = 0; rc == 0 && j < parts->via.array.size; j++) {
            const msgpack_object *pm;
            int64_t v;
            rc = stream_elem_map(parts, j, "partitions", &pm, msg, msg_len);
            if (rc == 0)
                rc = stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &v, msg, msg_len);
            if (rc == 0)
                rc = stream_field_int(pm, "offset", INT64_MIN, INT64_MAX, &v, msg, msg_len);
            if (rc == 0)
                rc = stream_field_str_opt(pm, "metadata", &p, &len, msg, msg_len);
        }
        if (rc != 0)
            return rc;
        *n += parts->via.array.size;
    }
    return 0;
}

/* Decides one partition of a commit: 0 (accepted) or its error. */
static int commit_check(stream__coord *co, const stream__member *m, const char *topic, bool valid,
                        int32_t partition, int64_t offset, size_t md_len, char *msg, size_t msg_len)
{
    if (offset < 0) {
        snprintf(msg, msg_len, "offset %lld is negative", (long long)offset);
        return STREAM_EINVAL;
    }
    if (md_len > STREAM_GROUP_METADATA_MAX) {
        snprintf(msg, msg_len, "metadata is %zu bytes (at most %d)", md_len,
                 STREAM_GROUP_METADATA_MAX);
        return STREAM_EINVAL;
    }
    if (m != NULL) {
        if (!valid || !stream__pset_has(&m->held, topic, partition)) {
            snprintf(msg, msg_len, "partition %.200s-%d is not assigned to this member", topic,
                     (int)partition);
            return STREAM_ENOTASSIGNED;
        }
        return 0;
    }
    stream_topic *t = valid ? stream_store_topic(stream__host_store(co->broker), topic) : NULL;
    if (t == NULL) {
        snprintf(msg, msg_len, "unknown topic '%.200s'", topic);
        return STREAM_ENOTOPIC;
    }
    if (partition < 0 || partition >= t->partition_count) {
        snprintf(msg, msg_len, "topic '%s' has no partition %d (it has %d)", t->name,
                 (int)partition, (int)t->partition_count);
        return STREAM_ENOPART;
    }
    return 0;
}

/* Request-level checks of a commit: the member and its generation, or a
 * standalone commit on a group without members. */
static int commit_who(stream__group *g, const char *group, const char *mid, size_t mid_len,
                      int64_t gen, stream__member **out, char *msg, size_t msg_len)
{
    *out = NULL;
    if (mid_len == 0) {
        if (gen != -1) {
            snprintf(msg, msg_len, "a commit without member_id must have generation -1");
            return STREAM_EBADREQ;
        }
        if (g && g->nmembers > 0) {
            snprintf(msg, msg_len,
                     "group '%s' has %zu members: only they may commit (a standalone commit "
                     "needs an empty group)",
                     group, g->nmembers);
            return STREAM_EGROUPNOTEMPTY;
        }
        if (g && stream__classic_active(g->classic)) {
            snprintf(msg, msg_len,
                     "group '%s' has members (Kafka clients): only they may commit (a "
                     "standalone commit needs an empty group)",
                     group);
            return STREAM_EGROUPNOTEMPTY;
        }
        return 0;
    }
    stream__member *m = stream__member_find(g, mid, mid_len, NULL);
    if (m == NULL) {
        snprintf(msg, msg_len,
                 "member '%.*s' is not in group '%s' (its session timed out, or it left): "
                 "join again with an empty member_id",
                 (int)(mid_len > 140 ? 140 : mid_len), mid, group);
        return STREAM_EUNKNOWNMEMBER;
    }
    if (gen != m->epoch && gen != m->prev_epoch) {
        snprintf(msg, msg_len,
                 "generation %lld is stale: the member's generation is %d; heartbeat and commit "
                 "again",
                 (long long)gen, (int)m->epoch);
        return STREAM_EFENCED;
    }
    *out = m;
    return 0;
}

void stream__op_commit_offsets(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream__coord *co = svc;
    char msg[512], group[STREAM_GROUP_NAME_MAX + 1];
    const char *mid = NULL;
    size_t mid_len = 0, n;
    int64_t gen;
    const msgpack_object *topics;
    int rc = stream_field_str_opt(m, "member_id", &mid, &mid_len, msg, sizeof(msg));
    if (rc == 0)
        rc =
            stream_field_int_opt(m, "generation", INT32_MIN, INT32_MAX, -1, &gen, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = commit_scan(topics, &n, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__group_field(m, group, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, group, msg, sizeof(msg));
    stream__member *member = NULL;
    if (rc == 0)
        rc = commit_who(stream__group_find(co, group), group, mid, mid_len, gen, &member, msg,
                        sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    commit_state *s = calloc(1, sizeof(*s));
    stream__offset_rec *recs = NULL;
    if (s) {
        s->ntopics = topics->via.array.size;
        s->topics = calloc(s->ntopics ? s->ntopics : 1, sizeof(*s->topics));
        s->entries = calloc(n ? n : 1, sizeof(*s->entries));
        recs = calloc(n ? n : 1, sizeof(*recs));
    }
    if (s == NULL || s->topics == NULL || s->entries == NULL || recs == NULL) {
        free(recs);
        if (s) {
            s->ntopics = 0;
            commit_destroy(&s->p);
        }
        stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
        return;
    }
    s->p.id = id;
    s->p.encode = commit_encode;
    s->p.destroy = commit_destroy;
    size_t k = 0, nrecs = 0;
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *t, *parts;
        const char *p;
        size_t len;
        stream_elem_map(topics, i, "topics", &t, NULL, 0);
        stream_field_str(t, "name", &p, &len, NULL, 0);
        stream_field_array(t, "partitions", &parts, NULL, 0);
        commit_topic *ct = &s->topics[i];
        ct->name = stream__strndup(p, len);
        ct->first = k;
        ct->count = parts->via.array.size;
        bool valid = ct->name && stream_topic_name_check(p, len, NULL, 0) == 0;
        for (uint32_t j = 0; j < parts->via.array.size; j++, k++) {
            const msgpack_object *pm;
            int64_t partition, offset;
            const char *md = NULL;
            size_t md_len = 0;
            stream_elem_map(parts, j, "partitions", &pm, NULL, 0);
            stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &partition, NULL, 0);
            stream_field_int(pm, "offset", INT64_MIN, INT64_MAX, &offset, NULL, 0);
            stream_field_str_opt(pm, "metadata", &md, &md_len, NULL, 0);
            commit_entry *e = &s->entries[k];
            e->partition = (int32_t)partition;
            e->err = ct->name ? commit_check(co, member, ct->name, valid, e->partition, offset,
                                             md_len, e->msg, sizeof(e->msg))
                              : STREAM_ENOMEM;
            if (e->err == 0)
                recs[nrecs++] = (stream__offset_rec){.topic = ct->name,
                                                     .partition = e->partition,
                                                     .offset = offset,
                                                     .metadata = md,
                                                     .metadata_len = md_len};
        }
    }
    s->write_msg[0] = '\0';
    if (nrecs > 0)
        s->write_err = stream__offsets_write(co, group, recs, nrecs, &s->partition, &s->need,
                                             s->write_msg, sizeof(s->write_msg));
    free(recs);
    if (s->write_err == 0)
        stream__pending_add(co, &s->p, s->partition, s->need); /* ENOMEM: flushed instead */
    stream__pending_park(co, r, &s->p);
}

/* ======================================================================== */
/* fetch_offsets                                                             */
/* ======================================================================== */

static void pack_offset_entry(msgpack_packer *pk, int32_t partition, const stream__offset *o)
{
    msgpack_pack_map(pk, 5);
    stream_pack_kv_int(pk, "partition", partition);
    stream_pack_kv_int(pk, "err", 0);
    stream_pack_kv_int(pk, "offset", o ? o->offset : -1);
    stream_pack_kv_cstr(pk, "metadata", o ? o->metadata : "");
    stream_pack_kv_int(pk, "commit_timestamp", o ? o->commit_ms : -1);
}

/* Offsets entries of g for topic `name`, from index i: how many in a row. */
static size_t run_of_topic(const stream__group *g, size_t i)
{
    size_t j = i;
    while (j < g->noffsets && strcmp(g->offsets[j].topic, g->offsets[i].topic) == 0)
        j++;
    return j - i;
}

static int fetch_scan(const msgpack_object *topics, char *msg, size_t msg_len)
{
    for (uint32_t i = 0; topics && i < topics->via.array.size; i++) {
        const msgpack_object *t, *parts;
        const char *p;
        size_t len;
        int32_t v;
        int rc = stream_elem_map(topics, i, "topics", &t, msg, msg_len);
        if (rc == 0)
            rc = stream_field_str(t, "name", &p, &len, msg, msg_len);
        if (rc == 0)
            rc = stream_field_array_opt(t, "partitions", &parts, msg, msg_len);
        for (uint32_t j = 0; rc == 0 && parts && j < parts->via.array.size; j++)
            rc = elem_int32(parts, j, "partitions", &v, msg, msg_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void stream__op_fetch_offsets(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream__coord *co = svc;
    char msg[512], group[STREAM_GROUP_NAME_MAX + 1];
    const msgpack_object *topics;
    int rc = stream_field_array_opt(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = fetch_scan(topics, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__group_field(m, group, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, group, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    const stream__group *g = stream__group_find(co, group);
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    if (topics == NULL) {
        size_t nt = 0;
        for (size_t i = 0; g && i < g->noffsets; i += run_of_topic(g, i))
            nt++;
        msgpack_pack_array(&f.pk, nt);
        for (size_t i = 0; g && i < g->noffsets;) {
            size_t run = run_of_topic(g, i);
            msgpack_pack_map(&f.pk, 2);
            stream_pack_kv_cstr(&f.pk, "name", g->offsets[i].topic);
            stream_pack_key(&f.pk, "partitions");
            msgpack_pack_array(&f.pk, run);
            for (size_t j = i; j < i + run; j++)
                pack_offset_entry(&f.pk, g->offsets[j].partition, &g->offsets[j]);
            i += run;
        }
        stream__host_reply_finish(r, &f, id);
        return;
    }
    msgpack_pack_array(&f.pk, topics->via.array.size);
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *t, *parts;
        const char *p;
        size_t len;
        char name[STREAM_TOPIC_NAME_MAX + 1] = "";
        stream_elem_map(topics, i, "topics", &t, NULL, 0);
        stream_field_str(t, "name", &p, &len, NULL, 0);
        stream_field_array_opt(t, "partitions", &parts, NULL, 0);
        bool valid = stream_topic_name_check(p, len, NULL, 0) == 0;
        if (valid) {
            memcpy(name, p, len);
            name[len] = '\0';
        }
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_str(&f.pk, "name", p, len);
        stream_pack_key(&f.pk, "partitions");
        if (parts != NULL) {
            msgpack_pack_array(&f.pk, parts->via.array.size);
            for (uint32_t j = 0; j < parts->via.array.size; j++) {
                int32_t pn = 0;
                elem_int32(parts, j, "partitions", &pn, NULL, 0);
                pack_offset_entry(&f.pk, pn, valid && g ? stream__offset_find(g, name, pn) : NULL);
            }
            continue;
        }
        stream_topic *st = valid ? stream_store_topic(stream__host_store(co->broker), name) : NULL;
        if (st != NULL) {
            msgpack_pack_array(&f.pk, (size_t)st->partition_count);
            for (int32_t pn = 0; pn < st->partition_count; pn++)
                pack_offset_entry(&f.pk, pn, g ? stream__offset_find(g, name, pn) : NULL);
            continue;
        }
        /* No such topic: whatever offsets the group still has for it. */
        size_t from = 0, run = 0;
        if (valid && g) {
            from = stream__offset_lower_bound(g, name);
            while (from + run < g->noffsets && strcmp(g->offsets[from + run].topic, name) == 0)
                run++;
        }
        msgpack_pack_array(&f.pk, run);
        for (size_t j = from; j < from + run; j++)
            pack_offset_entry(&f.pk, g->offsets[j].partition, &g->offsets[j]);
    }
    stream__host_reply_finish(r, &f, id);
}

/* ======================================================================== */
/* delete_group                                                              */
/* ======================================================================== */

typedef struct delete_entry {
    char *group; /* as sent */
    int err;
    char msg[400];
    int32_t partition; /* of the tombstones' write */
    int64_t need;
} delete_entry;

typedef struct delete_state {
    stream__pending p; /* first */
    delete_entry *e;
    size_t n;
} delete_state;

static void delete_destroy(stream__pending *p)
{
    delete_state *s = (delete_state *)p;
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].group);
    free(s->e);
    stream__pending_release(p);
    free(s);
}

static void delete_encode(stream__coord *co, stream__req *r, stream__pending *p)
{
    delete_state *s = (delete_state *)p;
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, p->id, 0, NULL, 1);
    stream_pack_key(&f.pk, "groups");
    msgpack_pack_array(&f.pk, s->n);
    for (size_t i = 0; i < s->n; i++) {
        delete_entry *e = &s->e[i];
        if (e->err == 0)
            e->err = stream__offsets_durable_err(co, e->partition, e->need, e->msg, sizeof(e->msg));
        msgpack_pack_map(&f.pk, 1 + stream_err_fields(e->err));
        stream_pack_kv_cstr(&f.pk, "group", e->group ? e->group : "");
        stream_pack_err(&f.pk, e->err, e->msg);
    }
    stream__host_reply_finish(r, &f, p->id);
}

int stream__group_delete(stream__coord *co, const char *name, int32_t *partition, int64_t *need,
                         char *msg, size_t msg_len)
{
    *need = 0;
    stream__group *g = stream__group_find(co, name);
    if (g == NULL) {
        snprintf(msg, msg_len, "group '%s' does not exist", name);
        return STREAM_ENOGROUP;
    }
    if (g->nmembers > 0) {
        snprintf(msg, msg_len, "group '%s' has %zu members: stop them first", name, g->nmembers);
        return STREAM_EGROUPNOTEMPTY;
    }
    if (stream__classic_active(g->classic)) {
        snprintf(msg, msg_len, "group '%s' has members (Kafka clients): stop them first", name);
        return STREAM_EGROUPNOTEMPTY;
    }
    size_t n = g->noffsets;
    stream__offset_rec *recs = calloc(n + 1, sizeof(*recs));
    if (recs == NULL)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n; i++)
        recs[i] = (stream__offset_rec){
            .topic = g->offsets[i].topic, .partition = g->offsets[i].partition, .tombstone = true};
    /* Its membership record (an empty one: it has had members) goes too,
     * first, so that no replay brings the group back. */
    size_t nrecs = n;
    if (g->meta_written) {
        memmove(&recs[1], &recs[0], n * sizeof(*recs));
        recs[0] = (stream__offset_rec){.membership = true, .tombstone = true};
        nrecs++;
    }
    int rc = 0;
    if (nrecs > 0) {
        /* The recs borrow the group's topic strings: copy them first, the
         * apply frees the group. */
        char **topics = calloc(nrecs, sizeof(*topics));
        for (size_t i = 0; topics && i < nrecs; i++)
            if (recs[i].membership)
                continue;
            else if ((topics[i] = strdup(recs[i].topic)) != NULL)
                recs[i].topic = topics[i];
            else
                rc = STREAM_ENOMEM;
        if (topics == NULL)
            rc = STREAM_ENOMEM;
        if (rc == 0)
            rc = stream__offsets_write(co, name, recs, nrecs, partition, need, msg, msg_len);
        for (size_t i = 0; topics && i < nrecs; i++)
            free(topics[i]);
        free(topics);
        if (rc == 0) {
            /* Offsets' tombstones freed it; a membership one alone does not. */
            g = stream__group_find(co, name);
            if (g != NULL)
                g->meta_written = false;
            stream__group_gc(co, g);
        }
    } else {
        stream__group_gc(co, g);
    }
    free(recs);
    if (rc == 0)
        stream__host_log(co->broker, STREAM_BROKER_INFO,
                         "group %s: deleted (%zu committed offsets)", name, n);
    return rc;
}

/* Deletes one group of a delete_group request (name as sent). */
static int delete_one(stream__coord *co, const char *p, size_t len, delete_entry *e)
{
    char name[STREAM_GROUP_NAME_MAX + 1];
    int rc = stream_group_name_check(p, len, e->msg, sizeof(e->msg));
    if (rc != 0)
        return rc;
    memcpy(name, p, len);
    name[len] = '\0';
    return stream__group_delete(co, name, &e->partition, &e->need, e->msg, sizeof(e->msg));
}

void stream__op_delete_group(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream__coord *co = svc;
    char msg[512];
    const msgpack_object *groups;
    int rc = stream_field_array(m, "groups", &groups, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && i < groups->via.array.size; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(groups, i, "groups", &p, &len, msg, sizeof(msg));
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    delete_state *s = calloc(1, sizeof(*s));
    if (s)
        s->e = calloc(groups->via.array.size ? groups->via.array.size : 1, sizeof(*s->e));
    if (s == NULL || s->e == NULL) {
        free(s);
        stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
        return;
    }
    s->n = groups->via.array.size;
    s->p.id = id;
    s->p.encode = delete_encode;
    s->p.destroy = delete_destroy;
    for (uint32_t i = 0; i < groups->via.array.size; i++) {
        const char *p;
        size_t len;
        stream_elem_str(groups, i, "groups", &p, &len, NULL, 0);
        delete_entry *e = &s->e[i];
        e->group = stream__strndup(p, len);
        e->err = e->group ? stream__coord_gate(co, e->group, e->msg, sizeof(e->msg)) : 0;
        if (e->err == 0)
            e->err = delete_one(co, p, len, e);
        if (e->err == 0)
            stream__pending_add(co, &s->p, e->partition, e->need); /* ENOMEM: flushed */
    }
    stream__pending_park(co, r, &s->p);
}

/* ======================================================================== */
/* reset_offsets                                                             */
/* ======================================================================== */

typedef enum reset_to { TO_EARLIEST, TO_LATEST, TO_OFFSET, TO_TIMESTAMP, TO_SHIFT } reset_to;

typedef struct reset_state {
    stream__pending p;  /* first */
    stream__pset parts; /* the plan's partitions, in order */
    int64_t *current;   /* per partition of parts, in iteration order */
    int64_t *next;
    bool executed;
    int write_err;
    char write_msg[240];
    int32_t partition;
    int64_t need;
} reset_state;

static void reset_destroy(stream__pending *p)
{
    reset_state *s = (reset_state *)p;
    stream__pset_release(&s->parts);
    free(s->current);
    free(s->next);
    stream__pending_release(p);
    free(s);
}

static void reset_encode(stream__coord *co, stream__req *r, stream__pending *p)
{
    reset_state *s = (reset_state *)p;
    char msg[240];
    int err = s->write_err;
    if (err == 0 && s->executed)
        err = stream__offsets_durable_err(co, s->partition, s->need, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "%s", s->write_msg);
    if (err != 0) {
        stream__host_reply_error(r, p->id, err, msg);
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, p->id, 0, NULL, 2);
    stream_pack_kv_bool(&f.pk, "executed", s->executed);
    stream_pack_key(&f.pk, "offsets");
    msgpack_pack_array(&f.pk, s->parts.count);
    size_t k = 0;
    for (size_t i = 0; i < s->parts.n; i++) {
        for (size_t j = 0; j < s->parts.t[i].n; j++, k++) {
            msgpack_pack_map(&f.pk, 4);
            stream_pack_kv_cstr(&f.pk, "topic", s->parts.t[i].topic);
            stream_pack_kv_int(&f.pk, "partition", s->parts.t[i].parts[j]);
            stream_pack_kv_int(&f.pk, "current", s->current[k]);
            stream_pack_kv_int(&f.pk, "new", s->next[k]);
        }
    }
    stream__host_reply_finish(r, &f, p->id);
}

static int parse_to(const msgpack_object *m, reset_to *to, char *msg, size_t msg_len)
{
    static const char *const names[] = {"earliest", "latest", "offset", "timestamp", "shift"};
    const char *p;
    size_t len;
    int rc = stream_field_str(m, "to", &p, &len, msg, msg_len);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (stream_str_eq(p, len, names[i])) {
            *to = (reset_to)i;
            return 0;
        }
    }
    snprintf(msg, msg_len,
             "field 'to' must be earliest, latest, offset, timestamp or shift, got '%.32s'", p);
    return STREAM_EBADREQ;
}

/* Fills parts with the partitions the reset covers. Request-level errors:
 * ENOTOPIC, ENOPART (with msg). */
static int reset_parts(stream__coord *co, const stream__group *g, const msgpack_object *topics,
                       stream__pset *parts, char *msg, size_t msg_len)
{
    int rc = 0;
    if (topics == NULL) {
        for (size_t i = 0; rc == 0 && g && i < g->noffsets; i += run_of_topic(g, i)) {
            stream_topic *t =
                stream_store_topic(stream__host_store(co->broker), g->offsets[i].topic);
            for (int32_t p = 0; rc == 0 && t && p < t->partition_count; p++)
                rc = stream__pset_add(parts, t->name, p);
        }
        return rc;
    }
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++) {
        const msgpack_object *e, *pl;
        const char *p;
        size_t len;
        char name[STREAM_TOPIC_NAME_MAX + 1];
        stream_elem_map(topics, i, "topics", &e, NULL, 0);
        stream_field_str(e, "name", &p, &len, NULL, 0);
        stream_field_array_opt(e, "partitions", &pl, NULL, 0);
        stream_topic *t = NULL;
        if (stream_topic_name_check(p, len, NULL, 0) == 0) {
            memcpy(name, p, len);
            name[len] = '\0';
            t = stream_store_topic(stream__host_store(co->broker), name);
        }
        if (t == NULL) {
            snprintf(msg, msg_len, "unknown topic '%.*s'", (int)(len > 200 ? 200 : len), p);
            return STREAM_ENOTOPIC;
        }
        if (pl == NULL) {
            for (int32_t pn = 0; rc == 0 && pn < t->partition_count; pn++)
                rc = stream__pset_add(parts, t->name, pn);
            continue;
        }
        for (uint32_t j = 0; rc == 0 && j < pl->via.array.size; j++) {
            int32_t pn = 0;
            elem_int32(pl, j, "partitions", &pn, NULL, 0);
            if (pn < 0 || pn >= t->partition_count) {
                snprintf(msg, msg_len, "topic '%s' has no partition %d (it has %d)", t->name,
                         (int)pn, (int)t->partition_count);
                return STREAM_ENOPART;
            }
            rc = stream__pset_add(parts, t->name, pn);
        }
    }
    return rc;
}

/* The new offset of one partition, clamped to the log. */
static int reset_one(stream__coord *co, const char *topic, int32_t p, reset_to to, int64_t value,
                     int64_t current, int64_t *out, char *msg, size_t msg_len)
{
    stream_log *log;
    if (stream_store_log(stream__host_store(co->broker), topic, p, &log) != 0) {
        snprintf(msg, msg_len, "unknown partition %s-%d", topic, (int)p);
        return STREAM_ENOPART;
    }
    int64_t start = stream_log_start_offset(log), end = stream_log_end_offset(log), v = 0;
    switch (to) {
    case TO_EARLIEST:
        v = start;
        break;
    case TO_LATEST:
        v = end;
        break;
    case TO_OFFSET:
        v = value;
        break;
    case TO_TIMESTAMP: {
        int rc = value < 0 ? STREAM_EINVAL : stream_log_offset_for_time(log, value, &v);
        if (rc != 0) {
            snprintf(msg, msg_len, "%s-%d: cannot find offset for timestamp %lld: %s", topic,
                     (int)p, (long long)value, stream_strerror(rc));
            return rc;
        }
        break;
    }
    case TO_SHIFT:
        if (current < 0) {
            snprintf(msg, msg_len, "%s-%d has no committed offset to shift from", topic, (int)p);
            return STREAM_EINVAL;
        }
        /* Saturating: the clamp below brings it into the log anyway. */
        if (value > 0 && current > INT64_MAX - value)
            v = INT64_MAX;
        else if (value < 0 && current < INT64_MIN - value)
            v = INT64_MIN;
        else
            v = current + value;
        break;
    }
    *out = v < start ? start : v > end ? end : v;
    return 0;
}

void stream__op_reset_offsets(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream__coord *co = svc;
    char msg[512], group[STREAM_GROUP_NAME_MAX + 1];
    const msgpack_object *topics;
    reset_to to = TO_EARLIEST;
    int64_t value = 0;
    bool execute = false;
    int rc = stream_field_array_opt(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = fetch_scan(topics, msg, sizeof(msg)); /* same shape as fetch_offsets */
    if (rc == 0)
        rc = parse_to(m, &to, msg, sizeof(msg));
    if (rc == 0 && (to == TO_OFFSET || to == TO_TIMESTAMP || to == TO_SHIFT))
        rc = stream_field_int(m, "value", INT64_MIN, INT64_MAX, &value, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "execute", false, &execute, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__group_field(m, group, msg, sizeof(msg));
    if (rc == 0)
        rc = stream__coord_gate(co, group, msg, sizeof(msg));
    const stream__group *g = rc == 0 ? stream__group_find(co, group) : NULL;
    if (rc == 0 && execute && g && g->nmembers > 0) {
        snprintf(msg, sizeof(msg),
                 "group '%s' has %zu members: stop them before resetting its offsets", group,
                 g->nmembers);
        rc = STREAM_EGROUPNOTEMPTY;
    }
    if (rc == 0 && execute && g && stream__classic_active(g->classic)) {
        snprintf(msg, sizeof(msg),
                 "group '%s' has members (Kafka clients): stop them before resetting its offsets",
                 group);
        rc = STREAM_EGROUPNOTEMPTY;
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    reset_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
        return;
    }
    s->p.id = id;
    s->p.encode = reset_encode;
    s->p.destroy = reset_destroy;
    stream__pset_init(&s->parts);
    msg[0] = '\0';
    rc = reset_parts(co, g, topics, &s->parts, msg, sizeof(msg));
    size_t n = s->parts.count;
    if (rc == 0) {
        s->current = calloc(n ? n : 1, sizeof(*s->current));
        s->next = calloc(n ? n : 1, sizeof(*s->next));
        if (s->current == NULL || s->next == NULL)
            rc = STREAM_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < s->parts.n; i++) {
        for (size_t j = 0; rc == 0 && j < s->parts.t[i].n; j++, k++) {
            const char *topic = s->parts.t[i].topic;
            int32_t pn = s->parts.t[i].parts[j];
            const stream__offset *o = g ? stream__offset_find(g, topic, pn) : NULL;
            s->current[k] = o ? o->offset : -1;
            rc = reset_one(co, topic, pn, to, value, s->current[k], &s->next[k], msg, sizeof(msg));
        }
    }
    if (rc != 0) {
        reset_destroy(&s->p);
        stream__host_reply_error(r, id, rc, msg[0] ? msg : NULL);
        return;
    }
    if (execute && n > 0) {
        stream__offset_rec *recs = calloc(n, sizeof(*recs));
        if (recs == NULL) {
            reset_destroy(&s->p);
            stream__host_reply_error(r, id, STREAM_ENOMEM, NULL);
            return;
        }
        k = 0;
        for (size_t i = 0; i < s->parts.n; i++)
            for (size_t j = 0; j < s->parts.t[i].n; j++, k++)
                recs[k] = (stream__offset_rec){.topic = s->parts.t[i].topic,
                                               .partition = s->parts.t[i].parts[j],
                                               .offset = s->next[k]};
        s->write_err = stream__offsets_write(co, group, recs, n, &s->partition, &s->need,
                                             s->write_msg, sizeof(s->write_msg));
        free(recs);
        if (s->write_err == 0) {
            stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: reset %zu offsets", group,
                             n);
            stream__pending_add(co, &s->p, s->partition, s->need); /* ENOMEM: flushed */
        }
    }
    s->executed = execute;
    stream__pending_park(co, r, &s->p);
}
