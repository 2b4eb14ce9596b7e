/*
 * proto.c - the native protocol's codec (see proto.h and share/doc/protocol.md).
 *
 * The idea: bytes from a peer are hostile, and msgpack-c trusts them more
 * than we do. Its unpacker allocates a container's element array from the
 * count in the header (a 5-byte "array of 4 billion" asks for ~100 GB), nests
 * as deep as its stack allows, and happily stops before trailing garbage. So
 * a frame passes two gates before msgpack-c sees it: the frame reader checks
 * the 4-byte length before buffering a payload byte, and stream_msg_parse
 * walks the payload once without allocating, proving it is exactly one map
 * whose every container announces no more elements than bytes remain, within
 * the depth and object-count limits. Only then does msgpack_unpack build the
 * tree, and its allocations are bounded by the payload's size.
 *
 * Decoding is zero-copy (str and bin objects point into the frame) and the
 * zone is cleared and reused per message; encoding appends straight into a
 * stream_buf through a msgpack_packer write callback, so a connection's
 * responses can accumulate in one buffer and leave in one write.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/proto.h"
#include "base/internal.h"

/* Reader buffer sizes: the default read size, and the default capacity above
 * which a mostly empty buffer is given back after a large frame. */
#define READER_CHUNK        65536
#define READER_SHRINK_ABOVE (4 * READER_CHUNK)

/* Longest excerpt of peer-supplied text quoted in an error message. */
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

/* ---- operations ---------------------------------------------------------- */

static const struct {
    const char *name;
    int since;
} op_table[STREAM_OP__COUNT] = {[STREAM_OP_UNKNOWN] = {"unknown", 0},
#define OP_ROW(name, wire, since) [STREAM_OP_##name] = {wire, since},
                                STREAM_OP_MAP(OP_ROW)
#undef OP_ROW
};

stream_op stream_op_from_name(const char *name, size_t len)
{
    for (int op = 1; op < STREAM_OP__COUNT; op++) {
        const char *w = op_table[op].name;
        if (strlen(w) == len && memcmp(w, name, len) == 0)
            return (stream_op)op;
    }
    return STREAM_OP_UNKNOWN;
}

const char *stream_op_name(stream_op op)
{
    if ((int)op <= 0 || (int)op >= STREAM_OP__COUNT)
        return "unknown";
    return op_table[op].name;
}

int stream_op_since_version(stream_op op)
{
    if ((int)op <= 0 || (int)op >= STREAM_OP__COUNT)
        return 0;
    return op_table[op].since;
}

bool stream_err_retriable(int err)
{
    switch (err) {
    case STREAM_ETIMEDOUT:
    case STREAM_ENOTLEADER:
    case STREAM_EAGAIN:
    case STREAM_ECLOSED:
    case STREAM_ECONNREFUSED:
    case STREAM_ECONNRESET:
    case STREAM_ENOTCOORDINATOR:
        return true;
    default:
        return false;
    }
}

/* ---- reading frames ------------------------------------------------------ */

void stream_frame_reader_init(stream_frame_reader *fr, size_t max_frame_bytes)
{
    memset(fr, 0, sizeof *fr);
    fr->max_frame_bytes = max_frame_bytes > UINT32_MAX ? UINT32_MAX : max_frame_bytes;
    fr->keep = READER_SHRINK_ABOVE;
}

void stream_frame_reader_keep(stream_frame_reader *fr, size_t bytes)
{
    fr->keep = bytes > READER_SHRINK_ABOVE ? bytes : READER_SHRINK_ABOVE;
}

void stream_frame_reader_release(stream_frame_reader *fr)
{
    free(fr->data);
    size_t max = fr->max_frame_bytes, keep = fr->keep;
    stream_frame_reader_init(fr, max);
    fr->keep = keep;
}

size_t stream_frame_reader_pending(const stream_frame_reader *fr)
{
    return fr->len - fr->start;
}

/* Moves the pending bytes to the front, and gives memory back when a large
 * frame has left a buffer over `keep` bytes mostly empty. Invariant kept:
 * start <= scan. */
static void reader_compact(stream_frame_reader *fr, size_t keep)
{
    if (fr->start > 0) {
        size_t n = fr->len - fr->start;
        if (n > 0)
            memmove(fr->data, fr->data + fr->start, n);
        fr->len = n;
        fr->scan -= fr->start;
        fr->start = 0;
    }
    if (fr->cap > keep && fr->len < fr->cap / 4) {
        size_t cap = fr->len * 2 > READER_CHUNK ? fr->len * 2 : READER_CHUNK;
        uint8_t *p = realloc(fr->data, cap);
        if (p != NULL) { /* keeping the larger buffer is harmless */
            fr->data = p;
            fr->cap = cap;
        }
    }
}

void stream_frame_reader_trim(stream_frame_reader *fr)
{
    reader_compact(fr, READER_SHRINK_ABOVE);
    fr->prepared = 0; /* the space handed out may be gone: a _commit now fails */
}

/* Ensures `extra` free bytes after len. Grows geometrically, from what was
 * actually fed, never from an announced frame length. */
static int reader_reserve(stream_frame_reader *fr, size_t extra)
{
    if (extra <= fr->cap - fr->len)
        return 0;
    if (extra > SIZE_MAX / 2 - fr->len)
        return STREAM_ENOMEM;
    size_t need = fr->len + extra;
    size_t cap = fr->cap ? fr->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(fr->data, cap);
    if (p == NULL)
        return STREAM_ENOMEM;
    fr->data = p;
    fr->cap = cap;
    return 0;
}

/* Checks every length prefix that is complete in the buffer and not checked
 * yet. On a bad one the bytes after it are dropped and the error latched. */
static int reader_check(stream_frame_reader *fr, char *errbuf, size_t errbuf_len)
{
    while (fr->scan <= fr->len && fr->len - fr->scan >= STREAM_FRAME_HEADER_SIZE) {
        uint32_t n = stream_load_be32(fr->data + fr->scan);
        if (n == 0 || n > fr->max_frame_bytes) {
            fr->refused_len = n;
            fr->len = fr->scan + STREAM_FRAME_HEADER_SIZE;
            if (n == 0)
                fr->err =
                    stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                                 "frame with length 0 (a frame holds one map of 1 byte or more)");
            else
                fr->err =
                    stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                                 "frame of %" PRIu32 " bytes exceeds the maximum of %zu bytes", n,
                                 fr->max_frame_bytes);
            return fr->err;
        }
        fr->scan += STREAM_FRAME_HEADER_SIZE + (size_t)n;
    }
    return 0;
}

int stream_frame_reader_feed(stream_frame_reader *fr, const void *p, size_t n, char *errbuf,
                             size_t errbuf_len)
{
    const uint8_t *in = p;
    if (fr->err)
        return fr->err;
    reader_compact(fr, fr->keep);
    /* Copy up to the end of the current payload or length prefix at a time,
     * so a bad prefix is caught before a byte behind it is stored. */
    while (n > 0) {
        size_t take;
        if (fr->len < fr->scan)
            take = fr->scan - fr->len; /* rest of a checked frame's payload */
        else
            take = fr->scan + STREAM_FRAME_HEADER_SIZE - fr->len; /* rest of a prefix */
        if (take > n)
            take = n;
        if (reader_reserve(fr, take) != 0) {
            fr->err =
                stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory buffering a frame");
            return fr->err;
        }
        memcpy(fr->data + fr->len, in, take);
        fr->len += take;
        in += take;
        n -= take;
        int rc = reader_check(fr, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int stream_frame_reader_prepare(stream_frame_reader *fr, size_t want, uint8_t **p, size_t *avail)
{
    *p = NULL;
    *avail = 0;
    fr->prepared = 0;
    if (fr->err)
        return fr->err;
    if (want == 0)
        want = READER_CHUNK;
    reader_compact(fr, fr->keep);
    if (reader_reserve(fr, want) != 0)
        return STREAM_ENOMEM;
    *p = fr->data + fr->len;
    *avail = fr->prepared = fr->cap - fr->len;
    return 0;
}

int stream_frame_reader_commit(stream_frame_reader *fr, size_t n, char *errbuf, size_t errbuf_len)
{
    if (fr->err)
        return fr->err;
    if (n > fr->prepared)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "commit of %zu bytes exceeds the %zu prepared", n, fr->prepared);
    fr->prepared -= n;
    fr->len += n;
    return reader_check(fr, errbuf, errbuf_len);
}

int stream_frame_reader_next(stream_frame_reader *fr, const uint8_t **payload, size_t *len)
{
    *payload = NULL;
    *len = 0;
    /* start < scan means the prefix at start has been checked. */
    if (fr->start < fr->scan && fr->len - fr->start >= STREAM_FRAME_HEADER_SIZE) {
        size_t n = stream_load_be32(fr->data + fr->start);
        if (n <= fr->len - fr->start - STREAM_FRAME_HEADER_SIZE) {
            *payload = fr->data + fr->start + STREAM_FRAME_HEADER_SIZE;
            *len = n;
            fr->start += STREAM_FRAME_HEADER_SIZE + n;
            return 1;
        }
    }
    if (fr->err && fr->start == fr->scan)
        return fr->err;
    return 0;
}

/* ---- decoding ------------------------------------------------------------ */

void stream_msg_init(stream_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->max_depth = STREAM_MSG_DEFAULT_MAX_DEPTH;
    msg->max_objects = STREAM_MSG_DEFAULT_MAX_OBJECTS;
}

void stream_msg_release(stream_msg *msg)
{
    if (msg->zone_ready)
        msgpack_zone_destroy(&msg->zone);
    int depth = msg->max_depth;
    size_t objects = msg->max_objects;
    stream_msg_init(msg);
    msg->max_depth = depth;
    msg->max_objects = objects;
}

/* The type bytes 0xc0..0xdf: a fixed number of bytes after the type byte,
 * or a big-endian length field of `width` bytes (whose value is added to
 * `fixed` for str/bin/ext, or is the element count of an array or map). */
enum { FORM_SCALAR, FORM_ARRAY, FORM_MAP, FORM_INVALID };
static const struct long_form {
    uint8_t kind;  /* FORM_* */
    uint8_t fixed; /* bytes always present after the type byte and length */
    uint8_t width; /* bytes of the length field, 0 if none */
} long_forms[32] = {
    {FORM_SCALAR, 0, 0},  /* c0 nil */
    {FORM_INVALID, 0, 0}, /* c1 never used */
    {FORM_SCALAR, 0, 0},  /* c2 false */
    {FORM_SCALAR, 0, 0},  /* c3 true */
    {FORM_SCALAR, 0, 1},  /* c4 bin8 */
    {FORM_SCALAR, 0, 2},  /* c5 bin16 */
    {FORM_SCALAR, 0, 4},  /* c6 bin32 */
    {FORM_SCALAR, 1, 1},  /* c7 ext8: length, type, data */
    {FORM_SCALAR, 1, 2},  /* c8 ext16 */
    {FORM_SCALAR, 1, 4},  /* c9 ext32 */
    {FORM_SCALAR, 4, 0},  /* ca float32 */
    {FORM_SCALAR, 8, 0},  /* cb float64 */
    {FORM_SCALAR, 1, 0},  /* cc uint8 */
    {FORM_SCALAR, 2, 0},  /* cd uint16 */
    {FORM_SCALAR, 4, 0},  /* ce uint32 */
    {FORM_SCALAR, 8, 0},  /* cf uint64 */
    {FORM_SCALAR, 1, 0},  /* d0 int8 */
    {FORM_SCALAR, 2, 0},  /* d1 int16 */
    {FORM_SCALAR, 4, 0},  /* d2 int32 */
    {FORM_SCALAR, 8, 0},  /* d3 int64 */
    {FORM_SCALAR, 2, 0},  /* d4 fixext1: type, 1 byte */
    {FORM_SCALAR, 3, 0},  /* d5 fixext2 */
    {FORM_SCALAR, 5, 0},  /* d6 fixext4 */
    {FORM_SCALAR, 9, 0},  /* d7 fixext8 */
    {FORM_SCALAR, 17, 0}, /* d8 fixext16 */
    {FORM_SCALAR, 0, 1},  /* d9 str8 */
    {FORM_SCALAR, 0, 2},  /* da str16 */
    {FORM_SCALAR, 0, 4},  /* db str32 */
    {FORM_ARRAY, 0, 2},   /* dc array16 */
    {FORM_ARRAY, 0, 4},   /* dd array32 */
    {FORM_MAP, 0, 2},     /* de map16 */
    {FORM_MAP, 0, 4},     /* df map32 */
};

/*
 * The allocation-free gate described at the top. left[d] counts the objects
 * still to read in the container open at nesting d (left[0] is the single
 * top-level object). Every container's element count is checked against the
 * bytes remaining (each element takes at least one byte), which is what
 * bounds msgpack-c's allocation.
 */
static int scan_payload(const uint8_t *p, size_t len, bool want_map, int max_depth,
                        size_t max_objects, char *errbuf, size_t errbuf_len)
{
    uint64_t left[STREAM_MSG_MAX_DEPTH_LIMIT + 1];
    uint64_t objects = 1;
    size_t pos = 0;
    int depth = 0;

    if (len == 0)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len, "empty payload (expected a map)");
    if (want_map && !((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf))
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                            "payload is not a MessagePack map (first byte 0x%02x)", p[0]);
    left[0] = 1;
    for (;;) {
        while (depth > 0 && left[depth] == 0)
            depth--;
        if (left[depth] == 0)
            break;
        left[depth]--;
        if (pos >= len)
            goto truncated;
        size_t at = pos;
        uint8_t b = p[pos++];
        uint64_t items = 0; /* elements of a container (keys and values for a map) */
        uint64_t skip = 0;  /* bytes after the type byte and length field */
        size_t width = 0;   /* bytes of a length field that follows b */
        bool container = false, is_map = false;

        if (b <= 0x7f || b >= 0xe0) {
            /* positive or negative fixint */
        } else if (b <= 0x9f) {
            container = true;
            is_map = b <= 0x8f;
            items = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f; /* fixstr */
        } else {
            const struct long_form *f = &long_forms[b - 0xc0];
            if (f->kind == FORM_INVALID)
                return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                                    "invalid MessagePack byte 0x%02x at offset %zu", b, at);
            container = f->kind == FORM_ARRAY || f->kind == FORM_MAP;
            is_map = f->kind == FORM_MAP;
            width = f->width;
            skip = f->fixed;
        }
        if (width > 0) {
            if (len - pos < width)
                goto truncated;
            uint64_t n = width == 1   ? p[pos]
                         : width == 2 ? stream_load_be16(p + pos)
                                      : stream_load_be32(p + pos);
            pos += width;
            if (container)
                items = n;
            else
                skip += n;
        }
        if (is_map)
            items *= 2;
        if (skip > len - pos)
            goto truncated;
        pos += (size_t)skip;
        if (!container)
            continue;
        if (depth + 1 > max_depth)
            return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                                "nesting deeper than %d levels at offset %zu", max_depth, at);
        if (items > len - pos)
            return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                                "container at offset %zu announces %" PRIu64
                                " elements but only %zu bytes follow",
                                at, items, len - pos);
        objects += items;
        if (objects > max_objects)
            return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                                "message holds more than %zu MessagePack objects", max_objects);
        if (items > 0)
            left[++depth] = items;
    }
    if (pos != len)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                            "%zu trailing bytes after the %s (at offset %zu)", len - pos,
                            want_map ? "map" : "object", pos);
    return 0;

truncated:
    return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                        "MessagePack data truncated at offset %zu", pos);
}

static int parse(const uint8_t *payload, size_t len, bool want_map, stream_msg *msg, char *errbuf,
                 size_t errbuf_len)
{
    msg->valid = false;
    memset(&msg->root, 0, sizeof msg->root);
    int max_depth = msg->max_depth;
    if (max_depth < 1)
        max_depth = 1;
    if (max_depth > STREAM_MSG_MAX_DEPTH_LIMIT)
        max_depth = STREAM_MSG_MAX_DEPTH_LIMIT;
    if (msg->zone_ready) {
        msgpack_zone_clear(&msg->zone);
    } else {
        if (!msgpack_zone_init(&msg->zone, MSGPACK_ZONE_CHUNK_SIZE))
            return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len,
                                "out of memory decoding a message");
        msg->zone_ready = true;
    }
    int rc = scan_payload(payload, len, want_map, max_depth, msg->max_objects, errbuf, errbuf_len);
    if (rc < 0)
        return rc;

    size_t off = 0;
    msgpack_object root;
    msgpack_unpack_return ret = msgpack_unpack((const char *)payload, len, &off, &msg->zone, &root);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory decoding a message");
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len ||
        (want_map && root.type != MSGPACK_OBJECT_MAP))
        /* The scan accepted what msgpack-c refuses (an empty ext, say). */
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                            "malformed MessagePack (unpack code %d)", (int)ret);
    msg->root = root;
    msg->valid = true;
    return 0;
}

int stream_msg_parse(const uint8_t *payload, size_t len, stream_msg *msg, char *errbuf,
                     size_t errbuf_len)
{
    return parse(payload, len, true, msg, errbuf, errbuf_len);
}

int stream_msg_parse_object(const uint8_t *payload, size_t len, stream_msg *msg, char *errbuf,
                            size_t errbuf_len)
{
    return parse(payload, len, false, msg, errbuf, errbuf_len);
}

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

int stream_msg_request(const stream_msg *msg, uint64_t *id, stream_op *op, char *errbuf,
                       size_t errbuf_len)
{
    *id = 0;
    *op = STREAM_OP_UNKNOWN;
    if (!msg->valid)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len, "no request decoded");
    const msgpack_object *o = stream_field_find(&msg->root, "id");
    if (o == NULL)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len, "request has no field 'id'");
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                            "field 'id' must be an unsigned integer, got %s", type_name(o));
    if (o->via.u64 == 0)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len,
                            "field 'id' is 0, which is reserved for connection errors; start at 1");
    *id = o->via.u64;

    const char *name;
    size_t name_len;
    int rc = stream_field_str(&msg->root, "op", &name, &name_len, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    *op = stream_op_from_name(name, name_len);
    if (*op == STREAM_OP_UNKNOWN) {
        char q[QUOTE_MAX + 4];
        return stream__fail(STREAM_EUNKNOWNOP, errbuf, errbuf_len, "unknown op '%s'",
                            quote(q, name, name_len));
    }
    return 0;
}

int stream_msg_response(const stream_msg *msg, uint64_t *id, int *err, const char **text,
                        size_t *text_len, char *errbuf, size_t errbuf_len)
{
    *id = 0;
    *err = 0;
    *text = NULL;
    *text_len = 0;
    if (!msg->valid)
        return stream__fail(STREAM_EPROTO, errbuf, errbuf_len, "no response decoded");
    uint64_t v;
    if (stream_field_uint(&msg->root, "id", UINT64_MAX, id, errbuf, errbuf_len) < 0 ||
        stream_field_uint(&msg->root, "err", INT_MAX, &v, errbuf, errbuf_len) < 0 ||
        stream_field_str_opt(&msg->root, "msg", text, text_len, errbuf, errbuf_len) < 0)
        return STREAM_EPROTO; /* errbuf already names the field */
    *err = -(int)v;
    return 0;
}

/* ---- typed field access -------------------------------------------------- */

const msgpack_object *stream_field_find(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    const msgpack_object_kv *kv = map->via.map.ptr;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &kv[i].key;
        /* msgpack-c gives an empty str a NULL ptr, and memcmp(NULL, .., 0)
         * is undefined: compare only when there are bytes. */
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0))
            return kv[i].val.type == MSGPACK_OBJECT_NIL ? NULL : &kv[i].val;
    }
    return NULL;
}

static int missing(const char *key, char *errbuf, size_t errbuf_len)
{
    return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "missing field '%s'", key);
}

static int mistyped(const char *key, const char *want, const msgpack_object *o, char *errbuf,
                    size_t errbuf_len)
{
    return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "field '%s' must be %s, got %s", key,
                        want, type_name(o));
}

static int int_of(const msgpack_object *o, const char *key, int64_t min, int64_t max, int64_t *out,
                  char *errbuf, size_t errbuf_len)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 <= (uint64_t)INT64_MAX && (int64_t)o->via.u64 >= min &&
            (int64_t)o->via.u64 <= max) {
            *out = (int64_t)o->via.u64;
            return 0;
        }
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field '%s' is out of range: %" PRIu64 " (allowed %" PRId64
                            " to %" PRId64 ")",
                            key, o->via.u64, min, max);
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 >= min && o->via.i64 <= max) {
            *out = o->via.i64;
            return 0;
        }
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field '%s' is out of range: %" PRId64 " (allowed %" PRId64
                            " to %" PRId64 ")",
                            key, o->via.i64, min, max);
    }
    return mistyped(key, "an integer", o, errbuf, errbuf_len);
}

int stream_field_int(const msgpack_object *map, const char *key, int64_t min, int64_t max,
                     int64_t *out, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o = stream_field_find(map, key);
    *out = 0;
    if (o == NULL)
        return missing(key, errbuf, errbuf_len);
    return int_of(o, key, min, max, out, errbuf, errbuf_len);
}

int stream_field_int_opt(const msgpack_object *map, const char *key, int64_t min, int64_t max,
                         int64_t dflt, int64_t *out, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o = stream_field_find(map, key);
    *out = dflt;
    if (o == NULL)
        return 0;
    return int_of(o, key, min, max, out, errbuf, errbuf_len);
}

static int uint_of(const msgpack_object *o, const char *key, uint64_t max, uint64_t *out,
                   char *errbuf, size_t errbuf_len)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 <= max) {
            *out = o->via.u64;
            return 0;
        }
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field '%s' is out of range: %" PRIu64 " (allowed 0 to %" PRIu64 ")",
                            key, o->via.u64, max);
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field '%s' is out of range: %" PRId64 " (allowed 0 to %" PRIu64 ")",
                            key, o->via.i64, max);
    return mistyped(key, "an unsigned integer", o, errbuf, errbuf_len);
}

int stream_field_uint(const msgpack_object *map, const char *key, uint64_t max, uint64_t *out,
                      char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o = stream_field_find(map, key);
    *out = 0;
    if (o == NULL)
        return missing(key, errbuf, errbuf_len);
    return uint_of(o, key, max, out, errbuf, errbuf_len);
}

int stream_field_uint_opt(const msgpack_object *map, const char *key, uint64_t max, uint64_t dflt,
                          uint64_t *out, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o = stream_field_find(map, key);
    *out = dflt;
    if (o == NULL)
        return 0;
    return uint_of(o, key, max, out, errbuf, errbuf_len);
}

int stream_field_bool(const msgpack_object *map, const char *key, bool *out, char *errbuf,
                      size_t errbuf_len)
{
    const msgpack_object *o = stream_field_find(map, key);
    *out = false;
    if (o == NULL)
        return missing(key, errbuf, errbuf_len);
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return mistyped(key, "a bool", o, errbuf, errbuf_len);
    *out = o->via.boolean;
    return 0;
}

int stream_field_bool_opt(const msgpack_object *map, const char *key, bool dflt, bool *out,
                          char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o = stream_field_find(map, key);
    *out = dflt;
    if (o == NULL)
        return 0;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return mistyped(key, "a bool", o, errbuf, errbuf_len);
    *out = o->via.boolean;
    return 0;
}

/* Looks up key and checks its type; *o is NULL when absent (not an error
 * here: the caller decides whether absence is). */
static int typed(const msgpack_object *map, const char *key, msgpack_object_type type,
                 const char *want, const msgpack_object **o, char *errbuf, size_t errbuf_len)
{
    *o = stream_field_find(map, key);
    if (*o != NULL && (*o)->type != type) {
        int rc = mistyped(key, want, *o, errbuf, errbuf_len);
        *o = NULL;
        return rc;
    }
    return 0;
}

static int str_field(const msgpack_object *map, const char *key, bool required, const char **p,
                     size_t *len, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o;
    *p = NULL;
    *len = 0;
    int rc = typed(map, key, MSGPACK_OBJECT_STR, "a str", &o, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (o == NULL)
        return required ? missing(key, errbuf, errbuf_len) : 0;
    *p = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int stream_field_str(const msgpack_object *map, const char *key, const char **p, size_t *len,
                     char *errbuf, size_t errbuf_len)
{
    return str_field(map, key, true, p, len, errbuf, errbuf_len);
}

int stream_field_str_opt(const msgpack_object *map, const char *key, const char **p, size_t *len,
                         char *errbuf, size_t errbuf_len)
{
    return str_field(map, key, false, p, len, errbuf, errbuf_len);
}

static int bin_field(const msgpack_object *map, const char *key, bool required, const uint8_t **p,
                     size_t *len, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o;
    *p = NULL;
    *len = 0;
    int rc = typed(map, key, MSGPACK_OBJECT_BIN, "a bin", &o, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (o == NULL)
        return required ? missing(key, errbuf, errbuf_len) : 0;
    *p = (const uint8_t *)o->via.bin.ptr;
    *len = o->via.bin.size;
    return 0;
}

int stream_field_bin(const msgpack_object *map, const char *key, const uint8_t **p, size_t *len,
                     char *errbuf, size_t errbuf_len)
{
    return bin_field(map, key, true, p, len, errbuf, errbuf_len);
}

int stream_field_bin_opt(const msgpack_object *map, const char *key, const uint8_t **p, size_t *len,
                         char *errbuf, size_t errbuf_len)
{
    return bin_field(map, key, false, p, len, errbuf, errbuf_len);
}

static int obj_field(const msgpack_object *map, const char *key, bool required,
                     msgpack_object_type type, const char *want, const msgpack_object **out,
                     char *errbuf, size_t errbuf_len)
{
    int rc = typed(map, key, type, want, out, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (*out == NULL && required)
        return missing(key, errbuf, errbuf_len);
    return 0;
}

int stream_field_array(const msgpack_object *map, const char *key, const msgpack_object **out,
                       char *errbuf, size_t errbuf_len)
{
    return obj_field(map, key, true, MSGPACK_OBJECT_ARRAY, "an array", out, errbuf, errbuf_len);
}

int stream_field_array_opt(const msgpack_object *map, const char *key, const msgpack_object **out,
                           char *errbuf, size_t errbuf_len)
{
    return obj_field(map, key, false, MSGPACK_OBJECT_ARRAY, "an array", out, errbuf, errbuf_len);
}

int stream_field_map(const msgpack_object *map, const char *key, const msgpack_object **out,
                     char *errbuf, size_t errbuf_len)
{
    return obj_field(map, key, true, MSGPACK_OBJECT_MAP, "a map", out, errbuf, errbuf_len);
}

int stream_field_map_opt(const msgpack_object *map, const char *key, const msgpack_object **out,
                         char *errbuf, size_t errbuf_len)
{
    return obj_field(map, key, false, MSGPACK_OBJECT_MAP, "a map", out, errbuf, errbuf_len);
}

/* A str->str map without repeated keys. The duplicate check is quadratic,
 * which the entry limit keeps to at most ~500k comparisons. */
static int strmap_check(const msgpack_object *o, const char *key, char *errbuf, size_t errbuf_len)
{
    const msgpack_object_kv *kv = o->via.map.ptr;
    uint32_t n = o->via.map.size;
    char q[QUOTE_MAX + 4];
    if (n > STREAM_STRMAP_MAX)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field '%s' has %" PRIu32 " entries (at most %d)", key, n,
                            STREAM_STRMAP_MAX);
    for (uint32_t i = 0; i < n; i++) {
        if (kv[i].key.type != MSGPACK_OBJECT_STR)
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "field '%s': keys must be str, got %s", key, type_name(&kv[i].key));
        const msgpack_object_str *k = &kv[i].key.via.str;
        if (kv[i].val.type != MSGPACK_OBJECT_STR)
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "field '%s': value of '%s' must be a str, got %s", key,
                                quote(q, k->ptr, k->size), type_name(&kv[i].val));
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object_str *e = &kv[j].key.via.str;
            if (e->size == k->size && (k->size == 0 || memcmp(e->ptr, k->ptr, k->size) == 0))
                return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                    "field '%s': key '%s' appears twice", key,
                                    quote(q, k->ptr, k->size));
        }
    }
    return 0;
}

static int strmap_field(const msgpack_object *map, const char *key, bool required,
                        const msgpack_object **out, char *errbuf, size_t errbuf_len)
{
    int rc = obj_field(map, key, required, MSGPACK_OBJECT_MAP, "a map", out, errbuf, errbuf_len);
    if (rc < 0 || *out == NULL)
        return rc;
    rc = strmap_check(*out, key, errbuf, errbuf_len);
    if (rc < 0)
        *out = NULL;
    return rc;
}

int stream_field_strmap(const msgpack_object *map, const char *key, const msgpack_object **out,
                        char *errbuf, size_t errbuf_len)
{
    return strmap_field(map, key, true, out, errbuf, errbuf_len);
}

int stream_field_strmap_opt(const msgpack_object *map, const char *key, const msgpack_object **out,
                            char *errbuf, size_t errbuf_len)
{
    return strmap_field(map, key, false, out, errbuf, errbuf_len);
}

static int elem(const msgpack_object *array, size_t i, const char *array_name,
                msgpack_object_type type, const char *want, const msgpack_object **out,
                char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    if (array == NULL || array->type != MSGPACK_OBJECT_ARRAY || i >= array->via.array.size)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "%s[%zu]: no such element",
                            array_name, i);
    const msgpack_object *o = &array->via.array.ptr[i];
    if (o->type != type)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "%s[%zu] must be %s, got %s",
                            array_name, i, want, type_name(o));
    *out = o;
    return 0;
}

int stream_elem_map(const msgpack_object *array, size_t i, const char *array_name,
                    const msgpack_object **out, char *errbuf, size_t errbuf_len)
{
    return elem(array, i, array_name, MSGPACK_OBJECT_MAP, "a map", out, errbuf, errbuf_len);
}

int stream_elem_str(const msgpack_object *array, size_t i, const char *array_name, const char **p,
                    size_t *len, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *o;
    *p = NULL;
    *len = 0;
    int rc = elem(array, i, array_name, MSGPACK_OBJECT_STR, "a str", &o, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    *p = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

bool stream_str_eq(const char *p, size_t len, const char *s)
{
    return strlen(s) == len && (len == 0 || memcmp(p, s, len) == 0);
}

int stream_group_name_check(const char *name, size_t len, char *errbuf, size_t errbuf_len)
{
    char q[QUOTE_MAX + 4];
    if (len == 0)
        return stream__fail(STREAM_EBADGROUP, errbuf, errbuf_len, "group name is empty");
    if (len > STREAM_GROUP_NAME_MAX)
        return stream__fail(STREAM_EBADGROUP, errbuf, errbuf_len,
                            "group name '%s' is %zu bytes long (at most %d)", quote(q, name, len),
                            len, STREAM_GROUP_NAME_MAX);
    /* Same grammar as topics: reuse the check, keep only its verdict. */
    if (stream_topic_name_check(name, len, NULL, 0) != 0)
        return stream__fail(STREAM_EBADGROUP, errbuf, errbuf_len,
                            "group name '%s' is invalid (allowed: letters, digits, '.', '_', '-'; "
                            "not '.' or '..')",
                            quote(q, name, len));
    return 0;
}

/* ---- create_partitions ---------------------------------------------------- */

int stream_grow_entry(const msgpack_object *topics, uint32_t i, const char **name, size_t *len,
                      int64_t *count, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *t;
    int rc = stream_elem_map(topics, i, "topics", &t, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_str(t, "name", name, len, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(t, "count", INT32_MIN, INT32_MAX, count, errbuf, errbuf_len);
    return rc;
}

int stream_grow_request(const msgpack_object *m, const msgpack_object **topics, bool *validate_only,
                        char *errbuf, size_t errbuf_len)
{
    int rc = stream_field_array(m, "topics", topics, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_bool_opt(m, "validate_only", false, validate_only, errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && i < (*topics)->via.array.size; i++) {
        const char *name;
        size_t len;
        int64_t count;
        rc = stream_grow_entry(*topics, i, &name, &len, &count, errbuf, errbuf_len);
    }
    return rc;
}

int stream_grow_count_check(const char *topic, int32_t current, int64_t count, char *errbuf,
                            size_t errbuf_len)
{
    if (count > current && count <= STREAM_MAX_PARTITIONS)
        return 0;
    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                        count <= current
                            ? "topic '%s' has %d partitions; the new count of partitions must "
                              "be larger, not %lld (partitions are never removed)"
                            : "topic '%s' has %d partitions; the new count of partitions must "
                              "be at most 10000, not %lld",
                        topic, (int)current, (long long)count);
}

/* ---- writing frames ------------------------------------------------------ */

/* msgpack_packer's sink: append to the stream_buf. The buffer latches oom,
 * which stream_frame_finish reports once. */
static int buf_sink(void *data, const char *p, size_t n)
{
    stream_buf *b = data;
    stream_buf_put(b, p, n);
    return b->oom ? -1 : 0;
}

void stream_frame_start(stream_frame *f, stream_buf *out)
{
    f->out = out;
    f->start = out->len;
    f->was_oom = out->oom;
    stream_buf_put_be32(out, 0); /* length, patched by finish */
    msgpack_packer_init(&f->pk, out, buf_sink);
}

void stream_frame_abort(stream_frame *f)
{
    if (f->out->len > f->start)
        f->out->len = f->start;
    if (!f->was_oom)
        f->out->oom = false;
}

int stream_frame_finish(stream_frame *f)
{
    stream_buf *out = f->out;
    if (out->oom) {
        stream_frame_abort(f);
        return STREAM_ENOMEM;
    }
    size_t n = out->len - f->start - STREAM_FRAME_HEADER_SIZE;
    if (n == 0 || n > UINT32_MAX) {
        stream_frame_abort(f);
        return n == 0 ? STREAM_EINVAL : STREAM_ETOOLARGE;
    }
    stream_buf_patch_be32(out, f->start, (uint32_t)n);
    return 0;
}

/* A length over UINT32_MAX would be truncated in the header by msgpack-c;
 * it cannot be framed anyway, and stream_frame_finish refuses the frame
 * because the payload it ends up in is over UINT32_MAX too. */
void stream_pack_str(msgpack_packer *pk, const void *p, size_t len)
{
    msgpack_pack_str(pk, len);
    if (len > 0)
        msgpack_pack_str_body(pk, p, len);
}

void stream_pack_cstr(msgpack_packer *pk, const char *s)
{
    stream_pack_str(pk, s, strlen(s));
}

void stream_pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
    msgpack_pack_bin(pk, len);
    if (len > 0)
        msgpack_pack_bin_body(pk, p, len);
}

void stream_pack_key(msgpack_packer *pk, const char *key)
{
    stream_pack_cstr(pk, key);
}

void stream_pack_kv_int(msgpack_packer *pk, const char *key, int64_t v)
{
    stream_pack_cstr(pk, key);
    msgpack_pack_int64(pk, v);
}

void stream_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    stream_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

void stream_pack_kv_bool(msgpack_packer *pk, const char *key, bool v)
{
    stream_pack_cstr(pk, key);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void stream_pack_kv_cstr(msgpack_packer *pk, const char *key, const char *v)
{
    stream_pack_cstr(pk, key);
    stream_pack_cstr(pk, v);
}

void stream_pack_kv_str(msgpack_packer *pk, const char *key, const void *p, size_t len)
{
    stream_pack_cstr(pk, key);
    stream_pack_str(pk, p, len);
}

void stream_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t len)
{
    stream_pack_cstr(pk, key);
    stream_pack_bin(pk, p, len);
}

void stream_pack_kv_nil(msgpack_packer *pk, const char *key)
{
    stream_pack_cstr(pk, key);
    msgpack_pack_nil(pk);
}

void stream_pack_request_header(msgpack_packer *pk, stream_op op, uint64_t id, size_t extra_fields)
{
    msgpack_pack_map(pk, 2 + extra_fields);
    stream_pack_kv_cstr(pk, "op", stream_op_name(op));
    stream_pack_kv_uint(pk, "id", id);
}

size_t stream_err_fields(int err)
{
    return err == 0 ? 1 : 2;
}

void stream_pack_err(msgpack_packer *pk, int err, const char *msg)
{
    /* Library codes are negative; the wire carries them positive. */
    stream_pack_kv_int(pk, "err", err < 0 ? -(int64_t)err : err);
    if (err != 0)
        stream_pack_kv_cstr(pk, "msg", msg != NULL && msg[0] != '\0' ? msg : stream_strerror(err));
}

void stream_pack_response_header(msgpack_packer *pk, uint64_t id, int err, const char *msg,
                                 size_t extra_fields)
{
    msgpack_pack_map(pk, 1 + stream_err_fields(err) + extra_fields);
    stream_pack_kv_uint(pk, "id", id);
    stream_pack_err(pk, err, msg);
}

int stream_frame_error_response(stream_buf *out, uint64_t id, int err, const char *msg)
{
    stream_frame f;
    stream_frame_start(&f, out);
    stream_pack_response_header(&f.pk, id, err, msg, 0);
    return stream_frame_finish(&f);
}

/* ---- broker addresses ---------------------------------------------------- */

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Hostnames and IPv4: letters, digits, '-', '.', '_' (underscores appear in
 * container names, so they are let through). */
static bool host_ok(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

/* IPv6 literal: hex digits, ':' and '.' (an embedded IPv4), at least one
 * ':', then optionally "%zone" with a zone of [A-Za-z0-9._-]. */
static bool ipv6_ok(const char *h, size_t n)
{
    size_t i = 0;
    bool colon = false;
    for (; i < n && h[i] != '%'; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == ':')
            colon = true;
        else if (!is_hex(c) && c != '.')
            return false;
    }
    if (!colon)
        return false;
    if (i < n) {
        if (i + 1 == n)
            return false; /* "%" with no zone */
        return host_ok(h + i + 1, n - i - 1);
    }
    return true;
}

int stream_parse_hostport(const char *s, size_t len, uint16_t default_port, stream_hostport *out,
                          char *errbuf, size_t errbuf_len)
{
    char q[QUOTE_MAX + 4];
    const char *host, *port = NULL, *end = s + len;
    size_t host_len, port_len = 0;
    bool v6 = false;

    memset(out, 0, sizeof *out);
    if (len == 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "empty broker address");
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "broker address '%s' lacks ']'",
                                quote(q, s, len));
        v6 = true;
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < end) {
            if (close[1] != ':')
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "broker address '%s': expected ':' after ']'",
                                    quote(q, s, len));
            port = close + 2;
            port_len = (size_t)(end - port);
        }
    } else {
        const char *colon = memchr(s, ':', len);
        host = s;
        host_len = len;
        if (colon != NULL) {
            if (memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "broker address '%s' has several ':'; write an IPv6 address in "
                                    "brackets, as in [::1]:9292",
                                    quote(q, s, len));
            host_len = (size_t)(colon - s);
            port = colon + 1;
            port_len = (size_t)(end - port);
        }
    }
    if (host_len == 0 || host_len >= sizeof out->host)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "broker address '%s': the host must be 1 to %zu bytes",
                            quote(q, s, len), sizeof out->host - 1);
    if (v6 ? !ipv6_ok(host, host_len) : !host_ok(host, host_len))
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            v6 ? "broker address '%s': not an IPv6 address inside the brackets"
                               : "broker address '%s': invalid character in the host name",
                            quote(q, s, len));

    unsigned long p = default_port;
    if (port != NULL) {
        p = 0;
        if (port_len == 0 || port_len > 5)
            goto bad_port;
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9')
                goto bad_port;
            p = p * 10 + (unsigned long)(port[i] - '0');
        }
    }
    if (p == 0 || p > 65535)
        goto bad_port;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (uint16_t)p;
    return 0;

bad_port:
    memset(out, 0, sizeof *out);
    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                        "broker address '%s': the port must be a number from 1 to 65535",
                        quote(q, s, len));
}

int stream_parse_hostport_list(const char *s, uint16_t default_port, stream_hostport **out,
                               size_t *count, char *errbuf, size_t errbuf_len)
{
    stream_hostport *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (s == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no broker addresses given");
    for (const char *p = s; *p != '\0';) {
        const char *comma = strchr(p, ',');
        const char *e = comma != NULL ? comma : p + strlen(p);
        const char *a = p;
        while (a < e && (*a == ' ' || *a == '\t'))
            a++;
        const char *b = e;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                stream_hostport *nv = realloc(v, ncap * sizeof *v);
                if (nv == NULL) {
                    rc = stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
                    goto err;
                }
                v = nv;
                cap = ncap;
            }
            rc = stream_parse_hostport(a, (size_t)(b - a), default_port, &v[n], errbuf, errbuf_len);
            if (rc < 0)
                goto err;
            n++;
        }
        p = comma != NULL ? comma + 1 : e;
    }
    if (n == 0) {
        char q[QUOTE_MAX + 4];
        rc = stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no broker address in '%s'",
                          quote(q, s, strlen(s)));
        goto err;
    }
    *out = v;
    *count = n;
    return 0;

err:
    free(v);
    return rc;
}

int stream_hostport_format(const stream_hostport *hp, char *buf, size_t buf_len)
{
    if (strchr(hp->host, ':') != NULL)
        return snprintf(buf, buf_len, "[%s]:%u", hp->host, (unsigned)hp->port);
    return snprintf(buf, buf_len, "%s:%u", hp->host, (unsigned)hp->port);
}
