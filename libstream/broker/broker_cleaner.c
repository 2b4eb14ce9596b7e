/*
 * broker_cleaner.c - the broker's log cleaner: every log.cleaner.backoff.ms
 * it picks the compacted partitions that are due (stream/cleaner.h:
 * stream_log_clean_status_get), highest dirty ratio first, and runs a pass
 * on each, at most log.cleaner.threads at once.
 *
 * A pass has a long middle (reading and rewriting segments) and two short
 * ends that touch the log. The ends run here on the loop thread, which owns
 * every log; the middle runs on libuv's worker pool (uv_queue_work), so the
 * loop keeps serving clients meanwhile, and the worker hands it to a thread
 * of lower CPU and I/O priority (stream_cleaner_thread_background), so that
 * a pass takes a busy machine's spare time rather than the produce path's.
 * At most UV_THREADPOOL_SIZE - 1 (3) passes run at once whatever the
 * setting, so create/delete topics, which use the same pool, always find a
 * worker.
 *
 * A topic deleted while its pass runs: the pass's end finds the topic gone
 * (or another log under its name) and discards the pass. Stopping the
 * broker cancels running passes; the loop's drain waits for them before the
 * store closes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "stream/cleaner.h"
#include "stream/config.h"
#include "stream/error.h"

/* Passes at once at most: one worker of libuv's default four stays free. */
#define CLEANER_MAX_RUNNING 3

struct stream__clean_op {
    uv_work_t work;
    stream_broker *b;
    stream_log *log;               /* the partition when the pass began (compared only) */
    char topic[256];               /* its topic's name, to find it again */
    int32_t partition;             /* and its partition */
    stream_log_clean_job *job;     /* the pass */
    int rc;                        /* what the worker's run returned */
    char err[256];                 /* its message */
    struct stream__clean_op *next; /* in b->clean_ops */
};

void stream__cleaner_init(stream_broker *b, const stream_config *cfg)
{
    int64_t threads = stream_config_int(cfg, STREAM_CONFIG_LOG_CLEANER_THREADS);
    b->cleaner_threads = (int)(threads > CLEANER_MAX_RUNNING ? CLEANER_MAX_RUNNING : threads);
    b->cleaner_backoff_ms = stream_config_int(cfg, STREAM_CONFIG_LOG_CLEANER_BACKOFF_MS);
    stream_cleaner_opts_init(&b->cleaner_opts);
    b->cleaner_opts.dedupe_buffer_bytes =
        stream_config_int(cfg, STREAM_CONFIG_LOG_CLEANER_DEDUPE_BUFFER_SIZE);
    b->cleaner_opts.io_max_bytes_per_second =
        stream_config_int(cfg, STREAM_CONFIG_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND);
    /* Several passes share the I/O budget. */
    if (b->cleaner_opts.io_max_bytes_per_second > 0 && b->cleaner_threads > 1)
        b->cleaner_opts.io_max_bytes_per_second /= b->cleaner_threads;
    uv_timer_init(&b->loop, &b->cleaner_timer);
    b->cleaner_timer.data = b;
}

static bool busy(const stream_broker *b, const stream_log *log)
{
    for (const stream__clean_op *op = b->clean_ops; op; op = op->next)
        if (op->log == log)
            return true;
    return false;
}

static void *pass_main(void *arg)
{
    stream__clean_op *op = arg;
    op->rc = stream_log_clean_run(op->job, op->err, sizeof op->err);
    return NULL;
}

static void *background_pass_main(void *arg)
{
    (void)stream_cleaner_thread_background(); /* a preference: the pass runs either way */
    return pass_main(arg);
}

/* The pass runs on a thread of its own, made a background one (lower CPU
 * and I/O priority: producers and consumers go first), which a worker of
 * the pool could not be made and then given back; the worker waits for it.
 * Without a thread, the worker runs the pass itself at its own priority. */
static void on_work(uv_work_t *w)
{
    stream__clean_op *op = w->data;
    op->err[0] = '\0';
    pthread_t th;
    if (pthread_create(&th, NULL, background_pass_main, op) == 0)
        pthread_join(th, NULL);
    else
        pass_main(op);
}

static void pick(stream_broker *b);

static void on_done(uv_work_t *w, int status)
{
    stream__clean_op *op = w->data;
    stream_broker *b = op->b;
    for (stream__clean_op **pp = &b->clean_ops; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    b->cleaner_running--;
    stream_topic *t = b->store ? stream_store_topic(b->store, op->topic) : NULL;
    if (t == NULL || op->partition >= t->partition_count ||
        t->partitions[op->partition] != op->log) {
        stream_log_clean_abort(op->job); /* the topic went meanwhile */
    } else {
        stream_clean_stats st = {0};
        char err[256] = "";
        int rc = status == UV_ECANCELED ? STREAM_ECLOSED : op->rc;
        rc = stream_log_clean_finish(op->log, op->job, rc, &st, err, sizeof err);
        if (rc != 0 && rc != STREAM_ECLOSED)
            stream__blog(b, STREAM_BROKER_WARN, "%s-%d: cleaning failed: %s", op->topic,
                         (int)op->partition,
                         err[0]       ? err
                         : op->err[0] ? op->err
                                      : stream_strerror(rc));
        else if (st.segments_rewritten > 0)
            stream__blog(b, STREAM_BROKER_INFO,
                         "%s-%d: cleaned %d segments: %lld bytes read, %lld written, %lld records "
                         "removed (%lld tombstones)",
                         op->topic, (int)op->partition, st.segments_rewritten,
                         (long long)st.bytes_read, (long long)st.bytes_written,
                         (long long)st.records_removed, (long long)st.tombstones_removed);
    }
    free(op);
    if (!b->stopping)
        pick(b);
}

/* Starts a pass on one log; false when it had nothing to do. */
static bool start(stream_broker *b, stream_topic *t, int32_t p, int64_t now)
{
    stream_log *log = t->partitions[p];
    stream_log_clean_job *job;
    int rc = stream_log_clean_begin(log, now, &b->cleaner_opts, &job);
    if (rc != 0) {
        stream__blog(b, STREAM_BROKER_WARN, "%s-%d: cannot begin cleaning: %s", t->name, (int)p,
                     stream_strerror(rc));
        return false;
    }
    if (job == NULL)
        return false;
    stream__clean_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        stream_log_clean_finish(log, job, STREAM_ENOMEM, NULL, NULL, 0);
        return false;
    }
    op->b = b;
    op->log = log;
    snprintf(op->topic, sizeof op->topic, "%s", t->name);
    op->partition = p;
    op->job = job;
    op->work.data = op;
    op->next = b->clean_ops;
    b->clean_ops = op;
    b->cleaner_running++;
    if (uv_queue_work(&b->loop, &op->work, on_work, on_done) != 0) {
        on_work(&op->work); /* does not fail on Linux; if it did: here */
        on_done(&op->work, 0);
    }
    return true;
}

/* Starts passes on the due partitions with the highest dirty ratios while
 * threads are free. */
static void pick(stream_broker *b)
{
    int64_t now = (int64_t)stream__broker_now_ms();
    while (b->cleaner_running < b->cleaner_threads) {
        stream_topic *best_t = NULL;
        int32_t best_p = -1;
        int32_t best_ratio = -1;
        size_t ntopics = stream_store_topic_count(b->store);
        for (size_t i = 0; i < ntopics; i++) {
            stream_topic *t = stream_store_topic_at(b->store, i);
            if (!t->log_config.cleanup_compact)
                continue;
            for (int32_t p = 0; p < t->partition_count; p++) {
                if (busy(b, t->partitions[p]))
                    continue;
                stream_log_clean_status cs;
                stream_log_clean_status_get(t->partitions[p], now, &cs);
                /* A pass takes only durable segments. In flush.mode=group
                 * nothing syncs records that no acks=all producer waited
                 * for, so ask a round: a topic written with acks=1 alone
                 * is cleaned too, one sync per log per backoff at most. */
                if (!cs.due)
                    stream_log_request_flush(t->partitions[p]);
                if (cs.due && cs.dirty_ratio_ppm > best_ratio) {
                    best_t = t;
                    best_p = p;
                    best_ratio = cs.dirty_ratio_ppm;
                }
            }
        }
        if (best_t == NULL || !start(b, best_t, best_p, now))
            return;
    }
}

static void on_timer(uv_timer_t *t)
{
    stream_broker *b = t->data;
    if (!b->stopping && b->store != NULL)
        pick(b);
}

void stream__cleaner_start(stream_broker *b)
{
    if (b->cleaner_threads > 0)
        uv_timer_start(&b->cleaner_timer, on_timer, (uint64_t)b->cleaner_backoff_ms,
                       (uint64_t)b->cleaner_backoff_ms);
}

void stream__cleaner_stop(stream_broker *b)
{
    uv_timer_stop(&b->cleaner_timer);
    for (stream__clean_op *op = b->clean_ops; op; op = op->next)
        stream_log_clean_cancel(op->job);
}
