/*
 * stream-topics - list, create, describe, alter and delete topics.
 *
 * Parses options, checks names and settings locally (so a typo is reported
 * before any broker is involved), makes the admin calls of client.h and
 * prints their results with adminfmt.h: aligned tables for humans, one JSON
 * document with --json. Create, alter and delete are quiet on success.
 *
 * Exit status (stream-topics(1)): 0 ok; 1 failure, also when only some of
 * the topics named failed; 2 usage; 4 every topic named was unknown; 5
 * every topic to create already existed. A command naming several topics
 * always goes on with the rest after one fails.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "stream/adminfmt.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/proto.h"

static const char usage_text[] =
    "Usage: stream-topics [OPTION]... COMMAND [TOPIC]...\n"
    "List, create, describe, alter and delete topics.\n"
    "\n"
    "Commands:\n"
    "  list                      topic names (-v: partitions and internal flag too)\n"
    "  create TOPIC...           create topics (-p, -c, --if-not-exists)\n"
    "  describe TOPIC...         partitions, offsets, sizes and configs\n"
    "  alter TOPIC...            change configs (-c, --delete-config)\n"
    "  delete TOPIC...           delete topics and their data (--if-exists)\n"
    "\n"
    "Options:\n"
    "  -b, --brokers LIST        host:port,... (default $STREAM_BROKERS or 127.0.0.1:9292)\n"
    "  -p, --partitions N        create: partitions (default: the broker's num.partitions)\n"
    "  -c, --config KEY=VALUE    create, alter: set a topic setting (repeatable)\n"
    "      --delete-config KEY   alter: return a setting to its default (repeatable)\n"
    "      --if-not-exists       create: a topic that exists already is not an error\n"
    "      --if-exists           delete: a topic that does not exist is not an error\n"
    "      --all-configs         describe: every setting, not only those set on the topic\n"
    "      --json                print one JSON document (fields in stream-topics(1))\n"
    "  -v, --verbose             list: a table; create, alter, delete: say what was done\n"
    "  -h, --help                show this help and exit\n"
    "      --version             show the version and exit\n"
    "\n"
    "Exit status: 0 ok, 1 failure (also partial), 2 usage, 4 not found, 5 already exists.\n";

enum {
    OPT_DELETE_CONFIG = 256,
    OPT_IF_NOT_EXISTS,
    OPT_IF_EXISTS,
    OPT_ALL_CONFIGS,
    OPT_JSON,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"partitions", required_argument, NULL, 'p'},
    {"config", required_argument, NULL, 'c'},
    {"delete-config", required_argument, NULL, OPT_DELETE_CONFIG},
    {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
    {"if-exists", no_argument, NULL, OPT_IF_EXISTS},
    {"all-configs", no_argument, NULL, OPT_ALL_CONFIGS},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* What the command line asked for. */
typedef struct options {
    const char *brokers; /* -b, or NULL */
    const char *command; /* "list", "create", ... */
    char **names;        /* the TOPIC arguments (argv) */
    size_t name_count;
    int32_t partitions;       /* -p; 0: the broker's default */
    stream_config_entry *set; /* -c and --delete-config, in order (value NULL: reset) */
    size_t set_count;
    bool have_config;        /* some -c given (create may only use -c) */
    bool have_delete_config; /* some --delete-config given */
    bool if_not_exists, if_exists, all_configs, json;
} options;

/* ---- small helpers ------------------------------------------------------- */

/* A name fit for a one-line message: control characters as '?', cut at
 * about the longest valid topic name. Valid until the next call. */
static const char *shown(const char *name)
{
    static char b[STREAM_TOPIC_NAME_MAX + 8];
    size_t i = 0;
    for (; name[i] && i < STREAM_TOPIC_NAME_MAX + 4; i++)
        b[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
    b[i] = 0;
    return b;
}

/* Why a topic failed, for "cannot VERB topic 'x': WHY". Well-known codes
 * get a fixed, helpful text; the others the broker's message. */
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

/* The exit status of a command over `total` topics, given the outcomes of
 * n of them (the others succeeded); see the top of the file. */
static int exit_status(const stream_admin_outcome *o, size_t n, size_t total)
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
        return EXIT_OK;
    if (notfound == total)
        return EXIT_NOTFOUND;
    if (exists == total)
        return EXIT_EXISTS;
    return EXIT_FAIL;
}

/* Writes buf to stdout; dies when stdout fails (a full disk, a closed pipe). */
static void emit(stream_buf *buf, int rc)
{
    if (rc != 0)
        die("out of memory");
    if ((buf->len && fwrite(buf->data, 1, buf->len, stdout) != buf->len) || fflush(stdout) != 0)
        die("cannot write to standard output");
}

/* "topic settings: a, b, c" (from the settings table) for a message about
 * an unknown setting. */
static void topic_settings_list(char *out, size_t len)
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

/* Checks -c / --delete-config against the settings table, as the broker
 * will, so a typo is a usage error before anything is sent. */
static void check_settings(const options *o)
{
    stream_config *cfg = stream_config_new_topic();
    if (cfg == NULL)
        die("out of memory");
    for (size_t i = 0; i < o->set_count; i++) {
        const stream_config_entry *e = &o->set[i];
        char err[512], list[1024];
        int rc = e->value ? stream_config_set(cfg, e->name, e->value, err, sizeof(err))
                          : stream_config_unset(cfg, e->name, err, sizeof(err));
        if (rc == 0)
            continue;
        stream_config_free(cfg); /* before exiting: leak checkers would say so */
        const stream_config_setting *s = stream_config_setting_find(e->name, false);
        if (s == NULL || s->scope != STREAM_CONFIG_SCOPE_TOPIC) {
            topic_settings_list(list, sizeof(list));
            usage_error("%s (%s)", err, list);
        }
        usage_error("%s", err);
    }
    stream_config_free(cfg);
}

static stream_admin_outcome outcome(const char *topic, const char *status, int err, const char *msg)
{
    return (stream_admin_outcome){.topic = topic, .status = status, .err = err, .msg = msg};
}

/* Checks a topic name locally: 0, or EBADNAME with the outcome filled. */
static int check_name(const char *name, stream_admin_outcome *o)
{
    if (stream_topic_name_check(name, strlen(name), NULL, 0) == 0)
        return 0;
    *o = outcome(name, "failed", STREAM_EBADNAME, NULL);
    return STREAM_EBADNAME;
}

/* Reports each failed outcome on stderr: "cannot VERB topic 'x': why". */
static void report_failures(const stream_admin_outcome *o, size_t n, const char *verb)
{
    for (size_t i = 0; i < n; i++)
        if (o[i].err)
            warn("cannot %s topic '%s': %s", verb, shown(o[i].topic), cause(o[i].err, o[i].msg));
}

/* Prints the outcomes (JSON, or with -v one line per topic) and returns the
 * exit status. */
static int finish_outcomes(const options *o, const stream_admin_outcome *out, size_t n,
                           const char *verb)
{
    report_failures(out, n, verb);
    stream_buf buf;
    stream_buf_init(&buf);
    if (o->json) {
        emit(&buf, stream_adminfmt_outcomes_json(&buf, out, n));
    } else if (cmd_verbosity >= 2) {
        for (size_t i = 0; i < n; i++) {
            if (out[i].err)
                continue;
            const char *name = shown(out[i].topic);
            if (strcmp(out[i].status, "exists") == 0)
                printf("topic '%s' exists already\n", name);
            else if (strcmp(out[i].status, "absent") == 0)
                printf("topic '%s' does not exist\n", name);
            else
                printf("%s topic '%s'\n", out[i].status, name);
        }
        if (fflush(stdout) != 0)
            die("cannot write to standard output");
    }
    stream_buf_release(&buf);
    return exit_status(out, n, n);
}

/* ---- the connection ---------------------------------------------------------- */

static stream_client *the_client; /* connected on first use */

/* The client, connected now if it is not yet (so a command whose topics all
 * fail the local checks never needs a broker). Dies when none answers. */
static stream_client *client(const options *o)
{
    if (the_client)
        return the_client;
    char err[512];
    int rc = stream_cli_connect(cmd_brokers(o->brokers), "stream-topics", 0, &the_client, err,
                                sizeof(err));
    if (rc == STREAM_EINVAL)
        usage_error("%s", err); /* a broker list that does not parse */
    if (rc != 0)
        die("%s", err);
    return the_client;
}

/* ---- commands ------------------------------------------------------------- */

static int cmd_list(const options *o)
{
    char err[512];
    stream_metadata *md = NULL;
    int rc = stream_client_metadata(client(o), NULL, 0, -1, &md, err, sizeof(err));
    if (rc != 0)
        die("cannot list topics: %s", err);
    stream_buf buf;
    stream_buf_init(&buf);
    emit(&buf, o->json ? stream_adminfmt_list_json(&buf, md)
                       : stream_adminfmt_list_text(&buf, md, cmd_verbosity >= 2));
    stream_buf_release(&buf);
    stream_metadata_free(md);
    return EXIT_OK;
}

static int cmd_create(const options *o)
{
    size_t n = o->name_count;
    stream_admin_outcome *out = calloc(n, sizeof(*out));
    stream_new_topic *req = calloc(n, sizeof(*req));
    size_t *slot = calloc(n, sizeof(*slot)); /* req[k] is for out[slot[k]] */
    if (out == NULL || req == NULL || slot == NULL)
        die("out of memory");
    size_t nreq = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_name(o->names[i], &out[i]) != 0)
            continue;
        req[nreq] = (stream_new_topic){.name = o->names[i],
                                       .partitions = o->partitions,
                                       .configs = o->set,
                                       .config_count = o->set_count};
        slot[nreq++] = i;
    }
    stream_topic_result *res = NULL;
    char err[512];
    if (nreq > 0) {
        int rc = stream_admin_create_topics(client(o), req, nreq, -1, &res, err, sizeof(err));
        if (rc != 0)
            die("cannot create topics: %s", err);
    }
    for (size_t k = 0; k < nreq; k++) {
        stream_admin_outcome *oc = &out[slot[k]];
        int e = res[k].err;
        if (e == STREAM_ETOPICEXISTS && o->if_not_exists)
            *oc = outcome(o->names[slot[k]], "exists", 0, NULL);
        else
            *oc = outcome(o->names[slot[k]], e ? "failed" : "created", e, res[k].msg);
    }
    int status = finish_outcomes(o, out, n, "create");
    stream_topic_results_free(res, nreq);
    free(slot);
    free(req);
    free(out);
    return status;
}

static int cmd_delete(const options *o)
{
    size_t n = o->name_count;
    stream_admin_outcome *out = calloc(n, sizeof(*out));
    const char **req = calloc(n, sizeof(*req));
    size_t *slot = calloc(n, sizeof(*slot));
    if (out == NULL || req == NULL || slot == NULL)
        die("out of memory");
    size_t nreq = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_name(o->names[i], &out[i]) != 0)
            continue;
        req[nreq] = o->names[i];
        slot[nreq++] = i;
    }
    stream_topic_result *res = NULL;
    char err[512];
    if (nreq > 0) {
        int rc = stream_admin_delete_topics(client(o), req, nreq, -1, &res, err, sizeof(err));
        if (rc != 0)
            die("cannot delete topics: %s", err);
    }
    for (size_t k = 0; k < nreq; k++) {
        stream_admin_outcome *oc = &out[slot[k]];
        int e = res[k].err;
        if (e == STREAM_ENOTOPIC && o->if_exists)
            *oc = outcome(req[k], "absent", 0, NULL);
        else
            *oc = outcome(req[k], e ? "failed" : "deleted", e, res[k].msg);
    }
    int status = finish_outcomes(o, out, n, "delete");
    stream_topic_results_free(res, nreq);
    free(slot);
    free(req);
    free(out);
    return status;
}

static int cmd_alter(const options *o)
{
    size_t n = o->name_count;
    stream_admin_outcome *out = calloc(n, sizeof(*out));
    stream_topic_result **res = calloc(n, sizeof(*res));
    if (out == NULL || res == NULL)
        die("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (check_name(o->names[i], &out[i]) != 0)
            continue;
        char err[512];
        int rc = stream_admin_alter_configs(client(o), o->names[i], o->set, o->set_count, -1,
                                            &res[i], err, sizeof(err));
        if (rc != 0)
            die("cannot alter topic '%s': %s", shown(o->names[i]), err);
        int e = res[i]->err;
        out[i] = outcome(o->names[i], e ? "failed" : "altered", e, res[i]->msg);
    }
    int status = finish_outcomes(o, out, n, "alter");
    for (size_t i = 0; i < n; i++)
        stream_topic_results_free(res[i], res[i] ? 1 : 0);
    free(res);
    free(out);
    return status;
}

static const stream_topic_meta *find_topic(const stream_metadata *md, const char *name)
{
    for (size_t i = 0; i < md->topic_count; i++)
        if (strcmp(md->topics[i].name, name) == 0)
            return &md->topics[i];
    return NULL;
}

static int cmd_describe(const options *o)
{
    size_t n = o->name_count;
    stream_admin_outcome *errs = calloc(n, sizeof(*errs));
    stream_topic_description *desc = calloc(n, sizeof(*desc));
    const char **names = calloc(n, sizeof(*names));
    if (errs == NULL || desc == NULL || names == NULL)
        die("out of memory");
    size_t nerr = 0, nnames = 0;
    for (size_t i = 0; i < n; i++)
        if (check_name(o->names[i], &errs[nerr]) != 0)
            nerr++;
        else
            names[nnames++] = o->names[i];

    char err[512];
    stream_metadata *md = NULL;
    size_t ndesc = 0;
    if (nnames > 0) {
        if (stream_client_metadata(client(o), names, nnames, -1, &md, err, sizeof(err)) != 0)
            die("cannot describe topics: %s", err);
        for (size_t i = 0; i < nnames; i++) {
            const stream_topic_meta *tm = find_topic(md, names[i]);
            if (tm && tm->err == 0) {
                desc[ndesc++].meta = tm;
                continue;
            }
            int e = tm ? tm->err : STREAM_ENOTOPIC;
            errs[nerr++] = outcome(names[i], "failed", e, NULL);
        }
    }
    /* The configs of the topics that exist, in one request. */
    stream_topic_config *cfgs = NULL;
    if (ndesc > 0) {
        for (size_t i = 0; i < ndesc; i++)
            names[i] = desc[i].meta->name;
        if (stream_admin_describe_configs(client(o), names, ndesc, -1, &cfgs, err, sizeof(err)) !=
            0)
            die("cannot describe topic configs: %s", err);
        for (size_t i = 0; i < ndesc; i++)
            desc[i].config = &cfgs[i];
    }

    report_failures(errs, nerr, "describe");
    unsigned flags = o->all_configs ? STREAM_ADMINFMT_ALL_CONFIGS : 0;
    stream_buf buf;
    stream_buf_init(&buf);
    if (o->json)
        emit(&buf, stream_adminfmt_describe_json(&buf, desc, ndesc, errs, nerr, flags));
    else
        emit(&buf, stream_adminfmt_describe_text(&buf, desc, ndesc, flags));
    stream_buf_release(&buf);

    int status = exit_status(errs, nerr, n);
    stream_topic_configs_free(cfgs, ndesc);
    stream_metadata_free(md);
    free(names);
    free(desc);
    free(errs);
    return status;
}

/* ---- main ------------------------------------------------------------------ */

static void add_setting(options *o, const char *name, const char *value)
{
    stream_config_entry *s = realloc(o->set, (o->set_count + 1) * sizeof(*s));
    if (s == NULL)
        die("out of memory");
    o->set = s;
    o->set[o->set_count++] = (stream_config_entry){.name = name, .value = value};
}

static void parse_options(int argc, char **argv, options *o)
{
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":b:p:c:vh", long_options, NULL)) != -1) {
        switch (opt) {
        case 'b':
            o->brokers = optarg;
            break;
        case 'p':
            o->partitions =
                (int32_t)cmd_parse_int(optarg, 1, STREAM_CONFIG_PARTITIONS_MAX, "partition count");
            break;
        case 'c': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg)
                usage_error("invalid setting '%s' (expected KEY=VALUE)", optarg);
            *eq = '\0'; /* argv is ours to split */
            add_setting(o, optarg, eq + 1);
            o->have_config = true;
            break;
        }
        case OPT_DELETE_CONFIG:
            if (*optarg == '\0')
                usage_error("--delete-config needs a setting name");
            add_setting(o, optarg, NULL);
            o->have_delete_config = true;
            break;
        case OPT_IF_NOT_EXISTS:
            o->if_not_exists = true;
            break;
        case OPT_IF_EXISTS:
            o->if_exists = true;
            break;
        case OPT_ALL_CONFIGS:
            o->all_configs = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'v':
            cmd_verbosity++;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL);
        case OPT_VERSION:
            cmd_version();
        case ':':
            usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        usage_error("missing command (list, create, describe, alter or delete)");
    o->command = argv[optind];
    o->names = argv + optind + 1;
    o->name_count = (size_t)(argc - optind - 1);
}

/* Refuses options that mean nothing to the command, and missing topics. */
static void check_command(const options *o)
{
    const char *cmd = o->command;
    bool is_list = strcmp(cmd, "list") == 0, is_create = strcmp(cmd, "create") == 0,
         is_describe = strcmp(cmd, "describe") == 0, is_alter = strcmp(cmd, "alter") == 0,
         is_delete = strcmp(cmd, "delete") == 0;
    if (!is_list && !is_create && !is_describe && !is_alter && !is_delete)
        usage_error("unknown command '%s' (expected list, create, describe, alter or delete)",
                    shown(cmd));
    if (is_list && o->name_count > 0)
        usage_error("list takes no topic names ('%s')", shown(o->names[0]));
    if (!is_list && o->name_count == 0)
        usage_error("%s needs at least one topic name", cmd);
    struct {
        bool given, allowed;
        const char *flag, *where;
    } rules[] = {
        {o->partitions != 0, is_create, "-p/--partitions", "create"},
        {o->have_config, is_create || is_alter, "-c/--config", "create and alter"},
        {o->have_delete_config, is_alter, "--delete-config", "alter"},
        {o->if_not_exists, is_create, "--if-not-exists", "create"},
        {o->if_exists, is_delete, "--if-exists", "delete"},
        {o->all_configs, is_describe, "--all-configs", "describe"},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (rules[i].given && !rules[i].allowed)
            usage_error("%s is for %s only, not %s", rules[i].flag, rules[i].where, cmd);
    if (is_alter && o->set_count == 0)
        usage_error("alter needs -c KEY=VALUE or --delete-config KEY");
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    options o = {0};
    parse_options(argc, argv, &o);
    check_command(&o);
    check_settings(&o);

    int status;
    if (strcmp(o.command, "list") == 0)
        status = cmd_list(&o);
    else if (strcmp(o.command, "create") == 0)
        status = cmd_create(&o);
    else if (strcmp(o.command, "describe") == 0)
        status = cmd_describe(&o);
    else if (strcmp(o.command, "alter") == 0)
        status = cmd_alter(&o);
    else
        status = cmd_delete(&o);
    stream_client_free(the_client);
    free(o.set);
    return status;
}
