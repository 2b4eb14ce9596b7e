/*
 * group_offsets.c - committed offsets: the in-memory tables, the internal
 * topic __consumer_offsets, writes that answer once durable, replay at start
 * and dropping the offsets of deleted topics (protocol.md 6.10 "Storage").
 * The ops that use them are in group_commit.c.
 *
 * An offset is a record: key MessagePack [1, group, topic, partition], value
 * MessagePack {offset, metadata, commit_timestamp[, leader_epoch]} or null
 * (a tombstone).
 * A group's membership is a record too, key [2, group], value packed by
 * group_meta.c (written from memory, so applying it is the replay's job
 * only). All of a group's records go to one partition, murmur2(group) mod
 * count, so their order is the log's order. Memory is the fold of the log: a write is
 * applied to the in-memory table right after its append succeeds, in append
 * order, so memory never disagrees with what replay would rebuild. The
 * response, though, waits until the flusher has made the batch durable
 * (a produce waiter, as for acks=all), so an acknowledged commit survives
 * kill -9.
 *
 * The topic is created at the first write, not at start, so a broker that
 * never sees a group keeps its data directory and topic list as they were.
 */
#include <stdlib.h>
#include <string.h>

#include "group_internal.h"
#include "stream/batch.h"
#include "stream/error.h"
#include "stream/partition.h"

#define WRITE_TIMEOUT_MS STREAM__OFFSETS_WRITE_TIMEOUT_MS
/* Bytes read per step of the replay. */
#define REPLAY_READ_BYTES (1 << 20)

/* ---- a group's offsets table ---- */

static int off_cmp(const stream__offset *o, const char *topic, int32_t partition)
{
    int c = strcmp(o->topic, topic);
    if (c != 0)
        return c;
    return o->partition < partition ? -1 : o->partition > partition;
}

static size_t off_pos(const stream__group *g, const char *topic, int32_t partition, bool *found)
{
    size_t lo = 0, hi = g->noffsets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = off_cmp(&g->offsets[mid], topic, partition);
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

size_t stream__offset_lower_bound(const stream__group *g, const char *topic)
{
    bool found;
    return off_pos(g, topic, INT32_MIN, &found);
}

stream__offset *stream__offset_find(const stream__group *g, const char *topic, int32_t partition)
{
    bool found;
    size_t i = off_pos(g, topic, partition, &found);
    return found ? &g->offsets[i] : NULL;
}

static int offset_set(stream__group *g, const char *topic, int32_t partition, int64_t offset,
                      const char *metadata, size_t metadata_len, int64_t commit_ms,
                      int32_t leader_epoch)
{
    char *md = malloc(metadata_len + 1);
    if (md == NULL)
        return STREAM_ENOMEM;
    if (metadata_len)
        memcpy(md, metadata, metadata_len);
    md[metadata_len] = '\0';
    bool found;
    size_t i = off_pos(g, topic, partition, &found);
    if (!found) {
        if (g->noffsets == g->cap_offsets) {
            size_t ncap = g->cap_offsets ? g->cap_offsets * 2 : 8;
            stream__offset *no = realloc(g->offsets, ncap * sizeof(*no));
            if (no == NULL) {
                free(md);
                return STREAM_ENOMEM;
            }
            g->offsets = no;
            g->cap_offsets = ncap;
        }
        char *t = strdup(topic);
        if (t == NULL) {
            free(md);
            return STREAM_ENOMEM;
        }
        memmove(&g->offsets[i + 1], &g->offsets[i], (g->noffsets - i) * sizeof(g->offsets[0]));
        g->offsets[i] = (stream__offset){.topic = t, .partition = partition};
        g->noffsets++;
    } else {
        free(g->offsets[i].metadata);
    }
    g->offsets[i].offset = offset;
    g->offsets[i].metadata = md;
    g->offsets[i].commit_ms = commit_ms;
    g->offsets[i].leader_epoch = leader_epoch;
    return 0;
}

static void offset_del(stream__group *g, const char *topic, int32_t partition)
{
    bool found;
    size_t i = off_pos(g, topic, partition, &found);
    if (!found)
        return;
    free(g->offsets[i].topic);
    free(g->offsets[i].metadata);
    memmove(&g->offsets[i], &g->offsets[i + 1], (g->noffsets - i - 1) * sizeof(g->offsets[0]));
    g->noffsets--;
}

void stream__offsets_release(stream__group *g)
{
    for (size_t i = 0; i < g->noffsets; i++) {
        free(g->offsets[i].topic);
        free(g->offsets[i].metadata);
    }
    free(g->offsets);
    g->offsets = NULL;
    g->noffsets = g->cap_offsets = 0;
}

/* ---- records in __consumer_offsets ---- */

/* Packs one MessagePack object with a stream_frame (which latches
 * out-of-memory for us) and leaves its bytes at out->data + 4: the frame's
 * length prefix is simply not used. Returns 0 or ENOMEM. */
static int pack_key(stream_buf *out, const char *group, const stream__offset_rec *r)
{
    stream_frame f;
    stream_buf_reset(out);
    stream_frame_start(&f, out);
    if (r->membership) {
        msgpack_pack_array(&f.pk, 2);
        msgpack_pack_int(&f.pk, STREAM_GROUP_META_KEY_VERSION);
        stream_pack_cstr(&f.pk, group);
        return stream_frame_finish(&f);
    }
    msgpack_pack_array(&f.pk, 4);
    msgpack_pack_int(&f.pk, STREAM_OFFSETS_KEY_VERSION);
    stream_pack_cstr(&f.pk, group);
    stream_pack_cstr(&f.pk, r->topic);
    msgpack_pack_int32(&f.pk, r->partition);
    return stream_frame_finish(&f);
}

static int pack_value(stream_buf *out, const stream__offset_rec *r, int64_t now)
{
    stream_frame f;
    stream_buf_reset(out);
    if (r->membership) { /* packed already: keep the frame's layout */
        stream_buf_put(out, "\0\0\0\0", 4);
        stream_buf_put(out, r->value, r->value_len);
        return stream_buf_ok(out);
    }
    stream_frame_start(&f, out);
    msgpack_pack_map(&f.pk, r->has_leader_epoch ? 4 : 3);
    stream_pack_kv_int(&f.pk, "offset", r->offset);
    stream_pack_kv_str(&f.pk, "metadata", r->metadata ? r->metadata : "", r->metadata_len);
    stream_pack_kv_int(&f.pk, "commit_timestamp", now);
    if (r->has_leader_epoch)
        stream_pack_kv_int(&f.pk, "leader_epoch", r->leader_epoch);
    return stream_frame_finish(&f);
}

/* The internal topic, created when `create` and missing. NULL with *err and
 * msg when it cannot be had. */
static stream_topic *offsets_topic(stream__coord *co, bool create, int *err, char *msg,
                                   size_t msg_len)
{
    stream_broker *b = co->broker;
    stream_topic *t = stream_store_topic(stream__host_store(b), STREAM_OFFSETS_TOPIC);
    if (t != NULL || !create) {
        *err = t ? 0 : STREAM_ENOTOPIC;
        return t;
    }
    if (co->clustered) {
        /* The cluster creates it (stream__coord_gate asked already). */
        stream__host_auto_create(b, STREAM_OFFSETS_TOPIC);
        snprintf(msg, msg_len, "%s does not exist yet: the cluster is creating it",
                 STREAM_OFFSETS_TOPIC);
        *err = STREAM_ENOTCOORDINATOR;
        return NULL;
    }
    int32_t n = (int32_t)stream_config_int(stream__host_config(b),
                                           STREAM_CONFIG_OFFSETS_TOPIC_NUM_PARTITIONS);
    stream_config *ov = stream_config_new_topic();
    int rc = ov ? 0 : STREAM_ENOMEM;
    /* Compacted: a group's last commit per partition stays, older ones and
     * deleted groups' tombstones go, so the topic stays bounded by groups x
     * partitions. Group commit whatever the broker's flush.mode: commits are
     * acks=all. */
    if (rc == 0)
        rc = stream_config_set(ov, "cleanup.policy", "compact", msg, msg_len);
    if (rc == 0)
        rc = stream_config_set(ov, "segment.bytes", "104857600", msg, msg_len);
    if (rc == 0)
        rc = stream_config_set(ov, "flush.mode", "group", msg, msg_len);
    /* The host attaches it to the flusher and tells every service. */
    if (rc == 0)
        rc = stream__host_create_topic(b, STREAM_OFFSETS_TOPIC, n, ov, true, &t, msg, msg_len);
    stream_config_free(ov);
    if (rc != 0) {
        stream__host_log(b, STREAM_BROKER_ERROR, "cannot create %s: %s", STREAM_OFFSETS_TOPIC, msg);
        *err = rc;
        return NULL;
    }
    stream__host_log(b, STREAM_BROKER_INFO, "created internal topic %s with %d partitions",
                     STREAM_OFFSETS_TOPIC, (int)t->partition_count);
    *err = 0;
    return t;
}

/* Applies recs[from, to) of `group` to memory (after their append). */
static void apply_recs(stream__coord *co, const char *group, const stream__offset_rec *recs,
                       size_t from, size_t to, int64_t now)
{
    bool offsets = false;
    for (size_t i = from; i < to; i++)
        offsets |= !recs[i].membership;
    if (!offsets)
        return; /* the membership record is written from memory, not to it */
    stream__group *g = stream__group_get(co, group);
    if (g == NULL) {
        stream__host_log(co->broker, STREAM_BROKER_ERROR,
                         "group %s: out of memory applying offsets", group);
        return;
    }
    for (size_t i = from; i < to; i++) {
        if (recs[i].membership)
            continue;
        if (recs[i].tombstone)
            offset_del(g, recs[i].topic, recs[i].partition);
        else if (offset_set(g, recs[i].topic, recs[i].partition, recs[i].offset, recs[i].metadata,
                            recs[i].metadata_len, now,
                            recs[i].has_leader_epoch ? recs[i].leader_epoch : -1) != 0)
            stream__host_log(co->broker, STREAM_BROKER_ERROR,
                             "group %s: out of memory applying offsets", group);
    }
    stream__group_gc(co, g);
}

/* Appends one finished batch to log; returns 0 or the append's error. */
static int append_batch(stream_log *log, stream_batch_builder *bb, stream_buf *copy, size_t *bytes,
                        char *msg, size_t msg_len)
{
    const uint8_t *p;
    size_t len;
    int rc = stream_batch_builder_finish(bb, &p, &len);
    if (rc != 0)
        return rc;
    /* The log stamps the base offset in place: give it a writable copy. */
    stream_buf_reset(copy);
    stream_buf_put(copy, p, len);
    if (stream_buf_ok(copy) != 0)
        return STREAM_ENOMEM;
    int64_t base;
    rc = stream_log_append(log, copy->data, copy->len, &base, msg, msg_len);
    if (rc == 0)
        *bytes += len;
    stream_batch_builder_reset(bb);
    return rc;
}

/*
 * Writes recs of `group` to its offsets partition (creating the topic when
 * needed), in batches of at most the topic's max.message.bytes, applying
 * each batch to memory once appended, and asks for a flush. *partition and
 * *need (the durable offset that confirms the write) are set on success.
 * The group may be freed by the apply (tombstones): callers must not keep
 * pointers to it. Returns 0 or an error with msg.
 */
int stream__offsets_write(stream__coord *co, const char *group, const stream__offset_rec *recs,
                          size_t n, int32_t *partition, int64_t *need, char *msg, size_t msg_len)
{
    int rc;
    *need = 0;
    stream_topic *t = offsets_topic(co, true, &rc, msg, msg_len);
    if (t == NULL)
        return rc;
    *partition = stream_partition_for_key(group, strlen(group), t->partition_count);
    stream_log *log = t->partitions[*partition];
    /* A replicated commit needs min.insync.replicas, as acks=all does. */
    if (co->clustered && (rc = stream__host_produce_check(co->broker, log, msg, msg_len)) != 0)
        return rc;
    size_t max = (size_t)t->log_config.max_message_bytes;
    int64_t now = (int64_t)stream__host_now_ms();
    stream_batch_builder bb;
    stream_buf key = STREAM_BUF_INIT, value = STREAM_BUF_INIT, copy = STREAM_BUF_INIT;
    stream_batch_builder_init(&bb);
    size_t first = 0, bytes = 0;
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = pack_key(&key, group, &recs[i]);
        if (rc == 0 && !recs[i].tombstone)
            rc = pack_value(&value, &recs[i], now);
        if (rc != 0)
            break;
        size_t klen = key.len - 4, vlen = recs[i].tombstone ? 0 : value.len - 4;
        /* 64: a record's own varints and attributes, generously. */
        if (bb.count > 0 && stream_batch_builder_size(&bb) + klen + vlen + 64 > max) {
            rc = append_batch(log, &bb, &copy, &bytes, msg, msg_len);
            if (rc != 0)
                break;
            apply_recs(co, group, recs, first, i, now);
            first = i;
        }
        rc = stream_batch_builder_append(&bb, now, key.data + 4, (int32_t)klen,
                                         recs[i].tombstone ? NULL : value.data + 4,
                                         recs[i].tombstone ? -1 : (int32_t)vlen, NULL, 0);
    }
    if (rc == 0 && bb.count > 0) {
        rc = append_batch(log, &bb, &copy, &bytes, msg, msg_len);
        if (rc == 0)
            apply_recs(co, group, recs, first, n, now);
    }
    stream_batch_builder_release(&bb);
    stream_buf_release(&key);
    stream_buf_release(&value);
    stream_buf_release(&copy);
    if (bytes > 0) {
        stream__host_appended(co->broker, log, bytes);
        *need = stream_log_end_offset(log);
        if (t->log_config.flush_mode == STREAM_FLUSH_GROUP)
            stream_log_request_flush(log);
        else
            stream_log_flush(log); /* periodic/never altered in: still acks=all */
    }
    if (rc != 0) {
        if (msg[0] == '\0' || rc == STREAM_ENOMEM)
            snprintf(msg, msg_len, "cannot write to %s: %s", STREAM_OFFSETS_TOPIC,
                     stream_strerror(rc));
        stream__host_log(co->broker, STREAM_BROKER_ERROR, "group %s: %s", group, msg);
    }
    return rc;
}

/* ---- waiting for durability ---- */

int stream__pending_add(stream__coord *co, stream__pending *p, int32_t partition, int64_t need)
{
    stream_log *log;
    if (need <= 0 || stream_store_log(stream__host_store(co->broker), STREAM_OFFSETS_TOPIC,
                                      partition, &log) != 0)
        return 0;
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 4;
        stream_log **nl = realloc(p->logs, ncap * sizeof(*nl));
        int64_t *nn = nl ? realloc(p->needs, ncap * sizeof(*nn)) : NULL;
        if (nl != NULL)
            p->logs = nl;
        if (nn == NULL) {
            /* Cannot wait for it: make it durable here instead, as
             * stream__pending_park does when nothing is added. */
            stream_log_flush(log);
            return STREAM_ENOMEM;
        }
        p->needs = nn;
        p->cap = ncap;
    }
    p->logs[p->n] = log;
    p->needs[p->n++] = need;
    return 0;
}

void stream__pending_release(stream__pending *p)
{
    free(p->logs);
    free(p->needs);
}

/* 0 when offsets partition `partition` is durable up to need, else
 * ETIMEDOUT (or EIO when the topic is gone) with msg. */
int stream__offsets_durable_err(stream__coord *co, int32_t partition, int64_t need, char *msg,
                                size_t msg_len)
{
    if (need <= 0)
        return 0;
    stream_log *log;
    if (stream_store_log(stream__host_store(co->broker), STREAM_OFFSETS_TOPIC, partition, &log) !=
        0) {
        snprintf(msg, msg_len, "%s is gone", STREAM_OFFSETS_TOPIC);
        return STREAM_EIO;
    }
    int64_t hw = INT64_MAX;
    if (co->clustered) { /* replicated: durable on the ISR, under the high watermark */
        stream__host_role role;
        int32_t leader;
        stream__host_partition_state(co->broker, log, &role, &leader, NULL, &hw);
        /* A follower's high watermark is the new leader's, over a log that
         * may have lost this write when it was truncated: never an answer. */
        if (role != STREAM__ROLE_LEADER) {
            snprintf(msg, msg_len,
                     "the coordinator moved (node %d leads %s-%d now) before the write was "
                     "replicated: it may be lost; find the coordinator and try again",
                     (int)leader, STREAM_OFFSETS_TOPIC, (int)partition);
            return STREAM_ENOTCOORDINATOR;
        }
    }
    if (stream_log_durable_offset(log) >= need && hw >= need)
        return 0;
    char what[300];
    int err = stream_log_io_error(log, NULL, what, sizeof what);
    if (err != 0) {
        snprintf(msg, msg_len, "%s-%d: not stored: %s", STREAM_OFFSETS_TOPIC, (int)partition, what);
        return err;
    }
    if (co->clustered && stream_log_durable_offset(log) >= need) {
        snprintf(msg, msg_len,
                 "written but not replicated to the in-sync replicas within %d ms (the "
                 "coordinator may have moved: find it again and retry)",
                 WRITE_TIMEOUT_MS);
        return STREAM_ETIMEDOUT;
    }
    snprintf(msg, msg_len, "written but not confirmed durable within %d ms", WRITE_TIMEOUT_MS);
    return STREAM_ETIMEDOUT;
}

/* The host's completion: answer unless the connection went, then free. */
static void pending_done(stream_broker *b, stream__req *r, stream__host_wait *w, bool cancelled)
{
    stream__pending *p = (stream__pending *)w;
    if (!cancelled)
        p->encode(p->co, r, p);
    p->destroy(p);
}

/* Answers now if nothing waits, else parks r until every write is durable
 * (or WRITE_TIMEOUT_MS). Takes ownership of p. */
void stream__pending_park(stream__coord *co, stream__req *r, stream__pending *p)
{
    p->co = co;
    p->wait.done = pending_done;
    stream__host_wait_durable(co->broker, r, p->logs, p->needs, p->n, WRITE_TIMEOUT_MS, &p->wait);
}

/* ======================================================================== */
/* replay, topic deletion, record timestamps                                 */
/* ======================================================================== */

/* Applies a membership record of group (key [2, group]) read at
 * rec->offset of offsets partition p: the group's members become the
 * record's, with fresh sessions. One that cannot be decoded is skipped
 * with a warning and the group keeps what an earlier record gave it (a
 * member it does not know joins again; one it knows from before goes on:
 * the held sets it checks against what members report keep either safe).
 * Returns 1 applied, 0 skipped. */
static int replay_membership(stream__coord *co, const char *group, int32_t p,
                             const stream_record *rec)
{
    stream_broker *b = co->broker;
    char msg[320] = "";
    if (rec->value == NULL) {
        stream__group *g = stream__group_find(co, group);
        if (g) {
            stream__group_meta none = {.generation = g->generation};
            stream__group_meta_restore(g, &none, 0, msg, sizeof(msg)); /* cannot fail */
            g->meta_written = false;
            stream__group_gc(co, g);
        }
        return 1;
    }
    stream__group_meta meta;
    int rc = stream__group_meta_decode(rec->value, (size_t)rec->value_len, &meta, msg, sizeof(msg));
    stream__group *g = NULL;
    if (rc == 0) {
        g = stream__group_get(co, group);
        rc =
            g ? stream__group_meta_restore(g, &meta, uv_now(stream__host_loop(b)), msg, sizeof(msg))
              : STREAM_ENOMEM;
        stream__group_meta_release(&meta); /* empty when taken */
    }
    if (rc != 0) {
        stream__host_log(b, STREAM_BROKER_WARN,
                         "group %s: membership record at %s-%d offset %lld skipped (%s): %s; the "
                         "group keeps its earlier membership",
                         group, STREAM_OFFSETS_TOPIC, (int)p, (long long)rec->offset,
                         stream_strerror(rc), msg[0] ? msg : stream_strerror(rc));
        return 0;
    }
    g->meta_dirty = false;
    g->meta_written = true;
    g->meta_partition = p;
    g->meta_need = rec->offset + 1;
    g->topics_version = co->topics_version;
    return 1;
}

/* Applies one record of __consumer_offsets (of partition p). Returns 1
 * applied, 0 skipped (malformed or unknown version). */
static int replay_record(stream__coord *co, int32_t p, const stream_record *rec)
{
    if (rec->key == NULL || rec->key_len <= 0)
        return 0;
    /* Through the scanning parser, not msgpack_unpack_next: msgpack-c
     * allocates for a container's declared size before reading it, and a
     * corrupt record (CRC-valid bytes are still only what was written)
     * could declare billions of elements. */
    stream_msg ku, vu;
    stream_msg_init(&ku);
    stream_msg_init(&vu);
    int ok = 0;
    char group[STREAM_GROUP_NAME_MAX + 1], topic[STREAM_TOPIC_NAME_MAX + 1];
    if (stream_msg_parse_object(rec->key, (size_t)rec->key_len, &ku, NULL, 0) != 0)
        goto out;
    const msgpack_object *k = &ku.root;
    if (k->type != MSGPACK_OBJECT_ARRAY || k->via.array.size < 2)
        goto out;
    const msgpack_object *e = k->via.array.ptr;
    if (k->via.array.size == 2 && e[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        e[0].via.u64 == STREAM_GROUP_META_KEY_VERSION && e[1].type == MSGPACK_OBJECT_STR &&
        stream_group_name_check(e[1].via.str.ptr, e[1].via.str.size, NULL, 0) == 0) {
        memcpy(group, e[1].via.str.ptr, e[1].via.str.size);
        group[e[1].via.str.size] = '\0';
        ok = replay_membership(co, group, p, rec);
        goto out;
    }
    if (k->via.array.size != 4)
        goto out;
    if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        e[0].via.u64 != STREAM_OFFSETS_KEY_VERSION || e[1].type != MSGPACK_OBJECT_STR ||
        e[2].type != MSGPACK_OBJECT_STR || e[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        e[3].via.u64 > INT32_MAX ||
        stream_group_name_check(e[1].via.str.ptr, e[1].via.str.size, NULL, 0) != 0 ||
        stream_topic_name_check(e[2].via.str.ptr, e[2].via.str.size, NULL, 0) != 0)
        goto out;
    memcpy(group, e[1].via.str.ptr, e[1].via.str.size);
    group[e[1].via.str.size] = '\0';
    memcpy(topic, e[2].via.str.ptr, e[2].via.str.size);
    topic[e[2].via.str.size] = '\0';
    int32_t partition = (int32_t)e[3].via.u64;
    if (rec->value == NULL) {
        stream__group *g = stream__group_find(co, group);
        if (g) {
            offset_del(g, topic, partition);
            stream__group_gc(co, g);
        }
        ok = 1;
        goto out;
    }
    if (rec->value_len <= 0 ||
        stream_msg_parse(rec->value, (size_t)rec->value_len, &vu, NULL, 0) != 0)
        goto out;
    int64_t offset, ts, epoch;
    const char *md = NULL;
    size_t md_len = 0;
    if (stream_field_int(&vu.root, "offset", 0, INT64_MAX, &offset, NULL, 0) != 0 ||
        stream_field_str_opt(&vu.root, "metadata", &md, &md_len, NULL, 0) != 0 ||
        stream_field_int_opt(&vu.root, "commit_timestamp", INT64_MIN, INT64_MAX, rec->timestamp,
                             &ts, NULL, 0) != 0 ||
        stream_field_int_opt(&vu.root, "leader_epoch", -1, INT32_MAX, -1, &epoch, NULL, 0) != 0)
        goto out;
    stream__group *g = stream__group_get(co, group);
    if (g && offset_set(g, topic, partition, offset, md, md_len, ts, (int32_t)epoch) == 0)
        ok = 1;
out:
    stream_msg_release(&ku);
    stream_msg_release(&vu);
    return ok;
}

/* Reads one partition of the offsets topic from start to end. */
static void replay_log(stream__coord *co, stream_log *log, int32_t p, long long *records,
                       long long *skipped)
{
    stream_broker *b = co->broker;
    stream_buf buf = STREAM_BUF_INIT;
    int64_t off = stream_log_start_offset(log), end = stream_log_end_offset(log);
    while (off < end) {
        stream_buf_reset(&buf);
        int rc = stream_log_read_copy(log, off, REPLAY_READ_BYTES, &buf);
        if (rc != 0 || buf.len == 0) {
            if (rc != 0)
                stream__host_log(b, STREAM_BROKER_ERROR,
                                 "%s-%d: cannot read offset %lld during replay: %s; committed "
                                 "offsets after it are lost",
                                 STREAM_OFFSETS_TOPIC, (int)p, (long long)off, stream_strerror(rc));
            break;
        }
        int64_t next = off;
        size_t pos = 0;
        while (pos < buf.len) {
            stream_record_iter it;
            stream_record rec;
            rc = stream_record_iter_start(&it, buf.data + pos, buf.len - pos);
            if (rc != 0) {
                stream_record_iter_stop(&it);
                break;
            }
            size_t size = it.info.size;
            int64_t last = it.info.base_offset + it.info.last_offset_delta;
            while ((rc = stream_record_iter_next(&it, &rec)) == 1) {
                if (rec.offset < off)
                    continue;
                (*records)++;
                if (!replay_record(co, p, &rec))
                    (*skipped)++;
            }
            stream_record_iter_stop(&it);
            if (last + 1 > next)
                next = last + 1;
            pos += size;
        }
        if (next <= off) {
            stream__host_log(b, STREAM_BROKER_ERROR, "%s-%d: replay stuck at offset %lld",
                             STREAM_OFFSETS_TOPIC, (int)p, (long long)off);
            break;
        }
        off = next;
    }
    stream_buf_release(&buf);
}

/* Writes tombstones for g's offsets of `topic`, or with topic NULL for its
 * offsets of every topic that no longer exists. */
static void drop_offsets(stream__coord *co, stream__group *g, const char *topic)
{
    stream_store *store = stream__host_store(co->broker);
    size_t n = 0;
    stream__offset_rec *recs = calloc(g->noffsets ? g->noffsets : 1, sizeof(*recs));
    char **names = calloc(g->noffsets ? g->noffsets : 1, sizeof(*names));
    if (recs == NULL || names == NULL) {
        free(recs);
        free(names);
        return;
    }
    for (size_t i = 0; i < g->noffsets; i++) {
        const stream__offset *o = &g->offsets[i];
        bool drop =
            topic ? strcmp(o->topic, topic) == 0 : stream_store_topic(store, o->topic) == NULL;
        if (!drop || (names[n] = strdup(o->topic)) == NULL)
            continue;
        recs[n] =
            (stream__offset_rec){.topic = names[n], .partition = o->partition, .tombstone = true};
        n++;
    }
    if (n > 0) {
        char name[STREAM_GROUP_NAME_MAX + 1], msg[240] = "";
        int32_t partition;
        int64_t need;
        snprintf(name, sizeof(name), "%s", g->name);
        /* g may be freed by the write (no members, no offsets left). */
        if (stream__offsets_write(co, name, recs, n, &partition, &need, msg, sizeof(msg)) == 0)
            stream__host_log(co->broker, STREAM_BROKER_INFO, "group %s: dropped %zu offsets of %s",
                             name, n, topic ? topic : "deleted topics");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(recs);
}

/* A __consumer_offsets made before compaction (retention -1, cleanup.policy
 * delete) grew without bound: it becomes compacted, as a new one is created,
 * keeping its other settings. A failure is logged and the broker goes on
 * with the topic as it was. */
static void migrate_to_compact(stream__coord *co, stream_topic *t)
{
    if (t->log_config.cleanup_compact)
        return;
    stream_broker *b = co->broker;
    char msg[256] = "out of memory";
    stream_config *nc = t->overrides ? stream_config_dup(t->overrides) : stream_config_new_topic();
    int rc =
        nc ? stream_config_set(nc, "cleanup.policy", "compact", msg, sizeof msg) : STREAM_ENOMEM;
    if (rc == 0)
        rc = stream_store_alter_topic(stream__host_store(b), t->name, nc, msg, sizeof msg);
    stream_config_free(nc);
    if (rc != 0)
        stream__host_log(b, STREAM_BROKER_ERROR, "cannot make %s compacted: %s", t->name, msg);
    else
        stream__host_log(b, STREAM_BROKER_INFO,
                         "%s made before compaction: now cleanup.policy=compact", t->name);
}

int stream__offsets_replay(stream__coord *co, char *errbuf, size_t errbuf_len)
{
    stream_broker *b = co->broker;
    int err;
    stream_topic *t = offsets_topic(co, false, &err, errbuf, errbuf_len);
    if (t == NULL)
        return 0;
    migrate_to_compact(co, t);
    long long records = 0, skipped = 0;
    for (int32_t p = 0; p < t->partition_count; p++)
        replay_log(co, t->partitions[p], p, &records, &skipped);
    /* Deletions whose tombstones did not reach the disk before a crash. */
    for (size_t gi = co->ngroups; gi-- > 0;)
        drop_offsets(co, co->groups[gi], NULL);
    size_t noffsets = 0, nmembers = 0;
    for (size_t gi = co->ngroups; gi-- > 0;) {
        stream__group *g = co->groups[gi];
        noffsets += g->noffsets;
        nmembers += g->nmembers;
        stream__group_gc(co, g); /* an empty membership record of a group gone */
    }
    stream__coord_rearm(co);
    stream__host_log(b, STREAM_BROKER_INFO,
                     "group coordinator: %zu committed offsets and %zu members of %zu groups "
                     "loaded from %s (%lld records read)",
                     noffsets, nmembers, co->ngroups, STREAM_OFFSETS_TOPIC, records);
    if (skipped > 0)
        stream__host_log(b, STREAM_BROKER_WARN, "%s: %lld records were malformed and skipped",
                         STREAM_OFFSETS_TOPIC, skipped);
    return 0;
}

void stream__offsets_topic_deleted(stream__coord *co, const char *topic)
{
    /* From the end: a group emptied by the tombstones is removed, which
     * shifts only the groups after it. */
    for (size_t gi = co->ngroups; gi-- > 0;) {
        stream__group *g = co->groups[gi];
        bool any = false;
        for (size_t i = 0; !any && i < g->noffsets; i++)
            any = strcmp(g->offsets[i].topic, topic) == 0;
        if (any)
            drop_offsets(co, g, topic);
    }
}

int64_t stream__record_timestamp_at(stream_log *log, int64_t offset)
{
    stream_buf buf = STREAM_BUF_INIT;
    int64_t ts = -1;
    if (stream_log_read_copy(log, offset, 1, &buf) == 0 && buf.len > 0) {
        stream_record_iter it;
        stream_record rec;
        int rc = stream_record_iter_start(&it, buf.data, buf.len);
        while (rc >= 0 && (rc = stream_record_iter_next(&it, &rec)) == 1) {
            if (rec.offset >= offset) {
                ts = rec.timestamp;
                break;
            }
        }
        stream_record_iter_stop(&it);
    }
    stream_buf_release(&buf);
    return ts;
}

/* ======================================================================== */
/* the coordinator in a cluster: which groups are here                       */
/* ======================================================================== */

/* Makes loaded_epoch hold n partitions (new ones not loaded). */
static int loaded_reserve(stream__coord *co, size_t n)
{
    if (n <= co->nloaded)
        return 0;
    int32_t *e = realloc(co->loaded_epoch, n * sizeof(*e));
    if (e == NULL)
        return STREAM_ENOMEM;
    for (size_t i = co->nloaded; i < n; i++)
        e[i] = -1;
    co->loaded_epoch = e;
    co->nloaded = n;
    return 0;
}

/* Drops the groups of offsets partition p (if they are here). */
static void unload(stream__coord *co, stream_topic *t, int32_t p)
{
    if ((size_t)p >= co->nloaded || co->loaded_epoch[p] < 0)
        return;
    co->loaded_epoch[p] = -1;
    size_t before = co->ngroups;
    stream__group_drop_partition(co, p, t->partition_count);
    stream__host_log(co->broker, STREAM_BROKER_INFO,
                     "group coordinator: %s-%d led elsewhere now: %zu groups dropped here",
                     STREAM_OFFSETS_TOPIC, (int)p, before - co->ngroups);
}

/* This broker leads offsets partition p in `epoch`: its groups' offsets
 * and membership are read from the log (whatever was in memory for p is
 * dropped first: the log is the truth). */
static int load(stream__coord *co, stream_topic *t, int32_t p, int32_t epoch)
{
    if (loaded_reserve(co, (size_t)t->partition_count) != 0)
        return STREAM_ENOMEM;
    if (co->loaded_epoch[p] == epoch)
        return 0;
    stream__group_drop_partition(co, p, t->partition_count);
    long long records = 0, skipped = 0;
    replay_log(co, t->partitions[p], p, &records, &skipped);
    co->loaded_epoch[p] = epoch;
    /* Unlike at a single broker's start, offsets of topics missing here are
     * kept: the replica manager may not have created every topic of the
     * metadata yet when it hands this partition over, and tombstones
     * written then would lose live commits. Deleting a topic drops its
     * offsets on the coordinator of the moment (topic_deleted). */
    size_t groups = 0, noffsets = 0, nmembers = 0;
    for (size_t gi = co->ngroups; gi-- > 0;) {
        stream__group *g = co->groups[gi];
        if (stream_partition_for_key(g->name, strlen(g->name), t->partition_count) != p)
            continue;
        noffsets += g->noffsets;
        nmembers += g->nmembers;
        if (g->nmembers == 0 && g->noffsets == 0)
            stream__group_gc(co, g); /* an empty membership record of a group gone */
        else
            groups++;
    }
    /* The members' sessions started at the restore: they expire from now
     * unless the members find this coordinator. */
    stream__coord_rearm(co);
    stream__host_log(co->broker, STREAM_BROKER_INFO,
                     "group coordinator: leading %s-%d in epoch %d: %zu committed offsets and %zu "
                     "members of %zu groups loaded (%lld records read)",
                     STREAM_OFFSETS_TOPIC, (int)p, (int)epoch, noffsets, nmembers, groups, records);
    if (skipped > 0)
        stream__host_log(co->broker, STREAM_BROKER_WARN,
                         "%s-%d: %lld records were malformed and skipped", STREAM_OFFSETS_TOPIC,
                         (int)p, skipped);
    return 0;
}

/* Where group's offsets partition is: its topic and index; NULL when the
 * topic does not exist here. */
static stream_topic *group_partition(stream__coord *co, const char *group, int32_t *p)
{
    stream_topic *t = stream_store_topic(stream__host_store(co->broker), STREAM_OFFSETS_TOPIC);
    if (t == NULL || t->partition_count < 1)
        return NULL;
    *p = stream_partition_for_key(group, strlen(group), t->partition_count);
    return t;
}

int stream__coord_locate(stream__coord *co, const char *group, int32_t *node, char *msg,
                         size_t msg_len)
{
    if (!co->clustered) {
        *node = stream__host_node_id(co->broker);
        return 0;
    }
    int32_t p;
    stream_topic *t = group_partition(co, group, &p);
    if (t == NULL) {
        stream__host_auto_create(co->broker, STREAM_OFFSETS_TOPIC);
        snprintf(msg, msg_len,
                 "no coordinator for group '%s' yet: %s is being created; try again shortly", group,
                 STREAM_OFFSETS_TOPIC);
        return STREAM_ENOTCOORDINATOR;
    }
    int32_t leader = -1;
    stream__host_partition_state(co->broker, t->partitions[p], NULL, &leader, NULL, NULL);
    if (leader < 0) {
        snprintf(msg, msg_len,
                 "no coordinator for group '%s' now: %s-%d has no leader (an election is under "
                 "way); try again shortly",
                 group, STREAM_OFFSETS_TOPIC, (int)p);
        return STREAM_ENOTCOORDINATOR;
    }
    *node = leader;
    return 0;
}

int stream__coord_gate(stream__coord *co, const char *group, char *msg, size_t msg_len)
{
    if (!co->clustered)
        return 0;
    int32_t p;
    stream_topic *t = group_partition(co, group, &p);
    if (t == NULL) {
        int32_t node;
        return stream__coord_locate(co, group, &node, msg, msg_len);
    }
    stream__host_role role;
    int32_t leader, epoch;
    stream__host_partition_state(co->broker, t->partitions[p], &role, &leader, &epoch, NULL);
    if (role == STREAM__ROLE_LEADER) {
        if (load(co, t, p, epoch) == 0)
            return 0;
        snprintf(msg, msg_len, "out of memory loading the offsets of group '%s'", group);
        return STREAM_ENOMEM;
    }
    unload(co, t, p);
    if (leader >= 0)
        snprintf(msg, msg_len,
                 "node %d is not the coordinator of group '%s': node %d is (the leader of %s-%d); "
                 "find_coordinator names it",
                 (int)stream__host_node_id(co->broker), group, (int)leader, STREAM_OFFSETS_TOPIC,
                 (int)p);
    else
        snprintf(msg, msg_len,
                 "group '%s' has no coordinator now (%s-%d has no leader); try again shortly",
                 group, STREAM_OFFSETS_TOPIC, (int)p);
    return STREAM_ENOTCOORDINATOR;
}

void stream__coord_role_changed(stream__coord *co, stream_log *log, stream__host_role role,
                                int32_t leader_epoch)
{
    stream_topic *t = stream_store_topic(stream__host_store(co->broker), STREAM_OFFSETS_TOPIC);
    if (t == NULL)
        return;
    for (int32_t p = 0; p < t->partition_count; p++) {
        if (t->partitions[p] != log)
            continue;
        if (role == STREAM__ROLE_LEADER) {
            if (load(co, t, p, leader_epoch) != 0)
                stream__host_log(co->broker, STREAM_BROKER_ERROR,
                                 "group coordinator: out of memory loading %s-%d (loaded at the "
                                 "next request)",
                                 STREAM_OFFSETS_TOPIC, (int)p);
        } else {
            unload(co, t, p);
        }
        return;
    }
}
