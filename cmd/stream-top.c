/*
 * stream-top - a live view of a broker or a cluster, like top(1): topics by
 * bytes in or out per second, consumer groups with their lag and its trend,
 * brokers. The figures come from the native `stats` op (protocol.md 6.29)
 * through libstream/tools/top.c, which stream-shell's `top` shares; this
 * program only parses options, paces the samples and draws.
 *
 * Rates need two samples, taken -d apart. On a terminal without -n, --json
 * or --batch the view is live (ncurses: keys, resize); otherwise each
 * iteration prints one snapshot - JSON lines with --json, text tables else -
 * and -n N stops after N of them.
 */
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/error.h"
#include "stream/timespec.h"
#include "stream/top.h"

static const char usage_text[] =
    "Usage: stream-top [OPTION]...\n"
    "Show what a stream broker or cluster is doing: topics by bytes in/out per\n"
    "second, consumer groups with their lag and its trend, brokers.\n"
    "\n"
    "  -b, --brokers LIST        host:port,... (default $STREAM_BROKERS or\n"
    "                            127.0.0.1:9292)\n"
    CMD_TLS_HELP("      --key FILE            its PEM private key\n")
    "  -d, --delay TIME          between samples: seconds (0.5) or a duration\n"
    "                            (500ms); default 1\n"
    "  -n, --iterations N        print N snapshots, then exit (no live view)\n"
    "      --json                one JSON document per snapshot (no live view)\n"
    "  -B, --batch               text snapshots even on a terminal\n"
    "  -p, --prefix PREFIX       only topics and groups whose name starts with PREFIX\n"
    "      --timeout-ms MS       connect and request timeout (default 5000 and 30000)\n"
    "  -h, --help                show this help and exit\n"
    "      --version             show the version and exit\n"
    "\n"
    "Keys in the live view: tab next view (topics, groups, brokers), s/S next or\n"
    "previous sort (in, out, name), / filter by prefix, space pause, q quit.\n"
    "Exit status: 0 done, 1 failure (no broker, a failed sample in snapshot\n"
    "mode), 2 bad options. See stream-top(1).\n";

enum { OPT_JSON = 256, OPT_TIMEOUT, OPT_VERSION };

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"delay", required_argument, NULL, 'd'},
    {"iterations", required_argument, NULL, 'n'},
    {"json", no_argument, NULL, OPT_JSON},
    {"batch", no_argument, NULL, 'B'},
    {"prefix", required_argument, NULL, 'p'},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"key", required_argument, NULL, CMD_OPT_CERT_KEY},
    CMD_TLS_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

typedef struct top_opts {
    const char *brokers; /* -b */
    int64_t delay_ms;    /* -d */
    long long n;         /* -n; 0: until interrupted */
    bool json;           /* --json */
    bool batch;          /* -B */
    char prefix[256];    /* -p, and the live view's filter */
    int timeout_ms;      /* --timeout-ms; 0: defaults */
} top_opts;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = 1;
}

/* -d: a bare number is seconds (as top's -d), else a DURATION ("500ms"). */
static int64_t parse_delay(const char *s)
{
    char *end;
    errno = 0;
    double secs = strtod(s, &end);
    int64_t ms;
    if (end != s && *end == '\0' && errno == 0 && isfinite(secs) && secs >= 0 && secs <= 86400)
        ms = (int64_t)(secs * 1000 + 0.5);
    else {
        char eb[256];
        if (stream_duration_parse_str(s, &ms, eb, sizeof eb) != 0)
            usage_error("bad --delay '%s': %s", s, eb);
    }
    if (ms < 100 || ms > 86400000)
        usage_error("bad --delay '%s': from 0.1 s to 1 day", s);
    return ms;
}

static void parse_options(int argc, char **argv, top_opts *o)
{
    memset(o, 0, sizeof *o);
    o->delay_ms = 1000;
    int opt;
    while ((opt = getopt_long(argc, argv, ":b:d:n:Bp:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'b':
            o->brokers = optarg;
            break;
        case 'd':
            o->delay_ms = parse_delay(optarg);
            break;
        case 'n':
            o->n = cmd_parse_int(optarg, 1, 1000000000, "--iterations");
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'B':
            o->batch = true;
            break;
        case 'p':
            if (strlen(optarg) >= sizeof o->prefix)
                usage_error("--prefix is longer than %zu bytes", sizeof o->prefix - 1);
            strcpy(o->prefix, optarg);
            break;
        case OPT_TIMEOUT:
            o->timeout_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--timeout-ms");
            break;
        case CMD_OPT_TLS:
        case CMD_OPT_CACERT:
        case CMD_OPT_CERT:
        case CMD_OPT_CERT_KEY:
            cmd_tls_option(opt, optarg);
            break;
        case 'h':
            cmd_help(usage_text);
        case OPT_VERSION:
            cmd_version();
        default:
            cmd_bad_option(opt, argv);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
}

static stream_client *new_client(const top_opts *o)
{
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = cmd_brokers(o->brokers);
    conf.client_name = "stream-top/" STREAM_VERSION;
    cmd_tls_conf(&conf);
    if (o->timeout_ms > 0) {
        conf.connect_timeout_ms = o->timeout_ms;
        conf.request_timeout_ms = o->timeout_ms;
    }
    char err[512];
    stream_client *c;
    int rc = stream_client_new(&conf, &c, err, sizeof err);
    if (rc == STREAM_EINVAL)
        usage_error("%s", err);
    if (rc != 0)
        die("%s", err);
    return c;
}

/* Sleeps ms unless a signal comes first. */
static void pause_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- snapshots (-n, --json, --batch, not a terminal) --------------------------- */

static int run_snapshots(stream_client *c, const top_opts *o)
{
    stream_top_sample prev, cur;
    char eb[512];
    if (stream_top_sample_take(c, -1, &prev, eb, sizeof eb) != 0)
        die("%s", eb);
    for (long long i = 0; (o->n == 0 || i < o->n) && !interrupted; i++) {
        pause_ms(o->delay_ms);
        if (interrupted)
            break;
        if (stream_top_sample_take(c, -1, &cur, eb, sizeof eb) != 0) {
            stream_top_sample_release(&prev);
            die("%s", eb);
        }
        stream_top_view v;
        stream_buf out = STREAM_BUF_INIT;
        int rc = stream_top_view_build(&prev, &cur, &v);
        if (rc == 0) {
            stream_top_view_sort(&v, STREAM_TOP_SORT_BYTES_IN);
            if (!o->json && i > 0)
                stream_buf_put(&out, "\n", 1);
            rc = o->json ? stream_top_json(&out, &v, o->prefix)
                         : stream_top_text(&out, &v, o->prefix, STREAM_TOP_ALL);
            stream_top_view_release(&v);
        }
        if (rc == 0)
            rc = stream_cli_write_all(1, out.data, out.len, eb, sizeof eb);
        stream_buf_release(&out);
        stream_top_sample_release(&prev);
        prev = cur;
        if (rc != 0) {
            stream_top_sample_release(&prev);
            die("cannot write: %s", rc == STREAM_ENOMEM ? "out of memory" : eb);
        }
    }
    stream_top_sample_release(&prev);
    return interrupted ? 130 : EXIT_OK;
}

/* ---- the live view ------------------------------------------------------------- */

static const char *const view_names[] = {"topics", "groups", "brokers"};
static const int view_tables[] = {STREAM_TOP_TOPICS, STREAM_TOP_GROUPS, STREAM_TOP_BROKERS};

/* What the live view shows and how. */
typedef struct live {
    int view;             /* index into view_names */
    stream_top_sort sort; /* topic order */
    bool paused;          /* space: no new samples */
    char status[512];     /* the last sample's error, or "" */
    stream_top_view v;    /* the figures shown */
} live;

static void draw(const live *l, const top_opts *o, size_t n_brokers)
{
    erase();
    char when[40] = "";
    stream_time_format((int64_t)l->v.time_ms, when, sizeof when);
    attron(A_REVERSE);
    mvprintw(0, 0, "stream-top  %s  brokers %zu  every %.1fs  view %s  sort %s%s%s%s", when,
             n_brokers, (double)o->delay_ms / 1000, view_names[l->view],
             stream_top_sort_name(l->sort), o->prefix[0] ? "  filter " : "", o->prefix,
             l->paused ? "  [paused]" : "");
    clrtoeol();
    attroff(A_REVERSE);
    stream_buf out = STREAM_BUF_INIT;
    stream_top_text(&out, &l->v, o->prefix, view_tables[l->view]);
    int row = 1;
    const char *p = (const char *)out.data, *end = p + out.len;
    while (p && p < end && row < LINES - 1) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        mvaddnstr(row++, 0, p, (int)len < COLS ? (int)len : COLS);
        p = nl ? nl + 1 : end;
    }
    stream_buf_release(&out);
    if (l->status[0])
        mvaddnstr(LINES - 1, 0, l->status, COLS);
    else
        mvaddnstr(LINES - 1, 0, "q quit  tab view  s/S sort  / filter  space pause", COLS);
    refresh();
}

/* '/': reads a prefix on the last line (empty: no filter). */
static void ask_filter(top_opts *o)
{
    char buf[sizeof o->prefix];
    move(LINES - 1, 0);
    clrtoeol();
    addstr("filter prefix: ");
    echo();
    curs_set(1);
    timeout(-1);
    if (getnstr(buf, (int)sizeof buf - 1) == OK)
        strcpy(o->prefix, buf);
    noecho();
    curs_set(0);
}

static int run_live(stream_client *c, top_opts *o)
{
    live l = {.sort = STREAM_TOP_SORT_BYTES_IN};
    stream_top_sample prev = {0}, cur;
    char eb[512];
    if (stream_top_sample_take(c, -1, &prev, eb, sizeof eb) != 0)
        die("%s", eb);
    setlocale(LC_ALL, "");
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    stream_top_view_build(NULL, &prev, &l.v);
    stream_top_view_sort(&l.v, l.sort);
    draw(&l, o, prev.n_brokers);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    bool quit = false;
    while (!quit && !interrupted) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t wait = o->delay_ms -
                       ((now.tv_sec - next.tv_sec) * 1000 + (now.tv_nsec - next.tv_nsec) / 1000000);
        timeout(wait > 0 ? (int)wait : 0);
        int ch = getch();
        switch (ch) {
        case 'q':
        case 'Q':
            quit = true;
            continue;
        case '\t':
            l.view = (l.view + 1) % 3;
            break;
        case KEY_BTAB:
            l.view = (l.view + 2) % 3;
            break;
        case 's':
            l.sort = (stream_top_sort)((l.sort + 1) % STREAM_TOP_SORT__COUNT);
            break;
        case 'S':
            l.sort =
                (stream_top_sort)((l.sort + STREAM_TOP_SORT__COUNT - 1) % STREAM_TOP_SORT__COUNT);
            break;
        case ' ':
            l.paused = !l.paused;
            break;
        case '/':
            ask_filter(o);
            break;
        case KEY_RESIZE:
            break;
        case ERR: /* the delay passed */
            clock_gettime(CLOCK_MONOTONIC, &next);
            if (l.paused)
                break;
            if (stream_top_sample_take(c, -1, &cur, eb, sizeof eb) != 0) {
                snprintf(l.status, sizeof l.status, "%s", eb);
                break;
            }
            l.status[0] = '\0';
            stream_top_view_release(&l.v);
            stream_top_view_build(&prev, &cur, &l.v);
            stream_top_sample_release(&prev);
            prev = cur;
            break;
        default:
            continue;
        }
        stream_top_view_sort(&l.v, l.sort);
        draw(&l, o, prev.n_brokers);
    }
    endwin();
    stream_top_view_release(&l.v);
    stream_top_sample_release(&prev);
    return interrupted ? 130 : EXIT_OK;
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    top_opts o;
    parse_options(argc, argv, &o);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    stream_client *c = new_client(&o);
    bool live_view = !o.json && !o.batch && o.n == 0 && isatty(0) && isatty(1);
    int st = live_view ? run_live(c, &o) : run_snapshots(c, &o);
    stream_client_free(c);
    return st;
}
