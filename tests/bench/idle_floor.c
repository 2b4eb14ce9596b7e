/*
 * idle_floor - the machine's limit for idle long polls: what the kernel alone
 * costs a server whose N connections each send a request and get an answer
 * max_wait_ms later, as N idle consumers do to a broker.
 *
 *   idle_floor serve [--max-wait-ms MS]      (prints "port P", then serves)
 *   idle_floor poll -p PORT -n N [--seconds S]
 *
 * `serve` listens on a free loopback port and answers every request it reads
 * (whatever its bytes) with ANSWER_BYTES bytes once max_wait_ms (default 500)
 * has passed, the deadline coalesced onto the same grid as the broker's
 * (10 ms, doubled while within 4 % of the wait, at most 160 ms:
 * libstream/broker/broker_wait.c), the answers due on one grid point written back
 * to back. It makes the system calls the broker makes for an idle long poll
 * (one epoll wake-up per grid point and per burst of requests, one read per
 * request, one write per answer) and nothing else: no parsing, no state
 * beyond a slot per connection. Its CPU, next to the broker's under the same
 * load, says how much of the broker's is the kernel's. Runs until killed.
 *
 * `poll` opens N connections to PORT, spread over one max_wait_ms (a
 * connection every max_wait_ms / N) as idle_consumers spreads its first
 * fetches, each sending REQUEST_BYTES bytes and the next request as soon as
 * an answer has arrived, for S seconds (default: until killed). The sizes
 * are those of an idle_consumers fetch and of the broker's empty answer.
 *
 * Exit 0, 1 on failure, 2 on usage. Tests/bench/scale.sh runs both.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_BYTES 95 /* an idle_consumers fetch of one partition */
#define ANSWER_BYTES  106 /* the broker's answer to it, without records */
#define GRID_MIN_MS   10
#define GRID_MAX_MS   160
#define GRID_SHARE    25
#define SLOTS         1024 /* grid points a wait can span: max_wait_ms / 10 + 1 */
#define EVENTS        1024

/* One grid point's answers: the descriptors to write to. */
typedef struct slot {
    uint64_t due_ms;
    int *fds;
    size_t len, cap;
} slot;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
    fprintf(stderr, "idle_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static uint64_t grid_ms(uint64_t wait_ms)
{
    uint64_t g = GRID_MIN_MS;
    while (g * 2 <= GRID_MAX_MS && g * 2 * GRID_SHARE <= wait_ms)
        g *= 2;
    return g;
}

static void add_fd(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl");
}

static _Noreturn void serve(uint64_t wait_ms)
{
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 4096) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) != 0)
        die("listen");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    add_fd(ep, l);
    uint64_t grid = wait_ms >= 100 ? grid_ms(wait_ms) : 1;
    static slot slots[SLOTS];
    static uint8_t buf[65536];
    static uint8_t answer[ANSWER_BYTES];
    memset(answer, 'a', sizeof(answer));
    struct epoll_event evs[EVENTS];
    for (;;) {
        uint64_t now = now_ms();
        int timeout = -1;
        for (size_t i = 0; i < SLOTS; i++) {
            slot *s = &slots[i];
            if (s->len == 0)
                continue;
            if (s->due_ms <= now) {
                for (size_t j = 0; j < s->len; j++)
                    if (write(s->fds[j], answer, sizeof(answer)) < 0 && errno != EAGAIN)
                        close(s->fds[j]);
                s->len = 0;
            } else if (timeout < 0 || s->due_ms - now < (uint64_t)timeout) {
                timeout = (int)(s->due_ms - now);
            }
        }
        int n = epoll_wait(ep, evs, EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                if (c >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    add_fd(ep, c);
                }
                continue;
            }
            ssize_t k = read(fd, buf, sizeof(buf));
            if (k == 0 || (k < 0 && errno != EAGAIN)) {
                close(fd);
                continue;
            }
            if (k < 0)
                continue;
            uint64_t due = now_ms() + wait_ms;
            due -= due % grid;
            slot *s = &slots[(due / grid) % SLOTS];
            if (s->len == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                int *fds = realloc(s->fds, cap * sizeof(*fds));
                if (fds == NULL)
                    die("realloc");
                s->fds = fds;
                s->cap = cap;
            }
            s->due_ms = due;
            s->fds[s->len++] = fd;
        }
    }
}

static int poll_server(int port, int n, uint64_t wait_ms, int seconds)
{
    int one = 1;
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    static uint8_t request[REQUEST_BYTES];
    static uint8_t buf[65536];
    memset(request, 'q', sizeof(request));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    useconds_t gap = (useconds_t)(wait_ms * 1000 / (uint64_t)n);
    for (int i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
            die("connect");
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        add_fd(ep, c);
        if (write(c, request, sizeof(request)) != (ssize_t)sizeof(request))
            die("write");
        usleep(gap);
    }
    uint64_t end = seconds > 0 ? now_ms() + (uint64_t)seconds * 1000 : UINT64_MAX;
    struct epoll_event evs[EVENTS];
    while (now_ms() < end) {
        int k = epoll_wait(ep, evs, EVENTS, 1000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0) {
                fprintf(stderr, "idle_floor: a connection was closed\n");
                return 1;
            }
            if (write(fd, request, sizeof(request)) != (ssize_t)sizeof(request))
                die("write");
        }
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: idle_floor serve [--max-wait-ms MS]\n"
                    "       idle_floor poll -p PORT -n N [--max-wait-ms MS] [--seconds S]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *mode = argv[1];
    long port = 0, n = 0, wait_ms = 500, seconds = 0;
    static const struct option opts[] = {{"max-wait-ms", required_argument, NULL, 'w'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "p:n:", opts, NULL)) != -1) {
        char *end;
        long v = 0;
        if (optarg != NULL) {
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 0 || v > 100000)
                return usage();
        }
        switch (ch) {
        case 'p': port = v; break;
        case 'n': n = v; break;
        case 'w': wait_ms = v; break;
        case 's': seconds = v; break;
        default: return usage();
        }
    }
    if (optind != argc || wait_ms > 10000)
        return usage();
    raise_nofile();
    if (strcmp(mode, "serve") == 0)
        serve((uint64_t)wait_ms);
    if (strcmp(mode, "poll") == 0 && port > 0 && port < 65536 && n > 0)
        return poll_server((int)port, (int)n, (uint64_t)wait_ms, (int)seconds);
    return usage();
}
