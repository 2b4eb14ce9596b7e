/*
 * fuzz_metadata.c - the cluster metadata's decoders: commands (decode and
 * apply) and snapshots (restore), libstream/cluster/metadata*.c; and the
 * "who leads" answer a data-only broker reads from a voter (quorum.h).
 *
 * Input: one byte of mode, then
 *   mode % 4 == 0   one command
 *   mode % 4 == 1   one snapshot
 *   mode % 4 == 2   commands, each a 2-byte big-endian length and its bytes
 *                   (up to 16), applied in order
 *   mode % 4 == 3   a who-leads answer line: parsed; when it parses, its
 *                   format parses back to the same fields
 * Commands are applied to a small state (brokers 1..3, broker 1 fenced,
 * topics "t" and __consumer_offsets of 3 partitions), so valid ones reach
 * the operations and not only the decoder.
 *
 * Properties checked (metadata.h's promises):
 *   - a command that decodes re-encodes, and that encoding is a fixpoint
 *     (decode, encode again: the same bytes);
 *   - apply returns 0, a verdict from the header's list, or EBADREQ exactly
 *     when the command does not decode; a refused command changes nothing;
 *   - applying the same command again at the same index changes nothing and
 *     returns the same verdict (idempotence by request id);
 *   - every state apply reaches is one restore accepts: its snapshot
 *     restores into a fresh state whose snapshot is the same bytes;
 *   - restore of any bytes either succeeds, and then the snapshot of the
 *     result is a fixpoint, or fails with ECORRUPT/EBADCONFIG and leaves the
 *     state byte-identical.
 *
 * An ordinary target of tests/fuzz/fuzz.mk (make fuzz; seeds from make_seeds.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cluster/metadata.h"
#include "cluster/quorum.h"
#include "fuzz_util.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/proto.h"

static uint64_t next_index;

static void apply_ok(stream__meta *md, stream_buf *b)
{
    int rc = stream__meta_apply(md, b->data, b->len, ++next_index);
    FUZZ_CHECK_MSG(rc == 0, "seed command refused: %s", stream_err_name(rc));
    stream_buf_reset(b);
}

/* The starting state of every input. */
static stream__meta *seeded(void)
{
    stream__meta *md = stream__meta_new("fuzz");
    FUZZ_CHECK(md != NULL);
    stream_buf b = STREAM_BUF_INIT;
    stream__meta_req r = {1, 0};
    next_index = 1;
    for (int32_t id = 1; id <= 3; id++) {
        r.seq++;
        FUZZ_CHECK(stream__meta_encode_register_broker(&b, r, id, "127.0.0.1",
                                                          (uint16_t)(9000 + id)) == 0);
        apply_ok(md, &b);
    }
    for (int32_t id = 2; id <= 3; id++) {
        r.seq++;
        FUZZ_CHECK(stream__meta_encode_unfence_broker(
                       &b, r, id, stream__meta_broker_find(md, id)->epoch) == 0);
        apply_ok(md, &b);
    }
    static const int32_t replicas[] = {1, 2, 3, 2, 3, 1, 3, 1, 2};
    uint8_t id[16] = {1};
    stream__meta_kv cfg = {"retention.ms", 12, "1000", 4};
    r.seq++;
    FUZZ_CHECK(stream__meta_encode_create_topic(&b, r, "t", id, 3, 3, replicas, &cfg, 1) == 0);
    apply_ok(md, &b);
    id[0] = 2;
    r.seq++;
    FUZZ_CHECK(stream__meta_encode_create_topic(&b, r, STREAM_OFFSETS_TOPIC, id, 3, 3, replicas,
                                                   NULL, 0) == 0);
    apply_ok(md, &b);
    stream_buf_release(&b);
    return md;
}

static void snapshot(const stream__meta *md, stream_buf *out)
{
    stream_buf_reset(out);
    FUZZ_CHECK(stream__meta_snapshot(md, out) == 0);
}

static bool same(const stream_buf *a, const stream_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The state's snapshot restores into a fresh state with the same snapshot. */
static void check_restorable(const stream__meta *md)
{
    stream_buf s1 = STREAM_BUF_INIT, s2 = STREAM_BUF_INIT;
    char err[256];
    snapshot(md, &s1);
    stream__meta *copy = stream__meta_new("fuzz");
    FUZZ_CHECK(copy != NULL);
    int rc = stream__meta_restore(copy, s1.data, s1.len, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "a state apply reached does not restore: %s", err);
    snapshot(copy, &s2);
    FUZZ_CHECK(same(&s1, &s2));
    stream__meta_free(copy);
    stream_buf_release(&s1);
    stream_buf_release(&s2);
}

static bool known_verdict(int rc)
{
    switch (rc) {
    case 0:
    case STREAM_EBADREQ:
    case STREAM_EBADNAME:
    case STREAM_ETOPICEXISTS:
    case STREAM_EEXIST:
    case STREAM_EBADCONFIG:
    case STREAM_ENOTOPIC:
    case STREAM_ENOPART:
    case STREAM_EINVAL:
    case STREAM__META_ESTALE:
    case STREAM__META_ENOBROKER:
        return true;
    default:
        return false;
    }
}

/* Decode / encode fixpoint; returns whether p decodes. */
static bool check_codec(const uint8_t *p, size_t len)
{
    stream__meta_cmd c;
    char err[256];
    int rc = stream__meta_cmd_decode(p, len, &c, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EBADREQ, "decode: %s", stream_err_name(rc));
    if (rc != 0) {
        stream__meta_cmd_release(&c);
        return false;
    }
    fuzz_touch(c.host, c.host_len);
    fuzz_touch(c.topic, c.topic_len);
    stream_buf e1 = STREAM_BUF_INIT, e2 = STREAM_BUF_INIT;
    rc = stream__meta_cmd_encode(&c, &e1);
    FUZZ_CHECK_MSG(rc == 0, "a decoded %s does not encode: %s", stream__meta_op_name(c.op),
                   stream_err_name(rc));
    stream__meta_cmd c2;
    rc = stream__meta_cmd_decode(e1.data, e1.len, &c2, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "an encoded command does not decode: %s", err);
    FUZZ_CHECK(c2.op == c.op && c2.req.node == c.req.node && c2.req.seq == c.req.seq);
    FUZZ_CHECK(stream__meta_cmd_encode(&c2, &e2) == 0);
    FUZZ_CHECK(same(&e1, &e2));
    stream__meta_cmd_release(&c);
    stream__meta_cmd_release(&c2);
    stream_buf_release(&e1);
    stream_buf_release(&e2);
    return true;
}

/* Applies one command with the properties above. */
static void apply_checked(stream__meta *md, const uint8_t *p, size_t len)
{
    bool decodes = check_codec(p, len);
    stream_buf before = STREAM_BUF_INIT, after = STREAM_BUF_INIT;
    snapshot(md, &before);
    uint64_t index = ++next_index;
    int rc = stream__meta_apply(md, p, len, index);
    FUZZ_CHECK_MSG(known_verdict(rc), "apply: %s", stream_err_name(rc));
    FUZZ_CHECK((rc == STREAM_EBADREQ) == !decodes);
    if (rc != 0 && !decodes) {
        /* Refused before anything: only applied_index moved. */
        FUZZ_CHECK(stream__meta_applied_index(md) == index);
    }
    snapshot(md, &after);
    /* The same command again at the same index: same verdict, no change. */
    int again = stream__meta_apply(md, p, len, index);
    FUZZ_CHECK_MSG(again == rc, "repeat gave %s after %s", stream_err_name(again),
                   stream_err_name(rc));
    snapshot(md, &before);
    FUZZ_CHECK(same(&before, &after));
    stream_buf_release(&before);
    stream_buf_release(&after);
}

static void restore_checked(stream__meta *md, const uint8_t *p, size_t len)
{
    stream_buf before = STREAM_BUF_INIT, now = STREAM_BUF_INIT;
    char err[256];
    snapshot(md, &before);
    int rc = stream__meta_restore(md, p, len, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_ECORRUPT || rc == STREAM_EBADCONFIG, "restore: %s",
                   stream_err_name(rc));
    if (rc != 0) {
        snapshot(md, &now);
        FUZZ_CHECK(same(&before, &now));
    }
    stream_buf_release(&before);
    stream_buf_release(&now);
}

static void who_checked(const uint8_t *p, size_t n)
{
    stream__quorum_who w, back;
    char err[256], line[STREAM__QUORUM_WHO_MAX];
    int rc = stream__quorum_who_parse(p, n, &w, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EBADREQ);
    if (rc != 0)
        return;
    int len = stream__quorum_who_format(&w, line, sizeof line);
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(stream__quorum_who_parse((const uint8_t *)line, (size_t)len, &back, err,
                                        sizeof err) == 0);
    FUZZ_CHECK(back.node_id == w.node_id && back.port == w.port && back.leader_id == w.leader_id &&
               back.leader_port == w.leader_port && strcmp(back.host, w.host) == 0 &&
               strcmp(back.leader_host, w.leader_host) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t mode = fuzz_u8(&in) % 4;
    stream__meta *md = seeded();
    size_t n;
    const uint8_t *p;
    if (mode == 3) {
        p = fuzz_rest(&in, &n);
        who_checked(p, n);
    } else if (mode == 0) {
        p = fuzz_rest(&in, &n);
        apply_checked(md, p, n);
    } else if (mode == 1) {
        p = fuzz_rest(&in, &n);
        restore_checked(md, p, n);
    } else {
        for (int k = 0; k < 16 && fuzz_in_left(&in) > 0; k++) {
            size_t want = fuzz_u16(&in);
            p = fuzz_bytes(&in, want, &n);
            apply_checked(md, p, n);
        }
    }
    check_restorable(md);
    stream__meta_free(md);
    return 0;
}
