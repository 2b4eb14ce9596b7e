/*
 * stream-sub - writes the records of a topic to standard output.
 *
 * Options become one offset spec, one compiled output format and an
 * assignment of partitions to a libstream consumer; the loop that takes
 * records from the consumer and writes them out in the chosen format is
 * stream_ops_consume (ops.h), the same one stream-shell's `sub` runs.
 *
 * Buffering: output is written in large chunks while records keep coming,
 * and flushed whenever the consumer has no record ready (before any wait),
 * so someone watching a pipe sees each record as soon as it arrives while a
 * bulk copy costs few write(2) calls. On a terminal, or with -u, every
 * record is written at once. Only whole records are ever written: a signal
 * or a closed pipe never leaves half a record behind.
 *
 * Group mode (-g): the consumer joins the group instead of assigning
 * partitions, and turns off the library's auto-store: a record counts as
 * processed -- and so may be committed -- only once the write(2) that
 * carried it to standard output has returned (the sink's write stores the
 * positions), so a crash loses nothing (at-least-once). On SIGINT/SIGTERM,
 * -c or -e the loop ends, what is buffered is written, and close commits
 * it and leaves the group so the others take over at once.
 *
 * HTTP sink (--post URL): instead of standard output, the records go to an
 * endpoint through libstream's HTTP sink (http_sink.h): JSON-line batches
 * in the --json envelope, or one request per record (--post-each). With -g
 * a record is stored for commit only once the endpoint answered 2xx for it
 * and every record before it in its partition. The first SIGINT/SIGTERM
 * stops taking records and delivers what was taken; a second abandons
 * what is in flight (it is not committed, so it comes again).
 *
 * Exit: 0 when done or stopped by SIGINT/SIGTERM or a closed pipe (EPIPE:
 * `stream-sub | head -1` is not an error); 3 (EXIT_EMPTY) when a bounded
 * read (-e, or an end in -o) found nothing; 1 on errors; 2 on bad options;
 * with --post, 6 when the endpoint kept failing (--post-retries spent) and
 * 7 when it refused records and there is no --dead-letter topic.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/error.h"
#include "stream/format.h"
#include "stream/http.h"
#include "stream/http_sink.h"
#include "stream/ops.h"
#include "stream/proto.h"
#include "stream/timespec.h"

static const char usage_text[] =
    "Usage: stream-sub -t TOPIC [OPTION]...\n"
    "   or: stream-sub -g GROUP -t TOPIC [-t TOPIC]... [OPTION]...\n"
    "Write the records of TOPIC to standard output, following new ones as they come.\n"
    "\n"
    "  -t, --topic TOPIC          topic to read (required); with -g repeatable, and a\n"
    "                             name with any of *+?()[]{}|^$\\ is a regex that must\n"
    "                             match whole topic names ('logs\\..*')\n"
    "  -g, --group GROUP          consume as a member of consumer group GROUP: the group\n"
    "                             shares the partitions, starts at its committed offsets\n"
    "                             and commits what has been written out\n"
    "  -b, --brokers HOST:PORT,.. brokers (default $STREAM_BROKERS, else 127.0.0.1:9292)\n"
    "      --tls, --tls-cacert FILE  TLS to the brokers, verified (FILE: PEM CAs to trust)\n"
    "      --cert FILE --key FILE    PEM client certificate and key, for brokers that ask\n"
    "  -p, --partition N[,N]..    read only these partitions (repeatable; default all)\n"
    "  -o, --offset SPEC          where to start, per partition: beginning (default), end,\n"
    "                             N, -N (N before the end), +N, @TIME (first record at or\n"
    "                             after TIME: 2026-11-24T10:00, epoch, -10m); SPEC..END\n"
    "                             stops before END (N, -N, @TIME or end)\n"
    "  -e, --exit                 exit at the end offsets seen at start instead of following\n"
    "                             (-g: per partition, as they were when it was assigned)\n"
    "  -c, --count N              exit after N records\n"
    "      --latest-per-key       the table view: read to the end (-e), then print each\n"
    "                             key's last record, leaving deleted keys out\n"
    "Group mode (-g):\n"
    "  -o stored|beginning|end    where a partition without a committed offset starts\n"
    "                             (stored, the default, means beginning)\n"
    "      --session-timeout-ms MS  the group moves our partitions after MS without a\n"
    "                             heartbeat (default 10000; the broker's limits apply)\n"
    "      --commit-interval-ms MS  commit what was written every MS (default 1000)\n"
    "Output:\n"
    "  -f, --format FMT           format of each record (default '%v\\n'):\n"
    "                             %t topic, %p partition, %o offset, %k key, %v value,\n"
    "                             %T timestamp (ms), %D timestamp (UTC), %h headers,\n"
    "                             %K, %V key, value length (-1: null), %% a %;\n"
    "                             escapes \\n \\t \\r \\\\ \\0 \\xNN\n"
    "      --json                 one JSON object per line (lossless; stream-pub --json)\n"
    "      --msgpack              a MessagePack stream (lossless; stream-pub --msgpack)\n"
    "  -u, --unbuffered           write each record at once (default: when idle; per record\n"
    "                             on a tty); --progress, --no-progress: stderr progress line\n"
    "      --post URL             POST records to URL as --json lines (-g: commit after a 2xx)\n"
    "                             --post-batch N (500), --post-linger MS (50), --post-each,\n"
    "                             --post-timeout MS (30000), --post-retries N (5; then exit 6),\n"
    "                             --post-in-flight N (8), --dead-letter TOPIC (4xx; else exit 7)\n"
    "  -H, --http-header 'N: V'   add a header to each request (-H @FILE: one per line); TLS:\n"
    "                             --cacert FILE trusts its CAs (PEM), --insecure verifies nothing\n"
    "  -q, --quiet                print nothing but errors (no progress line)\n"
    "  -v, --verbose              say more on standard error\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n"
    "\n"
    "Exit status: 0 done (or interrupted, or the reader went away), 1 error, 2 bad options,\n"
    "3 nothing to read (-e, an end), 6 --post kept failing, 7 --post refused. See stream-sub(1).\n";

enum {
    OPT_JSON = 256,
    OPT_MSGPACK,
    OPT_VERSION,
    OPT_SESSION_TIMEOUT,
    OPT_COMMIT_INTERVAL,
    OPT_LATEST,
    OPT_POST,
    OPT_POST_BATCH,
    OPT_POST_LINGER,
    OPT_POST_EACH,
    OPT_POST_TIMEOUT,
    OPT_POST_RETRIES,
    OPT_POST_IN_FLIGHT,
    OPT_DEAD_LETTER,
    OPT_INSECURE,
    OPT_CACERT,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
};

static const struct option long_options[] = {
    {"topic", required_argument, NULL, 't'},
    {"group", required_argument, NULL, 'g'},
    {"session-timeout-ms", required_argument, NULL, OPT_SESSION_TIMEOUT},
    {"commit-interval-ms", required_argument, NULL, OPT_COMMIT_INTERVAL},
    {"brokers", required_argument, NULL, 'b'},
    {"partition", required_argument, NULL, 'p'},
    {"offset", required_argument, NULL, 'o'},
    {"exit", no_argument, NULL, 'e'},
    {"count", required_argument, NULL, 'c'},
    {"latest-per-key", no_argument, NULL, OPT_LATEST},
    {"format", required_argument, NULL, 'f'},
    {"json", no_argument, NULL, OPT_JSON},
    {"msgpack", no_argument, NULL, OPT_MSGPACK},
    {"unbuffered", no_argument, NULL, 'u'},
    {"post", required_argument, NULL, OPT_POST},
    {"post-batch", required_argument, NULL, OPT_POST_BATCH},
    {"post-linger", required_argument, NULL, OPT_POST_LINGER},
    {"post-each", no_argument, NULL, OPT_POST_EACH},
    {"header", required_argument, NULL, 'H'},
    {"http-header", required_argument, NULL, 'H'}, /* stream-pub's name for it */
    {"post-timeout", required_argument, NULL, OPT_POST_TIMEOUT},
    {"post-retries", required_argument, NULL, OPT_POST_RETRIES},
    {"post-in-flight", required_argument, NULL, OPT_POST_IN_FLIGHT},
    {"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"quiet", no_argument, NULL, 'q'},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    /* Broker TLS: --cacert and --insecure are the HTTP sink's (as curl's),
     * so the brokers' CAs are --tls-cacert here. */
    {"key", required_argument, NULL, CMD_OPT_CERT_KEY},
    {"tls", no_argument, NULL, CMD_OPT_TLS},
    {"tls-cacert", required_argument, NULL, CMD_OPT_CACERT},
    {"cert", required_argument, NULL, CMD_OPT_CERT},
    {"cert-key", required_argument, NULL, CMD_OPT_CERT_KEY},
    {NULL, 0, NULL, 0},
};

#define MAX_TOPICS 64

typedef struct sub_opts {
    const char *topic;              /* the first -t */
    const char *topics[MAX_TOPICS]; /* -g: every -t that is a name */
    size_t ntopics;
    char *pattern;          /* -g: the -t patterns as one regex; NULL if none */
    const char *group;      /* -g */
    int session_timeout_ms; /* --session-timeout-ms; 0: the library's default */
    int commit_interval_ms; /* --commit-interval-ms */
    const char *brokers;
    stream_cli_partitions partitions; /* -p; empty = all */
    stream_offset_spec spec;          /* -o */
    bool exit_at_end;                 /* -e */
    uint64_t count;                   /* -c; 0 = no limit */
    stream_progress_mode progress;    /* --progress / --no-progress; AUTO: see main */
    bool latest_per_key;              /* --latest-per-key */
    stream_ops_out_kind kind;
    const char *format;         /* -f text */
    bool unbuffered;            /* -u */
    stream_http_sink_conf post; /* --post and the --post-* options (url NULL: stdout) */
    stream_http_conf http;      /* -H, --cacert, --insecure, --post-timeout, --post-retries */
    bool post_only;             /* an option that needs --post was given */
} sub_opts;

/* Output: whole records go to standard output, in chunks or each at once. */
typedef struct sub_out {
    bool closed;         /* the reader went away (EPIPE) */
    stream_consumer *co; /* -g: positions are stored after each write */
} sub_out;

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t abort_signal; /* a second signal: --post abandons what is in flight */

static void on_signal(int sig)
{
    if (stop_signal)
        abort_signal = sig;
    stop_signal = sig;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The sink's write: all of p to standard output. */
static int out_write(void *arg, const void *p, size_t len, char *errbuf, size_t errbuf_len)
{
    sub_out *out = arg;
    int rc = stream_cli_write_all(1, p, len, errbuf, errbuf_len);
    if (rc == STREAM_ECLOSED)
        out->closed = true;
    /* Every record poll has returned is in what was just written: all of
     * it is out, so all of it may be committed. */
    if (rc == 0 && out->co)
        stream_consumer_store_positions(out->co);
    return rc;
}

/* True when standard output is a pipe whose reader has gone: poll(2)
 * reports POLLERR on the write end. Checked before each wait, so
 * `stream-sub -t t | head -1` ends once head has its line, instead of
 * waiting for another record to find out. */
static bool reader_here(void *arg)
{
    sub_out *out = arg;
    struct pollfd pfd = {.fd = 1, .events = 0};
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0)
        out->closed = true;
    return !out->closed;
}

static void at_end(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    info(2, "topic '%s' partition %" PRId32 ": at the end, offset %" PRId64, topic, partition,
         offset);
}

/* A -t: a topic name, or (with regex characters, none of which a topic name
 * may hold) a pattern; several patterns become one alternation. */
static void add_topic(sub_opts *o, const char *arg)
{
    if (o->topic == NULL)
        o->topic = arg;
    if (strpbrk(arg, "*+?()[]{}|^$\\") == NULL) {
        if (o->ntopics == MAX_TOPICS)
            usage_error("too many -t (at most %d)", MAX_TOPICS);
        o->topics[o->ntopics++] = arg;
        return;
    }
    size_t old = o->pattern ? strlen(o->pattern) : 0;
    char *p = realloc(o->pattern, old + strlen(arg) + 4);
    if (p == NULL)
        die("out of memory");
    sprintf(p + old, "%s(%s)", old ? "|" : "", arg);
    o->pattern = p;
}

/* Group mode takes -o only as where to start without a committed offset,
 * and reads the partitions the group hands out. */
static void check_group_options(const sub_opts *o, const char *offset_arg)
{
    char err[512];
    if (o->partitions.count > 0)
        usage_error("-p cannot be combined with -g: the group assigns the partitions");
    stream_offset_kind k = o->spec.start.kind;
    if (k != STREAM_OFFSET_STORED && k != STREAM_OFFSET_BEGINNING && k != STREAM_OFFSET_END)
        usage_error("-o %s: with -g, -o is stored, beginning or end (where a partition without a "
                    "committed offset starts)",
                    offset_arg);
    if (o->spec.end.kind != STREAM_OFFSET_NONE)
        usage_error("-o %s: with -g there is no end offset; use -e or -c", offset_arg);
    if (stream_group_name_check(o->group, strlen(o->group), err, sizeof(err)) != 0)
        usage_error("-g: invalid group name '%s': %s", o->group, err);
    for (size_t i = 0; i < o->ntopics; i++)
        if (stream_topic_name_check(o->topics[i], strlen(o->topics[i]), err, sizeof(err)) != 0)
            usage_error("-t: invalid topic name '%s': %s", o->topics[i], err);
}

static void parse_options(int argc, char **argv, sub_opts *o)
{
    char err[512];
    const char *offset_arg = NULL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":t:g:b:p:o:ec:f:uqvhH:", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_POST:
            o->post.url = optarg;
            break;
        case OPT_POST_BATCH:
            o->post.batch_records = (size_t)cmd_parse_int(optarg, 1, 1000000, "--post-batch");
            o->post_only = true;
            break;
        case OPT_POST_LINGER:
            o->post.linger_ms = (int)cmd_parse_int(optarg, 0, 3600000, "--post-linger");
            o->post_only = true;
            break;
        case OPT_POST_EACH:
            o->post.each = o->post_only = true;
            break;
        case OPT_POST_TIMEOUT:
            o->http.timeout_ms = (int)cmd_parse_int(optarg, 1, 86400000, "--post-timeout");
            o->post_only = true;
            break;
        case OPT_POST_RETRIES:
            o->http.retries = (int)cmd_parse_int(optarg, 0, 1000000, "--post-retries");
            o->post_only = true;
            break;
        case OPT_POST_IN_FLIGHT:
            o->post.max_in_flight = (int)cmd_parse_int(optarg, 1, 1024, "--post-in-flight");
            o->post_only = true;
            break;
        case OPT_DEAD_LETTER:
            if (stream_topic_name_check(optarg, strlen(optarg), err, sizeof(err)) != 0)
                usage_error("--dead-letter: invalid topic name '%s': %s", optarg, err);
            o->post.dead_letter_topic = optarg;
            o->post_only = true;
            break;
        case OPT_INSECURE:
            o->http.insecure = o->post_only = true;
            break;
        case OPT_CACERT:
            o->http.cacert = optarg;
            o->post_only = true;
            break;
        case 'H': {
            int rc = stream_http_conf_add_header(&o->http, optarg, err, sizeof(err));
            if (rc == STREAM_ENOMEM)
                die("out of memory");
            if (rc != 0)
                usage_error("%s", err);
            o->post_only = true;
            break;
        }
        case 't':
            add_topic(o, optarg);
            break;
        case 'g':
            o->group = optarg;
            break;
        case OPT_SESSION_TIMEOUT:
            o->session_timeout_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--session-timeout-ms");
            break;
        case OPT_COMMIT_INTERVAL:
            o->commit_interval_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--commit-interval-ms");
            break;
        case CMD_OPT_TLS:
        case CMD_OPT_CACERT:
        case CMD_OPT_CERT:
        case CMD_OPT_CERT_KEY:
            cmd_tls_option(opt, optarg);
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 'p': {
            int rc = stream_cli_partitions_parse(&o->partitions, optarg, err, sizeof(err));
            if (rc == STREAM_ENOMEM)
                die("out of memory");
            if (rc != 0)
                usage_error("-p: %s", err);
            break;
        }
        case 'o':
            offset_arg = optarg;
            if (stream_offset_spec_parse_str(optarg, wall_ms(), &o->spec, err, sizeof(err)) != 0)
                usage_error("-o: %s", err);
            break;
        case 'e':
            o->exit_at_end = true;
            break;
        case OPT_PROGRESS:
            o->progress = STREAM_PROGRESS_ON;
            break;
        case OPT_NO_PROGRESS:
            o->progress = STREAM_PROGRESS_OFF;
            break;
        case 'c':
            o->count = (uint64_t)cmd_parse_int(optarg, 1, INT64_MAX, "count");
            break;
        case 'f':
            o->format = optarg;
            o->kind = STREAM_OPS_OUT_FORMAT;
            break;
        case OPT_LATEST:
            o->latest_per_key = o->exit_at_end = true;
            break;
        case OPT_JSON:
            o->kind = STREAM_OPS_OUT_JSON;
            break;
        case OPT_MSGPACK:
            o->kind = STREAM_OPS_OUT_MSGPACK;
            break;
        case 'u':
            o->unbuffered = true;
            break;
        case 'q':
            cmd_verbosity = 0;
            break;
        case 'v':
            cmd_verbosity = cmd_verbosity < 1 ? 2 : cmd_verbosity + 1;
            break;
        case 'h':
            cmd_help(usage_text);
        case OPT_VERSION:
            cmd_version();
        case ':':
        case '?':
            cmd_bad_option(opt, argv);
        default:
            break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (o->topic == NULL || *o->topic == '\0')
        usage_error("no topic given (-t TOPIC)");
    if (o->format && o->kind != STREAM_OPS_OUT_FORMAT)
        usage_error("-f cannot be combined with --json or --msgpack");
    if (o->post_only && o->post.url == NULL)
        usage_error("-H, --post-* and --dead-letter, --cacert, --insecure go with --post URL");
    if (o->post.url && (o->format || o->kind == STREAM_OPS_OUT_MSGPACK || o->latest_per_key))
        usage_error("--post sends JSON lines (or --post-each values): -f, --msgpack and "
                    "--latest-per-key are for standard output");
    if (o->post.url && strncmp(o->post.url, "http://", 7) != 0 &&
        strncmp(o->post.url, "https://", 8) != 0)
        usage_error("--post %s: the URL must start with http:// or https://", o->post.url);
    if (o->group && o->latest_per_key)
        usage_error("--latest-per-key reads a topic on its own, not in a group (-g)");
    if (o->group && offset_arg == NULL)
        o->spec.start.kind = STREAM_OFFSET_STORED; /* the group's offsets by default */
    if (o->group)
        check_group_options(o, offset_arg ? offset_arg : "stored");
    else if (o->spec.start.kind == STREAM_OFFSET_STORED)
        usage_error("-o %s: stored offsets belong to a consumer group: add -g GROUP", offset_arg);
    else if (o->ntopics + (o->pattern != NULL) > 1 || o->pattern)
        usage_error("%s: reading several topics or a pattern needs a consumer group (-g GROUP)",
                    o->pattern ? "a -t with regex characters" : "several -t");
    else if (o->session_timeout_ms || o->commit_interval_ms)
        usage_error("--session-timeout-ms and --commit-interval-ms are for group mode (-g)");
}

/* Joins the group; dies with the reason (a topic named that does not exist,
 * a broker without groups, the broker unreachable). */
static void subscribe(stream_client *c, stream_consumer *co, const sub_opts *o)
{
    char err[1024];
    for (size_t i = 0; i < o->ntopics; i++) {
        int rc = stream_client_partition_count(c, o->topics[i], -1, err, sizeof(err));
        if (rc == STREAM_ENOTOPIC)
            die("%s (stream-topics list shows the topics there are)", err);
        if (rc < 0)
            die("%s", err);
    }
    stream_group_conf gconf;
    stream_group_conf_init(&gconf);
    gconf.group = o->group;
    gconf.client_id = "stream-sub/" STREAM_VERSION;
    gconf.auto_store = false; /* the sink stores what it has written */
    gconf.auto_commit_interval_ms = o->commit_interval_ms ? o->commit_interval_ms : 1000;
    if (o->session_timeout_ms)
        gconf.session_timeout_ms = o->session_timeout_ms;
    if (stream_consumer_subscribe(co, &gconf, o->topics, o->ntopics, o->pattern, -1, err,
                                  sizeof(err)) != 0)
        die("%s", err);
    stream_group_status st;
    stream_consumer_group_status(co, &st);
    info(2, "joined group '%s' as member %s (generation %d)", o->group, st.member_id,
         (int)st.generation);
}

/* Leaves the group: commits what was written (unless the run failed, when
 * the stored offsets may include a record that could not be written) and
 * says goodbye so the others take over at once. */
static void leave(stream_consumer *co, const sub_opts *o, bool commit)
{
    char err[1024];
    if (stream_consumer_close(co, commit, 10000, err, sizeof(err)) != 0)
        warn("%s", err);
    else
        info(2, "left group '%s'", o->group);
}

/* Assigns the partitions asked for; dies with the consumer's message (unknown
 * topic, no such partition, a broker error) on failure. */
static void assign(stream_consumer *co, const sub_opts *o)
{
    char err[1024];
    int rc = stream_ops_assign(co, o->topic, o->partitions.ids, o->partitions.count, &o->spec, err,
                               sizeof(err));
    if (rc == STREAM_ENOTOPIC)
        die("%s (stream-topics list shows the topics there are)", err);
    if (rc != 0)
        die("%s", err);
}

/* The HTTP sink's batch body: each record as its --json line. */
static int encode_json(void *arg, stream_buf *out, const stream_consumer_event *ev, char *errbuf,
                       size_t errbuf_len)
{
    (void)arg;
    return stream_ops_record_append(out, STREAM_OPS_OUT_JSON, NULL, ev, errbuf, errbuf_len);
}

/* --post: the records go to the endpoint; returns the exit status. With -g
 * the stored offsets cover only delivered records, so they are committed
 * whatever ended the run. */
static int post(stream_client *c, stream_consumer *co, sub_opts *o)
{
    char err[1024];
    o->post.http = &o->http;
    o->post.encode = encode_json;
    o->post.agent = "stream-sub/" STREAM_VERSION;
    o->post.group = o->group != NULL;
    o->post.count = o->count;
    o->post.stop = &stop_signal;
    o->post.abort = &abort_signal;
    stream_http_sink_stats st;
    err[0] = '\0';
    int rc = stream_http_sink_run(c, co, &o->post, &st, err, sizeof(err));
    if (o->group)
        leave(co, o, true);
    stream_consumer_free(co);
    stream_client_free(c);
    stream_http_conf_release(&o->http);
    stream_cli_partitions_release(&o->partitions);
    free(o->pattern);
    info(2,
         "%" PRIu64 " records delivered, %" PRIu64 " dead-lettered, %" PRIu64 " requests, %" PRIu64
         " retries",
         st.delivered, st.dead_lettered, st.requests, st.retries);
    if (rc != 0) {
        warn("%s", err[0] ? err : stream_strerror(rc));
        return st.end == STREAM_HTTP_SINK_GAVE_UP    ? EXIT_GAVE_UP
               : st.end == STREAM_HTTP_SINK_REJECTED ? EXIT_REJECTED
                                                     : EXIT_FAIL;
    }
    if (!stop_signal && st.taken == 0 && (o->exit_at_end || o->spec.end.kind != STREAM_OFFSET_NONE))
        return EXIT_EMPTY;
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    sub_opts o = {0};
    o.spec.start.kind = STREAM_OFFSET_BEGINNING;
    o.spec.end.kind = STREAM_OFFSET_NONE;
    stream_http_sink_conf_init(&o.post);
    stream_http_conf_init(&o.http);
    parse_options(argc, argv, &o);

    char err[1024];
    sub_out out = {0};
    stream_format *format = NULL;
    if (o.kind == STREAM_OPS_OUT_FORMAT && o.post.url == NULL) {
        if (stream_format_compile(o.format ? o.format : "%v\\n", &format, err, sizeof(err)) != 0)
            usage_error("-f: %s", err);
    }

    /* EPIPE instead of a silent death, so the last whole record is the
     * last thing written; SIGINT/SIGTERM end the loop (no SA_RESTART, so a
     * wait returns at once). */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    stream_client *c;
    stream_client_conf ccf;
    cmd_client_conf(&ccf, o.brokers, "stream-sub/" STREAM_VERSION);
    if (stream_cli_connect_conf(&ccf, 0, &c, err, sizeof(err)) != 0)
        die("%s", err);
    stream_consumer_conf cconf;
    stream_consumer_conf_init(&cconf);
    cconf.stop_at_end = o.exit_at_end;
    if (o.group)
        cconf.auto_offset_reset =
            o.spec.start.kind == STREAM_OFFSET_END ? STREAM_RESET_LATEST : STREAM_RESET_EARLIEST;
    stream_consumer *co;
    if (stream_consumer_new(c, &cconf, &co, err, sizeof(err)) != 0)
        die("%s", err);
    if (o.group) {
        subscribe(c, co, &o);
        out.co = co;
    } else {
        assign(co, &o);
    }

    if (o.post.url)
        return post(c, co, &o);

    /* By default a progress line for a bounded read (-e) into a file or a
     * pipe, seen on a terminal: on a terminal stdout the records show it. */
    stream_progress_mode pm = o.progress;
    if (pm == STREAM_PROGRESS_AUTO && (cmd_verbosity == 0 || !o.exit_at_end || isatty(1)))
        pm = STREAM_PROGRESS_OFF;
    stream_progress progress;
    stream_progress_init(&progress, stderr, pm, cmd_name, 0);

    stream_ops_consume_conf conf = {.kind = o.kind,
                                    .format = format,
                                    .count = o.count,
                                    .each_record = o.unbuffered || isatty(1),
                                    .stop = &stop_signal,
                                    .progress = &progress,
                                    .latest_per_key = o.latest_per_key};
    stream_ops_sink sink = {.write = out_write, .idle = reader_here, .eof = at_end, .arg = &out};
    uint64_t n = 0;
    err[0] = '\0';
    int rc = stream_ops_consume(co, &conf, &sink, &n, err, sizeof(err));
    stream_progress_finish(&progress);

    if (o.group)
        leave(co, &o, rc == 0 || rc == STREAM_ECLOSED);
    stream_consumer_free(co);
    stream_client_free(c);
    stream_format_free(format);
    stream_cli_partitions_release(&o.partitions);
    free(o.pattern);

    int status = EXIT_OK;
    if (rc != 0 && rc != STREAM_ECLOSED) {
        warn("%s", err[0] ? err : stream_strerror(rc));
        status = EXIT_FAIL;
    } else if (!stop_signal && !out.closed && n == 0 &&
               (o.exit_at_end || o.spec.end.kind != STREAM_OFFSET_NONE)) {
        info(2, "nothing to read");
        status = EXIT_EMPTY;
    }
    info(2, "%" PRIu64 " records", n);
    return status;
}
