/*
 * http.h - what every HTTP connector shares: libcurl set up once, TLS,
 * extra headers, timeouts, and when and how long to wait before a retry.
 *
 * The main header of libstream/connect/, the layer of connectors (above
 * client/, below tools/): the HTTP sink (http_sink.h, `stream-sub --post`)
 * and source (`stream-pub --url`) both build their libcurl handles from a
 * stream_http_conf, so the options users give them mean the same thing:
 *
 *   --insecure         do not verify the server's certificate or name
 *                      (verification is on by default)
 *   --cacert FILE      trust the CA certificates in FILE (PEM) instead of
 *                      the system's store
 *   -H 'Name: value'   add a header to every request (repeatable; a later
 *                      -H of the same name is sent too, as HTTP allows)
 *   -H @FILE           one such header per line of FILE (blank lines and
 *                      lines starting with '#' skipped), so tokens stay
 *                      off the command line and out of `ps`
 *   timeouts           per request (whole exchange) and per connect
 *
 * Retries: a connector retries what may succeed later -- 408, 429 and 5xx
 * answers, and transport failures other than a refused certificate or a
 * malformed URL -- after stream_http_backoff_ms (exponential, with jitter,
 * so many clients do not retry in step), or after the server's Retry-After
 * when it gives one (stream_http_retry_after_ms; capped by the connector).
 *
 * libcurl is initialised once per process (stream_http_global_init, safe to
 * call from any thread any number of times); every easy handle gets
 * CURLOPT_NOSIGNAL, so no connector takes SIGALRM or SIGPIPE from the
 * program.
 */
#ifndef STREAM_HTTP_H
#define STREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_slist;

/* Options shared by the HTTP connectors. Initialise with
 * stream_http_conf_init, add headers with stream_http_conf_add_header,
 * release with stream_http_conf_release. */
typedef struct stream_http_conf {
    /* public */
    bool insecure;          /* skip certificate and host name verification */
    const char *cacert;     /* PEM file of trusted CAs; NULL: the system's; borrowed */
    int timeout_ms;         /* one request, connect to last byte; default 30000 */
    int connect_timeout_ms; /* the connection (and TLS handshake); default 10000 */
    int retries;            /* retries of a retryable failure; default 5 */
    int backoff_ms;         /* the first retry's wait; default 200 */
    int backoff_max_ms;     /* cap of a wait, also of a server's Retry-After; default 30000 */
    /* private */
    struct curl_slist *headers; /* the -H lines, in order, checked */
    size_t header_count;        /* entries in headers */
} stream_http_conf;

/* Initialises libcurl once for the process (curl_global_init). Returns 0, or
 * STREAM_EIO with errbuf when libcurl cannot start (no TLS library). */
int stream_http_global_init(char *errbuf, size_t errbuf_len);

/* Fills conf with the defaults above and no headers. */
void stream_http_conf_init(stream_http_conf *conf);

/* Frees the headers conf holds. conf may be released twice. */
void stream_http_conf_release(stream_http_conf *conf);

/* Adds an -H argument: "Name: value", or "@FILE" for one header per line of
 * FILE (blank lines and '#' lines skipped, a trailing CR ignored). Each
 * header is checked with stream_http_header_check. Returns 0,
 * STREAM_EINVAL (errbuf: "-H 'Na me: x': ..." or "FILE line 3: ...";
 * a line read from a file is never quoted back, it may hold a secret),
 * STREAM_EIO (FILE unreadable, errbuf names it), STREAM_ENOMEM. Nothing is
 * added on error. */
int stream_http_conf_add_header(stream_http_conf *conf, const char *arg, char *errbuf,
                                size_t errbuf_len);

/* Checks one header line (p, len bytes, no line end): a name of RFC 9110
 * token characters, ':', then a value without control characters other
 * than tab. Returns 0 or STREAM_EINVAL with errbuf saying what is wrong
 * (never quoting the value). */
int stream_http_header_check(const char *p, size_t len, char *errbuf, size_t errbuf_len);

/* Appends copies of conf's headers to *list (curl_slist_append; *list may
 * be NULL). Returns 0 or STREAM_ENOMEM (*list then holds what it held plus
 * some of them: free it). */
int stream_http_conf_headers(const stream_http_conf *conf, struct curl_slist **list);

/* Applies conf to a libcurl easy handle (a CURL *, passed as void * so this
 * header does not need curl.h): TLS verification or --insecure, --cacert,
 * the timeouts, HTTP/2 over TLS when the server offers it (else HTTP/1.1),
 * no signals, TCP keep-alive, redirects not followed, and a User-Agent of
 * `agent`. Headers are not set here: the caller sets CURLOPT_HTTPHEADER
 * with its own list (stream_http_conf_headers). Returns 0 or STREAM_EINVAL
 * with errbuf when libcurl refuses an option. */
int stream_http_easy_setup(const stream_http_conf *conf, void *easy, const char *agent,
                           char *errbuf, size_t errbuf_len);

/* True for an answer worth retrying: 408, 429 and every 5xx. */
bool stream_http_status_retryable(long status);

/* True for a libcurl transport failure (a CURLcode) worth retrying: not
 * for a refused or unreadable certificate, a malformed URL, an unsupported
 * scheme or an option libcurl does not know -- those fail the same way
 * every time. */
bool stream_http_curl_retryable(int curl_code);

/* A libcurl transport failure (a CURLcode, not CURLE_OK) as a STREAM_E*
 * code: STREAM_ECONNREFUSED (nothing listens), STREAM_ETIMEDOUT,
 * STREAM_ECONNRESET (the connection broke or the answer was cut short),
 * STREAM_EINVAL (a malformed URL, an unsupported scheme, a host that does
 * not resolve), STREAM_EPROTO (TLS: a refused certificate, a failed
 * handshake), STREAM_ENOMEM, else STREAM_EIO. */
int stream_http_curl_error(int curl_code);

/* Parses a Retry-After value (p, len bytes): delay-seconds ("120") or an
 * HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT", relative to now_ms, a date
 * in the past meaning 0). Surrounding spaces (and a line end) are allowed. Sets *delay_ms
 * (>= 0, at most a day) and returns 0, or STREAM_EINVAL when the value is
 * neither. */
int stream_http_retry_after_ms(const char *p, size_t len, int64_t now_ms, int64_t *delay_ms);

/* The wait before retry number `attempt` (1 for the first retry):
 * min(backoff_max_ms, backoff_ms * 2^(attempt-1)), less a random part of
 * up to half of it ("equal jitter"), drawn from *rng (a caller's state,
 * any non-zero seed; xorshift). Always >= 1. */
int64_t stream_http_backoff_ms(const stream_http_conf *conf, int attempt, uint64_t *rng);

#endif /* STREAM_HTTP_H */
