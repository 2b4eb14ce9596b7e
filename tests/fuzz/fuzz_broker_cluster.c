/*
 * fuzz_broker_cluster.c - fuzz_broker.c against a broker that is a cluster of
 * one voter (--node-id 1 --cluster 1@127.0.0.1:PORT): the decoders of the
 * cluster's ops (fetch with replica_id, offset_for_leader_epoch,
 * broker_heartbeat, alter_isr, register_broker, find_coordinator,
 * fetch_metadata, and the
 * admin ops answered through the metadata quorum) on a client's bytes.
 * Everything else is fuzz_broker.c's.
 */
#define FUZZ_BROKER_CLUSTER 1
/* One broker for the whole run: a stopped cluster broker's quorum is not
 * restarted in the same process (its state stays bounded by the run's
 * length: 10 s in make check). */
#define RESTART_EVERY 100000000
#include "fuzz_broker.c"
