/*
 * classic.h - Kafka's classic consumer-group protocol on the group
 * coordinator: JoinGroup, SyncGroup, Heartbeat and LeaveGroup with
 * client-side assignors (range, roundrobin, cooperative-sticky run in the
 * client; the coordinator only carries their bytes), for the Kafka listener
 * (libstream/kafka/, which sits above coord/ and speaks the wire).
 *
 * A group is one kind or the other: a group with native members (group.c)
 * refuses a classic join with INCONSISTENT_GROUP_PROTOCOL, and a group with
 * classic members refuses a native join. Both kinds keep their committed
 * offsets in the same place (__consumer_offsets, group_offsets.c), so
 * `stream-topics group`, lag and --reset-offsets work on either.
 *
 * The state machine is Kafka's (facts from its protocol guide and KIP-394):
 *
 *   EMPTY ──join──▶ PREPARING ──every member rejoined, or the rebalance
 *   timeout──▶ COMPLETING ──the leader's SyncGroup──▶ STABLE ──a join with
 *   new metadata, a leave, an expiry──▶ PREPARING ...
 *
 * In PREPARING the coordinator holds every JoinGroup until all known
 * members have rejoined (members that do not within the rebalance timeout
 * are removed); a rebalance of an empty group first waits
 * group.initial.rebalance.delay.ms for more members. Completing it bumps
 * the generation, picks the protocol every member supports (by vote), and
 * answers each join: the leader (the first member) gets every member's
 * metadata, to run the assignor. In COMPLETING the SyncGroups wait for the
 * leader's, which carries the assignments; then every SyncGroup is answered
 * with its member's bytes and the group is STABLE.
 *
 * Static membership (KIP-345): a member that names a group.instance.id
 * keeps its place across restarts. Its JoinGroup with no member id
 * (a restarted process) takes over the member of that instance id under a
 * new member id: the old id is fenced (FENCED_INSTANCE_ID for whatever it
 * sends, or has parked, with that instance id), and a STABLE group is not
 * rebalanced when its metadata is unchanged - the member gets the current
 * generation and, at its SyncGroup, the assignment it had. A new static
 * member skips KIP-394's MEMBER_ID_REQUIRED step, as in Kafka. LeaveGroup
 * may name members by instance id.
 *
 * Unlike native groups, classic membership is not written to
 * __consumer_offsets: after a coordinator move or restart the members get
 * UNKNOWN_MEMBER_ID and join again (one rebalance); their committed offsets
 * are kept, so nothing acknowledged as consumed is read twice beyond what
 * was consumed but not yet committed (Kafka's own at-least-once).
 *
 * Everything runs on the broker's loop thread. Answers that wait (a join,
 * a sync) come through a callback; the caller holds a wait handle and must
 * cancel it (stream__classic_cancel) if it goes away first (a closed
 * connection) - the coordinator never calls back after that. A callback
 * may run before the call that parks it returns (then *wait is NULL); it
 * must not call into the coordinator again, but for stream__classic_cancel.
 */
#ifndef STREAM_CLASSIC_H
#define STREAM_CLASSIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/host.h"
#include "proto/kafka_error.h"

typedef struct stream__coord stream__coord;

/* The coordinator of broker b (the state of its coordinator service). */
stream__coord *stream__classic_coord(stream_broker *b);

/* One protocol a member supports: its name ("range", "cooperative-sticky")
 * and the assignor's metadata (its subscription), opaque here. */
typedef struct stream__classic_protocol {
    const char *name;
    const uint8_t *meta;
    size_t meta_len;
} stream__classic_protocol;

typedef struct stream__classic_join_req {
    const char *group;
    const char *member_id;                     /* "" for a new member */
    const char *client_id;                     /* "" when none */
    const char *client_host;                   /* the address it connects from */
    const char *protocol_type;                 /* "consumer" for Kafka's consumers */
    const stream__classic_protocol *protocols; /* in preference order */
    size_t nprotocols;
    const char *group_instance_id; /* KIP-345's static id; NULL: a dynamic member */
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* JoinGroup v0 has none: pass the session timeout */
    bool require_known_member_id; /* JoinGroup v4+: a new member first gets
                                     MEMBER_ID_REQUIRED with its id (KIP-394) */
} stream__classic_join_req;

/* A member as the leader's JoinGroup answer lists it. */
typedef struct stream__classic_member_view {
    const char *member_id;
    const char *group_instance_id; /* NULL for a dynamic member */
    const uint8_t *meta;           /* its metadata for the chosen protocol */
    size_t meta_len;
} stream__classic_member_view;

/* What a JoinGroup is answered; borrowed for the callback's duration. */
typedef struct stream__classic_join_result {
    int16_t error;                              /* STREAM__KAFKA_* */
    int32_t generation;                         /* -1 with an error */
    const char *protocol_type;                  /* NULL with an error */
    const char *protocol_name;                  /* NULL with an error */
    const char *leader;                         /* "" with an error */
    const char *member_id;                      /* the member's id ("" when none was made) */
    const stream__classic_member_view *members; /* the leader only; else none */
    size_t nmembers;
} stream__classic_join_result;

typedef struct stream__classic_sync_result {
    int16_t error;
    const char *protocol_type; /* NULL with an error */
    const char *protocol_name;
    const uint8_t *assignment; /* the member's bytes from the leader; may be empty */
    size_t assignment_len;
} stream__classic_sync_result;

typedef void (*stream__classic_join_cb)(void *arg, const stream__classic_join_result *res);
typedef void (*stream__classic_sync_cb)(void *arg, const stream__classic_sync_result *res);

/* A parked answer (opaque). */
typedef struct stream__classic_wait stream__classic_wait;

/* JoinGroup: answers through cb (perhaps at once). *wait gets the handle
 * while the answer is parked, NULL once cb ran. */
void stream__classic_join(stream__coord *co, const stream__classic_join_req *req,
                          stream__classic_join_cb cb, void *arg, stream__classic_wait **wait);

/* One member's assignment in the leader's SyncGroup. */
typedef struct stream__classic_assignment {
    const char *member_id;
    const uint8_t *bytes;
    size_t len;
} stream__classic_assignment;

/* SyncGroup: protocol_type and protocol_name may be NULL (versions before
 * 5 do not send them). Answers through cb as join does. instance_id (here
 * and below; NULL when the request has none) is checked against the
 * member's: FENCED_INSTANCE_ID when another member id holds it now. */
void stream__classic_sync(stream__coord *co, const char *group, const char *member_id,
                          const char *instance_id, int32_t generation, const char *protocol_type,
                          const char *protocol_name, const stream__classic_assignment *assignments,
                          size_t nassignments, stream__classic_sync_cb cb, void *arg,
                          stream__classic_wait **wait);

/* Heartbeat: STREAM__KAFKA_NONE, or REBALANCE_IN_PROGRESS (join again),
 * ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
 * NOT_COORDINATOR. */
int16_t stream__classic_heartbeat(stream__coord *co, const char *group, const char *member_id,
                                  const char *instance_id, int32_t generation);

/* LeaveGroup of one member, by member id or (instance_id not NULL) by
 * instance id, member_id then "" or the id that holds it: NONE,
 * UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID (the instance is another member
 * id's) or NOT_COORDINATOR. */
int16_t stream__classic_leave(stream__coord *co, const char *group, const char *member_id,
                              const char *instance_id);

/* Whether OffsetCommit may store offsets for (member_id, generation):
 * NONE; generation < 0 with an empty member id commits outside any
 * membership (a standalone consumer, an admin tool), allowed while the
 * group has no members; else UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or
 * REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID (Kafka's checks). */
int16_t stream__classic_commit_check(stream__coord *co, const char *group, const char *member_id,
                                     const char *instance_id, int32_t generation);

/* The caller no longer wants the answer of w (its connection closed). */
void stream__classic_cancel(stream__classic_wait *w);

/* Whether this broker answers for group: NONE, INVALID_GROUP_ID (a bad
 * name) or, in a cluster, NOT_COORDINATOR (another broker coordinates it).
 * Every call below but stream__classic_describe applies it itself;
 * DescribeGroups asks it first, group by group, as Kafka answers. */
int16_t stream__classic_gate(stream__coord *co, const char *group);

/* FindCoordinator: the node that coordinates group (this broker on a
 * single node; in a cluster the leader of the group's __consumer_offsets
 * partition): 0 with *node, or STREAM_ENOTCOORDINATOR while none is known
 * (the offsets topic is being created, an election is under way). */
int stream__classic_locate(stream__coord *co, const char *group, int32_t *node);

/* DescribeGroups / ListGroups: the group's classic state as Kafka names it
 * ("Empty", "PreparingRebalance", "CompletingRebalance", "Stable", or
 * "Dead" when the group does not exist), its protocol type and protocol
 * ("" when none), and its members through each(). A group with native
 * members reports protocol type "stream" and its native state. Returns
 * false when the group does not exist. */
typedef struct stream__classic_member_info {
    const char *member_id;
    const char *group_instance_id; /* NULL for a dynamic member */
    const char *client_id;
    const char *client_host;
    const uint8_t *meta; /* for the chosen protocol; empty when none */
    size_t meta_len;
    const uint8_t *assignment;
    size_t assignment_len;
} stream__classic_member_info;

typedef struct stream__classic_group_info {
    const char *state;
    const char *protocol_type;
    const char *protocol_name;
    size_t nmembers;
} stream__classic_group_info;

bool stream__classic_describe(stream__coord *co, const char *group,
                              stream__classic_group_info *info,
                              void (*each)(void *arg, const stream__classic_member_info *m),
                              void *arg);

/* ---- offsets: OffsetCommit, OffsetFetch, DeleteGroups ----
 *
 * Committed offsets are the same for both kinds of group. A commit or a
 * delete writes to __consumer_offsets and answers once that is durable:
 * done(r, arg) runs then (with each entry's error filled in), or never if
 * r's connection closes first; destroy(arg) runs after either. */

typedef void (*stream__classic_done_cb)(stream__req *r, void *arg);

/* One partition of an OffsetCommit (strings borrowed for the call). */
typedef struct stream__classic_commit {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *metadata; /* NULL: none */
    size_t metadata_len;
    int32_t leader_epoch; /* committed_leader_epoch (OffsetCommit v6+), kept with it; -1: none */
    int16_t error;        /* out: NONE, or why this partition was not stored */
} stream__classic_commit;

/* OffsetCommit for (member_id, generation), as stream__classic_commit_check
 * decides; entries (owned by arg, kept until destroy) get their errors. */
void stream__classic_commit_offsets(stream__coord *co, stream__req *r, const char *group,
                                    const char *member_id, const char *instance_id,
                                    int32_t generation, stream__classic_commit *entries, size_t n,
                                    stream__classic_done_cb done, void (*destroy)(void *arg),
                                    void *arg);

/* A committed offset as OffsetFetch answers it. */
typedef struct stream__classic_fetched {
    int64_t offset;       /* -1 when nothing is committed */
    int32_t leader_epoch; /* as committed; -1 when none (a native commit, an older client) */
    const char *metadata; /* "" when none; borrowed for the call */
} stream__classic_fetched;

/* OffsetFetch of one partition into *out. NONE, NOT_COORDINATOR or
 * INVALID_GROUP_ID. */
int16_t stream__classic_fetch_offset(stream__coord *co, const char *group, const char *topic,
                                     int32_t partition, stream__classic_fetched *out);

/* OffsetFetch of every committed offset of group (no topics asked),
 * through each(); same errors. */
int16_t stream__classic_fetch_offsets(stream__coord *co, const char *group,
                                      void (*each)(void *arg, const char *topic, int32_t partition,
                                                   const stream__classic_fetched *o),
                                      void *arg);

/* One group of a DeleteGroups. */
typedef struct stream__classic_delete {
    const char *group;
    int16_t error; /* out: NONE, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, ... */
} stream__classic_delete;

void stream__classic_delete_groups(stream__coord *co, stream__req *r,
                                   stream__classic_delete *groups, size_t n,
                                   stream__classic_done_cb done, void (*destroy)(void *arg),
                                   void *arg);

/* ---- Kafka's consumer protocol (protocol type "consumer") ----
 *
 * What Kafka's consumers put in a JoinGroup's metadata and a SyncGroup's
 * assignment (ConsumerProtocolSubscription / ConsumerProtocolAssignment):
 * an int16 version, then, for a subscription, the topics ([string]), user
 * data (nullable bytes) and, from version 1, the owned partitions; for an
 * assignment, [{topic, [partition]}] and user data. Later versions only
 * append fields, so any version >= 0 is read with these. The coordinator
 * reads them only to show a group (stream-topics group): which topics a
 * member subscribes to and which partitions it was given. */

/* Reads a subscription's topics into *topics (*n, sorted, distinct; the
 * caller frees each and the array). 0, or ECORRUPT (not that layout) or
 * ENOMEM with nothing allocated. */
int stream__consumer_subscription_decode(const uint8_t *p, size_t len, char ***topics, size_t *n);

typedef struct stream__pset stream__pset;
/* Reads an assignment's partitions into out (initialised by the caller,
 * emptied on failure). 0, ECORRUPT or ENOMEM. */
int stream__consumer_assignment_decode(const uint8_t *p, size_t len, stream__pset *out);

/* ListGroups: each() for every group this broker coordinates (in a
 * cluster, those whose offsets partition it leads, as Kafka lists them). */
void stream__classic_list(stream__coord *co,
                          void (*each)(void *arg, const char *group,
                                       const stream__classic_group_info *info),
                          void *arg);

#endif /* STREAM_CLASSIC_H */
