/*
 * proc.h - the processor's plumbing: records of a consumer group go through
 * a command (a Unix filter) and its output lines become records of another
 * topic, with the group's offsets committed only after those records are
 * acknowledged (at-least-once, stream-proc(1)).
 *
 * One run of the command per batch, not a long-lived coprocess
 * -------------------------------------------------------------
 * Ordinary filters (grep, jq -c, awk, tr, sed) buffer their output when it
 * is a pipe, drop lines (grep), merge or split them (awk), and say nothing
 * about which input line an output line came from. With a coprocess there is
 * no moment at which "every output of the records up to offset N" is known:
 * the outputs of record N may sit in the filter's stdio buffer until
 * thousands of later records push them out, or until it exits. So each batch
 * is one run: the batch's records are written to the command's standard
 * input, standard input is closed, standard output is read to its end, and
 * the exit status is collected. At that moment every output of the batch is
 * in hand, and a status other than 0 (or a run past the timeout, or output
 * that is not a record) fails the batch before any of its output is
 * published. A batch is what the consumer has ready, up to max_records, so
 * a quiet topic is processed record by record and a busy one in large
 * batches whose fork+exec costs little per record.
 *
 * Keys: a record's output keeps the record's key (keep_key), so per-key
 * order holds end to end (the producer partitions by key). Output lines do
 * not say which record they came from, so records are run in groups of one
 * key: a batch is split by key (stable: each key's records in offset order)
 * and each key gets a run of its own. Many keys per batch mean many runs;
 * with decode set (JSON envelopes out) the command sets keys itself and a
 * batch is one run; without keep_key the outputs have no key and a batch is
 * one run.
 *
 * Offsets: the outputs of a batch are produced once all its runs succeeded.
 * A batch counts as processed once every one of its outputs is acknowledged
 * (and every earlier batch is processed): then the offsets after its last
 * record, per partition, are stored in the consumer, whose auto-commit
 * (and close) commits them. So committed offsets are never ahead of what
 * is in the output topic, and a crash at any moment costs a replay of the
 * batches in flight: their outputs appear again (at-least-once). Batches
 * are pipelined: the next one runs while the last one's outputs are being
 * acknowledged (at most MAX_PENDING batches wait).
 *
 * The caller owns the consumer (subscribed to the group, auto_store off),
 * its client, and the producer's client; it must ignore SIGPIPE (a command
 * that stops reading early, like `head -1`, is not an error), must leave
 * SIGCHLD at its default (the command's exit status is needed), and should
 * give the producer a client of its own (see client.h: a long-polling fetch
 * delays answers on its connection). The command's standard error is ours.
 */
#ifndef STREAM_PROC_H
#define STREAM_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"
#include "stream/client.h"

/* Appends the command's input for one record (ev->type is RECORD) to out.
 * Returns 0 or a negative code with errbuf. */
typedef int (*stream_proc_encode_fn)(void *arg, const stream_consumer_event *ev, stream_buf *out,
                                     char *errbuf, size_t errbuf_len);

/* Turns one output line (without its "\n") into the record to publish: sets
 * rec's key, value, headers, partition (STREAM_PARTITION_ANY or >= 0) and
 * timestamp (0: now), borrowing from line or from arg's memory until the
 * next call. Returns 0, 1 to skip the line (a blank one), or a negative code
 * with errbuf saying what is wrong with it. */
typedef int (*stream_proc_decode_fn)(void *arg, const uint8_t *line, size_t len,
                                     stream_producer_record *rec, char *errbuf,
                                     size_t errbuf_len);

typedef struct stream_proc_conf {
    char *const *argv;              /* the command and its arguments (NULL-terminated);
                                       found on $PATH; borrowed */
    const char *in_topic;           /* the topic the consumer is subscribed to */
    const char *out_topic;          /* where outputs go */
    stream_consumer *consumer;      /* subscribed, auto_store off; borrowed */
    stream_client *consumer_client; /* the consumer's client, polled during runs so
                                       heartbeats go on; borrowed */
    stream_producer *producer;      /* made with stream_proc_on_delivery as on_delivery
                                       and the stream_proc as its opaque; borrowed */
    stream_proc_encode_fn encode;   /* required */
    stream_proc_decode_fn decode;   /* NULL: each output line is a value */
    void *codec_arg;                /* passed to encode and decode */
    bool keep_key;                  /* outputs keep their records' key (lines only) */
    size_t max_records;             /* records per batch; default 10000 */
    size_t max_input_bytes;         /* command input per batch; default 4 MiB (a single
                                       larger record is a batch of its own) */
    size_t max_record_bytes;        /* longest output line; default 1 MiB */
    size_t max_output_bytes;        /* output of one batch; default 64 MiB */
    int timeout_ms;                 /* one run's limit; default 60000 */
    volatile sig_atomic_t *stop;    /* non-zero: finish (a run in progress is killed, its
                                       batch not counted); may be NULL */
} stream_proc_conf;

/* Counters of a run (stream-proc -v). */
typedef struct stream_proc_stats {
    uint64_t records;  /* input records processed (their outputs acknowledged) */
    uint64_t outputs;  /* output records acknowledged */
    uint64_t batches;  /* batches processed */
    uint64_t runs;     /* runs of the command that succeeded */
} stream_proc_stats;

typedef struct stream_proc stream_proc;

/* Fills conf's numbers with the defaults above (pointers NULL). */
void stream_proc_conf_init(stream_proc_conf *conf);

/* Creates a processor for conf (copied; what it points to is borrowed).
 * Returns 0, STREAM_EINVAL (errbuf names the field), STREAM_ENOMEM. The
 * producer may be created after this, with *out as its opaque. */
int stream_proc_new(const stream_proc_conf *conf, stream_proc **out, char *errbuf,
                    size_t errbuf_len);

/* Sets the producer (conf->producer may be NULL at _new). */
void stream_proc_set_producer(stream_proc *pr, stream_producer *p);

/* The producer's delivery callback: opaque is the stream_proc. */
void stream_proc_on_delivery(stream_producer *p, const stream_delivery *d, void *opaque);

/* Processes batches until the consumer is done (stop_at_end: every held
 * partition at its end), *stop is set, or something fails; then waits for
 * the outputs in flight (up to the producer's delivery timeout) and stores
 * the offsets of every batch fully acknowledged. The caller then closes the
 * consumer with a commit: what is stored never goes past the last good
 * batch, also after a failure. Returns 0, or with errbuf:
 *   STREAM_EIO        the command exited with a status other than 0, was
 *                     killed by a signal, or could not be started,
 *   STREAM_ETIMEDOUT  a run took longer than timeout_ms (it was killed),
 *   STREAM_ETOOLARGE  an output line over max_record_bytes, or a batch's
 *                     output over max_output_bytes,
 *   decode's error    an output line that is not a record,
 *   a delivery error  an output the broker did not take,
 *   a consumer error  (a partition failed, the group refused us),
 *   STREAM_ENOMEM. */
int stream_proc_run(stream_proc *pr, char *errbuf, size_t errbuf_len);

/* Copies the counters. */
void stream_proc_stats_get(const stream_proc *pr, stream_proc_stats *out);

/* Frees the processor (after the producer: it may still report). NULL is a
 * no-op. */
void stream_proc_free(stream_proc *pr);

#endif /* STREAM_PROC_H */
