/*
 * scale_load - many producers and many consumers against one broker, from
 * one process: the load of tests/bench/scale.sh (issue 6).
 *
 *   scale_load -b HOST:PORT -t TOPIC --producers P --consumers C --seconds S
 *              [--threads T] [-s BYTES] [--acks 0|1|all]
 *
 * Every producer and every consumer is a libstream client of its own (its
 * own connection), exactly as P + C stream-bench processes would be, but
 * they share T threads (default 2) that visit them in turn: on a small
 * machine, hundreds of busy processes would take the CPU from the broker
 * under measurement, whereas T threads leave it what it needs.
 *
 * Producers send unkeyed records of BYTES (default 100) as fast as their
 * buffers allow (acks default 1, other settings the library's defaults, but
 * buffer_bytes 4 MiB so that the load generator itself stays small).
 * Consumers each read every partition of the topic from its end as it was
 * at start (publish-subscribe: each sees every record), with the consumer's
 * default fetch sizes. The topic must exist.
 *
 * After S seconds it prints one line:
 *
 *   produced N consumed M seconds S produce_rps X consume_rps Y
 *
 * (consume_rps counts every consumer's records: C times the fan-out.)
 * Exit 0, 1 on failure, 2 on usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stream/client.h"
#include "stream/error.h"

typedef struct opts {
    const char *brokers, *topic;
    long producers, consumers, seconds, threads, record_bytes;
    int acks;
} opts;

typedef struct worker {
    const opts *o;
    long index;
    pthread_t thread;
    uint64_t produced, consumed, failed;
    bool stopped; /* past the deadline: reports no longer count */
} worker;

static pthread_barrier_t start_line; /* every client connected */
static int64_t deadline_ns;         /* set by main at the start line */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("scale_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static stream_client *new_client(const opts *o)
{
    stream_client_conf cc;
    stream_client_conf_init(&cc);
    cc.brokers = o->brokers;
    cc.client_name = "scale_load";
    stream_client *c;
    char err[512];
    if (stream_client_new(&cc, &c, err, sizeof(err)) != 0 ||
        stream_client_connect(c, -1, err, sizeof(err)) != 0)
        die("%s", err);
    return c;
}

static void on_delivery(stream_producer *p, const stream_delivery *d, void *arg)
{
    worker *w = arg;
    if (w->stopped)
        return; /* freeing fails what is left with ECLOSED: not a failure */
    if (d->err == 0)
        w->produced++;
    else
        w->failed++;
}

static void *run(void *arg)
{
    worker *w = arg;
    const opts *o = w->o;
    size_t np = 0, nc = 0;
    stream_client **pcl = calloc((size_t)o->producers + 1, sizeof(*pcl));
    stream_client **ccl = calloc((size_t)o->consumers + 1, sizeof(*ccl));
    stream_producer **ps = calloc((size_t)o->producers + 1, sizeof(*ps));
    stream_consumer **cs = calloc((size_t)o->consumers + 1, sizeof(*cs));
    uint8_t *value = malloc((size_t)o->record_bytes + 1);
    if (!pcl || !ccl || !ps || !cs || !value)
        die("out of memory");
    memset(value, 'x', (size_t)o->record_bytes);
    char err[512];
    for (long i = w->index; i < o->producers; i += o->threads) {
        stream_producer_conf pc;
        stream_producer_conf_init(&pc);
        pc.acks = o->acks;
        pc.buffer_bytes = 4u << 20;
        pc.on_delivery = on_delivery;
        pc.opaque = w;
        pcl[np] = new_client(o);
        if (stream_producer_new(pcl[np], &pc, &ps[np], err, sizeof(err)) != 0)
            die("%s", err);
        np++;
    }
    for (long i = w->index; i < o->consumers; i += o->threads) {
        stream_consumer_conf conf;
        stream_consumer_conf_init(&conf);
        ccl[nc] = new_client(o);
        if (stream_consumer_new(ccl[nc], &conf, &cs[nc], err, sizeof(err)) != 0)
            die("%s", err);
        stream_offset_spec spec = {.start = {.kind = STREAM_OFFSET_END},
                                   .end = {.kind = STREAM_OFFSET_NONE}};
        if (stream_consumer_assign(cs[nc], o->topic, STREAM_PARTITION_ALL, &spec, err,
                                   sizeof(err)) != 0)
            die("cannot read topic '%s': %s", o->topic, err);
        nc++;
    }
    stream_producer_record rec = {0};
    rec.topic = o->topic;
    rec.partition = STREAM_PARTITION_ANY;
    rec.key_len = -1;
    rec.value = value;
    rec.value_len = (int32_t)o->record_bytes;
    pthread_barrier_wait(&start_line);
    pthread_barrier_wait(&start_line); /* main has set the deadline */
    while (now_ns() < deadline_ns) {
        for (size_t i = 0; i < np; i++) {
            /* A few hundred records, then the producer's I/O. */
            for (int k = 0; k < 512; k++) {
                int rc = stream_producer_produce(ps[i], &rec, err, sizeof(err));
                if (rc == STREAM_EAGAIN)
                    break;
                if (rc != 0)
                    die("produce: %s", err);
            }
            if (stream_producer_poll(ps[i], 0) < 0)
                die("producer poll failed");
        }
        for (size_t i = 0; i < nc; i++) {
            for (int k = 0; k < 4096; k++) {
                stream_consumer_event ev;
                int rc = stream_consumer_poll(cs[i], 0, &ev);
                if (rc < 0)
                    die("consumer poll: %s", stream_strerror(rc));
                if (rc == 0)
                    break;
                if (ev.type == STREAM_EVENT_RECORD)
                    w->consumed++;
                else if (ev.type == STREAM_EVENT_ERROR)
                    die("consume: %s", ev.msg ? ev.msg : stream_strerror(ev.err));
            }
        }
    }
    w->stopped = true;
    for (size_t i = 0; i < np; i++) {
        stream_producer_free(ps[i], 0);
        stream_client_free(pcl[i]);
    }
    for (size_t i = 0; i < nc; i++) {
        stream_consumer_free(cs[i]);
        stream_client_free(ccl[i]);
    }
    free(pcl);
    free(ccl);
    free(ps);
    free(cs);
    free(value);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: scale_load -b HOST:PORT -t TOPIC --producers P --consumers C "
                    "--seconds S [--threads T] [-s BYTES] [--acks 0|1|all]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {.brokers = getenv("STREAM_BROKERS"),
              .producers = 100,
              .consumers = 100,
              .seconds = 20,
              .threads = 2,
              .record_bytes = 100,
              .acks = 1};
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"producers", required_argument, NULL, 'P'},
        {"consumers", required_argument, NULL, 'C'},
        {"seconds", required_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 'T'},
        {"record-size", required_argument, NULL, 's'},
        {"acks", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "b:t:s:", longopts, NULL)) != -1) {
        char *end = NULL;
        long v = strtol(optarg, &end, 10);
        bool num = end != optarg && *end == '\0' && v >= 0;
        switch (opt) {
        case 'b': o.brokers = optarg; break;
        case 't': o.topic = optarg; break;
        case 'P': if (!num) usage(); o.producers = v; break;
        case 'C': if (!num) usage(); o.consumers = v; break;
        case 'S': if (!num || v < 1) usage(); o.seconds = v; break;
        case 'T': if (!num || v < 1) usage(); o.threads = v; break;
        case 's': if (!num || v > 1 << 20) usage(); o.record_bytes = v; break;
        case 'a':
            if (strcmp(optarg, "all") == 0 || strcmp(optarg, "-1") == 0)
                o.acks = STREAM_ACKS_ALL;
            else if (num && v <= 1)
                o.acks = (int)v;
            else
                usage();
            break;
        default: usage();
        }
    }
    if (o.brokers == NULL || o.topic == NULL || optind != argc)
        usage();
    signal(SIGPIPE, SIG_IGN);
    worker *ws = calloc((size_t)o.threads, sizeof(*ws));
    if (ws == NULL)
        die("out of memory");
    /* Connections are made inside the threads; the clock starts once every
     * client is connected. */
    pthread_barrier_init(&start_line, NULL, (unsigned)o.threads + 1);
    for (long i = 0; i < o.threads; i++) {
        ws[i] = (worker){.o = &o, .index = i};
        if (pthread_create(&ws[i].thread, NULL, run, &ws[i]) != 0)
            die("pthread_create: %s", strerror(errno));
    }
    pthread_barrier_wait(&start_line);
    int64_t t0 = now_ns();
    deadline_ns = t0 + o.seconds * 1000000000LL;
    printf("started %ld producers %ld consumers\n", o.producers, o.consumers);
    fflush(stdout);
    pthread_barrier_wait(&start_line);
    uint64_t produced = 0, consumed = 0, failed = 0;
    for (long i = 0; i < o.threads; i++) {
        pthread_join(ws[i].thread, NULL);
        produced += ws[i].produced;
        consumed += ws[i].consumed;
        failed += ws[i].failed;
    }
    double secs = (double)(deadline_ns - t0) / 1e9;
    pthread_barrier_destroy(&start_line);
    printf("produced %" PRIu64 " consumed %" PRIu64 " seconds %.1f produce_rps %.0f "
           "consume_rps %.0f failed %" PRIu64 "\n",
           produced, consumed, secs, (double)produced / secs, (double)consumed / secs, failed);
    free(ws);
    return failed ? 1 : 0;
}
