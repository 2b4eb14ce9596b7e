/*
 * broker_wait.c - delayed operations: long-poll fetches and acks=all
 * produces that wait for something to happen to one or more partitions.
 *
 * A waiter belongs to one request and watches a few partitions through links
 * (one per partition), each threaded on that partition's queue in a
 * stream__pstate. It completes exactly once, for one of these reasons:
 *
 *   READY     fetch: enough bytes were appended to its partitions since it
 *             parked (min_bytes); produce: every partition's durable offset
 *             passed what the request appended
 *   TIMEOUT   its deadline passed (one uv timer for all waiters, set to the
 *             earliest deadline of a binary heap; deadlines are coalesced,
 *             see below)
 *   SHUTDOWN  the broker is stopping
 *   DROPPED   one of its partitions is being deleted
 *   CANCEL    its connection closed: nothing is sent, only memory is freed
 *
 * and the op that parked it (broker_ops.c) encodes the response in its
 * complete callback. Unlinking happens here before the callback runs, so the
 * callback may do anything, including park a new waiter.
 *
 * Deadlines are coalesced onto a grid: a waiter of timeout_ms >=
 * WAIT_COALESCE_MIN_MS times out at the last grid point at or before now +
 * timeout_ms, so a little early and never late (a long poll's max_wait_ms is
 * "the longest the broker waits"). The grid is WAIT_TICK_MS, doubled while
 * it stays within WAIT_GRID_SHARE of the timeout, up to WAIT_GRID_MAX_MS:
 * 10 ms below 500 ms, 20 ms for the 500 ms consumers use by default, 40 ms
 * from 1 s; every grid is a multiple of the finer ones, so their points
 * line up. Consumers that long-poll an idle topic then time out in batches,
 * and the loop wakes once per grid point for all of them instead of once
 * per consumer: a thousand idle consumers polling every 500 ms cost 50
 * timer wake-ups a second instead of 2,000, and their responses leave (and
 * the next polls arrive) together. Shorter waits are left exact: there the
 * grid would be a large part of the wait.
 *
 * A timer tick answers its batch in two passes: every expired waiter's
 * response is encoded first (reading ahead in the heap, whose next entries
 * are the next to expire, so that their cold waiters load while this one is
 * encoded), then the connections are written one after another
 * (stream__conn_defer_flush): the sends go out back to back, and a client
 * woken by the first finds the rest already there.
 *
 * Durability arrives on the flusher thread: the callback only sets a flag
 * under a mutex and wakes the loop (uv_async_send coalesces), and the loop
 * then checks every partition that has produce waiters against
 * stream_log_durable_offset, which is thread-safe.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "stream/error.h"

/* The grid that deadlines are coalesced onto, and the shortest timeout that
 * is coalesced (see the file comment). */
#define WAIT_TICK_MS         10
#define WAIT_COALESCE_MIN_MS 100
#define WAIT_GRID_SHARE      25 /* the grid is at most 1/25 (4 %) of the wait... */
#define WAIT_GRID_MAX_MS     160 /* ...and at most this */

/* Waiters with room for up to this many links come from (and go back to)
 * the broker's waiter pool, all of this size: a consumer's fetch watches the
 * partitions it reads from one broker, usually a few. */
#define WAIT_POOL_LINKS 8
#define WAIT_POOL_BYTES (sizeof(stream__waiter) + WAIT_POOL_LINKS * sizeof(stream__wlink))

/* ---- partition table: stream_log* -> stream__pstate ---- */

static size_t ptr_hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (size_t)(x & (cap - 1));
}

static int ptab_grow(stream_broker *b)
{
    size_t ncap = b->ptab_cap ? b->ptab_cap * 2 : 64;
    stream__pstate **nt = calloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < b->ptab_cap; i++) {
        stream__pstate *p = b->ptab[i];
        while (p) {
            stream__pstate *next = p->hnext;
            size_t h = ptr_hash(p->log, ncap);
            p->hnext = nt[h];
            nt[h] = p;
            p = next;
        }
    }
    free(b->ptab);
    b->ptab = nt;
    b->ptab_cap = ncap;
    return 0;
}

stream__pstate *stream__pstate_get(stream_broker *b, stream_log *log, bool create)
{
    if (b->ptab_cap) {
        for (stream__pstate *p = b->ptab[ptr_hash(log, b->ptab_cap)]; p; p = p->hnext)
            if (p->log == log)
                return p;
    }
    if (!create)
        return NULL;
    if (b->ptab_len + 1 > b->ptab_cap / 2 && ptab_grow(b) != 0)
        return NULL;
    stream__pstate *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->log = log;
    size_t h = ptr_hash(log, b->ptab_cap);
    p->hnext = b->ptab[h];
    b->ptab[h] = p;
    b->ptab_len++;
    return p;
}

static void pstate_remove(stream_broker *b, stream__pstate *ps)
{
    stream__pstate **pp = &b->ptab[ptr_hash(ps->log, b->ptab_cap)];
    while (*pp && *pp != ps)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = ps->hnext;
    if (ps->in_durable_list) {
        stream__pstate **dp = &b->durable_list;
        while (*dp && *dp != ps)
            dp = &(*dp)->dnext;
        if (*dp)
            *dp = ps->dnext;
    }
    stream__repl_forget(b, ps);
    b->ptab_len--;
    free(ps);
}

/* ---- the deadline heap ---- */

/* Sifting moves a hole instead of swapping: each entry that moves is written
 * once, and so is its waiter's heap_index (a store into a cold waiter, which
 * does not stall the way the loads of a pointer heap did). */

static void heap_place(stream_broker *b, size_t i, stream__heap_entry e)
{
    b->heap[i] = e;
    e.w->heap_index = i;
}

static void heap_up(stream_broker *b, size_t i)
{
    stream__heap_entry e = b->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (e.deadline_ms >= b->heap[parent].deadline_ms)
            break;
        heap_place(b, i, b->heap[parent]);
        i = parent;
    }
    heap_place(b, i, e);
}

static void heap_down(stream_broker *b, size_t i)
{
    stream__heap_entry e = b->heap[i];
    size_t n = b->heap_len;
    for (;;) {
        size_t m = 2 * i + 1;
        if (m >= n)
            break;
        if (m + 1 < n && b->heap[m + 1].deadline_ms < b->heap[m].deadline_ms)
            m++;
        if (b->heap[m].deadline_ms >= e.deadline_ms)
            break;
        heap_place(b, i, b->heap[m]);
        i = m;
    }
    heap_place(b, i, e);
}

static void heap_remove(stream_broker *b, stream__waiter *w)
{
    size_t i = w->heap_index;
    if (i == SIZE_MAX)
        return;
    b->heap_len--;
    if (i != b->heap_len) {
        stream__heap_entry last = b->heap[b->heap_len];
        b->heap[i] = last;
        /* The last entry moves up or down, never both. */
        if (i > 0 && last.deadline_ms < b->heap[(i - 1) / 2].deadline_ms)
            heap_up(b, i);
        else
            heap_down(b, i);
    }
    w->heap_index = SIZE_MAX;
}

/* Points the timer at the earliest deadline (or stops it). The timer is
 * left alone while it is already set for that deadline: with deadlines on a
 * grid, most changes of the heap's top keep the same one. */
static void rearm(stream_broker *b)
{
    if (!b->handles_open || b->in_wait_timer)
        return;
    if (b->heap_len == 0) {
        if (b->wait_armed) {
            uv_timer_stop(&b->wait_timer);
            b->wait_armed = false;
        }
        return;
    }
    uint64_t d = b->heap[0].deadline_ms;
    if (b->wait_armed && b->wait_armed_ms == d)
        return;
    uint64_t now = uv_now(&b->loop);
    uv_timer_start(&b->wait_timer, stream__wait_on_timer, d > now ? d - now : 0, 0);
    b->wait_armed = true;
    b->wait_armed_ms = d;
}

/* ---- waiters ---- */

/* The grid a deadline timeout_ms away is coalesced onto (file comment). */
static uint64_t wait_grid(uint64_t timeout_ms)
{
    uint64_t g = WAIT_TICK_MS;
    while (g * 2 <= WAIT_GRID_MAX_MS && g * 2 * WAIT_GRID_SHARE <= timeout_ms)
        g *= 2;
    return g;
}

stream__waiter *stream__waiter_new(stream_broker *b, stream__req *req, stream__wait_kind kind,
                                   size_t nlinks, stream__wait_fn complete, void *state)
{
    if (nlinks > (SIZE_MAX - sizeof(stream__waiter)) / sizeof(stream__wlink))
        return NULL;
    stream__waiter *w;
    if (nlinks <= WAIT_POOL_LINKS) {
        w = stream__pool_alloc(&b->waiter_pool, WAIT_POOL_BYTES);
        if (w == NULL)
            return NULL;
        /* Only what is used is cleared: the struct and its links. */
        memset(w, 0, sizeof(*w) + nlinks * sizeof(stream__wlink));
        nlinks = WAIT_POOL_LINKS;
    } else {
        w = calloc(1, sizeof(*w) + nlinks * sizeof(stream__wlink));
        if (w == NULL)
            return NULL;
    }
    w->broker = b;
    w->req = req;
    w->kind = kind;
    w->cap_links = nlinks;
    w->complete = complete;
    w->state = state;
    w->heap_index = SIZE_MAX;
    return w;
}

void stream__waiter_discard(stream__waiter *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nlinks; i++) {
        stream__wlink *l = &w->links[i];
        if (l->ps == NULL)
            continue;
        stream__wlink **head =
            w->kind == STREAM__WAIT_FETCH ? &l->ps->fetch_waiters : &l->ps->produce_waiters;
        if (l->prev)
            l->prev->next = l->next;
        else
            *head = l->next;
        if (l->next)
            l->next->prev = l->prev;
        l->ps = NULL;
    }
    heap_remove(w->broker, w);
    if (w->cap_links == WAIT_POOL_LINKS)
        stream__pool_put(&w->broker->waiter_pool, w);
    else
        free(w);
}

int stream__waiter_watch(stream__waiter *w, stream_log *log, int64_t need_offset)
{
    if (w->nlinks >= w->cap_links)
        return STREAM_EINVAL;
    stream_broker *b = w->broker;
    stream__pstate *ps = stream__pstate_get(b, log, true);
    if (ps == NULL)
        return STREAM_ENOMEM;
    /* A request may name one partition twice: one link, the larger need. */
    for (size_t i = 0; i < w->nlinks; i++) {
        if (w->links[i].ps == ps) {
            if (need_offset > w->links[i].need_offset)
                w->links[i].need_offset = need_offset;
            return 0;
        }
    }
    stream__wlink *l = &w->links[w->nlinks++];
    l->w = w;
    l->ps = ps;
    l->need_offset = need_offset;
    stream__wlink **head =
        w->kind == STREAM__WAIT_FETCH ? &ps->fetch_waiters : &ps->produce_waiters;
    l->prev = NULL;
    l->next = *head;
    if (*head)
        (*head)->prev = l;
    *head = l;
    if (w->kind == STREAM__WAIT_PRODUCE) {
        w->outstanding++;
        if (!ps->in_durable_list) {
            ps->in_durable_list = true;
            ps->dnext = b->durable_list;
            b->durable_list = ps;
        }
    }
    return 0;
}

void stream__waiter_start(stream__waiter *w, uint64_t timeout_ms)
{
    stream_broker *b = w->broker;
    uint64_t deadline = uv_now(&b->loop) + timeout_ms;
    if (timeout_ms >= WAIT_COALESCE_MIN_MS)
        deadline -= deadline % wait_grid(timeout_ms);
    w->req->waiter = w;
    if (b->heap_len == b->heap_cap) {
        size_t ncap = b->heap_cap ? b->heap_cap * 2 : 64;
        stream__heap_entry *nh = realloc(b->heap, ncap * sizeof(*nh));
        if (nh == NULL) {
            /* Without a heap slot it cannot time out: complete it now. */
            stream__waiter_finish(w, STREAM__WAIT_TIMEOUT);
            return;
        }
        b->heap = nh;
        b->heap_cap = ncap;
    }
    size_t i = b->heap_len++;
    b->heap[i] = (stream__heap_entry){.deadline_ms = deadline, .w = w};
    heap_up(b, i);
    if (w->heap_index == 0)
        rearm(b);
}

void stream__waiter_finish(stream__waiter *w, stream__wait_reason why)
{
    stream_broker *b = w->broker;
    bool was_first = w->heap_index == 0;
    stream__req *req = w->req;
    stream__wait_fn fn = w->complete;
    void *state = w->state;
    if (req)
        req->waiter = NULL;
    stream__waiter_discard(w);
    fn(b, req, state, why);
    if (was_first)
        rearm(b);
}

void stream__waiter_cancel(stream__waiter *w)
{
    stream__waiter_finish(w, STREAM__WAIT_CANCEL);
}

void stream__wait_on_append(stream_broker *b, stream_log *log, size_t bytes)
{
    stream__pstate *ps = stream__pstate_get(b, log, false);
    if (ps == NULL)
        return;
    /* Replicated, consumers wait for the high watermark instead
     * (stream__wait_on_high_watermark); followers for appends. */
    bool repl = ps->repl_known;
    for (stream__wlink *l = ps->fetch_waiters; l; l = l->next)
        if (!repl || l->w->replica)
            l->w->got_bytes += bytes;
    /* Finishing a waiter may close a connection and so cancel other waiters
     * on this queue: rescan from the head after each one. */
    for (;;) {
        stream__wlink *l = ps->fetch_waiters;
        while (l && l->w->got_bytes < l->w->min_bytes)
            l = l->next;
        if (l == NULL)
            break;
        stream__waiter_finish(l->w, STREAM__WAIT_READY);
    }
}

void stream__wait_durable_cb(stream_log *log, int64_t durable_offset, void *arg)
{
    stream_broker *b = arg;
    bool failed = stream_log_io_error(log, NULL, NULL, 0) != 0;
    if (!failed)
        stream__metrics_synced(b, log, durable_offset);
    pthread_mutex_lock(&b->durable_mu);
    bool wake = !b->durable_pending;
    b->durable_pending = true;
    if (failed)
        b->io_failed_pending = true;
    pthread_mutex_unlock(&b->durable_mu);
    if (wake)
        uv_async_send(&b->durable_async);
}

/* Marks links of `ps` whose offset is durable and finishes waiters with none
 * outstanding. Returns true when ps has no produce waiters left. */
static bool check_durable(stream_broker *b, stream__pstate *ps)
{
    /* Replicated: what every in-sync replica has on disk. */
    int64_t durable = ps->repl_known ? ps->high_watermark : stream_log_durable_offset(ps->log);
    for (stream__wlink *l = ps->produce_waiters; l; l = l->next) {
        if (!l->satisfied && durable >= l->need_offset) {
            l->satisfied = true;
            l->w->outstanding--;
        }
    }
    /* As in on_append: finishing may cancel others, so rescan each time. */
    for (;;) {
        stream__wlink *l = ps->produce_waiters;
        while (l && l->w->outstanding > 0)
            l = l->next;
        if (l == NULL)
            break;
        stream__waiter_finish(l->w, STREAM__WAIT_READY);
    }
    return ps->produce_waiters == NULL;
}

void stream__wait_on_high_watermark(stream_broker *b, stream__pstate *ps)
{
    if (ps->produce_waiters != NULL)
        (void)check_durable(b, ps); /* the durable list drops it on its next pass */
    /* Consumers' long polls: records became visible. Their count in bytes
     * is not known here; any is enough to answer (min_bytes is a floor
     * a fetch may answer below when woken, as on a timeout). */
    bool any = false;
    for (stream__wlink *l = ps->fetch_waiters; l; l = l->next)
        if (!l->w->replica) {
            l->w->got_bytes = SIZE_MAX / 2;
            any = true;
        }
    while (any) {
        stream__wlink *l = ps->fetch_waiters;
        while (l && (l->w->replica || l->w->got_bytes < l->w->min_bytes))
            l = l->next;
        if (l == NULL)
            break;
        stream__waiter_finish(l->w, STREAM__WAIT_READY);
    }
}

/* ---- I/O errors ------------------------------------------------------------- */

/* Answers every acks=all produce waiting on `log` at once: the sync they
 * wait for failed, and recovery is about to cut their offsets. A waiter
 * watching other logs too is answered whole (its completion says which
 * partitions are not confirmed). */
static void fail_produce_waiters(stream_broker *b, stream_log *log)
{
    stream__pstate *ps = stream__pstate_get(b, log, false);
    while (ps != NULL && ps->produce_waiters != NULL)
        stream__waiter_finish(ps->produce_waiters->w, STREAM__WAIT_IOERROR);
}

int stream__partition_recover(stream_broker *b, const char *topic, int32_t partition,
                              stream_log *log, char *msg, size_t msg_len)
{
    char what[300];
    uint64_t failures;
    int err = stream_log_io_error(log, &failures, what, sizeof what);
    if (err == 0)
        return 0;
    stream__pstate *ps = stream__pstate_get(b, log, true);
    if (ps != NULL && ps->io_failures_logged != failures) {
        ps->io_failures_logged = failures;
        stream__blog(b, STREAM_BROKER_ERROR,
                     "%s-%d: %s; the partition stops taking writes, acks=all produces waiting "
                     "on it get the error, and it is cut back to its last synced offset",
                     topic, (int)partition, what);
    }
    fail_produce_waiters(b, log);
    int64_t cut;
    char why[512];
    int rc = stream_log_recover(log, &cut, why, sizeof why);
    /* A failed attempt latches again: that is this failure still. */
    if (ps != NULL)
        (void)stream_log_io_error(log, &ps->io_failures_logged, NULL, 0);
    if (rc == 0) {
        if (cut >= 0)
            stream__blog(b, STREAM_BROKER_WARN,
                         "%s-%d: recovered in place: cut back to offset %lld (records written "
                         "after the last successful sync are gone); taking writes again",
                         topic, (int)partition, (long long)cut);
        else
            stream__blog(b, STREAM_BROKER_WARN,
                         "%s-%d: recovered in place: nothing to cut; taking writes again", topic,
                         (int)partition);
        return 0;
    }
    if (rc != STREAM_EAGAIN && cut >= 0)
        stream__blog(b, STREAM_BROKER_ERROR,
                     "%s-%d: recovery cut back to offset %lld (records written after the last "
                     "successful sync are gone), then failed: %s; tried again on a later "
                     "produce, at most once a second",
                     topic, (int)partition, (long long)cut, why);
    else if (rc != STREAM_EAGAIN)
        stream__blog(b, STREAM_BROKER_ERROR,
                     "%s-%d: recovery failed: %s; tried again on a later produce, at most once "
                     "a second",
                     topic, (int)partition, why);
    snprintf(msg, msg_len, "%s", what);
    return err;
}

/* Recovers every log whose sync failed (rare: a walk over all of them). */
static void recover_failed_logs(stream_broker *b)
{
    char msg[512];
    for (size_t i = 0; i < stream_store_topic_count(b->store); i++) {
        stream_topic *t = stream_store_topic_at(b->store, i);
        for (int32_t p = 0; p < t->partition_count; p++)
            (void)stream__partition_recover(b, t->name, p, t->partitions[p], msg, sizeof msg);
    }
}

void stream__wait_on_durable(uv_async_t *a)
{
    stream_broker *b = a->data;
    pthread_mutex_lock(&b->durable_mu);
    b->durable_pending = false;
    bool failed = b->io_failed_pending;
    b->io_failed_pending = false;
    pthread_mutex_unlock(&b->durable_mu);
    if (failed)
        recover_failed_logs(b);
    if (b->repl_on)
        stream__repl_on_durable(b);
    stream__pstate **pp = &b->durable_list;
    while (*pp) {
        stream__pstate *ps = *pp;
        if (check_durable(b, ps)) {
            *pp = ps->dnext;
            ps->in_durable_list = false;
            ps->dnext = NULL;
        } else {
            pp = &ps->dnext;
        }
    }
}

void stream__wait_on_timer(uv_timer_t *t)
{
    stream_broker *b = t->data;
    uint64_t now = uv_now(&b->loop);
    /* The timer is not running now (one-shot): re-arm once, at the end. */
    b->wait_armed = false;
    b->in_wait_timer = true;
    stream__conn_defer_flush(b, true);
    while (b->heap_len > 0 && b->heap[0].deadline_ms <= now) {
        /* The next to expire are among the root's children and their
         * children. */
        for (size_t k = 1; k < 7 && k < b->heap_len; k++) {
            if (b->heap[k].deadline_ms <= now)
                __builtin_prefetch(b->heap[k].w);
        }
        stream__waiter_finish(b->heap[0].w, STREAM__WAIT_TIMEOUT);
    }
    stream__conn_defer_flush(b, false);
    b->in_wait_timer = false;
    rearm(b);
}

void stream__pstate_drop(stream_broker *b, stream_log *log)
{
    stream__pstate *ps = stream__pstate_get(b, log, false);
    if (ps == NULL)
        return;
    while (ps->fetch_waiters)
        stream__waiter_finish(ps->fetch_waiters->w, STREAM__WAIT_DROPPED);
    while (ps->produce_waiters)
        stream__waiter_finish(ps->produce_waiters->w, STREAM__WAIT_DROPPED);
    pstate_remove(b, ps);
}

void stream__wait_complete_all(stream_broker *b)
{
    /* Produces first: one flush per log makes them durable, then answer. */
    for (stream__pstate *ps = b->durable_list; ps; ps = ps->dnext)
        stream_log_flush(ps->log);
    while (b->durable_list) {
        stream__pstate *ps = b->durable_list;
        b->durable_list = ps->dnext;
        ps->in_durable_list = false;
        ps->dnext = NULL;
        while (ps->produce_waiters)
            stream__waiter_finish(ps->produce_waiters->w, STREAM__WAIT_SHUTDOWN);
    }
    while (b->heap_len > 0)
        stream__waiter_finish(b->heap[0].w, STREAM__WAIT_SHUTDOWN);
}

void stream__wait_release(stream_broker *b)
{
    while (b->heap_len > 0)
        stream__waiter_finish(b->heap[0].w, STREAM__WAIT_CANCEL);
    for (size_t i = 0; i < b->ptab_cap; i++) {
        stream__pstate *p = b->ptab[i];
        while (p) {
            stream__pstate *next = p->hnext;
            free(p);
            p = next;
        }
    }
    free(b->ptab);
    b->ptab = NULL;
    b->ptab_cap = b->ptab_len = 0;
    b->durable_list = NULL;
    free(b->heap);
    b->heap = NULL;
    b->heap_len = b->heap_cap = 0;
}
