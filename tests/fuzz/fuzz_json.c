/*
 * fuzz_json.c - the JSON reader and writer, UTF-8 and base64 (json.h).
 *
 * The input is one JSON text (a line of `stream-pub --json` input). It is
 * parsed twice with one doc, first a prefix and then the whole, so the
 * arena's reuse path runs on every input.
 *
 * Properties checked:
 *   - every value's text lies inside the input; strings and keys are valid
 *     UTF-8 (the reader checks and unescapes); containers hold what they say;
 *   - writing the DOM back with stream_json_writer gives JSON that parses to
 *     the same tree (numbers compared by value: "%.17g" round-trips), and so
 *     does each value's own text;
 *   - stream_utf8_valid agrees with a small reference decoder;
 *   - stream_json_put_string of any bytes parses back to those bytes when
 *     they are UTF-8;
 *   - base64: encode then decode is the identity; a string that decodes
 *     re-encodes to itself (one accepted encoding per byte string).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/json.h"

/* RFC 3629 by the book, to compare with stream_utf8_valid. */
static bool ref_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        uint32_t cp, min;
        size_t n;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

static void check_value(const stream_json_value *v, const char *in, size_t in_len, int depth)
{
    FUZZ_CHECK(depth <= STREAM_JSON_DEFAULT_MAX_DEPTH + 1);
    FUZZ_CHECK(v->text >= in && v->text_len <= in_len && v->text + v->text_len <= in + in_len);
    FUZZ_CHECK(v->text_len > 0);
    switch (v->type) {
    case STREAM_JSON_STRING:
        fuzz_touch(v->str.p, v->str.len);
        FUZZ_CHECK(stream_utf8_valid(v->str.p, v->str.len));
        break;
    case STREAM_JSON_ARRAY:
        for (size_t i = 0; i < v->arr.count; i++)
            check_value(&v->arr.items[i], in, in_len, depth + 1);
        break;
    case STREAM_JSON_OBJECT:
        for (size_t i = 0; i < v->obj.count; i++) {
            const stream_json_member *m = &v->obj.members[i];
            fuzz_touch(m->key, m->key_len);
            FUZZ_CHECK(stream_utf8_valid(m->key, m->key_len));
            check_value(&m->value, in, in_len, depth + 1);
        }
        break;
    case STREAM_JSON_NULL:
    case STREAM_JSON_BOOL:
    case STREAM_JSON_INT:
    case STREAM_JSON_NUMBER:
        break;
    default:
        FUZZ_CHECK(!"unknown type");
    }
}

static void write_value(stream_json_writer *w, const stream_json_value *v)
{
    switch (v->type) {
    case STREAM_JSON_NULL:
        stream_json_null(w);
        break;
    case STREAM_JSON_BOOL:
        stream_json_bool(w, v->b);
        break;
    case STREAM_JSON_INT:
        stream_json_int(w, v->i);
        break;
    case STREAM_JSON_NUMBER:
        stream_json_double(w, v->d);
        break;
    case STREAM_JSON_STRING:
        stream_json_string(w, v->str.p, v->str.len);
        break;
    case STREAM_JSON_ARRAY:
        stream_json_array_start(w);
        for (size_t i = 0; i < v->arr.count; i++)
            write_value(w, &v->arr.items[i]);
        stream_json_array_end(w);
        break;
    case STREAM_JSON_OBJECT:
        stream_json_object_start(w);
        for (size_t i = 0; i < v->obj.count; i++) {
            stream_json_key_n(w, v->obj.members[i].key, v->obj.members[i].key_len);
            write_value(w, &v->obj.members[i].value);
        }
        stream_json_object_end(w);
        break;
    }
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* a (from the input) and b (from what the writer made of it, `written`, or
 * from a's own text) are equal. */
static void same_value(const stream_json_value *a, const stream_json_value *b, bool written)
{
    if (a->type == STREAM_JSON_NUMBER) {
        if (!isfinite(a->d) && written) {
            FUZZ_CHECK(b->type == STREAM_JSON_NULL);
        } else if (b->type == STREAM_JSON_INT) {
            FUZZ_CHECK((double)b->i == a->d);
        } else {
            FUZZ_CHECK(b->type == STREAM_JSON_NUMBER &&
                       (b->d == a->d || (isnan(a->d) && isnan(b->d))));
        }
        return;
    }
    FUZZ_CHECK_MSG(a->type == b->type, "%s became %s", stream_json_type_name(a->type),
                   stream_json_type_name(b->type));
    switch (a->type) {
    case STREAM_JSON_BOOL:
        FUZZ_CHECK(a->b == b->b);
        break;
    case STREAM_JSON_INT:
        FUZZ_CHECK(a->i == b->i);
        break;
    case STREAM_JSON_STRING:
        FUZZ_CHECK(same_bytes(a->str.p, a->str.len, b->str.p, b->str.len));
        break;
    case STREAM_JSON_ARRAY:
        FUZZ_CHECK(a->arr.count == b->arr.count);
        for (size_t i = 0; i < a->arr.count; i++)
            same_value(&a->arr.items[i], &b->arr.items[i], written);
        break;
    case STREAM_JSON_OBJECT:
        FUZZ_CHECK(a->obj.count == b->obj.count);
        for (size_t i = 0; i < a->obj.count; i++) {
            const stream_json_member *ma = &a->obj.members[i], *mb = &b->obj.members[i];
            FUZZ_CHECK(same_bytes(ma->key, ma->key_len, mb->key, mb->key_len));
            same_value(&ma->value, &mb->value, written);
        }
        break;
    default:
        break;
    }
}

static void base64_props(const uint8_t *p, size_t len)
{
    char err[256];
    stream_buf enc;
    stream_buf_init(&enc);
    stream_base64_encode(&enc, p, len);
    FUZZ_CHECK(enc.len == stream_base64_encoded_len(len));
    uint8_t *dec = malloc(stream_base64_decoded_max(enc.len) + 1);
    FUZZ_CHECK(dec != NULL);
    size_t dec_len = 0;
    FUZZ_CHECK(
        stream_base64_decode((const char *)enc.data, enc.len, dec, &dec_len, err, sizeof err) == 0);
    FUZZ_CHECK(dec_len == len && (len == 0 || memcmp(dec, p, len) == 0));
    free(dec);

    /* The input as base64 text. */
    dec = malloc(stream_base64_decoded_max(len) + 1);
    FUZZ_CHECK(dec != NULL);
    if (stream_base64_decode((const char *)p, len, dec, &dec_len, err, sizeof err) == 0) {
        FUZZ_CHECK(dec_len <= stream_base64_decoded_max(len));
        stream_buf_reset(&enc);
        stream_base64_encode(&enc, dec, dec_len);
        size_t unpadded = enc.len;
        while (unpadded > 0 && enc.data[unpadded - 1] == '=')
            unpadded--;
        FUZZ_CHECK_MSG(same_bytes((const char *)enc.data, enc.len, (const char *)p, len) ||
                           same_bytes((const char *)enc.data, unpadded, (const char *)p, len),
                       "two encodings of one byte string accepted");
    }
    free(dec);
    stream_buf_release(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1); /* exact size: the parser must not need a NUL */
    FUZZ_CHECK(in != NULL);
    if (size > 0)
        memcpy(in, data, size);
    char err[256];
    stream_json_doc doc, doc2;
    stream_json_doc_init(&doc);
    stream_json_doc_init(&doc2);
    const stream_json_value *root, *back;

    /* A prefix first, so the full parse reuses a used arena. */
    (void)stream_json_parse(&doc, in, size / 2, &root, err, sizeof err);
    int rc = stream_json_parse(&doc, in, size, &root, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EINVAL || rc == STREAM_ETOOLARGE || rc == STREAM_ENOMEM,
                   "%s", stream_err_name(rc));
    if (rc == 0) {
        check_value(root, in, size, 1);
        stream_buf out;
        stream_buf_init(&out);
        stream_json_writer w;
        stream_json_writer_init(&w, &out);
        write_value(&w, root);
        FUZZ_CHECK(stream_json_writer_ok(&w) == 0);
        rc = stream_json_parse(&doc2, (const char *)out.data, out.len, &back, err, sizeof err);
        FUZZ_CHECK_MSG(rc == 0, "written JSON does not parse: %s: %.*s", err, (int)out.len,
                       (const char *)out.data);
        same_value(root, back, true);
        /* A value's own text is JSON for the same value. */
        rc = stream_json_parse(&doc2, root->text, root->text_len, &back, err, sizeof err);
        FUZZ_CHECK(rc == 0);
        same_value(root, back, false);
        stream_buf_release(&out);
    }

    bool valid = stream_utf8_valid(in, size);
    FUZZ_CHECK_MSG(valid == ref_utf8((const uint8_t *)in, size), "stream_utf8_valid says %d",
                   valid);

    /* Any bytes as a JSON string. */
    stream_buf s;
    stream_buf_init(&s);
    stream_json_put_string(&s, in, size);
    rc = stream_json_parse(&doc2, (const char *)s.data, s.len, &back, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "put_string output does not parse: %s", err);
    FUZZ_CHECK(back->type == STREAM_JSON_STRING);
    if (valid)
        FUZZ_CHECK(same_bytes(back->str.p, back->str.len, in, size));
    stream_buf_release(&s);

    base64_props((const uint8_t *)in, size);

    stream_json_doc_release(&doc);
    stream_json_doc_release(&doc2);
    free(in);
    return 0;
}
