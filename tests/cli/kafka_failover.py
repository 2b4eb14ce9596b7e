#!/usr/bin/python3
"""kafka_failover.py - a confluent-kafka producer (acks=all, idempotent) and
consumer against a cluster's Kafka listeners while a partition leader is
killed (tests/cli/kafka-admin.bats). Debian's python3.

    kafka_failover.py BOOTSTRAP TOPIC N PID

Produces N records (values "0".."N-1") to TOPIC; after N/2 it sends SIGKILL
to PID (the leader). A consumer assigned every partition from the start
reads meanwhile, in its own thread. Prints:

    delivered D failed F
    consumed C lost L duplicates X

where lost counts delivered records the consumer never saw.
"""
import os
import signal
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

bootstrap, topic, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seen = []
stop = threading.Event()


def consume():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover",
                  "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    while not stop.is_set():
        for m in c.consume(500, timeout=0.2):
            if m.error() is None:
                seen.append(int(m.value()))
    c.close()


t = threading.Thread(target=consume)
t.start()
delivered, failed = set(), [0]


def report(err, msg):
    if err is None:
        delivered.add(int(msg.value()))
    else:
        failed[0] += 1


p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
              "linger.ms": 5, "message.timeout.ms": 60000,
              "topic.metadata.refresh.interval.ms": 1000})
for i in range(n):
    p.produce(topic, value=str(i).encode(), on_delivery=report)
    if i % 50 == 0:
        p.poll(0.01)
    if i == n // 2:
        p.flush(30)
        os.kill(pid, signal.SIGKILL)
p.flush(90)
print("delivered %d failed %d" % (len(delivered), failed[0]))
deadline = time.time() + 60
while time.time() < deadline and not delivered <= set(seen):
    time.sleep(0.2)
stop.set()
t.join()
print("consumed %d lost %d duplicates %d" % (len(set(seen)), len(delivered - set(seen)),
                                             len(seen) - len(set(seen))))
