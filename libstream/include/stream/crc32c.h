/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * The checksum Kafka's RecordBatch v2 uses. stream_crc32c() picks, by what
 * the CPU has (checked thread-safely): the SSE4.2 crc32 instruction on three
 * interleaved streams joined with PCLMULQDQ (long buffers run about three
 * times faster than on one chain), the crc32 instruction on one chain, or a
 * slicing-by-8 table; all three are exported so tests can compare them.
 * Check value: stream_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef STREAM_CRC32C_H
#define STREAM_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Extends `crc` (0 to start) over n bytes at p and returns the new CRC.
 * Chaining works: crc(crc(0, a), b) == crc(0, a||b). */
uint32_t stream_crc32c(uint32_t crc, const void *p, size_t n);

/* The table implementation; always available. */
uint32_t stream_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* The SSE4.2 implementation; only call when stream_crc32c_hw_available(). */
uint32_t stream_crc32c_hw(uint32_t crc, const void *p, size_t n);

/* True when this CPU has the SSE4.2 crc32 instruction. */
bool stream_crc32c_hw_available(void);

/* The interleaved SSE4.2 + PCLMULQDQ implementation; only call when
 * stream_crc32c_clmul_available(). */
uint32_t stream_crc32c_clmul(uint32_t crc, const void *p, size_t n);

/* True when this CPU has both the crc32 and the pclmulqdq instructions. */
bool stream_crc32c_clmul_available(void);

#endif /* STREAM_CRC32C_H */
