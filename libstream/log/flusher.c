/*
 * flusher.c - durability for partition logs: group commit, the flusher
 * thread, the recovery-point checkpoint.
 *
 * Appends only reach the page cache. A sync round takes a snapshot of what is
 * appended (appended_end, the active segment, the rolled segments still
 * dirty), fdatasyncs each of those files once, and then declares everything
 * below the snapshot durable. While a round runs (`busy`), new requests pile
 * up and the next single round covers all of them: that is the group commit,
 * and why a thousand producers waiting for acks=all cost one fdatasync per
 * round rather than one each.
 *
 * The `busy` slot also serialises the round with truncation and close, which
 * lower the durable offset and rewrite the recovery point: a round that
 * computed its target before a truncation must never publish it after.
 *
 * One stream_flusher thread serves any number of logs: it runs a round for
 * each log that asked (GROUP) or whose period passed (PERIODIC), one log at a
 * time, and never holds its own mutex while syncing, so request_flush never
 * waits on a disk.
 *
 * Lock order: stream_log.mu before stream_flusher.mu. The flusher thread takes
 * a log's mu only with its own released.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/internal.h"
#include "log_internal.h"
#include "stream/error.h"

/* The recovery point is rewritten at most this often (and at close). */
#define RECOVERY_POINT_INTERVAL_MS 1000

struct stream_flusher {
    pthread_t thread;    /* the one flushing thread */
    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t wake; /* work arrived or stop was asked */
    pthread_cond_t idle; /* `current` changed (detach waits on it) */
    stream_log **logs;   /* attached logs */
    int nlogs;
    int cap;
    int next;            /* round-robin start for fairness between logs */
    stream_log *current; /* the log being synced right now, or NULL */
    bool stop;           /* stream_flusher_free was called */
};

int64_t stream__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t stream__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_ts(struct timespec *ts, int64_t mono_ms)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* ---- the checkpoint ---------------------------------------------------------- */

int stream__write_offset_file(stream_log *log, const char *name, int64_t value)
{
    char tmp[4096], path[4096], text[32];
    if (snprintf(path, sizeof path, "%s/%s", log->dir, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", log->dir, name) >= (int)sizeof tmp)
        return STREAM_EINVAL;
    int n = snprintf(text, sizeof text, "%" PRId64 "\n", value);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return stream_err_from_errno(errno);
    int rc = 0;
    ssize_t w;
    do
        w = write(fd, text, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n)
        rc = w < 0 ? stream_err_from_errno(errno) : STREAM_EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = stream_err_from_errno(errno);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = stream_err_from_errno(errno);
    if (rc == 0)
        rc = stream__log_dir_sync(log);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* ---- one sync round ------------------------------------------------------------ */

static void vfail_locked(stream_log *log, int rc, const char *fmt, va_list ap)
{
    if (log->io_error == 0) {
        log->io_error = rc;
        vsnprintf(log->io_error_msg, sizeof log->io_error_msg, fmt, ap);
    }
    log->io_failures++;
}

void stream__log_fail_locked(stream_log *log, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_locked(log, rc, fmt, ap);
    va_end(ap);
}

void stream__log_fail(stream_log *log, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log->mu);
    vfail_locked(log, rc, fmt, ap);
    pthread_mutex_unlock(&log->mu);
    va_end(ap);
}

void stream__log_acquire_busy(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    while (log->busy)
        pthread_cond_wait(&log->cv, &log->mu);
    log->busy = true;
    pthread_mutex_unlock(&log->mu);
}

void stream__log_release_busy(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    log->busy = false;
    pthread_cond_broadcast(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

/* Moves the dirty list into the snapshot (with its references).
 * Called under mu with busy held. */
static void take_snapshot(stream_log *log)
{
    stream__segment **t = log->snap;
    int tcap = log->snap_cap;
    log->snap = log->dirty;
    log->nsnap = log->ndirty;
    log->snap_cap = log->dirty_cap;
    log->dirty = t;
    log->dirty_cap = tcap;
    log->ndirty = 0;
}

/* Puts snap[from..] back at the head of the dirty list, before what rolled
 * during the round (a reopen for the sync found no descriptor), with their
 * references. Called under mu. False when out of memory. */
static bool requeue(stream_log *log, int from)
{
    int n = log->nsnap - from, need = n + log->ndirty;
    if (need > log->dirty_cap) {
        stream__segment **p = realloc(log->dirty, (size_t)need * sizeof *p);
        if (p == NULL)
            return false;
        log->dirty = p;
        log->dirty_cap = need;
    }
    memmove(log->dirty + n, log->dirty, (size_t)log->ndirty * sizeof *log->dirty);
    memcpy(log->dirty, log->snap + from, (size_t)n * sizeof *log->dirty);
    log->ndirty = need;
    log->nsnap = from;
    return true;
}

int stream__log_sync(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    while (log->busy)
        pthread_cond_wait(&log->cv, &log->mu);
    if (log->io_error != 0) {
        int err = log->io_error;
        pthread_mutex_unlock(&log->mu);
        return err;
    }
    int64_t target = log->appended_end;
    if (target <= log->durable && log->ndirty == 0 && !log->dir_dirty) {
        pthread_mutex_unlock(&log->mu);
        return 0; /* an earlier round already covered us */
    }
    log->busy = true;
    take_snapshot(log);
    int64_t from = log->durable, start_ns = stream__mono_ns();
    stream__segment *active = log->active;
    if (active != NULL)
        stream__seg_ref(active);
    bool dir = log->dir_dirty;
    log->dir_dirty = false;
    pthread_mutex_unlock(&log->mu);

    int rc = 0;
    const char *what = NULL; /* the call that failed */
    int64_t what_base = -1;  /* its segment */
    int what_errno = 0;      /* its errno, for strerror (0: rc says it) */
    int requeue_from = -1;   /* snap[requeue_from..] found no descriptor: back to dirty */
    /* Rolled segments first: their data and their (already written)
     * indexes, so that a recovery point past them can trust their files.
     * They wait unpinned (roll), so each is pinned for its sync, reopened
     * when the budget closed it: fdatasync on a new descriptor writes back
     * the file's dirty pages all the same, and a writeback error nobody
     * has seen yet is reported to it (Linux >= 4.16, errseq). */
    for (int i = 0; i < log->nsnap && rc == 0; i++) {
        stream__segment *s = log->snap[i];
        what_base = s->base_offset;
        int prc = stream__seg_acquire(s);
        if (prc == STREAM_ENOENT)
            continue; /* cut away (truncation) since it rolled: nothing to keep */
        if (prc != 0) {
            rc = prc;
            what = "reopening for its sync segment";
            if (prc == STREAM_EAGAIN)
                requeue_from = i; /* out of descriptors: a later round */
            break;
        }
        if (fdatasync(s->fd) != 0) {
            what_errno = errno;
            rc = stream_err_from_errno(errno);
            what = "fdatasync of segment";
        } else if ((rc = stream__seg_sync_indexes(log->files, log->dir, s->base_offset)) != 0) {
            what = "fdatasync of the index files of segment";
        }
        stream__seg_release(s);
    }
    /* The active segment is the log's pinned one, unless it rolled since
     * the snapshot: pinned here too, for the same reason. */
    if (rc == 0 && active != NULL) {
        what_base = active->base_offset;
        if ((rc = stream__seg_acquire(active)) != 0) {
            what = "reopening for its sync segment";
            if (rc == STREAM_EAGAIN)
                requeue_from = log->nsnap;
        } else {
            if (fdatasync(active->fd) != 0) {
                what_errno = errno;
                rc = stream_err_from_errno(errno);
                what = "fdatasync of segment";
            }
            stream__seg_release(active);
        }
    }
    if (rc == 0 && dir && (rc = stream__log_dir_sync(log)) != 0) {
        what = "fsync of the directory";
        what_base = -1;
    }

    bool advanced = false;
    stream_durable_cb cb = NULL;
    int64_t cb_offset = 0;
    void *arg = NULL;
    int64_t rp = target;
    pthread_mutex_lock(&log->mu);
    log->sync_count++;
    /* Segments rolled during this round have index files not yet synced:
     * the recovery point stays in (or before) them, so that recovery
     * rescans them rather than trusting their indexes. */
    for (int i = 0; i < log->ndirty; i++)
        if (log->dirty[i]->base_offset < rp)
            rp = log->dirty[i]->base_offset;
    if (requeue_from >= 0 && requeue(log, requeue_from)) {
        /* No descriptor for a sync is not an I/O error: nothing was lost
         * and nothing is claimed; the next round (the next append's or
         * waiter's request) tries again. */
        log->dir_dirty |= dir;
    } else if (rc != 0) {
        /* fsync errors are not retryable on Linux (the dirty pages may be
         * gone and the error cleared): the log stops accepting appends and
         * never claims more; stream_log_recover cuts it back to what the
         * last good round made durable. The callback tells the owner. */
        const char *why = what_errno ? strerror(what_errno) : stream_strerror(rc);
        if (what_base >= 0)
            stream__log_fail_locked(log, rc, "%s %020" PRId64 " failed: %s", what, what_base, why);
        else
            stream__log_fail_locked(log, rc, "%s failed: %s", what, why);
        cb = log->durable_cb;
        arg = log->durable_arg;
        cb_offset = log->durable;
    } else if (target > log->durable) {
        unsigned i = log->nrounds++ % STREAM__SYNC_ROUNDS;
        log->rounds[i].from = from;
        log->rounds[i].target = target;
        log->rounds[i].start_ns = start_ns;
        log->rounds[i].end_ns = stream__mono_ns();
        log->durable = target;
        advanced = true;
        cb = log->durable_cb;
        arg = log->durable_arg;
        cb_offset = target;
    }
    pthread_cond_broadcast(&log->cv); /* wake waiters now; busy is still ours */
    pthread_mutex_unlock(&log->mu);

    for (int i = 0; i < log->nsnap; i++)
        stream__seg_unref(log->snap[i]);
    log->nsnap = 0;
    stream__seg_unref(active);

    /* Still holding busy: callbacks come in durable order, and no truncation
     * can slip between the target and the checkpoint. */
    if (cb != NULL)
        cb(log, cb_offset, arg);
    if (advanced && rp > log->rp_written &&
        stream__mono_ms() - log->rp_written_ms >= RECOVERY_POINT_INTERVAL_MS) {
        /* A failed checkpoint only means a longer scan after a crash. */
        if (stream__write_offset_file(log, "recovery-point", rp) == 0)
            log->rp_written = rp;
        log->rp_written_ms = stream__mono_ms();
    }
    stream__log_release_busy(log);
    return rc;
}

/* ---- public durability calls --------------------------------------------------- */

int64_t stream_log_durable_offset(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t d = log->durable;
    pthread_mutex_unlock(&log->mu);
    return d;
}

bool stream_log_sync_round(stream_log *log, int64_t offset, int64_t *start_ns, int64_t *end_ns)
{
    bool found = false;
    pthread_mutex_lock(&log->mu);
    unsigned n = log->nrounds < STREAM__SYNC_ROUNDS ? log->nrounds : STREAM__SYNC_ROUNDS;
    for (unsigned k = 0; k < n && !found; k++) {
        unsigned i = (log->nrounds - n + k) % STREAM__SYNC_ROUNDS; /* oldest first */
        if (offset > log->rounds[i].from && offset <= log->rounds[i].target) {
            *start_ns = log->rounds[i].start_ns;
            *end_ns = log->rounds[i].end_ns;
            found = true;
        }
    }
    pthread_mutex_unlock(&log->mu);
    return found;
}

bool stream_log_last_round(stream_log *log, int64_t *from, int64_t *target, int64_t *start_ns,
                           int64_t *end_ns)
{
    pthread_mutex_lock(&log->mu);
    bool found = log->nrounds > 0;
    if (found) {
        unsigned i = (log->nrounds - 1) % STREAM__SYNC_ROUNDS;
        *from = log->rounds[i].from;
        *target = log->rounds[i].target;
        *start_ns = log->rounds[i].start_ns;
        *end_ns = log->rounds[i].end_ns;
    }
    pthread_mutex_unlock(&log->mu);
    return found;
}

uint64_t stream_log_sync_count(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t n = log->sync_count;
    pthread_mutex_unlock(&log->mu);
    return n;
}

int stream_log_flush(stream_log *log)
{
    return stream__log_sync(log);
}

void stream_log_set_durable_cb(stream_log *log, stream_durable_cb cb, void *arg)
{
    pthread_mutex_lock(&log->mu);
    log->durable_cb = cb;
    log->durable_arg = arg;
    pthread_mutex_unlock(&log->mu);
}

/* Marks `log` as wanting a round; called with log->mu held (lock order). */
static void request_locked(stream_log *log)
{
    stream_flusher *f = log->flusher;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    if (!log->flush_requested) {
        log->flush_requested = true;
        pthread_cond_signal(&f->wake);
    }
    pthread_mutex_unlock(&f->mu);
}

void stream_log_request_flush(stream_log *log)
{
    if (atomic_load(&log->flush_mode) != STREAM_FLUSH_GROUP)
        return;
    pthread_mutex_lock(&log->mu);
    if (log->appended_end > log->durable)
        request_locked(log);
    pthread_mutex_unlock(&log->mu);
}

int stream_log_wait_durable(stream_log *log, int64_t offset, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : stream__mono_ms() + timeout_ms;
    bool group = atomic_load(&log->flush_mode) == STREAM_FLUSH_GROUP;
    pthread_mutex_lock(&log->mu);
    if (log->durable >= offset) {
        pthread_mutex_unlock(&log->mu);
        return 0;
    }
    bool self = group && log->flusher == NULL;
    if (group)
        request_locked(log);
    pthread_mutex_unlock(&log->mu);

    /* No flusher to ask: the waiter runs the round itself. Concurrent
     * waiters still coalesce on `busy`. */
    if (self) {
        int rc = stream__log_sync(log);
        if (rc != 0)
            return rc;
    }

    int rc = 0;
    pthread_mutex_lock(&log->mu);
    while (log->durable < offset && log->io_error == 0) {
        if (deadline < 0) {
            pthread_cond_wait(&log->cv, &log->mu);
            continue;
        }
        struct timespec ts;
        deadline_ts(&ts, deadline);
        if (pthread_cond_timedwait(&log->cv, &log->mu, &ts) == ETIMEDOUT && log->durable < offset) {
            rc = STREAM_ETIMEDOUT;
            break;
        }
    }
    if (rc == 0 && log->durable < offset)
        rc = log->io_error;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* ---- the flusher thread -------------------------------------------------------- */

/* Picks the next log due for a round, or NULL; *wait_until gets the earliest
 * periodic deadline (-1 for none). Called under f->mu. */
static stream_log *pick(stream_flusher *f, int64_t now, int64_t *wait_until)
{
    *wait_until = -1;
    for (int k = 0; k < f->nlogs; k++) {
        int i = (f->next + k) % f->nlogs;
        stream_log *log = f->logs[i];
        bool due = log->flush_requested;
        if (!due && atomic_load(&log->flush_mode) == STREAM_FLUSH_PERIODIC) {
            if (now >= log->next_periodic_ms)
                due = true;
            else if (*wait_until < 0 || log->next_periodic_ms < *wait_until)
                *wait_until = log->next_periodic_ms;
        }
        if (due) {
            log->flush_requested = false;
            if (atomic_load(&log->flush_mode) == STREAM_FLUSH_PERIODIC)
                log->next_periodic_ms = now + atomic_load(&log->flush_ms);
            f->next = (i + 1) % f->nlogs;
            return log;
        }
    }
    return NULL;
}

static void *flusher_main(void *arg)
{
    stream_flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        int64_t wait_until;
        stream_log *log = pick(f, stream__mono_ms(), &wait_until);
        if (log != NULL) {
            f->current = log;
            pthread_mutex_unlock(&f->mu);
            /* Errors latch in the log (io_error) where waiters see them. */
            (void)stream__log_sync(log);
            pthread_mutex_lock(&f->mu);
            f->current = NULL;
            pthread_cond_broadcast(&f->idle);
            continue;
        }
        if (wait_until < 0) {
            pthread_cond_wait(&f->wake, &f->mu);
        } else {
            struct timespec ts;
            deadline_ts(&ts, wait_until);
            pthread_cond_timedwait(&f->wake, &f->mu, &ts);
        }
    }
    /* A last round for every log still attached, except NEVER ones: their
     * owners flush at close. */
    for (int i = 0; i < f->nlogs; i++) {
        stream_log *log = f->logs[i];
        if (atomic_load(&log->flush_mode) == STREAM_FLUSH_NEVER)
            continue;
        f->current = log;
        pthread_mutex_unlock(&f->mu);
        (void)stream__log_sync(log);
        pthread_mutex_lock(&f->mu);
        f->current = NULL;
        pthread_cond_broadcast(&f->idle);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static int init_mono_cond(pthread_cond_t *c)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return STREAM_ENOMEM;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc == 0 ? 0 : STREAM_ENOMEM;
}

int stream__init_mono_cond(pthread_cond_t *c)
{
    return init_mono_cond(c);
}

int stream_flusher_new(stream_flusher **out)
{
    *out = NULL;
    stream_flusher *f = calloc(1, sizeof *f);
    if (f == NULL)
        return STREAM_ENOMEM;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        return STREAM_ENOMEM;
    }
    if (init_mono_cond(&f->wake) != 0) {
        pthread_mutex_destroy(&f->mu);
        free(f);
        return STREAM_ENOMEM;
    }
    if (pthread_cond_init(&f->idle, NULL) != 0) {
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->mu);
        free(f);
        return STREAM_ENOMEM;
    }
    if (pthread_create(&f->thread, NULL, flusher_main, f) != 0) {
        pthread_cond_destroy(&f->idle);
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->mu);
        free(f);
        return STREAM_ENOMEM;
    }
    *out = f;
    return 0;
}

void stream_flusher_free(stream_flusher *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    /* Logs still attached forget this flusher (their owners must not be
     * calling request_flush concurrently, see log.h). */
    for (int i = 0; i < f->nlogs; i++) {
        stream_log *log = f->logs[i];
        pthread_mutex_lock(&log->mu);
        log->flusher = NULL;
        pthread_mutex_unlock(&log->mu);
    }
    free(f->logs);
    pthread_cond_destroy(&f->idle);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int stream_flusher_attach(stream_flusher *f, stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    if (log->flusher != NULL) {
        int rc = log->flusher == f ? 0 : STREAM_EINVAL;
        pthread_mutex_unlock(&log->mu);
        return rc;
    }
    pthread_mutex_lock(&f->mu);
    if (f->nlogs == f->cap) {
        int ncap = f->cap ? f->cap * 2 : 8;
        stream_log **p = realloc(f->logs, (size_t)ncap * sizeof *p);
        if (p == NULL) {
            pthread_mutex_unlock(&f->mu);
            pthread_mutex_unlock(&log->mu);
            return STREAM_ENOMEM;
        }
        f->logs = p;
        f->cap = ncap;
    }
    f->logs[f->nlogs++] = log;
    log->flush_requested =
        log->appended_end > log->durable && atomic_load(&log->flush_mode) == STREAM_FLUSH_GROUP;
    log->next_periodic_ms = stream__mono_ms() + atomic_load(&log->flush_ms);
    log->flusher = f;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_unlock(&log->mu);
    return 0;
}

void stream_flusher_detach(stream_flusher *f, stream_log *log)
{
    if (f == NULL || log == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    bool found = false;
    for (int i = 0; i < f->nlogs; i++) {
        if (f->logs[i] == log) {
            f->logs[i] = f->logs[--f->nlogs];
            found = true;
            break;
        }
    }
    if (f->nlogs > 0)
        f->next %= f->nlogs;
    else
        f->next = 0;
    while (f->current == log)
        pthread_cond_wait(&f->idle, &f->mu);
    pthread_mutex_unlock(&f->mu);
    if (!found)
        return;
    pthread_mutex_lock(&log->mu);
    log->flusher = NULL;
    log->flush_requested = false;
    pthread_mutex_unlock(&log->mu);
}
