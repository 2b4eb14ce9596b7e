/*
 * host.c - the broker as a host of services (host.h): the list of services
 * it starts, the routing of their ops, the topic events, and the functions
 * a service calls on the broker.
 *
 * The list below is the only place the broker core names a service. Each
 * service's descriptor is defined in its own folder and declared here,
 * once, with an extern: the core links against it without including
 * anything of the service's folder, which sits above broker/ (STYLE.md
 * rule 18). At start the ops of every service go into one table indexed by
 * op (stream_broker.routes), so dispatching a service's op costs one load.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker_internal.h"
#include "stream/error.h"
#include "base/internal.h"

/* ---- the services this broker hosts ---- */

extern const stream__service stream__coord_service;      /* libstream/coord/group.c */
extern const stream__service stream__controller_service; /* libstream/cluster/controller.c */
extern const stream__service stream__kafka_service;      /* libstream/kafka/kafka.c */

/* Started in this order, stopped and freed in the reverse one. */
static const stream__service *const services[] = {
    &stream__coord_service,
    &stream__controller_service,
    &stream__kafka_service,
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

_Static_assert(NSERVICES <= STREAM__SERVICES_MAX, "raise STREAM__SERVICES_MAX");

/* Routes service i's ops; EINVAL when one is taken or out of range. */
static int add_routes(stream_broker *b, size_t i, char *errbuf, size_t errbuf_len)
{
    const stream__service *s = services[i];
    for (size_t k = 0; k < s->nops; k++) {
        stream_op op = s->ops[k].op;
        if ((int)op <= STREAM_OP_UNKNOWN || op >= STREAM_OP__COUNT) {
            stream__errf(errbuf, errbuf_len, "%s: op %d is not a protocol op", s->name, (int)op);
            return STREAM_EINVAL;
        }
        if (b->routes[op].handle != NULL) {
            stream__errf(errbuf, errbuf_len, "%s and %s both answer op '%s'",
                         services[b->routes[op].service]->name, s->name, stream_op_name(op));
            return STREAM_EINVAL;
        }
        b->routes[op].handle = s->ops[k].handle;
        b->routes[op].service = i;
    }
    return 0;
}

void *stream__host_service_state(stream_broker *b, const stream__service *s)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i] == s)
            return b->svc[i];
    return NULL;
}

int stream__services_start(stream_broker *b, char *errbuf, size_t errbuf_len)
{
    for (size_t i = 0; i < NSERVICES; i++) {
        int rc = add_routes(b, i, errbuf, errbuf_len);
        if (rc == 0)
            rc = services[i]->start(b, &b->svc[i], errbuf, errbuf_len);
        if (b->svc[i] != NULL)
            b->nsvc = i + 1; /* stopped and freed as usual, even after a failed start */
        if (rc != 0)
            return rc;
        for (size_t k = 0; k < services[i]->nops; k++)
            b->routes[services[i]->ops[k].op].svc = b->svc[i];
    }
    return 0;
}

void stream__services_stop(stream_broker *b)
{
    if (b->svc_stopped)
        return;
    b->svc_stopped = true;
    for (size_t i = b->nsvc; i-- > 0;)
        services[i]->stop(b->svc[i]);
}

void stream__services_free(stream_broker *b)
{
    for (size_t i = b->nsvc; i-- > 0;) {
        services[i]->free(b->svc[i]);
        b->svc[i] = NULL;
    }
    b->nsvc = 0;
    memset(b->routes, 0, sizeof(b->routes));
}

bool stream__services_dispatch(stream_broker *b, stream__req *r, uint64_t id, stream_op op,
                               const msgpack_object *m)
{
    if ((int)op <= STREAM_OP_UNKNOWN || op >= STREAM_OP__COUNT || b->routes[op].svc == NULL)
        return false;
    b->routes[op].handle(b->routes[op].svc, r, id, m);
    return true;
}

void stream__services_topic_created(stream_broker *b, stream_topic *t)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->topic_created)
            services[i]->topic_created(b->svc[i], t);
}

void stream__services_topic_deleted(stream_broker *b, const char *name)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->topic_deleted)
            services[i]->topic_deleted(b->svc[i], name);
}

void stream__services_partitions_added(stream_broker *b, stream_topic *t, int32_t old_count)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->partitions_added)
            services[i]->partitions_added(b->svc[i], t, old_count);
}

void stream__services_conn_closed(stream_broker *b, uint64_t conn_id)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->conn_closed && b->svc[i] != NULL)
            services[i]->conn_closed(b->svc[i], conn_id);
}

void stream__services_metrics(stream_broker *b, stream_buf *out)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->metrics && b->svc[i] != NULL)
            services[i]->metrics(b->svc[i], out);
}

size_t stream__services_stats_count(stream_broker *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->stats && b->svc[i] != NULL)
            n++;
    return n;
}

void stream__services_stats(stream_broker *b, msgpack_packer *pk)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->stats && b->svc[i] != NULL)
            services[i]->stats(b->svc[i], pk);
}

void stream__services_role_changed(stream_broker *b, stream_log *log, stream__host_role role,
                                   int32_t leader_epoch)
{
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->role_changed && b->svc[i] != NULL)
            services[i]->role_changed(b->svc[i], log, role, leader_epoch);
}

bool stream__services_stop_requested(stream_broker *b)
{
    bool hold = false;
    for (size_t i = 0; i < b->nsvc; i++)
        if (services[i]->stop_requested && b->svc[i] != NULL)
            hold = services[i]->stop_requested(b->svc[i]) || hold;
    return hold;
}

/* ---- what a service may ask of the broker ---- */

uv_loop_t *stream__host_loop(stream_broker *b)
{
    return &b->loop;
}

stream_store *stream__host_store(stream_broker *b)
{
    return b->store;
}

const stream_config *stream__host_config(stream_broker *b)
{
    return b->config;
}

void stream__host_listen_address(stream_broker *b, const char **host, uint16_t *port)
{
    *host = b->host;
    *port = (uint16_t)b->port;
}

int32_t stream__host_node_id(stream_broker *b)
{
    return b->node_id;
}

bool stream__host_clustered(stream_broker *b)
{
    const char *voters = stream_config_str(b->config, STREAM_CONFIG_CLUSTER_VOTERS);
    return voters != NULL && voters[0] != '\0';
}

bool stream__host_stopping(stream_broker *b)
{
    return b->stopping;
}

void stream__host_log(stream_broker *b, stream_broker_level level, const char *fmt, ...)
{
    if (b->log_cb == NULL || level > b->log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stream__blog(b, level, "%s", msg);
}

uint64_t stream__host_now_ms(void)
{
    return stream__broker_now_ms();
}

void stream__host_reply_start(stream__req *r, stream_frame *f)
{
    stream_buf_reset(&r->out);
    stream_frame_start(f, &r->out);
}

int stream__host_reply_finish(stream__req *r, stream_frame *f, uint64_t id)
{
    return stream__reply_finish(r, f, id);
}

void stream__host_reply_error(stream__req *r, uint64_t id, int err, const char *msg)
{
    stream__reply_error(r, id, err, msg);
}

const char *stream__host_req_peer(const stream__req *r)
{
    return r->conn->peer;
}

uint64_t stream__host_req_conn(const stream__req *r)
{
    return r->conn->id;
}

int stream__host_create_topic(stream_broker *b, const char *name, int32_t partitions,
                              const stream_config *overrides, bool internal, stream_topic **out,
                              char *msg, size_t msg_len)
{
    int rc = stream_store_create_topic(b->store, name, partitions, overrides, internal, out, msg,
                                       msg_len);
    if (rc != 0)
        return rc;
    if (stream__broker_attach_topic(b, *out) != 0)
        stream__blog(b, STREAM_BROKER_ERROR, "%s: cannot attach to the flusher", name);
    stream__services_topic_created(b, *out);
    return 0;
}

int stream__host_add_partitions(stream_broker *b, const char *name, int32_t count, char *msg,
                                size_t msg_len)
{
    return stream__broker_add_partitions(b, name, count, msg, msg_len);
}

int stream__host_create_topic_async(stream_broker *b, const char *name, int32_t partitions,
                                    const stream_config *overrides, bool internal,
                                    stream__host_job_done_fn done, void *arg, char *msg,
                                    size_t msg_len)
{
    return stream__broker_create_async(b, name, partitions, overrides, internal, done, arg, msg,
                                       msg_len);
}

int stream__host_add_partitions_async(stream_broker *b, const char *name, int32_t count,
                                      stream__host_job_done_fn done, void *arg, char *msg,
                                      size_t msg_len)
{
    return stream__broker_grow_async(b, name, count, done, arg, msg, msg_len);
}

int stream__host_delete_topic(stream_broker *b, const char *name, char *msg, size_t msg_len)
{
    return stream__broker_delete_topic(b, name, strlen(name), msg, msg_len);
}

void stream__host_appended(stream_broker *b, stream_log *log, size_t bytes)
{
    stream__wait_on_append(b, log, bytes);
}

/* The waiter's completion: the service's done, told whether it may answer. */
static void wait_done(stream_broker *b, stream__req *r, void *state, stream__wait_reason why)
{
    stream__host_wait *w = state;
    w->done(b, r, w, why == STREAM__WAIT_CANCEL || r == NULL);
}

/* How far log is confirmed for a writer: its durable offset, or for a
 * replicated partition its high watermark (durable on every ISR member). */
static int64_t confirmed_offset(stream_broker *b, stream_log *log)
{
    stream__pstate *ps = b->repl_on ? stream__pstate_get(b, log, false) : NULL;
    if (ps == NULL || !ps->repl_known)
        return stream_log_durable_offset(log);
    return ps->high_watermark;
}

void stream__host_wait_durable(stream_broker *b, stream__req *r, stream_log *const *logs,
                               const int64_t *need, size_t n, uint64_t timeout_ms,
                               stream__host_wait *hw)
{
    stream__waiter *w = NULL;
    if (n > 0 && !b->stopping)
        w = stream__waiter_new(b, r, STREAM__WAIT_PRODUCE, n, wait_done, hw);
    for (size_t i = 0; w && i < n; i++) {
        if (confirmed_offset(b, logs[i]) >= need[i])
            continue;
        if (stream__waiter_watch(w, logs[i], need[i]) != 0) {
            stream__waiter_discard(w);
            w = NULL;
        }
    }
    if (w == NULL || w->nlinks == 0) {
        /* Durable already, nothing written, or cannot park: flush here
         * rather than answer before the disk has it. */
        stream__waiter_discard(w);
        for (size_t i = 0; i < n; i++)
            if (stream_log_durable_offset(logs[i]) < need[i])
                stream_log_flush(logs[i]);
        hw->done(b, r, hw, false);
        return;
    }
    stream__waiter_start(w, timeout_ms);
}

/* ---- a service in place of a core op ---- */

void stream__host_take_op(stream_broker *b, stream_op op, stream__op_handler h, void *svc)
{
    if ((int)op <= STREAM_OP_UNKNOWN || op >= STREAM_OP__COUNT || op == STREAM_OP_HELLO)
        return;
    b->routes[op].handle = h;
    b->routes[op].svc = svc;
    b->routes[op].taken = true;
}

/* ---- services' listeners ---- */

int stream__host_listen(stream_broker *b, const char *addr, const char *setting,
                        stream__frame_handler h, void *svc, uint16_t *port, char *errbuf,
                        size_t errbuf_len)
{
    if (b->nxl >= STREAM__XLISTENERS_MAX) {
        stream__errf(errbuf, errbuf_len, "%s: no listener slot left", setting);
        return STREAM_ENOMEM;
    }
    struct sockaddr_storage ss;
    char host[256];
    int p;
    memset(&ss, 0, sizeof(ss));
    int rc = stream__parse_listen(addr, setting, &ss, host, sizeof(host), &p, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__listen_allowed(b, host, setting, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    stream__xlistener *xl = &b->xl[b->nxl];
    memset(xl, 0, sizeof(*xl));
    xl->broker = b;
    xl->handle = h;
    xl->svc = svc;
    size_t nlen = strcspn(setting, ". ");
    if (nlen >= sizeof(xl->name))
        nlen = sizeof(xl->name) - 1;
    memcpy(xl->name, setting, nlen);
    xl->name[nlen] = '\0';
    uv_tcp_init(&b->loop, &xl->tcp);
    xl->tcp.data = xl;
    xl->open = true;
    b->nxl++;
    int uvrc = uv_tcp_bind(&xl->tcp, (struct sockaddr *)&ss, 0);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&xl->tcp, 511, stream__conn_on_xconnection);
    if (uvrc != 0) {
        stream__errf(
            errbuf, errbuf_len, "%s: cannot listen on %s: %s%s", setting, addr, uv_strerror(uvrc),
            uvrc == UV_EADDRINUSE ? " (another process has the port: set another one, or off)"
                                  : "");
        return uvrc == UV_EADDRINUSE ? STREAM_EAGAIN : STREAM_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    *port = (uint16_t)p;
    if (uv_tcp_getsockname(&xl->tcp, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            *port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            *port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return 0;
}

void stream__xlisteners_close(stream_broker *b)
{
    for (size_t i = 0; i < b->nxl; i++) {
        if (b->xl[i].open && !uv_is_closing((uv_handle_t *)&b->xl[i].tcp))
            uv_close((uv_handle_t *)&b->xl[i].tcp, NULL);
        b->xl[i].open = false;
    }
}

stream_buf *stream__host_req_out(stream__req *r)
{
    stream__req_out_get(r);
    return &r->out;
}

void stream__host_req_done(stream__req *r)
{
    stream__req_complete(r);
}

void stream__host_req_drop(stream__req *r)
{
    r->silent = true;
    stream__req_complete(r);
}

void stream__host_req_close(stream__req *r)
{
    stream__conn *c = r->conn; /* freed only by a later uv_close callback */
    stream__req_drop_files(r);
    r->silent = true;
    stream__req_complete(r);
    if (!c->closing)
        stream__conn_break(c);
}

void stream__host_set_advertised(stream_broker *b, const char *name, const char *host,
                                 uint16_t port)
{
    size_t i = 0;
    while (i < b->nadvertised && strcmp(b->advertised[i].name, name) != 0)
        i++;
    if (i == STREAM__XLISTENERS_MAX)
        return; /* as many as listeners: never reached */
    if (i == b->nadvertised)
        b->nadvertised++;
    snprintf(b->advertised[i].name, sizeof(b->advertised[i].name), "%s", name);
    snprintf(b->advertised[i].host, sizeof(b->advertised[i].host), "%s", host);
    b->advertised[i].port = port;
}

bool stream__host_advertised(stream_broker *b, const char *name, const char **host, uint16_t *port)
{
    for (size_t i = 0; i < b->nadvertised; i++) {
        if (strcmp(b->advertised[i].name, name) == 0) {
            *host = b->advertised[i].host;
            *port = b->advertised[i].port;
            return true;
        }
    }
    return false;
}
