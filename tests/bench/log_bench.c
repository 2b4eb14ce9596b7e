/*
 * log_bench.c - how fast the partition log appends, with and without
 * durability, against what the disk itself does.
 *
 *   log_bench [-d DIR] [-m MB] [-r RUNS] [-n RECORDS_PER_BATCH] [-v VALUE_BYTES]
 *
 * Defaults: DIR $LOG_BENCH_DIR or /tmp, MB $LOG_BENCH_MB or 1024, 3 runs,
 * batches of 1000 records of 100-byte values. Each run measures, in a fresh
 * directory under DIR:
 *
 *   no-flush      appends only (flush mode NEVER, no flusher): the page cache
 *                 path, i.e. batch check + stamp + one pwrite per batch;
 *   group commit  appends with a flusher thread running, a flush requested
 *                 after every batch (what a broker does for acks=all), timed
 *                 until the last append is durable;
 *   dd            dd if=/dev/zero of=DIR/ddfile bs=1M count=MB conv=fdatasync,
 *                 the same bytes written and synced once: the disk's limit.
 *
 * and prints each run, then the medians and the targets (no-flush >= 5M
 * records/s; group commit >= 70% of dd's MB/s). Batches are built once and
 * appended over and over (append stamps the offset in place; the CRC does not
 * cover it), so the producer's encoding cost is not in the numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/error.h"
#include "stream/log.h"

#include "bench_util.h"

#define NBATCHES 16 /* distinct batches cycled through */

typedef struct result {
    double secs;
    double records_per_s;
    double mb_per_s;
    uint64_t syncs;
} result;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, int rc, const char *detail)
{
    fprintf(stderr, "log_bench: %s: %s%s%s\n", what, stream_strerror(rc),
            detail && *detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* Appends `total` bytes worth of batches; with `group`, through a flusher
 * and a flush request per batch, waiting at the end for durability. */
static result run_log(const char *dir, uint8_t **batches, size_t *sizes, int per_batch,
                      int64_t total, int group)
{
    stream_log_config cfg;
    stream_log_config_init(&cfg);
    cfg.flush_mode = group ? STREAM_FLUSH_GROUP : STREAM_FLUSH_NEVER;
    cfg.max_message_bytes = 64 << 20;
    stream_log *log;
    char err[256] = "";
    int rc = stream_log_open(dir, &cfg, &log, NULL, err, sizeof err);
    if (rc != 0)
        die("open", rc, err);
    stream_flusher *fl = NULL;
    if (group &&
        ((rc = stream_flusher_new(&fl)) != 0 || (rc = stream_flusher_attach(fl, log)) != 0))
        die("flusher", rc, NULL);

    int64_t written = 0, records = 0, base = 0;
    double t0 = now_s();
    for (int i = 0; written < total; i++) {
        int k = i % NBATCHES;
        rc = stream_log_append(log, batches[k], sizes[k], &base, err, sizeof err);
        if (rc != 0)
            die("append", rc, err);
        if (group)
            stream_log_request_flush(log);
        written += (int64_t)sizes[k];
        records += per_batch;
    }
    if (group && (rc = stream_log_wait_durable(log, base + per_batch, -1)) != 0)
        die("wait_durable", rc, NULL);
    double secs = now_s() - t0;
    result r = {secs, (double)records / secs, (double)written / secs / 1e6,
                stream_log_sync_count(log)};
    if (fl != NULL) {
        stream_flusher_detach(fl, log);
        stream_flusher_free(fl);
    }
    stream_log_close(log); /* flushes the no-flush run outside the timing */
    rm_rf(dir);
    return r;
}

static result run_dd(const char *dir, int64_t mb)
{
    char of[4200], count[32];
    snprintf(of, sizeof of, "of=%s/ddfile", dir);
    snprintf(count, sizeof count, "count=%" PRId64, mb);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("log_bench: fork");
        exit(1);
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        execlp("dd", "dd", "if=/dev/zero", of, "bs=1M", count, "conv=fdatasync", (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    double secs = now_s() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "log_bench: dd failed (status 0x%x)\n", st);
        exit(1);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/ddfile", dir);
    unlink(path);
    result r = {secs, 0, (double)(mb << 20) / secs / 1e6, 0};
    return r;
}

static void usage(void)
{
    fprintf(stderr, "usage: log_bench [-d DIR] [-m MB] [-r RUNS] [-n RECORDS_PER_BATCH] "
                    "[-v VALUE_BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *base_dir = getenv("LOG_BENCH_DIR") ? getenv("LOG_BENCH_DIR") : "/tmp";
    int64_t mb = getenv("LOG_BENCH_MB") ? strtoll(getenv("LOG_BENCH_MB"), NULL, 10) : 1024;
    int runs = 3, per_batch = 1000, value_bytes = 100;
    int opt;
    while ((opt = getopt(argc, argv, "d:m:r:n:v:h")) != -1) {
        switch (opt) {
        case 'd':
            base_dir = optarg;
            break;
        case 'm':
            mb = strtoll(optarg, NULL, 10);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 'n':
            per_batch = atoi(optarg);
            break;
        case 'v':
            value_bytes = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (mb <= 0 || runs <= 0 || runs > 99 || per_batch <= 0 || value_bytes < 0 ||
        value_bytes > 1 << 20 || optind != argc)
        usage();

    /* Batches of per_batch records with value_bytes-byte values. */
    uint8_t *batches[NBATCHES];
    size_t sizes[NBATCHES];
    uint8_t *value = malloc((size_t)value_bytes + 1);
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    for (int k = 0; k < NBATCHES; k++) {
        stream_batch_builder_reset(&b);
        for (int i = 0; i < per_batch; i++) {
            for (int j = 0; j < value_bytes; j++)
                value[j] = (uint8_t)('a' + (k * 7 + i * 13 + j) % 26);
            int rc = stream_batch_builder_append(&b, 1700000000000LL + i, NULL, -1, value,
                                                 value_bytes, NULL, 0);
            if (rc != 0)
                die("build", rc, NULL);
        }
        const uint8_t *p;
        int rc = stream_batch_builder_finish(&b, &p, &sizes[k]);
        if (rc != 0)
            die("build", rc, NULL);
        batches[k] = malloc(sizes[k]);
        memcpy(batches[k], p, sizes[k]);
    }
    stream_batch_builder_release(&b);
    free(value);

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/log_bench.XXXXXX", base_dir);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "log_bench: mkdtemp in %s: %s\n", base_dir, strerror(errno));
        return 1;
    }
    char logdir[4200];
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    int64_t total = mb << 20;
    printf("log_bench: %" PRId64 " MB per run, %d-byte values, %d records per batch "
           "(%zu bytes), %d runs, in %s\n",
           mb, value_bytes, per_batch, sizes[0], runs, dir);
    fflush(stdout);

    double nf_rec[100], nf_mb[100], gc_rec[100], gc_mb[100], dd_mb[100];
    for (int r = 0; r < runs; r++) {
        result dd = run_dd(dir, mb);
        result nf = run_log(logdir, batches, sizes, per_batch, total, 0);
        result gc = run_log(logdir, batches, sizes, per_batch, total, 1);
        printf("run %d: no-flush %.2f M records/s %.0f MB/s | group commit %.2f M records/s "
               "%.0f MB/s (%" PRIu64 " fdatasync rounds) | dd %.0f MB/s\n",
               r + 1, nf.records_per_s / 1e6, nf.mb_per_s, gc.records_per_s / 1e6, gc.mb_per_s,
               gc.syncs, dd.mb_per_s);
        fflush(stdout);
        nf_rec[r] = nf.records_per_s;
        nf_mb[r] = nf.mb_per_s;
        gc_rec[r] = gc.records_per_s;
        gc_mb[r] = gc.mb_per_s;
        dd_mb[r] = dd.mb_per_s;
    }
    rm_rf(dir);
    double m_nf_rec = bench_median(nf_rec, runs), m_nf_mb = bench_median(nf_mb, runs);
    double m_gc_rec = bench_median(gc_rec, runs), m_gc_mb = bench_median(gc_mb, runs);
    double m_dd = bench_median(dd_mb, runs);
    double ratio = m_gc_mb / m_dd;
    printf("median: no-flush %.2f M records/s %.0f MB/s; group commit %.2f M records/s "
           "%.0f MB/s; dd %.0f MB/s; group commit / dd = %.2f\n",
           m_nf_rec / 1e6, m_nf_mb, m_gc_rec / 1e6, m_gc_mb, m_dd, ratio);
    printf("target no-flush >= 5 M records/s: %s\n", m_nf_rec >= 5e6 ? "met" : "MISSED");
    printf("target group commit >= 70%% of dd: %s\n", ratio >= 0.7 ? "met" : "MISSED");
    for (int k = 0; k < NBATCHES; k++)
        free(batches[k]);
    return 0;
}
