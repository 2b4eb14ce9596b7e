/*
 * http_source.h - the HTTP source of `stream-pub --url URL`: a GET whose body
 * is read as bytes (libcurl's multi interface), and the two parsers that turn
 * a body into records beside the line splitter of cli.h: Server-Sent Events
 * and the elements of one JSON array.
 *
 * The source is pulled, never pushed. stream_http_source_read returns body
 * bytes only when the caller asks, and libcurl's transfer is paused while
 * the source's own buffer (conf.buffer_bytes) is full, so a program that
 * stops reading while its producer's buffer is full stops the transfer too
 * (TCP's window then stops the server): memory stays bounded whatever the
 * size of the response, and nothing is read that could not be published.
 *
 * One source makes one request at a time (stream_http_source_start, then
 * reads until 0 or an error); the same source starts the next one for a
 * reconnect (--follow) or the next fetch (--poll), reusing the connection.
 * It remembers the ETag and Last-Modified of the last 2xx answer and sends
 * them as If-None-Match and If-Modified-Since when conf.conditional is set;
 * a 304 answer is an empty, successful response (status 304).
 *
 * The parsers take bytes in pieces of any size (a chunk boundary may fall
 * anywhere, inside a UTF-8 sequence or between CR and LF) and return
 * borrowed spans, valid until their next call; each is bounded by a maximum
 * record size, and beyond it fails with STREAM_ETOOLARGE instead of growing.
 * They are fuzzed (tests/fuzz/fuzz_sse.c, fuzz_json_array.c).
 *
 *   stream_sse_parser sp;
 *   stream_sse_init(&sp, 1 << 20);
 *   while ((n = stream_http_source_read(src, buf, sizeof buf, 100, err, sizeof err)) != 0) {
 *       ...  n < 0: STREAM_EAGAIN (nothing yet: poll the producer) or an error
 *       for (size_t off = 0; off < n; off += used)
 *           if (stream_sse_feed(&sp, buf + off, n - off, &used, &ev, err, sizeof err) == 1)
 *               publish(ev.data, ev.data_len, ev.id, ev.event);
 *   }
 *   stream_sse_release(&sp);
 */
#ifndef STREAM_HTTP_SOURCE_H
#define STREAM_HTTP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"
#include "stream/client.h"
#include "stream/http.h"

/* ---- Server-Sent Events (the WHATWG HTML "event stream" format) --------------
 *
 * Lines end with CRLF, LF or CR. "field: value" lines build an event, a
 * blank line dispatches it; ":" starts a comment; data lines are joined
 * with LF. `id` sets the last event ID, which stays until another `id`
 * changes it (an id containing NUL is ignored, as the format says); it
 * takes effect at the blank line, so an event cut off by a dropped
 * connection does not move the ID a reconnect sends; `retry`
 * (digits only) sets the reconnection delay; unknown fields are ignored; a
 * leading byte-order mark is dropped; an event the stream ends inside is
 * dropped (a reconnect with Last-Event-ID asks for it again). Stricter than
 * a browser in one way: bytes that are not UTF-8 are an error
 * (STREAM_EBADRECORD, "invalid SSE: ..."), not replaced, so no record is
 * silently changed.
 */

typedef struct stream_sse_event {
    const uint8_t *data; /* borrowed: the data lines joined with LF */
    size_t data_len;
    const char *id;    /* borrowed, NUL-terminated: the last event ID ("" when none) */
    const char *event; /* borrowed, NUL-terminated: the event type ("" when not set) */
} stream_sse_event;

typedef struct stream_sse_parser {
    int64_t retry_ms;       /* read-only: the last valid `retry` field, or -1 */
    uint64_t events;        /* read-only: events returned so far */
    size_t max_event_bytes; /* public: a longer line or event is STREAM_ETOOLARGE */
    stream_buf line;        /* private: the line being read, without its end */
    stream_buf data;        /* private: the event's data lines, each followed by LF */
    stream_buf event_type;  /* private: the `event` field, NUL-terminated */
    stream_buf id_buf;      /* private: the `id` being built up, NUL-terminated */
    stream_buf last_id;     /* read-only: the last event ID, NUL-terminated (data NULL
                               when none): id_buf as of the last blank line, i.e. the
                               ID to reconnect with (not one from a half-read event) */
    uint64_t offset;        /* private: bytes consumed, for error positions */
    bool after_cr;          /* private: the last line ended with CR (an LF next is its end) */
    bool started;           /* private: the first byte has been seen (BOM check done) */
    int bom_seen;           /* private: bytes of a leading byte-order mark matched so far */
    bool failed;            /* private: an error was returned; every later call fails */
} stream_sse_parser;

/* Initialises a parser (no allocation yet); max_event_bytes 0 means 64 MiB. */
void stream_sse_init(stream_sse_parser *p, size_t max_event_bytes);
void stream_sse_release(stream_sse_parser *p);

/* Forgets a half-read event and line (a new response starts), keeping the
 * last event ID and retry, as a reconnecting EventSource does. */
void stream_sse_reset(stream_sse_parser *p);

/* Sets the last event ID (a resumed stream's, from the topic): it is what
 * the next events carry until the stream sends an `id`. 0 or STREAM_ENOMEM. */
int stream_sse_set_last_id(stream_sse_parser *p, const char *id, size_t len);

/* Consumes bytes of in[0..len) into *used until an event is complete or the
 * input is used up. Returns 1 with *ev (borrowed until the next call; feed
 * the rest of in next), 0 when all of in was consumed with no event
 * complete, or an error, sticky: STREAM_EBADRECORD ("invalid SSE: bytes
 * that are not UTF-8 at byte 1042") or STREAM_ETOOLARGE ("an SSE event
 * longer than 1048576 bytes at byte ..."), STREAM_ENOMEM. */
int stream_sse_feed(stream_sse_parser *p, const uint8_t *in, size_t len, size_t *used,
                    stream_sse_event *ev, char *errbuf, size_t errbuf_len);

/* ---- one JSON array, element by element ---------------------------------------
 *
 * `--json-array`: the body is one JSON array (RFC 8259, whitespace around it
 * allowed) and each element becomes a record, its JSON text as given
 * (without the whitespace around it). Elements are found by scanning
 * (strings, escapes and nesting tracked) and each is checked with json.h's
 * parser, so a malformed element fails with its number and byte offset.
 */

typedef struct stream_json_array_splitter {
    uint64_t elements;        /* read-only: elements returned so far */
    size_t max_element_bytes; /* public: a longer element is STREAM_ETOOLARGE */
    int state;                /* private: before '[', in the array, after ']', failed */
    bool want_value;          /* private: a value must come next (after '[' or ',') */
    bool in_string;           /* private: inside a string of the current element */
    bool escape;              /* private: the last byte was a backslash in a string */
    uint32_t depth;           /* private: open brackets and braces inside the element */
    bool in_element;          /* private: an element has started */
    stream_buf elem;          /* private: the current element's bytes */
    void *doc;                /* private: json.h's parser state, made on first use */
    uint64_t offset;          /* private: bytes consumed, for error positions */
} stream_json_array_splitter;

/* Initialises a splitter (no allocation yet); max_element_bytes 0: 64 MiB. */
void stream_json_array_init(stream_json_array_splitter *s, size_t max_element_bytes);
void stream_json_array_release(stream_json_array_splitter *s);

/* Consumes bytes of in[0..len) into *used until an element is complete.
 * Returns 1 with the element in *elem, *elem_len (borrowed until the next
 * call), 0 when all of in was consumed, or an error, sticky:
 * STREAM_EBADRECORD ("malformed JSON array: expected ',' or ']' at byte
 * 17", "malformed JSON array: element 3 at byte 40: ..."), STREAM_ETOOLARGE,
 * STREAM_ENOMEM. */
int stream_json_array_feed(stream_json_array_splitter *s, const uint8_t *in, size_t len,
                           size_t *used, const uint8_t **elem, size_t *elem_len, char *errbuf,
                           size_t errbuf_len);

/* At the end of the body: 0 when exactly one whole array was read,
 * STREAM_EBADRECORD ("malformed JSON array: the body ends inside the array
 * after 2 elements") otherwise. */
int stream_json_array_finish(stream_json_array_splitter *s, char *errbuf, size_t errbuf_len);

/* ---- the HTTP client ----------------------------------------------------------- */

typedef struct stream_http_source stream_http_source;

typedef struct stream_http_source_conf {
    const char *url;              /* http:// or https:// (required; copied) */
    const stream_http_conf *http; /* TLS (--insecure, --cacert), -H headers and the
                                     connect timeout, as every connector takes them
                                     (stream/http.h; its whole-request timeout does
                                     not apply); borrowed for stream_http_source_new
                                     only; NULL: stream_http_conf_init's defaults */
    const char *agent;            /* User-Agent; NULL: "libstream/VERSION" */
    bool conditional;             /* send If-None-Match / If-Modified-Since (--poll) */
    int idle_timeout_ms;          /* a response that sends nothing for this long
                                     fails (STREAM_ETIMEDOUT); 0: never. Default 0 */
    size_t buffer_bytes;          /* body bytes held ahead of the reader (default
                                     256 KiB); the transfer pauses when full */
} stream_http_source_conf;

/* What is known of the current (or last) response. */
typedef struct stream_http_response {
    long status;            /* HTTP status; 0 until the headers came */
    bool event_stream;      /* Content-Type is text/event-stream */
    bool retryable;         /* after an error: worth trying again later, as every
                               connector decides it (stream/http.h): 408, 429,
                               5xx, network errors; not a refused certificate,
                               a malformed URL, another 4xx */
    int64_t retry_after_ms; /* Retry-After (seconds or an HTTP date), or -1 */
    uint64_t body_bytes;    /* body bytes of this response returned so far */
} stream_http_response;

/* Fills conf with the defaults above (url NULL). */
void stream_http_source_conf_init(stream_http_source_conf *conf);

/* Creates a source (libcurl initialised once per process, here).
 * Returns 0, STREAM_EINVAL (no URL, or a scheme other than http/https:
 * errbuf says so), STREAM_ENOMEM. */
int stream_http_source_new(const stream_http_source_conf *conf, stream_http_source **out,
                           char *errbuf, size_t errbuf_len);
void stream_http_source_free(stream_http_source *src);

/* Starts a GET (abandoning a response still being read), sending
 * `Last-Event-ID: last_event_id` when it is not NULL or empty. 0 or
 * STREAM_ENOMEM; failures to connect show in the first read. */
int stream_http_source_start(stream_http_source *src, const char *last_event_id, char *errbuf,
                             size_t errbuf_len);

/* Copies up to cap body bytes to buf, waiting up to timeout_ms for them.
 * Returns the bytes (> 0); 0 when the response is complete and successful
 * (2xx with its whole body, or 304); STREAM_EAGAIN when timeout_ms passed
 * with nothing new; or an error with errbuf naming the URL: a non-2xx
 * status is STREAM_EPROTO ("GET http://...: HTTP 500 Internal Server Error:
 * <start of the body>"), and a transfer failure is STREAM_ECONNREFUSED,
 * STREAM_ETIMEDOUT, STREAM_ECONNRESET (the connection dropped mid-body),
 * STREAM_EINVAL (an unknown host, a malformed URL), STREAM_EPROTO (TLS:
 * "SSL certificate problem: ... (--cacert FILE names a CA to trust;
 * --insecure skips verification)") or STREAM_EIO, with libcurl's words.
 * After an error, stream_http_source_response says whether to retry. */
int stream_http_source_read(stream_http_source *src, void *buf, size_t cap, int timeout_ms,
                            char *errbuf, size_t errbuf_len);

/* The current response's facts (borrowed; valid as long as src). */
const stream_http_response *stream_http_source_response(const stream_http_source *src);

/* ---- resuming ---------------------------------------------------------------- */

/* Reads the last record of topic/partition and copies the value of its
 * header named `header` (e.g. "id") to *out (NUL-terminated, malloc'd; the
 * caller frees). *out is NULL when the partition is empty or its last
 * record has no such header. Returns 0, STREAM_ENOTOPIC, STREAM_ENOPART,
 * transport errors, STREAM_ENOMEM, with errbuf. */
int stream_http_source_last_header(stream_client *c, const char *topic, int32_t partition,
                                   const char *header, int timeout_ms, char **out, char *errbuf,
                                   size_t errbuf_len);

#endif /* STREAM_HTTP_SOURCE_H */
