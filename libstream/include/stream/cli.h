/*
 * cli.h - what the command-line programs share beyond the client itself:
 * connecting with a message a user can act on, parsing the small option
 * values every program takes (acks, partition lists, headers), splitting
 * delimited input into records, and writing output that may go to a pipe.
 *
 * stream-pub, stream-sub and stream-shell all need these, and they must
 * behave the same in each (a `-p 0,2` or `-H a=b` means one thing
 * everywhere), so they live here rather than in cmd/. Nothing here prints;
 * errors come back as STREAM_E* codes with a sentence in errbuf, and the
 * program adds its name and exits.
 *
 * The splitter
 * ------------
 * stream_cli_splitter turns a byte stream (stdin) into records separated by
 * a delimiter of one or more bytes ("\n", "\0", "::"). Records are returned
 * as pointers into one reused input buffer (1 MiB to start), so the read
 * loop does no allocation per record; the buffer grows only for a record
 * longer than it, up to max_record_bytes. Rules, as `kcat -P` users expect:
 *
 *   - a delimiter ends a record; input that ends without one ends the last
 *     record ("a\nb" is two records, "a\nb\n" too, "a\n\n" is "a" and "");
 *   - empty records between delimiters are records (an empty line is an
 *     empty value), so text goes through stream-pub/stream-sub unchanged;
 *   - with no delimiter (delim_len 0) the whole input is one record, also
 *     when it is empty (stream-pub -l).
 *
 *   stream_cli_splitter s;
 *   stream_cli_splitter_init(&s, "\n", 1, 64 << 20);
 *   for (;;) {
 *       while ((rc = stream_cli_splitter_next(&s, &rec, &len, err, sizeof err)) == 1)
 *           publish(rec, len);                // borrowed until the next call
 *       if (rc < 0 || s.eof) break;           // rc < 0: a record over the limit
 *       if ((n = stream_cli_splitter_fill(&s, 0)) < 0 && n != STREAM_EAGAIN) fail;
 *   }
 *   stream_cli_splitter_release(&s);
 */
#ifndef STREAM_CLI_H
#define STREAM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/batch.h"
#include "stream/client.h"

/* ---- connecting ------------------------------------------------------------ */

/* Creates a client for the broker list `brokers` ("h:p,h:p"; NULL for the
 * default), named `client_name` in its hello, with connect and request
 * timeouts of timeout_ms (<= 0: the client's defaults), and connects to it
 * before returning so an unreachable broker is reported before any work
 * starts. On failure nothing is left allocated and errbuf holds one line for
 * the user: "cannot connect to 127.0.0.1:9292: connection refused (is
 * stream-broker running?)" — the hint is added for a refused connection.
 * Returns 0, STREAM_EINVAL (a bad broker list), STREAM_ECONNREFUSED,
 * STREAM_ETIMEDOUT, STREAM_EPROTO, STREAM_EIO, STREAM_ENOMEM. */
int stream_cli_connect(const char *brokers, const char *client_name, int timeout_ms,
                       stream_client **out, char *errbuf, size_t errbuf_len);

/* The same with every client setting from conf (brokers, name, TLS);
 * timeout_ms > 0 overrides its timeouts. Also STREAM_ETLS: the broker's
 * certificate did not verify, or it does not speak TLS (errbuf says
 * which). */
int stream_cli_connect_conf(const stream_client_conf *conf, int timeout_ms, stream_client **out,
                            char *errbuf, size_t errbuf_len);

/* ---- option values --------------------------------------------------------- */

/* Parses an acks setting: "0", "1", "all" or "-1" (both STREAM_ACKS_ALL).
 * Returns 0 with *out set, or STREAM_EINVAL with errbuf. */
int stream_cli_parse_acks(const char *s, int *out, char *errbuf, size_t errbuf_len);

/* A list of partition numbers, as -p gives them. */
typedef struct stream_cli_partitions {
    int32_t *ids; /* owned; ascending, no duplicates */
    size_t count; /* entries in ids */
} stream_cli_partitions;

/* Adds the partitions of a comma-separated list ("3", "0,2,5") to *list,
 * keeping it sorted and free of duplicates (so -p may be repeated). A list
 * starts zeroed ({0}) and is freed with stream_cli_partitions_release.
 * Returns 0, STREAM_EINVAL (errbuf names the bad entry: not a number, < 0,
 * > INT32_MAX, empty) or STREAM_ENOMEM; entries before a bad one may have
 * been added. */
int stream_cli_partitions_parse(stream_cli_partitions *list, const char *s, char *errbuf,
                                size_t errbuf_len);
void stream_cli_partitions_release(stream_cli_partitions *list);

/* Parses a header argument "name=value" into *out, splitting at the first
 * "=" (the value may contain more). "name" without "=" is a header with a
 * null value (how stream-sub's %h prints one); "name=" has an empty value.
 * *out borrows from s. An empty name is STREAM_EINVAL with errbuf. */
int stream_cli_parse_header(const char *s, stream_header *out, char *errbuf, size_t errbuf_len);

/* Splits p[0..len) at the first occurrence of delim[0..delim_len) into a key
 * (before) and a value (after). Returns true when found; false (outputs
 * untouched) when the delimiter does not occur. */
bool stream_cli_split_key(const uint8_t *p, size_t len, const uint8_t *delim, size_t delim_len,
                          const uint8_t **key, size_t *key_len, const uint8_t **value,
                          size_t *value_len);

/* ---- splitting input into records ------------------------------------------ */

#define STREAM_CLI_SPLITTER_CHUNK ((size_t)1 << 20) /* initial buffer, and read size */

typedef struct stream_cli_splitter {
    uint64_t records;        /* read-only: records returned so far */
    bool eof;                /* read-only: the input has ended (fill returned 0) */
    size_t max_record_bytes; /* public: a longer record is an error */
    uint8_t *buf;            /* private: input bytes, unconsumed from pos to len */
    size_t cap;              /* private: bytes allocated at buf */
    size_t pos;              /* private: start of the next record */
    size_t len;              /* private: end of the bytes read */
    size_t scanned;          /* private: bytes from pos known not to start a delimiter */
    uint8_t delim[16];       /* private: the record delimiter */
    size_t delim_len;        /* private: 0 = the whole input is one record */
    bool done;               /* private: the last record has been returned */
} stream_cli_splitter;

#define STREAM_CLI_DELIM_MAX 16 /* longest record delimiter */

/* Initialises a splitter (no allocation yet) for records separated by
 * delim[0..delim_len) (delim_len 0: the whole input is one record; at most
 * STREAM_CLI_DELIM_MAX bytes, longer is cut). max_record_bytes 0 means
 * 64 MiB. */
void stream_cli_splitter_init(stream_cli_splitter *s, const void *delim, size_t delim_len,
                              size_t max_record_bytes);
void stream_cli_splitter_release(stream_cli_splitter *s);

/* Reads once from fd into the buffer (making room first). Returns the bytes
 * read (> 0); 0 at end of input (and sets eof); STREAM_EAGAIN when
 * interrupted by a signal (EINTR) or when a non-blocking fd has nothing, so
 * the caller can check its flags and call again; STREAM_ENOMEM; or another
 * code mapped from errno (STREAM_EIO, ...) with errbuf "cannot read
 * standard input: ..." — fd names itself as "input" unless it is 0. */
int stream_cli_splitter_fill(stream_cli_splitter *s, int fd, char *errbuf, size_t errbuf_len);

/* Input that does not come from a file descriptor (an HTTP body: see
 * http_source.h) goes in through these three instead of fill: space makes
 * room (as fill does before its read) and points *p at *room free bytes
 * (> 0); commit adds the n <= *room bytes written there; end marks the end
 * of input (as fill returning 0). space returns 0 or STREAM_ENOMEM. */
int stream_cli_splitter_space(stream_cli_splitter *s, uint8_t **p, size_t *room);
void stream_cli_splitter_commit(stream_cli_splitter *s, size_t n);
void stream_cli_splitter_end(stream_cli_splitter *s);

/* Returns 1 with the next record in *rec and *len (borrowed: valid until the
 * next call on s), 0 when more input is needed or, after eof, when every
 * record has been returned, or STREAM_ETOOLARGE ("record 7 is longer than
 * 67108864 bytes") when a record passes max_record_bytes — sticky, since
 * nothing after it can be trusted to line up. */
int stream_cli_splitter_next(stream_cli_splitter *s, const uint8_t **rec, size_t *len, char *errbuf,
                             size_t errbuf_len);

/* ---- output ------------------------------------------------------------------ */

/* Writes all of p[0..len) to fd, retrying partial writes and EINTR (so a
 * signal never cuts a record in half). Returns 0, STREAM_ECLOSED when the
 * reader has gone (EPIPE: the program should exit quietly; SIGPIPE must be
 * ignored for this), or another code mapped from errno (STREAM_ENOSPC,
 * STREAM_EIO, ...) with errbuf "cannot write standard output: ...". */
int stream_cli_write_all(int fd, const void *p, size_t len, char *errbuf, size_t errbuf_len);

#endif /* STREAM_CLI_H */
