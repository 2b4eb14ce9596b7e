/*
 * shell_cmds.c - stream-shell's commands and their table (see shell.h).
 *
 * Every command is a table entry (shell_internal.h) whose run function
 * parses its own arguments and calls the operation ops.h shares with the
 * programs -- the shell's `describe` and `stream-topics describe` are one
 * function -- then prints through the session's callbacks
 * (shell_session.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell_internal.h"
#include "stream/adminfmt.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/format.h"
#include "stream/json.h"
#include "stream/ops.h"
#include "stream/table.h"
#include "stream/timespec.h"

/* ---- connect ---------------------------------------------------------------------- */

static int run_connect(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos > 1)
        return stream__shell_usage(sh, cmd, "connect takes one broker list");
    const char *list = a->npos ? a->pos[0] : sh->brokers;
    char err[1024];
    stream_client *c;
    int rc = stream__shell_new_client(sh, list, &c, err, sizeof(err));
    if (rc == STREAM_EINVAL)
        return stream__shell_usage(sh, cmd, "%s", err);
    if (rc != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return STREAM_STATUS_FAIL;
    }
    if ((rc = stream_ops_connect(c, -1, err, sizeof(err))) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        stream_client_free(c);
        return STREAM_STATUS_FAIL;
    }
    char *copy = strdup(list);
    if (copy == NULL) {
        stream_client_free(c);
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
        return STREAM_STATUS_FAIL;
    }
    stream_client_free(sh->client);
    free(sh->brokers);
    sh->client = c;
    sh->brokers = copy;
    sh->was_connected = true;
    sh->lost = false;
    stream__shell_names_clear(&sh->names[0]);
    stream__shell_names_clear(&sh->names[1]);
    stream__shell_msg(sh, STREAM_SHELL_NOTICE, "connected to %s", stream_client_broker(c));
    return STREAM_STATUS_OK;
}

/* ---- topics: list, create, alter, delete, describe ------------------------------------ */

static int run_topics(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos > 0)
        return stream__shell_usage(sh, cmd, "topics takes no arguments");
    stream_client *c = stream__shell_client(sh);
    if (c == NULL)
        return STREAM_STATUS_FAIL;
    char err[1024];
    stream_metadata *md;
    if (stream_ops_list_topics(c, -1, &md, err, sizeof(err)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return STREAM_STATUS_FAIL;
    }
    stream_buf b;
    stream_buf_init(&b);
    int rc = 0;
    if (stream__shell_want_json(sh, cmd, a))
        rc = stream_adminfmt_list_json(&b, md);
    else if (md->topic_count > 0)
        rc = stream_adminfmt_list_text(&b, md, true);
    stream_metadata_free(md);
    return stream__shell_emit(sh, &b, rc);
}

/* The settings of -c KEY=VALUE and --delete-config KEY, in order; the
 * strings live in `store` (one allocation per entry). */
typedef struct settings {
    stream_config_entry *e;
    char **store;
    size_t n;
} settings;

static void settings_release(settings *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->store[i]);
    free(s->store);
    free(s->e);
    memset(s, 0, sizeof(*s));
}

/* Gathers the settings; returns a status (USAGE for a malformed -c). */
static int settings_gather(stream_shell *sh, const stream__shell_cmd *cmd,
                           const stream__shell_args *a, settings *s)
{
    memset(s, 0, sizeof(*s));
    int kc = stream__shell_opt_index(cmd, "config"),
        kd = stream__shell_opt_index(cmd, "delete-config");
    s->e = calloc(a->nopt + 1, sizeof(*s->e));
    s->store = calloc(a->nopt + 1, sizeof(*s->store));
    if (s->e == NULL || s->store == NULL) {
        settings_release(s);
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
        return STREAM_STATUS_FAIL;
    }
    for (size_t i = 0; i < a->nopt; i++) {
        if (a->opt[i].index != kc && a->opt[i].index != kd)
            continue;
        char *v = strdup(a->opt[i].value);
        if (v == NULL) {
            settings_release(s);
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
            return STREAM_STATUS_FAIL;
        }
        s->store[s->n] = v;
        if (a->opt[i].index == kd) {
            if (*v == '\0') {
                settings_release(s);
                return stream__shell_usage(sh, cmd, "--delete-config needs a setting name");
            }
            s->e[s->n++] = (stream_config_entry){.name = v, .value = NULL};
            continue;
        }
        char *eq = strchr(v, '=');
        if (eq == NULL || eq == v) {
            s->n++;
            settings_release(s);
            return stream__shell_usage(sh, cmd, "invalid setting '%s' (expected KEY=VALUE)",
                                       a->opt[i].value);
        }
        *eq = '\0';
        s->e[s->n++] = (stream_config_entry){.name = v, .value = eq + 1};
    }
    char err[2048];
    int rc = stream_ops_check_settings(s->e, s->n, err, sizeof(err));
    if (rc != 0) {
        settings_release(s);
        if (rc == STREAM_ENOMEM) {
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
            return STREAM_STATUS_FAIL;
        }
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return STREAM_STATUS_USAGE;
    }
    return STREAM_STATUS_OK;
}

typedef int (*change_fn)(stream_client *, const stream_ops_topics *, stream_ops_outcomes *, char *,
                         size_t);

/* create, alter, delete: one shape. */
static int run_change(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a,
                      change_fn op, const char *verb)
{
    if (a->npos == 0)
        return stream__shell_usage(sh, cmd, "%s needs at least one topic name", verb);
    stream_ops_topics req = {.names = (const char *const *)a->pos,
                             .name_count = a->npos,
                             .if_not_exists = stream__shell_has_flag(cmd, a, "if-not-exists"),
                             .if_exists = stream__shell_has_flag(cmd, a, "if-exists"),
                             .timeout_ms = -1};
    const char *p = stream__shell_opt_value(cmd, a, "partitions");
    if (p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (*p == '\0' || *end != '\0' || v < 1 || v > STREAM_CONFIG_PARTITIONS_MAX)
            return stream__shell_usage(sh, cmd, "invalid partition count '%s' (1 to %d)", p,
                                       STREAM_CONFIG_PARTITIONS_MAX);
        req.partitions = (int32_t)v;
    }
    const char *rf = stream__shell_opt_value(cmd, a, "replication-factor");
    if (rf) {
        char *end;
        long v = strtol(rf, &end, 10);
        if (*rf == '\0' || *end != '\0' || v < 1 || v > 32)
            return stream__shell_usage(sh, cmd, "invalid replication factor '%s' (1 to 32)", rf);
        req.replication_factor = (int32_t)v;
    }
    settings s;
    int status = settings_gather(sh, cmd, a, &s);
    if (status != 0)
        return status;
    if (op == stream_ops_alter_topics && s.n == 0 && req.partitions == 0) {
        settings_release(&s);
        return stream__shell_usage(sh, cmd,
                                   "alter needs -p N, -c KEY=VALUE or --delete-config KEY");
    }
    req.configs = s.e;
    req.config_count = s.n;
    stream_client *c = stream__shell_client(sh);
    if (c == NULL) {
        settings_release(&s);
        return STREAM_STATUS_FAIL;
    }
    stream_ops_outcomes out;
    char err[1024];
    if (op(c, &req, &out, err, sizeof(err)) != 0) {
        settings_release(&s);
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return STREAM_STATUS_FAIL;
    }
    bool changed = false;
    for (size_t i = 0; i < out.count; i++) {
        if (out.items[i].err)
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s",
                              stream_ops_failure_line(&out.items[i], verb, err, sizeof(err)));
        else
            changed = true;
    }
    if (changed)
        sh->names[STREAM_SHELL_NAMES_TOPICS].fetched = false; /* names changed */
    stream_buf b;
    stream_buf_init(&b);
    int rc = stream__shell_want_json(sh, cmd, a)
                 ? stream_adminfmt_outcomes_json(&b, out.items, out.count)
                 : stream_ops_outcomes_text(&b, out.items, out.count);
    status = stream__shell_emit(sh, &b, rc);
    if (status == STREAM_STATUS_OK)
        status = stream_ops_status(out.items, out.count, out.count);
    stream_ops_outcomes_release(&out);
    settings_release(&s);
    return status;
}

static int run_create(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    return run_change(sh, cmd, a, stream_ops_create_topics, "create");
}

static int run_alter(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    return run_change(sh, cmd, a, stream_ops_alter_topics, "alter");
}

static int run_delete(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    return run_change(sh, cmd, a, stream_ops_delete_topics, "delete");
}

static int run_describe(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos == 0)
        return stream__shell_usage(sh, cmd, "describe needs at least one topic name");
    stream_client *c = stream__shell_client(sh);
    if (c == NULL)
        return STREAM_STATUS_FAIL;
    char err[1024];
    stream_ops_description d;
    if (stream_ops_describe_topics(c, (const char *const *)a->pos, a->npos, -1, &d, err,
                                   sizeof(err)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return STREAM_STATUS_FAIL;
    }
    for (size_t i = 0; i < d.error_count; i++)
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s",
                          stream_ops_failure_line(&d.errors[i], "describe", err, sizeof(err)));
    unsigned flags =
        stream__shell_has_flag(cmd, a, "all-configs") ? STREAM_ADMINFMT_ALL_CONFIGS : 0;
    stream_buf b;
    stream_buf_init(&b);
    int rc =
        stream__shell_want_json(sh, cmd, a)
            ? stream_adminfmt_describe_json(&b, d.topics, d.count, d.errors, d.error_count, flags)
            : stream_adminfmt_describe_text(&b, d.topics, d.count, flags);
    int status = stream__shell_emit(sh, &b, rc);
    if (status == STREAM_STATUS_OK)
        status = stream_ops_status(d.errors, d.error_count, a->npos);
    stream_ops_description_release(&d);
    return status;
}

/* ---- pub ---------------------------------------------------------------------------- */

/* One record's delivery report. */
typedef struct pub_report {
    bool done;
    int32_t partition;
    int64_t offset;
    int err;
    char msg[256];
} pub_report;

static void on_delivery(stream_producer *p, const stream_delivery *d, void *opaque)
{
    pub_report *r = &((pub_report *)opaque)[(uintptr_t)d->opaque];
    r->done = true;
    r->partition = d->partition;
    r->offset = d->offset;
    r->err = d->err;
    snprintf(r->msg, sizeof(r->msg), "%s", d->msg && *d->msg ? d->msg : stream_strerror(d->err));
}

/* Parses a partition number for -p and `set partition`. */
static bool parse_partition(const char *s, int32_t *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

/* Produces the records and waits for their reports. Returns 0 or the code
 * that stopped it (with err), the reports filled for what was produced. */
static int pub_produce(stream_shell *sh, stream_client *c, const char *topic, int32_t partition,
                       const stream_header *headers, size_t nheaders, char **values, size_t n,
                       pub_report *reports, char *err, size_t err_len)
{
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = sh->acks;
    pc.linger_ms = 0;
    pc.delivery_timeout_ms = sh->conf.request_timeout_ms;
    pc.on_delivery = on_delivery;
    pc.opaque = reports;
    stream_producer *p;
    int rc = stream_producer_new(c, &pc, &p, err, err_len);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* KEY=VALUE splits at the first '='; a leading '=' means no key. */
        const char *v = values[i], *eq = strchr(v, '=');
        stream_producer_record rec = {.topic = topic,
                                      .partition = partition,
                                      .key = NULL,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = (int32_t)strlen(v),
                                      .headers = headers,
                                      .header_count = nheaders,
                                      .opaque = (void *)(uintptr_t)i};
        if (eq) {
            if (eq > v) {
                rec.key = v;
                rec.key_len = (int32_t)(eq - v);
            }
            rec.value = eq + 1;
            rec.value_len = (int32_t)strlen(eq + 1);
        }
        while ((rc = stream_producer_produce(p, &rec, err, err_len)) == STREAM_EAGAIN)
            stream_producer_poll(p, 100);
    }
    stream_producer_flush(p, -1);
    stream_producer_free(p, 0);
    return rc;
}

static int run_pub(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos < 2)
        return stream__shell_usage(sh, cmd, "pub needs a topic and at least one value");
    const char *topic = a->pos[0];
    int32_t partition = sh->partition;
    const char *p = stream__shell_opt_value(cmd, a, "partition");
    if (p && !parse_partition(p, &partition))
        return stream__shell_usage(sh, cmd, "invalid partition '%s'", p);
    size_t n = a->npos - 1;
    stream_header *headers = calloc(a->nopt + 1, sizeof(*headers));
    pub_report *reports = calloc(n, sizeof(*reports));
    if (headers == NULL || reports == NULL) {
        free(headers);
        free(reports);
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
        return STREAM_STATUS_FAIL;
    }
    size_t nh = 0;
    int kh = stream__shell_opt_index(cmd, "header");
    char err[1024];
    for (size_t i = 0; i < a->nopt; i++) {
        if (a->opt[i].index != kh)
            continue;
        if (stream_cli_parse_header(a->opt[i].value, &headers[nh++], err, sizeof(err)) != 0) {
            free(headers);
            free(reports);
            return stream__shell_usage(sh, cmd, "-H: %s", err);
        }
    }
    int status = STREAM_STATUS_OK;
    stream_client *c = stream__shell_client(sh);
    if (c == NULL || stream_ops_connect(c, -1, err, sizeof(err)) != 0) {
        if (c)
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        free(headers);
        free(reports);
        return STREAM_STATUS_FAIL;
    }
    err[0] = '\0';
    int rc =
        pub_produce(sh, c, topic, partition, headers, nh, a->pos + 1, n, reports, err, sizeof(err));
    if (rc != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "cannot publish to '%s': %s", topic,
                          err[0] ? err : stream_strerror(rc));
        status = STREAM_STATUS_FAIL;
    }
    sh->names[STREAM_SHELL_NAMES_TOPICS].fetched = false; /* publishing may create it */
    bool json = stream__shell_want_json(sh, cmd, a);
    stream_buf b;
    stream_buf_init(&b);
    stream_json_writer w;
    if (json) {
        stream_json_writer_init(&w, &b);
        stream_json_object_start(&w);
        stream_json_key(&w, "topic");
        stream_json_cstring(&w, topic);
        stream_json_key(&w, "records");
        stream_json_array_start(&w);
    }
    for (size_t i = 0; i < n; i++) {
        pub_report *r = &reports[i];
        if (!r->done)
            continue; /* refused by the producer: reported above */
        if (r->err) {
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "record %zu: %s", i + 1, r->msg);
            status = STREAM_STATUS_FAIL;
        }
        if (json) {
            stream_json_object_start(&w);
            stream_json_key(&w, "partition");
            if (r->partition < 0)
                stream_json_null(&w);
            else
                stream_json_int(&w, r->partition);
            stream_json_key(&w, "offset");
            if (r->offset < 0)
                stream_json_null(&w);
            else
                stream_json_int(&w, r->offset);
            stream_json_key(&w, "error");
            if (r->err == 0) {
                stream_json_null(&w);
            } else {
                stream_json_object_start(&w);
                stream_json_key(&w, "code");
                stream_json_cstring(&w, stream_err_name(r->err));
                stream_json_key(&w, "message");
                stream_json_cstring(&w, r->msg);
                stream_json_object_end(&w);
            }
            stream_json_object_end(&w);
        } else if (r->err == 0) {
            char line[96];
            int len =
                r->offset >= 0
                    ? snprintf(line, sizeof(line), "partition %" PRId32 " offset %" PRId64 "\n",
                               r->partition, r->offset)
                    : snprintf(line, sizeof(line), "partition %" PRId32 " (acks 0: sent)\n",
                               r->partition);
            stream_buf_put(&b, line, (size_t)len);
        }
    }
    int brc = 0;
    if (json) {
        stream_json_array_end(&w);
        stream_json_object_end(&w);
        brc = stream_json_writer_ok(&w);
        stream_buf_put_u8(&b, '\n');
    }
    if (brc == 0)
        brc = stream_buf_ok(&b);
    int wst = stream__shell_emit(sh, &b, brc);
    free(headers);
    free(reports);
    return status ? status : wst;
}

/* ---- sub ---------------------------------------------------------------------------- */

static int sub_write(void *arg, const void *p, size_t len, char *errbuf, size_t errbuf_len)
{
    stream_shell *sh = arg;
    int rc = sh->conf.write(sh->conf.arg, p, len);
    if (rc != 0 && rc != STREAM_ECLOSED)
        snprintf(errbuf, errbuf_len, "cannot write output: %s", stream_strerror(rc));
    return rc;
}

static int run_sub(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos == 0)
        return stream__shell_usage(sh, cmd, "sub needs a topic");
    const char *topic = a->pos[0];
    char err[1024];
    stream_offset_spec spec = {.start = {.kind = STREAM_OFFSET_BEGINNING},
                               .end = {.kind = STREAM_OFFSET_NONE}};
    uint64_t count = 0;
    for (size_t i = 1; i < a->npos; i++) {
        const char *w = a->pos[i];
        const char *from = NULL;
        if (strcmp(w, "from") == 0 || strcmp(w, "count") == 0) {
            if (i + 1 >= a->npos)
                return stream__shell_usage(sh, cmd, "'%s' needs a value", w);
            if (w[0] == 'f') {
                from = a->pos[++i];
            } else {
                const char *v = a->pos[++i];
                char *end;
                unsigned long long nn = strtoull(v, &end, 10);
                if (*v == '\0' || *v == '-' || *end != '\0' || nn == 0)
                    return stream__shell_usage(sh, cmd, "invalid count '%s' (a number from 1)", v);
                count = nn;
            }
        } else if (w[0] == '@') {
            from = w; /* "sub t @-10m" is "sub t from @-10m" */
        } else {
            return stream__shell_usage(sh, cmd, "unexpected '%s'", w);
        }
        if (from && stream_offset_spec_parse_str(from, stream__shell_wall_ms(), &spec, err,
                                                 sizeof(err)) != 0)
            return stream__shell_usage(sh, cmd, "%s", err);
    }
    if (spec.start.kind == STREAM_OFFSET_STORED)
        return stream__shell_usage(sh, cmd, "stored offsets belong to a consumer group");
    stream_cli_partitions parts = {0};
    const char *p = stream__shell_opt_value(cmd, a, "partition");
    if (p) {
        int rc = stream_cli_partitions_parse(&parts, p, err, sizeof(err));
        if (rc != 0) {
            stream_cli_partitions_release(&parts);
            return stream__shell_usage(sh, cmd, "-p: %s", err);
        }
    } else if (sh->partition >= 0) {
        /* The session's partition (set partition N). */
        if ((parts.ids = malloc(sizeof(*parts.ids))) == NULL) {
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
            return STREAM_STATUS_FAIL;
        }
        parts.ids[0] = sh->partition;
        parts.count = 1;
    }
    bool latest = stream__shell_has_flag(cmd, a, "latest-per-key");
    bool exit_at_end = latest || stream__shell_has_flag(cmd, a, "exit");
    stream_client *c = stream__shell_client(sh);
    if (c == NULL) {
        stream_cli_partitions_release(&parts);
        return STREAM_STATUS_FAIL;
    }
    int status = STREAM_STATUS_OK;
    stream_consumer *co = NULL;
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.stop_at_end = exit_at_end;
    int rc = stream_ops_connect(c, -1, err, sizeof(err));
    if (rc == 0)
        rc = stream_consumer_new(c, &cc, &co, err, sizeof(err));
    if (rc == 0)
        rc = stream_ops_assign(co, topic, parts.ids, parts.count, &spec, err, sizeof(err));
    if (rc != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s%s", err,
                          rc == STREAM_ENOTOPIC ? " (topics lists the topics there are)" : "");
        status = STREAM_STATUS_FAIL;
        goto out;
    }
    stream_ops_consume_conf conf = {
        .kind = stream__shell_want_json(sh, cmd, a) ? STREAM_OPS_OUT_JSON : STREAM_OPS_OUT_FORMAT,
        .format = sh->record_format,
        .count = count,
        .each_record = false, /* chunks, and whatever is there whenever idle */
        .stop = sh->conf.interrupt,
        .latest_per_key = latest};
    stream_ops_sink sink = {.write = sub_write, .arg = sh};
    uint64_t n = 0;
    rc = stream_ops_consume(co, &conf, &sink, &n, err, sizeof(err));
    bool stopped = sh->conf.interrupt && *sh->conf.interrupt;
    if (rc != 0 && rc != STREAM_ECLOSED) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        status = STREAM_STATUS_FAIL;
    } else if (rc == 0 && !stopped && n == 0 &&
               (exit_at_end || spec.end.kind != STREAM_OFFSET_NONE)) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "nothing to read in '%s'", topic);
        status = STREAM_STATUS_EMPTY;
    }
out:
    stream_consumer_free(co);
    stream_cli_partitions_release(&parts);
    return status;
}

/* ---- offsets ------------------------------------------------------------------------ */

static int run_offsets(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos < 1 || a->npos > 2)
        return stream__shell_usage(sh, cmd, "offsets needs a topic and at most a time");
    char err[1024];
    int64_t at;
    if (a->npos == 2) {
        const char *t = a->pos[1][0] == '@' ? a->pos[1] + 1 : a->pos[1];
        if (stream_time_parse_str(t, stream__shell_wall_ms(), &at, err, sizeof(err)) != 0)
            return stream__shell_usage(sh, cmd, "%s", err);
    }
    stream_client *c = stream__shell_client(sh);
    if (c == NULL)
        return STREAM_STATUS_FAIL;
    stream_ops_offsets o;
    int rc =
        stream_ops_topic_offsets(c, a->pos[0], a->npos == 2 ? &at : NULL, -1, &o, err, sizeof(err));
    if (rc != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return rc == STREAM_ENOTOPIC ? STREAM_STATUS_NOTFOUND : STREAM_STATUS_FAIL;
    }
    stream_buf b;
    stream_buf_init(&b);
    rc = stream__shell_want_json(sh, cmd, a) ? stream_ops_offsets_json(&b, &o)
                                             : stream_ops_offsets_text(&b, &o);
    stream_ops_offsets_release(&o);
    return stream__shell_emit(sh, &b, rc);
}

/* ---- consumer groups -------------------------------------------------------------------- */

/* The session's client, connected; NULL (and the reason said) when it cannot
 * be. */
static stream_client *connected_client(stream_shell *sh)
{
    stream_client *c = stream__shell_client(sh);
    char err[1024];
    if (c == NULL)
        return NULL;
    if (stream_ops_connect(c, -1, err, sizeof(err)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return NULL;
    }
    return c;
}

/* "cannot VERB group 'g': why", with a fixed text for the well-known codes. */
static void group_error(stream_shell *sh, const char *verb, const char *group, int rc,
                        const char *why)
{
    const char *cause = rc == STREAM_ENOGROUP    ? "unknown group"
                        : rc == STREAM_EBADGROUP ? "invalid group name (allowed: [a-zA-Z0-9._-], "
                                                   "1-249 characters)"
                        : rc == STREAM_EGROUPNOTEMPTY ? "the group has active members (stop them "
                                                        "first)"
                                                      : why;
    char shown[64];
    size_t i = 0;
    for (; group[i] && i + 1 < sizeof(shown); i++)
        shown[i] = (unsigned char)group[i] < 0x20 ? '?' : group[i];
    shown[i] = '\0';
    stream__shell_msg(sh, STREAM_SHELL_ERROR, "cannot %s group '%s': %s", verb, shown, cause);
}

static int run_groups(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos > 0)
        return stream__shell_usage(sh, cmd, "groups takes no arguments");
    stream_client *c = connected_client(sh);
    char why[512];
    if (c == NULL)
        return STREAM_STATUS_FAIL;
    stream_group_listing *g;
    size_t n;
    if (stream_admin_list_groups(c, -1, &g, &n, why, sizeof(why)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "cannot list groups: %s", why);
        return STREAM_STATUS_FAIL;
    }
    stream_buf b;
    stream_buf_init(&b);
    int rc = stream__shell_want_json(sh, cmd, a) ? stream_ops_groups_json(&b, g, n)
                                                 : stream_ops_groups_text(&b, g, n);
    stream_group_listings_free(g, n);
    return stream__shell_emit(sh, &b, rc);
}

/* ---- the cluster ------------------------------------------------------------------------- */

static int run_cluster(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos > 0)
        return stream__shell_usage(sh, cmd, "cluster takes no arguments");
    stream_client *c = connected_client(sh);
    char why[512];
    if (c == NULL)
        return STREAM_STATUS_FAIL;
    stream_cluster_description *d;
    if (stream_admin_describe_cluster(c, -1, &d, why, sizeof(why)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "cannot describe the cluster: %s", why);
        return STREAM_STATUS_FAIL;
    }
    stream_buf b;
    stream_buf_init(&b);
    int rc = stream__shell_want_json(sh, cmd, a) ? stream_ops_cluster_json(&b, d)
                                                 : stream_ops_cluster_text(&b, d);
    stream_cluster_description_free(d);
    return stream__shell_emit(sh, &b, rc);
}

static int run_group(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos != 1)
        return stream__shell_usage(sh, cmd, "group needs one group name");
    stream_client *c = connected_client(sh);
    char why[512];
    if (c == NULL)
        return STREAM_STATUS_FAIL;
    stream_group_description *d;
    int rc = stream_admin_describe_group(c, a->pos[0], -1, &d, why, sizeof(why));
    if (rc != 0) {
        group_error(sh, "describe", a->pos[0], rc, why);
        return rc == STREAM_ENOGROUP ? STREAM_STATUS_NOTFOUND : STREAM_STATUS_FAIL;
    }
    stream_buf b;
    stream_buf_init(&b);
    rc = stream__shell_want_json(sh, cmd, a)
             ? stream_ops_group_json(&b, d)
             : stream_ops_group_text(&b, d, stream__shell_wall_ms());
    stream_group_description_free(d);
    return stream__shell_emit(sh, &b, rc);
}

/* Parses a whole signed decimal number. */
static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return false;
    *out = v;
    return true;
}

/* The --topic T or T:P[,P]... options of reset, into *topics. Returns a
 * status. */
static int reset_topics(stream_shell *sh, const stream__shell_cmd *cmd, const stream__shell_args *a,
                        stream_ops_reset_topics *topics)
{
    int kt = stream__shell_opt_index(cmd, "topic");
    char err[512];
    for (size_t i = 0; i < a->nopt; i++) {
        if (a->opt[i].index != kt)
            continue;
        int rc = stream_ops_reset_topics_add(topics, a->opt[i].value, err, sizeof(err));
        if (rc == STREAM_ENOMEM) {
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
            return STREAM_STATUS_FAIL;
        }
        if (rc != 0)
            return stream__shell_usage(sh, cmd, "%s", err);
    }
    return STREAM_STATUS_OK;
}

/* Which --to-* the command line asks for. Returns a status. */
static int reset_target(stream_shell *sh, const stream__shell_cmd *cmd, const stream__shell_args *a,
                        stream_group_reset *req)
{
    static const struct {
        const char *opt;
        stream_group_reset_to to;
    } targets[] = {
        {"to-earliest", STREAM_GROUP_RESET_EARLIEST}, {"to-latest", STREAM_GROUP_RESET_LATEST},
        {"to-offset", STREAM_GROUP_RESET_OFFSET},     {"to-datetime", STREAM_GROUP_RESET_TIMESTAMP},
        {"shift-by", STREAM_GROUP_RESET_SHIFT},
    };
    int found = 0;
    char err[512];
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        int k = stream__shell_opt_index(cmd, targets[i].opt);
        for (size_t j = 0; j < a->nopt; j++) {
            if (a->opt[j].index != k)
                continue;
            found++;
            req->to = targets[i].to;
            const char *v = a->opt[j].value;
            if (req->to == STREAM_GROUP_RESET_OFFSET &&
                (!parse_i64(v, &req->value) || req->value < 0))
                return stream__shell_usage(sh, cmd, "--to-offset: '%s' is not an offset", v);
            if (req->to == STREAM_GROUP_RESET_SHIFT && !parse_i64(v, &req->value))
                return stream__shell_usage(sh, cmd, "--shift-by: '%s' is not a number", v);
            if (req->to == STREAM_GROUP_RESET_TIMESTAMP &&
                stream_time_parse_str(v[0] == '@' ? v + 1 : v, stream__shell_wall_ms(), &req->value,
                                      err, sizeof(err)) != 0)
                return stream__shell_usage(sh, cmd, "--to-datetime: %s", err);
        }
    }
    if (found != 1)
        return stream__shell_usage(sh, cmd,
                                   "reset needs exactly one of --to-earliest, --to-latest, "
                                   "--to-offset, --to-datetime, --shift-by");
    return STREAM_STATUS_OK;
}

static int run_reset(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos != 1)
        return stream__shell_usage(sh, cmd, "reset needs one group name");
    stream_group_reset req = {.group = a->pos[0],
                              .execute = stream__shell_has_flag(cmd, a, "execute")};
    int status = reset_target(sh, cmd, a, &req);
    if (status != 0)
        return status;
    stream_ops_reset_topics topics = {0};
    stream_group_reset_plan *plan = NULL;
    if ((status = reset_topics(sh, cmd, a, &topics)) != 0)
        goto out;
    req.topics = topics.items;
    req.topic_count = topics.count;
    stream_client *c = stream__shell_client(sh);
    char err[1024], why[512];
    if (c == NULL || stream_ops_connect(c, -1, err, sizeof(err)) != 0) {
        if (c)
            stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        status = STREAM_STATUS_FAIL;
        goto out;
    }
    int rc = stream_admin_reset_offsets(c, &req, -1, &plan, why, sizeof(why));
    if (rc != 0) {
        group_error(sh, "reset", req.group, rc, why);
        status = rc == STREAM_ENOGROUP || rc == STREAM_ENOTOPIC ? STREAM_STATUS_NOTFOUND
                                                                : STREAM_STATUS_FAIL;
        goto out;
    }
    stream_buf b;
    stream_buf_init(&b);
    rc = stream__shell_want_json(sh, cmd, a) ? stream_ops_reset_plan_json(&b, req.group, plan)
                                             : stream_ops_reset_plan_text(&b, plan);
    status = stream__shell_emit(sh, &b, rc);
    if (status == STREAM_STATUS_OK && !plan->executed)
        stream__shell_msg(sh, STREAM_SHELL_WARNING,
                          "dry run: nothing changed (add --execute to commit these offsets)");
out:
    stream_group_reset_plan_free(plan);
    stream_ops_reset_topics_release(&topics);
    return status;
}

/* ---- set ------------------------------------------------------------------------------ */

const char *const stream__shell_session_keys[] = {"format", "record-format", "acks", "partition",
                                                  NULL};

size_t stream__shell_session_values(const char *key, const char *const **values)
{
    static const char *const formats[] = {"text", "json"};
    static const char *const acks[] = {"0", "1", "all"};
    static const char *const partition[] = {"any"};
    if (strcmp(key, "format") == 0) {
        *values = formats;
        return 2;
    }
    if (strcmp(key, "acks") == 0) {
        *values = acks;
        return 3;
    }
    if (strcmp(key, "partition") == 0) {
        *values = partition;
        return 1;
    }
    return 0;
}

/* The value of a session setting as `set` shows it. */
static void setting_text(const stream_shell *sh, const char *key, char *buf, size_t len)
{
    if (strcmp(key, "format") == 0)
        snprintf(buf, len, "%s", sh->json ? "json" : "text");
    else if (strcmp(key, "record-format") == 0)
        snprintf(buf, len, "%s", sh->record_format_text);
    else if (strcmp(key, "acks") == 0)
        snprintf(buf, len, "%s", sh->acks == STREAM_ACKS_ALL ? "all" : sh->acks ? "1" : "0");
    else if (sh->partition < 0)
        snprintf(buf, len, "any");
    else
        snprintf(buf, len, "%" PRId32, sh->partition);
}

static bool is_session_key(const char *key)
{
    for (size_t i = 0; stream__shell_session_keys[i]; i++)
        if (strcmp(stream__shell_session_keys[i], key) == 0)
            return true;
    return false;
}

static int show_settings(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    stream_buf b;
    stream_buf_init(&b);
    char v[1024];
    int rc;
    if (stream__shell_want_json(sh, cmd, a)) {
        stream_json_writer w;
        stream_json_writer_init(&w, &b);
        stream_json_object_start(&w);
        for (size_t i = 0; stream__shell_session_keys[i]; i++) {
            setting_text(sh, stream__shell_session_keys[i], v, sizeof(v));
            stream_json_key(&w, stream__shell_session_keys[i]);
            stream_json_cstring(&w, v);
        }
        stream_json_object_end(&w);
        rc = stream_json_writer_ok(&w);
        stream_buf_put_u8(&b, '\n');
    } else {
        stream_table t;
        stream_table_init(&t);
        stream_table_column(&t, "SETTING", STREAM_ALIGN_LEFT);
        stream_table_column(&t, "VALUE", STREAM_ALIGN_LEFT);
        for (size_t i = 0; stream__shell_session_keys[i]; i++) {
            setting_text(sh, stream__shell_session_keys[i], v, sizeof(v));
            stream_table_cell(&t, stream__shell_session_keys[i]);
            stream_table_cell(&t, v);
        }
        rc = stream_table_render(&t, &b);
        stream_table_release(&t);
    }
    if (rc == 0)
        rc = stream_buf_ok(&b);
    return stream__shell_emit(sh, &b, rc);
}

static int run_set(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos == 0)
        return show_settings(sh, cmd, a);
    const char *key = a->pos[0];
    if (!is_session_key(key))
        return stream__shell_usage(
            sh, cmd, "unknown setting '%s' (format, record-format, acks, partition)", key);
    if (a->npos == 1) {
        char v[1024];
        setting_text(sh, key, v, sizeof(v));
        stream_buf b;
        stream_buf_init(&b);
        stream_buf_put(&b, v, strlen(v));
        stream_buf_put_u8(&b, '\n');
        return stream__shell_emit(sh, &b, stream_buf_ok(&b));
    }
    if (a->npos > 2)
        return stream__shell_usage(sh, cmd, "set takes one value (quote it if it has blanks)");
    const char *value = a->pos[1];
    char err[512];
    if (strcmp(key, "format") == 0) {
        if (strcmp(value, "json") != 0 && strcmp(value, "text") != 0)
            return stream__shell_usage(sh, cmd, "format is text or json, not '%s'", value);
        sh->json = strcmp(value, "json") == 0;
    } else if (strcmp(key, "record-format") == 0) {
        stream_format *f;
        char *copy = strdup(value);
        if (copy == NULL)
            return stream__shell_usage(sh, cmd, "out of memory");
        if (stream_format_compile(value, &f, err, sizeof(err)) != 0) {
            free(copy);
            return stream__shell_usage(sh, cmd, "record-format: %s", err);
        }
        stream_format_free(sh->record_format);
        free(sh->record_format_text);
        sh->record_format = f;
        sh->record_format_text = copy;
    } else if (strcmp(key, "acks") == 0) {
        int acks;
        if (stream_cli_parse_acks(value, &acks, err, sizeof(err)) != 0)
            return stream__shell_usage(sh, cmd, "acks: %s", err);
        sh->acks = acks;
    } else {
        int32_t part = STREAM_PARTITION_ANY;
        if (strcmp(value, "any") != 0 && !parse_partition(value, &part))
            return stream__shell_usage(sh, cmd, "partition is a number from 0 or 'any', not '%s'",
                                       value);
        sh->partition = part;
    }
    return STREAM_STATUS_OK;
}

/* ---- help, quit ------------------------------------------------------------------------ */

static int run_help(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos > 1)
        return stream__shell_usage(sh, cmd, "help takes at most one command");
    stream_buf b;
    stream_buf_init(&b);
    int rc = stream_shell_help(&b, a->npos ? a->pos[0] : NULL);
    if (rc == STREAM_ENOENT) {
        stream_buf_release(&b);
        return stream__shell_usage(sh, cmd, "no command '%s'", a->pos[0]);
    }
    return stream__shell_emit(sh, &b, rc);
}

static int run_quit(stream_shell *sh, const stream__shell_cmd *cmd, stream__shell_args *a)
{
    if (a->npos > 0)
        return stream__shell_usage(sh, cmd, "quit takes no arguments");
    sh->quit = true;
    return STREAM_STATUS_OK;
}

/* ---- the table ---------------------------------------------------------------------- */

static const stream__shell_opt json_only[] = {{0, "json", SH_ARG_NONE}, {0, NULL, SH_ARG_NONE}};
static const stream__shell_opt no_opts[] = {{0, NULL, SH_ARG_NONE}};
static const stream__shell_opt create_opts[] = {
    {'p', "partitions", SH_ARG_TEXT},  {'r', "replication-factor", SH_ARG_TEXT},
    {'c', "config", SH_ARG_CONFIG_KV}, {0, "if-not-exists", SH_ARG_NONE},
    {0, "json", SH_ARG_NONE},          {0, NULL, SH_ARG_NONE},
};
static const stream__shell_opt describe_opts[] = {
    {0, "all-configs", SH_ARG_NONE}, {0, "json", SH_ARG_NONE}, {0, NULL, SH_ARG_NONE}};
static const stream__shell_opt alter_opts[] = {{'p', "partitions", SH_ARG_TEXT},
                                               {'c', "config", SH_ARG_CONFIG_KV},
                                               {0, "delete-config", SH_ARG_CONFIG_KEY},
                                               {0, "json", SH_ARG_NONE},
                                               {0, NULL, SH_ARG_NONE}};
static const stream__shell_opt delete_opts[] = {
    {0, "if-exists", SH_ARG_NONE}, {0, "json", SH_ARG_NONE}, {0, NULL, SH_ARG_NONE}};
static const stream__shell_opt pub_opts[] = {{'p', "partition", SH_ARG_TEXT},
                                             {'H', "header", SH_ARG_TEXT},
                                             {0, "json", SH_ARG_NONE},
                                             {0, NULL, SH_ARG_NONE}};
static const stream__shell_opt sub_opts[] = {{'p', "partition", SH_ARG_TEXT},
                                             {'e', "exit", SH_ARG_NONE},
                                             {0, "latest-per-key", SH_ARG_NONE},
                                             {0, "json", SH_ARG_NONE},
                                             {0, NULL, SH_ARG_NONE}};
static const stream__shell_keyword sub_keywords[] = {
    {"from", SH_ARG_OFFSET}, {"count", SH_ARG_TEXT}, {NULL, SH_ARG_NONE}};
static const stream__shell_opt reset_opts[] = {
    {0, "topic", SH_ARG_TOPIC},    {0, "to-earliest", SH_ARG_NONE}, {0, "to-latest", SH_ARG_NONE},
    {0, "to-offset", SH_ARG_TEXT}, {0, "to-datetime", SH_ARG_TEXT}, {0, "shift-by", SH_ARG_TEXT},
    {0, "execute", SH_ARG_NONE},   {0, "json", SH_ARG_NONE},        {0, NULL, SH_ARG_NONE}};

static const stream__shell_cmd table[] = {
    {{"connect", "[HOST:PORT[,HOST:PORT]...]", "connect to a broker (again)"},
     "Connects to the brokers given (or again to the current ones) and makes them the\n"
     "session's; when they cannot be reached, the current connection is kept.\n"
     "Example: connect 127.0.0.1:9292\n",
     no_opts,
     SH_ARG_TEXT,
     SH_ARG_NONE,
     NULL,
     run_connect},
    {{"topics", "[--json]", "list the topics"},
     "A table of every topic with its partition count.\n",
     json_only,
     SH_ARG_NONE,
     SH_ARG_NONE,
     NULL,
     run_topics},
    {{"create", "TOPIC... [-p N] [-r N] [-c KEY=VALUE]... [--if-not-exists] [--json]",
      "create topics"},
     "Creates topics with N partitions (default: the broker's num.partitions), -r\n"
     "replicas of each (default: default.replication.factor) and the topic settings\n"
     "given, as stream-topics create does.\n"
     "Example: create orders -p 3 -r 3 -c retention.ms=86400000\n",
     create_opts,
     SH_ARG_TEXT,
     SH_ARG_TEXT,
     NULL,
     run_create},
    {{"describe", "TOPIC... [--all-configs] [--json]",
      "partitions, offsets, sizes and settings of topics"},
     "Per topic: its partitions with leader, leader epoch, replicas, in-sync replicas,\n"
     "log start, high watermark, end offset and size, then the settings set on it\n"
     "(--all-configs: every setting and its source).\n",
     describe_opts,
     SH_ARG_TOPIC,
     SH_ARG_TOPIC,
     NULL,
     run_describe},
    {{"alter", "TOPIC... [-p N] [-c KEY=VALUE]... [--delete-config KEY]... [--json]",
      "add partitions, change topic settings"},
     "Adds partitions to topics so that each has N (-p: a count larger than the\n"
     "current one; partitions are never removed), sets settings on them, or returns\n"
     "settings to their defaults (--delete-config), as stream-topics alter does.\n"
     "Example: alter orders -p 6 -c retention.ms=3600000\n",
     alter_opts,
     SH_ARG_TOPIC,
     SH_ARG_TOPIC,
     NULL,
     run_alter},
    {{"delete", "TOPIC... [--if-exists] [--json]", "delete topics and their records"},
     "Deletes topics and every record in them.\n",
     delete_opts,
     SH_ARG_TOPIC,
     SH_ARG_TOPIC,
     NULL,
     run_delete},
    {{"pub", "TOPIC [-p N] [-H NAME=VALUE]... [--json] [KEY=]VALUE...",
      "publish a record per VALUE"},
     "Publishes one record per argument and prints where each was stored. KEY=VALUE\n"
     "gives the record a key (split at the first '='); a leading '=' means no key, so\n"
     "=a=b publishes the value a=b. Quote values with blanks. Uses the session's acks\n"
     "and partition (set acks, set partition) unless -p is given.\n"
     "Example: pub orders alice=\"2 apples\" bob=pear\n",
     pub_opts,
     SH_ARG_TOPIC,
     SH_ARG_TEXT,
     NULL,
     run_pub},
    {{"sub", "TOPIC [from OFFSET|@TIME] [count N] [-p N[,N]...] [-e] [--latest-per-key] [--json]",
      "read records (until Ctrl-C, the count, or the end)"},
     "Prints the records of TOPIC from OFFSET (default beginning; also end, N, -N, +N,\n"
     "@TIME, SPEC..END as in stream-sub -o) and follows new ones until Ctrl-C, which\n"
     "returns to the prompt. count N stops after N records; -e stops at the end offsets\n"
     "seen at the start; --latest-per-key reads to them and prints each key's last\n"
     "record, deleted keys left out (the table a compacted topic holds). Records are\n"
     "printed with the session's record-format, or as JSON lines with --json or set\n"
     "format json.\n"
     "Example: sub orders from -10 count 10\n",
     sub_opts,
     SH_ARG_TOPIC,
     SH_ARG_NONE,
     sub_keywords,
     run_sub},
    {{"offsets", "TOPIC [@TIME] [--json]", "first and end offsets of each partition"},
     "Per partition: the log start offset, the high watermark and the record count\n"
     "between them; with a time (2026-11-24T10:00, -1h, epoch), also the first offset\n"
     "at or after that time.\n",
     json_only,
     SH_ARG_TOPIC,
     SH_ARG_TEXT,
     NULL,
     run_offsets},
    {{"groups", "[--json]", "list consumer groups"},
     "A table of the consumer groups with their state, member count and generation.\n",
     json_only,
     SH_ARG_NONE,
     SH_ARG_NONE,
     NULL,
     run_groups},
    {{"group", "NAME [--json]", "members, assignment, committed offsets and lag of a group"},
     "Describes one consumer group: its members and their partitions, and per\n"
     "partition the committed offset, the end offset and the lag in records and in\n"
     "time (the age of the oldest record not consumed yet).\n",
     json_only,
     SH_ARG_GROUP,
     SH_ARG_NONE,
     NULL,
     run_group},
    {{"reset",
      "GROUP --to-earliest|--to-latest|--to-offset N|--to-datetime TIME|--shift-by N "
      "[--topic TOPIC[:P,...]]... [--execute] [--json]",
      "move a group's committed offsets (a plan unless --execute)"},
     "Shows the offsets a reset would commit for GROUP (every topic it has offsets\n"
     "for, or --topic TOPIC[:P,P...], repeatable); with --execute, commits them (the\n"
     "group must have no members then). --to-datetime takes the time grammar of sub.\n"
     "Example: reset billing --to-datetime -1h --topic orders --execute\n",
     reset_opts,
     SH_ARG_GROUP,
     SH_ARG_NONE,
     NULL,
     run_reset},
    {{"cluster", "[--json]", "the brokers and the metadata quorum"},
     "The cluster as the connected broker sees it: the brokers (address, registered\n"
     "or fenced, epoch) and the metadata quorum (voters, leader, term, the broker's\n"
     "applied index). A broker started without --cluster shows itself alone.\n",
     json_only,
     SH_ARG_NONE,
     SH_ARG_NONE,
     NULL,
     run_cluster},
    {{"set", "[KEY [VALUE]]", "show or change a session setting"},
     "Settings of this session (set alone lists them):\n"
     "  format text|json    tables and record-format, or JSON for everything\n"
     "  record-format FMT   how sub prints a record in text (default '%v\\n'; %t %p %o\n"
     "                      %k %v %T %D %h %K %V as in stream-sub -f)\n"
     "  acks 0|1|all        what pub waits for (default all)\n"
     "  partition N|any     the partition pub writes and sub reads (default any)\n",
     json_only,
     SH_ARG_SESSION_KEY,
     SH_ARG_SESSION_VALUE,
     NULL,
     run_set},
    {{"help", "[COMMAND]", "list the commands, or explain one"},
     "Lists the commands, or shows how to use one.\n",
     no_opts,
     SH_ARG_COMMAND,
     SH_ARG_NONE,
     NULL,
     run_help},
    {{"quit", "", "leave the shell (also exit, or Ctrl-D)"},
     "Leaves the shell.\n",
     no_opts,
     SH_ARG_NONE,
     SH_ARG_NONE,
     NULL,
     run_quit},
};

const stream__shell_cmd *stream__shell_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

const stream__shell_cmd *stream__shell_find(const char *name)
{
    if (strcmp(name, "exit") == 0)
        name = "quit";
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(table[i].info.name, name) == 0)
            return &table[i];
    return NULL;
}
