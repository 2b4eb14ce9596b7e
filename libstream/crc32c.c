/*
 * crc32c.c - CRC-32C (Castagnoli), the checksum of RecordBatch v2.
 *
 * Two implementations of the same reflected CRC (polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF, so stream_crc32c(0, ...) starts a fresh CRC
 * and the result can be passed back in to chain):
 *
 *   - the SSE4.2 `crc32` instruction, 8 bytes per instruction, compiled with a
 *     per-function target attribute so the rest of the library does not
 *     require SSE4.2 and still runs on any x86-64;
 *   - slicing-by-8: eight 256-entry tables let the loop fold 8 input bytes per
 *     iteration with independent lookups instead of one byte at a time.
 *
 * The tables are built once under pthread_once (so two threads racing on the
 * first checksum both see complete tables); after that they are read-only.
 * The CPU check is __builtin_cpu_supports, which reads data libgcc fills in
 * before main and is therefore safe from any thread.
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

#else /* !HAVE_X86_CRC */

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
    if (stream_crc32c_hw_available())
        return stream_crc32c_hw(crc, p, n);
    return stream_crc32c_sw(crc, p, n);
}
