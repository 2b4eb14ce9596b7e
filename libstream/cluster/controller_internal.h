/*
 * controller_internal.h - what the controller's files share: controller.c
 * (the service: quorum, registration, heartbeats, fencing, elections, the
 * replica manager's hookup), controller_elect.c (the election pass, its
 * changes batched), controller_link.c (a broker's connection to the
 * controller) and controller_admin.c (topic admin and metadata through the
 * quorum). Prefix ctl_ for what they share; not installed.
 *
 * Who does what where:
 *   every broker   registers, then heartbeats to the controller (the Raft
 *                  leader) over its link every broker.heartbeat.interval.ms;
 *                  answers metadata from its own copy of the metadata;
 *                  forwards create/delete/alter of topics to the controller
 *                  and relays the answer; runs a replica manager that
 *                  follows the metadata
 *   the controller keeps each broker's last heartbeat in memory, fences a
 *                  broker silent for broker.session.timeout.ms or whose link
 *                  closed, elects partition leaders (election.h) after
 *                  every fence/unfence and periodically, proposes the admin
 *                  commands and answers once they are applied
 */
#ifndef STREAM_CLUSTER_CONTROLLER_INTERNAL_H
#define STREAM_CLUSTER_CONTROLLER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/host.h"
#include "cluster_internal.h"
#include "election.h"
#include "journal.h"
#include "metadata.h"
#include "quorum.h"
#include "replica.h"

#define CTL_MAX_REMOTE 64 /* registrations proposed on behalf of others at once */

typedef struct controller controller;

/* One broker's registration driven by the leader: its own, or a follower's. */
typedef struct ctl_reg_job {
    controller *ctl;
    int32_t node;
    uint64_t seq; /* register: seq; unfence: seq + 1 */
    char host[256];
    uint16_t port;
    char kafka_host[256]; /* its Kafka listener; "" when none */
    uint16_t kafka_port;
    bool used;
    bool busy;       /* a proposal in flight */
    bool registered; /* register_broker applied; epoch is its epoch */
    bool done;       /* unfence_broker applied too */
    int64_t epoch;
} ctl_reg_job;

/* The answer to a request sent over the link: err (0 or a STREAM_E* code;
 * ECONNRESET when the link closed, ETIMEDOUT when no answer came in time),
 * msg (may be NULL) and the whole response map (NULL unless an answer came;
 * borrowed for the call). */
typedef void (*ctl_link_cb)(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                            const msgpack_object *resp);

typedef struct ctl_link_call {
    uint64_t id;
    ctl_link_cb cb;
    void *arg;
    uint64_t deadline; /* uv_now */
} ctl_link_call;

/* A broker's connection to the controller's client port. Requests are
 * pipelined; answers are matched by id. */
typedef struct ctl_link {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    stream_buf out;     /* the frames being written */
    stream_buf queued;  /* frames waiting for that write */
    stream_frame begun; /* the request between ctl_link_begin and _end */
    stream_frame_reader fr;
    stream_msg msg;
    int32_t leader; /* whose port this is */
    bool open;      /* tcp initialised (close it) */
    bool closing;
    bool connected;
    bool writing;
    uint64_t next_id;
    stream__tls_link tl;  /* the TLS session when the broker serves TLS */
    char host[256];       /* the controller's address (its certificate names it) */
    ctl_link_call *calls; /* answers awaited */
    size_t ncalls, cap_calls;
} ctl_link;

/* The controller's view of one broker's liveness (in memory only). */
typedef struct ctl_live {
    int32_t id;
    int64_t epoch;          /* the epoch its heartbeats carry */
    uint64_t last_ms;       /* uv_now of its last heartbeat (or of a grace start) */
    uint64_t conn;          /* the connection its heartbeats come on; 0: none */
    bool fence_inflight;    /* a fence_broker for this epoch is proposed */
    uint64_t applied_index; /* the metadata index its last heartbeat reported; 0: none yet */
} ctl_live;

/* A request answered once its proposals are applied (admin ops, alter_isr),
 * or once the controller answered it (a forwarded one). */
typedef struct ctl_pending ctl_pending;
/* One entry of a pending request: what a proposal's callback gets. */
typedef struct ctl_entry {
    ctl_pending *p;
    uint32_t i;
} ctl_entry;
struct ctl_pending {
    controller *ctl;
    ctl_pending *next;
    stream__req *r; /* NULL once its connection closed */
    uint64_t id;    /* the client's correlation id */
    uint64_t conn;
    stream_op op;
    uint32_t n;       /* entries (topics) */
    uint32_t waiting; /* proposals not yet answered */
    int *err;         /* per entry */
    char **msg;       /* per entry, owned, may be NULL */
    char **name;      /* per entry, owned */
    ctl_entry *ent;   /* per entry */
    bool forwarded;   /* waiting for the controller's answer over the link */
};

struct controller {
    stream_broker *b;
    bool configured;
    stream__quorum *q;
    stream__meta *md;
    int32_t node_id;
    char cluster_id[STREAM__QUORUM_CLUSTER_ID_MAX + 1];
    stream__quorum_voter voters[STREAM__QUORUM_MAX_VOTERS];
    size_t n_voters;
    /* each voter's applied metadata index as the controller last told
     * (heartbeat answers), by position in voters; 0: not known */
    uint64_t voter_applied[STREAM__QUORUM_MAX_VOTERS];
    uv_timer_t tick;
    bool tick_open;
    uv_timer_t soon; /* 0 ms: one replica sync and election pass per burst */
    bool soon_open, soon_armed;
    bool stopped;
    uint64_t seq;      /* this run's registration request ids */
    uint64_t next_seq; /* the next request id of other commands */
    uint64_t asked_at; /* applied index when this node first asked; 0: not yet */
    bool registered;   /* seen in this node's metadata */
    bool caught_up;    /* registered once in this run: its metadata is current, and the
                          replica manager follows it from then on, fenced or not */
    int64_t epoch;     /* this broker's epoch once registered */
    uint64_t last_register_ms;
    ctl_reg_job own;
    ctl_reg_job remote[CTL_MAX_REMOTE];
    ctl_link lk;

    /* settings */
    uint64_t hb_interval_ms;
    uint64_t session_ms;
    int64_t default_rf; /* -1: min(3, live brokers) */
    bool unclean_default;

    /* controlled shutdown (this broker): the stop is held until the
     * metadata shows this broker fenced, its leaderships moved */
    bool shutting_down;
    uint64_t handover_since; /* uv_now when it asked the quorum to take a new leader; 0: not yet */

    /* heartbeats (this broker) */
    uint64_t hb_last_sent;
    bool hb_inflight;

    /* the controller side */
    int32_t last_leader;      /* the last other node known to lead the quorum */
    int32_t link_lost_leader; /* the node whose end closed or refused this broker's link
                                 (a dead controller, probably); -1: none */
    uint64_t leader_since;
    ctl_live *live;
    size_t nlive, cap_live;
    bool elect_dirty;
    uint32_t elect_inflight; /* alter_partitions proposed and not yet decided */
    uint64_t elect_last;
    /* the election pass under way: changes gathered into one alter_partitions
     * of at most STREAM__META_ALTER_BATCH (a fenced broker that led 10,000
     * partitions moves them in 10 commands, not 10,000) */
    stream__elect_change *elect_batch; /* STREAM__META_ALTER_BATCH of them; NULL until used */
    stream__meta_alter *elect_alters;  /* likewise: elect_batch as the command's entries */
    uint32_t elect_n;                  /* changes gathered */
    size_t elect_moves;                /* leader moves logged in this pass */
    /* ISR changes the brokers' leaders asked for, waiting for the loop's
     * next turn (ctl_soon) to go out together as one alter_partitions
     * (ctl_isr_flush): a broker back from a restart rejoins the ISR of
     * thousands of partitions in a few commands, not one each. */
    struct ctl_isr_change *isr_q; /* STREAM__META_ALTER_BATCH of them; NULL until used */
    uint32_t isr_n;               /* changes waiting */
    ctl_pending *pending;
    bool offsets_migrating; /* ctl_migrate_offsets_topic's proposal in flight */

    stream__replica *rm;

    /* a data-only broker: node.id is not among the voters. No quorum: it
     * finds the controller by asking the voters on their Raft addresses
     * (quorum.h's "who leads"), registers and heartbeats over the link like
     * any broker, and follows the metadata over it (fetch_metadata). */
    bool data_only;
    stream__quorum_ask *ask; /* the question in flight; NULL: none */
    size_t ask_next;         /* the voter to ask next */
    uint64_t ask_last_ms;    /* when the last question was asked */
    bool ask_failing;        /* the last round of questions found no controller (logged once) */
    int32_t ctl_id;          /* the controller as a voter last told it; -1: unknown */
    char ctl_host[256];      /* its client address */
    uint16_t ctl_port;
    bool have_image; /* a metadata image was restored in this run */
    /* a voter: the commands it applied lately, for data-only brokers'
     * fetch_metadata to catch up by deltas (journal.h); NULL elsewhere */
    stream__journal *journal;
    bool fetch_inflight;
    uint64_t fetch_last_ms;
};

/* controller_elect.c: one election pass over every partition, on the
 * controller only, and not while the last pass's commands are undecided. */
void ctl_elect_pass(controller *ctl);

/* controller.c */
uint64_t ctl_next_seq(controller *ctl);
/* Kicks the 0 ms timer: replica sync and, on the controller, an election. */
void ctl_soon(controller *ctl);
/* Proposes the ISR changes waiting (isr_q) as one alter_partitions; their
 * callbacks get its outcome (status ENOTLEADER and the like when it could
 * not be proposed). controller_admin.c. */
void ctl_isr_flush(controller *ctl);
/* This node is the controller (the quorum's leader). */
bool ctl_is_controller(const controller *ctl);
/* The controller this node knows of: the quorum's leader on a voter, the
 * one the voters named on a data-only broker; -1 when none is known. */
int32_t ctl_leader(const controller *ctl);
/* In a cluster and running: a voter with its quorum, or a data-only broker. */
bool ctl_running(const controller *ctl);
/* A data-only broker: the controller it knew is gone (the link closed, or
 * it answered ENOTLEADER): ask the voters again. */
void ctl_forget_controller(controller *ctl);

/* controller_link.c */
/* Points the link at the quorum's leader (closing it when this node leads
 * or another leader is known; kept while none is known). */
void ctl_link_follow(controller *ctl);
void ctl_link_close(controller *ctl);
/* Starts a request of `op` with extra_fields fields after the header: returns
 * the packer to write them with, then call ctl_link_end. NULL (and cb is
 * never called) when the link is not connected. */
msgpack_packer *ctl_link_begin(controller *ctl, stream_op op, size_t extra_fields,
                               uint64_t timeout_ms, ctl_link_cb cb, void *arg);
/* Sends what ctl_link_begin started. Returns 0, or an error after which cb
 * is called with it (from here). */
int ctl_link_end(controller *ctl);
/* Fails calls past their deadline (from the tick). */
void ctl_link_expire(controller *ctl);

/* controller_admin.c */
/* Takes the admin ops from the core (cluster mode). */
void ctl_admin_start(controller *ctl);
/* The connection closed: forget its requests. */
void ctl_admin_conn_closed(controller *ctl, uint64_t conn);
/* On the controller: a __consumer_offsets made before compaction (no
 * cleanup.policy with compact) gets cleanup.policy=compact through the
 * quorum, as an alter_configs would; every broker's copy follows. Called
 * each tick; one proposal at a time, retried until the metadata shows it. */
void ctl_migrate_offsets_topic(controller *ctl);
/* Frees every pending request (the broker stopped). */
void ctl_admin_free(controller *ctl);
/* alter_isr, from a leader over the link (the op) or from this node's
 * replica manager (local). */
void ctl_op_alter_isr(void *svc, stream__req *r, uint64_t id, const msgpack_object *m);
int ctl_alter_isr_local(void *arg, const char *topic, int32_t partition, const int32_t *isr,
                        uint32_t n_isr, int32_t partition_epoch);
/* Packs a map's entries except op, id and forwarded after a new request
 * header (for forwarding). */
void ctl_pack_fields(msgpack_packer *pk, const msgpack_object *m);
/* How many fields ctl_pack_fields packs. */
size_t ctl_count_fields(const msgpack_object *m);

#endif /* STREAM_CLUSTER_CONTROLLER_INTERNAL_H */
