/*
 * fuzz_journal.c - the metadata deltas a data-only broker applies
 * (stream__journal_apply, libstream/cluster/journal.c): the input is the
 * deltas, applied to a small state (brokers 1..3, broker 1 fenced, topic
 * "t" of 3 partitions, at index 10).
 *
 * Properties checked (journal.h's promises):
 *   - the result is 0 or STREAM_ECORRUPT (memory does not run out here);
 *   - refused deltas leave the state byte-identical;
 *   - applied deltas leave a state whose snapshot restores into a fresh
 *     state with the same snapshot, at the last delta's index;
 *   - deltas taken from a journal of that run (stream__journal_since)
 *     bring a copy of the starting state to the same bytes.
 *
 * An ordinary target of tests/fuzz/fuzz.mk (make fuzz; seeds from make_seeds.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cluster/journal.h"
#include "cluster/metadata.h"
#include "fuzz_util.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/proto.h"

static void apply_ok(stream__meta *md, stream__journal *j, stream_buf *b, uint64_t index)
{
    int rc = stream__meta_apply(md, b->data, b->len, index);
    FUZZ_CHECK_MSG(rc == 0, "seed command refused: %s", stream_err_name(rc));
    stream__journal_add(j, index, b->data, b->len);
    stream_buf_reset(b);
}

/* The starting state, its commands kept in j. */
static stream__meta *seeded(stream__journal *j)
{
    stream__meta *md = stream__meta_new("fuzz");
    FUZZ_CHECK(md != NULL);
    stream_buf b = STREAM_BUF_INIT;
    stream__meta_req r = {1, 0};
    uint64_t index = 1;
    for (int32_t id = 1; id <= 3; id++) {
        r.seq++;
        FUZZ_CHECK(stream__meta_encode_register_broker(&b, r, id, "127.0.0.1",
                                                       (uint16_t)(9000 + id)) == 0);
        apply_ok(md, j, &b, ++index);
    }
    for (int32_t id = 2; id <= 3; id++) {
        r.seq++;
        FUZZ_CHECK(stream__meta_encode_unfence_broker(
                       &b, r, id, stream__meta_broker_find(md, id)->epoch) == 0);
        apply_ok(md, j, &b, ++index);
    }
    static const int32_t replicas[] = {1, 2, 3, 2, 3, 1, 3, 1, 2};
    uint8_t id[16] = {1};
    r.seq++;
    FUZZ_CHECK(stream__meta_encode_create_topic(&b, r, "t", id, 3, 3, replicas, NULL, 0) == 0);
    apply_ok(md, j, &b, 10);
    stream_buf_release(&b);
    return md;
}

/* md's snapshot into out; true when it is the same bytes as ref (NULL:
 * nothing to compare). */
static bool snapshot_is(const stream__meta *md, stream_buf *out, const stream_buf *ref)
{
    stream_buf_reset(out);
    FUZZ_CHECK(stream__meta_snapshot(md, out) == 0);
    return ref == NULL ||
           (out->len == ref->len && (out->len == 0 || memcmp(out->data, ref->data, out->len) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stream__journal *j = stream__journal_new(1 << 20);
    FUZZ_CHECK(j != NULL);
    stream__meta *md = seeded(j);
    stream_buf before = STREAM_BUF_INIT, after = STREAM_BUF_INIT, again = STREAM_BUF_INIT;
    snapshot_is(md, &before, NULL);
    char err[256];
    int rc = stream__journal_apply(md, data, size, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_ECORRUPT, "unexpected %s", stream_err_name(rc));
    bool unchanged = snapshot_is(md, &after, &before);
    if (rc != 0) {
        FUZZ_CHECK(unchanged);
    } else {
        stream__meta *copy = stream__meta_new("fuzz");
        FUZZ_CHECK(copy != NULL);
        FUZZ_CHECK_MSG(stream__meta_restore(copy, after.data, after.len, err, sizeof err) == 0,
                       "applied deltas leave a state that does not restore: %s", err);
        FUZZ_CHECK(snapshot_is(copy, &again, &after));
        stream__meta_free(copy);
    }
    stream__meta_free(md);
    stream__journal_free(j);
    stream_buf_release(&before);
    stream_buf_release(&after);
    stream_buf_release(&again);
    return 0;
}
