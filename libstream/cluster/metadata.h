/*
 * metadata.h - the cluster metadata: brokers, topics, partitions and topic
 * configs, as a deterministic state machine that the metadata quorum
 * (quorum.h) applies on every voter.
 *
 * What is replicated:
 *   - cluster_id: fixed at creation; a snapshot of another cluster is refused.
 *   - brokers: id, host, port, broker epoch, fenced. The epoch is the log
 *     index of the broker's latest register_broker (Kafka's KRaft does the
 *     same), so each registration gets a new, larger epoch on every voter
 *     without a counter. A broker registers fenced and is unfenced once the
 *     controller sees it caught up (KIP-631's model).
 *   - topics: name, 16-byte topic id (chosen by the proposer, never zero),
 *     configs (key=value overrides, sorted by key), and per partition:
 *     replicas, leader (-1: none), leader_epoch, isr, partition_epoch.
 *   - the recent request ids of each requester (see "Idempotence").
 *
 * What is not replicated, on purpose:
 *   - liveness (a broker's last heartbeat): the controller's in-memory
 *     business; it proposes fence_broker when a broker falls silent. Time
 *     never enters apply, which must be deterministic.
 *   - group coordinator placement: derived, as in Kafka, from the leaders of
 *     __consumer_offsets (stream__meta_coordinator), so there is no state
 *     to keep in step.
 *   - config validation: a config key or value is stored as given (within
 *     the limits below). Whether "retention.ms=abc" is acceptable is decided
 *     by the controller before proposing: a check inside apply would give
 *     different answers on voters of different versions during an upgrade.
 *
 * Commands are MessagePack maps, every one with "op" (str) and "req" (the
 * request id). Field by field (int32 unless said; [] an array):
 *
 *   register_broker  id >= 1, host (str, 1..255 bytes of [A-Za-z0-9._:%-]),
 *                    port (1..65535); optional, both or neither:
 *                    kafka_host (str, as host), kafka_port (1..65535), the
 *                    broker's Kafka listener (added later: a command
 *                    without them is a broker with none, and a voter that
 *                    does not know them ignores them, so old and new
 *                    brokers and snapshots mix)
 *   fence_broker     id >= 1, epoch (int64 >= 0, the broker's current epoch)
 *   unfence_broker   id >= 1, epoch (int64 >= 0)
 *   create_topic     name (str), topic_id (bin, 16 bytes, not all zero),
 *                    partitions ([[broker id, ...], ...]: 1..10000
 *                    partitions of 1..32 distinct replicas), configs
 *                    ({str: str}, optional)
 *   delete_topic     name, topic_id (optional guard: must match when given)
 *   create_partitions name, topic_id (optional guard), before (1..9999: the
 *                    partition count the change was computed from),
 *                    partitions ([[broker id, ...], ...]: the new
 *                    partitions' replicas, 1 to 10000 - before of them,
 *                    1..32 distinct replicas each; added later: a voter
 *                    that does not know the op refuses it as undecodable)
 *   alter_partition  name, topic_id (optional guard), partition (>= 0),
 *                    leader (-1 or an isr member), isr ([] 1..32 distinct
 *                    replicas), partition_epoch (>= 0: the epoch the change
 *                    was computed from)
 *   alter_partitions topics ([{name, topic_id (optional guard), changes:
 *                    [[partition, leader, [isr], partition_epoch], ...]}]:
 *                    1..STREAM__META_ALTER_BATCH alter_partition changes in
 *                    all, neighbouring topics never the same, in one
 *                    command (about 12 bytes a partition), for the
 *                    controller's leader moves when a broker leading many
 *                    partitions is fenced; added later: a voter that does
 *                    not know the op refuses it as undecodable)
 *   alter_configs    name, topic_id (optional guard), set ({str: str},
 *                    optional), delete ([str], optional)
 *   req              {node: int32 >= 1, seq: uint64}
 *
 * Results of apply (the command's verdict; the state changes only on 0):
 *   any op           STREAM_EBADREQ: undecodable (wrong types, ranges,
 *                    repeats inside a list); not remembered by request id
 *   register_broker  0
 *   fence/unfence    STREAM__META_ENOBROKER unknown broker,
 *                    STREAM__META_ESTALE epoch is not the current one
 *                    (a stale request from before a re-registration);
 *                    0 also when already (un)fenced: nothing changes
 *   create_topic     STREAM_EBADNAME name against the topic grammar,
 *                    STREAM_ETOPICEXISTS name taken, STREAM_EEXIST topic id
 *                    taken, STREAM__META_ENOBROKER a replica on an
 *                    unregistered broker, STREAM_EBADCONFIG a config key or
 *                    value out of limits. leader = first unfenced replica (or
 *                    -1), leader_epoch 0, isr = replicas, partition_epoch 0.
 *   delete_topic     STREAM_ENOTOPIC (no such name, or the guard id differs)
 *   create_partitions STREAM_ENOTOPIC, STREAM__META_ESTALE (the topic does
 *                    not have `before` partitions: a repeat, or a change
 *                    computed from an older count), STREAM__META_ENOBROKER
 *                    (a replica on an unregistered broker). New partitions
 *                    start as create_topic's do: leader = first unfenced
 *                    replica (or -1), leader_epoch 0, isr = replicas,
 *                    partition_epoch 0.
 *   alter_partition  STREAM_ENOTOPIC, STREAM_ENOPART, STREAM__META_ESTALE
 *                    (partition_epoch is not the current one: the change
 *                    comes from a stale controller or leader and is
 *                    refused), STREAM_EINVAL (an isr member that is not a
 *                    replica, or a leader outside the isr). On success
 *                    partition_epoch + 1, and leader_epoch + 1 when the
 *                    leader changes.
 *   alter_partitions 0 once decoded: each change is checked and applied on
 *                    its own, in order, as alter_partition would be; a
 *                    change alter_partition would refuse (stale, unknown
 *                    topic or partition, invalid) is skipped and the others
 *                    still apply (one stale partition must not hold back a
 *                    thousand moves; the controller's next election pass
 *                    computes the skipped ones afresh). One
 *                    PARTITION_CHANGED event per change applied.
 *   alter_configs    STREAM_ENOTOPIC, STREAM_EBADCONFIG (a key both set and
 *                    deleted, a key or value out of limits, more than
 *                    STREAM_STRMAP_MAX overrides). Deleting an unset key is
 *                    not an error.
 *
 * Idempotence: a deposed leader's proposals may be committed after it said
 * "leadership lost", so the requester retries with the same request id. A
 * command whose req was already applied returns the recorded result and
 * changes nothing. Per requester node the last STREAM__META_REQ_WINDOW
 * (32) request ids are kept: enough for a requester with up to 32 commands
 * in flight, which a broker (one registration, one heartbeat-driven unfence
 * at a time) never reaches; the controller's own bulk changes
 * (alter_partition) are protected by partition_epoch anyway, a duplicate of
 * one is refused as stale. At most STREAM__META_MAX_REQUESTERS (1024)
 * requesters are remembered; beyond that the one with the oldest latest
 * command is forgotten (every voter forgets the same one). Bounded memory:
 * 1024 x 32 x 12 bytes, about 400 KB at the very most, in RAM and in the
 * snapshot. A seq must never repeat for a node, across restarts too (start
 * from the wall clock in microseconds, or from random bits).
 *
 * Snapshot (stream__meta_snapshot): the whole state as one MessagePack map,
 * canonical (brokers by id, topics by name, configs by key, requesters by
 * node, each requester's ids oldest first), so equal states give equal bytes:
 *
 *   {version: 1, cluster_id: str, applied_index: uint,
 *    brokers: [{id, host, port, epoch, fenced: bool,
 *               kafka_host, kafka_port (only when registered with them)}],
 *    topics: [{name, id: bin16, configs: {str: str},
 *              partitions: [{replicas: [], leader, leader_epoch, isr: [],
 *                            partition_epoch}]}],
 *    requesters: [{node, last_index: uint, seqs: [uint], results: [int]}]}
 *
 * Borrowing: pointers returned by the accessors and carried by events point
 * into the state; they stay valid until the next apply, restore or free.
 *
 * Threads: none of its own; one thread at a time (the quorum's loop thread).
 */
#ifndef STREAM_CLUSTER_METADATA_H
#define STREAM_CLUSTER_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quorum.h"
#include "stream/buf.h"
#include "stream/error.h"

/* ---- limits ---------------------------------------------------------------- */

#define STREAM__META_TOPIC_ID_BYTES   16
#define STREAM__META_MAX_REPLICAS     32   /* per partition */
#define STREAM__META_HOST_MAX         255  /* bytes of a broker host */
#define STREAM__META_CONFIG_KEY_MAX   255  /* bytes of a config key */
#define STREAM__META_CONFIG_VALUE_MAX 4096 /* bytes of a config value */
#define STREAM__META_REQ_WINDOW       32   /* request ids kept per requester */
#define STREAM__META_MAX_REQUESTERS   1024 /* requesters remembered */
#define STREAM__META_SNAPSHOT_VERSION 1
#define STREAM__META_ALTER_BATCH      1000 /* changes in one alter_partitions */

/*
 * Error codes, by meaning (kept as names of their own so they read as what
 * the metadata means):
 *   ESTALE     a broker epoch or partition epoch that is not the current one
 *              (Kafka: STALE_BROKER_EPOCH, INVALID_UPDATE_VERSION)
 *   ENOBROKER  a broker id that never registered (Kafka: BROKER_NOT_AVAILABLE)
 */
#define STREAM__META_ESTALE    STREAM_ESTALEEPOCH
#define STREAM__META_ENOBROKER STREAM_ENOBROKER

/* ---- the state ------------------------------------------------------------- */

typedef struct stream__meta_broker {
    int32_t id;          /* >= 1 */
    char *host;          /* NUL-terminated, as registered */
    uint16_t port;       /* 1..65535 */
    int64_t epoch;       /* log index of its latest registration */
    bool fenced;         /* may not lead or be added to an ISR */
    char *kafka_host;    /* its Kafka listener's host (NUL-terminated), NULL: none */
    uint16_t kafka_port; /* its Kafka listener's port; 0 when none */
} stream__meta_broker;

typedef struct stream__meta_partition {
    int32_t *replicas;       /* broker ids, in preference order, distinct */
    uint32_t n_replicas;     /* 1..STREAM__META_MAX_REPLICAS */
    int32_t leader;          /* a member of isr, or -1 when none */
    int32_t leader_epoch;    /* + 1 at each leader change */
    int32_t *isr;            /* in-sync replicas, a subset of replicas */
    uint32_t n_isr;          /* >= 1 */
    int32_t partition_epoch; /* + 1 at each change of leader or isr */
} stream__meta_partition;

typedef struct stream__meta_config {
    char *key;   /* NUL-terminated, 1..STREAM__META_CONFIG_KEY_MAX bytes */
    char *value; /* NUL-terminated, 0..STREAM__META_CONFIG_VALUE_MAX bytes */
} stream__meta_config;

typedef struct stream__meta_topic {
    char *name;                              /* NUL-terminated, topic grammar */
    uint8_t id[STREAM__META_TOPIC_ID_BYTES]; /* never all zero; unique */
    int32_t partition_count;                 /* 1..STREAM_MAX_PARTITIONS */
    stream__meta_partition *partitions;      /* partition_count of them */
    stream__meta_config *configs;            /* sorted by key, keys distinct */
    uint32_t n_configs;
} stream__meta_topic;

typedef struct stream__meta stream__meta;

/* A new, empty state for cluster_id ([A-Za-z0-9._-]{1,64}). NULL when out of
 * memory or cluster_id is not valid. */
stream__meta *stream__meta_new(const char *cluster_id);
/* Frees md and everything it holds; NULL is a no-op. */
void stream__meta_free(stream__meta *md);

/* The cluster id given to _new (NUL-terminated). */
const char *stream__meta_cluster_id(const stream__meta *md);
/* The index of the last command applied (or of the restored snapshot). */
uint64_t stream__meta_applied_index(const stream__meta *md);

/* Brokers, by id (index 0..count-1 is ascending id order). */
size_t stream__meta_broker_count(const stream__meta *md);
const stream__meta_broker *stream__meta_broker_at(const stream__meta *md, size_t i);
/* NULL when no broker has that id. */
const stream__meta_broker *stream__meta_broker_find(const stream__meta *md, int32_t id);

/* Topics, by name (index 0..count-1 is ascending byte order of names). */
size_t stream__meta_topic_count(const stream__meta *md);
const stream__meta_topic *stream__meta_topic_at(const stream__meta *md, size_t i);
/* NULL when absent. name is len bytes, not necessarily NUL-terminated. */
const stream__meta_topic *stream__meta_topic_find(const stream__meta *md, const char *name,
                                                  size_t len);
const stream__meta_topic *stream__meta_topic_find_id(const stream__meta *md, const uint8_t id[16]);

/* The group coordinator of `group` (len bytes): the leader of its partition
 * of __consumer_offsets, chosen as the broker does today
 * (stream_partition_for_key). -1 when that topic does not exist or the
 * partition has no leader. */
int32_t stream__meta_coordinator(const stream__meta *md, const char *group, size_t len);

/* ---- events ---------------------------------------------------------------- */

typedef enum stream__meta_event_type {
    STREAM__META_BROKER_REGISTERED,     /* broker (a new one, or a new epoch) */
    STREAM__META_BROKER_FENCED,         /* broker */
    STREAM__META_BROKER_UNFENCED,       /* broker */
    STREAM__META_TOPIC_CREATED,         /* topic */
    STREAM__META_TOPIC_DELETED,         /* topic: valid during the callback only */
    STREAM__META_TOPIC_CONFIGS_CHANGED, /* topic */
    STREAM__META_PARTITIONS_ADDED,      /* topic; partition: the count before */
    STREAM__META_PARTITION_CHANGED,     /* topic, partition, what changed */
    STREAM__META_RESTORED,              /* everything may have changed: re-read */
} stream__meta_event_type;

typedef struct stream__meta_event {
    stream__meta_event_type type;
    uint64_t index;                    /* the command's log index (RESTORED: the snapshot's) */
    const stream__meta_broker *broker; /* BROKER_*, else NULL */
    const stream__meta_topic *topic;   /* TOPIC_*, PARTITION_CHANGED, else NULL */
    int32_t partition;                 /* PARTITION_CHANGED; PARTITIONS_ADDED: the count
                                          before; else -1 */
    int32_t previous_leader;           /* PARTITION_CHANGED: the leader before */
    bool leader_changed;               /* PARTITION_CHANGED: leader (and leader_epoch) moved */
    bool isr_changed;                  /* PARTITION_CHANGED: isr differs */
} stream__meta_event;

/* Called after a command changed the state (never for a refused or repeated
 * command) and after a restore. It must not apply or restore (no re-entry). */
typedef void (*stream__meta_event_cb)(void *arg, const stream__meta_event *ev);

/* Sets (or, with NULL, clears) the event callback. */
void stream__meta_set_event_cb(stream__meta *md, stream__meta_event_cb cb, void *arg);

/* ---- the state machine ----------------------------------------------------- */

/*
 * Applies one command (len bytes at cmd, borrowed) at log index `index`.
 * Returns the command's verdict (see the top), or STREAM_ENOMEM when memory
 * ran out, in which case nothing changed and the same command may be
 * applied again. Deterministic: the same state and command give the same
 * result and the same new state on every voter.
 */
int stream__meta_apply(stream__meta *md, const uint8_t *cmd, size_t len, uint64_t index);

/* Appends the whole state (the layout above) to out. 0 or STREAM_ENOMEM. */
int stream__meta_snapshot(const stream__meta *md, stream_buf *out);

/*
 * Replaces the state with a snapshot's (len bytes at p). Everything is
 * checked before anything changes: the MessagePack shape, every field's type
 * and range, the version, the cluster id (another cluster's snapshot is
 * STREAM_EBADCONFIG naming both), names against their grammar, ids unique
 * and sorted, partitions consistent (replicas distinct and registered, isr
 * within replicas, leader within isr). Returns 0, STREAM_ECORRUPT (errbuf
 * says what and where), STREAM_EBADCONFIG, or STREAM_ENOMEM; on failure the
 * state is as before. Fires STREAM__META_RESTORED on success.
 */
int stream__meta_restore(stream__meta *md, const uint8_t *p, size_t len, char *errbuf,
                         size_t errbuf_len);

/* Fills fsm so the quorum drives md (apply, snapshot, restore). */
void stream__meta_fsm(stream__meta *md, stream__quorum_fsm *fsm);

/* ---- commands -------------------------------------------------------------- */

#define STREAM__META_OP_MAP(X)                                                                     \
    X(REGISTER_BROKER, "register_broker")                                                          \
    X(FENCE_BROKER, "fence_broker")                                                                \
    X(UNFENCE_BROKER, "unfence_broker")                                                            \
    X(CREATE_TOPIC, "create_topic")                                                                \
    X(DELETE_TOPIC, "delete_topic")                                                                \
    X(ALTER_PARTITION, "alter_partition")                                                          \
    X(ALTER_CONFIGS, "alter_configs")                                                              \
    X(CREATE_PARTITIONS, "create_partitions")                                                      \
    X(ALTER_PARTITIONS, "alter_partitions")

typedef enum stream__meta_op {
    STREAM__META_OP_UNKNOWN = 0,
#define STREAM__METADATA_OP_ENUM(name, wire) STREAM__META_OP_##name,
    STREAM__META_OP_MAP(STREAM__METADATA_OP_ENUM)
#undef STREAM__METADATA_OP_ENUM
        STREAM__META_OP__COUNT
} stream__meta_op;

/* The wire name of op ("create_topic"); "unknown" when out of range. */
const char *stream__meta_op_name(stream__meta_op op);

/* A request id: who asked (a node id) and a number it never reuses. */
typedef struct stream__meta_req {
    int32_t node; /* >= 1 */
    uint64_t seq;
} stream__meta_req;

/* A list of broker ids (replicas of a partition, an isr). */
typedef struct stream__meta_ids {
    const int32_t *ids;
    uint32_t count;
} stream__meta_ids;

/* A config entry; for alter_configs' deletions only the key is read. Strings
 * are len bytes, not necessarily NUL-terminated. */
typedef struct stream__meta_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} stream__meta_kv;

/* One partition's change in alter_partitions (alter_partition's fields).
 * topic is topic_len bytes, not necessarily NUL-terminated. */
typedef struct stream__meta_alter {
    const char *topic;
    size_t topic_len;
    uint8_t topic_id[STREAM__META_TOPIC_ID_BYTES]; /* the guard, when has_topic_id */
    bool has_topic_id;
    int32_t partition;       /* >= 0 */
    int32_t leader;          /* -1 for none */
    stream__meta_ids isr;    /* the new isr */
    int32_t partition_epoch; /* expected current */
} stream__meta_alter;

/*
 * One command, decoded or to encode. Which fields an op reads is listed at
 * the top; the others are ignored by the encoder and zero after decoding.
 * After stream__meta_cmd_decode, strings point into the decoded bytes and
 * arrays into memory the cmd owns: release it with stream__meta_cmd_release.
 */
typedef struct stream__meta_cmd {
    stream__meta_op op;
    stream__meta_req req;
    int32_t broker_id; /* register, fence, unfence */
    const char *host;  /* register */
    size_t host_len;
    uint16_t port;          /* register */
    const char *kafka_host; /* register: NULL when the broker has no Kafka listener */
    size_t kafka_host_len;
    uint16_t kafka_port;  /* register, with kafka_host */
    int64_t broker_epoch; /* fence, unfence */
    const char *topic;    /* create, delete, alter_* */
    size_t topic_len;
    uint8_t topic_id[STREAM__META_TOPIC_ID_BYTES]; /* create; the guard of the others */
    bool has_topic_id;                             /* delete, alter_*: check topic_id */
    const stream__meta_ids *partitions;            /* create, create_partitions: each (new)
                                                      partition's replicas */
    uint32_t partition_count;
    const stream__meta_kv *configs; /* create: initial; alter_configs: set */
    uint32_t config_count;
    const stream__meta_kv *deletes; /* alter_configs: keys to delete */
    uint32_t delete_count;
    int32_t partition;                /* alter_partition */
    int32_t leader;                   /* alter_partition, -1 for none */
    stream__meta_ids isr;             /* alter_partition */
    int32_t partition_epoch;          /* alter_partition: expected current */
    int32_t partitions_before;        /* create_partitions: the expected current count */
    const stream__meta_alter *alters; /* alter_partitions: the changes, in order */
    uint32_t alter_count;
    /* private */
    void *owned; /* what decode allocated */
} stream__meta_cmd;

/*
 * Decodes a command (len bytes at p; hostile bytes are fine). Returns 0,
 * STREAM_EBADREQ with errbuf naming the field, or STREAM_ENOMEM. On failure
 * cmd holds nothing to release (releasing it anyway is harmless).
 */
int stream__meta_cmd_decode(const uint8_t *p, size_t len, stream__meta_cmd *cmd, char *errbuf,
                            size_t errbuf_len);
/* Frees what decode allocated; the cmd's pointers become invalid. */
void stream__meta_cmd_release(stream__meta_cmd *cmd);

/*
 * Appends cmd as one MessagePack map to out. The encoder refuses what the
 * decoder would (STREAM_EINVAL: unknown op, req.node < 1, a count or length
 * out of the limits above, a repeated id in a list), so every encoded command
 * decodes to the same cmd. Returns 0, STREAM_EINVAL or STREAM_ENOMEM; out is
 * unchanged on failure.
 */
int stream__meta_cmd_encode(const stream__meta_cmd *cmd, stream_buf *out);

/* One encoder per op, for the controller and tests: they fill a cmd and call
 * stream__meta_cmd_encode. Strings are C strings here. */
int stream__meta_encode_register_broker(stream_buf *out, stream__meta_req req, int32_t id,
                                        const char *host, uint16_t port);
/* The same with the broker's Kafka listener (kafka_host NULL: none). */
int stream__meta_encode_register_broker_kafka(stream_buf *out, stream__meta_req req, int32_t id,
                                              const char *host, uint16_t port,
                                              const char *kafka_host, uint16_t kafka_port);
int stream__meta_encode_fence_broker(stream_buf *out, stream__meta_req req, int32_t id,
                                     int64_t epoch);
int stream__meta_encode_unfence_broker(stream_buf *out, stream__meta_req req, int32_t id,
                                       int64_t epoch);
/* replicas: partition_count * replication_factor ids, partition 0's first. */
int stream__meta_encode_create_topic(stream_buf *out, stream__meta_req req, const char *name,
                                     const uint8_t id[16], int32_t partition_count,
                                     int32_t replication_factor, const int32_t *replicas,
                                     const stream__meta_kv *configs, uint32_t n_configs);
/* create_partitions: `added` partitions of replication_factor replicas each
 * (replicas: added * replication_factor ids, the first new partition's
 * first) to a topic of `before` partitions; id may be NULL (no guard). */
int stream__meta_encode_create_partitions(stream_buf *out, stream__meta_req req, const char *name,
                                          const uint8_t *id, int32_t before, int32_t added,
                                          int32_t replication_factor, const int32_t *replicas);
/* id may be NULL (no guard) in these three. */
int stream__meta_encode_delete_topic(stream_buf *out, stream__meta_req req, const char *name,
                                     const uint8_t *id);
int stream__meta_encode_alter_partition(stream_buf *out, stream__meta_req req, const char *name,
                                        const uint8_t *id, int32_t partition, int32_t leader,
                                        const int32_t *isr, uint32_t n_isr,
                                        int32_t partition_epoch);
/* alter_partitions: n (1..STREAM__META_ALTER_BATCH) changes. */
int stream__meta_encode_alter_partitions(stream_buf *out, stream__meta_req req,
                                         const stream__meta_alter *alters, uint32_t n);
int stream__meta_encode_alter_configs(stream_buf *out, stream__meta_req req, const char *name,
                                      const uint8_t *id, const stream__meta_kv *set, uint32_t n_set,
                                      const stream__meta_kv *deletes, uint32_t n_deletes);

#endif /* STREAM_CLUSTER_METADATA_H */
