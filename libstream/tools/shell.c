/*
 * shell.c - stream-shell's words, options, completion and help (see
 * shell.h); the commands themselves and the session are in shell_cmds.c.
 *
 * Completion parses the line up to the cursor with the same parser that
 * runs commands (in its lenient PARTIAL mode), walks the words of the last
 * command with the same option table that stream__shell_getopt uses, and
 * so knows exactly what the word under the cursor is: a command, an
 * option, an option's value, a keyword's value or a positional argument.
 * Nothing is guessed from the raw text, so quoting and ';' work as they do
 * when the line runs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell_internal.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/ops.h"
#include "base/internal.h"

/* ---- words ------------------------------------------------------------------- */

void stream_shell_line_release(stream_shell_line *line)
{
    for (size_t i = 0; i < line->count; i++) {
        for (size_t k = 0; k < line->cmds[i].argc; k++)
            free(line->cmds[i].argv[k]);
        free(line->cmds[i].argv);
    }
    free(line->cmds);
    memset(line, 0, sizeof(*line));
}

/* The parser's state: the word being built and the command being built. */
typedef struct parser {
    stream_shell_line *out;
    stream_buf word; /* bytes of the current word */
    bool have_word;  /* a word has begun (also an empty one: "") */
    char **argv;     /* words of the current command */
    size_t argc, cap;
    int err; /* latched STREAM_ENOMEM */
} parser;

static void end_word(parser *p)
{
    if (!p->have_word || p->err)
        return;
    p->have_word = false;
    if (p->argc + 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        char **a = realloc(p->argv, cap * sizeof(*a));
        if (a == NULL) {
            p->err = STREAM_ENOMEM;
            return;
        }
        p->argv = a;
        p->cap = cap;
    }
    char *w = malloc(p->word.len + 1);
    if (w == NULL || stream_buf_ok(&p->word) != 0) {
        free(w);
        p->err = STREAM_ENOMEM;
        return;
    }
    if (p->word.len)
        memcpy(w, p->word.data, p->word.len);
    w[p->word.len] = '\0';
    p->argv[p->argc++] = w;
    p->argv[p->argc] = NULL;
    stream_buf_reset(&p->word);
}

static void end_command(parser *p)
{
    end_word(p);
    if (p->err || p->argc == 0)
        return;
    stream_shell_line *l = p->out;
    stream_shell_argv *c = realloc(l->cmds, (l->count + 1) * sizeof(*c));
    if (c == NULL) {
        p->err = STREAM_ENOMEM;
        return;
    }
    l->cmds = c;
    l->cmds[l->count++] = (stream_shell_argv){.argc = p->argc, .argv = p->argv};
    p->argv = NULL;
    p->argc = p->cap = 0;
}

static void add_char(parser *p, char c)
{
    stream_buf_put_u8(&p->word, (uint8_t)c);
    p->have_word = true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int stream_shell_parse(const char *text, size_t len, unsigned flags, stream_shell_line *out,
                       char *errbuf, size_t errbuf_len)
{
    memset(out, 0, sizeof(*out));
    parser p = {.out = out};
    stream_buf_init(&p.word);
    bool partial = flags & STREAM_SHELL_PARTIAL;
    int rc = 0;
    bool after_sep = true; /* at the start, or right after ';' (a command starts) */
    size_t i = 0;
    while (i < len && !p.err) {
        char c = text[i];
        if (is_blank(c)) {
            end_word(&p);
            i++;
            continue;
        }
        if (c == ';') {
            end_command(&p);
            after_sep = true;
            i++;
            continue;
        }
        after_sep = false;
        if (c == '#' && !p.have_word)
            break; /* a comment: the rest of the line */
        if (c == '\'') {
            p.have_word = true;
            const char *q = memchr(text + i + 1, '\'', len - i - 1);
            size_t end = q ? (size_t)(q - text) : len;
            stream_buf_put(&p.word, text + i + 1, end - i - 1);
            if (q == NULL) {
                out->open_quote = '\'';
                out->continues = true;
                if (!partial) {
                    rc = STREAM_EINVAL;
                    stream__errf(errbuf, errbuf_len, "unterminated ' quote");
                }
                i = len;
                break;
            }
            i = end + 1;
            continue;
        }
        if (c == '"') {
            p.have_word = true;
            i++;
            bool closed = false;
            while (i < len) {
                char d = text[i];
                if (d == '"') {
                    closed = true;
                    i++;
                    break;
                }
                if (d == '\\' && i + 1 < len && strchr("\"\\$`\n", text[i + 1])) {
                    if (text[i + 1] != '\n')
                        stream_buf_put_u8(&p.word, (uint8_t)text[i + 1]);
                    i += 2;
                    continue;
                }
                stream_buf_put_u8(&p.word, (uint8_t)d);
                i++;
            }
            if (!closed) {
                out->open_quote = '"';
                out->continues = true;
                if (!partial) {
                    rc = STREAM_EINVAL;
                    stream__errf(errbuf, errbuf_len, "unterminated \" quote");
                }
                break;
            }
            continue;
        }
        if (c == '\\') {
            if (i + 1 < len) {
                if (text[i + 1] != '\n')
                    add_char(&p, text[i + 1]);
                i += 2;
                continue;
            }
            p.have_word = true;
            out->continues = true;
            if (!partial) {
                rc = STREAM_EINVAL;
                stream__errf(errbuf, errbuf_len, "trailing backslash");
            }
            i++;
            continue;
        }
        add_char(&p, c);
        i++;
    }
    out->in_word = p.have_word;
    if (rc == 0) {
        end_command(&p);
        out->new_command = after_sep;
    }
    if (p.err && rc == 0) {
        rc = p.err;
        stream__errf(errbuf, errbuf_len, "out of memory");
    }
    for (size_t k = 0; k < p.argc; k++)
        free(p.argv[k]);
    free(p.argv);
    stream_buf_release(&p.word);
    if (rc != 0) {
        char q = out->open_quote;
        bool more = out->continues;
        stream_shell_line_release(out);
        out->open_quote = q;
        out->continues = more;
    }
    return rc;
}

/* ---- options ------------------------------------------------------------------ */

/* A word that is an option (not "-", not "-5", not after "--"). */
static bool is_option_word(const char *w)
{
    return w[0] == '-' && w[1] != '\0' && !(w[1] >= '0' && w[1] <= '9');
}

/* The option of cmd that word names (long "--name" or "--name=value",
 * short "-p" or "-pVALUE"); *inline_value gets the value written in the
 * same word, or NULL. Returns its index, or -1. */
static int find_option(const stream__shell_cmd *cmd, const char *w, const char **inline_value)
{
    *inline_value = NULL;
    if (cmd->opts == NULL)
        return -1;
    if (w[1] == '-') {
        const char *name = w + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        for (int i = 0; cmd->opts[i].short_name || cmd->opts[i].long_name; i++) {
            const char *ln = cmd->opts[i].long_name;
            if (ln && strlen(ln) == n && strncmp(ln, name, n) == 0) {
                if (eq)
                    *inline_value = eq + 1;
                return i;
            }
        }
        return -1;
    }
    for (int i = 0; cmd->opts[i].short_name || cmd->opts[i].long_name; i++) {
        if (cmd->opts[i].short_name == w[1]) {
            if (w[2] != '\0')
                *inline_value = w + 2;
            return i;
        }
    }
    return -1;
}

int stream__shell_getopt(const stream__shell_cmd *cmd, size_t argc, char **argv,
                         stream__shell_args *out, char *errbuf, size_t errbuf_len)
{
    memset(out, 0, sizeof(*out));
    /* Positionals are gathered in place at the front of argv[1..]: argv is
     * the caller's to reorder. */
    char **pos = argv + 1;
    size_t npos = 0;
    bool ended = false;
    for (size_t i = 1; i < argc; i++) {
        char *w = argv[i];
        if (ended || !is_option_word(w)) {
            pos[npos++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            ended = true;
            continue;
        }
        const char *value;
        int k = find_option(cmd, w, &value);
        if (k < 0) {
            stream__errf(errbuf, errbuf_len, "%s: unknown option '%s' (help %s lists them)",
                         cmd->info.name, w, cmd->info.name);
            return STREAM_EINVAL;
        }
        const stream__shell_opt *o = &cmd->opts[k];
        if (o->value == SH_ARG_NONE && value != NULL) {
            if (w[1] == '-') {
                stream__errf(errbuf, errbuf_len, "%s: option '--%s' takes no value", cmd->info.name,
                             o->long_name);
                return STREAM_EINVAL;
            }
            /* "-ab" style: no such thing here (one short option per word). */
            stream__errf(errbuf, errbuf_len, "%s: unknown option '%s' (help %s lists them)",
                         cmd->info.name, w, cmd->info.name);
            return STREAM_EINVAL;
        }
        if (o->value != SH_ARG_NONE && value == NULL) {
            if (i + 1 >= argc) {
                stream__errf(errbuf, errbuf_len, "%s: option '%s' needs a value", cmd->info.name,
                             w);
                return STREAM_EINVAL;
            }
            value = argv[++i];
        }
        if (out->nopt == sizeof(out->opt) / sizeof(out->opt[0])) {
            stream__errf(errbuf, errbuf_len, "%s: too many options", cmd->info.name);
            return STREAM_EINVAL;
        }
        out->opt[out->nopt].index = k;
        out->opt[out->nopt++].value = value;
    }
    out->pos = pos;
    out->npos = npos;
    return 0;
}

/* ---- completion --------------------------------------------------------------- */

void stream_shell_candidates_release(stream_shell_candidates *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->items[i]);
    free(c->items);
    memset(c, 0, sizeof(*c));
}

/* Adds prefix_out + word when word starts with the typed text. */
static void offer(stream_shell_candidates *c, const char *typed, const char *pre, const char *word,
                  const char *post)
{
    if (c->err)
        return;
    size_t lp = strlen(pre), lw = strlen(word), lq = strlen(post);
    size_t lt = strlen(typed);
    /* Compare the typed text against pre + word + post without building it. */
    size_t n = lp + lw + lq;
    char *s = malloc(n + 1);
    if (s == NULL) {
        c->err = STREAM_ENOMEM;
        return;
    }
    memcpy(s, pre, lp);
    memcpy(s + lp, word, lw);
    memcpy(s + lp + lw, post, lq);
    s[n] = '\0';
    if (lt > n || strncmp(s, typed, lt) != 0) {
        free(s);
        return;
    }
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **a = realloc(c->items, cap * sizeof(*a));
        if (a == NULL) {
            free(s);
            c->err = STREAM_ENOMEM;
            return;
        }
        c->items = a;
        c->cap = cap;
    }
    c->items[c->count++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_unique(stream_shell_candidates *c)
{
    if (c->count == 0)
        return;
    qsort(c->items, c->count, sizeof(*c->items), cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < c->count; i++) {
        if (strcmp(c->items[i], c->items[k - 1]) == 0)
            free(c->items[i]);
        else
            c->items[k++] = c->items[i];
    }
    c->count = k;
}

typedef struct setting_offer {
    stream_shell_candidates *c;
    const char *typed;
    const char *pre;
    bool with_eq; /* offer "name=" (-c) rather than "name" (--delete-config) */
} setting_offer;

static void offer_setting(void *arg, const char *name)
{
    setting_offer *so = arg;
    offer(so->c, so->typed, so->pre, name, so->with_eq ? "=" : "");
}

/* -c KEY=VALUE: setting names with "=", then, once "KEY=" is typed, the
 * values of settings that have a fixed set (enums and booleans). */
static void offer_config_kv(stream_shell_candidates *c, const char *typed, const char *pre)
{
    const char *eq = strchr(typed + strlen(pre), '=');
    if (eq == NULL) {
        setting_offer so = {.c = c, .typed = typed, .pre = pre, .with_eq = true};
        stream_ops_each_topic_setting(offer_setting, &so);
        return;
    }
    char key[128];
    size_t klen = (size_t)(eq - (typed + strlen(pre)));
    if (klen >= sizeof(key))
        return;
    memcpy(key, typed + strlen(pre), klen);
    key[klen] = '\0';
    const stream_config_setting *s = stream_config_setting_find(key, false);
    if (s == NULL || s->scope != STREAM_CONFIG_SCOPE_TOPIC)
        return;
    char head[300];
    snprintf(head, sizeof(head), "%s%s=", pre, key);
    if (s->type == STREAM_CONFIG_TYPE_BOOL) {
        offer(c, typed, head, "true", "");
        offer(c, typed, head, "false", "");
    } else if (s->values) {
        const char *v = s->values;
        while (*v) {
            const char *bar = strchr(v, '|');
            size_t n = bar ? (size_t)(bar - v) : strlen(v);
            char one[64];
            if (n < sizeof(one)) {
                memcpy(one, v, n);
                one[n] = '\0';
                offer(c, typed, head, one, "");
            }
            v += n + (bar ? 1 : 0);
        }
    }
}

/* Offers the words of `kind` (values of options, keywords and positionals). */
static void offer_kind(stream_shell_candidates *c, stream__shell_arg kind, const char *typed,
                       const char *pre, const char *session_key, stream_shell_names_fn names,
                       void *arg)
{
    switch (kind) {
    case SH_ARG_TOPIC:
    case SH_ARG_GROUP: {
        const char *const *list = NULL;
        size_t n = 0;
        if (names)
            names(arg, kind == SH_ARG_TOPIC ? STREAM_SHELL_NAMES_TOPICS : STREAM_SHELL_NAMES_GROUPS,
                  &list, &n);
        /* Internal topics (__consumer_offsets) only when asked for. */
        bool internal = typed[strlen(pre)] == '_';
        for (size_t i = 0; i < n; i++)
            if (internal || strncmp(list[i], "__", 2) != 0)
                offer(c, typed, pre, list[i], "");
        break;
    }
    case SH_ARG_COMMAND: {
        size_t n;
        const stream__shell_cmd *t = stream__shell_table(&n);
        for (size_t i = 0; i < n; i++)
            offer(c, typed, pre, t[i].info.name, "");
        break;
    }
    case SH_ARG_SESSION_KEY:
        for (size_t i = 0; stream__shell_session_keys[i]; i++)
            offer(c, typed, pre, stream__shell_session_keys[i], "");
        break;
    case SH_ARG_SESSION_VALUE: {
        const char *const *values;
        size_t n = session_key ? stream__shell_session_values(session_key, &values) : 0;
        for (size_t i = 0; i < n; i++)
            offer(c, typed, pre, values[i], "");
        break;
    }
    case SH_ARG_CONFIG_KV:
        offer_config_kv(c, typed, pre);
        break;
    case SH_ARG_CONFIG_KEY: {
        setting_offer so = {.c = c, .typed = typed, .pre = pre, .with_eq = false};
        stream_ops_each_topic_setting(offer_setting, &so);
        break;
    }
    case SH_ARG_OFFSET:
        offer(c, typed, pre, "beginning", "");
        offer(c, typed, pre, "end", "");
        break;
    case SH_ARG_NONE:
    case SH_ARG_TEXT:
        break;
    }
}

/* Completes the word `typed` of a command whose earlier words are
 * prior[0..nprior) (prior[0] the command). */
static void complete_in_command(const stream__shell_cmd *cmd, char **prior, size_t nprior,
                                const char *typed, stream_shell_names_fn names, void *arg,
                                stream_shell_candidates *c)
{
    stream__shell_arg pending = SH_ARG_NONE; /* the value the previous word asks for */
    bool ended = false;
    const char *positional[4] = {NULL, NULL, NULL, NULL};
    size_t npos = 0;
    const char *used_kw[8];
    size_t nused = 0;
    for (size_t i = 1; i < nprior; i++) {
        const char *w = prior[i];
        if (pending != SH_ARG_NONE) {
            pending = SH_ARG_NONE;
            continue;
        }
        if (!ended && strcmp(w, "--") == 0) {
            ended = true;
            continue;
        }
        if (!ended && is_option_word(w)) {
            const char *value;
            int k = find_option(cmd, w, &value);
            if (k >= 0 && cmd->opts[k].value != SH_ARG_NONE && value == NULL)
                pending = cmd->opts[k].value;
            continue;
        }
        if (npos >= 1 && cmd->keywords) {
            bool kw = false;
            for (size_t k = 0; cmd->keywords[k].name; k++) {
                if (strcmp(cmd->keywords[k].name, w) == 0) {
                    pending = cmd->keywords[k].value;
                    if (nused < sizeof(used_kw) / sizeof(used_kw[0]))
                        used_kw[nused++] = cmd->keywords[k].name;
                    kw = true;
                }
            }
            if (kw)
                continue;
        }
        if (npos < sizeof(positional) / sizeof(positional[0]))
            positional[npos] = w;
        npos++;
    }
    if (pending != SH_ARG_NONE) {
        offer_kind(c, pending, typed, "", positional[0], names, arg);
        return;
    }
    if (!ended && (is_option_word(typed) || strcmp(typed, "-") == 0) && cmd->opts) {
        /* "--name=value": complete the value after the "=". */
        const char *eq = typed[1] == '-' ? strchr(typed, '=') : NULL;
        if (eq) {
            const char *value;
            int k = find_option(cmd, typed, &value);
            if (k >= 0 && cmd->opts[k].value != SH_ARG_NONE) {
                char pre[64];
                snprintf(pre, sizeof(pre), "--%s=", cmd->opts[k].long_name);
                offer_kind(c, cmd->opts[k].value, typed, pre, positional[0], names, arg);
            }
            return;
        }
        for (size_t k = 0; cmd->opts[k].short_name || cmd->opts[k].long_name; k++) {
            if (cmd->opts[k].long_name)
                offer(c, typed, "--", cmd->opts[k].long_name, "");
            if (cmd->opts[k].short_name && typed[1] != '-') {
                char s[3] = {'-', cmd->opts[k].short_name, '\0'};
                offer(c, typed, "", s, "");
            }
        }
        return;
    }
    stream__shell_arg kind = npos == 0 ? cmd->first : cmd->rest;
    offer_kind(c, kind, typed, "", positional[0], names, arg);
    if (npos >= 1 && cmd->keywords) {
        for (size_t k = 0; cmd->keywords[k].name; k++) {
            bool used = false;
            for (size_t u = 0; u < nused; u++)
                used |= strcmp(used_kw[u], cmd->keywords[k].name) == 0;
            if (!used)
                offer(c, typed, "", cmd->keywords[k].name, "");
        }
    }
}

int stream_shell_complete_text(const char *text, size_t len, stream_shell_names_fn names, void *arg,
                               stream_shell_candidates *out)
{
    memset(out, 0, sizeof(*out));
    stream_shell_line line;
    int rc = stream_shell_parse(text, len, STREAM_SHELL_PARTIAL, &line, NULL, 0);
    if (rc != 0)
        return rc;
    char **prior = NULL;
    size_t nprior = 0;
    const char *typed = "";
    if (!line.new_command && line.count > 0) {
        stream_shell_argv *last = &line.cmds[line.count - 1];
        prior = last->argv;
        nprior = last->argc;
        if (line.in_word) {
            typed = last->argv[last->argc - 1];
            nprior--;
        }
    }
    if (nprior == 0) {
        offer_kind(out, SH_ARG_COMMAND, typed, "", NULL, names, arg);
        offer(out, typed, "", "exit", ""); /* quit's alias is a command too */
    } else {
        const stream__shell_cmd *cmd = stream__shell_find(prior[0]);
        if (cmd)
            complete_in_command(cmd, prior, nprior, typed, names, arg, out);
    }
    stream_shell_line_release(&line);
    if (out->err) {
        stream_shell_candidates_release(out);
        return STREAM_ENOMEM;
    }
    sort_unique(out);
    return 0;
}

/* ---- help ------------------------------------------------------------------------ */

const stream_shell_command_info *stream_shell_command_at(size_t i)
{
    size_t n;
    const stream__shell_cmd *t = stream__shell_table(&n);
    return i < n ? &t[i].info : NULL;
}

static void put_str(stream_buf *out, const char *s)
{
    stream_buf_put(out, s, strlen(s));
}

int stream_shell_help(stream_buf *out, const char *command)
{
    size_t n;
    const stream__shell_cmd *t = stream__shell_table(&n);
    if (command == NULL || *command == '\0') {
        put_str(out, "Commands (help COMMAND for details):\n");
        for (size_t i = 0; i < n; i++) {
            char line[256];
            snprintf(line, sizeof(line), "  %-9s %s\n", t[i].info.name, t[i].info.summary);
            put_str(out, line);
        }
        put_str(out, "Tab completes commands, options, topics and groups; Up recalls history;\n"
                     "Ctrl-C stops a running sub; commands on one line are separated by ';'.\n");
        return stream_buf_ok(out);
    }
    const stream__shell_cmd *c = stream__shell_find(command);
    if (c == NULL)
        return STREAM_ENOENT;
    put_str(out, "Usage: ");
    put_str(out, c->info.name);
    if (c->info.synopsis[0]) {
        stream_buf_put_u8(out, ' ');
        put_str(out, c->info.synopsis);
    }
    stream_buf_put_u8(out, '\n');
    put_str(out, c->help);
    return stream_buf_ok(out);
}
