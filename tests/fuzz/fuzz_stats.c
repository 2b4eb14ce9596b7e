/*
 * fuzz_stats.c - the stats answer's decoder (libstream/client/admin_stats.c,
 * protocol.md 6.29) on any bytes: what a client reads from a broker, or from
 * anything that answers on a broker's port.
 *
 * Input: the response body (one MessagePack map, as after the frame length).
 * Properties (stream/client.h's promises):
 *   - decode succeeds, or fails with EPROTO, EBADREQ, ETOOLARGE or ENOMEM
 *     and leaves *out NULL;
 *   - a decoded answer holds what it counts: every name a string, every
 *     partition non-negative (walked, so ASan sees every element);
 *   - decoding the same bytes twice gives the same figures.
 *
 * An ordinary target of tests/fuzz/fuzz.mk (make fuzz; seeds from make_seeds.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/client.h"
#include "stream/error.h"

static uint64_t digest(const stream_stats *s)
{
    uint64_t h = (uint64_t)s->node_id ^ s->time_ms ^ s->open_fds ^ s->connections_native;
    for (size_t i = 0; i < s->n_topics; i++) {
        const stream_stats_topic *t = &s->topics[i];
        h = h * 31 + strlen(t->name) + t->records_in + t->bytes_in + t->bytes_out;
        for (size_t j = 0; j < t->n_partitions; j++) {
            FUZZ_CHECK(t->partitions[j].partition >= 0);
            h = h * 31 + (uint64_t)t->partitions[j].log_end_offset;
        }
    }
    for (size_t i = 0; i < s->n_requests; i++)
        h = h * 31 + strlen(s->requests[i].op) + s->requests[i].count;
    for (size_t i = 0; i < s->n_groups; i++) {
        const stream_stats_group *g = &s->groups[i];
        h = h * 31 + strlen(g->group) + g->members;
        for (size_t j = 0; j < g->n_partitions; j++) {
            FUZZ_CHECK(g->partitions[j].partition >= 0);
            h = h * 31 + strlen(g->partitions[j].topic) + (uint64_t)g->partitions[j].lag_records;
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char eb[256];
    stream_stats *s = (stream_stats *)1;
    int rc = stream_stats_decode(data, size, &s, eb, sizeof eb);
    if (rc != 0) {
        FUZZ_CHECK_MSG(rc == STREAM_EPROTO || rc == STREAM_EBADREQ || rc == STREAM_ETOOLARGE ||
                           rc == STREAM_ENOMEM,
                       "%s", stream_err_name(rc));
        FUZZ_CHECK(s == NULL);
        return 0;
    }
    stream_stats *again;
    FUZZ_CHECK(stream_stats_decode(data, size, &again, eb, sizeof eb) == 0);
    FUZZ_CHECK(digest(s) == digest(again));
    FUZZ_CHECK(s->n_topics == again->n_topics && s->n_groups == again->n_groups);
    stream_stats_free(again);
    stream_stats_free(s);
    return 0;
}
