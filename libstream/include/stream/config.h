/*
 * config.h - settings: one table of every broker and topic setting, a parser
 * for `key=value` files, typed getters, and the mapping to stream_log_config.
 *
 * Every setting lives in STREAM_CONFIG_MAP below: its name, type, scope,
 * default, range and one line of documentation. The enum of ids, the parser,
 * the validation, describe_configs, `--help` output, the example config
 * (share/stream-broker.conf) and the man page (stream-broker.conf(5)) all
 * follow this table, so a new setting is one line here plus its man page entry.
 *
 * Types (kept simple on purpose: no unit suffixes):
 *   INT     a decimal int64, optionally signed; units are in the name
 *           (`_ms`, `.bytes`), checked against [min, max]
 *   BOOL    `true` or `false` (any case)
 *   STRING  any text without control characters
 *   ENUM    one word from a fixed list (any case; stored in lower case)
 *
 * Scopes:
 *   BROKER  one value per broker (`listen`, `num.partitions`, ...)
 *   TOPIC   one value per topic. The broker config holds the default for every
 *           topic; a topic's overrides (created with stream_config_new_topic)
 *           win over it. The SAME key names are used at both levels
 *           (`retention.ms` in the broker file is the default for the topic key
 *           `retention.ms`), so there is one name to learn. For Kafka users the
 *           broker level also accepts Kafka's broker-wide names as aliases
 *           (`log.retention.ms` -> `retention.ms`, `message.max.bytes` ->
 *           `max.message.bytes`, ...: the `alias` column). Aliases are refused in
 *           topic overrides, as Kafka does.
 *
 * Flushing (topic scope) maps one to one onto stream_log_config:
 *   flush.mode=group     (default) group commit: fdatasync as soon as a request
 *                        needs it, one sync covering every append before it;
 *                        acks=all is answered after the sync, acks=1 data
 *                        reaches disk at OS write-back or the next sync
 *   flush.mode=periodic  fdatasync every `flush.ms`; acks=all waits for the
 *                        next period
 *   flush.mode=never     leave it to the OS (synced at clean close); acks=all
 *                        is answered like acks=1
 *   `flush.ms` is only read when flush.mode=periodic. Unlike Kafka, whose
 *   default is to never flush and to rely on replication, a single stream
 *   broker keeps acks=all meaning "on disk" by default.
 *
 * cleanup.policy: `delete` (retention by time and size), `compact` (the
 * cleaner keeps the last record of every key, cleaner.h), or `compact,delete`
 * (both; `delete,compact` is read as the same). min.cleanable.dirty.ratio is
 * a decimal from 0 to 1, kept as text; its int value (the _int getters) is
 * the ratio in millionths.
 *
 * File format (stream_config_parse): one `key=value` per line; whitespace
 * around key and value is trimmed; blank lines and lines whose first non-blank
 * character is `#` are ignored (there are no trailing comments: `#` inside a
 * value is part of it); CRLF line ends are accepted; the last line needs no
 * newline; a UTF-8 byte order mark at the start is skipped; a later line for
 * the same key wins; a NUL byte anywhere is an error. Errors name
 * `origin:line`.
 *
 * Invariants: a stream_config always holds valid values (a failed set or load
 * leaves it unchanged); values of unset settings are the table defaults.
 * Getters only read, so threads may share a config that nobody changes;
 * changing one needs the caller's own exclusion.
 */
#ifndef STREAM_CONFIG_H
#define STREAM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"
#include "stream/log.h"

/* The largest value of a duration in ms: about 100 years. Bounded so that
 * `now + duration` can never overflow an int64 anywhere in the broker. */
#define STREAM_CONFIG_MS_MAX INT64_C(3153600000000)
/* The most partitions a topic may have (also the bound of num.partitions). */
#define STREAM_CONFIG_PARTITIONS_MAX 10000

/*
 * X(ID, name, TYPE, SCOPE, default, min, max, enum values, Kafka alias, doc)
 *
 * `min`/`max` bound INT settings (0, 0 for others); `enum values` lists an
 * ENUM's words separated by `|` (NULL for others); the Kafka alias is the
 * broker-level name Kafka uses for a TOPIC setting, or NULL.
 *
 * An ENUM word's position is its int value and part of the API: log.level
 * 0 error .. 3 debug; flush.mode in stream_flush_mode order. Append words,
 * never reorder them.
 */
#define STREAM_CONFIG_MAP(X)                                                                       \
    /* ---- broker ---- */                                                                         \
    X(LISTEN, "listen", STRING, BROKER, "127.0.0.1:9292", 0, 0, NULL, NULL,                        \
      "HOST:PORT the broker listens on ([ADDR]:PORT for IPv6; port 0 picks a free port)")          \
    X(KAFKA_LISTEN, "kafka.listen", STRING, BROKER, "127.0.0.1:9092", 0, 0, NULL, NULL,            \
      "HOST:PORT of the Kafka wire-protocol listener (port 0 picks a free port); off: none")       \
    X(METRICS_LISTEN, "metrics.listen", STRING, BROKER, "127.0.0.1:9293", 0, 0, NULL, NULL,        \
      "HOST:PORT serving Prometheus metrics at GET /metrics (port 0 picks a free port); off: none") \
    X(DATA_DIR, "data.dir", STRING, BROKER, "", 0, 0, NULL, NULL,                                  \
      "directory holding the topics; empty: $STREAM_DATA_DIR, else $XDG_DATA_HOME/stream, "        \
      "else ~/.local/share/stream")                                                                \
    X(NODE_ID, "node.id", INT, BROKER, "0", 0, INT32_MAX, NULL, NULL,                              \
      "this broker's id in a cluster (one of cluster.voters' ids: a voter; another: data-only)")   \
    X(CLUSTER_VOTERS, "cluster.voters", STRING, BROKER, "", 0, 0, NULL, NULL,                      \
      "the metadata quorum, ID@IPV4:PORT,... (Raft addresses); empty: a single node, no cluster")  \
    X(CLUSTER_ID, "cluster.id", STRING, BROKER, "stream", 0, 0, NULL, NULL,                        \
      "the cluster's name, [A-Za-z0-9._-]{1,64}, kept in the metadata directory on first start")   \
    X(NUM_PARTITIONS, "num.partitions", INT, BROKER, "1", 1, STREAM_CONFIG_PARTITIONS_MAX, NULL,   \
      NULL, "partitions of a topic created without a partition count (and auto-created ones)")     \
    X(AUTO_CREATE_TOPICS_ENABLE, "auto.create.topics.enable", BOOL, BROKER, "true", 0, 0, NULL,    \
      NULL, "create a topic when a client first produces to or fetches from it")                   \
    X(SOCKET_REQUEST_MAX_BYTES, "socket.request.max.bytes", INT, BROKER, "104857600", 1024,        \
      INT32_MAX, NULL, NULL,                                                                       \
      "largest request frame accepted; a bigger frame closes the connection")                      \
    X(MAX_CONNECTIONS, "max.connections", INT, BROKER, "10000", 1, 1000000, NULL, NULL,            \
      "client connections accepted at once; later ones are closed at accept")                      \
    X(CONNECTION_MAX_OUTPUT_BYTES, "connection.max.output.bytes", INT, BROKER, "67108864", 65536,  \
      INT64_MAX, NULL, NULL,                                                                       \
      "bytes queued for one client before the broker stops reading its requests")                  \
    X(CONNECTIONS_MAX_IDLE_MS, "connections.max.idle.ms", INT, BROKER, "600000", -1,               \
      STREAM_CONFIG_MS_MAX, NULL, NULL,                                                            \
      "close a connection idle for this long; -1 never closes idle connections")                   \
    X(LOG_LEVEL, "log.level", ENUM, BROKER, "info", 0, 0, "error|warn|info|debug", NULL,           \
      "the broker's own messages on stderr at or above this level")                                \
    X(LOG_MAX_OPEN_FILES, "log.max.open.files", INT, BROKER, "0", 0, INT32_MAX, NULL, NULL,     \
      "descriptors the logs keep open at most (partition directories, active segments, cached "   \
      "older segments); 0: the open-file limit less a reserve for connections")                   \
    X(LOG_RETENTION_CHECK_INTERVAL_MS, "log.retention.check.interval.ms", INT, BROKER, "300000",   \
      1, STREAM_CONFIG_MS_MAX, NULL, NULL, "how often segments are checked against retention")     \
    X(GROUP_MIN_SESSION_TIMEOUT_MS, "group.min.session.timeout.ms", INT, BROKER, "6000", 1,        \
      STREAM_CONFIG_MS_MAX, NULL, NULL, "smallest session timeout a group member may ask for")     \
    X(GROUP_MAX_SESSION_TIMEOUT_MS, "group.max.session.timeout.ms", INT, BROKER, "1800000", 1,     \
      STREAM_CONFIG_MS_MAX, NULL, NULL, "largest session timeout a group member may ask for")      \
    X(GROUP_INITIAL_REBALANCE_DELAY_MS, "group.initial.rebalance.delay.ms", INT, BROKER, "3000",   \
      0, STREAM_CONFIG_MS_MAX, NULL, NULL,                                                         \
      "Kafka clients' groups: how long the first rebalance of an empty group waits for more")      \
    X(OFFSETS_TOPIC_NUM_PARTITIONS, "offsets.topic.num.partitions", INT, BROKER, "50", 1,          \
      STREAM_CONFIG_PARTITIONS_MAX, NULL, NULL,                                                    \
      "partitions of __consumer_offsets, fixed when it is first created")                          \
    X(BROKER_HEARTBEAT_INTERVAL_MS, "broker.heartbeat.interval.ms", INT, BROKER, "100", 1, 60000,  \
      NULL, NULL, "cluster: how often a broker heartbeats to the controller")                      \
    X(BROKER_SESSION_TIMEOUT_MS, "broker.session.timeout.ms", INT, BROKER, "1000", 2, 3600000,     \
      NULL, NULL,                                                                                  \
      "cluster: a broker silent this long is fenced and its leaderships move (> the interval)")    \
    X(DEFAULT_REPLICATION_FACTOR, "default.replication.factor", INT, BROKER, "-1", -1, 32, NULL,   \
      NULL, "cluster: replicas of a topic created without a factor; -1: min(3, live brokers)")     \
    X(REPLICA_LAG_TIME_MAX_MS, "replica.lag.time.max.ms", INT, BROKER, "10000", 1,                 \
      STREAM_CONFIG_MS_MAX, NULL, NULL,                                                            \
      "cluster: a follower not caught up with its leader for this long leaves the ISR")            \
    X(LOG_CLEANER_THREADS, "log.cleaner.threads", INT, BROKER, "1", 0, 32, NULL, NULL,             \
      "threads compacting topics with cleanup.policy compact; 0 turns compaction off")             \
    X(LOG_CLEANER_DEDUPE_BUFFER_SIZE, "log.cleaner.dedupe.buffer.size", INT, BROKER, "134217728",  \
      4096, INT32_MAX, NULL, NULL,                                                                 \
      "memory of the cleaners' key-to-offset maps (24 bytes a key); more keys: several passes")    \
    X(LOG_CLEANER_IO_MAX_BYTES_PER_SECOND, "log.cleaner.io.max.bytes.per.second", INT, BROKER,     \
      "-1", -1, INT64_MAX, NULL, NULL,                                                             \
      "bytes the cleaners read and write a second, all together; -1 for no limit")                 \
    X(LOG_CLEANER_BACKOFF_MS, "log.cleaner.backoff.ms", INT, BROKER, "15000", 1,                   \
      STREAM_CONFIG_MS_MAX, NULL, NULL,                                                            \
      "how long a cleaner sleeps when no partition needs cleaning")                                \
    X(TLS_CERT, "tls.cert", STRING, BROKER, "", 0, 0, NULL, NULL,                                  \
      "PEM certificate (chain) of every listener; set with tls.key: clients must speak TLS")       \
    X(TLS_KEY, "tls.key", STRING, BROKER, "", 0, 0, NULL, NULL,                                    \
      "PEM private key of tls.cert (re-read with the certificate on SIGHUP)")                      \
    X(TLS_CA, "tls.ca", STRING, BROKER, "", 0, 0, NULL, NULL,                                      \
      "PEM CAs that sign client certificates (tls.client.auth) and other brokers' certificates")  \
    X(TLS_CLIENT_AUTH, "tls.client.auth", ENUM, BROKER, "none", 0, 0, "none|requested|required",   \
      NULL, "ask TLS clients for a certificate signed by tls.ca: no, yes, or yes and refuse none") \
    X(INSECURE, "insecure", BOOL, BROKER, "false", 0, 0, NULL, NULL,                               \
      "allow a listener on a non-loopback address without TLS (plain text on the network)")        \
    /* ---- topic (broker value = default for every topic) ---- */                                 \
    X(SEGMENT_BYTES, "segment.bytes", INT, TOPIC, "1073741824", 1024, INT32_MAX, NULL,             \
      "log.segment.bytes", "roll the active segment before it would pass this size")               \
    X(SEGMENT_MS, "segment.ms", INT, TOPIC, "604800000", 1, STREAM_CONFIG_MS_MAX, NULL,            \
      "log.roll.ms", "roll the active segment once its first batch is this old")                   \
    X(RETENTION_MS, "retention.ms", INT, TOPIC, "604800000", -1, STREAM_CONFIG_MS_MAX, NULL,       \
      "log.retention.ms", "delete segments whose newest record is older; -1 keeps them forever")   \
    X(RETENTION_BYTES, "retention.bytes", INT, TOPIC, "-1", -1, INT64_MAX, NULL,                   \
      "log.retention.bytes",                                                                       \
      "delete the oldest segments while a partition is larger; -1 for no limit")                   \
    X(INDEX_INTERVAL_BYTES, "index.interval.bytes", INT, TOPIC, "4096", 0, INT32_MAX, NULL,        \
      "log.index.interval.bytes", "log bytes between two offset index entries")                    \
    X(MAX_MESSAGE_BYTES, "max.message.bytes", INT, TOPIC, "1048588", 61, INT32_MAX, NULL,          \
      "message.max.bytes", "largest record batch a producer may append")                           \
    X(FLUSH_MODE, "flush.mode", ENUM, TOPIC, "group", 0, 0, "group|periodic|never", NULL,          \
      "when appended data is fdatasync'd: on request (group commit), every flush.ms, or never")    \
    X(FLUSH_MS, "flush.ms", INT, TOPIC, "1000", 1, INT32_MAX, NULL, NULL,                          \
      "period of flush.mode=periodic")                                                             \
    X(CLEANUP_POLICY, "cleanup.policy", ENUM, TOPIC, "delete", 0, 0,                               \
      "delete|compact|compact,delete", "log.cleanup.policy",                                       \
      "delete old segments by retention, keep the last record per key, or both")                   \
    X(MIN_CLEANABLE_DIRTY_RATIO, "min.cleanable.dirty.ratio", STRING, TOPIC, "0.5", 0, 0, NULL,    \
      "log.cleaner.min.cleanable.ratio",                                                           \
      "compact a partition once this share (0 to 1) of its closed segments is not yet cleaned")    \
    X(MIN_COMPACTION_LAG_MS, "min.compaction.lag.ms", INT, TOPIC, "0", 0, STREAM_CONFIG_MS_MAX,    \
      NULL, "log.cleaner.min.compaction.lag.ms",                                                   \
      "a record stays uncompacted at least this long after it was written")                        \
    X(MAX_COMPACTION_LAG_MS, "max.compaction.lag.ms", INT, TOPIC, "3153600000000", 1,              \
      STREAM_CONFIG_MS_MAX, NULL, "log.cleaner.max.compaction.lag.ms",                             \
      "compact a segment this long after it was written, whatever the dirty ratio")                \
    X(DELETE_RETENTION_MS, "delete.retention.ms", INT, TOPIC, "86400000", 0, STREAM_CONFIG_MS_MAX, \
      NULL, "log.cleaner.delete.retention.ms",                                                     \
      "a tombstone (null value) stays this long after the cleaning that first saw it")             \
    X(MIN_INSYNC_REPLICAS, "min.insync.replicas", INT, TOPIC, "1", 1, 32, NULL, NULL,              \
      "cluster: acks=all needs at least this many in-sync replicas, else ENOTENOUGHREPLICAS")      \
    X(UNCLEAN_LEADER_ELECTION_ENABLE, "unclean.leader.election.enable", BOOL, TOPIC, "false", 0,   \
      0, NULL, NULL,                                                                               \
      "cluster: with no live in-sync replica, elect an out-of-sync one (may lose records)")

/* Setting ids: STREAM_CONFIG_LISTEN, ... in table order; STREAM_CONFIG_COUNT. */
// clang-format off
typedef enum stream_config_id {
#define STREAM__CONFIG_ID(id, name, type, scope, def, min, max, values, alias, doc) \
    STREAM_CONFIG_##id,
    STREAM_CONFIG_MAP(STREAM__CONFIG_ID)
#undef STREAM__CONFIG_ID
    STREAM_CONFIG_COUNT
} stream_config_id;
// clang-format on

typedef enum stream_config_type {
    STREAM_CONFIG_TYPE_INT,
    STREAM_CONFIG_TYPE_BOOL,
    STREAM_CONFIG_TYPE_STRING,
    STREAM_CONFIG_TYPE_ENUM,
} stream_config_type;

typedef enum stream_config_scope {
    STREAM_CONFIG_SCOPE_BROKER, /* one value per broker */
    STREAM_CONFIG_SCOPE_TOPIC,  /* per topic; the broker value is the default */
} stream_config_scope;

/* Where an effective value comes from (describe_configs' "source"). */
typedef enum stream_config_source {
    STREAM_CONFIG_SOURCE_DEFAULT, /* the table default */
    STREAM_CONFIG_SOURCE_BROKER,  /* set in the broker config */
    STREAM_CONFIG_SOURCE_TOPIC,   /* a topic's override */
} stream_config_source;

/* One row of the table: what a setting is (static, immutable). */
typedef struct stream_config_setting {
    stream_config_id id;
    const char *name; /* "retention.ms" */
    stream_config_type type;
    stream_config_scope scope;
    const char *default_value; /* the default as text, as a file would hold it */
    int64_t min, max;          /* INT: inclusive range; 0, 0 otherwise */
    const char *values;        /* ENUM: "a|b|c"; NULL otherwise */
    const char *alias;         /* TOPIC: Kafka's broker-level name, or NULL */
    const char *doc;           /* one line for humans */
} stream_config_setting;

/* The setting with this id (0 <= id < STREAM_CONFIG_COUNT), else NULL. */
const stream_config_setting *stream_config_setting_at(int id);
/* The setting called `name` (or, when `alias_ok`, whose Kafka alias it is),
 * else NULL. */
const stream_config_setting *stream_config_setting_find(const char *name, bool alias_ok);
/* "int", "bool", "string", "enum". */
const char *stream_config_type_name(stream_config_type type);

typedef struct stream_config stream_config;

/* A broker config: every setting at its default. NULL when out of memory. */
stream_config *stream_config_new(void);
/* A topic's overrides: only TOPIC-scope settings may be set; nothing is set at
 * first. NULL when out of memory. */
stream_config *stream_config_new_topic(void);
/* A deep copy (same kind, same values, same set flags). NULL when out of
 * memory or cfg is NULL. */
stream_config *stream_config_dup(const stream_config *cfg);
/* NULL is a no-op. */
void stream_config_free(stream_config *cfg);
/* True for configs made by stream_config_new_topic. */
bool stream_config_is_topic(const stream_config *cfg);

/* Sets `key` from text (trimmed of surrounding whitespace). Errors:
 * STREAM_EBADCONFIG with errbuf naming the key and what is allowed (unknown
 * key, broker key in a topic config, alias in a topic config, not an integer,
 * out of [min, max], not true/false, not one of the enum's words, a ratio
 * outside 0..1, control characters); STREAM_EINVAL for NULL arguments;
 * STREAM_ENOMEM. On error cfg is unchanged. */
int stream_config_set(stream_config *cfg, const char *key, const char *value, char *errbuf,
                      size_t errbuf_len);
/* Returns `key` to its default (and, in a topic config, removes the override).
 * Errors: STREAM_EBADCONFIG for an unknown key or one this config cannot
 * hold. */
int stream_config_unset(stream_config *cfg, const char *key, char *errbuf, size_t errbuf_len);

/* True when `key` was set (not at its default by omission). False for unknown
 * keys. */
bool stream_config_is_set(const stream_config *cfg, const char *key);

/*
 * Getters by name (for user input: alter/describe) or by id (for code: a typo
 * is a compile error). A wrong type or unknown key gives 0 / false / NULL.
 * Strings are borrowed from cfg until it is next changed or freed. ENUM
 * settings read as their word through _get_str and as their position in the
 * word list through _get_int.
 */
int64_t stream_config_get_int(const stream_config *cfg, const char *key);
bool stream_config_get_bool(const stream_config *cfg, const char *key);
const char *stream_config_get_str(const stream_config *cfg, const char *key);
int64_t stream_config_int(const stream_config *cfg, stream_config_id id);
bool stream_config_bool(const stream_config *cfg, stream_config_id id);
const char *stream_config_str(const stream_config *cfg, stream_config_id id);
bool stream_config_id_is_set(const stream_config *cfg, stream_config_id id);

/*
 * Parsing. stream_config_parse is the tokenizer under every loader: it calls
 * `cb` with each key and value (trimmed, NUL-terminated, valid only during the
 * call) in file order and stops at the first error. It never reads past
 * `len`, accepts lines of any length and rejects NUL bytes. A callback error
 * (negative) is returned with its message prefixed by "origin:line: "
 * (origin NULL: "line N: "). Errors: STREAM_EBADCONFIG (syntax: a line
 * without `=`, an empty key, a NUL byte), the callback's, STREAM_ENOMEM.
 */
typedef int (*stream_config_line_cb)(void *arg, const char *key, const char *value, char *errbuf,
                                     size_t errbuf_len);
int stream_config_parse(const char *text, size_t len, const char *origin, stream_config_line_cb cb,
                        void *arg, char *errbuf, size_t errbuf_len);

/* Applies every line of `text` with stream_config_set, all or nothing: on any
 * error cfg is unchanged. Errors as stream_config_parse/stream_config_set,
 * with "origin:line: " in errbuf. */
int stream_config_load_text(stream_config *cfg, const char *text, size_t len, const char *origin,
                            char *errbuf, size_t errbuf_len);
/* Reads the file at `path` and loads it (origin = path). Errors: STREAM_ENOENT
 * (missing), STREAM_EIO (unreadable, or over 16 MiB), and load_text's. */
int stream_config_load_file(stream_config *cfg, const char *path, char *errbuf, size_t errbuf_len);

/* Appends `key=value\n` lines to `out` in table order: the settings that are
 * set when `only_set`, else every one this config can hold. The output loads
 * back to the same values. Errors: STREAM_ENOMEM. */
int stream_config_write(const stream_config *cfg, bool only_set, stream_buf *out);

/*
 * Iteration over settings with their effective values, for describe_configs,
 * `--help` and dumps:
 *
 *   stream_config_iter it;
 *   stream_config_iter_start(&it, broker, topic);
 *   while (stream_config_iter_next(&it))
 *       printf("%s=%s\n", it.setting->name, it.value);
 *
 * With `topic` NULL it visits every setting of `broker` (NULL: the defaults)
 * with source DEFAULT or BROKER. With a topic config it visits the TOPIC-scope
 * settings only, a topic override winning over the broker value. Holds no
 * resources, so there is no _stop; the configs must outlive the loop.
 */
typedef struct stream_config_iter {
    /* read-only */
    const stream_config_setting *setting; /* the current setting */
    const char *value;                    /* its effective value as text; valid
                                             until the next call */
    stream_config_source source;          /* where the value comes from */
    /* private */
    const stream_config *broker, *topic;
    int next;
    char buf[24];
} stream_config_iter;

void stream_config_iter_start(stream_config_iter *it, const stream_config *broker,
                              const stream_config *topic);
bool stream_config_iter_next(stream_config_iter *it);

/* The log settings of a topic: each TOPIC-scope value from `topic` when set
 * there, else from `broker` (NULL: table defaults). Never fails: configs only
 * hold valid values. */
void stream_config_topic_log_config(const stream_config *broker, const stream_config *topic,
                                    stream_log_config *out);

/* The effective value of a TOPIC-scope INT or BOOL setting (id) for a topic:
 * its override in `topic` when set there, else `broker`'s value (NULL: the
 * table default). BOOL reads as 0/1. For settings that are not part of the
 * log config, e.g. min.insync.replicas and unclean.leader.election.enable:
 *   stream_config_topic_int(broker_cfg, t->overrides, STREAM_CONFIG_MIN_INSYNC_REPLICAS)
 * 0 for an id out of range. */
int64_t stream_config_topic_int(const stream_config *broker, const stream_config *topic,
                                stream_config_id id);

/* The default data directory: $STREAM_DATA_DIR when set and not empty, else
 * $XDG_DATA_HOME/stream when that is an absolute path, else
 * $HOME/.local/share/stream (HOME from the password database when unset).
 * Errors: STREAM_ENOENT (no home directory), STREAM_EINVAL (buf too small). */
int stream_config_default_data_dir(char *buf, size_t len);
/* The data directory of a broker config: `data.dir` when not empty (a leading
 * `~/` is the home directory), else stream_config_default_data_dir. Errors as
 * above. */
int stream_config_data_dir(const stream_config *cfg, char *buf, size_t len);

#endif /* STREAM_CONFIG_H */
