/*
 * fuzz_util.h - what the libFuzzer targets in tests/fuzz/ share: a reader that
 * carves an input into the parameters and payloads a target needs, and a
 * check that turns a broken property into a crash libFuzzer records.
 *
 * A target is more than "does not crash": each also asserts what the header
 * of the code under test promises (a round trip, a length left unchanged on
 * failure, the same frames whatever the chunking). FUZZ_CHECK aborts with the
 * file and line, so a violated promise is saved as a crash input like any
 * memory error and replays with `build/fuzz/fuzz_X crash-file`.
 *
 * Header-only (static functions) so each fuzz_X.c stays one translation unit.
 */
#ifndef STREAM_FUZZ_UTIL_H
#define STREAM_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* Aborts (a crash libFuzzer records) when a promised property does not hold. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The same with a message (an errbuf, a code) printed first. */
#define FUZZ_CHECK_MSG(cond, ...)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Consumes an input front to back. Running out is not an error: takes past
 * the end give zeros / empty slices, so every input maps to some parameters
 * and the fuzzer never wastes runs on "too short". */
typedef struct fuzz_in {
    const uint8_t *p; /* the input (borrowed) */
    size_t len;       /* bytes at p */
    size_t pos;       /* next byte to take */
} fuzz_in;

static inline void fuzz_in_init(fuzz_in *in, const uint8_t *p, size_t len)
{
    in->p = p;
    in->len = len;
    in->pos = 0;
}

static inline size_t fuzz_in_left(const fuzz_in *in)
{
    return in->len - in->pos;
}

static inline uint8_t fuzz_u8(fuzz_in *in)
{
    return in->pos < in->len ? in->p[in->pos++] : 0;
}

static inline uint16_t fuzz_u16(fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint64_t fuzz_u64(fuzz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fuzz_u8(in);
    return v;
}

/* Up to n bytes (fewer at the end); *got says how many. Borrowed. */
static inline const uint8_t *fuzz_bytes(fuzz_in *in, size_t n, size_t *got)
{
    size_t left = fuzz_in_left(in);
    if (n > left)
        n = left;
    const uint8_t *p = in->p + in->pos;
    in->pos += n;
    *got = n;
    return p;
}

/* Everything not taken yet. */
static inline const uint8_t *fuzz_rest(fuzz_in *in, size_t *got)
{
    return fuzz_bytes(in, fuzz_in_left(in), got);
}

/* A small deterministic generator for choices that should not cost input
 * bytes each (chunk sizes): xorshift64 seeded from the input. */
static inline uint64_t fuzz_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15u;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* A malloc'ed NUL-terminated copy of p[0..n) (for APIs that take C strings;
 * embedded NULs simply end the string early). Aborts when out of memory:
 * the fuzzer's rss limit is the only memory failure worth recording. */
static inline char *fuzz_strndup(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Reads every byte of p[0..n) so ASan checks the whole range is addressable
 * (a borrowed pointer into freed or short memory shows up here). */
static inline unsigned fuzz_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += b[i];
    return sum;
}

/* Scratch directories for targets that work on files. */
static inline int fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fuzz_remove_tree(const char *path)
{
    nftw(path, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes dir (n bytes) a new directory named "stream-fuzz-<what>.XXXXXX" on
 * tmpfs (/dev/shm when writable, else /tmp); aborts when it cannot. */
static inline void fuzz_scratch_dir(char *dir, size_t n, const char *what)
{
    struct stat st;
    const char *tmp =
        stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, n, "%s/stream-fuzz-%s.XXXXXX", tmp, what);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

/* ---- chunking: a parser must give the same results whatever the pieces ---- */

/* FNV-1a of p[0..n) continuing h, then a separator (so "ab","c" and "a","bc"
 * differ): sums up what a parser returned, to compare two runs. */
static inline uint64_t fuzz_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return (h ^ 0xff) * 1099511628211u;
}

#define FUZZ_HASH_INIT 1469598103934665603u

/* The size of the next piece to feed: all that is left when seed is 0,
 * else 1..max_piece from a small generator whose state is *rnd (start it
 * at seed). */
static inline size_t fuzz_piece(uint8_t seed, uint32_t *rnd, size_t left, size_t max_piece)
{
    if (seed == 0)
        return left;
    *rnd = *rnd * 1103515245u + 12345u;
    size_t want = 1 + (*rnd >> 16) % max_piece;
    return want < left ? want : left;
}

/* A run of a streaming parser over p[0..len) with limit `max`, fed in
 * pieces chosen by seed (0: whole): returns its final code, a hash of what
 * it returned and how many items. */
typedef int (*fuzz_parse_run)(const uint8_t *p, size_t len, size_t max, uint8_t seed,
                              uint64_t *hash, uint64_t *items);

/* Runs the parser whole and in pieces, checks both give the same code and
 * items, and returns the code. */
static inline int fuzz_same_in_pieces(fuzz_parse_run run, const uint8_t *p, size_t len, size_t max,
                                      uint8_t seed)
{
    uint64_t h1, h2, n1, n2;
    int rc1 = run(p, len, max, 0, &h1, &n1);
    int rc2 = run(p, len, max, seed ? seed : 1, &h2, &n2);
    FUZZ_CHECK_MSG(rc1 == rc2, "whole %d, in pieces %d", rc1, rc2);
    FUZZ_CHECK(n1 == n2 && h1 == h2);
    return rc1;
}

#endif /* STREAM_FUZZ_UTIL_H */
