/*
 * proc.c - the processor's plumbing (proc.h): batches of a consumer group's
 * records through one run of a command each, its output lines published,
 * the batch's offsets stored once every output is acknowledged.
 *
 * A batch goes through three stages. Collect: records are taken from the
 * consumer while it has them ready (up to max_records / max_input_bytes),
 * each encoded at once into one input buffer (the consumer's records are
 * borrowed until its next poll), with its key copied aside. Run: the batch
 * is split by key when outputs keep keys (a stable sort of the entries), and
 * each group's input is written to a fresh run of the command while its
 * output is read, both through non-blocking pipes under one poll(2), so a
 * command that writes before it has read everything never deadlocks; the
 * producer and the consumer's client are polled in between, so the previous
 * batch's acknowledgements and the group's heartbeats go on during a long
 * run. Publish: once every run of the batch exited 0, each output line
 * becomes a record; the batch waits in a FIFO until its outputs are all
 * acknowledged, then its offsets are stored (in FIFO order: a later batch
 * acknowledged first waits for the earlier ones).
 *
 * The command runs in a process group of its own, so a timeout kills
 * whatever it started too (`sh -c 'a | b'`), and a Ctrl-C on the terminal
 * reaches stream-proc, which then stops the run itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/error.h"
#include "stream/proc.h"
#include "base/internal.h"

extern char **environ;

/* Batches whose outputs may wait for acknowledgement at once. */
#define MAX_PENDING 4
/* Bytes moved per read(2)/write(2) on the command's pipes. */
#define PIPE_CHUNK ((size_t)64 << 10)
/* run_cmd's return for a run stopped by *stop (not an error). */
#define STOPPED 1

/* One record of the batch being collected. */
typedef struct entry {
    size_t in_off;     /* its encoded input: pr->in.data[in_off .. in_off + in_len) */
    size_t in_len;
    size_t key_off;    /* its key: pr->keys.data[key_off .. key_off + key_len) */
    int32_t key_len;   /* -1: a null key */
    int32_t partition; /* where it came from */
    int64_t offset;
} entry;

/* The output of one run: lines of pr->out, all with one key. */
typedef struct run_out {
    size_t start, end; /* pr->out.data[start .. end) */
    size_t key_entry;  /* the entry whose key the outputs take (keep_key), else SIZE_MAX */
} run_out;

/* A batch whose outputs were produced: it waits for their acknowledgements. */
typedef struct batch {
    uint64_t outstanding; /* outputs produced and not yet reported */
    uint64_t outputs;     /* outputs produced */
    uint64_t records;     /* input records */
    uint64_t runs;        /* runs of the command */
    bool broken;          /* an output failed: the batch never counts as processed */
    int64_t *ends;        /* per partition: offset after its last record here; -1 none */
    size_t nends;         /* entries in ends */
    struct batch *next;   /* the next batch in the FIFO */
} batch;

struct stream_proc {
    stream_proc_conf conf;   /* what the caller asked for */
    stream_buf in;           /* the collecting batch's encoded records */
    stream_buf keys;         /* their keys, copied */
    entry *ents;             /* the collecting batch's records, in poll order */
    size_t nents, ents_cap;
    size_t *order;           /* indices of ents, sorted by key for the runs */
    stream_buf feed;         /* one key group's input, made contiguous */
    stream_buf out;          /* the batch's output, every run's, in run order */
    run_out *runs;           /* the batch's runs */
    size_t nruns, runs_cap;
    batch *head, *tail;      /* the FIFO of batches waiting for acknowledgements */
    size_t npending;         /* batches in it */
    int err;                 /* the first failed delivery's code; 0 if none */
    char errmsg[640];        /* and its message */
    stream_proc_stats stats; /* counters */
};

static int64_t now_ms(void)
{
    return stream__mono_ns() / 1000000;
}

void stream_proc_conf_init(stream_proc_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->keep_key = true;
    conf->max_records = 10000;
    conf->max_input_bytes = (size_t)4 << 20;
    conf->max_record_bytes = (size_t)1 << 20;
    conf->max_output_bytes = (size_t)64 << 20;
    conf->timeout_ms = 60000;
}

int stream_proc_new(const stream_proc_conf *conf, stream_proc **out, char *errbuf,
                    size_t errbuf_len)
{
    if (conf->argv == NULL || conf->argv[0] == NULL || conf->argv[0][0] == '\0')
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no command given");
    if (conf->in_topic == NULL || conf->out_topic == NULL || conf->consumer == NULL ||
        conf->consumer_client == NULL || conf->encode == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "topics, consumer, its client and encode are required");
    if (conf->max_records == 0 || conf->max_input_bytes == 0 || conf->max_record_bytes == 0 ||
        conf->max_output_bytes < conf->max_record_bytes || conf->timeout_ms <= 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "batch limits and the timeout must be positive, and the output "
                            "limit at least the record limit");
    stream_proc *pr = calloc(1, sizeof *pr);
    if (pr == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    pr->conf = *conf;
    stream_buf_init(&pr->in);
    stream_buf_init(&pr->keys);
    stream_buf_init(&pr->feed);
    stream_buf_init(&pr->out);
    *out = pr;
    return 0;
}

void stream_proc_set_producer(stream_proc *pr, stream_producer *p)
{
    pr->conf.producer = p;
}

static void batch_free(batch *b)
{
    if (b) {
        free(b->ends);
        free(b);
    }
}

void stream_proc_free(stream_proc *pr)
{
    if (pr == NULL)
        return;
    while (pr->head) {
        batch *b = pr->head;
        pr->head = b->next;
        batch_free(b);
    }
    stream_buf_release(&pr->in);
    stream_buf_release(&pr->keys);
    stream_buf_release(&pr->feed);
    stream_buf_release(&pr->out);
    free(pr->ents);
    free(pr->order);
    free(pr->runs);
    free(pr);
}

void stream_proc_stats_get(const stream_proc *pr, stream_proc_stats *out)
{
    *out = pr->stats;
}

void stream_proc_on_delivery(stream_producer *p, const stream_delivery *d, void *opaque)
{
    stream_proc *pr = opaque;
    batch *b = d->opaque;
    if (d->err != 0) {
        b->broken = true;
        if (pr->err == 0) {
            pr->err = d->err;
            snprintf(pr->errmsg, sizeof pr->errmsg, "cannot publish to '%s': %s",
                     pr->conf.out_topic, d->msg && *d->msg ? d->msg : stream_strerror(d->err));
        }
    }
    b->outstanding--;
}

/* Keeps the other work going while we wait on the command: the previous
 * batches' acknowledgements, the group's heartbeats. */
static void keep_alive(stream_proc *pr)
{
    stream_producer_poll(pr->conf.producer, 0);
    stream_client_poll(pr->conf.consumer_client, 0);
}

/* Stores the offsets of the batches at the FIFO's head whose outputs are
 * all acknowledged. */
static void advance(stream_proc *pr)
{
    while (pr->head && pr->head->outstanding == 0 && !pr->head->broken) {
        batch *b = pr->head;
        for (size_t p = 0; p < b->nends; p++)
            if (b->ends[p] >= 0)
                /* STREAM_ENOENT: the partition went to another member
                 * meanwhile; it replays from what was committed. */
                (void)stream_consumer_store_offset(pr->conf.consumer, pr->conf.in_topic,
                                                   (int32_t)p, b->ends[p]);
        pr->stats.records += b->records;
        pr->stats.outputs += b->outputs;
        pr->stats.runs += b->runs;
        pr->stats.batches++;
        pr->head = b->next;
        if (pr->head == NULL)
            pr->tail = NULL;
        pr->npending--;
        batch_free(b);
    }
}

static bool stopped(const stream_proc *pr)
{
    return pr->conf.stop && *pr->conf.stop;
}

/* ---- collect -------------------------------------------------------------- */

static int batch_note(batch *b, int32_t partition, int64_t offset)
{
    if ((size_t)partition >= b->nends) {
        size_t n = (size_t)partition + 1;
        int64_t *e = realloc(b->ends, n * sizeof *e);
        if (e == NULL)
            return STREAM_ENOMEM;
        for (size_t i = b->nends; i < n; i++)
            e[i] = -1;
        b->ends = e;
        b->nends = n;
    }
    b->ends[partition] = offset + 1;
    b->records++;
    return 0;
}

static int add_record(stream_proc *pr, batch *b, const stream_consumer_event *ev, char *errbuf,
                      size_t errbuf_len)
{
    if (pr->nents == pr->ents_cap) {
        size_t cap = pr->ents_cap ? pr->ents_cap * 2 : 256;
        entry *e = realloc(pr->ents, cap * sizeof *e);
        if (e == NULL)
            return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
        pr->ents = e;
        pr->ents_cap = cap;
    }
    entry *e = &pr->ents[pr->nents];
    e->in_off = pr->in.len;
    int rc = pr->conf.encode(pr->conf.codec_arg, ev, &pr->in, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    e->in_len = pr->in.len - e->in_off;
    e->key_off = pr->keys.len;
    e->key_len = ev->record.key_len;
    if (e->key_len > 0)
        stream_buf_put(&pr->keys, ev->record.key, (size_t)e->key_len);
    e->partition = ev->partition;
    e->offset = ev->record.offset;
    if (pr->in.oom || pr->keys.oom || batch_note(b, ev->partition, ev->record.offset) != 0)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    pr->nents++;
    return 0;
}

/* Takes the records the consumer has ready into a new batch (waiting a
 * little for the first). Returns 0 (pr->nents may be 0) or an error. */
static int collect(stream_proc *pr, batch *b, char *errbuf, size_t errbuf_len)
{
    stream_consumer_event ev;
    /* Short waits while outputs wait for acknowledgements: those arrive on
     * the producer's client, polled between. */
    int wait_ms = pr->npending ? 5 : 200;
    while (pr->nents < pr->conf.max_records && pr->in.len < pr->conf.max_input_bytes) {
        int prc = stream_consumer_poll(pr->conf.consumer, pr->nents ? 0 : wait_ms, &ev);
        if (prc < 0)
            return stream__fail(prc, errbuf, errbuf_len, "%s", stream_strerror(prc));
        if (prc == 0)
            break;
        if (ev.type == STREAM_EVENT_RECORD) {
            int rc = add_record(pr, b, &ev, errbuf, errbuf_len);
            if (rc != 0)
                return rc;
        } else if (ev.type == STREAM_EVENT_ERROR) {
            int err = ev.err ? ev.err : STREAM_EIO;
            return stream__fail(err, errbuf, errbuf_len, "%s",
                                ev.msg && *ev.msg ? ev.msg : stream_strerror(err));
        }
        if (pr->nents == 0 && stopped(pr))
            break;
    }
    return 0;
}

/* ---- run ------------------------------------------------------------------ */

/* Starts the command with pipes on its standard input and output (ours
 * non-blocking), in a process group of its own, with the signals we ignore
 * or catch back at their defaults. */
static int spawn(stream_proc *pr, pid_t *pid, int *wfd, int *rfd, char *errbuf, size_t errbuf_len)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "cannot make a pipe: %s",
                            strerror(errno));
    if (pipe2(out, O_CLOEXEC) != 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "cannot make a pipe: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawnattr_init(&at);
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETPGROUP);
    int rc = posix_spawnp(pid, pr->conf.argv[0], &fa, &at, pr->conf.argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "cannot run '%s': %s",
                            pr->conf.argv[0], strerror(rc));
    }
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    *wfd = in[1];
    *rfd = out[0];
    return 0;
}

/* Reads what the command wrote into pr->out (the batch's output so far),
 * checking line lengths from *line_start (where the current line began) on
 * and the batch's output limit.
 * Returns 1 at EOF, 0 after a read (or nothing ready), or an error. */
static int read_output(stream_proc *pr, int fd, size_t *line_start, char *errbuf,
                       size_t errbuf_len)
{
    if (stream_buf_reserve(&pr->out, PIPE_CHUNK) != 0)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    ssize_t n = read(fd, pr->out.data + pr->out.len, pr->out.cap - pr->out.len);
    if (n == 0)
        return 1;
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "cannot read the output of '%s': %s",
                            pr->conf.argv[0], strerror(errno));
    }
    size_t from = pr->out.len;
    pr->out.len += (size_t)n;
    const uint8_t *p = pr->out.data + from, *end = pr->out.data + pr->out.len, *nl;
    bool too_long = false;
    while (!too_long && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        too_long = (size_t)(nl - pr->out.data) - *line_start > pr->conf.max_record_bytes;
        *line_start = (size_t)(nl - pr->out.data) + 1;
        p = nl + 1;
    }
    if (too_long || pr->out.len - *line_start > pr->conf.max_record_bytes)
        return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                            "'%s' wrote a line longer than %zu bytes (the record limit, "
                            "--max-record-bytes)",
                            pr->conf.argv[0], pr->conf.max_record_bytes);
    if (pr->out.len > pr->conf.max_output_bytes)
        return stream__fail(STREAM_ETOOLARGE, errbuf, errbuf_len,
                            "'%s' wrote more than %zu bytes for one batch (use a smaller --batch)",
                            pr->conf.argv[0], pr->conf.max_output_bytes);
    return 0;
}

/* Writes the next chunk of the input. Returns 1 when the command takes no
 * more (all written, or it closed its end: a filter may stop early). */
static int write_input(int fd, const uint8_t *in, size_t len, size_t *written)
{
    if (*written == len)
        return 1;
    size_t n = len - *written < PIPE_CHUNK ? len - *written : PIPE_CHUNK;
    ssize_t w = write(fd, in + *written, n);
    if (w > 0)
        *written += (size_t)w;
    else if (w < 0 && errno != EAGAIN && errno != EINTR)
        return 1; /* EPIPE: the command stopped reading */
    return *written == len;
}

/* Waits for the command's exit, up to the deadline. Returns 0 with *status,
 * STREAM_ETIMEDOUT / STOPPED (the caller kills it), or STREAM_EIO when there
 * is no status to have (SIGCHLD ignored: the caller must not). */
static int wait_exit(stream_proc *pr, pid_t pid, int64_t deadline, int *status, char *errbuf,
                     size_t errbuf_len)
{
    int pause_ms = 0;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return stream__fail(STREAM_EIO, errbuf, errbuf_len,
                                "cannot learn how '%s' exited: %s", pr->conf.argv[0],
                                strerror(errno));
        if (stopped(pr))
            return STOPPED;
        if (now_ms() >= deadline)
            return STREAM_ETIMEDOUT;
        pause_ms = pause_ms < 20 ? pause_ms + 1 : 20;
        poll(NULL, 0, pause_ms);
        keep_alive(pr);
    }
}

/* One run of the command on in[0..len): its output is appended to pr->out.
 * `what` describes the input for messages. Returns 0, STOPPED, or an error. */
static int run_cmd(stream_proc *pr, const uint8_t *in, size_t len, const char *what,
                   char *errbuf, size_t errbuf_len)
{
    pid_t pid;
    int wfd, rfd;
    int rc = spawn(pr, &pid, &wfd, &rfd, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    int64_t deadline = now_ms() + pr->conf.timeout_ms;
    size_t written = 0, line_start = pr->out.len;
    if (len == 0) {
        close(wfd);
        wfd = -1;
    }
    while (rfd >= 0) {
        if (stopped(pr)) {
            rc = STOPPED;
            break;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            rc = STREAM_ETIMEDOUT;
            break;
        }
        struct pollfd fds[2] = {{.fd = rfd, .events = POLLIN}, {.fd = wfd, .events = POLLOUT}};
        int n = poll(fds, wfd >= 0 ? 2 : 1, left < 50 ? (int)left : 50);
        keep_alive(pr);
        if (n <= 0)
            continue;
        if (wfd >= 0 && fds[1].revents && write_input(wfd, in, len, &written) == 1) {
            close(wfd);
            wfd = -1;
        }
        if (fds[0].revents) {
            int r = read_output(pr, rfd, &line_start, errbuf, errbuf_len);
            if (r < 0) {
                rc = r;
                break;
            }
            if (r == 1) {
                close(rfd);
                rfd = -1;
            }
        }
    }
    if (wfd >= 0)
        close(wfd);
    if (rfd >= 0)
        close(rfd);
    int status = 0;
    if (rc == 0)
        rc = wait_exit(pr, pid, deadline, &status, errbuf, errbuf_len);
    if (rc != 0) {
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (rc == STREAM_ETIMEDOUT)
            stream__errf(errbuf, errbuf_len,
                         "'%s' did not finish %s within %d ms (--timeout); it was killed",
                         pr->conf.argv[0], what, pr->conf.timeout_ms);
        return rc;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "'%s' exited with status %d on %s",
                            pr->conf.argv[0], WEXITSTATUS(status), what);
    return stream__fail(STREAM_EIO, errbuf, errbuf_len, "'%s' was killed by signal %d (%s) on %s",
                        pr->conf.argv[0], WTERMSIG(status), strsignal(WTERMSIG(status)), what);
}

/* Orders entries by key (null first), then by poll order: each key's
 * records stay in offset order. */
static int by_key(const void *a, const void *b, void *arg)
{
    const stream_proc *pr = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    const entry *x = &pr->ents[ia], *y = &pr->ents[ib];
    if (x->key_len != y->key_len && (x->key_len < 0 || y->key_len < 0))
        return x->key_len < y->key_len ? -1 : 1;
    int32_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n > 0 ? memcmp(pr->keys.data + x->key_off, pr->keys.data + y->key_off, (size_t)n) : 0;
    if (c == 0 && x->key_len != y->key_len)
        c = x->key_len < y->key_len ? -1 : 1;
    if (c != 0)
        return c;
    return ia < ib ? -1 : ia > ib;
}

static bool same_key(const stream_proc *pr, const entry *x, const entry *y)
{
    return x->key_len == y->key_len &&
           (x->key_len <= 0 ||
            memcmp(pr->keys.data + x->key_off, pr->keys.data + y->key_off, (size_t)x->key_len) ==
                0);
}

static int add_run(stream_proc *pr, size_t start, size_t key_entry)
{
    if (pr->nruns == pr->runs_cap) {
        size_t cap = pr->runs_cap ? pr->runs_cap * 2 : 16;
        run_out *r = realloc(pr->runs, cap * sizeof *r);
        if (r == NULL)
            return STREAM_ENOMEM;
        pr->runs = r;
        pr->runs_cap = cap;
    }
    pr->runs[pr->nruns++] = (run_out){.start = start, .end = pr->out.len, .key_entry = key_entry};
    return 0;
}

/* Runs the command over the collected batch: once, or once per key. */
static int run_batch(stream_proc *pr, char *errbuf, size_t errbuf_len)
{
    char what[160];
    const entry *first = &pr->ents[0];
    snprintf(what, sizeof what, "a batch of %zu records from partition %d offset %lld", pr->nents,
             (int)first->partition, (long long)first->offset);
    stream_buf_reset(&pr->out);
    pr->nruns = 0;
    bool by_keys = pr->conf.keep_key && pr->conf.decode == NULL;
    if (!by_keys) {
        int rc = run_cmd(pr, pr->in.data, pr->in.len, what, errbuf, errbuf_len);
        if (rc == 0 && add_run(pr, 0, SIZE_MAX) != 0)
            rc = stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
        return rc;
    }
    size_t *order = realloc(pr->order, pr->nents * sizeof *order);
    if (order == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    pr->order = order;
    for (size_t i = 0; i < pr->nents; i++)
        order[i] = i;
    qsort_r(order, pr->nents, sizeof *order, by_key, pr);
    for (size_t i = 0; i < pr->nents;) {
        size_t j = i + 1;
        while (j < pr->nents && same_key(pr, &pr->ents[order[i]], &pr->ents[order[j]]))
            j++;
        const uint8_t *in = pr->in.data;
        size_t len = pr->in.len;
        if (j - i < pr->nents) { /* a group of its own: gather its input */
            stream_buf_reset(&pr->feed);
            for (size_t k = i; k < j; k++)
                stream_buf_put(&pr->feed, pr->in.data + pr->ents[order[k]].in_off,
                               pr->ents[order[k]].in_len);
            if (pr->feed.oom)
                return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
            in = pr->feed.data;
            len = pr->feed.len;
        }
        size_t start = pr->out.len;
        int rc = run_cmd(pr, in, len, what, errbuf, errbuf_len);
        if (rc != 0)
            return rc;
        if (add_run(pr, start, order[i]) != 0)
            return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
        i = j;
    }
    return 0;
}

/* ---- publish -------------------------------------------------------------- */

static int produce_one(stream_proc *pr, batch *b, stream_producer_record *rec, char *errbuf,
                       size_t errbuf_len)
{
    char why[512] = "";
    rec->topic = pr->conf.out_topic;
    rec->opaque = b;
    int rc;
    while ((rc = stream_producer_produce(pr->conf.producer, rec, why, sizeof why)) ==
           STREAM_EAGAIN) {
        int prc = stream_producer_poll(pr->conf.producer, 10);
        if (prc < 0)
            return stream__fail(prc, errbuf, errbuf_len, "cannot publish to '%s': %s",
                                pr->conf.out_topic, stream_strerror(prc));
    }
    if (rc != 0)
        return stream__fail(rc, errbuf, errbuf_len, "cannot publish to '%s': %s",
                            pr->conf.out_topic, why[0] ? why : stream_strerror(rc));
    b->outstanding++;
    b->outputs++;
    return 0;
}

/* Publishes one output line of run r. */
static int publish_line(stream_proc *pr, batch *b, const run_out *r, const uint8_t *line,
                        size_t len, uint64_t lineno, char *errbuf, size_t errbuf_len)
{
    stream_producer_record rec = {0};
    rec.partition = STREAM_PARTITION_ANY;
    if (pr->conf.decode) {
        char why[512] = "";
        int rc = pr->conf.decode(pr->conf.codec_arg, line, len, &rec, why, sizeof why);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return stream__fail(rc, errbuf, errbuf_len, "'%s' wrote output line %llu that is "
                                "not a record: %s",
                                pr->conf.argv[0], (unsigned long long)lineno, why);
    } else {
        rec.value = line;
        rec.value_len = (int32_t)len;
    }
    if (r->key_entry != SIZE_MAX) {
        const entry *e = &pr->ents[r->key_entry];
        rec.key_len = e->key_len;
        rec.key = e->key_len >= 0 ? pr->keys.data + e->key_off : NULL;
    }
    return produce_one(pr, b, &rec, errbuf, errbuf_len);
}

/* Turns every run's output into records of the output topic. */
static int publish(stream_proc *pr, batch *b, char *errbuf, size_t errbuf_len)
{
    uint64_t lineno = 0;
    for (size_t i = 0; i < pr->nruns; i++) {
        const run_out *r = &pr->runs[i];
        const uint8_t *p = pr->out.data + r->start, *end = pr->out.data + r->end;
        while (p < end) {
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            const uint8_t *stop = nl ? nl : end;
            int rc = publish_line(pr, b, r, p, (size_t)(stop - p), ++lineno, errbuf, errbuf_len);
            if (rc != 0)
                return rc;
            p = nl ? nl + 1 : end;
        }
        b->runs++;
    }
    return 0;
}

/* Collects, runs and publishes one batch. Returns 0 (also when there was
 * nothing to collect: *empty), STOPPED, or an error. */
static int one_batch(stream_proc *pr, bool *empty, char *errbuf, size_t errbuf_len)
{
    batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    stream_buf_reset(&pr->in);
    stream_buf_reset(&pr->keys);
    pr->nents = 0;
    int rc = collect(pr, b, errbuf, errbuf_len);
    *empty = rc == 0 && pr->nents == 0;
    if (rc == 0 && !*empty)
        rc = run_batch(pr, errbuf, errbuf_len);
    if (rc != 0 || *empty) {
        batch_free(b);
        return rc;
    }
    /* From here on deliveries point at b: it joins the FIFO whatever
     * happens, and a failure marks it broken so it is never stored. */
    if (pr->tail)
        pr->tail->next = b;
    else
        pr->head = b;
    pr->tail = b;
    pr->npending++;
    rc = publish(pr, b, errbuf, errbuf_len);
    if (rc != 0)
        b->broken = true;
    return rc;
}

int stream_proc_run(stream_proc *pr, char *errbuf, size_t errbuf_len)
{
    if (pr->conf.producer == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no producer");
    int rc = 0;
    while (!stopped(pr) && pr->err == 0) {
        advance(pr);
        /* Nothing in flight: every record polled so far is processed, so
         * every position may be stored - also of a partition that had no
         * records, which a rebalance waits for before it moves it. */
        if (pr->npending == 0)
            (void)stream_consumer_store_positions(pr->conf.consumer);
        while (pr->npending >= MAX_PENDING && pr->err == 0 && !stopped(pr)) {
            if (stream_producer_poll(pr->conf.producer, 10) < 0)
                break;
            stream_client_poll(pr->conf.consumer_client, 0);
            advance(pr);
        }
        bool empty = false;
        rc = one_batch(pr, &empty, errbuf, errbuf_len);
        if (rc == STOPPED) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (empty) {
            if (stream_consumer_done(pr->conf.consumer))
                break;
            stream_producer_poll(pr->conf.producer, 0);
        }
    }
    /* Whatever ended the loop, the outputs already produced are waited for,
     * so every good batch before a failure gets its offsets stored. */
    stream_producer_flush(pr->conf.producer, -1);
    advance(pr);
    if (rc == 0 && pr->err != 0) {
        rc = pr->err;
        stream__errf(errbuf, errbuf_len, "%s", pr->errmsg);
    }
    return rc;
}
