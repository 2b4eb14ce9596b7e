/*
 * fuzz_cli.c - the small parsers every program runs on its arguments and
 * stdin: broker lists (proto.h, -b and $STREAM_BROKERS), acks, partition
 * lists (-p), headers (-H), key splitting (-K), topic names, and the record
 * splitter that cuts stdin at a delimiter (cli.h).
 *
 * Input: byte 0 picks the delimiter length (0-4 bytes, taken next) and the
 * splitter's max_record_bytes; the rest is both the argument text (up to the
 * first NUL) and the splitter's stdin, written through a pipe in one go.
 *
 * Properties checked:
 *   - a broker list that parses formats back ("host:port" / "[v6]:port") to
 *     addresses that parse to the same host and port;
 *   - partition lists are ascending without duplicates, and parsing the
 *     same list twice adds nothing;
 *   - the store's and the protocol's topic-name checks agree;
 *   - the splitter's records joined with the delimiter give the input back
 *     (kcat -P rules: a trailing delimiter ends the last record), unless a
 *     record passes max_record_bytes, which is STREAM_ETOOLARGE and sticky.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "stream/buf.h"
#include "stream/cli.h"
#include "stream/error.h"
#include "stream/proto.h"
#include "stream/store.h"

static void hostports(const char *s)
{
    char err[512];
    stream_hostport *hp = NULL;
    size_t n = 0;
    int rc = stream_parse_hostport_list(s, STREAM_DEFAULT_PORT, &hp, &n, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL || rc == STREAM_ENOMEM);
    if (rc != 0) {
        FUZZ_CHECK(hp == NULL && n == 0);
        return;
    }
    FUZZ_CHECK(n >= 1 && hp != NULL);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(hp[i].port >= 1);
        FUZZ_CHECK(strlen(hp[i].host) >= 1 && strlen(hp[i].host) <= 255);
        char buf[300];
        int w = stream_hostport_format(&hp[i], buf, sizeof buf);
        FUZZ_CHECK(w > 0 && (size_t)w < sizeof buf);
        stream_hostport back;
        rc = stream_parse_hostport(buf, (size_t)w, 1, &back, err, sizeof err);
        FUZZ_CHECK_MSG(rc == 0, "'%s' does not parse back: %s", buf, err);
        FUZZ_CHECK(back.port == hp[i].port && strcmp(back.host, hp[i].host) == 0);
    }
    free(hp);
}

static void options(const char *s)
{
    char err[512];
    int acks;
    int rc = stream_cli_parse_acks(s, &acks, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);

    stream_cli_partitions list = {0};
    rc = stream_cli_partitions_parse(&list, s, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL || rc == STREAM_ENOMEM);
    if (rc == 0) {
        for (size_t i = 1; i < list.count; i++)
            FUZZ_CHECK(list.ids[i - 1] < list.ids[i]);
        for (size_t i = 0; i < list.count; i++)
            FUZZ_CHECK(list.ids[i] >= 0);
        size_t count = list.count;
        FUZZ_CHECK(stream_cli_partitions_parse(&list, s, err, sizeof err) == 0);
        FUZZ_CHECK(list.count == count);
    }
    stream_cli_partitions_release(&list);

    /* Two checks of the one topic-name grammar (the store's and the
     * protocol's) must agree. */
    int store_rc = stream_topic_name_valid(s, err, sizeof err);
    int proto_rc = stream_topic_name_check(s, strlen(s), err, sizeof err);
    FUZZ_CHECK_MSG(store_rc == proto_rc, "'%s': store says %s, protocol says %s", s,
                   stream_err_name(store_rc), stream_err_name(proto_rc));

    stream_header h;
    rc = stream_cli_parse_header(s, &h, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(h.name_len >= 1 && (const char *)h.name == s);
        FUZZ_CHECK((h.value == NULL) == (h.value_len == -1));
        FUZZ_CHECK((size_t)h.name_len + (h.value_len >= 0 ? 1 + (size_t)h.value_len : 0) ==
                   strlen(s));
    }
}

/* Splits p[0..len) at delim through a pipe; checks the records rebuild it. */
static void split(const uint8_t *delim, size_t dlen, size_t max, const uint8_t *p, size_t len)
{
    int fds[2];
    FUZZ_CHECK(pipe2(fds, O_CLOEXEC) == 0);
    /* Inputs stay under the pipe's 64 KiB, so one write and a close suffice. */
    FUZZ_CHECK(len == 0 || write(fds[1], p, len) == (ssize_t)len);
    close(fds[1]);

    char err[512];
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, delim, dlen, max);
    stream_buf joined;
    stream_buf_init(&joined);
    const uint8_t *rec;
    size_t rlen;
    int rc = 0;
    uint64_t records = 0;
    for (int rounds = 0; rounds < 100000; rounds++) {
        while ((rc = stream_cli_splitter_next(&s, &rec, &rlen, err, sizeof err)) == 1) {
            FUZZ_CHECK(rlen <= (max ? max : (size_t)64 << 20));
            if (records > 0)
                stream_buf_put(&joined, delim, dlen);
            stream_buf_put(&joined, rec, rlen);
            records++;
        }
        if (rc < 0 || s.eof)
            break;
        int n = stream_cli_splitter_fill(&s, fds[0], err, sizeof err);
        FUZZ_CHECK_MSG(n >= 0 || n == STREAM_EAGAIN, "fill: %s", stream_err_name(n));
    }
    close(fds[0]);
    FUZZ_CHECK(s.records == records);
    if (rc < 0) {
        FUZZ_CHECK(rc == STREAM_ETOOLARGE && max > 0);
        FUZZ_CHECK(stream_cli_splitter_next(&s, &rec, &rlen, err, sizeof err) == rc);
    } else {
        FUZZ_CHECK(s.eof && rc == 0);
        /* A trailing delimiter ends the last record rather than starting an
         * empty one: the input is the records joined, maybe plus one more
         * delimiter. */
        bool same = joined.len == len && (len == 0 || memcmp(joined.data, p, len) == 0);
        if (!same && records > 0 && joined.len + dlen == len &&
            memcmp(p + joined.len, delim, dlen) == 0)
            same = joined.len == 0 || memcmp(joined.data, p, joined.len) == 0;
        FUZZ_CHECK_MSG(same, "%llu records rebuild %zu of %zu bytes", (unsigned long long)records,
                       joined.len, len);
        if (dlen == 0)
            FUZZ_CHECK(records == 1);
    }
    stream_buf_release(&joined);
    stream_cli_splitter_release(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = {0, 1, 5, 64};
    if (size > 60000)
        return 0;
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t b0 = fuzz_u8(&in);
    size_t dlen;
    const uint8_t *delim = fuzz_bytes(&in, b0 % 5, &dlen);
    size_t max = maxes[(b0 >> 3) & 3];
    size_t len;
    const uint8_t *rest = fuzz_rest(&in, &len);

    char *s = fuzz_strndup(rest, len);
    hostports(s);
    options(s);
    free(s);

    const uint8_t *key, *value;
    size_t key_len, value_len;
    if (dlen > 0 &&
        stream_cli_split_key(rest, len, delim, dlen, &key, &key_len, &value, &value_len)) {
        FUZZ_CHECK(key == rest && key_len + dlen + value_len == len);
        FUZZ_CHECK(memcmp(rest + key_len, delim, dlen) == 0);
        FUZZ_CHECK(key_len < dlen || memmem(rest, key_len, delim, dlen) == NULL);
    }

    split(delim, dlen, max, rest, len);
    return 0;
}
