/*
 * shell_internal.h - what shell.c (words, options, completion, help),
 * shell_session.c (the session) and shell_cmds.c (the commands) share: the
 * command table, and the session with its helpers.
 *
 * One table drives everything about a command: running it (options parsed
 * by stream__shell_getopt from its option list), completing it (the same
 * option list, and what each argument is), and documenting it (`help`).
 * A command added here is parsed, completed and documented at once.
 */
#ifndef STREAM_SHELL_INTERNAL_H
#define STREAM_SHELL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "stream/buf.h"
#include "stream/client.h"
#include "stream/format.h"
#include "stream/shell.h"

/* What a word is, for completion (and for options: whether they take a value). */
typedef enum stream__shell_arg {
    SH_ARG_NONE = 0,      /* nothing (a flag takes no value; no more positionals) */
    SH_ARG_TEXT,          /* free text: nothing to offer */
    SH_ARG_TOPIC,         /* a topic name from the broker */
    SH_ARG_GROUP,         /* a group name from the broker */
    SH_ARG_COMMAND,       /* a command name (help) */
    SH_ARG_SESSION_KEY,   /* a session setting name (set) */
    SH_ARG_SESSION_VALUE, /* a value of the session setting named before (set) */
    SH_ARG_CONFIG_KV,     /* a topic setting as KEY= (then its value) */
    SH_ARG_CONFIG_KEY,    /* a topic setting name */
    SH_ARG_OFFSET,        /* an offset spec (beginning, end, -N, @TIME, ...) */
} stream__shell_arg;

/* One option of a command. */
typedef struct stream__shell_opt {
    char short_name;         /* 'p', or 0 */
    const char *long_name;   /* "partitions", or NULL */
    stream__shell_arg value; /* SH_ARG_NONE for a flag, else what its value is */
} stream__shell_opt;

/* A keyword argument such as sub's `from OFFSET` or `count N`. */
typedef struct stream__shell_keyword {
    const char *name;        /* "from" */
    stream__shell_arg value; /* what follows it */
} stream__shell_keyword;

/* Options and arguments of one command, as parsed for its run function. */
typedef struct stream__shell_args {
    size_t npos; /* positional words */
    char **pos;  /* borrowed from the argv */
    size_t nopt; /* options given, in order */
    struct {
        int index;         /* into the command's opts */
        const char *value; /* its value (borrowed), or NULL for a flag */
    } opt[64];
} stream__shell_args;

typedef struct stream__shell_cmd {
    stream_shell_command_info info;
    const char *help;                      /* description for `help NAME` (lines end in \n) */
    const stream__shell_opt *opts;         /* terminated by an entry with neither name */
    stream__shell_arg first;               /* what the first positional is */
    stream__shell_arg rest;                /* what later positionals are */
    const stream__shell_keyword *keywords; /* after the first positional; NULL-terminated
                                              by name; may be NULL */
    int (*run)(stream_shell *sh, const struct stream__shell_cmd *cmd, stream__shell_args *a);
} stream__shell_cmd;

/* The table (shell_cmds.c), in `help` order; *n gets the count. */
const stream__shell_cmd *stream__shell_table(size_t *n);

/* The command named `name` (aliases included: "exit" is quit), or NULL. */
const stream__shell_cmd *stream__shell_find(const char *name);

/* Splits argv[1..argc) into options and positionals by cmd's option list.
 * Options may come anywhere; "--" ends them; a word that is "-" or starts
 * with "-" and a digit is positional (offsets like -10). Returns 0, or
 * STREAM_EINVAL with errbuf ("unknown option '--x'", "option '-p' needs a
 * value", too many options). */
int stream__shell_getopt(const stream__shell_cmd *cmd, size_t argc, char **argv,
                         stream__shell_args *out, char *errbuf, size_t errbuf_len);

/* The value kinds of session settings, for completion: fills *values with
 * the words a setting takes ("text", "json") and returns their count (0:
 * free text or unknown key). */
size_t stream__shell_session_values(const char *key, const char *const **values);

/* The session setting names, NULL-terminated. */
extern const char *const stream__shell_session_keys[];

/* ---- the session (shell_session.c), shared with the commands ---------------------- */

/* The default of `set record-format`. */
#define STREAM__SHELL_RECORD_FORMAT "%v\\n"

/* Names for completion, one list per kind, refreshed after a TTL. */
typedef struct stream__shell_names {
    char **names; /* count names, owned */
    size_t count;
    int64_t fetched_ms; /* monotonic time of the last refresh attempt */
    bool fetched;       /* a refresh was attempted (successful or not) */
} stream__shell_names;

struct stream_shell {
    stream_shell_conf conf; /* callbacks, timeouts (strings: see below) */
    char *brokers;          /* the broker list in use; owned */
    char *client_name;      /* owned */
    stream_client *client;  /* NULL until a command needs the broker */
    bool was_connected;     /* connected when last looked (to report a loss once) */
    bool lost;              /* a loss was reported and no reconnect seen since */
    bool quit;              /* `quit` ran */
    /* settings (`set`) */
    bool json;                    /* format json */
    char *record_format_text;     /* record-format as given; owned */
    stream_format *record_format; /* compiled */
    int acks;                     /* 0, 1 or STREAM_ACKS_ALL */
    int32_t partition;            /* pub/sub partition, or STREAM_PARTITION_ANY */
    stream__shell_names names[2]; /* by stream_shell_name_kind */
};

/* One message line through the conf's callback. */
void stream__shell_msg(stream_shell *sh, stream_shell_msg_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes b (rc: how building it went) and releases it. Returns a status. */
int stream__shell_emit(stream_shell *sh, stream_buf *b, int rc);
/* Reports a usage error with the command's synopsis; returns STREAM_STATUS_USAGE. */
int stream__shell_usage(stream_shell *sh, const stream__shell_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t stream__shell_mono_ms(void);
int64_t stream__shell_wall_ms(void);

/* The options of a parsed command, by long name. */
int stream__shell_opt_index(const stream__shell_cmd *cmd, const char *long_name);
bool stream__shell_has_flag(const stream__shell_cmd *cmd, const stream__shell_args *a,
                            const char *name);
const char *stream__shell_opt_value(const stream__shell_cmd *cmd, const stream__shell_args *a,
                                    const char *name); /* the last one given, or NULL */
/* --json given, or `set format json`. */
bool stream__shell_want_json(stream_shell *sh, const stream__shell_cmd *cmd,
                             const stream__shell_args *a);

/* A client for `brokers` with the session's name and timeouts (no I/O). */
int stream__shell_new_client(stream_shell *sh, const char *brokers, stream_client **out,
                             char *errbuf, size_t errbuf_len);
/* The session's client; NULL only when out of memory (reported). */
stream_client *stream__shell_client(stream_shell *sh);
/* Forgets the names cached for completion. */
void stream__shell_names_clear(stream__shell_names *nc);

#endif /* STREAM_SHELL_INTERNAL_H */
