/*
 * kafka_error.h - Kafka's error codes, as its wire protocol numbers them
 * (org.apache.kafka.common.protocol.Errors): the one table of them, for
 * the Kafka listener (libstream/kafka/) and the group coordinator's
 * classic groups (libstream/coord/classic.h), which answer with them. It
 * sits in proto/, below both. Not installed; prefix STREAM__KAFKA_.
 *
 * One X-macro list: a code is added here once, under Kafka's own name.
 */
#ifndef STREAM_KAFKA_ERROR_H
#define STREAM_KAFKA_ERROR_H

#define STREAM__KAFKA_ERROR_MAP(XX)                                                                \
    XX(UNKNOWN_SERVER_ERROR, -1)                                                                   \
    XX(NONE, 0)                                                                                    \
    XX(OFFSET_OUT_OF_RANGE, 1)                                                                     \
    XX(CORRUPT_MESSAGE, 2)                                                                         \
    XX(UNKNOWN_TOPIC_OR_PARTITION, 3)                                                              \
    XX(LEADER_NOT_AVAILABLE, 5)                                                                    \
    XX(NOT_LEADER_OR_FOLLOWER, 6)                                                                  \
    XX(REQUEST_TIMED_OUT, 7)                                                                       \
    XX(MESSAGE_TOO_LARGE, 10)                                                                      \
    XX(OFFSET_METADATA_TOO_LARGE, 12)                                                              \
    XX(COORDINATOR_LOAD_IN_PROGRESS, 14)                                                           \
    XX(COORDINATOR_NOT_AVAILABLE, 15)                                                              \
    XX(NOT_COORDINATOR, 16)                                                                        \
    XX(INVALID_TOPIC_EXCEPTION, 17)                                                                \
    XX(NOT_ENOUGH_REPLICAS, 19)                                                                    \
    XX(INVALID_REQUIRED_ACKS, 21)                                                                  \
    XX(ILLEGAL_GENERATION, 22)                                                                     \
    XX(INCONSISTENT_GROUP_PROTOCOL, 23)                                                            \
    XX(INVALID_GROUP_ID, 24)                                                                       \
    XX(UNKNOWN_MEMBER_ID, 25)                                                                      \
    XX(INVALID_SESSION_TIMEOUT, 26)                                                                \
    XX(REBALANCE_IN_PROGRESS, 27)                                                                  \
    XX(UNSUPPORTED_VERSION, 35)                                                                    \
    XX(TOPIC_ALREADY_EXISTS, 36)                                                                   \
    XX(INVALID_PARTITIONS, 37)                                                                     \
    XX(INVALID_REPLICATION_FACTOR, 38)                                                             \
    XX(INVALID_REPLICA_ASSIGNMENT, 39)                                                             \
    XX(INVALID_CONFIG, 40)                                                                         \
    XX(NOT_CONTROLLER, 41)                                                                         \
    XX(INVALID_REQUEST, 42)                                                                        \
    XX(UNSUPPORTED_FOR_MESSAGE_FORMAT, 43)                                                         \
    XX(POLICY_VIOLATION, 44)                                                                       \
    XX(OUT_OF_ORDER_SEQUENCE_NUMBER, 45)                                                           \
    XX(DUPLICATE_SEQUENCE_NUMBER, 46)                                                              \
    XX(INVALID_PRODUCER_EPOCH, 47)                                                                 \
    XX(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 53)                                                  \
    XX(KAFKA_STORAGE_ERROR, 56)                                                                    \
    XX(UNKNOWN_PRODUCER_ID, 59)                                                                    \
    XX(NON_EMPTY_GROUP, 68)                                                                        \
    XX(GROUP_ID_NOT_FOUND, 69)                                                                     \
    XX(FENCED_LEADER_EPOCH, 74)                                                                    \
    XX(UNKNOWN_LEADER_EPOCH, 75)                                                                   \
    XX(MEMBER_ID_REQUIRED, 79)                                                                     \
    XX(FENCED_INSTANCE_ID, 82)                                                                     \
    XX(INVALID_RECORD, 87)

/* STREAM__KAFKA_<name>: Kafka's code (an int16 on the wire). */
enum {
#define STREAM__KAFKA_ERROR_ENUM(name, code) STREAM__KAFKA_##name = code,
    STREAM__KAFKA_ERROR_MAP(STREAM__KAFKA_ERROR_ENUM)
#undef STREAM__KAFKA_ERROR_ENUM
};

#endif /* STREAM_KAFKA_ERROR_H */
