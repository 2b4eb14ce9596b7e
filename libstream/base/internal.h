/*
 * internal.h - small helpers shared by libstream's own files (prefix stream__).
 *
 * The main header of libstream/base/, the lowest layer: buffers (buf.c),
 * errors (error.c), CRC-32C, JSON, the time grammar (timespec.c) and
 * latency histograms - what every other folder uses, using none of them.
 * libstream's folders are layers, each including only itself and the
 * folders below it (STYLE.md rule 18, tests/check-layers.sh):
 *
 *   base < log < proto < broker < coord < cluster < kafka < client < connect
 *   < tools
 *
 * Not installed and not part of the public API. Module-private declarations
 * live in the module's own internal header (client_internal.h, ...); only what
 * several modules need goes here.
 */
#ifndef STREAM_INTERNAL_H
#define STREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated heap copy of len bytes at p (a wire string, not
 * NUL-terminated); NULL on ENOMEM. Defined in buf.c. */
char *stream__strndup(const char *p, size_t len);

/* CLOCK_MONOTONIC in nanoseconds, for latency accounts (the flusher's sync
 * rounds, the produce answer's timing, the producer's). Defined in
 * timespec.c. */
int64_t stream__mono_ns(void);

/* Writes a message for people into the caller's error buffer, as every
 * libstream call that takes (errbuf, errbuf_len) does; nothing when errbuf
 * is NULL or errbuf_len is 0. Defined in error.c. */
void stream__errf(char *errbuf, size_t errbuf_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same, returning err, for a failure path in one statement:
 * `return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "...", ...);`. */
int stream__fail(int err, char *errbuf, size_t errbuf_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* STREAM_INTERNAL_H */
