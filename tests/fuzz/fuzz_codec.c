/*
 * fuzz_codec.c - decompression of hostile payloads (codec.h).
 *
 * Input: one byte choosing the cap (max_out), then the payload, which every
 * codec id (0-4, and 5 as an unknown one) decompresses in turn into a buffer
 * that already holds a few bytes. What codec.h promises and is checked here:
 *
 *   - success appends at most max_out bytes; failure leaves out->len (and the
 *     bytes already there) unchanged, so a caller can just check the return;
 *   - an unknown codec is STREAM_EINVAL;
 *   - errors are only the documented ones.
 *
 * Then the round trip: the payload compressed by each codec (default level)
 * decompresses to itself, with a cap of exactly its length, and the cap one
 * below that is STREAM_ETOOLARGE.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/buf.h"
#include "stream/codec.h"
#include "stream/error.h"

static const char prefix[] = "kept";

static void decompress_one(int codec, const uint8_t *p, size_t len, size_t cap)
{
    stream_buf out;
    stream_buf_init(&out);
    stream_buf_put(&out, prefix, sizeof prefix);
    int rc = stream_codec_decompress((stream_codec)codec, p, len, cap, &out);
    FUZZ_CHECK(memcmp(out.data, prefix, sizeof prefix) == 0);
    if (rc == 0) {
        FUZZ_CHECK(out.len - sizeof prefix <= cap);
        fuzz_touch(out.data, out.len);
    } else {
        FUZZ_CHECK_MSG(out.len == sizeof prefix, "codec %d: len moved on error %s", codec,
                       stream_err_name(rc));
        FUZZ_CHECK_MSG(rc == STREAM_ECORRUPT || rc == STREAM_ETOOLARGE || rc == STREAM_EINVAL ||
                           rc == STREAM_ENOMEM,
                       "codec %d: undocumented error %s", codec, stream_err_name(rc));
    }
    if (codec < 0 || codec > 4)
        FUZZ_CHECK(rc == STREAM_EINVAL);
    if (codec == STREAM_CODEC_NONE)
        FUZZ_CHECK(rc == (len <= cap ? 0 : STREAM_ETOOLARGE));
    stream_buf_release(&out);
}

static void round_trip(int codec, const uint8_t *p, size_t len)
{
    stream_buf z, out;
    stream_buf_init(&z);
    stream_buf_init(&out);
    int rc = stream_codec_compress((stream_codec)codec, STREAM_CODEC_LEVEL_DEFAULT, p, len, &z);
    FUZZ_CHECK_MSG(rc == 0, "compress %s: %s", stream_codec_name(codec), stream_err_name(rc));
    rc = stream_codec_decompress((stream_codec)codec, z.data, z.len, len, &out);
    FUZZ_CHECK_MSG(rc == 0, "decompress own %s output: %s", stream_codec_name(codec),
                   stream_err_name(rc));
    FUZZ_CHECK(out.len == len);
    FUZZ_CHECK(len == 0 || memcmp(out.data, p, len) == 0);
    if (len > 0) {
        stream_buf_reset(&out);
        rc = stream_codec_decompress((stream_codec)codec, z.data, z.len, len - 1, &out);
        FUZZ_CHECK_MSG(rc == STREAM_ETOOLARGE, "%s: cap len-1 gave %s", stream_codec_name(codec),
                       stream_err_name(rc));
        FUZZ_CHECK(out.len == 0);
    }
    stream_buf_release(&z);
    stream_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[] = {0, 1, 7, 64, 1000, 65535, 65536, 65537, (size_t)1 << 20};
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    size_t cap = caps[fuzz_u8(&in) % (sizeof caps / sizeof caps[0])];
    size_t len;
    const uint8_t *rest = fuzz_rest(&in, &len);

    /* An exact-size heap copy, so ASan sees a read one past the end. */
    uint8_t *p = malloc(len ? len : 1);
    FUZZ_CHECK(p != NULL);
    if (len > 0)
        memcpy(p, rest, len);
    for (int codec = 0; codec <= 5; codec++)
        decompress_one(codec, p, len, cap);
    for (int codec = 0; codec <= 4; codec++)
        round_trip(codec, p, len);
    free(p);
    return 0;
}
