/*
 * shell_session.c - a stream-shell session (see shell.h): its settings, its
 * client, connection-loss reporting, running lines, and the cache of names
 * for completion. The commands are in shell_cmds.c.
 *
 * Connection loss is not fatal: before a command the session looks at the
 * connection without waiting (a broker that restarted has closed it) and
 * says so once; the command's operation then connects again, and a
 * successful reconnect is reported too. A command that cannot reach the
 * broker fails with the connect line and the prompt comes back.
 *
 * Names for completion are fetched with a request bounded by
 * names_timeout_ms when the cache is older than names_ttl_ms; the attempt
 * is recorded before it is made, so a dead broker costs one short wait per
 * TTL and Tab never hangs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "shell_internal.h"
#include "stream/error.h"
#include "stream/ops.h"

/* ---- messages and output ------------------------------------------------------- */

void stream__shell_msg(stream_shell *sh, stream_shell_msg_kind kind, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    sh->conf.message(sh->conf.arg, kind, line);
}

/* Writes the buffer (rc: how building it went). Returns a status. */
int stream__shell_emit(stream_shell *sh, stream_buf *b, int rc)
{
    if (rc == 0 && b->len > 0)
        rc = sh->conf.write(sh->conf.arg, b->data, b->len);
    stream_buf_release(b);
    if (rc == 0)
        return STREAM_STATUS_OK;
    if (rc != STREAM_ECLOSED)
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "cannot write output: %s", stream_strerror(rc));
    return STREAM_STATUS_FAIL;
}

int stream__shell_usage(stream_shell *sh, const stream__shell_cmd *cmd, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s (usage: %s %s)", line, cmd->info.name,
                      cmd->info.synopsis);
    return STREAM_STATUS_USAGE;
}

int64_t stream__shell_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t stream__shell_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- options of a parsed command ------------------------------------------------ */

/* The index in cmd->opts of the option with this long name (it must exist). */
int stream__shell_opt_index(const stream__shell_cmd *cmd, const char *long_name)
{
    for (int i = 0; cmd->opts && (cmd->opts[i].short_name || cmd->opts[i].long_name); i++)
        if (cmd->opts[i].long_name && strcmp(cmd->opts[i].long_name, long_name) == 0)
            return i;
    return -1;
}

bool stream__shell_has_flag(const stream__shell_cmd *cmd, const stream__shell_args *a,
                            const char *name)
{
    int k = stream__shell_opt_index(cmd, name);
    for (size_t i = 0; i < a->nopt; i++)
        if (a->opt[i].index == k)
            return true;
    return false;
}

/* The last value given for an option, or NULL. */
const char *stream__shell_opt_value(const stream__shell_cmd *cmd, const stream__shell_args *a,
                                    const char *name)
{
    int k = stream__shell_opt_index(cmd, name);
    const char *v = NULL;
    for (size_t i = 0; i < a->nopt; i++)
        if (a->opt[i].index == k)
            v = a->opt[i].value;
    return v;
}

bool stream__shell_want_json(stream_shell *sh, const stream__shell_cmd *cmd,
                             const stream__shell_args *a)
{
    return sh->json || stream__shell_has_flag(cmd, a, "json");
}

/* ---- the connection -------------------------------------------------------------- */

int stream__shell_new_client(stream_shell *sh, const char *brokers, stream_client **out,
                             char *errbuf, size_t errbuf_len)
{
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = brokers;
    conf.client_name = sh->client_name;
    conf.connect_timeout_ms = sh->conf.connect_timeout_ms;
    conf.request_timeout_ms = sh->conf.request_timeout_ms;
    if (sh->conf.client != NULL) {
        conf.tls = sh->conf.client->tls;
        conf.tls_ca_file = sh->conf.client->tls_ca_file;
        conf.tls_cert_file = sh->conf.client->tls_cert_file;
        conf.tls_key_file = sh->conf.client->tls_key_file;
    }
    return stream_client_new(&conf, out, errbuf, errbuf_len);
}

/* The client, created (not connected) on first use. NULL only when out of
 * memory (reported). */
stream_client *stream__shell_client(stream_shell *sh)
{
    if (sh->client)
        return sh->client;
    char err[512];
    if (stream__shell_new_client(sh, sh->brokers, &sh->client, err, sizeof(err)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        sh->client = NULL;
    }
    return sh->client;
}

/* Before a command: report a connection the broker closed, once. */
static void link_check(stream_shell *sh)
{
    if (sh->client == NULL)
        return;
    stream_client_poll(sh->client, 0);
    if (sh->was_connected && !stream_client_connected(sh->client)) {
        stream__shell_msg(sh, STREAM_SHELL_WARNING, "connection to %s lost; reconnecting",
                          stream_client_broker(sh->client));
        sh->lost = true;
    }
    sh->was_connected = stream_client_connected(sh->client);
}

/* After a command: report a reconnect after a loss. */
static void link_done(stream_shell *sh)
{
    if (sh->client == NULL)
        return;
    bool now = stream_client_connected(sh->client);
    if (now && sh->lost) {
        stream__shell_msg(sh, STREAM_SHELL_NOTICE, "reconnected to %s",
                          stream_client_broker(sh->client));
        sh->lost = false;
    }
    sh->was_connected = now;
}

void stream_shell_poll(stream_shell *sh)
{
    link_check(sh);
}

void stream__shell_names_clear(stream__shell_names *nc)
{
    for (size_t i = 0; i < nc->count; i++)
        free(nc->names[i]);
    free(nc->names);
    memset(nc, 0, sizeof(*nc));
}

/* ---- the session ---------------------------------------------------------------------- */

int stream_shell_new(const stream_shell_conf *conf, stream_shell **out, char *errbuf,
                     size_t errbuf_len)
{
    *out = NULL;
    if (conf == NULL || conf->write == NULL || conf->message == NULL) {
        snprintf(errbuf, errbuf_len, "a shell needs write and message callbacks");
        return STREAM_EINVAL;
    }
    stream_shell *sh = calloc(1, sizeof(*sh));
    if (sh == NULL)
        return STREAM_ENOMEM;
    sh->conf = *conf;
    if (sh->conf.connect_timeout_ms <= 0)
        sh->conf.connect_timeout_ms = 5000;
    if (sh->conf.request_timeout_ms <= 0)
        sh->conf.request_timeout_ms = 30000;
    if (sh->conf.names_ttl_ms <= 0)
        sh->conf.names_ttl_ms = 5000;
    if (sh->conf.names_timeout_ms <= 0)
        sh->conf.names_timeout_ms = 500;
    sh->brokers = strdup(conf->brokers && *conf->brokers ? conf->brokers : STREAM_DEFAULT_BROKERS);
    sh->client_name = strdup(conf->client_name ? conf->client_name : "stream-shell");
    sh->record_format_text = strdup(STREAM__SHELL_RECORD_FORMAT);
    sh->json = conf->json;
    sh->acks = STREAM_ACKS_ALL;
    sh->partition = STREAM_PARTITION_ANY;
    int rc = STREAM_ENOMEM;
    if (sh->brokers == NULL || sh->client_name == NULL || sh->record_format_text == NULL)
        goto fail;
    if ((rc = stream_format_compile(STREAM__SHELL_RECORD_FORMAT, &sh->record_format, errbuf,
                                    errbuf_len)) != 0)
        goto fail;
    /* Check the broker list now: a typo is the user's to fix at start. */
    if ((rc = stream__shell_new_client(sh, sh->brokers, &sh->client, errbuf, errbuf_len)) != 0)
        goto fail;
    *out = sh;
    return 0;
fail:
    stream_shell_free(sh);
    return rc;
}

void stream_shell_free(stream_shell *sh)
{
    if (sh == NULL)
        return;
    stream_client_free(sh->client);
    stream_format_free(sh->record_format);
    stream__shell_names_clear(&sh->names[0]);
    stream__shell_names_clear(&sh->names[1]);
    free(sh->record_format_text);
    free(sh->client_name);
    free(sh->brokers);
    free(sh);
}

int stream_shell_connect(stream_shell *sh)
{
    stream_client *c = stream__shell_client(sh);
    if (c == NULL)
        return STREAM_ENOMEM;
    char err[1024];
    int rc = stream_ops_connect(c, -1, err, sizeof(err));
    if (rc == 0)
        stream__shell_msg(sh, STREAM_SHELL_NOTICE, "connected to %s", stream_client_broker(c));
    else
        stream__shell_msg(sh, STREAM_SHELL_WARNING, "%s; commands will try again", err);
    sh->was_connected = rc == 0;
    return rc;
}

int stream_shell_run(stream_shell *sh, size_t argc, char **argv)
{
    if (argc == 0)
        return STREAM_STATUS_OK;
    const stream__shell_cmd *cmd = stream__shell_find(argv[0]);
    if (cmd == NULL) {
        char shown[64];
        size_t i = 0;
        for (; argv[0][i] && i + 1 < sizeof(shown); i++)
            shown[i] = (unsigned char)argv[0][i] < 0x20 ? '?' : argv[0][i];
        shown[i] = '\0';
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "unknown command '%s' (help lists the commands)",
                          shown);
        return STREAM_STATUS_USAGE;
    }
    /* getopt gathers the positionals in place: give it a copy of argv. */
    char **words = malloc((argc + 1) * sizeof(*words));
    if (words == NULL) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "out of memory");
        return STREAM_STATUS_FAIL;
    }
    memcpy(words, argv, argc * sizeof(*words));
    words[argc] = NULL;
    stream__shell_args a;
    char err[512];
    int status;
    if (stream__shell_getopt(cmd, argc, words, &a, err, sizeof(err)) != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        status = STREAM_STATUS_USAGE;
    } else {
        link_check(sh);
        status = cmd->run(sh, cmd, &a);
        link_done(sh);
    }
    free(words);
    return status;
}

int stream_shell_run_line(stream_shell *sh, const char *line, bool keep_going)
{
    stream_shell_line l;
    char err[256];
    int rc = stream_shell_parse(line, strlen(line), 0, &l, err, sizeof(err));
    if (rc != 0) {
        stream__shell_msg(sh, STREAM_SHELL_ERROR, "%s", err);
        return rc == STREAM_ENOMEM ? STREAM_STATUS_FAIL : STREAM_STATUS_USAGE;
    }
    int failed = STREAM_STATUS_OK;
    for (size_t i = 0; i < l.count; i++) {
        int st = stream_shell_run(sh, l.cmds[i].argc, l.cmds[i].argv);
        if (st != STREAM_STATUS_OK)
            failed = st;
        if ((st != STREAM_STATUS_OK && !keep_going) || sh->quit ||
            (sh->conf.interrupt && *sh->conf.interrupt))
            break;
    }
    stream_shell_line_release(&l);
    return failed;
}

bool stream_shell_quit_requested(const stream_shell *sh)
{
    return sh->quit;
}

const char *stream_shell_broker(const stream_shell *sh)
{
    if (sh->client && stream_client_connected(sh->client))
        return stream_client_broker(sh->client);
    return sh->brokers;
}

bool stream_shell_connected(const stream_shell *sh)
{
    return sh->client && stream_client_connected(sh->client);
}

/* ---- names for completion ---------------------------------------------------------------- */

static void refresh_topics(stream_shell *sh, stream__shell_names *nc)
{
    stream_client *c = stream__shell_client(sh);
    stream_metadata *md = NULL;
    if (c == NULL ||
        stream_client_metadata(c, NULL, 0, sh->conf.names_timeout_ms, &md, NULL, 0) != 0)
        return; /* keep what we had */
    char **names = calloc(md->topic_count + 1, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; names && i < md->topic_count; i++)
        if ((names[n] = strdup(md->topics[i].name)) != NULL)
            n++;
    stream_metadata_free(md);
    if (names == NULL)
        return;
    int64_t when = nc->fetched_ms;
    stream__shell_names_clear(nc);
    nc->names = names;
    nc->count = n;
    nc->fetched_ms = when;
    nc->fetched = true;
}

static void refresh_groups(stream_shell *sh, stream__shell_names *nc)
{
    stream_client *c = stream__shell_client(sh);
    stream_group_listing *g = NULL;
    size_t n = 0;
    if (c == NULL || stream_admin_list_groups(c, sh->conf.names_timeout_ms, &g, &n, NULL, 0) != 0)
        return; /* keep what we had */
    char **names = calloc(n + 1, sizeof(*names));
    size_t k = 0;
    for (size_t i = 0; names && i < n; i++)
        if ((names[k] = strdup(g[i].group)) != NULL)
            k++;
    stream_group_listings_free(g, n);
    if (names == NULL)
        return;
    int64_t when = nc->fetched_ms;
    stream__shell_names_clear(nc);
    nc->names = names;
    nc->count = k;
    nc->fetched_ms = when;
    nc->fetched = true;
}

static void names_for(void *arg, stream_shell_name_kind kind, const char *const **list, size_t *n)
{
    stream_shell *sh = arg;
    stream__shell_names *nc = &sh->names[kind];
    int64_t now = stream__shell_mono_ms();
    if (!nc->fetched || now - nc->fetched_ms >= sh->conf.names_ttl_ms) {
        /* Mark the attempt first: a failed refresh is not retried before
         * the TTL passes again, so Tab never waits twice in a row. */
        nc->fetched = true;
        nc->fetched_ms = now;
        if (kind == STREAM_SHELL_NAMES_TOPICS)
            refresh_topics(sh, nc);
        else
            refresh_groups(sh, nc);
    }
    *list = (const char *const *)nc->names;
    *n = nc->count;
}

int stream_shell_complete(stream_shell *sh, const char *text, size_t len,
                          stream_shell_candidates *out)
{
    return stream_shell_complete_text(text, len, names_for, sh, out);
}
