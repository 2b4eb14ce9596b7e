/*
 * fuzz_group_meta.c - decoding a consumer group's membership record
 * (libstream/coord/group_meta.c) from any bytes at all: what a coordinator
 * taking a group over reads back from __consumer_offsets, torn, corrupt or
 * written by another version. The input is the record's value. Properties:
 *
 *   - decode succeeds, or fails with ECORRUPT, EUNSUPPORTED or ENOMEM, a
 *     message, and nothing built (no member kept, nothing leaked);
 *   - what decodes keeps the invariants a restore relies on: member ids
 *     distinct, each member's assigned within its held, no partition held
 *     by two members;
 *   - what decodes packs again, that decodes, and packing it once more
 *     gives the same bytes (the packed form is canonical).
 *
 * No restore: it compiles patterns with regcomp, whose worst cases are the
 * regex engine's, not the decoder's (tests/unit/test_group.c restores).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "coord/group_internal.h"
#include "fuzz_util.h"
#include "stream/error.h"

static void check_invariants(const stream__group_meta *meta)
{
    for (size_t i = 0; i < meta->nmembers; i++) {
        const stream__member *m = meta->members[i];
        FUZZ_CHECK(m->id != NULL && m->id[0] != '\0' && m->client_id != NULL);
        FUZZ_CHECK(!m->compiled);
        FUZZ_CHECK(m->session_timeout_ms > 0 && m->rebalance_timeout_ms > 0);
        FUZZ_CHECK(m->epoch <= meta->generation && m->prev_epoch <= m->epoch);
        for (size_t t = 0; t < m->assigned.n; t++)
            for (size_t k = 0; k < m->assigned.t[t].n; k++)
                FUZZ_CHECK(
                    stream__pset_has(&m->held, m->assigned.t[t].topic, m->assigned.t[t].parts[k]));
        for (size_t j = 0; j < i; j++) {
            const stream__member *o = meta->members[j];
            FUZZ_CHECK(strcmp(m->id, o->id) != 0);
            for (size_t t = 0; t < m->held.n; t++)
                for (size_t k = 0; k < m->held.t[t].n; k++)
                    FUZZ_CHECK(
                        !stream__pset_has(&o->held, m->held.t[t].topic, m->held.t[t].parts[k]));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stream__group_meta meta;
    char msg[320] = "";
    int rc = stream__group_meta_decode(data, size, &meta, msg, sizeof msg);
    if (rc != 0) {
        FUZZ_CHECK_MSG(rc == STREAM_ECORRUPT || rc == STREAM_EUNSUPPORTED || rc == STREAM_ENOMEM,
                       "%s", stream_err_name(rc));
        FUZZ_CHECK(msg[0] != '\0');
        FUZZ_CHECK(meta.members == NULL && meta.nmembers == 0);
        return 0;
    }
    check_invariants(&meta);
    stream_buf one = STREAM_BUF_INIT, two = STREAM_BUF_INIT;
    FUZZ_CHECK(stream__group_meta_pack(&one, meta.generation, meta.members, meta.nmembers) == 0);
    stream__group_meta back;
    rc = stream__group_meta_decode(one.data, one.len, &back, msg, sizeof msg);
    FUZZ_CHECK_MSG(rc == 0, "packed record refused: %s", msg);
    FUZZ_CHECK(back.generation == meta.generation && back.nmembers == meta.nmembers);
    FUZZ_CHECK(stream__group_meta_pack(&two, back.generation, back.members, back.nmembers) == 0);
    FUZZ_CHECK(one.len == two.len && memcmp(one.data, two.data, one.len) == 0);
    stream__group_meta_release(&back);
    stream__group_meta_release(&meta);
    stream_buf_release(&one);
    stream_buf_release(&two);
    return 0;
}
