/*
 * common.c - messages, exits and standard options for every stream-* program
 * (see common.h). One copy here so every program speaks the same way.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "common.h"
#include "stream/client.h"

const char *cmd_name = "stream";
int cmd_verbosity = 1;
bool cmd_journal;

/* See cmd_journal in common.h. */
static bool stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void cmd_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    if (argv0 && *argv0)
        cmd_name = slash ? slash + 1 : argv0;
    cmd_journal = stderr_is_journal();
}

/* `prio` is the syslog prefix (sd-daemon.h's SD_ERR...) written when
 * stderr is the journal. */
static void vmsg(const char *prio, const char *fmt, va_list ap)
{
    /* One fprintf per line so concurrent writers do not interleave halves. */
    char line[4096];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "%s%s: %s\n", cmd_journal ? prio : "", cmd_name, line);
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(SD_ERR, fmt, ap);
    va_end(ap);
    exit(EXIT_FAIL);
}

void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(SD_ERR, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%sTry '%s --help'.\n", cmd_journal ? SD_ERR : "", cmd_name);
    exit(EXIT_USAGE);
}

void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(SD_WARNING, fmt, ap);
    va_end(ap);
}

void info(int level, const char *fmt, ...)
{
    if (cmd_verbosity < level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmsg(SD_INFO, fmt, ap);
    va_end(ap);
}

void cmd_version(void)
{
    printf("%s %s\n", cmd_name, STREAM_VERSION);
    exit(fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL);
}

const char *cmd_brokers(const char *arg)
{
    if (arg && *arg)
        return arg;
    const char *env = getenv("STREAM_BROKERS");
    if (env && *env)
        return env;
    return "127.0.0.1:9292";
}

long long cmd_parse_int(const char *s, long long min, long long max, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        usage_error("invalid %s '%s' (expected an integer from %lld to %lld)", what, s, min,
                    max);
    return v;
}

void cmd_help(const char *text)
{
    fputs(text, stdout);
    exit(fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL);
}

void cmd_bad_option(int opt, char *const argv[])
{
    /* getopt_long with a leading ':' in optstring: ':' for a missing
     * argument, '?' for an unknown option (optopt set for short ones). */
    if (opt == ':')
        usage_error("option '%s' needs an argument", argv[optind - 1]);
    if (optopt)
        usage_error("unknown option '-%c'", optopt);
    usage_error("unknown option '%s'", argv[optind - 1]);
}

/* The TLS options given (cmd_tls_option). */
static struct {
    bool tls;
    const char *ca, *cert, *key;
} tls_opts;

bool cmd_tls_option(int opt, const char *arg)
{
    switch (opt) {
    case CMD_OPT_TLS:
        tls_opts.tls = true;
        return true;
    case CMD_OPT_CACERT:
        tls_opts.ca = arg;
        return true;
    case CMD_OPT_CERT:
        tls_opts.cert = arg;
        return true;
    case CMD_OPT_CERT_KEY:
        tls_opts.key = arg;
        return true;
    default:
        return false;
    }
}

/* An environment variable's value, NULL when unset or empty. */
static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

void cmd_client_conf(stream_client_conf *conf, const char *brokers_arg, const char *name)
{
    stream_client_conf_init(conf);
    conf->brokers = cmd_brokers(brokers_arg);
    conf->client_name = name;
    cmd_tls_conf(conf);
}

void cmd_tls_conf(stream_client_conf *conf)
{
    const char *on = env_or_null("STREAM_TLS");
    conf->tls = tls_opts.tls || (on != NULL && (strcmp(on, "1") == 0 || strcmp(on, "true") == 0));
    conf->tls_ca_file = tls_opts.ca ? tls_opts.ca : env_or_null("STREAM_TLS_CA");
    conf->tls_cert_file = tls_opts.cert ? tls_opts.cert : env_or_null("STREAM_TLS_CERT");
    conf->tls_key_file = tls_opts.key ? tls_opts.key : env_or_null("STREAM_TLS_KEY");
    if ((conf->tls_cert_file == NULL) != (conf->tls_key_file == NULL))
        usage_error("a client certificate needs its key and a key its certificate "
                    "(--cert FILE with --key FILE, or $STREAM_TLS_CERT with $STREAM_TLS_KEY)");
}
