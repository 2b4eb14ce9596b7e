/*
 * nats_bench - a NATS JetStream load generator on libnats (the C client),
 * the NATS side of `make bench-peers` (tests/bench/peers.sh).
 *
 *   nats_bench -u URL -S STREAM -s SUBJECT -n RECORDS [-m BYTES] [-P MAX_PENDING] produce
 *   nats_bench -u URL -S STREAM -s SUBJECT -n RECORDS [-B BATCH] consume
 *   nats_bench -u URL -S STREAM delete
 *
 * produce  (re)creates STREAM on SUBJECT with file storage, then publishes
 *          RECORDS messages of BYTES bytes (default 100) with
 *          js_PublishAsync, at most MAX_PENDING (default 4096) unacknowledged
 *          at a time, and waits for every ack (js_PublishAsyncComplete). The
 *          latency of a message is from just before js_PublishAsync to its
 *          ack; the send time rides in the message's first 8 bytes (the rest
 *          is letters, as in stream-bench), so nothing is looked up per ack.
 * consume  reads RECORDS messages from the start of STREAM through an
 *          ephemeral pull consumer (deliver all, no acks, as stream-bench
 *          consume commits nothing), natsSubscription_Fetch'ing BATCH
 *          (default 1000) messages per request.
 * delete   removes STREAM and its files, so repetitions do not fill the disk.
 *
 * Prints one JSON line (peers.h) per produce or consume run.
 *
 * JetStream acknowledges a publish once the server has stored the message in
 * its file store (written, not fsynced: the file store syncs every 2 min by
 * default) - the same promise as stream's acks=1 and Redis's appendfsync
 * everysec.
 */
#include <getopt.h>
#include <nats/nats.h>
#include <stdbool.h>

#include "peers.h"

static const char *prog = "nats_bench";

typedef struct options {
    const char *url, *stream, *subject, *mode;
    int64_t records, record_bytes, max_pending, batch;
} options;

/* What the ack handler (on libnats's delivery thread) records. */
typedef struct produce_run {
    peers_latency lat; /* publish -> ack, ns */
    uint64_t acked, failed;
    char last_error[256];
} produce_run;

static void check(natsStatus s, jsErrCode jerr, const char *what)
{
    if (s != NATS_OK)
        peers_die(prog, "%s: %s (JetStream error %d)%s%s", what, natsStatus_GetText(s), (int)jerr,
                  nats_GetLastError(NULL) ? ": " : "",
                  nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    produce_run *r = closure;
    int64_t now = peers_now_ns();
    if (pa != NULL) {
        int64_t sent;
        memcpy(&sent, natsMsg_GetData(msg), sizeof(sent));
        peers_latency_add(&r->lat, now - sent);
        r->acked++;
    } else {
        if (r->failed++ == 0 && pae != NULL)
            snprintf(r->last_error, sizeof(r->last_error), "%s (%d)",
                     pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err), (int)pae->ErrCode);
    }
    natsMsg_Destroy(msg);
}

static void create_stream(jsCtx *js, const options *o)
{
    jsErrCode jerr = 0;
    js_DeleteStream(js, o->stream, NULL, &jerr); /* a leftover from an earlier run */
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = o->stream;
    const char *subjects[] = {o->subject};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    check(js_AddStream(&si, js, &cfg, NULL, &jerr), jerr, "cannot create the stream");
    jsStreamInfo_Destroy(si);
}

static void run_produce(natsConnection *nc, const options *o)
{
    if (o->record_bytes < 8)
        peers_die(prog, "values must be at least 8 bytes (they carry the send time)");
    produce_run r = {0};
    peers_latency_init(&r.lat, (uint64_t)o->records, prog);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = o->max_pending;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &r;
    jo.PublishAsync.StallWait = 60000; /* at MAX_PENDING, wait for acks; never fail */
    jsCtx *js = NULL;
    check(natsConnection_JetStream(&js, nc, &jo), 0, "cannot open a JetStream context");
    create_stream(js, o);

    uint8_t *value = malloc((size_t)o->record_bytes);
    if (value == NULL)
        peers_die(prog, "out of memory");
    peers_fill_value(value, (size_t)o->record_bytes);
    int64_t t0 = peers_now_ns();
    for (int64_t i = 0; i < o->records; i++) {
        int64_t t = peers_now_ns();
        memcpy(value, &t, sizeof(t));
        check(js_PublishAsync(js, o->subject, value, (int)o->record_bytes, NULL), 0,
              "js_PublishAsync");
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    check(js_PublishAsyncComplete(js, &po), 0, "waiting for the acks");
    int64_t elapsed = peers_now_ns() - t0;

    if (r.failed > 0)
        fprintf(stderr, "%s: %" PRIu64 " publishes failed; first: %s\n", prog, r.failed,
                r.last_error);
    peers_result_head("nats", "produce", r.acked, r.acked * (uint64_t)o->record_bytes, elapsed);
    printf(",\"failed\":%" PRIu64 ",\"record_bytes\":%" PRId64 ",\"max_pending\":%" PRId64 ",",
           r.failed, o->record_bytes, o->max_pending);
    peers_latency_json(&r.lat);
    peers_result_end(prog);
    free(value);
    jsCtx_Destroy(js);
    peers_latency_release(&r.lat);
    if (r.failed > 0)
        exit(1);
}

static void run_consume(natsConnection *nc, const options *o)
{
    jsCtx *js = NULL;
    check(natsConnection_JetStream(&js, nc, NULL), 0, "cannot open a JetStream context");
    int64_t t0 = peers_now_ns();
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o->stream;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckNone;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    check(js_PullSubscribe(&sub, js, o->subject, NULL, NULL, &so, &jerr), jerr,
          "cannot create the pull consumer");
    /* The client's own default limit (65536 messages) would cap big batches. */
    natsSubscription_SetPendingLimits(sub, -1, -1);

    uint64_t got = 0, bytes = 0;
    int64_t t_last = t0;
    while ((int64_t)got < o->records) {
        natsMsgList list = {0};
        int64_t want = o->records - (int64_t)got;
        natsStatus s = natsSubscription_Fetch(&list, sub, (int)(want < o->batch ? want : o->batch),
                                              10000, &jerr);
        if (s == NATS_TIMEOUT && list.Count == 0)
            peers_die(prog, "only %" PRIu64 " of %" PRId64 " messages after 10 s idle", got,
                      o->records);
        check(s, jerr, "natsSubscription_Fetch");
        for (int i = 0; i < list.Count; i++)
            bytes += (uint64_t)natsMsg_GetDataLength(list.Msgs[i]);
        got += (uint64_t)list.Count;
        natsMsgList_Destroy(&list);
        t_last = peers_now_ns();
    }
    peers_result_head("nats", "consume", got, bytes, t_last - t0);
    printf(",\"batch\":%" PRId64, o->batch);
    peers_result_end(prog);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
}

static void run_delete(natsConnection *nc, const options *o)
{
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    check(natsConnection_JetStream(&js, nc, NULL), 0, "cannot open a JetStream context");
    check(js_DeleteStream(js, o->stream, NULL, &jerr), jerr, "cannot delete the stream");
    jsCtx_Destroy(js);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s -u URL -S STREAM -s SUBJECT -n RECORDS [-m BYTES] [-P MAX_PENDING] "
            "produce\n"
            "       %s -u URL -S STREAM -s SUBJECT -n RECORDS [-B BATCH] consume\n"
            "       %s -u URL -S STREAM delete\n",
            prog, prog, prog);
    exit(2);
}

int main(int argc, char **argv)
{
    options o = {.record_bytes = 100, .max_pending = 4096, .batch = 1000};
    int opt;
    while ((opt = getopt(argc, argv, "u:S:s:n:m:P:B:")) != -1) {
        switch (opt) {
        case 'u':
            o.url = optarg;
            break;
        case 'S':
            o.stream = optarg;
            break;
        case 's':
            o.subject = optarg;
            break;
        case 'n':
            o.records = peers_parse_count(prog, optarg, "record count");
            break;
        case 'm':
            o.record_bytes = peers_parse_count(prog, optarg, "record size");
            break;
        case 'P':
            o.max_pending = peers_parse_count(prog, optarg, "max pending");
            break;
        case 'B':
            o.batch = peers_parse_count(prog, optarg, "batch");
            break;
        default:
            usage();
        }
    }
    if (optind + 1 != argc || o.url == NULL || o.stream == NULL)
        usage();
    o.mode = argv[optind];
    bool del = strcmp(o.mode, "delete") == 0;
    if (!del && (o.subject == NULL || o.records == 0))
        usage();
    if (!del && strcmp(o.mode, "produce") != 0 && strcmp(o.mode, "consume") != 0)
        usage();
    if (o.batch > INT32_MAX || o.record_bytes > INT32_MAX)
        peers_die(prog, "batch or record size too large");

    natsConnection *nc = NULL;
    check(natsConnection_ConnectTo(&nc, o.url), 0, "cannot connect");
    if (del)
        run_delete(nc, &o);
    else if (strcmp(o.mode, "produce") == 0)
        run_produce(nc, &o);
    else
        run_consume(nc, &o);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
