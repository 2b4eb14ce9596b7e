/*
 * cleaner_bench.c - how fast the log cleaner compacts, against the disk,
 * and what it costs appends running beside it.
 *
 *   cleaner_bench [-d DIR] [-m MB] [-k KEYS] [-r RUNS] [-s]
 *
 * Defaults: DIR $LOG_BENCH_DIR or /tmp, MB $CLEANER_BENCH_MB or 1024, KEYS
 * $CLEANER_BENCH_KEYS or 1000000, RUNS $CLEANER_BENCH_RUNS or 3. Each run,
 * in a fresh directory under DIR, writes a compacted log of about MB MiB:
 * KEYS distinct keys each written ten times (so 90% of the records are
 * overwritten), 100 records of 80-byte values a batch, 64 MiB segments.
 * Then it measures:
 *
 *   appends alone   appends (flush mode NEVER) to a second log in the same
 *                   directory for 2 s before the cleaning and 2 s after it
 *                   (their mean: the machine's load drifts);
 *   cleaning        one full cleaning of the first (stream_log_clean_run on
 *                   a thread made a background one, as the broker's; -s:
 *                   at the main thread's priority) while the main thread
 *                   keeps appending to the second: MB/s read (each segment is
 *                   read twice: the key map, then the rewrite) and written by
 *                   the cleaner, and the appends' records/s meanwhile;
 *   dd              dd if=/dev/zero bs=1M count=MB conv=fdatasync: the disk.
 *
 * and prints the medians over the runs of the two ratios of issue 15's
 * targets: cleaner read rate >= 50% of dd's MB/s; appends during cleaning
 * >= 70% of appends alone; with the load average before and after.
 */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/cleaner.h"
#include "stream/error.h"
#include "stream/log.h"

#include "bench_util.h"

#define PER_BATCH   100
#define VALUE_BYTES 80

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

static void die(const char *what, const char *err)
{
    fprintf(stderr, "cleaner_bench: %s: %s\n", what, err);
    exit(1);
}

/* Appends one batch of PER_BATCH records, keys from *next (mod keys). */
static size_t append_batch(stream_log *log, uint64_t *next, uint64_t keys, stream_batch_builder *b)
{
    char key[32], value[VALUE_BYTES];
    memset(value, 'v', sizeof value);
    stream_batch_builder_reset(b);
    for (int i = 0; i < PER_BATCH; i++, (*next)++) {
        int n = snprintf(key, sizeof key, "key-%010" PRIu64, *next % keys);
        if (stream_batch_builder_append(b, 1732442400000, key, n, value, sizeof value, NULL, 0))
            die("building a batch", "out of memory");
    }
    const uint8_t *p;
    size_t len;
    if (stream_batch_builder_finish(b, &p, &len) != 0)
        die("building a batch", "finish");
    int64_t at;
    char err[256];
    if (stream_log_append(log, (uint8_t *)p, len, &at, err, sizeof err) != 0)
        die("append", err);
    return len;
}

typedef struct cleaner_run {
    stream_log_clean_job *job;
    int rc;
    char err[256];
    double cpu_s;  /* the cleaning thread's CPU time: on a busy machine wall time says less */
    double wait_s; /* its time runnable but waiting for a CPU (schedstat): the machine's load */
    bool background; /* run as the broker's passes: stream_cleaner_thread_background */
    atomic_bool done;
} cleaner_run;

/* The calling thread's time spent runnable but waiting for a CPU, in seconds
 * (the second field of /proc/thread-self/schedstat; -1 when unknown). */
static double run_delay_s(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long on_cpu, waiting;
    int n = f ? fscanf(f, "%llu %llu", &on_cpu, &waiting) : 0;
    if (f)
        fclose(f);
    return n == 2 ? (double)waiting / 1e9 : -1;
}

static void *cleaner_main(void *arg)
{
    cleaner_run *r = arg;
    struct timespec a, b;
    if (r->background)
        (void)stream_cleaner_thread_background();
    double w0 = run_delay_s();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    r->rc = stream_log_clean_run(r->job, r->err, sizeof r->err);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    r->wait_s = run_delay_s() - w0;
    r->cpu_s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    atomic_store(&r->done, true);
    return NULL;
}

static double dd_mb_per_s(const char *dir, long mb)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "dd if=/dev/zero of=%s/ddfile bs=1M count=%ld conv=fdatasync 2>/dev/null", dir, mb);
    double t0 = now_s();
    if (system(cmd) != 0)
        return -1;
    double secs = now_s() - t0;
    snprintf(cmd, sizeof cmd, "%s/ddfile", dir);
    unlink(cmd);
    return (double)mb / secs;
}

/* What one run measured. */
typedef struct run_result {
    double read_ratio;    /* cleaner MiB/s read / dd MiB/s */
    double append_ratio;  /* appends during cleaning / alone */
} run_result;

/* Appends to log for secs seconds; returns records/s. */
static double appends_for(stream_log *log, double secs, uint64_t keys, stream_batch_builder *b)
{
    uint64_t next = 0;
    double t0 = now_s();
    while (now_s() - t0 < secs)
        append_batch(log, &next, keys, b);
    return (double)next / (now_s() - t0);
}

static run_result one_run(const char *base, long mb, uint64_t keys, bool background)
{
    char dir[512], part[600], part2[600];
    snprintf(dir, sizeof dir, "%s/cleaner_bench.XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", strerror(errno));
    snprintf(part, sizeof part, "%s/t-0", dir);
    snprintf(part2, sizeof part2, "%s/t-1", dir);

    stream_log_config cfg;
    stream_log_config_init(&cfg);
    cfg.segment_bytes = 64 << 20;
    cfg.flush_mode = STREAM_FLUSH_NEVER;
    cfg.cleanup_compact = true;
    cfg.cleanup_delete = false;
    stream_log *log;
    char err[256];
    if (stream_log_open(part, &cfg, &log, NULL, err, sizeof err) != 0)
        die("open", err);
    stream_batch_builder b;
    stream_batch_builder_init(&b);

    /* The log: every key ten times over, about mb MiB. */
    uint64_t next = 0;
    int64_t want = (int64_t)mb << 20;
    double t0 = now_s();
    while (stream_log_size(log) < want || next < keys * 10)
        append_batch(log, &next, keys, &b);
    if (stream_log_maybe_roll(log, INT64_C(4102444800000)) != 0 || stream_log_flush(log) != 0)
        die("roll", "failed");
    double fill_s = now_s() - t0;
    double log_mb = (double)stream_log_size(log) / (1 << 20);
    printf("log: %.0f MiB, %" PRIu64 " records, %" PRIu64 " keys (%.0f%% overwritten), "
           "written in %.1f s\n",
           log_mb, next, keys, 100.0 * (double)(next - keys) / (double)next, fill_s);

    stream_log *other;
    if (stream_log_open(part2, &cfg, &other, NULL, err, sizeof err) != 0)
        die("open", err);
    double alone_before = appends_for(other, 2.0, keys, &b);

    /* One cleaning of the closed segments, appends going on beside it. */
    stream_cleaner_opts opts;
    stream_cleaner_opts_init(&opts);
    cleaner_run run = {.background = background};
    if (stream_log_clean_begin(log, INT64_C(4102444800000), &opts, &run.job) != 0 ||
        run.job == NULL)
        die("clean", "nothing to clean");
    pthread_t th;
    t0 = now_s();
    if (pthread_create(&th, NULL, cleaner_main, &run) != 0)
        die("pthread_create", strerror(errno));
    uint64_t onext = 0;
    while (!atomic_load(&run.done))
        append_batch(other, &onext, keys, &b);
    double clean_s = now_s() - t0;
    double beside = (double)onext / clean_s;
    pthread_join(th, NULL);
    double alone_after = appends_for(other, 2.0, keys, &b);
    double alone = (alone_before + alone_after) / 2;
    stream_log_close(other);
    stream_clean_stats st = {0};
    if (stream_log_clean_finish(log, run.job, run.rc, &st, err, sizeof err) != 0)
        die("clean", run.err[0] ? run.err : err);
    double read_mb = (double)st.bytes_read / (1 << 20),
           written_mb = (double)st.bytes_written / (1 << 20);
    printf("cleaning: %.1f s, read %.0f MiB (%.0f MiB/s), wrote %.0f MiB (%.0f MiB/s), "
           "%" PRId64 " records removed\n",
           clean_s, read_mb, read_mb / clean_s, written_mb, written_mb / clean_s,
           st.records_removed);
    printf("cleaner CPU: %.2f s (%.0f MiB read per CPU second), waiting for a CPU %.2f s, "
           "the rest (I/O, sleeps) %.2f s\n",
           run.cpu_s, run.cpu_s > 0 ? read_mb / run.cpu_s : 0.0, run.wait_s,
           clean_s - run.cpu_s - run.wait_s);
    printf("appends: alone %.0f records/s (%.0f before, %.0f after), during cleaning %.0f "
           "records/s (%.0f%%)\n",
           alone, alone_before, alone_after, beside, 100.0 * beside / alone);
    stream_batch_builder_release(&b);
    stream_log_close(log);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    mkdir(dir, 0755);
    double dd = dd_mb_per_s(dir, (long)log_mb > 0 ? (long)log_mb : 1);
    rmdir(dir);
    run_result r = {dd > 0 ? read_mb / clean_s / dd : 0, beside / alone};
    printf("dd: %.0f MiB/s; cleaner read %.0f%% of dd, appends during cleaning %.0f%% of alone\n",
           dd, 100 * r.read_ratio, 100 * r.append_ratio);
    return r;
}

int main(int argc, char **argv)
{
    const char *base = getenv("LOG_BENCH_DIR") ? getenv("LOG_BENCH_DIR") : "/tmp";
    long mb = getenv("CLEANER_BENCH_MB") ? atol(getenv("CLEANER_BENCH_MB")) : 1024;
    uint64_t keys =
        getenv("CLEANER_BENCH_KEYS") ? strtoull(getenv("CLEANER_BENCH_KEYS"), NULL, 10) : 1000000;
    int runs = getenv("CLEANER_BENCH_RUNS") ? atoi(getenv("CLEANER_BENCH_RUNS")) : 3;
    bool background = true;
    int opt;
    while ((opt = getopt(argc, argv, "d:m:k:r:s")) != -1) {
        if (opt == 'd')
            base = optarg;
        else if (opt == 'm')
            mb = atol(optarg);
        else if (opt == 'k')
            keys = strtoull(optarg, NULL, 10);
        else if (opt == 'r')
            runs = atoi(optarg);
        else if (opt == 's')
            background = false;
        else {
            fprintf(stderr, "usage: cleaner_bench [-d DIR] [-m MB] [-k KEYS] [-r RUNS] [-s]\n");
            return 2;
        }
    }
    if (mb <= 0 || keys == 0 || runs <= 0 || runs > 100) {
        fprintf(stderr, "cleaner_bench: -m and -k must be positive, -r 1 to 100\n");
        return 2;
    }
    int nice_now = getpriority(PRIO_PROCESS, 0);
    if (background && nice_now + STREAM_CLEANER_NICE_INCREMENT > 19)
        printf("note: at nice %d the cleaning thread cannot go %d below the appending one "
               "(it stops at 19), so the two share the CPU as with -s\n",
               nice_now, STREAM_CLEANER_NICE_INCREMENT);
    double load0[3] = {0}, load1[3] = {0};
    getloadavg(load0, 3);
    double reads[100], appends[100];
    for (int i = 0; i < runs; i++) {
        printf("-- run %d of %d%s\n", i + 1, runs, background ? "" : " (cleaner at the same priority)");
        run_result r = one_run(base, mb, keys, background);
        reads[i] = r.read_ratio;
        appends[i] = r.append_ratio;
        fflush(stdout);
    }
    getloadavg(load1, 3);
    double mr = bench_median(reads, runs), ma = bench_median(appends, runs);
    printf("medians of %d runs (load average %.1f before, %.1f after, %ld CPUs): cleaner read "
           "%.0f%% of dd (target 50%%: %s), appends during cleaning %.0f%% of alone (target 70%%: "
           "%s)\n",
           runs, load0[0], load1[0], sysconf(_SC_NPROCESSORS_ONLN), 100 * mr,
           mr >= 0.5 ? "met" : "NOT met", 100 * ma, ma >= 0.7 ? "met" : "NOT met");
    return 0;
}
