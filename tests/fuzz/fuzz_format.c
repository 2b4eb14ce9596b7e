/*
 * fuzz_format.c - kcat-style format strings (format.h): compile once, apply
 * per record; and the -D/-K delimiter parser.
 *
 * Input: the format string up to the first NUL byte; the bytes after it are
 * a delimiter for stream_format_parse_delim and the key and value of one of
 * the records the format is applied to. Byte 0 of that tail, when present,
 * also sets a null text (stream_format_set_null) for odd values.
 *
 * Records (all well-formed, as the callers guarantee):
 *   - one from a real batch (encoded headers, through
 *     stream_fmt_record_from_record), with a binary key and a null header;
 *   - one with decoded headers, null key, null value, no topic;
 *   - one with the input's bytes as key and value.
 *
 * Properties checked:
 *   - a format that compiles applies to every well-formed record with 0, and
 *     applying it twice appends the same bytes twice (no state in between);
 *   - a format with no '%' and no '\' prints itself;
 *   - a compile error names a column;
 *   - a delimiter with no '\' parses to itself; a parsed one is never empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/format.h"

static uint8_t *batch; /* a real batch with one record, built once */
static size_t batch_len;

static void make_batch(void)
{
    if (batch != NULL)
        return;
    stream_batch_builder b;
    stream_header h[3] = {
        {(const uint8_t *)"trace", 5, (const uint8_t *)"abc", 3},
        {(const uint8_t *)"null", 4, NULL, -1},
        {(const uint8_t *)"bin", 3, (const uint8_t *)"\x00\xff\n", 3},
    };
    const uint8_t *p;
    stream_batch_builder_init(&b);
    FUZZ_CHECK(stream_batch_builder_append(&b, 1732442400123, "\x01key\x00", 5, "value %s\n", 9, h,
                                           3) == 0);
    FUZZ_CHECK(stream_batch_builder_finish(&b, &p, &batch_len) == 0);
    batch = malloc(batch_len);
    FUZZ_CHECK(batch != NULL);
    memcpy(batch, p, batch_len);
    stream_batch_set_base_offset(batch, 42);
    stream_batch_builder_release(&b);
}

/* Applies f to rec twice; both must succeed and append the same bytes. */
static void apply_twice(const stream_format *f, const stream_fmt_record *rec, stream_buf *out)
{
    stream_buf_reset(out);
    int rc = stream_format_apply(f, rec, out);
    FUZZ_CHECK_MSG(rc == 0, "apply: %s", stream_err_name(rc));
    size_t once = out->len;
    rc = stream_format_apply(f, rec, out);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(out->len == 2 * once);
    FUZZ_CHECK(once == 0 || memcmp(out->data, out->data + once, once) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_batch();
    size_t fmt_len = 0;
    while (fmt_len < size && data[fmt_len] != 0)
        fmt_len++;
    char *fmt = fuzz_strndup(data, fmt_len);
    const uint8_t *tail = data + fmt_len + (fmt_len < size);
    size_t tail_len = size - fmt_len - (fmt_len < size);
    if (tail_len == 0)
        tail = (const uint8_t *)""; /* data may be NULL for the empty input */
    char err[256];
    stream_buf out;
    stream_buf_init(&out);

    stream_format *f = NULL;
    int rc = stream_format_compile(fmt, &f, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EINVAL || rc == STREAM_ENOMEM, "compile: %s",
                   stream_err_name(rc));
    if (rc == STREAM_EINVAL)
        FUZZ_CHECK_MSG(strstr(err, "column") != NULL, "error names no column: %s", err);
    if (rc == 0) {
        if (tail_len > 0 && (tail[0] & 1)) {
            char *null_text = fuzz_strndup(tail + 1, (tail_len - 1) % 16);
            FUZZ_CHECK(stream_format_set_null(f, null_text) == 0);
            free(null_text);
        }

        stream_record_iter it;
        stream_record rec;
        FUZZ_CHECK(stream_record_iter_start(&it, batch, batch_len) == 0);
        FUZZ_CHECK(stream_record_iter_next(&it, &rec) == 1);
        stream_fmt_record r1;
        stream_fmt_record_from_record(&r1, "orders", 6, 3, &rec);
        apply_twice(f, &r1, &out);
        stream_record_iter_stop(&it);

        stream_header h[2] = {
            {(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
            {(const uint8_t *)"", 0, NULL, -1},
        };
        stream_fmt_record r2 = {
            .topic = NULL,
            .topic_len = 0,
            .partition = -1,
            .offset = -1,
            .timestamp = -1,
            .key = NULL,
            .key_len = -1,
            .value = NULL,
            .value_len = -1,
            .headers = h,
            .header_count = 2,
        };
        apply_twice(f, &r2, &out);

        stream_fmt_record r3 = r2;
        size_t half = tail_len / 2;
        r3.topic = "t";
        r3.topic_len = 1;
        r3.partition = INT32_MAX;
        r3.offset = INT64_MAX;
        r3.timestamp = INT64_MIN;
        r3.key = tail;
        r3.key_len = (int32_t)half;
        r3.value = tail + half;
        r3.value_len = (int32_t)(tail_len - half);
        r3.headers = NULL;
        r3.header_count = 0;
        apply_twice(f, &r3, &out);

        if (strchr(fmt, '%') == NULL && strchr(fmt, '\\') == NULL) {
            stream_buf_reset(&out);
            FUZZ_CHECK(stream_format_apply(f, &r3, &out) == 0);
            FUZZ_CHECK(out.len == fmt_len && (fmt_len == 0 || memcmp(out.data, fmt, fmt_len) == 0));
        }
    }
    stream_format_free(f);

    /* The tail as a delimiter. */
    stream_buf_reset(&out);
    stream_buf_put(&out, "x", 1);
    rc = stream_format_parse_delim((const char *)tail, tail_len, &out, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(out.len > 1);
        if (memchr(tail, '\\', tail_len) == NULL)
            FUZZ_CHECK(out.len == 1 + tail_len && memcmp(out.data + 1, tail, tail_len) == 0);
    }
    if (tail_len == 0)
        FUZZ_CHECK(rc == STREAM_EINVAL);
    stream_buf_release(&out);
    free(fmt);
    return 0;
}
