/*
 * ops_groups.c - consumer groups as tables and JSON (see ops.h), for
 * stream-topics and stream-shell alike, and the --topic arguments of an
 * offset reset, which both take.
 *
 * Lag is shown two ways, as users of Kafka's tools keep asking: in records
 * (log end minus committed offset) and in time (how old the oldest record
 * not yet consumed is), because "12 records behind" means little without
 * knowing whether they are 12 seconds or 12 hours old.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/cli.h"
#include "stream/error.h"
#include "stream/json.h"
#include "stream/ops.h"
#include "stream/proto.h"
#include "stream/table.h"
#include "stream/timespec.h"

/* ---- small helpers ----------------------------------------------------------- */

static void put_str(stream_buf *out, const char *s)
{
    stream_buf_put(out, s, strlen(s));
}

static void json_opt_int(stream_json_writer *w, const char *key, int64_t v)
{
    stream_json_key(w, key);
    if (v < 0)
        stream_json_null(w);
    else
        stream_json_int(w, v);
}

static void cell_num(stream_table *t, int64_t v)
{
    if (v < 0)
        stream_table_cell(t, "-");
    else
        stream_table_cellf(t, "%" PRId64, v);
}

/* A duration for people: "45s", "3m20s", "2h5m", "3d4h". */
static const char *human_age(int64_t ms, char *buf, size_t len)
{
    int64_t s = ms / 1000;
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (s < 60)
        snprintf(buf, len, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", s / 86400, s % 86400 / 3600);
    return buf;
}

/* "orders[0,1] payments[2]" into out. */
static void assignment_text(stream_buf *out, const stream_topic_partitions *tp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            stream_buf_put_u8(out, ' ');
        put_str(out, tp[i].topic);
        stream_buf_put_u8(out, '[');
        for (size_t k = 0; k < tp[i].count; k++) {
            char num[16];
            snprintf(num, sizeof(num), "%s%d", k ? "," : "", (int)tp[i].partitions[k]);
            put_str(out, num);
        }
        stream_buf_put_u8(out, ']');
    }
}

static void assignment_json(stream_json_writer *w, const char *key,
                            const stream_topic_partitions *tp, size_t n)
{
    stream_json_key(w, key);
    stream_json_array_start(w);
    for (size_t i = 0; i < n; i++) {
        stream_json_object_start(w);
        stream_json_key(w, "topic");
        stream_json_cstring(w, tp[i].topic);
        stream_json_key(w, "partitions");
        stream_json_array_start(w);
        for (size_t k = 0; k < tp[i].count; k++)
            stream_json_int(w, tp[i].partitions[k]);
        stream_json_array_end(w);
        stream_json_object_end(w);
    }
    stream_json_array_end(w);
}

/* ---- groups --------------------------------------------------------------------- */

int stream_ops_groups_text(stream_buf *out, const stream_group_listing *g, size_t n)
{
    if (n == 0)
        return stream_buf_ok(out);
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "GROUP", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "STATE", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "MEMBERS", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "GENERATION", STREAM_ALIGN_RIGHT);
    for (size_t i = 0; i < n; i++) {
        stream_table_cell(&t, g[i].group);
        stream_table_cell(&t, g[i].state);
        stream_table_cellf(&t, "%d", (int)g[i].members);
        stream_table_cellf(&t, "%d", (int)g[i].generation);
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

int stream_ops_groups_json(stream_buf *out, const stream_group_listing *g, size_t n)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "groups");
    stream_json_array_start(&w);
    for (size_t i = 0; i < n; i++) {
        stream_json_object_start(&w);
        stream_json_key(&w, "group");
        stream_json_cstring(&w, g[i].group);
        stream_json_key(&w, "state");
        stream_json_cstring(&w, g[i].state);
        stream_json_key(&w, "members");
        stream_json_int(&w, g[i].members);
        stream_json_key(&w, "generation");
        stream_json_int(&w, g[i].generation);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- one group ------------------------------------------------------------------- */

static int members_text(stream_buf *out, const stream_group_description *d)
{
    if (d->member_count == 0) {
        put_str(out, "No members.\n");
        return stream_buf_ok(out);
    }
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "MEMBER", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "CLIENT", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "HOST", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "ASSIGNMENT", STREAM_ALIGN_LEFT);
    stream_buf a;
    stream_buf_init(&a);
    for (size_t i = 0; i < d->member_count; i++) {
        const stream_group_member *m = &d->members[i];
        stream_table_cell(&t, m->member_id);
        stream_table_cell(&t, m->client_id);
        stream_table_cell(&t, m->host);
        stream_buf_reset(&a);
        assignment_text(&a, m->assignment, m->assignment_count);
        stream_buf_put_u8(&a, '\0');
        stream_table_cell(&t, stream_buf_ok(&a) == 0 ? (const char *)a.data : NULL);
    }
    stream_buf_release(&a);
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

static int offsets_text(stream_buf *out, const stream_group_description *d, int64_t now_ms)
{
    if (d->offset_count == 0) {
        put_str(out, "No committed offsets.\n");
        return stream_buf_ok(out);
    }
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "TOPIC", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "PARTITION", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "MEMBER", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "COMMITTED", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "LOG-END", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "LAG", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "LAG-TIME", STREAM_ALIGN_RIGHT);
    for (size_t i = 0; i < d->offset_count; i++) {
        const stream_group_partition *p = &d->offsets[i];
        char age[32];
        stream_table_cell(&t, p->topic);
        stream_table_cellf(&t, "%d", (int)p->partition);
        stream_table_cell(&t, p->member_id && *p->member_id ? p->member_id : "-");
        cell_num(&t, p->offset);
        cell_num(&t, p->log_end_offset);
        cell_num(&t, p->lag);
        if (p->oldest_unconsumed_timestamp < 0)
            stream_table_cell(&t, p->lag == 0 ? "0s" : "-");
        else
            stream_table_cell(&t,
                              human_age(now_ms - p->oldest_unconsumed_timestamp, age, sizeof(age)));
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

int stream_ops_group_text(stream_buf *out, const stream_group_description *d, int64_t now_ms)
{
    char line[600], age[32];
    int len = snprintf(
        line, sizeof(line), "Group %s: %s, generation %d, %zu member%s, lag %" PRId64 " record%s",
        d->group, d->state, (int)d->generation, d->member_count, d->member_count == 1 ? "" : "s",
        d->total_lag < 0 ? 0 : d->total_lag, d->total_lag == 1 ? "" : "s");
    stream_buf_put(out, line, len < (int)sizeof(line) ? (size_t)len : sizeof(line) - 1);
    if (d->oldest_unconsumed_timestamp >= 0) {
        put_str(out, ", oldest unconsumed ");
        put_str(out, human_age(now_ms - d->oldest_unconsumed_timestamp, age, sizeof(age)));
        put_str(out, " old");
    }
    put_str(out, "\n\n");
    int rc = members_text(out, d);
    if (rc != 0)
        return rc;
    stream_buf_put_u8(out, '\n');
    return offsets_text(out, d, now_ms);
}

int stream_ops_group_json(stream_buf *out, const stream_group_description *d)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "group");
    stream_json_cstring(&w, d->group);
    stream_json_key(&w, "state");
    stream_json_cstring(&w, d->state);
    stream_json_key(&w, "generation");
    stream_json_int(&w, d->generation);
    json_opt_int(&w, "total_lag", d->total_lag);
    json_opt_int(&w, "oldest_unconsumed_timestamp", d->oldest_unconsumed_timestamp);
    stream_json_key(&w, "members");
    stream_json_array_start(&w);
    for (size_t i = 0; i < d->member_count; i++) {
        const stream_group_member *m = &d->members[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "member_id");
        stream_json_cstring(&w, m->member_id);
        stream_json_key(&w, "client_id");
        stream_json_cstring(&w, m->client_id);
        stream_json_key(&w, "host");
        stream_json_cstring(&w, m->host);
        stream_json_key(&w, "session_timeout_ms");
        stream_json_int(&w, m->session_timeout_ms);
        stream_json_key(&w, "generation");
        stream_json_int(&w, m->generation);
        stream_json_key(&w, "topics");
        stream_json_array_start(&w);
        for (size_t k = 0; k < m->topic_count; k++)
            stream_json_cstring(&w, m->topics[k]);
        stream_json_array_end(&w);
        stream_json_key(&w, "pattern");
        if (m->pattern)
            stream_json_cstring(&w, m->pattern);
        else
            stream_json_null(&w);
        assignment_json(&w, "assignment", m->assignment, m->assignment_count);
        assignment_json(&w, "target", m->target, m->target_count);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_key(&w, "offsets");
    stream_json_array_start(&w);
    for (size_t i = 0; i < d->offset_count; i++) {
        const stream_group_partition *p = &d->offsets[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "topic");
        stream_json_cstring(&w, p->topic);
        stream_json_key(&w, "partition");
        stream_json_int(&w, p->partition);
        stream_json_key(&w, "member_id");
        stream_json_cstring(&w, p->member_id ? p->member_id : "");
        json_opt_int(&w, "offset", p->offset);
        stream_json_key(&w, "metadata");
        stream_json_cstring(&w, p->metadata ? p->metadata : "");
        json_opt_int(&w, "commit_timestamp", p->commit_timestamp);
        json_opt_int(&w, "log_start_offset", p->log_start_offset);
        json_opt_int(&w, "log_end_offset", p->log_end_offset);
        json_opt_int(&w, "lag", p->lag);
        json_opt_int(&w, "oldest_unconsumed_timestamp", p->oldest_unconsumed_timestamp);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- reset plans ----------------------------------------------------------------- */

int stream_ops_reset_plan_text(stream_buf *out, const stream_group_reset_plan *p)
{
    if (p->count == 0) {
        put_str(out, "No partitions to reset.\n");
        return stream_buf_ok(out);
    }
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "TOPIC", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "PARTITION", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "CURRENT", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "NEW", STREAM_ALIGN_RIGHT);
    for (size_t i = 0; i < p->count; i++) {
        const stream_group_reset_entry *e = &p->entries[i];
        stream_table_cell(&t, e->topic);
        stream_table_cellf(&t, "%d", (int)e->partition);
        cell_num(&t, e->current);
        cell_num(&t, e->new_offset);
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

int stream_ops_reset_plan_json(stream_buf *out, const char *group, const stream_group_reset_plan *p)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "group");
    stream_json_cstring(&w, group);
    stream_json_key(&w, "executed");
    stream_json_bool(&w, p->executed);
    stream_json_key(&w, "partitions");
    stream_json_array_start(&w);
    for (size_t i = 0; i < p->count; i++) {
        const stream_group_reset_entry *e = &p->entries[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "topic");
        stream_json_cstring(&w, e->topic);
        stream_json_key(&w, "partition");
        stream_json_int(&w, e->partition);
        json_opt_int(&w, "current", e->current);
        json_opt_int(&w, "new_offset", e->new_offset);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- group outcomes (delete) ----------------------------------------------------- */

int stream_ops_group_results_json(stream_buf *out, const stream_group_result *r, size_t n,
                                  const char *done_status)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "results");
    stream_json_array_start(&w);
    for (size_t i = 0; i < n; i++) {
        stream_json_object_start(&w);
        stream_json_key(&w, "group");
        stream_json_cstring(&w, r[i].group);
        stream_json_key(&w, "status");
        stream_json_cstring(&w, r[i].err ? "failed" : done_status);
        stream_json_key(&w, "error");
        if (r[i].err == 0) {
            stream_json_null(&w);
        } else {
            stream_json_object_start(&w);
            stream_json_key(&w, "code");
            stream_json_cstring(&w, stream_err_name(r[i].err));
            stream_json_key(&w, "message");
            stream_json_cstring(&w, r[i].msg && *r[i].msg ? r[i].msg : stream_strerror(r[i].err));
            stream_json_object_end(&w);
        }
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- the topics of an offset reset ------------------------------------------- */

/* Makes room for one more entry in each of t's three arrays. */
static int reset_topics_grow(stream_ops_reset_topics *t)
{
    if (t->count < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 4;
    stream_group_reset_topic *items = realloc(t->items, cap * sizeof(*items));
    if (items == NULL)
        return STREAM_ENOMEM;
    t->items = items;
    char **names = realloc(t->names, cap * sizeof(*names));
    if (names == NULL)
        return STREAM_ENOMEM;
    t->names = names;
    stream_cli_partitions *parts = realloc(t->parts, cap * sizeof(*parts));
    if (parts == NULL)
        return STREAM_ENOMEM;
    t->parts = parts;
    t->cap = cap;
    return 0;
}

int stream_ops_reset_topics_add(stream_ops_reset_topics *t, const char *arg, char *errbuf,
                                size_t errbuf_len)
{
    char why[256];
    const char *colon = strchr(arg, ':');
    size_t name_len = colon ? (size_t)(colon - arg) : strlen(arg);
    stream_cli_partitions parts = {0};
    int rc = reset_topics_grow(t);
    if (rc == 0 && colon != NULL)
        rc = stream_cli_partitions_parse(&parts, colon + 1, why, sizeof(why));
    if (rc == 0)
        rc = stream_topic_name_check(arg, name_len, why, sizeof(why));
    char *name = rc == 0 ? strndup(arg, name_len) : NULL;
    if (rc == 0 && name == NULL)
        rc = STREAM_ENOMEM;
    if (rc != 0) {
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "--topic %s: %s", arg,
                     rc == STREAM_ENOMEM ? "out of memory" : why);
        stream_cli_partitions_release(&parts);
        return rc;
    }
    t->names[t->count] = name;
    t->parts[t->count] = parts;
    /* The ids array is its own allocation: growing t->parts later does not
     * move what items point to. */
    t->items[t->count] = (stream_group_reset_topic){
        .topic = name, .partitions = parts.ids, .partition_count = parts.count};
    t->count++;
    return 0;
}

void stream_ops_reset_topics_release(stream_ops_reset_topics *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->names[i]);
        stream_cli_partitions_release(&t->parts[i]);
    }
    free(t->names);
    free(t->parts);
    free(t->items);
    memset(t, 0, sizeof(*t));
}
