/*
 * group_internal.h - libstream/coord/, the group coordinator: a service of
 * the broker (it sees the broker only through broker/host.h, and the broker
 * names it only in its list of services) that keeps consumer groups, their
 * members and server-side assignment (group.c, group_assign.c), and
 * committed offsets and membership in __consumer_offsets (group_offsets.c:
 * storage; group_commit.c: the offset ops; group_meta.c: the membership
 * record). Not installed; prefix stream__. The wire contract is
 * share/doc/protocol.md 6.10-6.19 and 6.26.
 *
 * The model in one paragraph: a group holds members (in join order) and
 * committed offsets. Whenever membership, a subscription or the subscribed
 * partitions change, group_assign.c recomputes every member's *target*
 * (sticky, balanced) and the generation grows. A member is *given* (its
 * `assigned` set) only the part of its target that no other member *holds*;
 * a member holds what it was given plus what it still reports in `owned`,
 * so a partition is never given to B while A may still consume it:
 *
 *   held(m)     = (owned reported by m  ∩  held(m) before)  ∪  assigned(m)
 *   assigned(m) = target(m) \ ⋃ held(x) for x != m
 *
 * Invariant: the `assigned` sets of two members never intersect, and
 * neither do a member's `assigned` and another member's `held`.
 *
 * Everything runs on the broker's loop thread. What is persisted, in the
 * group's partition of __consumer_offsets: the committed offsets, and the
 * membership (generation, and per member its id, subscription, session and
 * the target/assigned/held sets) as one record rewritten whenever any of it
 * changes (group_meta.c). An answer to join_group, heartbeat or leave_group
 * waits until the membership record it reflects is durable, so no member
 * ever acts on a state the log could lose. A coordinator that reads the
 * log back (a broker's start, a new leader of the partition) restores the
 * members with fresh sessions: live ones go on heartbeating with the same
 * id, generation and partitions; dead ones expire as they would have.
 *
 * In a cluster (stream__host_clustered) __consumer_offsets is a replicated
 * topic of the metadata, and the coordinator of a group is the leader of
 * the group's partition of it (protocol.md 6.20). This broker keeps in
 * memory only the groups of the partitions it leads: it loads a partition's
 * offsets from its log when it starts leading it (a role change, or the
 * first request that finds it leading an epoch it has not loaded) and drops
 * those groups, members included, when it stops; every group op for
 * another partition gets ENOTCOORDINATOR. Commits and membership records go
 * to the replicated log and are answered once the high watermark passes
 * them, so a coordinator move (kill -9, a rolling restart) hands the group
 * over as it was, as Kafka's GroupMetadataManager does: no rebalance, no
 * partition changing hands, nothing consumed twice.
 */
#ifndef STREAM_GROUP_INTERNAL_H
#define STREAM_GROUP_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/internal.h"
#include "broker/host.h"

/* ---- partition sets (group_assign.c) ---- */

/* One topic of a set: its partitions, sorted ascending, distinct. */
typedef struct stream__pset_topic {
    char *topic;    /* owned copy of the name */
    int32_t *parts; /* sorted, distinct */
    size_t n, cap;  /* partitions held / allocated */
} stream__pset_topic;

/* A set of (topic, partition): topics sorted by strcmp, never empty ones.
 * The wire shape [{topic, partitions}] without conversion. */
typedef struct stream__pset {
    stream__pset_topic *t; /* sorted by topic */
    size_t n, cap;         /* topics held / allocated */
    size_t count;          /* partitions in all topics */
} stream__pset;

void stream__pset_init(stream__pset *s);
void stream__pset_release(stream__pset *s);
/* Empties the set (keeps nothing allocated). */
void stream__pset_clear(stream__pset *s);
bool stream__pset_has(const stream__pset *s, const char *topic, int32_t partition);
/* Adds (topic, partition); adding a member again is a no-op. 0 or ENOMEM. */
int stream__pset_add(stream__pset *s, const char *topic, int32_t partition);
/* Removes (topic, partition) if present. */
void stream__pset_del(stream__pset *s, const char *topic, int32_t partition);
/* dst := src (dst's old content freed). 0 or ENOMEM (dst then empty). */
int stream__pset_copy(stream__pset *dst, const stream__pset *src);
bool stream__pset_equal(const stream__pset *a, const stream__pset *b);
/* Packs [{topic, partitions}] as the spec writes partition sets. */
void stream__pset_pack(msgpack_packer *pk, const stream__pset *s);
/* Reads a partition set field (array of {topic: str, partitions: [int32]})
 * from a request into out (which must be initialised). EBADREQ naming the
 * element, or ENOMEM. */
int stream__pset_decode(const msgpack_object *arr, const char *name, stream__pset *out, char *msg,
                        size_t msg_len);

/* ---- groups and members (group.c) ---- */

typedef struct stream__member {
    char *id;                     /* member_id, broker-made, unique */
    char *client_id;              /* as given at join ("" when none) */
    char host[64];                /* IP address it joined from */
    char **topics;                /* subscribed names, sorted, distinct */
    size_t ntopics;               /* entries in topics */
    char *pattern;                /* subscription regex as given, or NULL */
    regex_t re;                   /* pattern compiled, anchored; valid when compiled */
    bool compiled;                /* re holds pattern (false only in a membership record
                                     decoded but not restored: group_meta.c) */
    int32_t session_timeout_ms;   /* in force */
    uint64_t deadline_ms;         /* uv_now time after which it is removed */
    int32_t rebalance_timeout_ms; /* how long it may keep a revoked partition */
    uint64_t revoke_deadline_ms;  /* uv_now time it is removed if it still holds a
                                     revoked partition; 0 when it holds none */
    int32_t epoch;                /* the generation last sent to it */
    int32_t prev_epoch;           /* the one before (commits with it are accepted) */
    stream__pset target;          /* where the coordinator wants it to be */
    stream__pset assigned;        /* what it was last told to consume */
    stream__pset held;            /* what it may still be consuming (see top) */
} stream__member;

/* A committed offset. */
typedef struct stream__offset {
    char *topic;          /* owned */
    int32_t partition;    /* */
    int64_t offset;       /* next offset to consume */
    char *metadata;       /* owned, "" when none */
    int64_t commit_ms;    /* when it was committed, ms since the epoch */
    int32_t leader_epoch; /* a Kafka client's committed_leader_epoch; -1 when none */
} stream__offset;

typedef struct stream__classic stream__classic;

typedef struct stream__group {
    char *name;               /* the group id */
    int32_t generation;       /* 0 until the first join; +1 per recomputation */
    stream__member **members; /* in join order */
    size_t nmembers, cap_members;
    uint64_t topics_version; /* broker topics_version the targets were computed at */
    stream__offset *offsets; /* sorted by (topic, partition) */
    size_t noffsets, cap_offsets;
    bool meta_dirty;          /* membership changed since the last membership record */
    bool meta_written;        /* the log's last membership record of it is not a tombstone */
    int32_t meta_partition;   /* where the last membership record went, and the durable */
    int64_t meta_need;        /* offset confirming it (0: none): answers about membership
                                 wait for it (group.c) */
    stream__classic *classic; /* Kafka's classic protocol (classic.c), or NULL: a group
                                 has native members or classic ones, never both */
} stream__group;

/* The coordinator: every group of one broker (the service's state). */
typedef struct stream__coord {
    stream_broker *broker;   /* the host */
    uint64_t topics_version; /* grows when a topic is created, deleted or grown: groups
                                recompute their assignment when it moved */
    stream__group **groups;  /* sorted by name */
    size_t ngroups, cap_groups;
    uv_timer_t timer;       /* fires at the earliest member deadline */
    bool timer_open;        /* timer initialised and not closed */
    uint64_t rng;           /* splitmix64 state for member ids */
    int32_t min_session_ms; /* group.min.session.timeout.ms */
    int32_t max_session_ms; /* group.max.session.timeout.ms */
    bool clustered;         /* in a cluster: see the top */
    int32_t *loaded_epoch;  /* clustered: per offsets partition, the leader epoch whose
                               offsets are in memory; -1 when its groups are not here */
    size_t nloaded;         /* entries in loaded_epoch */
} stream__coord;

/* The coordinator as a service (group.c's end; the broker's list names it). */
extern const stream__service stream__coord_service;
/* Its families for GET /metrics: members, rebalances, lag per group,
 * topic and partition in records and seconds (group_metrics.c). */
void stream__coord_metrics(void *svc, stream_buf *out);
/* Its entry of the stats op: "groups" (protocol.md 6.29; group_metrics.c). */
void stream__coord_stats(void *svc, msgpack_packer *pk);

/* The group called name, or NULL. */
stream__group *stream__group_find(stream__coord *co, const char *name);
/* The group called name, created (no members, no offsets) when missing;
 * NULL on ENOMEM. */
stream__group *stream__group_get(stream__coord *co, const char *name);
/* Frees every group whose offsets partition (of `partitions`) is p,
 * members and offsets included: this broker no longer coordinates them. */
void stream__group_drop_partition(stream__coord *co, int32_t p, int32_t partitions);
/* Frees g when it has neither members nor offsets. */
void stream__group_gc(stream__coord *co, stream__group *g);
/* The state name: "empty", "reconciling" or "stable". */
const char *stream__group_state(const stream__group *g);
/* True when m subscribes to topic t. */
bool stream__member_subscribes(const stream__member *m, const stream_topic *t);

/* Writes a fresh member id, "CLIENT_ID-<32 hex digits>" ("member-..."
 * without a client id), into id (size bytes, at least
 * STREAM_GROUP_MEMBER_ID_MAX + 1). */
void stream__member_id_new(stream__coord *co, const char *client_id, char *id, size_t size);
/* Frees a member (NULL-safe): its strings, regex (when compiled) and sets. */
void stream__member_free(stream__member *m);
/* Compiles a subscription pattern anchored at both ends (a whole-name
 * match, as Java's Pattern.matches) into re: 0, or EINVAL (msg says why)
 * or ENOMEM. */
int stream__pattern_compile(const char *pattern, regex_t *re, char *msg, size_t msg_len);
/* Sorts the n names of t and frees repeats; *n becomes the distinct count. */
void stream__names_sort_unique(char **t, size_t *n);
/* Reads an array of topic names (a join's `topics`, a membership record's)
 * into *topics (*n of them, sorted, distinct; the caller frees each and the
 * array). 0, EBADREQ (not a str) or EBADNAME (not a topic name) naming the
 * element in msg, or ENOMEM; nothing allocated on failure. */
int stream__topics_decode(const msgpack_object *arr, char ***topics, size_t *n, char *msg,
                          size_t msg_len);
/* Packs m's subscription as two map entries: topics: [str], pattern: str
 * or nil (describe_group's and the membership record's shape). */
void stream__member_pack_subscription(msgpack_packer *pk, const stream__member *m);
/* Arms the session timer at the earliest member deadline of every group. */
void stream__coord_rearm(stream__coord *co);

/* The member `id` (len bytes) of g (which may be NULL), with its index in
 * *index when not NULL; NULL when absent. */
stream__member *stream__member_find(const stream__group *g, const char *id, size_t len,
                                    size_t *index);
/* Reads a request's `group` field and checks the name into name
 * (STREAM_GROUP_NAME_MAX + 1 bytes): 0, EBADREQ or EBADGROUP with msg. */
int stream__group_field(const msgpack_object *m, char *name, char *msg, size_t msg_len);

/* ---- Kafka's classic groups (classic.c; the Kafka listener's calls are
 * in classic.h) ---- */

/* Frees c, answering every parked join and sync with `error` (a Kafka
 * error code: NOT_COORDINATOR when the group moves away). NULL-safe. */
void stream__classic_free(stream__classic *c, int16_t error);
/* True when c has members or ids handed out (the group must stay). */
bool stream__classic_active(const stream__classic *c);
/* c's earliest deadline (uv_now time), UINT64_MAX when none. */
uint64_t stream__classic_deadline(const stream__classic *c);
/* The timer fired: expires sessions and ids, ends due rebalances. */
void stream__classic_tick(stream__coord *co, stream__group *g, uint64_t now);
/* For describe_group and list_groups: Kafka's name of c's state
 * ("Empty"... "Stable"), its members and generation, who was given
 * (topic, partition) (NULL: nobody, or not stable), every partition given
 * (added to parts: 0 or ENOMEM), and its members packed as describe_group
 * packs native ones (subscription and assignment read from the consumer
 * protocol's bytes). NULL-safe. */
const char *stream__classic_state_name(const stream__classic *c);
size_t stream__classic_members(const stream__classic *c);
int32_t stream__classic_generation(const stream__classic *c);
const char *stream__classic_owner(const stream__classic *c, const char *topic, int32_t partition);
int stream__classic_add_assigned(const stream__classic *c, stream__pset *parts);
void stream__classic_pack_members(msgpack_packer *pk, const stream__classic *c);

/* ---- assignment (group_assign.c) ---- */

/* Recomputes every member's target from the store's topics (protocol.md
 * 6.10 rules 1-4). Returns 1 when a target changed, 0 when none did, or
 * STREAM_ENOMEM (targets unchanged). */
int stream__group_assign(stream_store *store, stream__group *g);

/* ---- committed offsets: storage (group_offsets.c) ---- */

/* How long a write waits for durability before answering ETIMEDOUT. */
#define STREAM__OFFSETS_WRITE_TIMEOUT_MS 30000

/* The committed offset of (topic, partition) in g, or NULL. */
stream__offset *stream__offset_find(const stream__group *g, const char *topic, int32_t partition);
/* Index of g's first offset of `topic` (or where it would be). */
size_t stream__offset_lower_bound(const stream__group *g, const char *topic);

/* One record to write: an offset (a value, or a tombstone), or the
 * group's membership record (group_meta.c). Strings are borrowed. */
typedef struct stream__offset_rec {
    const char *topic;
    int32_t partition;
    bool tombstone;       /* delete the offset / the membership (a null value) */
    int64_t offset;       /* the value's offset */
    const char *metadata; /* may be NULL when metadata_len is 0 */
    size_t metadata_len;
    bool has_leader_epoch; /* a Kafka client's commit: leader_epoch is stored with it */
    int32_t leader_epoch;
    bool membership;      /* the membership record: topic, partition, offset and
                             metadata unused; memory is not touched (it is the state) */
    const uint8_t *value; /* membership: the packed value (stream__group_meta_pack) */
    size_t value_len;
} stream__offset_rec;

/*
 * Writes recs of `group` to its partition of __consumer_offsets (creating
 * the topic at the first write), in batches of at most the topic's
 * max.message.bytes, applies each batch to memory once appended, and asks
 * the flusher for a sync. *partition and *need (the durable offset that
 * confirms the write; 0 when nothing was written) are set. The group may be
 * created, or freed (tombstones): callers must not keep pointers to it.
 * Returns 0 or the error (EIO, ENOSPC, ENOMEM...) with msg.
 */
int stream__offsets_write(stream__coord *co, const char *group, const stream__offset_rec *recs,
                          size_t n, int32_t *partition, int64_t *need, char *msg, size_t msg_len);

/* What a write op keeps while it waits for durability: the writes to
 * confirm and how to answer. Embedded first in each op's own state. */
typedef struct stream__pending stream__pending;
struct stream__pending {
    stream__host_wait wait; /* first: the host hands it back to the completion */
    stream__coord *co;      /* the coordinator (set by stream__pending_park) */
    uint64_t id;            /* the request's id */
    stream_log **logs;      /* offsets partitions written */
    int64_t *needs;         /* durable offset confirming each */
    size_t n, cap;
    /* Encodes the response (stream__host_reply_*), which completes r. */
    void (*encode)(stream__coord *co, stream__req *r, stream__pending *p);
    /* Frees the op's state (p included). */
    void (*destroy)(stream__pending *p);
};

/* Records a write to offsets partition `partition` to confirm (need <= 0,
 * or the partition gone: nothing to wait for). 0, or ENOMEM after flushing
 * that partition here instead (the answer then need not wait). */
int stream__pending_add(stream__coord *co, stream__pending *p, int32_t partition, int64_t need);
/* Frees logs/needs (for destroy functions). */
void stream__pending_release(stream__pending *p);
/* 0 when offsets partition `partition` is durable up to need (clustered:
 * under the high watermark of a partition this broker still leads), else
 * ETIMEDOUT, EIO or (clustered, leadership lost) ENOTCOORDINATOR with msg.
 * For encode functions. */
int stream__offsets_durable_err(stream__coord *co, int32_t partition, int64_t need, char *msg,
                                size_t msg_len);
/* Answers r at once when nothing waits, else parks it until every write is
 * durable or the timeout passes; then encode, then destroy. Takes p. */
void stream__pending_park(stream__coord *co, stream__req *r, stream__pending *p);
/* Frees g's offsets table. */
void stream__offsets_release(stream__group *g);
/* Reads __consumer_offsets (if it exists) into memory, offsets and
 * membership (members' sessions start now); at a single broker's start.
 * One made before compaction gets cleanup.policy=compact first (in a
 * cluster the controller does that: ctl_migrate_offsets_topic). */
int stream__offsets_replay(stream__coord *co, char *errbuf, size_t errbuf_len);
/* Clustered: 0 when this broker coordinates `group` (the leader of its
 * offsets partition, whose offsets are then loaded), else ENOTCOORDINATOR
 * with msg naming the coordinator it believes in (and, the topic missing,
 * asking the cluster to create it). Always 0 on a single node. */
int stream__coord_gate(stream__coord *co, const char *group, char *msg, size_t msg_len);
/* The coordinator's node for group (find_coordinator): 0 with *node, or
 * ENOTCOORDINATOR with msg when none is known now. */
int stream__coord_locate(stream__coord *co, const char *group, int32_t *node, char *msg,
                         size_t msg_len);
/* log's role changed: load (offsets and membership) or drop the groups of
 * an offsets partition. */
void stream__coord_role_changed(stream__coord *co, stream_log *log, stream__host_role role,
                                int32_t leader_epoch);
/* A topic was deleted: tombstones for every group's offsets of it. */
void stream__offsets_topic_deleted(stream__coord *co, const char *topic);

/* ---- the membership record (group_meta.c) ---- */

/* The version written in, and understood of, a membership record's value. */
#define STREAM__GROUP_META_VERSION 1

/*
 * A membership record's value (protocol.md 6.10 "Storage"), a MessagePack map:
 *
 *   {version: 1, generation: int32,
 *    members: [{member_id, client_id, host: str,
 *               session_timeout_ms, rebalance_timeout_ms: int32,
 *               topics: [str], pattern: str | nil,
 *               epoch, prev_epoch: int32,
 *               target, assigned, held: [{topic: str, partitions: [int32]}]}]}
 *
 * under the key [STREAM_GROUP_META_KEY_VERSION (2), group]; a null value
 * (tombstone) says the group has no membership any more. Members are in
 * join order (the assignor's tie-break).
 */

/* A decoded membership record: members built and checked, their patterns
 * not compiled yet (stream__group_meta_restore does). */
typedef struct stream__group_meta {
    int32_t generation;
    stream__member **members; /* owned, join order */
    size_t nmembers;
} stream__group_meta;

/* Packs the value for (generation, members) into out (reset first, no
 * length prefix). 0 or ENOMEM. */
int stream__group_meta_pack(stream_buf *out, int32_t generation, stream__member *const *members,
                            size_t n);
/* Decodes a value (len bytes at p, hostile) into out. 0; ECORRUPT (not the
 * layout above, or members that break the invariants at the top: two
 * holding one partition, an id twice...) or EUNSUPPORTED (another version)
 * with msg; or ENOMEM. On failure out is empty. */
int stream__group_meta_decode(const uint8_t *p, size_t len, stream__group_meta *out, char *msg,
                              size_t msg_len);
/* Frees what meta holds (it is then empty). */
void stream__group_meta_release(stream__group_meta *meta);
/* Makes meta g's membership: its members (g's old ones freed), patterns
 * compiled, sessions and revocation clocks starting at now (uv_now time),
 * and its generation. Takes meta's members on success (meta is then
 * empty); on failure (ECORRUPT: a pattern does not compile; ENOMEM) g and
 * meta are unchanged. */
int stream__group_meta_restore(stream__group *g, stream__group_meta *meta, uint64_t now, char *msg,
                               size_t msg_len);
/* When g's membership changed (meta_dirty), appends its membership record
 * (a tombstone when g has neither members nor offsets) to its offsets
 * partition, and sets meta_partition/meta_need. 0, or the write's error
 * with msg (g stays dirty: the next op writes again). */
int stream__group_meta_write(stream__coord *co, stream__group *g, char *msg, size_t msg_len);

/* ---- committed offsets: the ops (group_commit.c) ---- */

/* Handlers in the service's ops table (host.h); svc is the stream__coord. */
void stream__op_commit_offsets(void *svc, stream__req *r, uint64_t id, const msgpack_object *m);
void stream__op_fetch_offsets(void *svc, stream__req *r, uint64_t id, const msgpack_object *m);
void stream__op_delete_group(void *svc, stream__req *r, uint64_t id, const msgpack_object *m);
void stream__op_reset_offsets(void *svc, stream__req *r, uint64_t id, const msgpack_object *m);

/* Deletes the group called name (checked), which must have no members:
 * tombstones for its offsets and membership. 0 with *partition and *need (the
 * durable offset confirming it; 0 when nothing was written), or ENOGROUP,
 * EGROUPNOTEMPTY, or the write's error, with msg. */
int stream__group_delete(stream__coord *co, const char *name, int32_t *partition, int64_t *need,
                         char *msg, size_t msg_len);

/* The timestamp of the record at `offset` of log (which must be below the
 * end), or -1 when it cannot be read. */
int64_t stream__record_timestamp_at(stream_log *log, int64_t offset);

#endif /* STREAM_GROUP_INTERNAL_H */
