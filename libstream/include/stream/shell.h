/*
 * shell.h - stream-shell's language: words, commands, completion, and a
 * session that runs command lines against a broker.
 *
 * cmd/stream-shell.c is readline glue around this module: it reads lines
 * (with a prompt on a terminal, plainly from a script), hands each to
 * stream_shell_run_line and asks stream_shell_complete for Tab. Everything
 * a test should pin down — how a line splits into words, which commands
 * and options exist, what Tab offers where, what each command prints — is
 * here, so it is tested without a terminal.
 *
 * The language
 * ------------
 * A line holds commands separated by ';'. A command is words separated by
 * blanks, as in sh: '...' quotes literally; "..." quotes with \" \\ and \$
 * as the only escapes; outside quotes a backslash makes the next character
 * literal; adjacent quoted and unquoted parts form one word ("a"'b'c is
 * abc); '#' at the start of a word starts a comment that runs to the end
 * of the line. There is no expansion of any kind ($, *, ~ are literal).
 *
 * Commands (stream-shell(1) and `help` document each):
 *   connect topics create describe alter delete pub sub offsets
 *   groups group reset set help quit (exit is quit)
 * create/describe/alter/delete take stream-topics' options and produce its
 * tables, JSON and statuses (ops.h does the work for both). Options may
 * come anywhere among the arguments; "--" ends them.
 *
 * Output goes through the conf's write callback (data: tables, records,
 * JSON) and message callback (errors, warnings, notices; one line each,
 * without "stream-shell:" or a newline: the program decorates them). The
 * session never touches stdout, stderr or signals itself.
 *
 * Names for completion (topics, groups) come from a small cache in the
 * session, refreshed when older than names_ttl_ms with a request bounded by
 * names_timeout_ms; a failed refresh keeps the old names and is not retried
 * before the TTL passes again, so Tab never waits longer than that timeout
 * and a dead broker never freezes the terminal.
 */
#ifndef STREAM_SHELL_H
#define STREAM_SHELL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

/* ---- words ---------------------------------------------------------------------- */

/* One command: its words. */
typedef struct stream_shell_argv {
    size_t argc; /* words */
    char **argv; /* argc NUL-terminated words, then NULL; owned */
} stream_shell_argv;

/* A parsed line. */
typedef struct stream_shell_line {
    stream_shell_argv *cmds; /* count commands in the order written (empty ones dropped); owned */
    size_t count;
    /* With STREAM_SHELL_PARTIAL, where the text ended (for completion): */
    bool in_word;     /* the text ends inside a word (no blank after it): the last word of
                         the last command is being typed; false: a new word starts */
    char open_quote;  /* the quote still open at the end ('\'' or '"'), or 0 */
    bool new_command; /* the text ends where a command starts (empty, or after ';') */
    bool continues;   /* the text ends inside a quote or after a lone backslash: a
                         script or a prompt reads the next line and joins it (with
                         "\n") before running it */
} stream_shell_line;

/* Parse flag: an unterminated quote or a trailing backslash at the end is
 * not an error (text being typed, for completion). */
#define STREAM_SHELL_PARTIAL 0x1u

/* Parses text[0..len) into commands and words. Returns 0, STREAM_EINVAL
 * ("unterminated ' quote", "trailing backslash") with errbuf, or
 * STREAM_ENOMEM. *out is always initialised; release it. */
int stream_shell_parse(const char *text, size_t len, unsigned flags, stream_shell_line *out,
                       char *errbuf, size_t errbuf_len);
void stream_shell_line_release(stream_shell_line *line);

/* ---- commands --------------------------------------------------------------------- */

/* What `help` and completion know about a command. */
typedef struct stream_shell_command_info {
    const char *name;     /* "sub" */
    const char *synopsis; /* "TOPIC [from OFFSET|@TIME] [count N] [-p N] [--json]" */
    const char *summary;  /* one line */
} stream_shell_command_info;

/* The i-th command in the order `help` lists them, or NULL past the last. */
const stream_shell_command_info *stream_shell_command_at(size_t i);

/* Appends the help text: every command with its synopsis and summary
 * (command NULL or ""), or one command's synopsis, description and
 * examples. Returns 0, STREAM_ENOENT (no such command) or STREAM_ENOMEM. */
int stream_shell_help(stream_buf *out, const char *command);

/* ---- completion ------------------------------------------------------------------- */

typedef enum stream_shell_name_kind {
    STREAM_SHELL_NAMES_TOPICS = 0,
    STREAM_SHELL_NAMES_GROUPS = 1,
} stream_shell_name_kind;

/* Supplies names on demand (only when a topic or group is being completed).
 * Sets *names (borrowed until the next call) and *n; may set n to 0. */
typedef void (*stream_shell_names_fn)(void *arg, stream_shell_name_kind kind,
                                      const char *const **names, size_t *n);

/* Completion candidates: whole words that may replace the word being typed. */
typedef struct stream_shell_candidates {
    char **items; /* count words, sorted, unique; owned */
    size_t count;
    size_t cap; /* private */
    int err;    /* private: latched STREAM_ENOMEM */
} stream_shell_candidates;

void stream_shell_candidates_release(stream_shell_candidates *c);

/* Completes the last word of text[0..len) (the line up to the cursor): a
 * command name at the start of a command; after a command, its options
 * when the word starts with '-', an option's values after an option that
 * takes one (setting names after -c, formats after `set format`, ...),
 * else the argument the command expects there (topic or group names from
 * `names`, keywords such as `from` and `count`, command names after
 * `help`). Candidates start with the (unquoted) word typed so far; a
 * candidate ending in '=' expects more text after it (no space). Returns 0
 * or STREAM_ENOMEM. */
int stream_shell_complete_text(const char *text, size_t len, stream_shell_names_fn names, void *arg,
                               stream_shell_candidates *out);

/* ---- a session ------------------------------------------------------------------- */

typedef struct stream_shell stream_shell;

typedef enum stream_shell_msg_kind {
    STREAM_SHELL_ERROR = 0,   /* a command failed: why */
    STREAM_SHELL_WARNING = 1, /* something to know that did not fail the command */
    STREAM_SHELL_NOTICE = 2,  /* chatter for people (connected, reconnected) */
} stream_shell_msg_kind;

typedef struct stream_shell_conf {
    const char *brokers;     /* "host:port,..."; NULL: STREAM_DEFAULT_BROKERS. Copied. */
    const char *client_name; /* sent in hello; NULL: "stream-shell" */
    const stream_client_conf *client; /* TLS settings of the shell's clients (tls,
                                         tls_*_file); NULL: plain text. Borrowed for
                                         the shell's life. */
    int connect_timeout_ms;  /* per broker; <= 0: 5000 */
    int request_timeout_ms;  /* per request; <= 0: 30000 */
    int names_ttl_ms;        /* completion names are refreshed when older; <= 0: 5000 */
    int names_timeout_ms;    /* bound of such a refresh; <= 0: 500 */
    bool json;               /* start with `set format json` */
    /* Data out: whole records, tables, documents. Returns 0, or a negative
     * code to stop the command (STREAM_ECLOSED: the reader went away). */
    int (*write)(void *arg, const void *p, size_t len);
    /* One message line (no newline). */
    void (*message)(void *arg, stream_shell_msg_kind kind, const char *text);
    void *arg; /* passed to write and message */
    /* A flag the program's SIGINT handler sets: a running `sub` (and any
     * wait between records) ends soon after it becomes non-zero. The
     * session never clears it. May be NULL. */
    volatile sig_atomic_t *interrupt;
} stream_shell_conf;

/* Creates a session (no I/O: it connects when a command needs the broker,
 * or on stream_shell_connect). Returns 0, STREAM_EINVAL (a bad broker list,
 * a missing callback) with errbuf, or STREAM_ENOMEM. */
int stream_shell_new(const stream_shell_conf *conf, stream_shell **out, char *errbuf,
                     size_t errbuf_len);
void stream_shell_free(stream_shell *sh);

/* Connects now (at start-up on a terminal), reporting success as a NOTICE
 * and failure as a WARNING: a broker that is down is not fatal, commands
 * retry. Returns 0 or the connect error. */
int stream_shell_connect(stream_shell *sh);

/* Runs the commands of one line in order. Each ends with a STREAM_STATUS_*
 * (ops.h); with keep_going false the line stops at the first that fails.
 * Returns the status of the last command that failed, or 0. A line that
 * does not parse is STREAM_STATUS_USAGE. */
int stream_shell_run_line(stream_shell *sh, const char *line, bool keep_going);

/* Runs one parsed command (argv[0] is the command). Returns its status. */
int stream_shell_run(stream_shell *sh, size_t argc, char **argv);

/* Notices a connection the broker has closed since the last command (a
 * WARNING, once) without waiting and without reconnecting: the next
 * command reconnects. Call it before showing a prompt. */
void stream_shell_poll(stream_shell *sh);

/* True once `quit` (or `exit`) ran. */
bool stream_shell_quit_requested(const stream_shell *sh);

/* The broker list the session uses ("127.0.0.1:9292"), or while connected
 * the broker it is connected to. Borrowed: valid until the next call. */
const char *stream_shell_broker(const stream_shell *sh);

/* True while connected (as last seen: a connection the broker has closed
 * counts until the next command notices). */
bool stream_shell_connected(const stream_shell *sh);

/* Completes as stream_shell_complete_text, with topic and group names from
 * the session's cache (see the top of this file). */
int stream_shell_complete(stream_shell *sh, const char *text, size_t len,
                          stream_shell_candidates *out);

#endif /* STREAM_SHELL_H */
