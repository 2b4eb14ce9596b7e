/*
 * fuzz_json_array.c - the JSON array splitter (http_source.h), as
 * `stream-pub --url --json-array` reads a body.
 *
 * Input: two bytes of parameters, then the body.
 *   byte 0    max_element_bytes: 0 (default), 4, 64 or 4096 (low two bits)
 *   byte 1    seed for the chunk sizes the body is fed in
 *
 * Properties checked:
 *   - chunking does not matter: the same elements and the same final code
 *     (feed or finish) whole as in pieces;
 *   - every element is one JSON value json.h's parser accepts, with no
 *     whitespace around it, of at most max_element_bytes;
 *   - when the body is accepted, the parser accepts the whole body too, and
 *     it is an array of as many elements;
 *   - errors are the documented ones and sticky.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/error.h"
#include "stream/http_source.h"
#include "stream/json.h"

static stream_json_doc doc;
static bool doc_ready;

static bool space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int run(const uint8_t *p, size_t len, size_t max, uint8_t seed, uint64_t *hash,
               uint64_t *count)
{
    stream_json_array_splitter s;
    stream_json_array_init(&s, max);
    uint64_t h = FUZZ_HASH_INIT, n = 0;
    uint32_t rnd = seed;
    int rc = 0;
    size_t off = 0;
    char err[512];
    while (off < len && rc >= 0) {
        size_t piece = fuzz_piece(seed, &rnd, len - off, 13);
        size_t at = 0;
        while (at < piece) {
            size_t used = 0, elen = 0;
            const uint8_t *e = NULL;
            rc = stream_json_array_feed(&s, p + off + at, piece - at, &used, &e, &elen, err,
                                        sizeof err);
            FUZZ_CHECK(used <= piece - at);
            at += used;
            if (rc < 0)
                break;
            if (rc == 1) {
                FUZZ_CHECK(elen > 0 && elen <= (max ? max : (size_t)64 << 20));
                FUZZ_CHECK(!space(e[0]) && !space(e[elen - 1]));
                const stream_json_value *root;
                char why[256];
                FUZZ_CHECK_MSG(
                    stream_json_parse(&doc, (const char *)e, elen, &root, why, sizeof why) == 0,
                    "%s", why);
                h = fuzz_hash(h, e, elen);
                n++;
                rc = 0;
            }
        }
        off += piece;
    }
    if (rc >= 0)
        rc = stream_json_array_finish(&s, err, sizeof err);
    if (rc < 0) {
        FUZZ_CHECK_MSG(rc == STREAM_EBADRECORD || rc == STREAM_ETOOLARGE, "%d", rc);
        size_t used, elen;
        const uint8_t *e;
        FUZZ_CHECK(stream_json_array_feed(&s, (const uint8_t *)"[]", 2, &used, &e, &elen, err,
                                          sizeof err) < 0);
    }
    stream_json_array_release(&s);
    *hash = h;
    *count = n;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!doc_ready) {
        stream_json_doc_init(&doc);
        doc.max_depth = 65; /* elements nest up to 64, the body one more */
        doc_ready = true;
    }
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    static const size_t maxes[] = {0, 4, 64, 4096};
    size_t max = maxes[fuzz_u8(&in) & 3];
    uint8_t seed = fuzz_u8(&in);
    const uint8_t *p = in.p + in.pos;
    size_t len = fuzz_in_left(&in);
    int rc = fuzz_same_in_pieces(run, p, len, max, seed);
    if (rc == 0) {
        /* Accepted: the whole body is that array. */
        const stream_json_value *root;
        char why[256];
        FUZZ_CHECK_MSG(stream_json_parse(&doc, (const char *)p, len, &root, why, sizeof why) == 0,
                       "%s", why);
        FUZZ_CHECK(root->type == STREAM_JSON_ARRAY);
    }
    return 0;
}
