/*
 * journal.c - the recent metadata commands (journal.h): a queue of copies
 * in index order, trimmed from the front to a byte budget.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "journal.h"
#include "stream/error.h"
#include "stream/proto.h"

typedef struct entry {
    uint64_t index;
    uint8_t *cmd; /* owned */
    size_t len;
} entry;

struct stream__journal {
    entry *e; /* e[head..n) are kept, oldest first */
    size_t head, n, cap;
    size_t bytes;     /* of the commands kept */
    size_t max_bytes; /* the budget */
    uint64_t base;    /* every command applied after base is kept */
};

stream__journal *stream__journal_new(size_t max_bytes)
{
    stream__journal *j = calloc(1, sizeof(*j));
    if (j != NULL)
        j->max_bytes = max_bytes;
    return j;
}

static void drop_oldest(stream__journal *j)
{
    entry *o = &j->e[j->head++];
    j->base = o->index;
    j->bytes -= o->len;
    free(o->cmd);
    if (j->head == j->n)
        j->head = j->n = 0;
}

void stream__journal_reset(stream__journal *j, uint64_t index)
{
    while (j->head < j->n)
        drop_oldest(j);
    j->base = index;
}

void stream__journal_free(stream__journal *j)
{
    if (j == NULL)
        return;
    stream__journal_reset(j, 0);
    free(j->e);
    free(j);
}

uint64_t stream__journal_base(const stream__journal *j)
{
    return j->base;
}

uint64_t stream__journal_last(const stream__journal *j)
{
    return j->n > j->head ? j->e[j->n - 1].index : j->base;
}

void stream__journal_add(stream__journal *j, uint64_t index, const uint8_t *cmd, size_t len)
{
    if (len > j->max_bytes) {
        stream__journal_reset(j, index);
        return;
    }
    while (j->head < j->n && j->bytes + len > j->max_bytes)
        drop_oldest(j);
    if (j->head > 0 && j->n == j->cap) { /* room at the front: slide down */
        memmove(j->e, j->e + j->head, (j->n - j->head) * sizeof(*j->e));
        j->n -= j->head;
        j->head = 0;
    }
    if (j->n == j->cap) {
        size_t ncap = j->cap ? j->cap * 2 : 256;
        entry *ne = realloc(j->e, ncap * sizeof(*ne));
        if (ne == NULL) {
            stream__journal_reset(j, index);
            return;
        }
        j->e = ne;
        j->cap = ncap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        stream__journal_reset(j, index);
        return;
    }
    memcpy(copy, cmd, len);
    j->e[j->n++] = (entry){index, copy, len};
    j->bytes += len;
}

static int buf_sink(void *data, const char *p, size_t n)
{
    stream_buf *b = data;
    stream_buf_put(b, p, n);
    return b->oom ? -1 : 0;
}

int stream__journal_since(const stream__journal *j, uint64_t since, size_t max_bytes,
                          stream_buf *out)
{
    if (since < j->base)
        return STREAM_ENOENT;
    size_t first = j->head, bytes = 0;
    while (first < j->n && j->e[first].index <= since)
        first++;
    for (size_t i = first; i < j->n; i++)
        bytes += j->e[i].len + 16; /* the index and the bin's header, at most */
    if (bytes > max_bytes)
        return STREAM_ETOOLARGE;
    size_t before = out->len;
    bool was_oom = out->oom;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_sink);
    msgpack_pack_array(&pk, (uint32_t)(j->n - first));
    for (size_t i = first; i < j->n; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, j->e[i].index);
        msgpack_pack_bin(&pk, j->e[i].len);
        msgpack_pack_bin_body(&pk, j->e[i].cmd, j->e[i].len);
    }
    if (out->oom) {
        out->len = before;
        out->oom = was_oom;
        return STREAM_ENOMEM;
    }
    return 0;
}

/* The shape of deltas: an array of [uint index, bin], indexes increasing
 * from above `after`. */
static int check_deltas(const msgpack_object *root, uint64_t after, char *errbuf, size_t errbuf_len)
{
    if (root->type != MSGPACK_OBJECT_ARRAY)
        return stream__fail(STREAM_ECORRUPT, errbuf, errbuf_len, "metadata deltas: not an array");
    uint64_t last = after;
    for (uint32_t i = 0; i < root->via.array.size; i++) {
        const msgpack_object *d = &root->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_ARRAY || d->via.array.size != 2 ||
            d->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            d->via.array.ptr[1].type != MSGPACK_OBJECT_BIN)
            return stream__fail(STREAM_ECORRUPT, errbuf, errbuf_len,
                                "metadata deltas: entry %u is not [index, command]", (unsigned)i);
        uint64_t index = d->via.array.ptr[0].via.u64;
        if (index <= last)
            return stream__fail(STREAM_ECORRUPT, errbuf, errbuf_len,
                                "metadata deltas: entry %u has index %llu, not above %llu",
                                (unsigned)i, (unsigned long long)index, (unsigned long long)last);
        last = index;
    }
    return 0;
}

int stream__journal_apply(stream__meta *md, const uint8_t *p, size_t len, char *errbuf,
                          size_t errbuf_len)
{
    stream_msg msg;
    stream_msg_init(&msg);
    int rc = stream_msg_parse_object(p, len, &msg, errbuf, errbuf_len);
    if (rc == STREAM_ENOMEM)
        return rc;
    if (rc < 0) {
        stream_msg_release(&msg);
        return STREAM_ECORRUPT;
    }
    rc = check_deltas(&msg.root, stream__meta_applied_index(md), errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && i < msg.root.via.array.size; i++) {
        const msgpack_object *d = msg.root.via.array.ptr[i].via.array.ptr;
        if (stream__meta_apply(md, (const uint8_t *)d[1].via.bin.ptr, d[1].via.bin.size,
                               d[0].via.u64) == STREAM_ENOMEM)
            rc = STREAM_ENOMEM;
    }
    stream_msg_release(&msg);
    return rc;
}
