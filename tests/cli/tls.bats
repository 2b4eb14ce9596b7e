#!/usr/bin/env bats
# TLS (issue 16): a real broker with --tls-cert/--tls-key and certificates
# made here with the openssl command (a CA, a server certificate for
# localhost and 127.0.0.1, a client certificate, and bad ones: another CA's,
# an expired one, one for another host). stream-pub, stream-sub,
# stream-topics, stream-shell, stream-proc and stream-top over TLS; client certificates required;
# every failure (wrong CA, expired, wrong host, no client certificate,
# plain text to the TLS port, TLS to a plain port) is a clear error and no
# record is served; SIGHUP re-reads the certificate while a consumer stays
# connected; kcat and confluent-kafka over SSL to the Kafka listener; the
# safe defaults (loopback only; a non-loopback listener needs TLS or
# --insecure); a 3-broker cluster replicating over TLS with client
# certificates required. About 20 s under ASan.

bats_require_minimum_version 1.5.0

load helpers

# One set of certificates for the whole file (openssl takes ~50 ms each).
setup_file() {
    local d=$BATS_FILE_TMPDIR/pki
    mkdir -p "$d"
    cd "$d"
    mkcert() { # NAME CA DAYS SUBJECT [SAN]
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$1.key" -out "$1.csr" -subj "$4" 2>/dev/null
        if [ -n "${5:-}" ]; then printf 'subjectAltName=%s\n' "$5" >"$1.ext"; else : >"$1.ext"; fi
        openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
            -out "$1.pem" -days "$3" -extfile "$1.ext" 2>/dev/null
    }
    for ca in ca otherca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout $ca.key -out $ca.pem -days 2 -subj "/CN=test $ca" 2>/dev/null
    done
    mkcert server ca 2 /CN=localhost DNS:localhost,IP:127.0.0.1
    mkcert server2 ca 2 /CN=localhost DNS:localhost,IP:127.0.0.1
    mkcert client ca 2 /CN=client1
    mkcert foreign otherca 2 /CN=localhost DNS:localhost,IP:127.0.0.1
    mkcert expired ca -1 /CN=localhost DNS:localhost,IP:127.0.0.1
    mkcert elsewhere ca 2 /CN=db.example DNS:db.example
    export PKI=$d
}

setup() {
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    stop_broker
    # The cluster test's nodes, also when it failed half way.
    if declare -F cluster_stop >/dev/null; then cluster_stop; fi
}

# start_tls [CERT] [ARGS...]: a broker serving TLS with CERT (default server).
start_tls() {
    local cert=${1:-server}
    shift || true
    start_broker --tls-cert "$PKI/$cert.pem" --tls-key "$PKI/$cert.key" "$@"
}

@test "stream-pub, stream-sub, stream-topics, stream-shell, stream-proc and stream-top over TLS" {
    start_tls
    grep -q "listening on .* (TLS)" "$BROKER_LOG"
    run stream-topics --cacert "$PKI/ca.pem" create tls-t -p 2
    assert_success
    printf 'a\nb\nc\n' | stream-pub -t tls-t --tls-cacert "$PKI/ca.pem"
    run stream-sub -t tls-t -e --tls-cacert "$PKI/ca.pem" -f '%v\n'
    assert_success
    [ "$(sort <<<"$output" | tr '\n' ' ')" = "a b c " ]
    run stream-topics --cacert "$PKI/ca.pem" describe tls-t
    assert_success
    assert_output --partial tls-t
    run stream-shell --cacert "$PKI/ca.pem" -c 'topics'
    assert_success
    assert_output --partial tls-t
    run stream-proc -t tls-t -g pg --to tls-out -e --cacert "$PKI/ca.pem" -- cat
    assert_success
    run stream-sub -t tls-out -e --tls-cacert "$PKI/ca.pem" -f '%v\n'
    assert_success
    [ "$(sort <<<"$output" | tr '\n' ' ')" = "a b c " ]
    run --separate-stderr stream-top -n 1 --json -d 0.1 --cacert "$PKI/ca.pem"
    assert_success
    jq -e '[.topics[] | select(.name == "tls-t")] | length == 1' <<<"$output"
    # By the environment alone, and by host name (the certificate names both).
    STREAM_TLS_CA=$PKI/ca.pem run stream-sub -b "localhost:${STREAM_BROKERS#*:}" -t tls-t -e -c 1
    assert_success
    [ -n "$output" ]
}

@test "a large fetch over TLS (segment bytes read and encrypted) is whole" {
    start_tls
    seq 1 20000 | stream-pub -t big --tls-cacert "$PKI/ca.pem"
    run --separate-stderr stream-sub -t big -e --tls-cacert "$PKI/ca.pem" -f '%v\n'
    assert_success
    [ "$(wc -l <<<"$output")" -eq 20000 ]
    [ "$(sort -n <<<"$output" | md5sum)" = "$(seq 1 20000 | md5sum)" ]
}

@test "client certificates required: none refused with the reason, one signed by the CA accepted" {
    start_tls server --tls-ca "$PKI/ca.pem" --tls-client-auth required
    echo secret | stream-pub -t mtls --tls-cacert "$PKI/ca.pem" --cert "$PKI/client.pem" \
        --cert-key "$PKI/client.key"
    run --separate-stderr stream-sub -t mtls -e --tls-cacert "$PKI/ca.pem"
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"certificate required"* ]]
    run --separate-stderr stream-sub -t mtls -e --tls-cacert "$PKI/ca.pem" --cert "$PKI/foreign.pem" \
        --key "$PKI/foreign.key"
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"TLS"* ]]
    run stream-sub -t mtls -e --tls-cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key"
    assert_success
    assert_output secret
    # A certificate without its key is a usage error.
    run stream-sub -t mtls -e --tls-cacert "$PKI/ca.pem" --cert "$PKI/client.pem"
    assert_failure 2
}

@test "wrong CA, expired certificate, wrong host: each a clear error, no record served" {
    start_tls
    echo secret | stream-pub -t v --tls-cacert "$PKI/ca.pem"
    run --separate-stderr stream-sub -t v -e --tls-cacert "$PKI/otherca.pem"
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"certificate verification failed"* ]]
    run --separate-stderr stream-sub -t v -e --tls # the system's CAs do not know ours
    assert_failure 1
    [[ "$stderr" == *"certificate verification failed"* ]]
    stop_broker
    start_tls expired
    run --separate-stderr stream-sub -t v -e --tls-cacert "$PKI/ca.pem"
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"certificate has expired"* ]]
    stop_broker
    start_tls elsewhere
    run --separate-stderr stream-sub -t v -e --tls-cacert "$PKI/ca.pem"
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"mismatch"* ]]
}

@test "plain text to the TLS port and TLS to a plain port: clear errors on both sides" {
    start_tls
    echo secret | stream-pub -t p --tls-cacert "$PKI/ca.pem"
    run --separate-stderr stream-sub -t p -e
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"speaks TLS on this port"*"--tls"* ]]
    run grep -c "plain text on the TLS listener" "$BROKER_LOG"
    assert_output 1
    stop_broker
    start_broker
    echo secret | stream-pub -t p
    run --separate-stderr stream-sub -t p -e --tls-cacert "$PKI/ca.pem"
    assert_failure 1
    [ -z "$output" ]
    [[ "$stderr" == *"TLS"*"plain text"* ]]
    grep -q "TLS handshake on a plain-text listener" "$BROKER_LOG"
}

@test "a bad certificate or key file stops the broker at start, naming the file; tls.* in a config file" {
    run stream-broker -l 127.0.0.1:0 -d data --tls-cert "$PKI/server.pem" --tls-key "$PKI/client.key"
    assert_failure 1
    assert_output --partial client.key
    assert_output --partial "mismatch"
    run stream-broker -l 127.0.0.1:0 -d data --tls-cert nosuch.pem --tls-key "$PKI/server.key"
    assert_failure 1
    assert_output --partial nosuch.pem
    run stream-broker -l 127.0.0.1:0 -d data --tls-client-auth required --tls-cert \
        "$PKI/server.pem" --tls-key "$PKI/server.key"
    assert_failure 1
    assert_output --partial -- --tls-ca
    run stream-broker -l 127.0.0.1:0 -d data --tls-client-auth bogus
    assert_failure 2
    # The same settings from a config file.
    printf 'tls.cert=%s\ntls.key=%s\n' "$PKI/server.pem" "$PKI/server.key" >b.conf
    start_broker --config b.conf
    grep -q "listening on .* (TLS)" "$BROKER_LOG"
    run stream-topics --cacert "$PKI/ca.pem" list
    assert_success
}

@test "SIGHUP re-reads the certificate; a consumer connected before keeps reading" {
    cp "$PKI/server.pem" cert.pem
    cp "$PKI/server.key" key.pem
    start_broker --tls-cert "$PWD/cert.pem" --tls-key "$PWD/key.pem"
    echo one | stream-pub -t hup --tls-cacert "$PKI/ca.pem"
    stream-sub -t hup --tls-cacert "$PKI/ca.pem" -f '%v\n' >sub.out 2>sub.err 3>&- &
    local sub=$!
    local i
    for ((i = 0; i < 200; i++)); do grep -q one sub.out 2>/dev/null && break; sleep 0.05; done
    grep -q one sub.out
    local port=${STREAM_BROKERS#*:}
    serial() {
        openssl s_client -connect "127.0.0.1:$port" -CAfile "$PKI/ca.pem" </dev/null 2>/dev/null |
            openssl x509 -noout -serial
    }
    local before
    before=$(serial)
    [ "$before" = "$(openssl x509 -in "$PKI/server.pem" -noout -serial)" ]
    cp "$PKI/server2.pem" cert.pem
    cp "$PKI/server2.key" key.pem
    kill -HUP "$BROKER_PID"
    for ((i = 0; i < 200; i++)); do grep -q "SIGHUP: TLS certificate and key re-read" "$BROKER_LOG" && break; sleep 0.05; done
    grep -q "SIGHUP: TLS certificate and key re-read" "$BROKER_LOG"
    [ "$(serial)" = "$(openssl x509 -in "$PKI/server2.pem" -noout -serial)" ]
    # The old connection was not dropped: it gets what is produced now.
    echo two | stream-pub -t hup --tls-cacert "$PKI/ca.pem"
    for ((i = 0; i < 200; i++)); do grep -q two sub.out && break; sleep 0.05; done
    kill "$sub"
    wait "$sub" || true
    [ "$(cat sub.out)" = "$(printf 'one\ntwo')" ]
    # A file that no longer loads keeps the old certificate, and says so.
    echo garbage >cert.pem
    kill -HUP "$BROKER_PID"
    for ((i = 0; i < 200; i++)); do grep -q "keeping the old TLS certificate" "$BROKER_LOG" && break; sleep 0.05; done
    grep -q "keeping the old TLS certificate" "$BROKER_LOG"
    run stream-sub -t hup -e --tls-cacert "$PKI/ca.pem" -f '%v\n'
    assert_success
    assert_output "$(printf 'one\ntwo')"
}

@test "kcat and confluent-kafka over SSL to the Kafka listener" {
    start_tls server --kafka-listen 127.0.0.1:0
    local kafka
    kafka=$(sed -n 's/.*kafka listener on \([0-9.]*:[0-9]*\).*/\1/p' "$BROKER_LOG" | tail -1)
    seq 1 100 | timeout 20 kcat -P -q -b "$kafka" -t ks -X security.protocol=ssl \
        -X ssl.ca.location="$PKI/ca.pem"
    run timeout 20 kcat -C -q -e -b "$kafka" -t ks -X security.protocol=ssl \
        -X ssl.ca.location="$PKI/ca.pem"
    assert_success
    [ "$(wc -l <<<"$output")" -eq 100 ]
    run stream-sub -t ks -e -c 1 --tls-cacert "$PKI/ca.pem" -f '%v\n'
    assert_output 1
    # Plain Kafka clients get nothing.
    run timeout 20 kcat -C -q -e -m 3 -b "$kafka" -t ks
    assert_failure
    refute_line 1
    run timeout 60 /usr/bin/python3 - "$kafka" "$PKI/ca.pem" <<'EOF'
import sys
from confluent_kafka import Consumer, Producer
conf = {"bootstrap.servers": sys.argv[1], "security.protocol": "SSL", "ssl.ca.location": sys.argv[2]}
p = Producer(conf)
for i in range(50):
    p.produce("ck", value=b"v%d" % i)
assert p.flush(20) == 0
c = Consumer(dict(conf, **{"group.id": "g", "auto.offset.reset": "earliest"}))
c.subscribe(["ck"])
got = []
while len(got) < 50:
    m = c.poll(10)
    assert m is not None, "timed out after %d records" % len(got)
    assert m.error() is None, m.error()
    got.append(m.value())
c.close()
assert sorted(got) == sorted(b"v%d" % i for i in range(50))
print("ok")
EOF
    assert_success
    assert_output ok
}

@test "safe defaults: loopback unless asked; non-loopback needs TLS or --insecure" {
    start_broker
    [[ "$STREAM_BROKERS" == 127.0.0.1:* ]]
    stop_broker
    run stream-broker -l 0.0.0.0:0 -d data
    assert_failure 1
    assert_output --partial "refusing to serve plain text on 0.0.0.0"
    assert_output --partial "--tls-cert"
    assert_output --partial "--insecure"
    [ ! -e data/.lock ] || true
    run stream-broker -l 127.0.0.1:0 --kafka-listen 0.0.0.0:0 -d data
    assert_failure 1
    assert_output --partial "kafka.listen"
    start_broker --listen 0.0.0.0:0 --insecure
    stream-topics -b "127.0.0.1:${STREAM_BROKERS##*:}" list >/dev/null
    stop_broker
    start_tls server --listen 0.0.0.0:0
    run stream-topics -b "127.0.0.1:${STREAM_BROKERS##*:}" --cacert "$PKI/ca.pem" list
    assert_success
}

@test "a 3-broker cluster with TLS (client certificates required) between brokers and to clients" {
    load cluster_lib
    export STREAM_TLS_CA=$PKI/ca.pem STREAM_TLS_CERT=$PKI/client.pem STREAM_TLS_KEY=$PKI/client.key
    cluster_start 3 --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" \
        --tls-ca "$PKI/ca.pem" --tls-client-auth required
    stream-topics create rt -p 1 -r 3
    seq 1 2000 | stream-pub -t rt --acks all
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(isr_of rt 0)" = "1,2,3" ] && break
        sleep 0.1
    done
    [ "$(isr_of rt 0)" = "1,2,3" ]
    # Heartbeats flow over the TLS links: 3 s later (3 session timeouts) no
    # broker was fenced.
    sleep 3
    run stream-topics cluster --json
    assert_success
    [ "$(jq '[.brokers[] | select(.fenced)] | length' <<<"$output")" = 0 ]
    run grep -h "fencing broker" "$CLUSTER_DIR"/n1/log "$CLUSTER_DIR"/n2/log "$CLUSTER_DIR"/n3/log
    assert_failure 1
    # Each broker holds the records: read them from each alone.
    local k
    for k in 1 2 3; do
        run stream-sub -b "$(node_addr "$k")" -t rt -e -f '%v\n'
        assert_success
        [ "$(wc -l <<<"$output")" -eq 2000 ]
    done
    # Without a client certificate nothing is served.
    STREAM_TLS_CERT= STREAM_TLS_KEY= run --separate-stderr stream-sub -b "$(node_addr 1)" -t rt -e
    assert_failure 1
    [ -z "$output" ]
    cluster_stop
}
