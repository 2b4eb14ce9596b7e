/*
 * make_seeds_metadata.c - writes the seed corpus of fuzz_metadata:
 * tests/fuzz/corpus/fuzz_metadata/seed-NAME, laid out as fuzz_metadata.c
 * carves its input (a mode byte, then a command, a snapshot, or
 * length-prefixed commands), made with the module's own encoders so the
 * seeds follow the formats as the code writes them. Deterministic.
 *
 * (A separate program only until it joins tests/fuzz/make_seeds.c as one
 * more *_seeds() function.)
 *
 *   cc -D_GNU_SOURCE -Ilibstream/include -Ilibstream -std=c17 -O1 -g \
 *      $(pkg-config --cflags msgpack libuv) -o build/fuzz/make_seeds_metadata \
 *      tests/fuzz/make_seeds_metadata.c libstream/cluster/metadata.c \
 *      libstream/cluster/metadata_codec.c build/libstream.a \
 *      $(pkg-config --libs msgpack libuv liblz4 libzstd zlib snappy) -lm
 *   build/fuzz/make_seeds_metadata tests/fuzz/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster/metadata.h"
#include "stream/buf.h"
#include "stream/proto.h"

static const char *root;

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "make_seeds_metadata: %s\n", what);
    exit(1);
}

/* Writes mode byte + bytes as seed-NAME. */
static void seed(const char *name, uint8_t mode, const stream_buf *b)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz_metadata", root);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/fuzz_metadata/seed-%s", root, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputc(mode, f) == EOF ||
        (b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len) || fclose(f) != 0)
        die(path);
}

static void ok(int rc, const char *what)
{
    if (rc != 0)
        die(what);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: make_seeds_metadata CORPUS_DIR");
    root = argv[1];
    stream_buf b = STREAM_BUF_INIT, seq = STREAM_BUF_INIT;
    stream_metadata_req r = {9, 1};
    uint8_t id[16] = {0x42};
    static const int32_t replicas[] = {2, 3, 1, 3, 1, 2};
    const int32_t isr[] = {3, 1};
    stream_metadata_kv cfg[] = {{"retention.ms", 12, "60000", 5}, {"segment.bytes", 13, "1024", 4}};

    /* Mode 0: one command of each op, aimed at the fuzz target's state. */
    ok(stream_metadata_encode_register_broker(&b, r, 4, "10.0.0.4", 9004), "register");
    seed("register_broker", 0, &b);
    stream_buf_reset(&b);
    ok(stream_metadata_encode_fence_broker(&b, r, 2, 3), "fence");
    seed("fence_broker", 0, &b);
    stream_buf_reset(&b);
    ok(stream_metadata_encode_unfence_broker(&b, r, 1, 2), "unfence");
    seed("unfence_broker", 0, &b);
    stream_buf_reset(&b);
    ok(stream_metadata_encode_create_topic(&b, r, "orders", id, 2, 3, replicas, cfg, 2), "create");
    seed("create_topic", 0, &b);
    stream_buf_reset(&b);
    ok(stream_metadata_encode_delete_topic(&b, r, "t", NULL), "delete");
    seed("delete_topic", 0, &b);
    stream_buf_reset(&b);
    ok(stream_metadata_encode_alter_partition(&b, r, "t", NULL, 1, 3, isr, 2, 0), "alter");
    seed("alter_partition", 0, &b);
    stream_buf_reset(&b);
    ok(stream_metadata_encode_alter_configs(&b, r, "t", NULL, cfg + 1, 1, cfg, 1), "configs");
    seed("alter_configs", 0, &b);

    /* Mode 2: a sequence (create, alter, alter configs, delete). */
    stream_buf c[4] = {STREAM_BUF_INIT, STREAM_BUF_INIT, STREAM_BUF_INIT, STREAM_BUF_INIT};
    ok(stream_metadata_encode_create_topic(&c[0], r, "orders", id, 2, 3, replicas, NULL, 0), "c0");
    r.seq++;
    ok(stream_metadata_encode_alter_partition(&c[1], r, "orders", id, 0, 3, isr, 2, 0), "c1");
    r.seq++;
    ok(stream_metadata_encode_alter_configs(&c[2], r, "orders", id, cfg, 2, NULL, 0), "c2");
    r.seq++;
    ok(stream_metadata_encode_delete_topic(&c[3], r, "orders", id), "c3");
    for (int i = 0; i < 4; i++) {
        stream_buf_put_be16(&seq, (uint16_t)c[i].len);
        stream_buf_put(&seq, c[i].data, c[i].len);
        stream_buf_release(&c[i]);
    }
    seed("sequence", 2, &seq);

    /* Mode 1: the snapshot of a state like the fuzz target's, with more. */
    stream_metadata *md = stream_metadata_new("fuzz");
    if (md == NULL)
        die("out of memory");
    uint64_t index = 1;
    for (int32_t bid = 1; bid <= 3; bid++) {
        stream_buf_reset(&b);
        r.seq++;
        ok(stream_metadata_encode_register_broker(&b, r, bid, "127.0.0.1", (uint16_t)(9000 + bid)),
           "reg");
        ok(stream_metadata_apply(md, b.data, b.len, ++index), "apply reg");
    }
    stream_buf_reset(&b);
    ok(stream_metadata_encode_create_topic(&b, r, "orders", id, 2, 3, replicas, cfg, 2), "create");
    ok(stream_metadata_apply(md, b.data, b.len, ++index), "apply create");
    stream_buf_reset(&b);
    ok(stream_metadata_snapshot(md, &b), "snapshot");
    seed("snapshot", 1, &b);
    stream_metadata_free(md);
    stream_buf_release(&b);
    stream_buf_release(&seq);
    return 0;
}
