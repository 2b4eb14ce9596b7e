/*
 * fuzz_http.c - the parsers the HTTP connectors run on text from outside
 * (http.h): a header line (-H, or a line of -H @FILE) and a server's
 * Retry-After value.
 *
 * The first byte picks the parser (even: header, odd: Retry-After); the
 * rest is the text, given by (p, len) on an exact-size copy so a read past
 * len is caught.
 *
 * Properties checked:
 *   - a header accepted holds no CR, LF or NUL (it cannot split a request)
 *     and has a ':' after a non-empty name; a refusal always says why;
 *   - a Retry-After accepted gives a delay in [0, one day]; the answer does
 *     not depend on spaces around the value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/error.h"
#include "stream/http.h"

/* 2026-11-24T10:00:00Z, a fixed "now" so runs reproduce. */
#define NOW_MS INT64_C(1795514400000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t which = data[0];
    size_t len = size - 1;
    char *p = malloc(len ? len : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data + 1, len);
    if ((which & 1) == 0) {
        char err[256];
        err[0] = '\0';
        int rc = stream_http_header_check(p, len, err, sizeof(err));
        if (rc == 0) {
            FUZZ_CHECK(memchr(p, '\r', len) == NULL && memchr(p, '\n', len) == NULL &&
                       memchr(p, '\0', len) == NULL);
            const char *colon = memchr(p, ':', len);
            FUZZ_CHECK(colon != NULL && colon > p);
        } else {
            FUZZ_CHECK_MSG(rc == STREAM_EINVAL, "rc %d", rc);
            FUZZ_CHECK(err[0] != '\0');
        }
    } else {
        int64_t d = -1;
        int rc = stream_http_retry_after_ms(p, len, NOW_MS, &d);
        if (rc == 0) {
            FUZZ_CHECK_MSG(d >= 0 && d <= INT64_C(86400000), "delay %lld", (long long)d);
            char *q = malloc(len + 2);
            if (q) {
                q[0] = ' ';
                memcpy(q + 1, p, len);
                q[len + 1] = ' ';
                int64_t d2 = -1;
                FUZZ_CHECK(stream_http_retry_after_ms(q, len + 2, NOW_MS, &d2) == 0 && d2 == d);
                free(q);
            }
        } else {
            FUZZ_CHECK(rc == STREAM_EINVAL);
        }
    }
    free(p);
    return 0;
}
