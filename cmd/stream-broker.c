/*
 * stream-broker - runs a broker (libstream/broker/broker.c) in the foreground
 * until SIGINT or SIGTERM: a single node, or with --cluster a voter of the
 * cluster's metadata quorum (libstream/cluster/controller.c).
 *
 * Settings come from, later winning: the built-in defaults, --config FILE,
 * the flags (--listen, --data-dir, --kafka-listen, --metrics-listen, --node-id,
 * --cluster, --log-level), then
 * every --set key=value
 * in order. The program only parses options, builds the config, prints the
 * broker's log lines ("2026-11-25T10:00:00.123Z INFO message") on stderr and
 * writes the --ready-file; everything else is the library's.
 *
 * As a systemd service (share/systemd/): once the listeners accept
 * connections it sends READY=1 to $NOTIFY_SOCKET, and with $WATCHDOG_USEC
 * WATCHDOG=1 at half that period from the broker's loop (options.tick_cb),
 * so a stuck loop gets the service restarted. When stderr is the journal
 * ($JOURNAL_STREAM names its device:inode) each line starts with its syslog
 * priority ("<3>"), which journald strips and keeps as the priority.
 * --log-format json writes one object per line for log shippers instead.
 * Only this program links libsystemd; libstream stays free of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "stream/broker.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/json.h"

static const char usage_text[] =
    "Usage: stream-broker [OPTION]...\n"
    "Run a stream broker in the foreground until SIGINT or SIGTERM.\n"
    "\n"
    "  -l, --listen HOST:PORT   address to listen on (127.0.0.1:9292; port 0: any)\n"
    "  -d, --data-dir DIR       where topics are stored (~/.local/share/stream)\n"
    "      --kafka-listen HOST:PORT|off  Kafka protocol (127.0.0.1:9092; off: none)\n"
    "      --metrics-listen HOST:PORT|off\n"
    "                           Prometheus metrics at GET /metrics (default\n"
    "                           127.0.0.1:9293, or $STREAM_METRICS_LISTEN; off: none)\n"
    "      --node-id N          this broker's id in a cluster (node.id)\n"
    "      --cluster VOTERS     the metadata quorum, ID@IPV4:PORT,... with Raft\n"
    "                           addresses (cluster.voters); N must be one of them\n"
    "      --tls-cert FILE --tls-key FILE --tls-ca FILE  TLS on every listener\n"
    "        --tls-client-auth MODE  client certificates: required|requested|none\n"
    "      --insecure           allow plain text on a non-loopback address\n"
    "  -c, --config FILE        read key=value settings from FILE\n"
    "  -s, --set KEY=VALUE      set one setting (repeatable; wins over --config)\n"
    "      --log-level LEVEL    error, warn, info (default) or debug\n"
    "      --log-format FORMAT  text (default) or json: one object per line\n"
    "      --ready-file FILE    write HOST:PORT to FILE once listening\n"
    "      --list-settings      print every setting with its default, then exit\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "\n"
    "Settings are described in stream-broker.conf(5); the broker in stream-broker(1).\n";

enum {
    OPT_LOG_LEVEL = 256,
    OPT_READY_FILE,
    OPT_VERSION,
    OPT_LIST_SETTINGS,
    OPT_NODE_ID,
    OPT_CLUSTER,
    OPT_KAFKA_LISTEN,
    OPT_METRICS_LISTEN,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CA,
    OPT_TLS_CLIENT_AUTH,
    OPT_INSECURE,
    OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"data-dir", required_argument, NULL, 'd'},
    {"kafka-listen", required_argument, NULL, OPT_KAFKA_LISTEN},
    {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-client-auth", required_argument, NULL, OPT_TLS_CLIENT_AUTH},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"config", required_argument, NULL, 'c'},
    {"set", required_argument, NULL, 's'},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"list-settings", no_argument, NULL, OPT_LIST_SETTINGS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* How log lines are written (the broker's log_arg). */
typedef struct log_sink {
    bool json;       /* --log-format json: {"time":..,"level":..,"message":..} */
    bool journal;    /* stderr is journald's stream: prefix "<N>" priorities */
    stream_buf line; /* reused for each json line */
} log_sink;

/* The syslog priority prefix (sd-daemon.h) for a broker level. */
static const char *journal_prefix(stream_broker_level level)
{
    switch (level) {
    case STREAM_BROKER_ERROR:
        return SD_ERR;
    case STREAM_BROKER_WARN:
        return SD_WARNING;
    case STREAM_BROKER_INFO:
        return SD_INFO;
    default:
        return SD_DEBUG;
    }
}

/* Prints one broker log line: UTC time with milliseconds, level, message;
 * as text or as one JSON object, with a priority prefix under journald. */
static void log_line(stream_broker_level level, const char *msg, void *arg)
{
    log_sink *sink = arg;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32], when[48];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when, sizeof(when), "%s.%03dZ", ts, (int)(tv.tv_usec / 1000));
    const char *prefix = sink->journal ? journal_prefix(level) : "";
    if (!sink->json) {
        fprintf(stderr, "%s%s %s %s\n", prefix, when, stream_broker_level_name(level), msg);
        return;
    }
    stream_buf_reset(&sink->line);
    stream_json_writer w;
    stream_json_writer_init(&w, &sink->line);
    stream_json_object_start(&w);
    stream_json_key(&w, "time");
    stream_json_cstring(&w, when);
    stream_json_key(&w, "level");
    stream_json_cstring(&w, stream_broker_level_name(level));
    stream_json_key(&w, "message");
    stream_json_cstring(&w, msg);
    stream_json_object_end(&w);
    if (stream_json_writer_finish(&w) != 0) {
        fprintf(stderr, "%s%s %s %s\n", prefix, when, stream_broker_level_name(level), msg);
        return;
    }
    fprintf(stderr, "%s%.*s", prefix, (int)sink->line.len, (const char *)sink->line.data);
}

/* The broker's tick under a systemd watchdog: proves the loop is alive. */
static void watchdog_tick(void *arg)
{
    (void)sd_notify(0, "WATCHDOG=1");
}

/* Writes "HOST:PORT\n" to path atomically (temp file + rename), so a reader
 * that sees the file sees all of it. */
static void write_ready_file(const char *path, const char *addr)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL)
        die("out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        die("cannot write ready file %s: %s", tmp, strerror(errno));
    fprintf(f, "%s\n", addr);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        die("cannot write ready file %s: %s", path, strerror(e));
    }
    free(tmp);
}

static noreturn void list_settings(void)
{
    stream_config_iter it;
    stream_config_iter_start(&it, NULL, NULL);
    while (stream_config_iter_next(&it))
        printf("%s=%s\n", it.setting->name, it.value);
    exit(fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL);
}

/* Applies one setting from the command line; a bad key or value is a usage
 * error (exit 2) naming the flag. */
static void set_or_usage(stream_config *cfg, const char *flag, const char *key, const char *value)
{
    char err[512];
    if (stream_config_set(cfg, key, value, err, sizeof(err)) != 0)
        usage_error("%s: %s", flag, err);
}

/* Raises the soft open-file limit to the hard one, as servers commonly do:
 * every connection and every segment holds a descriptor, and Debian's default
 * soft limit (1024) is far below what max.connections allows. Failure is not
 * fatal: the broker refuses connections it has no descriptors for. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    stream_config *cfg = stream_config_new();
    if (cfg == NULL)
        die("out of memory");

    /* Two passes: --config first so flags win over it wherever they appear. */
    const char *config_file = NULL, *ready_file = NULL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":l:d:c:s:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'h':
            cmd_help(usage_text);
        case OPT_VERSION:
            cmd_version();
        case OPT_LIST_SETTINGS:
            list_settings();
        case ':':
        case '?':
            cmd_bad_option(opt, argv);
        default:
            break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);

    char err[1024];
    log_sink sink = {.json = false, .journal = cmd_journal};
    stream_buf_init(&sink.line);
    /* $STREAM_KAFKA_LISTEN replaces the built-in default (the settings file
     * and --kafka-listen still win): test suites start many brokers at once
     * and set it to off so that none of them takes port 9092. */
    const char *kafka_env = getenv("STREAM_KAFKA_LISTEN");
    if (kafka_env != NULL && *kafka_env != '\0' &&
        stream_config_set(cfg, "kafka.listen", kafka_env, err, sizeof(err)) != 0)
        die("$STREAM_KAFKA_LISTEN: %s", err);
    /* $STREAM_METRICS_LISTEN likewise for port 9293. */
    const char *metrics_env = getenv("STREAM_METRICS_LISTEN");
    if (metrics_env != NULL && *metrics_env != '\0' &&
        stream_config_set(cfg, "metrics.listen", metrics_env, err, sizeof(err)) != 0)
        die("$STREAM_METRICS_LISTEN: %s", err);
    if (config_file) {
        int rc = stream_config_load_file(cfg, config_file, err, sizeof(err));
        if (rc == STREAM_ENOENT)
            die("cannot read config file %s: no such file", config_file);
        if (rc != 0)
            die("%s", err);
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":l:d:c:s:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'l':
            set_or_usage(cfg, "--listen", "listen", optarg);
            break;
        case 'd':
            if (*optarg == '\0')
                usage_error("--data-dir: empty directory name");
            set_or_usage(cfg, "--data-dir", "data.dir", optarg);
            break;
        case OPT_KAFKA_LISTEN:
            set_or_usage(cfg, "--kafka-listen", "kafka.listen", optarg);
            break;
        case OPT_METRICS_LISTEN:
            set_or_usage(cfg, "--metrics-listen", "metrics.listen", optarg);
            break;
        case OPT_NODE_ID:
            set_or_usage(cfg, "--node-id", "node.id", optarg);
            break;
        case OPT_CLUSTER:
            set_or_usage(cfg, "--cluster", "cluster.voters", optarg);
            break;
        case OPT_LOG_LEVEL:
            set_or_usage(cfg, "--log-level", "log.level", optarg);
            break;
        case OPT_TLS_CERT:
            set_or_usage(cfg, "--tls-cert", "tls.cert", optarg);
            break;
        case OPT_TLS_KEY:
            set_or_usage(cfg, "--tls-key", "tls.key", optarg);
            break;
        case OPT_TLS_CA:
            set_or_usage(cfg, "--tls-ca", "tls.ca", optarg);
            break;
        case OPT_TLS_CLIENT_AUTH:
            set_or_usage(cfg, "--tls-client-auth", "tls.client.auth", optarg);
            break;
        case OPT_INSECURE:
            set_or_usage(cfg, "--insecure", "insecure", "true");
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "json") == 0)
                sink.json = true;
            else if (strcmp(optarg, "text") == 0)
                sink.json = false;
            else
                usage_error("--log-format: expected text or json, got '%s'", optarg);
            break;
        case OPT_READY_FILE:
            ready_file = optarg;
            break;
        case 's': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg)
                usage_error("--set: expected KEY=VALUE, got '%s'", optarg);
            *eq = '\0';
            set_or_usage(cfg, "--set", optarg, eq + 1);
            *eq = '=';
            break;
        }
        default:
            break;
        }
    }

    stream_broker_options o;
    stream_broker_options_init(&o);
    o.config = cfg;
    o.log_cb = log_line;
    o.log_arg = &sink;
    o.log_level = (stream_broker_level)stream_config_int(cfg, STREAM_CONFIG_LOG_LEVEL);
    o.handle_signals = true;
    /* Under a systemd watchdog ($WATCHDOG_USEC, for this pid): ping at half
     * the period, as sd_watchdog_enabled(3) advises. */
    uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
        o.tick_cb = watchdog_tick;
        o.tick_interval_ms = watchdog_usec / 2000 > 0 ? watchdog_usec / 2000 : 1;
    }
    raise_fd_limit();

    stream_broker *b;
    int rc = stream_broker_new(&o, &b, err, sizeof(err));
    stream_config_free(cfg);
    if (rc != 0)
        die("%s", err);
    if (ready_file) {
        char addr[300];
        stream_broker_address(b, addr, sizeof(addr));
        write_ready_file(ready_file, addr);
    }
    /* Every listener (native, Kafka, metrics) was bound and listening when
     * stream_broker_new returned: a connect now succeeds (the kernel queues
     * it until the loop accepts). Without $NOTIFY_SOCKET this does nothing. */
    (void)sd_notify(0, "READY=1");
    rc = stream_broker_run(b);
    stream_broker_free(b);
    stream_buf_release(&sink.line);
    if (rc != 0)
        die("shutdown failed: %s", stream_strerror(rc));
    return EXIT_OK;
}
