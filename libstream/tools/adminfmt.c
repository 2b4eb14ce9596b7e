/*
 * adminfmt.c - admin results as tables and JSON (see adminfmt.h).
 *
 * The JSON shapes are a contract with scripts; the tables are for eyes and
 * may change. Both read the client's result structs as they are and never
 * copy them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stream/adminfmt.h"
#include "stream/error.h"
#include "stream/json.h"
#include "stream/table.h"

/* ---- JSON helpers ---------------------------------------------------------- */

/* An int64 that is -1 (or below) when not reported: null then. */
static void json_opt_int(stream_json_writer *w, const char *key, int64_t v)
{
    stream_json_key(w, key);
    if (v < 0)
        stream_json_null(w);
    else
        stream_json_int(w, v);
}

/* {"code": "ENOTOPIC", "message": "..."} or null for err == 0. */
static void json_error(stream_json_writer *w, int err, const char *msg)
{
    if (err == 0) {
        stream_json_null(w);
        return;
    }
    stream_json_object_start(w);
    stream_json_key(w, "code");
    stream_json_cstring(w, stream_err_name(err));
    stream_json_key(w, "message");
    stream_json_cstring(w, msg && *msg ? msg : stream_strerror(err));
    stream_json_object_end(w);
}

/* The sum of the partitions' sizes, -1 when any is unknown. */
static int64_t topic_size(const stream_topic_meta *t)
{
    int64_t sum = 0;
    for (int32_t i = 0; i < t->partition_count; i++) {
        if (t->partitions[i].size_bytes < 0)
            return -1;
        sum += t->partitions[i].size_bytes;
    }
    return sum;
}

static bool config_shown(const stream_config_entry *e, unsigned flags)
{
    return (flags & STREAM_ADMINFMT_ALL_CONFIGS) || !e->is_default;
}

static bool has_config(const stream_topic_description *d)
{
    return d->config != NULL && d->config->err == 0;
}

/* ---- list ------------------------------------------------------------------ */

int stream_adminfmt_list_text(stream_buf *out, const stream_metadata *md, bool columns)
{
    if (!columns) {
        for (size_t i = 0; i < md->topic_count; i++) {
            stream_buf_put(out, md->topics[i].name, strlen(md->topics[i].name));
            stream_buf_put_u8(out, '\n');
        }
        return stream_buf_ok(out);
    }
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "NAME", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "PARTITIONS", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "INTERNAL", STREAM_ALIGN_LEFT);
    for (size_t i = 0; i < md->topic_count; i++) {
        const stream_topic_meta *tm = &md->topics[i];
        stream_table_cell(&t, tm->name);
        stream_table_cellf(&t, "%d", (int)tm->partition_count);
        stream_table_cell(&t, tm->internal ? "yes" : "no");
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

int stream_adminfmt_list_json(stream_buf *out, const stream_metadata *md)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "topics");
    stream_json_array_start(&w);
    for (size_t i = 0; i < md->topic_count; i++) {
        const stream_topic_meta *tm = &md->topics[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "name");
        stream_json_cstring(&w, tm->name);
        stream_json_key(&w, "internal");
        stream_json_bool(&w, tm->internal);
        stream_json_key(&w, "partition_count");
        stream_json_int(&w, tm->partition_count);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- describe --------------------------------------------------------------- */

/* "1,2,3" ("-" when empty; "..." ends a list too long for buf). */
static const char *id_list(const int32_t *ids, uint32_t n, char *buf, size_t len)
{
    if (n == 0)
        return "-";
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        int k = snprintf(buf + at, len - at, "%s%d", i ? "," : "", (int)ids[i]);
        if (k < 0 || (size_t)k >= len - at) {
            snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
            break;
        }
        at += (size_t)k;
    }
    return buf;
}

static void ids_json(stream_json_writer *w, const char *key, const int32_t *ids, uint32_t n)
{
    stream_json_key(w, key);
    stream_json_array_start(w);
    for (uint32_t i = 0; i < n; i++)
        stream_json_int(w, ids[i]);
    stream_json_array_end(w);
}

/* DIRTY (a percentage) and LAST-CLEANED (UTC, to the second) of a
 * compacted topic's partition; "-" for what the broker did not report. */
static void compaction_cells(stream_table *t, const stream_partition_meta *p)
{
    if (!p->compacted)
        stream_table_cell(t, "-");
    else
        stream_table_cellf(t, "%d.%d%%", (int)(p->dirty_ratio_ppm / 10000),
                           (int)(p->dirty_ratio_ppm / 1000 % 10));
    if (!p->compacted || p->last_clean_ms < 0) {
        stream_table_cell(t, "-");
        return;
    }
    time_t secs = (time_t)(p->last_clean_ms / 1000);
    struct tm tmv;
    char when[32];
    if (gmtime_r(&secs, &tmv) == NULL ||
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv) == 0)
        snprintf(when, sizeof when, "%lld", (long long)p->last_clean_ms);
    stream_table_cell(t, when);
}

static int partitions_text(stream_buf *out, const stream_topic_meta *tm)
{
    bool any_err = false, compacted = false;
    for (int32_t i = 0; i < tm->partition_count; i++) {
        any_err |= tm->partitions[i].err != 0;
        compacted |= tm->partitions[i].compacted;
    }
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "PARTITION", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "LEADER", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "EPOCH", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "REPLICAS", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "ISR", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "LOG-START", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "HIGH-WATERMARK", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "END-OFFSET", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "SIZE", STREAM_ALIGN_RIGHT);
    if (compacted) {
        stream_table_column(&t, "DIRTY", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "LAST-CLEANED", STREAM_ALIGN_LEFT);
    }
    if (any_err)
        stream_table_column(&t, "ERROR", STREAM_ALIGN_LEFT);
    for (int32_t i = 0; i < tm->partition_count; i++) {
        const stream_partition_meta *p = &tm->partitions[i];
        char size[32];
        stream_table_cellf(&t, "%d", (int)p->partition);
        if (p->leader < 0)
            stream_table_cell(&t, "-");
        else
            stream_table_cellf(&t, "%d", (int)p->leader);
        if (p->leader_epoch < 0)
            stream_table_cell(&t, "-");
        else
            stream_table_cellf(&t, "%d", (int)p->leader_epoch);
        char ids[256];
        stream_table_cell(&t, id_list(p->replicas, p->replica_count, ids, sizeof(ids)));
        stream_table_cell(&t, id_list(p->isr, p->isr_count, ids, sizeof(ids)));
        /* Unknown offsets (-1) show as "-". */
        const int64_t nums[] = {p->log_start_offset, p->high_watermark, p->log_end_offset};
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (nums[k] < 0)
                stream_table_cell(&t, "-");
            else
                stream_table_cellf(&t, "%lld", (long long)nums[k]);
        }
        stream_table_cell(&t, stream_table_human_bytes(p->size_bytes, size, sizeof(size)));
        if (compacted)
            compaction_cells(&t, p);
        if (any_err)
            stream_table_cell(&t, p->err ? stream_strerror(p->err) : "");
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

static int configs_text(stream_buf *out, const stream_topic_description *d, unsigned flags)
{
    if (!has_config(d)) {
        const char *why =
            d->config && d->config->msg && *d->config->msg ? d->config->msg : "not described";
        char line[512];
        int n = snprintf(line, sizeof(line), "Configs unavailable: %s\n", why);
        stream_buf_put(out, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
        return stream_buf_ok(out);
    }
    const stream_topic_config *cfg = d->config;
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "CONFIG", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "VALUE", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "SOURCE", STREAM_ALIGN_LEFT);
    for (size_t i = 0; i < cfg->entry_count; i++) {
        const stream_config_entry *e = &cfg->entries[i];
        if (!config_shown(e, flags))
            continue;
        stream_table_cell(&t, e->name);
        stream_table_cell(&t, e->value);
        stream_table_cell(&t, e->source ? e->source : (e->is_default ? "default" : "topic"));
    }
    int rc;
    if (stream_table_rows(&t) == 0) {
        static const char none[] = "No configs set on the topic (all at their defaults).\n";
        stream_buf_put(out, none, sizeof(none) - 1);
        rc = stream_buf_ok(out);
    } else {
        rc = stream_table_render(&t, out);
    }
    stream_table_release(&t);
    return rc;
}

int stream_adminfmt_describe_text(stream_buf *out, const stream_topic_description *topics, size_t n,
                                  unsigned flags)
{
    for (size_t i = 0; i < n; i++) {
        const stream_topic_meta *tm = topics[i].meta;
        char size[32], line[512];
        if (i > 0)
            stream_buf_put_u8(out, '\n');
        int len = snprintf(line, sizeof(line), "Topic %s%s: %d partition%s, %s\n", tm->name,
                           tm->internal ? " (internal)" : "", (int)tm->partition_count,
                           tm->partition_count == 1 ? "" : "s",
                           stream_table_human_bytes(topic_size(tm), size, sizeof(size)));
        stream_buf_put(out, line, len < (int)sizeof(line) ? (size_t)len : sizeof(line) - 1);
        stream_buf_put_u8(out, '\n');
        int rc = partitions_text(out, tm);
        if (rc != 0)
            return rc;
        stream_buf_put_u8(out, '\n');
        rc = configs_text(out, &topics[i], flags);
        if (rc != 0)
            return rc;
    }
    return stream_buf_ok(out);
}

static void partition_json(stream_json_writer *w, const stream_partition_meta *p)
{
    stream_json_object_start(w);
    stream_json_key(w, "partition");
    stream_json_int(w, p->partition);
    stream_json_key(w, "leader");
    if (p->leader < 0)
        stream_json_null(w);
    else
        stream_json_int(w, p->leader);
    json_opt_int(w, "leader_epoch", p->leader_epoch);
    ids_json(w, "replicas", p->replicas, p->replica_count);
    ids_json(w, "isr", p->isr, p->isr_count);
    json_opt_int(w, "log_start_offset", p->log_start_offset);
    json_opt_int(w, "high_watermark", p->high_watermark);
    json_opt_int(w, "log_end_offset", p->log_end_offset);
    json_opt_int(w, "size_bytes", p->size_bytes);
    if (p->compacted) {
        json_opt_int(w, "dirty_ratio_ppm", p->dirty_ratio_ppm);
        json_opt_int(w, "last_clean_ms", p->last_clean_ms);
    }
    stream_json_key(w, "error");
    json_error(w, p->err, NULL);
    stream_json_object_end(w);
}

static void configs_json(stream_json_writer *w, const stream_topic_description *d, unsigned flags)
{
    stream_json_key(w, "configs");
    if (!has_config(d)) {
        stream_json_null(w);
        return;
    }
    stream_json_array_start(w);
    for (size_t i = 0; i < d->config->entry_count; i++) {
        const stream_config_entry *e = &d->config->entries[i];
        if (!config_shown(e, flags))
            continue;
        stream_json_object_start(w);
        stream_json_key(w, "name");
        stream_json_cstring(w, e->name);
        stream_json_key(w, "value");
        stream_json_cstring(w, e->value);
        stream_json_key(w, "source");
        stream_json_cstring(w, e->source ? e->source : (e->is_default ? "default" : "topic"));
        stream_json_key(w, "default");
        stream_json_bool(w, e->is_default);
        stream_json_object_end(w);
    }
    stream_json_array_end(w);
}

int stream_adminfmt_describe_json(stream_buf *out, const stream_topic_description *topics, size_t n,
                                  const stream_admin_outcome *errors, size_t nerr, unsigned flags)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "topics");
    stream_json_array_start(&w);
    for (size_t i = 0; i < n; i++) {
        const stream_topic_meta *tm = topics[i].meta;
        stream_json_object_start(&w);
        stream_json_key(&w, "name");
        stream_json_cstring(&w, tm->name);
        stream_json_key(&w, "internal");
        stream_json_bool(&w, tm->internal);
        stream_json_key(&w, "partition_count");
        stream_json_int(&w, tm->partition_count);
        json_opt_int(&w, "size_bytes", topic_size(tm));
        stream_json_key(&w, "partitions");
        stream_json_array_start(&w);
        for (int32_t p = 0; p < tm->partition_count; p++)
            partition_json(&w, &tm->partitions[p]);
        stream_json_array_end(&w);
        configs_json(&w, &topics[i], flags);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_key(&w, "errors");
    stream_json_array_start(&w);
    for (size_t i = 0; i < nerr; i++) {
        stream_json_object_start(&w);
        stream_json_key(&w, "topic");
        stream_json_cstring(&w, errors[i].topic);
        stream_json_key(&w, "error");
        json_error(&w, errors[i].err ? errors[i].err : STREAM_EIO, errors[i].msg);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- outcomes ------------------------------------------------------------------ */

int stream_adminfmt_outcomes_json(stream_buf *out, const stream_admin_outcome *outcomes, size_t n)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "results");
    stream_json_array_start(&w);
    for (size_t i = 0; i < n; i++) {
        const stream_admin_outcome *o = &outcomes[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "topic");
        stream_json_cstring(&w, o->topic);
        stream_json_key(&w, "status");
        stream_json_cstring(&w, o->status ? o->status : (o->err ? "failed" : "ok"));
        stream_json_key(&w, "error");
        json_error(&w, o->err, o->msg);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}
