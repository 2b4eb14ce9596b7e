/*
 * classic_offsets.c - committed offsets for the Kafka listener (classic.h):
 * OffsetCommit, OffsetFetch and DeleteGroups over the coordinator's one
 * offsets store (group_offsets.c), with Kafka's error codes. A commit or a
 * delete is written and parked like the native ops' (stream__pending_park)
 * and answered, through the listener's callback, once durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classic.h"
#include "group_internal.h"
#include "stream/error.h"

/* Kafka's error for a write that did not become durable. */
static int16_t write_error(int err)
{
    switch (err) {
    case 0:
        return STREAM__KAFKA_NONE;
    case STREAM_ENOTCOORDINATOR:
        return STREAM__KAFKA_NOT_COORDINATOR;
    case STREAM_ETIMEDOUT:
        return STREAM__KAFKA_REQUEST_TIMED_OUT;
    default: /* I/O, ENOSPC, ENOMEM: clients retry, finding the coordinator again */
        return STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
}

/* ---- OffsetCommit ---- */

typedef struct commit_state {
    stream__pending p; /* first: the completion casts */
    stream__classic_commit *entries;
    size_t n;
    bool *written; /* entries that went into the write */
    int32_t partition;
    int64_t need;
    int write_err;
    stream__classic_done_cb done;
    void (*destroy)(void *arg);
    void *arg;
} commit_state;

static void commit_encode(stream__coord *co, stream__req *r, stream__pending *p)
{
    commit_state *s = (commit_state *)p;
    char msg[240];
    int err = s->write_err;
    if (err == 0)
        err = stream__offsets_durable_err(co, s->partition, s->need, msg, sizeof(msg));
    for (size_t i = 0; i < s->n; i++)
        if (s->written[i])
            s->entries[i].error = write_error(err);
    s->done(r, s->arg);
}

static void commit_destroy(stream__pending *p)
{
    commit_state *s = (commit_state *)p;
    if (s->destroy)
        s->destroy(s->arg);
    free(s->written);
    stream__pending_release(p);
    free(s);
}

/* Parks s until its writes are durable (or answers at once). */
static void park(stream__coord *co, stream__req *r, commit_state *s, int32_t partition,
                 int64_t need)
{
    if (s->write_err == 0)
        stream__pending_add(co, &s->p, partition, need); /* ENOMEM: flushed instead */
    stream__pending_park(co, r, &s->p);
}

/* Kafka's check of one partition: the topic exists and has it, the
 * metadata is not too large. */
static int16_t commit_entry_check(stream__coord *co, const stream__classic_commit *e)
{
    if (e->metadata_len > STREAM_GROUP_METADATA_MAX)
        return STREAM__KAFKA_OFFSET_METADATA_TOO_LARGE;
    if (e->offset < 0)
        return STREAM__KAFKA_OFFSET_OUT_OF_RANGE;
    stream_topic *t = e->topic && stream_topic_name_check(e->topic, strlen(e->topic), NULL, 0) == 0
                          ? stream_store_topic(stream__host_store(co->broker), e->topic)
                          : NULL;
    if (t == NULL || e->partition < 0 || e->partition >= t->partition_count)
        return STREAM__KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    return 0;
}

void stream__classic_commit_offsets(stream__coord *co, stream__req *r, const char *group,
                                    const char *member_id, const char *instance_id,
                                    int32_t generation, stream__classic_commit *entries, size_t n,
                                    stream__classic_done_cb done, void (*destroy)(void *arg),
                                    void *arg)
{
    commit_state *s = calloc(1, sizeof(*s));
    bool *written = calloc(n ? n : 1, sizeof(*written));
    stream__offset_rec *recs = calloc(n ? n : 1, sizeof(*recs));
    if (s == NULL || written == NULL || recs == NULL) {
        free(s);
        free(written);
        free(recs);
        for (size_t i = 0; i < n; i++)
            entries[i].error = STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
        done(r, arg);
        if (destroy)
            destroy(arg);
        return;
    }
    *s = (commit_state){.p = {.encode = commit_encode, .destroy = commit_destroy},
                        .entries = entries,
                        .n = n,
                        .written = written,
                        .done = done,
                        .destroy = destroy,
                        .arg = arg};
    int16_t who = stream__classic_commit_check(co, group, member_id, instance_id, generation);
    size_t nrecs = 0;
    for (size_t i = 0; i < n; i++) {
        stream__classic_commit *e = &entries[i];
        e->error = who != 0 ? who : commit_entry_check(co, e);
        if (e->error != 0)
            continue;
        written[i] = true;
        recs[nrecs++] = (stream__offset_rec){.topic = e->topic,
                                             .partition = e->partition,
                                             .offset = e->offset,
                                             .metadata = e->metadata,
                                             .metadata_len = e->metadata_len,
                                             .has_leader_epoch = e->leader_epoch >= 0,
                                             .leader_epoch = e->leader_epoch};
    }
    char msg[240];
    if (nrecs > 0)
        s->write_err = stream__offsets_write(co, group, recs, nrecs, &s->partition, &s->need, msg,
                                             sizeof(msg));
    free(recs);
    park(co, r, s, s->partition, s->need);
}

/* ---- OffsetFetch ---- */

int16_t stream__classic_gate(stream__coord *co, const char *group)
{
    char msg[256];
    if (stream_group_name_check(group, strlen(group), msg, sizeof(msg)) != 0)
        return STREAM__KAFKA_INVALID_GROUP_ID;
    if (stream__coord_gate(co, group, msg, sizeof(msg)) != 0)
        return STREAM__KAFKA_NOT_COORDINATOR;
    return 0;
}

static stream__classic_fetched fetched_of(const stream__offset *o)
{
    return (stream__classic_fetched){
        .offset = o->offset, .leader_epoch = o->leader_epoch, .metadata = o->metadata};
}

int16_t stream__classic_fetch_offset(stream__coord *co, const char *group, const char *topic,
                                     int32_t partition, stream__classic_fetched *out)
{
    *out = (stream__classic_fetched){.offset = -1, .leader_epoch = -1, .metadata = ""};
    int16_t err = stream__classic_gate(co, group);
    if (err != 0)
        return err;
    const stream__group *g = stream__group_find(co, group);
    const stream__offset *o = g ? stream__offset_find(g, topic, partition) : NULL;
    if (o != NULL)
        *out = fetched_of(o);
    return 0;
}

int16_t stream__classic_fetch_offsets(stream__coord *co, const char *group,
                                      void (*each)(void *arg, const char *topic, int32_t partition,
                                                   const stream__classic_fetched *o),
                                      void *arg)
{
    int16_t err = stream__classic_gate(co, group);
    if (err != 0)
        return err;
    const stream__group *g = stream__group_find(co, group);
    for (size_t i = 0; g != NULL && i < g->noffsets; i++) {
        stream__classic_fetched f = fetched_of(&g->offsets[i]);
        each(arg, g->offsets[i].topic, g->offsets[i].partition, &f);
    }
    return 0;
}

/* ---- DeleteGroups ---- */

typedef struct delete_state {
    stream__pending p; /* first */
    stream__classic_delete *groups;
    size_t n;
    int32_t *partition; /* per group: its tombstones' write */
    int64_t *need;
    stream__classic_done_cb done;
    void (*destroy)(void *arg);
    void *arg;
} delete_state;

static void delete_encode(stream__coord *co, stream__req *r, stream__pending *p)
{
    delete_state *s = (delete_state *)p;
    char msg[240];
    for (size_t i = 0; i < s->n; i++)
        if (s->groups[i].error == 0)
            s->groups[i].error = write_error(
                stream__offsets_durable_err(co, s->partition[i], s->need[i], msg, sizeof(msg)));
    s->done(r, s->arg);
}

static void delete_destroy(stream__pending *p)
{
    delete_state *s = (delete_state *)p;
    if (s->destroy)
        s->destroy(s->arg);
    free(s->partition);
    free(s->need);
    stream__pending_release(p);
    free(s);
}

static int16_t delete_error(int err)
{
    switch (err) {
    case STREAM_ENOGROUP:
        return STREAM__KAFKA_GROUP_ID_NOT_FOUND;
    case STREAM_EGROUPNOTEMPTY:
        return STREAM__KAFKA_NON_EMPTY_GROUP;
    default:
        return write_error(err);
    }
}

void stream__classic_delete_groups(stream__coord *co, stream__req *r,
                                   stream__classic_delete *groups, size_t n,
                                   stream__classic_done_cb done, void (*destroy)(void *arg),
                                   void *arg)
{
    delete_state *s = calloc(1, sizeof(*s));
    int32_t *partition = calloc(n ? n : 1, sizeof(*partition));
    int64_t *need = calloc(n ? n : 1, sizeof(*need));
    if (s == NULL || partition == NULL || need == NULL) {
        free(s);
        free(partition);
        free(need);
        for (size_t i = 0; i < n; i++)
            groups[i].error = STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
        done(r, arg);
        if (destroy)
            destroy(arg);
        return;
    }
    *s = (delete_state){.p = {.encode = delete_encode, .destroy = delete_destroy},
                        .groups = groups,
                        .n = n,
                        .partition = partition,
                        .need = need,
                        .done = done,
                        .destroy = destroy,
                        .arg = arg};
    for (size_t i = 0; i < n; i++) {
        char msg[400];
        stream__classic_delete *d = &groups[i];
        d->error = stream__classic_gate(co, d->group);
        if (d->error != 0)
            continue;
        d->error = delete_error(
            stream__group_delete(co, d->group, &partition[i], &need[i], msg, sizeof(msg)));
        if (d->error == 0)
            stream__pending_add(co, &s->p, partition[i], need[i]); /* ENOMEM: flushed */
    }
    stream__pending_park(co, r, &s->p);
}
