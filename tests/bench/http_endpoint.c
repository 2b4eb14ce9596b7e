/*
 * http_endpoint.c - a fast local HTTP endpoint for the HTTP sink's
 * benchmark (tests/bench/http-sink.sh), so that what is measured is the
 * sink and not a Python server (tests/cli/http_sink_server.py, which the
 * tests use, answers about a thousand requests a second here).
 *
 *   http_endpoint PORT_FILE LOG_FILE
 *
 * Listens on a free port of 127.0.0.1 and writes it to PORT_FILE; answers
 * every request 200 with an empty body once its body is read, and appends
 * one line {"bytes":N} per request with a body to LOG_FILE (flushed at
 * once, so a reader sees every finished request). Runs until SIGTERM or
 * SIGINT. libmicrohttpd (the broker's /metrics server) with a thread per
 * connection: the sink keeps a connection per partition in flight.
 *
 * A load generator, not a benchmark: tests/bench/run.sh skips it.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *log_file;                                  /* one line per request */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER; /* guards log_file */

/* Per request: the body's bytes so far. */
typedef struct request {
    unsigned long long bytes;
} request;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **state)
{
    request *r = *state;
    if (r == NULL) { /* the headers: the body (if any) comes in later calls */
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *state = r;
        return MHD_YES;
    }
    if (*data_size > 0) {
        r->bytes += *data_size;
        *data_size = 0;
        return MHD_YES;
    }
    if (r->bytes > 0) {
        pthread_mutex_lock(&log_mu);
        fprintf(log_file, "{\"bytes\":%llu}\n", r->bytes);
        fflush(log_file);
        pthread_mutex_unlock(&log_mu);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void done(void *cls, struct MHD_Connection *conn, void **state,
                 enum MHD_RequestTerminationCode why)
{
    free(*state);
    *state = NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: http_endpoint PORT_FILE LOG_FILE\n");
        return 2;
    }
    log_file = fopen(argv[2], "a");
    if (log_file == NULL) {
        perror(argv[2]);
        return 1;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* the server's threads inherit it */

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "http_endpoint: cannot start the server\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    FILE *pf = fopen(tmp, "w");
    if (info == NULL || pf == NULL || fprintf(pf, "%u\n", (unsigned)info->port) < 0 ||
        fclose(pf) != 0 || rename(tmp, argv[1]) != 0) {
        fprintf(stderr, "http_endpoint: cannot write %s\n", argv[1]);
        MHD_stop_daemon(d);
        return 1;
    }
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    fclose(log_file);
    return 0;
}
