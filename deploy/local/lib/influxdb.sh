# shellcheck shell=bash
# InfluxDB OSS 2.7, built from its Go module (no UI: built without the `assets` tag; the API works).
# Sourced after lib/common.sh.

INFLUX_VERSION="${VIGIL_INFLUX_VERSION:-2.7.12}"
INFLUX_PORT="${VIGIL_INFLUX_PORT:-18086}"
INFLUX_ORG="vigil"
INFLUX_BUCKET="vitals"
INFLUX_ROLLUP_BUCKET="vitals-rollups"
INFLUX_USER="vigil"
INFLUX_PASSWORD="vigil-dev-password"
INFLUX_TOKEN="${VIGIL_INFLUX_DEV_TOKEN:-vigil-dev-token-not-for-production}"
INFLUX_BIN="$VL_BIN_DIR/influxd-$INFLUX_VERSION"
INFLUX_DIR="$VIGIL_LOCAL_DIR/influxdb"
INFLUX_BUILD_DIR="$VIGIL_CACHE_DIR/build/influxd-$INFLUX_VERSION"
INFLUX_BUILD_LOG="$VIGIL_CACHE_DIR/build/influxd-$INFLUX_VERSION.log"

influxdb_installed() { [[ -x $INFLUX_BIN ]]; }

# Build influxd into the cache once per version. Takes ~5 minutes cold on 2 cores
# (most of it is cargo building libflux); later runs find the cached binary.
influxdb_install() {
    influxdb_installed && return 0
    vl_apt_install pkg-config build-essential
    command -v go >/dev/null || vl_die "go is required to build influxd"
    command -v cargo >/dev/null || vl_die "cargo (rustup stable) is required to build libflux for influxd"
    mkdir -p "$(dirname "$INFLUX_BUILD_DIR")" "$VL_BIN_DIR"
    (
        # One builder at a time; a second `up` waits here and then finds the binary.
        exec 9>"$INFLUX_BUILD_DIR.lock"
        flock 9
        influxdb_installed && exit 0
        vl_log "building influxd $INFLUX_VERSION from the Go module (cold: ~5 min on 2 cores); log: $INFLUX_BUILD_LOG"
        local start=$SECONDS
        rm -rf "$INFLUX_BUILD_DIR"
        mkdir -p "$INFLUX_BUILD_DIR"
        cp "$VL_DEPLOY_DIR/influxdb/go.mod" "$VL_DEPLOY_DIR/influxdb/go.sum" "$VL_DEPLOY_DIR/influxdb/tools.go" "$INFLUX_BUILD_DIR/"
        if [[ $INFLUX_VERSION != 2.7.12 ]]; then
            (cd "$INFLUX_BUILD_DIR" && GOFLAGS=-mod=mod go get "github.com/influxdata/influxdb/v2@v$INFLUX_VERSION" && go mod tidy) >>"$INFLUX_BUILD_LOG" 2>&1 \
                || vl_fail "$INFLUX_BUILD_LOG" "could not resolve influxdb v$INFLUX_VERSION"
        fi
        cd "$INFLUX_BUILD_DIR" || exit 1
        {
            echo "==== build influxd $INFLUX_VERSION $(date -Is) ===="
            go version
            cargo --version
            # InfluxData's pkg-config wrapper: when cgo asks for `flux`, it runs `cargo build --release`
            # in the flux module's libflux/ and points the linker at the static library.
            go build -o "$INFLUX_BUILD_DIR/pkg-config" github.com/influxdata/pkg-config
        } >>"$INFLUX_BUILD_LOG" 2>&1 || vl_fail "$INFLUX_BUILD_LOG" "building the pkg-config wrapper failed"
        # flux pins Rust 1.72 in rust-toolchain.toml (not installable here): use stable.
        # Its crates deny warnings that newer compilers add: cap lints at warn, through
        # RUSTFLAGS for the target crates and a RUSTC_WRAPPER for the build-script ones.
        if ! env PKG_CONFIG="$INFLUX_BUILD_DIR/pkg-config" \
            PKG_CONFIG_LOG="$INFLUX_BUILD_DIR/pkg-config.log" \
            RUSTUP_TOOLCHAIN=stable RUSTFLAGS=--cap-lints=warn \
            RUSTC_WRAPPER="$VL_DEPLOY_DIR/influxdb/rustc-cap-lints" CGO_ENABLED=1 \
            go build -tags sqlite_foreign_keys,sqlite_json \
            -ldflags "-s -w -X main.version=$INFLUX_VERSION -X main.commit=gomod" \
            -o "$INFLUX_BUILD_DIR/influxd" github.com/influxdata/influxdb/v2/cmd/influxd \
            >>"$INFLUX_BUILD_LOG" 2>&1; then
            [[ -f $INFLUX_BUILD_DIR/pkg-config.log ]] && tail -n 20 "$INFLUX_BUILD_DIR/pkg-config.log" >>"$INFLUX_BUILD_LOG"
            vl_fail "$INFLUX_BUILD_LOG" "building influxd failed"
        fi
        mv "$INFLUX_BUILD_DIR/influxd" "$INFLUX_BIN.tmp" && mv "$INFLUX_BIN.tmp" "$INFLUX_BIN"
        echo "==== built in $((SECONDS - start))s ====" >>"$INFLUX_BUILD_LOG"
        vl_log "influxd built in $((SECONDS - start))s: $INFLUX_BIN"
    )
}

influxdb_healthy() {
    curl -fsS --max-time 2 "http://127.0.0.1:$INFLUX_PORT/health" 2>/dev/null | grep -q '"status": *"pass"'
}

influxdb_start() {
    if vl_alive influxdb && influxdb_healthy; then
        influxdb_setup
        influxdb_service_tokens
        return 0
    fi
    vl_stop_pid influxdb 5
    vl_require_free_port influxdb "$INFLUX_PORT"
    mkdir -p "$INFLUX_DIR/engine"
    # cwd = state dir so influxd never picks up a stray config.{toml,yaml,json}.
    (
        cd "$INFLUX_DIR" || exit 1
        INFLUXD_CONFIG_PATH="$INFLUX_DIR" vl_spawn influxdb "$INFLUX_BIN" \
            --bolt-path "$INFLUX_DIR/influxd.bolt" \
            --engine-path "$INFLUX_DIR/engine" \
            --sqlite-path "$INFLUX_DIR/influxd.sqlite" \
            --http-bind-address "127.0.0.1:$INFLUX_PORT" \
            --reporting-disabled --log-level warn
    )
    vl_wait_until influxdb 60 influxdb_healthy
    influxdb_setup
    influxdb_service_tokens
}

# First start only: create org, bucket, user and the fixed dev token (POST /api/v2/setup).
influxdb_setup() {
    local url="http://127.0.0.1:$INFLUX_PORT"
    if curl -fsS "$url/api/v2/setup" | grep -q '"allowed": *true'; then
        curl -fsS -X POST "$url/api/v2/setup" -H 'Content-Type: application/json' \
            -d "{\"username\":\"$INFLUX_USER\",\"password\":\"$INFLUX_PASSWORD\",\"org\":\"$INFLUX_ORG\",\"bucket\":\"$INFLUX_BUCKET\",\"retentionPeriodSeconds\":0,\"token\":\"$INFLUX_TOKEN\"}" \
            >"$VL_LOG_DIR/influxdb-setup.json" || vl_fail "$VL_LOG_DIR/influxdb.log" "InfluxDB setup failed"
        vl_log "influxdb: set up org=$INFLUX_ORG bucket=$INFLUX_BUCKET"
    fi
    influxdb_retention
}

# The services' own tokens (docs/security.md, "Service credentials"), each scoped to the bucket and
# to read or write: the processor writes series; the notifier (the scaled path's HTTP API: the
# patient page's charts), other readers of trends and Grafana only read. The gateway gets none. The operator token above stays the owner's (setup, buckets,
# the rollup task, tests). A token is found again by its description, so `up` is idempotent; a
# token deleted by hand is created anew. Format: service:action:description.
# Readers read the raw bucket and the rollups' own (INFLUX_ROLLUP_BUCKET, kept longer: retention below).
INFLUX_SERVICE_TOKENS=(
    "processor:write:vigil-processor: write $INFLUX_BUCKET"
    "notifier:read:vigil-notifier: read $INFLUX_BUCKET $INFLUX_ROLLUP_BUCKET"
    "trends:read:vigil-trends: read $INFLUX_BUCKET $INFLUX_ROLLUP_BUCKET"
    "grafana:read:vigil-grafana: read $INFLUX_BUCKET $INFLUX_ROLLUP_BUCKET"
)
influxdb_api() {
    local method=$1 path=$2; shift 2
    curl -fsS -X "$method" "http://127.0.0.1:$INFLUX_PORT$path" -H "Authorization: Token $INFLUX_TOKEN" \
        -H 'Content-Type: application/json' "$@"
}
influxdb_service_tokens() {
    local org_id bucket_id entry service action description token body
    org_id=$(influxdb_api GET "/api/v2/orgs?org=$INFLUX_ORG" | jq -r '.orgs[0].id') \
        || vl_die "influxdb: cannot read org $INFLUX_ORG"
    bucket_id=$(influxdb_api GET "/api/v2/buckets?orgID=$org_id&name=$INFLUX_BUCKET" | jq -r '.buckets[0].id') \
        || vl_die "influxdb: cannot read bucket $INFLUX_BUCKET"
    [[ $org_id != null && $bucket_id != null ]] || vl_die "influxdb: org $INFLUX_ORG or bucket $INFLUX_BUCKET missing"
    local rollup_id
    rollup_id=$(influxdb_api GET "/api/v2/buckets?orgID=$org_id&name=$INFLUX_ROLLUP_BUCKET" | jq -r '.buckets[0].id') \
        || vl_die "influxdb: cannot read bucket $INFLUX_ROLLUP_BUCKET"
    for entry in "${INFLUX_SERVICE_TOKENS[@]}"; do
        service=${entry%%:*}
        action=${entry#*:}; action=${action%%:*}
        description=${entry#*:*:}
        token=$(influxdb_api GET "/api/v2/authorizations?orgID=$org_id" \
            | jq -r --arg d "$description" '[.authorizations[] | select(.description == $d and .status == "active")][0].token // empty') \
            || vl_die "influxdb: cannot list the tokens"
        if [[ -z $token ]]; then
            body=$(jq -cn --arg org "$org_id" --arg bucket "$bucket_id" --arg rollups "$rollup_id" --arg action "$action" \
                --arg d "$description" '{orgID: $org, description: $d, permissions: ([$bucket] + (if $action == "read"
                then [$rollups] else [] end) | map({action: $action, resource: {type: "buckets", id: ., orgID: $org}}))}')
            token=$(influxdb_api POST /api/v2/authorizations -d "$body" | jq -r '.token') \
                || vl_die "influxdb: cannot create the $service token"
            vl_log "influxdb: created the $service token ($action $INFLUX_BUCKET)"
        fi
        vl_write_credential "$service.influx-token" "$token"
    done
}

# The per-minute rollup task (`vigil trends install-task`: rollup_1m, which patient charts read), so a
# fresh system has rollups. Its Flux comes from Vigil's own code, so it needs a Vigil command: $VIGIL_CLI,
# else this checkout's .venv/bin/vigil, else `vigil` on the PATH; without one, says what to run.
# Idempotent: an installed task is left as it is, or brought up to date. Bucket names come from Vigil's
# settings, read from the environment (influxdb_env's, and any other VIGIL_INFLUX_* already set).
influxdb_rollup_task() {
    local cli=${VIGIL_CLI:-}
    [[ -z $cli && -x $VL_DEPLOY_DIR/../../.venv/bin/vigil ]] && cli=$VL_DEPLOY_DIR/../../.venv/bin/vigil
    [[ -z $cli ]] && cli=$(command -v vigil || true)
    if [[ -z $cli ]]; then
        vl_log "influxdb: no vigil command here; run 'vigil trends install-task' once for the rollups"
        return 0
    fi
    local out
    if out=$(eval "$(influxdb_env)"; "$cli" trends install-task 2>&1); then
        vl_log "influxdb: rollup task installed: $out"
    else
        vl_log "influxdb: installing the rollup task failed (run 'vigil trends install-task'): ${out##*$'\n'}"
    fi
}

influxdb_stop() { vl_stop_pid influxdb 30; }

influxdb_status() {
    if influxdb_healthy; then echo "influxdb   ok    http://127.0.0.1:$INFLUX_PORT ($("$INFLUX_BIN" version 2>/dev/null | awk '{print $2}'))"
    else echo "influxdb   DOWN  http://127.0.0.1:$INFLUX_PORT"; return 1; fi
}

influxdb_env() {
    cat <<EOF
export VIGIL_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT
export VIGIL_INFLUX_TOKEN=$INFLUX_TOKEN
export VIGIL_INFLUX_ORG=$INFLUX_ORG
export VIGIL_INFLUX_BUCKET=$INFLUX_BUCKET
export VIGIL_INFLUX_ROLLUP_BUCKET=$INFLUX_ROLLUP_BUCKET
EOF
    local entry service
    for entry in "${INFLUX_SERVICE_TOKENS[@]}"; do
        service=${entry%%:*}
        [[ -s $(vl_credential_file "$service.influx-token") ]] || continue
        echo "export VIGIL_${service^^}_INFLUX_TOKEN_FILE=$(vl_credential_file "$service.influx-token")"
    done
}

# Issue 15, retention (docs/data.md): raw readings kept VIGIL_RETAIN_READINGS_DAYS (400), the rollups'
# own bucket VIGIL_RETAIN_ROLLUPS_DAYS (1095); 0 keeps forever. What `vigil retention influx` does,
# with curl, on every `up` (idempotent): an existing bucket's rule is replaced, a missing rollup bucket made.
influxdb_retention() {
    local url="http://127.0.0.1:$INFLUX_PORT" auth="Authorization: Token $INFLUX_TOKEN" org_id
    org_id=$(curl -fsS -H "$auth" "$url/api/v2/orgs?org=$INFLUX_ORG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["orgs"][0]["id"])') \
        || vl_fail "$VL_LOG_DIR/influxdb.log" "InfluxDB: org $INFLUX_ORG not found"
    local name days seconds shard id
    for name in "$INFLUX_BUCKET" "$INFLUX_ROLLUP_BUCKET"; do
        if [[ $name == "$INFLUX_BUCKET" ]]; then days="${VIGIL_RETAIN_READINGS_DAYS:-400}"; else days="${VIGIL_RETAIN_ROLLUPS_DAYS:-1095}"; fi
        seconds=$(python3 -c "print(int(round(float('$days') * 86400)))")
        shard=$(python3 -c "s=$seconds; print(604800 if s == 0 or s > 180*86400 else 86400 if s >= 2*86400 else 3600)")
        local rules="[{\"type\":\"expire\",\"everySeconds\":$seconds,\"shardGroupDurationSeconds\":$shard}]"
        id=$(curl -sS -H "$auth" "$url/api/v2/buckets?orgID=$org_id&name=$name" \
             | python3 -c 'import json,sys; b=json.load(sys.stdin).get("buckets") or []; print(b[0]["id"] if b else "")')  # 404 when missing
        if [[ -z $id ]]; then
            curl -fsS -X POST -H "$auth" -H 'Content-Type: application/json' "$url/api/v2/buckets" \
                -d "{\"orgID\":\"$org_id\",\"name\":\"$name\",\"retentionRules\":$rules}" >/dev/null \
                || vl_fail "$VL_LOG_DIR/influxdb.log" "InfluxDB: could not create bucket $name"
        else
            curl -fsS -X PATCH -H "$auth" -H 'Content-Type: application/json' "$url/api/v2/buckets/$id" \
                -d "{\"retentionRules\":$rules}" >/dev/null \
                || vl_fail "$VL_LOG_DIR/influxdb.log" "InfluxDB: could not set the retention of bucket $name"
        fi
        vl_log "influxdb: bucket $name kept ${days} days (0: forever)"
    done
}
