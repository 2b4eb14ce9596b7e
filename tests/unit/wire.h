/*
 * wire.h - a raw protocol client for tests that talk to a real stream-broker
 * process ($STREAM_BUILD/stream-broker) over sockets: start/stop/kill the
 * broker in a temp dir, send frames built with proto.h's packers, read and
 * parse responses, read fields with assertions.
 *
 * Header-only (every function static inline) because the Makefile links
 * each tests/unit/test_*.c on its own against libstream.a. Include after
 * <cmocka.h>. Everything asserts: a test using these stops at the first
 * surprise.
 */
#ifndef STREAM_TEST_WIRE_H
#define STREAM_TEST_WIRE_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/proto.h"

/* ---- a broker process ---- */

typedef struct wire_broker {
    char dir[256]; /* temp dir: data/, ready, broker.log */
    pid_t pid;
    int port;        /* where it listens, from its ready file */
    int listen_port; /* the port to ask for at start; 0: any free one */
} wire_broker;

static inline const char *wire_broker_path(void)
{
    static char path[1024];
    const char *build = getenv("STREAM_BUILD");
    snprintf(path, sizeof(path), "%s/stream-broker", build && *build ? build : "build/asan");
    return path;
}

static inline int64_t wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void wire_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Starts the broker on b->dir (a new temp dir named after `tag` when empty)
 * on b->listen_port (0: a free port) with extra `--set`s (NULL-terminated);
 * waits for its ready file. */
static inline void wire_broker_start(wire_broker *b, const char *tag, const char *const *sets)
{
    if (b->dir[0] == '\0') {
        snprintf(b->dir, sizeof(b->dir), "/tmp/%s.XXXXXX", tag);
        assert_non_null(mkdtemp(b->dir));
    }
    char ready[300], data[300], logf[300];
    snprintf(ready, sizeof(ready), "%s/ready", b->dir);
    snprintf(data, sizeof(data), "%s/data", b->dir);
    snprintf(logf, sizeof(logf), "%s/broker.log", b->dir);
    unlink(ready);
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", b->listen_port);
    const char *argv[40] = {wire_broker_path(), "--listen",       listen, "--data-dir",
                            data,               "--ready-file",   ready,  "--log-level",
                            "debug",            "--kafka-listen", "off",  "--metrics-listen",
                            "off"};
    int argc = 13;
    for (int i = 0; sets && sets[i] && argc < 38; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    b->pid = pid;
    for (int i = 0; i < 400; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            char line[64] = "";
            char *ok = fgets(line, sizeof(line), f);
            fclose(f);
            char *colon = ok ? strrchr(line, ':') : NULL;
            if (colon) {
                b->port = atoi(colon + 1);
                assert_true(b->port > 0);
                return;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            b->pid = 0;
            fail_msg("stream-broker (%s) exited before it was ready (see %s)", argv[0], logf);
        }
        wire_sleep_ms(25);
    }
    fail_msg("stream-broker not ready after 10 s (see %s)", logf);
}

/* Sends `sig` and waits; returns the exit status, or -1 when killed. */
static inline int wire_broker_signal(wire_broker *b, int sig)
{
    if (b->pid <= 0)
        return -1;
    kill(b->pid, sig);
    int st = 0;
    for (int i = 0; i < 400; i++) {
        if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
            b->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        wire_sleep_ms(25);
    }
    kill(b->pid, SIGKILL);
    waitpid(b->pid, &st, 0);
    b->pid = 0;
    return -1;
}

/* SIGTERM: a clean stop. */
static inline int wire_broker_stop(wire_broker *b)
{
    return wire_broker_signal(b, SIGTERM);
}

static inline void wire_rm_rf(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* True when the broker's log holds `needle`. */
static inline bool wire_log_contains(const wire_broker *b, const char *needle)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/broker.log", b->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---- connections and frames ---- */

static inline int wire_conn_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    struct timeval tv = {.tv_sec = 40}; /* > the broker's 30 s durability wait */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static inline void wire_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        q += w;
        n -= (size_t)w;
    }
}

static inline bool wire_recv_all(int fd, void *p, size_t n)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = recv(fd, q, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        q += r;
        n -= (size_t)r;
    }
    return true;
}

/* Sends the frame in b, then empties b (pipelining: responses are read
 * later with wire_recv_resp). */
static inline void wire_send_frame(int fd, stream_buf *b)
{
    wire_send_all(fd, b->data, b->len);
    stream_buf_release(b);
}

/* True when the broker closed the connection (EOF or reset before any
 * byte); false when a byte arrived or the receive timed out. */
static inline bool wire_closed_by_broker(int fd)
{
    uint8_t c;
    for (;;) {
        ssize_t r = recv(fd, &c, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 || (r < 0 && errno == ECONNRESET);
    }
}

/* A decoded response: the payload and its parsed map. */
typedef struct wire_resp {
    stream_buf payload;
    stream_msg msg;
    uint64_t id;
    int err; /* library code: 0 or negative */
    char text[512];
} wire_resp;

static inline void wire_resp_release(wire_resp *r)
{
    stream_msg_release(&r->msg);
    stream_buf_release(&r->payload);
}

/* Reads one response frame; false when the connection closed first. */
static inline bool wire_recv_resp(int fd, wire_resp *r)
{
    memset(r, 0, sizeof(*r));
    stream_buf_init(&r->payload);
    stream_msg_init(&r->msg);
    uint8_t hdr[4];
    if (!wire_recv_all(fd, hdr, 4))
        return false;
    uint32_t n = stream_load_be32(hdr);
    assert_true(n > 0 && n < 200u * 1024 * 1024);
    assert_int_equal(stream_buf_reserve(&r->payload, n), 0);
    assert_true(wire_recv_all(fd, r->payload.data, n));
    r->payload.len = n;
    char eb[256];
    if (stream_msg_parse(r->payload.data, n, &r->msg, eb, sizeof(eb)) != 0)
        fail_msg("response does not parse: %s", eb);
    const char *t;
    size_t tl;
    assert_int_equal(stream_msg_response(&r->msg, &r->id, &r->err, &t, &tl, eb, sizeof(eb)), 0);
    snprintf(r->text, sizeof(r->text), "%.*s", (int)tl, t ? t : "");
    return true;
}

/* The next request id (shared by every connection of the test program). */
static inline uint64_t wire_id(void)
{
    static uint64_t next = 1;
    return next++;
}

/* Sends the frame in b (then empties b) and reads its response. */
static inline void wire_call(int fd, stream_buf *b, uint64_t id, wire_resp *r)
{
    wire_send_frame(fd, b);
    assert_true(wire_recv_resp(fd, r));
    assert_int_equal(r->id, id);
}

/* A connection that said hello with `version`. */
static inline int wire_connect_version(int port, int version)
{
    int fd = wire_conn_open(port);
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, id, 2);
    stream_pack_kv_int(&f.pk, "version", version);
    stream_pack_kv_cstr(&f.pk, "client", "wire.h");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    return fd;
}

static inline int wire_connect(int port)
{
    return wire_connect_version(port, STREAM_PROTOCOL_VERSION);
}

/* Sends `op` with no fields of its own (list_groups, stats); r gets the
 * answer (the caller releases it). */
static inline void wire_call_op(int fd, stream_op op, wire_resp *r)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, op, id, 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, r);
}

/* ---- reading fields (asserting) ---- */

static inline int64_t wire_int(const msgpack_object *m, const char *key)
{
    int64_t v;
    char eb[200];
    if (stream_field_int(m, key, INT64_MIN, INT64_MAX, &v, eb, sizeof(eb)) != 0)
        fail_msg("%s", eb);
    return v;
}

/* Copies a str field into buf (NUL-terminated, cut to fit). */
static inline const char *wire_str(const msgpack_object *m, const char *key, char *buf, size_t len)
{
    const char *p;
    size_t n;
    char eb[200];
    if (stream_field_str(m, key, &p, &n, eb, sizeof(eb)) != 0)
        fail_msg("%s", eb);
    snprintf(buf, len, "%.*s", (int)n, p);
    return buf;
}

static inline const msgpack_object *wire_array(const msgpack_object *m, const char *key)
{
    const msgpack_object *a;
    char eb[200];
    if (stream_field_array(m, key, &a, eb, sizeof(eb)) != 0)
        fail_msg("%s", eb);
    return a;
}

static inline const msgpack_object *wire_elem(const msgpack_object *arr, size_t i)
{
    const msgpack_object *e;
    assert_true(i < arr->via.array.size);
    assert_int_equal(stream_elem_map(arr, (uint32_t)i, "array", &e, NULL, 0), 0);
    return e;
}

/* ---- common requests ---- */

/* Creates a topic; returns the topic's error (library code). */
static inline int wire_create_topic(int fd, const char *name, int partitions)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_CREATE_TOPICS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", name);
    stream_pack_kv_int(&f.pk, "partitions", partitions);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    int err = -(int)wire_int(wire_elem(wire_array(&r.msg.root, "topics"), 0), "err");
    wire_resp_release(&r);
    return err;
}

static inline int wire_delete_topic(int fd, const char *name)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_DELETE_TOPICS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    stream_pack_cstr(&f.pk, name);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    int err = -(int)wire_int(wire_elem(wire_array(&r.msg.root, "topics"), 0), "err");
    wire_resp_release(&r);
    return err;
}

/* Produces the stored batches p[0..len) to one partition with acks=all;
 * returns the partition's error (a library code: 0 or negative) and, when
 * base is not NULL, the base offset the broker gave them. */
static inline int wire_produce_batch(int fd, const char *topic, int32_t partition,
                                     const uint8_t *p, size_t len, int64_t *base)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_PRODUCE, id, 2);
    stream_pack_kv_int(&f.pk, "acks", -1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", partition);
    stream_pack_kv_bin(&f.pk, "records", p, len);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *pr =
        wire_elem(wire_array(wire_elem(wire_array(&r.msg.root, "topics"), 0), "partitions"), 0);
    int err = -(int)wire_int(pr, "err");
    if (base)
        *base = wire_int(pr, "base_offset");
    wire_resp_release(&r);
    return err;
}

/* Produces n records "v<i>" with timestamps ts0 + i (acks=all) to one
 * partition; returns the base offset. */
static inline int64_t wire_produce(int fd, const char *topic, int32_t partition, int n, int64_t ts0)
{
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    for (int i = 0; i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(stream_batch_builder_append(&bb, ts0 + i, NULL, -1, v, vl, NULL, 0), 0);
    }
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&bb, &p, &len), 0);
    int64_t base;
    assert_int_equal(wire_produce_batch(fd, topic, partition, p, len, &base), 0);
    stream_batch_builder_release(&bb);
    return base;
}

/* True when a metadata request is still answered (the broker serves). */
static inline bool wire_still_served(int fd)
{
    wire_resp r;
    wire_call_op(fd, STREAM_OP_METADATA, &r);
    bool ok = r.err == 0;
    wire_resp_release(&r);
    return ok;
}

#endif /* STREAM_TEST_WIRE_H */
