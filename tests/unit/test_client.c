/*
 * test_client.c - the client's connection (libstream/client/client.c)
 * against real and fake servers: errors that name the broker, a server
 * that is not a broker, trying each broker in order, settings checked
 * before anything connects. The producer, the consumer and the admin calls
 * have their own files (test_producer.c, test_consumer.c, test_admin.c).
 *
 * A test with a broker starts $STREAM_BUILD/stream-broker --listen
 * 127.0.0.1:0 with its data in a mkdtemp directory, waits for its
 * --ready-file, and stops it (and removes the directory) at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stream/client.h"
#include "client_kit.h"
#include "stream/error.h"
#include "wire.h"

/* ---- a broker process per test ------------------------------------------- */

typedef client_fixture fixture;

static int setup(void **state)
{
    return client_fixture_setup(state, "test_client", NULL);
}

static int teardown(void **state)
{
    return client_fixture_teardown(state);
}

/* ---- connection ---------------------------------------------------------- */

/* A port nobody listens on: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_connect_refused_names_broker(void **state)
{
    (void)state;
    char brokers[64], want[128], eb[256] = "";
    int port = closed_port();
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = brokers;
    stream_client *c;
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    assert_int_equal(stream_client_connect(c, 5000, eb, sizeof eb), STREAM_ECONNREFUSED);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: connection refused", port);
    assert_string_equal(eb, want);
    assert_false(stream_client_connected(c));

    /* A request fails the same way instead of hanging. */
    stream_metadata *md = NULL;
    eb[0] = '\0';
    assert_int_equal(stream_client_metadata(c, NULL, 0, 5000, &md, eb, sizeof eb),
                     STREAM_ECONNREFUSED);
    assert_null(md);
    assert_non_null(strstr(eb, "connection refused"));
    stream_client_free(c);
}

/* A TCP server that is not a broker: it answers every connection with
 * `reply` (NULL: says nothing) and holds it open for a while. */
static pid_t fake_server(const char *reply, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;) {
            int cfd = accept(fd, NULL, NULL);
            if (cfd < 0)
                _exit(0);
            if (reply && write(cfd, reply, strlen(reply)) < 0)
                _exit(1);
        }
    }
    close(fd);
    return pid;
}

static void test_connect_to_a_non_broker_fails_clearly(void **state)
{
    (void)state;
    int port;
    char brokers[64], eb[256] = "";
    pid_t pid = fake_server("HTTP/1.1 400 Bad Request\r\n\r\n", &port);
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = brokers;
    conf.connect_timeout_ms = 500;
    stream_client *c;
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    assert_int_equal(stream_client_connect(c, 5000, eb, sizeof eb), STREAM_EPROTO);
    char want[96];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: hello failed: ", port);
    assert_memory_equal(eb, want, strlen(want));
    stream_client_free(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* A server that accepts and stays silent: the hello times out. */
    pid = fake_server(NULL, &port);
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    int64_t t0 = wire_now_ms();
    assert_int_equal(stream_client_connect(c, 5000, eb, sizeof eb), STREAM_ETIMEDOUT);
    assert_true(wire_now_ms() - t0 < 3000);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: no hello response after 500 ms",
             port);
    assert_string_equal(eb, want);
    stream_client_free(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_connect_tries_each_broker_in_order(void **state)
{
    fixture *f = *state;
    char brokers[160], eb[256] = "";
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d,%s", closed_port(), f->addr);
    stream_client *c = client_for(brokers);
    assert_true(stream_client_connected(c));
    assert_string_equal(stream_client_broker(c), f->addr);
    stream_metadata *md;
    assert_int_equal(stream_client_metadata(c, NULL, 0, -1, &md, eb, sizeof eb), 0);
    assert_int_equal(md->broker_count, 1);
    stream_metadata_free(md);
    stream_client_free(c);
}

static void test_conf_rejects_bad_values(void **state)
{
    (void)state;
    stream_client_conf conf;
    stream_client *c = NULL;
    char eb[256] = "";
    stream_client_conf_init(&conf);
    conf.brokers = "127.0.0.1:99999";
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), STREAM_EINVAL);
    assert_null(c);
    stream_client_conf_init(&conf);
    conf.max_in_flight = 0;
    eb[0] = '\0';
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), STREAM_EINVAL);
    assert_non_null(strstr(eb, "max_in_flight"));

    stream_client_conf_init(&conf);
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = 2;
    stream_producer *p = NULL;
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), STREAM_EINVAL);
    assert_non_null(strstr(eb, "acks"));
    stream_producer_conf_init(&pc);
    pc.codec = (stream_codec)9;
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), STREAM_EINVAL);
    assert_null(p);
    stream_client_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_refused_names_broker),
        cmocka_unit_test(test_conf_rejects_bad_values),
        cmocka_unit_test(test_connect_to_a_non_broker_fails_clearly),
        cmocka_unit_test_setup_teardown(test_connect_tries_each_broker_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
