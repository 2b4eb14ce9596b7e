/*
 * replica.c - the replica manager (replica.h). Not written yet: a stub
 * that keeps the interface compiling.
 */
#include <stdlib.h>

#include "replica.h"

struct stream__replica {
    stream_broker *b;
    int32_t node_id;
    stream__replica_alter_isr_fn alter_isr;
    void *alter_isr_arg;
};

int stream__replica_start(stream_broker *b, int32_t node_id, stream__replica **out, char *errbuf,
                          size_t errbuf_len)
{
    (void)errbuf;
    (void)errbuf_len;
    stream__replica *rm = calloc(1, sizeof(*rm));
    *out = rm;
    if (rm == NULL)
        return STREAM_ENOMEM;
    rm->b = b;
    rm->node_id = node_id;
    return 0;
}

void stream__replica_set_alter_isr(stream__replica *rm, stream__replica_alter_isr_fn fn, void *arg)
{
    rm->alter_isr = fn;
    rm->alter_isr_arg = arg;
}

void stream__replica_sync(stream__replica *rm, const stream__meta *md)
{
    (void)rm;
    (void)md;
}

void stream__replica_stop(stream__replica *rm)
{
    (void)rm;
}

void stream__replica_free(stream__replica *rm)
{
    free(rm);
}

void stream__replica_op_offset_for_epoch(stream__replica *rm, stream__req *r, uint64_t id,
                                         const msgpack_object *m)
{
    (void)rm;
    (void)m;
    stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "not written yet");
}
