/*
 * stream-bench - throughput and latency of a broker, as seen by a client.
 *
 *   produce  N records of BYTES-byte values as fast as the producer takes
 *            them (or paced at --rate): records/s, MB/s, and the latency of
 *            each record from produce() to its delivery report; with
 *            --topics K the records go round-robin to K topics (many
 *            partitions behind one producer); with --producers P, P
 *            producers on P threads and P connections share the records
 *   consume  N records (or up to the end) from the beginning, or with
 *            --group G from G's committed offsets as a member of G:
 *            records/s, MB/s, time to the first record
 *   e2e      a producer paced at --rate and a consumer in one process, two
 *            clients on two threads: the latency from sending a record to
 *            receiving it
 *
 * Everything goes through the public client API (client.h), as a user's
 * program would; latencies go into log-linear histograms (histogram.h), so
 * the hot loops neither allocate nor sort. MB are 10^6 bytes of record
 * payload (key + value; batch overhead not counted). Progress goes to
 * stderr once a second, the result line (or --json document) to stdout.
 *
 * Latency clocks: produce latency is measured from just before produce() to
 * the delivery report, the start time riding in the record's opaque
 * pointer (no per-record bookkeeping). e2e embeds the CLOCK_MONOTONIC send
 * time in ns and a per-run id in the first 16 bytes of each value, so
 * foreign records on the topic are ignored and no millisecond timestamp
 * rounding blurs sub-millisecond latencies.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/codec.h"
#include "stream/error.h"
#include "stream/histogram.h"
#include "stream/json.h"
#include "stream/progress.h"
#include "stream/proto.h"
#include "stream/timespec.h"

static const char usage_text[] =
    "Usage: stream-bench MODE [OPTION]...\n"
    "Measure a broker's throughput and latency.\n"
    "\n"
    "Modes:\n"
    "  produce   produce -n records of -s bytes; records/s, MB/s, produce latency\n"
    "  consume   read -n records (default: up to the end) from the beginning\n"
    "            (--group: from the group's committed offsets, committing at the end)\n"
    "  e2e       produce at --rate and consume in one process; end-to-end latency\n"
    "\n"
    "Options:\n"
    "  -b, --brokers LIST        host:port,... (default $STREAM_BROKERS or 127.0.0.1:9292)\n"
    CMD_TLS_HELP("      --key FILE            its PEM private key\n")
    "  -t, --topic TOPIC         topic to use (required)\n"
    "  -n, --records N           records to produce or read\n"
    "  -s, --record-size BYTES   value size (default 100; e2e at least 16)\n"
    "      --acks 0|1|all        produce, e2e: acknowledgement to wait for (default 1)\n"
    "  -z, --compression CODEC   none, gzip, snappy, lz4 or zstd (default none)\n"
    "      --rate R              records per second (e2e: required; produce: optional)\n"
    "      --partitions K        create the topic with K partitions if it is missing\n"
    "      --topics K            produce: round-robin over topics TOPIC-0..TOPIC-(K-1),\n"
    "                            each created with --partitions if missing\n"
    "      --producers P         produce: P producers, each its own thread and connection\n"
    "  -g, --group G             consume as a member of consumer group G\n"
    "      --linger-ms MS        producer linger (default: produce 5, e2e 0)\n"
    "      --batch-bytes BYTES   producer batch size (default 256k)\n"
    "      --timeout-ms MS       consume, e2e: give up after MS without a record\n"
    "                            (default 10000)\n"
    "      --json                print the result as one JSON document\n"
    "      --progress            a progress line on stderr (default: when a terminal)\n"
    "      --no-progress         never show it\n"
    "  -q, --quiet               no progress line (unless --progress)\n"
    "  -v, --verbose             e2e: also each stage's latency (producer queue,\n"
    "                            broker, sync round, ack, consumer)\n"
    "  -h, --help                show this help and exit\n"
    "      --version             show the version and exit\n";

enum {
    OPT_ACKS = 256,
    OPT_RATE,
    OPT_PARTITIONS,
    OPT_TOPICS,
    OPT_PRODUCERS,
    OPT_LINGER_MS,
    OPT_BATCH_BYTES,
    OPT_TIMEOUT_MS,
    OPT_JSON,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"topic", required_argument, NULL, 't'},
    {"records", required_argument, NULL, 'n'},
    {"record-size", required_argument, NULL, 's'},
    {"acks", required_argument, NULL, OPT_ACKS},
    {"compression", required_argument, NULL, 'z'},
    {"rate", required_argument, NULL, OPT_RATE},
    {"partitions", required_argument, NULL, OPT_PARTITIONS},
    {"topics", required_argument, NULL, OPT_TOPICS},
    {"producers", required_argument, NULL, OPT_PRODUCERS},
    {"group", required_argument, NULL, 'g'},
    {"linger-ms", required_argument, NULL, OPT_LINGER_MS},
    {"batch-bytes", required_argument, NULL, OPT_BATCH_BYTES},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
    {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"key", required_argument, NULL, CMD_OPT_CERT_KEY},
    CMD_TLS_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

typedef enum mode { MODE_PRODUCE, MODE_CONSUME, MODE_E2E } mode;

/* The command line. -1 / 0 mean "not given" where a default depends on the mode. */
typedef struct options {
    mode mode;
    const char *brokers, *topic;
    int64_t records;      /* -n; -1 not given */
    int64_t record_bytes; /* -s */
    int acks;             /* 0, 1, STREAM_ACKS_ALL */
    stream_codec codec;
    double rate;         /* 0: unpaced */
    int32_t partitions;  /* 0: not given */
    int topics;          /* --topics: 0 for the one topic -t, else TOPIC-0.. */
    int producers;       /* --producers: 0 not given (one producer) */
    const char *group;   /* -g: consume as a member of this group; NULL standalone */
    int linger_ms;       /* -1: the mode's default */
    int64_t batch_bytes; /* 0: the library's default */
    int timeout_ms;
    bool json, quiet, verbose;
    stream_progress_mode progress; /* --progress / --no-progress; AUTO: a terminal, not -q */
    bool producer_flags; /* some producer-only flag was given */
} options;

#define E2E_HEADER_BYTES 16
/* With -v a record also carries its sequence number after the header. */
#define E2E_STAGE_BYTES 24
#define HIST_MAX_NS      (INT64_C(1) << 40) /* about 18 minutes */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *acks_name(int acks)
{
    return acks == 0 ? "0" : acks == 1 ? "1" : "all";
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* records/s and MB/s over `ns`. */
static double per_sec(double x, int64_t ns)
{
    return ns > 0 ? x * 1e9 / (double)ns : 0;
}

/* Connects a new client, or dies saying why. */
static stream_client *connect_client(const options *o, const char *name)
{
    stream_client *c = NULL;
    char err[512];
    stream_client_conf ccf;
    cmd_client_conf(&ccf, o->brokers, name);
    int rc = stream_cli_connect_conf(&ccf, 0, &c, err, sizeof(err));
    if (rc == STREAM_EINVAL)
        usage_error("%s", err); /* a broker list that does not parse */
    if (rc != 0)
        die("%s", err);
    return c;
}

/* Creates the topic (with --partitions, or the broker's default) unless it
 * exists, so a consumer can be assigned before the first record. */
static void ensure_topic(stream_client *c, const options *o, const char *name)
{
    stream_new_topic t = {.name = name, .partitions = o->partitions};
    stream_topic_result *res = NULL;
    char err[512];
    if (stream_admin_create_topics(c, &t, 1, -1, &res, err, sizeof(err)) != 0)
        die("cannot create topic '%s': %s", name, err);
    int e = res[0].err;
    if (e != 0 && e != STREAM_ETOPICEXISTS)
        die("cannot create topic '%s': %s", name, *res[0].msg ? res[0].msg : stream_strerror(e));
    stream_topic_results_free(res, 1);
    if (e == STREAM_ETOPICEXISTS && o->partitions > 0) {
        int n = stream_client_partition_count(c, name, -1, err, sizeof(err));
        if (n > 0 && n != o->partitions)
            warn("topic '%s' exists with %d partitions; --partitions %d ignored", name, n,
                 (int)o->partitions);
    }
}

/* The topics a produce run writes to: -t, or with --topics K the names
 * TOPIC-0..TOPIC-(K-1), each created if missing. Freed with free(). */
static char **produce_topics(stream_client *c, const options *o, int *count)
{
    int n = o->topics > 0 ? o->topics : 1;
    size_t len = strlen(o->topic) + 16;
    char **names = malloc((size_t)n * sizeof(*names) + (size_t)n * len);
    if (names == NULL)
        die("out of memory");
    char *text = (char *)(names + n);
    for (int i = 0; i < n; i++) {
        names[i] = text + (size_t)i * len;
        if (o->topics > 0)
            snprintf(names[i], len, "%s-%d", o->topic, i);
        else
            snprintf(names[i], len, "%s", o->topic);
        ensure_topic(c, o, names[i]);
    }
    *count = n;
    return names;
}

static stream_producer *new_producer(stream_client *c, const options *o, stream_delivery_cb cb,
                                     void *arg)
{
    stream_producer_conf conf;
    stream_producer_conf_init(&conf);
    conf.acks = o->acks;
    conf.codec = o->codec;
    if (o->linger_ms >= 0)
        conf.linger_ms = o->linger_ms;
    else if (o->mode == MODE_E2E)
        conf.linger_ms = 0; /* a paced latency test wants each record out at once */
    if (o->batch_bytes > 0) {
        conf.batch_bytes = (size_t)o->batch_bytes;
        if (conf.max_request_bytes < conf.batch_bytes)
            conf.max_request_bytes = conf.batch_bytes;
    }
    conf.on_delivery = cb;
    conf.opaque = arg;
    conf.timing = o->verbose && o->mode == MODE_E2E; /* the broker's stages too */
    stream_producer *p = NULL;
    char err[512];
    if (stream_producer_new(c, &conf, &p, err, sizeof(err)) != 0)
        die("cannot create producer: %s", err);
    return p;
}

/* Fills a value with letters, so compression has something real to do. */
static void fill_value(uint8_t *v, size_t n)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = (uint8_t)('a' + x % 26);
    }
}

/* Waits until `due_ns`, driving the producer meanwhile. */
static void pace(stream_producer *p, int64_t due_ns)
{
    for (;;) {
        int64_t left = due_ns - now_ns();
        if (left <= 0)
            return;
        if (left > 2000000) {
            stream_producer_poll(p, (int)(left / 1000000) - 1);
            continue;
        }
        stream_producer_poll(p, 0);
        left = due_ns - now_ns();
        if (left > 0) {
            struct timespec ts = {0, left > 200000 ? 200000 : left};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- result printing -------------------------------------------------------- */

/* A number with a fixed number of decimals: results are measurements, and
 * 0.0079502840000000002 would claim a precision they do not have. */
static void json_fixed(stream_json_writer *w, const char *key, double v, int decimals)
{
    char num[64];
    stream_json_key(w, key);
    int n = snprintf(num, sizeof(num), "%.*f", decimals, v);
    if (!isfinite(v) || n <= 0 || (size_t)n >= sizeof(num))
        stream_json_null(w);
    else
        stream_json_raw(w, num, (size_t)n);
}

static void latency_json(stream_json_writer *w, const stream_histogram *h)
{
    stream_json_key(w, "latency_ms");
    stream_json_object_start(w);
    const struct {
        const char *name;
        double pct;
    } q[] = {{"p50", 50}, {"p95", 95}, {"p99", 99}, {"p999", 99.9}};
    json_fixed(w, "avg", stream_histogram_mean(h) / 1e6, 3);
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        json_fixed(w, q[i].name, ms(stream_histogram_percentile(h, q[i].pct)), 3);
    json_fixed(w, "max", ms(h->max), 3);
    stream_json_object_end(w);
}

static void latency_text(const stream_histogram *h)
{
    printf("latency ms: avg %.3f p50 %.3f p95 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
           stream_histogram_mean(h) / 1e6, ms(stream_histogram_percentile(h, 50)),
           ms(stream_histogram_percentile(h, 95)), ms(stream_histogram_percentile(h, 99)),
           ms(stream_histogram_percentile(h, 99.9)), ms(h->max));
}

static void json_start(stream_json_writer *w, stream_buf *buf, const options *o, const char *m)
{
    stream_buf_init(buf);
    stream_json_writer_init(w, buf);
    stream_json_object_start(w);
    stream_json_key(w, "mode");
    stream_json_cstring(w, m);
    stream_json_key(w, "topic");
    stream_json_cstring(w, o->topic);
}

static void json_finish(stream_json_writer *w, stream_buf *buf)
{
    stream_json_object_end(w);
    if (stream_json_writer_ok(w) != 0)
        die("out of memory");
    stream_buf_put_u8(buf, '\n');
    if (fwrite(buf->data, 1, buf->len, stdout) != buf->len)
        die("cannot write to standard output");
    stream_buf_release(buf);
}

static void finish_stdout(void)
{
    if (fflush(stdout) != 0)
        die("cannot write to standard output");
}

/* ---- produce ------------------------------------------------------------------ */

/*
 * One producer of a produce run. With --producers P there are P of these,
 * each with its own client (so its own connection: the broker sees P
 * producers, as it would P processes), producer, thread and histogram.
 * Worker j sends the run's records j, j+P, j+2P, ..., so the spread over
 * --topics and the --rate schedule are those of one producer, and the
 * shares differ by at most one record.
 *
 * The histogram and the counters are written by delivery reports on the
 * worker's own thread. With P > 1 the main thread reads them once a second
 * for the progress line, so they are behind `lock` then: one uncontended
 * lock per report, and no lock at all with one producer.
 */
typedef struct produce_worker {
    const options *o;
    char **topics; /* borrowed: the run's ntopics topics */
    int ntopics;
    int index, stride;           /* sends records index, index + stride, ... of -n */
    int64_t t0_ns;               /* the run's start: the --rate schedule, the opaque times */
    const uint8_t *value;        /* borrowed: the value every record carries */
    stream_client *c;            /* owned: this worker's connection */
    stream_producer *p;          /* owned */
    stream_progress *progress;   /* borrowed: the run's line, drawn by a lone worker */
    struct produce_watch *watch; /* told when the worker is done (P > 1); else NULL */
    pthread_mutex_t lock;        /* with watch: guards hist, delivered, failed, last_msg */
    stream_histogram hist;       /* produce() -> delivery report, ns */
    uint64_t delivered, failed;
    char last_msg[256]; /* the last failed report's reason */
    char error[512];    /* why the worker stopped producing early; "" if it did not */
} produce_worker;

/* How the main thread waits for P > 1 workers: until all are done, waking
 * once a second for the progress line. */
typedef struct produce_watch {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled as each worker finishes; CLOCK_MONOTONIC */
    int running;         /* workers not done yet */
} produce_watch;

static void on_delivery(stream_producer *p, const stream_delivery *d, void *arg)
{
    produce_worker *w = arg;
    /* The start time rides in the opaque as ns since t0; unsigned arithmetic
     * gives the right difference even where uintptr_t is 32 bits, for
     * latencies under 4 s there. */
    uintptr_t sent = (uintptr_t)d->opaque;
    uintptr_t now = (uintptr_t)(now_ns() - w->t0_ns);
    if (w->watch)
        pthread_mutex_lock(&w->lock);
    if (d->err == 0) {
        w->delivered++;
        stream_histogram_record(&w->hist, (int64_t)(now - sent));
    } else {
        w->failed++;
        snprintf(w->last_msg, sizeof(w->last_msg), "%s",
                 d->msg && *d->msg ? d->msg : stream_strerror(d->err));
    }
    if (w->watch)
        pthread_mutex_unlock(&w->lock);
}

/* Starts the run's progress line on stderr, labelled with the mode. A
 * producing mode knows its size (-n records of -s bytes); consume does not
 * (records vary). */
static void progress_start(stream_progress *pg, const options *o, const char *label)
{
    stream_progress_mode pm = o->progress;
    if (pm == STREAM_PROGRESS_AUTO && o->quiet)
        pm = STREAM_PROGRESS_OFF;
    bool sized = strcmp(label, "consume") != 0 && o->records > 0;
    uint64_t total = sized ? (uint64_t)o->records * (uint64_t)o->record_bytes : 0;
    stream_progress_init(pg, stderr, pm, label, total);
}

/* Shows `records` done and the latency p99 so far (h NULL: none). */
static void progress_show(stream_progress *pg, const options *o, uint64_t records,
                          const stream_histogram *h)
{
    if (!pg->enabled)
        return;
    if (h != NULL) {
        char note[48];
        snprintf(note, sizeof(note), "p99 %.3f ms", ms(stream_histogram_percentile(h, 99)));
        stream_progress_note(pg, note);
    }
    stream_progress_update(pg, records, records * (uint64_t)o->record_bytes);
}

/* Produces the worker's share and flushes it. With one producer it prints
 * the progress lines itself; with more, the main thread does (watch). */
static void *produce_worker_run(void *arg)
{
    produce_worker *w = arg;
    const options *o = w->o;
    stream_producer_record rec = {0};
    rec.topic = w->topics[w->index % w->ntopics];
    rec.partition = STREAM_PARTITION_ANY;
    rec.key_len = -1;
    rec.value = w->value;
    rec.value_len = (int32_t)o->record_bytes;

    char err[256];
    bool report = w->watch == NULL && w->progress->enabled;
    int64_t next_report = w->t0_ns + 1000000000;
    uint64_t n = 0;
    for (int64_t i = w->index; i < o->records; i += w->stride, n++) {
        if (o->rate > 0)
            pace(w->p, w->t0_ns + (int64_t)((double)i * 1e9 / o->rate));
        rec.opaque = (void *)(uintptr_t)(now_ns() - w->t0_ns);
        if (w->ntopics > 1)
            rec.topic = w->topics[i % w->ntopics];
        int rc;
        while ((rc = stream_producer_produce(w->p, &rec, err, sizeof(err))) == STREAM_EAGAIN)
            stream_producer_poll(w->p, 1); /* the buffer is full: let batches drain */
        if (rc != 0) {
            snprintf(w->error, sizeof(w->error), "cannot produce to topic '%s': %s", rec.topic,
                     err);
            break;
        }
        /* produce() does no I/O: drive it every few records. */
        if ((n & 255) == 255 || o->rate > 0) {
            stream_producer_poll(w->p, 0);
            int64_t t = report ? now_ns() : 0;
            if (report && t >= next_report) {
                progress_show(w->progress, o, w->delivered, &w->hist);
                next_report += 1000000000;
            }
        }
    }
    if (stream_producer_flush(w->p, -1) != 0)
        warn("%zu records still not acknowledged", stream_producer_outstanding(w->p));
    if (w->watch) {
        pthread_mutex_lock(&w->watch->lock);
        w->watch->running--;
        pthread_cond_signal(&w->watch->cond);
        pthread_mutex_unlock(&w->watch->lock);
    }
    return NULL;
}

/* Runs n > 1 workers on their own threads and waits for all of them,
 * printing the progress line of the whole run once a second. */
static void run_workers(produce_worker *w, int n, const options *o, stream_progress *pg)
{
    produce_watch watch = {.running = n};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&watch.lock, NULL);
    pthread_cond_init(&watch.cond, &ca);
    pthread_condattr_destroy(&ca);
    stream_histogram sum;
    pthread_t *th = malloc((size_t)n * sizeof(*th));
    if (th == NULL || stream_histogram_init(&sum, HIST_MAX_NS, 0) != 0)
        die("out of memory");
    for (int j = 0; j < n; j++) {
        w[j].watch = &watch;
        pthread_mutex_init(&w[j].lock, NULL);
    }
    int64_t next_report = w[0].t0_ns + 1000000000;
    for (int j = 0; j < n; j++)
        if (pthread_create(&th[j], NULL, produce_worker_run, &w[j]) != 0)
            die("cannot start producer thread %d of %d", j + 1, n);

    pthread_mutex_lock(&watch.lock);
    while (watch.running > 0) {
        struct timespec due = {next_report / 1000000000, next_report % 1000000000};
        if (pthread_cond_timedwait(&watch.cond, &watch.lock, &due) == 0)
            continue; /* a worker finished */
        next_report += 1000000000;
        if (!pg->enabled)
            continue;
        pthread_mutex_unlock(&watch.lock);
        uint64_t delivered = 0;
        stream_histogram_reset(&sum);
        for (int j = 0; j < n; j++) {
            pthread_mutex_lock(&w[j].lock);
            delivered += w[j].delivered;
            stream_histogram_merge(&sum, &w[j].hist);
            pthread_mutex_unlock(&w[j].lock);
        }
        progress_show(pg, o, delivered, &sum);
        pthread_mutex_lock(&watch.lock);
    }
    pthread_mutex_unlock(&watch.lock);

    for (int j = 0; j < n; j++) {
        pthread_join(th[j], NULL);
        pthread_mutex_destroy(&w[j].lock);
        w[j].watch = NULL;
    }
    pthread_cond_destroy(&watch.cond);
    pthread_mutex_destroy(&watch.lock);
    stream_histogram_release(&sum);
    free(th);
}

static int run_produce(const options *o)
{
    int np = o->producers > 0 ? o->producers : 1;
    produce_worker *w = calloc((size_t)np, sizeof(*w));
    uint8_t *value = malloc((size_t)o->record_bytes + 1);
    if (w == NULL || value == NULL)
        die("out of memory");
    fill_value(value, (size_t)o->record_bytes);
    w[0].c = connect_client(o, "stream-bench");
    int ntopics;
    char **topics = produce_topics(w[0].c, o, &ntopics);
    /* Every connection is made before the first record: the broker sees the
     * P producers at once, and one it refuses fails the run before it starts. */
    for (int j = 0; j < np; j++) {
        if (j > 0)
            w[j].c = connect_client(o, "stream-bench");
        w[j].o = o;
        w[j].topics = topics;
        w[j].ntopics = ntopics;
        w[j].index = j;
        w[j].stride = np;
        w[j].value = value;
        if (stream_histogram_init(&w[j].hist, HIST_MAX_NS, 0) != 0)
            die("out of memory");
        w[j].p = new_producer(w[j].c, o, on_delivery, &w[j]);
    }

    stream_progress pg;
    progress_start(&pg, o, "produce");
    int64_t t0 = now_ns();
    for (int j = 0; j < np; j++) {
        w[j].t0_ns = t0;
        w[j].progress = &pg;
    }
    if (np == 1)
        produce_worker_run(&w[0]);
    else
        run_workers(w, np, o, &pg);
    int64_t elapsed = now_ns() - t0;

    /* One result for the run: worker 0's histogram and counters take the others'. */
    const char *last_msg = w[0].last_msg;
    for (int j = 0; j < np; j++) {
        if (w[j].error[0])
            die("%s", w[j].error);
        if (j == 0)
            continue;
        if (stream_histogram_merge(&w[0].hist, &w[j].hist) != 0)
            die("cannot merge the latency histograms"); /* all made alike: cannot happen */
        w[0].delivered += w[j].delivered;
        w[0].failed += w[j].failed;
        if (w[j].failed > 0)
            last_msg = w[j].last_msg;
    }
    const produce_worker *r = &w[0];
    progress_show(&pg, o, r->delivered, &r->hist);
    stream_progress_finish(&pg);
    double bytes = (double)r->delivered * (double)o->record_bytes;
    double rps = per_sec((double)r->delivered, elapsed), mbps = per_sec(bytes, elapsed) / 1e6;

    if (o->json) {
        stream_json_writer jw;
        stream_buf buf;
        json_start(&jw, &buf, o, "produce");
        stream_json_key(&jw, "topics");
        stream_json_int(&jw, ntopics);
        stream_json_key(&jw, "producers");
        stream_json_int(&jw, np);
        stream_json_key(&jw, "records");
        stream_json_uint(&jw, r->delivered);
        stream_json_key(&jw, "failed");
        stream_json_uint(&jw, r->failed);
        stream_json_key(&jw, "record_bytes");
        stream_json_int(&jw, o->record_bytes);
        stream_json_key(&jw, "acks");
        stream_json_cstring(&jw, acks_name(o->acks));
        stream_json_key(&jw, "codec");
        stream_json_cstring(&jw, stream_codec_name(o->codec));
        json_fixed(&jw, "elapsed_s", (double)elapsed / 1e9, 3);
        json_fixed(&jw, "records_per_sec", rps, 1);
        json_fixed(&jw, "mb_per_sec", mbps, 3);
        latency_json(&jw, &r->hist);
        json_finish(&jw, &buf);
    } else {
        printf("produce: %" PRIu64 " records sent, %" PRIu64 " failed, %.1f records/s, "
               "%.2f MB/s (acks=%s, %" PRId64 " bytes, %s",
               r->delivered, r->failed, rps, mbps, acks_name(o->acks), o->record_bytes,
               stream_codec_name(o->codec));
        if (o->topics > 0)
            printf(", %d topics", ntopics);
        if (np > 1)
            printf(", %d producers", np);
        printf("); ");
        latency_text(&r->hist);
    }
    finish_stdout();
    int status = EXIT_OK;
    if (r->failed > 0) {
        warn("%" PRIu64 " of %" PRId64 " records failed; last: %s", r->failed, o->records,
             last_msg);
        status = EXIT_FAIL;
    }
    for (int j = 0; j < np; j++) {
        stream_producer_free(w[j].p, 0);
        stream_client_free(w[j].c);
        stream_histogram_release(&w[j].hist);
    }
    free(w);
    free(value);
    free(topics);
    return status;
}

/* ---- consume ------------------------------------------------------------------ */

static stream_consumer *new_consumer(stream_client *c, const options *o, bool stop_at_end,
                                     stream_offset_kind start)
{
    stream_consumer_conf conf;
    stream_consumer_conf_init(&conf);
    conf.stop_at_end = stop_at_end;
    stream_consumer *co = NULL;
    char err[512];
    if (stream_consumer_new(c, &conf, &co, err, sizeof(err)) != 0)
        die("cannot create consumer: %s", err);
    stream_offset_spec spec = {.start = {.kind = start}, .end = {.kind = STREAM_OFFSET_NONE}};
    if (stream_consumer_assign(co, o->topic, STREAM_PARTITION_ALL, &spec, err, sizeof(err)) != 0)
        die("cannot read topic '%s': %s", o->topic, err);
    return co;
}

/* A member of consumer group o->group subscribed to the topic. Its
 * partitions start at the group's committed offsets (at the beginning where
 * the group has none, as a standalone consume starts) and, with
 * stop_at_end, end at their high watermarks as they were when the group
 * handed them over: "to the end" as the standalone consumer's snapshot at
 * assign. Blocking: joins the group before it returns. */
static stream_consumer *new_group_consumer(stream_client *c, const options *o, bool stop_at_end)
{
    char err[512];
    /* A member waits for a topic that does not exist yet; for a benchmark
     * that is a typing mistake, said at once as the standalone consume does. */
    if (stream_client_partition_count(c, o->topic, -1, err, sizeof(err)) < 0)
        die("cannot read topic '%s': %s", o->topic, err);
    stream_consumer_conf conf;
    stream_consumer_conf_init(&conf);
    conf.stop_at_end = stop_at_end;
    conf.auto_offset_reset = STREAM_RESET_EARLIEST;
    stream_consumer *co = NULL;
    if (stream_consumer_new(c, &conf, &co, err, sizeof(err)) != 0)
        die("cannot create consumer: %s", err);
    stream_group_conf gconf;
    stream_group_conf_init(&gconf);
    gconf.group = o->group;
    gconf.client_id = "stream-bench/" STREAM_VERSION;
    if (stream_consumer_subscribe(co, &gconf, &o->topic, 1, NULL, -1, err, sizeof(err)) != 0)
        die("cannot join group '%s': %s", o->group, err);
    return co;
}

/* Leaves the group, committing the offsets after the records read, so the
 * next run of the group reads only what came after. Returns false (with a
 * warning) when the commit failed. */
static bool leave_group(stream_consumer *co, const options *o)
{
    char err[512];
    if (stream_consumer_close(co, true, 10000, err, sizeof(err)) != 0) {
        warn("cannot commit the offsets of group '%s': %s", o->group, err);
        return false;
    }
    return true;
}

static int run_consume(const options *o)
{
    stream_client *c = connect_client(o, "stream-bench");
    int64_t t0 = now_ns();
    bool to_end = o->records < 0;
    stream_consumer *co = o->group ? new_group_consumer(c, o, to_end)
                                   : new_consumer(c, o, to_end, STREAM_OFFSET_BEGINNING);
    uint64_t records = 0, bytes = 0;
    int64_t first_ns = -1, last_rec_ns = t0, next_report = t0 + 1000000000;
    stream_progress pg;
    progress_start(&pg, o, "consume");
    int status = EXIT_OK;
    int64_t t = t0;
    bool clock_read = true;
    while (to_end || (int64_t)records < o->records) {
        stream_consumer_event ev;
        int rc = stream_consumer_poll(co, 100, &ev);
        bool is_record = rc == 1 && ev.type == STREAM_EVENT_RECORD;
        /* Reading the clock costs about as much as taking a record, so while
         * records flow it is read for the first and every 256th only; the
         * times it stamps are then late by less than 256 records. */
        clock_read = !is_record || first_ns < 0 || (records & 255) == 0;
        if (clock_read)
            t = now_ns();
        if (rc < 0)
            die("cannot read topic '%s': %s", o->topic, stream_strerror(rc));
        if (is_record) {
            if (first_ns < 0)
                first_ns = t;
            records++;
            bytes += (uint64_t)(ev.record.key_len > 0 ? ev.record.key_len : 0) +
                     (uint64_t)(ev.record.value_len > 0 ? ev.record.value_len : 0);
            last_rec_ns = t;
        } else if (rc == 1 && ev.type == STREAM_EVENT_ERROR) {
            const char *why = ev.msg && *ev.msg ? ev.msg : stream_strerror(ev.err);
            if (ev.topic == NULL) /* the group ended our membership for good */
                die("group '%s': %s", o->group, why);
            die("cannot read topic '%s' partition %d: %s", o->topic, (int)ev.partition, why);
        }
        if (to_end && stream_consumer_done(co))
            break;
        if (t - last_rec_ns > (int64_t)o->timeout_ms * 1000000) {
            warn("no record for %d ms: read %" PRIu64 " of %" PRId64 " records", o->timeout_ms,
                 records, o->records);
            status = EXIT_FAIL;
            break;
        }
        if (clock_read && t >= next_report) {
            stream_progress_update(&pg, records, bytes);
            next_report += 1000000000;
        }
    }
    if (!clock_read)
        last_rec_ns = now_ns(); /* stopped on a record whose time was not read */
    stream_progress_update(&pg, records, bytes);
    stream_progress_finish(&pg);
    int64_t elapsed = (records ? last_rec_ns : now_ns()) - t0;
    double rps = per_sec((double)records, elapsed), mbps = per_sec((double)bytes, elapsed) / 1e6;
    double first_ms = first_ns < 0 ? NAN : ms(first_ns - t0);
    if (o->json) {
        stream_json_writer w;
        stream_buf buf;
        json_start(&w, &buf, o, "consume");
        stream_json_key(&w, "records");
        stream_json_uint(&w, records);
        stream_json_key(&w, "bytes");
        stream_json_uint(&w, bytes);
        json_fixed(&w, "elapsed_s", (double)elapsed / 1e9, 3);
        json_fixed(&w, "records_per_sec", rps, 1);
        json_fixed(&w, "mb_per_sec", mbps, 3);
        json_fixed(&w, "first_record_ms", first_ms, 3); /* NaN (no record): null */
        stream_json_key(&w, "group");
        if (o->group)
            stream_json_cstring(&w, o->group);
        else
            stream_json_null(&w);
        json_finish(&w, &buf);
    } else {
        printf("consume: %" PRIu64 " records, %.1f records/s, %.2f MB/s, ", records, rps, mbps);
        if (first_ns < 0)
            printf("no record read");
        else
            printf("first record after %.3f ms", first_ms);
        if (o->group)
            printf(" (group %s)", o->group);
        printf("\n");
    }
    finish_stdout();
    if (o->group && !leave_group(co, o))
        status = EXIT_FAIL;
    stream_consumer_free(co);
    stream_client_free(c);
    return status;
}

/* ---- e2e ------------------------------------------------------------------------ */

typedef struct e2e_run {
    const options *o;
    stream_client *c; /* the producer's own client (its own connection) */
    uint64_t run_id;  /* in every value, to tell our records from others */
    atomic_uint_fast64_t sent;
    atomic_bool done; /* the producer has flushed (or failed) */
    uint64_t failed;  /* delivery failures; read after join */
    char error[512];  /* why the producer stopped early; "" if it did not */
    /* -v: by sequence number, when each record was produced, acknowledged
     * and consumed (0: never); written by one thread each, read after join */
    int64_t *produced_ns, *acked_ns, *consumed_ns;
    stream_delivery_timing *timing; /* -v: the broker's account of each (sent_ns 0: none) */
} e2e_run;

static void on_e2e_delivery(stream_producer *p, const stream_delivery *d, void *arg)
{
    e2e_run *r = arg;
    uintptr_t seq = (uintptr_t)d->opaque;
    if (d->err == 0 && r->acked_ns != NULL && seq > 0 && seq <= (uintptr_t)r->o->records) {
        r->acked_ns[seq - 1] = now_ns();
        if (d->timing != NULL)
            r->timing[seq - 1] = *d->timing;
    }
    if (d->err != 0 && r->failed++ == 0)
        snprintf(r->error, sizeof(r->error), "delivery failed: %s",
                 d->msg && *d->msg ? d->msg : stream_strerror(d->err));
}

static void *e2e_producer(void *arg)
{
    e2e_run *r = arg;
    const options *o = r->o;
    stream_producer *p = new_producer(r->c, o, on_e2e_delivery, r);
    uint8_t *value = malloc((size_t)o->record_bytes);
    if (value == NULL) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        atomic_store(&r->done, true);
        return NULL;
    }
    fill_value(value, (size_t)o->record_bytes);
    memcpy(value + 8, &r->run_id, 8);
    stream_producer_record rec = {0};
    rec.topic = o->topic;
    rec.partition = STREAM_PARTITION_ANY;
    rec.key_len = -1;
    rec.value = value;
    rec.value_len = (int32_t)o->record_bytes;
    int64_t t0 = now_ns();
    for (int64_t i = 0; i < o->records; i++) {
        pace(p, t0 + (int64_t)((double)i * 1e9 / o->rate));
        int64_t t = now_ns();
        memcpy(value, &t, 8);
        if (r->produced_ns != NULL) {
            uint64_t seq = (uint64_t)i;
            memcpy(value + 16, &seq, 8);
            rec.opaque = (void *)(uintptr_t)(i + 1);
            r->produced_ns[i] = t;
        }
        char err[256];
        int rc;
        while ((rc = stream_producer_produce(p, &rec, err, sizeof(err))) == STREAM_EAGAIN)
            stream_producer_poll(p, 1);
        if (rc != 0) {
            snprintf(r->error, sizeof(r->error), "cannot produce: %s", err);
            break;
        }
        atomic_fetch_add(&r->sent, 1);
        stream_producer_poll(p, 0);
    }
    stream_producer_flush(p, -1);
    stream_producer_free(p, 0);
    free(value);
    atomic_store(&r->done, true);
    return NULL;
}

/* -v: where the end-to-end latency goes. Two cuts at the producer's
 * acknowledgement: produce -> ack (the producer's queueing, the request,
 * the broker's durable path - acks=all: every in-sync replica's fdatasync -
 * and the answer) and ack -> consume (what the consumer waits after that:
 * negative when it saw the record first, as it may on a single broker or
 * with acks=1, counted apart). Then produce -> ack in stages, from the
 * broker's own account (the produce answer's timing, protocol.md 6.7):
 *
 *   queue       produce() to the request carrying the record being sent:
 *               waiting for linger, or for one of the partition's 16
 *               requests in flight to be answered
 *   append      the broker's handling of the request up to the append
 *   round wait  the append to the start of the sync round on the leader's
 *               disk that covers it (the flusher busy with the round before)
 *   sync        that round: its fdatasyncs
 *   after sync  the round's end to the answer: waking the broker's loop and,
 *               replicated, the followers fetching, syncing and reporting
 *   transport   the rest of the round trip: both event loops and loopback
 *
 * and the slowest 1% of records end to end, with each stage's mean over
 * them: what the p99 is made of. */
enum { ST_QUEUE, ST_APPEND, ST_ROUND_WAIT, ST_SYNC, ST_AFTER_SYNC, ST_TRANSPORT, ST_N };
static const char *const stage_names[ST_N] = {"queue", "append", "round_wait",
                                               "sync", "after_sync", "transport"};
static const char *const stage_text[ST_N] = {
    "producer queue (produce() to the request's send)",
    "broker: request to append",
    "broker: append to its sync round's start",
    "broker: the sync round (fdatasync)",
    "broker: round's end to the answer",
    "network and event loops (the rest)"};

typedef struct e2e_stages {
    stream_histogram to_ack, ack_to_consume;
    uint64_t consumed_first; /* records the consumer had before the ack */
    uint64_t counted;        /* records with all three times */
    stream_histogram stage[ST_N];
    uint64_t staged;         /* records with the broker's account and a sync round */
    /* the slowest 1% end to end (of `counted`): how many, from what
     * latency, and each stage's mean over them (ms; NaN: none staged) */
    uint64_t slow, slow_staged;
    double slow_from_ms, slow_e2e_ms, slow_mean_ms[ST_N];
} e2e_stages;

/* A record's stages in ns; false without the broker's full account. */
static bool record_stages(const e2e_run *r, int64_t i, int64_t st[ST_N])
{
    const stream_delivery_timing *t = &r->timing[i];
    if (t->sent_ns == 0 || t->append_us < 0 || t->durable_us < 0 || t->round_wait_us < 0 ||
        t->sync_us < 0)
        return false;
    int64_t rtt = t->acked_ns - t->sent_ns;
    st[ST_QUEUE] = t->sent_ns - r->produced_ns[i];
    st[ST_APPEND] = t->append_us * 1000;
    st[ST_ROUND_WAIT] = t->round_wait_us * 1000;
    st[ST_SYNC] = t->sync_us * 1000;
    st[ST_AFTER_SYNC] = (t->durable_us - t->round_wait_us - t->sync_us) * 1000;
    st[ST_TRANSPORT] = rtt - (t->append_us + t->durable_us) * 1000;
    for (int k = 0; k < ST_N; k++)
        if (st[k] < 0)
            st[k] = 0; /* microsecond rounding */
    return true;
}

static void e2e_stages_compute(const e2e_run *r, e2e_stages *st)
{
    memset(st, 0, sizeof(*st));
    if (stream_histogram_init(&st->to_ack, HIST_MAX_NS, 0) != 0 ||
        stream_histogram_init(&st->ack_to_consume, HIST_MAX_NS, 0) != 0)
        die("out of memory");
    for (int k = 0; k < ST_N; k++)
        if (stream_histogram_init(&st->stage[k], HIST_MAX_NS, 0) != 0)
            die("out of memory");
    stream_histogram e2e;
    if (stream_histogram_init(&e2e, HIST_MAX_NS, 0) != 0)
        die("out of memory");
    for (int64_t i = 0; i < r->o->records; i++) {
        int64_t p = r->produced_ns[i], a = r->acked_ns[i], c = r->consumed_ns[i];
        if (p == 0 || a == 0 || c == 0)
            continue;
        st->counted++;
        stream_histogram_record(&st->to_ack, a - p);
        stream_histogram_record(&e2e, c - p);
        if (c < a)
            st->consumed_first++;
        else
            stream_histogram_record(&st->ack_to_consume, c - a);
        int64_t v[ST_N];
        if (record_stages(r, i, v)) {
            st->staged++;
            for (int k = 0; k < ST_N; k++)
                stream_histogram_record(&st->stage[k], v[k]);
        }
    }
    /* The slowest 1%: at or above the p99 of end-to-end latency. */
    int64_t from = st->counted ? stream_histogram_percentile(&e2e, 99) : INT64_MAX;
    st->slow_from_ms = ms(from);
    double sum[ST_N] = {0}, e2e_sum = 0;
    for (int64_t i = 0; i < r->o->records; i++) {
        int64_t p = r->produced_ns[i], a = r->acked_ns[i], c = r->consumed_ns[i];
        if (p == 0 || a == 0 || c == 0 || c - p < from)
            continue;
        st->slow++;
        e2e_sum += (double)(c - p);
        int64_t v[ST_N];
        if (record_stages(r, i, v)) {
            st->slow_staged++;
            for (int k = 0; k < ST_N; k++)
                sum[k] += (double)v[k];
        }
    }
    st->slow_e2e_ms = st->slow ? e2e_sum / (double)st->slow / 1e6 : NAN;
    for (int k = 0; k < ST_N; k++)
        st->slow_mean_ms[k] = st->slow_staged ? sum[k] / (double)st->slow_staged / 1e6 : NAN;
    stream_histogram_release(&e2e);
}

static void e2e_stages_release(e2e_stages *st)
{
    stream_histogram_release(&st->to_ack);
    stream_histogram_release(&st->ack_to_consume);
    for (int k = 0; k < ST_N; k++)
        stream_histogram_release(&st->stage[k]);
}

static void e2e_stages_text(const e2e_stages *st)
{
    printf("  produce to acknowledgement (%" PRIu64 " records): ", st->counted);
    latency_text(&st->to_ack);
    printf("  acknowledgement to consumer (%" PRIu64 " records, %" PRIu64
           " more consumed before their acknowledgement): ",
           st->counted - st->consumed_first, st->consumed_first);
    latency_text(&st->ack_to_consume);
    if (st->staged == 0) {
        printf("  stages: none (the broker gives them for acks=all records synced by a round "
               "it remembers)\n");
        return;
    }
    printf("  produce to acknowledgement in stages (%" PRIu64 " records):\n", st->staged);
    for (int k = 0; k < ST_N; k++) {
        printf("    %-50s ", stage_text[k]);
        latency_text(&st->stage[k]);
    }
    printf("  the slowest 1%% end to end (%" PRIu64 " records, %.3f ms and over, mean %.3f ms), "
           "mean ms per stage:",
           st->slow, st->slow_from_ms, st->slow_e2e_ms);
    for (int k = 0; k < ST_N; k++)
        printf(" %s %.3f", stage_names[k], st->slow_mean_ms[k]);
    printf("\n");
}

static void e2e_stages_json(stream_json_writer *w, const e2e_stages *st)
{
    stream_json_key(w, "stages");
    stream_json_object_start(w);
    stream_json_key(w, "records");
    stream_json_uint(w, st->counted);
    stream_json_key(w, "consumed_before_ack");
    stream_json_uint(w, st->consumed_first);
    stream_json_key(w, "produce_to_ack");
    stream_json_object_start(w);
    latency_json(w, &st->to_ack);
    stream_json_object_end(w);
    stream_json_key(w, "ack_to_consume");
    stream_json_object_start(w);
    latency_json(w, &st->ack_to_consume);
    stream_json_object_end(w);
    stream_json_key(w, "staged");
    stream_json_uint(w, st->staged);
    for (int k = 0; k < ST_N && st->staged > 0; k++) {
        stream_json_key(w, stage_names[k]);
        stream_json_object_start(w);
        latency_json(w, &st->stage[k]);
        stream_json_object_end(w);
    }
    stream_json_key(w, "slowest");
    stream_json_object_start(w);
    stream_json_key(w, "records");
    stream_json_uint(w, st->slow);
    json_fixed(w, "from_ms", st->slow_from_ms, 3);
    json_fixed(w, "mean_ms", st->slow_e2e_ms, 3);
    stream_json_key(w, "stage_mean_ms");
    stream_json_object_start(w);
    for (int k = 0; k < ST_N; k++)
        json_fixed(w, stage_names[k], st->slow_mean_ms[k], 3);
    stream_json_object_end(w);
    stream_json_object_end(w);
    stream_json_object_end(w);
}

static int run_e2e(const options *o)
{
    stream_client *cc = connect_client(o, "stream-bench-consumer");
    ensure_topic(cc, o, o->topic);
    /* The consumer starts at the end, assigned before the first record. */
    stream_consumer *co = new_consumer(cc, o, false, STREAM_OFFSET_END);
    e2e_run r = {.o = o, .c = connect_client(o, "stream-bench-producer")};
    if (o->verbose) {
        r.produced_ns = calloc((size_t)o->records, sizeof(int64_t));
        r.acked_ns = calloc((size_t)o->records, sizeof(int64_t));
        r.consumed_ns = calloc((size_t)o->records, sizeof(int64_t));
        r.timing = calloc((size_t)o->records, sizeof(stream_delivery_timing));
        if (r.produced_ns == NULL || r.acked_ns == NULL || r.consumed_ns == NULL ||
            r.timing == NULL)
            die("out of memory");
    }
    r.run_id = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ UINT64_C(0x9e3779b97f4a7c15);
    stream_histogram hist;
    if (stream_histogram_init(&hist, HIST_MAX_NS, 0) != 0)
        die("out of memory");
    pthread_t th;
    if (pthread_create(&th, NULL, e2e_producer, &r) != 0)
        die("cannot start the producer thread");

    int64_t t0 = now_ns(), last_rec_ns = t0, next_report = t0 + 1000000000;
    uint64_t received = 0;
    stream_progress pg;
    progress_start(&pg, o, "e2e");
    int status = EXIT_OK;
    while ((int64_t)received < o->records) {
        stream_consumer_event ev;
        int rc = stream_consumer_poll(co, 50, &ev);
        int64_t t = now_ns();
        if (rc < 0)
            die("cannot read topic '%s': %s", o->topic, stream_strerror(rc));
        if (rc == 1 && ev.type == STREAM_EVENT_RECORD && ev.record.value_len >= E2E_HEADER_BYTES &&
            memcmp(ev.record.value + 8, &r.run_id, 8) == 0) {
            int64_t sent;
            memcpy(&sent, ev.record.value, 8);
            stream_histogram_record(&hist, t - sent);
            uint64_t seq;
            if (r.consumed_ns != NULL && ev.record.value_len >= E2E_STAGE_BYTES) {
                memcpy(&seq, ev.record.value + 16, 8);
                if (seq < (uint64_t)o->records && r.consumed_ns[seq] == 0)
                    r.consumed_ns[seq] = t;
            }
            received++;
            last_rec_ns = t;
        } else if (rc == 1 && ev.type == STREAM_EVENT_ERROR) {
            die("cannot read topic '%s' partition %d: %s", o->topic, (int)ev.partition,
                ev.msg && *ev.msg ? ev.msg : stream_strerror(ev.err));
        }
        /* Once the producer is done, wait at most the timeout for the rest. */
        if (atomic_load(&r.done) && t - last_rec_ns > (int64_t)o->timeout_ms * 1000000) {
            warn("no record for %d ms: received %" PRIu64 " of %" PRIu64 " sent", o->timeout_ms,
                 received, (uint64_t)atomic_load(&r.sent));
            status = EXIT_FAIL;
            break;
        }
        if (t >= next_report) {
            progress_show(&pg, o, received, &hist);
            next_report += 1000000000;
        }
    }
    progress_show(&pg, o, received, &hist);
    stream_progress_finish(&pg);
    pthread_join(th, NULL);
    uint64_t sent = atomic_load(&r.sent);
    e2e_stages st;
    if (o->verbose)
        e2e_stages_compute(&r, &st);
    if (r.error[0]) {
        warn("producer: %s", r.error);
        status = EXIT_FAIL;
    }
    if (o->json) {
        stream_json_writer w;
        stream_buf buf;
        json_start(&w, &buf, o, "e2e");
        json_fixed(&w, "rate", o->rate, 1);
        stream_json_key(&w, "acks");
        stream_json_cstring(&w, acks_name(o->acks));
        stream_json_key(&w, "record_bytes");
        stream_json_int(&w, o->record_bytes);
        stream_json_key(&w, "records_sent");
        stream_json_uint(&w, sent);
        stream_json_key(&w, "records_received");
        stream_json_uint(&w, received);
        latency_json(&w, &hist);
        if (o->verbose)
            e2e_stages_json(&w, &st);
        json_finish(&w, &buf);
    } else {
        printf("e2e: %" PRIu64 " records sent, %" PRIu64 " received at %.0f records/s "
               "(acks=%s, %" PRId64 " bytes); ",
               sent, received, o->rate, acks_name(o->acks), o->record_bytes);
        latency_text(&hist);
        if (o->verbose)
            e2e_stages_text(&st);
    }
    if (o->verbose)
        e2e_stages_release(&st);
    free(r.produced_ns);
    free(r.acked_ns);
    free(r.consumed_ns);
    free(r.timing);
    finish_stdout();
    stream_consumer_free(co);
    stream_client_free(cc);
    stream_client_free(r.c);
    stream_histogram_release(&hist);
    return status;
}

/* ---- main ------------------------------------------------------------------------ */

static int64_t parse_size(const char *s, int64_t min, int64_t max, const char *what)
{
    int64_t v;
    char err[256];
    if (stream_size_parse_str(s, &v, err, sizeof(err)) != 0)
        usage_error("invalid %s: %s", what, err);
    if (v < min || v > max)
        usage_error("invalid %s '%s' (expected %" PRId64 " to %" PRId64 " bytes)", what, s, min,
                    max);
    return v;
}

static void parse_options(int argc, char **argv, options *o)
{
    *o = (options){
        .records = -1, .record_bytes = 100, .acks = 1, .linger_ms = -1, .timeout_ms = 10000};
    bool size_given = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":b:t:n:s:z:g:qvh", long_options, NULL)) != -1) {
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
        case 't':
            o->topic = optarg;
            break;
        case 'n':
            o->records = cmd_parse_int(optarg, 1, INT64_MAX, "record count");
            break;
        case 's':
            o->record_bytes = parse_size(optarg, 0, 64 << 20, "record size");
            size_given = true;
            break;
        case OPT_ACKS: {
            char err[256];
            if (stream_cli_parse_acks(optarg, &o->acks, err, sizeof(err)) != 0)
                usage_error("--acks: %s", err);
            o->producer_flags = true;
            break;
        }
        case 'z': {
            int codec = stream_codec_from_name(optarg);
            if (codec < 0)
                usage_error("unknown codec '%s' (expected none, gzip, snappy, lz4 or zstd)",
                            optarg);
            o->codec = (stream_codec)codec;
            o->producer_flags = true;
            break;
        }
        case OPT_RATE: {
            char *end;
            o->rate = strtod(optarg, &end);
            if (end == optarg || *end || !(o->rate > 0) || o->rate > 1e9)
                usage_error("invalid --rate '%s' (expected records per second, > 0)", optarg);
            break;
        }
        case OPT_PARTITIONS:
            o->partitions = (int32_t)cmd_parse_int(optarg, 1, 10000, "partition count");
            o->producer_flags = true;
            break;
        case OPT_TOPICS:
            o->topics = (int)cmd_parse_int(optarg, 1, 10000, "topic count");
            break;
        case OPT_PRODUCERS:
            o->producers = (int)cmd_parse_int(optarg, 1, 1000, "producer count");
            break;
        case 'g': {
            char err[256];
            if (stream_group_name_check(optarg, strlen(optarg), err, sizeof(err)) != 0)
                usage_error("--group: invalid group name '%s': %s", optarg, err);
            o->group = optarg;
            break;
        }
        case OPT_LINGER_MS:
            o->linger_ms = (int)cmd_parse_int(optarg, 0, 60000, "linger");
            o->producer_flags = true;
            break;
        case OPT_BATCH_BYTES:
            o->batch_bytes = parse_size(optarg, 1024, 64 << 20, "batch size");
            o->producer_flags = true;
            break;
        case OPT_TIMEOUT_MS:
            o->timeout_ms = (int)cmd_parse_int(optarg, 1, 3600000, "timeout");
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case OPT_PROGRESS:
            o->progress = STREAM_PROGRESS_ON;
            break;
        case OPT_NO_PROGRESS:
            o->progress = STREAM_PROGRESS_OFF;
            break;
        case 'v':
            o->verbose = true;
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
        usage_error("missing mode (produce, consume or e2e)");
    if (optind + 1 < argc)
        usage_error("unexpected argument '%s'", argv[optind + 1]);
    const char *m = argv[optind];
    if (strcmp(m, "produce") == 0)
        o->mode = MODE_PRODUCE;
    else if (strcmp(m, "consume") == 0)
        o->mode = MODE_CONSUME;
    else if (strcmp(m, "e2e") == 0)
        o->mode = MODE_E2E;
    else
        usage_error("unknown mode '%s' (expected produce, consume or e2e)", m);

    if (o->topic == NULL)
        usage_error("%s needs a topic (-t TOPIC)", m);
    if (o->mode != MODE_CONSUME && o->records < 0)
        usage_error("%s needs a record count (-n N)", m);
    if (o->mode == MODE_CONSUME && (o->producer_flags || size_given || o->rate > 0))
        usage_error("consume takes no producer options (-s, --acks, -z, --rate, --partitions, "
                    "--linger-ms, --batch-bytes)");
    if (o->topics > 0 && o->mode != MODE_PRODUCE)
        usage_error("--topics is for produce only");
    if (o->producers > 0 && o->mode != MODE_PRODUCE)
        usage_error("--producers is for produce only");
    if (o->group && o->mode != MODE_CONSUME)
        usage_error("--group is for consume only");
    if (o->mode == MODE_E2E && !(o->rate > 0))
        usage_error("e2e needs a rate (--rate R)");
    if (o->mode == MODE_E2E && o->record_bytes < E2E_HEADER_BYTES)
        usage_error("e2e needs values of at least %d bytes (-s)", E2E_HEADER_BYTES);
    if (o->verbose && o->mode != MODE_E2E)
        usage_error("-v (each stage's latency) is for e2e only");
    if (o->verbose && o->record_bytes < E2E_STAGE_BYTES)
        usage_error("e2e -v needs values of at least %d bytes (-s)", E2E_STAGE_BYTES);
    if (o->mode == MODE_PRODUCE && o->record_bytes > INT32_MAX)
        usage_error("record size too large");
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    options o;
    parse_options(argc, argv, &o);
    switch (o.mode) {
    case MODE_PRODUCE:
        return run_produce(&o);
    case MODE_CONSUME:
        return run_consume(&o);
    case MODE_E2E:
        return run_e2e(&o);
    }
    return EXIT_FAIL;
}
