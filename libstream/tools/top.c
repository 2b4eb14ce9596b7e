/*
 * top.c - stream-top's figures (stream/top.h): samples of every broker's
 * stats, and the view two samples give - rates from counter differences
 * over the brokers' own clocks, lag and its trend - as JSON or text tables.
 *
 * The stats answers list topics and groups by name, so a previous broker's
 * entry is found by binary search; a topic held by several brokers of a
 * cluster is merged into one row by a scan of the rows so far (brokers x
 * topics^2 comparisons: a few milliseconds at a thousand topics).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "stream/error.h"
#include "stream/json.h"
#include "stream/ops.h"
#include "stream/table.h"
#include "stream/top.h"

/* ---- samples ------------------------------------------------------------------ */

void stream_top_sample_release(stream_top_sample *s)
{
    for (size_t i = 0; i < s->n_brokers; i++)
        stream_stats_free(s->brokers[i]);
    free(s->brokers);
    memset(s, 0, sizeof *s);
}

int stream_top_sample_take(stream_client *c, int timeout_ms, stream_top_sample *out, char *errbuf,
                           size_t errbuf_len)
{
    memset(out, 0, sizeof *out);
    int rc = stream_ops_connect(c, timeout_ms, errbuf, errbuf_len);
    stream_cluster_description *cd = NULL;
    if (rc == 0)
        rc = stream_admin_describe_cluster(c, timeout_ms, &cd, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    out->clustered = cd->clustered;
    size_t n = cd->clustered ? cd->n_brokers : 1;
    out->brokers = calloc(n ? n : 1, sizeof *out->brokers);
    if (!out->brokers)
        rc = STREAM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int32_t node = cd->clustered ? cd->brokers[i].node_id : -1;
        rc = stream_admin_stats(c, node, timeout_ms, &out->brokers[i], errbuf, errbuf_len);
        if (rc == 0)
            out->n_brokers++;
        else if (cd->clustered)
            stream__errf(errbuf, errbuf_len, "broker %d: stats: %s", (int)node, errbuf);
    }
    stream_cluster_description_free(cd);
    if (rc < 0)
        stream_top_sample_release(out);
    return rc;
}

/* ---- the view ------------------------------------------------------------------ */

void stream_top_view_release(stream_top_view *v)
{
    for (size_t i = 0; i < v->n_topics; i++)
        free(v->topics[i].name);
    for (size_t i = 0; i < v->n_groups; i++)
        free(v->groups[i].group);
    free(v->topics);
    free(v->groups);
    free(v->brokers);
    memset(v, 0, sizeof *v);
}

static const stream_stats *prev_broker(const stream_top_sample *prev, int32_t node)
{
    for (size_t i = 0; prev && i < prev->n_brokers; i++)
        if (prev->brokers[i]->node_id == node)
            return prev->brokers[i];
    return NULL;
}

static int topic_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const stream_stats_topic *)elem)->name);
}

static int group_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const stream_stats_group *)elem)->group);
}

/* The entry named `name` of a sorted list, by bsearch, or by a scan when a
 * broker did not sort (the protocol says it does; a view must not trust it). */
static const void *find_named(const char *name, const void *base, size_t n, size_t size,
                              int (*cmp)(const void *, const void *))
{
    const void *e = bsearch(name, base, n, size, cmp);
    for (size_t i = 0; !e && i < n; i++)
        if (cmp(name, (const char *)base + i * size) == 0)
            e = (const char *)base + i * size;
    return e;
}

/* (now - then) per second; 0 when the counter went down or no time passed. */
static double rate(uint64_t now, uint64_t then, double dt)
{
    return dt > 0 && now >= then ? (double)(now - then) / dt : 0;
}

static int64_t group_lag(const stream_stats_group *g, double *seconds)
{
    int64_t lag = 0;
    for (size_t i = 0; i < g->n_partitions; i++) {
        if (g->partitions[i].lag_records > 0)
            lag += g->partitions[i].lag_records;
        if (seconds && g->partitions[i].lag_seconds > *seconds)
            *seconds = g->partitions[i].lag_seconds;
    }
    return lag;
}

static int row_cmp_name(const void *a, const void *b)
{
    return strcmp(((const stream_top_topic *)a)->name, ((const stream_top_topic *)b)->name);
}

int stream_top_view_build(const stream_top_sample *prev, const stream_top_sample *cur,
                          stream_top_view *v)
{
    memset(v, 0, sizeof *v);
    size_t nt = 0, ng = 0;
    for (size_t i = 0; i < cur->n_brokers; i++) {
        nt += cur->brokers[i]->n_topics;
        ng += cur->brokers[i]->n_groups;
    }
    v->topics = calloc(nt ? nt : 1, sizeof *v->topics);
    v->groups = calloc(ng ? ng : 1, sizeof *v->groups);
    v->brokers = calloc(cur->n_brokers ? cur->n_brokers : 1, sizeof *v->brokers);
    if (!v->topics || !v->groups || !v->brokers) {
        stream_top_view_release(v);
        return STREAM_ENOMEM;
    }
    for (size_t i = 0; i < cur->n_brokers; i++) {
        const stream_stats *s = cur->brokers[i];
        const stream_stats *p = prev_broker(prev, s->node_id);
        double dt = p && s->time_ms > p->time_ms ? (double)(s->time_ms - p->time_ms) / 1000 : 0;
        if (s->time_ms > v->time_ms)
            v->time_ms = s->time_ms;
        if (p && s->time_ms > p->time_ms && s->time_ms - p->time_ms > v->interval_ms)
            v->interval_ms = s->time_ms - p->time_ms;
        stream_top_broker *b = &v->brokers[v->n_brokers++];
        b->node_id = s->node_id;
        b->connections = s->connections_native + s->connections_other;
        b->resident_memory_bytes = s->resident_memory_bytes;
        b->open_fds = s->open_fds;
        for (size_t j = 0; j < s->n_topics; j++) {
            const stream_stats_topic *st = &s->topics[j];
            const stream_stats_topic *pt =
                p ? find_named(st->name, p->topics, p->n_topics, sizeof *p->topics, topic_cmp)
                  : NULL;
            double in = pt ? rate(st->bytes_in, pt->bytes_in, dt) : 0;
            double out = pt ? rate(st->bytes_out, pt->bytes_out, dt) : 0;
            double rin = pt ? rate(st->records_in, pt->records_in, dt) : 0;
            b->partitions += st->n_partitions;
            b->bytes_in_rate += in;
            b->bytes_out_rate += out;
            stream_top_topic *t = NULL;
            for (size_t k = 0; k < v->n_topics && !t; k++)
                if (strcmp(v->topics[k].name, st->name) == 0)
                    t = &v->topics[k];
            if (!t) {
                t = &v->topics[v->n_topics];
                t->name = stream__strndup(st->name, strlen(st->name));
                if (!t->name) {
                    stream_top_view_release(v);
                    return STREAM_ENOMEM;
                }
                v->n_topics++;
            }
            for (size_t k = 0; k < st->n_partitions; k++) {
                if (st->partitions[k].partition >= t->partitions)
                    t->partitions = st->partitions[k].partition + 1;
                if (st->partitions[k].size_bytes > 0)
                    t->size_bytes += st->partitions[k].size_bytes;
            }
            t->bytes_in_rate += in;
            t->bytes_out_rate += out;
            t->records_in_rate += rin;
            t->records_in += st->records_in;
        }
        for (size_t j = 0; j < s->n_groups; j++) {
            const stream_stats_group *sg = &s->groups[j];
            const stream_stats_group *pg =
                p ? find_named(sg->group, p->groups, p->n_groups, sizeof *p->groups, group_cmp)
                  : NULL;
            stream_top_group *g = &v->groups[v->n_groups];
            g->group = stream__strndup(sg->group, strlen(sg->group));
            if (!g->group) {
                stream_top_view_release(v);
                return STREAM_ENOMEM;
            }
            v->n_groups++;
            g->node_id = s->node_id;
            g->members = sg->members;
            g->lag_records = group_lag(sg, &g->lag_seconds);
            if (pg && dt > 0)
                g->lag_trend = (double)(g->lag_records - group_lag(pg, NULL)) / dt;
        }
    }
    qsort(v->topics, v->n_topics, sizeof *v->topics, row_cmp_name);
    return 0;
}

/* ---- order ---------------------------------------------------------------------- */

static const char *const sort_names[STREAM_TOP_SORT__COUNT] = {"in", "out", "name"};

const char *stream_top_sort_name(stream_top_sort s)
{
    return s < STREAM_TOP_SORT__COUNT ? sort_names[s] : "?";
}

static int dcmp_desc(double a, double b)
{
    return a > b ? -1 : a < b;
}

static int by_in(const void *a, const void *b)
{
    const stream_top_topic *x = a, *y = b;
    int c = dcmp_desc(x->bytes_in_rate, y->bytes_in_rate);
    return c ? c : strcmp(x->name, y->name);
}

static int by_out(const void *a, const void *b)
{
    const stream_top_topic *x = a, *y = b;
    int c = dcmp_desc(x->bytes_out_rate, y->bytes_out_rate);
    return c ? c : strcmp(x->name, y->name);
}

static int by_lag(const void *a, const void *b)
{
    const stream_top_group *x = a, *y = b;
    if (x->lag_records != y->lag_records)
        return x->lag_records > y->lag_records ? -1 : 1;
    return strcmp(x->group, y->group);
}

void stream_top_view_sort(stream_top_view *v, stream_top_sort s)
{
    int (*cmp)(const void *, const void *) = s == STREAM_TOP_SORT_BYTES_IN    ? by_in
                                             : s == STREAM_TOP_SORT_BYTES_OUT ? by_out
                                                                              : row_cmp_name;
    qsort(v->topics, v->n_topics, sizeof *v->topics, cmp);
    qsort(v->groups, v->n_groups, sizeof *v->groups, by_lag);
}

/* ---- output --------------------------------------------------------------------- */

static bool has_prefix(const char *name, const char *prefix)
{
    return !prefix || strncmp(name, prefix, strlen(prefix)) == 0;
}

int stream_top_json(stream_buf *out, const stream_top_view *v, const char *prefix)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "time_ms");
    stream_json_uint(&w, v->time_ms);
    stream_json_key(&w, "interval_ms");
    stream_json_uint(&w, v->interval_ms);
    stream_json_key(&w, "brokers");
    stream_json_array_start(&w);
    for (size_t i = 0; i < v->n_brokers; i++) {
        const stream_top_broker *b = &v->brokers[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "node_id");
        stream_json_int(&w, b->node_id);
        stream_json_key(&w, "connections");
        stream_json_uint(&w, b->connections);
        stream_json_key(&w, "resident_memory_bytes");
        stream_json_uint(&w, b->resident_memory_bytes);
        stream_json_key(&w, "open_fds");
        stream_json_uint(&w, b->open_fds);
        stream_json_key(&w, "partitions");
        stream_json_uint(&w, b->partitions);
        stream_json_key(&w, "bytes_in_per_sec");
        stream_json_double(&w, b->bytes_in_rate);
        stream_json_key(&w, "bytes_out_per_sec");
        stream_json_double(&w, b->bytes_out_rate);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_key(&w, "topics");
    stream_json_array_start(&w);
    for (size_t i = 0; i < v->n_topics; i++) {
        const stream_top_topic *t = &v->topics[i];
        if (!has_prefix(t->name, prefix))
            continue;
        stream_json_object_start(&w);
        stream_json_key(&w, "name");
        stream_json_cstring(&w, t->name);
        stream_json_key(&w, "partitions");
        stream_json_int(&w, t->partitions);
        stream_json_key(&w, "size_bytes");
        stream_json_int(&w, t->size_bytes);
        stream_json_key(&w, "records_in");
        stream_json_uint(&w, t->records_in);
        stream_json_key(&w, "bytes_in_per_sec");
        stream_json_double(&w, t->bytes_in_rate);
        stream_json_key(&w, "bytes_out_per_sec");
        stream_json_double(&w, t->bytes_out_rate);
        stream_json_key(&w, "records_in_per_sec");
        stream_json_double(&w, t->records_in_rate);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_key(&w, "groups");
    stream_json_array_start(&w);
    for (size_t i = 0; i < v->n_groups; i++) {
        const stream_top_group *g = &v->groups[i];
        if (!has_prefix(g->group, prefix))
            continue;
        stream_json_object_start(&w);
        stream_json_key(&w, "group");
        stream_json_cstring(&w, g->group);
        stream_json_key(&w, "coordinator");
        stream_json_int(&w, g->node_id);
        stream_json_key(&w, "members");
        stream_json_uint(&w, g->members);
        stream_json_key(&w, "lag_records");
        stream_json_int(&w, g->lag_records);
        stream_json_key(&w, "lag_seconds");
        stream_json_double(&w, g->lag_seconds);
        stream_json_key(&w, "lag_trend_per_sec");
        stream_json_double(&w, g->lag_trend);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* A rate for humans: "12.3 MiB/s", "0 B/s". */
static const char *human_rate(double r, char *buf, size_t len)
{
    char h[32];
    snprintf(buf, len, "%s/s", stream_table_human_bytes((int64_t)(r + 0.5), h, sizeof h));
    return buf;
}

static void render(stream_buf *out, stream_table *t, bool *first, int *rc)
{
    if (!*first)
        stream_buf_put(out, "\n", 1);
    *first = false;
    int r = stream_table_render(t, out);
    if (r < 0 && *rc == 0)
        *rc = r;
    stream_table_release(t);
}

int stream_top_text(stream_buf *out, const stream_top_view *v, const char *prefix, int tables)
{
    char a[48], b[48], c[48];
    bool first = true;
    int rc = 0;
    stream_table t;
    if (tables & STREAM_TOP_TOPICS) {
        stream_table_init(&t);
        stream_table_column(&t, "TOPIC", STREAM_ALIGN_LEFT);
        stream_table_column(&t, "PARTITIONS", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "IN", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "OUT", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "RECORDS/S", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "SIZE", STREAM_ALIGN_RIGHT);
        for (size_t i = 0; i < v->n_topics; i++) {
            const stream_top_topic *tp = &v->topics[i];
            if (!has_prefix(tp->name, prefix))
                continue;
            stream_table_cell(&t, tp->name);
            stream_table_cellf(&t, "%d", (int)tp->partitions);
            stream_table_cell(&t, human_rate(tp->bytes_in_rate, a, sizeof a));
            stream_table_cell(&t, human_rate(tp->bytes_out_rate, b, sizeof b));
            stream_table_cellf(&t, "%.0f", tp->records_in_rate);
            stream_table_cell(&t, stream_table_human_bytes(tp->size_bytes, c, sizeof c));
        }
        render(out, &t, &first, &rc);
    }
    if (tables & STREAM_TOP_GROUPS) {
        stream_table_init(&t);
        stream_table_column(&t, "GROUP", STREAM_ALIGN_LEFT);
        stream_table_column(&t, "COORDINATOR", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "MEMBERS", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "LAG", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "LAG-SECONDS", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "TREND/S", STREAM_ALIGN_RIGHT);
        for (size_t i = 0; i < v->n_groups; i++) {
            const stream_top_group *g = &v->groups[i];
            if (!has_prefix(g->group, prefix))
                continue;
            stream_table_cell(&t, g->group);
            stream_table_cellf(&t, "%d", (int)g->node_id);
            stream_table_cellf(&t, "%llu", (unsigned long long)g->members);
            stream_table_cellf(&t, "%lld", (long long)g->lag_records);
            stream_table_cellf(&t, "%.1f", g->lag_seconds);
            stream_table_cellf(&t, "%+.0f", g->lag_trend);
        }
        render(out, &t, &first, &rc);
    }
    if (tables & STREAM_TOP_BROKERS) {
        stream_table_init(&t);
        stream_table_column(&t, "BROKER", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "CONNECTIONS", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "PARTITIONS", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "IN", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "OUT", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "MEMORY", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "FDS", STREAM_ALIGN_RIGHT);
        for (size_t i = 0; i < v->n_brokers; i++) {
            const stream_top_broker *br = &v->brokers[i];
            stream_table_cellf(&t, "%d", (int)br->node_id);
            stream_table_cellf(&t, "%llu", (unsigned long long)br->connections);
            stream_table_cellf(&t, "%zu", br->partitions);
            stream_table_cell(&t, human_rate(br->bytes_in_rate, a, sizeof a));
            stream_table_cell(&t, human_rate(br->bytes_out_rate, b, sizeof b));
            stream_table_cell(
                &t, stream_table_human_bytes((int64_t)br->resident_memory_bytes, c, sizeof c));
            stream_table_cellf(&t, "%llu", (unsigned long long)br->open_fds);
        }
        render(out, &t, &first, &rc);
    }
    return rc < 0 ? rc : stream_buf_ok(out);
}
