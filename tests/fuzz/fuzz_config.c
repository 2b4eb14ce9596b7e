/*
 * fuzz_config.c - the `key=value` config parser and loader (config.h).
 *
 * The input is a config file's text. It goes through the tokenizer alone
 * (stream_config_parse with a callback that accepts everything), then is
 * loaded into a broker config and into a topic-override config.
 *
 * Properties checked (config.h's invariants):
 *   - the tokenizer hands out NUL-terminated, trimmed keys that are not empty;
 *   - a failed load leaves the config unchanged (compared through its
 *     written form);
 *   - a config holds only valid values: what stream_config_write prints
 *     loads back into a fresh config, and writes out the same bytes again;
 *   - the first byte of the input picks a setting, which is read through
 *     every getter and the iterator (the types must not trip over each other).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/buf.h"
#include "stream/config.h"
#include "stream/error.h"

static int count_line(void *arg, const char *key, const char *value, char *errbuf,
                      size_t errbuf_len)
{
    size_t klen = strlen(key), vlen = strlen(value);
    FUZZ_CHECK(klen > 0);
    FUZZ_CHECK(!isspace((unsigned char)key[0]) && !isspace((unsigned char)key[klen - 1]));
    FUZZ_CHECK(vlen == 0 ||
               (!isspace((unsigned char)value[0]) && !isspace((unsigned char)value[vlen - 1])));
    (*(size_t *)arg)++;
    return 0;
}

static void written(const stream_config *cfg, bool only_set, stream_buf *out)
{
    stream_buf_reset(out);
    FUZZ_CHECK(stream_config_write(cfg, only_set, out) == 0);
}

/* Loads `text` into a config made by `make`, and checks the invariants. */
static void load(stream_config *(*make)(void), const char *text, size_t len)
{
    char err[512];
    stream_config *cfg = make();
    FUZZ_CHECK(cfg != NULL);
    stream_buf before, after, again;
    stream_buf_init(&before);
    stream_buf_init(&after);
    stream_buf_init(&again);

    /* Something set first, so "unchanged on failure" has something to keep. */
    FUZZ_CHECK(stream_config_set(cfg, "retention.ms", "12345", err, sizeof err) == 0);
    written(cfg, false, &before);
    int rc = stream_config_load_text(cfg, text, len, "fuzz.conf", err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EBADCONFIG || rc == STREAM_ENOMEM, "%s",
                   stream_err_name(rc));
    written(cfg, false, &after);
    if (rc != 0) {
        FUZZ_CHECK(strncmp(err, "fuzz.conf:", 10) == 0);
        FUZZ_CHECK(after.len == before.len && memcmp(after.data, before.data, after.len) == 0);
    }

    /* Round trip through the written form, both the set-only and the full one. */
    for (int only_set = 0; only_set <= 1; only_set++) {
        written(cfg, only_set, &after);
        stream_config *back = make();
        FUZZ_CHECK(back != NULL);
        rc = stream_config_load_text(back, (const char *)after.data, after.len, "written", err,
                                     sizeof err);
        FUZZ_CHECK_MSG(rc == 0, "written config does not load back: %s\n%.*s", err, (int)after.len,
                       (const char *)after.data);
        written(back, only_set, &again);
        FUZZ_CHECK(again.len == after.len && memcmp(again.data, after.data, again.len) == 0);
        stream_config_free(back);
    }

    /* A copy is the same config. */
    stream_config *dup = stream_config_dup(cfg);
    FUZZ_CHECK(dup != NULL);
    written(dup, false, &again);
    written(cfg, false, &after);
    FUZZ_CHECK(again.len == after.len && memcmp(again.data, after.data, again.len) == 0);
    stream_config_free(dup);

    /* Every getter on every setting, and the iterator. */
    for (int id = 0; id < STREAM_CONFIG_COUNT; id++) {
        const stream_config_setting *s = stream_config_setting_at(id);
        FUZZ_CHECK(s != NULL && stream_config_setting_find(s->name, false) == s);
        (void)stream_config_int(cfg, (stream_config_id)id);
        (void)stream_config_bool(cfg, (stream_config_id)id);
        const char *v = stream_config_str(cfg, (stream_config_id)id);
        if (v != NULL)
            fuzz_touch(v, strlen(v));
        (void)stream_config_get_int(cfg, s->name);
        if (s->type == STREAM_CONFIG_TYPE_INT && stream_config_id_is_set(cfg, (stream_config_id)id))
            FUZZ_CHECK(stream_config_int(cfg, (stream_config_id)id) >= s->min &&
                       stream_config_int(cfg, (stream_config_id)id) <= s->max);
    }
    stream_config_iter it;
    if (stream_config_is_topic(cfg)) {
        stream_config_iter_start(&it, NULL, cfg);
        stream_log_config lc;
        stream_config_topic_log_config(NULL, cfg, &lc);
    } else {
        stream_config_iter_start(&it, cfg, NULL);
    }
    while (stream_config_iter_next(&it))
        fuzz_touch(it.value, strlen(it.value));

    stream_buf_release(&before);
    stream_buf_release(&after);
    stream_buf_release(&again);
    stream_config_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: the parser must not need (or read) a NUL. */
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL);
    if (size > 0)
        memcpy(text, data, size);

    char err[512];
    size_t lines = 0;
    int rc = stream_config_parse(text, size, NULL, count_line, &lines, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EBADCONFIG || rc == STREAM_ENOMEM);

    load(stream_config_new, text, size);
    load(stream_config_new_topic, text, size);

    /* The input's first line as a key for the by-name getters and unset. */
    size_t klen = 0;
    while (klen < size && text[klen] != '\n')
        klen++;
    char *key = fuzz_strndup(text, klen);
    stream_config *cfg = stream_config_new();
    FUZZ_CHECK(cfg != NULL);
    (void)stream_config_get_int(cfg, key);
    (void)stream_config_get_bool(cfg, key);
    (void)stream_config_get_str(cfg, key);
    (void)stream_config_is_set(cfg, key);
    (void)stream_config_setting_find(key, true);
    rc = stream_config_unset(cfg, key, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EBADCONFIG);
    stream_config_free(cfg);
    free(key);
    free(text);
    return 0;
}
