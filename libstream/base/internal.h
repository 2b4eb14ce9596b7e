/*
 * internal.h - small helpers shared by libstream's own files (prefix stream__).
 *
 * Not installed and not part of the public API. Module-private declarations
 * live in the module's own internal header (client_internal.h, ...); only what
 * several modules need goes here.
 */
#ifndef STREAM_INTERNAL_H
#define STREAM_INTERNAL_H

#include <stddef.h>

/* A NUL-terminated heap copy of len bytes at p (a wire string, not
 * NUL-terminated); NULL on ENOMEM. Defined in buf.c. */
char *stream__strndup(const char *p, size_t len);

#endif /* STREAM_INTERNAL_H */
