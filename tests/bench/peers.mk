# peers.mk - `make bench-peers`: stream side by side with Redis Streams and
# NATS JetStream, and against the machine's disk and loopback limits
# (issue 6; tests/bench/peers.sh says how). Included from the Makefile. The
# peers are bench-only dependencies the script installs itself; `make check`
# never needs them. Sizes come from the environment (PEERS_RECORDS, ...).
.PHONY: bench-peers
bench-peers: all $(B)/bench/disk_writer
	@tests/bench/peers.sh $(B)
