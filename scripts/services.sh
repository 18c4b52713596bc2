#!/usr/bin/env bash
# Local/CI services for Switchyard's integration tests, without Docker:
#   - Apache Kafka, single-node KRaft (combined broker + controller), run from its
#     Maven Central artifacts on the machine's Java;
#   - ClickHouse server from Debian's clickhouse-server package.
# Both bind to 127.0.0.1 only. See docs/SERVICES.md.
#
# Usage: scripts/services.sh up|down|restart|status [kafka|clickhouse]
#   restart: down then up (SIGTERM, data kept), waiting until healthy again
#
# Environment:
#   SWITCHYARD_SERVICES_DIR          state, data, pid files, logs   (default: <repo>/.switchyard/services)
#   SWITCHYARD_KAFKA_VERSION         Kafka release from Maven Central (default: 4.3.1)
#   SWITCHYARD_KAFKA_PORT            broker PLAINTEXT port          (default: 9092)
#   SWITCHYARD_KAFKA_CONTROLLER_PORT KRaft CONTROLLER port          (default: 9093)
#   SWITCHYARD_KAFKA_LIB_DIR         resolved Kafka jars            (default: $SWITCHYARD_SERVICES_DIR/kafka/lib)
#   SWITCHYARD_KAFKA_HEAP            broker JVM max heap            (default: 1g)
#   SWITCHYARD_KAFKA_NICE            broker scheduling niceness     (default: -10 as root, else 0)
#   SWITCHYARD_CLICKHOUSE_HTTP_PORT  ClickHouse HTTP port           (default: 8123)
#   SWITCHYARD_CLICKHOUSE_TCP_PORT   ClickHouse native TCP port     (default: 9000)
#   SWITCHYARD_CLICKHOUSE_INTERSERVER_PORT                          (default: 9009)
#   SWITCHYARD_SERVICES_TIMEOUT      seconds to wait for health     (default: 120)
#   SWITCHYARD_KAFKA_SECURITY        plaintext | sasl_ssl           (default: plaintext)
#     sasl_ssl: Kafka only, in its own SWITCHYARD_SERVICES_DIR (required, so it never touches
#     the default broker): the client listener on SWITCHYARD_KAFKA_PORT is SASL_SSL with
#     SCRAM-SHA-256 (the controller listener stays PLAINTEXT on loopback). A CA and a broker
#     certificate (SAN 127.0.0.1, localhost) are generated with openssl and keytool into
#     <dir>/kafka/tls/ (ca.pem is what clients trust); the SCRAM user is created when the
#     storage is formatted:
#   SWITCHYARD_KAFKA_SASL_USERNAME   SCRAM user                     (default: switchyard)
#   SWITCHYARD_KAFKA_SASL_PASSWORD   its password (default: random, kept in <dir>/kafka/tls/sasl-password)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="${SWITCHYARD_SERVICES_DIR:-$ROOT/.switchyard/services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"

KAFKA_VERSION="${SWITCHYARD_KAFKA_VERSION:-4.3.1}"
KAFKA_PORT="${SWITCHYARD_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SWITCHYARD_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${SWITCHYARD_KAFKA_HEAP:-1g}"
# The broker shares this machine's two cores with the services under test, and the chaos suite
# saturates both (stress-ng --cpu 2). In production the broker has machines of its own; here a
# higher scheduling priority stands in for them, so a starved broker is not mistaken for a fault
# of ours (unprioritised, its JVM sat up to 15 s at a safepoint and its own KRaft controller
# fenced it, leaving every partition without a leader; docs/RELIABILITY.md, "Known limits").
if [[ "$(id -u)" == 0 ]]; then KAFKA_NICE="${SWITCHYARD_KAFKA_NICE:--10}"; else KAFKA_NICE="${SWITCHYARD_KAFKA_NICE:-0}"; fi
KAFKA_DIR="$SERVICES_DIR/kafka"
KAFKA_LIB_DIR="${SWITCHYARD_KAFKA_LIB_DIR:-$KAFKA_DIR/lib}"
KAFKA_DATA_DIR="$KAFKA_DIR/data"
KAFKA_CONFIG="$KAFKA_DIR/server.properties"
KAFKA_LOG="$SERVICES_DIR/kafka.log"
KAFKA_PID="$SERVICES_DIR/kafka.pid"

CH_HTTP_PORT="${SWITCHYARD_CLICKHOUSE_HTTP_PORT:-8123}"
CH_TCP_PORT="${SWITCHYARD_CLICKHOUSE_TCP_PORT:-9000}"
CH_INTERSERVER_PORT="${SWITCHYARD_CLICKHOUSE_INTERSERVER_PORT:-9009}"
CH_DIR="$SERVICES_DIR/clickhouse"
CH_LOG="$SERVICES_DIR/clickhouse.log"
CH_PID="$SERVICES_DIR/clickhouse.pid"

TIMEOUT="${SWITCHYARD_SERVICES_TIMEOUT:-120}"

KAFKA_SECURITY="${SWITCHYARD_KAFKA_SECURITY:-plaintext}"
KAFKA_TLS_DIR="$KAFKA_DIR/tls"
KAFKA_SASL_USER="${SWITCHYARD_KAFKA_SASL_USERNAME:-switchyard}"

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

case "$KAFKA_SECURITY" in
  plaintext) ;;
  sasl_ssl)
    [[ -n "${SWITCHYARD_SERVICES_DIR:-}" ]] || die "SWITCHYARD_KAFKA_SECURITY=sasl_ssl needs its own SWITCHYARD_SERVICES_DIR (and ports), apart from the default broker"
    [[ "$SERVICES_DIR" != "$ROOT/.switchyard/services" ]] || die "SWITCHYARD_KAFKA_SECURITY=sasl_ssl: SWITCHYARD_SERVICES_DIR must not be the default broker's directory"
    [[ "$KAFKA_SASL_USER" =~ ^[A-Za-z0-9_.-]+$ ]] || die "SWITCHYARD_KAFKA_SASL_USERNAME must match [A-Za-z0-9_.-]+"
    ;;
  *) die "SWITCHYARD_KAFKA_SECURITY must be plaintext or sasl_ssl, got '$KAFKA_SECURITY'" ;;
esac

# --- helpers -------------------------------------------------------------------------

# pid from a pid file if that process is alive and still the expected program.
live_pid() { # <pidfile> <cmdline substring>
  local pidfile="$1" pattern="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$pattern"* ]] || return 1
  echo "$pid"
}

port_open() { # <port>
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Starts a command detached from this shell (own session, survives the caller) and
# writes its pid. The command's stdout/stderr are appended to <logfile>.
spawn() { # <pidfile> <logfile> <cwd> <cmd...>
  local pidfile="$1" logfile="$2" cwd="$3"
  shift 3
  rm -f "$pidfile"
  (cd "$cwd" && setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 9>&-)
  local i
  for i in $(seq 1 50); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.1
  done
  die "could not start: $*"
}

stop_pid() { # <name> <pidfile> <pattern> <grace seconds>
  local name="$1" pidfile="$2" pattern="$3" grace="$4" pid i
  if ! pid="$(live_pid "$pidfile" "$pattern")"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 $((grace * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: did not stop within ${grace}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

elapsed() { echo $(( $(date +%s) - $1 ))s; }

# --- Kafka ---------------------------------------------------------------------------

KAFKA_PATTERN="kafka.Kafka $KAFKA_CONFIG"

kafka_resolve() {
  # Re-resolve when the version or the pom changes.
  local stamp="$KAFKA_LIB_DIR/.switchyard-kafka-version" want
  want="$KAFKA_VERSION $(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -c1-16)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$KAFKA_LIB_DIR/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka $KAFKA_VERSION from Maven Central)"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION with Maven into $KAFKA_LIB_DIR"
  local tmp="$KAFKA_LIB_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$KAFKA_LIB_DIR")"
  local mvnlog="$KAFKA_DIR/maven.log"
  mkdir -p "$KAFKA_DIR"
  if ! mvn -q -B -U -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    rm -rf "$tmp"
    sed -e 's/\x1b\[[0-9;]*m//g' "$mvnlog" | grep -E 'ERROR|Could not' | head -n 5 >&2 || true
    die "kafka: Maven could not resolve Kafka $KAFKA_VERSION (is every artifact of that release on Maven Central?); full output in $mvnlog"
  fi
  echo "$want" >"$tmp/.switchyard-kafka-version"
  rm -rf "$KAFKA_LIB_DIR"
  mv "$tmp" "$KAFKA_LIB_DIR"
  log "kafka: $(find "$KAFKA_LIB_DIR" -name '*.jar' | wc -l) jars resolved"
}

# The broker JVM; the same command line runs the storage tool. GC pauses and safepoints go to
# kafka-gc.log (rotated), to tell a stalled broker from a stalled client.
KAFKA_JAVA=(java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  "-Xlog:gc*,safepoint:file=$SERVICES_DIR/kafka-gc.log:time,uptime:filecount=3,filesize=20m"
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties"
  -cp "$KAFKA_LIB_DIR/*")

# sasl_ssl mode: a CA, a broker key and certificate signed by it (SAN 127.0.0.1 and localhost),
# the broker's PKCS12 keystore and truststore, and the SCRAM password. Made once per services dir.
kafka_tls_material() {
  local d="$KAFKA_TLS_DIR"
  command -v openssl >/dev/null || die "kafka: openssl not found (needed for SWITCHYARD_KAFKA_SECURITY=sasl_ssl)"
  command -v keytool >/dev/null || die "kafka: keytool not found (needed for SWITCHYARD_KAFKA_SECURITY=sasl_ssl; it comes with the JDK)"
  mkdir -p "$d"
  chmod 700 "$d"
  if [[ -n "${SWITCHYARD_KAFKA_SASL_PASSWORD:-}" ]]; then
    printf '%s\n' "$SWITCHYARD_KAFKA_SASL_PASSWORD" >"$d/sasl-password"
  elif [[ ! -s "$d/sasl-password" ]]; then
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$d/sasl-password"
  fi
  chmod 600 "$d/sasl-password"
  [[ "$(head -n 1 "$d/sasl-password")" =~ ^[^],=\"[:space:]]+$ ]] || die "SWITCHYARD_KAFKA_SASL_PASSWORD must not contain whitespace, ',', '=', ']' or '\"'"
  [[ -s "$d/broker.p12" && -s "$d/truststore.p12" && -s "$d/ca.pem" && -s "$d/store-password" ]] && return 0
  log "kafka: generating a CA and a broker certificate in $d"
  local tlslog="$d/openssl.log" storepass
  storepass="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=switchyard test CA" \
      -keyout "$d/ca.key" -out "$d/ca.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/broker.key" -out "$d/broker.csr" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/broker.ext" &&
    openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
      -extfile "$d/broker.ext" -out "$d/broker.pem" &&
    openssl pkcs12 -export -name broker -in "$d/broker.pem" -inkey "$d/broker.key" -certfile "$d/ca.pem" \
      -passout "pass:$storepass" -out "$d/broker.p12.tmp" &&
    rm -f "$d/truststore.p12" &&
    keytool -importcert -noprompt -alias ca -file "$d/ca.pem" -keystore "$d/truststore.p12" \
      -storetype PKCS12 -storepass "$storepass"
  } >"$tlslog" 2>&1 || { tail -n 20 "$tlslog" >&2; die "kafka: generating TLS material failed (see $tlslog)"; }
  printf '%s\n' "$storepass" >"$d/store-password"
  chmod 600 "$d/store-password" "$d/ca.key" "$d/broker.key"
  mv "$d/broker.p12.tmp" "$d/broker.p12"
}

kafka_write_config() {
  mkdir -p "$KAFKA_DIR"
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    kafka_write_config_sasl_ssl
    return
  fi
  cat >"$KAFKA_CONFIG" <<EOF
# Generated by scripts/services.sh; edits are overwritten on every 'up'.
# Single-node KRaft: one process is both broker and (standalone) controller.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$KAFKA_DATA_DIR

# One broker: every internal topic has replication factor 1.
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions than the defaults (50): faster first group join on a small box.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

# Tests create their topics explicitly.
auto.create.topics.enable=false
delete.topic.enable=true
# Consumer groups form immediately. Switchyard's consumers default their session timeout to
# this minimum (lib/log/kafka/adapter.ts): 3 s instead of Apache Kafka's 6 s, so a killed
# member's partitions move within ~3.5 s in local and CI runs (docs/SERVICES.md).
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=3000
# One node is both controller and broker: fencing the only broker never helps, it takes every
# partition's leader away. Its KRaft session (default 9 s) is long enough to ride out a stall.
broker.session.timeout.ms=30000

num.network.threads=2
num.io.threads=4
log.retention.hours=168
EOF
}

# The same broker with its client (and inter-broker) listener SASL_SSL, SCRAM-SHA-256. The
# broker authenticates to itself as the SCRAM user; the controller listener stays PLAINTEXT.
kafka_write_config_sasl_ssl() {
  local storepass user pass
  storepass="$(head -n 1 "$KAFKA_TLS_DIR/store-password")"
  user="$KAFKA_SASL_USER"
  pass="$(head -n 1 "$KAFKA_TLS_DIR/sasl-password")"
  (umask 077 && cat >"$KAFKA_CONFIG" <<EOF
# Generated by scripts/services.sh (SWITCHYARD_KAFKA_SECURITY=sasl_ssl); edits are overwritten on every 'up'.
process.roles=broker,controller
node.id=1
listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$KAFKA_DATA_DIR

sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$user" password="$pass";
ssl.keystore.type=PKCS12
ssl.keystore.location=$KAFKA_TLS_DIR/broker.p12
ssl.keystore.password=$storepass
ssl.key.password=$storepass
ssl.truststore.type=PKCS12
ssl.truststore.location=$KAFKA_TLS_DIR/truststore.p12
ssl.truststore.password=$storepass
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https

num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=3000
# One node is both controller and broker: fencing the only broker never helps, it takes every
# partition's leader away. Its KRaft session (default 9 s) is long enough to ride out a stall.
broker.session.timeout.ms=30000
num.network.threads=2
num.io.threads=4
log.retention.hours=168
EOF
  )
}

kafka_format() {
  # Storage is formatted once per (version, controller port); anything else is wiped:
  # this is disposable test data.
  local fingerprint="kafka=$KAFKA_VERSION controller=127.0.0.1:$KAFKA_CONTROLLER_PORT"
  local scram=()
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    # The SCRAM credential lives in the cluster metadata written here: a new password re-formats.
    fingerprint="$fingerprint security=sasl_ssl user=$KAFKA_SASL_USER password=$(sha256sum "$KAFKA_TLS_DIR/sasl-password" | cut -c1-16)"
    scram=(--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$(head -n 1 "$KAFKA_TLS_DIR/sasl-password")]")
  fi
  local stamp="$KAFKA_DIR/data.fingerprint"
  if [[ -f "$KAFKA_DATA_DIR/meta.properties" && -f "$stamp" ]]; then
    if [[ "$(cat "$stamp")" == "$fingerprint" ]]; then
      return 0
    fi
    log "kafka: storage was formatted for '$(cat "$stamp")', now '$fingerprint': wiping $KAFKA_DATA_DIR"
  fi
  rm -rf "$KAFKA_DATA_DIR" "$stamp"
  local cluster_id
  # 16 random bytes, base64url, as Kafka's own Uuid.randomUuid() makes them — and, like it, never
  # one starting with '-', which kafka-storage's argument parser would take for an option (1 in 64).
  cluster_id="-"
  while [[ $cluster_id == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  log "kafka: formatting KRaft storage (cluster id $cluster_id, standalone controller)"
  if ! "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --config "$KAFKA_CONFIG" \
      --cluster-id "$cluster_id" --standalone --ignore-formatted "${scram[@]}" >>"$KAFKA_LOG" 2>&1; then
    tail -n 30 "$KAFKA_LOG" >&2
    die "kafka: storage format failed (see $KAFKA_LOG)"
  fi
  echo "$fingerprint" >"$stamp"
}

# A real health check: the broker answers a metadata request. With the repo's
# node_modules present this is a kafkajs admin listTopics (the client the code uses);
# without it, the port accepts connections and the log says the server started.
kafka_healthy() {
  port_open "$KAFKA_PORT" || return 1
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    kafka_healthy_sasl_ssl
    return
  fi
  if [[ -d "$ROOT/node_modules/kafkajs" ]] && command -v node >/dev/null; then
    (cd "$ROOT" && SY_KAFKA_BROKER="127.0.0.1:$KAFKA_PORT" timeout 20 node -e '
      const { Kafka, logLevel } = require("kafkajs");
      const admin = new Kafka({ clientId: "services-health", brokers: [process.env.SY_KAFKA_BROKER],
        logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 3000 }).admin();
      admin.connect().then(() => admin.listTopics()).then(() => admin.describeCluster())
        .then((c) => admin.disconnect().then(() => process.exit(c.brokers.length > 0 ? 0 : 1)))
        .catch(() => process.exit(1));' >/dev/null 2>&1)
  else
    grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null
  fi
}

# sasl_ssl mode: the same metadata request, over TLS (trusting the generated CA) as the SCRAM user.
kafka_healthy_sasl_ssl() {
  if [[ -d "$ROOT/node_modules/kafkajs" ]] && command -v node >/dev/null; then
    (cd "$ROOT" && SY_KAFKA_BROKER="127.0.0.1:$KAFKA_PORT" SY_KAFKA_TLS_DIR="$KAFKA_TLS_DIR" SY_KAFKA_USER="$KAFKA_SASL_USER" timeout 20 node -e '
      const fs = require("node:fs");
      const { Kafka, logLevel } = require("kafkajs");
      const d = process.env.SY_KAFKA_TLS_DIR;
      const admin = new Kafka({ clientId: "services-health", brokers: [process.env.SY_KAFKA_BROKER],
        ssl: { ca: [fs.readFileSync(d + "/ca.pem", "utf8")] },
        sasl: { mechanism: "scram-sha-256", username: process.env.SY_KAFKA_USER, password: fs.readFileSync(d + "/sasl-password", "utf8").split("\n")[0] },
        logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 3000 }).admin();
      admin.connect().then(() => admin.describeCluster())
        .then((c) => admin.disconnect().then(() => process.exit(c.brokers.length > 0 ? 0 : 1)))
        .catch(() => process.exit(1));' >/dev/null 2>&1)
  else
    grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null
  fi
}

kafka_start() {
  local pid
  if pid="$(live_pid "$KAFKA_PID" "$KAFKA_PATTERN")"; then
    log "kafka: already running (pid $pid)"
    return 0
  fi
  if port_open "$KAFKA_PORT"; then
    die "kafka: port $KAFKA_PORT is in use by another process (not started by this script); stop it or set SWITCHYARD_KAFKA_PORT"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: controller port $KAFKA_CONTROLLER_PORT is in use; stop that process or set SWITCHYARD_KAFKA_CONTROLLER_PORT"
  fi
  command -v java >/dev/null || die "kafka: java not found (Kafka needs a JRE 17+)"
  kafka_resolve
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    kafka_tls_material
    log "kafka: SASL_SSL (SCRAM-SHA-256, user $KAFKA_SASL_USER) on 127.0.0.1:$KAFKA_PORT; clients trust $KAFKA_TLS_DIR/ca.pem"
  fi
  kafka_write_config
  kafka_format
  log "kafka: starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT), log $KAFKA_LOG"
  printf '\n==== %s services.sh: starting Kafka %s ====\n' "$(date -u +%FT%TZ)" "$KAFKA_VERSION" >>"$KAFKA_LOG"
  spawn "$KAFKA_PID" "$KAFKA_LOG" "$KAFKA_DIR" nice -n "$KAFKA_NICE" "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_CONFIG"
}

kafka_wait() {
  local start="$1" pid
  pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until kafka_healthy; do
    if ! live_pid "$KAFKA_PID" "$KAFKA_PATTERN" >/dev/null; then
      tail -n 40 "$KAFKA_LOG" >&2 || true
      die "kafka: process ${pid:-?} exited during startup (see $KAFKA_LOG)"
    fi
    if (( $(date +%s) > deadline )); then
      tail -n 40 "$KAFKA_LOG" >&2 || true
      die "kafka: not healthy after ${TIMEOUT}s (see $KAFKA_LOG)"
    fi
    sleep 1
  done
  log "kafka: healthy on 127.0.0.1:$KAFKA_PORT (pid ${pid:-?}, $(elapsed "$start"))"
}

# --- ClickHouse ----------------------------------------------------------------------

CH_PATTERN="--config-file=$CH_DIR/config.xml"

ch_install() {
  command -v clickhouse-server >/dev/null && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "clickhouse: clickhouse-server not installed; installing Debian's package with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confdef \
      -o Dpkg::Options::=--force-confold clickhouse-server clickhouse-client >/dev/null \
      || die "clickhouse: apt-get install clickhouse-server clickhouse-client failed (try apt-get update first)"
  else
    die "clickhouse: clickhouse-server not found; install it: sudo apt-get install clickhouse-server clickhouse-client"
  fi
}

ch_query() { # <sql>
  curl -sf --max-time 5 "http://127.0.0.1:$CH_HTTP_PORT/" --data-binary "$1"
}

ch_healthy() {
  [[ "$(curl -s --max-time 3 "http://127.0.0.1:$CH_HTTP_PORT/ping" 2>/dev/null)" == "Ok." ]] || return 1
  ch_query 'SELECT version()' >/dev/null 2>&1
}

ch_start() {
  local pid
  if pid="$(live_pid "$CH_PID" "$CH_PATTERN")"; then
    log "clickhouse: already running (pid $pid)"
    return 0
  fi
  local p
  for p in "$CH_HTTP_PORT" "$CH_TCP_PORT" "$CH_INTERSERVER_PORT"; do
    if port_open "$p"; then
      die "clickhouse: port $p is in use by another process (a system clickhouse-server? try: service clickhouse-server stop); or set SWITCHYARD_CLICKHOUSE_*_PORT"
    fi
  done
  ch_install
  mkdir -p "$CH_DIR"/{data,tmp,log,user_files,format_schemas}
  sed -e "s#@@CH_DIR@@#$CH_DIR#g" -e "s#@@HTTP_PORT@@#$CH_HTTP_PORT#g" \
      -e "s#@@TCP_PORT@@#$CH_TCP_PORT#g" -e "s#@@INTERSERVER_PORT@@#$CH_INTERSERVER_PORT#g" \
      "$ROOT/scripts/clickhouse/config.xml" >"$CH_DIR/config.xml"
  cp "$ROOT/scripts/clickhouse/users.xml" "$CH_DIR/users.xml"
  log "clickhouse: starting clickhouse-server on 127.0.0.1 (http $CH_HTTP_PORT, native $CH_TCP_PORT), logs $CH_LOG and $CH_DIR/log/"
  printf '\n==== %s services.sh: starting clickhouse-server ====\n' "$(date -u +%FT%TZ)" >>"$CH_LOG"
  spawn "$CH_PID" "$CH_LOG" "$CH_DIR" clickhouse-server --config-file="$CH_DIR/config.xml"
}

ch_wait() {
  local start="$1" pid
  pid="$(cat "$CH_PID" 2>/dev/null || true)"
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until ch_healthy; do
    if ! live_pid "$CH_PID" "$CH_PATTERN" >/dev/null; then
      tail -n 20 "$CH_LOG" >&2 || true
      tail -n 20 "$CH_DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
      die "clickhouse: process ${pid:-?} exited during startup (see $CH_LOG and $CH_DIR/log/)"
    fi
    if (( $(date +%s) > deadline )); then
      die "clickhouse: not healthy after ${TIMEOUT}s (see $CH_DIR/log/)"
    fi
    sleep 0.5
  done
  log "clickhouse: healthy on http://127.0.0.1:$CH_HTTP_PORT (version $(ch_query 'SELECT version()'), pid ${pid:-?}, $(elapsed "$start"))"
}

# --- commands ------------------------------------------------------------------------

want() { # <service>: is it selected by the command line?
  [[ -z "$TARGET" || "$TARGET" == "$1" ]]
}

cmd_up() {
  local start
  start="$(date +%s)"
  # Start both first, then wait: they boot in parallel.
  want clickhouse && ch_start
  want kafka && kafka_start
  want clickhouse && ch_wait "$start"
  want kafka && kafka_wait "$start"
  log "up: done in $(elapsed "$start") (services dir $SERVICES_DIR)"
  if [[ -z "$TARGET" ]]; then
    log "tests: SWITCHYARD_TEST_BROKERS=127.0.0.1:$KAFKA_PORT SWITCHYARD_TEST_CLICKHOUSE_URL=http://127.0.0.1:$CH_HTTP_PORT"
  fi
}

cmd_down() {
  want kafka && stop_pid kafka "$KAFKA_PID" "$KAFKA_PATTERN" 60
  want clickhouse && stop_pid clickhouse "$CH_PID" "$CH_PATTERN" 30
  return 0
}

cmd_status() {
  local rc=0 pid
  if want kafka; then
    if pid="$(live_pid "$KAFKA_PID" "$KAFKA_PATTERN")"; then
      if kafka_healthy; then
        log "kafka: up (pid $pid, Kafka $(cut -d' ' -f1 "$KAFKA_LIB_DIR/.switchyard-kafka-version" 2>/dev/null || echo '?'), PLAINTEXT://127.0.0.1:$KAFKA_PORT)"
      else
        log "kafka: running but not healthy (pid $pid, 127.0.0.1:$KAFKA_PORT); see $KAFKA_LOG"
        rc=1
      fi
    else
      log "kafka: down"
      rc=1
    fi
  fi
  if want clickhouse; then
    if pid="$(live_pid "$CH_PID" "$CH_PATTERN")"; then
      if ch_healthy; then
        log "clickhouse: up (pid $pid, version $(ch_query 'SELECT version()'), http://127.0.0.1:$CH_HTTP_PORT, native 127.0.0.1:$CH_TCP_PORT)"
      else
        log "clickhouse: running but not healthy (pid $pid); see $CH_DIR/log/"
        rc=1
      fi
    else
      log "clickhouse: down"
      rc=1
    fi
  fi
  return "$rc"
}

usage() {
  echo "usage: $0 up|down|restart|status [kafka|clickhouse]" >&2
  exit 2
}

CMD="${1:-}"
TARGET="${2:-}"
case "$TARGET" in "" | kafka | clickhouse) ;; *) usage ;; esac
if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
  [[ "$TARGET" != clickhouse ]] || die "SWITCHYARD_KAFKA_SECURITY=sasl_ssl starts Kafka only"
  TARGET=kafka
fi
# One up/down at a time per services dir (tests and people may call this concurrently).
lock() {
  exec 9>"$SERVICES_DIR/.lock"
  if ! flock -n 9; then
    log "waiting for another services.sh up/down to finish"
    flock -w "$((TIMEOUT * 2))" 9 || die "timed out waiting for $SERVICES_DIR/.lock"
  fi
}
case "$CMD" in
  up) lock; cmd_up ;;
  down) lock; cmd_down ;;
  restart) lock; cmd_down; cmd_up ;;
  status) cmd_status ;;
  *) usage ;;
esac
