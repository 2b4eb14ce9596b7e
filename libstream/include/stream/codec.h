/*
 * codec.h - the four compression codecs Kafka clients use, behind one call.
 *
 * A compressed record batch stores its records (everything after the 61-byte
 * header) as one compressed blob; the codec id lives in attributes bits 0-2.
 * The framings are the ones Kafka's Java client writes, so batches interoperate:
 *
 *   id  name    framing
 *   --  ------  ----------------------------------------------------------
 *    0  none    the bytes as they are
 *    1  gzip    a gzip stream (RFC 1952; deflate with a gzip header/trailer)
 *    2  snappy  xerial snappy-java framing, as Java's SnappyOutputStream
 *               writes it:
 *                   "\x82SNAPPY\0" | version be32 = 1 | compatible be32 = 1 |
 *                   { chunkLength be32 | raw snappy block of <= 32 KiB }...
 *               Decompression also accepts one raw snappy block (what
 *               librdkafka and some other clients write).
 *    3  lz4     the LZ4 frame format (LZ4F), 64 KiB independent blocks, no
 *               block or content checksum, no content size, as Kafka writes
 *    4  zstd    one or more zstd frames
 *
 * Decompression is capped (max_out) because a few kilobytes of hostile input
 * can claim gigabytes of output; the cap is enforced while decompressing, so
 * no more than max_out bytes are ever allocated for the result.
 *
 * No state is kept between calls; each call creates and frees its own
 * compression context, so the functions are safe from any thread.
 */
#ifndef STREAM_CODEC_H
#define STREAM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

typedef enum stream_codec {
    STREAM_CODEC_NONE = 0,
    STREAM_CODEC_GZIP = 1,
    STREAM_CODEC_SNAPPY = 2,
    STREAM_CODEC_LZ4 = 3,
    STREAM_CODEC_ZSTD = 4,
} stream_codec;

/* Level 0 asks for the codec's default (gzip 6, lz4 fast, zstd 3). */
#define STREAM_CODEC_LEVEL_DEFAULT 0

/* The default decompression cap of the record iterator: 64 MiB. */
#define STREAM_CODEC_MAX_DECOMPRESSED ((size_t)64 << 20)

/* Appends the compressed form of src[0..len) to out. level: 0 for the default,
 * gzip 1..9, lz4 1..17 (Kafka's range: 3 and up use LZ4HC, above 12 acts as
 * 12), zstd ZSTD_minCLevel()..ZSTD_maxCLevel() (22),
 * ignored for snappy and none. Returns 0, STREAM_EINVAL (unknown codec, level
 * out of range), STREAM_ENOMEM. On failure out->len is unchanged. */
int stream_codec_compress(stream_codec codec, int level, const void *src, size_t len,
                          stream_buf *out);

/* 0 when `level` is valid for `codec` (see stream_codec_compress), else
 * STREAM_EINVAL (also for an unknown codec). */
int stream_codec_check_level(stream_codec codec, int level);

/* Appends the decompressed form of src[0..len) to out, producing at most
 * max_out bytes. Returns 0, STREAM_ECORRUPT (malformed input, trailing
 * garbage, truncated stream), STREAM_ETOOLARGE (output would pass max_out),
 * STREAM_EINVAL (unknown codec), STREAM_ENOMEM. On failure out->len is
 * unchanged. */
int stream_codec_decompress(stream_codec codec, const void *src, size_t len, size_t max_out,
                            stream_buf *out);

/* "none", "gzip", "snappy", "lz4", "zstd" (Kafka's compression.type values);
 * "unknown" for other values. */
const char *stream_codec_name(stream_codec codec);

/* Parses a codec name (case-insensitive; "" and "none" are NONE). Returns the
 * codec (>= 0) or STREAM_EINVAL. */
int stream_codec_from_name(const char *name);

#endif /* STREAM_CODEC_H */
