/*
 * partition.c - Kafka's murmur2 partitioner and a sticky partitioner for
 * unkeyed records (see partition.h).
 *
 * murmur2 follows org.apache.kafka.common.utils.Utils.murmur2 line by line:
 * little-endian 4-byte blocks, the tail folded in from the highest byte down,
 * and the final avalanche. Java's int arithmetic wraps; here every step is on
 * uint32_t, where wrapping is defined, and the result is converted to int32_t
 * only at the end.
 */
#include "stream/partition.h"
#include "stream/error.h"

int32_t stream_murmur2(const void *key, size_t len)
{
    const uint8_t *data = key;
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    /* Java's length is an int: truncating len matches it for every array
     * Java can hold. */
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t blocks = len / 4;
    for (size_t i = 0; i < blocks; i++) {
        const uint8_t *b = data + 4 * i;
        uint32_t k = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
                     ((uint32_t)b[3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t t = 4 * blocks; /* index, not pointer: key may be NULL when len is 0 */
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)data[t + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[t + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[t];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t stream_partition_for_key(const void *key, size_t len, int32_t num_partitions)
{
    if (num_partitions <= 0)
        return STREAM_EINVAL;
    /* Utils.toPositive: clear the sign bit (abs() would map INT32_MIN badly
     * and differ from Kafka for every negative hash). */
    uint32_t positive = (uint32_t)stream_murmur2(key, len) & 0x7fffffffu;
    return (int32_t)(positive % (uint32_t)num_partitions);
}

/* splitmix64: tiny, seedable, good enough to spread partitions. */
static uint64_t next_random(stream_sticky *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

void stream_sticky_init(stream_sticky *s, uint64_t seed)
{
    s->current = -1;
    s->rng = seed;
}

int32_t stream_sticky_partition(stream_sticky *s, int32_t num_partitions)
{
    if (num_partitions <= 0)
        return STREAM_EINVAL;
    if (s->current < 0 || s->current >= num_partitions)
        s->current = (int32_t)(next_random(s) % (uint64_t)num_partitions);
    return s->current;
}

int32_t stream_sticky_next(stream_sticky *s, int32_t num_partitions)
{
    if (num_partitions <= 0)
        return STREAM_EINVAL;
    if (s->current < 0 || s->current >= num_partitions || num_partitions == 1) {
        s->current = -1;
        return stream_sticky_partition(s, num_partitions);
    }
    /* Uniform over the other n - 1 partitions: draw from [0, n-1) and skip
     * over the current one. */
    int32_t p = (int32_t)(next_random(s) % (uint64_t)(num_partitions - 1));
    if (p >= s->current)
        p++;
    s->current = p;
    return p;
}

int32_t stream_partition_choose(stream_sticky *s, const void *key, int32_t key_len,
                                int32_t num_partitions)
{
    if (num_partitions <= 0 || key_len < -1 || (key == NULL && key_len > 0))
        return STREAM_EINVAL;
    if (key_len == -1)
        return s ? stream_sticky_partition(s, num_partitions) : STREAM_EINVAL;
    return stream_partition_for_key(key, (size_t)key_len, num_partitions);
}
