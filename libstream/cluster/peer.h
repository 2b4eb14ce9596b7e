/*
 * peer.h - a broker's connection to another broker's client port, for the
 * requests brokers send each other (a follower's replica fetches and
 * offset_for_leader_epoch). The native protocol as a client speaks it:
 * hello (version STREAM_PROTOCOL_VERSION) first, then pipelined requests,
 * each answered once through its callback, in order.
 *
 * It connects on the first request and after a failure on the next one:
 * requests made while connecting wait for the connection. A failure (refused,
 * reset, a frame that does not parse) answers every outstanding request
 * with the error and closes; the owner decides when to ask again.
 *
 * On the loop thread; callbacks run from the loop, never from inside a call
 * of this interface, except stream__peer_free which runs none.
 */
#ifndef STREAM_CLUSTER_PEER_H
#define STREAM_CLUSTER_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker/host.h"
#include "stream/proto.h"

typedef struct stream__peer stream__peer;

/* The answer to one request: err is 0 and resp its map (borrowed for the
 * call) when an answer came (the answer's own err is in resp), or a
 * transport error (ECONNREFUSED, ECONNRESET, EPROTO, ECLOSED) with resp
 * NULL. */
typedef void (*stream__peer_cb)(void *arg, int err, const msgpack_object *resp);

/* A peer at host:port (an IP literal as registered); name is what hello
 * says; tls (borrowed, outliving the peer): speak TLS, the other broker's
 * certificate naming host (NULL: plain text). NULL without memory. A failed
 * handshake fails the requests with STREAM_ETLS. */
stream__peer *stream__peer_new(uv_loop_t *loop, const char *host, uint16_t port, const char *name,
                               stream_tls_ctx *tls);
/* True when the peer is the one at host:port. */
bool stream__peer_is(const stream__peer *p, const char *host, uint16_t port);
/* Starts a request of op with nfields fields: pack them with the returned
 * packer, then call _send. */
msgpack_packer *stream__peer_begin(stream__peer *p, stream_op op, size_t nfields);
/* Queues the request begun last; cb gets its answer. 0 or STREAM_ENOMEM
 * (cb is then never called). */
int stream__peer_send(stream__peer *p, stream__peer_cb cb, void *arg);
/* Requests sent and not yet answered (or waiting to be sent). */
size_t stream__peer_outstanding(const stream__peer *p);
/* Closes the connection and frees the peer once its handle is closed; no
 * callback runs any more. NULL is a no-op. */
void stream__peer_free(stream__peer *p);

#endif /* STREAM_CLUSTER_PEER_H */
