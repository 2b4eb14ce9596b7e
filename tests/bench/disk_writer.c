/*
 * disk_writer.c - the disk's own limit for the broker's durable path: what
 * a log could do at best on this file system, measured the same way the
 * broker is, so that acks=all figures can be quoted as a ratio to it.
 *
 *   disk_writer [-s RECORD_BYTES] [-n RECORDS] [-w WRITE_BYTES] [-W WINDOW_BYTES] [--json] [DIR]
 *
 * A writer thread appends RECORDS records of RECORD_BYTES (default 1 KiB,
 * 1,000,000) to one growing file in writes of WRITE_BYTES (default 256 KiB:
 * a producer's batches as the broker receives them), while a syncer thread
 * runs the broker's group commit: an fdatasync round as soon as the previous
 * one ended and something new was written, each round covering everything
 * written before it began. Throughput is the bytes over the time until the
 * last byte is on disk; every round's fdatasync latency goes into the
 * distribution (p50/p99/p99.9/max).
 *
 * Then the same with a window (-W, default 4 MiB): the writer may run at
 * most WINDOW bytes ahead of what is on disk, as a producer with acks=all
 * may have at most its in-flight requests unacknowledged (the client's
 * default: 16 requests of 256 KiB batches per partition). Without a window
 * the writer fills the page cache at memory speed and a few huge rounds
 * sync it: the disk's limit for one big write, not for a client that waits
 * for its acknowledgements.
 *
 * Then a second phase, the latency floor for acks=all at a modest rate:
 * SYNC_SAMPLES (-S, default 2000) rounds of one 100-byte record each,
 * written and fdatasynced one at a time (what one record at 10,000/s costs
 * when nothing else shares the round), with their distribution.
 *
 * DIR (default $LOG_BENCH_DIR, else .) must be on the disk being measured,
 * not tmpfs. The file is removed at the end. Never part of make check.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct lat {
    int64_t *ns;
    size_t n, cap;
} lat;

static void lat_add(lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->ns = realloc(l->ns, l->cap * sizeof(*l->ns));
        if (l->ns == NULL) {
            fprintf(stderr, "disk_writer: out of memory\n");
            exit(1);
        }
    }
    l->ns[l->n++] = ns;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q quantile in ms (nearest rank); 0 when empty. */
static double lat_q(lat *l, double q)
{
    if (l->n == 0)
        return 0;
    size_t i = (size_t)(q * (double)l->n);
    if (i >= l->n)
        i = l->n - 1;
    return (double)l->ns[i] / 1e6;
}

typedef struct shared {
    int fd;
    _Atomic int64_t written; /* bytes written so far */
    _Atomic int64_t synced;  /* bytes on disk (covered by a finished round) */
    _Atomic bool done;       /* the writer finished */
    lat rounds;
    _Atomic int err;
} shared;

static void *syncer(void *arg)
{
    shared *s = arg;
    int64_t synced = 0;
    for (;;) {
        bool finished = atomic_load(&s->done);
        int64_t target = atomic_load(&s->written);
        if (target == synced) {
            if (finished)
                return NULL;
            struct timespec pause = {0, 20000}; /* 20 us: the broker's flusher waits on a condvar */
            nanosleep(&pause, NULL);
            continue;
        }
        int64_t t0 = now_ns();
        if (fdatasync(s->fd) != 0) {
            s->err = errno;
            return NULL;
        }
        lat_add(&s->rounds, now_ns() - t0);
        synced = target;
        atomic_store(&s->synced, synced);
    }
}

/* Writes `total` bytes in writes of `wsize` from buf to s->fd (from offset
 * 0 of an empty file) while a syncer thread group-commits; with a window,
 * a write waits until it is at most `window` bytes ahead of the disk.
 * Returns the seconds until the last byte was on disk (s->err on failure). */
static double group_commit_run(shared *s, const char *buf, size_t wsize, int64_t total,
                               int64_t window)
{
    if (lseek(s->fd, 0, SEEK_SET) != 0) {
        s->err = errno;
        return 0;
    }
    pthread_t th;
    pthread_create(&th, NULL, syncer, s);
    int64_t t0 = now_ns();
    for (int64_t off = 0; off < total && s->err == 0;) {
        size_t len = (size_t)(total - off < (int64_t)wsize ? total - off : (int64_t)wsize);
        while (window > 0 && off + (int64_t)len - atomic_load(&s->synced) > window &&
               s->err == 0) {
            struct timespec pause = {0, 20000}; /* as the syncer: a producer polls its acks */
            nanosleep(&pause, NULL);
        }
        ssize_t w = write(s->fd, buf, len);
        if (w < 0) {
            s->err = errno;
            break;
        }
        off += w;
        atomic_store(&s->written, off);
    }
    atomic_store(&s->done, true);
    pthread_join(th, NULL);
    return (double)(now_ns() - t0) / 1e9;
}

/* Phase 3: records of 100 B written at `rate` a second for `secs` seconds
 * by one thread while another runs the group commit over them; a record's
 * latency is from its write to the end of the first fdatasync that began
 * after it: what an acks=all record at that rate waits for the disk, with
 * nothing else in the way (the broker's floor for e2e latency). */
typedef struct paced_shared {
    int fd;
    _Atomic int64_t written;  /* records written */
    _Atomic int64_t synced;   /* records covered by a finished fdatasync */
    _Atomic bool done;
    int64_t *sync_end_ns;     /* by record: when its covering sync ended */
} paced_shared;

static void *paced_syncer(void *arg)
{
    paced_shared *s = arg;
    for (;;) {
        bool finished = atomic_load(&s->done);
        int64_t target = atomic_load(&s->written), from = atomic_load(&s->synced);
        if (target == from) {
            if (finished)
                return NULL;
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
            continue;
        }
        if (fdatasync(s->fd) != 0)
            return NULL;
        int64_t end = now_ns();
        for (int64_t i = from; i < target; i++)
            s->sync_end_ns[i] = end;
        atomic_store(&s->synced, target);
    }
}

static lat paced_run(int fd, const char *buf, long rate, long secs)
{
    lat l = {0};
    int64_t n = (int64_t)rate * secs;
    int64_t *wrote = calloc((size_t)n, sizeof(int64_t));
    paced_shared s = {.fd = fd, .sync_end_ns = calloc((size_t)n, sizeof(int64_t))};
    if (wrote == NULL || s.sync_end_ns == NULL) {
        fprintf(stderr, "disk_writer: out of memory\n");
        exit(1);
    }
    pthread_t th;
    pthread_create(&th, NULL, paced_syncer, &s);
    int64_t start = now_ns(), gap = 1000000000 / rate;
    for (int64_t i = 0; i < n; i++) {
        int64_t due = start + i * gap, t;
        while ((t = now_ns()) < due) {
            struct timespec pause = {0, (long)((due - t) > 50000 ? 50000 : due - t)};
            nanosleep(&pause, NULL);
        }
        if (write(fd, buf, 100) != 100)
            break;
        wrote[i] = now_ns();
        atomic_store(&s.written, i + 1);
    }
    atomic_store(&s.done, true);
    pthread_join(th, NULL);
    int64_t covered = atomic_load(&s.synced);
    for (int64_t i = 0; i < covered; i++)
        lat_add(&l, s.sync_end_ns[i] - wrote[i]);
    free(wrote);
    free(s.sync_end_ns);
    return l;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: disk_writer [-s RECORD_BYTES] [-n RECORDS] [-w WRITE_BYTES] [-S SYNC_SAMPLES] "
               "[-W WINDOW_BYTES] [-r RATE] [-T SECONDS] [--json] [DIR]\n");
}

int main(int argc, char **argv)
{
    long rec = 1024, n = 1000000, wsize = 256 * 1024, samples = 2000, rate = 10000,
         paced_secs = 5, window = 16 * 256 * 1024;
    bool json = false;
    const char *dir = getenv("LOG_BENCH_DIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long *v = NULL;
        if (strcmp(a, "-s") == 0)
            v = &rec;
        else if (strcmp(a, "-n") == 0)
            v = &n;
        else if (strcmp(a, "-w") == 0)
            v = &wsize;
        else if (strcmp(a, "-W") == 0)
            v = &window;
        else if (strcmp(a, "-S") == 0)
            v = &samples;
        else if (strcmp(a, "-r") == 0)
            v = &rate;
        else if (strcmp(a, "-T") == 0)
            v = &paced_secs;
        else if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            usage(stderr);
            return 2;
        } else
            dir = a;
        if (v != NULL) {
            char *end;
            if (++i >= argc || (*v = strtol(argv[i], &end, 10)) <= 0 || *end != '\0') {
                usage(stderr);
                return 2;
            }
        }
    }
    if (dir == NULL)
        dir = ".";
    if (wsize < rec)
        wsize = rec;
    wsize -= wsize % rec; /* whole records per write */

    char path[4096];
    snprintf(path, sizeof path, "%s/disk_writer.%ld", dir, (long)getpid());
    shared s = {.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (s.fd < 0) {
        fprintf(stderr, "disk_writer: %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *buf = malloc((size_t)wsize);
    if (buf == NULL) {
        fprintf(stderr, "disk_writer: out of memory\n");
        return 1;
    }
    memset(buf, 'x', (size_t)wsize);

    /* Phase 1: throughput under group commit, without and with a window. */
    int64_t total = (int64_t)rec * n;
    double secs = group_commit_run(&s, buf, (size_t)wsize, total, 0);
    shared sw = {.fd = s.fd};
    double wsecs = 0;
    if (s.err == 0 && ftruncate(s.fd, 0) != 0)
        s.err = errno;
    if (s.err == 0) {
        wsecs = group_commit_run(&sw, buf, (size_t)wsize, total, window);
        s.err = sw.err;
    }
    if (s.err != 0) {
        fprintf(stderr, "disk_writer: %s: %s\n", path, strerror(s.err));
        unlink(path);
        return 1;
    }
    qsort(s.rounds.ns, s.rounds.n, sizeof(int64_t), cmp_i64);
    qsort(sw.rounds.ns, sw.rounds.n, sizeof(int64_t), cmp_i64);

    /* Phase 2: one small record per round. */
    lat one = {0};
    for (long i = 0; i < samples; i++) {
        int64_t a = now_ns();
        if (write(s.fd, buf, 100) != 100 || fdatasync(s.fd) != 0) {
            fprintf(stderr, "disk_writer: %s: %s\n", path, strerror(errno));
            unlink(path);
            return 1;
        }
        lat_add(&one, now_ns() - a);
    }
    qsort(one.ns, one.n, sizeof(int64_t), cmp_i64);

    /* Phase 3: acks=all at a rate, as the broker does it. */
    lat paced = paced_run(s.fd, buf, rate, paced_secs);
    qsort(paced.ns, paced.n, sizeof(int64_t), cmp_i64);
    close(s.fd);
    unlink(path);

    double mbps = (double)total / secs / 1e6, wmbps = (double)total / wsecs / 1e6;
    if (json) {
        printf("{\"record_bytes\":%ld,\"records\":%ld,\"write_bytes\":%ld,\"seconds\":%.3f,"
               "\"mb_per_sec\":%.1f,\"rounds\":%zu,"
               "\"round_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
               "\"window_bytes\":%ld,\"window_mb_per_sec\":%.1f,\"window_rounds\":%zu,"
               "\"window_round_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
               "\"small_sync_ms\":{\"samples\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
               "\"max\":%.3f},"
               "\"paced_ms\":{\"rate\":%ld,\"records\":%zu,\"p50\":%.3f,\"p99\":%.3f,"
               "\"p999\":%.3f,\"max\":%.3f}}\n",
               rec, n, wsize, secs, mbps, s.rounds.n, lat_q(&s.rounds, 0.5),
               lat_q(&s.rounds, 0.99), lat_q(&s.rounds, 0.999), lat_q(&s.rounds, 1), window,
               wmbps, sw.rounds.n, lat_q(&sw.rounds, 0.5), lat_q(&sw.rounds, 0.99),
               lat_q(&sw.rounds, 0.999), lat_q(&sw.rounds, 1), one.n, lat_q(&one, 0.5), lat_q(&one, 0.99), lat_q(&one, 0.999), lat_q(&one, 1),
               rate, paced.n, lat_q(&paced, 0.5), lat_q(&paced, 0.99), lat_q(&paced, 0.999),
               lat_q(&paced, 1));
    } else {
        printf("disk_writer: %ld records of %ld B in %ld-byte writes, group-committed: %.1f MB/s "
               "(%.2f s, %zu fdatasync rounds: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max "
               "%.2f ms)\n",
               n, rec, wsize, mbps, secs, s.rounds.n, lat_q(&s.rounds, 0.5),
               lat_q(&s.rounds, 0.99), lat_q(&s.rounds, 0.999), lat_q(&s.rounds, 1));
        printf("disk_writer: the same, at most %ld B ahead of the disk: %.1f MB/s (%zu rounds: "
               "p50 %.2f ms, p99 %.2f ms)\n",
               window, wmbps, sw.rounds.n, lat_q(&sw.rounds, 0.5), lat_q(&sw.rounds, 0.99));
        printf("disk_writer: %zu fdatasyncs of one 100 B record each: p50 %.2f ms, p99 %.2f ms, "
               "p99.9 %.2f ms, max %.2f ms\n",
               one.n, lat_q(&one, 0.5), lat_q(&one, 0.99), lat_q(&one, 0.999), lat_q(&one, 1));
        printf("disk_writer: %zu records of 100 B at %ld/s, group-committed, write to on disk: "
               "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
               paced.n, rate, lat_q(&paced, 0.5), lat_q(&paced, 0.99), lat_q(&paced, 0.999),
               lat_q(&paced, 1));
    }
    free(buf);
    free(s.rounds.ns);
    free(sw.rounds.ns);
    free(one.ns);
    free(paced.ns);
    return 0;
}
