/*
 * common.h - what every stream-* program shares: its name in messages, die /
 * usage / warn / info, and the standard options (-b, --help, --version).
 *
 * Programs print errors as "PROGRAM: what failed: why" on stderr, exit 1 on a
 * failure, 2 on a usage error. Library calls never print; the program turns
 * their error codes and errbufs into one such line.
 */
#ifndef STREAM_CMD_COMMON_H
#define STREAM_CMD_COMMON_H

#include <stdbool.h>
#include <stdnoreturn.h>

/* Exit statuses shared by every program (documented in each man page). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* something failed: broker unreachable, write error, ... */
    EXIT_USAGE = 2, /* bad flags or arguments */
    EXIT_EMPTY = 3, /* stream-sub -e: there was nothing to read */
    EXIT_NOTFOUND = 4, /* admin: every topic (or group) named does not exist */
    EXIT_EXISTS = 5,   /* admin: every topic named to create already exists */
    EXIT_GAVE_UP = 6,  /* stream-sub --post: the endpoint kept failing (--post-retries spent) */
    EXIT_REJECTED = 7, /* stream-sub --post: the endpoint refused records (no --dead-letter) */
};

/* The program's name as shown in messages ("stream-pub"). */
extern const char *cmd_name;

/* Sets cmd_name from argv[0] (its basename), and cmd_journal. */
void cmd_init(const char *argv0);

/* Set by cmd_init when stderr is journald's stream ($JOURNAL_STREAM,
 * "DEVICE:INODE", set by systemd for a service, names the file stderr is):
 * die, usage_error, warn and info then start their lines with a syslog
 * priority ("<3>" error, "<4>" warning, "<6>" info), which journald keeps
 * as the entry's priority. */
extern bool cmd_journal;

/* "PROGRAM: message" on stderr, then exit(EXIT_FAIL). */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROGRAM: message\nTry 'PROGRAM --help'." on stderr, then exit(EXIT_USAGE). */
noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROGRAM: message" on stderr; returns. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Verbosity: 0 quiet (errors only), 1 default, 2+ verbose (-v). */
extern int cmd_verbosity;
/* Prints "PROGRAM: message" on stderr when cmd_verbosity >= level. */
void info(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the --help text on stdout and exits 0 (1 if stdout fails). */
noreturn void cmd_help(const char *text);

/* The usage error for what getopt_long returned as `opt` (':' missing
 * argument, '?' unknown option); exits 2. Needs ':' first in optstring. */
noreturn void cmd_bad_option(int opt, char *const argv[]);

/* "PROGRAM VERSION" on stdout, exit 0. */
noreturn void cmd_version(void);

/* The broker list: `arg` (from -b) when not NULL, else $STREAM_BROKERS, else
 * "127.0.0.1:9292". Never NULL. */
const char *cmd_brokers(const char *arg);

/* The TLS options of every client program (long options only; values
 * outside getopt's char range). stream-pub's --key is its record key: it
 * takes the client key as --cert-key, which every program accepts. */
enum { CMD_OPT_TLS = 0x7000, CMD_OPT_CACERT, CMD_OPT_CERT, CMD_OPT_CERT_KEY };
#define CMD_TLS_LONG_OPTIONS                                                                       \
    {"tls", no_argument, NULL, CMD_OPT_TLS}, {"cacert", required_argument, NULL, CMD_OPT_CACERT},  \
        {"tls-cacert", required_argument, NULL, CMD_OPT_CACERT},                                   \
        {"cert", required_argument, NULL, CMD_OPT_CERT},                                           \
        {"cert-key", required_argument, NULL, CMD_OPT_CERT_KEY}
/* The --help lines of those options, then KEYLINE: the line of the
 * client key's option ("--key" or "--cert-key"), aligned by the program. */
#define CMD_TLS_HELP(KEYLINE)                                                                      \
    "      --tls                 TLS to the brokers, verifying their certificates\n"               \
    "      --cacert FILE         PEM CAs to trust for the brokers (implies --tls)\n"               \
    "      --cert FILE           PEM client certificate for brokers that ask for one\n" KEYLINE

/* Takes opt when it is a TLS option (CMD_OPT_*); true if it was. */
bool cmd_tls_option(int opt, const char *arg);

struct stream_client_conf;
/* Sets conf's TLS fields from the TLS options, else from $STREAM_TLS (1 or
 * true), $STREAM_TLS_CA, $STREAM_TLS_CERT and $STREAM_TLS_KEY. A
 * certificate without its key (or a key without its certificate) is a usage
 * error. */
void cmd_tls_conf(struct stream_client_conf *conf);

/* conf's defaults, then the broker list (cmd_brokers(brokers_arg)), the
 * client name and the TLS settings (cmd_tls_conf). */
void cmd_client_conf(struct stream_client_conf *conf, const char *brokers_arg, const char *name);

/* Parses a whole decimal integer in [min, max]; usage_error naming `what`
 * otherwise. */
long long cmd_parse_int(const char *s, long long min, long long max, const char *what);

#endif /* STREAM_CMD_COMMON_H */
