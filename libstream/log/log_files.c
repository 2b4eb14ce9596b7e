/*
 * log_files.c - the open-file budget the logs of a data directory share: an
 * LRU cache of segment descriptors.
 *
 * A partition holds one descriptor for as long as it is open (its active
 * segment; its directory is opened only while a run of *at calls or a sync
 * uses it); every other segment's .log is opened when somebody reads it and
 * stays open afterwards only while the budget has room. The budget counts
 * every descriptor a log holds (directories in use included), so that ten thousand partitions of
 * many segments each fit under an open-file limit of twenty thousand instead of failing with EMFILE
 * somewhere deep inside a fetch.
 *
 * A segment's descriptor is either
 *   - pinned: somebody uses it right now (the log's active segment, a
 *     segment being synced, a slice handed to sendfile, a scan); s->fd is
 *     valid and nobody may close it; or
 *   - cached: open, unpinned, on the LRU list (most recently used first);
 *     the first to be closed when the budget is short; or
 *   - closed: s->fd == -1, reopened from s->path by the next acquire.
 *
 * Acquire and release of an open descriptor cost one uncontended mutex and
 * a list unlink/push: no system call. One mutex for every log: the flusher
 * and the admin threads open and release descriptors too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log_internal.h"
#include "stream/error.h"

struct stream_log_files {
    pthread_mutex_t mu;
    long budget;           /* descriptors the logs may hold at once */
    long open;             /* (mu) descriptors held now: segments, directories in use */
    long lru_len;          /* (mu) of them, cached (evictable) segments */
    stream__segment *head; /* (mu) the most recently released cached segment */
    stream__segment *tail; /* (mu) the least recently released: evicted first */
    uint64_t reopens;      /* (mu) acquires that had to open a closed segment */
    uint64_t evictions;    /* (mu) cached descriptors closed to make room */
};

int stream_log_files_new(long max_open, stream_log_files **out)
{
    *out = NULL;
    if (max_open < 1)
        return STREAM_EINVAL;
    stream_log_files *f = calloc(1, sizeof *f);
    if (f == NULL)
        return STREAM_ENOMEM;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        return STREAM_ENOMEM;
    }
    f->budget = max_open;
    *out = f;
    return 0;
}

void stream_log_files_free(stream_log_files *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void stream_log_files_get_stats(stream_log_files *f, stream_log_files_stats *out)
{
    pthread_mutex_lock(&f->mu);
    out->budget = f->budget;
    out->open = f->open;
    out->cached = f->lru_len;
    out->reopens = f->reopens;
    out->evictions = f->evictions;
    pthread_mutex_unlock(&f->mu);
}

/* ---- the LRU list (mu held) ------------------------------------------------- */

static void lru_remove(stream_log_files *f, stream__segment *s)
{
    if (s->lru_prev != NULL)
        s->lru_prev->lru_next = s->lru_next;
    else
        f->head = s->lru_next;
    if (s->lru_next != NULL)
        s->lru_next->lru_prev = s->lru_prev;
    else
        f->tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
    s->in_lru = false;
    f->lru_len--;
}

static void lru_push(stream_log_files *f, stream__segment *s)
{
    s->lru_prev = NULL;
    s->lru_next = f->head;
    if (f->head != NULL)
        f->head->lru_prev = s;
    else
        f->tail = s;
    f->head = s;
    s->in_lru = true;
    f->lru_len++;
}

/* Closes the least recently used cached descriptor; false when none is. */
static bool evict_one(stream_log_files *f)
{
    stream__segment *s = f->tail;
    if (s == NULL)
        return false;
    lru_remove(f, s);
    close(s->fd);
    s->fd = -1;
    f->open--;
    f->evictions++;
    return true;
}

/* Makes room for `n` more descriptors by closing cached ones; false when
 * what is pinned leaves no room. */
static bool make_room(stream_log_files *f, long n)
{
    while (f->open + n > f->budget)
        if (!evict_one(f))
            return false;
    return true;
}

static void budget_error(stream_log_files *f, const char *what, char *errbuf, size_t errbuf_len)
{
    if (errbuf == NULL || errbuf_len == 0)
        return;
    struct rlimit rl;
    unsigned long long limit =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (unsigned long long)rl.rlim_cur : 0;
    snprintf(errbuf, errbuf_len,
             "cannot open %s: too many open files (the open-file limit RLIMIT_NOFILE is %llu; "
             "the logs hold %ld, all in use, with log.max.open.files at %ld): raise the "
             "open-file limit (ulimit -n, LimitNOFILE=), lower log.max.open.files to leave "
             "room for connections, or use fewer partitions",
             what, limit, f->open, f->budget);
}

/*
 * open(2) inside the budget, mu held: closes cached descriptors first, and
 * one more each time the process as a whole is out of them (EMFILE). The
 * budget bounds what is cached: a descriptor somebody needs now (a new
 * active segment, a read of a closed one while everything open is in use)
 * is opened above it, and cached descriptors go back under it as they are
 * released. Only a process out of descriptors with nothing cached to close
 * is an error (the store refuses creates that would get there).
 */
static int open_counted(stream_log_files *f, const char *path, int flags, char *errbuf,
                        size_t errbuf_len)
{
    (void)make_room(f, 1);
    for (;;) {
        int fd = open(path, flags, 0644);
        if (fd >= 0) {
            f->open++;
            return fd;
        }
        if (errno == EINTR)
            continue;
        if ((errno == EMFILE || errno == ENFILE) && evict_one(f))
            continue;
        int e = errno;
        if (e == EMFILE || e == ENFILE) {
            budget_error(f, path, errbuf, errbuf_len);
            return STREAM_EAGAIN;
        }
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "cannot open %s: %s", path, strerror(e));
        return stream_err_from_errno(e);
    }
}

/* ---- descriptors of logs ------------------------------------------------- */

int stream__files_open_dir(stream_log_files *f, const char *path, char *errbuf, size_t errbuf_len)
{
    return stream__files_open(f, path, O_RDONLY | O_DIRECTORY, errbuf, errbuf_len);
}

int stream__files_open(stream_log_files *f, const char *path, int flags, char *errbuf,
                       size_t errbuf_len)
{
    flags |= O_CLOEXEC;
    if (f == NULL) {
        int fd = open(path, flags, 0644);
        if (fd < 0) {
            int e = errno;
            if (errbuf != NULL && errbuf_len > 0)
                snprintf(errbuf, errbuf_len, "cannot open %s: %s", path, strerror(e));
            return stream_err_from_errno(e);
        }
        return fd;
    }
    pthread_mutex_lock(&f->mu);
    int fd = open_counted(f, path, flags, errbuf, errbuf_len);
    pthread_mutex_unlock(&f->mu);
    return fd;
}

void stream__files_close_dir(stream_log_files *f, int fd)
{
    if (fd < 0)
        return;
    close(fd);
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->open--;
    pthread_mutex_unlock(&f->mu);
}

int stream__seg_open_file(stream__segment *s, stream_log_files *f, const char *path, int flags,
                          char *errbuf, size_t errbuf_len)
{
    if (s->path == NULL && (s->path = strdup(path)) == NULL)
        return STREAM_ENOMEM;
    s->files = f;
    flags |= O_CLOEXEC;
    if (f == NULL) {
        s->fd = open(path, flags, 0644);
        if (s->fd < 0) {
            int e = errno;
            if (errbuf != NULL && errbuf_len > 0)
                snprintf(errbuf, errbuf_len, "cannot open %s: %s", path, strerror(e));
            return stream_err_from_errno(e);
        }
        return 0;
    }
    pthread_mutex_lock(&f->mu);
    int fd = open_counted(f, path, flags, errbuf, errbuf_len);
    if (fd >= 0) {
        s->fd = fd;
        s->pins = 1;
    }
    pthread_mutex_unlock(&f->mu);
    return fd < 0 ? fd : 0;
}

void stream__seg_set_lazy(stream__segment *s, stream_log_files *f, char *path)
{
    s->path = path;
    s->files = f;
}

void stream__seg_adopt(stream__segment *s, stream_log_files *f, const char *path)
{
    char *p = strdup(path);
    if (p == NULL)
        return; /* it keeps its descriptor, uncounted, until its last unref */
    free(s->path);
    s->path = p;
    if (f == NULL || s->files != NULL || s->fd < 0)
        return;
    pthread_mutex_lock(&f->mu);
    s->files = f;
    f->open++;
    if (s->pins == 0)
        lru_push(f, s);
    while (f->open > f->budget && evict_one(f))
        ;
    pthread_mutex_unlock(&f->mu);
}

int stream__seg_acquire(stream__segment *s)
{
    stream_log_files *f = s->files;
    if (f == NULL) {
        if (s->fd >= 0)
            return 0;
        if (s->path == NULL)
            return STREAM_EIO;
        /* A lazily opened segment without a budget: open for good. */
        s->fd = open(s->path, O_RDWR | O_CLOEXEC);
        return s->fd >= 0 ? 0 : stream_err_from_errno(errno);
    }
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    if (s->fd >= 0) {
        if (s->in_lru)
            lru_remove(f, s);
    } else {
        int fd = open_counted(f, s->path, O_RDWR | O_CLOEXEC, NULL, 0);
        if (fd < 0)
            rc = fd;
        else {
            s->fd = fd;
            f->reopens++;
        }
    }
    if (rc == 0)
        s->pins++;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void stream__seg_release(stream__segment *s)
{
    stream_log_files *f = s->files;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    if (--s->pins == 0 && s->fd >= 0) {
        lru_push(f, s);
        /* Pinned descriptors may have pushed the count past the budget
         * (a reopen when nothing was cached): give back what we can. */
        while (f->open > f->budget && evict_one(f))
            ;
    }
    pthread_mutex_unlock(&f->mu);
}

void stream__seg_close_file(stream__segment *s)
{
    stream_log_files *f = s->files;
    if (f == NULL) {
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        return;
    }
    pthread_mutex_lock(&f->mu);
    if (s->in_lru)
        lru_remove(f, s);
    if (s->fd >= 0) {
        close(s->fd);
        f->open--;
    }
    s->fd = -1;
    s->pins = 0;
    pthread_mutex_unlock(&f->mu);
}
