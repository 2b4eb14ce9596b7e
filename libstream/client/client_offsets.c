/*
 * client_offsets.c - list_offsets, routed: each partition's question goes to
 * the broker that leads it (one request per broker node, all in flight at
 * once), and a question a broker could not answer because it does not lead
 * that partition (ENOTLEADER), or whose broker died (in a cluster), is asked
 * again of the leader fresh metadata names, a few times within the call's
 * timeout. On a single broker that is one request, as it always was.
 *
 * Wire format (share/doc/protocol.md, "list_offsets"):
 *   request  {topics: [{name, partitions: [{partition, timestamp}]}]}
 *   response {topics: [{name, partitions: [{partition, err, msg?, offset,
 *            timestamp, log_start_offset, high_watermark}]}]}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "stream/error.h"

/* Rounds of questions at most: the first, then retries after refreshes. */
#define ROUNDS_MAX 5
/* The first wait before a retry round (doubling). */
#define RETRY_BACKOFF_MS 100

typedef struct offsets_parse {
    stream_offset_query *q;
    size_t n;
} offsets_parse;

/* Queries are grouped into topic entries by runs of the same topic name, in
 * order; the answer has the same shape. */
static int offsets_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    offsets_parse *op = arg;
    const msgpack_object *topics;
    int rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    size_t qi = 0;
    for (uint32_t ti = 0; ti < topics->via.array.size && qi < op->n; ti++) {
        const msgpack_object *t, *parts;
        const char *name;
        size_t len;
        rc = stream_elem_map(topics, ti, "topics", &t, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(t, "name", &name, &len, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_array(t, "partitions", &parts, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        for (uint32_t pi = 0; pi < parts->via.array.size; pi++, qi++) {
            const msgpack_object *pm;
            int64_t partition, err, offset, ts;
            if (qi >= op->n || !stream_str_eq(name, len, op->q[qi].topic)) {
                stream__errf(errbuf, errbuf_len, "list_offsets answer does not match the request");
                return STREAM_EPROTO;
            }
            rc = stream_elem_map(parts, pi, "partitions", &pm, errbuf, errbuf_len);
            if (rc == 0)
                rc = stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &partition, errbuf,
                                      errbuf_len);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "err", 0, INT32_MAX, 0, &err, errbuf, errbuf_len);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "offset", -1, INT64_MAX, -1, &offset, errbuf,
                                          errbuf_len);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "timestamp", INT64_MIN, INT64_MAX, -1, &ts, errbuf,
                                          errbuf_len);
            if (rc < 0)
                return rc;
            if (partition != op->q[qi].partition) {
                stream__errf(errbuf, errbuf_len, "list_offsets answer does not match the request");
                return STREAM_EPROTO;
            }
            op->q[qi].err = -(int)err;
            op->q[qi].offset = err ? -1 : offset;
            op->q[qi].found_timestamp = err || ts < 0 ? -1 : ts;
        }
    }
    if (qi != op->n) {
        stream__errf(errbuf, errbuf_len, "list_offsets answered %zu of %zu queries", qi, op->n);
        return STREAM_EPROTO;
    }
    return 0;
}

/* Packs a list_offsets request for n queries (runs of one topic name make
 * one topic entry). */
static void pack_request(stream_client *c, const stream_offset_query *q, size_t n)
{
    size_t groups = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(q[i].topic, q[i - 1].topic) != 0)
            groups++;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_LIST_OFFSETS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, groups);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(q[j].topic, q[i].topic) == 0)
            j++;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", q[i].topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, j - i);
        for (size_t k = i; k < j; k++) {
            msgpack_pack_map(pk, 2);
            stream_pack_kv_int(pk, "partition", q[k].partition);
            stream_pack_kv_int(pk, "timestamp", q[k].timestamp);
        }
        i = j;
    }
}

/* One request: the queries of one node, copied (sub) with where each came
 * from (orig). */
typedef struct node_call {
    int32_t node;
    stream_offset_query *sub;
    size_t *orig;
    size_t n;
    int64_t id;
    bool done;
    int err;
    char msg[512];
} node_call;

static void node_call_cb(stream_client *c, const stream__resp *r, void *arg)
{
    node_call *nc = arg;
    nc->done = true;
    nc->err = r->err;
    if (r->err != 0) {
        snprintf(nc->msg, sizeof nc->msg, "%s", r->msg[0] ? r->msg : stream_strerror(r->err));
        return;
    }
    offsets_parse op = {.q = nc->sub, .n = nc->n};
    nc->err = offsets_parse_fn(r->root, &op, nc->msg, sizeof nc->msg);
    if (nc->err == STREAM_EBADREQ)
        nc->err = STREAM_EPROTO;
}

/* Where query q goes. */
static int32_t query_node(stream_client *c, const stream_offset_query *q)
{
    int32_t l = stream__client_leader(c, q->topic, q->partition);
    return l < 0 ? STREAM__NODE_BOOTSTRAP : l;
}

/* Whether a query's answer (or its request's failure) is worth asking the
 * leader fresh metadata names. Transport failures only in a cluster: a
 * single broker that is down is reported at once, as always. */
static bool ask_again(stream_client *c, int err)
{
    if (err == STREAM_ENOTLEADER || err == STREAM_ESTALEEPOCH || err == STREAM_ENOBROKER)
        return true;
    return stream__client_clustered(c) && stream__retry_decide(err) == STREAM__RETRY_REFRESH &&
           err != STREAM_ENOTOPIC && err != STREAM_ENOPART;
}

/* One round: asks the queries marked in `want`, one request per node, and
 * waits for every answer. Fills queries' answers; clears want[i] for the
 * ones answered for good. Returns 0, or a request's error that is not worth
 * another round (errbuf set), or STREAM_ETIMEDOUT/ENOMEM. */
static int run_round(stream_client *c, stream_offset_query *queries, size_t n, bool *want,
                     int64_t deadline, char *errbuf, size_t errbuf_len)
{
    int32_t *node = calloc(n, sizeof *node);
    node_call *calls = calloc(n, sizeof *calls);
    size_t ncalls = 0;
    int rc = 0;
    if (!node || !calls) {
        rc = STREAM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!want[i])
            continue;
        node[i] = query_node(c, &queries[i]);
        size_t k = 0;
        while (k < ncalls && calls[k].node != node[i])
            k++;
        if (k == ncalls)
            calls[ncalls++].node = node[i];
        calls[k].n++;
    }
    for (size_t k = 0; k < ncalls; k++) {
        node_call *nc = &calls[k];
        nc->sub = calloc(nc->n, sizeof *nc->sub);
        nc->orig = calloc(nc->n, sizeof *nc->orig);
        if (!nc->sub || !nc->orig) {
            rc = STREAM_ENOMEM;
            goto out;
        }
        size_t m = 0;
        /* In the caller's order: runs of a topic stay runs. */
        for (size_t i = 0; i < n; i++)
            if (want[i] && node[i] == nc->node) {
                nc->sub[m] = queries[i];
                nc->orig[m++] = i;
            }
        pack_request(c, nc->sub, nc->n);
        nc->id = stream__req_send_node(c, nc->node, node_call_cb, nc, 0, 0);
        if (nc->id < 0) {
            rc = (int)nc->id;
            stream__errf(errbuf, errbuf_len, "cannot send request: %s", stream_strerror(rc));
            goto out;
        }
    }
    for (size_t k = 0; k < ncalls; k++) {
        rc = stream__client_wait(c, &calls[k].done, deadline);
        if (rc < 0)
            goto out;
    }
    for (size_t k = 0; k < ncalls; k++) {
        node_call *nc = &calls[k];
        if (nc->err != 0) {
            if (ask_again(c, nc->err))
                continue; /* its queries stay wanted */
            if (rc == 0) {
                rc = nc->err;
                stream__errf(errbuf, errbuf_len, "%s", nc->msg);
            }
            continue;
        }
        for (size_t m = 0; m < nc->n; m++) {
            size_t i = nc->orig[m];
            queries[i].offset = nc->sub[m].offset;
            queries[i].found_timestamp = nc->sub[m].found_timestamp;
            queries[i].err = nc->sub[m].err;
            want[i] = ask_again(c, nc->sub[m].err);
        }
    }
out:
    for (size_t k = 0; calls && k < ncalls; k++) {
        if (!calls[k].done && calls[k].id > 0)
            stream__req_cancel(c, calls[k].id); /* calls is about to be freed */
        free(calls[k].sub);
        free(calls[k].orig);
    }
    free(calls);
    free(node);
    return rc;
}

/* Refreshes the metadata of the topics of the wanted queries (blocking). */
static void refresh_topics(stream_client *c, const stream_offset_query *queries, size_t n,
                           const bool *want, int64_t deadline)
{
    const char **names = calloc(n, sizeof *names);
    size_t k = 0;
    for (size_t i = 0; names && i < n; i++) {
        if (!want[i])
            continue;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(names[j], queries[i].topic) == 0;
        if (!seen)
            names[k++] = queries[i].topic;
    }
    int64_t left = deadline - stream__client_mono_ms();
    stream_metadata *md = NULL;
    if (names && k > 0 && left > 0)
        stream_client_metadata(c, names, k, left > INT32_MAX ? INT32_MAX : (int)left, &md, NULL, 0);
    stream_metadata_free(md);
    free(names);
}

int stream_admin_list_offsets(stream_client *c, stream_offset_query *queries, size_t n,
                              int timeout_ms, char *errbuf, size_t errbuf_len)
{
    for (size_t i = 0; i < n; i++) {
        if (!queries[i].topic || queries[i].partition < 0) {
            stream__errf(errbuf, errbuf_len, "list_offsets query %zu: no topic or bad partition",
                         i);
            return STREAM_EINVAL;
        }
        queries[i].offset = -1;
        queries[i].found_timestamp = -1;
        queries[i].err = 0;
    }
    if (n == 0)
        return 0;
    bool *want = calloc(n, sizeof *want);
    if (!want)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n; i++)
        want[i] = true;
    int64_t deadline = stream__client_deadline(c, timeout_ms);
    int rc = 0;
    int backoff = RETRY_BACKOFF_MS;
    for (int round = 0;; round++) {
        rc = run_round(c, queries, n, want, deadline, errbuf, errbuf_len);
        if (rc == STREAM_ETIMEDOUT)
            stream__errf(errbuf, errbuf_len, "request to %s timed out after %d ms",
                         stream_client_broker(c),
                         timeout_ms < 0 ? stream__client_request_timeout(c) : timeout_ms);
        bool again = false;
        for (size_t i = 0; i < n && !again; i++)
            again = want[i];
        if (rc < 0 || !again)
            break;
        if (round + 1 == ROUNDS_MAX || stream__client_mono_ms() + backoff >= deadline) {
            /* Out of rounds: the queries keep their last answer; a request
             * that failed as a whole fails the call. */
            for (size_t i = 0; i < n && rc == 0; i++)
                if (want[i] && queries[i].offset < 0 && queries[i].err == 0) {
                    rc = STREAM_ETIMEDOUT;
                    stream__errf(errbuf, errbuf_len,
                                 "topic '%s' partition %d: no broker answered list_offsets",
                                 queries[i].topic, (int)queries[i].partition);
                }
            break;
        }
        /* Who leads now? Then give an election a moment. */
        refresh_topics(c, queries, n, want, deadline);
        bool done = false;
        stream__client_wait(c, &done, stream__client_mono_ms() + backoff);
        backoff *= 2;
    }
    free(want);
    return rc;
}
