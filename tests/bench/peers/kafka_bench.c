/*
 * kafka_bench - a Kafka-protocol load generator on librdkafka (the C client
 * kcat and confluent-kafka are built on), for the Kafka listener's row of
 * `make bench-peers` (tests/bench/peers.sh): the same workloads as
 * `stream-bench produce` and `stream-bench consume`, through stream-broker's
 * Kafka listener instead of its native protocol.
 *
 *   kafka_bench -b HOST:PORT -t TOPIC -n RECORDS [-m BYTES] produce
 *   kafka_bench -b HOST:PORT -t TOPIC -n RECORDS consume
 *
 * produce  sends RECORDS records of BYTES bytes (default 100) to partition
 *          0 of TOPIC with acks=1, no compression, batches up to 256 KiB
 *          and a 5 ms linger (stream-bench's defaults), and waits for every
 *          delivery report. A record's latency is from rd_kafka_produce to
 *          its delivery report; the send time rides in the value's first 8
 *          bytes (the rest is letters, as in stream-bench).
 * consume  reads RECORDS records of partition 0 from the beginning with
 *          librdkafka's simple consumer (no group, nothing committed, as
 *          stream-bench consume), in batches off the partition's queue;
 *          timed from the first batch (see consume()).
 *
 * Prints one JSON line (peers.h) per run; dies with a message on any
 * delivery error.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "peers.h"

static const char *prog = "kafka_bench";

typedef struct options {
    const char *brokers, *topic, *mode;
    int64_t records, record_bytes;
} options;

typedef struct produce_run {
    peers_latency lat;
    uint64_t delivered, failed;
    char last_error[256];
} produce_run;

static void set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
        peers_die(prog, "%s=%s: %s", key, value, err);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_run *r = opaque;
    if (m->err) {
        r->failed++;
        snprintf(r->last_error, sizeof(r->last_error), "%s", rd_kafka_err2str(m->err));
        return;
    }
    int64_t sent;
    memcpy(&sent, m->payload, sizeof(sent));
    peers_latency_add(&r->lat, peers_now_ns() - sent);
    r->delivered++;
}

static rd_kafka_t *client(const options *o, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    set(conf, "bootstrap.servers", o->brokers);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (rk == NULL)
        peers_die(prog, "rd_kafka_new: %s", err);
    return rk;
}

static void produce(const options *o)
{
    produce_run r = {0};
    peers_latency_init(&r.lat, (uint64_t)o->records, prog);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "acks", "1");
    set(conf, "enable.idempotence", "false");
    set(conf, "linger.ms", "5");
    set(conf, "batch.size", "262144");
    set(conf, "queue.buffering.max.kbytes", "65536");
    set(conf, "queue.buffering.max.messages", "1000000");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &r);
    rd_kafka_t *rk = client(o, RD_KAFKA_PRODUCER, conf);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, o->topic, NULL);
    size_t n = (size_t)o->record_bytes;
    uint8_t *value = malloc(n);
    if (value == NULL)
        peers_die(prog, "out of memory");
    peers_fill_value(value, n);
    int64_t t0 = peers_now_ns();
    for (int64_t i = 0; i < o->records;) {
        int64_t now = peers_now_ns();
        memcpy(value, &now, sizeof(now));
        if (rd_kafka_produce(t, 0, RD_KAFKA_MSG_F_COPY, value, n, NULL, 0, NULL) == 0) {
            i++;
            if ((i & 1023) == 0)
                rd_kafka_poll(rk, 0);
            continue;
        }
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            peers_die(prog, "produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_poll(rk, 1); /* the queue is full: let deliveries drain */
    }
    while (r.delivered + r.failed < (uint64_t)o->records)
        rd_kafka_poll(rk, 10);
    int64_t elapsed = peers_now_ns() - t0;
    if (r.failed > 0)
        peers_die(prog, "%" PRIu64 " of %" PRId64 " records failed: %s", r.failed, o->records,
                  r.last_error);
    peers_result_head("kafka", "produce", r.delivered, r.delivered * n, elapsed);
    printf(",");
    peers_latency_json(&r.lat);
    peers_result_end(prog);
    peers_latency_release(&r.lat);
    free(value);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
}

static void consume(const options *o)
{
    /* The simple consumer (no group.id: no coordinator, nothing committed,
     * as stream-bench consume), batches off its partition queue. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "enable.partition.eof", "false");
    rd_kafka_t *rk = client(o, RD_KAFKA_CONSUMER, conf);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, o->topic, NULL);
    if (rd_kafka_consume_start(t, 0, RD_KAFKA_OFFSET_BEGINNING) != 0)
        peers_die(prog, "consume_start: %s", rd_kafka_err2str(rd_kafka_last_error()));
    enum { BATCH = 10000 };
    rd_kafka_message_t **ms = malloc(BATCH * sizeof(*ms));
    if (ms == NULL)
        peers_die(prog, "out of memory");
    uint64_t got = 0, bytes = 0;
    int64_t t0 = peers_now_ns(), last = t0, first = -1;
    while (got < (uint64_t)o->records) {
        ssize_t k = rd_kafka_consume_batch(t, 0, 100, ms, BATCH);
        int64_t now = peers_now_ns();
        if (k < 0)
            peers_die(prog, "consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
        if (k == 0 && now - last > 10 * (int64_t)1000000000)
            peers_die(prog, "nothing for 10 s after %" PRIu64 " records", got);
        for (ssize_t i = 0; i < k; i++) {
            if (ms[i]->err)
                peers_die(prog, "consume: %s", rd_kafka_message_errstr(ms[i]));
            got++;
            bytes += ms[i]->len;
            rd_kafka_message_destroy(ms[i]);
        }
        if (k > 0 && first < 0)
            first = now;
        if (k > 0)
            last = now;
    }
    free(ms);
    /* From the first batch on: librdkafka's simple consumer waits about
     * 500 ms between learning the partition's leader and asking for its
     * first offset (its debug log: Metadata answered, ListOffsets sent
     * 0.5 s later), whatever the broker. first_ms says how long that was. */
    peers_result_head("kafka", "consume", got, bytes, last - first);
    printf(",\"first_ms\":%.3f", (double)(first - t0) / 1e6);
    peers_result_end(prog);
    rd_kafka_consume_stop(t, 0);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
}

int main(int argc, char **argv)
{
    options o = {.record_bytes = 100};
    int c;
    while ((c = getopt(argc, argv, "b:t:n:m:")) != -1) {
        switch (c) {
        case 'b':
            o.brokers = optarg;
            break;
        case 't':
            o.topic = optarg;
            break;
        case 'n':
            o.records = peers_parse_count(prog, optarg, "record count");
            break;
        case 'm':
            o.record_bytes = peers_parse_count(prog, optarg, "record size");
            break;
        default:
            return 2;
        }
    }
    if (optind + 1 != argc || o.brokers == NULL || o.topic == NULL || o.records == 0) {
        fprintf(stderr, "usage: %s -b HOST:PORT -t TOPIC -n RECORDS [-m BYTES] produce|consume\n",
                prog);
        return 2;
    }
    if (o.record_bytes < 8)
        peers_die(prog, "records must be at least 8 bytes (the send time rides in them)");
    o.mode = argv[optind];
    if (strcmp(o.mode, "produce") == 0)
        produce(&o);
    else if (strcmp(o.mode, "consume") == 0)
        consume(&o);
    else
        peers_die(prog, "unknown mode '%s' (produce or consume)", o.mode);
    return 0;
}
