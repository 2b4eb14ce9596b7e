/*
 * redis_xread - reads a Redis stream from the start with XREAD, as a Redis
 * Streams consumer does, for `make bench-peers` (tests/bench/peers.sh).
 *
 *   redis_xread -p PORT -k KEY -n RECORDS [-h HOST] [-c COUNT]
 *
 * Loops `XREAD COUNT <COUNT> STREAMS <KEY> <last id>` from id 0-0 until
 * RECORDS entries arrived, and prints one JSON line (peers.h): records/s and
 * MB/s of entry values, from the first request to the last entry.
 *
 * Why this shape: XREAD is the Redis Streams read API, and its next request
 * needs the last id of the previous answer, so a reader cannot pipeline: one
 * XREAD is in flight at a time, exactly as in every Redis Streams consumer.
 * COUNT (default 1000, as the benchmark brief asks) amortises the round trip
 * over that many entries. hiredis parses each reply into reply objects, as a
 * real client would; the payload counted is each entry's field values (the
 * 100-byte or 1 KB value), not ids or field names, matching stream-bench's
 * key+value count.
 */
#include <getopt.h>
#include <hiredis/hiredis.h>

#include "peers.h"

static const char *prog = "redis_xread";

/* Counts the entries of one XREAD reply and their value bytes, and copies
 * the last entry id into `last` (size `last_cap`). Returns the entries. */
static uint64_t count_reply(const redisReply *r, const char *key, uint64_t *bytes, char *last,
                            size_t last_cap)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0; /* nothing (yet) past `last` */
    if (r->type == REDIS_REPLY_ERROR)
        peers_die(prog, "XREAD: %s", r->str);
    /* [[key, [[id, [field, value, ...]], ...]]] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2)
        peers_die(prog, "unexpected XREAD reply for '%s'", key);
    const redisReply *entries = r->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY)
        peers_die(prog, "unexpected XREAD entry list");
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            peers_die(prog, "unexpected XREAD entry");
        const redisReply *fv = e->element[1];
        for (size_t j = 1; j < fv->elements; j += 2)
            *bytes += fv->element[j]->len;
    }
    if (entries->elements > 0) {
        const redisReply *id = entries->element[entries->elements - 1]->element[0];
        if (id->len >= last_cap)
            peers_die(prog, "entry id too long");
        memcpy(last, id->str, id->len);
        last[id->len] = '\0';
    }
    return entries->elements;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *key = NULL;
    int port = 0;
    int64_t records = 0, count = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:k:n:c:")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = (int)peers_parse_count(prog, optarg, "port");
            break;
        case 'k':
            key = optarg;
            break;
        case 'n':
            records = peers_parse_count(prog, optarg, "record count");
            break;
        case 'c':
            count = peers_parse_count(prog, optarg, "XREAD COUNT");
            break;
        default:
            fprintf(stderr, "usage: %s -p PORT -k KEY -n RECORDS [-h HOST] [-c COUNT]\n", prog);
            return 2;
        }
    }
    if (port == 0 || key == NULL || records == 0) {
        fprintf(stderr, "usage: %s -p PORT -k KEY -n RECORDS [-h HOST] [-c COUNT]\n", prog);
        return 2;
    }

    redisContext *c = redisConnect(host, port);
    if (c == NULL || c->err)
        peers_die(prog, "cannot connect to %s:%d: %s", host, port, c ? c->errstr : "out of memory");
    char last[64] = "0-0";
    uint64_t got = 0, bytes = 0;
    int64_t t0 = peers_now_ns(), t_last = t0, idle_since = t0;
    while ((int64_t)got < records) {
        redisReply *r =
            redisCommand(c, "XREAD COUNT %lld STREAMS %s %s", (long long)count, key, last);
        if (r == NULL)
            peers_die(prog, "XREAD: %s", c->errstr);
        uint64_t n = count_reply(r, key, &bytes, last, sizeof(last));
        freeReplyObject(r);
        int64_t t = peers_now_ns();
        if (n > 0) {
            got += n;
            t_last = idle_since = t;
        } else if (t - idle_since > 10 * INT64_C(1000000000)) {
            peers_die(prog, "only %" PRIu64 " of %" PRId64 " entries in '%s' after 10 s idle", got,
                      records, key);
        }
    }
    peers_result_head("redis", "consume", got, bytes, t_last - t0);
    printf(",\"count\":%" PRId64, count);
    peers_result_end(prog);
    redisFree(c);
    return 0;
}
