/*
 * recfmt.c - the lossless record formats: JSON lines and MessagePack, both ways.
 *
 * Writers: JSON through json.c's escaping and base64, MessagePack through
 * msgpack-c's packer writing straight into a stream_buf.
 *
 * Readers: input bytes are buffered in the reader; each next() finds one
 * record (a line, or one MessagePack map) at the front, decodes it into a
 * stream_recfmt_in whose pointers borrow from that buffer (or from the JSON
 * doc's arena for unescaped and base64-decoded bytes), and consumes it. The
 * buffer is compacted only when more input arrives, which is why a returned
 * record stays valid until the next call.
 *
 * The MessagePack side is decoded by hand, not with msgpack_unpacker: the
 * unpacker allocates an array for a declared element count before the
 * elements arrive (5 hostile bytes can ask for gigabytes), has no record size
 * limit, and keeps bad bytes after an error. Here a record is re-scanned from
 * its first byte whenever more input arrives; the scan is cheap (bin and str
 * bodies are skipped, not read), every declared size is checked against the
 * record limit before anything is kept, and the header array is sized only
 * from counts that the bytes present can back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "stream/error.h"
#include "stream/recfmt.h"
#include "stream/timespec.h"
#include "base/internal.h"

#define FILL_CHUNK ((size_t)64 << 10)

/* ---- JSON writer ------------------------------------------------------------ */

/* Writes "name":<bytes>,"name_encoding":"..." for a key or value. */
static void json_bytes_field(stream_buf *out, const char *name, const char *enc_name,
                             const uint8_t *p, int32_t len)
{
    stream_buf_put_u8(out, '"');
    stream_buf_put(out, name, strlen(name));
    stream_buf_put(out, "\":", 2);
    bool utf8 = true;
    if (len < 0) {
        stream_buf_put(out, "null", 4);
    } else if (stream_utf8_valid(p, (size_t)len)) {
        stream_json_put_string(out, p, (size_t)len);
    } else {
        utf8 = false;
        stream_buf_put_u8(out, '"');
        stream_base64_encode(out, p, (size_t)len);
        stream_buf_put_u8(out, '"');
    }
    stream_buf_put(out, ",\"", 2);
    stream_buf_put(out, enc_name, strlen(enc_name));
    if (utf8)
        stream_buf_put(out, "\":\"utf8\"", 8);
    else
        stream_buf_put(out, "\":\"base64\"", 10);
}

/* A string that must be valid UTF-8 or base64: returns whether it was utf8. */
static bool json_text_or_base64(stream_buf *out, const uint8_t *p, size_t len)
{
    if (stream_utf8_valid(p, len)) {
        stream_json_put_string(out, p, len);
        return true;
    }
    stream_buf_put_u8(out, '"');
    stream_base64_encode(out, p, len);
    stream_buf_put_u8(out, '"');
    return false;
}

typedef struct json_hdr_state {
    stream_buf *out; /* where the line goes */
    bool first;      /* no header written yet */
} json_hdr_state;

static int json_header(void *arg, const stream_header *h)
{
    json_hdr_state *st = arg;
    stream_buf *out = st->out;
    if (!st->first)
        stream_buf_put_u8(out, ',');
    st->first = false;
    stream_buf_put_u8(out, '[');
    bool name_utf8 = json_text_or_base64(out, h->name, h->name_len > 0 ? (size_t)h->name_len : 0);
    stream_buf_put_u8(out, ',');
    bool value_utf8 = true;
    if (h->value_len < 0)
        stream_buf_put(out, "null", 4);
    else
        value_utf8 = json_text_or_base64(out, h->value, (size_t)h->value_len);
    if (!value_utf8 || !name_utf8)
        stream_buf_put(out, value_utf8 ? ",\"utf8\"" : ",\"base64\"", value_utf8 ? 7 : 9);
    if (!name_utf8)
        stream_buf_put(out, ",\"base64\"", 9);
    stream_buf_put_u8(out, ']');
    return 0;
}

int stream_recfmt_write_json(stream_buf *out, const stream_fmt_record *rec)
{
    stream_buf_put(out, "{\"topic\":", 9);
    stream_json_put_string(out, rec->topic, rec->topic_len);
    stream_buf_put(out, ",\"partition\":", 13);
    stream_json_put_int(out, rec->partition);
    stream_buf_put(out, ",\"offset\":", 10);
    stream_json_put_int(out, rec->offset);
    stream_buf_put(out, ",\"timestamp\":", 13);
    stream_json_put_int(out, rec->timestamp);
    stream_buf_put_u8(out, ',');
    json_bytes_field(out, "key", "key_encoding", rec->key, rec->key_len);
    stream_buf_put_u8(out, ',');
    json_bytes_field(out, "value", "value_encoding", rec->value, rec->value_len);
    stream_buf_put(out, ",\"headers\":[", 12);
    json_hdr_state st = {out, true};
    int rc = stream_fmt_record_each_header(rec, json_header, &st);
    if (rc != 0)
        return rc;
    stream_buf_put(out, "]}\n", 3);
    return stream_buf_ok(out);
}

/* ---- MessagePack writer ----------------------------------------------------- */

static int mp_buf_write(void *data, const char *p, size_t len)
{
    stream_buf *b = data;
    stream_buf_put(b, p, len);
    return b->oom ? -1 : 0;
}

static void mp_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void mp_bytes(msgpack_packer *pk, const void *p, int32_t len)
{
    if (len < 0) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_bin(pk, (size_t)len);
    msgpack_pack_bin_body(pk, p, (size_t)len);
}

static int mp_header(void *arg, const stream_header *h)
{
    msgpack_packer *pk = arg;
    msgpack_pack_array(pk, 2);
    mp_bytes(pk, h->name, h->name_len > 0 ? h->name_len : 0);
    mp_bytes(pk, h->value, h->value_len);
    return 0;
}

int stream_recfmt_write_msgpack(stream_buf *out, const stream_fmt_record *rec)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mp_buf_write);
    msgpack_pack_map(&pk, 7);
    mp_str(&pk, "topic");
    msgpack_pack_str(&pk, rec->topic_len);
    msgpack_pack_str_body(&pk, rec->topic, rec->topic_len);
    mp_str(&pk, "partition");
    msgpack_pack_int32(&pk, rec->partition);
    mp_str(&pk, "offset");
    msgpack_pack_int64(&pk, rec->offset);
    mp_str(&pk, "timestamp");
    msgpack_pack_int64(&pk, rec->timestamp);
    mp_str(&pk, "key");
    mp_bytes(&pk, rec->key, rec->key_len);
    mp_str(&pk, "value");
    mp_bytes(&pk, rec->value, rec->value_len);
    mp_str(&pk, "headers");
    if (rec->header_count > UINT32_MAX)
        return STREAM_EINVAL;
    msgpack_pack_array(&pk, rec->header_count);
    int rc = stream_fmt_record_each_header(rec, mp_header, &pk);
    if (rc != 0)
        return rc;
    return stream_buf_ok(out);
}

/* ---- reader: common --------------------------------------------------------- */

/* The fields a record may have; bits for duplicate detection. */
enum field {
    F_TOPIC = 1 << 0,
    F_PARTITION = 1 << 1,
    F_OFFSET = 1 << 2,
    F_TIMESTAMP = 1 << 3,
    F_KEY = 1 << 4,
    F_KEY_ENC = 1 << 5,
    F_VALUE = 1 << 6,
    F_VALUE_ENC = 1 << 7,
    F_HEADERS = 1 << 8,
};

static const struct {
    const char *name;
    enum field f;
} field_names[] = {
    {"topic", F_TOPIC},         {"partition", F_PARTITION}, {"offset", F_OFFSET},
    {"timestamp", F_TIMESTAMP}, {"key", F_KEY},             {"key_encoding", F_KEY_ENC},
    {"value", F_VALUE},         {"value_encoding", F_VALUE_ENC}, {"headers", F_HEADERS},
};

/* The field named p[0..len), or 0 if unknown. */
static enum field field_of(const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof field_names / sizeof field_names[0]; i++)
        if (strlen(field_names[i].name) == len && memcmp(field_names[i].name, p, len) == 0)
            return field_names[i].f;
    return 0;
}

/* Shows a (possibly hostile) field name in a message: printable, cut short. */
static void show_name(char *dst, size_t cap, const char *p, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"')
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        if (i == 40) {
            o += (size_t)snprintf(dst + o, cap - o, "...");
            break;
        }
    }
    dst[o < cap ? o : cap - 1] = '\0';
}

static void in_defaults(stream_recfmt_in *out)
{
    memset(out, 0, sizeof *out);
    out->rec.topic = "";
    out->rec.partition = -1;
    out->rec.offset = -1;
    out->rec.timestamp = -1;
    out->rec.key_len = -1;
    out->rec.value_len = -1;
}

static int ensure_headers(stream_recfmt_reader *r, size_t n)
{
    if (n <= r->headers_cap)
        return 0;
    if (n > SIZE_MAX / sizeof(stream_header))
        return STREAM_ENOMEM;
    size_t cap = r->headers_cap ? r->headers_cap : 8;
    while (cap < n)
        cap *= 2;
    stream_header *h = realloc(r->headers, cap * sizeof *h);
    if (h == NULL)
        return STREAM_ENOMEM;
    r->headers = h;
    r->headers_cap = cap;
    return 0;
}

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Range checks shared by both readers; set the has_* flags. */
static int set_partition(stream_recfmt_in *out, int64_t v, char *errbuf, size_t errbuf_len)
{
    if (v < -1 || v > INT32_MAX)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "\"partition\" %lld is out of range (0 to 2147483647, or -1)",
                            (long long)v);
    out->rec.partition = (int32_t)v;
    out->has_partition = v >= 0;
    return 0;
}

static int set_timestamp(stream_recfmt_in *out, int64_t v, char *errbuf, size_t errbuf_len)
{
    if (v < -1)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "\"timestamp\" %lld is negative (ms since the epoch, or -1 for now)",
                            (long long)v);
    out->rec.timestamp = v;
    out->has_timestamp = v >= 0;
    return 0;
}

/* ---- reader: JSON ----------------------------------------------------------- */

enum encoding { ENC_UTF8 = 0, ENC_BASE64 = 1 };

static int json_encoding(const stream_json_value *v, const char *field, enum encoding *enc,
                         char *errbuf, size_t errbuf_len)
{
    if (v == NULL || v->type == STREAM_JSON_NULL) {
        *enc = ENC_UTF8;
        return 0;
    }
    if (v->type == STREAM_JSON_STRING) {
        if (v->str.len == 4 && memcmp(v->str.p, "utf8", 4) == 0) {
            *enc = ENC_UTF8;
            return 0;
        }
        if (v->str.len == 6 && memcmp(v->str.p, "base64", 6) == 0) {
            *enc = ENC_BASE64;
            return 0;
        }
    }
    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "%s must be \"utf8\" or \"base64\"",
                        field);
}

/* Bytes from a JSON value: null, a string in the given encoding, or any other
 * value as its JSON text. Base64 is decoded into the doc's arena. */
static int json_bytes(stream_recfmt_reader *r, const stream_json_value *v, enum encoding enc,
                      const char *field, const uint8_t **p, int32_t *len, char *errbuf,
                      size_t errbuf_len)
{
    const char *s;
    size_t n;
    if (v->type == STREAM_JSON_NULL) {
        *p = NULL;
        *len = -1;
        return 0;
    }
    if (v->type == STREAM_JSON_STRING) {
        s = v->str.p;
        n = v->str.len;
        if (enc == ENC_BASE64) {
            uint8_t *d = stream_json_doc_alloc(&r->doc, stream_base64_decoded_max(n));
            if (d == NULL)
                return STREAM_ENOMEM;
            char why[96];
            if (stream_base64_decode(s, n, d, &n, why, sizeof why) != 0)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "%s: %s", field, why);
            s = (const char *)d;
        }
    } else {
        if (enc == ENC_BASE64)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "%s is marked base64 but is a JSON %s, not a string", field,
                                stream_json_type_name(v->type));
        s = v->text; /* a number, boolean, object or array: its JSON text */
        n = v->text_len;
    }
    if (n > INT32_MAX)
        return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len, "%s is over 2 GiB", field);
    *p = (const uint8_t *)s;
    *len = (int32_t)n;
    return 0;
}

static int json_header_pair(stream_recfmt_reader *r, const stream_json_value *name,
                            const stream_json_value *value, const stream_json_value *venc_v,
                            const stream_json_value *nenc_v, size_t i, stream_header *h,
                            char *errbuf, size_t errbuf_len)
{
    char field[48];
    enum encoding nenc, venc;
    snprintf(field, sizeof field, "header %zu's encoding", i + 1);
    if (json_encoding(venc_v, field, &venc, errbuf, errbuf_len) != 0)
        return STREAM_EINVAL;
    snprintf(field, sizeof field, "header %zu's name encoding", i + 1);
    if (json_encoding(nenc_v, field, &nenc, errbuf, errbuf_len) != 0)
        return STREAM_EINVAL;
    if (name->type != STREAM_JSON_STRING)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "header %zu's name must be a string, not %s", i + 1,
                            stream_json_type_name(name->type));
    snprintf(field, sizeof field, "header %zu's name", i + 1);
    int rc = json_bytes(r, name, nenc, field, &h->name, &h->name_len, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    snprintf(field, sizeof field, "header %zu's value", i + 1);
    return json_bytes(r, value, venc, field, &h->value, &h->value_len, errbuf, errbuf_len);
}

static int json_headers(stream_recfmt_reader *r, const stream_json_value *v,
                        stream_recfmt_in *out, char *errbuf, size_t errbuf_len)
{
    size_t n;
    if (v->type == STREAM_JSON_NULL)
        return 0;
    if (v->type == STREAM_JSON_ARRAY)
        n = v->arr.count;
    else if (v->type == STREAM_JSON_OBJECT)
        n = v->obj.count;
    else
        return stream__fail(
            STREAM_EINVAL, errbuf, errbuf_len,
            "\"headers\" must be an array of [name, value] pairs or an object, not %s",
            stream_json_type_name(v->type));
    if (ensure_headers(r, n) != 0)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        stream_header *h = &r->headers[i];
        int rc;
        if (v->type == STREAM_JSON_OBJECT) {
            const stream_json_member *m = &v->obj.members[i];
            stream_json_value name = {.type = STREAM_JSON_STRING};
            name.str.p = m->key;
            name.str.len = m->key_len;
            rc = json_header_pair(r, &name, &m->value, NULL, NULL, i, h, errbuf, errbuf_len);
        } else {
            const stream_json_value *e = &v->arr.items[i];
            if (e->type != STREAM_JSON_ARRAY || e->arr.count < 2 || e->arr.count > 4)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "header %zu must be [name, value] or [name, value, encoding]",
                                    i + 1);
            const stream_json_value *it = e->arr.items;
            rc = json_header_pair(r, &it[0], &it[1], e->arr.count > 2 ? &it[2] : NULL,
                                  e->arr.count > 3 ? &it[3] : NULL, i, h, errbuf, errbuf_len);
        }
        if (rc != 0)
            return rc;
    }
    out->rec.headers = n > 0 ? r->headers : NULL;
    out->rec.header_count = n;
    return 0;
}

static int json_int_field(const stream_json_value *v, const char *field, int64_t *out,
                          char *errbuf, size_t errbuf_len)
{
    if (v->type == STREAM_JSON_INT) {
        *out = v->i;
        return 0;
    }
    if (v->type == STREAM_JSON_NUMBER)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "\"%s\" must be an integer within 64 bits, not %.*s", field,
                            (int)(v->text_len > 40 ? 40 : v->text_len), v->text);
    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "\"%s\" must be an integer, not %s",
                        field, stream_json_type_name(v->type));
}

int stream_recfmt_parse_json(stream_recfmt_reader *r, const char *line, size_t len,
                             stream_recfmt_in *out, char *errbuf, size_t errbuf_len)
{
    const stream_json_value *root;
    in_defaults(out);
    r->doc.max_bytes = r->max_record_bytes;
    int rc = stream_json_parse(&r->doc, line, len, &root, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    if (root->type != STREAM_JSON_OBJECT)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "expected a JSON object, got %s",
                            stream_json_type_name(root->type));
    const stream_json_value *key = NULL, *value = NULL, *key_enc = NULL, *value_enc = NULL;
    unsigned seen = 0;
    for (size_t i = 0; i < root->obj.count; i++) {
        const stream_json_member *m = &root->obj.members[i];
        const stream_json_value *v = &m->value;
        enum field f = field_of(m->key, m->key_len);
        char name[200];
        show_name(name, sizeof name, m->key, m->key_len);
        if (f == 0) {
            if (r->flags & STREAM_RECFMT_IGNORE_UNKNOWN)
                continue;
            return stream__fail(
                STREAM_EINVAL, errbuf, errbuf_len,
                "unknown field \"%s\" (expected topic, partition, offset, timestamp, "
                "key, key_encoding, value, value_encoding, headers)",
                name);
        }
        if (seen & f)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "field \"%s\" given twice",
                                name);
        seen |= f;
        int64_t n;
        switch (f) {
        case F_TOPIC:
            if (v->type == STREAM_JSON_NULL)
                break;
            if (v->type != STREAM_JSON_STRING)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "\"topic\" must be a string, not %s",
                                    stream_json_type_name(v->type));
            out->rec.topic = v->str.p;
            out->rec.topic_len = v->str.len;
            out->has_topic = true;
            break;
        case F_PARTITION:
            if (v->type == STREAM_JSON_NULL)
                break;
            if ((rc = json_int_field(v, "partition", &n, errbuf, errbuf_len)) != 0 ||
                (rc = set_partition(out, n, errbuf, errbuf_len)) != 0)
                return rc;
            break;
        case F_OFFSET:
            if (v->type == STREAM_JSON_NULL)
                break;
            if ((rc = json_int_field(v, "offset", &n, errbuf, errbuf_len)) != 0)
                return rc;
            out->rec.offset = n;
            out->has_offset = true;
            break;
        case F_TIMESTAMP:
            if (v->type == STREAM_JSON_NULL)
                break;
            if (v->type == STREAM_JSON_STRING) {
                char why[200];
                if (stream_time_parse(v->str.p, v->str.len, wall_clock_ms(), &n, why,
                                      sizeof why) != 0)
                    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "\"timestamp\": %s",
                                        why);
            } else if ((rc = json_int_field(v, "timestamp", &n, errbuf, errbuf_len)) != 0) {
                return rc;
            }
            if ((rc = set_timestamp(out, n, errbuf, errbuf_len)) != 0)
                return rc;
            break;
        case F_KEY: key = v; break;
        case F_VALUE: value = v; break;
        case F_KEY_ENC: key_enc = v; break;
        case F_VALUE_ENC: value_enc = v; break;
        case F_HEADERS:
            if ((rc = json_headers(r, v, out, errbuf, errbuf_len)) != 0)
                return rc;
            break;
        }
    }
    if (value == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "missing \"value\" (write \"value\":null for a tombstone)");
    enum encoding enc;
    if ((rc = json_encoding(key_enc, "\"key_encoding\"", &enc, errbuf, errbuf_len)) != 0)
        return rc;
    if (key != NULL &&
        (rc = json_bytes(r, key, enc, "\"key\"", &out->rec.key, &out->rec.key_len, errbuf,
                         errbuf_len)) != 0)
        return rc;
    if ((rc = json_encoding(value_enc, "\"value_encoding\"", &enc, errbuf, errbuf_len)) != 0)
        return rc;
    return json_bytes(r, value, enc, "\"value\"", &out->rec.value, &out->rec.value_len, errbuf,
                      errbuf_len);
}

/* ---- reader: MessagePack ---------------------------------------------------- */

enum mkind { MK_NIL, MK_BOOL, MK_UINT, MK_INT, MK_FLOAT, MK_STR, MK_BIN, MK_EXT, MK_ARRAY, MK_MAP };

static const char *mkind_name(enum mkind k)
{
    static const char *names[] = {"nil", "boolean", "integer", "integer", "float",
                                  "str", "bin",     "ext",     "array",   "map"};
    return names[k];
}

typedef struct mhead {
    enum mkind kind;
    uint64_t n;          /* MK_UINT value; element count (array, map); body bytes otherwise */
    int64_t i;           /* MK_INT value (negative) */
    const uint8_t *body; /* MK_STR/MK_BIN: the bytes */
} mhead;

typedef struct mdec {
    const uint8_t *p; /* the buffered input, starting at the record */
    size_t len;       /* bytes at p */
    size_t pos;       /* next byte */
    size_t max;       /* the record size limit */
} mdec;

/* Codes besides 0 and the STREAM_E* errors: */
#define MP_MORE 1 /* the record continues past the bytes present */

static uint64_t load_be(const uint8_t *p, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * Reads one object's head (and, for str/bin/ext/float, skips its body).
 * Returns 0, MP_MORE, STREAM_EINVAL (the never-used byte 0xc1) or
 * STREAM_ETOOLARGE (a declared size that cannot fit in the record limit).
 */
static int mp_head(mdec *m, mhead *h)
{
    if (m->pos >= m->len)
        return MP_MORE;
    uint8_t c = m->p[m->pos];
    int width = 0;  /* bytes of length/value after the type byte */
    size_t extra = 0; /* fixed body bytes (fixext type byte, floats) */
    m->pos++;
    if (c <= 0x7f) {
        h->kind = MK_UINT;
        h->n = c;
        return 0;
    }
    if (c >= 0xe0) {
        h->kind = MK_INT;
        h->i = (int8_t)c;
        return 0;
    }
    if (c >= 0x80 && c <= 0x8f) {
        h->kind = MK_MAP;
        h->n = c & 0x0f;
        goto counted;
    }
    if (c >= 0x90 && c <= 0x9f) {
        h->kind = MK_ARRAY;
        h->n = c & 0x0f;
        goto counted;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        h->kind = MK_STR;
        h->n = c & 0x1f;
        goto body;
    }
    switch (c) {
    case 0xc0: h->kind = MK_NIL; return 0;
    case 0xc2:
    case 0xc3:
        h->kind = MK_BOOL;
        h->n = c & 1;
        return 0;
    case 0xc4: h->kind = MK_BIN; width = 1; break;
    case 0xc5: h->kind = MK_BIN; width = 2; break;
    case 0xc6: h->kind = MK_BIN; width = 4; break;
    case 0xc7: h->kind = MK_EXT; width = 1; extra = 1; break;
    case 0xc8: h->kind = MK_EXT; width = 2; extra = 1; break;
    case 0xc9: h->kind = MK_EXT; width = 4; extra = 1; break;
    case 0xca: h->kind = MK_FLOAT; h->n = 4; goto body;
    case 0xcb: h->kind = MK_FLOAT; h->n = 8; goto body;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int w = 1 << (c & 3);
        if (m->len - m->pos < (size_t)w)
            return MP_MORE;
        uint64_t v = load_be(m->p + m->pos, w);
        m->pos += (size_t)w;
        if (c <= 0xcf) {
            h->kind = MK_UINT;
            h->n = v;
            return 0;
        }
        /* Sign-extend from w bytes. */
        int shift = 64 - 8 * w;
        int64_t s = (int64_t)(v << shift) >> shift;
        if (s >= 0) {
            h->kind = MK_UINT;
            h->n = (uint64_t)s;
        } else {
            h->kind = MK_INT;
            h->i = s;
        }
        return 0;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        h->kind = MK_EXT;
        h->n = (uint64_t)1 << (c - 0xd4);
        extra = 1;
        goto body_extra;
    case 0xd9: h->kind = MK_STR; width = 1; break;
    case 0xda: h->kind = MK_STR; width = 2; break;
    case 0xdb: h->kind = MK_STR; width = 4; break;
    case 0xdc: h->kind = MK_ARRAY; width = 2; break;
    case 0xdd: h->kind = MK_ARRAY; width = 4; break;
    case 0xde: h->kind = MK_MAP; width = 2; break;
    case 0xdf: h->kind = MK_MAP; width = 4; break;
    default: /* 0xc1 */
        m->pos--;
        return STREAM_EINVAL;
    }
    if (m->len - m->pos < (size_t)width)
        return MP_MORE;
    h->n = load_be(m->p + m->pos, width);
    m->pos += (size_t)width;
    if (h->kind == MK_ARRAY || h->kind == MK_MAP)
        goto counted;
    if (h->kind == MK_STR || h->kind == MK_BIN)
        goto body;
body_extra:
    /* ext: a type byte, then n data bytes */
    h->n += extra;
body:
    if (h->n > m->max || m->pos > m->max - h->n)
        return STREAM_ETOOLARGE;
    if (m->len - m->pos < h->n)
        return MP_MORE;
    h->body = m->p + m->pos;
    m->pos += h->n;
    return 0;
counted:
    /* Every element takes at least one byte (two for a map entry). */
    if (h->n > m->max / (h->kind == MK_MAP ? 2 : 1) ||
        m->pos > m->max - h->n * (h->kind == MK_MAP ? 2 : 1))
        return STREAM_ETOOLARGE;
    return 0;
}

/* mp_head, with a message for its errors (MP_MORE passes through). */
static int mp_next(mdec *m, mhead *h, char *errbuf, size_t errbuf_len)
{
    int rc = mp_head(m, h);
    if (rc == STREAM_ETOOLARGE)
        return stream__fail(rc, errbuf, errbuf_len, "record larger than the limit of %zu bytes",
                            m->max);
    if (rc == STREAM_EINVAL)
        return stream__fail(rc, errbuf, errbuf_len, "invalid MessagePack byte 0xc1 at +%zu",
                            m->pos);
    return rc;
}

/* Skips `count` whole objects, iteratively (no recursion on hostile nesting). */
static int mp_skip(mdec *m, uint64_t count, char *errbuf, size_t errbuf_len)
{
    while (count > 0) {
        mhead h;
        int rc = mp_next(m, &h, errbuf, errbuf_len);
        if (rc != 0)
            return rc;
        count--;
        if (h.kind == MK_ARRAY)
            count += h.n;
        else if (h.kind == MK_MAP)
            count += 2 * h.n;
        /* Bounded: count never exceeds the bytes that could still follow. */
        if (count > m->max)
            return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                                "record larger than the limit of %zu bytes", m->max);
    }
    return 0;
}

static int mp_int(const mhead *h, const char *field, int64_t *out, char *errbuf,
                  size_t errbuf_len)
{
    if (h->kind == MK_INT) {
        *out = h->i;
        return 0;
    }
    if (h->kind == MK_UINT && h->n <= INT64_MAX) {
        *out = (int64_t)h->n;
        return 0;
    }
    if (h->kind == MK_UINT)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "\"%s\" %llu is out of range", field,
                            (unsigned long long)h->n);
    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "\"%s\" must be an integer, not %s",
                        field, mkind_name(h->kind));
}

static int mp_bytes_of(const mhead *h, const char *field, bool nil_ok, const uint8_t **p,
                       int32_t *len, char *errbuf, size_t errbuf_len)
{
    if (h->kind == MK_NIL && nil_ok) {
        *p = NULL;
        *len = -1;
        return 0;
    }
    if (h->kind != MK_BIN && h->kind != MK_STR)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "%s must be bin, str%s, not %s",
                            field, nil_ok ? " or nil" : "", mkind_name(h->kind));
    if (h->n > INT32_MAX)
        return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len, "%s is over 2 GiB", field);
    *p = h->body;
    *len = (int32_t)h->n;
    return 0;
}

static int mp_headers(stream_recfmt_reader *r, mdec *m, const mhead *hh, stream_recfmt_in *out,
                      char *errbuf, size_t errbuf_len)
{
    if (hh->kind == MK_NIL)
        return 0;
    if (hh->kind != MK_ARRAY && hh->kind != MK_MAP)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "\"headers\" must be an array of [name, value] pairs or a map, not %s",
                            mkind_name(hh->kind));
    /* Size the array only from what the bytes present can hold (each header
     * takes at least 2 bytes), so a hostile count cannot make us allocate. */
    if (hh->n > (m->len - m->pos) / 2)
        return MP_MORE;
    if (ensure_headers(r, (size_t)hh->n) != 0)
        return STREAM_ENOMEM;
    char field[48];
    for (size_t i = 0; i < hh->n; i++) {
        stream_header *h = &r->headers[i];
        mhead name, value;
        int rc;
        if (hh->kind == MK_ARRAY) {
            mhead pair;
            if ((rc = mp_next(m, &pair, errbuf, errbuf_len)) != 0)
                return rc;
            if (pair.kind != MK_ARRAY || pair.n != 2)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "header %zu must be a [name, value] array of 2", i + 1);
        }
        if ((rc = mp_next(m, &name, errbuf, errbuf_len)) != 0 ||
            (rc = mp_next(m, &value, errbuf, errbuf_len)) != 0)
            return rc;
        snprintf(field, sizeof field, "header %zu's name", i + 1);
        if ((rc = mp_bytes_of(&name, field, false, &h->name, &h->name_len, errbuf,
                              errbuf_len)) != 0)
            return rc;
        snprintf(field, sizeof field, "header %zu's value", i + 1);
        if ((rc = mp_bytes_of(&value, field, true, &h->value, &h->value_len, errbuf,
                              errbuf_len)) != 0)
            return rc;
    }
    out->rec.headers = hh->n > 0 ? r->headers : NULL;
    out->rec.header_count = (size_t)hh->n;
    return 0;
}

/* One record at the front of p. 1 with *used, 0 for "more bytes needed", or
 * an error with the detail in errbuf. */
static int mp_record(stream_recfmt_reader *r, const uint8_t *p, size_t len, size_t *used,
                     stream_recfmt_in *out, char *errbuf, size_t errbuf_len)
{
    mdec m = {p, len, 0, r->max_record_bytes};
    mhead h;
    int rc;
    in_defaults(out);
    if ((rc = mp_next(&m, &h, errbuf, errbuf_len)) != 0)
        goto fail;
    if (h.kind != MK_MAP)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "expected a map, got %s",
                            mkind_name(h.kind));
    unsigned seen = 0;
    bool has_value = false;
    for (uint64_t i = 0; i < h.n; i++) {
        mhead k, v;
        if ((rc = mp_next(&m, &k, errbuf, errbuf_len)) != 0)
            goto fail;
        if (k.kind != MK_STR && k.kind != MK_BIN)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "a field name must be str, not %s", mkind_name(k.kind));
        char name[200];
        show_name(name, sizeof name, (const char *)k.body, (size_t)k.n);
        enum field f = field_of((const char *)k.body, (size_t)k.n);
        if (f == 0 || f == F_KEY_ENC || f == F_VALUE_ENC) {
            if (!(r->flags & STREAM_RECFMT_IGNORE_UNKNOWN))
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "unknown field \"%s\" (expected topic, partition, offset, "
                                    "timestamp, key, value, headers)",
                                    name);
            if ((rc = mp_skip(&m, 1, errbuf, errbuf_len)) != 0)
                goto fail;
            continue;
        }
        if (seen & f)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "field \"%s\" given twice",
                                name);
        seen |= f;
        if ((rc = mp_next(&m, &v, errbuf, errbuf_len)) != 0)
            goto fail;
        int64_t n;
        switch (f) {
        case F_TOPIC:
            if (v.kind == MK_NIL)
                break;
            if (v.kind != MK_STR && v.kind != MK_BIN)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "\"topic\" must be str, not %s", mkind_name(v.kind));
            out->rec.topic = (const char *)v.body;
            out->rec.topic_len = (size_t)v.n;
            out->has_topic = true;
            break;
        case F_PARTITION:
            if (v.kind == MK_NIL)
                break;
            if ((rc = mp_int(&v, "partition", &n, errbuf, errbuf_len)) != 0 ||
                (rc = set_partition(out, n, errbuf, errbuf_len)) != 0)
                return rc;
            break;
        case F_OFFSET:
            if (v.kind == MK_NIL)
                break;
            if ((rc = mp_int(&v, "offset", &n, errbuf, errbuf_len)) != 0)
                return rc;
            out->rec.offset = n;
            out->has_offset = true;
            break;
        case F_TIMESTAMP:
            if (v.kind == MK_NIL)
                break;
            if ((rc = mp_int(&v, "timestamp", &n, errbuf, errbuf_len)) != 0 ||
                (rc = set_timestamp(out, n, errbuf, errbuf_len)) != 0)
                return rc;
            break;
        case F_KEY:
            if ((rc = mp_bytes_of(&v, "\"key\"", true, &out->rec.key, &out->rec.key_len, errbuf,
                                  errbuf_len)) != 0)
                return rc;
            break;
        case F_VALUE:
            if ((rc = mp_bytes_of(&v, "\"value\"", true, &out->rec.value, &out->rec.value_len,
                                  errbuf, errbuf_len)) != 0)
                return rc;
            has_value = true;
            break;
        case F_HEADERS:
            if ((rc = mp_headers(r, &m, &v, out, errbuf, errbuf_len)) != 0)
                goto fail;
            break;
        default: break;
        }
    }
    if (!has_value)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "missing \"value\" (write \"value\": nil for a tombstone)");
    if (m.pos > m.max)
        return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                            "record of %zu bytes is over the limit of %zu bytes", m.pos, m.max);
    *used = m.pos;
    return 1;
fail:
    if (rc != MP_MORE)
        return rc;
    /* Nothing wrong yet, but a record that already fills the limit will not
     * get smaller. */
    if (len >= m.max)
        return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                            "record larger than the limit of %zu bytes", m.max);
    return 0;
}

int stream_recfmt_parse_msgpack(stream_recfmt_reader *r, const uint8_t *p, size_t len,
                                size_t *used, stream_recfmt_in *out, char *errbuf,
                                size_t errbuf_len)
{
    return mp_record(r, p, len, used, out, errbuf, errbuf_len);
}

/* ---- reader: buffering ------------------------------------------------------ */

void stream_recfmt_reader_init(stream_recfmt_reader *r, stream_recfmt_kind kind)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_record_bytes = STREAM_RECFMT_DEFAULT_MAX_RECORD;
    stream_buf_init(&r->in);
    stream_json_doc_init(&r->doc);
}

void stream_recfmt_reader_release(stream_recfmt_reader *r)
{
    stream_buf_release(&r->in);
    stream_json_doc_release(&r->doc);
    free(r->headers);
    r->headers = NULL;
    r->headers_cap = 0;
}

/* Moves the unconsumed bytes to the front; only between records, since
 * records returned earlier point into the buffer. */
static void compact(stream_recfmt_reader *r)
{
    if (r->pos == 0)
        return;
    size_t left = r->in.len - r->pos;
    if (left > 0)
        memmove(r->in.data, r->in.data + r->pos, left);
    r->in.len = left;
    r->pos = 0;
}

int stream_recfmt_reader_feed(stream_recfmt_reader *r, const void *p, size_t len)
{
    if (r->eof)
        return STREAM_EINVAL;
    compact(r);
    stream_buf_put(&r->in, p, len);
    if (stream_buf_ok(&r->in) != 0) {
        r->in.oom = false; /* nothing was added; the reader stays usable */
        return STREAM_ENOMEM;
    }
    return 0;
}

int stream_recfmt_reader_fill(stream_recfmt_reader *r, int fd)
{
    if (r->eof)
        return 0;
    compact(r);
    if (stream_buf_reserve(&r->in, FILL_CHUNK) != 0) {
        r->in.oom = false;
        return STREAM_ENOMEM;
    }
    ssize_t n;
    do {
        n = read(fd, r->in.data + r->in.len, FILL_CHUNK);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? STREAM_EAGAIN
                                                       : stream_err_from_errno(errno);
    if (n == 0) {
        r->eof = true;
        return 0;
    }
    r->in.len += (size_t)n;
    return (int)n;
}

void stream_recfmt_reader_eof(stream_recfmt_reader *r)
{
    r->eof = true;
}

/* Stops the reader at an error, adding where it happened to the message. */
static int stop(stream_recfmt_reader *r, int rc, char *errbuf, size_t errbuf_len)
{
    r->err = rc;
    if (errbuf == NULL || errbuf_len == 0)
        return rc;
    char detail[512];
    snprintf(detail, sizeof detail, "%s", errbuf);
    if (r->kind == STREAM_RECFMT_JSON)
        snprintf(errbuf, errbuf_len, "line %llu: %s", (unsigned long long)r->line, detail);
    else
        snprintf(errbuf, errbuf_len, "record %llu (byte %llu): %s",
                 (unsigned long long)r->records + 1, (unsigned long long)r->consumed, detail);
    return rc;
}

static bool blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

static int next_json(stream_recfmt_reader *r, stream_recfmt_in *out, char *errbuf,
                     size_t errbuf_len)
{
    for (;;) {
        size_t avail = r->in.len - r->pos;
        if (avail == 0)
            return 0; /* also while in.data is still NULL */
        const char *start = (const char *)r->in.data + r->pos;
        const char *nl = avail > r->scanned ? memchr(start + r->scanned, '\n', avail - r->scanned)
                                            : NULL;
        size_t line_len, take;
        if (nl != NULL) {
            line_len = (size_t)(nl - start);
            take = line_len + 1;
        } else if (r->eof && avail > 0) {
            line_len = take = avail;
        } else {
            r->scanned = avail;
            if (avail > r->max_record_bytes) {
                r->line++;
                stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                             "longer than the limit of %zu bytes", r->max_record_bytes);
                return stop(r, STREAM_ETOOLARGE, errbuf, errbuf_len);
            }
            return 0;
        }
        r->pos += take;
        r->consumed += take;
        r->scanned = 0;
        r->line++;
        /* The limit before the blank test: an unfinished line is refused
         * above as soon as it passes the limit, blank or not, so a whole
         * one must be too, or the answer would depend on how the input
         * was cut into pieces. */
        if (line_len > r->max_record_bytes) {
            stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len, "longer than the limit of %zu bytes",
                         r->max_record_bytes);
            return stop(r, STREAM_ETOOLARGE, errbuf, errbuf_len);
        }
        if (blank(start, line_len))
            continue;
        int rc = stream_recfmt_parse_json(r, start, line_len, out, errbuf, errbuf_len);
        if (rc != 0)
            return stop(r, rc, errbuf, errbuf_len);
        r->records++;
        return 1;
    }
}

static int next_msgpack(stream_recfmt_reader *r, stream_recfmt_in *out, char *errbuf,
                        size_t errbuf_len)
{
    size_t avail = r->in.len - r->pos, used = 0;
    if (avail == 0)
        return 0;
    int rc = mp_record(r, r->in.data + r->pos, avail, &used, out, errbuf, errbuf_len);
    if (rc < 0)
        return stop(r, rc, errbuf, errbuf_len);
    if (rc == 0) {
        if (!r->eof)
            return 0;
        stream__fail(STREAM_ESHORT, errbuf, errbuf_len,
                     "input ends inside the record (%zu bytes of it)", avail);
        return stop(r, STREAM_ESHORT, errbuf, errbuf_len);
    }
    r->pos += used;
    r->consumed += used;
    r->records++;
    return 1;
}

int stream_recfmt_reader_next(stream_recfmt_reader *r, stream_recfmt_in *out, char *errbuf,
                              size_t errbuf_len)
{
    if (r->err != 0)
        return stream__fail(r->err, errbuf, errbuf_len, "the input stopped at an earlier error");
    if (r->kind == STREAM_RECFMT_JSON)
        return next_json(r, out, errbuf, errbuf_len);
    if (r->kind == STREAM_RECFMT_MSGPACK)
        return next_msgpack(r, out, errbuf, errbuf_len);
    return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "unknown record format %d",
                        (int)r->kind);
}
