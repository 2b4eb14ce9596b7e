/*
 * progress.h - the one-line progress bar of long command-line work
 * (stream-pub reading a file or a URL, stream-sub -e, stream-bench):
 *
 *   stream-pub: 120,000 records  11.4 MiB / 95.4 MiB  11%  40,000 rec/s  3.8 MiB/s  ETA 0:22
 *
 *   stream_progress p;
 *   stream_progress_init(&p, stderr, STREAM_PROGRESS_AUTO, "stream-pub", total_bytes);
 *   for (...) stream_progress_update(&p, records, bytes);   // redraws at most 5 times a second
 *   stream_progress_finish(&p);                              // the final line and a newline
 *
 * The line is redrawn in place with a carriage return and padded over what
 * the previous one left; it goes to the stream given (programs pass stderr,
 * never stdout, which carries data). STREAM_PROGRESS_AUTO draws only when
 * that stream is a terminal, so pipes and log files stay clean; ON and OFF
 * are --progress and --no-progress. With total_bytes 0 (a pipe, an
 * endless source) there is no percentage and no ETA. No allocation, no
 * threads: the caller calls update from its own loop.
 */
#ifndef STREAM_PROGRESS_H
#define STREAM_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum stream_progress_mode {
    STREAM_PROGRESS_AUTO = 0, /* draw when the stream is a terminal */
    STREAM_PROGRESS_ON = 1,   /* always draw (--progress) */
    STREAM_PROGRESS_OFF = 2,  /* never draw (--no-progress) */
} stream_progress_mode;

typedef struct stream_progress {
    /* read-only */
    bool enabled;     /* lines are drawn (the mode and the stream decided) */
    uint64_t records; /* records done, as last given to update */
    uint64_t bytes;   /* bytes done, as last given to update */
    /* private */
    FILE *out;            /* where lines go; borrowed */
    const char *label;    /* line prefix, e.g. the program's name; borrowed */
    uint64_t total_bytes; /* the work's size in bytes; 0: unknown */
    int64_t start_ns;     /* CLOCK_MONOTONIC at init */
    int64_t last_draw_ns; /* when the line was last drawn; 0: never */
    size_t last_width;    /* characters of the last line, to pad over */
    char note[64];        /* the caller's extra field, e.g. "p99 1.2 ms"; "" none */
} stream_progress;

/* Decides whether to draw (mode, and for AUTO whether `out` is a terminal)
 * and starts the clock. `label` and `out` are borrowed until finish. */
void stream_progress_init(stream_progress *p, FILE *out, stream_progress_mode mode,
                          const char *label, uint64_t total_bytes);

/* Records that `records` and `bytes` are done (totals, not increments) and
 * redraws the line when 200 ms passed since the last drawing. */
void stream_progress_update(stream_progress *p, uint64_t records, uint64_t bytes);

/* Sets a short extra field shown after the rates (stream-bench's latency
 * percentile), truncated to 63 bytes; NULL or "" removes it. Shown from the
 * next drawing on. */
void stream_progress_note(stream_progress *p, const char *note);

/* Draws the final line (the whole run's rate) and ends it with a newline,
 * when enabled. Call once. */
void stream_progress_finish(stream_progress *p);

/* Formats one line (no carriage return, no newline) into buf: records,
 * bytes (of total_bytes with a percentage when known), the rates over
 * elapsed_ns, the note (NULL or "": none), and with a known total an ETA at the average rate; a
 * final line says "in M:SS" (the run's time) instead of the ETA. Returns the length, as snprintf.
 * Pure, for the tests. */
int stream_progress_format(char *buf, size_t len, const char *label, uint64_t records,
                           uint64_t bytes, uint64_t total_bytes, int64_t elapsed_ns,
                           const char *note, bool final);

#endif /* STREAM_PROGRESS_H */
