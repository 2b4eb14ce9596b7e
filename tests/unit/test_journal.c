/*
 * test_journal.c - the recent metadata commands (libstream/cluster/journal.c):
 * a copy of the metadata caught up by deltas ends byte for byte where the
 * voter is; the byte budget moves the base and a copy below it needs the
 * image; malformed deltas are refused with the copy unchanged.
 *
 * A "voter" here is a metadata state with the commands applied at
 * increasing indexes and each kept in a journal, as the controller does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/election.h"
#include "cluster/journal.h"
#include "cluster/metadata.h"
#include "stream/buf.h"
#include "stream/error.h"

typedef struct voter {
    stream__meta *md;
    stream__journal *j;
    uint64_t index;
    uint64_t seq;
} voter;

static void voter_init(voter *v, size_t max_bytes)
{
    v->md = stream__meta_new("c1");
    v->j = stream__journal_new(max_bytes);
    assert_non_null(v->md);
    assert_non_null(v->j);
    v->index = 0;
    v->seq = 0;
}

static void voter_release(voter *v)
{
    stream__meta_free(v->md);
    stream__journal_free(v->j);
}

/* Applies b's command at the next index (gaps of 3: Raft's own entries take
 * indexes too) and keeps it in the journal; empties b. */
static void voter_apply(voter *v, stream_buf *b)
{
    v->index += 3;
    int rc = stream__meta_apply(v->md, b->data, b->len, v->index);
    assert_int_not_equal(rc, STREAM_ENOMEM);
    stream__journal_add(v->j, v->index, b->data, b->len);
    stream_buf_reset(b);
}

static stream__meta_req req(voter *v)
{
    return (stream__meta_req){5, ++v->seq};
}

/* Brokers 1..3 registered and unfenced. */
static void brokers(voter *v, stream_buf *b)
{
    for (int32_t id = 1; id <= 3; id++) {
        assert_int_equal(
            stream__meta_encode_register_broker(b, req(v), id, "127.0.0.1", (uint16_t)(9000 + id)),
            0);
        voter_apply(v, b);
        const stream__meta_broker *mb = stream__meta_broker_find(v->md, id);
        assert_int_equal(stream__meta_encode_unfence_broker(b, req(v), id, mb->epoch), 0);
        voter_apply(v, b);
    }
}

static void create(voter *v, stream_buf *b, const char *name, uint8_t tag, int32_t parts)
{
    uint8_t id[16] = {0xab};
    id[15] = tag;
    int32_t *replicas = calloc((size_t)parts * 3, sizeof(int32_t));
    const int32_t ids[] = {1, 2, 3};
    stream__elect_place(ids, 3, tag, parts, 3, replicas);
    assert_int_equal(
        stream__meta_encode_create_topic(b, req(v), name, id, parts, 3, replicas, NULL, 0), 0);
    free(replicas);
    voter_apply(v, b);
}

static void assert_same_state(const stream__meta *a, const stream__meta *b)
{
    stream_buf sa = STREAM_BUF_INIT, sb = STREAM_BUF_INIT;
    assert_int_equal(stream__meta_snapshot(a, &sa), 0);
    assert_int_equal(stream__meta_snapshot(b, &sb), 0);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    stream_buf_release(&sa);
    stream_buf_release(&sb);
}

/* A copy restored from the voter's image at some index. */
static stream__meta *copy_of(const voter *v)
{
    stream_buf img = STREAM_BUF_INIT;
    assert_int_equal(stream__meta_snapshot(v->md, &img), 0);
    stream__meta *c = stream__meta_new("c1");
    char err[256];
    assert_int_equal(stream__meta_restore(c, img.data, img.len, err, sizeof err), 0);
    stream_buf_release(&img);
    return c;
}

static void test_a_copy_caught_up_by_deltas_is_the_voters_state(void **state)
{
    (void)state;
    voter v;
    voter_init(&v, STREAM__JOURNAL_MAX_BYTES);
    stream_buf b = STREAM_BUF_INIT, d = STREAM_BUF_INIT;
    brokers(&v, &b);
    create(&v, &b, "a", 1, 50);
    stream__meta *copy = copy_of(&v);
    uint64_t since = stream__meta_applied_index(copy);

    /* More changes: a topic, a refused command (it still moves the index
     * and the requester's window), a fence and its batched leader moves. */
    create(&v, &b, "b", 2, 2000);
    create(&v, &b, "b", 3, 1); /* refused: the name is taken */
    const stream__meta_broker *mb = stream__meta_broker_find(v.md, 1);
    assert_int_equal(stream__meta_encode_fence_broker(&b, req(&v), 1, mb->epoch), 0);
    voter_apply(&v, &b);

    /* Nothing since the last index: an empty array, nothing to do. */
    assert_int_equal(stream__journal_since(v.j, v.index, 1 << 20, &d), 0);
    assert_int_equal(d.len, 1);
    stream_buf_reset(&d);

    assert_int_equal(stream__journal_since(v.j, since, 1 << 20, &d), 0);
    /* The deltas are the changes, far smaller than the image. */
    stream_buf img = STREAM_BUF_INIT;
    assert_int_equal(stream__meta_snapshot(v.md, &img), 0);
    assert_true(d.len < img.len);
    char err[256];
    assert_int_equal(stream__journal_apply(copy, d.data, d.len, err, sizeof err), 0);
    assert_int_equal(stream__meta_applied_index(copy), v.index);
    assert_same_state(copy, v.md);
    /* The same deltas again: the copy is past them, refused, unchanged. */
    assert_int_equal(stream__journal_apply(copy, d.data, d.len, err, sizeof err), STREAM_ECORRUPT);
    assert_non_null(strstr(err, "not above"));
    assert_same_state(copy, v.md);

    stream_buf_release(&img);
    stream_buf_release(&b);
    stream_buf_release(&d);
    stream__meta_free(copy);
    voter_release(&v);
}

static void test_the_budget_moves_the_base_and_an_older_copy_needs_the_image(void **state)
{
    (void)state;
    voter v;
    voter_init(&v, 2048);
    stream_buf b = STREAM_BUF_INIT, d = STREAM_BUF_INIT;
    brokers(&v, &b);
    assert_int_equal(stream__journal_base(v.j), 0);
    uint64_t early = v.index;
    for (uint8_t t = 1; t <= 20; t++) {
        char name[16];
        snprintf(name, sizeof name, "t%u", (unsigned)t);
        create(&v, &b, name, t, 30); /* about 200 bytes each */
    }
    assert_true(stream__journal_base(v.j) > early);
    assert_int_equal(stream__journal_last(v.j), v.index);
    stream_buf_put(&d, "x", 1);
    assert_int_equal(stream__journal_since(v.j, early, 1 << 20, &d), STREAM_ENOENT);
    assert_int_equal(d.len, 1); /* untouched */
    /* From the base itself: fine. Within a budget too small: too large. */
    assert_int_equal(stream__journal_since(v.j, stream__journal_base(v.j), 100, &d),
                     STREAM_ETOOLARGE);
    assert_int_equal(stream__journal_since(v.j, stream__journal_base(v.j), 1 << 20, &d), 0);
    /* A command above the budget on its own: nothing kept, base at it. */
    create(&v, &b, "huge", 99, 2000);
    assert_int_equal(stream__journal_base(v.j), v.index);
    assert_int_equal(stream__journal_last(v.j), v.index);
    /* A restore: nothing before the snapshot. */
    stream__journal_reset(v.j, 12345);
    assert_int_equal(stream__journal_base(v.j), 12345);
    assert_int_equal(stream__journal_since(v.j, 12344, 1 << 20, &d), STREAM_ENOENT);
    stream_buf_release(&b);
    stream_buf_release(&d);
    voter_release(&v);
}

static void test_malformed_deltas_are_refused_and_change_nothing(void **state)
{
    (void)state;
    voter v;
    voter_init(&v, STREAM__JOURNAL_MAX_BYTES);
    stream_buf b = STREAM_BUF_INIT;
    brokers(&v, &b);
    stream__meta *copy = copy_of(&v);
    char err[256];
    /* MessagePack by hand: each is wrong in one way. */
    static const uint8_t not_array[] = {0x80};                                   /* {} */
    static const uint8_t entry_not_pair[] = {0x91, 0x91, 0x40};                  /* [[64]] */
    static const uint8_t index_not_uint[] = {0x91, 0x92, 0xa1, 'x', 0xc4, 0x00}; /* [["x", b""]] */
    static const uint8_t cmd_not_bin[] = {0x91, 0x92, 0xcd, 0x10, 0x00, 0x01};   /* [[4096, 1]] */
    static const uint8_t stale[] = {0x91, 0x92, 0x01, 0xc4, 0x00};               /* [[1, b""]] */
    static const uint8_t decreasing[] = {0x92, 0x92, 0xcd, 0x10, 0x01, 0xc4, 0x00,
                                         0x92, 0xcd, 0x10, 0x00, 0xc4, 0x00};
    static const uint8_t truncated[] = {0x92, 0x92};
    const struct {
        const uint8_t *p;
        size_t len;
    } bad[] = {
        {not_array, sizeof not_array},
        {entry_not_pair, sizeof entry_not_pair},
        {index_not_uint, sizeof index_not_uint},
        {cmd_not_bin, sizeof cmd_not_bin},
        {stale, sizeof stale},
        {decreasing, sizeof decreasing},
        {truncated, sizeof truncated},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(stream__journal_apply(copy, bad[i].p, bad[i].len, err, sizeof err),
                         STREAM_ECORRUPT);
        assert_same_state(copy, v.md);
    }
    /* Well-formed, but a command that is no command: applied as a voter
     * would (refused, the index moves on). */
    static const uint8_t junk_cmd[] = {0x91, 0x92, 0xcd, 0x10, 0x00, 0xc4, 0x01, 0xc0};
    assert_int_equal(stream__journal_apply(copy, junk_cmd, sizeof junk_cmd, err, sizeof err), 0);
    assert_int_equal(stream__meta_applied_index(copy), 4096);
    stream_buf_release(&b);
    stream__meta_free(copy);
    voter_release(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_copy_caught_up_by_deltas_is_the_voters_state),
        cmocka_unit_test(test_the_budget_moves_the_base_and_an_older_copy_needs_the_image),
        cmocka_unit_test(test_malformed_deltas_are_refused_and_change_nothing),
    };
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
