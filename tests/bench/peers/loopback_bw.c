/*
 * loopback_bw - the machine's loopback TCP bandwidth: the limit that
 * `make bench-peers` (tests/bench/peers.sh) holds stream's consume
 * throughput against.
 *
 *   loopback_bw [-m MEGABYTES] [-w WRITE_BYTES]
 *
 * A receiver listens on 127.0.0.1 (a free port), a sender thread connects
 * and write()s MEGABYTES MB (10^6 bytes; default 4000) from one buffer in
 * WRITE_BYTES pieces (default 1 MiB), and the receiver read()s into a 1 MiB
 * buffer without touching the bytes. MB/s is measured at the receiver, from
 * accept to the last byte. One TCP stream over loopback, large writes, two
 * threads (two cores): what a single broker connection could carry at best,
 * with two copies (sender to kernel, kernel to receiver) and nothing else.
 *
 * Prints one JSON line: {"system":"loopback","mode":"tcp","bytes":...,
 * "elapsed_s":...,"mb_per_sec":...}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peers.h"

static const char *prog = "loopback_bw";

typedef struct sender {
    struct sockaddr_in addr; /* where the receiver listens */
    uint64_t bytes;          /* to send */
    size_t write_bytes;      /* per write() */
    int err;                 /* errno of a failure; 0 if none */
} sender;

static void *send_all(void *arg)
{
    sender *s = arg;
    uint8_t *buf = malloc(s->write_bytes);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (buf == NULL || fd < 0 || connect(fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) != 0) {
        s->err = buf == NULL ? ENOMEM : errno;
        goto out;
    }
    peers_fill_value(buf, s->write_bytes);
    for (uint64_t left = s->bytes; left > 0;) {
        size_t n = left < s->write_bytes ? (size_t)left : s->write_bytes;
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->err = w < 0 ? errno : EIO;
            goto out;
        }
        left -= (uint64_t)w;
    }
out:
    if (fd >= 0)
        close(fd); /* EOF tells the receiver it has everything */
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    int64_t mb = 4000, write_bytes = 1 << 20;
    int opt;
    while ((opt = getopt(argc, argv, "m:w:")) != -1) {
        switch (opt) {
        case 'm':
            mb = peers_parse_count(prog, optarg, "megabytes");
            break;
        case 'w':
            write_bytes = peers_parse_count(prog, optarg, "write size");
            break;
        default:
            fprintf(stderr, "usage: %s [-m MEGABYTES] [-w WRITE_BYTES]\n", prog);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "usage: %s [-m MEGABYTES] [-w WRITE_BYTES]\n", prog);
        return 2;
    }

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(addr);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
        peers_die(prog, "cannot listen on 127.0.0.1: %s", strerror(errno));

    sender s = {.addr = addr, .bytes = (uint64_t)mb * 1000000, .write_bytes = (size_t)write_bytes};
    pthread_t th;
    if (pthread_create(&th, NULL, send_all, &s) != 0)
        peers_die(prog, "cannot start the sender thread");
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        peers_die(prog, "accept: %s", strerror(errno));
    int64_t t0 = peers_now_ns();
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        peers_die(prog, "out of memory");
    uint64_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            peers_die(prog, "read: %s", strerror(errno));
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    int64_t elapsed = peers_now_ns() - t0;
    pthread_join(th, NULL);
    if (s.err != 0)
        peers_die(prog, "sender: %s", strerror(s.err));
    if (got != s.bytes)
        peers_die(prog, "received %" PRIu64 " of %" PRIu64 " bytes", got, s.bytes);
    double sec = (double)elapsed / 1e9;
    printf("{\"system\":\"loopback\",\"mode\":\"tcp\",\"bytes\":%" PRIu64
           ",\"elapsed_s\":%.3f,\"mb_per_sec\":%.3f,\"write_bytes\":%" PRId64 "}\n",
           got, sec, (double)got / sec / 1e6, write_bytes);
    if (fflush(stdout) != 0)
        peers_die(prog, "cannot write to standard output");
    free(buf);
    close(fd);
    close(lfd);
    return 0;
}
