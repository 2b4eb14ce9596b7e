/*
 * broker_admin.c - create_topics, delete_topics and create_partitions, with
 * their disk work off the loop.
 *
 * Making or removing a topic of ten thousand partitions is seconds of
 * mkdir, open, rename and unlink; done on the loop it stalls every client
 * of the broker for as long. So a request goes in three steps (the store's
 * job API, store.h):
 *
 *   loop          checks every entry and begins a store job per topic (the
 *                 name is reserved; a deleted topic leaves the store at once,
 *                 its waiters answered ENOTOPIC; a growing topic is served
 *                 as it was)
 *   thread pool   one uv_work runs the request's jobs in order: the disk work
 *   loop          finishes the jobs (a created topic appears, a grown one gets
 *                 its new partitions; they are attached to the flusher and
 *                 announced to the services) and answers
 *
 * The answer comes when the work is done: a client that sees err 0 can use
 * the topic, or the name again, at once. Produce and fetch of other topics
 * go on meanwhile, and the connection's later requests wait their turn (the
 * responses keep request order). A request whose connection closes is only
 * marked (r NULL): its work goes on and is finished, unanswered. Topics of
 * a request are done one after the other; two requests run side by side.
 *
 * A service (the replica manager following the cluster metadata) makes
 * topics and partitions the same way (stream__broker_create_async,
 * stream__broker_grow_async: begin, thread pool, finish, then its callback).
 * validate_only, and the synchronous stream__broker_delete_topic (a
 * service's delete, through host.c), stay on the loop.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "stream/error.h"

/* One topic of a request. */
typedef struct admin_entry {
    char *raw; /* the name as the request gave it (owned) */
    size_t raw_len;
    char name[STREAM_TOPIC_NAME_MAX + 1]; /* checked name ("" when it was not) */
    int err;                              /* the topic's result */
    char msg[512];                        /* its message */
    stream_store_job *job;                /* the disk work still to finish, or NULL */
    int32_t partitions;                   /* create: for the log line */
    int32_t old_count;                    /* create_partitions: the count before */
} admin_entry;

/* What a request does to each of its topics. */
typedef enum admin_kind {
    ADMIN_CREATE,
    ADMIN_DELETE,
    ADMIN_GROW, /* create_partitions */
} admin_kind;

/* A create_topics or delete_topics request while its disk work runs. */
struct stream__admin_op {
    uv_work_t work; /* on libuv's thread pool; work.data unused */
    stream_broker *b;
    stream__req *r;   /* NULL once its connection closed */
    uint64_t conn_id; /* the connection, to find it when it closes */
    uint64_t id;      /* the request's correlation id */
    admin_kind kind;
    uint32_t n;             /* entries */
    admin_entry *e;         /* n entries, in request order */
    stream__admin_op *next; /* the broker's list of ops in flight */
};

/* ---- the request's topics -------------------------------------------------- */

/* True when topics[i]'s name occurs at another index of the array (each
 * element being a map with a str `name`). */
static bool named_twice(const msgpack_object *topics, uint32_t i)
{
    const char *p, *q;
    size_t len, qlen;
    const msgpack_object *t;
    if (stream_elem_map(topics, i, "topics", &t, NULL, 0) != 0 ||
        stream_field_str(t, "name", &p, &len, NULL, 0) != 0)
        return false;
    for (uint32_t j = 0; j < topics->via.array.size; j++) {
        if (j == i)
            continue;
        if (stream_elem_map(topics, j, "topics", &t, NULL, 0) != 0 ||
            stream_field_str(t, "name", &q, &qlen, NULL, 0) != 0)
            continue;
        if (qlen == len && memcmp(p, q, len) == 0)
            return true;
    }
    return false;
}

/* Reads one create_topics entry; with msg NULL after a first checked pass. */
static int create_entry(const msgpack_object *topics, uint32_t i, const char **p, size_t *len,
                        int64_t *parts, int64_t *rf, const msgpack_object **cfg, char *msg,
                        size_t msg_len)
{
    const msgpack_object *t;
    int rc = stream_elem_map(topics, i, "topics", &t, msg, msg_len);
    if (rc == 0)
        rc = stream_field_str(t, "name", p, len, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(t, "partitions", INT32_MIN, INT32_MAX, -1, parts, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(t, "replication_factor", INT32_MIN, INT32_MAX, -1, rf, msg,
                                  msg_len);
    if (rc == 0)
        rc = stream_field_strmap_opt(t, "configs", cfg, msg, msg_len);
    return rc;
}

/* Checks topic i and, unless validate_only, begins its creation (e->job).
 * Returns 0 or the topic's error with e->msg. */
static int create_begin(stream_broker *b, const msgpack_object *topics, uint32_t i,
                        bool validate_only, admin_entry *e)
{
    const msgpack_object *cfg;
    const char *p;
    size_t len;
    int64_t parts, rf;
    char *msg = e->msg;
    size_t msg_len = sizeof(e->msg);
    create_entry(topics, i, &p, &len, &parts, &rf, &cfg, NULL, 0);
    int rc = stream__topic_name(p, len, e->name, msg, msg_len);
    if (rc != 0)
        return rc;
    if (stream_topic_is_internal(p, len)) {
        snprintf(msg, msg_len, "topic names starting with '__' are reserved for the broker");
        return STREAM_EBADNAME;
    }
    /* -1 (as absent) means num.partitions: the C client sends it so. */
    if (parts != -1 && (parts < 1 || parts > STREAM_MAX_PARTITIONS)) {
        snprintf(msg, msg_len, "partitions must be 1 to %d, got %lld", STREAM_MAX_PARTITIONS,
                 (long long)parts);
        return STREAM_EINVAL;
    }
    if (rf != -1 && rf != 1) {
        snprintf(msg, msg_len, "replication_factor %lld: a single broker allows only 1",
                 (long long)rf);
        return STREAM_EINVAL;
    }
    if (named_twice(topics, i)) {
        snprintf(msg, msg_len, "topic '%s' is named twice in the request", e->name);
        return STREAM_EINVAL;
    }
    if (stream_store_topic(b->store, e->name)) {
        snprintf(msg, msg_len, "topic '%s' already exists", e->name);
        return STREAM_ETOPICEXISTS;
    }
    stream_config *overrides = stream_config_new_topic();
    if (overrides == NULL)
        return STREAM_ENOMEM;
    rc = stream__apply_settings(overrides, cfg, msg, msg_len);
    if (rc == 0 && !validate_only)
        rc = stream_store_create_begin(b->store, e->name, (int32_t)parts, overrides, false, &e->job,
                                       msg, msg_len);
    stream_config_free(overrides);
    return rc;
}

/* A created topic goes live: flusher, log line, services. */
static void created(stream_broker *b, stream_topic *t)
{
    stream__blog(b, STREAM_BROKER_INFO, "created topic %s with %d partitions", t->name,
                 (int)t->partition_count);
    if (stream__broker_attach_topic(b, t) != 0)
        stream__blog(b, STREAM_BROKER_ERROR,
                     "topic %s: cannot attach to the flusher; acks=all will time out", t->name);
    stream__services_topic_created(b, t);
}

/* New partitions go live: flusher, log line, services. */
static void grown(stream_broker *b, stream_topic *t, int32_t old_count)
{
    stream__blog(b, STREAM_BROKER_INFO, "topic %s: partitions %d -> %d", t->name, (int)old_count,
                 (int)t->partition_count);
    if (stream__broker_attach_partitions(b, t, old_count) != 0)
        stream__blog(b, STREAM_BROKER_ERROR,
                     "topic %s: cannot attach to the flusher; acks=all will time out", t->name);
    stream__services_partitions_added(b, t, old_count);
}

int stream__broker_add_partitions(stream_broker *b, const char *name, int32_t count, char *msg,
                                  size_t msg_len)
{
    stream_topic *t = stream_store_topic(b->store, name);
    int32_t old_count = t != NULL ? t->partition_count : 0;
    int rc = stream_store_add_partitions(b->store, name, count, &t, msg, msg_len);
    if (rc == 0)
        grown(b, t, old_count);
    return rc;
}

/* A service's create or grow: one store job off the loop, then its callback. */
typedef struct service_job {
    uv_work_t work; /* first: the uv_work_t is the job */
    stream_broker *b;
    stream_store_job *job;
    bool grow;         /* add_partitions, else create */
    int32_t old_count; /* grow: the partitions before */
    stream__broker_job_done_fn done;
    void *arg;
} service_job;

static void service_work(uv_work_t *w)
{
    stream_store_job_run(((service_job *)w)->job);
}

static void service_done(uv_work_t *w, int status)
{
    service_job *sj = (service_job *)w;
    char msg[512] = "";
    stream_topic *t = NULL;
    if (status != 0)
        stream_store_job_run(sj->job); /* never ran (nothing cancels it): here */
    int rc = stream_store_job_finish(sj->job, &t, msg, sizeof(msg));
    if (rc == 0 && sj->grow)
        grown(sj->b, t, sj->old_count);
    else if (rc == 0)
        created(sj->b, t);
    sj->done(sj->arg, rc, msg);
    free(sj);
}

/* Queues sj once its store job was begun (rc 0); else frees it. */
static int service_start(stream_broker *b, service_job *sj, int rc)
{
    if (rc != 0) {
        free(sj);
        return rc;
    }
    if (uv_queue_work(&b->loop, &sj->work, service_work, service_done) != 0) {
        service_work(&sj->work); /* does not fail on Linux; if it did: here */
        service_done(&sj->work, 0);
    }
    return 0;
}

static service_job *service_new(stream_broker *b, stream__broker_job_done_fn done, void *arg,
                                char *msg, size_t msg_len)
{
    service_job *sj = calloc(1, sizeof(*sj));
    if (sj == NULL)
        snprintf(msg, msg_len, "out of memory");
    else
        *sj = (service_job){.b = b, .done = done, .arg = arg};
    return sj;
}

int stream__broker_create_async(stream_broker *b, const char *name, int32_t partitions,
                                const stream_config *overrides, bool internal,
                                stream__broker_job_done_fn done, void *arg, char *msg,
                                size_t msg_len)
{
    service_job *sj = service_new(b, done, arg, msg, msg_len);
    if (sj == NULL)
        return STREAM_ENOMEM;
    int rc = stream_store_create_begin(b->store, name, partitions, overrides, internal, &sj->job,
                                       msg, msg_len);
    return service_start(b, sj, rc);
}

int stream__broker_grow_async(stream_broker *b, const char *name, int32_t count,
                              stream__broker_job_done_fn done, void *arg, char *msg, size_t msg_len)
{
    service_job *sj = service_new(b, done, arg, msg, msg_len);
    if (sj == NULL)
        return STREAM_ENOMEM;
    stream_topic *t = stream_store_topic(b->store, name);
    sj->grow = true;
    sj->old_count = t != NULL ? t->partition_count : 0;
    int rc = stream_store_add_partitions_begin(b->store, name, count, &sj->job, msg, msg_len);
    return service_start(b, sj, rc);
}

/* Begins the delete of the topic named (p, len): out of the store at once,
 * its waiters answered (ENOTOPIC), its logs no longer synced for the
 * broker. 0 with *job, or the error with msg. */
static int delete_begin(stream_broker *b, const char *p, size_t len, char *name,
                        stream_store_job **job, char *msg, size_t msg_len)
{
    stream_topic *t = NULL;
    *job = NULL;
    if (stream_topic_name_check(p, len, NULL, 0) == 0) {
        memcpy(name, p, len);
        name[len] = '\0';
        t = stream_store_topic(b->store, name);
    }
    if (t == NULL) {
        snprintf(msg, msg_len, "unknown topic '%.*s'", (int)(len > 255 ? 255 : len), p);
        return STREAM_ENOTOPIC;
    }
    if (t->internal) {
        snprintf(msg, msg_len, "topic '%s' is internal and cannot be deleted", name);
        return STREAM_EBADNAME;
    }
    int rc = stream_store_delete_begin(b->store, name, &t, job, msg, msg_len);
    if (rc != 0)
        return rc;
    /* The logs are freed by the run; their addresses are the keys of the
     * waiters' queues. The flusher lets go of them in the run. */
    for (int32_t i = 0; i < t->partition_count; i++) {
        stream_log_set_durable_cb(t->partitions[i], NULL, NULL);
        stream__pstate_drop(b, t->partitions[i]);
    }
    return 0;
}

/* Finishes a delete's job: on success the services forget the topic; a
 * delete that failed before its commit has the topic back. */
static int delete_finish(stream_broker *b, const char *name, stream_store_job *job, char *msg,
                         size_t msg_len)
{
    int rc = stream_store_job_finish(job, NULL, msg, msg_len);
    if (rc == 0) {
        stream__blog(b, STREAM_BROKER_INFO, "deleted topic %s", name);
        stream__services_topic_deleted(b, name); /* e.g. groups' offsets of it go too */
        return 0;
    }
    stream_topic *t = stream_store_topic(b->store, name);
    if (t != NULL)
        stream__broker_attach_topic(b, t); /* still there: keep flushing it */
    return rc;
}

int stream__broker_delete_topic(stream_broker *b, const char *p, size_t len, char *msg,
                                size_t msg_len)
{
    char name[STREAM_TOPIC_NAME_MAX + 1];
    stream_store_job *job;
    int rc = delete_begin(b, p, len, name, &job, msg, msg_len);
    if (rc != 0)
        return rc;
    stream_store_job_run(job);
    return delete_finish(b, name, job, msg, msg_len);
}

/* ---- the request in flight ------------------------------------------------- */

static stream__admin_op *admin_op_new(stream__conn *c, stream__req *r, uint64_t id, admin_kind kind,
                                      uint32_t n)
{
    stream__admin_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->e = calloc(n ? n : 1, sizeof(*op->e));
    if (op->e == NULL) {
        free(op);
        return NULL;
    }
    op->b = c->broker;
    op->r = r;
    op->conn_id = c->id;
    op->id = id;
    op->kind = kind;
    op->n = n;
    return op;
}

/* Packs the answer and completes r (unless its connection closed). */
static void admin_reply(stream__admin_op *op)
{
    stream__req *r = op->r;
    if (r == NULL)
        return;
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, op->id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, op->n);
    for (uint32_t i = 0; i < op->n; i++) {
        const admin_entry *e = &op->e[i];
        msgpack_pack_map(&f.pk, 1 + stream_err_fields(e->err));
        stream_pack_kv_str(&f.pk, "name", e->raw ? e->raw : "", e->raw ? e->raw_len : 0);
        stream_pack_err(&f.pk, e->err, e->msg);
    }
    stream__reply_finish(r, &f, op->id);
}

/* Frees op; every job was finished. */
static void admin_op_free(stream__admin_op *op)
{
    for (uint32_t i = 0; i < op->n; i++)
        free(op->e[i].raw);
    free(op->e);
    free(op);
}

/* Copies entry e's name as the request gave it (borrowed from the frame). */
static int keep_raw(admin_entry *e, const char *p, size_t len)
{
    e->raw = malloc(len ? len : 1);
    if (e->raw == NULL)
        return STREAM_ENOMEM;
    memcpy(e->raw, p, len);
    e->raw_len = len;
    return 0;
}

/* Thread pool: the disk work of every topic of the request, in order. */
static void admin_work(uv_work_t *w)
{
    stream__admin_op *op = (stream__admin_op *)w;
    for (uint32_t i = 0; i < op->n; i++)
        if (op->e[i].job != NULL)
            stream_store_job_run(op->e[i].job);
}

/* Loop: the work is done (status is UV_ECANCELED only if it never ran, which
 * nothing here asks for). */
static void admin_done(uv_work_t *w, int status)
{
    stream__admin_op *op = (stream__admin_op *)w;
    stream_broker *b = op->b;
    for (stream__admin_op **pp = &b->admin_ops; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    }
    for (uint32_t i = 0; i < op->n; i++) {
        admin_entry *e = &op->e[i];
        if (e->job == NULL)
            continue;
        if (status != 0)
            stream_store_job_run(e->job);
        stream_topic *t;
        switch (op->kind) {
        case ADMIN_CREATE:
            e->err = stream_store_job_finish(e->job, &t, e->msg, sizeof(e->msg));
            if (e->err == 0)
                created(b, t);
            break;
        case ADMIN_GROW:
            e->err = stream_store_job_finish(e->job, &t, e->msg, sizeof(e->msg));
            if (e->err == 0)
                grown(b, t, e->old_count);
            break;
        case ADMIN_DELETE:
            e->err = delete_finish(b, e->name, e->job, e->msg, sizeof(e->msg));
            break;
        }
        e->job = NULL;
    }
    admin_reply(op);
    admin_op_free(op);
}

/* Answers now when no entry has disk work; else queues the work. */
static void admin_start(stream__admin_op *op)
{
    stream_broker *b = op->b;
    bool work = false;
    for (uint32_t i = 0; i < op->n; i++)
        work = work || op->e[i].job != NULL;
    if (!work) {
        admin_reply(op);
        admin_op_free(op);
        return;
    }
    op->next = b->admin_ops;
    b->admin_ops = op;
    if (uv_queue_work(&b->loop, &op->work, admin_work, admin_done) != 0) {
        admin_work(&op->work); /* does not fail on Linux; if it did: here */
        admin_done(&op->work, 0);
    }
}

void stream__admin_conn_closed(stream_broker *b, uint64_t conn_id)
{
    for (stream__admin_op *op = b->admin_ops; op; op = op->next)
        if (op->conn_id == conn_id)
            op->r = NULL;
}

/* ---- the ops ---------------------------------------------------------------- */

/* After the shape checks (rc, msg): the op for the request's entries, or
 * NULL once r was answered with the error. */
static stream__admin_op *admin_op_open(stream__conn *c, stream__req *r, uint64_t id,
                                       admin_kind kind, const msgpack_object *topics, int rc,
                                       char msg[512])
{
    stream__admin_op *op = NULL;
    if (rc == 0 && (op = admin_op_new(c, r, id, kind, topics->via.array.size)) == NULL) {
        rc = STREAM_ENOMEM;
        snprintf(msg, 512, "out of memory");
    }
    if (rc != 0)
        stream__reply_error(r, id, rc, msg);
    return op;
}

void stream__op_create_topics(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    char msg[512];
    const msgpack_object *topics, *cfg;
    bool validate_only;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "validate_only", false, &validate_only, msg, sizeof(msg));
    /* Shape first: a type error anywhere fails the request before any topic
     * is created. */
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        int64_t parts, rf;
        rc = create_entry(topics, i, &p, &len, &parts, &rf, &cfg, msg, sizeof(msg));
    }
    stream__admin_op *op = admin_op_open(c, r, id, ADMIN_CREATE, topics, rc, msg);
    if (op == NULL)
        return;
    for (uint32_t i = 0; i < op->n; i++) {
        const char *p;
        size_t len;
        int64_t parts, rf;
        admin_entry *e = &op->e[i];
        create_entry(topics, i, &p, &len, &parts, &rf, &cfg, NULL, 0);
        e->err = keep_raw(e, p, len);
        if (e->err == 0)
            e->err = create_begin(c->broker, topics, i, validate_only, e);
    }
    admin_start(op);
}

void stream__op_delete_topics(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    char msg[512];
    const msgpack_object *topics;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(topics, i, "topics", &p, &len, msg, sizeof(msg));
    }
    stream__admin_op *op = admin_op_open(c, r, id, ADMIN_DELETE, topics, rc, msg);
    if (op == NULL)
        return;
    for (uint32_t i = 0; i < op->n; i++) {
        const char *p;
        size_t len;
        admin_entry *e = &op->e[i];
        stream_elem_str(topics, i, "topics", &p, &len, NULL, 0);
        e->err = keep_raw(e, p, len);
        if (e->err == 0)
            e->err = delete_begin(c->broker, p, len, e->name, &e->job, e->msg, sizeof(e->msg));
    }
    admin_start(op);
}

/* Checks topic i of a create_partitions and, unless validate_only, begins
 * adding its partitions (e->job). Returns 0 or the topic's error with
 * e->msg. */
static int grow_begin(stream_broker *b, const msgpack_object *topics, uint32_t i,
                      bool validate_only, admin_entry *e)
{
    const char *p;
    size_t len;
    int64_t count;
    stream_grow_entry(topics, i, &p, &len, &count, NULL, 0);
    stream_topic *t = NULL;
    if (stream_topic_name_check(p, len, NULL, 0) == 0) {
        memcpy(e->name, p, len);
        e->name[len] = '\0';
        t = stream_store_topic(b->store, e->name);
    }
    if (t == NULL) {
        snprintf(e->msg, sizeof(e->msg), "unknown topic '%.*s'", (int)(len > 255 ? 255 : len), p);
        return STREAM_ENOTOPIC;
    }
    if (t->internal) {
        snprintf(e->msg, sizeof(e->msg),
                 "topic '%s' is internal: its partition count is the broker's", e->name);
        return STREAM_EBADNAME;
    }
    if (named_twice(topics, i)) {
        snprintf(e->msg, sizeof(e->msg), "topic '%s' is named twice in the request", e->name);
        return STREAM_EINVAL;
    }
    int rc = stream_grow_count_check(e->name, t->partition_count, count, e->msg, sizeof(e->msg));
    if (rc != 0)
        return rc;
    e->old_count = t->partition_count;
    e->partitions = (int32_t)count;
    if (validate_only)
        return 0;
    return stream_store_add_partitions_begin(b->store, e->name, (int32_t)count, &e->job, e->msg,
                                             sizeof(e->msg));
}

void stream__op_create_partitions(stream__conn *c, stream__req *r, uint64_t id,
                                  const msgpack_object *m)
{
    char msg[512];
    const msgpack_object *topics;
    bool validate_only;
    int rc = stream_grow_request(m, &topics, &validate_only, msg, sizeof(msg));
    stream__admin_op *op = admin_op_open(c, r, id, ADMIN_GROW, topics, rc, msg);
    if (op == NULL)
        return;
    for (uint32_t i = 0; i < op->n; i++) {
        const char *p;
        size_t len;
        int64_t count;
        admin_entry *e = &op->e[i];
        stream_grow_entry(topics, i, &p, &len, &count, NULL, 0);
        e->err = keep_raw(e, p, len);
        if (e->err == 0)
            e->err = grow_begin(c->broker, topics, i, validate_only, e);
    }
    admin_start(op);
}
