/*
 * partition.h - which partition a record goes to, exactly as Kafka's clients
 * decide it.
 *
 * Keyed records: murmur2 of the key bytes (Kafka's Java Utils.murmur2, seed
 * 0x9747b28c), made non-negative by clearing the sign bit (Utils.toPositive,
 * not abs()), modulo the partition count. Same key, same partition count,
 * same partition as a Kafka producer would pick — so keys keep their
 * partitions when data moves between Kafka and stream. An empty key is a key
 * (it hashes); only a null key is "unkeyed".
 *
 * Unkeyed records: a sticky partitioner (Kafka KIP-480). All unkeyed records
 * go to one partition until the producer completes a batch for it, then
 * stream_sticky_next moves to another partition chosen at random. Batches
 * fill up instead of many small ones going to every partition. The state is a
 * plain struct with its own seeded generator: no global state, and a test
 * seeds it to get a repeatable sequence.
 */
#ifndef STREAM_PARTITION_H
#define STREAM_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's murmur2 of len bytes at key (key may be NULL when len is 0); the
 * signed 32-bit result Java returns. murmur2("21") == -973932308. */
int32_t stream_murmur2(const void *key, size_t len);

/* (murmur2(key) & 0x7fffffff) % num_partitions: the partition in
 * [0, num_partitions), or STREAM_EINVAL when num_partitions <= 0. */
int32_t stream_partition_for_key(const void *key, size_t len, int32_t num_partitions);

typedef struct stream_sticky {
    int32_t current; /* read-only: the partition unkeyed records go to; -1 until
                        the first call picks one */
    uint64_t rng;    /* private: splitmix64 state */
} stream_sticky;

/* Initialises a sticky partitioner. Equal seeds give equal sequences; a
 * producer passes something varying (time, pid, a counter) so that many
 * producers do not all start on the same partition. */
void stream_sticky_init(stream_sticky *s, uint64_t seed);

/* The partition for the next unkeyed record: the current one, picking one at
 * random first if there is none yet or it is no longer < num_partitions (the
 * topic shrank, or the caller mixed topics). STREAM_EINVAL when
 * num_partitions <= 0. Does not move on: only stream_sticky_next does. */
int32_t stream_sticky_partition(stream_sticky *s, int32_t num_partitions);

/* Called when the batch for the current partition is complete: moves to a
 * random partition other than the current one (with one partition it stays
 * on 0) and returns it, or STREAM_EINVAL when num_partitions <= 0. */
int32_t stream_sticky_next(stream_sticky *s, int32_t num_partitions);

/* The partition for a record: key_len -1 (null key) -> the sticky partition;
 * otherwise stream_partition_for_key. s may be NULL when every key is
 * non-null. STREAM_EINVAL for num_partitions <= 0, key_len < -1, a NULL key
 * with key_len > 0, or a null key without s. */
int32_t stream_partition_choose(stream_sticky *s, const void *key, int32_t key_len,
                                int32_t num_partitions);

#endif /* STREAM_PARTITION_H */
