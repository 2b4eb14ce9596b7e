/*
 * batch.c - Kafka RecordBatch v2: decode, check, build, iterate (see batch.h).
 *
 * The builder writes a 61-byte header of placeholders, then encodes each
 * record straight behind it: the record's size is computed first from the
 * field lengths (stream_varint_size), the buffer grows once for the whole
 * record, and the fields are written with puts that can no longer fail. So an
 * append either adds a complete record or leaves the builder untouched, and
 * costs no allocation beyond the buffer's amortised doubling. finish patches
 * the header and computes the CRC over the final bytes; for a compressed
 * batch it writes the header and the compressed records into a second buffer
 * (zbuf), leaving the uncompressed records in place so more can be appended.
 *
 * Readers trust nothing: every length is compared with what remains in the
 * enclosing record, and every record with what remains in the batch. A batch
 * whose size was checked at start cannot be "short" inside, so every failure
 * within it is STREAM_ECORRUPT.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stream/batch.h"
#include "stream/crc32c.h"
#include "stream/error.h"
#include "base/internal.h"

/* The smallest record: length, attributes, timestampDelta, offsetDelta,
 * keyLength, valueLength, headerCount, one byte each. Lets the iterator
 * reject a record count the bytes cannot hold before looking at a record. */
#define MIN_RECORD_SIZE 7

/* An empty array to point readers at instead of NULL. */
static const uint8_t empty_bytes[1];

/* ---- header ---------------------------------------------------------------- */

int stream_batch_header_decode(const uint8_t *p, size_t len, stream_batch_info *info)
{
    memset(info, 0, sizeof *info);
    if (len < STREAM_BATCH_HEADER_SIZE)
        return STREAM_ESHORT;
    info->base_offset = (int64_t)stream_load_be64(p + STREAM_BATCH_OFF_BASE_OFFSET);
    info->batch_length = (int32_t)stream_load_be32(p + STREAM_BATCH_OFF_LENGTH);
    info->partition_leader_epoch = (int32_t)stream_load_be32(p + STREAM_BATCH_OFF_LEADER_EPOCH);
    info->magic = (int8_t)p[STREAM_BATCH_OFF_MAGIC];
    info->crc = stream_load_be32(p + STREAM_BATCH_OFF_CRC);
    info->attributes = (int16_t)stream_load_be16(p + STREAM_BATCH_OFF_ATTRIBUTES);
    info->last_offset_delta = (int32_t)stream_load_be32(p + STREAM_BATCH_OFF_LAST_OFFSET_DELTA);
    info->base_timestamp = (int64_t)stream_load_be64(p + STREAM_BATCH_OFF_BASE_TIMESTAMP);
    info->max_timestamp = (int64_t)stream_load_be64(p + STREAM_BATCH_OFF_MAX_TIMESTAMP);
    info->producer_id = (int64_t)stream_load_be64(p + 43);
    info->producer_epoch = (int16_t)stream_load_be16(p + 51);
    info->base_sequence = (int32_t)stream_load_be32(p + 53);
    info->record_count = (int32_t)stream_load_be32(p + STREAM_BATCH_OFF_RECORD_COUNT);
    if (info->magic != STREAM_BATCH_MAGIC)
        return STREAM_EMAGIC;
    if (info->batch_length < STREAM_BATCH_MIN_LENGTH)
        return STREAM_ECORRUPT;
    if (info->record_count < 0 || info->last_offset_delta < 0)
        return STREAM_ECORRUPT;
    /* Everyone sums these (the next offset is baseOffset + lastOffsetDelta
     * + 1): refusing what no log can hold keeps every such sum in range. */
    if (info->base_offset < 0 || info->base_offset > INT64_MAX - 1 - info->last_offset_delta)
        return STREAM_ECORRUPT;
    if ((info->attributes & STREAM_BATCH_ATTR_CODEC_MASK) > STREAM_CODEC_ZSTD)
        return STREAM_ECORRUPT;
    info->size = STREAM_BATCH_LOG_OVERHEAD + (size_t)info->batch_length;
    return 0;
}

/* Header decode with a sentence for the caller. */
static int header_decode_err(const uint8_t *p, size_t len, stream_batch_info *info,
                             char *errbuf, size_t errbuf_len)
{
    int rc = stream_batch_header_decode(p, len, info);
    switch (rc) {
    case 0:
        break;
    case STREAM_ESHORT:
        stream__errf(errbuf, errbuf_len, "batch header truncated: %zu of %d bytes", len,
                     STREAM_BATCH_HEADER_SIZE);
        break;
    case STREAM_EMAGIC:
        stream__errf(errbuf, errbuf_len, "batch magic %d, expected %d", info->magic,
                     STREAM_BATCH_MAGIC);
        break;
    default:
        if (info->batch_length < STREAM_BATCH_MIN_LENGTH)
            stream__errf(errbuf, errbuf_len, "batchLength %d below the minimum %d",
                         info->batch_length, STREAM_BATCH_MIN_LENGTH);
        else if (info->record_count < 0)
            stream__errf(errbuf, errbuf_len, "negative recordCount %d", info->record_count);
        else if (info->last_offset_delta < 0)
            stream__errf(errbuf, errbuf_len, "negative lastOffsetDelta %d",
                         info->last_offset_delta);
        else if (info->base_offset < 0 || info->base_offset > INT64_MAX - 1 - info->last_offset_delta)
            stream__errf(errbuf, errbuf_len, "baseOffset %" PRId64 " out of range",
                         info->base_offset);
        else
            stream__errf(errbuf, errbuf_len, "unknown compression codec %d in attributes 0x%04x",
                         info->attributes & STREAM_BATCH_ATTR_CODEC_MASK,
                         (unsigned)(uint16_t)info->attributes);
        break;
    }
    return rc;
}

int stream_batch_check(const uint8_t *p, size_t len, stream_batch_info *info, char *errbuf,
                       size_t errbuf_len)
{
    int rc = header_decode_err(p, len, info, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    if (len < info->size) {
        stream__errf(errbuf, errbuf_len, "batch truncated: %zu of %zu bytes", len, info->size);
        return STREAM_ESHORT;
    }
    uint32_t crc = stream_crc32c(0, p + STREAM_BATCH_OFF_ATTRIBUTES,
                                 info->size - STREAM_BATCH_OFF_ATTRIBUTES);
    if (crc != info->crc) {
        stream__errf(errbuf, errbuf_len, "batch CRC 0x%08x, computed 0x%08x", info->crc, crc);
        return STREAM_ECRC;
    }
    return 0;
}

void stream_batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    stream_store_be64(p + STREAM_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void stream_batch_set_leader_epoch(uint8_t *p, int32_t epoch)
{
    stream_store_be32(p + STREAM_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}

/* ---- record iterator ------------------------------------------------------- */

/* Where iter_open failed, for validate's message. */
enum open_stage { OPEN_HEADER, OPEN_DECOMPRESS, OPEN_COUNT, OPEN_DONE };

static int iter_open(stream_record_iter *it, const uint8_t *p, size_t len,
                     size_t max_decompressed, enum open_stage *stage)
{
    it->index = 0;
    it->last_delta = -1;
    stream_buf_init(&it->scratch);
    stream_reader_init(&it->r, empty_bytes, 0);
    *stage = OPEN_HEADER;
    int rc = stream_batch_header_decode(p, len, &it->info);
    if (rc != 0)
        return rc;
    if (len < it->info.size)
        return STREAM_ESHORT;
    *stage = OPEN_DECOMPRESS;
    const uint8_t *records = p + STREAM_BATCH_HEADER_SIZE;
    size_t records_len = it->info.size - STREAM_BATCH_HEADER_SIZE;
    stream_codec codec = (stream_codec)(it->info.attributes & STREAM_BATCH_ATTR_CODEC_MASK);
    if (codec != STREAM_CODEC_NONE) {
        rc = stream_codec_decompress(codec, records, records_len, max_decompressed,
                                     &it->scratch);
        if (rc == STREAM_EINVAL)
            rc = STREAM_EUNSUPPORTED;
        if (rc != 0)
            return rc;
        records = it->scratch.data ? it->scratch.data : empty_bytes;
        records_len = it->scratch.len;
    }
    *stage = OPEN_COUNT;
    if ((uint64_t)it->info.record_count * MIN_RECORD_SIZE > records_len)
        return STREAM_ECORRUPT;
    stream_reader_init(&it->r, records, records_len);
    *stage = OPEN_DONE;
    return 0;
}

int stream_record_iter_start_max(stream_record_iter *it, const uint8_t *p, size_t len,
                                 size_t max_decompressed)
{
    enum open_stage stage;
    int rc = iter_open(it, p, len, max_decompressed, &stage);
    if (rc != 0)
        it->r.err = rc; /* a next() after a failed start fails too */
    return rc;
}

/* Latches corruption so every later next fails the same way. */
static int iter_fail(stream_record_iter *it)
{
    it->r.err = STREAM_ECORRUPT;
    return STREAM_ECORRUPT;
}

/* Reads a key/value/header-value length: -1 (null) or a length that fits in
 * what remains of the record. */
static int get_len(stream_reader *r, int32_t *n, const uint8_t **bytes)
{
    *bytes = NULL;
    if (stream_get_varint(r, n) != 0 || *n < -1 || (*n >= 0 && (size_t)*n > stream_reader_left(r)))
        return STREAM_ECORRUPT;
    if (*n >= 0)
        stream_get_bytes(r, (size_t)*n, bytes);
    return 0;
}

int stream_record_iter_next(stream_record_iter *it, stream_record *rec)
{
    memset(rec, 0, sizeof *rec);
    if (it->r.err)
        return STREAM_ECORRUPT;
    if (it->index == it->info.record_count)
        return stream_reader_left(&it->r) == 0 ? 0 : iter_fail(it); /* leftover bytes */

    int32_t length;
    const uint8_t *body;
    size_t start = it->r.pos;
    if (stream_get_varint(&it->r, &length) != 0 || length < 0 ||
        (size_t)length > stream_reader_left(&it->r))
        return iter_fail(it);
    stream_get_bytes(&it->r, (size_t)length, &body);
    rec->raw = it->r.p + start;
    rec->raw_len = it->r.pos - start;

    stream_reader r;
    stream_reader_init(&r, body, (size_t)length);
    uint8_t attributes;
    int64_t ts_delta;
    int32_t offset_delta, header_count;
    stream_get_u8(&r, &attributes);
    stream_get_varlong(&r, &ts_delta);
    stream_get_varint(&r, &offset_delta);
    if (r.err || offset_delta <= it->last_delta || offset_delta > it->info.last_offset_delta)
        return iter_fail(it);
    if (get_len(&r, &rec->key_len, &rec->key) != 0 ||
        get_len(&r, &rec->value_len, &rec->value) != 0)
        return iter_fail(it);
    if (stream_get_varint(&r, &header_count) != 0 || header_count < 0)
        return iter_fail(it);
    /* Walk the headers now so a returned record is fully checked and the
     * header iterator cannot fail on it. Each header takes >= 2 bytes, so a
     * huge count stops at the end of the record. */
    rec->headers = body + r.pos;
    for (int32_t i = 0; i < header_count; i++) {
        int32_t name_len, value_len;
        const uint8_t *ignored;
        if (get_len(&r, &name_len, &ignored) != 0 || name_len < 0 ||
            get_len(&r, &value_len, &ignored) != 0)
            return iter_fail(it);
    }
    if (r.err || stream_reader_left(&r) != 0) /* the length must match the fields */
        return iter_fail(it);
    rec->headers_len = (size_t)(body + r.pos - rec->headers);
    rec->header_count = header_count;

    /* Wrapping arithmetic, as Java's long addition. */
    rec->offset = (int64_t)((uint64_t)it->info.base_offset + (uint64_t)offset_delta);
    if (it->info.attributes & STREAM_BATCH_ATTR_LOG_APPEND_TIME)
        rec->timestamp = it->info.max_timestamp;
    else
        rec->timestamp = (int64_t)((uint64_t)it->info.base_timestamp + (uint64_t)ts_delta);
    it->last_delta = offset_delta;
    it->index++;
    return 1;
}

int stream_record_iter_start(stream_record_iter *it, const uint8_t *p, size_t len)
{
    return stream_record_iter_start_max(it, p, len, STREAM_CODEC_MAX_DECOMPRESSED);
}

void stream_record_iter_stop(stream_record_iter *it)
{
    stream_buf_release(&it->scratch);
}

void stream_header_iter_start(stream_header_iter *it, const stream_record *rec)
{
    stream_reader_init(&it->r, rec->headers ? rec->headers : empty_bytes,
                       rec->headers ? rec->headers_len : 0);
    it->left = rec->header_count;
}

int stream_header_iter_next(stream_header_iter *it, stream_header *h)
{
    memset(h, 0, sizeof *h);
    if (it->r.err)
        return STREAM_ECORRUPT;
    if (it->left <= 0)
        return 0;
    if (get_len(&it->r, &h->name_len, &h->name) != 0 || h->name_len < 0 ||
        get_len(&it->r, &h->value_len, &h->value) != 0) {
        it->r.err = STREAM_ECORRUPT;
        memset(h, 0, sizeof *h);
        return STREAM_ECORRUPT;
    }
    it->left--;
    return 1;
}

int stream_batch_validate(const uint8_t *p, size_t len, stream_batch_info *info, char *errbuf,
                          size_t errbuf_len)
{
    int rc = stream_batch_check(p, len, info, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    stream_record_iter it;
    stream_record rec;
    enum open_stage stage;
    rc = iter_open(&it, p, len, STREAM_CODEC_MAX_DECOMPRESSED, &stage);
    if (rc != 0) {
        if (stage == OPEN_COUNT)
            stream__errf(errbuf, errbuf_len, "recordCount %d cannot fit in the batch's records",
                         info->record_count);
        else
            stream__errf(errbuf, errbuf_len, "cannot decompress %s records: %s",
                         stream_codec_name(info->attributes & STREAM_BATCH_ATTR_CODEC_MASK),
                         stream_strerror(rc));
        goto out;
    }
    while ((rc = stream_record_iter_next(&it, &rec)) == 1) {
        if (it.last_delta != it.index - 1) {
            stream__errf(errbuf, errbuf_len, "record %d has offset delta %d", it.index - 1,
                         it.last_delta);
            rc = STREAM_ECORRUPT;
            goto out;
        }
    }
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len,
                     "record %d of %d is corrupt or the records do not fill "
                     "the batch exactly",
                     it.index, info->record_count);
        goto out;
    }
    if (info->record_count > 0 && info->last_offset_delta != info->record_count - 1) {
        stream__errf(errbuf, errbuf_len, "lastOffsetDelta %d with %d records",
                     info->last_offset_delta, info->record_count);
        rc = STREAM_ECORRUPT;
    }
out:
    stream_record_iter_stop(&it);
    return rc;
}

/* ---- builder --------------------------------------------------------------- */

void stream_batch_builder_init(stream_batch_builder *b)
{
    stream_buf_init(&b->buf);
    stream_buf_init(&b->zbuf);
    b->base_timestamp = 0;
    b->max_timestamp = 0;
    b->count = 0;
    b->attributes = 0;
    b->level = 0;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    b->finished = false;
}

void stream_batch_builder_release(stream_batch_builder *b)
{
    stream_buf_release(&b->buf);
    stream_buf_release(&b->zbuf);
    stream_batch_builder_init(b);
}

void stream_batch_builder_reset(stream_batch_builder *b)
{
    stream_buf_reset(&b->buf);
    stream_buf_reset(&b->zbuf);
    b->base_timestamp = 0;
    b->max_timestamp = 0;
    b->count = 0;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    b->finished = false;
}

int stream_batch_builder_set_codec(stream_batch_builder *b, stream_codec codec, int level)
{
    if (stream_codec_check_level(codec, level) != 0)
        return STREAM_EINVAL;
    b->attributes = (int16_t)((b->attributes & ~STREAM_BATCH_ATTR_CODEC_MASK) | (int)codec);
    b->level = level;
    b->finished = false;
    return 0;
}

/* Adds n to *total, failing once the sum passes INT32_MAX (no record or batch
 * may, since their lengths are int32). */
static bool add_size(uint64_t *total, uint64_t n)
{
    *total += n;
    return *total <= INT32_MAX;
}

static size_t len_size(int32_t n)
{
    return stream_varint_size(n) + (n > 0 ? (size_t)n : 0);
}

static bool bad_len(const void *p, int32_t n)
{
    return n < -1 || (p == NULL && n > 0);
}

int stream_batch_builder_append(stream_batch_builder *b, int64_t timestamp, const void *key,
                                int32_t key_len, const void *value, int32_t value_len,
                                const stream_header *headers, size_t header_count)
{
    if (bad_len(key, key_len) || bad_len(value, value_len) || header_count > INT32_MAX ||
        (headers == NULL && header_count > 0) || b->count == INT32_MAX)
        return STREAM_EINVAL;
    int64_t base = b->count == 0 ? timestamp : b->base_timestamp;
    int64_t ts_delta = (int64_t)((uint64_t)timestamp - (uint64_t)base);

    /* Size the record first, so the buffer grows once and no put can fail. */
    uint64_t body = 1 + stream_varlong_size(ts_delta) + stream_varint_size(b->count);
    bool fits = add_size(&body, len_size(key_len)) && add_size(&body, len_size(value_len)) &&
                add_size(&body, stream_varint_size((int32_t)header_count));
    for (size_t i = 0; fits && i < header_count; i++) {
        const stream_header *h = &headers[i];
        if (h->name_len < 0 || bad_len(h->name, h->name_len) || bad_len(h->value, h->value_len))
            return STREAM_EINVAL;
        fits = add_size(&body, len_size(h->name_len)) && add_size(&body, len_size(h->value_len));
    }
    if (!fits)
        return STREAM_ETOOLARGE;
    uint64_t header = b->buf.len == 0 ? STREAM_BATCH_HEADER_SIZE : 0;
    uint64_t need = header + stream_varint_size((int32_t)body) + body;
    if (b->buf.len + need - STREAM_BATCH_LOG_OVERHEAD > INT32_MAX)
        return STREAM_ETOOLARGE;
    if (stream_buf_reserve(&b->buf, (size_t)need) != 0) {
        b->buf.oom = false; /* the buffer is unchanged; later appends may fit */
        return STREAM_ENOMEM;
    }

    stream_buf *o = &b->buf;
    if (header) {
        memset(o->data, 0, STREAM_BATCH_HEADER_SIZE); /* placeholders, see finish */
        o->len = STREAM_BATCH_HEADER_SIZE;
    }
    stream_buf_put_varint(o, (int32_t)body);           /* length */
    stream_buf_put_u8(o, 0);                           /* attributes (unused) */
    stream_buf_put_varlong(o, ts_delta);               /* timestampDelta */
    stream_buf_put_varint(o, b->count);                /* offsetDelta */
    stream_buf_put_varint(o, key_len);                 /* keyLength */
    if (key_len > 0)
        stream_buf_put(o, key, (size_t)key_len);       /* key */
    stream_buf_put_varint(o, value_len);               /* valueLength */
    if (value_len > 0)
        stream_buf_put(o, value, (size_t)value_len);   /* value */
    stream_buf_put_varint(o, (int32_t)header_count);   /* headerCount */
    for (size_t i = 0; i < header_count; i++) {
        const stream_header *h = &headers[i];
        stream_buf_put_varint(o, h->name_len);         /* headerKeyLength */
        if (h->name_len > 0)
            stream_buf_put(o, h->name, (size_t)h->name_len);
        stream_buf_put_varint(o, h->value_len);        /* headerValueLength */
        if (h->value_len > 0)
            stream_buf_put(o, h->value, (size_t)h->value_len);
    }

    if (b->count == 0) {
        b->base_timestamp = timestamp;
        b->max_timestamp = timestamp;
    } else if (timestamp > b->max_timestamp) {
        b->max_timestamp = timestamp;
    }
    b->count++;
    b->finished = false;
    return 0;
}

size_t stream_batch_builder_size(const stream_batch_builder *b)
{
    return b->buf.len ? b->buf.len : STREAM_BATCH_HEADER_SIZE;
}

/* Writes the builder's producer fields into the header at h. */
static void put_producer(uint8_t *h, const stream_batch_builder *b)
{
    stream_store_be64(h + STREAM_BATCH_OFF_PRODUCER_ID, (uint64_t)b->producer_id);
    h[STREAM_BATCH_OFF_PRODUCER_EPOCH] = (uint8_t)((uint16_t)b->producer_epoch >> 8);
    h[STREAM_BATCH_OFF_PRODUCER_EPOCH + 1] = (uint8_t)b->producer_epoch;
    stream_store_be32(h + STREAM_BATCH_OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
}

/* Sets batchLength and the CRC of a complete batch of `size` bytes at p. */
static void seal(uint8_t *p, size_t size)
{
    stream_store_be32(p + STREAM_BATCH_OFF_LENGTH, (uint32_t)(size - STREAM_BATCH_LOG_OVERHEAD));
    uint32_t crc = stream_crc32c(0, p + STREAM_BATCH_OFF_ATTRIBUTES,
                                 size - STREAM_BATCH_OFF_ATTRIBUTES);
    stream_store_be32(p + STREAM_BATCH_OFF_CRC, crc);
}

int stream_batch_builder_finish(stream_batch_builder *b, const uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    b->finished = false;
    if (b->count == 0)
        return STREAM_EINVAL;
    uint8_t *h = b->buf.data;
    stream_store_be64(h + STREAM_BATCH_OFF_BASE_OFFSET, 0);               /* baseOffset */
    stream_store_be32(h + STREAM_BATCH_OFF_LEADER_EPOCH, UINT32_MAX);     /* epoch -1 */
    h[STREAM_BATCH_OFF_MAGIC] = STREAM_BATCH_MAGIC;                       /* magic */
    h[STREAM_BATCH_OFF_ATTRIBUTES] = (uint8_t)((uint16_t)b->attributes >> 8);
    h[STREAM_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)b->attributes;          /* attributes */
    stream_store_be32(h + STREAM_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
    stream_store_be64(h + STREAM_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)b->base_timestamp);
    stream_store_be64(h + STREAM_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
    put_producer(h, b); /* producerId, producerEpoch, baseSequence */
    stream_store_be32(h + STREAM_BATCH_OFF_RECORD_COUNT, (uint32_t)b->count);

    stream_codec codec = (stream_codec)(b->attributes & STREAM_BATCH_ATTR_CODEC_MASK);
    if (codec == STREAM_CODEC_NONE) {
        seal(h, b->buf.len);
        *out = h;
        *out_len = b->buf.len;
        b->finished = true;
        return 0;
    }
    stream_buf *z = &b->zbuf;
    stream_buf_reset(z);
    if (stream_buf_reserve(z, STREAM_BATCH_HEADER_SIZE) != 0) {
        z->oom = false;
        return STREAM_ENOMEM;
    }
    stream_buf_put(z, h, STREAM_BATCH_HEADER_SIZE);
    int rc = stream_codec_compress(codec, b->level, h + STREAM_BATCH_HEADER_SIZE,
                                   b->buf.len - STREAM_BATCH_HEADER_SIZE, z);
    if (rc != 0)
        return rc == STREAM_EINVAL ? STREAM_ENOMEM : rc; /* level was checked at set */
    if (z->len - STREAM_BATCH_LOG_OVERHEAD > INT32_MAX)
        return STREAM_ETOOLARGE;
    seal(z->data, z->len);
    *out = z->data;
    *out_len = z->len;
    b->finished = true;
    return 0;
}

int stream_batch_builder_set_producer(stream_batch_builder *b, int64_t producer_id,
                                      int16_t producer_epoch, int32_t base_sequence)
{
    if (producer_id < -1 || producer_epoch < -1 || base_sequence < -1 ||
        (producer_id >= 0 && (producer_epoch < 0 || base_sequence < 0)))
        return STREAM_EINVAL;
    b->producer_id = producer_id;
    b->producer_epoch = producer_epoch;
    b->base_sequence = base_sequence;
    if (b->finished) {
        /* A resend under a new epoch: the fields are inside the CRC. */
        bool compressed = (b->attributes & STREAM_BATCH_ATTR_CODEC_MASK) != STREAM_CODEC_NONE;
        stream_buf *f = compressed ? &b->zbuf : &b->buf;
        put_producer(f->data, b);
        seal(f->data, f->len);
    }
    return 0;
}
