/*
 * test_partition.c - murmur2 against Kafka's published values, key ->
 * partition mapping, and the sticky partitioner.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "stream/error.h"
#include "stream/partition.h"

/* Values from Kafka's UtilsTest.testMurmur2, each re-derived with an
 * independent Python reimplementation before being trusted here. */
static void test_murmur2_matches_kafka_utils_test(void **state)
{
    static const struct {
        const char *key;
        int32_t hash;
    } v[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(stream_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
}

/* Every tail length (0-3 leftover bytes) and bytes >= 0x80 (which Java sees
 * as negative and masks with 0xff). Expected values from the Python
 * reimplementation. */
static void test_murmur2_tail_lengths_and_high_bytes(void **state)
{
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    assert_int_equal(stream_murmur2(NULL, 0), 275646681);
    assert_int_equal(stream_murmur2("", 0), 275646681);
    assert_int_equal(stream_murmur2("a", 1), -1563381124);
    assert_int_equal(stream_murmur2("ab", 2), 316155434);
    assert_int_equal(stream_murmur2("abc", 3), 479470107);
    assert_int_equal(stream_murmur2("abcd", 4), -1323649548);
    assert_int_equal(stream_murmur2("\xff\xfe\x80", 3), -160726397);
    assert_int_equal(stream_murmur2(all, sizeof all), -1948347274);
}

static void test_partition_for_key_uses_sign_bit_mask_not_abs(void **state)
{
    /* murmur2("21") is negative: toPositive keeps the low 31 bits. */
    int32_t h = stream_murmur2("21", 2);
    assert_true(h < 0);
    for (int32_t n = 1; n <= 50; n++)
        assert_int_equal(stream_partition_for_key("21", 2, n),
                         (int32_t)(((uint32_t)h & 0x7fffffffu) % (uint32_t)n));
    assert_int_equal(stream_partition_for_key("", 0, 12), 9);
    assert_int_equal(stream_partition_for_key("a", 1, 12), 4);
    assert_int_equal(stream_partition_for_key("key-0", 5, 3), 1);
    assert_int_equal(stream_partition_for_key("key-1", 5, 3), 0);
    assert_int_equal(stream_partition_for_key("user-42", 7, 10), 0);
    assert_int_equal(stream_partition_for_key("k", 1, 0), STREAM_EINVAL);
    assert_int_equal(stream_partition_for_key("k", 1, -3), STREAM_EINVAL);
}

static void test_partition_for_key_spreads_keys_evenly(void **state)
{
    enum { N = 8, KEYS = 16000 };
    int counts[N] = {0};
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        int n = snprintf(key, sizeof key, "user-%d", i);
        int32_t p = stream_partition_for_key(key, (size_t)n, N);
        assert_true(p >= 0 && p < N);
        counts[p]++;
        /* Stable: the same key always lands on the same partition. */
        assert_int_equal(stream_partition_for_key(key, (size_t)n, N), p);
    }
    for (int p = 0; p < N; p++) /* expect 2000 each; allow +-15% */
        assert_true(counts[p] > 1700 && counts[p] < 2300);
}

static void test_sticky_changes_partition_only_on_next(void **state)
{
    stream_sticky s;
    stream_sticky_init(&s, 42);
    assert_int_equal(s.current, -1);
    int32_t p = stream_sticky_partition(&s, 6);
    assert_true(p >= 0 && p < 6);
    for (int i = 0; i < 100; i++)
        assert_int_equal(stream_sticky_partition(&s, 6), p);
    int seen[6] = {0};
    for (int i = 0; i < 600; i++) {
        int32_t q = stream_sticky_next(&s, 6);
        assert_true(q >= 0 && q < 6);
        assert_int_not_equal(q, p); /* a completed batch always moves on */
        assert_int_equal(stream_sticky_partition(&s, 6), q);
        assert_int_equal(stream_sticky_partition(&s, 6), q);
        seen[q]++;
        p = q;
    }
    for (int i = 0; i < 6; i++)
        assert_true(seen[i] > 50); /* every partition gets its turn */
}

static void test_sticky_is_repeatable_for_a_seed(void **state)
{
    stream_sticky a, b, c;
    stream_sticky_init(&a, 7);
    stream_sticky_init(&b, 7);
    stream_sticky_init(&c, 8);
    int differ = 0;
    for (int i = 0; i < 50; i++) {
        int32_t pa = stream_sticky_next(&a, 100);
        assert_int_equal(stream_sticky_next(&b, 100), pa);
        differ += stream_sticky_next(&c, 100) != pa;
    }
    assert_true(differ > 0);
}

static void test_sticky_handles_one_partition_and_shrinking_topics(void **state)
{
    stream_sticky s;
    stream_sticky_init(&s, 1);
    assert_int_equal(stream_sticky_partition(&s, 1), 0);
    assert_int_equal(stream_sticky_next(&s, 1), 0);
    assert_int_equal(stream_sticky_next(&s, 1), 0);
    assert_int_equal(stream_sticky_partition(&s, 0), STREAM_EINVAL);
    assert_int_equal(stream_sticky_next(&s, -1), STREAM_EINVAL);

    /* Current partition 9 of 10; the topic is now seen with 3 partitions. */
    s.current = 9;
    int32_t p = stream_sticky_partition(&s, 3);
    assert_true(p >= 0 && p < 3);
    s.current = 9;
    p = stream_sticky_next(&s, 3);
    assert_true(p >= 0 && p < 3);
}

static void test_partition_choose_null_key_is_sticky_empty_key_hashes(void **state)
{
    stream_sticky s;
    stream_sticky_init(&s, 3);
    int32_t sticky = stream_partition_choose(&s, NULL, -1, 12);
    assert_true(sticky >= 0 && sticky < 12);
    assert_int_equal(stream_partition_choose(&s, NULL, -1, 12), sticky);
    assert_int_equal(stream_partition_choose(&s, "", 0, 12), 9);
    assert_int_equal(stream_partition_choose(NULL, "21", 2, 7),
                     stream_partition_for_key("21", 2, 7));
    assert_int_equal(stream_partition_choose(NULL, NULL, -1, 12), STREAM_EINVAL);
    assert_int_equal(stream_partition_choose(&s, NULL, 3, 12), STREAM_EINVAL);
    assert_int_equal(stream_partition_choose(&s, "k", -2, 12), STREAM_EINVAL);
    assert_int_equal(stream_partition_choose(&s, "k", 1, 0), STREAM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_matches_kafka_utils_test),
        cmocka_unit_test(test_murmur2_tail_lengths_and_high_bytes),
        cmocka_unit_test(test_partition_for_key_uses_sign_bit_mask_not_abs),
        cmocka_unit_test(test_partition_for_key_spreads_keys_evenly),
        cmocka_unit_test(test_sticky_changes_partition_only_on_next),
        cmocka_unit_test(test_sticky_is_repeatable_for_a_seed),
        cmocka_unit_test(test_sticky_handles_one_partition_and_shrinking_topics),
        cmocka_unit_test(test_partition_choose_null_key_is_sticky_empty_key_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
