/*
 * test_store.c - the data directory: topic create/list/lookup/alter/delete,
 * persistence across reopen, the directory lock, and the clean-up of what
 * interrupted operations leave behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/config.h"
#include "stream/error.h"
#include "stream/store.h"

static char errbuf[1024];

struct fixture {
    char dir[64];  /* the mkdtemp root, removed at teardown */
    char data[96]; /* <dir>/data: the store's directory */
};

static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d == NULL)
            return -1;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

static stream_store *open_store(struct fixture *f, const stream_config *cfg)
{
    stream_store *s = NULL;
    errbuf[0] = '\0';
    int rc = stream_store_open(f->data, cfg, &s, errbuf, sizeof errbuf);
    if (rc != 0)
        fail_msg("stream_store_open: %d %s", rc, errbuf);
    return s;
}

static stream_topic *create(stream_store *s, const char *name, int32_t partitions,
                            const stream_config *overrides)
{
    stream_topic *t = NULL;
    errbuf[0] = '\0';
    int rc =
        stream_store_create_topic(s, name, partitions, overrides, false, &t, errbuf, sizeof errbuf);
    if (rc != 0)
        fail_msg("create %s: %d %s", name, rc, errbuf);
    return t;
}

/* Does <data>/<name> exist? */
static bool exists(struct fixture *f, const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", f->data, name);
    return lstat(p, &st) == 0;
}

static void make_dir(struct fixture *f, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->data, name);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void write_file(struct fixture *f, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->data, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static bool has_note(stream_store *s, const char *needle)
{
    for (size_t i = 0; i < stream_store_note_count(s); i++)
        if (strstr(stream_store_note(s, i), needle) != NULL)
            return true;
    return false;
}

/* The grammar of stream_topic_name_check, the one for the wire and the disk. */
static void test_topic_name_grammar(void **state)
{
    char name[STREAM_TOPIC_NAME_MAX + 1];
    char eb[160];
    memset(name, 'a', sizeof name);
    assert_int_equal(stream_topic_name_check("orders.v2_EU-1", 14, eb, sizeof eb), 0);
    assert_int_equal(stream_topic_name_check(name, STREAM_TOPIC_NAME_MAX, eb, sizeof eb), 0);
    assert_int_equal(stream_topic_name_check(name, STREAM_TOPIC_NAME_MAX + 1, eb, sizeof eb),
                     STREAM_EBADNAME);
    assert_int_equal(stream_topic_name_check("", 0, eb, sizeof eb), STREAM_EBADNAME);
    assert_int_equal(stream_topic_name_check(".", 1, eb, sizeof eb), STREAM_EBADNAME);
    assert_int_equal(stream_topic_name_check("..", 2, eb, sizeof eb), STREAM_EBADNAME);
    assert_int_equal(stream_topic_name_check("...", 3, eb, sizeof eb), 0);
    assert_int_equal(stream_topic_name_check("a/b", 3, eb, sizeof eb), STREAM_EBADNAME);
    assert_non_null(strstr(eb, "contains '/'"));
    assert_int_equal(stream_topic_name_check("a\0b", 3, eb, sizeof eb), STREAM_EBADNAME);
    assert_non_null(strstr(eb, "0x00 at 1"));
    assert_int_equal(stream_topic_name_check("__consumer_offsets", 18, eb, sizeof eb), 0);
    assert_true(stream_topic_is_internal("__consumer_offsets", 18));
    assert_false(stream_topic_is_internal("_x", 2));
}

static void test_topic_names_are_validated(void **state)
{
    char name[300];
    const char *good[] = {"a", "A-b_c.9", "...", "__consumer_offsets", "-"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(stream_topic_name_valid(good[i], errbuf, sizeof errbuf), 0);
    memset(name, 'x', 249);
    name[249] = '\0';
    assert_int_equal(stream_topic_name_valid(name, errbuf, sizeof errbuf), 0);
    name[249] = 'x';
    name[250] = '\0';
    assert_int_equal(stream_topic_name_valid(name, errbuf, sizeof errbuf), STREAM_EBADNAME);
    assert_non_null(strstr(errbuf, "250"));

    const char *bad[] = {"", ".", "..", "a/b", "a b", "caf\xc3\xa9", "a\nb", "a:b", "a*", "/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errbuf[0] = '\0';
        assert_int_equal(stream_topic_name_valid(bad[i], errbuf, sizeof errbuf), STREAM_EBADNAME);
        assert_true(errbuf[0] != '\0');
    }
    assert_int_equal(stream_topic_name_valid(NULL, errbuf, sizeof errbuf), STREAM_EBADNAME);
    stream_topic_name_valid("a/b", errbuf, sizeof errbuf);
    assert_non_null(strstr(errbuf, "'/'"));
}

static void test_create_list_lookup_delete(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    assert_int_equal(stream_store_topic_count(s), 0);

    stream_topic *b = create(s, "beta", 3, NULL);
    create(s, "alpha", 1, NULL);
    create(s, "gamma", 2, NULL);
    assert_string_equal(b->name, "beta");
    assert_int_equal(b->partition_count, 3);
    assert_false(b->internal);
    for (int i = 0; i < 3; i++)
        assert_non_null(b->partitions[i]);

    assert_int_equal(stream_store_topic_count(s), 3);
    assert_string_equal(stream_store_topic_at(s, 0)->name, "alpha");
    assert_string_equal(stream_store_topic_at(s, 1)->name, "beta");
    assert_string_equal(stream_store_topic_at(s, 2)->name, "gamma");
    assert_null(stream_store_topic_at(s, 3));
    assert_ptr_equal(stream_store_topic(s, "beta"), b);
    assert_null(stream_store_topic(s, "delta"));
    assert_true(exists(f, "beta.topic"));
    assert_true(exists(f, "beta-0") && exists(f, "beta-2") && !exists(f, "beta-3"));

    stream_log *log;
    assert_int_equal(stream_store_log(s, "beta", 2, &log), 0);
    assert_ptr_equal(log, b->partitions[2]);
    assert_int_equal(stream_store_log(s, "beta", 3, &log), STREAM_ENOPART);
    assert_int_equal(stream_store_log(s, "beta", -1, &log), STREAM_ENOPART);
    assert_int_equal(stream_store_log(s, "delta", 0, &log), STREAM_ENOTOPIC);

    assert_int_equal(stream_store_delete_topic(s, "beta", errbuf, sizeof errbuf), 0);
    assert_null(stream_store_topic(s, "beta"));
    assert_int_equal(stream_store_topic_count(s), 2);
    assert_string_equal(stream_store_topic_at(s, 1)->name, "gamma");
    assert_false(exists(f, "beta.topic"));
    assert_false(exists(f, "beta-0") || exists(f, "beta-1") || exists(f, "beta-2"));
    stream_store_wait_trash(s); /* the files go in the background */
    assert_false(exists(f, ".deleted"));
    stream_store_close(s);
}

static void test_create_existing_topic_fails(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "t", 2, NULL);
    stream_topic *t = (stream_topic *)1;
    assert_int_equal(stream_store_create_topic(s, "t", 5, NULL, false, &t, errbuf, sizeof errbuf),
                     STREAM_ETOPICEXISTS);
    assert_null(t);
    assert_non_null(strstr(errbuf, "'t' already exists"));
    assert_int_equal(stream_store_topic(s, "t")->partition_count, 2);
    stream_store_close(s);
}

static void test_delete_unknown_topic_fails(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    assert_int_equal(stream_store_delete_topic(s, "nope", errbuf, sizeof errbuf), STREAM_ENOTOPIC);
    assert_non_null(strstr(errbuf, "nope"));
    assert_int_equal(stream_store_delete_topic(s, NULL, errbuf, sizeof errbuf), STREAM_ENOTOPIC);
    stream_store_close(s);
}

static void test_create_refuses_bad_names_and_counts(void **state)
{
    struct fixture *f = *state;
    stream_config *cfg = stream_config_new();
    assert_int_equal(stream_config_set(cfg, "num.partitions", "4", errbuf, sizeof errbuf), 0);
    stream_store *s = open_store(f, cfg);
    stream_config_free(cfg);

    const char *bad[] = {"", ".", "..", "a/b", "a b", "\xe2\x82\xac"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            stream_store_create_topic(s, bad[i], 1, NULL, false, NULL, errbuf, sizeof errbuf),
            STREAM_EBADNAME);
    char longname[260];
    memset(longname, 'n', 250);
    longname[250] = '\0';
    assert_int_equal(
        stream_store_create_topic(s, longname, 1, NULL, false, NULL, errbuf, sizeof errbuf),
        STREAM_EBADNAME);
    longname[249] = '\0'; /* the longest name still fits every file name we make */
    stream_topic *t = create(s, longname, 1, NULL);
    assert_int_equal(t->partition_count, 1);

    int32_t counts[] = {0, -2, 10001, INT32_MIN};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        assert_int_equal(
            stream_store_create_topic(s, "c", counts[i], NULL, false, NULL, errbuf, sizeof errbuf),
            STREAM_EINVAL);
    assert_non_null(strstr(errbuf, "out of range"));
    assert_null(stream_store_topic(s, "c"));
    assert_false(exists(f, "c-0"));

    /* -1 takes the broker's num.partitions. */
    t = create(s, "dflt", -1, NULL);
    assert_int_equal(t->partition_count, 4);
    stream_store_close(s);
}

static void test_internal_topics_need_the_flag(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    assert_int_equal(stream_store_create_topic(s, "__consumer_offsets", 1, NULL, false, NULL,
                                               errbuf, sizeof errbuf),
                     STREAM_EBADNAME);
    assert_non_null(strstr(errbuf, "internal"));
    assert_int_equal(
        stream_store_create_topic(s, "plain", 1, NULL, true, NULL, errbuf, sizeof errbuf),
        STREAM_EINVAL);
    stream_topic *t;
    assert_int_equal(stream_store_create_topic(s, "__consumer_offsets", 2, NULL, true, &t, errbuf,
                                               sizeof errbuf),
                     0);
    assert_true(t->internal);
    stream_store_close(s);

    s = open_store(f, NULL);
    assert_true(stream_store_topic(s, "__consumer_offsets")->internal);
    stream_store_close(s);
}

static void test_topics_and_settings_persist_across_reopen(void **state)
{
    struct fixture *f = *state;
    stream_config *broker = stream_config_new();
    assert_int_equal(stream_config_set(broker, "segment.bytes", "65536", errbuf, sizeof errbuf), 0);
    stream_store *s = open_store(f, broker);
    stream_config *ov = stream_config_new_topic();
    assert_int_equal(stream_config_set(ov, "retention.ms", "12345", errbuf, sizeof errbuf), 0);
    assert_int_equal(stream_config_set(ov, "flush.mode", "periodic", errbuf, sizeof errbuf), 0);
    stream_topic *t = create(s, "orders", 3, ov);
    stream_config_free(ov);
    assert_int_equal(t->log_config.retention_ms, 12345);
    assert_int_equal(t->log_config.segment_bytes, 65536);
    assert_int_equal(t->log_config.flush_mode, STREAM_FLUSH_PERIODIC);
    create(s, "plain", 1, NULL);
    stream_store_close(s);

    /* The topic settings survive; broker defaults are whatever the broker says now. */
    stream_config_set(broker, "segment.bytes", "131072", errbuf, sizeof errbuf);
    s = open_store(f, broker);
    stream_config_free(broker);
    assert_int_equal(stream_store_topic_count(s), 2);
    t = stream_store_topic(s, "orders");
    assert_non_null(t);
    assert_int_equal(t->partition_count, 3);
    assert_int_equal(stream_config_get_int(t->overrides, "retention.ms"), 12345);
    assert_true(stream_config_is_set(t->overrides, "retention.ms"));
    assert_false(stream_config_is_set(t->overrides, "segment.bytes"));
    assert_int_equal(t->log_config.retention_ms, 12345);
    assert_int_equal(t->log_config.segment_bytes, 131072);
    assert_int_equal(t->log_config.flush_mode, STREAM_FLUSH_PERIODIC);
    for (int i = 0; i < 3; i++)
        assert_non_null(t->partitions[i]);
    assert_non_null(t->recovery);
    assert_int_equal(stream_store_topic(s, "plain")->partition_count, 1);
    assert_int_equal(stream_store_note_count(s), 0);
    stream_store_close(s);
}

static void test_alter_config_is_persisted_and_applied(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_config *ov = stream_config_new_topic();
    stream_config_set(ov, "retention.ms", "1000", errbuf, sizeof errbuf);
    stream_topic *t = create(s, "t", 2, ov);
    stream_config_free(ov);

    ov = stream_config_dup(t->overrides);
    stream_config_unset(ov, "retention.ms", errbuf, sizeof errbuf);
    stream_config_set(ov, "retention.bytes", "999999", errbuf, sizeof errbuf);
    assert_int_equal(stream_store_alter_topic(s, "t", ov, errbuf, sizeof errbuf), 0);
    stream_config_free(ov);
    assert_int_equal(t->log_config.retention_bytes, 999999);
    assert_int_equal(t->log_config.retention_ms, 604800000);
    assert_false(stream_config_is_set(t->overrides, "retention.ms"));

    assert_int_equal(stream_store_alter_topic(s, "nope", NULL, errbuf, sizeof errbuf),
                     STREAM_ENOTOPIC);
    stream_config *broker = stream_config_new();
    assert_int_equal(stream_store_alter_topic(s, "t", broker, errbuf, sizeof errbuf),
                     STREAM_EINVAL);
    stream_config_free(broker);
    stream_store_close(s);

    s = open_store(f, NULL);
    t = stream_store_topic(s, "t");
    assert_int_equal(stream_config_get_int(t->overrides, "retention.bytes"), 999999);
    assert_false(stream_config_is_set(t->overrides, "retention.ms"));
    assert_int_equal(t->log_config.retention_bytes, 999999);

    /* NULL clears every override. */
    assert_int_equal(stream_store_alter_topic(s, "t", NULL, errbuf, sizeof errbuf), 0);
    assert_int_equal(t->log_config.retention_bytes, -1);
    stream_store_close(s);
    s = open_store(f, NULL);
    assert_false(stream_config_is_set(stream_store_topic(s, "t")->overrides, "retention.bytes"));
    stream_store_close(s);
}

static void test_second_open_of_same_dir_is_refused(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "t", 1, NULL);
    stream_store *s2 = (stream_store *)1;
    int rc = stream_store_open(f->data, NULL, &s2, errbuf, sizeof errbuf);
    assert_int_equal(rc, STREAM_EAGAIN);
    assert_null(s2);
    assert_non_null(strstr(errbuf, "in use by another broker"));
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(errbuf, pid));
    /* The refused open touched nothing. */
    assert_non_null(stream_store_topic(s, "t"));
    assert_true(exists(f, "t-0"));
    stream_store_close(s);

    /* Once closed, the directory can be opened again. */
    s = open_store(f, NULL);
    stream_store_close(s);
}

static void test_crash_mid_delete_is_finished_at_open(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "doomed", 4, NULL);
    create(s, "kept", 1, NULL);
    stream_store_close(s);

    /* A delete interrupted at every stage at once: metadata gone, one partition
     * moved to .deleted/, one renamed to the "<dir>.deleted" form, two still in
     * place. */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/doomed.topic", f->data);
    assert_int_equal(unlink(a), 0);
    make_dir(f, ".deleted");
    snprintf(a, sizeof a, "%s/doomed-0", f->data);
    snprintf(b, sizeof b, "%s/.deleted/doomed-0", f->data);
    assert_int_equal(rename(a, b), 0);
    snprintf(a, sizeof a, "%s/doomed-1", f->data);
    snprintf(b, sizeof b, "%s/doomed-1.deleted", f->data);
    assert_int_equal(rename(a, b), 0);

    s = open_store(f, NULL);
    assert_null(stream_store_topic(s, "doomed"));
    assert_non_null(stream_store_topic(s, "kept"));
    stream_store_wait_trash(s);
    assert_false(exists(f, ".deleted"));
    assert_false(exists(f, "doomed-1.deleted"));
    assert_false(exists(f, "doomed-2") || exists(f, "doomed-3"));
    assert_true(exists(f, "kept-0"));
    assert_true(has_note(s, "doomed-2"));
    assert_true(has_note(s, "doomed-1.deleted"));
    assert_true(has_note(s, "left in"));
    stream_store_close(s);
}

static void test_stray_partition_dirs_are_removed_at_open(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "t", 2, NULL);
    stream_store_close(s);

    make_dir(f, "ghost-0"); /* no such topic: an interrupted create */
    make_dir(f, "t-5");     /* past t's partition count */
    make_dir(f, "x-007");   /* not a name we make: left alone */
    make_dir(f, "backups"); /* not ours at all */
    write_file(f, "ghost-1", "a file, not a partition directory");
    write_file(f, ".t.tmp", "version=1\npartitions=9\n"); /* an unfinished metadata write */
    write_file(f, "ghost-0/00000000000000000000.log", "old records");

    s = open_store(f, NULL);
    assert_false(exists(f, "ghost-0"));
    assert_false(exists(f, "t-5"));
    assert_false(exists(f, ".t.tmp"));
    assert_true(exists(f, "x-007"));
    assert_true(exists(f, "backups"));
    assert_true(exists(f, "ghost-1"));
    assert_true(exists(f, "t-0") && exists(f, "t-1"));
    assert_int_equal(stream_store_topic(s, "t")->partition_count, 2);
    assert_true(has_note(s, "ghost-0"));
    assert_true(has_note(s, "t-5"));
    assert_true(has_note(s, ".t.tmp"));
    stream_store_close(s);
}

static void test_create_does_not_reuse_stale_partition_dirs(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    /* Debris appearing while the store runs (e.g. copied in by hand). */
    make_dir(f, "fresh-0");
    write_file(f, "fresh-0/stale", "x");
    create(s, "fresh", 1, NULL);
    assert_true(exists(f, "fresh-0"));
    assert_false(exists(f, "fresh-0/stale"));
    stream_store_close(s);
}

static void test_unreadable_metadata_fails_open_and_keeps_data(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "t", 1, NULL);
    stream_store_close(s);

    write_file(f, "t.topic", "version=1\npartitions=many\n");
    stream_store *s2 = (stream_store *)1;
    assert_int_equal(stream_store_open(f->data, NULL, &s2, errbuf, sizeof errbuf),
                     STREAM_EBADCONFIG);
    assert_null(s2);
    assert_non_null(strstr(errbuf, "t.topic:2: partitions"));
    assert_true(exists(f, "t-0"));

    write_file(f, "t.topic", "version=1\npartitions=1\nnum.partitions=3\n");
    assert_int_equal(stream_store_open(f->data, NULL, &s2, errbuf, sizeof errbuf),
                     STREAM_EBADCONFIG);
    assert_non_null(strstr(errbuf, "t.topic:3:"));

    write_file(f, "t.topic", "version=2\npartitions=1\n");
    assert_int_equal(stream_store_open(f->data, NULL, &s2, errbuf, sizeof errbuf),
                     STREAM_EBADCONFIG);
    assert_non_null(strstr(errbuf, "version"));

    write_file(f, "t.topic", "# empty\n");
    assert_int_equal(stream_store_open(f->data, NULL, &s2, errbuf, sizeof errbuf),
                     STREAM_EBADCONFIG);
    assert_true(exists(f, "t-0"));

    /* A failed open released the lock: fixing the file is enough. */
    write_file(f, "t.topic", "version=1\npartitions=1\n");
    s = open_store(f, NULL);
    assert_non_null(stream_store_topic(s, "t"));
    stream_store_close(s);
}

static void test_open_creates_missing_data_dir_and_reports_lost_partitions(void **state)
{
    struct fixture *f = *state;
    snprintf(f->data, sizeof f->data, "%s/a/b/data", f->dir);
    stream_store *s = open_store(f, NULL);
    assert_true(exists(f, ".lock"));
    assert_non_null(strstr(stream_store_dir(s), "/a/b/data"));
    create(s, "t", 2, NULL);
    stream_store_close(s);

    char p[512];
    snprintf(p, sizeof p, "%s/t-1", f->data);
    assert_int_equal(rm_rf(p), 0);
    s = open_store(f, NULL);
    assert_true(exists(f, "t-1"));
    assert_true(has_note(s, "t-1 was missing"));
    stream_store_close(s);
}

static void test_overrides_must_be_a_topic_config(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_config *broker = stream_config_new();
    assert_int_equal(
        stream_store_create_topic(s, "t", 1, broker, false, NULL, errbuf, sizeof errbuf),
        STREAM_EINVAL);
    assert_non_null(strstr(errbuf, "topic config"));
    assert_null(stream_store_topic(s, "t"));
    assert_false(exists(f, "t-0"));
    stream_config_free(broker);
    stream_store_close(s);
}

static void test_metadata_file_is_readable_key_value_text(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_config *ov = stream_config_new_topic();
    stream_config_set(ov, "cleanup.policy", "delete", errbuf, sizeof errbuf);
    create(s, "m", 7, ov);
    stream_config_free(ov);
    stream_store_close(s);

    char p[512], text[512] = "";
    snprintf(p, sizeof p, "%s/m.topic", f->data);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    assert_non_null(strstr(text, "\nversion=1\n"));
    assert_non_null(strstr(text, "\npartitions=7\n"));
    assert_non_null(strstr(text, "\ncleanup.policy=delete\n"));
    assert_null(strstr(text, "retention.ms"));
}

/* Appends one record to `log`. */
static void append_one(stream_log *log, const char *value)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_append(&b, 1700000000000, NULL, -1, value,
                                                 (int32_t)strlen(value), NULL, 0),
                     0);
    const uint8_t *bytes;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &bytes, &len), 0);
    uint8_t *copy = malloc(len); /* append stamps the offset in place */
    memcpy(copy, bytes, len);
    int64_t base;
    assert_int_equal(stream_log_append(log, copy, len, &base, errbuf, sizeof errbuf), 0);
    free(copy);
    stream_batch_builder_release(&b);
}

static void test_records_survive_reopen_but_not_delete_and_recreate(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_topic *t = create(s, "t", 2, NULL);
    append_one(t->partitions[1], "hello");
    append_one(t->partitions[1], "again");
    stream_store_close(s);

    s = open_store(f, NULL);
    t = stream_store_topic(s, "t");
    assert_int_equal(stream_log_end_offset(t->partitions[1]), 2);
    assert_int_equal(stream_log_end_offset(t->partitions[0]), 0);
    assert_true(t->recovery[1].clean);
    assert_int_equal(t->recovery[1].truncated_bytes, 0);

    assert_int_equal(stream_store_delete_topic(s, "t", errbuf, sizeof errbuf), 0);
    t = create(s, "t", 2, NULL);
    assert_int_equal(stream_log_end_offset(t->partitions[1]), 0);
    stream_store_close(s);
}

/* Reads <data>/<dir>/<name> as an offset file ("<n>\n"); -1 when missing. */
static long long offset_file(struct fixture *f, const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/%s", f->data, dir, name);
    FILE *fp = fopen(p, "r");
    if (fp == NULL)
        return -1;
    long long v = -1;
    if (fscanf(fp, "%lld", &v) != 1)
        v = -1;
    fclose(fp);
    return v;
}

static void test_close_leaves_every_partition_clean_in_two_syncs(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_topic *t = create(s, "t", 200, NULL);
    for (int32_t p = 0; p < 200; p += 7) {
        append_one(t->partitions[p], "one");
        append_one(t->partitions[p], "two");
    }
    stream_store_close(s);
    /* Every partition: the marker, and a recovery point at its end. */
    for (int32_t p = 0; p < 200; p++) {
        char dn[32];
        snprintf(dn, sizeof dn, "t-%d", (int)p);
        char marker[48];
        snprintf(marker, sizeof marker, "%s/clean-shutdown", dn);
        assert_true(exists(f, marker));
        assert_int_equal(offset_file(f, dn, "recovery-point"), p % 7 == 0 ? 2 : 0);
    }
    s = open_store(f, NULL);
    t = stream_store_topic(s, "t");
    for (int32_t p = 0; p < 200; p++) {
        assert_true(t->recovery[p].clean);
        assert_int_equal(stream_log_end_offset(t->partitions[p]), p % 7 == 0 ? 2 : 0);
    }
    append_one(t->partitions[1], "three");
    stream_store_close(s);
    s = open_store(f, NULL);
    t = stream_store_topic(s, "t");
    assert_true(t->recovery[1].clean);
    assert_int_equal(stream_log_end_offset(t->partitions[1]), 1);
    stream_store_close(s);
}

static void test_open_of_many_partitions_on_threads_keeps_each_and_fails_whole(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_topic *t = create(s, "a", 700, NULL);
    for (int32_t p = 0; p < 700; p += 3)
        append_one(t->partitions[p], "x");
    create(s, "b", 300, NULL);
    stream_store_close(s);

    s = open_store(f, NULL);
    t = stream_store_topic(s, "a");
    for (int32_t p = 0; p < 700; p++) {
        assert_true(t->recovery[p].clean);
        assert_int_equal(stream_log_end_offset(t->partitions[p]), p % 3 == 0 ? 1 : 0);
    }
    assert_int_equal(stream_store_topic(s, "b")->partition_count, 300);
    stream_store_close(s);

    /* One partition the log refuses (a segment named past the largest
     * offset): the whole open fails with its message, nothing leaks. */
    write_file(f, "a-555/09223372036000000000.log", "");
    stream_store *bad = NULL;
    errbuf[0] = '\0';
    assert_int_equal(stream_store_open(f->data, NULL, &bad, errbuf, sizeof errbuf),
                     STREAM_ECORRUPT);
    assert_null(bad);
    assert_non_null(strstr(errbuf, "a-555"));
}

static void *run_job(void *arg)
{
    stream_store_job_run(arg);
    return NULL;
}

/* A create's disk work runs on another thread while the owner goes on using
 * the store; the name is reserved until the finish. */
static void test_create_job_runs_beside_the_owner(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "other", 1, NULL);
    stream_store_job *j;
    assert_int_equal(
        stream_store_create_begin(s, "big", 300, NULL, false, &j, errbuf, sizeof errbuf), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_job, j), 0);
    /* Meanwhile: not there yet, not creatable twice, other topics usable. */
    assert_null(stream_store_topic(s, "big"));
    stream_store_job *j2;
    assert_int_equal(
        stream_store_create_begin(s, "big", 1, NULL, false, &j2, errbuf, sizeof errbuf),
        STREAM_ETOPICEXISTS);
    assert_non_null(strstr(errbuf, "being created or deleted"));
    assert_int_equal(stream_store_delete_topic(s, "big", errbuf, sizeof errbuf), STREAM_ENOTOPIC);
    create(s, "small", 2, NULL);
    pthread_join(th, NULL);
    stream_topic *t;
    assert_int_equal(stream_store_job_finish(j, &t, errbuf, sizeof errbuf), 0);
    assert_ptr_equal(stream_store_topic(s, "big"), t);
    assert_int_equal(t->partition_count, 300);
    assert_int_equal(stream_store_topic_count(s), 3);
    stream_store_close(s);

    s = open_store(f, NULL);
    assert_int_equal(stream_store_topic(s, "big")->partition_count, 300);
    assert_true(exists(f, "big-299"));
    stream_store_close(s);
}

/* A delete takes the topic out at its begin, moves the directories away in
 * its run (the name is free at the finish) and leaves the files to the
 * trash thread. */
static void test_delete_job_frees_the_name_at_once(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_topic *t = create(s, "gone", 50, NULL);
    append_one(t->partitions[7], "old");

    stream_store_job *j;
    stream_topic *taken;
    assert_int_equal(stream_store_delete_begin(s, "gone", &taken, &j, errbuf, sizeof errbuf), 0);
    assert_ptr_equal(taken, t);
    assert_null(stream_store_topic(s, "gone"));
    stream_store_job *j2;
    assert_int_equal(
        stream_store_create_begin(s, "gone", 1, NULL, false, &j2, errbuf, sizeof errbuf),
        STREAM_ETOPICEXISTS);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_job, j), 0);
    pthread_join(th, NULL);
    assert_int_equal(stream_store_job_finish(j, NULL, errbuf, sizeof errbuf), 0);
    assert_false(exists(f, "gone.topic") || exists(f, "gone-0") || exists(f, "gone-49"));

    /* The same name again at once: a new, empty topic. */
    t = create(s, "gone", 8, NULL);
    assert_int_equal(stream_log_end_offset(t->partitions[7]), 0);
    stream_store_wait_trash(s);
    assert_false(exists(f, ".deleted"));
    stream_store_close(s);
}

/* A start does not wait for the trash: what a killed broker left in
 * .deleted/ goes in the background. */
static void test_leftover_trash_is_removed_in_the_background(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "kept", 1, NULL);
    stream_store_close(s);
    make_dir(f, ".deleted");
    make_dir(f, ".deleted/3");
    for (int i = 0; i < 20; i++) {
        char dn[64];
        snprintf(dn, sizeof dn, ".deleted/3/old-%d", i);
        make_dir(f, dn);
        snprintf(dn, sizeof dn, ".deleted/3/old-%d/00000000000000000000.log", i);
        write_file(f, dn, "old records");
    }
    s = open_store(f, NULL);
    assert_true(has_note(s, "in the background"));
    /* A delete meanwhile gets a trash directory of its own. */
    create(s, "next", 3, NULL);
    assert_int_equal(stream_store_delete_topic(s, "next", errbuf, sizeof errbuf), 0);
    stream_store_wait_trash(s);
    assert_false(exists(f, ".deleted"));
    assert_true(exists(f, "kept-0"));
    stream_store_close(s);
}

/* A create that would pass the open-file limit is refused up front, with a
 * message naming the limit, not failed partway with EMFILE as EIO; one that
 * fits at one descriptor per partition (none for its directory) is made. */
static void test_create_past_the_open_file_limit_is_refused_up_front(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 400;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    stream_topic *t = NULL;
    int rc = stream_store_create_topic(s, "big", 400, NULL, false, &t, errbuf, sizeof errbuf);
    stream_topic *t2 = NULL;
    int rc2 = stream_store_create_topic(s, "fits", 300, NULL, false, &t2, errbuf, sizeof errbuf);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, STREAM_EINVAL);
    assert_null(t);
    assert_non_null(strstr(errbuf, "open-file limit"));
    assert_non_null(strstr(errbuf, "ulimit -n"));
    assert_false(exists(f, "big.topic") || exists(f, "big-0"));
    assert_int_equal(rc2, 0);
    assert_int_equal(t2->partition_count, 300);
    stream_store_close(s);
}

/* Adding partitions: the new ones are empty, the old keep their records,
 * and the new count is what the next open finds. */
static void test_add_partitions_grows_and_persists(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_topic *t = create(s, "t", 2, NULL);
    stream_log *p1 = t->partitions[1];
    append_one(p1, "old");
    stream_topic *g = NULL;
    assert_int_equal(stream_store_add_partitions(s, "t", 5, &g, errbuf, sizeof errbuf), 0);
    assert_ptr_equal(g, t);
    assert_int_equal(t->partition_count, 5);
    assert_ptr_equal(t->partitions[1], p1); /* the same log, still open */
    assert_int_equal(stream_log_end_offset(t->partitions[1]), 1);
    assert_int_equal(stream_log_end_offset(t->partitions[4]), 0);
    append_one(t->partitions[4], "new");
    stream_log *log;
    assert_int_equal(stream_store_log(s, "t", 4, &log), 0);
    assert_ptr_equal(log, t->partitions[4]);
    stream_store_close(s);

    s = open_store(f, NULL);
    t = stream_store_topic(s, "t");
    assert_int_equal(t->partition_count, 5);
    assert_int_equal(stream_log_end_offset(t->partitions[1]), 1);
    assert_int_equal(stream_log_end_offset(t->partitions[4]), 1);
    assert_int_equal(stream_log_end_offset(t->partitions[3]), 0);
    stream_store_close(s);
}

static void test_add_partitions_refuses_shrinking_and_unknown_topics(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    create(s, "t", 3, NULL);
    assert_int_equal(stream_store_add_partitions(s, "t", 3, NULL, errbuf, sizeof errbuf),
                     STREAM_EINVAL);
    assert_non_null(strstr(errbuf, "has 3 partitions"));
    assert_int_equal(stream_store_add_partitions(s, "t", 1, NULL, errbuf, sizeof errbuf),
                     STREAM_EINVAL);
    assert_int_equal(stream_store_add_partitions(s, "t", 10001, NULL, errbuf, sizeof errbuf),
                     STREAM_EINVAL);
    assert_int_equal(stream_store_add_partitions(s, "nope", 5, NULL, errbuf, sizeof errbuf),
                     STREAM_ENOTOPIC);
    assert_int_equal(stream_store_topic(s, "t")->partition_count, 3);
    assert_false(exists(f, "t-3"));
    stream_store_close(s);
}

/* The disk work runs beside the owner, who goes on using the old
 * partitions; the topic cannot be deleted, altered or grown again
 * meanwhile. */
static void test_add_partitions_job_runs_beside_the_owner(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    stream_topic *t = create(s, "t", 2, NULL);
    stream_store_job *j, *j2;
    assert_int_equal(stream_store_add_partitions_begin(s, "t", 200, &j, errbuf, sizeof errbuf), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_job, j), 0);
    append_one(t->partitions[0], "during");
    assert_int_equal(t->partition_count, 2);
    assert_int_equal(stream_store_add_partitions_begin(s, "t", 300, &j2, errbuf, sizeof errbuf),
                     STREAM_EAGAIN);
    assert_int_equal(stream_store_delete_topic(s, "t", errbuf, sizeof errbuf), STREAM_EAGAIN);
    assert_int_equal(stream_store_alter_topic(s, "t", NULL, errbuf, sizeof errbuf), STREAM_EAGAIN);
    pthread_join(th, NULL);
    stream_topic *g;
    assert_int_equal(stream_store_job_finish(j, &g, errbuf, sizeof errbuf), 0);
    assert_ptr_equal(g, t);
    assert_int_equal(t->partition_count, 200);
    assert_int_equal(stream_log_end_offset(t->partitions[0]), 1);
    assert_int_equal(stream_store_delete_topic(s, "t", errbuf, sizeof errbuf), 0);
    stream_store_close(s);
}

/* kill -9 while partitions are being added: the next open finds the old
 * count or the new one, every partition of it usable, and no directory of
 * the other. */
static void test_kill_mid_add_partitions_leaves_old_or_new_count(void **state)
{
    struct fixture *f = *state;
    stream_store *s = open_store(f, NULL);
    append_one(create(s, "t", 2, NULL)->partitions[0], "kept");
    stream_store_close(s);
    int32_t want = 2;
    bool saw_old = false, saw_new = false;
    for (int round = 0; round < 6; round++) {
        want += 150;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            stream_store *cs = NULL;
            char e[256];
            if (stream_store_open(f->data, NULL, &cs, e, sizeof e) != 0)
                _exit(3);
            stream_store_add_partitions(cs, "t", want, NULL, e, sizeof e);
            pause(); /* never close: the kill is the end */
            _exit(0);
        }
        static const long delay_ms[] = {2, 15, 40, 80, 150, 400};
        struct timespec d = {0, delay_ms[round] * 1000000L};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        s = open_store(f, NULL);
        stream_topic *t = stream_store_topic(s, "t");
        assert_non_null(t);
        int32_t n = t->partition_count;
        assert_true(n == want || n == want - 150);
        saw_new = saw_new || n == want;
        saw_old = saw_old || n != want;
        char dn[64];
        snprintf(dn, sizeof dn, "t-%d", (int)n);
        stream_store_wait_trash(s);
        assert_false(exists(f, dn));
        assert_int_equal(stream_log_end_offset(t->partitions[0]), 1);
        int64_t end = stream_log_end_offset(t->partitions[n - 1]);
        append_one(t->partitions[n - 1], "after");
        assert_int_equal(stream_log_end_offset(t->partitions[n - 1]), end + 1);
        want = n;
        stream_store_close(s);
    }
    print_message("kill mid add_partitions: old count seen %d, new count seen %d\n", saw_old,
                  saw_new);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_name_grammar),
        cmocka_unit_test(test_topic_names_are_validated),
        cmocka_unit_test_setup_teardown(test_create_list_lookup_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_existing_topic_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_unknown_topic_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_bad_names_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_internal_topics_need_the_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topics_and_settings_persist_across_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_alter_config_is_persisted_and_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_same_dir_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_delete_is_finished_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stray_partition_dirs_are_removed_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_does_not_reuse_stale_partition_dirs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_metadata_fails_open_and_keeps_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_open_creates_missing_data_dir_and_reports_lost_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrides_must_be_a_topic_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_file_is_readable_key_value_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_records_survive_reopen_but_not_delete_and_recreate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_leaves_every_partition_clean_in_two_syncs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_open_of_many_partitions_on_threads_keeps_each_and_fails_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_job_runs_beside_the_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_job_frees_the_name_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_trash_is_removed_in_the_background, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_partitions_grows_and_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_partitions_refuses_shrinking_and_unknown_topics,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_partitions_job_runs_beside_the_owner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kill_mid_add_partitions_leaves_old_or_new_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_past_the_open_file_limit_is_refused_up_front,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
