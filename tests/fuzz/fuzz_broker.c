/*
 * fuzz_broker.c - a real broker fed a client's bytes: the request decoder of
 * every op, end to end ("the broker never crashes on a client's bytes").
 *
 * The broker has no pure decode-and-validate function per op (each handler
 * in broker_ops.c / broker_data.c decodes and acts in one pass), so this
 * target drives the whole thing: a broker runs on its own thread in this
 * process (data dir on tmpfs, port 0), and each input is one client
 * connection. Sanitizers see the broker's code as well as ours, so a bad
 * read in any handler is a crash here.
 *
 * Input: byte 0, bit 0: send a valid hello first (so the fuzzer reaches the
 * ops behind it without having to find one); the rest goes to the socket as
 * it is, then the client half-closes and reads until the broker closes (or
 * 100 ms of silence: a long-poll fetch may wait; the client then hangs up,
 * which the broker must also survive).
 *
 * Properties checked: the broker stays up (every connect succeeds), and
 * everything it sends is whole frames of MessagePack maps with an `id` and
 * an `err`, as the protocol says.
 *
 * State: topics created by earlier inputs stay, so a crash may depend on
 * what came before; the broker is restarted on a fresh data dir every 1000
 * inputs to keep that (and the disk) bounded. Replay a crash input alone
 * first; if it does not reproduce, rerun with -runs on the corpus.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "stream/broker.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/proto.h"

#ifndef RESTART_EVERY
#define RESTART_EVERY 1000
#endif
#define IDLE_MS       100
#define TOTAL_MS      3000

static stream_broker *broker;
static pthread_t broker_thread;
static char data_dir[64];
static uint16_t port;
static unsigned inputs; /* inputs since the broker started */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void *run_broker(void *arg)
{
    int rc = stream_broker_run(arg);
    FUZZ_CHECK_MSG(rc == 0, "broker run: %s", stream_err_name(rc));
    return NULL;
}

static void stop_broker(void)
{
    if (broker == NULL)
        return;
    stream_broker_stop(broker);
    pthread_join(broker_thread, NULL);
    stream_broker_free(broker);
    broker = NULL;
    nftw(data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void start_broker(void)
{
    struct stat st;
    const char *tmp =
        stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(data_dir, sizeof data_dir, "%s/stream-fuzz-broker.XXXXXX", tmp);
    FUZZ_CHECK(mkdtemp(data_dir) != NULL);

    char err[512];
    stream_config *cfg = stream_config_new();
    FUZZ_CHECK(cfg != NULL);
    static const char *const settings[][2] = {
        {"listen", "127.0.0.1:0"},  {"kafka.listen", "off"}, {"metrics.listen", "off"},
        {"log.level", "error"},     {"socket.request.max.bytes", "1048576"},
        {"flush.mode", "never"}, /* tmpfs: syncs would only slow the loop */
        {"segment.bytes", "65536"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        FUZZ_CHECK_MSG(stream_config_set(cfg, settings[i][0], settings[i][1], err, sizeof err) == 0,
                       "%s", err);
    FUZZ_CHECK(stream_config_set(cfg, "data.dir", data_dir, err, sizeof err) == 0);
#ifdef FUZZ_BROKER_CLUSTER
    {
        /* A cluster of one voter: the cluster's ops (replica fetch,
         * offset_for_leader_epoch, broker_heartbeat, alter_isr,
         * find_coordinator, admin through the quorum) answer for real. */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof a;
        FUZZ_CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
                   getsockname(s, (struct sockaddr *)&a, &alen) == 0);
        char voters[64];
        snprintf(voters, sizeof voters, "1@127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
        close(s);
        FUZZ_CHECK(stream_config_set(cfg, "node.id", "1", err, sizeof err) == 0);
        FUZZ_CHECK_MSG(stream_config_set(cfg, "cluster.voters", voters, err, sizeof err) == 0, "%s",
                       err);
    }
#endif

    stream_broker_options o;
    stream_broker_options_init(&o);
    o.config = cfg;
    int rc = stream_broker_new(&o, &broker, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "broker: %s", err);
    stream_config_free(cfg);

    char addr[128];
    stream_broker_address(broker, addr, sizeof addr);
    const char *colon = strrchr(addr, ':');
    FUZZ_CHECK(colon != NULL);
    port = (uint16_t)atoi(colon + 1);
    FUZZ_CHECK(pthread_create(&broker_thread, NULL, run_broker, broker) == 0);
    inputs = 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd; false after timeout_ms. */
static bool wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {fd, events, 0};
    int n;
    do
        n = poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

/* Sends what it can before the deadline; the broker may close early. */
static void send_all(int fd, const uint8_t *p, size_t len, int64_t deadline)
{
    while (len > 0 && now_ms() < deadline) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_fd(fd, POLLOUT, IDLE_MS);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return; /* closed by the broker (a bad frame, a failed hello) */
        }
    }
}

/* A hello frame, made once. */
static stream_buf hello;

static void make_hello(void)
{
    if (hello.len > 0)
        return;
    stream_frame f;
    stream_frame_start(&f, &hello);
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, 1, 2);
    stream_pack_kv_uint(&f.pk, "version", STREAM_PROTOCOL_VERSION);
    stream_pack_kv_cstr(&f.pk, "client", "fuzz");
    FUZZ_CHECK(stream_frame_finish(&f) == 0);
}

static void atexit_stop(void)
{
#ifdef FUZZ_BROKER_CLUSTER
    /* The run is over (libFuzzer printed its summary). Stopping a cluster
     * broker from inside exit() crashes in libraft's callbacks on the
     * broker's thread while the process is torn down around it (a
     * SIGTERM'd stream-broker stops cleanly): leave without stopping. */
    _exit(0);
#else
    stop_broker();
    stream_buf_release(&hello);
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (broker == NULL) {
        /* What handle_signals would do; this process owns its signals. The
         * broker writes to clients that hang up on it. */
        signal(SIGPIPE, SIG_IGN);
        make_hello();
        start_broker();
        atexit(atexit_stop);
    } else if (inputs >= RESTART_EVERY) {
        stop_broker();
        start_broker();
    }
    inputs++;
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t flags = fuzz_u8(&in);
    size_t len;
    const uint8_t *rest = fuzz_rest(&in, &len);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0 && errno == EINTR) {
        /* libFuzzer's -timeout alarm (SIGALRM) interrupted it; the connect
         * goes on in the background: wait for it, then take its result. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof err;
        while (poll(&pfd, 1, 5000) < 0 && errno == EINTR)
            ;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        rc = err == 0 ? 0 : -1;
        errno = err;
    }
    FUZZ_CHECK_MSG(rc == 0, "the broker stopped accepting: %s", strerror(errno));

    int64_t deadline = now_ms() + TOTAL_MS;
    if (flags & 1)
        send_all(fd, hello.data, hello.len, deadline);
    send_all(fd, rest, len, deadline);
    shutdown(fd, SHUT_WR);

    /* Everything the broker says must be well-formed frames. */
    stream_frame_reader fr;
    stream_frame_reader_init(&fr, STREAM_DEFAULT_MAX_FRAME_BYTES);
    stream_msg msg;
    stream_msg_init(&msg);
    char err[256];
    for (;;) {
        if (now_ms() >= deadline || !wait_fd(fd, POLLIN, IDLE_MS))
            break; /* a long poll still waiting: hang up on it */
        uint8_t buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        rc = stream_frame_reader_feed(&fr, buf, (size_t)n, err, sizeof err);
        FUZZ_CHECK_MSG(rc == 0, "broker sent a bad frame length: %s", err);
        const uint8_t *p;
        size_t plen;
        while ((rc = stream_frame_reader_next(&fr, &p, &plen)) == 1) {
            rc = stream_msg_parse(p, plen, &msg, err, sizeof err);
            FUZZ_CHECK_MSG(rc == 0, "broker sent a bad message: %s", err);
            uint64_t id;
            int e;
            const char *text;
            size_t text_len;
            rc = stream_msg_response(&msg, &id, &e, &text, &text_len, err, sizeof err);
            FUZZ_CHECK_MSG(rc == 0, "broker sent a bad response: %s", err);
        }
    }
    close(fd);
    stream_msg_release(&msg);
    stream_frame_reader_release(&fr);
    return 0;
}
