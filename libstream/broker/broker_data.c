/*
 * broker_data.c - the data ops: produce, fetch, list_offsets, init_producer_id.
 *
 * Each op decodes its whole request into a plain struct first (copying topic
 * names, checking every field's type), so a malformed request is refused
 * before any byte is appended, and so the struct can be parked on a waiter
 * once the frame it came from is gone. Then it runs per partition, each
 * partition failing on its own (unknown topic, bad partition, corrupt batch,
 * offset out of range) while the others succeed, as in Kafka.
 *
 * produce: every batch in a partition's `records` bin is checked
 *   (stream_batch_check: header, size, CRC) before the first is appended, so
 *   a partition takes all of its batches or none. A batch of an idempotent
 *   producer (producerId >= 0) must come alone, and is checked against the
 *   partition's producer state (stream_log_check_producer): a resend of one
 *   of the producer's last 16 batches is answered with the offset it got the
 *   first time and nothing is written; a batch out of sequence is refused.
 *   acks=0 sends nothing back, acks=1 answers once written, acks=all (-1)
 *   parks until the flusher makes every written partition durable (or
 *   timeout_ms passes: ETIMEDOUT for the partitions still waiting).
 * fetch: measures what is available without reading it; if that is below
 *   min_bytes (and nothing failed) the request parks for up to max_wait_ms and
 *   is woken by appends. The answer holds whole batches: at most max_bytes in
 *   total and each partition's own max_bytes, except that the first batch of
 *   the first partition with data is always sent whole, so a consumer makes
 *   progress past a batch larger than its limits. Batches this broker process
 *   appended itself go out with sendfile straight from the segment file (the
 *   response carries the file range; broker_conn.c writes it); older ones are
 *   pread into the response and CRC-checked first (trusted_from says why).
 *   Fetch never creates topics (protocol.md 6.8, 12).
 * list_offsets: earliest (-2), latest (-1), or the first offset whose record
 *   timestamp is >= t, with that record's timestamp.
 * init_producer_id: a new producer id, unique for the life of the data
 *   directory (ids come in blocks recorded in <data>/producer-ids before use,
 *   producer_state.h), and epoch 0.
 *
 * The same work for another protocol (the Kafka listener) goes through
 * stream__host_produce/_settle, stream__host_fetch, stream__host_list_offset
 * and stream__host_producer_id (host.h): the decoding is the caller's, and a
 * fetch's response is written through a stream__fetch_codec (the native one
 * is native_fetch_codec below), so both protocols share every check, append,
 * read, long poll and sendfile here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"
#include "broker_internal.h"
#include "stream/batch.h"
#include "stream/error.h"


/* One topic of a request: a name and a run of entries in `parts`. */
typedef struct req_topic {
    char name[STREAM_TOPIC_NAME_MAX + 1]; /* copied; "" when invalid */
    int name_err;                         /* 0, or STREAM_EBADNAME */
    size_t first, count;                  /* its entries in parts[] */
} req_topic;

/* Counts topics and their partitions in a request's `topics` array, checking
 * the shape common to produce, fetch and list_offsets:
 *   topics: [{name: str, partitions: [{partition: int, ...}]}]
 * `check` validates each partition map's own fields. */
typedef int (*part_check_fn)(const msgpack_object *pm, size_t ti, size_t pi, char *msg,
                             size_t msg_len);

static int scan_topics(const msgpack_object *m, part_check_fn check, const msgpack_object **topics,
                       size_t *nparts, char *msg, size_t msg_len)
{
    int rc = stream_field_array(m, "topics", topics, msg, msg_len);
    *nparts = 0;
    for (uint32_t i = 0; rc == 0 && i < (*topics)->via.array.size; i++) {
        const msgpack_object *t, *parts;
        const char *p;
        size_t len;
        rc = stream_elem_map(*topics, i, "topics", &t, msg, msg_len);
        if (rc == 0)
            rc = stream_field_str(t, "name", &p, &len, msg, msg_len);
        if (rc == 0)
            rc = stream_field_array(t, "partitions", &parts, msg, msg_len);
        for (uint32_t j = 0; rc == 0 && j < parts->via.array.size; j++) {
            const msgpack_object *pm;
            int64_t partition;
            rc = stream_elem_map(parts, j, "partitions", &pm, msg, msg_len);
            if (rc == 0)
                rc = stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &partition, msg,
                                      msg_len);
            if (rc == 0 && check)
                rc = check(pm, i, j, msg, msg_len);
        }
        if (rc == 0)
            *nparts += parts->via.array.size;
    }
    return rc;
}

/* Copies a topic name of len bytes at p into rt (or records why it is
 * invalid). */
static void name_topic(req_topic *rt, const char *p, size_t len)
{
    char msg[160];
    rt->name_err = stream__topic_name(p, len, rt->name, msg, sizeof(msg));
    if (rt->name_err != 0) {
        /* Echo what the client sent, cut to fit; the error says it is bad. */
        size_t n = len < STREAM_TOPIC_NAME_MAX ? len : STREAM_TOPIC_NAME_MAX;
        memcpy(rt->name, p, n);
        rt->name[n] = '\0';
    }
}

/* Copies topic i's name (or records why it is invalid). */
static void copy_topic(const msgpack_object *topics, uint32_t i, req_topic *rt,
                       const msgpack_object **parts)
{
    const msgpack_object *t;
    const char *p;
    size_t len;
    stream_elem_map(topics, i, "topics", &t, NULL, 0);
    stream_field_str(t, "name", &p, &len, NULL, 0);
    stream_field_array(t, "partitions", parts, NULL, 0);
    name_topic(rt, p, len);
}

/* Finds the topic of rt for produce (create: auto-creating it when allowed;
 * an invalid or internal name is EBADNAME) or for reading (an invalid name
 * names no topic: ENOTOPIC). Returns the topic or NULL with *err/msg set. */
static stream_topic *find_topic(stream_broker *b, const req_topic *rt, bool create, int *err,
                                char *msg, size_t msg_len)
{
    size_t len = strlen(rt->name);
    if (rt->name_err != 0) {
        if (create) {
            *err = STREAM_EBADNAME;
            stream_topic_name_check(rt->name, len, msg, msg_len);
        } else {
            *err = STREAM_ENOTOPIC;
            snprintf(msg, msg_len, "unknown topic '%s'", rt->name);
        }
        return NULL;
    }
    if (create && stream_topic_is_internal(rt->name, len)) {
        *err = STREAM_EBADNAME;
        snprintf(msg, msg_len, "topic '%s' is internal: clients cannot produce to it", rt->name);
        return NULL;
    }
    stream_topic *t = stream_store_topic(b->store, rt->name);
    if (t != NULL)
        return t;
    if (create && b->set.auto_create && b->repl_on) {
        /* A cluster creates topics through its controller: ask, and let the
         * producer retry (ENOTLEADER is retried after a metadata refresh). */
        if (b->repl.auto_create != NULL)
            b->repl.auto_create(b->repl_arg, rt->name);
        *err = b->repl.auto_create != NULL ? STREAM_ENOTLEADER : STREAM_ENOTOPIC;
        snprintf(msg, msg_len,
                 b->repl.auto_create != NULL
                     ? "topic '%s' does not exist yet: the cluster is creating it"
                     : "unknown topic '%s'",
                 rt->name);
        return NULL;
    }
    if (create && b->set.auto_create) {
        int rc = stream_store_create_topic(b->store, rt->name, -1, NULL, false, &t, msg, msg_len);
        if (rc == 0) {
            stream__blog(b, STREAM_BROKER_INFO, "auto-created topic %s with %d partitions",
                         rt->name, (int)t->partition_count);
            if (stream__broker_attach_topic(b, t) != 0)
                stream__blog(b, STREAM_BROKER_ERROR,
                             "topic %s: cannot attach to the flusher; acks=all will time out",
                             rt->name);
            stream__services_topic_created(b, t);
            return t;
        }
        *err = rc;
        return NULL;
    }
    *err = STREAM_ENOTOPIC;
    snprintf(msg, msg_len, "unknown topic '%s'", rt->name);
    return NULL;
}

/* The offset from which every batch of `log` was appended by this broker
 * process, or INT64_MAX when that cannot be recorded (no memory).
 *
 * Set the first time produce or fetch meets the log, to its end offset
 * then: every batch at or above it came in through produce, which checked
 * its CRC and header before writing it (stream_batch_check), or from the
 * broker's own group offsets. Batches below it were on disk when the broker
 * started; recovery vouches only for what it scanned, and after a clean stop
 * it scans nothing, so damage done to the files between runs would go
 * unnoticed. Those are CRC-checked by fetch before they are served
 * (checked_prefix); the others are sent as they are, with sendfile. What
 * could still damage them - the disk corrupting bytes under the page cache
 * while the broker runs - is what the consumer's own CRC check is for
 * (check_crc, on by default), as in Kafka, whose broker never checks a
 * fetch. Truncation only makes the bound more careful: offsets appended
 * again below it are checked. */
static int64_t trusted_from(stream_broker *b, stream_log *log, stream__pstate **psp)
{
    stream__pstate *ps = stream__pstate_get(b, log, true);
    if (psp != NULL)
        *psp = ps;
    if (ps == NULL)
        return INT64_MAX;
    if (!ps->trust_known) {
        ps->trust_known = true;
        ps->trusted_from = stream_log_end_offset(log);
    }
    return ps->trusted_from;
}

/* Reading partition `partition` of t at `offset` failed (`why`): the fetch
 * answers that partition alone with an error (msg gets its text), and the
 * broker logs it once until a read of the partition works again
 * (reset when one does). */
static void read_failed(stream_broker *b, const stream_topic *t, int32_t partition, stream_log *log,
                        int64_t offset, const char *why, char *msg, size_t msg_len)
{
    snprintf(msg, msg_len, "%s-%d: cannot read the log at offset %lld: %s", t->name,
             (int)partition, (long long)offset, why);
    stream__pstate *ps = stream__pstate_get(b, log, true);
    if (ps != NULL && ps->read_error_logged)
        return;
    if (ps != NULL)
        ps->read_error_logged = true;
    stream__blog(b, STREAM_BROKER_ERROR,
                 "%s (the fetch gets an error for this partition; logged once until reads work)",
                 msg);
}

static stream_log *find_partition(const stream_topic *t, int64_t partition, int *err, char *msg,
                                  size_t msg_len)
{
    if (partition < 0 || partition >= t->partition_count) {
        *err = STREAM_ENOPART;
        snprintf(msg, msg_len, "topic '%s' has no partition %lld (it has %d)", t->name,
                 (long long)partition, (int)t->partition_count);
        return NULL;
    }
    return t->partitions[partition];
}

/* With replication on: 0 when this broker leads `log`, else ENOTLEADER
 * with msg naming the leader it knows. *ps gets the partition's state. */
static int lead_check(stream_broker *b, const stream_topic *t, int32_t partition, stream_log *log,
                      stream__pstate **psp, char *msg, size_t msg_len)
{
    stream__pstate *ps = stream__pstate_get(b, log, false);
    if (psp != NULL)
        *psp = ps;
    if (!b->repl_on || (ps != NULL && ps->local))
        return 0; /* not replicated (a topic of this broker alone): served here */
    if (ps == NULL || !ps->repl_known) {
        snprintf(msg, msg_len,
                 "%.150s-%d: this broker (node %d) is catching up with the cluster's metadata",
                 t->name, (int)partition, (int)b->node_id);
        return STREAM_ENOTLEADER;
    }
    if (ps->role == STREAM__ROLE_LEADER)
        return 0;
    int32_t leader = ps->leader_id;
    if (leader >= 0)
        snprintf(msg, msg_len, "%.150s-%d: this broker (node %d) does not lead it; node %d does",
                 t->name, (int)partition, (int)b->node_id, (int)leader);
    else
        snprintf(msg, msg_len, "%.150s-%d: no leader right now (an election is under way)", t->name,
                 (int)partition);
    return STREAM_ENOTLEADER;
}

/* What acks=all waits for on log: its high watermark when replicated (every
 * in-sync replica has the records on disk), else its own durable offset. */
static int64_t acked_offset(stream_broker *b, stream_log *log)
{
    stream__pstate *ps = b->repl_on ? stream__pstate_get(b, log, false) : NULL;
    return ps != NULL && ps->repl_known ? ps->high_watermark : stream_log_durable_offset(log);
}

/* True when log is replicated (the replica manager gave it a role). */
static bool replicated(stream_broker *b, stream_log *log)
{
    stream__pstate *ps = b->repl_on ? stream__pstate_get(b, log, false) : NULL;
    return ps != NULL && ps->repl_known;
}

/* ======================================================================== */
/* produce                                                                   */
/* ======================================================================== */

typedef struct produce_part {
    int32_t partition;
    stream__produce_result res; /* err, msg, base_offset, log_start_offset, need_durable */
    int64_t appended_ns;      /* timing: when its append was done (0: no append) */
    int64_t append_us;        /* timing: the request's handling up to that */
    int64_t durable_us;       /* timing: from the append to the answer; -1 unknown */
    int64_t round_wait_us;    /* timing: from the append to its sync round's start; -1 */
    int64_t sync_us;          /* timing: that round's length; -1 */
} produce_part;

typedef struct produce_state {
    uint64_t id;
    bool timing;       /* the request asked where the time went (protocol.md 6.7) */
    int64_t start_ns;  /* timing: when the request's handling began */
    size_t ntopics, nparts;
    req_topic *topics;
    produce_part *parts;
} produce_state;

static void produce_state_free(produce_state *s)
{
    if (s == NULL)
        return;
    free(s->topics);
    free(s->parts);
    free(s);
}

static int produce_check(const msgpack_object *pm, size_t ti, size_t pi, char *msg, size_t msg_len)
{
    const uint8_t *p;
    size_t len;
    return stream_field_bin(pm, "records", &p, &len, msg, msg_len);
}

/* Checks every batch in the bin; returns 0 and the count, or the first
 * batch's error with msg. *idempotent says the (single) batch has a
 * producer id. */
static int check_batches(uint8_t *p, size_t len, int32_t max_message_bytes, size_t *count,
                         bool *idempotent, char *msg, size_t msg_len)
{
    size_t pos = 0, n = 0;
    *idempotent = false;
    if (len == 0) {
        snprintf(msg, msg_len, "records is empty: expected one or more record batches");
        return STREAM_EBADREQ;
    }
    while (pos < len) {
        stream_batch_info info;
        char why[160] = "";
        int rc = stream_batch_check(p + pos, len - pos, &info, why, sizeof(why));
        if (rc != 0) {
            if (rc == STREAM_ESHORT)
                rc = STREAM_ECORRUPT; /* a truncated batch inside a complete frame */
            snprintf(msg, msg_len, "batch %zu at byte %zu: %s", n, pos,
                     why[0] ? why : stream_strerror(rc));
            return rc;
        }
        if (info.attributes & (STREAM_BATCH_ATTR_TRANSACTIONAL | STREAM_BATCH_ATTR_CONTROL)) {
            snprintf(msg, msg_len, "batch %zu is transactional or a control batch: not supported",
                     n);
            return STREAM_EUNSUPPORTED;
        }
        if (info.size > (size_t)max_message_bytes) {
            snprintf(msg, msg_len, "batch %zu is %zu bytes, over max.message.bytes (%d)", n,
                     info.size, (int)max_message_bytes);
            return STREAM_ETOOLARGE;
        }
        if (info.producer_id >= 0)
            *idempotent = true;
        pos += info.size;
        n++;
    }
    if (*idempotent && n > 1) {
        /* As in Kafka: one sequence check per partition and request keeps
         * "all batches or none" true for idempotent producers too. */
        snprintf(msg, msg_len,
                 "records holds %zu batches, one of an idempotent producer: such a batch must "
                 "be the only one of its partition in a produce request",
                 n);
        return STREAM_EBADREQ;
    }
    *count = n;
    return 0;
}

/* Appends the batches of one partition. Returns bytes appended (>= 0). */
static int produce_partition(stream_broker *b, stream_topic *t, int32_t partition,
                             stream__produce_result *res, uint8_t *p, size_t len, int acks)
{
    bool acks_all = acks == -1;
    stream_log *log = find_partition(t, partition, &res->err, res->msg, sizeof(res->msg));
    if (log == NULL)
        return 0;
    res->err = lead_check(b, t, partition, log, NULL, res->msg, sizeof(res->msg));
    if (res->err == 0 && b->repl_on && b->repl.produce_check != NULL)
        res->err = b->repl.produce_check(b->repl_arg, log, acks, res->msg, sizeof(res->msg));
    if (res->err != 0)
        return 0;
    /* A log whose write or sync failed is recovered before anything else
     * (once a second at most while it keeps failing). */
    res->err = stream__partition_recover(b, t->name, partition, log, res->msg, sizeof(res->msg));
    if (res->err != 0)
        return 0;
    size_t count;
    bool idempotent;
    stream__pstate *ps = NULL;
    trusted_from(b, log, &ps); /* before the first append: see trusted_from */
    res->err = check_batches(p, len, t->log_config.max_message_bytes, &count, &idempotent, res->msg,
                             sizeof(res->msg));
    if (res->err != 0)
        return 0;
    if (idempotent) {
        int64_t dup;
        int rc = stream_log_check_producer(log, p, len, &dup, res->msg, sizeof(res->msg));
        if (rc == STREAM_LOG_DUPLICATE) {
            /* Answered as the first time; acks=all still waits until the
             * original is on disk. */
            res->base_offset = dup;
            stream__blog(b, STREAM_BROKER_DEBUG,
                         "%s-%d: a resent batch, stored before at offset %lld: not stored again",
                         t->name, (int)partition, (long long)dup);
            int64_t delta = (int32_t)stream_load_be32(p + STREAM_BATCH_OFF_LAST_OFFSET_DELTA);
            int64_t end = dup + delta + 1;
            if (acks_all &&
                (replicated(b, log) || t->log_config.flush_mode != STREAM_FLUSH_NEVER) &&
                acked_offset(b, log) < end) {
                res->need_durable = end;
                stream_log_request_flush(log);
            }
            res->log_start_offset = stream_log_start_offset(log);
            return 0;
        }
        if (rc != 0) {
            res->err = rc;
            return 0;
        }
    }
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        size_t size = 12 + (size_t)stream_load_be32(p + pos + 8);
        int64_t base;
        int rc = stream_log_append(log, p + pos, size, &base, res->msg, sizeof(res->msg));
        if (rc != 0) {
            res->err = rc;
            stream__blog(b, STREAM_BROKER_ERROR, "%s-%d: append failed: %s", t->name,
                         (int)partition, res->msg);
            break;
        }
        if (i == 0)
            res->base_offset = base;
        pos += size;
    }
    if (pos > 0) {
        if (ps != NULL) {
            ps->bytes_in += pos;
            ps->records_in += (uint64_t)(stream_log_end_offset(log) - res->base_offset);
        }
        stream__wait_on_append(b, log, pos);
        if (acks_all && (replicated(b, log) || t->log_config.flush_mode != STREAM_FLUSH_NEVER)) {
            res->need_durable = stream_log_end_offset(log);
            stream_log_request_flush(log);
        }
        if (res->err != 0)
            res->base_offset = -1; /* partly written: report the failure */
    }
    if (res->err == 0)
        res->log_start_offset = stream_log_start_offset(log);
    return 0;
}

static void produce_encode(stream__req *r, produce_state *s)
{
    stream_frame f;
    stream_buf_reset(&r->out);
    /* Room for the answer at once (under 100 bytes for a partition's entry
     * without a message), instead of growing there from 64 bytes. */
    stream_buf_reserve(&r->out, 64 + s->ntopics * 40 + s->nparts * 100);
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, s->id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, s->ntopics);
    for (size_t i = 0; i < s->ntopics; i++) {
        req_topic *rt = &s->topics[i];
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_cstr(&f.pk, "name", rt->name);
        stream_pack_key(&f.pk, "partitions");
        msgpack_pack_array(&f.pk, rt->count);
        for (size_t j = rt->first; j < rt->first + rt->count; j++) {
            produce_part *pp = &s->parts[j];
            bool timing = s->timing && pp->res.err == 0;
            msgpack_pack_map(&f.pk, 3 + stream_err_fields(pp->res.err) + timing);
            stream_pack_kv_int(&f.pk, "partition", pp->partition);
            stream_pack_err(&f.pk, pp->res.err, pp->res.msg);
            stream_pack_kv_int(&f.pk, "base_offset", pp->res.err ? -1 : pp->res.base_offset);
            stream_pack_kv_int(&f.pk, "log_start_offset",
                               pp->res.err ? -1 : pp->res.log_start_offset);
            if (timing) {
                stream_pack_key(&f.pk, "timing");
                msgpack_pack_map(&f.pk, 4);
                stream_pack_kv_int(&f.pk, "append_us", pp->append_us);
                stream_pack_kv_int(&f.pk, "durable_us", pp->durable_us);
                stream_pack_kv_int(&f.pk, "round_wait_us", pp->round_wait_us);
                stream_pack_kv_int(&f.pk, "sync_us", pp->sync_us);
            }
        }
    }
    stream__reply_finish(r, &f, s->id);
}

/* The verdict on a replicated partition of a parked acks=all produce: the
 * high watermark must have passed the records, this broker must still lead
 * the partition, and the ISR must still hold min.insync.replicas (Kafka's
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND: the ISR shrank while it waited). */
static void replicated_verdict(stream_broker *b, const char *topic, int32_t partition,
                               stream_log *log, stream__produce_result *res,
                               stream__wait_reason why)
{
    stream__pstate *ps = stream__pstate_get(b, log, false); /* replicated: it exists */
    if (ps->role != STREAM__ROLE_LEADER) {
        res->err = STREAM_ENOTLEADER;
        snprintf(res->msg, sizeof(res->msg),
                 "%.150s-%d: leadership moved while the records were replicated; not acknowledged "
                 "(an idempotent resend stores them once)",
                 topic, (int)partition);
        return;
    }
    if (b->repl.produce_check != NULL) {
        res->err = b->repl.produce_check(b->repl_arg, log, -1, res->msg, sizeof(res->msg));
        if (res->err != 0)
            return;
    }
    if (ps->high_watermark >= res->need_durable)
        return;
    res->err = why == STREAM__WAIT_IOERROR ? STREAM_EIO : STREAM_ETIMEDOUT;
    snprintf(res->msg, sizeof(res->msg),
             "%.150s-%d: written on the leader but not yet on disk on every in-sync replica within "
             "timeout_ms; not acknowledged",
             topic, (int)partition);
}

/* timing: where a parked partition's wait went, once it ends at now_ns: the
 * sync round on this broker's disk that covered its records (waiting for
 * it to start, then its fdatasyncs), and in all (the rest is waking up
 * and, replicated, the followers). */
static void time_durable(produce_part *pp, stream_log *log, int64_t now_ns)
{
    int64_t start, end;
    pp->durable_us = (now_ns - pp->appended_ns) / 1000;
    if (stream_log_sync_round(log, pp->res.need_durable, &start, &end)) {
        /* A round that covers the records began after their append, maybe
         * before appended_ns was read (the flusher runs on its own): then
         * it is counted from appended_ns. */
        if (start < pp->appended_ns)
            start = pp->appended_ns;
        pp->round_wait_us = (start - pp->appended_ns) / 1000;
        pp->sync_us = (end - start) / 1000;
    }
}

/* The verdict on one partition of an acks=all produce whose wait ended
 * (why): an error in res unless its records are durable (replicated: on
 * every in-sync replica). */
static void settle(stream_broker *b, const char *topic, int32_t partition, stream_log *log,
                   stream__produce_result *res, stream__wait_reason why)
{
    if (replicated(b, log)) {
        replicated_verdict(b, topic, partition, log, res, why);
    } else if (stream_log_durable_offset(log) < res->need_durable) {
        char what[300];
        int ioerr = stream_log_io_error(log, NULL, what, sizeof what);
        if (ioerr != 0) {
            res->err = ioerr;
            /* (cut to fit: the error code says the rest) */
            snprintf(res->msg, sizeof(res->msg), "not acknowledged: %.200s", what);
        } else if (why == STREAM__WAIT_IOERROR) {
            res->err = STREAM_EIO;
            snprintf(res->msg, sizeof(res->msg),
                     "not acknowledged: a sync failed on another partition of this "
                     "request; these records are written but not yet confirmed on disk");
        } else {
            res->err = STREAM_ETIMEDOUT;
            snprintf(res->msg, sizeof(res->msg),
                     "written but not yet flushed to disk within timeout_ms");
        }
    }
}

/* Completion of a parked acks=all produce. */
static void produce_done(stream_broker *b, stream__req *r, void *state, stream__wait_reason why)
{
    produce_state *s = state;
    if (why == STREAM__WAIT_CANCEL) {
        produce_state_free(s);
        return;
    }
    int64_t now_ns = s->timing ? stream__mono_ns() : 0;
    for (size_t i = 0; i < s->ntopics; i++) {
        req_topic *rt = &s->topics[i];
        for (size_t j = rt->first; j < rt->first + rt->count; j++) {
            produce_part *pp = &s->parts[j];
            if (pp->res.err != 0 || pp->res.need_durable == 0)
                continue;
            stream_log *log;
            if (stream_store_log(b->store, rt->name, pp->partition, &log) != 0) {
                pp->res.err = STREAM_ENOTOPIC;
                snprintf(pp->res.msg, sizeof(pp->res.msg), "topic '%s' was deleted", rt->name);
                continue;
            }
            if (s->timing && pp->appended_ns > 0)
                time_durable(pp, log, now_ns);
            settle(b, rt->name, pp->partition, log, &pp->res, why);
        }
    }
    produce_encode(r, s);
    produce_state_free(s);
}

void stream__op_produce(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    int64_t acks, timeout_ms;
    const msgpack_object *topics;
    size_t nparts;
    int rc = stream_field_int_opt(m, "acks", -1, 1, STREAM_DEFAULT_PRODUCE_ACKS, &acks, msg,
                                  sizeof(msg));
    if (rc == 0)
        rc = stream_field_int_opt(m, "timeout_ms", 0, INT32_MAX, STREAM_DEFAULT_PRODUCE_TIMEOUT_MS,
                                  &timeout_ms, msg, sizeof(msg));
    bool timing = false;
    if (rc == 0)
        rc = stream_field_bool_opt(m, "timing", false, &timing, msg, sizeof(msg));
    if (rc == 0)
        rc = scan_topics(m, produce_check, &topics, &nparts, msg, sizeof(msg));
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    produce_state *s = calloc(1, sizeof(*s));
    if (s) {
        s->id = id;
        s->timing = timing;
        s->start_ns = timing ? stream__mono_ns() : 0;
        s->ntopics = topics->via.array.size;
        s->nparts = nparts;
        s->topics = calloc(s->ntopics ? s->ntopics : 1, sizeof(*s->topics));
        s->parts = calloc(nparts ? nparts : 1, sizeof(*s->parts));
    }
    if (s == NULL || s->topics == NULL || s->parts == NULL) {
        produce_state_free(s);
        stream__reply_error(r, id, STREAM_ENOMEM, NULL);
        return;
    }
    bool parked_any = false;
    size_t k = 0;
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        req_topic *rt = &s->topics[i];
        const msgpack_object *parts;
        copy_topic(topics, i, rt, &parts);
        rt->first = k;
        rt->count = parts->via.array.size;
        int terr = 0;
        char tmsg[320];
        tmsg[0] = '\0';
        stream_topic *t = find_topic(b, rt, true, &terr, tmsg, sizeof(tmsg));
        for (uint32_t j = 0; j < parts->via.array.size; j++, k++) {
            produce_part *pp = &s->parts[k];
            const msgpack_object *pm;
            const uint8_t *bin;
            size_t bin_len;
            int64_t partition;
            stream_elem_map(parts, j, "partitions", &pm, NULL, 0);
            stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &partition, NULL, 0);
            stream_field_bin(pm, "records", &bin, &bin_len, NULL, 0);
            pp->partition = (int32_t)partition;
            pp->res.base_offset = -1;
            pp->res.log_start_offset = -1;
            pp->durable_us = pp->round_wait_us = pp->sync_us = -1;
            if (t == NULL) {
                pp->res.err = terr;
                snprintf(pp->res.msg, sizeof(pp->res.msg), "%s", tmsg);
                continue;
            }
            /* The frame buffer is the connection's own and writable: the log
             * stamps base offsets into the batches in place. */
            produce_partition(b, t, pp->partition, &pp->res, (uint8_t *)(uintptr_t)bin, bin_len,
                              (int)acks);
            if (timing) {
                pp->appended_ns = stream__mono_ns();
                pp->append_us = (pp->appended_ns - s->start_ns) / 1000;
            }
            if (pp->res.need_durable > 0)
                parked_any = true;
        }
    }
    if (acks == 0) {
        /* Nobody hears about a failure: the log is the only trace. */
        for (size_t i = 0; i < s->ntopics; i++)
            for (size_t j = s->topics[i].first; j < s->topics[i].first + s->topics[i].count; j++)
                if (s->parts[j].res.err != 0)
                    stream__blog(b, STREAM_BROKER_WARN,
                                 "connection %llu from %s: acks=0 produce to %s-%d failed: %s",
                                 (unsigned long long)c->id, c->peer, s->topics[i].name,
                                 (int)s->parts[j].partition, s->parts[j].res.msg);
        r->silent = true;
        produce_state_free(s);
        stream__req_complete(r);
        return;
    }
    if (!parked_any) {
        produce_encode(r, s);
        produce_state_free(s);
        return;
    }
    stream__waiter *w = stream__waiter_new(b, r, STREAM__WAIT_PRODUCE, nparts, produce_done, s);
    for (size_t i = 0; w && i < s->ntopics; i++) {
        req_topic *rt = &s->topics[i];
        for (size_t j = rt->first; j < rt->first + rt->count; j++) {
            produce_part *pp = &s->parts[j];
            stream_log *log;
            if (pp->res.need_durable == 0 ||
                stream_store_log(b->store, rt->name, pp->partition, &log) != 0)
                continue;
            if (stream__waiter_watch(w, log, pp->res.need_durable) != 0) {
                stream__waiter_discard(w);
                w = NULL;
            }
        }
    }
    if (w == NULL) {
        /* Cannot park: wait for the disk here rather than lie. */
        produce_done(b, r, s, STREAM__WAIT_TIMEOUT);
        return;
    }
    stream__waiter_start(w, (uint64_t)timeout_ms);
}

void stream__host_produce(stream_broker *b, const char *topic, size_t topic_len, int32_t partition,
                          uint8_t *records, size_t len, int acks, stream__produce_result *res)
{
    memset(res, 0, sizeof(*res));
    res->base_offset = -1;
    res->log_start_offset = -1;
    req_topic rt;
    name_topic(&rt, topic, topic_len);
    stream_topic *t = find_topic(b, &rt, true, &res->err, res->msg, sizeof(res->msg));
    if (t != NULL)
        produce_partition(b, t, partition, res, records, len, acks);
}

void stream__host_produce_settle(stream_broker *b, const char *topic, int32_t partition,
                                 stream__produce_result *res)
{
    if (res->err != 0 || res->need_durable == 0)
        return;
    stream_log *log;
    if (stream_store_log(b->store, topic, partition, &log) != 0) {
        res->err = STREAM_ENOTOPIC;
        snprintf(res->msg, sizeof(res->msg), "topic '%s' was deleted", topic);
        return;
    }
    settle(b, topic, partition, log, res, STREAM__WAIT_TIMEOUT);
}

stream_log *stream__host_partition_log(stream_broker *b, const char *topic, int32_t partition)
{
    stream_log *log;
    return stream_store_log(b->store, topic, partition, &log) == 0 ? log : NULL;
}

/* ======================================================================== */
/* fetch                                                                     */
/* ======================================================================== */

typedef struct fetch_part {
    int32_t partition;
    int64_t offset;
    size_t max_bytes;
    int32_t leader_epoch;   /* replica fetch: the epoch the follower follows; -1 unchecked */
    int64_t durable_offset; /* replica fetch: the follower's log is on disk below it */
    int err;                /* refused when the request came (replica checks) */
} fetch_part;

/* A fetch request, decoded. One allocation: topics and parts follow the
 * struct (a long poll is made and freed at every poll, so its pieces are
 * kept together). */
typedef struct fetch_state {
    uint64_t id;
    int version;                      /* the request's version, for the codec */
    const stream__fetch_codec *codec; /* how the response is written */
    int32_t replica_id; /* >= 0: a follower's fetch (reads up to the log end) */
    int64_t max_wait_ms;
    size_t min_bytes, max_bytes;
    size_t ntopics, nparts;
    req_topic *topics; /* ntopics, in the same block */
    fetch_part *parts; /* nparts, in the same block */
} fetch_state;

/* Fetches of up to this many topics and partitions (a consumer's usual
 * request) get their state from the broker's fetch pool, all of this size. */
#define FETCH_POOL_TOPICS 2
#define FETCH_POOL_PARTS  16
#define FETCH_POOL_BYTES                                                                  \
    (sizeof(fetch_state) + FETCH_POOL_TOPICS * sizeof(req_topic) +                         \
     FETCH_POOL_PARTS * sizeof(fetch_part))

static bool fetch_pooled(size_t ntopics, size_t nparts)
{
    return ntopics <= FETCH_POOL_TOPICS && nparts <= FETCH_POOL_PARTS;
}

/* A fetch_state with room for ntopics topics and nparts parts, its header
 * zeroed (op_fetch fills in every topic and part); NULL without memory.
 * ntopics and nparts are bounded by the frame's size. */
static fetch_state *fetch_state_new(stream_broker *b, size_t ntopics, size_t nparts)
{
    size_t tbytes = ntopics * sizeof(req_topic), pbytes = nparts * sizeof(fetch_part);
    if (ntopics > SIZE_MAX / sizeof(req_topic) || nparts > SIZE_MAX / sizeof(fetch_part) ||
        tbytes > SIZE_MAX - sizeof(fetch_state) - pbytes)
        return NULL;
    fetch_state *s;
    if (fetch_pooled(ntopics, nparts)) {
        s = stream__pool_alloc(&b->fetch_pool, FETCH_POOL_BYTES);
        if (s != NULL)
            memset(s, 0, sizeof(*s));
    } else {
        s = calloc(1, sizeof(fetch_state) + tbytes + pbytes);
    }
    if (s == NULL)
        return NULL;
    _Static_assert(sizeof(fetch_state) % _Alignof(req_topic) == 0 &&
                       sizeof(req_topic) % _Alignof(fetch_part) == 0,
                   "fetch_state's arrays are aligned");
    s->ntopics = ntopics;
    s->nparts = nparts;
    s->topics = (req_topic *)(s + 1);
    s->parts = (fetch_part *)(s->topics + ntopics);
    return s;
}

static void fetch_state_free(stream_broker *b, fetch_state *s)
{
    if (fetch_pooled(s->ntopics, s->nparts))
        stream__pool_put(&b->fetch_pool, s);
    else
        free(s);
}

static int fetch_check(const msgpack_object *pm, size_t ti, size_t pi, char *msg, size_t msg_len)
{
    int64_t v;
    int rc = stream_field_int(pm, "offset", INT64_MIN, INT64_MAX, &v, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "max_bytes", 1, INT32_MAX, STREAM_DEFAULT_PARTITION_MAX_BYTES,
                                  &v, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "leader_epoch", -1, INT32_MAX, -1, &v, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "durable_offset", -1, INT64_MAX, -1, &v, msg, msg_len);
    return rc;
}

/* Where a fetch of fp may read `log` up to: a follower up to the log end,
 * a consumer below the high watermark (replicated) or the log end (a single
 * broker). *hw gets the high watermark to report. */
static int64_t read_bound(stream_broker *b, const fetch_state *s, stream_log *log, int64_t *hw)
{
    int64_t end = stream_log_end_offset(log);
    if (!replicated(b, log)) {
        *hw = end;
        return INT64_MAX;
    }
    *hw = acked_offset(b, log);
    return s->replica_id >= 0 ? INT64_MAX : *hw;
}

/* stream_log_read, bounded as read_bound says. */
static int bounded_read(stream_broker *b, const fetch_state *s, stream_log *log, int64_t offset,
                        size_t max_bytes, stream_log_slice *sl, int64_t *hw)
{
    int64_t bound = read_bound(b, s, log, hw);
    if (bound == INT64_MAX)
        return stream_log_read(log, offset, max_bytes, sl);
    if (offset > bound && offset <= stream_log_end_offset(log)) {
        /* Above the high watermark, not above the log end: nothing yet. */
        memset(sl, 0, sizeof(*sl));
        return 0;
    }
    return stream_log_read_until(log, offset, max_bytes, bound, sl);
}

/* Bytes a fetch would return now (without reading them), and whether any
 * partition fails (a failing fetch is answered at once). */
static size_t fetch_measure(stream_broker *b, fetch_state *s, bool *failed)
{
    size_t total = 0;
    *failed = false;
    for (size_t i = 0; i < s->ntopics; i++) {
        req_topic *rt = &s->topics[i];
        stream_topic *t = rt->name_err ? NULL : stream_store_topic(b->store, rt->name);
        for (size_t j = rt->first; j < rt->first + rt->count; j++) {
            fetch_part *fp = &s->parts[j];
            if (t == NULL || fp->partition < 0 || fp->partition >= t->partition_count ||
                fp->err != 0) {
                *failed = true;
                continue;
            }
            stream_log_slice sl;
            int64_t hw;
            if (bounded_read(b, s, t->partitions[fp->partition], fp->offset, fp->max_bytes, &sl,
                             &hw) != 0) {
                *failed = true;
                continue;
            }
            total += sl.len;
            stream_log_slice_release(&sl);
        }
    }
    return total;
}

/* preads a slice into out (whose bin header says sl->len bytes); on a read
 * error out is unchanged and *err_no says why (0: the file was short). */
static int read_slice(stream_buf *out, const stream_log_slice *sl, int *err_no)
{
    if (stream_buf_reserve(out, sl->len) != 0)
        return STREAM_ENOMEM;
    size_t done = 0;
    while (done < sl->len) {
        ssize_t n =
            pread(sl->fd, out->data + out->len + done, sl->len - done, sl->pos + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err_no = n < 0 ? errno : 0;
            return STREAM_EIO;
        }
        done += (size_t)n;
    }
    out->len += sl->len;
    return 0;
}

/* Bytes of the run of batches at p (n bytes of whole stored batches) that
 * pass stream_batch_check; when one fails, *bad_offset and why say which and
 * how. Stored data is checked before it is served: recovery vouches only for
 * what it scanned, and bytes damaged on disk later (below the recovery point,
 * after a clean stop) must be reported, never sent. CRC-32C runs at memory
 * speed, so this costs little next to the pread. */
static size_t checked_prefix(const uint8_t *p, size_t n, int64_t *bad_offset, char *why,
                             size_t why_len)
{
    size_t pos = 0;
    while (pos < n) {
        stream_batch_info info;
        if (stream_batch_check(p + pos, n - pos, &info, why, why_len) != 0) {
            *bad_offset =
                stream_batch_header_decode(p + pos, n - pos, &info) == 0 ? info.base_offset : -1;
            break;
        }
        pos += info.size;
    }
    return pos;
}

/* The partition entry just encoded (from `mark` in f's buffer, its records
 * the last n bytes) holds a damaged or unreadable batch after `good` good
 * bytes: re-encodes it with the good prefix only, or as error err_if_none
 * when there is none (ECORRUPT: a client fetching from the damaged batch
 * then learns why it cannot get past it; EIO: the file could not be read).
 * Returns the record bytes left in the entry, or -1 without memory. */
static ssize_t recode_partial(const fetch_state *s, stream_frame *f, size_t mark, size_t n,
                              size_t good, int err_if_none, stream__fetch_answer *a)
{
    stream_buf *out = f->out;
    uint8_t *keep = NULL;
    if (good > 0) {
        keep = malloc(good);
        if (keep == NULL)
            return -1;
        memcpy(keep, out->data + out->len - n, good);
    }
    out->len = mark;
    a->err = good > 0 ? 0 : err_if_none;
    if (a->err != 0)
        a->high_watermark = a->log_start_offset = -1;
    s->codec->partition(f, s->version, a, good);
    stream_buf_put(out, keep, good);
    free(keep);
    return (ssize_t)good;
}

/* Finishes a fetch response: patches the frame's length, counting the file
 * pieces that go out between out's bytes, and completes r. */
static void fetch_finish(stream__req *r, stream_frame *f, const fetch_state *s)
{
    size_t n = r->out.len - f->start - STREAM_FRAME_HEADER_SIZE;
    int err = r->out.oom ? STREAM_ENOMEM : n + r->file_bytes > UINT32_MAX ? STREAM_ETOOLARGE : 0;
    if (err != 0) {
        stream__req_drop_files(r);
        stream_frame_abort(f);
        s->codec->fail(r, s->id, s->version, err);
        return;
    }
    stream_buf_patch_be32(&r->out, f->start, (uint32_t)(n + r->file_bytes));
    stream__req_complete(r);
}

/* A fetch response cannot be made (no memory): drops what was encoded and
 * answers with err instead. */
static void fetch_fail(stream__req *r, stream_frame *f, const fetch_state *s, int err)
{
    stream__req_drop_files(r);
    stream_frame_abort(f);
    s->codec->fail(r, s->id, s->version, err);
}

/* ---- the native protocol's fetch response (protocol.md 6.8) ---- */

static void native_begin(stream_frame *f, uint64_t id, int version, size_t ntopics)
{
    stream_pack_response_header(&f->pk, id, 0, NULL, 1);
    stream_pack_key(&f->pk, "topics");
    msgpack_pack_array(&f->pk, ntopics);
}

static void native_topic(stream_frame *f, int version, const char *name, size_t nparts)
{
    msgpack_pack_map(&f->pk, 2);
    stream_pack_kv_cstr(&f->pk, "name", name);
    stream_pack_key(&f->pk, "partitions");
    msgpack_pack_array(&f->pk, nparts);
}

static void native_partition(stream_frame *f, int version, const stream__fetch_answer *a,
                             size_t nbytes)
{
    msgpack_pack_map(&f->pk, 4 + stream_err_fields(a->err));
    stream_pack_kv_int(&f->pk, "partition", a->partition);
    stream_pack_err(&f->pk, a->err, a->msg);
    stream_pack_kv_int(&f->pk, "high_watermark", a->high_watermark);
    stream_pack_kv_int(&f->pk, "log_start_offset", a->log_start_offset);
    stream_pack_key(&f->pk, "records");
    msgpack_pack_bin(&f->pk, nbytes);
}

static void native_nothing(stream_frame *f, int version)
{
}

static void native_fail(stream__req *r, uint64_t id, int version, int err)
{
    stream__reply_error(r, id, err, err == STREAM_ETOOLARGE ? "response too large" : NULL);
}

static const stream__fetch_codec native_fetch_codec = {
    .begin = native_begin,
    .topic = native_topic,
    .partition = native_partition,
    .partition_end = native_nothing,
    .topic_end = native_nothing,
    .end = native_nothing,
    .fail = native_fail,
};

static void fetch_encode(stream_broker *b, stream__req *r, fetch_state *s)
{
    stream_frame f;
    stream__req_out_get(r);
    stream_buf_reset(&r->out);
    /* Room for an answer without records at once (about 100 bytes for a
     * partition's entry), instead of growing there from 64 bytes. */
    stream_buf_reserve(&r->out, 64 + s->ntopics * 40 + s->nparts * 100);
    stream_frame_start(&f, &r->out);
    s->codec->begin(&f, s->id, s->version, s->ntopics);
    size_t used = 0; /* record bytes in the response so far */
    for (size_t i = 0; i < s->ntopics; i++) {
        req_topic *rt = &s->topics[i];
        int terr = 0;
        char tmsg[320];
        tmsg[0] = '\0';
        stream_topic *t = find_topic(b, rt, false, &terr, tmsg, sizeof(tmsg));
        s->codec->topic(&f, s->version, rt->name, rt->count);
        for (size_t j = rt->first; j < rt->first + rt->count; j++) {
            fetch_part *fp = &s->parts[j];
            int err = terr;
            char msg[320];
            memcpy(msg, tmsg, strlen(tmsg) + 1);
            stream_log *log = t ? find_partition(t, fp->partition, &err, msg, sizeof(msg)) : NULL;
            if (log != NULL && fp->err != 0) {
                err = fp->err;
                if (err == STREAM_ENOTLEADER)
                    (void)lead_check(b, t, fp->partition, log, NULL, msg, sizeof(msg));
                else
                    snprintf(msg, sizeof(msg), "%.150s-%d: replica fetch refused: %s", t->name,
                             (int)fp->partition, stream_strerror(err));
                log = NULL;
            } else if (log != NULL && s->replica_id < 0) {
                /* Leadership may have moved while the fetch was parked. */
                err = lead_check(b, t, fp->partition, log, NULL, msg, sizeof(msg));
                if (err != 0)
                    log = NULL;
            }
            stream_log_slice sl = {0};
            int64_t hwm = -1, lso = -1, trusted = INT64_MAX;
            stream__pstate *ps = NULL;
            if (log) {
                trusted = trusted_from(b, log, &ps);
                size_t left = used < s->max_bytes ? s->max_bytes - used : 0;
                size_t limit = fp->max_bytes < left ? fp->max_bytes : left;
                err = bounded_read(b, s, log, fp->offset, limit ? limit : 1, &sl, &hwm);
                /* stream_log_read returns the first batch whole however large:
                 * right for the first partition with data, too much after. */
                if (err == 0 && sl.len > limit && used > 0)
                    sl.len = 0;
                lso = stream_log_start_offset(log);
                if (err == STREAM_EOFFSET)
                    snprintf(msg, sizeof(msg),
                             "offset %lld is out of range for %s-%d (log start %lld, "
                             "high watermark %lld)",
                             (long long)fp->offset, t->name, (int)fp->partition, (long long)lso,
                             (long long)hwm);
                else if (err != 0) {
                    read_failed(b, t, fp->partition, log, fp->offset, stream_strerror(err), msg,
                                sizeof(msg));
                    hwm = lso = -1;
                }
            }
            size_t n = err == 0 ? sl.len : 0;
            size_t mark = r->out.len; /* where this partition's entry starts */
            stream__fetch_answer ans = {.partition = fp->partition,
                                        .err = err,
                                        .msg = msg,
                                        .high_watermark = hwm,
                                        .log_start_offset = lso};
            s->codec->partition(&f, s->version, &ans, n);
            if (n > 0 && sl.first_offset >= trusted) {
                if (ps != NULL)
                    ps->read_error_logged = false; /* see read_failed */
                /* Written by this process: sent from the file (sendfile). */
                if (stream__req_add_file(r, &sl, log) != 0) {
                    fetch_fail(r, &f, s, STREAM_ENOMEM);
                    return;
                }
                used += n;
                if (ps != NULL)
                    ps->bytes_out += n; /* metrics */
                s->codec->partition_end(&f, s->version);
                continue;
            }
            int rerr = 0, rrc = n > 0 ? read_slice(&r->out, &sl, &rerr) : 0;
            if (rrc == STREAM_ENOMEM) {
                stream_log_slice_release(&sl);
                fetch_fail(r, &f, s, STREAM_ENOMEM);
                return;
            }
            if (rrc != 0) {
                /* Nothing unread is sent: the partition gets the error. */
                read_failed(b, t, fp->partition, log, fp->offset,
                            rerr ? strerror(rerr) : "the file is shorter than its index", msg,
                            sizeof(msg));
                stream_log_slice_release(&sl);
                (void)recode_partial(s, &f, mark, 0, 0, STREAM_EIO, &ans);
                s->codec->partition_end(&f, s->version);
                continue;
            }
            if (n > 0 && ps != NULL)
                ps->read_error_logged = false;
            int64_t bad = -1;
            char why[200] = "";
            size_t good =
                n > 0 ? checked_prefix(r->out.data + r->out.len - n, n, &bad, why, sizeof(why)) : 0;
            if (good < n) {
                stream__blog(b, STREAM_BROKER_ERROR,
                             "%s-%d: stored batch at offset %lld is damaged (%s); not served",
                             t->name, (int)fp->partition, (long long)bad, why);
                snprintf(msg, sizeof(msg), "%s-%d: stored batch at offset %lld is damaged: %s",
                         t->name, (int)fp->partition, (long long)bad, why);
                ssize_t left = recode_partial(s, &f, mark, n, good, STREAM_ECORRUPT, &ans);
                if (left < 0) {
                    stream_log_slice_release(&sl);
                    fetch_fail(r, &f, s, STREAM_ENOMEM);
                    return;
                }
                n = (size_t)left;
            }
            used += n;
            if (ps != NULL)
                ps->bytes_out += n; /* metrics */
            stream_log_slice_release(&sl);
            s->codec->partition_end(&f, s->version);
        }
        s->codec->topic_end(&f, s->version);
    }
    s->codec->end(&f, s->version);
    fetch_finish(r, &f, s);
}

static void fetch_run(stream_broker *b, stream__req *r, fetch_state *s);

static void fetch_done(stream_broker *b, stream__req *r, void *state, stream__wait_reason why)
{
    fetch_state *s = state;
    if (why != STREAM__WAIT_CANCEL)
        fetch_encode(b, r, s);
    fetch_state_free(b, s);
}

/* With replication on, checks fp when the request comes: a follower's fetch
 * is reported to the replica manager (which learns the follower's log end
 * and may refuse it), a consumer's must reach the leader. Sets fp->err. */
static void fetch_part_admit(stream_broker *b, fetch_state *s, const req_topic *rt, fetch_part *fp)
{
    stream_topic *t = rt->name_err ? NULL : stream_store_topic(b->store, rt->name);
    if (t == NULL || fp->partition < 0 || fp->partition >= t->partition_count)
        return; /* answered with ENOTOPIC / ENOPART as usual */
    stream_log *log = t->partitions[fp->partition];
    char msg[320];
    if (s->replica_id >= 0)
        fp->err = b->repl.replica_fetch(b->repl_arg, log, s->replica_id, fp->leader_epoch,
                                        fp->offset, fp->durable_offset, msg, sizeof(msg));
    else
        fp->err = lead_check(b, t, fp->partition, log, NULL, msg, sizeof(msg));
}

void stream__op_fetch(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    int64_t max_wait_ms, min_bytes, max_bytes;
    const msgpack_object *topics;
    size_t nparts;
    int rc = stream_field_int_opt(m, "max_wait_ms", 0, INT32_MAX, STREAM_DEFAULT_FETCH_MAX_WAIT_MS,
                                  &max_wait_ms, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int_opt(m, "min_bytes", 0, INT32_MAX, STREAM_DEFAULT_FETCH_MIN_BYTES,
                                  &min_bytes, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int_opt(m, "max_bytes", 1, INT32_MAX, STREAM_DEFAULT_FETCH_MAX_BYTES,
                                  &max_bytes, msg, sizeof(msg));
    int64_t replica_id = -1;
    if (rc == 0)
        rc = stream_field_int_opt(m, "replica_id", -1, INT32_MAX, -1, &replica_id, msg,
                                  sizeof(msg));
    if (rc == 0 && replica_id >= 0 && (!b->repl_on || b->repl.replica_fetch == NULL)) {
        rc = STREAM_EUNSUPPORTED;
        snprintf(msg, sizeof(msg), "replica fetch: this broker is not part of a cluster");
    }
    if (rc == 0)
        rc = scan_topics(m, fetch_check, &topics, &nparts, msg, sizeof(msg));
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    /* The response is held until the client reads it: one larger than
     * connection.max.output.bytes would defeat that per-connection bound
     * (max_bytes is a soft limit; the client fetches the rest next time). */
    if ((uint64_t)max_bytes > (uint64_t)b->set.max_output_bytes)
        max_bytes = (int64_t)b->set.max_output_bytes;
    fetch_state *s = fetch_state_new(b, topics->via.array.size, nparts);
    if (s == NULL) {
        stream__reply_error(r, id, STREAM_ENOMEM, NULL);
        return;
    }
    s->id = id;
    s->codec = &native_fetch_codec;
    s->replica_id = (int32_t)replica_id;
    s->max_wait_ms = max_wait_ms;
    s->min_bytes = (size_t)min_bytes;
    s->max_bytes = (size_t)max_bytes;
    size_t k = 0;
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        req_topic *rt = &s->topics[i];
        const msgpack_object *parts;
        copy_topic(topics, i, rt, &parts);
        rt->first = k;
        rt->count = parts->via.array.size;
        for (uint32_t j = 0; j < parts->via.array.size; j++, k++) {
            const msgpack_object *pm;
            int64_t v;
            fetch_part *fp = &s->parts[k];
            stream_elem_map(parts, j, "partitions", &pm, NULL, 0);
            stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &v, NULL, 0);
            fp->partition = (int32_t)v;
            stream_field_int(pm, "offset", INT64_MIN, INT64_MAX, &fp->offset, NULL, 0);
            stream_field_int_opt(pm, "max_bytes", 1, INT32_MAX, STREAM_DEFAULT_PARTITION_MAX_BYTES,
                                 &v, NULL, 0);
            fp->max_bytes = (size_t)v;
            stream_field_int_opt(pm, "leader_epoch", -1, INT32_MAX, -1, &v, NULL, 0);
            fp->leader_epoch = (int32_t)v;
            stream_field_int_opt(pm, "durable_offset", -1, INT64_MAX, -1, &fp->durable_offset,
                                 NULL, 0);
            fp->err = 0;
            if (b->repl_on)
                fetch_part_admit(b, s, rt, fp);
        }
    }
    fetch_run(b, r, s);
}

/* Answers the fetch s (owned) for r now, or parks it until enough data
 * came or its max_wait_ms passed. */
static void fetch_run(stream_broker *b, stream__req *r, fetch_state *s)
{
    stream__conn *c = r->conn;
    /* A follower's next fetch while its long poll is parked here answers
     * that poll now. Answers leave in request order, so this one (often
     * just a report of the follower's durable offset, max_wait 0) would
     * wait behind the poll, and the follower, two requests out, sends no
     * newer report: with acks=all producers waiting on that report for
     * the high watermark, nothing new comes to wake the poll before its
     * max_wait (the follower's 500 ms: e2e max 480 ms at 10,000/s). */
    if (s->replica_id >= 0) {
        for (stream__req *q = c->head; q != NULL && q != r; q = q->next) {
            if (q->waiter != NULL && q->waiter->kind == STREAM__WAIT_FETCH && q->waiter->replica) {
                stream__waiter_finish(q->waiter, STREAM__WAIT_READY);
                break;
            }
        }
        if (c->closing) { /* writing that answer failed: r went with the connection */
            fetch_state_free(b, s);
            return;
        }
    }
    bool failed;
    size_t avail = fetch_measure(b, s, &failed);
    if (failed || s->max_wait_ms == 0 || avail >= s->min_bytes || b->stopping) {
        fetch_encode(b, r, s);
        fetch_state_free(b, s);
        return;
    }
    stream__waiter *w = stream__waiter_new(b, r, STREAM__WAIT_FETCH, s->nparts, fetch_done, s);
    for (size_t i = 0; w && i < s->ntopics; i++) {
        stream_topic *t = stream_store_topic(b->store, s->topics[i].name);
        for (size_t j = s->topics[i].first; w && j < s->topics[i].first + s->topics[i].count; j++) {
            if (stream__waiter_watch(w, t->partitions[s->parts[j].partition], 0) != 0) {
                stream__waiter_discard(w);
                w = NULL;
            }
        }
    }
    if (w == NULL) {
        fetch_encode(b, r, s);
        fetch_state_free(b, s);
        return;
    }
    w->min_bytes = s->min_bytes;
    w->got_bytes = avail;
    w->replica = s->replica_id >= 0;
    /* Its buffer serves other requests meanwhile; the answer takes a warm
     * one from the pool when it is encoded (fetch_encode). */
    stream__req_out_put(r);
    stream__waiter_start(w, (uint64_t)s->max_wait_ms);
}

void stream__host_fetch(stream_broker *b, stream__req *r, uint64_t id, int version,
                        const stream__fetch_codec *codec, int64_t max_wait_ms, size_t min_bytes,
                        size_t max_bytes, const stream__fetch_topic *topics, size_t ntopics,
                        const stream__fetch_part *parts, size_t nparts)
{
    fetch_state *s = fetch_state_new(b, ntopics, nparts);
    if (s == NULL) {
        codec->fail(r, id, version, STREAM_ENOMEM);
        return;
    }
    s->id = id;
    s->version = version;
    s->codec = codec;
    s->replica_id = -1;
    s->max_wait_ms = max_wait_ms < 0 ? 0 : max_wait_ms;
    s->min_bytes = min_bytes;
    /* As the native fetch: a response is held until the client reads it. */
    s->max_bytes = max_bytes > b->set.max_output_bytes ? b->set.max_output_bytes : max_bytes;
    size_t k = 0;
    for (size_t i = 0; i < ntopics; i++) {
        req_topic *rt = &s->topics[i];
        name_topic(rt, topics[i].name, topics[i].name_len);
        rt->first = k;
        rt->count = topics[i].nparts <= nparts - k ? topics[i].nparts : nparts - k;
        for (size_t j = 0; j < rt->count; j++, k++) {
            fetch_part *fp = &s->parts[k];
            fp->partition = parts[k].partition;
            fp->offset = parts[k].offset;
            fp->max_bytes = parts[k].max_bytes > 0 ? parts[k].max_bytes : 1;
            fp->leader_epoch = -1;
            fp->durable_offset = -1;
            fp->err = 0;
            if (b->repl_on)
                fetch_part_admit(b, s, rt, fp);
        }
    }
    fetch_run(b, r, s);
}

/* ======================================================================== */
/* list_offsets                                                              */
/* ======================================================================== */

static int list_offsets_check(const msgpack_object *pm, size_t ti, size_t pi, char *msg,
                              size_t msg_len)
{
    int64_t ts;
    return stream_field_int(pm, "timestamp", INT64_MIN, INT64_MAX, &ts, msg, msg_len);
}

/* The timestamp of the record at `offset` (which exists), or -1. Reads the
 * batch holding it: list_offsets is rare and small. */
static int64_t record_timestamp(stream_log *log, int64_t offset)
{
    stream_buf buf = STREAM_BUF_INIT;
    int64_t ts = -1;
    if (stream_log_read_copy(log, offset, 1, &buf) == 0 && buf.len > 0) {
        stream_record_iter it;
        stream_record rec;
        int rc = stream_record_iter_start(&it, buf.data, buf.len);
        while (rc >= 0 && (rc = stream_record_iter_next(&it, &rec)) == 1) {
            if (rec.offset == offset) {
                ts = rec.timestamp;
                break;
            }
        }
        stream_record_iter_stop(&it);
    }
    stream_buf_release(&buf);
    return ts;
}

/* One list_offsets lookup. Returns 0 or the partition's error with msg. */
static int lookup_offset(stream_log *log, int64_t ts, int64_t *offset, int64_t *found_ts, char *msg,
                         size_t msg_len)
{
    *found_ts = -1;
    if (ts == STREAM_OFFSET_EARLIEST) {
        *offset = stream_log_start_offset(log);
        return 0;
    }
    if (ts == STREAM_OFFSET_LATEST) {
        *offset = stream_log_end_offset(log);
        return 0;
    }
    if (ts < 0) {
        snprintf(msg, msg_len,
                 "timestamp %lld: expected -2 (earliest), -1 (latest) or ms since the epoch",
                 (long long)ts);
        return STREAM_EINVAL;
    }
    int rc = stream_log_offset_for_time(log, ts, offset);
    if (rc != 0) {
        snprintf(msg, msg_len, "%s", stream_strerror(rc));
        return rc;
    }
    if (*offset < stream_log_end_offset(log))
        *found_ts = record_timestamp(log, *offset);
    return 0;
}

/* The list_offsets answer for partition of t at timestamp ts: 0 with
 * *offset, *found_ts, *lso and *hwm, or the error with msg (all -1). */
static int list_offset_part(stream_broker *b, stream_topic *t, int32_t partition, int64_t ts,
                            int64_t *offset, int64_t *found_ts, int64_t *lso, int64_t *hwm,
                            char *msg, size_t msg_len)
{
    int err = 0;
    *offset = *found_ts = *lso = *hwm = -1;
    stream_log *log = find_partition(t, partition, &err, msg, msg_len);
    if (log != NULL)
        err = lead_check(b, t, partition, log, NULL, msg, msg_len);
    if (err == 0)
        err = lookup_offset(log, ts, offset, found_ts, msg, msg_len);
    if (err != 0) {
        *offset = *found_ts = -1;
        return err;
    }
    *lso = stream_log_start_offset(log);
    *hwm = replicated(b, log) ? acked_offset(b, log) : stream_log_end_offset(log);
    if (*offset > *hwm) {
        /* Consumers see nothing above the high watermark. */
        *offset = *hwm;
        *found_ts = -1;
    }
    return 0;
}

int stream__host_list_offset(stream_broker *b, const char *topic, size_t topic_len,
                             int32_t partition, int64_t ts, int64_t *offset, int64_t *found_ts,
                             char *msg, size_t msg_len)
{
    req_topic rt;
    int err = 0;
    int64_t lso, hwm;
    *offset = *found_ts = -1;
    name_topic(&rt, topic, topic_len);
    stream_topic *t = find_topic(b, &rt, false, &err, msg, msg_len);
    if (t == NULL)
        return err;
    return list_offset_part(b, t, partition, ts, offset, found_ts, &lso, &hwm, msg, msg_len);
}

void stream__op_list_offsets(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    const msgpack_object *topics;
    size_t nparts;
    int rc = scan_topics(m, list_offsets_check, &topics, &nparts, msg, sizeof(msg));
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, topics->via.array.size);
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        req_topic rt;
        const msgpack_object *parts;
        copy_topic(topics, i, &rt, &parts);
        int terr = 0;
        char tmsg[320];
        tmsg[0] = '\0';
        stream_topic *t = find_topic(b, &rt, false, &terr, tmsg, sizeof(tmsg));
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_cstr(&f.pk, "name", rt.name);
        stream_pack_key(&f.pk, "partitions");
        msgpack_pack_array(&f.pk, parts->via.array.size);
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *pm;
            int64_t partition, ts, offset = -1, found_ts = -1, lso = -1, hwm = -1;
            stream_elem_map(parts, j, "partitions", &pm, NULL, 0);
            stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &partition, NULL, 0);
            stream_field_int(pm, "timestamp", INT64_MIN, INT64_MAX, &ts, NULL, 0);
            int err = terr;
            snprintf(msg, sizeof(msg), "%s", tmsg);
            if (t != NULL)
                err = list_offset_part(b, t, (int32_t)partition, ts, &offset, &found_ts, &lso, &hwm,
                                       msg, sizeof(msg));
            msgpack_pack_map(&f.pk, 5 + stream_err_fields(err));
            stream_pack_kv_int(&f.pk, "partition", partition);
            stream_pack_err(&f.pk, err, msg);
            stream_pack_kv_int(&f.pk, "offset", offset);
            stream_pack_kv_int(&f.pk, "timestamp", found_ts);
            stream_pack_kv_int(&f.pk, "log_start_offset", lso);
            stream_pack_kv_int(&f.pk, "high_watermark", hwm);
        }
    }
    stream__reply_finish(r, &f, id);
}

/* ======================================================================== */
/* init_producer_id                                                          */
/* ======================================================================== */

int stream__host_producer_id(stream_broker *b, int64_t *pid, char *msg, size_t msg_len)
{
    int rc = stream__producer_ids_next(&b->producer_ids, b->data_dir, pid, msg, msg_len);
    if (rc == 0 && b->repl_on) {
        /* Each broker of a cluster hands out ids from its own blocks: its
         * node id in the high bits keeps them apart (a producer's batches
         * meet another broker's ids on every partition it writes). */
        *pid = (int64_t)(((uint64_t)(uint32_t)b->node_id << 40) |
                         ((uint64_t)*pid & ((UINT64_C(1) << 40) - 1)));
    }
    if (rc != 0)
        stream__blog(b, STREAM_BROKER_ERROR, "init_producer_id: %s", msg);
    return rc;
}

void stream__op_init_producer_id(stream__conn *c, stream__req *r, uint64_t id,
                                 const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    int64_t pid;
    int rc = stream__host_producer_id(b, &pid, msg, sizeof(msg));
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    stream__blog(b, STREAM_BROKER_DEBUG, "connection %llu from %s: producer id %lld",
                 (unsigned long long)c->id, c->peer, (long long)pid);
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, 2);
    stream_pack_kv_int(&f.pk, "producer_id", pid);
    stream_pack_kv_int(&f.pk, "producer_epoch", 0);
    stream__reply_finish(r, &f, id);
}
