/*
 * proto.h - the native protocol's codec: frames, MessagePack maps, op names,
 * broker addresses. Shared by the broker and the client.
 *
 * The main header of libstream/proto/ (proto.c, and partition.c behind
 * partition.h): the wire codec and the partitioner, what the broker and the
 * clients have in common; above log/ (topic names are the store's), below
 * both of them.
 *
 * The wire format is specified in share/doc/protocol.md (the contract for
 * clients in other languages); this header is the C side of it. In short:
 *
 *   frame := length (4 bytes, big-endian uint32, = N) | payload (N bytes)
 *   payload := exactly one MessagePack map, 1 <= N <= the receiver's maximum
 *
 *   request  {op: str, id: uint >= 1, ...op fields}
 *   response {id: uint (echoed), err: int (0 or a code from error.h, made
 *             positive), msg: str (only when err != 0), ...op fields}
 *
 * Four layers, each usable alone:
 *
 *   stream_frame_reader  bytes from a socket -> whole frames (borrowed views)
 *   stream_msg           one frame's payload -> a msgpack_object tree, checked
 *                        for shape (one map, no trailing bytes, bounded depth
 *                        and object count) before msgpack-c allocates anything
 *   stream_field_*       typed, bounds-checked reads of a map's fields that
 *                        name the missing or mistyped field in errbuf
 *   stream_frame         writing: length placeholder, a msgpack_packer that
 *                        appends to a stream_buf, length patched at the end
 *
 * Borrowing, the rule every user must know: a frame returned by
 * stream_frame_reader_next points into the reader's buffer, and the
 * msgpack_object tree stream_msg_parse builds points into that frame (str,
 * bin and ext bodies are not copied). Such pointers are valid until the next
 * stream_frame_reader_feed / _prepare / _release on that reader, or the next
 * stream_msg_parse / stream_msg_release on that msg, whichever comes first.
 * Copy whatever must outlive the request (topic names kept in a table,
 * records parked on a wait queue).
 *
 * Errors: functions return 0 (or 1 where documented) or a negative STREAM_E*
 * code; human detail goes to errbuf (may be NULL), written only on failure.
 * Frame and parse errors (STREAM_EPROTO, STREAM_ETOOLARGE) are fatal for the
 * connection; field errors (STREAM_EBADREQ) fail one request. A client
 * decoding a *response* with the stream_field_* accessors should treat their
 * STREAM_EBADREQ as STREAM_EPROTO (the broker sent something malformed).
 *
 * No function here does I/O, prints, or keeps global state.
 */
#ifndef STREAM_PROTO_H
#define STREAM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "stream/buf.h"
#include "stream/store.h" /* topic names: STREAM_TOPIC_NAME_MAX, stream_topic_name_check */

/* ---- constants (all part of the specification) -------------------------- */

/* The highest version this code speaks (2: groups, 3: cluster, 4: create_partitions). */
#define STREAM_PROTOCOL_VERSION  4
#define STREAM_DEFAULT_PORT      9292 /* 9092 stays free for a Kafka listener */
#define STREAM_FRAME_HEADER_SIZE 4

/* Broker defaults, Kafka's values and names. */
#define STREAM_DEFAULT_MAX_FRAME_BYTES   104857600 /* socket.request.max.bytes */
#define STREAM_DEFAULT_MAX_MESSAGE_BYTES 1048588   /* max.message.bytes, per batch */

/* Defaults for optional request fields (Kafka's client defaults). */
#define STREAM_DEFAULT_PRODUCE_ACKS        (-1)     /* acks = all */
#define STREAM_DEFAULT_PRODUCE_TIMEOUT_MS  30000    /* request.timeout.ms */
#define STREAM_DEFAULT_FETCH_MAX_WAIT_MS   500      /* fetch.max.wait.ms */
#define STREAM_DEFAULT_FETCH_MIN_BYTES     1        /* fetch.min.bytes */
#define STREAM_DEFAULT_FETCH_MAX_BYTES     52428800 /* fetch.max.bytes */
#define STREAM_DEFAULT_PARTITION_MAX_BYTES 1048576  /* max.partition.fetch.bytes */

/* list_offsets timestamps with a special meaning. */
#define STREAM_OFFSET_EARLIEST (-2)
#define STREAM_OFFSET_LATEST   (-1)

/* Consumer groups (protocol version 2, share/doc/protocol.md 6.10). */
#define STREAM_GROUP_NAME_MAX                249
#define STREAM_GROUP_MEMBER_ID_MAX           128  /* bytes of a broker-made member id */
#define STREAM_GROUP_CLIENT_ID_MAX           255  /* bytes of join_group's client_id */
#define STREAM_GROUP_PATTERN_MAX             1024 /* bytes of a subscription pattern */
#define STREAM_GROUP_METADATA_MAX            4096 /* bytes of a commit's metadata */
#define STREAM_GROUP_DEFAULT_SESSION_TIMEOUT_MS 10000
#define STREAM_GROUP_DEFAULT_REBALANCE_TIMEOUT_MS 60000
#define STREAM_GROUP_HEARTBEAT_MAX_MS        3000 /* heartbeat interval cap */
#define STREAM_GROUP_RECONCILE_HEARTBEAT_MS  200  /* interval while reconciling */
#define STREAM_OFFSETS_TOPIC                 "__consumer_offsets"
#define STREAM_OFFSETS_KEY_VERSION           1    /* first element of a record key */
#define STREAM_GROUP_META_KEY_VERSION        2    /* ... of a group's membership record */

/* Limits. A topic name matches [a-zA-Z0-9._-]{1,249} and is not "." or "..";
 * names starting "__" are internal (created by the broker itself). The
 * grammar is the store's (store.h: STREAM_TOPIC_NAME_MAX,
 * stream_topic_name_check, stream_topic_is_internal): one for the wire and
 * the disk. */
#define STREAM_MAX_PARTITIONS 10000 /* per topic, in protocol version 1 */
#define STREAM_STRMAP_MAX     1024  /* entries in a str->str map (configs, set) */

/* Shape limits applied by stream_msg_parse (defaults of stream_msg fields). */
#define STREAM_MSG_DEFAULT_MAX_DEPTH   16      /* the top-level map is depth 1 */
#define STREAM_MSG_DEFAULT_MAX_OBJECTS 1048576 /* msgpack objects per message */
#define STREAM_MSG_MAX_DEPTH_LIMIT     32      /* msgpack-c's own parse stack */

/* ---- operations ---------------------------------------------------------- */

/*
 * X(NAME, "wire name", since_version). since_version 0 marks a name reserved
 * for a later version: known, but answered STREAM_EUNKNOWNOP until a version
 * that defines it is negotiated. Append only; the enum value is not on the wire.
 */
#define STREAM_OP_MAP(X)                                                                           \
    X(HELLO, "hello", 1)                                                                           \
    X(METADATA, "metadata", 1)                                                                     \
    X(CREATE_TOPICS, "create_topics", 1)                                                           \
    X(DELETE_TOPICS, "delete_topics", 1)                                                           \
    X(DESCRIBE_CONFIGS, "describe_configs", 1)                                                     \
    X(ALTER_CONFIGS, "alter_configs", 1)                                                           \
    X(PRODUCE, "produce", 1)                                                                       \
    X(FETCH, "fetch", 1)                                                                           \
    X(LIST_OFFSETS, "list_offsets", 1)                                                             \
    X(JOIN_GROUP, "join_group", 2)                                                                 \
    X(HEARTBEAT, "heartbeat", 2)                                                                   \
    X(LEAVE_GROUP, "leave_group", 2)                                                               \
    X(COMMIT_OFFSETS, "commit_offsets", 2)                                                         \
    X(FETCH_OFFSETS, "fetch_offsets", 2)                                                           \
    X(LIST_GROUPS, "list_groups", 2)                                                               \
    X(DESCRIBE_GROUP, "describe_group", 2)                                                         \
    X(DELETE_GROUP, "delete_group", 2)                                                             \
    X(RESET_OFFSETS, "reset_offsets", 2)                                                           \
    X(INIT_PRODUCER_ID, "init_producer_id", 2)                                                     \
    X(DESCRIBE_CLUSTER, "describe_cluster", 3)                                                     \
    X(REGISTER_BROKER, "register_broker", 3)                                                       \
    X(BROKER_HEARTBEAT, "broker_heartbeat", 3)                                                     \
    X(ALTER_ISR, "alter_isr", 3)                                                                   \
    X(OFFSET_FOR_LEADER_EPOCH, "offset_for_leader_epoch", 3)                                       \
    X(FIND_COORDINATOR, "find_coordinator", 3)                                                     \
    X(FETCH_METADATA, "fetch_metadata", 3)                                                         \
    X(CREATE_PARTITIONS, "create_partitions", 4)                                                   \
    X(STATS, "stats", 4)

typedef enum stream_op {
    STREAM_OP_UNKNOWN = 0,
#define STREAM__OP_ENUM(name, wire, since) STREAM_OP_##name,
    STREAM_OP_MAP(STREAM__OP_ENUM)
#undef STREAM__OP_ENUM
        STREAM_OP__COUNT
} stream_op;

/* The op for a wire name (not NUL-terminated, as borrowed from a frame);
 * STREAM_OP_UNKNOWN when the name is not in the table. */
stream_op stream_op_from_name(const char *name, size_t len);
/* The wire name of op; "unknown" for STREAM_OP_UNKNOWN or out-of-range. */
const char *stream_op_name(stream_op op);
/* The protocol version that introduced op, 0 for reserved names and unknown
 * ops. A broker answers STREAM_EUNKNOWNOP unless 1 <= since <= negotiated. */
int stream_op_since_version(stream_op op);

/* True for codes a client may retry after a pause (and a metadata refresh):
 * ETIMEDOUT, ENOTLEADER, EAGAIN, ECLOSED, ECONNREFUSED, ECONNRESET,
 * ENOTCOORDINATOR (after finding the coordinator again). */
bool stream_err_retriable(int err);

/* ---- reading frames ------------------------------------------------------ */

/*
 * Turns a byte stream into frames. Each 4-byte length is checked as soon as
 * it arrives, before any of its payload is buffered: 0 is STREAM_EPROTO,
 * above max_frame_bytes is STREAM_ETOOLARGE. After an error the reader is
 * stuck (every feed/prepare/commit returns it); frames completed before the
 * bad length can still be taken with _next, which then returns the error.
 *
 * Memory: the buffer holds only bytes not yet returned by _next, compacted on
 * each feed/prepare, and shrinks back after a large frame has been consumed.
 * It grows only as bytes are fed, never on the promise of a length, so a peer
 * announcing a 100 MB frame and sending nothing costs nothing. A caller that
 * stops taking frames (backpressure) should stop reading the socket once
 * stream_frame_reader_pending() passes its bound.
 *
 * Two ways in: _feed copies a chunk; _prepare/_commit let libuv read straight
 * into the buffer (alloc_cb calls prepare, read_cb calls commit):
 *
 *   static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
 *       uint8_t *p; size_t n;
 *       if (stream_frame_reader_prepare(&c->fr, hint, &p, &n) < 0) { *b = uv_buf_init(NULL, 0);
 * return; } *b = uv_buf_init((char *)p, n);
 *   }
 *   static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
 *       if (nread > 0) rc = stream_frame_reader_commit(&c->fr, nread, eb, sizeof eb);
 *       while ((rc = stream_frame_reader_next(&c->fr, &p, &n)) == 1)
 *           handle(p, n);                    // views valid until next prepare
 *       if (rc < 0) close_with_error(rc, eb);
 *   }
 */
typedef struct stream_frame_reader {
    /* private */
    uint8_t *data;   /* owned buffer */
    size_t cap;      /* bytes allocated at data */
    size_t start;    /* first byte not yet returned by _next */
    size_t len;      /* bytes held: data[start..len) are pending */
    size_t scan;     /* offset of the next length prefix not yet checked; may be
                        > len while a checked frame is still arriving */
    size_t prepared; /* free bytes handed out by the last _prepare */
    size_t keep;     /* a buffer up to this size is kept when it empties
                        (stream_frame_reader_keep) */
    /* read-only */
    size_t max_frame_bytes; /* largest payload accepted */
    int err;                /* 0, or the sticky error (EPROTO/ETOOLARGE/ENOMEM) */
    uint32_t refused_len;   /* the length prefix that caused err, if any */
} stream_frame_reader;

/* Initialises an empty reader (no allocation) accepting payloads of 1 to
 * max_frame_bytes bytes (clamped to UINT32_MAX). */
void stream_frame_reader_init(stream_frame_reader *fr, size_t max_frame_bytes);
/* Frees the buffer; the reader may be initialised again. */
void stream_frame_reader_release(stream_frame_reader *fr);
/* A buffer that grew past `bytes` for a large frame is given back (shrunk)
 * by _feed and _prepare once it is mostly empty again; one up to `bytes` is
 * kept. The default, 256 KiB, gives memory back at once. A reader fed a
 * stream of large frames keeps more: shrinking after each 1 MiB frame and
 * growing again for the next costs more than the frame itself (fresh pages,
 * and the copies of each doubling); its owner then calls _trim when the
 * stream goes quiet. */
void stream_frame_reader_keep(stream_frame_reader *fr, size_t bytes);
/* Gives back a buffer over 256 KiB that is mostly empty, whatever _keep
 * said. Invalidates views from _next and the space of the last _prepare
 * (a _commit after it is STREAM_EINVAL). */
void stream_frame_reader_trim(stream_frame_reader *fr);

/* Copies n bytes in and checks any length prefixes they complete. Returns 0,
 * STREAM_EPROTO (zero length), STREAM_ETOOLARGE (length over the maximum),
 * STREAM_ENOMEM, or the earlier sticky error. On a bad length no byte after
 * that prefix is buffered. Invalidates views from _next. */
int stream_frame_reader_feed(stream_frame_reader *fr, const void *p, size_t n, char *errbuf,
                             size_t errbuf_len);

/* Makes room for at least `want` more bytes (want 0 means 64 KiB) and points
 * *p at free space of *avail >= want bytes inside the buffer, for the caller
 * to fill and then _commit. Returns 0, STREAM_ENOMEM or the sticky error.
 * Invalidates views from _next. */
int stream_frame_reader_prepare(stream_frame_reader *fr, size_t want, uint8_t **p, size_t *avail);
/* Accepts n bytes written at the space from the last _prepare (n <= avail).
 * Same checks and errors as _feed; n > avail is STREAM_EINVAL. Does not move
 * any buffered byte, so views from _next stay valid. */
int stream_frame_reader_commit(stream_frame_reader *fr, size_t n, char *errbuf, size_t errbuf_len);

/* Takes the next whole frame: returns 1 and points *payload and *len at its
 * payload (length prefix excluded; borrowed, valid until the next
 * feed/prepare/release), 0 when no whole frame is buffered, or the sticky
 * error once every frame before the bad length has been taken. */
int stream_frame_reader_next(stream_frame_reader *fr, const uint8_t **payload, size_t *len);

/* Bytes buffered and not yet returned by _next (for backpressure). */
size_t stream_frame_reader_pending(const stream_frame_reader *fr);

/* ---- decoding a payload -------------------------------------------------- */

/*
 * One decoded message. The object tree lives in `zone`, which is cleared and
 * reused by the next parse, so a connection decoding request after request
 * allocates only when a message is bigger than any before it.
 */
typedef struct stream_msg {
    /* public: limits, set after _init if the defaults do not fit */
    int max_depth;      /* nesting allowed; the top-level map is 1 (<= 32) */
    size_t max_objects; /* msgpack objects allowed (bounds the zone's size) */
    /* read-only */
    msgpack_object root; /* the top-level map after a successful parse */
    bool valid;          /* root holds a parsed map */
    /* private */
    msgpack_zone zone; /* where msgpack-c puts the objects */
    bool zone_ready;   /* zone was initialised (lazily, on first parse) */
} stream_msg;

/* Initialises with the default limits; allocates nothing. */
void stream_msg_init(stream_msg *msg);
/* Frees the zone; the objects of the last parse become invalid. */
void stream_msg_release(stream_msg *msg);

/*
 * Decodes one payload into msg->root. First a scan with no allocation checks
 * that the bytes are exactly one well-formed MessagePack object, that it is a
 * map, that nesting stays within max_depth, that the object count stays
 * within max_objects and that no container announces more elements than
 * bytes remain; only then does msgpack-c unpack it, so its allocations are
 * bounded by the payload's size. Errors: STREAM_EPROTO (empty, malformed or
 * truncated MessagePack, trailing bytes, not a map, too deep), STREAM_ETOOLARGE
 * (too many objects), STREAM_ENOMEM. errbuf names the byte offset. The
 * previous parse's objects are invalidated even on failure.
 */
int stream_msg_parse(const uint8_t *payload, size_t len, stream_msg *msg, char *errbuf,
                     size_t errbuf_len);
/* The same for a payload whose one object may be of any type (an array, as
 * the keys of __consumer_offsets records are): the same bounds, and
 * msg->root is that object. */
int stream_msg_parse_object(const uint8_t *payload, size_t len, stream_msg *msg, char *errbuf,
                            size_t errbuf_len);

/*
 * Reads a request's header fields (broker side). Returns:
 *   0                  *id and *op set; op is known (it may still be reserved:
 *                      check stream_op_since_version)
 *   STREAM_EUNKNOWNOP  *id set, *op = STREAM_OP_UNKNOWN; answer with this id
 *   STREAM_EBADREQ     *id set, `op` missing or not a str; answer with this id
 *   STREAM_EPROTO      `id` missing, not a uint, or 0: the request cannot be
 *                      answered; send the connection-level error (id 0), close
 */
int stream_msg_request(const stream_msg *msg, uint64_t *id, stream_op *op, char *errbuf,
                       size_t errbuf_len);

/*
 * Reads a response's header fields (client side): *id, *err as a library
 * code (the wire value negated: 0 or negative; codes unknown to this build
 * are passed through and stream_strerror says "unknown error"), and *text /
 * *text_len, the `msg` field (borrowed; NULL/0 when absent). Returns 0 or STREAM_EPROTO when id
 * or err is missing or mistyped. A response with id 0 is the broker's
 * connection-level error: the connection is about to close.
 */
int stream_msg_response(const stream_msg *msg, uint64_t *id, int *err, const char **text,
                        size_t *text_len, char *errbuf, size_t errbuf_len);

/* ---- typed field access -------------------------------------------------- */

/*
 * Every accessor takes a map object and a key, and returns 0 or
 * STREAM_EBADREQ with errbuf naming the field ("field 'partition' must be an
 * integer, got str"). Rules shared with the specification:
 *   - A key that occurs twice: the first occurrence counts.
 *   - nil is the same as absent. Required accessors fail on absent; _opt
 *     accessors return the default (or NULL) for absent.
 *   - Integers: any MessagePack int encoding; floats are never integers.
 *     Range violations are EBADREQ naming the field and range.
 *   - str and bin are distinct: a bin where a str is due is an error.
 *   - Strings and bins are borrowed from the payload (see the top).
 * `map` itself must be a map object, else every field is "missing".
 */

/* The value of key in map (first occurrence), or NULL when absent, nil, or
 * map is not a map. */
const msgpack_object *stream_field_find(const msgpack_object *map, const char *key);

int stream_field_int(const msgpack_object *map, const char *key, int64_t min, int64_t max,
                     int64_t *out, char *errbuf, size_t errbuf_len);
int stream_field_int_opt(const msgpack_object *map, const char *key, int64_t min, int64_t max,
                         int64_t dflt, int64_t *out, char *errbuf, size_t errbuf_len);
int stream_field_uint(const msgpack_object *map, const char *key, uint64_t max, uint64_t *out,
                      char *errbuf, size_t errbuf_len);
int stream_field_uint_opt(const msgpack_object *map, const char *key, uint64_t max, uint64_t dflt,
                          uint64_t *out, char *errbuf, size_t errbuf_len);
int stream_field_bool(const msgpack_object *map, const char *key, bool *out, char *errbuf,
                      size_t errbuf_len);
int stream_field_bool_opt(const msgpack_object *map, const char *key, bool dflt, bool *out,
                          char *errbuf, size_t errbuf_len);
/* *p is not NUL-terminated and may contain NUL bytes. _opt gives NULL/0. */
int stream_field_str(const msgpack_object *map, const char *key, const char **p, size_t *len,
                     char *errbuf, size_t errbuf_len);
int stream_field_str_opt(const msgpack_object *map, const char *key, const char **p, size_t *len,
                         char *errbuf, size_t errbuf_len);
/* A bin may be empty (*len 0, *p possibly NULL). _opt gives NULL/0. */
int stream_field_bin(const msgpack_object *map, const char *key, const uint8_t **p, size_t *len,
                     char *errbuf, size_t errbuf_len);
int stream_field_bin_opt(const msgpack_object *map, const char *key, const uint8_t **p, size_t *len,
                         char *errbuf, size_t errbuf_len);
/* *out is the array or map object (use ->via.array / ->via.map); _opt gives
 * NULL when absent or nil. */
int stream_field_array(const msgpack_object *map, const char *key, const msgpack_object **out,
                       char *errbuf, size_t errbuf_len);
int stream_field_array_opt(const msgpack_object *map, const char *key, const msgpack_object **out,
                           char *errbuf, size_t errbuf_len);
int stream_field_map(const msgpack_object *map, const char *key, const msgpack_object **out,
                     char *errbuf, size_t errbuf_len);
int stream_field_map_opt(const msgpack_object *map, const char *key, const msgpack_object **out,
                         char *errbuf, size_t errbuf_len);
/* A map whose keys and values are all str with no key twice (configs, set):
 * EBADREQ otherwise, naming the entry. _opt gives NULL when absent or nil. */
int stream_field_strmap(const msgpack_object *map, const char *key, const msgpack_object **out,
                        char *errbuf, size_t errbuf_len);
int stream_field_strmap_opt(const msgpack_object *map, const char *key, const msgpack_object **out,
                            char *errbuf, size_t errbuf_len);

/* Element i (< size) of an array object, which must be a map / a str.
 * EBADREQ names it as "<array_name>[i]". */
int stream_elem_map(const msgpack_object *array, size_t i, const char *array_name,
                    const msgpack_object **out, char *errbuf, size_t errbuf_len);
int stream_elem_str(const msgpack_object *array, size_t i, const char *array_name, const char **p,
                    size_t *len, char *errbuf, size_t errbuf_len);

/* True when a str (p, len) equals the C string s. */
bool stream_str_eq(const char *p, size_t len, const char *s);

/* Checks a consumer group name (protocol version 2): the topic name grammar,
 * [a-zA-Z0-9._-]{1,249}, not "." or "..". Returns 0 or STREAM_EBADGROUP with
 * errbuf saying which rule failed. */
int stream_group_name_check(const char *name, size_t len, char *errbuf, size_t errbuf_len);

/* create_partitions (protocol version 4, protocol.md 6.28), for the broker
 * and the controller alike. stream_grow_request checks the request's shape:
 * `topics` an array of {name: str, count: int32} maps, `validate_only` an
 * optional bool (*validate_only false when absent); 0 or STREAM_EBADREQ
 * with errbuf naming the field. stream_grow_entry reads entry i (name
 * borrowed from the frame) of a request that passed. stream_grow_count_check
 * says whether topic, with `current` partitions, may grow to `count`: 0, or
 * STREAM_EINVAL with the message the spec gives ("topic 'T' has 3
 * partitions; the new count of partitions must be larger, not 2"). */
int stream_grow_request(const msgpack_object *m, const msgpack_object **topics, bool *validate_only,
                        char *errbuf, size_t errbuf_len);
int stream_grow_entry(const msgpack_object *topics, uint32_t i, const char **name, size_t *len,
                      int64_t *count, char *errbuf, size_t errbuf_len);
int stream_grow_count_check(const char *topic, int32_t current, int64_t count, char *errbuf,
                            size_t errbuf_len);

/* ---- writing frames ------------------------------------------------------ */

/*
 * A frame under construction at the end of a stream_buf (which may already
 * hold earlier frames: a connection's whole output can be one buffer).
 *
 *   stream_frame f;
 *   stream_frame_start(&f, &out);
 *   stream_pack_response_header(&f.pk, id, 0, NULL, 2);   // id, err + 2 more
 *   stream_pack_kv_int(&f.pk, "base_offset", 42);
 *   stream_pack_kv_int(&f.pk, "log_start_offset", 0);
 *   rc = stream_frame_finish(&f);                         // patches the length
 *
 * Pack calls never fail individually: a failed allocation sets out->oom and
 * later writes are dropped, so finish reports it once. Map and array headers
 * carry element counts, so count fields before writing the header.
 */
typedef struct stream_frame {
    msgpack_packer pk; /* public: pack the payload with this */
    stream_buf *out;   /* private: borrowed; the frame is appended here */
    size_t start;      /* private: offset of the length prefix in out */
    bool was_oom;      /* private: out->oom when the frame was started */
} stream_frame;

/* Appends the 4-byte placeholder and sets up f->pk to append to out. */
void stream_frame_start(stream_frame *f, stream_buf *out);
/* Patches the length. Returns 0, STREAM_ENOMEM (an allocation failed), or
 * STREAM_EINVAL (empty payload) / STREAM_ETOOLARGE (payload > UINT32_MAX);
 * on any error the frame is removed from out (see _abort). */
int stream_frame_finish(stream_frame *f);
/* Drops the frame: out->len goes back to where _start found it (earlier
 * frames are kept; an oom flag set meanwhile is cleared only if out was
 * healthy before). */
void stream_frame_abort(stream_frame *f);

/* str / bin values. Lengths over UINT32_MAX cannot be framed; finish fails. */
void stream_pack_str(msgpack_packer *pk, const void *p, size_t len);
void stream_pack_cstr(msgpack_packer *pk, const char *s);
void stream_pack_bin(msgpack_packer *pk, const void *p, size_t len);

/* key/value pairs inside a map: the key as a str, then the value. */
void stream_pack_kv_int(msgpack_packer *pk, const char *key, int64_t v);
void stream_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v);
void stream_pack_kv_bool(msgpack_packer *pk, const char *key, bool v);
void stream_pack_kv_cstr(msgpack_packer *pk, const char *key, const char *v);
void stream_pack_kv_str(msgpack_packer *pk, const char *key, const void *p, size_t len);
void stream_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t len);
void stream_pack_kv_nil(msgpack_packer *pk, const char *key);
/* Only the key: follow with the value (an array or map header, usually). */
void stream_pack_key(msgpack_packer *pk, const char *key);

/* A request map's header: map of (2 + extra_fields) entries, then "op" and
 * "id". The caller packs extra_fields more key/value pairs. */
void stream_pack_request_header(msgpack_packer *pk, stream_op op, uint64_t id, size_t extra_fields);
/* A response map's header: map of (stream_err_fields(err) + 1 + extra_fields)
 * entries, then "id", "err" and, when err != 0, "msg" (stream_strerror(err)
 * when msg is NULL). err is a library code (0 or negative); it goes on the
 * wire made positive. */
void stream_pack_response_header(msgpack_packer *pk, uint64_t id, int err, const char *msg,
                                 size_t extra_fields);
/* Pairs that stream_pack_err writes: 1 when err == 0, else 2. */
size_t stream_err_fields(int err);
/* The "err" pair and, when err != 0, the "msg" pair (for per-topic and
 * per-partition results). */
void stream_pack_err(msgpack_packer *pk, int err, const char *msg);

/* Appends a whole frame holding {id, err, msg}: the answer to a request that
 * failed as a whole, or (id 0) the connection-level error sent before a
 * close. Returns what stream_frame_finish returns. */
int stream_frame_error_response(stream_buf *out, uint64_t id, int err, const char *msg);

/* ---- broker addresses ---------------------------------------------------- */

/* One "host:port" from a broker list. */
typedef struct stream_hostport {
    char host[256]; /* NUL-terminated; a hostname, IPv4 or IPv6 literal
                       (without the brackets) */
    uint16_t port;  /* 1..65535 */
} stream_hostport;

/*
 * Parses one address of len bytes (not necessarily NUL-terminated):
 * "host", "host:port", "[v6]", "[v6]:port". A missing port means
 * default_port. Hosts are letters, digits, '-', '.', '_' (1..255 bytes);
 * bracketed IPv6 literals are hex digits, ':', '.', and an optional
 * "%zone". An unbracketed address with several ':' is refused (ambiguous:
 * write "[::1]:9292"). Returns 0 or STREAM_EINVAL with errbuf quoting the
 * input.
 */
int stream_parse_hostport(const char *s, size_t len, uint16_t default_port, stream_hostport *out,
                          char *errbuf, size_t errbuf_len);

/*
 * Parses a comma-separated list (as given to -b/--brokers or in
 * $STREAM_BROKERS): spaces and tabs around entries are ignored, as are empty
 * entries ("a:1,,b" and a trailing comma), but at least one address is
 * required. On success *out is a malloc'ed array of *count entries that the
 * caller frees with free(). Returns 0, STREAM_EINVAL (errbuf names the bad
 * entry), or STREAM_ENOMEM; *out is NULL and *count 0 on failure.
 */
int stream_parse_hostport_list(const char *s, uint16_t default_port, stream_hostport **out,
                               size_t *count, char *errbuf, size_t errbuf_len);

/* Writes "host:port", or "[host]:port" for an IPv6 literal, NUL-terminated
 * and truncated to buf_len. Returns the length it wanted (as snprintf). */
int stream_hostport_format(const stream_hostport *hp, char *buf, size_t buf_len);

#endif /* STREAM_PROTO_H */
