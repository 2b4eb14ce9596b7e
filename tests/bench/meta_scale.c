/*
 * meta_scale.c - the cluster metadata at scale, in one process: the state
 * machine every voter runs (libstream/cluster/metadata*.c) and the
 * controller's election (election.c), without Raft, disks or sockets, so
 * the numbers are the metadata's own cost.
 *
 *   meta_scale [-b BROKERS] [-r RF] [-p PARTITIONS_PER_TOPIC] N...
 *
 * Defaults: 3 brokers, RF 3, topics of 1000 partitions, N = 10000 50000
 * 100000. For each N (total partitions), in a fresh state:
 *
 *   create     N partitions as N / PARTITIONS_PER_TOPIC create_topic
 *              commands, encoded then applied: apply rate in partitions/s
 *              (apply only: decode + checks + the new state)
 *   memory     the heap the state holds (mallinfo2's bytes in use)
 *   snapshot   size of the whole state (what a voter's snapshot holds and
 *              what a data-only broker is sent when it is too far behind),
 *              time to take it and to restore it into a fresh state
 *   fence      broker 1 (which leads a third of the partitions) fenced: the
 *              election pass (time, changes), its changes as alter_partitions
 *              commands of STREAM__META_ALTER_BATCH partitions each (how many
 *              commands, their bytes, time to encode and apply them all),
 *              and the same changes as one alter_partition per partition
 *   delta      what a broker that follows the metadata is sent for that one
 *              change: the commands (deltas since its index) against the
 *              whole image
 *
 * Prints one line per N; a table for the report.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/election.h"
#include "cluster/metadata.h"
#include "stream/buf.h"
#include "stream/error.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes in use on the heap (what the state holds, freed memory excluded). */
static long heap_kb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks / 1024);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "meta_scale: %s: %s\n", what, stream_strerror(rc));
    exit(1);
}

static uint64_t index_;
static uint64_t seq_;

static void apply(stream__meta *md, stream_buf *b, const char *what)
{
    if (stream_buf_ok(b) != 0)
        die(what, STREAM_ENOMEM);
    int rc = stream__meta_apply(md, b->data, b->len, ++index_);
    if (rc != 0)
        die(what, rc);
    stream_buf_reset(b);
}

/* The changes of one election pass, copied (they borrow from the state). */
typedef struct changes {
    stream__elect_change *c;
    size_t n, cap;
    size_t leader_moves; /* changes that move the leader (the others shrink the ISR) */
} changes;

static bool collect(void *arg, const stream__elect_change *c)
{
    changes *cs = arg;
    cs->leader_moves += c->leader != c->topic->partitions[c->partition].leader;
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 1024;
        cs->c = realloc(cs->c, cs->cap * sizeof(*cs->c));
        if (cs->c == NULL)
            die("election", STREAM_ENOMEM);
    }
    cs->c[cs->n++] = *c;
    return true;
}

/* Applies the changes as batched alter_partitions commands; returns the
 * commands' total bytes, *ncmd their number. */
static size_t apply_batched(stream__meta *md, const changes *cs, size_t *ncmd)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__meta_alter *e = calloc(STREAM__META_ALTER_BATCH, sizeof(*e));
    size_t bytes = 0;
    *ncmd = 0;
    for (size_t i = 0; i < cs->n; i += STREAM__META_ALTER_BATCH) {
        size_t n = cs->n - i < STREAM__META_ALTER_BATCH ? cs->n - i : STREAM__META_ALTER_BATCH;
        stream__elect_alters(&cs->c[i], n, e);
        int rc =
            stream__meta_encode_alter_partitions(&b, (stream__meta_req){9, ++seq_}, e, (uint32_t)n);
        if (rc != 0)
            die("encode alter_partitions", rc);
        bytes += b.len;
        (*ncmd)++;
        apply(md, &b, "alter_partitions");
    }
    free(e);
    stream_buf_release(&b);
    return bytes;
}

static size_t apply_single(stream__meta *md, const changes *cs)
{
    stream_buf b = STREAM_BUF_INIT;
    size_t bytes = 0;
    for (size_t i = 0; i < cs->n; i++) {
        const stream__elect_change *c = &cs->c[i];
        int rc = stream__meta_encode_alter_partition(
            &b, (stream__meta_req){9, ++seq_}, c->topic->name, c->topic->id, c->partition,
            c->leader, c->isr, c->n_isr, c->partition_epoch);
        if (rc != 0)
            die("encode alter_partition", rc);
        bytes += b.len;
        apply(md, &b, "alter_partition");
    }
    stream_buf_release(&b);
    return bytes;
}

/* A state with the brokers registered and unfenced and n partitions. */
static stream__meta *build(int brokers, int rf, int per_topic, long n, double *create_s)
{
    stream__meta *md = stream__meta_new("bench");
    stream_buf b = STREAM_BUF_INIT;
    index_ = 0;
    for (int id = 1; id <= brokers; id++) {
        stream__meta_encode_register_broker(&b, (stream__meta_req){id, 1}, id, "127.0.0.1",
                                            (uint16_t)(9000 + id));
        apply(md, &b, "register");
        const stream__meta_broker *mb = stream__meta_broker_find(md, id);
        stream__meta_encode_unfence_broker(&b, (stream__meta_req){id, 2}, id, mb->epoch);
        apply(md, &b, "unfence");
    }
    int32_t *ids = malloc((size_t)brokers * sizeof(int32_t));
    int32_t *replicas = malloc((size_t)per_topic * (size_t)rf * sizeof(int32_t));
    for (int i = 0; i < brokers; i++)
        ids[i] = i + 1;
    /* Encoded first, so the timing is apply's alone. */
    long topics = (n + per_topic - 1) / per_topic;
    stream_buf *cmds = calloc((size_t)topics, sizeof(stream_buf));
    for (long t = 0; t < topics; t++) {
        int32_t parts = (int32_t)(n - t * per_topic < per_topic ? n - t * per_topic : per_topic);
        char name[64];
        uint8_t id[16] = {1};
        snprintf(name, sizeof name, "topic-%06ld", t);
        memcpy(id + 8, &t, sizeof t);
        stream__elect_place(ids, (uint32_t)brokers, (uint32_t)t, parts, rf, replicas);
        stream_buf_init(&cmds[t]);
        int rc = stream__meta_encode_create_topic(&cmds[t], (stream__meta_req){9, ++seq_}, name, id,
                                                  parts, rf, replicas, NULL, 0);
        if (rc != 0)
            die("encode create_topic", rc);
    }
    double t0 = now_s();
    for (long t = 0; t < topics; t++)
        apply(md, &cmds[t], "create_topic");
    *create_s = now_s() - t0;
    for (long t = 0; t < topics; t++)
        stream_buf_release(&cmds[t]);
    free(cmds);
    free(ids);
    free(replicas);
    stream_buf_release(&b);
    return md;
}

int main(int argc, char **argv)
{
    int brokers = 3, rf = 3, per_topic = 1000, opt;
    while ((opt = getopt(argc, argv, "b:r:p:")) != -1) {
        switch (opt) {
        case 'b':
            brokers = atoi(optarg);
            break;
        case 'r':
            rf = atoi(optarg);
            break;
        case 'p':
            per_topic = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: meta_scale [-b BROKERS] [-r RF] [-p PER_TOPIC] N...\n");
            return 2;
        }
    }
    if (brokers < 1 || rf < 1 || rf > brokers || per_topic < 1 || per_topic > 10000) {
        fprintf(stderr, "meta_scale: need 1 <= RF <= BROKERS and 1 <= PER_TOPIC <= 10000\n");
        return 2;
    }
    long defaults[] = {10000, 50000, 100000};
    long *ns = defaults;
    int nn = 3;
    if (optind < argc) {
        nn = argc - optind;
        ns = calloc((size_t)nn, sizeof(long));
        for (int i = 0; i < nn; i++)
            ns[i] = atol(argv[optind + i]);
    }
    printf("metadata at scale: %d brokers, RF %d, topics of %d partitions, one process "
           "(no Raft, no disk)\n",
           brokers, rf, per_topic);
    printf("%9s %12s %8s %10s %8s %8s | %8s %8s %8s %8s %9s %9s | %9s %10s\n", "partitions",
           "create p/s", "heap MB", "snap bytes", "snap ms", "load ms", "elect ms", "changes",
           "leaders", "batches", "batch ms", "single ms", "delta B", "image B");
    for (int k = 0; k < nn; k++) {
        long n = ns[k];
        long rss0 = heap_kb();
        double create_s;
        stream__meta *md = build(brokers, rf, per_topic, n, &create_s);
        long rss1 = heap_kb();

        stream_buf snap = STREAM_BUF_INIT;
        double t0 = now_s();
        if (stream__meta_snapshot(md, &snap) != 0 || stream_buf_ok(&snap) != 0)
            die("snapshot", STREAM_ENOMEM);
        double snap_s = now_s() - t0;
        stream__meta *copy = stream__meta_new("bench");
        char eb[256];
        t0 = now_s();
        int rc = stream__meta_restore(copy, snap.data, snap.len, eb, sizeof eb);
        double load_s = now_s() - t0;
        if (rc != 0) {
            fprintf(stderr, "meta_scale: restore: %s\n", eb);
            return 1;
        }

        /* Broker 1 fenced; the election pass; its changes applied both ways. */
        stream_buf b = STREAM_BUF_INIT;
        const stream__meta_broker *mb = stream__meta_broker_find(md, 1);
        stream__meta_encode_fence_broker(&b, (stream__meta_req){9, ++seq_}, 1, mb->epoch);
        size_t fence_len = b.len;
        stream_buf fence_cmd = STREAM_BUF_INIT;
        stream_buf_put(&fence_cmd, b.data, b.len);
        apply(md, &b, "fence");
        stream_buf_reset(&b);
        stream_buf_put(&b, fence_cmd.data, fence_cmd.len);
        uint64_t copy_index = index_;
        {
            uint64_t save = index_;
            index_ = copy_index - 1;
            apply(copy, &b, "fence (copy)");
            index_ = save;
        }
        changes cs = {0};
        t0 = now_s();
        stream__elect_all(md, false, collect, &cs);
        double elect_s = now_s() - t0;
        size_t nbatches;
        t0 = now_s();
        size_t delta = fence_len + apply_batched(md, &cs, &nbatches);
        double batch_s = now_s() - t0;
        /* The same changes, computed on the copy, one command each. */
        changes cs2 = {0};
        stream__elect_all(copy, false, collect, &cs2);
        uint64_t save = index_;
        index_ = copy_index;
        t0 = now_s();
        (void)apply_single(copy, &cs2);
        double single_s = now_s() - t0;
        index_ = save;

        stream_buf image = STREAM_BUF_INIT;
        stream__meta_snapshot(md, &image);
        printf(
            "%9ld %12.0f %8.1f %10zu %8.1f %8.1f | %8.1f %8zu %8zu %8zu %9.1f %9.1f | %9zu %10zu\n",
            n, (double)n / create_s, (double)(rss1 - rss0) / 1024.0, snap.len, snap_s * 1e3,
            load_s * 1e3, elect_s * 1e3, cs.n, cs.leader_moves, nbatches, batch_s * 1e3,
            single_s * 1e3, delta, image.len);
        fflush(stdout);
        free(cs.c);
        free(cs2.c);
        stream_buf_release(&image);
        stream_buf_release(&fence_cmd);
        stream_buf_release(&b);
        stream_buf_release(&snap);
        stream__meta_free(copy);
        stream__meta_free(md);
    }
    return 0;
}
