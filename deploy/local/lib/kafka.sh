# shellcheck shell=bash
# Apache Kafka in KRaft mode (combined broker+controller nodes), jars from Maven Central.
# Sourced after lib/common.sh and lib/ca.sh.
#
# Node i (1..N) listens on 127.0.0.1:(B+2(i-1)) for clients and 127.0.0.1:(B+2(i-1)+1) for the
# controller quorum, B = VIGIL_KAFKA_BASE_PORT (default 19092): one node = 19092/19093; three nodes
# add 19094/19095 and 19096/19097.
#
# Security (issue 15; docs/security.md, "Kafka"): the client listener is SASL_SSL only: TLS with a
# certificate from the local CA (lib/ca.sh), SCRAM-SHA-512 logins, and the StandardAuthorizer with
# one ACL set per Vigil service (kafka_acls). There is no anonymous listener. The controller
# listener binds loopback and takes only the brokers' own SASL/PLAIN login (SCRAM credentials live
# in the metadata log the controllers serve, so they cannot guard it). Users and their passwords:
#   vigil-admin      super user: creates topics, grants ACLs, reads anything (tests, operators)
#   vigil-broker     super user: inter-broker traffic
#   vigil-gateway    writes readings and dead letters
#   vigil-processor  reads readings; writes alerts and dead letters; its app-id topics and group
#   vigil-notifier   reads alerts; its consumer group
# each password in $KAFKA_DIR/credentials/<user> (owner-only), created once; the env file names the
# directory (VIGIL_KAFKA_CREDENTIALS_DIR) and each service logs in with its own file.

# The local CA (lib/ca.sh), when this file is sourced on its own.
declare -F vl_ca_ensure >/dev/null || source "$(dirname "${BASH_SOURCE[0]}")/ca.sh"

KAFKA_VERSION="${VIGIL_KAFKA_VERSION:-4.4.0}"
KAFKA_DIR="$VIGIL_LOCAL_DIR/kafka"
# Default: the node count of the cluster already in the state dir, else one node.
KAFKA_BROKERS="${VIGIL_KAFKA_BROKERS:-$(cat "$KAFKA_DIR/brokers" 2>/dev/null || echo 1)}"
[[ $KAFKA_BROKERS =~ ^[123]$ ]] || vl_die "Kafka broker count must be 1, 2 or 3 (got '$KAFKA_BROKERS')"
KAFKA_BASE_PORT="${VIGIL_KAFKA_BASE_PORT:-19092}"
[[ $KAFKA_BASE_PORT =~ ^[0-9]+$ ]] || vl_die "VIGIL_KAFKA_BASE_PORT must be a port number (got '$KAFKA_BASE_PORT')"
KAFKA_HEAP="${VIGIL_KAFKA_HEAP:--Xmx512m -Xms256m}"
KAFKA_LIBS="$VIGIL_CACHE_DIR/kafka/$KAFKA_VERSION/libs"
KAFKA_TOOLS="$VIGIL_CACHE_DIR/kafka/$KAFKA_VERSION/tools"  # kafka-tools (AclCommand, ConfigCommand)
KAFKA_CERTS="$KAFKA_DIR/certs"
KAFKA_CREDS="$KAFKA_DIR/credentials"
KAFKA_ADMIN_CONF="$KAFKA_DIR/admin.properties"
KAFKA_SECURITY="sasl_ssl-1"  # written to $KAFKA_DIR/security once a cluster is formatted this way
KAFKA_USERS=(vigil-admin vigil-broker vigil-gateway vigil-processor vigil-notifier)
KAFKA_SUPER_USERS="User:vigil-admin;User:vigil-broker;User:vigil-controller"

kafka_port() { echo $((KAFKA_BASE_PORT + 2 * ($1 - 1))); }
kafka_cport() { echo $((KAFKA_BASE_PORT + 2 * ($1 - 1) + 1)); }

kafka_bootstrap() {
    local i out=()
    for ((i = 1; i <= KAFKA_BROKERS; i++)); do out+=("127.0.0.1:$(kafka_port "$i")"); done
    (IFS=,; echo "${out[*]}")
}

kafka_installed() {
    [[ -f $KAFKA_LIBS/.complete && -f $KAFKA_TOOLS/kafka-tools-$KAFKA_VERSION.jar ]] && command -v java >/dev/null
}

# Copy kafka_2.13 and its runtime dependencies (plus the log4j binding) into the cache, and the
# kafka-tools jar (AclCommand, ConfigCommand) beside them: its own directory, so that fetching it
# for an older cache never rewrites the libs a running broker uses.
kafka_install() {
    kafka_installed && return 0
    command -v java >/dev/null || vl_apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || vl_apt_install maven
    local log="$VIGIL_CACHE_DIR/kafka/mvn-$KAFKA_VERSION.log"
    mkdir -p "$KAFKA_LIBS" "$KAFKA_TOOLS"
    if [[ ! -f $KAFKA_LIBS/.complete ]]; then
        vl_log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
        rm -f "$KAFKA_LIBS"/*.jar
        mvn -B -q -f "$VL_DEPLOY_DIR/kafka/pom.xml" \
            -Dmaven.repo.local="$VIGIL_CACHE_DIR/m2" \
            -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" \
            >"$log" 2>&1 || vl_fail "$log" "mvn could not fetch Kafka $KAFKA_VERSION"
        # copy-dependencies leaves an empty target/ next to the pom; keep the repo clean.
        rm -rf "$VL_DEPLOY_DIR/kafka/target"
        touch "$KAFKA_LIBS/.complete"
    fi
    if [[ ! -f $KAFKA_TOOLS/kafka-tools-$KAFKA_VERSION.jar ]]; then
        vl_log "fetching kafka-tools $KAFKA_VERSION (ACLs, SCRAM users) into $KAFKA_TOOLS"
        (cd "$KAFKA_TOOLS" && mvn -B -q -Dmaven.repo.local="$VIGIL_CACHE_DIR/m2" dependency:copy \
            -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" -DoutputDirectory="$KAFKA_TOOLS") \
            >>"$log" 2>&1 || vl_fail "$log" "mvn could not fetch kafka-tools $KAFKA_VERSION"
    fi
}

kafka_java() {
    # shellcheck disable=SC2086  # KAFKA_HEAP holds several flags
    java $1 -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
        -cp "$KAFKA_LIBS/*:$KAFKA_TOOLS/*" "${@:2}"
}

# A user's password (created on first use: 32 random hex digits, owner-only).
kafka_password() {
    local file="$KAFKA_CREDS/$1"
    if [[ ! -s $file ]]; then
        mkdir -p "$KAFKA_CREDS"
        chmod 700 "$KAFKA_CREDS"
        (umask 077 && openssl rand -hex 16 >"$file") || vl_die "cannot write $file"
    fi
    chmod 600 "$file"
    cat "$file"
}

# TLS: the brokers' certificate from the local CA, as one PEM file (PKCS#8 key + certificate)
# that Kafka reads as a PEM keystore; the CA certificate is the truststore.
kafka_make_certs() {
    vl_ca_issue_server "$KAFKA_CERTS" server
    if [[ ! -s $KAFKA_CERTS/server.pem ]]; then
        (umask 077 && cat "$KAFKA_CERTS/server.key" "$KAFKA_CERTS/server.crt" >"$KAFKA_CERTS/server.pem")
    fi
    cp "$VL_CA_DIR/ca.crt" "$KAFKA_CERTS/ca.crt"
    chmod 644 "$KAFKA_CERTS/ca.crt"
}

# The admin's client config for the Java tools (AclCommand, ConfigCommand): owner-only.
kafka_write_admin_conf() {
    local password
    password=$(kafka_password vigil-admin)
    (umask 077 && cat >"$KAFKA_ADMIN_CONF" <<EOF
# Generated by deploy/local/lib/kafka.sh: the super user vigil-admin, for kafka-tools (--command-config).
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="vigil-admin" password="$password";
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_CERTS/ca.crt
EOF
    )
}

kafka_write_config() {
    local n=$KAFKA_BROKERS rf=1 isr=1 i voters=() broker_pw controller_pw
    if ((n >= 3)); then rf=3; isr=2; elif ((n == 2)); then rf=2; isr=1; fi
    for ((i = 1; i <= n; i++)); do voters+=("$i@127.0.0.1:$(kafka_cport "$i")"); done
    broker_pw=$(kafka_password vigil-broker)
    controller_pw=$(kafka_password vigil-controller)
    kafka_make_certs
    kafka_write_admin_conf
    cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
# Console only: stdout goes to the node's log file under logs/.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.log.name = org.apache.kafka.storage.internals.log
logger.log.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
EOF
    for ((i = 1; i <= n; i++)); do
        mkdir -p "$KAFKA_DIR/node-$i/data"
        (umask 077 && cat >"$KAFKA_DIR/node-$i/server.properties" <<EOF
# Generated by deploy/local/lib/kafka.sh: node $i of $n, dev only. Holds the nodes' passwords: owner-only.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=SASL_SSL://127.0.0.1:$(kafka_port "$i"),CONTROLLER://127.0.0.1:$(kafka_cport "$i")
advertised.listeners=SASL_SSL://127.0.0.1:$(kafka_port "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
# Clients and brokers: TLS with the local CA's certificate, SCRAM-SHA-512 logins.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="vigil-broker" password="$broker_pw";
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_CERTS/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_CERTS/ca.crt
ssl.client.auth=none
ssl.enabled.protocols=TLSv1.3,TLSv1.2
# Controller quorum (loopback): the nodes' own SASL/PLAIN login, no one else's.
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="vigil-controller" password="$controller_pw" user_vigil-controller="$controller_pw";
# Everything not granted by an ACL is refused.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=$KAFKA_SUPER_USERS
allow.everyone.if.no.acl.found=false
log.dirs=$KAFKA_DIR/node-$i/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
# Auto-creation needs Create on the topic: only vigil-admin has it on Vigil's topics.
auto.create.topics.enable=true
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
        )
    done
    echo "$n" >"$KAFKA_DIR/brokers"
}

# Format every node's log dir with one shared cluster id (first start only), with every user's
# SCRAM credential in the bootstrap metadata (KIP-900): the first login needs no other listener.
kafka_format() {
    local i cid user scram=()
    if [[ ! -s $KAFKA_DIR/cluster.id ]]; then
        kafka_java "-Xmx256m" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$KAFKA_DIR/cluster.id"
    fi
    cid=$(cat "$KAFKA_DIR/cluster.id")
    [[ $cid =~ ^[A-Za-z0-9_-]{22}$ ]] || vl_die "StorageTool random-uuid gave '$cid'"
    for user in "${KAFKA_USERS[@]}"; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(kafka_password "$user")]")
    done
    for ((i = 1; i <= KAFKA_BROKERS; i++)); do
        [[ -f $KAFKA_DIR/node-$i/data/meta.properties ]] && continue
        kafka_java "-Xmx256m" kafka.tools.StorageTool format -t "$cid" \
            -c "$KAFKA_DIR/node-$i/server.properties" "${scram[@]}" >>"$VL_LOG_DIR/kafka-$i.log" 2>&1 \
            || vl_fail "$VL_LOG_DIR/kafka-$i.log" "StorageTool format failed for kafka node $i"
        printf '%s\n' "${KAFKA_USERS[@]}" >"$KAFKA_CREDS/.registered"
    done
    echo "$KAFKA_SECURITY" >"$KAFKA_DIR/security"
}

# The ACLs, one line each: principal, resource type, name prefix, operations. Prefixed patterns:
# the default names (vigil.readings, vigil-processor, ...) and a run's own (vigil.readings.<run>,
# vigil-processor-<run>: tests and benches) get the same rights. docs/security.md has this table.
kafka_acl_lines() {
    cat <<'EOF'
vigil-gateway   topic vigil.readings   Write,Describe
vigil-gateway   topic vigil.deadletter Write,Describe
vigil-processor topic vigil.readings   Read,Describe
vigil-processor topic vigil.alerts     Write,Describe
vigil-processor topic vigil.deadletter Write,Describe
vigil-processor topic vigil-processor  Create,Read,Write,Describe,DescribeConfigs
vigil-processor group vigil-processor  Read,Describe
vigil-notifier  topic vigil.alerts     Read,Describe
vigil-notifier  group vigil-notifier   Read,Describe
EOF
}

# Grant the ACLs above (AclCommand, as vigil-admin) when they differ from the last ones granted.
# Granting only adds: a right dropped from the list is taken back with AclCommand --remove.
kafka_grant_acls() {
    local want have user kind name ops op args
    want=$(kafka_acl_lines | sha256sum | cut -c1-16)
    have=$(cat "$KAFKA_DIR/acls.granted" 2>/dev/null || true)
    [[ $want == "$have" ]] && return 0
    vl_log "kafka: granting the services' ACLs"
    while read -r user kind name ops; do
        [[ -z $user ]] && continue
        args=(--add --allow-principal "User:$user" --resource-pattern-type prefixed "--$kind" "$name")
        for op in ${ops//,/ }; do args+=(--operation "$op"); done
        kafka_java "-Xmx128m" org.apache.kafka.tools.AclCommand --bootstrap-server "$(kafka_bootstrap)" \
            --command-config "$KAFKA_ADMIN_CONF" "${args[@]}" >>"$VL_LOG_DIR/kafka-admin.log" 2>&1 \
            || vl_fail "$VL_LOG_DIR/kafka-admin.log" "AclCommand could not grant $user $kind $name $ops"
    done < <(kafka_acl_lines)
    echo "$want" >"$KAFKA_DIR/acls.granted"
}

# Set (create or change) a user's SCRAM-SHA-512 password through the admin API.
kafka_set_scram() {
    local user=$1 password=$2
    kafka_java "-Xmx128m" org.apache.kafka.tools.ConfigCommand --bootstrap-server "$(kafka_bootstrap)" \
        --command-config "$KAFKA_ADMIN_CONF" --alter --entity-type users --entity-name "$user" \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]" >>"$VL_LOG_DIR/kafka-admin.log" 2>&1 \
        || vl_fail "$VL_LOG_DIR/kafka-admin.log" "ConfigCommand could not set $user's SCRAM credential"
}

# Users added to KAFKA_USERS after the cluster was formatted: created through the admin API.
kafka_add_new_users() {
    local user
    for user in "${KAFKA_USERS[@]}"; do
        grep -qx "$user" "$KAFKA_CREDS/.registered" 2>/dev/null && continue
        kafka_set_scram "$user" "$(kafka_password "$user")"
        echo "$user" >>"$KAFKA_CREDS/.registered"
    done
}

# Rotate a user's password: a new random one in the cluster, then in its file. Connections already
# open stay up; each service logs in with the new file at its next (re)start (docs/security.md).
kafka_rotate_password() {
    local user=$1 new
    [[ " ${KAFKA_USERS[*]} " == *" $user "* && $user != vigil-broker ]] || vl_die "no such Kafka user to rotate: $user"
    new=$(openssl rand -hex 16)
    kafka_set_scram "$user" "$new"
    (umask 077 && echo "$new" >"$KAFKA_CREDS/$user.new") && mv "$KAFKA_CREDS/$user.new" "$KAFKA_CREDS/$user"
    [[ $user == vigil-admin ]] && kafka_write_admin_conf
    vl_log "kafka: $user has a new password in $KAFKA_CREDS/$user; restart its services to use it"
}

# A node is up once its process lives, its client port accepts connections and it has
# logged that the server started since its last launch.
kafka_node_started() {
    local i=$1
    vl_alive "kafka-$i" && vl_port_open "$(kafka_port "$i")" &&
        awk '/^==== kafka-'"$i"' start/ {s=0} /Kafka Server started/ {s=1} END {exit !s}' "$VL_LOG_DIR/kafka-$i.log"
}

kafka_running_brokers() {
    local i count=0
    for i in 1 2 3; do vl_alive "kafka-$i" && count=$((count + 1)); done
    echo "$count"
}

# Stop the cluster and delete its state (topics, offsets, users) for a fresh format.
kafka_wipe() {
    kafka_stop
    rm -rf "$KAFKA_DIR"
    mkdir -p "$KAFKA_DIR"
    chmod 700 "$KAFKA_DIR"
}

kafka_start() {
    local i all_up=1
    mkdir -p "$KAFKA_DIR"
    chmod 700 "$KAFKA_DIR"
    # A cluster formatted for another node count cannot be reused: its voter set differs.
    if [[ -s $KAFKA_DIR/brokers && $(cat "$KAFKA_DIR/brokers") != "$KAFKA_BROKERS" ]]; then
        vl_log "kafka: switching from $(cat "$KAFKA_DIR/brokers") to $KAFKA_BROKERS node(s); wiping the old cluster"
        kafka_wipe
    fi
    # Upgrade of an install from before issue 15 (PLAINTEXT, no users, no ACLs): SCRAM users are
    # bootstrapped at format time, so the dev cluster is formatted again.
    if [[ -s $KAFKA_DIR/cluster.id && $(cat "$KAFKA_DIR/security" 2>/dev/null) != "$KAFKA_SECURITY" ]]; then
        vl_log "*************************************************************************************"
        vl_log "kafka: converting the PLAINTEXT (no authentication) dev cluster to SASL_SSL with ACLs."
        vl_log "kafka: its data is WIPED and formatted again: every topic, record and consumer offset"
        vl_log "kafka: in $KAFKA_DIR is DELETED (dev stack only; docs/deployment.md)."
        vl_log "*************************************************************************************"
        kafka_wipe
    fi
    for ((i = 1; i <= KAFKA_BROKERS; i++)); do kafka_node_started "$i" || all_up=0; done
    if ((!all_up)); then
        kafka_write_config
        kafka_format
        for ((i = 1; i <= KAFKA_BROKERS; i++)); do
            vl_alive "kafka-$i" && continue
            vl_require_free_port "kafka-$i" "$(kafka_port "$i")"
            vl_require_free_port "kafka-$i" "$(kafka_cport "$i")"
            # shellcheck disable=SC2086
            vl_spawn "kafka-$i" java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
                -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
                -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/node-$i/server.properties"
        done
        for ((i = 1; i <= KAFKA_BROKERS; i++)); do
            vl_wait_until "kafka-$i" 120 kafka_node_started "$i"
        done
    fi
    kafka_add_new_users
    kafka_grant_acls
}

kafka_stop() {
    local i
    # Signal every node first so a multi-node cluster shuts down together, then wait for each.
    for i in 1 2 3; do
        local pid
        pid=$(vl_pid "kafka-$i") && [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true
    done
    for i in 1 2 3; do vl_stop_pid "kafka-$i" 40; done
}

kafka_status() {
    local i n=$KAFKA_BROKERS rc=0
    for ((i = 1; i <= n; i++)); do
        if vl_alive "kafka-$i" && vl_port_open "$(kafka_port "$i")"; then
            echo "kafka-$i    ok    127.0.0.1:$(kafka_port "$i") (Kafka $KAFKA_VERSION, KRaft, $n node(s), SASL_SSL + ACLs)"
        else
            echo "kafka-$i    DOWN  127.0.0.1:$(kafka_port "$i")"; rc=1
        fi
    done
    return $rc
}

# No login by default: each service (and test helper) logs in as its own user with that user's
# file (vigil.tools.stack.kafka_login): VIGIL_KAFKA_USERNAME=vigil-<service> and
# VIGIL_KAFKA_PASSWORD_FILE=$VIGIL_KAFKA_CREDENTIALS_DIR/vigil-<service>.
kafka_env() {
    cat <<EOF
export VIGIL_KAFKA_BOOTSTRAP=$(kafka_bootstrap)
export VIGIL_KAFKA_SECURITY_PROTOCOL=SASL_SSL
export VIGIL_KAFKA_CA_FILE=$KAFKA_CERTS/ca.crt
export VIGIL_KAFKA_CREDENTIALS_DIR=$KAFKA_CREDS
EOF
}
