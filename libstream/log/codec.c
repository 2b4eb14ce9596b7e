/*
 * codec.c - gzip, snappy, lz4 and zstd for record batches (see codec.h).
 *
 * Every codec appends to a caller's stream_buf and, on failure, puts out->len
 * back where it was, so a caller can write a batch header, append the
 * compressed records and just check the return value.
 *
 * Decompression never trusts a size the input claims. The streaming decoders
 * (zlib, LZ4F, zstd) write into a window that grows geometrically but never
 * past max_out + 1 bytes; producing that extra byte proves the output is too
 * large, so the cap costs at most max_out + 1 bytes of memory. Snappy blocks
 * state their decompressed size up front, and that size is checked against
 * the cap before anything is allocated.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "stream/codec.h"
#include "stream/error.h"

/* xerial snappy-java framing (what Kafka's Java client writes). */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16 /* magic + version be32 + compatible version be32 */
#define XERIAL_BLOCK_SIZE (32 * 1024) /* snappy-java's default block size */

/* ---- output window helpers ------------------------------------------------ */

/* Makes room to decode into: points *dst at the free space after out->len and
 * sets *avail, growing the buffer geometrically but never letting the bytes
 * produced since `base` exceed `limit`. STREAM_ETOOLARGE when the limit is
 * already reached, STREAM_ENOMEM when growth fails. */
static int window(stream_buf *out, size_t base, size_t limit, uint8_t **dst, size_t *avail)
{
    size_t produced = out->len - base;
    if (produced >= limit)
        return STREAM_ETOOLARGE;
    size_t left = limit - produced;
    if (out->cap == out->len) {
        size_t want = produced < 65536 ? 65536 : produced;
        if (want > left)
            want = left;
        if (stream_buf_reserve(out, want) != 0) {
            out->oom = false; /* the buffer is unchanged: keep it usable */
            return STREAM_ENOMEM;
        }
    }
    *dst = out->data + out->len;
    *avail = out->cap - out->len;
    if (*avail > left)
        *avail = left;
    return 0;
}

/* max_out + 1 without overflow: the window that detects "more than max_out". */
static size_t limit_for(size_t max_out)
{
    return max_out == SIZE_MAX ? SIZE_MAX : max_out + 1;
}

/* Reserves exactly n more bytes, keeping the buffer usable on failure. */
static int reserve(stream_buf *out, size_t n)
{
    if (stream_buf_reserve(out, n) != 0) {
        out->oom = false;
        return STREAM_ENOMEM;
    }
    return 0;
}

/* ---- gzip ------------------------------------------------------------------ */

static int gzip_level(int level, int *zlevel)
{
    if (level == 0)
        *zlevel = Z_DEFAULT_COMPRESSION;
    else if (level >= 1 && level <= 9)
        *zlevel = level;
    else
        return STREAM_EINVAL;
    return 0;
}

static int gzip_compress(int level, const uint8_t *src, size_t len, stream_buf *out)
{
    int zlevel, rc;
    if ((rc = gzip_level(level, &zlevel)) != 0)
        return rc;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: deflate with a gzip header and trailer. */
    if (deflateInit2(&z, zlevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return STREAM_ENOMEM;
    size_t base = out->len;
    if (len <= UINT_MAX && (rc = reserve(out, deflateBound(&z, (uLong)len))) != 0)
        goto done;
    size_t pos = 0;
    for (;;) {
        size_t chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
        z.next_in = (Bytef *)(uintptr_t)(src + pos); /* zlib never writes input */
        z.avail_in = (uInt)chunk;
        uint8_t *dst;
        size_t avail;
        if ((rc = window(out, base, SIZE_MAX, &dst, &avail)) != 0)
            goto done;
        z.next_out = dst;
        z.avail_out = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
        uInt before_out = z.avail_out;
        int flush = pos + chunk == len ? Z_FINISH : Z_NO_FLUSH;
        int zr = deflate(&z, flush);
        pos += chunk - z.avail_in;
        out->len += before_out - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = STREAM_ENOMEM;
            goto done;
        }
    }
    rc = 0;
done:
    deflateEnd(&z);
    if (rc != 0)
        out->len = base;
    return rc;
}

static int gzip_decompress(const uint8_t *src, size_t len, size_t max_out, stream_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return STREAM_ENOMEM;
    size_t base = out->len, limit = limit_for(max_out), pos = 0;
    int rc;
    for (;;) {
        size_t chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
        z.next_in = (Bytef *)(uintptr_t)(src + pos); /* zlib never writes input */
        z.avail_in = (uInt)chunk;
        uint8_t *dst;
        size_t avail;
        if ((rc = window(out, base, limit, &dst, &avail)) != 0)
            goto done;
        z.next_out = dst;
        z.avail_out = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
        uInt before_out = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t used = chunk - z.avail_in, made = before_out - z.avail_out;
        pos += used;
        out->len += made;
        if (zr == Z_STREAM_END) {
            if (pos == len)
                break;
            /* Concatenated gzip members decode as one stream (as Java's
             * GZIPInputStream does). */
            if (inflateReset(&z) != Z_OK) {
                rc = STREAM_ECORRUPT;
                goto done;
            }
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            rc = STREAM_ENOMEM;
            goto done;
        }
        /* Z_BUF_ERROR with no progress means input ended mid-stream. */
        if ((zr != Z_OK && zr != Z_BUF_ERROR) || (used == 0 && made == 0)) {
            rc = STREAM_ECORRUPT;
            goto done;
        }
    }
    rc = out->len - base > max_out ? STREAM_ETOOLARGE : 0;
done:
    inflateEnd(&z);
    if (rc != 0)
        out->len = base;
    return rc;
}

/* ---- snappy ---------------------------------------------------------------- */

static int snappy_compress_xerial(const uint8_t *src, size_t len, stream_buf *out)
{
    size_t base = out->len;
    stream_buf_put(out, xerial_magic, sizeof xerial_magic);
    stream_buf_put_be32(out, 1); /* version */
    stream_buf_put_be32(out, 1); /* minimum compatible version */
    if (out->oom) {
        out->oom = false;
        out->len = base;
        return STREAM_ENOMEM;
    }
    for (size_t pos = 0; pos < len;) {
        size_t chunk = len - pos < XERIAL_BLOCK_SIZE ? len - pos : XERIAL_BLOCK_SIZE;
        size_t bound = snappy_max_compressed_length(chunk);
        if (reserve(out, 4 + bound) != 0) {
            out->len = base;
            return STREAM_ENOMEM;
        }
        size_t n = bound;
        if (snappy_compress((const char *)src + pos, chunk, (char *)out->data + out->len + 4,
                            &n) != SNAPPY_OK) {
            out->len = base;
            return STREAM_ENOMEM;
        }
        stream_store_be32(out->data + out->len, (uint32_t)n);
        out->len += 4 + n;
        pos += chunk;
    }
    return 0;
}

/* Decodes one raw snappy block, refusing it before allocating when it claims
 * more than `left` bytes. */
static int snappy_block(const uint8_t *src, size_t len, size_t left, stream_buf *out)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)src, len, &n) != SNAPPY_OK)
        return STREAM_ECORRUPT;
    if (n > left)
        return STREAM_ETOOLARGE;
    if (reserve(out, n) != 0)
        return STREAM_ENOMEM;
    /* An empty block reserves nothing, and out->data may still be NULL:
     * NULL + 0 is undefined, so snappy gets a byte of its own to aim at. */
    char empty[1];
    char *dst = n > 0 ? (char *)out->data + out->len : empty;
    size_t got = n;
    if (snappy_uncompress((const char *)src, len, dst, &got) != SNAPPY_OK ||
        got != n)
        return STREAM_ECORRUPT;
    out->len += n;
    return 0;
}

static int snappy_decompress(const uint8_t *src, size_t len, size_t max_out, stream_buf *out)
{
    size_t base = out->len;
    int rc = 0;
    if (len < sizeof xerial_magic || memcmp(src, xerial_magic, sizeof xerial_magic) != 0)
        return snappy_block(src, len, max_out, out); /* raw snappy: one block */
    if (len < XERIAL_HEADER_SIZE)
        return STREAM_ECORRUPT;
    for (size_t pos = XERIAL_HEADER_SIZE; pos < len;) {
        if (len - pos < 4) {
            rc = STREAM_ECORRUPT;
            break;
        }
        uint32_t n = stream_load_be32(src + pos);
        pos += 4;
        if (n > len - pos) {
            rc = STREAM_ECORRUPT;
            break;
        }
        if ((rc = snappy_block(src + pos, n, max_out - (out->len - base), out)) != 0)
            break;
        pos += n;
    }
    if (rc != 0)
        out->len = base;
    return rc;
}

/* ---- lz4 ------------------------------------------------------------------- */

static int lz4_compress(int level, const uint8_t *src, size_t len, stream_buf *out)
{
    if (stream_codec_check_level(STREAM_CODEC_LZ4, level) != 0)
        return STREAM_EINVAL;
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    /* Kafka's KafkaLZ4BlockOutputStream: 64 KiB independent blocks, no
     * checksums, no content size. */
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs.compressionLevel = level;
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    if (reserve(out, bound) != 0)
        return STREAM_ENOMEM;
    size_t n = LZ4F_compressFrame(out->data + out->len, bound, src, len, &prefs);
    if (LZ4F_isError(n))
        return STREAM_ENOMEM;
    out->len += n;
    return 0;
}

static int lz4_decompress(const uint8_t *src, size_t len, size_t max_out, stream_buf *out)
{
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
        return STREAM_ENOMEM;
    size_t base = out->len, limit = limit_for(max_out), pos = 0, hint = 1;
    int rc = 0;
    while (!(hint == 0 && pos == len)) {
        uint8_t *dst;
        size_t avail;
        if ((rc = window(out, base, limit, &dst, &avail)) != 0)
            break;
        size_t made = avail, used = len - pos;
        hint = LZ4F_decompress(d, dst, &made, src + pos, &used, NULL);
        if (LZ4F_isError(hint) || (made == 0 && used == 0)) {
            rc = STREAM_ECORRUPT; /* bad frame, or input ended mid-frame */
            break;
        }
        pos += used;
        out->len += made;
    }
    LZ4F_freeDecompressionContext(d);
    if (rc == 0 && out->len - base > max_out)
        rc = STREAM_ETOOLARGE;
    if (rc != 0)
        out->len = base;
    return rc;
}

/* ---- zstd ------------------------------------------------------------------ */

static int zstd_compress(int level, const uint8_t *src, size_t len, stream_buf *out)
{
    if (stream_codec_check_level(STREAM_CODEC_ZSTD, level) != 0)
        return STREAM_EINVAL;
    size_t bound = ZSTD_compressBound(len);
    if (ZSTD_isError(bound))
        return STREAM_EINVAL;
    if (reserve(out, bound) != 0)
        return STREAM_ENOMEM;
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (c == NULL)
        return STREAM_ENOMEM;
    size_t n = ZSTD_compressCCtx(c, out->data + out->len, bound, src, len,
                                 level == 0 ? ZSTD_CLEVEL_DEFAULT : level);
    ZSTD_freeCCtx(c);
    if (ZSTD_isError(n))
        return STREAM_ENOMEM;
    out->len += n;
    return 0;
}

static int zstd_decompress(const uint8_t *src, size_t len, size_t max_out, stream_buf *out)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d == NULL)
        return STREAM_ENOMEM;
    ZSTD_inBuffer in = {src, len, 0};
    size_t base = out->len, limit = limit_for(max_out), r = 1;
    int rc = 0;
    if (len == 0)
        rc = STREAM_ECORRUPT;
    /* r == 0: a frame ended and everything is flushed; more input is the next
     * frame, which zstd decodes as a continuation. */
    while (rc == 0 && !(r == 0 && in.pos == in.size)) {
        uint8_t *dst;
        size_t avail;
        if ((rc = window(out, base, limit, &dst, &avail)) != 0)
            break;
        ZSTD_outBuffer o = {dst, avail, 0};
        size_t before = in.pos;
        r = ZSTD_decompressStream(d, &o, &in);
        if (ZSTD_isError(r) || (o.pos == 0 && in.pos == before)) {
            rc = STREAM_ECORRUPT;
            break;
        }
        out->len += o.pos;
    }
    ZSTD_freeDCtx(d);
    if (rc == 0 && out->len - base > max_out)
        rc = STREAM_ETOOLARGE;
    if (rc != 0)
        out->len = base;
    return rc;
}

/* ---- dispatch -------------------------------------------------------------- */

int stream_codec_compress(stream_codec codec, int level, const void *src, size_t len,
                          stream_buf *out)
{
    switch (codec) {
    case STREAM_CODEC_NONE:
        if (reserve(out, len) != 0)
            return STREAM_ENOMEM;
        stream_buf_put(out, src, len);
        return 0;
    case STREAM_CODEC_GZIP:
        return gzip_compress(level, src, len, out);
    case STREAM_CODEC_SNAPPY:
        return snappy_compress_xerial(src, len, out);
    case STREAM_CODEC_LZ4:
        return lz4_compress(level, src, len, out);
    case STREAM_CODEC_ZSTD:
        return zstd_compress(level, src, len, out);
    }
    return STREAM_EINVAL;
}

int stream_codec_check_level(stream_codec codec, int level)
{
    int zlevel;
    switch (codec) {
    case STREAM_CODEC_NONE:
    case STREAM_CODEC_SNAPPY:
        return 0;
    case STREAM_CODEC_GZIP:
        return gzip_level(level, &zlevel);
    case STREAM_CODEC_LZ4:
        return level >= 0 && level <= 17 ? 0 : STREAM_EINVAL;
    case STREAM_CODEC_ZSTD:
        return level == 0 || (level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel())
                   ? 0
                   : STREAM_EINVAL;
    }
    return STREAM_EINVAL;
}

int stream_codec_decompress(stream_codec codec, const void *src, size_t len, size_t max_out,
                            stream_buf *out)
{
    switch (codec) {
    case STREAM_CODEC_NONE:
        if (len > max_out)
            return STREAM_ETOOLARGE;
        if (reserve(out, len) != 0)
            return STREAM_ENOMEM;
        stream_buf_put(out, src, len);
        return 0;
    case STREAM_CODEC_GZIP:
        return gzip_decompress(src, len, max_out, out);
    case STREAM_CODEC_SNAPPY:
        return snappy_decompress(src, len, max_out, out);
    case STREAM_CODEC_LZ4:
        return lz4_decompress(src, len, max_out, out);
    case STREAM_CODEC_ZSTD:
        return zstd_decompress(src, len, max_out, out);
    }
    return STREAM_EINVAL;
}

static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd"};

const char *stream_codec_name(stream_codec codec)
{
    if ((unsigned)codec < sizeof codec_names / sizeof codec_names[0])
        return codec_names[codec];
    return "unknown";
}

int stream_codec_from_name(const char *name)
{
    if (name == NULL)
        return STREAM_EINVAL;
    if (name[0] == '\0')
        return STREAM_CODEC_NONE;
    for (size_t i = 0; i < sizeof codec_names / sizeof codec_names[0]; i++)
        if (strcasecmp(name, codec_names[i]) == 0)
            return (int)i;
    return STREAM_EINVAL;
}
