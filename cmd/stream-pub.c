/*
 * stream-pub - publishes records read from standard input to a topic.
 *
 * Input is split into records by the library (stream_cli_splitter for
 * delimited text, stream_recfmt_reader for --json and --msgpack), each record
 * is handed to the producer (which copies it into a batch), and the delivery
 * reports are counted. The one promise this program makes: it exits 0 only
 * when every record it read was acknowledged by the broker (with --acks 0:
 * sent), and otherwise says how many were not and why the first one failed.
 *
 * The loop never blocks on stdin while records wait for their batch to be
 * sent or acknowledged: it polls stdin with a short timeout and drives the
 * producer in between, so `tail -f log | stream-pub` publishes each line
 * within linger.ms, and a bulk pipe is read in 1 MiB chunks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/codec.h"
#include "stream/error.h"
#include "stream/format.h"
#include "stream/recfmt.h"
#include "stream/timespec.h"

static const char usage_text[] =
    "Usage: stream-pub -t TOPIC [OPTION]...\n"
    "Publish records read from standard input to TOPIC, one per line by default.\n"
    "\n"
    "  -t, --topic TOPIC          topic to publish to (required)\n"
    "  -b, --brokers HOST:PORT,.. brokers (default $STREAM_BROKERS, else 127.0.0.1:9292)\n"
    "Input:\n"
    "  -D, --delimiter DELIM      record delimiter (default \\n; escapes \\n \\t \\0 \\xNN)\n"
    "  -K, --key-delimiter DELIM  split each record into key and value at the first DELIM\n"
    "  -k, --key KEY              key of every record (a key split off with -K wins)\n"
    "  -H, --header NAME=VALUE    add a header to every record (repeatable)\n"
    "  -Z, --null-empty           send empty keys and values as null (tombstones)\n"
    "  -l, --whole                all of standard input is one record\n"
    "      --json                 read JSON lines, as stream-sub --json writes them\n"
    "      --msgpack              read a MessagePack stream, as stream-sub --msgpack writes\n"
    "Delivery:\n"
    "  -p, --partition N          publish to partition N (default: by key, else sticky)\n"
    "      --acks 0|1|all         acknowledgement to wait for (default all: on disk)\n"
    "      --linger-ms MS         wait up to MS for a batch to fill (default 5)\n"
    "      --batch-bytes SIZE     send a batch at SIZE bytes, e.g. 64k (default 256k)\n"
    "  -z, --compression CODEC    none (default), gzip, snappy, lz4 or zstd\n"
    "      --retries N            resend a failed batch up to N times (default 30)\n"
    "      --no-idempotence       plain resends: a retry may store a batch twice\n"
    "      --ack-log FILE         append 'RECORD PARTITION OFFSET' per acknowledged record\n"
    "                             to FILE ('-': standard output)\n"
    "  -q, --quiet                print nothing but errors\n"
    "  -v, --verbose              print a summary; -vv also each failed record\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n"
    "\n"
    "Exit status: 0 when every record was acknowledged, 1 when any was not (or on\n"
    "an error), 2 for bad options. See stream-pub(1).\n";

enum {
    OPT_JSON = 256,
    OPT_MSGPACK,
    OPT_ACKS,
    OPT_LINGER,
    OPT_BATCH,
    OPT_RETRIES,
    OPT_ACK_LOG,
    OPT_NO_IDEMPOTENCE,
    OPT_VERSION
};

static const struct option long_options[] = {
    {"topic", required_argument, NULL, 't'},
    {"brokers", required_argument, NULL, 'b'},
    {"delimiter", required_argument, NULL, 'D'},
    {"key-delimiter", required_argument, NULL, 'K'},
    {"key", required_argument, NULL, 'k'},
    {"header", required_argument, NULL, 'H'},
    {"null-empty", no_argument, NULL, 'Z'},
    {"whole", no_argument, NULL, 'l'},
    {"json", no_argument, NULL, OPT_JSON},
    {"msgpack", no_argument, NULL, OPT_MSGPACK},
    {"partition", required_argument, NULL, 'p'},
    {"acks", required_argument, NULL, OPT_ACKS},
    {"linger-ms", required_argument, NULL, OPT_LINGER},
    {"batch-bytes", required_argument, NULL, OPT_BATCH},
    {"compression", required_argument, NULL, 'z'},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"ack-log", required_argument, NULL, OPT_ACK_LOG},
    {"no-idempotence", no_argument, NULL, OPT_NO_IDEMPOTENCE},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* What the options ask for. */
typedef struct pub_opts {
    const char *topic;
    const char *brokers;
    stream_buf delim;       /* record delimiter bytes (empty with -l) */
    stream_buf key_delim;   /* -K bytes; empty when not given */
    const char *key;        /* -k; NULL when not given */
    stream_header *headers; /* -H, borrowing argv */
    size_t header_count;
    bool null_empty;               /* -Z */
    bool whole;                    /* -l */
    stream_recfmt_kind structured; /* --json / --msgpack; 0 for delimited text */
    int32_t partition;             /* -p, or STREAM_PARTITION_ANY */
    stream_producer_conf pconf;
    const char *ack_log; /* --ack-log FILE, or NULL */
} pub_opts;

/* The run's state, shared with the delivery callback. */
typedef struct pub_state {
    uint64_t records;    /* records read and handed to the producer (or refused by it) */
    uint64_t acked;      /* delivery reports with err 0 */
    uint64_t failed;     /* reports with an error, plus records the producer refused */
    char first_err[640]; /* why the first failed record failed */
    FILE *ack_log;       /* --ack-log stream, or NULL */
    bool ack_log_failed; /* a write to it failed */
} pub_state;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void record_failure(pub_state *st, uint64_t recno, const char *why)
{
    st->failed++;
    if (st->first_err[0] == '\0')
        snprintf(st->first_err, sizeof(st->first_err), "record %" PRIu64 ": %s", recno, why);
    info(3, "record %" PRIu64 " failed: %s", recno, why);
}

static void on_delivery(stream_producer *p, const stream_delivery *d, void *opaque)
{
    pub_state *st = opaque;
    uint64_t recno = (uint64_t)(uintptr_t)d->opaque;
    if (d->err != 0) {
        record_failure(st, recno, d->msg && *d->msg ? d->msg : stream_strerror(d->err));
        return;
    }
    st->acked++;
    if (st->ack_log && fprintf(st->ack_log, "%" PRIu64 " %" PRId32 " %" PRId64 "\n", recno,
                               d->partition, d->offset) < 0)
        st->ack_log_failed = true;
}

/* Hands one record to the producer, waiting for buffer space if need be.
 * Returns 0 when the record now has a delivery report to come or failed on
 * its own (counted); a negative code when nothing after it can succeed. */
static int publish(stream_producer *p, pub_state *st, stream_producer_record *rec,
                   bool partition_from_input)
{
    char err[512];
    uint64_t recno = ++st->records;
    rec->opaque = (void *)(uintptr_t)recno;
    int rc;
    while ((rc = stream_producer_produce(p, rec, err, sizeof(err))) == STREAM_EAGAIN) {
        /* buffer_bytes in use: reports free room as acknowledgements come. */
        int prc = stream_producer_poll(p, 100);
        if (prc < 0) {
            record_failure(st, recno, stream_strerror(prc));
            return prc;
        }
    }
    if (rc == 0)
        return 0;
    record_failure(st, recno, err[0] ? err : stream_strerror(rc));
    /* A record too large, or a partition named by this one record, fails
     * alone; anything else (unknown topic, broker gone) fails them all. */
    if (rc == STREAM_ETOOLARGE || (rc == STREAM_ENOPART && partition_from_input))
        return 0;
    return rc;
}

/* Waits until fd has input (or EOF/error) while driving the producer, so
 * records already read are sent within linger.ms and their reports run.
 * Returns false when a signal asked to stop. */
static bool wait_input(stream_producer *p, int fd)
{
    for (;;) {
        if (stop_signal)
            return false;
        bool busy = stream_producer_outstanding(p) > 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, busy ? 1 : 500);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return true; /* let read(2) report it */
        if (busy)
            stream_producer_poll(p, 1);
    }
}

/* Reads delimited text (or, with -l, all input as one record). Returns 0,
 * or a negative code with errbuf set (input error) or st holding the error
 * (publish failure). */
static int run_delimited(const pub_opts *o, stream_producer *p, pub_state *st, char *errbuf,
                         size_t errbuf_len)
{
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, o->delim.data, o->whole ? 0 : o->delim.len, 0);
    stream_producer_record rec = {0};
    rec.topic = o->topic;
    rec.partition = o->partition;
    rec.headers = o->headers;
    rec.header_count = o->header_count;
    int32_t fixed_key_len = o->key ? (int32_t)strlen(o->key) : -1;
    int rc = 0;
    for (;;) {
        const uint8_t *r;
        size_t len;
        uint64_t since_poll = 0;
        while ((rc = stream_cli_splitter_next(&s, &r, &len, errbuf, errbuf_len)) == 1) {
            const uint8_t *k = (const uint8_t *)o->key, *v = r;
            size_t klen = fixed_key_len < 0 ? 0 : (size_t)fixed_key_len, vlen = len;
            bool has_key = o->key != NULL;
            if (o->key_delim.len && stream_cli_split_key(r, len, o->key_delim.data,
                                                         o->key_delim.len, &k, &klen, &v, &vlen))
                has_key = true;
            rec.key = has_key ? k : NULL;
            rec.key_len = has_key && !(o->null_empty && klen == 0) ? (int32_t)klen : -1;
            rec.value = v;
            rec.value_len = o->null_empty && vlen == 0 ? -1 : (int32_t)vlen;
            if (rec.key_len < 0)
                rec.key = NULL;
            if (rec.value_len < 0)
                rec.value = NULL;
            if ((rc = publish(p, st, &rec, false)) < 0)
                goto out;
            /* Keep the socket busy during a long chunk of short records. */
            if (++since_poll == 8192) {
                since_poll = 0;
                stream_producer_poll(p, 0);
            }
        }
        if (rc < 0 || s.eof || stop_signal)
            break;
        stream_producer_poll(p, 0);
        if (!wait_input(p, 0))
            break;
        int n = stream_cli_splitter_fill(&s, 0, errbuf, errbuf_len);
        if (n < 0 && n != STREAM_EAGAIN) {
            rc = n;
            break;
        }
    }
out:
    stream_cli_splitter_release(&s);
    return rc;
}

/* Reads --json lines or a --msgpack stream (lossless: key, value, headers,
 * timestamp, and partition unless -p overrides it). Same returns. */
static int run_structured(const pub_opts *o, stream_producer *p, pub_state *st, char *errbuf,
                          size_t errbuf_len)
{
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, o->structured);
    stream_recfmt_in in;
    int rc = 0;
    bool eof = false;
    for (;;) {
        while ((rc = stream_recfmt_reader_next(&r, &in, errbuf, errbuf_len)) == 1) {
            stream_producer_record rec = {0};
            rec.topic = o->topic;
            bool from_input = o->partition < 0 && in.has_partition;
            rec.partition = from_input ? in.rec.partition : o->partition;
            rec.timestamp = in.has_timestamp ? in.rec.timestamp : 0;
            rec.key = in.rec.key;
            rec.key_len = in.rec.key_len;
            rec.value = in.rec.value;
            rec.value_len = in.rec.value_len;
            rec.headers = in.rec.headers;
            rec.header_count = in.rec.header_count;
            if ((rc = publish(p, st, &rec, from_input)) < 0)
                goto out;
        }
        if (rc < 0 || eof || stop_signal)
            break;
        stream_producer_poll(p, 0);
        if (!wait_input(p, 0))
            break;
        int n = stream_recfmt_reader_fill(&r, 0);
        if (n == 0)
            eof = true; /* the reader now returns the last, unterminated record */
        else if (n < 0 && n != STREAM_EAGAIN) {
            snprintf(errbuf, errbuf_len, "cannot read standard input: %s", stream_strerror(n));
            rc = n;
            break;
        }
    }
out:
    stream_recfmt_reader_release(&r);
    return rc;
}

static void parse_delim(const char *flag, const char *arg, stream_buf *out)
{
    char err[256];
    stream_buf_reset(out);
    if (stream_format_parse_delim(arg, strlen(arg), out, err, sizeof(err)) != 0)
        usage_error("%s: %s", flag, err);
    if (out->len > STREAM_CLI_DELIM_MAX)
        usage_error("%s: a delimiter is at most %d bytes", flag, STREAM_CLI_DELIM_MAX);
}

static void parse_options(int argc, char **argv, pub_opts *o)
{
    char err[512];
    const char *delim_arg = NULL;
    bool has_key_opts = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":t:b:D:K:k:H:Zlp:z:qvh", long_options, NULL)) != -1) {
        switch (opt) {
        case 't':
            o->topic = optarg;
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 'D':
            delim_arg = optarg;
            parse_delim("-D", optarg, &o->delim);
            break;
        case 'K':
            has_key_opts = true;
            parse_delim("-K", optarg, &o->key_delim);
            break;
        case 'k':
            has_key_opts = true;
            o->key = optarg;
            break;
        case 'H': {
            stream_header *h = realloc(o->headers, (o->header_count + 1) * sizeof(*h));
            if (h == NULL)
                die("out of memory");
            o->headers = h;
            if (stream_cli_parse_header(optarg, &h[o->header_count], err, sizeof(err)) != 0)
                usage_error("-H: %s", err);
            o->header_count++;
            has_key_opts = true;
            break;
        }
        case 'Z':
            o->null_empty = true;
            has_key_opts = true;
            break;
        case 'l':
            o->whole = true;
            break;
        case OPT_JSON:
        case OPT_MSGPACK: {
            stream_recfmt_kind k = opt == OPT_JSON ? STREAM_RECFMT_JSON : STREAM_RECFMT_MSGPACK;
            if (o->structured && o->structured != k)
                usage_error("--json and --msgpack cannot be combined");
            o->structured = k;
            break;
        }
        case 'p':
            o->partition = (int32_t)cmd_parse_int(optarg, 0, INT32_MAX, "partition");
            break;
        case OPT_ACKS:
            if (stream_cli_parse_acks(optarg, &o->pconf.acks, err, sizeof(err)) != 0)
                usage_error("--acks: %s", err);
            break;
        case OPT_LINGER:
            o->pconf.linger_ms = (int)cmd_parse_int(optarg, 0, 60000, "--linger-ms");
            break;
        case OPT_BATCH: {
            int64_t n;
            if (stream_size_parse_str(optarg, &n, err, sizeof(err)) != 0)
                usage_error("--batch-bytes: %s", err);
            if (n < 1 || n > (1 << 30))
                usage_error("--batch-bytes: '%s' is out of range (1 to 1g)", optarg);
            o->pconf.batch_bytes = (size_t)n;
            if (o->pconf.max_request_bytes < o->pconf.batch_bytes)
                o->pconf.max_request_bytes = o->pconf.batch_bytes;
            break;
        }
        case 'z': {
            int codec = stream_codec_from_name(optarg);
            if (codec < 0)
                usage_error("-z: unknown codec '%s' (expected none, gzip, snappy, lz4 or zstd)",
                            optarg);
            o->pconf.codec = (stream_codec)codec;
            break;
        }
        case OPT_RETRIES:
            o->pconf.retries = (int)cmd_parse_int(optarg, 0, INT32_MAX, "--retries");
            break;
        case OPT_ACK_LOG:
            o->ack_log = optarg;
            break;
        case OPT_NO_IDEMPOTENCE:
            o->pconf.idempotence = false;
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
        usage_error("unexpected argument '%s' (records are read from standard input)",
                    argv[optind]);
    if (o->topic == NULL || *o->topic == '\0')
        usage_error("no topic given (-t TOPIC)");
    if (o->structured && (delim_arg || o->key_delim.len || o->whole || has_key_opts))
        usage_error("--json and --msgpack records carry their own keys and headers: "
                    "-D, -K, -k, -H, -Z and -l do not apply");
    if (o->whole && delim_arg)
        usage_error("-l reads one record: -D does not apply");
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    pub_opts o = {0};
    o.partition = STREAM_PARTITION_ANY;
    stream_buf_init(&o.delim);
    stream_buf_init(&o.key_delim);
    stream_buf_put_u8(&o.delim, '\n');
    stream_producer_conf_init(&o.pconf);
    parse_options(argc, argv, &o);

    /* A closed pipe must be an error we see (EPIPE), not a silent death;
     * SIGINT/SIGTERM stop reading, and the records read are still
     * delivered and counted (a second signal kills at once). */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    pub_state st = {0};
    if (o.ack_log) {
        st.ack_log = strcmp(o.ack_log, "-") == 0 ? stdout : fopen(o.ack_log, "a");
        if (st.ack_log == NULL)
            die("cannot open %s: %s", o.ack_log, strerror(errno));
    }

    char err[1024];
    stream_client *c;
    if (stream_cli_connect(cmd_brokers(o.brokers), "stream-pub/" STREAM_VERSION, 0, &c, err,
                           sizeof(err)) != 0)
        die("%s", err);
    o.pconf.on_delivery = on_delivery;
    o.pconf.opaque = &st;
    stream_producer *p;
    if (stream_producer_new(c, &o.pconf, &p, err, sizeof(err)) != 0) {
        stream_client_free(c);
        die("%s", err);
    }

    err[0] = '\0';
    int rc = o.structured ? run_structured(&o, p, &st, err, sizeof(err))
                          : run_delimited(&o, p, &st, err, sizeof(err));
    bool input_error = rc < 0 && err[0] != '\0';

    /* Every record read gets its report before we judge the run; what is
     * still unreported after flush is reported failed (ECLOSED) by free. */
    stream_producer_flush(p, -1);
    stream_producer_free(p, 0);
    stream_client_free(c);

    int status = EXIT_OK;
    if (st.ack_log && (fflush(st.ack_log) != 0 || st.ack_log_failed)) {
        warn("cannot write %s: %s", o.ack_log, strerror(errno));
        status = EXIT_FAIL;
    }
    if (st.ack_log && st.ack_log != stdout)
        fclose(st.ack_log);
    if (input_error) {
        /* The reader stops at a bad record: nothing after it lines up. */
        warn("%s (input stopped there; records read before it: %" PRIu64 ")", err, st.records);
        status = EXIT_FAIL;
    }
    if (st.failed > 0) {
        warn("%" PRIu64 " of %" PRIu64 " records failed: %s", st.failed, st.records, st.first_err);
        status = EXIT_FAIL;
    } else if (st.acked != st.records) {
        /* Cannot happen if the producer keeps its one-report promise; never
         * call a record delivered without its report. */
        warn("%" PRIu64 " of %" PRIu64 " records were not acknowledged", st.records - st.acked,
             st.records);
        status = EXIT_FAIL;
    }
    if (status == EXIT_OK)
        info(2, "%" PRIu64 " records published to '%s'", st.acked, o.topic);
    if (stop_signal)
        info(2, "stopped by signal %d after %" PRIu64 " records", (int)stop_signal, st.records);
    free(o.headers);
    stream_buf_release(&o.delim);
    stream_buf_release(&o.key_delim);
    return status;
}
