#!/usr/bin/python3
"""kafka_admin.py - Kafka's own admin clients against stream-broker's Kafka
listener, for tests/cli/kafka-admin.bats. Run with Debian's python3 (where
python3-confluent-kafka and python3-kafka live).

    kafka_admin.py HOST:PORT CASE [ARGS]

Each case prints one line per result, which the test compares:

    create TOPIC PARTS RF [K=V...]  AdminClient.create_topics: "TOPIC ok" or
                                    "TOPIC ERROR_NAME"
    describe TOPIC KEY...           AdminClient.describe_configs: "KEY=VALUE source=S"
    describe-broker ID KEY...       the same for broker ID: "KEY=VALUE source=S ro=R"
    alter TOPIC K=V...              AdminClient.alter_configs (replaces the set)
    partitions TOPIC N [validate]   AdminClient.create_partitions (validate_only)
    partitions-assign TOPIC N       the same with a manual replica assignment
    read TOPIC PARTITION N          a consumer reads N records of the partition from
                                    its start: "PARTITION OFFSET VALUE" each
    group-grows TOPIC N             a consumer group member (metadata.max.age.ms
                                    1000) is assigned every partition; the topic
                                    grows to N (AdminClient); the member is
                                    assigned the new ones too and reads a record
                                    produced to the last: "assigned A", "assigned
                                    N", "read PARTITION VALUE"
    kp-partitions TOPIC N           kafka-python KafkaAdminClient.create_partitions:
                                    "TOPIC ERRNO"
    delete TOPIC...                 AdminClient.delete_topics
    times TOPIC PARTITION TS        a consumer's offsets_for_times: "offset N"
    produce-ts TOPIC PARTITION TS N  N records with timestamps TS, TS+1000, ...
    kp-create TOPIC PARTS           kafka-python KafkaAdminClient.create_topics
    kp-delete TOPIC                 kafka-python KafkaAdminClient.delete_topics
    kp-cluster                      kafka-python describe_cluster: "brokers N controller C"
"""
import sys
import time

SOURCES = {1: "topic", 4: "broker", 5: "default"}


def futures(fs):
    for name, f in sorted(fs.items(), key=lambda kv: str(kv[0])):
        try:
            f.result()
            print("%s ok" % name)
        except Exception as e:  # KafkaException carrying a KafkaError
            err = e.args[0]
            print("%s %s" % (name, err.name() if hasattr(err, "name") else err))


def confluent(bootstrap, case, args):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    if case == "create":
        cfg = dict(kv.split("=", 1) for kv in args[3:])
        futures(a.create_topics([NewTopic(args[0], int(args[1]), int(args[2]), config=cfg)],
                                request_timeout=15))
    elif case in ("describe", "describe-broker"):
        kind = "topic" if case == "describe" else "broker"
        for _, f in a.describe_configs([ConfigResource(kind, args[0])]).items():
            c = f.result()
            for key in args[1:]:
                e = c[key]
                print("%s=%s source=%s ro=%s" % (key, e.value, SOURCES.get(e.source, e.source),
                                                 e.is_read_only))
    elif case == "alter":
        cfg = dict(kv.split("=", 1) for kv in args[1:])
        futures(a.alter_configs([ConfigResource("topic", args[0], set_config=cfg)]))
    elif case == "partitions":
        futures(a.create_partitions([NewPartitions(args[0], int(args[1]))],
                                    validate_only=args[2:] == ["validate"], request_timeout=15))
    elif case == "partitions-assign":
        n = int(args[1])
        futures(a.create_partitions([NewPartitions(args[0], n, [[0]] * (n - 1))],
                                    request_timeout=15))
    elif case == "read":
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                      "enable.auto.commit": False})
        c.assign([TopicPartition(args[0], int(args[1]), 0)])
        got = 0
        deadline = time.time() + 20
        while got < int(args[2]) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            print("%d %d %s" % (m.partition(), m.offset(), m.value().decode()))
            got += 1
        c.close()
    elif case == "group-grows":
        group_grows(bootstrap, a, args[0], int(args[1]))
    elif case == "delete":
        futures(a.delete_topics(args, request_timeout=15))
    elif case == "produce-ts":
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        ts = int(args[2])
        for i in range(int(args[3])):
            p.produce(args[0], value=b"v%d" % i, partition=int(args[1]), timestamp=ts + 1000 * i)
        print("unsent %d" % p.flush(15))
    elif case == "times":
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "times"})
        tp = c.offsets_for_times([TopicPartition(args[0], int(args[1]), int(args[2]))], timeout=10)
        print("offset %d" % tp[0].offset)
        c.close()


def group_grows(bootstrap, admin, topic, count):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import NewPartitions
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "grows",
                  "auto.offset.reset": "earliest", "metadata.max.age.ms": 1000,
                  "topic.metadata.refresh.interval.ms": 500})
    c.subscribe([topic])
    deadline = time.time() + 30

    def wait_assigned(n):
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                return m
            if len(c.assignment()) == n:
                return None
        return None

    before = 0
    while time.time() < deadline and before == 0:
        c.poll(0.2)
        before = len(c.assignment())
    print("assigned %d" % before)
    futures_quiet(admin.create_partitions([NewPartitions(topic, count)], request_timeout=15))
    wait_assigned(count)
    print("assigned %d" % len(c.assignment()))
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, value=b"in-the-new-one", partition=count - 1)
    p.flush(15)
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            print("read %d %s" % (m.partition(), m.value().decode()))
            break
    c.close()


def futures_quiet(fs):
    for f in fs.values():
        f.result()


def kafka_python(bootstrap, case, args):
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    if case == "kp-create":
        try:
            r = a.create_topics([NewTopic(args[0], int(args[1]), 1)])
            print(" ".join("%s %d" % (t, e) for t, e, *_ in r.topic_errors))
        except KafkaError as e:  # kafka-python raises the first topic's error
            print("%s %d" % (args[0], e.errno))
    elif case == "kp-delete":
        r = a.delete_topics(args)
        print(" ".join("%s %d" % (t, e) for t, e in r.topic_error_codes))
    elif case == "kp-partitions":
        from kafka.admin import NewPartitions
        try:
            r = a.create_partitions({args[0]: NewPartitions(int(args[1]))})
            print(" ".join("%s %d" % (t, e) for t, e, *_ in r.topic_errors))
        except KafkaError as e:
            print("%s %d" % (args[0], e.errno))
    elif case == "kp-cluster":
        c = a.describe_cluster()
        print("brokers %d controller %d" % (len(c["brokers"]), c["controller_id"]))
    a.close()


def main():
    bootstrap, case, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if case.startswith("kp-"):
        kafka_python(bootstrap, case, args)
    else:
        confluent(bootstrap, case, args)


main()
