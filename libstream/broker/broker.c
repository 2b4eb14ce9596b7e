/*
 * broker.c - the broker's life cycle: open the store, listen, run the loop,
 * stop cleanly.
 *
 * One uv loop per broker, owned by the broker value, so a process can hold
 * several brokers (tests do) and nothing is global. Handles owned here:
 *
 *   listener        accepts clients (broker_conn.c takes it from there)
 *   stop_async      stream_broker_stop from any thread or a signal handler
 *   durable_async   the flusher thread made data durable (broker_wait.c)
 *   sigint/sigterm  when options.handle_signals: stop
 *   sighup          when options.handle_signals: re-read the TLS certificate and key
 *   housekeeping    retention, segment.ms rolls, idle connections
 *   wait_timer      delayed operations' deadlines (broker_wait.c)
 *   shutdown_timer  bounds how long stopping waits for responses to drain
 *   tick_timer      the program's options.tick_cb (stream-broker's watchdog)
 *
 * Stopping is a small state machine on the loop: begin_stop first asks the
 * services whether to hold (a cluster broker moves its partition
 * leaderships away first: controlled shutdown), for at most STOP_HOLD_MS
 * on shutdown_timer, serving clients meanwhile; then it closes the
 * listener, completes every waiter, drains every connection; when the last
 * connection is gone (or shutdown_timer fires and closes the stragglers)
 * every handle is closed, uv_run returns, and run closes the store. A
 * second signal during the hold stops at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <arpa/inet.h>

#include "broker_internal.h"
#include "stream/error.h"
#include "base/internal.h"

/* How long a stopping broker lets queued responses drain. */
#define SHUTDOWN_DRAIN_MS 2000
/* How long a service may hold the stop (stream__service.stop_requested). */
#define STOP_HOLD_MS 3000
/* Requests in flight per connection before it stops reading. */
#define MAX_PENDING_PER_CONN 1024
/* The housekeeping tick for idle connections when retention checks are rarer. */
#define IDLE_SWEEP_MS 1000

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

const char *stream_broker_level_name(stream_broker_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "INFO";
    return level_names[level];
}

int stream_broker_level_parse(const char *s, stream_broker_level *out)
{
    if (s == NULL)
        return STREAM_EINVAL;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (stream_broker_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = STREAM_BROKER_WARN;
        return 0;
    }
    return STREAM_EINVAL;
}

void stream_broker_options_init(stream_broker_options *o)
{
    memset(o, 0, sizeof(*o));
    o->log_level = STREAM_BROKER_INFO;
}

void stream__blog(stream_broker *b, stream_broker_level level, const char *fmt, ...)
{
    if (b->log_cb == NULL || level > b->log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->log_cb(level, msg, b->log_arg);
}

uint64_t stream__broker_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Splits "HOST:PORT" or "[V6]:PORT" and resolves it to a socket address.
 * Only numeric addresses and "localhost" are accepted: a broker should not
 * block on DNS at start. */
int stream__parse_listen(const char *s, const char *setting, struct sockaddr_storage *ss,
                         char *host, size_t host_len, int *port, char *errbuf, size_t errbuf_len)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_len)
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535)
        goto bad;
    *port = (int)p;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, host_len, "127.0.0.1");
    if (uv_ip4_addr(host, *port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, *port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
bad:
    stream__errf(errbuf, errbuf_len,
                 "invalid %s address '%s' (expected HOST:PORT with a numeric IPv4 address, "
                 "[IPv6]:PORT or localhost:PORT)",
                 setting, s);
    return STREAM_EBADCONFIG;
}

/* Frees the broker's own memory, last (the loop, store and connections are
 * gone by then): its config copy, decode and read buffers, and the pools. */
static void free_broker(stream_broker *b)
{
    stream_config_free(b->config);
    stream_msg_release(&b->msg);
    stream_frame_reader_release(&b->rfr);
    stream__pool_drain(&b->waiter_pool);
    stream__pool_drain(&b->fetch_pool);
    stream__pool_drain(&b->req_pool);
    stream__pool_drain(&b->out_pool);
    stream__metrics_free(b);
    stream_tls_ctx_free(b->tls_ctx);
    stream_tls_ctx_free(b->tls_client);
    free(b->tls_in);
    free(b->tls_chunk);
    pthread_mutex_destroy(&b->durable_mu);
    free(b);
}

/* A new server context from the config's tls.* files into *out (NULL when
 * tls.cert and tls.key are unset). 0 or STREAM_EBADCONFIG (errbuf says
 * which file and why). */
static int tls_load(const stream_config *cfg, stream_tls_ctx **out, stream_tls_ctx **client,
                    char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    if (client != NULL)
        *client = NULL;
    const char *cert = stream_config_str(cfg, STREAM_CONFIG_TLS_CERT);
    const char *key = stream_config_str(cfg, STREAM_CONFIG_TLS_KEY);
    const char *ca = stream_config_str(cfg, STREAM_CONFIG_TLS_CA);
    stream_tls_conf tc = {
        .cert_file = *cert ? cert : NULL,
        .key_file = *key ? key : NULL,
        .ca_file = *ca ? ca : NULL,
        .client_auth = (stream_tls_client_auth)stream_config_int(cfg, STREAM_CONFIG_TLS_CLIENT_AUTH),
    };
    if (tc.cert_file == NULL && tc.key_file == NULL) {
        if (tc.client_auth != STREAM_TLS_AUTH_NONE || tc.ca_file != NULL)
            return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                                "tls.ca and tls.client.auth need TLS: set tls.cert and tls.key "
                                "(--tls-cert, --tls-key)");
        return 0;
    }
    int rc = stream_tls_ctx_new(&tc, true, out, errbuf, errbuf_len);
    if (rc == 0 && client != NULL) {
        /* Links to other brokers: this broker's certificate as the client's,
         * tls.ca (or the system's CAs) to verify theirs. */
        rc = stream_tls_ctx_new(&tc, false, client, errbuf, errbuf_len);
        if (rc != 0) {
            stream_tls_ctx_free(*out);
            *out = NULL;
        }
    }
    return rc == STREAM_ENOMEM ? rc : rc != 0 ? STREAM_EBADCONFIG : 0;
}

/* True for 127.0.0.0/8 and ::1. */
static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int stream__listen_allowed(const stream_broker *b, const char *host, const char *setting,
                           char *errbuf, size_t errbuf_len)
{
    if (b->tls_ctx != NULL || b->insecure || is_loopback(host))
        return 0;
    return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                        "refusing to serve plain text on %s (%s), a non-loopback address: set "
                        "--tls-cert and --tls-key for TLS, or --insecure (insecure=true) to "
                        "accept anyone on the network without TLS",
                        host, setting);
}

/* SIGHUP: new connections (and new links to other brokers) get the
 * certificate and key as the files hold them now; connections open keep
 * their sessions. A bad file keeps the old ones (and says so). */
static void on_sighup(uv_signal_t *s, int signum)
{
    stream_broker *b = s->data;
    if (b->tls_ctx == NULL) {
        stream__blog(b, STREAM_BROKER_INFO, "SIGHUP: no TLS configured, nothing to re-read");
        return;
    }
    char err[512] = "";
    stream_tls_ctx *ctx, *client;
    if (tls_load(b->config, &ctx, &client, err, sizeof(err)) != 0 || ctx == NULL) {
        stream__blog(b, STREAM_BROKER_ERROR, "SIGHUP: keeping the old TLS certificate: %s", err);
        return;
    }
    /* In place: links to other brokers hold b->tls_client. */
    stream_tls_ctx_replace(b->tls_ctx, ctx);
    stream_tls_ctx_replace(b->tls_client, client);
    stream__blog(b, STREAM_BROKER_INFO, "SIGHUP: TLS certificate and key re-read from %s and %s",
                 stream_config_str(b->config, STREAM_CONFIG_TLS_CERT),
                 stream_config_str(b->config, STREAM_CONFIG_TLS_KEY));
}

static void read_settings(stream_broker *b, const stream_config *cfg)
{
    stream__settings *s = &b->set;
    s->max_request_bytes = (size_t)stream_config_int(cfg, STREAM_CONFIG_SOCKET_REQUEST_MAX_BYTES);
    s->max_output_bytes = (size_t)stream_config_int(cfg, STREAM_CONFIG_CONNECTION_MAX_OUTPUT_BYTES);
    s->max_pending = MAX_PENDING_PER_CONN;
    s->max_connections = (int)stream_config_int(cfg, STREAM_CONFIG_MAX_CONNECTIONS);
    s->idle_ms = stream_config_int(cfg, STREAM_CONFIG_CONNECTIONS_MAX_IDLE_MS);
    s->housekeeping_ms = stream_config_int(cfg, STREAM_CONFIG_LOG_RETENTION_CHECK_INTERVAL_MS);
    s->auto_create = stream_config_bool(cfg, STREAM_CONFIG_AUTO_CREATE_TOPICS_ENABLE);
    stream_frame_reader_init(&b->rfr, s->max_request_bytes);
    stream_frame_reader_keep(&b->rfr, STREAM__READ_KEEP_BYTES);
}

static void on_stop_async(uv_async_t *a);
static void on_signal(uv_signal_t *s, int signum);
static void on_housekeeping(uv_timer_t *t);
static void on_tick(uv_timer_t *t);

/* Initialises every loop handle; they are closed together in close_handles. */
static void init_handles(stream_broker *b)
{
    uv_async_init(&b->loop, &b->stop_async, on_stop_async);
    b->stop_async.data = b;
    uv_async_init(&b->loop, &b->durable_async, stream__wait_on_durable);
    b->durable_async.data = b;
    uv_timer_init(&b->loop, &b->housekeeping);
    b->housekeeping.data = b;
    uv_timer_init(&b->loop, &b->wait_timer);
    b->wait_timer.data = b;
    uv_timer_init(&b->loop, &b->shutdown_timer);
    b->shutdown_timer.data = b;
    uv_timer_init(&b->loop, &b->tick_timer);
    b->tick_timer.data = b;
    uv_signal_init(&b->loop, &b->sigint);
    b->sigint.data = b;
    uv_signal_init(&b->loop, &b->sigterm);
    b->sigterm.data = b;
    uv_signal_init(&b->loop, &b->sighup);
    b->sighup.data = b;
    b->handles_open = true;
}

static void close_handles(stream_broker *b)
{
    uv_handle_t *hs[] = {
        (uv_handle_t *)&b->stop_async,     (uv_handle_t *)&b->durable_async,
        (uv_handle_t *)&b->housekeeping,   (uv_handle_t *)&b->wait_timer,
        (uv_handle_t *)&b->shutdown_timer, (uv_handle_t *)&b->sigint,
        (uv_handle_t *)&b->sigterm,        (uv_handle_t *)&b->listener,
        (uv_handle_t *)&b->cleaner_timer,  (uv_handle_t *)&b->sighup,
        (uv_handle_t *)&b->tick_timer,
    };
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
    stream__xlisteners_close(b);
    stream__metrics_close(b);
    stream__services_stop(b);
    b->handles_open = false;
}

/* Runs the loop until every handle closed (after uv_close calls). */
static void drain_loop(stream_broker *b)
{
    while (uv_run(&b->loop, UV_RUN_DEFAULT) != 0)
        ;
}

int stream_broker_new(const stream_broker_options *o, stream_broker **out, char *errbuf,
                      size_t errbuf_len)
{
    *out = NULL;
    if (o->tick_cb != NULL && o->tick_interval_ms == 0) {
        stream__errf(errbuf, errbuf_len, "tick_cb needs a tick_interval_ms");
        return STREAM_EINVAL;
    }
    stream_broker *b = calloc(1, sizeof(*b));
    stream_config *defaults = NULL;
    if (b == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    b->log_cb = o->log_cb;
    b->log_arg = o->log_arg;
    b->log_level = o->log_level;
    b->handle_signals = o->handle_signals;
    b->tick_cb = o->tick_cb;
    b->tick_arg = o->tick_arg;
    b->tick_interval_ms = o->tick_interval_ms;
    stream_msg_init(&b->msg);
    stream__metrics_init(b);
    pthread_mutex_init(&b->durable_mu, NULL);
    const stream_config *cfg = o->config;
    if (cfg == NULL) {
        cfg = defaults = stream_config_new();
        if (cfg == NULL) {
            pthread_mutex_destroy(&b->durable_mu);
            free(b);
            stream__errf(errbuf, errbuf_len, "out of memory");
            return STREAM_ENOMEM;
        }
    }
    read_settings(b, cfg);
    b->node_id = (int32_t)stream_config_int(cfg, STREAM_CONFIG_NODE_ID);
    b->config = stream_config_dup(cfg);
    if (b->config == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        stream_config_free(defaults);
        pthread_mutex_destroy(&b->durable_mu);
        free(b);
        return STREAM_ENOMEM;
    }

    int rc;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    rc = stream__parse_listen(stream_config_str(cfg, STREAM_CONFIG_LISTEN), "listen", &ss, b->host,
                              sizeof(b->host), &b->port, errbuf, errbuf_len);
    if (rc != 0)
        goto fail_early;
    b->insecure = stream_config_bool(cfg, STREAM_CONFIG_INSECURE);
    rc = tls_load(cfg, &b->tls_ctx, &b->tls_client, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__listen_allowed(b, b->host, "listen", errbuf, errbuf_len);
    if (rc != 0)
        goto fail_early;
    rc = stream_config_data_dir(cfg, b->data_dir, sizeof(b->data_dir));
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot find a data directory: %s (set --data-dir)",
                     rc == STREAM_ENOENT ? "no home directory" : stream_strerror(rc));
        goto fail_early;
    }

    int uvrc = uv_loop_init(&b->loop);
    if (uvrc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot create event loop: %s", uv_strerror(uvrc));
        rc = STREAM_ENOMEM;
        goto fail_early;
    }
    b->loop.data = b;
    uv_tcp_init(&b->loop, &b->listener);
    b->listener.data = b;
    init_handles(b);
    stream__cleaner_init(b, cfg);

    stream__blog(b, STREAM_BROKER_INFO, "stream-broker %s starting, data dir %s",
#ifdef STREAM_VERSION
                 STREAM_VERSION,
#else
                 "",
#endif
                 b->data_dir);
    rc = stream__broker_open_store(b, cfg, errbuf, errbuf_len);
    if (rc != 0)
        goto fail;
    /* Services load what they keep (committed offsets) before the first
     * client can ask. */
    rc = stream__services_start(b, errbuf, errbuf_len);
    if (rc != 0)
        goto fail;

    uvrc = uv_tcp_bind(&b->listener, (struct sockaddr *)&ss, 0);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&b->listener, 511, stream__conn_on_connection);
    if (uvrc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot listen on %s:%d: %s%s", b->host, b->port,
                     uv_strerror(uvrc),
                     uvrc == UV_EADDRINUSE ? " (is another broker running? use --listen)" : "");
        rc = uvrc == UV_EADDRINUSE ? STREAM_EAGAIN : STREAM_EIO;
        goto fail;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&b->listener, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            b->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            b->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    rc = stream__metrics_start(b, cfg, errbuf, errbuf_len);
    if (rc != 0)
        goto fail;
    char addr[300];
    stream_broker_address(b, addr, sizeof(addr));
    stream__blog(b, STREAM_BROKER_INFO, "listening on %s%s", addr,
                 b->tls_ctx != NULL ? " (TLS)" : "");
    if (b->tls_ctx != NULL && *stream_config_str(cfg, STREAM_CONFIG_CLUSTER_VOTERS) != '\0')
        stream__blog(b, STREAM_BROKER_WARN,
                     "the metadata quorum's Raft traffic (cluster.voters) is plain text: keep "
                     "its addresses on a private network");
    stream_config_free(defaults);
    *out = b;
    return 0;

fail:
    stream__broker_close_store(b);
    close_handles(b);
    drain_loop(b);
    stream__services_free(b);
    uv_loop_close(&b->loop);
fail_early:
    stream_config_free(defaults);
    free_broker(b);
    return rc;
}

int stream_broker_address(const stream_broker *b, char *buf, size_t len)
{
    if (strchr(b->host, ':'))
        return snprintf(buf, len, "[%s]:%d", b->host, b->port);
    return snprintf(buf, len, "%s:%d", b->host, b->port);
}

const char *stream_broker_data_dir(const stream_broker *b)
{
    return b->data_dir;
}

static void start_housekeeping(stream_broker *b)
{
    uint64_t period = (uint64_t)b->set.housekeeping_ms;
    if (period > IDLE_SWEEP_MS)
        period = IDLE_SWEEP_MS;
    b->next_retention_ms = uv_now(&b->loop) + (uint64_t)b->set.housekeeping_ms;
    uv_timer_start(&b->housekeeping, on_housekeeping, period, period);
}

static void on_tick(uv_timer_t *t)
{
    stream_broker *b = t->data;
    b->tick_cb(b->tick_arg);
}

static void on_housekeeping(uv_timer_t *t)
{
    stream_broker *b = t->data;
    stream__conns_sweep_idle(b);
    uint64_t now = uv_now(&b->loop);
    if (now >= b->next_retention_ms) {
        b->next_retention_ms = now + (uint64_t)b->set.housekeeping_ms;
        stream__broker_retention(b);
    }
}

int stream_broker_run(stream_broker *b)
{
    if (b->running || b->stopped)
        return STREAM_EINVAL;
    b->running = true;
    if (b->handle_signals) {
        uv_signal_start(&b->sigint, on_signal, SIGINT);
        uv_signal_start(&b->sigterm, on_signal, SIGTERM);
        uv_signal_start(&b->sighup, on_sighup, SIGHUP);
        /* A client that disappears mid-write must not kill the broker. */
        signal(SIGPIPE, SIG_IGN);
    }
    start_housekeeping(b);
    stream__cleaner_start(b);
    if (b->tick_cb != NULL)
        uv_timer_start(&b->tick_timer, on_tick, b->tick_interval_ms, b->tick_interval_ms);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    /* The signal handles are closed now; a second SIGTERM while the store
     * closes must not kill the process half way through its checkpoints. */
    if (b->handle_signals) {
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
    }
    drain_loop(b);
    stream__metrics_free(b); /* scrapers are refused from now on */
    stream__wait_release(b);
    stream__services_free(b);
    int rc = stream__broker_close_store(b);
    if (b->handle_signals) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    uv_loop_close(&b->loop);
    b->running = false;
    b->stopped = true;
    if (rc == 0)
        stream__blog(b, STREAM_BROKER_INFO, "shut down cleanly");
    else
        stream__blog(b, STREAM_BROKER_ERROR, "shut down with errors: %s", stream_strerror(rc));
    return rc;
}

/* The last step of stopping: every connection is gone. */
static void finish_stop(stream_broker *b)
{
    close_handles(b);
}

static void on_shutdown_timer(uv_timer_t *t)
{
    stream_broker *b = t->data;
    if (b->nconns > 0)
        stream__blog(b, STREAM_BROKER_WARN, "closing %d connections that did not drain", b->nconns);
    for (stream__conn *c = b->conns; c; c = c->next)
        stream__conn_close(c);
    finish_stop(b);
}

/* Called by broker_conn.c whenever a connection is freed while stopping. */
void stream__broker_conn_gone(stream_broker *b)
{
    if (b->stopping && b->nconns == 0 && b->handles_open)
        finish_stop(b);
}

static void begin_stop(stream_broker *b);

static void on_stop_hold_timer(uv_timer_t *t)
{
    stream_broker *b = t->data;
    stream__blog(b, STREAM_BROKER_WARN,
                 "stopping after %d ms: a service did not finish handing its work over",
                 STOP_HOLD_MS);
    b->stop_held = false;
    begin_stop(b);
}

void stream__host_stop_resume(stream_broker *b)
{
    if (!b->stop_held)
        return;
    b->stop_held = false;
    uv_timer_stop(&b->shutdown_timer);
    begin_stop(b);
}

static void begin_stop(stream_broker *b)
{
    if (b->stopping)
        return;
    if (b->stop_held) {
        /* Asked again while a service holds the stop: stop now. */
        b->stop_held = false;
        uv_timer_stop(&b->shutdown_timer);
    } else if (!b->stop_asked) {
        b->stop_asked = true;
        if (stream__services_stop_requested(b)) {
            b->stop_held = true;
            uv_timer_start(&b->shutdown_timer, on_stop_hold_timer, STOP_HOLD_MS, 0);
            return;
        }
    }
    b->stopping = true;
    stream__blog(b, STREAM_BROKER_INFO, "stopping: %d connections open", b->nconns);
    uv_close((uv_handle_t *)&b->listener, NULL);
    stream__xlisteners_close(b);
    uv_timer_stop(&b->housekeeping);
    stream__cleaner_stop(b);
    stream__wait_complete_all(b);
    for (stream__conn *c = b->conns; c; c = c->next)
        stream__conn_stop(c);
    if (b->nconns == 0)
        finish_stop(b);
    else
        uv_timer_start(&b->shutdown_timer, on_shutdown_timer, SHUTDOWN_DRAIN_MS, 0);
}

static void on_stop_async(uv_async_t *a)
{
    begin_stop(a->data);
}

static void on_signal(uv_signal_t *s, int signum)
{
    stream_broker *b = s->data;
    stream__blog(b, STREAM_BROKER_INFO, "received %s%s", signum == SIGINT ? "SIGINT" : "SIGTERM",
                 b->stopping    ? " while stopping; still stopping"
                 : b->stop_held ? " while handing work over; stopping now"
                                : "");
    begin_stop(b);
}

void stream_broker_stop(stream_broker *b)
{
    if (b && b->handles_open)
        uv_async_send(&b->stop_async);
}

void stream_broker_free(stream_broker *b)
{
    if (b == NULL)
        return;
    if (!b->stopped) {
        /* Never ran: no connections exist, only the handles and the store. */
        close_handles(b);
        drain_loop(b);
        stream__wait_release(b);
        stream__services_free(b);
        stream__broker_close_store(b);
        uv_loop_close(&b->loop);
    }
    free_broker(b);
}

/* ---- the store: open with a recovery report, flusher, retention ---- */

/* Attaches every partition of `t` to the flusher with the durable callback. */
int stream__broker_attach_topic(stream_broker *b, stream_topic *t)
{
    return stream__broker_attach_partitions(b, t, 0);
}

int stream__broker_attach_partitions(stream_broker *b, stream_topic *t, int32_t from)
{
    for (int32_t p = from; p < t->partition_count; p++) {
        stream_log *log = t->partitions[p];
        stream_log_set_durable_cb(log, stream__wait_durable_cb, b);
        int rc = stream_flusher_attach(b->flusher, log);
        if (rc != 0) {
            while (p-- > from)
                stream_flusher_detach(b->flusher, t->partitions[p]);
            return rc;
        }
    }
    return 0;
}

/* Detaches `t`'s partitions from the flusher (before deleting the topic). */
void stream__broker_detach_topic(stream_broker *b, stream_topic *t)
{
    for (int32_t p = 0; p < t->partition_count; p++) {
        stream_log_set_durable_cb(t->partitions[p], NULL, NULL);
        if (b->flusher)
            stream_flusher_detach(b->flusher, t->partitions[p]);
    }
}

/* One summary line for the whole store, and a line per partition only when
 * recovery dropped bytes or rebuilt indexes. */
static void log_recovery(stream_broker *b)
{
    size_t ntopics = stream_store_topic_count(b->store);
    long long parts = 0, clean = 0, scanned = 0, scanned_bytes = 0, dropped = 0, rebuilt = 0;
    for (size_t i = 0; i < ntopics; i++) {
        stream_topic *t = stream_store_topic_at(b->store, i);
        for (int32_t p = 0; p < t->partition_count; p++) {
            const stream_log_recovery *r = &t->recovery[p];
            parts++;
            if (r->clean)
                clean++;
            else
                scanned++;
            scanned_bytes += r->scanned_bytes;
            dropped += r->truncated_bytes;
            rebuilt += r->indexes_rebuilt;
            if (r->truncated_bytes > 0)
                stream__blog(b, STREAM_BROKER_WARN,
                             "recovery: %s-%d: dropped %lld bytes of torn or corrupt data "
                             "from offset %lld",
                             t->name, (int)p, (long long)r->truncated_bytes,
                             (long long)r->truncated_at);
            else if (r->indexes_rebuilt > 0)
                stream__blog(b, STREAM_BROKER_INFO, "recovery: %s-%d: rebuilt %d index files",
                             t->name, (int)p, r->indexes_rebuilt);
        }
    }
    for (size_t i = 0; i < stream_store_note_count(b->store); i++)
        stream__blog(b, STREAM_BROKER_INFO, "store: %s", stream_store_note(b->store, i));
    if (parts == 0)
        stream__blog(b, STREAM_BROKER_INFO, "opened %zu topics (empty data dir)", ntopics);
    else if (scanned == 0)
        stream__blog(b, STREAM_BROKER_INFO,
                     "opened %zu topics, %lld partitions: clean shutdown, no recovery scan",
                     ntopics, parts);
    else
        stream__blog(b, STREAM_BROKER_INFO,
                     "opened %zu topics, %lld partitions: %lld clean, %lld recovered "
                     "(%lld bytes scanned, %lld bytes dropped, %lld indexes rebuilt)",
                     ntopics, parts, clean, scanned, scanned_bytes, dropped, rebuilt);
}

int stream__broker_open_store(stream_broker *b, const stream_config *cfg, char *errbuf,
                              size_t errbuf_len)
{
    int rc = stream_store_open(b->data_dir, cfg, &b->store, errbuf, errbuf_len);
    if (rc != 0) {
        b->store = NULL;
        return rc;
    }
    log_recovery(b);
    rc = stream_flusher_new(&b->flusher);
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot start the flusher thread: %s",
                     stream_strerror(rc));
        return rc;
    }
    size_t ntopics = stream_store_topic_count(b->store);
    for (size_t i = 0; i < ntopics; i++) {
        rc = stream__broker_attach_topic(b, stream_store_topic_at(b->store, i));
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "cannot attach topic to the flusher: %s",
                         stream_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int stream__broker_close_store(stream_broker *b)
{
    if (b->store == NULL) {
        stream_flusher_free(b->flusher);
        b->flusher = NULL;
        return 0;
    }
    size_t ntopics = stream_store_topic_count(b->store);
    /* Closing syncs the logs, and a sync calls the durable callback on the
     * syncing thread: the loop's async handle is gone by now. */
    for (size_t i = 0; i < ntopics; i++) {
        stream_topic *t = stream_store_topic_at(b->store, i);
        for (int32_t p = 0; p < t->partition_count; p++)
            stream_log_set_durable_cb(t->partitions[p], NULL, NULL);
    }
    if (b->flusher) {
        for (size_t i = 0; i < ntopics; i++) {
            stream_topic *t = stream_store_topic_at(b->store, i);
            for (int32_t p = 0; p < t->partition_count; p++)
                stream_flusher_detach(b->flusher, t->partitions[p]);
        }
        stream_flusher_free(b->flusher);
        b->flusher = NULL;
    }
    /* stream_log_close inside flushes each log and writes its recovery point
     * and clean-shutdown marker. */
    stream_store_close(b->store);
    b->store = NULL;
    return 0;
}

void stream__broker_retention(stream_broker *b)
{
    int64_t now = (int64_t)stream__broker_now_ms();
    size_t ntopics = stream_store_topic_count(b->store);
    for (size_t i = 0; i < ntopics; i++) {
        stream_topic *t = stream_store_topic_at(b->store, i);
        for (int32_t p = 0; p < t->partition_count; p++) {
            stream_log *log = t->partitions[p];
            int rc = stream_log_maybe_roll(log, now);
            if (rc < 0)
                stream__blog(b, STREAM_BROKER_WARN, "%s-%d: segment roll failed: %s", t->name,
                             (int)p, stream_strerror(rc));
            rc = stream_log_apply_retention(log, now);
            if (rc > 0)
                stream__blog(b, STREAM_BROKER_INFO,
                             "%s-%d: retention deleted %d segments; log start offset %lld", t->name,
                             (int)p, rc, (long long)stream_log_start_offset(log));
            else if (rc < 0)
                stream__blog(b, STREAM_BROKER_WARN, "%s-%d: retention failed: %s", t->name, (int)p,
                             stream_strerror(rc));
        }
    }
}
