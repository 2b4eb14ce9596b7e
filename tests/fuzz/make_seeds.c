/*
 * make_seeds.c - writes the seed corpus of every fuzz target:
 * tests/fuzz/corpus/fuzz_X/seed-NAME, a handful of small valid inputs each.
 *
 *   build/fuzz/make_seeds tests/fuzz/corpus      (make fuzz-seeds)
 *
 * Seeds are made with libstream itself (the batch builder, the codecs, the
 * frame writer, a real stream_log for segment files, the record writers), so
 * they follow the formats as the code writes them and stay right when a
 * format changes: regenerate and check in. Each is laid out the way its
 * target carves its input (see the comment at the top of each fuzz_X.c).
 * Output is deterministic: the same seeds on every run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>
#include <snappy-c.h>

#include "cluster/journal.h"
#include "cluster/metadata.h"
#include "coord/group_internal.h"
#include "kafka/kafka_codec.h"
#include "log/leader_epoch.h"
#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/cleaner.h"
#include "stream/codec.h"
#include "stream/error.h"
#include "stream/format.h"
#include "stream/log.h"
#include "stream/proto.h"
#include "stream/recfmt.h"

static const char *root; /* the corpus directory */

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "make_seeds: %s\n", what);
    exit(1);
}

static void seed(const char *target, const char *name, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/%s/seed-%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
        die(path);
}

static void seed_str(const char *target, const char *name, const char *s)
{
    seed(target, name, s, strlen(s));
}

/* A string literal with NUL bytes inside, all of it but the final NUL. */
#define SEED_LIT(target, name, lit) seed(target, name, lit, sizeof lit - 1)

/* ---- batches --------------------------------------------------------------- */

static const stream_header hdrs[] = {
    {(const uint8_t *)"trace-id", 8, (const uint8_t *)"abc123", 6},
    {(const uint8_t *)"null", 4, NULL, -1},
};

/* A batch of three records (keyed, null key with headers, tombstone). */
static void build_batch(stream_codec codec, stream_buf *out)
{
    stream_batch_builder b;
    const uint8_t *p;
    size_t len;
    stream_batch_builder_init(&b);
    if (stream_batch_builder_set_codec(&b, codec, 0) != 0 ||
        stream_batch_builder_append(&b, 1732442400000, "user-1", 6, "{\"n\":1}", 7, NULL, 0) ||
        stream_batch_builder_append(&b, 1732442400005, NULL, -1, "hello hello hello", 17, hdrs,
                                    2) ||
        stream_batch_builder_append(&b, 1732442400009, "user-1", 6, NULL, -1, NULL, 0) ||
        stream_batch_builder_finish(&b, &p, &len) != 0)
        die("building a batch");
    stream_buf_reset(out);
    stream_buf_put(out, p, len);
    stream_batch_builder_release(&b);
}

static void batch_seeds(void)
{
    stream_buf b = STREAM_BUF_INIT;
    for (int c = 0; c <= 4; c++) {
        char name[32];
        build_batch((stream_codec)c, &b);
        snprintf(name, sizeof name, "batch-%s", stream_codec_name((stream_codec)c));
        seed("fuzz_batch", name, b.data, b.len);
        if (c > 0) {
            /* The compressed records alone, for the target's wrapping path. */
            snprintf(name, sizeof name, "records-%s", stream_codec_name((stream_codec)c));
            seed("fuzz_batch", name, b.data + STREAM_BATCH_HEADER_SIZE,
                 b.len - STREAM_BATCH_HEADER_SIZE);
        }
    }
    /* Two batches back to back, the second stamped at offset 3. */
    build_batch(STREAM_CODEC_NONE, &b);
    size_t one = b.len;
    stream_buf_reserve(&b, one); /* so the copy below reads bytes that stay put */
    stream_buf_put(&b, b.data, one);
    stream_batch_set_base_offset(b.data + one, 3);
    seed("fuzz_batch", "two-batches", b.data, b.len);
    stream_buf_release(&b);
}

static void codec_seeds(void)
{
    static const char text[] = "hello hello hello hello, records records records 0123456789";
    stream_buf z = STREAM_BUF_INIT;
    for (int c = 0; c <= 4; c++) {
        char name[32];
        stream_buf_reset(&z);
        stream_buf_put_u8(&z, 8); /* cap: 1 MiB */
        if (stream_codec_compress((stream_codec)c, 0, text, sizeof text - 1, &z) != 0)
            die("compressing");
        snprintf(name, sizeof name, "%s", stream_codec_name((stream_codec)c));
        seed("fuzz_codec", name, z.data, z.len);
    }
    /* A raw snappy block (what librdkafka writes), and two zstd frames. */
    char raw[256];
    size_t raw_len = sizeof raw - 1;
    raw[0] = 8;
    if (snappy_compress(text, sizeof text - 1, raw + 1, &raw_len) != SNAPPY_OK)
        die("snappy");
    seed("fuzz_codec", "snappy-raw", raw, raw_len + 1);
    stream_buf_reset(&z);
    stream_buf_put_u8(&z, 8);
    if (stream_codec_compress(STREAM_CODEC_ZSTD, 0, "first", 5, &z) != 0 ||
        stream_codec_compress(STREAM_CODEC_ZSTD, 0, "second", 6, &z) != 0)
        die("zstd");
    seed("fuzz_codec", "zstd-two-frames", z.data, z.len);
    stream_buf_release(&z);
}

/* ---- protocol frames --------------------------------------------------------- */

static void frame_seeds(void)
{
    stream_buf out = STREAM_BUF_INIT;
    stream_buf batch = STREAM_BUF_INIT;
    stream_frame f;
    build_batch(STREAM_CODEC_NONE, &batch);

    /* A connection's first requests: hello, metadata, create_topics, produce,
     * fetch; after 3 parameter bytes (default max frame, a chunk seed). */
    stream_buf_put(&out, "\x04\x12\x34", 3);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, 1, 2);
    stream_pack_kv_uint(&f.pk, "version", 1);
    stream_pack_kv_cstr(&f.pk, "client", "stream-pub");
    stream_frame_finish(&f);
    size_t hello_end = out.len;

    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_METADATA, 2, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 2);
    stream_pack_cstr(&f.pk, "orders");
    stream_pack_cstr(&f.pk, "__consumer_offsets");
    stream_frame_finish(&f);

    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_CREATE_TOPICS, 3, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 3);
    stream_pack_kv_cstr(&f.pk, "name", "orders");
    stream_pack_kv_int(&f.pk, "partitions", 3);
    stream_pack_key(&f.pk, "configs");
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_cstr(&f.pk, "retention.ms", "60000");
    stream_frame_finish(&f);

    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_PRODUCE, 4, 4);
    stream_pack_kv_int(&f.pk, "acks", -1);
    stream_pack_kv_int(&f.pk, "timeout_ms", 30000);
    stream_pack_kv_bool(&f.pk, "timing", true); /* the answer's timing too */
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "orders");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_kv_bin(&f.pk, "records", batch.data, batch.len);
    stream_frame_finish(&f);

    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH, 5, 3);
    stream_pack_kv_int(&f.pk, "max_wait_ms", 500);
    stream_pack_kv_int(&f.pk, "min_bytes", 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "orders");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 3);
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_kv_int(&f.pk, "offset", 0);
    stream_pack_kv_int(&f.pk, "max_bytes", 1048576);
    if (stream_frame_finish(&f) != 0)
        die("frames");
    seed("fuzz_frame", "requests", out.data, out.len);
    /* fuzz_broker: byte 0 bit 0 asks the target to say hello itself. */
    out.data[2] = 0x00;
    seed("fuzz_broker", "requests", out.data + 2, out.len - 2);
    out.data[hello_end - 1] = 0x01;
    seed("fuzz_broker", "after-hello", out.data + hello_end - 1, out.len - hello_end + 1);
    seed("fuzz_broker_cluster", "requests", out.data + 2, out.len - 2);

    /* fuzz_broker: the target says hello (the current version); a topic,
     * then more partitions for it, checked only and for real. */
    stream_buf_reset(&out);
    stream_buf_put(&out, "\x01", 1);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_CREATE_TOPICS, 2, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "orders");
    stream_pack_kv_int(&f.pk, "partitions", 2);
    stream_frame_finish(&f);
    for (int k = 0; k < 2; k++) {
        stream_frame_start(&f, &out);
        stream_pack_request_header(&f.pk, STREAM_OP_CREATE_PARTITIONS, (uint64_t)(3 + k), 2);
        stream_pack_kv_bool(&f.pk, "validate_only", k == 0);
        stream_pack_key(&f.pk, "topics");
        msgpack_pack_array(&f.pk, 2);
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_cstr(&f.pk, "name", "orders");
        stream_pack_kv_int(&f.pk, "count", 4);
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_cstr(&f.pk, "name", "nope");
        stream_pack_kv_int(&f.pk, "count", 1);
        if (stream_frame_finish(&f) != 0)
            die("create_partitions frames");
    }
    seed("fuzz_broker", "create-partitions", out.data, out.len);
    /* ... and the stats op (6.29) after them: every figure of a topic. */
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_STATS, 5, 0);
    if (stream_frame_finish(&f) != 0)
        die("stats frame");
    seed("fuzz_broker", "stats", out.data, out.len);

    /* fuzz_broker_cluster: the target says hello; then the cluster's ops. */
    stream_buf_reset(&out);
    stream_buf_put(&out, "\x01", 1);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH, 2, 2);
    stream_pack_kv_int(&f.pk, "replica_id", 2);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "orders");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 4);
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_kv_int(&f.pk, "offset", 0);
    stream_pack_kv_int(&f.pk, "leader_epoch", 0);
    stream_pack_kv_int(&f.pk, "durable_offset", 0);
    stream_frame_finish(&f);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_OFFSET_FOR_LEADER_EPOCH, 3, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "orders");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 3);
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_kv_int(&f.pk, "leader_epoch", 0);
    stream_pack_kv_int(&f.pk, "current_leader_epoch", 0);
    stream_frame_finish(&f);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_BROKER_HEARTBEAT, 4, 2);
    stream_pack_kv_int(&f.pk, "node_id", 1);
    stream_pack_kv_int(&f.pk, "broker_epoch", 1);
    stream_frame_finish(&f);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_ALTER_ISR, 5, 6);
    stream_pack_kv_int(&f.pk, "node_id", 1);
    stream_pack_kv_int(&f.pk, "broker_epoch", 1);
    stream_pack_kv_cstr(&f.pk, "topic", "orders");
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_key(&f.pk, "isr");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_int32(&f.pk, 1);
    stream_pack_kv_int(&f.pk, "partition_epoch", 0);
    stream_frame_finish(&f);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_FIND_COORDINATOR, 6, 1);
    stream_pack_kv_cstr(&f.pk, "group", "g");
    stream_frame_finish(&f);
    stream_frame_start(&f, &out);
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH_METADATA, 7, 1);
    stream_pack_kv_uint(&f.pk, "since", 0);
    if (stream_frame_finish(&f) != 0)
        die("frames");
    seed("fuzz_broker_cluster", "cluster-ops", out.data, out.len);

    /* Responses as a client reads them, fed in small chunks. */
    stream_buf_reset(&out);
    stream_buf_put(&out, "\x03\x00\x07", 3);
    stream_frame_start(&f, &out);
    stream_pack_response_header(&f.pk, 1, 0, NULL, 1);
    stream_pack_kv_uint(&f.pk, "version", 1);
    stream_frame_finish(&f);
    stream_frame_error_response(&out, 2, STREAM_EBADREQ, "field 'topics' must be an array");
    stream_frame_error_response(&out, 0, STREAM_ETOOLARGE, NULL);
    seed("fuzz_frame", "responses", out.data, out.len);

    /* A frame over a 64-byte maximum, after one that fits. */
    stream_buf_reset(&out);
    stream_buf_put(&out, "\x02\x00\x01", 3);
    stream_frame_error_response(&out, 9, STREAM_EUNKNOWNOP, "unknown op");
    stream_buf_put(&out, "\x00\x00\x01\x00", 4);
    seed("fuzz_frame", "too-large", out.data, out.len);
    stream_buf_release(&out);
    stream_buf_release(&batch);
}

/* ---- config and text parsers --------------------------------------------- */

static void text_seeds(void)
{
    seed_str("fuzz_config", "broker",
             "# a broker\nlisten = 127.0.0.1:9292\ndata.dir=~/stream\nnum.partitions=3\n"
             "auto.create.topics.enable=false\nlog.level=debug\nflush.mode=periodic\n"
             "flush.ms=200\n");
    seed_str("fuzz_config", "kafka-aliases",
             "\xef\xbb\xbflog.retention.ms=3600000\r\nmessage.max.bytes=2097152\r\n"
             "log.segment.bytes=1048576\r\nretention.bytes=-1\r\ncleanup.policy=delete");
    seed_str("fuzz_config", "topic",
             "retention.ms=-1\nsegment.ms=60000\n"
             "max.message.bytes=1000000\nindex.interval.bytes=0\n");
    seed_str("fuzz_config", "bad", "listen\nnum.partitions=0\n=x\n");

    static const char *const times[] = {
        "2026-11-24T10:00:00.123Z",
        "2026-11-24 10:00",
        "2026-11-24",
        "2026-11-24T10:00+05:30",
        "1732442400",
        "1732442400000",
        "-10m",
        "+1h30m",
        "now",
        "@2026-11-24T10:00..@-5m",
        "-1h..",
        "..now",
        "beginning",
        "end",
        "stored",
        "42",
        "-10",
        "+5",
        "@-1d",
        "s@2026-01-01",
        "0..end",
        "1h30m",
        "250ms",
        "64m",
        "16KiB",
        "1MB",
        "-2..@now",
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "%02zu", i);
        seed_str("fuzz_timespec", name, times[i]);
    }

    /* fuzz_http: the first byte picks the parser (even: header, odd: Retry-After). */
    SEED_LIT("fuzz_http", "header", "\0Authorization: Bearer abc");
    SEED_LIT("fuzz_http", "header-bad", "\0X: a\r\nInjected: 1");
    SEED_LIT("fuzz_http", "seconds", "\x01" "120");
    SEED_LIT("fuzz_http", "imf-date", "\x01" "Tue, 24 Nov 2026 10:00:30 GMT");
    SEED_LIT("fuzz_http", "rfc850", "\x01" "Tuesday, 24-Nov-26 10:00:30 GMT");
    SEED_LIT("fuzz_http", "asctime", "\x01" "Tue Nov 24 10:00:30 2026");

    SEED_LIT("fuzz_format", "kcat", "%t [%p] at %o: %k=%v\\n\0|");
    SEED_LIT("fuzz_format", "all", "%T %D %h %K %V %S %s %% \\t\\x1e\\0\\\\\0\x01NULL");
    SEED_LIT("fuzz_format", "delim", "%v\0\\x1e::\\n");

    seed_str("fuzz_json", "record",
             "{\"topic\":\"t\",\"partition\":0,\"offset\":42,\"timestamp\":1732442400000,"
             "\"key\":\"k\",\"key_encoding\":\"utf8\",\"value\":\"AAE=\",\"value_encoding\":"
             "\"base64\",\"headers\":[[\"name\",\"value\"],[\"name\",null]]}\n");
    seed_str(
        "fuzz_json", "values",
        "[true,false,null,-0,1.5e-3,9223372036854775807,-9223372036854775808,"
        "18446744073709551616,1e308,\"\\u00e9\\ud83d\\ude00\\n\\\"\",{},[],{\"a\":{\"b\":[1]}}]");
    seed_str("fuzz_json", "base64", "aGVsbG8gd29ybGQ=");

    SEED_LIT("fuzz_cli", "lines", "\x01\na\nb\n\nc");
    SEED_LIT("fuzz_cli", "brokers", "\x00localhost:9292, [::1]:9293,127.0.0.1,,");
    SEED_LIT("fuzz_cli", "partitions",
             "\x00"
             "0,2,5,2");
    SEED_LIT("fuzz_cli", "header", "\x02::name=value::x");
    SEED_LIT("fuzz_cli", "acks",
             "\x00"
             "all");
}

/* ---- leader-epoch checkpoints ------------------------------------------------ */

/* A checkpoint of the epochs (epoch, start) pairs, as the log writes it. */
static void epoch_seed(const char *name, const int64_t (*pairs)[2], size_t n)
{
    stream__epoch_cache c;
    stream__epoch_cache_init(&c);
    for (size_t i = 0; i < n; i++)
        if (stream__epoch_cache_assign(&c, (int32_t)pairs[i][0], pairs[i][1]) != 1)
            die("epoch seed");
    stream_buf text = STREAM_BUF_INIT;
    if (stream__epoch_cache_format(&c, &text) != 0)
        die("epoch seed");
    seed("fuzz_leader_epoch", name, text.data, text.len);
    stream_buf_release(&text);
    stream__epoch_cache_release(&c);
}

/* ---- membership records ---------------------------------------------------- */

static stream__member *seed_member(const char *id, const char *pattern, int32_t epoch)
{
    stream__member *m = calloc(1, sizeof *m);
    if (m == NULL)
        die("out of memory");
    m->id = strdup(id);
    m->client_id = strdup("stream-sub");
    snprintf(m->host, sizeof m->host, "127.0.0.1");
    m->topics = calloc(1, sizeof *m->topics);
    m->topics[0] = strdup("orders");
    m->ntopics = 1;
    m->pattern = pattern ? strdup(pattern) : NULL;
    m->session_timeout_ms = 10000;
    m->rebalance_timeout_ms = 60000;
    m->epoch = epoch;
    m->prev_epoch = epoch > 0 ? epoch - 1 : 0;
    return m;
}

static void meta_value_seed(const char *name, int32_t generation, stream__member **ms, size_t n)
{
    stream_buf b = STREAM_BUF_INIT;
    if (stream__group_meta_pack(&b, generation, ms, n) != 0)
        die("group meta pack");
    seed("fuzz_group_meta", name, b.data, b.len);
    stream_buf_release(&b);
}

static void group_meta_seeds(void)
{
    meta_value_seed("empty", 4, NULL, 0);
    /* Mid-rebalance: a still holds orders-2, which the target gives b. */
    stream__member *ms[2] = {seed_member("a-0123456789abcdef", NULL, 3),
                             seed_member("b-fedcba9876543210", "logs.*", 3)};
    int rc = stream__pset_add(&ms[0]->target, "orders", 0);
    rc |= stream__pset_add(&ms[0]->target, "orders", 1);
    rc |= stream__pset_add(&ms[0]->assigned, "orders", 0);
    rc |= stream__pset_add(&ms[0]->assigned, "orders", 1);
    rc |= stream__pset_add(&ms[0]->held, "orders", 0);
    rc |= stream__pset_add(&ms[0]->held, "orders", 1);
    rc |= stream__pset_add(&ms[0]->held, "orders", 2);
    rc |= stream__pset_add(&ms[1]->target, "orders", 2);
    if (rc != 0)
        die("pset");
    meta_value_seed("one", 3, ms, 1);
    meta_value_seed("two", 3, ms, 2);
    stream__member_free(ms[0]);
    stream__member_free(ms[1]);
}

static void epoch_seeds(void)
{
    static const int64_t one[][2] = {{0, 0}};
    static const int64_t three[][2] = {{1, 0}, {3, 9}, {6, 21}};
    static const int64_t limits[][2] = {{2147483646, 1000}, {2147483647, STREAM_LOG_MAX_OFFSET}};
    int64_t many[40][2];
    for (int i = 0; i < 40; i++) {
        many[i][0] = 2 * i + 1;
        many[i][1] = (int64_t)i * i * 1000 + 7;
    }
    epoch_seed("empty", one, 0);
    epoch_seed("one", one, 1);
    epoch_seed("three", three, 3);
    epoch_seed("limits", limits, 2);
    epoch_seed("many", (const int64_t(*)[2])many, 40);
}

/* ---- record formats ---------------------------------------------------------- */

static void recfmt_seeds(void)
{
    stream_buf batch = STREAM_BUF_INIT, json = STREAM_BUF_INIT, mp = STREAM_BUF_INIT;
    build_batch(STREAM_CODEC_NONE, &batch);
    stream_buf_put(&json, "\x00\x05", 2); /* JSON lines, chunk seed */
    stream_buf_put(&mp, "\x01\x05", 2);   /* MessagePack */
    stream_record_iter it;
    stream_record rec;
    if (stream_record_iter_start(&it, batch.data, batch.len) != 0)
        die("iterating");
    while (stream_record_iter_next(&it, &rec) == 1) {
        stream_fmt_record fr;
        stream_fmt_record_from_record(&fr, "orders", 6, 0, &rec);
        if (stream_recfmt_write_json(&json, &fr) != 0 || stream_recfmt_write_msgpack(&mp, &fr))
            die("writing records");
    }
    stream_record_iter_stop(&it);
    static const char lenient[] = "\n{\"value\":\"x\"}\r\n{\"key\":\"k\",\"value\":{\"a\":1},"
                                  "\"headers\":{\"h1\":\"v1\",\"h2\":null},\"timestamp\":1}\n";
    stream_buf_put(&json, lenient, sizeof lenient - 1);
    seed("fuzz_recfmt", "json", json.data, json.len);
    seed("fuzz_recfmt", "msgpack", mp.data, mp.len);
    seed_str("fuzz_json", "recfmt-lenient",
             "{\"key\":\"k\",\"value\":{\"a\":1},\"headers\":{\"h1\":\"v1\",\"h2\":null}}");
    stream_buf_release(&batch);
    stream_buf_release(&json);
    stream_buf_release(&mp);
}

/* ---- segment files ----------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void read_file(const char *dir, const char *name, stream_buf *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    stream_buf_reset(out);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        stream_buf_put(out, buf, (size_t)n);
    close(fd);
}

/* A new log (settings cfg) in a new temporary directory: dir gets the
 * directory (the caller removes it), part the partition inside it. */
static stream_log *seed_log(char dir[32], char part[64], const stream_log_config *cfg)
{
    snprintf(dir, 32, "/tmp/make_seeds.XXXXXX");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(part, 64, "%s/t-0", dir);
    stream_log *log;
    char err[256];
    if (stream_log_open(part, cfg, &log, NULL, err, sizeof err) != 0)
        die(err);
    return log;
}

/* The base offsets (20 digits) of part's segment files, sorted; dies with
 * fewer than two (the log did not roll). */
static int segment_bases(const char *part, char bases[][32], int max)
{
    DIR *d = opendir(part);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ".log") == 0 && n < max)
            snprintf(bases[n++], 32, "%.20s", e->d_name);
    if (d != NULL)
        closedir(d);
    qsort(bases, (size_t)n, 32, (int (*)(const void *, const void *))strcmp);
    if (n < 2)
        die("expected the log to roll");
    return n;
}

/* Input for fuzz_log_recovery (layout in its header comment). */
static void log_input(const char *name, uint8_t flags, const stream_buf *index,
                      const stream_buf *timeindex, const char *rp, size_t split,
                      const stream_buf *log)
{
    stream_buf in = STREAM_BUF_INIT;
    stream_buf_put_u8(&in, flags);
    stream_buf_put_u8(&in, 0); /* base offset 0 */
    if (flags & 0x01) {
        stream_buf_put_be16(&in, (uint16_t)index->len);
        stream_buf_put(&in, index->data, index->len);
    }
    if (flags & 0x02) {
        stream_buf_put_be16(&in, (uint16_t)timeindex->len);
        stream_buf_put(&in, timeindex->data, timeindex->len);
    }
    if (flags & 0x04) {
        stream_buf_put_u8(&in, (uint8_t)strlen(rp));
        stream_buf_put(&in, rp, strlen(rp));
    }
    if (flags & 0x20) {
        stream_buf_put_be16(&in, (uint16_t)split);
        stream_buf_put_u8(&in, 0);
    }
    stream_buf_put(&in, log->data, log->len);
    seed("fuzz_log_recovery", name, in.data, in.len);
    stream_buf_release(&in);
}

static void log_seeds(void)
{
    char dir[32], part[64], err[256];
    stream_log_config cfg;
    stream_log_config_init(&cfg);
    cfg.segment_bytes = 1024;
    cfg.index_interval_bytes = 0;
    stream_log *log = seed_log(dir, part, &cfg);
    stream_buf b = STREAM_BUF_INIT;
    for (int i = 0; i < 8; i++) {
        build_batch(i % 3 == 2 ? STREAM_CODEC_LZ4 : STREAM_CODEC_NONE, &b);
        int64_t at;
        if (stream_log_append(log, b.data, b.len, &at, err, sizeof err) != 0)
            die(err);
    }
    stream_log_close(log);

    /* Segments 0 and the one after it (the log rolled at 1 KiB). */
    char names[8][32];
    segment_bases(part, names, 8);

    stream_buf seg0 = STREAM_BUF_INIT, seg1 = STREAM_BUF_INIT, idx = STREAM_BUF_INIT,
               tidx = STREAM_BUF_INIT, both = STREAM_BUF_INIT;
    char fname[64];
    snprintf(fname, sizeof fname, "%.20s.log", names[0]);
    read_file(part, fname, &seg0);
    snprintf(fname, sizeof fname, "%.20s.log", names[1]);
    read_file(part, fname, &seg1);
    snprintf(fname, sizeof fname, "%.20s.index", names[0]);
    read_file(part, fname, &idx);
    snprintf(fname, sizeof fname, "%.20s.timeindex", names[0]);
    read_file(part, fname, &tidx);

    log_input("segment", 0x00, NULL, NULL, NULL, 0, &seg0);
    log_input("segment-indexes", 0x03, &idx, &tidx, NULL, 0, &seg0);
    log_input("recovery-point", 0x07, &idx, &tidx, "3\n", 0, &seg0);
    log_input("every-batch-indexed", 0x43, &idx, &tidx, NULL, 0, &seg0);
    stream_buf_put(&both, seg0.data, seg0.len);
    stream_buf_put(&both, seg1.data, seg1.len);
    log_input("two-segments", 0x20, NULL, NULL, NULL, seg0.len, &both);
    both.len = seg0.len - 7; /* a torn last batch */
    log_input("torn-tail", 0x00, NULL, NULL, NULL, 0, &both);

    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    stream_buf_release(&b);
    stream_buf_release(&seg0);
    stream_buf_release(&seg1);
    stream_buf_release(&idx);
    stream_buf_release(&tidx);
    stream_buf_release(&both);
}

/* Input for fuzz_clean_swap (layout in its header comment). */
static void swap_input(const char *name, uint8_t flags, const stream_buf *old0,
                       const stream_buf *swap0, const stream_buf *old1, const stream_buf *swap1)
{
    stream_buf in = STREAM_BUF_INIT;
    stream_buf_put_u8(&in, flags);
    stream_buf_put_u8(&in, 0); /* no gap */
    stream_buf_put_be16(&in, (uint16_t)old0->len);
    stream_buf_put(&in, old0->data, old0->len);
    stream_buf_put_be16(&in, (uint16_t)swap0->len);
    stream_buf_put(&in, swap0->data, swap0->len);
    stream_buf_put_be16(&in, (uint16_t)old1->len);
    stream_buf_put(&in, old1->data, old1->len);
    stream_buf_put(&in, swap1->data, swap1->len);
    seed("fuzz_clean_swap", name, in.data, in.len);
    stream_buf_release(&in);
}

/* A compacted log of keys written over and over: its first two segments
 * before and after a cleaning, in the shapes a killed pass leaves. */
static void clean_swap_seeds(void)
{
    char dir[32], part[64], err[256];
    stream_log_config cfg;
    stream_log_config_init(&cfg);
    cfg.segment_bytes = 1024;
    cfg.cleanup_compact = true;
    cfg.cleanup_delete = false;
    cfg.delete_retention_ms = 0;
    stream_log *log = seed_log(dir, part, &cfg);
    for (int i = 0; i < 40; i++) {
        stream_batch_builder bb;
        stream_batch_builder_init(&bb);
        if (i % 4 == 3 && stream_batch_builder_set_codec(&bb, STREAM_CODEC_ZSTD, 0) != 0)
            die("codec");
        for (int r = 0; r < 3; r++) {
            char k[16], v[16];
            snprintf(k, sizeof k, "key-%d", (i * 3 + r) % 7);
            snprintf(v, sizeof v, "value-%d", i);
            bool tomb = i == 20 && r == 0;
            if (stream_batch_builder_append(&bb, 1732442400000 + i, k, (int32_t)strlen(k),
                                            tomb ? NULL : v, tomb ? -1 : (int32_t)strlen(v), NULL,
                                            0) != 0)
                die("append");
        }
        const uint8_t *p;
        size_t len;
        int64_t at;
        if (stream_batch_builder_finish(&bb, &p, &len) != 0)
            die("finish");
        uint8_t copy[512];
        memcpy(copy, p, len);
        if (stream_log_append(log, copy, len, &at, err, sizeof err) != 0)
            die(err);
        stream_batch_builder_release(&bb);
    }
    if (stream_log_maybe_roll(log, INT64_C(4102444800000)) != 0 || stream_log_flush(log) != 0)
        die("roll");
    stream_buf old0 = STREAM_BUF_INIT, old1 = STREAM_BUF_INIT, new0 = STREAM_BUF_INIT,
               new1 = STREAM_BUF_INIT, none = STREAM_BUF_INIT;
    char names[64][32], fname[64];
    segment_bases(part, names, 64);
    snprintf(fname, sizeof fname, "%s.log", names[0]);
    read_file(part, fname, &old0);
    snprintf(fname, sizeof fname, "%s.log", names[1]);
    read_file(part, fname, &old1);
    stream_cleaner_opts opts;
    stream_cleaner_opts_init(&opts);
    opts.dedupe_buffer_bytes = 4096;
    if (stream_log_clean(log, INT64_C(4102444800000), &opts, 0, NULL, err, sizeof err) < 0)
        die(err);
    snprintf(fname, sizeof fname, "%s.log", names[0]);
    read_file(part, fname, &new0);
    snprintf(fname, sizeof fname, "%s.log", names[1]);
    read_file(part, fname, &new1);
    /* More overwrites, and a pass that merges the segments the first one
     * shrank: its copy of the first group spans the second segment too. */
    stream_buf merged = STREAM_BUF_INIT;
    for (int i = 0; i < 7; i++) {
        stream_batch_builder bb;
        stream_batch_builder_init(&bb);
        char k[16];
        snprintf(k, sizeof k, "key-%d", i);
        const uint8_t *p;
        size_t len;
        int64_t at;
        if (stream_batch_builder_append(&bb, 1732442500000, k, (int32_t)strlen(k), "again", 5, NULL,
                                        0) != 0 ||
            stream_batch_builder_finish(&bb, &p, &len) != 0)
            die("build");
        uint8_t copy[512];
        memcpy(copy, p, len);
        if (stream_log_append(log, copy, len, &at, err, sizeof err) != 0)
            die(err);
        stream_batch_builder_release(&bb);
    }
    if (stream_log_maybe_roll(log, INT64_C(4102444800000)) != 0 || stream_log_flush(log) != 0 ||
        stream_log_clean(log, INT64_C(4102444800000), &opts, 0, NULL, err, sizeof err) < 0)
        die("merge");
    snprintf(fname, sizeof fname, "%s.log", names[0]);
    read_file(part, fname, &merged);
    stream_log_close(log);

    swap_input("swap", 0x01, &old0, &new0, &none, &none);
    swap_input("swap-and-cleaned", 0x03, &old0, &new0, &none, &none);
    swap_input("cleaned-only", 0x02, &old0, &new0, &none, &none);
    swap_input("two-segments-both-swapped", 0x19, &old0, &new0, &old1, &new1);
    swap_input("first-swapped-second-cleaned-aside", 0x0b, &old0, &new0, &old1, &new1);
    swap_input("orphan-swap", 0x0c, &old0, &new0, &old1, &none);
    swap_input("trusted-stale-indexes", 0x69, &old0, &new0, &old1, &new1);
    /* The merged first group as seg0's .swap beside the cleaned first two
     * segments (a kill before the merged ones were removed), then with the
     * second already removed. */
    swap_input("merged-swap-covers-second", 0x09, &new0, &merged, &new1, &none);
    swap_input("merged-swap-second-removed", 0x01, &new0, &merged, &none, &none);
    swap_input("merged-swap-second-swapped-too", 0x19, &new0, &merged, &new1, &new1);
    stream_buf_release(&merged);
    new0.len = new0.len > 9 ? new0.len - 9 : 0; /* a torn cleaned copy */
    swap_input("torn-cleaned", 0x02, &old0, &new0, &none, &none);

    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    stream_buf_release(&old0);
    stream_buf_release(&old1);
    stream_buf_release(&new0);
    stream_buf_release(&new1);
}

/* fuzz_metadata: a mode byte, then a command (0), a snapshot (1) or
 * length-prefixed commands (2), as fuzz_metadata.c carves its input; made
 * with the module's own encoders. */
static void meta_seed(const char *name, uint8_t mode, const stream_buf *b)
{
    stream_buf m = STREAM_BUF_INIT;
    stream_buf_put(&m, &mode, 1);
    stream_buf_put(&m, b->data, b->len);
    if (m.oom)
        die("out of memory");
    seed("fuzz_metadata", name, m.data, m.len);
    stream_buf_release(&m);
}

static void ok(int rc, const char *what)
{
    if (rc != 0)
        die(what);
}

static void metadata_seeds(void)
{
    stream_buf b = STREAM_BUF_INIT, seq = STREAM_BUF_INIT;
    stream__meta_req r = {9, 1};
    uint8_t id[16] = {0x42};
    static const int32_t replicas[] = {2, 3, 1, 3, 1, 2};
    const int32_t isr[] = {3, 1};
    stream__meta_kv cfg[] = {{"retention.ms", 12, "60000", 5}, {"segment.bytes", 13, "1024", 4}};

    /* Mode 0: one command of each op, aimed at the fuzz target's state. */
    ok(stream__meta_encode_register_broker(&b, r, 4, "10.0.0.4", 9004), "register");
    meta_seed("register_broker", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_register_broker_kafka(&b, r, 4, "10.0.0.4", 9004, "10.0.0.4", 9092),
       "register with a Kafka listener");
    meta_seed("register_broker_kafka", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_fence_broker(&b, r, 2, 3), "fence");
    meta_seed("fence_broker", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_unfence_broker(&b, r, 1, 2), "unfence");
    meta_seed("unfence_broker", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_create_topic(&b, r, "orders", id, 2, 3, replicas, cfg, 2), "create");
    meta_seed("create_topic", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_delete_topic(&b, r, "t", NULL), "delete");
    meta_seed("delete_topic", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_create_partitions(&b, r, "orders", id, 2, 2, 3, replicas), "grow");
    meta_seed("create_partitions", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_alter_partition(&b, r, "t", NULL, 1, 3, isr, 2, 0), "alter");
    meta_seed("alter_partition", 0, &b);
    stream_buf_reset(&b);
    ok(stream__meta_encode_alter_configs(&b, r, "t", NULL, cfg + 1, 1, cfg, 1), "configs");
    meta_seed("alter_configs", 0, &b);
    stream_buf_reset(&b);
    const int32_t isr3[] = {3}, isr2[] = {2, 3};
    stream__meta_alter al[] = {
        {.topic = "t", .topic_len = 1, .partition = 0, .leader = 3, .isr = {isr3, 1}},
        {.topic = "t", .topic_len = 1, .partition = 2, .leader = 2, .isr = {isr2, 2}},
        {.topic = "nope", .topic_len = 4, .partition = 0, .leader = -1, .isr = {isr3, 1}},
    };
    ok(stream__meta_encode_alter_partitions(&b, r, al, 3), "alter_partitions");
    meta_seed("alter_partitions", 0, &b);

    /* Mode 2: a sequence (create, alter, alter configs, add partitions,
     * delete). */
    stream_buf c[5] = {STREAM_BUF_INIT, STREAM_BUF_INIT, STREAM_BUF_INIT, STREAM_BUF_INIT,
                       STREAM_BUF_INIT};
    ok(stream__meta_encode_create_topic(&c[0], r, "orders", id, 2, 3, replicas, NULL, 0), "c0");
    r.seq++;
    ok(stream__meta_encode_alter_partition(&c[1], r, "orders", id, 0, 3, isr, 2, 0), "c1");
    r.seq++;
    ok(stream__meta_encode_alter_configs(&c[2], r, "orders", id, cfg, 2, NULL, 0), "c2");
    r.seq++;
    ok(stream__meta_encode_create_partitions(&c[3], r, "orders", id, 2, 2, 3, replicas), "c3");
    r.seq++;
    ok(stream__meta_encode_delete_topic(&c[4], r, "orders", id), "c4");
    for (int i = 0; i < 5; i++) {
        stream_buf_put_be16(&seq, (uint16_t)c[i].len);
        stream_buf_put(&seq, c[i].data, c[i].len);
        stream_buf_release(&c[i]);
    }
    meta_seed("sequence", 2, &seq);

    /* Mode 1: the snapshot of a state like the fuzz target's, with more. */
    stream__meta *md = stream__meta_new("fuzz");
    if (md == NULL)
        die("out of memory");
    uint64_t index = 1;
    for (int32_t bid = 1; bid <= 3; bid++) {
        stream_buf_reset(&b);
        r.seq++;
        ok(stream__meta_encode_register_broker(&b, r, bid, "127.0.0.1", (uint16_t)(9000 + bid)),
           "reg");
        ok(stream__meta_apply(md, b.data, b.len, ++index), "apply reg");
    }
    stream_buf_reset(&b);
    ok(stream__meta_encode_create_topic(&b, r, "orders", id, 2, 3, replicas, cfg, 2), "create");
    ok(stream__meta_apply(md, b.data, b.len, ++index), "apply create");
    stream_buf_reset(&b);
    ok(stream__meta_snapshot(md, &b), "snapshot");
    meta_seed("snapshot", 1, &b);
    /* Who-leads answers (mode 3): a leader with its address, and none. */
    stream_buf_reset(&b);
    stream_buf_put(&b, "STRMWHO1 2 127.0.0.1:9092 3 127.0.0.1:9093\n", 43);
    meta_seed("who", 3, &b);
    stream_buf_reset(&b);
    stream_buf_put(&b, "STRMWHO1 1 127.0.0.1:9092 -1 -\n", 31);
    meta_seed("who-none", 3, &b);
    stream__meta_free(md);
    stream_buf_release(&b);
    stream_buf_release(&seq);
}

/* fuzz_journal: deltas after the target's state (index 10): a topic, a
 * batch of leader moves on "t", and a fence; taken from a journal. */
static void journal_seeds(void)
{
    stream__journal *j = stream__journal_new(1 << 20);
    stream_buf b = STREAM_BUF_INIT;
    stream__meta_req r = {7, 1};
    uint8_t id[16] = {0x43};
    static const int32_t replicas[] = {2, 3, 1, 3, 1, 2};
    const int32_t isr[] = {3, 1}, isr23[] = {2, 3};
    if (j == NULL)
        die("out of memory");
    stream__journal_reset(j, 10);
    ok(stream__meta_encode_create_topic(&b, r, "orders", id, 2, 3, replicas, NULL, 0), "create");
    stream__journal_add(j, 12, b.data, b.len);
    stream_buf_reset(&b);
    r.seq++;
    stream__meta_alter al[] = {
        {.topic = "t", .topic_len = 1, .partition = 0, .leader = 2, .isr = {isr23, 2}},
        {.topic = "t", .topic_len = 1, .partition = 1, .leader = 3, .isr = {isr, 2}},
        {.topic = "orders", .topic_len = 6, .partition = 1, .leader = 3, .isr = {isr, 2}},
    };
    ok(stream__meta_encode_alter_partitions(&b, r, al, 3), "alter_partitions");
    stream__journal_add(j, 13, b.data, b.len);
    stream_buf_reset(&b);
    r.seq++;
    ok(stream__meta_encode_fence_broker(&b, r, 2, 5), "fence");
    stream__journal_add(j, 20, b.data, b.len);
    stream_buf_reset(&b);
    ok(stream__journal_since(j, 10, 1 << 20, &b), "deltas");
    seed("fuzz_journal", "deltas", b.data, b.len);
    stream_buf_reset(&b);
    ok(stream__journal_since(j, 13, 1 << 20, &b), "deltas");
    seed("fuzz_journal", "one-delta", b.data, b.len);
    stream__journal_free(j);
    stream_buf_release(&b);
}

/* ---- Kafka's consumer protocol: first byte 0 subscription, 1 assignment ---- */

static void cp_i16(uint8_t *b, size_t *n, int v)
{
    b[(*n)++] = (uint8_t)(v >> 8);
    b[(*n)++] = (uint8_t)v;
}

static void cp_i32(uint8_t *b, size_t *n, int32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        b[(*n)++] = (uint8_t)((uint32_t)v >> s);
}

static void cp_str(uint8_t *b, size_t *n, const char *s)
{
    cp_i16(b, n, (int)strlen(s));
    memcpy(b + *n, s, strlen(s));
    *n += strlen(s);
}

static void consumer_protocol_seeds(void)
{
    uint8_t b[256];
    size_t n = 0;
    b[n++] = 0; /* a subscription, version 1: topics, user data, owned partitions */
    cp_i16(b, &n, 1);
    cp_i32(b, &n, 2);
    cp_str(b, &n, "orders");
    cp_str(b, &n, "clicks");
    cp_i32(b, &n, -1); /* user data: null */
    cp_i32(b, &n, 1);
    cp_str(b, &n, "orders");
    cp_i32(b, &n, 1);
    cp_i32(b, &n, 3);
    seed("fuzz_consumer_protocol", "subscription-v1", b, n);
    n = 0;
    b[n++] = 1; /* an assignment, version 0 */
    cp_i16(b, &n, 0);
    cp_i32(b, &n, 2);
    cp_str(b, &n, "orders");
    cp_i32(b, &n, 2);
    cp_i32(b, &n, 0);
    cp_i32(b, &n, 2);
    cp_str(b, &n, "clicks");
    cp_i32(b, &n, 1);
    cp_i32(b, &n, 7);
    cp_i32(b, &n, 3); /* user data: 3 bytes */
    memcpy(b + n, "abc", 3);
    n += 3;
    seed("fuzz_consumer_protocol", "assignment-v0", b, n);
}

/* ---- Kafka requests ---------------------------------------------------------- */

/* A Kafka string with an int16 length, or compact (uvarint length + 1). */
static void kstr(stream_buf *b, bool compact, const char *s)
{
    if (compact)
        stream_buf_put_uvarint(b, strlen(s) + 1);
    else
        stream_buf_put_be16(b, (uint16_t)strlen(s));
    stream_buf_put(b, s, strlen(s));
}

/* fuzz_kafka_request's input: the API's index in the listener's table (of
 * API key `key`) and the version above its lowest, then the body (the
 * target writes the header); `raw` seeds are whole frames after a 0x80
 * byte. */
static void kafka_seed(const char *name, int key, int version_above_min, const stream_buf *body)
{
    size_t napis, index = 0;
    const stream__kafka_api *apis = stream__kafka_apis(&napis);
    while (index < napis && apis[index].key != key)
        index++;
    if (index == napis) {
        fprintf(stderr, "make_seeds: API key %d is not in the listener's table\n", key);
        exit(1);
    }
    stream_buf b = STREAM_BUF_INIT;
    stream_buf_put_u8(&b, (uint8_t)index);
    stream_buf_put_u8(&b, (uint8_t)version_above_min);
    stream_buf_put(&b, body->data, body->len);
    seed("fuzz_kafka_request", name, b.data, b.len);
    stream_buf_release(&b);
}

/* A consumer subscription of one topic (ConsumerProtocolSubscription v0). */
static void subscription(stream_buf *b, bool flexible)
{
    stream_buf sub = STREAM_BUF_INIT;
    stream_buf_put_be16(&sub, 0);
    stream_buf_put_be32(&sub, 1);
    kstr(&sub, false, "orders");
    stream_buf_put_be32(&sub, 0xffffffff); /* user data: null */
    if (flexible)
        stream_buf_put_uvarint(b, sub.len + 1);
    else
        stream_buf_put_be32(b, (uint32_t)sub.len);
    stream_buf_put(b, sub.data, sub.len);
    stream_buf_release(&sub);
}

/* A flexible commit's topics: "orders", partition 0 at offset 42, no
 * leader epoch, the metadata given (OffsetCommit v8, TxnOffsetCommit v3). */
static void commit_topic(stream_buf *b, const char *metadata)
{
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "orders");
    stream_buf_put_uvarint(b, 2);
    stream_buf_put_be32(b, 0);
    stream_buf_put_be64(b, 42);
    stream_buf_put_be32(b, 0xffffffff);
    kstr(b, true, metadata);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
}

/* The consumer-group APIs (kafka_codec_groups.c), plain and flexible. */
static void kafka_group_seeds(stream_buf *b)
{
    /* JoinGroup v5: group, session, rebalance, member, instance, type, protocols. */
    stream_buf_reset(b);
    kstr(b, false, "g");
    stream_buf_put_be32(b, 45000);
    stream_buf_put_be32(b, 300000);
    kstr(b, false, "");
    stream_buf_put_be16(b, 0xffff);
    kstr(b, false, "consumer");
    stream_buf_put_be32(b, 1);
    kstr(b, false, "range");
    subscription(b, false);
    kafka_seed("join-group-v5", STREAM__KAFKA_JOIN_GROUP, 5, b);
    /* JoinGroup v7, flexible. */
    stream_buf_reset(b);
    kstr(b, true, "g");
    stream_buf_put_be32(b, 45000);
    stream_buf_put_be32(b, 300000);
    kstr(b, true, "m-1");
    stream_buf_put_u8(b, 0);
    kstr(b, true, "consumer");
    stream_buf_put_uvarint(b, 3);
    kstr(b, true, "range");
    subscription(b, true);
    stream_buf_put_u8(b, 0);
    kstr(b, true, "cooperative-sticky");
    subscription(b, true);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    kafka_seed("join-group-v7", STREAM__KAFKA_JOIN_GROUP, 7, b);
    /* SyncGroup v3: group, generation, member, instance, assignments. */
    stream_buf_reset(b);
    kstr(b, false, "g");
    stream_buf_put_be32(b, 1);
    kstr(b, false, "m-1");
    stream_buf_put_be16(b, 0xffff);
    stream_buf_put_be32(b, 1);
    kstr(b, false, "m-1");
    subscription(b, false);
    kafka_seed("sync-group-v3", STREAM__KAFKA_SYNC_GROUP, 3, b);
    /* SyncGroup v5, flexible, with protocol type and name. */
    stream_buf_reset(b);
    kstr(b, true, "g");
    stream_buf_put_be32(b, 1);
    kstr(b, true, "m-1");
    stream_buf_put_u8(b, 0);
    kstr(b, true, "consumer");
    kstr(b, true, "range");
    stream_buf_put_uvarint(b, 1);
    stream_buf_put_u8(b, 0);
    kafka_seed("sync-group-v5", STREAM__KAFKA_SYNC_GROUP, 5, b);
    /* Heartbeat v3. */
    stream_buf_reset(b);
    kstr(b, false, "g");
    stream_buf_put_be32(b, 1);
    kstr(b, false, "m-1");
    stream_buf_put_be16(b, 0xffff);
    kafka_seed("heartbeat-v3", STREAM__KAFKA_HEARTBEAT, 3, b);
    /* LeaveGroup v1 (one member) and v4 (a batch, flexible). */
    stream_buf_reset(b);
    kstr(b, false, "g");
    kstr(b, false, "m-1");
    kafka_seed("leave-group-v1", STREAM__KAFKA_LEAVE_GROUP, 1, b);
    stream_buf_reset(b);
    kstr(b, true, "g");
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "m-1");
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    kafka_seed("leave-group-v4", STREAM__KAFKA_LEAVE_GROUP, 4, b);
    /* OffsetCommit v2 (retention time) and v8 (flexible, leader epoch). */
    stream_buf_reset(b);
    kstr(b, false, "g");
    stream_buf_put_be32(b, 1);
    kstr(b, false, "m-1");
    stream_buf_put_be64(b, UINT64_MAX);
    stream_buf_put_be32(b, 1);
    kstr(b, false, "orders");
    stream_buf_put_be32(b, 1);
    stream_buf_put_be32(b, 0);
    stream_buf_put_be64(b, 42);
    kstr(b, false, "");
    kafka_seed("offset-commit-v2", STREAM__KAFKA_OFFSET_COMMIT, 2, b);
    stream_buf_reset(b);
    kstr(b, true, "g");
    stream_buf_put_be32(b, 1);
    kstr(b, true, "m-1");
    stream_buf_put_u8(b, 0);
    commit_topic(b, "meta");
    stream_buf_put_u8(b, 0);
    kafka_seed("offset-commit-v8", STREAM__KAFKA_OFFSET_COMMIT, 8, b);
    /* OffsetFetch v1 (topics), v7 (flexible, all topics), v8 (groups). */
    stream_buf_reset(b);
    kstr(b, false, "g");
    stream_buf_put_be32(b, 1);
    kstr(b, false, "orders");
    stream_buf_put_be32(b, 2);
    stream_buf_put_be32(b, 0);
    stream_buf_put_be32(b, 1);
    kafka_seed("offset-fetch-v1", STREAM__KAFKA_OFFSET_FETCH, 1, b);
    stream_buf_reset(b);
    kstr(b, true, "g");
    stream_buf_put_u8(b, 0); /* topics: null */
    stream_buf_put_u8(b, 1); /* require_stable */
    stream_buf_put_u8(b, 0);
    kafka_seed("offset-fetch-v7", STREAM__KAFKA_OFFSET_FETCH, 7, b);
    stream_buf_reset(b);
    stream_buf_put_uvarint(b, 3);
    kstr(b, true, "g");
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    kstr(b, true, "h");
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "orders");
    stream_buf_put_uvarint(b, 2);
    stream_buf_put_be32(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    kafka_seed("offset-fetch-v8", STREAM__KAFKA_OFFSET_FETCH, 8, b);
    /* ListGroups v4 (a states filter), DescribeGroups v4, DeleteGroups v1. */
    stream_buf_reset(b);
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "Stable");
    stream_buf_put_u8(b, 0);
    kafka_seed("list-groups-v4", STREAM__KAFKA_LIST_GROUPS, 4, b);
    stream_buf_reset(b);
    stream_buf_put_be32(b, 2);
    kstr(b, false, "g");
    kstr(b, false, "h");
    stream_buf_put_u8(b, 0);
    kafka_seed("describe-groups-v4", STREAM__KAFKA_DESCRIBE_GROUPS, 4, b);
    stream_buf_reset(b);
    stream_buf_put_be32(b, 1);
    kstr(b, false, "g");
    kafka_seed("delete-groups-v1", STREAM__KAFKA_DELETE_GROUPS, 1, b);
}

/* The transactional APIs (kafka_codec_txn.c), refused but decoded whole. */
static void kafka_txn_seeds(stream_buf *b)
{
    /* AddPartitionsToTxn v2: id, producer id and epoch, topics [name, [int32]]. */
    stream_buf_reset(b);
    kstr(b, false, "tx");
    stream_buf_put_be64(b, 7);
    stream_buf_put_be16(b, 0);
    stream_buf_put_be32(b, 1);
    kstr(b, false, "orders");
    stream_buf_put_be32(b, 2);
    stream_buf_put_be32(b, 0);
    stream_buf_put_be32(b, 1);
    kafka_seed("add-partitions-to-txn-v2", STREAM__KAFKA_ADD_PARTITIONS_TO_TXN, 2, b);
    /* AddPartitionsToTxn v4, flexible: transactions [id, pid, epoch, verify_only, topics]. */
    stream_buf_reset(b);
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "tx");
    stream_buf_put_be64(b, 7);
    stream_buf_put_be16(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "orders");
    stream_buf_put_uvarint(b, 2);
    stream_buf_put_be32(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    kafka_seed("add-partitions-to-txn-v4", STREAM__KAFKA_ADD_PARTITIONS_TO_TXN, 4, b);
    /* EndTxn v3, flexible: id, pid, epoch, committed. */
    stream_buf_reset(b);
    kstr(b, true, "tx");
    stream_buf_put_be64(b, 7);
    stream_buf_put_be16(b, 0);
    stream_buf_put_u8(b, 1);
    stream_buf_put_u8(b, 0);
    kafka_seed("end-txn-v3", STREAM__KAFKA_END_TXN, 3, b);
    /* TxnOffsetCommit v3, flexible: id, group, pid, epoch, generation,
     * member, instance, topics [name, [partition, offset, epoch, metadata]]. */
    stream_buf_reset(b);
    kstr(b, true, "tx");
    kstr(b, true, "g");
    stream_buf_put_be64(b, 7);
    stream_buf_put_be16(b, 0);
    stream_buf_put_be32(b, 1);
    kstr(b, true, "m-1");
    stream_buf_put_u8(b, 0);
    commit_topic(b, "");
    stream_buf_put_u8(b, 0);
    kafka_seed("txn-offset-commit-v3", STREAM__KAFKA_TXN_OFFSET_COMMIT, 3, b);
    /* WriteTxnMarkers v1, flexible: markers [pid, epoch, result, topics, coordinator epoch]. */
    stream_buf_reset(b);
    stream_buf_put_uvarint(b, 2);
    stream_buf_put_be64(b, 7);
    stream_buf_put_be16(b, 0);
    stream_buf_put_u8(b, 1);
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "orders");
    stream_buf_put_uvarint(b, 2);
    stream_buf_put_be32(b, 0);
    stream_buf_put_u8(b, 0);
    stream_buf_put_be32(b, 3);
    stream_buf_put_u8(b, 0);
    stream_buf_put_u8(b, 0);
    kafka_seed("write-txn-markers-v1", STREAM__KAFKA_WRITE_TXN_MARKERS, 1, b);
    /* ListTransactions v1: state filters, producer id filters, duration. */
    stream_buf_reset(b);
    stream_buf_put_uvarint(b, 2);
    kstr(b, true, "Ongoing");
    stream_buf_put_uvarint(b, 2);
    stream_buf_put_be64(b, 7);
    stream_buf_put_be64(b, (uint64_t)-1);
    stream_buf_put_u8(b, 0);
    kafka_seed("list-transactions-v1", STREAM__KAFKA_LIST_TRANSACTIONS, 1, b);
}

static void kafka_seeds(void)
{
    stream_buf b = STREAM_BUF_INIT, batch = STREAM_BUF_INIT;
    /* Produce v3 (versions 3-9): one partition, one batch. */
    build_batch(STREAM_CODEC_NONE, &batch);
    stream_buf_put_be16(&b, 0xffff); /* transactional_id: null */
    stream_buf_put_be16(&b, 1);      /* acks */
    stream_buf_put_be32(&b, 30000);  /* timeout_ms */
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, (uint32_t)batch.len);
    stream_buf_put(&b, batch.data, batch.len);
    kafka_seed("produce-v3", STREAM__KAFKA_PRODUCE, 0, &b);
    /* Produce v9, flexible. */
    stream_buf_reset(&b);
    stream_buf_put_u8(&b, 0); /* transactional_id: null */
    stream_buf_put_be16(&b, 0xffff);
    stream_buf_put_be32(&b, 30000);
    stream_buf_put_uvarint(&b, 2);
    kstr(&b, true, "orders");
    stream_buf_put_uvarint(&b, 2);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_uvarint(&b, batch.len + 1);
    stream_buf_put(&b, batch.data, batch.len);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    kafka_seed("produce-v9", STREAM__KAFKA_PRODUCE, 6, &b);
    /* Fetch v11 (index 1, versions 4-12). */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 0xffffffff); /* replica_id */
    stream_buf_put_be32(&b, 500);
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 52428800);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 0);          /* partition */
    stream_buf_put_be32(&b, 0xffffffff); /* current_leader_epoch */
    stream_buf_put_be64(&b, 0);          /* fetch_offset */
    stream_buf_put_be64(&b, UINT64_MAX); /* log_start_offset */
    stream_buf_put_be32(&b, 1048576);
    stream_buf_put_be32(&b, 0); /* forgotten topics */
    kstr(&b, false, "");        /* rack */
    kafka_seed("fetch-v11", STREAM__KAFKA_FETCH, 7, &b);
    /* ListOffsets v1 (index 2, versions 1-7). */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be64(&b, UINT64_MAX - 1); /* -2: earliest */
    kafka_seed("list-offsets-v1", STREAM__KAFKA_LIST_OFFSETS, 0, &b);
    /* Metadata v4 (index 3, versions 0-12) and v9, flexible. */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_u8(&b, 1);
    kafka_seed("metadata-v4", STREAM__KAFKA_METADATA, 4, &b);
    stream_buf_reset(&b);
    stream_buf_put_uvarint(&b, 2);
    kstr(&b, true, "orders");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    kafka_seed("metadata-v9", STREAM__KAFKA_METADATA, 9, &b);
    /* FindCoordinator v2 (index 4). */
    stream_buf_reset(&b);
    kstr(&b, false, "group-1");
    stream_buf_put_u8(&b, 0);
    kafka_seed("find-coordinator-v2", STREAM__KAFKA_FIND_COORDINATOR, 2, &b);
    /* ApiVersions v3 (index 5), flexible, with a tagged field. */
    stream_buf_reset(&b);
    kstr(&b, true, "librdkafka");
    kstr(&b, true, "2.0.2");
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 5);
    stream_buf_put_u8(&b, 2);
    stream_buf_put(&b, "hi", 2);
    kafka_seed("api-versions-v3", STREAM__KAFKA_API_VERSIONS, 3, &b);
    /* InitProducerId v4 (index 6), flexible. */
    stream_buf_reset(&b);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_be32(&b, 60000);
    stream_buf_put_be64(&b, UINT64_MAX);
    stream_buf_put_be16(&b, 0xffff);
    stream_buf_put_u8(&b, 0);
    kafka_seed("init-producer-id-v4", STREAM__KAFKA_INIT_PRODUCER_ID, 4, &b);
    /* OffsetForLeaderEpoch v2 (index 7). */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 0);
    kafka_seed("offset-for-leader-epoch-v2", STREAM__KAFKA_OFFSET_FOR_LEADER_EPOCH, 2, &b);
    /* The admin APIs. CreateTopics v4: one topic, 3 partitions, default
     * replication, one config; validate_only. */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 3);
    stream_buf_put_be16(&b, 0xffff);
    stream_buf_put_be32(&b, 0); /* assignments */
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "retention.ms");
    kstr(&b, false, "3600000");
    stream_buf_put_be32(&b, 30000);
    stream_buf_put_u8(&b, 1);
    kafka_seed("create-topics-v4", STREAM__KAFKA_CREATE_TOPICS, 4, &b);
    /* DeleteTopics v4, flexible. */
    stream_buf_reset(&b);
    stream_buf_put_uvarint(&b, 3);
    kstr(&b, true, "orders");
    kstr(&b, true, "other");
    stream_buf_put_be32(&b, 30000);
    stream_buf_put_u8(&b, 0);
    kafka_seed("delete-topics-v4", STREAM__KAFKA_DELETE_TOPICS, 4, &b);
    /* CreatePartitions v1: to 6, assignments null. */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 6);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 30000);
    stream_buf_put_u8(&b, 0);
    kafka_seed("create-partitions-v1", STREAM__KAFKA_CREATE_PARTITIONS, 1, &b);
    /* DescribeConfigs v4, flexible: a topic (two keys) and broker 0 (all). */
    stream_buf_reset(&b);
    stream_buf_put_uvarint(&b, 3);
    stream_buf_put_u8(&b, 2);
    kstr(&b, true, "orders");
    stream_buf_put_uvarint(&b, 3);
    kstr(&b, true, "retention.ms");
    kstr(&b, true, "segment.bytes");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 4);
    kstr(&b, true, "0");
    stream_buf_put_u8(&b, 0); /* keys: null */
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 0);
    kafka_seed("describe-configs-v4", STREAM__KAFKA_DESCRIBE_CONFIGS, 4, &b);
    /* AlterConfigs v1: one topic, one setting. */
    stream_buf_reset(&b);
    stream_buf_put_be32(&b, 1);
    stream_buf_put_u8(&b, 2);
    kstr(&b, false, "orders");
    stream_buf_put_be32(&b, 1);
    kstr(&b, false, "segment.bytes");
    kstr(&b, false, "1048576");
    stream_buf_put_u8(&b, 0);
    kafka_seed("alter-configs-v1", STREAM__KAFKA_ALTER_CONFIGS, 1, &b);
    /* IncrementalAlterConfigs v1, flexible: SET and DELETE. */
    stream_buf_reset(&b);
    stream_buf_put_uvarint(&b, 2);
    stream_buf_put_u8(&b, 2);
    kstr(&b, true, "orders");
    stream_buf_put_uvarint(&b, 3);
    kstr(&b, true, "retention.ms");
    stream_buf_put_u8(&b, 0);
    kstr(&b, true, "5000");
    stream_buf_put_u8(&b, 0);
    kstr(&b, true, "segment.bytes");
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 0); /* value: null */
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    kafka_seed("incremental-alter-configs-v1", STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS, 1, &b);
    /* DescribeCluster v0, flexible. */
    stream_buf_reset(&b);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    kafka_seed("describe-cluster-v0", STREAM__KAFKA_DESCRIBE_CLUSTER, 0, &b);
    kafka_group_seeds(&b);
    kafka_txn_seeds(&b);
    /* A whole frame: ApiVersions v0 from a client called kcat. */
    static const uint8_t raw[] = {0x80, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, 'k', 'c', 'a', 't'};
    seed("fuzz_kafka_request", "raw-api-versions-v0", raw, sizeof raw);
    stream_buf_release(&b);
    stream_buf_release(&batch);
}

/* fuzz_sse and fuzz_json_array: two parameter bytes, then a body. */
static void source_seeds(void)
{
    static const char sse[] = "\x00\x07"
                              "\xEF\xBB\xBF: a comment\r\n"
                              "retry: 1500\n\n"
                              "id: 1\nevent: tick\ndata: event-1\n\n"
                              "id: 2\r\ndata: two\r\ndata: lines\r\n\r\n"
                              "data: caf\xC3\xA9\rid\r\r"
                              "id: 3\ndata: half";
    seed("fuzz_sse", "stream", sse, sizeof sse - 1);
    static const char sse_small[] = "\x01\x03id: 9\ndata: 0123456789abcdef\n\n";
    seed("fuzz_sse", "limit", sse_small, sizeof sse_small - 1);
    static const char arr[] = "\x00\x05 [1, -2.5e3, true, null, \"a,]\\\"\", "
                              "{\"k\": [1, {\"x\": \"}\"}]}, [[]]]\n";
    seed("fuzz_json_array", "array", arr, sizeof arr - 1);
    static const char arr_bad[] = "\x02\x09[1, {\"a\": tru}, 3";
    seed("fuzz_json_array", "malformed", arr_bad, sizeof arr_bad - 1);
}

/* ---- stats answers (fuzz_stats) -------------------------------------------- */

/* fuzz_stats: a stats answer's body (protocol.md 6.29) with a topic, a
 * request, two listeners and a group with lag; and one without groups. */
static void stats_seeds(void)
{
    for (int groups = 0; groups < 2; groups++) {
        stream_buf b = STREAM_BUF_INIT;
        stream_frame f;
        stream_frame_start(&f, &b);
        msgpack_packer *pk = &f.pk;
        msgpack_pack_map(pk, 7 + groups);
        stream_pack_kv_int(pk, "node_id", 1);
        stream_pack_kv_uint(pk, "time_ms", 1800000000000ULL);
        stream_pack_key(pk, "topics");
        msgpack_pack_array(pk, 1);
        msgpack_pack_map(pk, 5);
        stream_pack_kv_cstr(pk, "name", "orders");
        stream_pack_kv_uint(pk, "records_in", 10);
        stream_pack_kv_uint(pk, "bytes_in", 1000);
        stream_pack_kv_uint(pk, "bytes_out", 2000);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, 1);
        msgpack_pack_map(pk, 5);
        stream_pack_kv_int(pk, "partition", 0);
        stream_pack_kv_int(pk, "size_bytes", 1000);
        stream_pack_kv_int(pk, "segments", 1);
        stream_pack_kv_int(pk, "log_start_offset", 0);
        stream_pack_kv_int(pk, "log_end_offset", 10);
        stream_pack_key(pk, "requests");
        msgpack_pack_array(pk, 1);
        msgpack_pack_map(pk, 4);
        stream_pack_kv_cstr(pk, "op", "produce");
        stream_pack_kv_uint(pk, "count", 3);
        stream_pack_kv_uint(pk, "errors", 0);
        stream_pack_key(pk, "latency_seconds_sum");
        msgpack_pack_double(pk, 0.25);
        stream_pack_key(pk, "connections");
        msgpack_pack_array(pk, 2);
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "listener", "native");
        stream_pack_kv_uint(pk, "count", 2);
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "listener", "kafka");
        stream_pack_kv_uint(pk, "count", 1);
        stream_pack_kv_uint(pk, "resident_memory_bytes", 1 << 20);
        stream_pack_kv_uint(pk, "open_fds", 20);
        if (groups) {
            stream_pack_key(pk, "groups");
            msgpack_pack_array(pk, 1);
            msgpack_pack_map(pk, 4);
            stream_pack_kv_cstr(pk, "group", "billing");
            stream_pack_kv_uint(pk, "members", 2);
            stream_pack_kv_int(pk, "generation", 5);
            stream_pack_key(pk, "partitions");
            msgpack_pack_array(pk, 1);
            msgpack_pack_map(pk, 4);
            stream_pack_kv_cstr(pk, "topic", "orders");
            stream_pack_kv_int(pk, "partition", 0);
            stream_pack_kv_int(pk, "lag_records", 4);
            stream_pack_key(pk, "lag_seconds");
            msgpack_pack_double(pk, 2.5);
        }
        if (stream_frame_finish(&f) != 0)
            die("stats seed");
        seed("fuzz_stats", groups ? "groups" : "no-groups", b.data + 4, b.len - 4);
        stream_buf_release(&b);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        die(root);
    batch_seeds();
    codec_seeds();
    frame_seeds();
    text_seeds();
    recfmt_seeds();
    log_seeds();
    clean_swap_seeds();
    metadata_seeds();
    journal_seeds();
    epoch_seeds();
    group_meta_seeds();
    consumer_protocol_seeds();
    kafka_seeds();
    source_seeds();
    stats_seeds();
    return 0;
}
