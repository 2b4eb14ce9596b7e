/*
 * kafka_codec_groups.c - decoding the consumer-group APIs' requests
 * (kafka_codec_groups.h), with kafka_codec.c's readers (kafka_codec.h).
 *
 * As there, every read is bounds-checked and latches its first failure, and
 * every array's count is checked against the bytes left before anything is
 * allocated for it (each element takes at least one byte), so a hostile
 * count costs nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_codec_groups.h"
#include "stream/error.h"

static const int16_t group_keys[] = {
    STREAM__KAFKA_OFFSET_COMMIT,   STREAM__KAFKA_OFFSET_FETCH, STREAM__KAFKA_JOIN_GROUP,
    STREAM__KAFKA_HEARTBEAT,       STREAM__KAFKA_LEAVE_GROUP,  STREAM__KAFKA_SYNC_GROUP,
    STREAM__KAFKA_DESCRIBE_GROUPS, STREAM__KAFKA_LIST_GROUPS,  STREAM__KAFKA_DELETE_GROUPS,
};

bool stream__kafka_group_api(int16_t key)
{
    for (size_t i = 0; i < sizeof(group_keys) / sizeof(group_keys[0]); i++)
        if (group_keys[i] == key)
            return true;
    return false;
}

static void get_str(stream_reader *rd, bool fl, stream__kafka_str *s)
{
    stream__kafka_get_string(rd, fl, &s->s, &s->len);
}

static void get_nonnull(stream_reader *rd, bool fl, stream__kafka_str *s)
{
    stream__kafka_get_name(rd, fl, &s->s, &s->len);
}

/* [name, bytes] pairs: JoinGroup's protocols, SyncGroup's assignments. */
static int get_blobs(stream_reader *rd, stream__kafka_group_request *req)
{
    bool fl = req->hdr.flexible;
    size_t n = stream__kafka_get_n(rd, fl), cap = 0;
    if (n > 0 && stream__kafka_grow((void **)&req->blobs, &cap, 0, n, sizeof(*req->blobs)) != 0)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n && rd->err == 0; i++) {
        stream__kafka_blob *b = &req->blobs[req->nblobs++];
        get_nonnull(rd, fl, &b->name);
        stream__kafka_get_bytes(rd, fl, &b->bytes, &b->len);
        if (b->bytes == NULL && rd->err == 0)
            b->bytes = (const uint8_t *)""; /* null metadata reads as empty */
        stream__kafka_skip_tags(rd, fl);
    }
    return 0;
}

/* An array of strings (groups, states) into entries. */
static int get_names(stream_reader *rd, stream__kafka_group_request *req)
{
    bool fl = req->hdr.flexible;
    size_t n = stream__kafka_get_n(rd, fl), cap = 0;
    if (n > 0 && stream__kafka_grow((void **)&req->entries, &cap, 0, n, sizeof(*req->entries)) != 0)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n && rd->err == 0; i++) {
        stream__kafka_gentry *e = &req->entries[req->nentries++];
        memset(e, 0, sizeof(*e));
        get_nonnull(rd, fl, &e->name);
    }
    return 0;
}

/* topics [name, partitions [...]] of OffsetCommit (commit) or OffsetFetch
 * (partition indexes only); null (OffsetFetch v2+) sets *all. */
static int get_offset_topics(stream_reader *rd, stream__kafka_group_request *req, bool commit,
                             size_t *tcap, size_t *ocap, bool *all)
{
    int v = req->hdr.api_version;
    bool fl = req->hdr.flexible;
    int64_t nt = stream__kafka_get_count(rd, fl);
    *all = nt < 0;
    if (nt < 0 && (commit || v < 2))
        stream__kafka_fail(rd);
    for (int64_t i = 0; i < nt && rd->err == 0; i++) {
        if (stream__kafka_grow((void **)&req->topics, tcap, req->ntopics, 1,
                               sizeof(*req->topics)) != 0)
            return STREAM_ENOMEM;
        stream__kafka_topic *t = &req->topics[req->ntopics];
        memset(t, 0, sizeof(*t));
        stream__kafka_get_name(rd, fl, &t->name, &t->name_len);
        size_t np = stream__kafka_get_n(rd, fl);
        if (rd->err != 0)
            break;
        if (stream__kafka_grow((void **)&req->offsets, ocap, req->noffsets, np,
                               sizeof(*req->offsets)) != 0)
            return STREAM_ENOMEM;
        t->first = req->noffsets;
        t->count = np;
        req->ntopics++;
        for (size_t j = 0; j < np && rd->err == 0; j++) {
            stream__kafka_goffset *o = &req->offsets[req->noffsets++];
            memset(o, 0, sizeof(*o));
            o->offset = -1;
            o->leader_epoch = -1;
            o->partition = stream__kafka_get_i32(rd);
            if (!commit)
                continue; /* OffsetFetch: an int32 each, no tags */
            o->offset = stream__kafka_get_i64(rd);
            if (v >= 6)
                o->leader_epoch = stream__kafka_get_i32(rd);
            if (v == 1)
                (void)stream__kafka_get_i64(rd); /* commit_timestamp */
            get_str(rd, fl, &o->metadata);
            stream__kafka_skip_tags(rd, fl);
        }
        stream__kafka_skip_tags(rd, fl);
    }
    return 0;
}

static int get_offset_fetch(stream_reader *rd, stream__kafka_group_request *req)
{
    int v = req->hdr.api_version;
    bool fl = req->hdr.flexible;
    size_t tcap = 0, ocap = 0, ecap = 0;
    size_t ngroups = 1;
    if (v >= 8)
        ngroups = stream__kafka_get_n(rd, fl);
    if (ngroups > 0 &&
        stream__kafka_grow((void **)&req->entries, &ecap, 0, ngroups, sizeof(*req->entries)) != 0)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < ngroups && rd->err == 0; i++) {
        stream__kafka_gentry *e = &req->entries[req->nentries++];
        memset(e, 0, sizeof(*e));
        get_nonnull(rd, fl, &e->name);
        e->first = req->ntopics;
        int rc = get_offset_topics(rd, req, false, &tcap, &ocap, &e->all_topics);
        if (rc != 0)
            return rc;
        e->count = req->ntopics - e->first;
        if (v >= 8)
            stream__kafka_skip_tags(rd, fl);
    }
    if (v < 8 && req->nentries == 1)
        req->group = req->entries[0].name;
    if (v >= 7)
        (void)stream__kafka_get_i8(rd); /* require_stable: commits are durable when answered */
    return 0;
}

static int get_body(stream_reader *rd, void *arg)
{
    stream__kafka_group_request *req = arg;
    int v = req->hdr.api_version;
    bool fl = req->hdr.flexible;
    int rc = 0;
    size_t tcap = 0, ocap = 0, ecap = 0;
    bool all;
    req->generation = -1;
    switch (req->hdr.api_key) {
    case STREAM__KAFKA_JOIN_GROUP:
        get_nonnull(rd, fl, &req->group);
        req->session_timeout_ms = stream__kafka_get_i32(rd);
        req->rebalance_timeout_ms = v >= 1 ? stream__kafka_get_i32(rd) : req->session_timeout_ms;
        get_nonnull(rd, fl, &req->member_id);
        if (v >= 5)
            get_str(rd, fl, &req->instance_id);
        get_nonnull(rd, fl, &req->protocol_type);
        rc = get_blobs(rd, req);
        if (v >= 8) {
            stream__kafka_str reason;
            get_str(rd, fl, &reason);
        }
        break;
    case STREAM__KAFKA_SYNC_GROUP:
        get_nonnull(rd, fl, &req->group);
        req->generation = stream__kafka_get_i32(rd);
        get_nonnull(rd, fl, &req->member_id);
        if (v >= 3)
            get_str(rd, fl, &req->instance_id);
        if (v >= 5) {
            get_str(rd, fl, &req->protocol_type);
            get_str(rd, fl, &req->protocol_name);
        }
        rc = get_blobs(rd, req);
        break;
    case STREAM__KAFKA_HEARTBEAT:
        get_nonnull(rd, fl, &req->group);
        req->generation = stream__kafka_get_i32(rd);
        get_nonnull(rd, fl, &req->member_id);
        if (v >= 3)
            get_str(rd, fl, &req->instance_id);
        break;
    case STREAM__KAFKA_LEAVE_GROUP:
        get_nonnull(rd, fl, &req->group);
        if (v < 3) {
            get_nonnull(rd, fl, &req->member_id);
            break;
        }
        size_t n = stream__kafka_get_n(rd, fl);
        if (n > 0 &&
            stream__kafka_grow((void **)&req->entries, &ecap, 0, n, sizeof(*req->entries)) != 0)
            return STREAM_ENOMEM;
        for (size_t i = 0; i < n && rd->err == 0; i++) {
            stream__kafka_gentry *e = &req->entries[req->nentries++];
            memset(e, 0, sizeof(*e));
            get_nonnull(rd, fl, &e->name);
            get_str(rd, fl, &e->instance_id);
            if (v >= 5) {
                stream__kafka_str reason;
                get_str(rd, fl, &reason);
            }
            stream__kafka_skip_tags(rd, fl);
        }
        break;
    case STREAM__KAFKA_OFFSET_COMMIT:
        get_nonnull(rd, fl, &req->group);
        if (v >= 1) {
            req->generation = stream__kafka_get_i32(rd);
            get_nonnull(rd, fl, &req->member_id);
        }
        if (v >= 7)
            get_str(rd, fl, &req->instance_id);
        if (v >= 2 && v <= 4)
            (void)stream__kafka_get_i64(rd); /* retention_time_ms: offsets are kept */
        rc = get_offset_topics(rd, req, true, &tcap, &ocap, &all);
        break;
    case STREAM__KAFKA_OFFSET_FETCH:
        rc = get_offset_fetch(rd, req);
        break;
    case STREAM__KAFKA_LIST_GROUPS:
        if (v >= 4)
            rc = get_names(rd, req);
        break;
    case STREAM__KAFKA_DESCRIBE_GROUPS:
        rc = get_names(rd, req);
        if (v >= 3)
            (void)stream__kafka_get_i8(rd); /* include_authorized_operations */
        break;
    case STREAM__KAFKA_DELETE_GROUPS:
        rc = get_names(rd, req);
        break;
    default:
        return STREAM_EUNKNOWNOP;
    }
    stream__kafka_skip_tags(rd, fl);
    return rc;
}

int stream__kafka_group_decode(const uint8_t *p, size_t len, stream__kafka_group_request *req)
{
    memset(req, 0, sizeof(*req));
    return stream__kafka_family_decode(p, len, &req->hdr, stream__kafka_group_api, get_body, req);
}

void stream__kafka_group_release(stream__kafka_group_request *req)
{
    free(req->blobs);
    free(req->entries);
    free(req->topics);
    free(req->offsets);
    stream__kafka_request_release(&req->hdr);
    memset(req, 0, sizeof(*req));
}
