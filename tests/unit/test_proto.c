/*
 * test_proto.c - the native protocol's codec: frame reader, message parse
 * gate, typed field access, frame writer, op names, topic names, broker
 * addresses, and the example frames of share/doc/protocol.md byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/buf.h"
#include "stream/crc32c.h"
#include "stream/error.h"
#include "stream/proto.h"

/* ---- helpers ------------------------------------------------------------- */

static int sink(void *data, const char *p, size_t n)
{
    stream_buf_put(data, p, n);
    return 0;
}

/* A packer writing raw MessagePack (no frame) into b. */
static void packer_init(msgpack_packer *pk, stream_buf *b)
{
    msgpack_packer_init(pk, b, sink);
}

/* Appends one frame whose payload is the map {"n": seq, "pad": <bin of pad bytes>}. */
static void put_frame(stream_buf *out, uint64_t seq, size_t pad)
{
    stream_frame f;
    uint8_t *bytes = malloc(pad + 1);
    assert_non_null(bytes);
    for (size_t i = 0; i < pad; i++)
        bytes[i] = (uint8_t)(seq + i);
    stream_frame_start(&f, out);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_uint(&f.pk, "n", seq);
    stream_pack_kv_bin(&f.pk, "pad", bytes, pad);
    assert_int_equal(stream_frame_finish(&f), 0);
    free(bytes);
}

/* Checks a frame payload from put_frame: it parses and carries seq. */
static void check_frame(const uint8_t *p, size_t n, uint64_t seq, size_t pad)
{
    stream_msg m;
    uint64_t got;
    const uint8_t *bin;
    size_t bin_len;
    char eb[256];
    stream_msg_init(&m);
    assert_int_equal(stream_msg_parse(p, n, &m, eb, sizeof eb), 0);
    assert_int_equal(stream_field_uint(&m.root, "n", UINT64_MAX, &got, eb, sizeof eb), 0);
    assert_int_equal(got, seq);
    assert_int_equal(stream_field_bin(&m.root, "pad", &bin, &bin_len, eb, sizeof eb), 0);
    assert_int_equal(bin_len, pad);
    for (size_t i = 0; i < pad; i++)
        assert_int_equal(bin[i], (uint8_t)(seq + i));
    stream_msg_release(&m);
}

/* Frame sizes used by the stream tests: empty-ish, small, crossing chunk
 * boundaries, and one bigger than the reader's default chunk. */
static const size_t pads[] = {0, 1, 7, 300, 4096, 70000, 3, 65531};
#define NPADS (sizeof pads / sizeof pads[0])

static void build_stream(stream_buf *out)
{
    stream_buf_init(out);
    for (size_t i = 0; i < NPADS; i++)
        put_frame(out, i + 1, pads[i]);
    assert_int_equal(stream_buf_ok(out), 0);
}

/* Takes every whole frame out of fr and checks them against the sequence. */
static void drain(stream_frame_reader *fr, size_t *seen)
{
    const uint8_t *p;
    size_t n;
    int rc;
    while ((rc = stream_frame_reader_next(fr, &p, &n)) == 1) {
        assert_true(*seen < NPADS);
        check_frame(p, n, *seen + 1, pads[*seen]);
        (*seen)++;
    }
    assert_int_equal(rc, 0);
}

/* ---- frame reader -------------------------------------------------------- */

static void test_frame_reader_bytes_fed_one_at_a_time(void **state)
{
    stream_buf s;
    stream_frame_reader fr;
    size_t seen = 0;
    build_stream(&s);
    stream_frame_reader_init(&fr, 1 << 20);
    for (size_t i = 0; i < s.len; i++) {
        assert_int_equal(stream_frame_reader_feed(&fr, s.data + i, 1, NULL, 0), 0);
        drain(&fr, &seen);
    }
    assert_int_equal(seen, NPADS);
    assert_int_equal(stream_frame_reader_pending(&fr), 0);
    stream_frame_reader_release(&fr);
    stream_buf_release(&s);
}

static void test_frame_reader_random_chunks_via_feed_and_prepare(void **state)
{
    stream_buf s;
    build_stream(&s);
    unsigned seed = 12345;
    for (int round = 0; round < 40; round++) {
        stream_frame_reader fr;
        size_t seen = 0, pos = 0;
        bool zero_copy = round % 2;
        stream_frame_reader_init(&fr, 1 << 20);
        while (pos < s.len) {
            size_t n = (size_t)rand_r(&seed) % (round < 20 ? 64 : 100000) + 1;
            if (n > s.len - pos)
                n = s.len - pos;
            if (zero_copy) {
                uint8_t *p;
                size_t avail;
                assert_int_equal(stream_frame_reader_prepare(&fr, 0, &p, &avail), 0);
                if (n > avail)
                    n = avail;
                memcpy(p, s.data + pos, n);
                assert_int_equal(stream_frame_reader_commit(&fr, n, NULL, 0), 0);
            } else {
                assert_int_equal(stream_frame_reader_feed(&fr, s.data + pos, n, NULL, 0), 0);
            }
            pos += n;
            drain(&fr, &seen);
        }
        assert_int_equal(seen, NPADS);
        stream_frame_reader_release(&fr);
    }
    stream_buf_release(&s);
}

static void test_frame_reader_multiple_frames_in_one_chunk(void **state)
{
    stream_buf s;
    stream_frame_reader fr;
    size_t seen = 0;
    build_stream(&s);
    stream_frame_reader_init(&fr, 1 << 20);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), 0);
    drain(&fr, &seen);
    assert_int_equal(seen, NPADS);
    stream_frame_reader_release(&fr);
    stream_buf_release(&s);
}

/* Views from next stay valid across later next calls (until a feed). */
static void test_frame_reader_views_survive_next(void **state)
{
    stream_buf s;
    stream_frame_reader fr;
    const uint8_t *p1, *p2;
    size_t n1, n2;
    build_stream(&s);
    stream_frame_reader_init(&fr, 1 << 20);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), 0);
    assert_int_equal(stream_frame_reader_next(&fr, &p1, &n1), 1);
    assert_int_equal(stream_frame_reader_next(&fr, &p2, &n2), 1);
    check_frame(p1, n1, 1, pads[0]);
    check_frame(p2, n2, 2, pads[1]);
    stream_frame_reader_release(&fr);
    stream_buf_release(&s);
}

static void test_frame_reader_refuses_oversized_length_before_buffering(void **state)
{
    stream_frame_reader fr;
    uint8_t chunk[4 + 1000];
    char eb[128] = "";
    const uint8_t *p;
    size_t n;
    memset(chunk, 'x', sizeof chunk);
    stream_store_be32(chunk, 101);
    stream_frame_reader_init(&fr, 100);
    assert_int_equal(stream_frame_reader_feed(&fr, chunk, sizeof chunk, eb, sizeof eb),
                     STREAM_ETOOLARGE);
    assert_non_null(strstr(eb, "101"));
    assert_int_equal(fr.refused_len, 101);
    /* Only the prefix is held; not one payload byte. */
    assert_int_equal(stream_frame_reader_pending(&fr), 4);
    /* The error sticks. */
    assert_int_equal(stream_frame_reader_feed(&fr, chunk, 1, NULL, 0), STREAM_ETOOLARGE);
    assert_int_equal(stream_frame_reader_prepare(&fr, 0, (uint8_t **)&p, &n), STREAM_ETOOLARGE);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), STREAM_ETOOLARGE);
    stream_frame_reader_release(&fr);

    /* Same through prepare/commit: bytes after the bad prefix are dropped. */
    uint8_t *w;
    size_t avail;
    stream_frame_reader_init(&fr, 100);
    assert_int_equal(stream_frame_reader_prepare(&fr, sizeof chunk, &w, &avail), 0);
    memcpy(w, chunk, sizeof chunk);
    assert_int_equal(stream_frame_reader_commit(&fr, sizeof chunk, NULL, 0), STREAM_ETOOLARGE);
    assert_int_equal(stream_frame_reader_pending(&fr), 4);
    stream_frame_reader_release(&fr);
}

static void test_frame_reader_refuses_zero_length(void **state)
{
    stream_frame_reader fr;
    uint8_t zero[8] = {0, 0, 0, 0, 0x80, 0, 0, 0};
    const uint8_t *p;
    size_t n;
    stream_frame_reader_init(&fr, 100);
    assert_int_equal(stream_frame_reader_feed(&fr, zero, 2, NULL, 0), 0);
    assert_int_equal(stream_frame_reader_feed(&fr, zero + 2, 6, NULL, 0), STREAM_EPROTO);
    assert_int_equal(stream_frame_reader_pending(&fr), 4);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), STREAM_EPROTO);
    stream_frame_reader_release(&fr);
}

/* Frames completed before a bad prefix are still handed out, then the error. */
static void test_frame_reader_returns_frames_before_bad_length(void **state)
{
    stream_buf s = STREAM_BUF_INIT;
    stream_frame_reader fr;
    const uint8_t *p;
    size_t n;
    put_frame(&s, 1, 0);
    put_frame(&s, 2, 1);
    stream_buf_put_be32(&s, 5000);
    stream_buf_put(&s, "junk", 4);
    stream_frame_reader_init(&fr, 1000);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), STREAM_ETOOLARGE);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    check_frame(p, n, 1, 0);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    check_frame(p, n, 2, 1);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), STREAM_ETOOLARGE);
    stream_frame_reader_release(&fr);
    stream_buf_release(&s);
}

/* A peer announcing a maximal frame and sending little costs little. */
static void test_frame_reader_announced_length_allocates_nothing(void **state)
{
    stream_frame_reader fr;
    uint8_t hdr[4 + 10] = {0};
    const uint8_t *p;
    size_t n;
    stream_store_be32(hdr, STREAM_DEFAULT_MAX_FRAME_BYTES);
    stream_frame_reader_init(&fr, STREAM_DEFAULT_MAX_FRAME_BYTES);
    assert_int_equal(stream_frame_reader_feed(&fr, hdr, sizeof hdr, NULL, 0), 0);
    assert_true(fr.cap <= 4096);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 0);
    assert_int_equal(stream_frame_reader_pending(&fr), sizeof hdr);
    stream_frame_reader_release(&fr);
}

static void test_frame_reader_shrinks_after_large_frame(void **state)
{
    stream_buf s = STREAM_BUF_INIT;
    stream_frame_reader fr;
    const uint8_t *p;
    size_t n, seen = 0;
    put_frame(&s, 1, 2 << 20);
    stream_frame_reader_init(&fr, 4 << 20);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), 0);
    assert_true(fr.cap >= s.len);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    stream_buf_reset(&s);
    put_frame(&s, 1, pads[0]);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), 0);
    assert_true(fr.cap <= 65536);
    drain(&fr, &seen);
    assert_int_equal(seen, 1);
    stream_frame_reader_release(&fr);
    stream_buf_release(&s);
}

/* A reader told to keep 16 MiB streams 1 MiB frames in one buffer (no
 * shrink and regrow per frame), and gives it back on _trim. */
static void test_frame_reader_keeps_its_buffer_until_trimmed(void **state)
{
    stream_buf s = STREAM_BUF_INIT;
    stream_frame_reader fr;
    const uint8_t *p;
    size_t n, seen = 0;
    stream_frame_reader_init(&fr, 4 << 20);
    stream_frame_reader_keep(&fr, 16 << 20);
    put_frame(&s, 1, 1 << 20);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), 0);
    size_t cap = fr.cap;
    const uint8_t *data = fr.data;
    assert_true(cap >= s.len);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    for (int i = 0; i < 5; i++) { /* the next frames arrive in pieces */
        uint8_t *q;
        size_t avail, off = 0;
        while (off < s.len) {
            assert_int_equal(stream_frame_reader_prepare(&fr, 0, &q, &avail), 0);
            size_t take = s.len - off < 100000 ? s.len - off : 100000;
            take = take < avail ? take : avail;
            memcpy(q, s.data + off, take);
            assert_int_equal(stream_frame_reader_commit(&fr, take, NULL, 0), 0);
            off += take;
        }
        assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
        assert_int_equal(n, s.len - 4);
        assert_int_equal(fr.cap, cap); /* neither shrunk nor grown... */
        assert_ptr_equal(fr.data, data); /* ...nor moved */
    }
    stream_frame_reader_trim(&fr);
    assert_true(fr.cap <= 65536);
    stream_buf_reset(&s);
    put_frame(&s, 1, pads[0]);
    assert_int_equal(stream_frame_reader_feed(&fr, s.data, s.len, NULL, 0), 0);
    drain(&fr, &seen);
    assert_int_equal(seen, 1);
    stream_frame_reader_release(&fr);
    stream_buf_release(&s);
}

static void test_frame_reader_commit_beyond_prepared_is_einval(void **state)
{
    stream_frame_reader fr;
    uint8_t *p;
    size_t avail;
    stream_frame_reader_init(&fr, 100);
    assert_int_equal(stream_frame_reader_commit(&fr, 1, NULL, 0), STREAM_EINVAL);
    assert_int_equal(stream_frame_reader_prepare(&fr, 10, &p, &avail), 0);
    assert_true(avail >= 10);
    assert_int_equal(stream_frame_reader_commit(&fr, avail + 1, NULL, 0), STREAM_EINVAL);
    stream_frame_reader_release(&fr);
}

/* ---- message parse ------------------------------------------------------- */

static int parse_bytes(const void *p, size_t n, char *eb, size_t ebl)
{
    stream_msg m;
    stream_msg_init(&m);
    int rc = stream_msg_parse(p, n, &m, eb, ebl);
    assert_true(rc == 0 ? m.valid : !m.valid);
    stream_msg_release(&m);
    return rc;
}

static void test_msg_parse_borrows_strings_from_payload(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    stream_msg m;
    const char *s;
    size_t n;
    packer_init(&pk, &b);
    msgpack_pack_map(&pk, 1);
    stream_pack_kv_cstr(&pk, "name", "orders");
    stream_msg_init(&m);
    assert_int_equal(stream_msg_parse(b.data, b.len, &m, NULL, 0), 0);
    assert_int_equal(stream_field_str(&m.root, "name", &s, &n, NULL, 0), 0);
    assert_true(stream_str_eq(s, n, "orders"));
    assert_true((const uint8_t *)s > b.data && (const uint8_t *)s + n <= b.data + b.len);
    /* The zone is reused: a second parse works on the same msg. */
    assert_int_equal(stream_msg_parse(b.data, b.len, &m, NULL, 0), 0);
    assert_true(m.valid);
    stream_msg_release(&m);
    stream_buf_release(&b);
}

static void test_msg_parse_rejects_garbage_and_non_maps(void **state)
{
    char eb[128];
    static const uint8_t reserved[] = {0x81, 0xa1, 'a', 0xc1};
    static const uint8_t array[] = {0x91, 0x01};
    static const uint8_t integer[] = {0x05};
    static const uint8_t string[] = {0xa2, 'h', 'i'};
    static const uint8_t nil[] = {0xc0};
    assert_int_equal(parse_bytes(reserved, sizeof reserved, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "0xc1"));
    assert_int_equal(parse_bytes(array, sizeof array, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "not a MessagePack map"));
    assert_int_equal(parse_bytes(integer, sizeof integer, eb, sizeof eb), STREAM_EPROTO);
    assert_int_equal(parse_bytes(string, sizeof string, eb, sizeof eb), STREAM_EPROTO);
    assert_int_equal(parse_bytes(nil, sizeof nil, eb, sizeof eb), STREAM_EPROTO);
    assert_int_equal(parse_bytes("", 0, eb, sizeof eb), STREAM_EPROTO);
}

/* A message with every MessagePack type, cut at every length, never parses. */
static void build_rich_map(stream_buf *b)
{
    msgpack_packer pk;
    packer_init(&pk, b);
    msgpack_pack_map(&pk, 12);
    stream_pack_kv_int(&pk, "neg", -100000);
    stream_pack_kv_uint(&pk, "big", UINT64_MAX);
    stream_pack_kv_bool(&pk, "t", true);
    stream_pack_kv_nil(&pk, "nil");
    stream_pack_key(&pk, "f32");
    msgpack_pack_float(&pk, 1.5f);
    stream_pack_key(&pk, "f64");
    msgpack_pack_double(&pk, 2.5);
    stream_pack_kv_str(&pk, "s", "a string longer than thirty-one bytes", 37);
    stream_pack_kv_bin(&pk, "b", "\x00\x01\x02", 3);
    stream_pack_key(&pk, "ext");
    msgpack_pack_ext(&pk, 3, 7);
    msgpack_pack_ext_body(&pk, "abc", 3);
    stream_pack_key(&pk, "arr");
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int(&pk, i * 1000);
    stream_pack_key(&pk, "m");
    msgpack_pack_map(&pk, 1);
    stream_pack_kv_cstr(&pk, "k", "v");
    stream_pack_key(&pk, "fixext");
    msgpack_pack_ext(&pk, 4, 1);
    msgpack_pack_ext_body(&pk, "abcd", 4);
}

static void test_msg_parse_rejects_every_truncation(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    build_rich_map(&b);
    assert_int_equal(parse_bytes(b.data, b.len, NULL, 0), 0);
    for (size_t n = 0; n < b.len; n++) {
        /* A copy of exactly n bytes, so ASan catches any read past it. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.data, n);
        assert_int_equal(parse_bytes(cut, n, NULL, 0), STREAM_EPROTO);
        free(cut);
    }
    stream_buf_release(&b);
}

static void test_msg_parse_rejects_trailing_bytes(void **state)
{
    char eb[128];
    static const uint8_t two_maps[] = {0x80, 0x80};
    static const uint8_t map_and_byte[] = {0x81, 0xa1, 'a', 0x01, 0x00};
    assert_int_equal(parse_bytes(two_maps, sizeof two_maps, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "trailing"));
    assert_int_equal(parse_bytes(map_and_byte, sizeof map_and_byte, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "1 trailing"));
}

/* depth maps nested as {"a": {"a": ... {}}}. */
static void nested(stream_buf *b, int depth)
{
    msgpack_packer pk;
    packer_init(&pk, b);
    for (int i = 0; i < depth - 1; i++) {
        msgpack_pack_map(&pk, 1);
        stream_pack_key(&pk, "a");
    }
    msgpack_pack_map(&pk, 0);
}

static void test_msg_parse_rejects_deep_nesting(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    char eb[128];
    nested(&b, STREAM_MSG_DEFAULT_MAX_DEPTH);
    assert_int_equal(parse_bytes(b.data, b.len, eb, sizeof eb), 0);
    stream_buf_reset(&b);
    nested(&b, STREAM_MSG_DEFAULT_MAX_DEPTH + 1);
    assert_int_equal(parse_bytes(b.data, b.len, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "nesting"));
    /* Far deeper than msgpack-c's own stack: still a clean error. */
    stream_buf_reset(&b);
    nested(&b, 1000);
    assert_int_equal(parse_bytes(b.data, b.len, eb, sizeof eb), STREAM_EPROTO);
    stream_buf_release(&b);
}

/* Headers that announce billions of elements in a few bytes must be refused
 * by the scan, before msgpack-c sizes an allocation from them. */
static void test_msg_parse_refuses_counts_beyond_the_payload(void **state)
{
    char eb[128];
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t inner_array32[] = {0x81, 0xa1, 'a', 0xdd, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t str32[] = {0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'};
    assert_int_equal(parse_bytes(map32, sizeof map32, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "announces"));
    assert_int_equal(parse_bytes(inner_array32, sizeof inner_array32, eb, sizeof eb),
                     STREAM_EPROTO);
    assert_int_equal(parse_bytes(str32, sizeof str32, eb, sizeof eb), STREAM_EPROTO);
}

/* stream_msg_parse_object takes a root of any type (the offsets topic's
 * array keys) under the same bounds; stream_msg_parse still wants a map. */
static void test_msg_parse_object_takes_any_root_with_the_same_bounds(void **state)
{
    char eb[128];
    stream_msg m;
    stream_msg_init(&m);
    static const uint8_t key[] = {0x94, 0x01, 0xa1, 'g', 0xa1, 't', 0x03}; /* [1,"g","t",3] */
    static const uint8_t array32[] = {0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t nested[] = {0x92, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t trailing[] = {0x91, 0x01, 0x02};
    assert_int_equal(stream_msg_parse_object(key, sizeof key, &m, eb, sizeof eb), 0);
    assert_int_equal(m.root.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(m.root.via.array.size, 4);
    assert_int_equal(m.root.via.array.ptr[3].via.u64, 3);
    assert_int_equal(stream_msg_parse(key, sizeof key, &m, eb, sizeof eb), STREAM_EPROTO);
    assert_int_equal(stream_msg_parse_object(array32, sizeof array32, &m, eb, sizeof eb),
                     STREAM_EPROTO);
    assert_non_null(strstr(eb, "announces"));
    assert_int_equal(stream_msg_parse_object(nested, sizeof nested, &m, eb, sizeof eb),
                     STREAM_EPROTO);
    assert_int_equal(stream_msg_parse_object(trailing, sizeof trailing, &m, eb, sizeof eb),
                     STREAM_EPROTO);
    assert_non_null(strstr(eb, "trailing bytes after the object"));
    stream_msg_release(&m);
}

static void test_msg_parse_limits_object_count(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    stream_msg m;
    char eb[128];
    packer_init(&pk, &b);
    msgpack_pack_map(&pk, 1);
    stream_pack_key(&pk, "a");
    msgpack_pack_array(&pk, 100);
    for (int i = 0; i < 100; i++)
        msgpack_pack_nil(&pk);
    stream_msg_init(&m);
    m.max_objects = 50;
    assert_int_equal(stream_msg_parse(b.data, b.len, &m, eb, sizeof eb), STREAM_ETOOLARGE);
    m.max_objects = 103; /* map, key, array, 100 nils */
    assert_int_equal(stream_msg_parse(b.data, b.len, &m, eb, sizeof eb), 0);
    stream_msg_release(&m);
    stream_buf_release(&b);
}

/* Random bytes and random mutations of a valid map: parse never misbehaves
 * (ASan/UBSan watch), and whatever it accepts is a map. */
static void test_msg_parse_survives_random_and_mutated_input(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_msg m;
    uint8_t buf[512];
    unsigned seed = 777;
    build_rich_map(&b);
    assert_true(b.len <= sizeof buf);
    stream_msg_init(&m);
    for (int i = 0; i < 20000; i++) {
        size_t n;
        if (i % 2) {
            n = (size_t)rand_r(&seed) % 64 + 1;
            for (size_t j = 0; j < n; j++)
                buf[j] = (uint8_t)rand_r(&seed);
            buf[0] = (uint8_t)(0x80 | (buf[0] & 0x0f));
        } else {
            n = b.len;
            memcpy(buf, b.data, n);
            for (int k = 0; k < 3; k++)
                buf[(size_t)rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
        }
        uint8_t *exact = malloc(n);
        memcpy(exact, buf, n);
        int rc = stream_msg_parse(exact, n, &m, NULL, 0);
        if (rc == 0)
            assert_int_equal(m.root.type, MSGPACK_OBJECT_MAP);
        else
            assert_true(rc == STREAM_EPROTO || rc == STREAM_ETOOLARGE);
        free(exact);
    }
    stream_msg_release(&m);
    stream_buf_release(&b);
}

/* ---- typed field access -------------------------------------------------- */

/* Parses raw bytes into m (which the caller releases). */
static void parse_into(stream_msg *m, const void *p, size_t n)
{
    stream_msg_init(m);
    assert_int_equal(stream_msg_parse(p, n, m, NULL, 0), 0);
}

static void test_field_missing_or_nil_required_names_the_field(void **state)
{
    static const uint8_t map[] = {0x81, 0xa4, 'l', 'e', 'f', 't', 0xc0}; /* {"left": nil} */
    stream_msg m;
    char eb[128];
    int64_t i;
    const char *s;
    size_t n;
    parse_into(&m, map, sizeof map);
    assert_int_equal(stream_field_int(&m.root, "partition", 0, 10, &i, eb, sizeof eb),
                     STREAM_EBADREQ);
    assert_string_equal(eb, "missing field 'partition'");
    assert_int_equal(stream_field_str(&m.root, "left", &s, &n, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "missing field 'left'");
    assert_int_equal(stream_field_int_opt(&m.root, "left", 0, 10, 7, &i, eb, sizeof eb), 0);
    assert_int_equal(i, 7);
    assert_null(stream_field_find(&m.root, "left"));
    stream_msg_release(&m);
}

static void test_field_wrong_type_names_field_and_types(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    stream_msg m;
    char eb[128];
    int64_t i;
    uint64_t u;
    bool t;
    const char *s;
    const uint8_t *bin;
    size_t n;
    const msgpack_object *o;
    packer_init(&pk, &b);
    msgpack_pack_map(&pk, 4);
    stream_pack_kv_cstr(&pk, "partition", "3");
    stream_pack_kv_bin(&pk, "name", "x", 1);
    stream_pack_kv_str(&pk, "records", "x", 1);
    stream_pack_key(&pk, "f");
    msgpack_pack_double(&pk, 3.0);
    parse_into(&m, b.data, b.len);
    assert_int_equal(stream_field_int(&m.root, "partition", 0, 9, &i, eb, sizeof eb),
                     STREAM_EBADREQ);
    assert_string_equal(eb, "field 'partition' must be an integer, got str");
    assert_int_equal(stream_field_str(&m.root, "name", &s, &n, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'name' must be a str, got bin");
    assert_null(s);
    assert_int_equal(stream_field_bin(&m.root, "records", &bin, &n, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'records' must be a bin, got str");
    assert_int_equal(stream_field_uint(&m.root, "f", 9, &u, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'f' must be an unsigned integer, got float");
    assert_int_equal(stream_field_bool_opt(&m.root, "f", false, &t, eb, sizeof eb), STREAM_EBADREQ);
    assert_int_equal(stream_field_array(&m.root, "name", &o, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'name' must be an array, got bin");
    assert_int_equal(stream_field_map_opt(&m.root, "name", &o, eb, sizeof eb), STREAM_EBADREQ);
    assert_null(o);
    assert_int_equal(stream_field_str_opt(&m.root, "partition", &s, &n, eb, sizeof eb), 0);
    assert_true(stream_str_eq(s, n, "3"));
    stream_msg_release(&m);
    stream_buf_release(&b);
}

/* 5 and -5 in every MessagePack integer width read the same. */
static void test_field_int_accepts_every_width(void **state)
{
    static const uint8_t forms[][12] = {
        {0x81, 0xa1, 'v', 0x05},
        {0x81, 0xa1, 'v', 0xcc, 0x05},
        {0x81, 0xa1, 'v', 0xcd, 0x00, 0x05},
        {0x81, 0xa1, 'v', 0xce, 0, 0, 0, 0x05},
        {0x81, 0xa1, 'v', 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05},
        {0x81, 0xa1, 'v', 0xd0, 0x05},
        {0x81, 0xa1, 'v', 0xd1, 0x00, 0x05},
        {0x81, 0xa1, 'v', 0xd2, 0, 0, 0, 0x05},
        {0x81, 0xa1, 'v', 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05},
    };
    static const size_t lens[] = {4, 5, 6, 8, 12, 5, 6, 8, 12};
    static const uint8_t negs[][12] = {
        {0x81, 0xa1, 'v', 0xfb},
        {0x81, 0xa1, 'v', 0xd0, 0xfb},
        {0x81, 0xa1, 'v', 0xd1, 0xff, 0xfb},
        {0x81, 0xa1, 'v', 0xd2, 0xff, 0xff, 0xff, 0xfb},
        {0x81, 0xa1, 'v', 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb},
    };
    static const size_t neg_lens[] = {4, 5, 6, 8, 12};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        stream_msg m;
        int64_t i;
        uint64_t u;
        parse_into(&m, forms[k], lens[k]);
        assert_int_equal(stream_field_int(&m.root, "v", INT64_MIN, INT64_MAX, &i, NULL, 0), 0);
        assert_int_equal(i, 5);
        assert_int_equal(stream_field_uint(&m.root, "v", UINT64_MAX, &u, NULL, 0), 0);
        assert_int_equal(u, 5);
        stream_msg_release(&m);
    }
    for (size_t k = 0; k < sizeof neg_lens / sizeof neg_lens[0]; k++) {
        stream_msg m;
        int64_t i;
        uint64_t u;
        char eb[128];
        parse_into(&m, negs[k], neg_lens[k]);
        assert_int_equal(stream_field_int(&m.root, "v", -10, 10, &i, NULL, 0), 0);
        assert_int_equal(i, -5);
        assert_int_equal(stream_field_uint(&m.root, "v", 10, &u, eb, sizeof eb), STREAM_EBADREQ);
        assert_non_null(strstr(eb, "out of range: -5"));
        stream_msg_release(&m);
    }
}

static void test_field_int_range_is_checked(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    stream_msg m;
    char eb[128];
    int64_t i;
    uint64_t u;
    packer_init(&pk, &b);
    msgpack_pack_map(&pk, 3);
    stream_pack_kv_int(&pk, "acks", 2);
    stream_pack_kv_uint(&pk, "huge", UINT64_MAX);
    stream_pack_kv_int(&pk, "neg", -1);
    parse_into(&m, b.data, b.len);
    assert_int_equal(stream_field_int(&m.root, "acks", -1, 1, &i, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'acks' is out of range: 2 (allowed -1 to 1)");
    assert_int_equal(stream_field_int(&m.root, "huge", INT64_MIN, INT64_MAX, &i, eb, sizeof eb),
                     STREAM_EBADREQ);
    assert_non_null(strstr(eb, "18446744073709551615"));
    assert_int_equal(stream_field_uint(&m.root, "huge", UINT64_MAX, &u, eb, sizeof eb), 0);
    assert_int_equal(stream_field_int(&m.root, "neg", 0, INT32_MAX, &i, eb, sizeof eb),
                     STREAM_EBADREQ);
    assert_int_equal(stream_field_uint_opt(&m.root, "absent", 10, 4, &u, eb, sizeof eb), 0);
    assert_int_equal(u, 4);
    stream_msg_release(&m);
    stream_buf_release(&b);
}

static void test_field_first_of_duplicate_keys_counts(void **state)
{
    static const uint8_t map[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
    stream_msg m;
    int64_t i;
    parse_into(&m, map, sizeof map);
    assert_int_equal(stream_field_int(&m.root, "a", 0, 9, &i, NULL, 0), 0);
    assert_int_equal(i, 1);
    stream_msg_release(&m);
}

/* Empty strings (msgpack-c gives them a NULL pointer) as a key looked up
 * and as duplicate keys of a string map: found and refused by their
 * lengths, without memcmp on a NULL pointer (undefined behaviour that
 * UBSan reports). */
static void test_field_empty_keys_compare_without_memcmp_on_null(void **state)
{
    /* {"": 1, "m": {"": "a", "": "b"}, "n": {"": "a", "x": "b"}} */
    static const uint8_t map[] = {0x83, 0xa0, 0x01,                                   /* "": 1 */
                                  0xa1, 'm',  0x82, 0xa0, 0xa1, 'a', 0xa0, 0xa1, 'b', /* dup */
                                  0xa1, 'n',  0x82, 0xa0, 0xa1, 'a', 0xa1, 'x',  0xa1, 'b'};
    stream_msg m;
    char eb[128];
    const msgpack_object *o;
    parse_into(&m, map, sizeof map);
    const msgpack_object *e = stream_field_find(&m.root, "");
    assert_non_null(e);
    assert_int_equal(e->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(e->via.u64, 1);
    assert_null(stream_field_find(&m.root, "x"));
    assert_int_equal(stream_field_strmap(&m.root, "m", &o, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'm': key '' appears twice");
    assert_int_equal(stream_field_strmap(&m.root, "n", &o, eb, sizeof eb), 0);
    assert_int_equal(o->via.map.size, 2);
    /* The same with hand-made objects whose empty strings point nowhere. */
    msgpack_object_kv kv[2] = {
        {.key = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 0, .ptr = NULL}},
         .val = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 7}},
        {.key = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 0, .ptr = NULL}},
         .val = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 0, .ptr = NULL}}},
    };
    msgpack_object hand = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 2, .ptr = kv}};
    e = stream_field_find(&hand, "");
    assert_non_null(e);
    assert_int_equal(e->via.u64, 7);
    stream_msg_release(&m);
}

static void test_field_strmap_requires_unique_str_pairs(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    stream_msg m;
    char eb[128];
    const msgpack_object *o;
    packer_init(&pk, &b);
    msgpack_pack_map(&pk, 3);
    stream_pack_key(&pk, "good");
    msgpack_pack_map(&pk, 2);
    stream_pack_kv_cstr(&pk, "retention.ms", "1000");
    stream_pack_kv_cstr(&pk, "segment.bytes", "4096");
    stream_pack_key(&pk, "dup");
    msgpack_pack_map(&pk, 2);
    stream_pack_kv_cstr(&pk, "retention.ms", "1");
    stream_pack_kv_cstr(&pk, "retention.ms", "2");
    stream_pack_key(&pk, "intval");
    msgpack_pack_map(&pk, 1);
    stream_pack_kv_int(&pk, "retention.ms", 1000);
    parse_into(&m, b.data, b.len);
    assert_int_equal(stream_field_strmap(&m.root, "good", &o, eb, sizeof eb), 0);
    assert_int_equal(o->via.map.size, 2);
    assert_int_equal(stream_field_strmap(&m.root, "dup", &o, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'dup': key 'retention.ms' appears twice");
    assert_int_equal(stream_field_strmap_opt(&m.root, "intval", &o, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "field 'intval': value of 'retention.ms' must be a str, got int");
    assert_int_equal(stream_field_strmap_opt(&m.root, "configs", &o, eb, sizeof eb), 0);
    assert_null(o);
    assert_int_equal(stream_field_strmap(&m.root, "configs", &o, eb, sizeof eb), STREAM_EBADREQ);
    stream_msg_release(&m);
    stream_buf_release(&b);
}

static void test_elem_accessors_name_the_element(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    stream_msg m;
    char eb[128];
    const msgpack_object *topics, *t;
    const char *s;
    size_t n;
    packer_init(&pk, &b);
    msgpack_pack_map(&pk, 1);
    stream_pack_key(&pk, "topics");
    msgpack_pack_array(&pk, 2);
    stream_pack_cstr(&pk, "a");
    msgpack_pack_int(&pk, 5);
    parse_into(&m, b.data, b.len);
    assert_int_equal(stream_field_array(&m.root, "topics", &topics, eb, sizeof eb), 0);
    assert_int_equal(stream_elem_str(topics, 0, "topics", &s, &n, eb, sizeof eb), 0);
    assert_true(stream_str_eq(s, n, "a"));
    assert_int_equal(stream_elem_str(topics, 1, "topics", &s, &n, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "topics[1] must be a str, got int");
    assert_int_equal(stream_elem_map(topics, 0, "topics", &t, eb, sizeof eb), STREAM_EBADREQ);
    assert_string_equal(eb, "topics[0] must be a map, got str");
    assert_int_equal(stream_elem_map(topics, 2, "topics", &t, eb, sizeof eb), STREAM_EINVAL);
    stream_msg_release(&m);
    stream_buf_release(&b);
}

/* ---- request and response headers ---------------------------------------- */

static void test_msg_request_header_errors(void **state)
{
    /* {"op": "fetch", "id": 9} and variations */
    static const uint8_t ok[] = {0x82, 0xa2, 'o', 'p',  0xa5, 'f', 'e',
                                 't',  'c',  'h', 0xa2, 'i',  'd', 0x09};
    static const uint8_t no_id[] = {0x81, 0xa2, 'o', 'p', 0xa5, 'f', 'e', 't', 'c', 'h'};
    static const uint8_t id0[] = {0x82, 0xa2, 'o', 'p',  0xa5, 'f', 'e',
                                  't',  'c',  'h', 0xa2, 'i',  'd', 0x00};
    static const uint8_t neg_id[] = {0x81, 0xa2, 'i', 'd', 0xff};
    static const uint8_t no_op[] = {0x81, 0xa2, 'i', 'd', 0x09};
    static const uint8_t bad_op[] = {0x82, 0xa2, 'o',  'p', 0xa4, 'f', 'e',
                                     't',  '\n', 0xa2, 'i', 'd',  0x09};
    stream_msg m;
    uint64_t id;
    stream_op op;
    char eb[128];

    parse_into(&m, ok, sizeof ok);
    assert_int_equal(stream_msg_request(&m, &id, &op, eb, sizeof eb), 0);
    assert_int_equal(id, 9);
    assert_int_equal(op, STREAM_OP_FETCH);
    stream_msg_release(&m);

    parse_into(&m, no_id, sizeof no_id);
    assert_int_equal(stream_msg_request(&m, &id, &op, eb, sizeof eb), STREAM_EPROTO);
    assert_non_null(strstr(eb, "'id'"));
    stream_msg_release(&m);

    parse_into(&m, id0, sizeof id0);
    assert_int_equal(stream_msg_request(&m, &id, &op, eb, sizeof eb), STREAM_EPROTO);
    stream_msg_release(&m);

    parse_into(&m, neg_id, sizeof neg_id);
    assert_int_equal(stream_msg_request(&m, &id, &op, eb, sizeof eb), STREAM_EPROTO);
    stream_msg_release(&m);

    parse_into(&m, no_op, sizeof no_op);
    assert_int_equal(stream_msg_request(&m, &id, &op, eb, sizeof eb), STREAM_EBADREQ);
    assert_int_equal(id, 9);
    assert_string_equal(eb, "missing field 'op'");
    stream_msg_release(&m);

    parse_into(&m, bad_op, sizeof bad_op);
    assert_int_equal(stream_msg_request(&m, &id, &op, eb, sizeof eb), STREAM_EUNKNOWNOP);
    assert_int_equal(id, 9);
    assert_int_equal(op, STREAM_OP_UNKNOWN);
    assert_string_equal(eb, "unknown op 'fet?'"); /* control bytes are not echoed */
    stream_msg_release(&m);
}

static void test_response_round_trip_through_reader(void **state)
{
    stream_buf out = STREAM_BUF_INIT;
    stream_frame_reader fr;
    stream_msg m;
    const uint8_t *p;
    size_t n;
    uint64_t id;
    int err;
    const char *text;
    size_t text_len;
    int64_t off;

    assert_int_equal(stream_frame_error_response(&out, 7, STREAM_ENOTOPIC, "no topic 'x'"), 0);
    stream_frame f;
    stream_frame_start(&f, &out);
    stream_pack_response_header(&f.pk, 8, 0, NULL, 1);
    stream_pack_kv_int(&f.pk, "base_offset", 42);
    assert_int_equal(stream_frame_finish(&f), 0);
    assert_int_equal(stream_frame_error_response(&out, 0, STREAM_ETOOLARGE, NULL), 0);

    stream_frame_reader_init(&fr, 1000);
    stream_msg_init(&m);
    assert_int_equal(stream_frame_reader_feed(&fr, out.data, out.len, NULL, 0), 0);

    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    assert_int_equal(stream_msg_parse(p, n, &m, NULL, 0), 0);
    assert_int_equal(stream_msg_response(&m, &id, &err, &text, &text_len, NULL, 0), 0);
    assert_int_equal(id, 7);
    assert_int_equal(err, STREAM_ENOTOPIC);
    assert_true(stream_str_eq(text, text_len, "no topic 'x'"));

    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    assert_int_equal(stream_msg_parse(p, n, &m, NULL, 0), 0);
    assert_int_equal(stream_msg_response(&m, &id, &err, &text, &text_len, NULL, 0), 0);
    assert_int_equal(id, 8);
    assert_int_equal(err, 0);
    assert_null(text);
    assert_int_equal(stream_field_int(&m.root, "base_offset", 0, INT64_MAX, &off, NULL, 0), 0);
    assert_int_equal(off, 42);

    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    assert_int_equal(stream_msg_parse(p, n, &m, NULL, 0), 0);
    assert_int_equal(stream_msg_response(&m, &id, &err, &text, &text_len, NULL, 0), 0);
    assert_int_equal(id, 0);
    assert_int_equal(err, STREAM_ETOOLARGE);
    assert_true(stream_str_eq(text, text_len, stream_strerror(STREAM_ETOOLARGE)));
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 0);

    stream_msg_release(&m);
    stream_frame_reader_release(&fr);
    stream_buf_release(&out);
}

static void test_msg_response_rejects_missing_err(void **state)
{
    static const uint8_t no_err[] = {0x81, 0xa2, 'i', 'd', 0x01};
    static const uint8_t neg_err[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa3, 'e', 'r', 'r', 0xff};
    stream_msg m;
    uint64_t id;
    int err;
    const char *t;
    size_t tl;
    char eb[128];
    parse_into(&m, no_err, sizeof no_err);
    assert_int_equal(stream_msg_response(&m, &id, &err, &t, &tl, eb, sizeof eb), STREAM_EPROTO);
    assert_string_equal(eb, "missing field 'err'");
    stream_msg_release(&m);
    parse_into(&m, neg_err, sizeof neg_err);
    assert_int_equal(stream_msg_response(&m, &id, &err, &t, &tl, eb, sizeof eb), STREAM_EPROTO);
    stream_msg_release(&m);
}

/* ---- frame writer -------------------------------------------------------- */

static void test_frame_writer_patches_length_and_aborts_cleanly(void **state)
{
    stream_buf out = STREAM_BUF_INIT;
    stream_frame f;
    stream_buf_put(&out, "prev", 4); /* an earlier frame's bytes stay put */
    stream_frame_start(&f, &out);
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_bool(&f.pk, "ok", true);
    assert_int_equal(stream_frame_finish(&f), 0);
    assert_int_equal(out.len, 4 + 4 + 5);
    assert_int_equal(stream_load_be32(out.data + 4), 5);
    assert_memory_equal(out.data + 8, "\x81\xa2ok\xc3", 5);

    stream_frame_start(&f, &out);
    msgpack_pack_map(&f.pk, 1);
    stream_frame_abort(&f);
    assert_int_equal(out.len, 13);

    stream_frame_start(&f, &out);
    assert_int_equal(stream_frame_finish(&f), STREAM_EINVAL); /* empty payload */
    assert_int_equal(out.len, 13);

    /* An allocation failure is reported once, at finish. */
    stream_frame_start(&f, &out);
    out.oom = true;
    msgpack_pack_map(&f.pk, 0);
    assert_int_equal(stream_frame_finish(&f), STREAM_ENOMEM);
    assert_int_equal(out.len, 13);
    assert_false(out.oom);
    stream_buf_release(&out);
}

/* ---- names ----------------------------------------------------------------- */

static void test_op_names_round_trip(void **state)
{
    for (int op = 1; op < STREAM_OP__COUNT; op++) {
        const char *name = stream_op_name((stream_op)op);
        assert_int_equal(stream_op_from_name(name, strlen(name)), op);
    }
    assert_int_equal(stream_op_from_name("hello!", 5), STREAM_OP_HELLO); /* length counts */
    assert_int_equal(stream_op_from_name("hell", 4), STREAM_OP_UNKNOWN);
    assert_int_equal(stream_op_from_name("HELLO", 5), STREAM_OP_UNKNOWN);
    assert_string_equal(stream_op_name(STREAM_OP_UNKNOWN), "unknown");
    assert_string_equal(stream_op_name((stream_op)999), "unknown");
    assert_int_equal(stream_op_since_version(STREAM_OP_PRODUCE), 1);
    assert_int_equal(stream_op_since_version(STREAM_OP_JOIN_GROUP), 2);
    assert_int_equal(stream_op_since_version(STREAM_OP_UNKNOWN), 0);
    assert_true(stream_err_retriable(STREAM_ETIMEDOUT));
    assert_false(stream_err_retriable(STREAM_ECRC));
    assert_false(stream_err_retriable(0));
}

/* ---- broker addresses ---------------------------------------------------- */

static void expect_hostport(const char *s, const char *host, unsigned port)
{
    stream_hostport hp;
    char eb[160] = "";
    int rc = stream_parse_hostport(s, strlen(s), STREAM_DEFAULT_PORT, &hp, eb, sizeof eb);
    if (rc != 0)
        fail_msg("'%s': %s", s, eb);
    assert_string_equal(hp.host, host);
    assert_int_equal(hp.port, port);
}

static void expect_bad_hostport(const char *s)
{
    stream_hostport hp;
    char eb[160] = "";
    int rc = stream_parse_hostport(s, strlen(s), STREAM_DEFAULT_PORT, &hp, eb, sizeof eb);
    if (rc != STREAM_EINVAL)
        fail_msg("'%s' was accepted as %s:%u", s, hp.host, hp.port);
    assert_true(eb[0] != '\0');
}

static void test_hostport_forms(void **state)
{
    expect_hostport("127.0.0.1:9292", "127.0.0.1", 9292);
    expect_hostport("localhost", "localhost", STREAM_DEFAULT_PORT);
    expect_hostport("broker-1.example.com:1", "broker-1.example.com", 1);
    expect_hostport("kafka_1:65535", "kafka_1", 65535);
    expect_hostport("[::1]:9093", "::1", 9093);
    expect_hostport("[::1]", "::1", STREAM_DEFAULT_PORT);
    expect_hostport("[fe80::1%eth0]:7", "fe80::1%eth0", 7);
    expect_hostport("[::ffff:10.0.0.1]:80", "::ffff:10.0.0.1", 80);
}

static void test_hostport_errors(void **state)
{
    static const char *bad[] = {
        "",         ":9292",       "host:",    "host:0",   "host:65536", "host:12a",    "host:-1",
        "host:+80", "::1",         "::1:9292", "[::1",     "[::1]x",     "[::1]:",      "[zz]:1",
        "[]:1",     "[1.2.3.4]:1", "ho st:1",  "a:123456", "[fe80::1%]", "h\xc3\xa9:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad_hostport(bad[i]);
    /* Not NUL-terminated: only len bytes count. */
    stream_hostport hp;
    assert_int_equal(stream_parse_hostport("abc:12xyz", 6, 1, &hp, NULL, 0), 0);
    assert_string_equal(hp.host, "abc");
    assert_int_equal(hp.port, 12);
    char long_host[300];
    memset(long_host, 'h', sizeof long_host);
    assert_int_equal(stream_parse_hostport(long_host, sizeof long_host, 1, &hp, NULL, 0),
                     STREAM_EINVAL);
}

static void test_hostport_list(void **state)
{
    stream_hostport *v;
    size_t n;
    char eb[160];
    char text[64];
    assert_int_equal(
        stream_parse_hostport_list(" a:1, [::1]:2 ,\tc ,", 9292, &v, &n, eb, sizeof eb), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].host, "a");
    assert_int_equal(v[0].port, 1);
    assert_string_equal(v[1].host, "::1");
    assert_int_equal(v[2].port, 9292);
    assert_int_equal(stream_hostport_format(&v[1], text, sizeof text), 7);
    assert_string_equal(text, "[::1]:2");
    stream_hostport_format(&v[2], text, sizeof text);
    assert_string_equal(text, "c:9292");
    free(v);

    assert_int_equal(stream_parse_hostport_list("a,,b", 1, &v, &n, eb, sizeof eb), 0);
    assert_int_equal(n, 2);
    free(v);

    assert_int_equal(stream_parse_hostport_list(" , ", 1, &v, &n, eb, sizeof eb), STREAM_EINVAL);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(stream_parse_hostport_list("a:1,b:x", 1, &v, &n, eb, sizeof eb),
                     STREAM_EINVAL);
    assert_null(v);
    assert_non_null(strstr(eb, "'b:x'"));
    assert_int_equal(stream_parse_hostport_list(NULL, 1, &v, &n, eb, sizeof eb), STREAM_EINVAL);
    /* Many entries grow the array. */
    assert_int_equal(stream_parse_hostport_list("a,b,c,d,e,f,g,h,i,j", 1, &v, &n, eb, sizeof eb),
                     0);
    assert_int_equal(n, 10);
    assert_string_equal(v[9].host, "j");
    free(v);
}

/* ---- the specification's examples ---------------------------------------- */

/* The tiny batch of the produce example: one record, key null, value
 * "hello", timestamp 1700000000000 (2023-11-14T22:13:20Z), as a producer
 * sends it (baseOffset 0, partitionLeaderEpoch -1, no producer id). Built
 * field by field here, independently of batch.c, so the spec's bytes are
 * checked against the layout the spec describes. */
#define EXAMPLE_TS INT64_C(1700000000000)

static void build_example_batch(stream_buf *b)
{
    stream_buf_put_be64(b, 0);          /* baseOffset */
    stream_buf_put_be32(b, 49 + 12);    /* batchLength: header after it + one record */
    stream_buf_put_be32(b, UINT32_MAX); /* partitionLeaderEpoch -1 */
    stream_buf_put_u8(b, 2);            /* magic */
    stream_buf_put_be32(b, 0);          /* crc, patched below */
    stream_buf_put_be16(b, 0);          /* attributes: no codec, CreateTime */
    stream_buf_put_be32(b, 0);          /* lastOffsetDelta */
    stream_buf_put_be64(b, EXAMPLE_TS); /* baseTimestamp */
    stream_buf_put_be64(b, EXAMPLE_TS); /* maxTimestamp */
    stream_buf_put_be64(b, UINT64_MAX); /* producerId -1 */
    stream_buf_put_be16(b, UINT16_MAX); /* producerEpoch -1 */
    stream_buf_put_be32(b, UINT32_MAX); /* baseSequence -1 */
    stream_buf_put_be32(b, 1);          /* recordCount */
    stream_buf_put_varint(b, 11);       /* record length */
    stream_buf_put_u8(b, 0);            /* attributes */
    stream_buf_put_varlong(b, 0);       /* timestampDelta */
    stream_buf_put_varint(b, 0);        /* offsetDelta */
    stream_buf_put_varint(b, -1);       /* keyLength: null */
    stream_buf_put_varint(b, 5);        /* valueLength */
    stream_buf_put(b, "hello", 5);      /* value */
    stream_buf_put_varint(b, 0);        /* headerCount */
    assert_int_equal(b->len, 73);
    stream_buf_patch_be32(b, 17, stream_crc32c(0, b->data + 21, b->len - 21));
}

static void build_hello_request(stream_buf *out)
{
    stream_frame f;
    stream_frame_start(&f, out);
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, 1, 2);
    stream_pack_kv_int(&f.pk, "version", 1); /* the spec's example: a version 1 client */
    stream_pack_kv_cstr(&f.pk, "client", "stream-pub/0.1.0");
    assert_int_equal(stream_frame_finish(&f), 0);
}

static void build_hello_response(stream_buf *out)
{
    stream_frame f;
    stream_frame_start(&f, out);
    stream_pack_response_header(&f.pk, 1, 0, NULL, 5);
    stream_pack_kv_int(&f.pk, "version", 1);
    stream_pack_kv_cstr(&f.pk, "broker", "stream-broker/0.1.0");
    stream_pack_kv_int(&f.pk, "node_id", 0);
    stream_pack_kv_uint(&f.pk, "max_frame_bytes", STREAM_DEFAULT_MAX_FRAME_BYTES);
    stream_pack_kv_uint(&f.pk, "max_message_bytes", STREAM_DEFAULT_MAX_MESSAGE_BYTES);
    assert_int_equal(stream_frame_finish(&f), 0);
}

static void build_produce_request(stream_buf *out)
{
    stream_buf batch = STREAM_BUF_INIT;
    stream_frame f;
    build_example_batch(&batch);
    stream_frame_start(&f, out);
    stream_pack_request_header(&f.pk, STREAM_OP_PRODUCE, 2, 3);
    stream_pack_kv_int(&f.pk, "acks", -1);
    stream_pack_kv_int(&f.pk, "timeout_ms", 30000);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "greetings");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_kv_bin(&f.pk, "records", batch.data, batch.len);
    assert_int_equal(stream_frame_finish(&f), 0);
    stream_buf_release(&batch);
}

static void build_produce_response(stream_buf *out)
{
    stream_frame f;
    stream_frame_start(&f, out);
    stream_pack_response_header(&f.pk, 2, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "greetings");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 3 + stream_err_fields(0));
    stream_pack_kv_int(&f.pk, "partition", 0);
    stream_pack_err(&f.pk, 0, NULL);
    stream_pack_kv_int(&f.pk, "base_offset", 0);
    stream_pack_kv_int(&f.pk, "log_start_offset", 0);
    assert_int_equal(stream_frame_finish(&f), 0);
}

/* The whole-request error of the example: a metadata-like request that
 * lacks a required field. */
static void build_error_response(stream_buf *out)
{
    assert_int_equal(stream_frame_error_response(out, 3, STREAM_EBADREQ, "missing field 'topics'"),
                     0);
}

/* The bytes as printed in share/doc/protocol.md. */
static const uint8_t hello_request_bytes[] = {
    0x00, 0x00, 0x00, 0x2f, 0x84, 0xa2, 0x6f, 0x70, 0xa5, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0xa2, 0x69, 0x64, 0x01, 0xa7, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e,
    0x01, 0xa6, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0xb0, 0x73, 0x74, 0x72, 0x65,
    0x61, 0x6d, 0x2d, 0x70, 0x75, 0x62, 0x2f, 0x30, 0x2e, 0x31, 0x2e, 0x30,
};

static const uint8_t hello_response_bytes[] = {
    0x00, 0x00, 0x00, 0x63, 0x87, 0xa2, 0x69, 0x64, 0x01, 0xa3, 0x65, 0x72, 0x72, 0x00, 0xa7,
    0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x01, 0xa6, 0x62, 0x72, 0x6f, 0x6b, 0x65, 0x72,
    0xb3, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x2d, 0x62, 0x72, 0x6f, 0x6b, 0x65, 0x72, 0x2f,
    0x30, 0x2e, 0x31, 0x2e, 0x30, 0xa7, 0x6e, 0x6f, 0x64, 0x65, 0x5f, 0x69, 0x64, 0x00, 0xaf,
    0x6d, 0x61, 0x78, 0x5f, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x5f, 0x62, 0x79, 0x74, 0x65, 0x73,
    0xce, 0x06, 0x40, 0x00, 0x00, 0xb1, 0x6d, 0x61, 0x78, 0x5f, 0x6d, 0x65, 0x73, 0x73, 0x61,
    0x67, 0x65, 0x5f, 0x62, 0x79, 0x74, 0x65, 0x73, 0xce, 0x00, 0x10, 0x00, 0x0c,
};

static const uint8_t produce_request_bytes[] = {
    0x00, 0x00, 0x00, 0xa7, 0x85, 0xa2, 0x6f, 0x70, 0xa7, 0x70, 0x72, 0x6f, 0x64, 0x75, 0x63, 0x65,
    0xa2, 0x69, 0x64, 0x02, 0xa4, 0x61, 0x63, 0x6b, 0x73, 0xff, 0xaa, 0x74, 0x69, 0x6d, 0x65, 0x6f,
    0x75, 0x74, 0x5f, 0x6d, 0x73, 0xcd, 0x75, 0x30, 0xa6, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x73, 0x91,
    0x82, 0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa9, 0x67, 0x72, 0x65, 0x65, 0x74, 0x69, 0x6e, 0x67, 0x73,
    0xaa, 0x70, 0x61, 0x72, 0x74, 0x69, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x91, 0x82, 0xa9, 0x70, 0x61,
    0x72, 0x74, 0x69, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0xa7, 0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x73,
    0xc4, 0x49, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3d, 0xff, 0xff,
    0xff, 0xff, 0x02, 0xe6, 0x41, 0xa4, 0x4b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x16,
    0x00, 0x00, 0x00, 0x01, 0x0a, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
};

static const uint8_t produce_response_bytes[] = {
    0x00, 0x00, 0x00, 0x5e, 0x83, 0xa2, 0x69, 0x64, 0x02, 0xa3, 0x65, 0x72, 0x72, 0x00,
    0xa6, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x73, 0x91, 0x82, 0xa4, 0x6e, 0x61, 0x6d, 0x65,
    0xa9, 0x67, 0x72, 0x65, 0x65, 0x74, 0x69, 0x6e, 0x67, 0x73, 0xaa, 0x70, 0x61, 0x72,
    0x74, 0x69, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x91, 0x84, 0xa9, 0x70, 0x61, 0x72, 0x74,
    0x69, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0xa3, 0x65, 0x72, 0x72, 0x00, 0xab, 0x62, 0x61,
    0x73, 0x65, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x00, 0xb0, 0x6c, 0x6f, 0x67,
    0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x00,
};

static const uint8_t error_response_bytes[] = {
    0x00, 0x00, 0x00, 0x25, 0x83, 0xa2, 0x69, 0x64, 0x03, 0xa3, 0x65, 0x72, 0x72, 0x12,
    0xa3, 0x6d, 0x73, 0x67, 0xb6, 0x6d, 0x69, 0x73, 0x73, 0x69, 0x6e, 0x67, 0x20, 0x66,
    0x69, 0x65, 0x6c, 0x64, 0x20, 0x27, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x73, 0x27,
};

typedef void (*builder)(stream_buf *);

static const struct example {
    const char *name; /* the marker in protocol.md: <!-- example: NAME --> */
    builder build;
    const uint8_t *bytes;
    size_t len;
} examples[] = {
    {"hello-request", build_hello_request, hello_request_bytes, sizeof hello_request_bytes},
    {"hello-response", build_hello_response, hello_response_bytes, sizeof hello_response_bytes},
    {"produce-request", build_produce_request, produce_request_bytes, sizeof produce_request_bytes},
    {"produce-response", build_produce_response, produce_response_bytes,
     sizeof produce_response_bytes},
    {"error-response", build_error_response, error_response_bytes, sizeof error_response_bytes},
};
#define NEXAMPLES (sizeof examples / sizeof examples[0])

/* With STREAM_PROTO_DUMP set, prints each example as hexdump -C would, to
 * regenerate the spec's dumps after a deliberate change. */
static void dump_example(const char *name, const stream_buf *b)
{
    printf("<!-- example: %s -->\n```\n", name);
    for (size_t j = 0; j < b->len; j += 16) {
        printf("%08zx ", j);
        for (size_t k = j; k < j + 16; k++) {
            if (k % 8 == 0)
                printf(" ");
            if (k < b->len)
                printf("%02x ", b->data[k]);
            else
                printf("   ");
        }
        printf(" |");
        for (size_t k = j; k < j + 16 && k < b->len; k++)
            putchar(b->data[k] >= 0x20 && b->data[k] < 0x7f ? b->data[k] : '.');
        printf("|\n");
    }
    printf("%08zx\n```\n", b->len);
}

static void test_spec_examples_are_byte_exact(void **state)
{
    for (size_t i = 0; getenv("STREAM_PROTO_DUMP") != NULL && i < NEXAMPLES; i++) {
        stream_buf b = STREAM_BUF_INIT;
        examples[i].build(&b);
        dump_example(examples[i].name, &b);
        stream_buf_release(&b);
    }
    for (size_t i = 0; i < NEXAMPLES; i++) {
        stream_buf b = STREAM_BUF_INIT;
        examples[i].build(&b);
        bool same = b.len == examples[i].len && memcmp(b.data, examples[i].bytes, b.len) == 0;
        stream_buf_release(&b);
        if (!same)
            fail_msg("example %s differs from the bytes in the spec", examples[i].name);
    }
}

/* The example frames decode as the spec says: the produce request's records
 * are one valid batch, and the broker-side header read works on it. */
static void test_spec_produce_example_decodes(void **state)
{
    stream_frame_reader fr;
    stream_msg m;
    const uint8_t *p, *records;
    size_t n, records_len;
    uint64_t id;
    stream_op op;
    int64_t acks;
    const msgpack_object *topics, *t, *parts, *part;
    stream_frame_reader_init(&fr, STREAM_DEFAULT_MAX_FRAME_BYTES);
    stream_msg_init(&m);
    assert_int_equal(
        stream_frame_reader_feed(&fr, produce_request_bytes, sizeof produce_request_bytes, NULL, 0),
        0);
    assert_int_equal(stream_frame_reader_next(&fr, &p, &n), 1);
    assert_int_equal(stream_msg_parse(p, n, &m, NULL, 0), 0);
    assert_int_equal(stream_msg_request(&m, &id, &op, NULL, 0), 0);
    assert_int_equal(op, STREAM_OP_PRODUCE);
    assert_int_equal(id, 2);
    assert_int_equal(stream_field_int_opt(&m.root, "acks", -1, 1, 1, &acks, NULL, 0), 0);
    assert_int_equal(acks, -1);
    assert_int_equal(stream_field_array(&m.root, "topics", &topics, NULL, 0), 0);
    assert_int_equal(stream_elem_map(topics, 0, "topics", &t, NULL, 0), 0);
    assert_int_equal(stream_field_array(t, "partitions", &parts, NULL, 0), 0);
    assert_int_equal(stream_elem_map(parts, 0, "partitions", &part, NULL, 0), 0);
    assert_int_equal(stream_field_bin(part, "records", &records, &records_len, NULL, 0), 0);
    assert_int_equal(records_len, 73);
    assert_int_equal(stream_load_be32(records + 17),
                     stream_crc32c(0, records + 21, records_len - 21));
    stream_msg_release(&m);
    stream_frame_reader_release(&fr);
}

/* Reads the hex dump that follows "<!-- example: NAME -->" in the spec
 * (hexdump -C lines: offset, up to 16 bytes, |ascii|). */
static size_t read_spec_dump(const char *doc, const char *name, uint8_t *out, size_t cap)
{
    char marker[96];
    snprintf(marker, sizeof marker, "<!-- example: %s -->", name);
    const char *s = strstr(doc, marker);
    if (s == NULL)
        fail_msg("protocol.md has no %s", marker);
    s = strstr(s, "```");
    assert_non_null(s);
    s = strchr(s, '\n') + 1;
    size_t n = 0;
    while (strncmp(s, "```", 3) != 0) {
        const char *eol = strchr(s, '\n');
        assert_non_null(eol);
        const char *bar = memchr(s, '|', (size_t)(eol - s));
        const char *end = bar != NULL ? bar : eol;
        const char *q = s;
        while (q < end && !isspace((unsigned char)*q))
            q++; /* the offset column */
        while (q < end) {
            while (q < end && isspace((unsigned char)*q))
                q++;
            if (q >= end)
                break;
            unsigned v;
            assert_true(end - q >= 2 && sscanf(q, "%2x", &v) == 1);
            assert_true(n < cap);
            out[n++] = (uint8_t)v;
            q += 2;
        }
        s = eol + 1;
    }
    return n;
}

static void test_spec_document_shows_the_same_bytes(void **state)
{
    /* Found relative to this source file, as the build runs from the top. */
    char path[4096];
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    snprintf(path, sizeof path, "%.*s../../share/doc/protocol.md",
             slash ? (int)(slash - here + 1) : 0, here);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        skip(); /* not run from a source tree */
    static char doc[1 << 20];
    size_t len = fread(doc, 1, sizeof doc - 1, fp);
    fclose(fp);
    doc[len] = '\0';
    for (size_t i = 0; i < NEXAMPLES; i++) {
        uint8_t bytes[1024];
        size_t n = read_spec_dump(doc, examples[i].name, bytes, sizeof bytes);
        if (n != examples[i].len || memcmp(bytes, examples[i].bytes, n) != 0)
            fail_msg("protocol.md's %s dump differs from the tested bytes", examples[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_reader_bytes_fed_one_at_a_time),
        cmocka_unit_test(test_frame_reader_random_chunks_via_feed_and_prepare),
        cmocka_unit_test(test_frame_reader_multiple_frames_in_one_chunk),
        cmocka_unit_test(test_frame_reader_views_survive_next),
        cmocka_unit_test(test_frame_reader_refuses_oversized_length_before_buffering),
        cmocka_unit_test(test_frame_reader_refuses_zero_length),
        cmocka_unit_test(test_frame_reader_returns_frames_before_bad_length),
        cmocka_unit_test(test_frame_reader_announced_length_allocates_nothing),
        cmocka_unit_test(test_frame_reader_shrinks_after_large_frame),
        cmocka_unit_test(test_frame_reader_keeps_its_buffer_until_trimmed),
        cmocka_unit_test(test_frame_reader_commit_beyond_prepared_is_einval),
        cmocka_unit_test(test_msg_parse_borrows_strings_from_payload),
        cmocka_unit_test(test_msg_parse_rejects_garbage_and_non_maps),
        cmocka_unit_test(test_msg_parse_rejects_every_truncation),
        cmocka_unit_test(test_msg_parse_rejects_trailing_bytes),
        cmocka_unit_test(test_msg_parse_rejects_deep_nesting),
        cmocka_unit_test(test_msg_parse_refuses_counts_beyond_the_payload),
        cmocka_unit_test(test_msg_parse_object_takes_any_root_with_the_same_bounds),
        cmocka_unit_test(test_msg_parse_limits_object_count),
        cmocka_unit_test(test_msg_parse_survives_random_and_mutated_input),
        cmocka_unit_test(test_field_missing_or_nil_required_names_the_field),
        cmocka_unit_test(test_field_wrong_type_names_field_and_types),
        cmocka_unit_test(test_field_int_accepts_every_width),
        cmocka_unit_test(test_field_int_range_is_checked),
        cmocka_unit_test(test_field_first_of_duplicate_keys_counts),
        cmocka_unit_test(test_field_empty_keys_compare_without_memcmp_on_null),
        cmocka_unit_test(test_field_strmap_requires_unique_str_pairs),
        cmocka_unit_test(test_elem_accessors_name_the_element),
        cmocka_unit_test(test_msg_request_header_errors),
        cmocka_unit_test(test_response_round_trip_through_reader),
        cmocka_unit_test(test_msg_response_rejects_missing_err),
        cmocka_unit_test(test_frame_writer_patches_length_and_aborts_cleanly),
        cmocka_unit_test(test_op_names_round_trip),
        cmocka_unit_test(test_hostport_forms),
        cmocka_unit_test(test_hostport_errors),
        cmocka_unit_test(test_hostport_list),
        cmocka_unit_test(test_spec_examples_are_byte_exact),
        cmocka_unit_test(test_spec_produce_example_decodes),
        cmocka_unit_test(test_spec_document_shows_the_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
