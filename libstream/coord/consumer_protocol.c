/*
 * consumer_protocol.c - reading Kafka's consumer protocol (classic.h): the
 * subscription a consumer sends in JoinGroup's metadata and the
 * assignment its leader sends in SyncGroup, both client bytes that the
 * coordinator only carries and, for `stream-topics group`, reads. Hostile
 * input: every length is checked against what is left, counts are bounded
 * by the bytes they would need, and nothing is kept on failure.
 *
 * Layout (Kafka's ConsumerProtocolSubscription/Assignment, big-endian, not
 * flexible): version int16; strings int16 length; arrays int32 count (-1
 * null, read as empty); bytes int32 length (-1 null).
 */
#include <stdlib.h>
#include <string.h>

#include "classic.h"
#include "group_internal.h"
#include "stream/buf.h"
#include "stream/error.h"

/* Kafka's signed integers over the shared reader (stream/buf.h). */
static bool i16(stream_reader *r, int16_t *v)
{
    uint16_t u;
    if (stream_get_be16(r, &u) != 0)
        return false;
    *v = (int16_t)u;
    return true;
}

static bool i32(stream_reader *r, int32_t *v)
{
    uint32_t u;
    if (stream_get_be32(r, &u) != 0)
        return false;
    *v = (int32_t)u;
    return true;
}

/* A non-null string. */
static bool str(stream_reader *r, const char **s, size_t *len)
{
    int16_t n;
    const uint8_t *q;
    if (!i16(r, &n) || n < 0 || stream_get_bytes(r, (size_t)n, &q) != 0)
        return false;
    *s = (const char *)q;
    *len = (size_t)n;
    return true;
}

/* An array's count: -1 (null) reads as 0; a count needing more bytes than
 * are left (each element takes at least `min` bytes) is corrupt. */
static bool count(stream_reader *r, size_t min, size_t *n)
{
    int32_t c;
    if (!i32(r, &c) || c < -1)
        return false;
    *n = c < 0 ? 0 : (size_t)c;
    return *n <= stream_reader_left(r) / min;
}

int stream__consumer_subscription_decode(const uint8_t *p, size_t len, char ***topics, size_t *n)
{
    *topics = NULL;
    *n = 0;
    stream_reader r;
    stream_reader_init(&r, p, len);
    int16_t version;
    size_t c;
    if (!i16(&r, &version) || version < 0 || !count(&r, 2, &c))
        return STREAM_ECORRUPT;
    char **t = calloc(c ? c : 1, sizeof(*t));
    if (t == NULL)
        return STREAM_ENOMEM;
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c; i++) {
        const char *s;
        size_t slen;
        if (!str(&r, &s, &slen) || stream_topic_name_check(s, slen, NULL, 0) != 0)
            rc = STREAM_ECORRUPT;
        else if ((t[k] = stream__strndup(s, slen)) == NULL)
            rc = STREAM_ENOMEM;
        else
            k++;
    }
    /* The rest (user data, owned partitions, generation) is not needed. */
    if (rc != 0) {
        for (size_t i = 0; i < k; i++)
            free(t[i]);
        free(t);
        return rc;
    }
    stream__names_sort_unique(t, &k);
    *topics = t;
    *n = k;
    return 0;
}

int stream__consumer_assignment_decode(const uint8_t *p, size_t len, stream__pset *out)
{
    stream_reader r;
    stream_reader_init(&r, p, len);
    int16_t version;
    size_t nt;
    if (!i16(&r, &version) || version < 0 || !count(&r, 6, &nt))
        return STREAM_ECORRUPT;
    char name[STREAM_TOPIC_NAME_MAX + 1];
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nt; i++) {
        const char *s;
        size_t slen, np;
        if (!str(&r, &s, &slen) || stream_topic_name_check(s, slen, NULL, 0) != 0 ||
            !count(&r, 4, &np)) {
            rc = STREAM_ECORRUPT;
            break;
        }
        memcpy(name, s, slen);
        name[slen] = '\0';
        for (size_t j = 0; rc == 0 && j < np; j++) {
            int32_t part;
            if (!i32(&r, &part) || part < 0)
                rc = STREAM_ECORRUPT;
            else
                rc = stream__pset_add(out, name, part);
        }
    }
    if (rc != 0)
        stream__pset_clear(out);
    return rc;
}
