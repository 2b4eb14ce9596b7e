/*
 * fuzz_sse.c - the Server-Sent Events parser (http_source.h), as
 * `stream-pub --url` reads a text/event-stream body.
 *
 * Input: two bytes of parameters, then the stream.
 *   byte 0    max_event_bytes: 0 (default), 8, 64 or 1024 (low two bits)
 *   byte 1    seed for the chunk sizes the stream is fed in
 *
 * Properties checked:
 *   - chunking does not matter: fed in pieces, the parser returns the same
 *     events (data, id, event type) and the same final code as fed whole;
 *   - every event's data and id are valid UTF-8 of at most max_event_bytes,
 *     and the id never holds a NUL;
 *   - errors are the documented ones and sticky;
 *   - `used` never passes the input given.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/error.h"
#include "stream/http_source.h"
#include "stream/json.h"

/* Feeds p[0..len) in pieces (sizes from seed; 0: whole). Returns the final
 * code; *hash sums up the events, *events counts them. */
static int run(const uint8_t *p, size_t len, size_t max, uint8_t seed, uint64_t *hash,
               uint64_t *events)
{
    stream_sse_parser sp;
    stream_sse_init(&sp, max);
    uint64_t h = FUZZ_HASH_INIT, n = 0;
    uint32_t rnd = seed;
    int rc = 0;
    size_t off = 0;
    while (off < len && rc >= 0) {
        size_t piece = fuzz_piece(seed, &rnd, len - off, 17);
        size_t at = 0;
        while (at < piece) {
            size_t used = 0;
            stream_sse_event ev;
            char err[256];
            rc = stream_sse_feed(&sp, p + off + at, piece - at, &used, &ev, err, sizeof err);
            FUZZ_CHECK(used <= piece - at);
            at += used;
            if (rc < 0) {
                FUZZ_CHECK_MSG(rc == STREAM_EBADRECORD || rc == STREAM_ETOOLARGE, "%d", rc);
                size_t u2;
                FUZZ_CHECK(stream_sse_feed(&sp, (const uint8_t *)"\n\n", 2, &u2, &ev, err,
                                           sizeof err) < 0);
                break;
            }
            if (rc == 1) {
                size_t limit = max ? max : (size_t)64 << 20;
                FUZZ_CHECK(ev.data_len <= limit);
                FUZZ_CHECK(stream_utf8_valid(ev.data, ev.data_len));
                FUZZ_CHECK(stream_utf8_valid(ev.id, strlen(ev.id)));
                FUZZ_CHECK(stream_utf8_valid(ev.event, strlen(ev.event)));
                h = fuzz_hash(h, ev.data, ev.data_len);
                h = fuzz_hash(h, ev.id, strlen(ev.id));
                h = fuzz_hash(h, ev.event, strlen(ev.event));
                n++;
                rc = 0;
            } else {
                FUZZ_CHECK(used == piece - (at - used)); /* 0: everything was taken */
            }
        }
        off += piece;
    }
    stream_sse_release(&sp);
    *hash = h;
    *events = n;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    static const size_t maxes[] = {0, 8, 64, 1024};
    size_t max = maxes[fuzz_u8(&in) & 3];
    uint8_t seed = fuzz_u8(&in);
    const uint8_t *p = in.p + in.pos;
    size_t len = fuzz_in_left(&in);
    fuzz_same_in_pieces(run, p, len, max, seed);
    return 0;
}
