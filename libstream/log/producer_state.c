/*
 * producer_state.c - idempotent producers' sequence state per partition, its
 * snapshots, and the broker's producer id blocks (see producer_state.h for
 * the rules and the file layouts).
 *
 * The state is an open-addressing hash table keyed by producer id (linear
 * probing, at most half full). Entries are only ever removed by expiry,
 * which rebuilds the table, so probing needs no tombstones. Each entry keeps
 * its last batches in a small ring, oldest first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "producer_state.h"
#include "stream/buf.h"
#include "stream/crc32c.h"
#include "stream/error.h"
#include "base/internal.h"

#define SNAP_MAGIC       "SPS1"
#define SNAP_VERSION     1
#define SNAP_SUFFIX      ".snapshot"
#define SNAP_NAME_LEN    (20 + sizeof(SNAP_SUFFIX) - 1)
#define SNAP_HEADER      (4 + 2 + 2 + 8 + 4)
#define SNAP_ENTRY_FIXED (8 + 2 + 1 + 1 + 8)
#define SNAP_BATCH       (4 + 4 + 8 + 4)
#define SEQ_MODULUS      ((int64_t)INT32_MAX + 1)
#define IDS_FILE         "producer-ids"

typedef struct seq_batch {
    int32_t first_seq;         /* baseSequence */
    int32_t last_seq;          /* baseSequence + lastOffsetDelta, wrapped */
    int64_t base_offset;       /* the offset the log gave it */
    int32_t last_offset_delta; /* its last record is base_offset + this */
} seq_batch;

typedef struct entry {
    int64_t producer_id; /* -1: the slot is free */
    int16_t epoch;       /* the producer's epoch on this partition */
    uint8_t nbatches;    /* 1..STREAM__PRODUCER_BATCHES */
    uint8_t head;        /* ring index of the oldest batch */
    int64_t last_update_ms;
    seq_batch batches[STREAM__PRODUCER_BATCHES];
} entry;

struct stream__producer_state {
    entry *slots; /* cap slots, a power of two (or NULL while empty) */
    size_t cap;
    size_t count; /* slots in use; at most cap / 2 */
};

/* ---- sequences ---------------------------------------------------------------- */

/* a + n on the sequence circle [0, 2^31), as Kafka's producers count. */
static int32_t seq_add(int32_t a, int64_t n)
{
    return (int32_t)(((int64_t)a + n) % SEQ_MODULUS);
}

/* How far a lies behind b on the circle: (b - a) mod 2^31. */
static int64_t seq_behind(int32_t a, int32_t b)
{
    return (((int64_t)b - a) % SEQ_MODULUS + SEQ_MODULUS) % SEQ_MODULUS;
}

static const seq_batch *last_batch(const entry *e)
{
    return &e->batches[(e->head + e->nbatches - 1) % STREAM__PRODUCER_BATCHES];
}

static int64_t entry_last_offset(const entry *e)
{
    const seq_batch *b = last_batch(e);
    return b->base_offset + b->last_offset_delta;
}

/* ---- the table ---------------------------------------------------------------- */

static size_t slot_of(int64_t producer_id, size_t cap)
{
    uint64_t h = (uint64_t)producer_id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static entry *find(const stream__producer_state *ps, int64_t producer_id)
{
    if (ps->cap == 0)
        return NULL;
    for (size_t i = slot_of(producer_id, ps->cap);; i = (i + 1) & (ps->cap - 1)) {
        entry *e = &ps->slots[i];
        if (e->producer_id == producer_id)
            return e;
        if (e->producer_id < 0)
            return NULL;
    }
}

/* The free slot where producer_id goes (the table has room). */
static entry *free_slot(stream__producer_state *ps, int64_t producer_id)
{
    size_t i = slot_of(producer_id, ps->cap);
    while (ps->slots[i].producer_id >= 0)
        i = (i + 1) & (ps->cap - 1);
    return &ps->slots[i];
}

/* Makes room for `extra` more entries, keeping the table at most half full. */
static int reserve(stream__producer_state *ps, size_t extra)
{
    if ((ps->count + extra) * 2 <= ps->cap)
        return 0;
    size_t cap = ps->cap ? ps->cap : 16;
    while ((ps->count + extra) * 2 > cap)
        cap *= 2;
    entry *slots = malloc(cap * sizeof *slots);
    if (slots == NULL)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        slots[i].producer_id = -1;
    entry *old = ps->slots;
    size_t old_cap = ps->cap;
    ps->slots = slots;
    ps->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].producer_id >= 0)
            *free_slot(ps, old[i].producer_id) = old[i];
    free(old);
    return 0;
}

int stream__producer_state_reserve(stream__producer_state *ps)
{
    return reserve(ps, 1);
}

stream__producer_state *stream__producer_state_new(void)
{
    return calloc(1, sizeof(stream__producer_state));
}

void stream__producer_state_free(stream__producer_state *ps)
{
    if (ps == NULL)
        return;
    free(ps->slots);
    free(ps);
}

void stream__producer_state_clear(stream__producer_state *ps)
{
    for (size_t i = 0; i < ps->cap; i++)
        ps->slots[i].producer_id = -1;
    ps->count = 0;
}

size_t stream__producer_state_count(const stream__producer_state *ps)
{
    return ps->count;
}

/* ---- judging and recording batches ------------------------------------------- */

int stream__producer_state_check(stream__producer_state *ps, const stream_batch_info *info,
                                 int64_t *dup_base_offset, char *errbuf, size_t errbuf_len)
{
    int64_t pid = info->producer_id;
    int32_t first = info->base_sequence;
    if (pid < 0 || info->producer_epoch < 0 || first < 0) {
        stream__errf(errbuf, errbuf_len,
                     "idempotent batch with producerId %" PRId64
                     ", producerEpoch %d, baseSequence %d",
                     pid, info->producer_epoch, first);
        return STREAM_ECORRUPT;
    }
    int32_t last = seq_add(first, info->last_offset_delta);
    const entry *e = find(ps, pid);
    if (e == NULL) {
        if (first != 0) {
            stream__errf(errbuf, errbuf_len,
                         "producer %" PRId64 " is not known on this partition (never seen, or "
                         "expired); its first batch must start at sequence 0, not %d",
                         pid, first);
            return STREAM_EUNKNOWNPRODUCER;
        }
        return reserve(ps, 1);
    }
    if (info->producer_epoch < e->epoch) {
        stream__errf(errbuf, errbuf_len,
                     "producer %" PRId64 " epoch %d is older than its epoch %d here", pid,
                     info->producer_epoch, e->epoch);
        return STREAM_EPRODUCERFENCED;
    }
    if (info->producer_epoch > e->epoch) {
        if (first != 0) {
            stream__errf(errbuf, errbuf_len,
                         "producer %" PRId64 " epoch %d: a new epoch starts at sequence 0, not %d",
                         pid, info->producer_epoch, first);
            return STREAM_EOUTOFORDERSEQ;
        }
        return 0;
    }
    for (uint8_t i = 0; i < e->nbatches; i++) {
        const seq_batch *b = &e->batches[(e->head + i) % STREAM__PRODUCER_BATCHES];
        if (b->first_seq == first && b->last_seq == last) {
            *dup_base_offset = b->base_offset;
            return STREAM__PRODUCER_DUPLICATE;
        }
    }
    int32_t known = last_batch(e)->last_seq;
    if (first == seq_add(known, 1))
        return 0;
    if (seq_behind(last, known) < SEQ_MODULUS / 2 &&
        seq_behind(first, known) >= seq_behind(last, known)) {
        stream__errf(errbuf, errbuf_len,
                     "producer %" PRId64 " sequences %d..%d were appended before (the last is %d), "
                     "too long ago to know their offset",
                     pid, first, last, known);
        return STREAM_EDUPLICATESEQ;
    }
    stream__errf(errbuf, errbuf_len,
                 "producer %" PRId64 " epoch %d: expected sequence %d, got %d (an earlier batch is "
                 "missing)",
                 pid, e->epoch, seq_add(known, 1), first);
    return STREAM_EOUTOFORDERSEQ;
}

int stream__producer_state_update(stream__producer_state *ps, const stream_batch_info *info,
                                  int64_t now_ms)
{
    if (info->producer_id < 0)
        return 0;
    entry *e = find(ps, info->producer_id);
    if (e == NULL) {
        if (reserve(ps, 1) != 0)
            return STREAM_ENOMEM;
        e = free_slot(ps, info->producer_id);
        e->producer_id = info->producer_id;
        e->nbatches = 0;
        ps->count++;
    }
    if (e->nbatches == 0 || e->epoch != info->producer_epoch) {
        e->epoch = info->producer_epoch;
        e->nbatches = 0;
        e->head = 0;
    }
    seq_batch nb = {
        .first_seq = info->base_sequence,
        .last_seq = seq_add(info->base_sequence, info->last_offset_delta),
        .base_offset = info->base_offset,
        .last_offset_delta = info->last_offset_delta,
    };
    if (e->nbatches == STREAM__PRODUCER_BATCHES) {
        e->batches[e->head] = nb; /* the oldest makes way */
        e->head = (uint8_t)((e->head + 1) % STREAM__PRODUCER_BATCHES);
    } else {
        e->batches[(e->head + e->nbatches) % STREAM__PRODUCER_BATCHES] = nb;
        e->nbatches++;
    }
    e->last_update_ms = now_ms;
    return 0;
}

size_t stream__producer_state_expire(stream__producer_state *ps, int64_t log_start_offset,
                                     int64_t now_ms, int64_t max_idle_ms)
{
    size_t gone = 0;
    for (size_t i = 0; i < ps->cap; i++) {
        const entry *e = &ps->slots[i];
        if (e->producer_id >= 0 && (entry_last_offset(e) < log_start_offset ||
                                    (max_idle_ms >= 0 && now_ms - e->last_update_ms > max_idle_ms)))
            gone++;
    }
    if (gone == 0)
        return 0;
    /* Linear probing without tombstones: the survivors go into a new table
     * (out of memory: everyone stays until the next pass). */
    entry *slots = malloc(ps->cap * sizeof *slots);
    if (slots == NULL)
        return 0;
    for (size_t i = 0; i < ps->cap; i++)
        slots[i].producer_id = -1;
    entry *old = ps->slots;
    ps->slots = slots;
    ps->count = 0;
    for (size_t i = 0; i < ps->cap; i++) {
        const entry *e = &old[i];
        if (e->producer_id < 0 || entry_last_offset(e) < log_start_offset ||
            (max_idle_ms >= 0 && now_ms - e->last_update_ms > max_idle_ms))
            continue;
        *free_slot(ps, e->producer_id) = *e;
        ps->count++;
    }
    free(old);
    return gone;
}

/* ---- snapshots ------------------------------------------------------------------ */

static bool snapshot_name(const char *name, int64_t *offset)
{
    if (strlen(name) != SNAP_NAME_LEN || strcmp(name + 20, SNAP_SUFFIX) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - (name[i] - '0')) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *offset = v;
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every snapshot offset in dirfd, sorted, in a malloc'ed array. */
static int list_all(int dirfd, int64_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int rc = stream_err_from_errno(errno);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    rewinddir(d);
    int64_t *v = NULL;
    int cap = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t off;
        if (!snapshot_name(de->d_name, &off))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            int64_t *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (nv == NULL) {
                rc = STREAM_ENOMEM;
                break;
            }
            v = nv;
        }
        v[(*n)++] = off;
    }
    closedir(d);
    if (rc != 0) {
        free(v);
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(v, (size_t)*n, sizeof *v, cmp_i64);
    *out = v;
    return 0;
}

int stream__producer_state_list_snapshots(int dirfd, int64_t *offsets, int max)
{
    int64_t *v;
    int n;
    int rc = list_all(dirfd, &v, &n);
    if (rc != 0)
        return rc;
    int k = n < max ? n : max;
    if (k > 0)
        memcpy(offsets, v, (size_t)k * sizeof *v);
    free(v);
    return k;
}

static void snap_file(char *buf, size_t n, int64_t offset)
{
    snprintf(buf, n, "%020" PRId64 SNAP_SUFFIX, offset);
}

static void unlink_snapshot(int dirfd, int64_t offset)
{
    char name[64];
    snap_file(name, sizeof name, offset);
    unlinkat(dirfd, name, 0);
}

static void encode(const stream__producer_state *ps, int64_t offset, stream_buf *out)
{
    stream_buf_put(out, SNAP_MAGIC, 4);
    stream_buf_put_be16(out, SNAP_VERSION);
    stream_buf_put_be16(out, 0);
    stream_buf_put_be64(out, (uint64_t)offset);
    stream_buf_put_be32(out, (uint32_t)ps->count);
    for (size_t i = 0; i < ps->cap; i++) {
        const entry *e = &ps->slots[i];
        if (e->producer_id < 0)
            continue;
        stream_buf_put_be64(out, (uint64_t)e->producer_id);
        stream_buf_put_be16(out, (uint16_t)e->epoch);
        stream_buf_put_u8(out, e->nbatches);
        stream_buf_put_u8(out, 0);
        stream_buf_put_be64(out, (uint64_t)e->last_update_ms);
        for (uint8_t k = 0; k < e->nbatches; k++) {
            const seq_batch *b = &e->batches[(e->head + k) % STREAM__PRODUCER_BATCHES];
            stream_buf_put_be32(out, (uint32_t)b->first_seq);
            stream_buf_put_be32(out, (uint32_t)b->last_seq);
            stream_buf_put_be64(out, (uint64_t)b->base_offset);
            stream_buf_put_be32(out, (uint32_t)b->last_offset_delta);
        }
    }
    if (stream_buf_ok(out) == 0)
        stream_buf_put_be32(out, stream_crc32c(0, out->data, out->len));
}

/* Decodes a snapshot's bytes into ps (empty). Returns 0 or STREAM_ECORRUPT /
 * STREAM_ENOMEM; ps may hold part of it on error (the caller clears). */
static int decode(stream__producer_state *ps, const uint8_t *p, size_t len, int64_t offset)
{
    if (len < SNAP_HEADER + 4 || stream_load_be32(p + len - 4) != stream_crc32c(0, p, len - 4) ||
        memcmp(p, SNAP_MAGIC, 4) != 0)
        return STREAM_ECORRUPT;
    stream_reader r;
    stream_reader_init(&r, p + 4, len - 8);
    uint16_t version, reserved;
    uint64_t off;
    uint32_t count;
    if (stream_get_be16(&r, &version) != 0 || stream_get_be16(&r, &reserved) != 0 ||
        stream_get_be64(&r, &off) != 0 || stream_get_be32(&r, &count) != 0 ||
        version != SNAP_VERSION || (int64_t)off != offset ||
        count > stream_reader_left(&r) / (SNAP_ENTRY_FIXED + SNAP_BATCH))
        return STREAM_ECORRUPT;
    if (reserve(ps, count) != 0)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t pid, ts;
        uint16_t epoch;
        uint8_t nb, pad;
        if (stream_get_be64(&r, &pid) != 0 || stream_get_be16(&r, &epoch) != 0 ||
            stream_get_u8(&r, &nb) != 0 || stream_get_u8(&r, &pad) != 0 ||
            stream_get_be64(&r, &ts) != 0 || (int64_t)pid < 0 || (int16_t)epoch < 0 || nb < 1 ||
            nb > STREAM__PRODUCER_BATCHES || find(ps, (int64_t)pid) != NULL)
            return STREAM_ECORRUPT;
        entry *e = free_slot(ps, (int64_t)pid);
        entry ne = {.producer_id = (int64_t)pid,
                    .epoch = (int16_t)epoch,
                    .nbatches = nb,
                    .last_update_ms = (int64_t)ts};
        for (uint8_t k = 0; k < nb; k++) {
            uint32_t fs, ls, delta;
            uint64_t base;
            if (stream_get_be32(&r, &fs) != 0 || stream_get_be32(&r, &ls) != 0 ||
                stream_get_be64(&r, &base) != 0 || stream_get_be32(&r, &delta) != 0 ||
                (int32_t)fs < 0 || (int32_t)ls < 0 || (int32_t)delta < 0 || (int64_t)base < 0 ||
                (int64_t)base > INT64_MAX - 1 - (int32_t)delta)
                return STREAM_ECORRUPT;
            ne.batches[k] = (seq_batch){(int32_t)fs, (int32_t)ls, (int64_t)base, (int32_t)delta};
        }
        *e = ne;
        ps->count++;
    }
    return stream_reader_left(&r) == 0 ? 0 : STREAM_ECORRUPT;
}

/* stream__file_replace_at, with the two fsyncs only when `sync`. */
static int replace_at(int dirfd, const char *tmp, const char *name, const uint8_t *data, size_t len,
                      bool sync)
{
    int rc = 0;
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return stream_err_from_errno(errno);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = stream_err_from_errno(w < 0 ? errno : ENOSPC);
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && sync && fsync(fd) != 0)
        rc = stream_err_from_errno(errno);
    close(fd);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = stream_err_from_errno(errno);
    if (rc == 0 && sync && fsync(dirfd) != 0)
        rc = stream_err_from_errno(errno);
    if (rc != 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int stream__file_replace_at(int dirfd, const char *tmp, const char *name, const uint8_t *data,
                            size_t len)
{
    return replace_at(dirfd, tmp, name, data, len, true);
}

int stream__producer_state_write_snapshot(const stream__producer_state *ps, int dirfd,
                                          int64_t offset)
{
    return stream__producer_state_write_snapshot_at(ps, dirfd, offset, true);
}

int stream__producer_state_write_snapshot_at(const stream__producer_state *ps, int dirfd,
                                             int64_t offset, bool sync)
{
    stream_buf buf = STREAM_BUF_INIT;
    encode(ps, offset, &buf);
    if (stream_buf_ok(&buf) != 0) {
        stream_buf_release(&buf);
        return STREAM_ENOMEM;
    }
    char name[64], tmp[80];
    snap_file(name, sizeof name, offset);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    /* Durable as every other metadata file: the older snapshots are
     * deleted below, so this one must survive a power loss, or open would
     * replay the whole log. */
    int rc = replace_at(dirfd, tmp, name, buf.data, buf.len, sync);
    stream_buf_release(&buf);
    if (rc != 0)
        return rc;
    /* Keep this one and the one before it. */
    int64_t *v;
    int n;
    if (list_all(dirfd, &v, &n) == 0) {
        int kept = 0;
        for (int i = n - 1; i >= 0; i--) {
            if (v[i] > offset)
                continue; /* not ours to judge: load deletes those past the end */
            if (++kept > 2)
                unlink_snapshot(dirfd, v[i]);
        }
        free(v);
    }
    return 0;
}

/* Reads a whole file at dirfd/name into buf. */
static int read_all(int dirfd, const char *name, stream_buf *buf)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return stream_err_from_errno(errno);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = stream_err_from_errno(errno);
    else if (st.st_size > (off_t)1 << 30)
        rc = STREAM_ECORRUPT;
    else if (stream_buf_reserve(buf, (size_t)st.st_size) != 0)
        rc = STREAM_ENOMEM;
    while (rc == 0 && buf->len < (size_t)st.st_size) {
        ssize_t r = read(fd, buf->data + buf->len, (size_t)st.st_size - buf->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? stream_err_from_errno(errno) : STREAM_ECORRUPT;
            break;
        }
        buf->len += (size_t)r;
    }
    close(fd);
    return rc;
}

int stream__producer_state_load(stream__producer_state *ps, int dirfd, int64_t max_offset,
                                int64_t *offset)
{
    *offset = -1;
    stream__producer_state_clear(ps);
    int64_t *v;
    int n;
    int rc = list_all(dirfd, &v, &n);
    if (rc != 0)
        return rc;
    stream_buf buf = STREAM_BUF_INIT;
    bool dropped = false;
    for (int i = n - 1; i >= 0; i--) {
        if (v[i] > max_offset) {
            unlink_snapshot(dirfd, v[i]); /* its batches are gone from the log */
            dropped = true;
            continue;
        }
        if (*offset >= 0)
            break;
        char name[64];
        snap_file(name, sizeof name, v[i]);
        stream_buf_reset(&buf);
        rc = read_all(dirfd, name, &buf);
        if (rc == 0)
            rc = decode(ps, buf.data, buf.len, v[i]);
        if (rc == STREAM_ENOMEM)
            break;
        if (rc != 0) {
            stream__producer_state_clear(ps);
            unlink_snapshot(dirfd, v[i]); /* unreadable: the next one down */
            rc = 0;
            continue;
        }
        *offset = v[i];
    }
    stream_buf_release(&buf);
    free(v);
    /* Offsets past the end are taken again by new batches: a deleted
     * snapshot must not come back after a power loss to describe them. */
    if (dropped)
        (void)fsync(dirfd);
    if (rc != 0)
        stream__producer_state_clear(ps);
    return rc;
}

/* ---- producer ids --------------------------------------------------------------- */

/* Reads "<n>\n" from path: 0 and *v, STREAM_ENOENT when missing, or an error. */
static int read_number(const char *path, int64_t *v)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? STREAM_ENOENT : stream_err_from_errno(errno);
    char text[32];
    ssize_t n = read(fd, text, sizeof text - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return stream_err_from_errno(e);
    if (n < 2 || text[n - 1] != '\n')
        return STREAM_ECORRUPT;
    text[n - 1] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || x < 0)
        return STREAM_ECORRUPT;
    *v = (int64_t)x;
    return 0;
}

/* Replaces path with "<v>\n": temp file, fsync, rename, fsync the directory. */
static int write_number(const char *dir, const char *path, int64_t v)
{
    char tmp[4200], text[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int len = snprintf(text, sizeof text, "%" PRId64 "\n", v);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return stream_err_from_errno(errno);
    int rc = 0;
    if (write(fd, text, (size_t)len) != len || fsync(fd) != 0)
        rc = stream_err_from_errno(errno ? errno : ENOSPC);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = stream_err_from_errno(errno);
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return stream_err_from_errno(errno);
    if (fsync(dfd) != 0)
        rc = stream_err_from_errno(errno);
    close(dfd);
    return rc;
}

int stream__producer_ids_next(stream__producer_ids *ids, const char *data_dir, int64_t *id,
                              char *errbuf, size_t errbuf_len)
{
    char path[4150];
    int w = snprintf(path, sizeof path, "%s/" IDS_FILE, data_dir);
    if (w < 0 || (size_t)w >= sizeof path) {
        stream__errf(errbuf, errbuf_len, "data directory path too long");
        return STREAM_EINVAL;
    }
    if (!ids->loaded) {
        int64_t v = 0;
        int rc = read_number(path, &v);
        if (rc != 0 && rc != STREAM_ENOENT) {
            stream__errf(errbuf, errbuf_len, "cannot read %s: %s", path, stream_strerror(rc));
            return rc;
        }
        ids->next = ids->limit = rc == 0 ? v : 0;
        ids->loaded = true;
    }
    if (ids->next >= ids->limit) {
        if (ids->next > INT64_MAX - STREAM__PRODUCER_ID_BLOCK) {
            stream__errf(errbuf, errbuf_len, "producer ids are used up");
            return STREAM_EINVAL;
        }
        int64_t limit = ids->next + STREAM__PRODUCER_ID_BLOCK;
        int rc = write_number(data_dir, path, limit);
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "cannot write %s: %s", path, stream_strerror(rc));
            return rc;
        }
        ids->limit = limit;
    }
    *id = ids->next++;
    return 0;
}
