/*
 * broker_metrics.c - GET /metrics: the broker's figures in Prometheus's
 * text exposition format (base/prom.c), served by libmicrohttpd.
 *
 * Threads: none of our own, and none of libmicrohttpd's. The server runs
 * in MHD's "external event loop" mode with epoll: its one epoll descriptor
 * is watched by a uv_poll on the broker's loop, and MHD_run does the
 * server's work there, between clients' requests. So a scrape reads the
 * broker's state on the thread that owns it: the per-partition counters
 * (in stream__pstate), the request counters and the store are plain
 * fields with no lock and no atomic, and the produce path pays one
 * increment per counter. The only figures written off the loop are the
 * sync histograms (the flusher thread's durable callback), which are
 * lock-free atomics (stream_prom_hist).
 *
 * A scrape renders the whole page at once into one buffer that is kept
 * for the next scrape (no allocation per sample once it has grown) and
 * hands MHD a copy. Rendering a thousand partitions takes well under a
 * millisecond of the loop (make bench measures it), the price of reading
 * without locks; everything else of an HTTP exchange is MHD's.
 *
 * Families a service adds (the group coordinator's lag, the cluster's
 * Raft and replication figures) come from its stream__service.metrics
 * callback, after the broker's own.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/internal.h"
#include "broker_internal.h"
#include "stream/error.h"

/* Scrapers at once, and how long an idle one may keep its connection. */
#define METRICS_CONNECTIONS_MAX 32
#define METRICS_IDLE_TIMEOUT_S  30

static const char content_type[] = "text/plain; version=0.0.4; charset=utf-8";

void stream__metrics_init(stream_broker *b)
{
    stream__metrics *m = &b->metrics;
    stream_buf_init(&m->page);
    for (int op = 0; op < STREAM_OP__COUNT; op++)
        stream_prom_hist_init(&m->latency[op], stream_prom_latency_ns_bounds,
                              stream_prom_latency_ns_nbounds, 1e-9);
    stream_prom_hist_init(&m->sync_ns, stream_prom_latency_ns_bounds,
                          stream_prom_latency_ns_nbounds, 1e-9);
    stream_prom_hist_init(&m->sync_records, stream_prom_records_bounds, stream_prom_records_nbounds,
                          1);
}

void stream__metrics_request(stream_broker *b, const stream__req *r)
{
    stream__metrics *m = &b->metrics;
    if (r->op <= STREAM_OP_UNKNOWN || r->op >= STREAM_OP__COUNT)
        return;
    m->requests[r->op]++;
    if (r->err < 0 && -r->err < STREAM__METRIC_ERRS)
        m->errors[r->op][-r->err]++;
    stream_prom_hist_observe(&m->latency[r->op], uv_hrtime() - r->start_ns);
}

void stream__metrics_synced(stream_broker *b, stream_log *log, int64_t durable_offset)
{
    int64_t from, target, start_ns, end_ns;
    if (!stream_log_last_round(log, &from, &target, &start_ns, &end_ns) || target != durable_offset)
        return; /* a failed round: the durable offset did not move */
    stream__metrics *m = &b->metrics;
    stream_prom_hist_observe(&m->sync_ns, (uint64_t)(end_ns - start_ns));
    stream_prom_hist_observe(&m->sync_records, (uint64_t)(target - from));
}

/* ---- rendering ----------------------------------------------------------- */

/* A topic's per-partition counters summed (both outputs use them). */
enum { TOPIC_RECORDS_IN, TOPIC_BYTES_IN, TOPIC_BYTES_OUT, TOPIC_SUMS };

static void topic_sums(stream_broker *b, const stream_topic *t, uint64_t sums[TOPIC_SUMS])
{
    sums[TOPIC_RECORDS_IN] = sums[TOPIC_BYTES_IN] = sums[TOPIC_BYTES_OUT] = 0;
    for (int32_t p = 0; p < t->partition_count; p++) {
        stream__pstate *ps = stream__pstate_get(b, t->partitions[p], false);
        if (ps == NULL)
            continue;
        sums[TOPIC_RECORDS_IN] += ps->records_in;
        sums[TOPIC_BYTES_IN] += ps->bytes_in;
        sums[TOPIC_BYTES_OUT] += ps->bytes_out;
    }
}

/* One family of a per-topic sum. */
static void topic_counter(stream_broker *b, stream_buf *out, const char *name, const char *help,
                          int which)
{
    stream_prom_family(out, name, STREAM_PROM_COUNTER, help);
    size_t nt = stream_store_topic_count(b->store);
    for (size_t i = 0; i < nt; i++) {
        stream_topic *t = stream_store_topic_at(b->store, i);
        uint64_t sums[TOPIC_SUMS];
        topic_sums(b, t, sums);
        stream_prom_label l[] = {{"topic", t->name}};
        stream_prom_sample(out, name, l, 1, (double)sums[which]);
    }
}

/* Open connections: [0] the native listener's, [1 + i] service listener i's. */
static void count_connections(stream_broker *b, uint64_t n[1 + STREAM__XLISTENERS_MAX])
{
    memset(n, 0, (1 + STREAM__XLISTENERS_MAX) * sizeof(uint64_t));
    for (stream__conn *c = b->conns; c; c = c->next)
        n[c->xl == NULL ? 0 : 1 + (size_t)(c->xl - b->xl)]++;
}

/* The process's resident memory (bytes) and open descriptors. */
static void process_figures(uint64_t *resident_bytes, uint64_t *fds)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    *resident_bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    *fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                (*fds)++;
        closedir(d);
        (*fds)--; /* the directory's own descriptor */
    }
}

/* The per-partition gauges of the logs. */
static void log_gauges(stream_broker *b, stream_buf *out)
{
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"stream_log_size_bytes", "Bytes of a partition's segment files."},
        {"stream_log_segments", "Segment files of a partition."},
        {"stream_log_start_offset", "A partition's log start offset."},
        {"stream_log_end_offset", "A partition's log end offset (the next offset)."},
    };
    size_t nt = stream_store_topic_count(b->store);
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        stream_prom_family(out, fam[f].name, STREAM_PROM_GAUGE, fam[f].help);
        for (size_t i = 0; i < nt; i++) {
            stream_topic *t = stream_store_topic_at(b->store, i);
            for (int32_t p = 0; p < t->partition_count; p++) {
                stream_log *log = t->partitions[p];
                char part[16];
                snprintf(part, sizeof(part), "%d", (int)p);
                stream_prom_label l[] = {{"topic", t->name}, {"partition", part}};
                double v = f == 0   ? (double)stream_log_size(log)
                           : f == 1 ? (double)stream_log_segment_count(log)
                           : f == 2 ? (double)stream_log_start_offset(log)
                                    : (double)stream_log_end_offset(log);
                stream_prom_sample(out, fam[f].name, l, 2, v);
            }
        }
    }
}

static void request_families(stream_broker *b, stream_buf *out)
{
    stream__metrics *m = &b->metrics;
    stream_prom_family(out, "stream_requests_total", STREAM_PROM_COUNTER,
                       "Native protocol requests answered, by op.");
    for (int op = 1; op < STREAM_OP__COUNT; op++) {
        if (m->requests[op] == 0)
            continue;
        stream_prom_label l[] = {{"op", stream_op_name((stream_op)op)}};
        stream_prom_sample(out, "stream_requests_total", l, 1, (double)m->requests[op]);
    }
    stream_prom_family(out, "stream_request_errors_total", STREAM_PROM_COUNTER,
                       "Native protocol requests answered with an error, by op and code.");
    for (int op = 1; op < STREAM_OP__COUNT; op++)
        for (int e = 1; e < STREAM__METRIC_ERRS; e++) {
            if (m->errors[op][e] == 0)
                continue;
            stream_prom_label l[] = {{"op", stream_op_name((stream_op)op)},
                                     {"code", stream_err_name(-e)}};
            stream_prom_sample(out, "stream_request_errors_total", l, 2, (double)m->errors[op][e]);
        }
    stream_prom_family(out, "stream_request_duration_seconds", STREAM_PROM_HISTOGRAM,
                       "Time from a request's arrival to its response, by op (long polls "
                       "and acks=all waits included).");
    for (int op = 1; op < STREAM_OP__COUNT; op++) {
        if (m->requests[op] == 0)
            continue;
        stream_prom_label l[] = {{"op", stream_op_name((stream_op)op)}};
        stream_prom_hist_write(out, "stream_request_duration_seconds", l, 1, &m->latency[op]);
    }
    stream_prom_family(out, "stream_fsync_duration_seconds", STREAM_PROM_HISTOGRAM,
                       "A partition's sync round: snapshot to fdatasync done.");
    stream_prom_hist_write(out, "stream_fsync_duration_seconds", NULL, 0, &m->sync_ns);
    stream_prom_family(out, "stream_fsync_batch_records", STREAM_PROM_HISTOGRAM,
                       "Records one sync round of a partition made durable (group commit).");
    stream_prom_hist_write(out, "stream_fsync_batch_records", NULL, 0, &m->sync_records);
}

static void connection_families(stream_broker *b, stream_buf *out)
{
    /* Native first, then each service listener by its name. */
    uint64_t n[1 + STREAM__XLISTENERS_MAX];
    count_connections(b, n);
    stream_prom_family(out, "stream_connections", STREAM_PROM_GAUGE,
                       "Open client connections, by listener.");
    stream_prom_label l[] = {{"listener", "native"}};
    stream_prom_sample(out, "stream_connections", l, 1, (double)n[0]);
    for (size_t i = 0; i < b->nxl; i++) {
        l[0].value = b->xl[i].name;
        stream_prom_sample(out, "stream_connections", l, 1, (double)n[1 + i]);
    }
    stream_prom_family(out, "stream_connections_accepted_total", STREAM_PROM_COUNTER,
                       "Client connections accepted on every listener (those refused at "
                       "max.connections included).");
    stream_prom_sample(out, "stream_connections_accepted_total", NULL, 0,
                       (double)b->metrics.conns_accepted);
}

/* Resident memory, descriptors and the data directory's file system. */
static void process_families(stream_broker *b, stream_buf *out)
{
    uint64_t resident, fds;
    process_figures(&resident, &fds);
    stream_prom_family(out, "stream_process_resident_memory_bytes", STREAM_PROM_GAUGE,
                       "The broker's resident memory.");
    stream_prom_sample(out, "stream_process_resident_memory_bytes", NULL, 0, (double)resident);
    stream_prom_family(out, "stream_process_open_fds", STREAM_PROM_GAUGE,
                       "File descriptors the broker has open.");
    stream_prom_sample(out, "stream_process_open_fds", NULL, 0, (double)fds);
    struct rlimit rl;
    stream_prom_family(out, "stream_process_max_fds", STREAM_PROM_GAUGE,
                       "The broker's open-file limit.");
    stream_prom_sample(out, "stream_process_max_fds", NULL, 0,
                       getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                           ? (double)rl.rlim_cur
                           : -1);
    struct statvfs vfs;
    if (statvfs(b->data_dir, &vfs) == 0) {
        stream_prom_family(out, "stream_data_dir_free_bytes", STREAM_PROM_GAUGE,
                           "Bytes available to the broker on the data directory's file system.");
        stream_prom_sample(out, "stream_data_dir_free_bytes", NULL, 0,
                           (double)vfs.f_bavail * (double)vfs.f_frsize);
        stream_prom_family(out, "stream_data_dir_size_bytes", STREAM_PROM_GAUGE,
                           "Size of the data directory's file system.");
        stream_prom_sample(out, "stream_data_dir_size_bytes", NULL, 0,
                           (double)vfs.f_blocks * (double)vfs.f_frsize);
    }
}

int stream__metrics_render(stream_broker *b)
{
    stream_buf *out = &b->metrics.page;
    stream_buf_reset(out);
    stream_prom_family(out, "stream_build_info", STREAM_PROM_GAUGE,
                       "Always 1; the version of the broker serving.");
    stream_prom_label v[] = {{"version", STREAM__BROKER_VERSION}};
    stream_prom_sample(out, "stream_build_info", v, 1, 1);
    topic_counter(b, out, "stream_topic_records_in_total", "Records appended by produce.",
                  TOPIC_RECORDS_IN);
    topic_counter(b, out, "stream_topic_bytes_in_total", "Record batch bytes appended by produce.",
                  TOPIC_BYTES_IN);
    topic_counter(b, out, "stream_topic_bytes_out_total",
                  "Record batch bytes served by fetch, to consumers and replicas.",
                  TOPIC_BYTES_OUT);
    request_families(b, out);
    log_gauges(b, out);
    connection_families(b, out);
    process_families(b, out);
    stream__services_metrics(b, out);
    stream_prom_family(out, "stream_metrics_scrapes_total", STREAM_PROM_COUNTER,
                       "Scrapes of /metrics answered before this one.");
    stream_prom_sample(out, "stream_metrics_scrapes_total", NULL, 0, (double)b->metrics.scrapes);
    return stream_buf_ok(out) == 0 ? 0 : STREAM_ENOMEM;
}

/* ---- the stats op ----------------------------------------------------------- */

static void pack_topics(stream_broker *b, msgpack_packer *pk)
{
    size_t nt = stream_store_topic_count(b->store);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, nt);
    for (size_t i = 0; i < nt; i++) {
        stream_topic *t = stream_store_topic_at(b->store, i);
        uint64_t sums[TOPIC_SUMS];
        topic_sums(b, t, sums);
        msgpack_pack_map(pk, 5);
        stream_pack_kv_cstr(pk, "name", t->name);
        stream_pack_kv_uint(pk, "records_in", sums[TOPIC_RECORDS_IN]);
        stream_pack_kv_uint(pk, "bytes_in", sums[TOPIC_BYTES_IN]);
        stream_pack_kv_uint(pk, "bytes_out", sums[TOPIC_BYTES_OUT]);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, (size_t)t->partition_count);
        for (int32_t p = 0; p < t->partition_count; p++) {
            stream_log *log = t->partitions[p];
            msgpack_pack_map(pk, 5);
            stream_pack_kv_int(pk, "partition", p);
            stream_pack_kv_int(pk, "size_bytes", stream_log_size(log));
            stream_pack_kv_int(pk, "segments", stream_log_segment_count(log));
            stream_pack_kv_int(pk, "log_start_offset", stream_log_start_offset(log));
            stream_pack_kv_int(pk, "log_end_offset", stream_log_end_offset(log));
        }
    }
}

static void pack_requests(stream_broker *b, msgpack_packer *pk)
{
    stream__metrics *m = &b->metrics;
    size_t n = 0;
    for (int op = 1; op < STREAM_OP__COUNT; op++)
        n += m->requests[op] > 0;
    stream_pack_key(pk, "requests");
    msgpack_pack_array(pk, n);
    for (int op = 1; op < STREAM_OP__COUNT; op++) {
        if (m->requests[op] == 0)
            continue;
        uint64_t errors = 0;
        for (int e = 1; e < STREAM__METRIC_ERRS; e++)
            errors += m->errors[op][e];
        msgpack_pack_map(pk, 4);
        stream_pack_kv_cstr(pk, "op", stream_op_name((stream_op)op));
        stream_pack_kv_uint(pk, "count", m->requests[op]);
        stream_pack_kv_uint(pk, "errors", errors);
        stream_pack_key(pk, "latency_seconds_sum");
        msgpack_pack_double(
            pk, (double)atomic_load_explicit(&m->latency[op].sum, memory_order_relaxed) * 1e-9);
    }
}

void stream__op_stats(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    uint64_t conns[1 + STREAM__XLISTENERS_MAX], resident, fds;
    count_connections(b, conns);
    process_figures(&resident, &fds);
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, 7 + stream__services_stats_count(b));
    stream_pack_kv_int(&f.pk, "node_id", b->node_id);
    stream_pack_kv_uint(&f.pk, "time_ms", stream__broker_now_ms());
    pack_topics(b, &f.pk);
    pack_requests(b, &f.pk);
    stream_pack_key(&f.pk, "connections");
    msgpack_pack_array(&f.pk, 1 + b->nxl);
    for (size_t i = 0; i <= b->nxl; i++) {
        msgpack_pack_map(&f.pk, 2);
        stream_pack_kv_cstr(&f.pk, "listener", i == 0 ? "native" : b->xl[i - 1].name);
        stream_pack_kv_uint(&f.pk, "count", conns[i]);
    }
    stream_pack_kv_uint(&f.pk, "resident_memory_bytes", resident);
    stream_pack_kv_uint(&f.pk, "open_fds", fds);
    stream__services_stats(b, &f.pk);
    stream__reply_finish(r, &f, id);
}

/* ---- the HTTP server ------------------------------------------------------ */

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* MHD's request handler: GET (or HEAD) /metrics; 404 and 405 otherwise. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    stream_broker *b = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics is served\n");
    if (strcmp(url, "/metrics") != 0)
        return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
    if (stream__metrics_render(b) != 0)
        return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    b->metrics.scrapes++;
    stream_buf *page = &b->metrics.page;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(page->len, page->data, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* MHD's messages (a scraper that misbehaves) go to the broker's log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    stream_broker *b = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    stream__blog(b, STREAM_BROKER_DEBUG, "metrics server: %s", msg);
}

static void on_timer(uv_timer_t *t);

/* Lets MHD do what is ready, then arms the timer for its next deadline. */
static void run_server(stream_broker *b)
{
    stream__metrics *m = &b->metrics;
    MHD_run(m->httpd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(m->httpd, &ms) == MHD_YES)
        uv_timer_start(&m->timer, on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&m->timer);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    stream_broker *b = p->data;
    run_server(b);
}

static void on_timer(uv_timer_t *t)
{
    stream_broker *b = t->data;
    run_server(b);
}

int stream__metrics_start(stream_broker *b, const stream_config *cfg, char *errbuf,
                          size_t errbuf_len)
{
    stream__metrics *m = &b->metrics;
    const char *addr = stream_config_str(cfg, STREAM_CONFIG_METRICS_LISTEN);
    if (strcmp(addr, "off") == 0)
        return 0;
    if (stream__host_clustered(b) && !stream_config_is_set(cfg, "metrics.listen")) {
        stream__blog(b, STREAM_BROKER_INFO,
                     "metrics off: a cluster's broker serves them only when metrics.listen is set");
        return 0;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int rc = stream__parse_listen(addr, "metrics.listen", &ss, m->host, sizeof(m->host), &m->port,
                                  errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    m->httpd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, b, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)METRICS_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)METRICS_IDLE_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER,
                                on_mhd_log, b, MHD_OPTION_END);
    if (m->httpd == NULL) {
        int e = errno;
        stream__errf(errbuf, errbuf_len, "metrics.listen: cannot listen on %s: %s%s", addr,
                     e ? strerror(e) : "the HTTP server did not start",
                     e == EADDRINUSE ? " (another process has the port: set another one, or "
                                       "--metrics-listen off)"
                                     : "");
        return e == EADDRINUSE ? STREAM_EAGAIN : STREAM_EIO;
    }
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_BIND_PORT);
    if (port != NULL)
        m->port = port->port;
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_EPOLL_FD);
    if (ep == NULL) {
        stream__errf(errbuf, errbuf_len, "metrics.listen: the HTTP server has no epoll descriptor");
        MHD_stop_daemon(m->httpd);
        m->httpd = NULL;
        return STREAM_EIO;
    }
    uv_timer_init(&b->loop, &m->timer);
    m->timer.data = b;
    m->timer_open = true;
    int uvrc = uv_poll_init(&b->loop, &m->poll, ep->epoll_fd);
    if (uvrc == 0) {
        m->poll.data = b;
        m->poll_open = true;
        uvrc = uv_poll_start(&m->poll, UV_READABLE, on_poll);
    }
    if (uvrc != 0) {
        stream__errf(errbuf, errbuf_len, "metrics.listen: cannot watch the HTTP server: %s",
                     uv_strerror(uvrc));
        return STREAM_EIO; /* the handles close with the broker's, then the server stops */
    }
    stream__blog(b, STREAM_BROKER_INFO, "metrics on http://%s%s%s:%d/metrics",
                 ss.ss_family == AF_INET6 ? "[" : "", m->host, ss.ss_family == AF_INET6 ? "]" : "",
                 m->port);
    return 0;
}

void stream__metrics_close(stream_broker *b)
{
    stream__metrics *m = &b->metrics;
    if (m->poll_open && !uv_is_closing((uv_handle_t *)&m->poll))
        uv_close((uv_handle_t *)&m->poll, NULL);
    if (m->timer_open && !uv_is_closing((uv_handle_t *)&m->timer))
        uv_close((uv_handle_t *)&m->timer, NULL);
}

void stream__metrics_free(stream_broker *b)
{
    stream__metrics *m = &b->metrics;
    if (m->httpd != NULL)
        MHD_stop_daemon(m->httpd); /* the poll handle on its descriptor is closed */
    m->httpd = NULL;
    m->poll_open = m->timer_open = false;
    stream_buf_release(&m->page);
}
