/*
 * consumer.c - a standalone consumer: assigned partitions, positions, fetch
 * ahead, long polls, records borrowed from the fetch buffer.
 *
 * Two offsets per partition:
 *
 *   position      the next offset stream_consumer_poll returns
 *   fetch_offset  the next offset to ask the broker for; records in
 *                 [position, fetch_offset) sit in fetch buffers already
 *
 * At most one fetch is in flight per connection (on a single broker: one),
 * each partition in one fetch at a time, and fetches are sent only while at
 * most one response is waiting to be consumed (the one being consumed
 * counts), so a caller working through a response has the next one coming
 * meanwhile, and memory stays within about two responses (2 x max_bytes;
 * in a cluster, one more per leader).
 *
 * Leaders: a partition is fetched from its leader as the client's metadata
 * names it (client_internal.h, "routing"). When its fetch fails for the
 * connection (the broker died) or the leader says ENOTLEADER, the topic's
 * metadata is refreshed and the partition fetched again after a backoff from
 * fetch_offset, on whichever broker leads then: the records before it are
 * in the buffers, in order, so none is returned twice or skipped.
 *
 * A large response stays in the buffer it was received in: the consumer
 * takes that buffer from the client (stream__resp_take), hands out records
 * straight from it, and gives it back when the response is used up, so the
 * records are never copied in this process and the same memory is read into
 * again. A small response (or one the client cannot hand over) has its
 * records bins copied into one allocation.
 * Every assigned partition has an epoch, bumped by seek, unassign and offset
 * resets; fetched data tagged with an older epoch is dropped unread.
 *
 * Group mode (group_client.c): the group code starts, halts and releases
 * partitions through the stream__consumer_* calls below as the coordinator
 * hands them out and takes them back, and queues its ASSIGNED / REVOKED
 * events here so they reach the caller in order with the records.
 *
 * Errors in a partition's answer are handled in order, when the consumer
 * reaches that answer: offset out of range follows auto_offset_reset;
 * retriable errors back off and refetch; others become an ERROR event and
 * pause the partition until seek. Transport failures of the fetch itself
 * back off and refetch from fetch_offset.
 *
 * Wire format (share/doc/protocol.md, "fetch"):
 *   request  {max_wait_ms, min_bytes, max_bytes, topics: [{name, partitions:
 *            [{partition, offset, max_bytes}]}]}
 *   response {topics: [{name, partitions: [{partition, err, msg?,
 *            high_watermark, log_start_offset, records: bin}]}]}
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "stream/error.h"

typedef struct cpart {
    char *topic; /* owned */
    int32_t partition;
    bool assigned;              /* false after unassign (kept: fetch data may point here) */
    int64_t position;           /* next offset to return */
    int64_t fetch_offset;       /* next offset to fetch */
    int64_t end;                /* stop before this offset; -1: follow */
    int64_t high_watermark;     /* last seen; -1 unknown */
    int64_t log_start;          /* last seen; -1 unknown */
    uint32_t epoch;             /* data fetched under another epoch is dropped */
    bool paused;                /* after an error: until seek */
    bool halted;                /* group: revoked, no fetch or record until released */
    void *group_data;           /* group: its partition in group_client.c */
    bool done;                  /* reached end */
    bool blocked;               /* an error answer waits to be processed: no fetch */
    bool caught_up;             /* follow mode: EOF reported since the last record */
    int64_t retry_at_ms;        /* monotonic: no fetch before (backoff) */
    int backoff_ms;             /* current backoff */
    bool in_fetch;              /* in a fetch in flight (one at a time, whichever leader) */
    int64_t max_high_watermark; /* the highest high watermark any leader reported */
    int lag_retries;            /* see lagging_leader */
} cpart;

/* One partition's answer in a fetch response. */
typedef struct fentry {
    cpart *cp;
    uint32_t epoch; /* cp's epoch when the fetch was sent */
    int err;
    char *msg;              /* owned, when err */
    int64_t high_watermark; /* -1 when not given */
    int64_t log_start;
    const uint8_t *records; /* into fbuf.data */
    size_t len;
} fentry;

/* A fetch response being consumed or waiting to be. */
typedef struct fbuf {
    struct fbuf *next;
    uint8_t *data;   /* the client's receive buffer (taken), or the records bins copied */
    size_t data_cap; /* taken: the buffer's size, for stream__client_give_back; else 0 */
    fentry *entries;
    size_t n;
    size_t ei;          /* the entry being consumed */
    size_t boff;        /* offset of the next batch in entries[ei] */
    bool entry_started; /* entries[ei] has been begun */
    bool iter_active;   /* it is over a batch of entries[ei] */
    stream_record_iter it;
} fbuf;

typedef struct cevent {
    stream_event_type type;
    cpart *cp; /* NULL for an event about the whole group */
    int64_t offset;
    int err;
    char *msg;
    int64_t log_start, high_watermark;
} cevent;

struct stream_consumer {
    stream_client *c;
    stream_consumer_conf conf;
    cpart **parts;
    size_t nparts, parts_cap;
    fbuf *cur;                     /* being consumed */
    fbuf *queue_head, *queue_tail; /* arrived, not yet consumed */
    size_t queued;                 /* responses in cur + queue */
    struct fetch_ctx *fetches;     /* fetches in flight, one per connection at most */
    int32_t *routes;               /* consumer_tick's scratch: each part's route */
    size_t routes_cap;
    cevent *events; /* pending EOF / ERROR events, FIFO */
    size_t nevents, events_cap, events_head;
    char *last_msg;        /* the msg of the last event returned (borrowed by it) */
    size_t rotate;         /* where the next fetch starts in parts (fairness) */
    stream__cgroup *group; /* group membership, NULL for a standalone consumer */
    cpart *returned;       /* group: the partition of the record the last poll returned */
};

typedef struct fetch_ctx {
    struct fetch_ctx *next; /* the consumer's fetches in flight */
    stream_consumer *co;
    int32_t node; /* the node it went to (or STREAM__NODE_BOOTSTRAP) */
    int64_t id;   /* the client's request id */
    size_t n;
    cpart **cps;
    uint32_t *epochs;
} fetch_ctx;

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
/* Responses with at least this many record bytes are kept in the client's
 * receive buffer instead of copied (smaller ones may share it). */
#define TAKE_MIN_BYTES (64 * 1024)

/* ---- configuration ------------------------------------------------------- */

void stream_consumer_conf_init(stream_consumer_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->max_wait_ms = 500;
    conf->min_bytes = 1;
    conf->max_bytes = 8 << 20;
    conf->max_partition_bytes = 2 << 20;
    conf->stop_at_end = false;
    conf->auto_offset_reset = STREAM_RESET_ERROR;
    conf->check_crc = true;
}

static int64_t consumer_tick(void *arg, int64_t now);

int stream_consumer_new(stream_client *c, const stream_consumer_conf *conf, stream_consumer **out,
                        char *errbuf, size_t errbuf_len)
{
    stream_consumer_conf dflt;
    *out = NULL;
    if (!conf) {
        stream_consumer_conf_init(&dflt);
        conf = &dflt;
    }
    if (conf->max_wait_ms < 0 || conf->max_wait_ms > 3600000 || conf->min_bytes < 0 ||
        conf->max_bytes < 1 || conf->max_partition_bytes < 1 ||
        (unsigned)conf->auto_offset_reset > STREAM_RESET_LATEST) {
        stream__errf(errbuf, errbuf_len,
                     "consumer settings: max_wait_ms 0..3600000, min_bytes >= 0, max_bytes and "
                     "max_partition_bytes >= 1, auto_offset_reset earliest/latest/error");
        return STREAM_EINVAL;
    }
    stream_consumer *co = calloc(1, sizeof *co);
    if (!co)
        return STREAM_ENOMEM;
    co->c = c;
    co->conf = *conf;
    if (stream__client_add_tick(c, consumer_tick, co) < 0) {
        free(co);
        return STREAM_ENOMEM;
    }
    *out = co;
    return 0;
}

static void fbuf_free(stream_consumer *co, fbuf *b)
{
    if (!b)
        return;
    if (b->iter_active)
        stream_record_iter_stop(&b->it);
    for (size_t i = 0; i < b->n; i++)
        free(b->entries[i].msg);
    free(b->entries);
    if (b->data_cap)
        stream__client_give_back(co->c, b->data, b->data_cap);
    else
        free(b->data);
    free(b);
}

static void fetch_ctx_free(fetch_ctx *f)
{
    if (!f)
        return;
    free(f->cps);
    free(f->epochs);
    free(f);
}

void stream_consumer_free(stream_consumer *co)
{
    if (!co)
        return;
    stream__cgroup_free(co->group);
    stream__client_remove_tick(co->c, consumer_tick, co);
    while (co->fetches) {
        fetch_ctx *f = co->fetches;
        co->fetches = f->next;
        stream__req_cancel(co->c, f->id);
        fetch_ctx_free(f);
    }
    fbuf_free(co, co->cur);
    while (co->queue_head) {
        fbuf *b = co->queue_head;
        co->queue_head = b->next;
        fbuf_free(co, b);
    }
    for (size_t i = co->events_head; i < co->nevents; i++)
        free(co->events[i].msg);
    free(co->events);
    free(co->last_msg);
    for (size_t i = 0; i < co->nparts; i++) {
        free(co->parts[i]->topic);
        free(co->parts[i]);
    }
    free(co->parts);
    free(co->routes);
    free(co);
}

/* ---- events -------------------------------------------------------------- */

static int push_event(stream_consumer *co, stream_event_type type, cpart *cp, int64_t offset,
                      int err, const char *msg, int64_t log_start, int64_t hw)
{
    if (co->events_head > 0 && co->events_head == co->nevents) {
        co->events_head = co->nevents = 0;
    }
    if (co->nevents == co->events_cap) {
        size_t cap = co->events_cap ? co->events_cap * 2 : 8;
        cevent *ne = realloc(co->events, cap * sizeof *ne);
        if (!ne)
            return STREAM_ENOMEM;
        co->events = ne;
        co->events_cap = cap;
    }
    cevent *e = &co->events[co->nevents++];
    e->type = type;
    e->cp = cp;
    e->offset = offset;
    e->err = err;
    e->msg = msg ? strdup(msg) : NULL;
    e->log_start = log_start;
    e->high_watermark = hw;
    return 0;
}

static bool pop_event(stream_consumer *co, stream_consumer_event *ev)
{
    while (co->events_head < co->nevents) {
        cevent *e = &co->events[co->events_head++];
        /* An EOF or error of a partition given up since is moot; group
         * events (a REVOKED comes after the release) always count. */
        if (e->cp && !e->cp->assigned &&
            (e->type == STREAM_EVENT_EOF || e->type == STREAM_EVENT_ERROR)) {
            free(e->msg);
            continue;
        }
        memset(ev, 0, sizeof *ev);
        ev->type = e->type;
        ev->topic = e->cp ? e->cp->topic : NULL;
        ev->partition = e->cp ? e->cp->partition : -1;
        ev->offset = e->offset;
        ev->err = e->err;
        free(co->last_msg);
        co->last_msg = e->msg;
        ev->msg = e->msg ? e->msg : "";
        ev->log_start_offset = e->log_start;
        ev->high_watermark = e->high_watermark;
        return true;
    }
    return false;
}

/* The partition reached its end (with one): done, and one EOF event. */
static void reach_end(stream_consumer *co, cpart *cp)
{
    if (cp->done)
        return;
    cp->done = true;
    push_event(co, STREAM_EVENT_EOF, cp, cp->position, 0, NULL, -1, -1);
}

/* ---- assignment ---------------------------------------------------------- */

static cpart *find_part(const stream_consumer *co, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < co->nparts; i++) {
        cpart *cp = co->parts[i];
        if (cp->partition == partition && strcmp(cp->topic, topic) == 0)
            return cp;
    }
    return NULL;
}

static cpart *get_part(stream_consumer *co, const char *topic, int32_t partition)
{
    cpart *cp = find_part(co, topic, partition);
    if (cp)
        return cp;
    if (co->nparts == co->parts_cap) {
        size_t cap = co->parts_cap ? co->parts_cap * 2 : 8;
        cpart **np = realloc(co->parts, cap * sizeof *np);
        if (!np)
            return NULL;
        co->parts = np;
        co->parts_cap = cap;
    }
    cp = calloc(1, sizeof *cp);
    if (!cp || !(cp->topic = strdup(topic))) {
        free(cp);
        return NULL;
    }
    cp->partition = partition;
    cp->end = -1;
    co->parts[co->nparts++] = cp;
    return cp;
}

/* What list_offsets must answer to resolve a position. */
static bool needs_time(const stream_offset_pos *p)
{
    return p->kind == STREAM_OFFSET_TIME;
}

static int check_pos(const stream_offset_pos *p, bool is_end, char *errbuf, size_t errbuf_len)
{
    switch (p->kind) {
    case STREAM_OFFSET_NONE:
        if (!is_end)
            break;
        return 0;
    case STREAM_OFFSET_BEGINNING:
    case STREAM_OFFSET_END:
        return 0;
    case STREAM_OFFSET_ABSOLUTE:
    case STREAM_OFFSET_FROM_END:
    case STREAM_OFFSET_FROM_START:
    case STREAM_OFFSET_TIME:
        if (p->value < 0)
            break;
        return 0;
    case STREAM_OFFSET_STORED:
        stream__errf(errbuf, errbuf_len, "offset 'stored' needs a consumer group");
        return STREAM_EUNSUPPORTED;
    }
    stream__errf(errbuf, errbuf_len, "bad %s position (kind %d, value %lld)",
                 is_end ? "end" : "start", (int)p->kind, (long long)p->value);
    return STREAM_EINVAL;
}

/* Offsets known for one partition while resolving. */
typedef struct bounds {
    int64_t start, end; /* log start, high watermark */
    int64_t t_start;    /* start TIME answer */
    int64_t t_end;      /* end TIME answer */
} bounds;

static int64_t resolve(const stream_offset_pos *p, const bounds *b, bool is_end)
{
    switch (p->kind) {
    case STREAM_OFFSET_BEGINNING:
        return b->start;
    case STREAM_OFFSET_END:
        return b->end;
    case STREAM_OFFSET_ABSOLUTE:
        return p->value;
    case STREAM_OFFSET_FROM_END:
        return b->end - p->value < b->start ? b->start : b->end - p->value;
    case STREAM_OFFSET_FROM_START:
        return b->start + p->value > b->end ? b->end : b->start + p->value;
    case STREAM_OFFSET_TIME:
        return is_end ? b->t_end : b->t_start;
    default:
        return -1;
    }
}

/* Resolves start (and end, when given) for partitions [first, first+n) of
 * topic with one list_offsets request; fills starts[] and ends[]. */
static int resolve_positions(stream_consumer *co, const char *topic, const int32_t *parts, size_t n,
                             const stream_offset_pos *start, const stream_offset_pos *end,
                             int64_t *starts, int64_t *ends, char *errbuf, size_t errbuf_len)
{
    size_t per = 2 + (needs_time(start) ? 1 : 0) + (end && needs_time(end) ? 1 : 0);
    stream_offset_query *q = calloc(n * per, sizeof *q);
    if (!q)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        stream_offset_query *qq = &q[i * per];
        size_t k = 0;
        qq[k++] = (stream_offset_query){
            .topic = topic, .partition = parts[i], .timestamp = STREAM_LIST_EARLIEST};
        qq[k++] = (stream_offset_query){
            .topic = topic, .partition = parts[i], .timestamp = STREAM_LIST_LATEST};
        if (needs_time(start))
            qq[k++] = (stream_offset_query){
                .topic = topic, .partition = parts[i], .timestamp = start->value};
        if (end && needs_time(end))
            qq[k++] = (stream_offset_query){
                .topic = topic, .partition = parts[i], .timestamp = end->value};
    }
    int rc = stream_admin_list_offsets(co->c, q, n * per, -1, errbuf, errbuf_len);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        stream_offset_query *qq = &q[i * per];
        for (size_t k = 0; k < per; k++)
            if (qq[k].err != 0) {
                rc = qq[k].err;
                stream__errf(errbuf, errbuf_len,
                             "topic '%s' partition %d: cannot list offsets: "
                             "%s",
                             topic, (int)parts[i], stream_strerror(rc));
                break;
            }
        if (rc < 0)
            break;
        bounds b = {.start = qq[0].offset, .end = qq[1].offset};
        size_t k = 2;
        if (needs_time(start))
            b.t_start = qq[k++].offset;
        if (end && needs_time(end))
            b.t_end = qq[k++].offset;
        starts[i] = resolve(start, &b, false);
        ends[i] = end && end->kind != STREAM_OFFSET_NONE ? resolve(end, &b, true) : -1;
    }
    free(q);
    return rc;
}

/* Moves cp to offset: drops what was fetched for it. */
static void move_to(cpart *cp, int64_t offset)
{
    cp->position = offset;
    cp->fetch_offset = offset;
    cp->epoch++;
    cp->paused = false;
    cp->halted = false;
    cp->blocked = false;
    cp->done = false;
    cp->caught_up = false;
    cp->retry_at_ms = 0;
    cp->backoff_ms = 0;
}

int stream_consumer_assign(stream_consumer *co, const char *topic, int32_t partition,
                           const stream_offset_spec *spec, char *errbuf, size_t errbuf_len)
{
    stream_offset_spec dflt = {.start = {STREAM_OFFSET_BEGINNING, 0},
                               .end = {STREAM_OFFSET_NONE, 0}};
    if (!spec)
        spec = &dflt;
    if (!topic || partition < STREAM_PARTITION_ALL) {
        stream__errf(errbuf, errbuf_len, "assign: no topic or bad partition");
        return STREAM_EINVAL;
    }
    if (co->group) {
        stream__errf(errbuf, errbuf_len,
                     "assign: the consumer is a group member; the group assigns its partitions");
        return STREAM_EINVAL;
    }
    int rc = check_pos(&spec->start, false, errbuf, errbuf_len);
    if (rc == 0)
        rc = check_pos(&spec->end, true, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    int count = stream_client_partition_count(co->c, topic, -1, errbuf, errbuf_len);
    if (count < 0)
        return count;
    if (partition >= count) {
        stream__errf(errbuf, errbuf_len, "topic '%s' has %d partition%s, no partition %d", topic,
                     count, count == 1 ? "" : "s", (int)partition);
        return STREAM_ENOPART;
    }
    size_t n = partition == STREAM_PARTITION_ALL ? (size_t)count : 1;
    int32_t *parts = calloc(n, sizeof *parts);
    int64_t *starts = calloc(n, sizeof *starts);
    int64_t *ends = calloc(n, sizeof *ends);
    if (!parts || !starts || !ends) {
        rc = STREAM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        parts[i] = partition == STREAM_PARTITION_ALL ? (int32_t)i : partition;
    stream_offset_pos end = spec->end;
    if (end.kind == STREAM_OFFSET_NONE && co->conf.stop_at_end)
        end.kind = STREAM_OFFSET_END;
    rc = resolve_positions(co, topic, parts, n, &spec->start, &end, starts, ends, errbuf,
                           errbuf_len);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        cpart *cp = get_part(co, topic, parts[i]);
        if (!cp) {
            rc = STREAM_ENOMEM;
            goto out;
        }
        cp->assigned = true;
        cp->end = ends[i];
        move_to(cp, starts[i]);
        if (cp->end >= 0 && cp->position >= cp->end)
            reach_end(co, cp);
    }
out:
    free(parts);
    free(starts);
    free(ends);
    return rc;
}

int stream_consumer_unassign(stream_consumer *co, const char *topic, int32_t partition)
{
    int found = 0;
    for (size_t i = 0; i < co->nparts; i++) {
        cpart *cp = co->parts[i];
        if (!cp->assigned || strcmp(cp->topic, topic) != 0 ||
            (partition != STREAM_PARTITION_ALL && cp->partition != partition))
            continue;
        cp->assigned = false;
        cp->epoch++;
        found++;
    }
    return found ? 0 : STREAM_ENOENT;
}

int stream_consumer_seek(stream_consumer *co, const char *topic, int32_t partition,
                         stream_offset_pos to, char *errbuf, size_t errbuf_len)
{
    int rc = check_pos(&to, false, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    size_t n = 0;
    for (size_t i = 0; i < co->nparts; i++) {
        cpart *cp = co->parts[i];
        if (cp->assigned && strcmp(cp->topic, topic) == 0 &&
            (partition == STREAM_PARTITION_ALL || cp->partition == partition))
            n++;
    }
    if (n == 0) {
        stream__errf(errbuf, errbuf_len, "topic '%s' partition %d is not assigned", topic,
                     (int)partition);
        return STREAM_ENOENT;
    }
    int32_t *parts = calloc(n, sizeof *parts);
    int64_t *starts = calloc(n, sizeof *starts);
    int64_t *ends = calloc(n, sizeof *ends);
    cpart **cps = calloc(n, sizeof *cps);
    if (!parts || !starts || !ends || !cps) {
        rc = STREAM_ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < co->nparts; i++) {
        cpart *cp = co->parts[i];
        if (cp->assigned && strcmp(cp->topic, topic) == 0 &&
            (partition == STREAM_PARTITION_ALL || cp->partition == partition)) {
            cps[k] = cp;
            parts[k++] = cp->partition;
        }
    }
    if (to.kind == STREAM_OFFSET_ABSOLUTE) {
        for (size_t i = 0; i < n; i++)
            starts[i] = to.value;
    } else {
        rc = resolve_positions(co, topic, parts, n, &to, NULL, starts, ends, errbuf, errbuf_len);
        if (rc < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        move_to(cps[i], starts[i]);
        if (cps[i]->end >= 0 && cps[i]->position >= cps[i]->end)
            reach_end(co, cps[i]);
    }
out:
    free(parts);
    free(starts);
    free(ends);
    free(cps);
    return rc;
}

int stream_consumer_position(const stream_consumer *co, const char *topic, int32_t partition,
                             int64_t *out)
{
    cpart *cp = find_part(co, topic, partition);
    if (!cp || !cp->assigned)
        return STREAM_ENOENT;
    *out = cp->position;
    return 0;
}

bool stream_consumer_done(const stream_consumer *co)
{
    if (co->events_head < co->nevents)
        return false;
    if (co->group && !stream__cgroup_settled(co->group))
        return false;
    size_t assigned = 0;
    for (size_t i = 0; i < co->nparts; i++) {
        const cpart *cp = co->parts[i];
        if (!cp->assigned)
            continue;
        assigned++;
        if (!cp->done && !cp->paused)
            return false;
    }
    /* A settled member with nothing to read is done only when reading is
     * bounded (-e); following, it waits for partitions to come. */
    return assigned > 0 || (co->group && co->conf.stop_at_end);
}

/* ---- fetching ------------------------------------------------------------ */

static bool fetchable(const cpart *cp, int64_t now)
{
    return cp->assigned && !cp->paused && !cp->halted && !cp->done && !cp->blocked &&
           !cp->in_fetch && now >= cp->retry_at_ms && (cp->end < 0 || cp->fetch_offset < cp->end);
}

static void back_off(cpart *cp, int64_t now)
{
    cp->backoff_ms = cp->backoff_ms ? cp->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (cp->backoff_ms > BACKOFF_MAX_MS)
        cp->backoff_ms = BACKOFF_MAX_MS;
    cp->retry_at_ms = now + cp->backoff_ms;
}

static void queue_push(stream_consumer *co, fbuf *b)
{
    b->next = NULL;
    if (co->queue_tail)
        co->queue_tail->next = b;
    else
        co->queue_head = b;
    co->queue_tail = b;
    co->queued++;
}

/* Where the batches of a records bin end: the offset after the last whole
 * batch, or -1 when there is none. */
static int64_t next_offset_after(const uint8_t *p, size_t len)
{
    int64_t next = -1;
    size_t off = 0;
    while (len - off >= STREAM_BATCH_HEADER_SIZE) {
        stream_batch_info info;
        if (stream_batch_header_decode(p + off, len - off, &info) < 0 || info.size > len - off)
            break;
        next = info.base_offset + info.last_offset_delta + 1;
        off += info.size;
    }
    return next;
}

static const msgpack_object *find_answer(const msgpack_object *topics, const cpart *cp)
{
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *t = &topics->via.array.ptr[i];
        const char *name;
        size_t len;
        const msgpack_object *parts;
        if (stream_field_str(t, "name", &name, &len, NULL, 0) < 0 ||
            !stream_str_eq(name, len, cp->topic) ||
            stream_field_array(t, "partitions", &parts, NULL, 0) < 0)
            continue;
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            int64_t pn;
            if (stream_field_int(&parts->via.array.ptr[j], "partition", 0, INT32_MAX, &pn, NULL,
                                 0) == 0 &&
                pn == cp->partition)
                return &parts->via.array.ptr[j];
        }
    }
    return NULL;
}

static void fetch_cb(stream_client *c, const stream__resp *r, void *arg)
{
    fetch_ctx *f = arg;
    stream_consumer *co = f->co;
    int64_t now = stream__client_mono_ms();
    for (fetch_ctx **pf = &co->fetches; *pf; pf = &(*pf)->next)
        if (*pf == f) {
            *pf = f->next;
            break;
        }
    for (size_t i = 0; i < f->n; i++)
        f->cps[i]->in_fetch = false;
    const msgpack_object *topics = NULL;
    if (r->err == 0 && stream_field_array(r->root, "topics", &topics, NULL, 0) < 0)
        topics = NULL;
    if (r->err != 0 && !r->root) {
        /* Transport: the broker may be gone. Back off, ask who leads now,
         * and fetch again from where we were (fetch_offset: what came
         * before is in the buffers, in order), from that leader. */
        for (size_t i = 0; i < f->n; i++) {
            if (f->cps[i]->epoch != f->epochs[i])
                continue;
            back_off(f->cps[i], now);
            stream__client_refresh_async(c, f->cps[i]->topic);
        }
        fetch_ctx_free(f);
        return;
    }
    fbuf *b = calloc(1, sizeof *b);
    size_t total = 0;
    if (b)
        b->entries = calloc(f->n, sizeof *b->entries);
    const msgpack_object **ans = calloc(f->n, sizeof *ans);
    if (!b || !b->entries || !ans)
        goto oom;
    for (size_t i = 0; topics && i < f->n; i++) {
        ans[i] = find_answer(topics, f->cps[i]);
        const uint8_t *p;
        size_t len;
        if (ans[i] && stream_field_bin_opt(ans[i], "records", &p, &len, NULL, 0) == 0)
            total += len;
    }
    /* Big responses are kept where they were received (the file comment). */
    if (total >= TAKE_MIN_BYTES)
        b->data = stream__resp_take(c, r, &b->data_cap);
    if (!b->data)
        b->data = malloc(total ? total : 1);
    if (!b->data)
        goto oom;
    size_t off = 0;
    for (size_t i = 0; i < f->n; i++) {
        fentry *e = &b->entries[b->n++];
        cpart *cp = f->cps[i];
        e->cp = cp;
        e->epoch = f->epochs[i];
        e->high_watermark = -1;
        e->log_start = -1;
        int64_t err = 0;
        const char *text = NULL;
        size_t tlen = 0;
        if (r->err != 0) {
            e->err = r->err;
            text = r->msg;
            tlen = strlen(r->msg);
        } else if (!ans[i]) {
            e->err = STREAM_EPROTO;
            text = "the fetch response does not answer this partition";
            tlen = strlen(text);
        } else {
            const uint8_t *p = NULL;
            size_t len = 0;
            stream_field_int_opt(ans[i], "err", 0, INT32_MAX, 0, &err, NULL, 0);
            stream_field_str_opt(ans[i], "msg", &text, &tlen, NULL, 0);
            stream_field_int_opt(ans[i], "high_watermark", -1, INT64_MAX, -1, &e->high_watermark,
                                 NULL, 0);
            stream_field_int_opt(ans[i], "log_start_offset", -1, INT64_MAX, -1, &e->log_start, NULL,
                                 0);
            stream_field_bin_opt(ans[i], "records", &p, &len, NULL, 0);
            e->err = -(int)err;
            if (len && b->data_cap) {
                e->records = p; /* in the taken buffer */
                e->len = len;
            } else if (len) {
                memcpy(b->data + off, p, len);
                e->records = b->data + off;
                e->len = len;
                off += len;
            }
        }
        if (e->err) {
            if (!text || !tlen) {
                text = stream_strerror(e->err);
                tlen = strlen(text);
            }
            e->msg = stream__strndup(text, tlen);
        }
        if (cp->epoch != e->epoch)
            continue; /* seeked meanwhile: this answer is dropped when reached */
        if (e->high_watermark >= 0)
            cp->high_watermark = e->high_watermark;
        if (!e->err && e->high_watermark > cp->max_high_watermark)
            cp->max_high_watermark = e->high_watermark;
        if (e->log_start >= 0)
            cp->log_start = e->log_start;
        if (e->err) {
            cp->blocked = true; /* decided when the consumer reaches this answer */
            continue;
        }
        cp->backoff_ms = 0;
        cp->lag_retries = 0;
        int64_t next = next_offset_after(e->records, e->len);
        if (next > cp->fetch_offset)
            cp->fetch_offset = next;
    }
    free(ans);
    queue_push(co, b);
    fetch_ctx_free(f);
    return;
oom:
    free(ans);
    fbuf_free(co, b);
    for (size_t i = 0; i < f->n; i++)
        if (f->cps[i]->epoch == f->epochs[i])
            back_off(f->cps[i], now);
    fetch_ctx_free(f);
}

/* A partition's route while a fetch is being put together: not fetched
 * now, or no leader right now (an election is under way). */
#define ROUTE_NONE      INT32_MAX
#define ROUTE_NO_LEADER INT32_MIN

/* Where cp's fetch goes: its leader's connection, keyed so that every node
 * served by the bootstrap connection counts as one (one long poll per
 * connection); ROUTE_NO_LEADER while it has none. */
static int32_t fetch_route(stream_consumer *co, const cpart *cp)
{
    int32_t l = stream__client_leader(co->c, cp->topic, cp->partition);
    if (l == -1)
        return ROUTE_NO_LEADER;
    if (l == STREAM__LEADER_UNKNOWN || stream__client_node_on_bootstrap(co->c, l))
        return STREAM__NODE_BOOTSTRAP;
    return l;
}

static bool fetch_out(const stream_consumer *co, int32_t node)
{
    for (const fetch_ctx *f = co->fetches; f; f = f->next)
        if (f->node == node)
            return true;
    return false;
}

/* Sends one fetch to node for the partitions routed there (co->routes), in
 * rotation order. Returns false when it could not (no memory: try later). */
static bool send_fetch(stream_consumer *co, int32_t node, size_t n, int max_wait)
{
    fetch_ctx *f = calloc(1, sizeof *f);
    if (f) {
        f->co = co;
        f->node = node;
        f->cps = calloc(n, sizeof *f->cps);
        f->epochs = calloc(n, sizeof *f->epochs);
    }
    if (!f || !f->cps || !f->epochs) {
        fetch_ctx_free(f);
        return false;
    }
    /* Start one partition further each time: the broker fills a response in
     * request order, so a fixed order would starve the partitions at the
     * end while the first ones have a backlog. */
    for (size_t k = 0; k < co->nparts && f->n < n; k++) {
        size_t i = (co->rotate + k) % co->nparts;
        if (co->routes[i] == node) {
            f->cps[f->n] = co->parts[i];
            f->epochs[f->n++] = co->parts[i]->epoch;
            co->parts[i]->in_fetch = true;
        }
    }
    /* Group by topic (the wire groups partitions under their topic). */
    size_t ntopics = 0;
    for (size_t i = 0; i < f->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(f->cps[j]->topic, f->cps[i]->topic) == 0;
        if (!seen)
            ntopics++;
    }
    msgpack_packer *pk = stream__req_begin(co->c, STREAM_OP_FETCH, 4);
    stream_pack_kv_int(pk, "max_wait_ms", max_wait);
    stream_pack_kv_int(pk, "min_bytes", co->conf.min_bytes);
    stream_pack_kv_int(pk, "max_bytes", co->conf.max_bytes);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, ntopics);
    for (size_t i = 0; i < f->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(f->cps[j]->topic, f->cps[i]->topic) == 0;
        if (seen)
            continue;
        size_t np = 0;
        for (size_t j = i; j < f->n; j++)
            np += strcmp(f->cps[j]->topic, f->cps[i]->topic) == 0;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", f->cps[i]->topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, np);
        for (size_t j = i; j < f->n; j++) {
            if (strcmp(f->cps[j]->topic, f->cps[i]->topic) != 0)
                continue;
            msgpack_pack_map(pk, 3);
            stream_pack_kv_int(pk, "partition", f->cps[j]->partition);
            stream_pack_kv_int(pk, "offset", f->cps[j]->fetch_offset);
            stream_pack_kv_int(pk, "max_bytes", co->conf.max_partition_bytes);
        }
    }
    int64_t id = stream__req_send_node(co->c, node, fetch_cb, f, max_wait, 0);
    if (id < 0) {
        for (size_t i = 0; i < f->n; i++)
            f->cps[i]->in_fetch = false;
        fetch_ctx_free(f);
        return false;
    }
    f->id = id;
    f->next = co->fetches;
    co->fetches = f;
    return true;
}

/* Sends a fetch to each partition leader's connection that has none out,
 * while at most one response waits (so memory stays within a response per
 * connection plus one), for the partitions that may be fetched. Returns the
 * next time it wants to run. */
static int64_t consumer_tick(void *arg, int64_t now)
{
    stream_consumer *co = arg;
    int64_t next = INT64_MAX;
    if (co->queued > 1)
        return next;
    /* One broker: one connection, and its fetch is out. */
    if (co->fetches && !stream__client_clustered(co->c))
        return next;
    if (co->routes_cap < co->nparts) {
        int32_t *r = realloc(co->routes, co->nparts * sizeof *r);
        if (!r)
            return now + BACKOFF_MIN_MS;
        co->routes = r;
        co->routes_cap = co->nparts;
    }
    size_t n = 0;
    for (size_t i = 0; i < co->nparts; i++) {
        cpart *cp = co->parts[i];
        co->routes[i] = ROUTE_NONE;
        if (fetchable(cp, now)) {
            int32_t to = fetch_route(co, cp);
            if (to == ROUTE_NO_LEADER) {
                back_off(cp, now);
                stream__client_refresh_async(co->c, cp->topic);
                if (cp->retry_at_ms < next)
                    next = cp->retry_at_ms;
                continue;
            }
            co->routes[i] = to;
            n++;
        } else if (cp->assigned && !cp->paused && !cp->done && !cp->blocked &&
                   cp->retry_at_ms > now && cp->retry_at_ms < next) {
            next = cp->retry_at_ms;
        }
    }
    if (n == 0)
        return next == INT64_MAX && co->group &&
                       stream__cgroup_fetch_wait(co->group, now, co->conf.max_wait_ms) == -2
                   ? now
                   : next;
    /* Responses come in request order per connection: a group request
     * (heartbeat, commit) behind a long-polling fetch on the bootstrap
     * connection waits for it. So no fetch goes out there while one is in
     * flight or due, and a fetch waits on the broker no longer than until
     * the next one is due. The tick runs again when the group's answer is
     * in. Fetches to other brokers' connections hold up nothing. */
    int group_wait = co->conf.max_wait_ms;
    if (co->group)
        group_wait = stream__cgroup_fetch_wait(co->group, now, co->conf.max_wait_ms);
    bool sent = false;
    for (size_t k = 0; k < co->nparts; k++) {
        int32_t node = co->routes[(co->rotate + k) % co->nparts];
        if (node == ROUTE_NONE)
            continue;
        size_t count = 0;
        for (size_t i = 0; i < co->nparts; i++)
            count += co->routes[i] == node;
        int wait = co->conf.max_wait_ms;
        bool go = !fetch_out(co, node);
        if (go && node == STREAM__NODE_BOOTSTRAP && co->group) {
            if (group_wait == -2)
                next = now;
            go = group_wait >= 0;
            wait = group_wait;
        }
        if (go) {
            if (send_fetch(co, node, count, wait))
                sent = true;
            else if (now + BACKOFF_MIN_MS < next)
                next = now + BACKOFF_MIN_MS;
        }
        for (size_t i = 0; i < co->nparts; i++)
            if (co->routes[i] == node)
                co->routes[i] = ROUTE_NONE;
    }
    if (sent)
        co->rotate++;
    return next;
}

/* ---- consuming ----------------------------------------------------------- */

/* Tries of a fetch refused as out of range by a leader behind the
 * consumer's position (below). */
#define LAG_RETRIES_MAX 20

/* EOFFSET for an offset this consumer has seen below a high watermark,
 * from a cluster: a leader that just took over may not have advanced its
 * high watermark to where the old one had it yet. The records are there
 * (they were committed to every in-sync replica); resetting would skip or
 * repeat them, so ask again a while (about 15 s with the backoffs) before
 * treating it as out of range. A single broker never gets here. */
static bool lagging_leader(stream_consumer *co, cpart *cp, const fentry *e)
{
    if (e->err != STREAM_EOFFSET || !stream__client_clustered(co->c) ||
        cp->fetch_offset > cp->max_high_watermark || e->high_watermark < 0 ||
        cp->fetch_offset <= e->high_watermark || cp->lag_retries >= LAG_RETRIES_MAX)
        return false;
    cp->lag_retries++;
    return true;
}

/* Handles an error answer when the consumer reaches it. */
static void entry_error(stream_consumer *co, fentry *e)
{
    cpart *cp = e->cp;
    int64_t now = stream__client_mono_ms();
    cp->blocked = false;
    if (lagging_leader(co, cp, e)) {
        stream_client_invalidate_metadata(co->c, cp->topic);
        stream__client_refresh_async(co->c, cp->topic);
        back_off(cp, now);
        return;
    }
    if (e->err == STREAM_EOFFSET && co->conf.auto_offset_reset != STREAM_RESET_ERROR &&
        e->log_start >= 0 && e->high_watermark >= 0) {
        int64_t to =
            co->conf.auto_offset_reset == STREAM_RESET_EARLIEST ? e->log_start : e->high_watermark;
        move_to(cp, to);
        if (cp->end >= 0 && cp->position >= cp->end)
            reach_end(co, cp);
        return;
    }
    if (e->err != STREAM_EOFFSET &&
        (stream_err_retriable(e->err) || e->err == STREAM_ESTALEEPOCH ||
         e->err == STREAM_ENOBROKER || e->err == STREAM_ENOTENOUGHREPLICAS)) {
        /* Another broker leads now (or is taking over): ask who, and fetch
         * again from the position on that one. */
        if (stream__retry_decide(e->err) == STREAM__RETRY_REFRESH) {
            stream_client_invalidate_metadata(co->c, cp->topic);
            stream__client_refresh_async(co->c, cp->topic);
        }
        back_off(cp, now);
        return;
    }
    if (e->err == STREAM_ENOTOPIC || e->err == STREAM_ENOPART)
        stream_client_invalidate_metadata(co->c, cp->topic);
    char msg[700];
    stream__errf(msg, sizeof msg, "topic '%s' partition %d: %s", cp->topic, (int)cp->partition,
                 e->msg ? e->msg : stream_strerror(e->err));
    cp->paused = true;
    push_event(co, STREAM_EVENT_ERROR, cp, cp->fetch_offset, e->err, msg,
               e->err == STREAM_EOFFSET ? e->log_start : -1,
               e->err == STREAM_EOFFSET ? e->high_watermark : -1);
}

/* A corrupt batch: report it and pause the partition at its position. */
static void batch_error(stream_consumer *co, cpart *cp, int err, const char *why)
{
    char msg[600];
    stream__errf(msg, sizeof msg, "topic '%s' partition %d at offset %lld: %s", cp->topic,
                 (int)cp->partition, (long long)cp->position, why);
    cp->paused = true;
    cp->epoch++;
    cp->fetch_offset = cp->position;
    push_event(co, STREAM_EVENT_ERROR, cp, cp->position, err, msg, -1, -1);
}

/* Starts the next usable batch of the current entry. Returns true when the
 * iterator is ready, false when the entry has no more batches. */
static bool next_batch(stream_consumer *co, fbuf *b)
{
    fentry *e = &b->entries[b->ei];
    cpart *cp = e->cp;
    while (b->boff < e->len) {
        if (!cp->assigned || cp->epoch != e->epoch || cp->paused || cp->halted || cp->done)
            return false;
        const uint8_t *p = e->records + b->boff;
        size_t left = e->len - b->boff;
        stream_batch_info info;
        if (left < STREAM_BATCH_HEADER_SIZE || stream_batch_header_decode(p, left, &info) < 0 ||
            info.size > left)
            return false; /* a partial batch at the end: fetched again next time */
        b->boff += info.size;
        if (info.base_offset + info.last_offset_delta < cp->position)
            continue; /* wholly before the position */
        if (info.attributes & STREAM_BATCH_ATTR_CONTROL)
            continue;
        char eb[256];
        if (co->conf.check_crc) {
            int rc = stream_batch_check(p, info.size, &info, eb, sizeof eb);
            if (rc < 0) {
                batch_error(co, cp, rc, eb);
                return false;
            }
        }
        int rc = stream_record_iter_start(&b->it, p, info.size);
        if (rc < 0) {
            stream_record_iter_stop(&b->it);
            /* A CRC that holds over bytes that do not decompress: the
             * producer wrote them so. Say which batch and which codec. */
            stream_codec codec = (stream_codec)(info.attributes & STREAM_BATCH_ATTR_CODEC_MASK);
            if (codec != STREAM_CODEC_NONE)
                stream__errf(eb, sizeof eb,
                             "the %s-compressed batch of offsets %lld..%lld cannot be "
                             "decompressed (%s): it was damaged before it was stored",
                             stream_codec_name(codec), (long long)info.base_offset,
                             (long long)(info.base_offset + info.last_offset_delta),
                             stream_strerror(rc));
            else
                stream__errf(eb, sizeof eb, "the batch of offsets %lld..%lld is malformed (%s)",
                             (long long)info.base_offset,
                             (long long)(info.base_offset + info.last_offset_delta),
                             stream_strerror(rc));
            batch_error(co, cp, rc, eb);
            return false;
        }
        b->iter_active = true;
        return true;
    }
    return false;
}

/* The entry is consumed: follow-mode EOF when caught up. */
static void entry_done(stream_consumer *co, fentry *e)
{
    cpart *cp = e->cp;
    if (!cp->assigned || cp->epoch != e->epoch || e->err || cp->paused || cp->halted || cp->done)
        return;
    if (cp->end < 0 && e->high_watermark >= 0 && cp->position >= e->high_watermark &&
        !cp->caught_up) {
        cp->caught_up = true;
        push_event(co, STREAM_EVENT_EOF, cp, cp->position, 0, NULL, -1, -1);
    }
}

/* The next record of the current buffer, or 0 when it is used up (events
 * may have been queued meanwhile). */
static int next_record(stream_consumer *co, stream_consumer_event *ev)
{
    fbuf *b = co->cur;
    while (b->ei < b->n) {
        fentry *e = &b->entries[b->ei];
        cpart *cp = e->cp;
        if (!b->entry_started) {
            b->entry_started = true;
            b->boff = 0;
            if (e->err && cp->assigned && cp->epoch == e->epoch) {
                entry_error(co, e);
                b->ei++;
                b->entry_started = false;
                if (co->events_head < co->nevents)
                    return 0;
                continue;
            }
        }
        while (b->iter_active || next_batch(co, b)) {
            stream_record rec;
            int rc = stream_record_iter_next(&b->it, &rec);
            bool stale =
                !cp->assigned || cp->epoch != e->epoch || cp->paused || cp->halted || cp->done;
            if (rc == 1 && !stale) {
                if (rec.offset < cp->position)
                    continue;
                if (cp->end >= 0 && rec.offset >= cp->end) {
                    reach_end(co, cp);
                    continue;
                }
                memset(ev, 0, sizeof *ev);
                ev->type = STREAM_EVENT_RECORD;
                ev->topic = cp->topic;
                ev->partition = cp->partition;
                ev->record = rec;
                ev->offset = rec.offset;
                ev->log_start_offset = -1;
                ev->high_watermark = -1;
                cp->position = rec.offset + 1;
                cp->caught_up = false;
                co->returned = cp;
                if (cp->end >= 0 && cp->position >= cp->end)
                    reach_end(co, cp);
                return 1;
            }
            /* The batch is over (or corrupt, or no longer wanted). Its
             * records may still be borrowed by the caller's last event only
             * if rc == 1 was returned before; a new poll call means the
             * caller is done with it. */
            /* A compacted batch may end in removed offsets (or hold none):
             * the position moves past the whole batch, or a bounded read
             * (-e) would wait for offsets that no longer exist. */
            int64_t batch_next = b->it.info.base_offset + b->it.info.last_offset_delta + 1;
            stream_record_iter_stop(&b->it);
            b->iter_active = false;
            if (rc == 0 && !stale && batch_next > cp->position) {
                cp->position = batch_next;
                if (cp->end >= 0 && cp->position >= cp->end)
                    reach_end(co, cp);
            }
            if (rc < 0 && !stale) {
                batch_error(co, cp, rc, "corrupt record in batch");
                break;
            }
            if (stale)
                break;
        }
        entry_done(co, e);
        b->ei++;
        b->entry_started = false;
        if (co->events_head < co->nevents)
            return 0;
    }
    return 0;
}

int stream_consumer_poll(stream_consumer *co, int timeout_ms, stream_consumer_event *ev)
{
    /* Read from the clock only once the buffered records run out: a record
     * taken from a buffer must cost no system call. */
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : -1;
    memset(ev, 0, sizeof *ev);
    if (co->group) {
        /* The caller asks for more: the record the last call returned
         * counts as processed (auto_store). One record per call, so one
         * partition to look at. */
        cpart *cp = co->returned;
        co->returned = NULL;
        if (cp && cp->assigned && cp->group_data)
            stream__cgroup_processed(co->group, cp->group_data, cp->position);
        stream__cgroup_before_poll(co->group);
        if (stream__cgroup_wants_caller(co->group))
            return 0;
    }
    for (;;) {
        if (pop_event(co, ev))
            return 1;
        if (co->cur) {
            if (next_record(co, ev) == 1)
                return 1;
            if (co->events_head < co->nevents)
                continue;
            /* Used up: the previous call's record was the last borrower. */
            fbuf_free(co, co->cur);
            co->cur = NULL;
            co->queued--;
        }
        if (co->queue_head) {
            co->cur = co->queue_head;
            co->queue_head = co->cur->next;
            if (!co->queue_head)
                co->queue_tail = NULL;
            /* Fetch ahead: the next request goes out now, while the caller
             * works through this one. */
            stream__client_kick(co->c);
            continue;
        }
        if (stream_consumer_done(co))
            return 0;
        int64_t now = stream__client_mono_ms();
        if (deadline < 0)
            deadline = now + timeout_ms;
        if (now >= deadline && timeout_ms >= 0) {
            /* One non-blocking look so timeout 0 still makes progress. */
            int rc = stream_client_poll(co->c, 0);
            if (rc < 0)
                return rc;
            if (co->queue_head || co->events_head < co->nevents)
                continue;
            return 0;
        }
        int64_t left = deadline == INT64_MAX ? 1000 : deadline - now;
        int rc = stream_client_poll(co->c, left > 1000 ? 1000 : (int)left);
        if (rc < 0)
            return rc;
        if (stream__client_take_interrupted(co->c))
            return 0; /* a signal: let the caller check its flag */
        if (co->group && stream__cgroup_wants_caller(co->group))
            return 0; /* a revocation waits for the caller's stored offsets */
    }
}

/* ---- for the group code (client_internal.h) ---------------------------------- */

stream_client *stream__consumer_client(const stream_consumer *co)
{
    return co->c;
}

const stream_consumer_conf *stream__consumer_conf(const stream_consumer *co)
{
    return &co->conf;
}

stream__cgroup *stream__consumer_group(const stream_consumer *co)
{
    return co->group;
}

void stream__consumer_set_group(stream_consumer *co, stream__cgroup *g)
{
    co->group = g;
}

bool stream__consumer_assigned_any(const stream_consumer *co)
{
    for (size_t i = 0; i < co->nparts; i++)
        if (co->parts[i]->assigned)
            return true;
    return false;
}

int stream__consumer_start(stream_consumer *co, const char *topic, int32_t partition, int64_t start,
                           int64_t end, void *group_data)
{
    cpart *cp = get_part(co, topic, partition);
    if (!cp)
        return STREAM_ENOMEM;
    cp->assigned = true;
    cp->group_data = group_data;
    cp->end = end;
    move_to(cp, start);
    if (cp->end >= 0 && cp->position >= cp->end)
        reach_end(co, cp);
    return 0;
}

void stream__consumer_halt(stream_consumer *co, const char *topic, int32_t partition)
{
    cpart *cp = find_part(co, topic, partition);
    if (!cp || cp->halted)
        return;
    cp->halted = true;
    cp->epoch++; /* fetched data and the fetch in flight are dropped */
    cp->fetch_offset = cp->position;
}

bool stream__consumer_finished(const stream_consumer *co, const char *topic, int32_t partition)
{
    const cpart *cp = find_part(co, topic, partition);
    return cp && cp->assigned && (cp->done || cp->paused);
}

int stream__consumer_push(stream_consumer *co, stream_event_type type, const char *topic,
                          int32_t partition, int64_t offset, int err, const char *msg)
{
    cpart *cp = NULL;
    if (topic && !(cp = find_part(co, topic, partition)))
        return STREAM_ENOENT;
    return push_event(co, type, cp, offset, err, msg, -1, -1);
}
