/*
 * config.c - the settings table, value parsing and validation, the key=value
 * tokenizer, and the mapping of topic settings onto stream_log_config.
 *
 * A stream_config is a fixed array with one slot per row of STREAM_CONFIG_MAP,
 * indexed by stream_config_id: no hashing, no lists, and a lookup by id is an
 * array access. Every slot always holds a valid value; unset slots hold the
 * table default, parsed by the same code as user input, so a bad default in
 * the table fails stream_config_new (and the unit tests) instead of surfacing
 * as an odd value at run time.
 *
 * Text comes from files, the command line and the network (alter_configs), so
 * the tokenizer works on (text, len) and never trusts a terminator: it copies
 * the input once, checks for NUL bytes, and splits the copy in place.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream/config.h"
#include "stream/error.h"
#include "base/internal.h"

/* Files larger than this are not configs; refusing them keeps a mistaken path
 * (a log segment, /dev/zero) from eating memory. */
#define CONFIG_FILE_MAX (16u << 20)

static const stream_config_setting settings[STREAM_CONFIG_COUNT] = {
#define ROW(id_, name_, type_, scope_, def_, min_, max_, values_, alias_, doc_)                    \
    [STREAM_CONFIG_##id_] = {.id = STREAM_CONFIG_##id_,                                            \
                             .name = name_,                                                        \
                             .type = STREAM_CONFIG_TYPE_##type_,                                   \
                             .scope = STREAM_CONFIG_SCOPE_##scope_,                                \
                             .default_value = def_,                                                \
                             .min = min_,                                                          \
                             .max = max_,                                                          \
                             .values = values_,                                                    \
                             .alias = alias_,                                                      \
                             .doc = doc_},
    STREAM_CONFIG_MAP(ROW)
#undef ROW
};

/* One setting's value. `i` is the INT value, the BOOL as 0/1, or the ENUM's
 * position in its word list; `s` (owned) is the STRING, or the ENUM's word. */
struct value {
    bool set; /* given explicitly (by set or load), not a default */
    int64_t i;
    char *s;
};

struct stream_config {
    bool topic;                          /* topic overrides: TOPIC scope only */
    struct value v[STREAM_CONFIG_COUNT]; /* indexed by stream_config_id */
};

/* ---- the table ------------------------------------------------------------ */

const stream_config_setting *stream_config_setting_at(int id)
{
    if (id < 0 || id >= STREAM_CONFIG_COUNT)
        return NULL;
    return &settings[id];
}

const stream_config_setting *stream_config_setting_find(const char *name, bool alias_ok)
{
    if (name == NULL)
        return NULL;
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    if (alias_ok)
        for (int i = 0; i < STREAM_CONFIG_COUNT; i++)
            if (settings[i].alias != NULL && strcmp(settings[i].alias, name) == 0)
                return &settings[i];
    return NULL;
}

const char *stream_config_type_name(stream_config_type type)
{
    switch (type) {
    case STREAM_CONFIG_TYPE_INT:
        return "int";
    case STREAM_CONFIG_TYPE_BOOL:
        return "bool";
    case STREAM_CONFIG_TYPE_STRING:
        return "string";
    case STREAM_CONFIG_TYPE_ENUM:
        return "enum";
    }
    return "unknown";
}

/* ---- values ----------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* A decimal int64 with an optional sign and nothing else. */
static bool parse_int64(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (*s == '\0')
        return false;
    /* Accumulate as a negative number: its range is one larger, so INT64_MIN
     * parses without overflow. */
    int64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        int d = *s - '0';
        if (v < (INT64_MIN + d) / 10)
            return false;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return false;
        v = -v;
    }
    *out = v;
    return true;
}

/* The position of `word` (any case) in an ENUM's "a|b|c" list, or -1. */
static int enum_index(const char *values, const char *word)
{
    size_t wlen = strlen(word);
    int idx = 0;
    for (const char *p = values;; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == wlen && strncasecmp(p, word, n) == 0)
            return idx;
        if (bar == NULL)
            return -1;
        p = bar + 1;
    }
}

/* The idx'th word of an ENUM's list, copied. NULL when out of memory. */
static char *enum_word(const char *values, int64_t idx)
{
    const char *p = values;
    for (int64_t i = 0; i < idx; i++)
        p = strchr(p, '|') + 1; /* idx came from enum_index: the bars exist */
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    return strndup(p, n);
}

/* "a|b|c" -> "a, b, c" for messages. */
static void enum_list(const char *values, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = values; *p != '\0' && o + 3 < len; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
}

/* Is `s` HOST:PORT or [ADDR]:PORT with a port in 0..65535? */
static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return false;
    if (s[0] == '[') {
        if (colon[-1] != ']' || colon - s < 3)
            return false;
    } else if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        return false; /* a bare IPv6 address: the port would be ambiguous */
    }
    for (const char *p = s; p < colon; p++)
        if (is_space(*p))
            return false;
    int64_t port;
    const char *digits = colon + 1;
    if (*digits == '+' || *digits == '-' || !parse_int64(digits, &port))
        return false;
    return port >= 0 && port <= 65535;
}

/* A decimal from 0 to 1 ("0.5", "1", ".25", at most six decimals) as
 * millionths, without floating point so that it reads the same everywhere. */
static bool parse_ratio(const char *s, int64_t *ppm)
{
    int64_t whole = 0, frac = 0, scale = 1000000;
    const char *p = s;
    if (*p >= '0' && *p <= '9')
        whole = *p++ - '0';
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9') && p == s + 1)
            return false; /* "." alone */
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 1)
                return false; /* more than six decimals */
            scale /= 10;
            frac += (*p - '0') * scale;
        }
    } else if (p == s) {
        return false;
    }
    if (*p != '\0' || whole > 1 || (whole == 1 && frac > 0))
        return false;
    *ppm = whole * 1000000 + frac;
    return true;
}

/*
 * Parses `text` (already trimmed) for setting `st` into *i, checking type,
 * range and the per-setting rules. Allocates nothing, so it also serves to read
 * defaults where no config exists. Errors: STREAM_EBADCONFIG.
 */
static int parse_scalar(const stream_config_setting *st, const char *text, int64_t *i, char *errbuf,
                        size_t errbuf_len)
{
    char list[128];

    switch (st->type) {
    case STREAM_CONFIG_TYPE_INT:
        if (!parse_int64(text, i)) {
            stream__errf(errbuf, errbuf_len,
                         "%s: '%.64s' is not an integer (allowed: %" PRId64 " to %" PRId64 ")",
                         st->name, text, st->min, st->max);
            return STREAM_EBADCONFIG;
        }
        if (*i < st->min || *i > st->max) {
            stream__errf(errbuf, errbuf_len,
                         "%s: %" PRId64 " is out of range (allowed: %" PRId64 " to %" PRId64 ")",
                         st->name, *i, st->min, st->max);
            return STREAM_EBADCONFIG;
        }
        if (st->id == STREAM_CONFIG_CONNECTIONS_MAX_IDLE_MS && *i == 0) {
            stream__errf(errbuf, errbuf_len,
                         "%s: 0 is not allowed (use -1 to never close idle connections)", st->name);
            return STREAM_EBADCONFIG;
        }
        return 0;
    case STREAM_CONFIG_TYPE_BOOL:
        if (strcasecmp(text, "true") == 0) {
            *i = 1;
        } else if (strcasecmp(text, "false") == 0) {
            *i = 0;
        } else {
            stream__errf(errbuf, errbuf_len, "%s: '%.64s' is not a boolean (allowed: true, false)",
                         st->name, text);
            return STREAM_EBADCONFIG;
        }
        return 0;
    case STREAM_CONFIG_TYPE_ENUM: {
        int idx = enum_index(st->values, text);
        enum_list(st->values, list, sizeof list);
        if (idx < 0 && st->id == STREAM_CONFIG_CLEANUP_POLICY &&
            strcasecmp(text, "delete,compact") == 0)
            idx = enum_index(st->values, "compact,delete"); /* Kafka's list, either order */
        if (idx < 0) {
            stream__errf(errbuf, errbuf_len, "%s: '%.64s' is not allowed (allowed: %s)", st->name,
                         text, list);
            return STREAM_EBADCONFIG;
        }
        *i = idx;
        return 0;
    }
    case STREAM_CONFIG_TYPE_STRING:
        for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
            if (*p < 0x20 || *p == 0x7f) {
                stream__errf(errbuf, errbuf_len, "%s: control characters are not allowed",
                             st->name);
                return STREAM_EBADCONFIG;
            }
        }
        if (st->id == STREAM_CONFIG_LISTEN && !valid_listen(text)) {
            stream__errf(
                errbuf, errbuf_len,
                "%s: '%.64s' is not HOST:PORT (e.g. 127.0.0.1:9292, [::1]:9292; port 0 to 65535)",
                st->name, text);
            return STREAM_EBADCONFIG;
        }
        if ((st->id == STREAM_CONFIG_KAFKA_LISTEN || st->id == STREAM_CONFIG_METRICS_LISTEN) &&
            strcmp(text, "off") != 0 && !valid_listen(text)) {
            stream__errf(errbuf, errbuf_len,
                         "%s: '%.64s' is not HOST:PORT or off (e.g. %s; port 0 to 65535)", st->name,
                         text, st->default_value);
            return STREAM_EBADCONFIG;
        }
        *i = 0;
        if (st->id == STREAM_CONFIG_MIN_CLEANABLE_DIRTY_RATIO && !parse_ratio(text, i)) {
            stream__errf(errbuf, errbuf_len, "%s: '%.64s' is not a decimal from 0 to 1 (e.g. 0.5)",
                         st->name, text);
            return STREAM_EBADCONFIG;
        }
        return 0;
    }
    return STREAM_EINVAL;
}

/* Parses into a fresh value (with its string copied). */
static int parse_value(const stream_config_setting *st, const char *text, struct value *out,
                       char *errbuf, size_t errbuf_len)
{
    int rc = parse_scalar(st, text, &out->i, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    out->s = NULL;
    if (st->type == STREAM_CONFIG_TYPE_STRING)
        out->s = strdup(text);
    else if (st->type == STREAM_CONFIG_TYPE_ENUM)
        out->s = enum_word(st->values, out->i);
    else
        return 0;
    if (out->s == NULL) {
        stream__errf(errbuf, errbuf_len, "%s: out of memory", st->name);
        return STREAM_ENOMEM;
    }
    return 0;
}

/* The int value of a setting nobody set, straight from the table. */
static int64_t default_int(const stream_config_setting *st)
{
    int64_t i = 0;
    parse_scalar(st, st->default_value, &i, NULL, 0);
    return i;
}

/* ---- lifetime ------------------------------------------------------------- */

static stream_config *config_alloc(bool topic)
{
    stream_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return NULL;
    cfg->topic = topic;
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++) {
        if (parse_value(&settings[i], settings[i].default_value, &cfg->v[i], NULL, 0) < 0) {
            stream_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

stream_config *stream_config_new(void)
{
    return config_alloc(false);
}

stream_config *stream_config_new_topic(void)
{
    return config_alloc(true);
}

stream_config *stream_config_dup(const stream_config *cfg)
{
    if (cfg == NULL)
        return NULL;
    stream_config *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->topic = cfg->topic;
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++) {
        c->v[i] = cfg->v[i];
        c->v[i].s = NULL;
        if (cfg->v[i].s != NULL && (c->v[i].s = strdup(cfg->v[i].s)) == NULL) {
            stream_config_free(c);
            return NULL;
        }
    }
    return c;
}

void stream_config_free(stream_config *cfg)
{
    if (cfg == NULL)
        return;
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++)
        free(cfg->v[i].s);
    free(cfg);
}

bool stream_config_is_topic(const stream_config *cfg)
{
    return cfg != NULL && cfg->topic;
}

/* ---- set / unset ---------------------------------------------------------- */

/* The setting `key` names in cfg, or NULL with errbuf saying why not. */
static const stream_config_setting *lookup_for(const stream_config *cfg, const char *key,
                                               char *errbuf, size_t errbuf_len)
{
    const stream_config_setting *st = stream_config_setting_find(key, !cfg->topic);
    if (st == NULL) {
        st = stream_config_setting_find(key, true);
        if (st != NULL)
            stream__errf(errbuf, errbuf_len, "'%.100s' is a broker-wide name; per topic use '%s'",
                         key, st->name);
        else
            stream__errf(errbuf, errbuf_len, "unknown setting '%.100s'", key);
        return NULL;
    }
    if (cfg->topic && st->scope != STREAM_CONFIG_SCOPE_TOPIC) {
        stream__errf(errbuf, errbuf_len, "'%s' is a broker setting and cannot be set per topic",
                     st->name);
        return NULL;
    }
    return st;
}

/* Copies `s` without surrounding whitespace. */
static char *trimmed_dup(const char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        n--;
    return strndup(s, n);
}

int stream_config_set(stream_config *cfg, const char *key, const char *value, char *errbuf,
                      size_t errbuf_len)
{
    if (cfg == NULL || key == NULL || value == NULL) {
        stream__errf(errbuf, errbuf_len, "missing setting or value");
        return STREAM_EINVAL;
    }
    const stream_config_setting *st = lookup_for(cfg, key, errbuf, errbuf_len);
    if (st == NULL)
        return STREAM_EBADCONFIG;
    char *text = trimmed_dup(value);
    if (text == NULL) {
        stream__errf(errbuf, errbuf_len, "%s: out of memory", st->name);
        return STREAM_ENOMEM;
    }
    struct value nv;
    int rc = parse_value(st, text, &nv, errbuf, errbuf_len);
    free(text);
    if (rc < 0)
        return rc;
    free(cfg->v[st->id].s);
    cfg->v[st->id] = nv;
    cfg->v[st->id].set = true;
    return 0;
}

int stream_config_unset(stream_config *cfg, const char *key, char *errbuf, size_t errbuf_len)
{
    if (cfg == NULL || key == NULL) {
        stream__errf(errbuf, errbuf_len, "missing setting");
        return STREAM_EINVAL;
    }
    const stream_config_setting *st = lookup_for(cfg, key, errbuf, errbuf_len);
    if (st == NULL)
        return STREAM_EBADCONFIG;
    struct value nv;
    int rc = parse_value(st, st->default_value, &nv, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    free(cfg->v[st->id].s);
    cfg->v[st->id] = nv;
    cfg->v[st->id].set = false;
    return 0;
}

/* ---- getters -------------------------------------------------------------- */

static const struct value *value_of(const stream_config *cfg, stream_config_id id,
                                    stream_config_type t1, stream_config_type t2)
{
    if (cfg == NULL || (int)id < 0 || id >= STREAM_CONFIG_COUNT)
        return NULL;
    if (settings[id].type != t1 && settings[id].type != t2)
        return NULL;
    return &cfg->v[id];
}

int64_t stream_config_int(const stream_config *cfg, stream_config_id id)
{
    const struct value *v = value_of(cfg, id, STREAM_CONFIG_TYPE_INT, STREAM_CONFIG_TYPE_ENUM);
    return v ? v->i : 0;
}

bool stream_config_bool(const stream_config *cfg, stream_config_id id)
{
    const struct value *v = value_of(cfg, id, STREAM_CONFIG_TYPE_BOOL, STREAM_CONFIG_TYPE_BOOL);
    return v ? v->i != 0 : false;
}

const char *stream_config_str(const stream_config *cfg, stream_config_id id)
{
    const struct value *v = value_of(cfg, id, STREAM_CONFIG_TYPE_STRING, STREAM_CONFIG_TYPE_ENUM);
    return v ? v->s : NULL;
}

bool stream_config_id_is_set(const stream_config *cfg, stream_config_id id)
{
    if (cfg == NULL || (int)id < 0 || id >= STREAM_CONFIG_COUNT)
        return false;
    return cfg->v[id].set;
}

/* The id `key` names (aliases included), or -1. */
static int id_of(const char *key)
{
    const stream_config_setting *st = stream_config_setting_find(key, true);
    return st ? (int)st->id : -1;
}

int64_t stream_config_get_int(const stream_config *cfg, const char *key)
{
    int id = id_of(key);
    return id < 0 ? 0 : stream_config_int(cfg, (stream_config_id)id);
}

bool stream_config_get_bool(const stream_config *cfg, const char *key)
{
    int id = id_of(key);
    return id < 0 ? false : stream_config_bool(cfg, (stream_config_id)id);
}

const char *stream_config_get_str(const stream_config *cfg, const char *key)
{
    int id = id_of(key);
    return id < 0 ? NULL : stream_config_str(cfg, (stream_config_id)id);
}

bool stream_config_is_set(const stream_config *cfg, const char *key)
{
    int id = id_of(key);
    return id < 0 ? false : stream_config_id_is_set(cfg, (stream_config_id)id);
}

/* ---- the tokenizer and loaders -------------------------------------------- */

/* Reports "origin:line: msg" for a failure at `line`. */
static void line_error(char *errbuf, size_t errbuf_len, const char *origin, size_t line,
                       const char *msg)
{
    if (origin != NULL)
        stream__errf(errbuf, errbuf_len, "%s:%zu: %s", origin, line, msg);
    else
        stream__errf(errbuf, errbuf_len, "line %zu: %s", line, msg);
}

int stream_config_parse(const char *text, size_t len, const char *origin, stream_config_line_cb cb,
                        void *arg, char *errbuf, size_t errbuf_len)
{
    if ((text == NULL && len > 0) || cb == NULL) {
        stream__errf(errbuf, errbuf_len, "missing text or callback");
        return STREAM_EINVAL;
    }
    if (len == SIZE_MAX) {
        stream__errf(errbuf, errbuf_len, "config text too large");
        return STREAM_ENOMEM;
    }
    /* One copy, split in place: each line's '\n' becomes its terminator, and
     * the extra byte terminates a last line that has no newline. */
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    if (len > 0)
        memcpy(copy, text, len);
    copy[len] = '\0';

    size_t pos = 0, line = 0;
    int rc = 0;
    if (len >= 3 && memcmp(copy, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        char *s = copy + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        if (memchr(s, '\0', n) != NULL) {
            line_error(errbuf, errbuf_len, origin, line, "NUL byte in config text");
            rc = STREAM_EBADCONFIG;
            break;
        }
        s[n] = '\0';
        while (*s != '\0' && is_space(*s))
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            line_error(errbuf, errbuf_len, origin, line, "expected key=value");
            rc = STREAM_EBADCONFIG;
            break;
        }
        char *key = s, *value = eq + 1;
        char *end = eq;
        while (end > key && is_space(end[-1]))
            end--;
        *end = '\0';
        if (*key == '\0') {
            line_error(errbuf, errbuf_len, origin, line, "missing key before '='");
            rc = STREAM_EBADCONFIG;
            break;
        }
        while (is_space(*value))
            value++;
        end = value + strlen(value);
        while (end > value && is_space(end[-1]))
            end--;
        *end = '\0';

        char msg[512] = "";
        rc = cb(arg, key, value, msg, sizeof msg);
        if (rc < 0) {
            line_error(errbuf, errbuf_len, origin, line, msg[0] ? msg : stream_strerror(rc));
            break;
        }
        rc = 0;
    }
    free(copy);
    return rc;
}

static int set_cb(void *arg, const char *key, const char *value, char *errbuf, size_t errbuf_len)
{
    return stream_config_set(arg, key, value, errbuf, errbuf_len);
}

int stream_config_load_text(stream_config *cfg, const char *text, size_t len, const char *origin,
                            char *errbuf, size_t errbuf_len)
{
    if (cfg == NULL) {
        stream__errf(errbuf, errbuf_len, "missing config");
        return STREAM_EINVAL;
    }
    /* All or nothing: load into a copy and keep it only if every line was good. */
    stream_config *tmp = stream_config_dup(cfg);
    if (tmp == NULL) {
        stream__errf(errbuf, errbuf_len, "out of memory");
        return STREAM_ENOMEM;
    }
    int rc = stream_config_parse(text, len, origin, set_cb, tmp, errbuf, errbuf_len);
    if (rc == 0) {
        for (int i = 0; i < STREAM_CONFIG_COUNT; i++) {
            free(cfg->v[i].s);
            cfg->v[i] = tmp->v[i];
            tmp->v[i].s = NULL;
        }
    }
    stream_config_free(tmp);
    return rc;
}

int stream_config_load_file(stream_config *cfg, const char *path, char *errbuf, size_t errbuf_len)
{
    if (cfg == NULL || path == NULL) {
        stream__errf(errbuf, errbuf_len, "missing config or path");
        return STREAM_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        stream__errf(errbuf, errbuf_len, "%s: %s", path, strerror(e));
        return e == ENOENT ? STREAM_ENOENT : STREAM_EIO;
    }
    /* Read to EOF rather than trusting st_size, so pipes and /dev/stdin work. */
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > CONFIG_FILE_MAX + 1)
                ncap = CONFIG_FILE_MAX + 1;
            if (ncap == cap) {
                stream__errf(errbuf, errbuf_len, "%s: larger than %u bytes: not a config file",
                             path, CONFIG_FILE_MAX);
                rc = STREAM_EIO;
                break;
            }
            char *nd = realloc(data, ncap);
            if (nd == NULL) {
                stream__errf(errbuf, errbuf_len, "%s: out of memory", path);
                rc = STREAM_ENOMEM;
                break;
            }
            data = nd;
            cap = ncap;
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            stream__errf(errbuf, errbuf_len, "%s: %s", path, strerror(errno));
            rc = STREAM_EIO;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (rc == 0 && len > CONFIG_FILE_MAX) {
        stream__errf(errbuf, errbuf_len, "%s: larger than %u bytes: not a config file", path,
                     CONFIG_FILE_MAX);
        rc = STREAM_EIO;
    }
    if (rc == 0)
        rc = stream_config_load_text(cfg, data, len, path, errbuf, errbuf_len);
    free(data);
    return rc;
}

/* ---- output --------------------------------------------------------------- */

/* A value as text: `buf` (>= 21 bytes) holds numbers. */
static const char *value_text(const stream_config_setting *st, const struct value *v, char *buf,
                              size_t len)
{
    switch (st->type) {
    case STREAM_CONFIG_TYPE_INT:
        snprintf(buf, len, "%" PRId64, v->i);
        return buf;
    case STREAM_CONFIG_TYPE_BOOL:
        return v->i ? "true" : "false";
    case STREAM_CONFIG_TYPE_STRING:
    case STREAM_CONFIG_TYPE_ENUM:
        return v->s;
    }
    return "";
}

int stream_config_write(const stream_config *cfg, bool only_set, stream_buf *out)
{
    if (cfg == NULL || out == NULL)
        return STREAM_EINVAL;
    char buf[24];
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++) {
        const stream_config_setting *st = &settings[i];
        if (cfg->topic && st->scope != STREAM_CONFIG_SCOPE_TOPIC)
            continue;
        if (only_set && !cfg->v[i].set)
            continue;
        const char *text = value_text(st, &cfg->v[i], buf, sizeof buf);
        stream_buf_put(out, st->name, strlen(st->name));
        stream_buf_put_u8(out, '=');
        stream_buf_put(out, text, strlen(text));
        stream_buf_put_u8(out, '\n');
    }
    return stream_buf_ok(out);
}

void stream_config_iter_start(stream_config_iter *it, const stream_config *broker,
                              const stream_config *topic)
{
    memset(it, 0, sizeof *it);
    it->broker = broker;
    it->topic = topic;
}

bool stream_config_iter_next(stream_config_iter *it)
{
    while (it->next < STREAM_CONFIG_COUNT) {
        const stream_config_setting *st = &settings[it->next++];
        if (it->topic != NULL && st->scope != STREAM_CONFIG_SCOPE_TOPIC)
            continue;
        it->setting = st;
        if (it->topic != NULL && it->topic->v[st->id].set) {
            it->source = STREAM_CONFIG_SOURCE_TOPIC;
            it->value = value_text(st, &it->topic->v[st->id], it->buf, sizeof it->buf);
        } else if (it->broker != NULL) {
            it->source = it->broker->v[st->id].set ? STREAM_CONFIG_SOURCE_BROKER
                                                   : STREAM_CONFIG_SOURCE_DEFAULT;
            it->value = value_text(st, &it->broker->v[st->id], it->buf, sizeof it->buf);
        } else {
            it->source = STREAM_CONFIG_SOURCE_DEFAULT;
            it->value = st->default_value; /* defaults are written canonically */
        }
        return true;
    }
    it->setting = NULL;
    it->value = NULL;
    return false;
}

/* ---- mapping to the log ----------------------------------------------------- */

/* The effective int of a TOPIC setting: override, else broker, else default. */
static int64_t topic_int(const stream_config *broker, const stream_config *topic,
                         stream_config_id id)
{
    if (topic != NULL && topic->v[id].set)
        return topic->v[id].i;
    if (broker != NULL)
        return broker->v[id].i;
    return default_int(&settings[id]);
}

int64_t stream_config_topic_int(const stream_config *broker, const stream_config *topic,
                                stream_config_id id)
{
    if ((int)id < 0 || id >= STREAM_CONFIG_COUNT)
        return 0;
    return topic_int(broker, topic, id);
}

void stream_config_topic_log_config(const stream_config *broker, const stream_config *topic,
                                    stream_log_config *out)
{
    /* Start from the log's own defaults so a field added to stream_log_config
     * later has a sane value before it gets a setting here. */
    stream_log_config_init(out);
    out->segment_bytes = topic_int(broker, topic, STREAM_CONFIG_SEGMENT_BYTES);
    out->segment_ms = topic_int(broker, topic, STREAM_CONFIG_SEGMENT_MS);
    out->retention_ms = topic_int(broker, topic, STREAM_CONFIG_RETENTION_MS);
    out->retention_bytes = topic_int(broker, topic, STREAM_CONFIG_RETENTION_BYTES);
    /* Both are bounded by INT32_MAX in the table. */
    out->index_interval_bytes =
        (int32_t)topic_int(broker, topic, STREAM_CONFIG_INDEX_INTERVAL_BYTES);
    out->max_message_bytes = (int32_t)topic_int(broker, topic, STREAM_CONFIG_MAX_MESSAGE_BYTES);
    out->flush_ms = topic_int(broker, topic, STREAM_CONFIG_FLUSH_MS);
    /* cleanup.policy's words: delete, compact, compact,delete. */
    int64_t policy = topic_int(broker, topic, STREAM_CONFIG_CLEANUP_POLICY);
    out->cleanup_delete = policy != 1;
    out->cleanup_compact = policy != 0;
    out->min_cleanable_dirty_ratio_ppm =
        (int32_t)topic_int(broker, topic, STREAM_CONFIG_MIN_CLEANABLE_DIRTY_RATIO);
    out->min_compaction_lag_ms = topic_int(broker, topic, STREAM_CONFIG_MIN_COMPACTION_LAG_MS);
    out->max_compaction_lag_ms = topic_int(broker, topic, STREAM_CONFIG_MAX_COMPACTION_LAG_MS);
    out->delete_retention_ms = topic_int(broker, topic, STREAM_CONFIG_DELETE_RETENTION_MS);
    /* flush.mode's words are in the order of stream_flush_mode. */
    switch (topic_int(broker, topic, STREAM_CONFIG_FLUSH_MODE)) {
    case 1:
        out->flush_mode = STREAM_FLUSH_PERIODIC;
        break;
    case 2:
        out->flush_mode = STREAM_FLUSH_NEVER;
        break;
    default:
        out->flush_mode = STREAM_FLUSH_GROUP;
        break;
    }
}

/* ---- the data directory ----------------------------------------------------- */

/* buf = a + b (a without trailing slashes unless it is "/"). */
static int join_path(char *buf, size_t len, const char *a, const char *b)
{
    size_t an = strlen(a);
    while (an > 1 && a[an - 1] == '/')
        an--;
    int n = snprintf(buf, len, "%.*s%s", (int)an, a, b);
    if (n < 0 || (size_t)n >= len)
        return STREAM_EINVAL;
    return 0;
}

/* The user's home directory: $HOME, else the password database. */
static int home_dir(char *buf, size_t len)
{
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0')
        return join_path(buf, len, home, "");
    struct passwd pw, *res = NULL;
    char tmp[4096];
    if (getpwuid_r(getuid(), &pw, tmp, sizeof tmp, &res) != 0 || res == NULL || pw.pw_dir == NULL ||
        pw.pw_dir[0] == '\0')
        return STREAM_ENOENT;
    return join_path(buf, len, pw.pw_dir, "");
}

int stream_config_default_data_dir(char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return STREAM_EINVAL;
    const char *d = getenv("STREAM_DATA_DIR");
    if (d != NULL && d[0] != '\0')
        return join_path(buf, len, d, "");
    /* The XDG spec says relative values are invalid and must be ignored. */
    const char *x = getenv("XDG_DATA_HOME");
    if (x != NULL && x[0] == '/')
        return join_path(buf, len, x, "/stream");
    char home[4096];
    int rc = home_dir(home, sizeof home);
    if (rc < 0)
        return rc;
    return join_path(buf, len, home, "/.local/share/stream");
}

int stream_config_data_dir(const stream_config *cfg, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return STREAM_EINVAL;
    const char *d = cfg ? cfg->v[STREAM_CONFIG_DATA_DIR].s : NULL;
    if (d == NULL || d[0] == '\0')
        return stream_config_default_data_dir(buf, len);
    if (d[0] == '~' && (d[1] == '/' || d[1] == '\0')) {
        char home[4096];
        int rc = home_dir(home, sizeof home);
        if (rc < 0)
            return rc;
        return join_path(buf, len, home, d + 1);
    }
    return join_path(buf, len, d, "");
}
