/*
 * kafka_cluster.c - the brokers and the controller the Kafka listener
 * shows (kafka_cluster.h), from the controller's copy of the cluster
 * metadata.
 */
#include <stdlib.h>

#include "cluster/controller.h"
#include "kafka_cluster.h"

const stream__meta *stream__kafka_metadata(stream_broker *b)
{
    return stream__host_clustered(b) ? stream__controller_metadata(b) : NULL;
}

int32_t stream__kafka_controller_id(stream_broker *b)
{
    if (stream__kafka_metadata(b) == NULL)
        return stream__host_node_id(b);
    return stream__controller_leader_id(b);
}

int stream__kafka_nodes(stream_broker *b, const char *self_host, uint16_t self_port,
                        stream__kafka_node **out, size_t *n)
{
    const stream__meta *md = stream__kafka_metadata(b);
    size_t total = md != NULL ? stream__meta_broker_count(md) : 0;
    stream__kafka_node *v = calloc(total + 1, sizeof(*v));
    if (v == NULL)
        return STREAM_ENOMEM;
    int32_t self = stream__host_node_id(b);
    size_t k = 0;
    bool self_listed = false;
    for (size_t i = 0; i < total; i++) {
        const stream__meta_broker *mb = stream__meta_broker_at(md, i);
        if (mb->id == self) {
            /* Its own listener as bound, whatever its registration says. */
            v[k++] = (stream__kafka_node){self, self_host, self_port};
            self_listed = true;
        } else if (!mb->fenced && mb->kafka_host != NULL) {
            v[k++] = (stream__kafka_node){mb->id, mb->kafka_host, mb->kafka_port};
        }
    }
    if (!self_listed) {
        size_t at = 0;
        while (at < k && v[at].id < self)
            at++;
        for (size_t i = k; i > at; i--)
            v[i] = v[i - 1];
        v[at] = (stream__kafka_node){self, self_host, self_port};
        k++;
    }
    *out = v;
    *n = k;
    return 0;
}
