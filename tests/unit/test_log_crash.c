/*
 * test_log_crash.c - nothing reported durable is lost when the process dies.
 *
 * Round after round, a forked child opens the same log directory, attaches a
 * flusher and appends batches with group commit (requesting a flush after
 * each, sometimes waiting for it, as a broker with acks=all would). Its
 * durable callback, on the flusher thread, writes "offset round index crc"
 * for every batch that just became durable to a pipe. The parent kills the
 * child with SIGKILL after a random delay (the seed is printed; set
 * STREAM_TEST_SEED to replay), reopens the log, and checks that every batch
 * ever reported durable is there, byte for byte as the child built it, and
 * that everything the log serves passes stream_batch_check with contiguous
 * offsets. Batches are built deterministically from (round, index), so the
 * parent can rebuild exactly what the child wrote.
 *
 * A SIGKILL keeps the page cache, so this exercises torn writes, recovery
 * after a kill mid-append, mid-roll, mid-checkpoint and mid-recovery, and the
 * durable offset's promises; it cannot simulate a power cut.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

#define ROUNDS 24

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* The batch for (round, index): same bytes every time it is built. */
static int build(stream_batch_builder *b, int round, int index, const uint8_t **p, size_t *len)
{
    stream_batch_builder_reset(b);
    uint32_t h = mix((uint32_t)round * 1000003U + (uint32_t)index);
    int n = 1 + (int)(h % 16);
    for (int i = 0; i < n; i++) {
        char value[128];
        int vl = snprintf(value, sizeof value, "round %d batch %d record %d %08x %.*s", round,
                          index, i, mix(h + (uint32_t)i), (int)(mix(h ^ (uint32_t)i) % 48),
                          "################################################");
        int64_t ts = 1700000000000LL + (int64_t)round * 1000000 + index;
        int rc = stream_batch_builder_append(b, ts, &value[6], 3, value, vl, NULL, 0);
        if (rc != 0)
            return rc;
    }
    return stream_batch_builder_finish(b, p, len);
}

static void log_config(stream_log_config *cfg)
{
    stream_log_config_init(cfg);
    cfg->segment_bytes = 64 * 1024;
    cfg->index_interval_bytes = 512;
}

/* ---- the child ------------------------------------------------------------------ */

typedef struct appended {
    int64_t base;
    int64_t end; /* offset after the batch */
    uint32_t crc;
    int index;
} appended;

typedef struct child_state {
    pthread_mutex_t mu;
    appended *list; /* every batch appended, in order */
    int n;
    int cap;
    int reported; /* leading entries already written to the pipe */
    int fd;       /* the pipe */
    int round;
} child_state;

static void on_durable(stream_log *log, int64_t durable, void *arg)
{
    (void)log;
    child_state *c = arg;
    pthread_mutex_lock(&c->mu);
    char line[128];
    while (c->reported < c->n && c->list[c->reported].end <= durable) {
        const appended *a = &c->list[c->reported];
        int len = snprintf(line, sizeof line, "%" PRId64 " %d %d %08x\n", a->base, c->round,
                           a->index, a->crc);
        if (write(c->fd, line, (size_t)len) != len)
            _exit(5);
        c->reported++;
    }
    pthread_mutex_unlock(&c->mu);
}

static void child_main(const char *dir, int round, int fd, unsigned seed)
{
    stream_log_config cfg;
    log_config(&cfg);
    stream_log *log;
    char err[256];
    if (stream_log_open(dir, &cfg, &log, NULL, err, sizeof err) != 0)
        _exit(2);
    static child_state c = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, -1, 0};
    c.fd = fd;
    c.round = round;
    stream_log_set_durable_cb(log, on_durable, &c);
    stream_flusher *fl;
    if (stream_flusher_new(&fl) != 0 || stream_flusher_attach(fl, log) != 0)
        _exit(3);
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    uint8_t *copy = NULL;
    srand(seed);
    for (int i = 0;; i++) {
        const uint8_t *p;
        size_t len;
        if (build(&b, round, i, &p, &len) != 0)
            _exit(4);
        copy = realloc(copy, len);
        memcpy(copy, p, len);
        int64_t base;
        if (stream_log_append(log, copy, len, &base, err, sizeof err) != 0)
            _exit(6);
        stream_batch_info info;
        stream_batch_header_decode(copy, len, &info);
        pthread_mutex_lock(&c.mu);
        if (c.n == c.cap) {
            c.cap = c.cap ? c.cap * 2 : 1024;
            c.list = realloc(c.list, (size_t)c.cap * sizeof *c.list);
        }
        c.list[c.n++] = (appended){base, base + info.last_offset_delta + 1, info.crc, i};
        pthread_mutex_unlock(&c.mu);
        stream_log_request_flush(log);
        if (rand() % 4 == 0 &&
            stream_log_wait_durable(log, base + info.last_offset_delta + 1, 5000) != 0)
            _exit(7);
        usleep((useconds_t)(100 + rand() % 600));
    }
}

/* ---- the parent ------------------------------------------------------------------ */

typedef struct reported {
    int64_t base;
    int round;
    int index;
    uint32_t crc;
} reported;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Reads lines from fd into the report list until deadline (or EOF when
 * deadline < 0). Keeps a partial last line in `partial` for later. */
static void collect(int fd, int64_t deadline, char *partial, size_t *plen, reported **list, int *n,
                    int *cap)
{
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            int64_t left = deadline - mono_ms();
            if (left <= 0)
                return;
            timeout = (int)left;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, timeout);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return;
        ssize_t r = read(fd, partial + *plen, 4095 - *plen);
        if (r <= 0)
            return; /* EOF: the child is gone */
        *plen += (size_t)r;
        partial[*plen] = '\0';
        char *line = partial, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            reported rp;
            long long base;
            unsigned crc;
            if (sscanf(line, "%lld %d %d %x", &base, &rp.round, &rp.index, &crc) == 4) {
                rp.base = base;
                rp.crc = crc;
                if (*n == *cap) {
                    *cap = *cap ? *cap * 2 : 4096;
                    *list = realloc(*list, (size_t)*cap * sizeof **list);
                    assert_non_null(*list);
                }
                (*list)[(*n)++] = rp;
            }
            line = nl + 1;
        }
        *plen = strlen(line);
        memmove(partial, line, *plen + 1);
    }
}

/* Everything served is checked and contiguous; returns the end offset. */
static int64_t check_all_served(stream_log *log)
{
    int64_t off = stream_log_start_offset(log), end = stream_log_end_offset(log);
    stream_buf buf;
    stream_buf_init(&buf);
    while (off < end) {
        stream_buf_reset(&buf);
        int rc = stream_log_read_copy(log, off, 256 * 1024, &buf);
        if (rc != 0)
            fail_msg("read at %" PRId64 ": %s", off, stream_strerror(rc));
        for (size_t at = 0; at < buf.len;) {
            stream_batch_info info;
            assert_int_equal(stream_batch_check(buf.data + at, buf.len - at, &info, NULL, 0), 0);
            assert_int_equal(info.base_offset, off);
            off = info.base_offset + info.last_offset_delta + 1;
            at += info.size;
        }
    }
    stream_buf_release(&buf);
    return off;
}

static void check_reported(stream_log *log, const reported *list, int n)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    stream_buf buf;
    stream_buf_init(&buf);
    for (int i = 0; i < n; i++) {
        const reported *r = &list[i];
        const uint8_t *want;
        size_t len;
        assert_int_equal(build(&b, r->round, r->index, &want, &len), 0);
        stream_buf_reset(&buf);
        int rc = stream_log_read_copy(log, r->base, 1, &buf);
        if (rc != 0)
            fail_msg("durable batch at %" PRId64 " (round %d #%d): %s", r->base, r->round, r->index,
                     stream_strerror(rc));
        stream_batch_info info;
        assert_int_equal(stream_batch_check(buf.data, buf.len, &info, NULL, 0), 0);
        if (info.base_offset != r->base || info.size != len || info.crc != r->crc)
            fail_msg("durable batch at %" PRId64 " (round %d #%d) replaced", r->base, r->round,
                     r->index);
        /* Byte for byte, once the offset the log stamped is stamped here. */
        assert_memory_equal(buf.data + 8, want + 8, len - 8);
    }
    stream_buf_release(&buf);
    stream_batch_builder_release(&b);
}

static void test_reported_durable_batches_survive_kill_9(void **state)
{
    (void)state;
    const char *env = getenv("STREAM_TEST_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    print_message("crash test seed %u (STREAM_TEST_SEED to replay)\n", seed);
    srand(seed);
    char tmp[] = "/tmp/test_log_crash.XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/topic-0", tmp);
    reported *list = NULL;
    int n = 0, cap = 0;
    int64_t max_end = 0;
    int truncations = 0, dirty_opens = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        unsigned child_seed = (unsigned)rand();
        /* Mostly short lives; some long enough for the flusher to write
         * the recovery point (once a second). */
        int delay = rand() % 5 == 0 ? 1000 + rand() % 500 : 20 + rand() % 380;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, round, fds[1], child_seed);
            _exit(0);
        }
        close(fds[1]);
        char partial[4096];
        size_t plen = 0;
        collect(fds[0], mono_ms() + delay, partial, &plen, &list, &n, &cap);
        kill(pid, SIGKILL);
        collect(fds[0], -1, partial, &plen, &list, &n, &cap); /* what was in flight */
        close(fds[0]);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            fail_msg("round %d: child ended by itself (status 0x%x)", round, st);

        stream_log_config cfg;
        log_config(&cfg);
        stream_log *log;
        stream_log_recovery rec;
        char err[256] = "";
        int rc = stream_log_open(dir, &cfg, &log, &rec, err, sizeof err);
        if (rc != 0)
            fail_msg("round %d: reopen: %s: %s", round, stream_strerror(rc), err);
        dirty_opens += !rec.clean;
        truncations += rec.truncated_bytes > 0;
        int64_t end = check_all_served(log);
        check_reported(log, list, n);
        for (int i = 0; i < n; i++)
            if (list[i].base >= max_end)
                max_end = list[i].base + 1;
        assert_true(end >= max_end);
        stream_log_close(log);
    }
    print_message("%d rounds, %d batches reported durable, %d unclean opens, %d torn tails "
                  "cut\n",
                  ROUNDS, n, dirty_opens, truncations);
    assert_true(n > 0);
    free(list);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reported_durable_batches_survive_kill_9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
