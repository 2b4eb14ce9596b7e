/*
 * ops_cluster.c - the cluster (describe_cluster) as tables and JSON (see
 * ops.h), for stream-topics and stream-shell alike.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "stream/json.h"
#include "stream/ops.h"
#include "stream/table.h"

/* A broker's state: "fenced" or "registered" ("single" on a single node). */
static const char *broker_state(const stream_cluster_description *d, const stream_cluster_broker *b)
{
    if (!d->clustered)
        return "single";
    return b->fenced ? "fenced" : "registered";
}

/* "  Offline: orders-0 orders-2 ... (and N more)\n", nothing when empty. */
static void health_line(stream_buf *out, const char *what, const stream_cluster_partition *ps,
                        size_t n, int64_t count)
{
    if (n == 0)
        return;
    char buf[320];
    int k = snprintf(buf, sizeof(buf), "  %s:", what);
    stream_buf_put(out, buf, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        k = snprintf(buf, sizeof(buf), " %s-%d", ps[i].topic, (int)ps[i].partition);
        stream_buf_put(out, buf, k < (int)sizeof(buf) ? (size_t)k : sizeof(buf) - 1);
    }
    if (count > (int64_t)n) {
        k = snprintf(buf, sizeof(buf), " (and %" PRId64 " more)", count - (int64_t)n);
        stream_buf_put(out, buf, (size_t)k);
    }
    stream_buf_put(out, "\n", 1);
}

static void health_json(stream_json_writer *w, const char *key, const char *count_key,
                        const stream_cluster_partition *ps, size_t n, int64_t count)
{
    stream_json_key(w, count_key);
    if (count < 0)
        stream_json_null(w);
    else
        stream_json_int(w, count);
    stream_json_key(w, key);
    stream_json_array_start(w);
    for (size_t i = 0; i < n; i++) {
        stream_json_object_start(w);
        stream_json_key(w, "topic");
        stream_json_cstring(w, ps[i].topic);
        stream_json_key(w, "partition");
        stream_json_int(w, ps[i].partition);
        stream_json_object_end(w);
    }
    stream_json_array_end(w);
}

int stream_ops_cluster_text(stream_buf *out, const stream_cluster_description *d)
{
    char line[512];
    if (!d->clustered)
        snprintf(line, sizeof(line), "Single node (no cluster), node %d\n", (int)d->node_id);
    else if (d->leader_id < 0)
        snprintf(line, sizeof(line),
                 "Cluster %s: asked node %d; quorum leader unknown, term %" PRIu64
                 ", applied index %" PRIu64 "\n",
                 d->cluster_id, (int)d->node_id, d->term, d->applied_index);
    else
        snprintf(line, sizeof(line),
                 "Cluster %s: asked node %d; quorum leader %d, term %" PRIu64
                 ", applied index %" PRIu64 "\n",
                 d->cluster_id, (int)d->node_id, (int)d->leader_id, d->term, d->applied_index);
    stream_buf_put(out, line, strlen(line));
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "BROKER", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "ADDRESS", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "STATE", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "EPOCH", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "LEADERS", STREAM_ALIGN_RIGHT);
    for (size_t i = 0; i < d->n_brokers; i++) {
        const stream_cluster_broker *b = &d->brokers[i];
        stream_table_cellf(&t, "%d", (int)b->node_id);
        stream_table_cellf(&t, "%s:%u", b->host, (unsigned)b->port);
        stream_table_cell(&t, broker_state(d, b));
        if (b->epoch < 0)
            stream_table_cell(&t, "-");
        else
            stream_table_cellf(&t, "%" PRId64, b->epoch);
        if (b->leaderships < 0)
            stream_table_cell(&t, "-");
        else
            stream_table_cellf(&t, "%" PRId64, b->leaderships);
    }
    int rc = stream_table_render(&t, out);
    stream_table_release(&t);
    if (rc != 0 || d->n_voters == 0)
        return rc;
    if (d->under_replicated_count >= 0 && d->offline_count >= 0) {
        snprintf(line, sizeof(line),
                 "\nPartitions: %" PRId64 " under-replicated, %" PRId64 " offline\n",
                 d->under_replicated_count, d->offline_count);
        stream_buf_put(out, line, strlen(line));
        health_line(out, "Under-replicated", d->under_replicated, d->n_under_replicated,
                    d->under_replicated_count);
        health_line(out, "Offline", d->offline, d->n_offline, d->offline_count);
    }
    stream_buf_put(out, "\nQuorum:\n", 9);
    stream_table_init(&t);
    stream_table_column(&t, "VOTER", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "RAFT ADDRESS", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "ROLE", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "APPLIED", STREAM_ALIGN_RIGHT);
    for (size_t i = 0; i < d->n_voters; i++) {
        const stream_cluster_voter *v = &d->voters[i];
        stream_table_cellf(&t, "%d", (int)v->node_id);
        stream_table_cellf(&t, "%s:%u", v->host, (unsigned)v->port);
        stream_table_cell(&t, v->node_id == d->leader_id ? "leader" : "follower");
        if (v->applied_index < 0)
            stream_table_cell(&t, "-");
        else
            stream_table_cellf(&t, "%" PRId64, v->applied_index);
    }
    rc = stream_table_render(&t, out);
    stream_table_release(&t);
    return rc;
}

/* "node_id", "host", "port": the start of a voter's and a broker's object. */
static void json_node(stream_json_writer *w, int32_t id, const char *host, uint16_t port)
{
    stream_json_key(w, "node_id");
    stream_json_int(w, id);
    stream_json_key(w, "host");
    stream_json_cstring(w, host);
    stream_json_key(w, "port");
    stream_json_int(w, port);
}

int stream_ops_cluster_json(stream_buf *out, const stream_cluster_description *d)
{
    stream_json_writer w;
    stream_json_writer_init(&w, out);
    stream_json_object_start(&w);
    stream_json_key(&w, "cluster_id");
    stream_json_cstring(&w, d->cluster_id);
    stream_json_key(&w, "clustered");
    stream_json_bool(&w, d->clustered);
    stream_json_key(&w, "node_id");
    stream_json_int(&w, d->node_id);
    stream_json_key(&w, "leader_id");
    if (d->leader_id < 0)
        stream_json_null(&w);
    else
        stream_json_int(&w, d->leader_id);
    stream_json_key(&w, "term");
    stream_json_uint(&w, d->term);
    stream_json_key(&w, "applied_index");
    stream_json_uint(&w, d->applied_index);
    stream_json_key(&w, "voters");
    stream_json_array_start(&w);
    for (size_t i = 0; i < d->n_voters; i++) {
        stream_json_object_start(&w);
        json_node(&w, d->voters[i].node_id, d->voters[i].host, d->voters[i].port);
        stream_json_key(&w, "leader");
        stream_json_bool(&w, d->voters[i].node_id == d->leader_id);
        stream_json_key(&w, "applied_index");
        if (d->voters[i].applied_index < 0)
            stream_json_null(&w);
        else
            stream_json_int(&w, d->voters[i].applied_index);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    stream_json_key(&w, "brokers");
    stream_json_array_start(&w);
    for (size_t i = 0; i < d->n_brokers; i++) {
        const stream_cluster_broker *b = &d->brokers[i];
        stream_json_object_start(&w);
        json_node(&w, b->node_id, b->host, b->port);
        stream_json_key(&w, "state");
        stream_json_cstring(&w, broker_state(d, b));
        stream_json_key(&w, "fenced");
        stream_json_bool(&w, b->fenced);
        stream_json_key(&w, "epoch");
        if (b->epoch < 0)
            stream_json_null(&w);
        else
            stream_json_int(&w, b->epoch);
        stream_json_key(&w, "leaderships");
        if (b->leaderships < 0)
            stream_json_null(&w);
        else
            stream_json_int(&w, b->leaderships);
        stream_json_object_end(&w);
    }
    stream_json_array_end(&w);
    health_json(&w, "under_replicated", "under_replicated_count", d->under_replicated,
                d->n_under_replicated, d->under_replicated_count);
    health_json(&w, "offline", "offline_count", d->offline, d->n_offline, d->offline_count);
    stream_json_object_end(&w);
    return stream_json_writer_finish(&w);
}
