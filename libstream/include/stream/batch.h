/*
 * batch.h - Kafka RecordBatch v2 (magic 2): build, check, iterate.
 *
 * One format on the producer's wire, on disk and on the consumer's wire, so
 * the broker never re-encodes records. All integers are big-endian.
 *
 *   offset size  field
 *   ------ ----  ------------------------------------------------------------
 *        0    8  baseOffset            int64  stamped by the broker
 *        8    4  batchLength           int32  bytes after this field
 *       12    4  partitionLeaderEpoch  int32  stamped by the broker (-1 from producers)
 *       16    1  magic                 int8   = 2
 *       17    4  crc                   uint32 CRC-32C of bytes [21, end)
 *       21    2  attributes            int16  bits 0-2 codec, 3 timestamp type,
 *                                             4 transactional, 5 control
 *       23    4  lastOffsetDelta       int32  offset delta of the last record
 *       27    8  baseTimestamp         int64  ms since epoch
 *       35    8  maxTimestamp          int64
 *       43    8  producerId            int64  -1 when not idempotent
 *       51    2  producerEpoch         int16  -1
 *       53    4  baseSequence          int32  -1
 *       57    4  recordCount           int32
 *       61       records (compressed as a whole when the codec is not 0)
 *
 *   total size = 12 + batchLength
 *
 * A record (lengths and deltas are zigzag varints, see buf.h):
 *
 *   length varint | attributes int8 | timestampDelta varlong |
 *   offsetDelta varint | keyLength varint | key | valueLength varint | value |
 *   headerCount varint | headers...
 *   header: keyLength varint | key | valueLength varint | value
 *
 * A length of -1 means null (key, value, header value); 0 means empty. The
 * CRC does not cover baseOffset, batchLength or partitionLeaderEpoch, so the
 * broker stamps baseOffset and the epoch in place without recomputing it.
 *
 * A record's length is the number of bytes after the length varint, so a
 * reader can skip a record without parsing it. Record attributes are unused
 * (written 0). baseTimestamp is the first record's timestamp; maxTimestamp is
 * the largest. Deltas are computed with wrapping (two's complement) arithmetic
 * as in Kafka's Java code.
 *
 * Checking levels:
 *   stream_batch_header_decode  the 61-byte header alone (for log scans)
 *   stream_batch_check          header + sizes + CRC (what the broker and log
 *                               recovery use; works on compressed batches)
 *   stream_batch_validate       check + every record parsed, record count and
 *                               offset deltas consistent (what a client or a
 *                               test uses on uncompressed data)
 */
#ifndef STREAM_BATCH_H
#define STREAM_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"
#include "stream/codec.h"

#define STREAM_BATCH_HEADER_SIZE 61 /* bytes before the first record */
#define STREAM_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define STREAM_BATCH_MAGIC 2
/* The smallest legal batchLength: a header with no records. */
#define STREAM_BATCH_MIN_LENGTH (STREAM_BATCH_HEADER_SIZE - STREAM_BATCH_LOG_OVERHEAD)

/* Field offsets inside a batch. */
#define STREAM_BATCH_OFF_BASE_OFFSET 0
#define STREAM_BATCH_OFF_LENGTH 8
#define STREAM_BATCH_OFF_LEADER_EPOCH 12
#define STREAM_BATCH_OFF_MAGIC 16
#define STREAM_BATCH_OFF_CRC 17
#define STREAM_BATCH_OFF_ATTRIBUTES 21
#define STREAM_BATCH_OFF_LAST_OFFSET_DELTA 23
#define STREAM_BATCH_OFF_BASE_TIMESTAMP 27
#define STREAM_BATCH_OFF_MAX_TIMESTAMP 35
#define STREAM_BATCH_OFF_PRODUCER_ID 43
#define STREAM_BATCH_OFF_PRODUCER_EPOCH 51
#define STREAM_BATCH_OFF_BASE_SEQUENCE 53
#define STREAM_BATCH_OFF_RECORD_COUNT 57

/* Attribute bits. Codec ids are Kafka's. */
#define STREAM_BATCH_ATTR_CODEC_MASK 0x07
#define STREAM_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define STREAM_BATCH_ATTR_TRANSACTIONAL 0x10
#define STREAM_BATCH_ATTR_CONTROL 0x20

/* stream_codec (NONE, GZIP, SNAPPY, LZ4, ZSTD) lives in codec.h. */

/* A record header as given to the builder or returned by the iterator.
 * Pointers are borrowed. */
typedef struct stream_header {
    const uint8_t *name; /* Header name bytes (not NUL-terminated). */
    int32_t name_len;    /* >= 0. */
    const uint8_t *value; /* Header value bytes; NULL when value_len is -1. */
    int32_t value_len;   /* -1 for a null value. */
} stream_header;

/* A decoded record. Every pointer borrows from the batch bytes the iterator
 * was started on. */
typedef struct stream_record {
    int64_t offset;        /* baseOffset + offsetDelta. */
    int64_t timestamp;     /* ms since epoch (baseTimestamp + delta, or
                              maxTimestamp for log-append-time batches). */
    const uint8_t *key;    /* NULL when key_len is -1. */
    int32_t key_len;       /* -1 for a null key. */
    const uint8_t *value;  /* NULL when value_len is -1. */
    int32_t value_len;     /* -1 for a null value (a tombstone). */
    int32_t header_count;  /* Number of headers. */
    const uint8_t *headers; /* The encoded headers, for stream_header_iter. */
    size_t headers_len;    /* Bytes at headers. */
    const uint8_t *raw;    /* The whole encoded record (length varint to the last header),
                              borrowed like key and value: a copy is this record again in a
                              batch of the same baseOffset and baseTimestamp. */
    size_t raw_len;        /* Bytes at raw. */
} stream_record;

/* The decoded 61-byte header plus the batch's total size. */
typedef struct stream_batch_info {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
    size_t size; /* 12 + batch_length: the bytes the whole batch takes. */
} stream_batch_info;

/* Decodes the header of the batch at p. Needs len >= 61; does not need the
 * whole batch and does not check the CRC. Errors: STREAM_ESHORT (len < 61),
 * STREAM_EMAGIC (magic != 2), STREAM_ECORRUPT (batchLength < 49, negative
 * recordCount or lastOffsetDelta, unknown codec bits, a negative baseOffset
 * or one whose baseOffset + lastOffsetDelta + 1 would pass INT64_MAX). */
int stream_batch_header_decode(const uint8_t *p, size_t len, stream_batch_info *info);

/* Decodes the header, checks the whole batch is within len (STREAM_ESHORT if
 * not), and verifies the CRC (STREAM_ECRC). Does not parse records, so it
 * works on compressed batches. errbuf (may be NULL) gets a sentence naming
 * the field on failure. */
int stream_batch_check(const uint8_t *p, size_t len, stream_batch_info *info, char *errbuf,
                       size_t errbuf_len);

/* stream_batch_check, then parses every record: each record's length matches
 * its fields, offset deltas are 0, 1, 2... in order, the count matches
 * recordCount, and lastOffsetDelta is recordCount - 1 (a batch of 0 records,
 * which only compaction makes, may have any lastOffsetDelta >= 0).
 * Compressed batches are decompressed (at most STREAM_CODEC_MAX_DECOMPRESSED
 * bytes). Errors: those of stream_batch_check, STREAM_ECORRUPT for anything
 * inconsistent in the records or the compressed payload, STREAM_ETOOLARGE
 * when decompression passes the cap, STREAM_ENOMEM. This is what the broker
 * runs on produced batches: it is where a record count of INT32_MAX with one
 * record present is caught. */
int stream_batch_validate(const uint8_t *p, size_t len, stream_batch_info *info, char *errbuf,
                          size_t errbuf_len);

/* Stamps baseOffset / partitionLeaderEpoch in place; the CRC stays valid.
 * p must hold at least the batch header. */
void stream_batch_set_base_offset(uint8_t *p, int64_t base_offset);
void stream_batch_set_leader_epoch(uint8_t *p, int32_t epoch);

/*
 * The builder. Records are encoded straight into one buffer behind a header
 * of placeholders; finish patches count, deltas, timestamps and the CRC.
 *
 *   stream_batch_builder b;
 *   stream_batch_builder_init(&b);
 *   stream_batch_builder_append(&b, ts, key, klen, value, vlen, NULL, 0);
 *   stream_batch_builder_finish(&b, &bytes, &len);   // bytes owned by b
 *   ...
 *   stream_batch_builder_reset(&b);                  // next batch, same memory
 *   stream_batch_builder_release(&b);
 */
typedef struct stream_batch_builder {
    stream_buf buf;          /* private: header placeholders then records,
                                always uncompressed */
    stream_buf zbuf;         /* private: the finished batch when compressed */
    int64_t base_timestamp;  /* private: first record's timestamp */
    int64_t max_timestamp;   /* private: largest timestamp so far */
    int32_t count;           /* read-only: records appended */
    int16_t attributes;      /* private: codec and flags for the header */
    int level;               /* private: compression level (0 = default) */
    int64_t producer_id;     /* private: producerId for the header, -1 */
    int16_t producer_epoch;  /* private: producerEpoch, -1 */
    int32_t base_sequence;   /* private: baseSequence, -1 */
    bool finished;           /* private: buf or zbuf holds the finished batch */
} stream_batch_builder;

/* Initialises an empty builder for an uncompressed batch. Does not allocate. */
void stream_batch_builder_init(stream_batch_builder *b);
/* Chooses the codec for the batches this builder finishes (kept across
 * reset). Records are still appended uncompressed; finish compresses them as
 * a whole, so this may be called at any time before finish. level: see
 * stream_codec_compress (0 = the codec's default). Returns 0 or STREAM_EINVAL
 * (unknown codec or level out of range); on error nothing changes. */
int stream_batch_builder_set_codec(stream_batch_builder *b, stream_codec codec, int level);
/* Sets the idempotent-producer fields of the batch (Kafka's producerId,
 * producerEpoch, baseSequence; all -1, the default, for a batch without
 * them). The CRC covers them, so they belong in the batch before finish;
 * on a batch already finished (no append since) the finished bytes are
 * patched in place and the CRC recomputed, so a producer can restamp a
 * batch it resends under a new epoch (the pointer finish gave stays valid).
 * reset and release go back to -1. Returns 0 or STREAM_EINVAL (a value below
 * -1, or producer_id >= 0 with a negative epoch or sequence); on error
 * nothing changes. */
int stream_batch_builder_set_producer(stream_batch_builder *b, int64_t producer_id,
                                      int16_t producer_epoch, int32_t base_sequence);
/* Frees the builder's memory. */
void stream_batch_builder_release(stream_batch_builder *b);
/* Discards the records so far and starts a new batch, keeping the memory and
 * the codec. */
void stream_batch_builder_reset(stream_batch_builder *b);
/* Appends one record; the record gets offset delta `count` and a timestamp
 * delta from the first record's timestamp. key/value may be NULL with length
 * -1 (null); headers may be NULL when header_count is 0; a header name may
 * not be null (name_len >= 0), its value may (value_len -1). Allocates only
 * when the buffer has to grow (amortised doubling). Returns 0, STREAM_EINVAL
 * (a length below -1, a NULL pointer with a positive length, more than
 * INT32_MAX headers, or a full batch of INT32_MAX records), STREAM_ETOOLARGE
 * (the batch would pass INT32_MAX bytes), or STREAM_ENOMEM. On error the
 * builder is unchanged. */
int stream_batch_builder_append(stream_batch_builder *b, int64_t timestamp, const void *key,
                                int32_t key_len, const void *value, int32_t value_len,
                                const stream_header *headers, size_t header_count);
/* The batch's size in bytes if finished now, uncompressed (an upper bound
 * for a compressed batch in practice; compression happens only at finish). */
size_t stream_batch_builder_size(const stream_batch_builder *b);
/* Completes the batch (baseOffset 0, leader epoch -1, the producer fields
 * given to set_producer (default -1), create-time timestamps), compressing
 * the records when a codec is set, and points *out at its bytes, owned by
 * the builder until the next reset/append/release/set_codec. May be called
 * again after more appends.
 * Returns 0, STREAM_EINVAL (no records), STREAM_ETOOLARGE (compressed batch
 * past INT32_MAX bytes) or STREAM_ENOMEM. */
int stream_batch_builder_finish(stream_batch_builder *b, const uint8_t **out, size_t *out_len);

/*
 * Iterating over a batch's records:
 *
 *   stream_record_iter it;
 *   stream_record rec;
 *   int rc = stream_record_iter_start(&it, p, len);
 *   if (rc == 0)
 *       while ((rc = stream_record_iter_next(&it, &rec)) == 1)
 *           use(&rec);
 *   stream_record_iter_stop(&it);
 *   // rc == 0: all records seen; rc < 0: error
 *
 * The iterator checks bounds but not the CRC (use stream_batch_check first
 * on untrusted bytes). It accepts offset deltas that increase with gaps
 * (compacted batches) but not ones that repeat or go backwards or pass
 * lastOffsetDelta; stream_batch_validate additionally insists on 0, 1, 2...
 * Compressed records are decompressed once, at start, into the iterator's
 * scratch buffer; records then borrow from that buffer.
 */
typedef struct stream_record_iter {
    stream_batch_info info; /* read-only: the batch header */
    stream_reader r;        /* private: over the (decompressed) records */
    int32_t index;          /* private: records returned so far */
    int32_t last_delta;     /* private: offset delta of the previous record, -1 */
    stream_buf scratch;     /* private: decompressed records, when compressed */
} stream_record_iter;

/* Starts iterating the batch at p (borrowed for the iterator's lifetime).
 * Returns 0, or the stream_batch_header_decode errors, STREAM_ESHORT when len
 * is less than the batch size, STREAM_ECORRUPT (a corrupt compressed payload,
 * or a record count the records' bytes cannot possibly hold),
 * STREAM_ETOOLARGE (decompressed records past STREAM_CODEC_MAX_DECOMPRESSED),
 * STREAM_ENOMEM. */
int stream_record_iter_start(stream_record_iter *it, const uint8_t *p, size_t len);
/* The same with a caller's cap on the decompressed size of the records. */
int stream_record_iter_start_max(stream_record_iter *it, const uint8_t *p, size_t len,
                                 size_t max_decompressed);
/* Returns 1 and fills *rec, 0 at the end (after checking the count matched
 * and no bytes were left over), or STREAM_ECORRUPT. The batch's size is
 * known and checked at start, so running out of bytes inside it is
 * corruption, never truncation. After an error, next keeps returning it. */
int stream_record_iter_next(stream_record_iter *it, stream_record *rec);
/* Frees what the iterator holds. Safe after any return of start. */
void stream_record_iter_stop(stream_record_iter *it);

typedef struct stream_header_iter {
    stream_reader r;  /* private */
    int32_t left;     /* private: headers still to return */
} stream_header_iter;

/* Iterates rec's headers (borrowing from the batch). next returns 1 with a
 * header, 0 at the end, or STREAM_ECORRUPT (never for a record the record
 * iterator returned: it has checked the headers already). */
void stream_header_iter_start(stream_header_iter *it, const stream_record *rec);
int stream_header_iter_next(stream_header_iter *it, stream_header *h);

#endif /* STREAM_BATCH_H */
