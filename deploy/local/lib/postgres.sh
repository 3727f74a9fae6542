# shellcheck shell=bash
# PostgreSQL (Debian package) as a private cluster in the state dir, 127.0.0.1 only.
# Sourced after lib/common.sh.

PG_PORT="${VIGIL_PG_PORT:-15432}"
PG_DB="vigil"
PG_USER="vigil"
PG_PASSWORD="vigil"
PG_DIR="$VIGIL_LOCAL_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCKET="$PG_DIR/socket"

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d ]] && echo "$d"
}

postgres_installed() { [[ -n $(pg_bindir) && -x $(pg_bindir)/initdb ]]; }

postgres_install() {
    postgres_installed && return 0
    vl_apt_install postgresql
    postgres_installed || vl_die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
}

# The server refuses to run as root: when we are root, it runs as the Debian `postgres` user.
pg_run_user() { if ((EUID == 0)); then echo postgres; else id -un; fi; }

# Prefix that runs a command as the cluster's owner. setpriv and env exec (no process stays
# in between), so the pid that vl_spawn records is the postmaster's own.
pg_owner_prefix() {
    PG_AS=()
    if ((EUID == 0)); then
        PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --
            env "PATH=$(pg_bindir):/usr/bin:/bin" LANG=C.UTF-8)
    fi
}
pg_as_owner() { local PG_AS; pg_owner_prefix; "${PG_AS[@]}" "$@"; }

postgres_init() {
    [[ -s $PG_DATA/PG_VERSION ]] && return 0
    local user log="$VL_LOG_DIR/postgres-initdb.log"
    user=$(pg_run_user)
    mkdir -p "$PG_DIR" "$PG_SOCKET"
    rm -rf "$PG_DATA"
    ((EUID == 0)) && chown -R "$user:" "$PG_DIR"
    vl_grant_traverse "$user" "$PG_DIR"
    pg_as_owner "$(pg_bindir)/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$log" 2>&1 \
        || vl_fail "$log" "initdb failed"
    # Dev/test tuning: durability traded for speed (a crash may lose the last commits).
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# ---- deploy/local (dev only) ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
log_min_messages = warning
EOF
}

postgres_healthy() {
    "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres
}

pg_psql() {
    pg_as_owner "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -U postgres "$@"
}

# Role and database `vigil` (password `vigil`), created once.
postgres_bootstrap() {
    local log="$VL_LOG_DIR/postgres-bootstrap.log"
    if [[ $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'" 2>>"$log") != 1 ]]; then
        pg_psql -d postgres -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'" >>"$log" 2>&1 \
            || vl_fail "$log" "could not create role $PG_USER"
    fi
    if [[ $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>>"$log") != 1 ]]; then
        pg_psql -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_USER" >>"$log" 2>&1 \
            || vl_fail "$log" "could not create database $PG_DB"
    fi
}

# The services' own login roles (docs/security.md, "Service credentials"): created when missing,
# their passwords random and kept in owner-only files. Their rights on the tables are given by
# `vigil migrate` (services/vigil/shell/stores/grants.py), run by the owner once the tables exist:
# here they can only log in. The gateway has none (it touches no table). Idempotent, additive.
PG_SERVICES=(processor notifier grafana)
postgres_service_roles() {
    local log="$VL_LOG_DIR/postgres-bootstrap.log" service role password file url
    for service in "${PG_SERVICES[@]}"; do
        role="vigil_$service"
        file=$(vl_credential_file "$service.database-url")
        password=""
        if [[ -s $file ]]; then
            url=$(<"$file")
            password=${url#*://*:}
            password=${password%%@*}
        fi
        [[ $password =~ ^[0-9a-f]{48}$ ]] || password=$(vl_random_secret)
        if [[ $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$role'" 2>>"$log") != 1 ]]; then
            pg_psql -d postgres -c "CREATE ROLE $role LOGIN PASSWORD '$password'" >>"$log" 2>&1 \
                || vl_fail "$log" "could not create role $role"
            vl_log "postgres: created role $role"
        else
            pg_psql -d postgres -c "ALTER ROLE $role LOGIN PASSWORD '$password'" >>"$log" 2>&1 \
                || vl_fail "$log" "could not set the password of role $role"
        fi
        vl_write_credential "$service.database-url" \
            "postgresql+psycopg://$role:$password@127.0.0.1:$PG_PORT/$PG_DB"
    done
}

postgres_start() {
    if vl_alive postgres && postgres_healthy; then
        postgres_bootstrap
        postgres_service_roles
        return 0
    fi
    vl_stop_pid postgres 10
    vl_require_free_port postgres "$PG_PORT"
    postgres_init
    # A stale postmaster.pid from a killed server blocks a restart; it is safe to drop
    # once nothing answers on the port and our pid is gone.
    rm -f "$PG_DATA/postmaster.pid"
    local PG_AS
    pg_owner_prefix
    vl_spawn postgres "${PG_AS[@]}" "$(pg_bindir)/postgres" -D "$PG_DATA"
    vl_wait_until postgres 60 postgres_healthy
    postgres_bootstrap
    postgres_service_roles
}

# SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
postgres_stop() {
    local pid
    pid=$(vl_pid postgres) && [[ -n $pid ]] && kill -INT "$pid" 2>/dev/null || true
    vl_stop_pid postgres 30
}

postgres_status() {
    if vl_alive postgres && postgres_healthy; then
        echo "postgres   ok    127.0.0.1:$PG_PORT db=$PG_DB ($("$(pg_bindir)/postgres" --version | awk '{print $3}'))"
    else
        echo "postgres   DOWN  127.0.0.1:$PG_PORT"; return 1
    fi
}

# VIGIL_DATABASE_URL is the owner's (migrations, tools, tests); each service's own is in its file.
postgres_env() {
    local service
    echo "export VIGIL_DATABASE_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
    for service in "${PG_SERVICES[@]}"; do
        [[ -s $(vl_credential_file "$service.database-url") ]] || continue
        echo "export VIGIL_${service^^}_DATABASE_URL_FILE=$(vl_credential_file "$service.database-url")"
    done
}
