/*
 * error.h - one table of error codes for the library and the wire protocol.
 *
 * Every libstream function that can fail returns 0 on success or a negative
 * STREAM_E* code. The same numbers, made positive, are the `err` values of the
 * native protocol (share/doc/protocol.md), so a client in another language and
 * the C library agree on what "unknown topic" is. Numbers are part of the
 * protocol: never renumber, only append.
 *
 * Detail for humans (which file, which offset) does not fit in a code; calls
 * that can fail for reasons a user must see also take `char *errbuf, size_t
 * errbuf_len`, written (NUL-terminated) only on failure.
 */
#ifndef STREAM_ERROR_H
#define STREAM_ERROR_H

/* X(NAME, number, message): the single source of every code. */
#define STREAM_ERRNO_MAP(X)                                                                        \
    X(EINVAL, 1, "invalid argument")                                                               \
    X(ENOMEM, 2, "out of memory")                                                                  \
    X(EIO, 3, "input/output error")                                                                \
    X(ENOSPC, 4, "no space left on device")                                                        \
    X(ECORRUPT, 5, "corrupt data")                                                                 \
    X(ECRC, 6, "CRC mismatch")                                                                     \
    X(ESHORT, 7, "truncated data")                                                                 \
    X(EMAGIC, 8, "unsupported record batch magic")                                                 \
    X(EOFFSET, 9, "offset out of range")                                                           \
    X(ENOTOPIC, 10, "unknown topic")                                                               \
    X(ENOPART, 11, "unknown partition")                                                            \
    X(ETOPICEXISTS, 12, "topic already exists")                                                    \
    X(EBADNAME, 13, "invalid topic name")                                                          \
    X(EBADCONFIG, 14, "invalid configuration")                                                     \
    X(ETOOLARGE, 15, "message too large")                                                          \
    X(ETIMEDOUT, 16, "request timed out")                                                          \
    X(ENOTLEADER, 17, "not leader for partition")                                                  \
    X(EBADREQ, 18, "invalid request")                                                              \
    X(EUNKNOWNOP, 19, "unknown operation")                                                         \
    X(ECLOSED, 20, "closed")                                                                       \
    X(ENOENT, 21, "not found")                                                                     \
    X(EEXIST, 22, "already exists")                                                                \
    X(EAGAIN, 23, "resource temporarily unavailable")                                              \
    X(ECONNREFUSED, 24, "connection refused")                                                      \
    X(ECONNRESET, 25, "connection reset")                                                          \
    X(EPROTO, 26, "protocol error")                                                                \
    X(EUNSUPPORTED, 27, "unsupported feature")                                                     \
    X(ENOGROUP, 28, "unknown group")                                                               \
    X(EBADGROUP, 29, "invalid group name")                                                         \
    X(EUNKNOWNMEMBER, 30, "unknown group member")                                                  \
    X(EFENCED, 31, "stale group generation")                                                       \
    X(ENOTASSIGNED, 32, "partition not assigned to this member")                                   \
    X(EGROUPNOTEMPTY, 33, "group has active members")                                              \
    X(EOUTOFORDERSEQ, 34, "out of order sequence number")                                          \
    X(EDUPLICATESEQ, 35, "duplicate sequence number")                                              \
    X(EUNKNOWNPRODUCER, 36, "unknown producer id")                                                 \
    X(EPRODUCERFENCED, 37, "producer epoch is older than the current one")                         \
    X(ENOTENOUGHREPLICAS, 38, "not enough in-sync replicas")                                       \
    X(ESTALEEPOCH, 39, "stale epoch")                                                              \
    X(ENOBROKER, 40, "unknown broker")                                                             \
    X(ENOTCOORDINATOR, 41, "not the group's coordinator")                                          \
    X(EBADRECORD, 42, "invalid record")                                                            \
    X(ETLS, 43, "TLS failure")

typedef enum stream_err {
    STREAM_OK = 0,
#define STREAM__ERR_ENUM(name, num, msg) STREAM_##name = -(num),
    STREAM_ERRNO_MAP(STREAM__ERR_ENUM)
#undef STREAM__ERR_ENUM
} stream_err;

/* A static English message for `err` (0 or a STREAM_E* code); never NULL. */
const char *stream_strerror(int err);

/* The code's name without the prefix ("ENOTOPIC"); "UNKNOWN" for others. */
const char *stream_err_name(int err);

/* Maps an errno value (positive) to the closest STREAM_E* code. */
int stream_err_from_errno(int errnum);

#endif /* STREAM_ERROR_H */
