/*
 * fuzz_frame.c - the native protocol's decoding path (proto.h): frame reader,
 * MessagePack shape check and unpack, request/response headers and every
 * typed field accessor, exactly as a broker runs them on a client's bytes.
 *
 * Input: three bytes of parameters, then the byte stream of a connection.
 *   byte 0  max_frame_bytes (small ones make ETOOLARGE reachable) and the
 *           msg limits (max_depth, max_objects)
 *   byte 1-2  seed for the chunk sizes the stream is fed in, and for choosing
 *           _feed or _prepare/_commit per chunk (the two ways libuv feeds it)
 *
 * Properties checked:
 *   - chunking does not matter: the frames (bytes and order) and the final
 *     sticky error are the same as when the whole stream is fed at once;
 *   - every frame is 1..max_frame_bytes long; errors are sticky;
 *   - a message that parses is a map; accessors return only 0 or
 *     STREAM_EBADREQ (and the documented header codes).
 * Every msgpack object reached is walked, so ASan sees any borrowed pointer
 * that points outside the frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/error.h"
#include "stream/proto.h"

/* Field names the broker and client read (broker_*.c, client.c). */
// clang-format off
static const char *const keys[] = {
    "op", "id", "err", "msg", "version", "client", "broker", "brokers", "node_id", "host",
    "port", "topics", "topic", "name", "partitions", "partition", "records", "acks",
    "timeout_ms", "configs", "set", "delete", "validate_only", "max_wait_ms", "min_bytes",
    "max_bytes", "max_frame_bytes", "max_message_bytes", "offset", "timestamp",
    "replication_factor", "internal", "leader", "leader_epoch", "base_offset",
    "high_watermark", "log_start_offset", "log_end_offset", "size_bytes", "value", "source",
    "is_default", "doc", "group", "member",
};
// clang-format on
#define NKEYS (sizeof keys / sizeof keys[0])

/* A 64-bit FNV-1a of a frame, to compare frame sequences cheaply. */
static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h ^ n;
}

#define MAX_FRAMES 4096
typedef struct frames {
    uint64_t hash[MAX_FRAMES];
    size_t n;
} frames;

static void walk(const msgpack_object *o, int depth)
{
    FUZZ_CHECK(depth <= STREAM_MSG_MAX_DEPTH_LIMIT + 1);
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        fuzz_touch(o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        fuzz_touch(o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        fuzz_touch(o->via.ext.ptr, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            walk(&o->via.array.ptr[i], depth + 1);
        break;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            walk(&o->via.map.ptr[i].key, depth + 1);
            walk(&o->via.map.ptr[i].val, depth + 1);
        }
        break;
    default:
        break;
    }
}

#define FIELD_OK(rc) FUZZ_CHECK_MSG((rc) == 0 || (rc) == STREAM_EBADREQ, "%s", stream_err_name(rc))

/* Every accessor on every known key of map m; nested arrays of maps get the
 * same treatment (as per-topic and per-partition entries do), to depth 3. */
static void access_fields(const msgpack_object *m, int depth)
{
    char err[256];
    for (size_t k = 0; k < NKEYS; k++) {
        const char *key = keys[k];
        int64_t i64;
        uint64_t u64;
        bool b;
        const char *s;
        const uint8_t *bin;
        size_t len;
        const msgpack_object *obj;
        const msgpack_object *found = stream_field_find(m, key);
        if (found != NULL)
            FUZZ_CHECK(found->type != MSGPACK_OBJECT_NIL);
        FIELD_OK(stream_field_int(m, key, INT64_MIN, INT64_MAX, &i64, err, sizeof err));
        FIELD_OK(stream_field_int(m, key, -1, 100, &i64, err, sizeof err));
        if (stream_field_int_opt(m, key, 0, INT32_MAX, 7, &i64, err, sizeof err) == 0)
            FUZZ_CHECK(i64 >= 0 && i64 <= INT32_MAX);
        FIELD_OK(stream_field_uint(m, key, UINT64_MAX, &u64, err, sizeof err));
        if (stream_field_uint_opt(m, key, 1000, 5, &u64, err, sizeof err) == 0)
            FUZZ_CHECK(u64 <= 1000);
        FIELD_OK(stream_field_bool(m, key, &b, err, sizeof err));
        FIELD_OK(stream_field_bool_opt(m, key, true, &b, err, sizeof err));
        if (stream_field_str(m, key, &s, &len, err, sizeof err) == 0) {
            fuzz_touch(s, len);
            int trc = stream_topic_name_check(s, len, err, sizeof err);
            FUZZ_CHECK(trc == 0 || trc == STREAM_EBADNAME);
            (void)stream_topic_is_internal(s, len);
            (void)stream_op_from_name(s, len);
            stream_hostport hp;
            if (stream_parse_hostport(s, len, STREAM_DEFAULT_PORT, &hp, err, sizeof err) == 0)
                FUZZ_CHECK(hp.port >= 1 && strlen(hp.host) >= 1);
        }
        FIELD_OK(stream_field_str_opt(m, key, &s, &len, err, sizeof err));
        if (stream_field_bin(m, key, &bin, &len, err, sizeof err) == 0 && len > 0)
            fuzz_touch(bin, len);
        FIELD_OK(stream_field_bin_opt(m, key, &bin, &len, err, sizeof err));
        FIELD_OK(stream_field_map(m, key, &obj, err, sizeof err));
        FIELD_OK(stream_field_map_opt(m, key, &obj, err, sizeof err));
        FIELD_OK(stream_field_strmap(m, key, &obj, err, sizeof err));
        FIELD_OK(stream_field_strmap_opt(m, key, &obj, err, sizeof err));
        if (stream_field_array(m, key, &obj, err, sizeof err) == 0) {
            FUZZ_CHECK(obj->type == MSGPACK_OBJECT_ARRAY);
            for (uint32_t i = 0; i < obj->via.array.size && i < 64; i++) {
                const msgpack_object *elem;
                if (stream_elem_map(obj, i, key, &elem, err, sizeof err) == 0) {
                    FUZZ_CHECK(elem->type == MSGPACK_OBJECT_MAP);
                    if (depth < 3)
                        access_fields(elem, depth + 1);
                }
                if (stream_elem_str(obj, i, key, &s, &len, err, sizeof err) == 0)
                    fuzz_touch(s, len);
            }
        }
        FIELD_OK(stream_field_array_opt(m, key, &obj, err, sizeof err));
    }
}

static void decode_frame(const uint8_t *p, size_t len, stream_msg *msg)
{
    char err[256];
    int rc = stream_msg_parse(p, len, msg, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EPROTO || rc == STREAM_ETOOLARGE || rc == STREAM_ENOMEM,
                   "parse: %s", stream_err_name(rc));
    FUZZ_CHECK(msg->valid == (rc == 0));
    if (rc != 0)
        return;
    FUZZ_CHECK(msg->root.type == MSGPACK_OBJECT_MAP);
    walk(&msg->root, 1);

    uint64_t id;
    stream_op op;
    rc = stream_msg_request(msg, &id, &op, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EUNKNOWNOP || rc == STREAM_EBADREQ ||
                       rc == STREAM_EPROTO,
                   "request: %s", stream_err_name(rc));
    if (rc == 0) {
        FUZZ_CHECK(id >= 1 && op > STREAM_OP_UNKNOWN && op < STREAM_OP__COUNT);
        (void)stream_op_since_version(op);
        fuzz_touch(stream_op_name(op), strlen(stream_op_name(op)));
    }
    int e;
    const char *text;
    size_t text_len;
    rc = stream_msg_response(msg, &id, &e, &text, &text_len, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EPROTO);
    if (rc == 0) {
        FUZZ_CHECK(e <= 0);
        fuzz_touch(stream_strerror(e), 1);
        if (text != NULL)
            fuzz_touch(text, text_len);
    }
    access_fields(&msg->root, 0);
}

/* Takes every whole frame the reader holds, decoding each. */
static int drain(stream_frame_reader *fr, frames *seen, stream_msg *msg)
{
    const uint8_t *p;
    size_t len;
    int rc;
    while ((rc = stream_frame_reader_next(fr, &p, &len)) == 1) {
        FUZZ_CHECK(len >= 1 && len <= fr->max_frame_bytes);
        if (seen->n < MAX_FRAMES)
            seen->hash[seen->n] = fnv(p, len);
        seen->n++;
        if (msg != NULL)
            decode_frame(p, len, msg);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_frames[] = {1, 8, 64, 1024, STREAM_DEFAULT_MAX_FRAME_BYTES};
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t b0 = fuzz_u8(&in);
    uint64_t seed = fuzz_u16(&in);
    size_t max_frame = max_frames[b0 % 5];
    size_t len;
    const uint8_t *stream = fuzz_rest(&in, &len);

    stream_msg msg;
    stream_msg_init(&msg);
    if (b0 & 0x08)
        msg.max_depth = 1 + (b0 >> 4) % 4; /* 1..4 */
    if (b0 & 0x80)
        msg.max_objects = 1 + (b0 >> 4) % 8;

    static frames chunked, whole;
    chunked.n = whole.n = 0;
    char err[256];

    /* The stream in input-chosen chunks, through both entry points. */
    stream_frame_reader fr;
    stream_frame_reader_init(&fr, max_frame);
    int rc = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        uint64_t r = fuzz_rand(&seed);
        size_t chunk = (r & 0x30) == 0x30 ? 1 + (r >> 8) % 4096 : 1 + (r >> 8) % 16;
        if (chunk > len - pos)
            chunk = len - pos;
        if (r & 1) {
            rc = stream_frame_reader_feed(&fr, stream + pos, chunk, err, sizeof err);
        } else {
            uint8_t *dst;
            size_t avail;
            size_t want = (r & 2) ? chunk : 0;
            rc = stream_frame_reader_prepare(&fr, want, &dst, &avail);
            if (rc == 0) {
                FUZZ_CHECK(avail >= (want ? want : 1));
                if (chunk > avail)
                    chunk = avail;
                memcpy(dst, stream + pos, chunk);
                rc = stream_frame_reader_commit(&fr, chunk, err, sizeof err);
            }
        }
        pos += chunk;
        int drc = drain(&fr, &chunked, &msg);
        if (rc == 0 && drc < 0)
            rc = drc;
        if (rc < 0)
            FUZZ_CHECK(rc == STREAM_EPROTO || rc == STREAM_ETOOLARGE);
    }
    if (rc < 0) {
        /* Sticky: everything keeps returning the error. */
        int drc = drain(&fr, &chunked, &msg);
        FUZZ_CHECK(drc == rc);
        FUZZ_CHECK(stream_frame_reader_feed(&fr, "x", 1, err, sizeof err) == rc);
        uint8_t *dst;
        size_t avail;
        FUZZ_CHECK(stream_frame_reader_prepare(&fr, 0, &dst, &avail) == rc);
    }
    size_t pending = stream_frame_reader_pending(&fr);
    stream_frame_reader_release(&fr);

    /* The same stream in one piece. */
    stream_frame_reader_init(&fr, max_frame);
    int wrc = len ? stream_frame_reader_feed(&fr, stream, len, err, sizeof err) : 0;
    int wdrc = drain(&fr, &whole, NULL);
    if (wrc == 0)
        wrc = wdrc;
    FUZZ_CHECK_MSG(wrc == rc, "chunked %s, whole %s", stream_err_name(rc), stream_err_name(wrc));
    FUZZ_CHECK(whole.n == chunked.n);
    for (size_t i = 0; i < whole.n && i < MAX_FRAMES; i++)
        FUZZ_CHECK(whole.hash[i] == chunked.hash[i]);
    if (rc == 0)
        FUZZ_CHECK(stream_frame_reader_pending(&fr) == pending);
    stream_frame_reader_release(&fr);
    stream_msg_release(&msg);
    return 0;
}
