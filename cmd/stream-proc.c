/*
 * stream-proc - processes a topic through a command: consumes IN in a
 * consumer group, feeds the records to CMD, publishes CMD's output lines to
 * OUT, and commits IN's offsets only once those outputs are acknowledged.
 *
 * The plumbing (batches, one run of CMD per batch and key, the pipes, the
 * timeout, offsets stored after the acknowledgements) is libstream's
 * (proc.h, which says why a run per batch and not a coprocess). This file
 * parses the options, connects two clients (the consumer's long-polling
 * fetches must not delay the producer's acknowledgements), and gives the
 * processor its two conversions: a record to CMD's input (a -f format, or a
 * --json envelope, through ops.h) and an output line to a record (a plain
 * value, or a --json-out envelope through recfmt.h).
 *
 * Exit: 0 when done (-e) or stopped by SIGINT/SIGTERM; 3 (EXIT_EMPTY) when
 * -e found nothing to process; 1 when CMD failed, hung or wrote garbage, or
 * publishing failed (offsets are then committed up to the last batch whose
 * outputs were all acknowledged, never further); 2 on bad options.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/error.h"
#include "stream/format.h"
#include "stream/ops.h"
#include "stream/proc.h"
#include "stream/proto.h"
#include "stream/recfmt.h"

static const char usage_text[] =
    "Usage: stream-proc -t IN -g GROUP --to OUT [OPTION]... -- CMD [ARG]...\n"
    "Process the records of IN through CMD in consumer group GROUP and publish\n"
    "CMD's output lines to OUT; IN's offsets are committed once those are stored.\n"
    "CMD runs once per batch of records (and per key, see --no-key): its standard input\n"
    "is the batch, its standard output the batch's output, exit status 0 required.\n"
    "\n"
    "  -t, --topic IN             topic to read (required)\n"
    "  -g, --group GROUP          consumer group (required); runs of one group share\n"
    "                             the partitions\n"
    "      --to OUT               topic to publish to (required)\n"
    "  -b, --brokers HOST:PORT,.. brokers (default $STREAM_BROKERS, else 127.0.0.1:9292)\n"
    CMD_TLS_HELP("      --key FILE            its PEM private key\n")
    "  -o, --offset beginning|end where a partition without a committed offset starts\n"
    "                             (default beginning)\n"
    "  -e, --exit                 stop at the end offsets seen at start, after committing\n"
    "Input to CMD:\n"
    "  -f, --format FMT           each record as FMT (default '%v\\n'; see stream-sub -f)\n"
    "      --json                 each record as a JSON line (key, headers, timestamp)\n"
    "Output of CMD:\n"
    "      --json-out             lines are JSON envelopes ({\"value\":..,\"key\":..,\n"
    "                             \"headers\":..,\"partition\":..}); default: values\n"
    "      --no-key               outputs get no key (default: their records' key, with\n"
    "                             one run of CMD per key in a batch)\n"
    "Limits:\n"
    "      --batch N              records per batch, at most (default 10000)\n"
    "      --timeout SEC          a run of CMD taking longer is killed: error (default 60)\n"
    "      --max-record-bytes N   an output line longer is an error (default 1048576)\n"
    "      --acks 0|1|all         acknowledgement of outputs (default all: on disk)\n"
    "      --session-timeout-ms MS  the group's session timeout (default 10000)\n"
    "      --commit-interval-ms MS  commit what is processed every MS (default 1000)\n"
    "  -q, --quiet                print nothing but errors\n"
    "  -v, --verbose              say more on standard error\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n"
    "\n"
    "Exit status: 0 done (or interrupted), 1 error (CMD failed, hung or wrote\n"
    "garbage: nothing after the last good batch is committed), 2 bad options,\n"
    "3 nothing to process (with -e). See stream-proc(1).\n";

enum {
    OPT_TO = 256,
    OPT_JSON,
    OPT_JSON_OUT,
    OPT_NO_KEY,
    OPT_BATCH,
    OPT_TIMEOUT,
    OPT_MAX_RECORD,
    OPT_ACKS,
    OPT_SESSION_TIMEOUT,
    OPT_COMMIT_INTERVAL,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"topic", required_argument, NULL, 't'},
    {"group", required_argument, NULL, 'g'},
    {"to", required_argument, NULL, OPT_TO},
    {"brokers", required_argument, NULL, 'b'},
    {"offset", required_argument, NULL, 'o'},
    {"exit", no_argument, NULL, 'e'},
    {"format", required_argument, NULL, 'f'},
    {"json", no_argument, NULL, OPT_JSON},
    {"json-out", no_argument, NULL, OPT_JSON_OUT},
    {"no-key", no_argument, NULL, OPT_NO_KEY},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"max-record-bytes", required_argument, NULL, OPT_MAX_RECORD},
    {"acks", required_argument, NULL, OPT_ACKS},
    {"session-timeout-ms", required_argument, NULL, OPT_SESSION_TIMEOUT},
    {"commit-interval-ms", required_argument, NULL, OPT_COMMIT_INTERVAL},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"key", required_argument, NULL, CMD_OPT_CERT_KEY},
    CMD_TLS_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

typedef struct proc_opts {
    const char *in, *out, *group, *brokers;
    bool from_end;          /* -o end */
    bool exit_at_end;       /* -e */
    const char *format;     /* -f */
    bool json_in;           /* --json */
    bool json_out;          /* --json-out */
    bool no_key;            /* --no-key */
    size_t batch;           /* --batch */
    int timeout_s;          /* --timeout */
    size_t max_record;      /* --max-record-bytes */
    int acks;               /* --acks */
    int session_timeout_ms; /* 0: the library's default */
    int commit_interval_ms;
    char **argv;            /* CMD and its arguments */
} proc_opts;

/* The two conversions the processor calls. */
typedef struct proc_codec {
    stream_ops_out_kind kind;    /* CMD's input: a format or JSON lines */
    stream_format *format;       /* the compiled -f */
    stream_recfmt_reader reader; /* --json-out: scratch of the envelope parser */
} proc_codec;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int encode(void *arg, const stream_consumer_event *ev, stream_buf *out, char *errbuf,
                  size_t errbuf_len)
{
    proc_codec *c = arg;
    return stream_ops_record_append(out, c->kind, c->format, ev, errbuf, errbuf_len);
}

static int decode_json(void *arg, const uint8_t *line, size_t len, stream_producer_record *rec,
                       char *errbuf, size_t errbuf_len)
{
    proc_codec *c = arg;
    size_t i = 0;
    while (i < len && strchr(" \t\r", line[i]))
        i++;
    if (i == len)
        return 1; /* a blank line, as stream-pub --json skips it */
    stream_recfmt_in in;
    int rc = stream_recfmt_parse_json(&c->reader, (const char *)line, len, &in, errbuf,
                                      errbuf_len);
    if (rc != 0)
        return rc;
    rec->key = in.rec.key;
    rec->key_len = in.rec.key_len;
    rec->value = in.rec.value;
    rec->value_len = in.rec.value_len;
    rec->headers = in.rec.headers;
    rec->header_count = in.rec.header_count;
    rec->partition = in.has_partition ? in.rec.partition : STREAM_PARTITION_ANY;
    rec->timestamp = in.has_timestamp ? in.rec.timestamp : 0;
    return 0;
}

static void parse_options(int argc, char **argv, proc_opts *o)
{
    char err[512];
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:t:g:b:o:ef:qvh", long_options, NULL)) != -1) {
        switch (opt) {
        case 't':
            o->in = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case OPT_TO:
            o->out = optarg;
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
        case 'o':
            if (strcmp(optarg, "end") == 0)
                o->from_end = true;
            else if (strcmp(optarg, "beginning") == 0 || strcmp(optarg, "stored") == 0)
                o->from_end = false;
            else
                usage_error("-o %s: stream-proc starts where the group committed; -o is "
                            "beginning or end (where a partition without a committed offset "
                            "starts)",
                            optarg);
            break;
        case 'e':
            o->exit_at_end = true;
            break;
        case 'f':
            o->format = optarg;
            break;
        case OPT_JSON:
            o->json_in = true;
            break;
        case OPT_JSON_OUT:
            o->json_out = true;
            break;
        case OPT_NO_KEY:
            o->no_key = true;
            break;
        case OPT_BATCH:
            o->batch = (size_t)cmd_parse_int(optarg, 1, 10000000, "--batch");
            break;
        case OPT_TIMEOUT:
            o->timeout_s = (int)cmd_parse_int(optarg, 1, 86400, "--timeout");
            break;
        case OPT_MAX_RECORD:
            o->max_record = (size_t)cmd_parse_int(optarg, 1, 64 << 20, "--max-record-bytes");
            break;
        case OPT_ACKS:
            if (stream_cli_parse_acks(optarg, &o->acks, err, sizeof err) != 0)
                usage_error("--acks: %s", err);
            break;
        case OPT_SESSION_TIMEOUT:
            o->session_timeout_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--session-timeout-ms");
            break;
        case OPT_COMMIT_INTERVAL:
            o->commit_interval_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--commit-interval-ms");
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
    if (o->in == NULL || *o->in == '\0')
        usage_error("no input topic given (-t IN)");
    if (o->group == NULL)
        usage_error("no consumer group given (-g GROUP)");
    if (o->out == NULL || *o->out == '\0')
        usage_error("no output topic given (--to OUT)");
    if (optind >= argc)
        usage_error("no command given (-- CMD [ARG]...)");
    if (o->format && o->json_in)
        usage_error("-f cannot be combined with --json");
    if (stream_group_name_check(o->group, strlen(o->group), err, sizeof err) != 0)
        usage_error("-g: invalid group name '%s': %s", o->group, err);
    if (stream_topic_name_check(o->in, strlen(o->in), err, sizeof err) != 0)
        usage_error("-t: invalid topic name '%s': %s", o->in, err);
    if (stream_topic_name_check(o->out, strlen(o->out), err, sizeof err) != 0)
        usage_error("--to: invalid topic name '%s': %s", o->out, err);
    if (strcmp(o->in, o->out) == 0)
        usage_error("-t and --to name the same topic '%s': its outputs would be processed "
                    "again",
                    o->in);
    o->argv = argv + optind;
}

/* Joins the group; dies with the reason. */
static void subscribe(stream_client *c, stream_consumer *co, const proc_opts *o)
{
    char err[1024];
    int rc = stream_client_partition_count(c, o->in, -1, err, sizeof err);
    if (rc == STREAM_ENOTOPIC)
        die("%s (stream-topics list shows the topics there are)", err);
    if (rc < 0)
        die("%s", err);
    stream_group_conf gconf;
    stream_group_conf_init(&gconf);
    gconf.group = o->group;
    gconf.client_id = "stream-proc/" STREAM_VERSION;
    gconf.auto_store = false; /* the processor stores what is acknowledged */
    gconf.auto_commit_interval_ms = o->commit_interval_ms ? o->commit_interval_ms : 1000;
    if (o->session_timeout_ms)
        gconf.session_timeout_ms = o->session_timeout_ms;
    const char *topics[1] = {o->in};
    if (stream_consumer_subscribe(co, &gconf, topics, 1, NULL, -1, err, sizeof err) != 0)
        die("%s", err);
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    proc_opts o = {.acks = STREAM_ACKS_ALL};
    parse_options(argc, argv, &o);

    char err[1024];
    proc_codec codec = {.kind = o.json_in ? STREAM_OPS_OUT_JSON : STREAM_OPS_OUT_FORMAT};
    stream_recfmt_reader_init(&codec.reader, STREAM_RECFMT_JSON);
    if (!o.json_in &&
        stream_format_compile(o.format ? o.format : "%v\\n", &codec.format, err, sizeof err) != 0)
        usage_error("-f: %s", err);

    /* A CMD that stops reading early is not an error (EPIPE, not death);
     * SIGINT/SIGTERM stop the run (no SA_RESTART: waits return at once). */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL); /* CMD's exit status is needed, whatever we inherited */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    stream_client_conf ccf;
    cmd_client_conf(&ccf, o.brokers, "stream-proc/" STREAM_VERSION);
    stream_client *cin, *cout;
    if (stream_cli_connect_conf(&ccf, 0, &cin, err, sizeof err) != 0)
        die("%s", err);
    if (stream_cli_connect_conf(&ccf, 0, &cout, err, sizeof err) != 0)
        die("%s", err);

    stream_consumer_conf cconf;
    stream_consumer_conf_init(&cconf);
    cconf.stop_at_end = o.exit_at_end;
    cconf.auto_offset_reset = o.from_end ? STREAM_RESET_LATEST : STREAM_RESET_EARLIEST;
    stream_consumer *co;
    if (stream_consumer_new(cin, &cconf, &co, err, sizeof err) != 0)
        die("%s", err);

    stream_proc_conf pconf;
    stream_proc_conf_init(&pconf);
    pconf.argv = o.argv;
    pconf.in_topic = o.in;
    pconf.out_topic = o.out;
    pconf.consumer = co;
    pconf.consumer_client = cin;
    pconf.encode = encode;
    pconf.decode = o.json_out ? decode_json : NULL;
    pconf.codec_arg = &codec;
    pconf.keep_key = !o.no_key;
    pconf.stop = &stop_signal;
    if (o.batch)
        pconf.max_records = o.batch;
    if (o.timeout_s)
        pconf.timeout_ms = o.timeout_s * 1000;
    if (o.max_record)
        pconf.max_record_bytes = o.max_record;
    codec.reader.max_record_bytes = pconf.max_record_bytes;
    stream_proc *pr;
    if (stream_proc_new(&pconf, &pr, err, sizeof err) != 0)
        die("%s", err);

    stream_producer_conf prconf;
    stream_producer_conf_init(&prconf);
    prconf.acks = o.acks;
    prconf.on_delivery = stream_proc_on_delivery;
    prconf.opaque = pr;
    if (prconf.max_request_bytes < pconf.max_record_bytes + 4096)
        prconf.max_request_bytes = pconf.max_record_bytes + 4096;
    stream_producer *p;
    if (stream_producer_new(cout, &prconf, &p, err, sizeof err) != 0)
        die("%s", err);
    stream_proc_set_producer(pr, p);

    subscribe(cin, co, &o);
    info(2, "joined group '%s'; processing '%s' into '%s' with '%s'", o.group, o.in, o.out,
         o.argv[0]);

    err[0] = '\0';
    int rc = stream_proc_run(pr, err, sizeof err);

    /* What is stored covers only batches whose outputs were all
     * acknowledged, so it is committed also after a failure. */
    char cerr[1024];
    if (stream_consumer_close(co, true, 10000, cerr, sizeof cerr) != 0)
        warn("cannot commit the offsets processed: %s", cerr);
    stream_producer_free(p, 10000);
    stream_proc_stats st;
    stream_proc_stats_get(pr, &st);
    stream_proc_free(pr);
    stream_consumer_free(co);
    stream_client_free(cin);
    stream_client_free(cout);
    stream_format_free(codec.format);
    stream_recfmt_reader_release(&codec.reader);

    info(2, "%" PRIu64 " records in %" PRIu64 " batches (%" PRIu64 " runs) -> %" PRIu64
            " records",
         st.records, st.batches, st.runs, st.outputs);
    if (rc != 0) {
        warn("%s", err[0] ? err : stream_strerror(rc));
        warn("offsets are committed up to the last batch whose outputs were all stored");
        return EXIT_FAIL;
    }
    if (o.exit_at_end && !stop_signal && st.records == 0) {
        info(2, "nothing to process");
        return EXIT_EMPTY;
    }
    return EXIT_OK;
}
