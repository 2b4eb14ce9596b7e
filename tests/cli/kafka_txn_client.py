#!/usr/bin/env python3
"""kafka_txn_client.py - a confluent-kafka (librdkafka) transactional
producer against the Kafka listener, for tests/cli/kafka.bats.

    kafka_txn_client.py HOST:PORT TOPIC

init_transactions() is called with no timeout, as most applications call
it: stream refuses transactions, and the refusal must end the call at once
with an error that says what happened, not leave it retrying for ever.
Prints one line: "init failed in Ns: CODE fatal=B: MESSAGE", then tries to
produce one record (which a fatal error forbids) and prints "produce:
REFUSED" or "produce: accepted".
"""
import sys
import time

from confluent_kafka import KafkaException, Producer

p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": "txn-test",
              "log_level": 0})
t0 = time.time()
try:
    p.init_transactions()
    print("init succeeded")
except KafkaException as e:
    err = e.args[0]
    print("init failed in %ds: %s fatal=%s: %s"
          % (int(time.time() - t0), err.name(), err.fatal(), err.str()))
try:
    p.produce(sys.argv[2], b"must not be stored")
    p.flush(5)
    print("produce: accepted")
except (KafkaException, BufferError) as e:
    print("produce: refused")
