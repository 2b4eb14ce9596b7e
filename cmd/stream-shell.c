/*
 * stream-shell - an interactive shell for a stream broker, and a script runner.
 *
 * The language and every command live in libstream (shell.h); this file is
 * the glue: options, readline (prompt, line editing, history, Tab), script
 * input, signals, and turning the session's output and messages into bytes
 * on stdout and lines on stderr.
 *
 * Interactive only when standard input is a terminal and neither -c nor a
 * FILE is given. Otherwise readline is never initialised: no prompt, no
 * terminal escapes, nothing on stdout but what commands print; scripts stop
 * at the first failing command unless -k.
 *
 * Ctrl-C: SIGINT only sets a flag (no SA_RESTART, so waits return). At the
 * prompt, readline's signal hook sees it and discards the line; during a
 * command, `sub` sees it and returns to the prompt. In a script it ends the
 * script after the running command (exit 130); a second one kills.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "common.h"
#include "stream/cli.h"
#include "stream/error.h"
#include "stream/ops.h"
#include "stream/shell.h"

static const char usage_text[] =
    "Usage: stream-shell [OPTION]... [FILE]\n"
    "Explore and manage a stream broker interactively, or run a script of commands.\n"
    "\n"
    "  -b, --brokers LIST     host:port,... (default $STREAM_BROKERS or 127.0.0.1:9292)\n"
    CMD_TLS_HELP("      --key FILE            its PEM private key\n")
    "  -c, --command CMDS     run CMDS (separated by ';' or newlines) and exit\n"
    "  -k, --keep-going       in a script, go on after a command fails\n"
    "      --json             start with 'set format json': JSON for every command\n"
    "      --timeout-ms MS    connect and request timeout (default 5000 and 30000)\n"
    "      --no-history       neither read nor write the history file\n"
    "  -q, --quiet            no banner and no notices\n"
    "  -h, --help             show this help and exit\n"
    "      --version          show the version and exit\n"
    "\n"
    "FILE ('-' for standard input) is a script: commands separated by ';' or\n"
    "newlines, '#' comments. Without -c or FILE, standard input is read: with line\n"
    "editing, history and Tab completion on a terminal, as a script otherwise.\n"
    "Type 'help' in the shell for its commands.\n"
    "\n"
    "History: $XDG_STATE_HOME/stream/history, else ~/.stream_history.\n"
    "Exit status: 0 when every command succeeded, else the status of the last that\n"
    "failed (1 failure, 2 usage, 3 nothing to read, 4 not found, 5 exists); 2 for\n"
    "bad options; 130 when a script was interrupted. See stream-shell(1).\n";

enum { OPT_JSON = 256, OPT_TIMEOUT, OPT_NO_HISTORY, OPT_VERSION };

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"command", required_argument, NULL, 'c'},
    {"keep-going", no_argument, NULL, 'k'},
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"no-history", no_argument, NULL, OPT_NO_HISTORY},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"key", required_argument, NULL, CMD_OPT_CERT_KEY},
    CMD_TLS_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

typedef struct shell_opts {
    const char *brokers; /* -b */
    const char *command; /* -c */
    const char *file;    /* FILE */
    bool keep_going;     /* -k */
    bool json;           /* --json */
    int timeout_ms;      /* --timeout-ms; 0: defaults */
    bool no_history;     /* --no-history */
    bool quiet;          /* -q */
} shell_opts;

/* What the callbacks need: how to decorate messages. */
typedef struct glue {
    bool interactive;  /* a person at a terminal */
    bool quiet;        /* -q */
    bool color_err;    /* colour on stderr */
    const char *where; /* script location for messages ("FILE:LINE"), or NULL */
    char where_buf[512];
} glue;

static volatile sig_atomic_t interrupted;
static stream_shell *the_shell; /* for readline's completion callback */

static void on_sigint(int sig)
{
    interrupted = 1;
}

/* Colour only on a terminal, and never with NO_COLOR (no-color.org) or a
 * dumb terminal. */
static bool use_color(int fd)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    return isatty(fd) && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
}

/* ---- the session's callbacks ---------------------------------------------------- */

static int out_write(void *arg, const void *p, size_t len)
{
    return stream_cli_write_all(1, p, len, NULL, 0);
}

static void out_message(void *arg, stream_shell_msg_kind kind, const char *text)
{
    glue *g = arg;
    if (kind == STREAM_SHELL_NOTICE && (g->quiet || !g->interactive))
        return;
    if (g->interactive) {
        static const char *const label[] = {"error: ", "warning: ", ""};
        static const char *const color[] = {"\033[1;31m", "\033[1;33m", "\033[2m"};
        if (g->color_err)
            fprintf(stderr, "%s%s\033[0m%s\n", color[kind], label[kind], text);
        else
            fprintf(stderr, "%s%s\n", label[kind], text);
    } else {
        fprintf(stderr, "%s: %s%s%s%s\n", cmd_name, g->where ? g->where : "", g->where ? ": " : "",
                kind == STREAM_SHELL_WARNING ? "warning: " : "", text);
    }
    fflush(stderr);
}

/* ---- input: lines that continue (open quotes, trailing backslash) ------------------ */

static bool continues(const char *text)
{
    stream_shell_line l;
    stream_shell_parse(text, strlen(text), STREAM_SHELL_PARTIAL, &l, NULL, 0);
    bool more = l.continues;
    stream_shell_line_release(&l);
    return more;
}

/* Appends "\n" and more to *text (malloc'd). false when out of memory. */
static bool join(char **text, const char *more)
{
    size_t a = strlen(*text), b = strlen(more);
    char *s = realloc(*text, a + b + 2);
    if (s == NULL)
        return false;
    s[a] = '\n';
    memcpy(s + a + 1, more, b + 1);
    *text = s;
    return true;
}

/* ---- scripts ------------------------------------------------------------------------ */

/* Runs the commands read from `in` (named `name` in messages, NULL for -c).
 * Returns the exit status. */
static int run_script(stream_shell *sh, glue *g, FILE *in, const char *name, bool keep_going)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int status = EXIT_OK;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[n - 1] = '\0';
        char *text = strdup(line);
        if (text == NULL)
            die("out of memory");
        unsigned long first = lineno;
        while (continues(text) && (n = getline(&line, &cap, in)) >= 0) {
            lineno++;
            if (n > 0 && line[n - 1] == '\n')
                line[n - 1] = '\0';
            if (!join(&text, line))
                die("out of memory");
        }
        if (name) {
            snprintf(g->where_buf, sizeof(g->where_buf), "%s:%lu", name, first);
            g->where = g->where_buf;
        }
        int st = stream_shell_run_line(sh, text, keep_going);
        free(text);
        if (st != 0)
            status = st;
        if (interrupted) {
            status = 130;
            break;
        }
        if ((st != 0 && !keep_going) || stream_shell_quit_requested(sh))
            break;
    }
    if (ferror(in) && status == EXIT_OK) {
        g->where = NULL;
        warn("cannot read %s: %s", name ? name : "commands", strerror(errno));
        status = EXIT_FAIL;
    }
    free(line);
    return status;
}

/* ---- the terminal ------------------------------------------------------------------- */

/* Tab: the session's candidates for the word before the cursor. */
static char **complete(const char *text, int start, int end)
{
    rl_attempted_completion_over = 1; /* never fall back to file names */
    stream_shell_candidates c;
    if (stream_shell_complete(the_shell, rl_line_buffer, (size_t)end, &c) != 0 || c.count == 0) {
        stream_shell_candidates_release(&c);
        return NULL;
    }
    char **m = calloc(c.count + 2, sizeof(*m));
    if (m == NULL) {
        stream_shell_candidates_release(&c);
        return NULL;
    }
    /* m[0] is what replaces the word: the longest common prefix. */
    size_t lcp = strlen(c.items[0]);
    bool all_eq = true;
    for (size_t i = 0; i < c.count; i++) {
        size_t k = 0;
        while (k < lcp && c.items[i][k] == c.items[0][k])
            k++;
        lcp = k;
        size_t len = strlen(c.items[i]);
        all_eq &= len > 0 && c.items[i][len - 1] == '=';
        m[c.count == 1 ? 0 : i + 1] = c.items[i];
    }
    if (c.count > 1)
        m[0] = strndup(c.items[0], lcp);
    /* "retention.ms=" wants its value right after it, not a space. */
    if (all_eq)
        rl_completion_suppress_append = 1;
    free(c.items); /* the strings now belong to readline */
    return m;
}

/* Ctrl-C at the prompt: readline's read was interrupted; drop the line. */
static int on_rl_signal(void)
{
    if (!interrupted)
        return 0;
    interrupted = 0;
    fputs("^C", rl_outstream);
    rl_crlf();
    rl_replace_line("", 1);
    rl_on_new_line();
    rl_redisplay();
    return 0;
}

/* $XDG_STATE_HOME/stream/history, else ~/.stream_history; NULL when neither
 * can be had. The file is created (0600) so appending works. */
static char *history_path(void)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *path = NULL;
    if (state && *state) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/stream", state);
        mkdir(state, 0700); /* may exist; failures show at open below */
        mkdir(dir, 0700);
        if (asprintf(&path, "%s/history", dir) < 0)
            path = NULL;
    } else if (home && *home) {
        if (asprintf(&path, "%s/.stream_history", home) < 0)
            path = NULL;
    }
    if (path == NULL)
        return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

#define HISTORY_MAX 1000

static void remember(const char *line, const char *path)
{
    if (line[0] == '\0' || line[0] == ' ')
        return; /* as bash's ignorespace: a leading blank keeps a line out */
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && strcmp(last->line, line) == 0)
        return;
    add_history(line);
    if (path)
        append_history(1, path);
}

static const char *prompt(stream_shell *sh, bool color, char *buf, size_t len)
{
    bool up = stream_shell_connected(sh);
    const char *broker = stream_shell_broker(sh);
    if (!color)
        snprintf(buf, len, "stream %s%s> ", broker, up ? "" : " (disconnected)");
    else
        /* \001 and \002 tell readline the escapes take no room on the line. */
        snprintf(buf, len, "stream \001\033[1;%dm\002%s%s\001\033[0m\002> ", up ? 32 : 31, broker,
                 up ? "" : " (disconnected)");
    return buf;
}

static int run_interactive(stream_shell *sh, glue *g, const shell_opts *o)
{
    the_shell = sh;
    rl_readline_name = "stream-shell";
    rl_attempted_completion_function = complete;
    rl_completer_word_break_characters = " \t\n;";
    rl_completer_quote_characters = "'\"";
    rl_catch_signals = 0;
    rl_signal_event_hook = on_rl_signal;
    if (!isatty(1))
        rl_outstream = stderr; /* keep stdout for what commands print */
    bool color = use_color(fileno(rl_outstream ? rl_outstream : stdout));

    char *hist = o->no_history ? NULL : history_path();
    using_history();
    if (hist) {
        read_history(hist);
        history_truncate_file(hist, HISTORY_MAX);
    }
    stifle_history(HISTORY_MAX);

    if (!o->quiet)
        fprintf(stderr,
                "stream-shell %s: 'help' lists the commands, Tab completes, Ctrl-D leaves.\n",
                STREAM_VERSION);
    stream_shell_connect(sh);

    char pbuf[600];
    for (;;) {
        stream_shell_poll(sh);
        interrupted = 0;
        char *line = readline(prompt(sh, color, pbuf, sizeof(pbuf)));
        if (line == NULL) {
            fputc('\n', rl_outstream ? rl_outstream : stdout);
            break;
        }
        while (continues(line)) {
            char *more = readline("> ");
            if (more == NULL)
                break;
            bool ok = join(&line, more);
            free(more);
            if (!ok)
                break;
        }
        remember(line, hist);
        interrupted = 0;
        stream_shell_run_line(sh, line, true);
        free(line);
        if (interrupted) {
            /* The terminal echoed ^C where the output stopped. */
            fputc('\n', stdout);
            fflush(stdout);
            interrupted = 0;
        }
        if (stream_shell_quit_requested(sh))
            break;
    }
    free(hist);
    return EXIT_OK;
}

/* ---- main --------------------------------------------------------------------------- */

static void parse_options(int argc, char **argv, shell_opts *o)
{
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":b:c:kqh", long_options, NULL)) != -1) {
        switch (opt) {
        case CMD_OPT_TLS:
        case CMD_OPT_CACERT:
        case CMD_OPT_CERT:
        case CMD_OPT_CERT_KEY:
            cmd_tls_option(opt, optarg);
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 'c':
            o->command = optarg;
            break;
        case 'k':
            o->keep_going = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_TIMEOUT:
            o->timeout_ms = (int)cmd_parse_int(optarg, 1, 3600000, "--timeout-ms");
            break;
        case OPT_NO_HISTORY:
            o->no_history = true;
            break;
        case 'q':
            o->quiet = true;
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
        o->file = argv[optind++];
    if (optind < argc)
        usage_error("unexpected argument '%s' (one script file at most)", argv[optind]);
    if (o->file && o->command)
        usage_error("-c and a script FILE cannot be combined");
}

int main(int argc, char **argv)
{
    cmd_init(argv[0]);
    /* Multibyte input for readline; numbers stay in the C locale. */
    setlocale(LC_CTYPE, "");
    shell_opts o = {0};
    parse_options(argc, argv, &o);

    bool interactive = !o.command && !o.file && isatty(0);
    glue g = {.interactive = interactive, .quiet = o.quiet, .color_err = use_color(2)};

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sa.sa_flags = interactive ? 0 : SA_RESETHAND; /* no SA_RESTART: waits return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    stream_client_conf ccf;
    cmd_client_conf(&ccf, o.brokers, "stream-shell/" STREAM_VERSION);
    stream_shell_conf conf = {.brokers = cmd_brokers(o.brokers),
                              .client = &ccf,
                              .client_name = "stream-shell/" STREAM_VERSION,
                              .connect_timeout_ms = o.timeout_ms,
                              .request_timeout_ms = o.timeout_ms,
                              .json = o.json,
                              .write = out_write,
                              .message = out_message,
                              .arg = &g,
                              .interrupt = &interrupted};
    stream_shell *sh;
    char err[512];
    int rc = stream_shell_new(&conf, &sh, err, sizeof(err));
    if (rc == STREAM_EINVAL)
        usage_error("%s", err);
    if (rc != 0)
        die("%s", err[0] ? err : stream_strerror(rc));

    int status;
    if (interactive) {
        status = run_interactive(sh, &g, &o);
    } else if (o.command && *o.command == '\0') {
        status = EXIT_OK; /* fmemopen refuses an empty buffer */
    } else if (o.command) {
        FILE *in = fmemopen((void *)o.command, strlen(o.command), "r");
        if (in == NULL)
            die("out of memory");
        status = run_script(sh, &g, in, NULL, o.keep_going);
        fclose(in);
    } else if (o.file && strcmp(o.file, "-") != 0) {
        FILE *in = fopen(o.file, "r");
        if (in == NULL) {
            stream_shell_free(sh);
            die("cannot open %s: %s", o.file, strerror(errno));
        }
        status = run_script(sh, &g, in, o.file, o.keep_going);
        fclose(in);
    } else {
        status = run_script(sh, &g, stdin, "stdin", o.keep_going);
    }
    stream_shell_free(sh);
    if (fflush(stdout) != 0 && status == EXIT_OK)
        status = EXIT_FAIL;
    return status;
}
