/*
 * stream-topics - list, create, describe, alter and delete topics; list,
 * describe and delete consumer groups and reset their offsets; describe the
 * cluster.
 *
 * Parses options, checks names and settings locally (so a typo is reported
 * before any broker is involved), makes the admin calls of client.h and
 * prints their results with adminfmt.h: aligned tables for humans, one JSON
 * document with --json. Create, alter and delete are quiet on success.
 *
 * Exit status (stream-topics(1)): 0 ok; 1 failure, also when only some of
 * the topics named failed; 2 usage; 4 every topic named was unknown; 5
 * every topic to create already existed. A command naming several topics
 * always goes on with the rest after one fails. Group commands: 4 when the
 * group does not exist; a reset prints its plan and changes nothing
 * without --execute.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "stream/adminfmt.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/ops.h"
#include "stream/proto.h"
#include "stream/timespec.h"

static const char usage_text[] =
    "Usage: stream-topics [OPTION]... COMMAND [TOPIC]...\n"
    "   or: stream-topics [OPTION]... groups | group NAME | cluster\n"
    "List, create, describe, alter and delete topics; show consumer groups and\n"
    "reset their offsets; show the cluster.\n"
    "\n"
    "Commands:\n"
    "  list                      topic names (-v: partitions and internal flag too)\n"
    "  create TOPIC...           create topics (-p, -r, -c, --if-not-exists)\n"
    "  describe TOPIC...         partitions, offsets, sizes and configs\n"
    "  alter TOPIC...            add partitions (-p N), change configs (-c, --delete-config)\n"
    "  delete TOPIC...           delete topics and their data (--if-exists)\n"
    "  groups                    consumer groups: state, members, generation\n"
    "  group NAME                a group: members, assignment, committed offsets, lag\n"
    "                            in records and in time\n"
    "  group NAME --reset-offsets --to-earliest|--to-latest|--to-offset N|\n"
    "            --to-datetime TIME|--shift-by N [--topic T[:P,..]]... [--execute]\n"
    "                            show the plan; move the offsets only with --execute\n"
    "                            (the group must have no members)\n"
    "  group NAME --delete       delete a group without members and its offsets\n"
    "  cluster                   brokers (address, registered or fenced) and the\n"
    "                            metadata quorum (voters, leader, term, applied index)\n"
    "\n"
    "Options:\n"
    "  -b, --brokers LIST        host:port,... (default $STREAM_BROKERS or 127.0.0.1:9292)\n"
    CMD_TLS_HELP("      --key FILE            its PEM private key\n")
    "  -p, --partitions N        create: partitions (default: the broker's num.partitions);\n"
    "                            alter: the new, larger count (partitions are only added)\n"
    "  -r, --replication-factor N  create: replicas of each partition (default: the\n"
    "                            broker's default.replication.factor)\n"
    "  -c, --config KEY=VALUE    create, alter: set a topic setting (repeatable)\n"
    "      --delete-config KEY   alter: return a setting to its default (repeatable)\n"
    "      --if-not-exists       create: a topic that exists already is not an error\n"
    "      --if-exists           delete: a topic that does not exist is not an error\n"
    "      --all-configs         describe: every setting, not only those set on the topic\n"
    "      --json                print one JSON document (fields in stream-topics(1))\n"
    "      --timeout-ms MS       give up on the broker after MS (connect and each request)\n"
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
    OPT_TIMEOUT,
    OPT_VERSION,
    OPT_RESET_OFFSETS,
    OPT_TO_EARLIEST,
    OPT_TO_LATEST,
    OPT_TO_OFFSET,
    OPT_TO_DATETIME,
    OPT_SHIFT_BY,
    OPT_TOPIC,
    OPT_EXECUTE,
    OPT_DELETE,
};

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"partitions", required_argument, NULL, 'p'},
    {"replication-factor", required_argument, NULL, 'r'},
    {"config", required_argument, NULL, 'c'},
    {"delete-config", required_argument, NULL, OPT_DELETE_CONFIG},
    {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
    {"if-exists", no_argument, NULL, OPT_IF_EXISTS},
    {"all-configs", no_argument, NULL, OPT_ALL_CONFIGS},
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"reset-offsets", no_argument, NULL, OPT_RESET_OFFSETS},
    {"to-earliest", no_argument, NULL, OPT_TO_EARLIEST},
    {"to-latest", no_argument, NULL, OPT_TO_LATEST},
    {"to-offset", required_argument, NULL, OPT_TO_OFFSET},
    {"to-datetime", required_argument, NULL, OPT_TO_DATETIME},
    {"shift-by", required_argument, NULL, OPT_SHIFT_BY},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"execute", no_argument, NULL, OPT_EXECUTE},
    {"delete", no_argument, NULL, OPT_DELETE},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"key", required_argument, NULL, CMD_OPT_CERT_KEY},
    CMD_TLS_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* What the command line asked for. */
typedef struct options {
    const char *brokers; /* -b, or NULL */
    const char *command; /* "list", "create", ... */
    char **names;        /* the TOPIC arguments (argv) */
    size_t name_count;
    int32_t partitions;       /* -p; create: 0 the broker's default; alter: 0 unchanged */
    int32_t replication;      /* -r; 0: the broker's default */
    stream_config_entry *set; /* -c and --delete-config, in order (value NULL: reset) */
    size_t set_count;
    bool have_config;        /* some -c given (create may only use -c) */
    bool have_delete_config; /* some --delete-config given */
    bool if_not_exists, if_exists, all_configs, json;
    int timeout_ms; /* --timeout-ms; 0: the client's defaults */
    /* group NAME */
    bool reset_offsets, execute, delete_group;
    int targets;               /* --to-* and --shift-by given */
    stream_group_reset_to to;  /* the last of them */
    int64_t to_value;          /* its value */
    const char **reset_topics; /* --topic arguments, as given */
    size_t reset_topic_count;
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

/* Writes buf to stdout; dies when stdout fails (a full disk, a closed pipe). */
static void emit(stream_buf *buf, int rc)
{
    if (rc != 0)
        die("out of memory");
    if ((buf->len && fwrite(buf->data, 1, buf->len, stdout) != buf->len) || fflush(stdout) != 0)
        die("cannot write to standard output");
}

/* Checks -c / --delete-config against the settings table, as the broker
 * will, so a typo is a usage error before anything is sent. */
static void check_settings(const options *o)
{
    char err[2048];
    int rc = stream_ops_check_settings(o->set, o->set_count, err, sizeof(err));
    if (rc == STREAM_ENOMEM)
        die("out of memory");
    if (rc != 0)
        usage_error("%s", err);
}

/* Reports each failed outcome on stderr: "cannot VERB topic 'x': why". */
static void report_failures(const stream_admin_outcome *o, size_t n, const char *verb)
{
    char line[1024];
    for (size_t i = 0; i < n; i++)
        if (o[i].err)
            warn("%s", stream_ops_failure_line(&o[i], verb, line, sizeof(line)));
}

/* Prints the outcomes (JSON, or with -v one line per topic) and returns the
 * exit status. */
static int finish_outcomes(const options *o, const stream_ops_outcomes *out, const char *verb)
{
    report_failures(out->items, out->count, verb);
    stream_buf buf;
    stream_buf_init(&buf);
    if (o->json)
        emit(&buf, stream_adminfmt_outcomes_json(&buf, out->items, out->count));
    else if (cmd_verbosity >= 2)
        emit(&buf, stream_ops_outcomes_text(&buf, out->items, out->count));
    stream_buf_release(&buf);
    return stream_ops_status(out->items, out->count, out->count);
}

/* ---- the connection ---------------------------------------------------------- */

/* The client. It connects on its first request (stream_ops_* connect it
 * with a message a user can act on), so a command whose topics all fail
 * the local checks never needs a broker. */
static stream_client *new_client(const options *o)
{
    stream_client_conf conf;
    cmd_client_conf(&conf, o->brokers, "stream-topics/" STREAM_VERSION);
    if (o->timeout_ms > 0) {
        conf.connect_timeout_ms = o->timeout_ms;
        conf.request_timeout_ms = o->timeout_ms;
    }
    char err[512];
    stream_client *c;
    int rc = stream_client_new(&conf, &c, err, sizeof(err));
    if (rc == STREAM_EINVAL)
        usage_error("%s", err); /* a broker list that does not parse */
    if (rc != 0)
        die("%s", err);
    return c;
}

/* ---- commands ------------------------------------------------------------- */

static stream_ops_topics request(const options *o)
{
    return (stream_ops_topics){.names = (const char *const *)o->names,
                               .name_count = o->name_count,
                               .partitions = o->partitions,
                               .replication_factor = o->replication,
                               .configs = o->set,
                               .config_count = o->set_count,
                               .if_not_exists = o->if_not_exists,
                               .if_exists = o->if_exists,
                               .timeout_ms = -1};
}

static int cmd_list(stream_client *c, const options *o)
{
    char err[1024];
    stream_metadata *md = NULL;
    if (stream_ops_list_topics(c, -1, &md, err, sizeof(err)) != 0)
        die("%s", err);
    stream_buf buf;
    stream_buf_init(&buf);
    emit(&buf, o->json ? stream_adminfmt_list_json(&buf, md)
                       : stream_adminfmt_list_text(&buf, md, cmd_verbosity >= 2));
    stream_buf_release(&buf);
    stream_metadata_free(md);
    return EXIT_OK;
}

/* create, delete and alter: one shape, one verb. */
static int cmd_change(stream_client *c, const options *o,
                      int (*op)(stream_client *, const stream_ops_topics *, stream_ops_outcomes *,
                                char *, size_t),
                      const char *verb)
{
    stream_ops_topics req = request(o);
    stream_ops_outcomes out;
    char err[1024];
    if (op(c, &req, &out, err, sizeof(err)) != 0)
        die("%s", err);
    int status = finish_outcomes(o, &out, verb);
    stream_ops_outcomes_release(&out);
    return status;
}

static int cmd_describe(stream_client *c, const options *o)
{
    char err[1024];
    stream_ops_description d;
    if (stream_ops_describe_topics(c, (const char *const *)o->names, o->name_count, -1, &d, err,
                                   sizeof(err)) != 0)
        die("%s", err);
    report_failures(d.errors, d.error_count, "describe");
    unsigned flags = o->all_configs ? STREAM_ADMINFMT_ALL_CONFIGS : 0;
    stream_buf buf;
    stream_buf_init(&buf);
    if (o->json)
        emit(&buf, stream_adminfmt_describe_json(&buf, d.topics, d.count, d.errors, d.error_count,
                                                 flags));
    else
        emit(&buf, stream_adminfmt_describe_text(&buf, d.topics, d.count, flags));
    stream_buf_release(&buf);
    int status = stream_ops_status(d.errors, d.error_count, o->name_count);
    stream_ops_description_release(&d);
    return status;
}

/* ---- consumer groups ---------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects, or dies with the line that says why. */
static void connect_or_die(stream_client *c)
{
    char err[1024];
    if (stream_ops_connect(c, -1, err, sizeof(err)) != 0)
        die("%s", err);
}

/* Reports a failed group call and returns the exit status it means. */
static int group_failure(const char *verb, const char *group, int rc, const char *why)
{
    switch (rc) {
    case STREAM_ENOGROUP:
        warn("cannot %s group '%s': no such group (stream-topics groups lists them)", verb,
             shown(group));
        return EXIT_NOTFOUND;
    case STREAM_EGROUPNOTEMPTY:
        warn("cannot %s group '%s': the group has active members; stop its consumers first%s", verb,
             shown(group),
             strcmp(verb, "reset offsets of") == 0 ? " (a dry run, without --execute, works "
                                                     "meanwhile)"
                                                   : "");
        return EXIT_FAIL;
    case STREAM_ENOTOPIC:
        warn("cannot %s group '%s': %s", verb, shown(group), why);
        return EXIT_NOTFOUND;
    default:
        warn("cannot %s group '%s': %s", verb, shown(group), why[0] ? why : stream_strerror(rc));
        return EXIT_FAIL;
    }
}

/* A group name is checked here, as the broker would, so a typo needs no
 * broker. */
static void check_group_name(const char *verb, const char *name)
{
    char why[256];
    if (stream_group_name_check(name, strlen(name), why, sizeof(why)) != 0) {
        warn("cannot %s group '%s': %s", verb, shown(name), why);
        exit(EXIT_FAIL);
    }
}

static int cmd_groups(stream_client *c, const options *o)
{
    char why[512];
    connect_or_die(c);
    stream_group_listing *g;
    size_t n;
    if (stream_admin_list_groups(c, -1, &g, &n, why, sizeof(why)) != 0)
        die("cannot list groups: %s", why);
    stream_buf buf;
    stream_buf_init(&buf);
    emit(&buf, o->json ? stream_ops_groups_json(&buf, g, n) : stream_ops_groups_text(&buf, g, n));
    stream_buf_release(&buf);
    stream_group_listings_free(g, n);
    return EXIT_OK;
}

static int cmd_cluster(stream_client *c, const options *o)
{
    char why[512] = "";
    connect_or_die(c);
    stream_cluster_description *d;
    if (stream_admin_describe_cluster(c, -1, &d, why, sizeof(why)) != 0)
        die("cannot describe the cluster: %s", why);
    stream_buf buf;
    stream_buf_init(&buf);
    emit(&buf, o->json ? stream_ops_cluster_json(&buf, d) : stream_ops_cluster_text(&buf, d));
    stream_buf_release(&buf);
    stream_cluster_description_free(d);
    return EXIT_OK;
}

static int group_describe(stream_client *c, const options *o, const char *name)
{
    char why[512] = "";
    stream_group_description *d;
    int rc = stream_admin_describe_group(c, name, -1, &d, why, sizeof(why));
    if (rc != 0)
        return group_failure("describe", name, rc, why);
    stream_buf buf;
    stream_buf_init(&buf);
    emit(&buf,
         o->json ? stream_ops_group_json(&buf, d) : stream_ops_group_text(&buf, d, wall_ms()));
    stream_buf_release(&buf);
    stream_group_description_free(d);
    return EXIT_OK;
}

static int group_delete(stream_client *c, const options *o, const char *name)
{
    char why[512] = "";
    stream_group_result *res;
    int rc = stream_admin_delete_groups(c, &name, 1, -1, &res, why, sizeof(why));
    if (rc != 0)
        die("cannot delete group '%s': %s", shown(name), why);
    int status = res[0].err ? group_failure("delete", name, res[0].err, res[0].msg) : EXIT_OK;
    stream_buf buf;
    stream_buf_init(&buf);
    if (o->json)
        emit(&buf, stream_ops_group_results_json(&buf, res, 1, "deleted"));
    else if (status == EXIT_OK)
        info(2, "deleted group '%s'", shown(name));
    stream_buf_release(&buf);
    stream_group_results_free(res, 1);
    return status;
}

static int group_reset(stream_client *c, const options *o, const char *name)
{
    size_t n = o->reset_topic_count;
    stream_ops_reset_topics topics = {0};
    char err[512];
    for (size_t i = 0; i < n; i++) {
        int rc = stream_ops_reset_topics_add(&topics, o->reset_topics[i], err, sizeof(err));
        if (rc == STREAM_ENOMEM)
            die("out of memory");
        if (rc != 0)
            usage_error("%s", err);
    }
    stream_group_reset req = {.group = name,
                              .topics = topics.items,
                              .topic_count = topics.count,
                              .to = o->to,
                              .value = o->to_value,
                              .execute = o->execute};
    char why[512] = "";
    stream_group_reset_plan *plan = NULL;
    int status = EXIT_OK;
    int rc = stream_admin_reset_offsets(c, &req, -1, &plan, why, sizeof(why));
    if (rc != 0) {
        status = group_failure("reset offsets of", name, rc, why);
    } else if (plan->count == 0 && n == 0) {
        /* Nothing committed, nothing named: an unknown group, or one with
         * no offsets yet. Say which. */
        stream_group_description *d = NULL;
        rc = stream_admin_describe_group(c, name, -1, &d, why, sizeof(why));
        stream_group_description_free(d);
        if (rc != 0)
            status = group_failure("reset offsets of", name, rc, why);
        else
            warn("group '%s' has no committed offsets to reset; name topics with --topic",
                 shown(name));
    }
    if (status == EXIT_OK) {
        stream_buf buf;
        stream_buf_init(&buf);
        emit(&buf, o->json ? stream_ops_reset_plan_json(&buf, name, plan)
                           : stream_ops_reset_plan_text(&buf, plan));
        stream_buf_release(&buf);
        if (!plan->executed)
            info(1, "dry run: nothing changed (add --execute to commit these offsets)");
        else
            info(2, "committed the new offsets of group '%s'", shown(name));
    }
    stream_group_reset_plan_free(plan);
    stream_ops_reset_topics_release(&topics);
    return status;
}

static int cmd_group(stream_client *c, const options *o)
{
    const char *name = o->names[0];
    const char *verb = o->reset_offsets  ? "reset offsets of"
                       : o->delete_group ? "delete"
                                         : "describe";
    check_group_name(verb, name);
    connect_or_die(c);
    if (o->reset_offsets)
        return group_reset(c, o, name);
    if (o->delete_group)
        return group_delete(c, o, name);
    return group_describe(c, o, name);
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

/* One of --to-earliest, --to-latest, --to-offset, --to-datetime,
 * --shift-by. */
static void set_target(options *o, int opt, const char *arg)
{
    char err[512];
    o->targets++;
    switch (opt) {
    case OPT_TO_EARLIEST:
        o->to = STREAM_GROUP_RESET_EARLIEST;
        break;
    case OPT_TO_LATEST:
        o->to = STREAM_GROUP_RESET_LATEST;
        break;
    case OPT_TO_OFFSET:
        o->to = STREAM_GROUP_RESET_OFFSET;
        o->to_value = cmd_parse_int(arg, 0, INT64_MAX, "--to-offset");
        break;
    case OPT_TO_DATETIME:
        o->to = STREAM_GROUP_RESET_TIMESTAMP;
        if (stream_time_parse_str(arg[0] == '@' ? arg + 1 : arg, wall_ms(), &o->to_value, err,
                                  sizeof(err)) != 0)
            usage_error("--to-datetime: %s", err);
        break;
    default:
        o->to = STREAM_GROUP_RESET_SHIFT;
        o->to_value = cmd_parse_int(arg, -INT64_MAX, INT64_MAX, "--shift-by");
        break;
    }
}

static void parse_options(int argc, char **argv, options *o)
{
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":b:p:r:c:vh", long_options, NULL)) != -1) {
        switch (opt) {
        case CMD_OPT_TLS:
        case CMD_OPT_CACERT:
        case CMD_OPT_CERT:
        case CMD_OPT_CERT_KEY:
            cmd_tls_option(opt, optarg);
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 'p':
            o->partitions =
                (int32_t)cmd_parse_int(optarg, 1, STREAM_CONFIG_PARTITIONS_MAX, "partition count");
            break;
        case 'r':
            o->replication = (int32_t)cmd_parse_int(optarg, 1, 32, "replication factor");
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
        case OPT_TIMEOUT:
            o->timeout_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--timeout-ms");
            break;
        case OPT_RESET_OFFSETS:
            o->reset_offsets = true;
            break;
        case OPT_EXECUTE:
            o->execute = true;
            break;
        case OPT_DELETE:
            o->delete_group = true;
            break;
        case OPT_TO_EARLIEST:
        case OPT_TO_LATEST:
        case OPT_TO_OFFSET:
        case OPT_TO_DATETIME:
        case OPT_SHIFT_BY:
            set_target(o, opt, optarg);
            break;
        case OPT_TOPIC: {
            const char **t = realloc(o->reset_topics, (o->reset_topic_count + 1) * sizeof(*t));
            if (t == NULL)
                die("out of memory");
            o->reset_topics = t;
            o->reset_topics[o->reset_topic_count++] = optarg;
            break;
        }
        case 'v':
            cmd_verbosity++;
            break;
        case 'h':
            cmd_help(usage_text);
        case OPT_VERSION:
            cmd_version();
        default:
            cmd_bad_option(opt, argv);
        }
    }
    if (optind >= argc)
        usage_error("missing command (list, create, describe, alter, delete, groups, group or "
                    "cluster)");
    o->command = argv[optind];
    o->names = argv + optind + 1;
    o->name_count = (size_t)(argc - optind - 1);
}

/* The flags of `group NAME`: one action, and a reset needs one target. */
static void check_group_flags(const options *o, bool is_group)
{
    bool any =
        o->reset_offsets || o->execute || o->delete_group || o->targets || o->reset_topic_count;
    if (any && !is_group)
        usage_error("--reset-offsets, --to-*, --shift-by, --topic, --execute and --delete are "
                    "for group NAME only, not %s",
                    o->command);
    if (!is_group)
        return;
    if (o->reset_offsets && o->delete_group)
        usage_error("--reset-offsets and --delete cannot be combined");
    if (!o->reset_offsets && (o->execute || o->targets || o->reset_topic_count))
        usage_error("--to-*, --shift-by, --topic and --execute go with --reset-offsets");
    if (o->reset_offsets && o->targets != 1)
        usage_error("--reset-offsets needs exactly one of --to-earliest, --to-latest, "
                    "--to-offset N, --to-datetime TIME, --shift-by N");
}

/* Refuses options that mean nothing to the command, and missing topics. */
static void check_command(const options *o)
{
    const char *cmd = o->command;
    bool is_list = strcmp(cmd, "list") == 0, is_create = strcmp(cmd, "create") == 0,
         is_describe = strcmp(cmd, "describe") == 0, is_alter = strcmp(cmd, "alter") == 0,
         is_delete = strcmp(cmd, "delete") == 0, is_groups = strcmp(cmd, "groups") == 0,
         is_group = strcmp(cmd, "group") == 0, is_cluster = strcmp(cmd, "cluster") == 0;
    if (!is_list && !is_create && !is_describe && !is_alter && !is_delete && !is_groups &&
        !is_group && !is_cluster)
        usage_error("unknown command '%s' (expected list, create, describe, alter, delete, "
                    "groups, group or cluster)",
                    shown(cmd));
    if ((is_list || is_groups || is_cluster) && o->name_count > 0)
        usage_error("%s takes no names ('%s')", cmd, shown(o->names[0]));
    if (is_group && o->name_count != 1)
        usage_error("group needs exactly one group name");
    if (!is_list && !is_groups && !is_cluster && o->name_count == 0)
        usage_error("%s needs at least one topic name", cmd);
    check_group_flags(o, is_group);
    struct {
        bool given, allowed;
        const char *flag, *where;
    } rules[] = {
        {o->partitions != 0, is_create || is_alter, "-p/--partitions", "create and alter"},
        {o->replication != 0, is_create, "-r/--replication-factor", "create"},
        {o->have_config, is_create || is_alter, "-c/--config", "create and alter"},
        {o->have_delete_config, is_alter, "--delete-config", "alter"},
        {o->if_not_exists, is_create, "--if-not-exists", "create"},
        {o->if_exists, is_delete, "--if-exists", "delete"},
        {o->all_configs, is_describe, "--all-configs", "describe"},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (rules[i].given && !rules[i].allowed)
            usage_error("%s is for %s only, not %s", rules[i].flag, rules[i].where, cmd);
    if (is_alter && o->set_count == 0 && o->partitions == 0)
        usage_error("alter needs -p N, -c KEY=VALUE or --delete-config KEY");
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    options o = {0};
    parse_options(argc, argv, &o);
    check_command(&o);
    check_settings(&o);

    stream_client *c = new_client(&o);
    int status;
    if (strcmp(o.command, "list") == 0)
        status = cmd_list(c, &o);
    else if (strcmp(o.command, "create") == 0)
        status = cmd_change(c, &o, stream_ops_create_topics, "create");
    else if (strcmp(o.command, "describe") == 0)
        status = cmd_describe(c, &o);
    else if (strcmp(o.command, "alter") == 0)
        status = cmd_change(c, &o, stream_ops_alter_topics, "alter");
    else if (strcmp(o.command, "groups") == 0)
        status = cmd_groups(c, &o);
    else if (strcmp(o.command, "group") == 0)
        status = cmd_group(c, &o);
    else if (strcmp(o.command, "cluster") == 0)
        status = cmd_cluster(c, &o);
    else
        status = cmd_change(c, &o, stream_ops_delete_topics, "delete");
    stream_client_free(c);
    free(o.set);
    free(o.reset_topics);
    return status;
}
