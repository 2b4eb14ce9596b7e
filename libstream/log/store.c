/*
 * store.c - the data directory: lock, topic metadata, partition logs, and the
 * clean-up that makes every interrupted create or delete look atomic.
 *
 * The metadata file is the single commit point of each operation (see the
 * layout and ordering in store.h): create makes the partition directories and
 * only then renames a complete metadata file into place; delete unlinks the
 * metadata first and only then touches the directories. So whatever a crash
 * interrupts, the next open sees either a whole topic or none, plus debris it
 * can recognise by name and remove: partition directories with no topic, the
 * .deleted/ directory, temp files.
 *
 * File system calls work relative to one directory descriptor (openat and
 * friends), which keeps paths short and makes the lock, the scan and the
 * fsyncs all talk about the same directory even if it is renamed meanwhile.
 * Only stream_log_open takes a path, built from the canonical directory name.
 *
 * Topics are kept in an array of pointers sorted by name: lookups are binary
 * searches, listing is free, and a stream_topic never moves in memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stream/error.h"
#include "stream/store.h"
#include "base/internal.h"

#define META_SUFFIX   ".topic"
#define TRASH_DIR     ".deleted"
#define LOCK_FILE     ".lock"
#define META_VERSION  1
#define META_FILE_MAX (1u << 20) /* metadata is a few lines; refuse anything huge */
#define RM_DEPTH_MAX  8          /* partition dirs are flat; .deleted/ adds one level */

struct stream_store {
    char *dir;               /* canonical path of the data directory */
    int dir_fd;              /* the directory, for *at() calls and fsync */
    int lock_fd;             /* .lock, flock()ed while the store is open */
    stream_config *broker;   /* copy of the broker config: topic defaults */
    stream_log_files *files; /* the open-file budget every log here shares */
    stream_topic **topics;   /* sorted by name */
    size_t topic_count;
    size_t topic_cap;
    char **notes; /* what open cleaned up, for the broker's log */
    size_t note_count;
    char **busy; /* names with a create or delete job between begin and finish */
    size_t busy_count;
    long pending_partitions; /* partitions of the creates among them */

    /* The trash remover: a thread that deletes what was moved into
     * .deleted/, one entry of trash_q at a time (names relative to dir_fd).
     * Started on the first entry; stopped (between two partitions) and
     * joined at close: whatever is left goes at the next open. */
    pthread_mutex_t trash_mu;
    pthread_cond_t trash_cv;
    char **trash_q; /* under trash_mu: entries to remove, oldest first */
    size_t trash_len, trash_cap;
    unsigned trash_seq;     /* under trash_mu: the next .deleted/<n> to try */
    bool trash_started;     /* the thread runs (owner thread only) */
    bool trash_busy;        /* under trash_mu: the thread is removing an entry */
    atomic_bool trash_stop; /* close: stop at the next partition */
    pthread_t trash_thread;
};

/* One create, delete or add_partitions between its begin and its finish
 * (see store.h). */
struct stream_store_job {
    stream_store *s;
    bool create;
    bool grow;                     /* add_partitions (create is false) */
    stream_topic *t;               /* create: the topic being made (not in the store);
                                      delete: the topic taken out of it;
                                      grow: the topic, in the store and in use */
    int32_t from, to;              /* grow: partitions [from, to) are new */
    stream_log **logs;             /* grow: `to` slots; the run fills [from, to) */
    stream_log_recovery *recovery; /* grow: `to` entries for the topic */
    stream_config *overrides;      /* grow: a copy for the metadata file */
    stream_log_config log_config;  /* grow: the new logs' settings */
    bool committed;                /* run reached the commit point (create: metadata in
                                      place; delete: metadata gone) */
    bool logs_gone;                /* delete: run discarded the logs */
    char trash[32];                /* the .deleted/<n> run filled, or "" */
    int rc;                        /* run's result */
    char err[512];                 /* its message */
};

static long files_budget(const stream_store *s);

static void note(stream_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Notes are best effort: out of memory loses a note, never an operation. */
static void note(stream_store *s, const char *fmt, ...)
{
    char **nn = realloc(s->notes, (s->note_count + 1) * sizeof *nn);
    if (nn == NULL)
        return;
    s->notes = nn;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) >= 0)
        s->notes[s->note_count++] = msg;
    va_end(ap);
}

/* ---- names ---------------------------------------------------------------- */

/* At most this many bytes of a bad name are quoted in a message. */
#define QUOTE_MAX 64

/* Copies peer text into q for quoting: at most QUOTE_MAX bytes, anything
 * unprintable as '?', so a message never carries control bytes to a terminal. */
static const char *quote(char q[QUOTE_MAX + 4], const char *p, size_t len)
{
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        q[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (n < len) {
        memcpy(q + n, "...", 3);
        n += 3;
    }
    q[n] = '\0';
    return q;
}

/*
 * One grammar for the wire and the disk, and the store owns it: a topic
 * name becomes a directory name here, and the protocol (proto.c), the
 * broker and the clients check names from outside with this same function.
 */
int stream_topic_name_check(const char *name, size_t len, char *errbuf, size_t errbuf_len)
{
    char q[QUOTE_MAX + 4];
    bool dots = (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
    if (len == 0) {
        stream__errf(errbuf, errbuf_len, "topic name is empty");
        return STREAM_EBADNAME;
    }
    if (len > STREAM_TOPIC_NAME_MAX) {
        stream__errf(errbuf, errbuf_len, "topic name '%s' is %zu bytes long (at most %d)",
                     quote(q, name, len), len, STREAM_TOPIC_NAME_MAX);
        return STREAM_EBADNAME;
    }
    if (dots) {
        stream__errf(errbuf, errbuf_len, "'.' and '..' are not valid topic names");
        return STREAM_EBADNAME;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (ok)
            continue;
        if (c > 0x20 && c < 0x7f)
            stream__errf(errbuf, errbuf_len,
                         "topic name '%s' contains '%c' (allowed: letters, digits, '.', '_', '-')",
                         quote(q, name, len), c);
        else
            stream__errf(
                errbuf, errbuf_len,
                "topic name '%s' has byte 0x%02x at %zu (allowed: letters, digits, '.', '_', "
                "'-')",
                quote(q, name, len), c, i);
        return STREAM_EBADNAME;
    }
    return 0;
}

bool stream_topic_is_internal(const char *name, size_t len)
{
    return len >= 2 && name[0] == '_' && name[1] == '_';
}

int stream_topic_name_valid(const char *name, char *errbuf, size_t errbuf_len)
{
    return stream_topic_name_check(name ? name : "", name ? strlen(name) : 0, errbuf, errbuf_len);
}

static bool is_internal_name(const char *name)
{
    return name[0] == '_' && name[1] == '_';
}

/*
 * Splits a directory name "<topic>-<n>" as create makes it: n in decimal
 * without leading zeros, below STREAM_CONFIG_PARTITIONS_MAX, topic valid.
 * `topic` gets the topic name (room for STREAM_TOPIC_NAME_MAX + 1). Anything
 * else is not ours and is left alone.
 */
static bool parse_partition_dir(const char *name, size_t len, char *topic, int32_t *n)
{
    const char *dash = NULL;
    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] == '-') {
            dash = name + i - 1;
            break;
        }
    }
    if (dash == NULL || dash == name)
        return false;
    const char *d = dash + 1;
    size_t nd = len - (size_t)(d - name);
    if (nd == 0 || nd > 4 || (nd > 1 && d[0] == '0'))
        return false;
    int32_t v = 0;
    for (size_t i = 0; i < nd; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        v = v * 10 + (d[i] - '0');
    }
    size_t tn = (size_t)(dash - name);
    if (tn > STREAM_TOPIC_NAME_MAX)
        return false;
    memcpy(topic, name, tn);
    topic[tn] = '\0';
    if (stream_topic_name_valid(topic, NULL, 0) < 0)
        return false;
    *n = v;
    return true;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* ---- file system helpers ---------------------------------------------------- */

static int fsync_dir(int dir_fd)
{
    /* Some file systems refuse fsync on directories; nothing more can be done. */
    if (fsync(dir_fd) < 0 && errno != EINVAL && errno != EROFS)
        return -errno;
    return 0;
}

/* Removes `name` under dir_fd, recursively; never follows symlinks. 0 or
 * -errno; a missing entry is success. With `stop` set (the trash thread at
 * close) it returns -EINTR between two entries, leaving the rest. */
static int rm_rf_at(int dir_fd, const char *name, int depth, const atomic_bool *stop)
{
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (depth >= RM_DEPTH_MAX)
        return -ELOOP;
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* Collecting first would cost memory; removing while reading is fine on
     * Linux, and any entry readdir skips is caught by the rmdir failing. */
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (stop != NULL && atomic_load(stop)) {
            closedir(d);
            return -EINTR;
        }
        int r = rm_rf_at(fd, de->d_name, depth + 1, stop);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

/* mkdir -p. 0 or -errno. */
static int mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (p == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* Reads the whole of `name` under dir_fd into a NUL-terminated heap buffer. */
static int read_file_at(int dir_fd, const char *name, char **out, size_t *len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    char *buf = malloc(META_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t n = 0;
    int rc = 0;
    while (n <= META_FILE_MAX) {
        ssize_t r = read(fd, buf + n, META_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > META_FILE_MAX)
        rc = -EFBIG;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the trash ------------------------------------------------------------------ */

/* Makes a new, empty .deleted/<n> and puts its name (under dir_fd) in out.
 * Any thread. 0 or -errno. */
static int trash_dir_new(stream_store *s, char out[32])
{
    for (int tries = 0; tries < 1000; tries++) {
        if (mkdirat(s->dir_fd, TRASH_DIR, 0755) < 0 && errno != EEXIST)
            return -errno;
        pthread_mutex_lock(&s->trash_mu);
        unsigned n = s->trash_seq++;
        pthread_mutex_unlock(&s->trash_mu);
        snprintf(out, 32, TRASH_DIR "/%u", n);
        if (mkdirat(s->dir_fd, out, 0755) == 0)
            return 0;
        /* EEXIST: left by an earlier process, still queued; ENOENT: the
         * thread removed the empty .deleted/ meanwhile. Either: next. */
        if (errno != EEXIST && errno != ENOENT)
            return -errno;
    }
    out[0] = '\0';
    return -EEXIST;
}

static void *trash_main(void *arg)
{
    stream_store *s = arg;
    pthread_mutex_lock(&s->trash_mu);
    for (;;) {
        while (s->trash_len == 0 && !atomic_load(&s->trash_stop))
            pthread_cond_wait(&s->trash_cv, &s->trash_mu);
        if (atomic_load(&s->trash_stop))
            break;
        char *name = s->trash_q[0];
        s->trash_len--;
        memmove(s->trash_q, s->trash_q + 1, s->trash_len * sizeof *s->trash_q);
        s->trash_busy = true;
        pthread_mutex_unlock(&s->trash_mu);
        /* A failure leaves the entry to the next open. */
        (void)rm_rf_at(s->dir_fd, name, 0, &s->trash_stop);
        free(name);
        pthread_mutex_lock(&s->trash_mu);
        if (s->trash_len == 0) /* fails while a delete fills a new entry */
            unlinkat(s->dir_fd, TRASH_DIR, AT_REMOVEDIR);
        s->trash_busy = false;
        pthread_cond_broadcast(&s->trash_cv);
    }
    pthread_mutex_unlock(&s->trash_mu);
    return NULL;
}

/* Hands `name` (under dir_fd) to the trash thread, starting it when it does
 * not run yet. Owner thread. Best effort: without memory or a thread the
 * entry stays in .deleted/ for the next open. */
static void trash_push(stream_store *s, const char *name)
{
    char *copy = strdup(name);
    if (copy == NULL)
        return;
    pthread_mutex_lock(&s->trash_mu);
    if (s->trash_len == s->trash_cap) {
        size_t cap = s->trash_cap ? s->trash_cap * 2 : 8;
        char **q = realloc(s->trash_q, cap * sizeof *q);
        if (q == NULL) {
            pthread_mutex_unlock(&s->trash_mu);
            free(copy);
            return;
        }
        s->trash_q = q;
        s->trash_cap = cap;
    }
    s->trash_q[s->trash_len++] = copy;
    pthread_cond_broadcast(&s->trash_cv);
    pthread_mutex_unlock(&s->trash_mu);
    if (!s->trash_started && pthread_create(&s->trash_thread, NULL, trash_main, s) == 0)
        s->trash_started = true;
}

/* Stops the trash thread (between two partitions) and frees the queue. */
static void trash_stop(stream_store *s)
{
    if (s->trash_started) {
        pthread_mutex_lock(&s->trash_mu);
        atomic_store(&s->trash_stop, true);
        pthread_cond_broadcast(&s->trash_cv);
        pthread_mutex_unlock(&s->trash_mu);
        pthread_join(s->trash_thread, NULL);
        s->trash_started = false;
    }
    for (size_t i = 0; i < s->trash_len; i++)
        free(s->trash_q[i]);
    free(s->trash_q);
    s->trash_q = NULL;
    s->trash_len = s->trash_cap = 0;
}

void stream_store_wait_trash(stream_store *s)
{
    if (!s->trash_started)
        return;
    pthread_mutex_lock(&s->trash_mu);
    while (s->trash_len > 0 || s->trash_busy)
        pthread_cond_wait(&s->trash_cv, &s->trash_mu);
    pthread_mutex_unlock(&s->trash_mu);
}

/* Moves directory `name` into the job's (or open's) trash directory `trash`,
 * making one first when trash is "". Any thread. 0 or -errno. */
static int move_to_trash(stream_store *s, const char *name, char trash[32])
{
    if (trash[0] == '\0') {
        int rc = trash_dir_new(s, trash);
        if (rc < 0)
            return rc;
    }
    char to[32 + STREAM_TOPIC_NAME_MAX + 16];
    snprintf(to, sizeof to, "%s/%s", trash, name);
    return renameat(s->dir_fd, name, s->dir_fd, to) < 0 ? -errno : 0;
}

/* ---- metadata files ------------------------------------------------------------ */

/* Writes <name>.topic atomically: temp file, fsync, rename, fsync dir. */
static int write_meta(stream_store *s, const char *name, int32_t partitions,
                      const stream_config *overrides, char *errbuf, size_t errbuf_len)
{
    char meta[STREAM_TOPIC_NAME_MAX + sizeof META_SUFFIX];
    char tmp[STREAM_TOPIC_NAME_MAX + 8];
    snprintf(meta, sizeof meta, "%s" META_SUFFIX, name);
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);

    stream_buf b = STREAM_BUF_INIT;
    char head[128];
    int hn = snprintf(head, sizeof head,
                      "# stream topic metadata: written by the broker, do not edit\n"
                      "version=%d\npartitions=%d\n",
                      META_VERSION, (int)partitions);
    stream_buf_put(&b, head, (size_t)hn);
    if (stream_config_write(overrides, true, &b) < 0) {
        stream_buf_release(&b);
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }

    const char *step = "create";
    int fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0) {
        step = "write";
        rc = write_all(fd, b.data, b.len);
    }
    if (rc == 0 && fdatasync(fd) < 0) {
        step = "sync";
        rc = -errno;
    }
    if (fd >= 0 && close(fd) < 0 && rc == 0) {
        step = "close";
        rc = -errno;
    }
    if (rc == 0 && renameat(s->dir_fd, tmp, s->dir_fd, meta) < 0) {
        step = "rename";
        rc = -errno;
    }
    stream_buf_release(&b);
    if (rc < 0) {
        unlinkat(s->dir_fd, tmp, 0);
        stream__errf(errbuf, errbuf_len, "%s/%s: %s: %s", s->dir, meta, step, strerror(-rc));
        return stream_err_from_errno(-rc);
    }
    rc = fsync_dir(s->dir_fd);
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len, "%s: sync: %s", s->dir, strerror(-rc));
        return stream_err_from_errno(-rc);
    }
    return 0;
}

struct meta_parse {
    int32_t partitions; /* -1 until the line is seen */
    bool version_seen;
    stream_config *overrides;
};

static int meta_line(void *arg, const char *key, const char *value, char *errbuf, size_t errbuf_len)
{
    struct meta_parse *m = arg;
    char *end;
    if (strcmp(key, "version") == 0) {
        if (strcmp(value, "1") != 0) {
            stream__errf(errbuf, errbuf_len,
                         "unsupported metadata version '%.20s' (this broker reads 1)", value);
            return STREAM_EBADCONFIG;
        }
        m->version_seen = true;
        return 0;
    }
    if (strcmp(key, "partitions") == 0) {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < 1 ||
            v > STREAM_CONFIG_PARTITIONS_MAX) {
            stream__errf(errbuf, errbuf_len, "partitions: '%.20s' is not a count in 1 to %d", value,
                         STREAM_CONFIG_PARTITIONS_MAX);
            return STREAM_EBADCONFIG;
        }
        m->partitions = (int32_t)v;
        return 0;
    }
    return stream_config_set(m->overrides, key, value, errbuf, errbuf_len);
}

/* Reads <name>.topic. Errors: STREAM_EBADCONFIG (errbuf: path:line), EIO. */
static int read_meta(stream_store *s, const char *name, int32_t *partitions,
                     stream_config **overrides, char *errbuf, size_t errbuf_len)
{
    char meta[STREAM_TOPIC_NAME_MAX + sizeof META_SUFFIX];
    snprintf(meta, sizeof meta, "%s" META_SUFFIX, name);
    char *path = NULL;
    if (asprintf(&path, "%s/%s", s->dir, meta) < 0) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_file_at(s->dir_fd, meta, &text, &len);
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len, "%s: %s", path, strerror(-rc));
        free(path);
        return rc == -ENOMEM ? STREAM_ENOMEM : STREAM_EIO;
    }
    struct meta_parse m = {.partitions = -1, .overrides = stream_config_new_topic()};
    if (m.overrides == NULL) {
        rc = STREAM_ENOMEM;
        stream__errf(errbuf, errbuf_len, "out of memory");
    } else {
        rc = stream_config_parse(text, len, path, meta_line, &m, errbuf, errbuf_len);
    }
    if (rc == 0 && (!m.version_seen || m.partitions < 0)) {
        stream__errf(errbuf, errbuf_len, "%s: no %s line: not a topic metadata file", path,
                     m.version_seen ? "partitions" : "version");
        rc = STREAM_EBADCONFIG;
    }
    free(text);
    free(path);
    if (rc < 0) {
        stream_config_free(m.overrides);
        return rc;
    }
    *partitions = m.partitions;
    *overrides = m.overrides;
    return 0;
}

/* ---- topics in memory ------------------------------------------------------ */

/* Closes the logs and frees the topic. */
static void topic_free(stream_topic *t)
{
    if (t == NULL)
        return;
    if (t->partitions != NULL)
        for (int32_t i = 0; i < t->partition_count; i++)
            stream_log_close(t->partitions[i]);
    free(t->partitions);
    free(t->recovery);
    stream_config_free(t->overrides);
    free(t->name);
    free(t);
}

/* A topic with no logs open yet; takes ownership of `overrides`. */
static stream_topic *topic_new(const stream_store *s, const char *name, int32_t partitions,
                               stream_config *overrides)
{
    stream_topic *t = calloc(1, sizeof *t);
    if (t == NULL) {
        stream_config_free(overrides);
        return NULL;
    }
    t->overrides = overrides;
    t->name = strdup(name);
    t->partition_count = partitions;
    t->internal = is_internal_name(name);
    t->partitions = calloc((size_t)partitions, sizeof *t->partitions);
    t->recovery = calloc((size_t)partitions, sizeof *t->recovery);
    if (t->name == NULL || t->partitions == NULL || t->recovery == NULL) {
        topic_free(t);
        return NULL;
    }
    stream_config_topic_log_config(s->broker, overrides, &t->log_config);
    t->log_config.files = s->files;
    return t;
}

/* Binary search: the index of `name`, or where it would go (*found false). */
static size_t topic_pos(const stream_store *s, const char *name, bool *found)
{
    size_t lo = 0, hi = s->topic_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->topics[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Room in s->topics for every topic a job in flight may insert, plus one:
 * a finish never fails for memory. */
static int reserve_topics(stream_store *s)
{
    size_t need = s->topic_count + s->busy_count + 1;
    if (need <= s->topic_cap)
        return 0;
    size_t cap = s->topic_cap ? s->topic_cap : 16;
    while (cap < need)
        cap *= 2;
    stream_topic **nt = realloc(s->topics, cap * sizeof *nt);
    if (nt == NULL)
        return STREAM_ENOMEM;
    s->topics = nt;
    s->topic_cap = cap;
    return 0;
}

/* Inserts at `pos`; reserve_topics must have succeeded. */
static void insert_topic(stream_store *s, size_t pos, stream_topic *t)
{
    memmove(s->topics + pos + 1, s->topics + pos, (s->topic_count - pos) * sizeof *s->topics);
    s->topics[pos] = t;
    s->topic_count++;
}

/*
 * Opening every partition at store open, on a few threads: a restart of
 * ten thousand partitions is some thirty system calls each (the directory,
 * its lock, the checkpoints, the active segment and its indexes, the
 * producer snapshot), independent of each other. Workers take the next
 * partition from a shared counter; the first failure stops them and is the
 * one reported.
 */
#define OPEN_THREADS_MAX 4
#define OPEN_PER_THREAD  256 /* fewer partitions than this per thread: fewer threads */

typedef struct open_work {
    stream_store *s;
    size_t *first;      /* first[i]: flat index of topic i's partition 0; first[n] = total */
    atomic_size_t next; /* the next flat index to open */
    atomic_bool failed; /* a worker failed: the others stop */
    pthread_mutex_t mu; /* guards the notes and rc/err */
    int rc;             /* the first failure */
    char err[512];      /* its message */
} open_work;

static void *open_worker(void *arg)
{
    open_work *w = arg;
    stream_store *s = w->s;
    size_t total = w->first[s->topic_count];
    char dn[STREAM_TOPIC_NAME_MAX + 16], path[PATH_MAX], err[512];
    for (;;) {
        size_t k = atomic_fetch_add(&w->next, 1);
        if (k >= total || atomic_load(&w->failed))
            break;
        size_t lo = 0, hi = s->topic_count; /* the topic: last first[i] <= k */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (w->first[mid] <= k)
                lo = mid;
            else
                hi = mid;
        }
        stream_topic *t = s->topics[lo];
        int32_t i = (int32_t)(k - w->first[lo]);
        snprintf(dn, sizeof dn, "%s-%d", t->name, (int)i);
        int n = snprintf(path, sizeof path, "%s/%s", s->dir, dn);
        int rc = 0;
        err[0] = '\0';
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof path) {
            snprintf(err, sizeof err, "%s/%s: path too long", s->dir, dn);
            rc = STREAM_EINVAL;
        } else {
            if (fstatat(s->dir_fd, dn, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
                pthread_mutex_lock(&w->mu);
                note(s, "partition directory %s was missing: recreated empty", dn);
                pthread_mutex_unlock(&w->mu);
            }
            rc = stream_log_open_unsynced(path, &t->log_config, &t->partitions[i], &t->recovery[i],
                                          err, sizeof err);
        }
        if (rc < 0) {
            t->partitions[i] = NULL;
            pthread_mutex_lock(&w->mu);
            if (w->rc == 0) {
                w->rc = rc;
                snprintf(w->err, sizeof w->err, "%s", err);
            }
            pthread_mutex_unlock(&w->mu);
            atomic_store(&w->failed, true);
            break;
        }
    }
    return NULL;
}

/* Opens every partition of every topic; records what recovery did and notes
 * directories that had gone missing. On error closes what it opened. */
static int open_all_partitions(stream_store *s, char *errbuf, size_t errbuf_len)
{
    open_work w = {.s = s};
    w.first = malloc((s->topic_count + 1) * sizeof *w.first);
    if (w.first == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    w.first[0] = 0;
    for (size_t i = 0; i < s->topic_count; i++)
        w.first[i + 1] = w.first[i] + (size_t)s->topics[i]->partition_count;
    atomic_init(&w.next, 0);
    atomic_init(&w.failed, false);
    pthread_mutex_init(&w.mu, NULL);
    size_t total = w.first[s->topic_count];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = total / OPEN_PER_THREAD;
    if (want > OPEN_THREADS_MAX)
        want = OPEN_THREADS_MAX;
    if (cpus > 0 && want > (size_t)cpus)
        want = (size_t)cpus;
    pthread_t th[OPEN_THREADS_MAX];
    size_t started = 0;
    while (started + 1 < want && pthread_create(&th[started], NULL, open_worker, &w) == 0)
        started++;
    open_worker(&w); /* this thread too (alone when no thread was started) */
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&w.mu);
    free(w.first);
    if (w.rc == 0)
        return 0;
    stream__errf(errbuf, errbuf_len, "%s", w.err);
    for (size_t i = 0; i < s->topic_count; i++) {
        stream_topic *t = s->topics[i];
        for (int32_t p = 0; p < t->partition_count; p++) {
            stream_log_close(t->partitions[p]);
            t->partitions[p] = NULL;
        }
    }
    return w.rc;
}

/* ---- open / close ------------------------------------------------------------ */

static int lock_dir(stream_store *s, char *errbuf, size_t errbuf_len)
{
    s->lock_fd = openat(s->dir_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (s->lock_fd < 0) {
        int e = errno;
        stream__errf(errbuf, errbuf_len, "%s/" LOCK_FILE ": %s", s->dir, strerror(e));
        return stream_err_from_errno(e);
    }
    int r;
    while ((r = flock(s->lock_fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        int e = errno;
        if (e != EWOULDBLOCK) {
            stream__errf(errbuf, errbuf_len, "%s/" LOCK_FILE ": lock: %s", s->dir, strerror(e));
            return STREAM_EIO;
        }
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        stream__errf(errbuf, errbuf_len,
                     "data directory %s is in use by another broker (pid %s); stop it or choose "
                     "another data.dir",
                     s->dir, pid[0] ? pid : "unknown");
        return STREAM_EAGAIN;
    }
    /* The pid is only for the message above; failing to write it is harmless. */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) == 0)
        (void)!pwrite(s->lock_fd, pid, (size_t)n, 0);
    return 0;
}

/* Every name in the data directory (minus . and ..). */
static int list_dir(stream_store *s, char ***names, size_t *count, char *errbuf, size_t errbuf_len)
{
    int fd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        stream__errf(errbuf, errbuf_len, "%s: %s", s->dir, strerror(e));
        return stream_err_from_errno(e);
    }
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, cap * sizeof *nv);
            if (nv == NULL) {
                rc = STREAM_ENOMEM;
                break;
            }
            v = nv;
        }
        if ((v[n] = strdup(de->d_name)) == NULL) {
            rc = STREAM_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        stream__errf(errbuf, errbuf_len, "out of memory");
        return rc;
    }
    *names = v;
    *count = n;
    return 0;
}

static bool is_type_at(int dir_fd, const char *name, mode_t type)
{
    struct stat st;
    return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == type;
}

/* Hands every entry of .deleted/ to the trash thread; returns how many. */
static size_t queue_trash(stream_store *s)
{
    int fd = openat(s->dir_fd, TRASH_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    size_t n = 0;
    struct dirent *de;
    char name[sizeof TRASH_DIR + NAME_MAX + 1];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(name, sizeof name, TRASH_DIR "/%s", de->d_name);
        trash_push(s, name);
        n++;
    }
    closedir(d);
    if (n == 0)
        unlinkat(s->dir_fd, TRASH_DIR, AT_REMOVEDIR);
    return n;
}

/* Removes what interrupted operations left: .deleted/, "<topic>-<n>.deleted"
 * directories, ".<topic>.tmp" files. */
static void remove_debris(stream_store *s, char **names, size_t count)
{
    char topic[STREAM_TOPIC_NAME_MAX + 1];
    int32_t n;
    for (size_t i = 0; i < count; i++) {
        const char *nm = names[i];
        size_t len = strlen(nm);
        if (strcmp(nm, TRASH_DIR) == 0 && is_type_at(s->dir_fd, nm, S_IFDIR)) {
            if (queue_trash(s) > 0)
                note(s, "deleting partitions left in %s/" TRASH_DIR " in the background", s->dir);
        } else if (has_suffix(nm, len, TRASH_DIR) &&
                   parse_partition_dir(nm, len - strlen(TRASH_DIR), topic, &n) &&
                   is_type_at(s->dir_fd, nm, S_IFDIR)) {
            if (rm_rf_at(s->dir_fd, nm, 0, NULL) == 0)
                note(s, "finished deleting partition directory %s", nm);
        } else if (nm[0] == '.' && has_suffix(nm, len, ".tmp") && len > 5 &&
                   len - 5 <= STREAM_TOPIC_NAME_MAX && is_type_at(s->dir_fd, nm, S_IFREG)) {
            memcpy(topic, nm + 1, len - 5);
            topic[len - 5] = '\0';
            if (stream_topic_name_valid(topic, NULL, 0) == 0 && unlinkat(s->dir_fd, nm, 0) == 0)
                note(s, "removed unfinished metadata file %s", nm);
        }
    }
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(stream_topic *const *)a)->name, (*(stream_topic *const *)b)->name);
}

/* Reads every <topic>.topic into s->topics (no logs opened yet). */
static int load_topics(stream_store *s, char **names, size_t count, char *errbuf, size_t errbuf_len)
{
    char topic[STREAM_TOPIC_NAME_MAX + 1];
    for (size_t i = 0; i < count; i++) {
        const char *nm = names[i];
        size_t len = strlen(nm);
        if (!has_suffix(nm, len, META_SUFFIX))
            continue;
        size_t tn = len - strlen(META_SUFFIX);
        if (tn == 0 || tn > STREAM_TOPIC_NAME_MAX || !is_type_at(s->dir_fd, nm, S_IFREG))
            continue;
        memcpy(topic, nm, tn);
        topic[tn] = '\0';
        if (stream_topic_name_valid(topic, NULL, 0) < 0) {
            note(s, "ignored %s: not a valid topic name", nm);
            continue;
        }
        int32_t partitions;
        stream_config *ov;
        int rc = read_meta(s, topic, &partitions, &ov, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        stream_topic *t = topic_new(s, topic, partitions, ov);
        if (t == NULL || reserve_topics(s) < 0) {
            topic_free(t);
            stream__errf(errbuf, errbuf_len, "out of memory");
            return STREAM_ENOMEM;
        }
        s->topics[s->topic_count++] = t;
    }
    if (s->topic_count > 1)
        qsort(s->topics, s->topic_count, sizeof *s->topics, cmp_topic);
    return 0;
}

/* Removes partition directories that belong to no topic (an interrupted create
 * or delete) or lie past their topic's count: moved into the trash (a
 * delete killed early leaves thousands), else removed here. */
static void remove_strays(stream_store *s, char **names, size_t count)
{
    char topic[STREAM_TOPIC_NAME_MAX + 1];
    char trash[32] = "";
    int32_t n;
    for (size_t i = 0; i < count; i++) {
        const char *nm = names[i];
        if (!parse_partition_dir(nm, strlen(nm), topic, &n) || !is_type_at(s->dir_fd, nm, S_IFDIR))
            continue;
        stream_topic *t = stream_store_topic(s, topic);
        if (t != NULL && n < t->partition_count)
            continue;
        int rc = move_to_trash(s, nm, trash);
        if (rc < 0)
            rc = rm_rf_at(s->dir_fd, nm, 0, NULL);
        if (rc < 0)
            note(s, "could not remove stray partition directory %s: %s", nm, strerror(-rc));
        else
            note(s, "removed stray partition directory %s (%s)", nm,
                 t ? "past the topic's partition count" : "no such topic");
    }
    if (trash[0] != '\0')
        trash_push(s, trash);
}

int stream_store_open(const char *data_dir, const stream_config *broker_cfg, stream_store **out,
                      char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    char given[PATH_MAX];
    if (data_dir == NULL) {
        int rc = stream_config_data_dir(broker_cfg, given, sizeof given);
        if (rc < 0) {
            stream__errf(errbuf, errbuf_len, "cannot find a data directory (set data.dir): %s",
                         rc == STREAM_ENOENT ? "no home directory" : "path too long");
            return rc;
        }
        data_dir = given;
    }
    if (data_dir[0] == '\0') {
        stream__errf(errbuf, errbuf_len, "empty data directory name");
        return STREAM_EINVAL;
    }

    stream_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    s->dir_fd = -1;
    s->lock_fd = -1;
    pthread_mutex_init(&s->trash_mu, NULL);
    pthread_cond_init(&s->trash_cv, NULL);
    atomic_init(&s->trash_stop, false);
    s->broker = broker_cfg ? stream_config_dup(broker_cfg) : stream_config_new();
    char **names = NULL;
    size_t count = 0;
    int rc;
    if (s->broker == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        rc = STREAM_ENOMEM;
        goto fail;
    }

    rc = mkdir_p(data_dir);
    if (rc < 0) {
        stream__errf(errbuf, errbuf_len, "cannot create data directory %s: %s", data_dir,
                     strerror(-rc));
        rc = stream_err_from_errno(-rc);
        goto fail;
    }
    s->dir = realpath(data_dir, NULL);
    if (s->dir == NULL) {
        int e = errno;
        stream__errf(errbuf, errbuf_len, "data directory %s: %s", data_dir, strerror(e));
        rc = stream_err_from_errno(e);
        goto fail;
    }
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        int e = errno;
        stream__errf(errbuf, errbuf_len, "data directory %s: %s", s->dir, strerror(e));
        rc = stream_err_from_errno(e);
        goto fail;
    }
    if ((rc = lock_dir(s, errbuf, errbuf_len)) < 0)
        goto fail;
    if ((rc = stream_log_files_new(files_budget(s), &s->files)) < 0) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        goto fail;
    }

    if ((rc = list_dir(s, &names, &count, errbuf, errbuf_len)) < 0)
        goto fail;
    remove_debris(s, names, count);
    if ((rc = load_topics(s, names, count, errbuf, errbuf_len)) < 0)
        goto fail;
    remove_strays(s, names, count);
    fsync_dir(s->dir_fd);

    if ((rc = open_all_partitions(s, errbuf, errbuf_len)) < 0)
        goto fail;
    /* The logs left the last fsync of their directories (the clean-shutdown
     * markers removed) to one sync here, before anything is appended. */
    if (s->topic_count > 0 && syscall(SYS_syncfs, s->dir_fd) < 0) {
        int e = errno;
        stream__errf(errbuf, errbuf_len, "%s: sync: %s", s->dir, strerror(e));
        rc = stream_err_from_errno(e);
        goto fail;
    }

    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    *out = s;
    return 0;

fail:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    stream_store_close(s);
    return rc;
}

/*
 * Closes every partition log with two syncs of the file system in all
 * (stream_log_close_prepare/finish): stopping a broker of ten thousand
 * partitions took four syncs each, some fifteen seconds.
 */
static void close_logs(stream_store *s)
{
    bool any = false;
    for (size_t i = 0; i < s->topic_count; i++) {
        stream_topic *t = s->topics[i];
        for (int32_t p = 0; p < t->partition_count; p++)
            if (t->partitions[p] != NULL) {
                (void)stream_log_close_prepare(t->partitions[p]);
                any = true;
            }
    }
    if (!any)
        return;
    bool synced = syscall(SYS_syncfs, s->dir_fd) == 0;
    for (size_t i = 0; i < s->topic_count; i++) {
        stream_topic *t = s->topics[i];
        for (int32_t p = 0; p < t->partition_count; p++) {
            stream_log_close_finish(t->partitions[p], synced);
            t->partitions[p] = NULL;
        }
    }
    if (synced)
        (void)syscall(SYS_syncfs, s->dir_fd);
}

void stream_store_close(stream_store *s)
{
    if (s == NULL)
        return;
    trash_stop(s);
    if (s->dir_fd >= 0)
        close_logs(s);
    for (size_t i = 0; i < s->topic_count; i++)
        topic_free(s->topics[i]);
    free(s->topics);
    stream_log_files_free(s->files);
    for (size_t i = 0; i < s->note_count; i++)
        free(s->notes[i]);
    free(s->notes);
    stream_config_free(s->broker);
    for (size_t i = 0; i < s->busy_count; i++)
        free(s->busy[i]);
    free(s->busy);
    pthread_cond_destroy(&s->trash_cv);
    pthread_mutex_destroy(&s->trash_mu);
    /* Closing the descriptor releases the flock. The file stays: unlinking a
     * lock file lets a third process lock a fresh inode while a second still
     * waits on the old one. */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->dir);
    free(s);
}

const char *stream_store_dir(const stream_store *s)
{
    return s->dir;
}

size_t stream_store_note_count(const stream_store *s)
{
    return s->note_count;
}

const char *stream_store_note(const stream_store *s, size_t i)
{
    return i < s->note_count ? s->notes[i] : NULL;
}

/* ---- operations ------------------------------------------------------------ */

/* A private copy of caller-given overrides: NULL -> empty. */
static int copy_overrides(const stream_config *overrides, stream_config **out, char *errbuf,
                          size_t errbuf_len)
{
    if (overrides != NULL && !stream_config_is_topic(overrides)) {
        stream__errf(errbuf, errbuf_len,
                     "topic settings must be a topic config (stream_config_new_topic)");
        return STREAM_EINVAL;
    }
    *out = overrides ? stream_config_dup(overrides) : stream_config_new_topic();
    if (*out == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    return 0;
}

/* ---- create and delete, in three steps -------------------------------------- */

static bool is_busy(const stream_store *s, const char *name)
{
    for (size_t i = 0; i < s->busy_count; i++)
        if (strcmp(s->busy[i], name) == 0)
            return true;
    return false;
}

static int busy_add(stream_store *s, const char *name)
{
    char **nb = realloc(s->busy, (s->busy_count + 1) * sizeof *nb);
    if (nb == NULL)
        return STREAM_ENOMEM;
    s->busy = nb;
    if ((s->busy[s->busy_count] = strdup(name)) == NULL)
        return STREAM_ENOMEM;
    s->busy_count++;
    return 0;
}

static void busy_remove(stream_store *s, const char *name)
{
    for (size_t i = 0; i < s->busy_count; i++) {
        if (strcmp(s->busy[i], name) == 0) {
            free(s->busy[i]);
            s->busy[i] = s->busy[--s->busy_count];
            return;
        }
    }
}

/* Descriptors of the open-file limit the logs leave to everything else
 * (connections, checkpoints, index writes) when log.max.open.files is 0: a
 * quarter of a small limit, at most FD_RESERVE (a broker under ulimit -n 64
 * still takes a topic or two). */
#define FD_RESERVE 256

/* The logs' open-file budget: log.max.open.files, or from RLIMIT_NOFILE. */
static long files_budget(const stream_store *s)
{
    int64_t set = stream_config_int(s->broker, STREAM_CONFIG_LOG_MAX_OPEN_FILES);
    if (set > 0)
        return (long)set;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > (rlim_t)INT32_MAX)
        return INT32_MAX;
    long limit = (long)rl.rlim_cur;
    long reserve = limit / 4 < FD_RESERVE ? limit / 4 : FD_RESERVE;
    return limit - reserve > 1 ? limit - reserve : 1;
}

/* Descriptors this process has open (the entries of /proc/self/fd, less the
 * one listing them); -1 when it cannot tell. */
static long open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/*
 * A partition holds one descriptor while open (its active segment; its
 * directory is opened only for a run of *at calls or a sync, and the data
 * directory's lock covers it); older segments are cached and closed when
 * room is needed. Refuses a create whose partitions would not
 * fit beside the descriptors held for good, in the logs' budget
 * (log.max.open.files) or under the process's open-file limit, with a
 * message naming both, instead of failing thousands of partitions in with
 * "input/output error" (EMFILE). Creates still running count with their
 * partitions.
 */
static int check_fd_budget(const stream_store *s, int32_t partitions, char *errbuf,
                           size_t errbuf_len)
{
    stream_log_files_stats fs;
    stream_log_files_get_stats(s->files, &fs);
    long need = partitions, pending = s->pending_partitions;
    long held = fs.open - fs.cached + pending;
    if (held + need > fs.budget) {
        stream__errf(
            errbuf, errbuf_len,
            "%d partitions need about %ld more open files (one each), but %ld of the %ld the "
            "logs may hold (log.max.open.files; 0 derives it from the open-file limit) are "
            "held: raise log.max.open.files or the open-file limit (RLIMIT_NOFILE: ulimit -n, "
            "or LimitNOFILE= in a systemd unit), or create fewer partitions",
            (int)partitions, need, held, fs.budget);
        return STREAM_EINVAL;
    }
    struct rlimit rl;
    long used = open_fd_count();
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || used < 0)
        return 0;
    used -= fs.cached; /* closed when room is needed */
    long reserve = (long)(rl.rlim_cur / 8 < 64 ? rl.rlim_cur / 8 : 64);
    if ((unsigned long long)(used + need + pending + reserve) <= (unsigned long long)rl.rlim_cur)
        return 0;
    stream__errf(
        errbuf, errbuf_len,
        "%d partitions need about %ld more open files (one each), but %ld of this broker's "
        "limit of %llu are in use: raise the open-file limit (RLIMIT_NOFILE: ulimit -n, or "
        "LimitNOFILE= in a systemd unit; log.max.open.files bounds the logs' share) or create "
        "fewer partitions",
        (int)partitions, need, used + pending, (unsigned long long)rl.rlim_cur);
    return STREAM_EINVAL;
}

int stream_store_create_begin(stream_store *s, const char *name, int32_t partitions,
                              const stream_config *overrides, bool internal, stream_store_job **out,
                              char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    int rc = stream_topic_name_valid(name, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (is_internal_name(name) && !internal) {
        stream__errf(errbuf, errbuf_len,
                     "topic names starting with '__' are reserved for internal topics");
        return STREAM_EBADNAME;
    }
    if (internal && !is_internal_name(name)) {
        stream__errf(errbuf, errbuf_len, "internal topic names start with '__'");
        return STREAM_EINVAL;
    }
    if (partitions == -1)
        partitions = (int32_t)stream_config_int(s->broker, STREAM_CONFIG_NUM_PARTITIONS);
    if (partitions < 1 || partitions > STREAM_CONFIG_PARTITIONS_MAX) {
        stream__errf(errbuf, errbuf_len, "partition count %d is out of range (allowed: 1 to %d)",
                     (int)partitions, STREAM_CONFIG_PARTITIONS_MAX);
        return STREAM_EINVAL;
    }
    if (stream_store_topic(s, name) != NULL) {
        stream__errf(errbuf, errbuf_len, "topic '%s' already exists", name);
        return STREAM_ETOPICEXISTS;
    }
    if (is_busy(s, name)) {
        stream__errf(errbuf, errbuf_len, "topic '%s' is being created or deleted", name);
        return STREAM_ETOPICEXISTS;
    }
    if ((rc = check_fd_budget(s, partitions, errbuf, errbuf_len)) < 0)
        return rc;
    stream_config *ov;
    if ((rc = copy_overrides(overrides, &ov, errbuf, errbuf_len)) < 0)
        return rc;
    stream_store_job *j = calloc(1, sizeof *j);
    stream_topic *t = topic_new(s, name, partitions, ov);
    if (j == NULL || t == NULL || reserve_topics(s) < 0 || busy_add(s, name) < 0) {
        topic_free(t);
        free(j);
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    j->s = s;
    j->create = true;
    j->t = t;
    s->pending_partitions += partitions;
    *out = j;
    return 0;
}

int stream_store_delete_begin(stream_store *s, const char *name, stream_topic **topic,
                              stream_store_job **out, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    bool found = false;
    size_t pos = name ? topic_pos(s, name, &found) : 0;
    if (!found) {
        stream__errf(errbuf, errbuf_len, "unknown topic '%.249s'", name ? name : "");
        return STREAM_ENOTOPIC;
    }
    if (is_busy(s, name)) {
        stream__errf(errbuf, errbuf_len, "topic '%s' is getting new partitions; retry", name);
        return STREAM_EAGAIN;
    }
    stream_store_job *j = calloc(1, sizeof *j);
    if (j == NULL || busy_add(s, name) < 0) {
        free(j);
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    j->s = s;
    j->t = s->topics[pos];
    memmove(s->topics + pos, s->topics + pos + 1, (s->topic_count - pos - 1) * sizeof *s->topics);
    s->topic_count--;
    if (topic != NULL)
        *topic = j->t;
    *out = j;
    return 0;
}

int stream_store_add_partitions_begin(stream_store *s, const char *name, int32_t partitions,
                                      stream_store_job **out, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    stream_topic *t = name ? stream_store_topic(s, name) : NULL;
    if (t == NULL) {
        stream__errf(errbuf, errbuf_len, "unknown topic '%.249s'", name ? name : "");
        return STREAM_ENOTOPIC;
    }
    if (partitions <= t->partition_count) {
        stream__errf(
            errbuf, errbuf_len,
            "topic '%s' has %d partitions; the new count of partitions must be larger, not %d "
            "(partitions are never removed)",
            name, (int)t->partition_count, (int)partitions);
        return STREAM_EINVAL;
    }
    if (partitions > STREAM_CONFIG_PARTITIONS_MAX) {
        stream__errf(errbuf, errbuf_len, "partition count %d is out of range (allowed: 1 to %d)",
                     (int)partitions, STREAM_CONFIG_PARTITIONS_MAX);
        return STREAM_EINVAL;
    }
    if (is_busy(s, name)) {
        stream__errf(errbuf, errbuf_len, "topic '%s' is getting new partitions already; retry",
                     name);
        return STREAM_EAGAIN;
    }
    int32_t added = partitions - t->partition_count;
    int rc = check_fd_budget(s, added, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_store_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        goto nomem;
    j->logs = calloc((size_t)partitions, sizeof *j->logs);
    j->recovery = calloc((size_t)partitions, sizeof *j->recovery);
    j->overrides = stream_config_dup(t->overrides);
    if (j->logs == NULL || j->recovery == NULL || j->overrides == NULL || busy_add(s, name) < 0)
        goto nomem;
    j->s = s;
    j->grow = true;
    j->t = t;
    j->from = t->partition_count;
    j->to = partitions;
    j->log_config = t->log_config;
    s->pending_partitions += added;
    *out = j;
    return 0;
nomem:
    if (j != NULL) {
        free(j->logs);
        free(j->recovery);
        stream_config_free(j->overrides);
        free(j);
    }
    stream__errf(errbuf, errbuf_len, "out of memory");
    return STREAM_ENOMEM;
}

/* Makes empty logs for partitions [from, to) of the topic called name into
 * logs[from..to) with config lc: stale directories of those names moved
 * away first (directories named like ours that belong to no partition are
 * debris, and starting from them would resurrect old records), then every
 * log without a sync, then one syncfs of the data directory's file system
 * for all of them. On error *made is how many were made (closed by the
 * caller's undo) and err says why. */
static int make_logs(stream_store_job *j, const char *name, int32_t from, int32_t to,
                     const stream_log_config *lc, stream_log **logs, int32_t *made)
{
    stream_store *s = j->s;
    char dn[STREAM_TOPIC_NAME_MAX + 16], path[PATH_MAX];
    int rc = 0;
    *made = from;
    for (int32_t i = from; i < to && rc == 0; i++) {
        snprintf(dn, sizeof dn, "%s-%d", name, (int)i);
        if (is_type_at(s->dir_fd, dn, S_IFDIR) && move_to_trash(s, dn, j->trash) < 0 &&
            rm_rf_at(s->dir_fd, dn, 0, NULL) < 0) {
            stream__errf(j->err, sizeof j->err, "%s/%s: cannot remove a stale partition directory",
                         s->dir, dn);
            rc = STREAM_EIO;
        }
    }
    int32_t i = from;
    for (; i < to && rc == 0; i++) {
        int w = snprintf(path, sizeof path, "%s/%s-%d", s->dir, name, (int)i);
        if (w < 0 || (size_t)w >= sizeof path) {
            stream__errf(j->err, sizeof j->err, "%s/%s-%d: path too long", s->dir, name, (int)i);
            rc = STREAM_EINVAL;
            break;
        }
        rc = stream_log_create(path, lc, &logs[i], j->err, sizeof j->err);
        if (rc < 0) {
            logs[i] = NULL;
            break;
        }
    }
    *made = i;
    if (rc == 0 && syscall(SYS_syncfs, s->dir_fd) < 0) {
        int e = errno;
        stream__errf(j->err, sizeof j->err, "%s: sync: %s", s->dir, strerror(e));
        rc = stream_err_from_errno(e);
    }
    return rc;
}

/* Discards logs[from..made] and moves their directories out of the way
 * (the next open would also find them as strays). */
static void undo_logs(stream_store_job *j, const char *name, int32_t from, int32_t made, int32_t to,
                      stream_log **logs)
{
    char dn[STREAM_TOPIC_NAME_MAX + 16];
    for (int32_t i = from; i <= made && i < to; i++) {
        stream_log_discard(logs[i]);
        logs[i] = NULL;
        snprintf(dn, sizeof dn, "%s-%d", name, (int)i);
        if (move_to_trash(j->s, dn, j->trash) < 0)
            rm_rf_at(j->s->dir_fd, dn, 0, NULL);
    }
}

/*
 * The disk work of a create: every partition's directory and empty log
 * (make_logs: no sync each, one syncfs for all), then the metadata file
 * (temp file, fdatasync, rename, fsync of the directory: the commit). Three
 * syncs in all, whatever the partition count.
 */
static void create_run(stream_store_job *j)
{
    stream_topic *t = j->t;
    int32_t made;
    int rc = make_logs(j, t->name, 0, t->partition_count, &t->log_config, t->partitions, &made);
    if (rc == 0)
        rc = write_meta(j->s, t->name, t->partition_count, t->overrides, j->err, sizeof j->err);
    if (rc < 0) {
        undo_logs(j, t->name, 0, made, t->partition_count, t->partitions);
        j->rc = rc;
        return;
    }
    j->committed = true;
}

/*
 * The disk work of add_partitions: as a create's, for the new partitions
 * only, and the metadata file rewritten with the new count as the commit.
 * Before the rename, the new directories are strays (n >= the count on
 * disk), which the next open removes; after it they are the topic's. The
 * topic's own logs are not touched: the owner goes on using them.
 */
static void grow_run(stream_store_job *j)
{
    const char *name = j->t->name; /* never changes while the topic lives */
    int32_t made;
    int rc = make_logs(j, name, j->from, j->to, &j->log_config, j->logs, &made);
    if (rc == 0)
        rc = write_meta(j->s, name, j->to, j->overrides, j->err, sizeof j->err);
    if (rc < 0) {
        undo_logs(j, name, j->from, made, j->to, j->logs);
        j->rc = rc;
        return;
    }
    j->committed = true;
}

/*
 * The disk work of a delete: the metadata file goes (the commit), the logs
 * are dropped unwritten, and the partition directories move into a fresh
 * .deleted/<n>, which the trash thread empties after the finish. Two
 * syncs of the data directory, whatever the partition count.
 */
static void delete_run(stream_store_job *j)
{
    stream_store *s = j->s;
    stream_topic *t = j->t;
    char meta[STREAM_TOPIC_NAME_MAX + sizeof META_SUFFIX];
    snprintf(meta, sizeof meta, "%s" META_SUFFIX, t->name);
    if (unlinkat(s->dir_fd, meta, 0) < 0) {
        int e = errno;
        stream__errf(j->err, sizeof j->err, "%s/%s: %s", s->dir, meta, strerror(e));
        j->rc = stream_err_from_errno(e);
        return;
    }
    /* Committed: from here on the delete finishes, now or at the next open. */
    fsync_dir(s->dir_fd);
    j->committed = true;
    for (int32_t i = 0; i < t->partition_count; i++) {
        stream_log_discard(t->partitions[i]);
        t->partitions[i] = NULL;
    }
    j->logs_gone = true;
    /* Out of the namespace at once, so the name can be used again and a
     * crash in the (slow) removal leaves nothing that looks like a
     * partition. A directory that cannot move is a stray the next create
     * of the name, or the next open, moves. */
    char dn[STREAM_TOPIC_NAME_MAX + 16];
    for (int32_t i = 0; i < t->partition_count; i++) {
        snprintf(dn, sizeof dn, "%s-%d", t->name, (int)i);
        if (move_to_trash(s, dn, j->trash) < 0 && j->trash[0] == '\0')
            break;
    }
    fsync_dir(s->dir_fd);
}

void stream_store_job_run(stream_store_job *j)
{
    if (j->create)
        create_run(j);
    else if (j->grow)
        grow_run(j);
    else
        delete_run(j);
}

/* Finishes an add_partitions: on success the topic takes the new logs. */
static int grow_finish(stream_store_job *j, stream_topic **out, char *errbuf, size_t errbuf_len)
{
    stream_store *s = j->s;
    stream_topic *t = j->t;
    int rc = j->rc;
    busy_remove(s, t->name);
    s->pending_partitions -= j->to - j->from;
    if (j->trash[0] != '\0')
        trash_push(s, j->trash);
    if (rc == 0) {
        memcpy(j->logs, t->partitions, (size_t)j->from * sizeof *j->logs);
        memcpy(j->recovery, t->recovery, (size_t)j->from * sizeof *j->recovery);
        free(t->partitions);
        free(t->recovery);
        t->partitions = j->logs;
        t->recovery = j->recovery;
        t->partition_count = j->to;
        if (out != NULL)
            *out = t;
    } else {
        free(j->logs); /* the run discarded what it made */
        free(j->recovery);
        stream__errf(errbuf, errbuf_len, "%s", j->err);
    }
    stream_config_free(j->overrides);
    free(j);
    return rc;
}

int stream_store_job_finish(stream_store_job *j, stream_topic **out, char *errbuf,
                            size_t errbuf_len)
{
    if (out != NULL)
        *out = NULL;
    if (j->grow)
        return grow_finish(j, out, errbuf, errbuf_len);
    stream_store *s = j->s;
    stream_topic *t = j->t;
    int rc = j->rc;
    busy_remove(s, t->name);
    if (j->create)
        s->pending_partitions -= t->partition_count;
    if (j->trash[0] != '\0')
        trash_push(s, j->trash);
    bool found;
    if (j->create && rc == 0) {
        insert_topic(s, topic_pos(s, t->name, &found), t);
        if (out != NULL)
            *out = t;
    } else if (!j->create && !j->committed) {
        insert_topic(s, topic_pos(s, t->name, &found), t); /* the delete failed: back */
    } else {
        topic_free(t); /* logs already closed (NULL) by the run */
    }
    if (rc < 0)
        stream__errf(errbuf, errbuf_len, "%s", j->err);
    free(j);
    return rc;
}

int stream_store_create_topic(stream_store *s, const char *name, int32_t partitions,
                              const stream_config *overrides, bool internal, stream_topic **out,
                              char *errbuf, size_t errbuf_len)
{
    if (out != NULL)
        *out = NULL;
    stream_store_job *j;
    int rc =
        stream_store_create_begin(s, name, partitions, overrides, internal, &j, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_store_job_run(j);
    return stream_store_job_finish(j, out, errbuf, errbuf_len);
}

int stream_store_delete_topic(stream_store *s, const char *name, char *errbuf, size_t errbuf_len)
{
    stream_store_job *j;
    int rc = stream_store_delete_begin(s, name, NULL, &j, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_store_job_run(j);
    return stream_store_job_finish(j, NULL, errbuf, errbuf_len);
}

int stream_store_add_partitions(stream_store *s, const char *name, int32_t partitions,
                                stream_topic **out, char *errbuf, size_t errbuf_len)
{
    if (out != NULL)
        *out = NULL;
    stream_store_job *j;
    int rc = stream_store_add_partitions_begin(s, name, partitions, &j, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_store_job_run(j);
    return stream_store_job_finish(j, out, errbuf, errbuf_len);
}

/* Gives partitions [0, n) of t the config `lc`. */
static void set_log_configs(stream_topic *t, int32_t n, const stream_log_config *lc)
{
    for (int32_t i = 0; i < n; i++)
        stream_log_set_config(t->partitions[i], lc);
}

int stream_store_alter_topic(stream_store *s, const char *name, const stream_config *overrides,
                             char *errbuf, size_t errbuf_len)
{
    stream_topic *t = name ? stream_store_topic(s, name) : NULL;
    if (t == NULL) {
        stream__errf(errbuf, errbuf_len, "unknown topic '%.249s'", name ? name : "");
        return STREAM_ENOTOPIC;
    }
    if (is_busy(s, name)) {
        /* Its metadata file is being rewritten with the new count. */
        stream__errf(errbuf, errbuf_len, "topic '%s' is getting new partitions; retry", name);
        return STREAM_EAGAIN;
    }
    stream_config *ov;
    int rc = copy_overrides(overrides, &ov, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream_log_config lc;
    stream_config_topic_log_config(s->broker, ov, &lc);
    lc.files = s->files;

    /* The logs first: each either takes the config or keeps its old one, so
     * a refusal is undone before anything is persisted. Then the file; if
     * that fails the logs go back too, and nothing has changed. */
    for (int32_t i = 0; i < t->partition_count; i++) {
        rc = stream_log_set_config(t->partitions[i], &lc);
        if (rc < 0) {
            set_log_configs(t, i, &t->log_config);
            stream__errf(errbuf, errbuf_len, "%s-%d: the log refuses these settings", t->name,
                         (int)i);
            stream_config_free(ov);
            return rc;
        }
    }
    rc = write_meta(s, t->name, t->partition_count, ov, errbuf, errbuf_len);
    if (rc < 0) {
        set_log_configs(t, t->partition_count, &t->log_config);
        stream_config_free(ov);
        return rc;
    }
    stream_config_free(t->overrides);
    t->overrides = ov;
    t->log_config = lc;
    return 0;
}

stream_topic *stream_store_topic(const stream_store *s, const char *name)
{
    if (s == NULL || name == NULL)
        return NULL;
    bool found;
    size_t pos = topic_pos(s, name, &found);
    return found ? s->topics[pos] : NULL;
}

int stream_store_log(const stream_store *s, const char *topic, int32_t partition, stream_log **out)
{
    *out = NULL;
    stream_topic *t = stream_store_topic(s, topic);
    if (t == NULL)
        return STREAM_ENOTOPIC;
    if (partition < 0 || partition >= t->partition_count)
        return STREAM_ENOPART;
    *out = t->partitions[partition];
    return 0;
}

size_t stream_store_topic_count(const stream_store *s)
{
    return s->topic_count;
}

stream_topic *stream_store_topic_at(const stream_store *s, size_t i)
{
    return i < s->topic_count ? s->topics[i] : NULL;
}
