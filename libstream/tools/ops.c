/*
 * ops.c - the operations stream-topics, stream-sub and stream-shell share
 * (see ops.h).
 *
 * Each operation runs in the same three steps whichever front-end calls
 * it: local checks (names, settings) that need no broker; one request to
 * the broker for everything that passed (connecting first if need be);
 * then one outcome per thing named, in the order named, so a front-end can
 * report every failure and still finish the rest.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/config.h"
#include "stream/error.h"
#include "stream/json.h"
#include "stream/ops.h"
#include "stream/proto.h"
#include "stream/recfmt.h"
#include "stream/table.h"
#include "base/internal.h"

/* A name fit for a one-line message: control characters as '?', cut at
 * about the longest valid topic name. */
static const char *shown(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
    buf[i] = '\0';
    return buf;
}

#define SHOWN_MAX (STREAM_TOPIC_NAME_MAX + 8)

/* ---- connecting ------------------------------------------------------------- */

int stream_ops_connect(stream_client *c, int timeout_ms, char *errbuf, size_t errbuf_len)
{
    if (stream_client_connected(c))
        return 0;
    char why[512] = "";
    int rc = stream_client_connect(c, timeout_ms, why, sizeof(why));
    if (rc == 0)
        return 0;
    if (why[0] == '\0')
        snprintf(why, sizeof(why), "cannot connect to %s: %s", stream_client_broker(c),
                 stream_strerror(rc));
    /* The one failure a newcomer meets first: say what to check. */
    stream__errf(errbuf, errbuf_len, "%s%s", why,
                 rc == STREAM_ECONNREFUSED ? " (is stream-broker running?)" : "");
    return rc;
}

/* Connects, then prefixes a request failure with what was being done; a
 * connect failure keeps its own line. */
#define CONNECT_OR_RETURN(c, errbuf, errbuf_len)                                                   \
    do {                                                                                           \
        int crc_ = stream_ops_connect((c), -1, (errbuf), (errbuf_len));                            \
        if (crc_ != 0)                                                                             \
            return crc_;                                                                           \
    } while (0)

/* ---- outcomes ---------------------------------------------------------------- */

void stream_ops_outcomes_release(stream_ops_outcomes *o)
{
    stream_topic_results_free(o->res, o->res_count);
    free(o->items);
    memset(o, 0, sizeof(*o));
}

static stream_admin_outcome outcome(const char *topic, const char *status, int err, const char *msg)
{
    return (stream_admin_outcome){.topic = topic, .status = status, .err = err, .msg = msg};
}

int stream_ops_status(const stream_admin_outcome *o, size_t n, size_t total)
{
    size_t failed = 0, notfound = 0, exists = 0;
    for (size_t i = 0; i < n; i++) {
        if (o[i].err == 0)
            continue;
        failed++;
        notfound += o[i].err == STREAM_ENOTOPIC;
        exists += o[i].err == STREAM_ETOPICEXISTS;
    }
    if (failed == 0)
        return STREAM_STATUS_OK;
    if (notfound == total)
        return STREAM_STATUS_NOTFOUND;
    if (exists == total)
        return STREAM_STATUS_EXISTS;
    return STREAM_STATUS_FAIL;
}

/* Why a topic failed. Well-known codes get a fixed, helpful text; the
 * others the broker's message. */
static const char *cause(int err, const char *msg)
{
    switch (err) {
    case STREAM_EBADNAME:
        return "invalid topic name (allowed: [a-zA-Z0-9._-], 1-249 characters)";
    case STREAM_ENOTOPIC:
        return "unknown topic";
    case STREAM_ETOPICEXISTS:
        return "topic already exists";
    default:
        return msg && *msg ? msg : stream_strerror(err);
    }
}

const char *stream_ops_failure_line(const stream_admin_outcome *o, const char *verb, char *buf,
                                    size_t buf_len)
{
    char name[SHOWN_MAX];
    snprintf(buf, buf_len, "cannot %s topic '%s': %s", verb, shown(o->topic, name, sizeof(name)),
             cause(o->err, o->msg));
    return buf;
}

int stream_ops_outcomes_text(stream_buf *out, const stream_admin_outcome *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o[i].err)
            continue;
        char name[SHOWN_MAX], line[SHOWN_MAX + 64];
        shown(o[i].topic, name, sizeof(name));
        int len;
        if (strcmp(o[i].status, "exists") == 0)
            len = snprintf(line, sizeof(line), "topic '%s' exists already\n", name);
        else if (strcmp(o[i].status, "absent") == 0)
            len = snprintf(line, sizeof(line), "topic '%s' does not exist\n", name);
        else
            len = snprintf(line, sizeof(line), "%s topic '%s'\n", o[i].status, name);
        stream_buf_put(out, line, len < (int)sizeof(line) ? (size_t)len : sizeof(line) - 1);
    }
    return stream_buf_ok(out);
}

/* Checks the names locally: an invalid one gets its failed outcome, the
 * valid ones are listed in req[] with slot[k] = their index in the request.
 * Returns the number of valid names. */
static size_t check_names(const stream_ops_topics *r, stream_admin_outcome *out, const char **req,
                          size_t *slot)
{
    size_t nreq = 0;
    for (size_t i = 0; i < r->name_count; i++) {
        const char *name = r->names[i];
        if (stream_topic_name_check(name, strlen(name), NULL, 0) != 0) {
            out[i] = outcome(name, "failed", STREAM_EBADNAME, NULL);
            continue;
        }
        req[nreq] = name;
        slot[nreq++] = i;
    }
    return nreq;
}

/* Allocates the outcomes and the scratch arrays of a command. */
static int outcomes_start(const stream_ops_topics *r, stream_ops_outcomes *out, const char ***req,
                          size_t **slot, char *errbuf, size_t errbuf_len)
{
    memset(out, 0, sizeof(*out));
    size_t n = r->name_count ? r->name_count : 1;
    out->items = calloc(n, sizeof(*out->items));
    *req = calloc(n, sizeof(**req));
    *slot = calloc(n, sizeof(**slot));
    if (out->items == NULL || *req == NULL || *slot == NULL) {
        free(out->items);
        free(*req);
        free(*slot);
        out->items = NULL;
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    out->count = r->name_count;
    return 0;
}

int stream_ops_create_topics(stream_client *c, const stream_ops_topics *r, stream_ops_outcomes *out,
                             char *errbuf, size_t errbuf_len)
{
    const char **req;
    size_t *slot;
    int rc = outcomes_start(r, out, &req, &slot, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    size_t nreq = check_names(r, out->items, req, slot);
    stream_new_topic *topics = calloc(nreq ? nreq : 1, sizeof(*topics));
    if (topics == NULL) {
        rc = STREAM_ENOMEM;
        stream__errf(errbuf, errbuf_len, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < nreq; k++)
        topics[k] = (stream_new_topic){.name = req[k],
                                       .partitions = r->partitions,
                                       .replication_factor = r->replication_factor,
                                       .configs = r->configs,
                                       .config_count = r->config_count};
    if (nreq > 0) {
        rc = stream_ops_connect(c, -1, errbuf, errbuf_len);
        if (rc != 0)
            goto done;
        char why[512];
        rc =
            stream_admin_create_topics(c, topics, nreq, r->timeout_ms, &out->res, why, sizeof(why));
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "cannot create topics: %s", why);
            goto done;
        }
        out->res_count = nreq;
    }
    for (size_t k = 0; k < nreq; k++) {
        int e = out->res[k].err;
        const char *name = r->names[slot[k]];
        if (e == STREAM_ETOPICEXISTS && r->if_not_exists)
            out->items[slot[k]] = outcome(name, "exists", 0, NULL);
        else
            out->items[slot[k]] = outcome(name, e ? "failed" : "created", e, out->res[k].msg);
    }
done:
    free(topics);
    free(req);
    free(slot);
    if (rc != 0)
        stream_ops_outcomes_release(out);
    return rc;
}

int stream_ops_delete_topics(stream_client *c, const stream_ops_topics *r, stream_ops_outcomes *out,
                             char *errbuf, size_t errbuf_len)
{
    const char **req;
    size_t *slot;
    int rc = outcomes_start(r, out, &req, &slot, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    size_t nreq = check_names(r, out->items, req, slot);
    if (nreq > 0) {
        rc = stream_ops_connect(c, -1, errbuf, errbuf_len);
        if (rc != 0)
            goto done;
        char why[512];
        rc = stream_admin_delete_topics(c, req, nreq, r->timeout_ms, &out->res, why, sizeof(why));
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "cannot delete topics: %s", why);
            goto done;
        }
        out->res_count = nreq;
    }
    for (size_t k = 0; k < nreq; k++) {
        int e = out->res[k].err;
        if (e == STREAM_ENOTOPIC && r->if_exists)
            out->items[slot[k]] = outcome(req[k], "absent", 0, NULL);
        else
            out->items[slot[k]] = outcome(req[k], e ? "failed" : "deleted", e, out->res[k].msg);
    }
done:
    free(req);
    free(slot);
    if (rc != 0)
        stream_ops_outcomes_release(out);
    return rc;
}

int stream_ops_alter_topics(stream_client *c, const stream_ops_topics *r, stream_ops_outcomes *out,
                            char *errbuf, size_t errbuf_len)
{
    const char **req;
    size_t *slot;
    int rc = outcomes_start(r, out, &req, &slot, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    size_t nreq = check_names(r, out->items, req, slot);
    /* One request per topic (the op alters one topic); the results are
     * kept in one array so the outcomes' msgs stay valid. */
    out->res = calloc(nreq ? nreq : 1, sizeof(*out->res));
    if (out->res == NULL) {
        rc = STREAM_ENOMEM;
        stream__errf(errbuf, errbuf_len, "out of memory");
        goto done;
    }
    if (nreq > 0 && (rc = stream_ops_connect(c, -1, errbuf, errbuf_len)) != 0)
        goto done;
    for (size_t k = 0; k < nreq; k++) {
        char why[512], name[SHOWN_MAX];
        stream_topic_result *res = NULL;
        /* The partition count first (like kafka-topics --alter): a topic
         * whose count is refused keeps its settings too. */
        stream_new_partitions np = {req[k], r->partitions};
        if (r->partitions > 0)
            rc = stream_admin_create_partitions(c, &np, 1, r->timeout_ms, &res, why, sizeof(why));
        if (rc == 0 && r->config_count > 0 && (res == NULL || res->err == 0)) {
            stream_topic_results_free(res, res ? 1 : 0);
            res = NULL;
            rc = stream_admin_alter_configs(c, req[k], r->configs, r->config_count, r->timeout_ms,
                                            &res, why, sizeof(why));
        }
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "cannot alter topic '%s': %s",
                         shown(req[k], name, sizeof(name)), why);
            goto done;
        }
        if (res == NULL) { /* nothing was asked */
            out->items[slot[k]] = outcome(req[k], "altered", 0, NULL);
            continue;
        }
        out->res[k] = *res; /* take the strings over */
        free(res);
        out->res_count = k + 1;
        int e = out->res[k].err;
        out->items[slot[k]] = outcome(req[k], e ? "failed" : "altered", e, out->res[k].msg);
    }
done:
    free(req);
    free(slot);
    if (rc != 0)
        stream_ops_outcomes_release(out);
    return rc;
}

/* ---- settings ------------------------------------------------------------------ */

static void settings_list(char *out, size_t len)
{
    size_t at = (size_t)snprintf(out, len, "topic settings:");
    const char *sep = " ";
    for (int i = 0; i < STREAM_CONFIG_COUNT && at < len; i++) {
        const stream_config_setting *s = stream_config_setting_at(i);
        if (s->scope != STREAM_CONFIG_SCOPE_TOPIC)
            continue;
        at += (size_t)snprintf(out + at, len - at, "%s%s", sep, s->name);
        sep = ", ";
    }
}

int stream_ops_check_settings(const stream_config_entry *set, size_t n, char *errbuf,
                              size_t errbuf_len)
{
    if (n == 0)
        return 0;
    stream_config *cfg = stream_config_new_topic();
    if (cfg == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const stream_config_entry *e = &set[i];
        char err[512], list[1024];
        rc = e->value ? stream_config_set(cfg, e->name, e->value, err, sizeof(err))
                      : stream_config_unset(cfg, e->name, err, sizeof(err));
        if (rc == 0)
            continue;
        if (rc != STREAM_ENOMEM)
            rc = STREAM_EBADCONFIG;
        const stream_config_setting *s = stream_config_setting_find(e->name, false);
        if (s == NULL || s->scope != STREAM_CONFIG_SCOPE_TOPIC) {
            settings_list(list, sizeof(list));
            stream__errf(errbuf, errbuf_len, "%s (%s)", err, list);
        } else {
            stream__errf(errbuf, errbuf_len, "%s", err);
        }
    }
    stream_config_free(cfg);
    return rc;
}

void stream_ops_each_topic_setting(void (*fn)(void *arg, const char *name), void *arg)
{
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++) {
        const stream_config_setting *s = stream_config_setting_at(i);
        if (s->scope == STREAM_CONFIG_SCOPE_TOPIC)
            fn(arg, s->name);
    }
}

/* ---- list and describe ------------------------------------------------------- */

int stream_ops_list_topics(stream_client *c, int timeout_ms, stream_metadata **out, char *errbuf,
                           size_t errbuf_len)
{
    *out = NULL;
    CONNECT_OR_RETURN(c, errbuf, errbuf_len);
    char why[512];
    int rc = stream_client_metadata(c, NULL, 0, timeout_ms, out, why, sizeof(why));
    if (rc != 0)
        stream__errf(errbuf, errbuf_len, "cannot list topics: %s", why);
    return rc;
}

void stream_ops_description_release(stream_ops_description *d)
{
    stream_topic_configs_free(d->cfgs, d->count);
    stream_metadata_free(d->md);
    free(d->topics);
    free(d->errors);
    memset(d, 0, sizeof(*d));
}

static const stream_topic_meta *find_topic(const stream_metadata *md, const char *name)
{
    for (size_t i = 0; i < md->topic_count; i++)
        if (strcmp(md->topics[i].name, name) == 0)
            return &md->topics[i];
    return NULL;
}

int stream_ops_describe_topics(stream_client *c, const char *const *names, size_t n, int timeout_ms,
                               stream_ops_description *out, char *errbuf, size_t errbuf_len)
{
    memset(out, 0, sizeof(*out));
    size_t cap = n ? n : 1;
    out->topics = calloc(cap, sizeof(*out->topics));
    out->errors = calloc(cap, sizeof(*out->errors));
    const char **valid = calloc(cap, sizeof(*valid));
    int rc = 0;
    if (out->topics == NULL || out->errors == NULL || valid == NULL) {
        rc = STREAM_ENOMEM;
        stream__errf(errbuf, errbuf_len, "out of memory");
        goto done;
    }
    size_t nvalid = 0;
    for (size_t i = 0; i < n; i++) {
        if (stream_topic_name_check(names[i], strlen(names[i]), NULL, 0) != 0)
            out->errors[out->error_count++] = outcome(names[i], "failed", STREAM_EBADNAME, NULL);
        else
            valid[nvalid++] = names[i];
    }
    if (nvalid == 0)
        goto done;
    if ((rc = stream_ops_connect(c, -1, errbuf, errbuf_len)) != 0)
        goto done;
    char why[512];
    rc = stream_client_metadata(c, valid, nvalid, timeout_ms, &out->md, why, sizeof(why));
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot describe topics: %s", why);
        goto done;
    }
    for (size_t i = 0; i < nvalid; i++) {
        const stream_topic_meta *tm = find_topic(out->md, valid[i]);
        if (tm && tm->err == 0) {
            out->topics[out->count++].meta = tm;
            continue;
        }
        int e = tm ? tm->err : STREAM_ENOTOPIC;
        out->errors[out->error_count++] = outcome(valid[i], "failed", e, NULL);
    }
    /* The configs of the topics that exist, in one request. */
    if (out->count > 0) {
        for (size_t i = 0; i < out->count; i++)
            valid[i] = out->topics[i].meta->name;
        rc = stream_admin_describe_configs(c, valid, out->count, timeout_ms, &out->cfgs, why,
                                           sizeof(why));
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "cannot describe topic configs: %s", why);
            out->cfgs = NULL;
            goto done;
        }
        for (size_t i = 0; i < out->count; i++)
            out->topics[i].config = &out->cfgs[i];
    }
done:
    free(valid);
    if (rc != 0)
        stream_ops_description_release(out);
    return rc;
}

/* ---- offsets ------------------------------------------------------------------ */

void stream_ops_offsets_release(stream_ops_offsets *o)
{
    free(o->partitions);
    memset(o, 0, sizeof(*o));
}

int stream_ops_topic_offsets(stream_client *c, const char *topic, const int64_t *at_ms,
                             int timeout_ms, stream_ops_offsets *out, char *errbuf,
                             size_t errbuf_len)
{
    memset(out, 0, sizeof(*out));
    out->topic = topic;
    out->has_time = at_ms != NULL;
    out->time_ms = at_ms ? *at_ms : -1;
    char name[SHOWN_MAX];
    if (stream_topic_name_check(topic, strlen(topic), NULL, 0) != 0) {
        stream__errf(errbuf, errbuf_len, "cannot look up offsets of '%s': %s",
                     shown(topic, name, sizeof(name)), cause(STREAM_EBADNAME, NULL));
        return STREAM_EBADNAME;
    }
    CONNECT_OR_RETURN(c, errbuf, errbuf_len);
    char why[512];
    stream_metadata *md = NULL;
    int rc = stream_client_metadata(c, &topic, 1, timeout_ms, &md, why, sizeof(why));
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot look up offsets of '%s': %s",
                     shown(topic, name, sizeof(name)), why);
        return rc;
    }
    const stream_topic_meta *tm = find_topic(md, topic);
    if (tm == NULL || tm->err != 0) {
        rc = tm ? tm->err : STREAM_ENOTOPIC;
        stream__errf(errbuf, errbuf_len, "%s topic '%s'",
                     rc == STREAM_ENOTOPIC ? "unknown" : stream_strerror(rc),
                     shown(topic, name, sizeof(name)));
        stream_metadata_free(md);
        return rc;
    }
    size_t np = (size_t)tm->partition_count, per = at_ms ? 3 : 2;
    stream_offset_query *q = calloc(np > 0 ? np * per : 1, sizeof(*q));
    out->partitions = calloc(np ? np : 1, sizeof(*out->partitions));
    if (q == NULL || out->partitions == NULL) {
        free(q);
        stream_metadata_free(md);
        stream_ops_offsets_release(out);
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    for (size_t i = 0; i < np; i++) {
        int32_t p = tm->partitions[i].partition;
        q[i * per] = (stream_offset_query){
            .topic = topic, .partition = p, .timestamp = STREAM_LIST_EARLIEST};
        q[i * per + 1] =
            (stream_offset_query){.topic = topic, .partition = p, .timestamp = STREAM_LIST_LATEST};
        if (at_ms)
            q[i * per + 2] =
                (stream_offset_query){.topic = topic, .partition = p, .timestamp = *at_ms};
    }
    stream_metadata_free(md);
    rc = stream_admin_list_offsets(c, q, np * per, timeout_ms, why, sizeof(why));
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot look up offsets of '%s': %s",
                     shown(topic, name, sizeof(name)), why);
        free(q);
        stream_ops_offsets_release(out);
        return rc;
    }
    for (size_t i = 0; i < np; i++) {
        const stream_offset_query *e = &q[i * per], *l = &q[i * per + 1];
        const stream_offset_query *t = at_ms ? &q[i * per + 2] : NULL;
        stream_ops_partition_offsets *po = &out->partitions[i];
        po->partition = e->partition;
        po->err = e->err ? e->err : l->err ? l->err : t ? t->err : 0;
        po->log_start_offset = e->err ? -1 : e->offset;
        po->high_watermark = l->err ? -1 : l->offset;
        po->time_offset = t && !t->err ? t->offset : -1;
        po->time_timestamp = t && !t->err ? t->found_timestamp : -1;
    }
    out->count = np;
    free(q);
    return 0;
}

static void cell_num(stream_table *t, int64_t v)
{
    if (v < 0)
        stream_table_cell(t, "-");
    else
        stream_table_cellf(t, "%" PRId64, v);
}

int stream_ops_offsets_text(stream_buf *out, const stream_ops_offsets *o)
{
    bool any_err = false;
    for (size_t i = 0; i < o->count; i++)
        any_err |= o->partitions[i].err != 0;
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "PARTITION", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "LOG-START", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "HIGH-WATERMARK", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "RECORDS", STREAM_ALIGN_RIGHT);
    if (o->has_time) {
        stream_table_column(&t, "OFFSET-AT-TIME", STREAM_ALIGN_RIGHT);
        stream_table_column(&t, "TIMESTAMP", STREAM_ALIGN_LEFT);
    }
    if (any_err)
        stream_table_column(&t, "ERROR", STREAM_ALIGN_LEFT);
    for (size_t i = 0; i < o->count; i++) {
        const stream_ops_partition_offsets *p = &o->partitions[i];
        stream_table_cellf(&t, "%d", (int)p->partition);
        cell_num(&t, p->log_start_offset);
        cell_num(&t, p->high_watermark);
        cell_num(&t, p->log_start_offset >= 0 && p->high_watermark >= 0
                         ? p->high_watermark - p->log_start_offset
                         : -1);
        if (o->has_time) {
            cell_num(&t, p->time_offset);
            char ts[STREAM_TIME_FORMAT_MAX];
            if (p->time_timestamp >= 0 && stream_time_format(p->time_timestamp, ts, sizeof(ts)) > 0)
                stream_table_cell(&t, ts);
            else
                stream_table_cell(&t, "-");
        }
        if (any_err)
            stream_table_cell(&t, p->err ? stream_strerror(p->err) : "");
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

static void json_opt_int(stream_json_writer *w, const char *key, int64_t v)
{
    stream_json_key(w, key);
    if (v < 0)
        stream_json_null(w);
    else
        stream_json_int(w, v);
}

int stream_ops_offsets_json(stream_buf *out, const stream_ops_offsets *o)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "topic");
    stream_json_cstring(&w, o->topic);
    stream_json_key(&w, "time");
    if (o->has_time)
        stream_json_int(&w, o->time_ms);
    else
        stream_json_null(&w);
    stream_json_key(&w, "partitions");
    stream_json_array_start(&w);
    for (size_t i = 0; i < o->count; i++) {
        const stream_ops_partition_offsets *p = &o->partitions[i];
        stream_json_object_start(&w);
        stream_json_key(&w, "partition");
        stream_json_int(&w, p->partition);
        json_opt_int(&w, "log_start_offset", p->log_start_offset);
        json_opt_int(&w, "high_watermark", p->high_watermark);
        json_opt_int(&w, "records",
                     p->log_start_offset >= 0 && p->high_watermark >= 0
                         ? p->high_watermark - p->log_start_offset
                         : -1);
        json_opt_int(&w, "offset_at_time", p->time_offset);
        json_opt_int(&w, "timestamp", p->time_timestamp);
        stream_json_key(&w, "error");
        if (p->err == 0) {
            stream_json_null(&w);
        } else {
            stream_json_object_start(&w);
            stream_json_key(&w, "code");
            stream_json_cstring(&w, stream_err_name(p->err));
            stream_json_key(&w, "message");
            stream_json_cstring(&w, stream_strerror(p->err));
            stream_json_object_end(&w);
        }
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}

/* ---- reading records out ---------------------------------------------------- */

int stream_ops_record_append(stream_buf *out, stream_ops_out_kind kind, const stream_format *format,
                             const stream_consumer_event *ev, char *errbuf, size_t errbuf_len)
{
    stream_fmt_record r;
    stream_fmt_record_from_record(&r, ev->topic, strlen(ev->topic), ev->partition, &ev->record);
    size_t mark = out->len;
    int rc = kind == STREAM_OPS_OUT_JSON      ? stream_recfmt_write_json(out, &r)
             : kind == STREAM_OPS_OUT_MSGPACK ? stream_recfmt_write_msgpack(out, &r)
                                              : stream_format_apply(format, &r, out);
    if (rc != 0) {
        /* Never leave half a record. */
        out->len = mark;
        out->oom = false;
        stream__errf(errbuf, errbuf_len,
                     "topic '%s' partition %" PRId32 " offset %" PRId64
                     ": cannot format record: %s",
                     ev->topic, ev->partition, ev->record.offset, stream_strerror(rc));
    }
    return rc;
}

int stream_ops_assign(stream_consumer *co, const char *topic, const int32_t *partitions, size_t n,
                      const stream_offset_spec *spec, char *errbuf, size_t errbuf_len)
{
    size_t count = n ? n : 1;
    for (size_t i = 0; i < count; i++) {
        int32_t part = n ? partitions[i] : STREAM_PARTITION_ALL;
        if (errbuf && errbuf_len)
            errbuf[0] = '\0';
        int rc = stream_consumer_assign(co, topic, part, spec, errbuf, errbuf_len);
        if (rc != 0) {
            if (errbuf && errbuf_len && errbuf[0] == '\0')
                stream__errf(errbuf, errbuf_len, "%s", stream_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Flushes at this size even while records keep coming. */
#define OUT_CHUNK ((size_t)256 << 10)

static int sink_flush(stream_buf *buf, const stream_ops_sink *sink, char *errbuf, size_t errbuf_len)
{
    if (buf->len == 0)
        return 0;
    int rc = sink->write(sink->arg, buf->data, buf->len, errbuf, errbuf_len);
    stream_buf_reset(buf);
    return rc;
}

/* ---- the table view (latest_per_key) ---- */

typedef struct latest_row {
    bool used; /* the slot holds a key */
    bool live; /* its last record has a value (not a tombstone) */
    int32_t partition;
    int64_t offset; /* of its last record */
    uint8_t *key;   /* owned copy */
    size_t key_len;
    stream_buf out; /* the last record as formatted */
} latest_row;

typedef struct latest_table {
    latest_row *rows; /* open addressing, linear probing; never more than half full */
    size_t cap, count;
} latest_table;

static uint64_t latest_hash(int32_t partition, const uint8_t *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u ^ (uint32_t)partition;
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 0x100000001b3u;
    return h;
}

static latest_row *latest_slot(latest_row *rows, size_t cap, int32_t partition, const uint8_t *key,
                               size_t len)
{
    size_t i = (size_t)(latest_hash(partition, key, len) & (cap - 1));
    while (rows[i].used && !(rows[i].partition == partition && rows[i].key_len == len &&
                             (len == 0 || memcmp(rows[i].key, key, len) == 0)))
        i = (i + 1) & (cap - 1);
    return &rows[i];
}

/* The row of (partition, key), added when new; NULL when out of memory. */
static latest_row *latest_row_of(latest_table *t, int32_t partition, const uint8_t *key, size_t len)
{
    if ((t->count + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        latest_row *rows = calloc(cap, sizeof *rows);
        if (rows == NULL)
            return NULL;
        for (size_t i = 0; i < t->cap; i++)
            if (t->rows[i].used)
                *latest_slot(rows, cap, t->rows[i].partition, t->rows[i].key, t->rows[i].key_len) =
                    t->rows[i];
        free(t->rows);
        t->rows = rows;
        t->cap = cap;
    }
    latest_row *r = latest_slot(t->rows, t->cap, partition, key, len);
    if (!r->used) {
        if ((r->key = malloc(len ? len : 1)) == NULL)
            return NULL;
        if (len > 0)
            memcpy(r->key, key, len);
        r->key_len = len;
        r->partition = partition;
        r->used = true;
        stream_buf_init(&r->out);
        t->count++;
    }
    return r;
}

static int latest_cmp(const void *a, const void *b)
{
    const latest_row *x = *(const latest_row *const *)a, *y = *(const latest_row *const *)b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Appends the live rows to out in (partition, offset) order, at most
 * `count` (0: all); *n gets how many. */
static int latest_emit(latest_table *t, uint64_t count, stream_buf *out, uint64_t *n)
{
    latest_row **live = malloc((t->count ? t->count : 1) * sizeof *live);
    if (live == NULL)
        return STREAM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->rows[i].used && t->rows[i].live)
            live[k++] = &t->rows[i];
    qsort(live, k, sizeof *live, latest_cmp);
    for (size_t i = 0; i < k && (count == 0 || *n < count); i++, (*n)++)
        stream_buf_put(out, live[i]->out.data, live[i]->out.len);
    free(live);
    return stream_buf_ok(out);
}

static void latest_release(latest_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->rows[i].used) {
            free(t->rows[i].key);
            stream_buf_release(&t->rows[i].out);
        }
    free(t->rows);
}

/* One record into the table. */
static int latest_add(latest_table *t, const stream_ops_consume_conf *conf,
                      const stream_consumer_event *ev, char *errbuf, size_t errbuf_len)
{
    const stream_record *rec = &ev->record;
    if (rec->key == NULL)
        return 0; /* not part of a table */
    latest_row *r = latest_row_of(t, ev->partition, rec->key, (size_t)rec->key_len);
    if (r == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory for the table of keys");
        return STREAM_ENOMEM;
    }
    r->offset = ev->offset;
    r->live = rec->value != NULL;
    stream_buf_reset(&r->out);
    return r->live
               ? stream_ops_record_append(&r->out, conf->kind, conf->format, ev, errbuf, errbuf_len)
               : 0;
}

int stream_ops_consume(stream_consumer *co, const stream_ops_consume_conf *conf,
                       const stream_ops_sink *sink, uint64_t *written, char *errbuf,
                       size_t errbuf_len)
{
    stream_buf buf;
    stream_buf_init(&buf);
    latest_table table = {0};
    uint64_t n = 0, appended = 0; /* records and bytes formatted so far */
    int rc = 0;
    stream_consumer_event ev;
    while (!(conf->stop && *conf->stop) && (conf->count == 0 || n < conf->count)) {
        int prc = stream_consumer_poll(co, 0, &ev);
        if (prc == 0) {
            if (stream_consumer_done(co))
                break;
            /* Nothing ready: show what we have before waiting. A bounded
             * wait, so a stop flag set just before it is seen soon. */
            if ((rc = sink_flush(&buf, sink, errbuf, errbuf_len)) != 0)
                break;
            if (conf->progress)
                stream_progress_update(conf->progress, n, appended);
            if (sink->idle && !sink->idle(sink->arg)) {
                rc = STREAM_ECLOSED;
                break;
            }
            prc = stream_consumer_poll(co, 500, &ev);
            if (prc == 0)
                continue;
        }
        if (prc < 0) {
            rc = prc;
            stream__errf(errbuf, errbuf_len, "%s", stream_strerror(prc));
            break;
        }
        if (ev.type == STREAM_EVENT_RECORD && conf->latest_per_key) {
            if ((rc = latest_add(&table, conf, &ev, errbuf, errbuf_len)) != 0)
                break;
        } else if (ev.type == STREAM_EVENT_RECORD) {
            size_t before = buf.len;
            rc = stream_ops_record_append(&buf, conf->kind, conf->format, &ev, errbuf, errbuf_len);
            if (rc != 0)
                break;
            n++;
            appended += buf.len - before;
            /* Every 256 records: a clock read per record would show in -e's rate. */
            if (conf->progress && (n & 255) == 0)
                stream_progress_update(conf->progress, n, appended);
            if ((conf->each_record || buf.len >= OUT_CHUNK) &&
                (rc = sink_flush(&buf, sink, errbuf, errbuf_len)) != 0)
                break;
        } else if (ev.type == STREAM_EVENT_EOF) {
            if (sink->eof)
                sink->eof(sink->arg, ev.topic, ev.partition, ev.offset);
        } else if (ev.type == STREAM_EVENT_ERROR) {
            rc = ev.err ? ev.err : STREAM_EIO;
            stream__errf(errbuf, errbuf_len, "%s",
                         ev.msg && *ev.msg ? ev.msg : stream_strerror(ev.err));
            break;
        }
    }
    if (conf->latest_per_key) {
        if (rc == 0 && !(conf->stop && *conf->stop) &&
            (rc = latest_emit(&table, conf->count, &buf, &n)) != 0)
            stream__errf(errbuf, errbuf_len, "out of memory for the table of keys");
        latest_release(&table);
    }
    /* Whole records buffered before a stop or an error still go out; a
     * write error after another error does not replace its message. */
    if (buf.len > 0) {
        char why[512];
        int frc = sink_flush(&buf, sink, why, sizeof(why));
        if (rc == 0 && frc != 0) {
            rc = frc;
            stream__errf(errbuf, errbuf_len, "%s", why);
        }
    }
    stream_buf_release(&buf);
    if (conf->progress)
        stream_progress_update(conf->progress, n, appended);
    *written = n;
    return rc;
}
