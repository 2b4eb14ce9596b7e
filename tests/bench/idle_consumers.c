/*
 * idle_consumers - many connections, each a consumer long-polling one
 * partition of a topic: what a broker costs while N consumers wait for data
 * that does not come, and how fast one record then wakes them all.
 *
 *   idle_consumers -b HOST:PORT -t TOPIC -n N [--max-wait-ms MS] [--seconds S]
 *                  [--until-records K] [--timeout-ms MS]
 *
 * Connection i fetches partition i mod P (P from the topic's metadata),
 * starting at its high watermark, with max_wait_ms (default 500, the C
 * consumer's default) and min_bytes 1, and sends the next fetch as soon as
 * one is answered: exactly what an idle stream-sub does, without a process
 * per consumer. The first fetches are spread over one max_wait_ms, so the
 * polls do not all time out together (as they would not for consumers
 * started at different times). It speaks the raw protocol (share/doc/protocol.md) over
 * non-blocking sockets in one epoll loop, so the load generator itself costs
 * next to nothing and the broker's CPU is what is measured.
 *
 * Once every connection has its hello answered and its first fetch sent it
 * prints "ready N" on
 * stdout (flushed). It stops after --seconds (default: never), on SIGINT or
 * SIGTERM, or, with --until-records K, when every connection has received K
 * records (exit 1 when --timeout-ms passes first, default 10000 after
 * ready), and prints one line:
 *
 *   connections N fetches F empty E records R min_records M wake_max_ms W
 *
 * wake_max_ms is the largest (receipt time - the record's timestamp) seen,
 * wall clock: for a record produced to a quiet topic, how long the slowest
 * waiter took to learn of it. RLIMIT_NOFILE is raised to its hard limit.
 * Exit 0, 1 on failure (a connection lost, an error response), 2 on usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/client.h"
#include "stream/error.h"
#include "stream/proto.h"

typedef struct conn {
    int fd;
    int32_t partition;
    int64_t offset;          /* next offset to fetch */
    stream_frame_reader fr;  /* response bytes */
    stream_buf out;          /* request bytes not yet sent */
    size_t out_sent;         /* of out */
    bool hello_ok;           /* hello answered */
    bool want_write;         /* EPOLLOUT registered */
    bool need_fetch;         /* the fetch in flight was answered: send the next */
    uint64_t records;        /* received */
} conn;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t now_ms(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("idle_consumers: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: idle_consumers -b HOST:PORT -t TOPIC -n N [--max-wait-ms MS] "
                    "[--seconds S] [--until-records K] [--timeout-ms MS]\n");
    exit(2);
}

static uint64_t next_id = 1;

static void queue_hello(conn *c)
{
    stream_frame f;
    stream_frame_start(&f, &c->out);
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, next_id++, 2);
    stream_pack_kv_int(&f.pk, "version", STREAM_PROTOCOL_VERSION);
    stream_pack_kv_cstr(&f.pk, "client", "idle_consumers");
    if (stream_frame_finish(&f) != 0)
        die("out of memory");
}

static void queue_fetch(conn *c, const char *topic, int max_wait_ms)
{
    stream_frame f;
    stream_frame_start(&f, &c->out);
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH, next_id++, 3);
    stream_pack_kv_int(&f.pk, "max_wait_ms", max_wait_ms);
    stream_pack_kv_int(&f.pk, "min_bytes", 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", c->partition);
    stream_pack_kv_int(&f.pk, "offset", c->offset);
    if (stream_frame_finish(&f) != 0)
        die("out of memory");
}

/* Writes what is queued; registers for EPOLLOUT while some is left. */
static void conn_send(int ep, conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            die("send: %s", strerror(errno));
        c->out_sent += (size_t)n;
    }
    if (c->out_sent == c->out.len) {
        stream_buf_reset(&c->out);
        c->out_sent = 0;
    }
    bool want = c->out.len > 0;
    if (want != c->want_write) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_write = want;
    }
}

typedef struct totals {
    uint64_t fetches, empty, records;
    int64_t wake_max_ms;
} totals;

/* Counts the records of one partition entry's batches at or after c->offset
 * and moves the offset past them. */
static void take_records(conn *c, const uint8_t *p, size_t n, totals *t)
{
    int64_t now = now_ms(CLOCK_REALTIME);
    size_t pos = 0;
    while (n - pos >= 61) {
        stream_batch_info info;
        if (stream_batch_header_decode(p + pos, n - pos, &info) != 0 || info.size > n - pos)
            die("partition %d: a batch does not decode", (int)c->partition);
        int64_t last = info.base_offset + info.last_offset_delta;
        if (last >= c->offset) {
            /* Records before the position (a batch that began earlier) are
             * not counted; without parsing records, count the overlap. */
            int64_t from = info.base_offset > c->offset ? info.base_offset : c->offset;
            uint64_t k = (uint64_t)(last - from + 1);
            c->records += k;
            t->records += k;
            c->offset = last + 1;
            if (now - info.max_timestamp > t->wake_max_ms)
                t->wake_max_ms = now - info.max_timestamp;
        }
        pos += info.size;
    }
}

/* One response frame: hello or fetch. */
static void on_response(conn *c, const uint8_t *p, size_t n, totals *t)
{
    stream_msg msg;
    stream_msg_init(&msg);
    char eb[256];
    if (stream_msg_parse(p, n, &msg, eb, sizeof(eb)) != 0)
        die("response does not parse: %s", eb);
    uint64_t id;
    int err;
    const char *text;
    size_t tl;
    if (stream_msg_response(&msg, &id, &err, &text, &tl, eb, sizeof(eb)) != 0)
        die("bad response: %s", eb);
    if (err != 0)
        die("partition %d: error %s: %.*s", (int)c->partition, stream_err_name(err), (int)tl,
            text ? text : "");
    if (!c->hello_ok) {
        c->hello_ok = true;
        stream_msg_release(&msg);
        return;
    }
    t->fetches++;
    c->need_fetch = true;
    const msgpack_object *topics, *parts, *pm;
    if (stream_field_array(&msg.root, "topics", &topics, eb, sizeof(eb)) != 0 ||
        topics->via.array.size != 1 ||
        stream_field_array(&topics->via.array.ptr[0], "partitions", &parts, eb, sizeof(eb)) !=
            0 ||
        parts->via.array.size != 1)
        die("fetch response without one topic and partition");
    pm = &parts->via.array.ptr[0];
    int64_t perr = 0;
    stream_field_int_opt(pm, "err", INT64_MIN, INT64_MAX, 0, &perr, NULL, 0);
    if (perr != 0)
        die("partition %d: fetch error %" PRId64, (int)c->partition, perr);
    const uint8_t *rec;
    size_t rlen;
    if (stream_field_bin(pm, "records", &rec, &rlen, eb, sizeof(eb)) != 0)
        die("fetch response: %s", eb);
    if (rlen == 0)
        t->empty++;
    else
        take_records(c, rec, rlen, t);
    stream_msg_release(&msg);
}

/* Reads what the socket has; handles every whole frame. */
static void conn_read(conn *c, totals *t)
{
    for (;;) {
        uint8_t *p;
        size_t avail;
        if (stream_frame_reader_prepare(&c->fr, 4096, &p, &avail) != 0)
            die("out of memory");
        ssize_t n = recv(c->fd, p, avail, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n == 0)
            die("partition %d: the broker closed the connection", (int)c->partition);
        if (n < 0)
            die("recv: %s", strerror(errno));
        char eb[200];
        if (stream_frame_reader_commit(&c->fr, (size_t)n, eb, sizeof(eb)) != 0)
            die("bad frame: %s", eb);
        const uint8_t *fp;
        size_t fl;
        while (stream_frame_reader_next(&c->fr, &fp, &fl) == 1) {
            on_response(c, fp, fl, t);
        }
    }
}

static int open_conn(const struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket: %s (raise ulimit -n)", strerror(errno));
    if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) != 0)
        die("connect: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        die("fcntl: %s", strerror(errno));
    return fd;
}

/* The partition count and each partition's high watermark. */
static int32_t topic_ends(const char *brokers, const char *topic, int64_t **hwm)
{
    stream_client_conf cc;
    stream_client_conf_init(&cc);
    cc.brokers = brokers;
    cc.client_name = "idle_consumers";
    stream_client *cl;
    char err[512];
    if (stream_client_new(&cc, &cl, err, sizeof(err)) != 0 ||
        stream_client_connect(cl, -1, err, sizeof(err)) != 0)
        die("%s", err);
    stream_metadata *md;
    const char *names[] = {topic};
    if (stream_client_metadata(cl, names, 1, -1, &md, err, sizeof(err)) != 0)
        die("%s", err);
    if (md->topic_count != 1 || md->topics[0].err != 0)
        die("unknown topic '%s' (create it first)", topic);
    int32_t np = md->topics[0].partition_count;
    *hwm = calloc((size_t)np, sizeof(**hwm));
    if (*hwm == NULL)
        die("out of memory");
    for (int32_t i = 0; i < np; i++)
        (*hwm)[i] = md->topics[0].partitions[i].high_watermark;
    stream_metadata_free(md);
    stream_client_free(cl);
    return np;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("STREAM_BROKERS"), *topic = NULL;
    long n = 0, max_wait_ms = 500, seconds = -1, until = -1, timeout_ms = 10000;
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"connections", required_argument, NULL, 'n'},
        {"max-wait-ms", required_argument, NULL, 'w'},
        {"seconds", required_argument, NULL, 's'},
        {"until-records", required_argument, NULL, 'u'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "b:t:n:", longopts, NULL)) != -1) {
        char *end = NULL;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        bool num = optarg && end != optarg && *end == '\0' && v >= 0;
        switch (opt) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'n': if (!num || v < 1) usage(); n = v; break;
        case 'w': if (!num) usage(); max_wait_ms = v; break;
        case 's': if (!num) usage(); seconds = v; break;
        case 'u': if (!num || v < 1) usage(); until = v; break;
        case 'T': if (!num) usage(); timeout_ms = v; break;
        default: usage();
        }
    }
    if (brokers == NULL || topic == NULL || n < 1 || optind != argc)
        usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int64_t *hwm;
    int32_t np = topic_ends(brokers, topic, &hwm);
    stream_hostport hp;
    char eb[256];
    if (stream_parse_hostport(brokers, strcspn(brokers, ","), 9292, &hp, eb, sizeof(eb)) != 0)
        die("%s", eb);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(hp.port)};
    if (inet_pton(AF_INET, strcmp(hp.host, "localhost") ? hp.host : "127.0.0.1",
                  &sin.sin_addr) != 1)
        die("'%s': only numeric IPv4 addresses", hp.host);

    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    conn *cs = calloc((size_t)n, sizeof(*cs));
    if (cs == NULL)
        die("out of memory");
    for (long i = 0; i < n; i++) {
        conn *c = &cs[i];
        c->partition = (int32_t)(i % np);
        c->offset = hwm[c->partition];
        stream_frame_reader_init(&c->fr, 64u << 20);
        stream_buf_init(&c->out);
        c->fd = open_conn(&sin);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
        queue_hello(c);
        conn_send(ep, c);
    }

    totals t = {0};
    long ready = 0;
    bool announced = false;
    int64_t t_ready = 0, t_end = seconds >= 0 ? now_ms(CLOCK_MONOTONIC) + seconds * 1000 : -1;
    /* First fetches are spread evenly over one max_wait_ms, as the polls of
     * consumers that started at different times are: connection i starts at
     * t_first + i * max_wait_ms / n. */
    int64_t t_first = now_ms(CLOCK_MONOTONIC);
    long started = 0;
    int status = 0;
    struct epoll_event evs[256];
    while (!stop_flag) {
        int64_t now = now_ms(CLOCK_MONOTONIC);
        if (t_end >= 0 && now >= t_end)
            break;
        if (until > 0 && announced && now - t_ready > timeout_ms) {
            status = 1;
            break;
        }
        int wait_ms = 100;
        while (started < n && now >= t_first + started * max_wait_ms / n) {
            conn *c = &cs[started++];
            queue_fetch(c, topic, (int)max_wait_ms);
            conn_send(ep, c);
        }
        if (started < n) {
            int64_t next = t_first + started * max_wait_ms / n - now;
            wait_ms = next < 1 ? 1 : next < wait_ms ? (int)next : wait_ms;
        }
        int k = epoll_wait(ep, evs, 256, wait_ms);
        if (k < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < k; i++) {
            conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                conn_send(ep, c);
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                bool was_hello = c->hello_ok;
                conn_read(c, &t);
                if (!was_hello && c->hello_ok)
                    ready++;
                /* A fetch came back (with or without records): poll again. */
                if (c->need_fetch) {
                    c->need_fetch = false;
                    queue_fetch(c, topic, (int)max_wait_ms);
                    conn_send(ep, c);
                }
            }
        }
        if (!announced && ready == n && started == n) {
            announced = true;
            t_ready = now_ms(CLOCK_MONOTONIC);
            printf("ready %ld\n", n);
            fflush(stdout);
        }
        if (until > 0 && announced) {
            long done = 0;
            for (long i = 0; i < n; i++)
                done += cs[i].records >= (uint64_t)until;
            if (done == n)
                break;
        }
    }
    uint64_t min_records = UINT64_MAX;
    long short_of = 0;
    for (long i = 0; i < n; i++) {
        if (cs[i].records < min_records)
            min_records = cs[i].records;
        if (until > 0 && cs[i].records < (uint64_t)until)
            short_of++;
    }
    printf("connections %ld fetches %" PRIu64 " empty %" PRIu64 " records %" PRIu64
           " min_records %" PRIu64 " wake_max_ms %" PRId64 "\n",
           n, t.fetches, t.empty, t.records, min_records, t.wake_max_ms);
    if (status != 0)
        fprintf(stderr, "idle_consumers: %ld of %ld connections had fewer than %ld records after "
                        "%ld ms\n",
                short_of, n, until, timeout_ms);
    for (long i = 0; i < n; i++) {
        close(cs[i].fd);
        stream_frame_reader_release(&cs[i].fr);
        stream_buf_release(&cs[i].out);
    }
    free(cs);
    free(hwm);
    close(ep);
    return status;
}
