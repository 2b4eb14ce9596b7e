/*
 * test_proc.c - the processor's plumbing (libstream/connect/proc.c) against
 * a real broker process and real commands: a batch runs once per key and
 * its outputs keep that key; a failing or hanging command fails the run
 * with nothing stored past the last good batch; a bad configuration is
 * refused before anything runs. stream-proc's options, formats and the
 * kill -9 checks are tests/cli/stream-proc.bats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream/client.h"
#include "stream/error.h"
#include "stream/proc.h"
#include "client_kit.h"
#include "wire.h"

static const char *const broker_sets[] = {"group.min.session.timeout.ms=300", NULL};

static int setup(void **state)
{
    return client_fixture_setup(state, "test_proc", broker_sets);
}

static int teardown(void **state)
{
    return client_fixture_teardown(state);
}

/* The command's input: each value and a newline. */
static int encode_value(void *arg, const stream_consumer_event *ev, stream_buf *out, char *errbuf,
                        size_t errbuf_len)
{
    (void)arg;
    if (ev->record.value_len > 0)
        stream_buf_put(out, ev->record.value, (size_t)ev->record.value_len);
    stream_buf_put_u8(out, '\n');
    return out->oom ? STREAM_ENOMEM : 0;
}

/* Produces n records with keys keys[i % nkeys] and values "KEY:I" to
 * partition 0 of topic. */
static void produce_keyed(stream_client *c, const char *topic, int n, const char *const *keys,
                          int nkeys)
{
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    stream_producer *p;
    char eb[256] = "";
    if (stream_producer_new(c, &pc, &p, eb, sizeof eb) != 0)
        fail_msg("producer_new: %s", eb);
    for (int i = 0; i < n; i++) {
        char v[32];
        const char *k = keys[i % nkeys];
        int len = snprintf(v, sizeof v, "%s:%d", k, i);
        stream_producer_record rec = {.topic = topic,
                                      .partition = 0,
                                      .key = k,
                                      .key_len = (int32_t)strlen(k),
                                      .value = v,
                                      .value_len = len};
        assert_int_equal(stream_producer_produce(p, &rec, eb, sizeof eb), 0);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    stream_producer_free(p, 0);
}

/* A processor over a group member of its own: clients, consumer, producer. */
typedef struct harness {
    stream_client *cin, *cout;
    stream_consumer *co;
    stream_producer *p;
    stream_proc *pr;
} harness;

static void harness_start(harness *h, const char *addr, const char *group, char *const *argv,
                          int timeout_ms, size_t max_records)
{
    char eb[512] = "";
    h->cin = client_for(addr);
    h->cout = client_for(addr);
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.stop_at_end = true;
    cc.auto_offset_reset = STREAM_RESET_EARLIEST;
    assert_int_equal(stream_consumer_new(h->cin, &cc, &h->co, eb, sizeof eb), 0);
    stream_proc_conf conf;
    stream_proc_conf_init(&conf);
    conf.argv = argv;
    conf.in_topic = "in";
    conf.out_topic = "out";
    conf.consumer = h->co;
    conf.consumer_client = h->cin;
    conf.encode = encode_value;
    conf.timeout_ms = timeout_ms;
    conf.max_records = max_records;
    if (stream_proc_new(&conf, &h->pr, eb, sizeof eb) != 0)
        fail_msg("proc_new: %s", eb);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.on_delivery = stream_proc_on_delivery;
    pc.opaque = h->pr;
    assert_int_equal(stream_producer_new(h->cout, &pc, &h->p, eb, sizeof eb), 0);
    stream_proc_set_producer(h->pr, h->p);
    stream_group_conf gc;
    stream_group_conf_init(&gc);
    gc.group = group;
    gc.auto_store = false;
    const char *topics[] = {"in"};
    if (stream_consumer_subscribe(h->co, &gc, topics, 1, NULL, -1, eb, sizeof eb) != 0)
        fail_msg("subscribe: %s", eb);
}

/* Closes with a commit, as stream-proc does, and frees everything. */
static void harness_stop(harness *h)
{
    char eb[512] = "";
    assert_int_equal(stream_consumer_close(h->co, true, 10000, eb, sizeof eb), 0);
    stream_producer_free(h->p, 10000);
    stream_proc_free(h->pr);
    stream_consumer_free(h->co);
    stream_client_free(h->cin);
    stream_client_free(h->cout);
}

/* The group's committed offset of partition 0 of "in" (-1: none). */
static int64_t committed(stream_client *c, const char *group)
{
    stream_group_description *d = NULL;
    char eb[256] = "";
    if (stream_admin_describe_group(c, group, -1, &d, eb, sizeof eb) != 0)
        fail_msg("describe_group: %s", eb);
    int64_t off = -1;
    for (size_t i = 0; i < d->offset_count; i++)
        if (strcmp(d->offsets[i].topic, "in") == 0 && d->offsets[i].partition == 0)
            off = d->offsets[i].offset;
    stream_group_description_free(d);
    return off;
}

static void test_proc_new_refuses_a_bad_conf(void **state)
{
    client_fixture *f = *state;
    stream_consumer *co;
    char eb[256] = "";
    assert_int_equal(stream_consumer_new(f->c, NULL, &co, eb, sizeof eb), 0);
    char *argv[] = {"cat", NULL};
    char *none[] = {NULL};
    stream_proc_conf conf;
    stream_proc_conf_init(&conf);
    conf.argv = argv;
    conf.in_topic = "in";
    conf.out_topic = "out";
    conf.consumer = co;
    conf.consumer_client = f->c;
    conf.encode = encode_value;
    stream_proc *pr = NULL;
    conf.argv = none;
    assert_int_equal(stream_proc_new(&conf, &pr, eb, sizeof eb), STREAM_EINVAL);
    assert_string_equal(eb, "no command given");
    conf.argv = argv;
    conf.encode = NULL;
    assert_int_equal(stream_proc_new(&conf, &pr, eb, sizeof eb), STREAM_EINVAL);
    conf.encode = encode_value;
    conf.max_output_bytes = conf.max_record_bytes - 1;
    assert_int_equal(stream_proc_new(&conf, &pr, eb, sizeof eb), STREAM_EINVAL);
    assert_null(pr);
    /* Without a producer, run refuses too. */
    stream_proc_conf_init(&conf);
    conf.argv = argv;
    conf.in_topic = "in";
    conf.out_topic = "out";
    conf.consumer = co;
    conf.consumer_client = f->c;
    conf.encode = encode_value;
    assert_int_equal(stream_proc_new(&conf, &pr, eb, sizeof eb), 0);
    assert_int_equal(stream_proc_run(pr, eb, sizeof eb), STREAM_EINVAL);
    stream_proc_free(pr);
    stream_proc_free(NULL);
    stream_consumer_free(co);
}

/* Each key of a batch gets a run of its own: a command that adds one line
 * per run ("end") shows how many runs there were, and each output carries
 * its run's key. */
static void test_one_run_per_key_and_outputs_keep_it(void **state)
{
    client_fixture *f = *state;
    create_topic(f->c, "in", 1);
    create_topic(f->c, "out", 1);
    static const char *const keys[] = {"a", "b", "c"};
    produce_keyed(f->c, "in", 30, keys, 3);
    char *argv[] = {"sh", "-c", "cat; echo end", NULL};
    harness h;
    harness_start(&h, f->addr, "g", argv, 10000, 10000);
    char eb[512] = "";
    assert_int_equal(stream_proc_run(h.pr, eb, sizeof eb), 0);
    stream_proc_stats st;
    stream_proc_stats_get(h.pr, &st);
    assert_int_equal(st.records, 30);
    assert_int_equal(st.outputs, 30 + st.runs);
    assert_true(st.runs >= 3);
    harness_stop(&h);
    assert_int_equal(committed(f->c, "g"), 30);

    /* Out: per key, its values in order and one "end" after each run. */
    consumed got = {0};
    consume_all(f->c, "out", NULL, &got);
    assert_int_equal(got.n, 30 + st.runs);
    int next[3] = {0, 1, 2};
    uint64_t ends = 0;
    for (size_t i = 0; i < got.n; i++) {
        const consumed_rec *g = &got.recs[i];
        assert_int_equal(g->key_len, 1);
        int k = g->key[0] - 'a';
        assert_in_range(k, 0, 2);
        if (strcmp(g->value, "end") == 0) {
            ends++;
            continue;
        }
        char want[32];
        snprintf(want, sizeof want, "%c:%d", 'a' + k, next[k]);
        assert_string_equal(g->value, want);
        next[k] += 3;
    }
    assert_int_equal(ends, st.runs);
    consumed_release(&got);
}

/* Batches of 4; the command fails on the record "b:5" (the second batch):
 * the first batch's outputs are published and its offsets committed,
 * nothing after. */
static void test_a_failing_run_stores_nothing_past_the_last_good_batch(void **state)
{
    client_fixture *f = *state;
    create_topic(f->c, "in", 1);
    create_topic(f->c, "out", 1);
    static const char *const keys[] = {"b"};
    produce_keyed(f->c, "in", 12, keys, 1);
    char *argv[] = {"sh", "-c", "while read l; do [ \"$l\" = b:5 ] && exit 7; echo \"$l\"; done",
                    NULL};
    harness h;
    harness_start(&h, f->addr, "g", argv, 10000, 4);
    char eb[512] = "";
    assert_int_equal(stream_proc_run(h.pr, eb, sizeof eb), STREAM_EIO);
    assert_non_null(strstr(eb, "'sh' exited with status 7 on a batch of 4 records from "
                               "partition 0 offset 4"));
    stream_proc_stats st;
    stream_proc_stats_get(h.pr, &st);
    assert_int_equal(st.records, 4);
    harness_stop(&h);
    assert_int_equal(committed(f->c, "g"), 4);
}

/* A command that does not finish within the timeout is killed; the run
 * fails with STREAM_ETIMEDOUT soon after, nothing stored. */
static void test_a_hanging_run_times_out(void **state)
{
    client_fixture *f = *state;
    create_topic(f->c, "in", 1);
    create_topic(f->c, "out", 1);
    static const char *const keys[] = {"k"};
    produce_keyed(f->c, "in", 3, keys, 1);
    char *argv[] = {"sleep", "30", NULL};
    harness h;
    harness_start(&h, f->addr, "g", argv, 300, 10000);
    char eb[512] = "";
    int64_t t0 = wire_now_ms();
    assert_int_equal(stream_proc_run(h.pr, eb, sizeof eb), STREAM_ETIMEDOUT);
    assert_true(wire_now_ms() - t0 < 10000);
    assert_non_null(strstr(eb, "'sleep' did not finish"));
    harness_stop(&h);
    assert_true(committed(f->c, "g") <= 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proc_new_refuses_a_bad_conf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_run_per_key_and_outputs_keep_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failing_run_stores_nothing_past_the_last_good_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_hanging_run_times_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
