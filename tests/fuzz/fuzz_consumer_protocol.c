/*
 * fuzz_consumer_protocol.c - reading Kafka's consumer protocol
 * (libstream/coord/consumer_protocol.c) from any bytes at all: the
 * subscription a Kafka consumer puts in its JoinGroup metadata and the
 * assignment its group's leader sends in SyncGroup, both client bytes the
 * coordinator reads to show a group. The first input byte picks the
 * decoder (even: subscription, odd: assignment); the rest is the value.
 * Properties:
 *
 *   - decode succeeds, or fails with ECORRUPT or ENOMEM and keeps nothing;
 *   - a subscription's topics are valid topic names, sorted and distinct;
 *   - an assignment's partitions are non-negative, under valid topic names.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/classic.h"
#include "coord/group_internal.h"
#include "fuzz_util.h"
#include "stream/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    if ((data[0] & 1) == 0) {
        char **topics = (char **)1;
        size_t n = 1;
        int rc = stream__consumer_subscription_decode(p, len, &topics, &n);
        if (rc != 0) {
            FUZZ_CHECK_MSG(rc == STREAM_ECORRUPT || rc == STREAM_ENOMEM, "%s", stream_err_name(rc));
            FUZZ_CHECK(topics == NULL && n == 0);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(stream_topic_name_check(topics[i], strlen(topics[i]), NULL, 0) == 0);
            FUZZ_CHECK(i == 0 || strcmp(topics[i - 1], topics[i]) < 0);
        }
        for (size_t i = 0; i < n; i++)
            free(topics[i]);
        free(topics);
        return 0;
    }
    stream__pset s;
    stream__pset_init(&s);
    int rc = stream__consumer_assignment_decode(p, len, &s);
    if (rc != 0) {
        FUZZ_CHECK_MSG(rc == STREAM_ECORRUPT || rc == STREAM_ENOMEM, "%s", stream_err_name(rc));
        FUZZ_CHECK(s.n == 0 && s.count == 0);
    }
    size_t count = 0;
    for (size_t i = 0; i < s.n; i++) {
        FUZZ_CHECK(stream_topic_name_check(s.t[i].topic, strlen(s.t[i].topic), NULL, 0) == 0);
        for (size_t j = 0; j < s.t[i].n; j++)
            FUZZ_CHECK(s.t[i].parts[j] >= 0);
        count += s.t[i].n;
    }
    FUZZ_CHECK(count == s.count);
    stream__pset_release(&s);
    return 0;
}
