/*
 * client_conn.h - what client.c (the client: requests, routing, the poll,
 * blocking calls) and client_conn.c (one connection's state machine:
 * connect, hello, write, read, time out) share: the structures of both and
 * the calls between them. Not installed; prefix stream__. The whole is
 * described at the top of client.c.
 */
#ifndef STREAM_CLIENT_CONN_H
#define STREAM_CLIENT_CONN_H

#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "client_internal.h"
#include "stream/tls.h"

/* Frames written per sendmsg call at most. */
#define MAX_IOV 64
/* Bytes read per read() call (small frames). */
#define READ_CHUNK (256 * 1024)
/* Frames (prefix included) over this get a buffer of their own. */
#define LARGE_FRAME (64 * 1024)
/* Ciphertext read from the socket per read() at most. */
#define TLS_RBUF (256 * 1024)
/* Ciphertext moved to the socket per write() at most. */
#define TLS_WBUF (64 * 1024)
/* Frames are encrypted while less ciphertext than this waits for the socket. */
#define TLS_OUT_MAX (256 * 1024)
/* Buffers given back and kept for reuse. */
#define SPARES 2

typedef struct creq {
    struct creq *next;
    int64_t id;         /* correlation id (> 0), unique in the client */
    stream_buf frame;   /* length prefix + payload */
    size_t written;     /* bytes of frame already written */
    stream__resp_cb cb; /* NULL once cancelled */
    void *arg;
    int64_t deadline_ms;  /* monotonic; fails with ETIMEDOUT after this */
    int extra_timeout_ms; /* added to request_timeout_ms (long polls) */
    int flags;            /* STREAM__REQ_* */
} creq;

typedef struct creq_list {
    creq *head, *tail;
    size_t n;
} creq_list;

typedef struct tick {
    stream__tick_fn fn;
    void *arg;
} tick;

typedef enum conn_state {
    ST_IDLE = 0,   /* no socket */
    ST_CONNECTING, /* connect() in progress */
    ST_HELLO,      /* connected; hello in flight */
    ST_READY,      /* hello answered; requests flow */
} conn_state;

/* One connection (see the top). */
typedef struct conn {
    stream_client *c;         /* the client it belongs to */
    bool bootstrap;           /* the bootstrap connection (c->brokers), else a node's */
    int32_t node_id;          /* node connection: its node; bootstrap: the node hello
                                 named last (-1 before any) */
    stream_hostport node_hp;  /* node connection: the node's address */
    conn_state state;         /* see the top */
    int fd;                   /* -1 when IDLE */
    size_t bi;                /* broker being tried / connected (index in the list) */
    size_t round_tried;       /* brokers tried in the current round */
    struct addrinfo *ai_list; /* addresses of the broker being tried */
    struct addrinfo *ai_next; /* next address to try */
    int64_t connect_deadline; /* monotonic: connect + hello must finish by then */
    int64_t next_attempt_ms;  /* monotonic: no new round before this */
    int backoff_ms;           /* current reconnect backoff */
    bool want_connect;        /* connect even with no request waiting */
    size_t max_message_bytes; /* the broker's largest batch (hello); 0 unknown */
    unsigned rounds_failed;   /* counts failed rounds (stream_client_connect waits on it) */
    char addr[300];           /* "host:port" of the broker being tried / connected */
    int last_err;             /* last connect failure */
    char last_msg[512];       /* its message ("cannot connect to ...") */
    uint8_t *in;              /* input buffer (NULL after a take) */
    size_t in_cap;            /* its size */
    size_t in_start;          /* first byte not handled yet (a length prefix) */
    size_t in_len;            /* bytes read into it */
    bool in_takeable;         /* the frame being handled ends at in_len */
    creq_list wait;           /* queued, not on the wire */
    creq_list flight;         /* on the wire (or being written), in order */
    int64_t hello_id;         /* id of the hello in flight */
    stream_tls *tls;          /* the TLS session of this socket, or NULL: plain text */
    uint8_t *tls_wbuf;        /* ciphertext taken from tls for the socket (TLS_WBUF bytes) */
    size_t tls_woff;          /* its bytes written so far */
    size_t tls_wlen;          /* its bytes in all */
    uint8_t *tls_rbuf;        /* ciphertext read from the socket (TLS_RBUF bytes) */
} conn;

/* A broker the last metadata named. */
typedef struct node_addr {
    int32_t node_id;
    stream_hostport hp;
} node_addr;

struct stream_client {
    /* configuration (strings copied) */
    stream_client_conf conf;
    char *client_name;
    stream_tls_ctx *tls_ctx; /* TLS settings and files (conf.tls...), or NULL: plain text */
    stream_hostport *brokers; /* the bootstrap list: as given, then brokers the metadata
                                 of a cluster named */
    size_t broker_count;
    size_t brokers_given; /* how many of them the caller gave */

    /* connections */
    conn **conns; /* conns[0] is the bootstrap connection; node connections
                     follow, each allocated once (pointers stay valid) */
    size_t nconns, conns_cap;
    node_addr *nodes; /* brokers of the last metadata that named any */
    size_t nnodes;
    struct pollfd *pfds; /* poll's array, one per connection */
    conn **pconns;       /* the connection of each pfds entry */
    size_t pfds_cap;
    conn *reading;            /* the connection whose response is being handled */
    bool interrupted;         /* a poll() was interrupted by a signal */
    uint8_t *spare[SPARES];   /* buffers given back, for reuse */
    size_t spare_cap[SPARES]; /* their sizes (0: none) */
    stream_msg msg;           /* the response being handled */

    /* requests */
    creq *building;     /* between _req_begin and _send/_abort */
    stream_buf sink;    /* where a request goes when its allocation failed */
    stream_frame frame; /* the frame being built */
    int64_t next_id;    /* next correlation id */

    tick *ticks;
    size_t nticks, ticks_cap;

    stream__md_cache md; /* metadata cache (client_metadata.c) */
};

#define BOOT(c) ((c)->conns[0])

/* ---- client_conn.c ---- */

/* Appends r to l. */
void stream__creq_push(creq_list *l, creq *r);
/* Frees a request (NULL is a no-op). */
void stream__creq_free(creq *r);
/* A new connection appended to c->conns (the bootstrap one first): to the
 * broker list (bootstrap) or to node_id at *hp. NULL without memory. */
conn *stream__conn_add(stream_client *c, bool bootstrap, int32_t node_id,
                       const stream_hostport *hp);
/* Closes k and frees it with its requests (their callbacks do not run). */
void stream__conn_free(conn *k);
/* Makes broker bi of k's list the one to try (and names it in k->addr). */
void stream__conn_set_broker(conn *k, size_t bi);
/* What needs no waiting on k: timeouts, connecting, writing. Returns the
 * callbacks run; lowers *wake to when something is next due. */
int stream__conn_drive(conn *k, int64_t now, int64_t *wake);
/* Whether k's socket is to be polled for writing. */
bool stream__conn_want_write(const conn *k);
/* k's non-blocking connect finished (POLLOUT). Returns callbacks run. */
int stream__conn_connect_done(conn *k);
/* Reads what k's socket has and handles whole frames. Returns callbacks run,
 * or a negative count - 1 when the connection dropped. */
int stream__conn_read(conn *k);

#endif /* STREAM_CLIENT_CONN_H */
