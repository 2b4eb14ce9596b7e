/*
 * stream-sub - writes the records of a topic to standard output.
 *
 * Options become one offset spec, one compiled output format and an
 * assignment of partitions to a libstream consumer; the loop takes records
 * from the consumer, appends each in the chosen format to one output buffer
 * and writes that buffer out.
 *
 * Buffering: output is written in large chunks while records keep coming,
 * and flushed whenever the consumer has no record ready (before any wait),
 * so someone watching a pipe sees each record as soon as it arrives while a
 * bulk copy costs few write(2) calls. On a terminal, or with -u, every
 * record is written at once. Only whole records are ever written: a signal
 * or a closed pipe never leaves half a record behind.
 *
 * Exit: 0 when done or stopped by SIGINT/SIGTERM or a closed pipe (EPIPE:
 * `stream-sub | head -1` is not an error); 3 (EXIT_EMPTY) when a bounded
 * read (-e, or an end in -o) found nothing; 1 on errors; 2 on bad options.
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
#include "stream/recfmt.h"
#include "stream/timespec.h"

static const char usage_text[] =
    "Usage: stream-sub -t TOPIC [OPTION]...\n"
    "Write the records of TOPIC to standard output, following new ones as they come.\n"
    "\n"
    "  -t, --topic TOPIC          topic to read (required)\n"
    "  -b, --brokers HOST:PORT,.. brokers (default $STREAM_BROKERS, else 127.0.0.1:9292)\n"
    "  -p, --partition N[,N]..    read only these partitions (repeatable; default all)\n"
    "  -o, --offset SPEC          where to start, per partition: beginning (default), end,\n"
    "                             N, -N (N before the end), +N, @TIME (first record at or\n"
    "                             after TIME: 2026-11-24T10:00, epoch, -10m); SPEC..END\n"
    "                             stops before END (N, -N, @TIME or end)\n"
    "  -e, --exit                 exit at the end offsets seen at start instead of following\n"
    "  -c, --count N              exit after N records\n"
    "Output:\n"
    "  -f, --format FMT           format of each record (default '%v\\n'):\n"
    "                             %t topic, %p partition, %o offset, %k key, %v value,\n"
    "                             %T timestamp (ms), %D timestamp (UTC), %h headers,\n"
    "                             %K, %V key, value length (-1: null), %% a %;\n"
    "                             escapes \\n \\t \\r \\\\ \\0 \\xNN\n"
    "      --json                 one JSON object per line (lossless; stream-pub --json)\n"
    "      --msgpack              a MessagePack stream (lossless; stream-pub --msgpack)\n"
    "  -u, --unbuffered           write each record at once (default: when idle, and per\n"
    "                             record on a terminal)\n"
    "  -q, --quiet                print nothing but errors\n"
    "  -v, --verbose              say more on standard error\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n"
    "\n"
    "Exit status: 0 done (or interrupted, or the reader went away), 1 error,\n"
    "2 bad options, 3 nothing to read (with -e or an end). See stream-sub(1).\n";

enum { OPT_JSON = 256, OPT_MSGPACK, OPT_VERSION };

static const struct option long_options[] = {
    {"topic", required_argument, NULL, 't'},
    {"brokers", required_argument, NULL, 'b'},
    {"partition", required_argument, NULL, 'p'},
    {"offset", required_argument, NULL, 'o'},
    {"exit", no_argument, NULL, 'e'},
    {"count", required_argument, NULL, 'c'},
    {"format", required_argument, NULL, 'f'},
    {"json", no_argument, NULL, OPT_JSON},
    {"msgpack", no_argument, NULL, OPT_MSGPACK},
    {"unbuffered", no_argument, NULL, 'u'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

typedef enum out_kind { OUT_FORMAT, OUT_JSON, OUT_MSGPACK } out_kind;

typedef struct sub_opts {
    const char *topic;
    const char *brokers;
    stream_cli_partitions partitions; /* -p; empty = all */
    stream_offset_spec spec;          /* -o */
    bool exit_at_end;                 /* -e */
    uint64_t count;                   /* -c; 0 = no limit */
    out_kind kind;
    const char *format; /* -f text */
    bool unbuffered;    /* -u */
} sub_opts;

/* Output: whole records accumulate in buf and are written out in chunks. */
typedef struct sub_out {
    stream_buf buf;
    stream_format *format; /* OUT_FORMAT */
    out_kind kind;
    bool each_record; /* flush after every record (-u, or a terminal) */
    bool closed;      /* the reader went away (EPIPE) */
    char err[512];    /* a write error other than EPIPE */
} sub_out;

/* Flushes at this size even while records keep coming. */
#define OUT_CHUNK ((size_t)256 << 10)

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Writes what is buffered. Returns false once output is impossible (the
 * reader went away, or a write error: then out->err says why). */
static bool out_flush(sub_out *out)
{
    if (out->closed || out->err[0])
        return false;
    if (out->buf.len == 0)
        return true;
    int rc = stream_cli_write_all(1, out->buf.data, out->buf.len, out->err, sizeof(out->err));
    stream_buf_reset(&out->buf);
    if (rc == STREAM_ECLOSED)
        out->closed = true;
    else if (rc != 0 && out->err[0] == '\0')
        snprintf(out->err, sizeof(out->err), "cannot write standard output: %s",
                 stream_strerror(rc));
    return rc == 0;
}

/* True when standard output is a pipe whose reader has gone: poll(2)
 * reports POLLERR on the write end. Checked before each wait, so
 * `stream-sub -t t | head -1` ends once head has its line, instead of
 * waiting for another record to find out. */
static bool reader_gone(void)
{
    struct pollfd pfd = {.fd = 1, .events = 0};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

/* Appends one record in the output format. Returns false when output is
 * impossible (see out_flush) or the record could not be formatted (err). */
static bool out_record(sub_out *out, const stream_consumer_event *ev)
{
    stream_fmt_record r;
    stream_fmt_record_from_record(&r, ev->topic, strlen(ev->topic), ev->partition, &ev->record);
    size_t mark = out->buf.len;
    int rc = out->kind == OUT_JSON      ? stream_recfmt_write_json(&out->buf, &r)
             : out->kind == OUT_MSGPACK ? stream_recfmt_write_msgpack(&out->buf, &r)
                                        : stream_format_apply(out->format, &r, &out->buf);
    if (rc != 0) {
        /* Never write half a record. */
        out->buf.len = mark;
        snprintf(out->err, sizeof(out->err),
                 "topic '%s' partition %" PRId32 " offset %" PRId64 ": cannot format record: %s",
                 ev->topic, ev->partition, ev->record.offset, stream_strerror(rc));
        return false;
    }
    if (out->each_record || out->buf.len >= OUT_CHUNK)
        return out_flush(out);
    return true;
}

static void parse_options(int argc, char **argv, sub_opts *o)
{
    char err[512];
    const char *offset_arg = NULL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":t:b:p:o:ec:f:uqvh", long_options, NULL)) != -1) {
        switch (opt) {
        case 't':
            o->topic = optarg;
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
        case 'c':
            o->count = (uint64_t)cmd_parse_int(optarg, 1, INT64_MAX, "count");
            break;
        case 'f':
            o->format = optarg;
            o->kind = OUT_FORMAT;
            break;
        case OPT_JSON:
            o->kind = OUT_JSON;
            break;
        case OPT_MSGPACK:
            o->kind = OUT_MSGPACK;
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
            fputs(usage_text, stdout);
            exit(fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL);
        case OPT_VERSION:
            cmd_version();
        case ':':
            usage_error("option '%s' needs an argument", argv[optind - 1]);
        case '?':
            if (optopt)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", argv[optind - 1]);
        default:
            break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (o->topic == NULL || *o->topic == '\0')
        usage_error("no topic given (-t TOPIC)");
    if (o->format && o->kind != OUT_FORMAT)
        usage_error("-f cannot be combined with --json or --msgpack");
    if (o->spec.start.kind == STREAM_OFFSET_STORED)
        usage_error("-o %s: stored offsets belong to a consumer group (-g), which stream-sub "
                    "does not support yet",
                    offset_arg);
}

/* Assigns the partitions asked for; dies with the consumer's message (unknown
 * topic, no such partition, a broker error) on failure. */
static void assign(stream_consumer *co, const sub_opts *o)
{
    char err[1024];
    size_t n = o->partitions.count ? o->partitions.count : 1;
    for (size_t i = 0; i < n; i++) {
        int32_t part = o->partitions.count ? o->partitions.ids[i] : STREAM_PARTITION_ALL;
        err[0] = '\0';
        int rc = stream_consumer_assign(co, o->topic, part, &o->spec, err, sizeof(err));
        if (rc == STREAM_ENOTOPIC)
            die("%s (stream-topics list shows the topics there are)", err);
        if (rc != 0)
            die("%s", err[0] ? err : stream_strerror(rc));
    }
}

/* Takes records until done, stopped, the count is reached or output fails.
 * Returns the records written; fills err on a consumer or partition error. */
static uint64_t consume(stream_consumer *co, const sub_opts *o, sub_out *out, char *err,
                        size_t err_len)
{
    uint64_t written = 0;
    stream_consumer_event ev;
    while (!stop_signal && (o->count == 0 || written < o->count)) {
        int rc = stream_consumer_poll(co, 0, &ev);
        if (rc == 0) {
            if (stream_consumer_done(co))
                break;
            /* Nothing ready: show what we have before waiting. A bounded
             * wait, so a signal that lands just before it is seen soon. */
            if (!out_flush(out))
                break;
            if (reader_gone()) {
                out->closed = true;
                break;
            }
            rc = stream_consumer_poll(co, 500, &ev);
            if (rc == 0)
                continue;
        }
        if (rc < 0) {
            snprintf(err, err_len, "%s", stream_strerror(rc));
            break;
        }
        if (ev.type == STREAM_EVENT_RECORD) {
            if (!out_record(out, &ev))
                break;
            written++;
        } else if (ev.type == STREAM_EVENT_EOF) {
            info(2, "topic '%s' partition %" PRId32 ": at the end, offset %" PRId64, ev.topic,
                 ev.partition, ev.offset);
        } else if (ev.type == STREAM_EVENT_ERROR) {
            snprintf(err, err_len, "%s", ev.msg && *ev.msg ? ev.msg : stream_strerror(ev.err));
            break;
        }
    }
    out_flush(out);
    return written;
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    sub_opts o = {0};
    o.spec.start.kind = STREAM_OFFSET_BEGINNING;
    o.spec.end.kind = STREAM_OFFSET_NONE;
    parse_options(argc, argv, &o);

    char err[1024];
    sub_out out = {0};
    stream_buf_init(&out.buf);
    out.kind = o.kind;
    out.each_record = o.unbuffered || isatty(1);
    if (o.kind == OUT_FORMAT) {
        if (stream_format_compile(o.format ? o.format : "%v\\n", &out.format, err, sizeof(err)) !=
            0)
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
    if (stream_cli_connect(cmd_brokers(o.brokers), "stream-sub/" STREAM_VERSION, 0, &c, err,
                           sizeof(err)) != 0)
        die("%s", err);
    stream_consumer_conf cconf;
    stream_consumer_conf_init(&cconf);
    cconf.stop_at_end = o.exit_at_end;
    stream_consumer *co;
    if (stream_consumer_new(c, &cconf, &co, err, sizeof(err)) != 0)
        die("%s", err);
    assign(co, &o);

    err[0] = '\0';
    uint64_t n = consume(co, &o, &out, err, sizeof(err));

    stream_consumer_free(co);
    stream_client_free(c);
    stream_format_free(out.format);
    stream_buf_release(&out.buf);
    stream_cli_partitions_release(&o.partitions);

    int status = EXIT_OK;
    if (err[0]) {
        warn("%s", err);
        status = EXIT_FAIL;
    } else if (out.err[0]) {
        warn("%s", out.err);
        status = EXIT_FAIL;
    } else if (!stop_signal && !out.closed && n == 0 &&
               (o.exit_at_end || o.spec.end.kind != STREAM_OFFSET_NONE)) {
        info(2, "nothing to read");
        status = EXIT_EMPTY;
    }
    info(2, "%" PRIu64 " records", n);
    return status;
}
