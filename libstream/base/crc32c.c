/*
 * crc32c.c - CRC-32C (Castagnoli), the checksum of RecordBatch v2.
 *
 * Three implementations of the same reflected CRC (polynomial 0x82F63B78,
 * initial value and final xor 0xFFFFFFFF, so stream_crc32c(0, ...) starts a
 * fresh CRC and the result can be passed back in to chain):
 *
 *   - the SSE4.2 `crc32` instruction three streams at a time, joined with a
 *     carry-less multiply (PCLMULQDQ); see "Interleaving" below;
 *   - the SSE4.2 `crc32` instruction, 8 bytes per instruction, one chain: a
 *     crc32 needs the previous one's result, so it runs at its latency (3
 *     cycles), a third of what the unit can do;
 *   - slicing-by-8: eight 256-entry tables let the loop fold 8 input bytes per
 *     iteration with independent lookups instead of one byte at a time.
 *
 * The instruction paths are compiled with per-function target attributes so
 * the rest of the library does not require SSE4.2 and still runs on any
 * x86-64. The tables are built once under pthread_once (so two threads
 * racing on the first checksum both see complete tables); after that they
 * are read-only. The CPU check is __builtin_cpu_supports, which reads data
 * libgcc fills in before main and is therefore safe from any thread.
 *
 * Interleaving. Write R(c, M) for the CRC register (before the final xor)
 * after feeding message M to a register holding c. CRC is linear:
 *
 *   R(c, A||B) = R(c, A) * x^(8|B|)  xor  R(0, B)      (mod P)
 *
 * so a run of three blocks A, B, C of L bytes each can be fed as three
 * independent chains, R(c, A), R(0, B), R(0, C), which the CPU overlaps,
 * and joined as R(c, A) * x^(16L) xor R(0, B) * x^(8L) xor R(0, C).
 * Multiplying a register r by x^k mod P takes one carry-less multiply and
 * one crc32: in the reflected bit order a 32x32 carry-less product of r and
 * K is the 64-bit value x*r*K, and crc32 of a 64-bit value v with a zero
 * register is v*x^32 mod P, so crc32(0, clmul(r, K)) = r*K*x^33; with
 * K = x^(k-33) mod P that is r*x^k. The K for each block length is found by
 * stepping x^0 up one power at a time (a shift and a conditional xor, the
 * CRC's own bit step) when the first long buffer is checksummed.
 */
#include <pthread.h>
#include <string.h>

#include "stream/crc32c.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define HAVE_X86_CRC 1
#else
#define HAVE_X86_CRC 0
#endif
#if defined(__x86_64__)
#include <wmmintrin.h>
#define HAVE_X86_CLMUL 1
#else
#define HAVE_X86_CLMUL 0
#endif

#define POLY 0x82F63B78u

/* table[k][b]: the CRC contribution of byte b followed by k zero bytes. */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = table[0][b];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][b] = c;
        }
    }
}

/* Little-endian 32-bit load from unaligned memory (memcpy compiles to a mov). */
static uint32_t load_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

uint32_t stream_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    pthread_once(&table_once, table_build);
    crc = ~crc;
    /* Byte steps until p is 8-aligned, so the 8-byte loop reads aligned words
     * (not required for correctness; it keeps loads in one cache line). */
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = load_le32(p) ^ crc;
        uint32_t hi = load_le32(p + 4);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    return ~crc;
}

#if HAVE_X86_CRC

__attribute__((target("sse4.2"))) uint32_t stream_crc32c_hw(uint32_t crc, const void *data,
                                                            size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
#if defined(__x86_64__)
    uint64_t c64 = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c64;
#endif
    while (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        crc = _mm_crc32_u32(crc, w);
        p += 4;
        n -= 4;
    }
    while (n > 0) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    return ~crc;
}

bool stream_crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}

#endif /* HAVE_X86_CRC */

#if HAVE_X86_CLMUL

/* Interleaved blocks are three runs of L bytes, L a multiple of BLOCK_STEP
 * up to BLOCK_MAX: the largest that fits is taken, so a 1 KiB buffer goes
 * as 3 x 320 bytes and an 8-byte tail. Past a few KiB the join (about 15
 * cycles) is a rounding error next to the block (L / 8 cycles). */
#define BLOCK_STEP  32
#define BLOCK_MAX   4096
#define BLOCK_SIZES (BLOCK_MAX / BLOCK_STEP)

/* shift_k[i] for L = (i + 1) * BLOCK_STEP: [0] = x^(8L - 33) mod P, which
 * moves a register past L bytes, and [1] = x^(16L - 33) mod P, past 2L. */
static uint32_t shift_k[BLOCK_SIZES][2];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/* r * x mod P in the reflected order (bit 31 is x^0, bit 0 is x^31). */
static uint32_t mul_x(uint32_t r)
{
    return (r >> 1) ^ ((r & 1) ? POLY : 0);
}

static void shift_build(void)
{
    for (int half = 0; half < 2; half++) {
        uint32_t r = 0x80000000u; /* x^0 */
        uint64_t e = 0;           /* r == x^e mod P */
        for (size_t i = 0; i < BLOCK_SIZES; i++) {
            uint64_t bits = 8 * (uint64_t)(i + 1) * BLOCK_STEP * (uint64_t)(half + 1);
            for (; e < bits - 33; e++)
                r = mul_x(r);
            shift_k[i][half] = r;
        }
    }
}

/* r * x^k mod P, given K = x^(k - 33) mod P (see the file comment). */
__attribute__((target("sse4.2,pclmul"))) static inline uint64_t shift(uint64_t r, uint32_t k)
{
    __m128i prod =
        _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)(uint32_t)r), _mm_cvtsi32_si128((int)k), 0x00);
    return _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(prod));
}

__attribute__((target("sse4.2,pclmul"))) uint32_t stream_crc32c_clmul(uint32_t crc,
                                                                      const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    uint64_t c64 = crc;
    if (n >= 3 * BLOCK_STEP) {
        pthread_once(&shift_once, shift_build);
        while (n >= 3 * BLOCK_STEP) {
            size_t blocks = n / (3 * BLOCK_STEP);
            if (blocks > BLOCK_SIZES)
                blocks = BLOCK_SIZES;
            size_t len = blocks * BLOCK_STEP;
            const uint8_t *pb = p + len, *pc = p + 2 * len;
            uint64_t ca = c64, cb = 0, cc = 0;
            for (size_t i = 0; i < len; i += 8) {
                uint64_t wa, wb, wc;
                memcpy(&wa, p + i, 8);
                memcpy(&wb, pb + i, 8);
                memcpy(&wc, pc + i, 8);
                ca = _mm_crc32_u64(ca, wa);
                cb = _mm_crc32_u64(cb, wb);
                cc = _mm_crc32_u64(cc, wc);
            }
            c64 = shift(ca, shift_k[blocks - 1][1]) ^ shift(cb, shift_k[blocks - 1][0]) ^ cc;
            p += 3 * len;
            n -= 3 * len;
        }
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c64;
    while (n > 0) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    return ~crc;
}

bool stream_crc32c_clmul_available(void)
{
    return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}

#else /* !HAVE_X86_CLMUL */

uint32_t stream_crc32c_clmul(uint32_t crc, const void *data, size_t n)
{
    return stream_crc32c_hw(crc, data, n);
}

bool stream_crc32c_clmul_available(void)
{
    return false;
}

#endif /* HAVE_X86_CLMUL */

#if !HAVE_X86_CRC

/* No instruction on this architecture: the "hardware" path is the table one,
 * and stream_crc32c_hw_available() says so. */
uint32_t stream_crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    return stream_crc32c_sw(crc, data, n);
}

bool stream_crc32c_hw_available(void)
{
    return false;
}

#endif

uint32_t stream_crc32c(uint32_t crc, const void *p, size_t n)
{
    if (stream_crc32c_clmul_available())
        return stream_crc32c_clmul(crc, p, n);
    if (stream_crc32c_hw_available())
        return stream_crc32c_hw(crc, p, n);
    return stream_crc32c_sw(crc, p, n);
}
