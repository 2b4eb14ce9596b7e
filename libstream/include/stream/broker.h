/*
 * broker.h - the single-node broker: a value that owns a libuv loop, a
 * listening socket and a topic store, and serves the native protocol
 * (share/doc/protocol.md) until it is stopped.
 *
 * Life cycle:
 *
 *   stream_broker *b;
 *   stream_broker_options o;
 *   stream_broker_options_init(&o);
 *   o.config = cfg;                 // settings: listen address, data dir, limits
 *   o.log_cb = my_log; o.log_arg = ...;
 *   if (stream_broker_new(&o, &b, err, sizeof err) != 0) ...   // opens the store
 *                                   // (recovering it), binds, listens
 *   stream_broker_address(b, addr, sizeof addr);                // "127.0.0.1:9292"
 *   stream_broker_run(b);           // blocks until stream_broker_stop or a signal
 *   stream_broker_free(b);
 *
 * Threads: everything runs on the thread that calls stream_broker_run, on the
 * broker's own uv loop, except the flusher (one thread doing fdatasync for
 * every partition) whose durable callbacks wake the loop through uv_async.
 * stream_broker_stop is the only call that is safe from another thread (or a
 * signal handler: it only calls uv_async_send).
 *
 * Stopping: stop accepting; complete waiting fetches with what they have;
 * flush the logs so waiting acks=all produces complete; let queued responses
 * drain (at most a couple of seconds); close every connection; close the
 * store, which writes recovery points and clean-shutdown markers so the next
 * start skips the recovery scan. The library never prints: every message
 * goes through log_cb.
 *
 * Two brokers may live in one process (each with its own data dir and port);
 * there is no global state.
 */
#ifndef STREAM_BROKER_H
#define STREAM_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/config.h"

/* Severity of a broker log message; a message is passed to log_cb when its
 * level is <= options.log_level. */
typedef enum stream_broker_level {
    STREAM_BROKER_ERROR = 0, /* the broker cannot do something it should */
    STREAM_BROKER_WARN = 1,  /* a client or the disk misbehaved; the broker goes on */
    STREAM_BROKER_INFO = 2,  /* start, stop, recovery, topics created or deleted */
    STREAM_BROKER_DEBUG = 3, /* connections, per-request detail */
} stream_broker_level;

/* Receives one log line (no trailing newline; `msg` is borrowed for the call).
 * Called on the thread running the broker. */
typedef void (*stream_broker_log_cb)(stream_broker_level level, const char *msg, void *arg);

/* Called on the broker's loop thread at a fixed period while it runs. A
 * program hangs liveness signals on it (stream-broker sends systemd's
 * WATCHDOG=1): because it runs on the loop, a loop that is stuck stops the
 * ticks. It must return quickly and must not call back into the broker. */
typedef void (*stream_broker_tick_cb)(void *arg);

typedef struct stream_broker_options {
    const stream_config *config;   /* settings (listen, data.dir, limits); borrowed until
                                      stream_broker_new returns. NULL: all defaults */
    stream_broker_log_cb log_cb;   /* NULL: messages are dropped */
    void *log_arg;                 /* passed to log_cb */
    stream_broker_level log_level; /* most verbose level passed on (default INFO) */
    bool handle_signals;           /* SIGINT/SIGTERM stop the broker, SIGPIPE ignored
                                      (default false; programs set it) */
    stream_broker_tick_cb tick_cb; /* called from the loop every tick_interval_ms while
                                      stream_broker_run serves (NULL: none) */
    void *tick_arg;                /* passed to tick_cb */
    uint64_t tick_interval_ms;     /* period of tick_cb; 0 with a tick_cb is EINVAL */
} stream_broker_options;

typedef struct stream_broker stream_broker;

/* Fills `o` with the defaults above. */
void stream_broker_options_init(stream_broker_options *o);

/* Opens the data directory (creating it and recovering every partition),
 * binds and listens on the configured address ("HOST:PORT"; port 0 picks a
 * free one). Logs the data dir, the recovery summary and "listening on
 * HOST:PORT". Errors: STREAM_EBADCONFIG (bad listen address or setting),
 * STREAM_EIO / STREAM_ENOSPC (data dir unusable), STREAM_EEXIST (data dir
 * locked by another broker), STREAM_EAGAIN (address in use),
 * STREAM_EINVAL (a tick_cb without tick_interval_ms), STREAM_ENOMEM; errbuf says what failed. */
int stream_broker_new(const stream_broker_options *o, stream_broker **out, char *errbuf,
                      size_t errbuf_len);

/* Serves clients until stopped; returns 0 after a clean stop (store closed,
 * "shut down cleanly" logged) or a negative error if closing the store
 * failed. Call once. */
int stream_broker_run(stream_broker *b);

/* Asks the broker to stop; returns at once. Thread-safe and
 * async-signal-safe; idempotent. Call it between stream_broker_new and the
 * return of stream_broker_run (before run, run stops at once); afterwards it
 * does nothing. */
void stream_broker_stop(stream_broker *b);

/* Frees a broker that is not running (never started, or run returned).
 * Closes the store if run never did. NULL is a no-op. */
void stream_broker_free(stream_broker *b);

/* The address actually bound, as "HOST:PORT" (with the real port when 0 was
 * asked for). Returns the length written, like snprintf. */
int stream_broker_address(const stream_broker *b, char *buf, size_t len);

/* The data directory in use (borrowed; valid until stream_broker_free). */
const char *stream_broker_data_dir(const stream_broker *b);

/* "ERROR", "WARN", "INFO", "DEBUG". */
const char *stream_broker_level_name(stream_broker_level level);

/* Parses a level name (case-insensitive: error, warn/warning, info, debug).
 * Returns 0 or STREAM_EINVAL. */
int stream_broker_level_parse(const char *s, stream_broker_level *out);

#endif /* STREAM_BROKER_H */
