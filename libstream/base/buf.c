/*
 * buf.c - the growable writer and bounds-checked reader of buf.h.
 *
 * Byte order is handled here and only here. Writers never fail mid-structure:
 * an allocation failure latches `oom` and drops later writes, so encoders check
 * once at the end. Readers latch their first error the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/buf.h"
#include "stream/error.h"
#include "internal.h"

void stream_buf_init(stream_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void stream_buf_release(stream_buf *b)
{
    free(b->data);
    stream_buf_init(b);
}

void stream_buf_reset(stream_buf *b)
{
    b->len = 0;
    b->oom = false;
}

int stream_buf_reserve(stream_buf *b, size_t extra)
{
    if (b->oom)
        return STREAM_ENOMEM;
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX - b->len) {
        b->oom = true;
        return STREAM_ENOMEM;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return STREAM_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int stream_buf_ok(const stream_buf *b)
{
    return b->oom ? STREAM_ENOMEM : 0;
}

void stream_buf_put(stream_buf *b, const void *p, size_t n)
{
    if (n == 0 || stream_buf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void stream_buf_put_u8(stream_buf *b, uint8_t v)
{
    stream_buf_put(b, &v, 1);
}

void stream_buf_put_be16(stream_buf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    stream_buf_put(b, t, 2);
}

void stream_buf_put_be32(stream_buf *b, uint32_t v)
{
    uint8_t t[4];
    stream_store_be32(t, v);
    stream_buf_put(b, t, 4);
}

void stream_buf_put_be64(stream_buf *b, uint64_t v)
{
    uint8_t t[8];
    stream_store_be64(t, v);
    stream_buf_put(b, t, 8);
}

void stream_buf_put_uvarint(stream_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    stream_buf_put(b, t, n);
}

void stream_buf_put_varint(stream_buf *b, int32_t v)
{
    /* Zigzag: the sign moves to bit 0 so small negatives stay short. */
    uint32_t z = ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
    stream_buf_put_uvarint(b, z);
}

void stream_buf_put_varlong(stream_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    stream_buf_put_uvarint(b, z);
}

void stream_buf_patch_be32(stream_buf *b, size_t at, uint32_t v)
{
    if (at <= b->len && b->len - at >= 4)
        stream_store_be32(b->data + at, v);
}

void stream_buf_patch_be64(stream_buf *b, size_t at, uint64_t v)
{
    if (at <= b->len && b->len - at >= 8)
        stream_store_be64(b->data + at, v);
}

static size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t stream_varint_size(int32_t v)
{
    return uvarint_size(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

size_t stream_varlong_size(int64_t v)
{
    return uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

uint16_t stream_load_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t stream_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t stream_load_be64(const uint8_t *p)
{
    return ((uint64_t)stream_load_be32(p) << 32) | stream_load_be32(p + 4);
}

void stream_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void stream_store_be64(uint8_t *p, uint64_t v)
{
    stream_store_be32(p, (uint32_t)(v >> 32));
    stream_store_be32(p + 4, (uint32_t)v);
}

void stream_reader_init(stream_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->err = 0;
}

size_t stream_reader_left(const stream_reader *r)
{
    return r->err ? 0 : r->len - r->pos;
}

/* Claims n bytes or latches STREAM_ESHORT; returns the start or NULL. */
static const uint8_t *take(stream_reader *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->pos) {
        r->err = STREAM_ESHORT;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

int stream_get_u8(stream_reader *r, uint8_t *out)
{
    const uint8_t *p = take(r, 1);
    *out = p ? p[0] : 0;
    return r->err;
}

int stream_get_be16(stream_reader *r, uint16_t *out)
{
    const uint8_t *p = take(r, 2);
    *out = p ? stream_load_be16(p) : 0;
    return r->err;
}

int stream_get_be32(stream_reader *r, uint32_t *out)
{
    const uint8_t *p = take(r, 4);
    *out = p ? stream_load_be32(p) : 0;
    return r->err;
}

int stream_get_be64(stream_reader *r, uint64_t *out)
{
    const uint8_t *p = take(r, 8);
    *out = p ? stream_load_be64(p) : 0;
    return r->err;
}

/* Reads at most max_bytes groups; more, or bits beyond 64, is corrupt. */
static int get_uvarint(stream_reader *r, uint64_t *out, int max_bytes)
{
    uint64_t v = 0;
    *out = 0;
    for (int i = 0; i < max_bytes; i++) {
        const uint8_t *p = take(r, 1);
        if (p == NULL)
            return r->err;
        v |= (uint64_t)(p[0] & 0x7f) << (7 * i);
        if ((p[0] & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    r->err = STREAM_ECORRUPT;
    return r->err;
}

int stream_get_uvarint(stream_reader *r, uint64_t *out)
{
    return get_uvarint(r, out, 10);
}

int stream_get_varint(stream_reader *r, int32_t *out)
{
    uint64_t z;
    *out = 0;
    if (get_uvarint(r, &z, 5) != 0)
        return r->err;
    if (z > UINT32_MAX) {
        r->err = STREAM_ECORRUPT;
        return r->err;
    }
    uint32_t u = (uint32_t)z;
    *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return 0;
}

int stream_get_varlong(stream_reader *r, int64_t *out)
{
    uint64_t z;
    *out = 0;
    if (get_uvarint(r, &z, 10) != 0)
        return r->err;
    *out = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
    return 0;
}

int stream_get_bytes(stream_reader *r, size_t n, const uint8_t **out)
{
    *out = take(r, n);
    return r->err;
}

int stream_skip(stream_reader *r, size_t n)
{
    take(r, n);
    return r->err;
}

char *stream__strndup(const char *p, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    if (len)
        memcpy(s, p, len);
    s[len] = '\0';
    return s;
}
