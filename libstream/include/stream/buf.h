/*
 * buf.h - bytes in and out: a growable write buffer and a bounds-checked reader.
 *
 * Every on-disk and on-wire layout in stream is written through stream_buf and
 * read through stream_reader, so byte order and bounds checks live here and
 * nowhere else. Integers are big-endian (network order) unless the name says
 * "varint", which means Kafka's encoding: zigzag-encoded signed integers in
 * protobuf-style base-128 groups (7 bits per byte, least significant group
 * first, high bit set on every byte but the last).
 *
 * Writer invariants: data[0..len) is initialised; len <= cap; a failed
 * allocation leaves the buffer unchanged and sets `oom`, after which every put
 * is a no-op, so an encoder may write a whole structure and check once
 * (stream_buf_ok) at the end.
 *
 * Reader invariants: never reads past `len`. The first failed get sets `err`
 * (STREAM_ESHORT for running out of bytes, STREAM_ECORRUPT for a malformed
 * varint) and every later get fails too, so a decoder may read a run of fields
 * and check `err` once, jumping to its single error label.
 */
#ifndef STREAM_BUF_H
#define STREAM_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct stream_buf {
    uint8_t *data; /* The bytes; owned; NULL while cap == 0. */
    size_t len;    /* Bytes written so far. */
    size_t cap;    /* Bytes allocated. */
    bool oom;      /* An allocation failed; later writes are dropped. */
} stream_buf;

#define STREAM_BUF_INIT {NULL, 0, 0, false}

/* Initialises an empty buffer (no allocation). */
void stream_buf_init(stream_buf *b);
/* Frees the bytes and leaves the buffer empty and reusable. */
void stream_buf_release(stream_buf *b);
/* Sets len to 0 and clears `oom`, keeping the allocation for reuse. */
void stream_buf_reset(stream_buf *b);
/* Ensures room for `extra` more bytes. 0 or STREAM_ENOMEM (also sets oom). */
int stream_buf_reserve(stream_buf *b, size_t extra);
/* 0 when no write has failed, STREAM_ENOMEM otherwise. */
int stream_buf_ok(const stream_buf *b);

void stream_buf_put(stream_buf *b, const void *p, size_t n);
void stream_buf_put_u8(stream_buf *b, uint8_t v);
void stream_buf_put_be16(stream_buf *b, uint16_t v);
void stream_buf_put_be32(stream_buf *b, uint32_t v);
void stream_buf_put_be64(stream_buf *b, uint64_t v);
/* Kafka varint (zigzag int32) and varlong (zigzag int64). */
void stream_buf_put_varint(stream_buf *b, int32_t v);
void stream_buf_put_varlong(stream_buf *b, int64_t v);
/* Unsigned base-128 varint, no zigzag. */
void stream_buf_put_uvarint(stream_buf *b, uint64_t v);

/* Overwrite bytes already written (placeholders for lengths and CRCs).
 * `at + width` must be <= len; out-of-range patches are ignored. */
void stream_buf_patch_be32(stream_buf *b, size_t at, uint32_t v);
void stream_buf_patch_be64(stream_buf *b, size_t at, uint64_t v);

/* Bytes a value takes as a Kafka varint / varlong. */
size_t stream_varint_size(int32_t v);
size_t stream_varlong_size(int64_t v);

/* Big-endian loads and stores on raw memory (no bounds checks: the caller has
 * checked). */
uint16_t stream_load_be16(const uint8_t *p);
uint32_t stream_load_be32(const uint8_t *p);
uint64_t stream_load_be64(const uint8_t *p);
void stream_store_be32(uint8_t *p, uint32_t v);
void stream_store_be64(uint8_t *p, uint64_t v);

typedef struct stream_reader {
    const uint8_t *p; /* Borrowed: the bytes being decoded. */
    size_t len;       /* Total bytes at p. */
    size_t pos;       /* Next byte to read. */
    int err;          /* 0, or the first failure (STREAM_ESHORT/STREAM_ECORRUPT). */
} stream_reader;

/* Starts reading `len` bytes at `p` (borrowed for the reader's lifetime). */
void stream_reader_init(stream_reader *r, const void *p, size_t len);
/* Bytes left to read (0 once an error is set). */
size_t stream_reader_left(const stream_reader *r);

/* Each get returns 0, or the reader's error; on failure *out is set to 0. */
int stream_get_u8(stream_reader *r, uint8_t *out);
int stream_get_be16(stream_reader *r, uint16_t *out);
int stream_get_be32(stream_reader *r, uint32_t *out);
int stream_get_be64(stream_reader *r, uint64_t *out);
int stream_get_varint(stream_reader *r, int32_t *out);
int stream_get_varlong(stream_reader *r, int64_t *out);
int stream_get_uvarint(stream_reader *r, uint64_t *out);
/* Points *out at the next n bytes (borrowed from the reader's input). */
int stream_get_bytes(stream_reader *r, size_t n, const uint8_t **out);
/* Skips n bytes. */
int stream_skip(stream_reader *r, size_t n);

#endif /* STREAM_BUF_H */
