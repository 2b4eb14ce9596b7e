/*
 * quorum.h - the metadata quorum: a replicated log of opaque commands, applied
 * in the same order, with the same results, on every voter.
 *
 * A quorum is a few voters (3 or 5 in practice) that agree, through Raft, on
 * one sequence of commands. Each command is handed to a state machine (the
 * "fsm", stream__quorum_fsm below) once it is committed, on every voter, in log
 * order. The cluster metadata (libstream/cluster/metadata.h) is such a state
 * machine; this module knows nothing about what the commands mean.
 *
 * The engine is libraft (Debian libraft-dev 0.15), kept behind this interface:
 * nothing here names a raft type, and no file outside libstream/cluster/
 * includes raft.h (STYLE rule 20), so replacing the engine touches one folder.
 *
 * Invariants and promises:
 *   - Every voter applies the same commands in the same order and gets the
 *     same results, provided the fsm is deterministic: its result and its
 *     new state depend only on its old state, the command bytes and the
 *     index. (Never read the clock, a random source or local settings in
 *     apply; validate against local policy *before* proposing instead.)
 *   - A command is applied at most once per voter per start. After a restart
 *     the fsm is rebuilt from the last snapshot plus the log after it, so the
 *     fsm handed to stream__quorum_start must be empty.
 *   - A proposal's callback fires exactly once: with the command's result when
 *     this voter applied it, or with an error when the outcome is unknown here
 *     (leadership lost, quorum stopped). An error does NOT mean the command
 *     was dropped: a deposed leader's last commands may still be committed by
 *     the next leader. Callers therefore retry with the *same* request id and
 *     the state machine ignores a request id it has already applied
 *     (metadata.h does this).
 *   - A killed leader never answers its proposals; its clients must time out
 *     and retry against the new leader (same request id, see above).
 *
 * Threads: everything, including every callback, runs on the loop thread
 * given to stream__quorum_start. No function here may be called from another
 * thread; hand work over to the loop with your own uv_async_t and queue.
 *
 * Signals: the process must ignore SIGPIPE (the broker does): libuv writes
 * to sockets with write(2), and a peer that closes a connection in the middle
 * of a write would otherwise kill it.
 *
 * Errors: functions return 0 or a negative STREAM_E* code (error.h); calls a
 * user can get wrong take `char *errbuf, size_t errbuf_len`, written
 * (NUL-terminated) only on failure.
 *
 * libraft 0.15 facts this module is built around (measured on the Debian
 * package; each has a default or a mechanism below):
 *   - install_snapshot_timeout 30 s by default stalls a restarted follower's
 *     catch-up: default here 3 s.
 *   - snapshot threshold 1024 by default halves throughput: 8192 here, with
 *     trailing entries kept so a follower a little behind needs no snapshot.
 *   - pre-vote is off by default: on here (a node cut off and back does not
 *     depose a healthy leader).
 *   - no state-change callback: a uv timer polls the state every poll_ms.
 *   - the election timer is checked only on the tick, which is the heartbeat:
 *     a finer heartbeat (25 ms here) means fewer split votes after a crash.
 *   - apply must return 0 (a failed apply stalls the log): command results
 *     travel in the result, never as apply's return value.
 *   - transport addresses are IPv4 literals only: the voter parser says so.
 *   - a deposed or killed leader may never fire apply callbacks: this module
 *     keeps its own table of pending proposals and fails them itself.
 *   - entries of a batch are read back from disk as if each one's data were
 *     padded to 8 bytes: a restart read commands of other lengths shifted.
 *     quorum.c frames each command with its length and pads it (invisible
 *     here: apply gets the bytes proposed).
 *   - async snapshots need the FSM version 3 and io version 2: not used;
 *     metadata snapshots are small and taken synchronously (version 1).
 */
#ifndef STREAM_CLUSTER_QUORUM_H
#define STREAM_CLUSTER_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "stream/buf.h"

/* ---- limits and defaults ------------------------------------------------- */

/* Voters in one quorum. Every commit waits for a majority, so more voters
 * mean slower commits and elections; 9 tolerates 4 failures, more than any
 * metadata quorum needs (Kafka's KRaft advises 3 or 5). */
#define STREAM__QUORUM_MAX_VOTERS 9
/* Bytes of a cluster id: [A-Za-z0-9._-]{1,64} (Kafka's are 22-byte base64). */
#define STREAM__QUORUM_CLUSTER_ID_MAX 64
/* Largest command. Metadata commands are small; the biggest, create_topic
 * with 10,000 partitions of 3 replicas, is about 300 KB. */
#define STREAM__QUORUM_MAX_COMMAND_BYTES (4 * 1024 * 1024)

#define STREAM__QUORUM_DEFAULT_ELECTION_TIMEOUT_MS 300 /* libraft waits 1x to 2x this */
/* libraft 0.15 checks the election timer only on its tick, and the tick is
 * the heartbeat: at 50 ms a 300-600 ms timeout falls in one of 6 slots, so
 * two followers of a dead leader often time out in the same slot, split the
 * vote and need another round (measured: p90 of failover 750 ms, max 1.4 s).
 * At 25 ms, 12 slots: p90 610 ms, max under 1 s, for 40 instead of 20 empty
 * AppendEntries a second to each follower. At 10 ms (100 a second, no disk
 * write each) a commit also reaches the followers within 10 ms: the other
 * brokers learn a leader change that soon (a controlled shutdown's produce
 * stall went from about 130 to about 60 ms). */
#define STREAM__QUORUM_DEFAULT_HEARTBEAT_MS       10
#define STREAM__QUORUM_DEFAULT_SNAPSHOT_THRESHOLD 8192
/* Entries kept behind a snapshot: a follower that missed fewer than this
 * catches up from the log, not from a snapshot. As many as the threshold,
 * so the log held in memory peaks at 16,384 entries (a few MB of metadata
 * commands), and a voter that was down for 8,192 changes still needs no
 * snapshot. */
#define STREAM__QUORUM_DEFAULT_SNAPSHOT_TRAILING   8192
#define STREAM__QUORUM_DEFAULT_INSTALL_SNAPSHOT_MS 3000
#define STREAM__QUORUM_DEFAULT_CONNECT_RETRY_MS    250 /* libraft's own: 1000 */
#define STREAM__QUORUM_DEFAULT_POLL_MS             20

/* ---- configuration ------------------------------------------------------- */

/* One voter: its node id and the address its Raft transport listens on. */
typedef struct stream__quorum_voter {
    int32_t id;    /* node id, >= 1, unique among the voters */
    char host[16]; /* IPv4 dotted quad, NUL-terminated ("127.0.0.1") */
    uint16_t port; /* 1..65535 */
} stream__quorum_voter;

typedef struct stream__quorum_change stream__quorum_change;
typedef struct stream__quorum_who stream__quorum_who;

/* Called (on the loop thread) when a broker asks this voter who leads (see
 * "who leads" below): fills who->host and who->port with this node's client
 * address, and who->leader_host and who->leader_port with the client address
 * of node who->leader_id (set by the quorum, -1 when no leader is known)
 * when it is known (leave leader_port 0 otherwise). */
typedef void (*stream__quorum_who_cb)(void *arg, stream__quorum_who *who);

/* Called (on the loop thread) when the known leader or this node's role
 * changed; see stream__quorum_change. May call any function of this module,
 * stream__quorum_stop included. */
typedef void (*stream__quorum_change_cb)(void *arg, const stream__quorum_change *change);

typedef struct stream__quorum_config {
    int32_t node_id;                                      /* this node; must be one of the voters */
    stream__quorum_voter voters[STREAM__QUORUM_MAX_VOTERS]; /* every voter, this node included */
    size_t n_voters;                                      /* 1..STREAM__QUORUM_MAX_VOTERS */
    const char *data_dir;         /* Raft's files and cluster-id; created if missing (borrowed) */
    const char *cluster_id;       /* [A-Za-z0-9._-]{1,64}; see stream__quorum_start (borrowed) */
    unsigned election_timeout_ms; /* > heartbeat_ms; libraft randomises 1x..2x */
    unsigned heartbeat_ms;        /* leader's idle AppendEntries interval */
    unsigned snapshot_threshold;  /* applied entries between snapshots, >= 1 */
    unsigned snapshot_trailing;   /* entries kept behind a snapshot */
    unsigned install_snapshot_timeout_ms; /* an InstallSnapshot RPC counts as lost after this */
    unsigned connect_retry_ms;            /* pause between connection attempts to a peer */
    unsigned poll_ms;                     /* how often the state is polled for changes */
    bool pre_vote;                        /* Raft pre-vote (section 9.6 of the thesis) */
    stream__quorum_change_cb on_change;    /* may be NULL */
    void *change_arg;                     /* passed to on_change */
    stream__quorum_who_cb who;            /* answers "who leads"; NULL: the asker is closed */
    void *who_arg;                        /* passed to who */
} stream__quorum_config;

/* Fills cfg with the defaults above (pre_vote on), no voters, node_id 0 and
 * NULL strings: the caller sets node_id, voters, data_dir and cluster_id. */
void stream__quorum_config_init(stream__quorum_config *cfg);

/*
 * Parses a voter list, "1@127.0.0.1:9301,2@127.0.0.1:9302,3@127.0.0.1:9303"
 * (DESIGN.md's --cluster): comma-separated ID@IPV4:PORT entries; blanks
 * around entries and empty entries are ignored. Each id is 1..2147483647 and
 * appears once, as does each address; the host must be an IPv4 literal
 * (libraft's transport takes nothing else: "localhost" is refused with "use
 * an IPv4 address"). Writes up to `max` voters to out and their number to
 * *count. Returns 0, or STREAM_EINVAL with errbuf quoting the bad entry
 * (missing '@', bad id, duplicate id or address, missing or bad port,
 * non-IPv4 host, more than max voters, none at all); *count is 0 on failure.
 */
int stream__quorum_voters_parse(const char *s, stream__quorum_voter *out, size_t max, size_t *count,
                               char *errbuf, size_t errbuf_len);

/* ---- the state machine --------------------------------------------------- */

/*
 * What the quorum drives. All three run on the loop thread, never
 * concurrently, and must be deterministic (see the top).
 *
 * apply:    applies one committed command (`cmd`, `len` bytes, borrowed for
 *           the call) at log position `index` (increasing, not contiguous:
 *           Raft's own entries take indexes too; the same on every voter).
 *           Returns the command's result: 0, or a STREAM_E* code that is the
 *           command's verdict ("topic exists"), handed to the proposer. A
 *           verdict never stops the log. One exception: STREAM_ENOMEM means
 *           "could not apply for lack of memory, changed nothing"; the quorum
 *           then stops applying and retries this same command when the next
 *           entry commits (skipping it would make this voter diverge). So
 *           never return ENOMEM as a verdict.
 * snapshot: appends the whole state to `out` (at least one byte). Returns 0
 *           or a STREAM_E* code (the snapshot is then retried later).
 * restore:  replaces the whole state with a snapshot's bytes (borrowed for
 *           the call). The bytes come from disk or from the leader: validate
 *           everything. On failure the state must be left as it was; return
 *           a STREAM_E* code and say why in errbuf.
 */
typedef struct stream__quorum_fsm {
    void *arg; /* passed to every callback */
    int (*apply)(void *arg, const uint8_t *cmd, size_t len, uint64_t index);
    int (*snapshot)(void *arg, stream_buf *out);
    int (*restore)(void *arg, const uint8_t *p, size_t len, char *errbuf, size_t errbuf_len);
} stream__quorum_fsm;

/* ---- lifecycle ----------------------------------------------------------- */

typedef struct stream__quorum stream__quorum;

/*
 * Starts this node's voter on `loop` (which must outlive the quorum; run it
 * to make progress). In order:
 *   1. checks cfg (node_id among the voters, timeouts, cluster id grammar):
 *      STREAM_EBADCONFIG with errbuf saying what is wrong;
 *   2. creates data_dir (mkdir -p) and checks <data_dir>/cluster-id: when the
 *      file is missing and the directory holds nothing else, writes
 *      cfg->cluster_id to it (durably); when it names another cluster,
 *      refuses with STREAM_EBADCONFIG naming both ids; when it is missing but
 *      the directory holds other files, refuses with STREAM_EBADCONFIG (whose
 *      data would that be?);
 *   3. checks that this node's address can be listened on: STREAM_EIO with
 *      "... address already in use" (the caller may retry later) or "not an
 *      address of this machine";
 *   4. opens Raft's files in data_dir; when they are pristine, writes the
 *      initial configuration (every voter from cfg: each voter does the same
 *      and they agree on the first entry); replays the last snapshot into
 *      fsm->restore and starts. A failure here is STREAM_EIO (or the restore's
 *      own code) with libraft's message in errbuf.
 * fsm is copied; its arg must stay valid until stop's callback (the fsm may
 * still apply entries while stop waits for log writes in flight). cfg is
 * copied (its strings too). On success *out is the running quorum, to be
 * ended with stream__quorum_stop. On failure *out is NULL and no callback is
 * ever invoked; what was opened in step 4 is closed asynchronously, so run
 * the loop until it is idle before closing it.
 */
int stream__quorum_start(uv_loop_t *loop, const stream__quorum_config *cfg,
                        const stream__quorum_fsm *fsm, stream__quorum **out, char *errbuf,
                        size_t errbuf_len);

typedef void (*stream__quorum_stop_cb)(void *arg);

/*
 * Stops the node: fails every pending proposal with STREAM_ECLOSED (before
 * returning), waits for log writes already in flight (libraft 0.15 cannot
 * close in the middle of one; at most 5 s), then closes Raft, its files and
 * its connections, frees q, and calls cb(arg) (cb may be NULL) once
 * everything is closed. No proposal or change callback fires after stop
 * returns; the fsm may still apply committed entries until cb.
 * Call it once; q must not be used after. There is no hand-over of
 * leadership: to the other voters this is the same as a crash (what was
 * acknowledged is on disk: Raft syncs before it acknowledges), which makes
 * it the way tests "kill" a node.
 */
void stream__quorum_stop(stream__quorum *q, stream__quorum_stop_cb cb, void *arg);

/* ---- proposing ----------------------------------------------------------- */

/* status: 0 (applied here; result is the fsm's verdict for the command),
 * STREAM_ENOTLEADER (leadership was lost before this node applied it: the
 * outcome is unknown, retry with the same request id on the new leader),
 * STREAM_ECLOSED (the quorum was stopped), STREAM_ENOMEM or STREAM_EIO (the
 * log write failed; outcome unknown). result is 0 unless status is 0. */
typedef void (*stream__quorum_done_cb)(void *arg, int status, int result);

/*
 * Proposes a command (len bytes, copied; 1..STREAM__QUORUM_MAX_COMMAND_BYTES).
 * Only the leader proposes. Returns 0 (cb(arg, ...) will fire exactly once,
 * never from inside this call), or, without calling cb:
 *   STREAM_ENOTLEADER  this node is not the leader; stream__quorum_leader()
 *                      names the one it knows of (-1 while none is known)
 *   STREAM_ECLOSED     stop has been called
 *   STREAM_EINVAL      len is 0 or cb is NULL
 *   STREAM_ETOOLARGE   len is over STREAM__QUORUM_MAX_COMMAND_BYTES
 *   STREAM_ENOMEM, STREAM_EIO
 */
int stream__quorum_propose(stream__quorum *q, const void *cmd, size_t len, stream__quorum_done_cb cb,
                          void *arg);

/* ---- handing over -------------------------------------------------------- */

/*
 * Hands the leadership to the most up-to-date other voter (libraft's
 * transfer: it is told to start an election at once, so the others learn
 * what this leader committed within milliseconds instead of an election
 * timeout). Leader only; for a leader about to stop. Returns 0 (the
 * transfer is on, or already was; watch stream__quorum_is_leader), or
 * STREAM_ENOTLEADER, STREAM_ENOBROKER (no other voter), STREAM_ECLOSED.
 */
int stream__quorum_transfer(stream__quorum *q);

/* ---- observing ----------------------------------------------------------- */

/* What on_change reports. Fired by the poll timer when any of leader_id and
 * is_leader differs from the previous poll (a leader re-elected with a new
 * term counts as a change too); term is informative. */
struct stream__quorum_change {
    int32_t leader_id;          /* the known leader now, -1 when none is known */
    int32_t previous_leader_id; /* at the previous report, -1 when none was known */
    bool is_leader;             /* this node leads now */
    bool was_leader;            /* this node led at the previous report */
    uint64_t term;              /* the current Raft term */
};

/* The leader this node knows of (itself when leading), -1 when none. Read
 * straight from the engine, not from the last poll. */
int32_t stream__quorum_leader(const stream__quorum *q);
/* True when this node is the leader (according to itself: a leader cut off
 * from the others believes so until its election timeout expires). */
bool stream__quorum_is_leader(const stream__quorum *q);
/* The current Raft term (increases with each election). */
uint64_t stream__quorum_term(const stream__quorum *q);
/* The highest index known to be committed (0 before any). */
uint64_t stream__quorum_commit_index(const stream__quorum *q);
/* The index of the last entry applied to the fsm here (0 before any). */
uint64_t stream__quorum_applied_index(const stream__quorum *q);
/* This node's id. */
int32_t stream__quorum_node_id(const stream__quorum *q);

/* ---- who leads: asked by a broker outside the quorum ---------------------
 *
 * A data-only broker knows the voters' Raft addresses only (--cluster), not
 * their client ports, so it asks a voter on its Raft address. The voter's
 * transport (quorum.c wraps libraft's TCP transport) reads the first 8 bytes
 * of every connection it accepts:
 *
 *   01 00 00 00 00 00 00 00   libraft's handshake (protocol 1, little-endian
 *                             uint64), then the peer's id (uint64 LE), the
 *                             length of its address (uint64 LE, 1..512) and
 *                             the address (NUL-padded to 8 bytes): the
 *                             connection goes to Raft
 *   "STRMWHO1"                a question: the voter writes one line and
 *                             closes the connection:
 *
 *     STRMWHO1 <node_id> <host>:<port> <leader_id> <leader_host>:<leader_port>\n
 *
 *   node_id and host:port are the voter's own id and client address;
 *   leader_id is the controller it knows of (-1 when none) and its client
 *   address, "-" when not known. A host is 1..255 bytes without blanks;
 *   the port is the last ':' field. The line is at most
 *   STREAM__QUORUM_WHO_MAX bytes.
 *   anything else             the connection is closed.
 */
#define STREAM__QUORUM_WHO_MAGIC "STRMWHO1"
#define STREAM__QUORUM_WHO_MAX   600

struct stream__quorum_who {
    int32_t node_id;       /* the voter that answered */
    char host[256];        /* its client host (NUL-terminated) */
    uint16_t port;         /* its client port */
    int32_t leader_id;     /* the controller it knows of, -1: none */
    char leader_host[256]; /* the controller's client host, "" when not known */
    uint16_t leader_port;  /* its client port, 0 when not known */
};

/* Formats who as the answer line (with its newline) into out (out_len >=
 * STREAM__QUORUM_WHO_MAX). Returns the line's length, or STREAM_EINVAL when
 * a host is empty, too long or holds a blank. */
int stream__quorum_who_format(const stream__quorum_who *who, char *out, size_t out_len);

/* Parses an answer line (len bytes at p, the newline included or not).
 * Checks the magic, every number's range and each address's shape. Returns
 * 0 or STREAM_EBADREQ with errbuf saying what is wrong. */
int stream__quorum_who_parse(const uint8_t *p, size_t len, stream__quorum_who *out, char *errbuf,
                             size_t errbuf_len);

typedef struct stream__quorum_ask stream__quorum_ask;

/* The answer to stream__quorum_ask_who: status 0 with who (borrowed for the
 * call), or a STREAM_E* code (ECONNREFUSED, ETIMEDOUT, EBADREQ...) with a
 * message. */
typedef void (*stream__quorum_ask_cb)(void *arg, int status, const stream__quorum_who *who,
                                      const char *msg);

/* Asks the voter at v's Raft address who leads; cb fires once, from the
 * loop, unless the ask is cancelled first. *out is the ask (for cancel; it
 * is freed after cb). Returns 0, or an error (cb never fires). Needs no
 * running quorum. */
int stream__quorum_ask_who(uv_loop_t *loop, const stream__quorum_voter *v, uint64_t timeout_ms,
                           stream__quorum_ask_cb cb, void *arg, stream__quorum_ask **out);
/* Cancels an ask whose cb has not fired: cb never fires; freed once closed. */
void stream__quorum_ask_cancel(stream__quorum_ask *a);

#endif /* STREAM_CLUSTER_QUORUM_H */
