/*
 * quorum.c - the metadata quorum on libraft 0.15 (see quorum.h).
 *
 * The idea: libraft does the consensus; this file makes it safe to use. The
 * engine's sharp edges (quorum.h lists them) are each handled in one place:
 *
 *   - Proposals live in our own table, not only in libraft's. libraft fires
 *     an apply callback when this node applies the entry, or fails it when it
 *     steps down, but a leader that is stopped or killed may never call back,
 *     and a callback must fire exactly once. So each proposal has two owners:
 *     the user (answered once, by whichever of libraft's callback, the poll
 *     timer's leadership check or stop comes first) and libraft (which holds
 *     &p->req until it calls back or is closed). A proposal is freed when both
 *     are done with it: on libraft's callback once answered, or at close.
 *   - There is no state-change callback: a uv timer polls raft_state() and
 *     raft_leader() every poll_ms, reports changes, and fails proposals of a
 *     term this node no longer leads.
 *   - apply always returns 0 to libraft (a non-zero return stalls the log);
 *     the command's verdict travels in the result pointer as an integer.
 *   - raft_close is never called from inside a libraft callback: stop defers
 *     it to the next loop iteration through the poll timer.
 *
 * Entries' indexes: libraft 0.15's apply callback does not pass the index.
 * It applies entries in order and sets last_applied after each one, so during
 * the callback the entry's index is raft_last_applied() + 1.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "cluster_internal.h"
#include "quorum.h"
#include "stream/buf.h"
#include "stream/error.h"

#define CLUSTER_ID_FILE     "cluster-id"
#define CLUSTER_ID_TMP_FILE "cluster-id.tmp"

/* Stop waits for log writes in flight (see on_stop_timer): poll interval
 * and the longest wait (a disk that hangs longer is not waited for). */
#define STOP_DRAIN_POLL_MS 2
#define STOP_DRAIN_MAX_MS  5000

/* Intrusive doubly linked list with a sentinel head. Unlinking needs no head,
 * so a proposal can leave whichever list holds it. */
typedef struct qlink {
    struct qlink *prev, *next;
} qlink;

static void list_init(qlink *head)
{
    head->prev = head->next = head;
}

static bool list_empty(const qlink *head)
{
    return head->next == head;
}

static void list_push(qlink *head, qlink *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void list_unlink(qlink *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

/* Moves every element of from to the (empty) to. */
static void list_move_all(qlink *from, qlink *to)
{
    list_init(to);
    if (list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

#define PROPOSAL_OF(l) ((proposal *)((char *)(l)-offsetof(proposal, link)))

typedef struct proposal {
    qlink link;            /* in q->pending until answered, then q->answered */
    struct raft_apply req; /* held by libraft until it calls back or closes */
    stream__quorum *q;
    stream__quorum_done_cb cb;
    void *arg;
    uint64_t term; /* the term this node led when proposing */
    bool answered; /* cb has fired */
} proposal;

struct stream__quorum {
    uv_loop_t *loop;          /* borrowed; runs everything */
    stream__quorum_config cfg; /* copy; cfg.data_dir and cfg.cluster_id point below */
    char *data_dir;           /* owned copy */
    char cluster_id[STREAM__QUORUM_CLUSTER_ID_MAX + 1];
    char address[32];      /* this node's "a.b.c.d:port" */
    stream__quorum_fsm fsm; /* the user's state machine */
    struct raft raft;      /* the engine */
    struct raft_io io;     /* its disk and network, on libuv */
    struct raft_uv_transport transport; /* ours: libraft's TCP one plus "who leads" */
    struct raft_uv_transport inner;     /* libraft's TCP transport: connects */
    uv_tcp_t listener;                  /* the Raft address (ours, see the transport) */
    bool listener_open;                 /* initialised; closed on the transport's close */
    qlink incoming;                     /* accepted connections not handed over yet */
    raft_uv_accept_cb accept_cb;        /* libraft's, from listen */
    raft_uv_transport_close_cb transport_close_cb;
    bool transport_closing;
    bool inner_closed;
    struct raft_fsm raft_fsm; /* adapter from libraft to fsm */
    uv_timer_t poll;          /* state polling; then the deferred close */
    qlink pending;            /* proposals not answered yet */
    qlink answered;           /* answered, still held by libraft */
    int32_t reported_leader;  /* leader at the last change report, -1 none */
    bool reported_is_leader;  /* is_leader at the last change report */
    uint64_t reported_term;   /* term at the last change report */
    bool stopping;            /* stop was called */
    bool raft_closed;         /* libraft's close callback has run */
    bool poll_closed;         /* the poll timer's close callback has run */
    uint64_t stop_deadline;   /* loop time after which stop closes without draining */
    stream__quorum_stop_cb stop_cb;
    void *stop_arg;
    char restore_err[256]; /* the fsm's message from a failed restore */
    struct raft_transfer transfer; /* held by libraft while transferring */
    bool transferring;             /* a transfer is on: its callback has not run */
};

/* ---- configuration ------------------------------------------------------- */

void stream__quorum_config_init(stream__quorum_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->election_timeout_ms = STREAM__QUORUM_DEFAULT_ELECTION_TIMEOUT_MS;
    cfg->heartbeat_ms = STREAM__QUORUM_DEFAULT_HEARTBEAT_MS;
    cfg->snapshot_threshold = STREAM__QUORUM_DEFAULT_SNAPSHOT_THRESHOLD;
    cfg->snapshot_trailing = STREAM__QUORUM_DEFAULT_SNAPSHOT_TRAILING;
    cfg->install_snapshot_timeout_ms = STREAM__QUORUM_DEFAULT_INSTALL_SNAPSHOT_MS;
    cfg->connect_retry_ms = STREAM__QUORUM_DEFAULT_CONNECT_RETRY_MS;
    cfg->poll_ms = STREAM__QUORUM_DEFAULT_POLL_MS;
    cfg->pre_vote = true;
}

/* Parses a decimal number of 1 to `digits` digits, up to max. */
static bool parse_decimal(const char *p, size_t len, size_t digits, unsigned long max,
                          unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0 || len > digits)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    *out = v;
    return v <= max;
}

/* One "ID@IPV4:PORT" of len bytes; `e` is the entry, quoted in errors. */
static int parse_voter(const char *e, size_t len, stream__quorum_voter *v, char *errbuf,
                       size_t errbuf_len)
{
    int n = len > INT_MAX ? INT_MAX : (int)len;
    const char *at = memchr(e, '@', len);
    if (at == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "voter '%.*s': expected ID@HOST:PORT (as in 1@127.0.0.1:9301), "
                            "found no '@'",
                            n, e);
    unsigned long id;
    if (!parse_decimal(e, (size_t)(at - e), 10, INT32_MAX, &id) || id == 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "voter '%.*s': the node id before '@' must be a number from 1 "
                            "to 2147483647",
                            n, e);
    const char *host = at + 1, *end = e + len;
    const char *colon = memrchr(host, ':', (size_t)(end - host));
    if (colon == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "voter '%.*s': the port is missing (ID@HOST:PORT)", n, e);
    unsigned long port;
    if (!parse_decimal(colon + 1, (size_t)(end - colon - 1), 5, 65535, &port) || port == 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "voter '%.*s': the port must be a number from 1 to 65535", n, e);
    size_t host_len = (size_t)(colon - host);
    struct in_addr addr;
    bool ipv4 = host_len > 0 && host_len < sizeof v->host;
    if (ipv4) {
        memcpy(v->host, host, host_len);
        v->host[host_len] = '\0';
        ipv4 = inet_pton(AF_INET, v->host, &addr) == 1;
    }
    if (!ipv4)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "voter '%.*s': '%.*s' is not an IPv4 address; the Raft "
                            "transport takes IPv4 literals only: use an IPv4 address "
                            "(as in %lu@127.0.0.1:%lu)",
                            n, e, (int)(colon - host), host, id, port);
    v->id = (int32_t)id;
    v->port = (uint16_t)port;
    return 0;
}

int stream__quorum_voters_parse(const char *s, stream__quorum_voter *out, size_t max, size_t *count,
                               char *errbuf, size_t errbuf_len)
{
    size_t n = 0;
    *count = 0;
    if (s == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "no voters given");
    for (const char *p = s; *p != '\0';) {
        const char *comma = strchr(p, ',');
        const char *e = comma != NULL ? comma : p + strlen(p);
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        p = comma != NULL ? comma + 1 : e;
        if (a == b)
            continue;
        int len = (int)(b - a);
        if (n == max)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "voter '%.*s': more than %zu voters", len, a, max);
        stream__quorum_voter v;
        int rc = parse_voter(a, (size_t)len, &v, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (out[i].id == v.id)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "voter '%.*s': node id %d appears twice", len, a, (int)v.id);
            if (out[i].port == v.port && strcmp(out[i].host, v.host) == 0)
                return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                    "voter '%.*s': address %s:%u is also voter %d's", len, a,
                                    v.host, (unsigned)v.port, (int)out[i].id);
        }
        out[n++] = v;
    }
    if (n == 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "no voter in '%s' (expected ID@HOST:PORT,...)", s);
    *count = n;
    return 0;
}

static const stream__quorum_voter *find_voter(const stream__quorum_config *cfg, int32_t id)
{
    for (size_t i = 0; i < cfg->n_voters; i++)
        if (cfg->voters[i].id == id)
            return &cfg->voters[i];
    return NULL;
}

static int check_config(const stream__quorum_config *cfg, char *errbuf, size_t errbuf_len)
{
    if (cfg->n_voters == 0 || cfg->n_voters > STREAM__QUORUM_MAX_VOTERS)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "a quorum needs 1 to %d voters, not %zu", STREAM__QUORUM_MAX_VOTERS,
                            cfg->n_voters);
    for (size_t i = 0; i < cfg->n_voters; i++) {
        const stream__quorum_voter *v = &cfg->voters[i];
        struct in_addr addr;
        if (v->id < 1 || v->port == 0 || memchr(v->host, '\0', sizeof v->host) == NULL ||
            inet_pton(AF_INET, v->host, &addr) != 1)
            return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                                "voter %zu is not a node id >= 1 with an IPv4 address and "
                                "a port",
                                i + 1);
        if (find_voter(cfg, v->id) != v)
            return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                                "node id %d appears twice among the voters", (int)v->id);
    }
    if (find_voter(cfg, cfg->node_id) == NULL)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "node id %d is not one of the voters", (int)cfg->node_id);
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0')
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "no data directory for the quorum");
    if (cfg->cluster_id == NULL || !stream__cluster_id_ok(cfg->cluster_id, strlen(cfg->cluster_id),
                                                          STREAM__QUORUM_CLUSTER_ID_MAX))
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "the cluster id must be 1 to %d letters, digits, '.', '_' or "
                            "'-'",
                            STREAM__QUORUM_CLUSTER_ID_MAX);
    if (cfg->heartbeat_ms == 0 || cfg->election_timeout_ms <= cfg->heartbeat_ms)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "the election timeout (%u ms) must be longer than the "
                            "heartbeat (%u ms, >= 1)",
                            cfg->election_timeout_ms, cfg->heartbeat_ms);
    if (cfg->snapshot_threshold == 0 || cfg->install_snapshot_timeout_ms == 0 ||
        cfg->connect_retry_ms == 0 || cfg->poll_ms == 0)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "snapshot threshold, install snapshot timeout, connect retry "
                            "and poll interval must be >= 1");
    return 0;
}

/* ---- the data directory -------------------------------------------------- */

/* mkdir -p dir (a private copy is cut at each '/'). */
static int make_dirs(const char *dir, char *errbuf, size_t errbuf_len)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof path)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "data directory path is too long");
    memcpy(path, dir, len + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return stream__fail(stream_err_from_errno(errno), errbuf, errbuf_len,
                                "cannot create %s: %s", path, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    return 0;
}

/* True when dir holds no file but ours from an interrupted first start. */
static int dir_is_pristine(const char *dir, bool *pristine, char *errbuf, size_t errbuf_len)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return stream__fail(stream_err_from_errno(errno), errbuf, errbuf_len, "cannot read %s: %s",
                            dir, strerror(errno));
    *pristine = true;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") != 0 && strcmp(n, "..") != 0 && strcmp(n, "lost+found") != 0 &&
            strcmp(n, CLUSTER_ID_TMP_FILE) != 0) {
            *pristine = false;
            break;
        }
    }
    closedir(d);
    return 0;
}

/* Writes the cluster id file durably: temp file, fsync, rename, fsync dir. */
static int write_cluster_id(const char *dir, const char *id, char *errbuf, size_t errbuf_len)
{
    char tmp[PATH_MAX], path[PATH_MAX], line[STREAM__QUORUM_CLUSTER_ID_MAX + 2];
    snprintf(tmp, sizeof tmp, "%s/%s", dir, CLUSTER_ID_TMP_FILE);
    snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_ID_FILE);
    int len = snprintf(line, sizeof line, "%s\n", id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e != 0 ? e : EIO;
        goto fail;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0)
        goto fail;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    int rc = fsync(fd);
    close(fd);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    return stream__fail(stream_err_from_errno(errno), errbuf, errbuf_len, "cannot write %s: %s",
                        path, strerror(errno));
}

/* Step 2 of stream__quorum_start: the directory belongs to this cluster. */
static int check_cluster_id(const char *dir, const char *want, char *errbuf, size_t errbuf_len)
{
    char path[PATH_MAX], buf[STREAM__QUORUM_CLUSTER_ID_MAX + 3];
    snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_ID_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return stream__fail(stream_err_from_errno(errno), errbuf, errbuf_len, "cannot read %s: %s",
                            path, strerror(errno));
    if (fd < 0) {
        bool pristine = false;
        int rc = dir_is_pristine(dir, &pristine, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        if (!pristine)
            return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                                "%s holds files but no %s: refusing to guess which "
                                "cluster they belong to (empty the directory to join "
                                "cluster '%s')",
                                dir, CLUSTER_ID_FILE, want);
        return write_cluster_id(dir, want, errbuf, errbuf_len);
    }
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0)
        return stream__fail(stream_err_from_errno(e), errbuf, errbuf_len, "cannot read %s: %s",
                            path, strerror(e));
    size_t len = (size_t)n;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (!stream__cluster_id_ok(buf, len, STREAM__QUORUM_CLUSTER_ID_MAX))
        return stream__fail(STREAM_ECORRUPT, errbuf, errbuf_len,
                            "%s is damaged (expected one line of 1 to %d letters, digits, "
                            "'.', '_' or '-')",
                            path, STREAM__QUORUM_CLUSTER_ID_MAX);
    if (len != strlen(want) || memcmp(buf, want, len) != 0)
        return stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                            "%s belongs to cluster '%.*s', not to cluster '%s': a node "
                            "keeps the cluster it was first started in",
                            dir, (int)len, buf, want);
    return 0;
}

/* Step 3: can this node listen on its address? libraft's transport reports a
 * failed listen as a bare I/O error, so ask the kernel first, with the same
 * SO_REUSEADDR libuv uses. */
static int check_listen(const stream__quorum_voter *v, char *errbuf, size_t errbuf_len)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(v->port);
    if (inet_pton(AF_INET, v->host, &sa.sin_addr) != 1)
        return STREAM_EBADCONFIG; /* check_config already refused it */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return stream__fail(stream_err_from_errno(errno), errbuf, errbuf_len, "socket: %s",
                            strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (rc == 0)
        return 0;
    if (e == EADDRNOTAVAIL)
        return stream__fail(STREAM_EIO, errbuf, errbuf_len,
                            "cannot listen on %s:%u for Raft: %s is not an address of "
                            "this machine",
                            v->host, (unsigned)v->port, v->host);
    /* EADDRINUSE reads "Address already in use": the caller may retry. */
    return stream__fail(STREAM_EIO, errbuf, errbuf_len, "cannot listen on %s:%u for Raft: %s",
                        v->host, (unsigned)v->port, strerror(e));
}

/* ---- the transport: libraft's TCP one, with "who leads" on its port -------
 *
 * libraft's TCP transport connects (delegated to it as is), but this file
 * listens: every accepted connection's first 8 bytes say what it is (see
 * quorum.h). A Raft peer's handshake is read to its end and the stream
 * handed to libraft's accept callback, exactly as libraft's own listener
 * does (libraft then owns the handle, allocated with raft_malloc, and frees
 * it with raft_free); the reads ask for exactly the bytes of the current
 * part, so nothing of what follows the handshake is consumed here. A
 * "who leads" question gets its line, then the connection closes.
 *
 * The transport's impl is the quorum (libraft keeps its own pointer in
 * data). */

#define HANDSHAKE_PROTOCOL   1   /* libraft's uv_tcp handshake version */
#define HANDSHAKE_ADDR_MAX   512 /* longest peer address accepted (IPv4 "a.b.c.d:port" padded) */
#define LISTEN_BACKLOG       16

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* libuv's errors are negated errnos on Unix. */
static int err_from_uv(int status)
{
    return stream_err_from_errno(-status);
}

enum { IN_HEAD, IN_PREAMBLE, IN_ADDRESS, IN_ANSWER, IN_CLOSING };

#define INCOMING_OF(l) ((incoming *)((char *)(l)-offsetof(incoming, link)))

typedef struct incoming {
    qlink link; /* in q->incoming until handed over or closed */
    stream__quorum *q;
    uv_tcp_t *tcp; /* raft_malloc'd: libraft frees it once handed over */
    int state;
    uint8_t head[24];  /* the 8 first bytes, then the rest of libraft's preamble */
    size_t nread;      /* of the current part */
    char *address;     /* the peer's address (IN_ADDRESS), NUL-terminated */
    size_t address_len;
    uv_write_t write;
    char answer[STREAM__QUORUM_WHO_MAX];
} incoming;

static void incoming_closed(uv_handle_t *h);

static void incoming_close(incoming *in)
{
    if (in->state == IN_CLOSING)
        return;
    in->state = IN_CLOSING;
    uv_close((uv_handle_t *)in->tcp, incoming_closed);
}

static void maybe_transport_closed(stream__quorum *q)
{
    if (!q->transport_closing || !q->inner_closed || q->listener_open ||
        !list_empty(&q->incoming) || q->transport_close_cb == NULL)
        return;
    raft_uv_transport_close_cb cb = q->transport_close_cb;
    q->transport_close_cb = NULL;
    cb(&q->transport);
}

static void incoming_closed(uv_handle_t *h)
{
    incoming *in = h->data;
    stream__quorum *q = in->q;
    list_unlink(&in->link);
    raft_free(in->tcp);
    free(in->address);
    free(in);
    maybe_transport_closed(q);
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    incoming *in = h->data;
    switch (in->state) {
    case IN_HEAD:
        *buf = uv_buf_init((char *)in->head + in->nread, (unsigned)(8 - in->nread));
        break;
    case IN_PREAMBLE:
        *buf = uv_buf_init((char *)in->head + in->nread, (unsigned)(24 - in->nread));
        break;
    case IN_ADDRESS:
        *buf = uv_buf_init(in->address + in->nread, (unsigned)(in->address_len - in->nread));
        break;
    default:
        *buf = uv_buf_init(NULL, 0);
    }
}

static void on_answer_written(uv_write_t *w, int status)
{
    (void)status;
    incoming_close(w->data);
}

/* A "who leads" question: the line, then close. */
static void answer_who(incoming *in)
{
    stream__quorum *q = in->q;
    stream__quorum_who who;
    memset(&who, 0, sizeof who);
    who.node_id = q->cfg.node_id;
    who.leader_id = stream__quorum_leader(q);
    if (q->cfg.who != NULL)
        q->cfg.who(q->cfg.who_arg, &who);
    int n = stream__quorum_who_format(&who, in->answer, sizeof in->answer);
    if (n <= 0) {
        incoming_close(in);
        return;
    }
    in->state = IN_ANSWER;
    uv_buf_t b = uv_buf_init(in->answer, (unsigned)n);
    in->write.data = in;
    if (uv_write(&in->write, (uv_stream_t *)in->tcp, &b, 1, on_answer_written) != 0)
        incoming_close(in);
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    incoming *in = s->data;
    if (n == 0 || in->state == IN_CLOSING || in->state == IN_ANSWER)
        return;
    if (n < 0) {
        incoming_close(in);
        return;
    }
    in->nread += (size_t)n;
    switch (in->state) {
    case IN_HEAD:
        if (in->nread < 8)
            return;
        if (memcmp(in->head, STREAM__QUORUM_WHO_MAGIC, 8) == 0) {
            uv_read_stop(s);
            answer_who(in);
        } else if (load_le64(in->head) == HANDSHAKE_PROTOCOL) {
            in->state = IN_PREAMBLE;
        } else {
            incoming_close(in); /* neither Raft nor a question */
        }
        return;
    case IN_PREAMBLE: {
        if (in->nread < 24)
            return;
        uint64_t len = load_le64(in->head + 16);
        uint64_t id = load_le64(in->head + 8);
        if (len == 0 || len > HANDSHAKE_ADDR_MAX || id == 0) {
            incoming_close(in);
            return;
        }
        in->address = calloc(1, (size_t)len + 1); /* + 1: NUL-terminated whatever came */
        if (in->address == NULL) {
            incoming_close(in);
            return;
        }
        in->address_len = (size_t)len;
        in->nread = 0;
        in->state = IN_ADDRESS;
        return;
    }
    case IN_ADDRESS: {
        if (in->nread < in->address_len)
            return;
        stream__quorum *q = in->q;
        uv_read_stop(s);
        list_unlink(&in->link);
        raft_id id = (raft_id)load_le64(in->head + 8);
        uv_tcp_t *tcp = in->tcp;
        char *address = in->address;
        free(in);
        tcp->data = NULL;
        if (q->accept_cb != NULL && !q->transport_closing) {
            q->accept_cb(&q->transport, id, address, (uv_stream_t *)tcp);
        } else {
            uv_close((uv_handle_t *)tcp, (uv_close_cb)raft_free);
        }
        free(address);
        return;
    }
    default:
        return;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    stream__quorum *q = server->data;
    if (status != 0 || q->transport_closing)
        return;
    incoming *in = calloc(1, sizeof *in);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (in == NULL || tcp == NULL) {
        free(in);
        raft_free(tcp);
        return;
    }
    in->q = q;
    in->tcp = tcp;
    in->state = IN_HEAD;
    uv_tcp_init(q->loop, tcp);
    tcp->data = in;
    list_push(&q->incoming, &in->link);
    if (uv_accept(server, (uv_stream_t *)tcp) != 0 ||
        uv_read_start((uv_stream_t *)tcp, in_alloc, in_read) != 0)
        incoming_close(in);
}

static int transport_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    stream__quorum *q = t->impl;
    int rc = q->inner.init(&q->inner, id, address);
    if (rc != 0)
        snprintf(t->errmsg, sizeof t->errmsg, "%s", q->inner.errmsg);
    return rc;
}

static int transport_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    stream__quorum *q = t->impl;
    const stream__quorum_voter *self = NULL;
    for (size_t i = 0; i < q->cfg.n_voters; i++)
        if (q->cfg.voters[i].id == q->cfg.node_id)
            self = &q->cfg.voters[i];
    struct sockaddr_in sa;
    if (self == NULL || uv_ip4_addr(self->host, self->port, &sa) != 0)
        return RAFT_INVALID;
    q->accept_cb = cb;
    uv_tcp_init(q->loop, &q->listener);
    q->listener.data = q;
    q->listener_open = true;
    if (uv_tcp_bind(&q->listener, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&q->listener, LISTEN_BACKLOG, on_connection) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "cannot listen on %s", q->address);
        return RAFT_IOERR;
    }
    return 0;
}

static int transport_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                             const char *address, raft_uv_connect_cb cb)
{
    stream__quorum *q = t->impl;
    return q->inner.connect(&q->inner, req, id, address, cb);
}

static void on_listener_closed(uv_handle_t *h)
{
    stream__quorum *q = h->data;
    q->listener_open = false;
    maybe_transport_closed(q);
}

static void on_inner_closed(struct raft_uv_transport *inner)
{
    stream__quorum *q = (stream__quorum *)((char *)inner - offsetof(stream__quorum, inner));
    q->inner_closed = true;
    maybe_transport_closed(q);
}

static void transport_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    stream__quorum *q = t->impl;
    q->transport_closing = true;
    q->transport_close_cb = cb;
    if (q->listener_open)
        uv_close((uv_handle_t *)&q->listener, on_listener_closed);
    for (qlink *l = q->incoming.next; l != &q->incoming; l = l->next)
        incoming_close(INCOMING_OF(l));
    q->inner.close(&q->inner, on_inner_closed);
}

/* Sets up q->transport over libraft's TCP transport. */
static int transport_setup(stream__quorum *q)
{
    int rc = raft_uv_tcp_init(&q->inner, q->loop);
    if (rc != 0)
        return rc;
    memset(&q->transport, 0, sizeof q->transport);
    q->transport.impl = q;
    q->transport.init = transport_init;
    q->transport.listen = transport_listen;
    q->transport.connect = transport_connect;
    q->transport.close = transport_close;
    list_init(&q->incoming);
    return 0;
}

/* Frees what transport_setup allocated, once the transport is closed (or
 * was never listened on). */
static void transport_release(stream__quorum *q)
{
    raft_uv_tcp_close(&q->inner);
}

/* ---- who leads: the line ------------------------------------------------- */

static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f)
            return false;
    return true;
}

int stream__quorum_who_format(const stream__quorum_who *who, char *out, size_t out_len)
{
    if (!host_ok(who->host) || who->port == 0)
        return STREAM_EINVAL;
    char leader[300] = "-";
    if (who->leader_id > 0 && who->leader_port != 0) {
        if (!host_ok(who->leader_host))
            return STREAM_EINVAL;
        snprintf(leader, sizeof leader, "%s:%u", who->leader_host, (unsigned)who->leader_port);
    }
    int n = snprintf(out, out_len, "%s %d %s:%u %d %s\n", STREAM__QUORUM_WHO_MAGIC,
                     (int)who->node_id, who->host, (unsigned)who->port,
                     who->leader_id > 0 ? (int)who->leader_id : -1, leader);
    if (n < 0 || (size_t)n >= out_len)
        return STREAM_EINVAL;
    return n;
}

/* One blank-separated field of the line: [*p, end) advanced past it. */
static bool next_field(const char **p, const char *end, const char **f, size_t *len)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *f = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    *len = (size_t)(*p - *f);
    return *len > 0;
}

/* "HOST:PORT" of len bytes into host (256 bytes) and *port. */
static bool parse_hostport(const char *f, size_t len, char *host, uint16_t *port)
{
    const char *colon = memrchr(f, ':', len);
    unsigned long v;
    if (colon == NULL || colon == f || (size_t)(colon - f) > 255 ||
        !parse_decimal(colon + 1, (size_t)(f + len - colon - 1), 5, 65535, &v) || v == 0)
        return false;
    memcpy(host, f, (size_t)(colon - f));
    host[colon - f] = '\0';
    *port = (uint16_t)v;
    return host_ok(host);
}

int stream__quorum_who_parse(const uint8_t *p, size_t len, stream__quorum_who *out, char *errbuf,
                             size_t errbuf_len)
{
    memset(out, 0, sizeof *out);
    out->leader_id = -1;
    if (len > 0 && p[len - 1] == '\n')
        len--;
    if (len > STREAM__QUORUM_WHO_MAX)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "who-leads answer: longer than %d bytes", STREAM__QUORUM_WHO_MAX);
    if (memchr(p, '\n', len) != NULL || memchr(p, '\0', len) != NULL)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "who-leads answer: more than one line");
    const char *s = (const char *)p, *end = s + len, *f[5];
    size_t n[5];
    for (int i = 0; i < 5; i++)
        if (!next_field(&s, end, &f[i], &n[i]))
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "who-leads answer: %d fields, expected 5", i);
    const char *rest;
    size_t rest_len;
    if (next_field(&s, end, &rest, &rest_len))
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "who-leads answer: more than 5 fields");
    unsigned long id;
    if (n[0] != 8 || memcmp(f[0], STREAM__QUORUM_WHO_MAGIC, 8) != 0)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "who-leads answer: does not start with %s", STREAM__QUORUM_WHO_MAGIC);
    if (!parse_decimal(f[1], n[1], 10, INT32_MAX, &id) || id == 0)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "who-leads answer: bad node id");
    out->node_id = (int32_t)id;
    if (!parse_hostport(f[2], n[2], out->host, &out->port))
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "who-leads answer: bad client address");
    if (n[3] == 2 && memcmp(f[3], "-1", 2) == 0)
        out->leader_id = -1;
    else if (parse_decimal(f[3], n[3], 10, INT32_MAX, &id) && id > 0)
        out->leader_id = (int32_t)id;
    else
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "who-leads answer: bad leader id");
    if (n[4] == 1 && f[4][0] == '-')
        return 0;
    if (out->leader_id < 0 || !parse_hostport(f[4], n[4], out->leader_host, &out->leader_port))
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "who-leads answer: bad leader address");
    return 0;
}

/* ---- who leads: asking --------------------------------------------------- */

struct stream__quorum_ask {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    int closing; /* handles whose close is pending */
    bool done;   /* cb fired or cancelled */
    stream__quorum_ask_cb cb;
    void *arg;
    char buf[STREAM__QUORUM_WHO_MAX + 2];
    size_t nread;
};

static void ask_closed(uv_handle_t *h)
{
    stream__quorum_ask *a = h->data;
    if (--a->closing == 0)
        free(a);
}

static void ask_finish(stream__quorum_ask *a, int status, const stream__quorum_who *who,
                       const char *msg)
{
    if (a->closing > 0)
        return;
    bool fire = !a->done;
    a->done = true;
    a->closing = 2;
    uv_close((uv_handle_t *)&a->tcp, ask_closed);
    uv_close((uv_handle_t *)&a->timer, ask_closed);
    if (fire)
        a->cb(a->arg, status, who, msg);
}

static void ask_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    stream__quorum_ask *a = h->data;
    *buf = uv_buf_init(a->buf + a->nread, (unsigned)(sizeof a->buf - a->nread));
}

static void ask_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    stream__quorum_ask *a = s->data;
    if (n == 0)
        return;
    if (n > 0)
        a->nread += (size_t)n;
    bool line = a->nread > 0 && memchr(a->buf, '\n', a->nread) != NULL;
    if (n > 0 && !line && a->nread < sizeof a->buf)
        return;
    if (a->nread == 0) {
        ask_finish(a, STREAM_ECONNRESET, NULL, "closed without an answer (not a voter?)");
        return;
    }
    stream__quorum_who who;
    char err[160];
    size_t len = line ? (size_t)((char *)memchr(a->buf, '\n', a->nread) - a->buf) + 1 : a->nread;
    int rc = stream__quorum_who_parse((const uint8_t *)a->buf, len, &who, err, sizeof err);
    ask_finish(a, rc, rc == 0 ? &who : NULL, rc == 0 ? NULL : err);
}

static void ask_written(uv_write_t *w, int status)
{
    stream__quorum_ask *a = w->data;
    if (status != 0 && status != UV_ECANCELED)
        ask_finish(a, err_from_uv(status), NULL, uv_strerror(status));
}

static void ask_connected(uv_connect_t *c, int status)
{
    stream__quorum_ask *a = c->data;
    if (a->closing > 0)
        return;
    if (status != 0) {
        ask_finish(a, err_from_uv(status), NULL, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init((char *)STREAM__QUORUM_WHO_MAGIC, 8);
    a->write.data = a;
    if (uv_write(&a->write, (uv_stream_t *)&a->tcp, &b, 1, ask_written) != 0 ||
        uv_read_start((uv_stream_t *)&a->tcp, ask_alloc, ask_read) != 0)
        ask_finish(a, STREAM_EIO, NULL, "cannot write the question");
}

static void ask_timeout(uv_timer_t *t)
{
    ask_finish(t->data, STREAM_ETIMEDOUT, NULL, "no answer in time");
}

int stream__quorum_ask_who(uv_loop_t *loop, const stream__quorum_voter *v, uint64_t timeout_ms,
                           stream__quorum_ask_cb cb, void *arg, stream__quorum_ask **out)
{
    struct sockaddr_in sa;
    *out = NULL;
    if (uv_ip4_addr(v->host, v->port, &sa) != 0)
        return STREAM_EINVAL;
    stream__quorum_ask *a = calloc(1, sizeof *a);
    if (a == NULL)
        return STREAM_ENOMEM;
    a->cb = cb;
    a->arg = arg;
    uv_tcp_init(loop, &a->tcp);
    uv_timer_init(loop, &a->timer);
    a->tcp.data = a->timer.data = a->connect.data = a;
    uv_timer_start(&a->timer, ask_timeout, timeout_ms, 0);
    int rc = uv_tcp_connect(&a->connect, &a->tcp, (const struct sockaddr *)&sa, ask_connected);
    if (rc != 0) {
        a->done = true; /* no callback: the caller gets the error */
        ask_finish(a, 0, NULL, NULL);
        return err_from_uv(rc);
    }
    *out = a;
    return 0;
}

void stream__quorum_ask_cancel(stream__quorum_ask *a)
{
    if (a == NULL)
        return;
    a->done = true;
    ask_finish(a, 0, NULL, NULL);
}

/* ---- the state machine adapter ------------------------------------------- */

/*
 * An entry as libraft stores it: libraft 0.15 lays the entries of a batch
 * out back to back and reads them back assuming each one's data is padded
 * to 8 bytes, so an entry of 54 bytes followed by another in the same batch
 * is read back shifted after a restart (measured: every entry after the
 * first of a batch failed to decode). Each command is therefore framed:
 *
 *   +--------+--------+---------------+---------+
 *   | len:be32 | 0:be32 | command (len) | 0 pad to 8 |
 *   +--------+--------+---------------+---------+
 */
#define ENTRY_HEADER 8

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    stream__quorum *q = rf->data;
    uint64_t index = (uint64_t)raft_last_applied(&q->raft) + 1;
    const uint8_t *p = buf->base;
    uint32_t len = buf->len >= ENTRY_HEADER ? stream_load_be32(p) : 0;
    if (buf->len < ENTRY_HEADER || len == 0 || len > buf->len - ENTRY_HEADER) {
        /* Not an entry of ours: the same verdict on every voter. */
        *result = (void *)(intptr_t)STREAM_ECORRUPT;
        return 0;
    }
    int rc = q->fsm.apply(q->fsm.arg, p + ENTRY_HEADER, len, index);
    if (rc == STREAM_ENOMEM)
        return RAFT_NOMEM; /* nothing changed: libraft retries this entry later */
    *result = (void *)(intptr_t)rc;
    return 0;
}

/* libraft frees what a version-1 snapshot returns with raft_free, so the
 * fsm's bytes are copied into raft_malloc memory. */
static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    stream__quorum *q = rf->data;
    stream_buf out = STREAM_BUF_INIT;
    int rc = q->fsm.snapshot(q->fsm.arg, &out);
    if (rc == 0)
        rc = stream_buf_ok(&out);
    if (rc < 0 || out.len == 0) {
        stream_buf_release(&out);
        return RAFT_BUSY; /* "try again at the next threshold" to libraft */
    }
    struct raft_buffer *b = raft_malloc(sizeof *b);
    void *base = raft_malloc(out.len);
    if (b == NULL || base == NULL) {
        raft_free(b);
        raft_free(base);
        stream_buf_release(&out);
        return RAFT_BUSY;
    }
    memcpy(base, out.data, out.len);
    b->base = base;
    b->len = out.len;
    stream_buf_release(&out);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

/* On success the buffer is ours to free; on failure libraft frees it. */
static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    stream__quorum *q = rf->data;
    q->restore_err[0] = '\0';
    int rc = q->fsm.restore(q->fsm.arg, buf->base, buf->len, q->restore_err, sizeof q->restore_err);
    if (rc < 0) {
        if (q->restore_err[0] == '\0')
            snprintf(q->restore_err, sizeof q->restore_err, "%s", stream_strerror(rc));
        return rc == STREAM_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    raft_free(buf->base);
    return 0;
}

/* ---- proposals ----------------------------------------------------------- */

static int status_from_raft(const stream__quorum *q, int status)
{
    switch (status) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return q->stopping ? STREAM_ECLOSED : STREAM_ENOTLEADER;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return STREAM_ECLOSED;
    case RAFT_NOMEM:
        return STREAM_ENOMEM;
    case RAFT_TOOBIG:
        return STREAM_ETOOLARGE;
    default:
        return STREAM_EIO;
    }
}

/* Answers p (once): moves it to q->answered, then calls the user. */
static void answer(proposal *p, int status, int result)
{
    if (p->answered)
        return;
    p->answered = true;
    list_unlink(&p->link);
    list_push(&p->q->answered, &p->link);
    p->cb(p->arg, status, status == 0 ? result : 0);
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    proposal *p = req->data; /* libraft is done with it: free after answering */
    answer(p, status_from_raft(p->q, status), (int)(intptr_t)result);
    list_unlink(&p->link);
    free(p);
}

/* Answers every pending proposal for which keep() is false with `status`.
 * The pending list is detached first: a callback may propose again (new
 * proposals go to q->pending, not to the batch being answered) and libraft
 * may free a proposal of the batch meanwhile (unlinking it from the batch). */
static void fail_pending(stream__quorum *q, int status, bool all)
{
    qlink batch;
    list_move_all(&q->pending, &batch);
    uint64_t term = q->raft.current_term;
    while (!list_empty(&batch)) {
        proposal *p = PROPOSAL_OF(batch.next);
        if (!all && p->term == term && raft_state(&q->raft) == RAFT_LEADER) {
            list_unlink(&p->link);
            list_push(&q->pending, &p->link);
            continue;
        }
        answer(p, status, 0);
    }
}

int stream__quorum_propose(stream__quorum *q, const void *cmd, size_t len, stream__quorum_done_cb cb,
                          void *arg)
{
    if (q->stopping)
        return STREAM_ECLOSED;
    if (len == 0 || cmd == NULL || cb == NULL)
        return STREAM_EINVAL;
    if (len > STREAM__QUORUM_MAX_COMMAND_BYTES)
        return STREAM_ETOOLARGE;
    if (raft_state(&q->raft) != RAFT_LEADER)
        return STREAM_ENOTLEADER;
    proposal *p = calloc(1, sizeof *p);
    size_t framed = (ENTRY_HEADER + len + 7) & ~(size_t)7;
    uint8_t *base = raft_malloc(framed);
    if (p == NULL || base == NULL) {
        free(p);
        raft_free(base);
        return STREAM_ENOMEM;
    }
    memset(base, 0, framed);
    stream_store_be32(base, (uint32_t)len);
    memcpy(base + ENTRY_HEADER, cmd, len);
    struct raft_buffer b = {base, framed};
    p->req.data = p;
    p->q = q;
    p->cb = cb;
    p->arg = arg;
    p->term = q->raft.current_term;
    int rc = raft_apply(&q->raft, &p->req, &b, 1, on_applied);
    if (rc != 0) {
        /* Not taken: libraft neither keeps req nor frees the buffer. */
        raft_free(base);
        free(p);
        return rc == RAFT_NOTLEADER ? STREAM_ENOTLEADER : status_from_raft(q, rc);
    }
    list_push(&q->pending, &p->link);
    return 0;
}

/* ---- handing over -------------------------------------------------------- */

static void on_transfer(struct raft_transfer *req)
{
    stream__quorum *q = req->data;
    q->transferring = false;
}

int stream__quorum_transfer(stream__quorum *q)
{
    if (q->stopping)
        return STREAM_ECLOSED;
    if (raft_state(&q->raft) != RAFT_LEADER)
        return STREAM_ENOTLEADER;
    if (q->transferring)
        return 0;
    q->transfer.data = q;
    int rc = raft_transfer(&q->raft, &q->transfer, 0, on_transfer);
    if (rc == RAFT_NOTFOUND || rc == RAFT_BADID)
        return STREAM_ENOBROKER;
    if (rc != 0)
        return rc == RAFT_NOTLEADER ? STREAM_ENOTLEADER : status_from_raft(q, rc);
    q->transferring = true;
    return 0;
}

/* ---- observing ----------------------------------------------------------- */

/* libraft's getters take a non-const struct raft but only read it: the
 * casts below drop a const that the engine's API lacks. */
int32_t stream__quorum_leader(const stream__quorum *q)
{
    raft_id id = 0;
    const char *address = NULL;
    raft_leader((struct raft *)&q->raft, &id, &address);
    return id == 0 || id > INT32_MAX ? -1 : (int32_t)id;
}

bool stream__quorum_is_leader(const stream__quorum *q)
{
    return raft_state((struct raft *)&q->raft) == RAFT_LEADER;
}

uint64_t stream__quorum_term(const stream__quorum *q)
{
    return q->raft.current_term;
}

uint64_t stream__quorum_commit_index(const stream__quorum *q)
{
    return q->raft.commit_index;
}

uint64_t stream__quorum_applied_index(const stream__quorum *q)
{
    return raft_last_applied((struct raft *)&q->raft);
}

int32_t stream__quorum_node_id(const stream__quorum *q)
{
    return q->cfg.node_id;
}

/* The poll: reports changes, fails proposals of a term no longer led. */
static void on_poll(uv_timer_t *t)
{
    stream__quorum *q = t->data;
    int32_t leader = stream__quorum_leader(q);
    bool is_leader = stream__quorum_is_leader(q);
    uint64_t term = q->raft.current_term;

    if (!list_empty(&q->pending))
        fail_pending(q, STREAM_ENOTLEADER, false);
    if (q->stopping)
        return; /* a done callback stopped the quorum */
    bool relected = is_leader && q->reported_is_leader && term != q->reported_term;
    if (leader == q->reported_leader && is_leader == q->reported_is_leader && !relected)
        return;
    stream__quorum_change c = {
        .leader_id = leader,
        .previous_leader_id = q->reported_leader,
        .is_leader = is_leader,
        .was_leader = q->reported_is_leader,
        .term = term,
    };
    q->reported_leader = leader;
    q->reported_is_leader = is_leader;
    q->reported_term = term;
    if (q->cfg.on_change != NULL)
        q->cfg.on_change(q->cfg.change_arg, &c);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void quorum_free(stream__quorum *q)
{
    /* libraft is closed: it holds no request any more. */
    while (!list_empty(&q->answered)) {
        proposal *p = PROPOSAL_OF(q->answered.next);
        list_unlink(&p->link);
        free(p);
    }
    free(q->data_dir);
    free(q);
}

static void maybe_finish(stream__quorum *q)
{
    if (!q->raft_closed || !q->poll_closed)
        return;
    stream__quorum_stop_cb cb = q->stop_cb;
    void *arg = q->stop_arg;
    quorum_free(q);
    if (cb != NULL)
        cb(arg);
}

static void on_raft_closed(struct raft *r)
{
    stream__quorum *q = r->data;
    raft_uv_close(&q->io);
    transport_release(q);
    q->raft_closed = true;
    maybe_finish(q);
}

static void on_poll_closed(uv_handle_t *h)
{
    stream__quorum *q = h->data;
    q->poll_closed = true;
    maybe_finish(q);
}

/* The deferred half of stop, run from the loop, outside any libraft call.
 * libraft 0.15 mishandles log writes still in flight when it is closed (the
 * cancelled write's callback runs its failure path on a leader state that
 * raft_close has already torn down: a crash, or handles left open on the
 * loop). So the close waits until every appended entry is on disk, which
 * takes a disk write (milliseconds); new entries cannot arrive from us, as
 * proposals are refused once stopping. */
static void on_stop_timer(uv_timer_t *t)
{
    stream__quorum *q = t->data;
    if (q->raft.last_stored < raft_last_index(&q->raft) && uv_now(q->loop) < q->stop_deadline) {
        uv_timer_start(&q->poll, on_stop_timer, STOP_DRAIN_POLL_MS, 0);
        return;
    }
    uv_close((uv_handle_t *)&q->poll, on_poll_closed);
    raft_close(&q->raft, on_raft_closed);
}

void stream__quorum_stop(stream__quorum *q, stream__quorum_stop_cb cb, void *arg)
{
    if (q->stopping)
        return;
    q->stopping = true;
    q->stop_cb = cb;
    q->stop_arg = arg;
    fail_pending(q, STREAM_ECLOSED, true);
    q->stop_deadline = uv_now(q->loop) + STOP_DRAIN_MAX_MS;
    uv_timer_stop(&q->poll);
    uv_timer_start(&q->poll, on_stop_timer, 0, 0);
}

/* A start that failed after raft_init: libraft has handles open. */
static void on_failed_start_closed(struct raft *r)
{
    stream__quorum *q = r->data;
    raft_uv_close(&q->io);
    transport_release(q);
    quorum_free(q);
}

static int raft_fail(stream__quorum *q, int rc, const char *what, char *errbuf, size_t errbuf_len)
{
    if (rc == RAFT_MALFORMED || (rc == RAFT_NOMEM && q->restore_err[0] != '\0'))
        return stream__fail(rc == RAFT_NOMEM ? STREAM_ENOMEM : STREAM_ECORRUPT, errbuf, errbuf_len,
                            "%s: snapshot in %s refused: %s", what, q->data_dir, q->restore_err);
    return stream__fail(rc == RAFT_NOMEM ? STREAM_ENOMEM : STREAM_EIO, errbuf, errbuf_len,
                        "%s (%s, node %d at %s): %s", what, q->data_dir, (int)q->cfg.node_id,
                        q->address, raft_errmsg(&q->raft));
}

/* Steps 4 on: libraft's objects, bootstrap, start. On failure *closing says
 * whether q was handed to an asynchronous close (which frees it) or is still
 * the caller's to free. */
static int start_raft(stream__quorum *q, bool *closing, char *errbuf, size_t errbuf_len)
{
    *closing = false;
    int rc = transport_setup(q);
    if (rc != 0)
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "raft transport: %s",
                            raft_strerror(rc));
    rc = raft_uv_init(&q->io, q->loop, q->data_dir, &q->transport);
    if (rc != 0) {
        transport_release(q);
        return stream__fail(rc == RAFT_NOMEM ? STREAM_ENOMEM : STREAM_EIO, errbuf, errbuf_len,
                            "raft storage in %s: %s", q->data_dir, raft_strerror(rc));
    }
    raft_uv_set_connect_retry_delay(&q->io, q->cfg.connect_retry_ms);
    q->raft_fsm.version = 1;
    q->raft_fsm.data = q;
    q->raft_fsm.apply = fsm_apply;
    q->raft_fsm.snapshot = fsm_snapshot;
    q->raft_fsm.restore = fsm_restore;
    rc = raft_init(&q->raft, &q->io, &q->raft_fsm, (raft_id)q->cfg.node_id, q->address);
    if (rc != 0) {
        stream__fail(rc == RAFT_NOMEM ? STREAM_ENOMEM : STREAM_EIO, errbuf, errbuf_len,
                     "raft in %s: %s", q->data_dir,
                     q->io.errmsg[0] ? q->io.errmsg : raft_strerror(rc));
        raft_uv_close(&q->io);
        transport_release(q);
        return rc == RAFT_NOMEM ? STREAM_ENOMEM : STREAM_EIO;
    }
    q->raft.data = q;
    raft_set_election_timeout(&q->raft, q->cfg.election_timeout_ms);
    raft_set_heartbeat_timeout(&q->raft, q->cfg.heartbeat_ms);
    raft_set_install_snapshot_timeout(&q->raft, q->cfg.install_snapshot_timeout_ms);
    raft_set_snapshot_threshold(&q->raft, q->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&q->raft, q->cfg.snapshot_trailing);
    raft_set_pre_vote(&q->raft, q->cfg.pre_vote);

    /* Every voter bootstraps the same configuration; libraft refuses
     * (RAFT_CANTBOOTSTRAP) once the directory holds state, which is the
     * normal restart. */
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < q->cfg.n_voters && rc == 0; i++) {
        char addr[32];
        const stream__quorum_voter *v = &q->cfg.voters[i];
        snprintf(addr, sizeof addr, "%s:%u", v->host, (unsigned)v->port);
        rc = raft_configuration_add(&conf, (raft_id)v->id, addr, RAFT_VOTER);
    }
    if (rc == 0) {
        rc = raft_bootstrap(&q->raft, &conf);
        if (rc == RAFT_CANTBOOTSTRAP)
            rc = 0;
    }
    raft_configuration_close(&conf);
    if (rc == 0)
        rc = raft_start(&q->raft);
    if (rc != 0) {
        int err = raft_fail(q, rc, "cannot start the metadata quorum", errbuf, errbuf_len);
        raft_close(&q->raft, on_failed_start_closed);
        *closing = true;
        return err;
    }
    return 0;
}

int stream__quorum_start(uv_loop_t *loop, const stream__quorum_config *cfg,
                        const stream__quorum_fsm *fsm, stream__quorum **out, char *errbuf,
                        size_t errbuf_len)
{
    *out = NULL;
    if (loop == NULL || cfg == NULL || fsm == NULL || fsm->apply == NULL || fsm->snapshot == NULL ||
        fsm->restore == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "stream__quorum_start needs a loop, a config and an fsm with "
                            "apply, snapshot and restore");
    int rc = check_config(cfg, errbuf, errbuf_len);
    if (rc == 0)
        rc = make_dirs(cfg->data_dir, errbuf, errbuf_len);
    if (rc == 0)
        rc = check_cluster_id(cfg->data_dir, cfg->cluster_id, errbuf, errbuf_len);
    const stream__quorum_voter *self = find_voter(cfg, cfg->node_id);
    if (rc == 0)
        rc = check_listen(self, errbuf, errbuf_len);
    if (rc < 0)
        return rc;

    stream__quorum *q = calloc(1, sizeof *q);
    if (q == NULL || (q->data_dir = strdup(cfg->data_dir)) == NULL) {
        free(q);
        return stream__fail(STREAM_ENOMEM, errbuf, errbuf_len, "out of memory");
    }
    q->loop = loop;
    q->cfg = *cfg;
    q->fsm = *fsm;
    snprintf(q->cluster_id, sizeof q->cluster_id, "%s", cfg->cluster_id);
    q->cfg.data_dir = q->data_dir;
    q->cfg.cluster_id = q->cluster_id;
    snprintf(q->address, sizeof q->address, "%s:%u", self->host, (unsigned)self->port);
    list_init(&q->pending);
    list_init(&q->answered);
    q->reported_leader = -1;

    bool closing;
    rc = start_raft(q, &closing, errbuf, errbuf_len);
    if (rc < 0) {
        if (!closing)
            quorum_free(q);
        return rc;
    }
    uv_timer_init(loop, &q->poll);
    q->poll.data = q;
    uv_timer_start(&q->poll, on_poll, q->cfg.poll_ms, q->cfg.poll_ms);
    *out = q;
    return 0;
}
