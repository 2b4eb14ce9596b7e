/*
 * error.c - messages and names for the STREAM_E* table in error.h, and the
 * one helper every module uses to fill a caller's error buffer.
 *
 * Both table functions are generated from STREAM_ERRNO_MAP so a new code
 * needs one line in one place.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "stream/error.h"

static void verrf(char *errbuf, size_t errbuf_len, const char *fmt, va_list ap)
{
    if (errbuf != NULL && errbuf_len > 0)
        vsnprintf(errbuf, errbuf_len, fmt, ap);
}

void stream__errf(char *errbuf, size_t errbuf_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(errbuf, errbuf_len, fmt, ap);
    va_end(ap);
}

int stream__fail(int err, char *errbuf, size_t errbuf_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(errbuf, errbuf_len, fmt, ap);
    va_end(ap);
    return err;
}

const char *stream_strerror(int err)
{
    switch (err) {
    case STREAM_OK:
        return "success";
#define STREAM__ERR_MSG(name, num, msg)                                                            \
    case STREAM_##name:                                                                            \
        return msg;
        STREAM_ERRNO_MAP(STREAM__ERR_MSG)
#undef STREAM__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *stream_err_name(int err)
{
    switch (err) {
    case STREAM_OK:
        return "OK";
#define STREAM__ERR_NAME(name, num, msg)                                                           \
    case STREAM_##name:                                                                            \
        return #name;
        STREAM_ERRNO_MAP(STREAM__ERR_NAME)
#undef STREAM__ERR_NAME
    default:
        return "UNKNOWN";
    }
}

int stream_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return STREAM_OK;
    case ENOMEM:
        return STREAM_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return STREAM_ENOSPC;
    case ENOENT:
        return STREAM_ENOENT;
    case EEXIST:
        return STREAM_EEXIST;
    case EINVAL:
        return STREAM_EINVAL;
    case EAGAIN:
        return STREAM_EAGAIN;
    case ETIMEDOUT:
        return STREAM_ETIMEDOUT;
    case ECONNREFUSED:
        return STREAM_ECONNREFUSED;
    case ECONNRESET:
    case EPIPE:
        return STREAM_ECONNRESET;
    default:
        return STREAM_EIO;
    }
}
