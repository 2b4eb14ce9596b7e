/*
 * group_client_internal.h - what a consumer's group membership shares
 * between its two files: group_client.c (joining, heartbeats, the
 * partitions given and taken back, the tick, subscribe and close) and
 * group_client_offsets.c (starting a partition from its committed offset,
 * stored offsets, commits). The idea of the whole is at the top of
 * group_client.c; finding the coordinator is there too. Not installed; prefix stream__.
 */
#ifndef STREAM_GROUP_CLIENT_INTERNAL_H
#define STREAM_GROUP_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client_internal.h"

/* Where a partition given to this member is (see the top of group_client.c). */
typedef enum stream__gstate {
    STREAM__GP_STARTING,
    STREAM__GP_ACTIVE,
    STREAM__GP_REVOKING,
    STREAM__GP_RELEASED
} stream__gstate;

/* A partition the group gave this member, kept until the group is freed. */
typedef struct stream__gpart {
    char *topic; /* owned */
    int32_t partition;
    stream__gstate state;
    bool start_sent;    /* STARTING: its offsets are being asked for */
    uint32_t seq;       /* bumped whenever a start begins or is abandoned */
    int64_t stored;     /* records before it are processed; -1: none */
    int64_t committed;  /* the group's committed offset as last known; -1: none */
    int64_t resume;     /* lost with the session (lose_all), not started again: the
                           offset it was processed up to, where it continues if given
                           back and the group has committed no further; -1: none */
    int64_t resume_max; /* the position at the loss: a store after it (the caller
                           finishing records poll had returned) moves resume up to here */
    int64_t revoked_ms; /* REVOKING: monotonic time it was revoked */
} stream__gpart;

/* The offsets of partitions being started: one fetch_offsets request (to
 * the coordinator) and one list_offsets request per partition leader, all
 * answered before anything starts. */
typedef struct stream__start_ctx {
    stream__cgroup *g;
    struct stream__start_ctx *next; /* g->starts list */
    size_t n;
    stream__gpart **gps;
    uint32_t *seqs;     /* each stream__gpart's seq when the request went out */
    int64_t *committed; /* fetch_offsets: -1 none */
    int64_t *log_start; /* list_offsets */
    int64_t *hw;        /* list_offsets */
    int *err;           /* per partition */
    int64_t ids[1];     /* fetch_offsets; 0 once answered */
    int64_t *lo_ids;    /* the list_offsets requests (cancel them all when freed) */
    size_t lo_n;        /* how many */
    size_t lo_left;     /* not answered yet */
    int failed;         /* a whole-request failure of either */
} stream__start_ctx;

/* A blocking caller waiting for a commit (stream_consumer_commit, close). */
typedef struct stream__commit_wait {
    bool done;
    int err;
    char msg[512];
} stream__commit_wait;

typedef struct stream__commit_ctx {
    stream__cgroup *g;
    size_t n;
    stream__gpart **gps;
    int64_t *offsets;          /* what was sent for each */
    stream__commit_wait *wait; /* NULL when nobody waits */
} stream__commit_ctx;

/* A partition of the last assignment received. */
typedef struct stream__tp {
    char *topic; /* owned */
    int32_t partition;
} stream__tp;

struct stream__cgroup {
    stream_consumer *co;     /* the consumer this membership belongs to */
    stream_client *c;        /* its client */
    stream_group_conf conf;  /* group and client_id point at the copies below */
    char *group, *client_id; /* owned */
    char **topics;           /* owned subscription names */
    size_t ntopics;
    char *pattern; /* owned; NULL when none */

    char *member_id;            /* owned; "" while not a member */
    int32_t generation;         /* last received; -1 before */
    int32_t session_timeout_ms; /* in force (the broker's answer) */
    int heartbeat_interval_ms;  /* the latest answer's */
    bool joined;                /* a member now */
    bool final;                 /* the latest answer's assignment is the target */
    bool dead;                  /* a fatal error ended membership for good */
    bool closing;               /* close runs or ran: no more requests of ours */
    bool subscribing;           /* the blocking join of subscribe runs */

    int32_t coord;        /* the node group requests go to: the coordinator as last found;
                             STREAM__NODE_BOOTSTRAP before (a single broker answers there) */
    bool coord_lost;      /* the coordinator moved or died: find it again */
    int64_t find_id;      /* find_coordinator in flight, 0 when none */
    int64_t next_find_ms; /* monotonic: no find_coordinator before (backoff) */
    bool join_retry;      /* subscribe: the join met ENOTCOORDINATOR: find, join again */

    int64_t join_id, hb_id, leave_id; /* requests in flight, 0 when none */
    stream__commit_ctx *commit;       /* the commit in flight */
    int64_t commit_id;
    stream__start_ctx *starts; /* start requests in flight */

    int64_t next_join_ms, next_hb_ms, next_commit_ms; /* monotonic: when due */
    int64_t commit_retry_ms;                          /* no commit before (backoff) */
    int64_t start_retry_ms;                           /* no start before (backoff) */
    int64_t last_contact_ms; /* when the last join/heartbeat answered was sent: the
                                broker's session clock runs from its arrival */
    int64_t sent_ms;         /* when the join or heartbeat in flight was sent */
    int backoff_ms;          /* current backoff after transport errors */
    bool hb_now;             /* heartbeat as soon as none is in flight */
    bool nudged;             /* the caller was given its chance to store */

    int join_err; /* subscribe: the join's outcome */
    char join_msg[512];
    bool leave_done;

    stream__gpart **parts; /* every partition ever given; never freed before the group */
    size_t nparts, parts_cap;
    size_t nrevoking;     /* parts in STREAM__GP_REVOKING: the per-poll checks skip when 0 */
    stream__tp *assigned; /* the last assignment received */
    size_t nassigned;

    uint64_t rebalances, commits;
};

#define STREAM__CGROUP_BACKOFF_MIN_MS 100
#define STREAM__CGROUP_BACKOFF_MAX_MS 2000

/* ---- group_client.c: membership ---- */

/* The partition (topic: tlen bytes) if the group ever gave it, or NULL. */
stream__gpart *stream__cgroup_find(const stream__cgroup *g, const char *topic, size_t tlen,
                                   int32_t partition);
/* True while gp is held (any state but RELEASED): listed in `owned`. */
bool stream__cgroup_held(const stream__gpart *gp);
/* The consumer's position in gp, or -1. */
int64_t stream__cgroup_position(const stream__cgroup *g, const stream__gpart *gp);
/* Stores every position: the records poll has returned count as processed,
 * those of partitions lost with the session too (their resume point). */
void stream__cgroup_store_positions(stream__cgroup *g);
/* gp is no longer held: out of the consumer, a REVOKED event, and the
 * coordinator hears it at once. */
void stream__cgroup_release(stream__cgroup *g, stream__gpart *gp, int err);
/* Every partition is gone at once: the session ended (err) or close. */
void stream__cgroup_lose_all(stream__cgroup *g, int err);
/* A failure that ends membership for good: one ERROR event for the caller. */
void stream__cgroup_fail(stream__cgroup *g, int err, const char *msg);
/* Sends the request begun last (stream__req_begin) to the group's
 * coordinator; as stream__req_send. */
int64_t stream__cgroup_send(stream__cgroup *g, stream__resp_cb cb, void *arg);
/* A group request failed with err: when it says the coordinator moved or
 * is unreachable (ENOTCOORDINATOR, a transport error, ETIMEDOUT, ECLOSED),
 * find it again (find_coordinator) before the next request. Returns true
 * when it did. */
bool stream__cgroup_check_coord(stream__cgroup *g, const stream__resp *r);
/* Blocking: finds the coordinator again when it was lost (polls until
 * find_coordinator answers or deadline). 0, ETIMEDOUT or the client's
 * error. */
int stream__cgroup_find_coord(stream__cgroup *g, int64_t deadline);
/* The next backoff after a transport error (doubling, capped). */
int stream__cgroup_next_backoff(stream__cgroup *g);

/* ---- group_client_offsets.c: starting partitions, commits ---- */

/* Asks for the offsets of every STARTING partition not asked for yet. */
void stream__cgroup_send_start(stream__cgroup *g, int64_t now);
/* Moves revocations and auto-commits on; never waits. */
void stream__cgroup_advance(stream__cgroup *g, int64_t now);
/* True when a revoked partition may be committed and released. */
bool stream__cgroup_revoke_ready(const stream__cgroup *g, const stream__gpart *gp, int64_t now);
/* Commits what is stored and waits for the answer (until deadline). */
int stream__cgroup_commit_now(stream__cgroup *g, int64_t deadline, char *errbuf, size_t errbuf_len);
/* Free a start's / a commit's state (NULL-safe). */
void stream__cgroup_start_free(stream__start_ctx *s);
void stream__cgroup_commit_free(stream__commit_ctx *k);

#endif /* STREAM_GROUP_CLIENT_INTERNAL_H */
