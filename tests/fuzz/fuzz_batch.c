/*
 * fuzz_batch.c - RecordBatch v2 decoding on hostile bytes (batch.h).
 *
 * The broker runs stream_batch_check/validate on every produced batch and
 * log recovery runs the header decoder on whatever is on disk, so these must
 * hold on any input. Each input is tried twice over:
 *
 *   1. as a whole batch: header decode, check, validate, then the record and
 *      header iterators (also when validation failed: the iterator must be
 *      bounds-safe on its own, it does not check the CRC);
 *   2. as the compressed records of a well-formed header, once per codec
 *      (gzip, snappy, lz4, zstd) with a correct CRC, so the fuzzer reaches
 *      the decompress-then-parse path without having to forge a CRC-32C.
 *
 * Properties checked beyond "no crash": the levels agree (validate ok implies
 * check ok implies header ok), a checked batch's CRC really is the CRC-32C of
 * its bytes, a validated batch iterates to exactly recordCount records with
 * offsets base+0, base+1, ..., and rebuilding a validated batch's records
 * with the builder gives a batch that validates to the same records.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/crc32c.h"
#include "stream/error.h"

/* Iterator cap: well above what a small input can honestly expand to, small
 * enough that a decompression bomb costs milliseconds, not the run. */
#define ITER_MAX_DECOMPRESSED ((size_t)4 << 20)
/* Records the rebuild keeps (a batch of millions of empty records is legal
 * but would make the rebuild dominate the run). */
#define REBUILD_MAX_RECORDS 4096

/* Walks the record's headers; returns how many the iterator yielded, or a
 * negative error. */
static int walk_headers(const stream_record *rec)
{
    stream_header_iter hi;
    stream_header h;
    int n = 0, rc;
    stream_header_iter_start(&hi, rec);
    while ((rc = stream_header_iter_next(&hi, &h)) == 1) {
        FUZZ_CHECK(h.name_len >= 0);
        FUZZ_CHECK(h.value_len >= -1);
        FUZZ_CHECK((h.value == NULL) == (h.value_len == -1));
        fuzz_touch(h.name, (size_t)h.name_len);
        if (h.value_len > 0)
            fuzz_touch(h.value, (size_t)h.value_len);
        n++;
    }
    return rc < 0 ? rc : n;
}

static void check_record(const stream_record *rec)
{
    FUZZ_CHECK(rec->key_len >= -1 && rec->value_len >= -1);
    FUZZ_CHECK((rec->key == NULL) == (rec->key_len == -1));
    FUZZ_CHECK((rec->value == NULL) == (rec->value_len == -1));
    if (rec->key_len > 0)
        fuzz_touch(rec->key, (size_t)rec->key_len);
    if (rec->value_len > 0)
        fuzz_touch(rec->value, (size_t)rec->value_len);
    fuzz_touch(rec->headers, rec->headers_len);
    /* The record iterator has checked the headers: the header iterator may
     * not fail on them and must yield header_count of them. */
    int n = walk_headers(rec);
    FUZZ_CHECK_MSG(n == rec->header_count, "header iterator gave %d, record says %d", n,
                   rec->header_count);
}

/* Appends every record of the batch at p to builder b (which must be empty).
 * Returns the records appended, or -1 when the batch has too many to bother. */
static int rebuild(const uint8_t *p, size_t len, stream_batch_builder *b)
{
    stream_record_iter it;
    stream_record rec;
    int n = 0, rc = stream_record_iter_start(&it, p, len);
    FUZZ_CHECK_MSG(rc == 0, "iterator refused a validated batch: %s", stream_strerror(rc));
    if (it.info.record_count > REBUILD_MAX_RECORDS) {
        stream_record_iter_stop(&it);
        return -1;
    }
    while ((rc = stream_record_iter_next(&it, &rec)) == 1) {
        stream_header hs[64];
        stream_header *heap = NULL, *h = hs;
        if (rec.header_count > 64) {
            heap = malloc((size_t)rec.header_count * sizeof *heap);
            FUZZ_CHECK(heap != NULL);
            h = heap;
        }
        stream_header_iter hi;
        int32_t k = 0;
        stream_header_iter_start(&hi, &rec);
        while (stream_header_iter_next(&hi, &h[k]) == 1)
            k++;
        FUZZ_CHECK(k == rec.header_count);
        rc = stream_batch_builder_append(b, rec.timestamp, rec.key, rec.key_len, rec.value,
                                         rec.value_len, h, (size_t)k);
        free(heap);
        FUZZ_CHECK_MSG(rc == 0, "builder refused a record a valid batch held: %s",
                       stream_strerror(rc));
        n++;
    }
    FUZZ_CHECK(rc == 0);
    stream_record_iter_stop(&it);
    return n;
}

/* The records of batches a and b are equal (offsets relative to each base). */
static void same_records(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    stream_record_iter ia, ib;
    stream_record ra, rb;
    FUZZ_CHECK(stream_record_iter_start(&ia, a, alen) == 0);
    FUZZ_CHECK(stream_record_iter_start(&ib, b, blen) == 0);
    int rca, rcb;
    for (;;) {
        rca = stream_record_iter_next(&ia, &ra);
        rcb = stream_record_iter_next(&ib, &rb);
        FUZZ_CHECK(rca == rcb);
        if (rca != 1)
            break;
        FUZZ_CHECK(ra.offset - ia.info.base_offset == rb.offset - ib.info.base_offset);
        FUZZ_CHECK(ra.timestamp == rb.timestamp);
        FUZZ_CHECK(ra.key_len == rb.key_len && ra.value_len == rb.value_len);
        FUZZ_CHECK(ra.key_len <= 0 || memcmp(ra.key, rb.key, (size_t)ra.key_len) == 0);
        FUZZ_CHECK(ra.value_len <= 0 || memcmp(ra.value, rb.value, (size_t)ra.value_len) == 0);
        FUZZ_CHECK(ra.header_count == rb.header_count);
        /* Header by header: the raw bytes may differ, as a varint written
         * longer than it needs (valid, and kept as sent) is rebuilt short. */
        stream_header_iter ha, hb;
        stream_header xa, xb;
        stream_header_iter_start(&ha, &ra);
        stream_header_iter_start(&hb, &rb);
        int ka, kb;
        while ((ka = stream_header_iter_next(&ha, &xa)) == 1) {
            kb = stream_header_iter_next(&hb, &xb);
            FUZZ_CHECK(kb == 1);
            FUZZ_CHECK(xa.name_len == xb.name_len && xa.value_len == xb.value_len);
            FUZZ_CHECK(xa.name_len == 0 || memcmp(xa.name, xb.name, (size_t)xa.name_len) == 0);
            FUZZ_CHECK(xa.value_len <= 0 ||
                       memcmp(xa.value, xb.value, (size_t)xa.value_len) == 0);
        }
        FUZZ_CHECK(ka == 0 && stream_header_iter_next(&hb, &xb) == 0);
    }
    FUZZ_CHECK(rca == 0);
    stream_record_iter_stop(&ia);
    stream_record_iter_stop(&ib);
}

/* Every decoder over one candidate batch. `wrapped` says the header is ours
 * (built around the input with a correct CRC), so check must pass. */
static void try_batch(const uint8_t *p, size_t len, bool wrapped)
{
    char err[256];
    stream_batch_info hinfo, cinfo, vinfo;
    int hrc = stream_batch_header_decode(p, len, &hinfo);
    int crc = stream_batch_check(p, len, &cinfo, err, sizeof err);
    int vrc = stream_batch_validate(p, len, &vinfo, err, sizeof err);

    if (hrc == 0) {
        FUZZ_CHECK(hinfo.magic == STREAM_BATCH_MAGIC);
        FUZZ_CHECK(hinfo.batch_length >= STREAM_BATCH_MIN_LENGTH);
        FUZZ_CHECK(hinfo.size == (size_t)hinfo.batch_length + STREAM_BATCH_LOG_OVERHEAD);
        FUZZ_CHECK(hinfo.record_count >= 0 && hinfo.last_offset_delta >= 0);
    }
    if (crc == 0) {
        FUZZ_CHECK(hrc == 0);
        FUZZ_CHECK(cinfo.size <= len);
        FUZZ_CHECK(stream_crc32c(0, p + STREAM_BATCH_OFF_ATTRIBUTES,
                                 cinfo.size - STREAM_BATCH_OFF_ATTRIBUTES) == cinfo.crc);
    }
    if (wrapped)
        FUZZ_CHECK_MSG(crc == 0, "check refused a well-formed header: %s", err);
    if (vrc == 0)
        FUZZ_CHECK(crc == 0);

    /* The iterator on its own, CRC or not. */
    stream_record_iter it;
    stream_record rec;
    int rc = stream_record_iter_start_max(&it, p, len, ITER_MAX_DECOMPRESSED);
    int32_t n = 0;
    if (rc == 0) {
        int64_t prev = INT64_MIN;
        while ((rc = stream_record_iter_next(&it, &rec)) == 1) {
            check_record(&rec);
            FUZZ_CHECK(rec.offset > prev || n == 0);
            prev = rec.offset;
            n++;
        }
        /* Errors are sticky. */
        if (rc < 0)
            FUZZ_CHECK(stream_record_iter_next(&it, &rec) == rc);
        else
            FUZZ_CHECK(n == it.info.record_count);
    }
    stream_record_iter_stop(&it);

    if (vrc == 0 && n == vinfo.record_count && vinfo.record_count > 0) {
        /* Validated (and the iterator, with its smaller cap, got through):
         * the builder must reproduce the same records. */
        stream_batch_builder b;
        stream_batch_builder_init(&b);
        if (rebuild(p, len, &b) > 0) {
            const uint8_t *out;
            size_t out_len;
            FUZZ_CHECK(stream_batch_builder_finish(&b, &out, &out_len) == 0);
            stream_batch_info rinfo;
            rc = stream_batch_validate(out, out_len, &rinfo, err, sizeof err);
            FUZZ_CHECK_MSG(rc == 0, "rebuilt batch does not validate: %s", err);
            FUZZ_CHECK(rinfo.record_count == vinfo.record_count);
            same_records(p, len, out, out_len);
        }
        stream_batch_builder_release(&b);
    }
}

/* A header for `records` as the compressed payload of `codec`, CRC included. */
static void wrap(stream_buf *out, const uint8_t *records, size_t len, int codec)
{
    stream_buf_reset(out);
    stream_buf_put_be64(out, 0);                                         /* baseOffset */
    stream_buf_put_be32(out, (uint32_t)(STREAM_BATCH_MIN_LENGTH + len)); /* batchLength */
    stream_buf_put_be32(out, UINT32_MAX);                                /* leader epoch -1 */
    stream_buf_put_u8(out, STREAM_BATCH_MAGIC);                          /* magic */
    stream_buf_put_be32(out, 0);                                         /* crc, patched */
    stream_buf_put_be16(out, (uint16_t)codec);                           /* attributes */
    stream_buf_put_be32(out, 2);                                         /* lastOffsetDelta */
    stream_buf_put_be64(out, 1732442400000u);                            /* baseTimestamp */
    stream_buf_put_be64(out, 1732442400000u);                            /* maxTimestamp */
    stream_buf_put_be64(out, UINT64_MAX);                                /* producerId -1 */
    stream_buf_put_be16(out, UINT16_MAX);                                /* producerEpoch -1 */
    stream_buf_put_be32(out, UINT32_MAX);                                /* baseSequence -1 */
    stream_buf_put_be32(out, 3);                                         /* recordCount */
    stream_buf_put(out, records, len);
    FUZZ_CHECK(stream_buf_ok(out) == 0);
    stream_buf_patch_be32(out, STREAM_BATCH_OFF_CRC,
                          stream_crc32c(0, out->data + STREAM_BATCH_OFF_ATTRIBUTES,
                                        out->len - STREAM_BATCH_OFF_ATTRIBUTES));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so ASan catches a read one byte past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    try_batch(copy, size, false);
    free(copy);

    if (size > (size_t)INT32_MAX - STREAM_BATCH_MIN_LENGTH)
        return 0;
    stream_buf b;
    stream_buf_init(&b);
    for (int codec = 1; codec <= 4; codec++) {
        wrap(&b, data, size, codec);
        uint8_t *exact = malloc(b.len);
        FUZZ_CHECK(exact != NULL);
        memcpy(exact, b.data, b.len);
        try_batch(exact, b.len, true);
        free(exact);
    }
    stream_buf_release(&b);
    return 0;
}
