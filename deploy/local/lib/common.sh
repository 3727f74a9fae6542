# shellcheck shell=bash
# Shared helpers for deploy/local: paths, process control, health waits.
# Sourced by up/down/status and by each lib/<server>.sh; never run directly.

# shellcheck disable=SC2034  # the variables below are used by the files that source this one
VIGIL_CACHE_DIR="${VIGIL_CACHE_DIR:-$HOME/.cache/vigil}"
VIGIL_LOCAL_DIR="${VIGIL_LOCAL_DIR:-$VIGIL_CACHE_DIR/local}"
VL_BIN_DIR="$VIGIL_CACHE_DIR/bin"
VL_LOG_DIR="$VIGIL_LOCAL_DIR/logs"
VL_RUN_DIR="$VIGIL_LOCAL_DIR/run"
VL_ENV_FILE="$VIGIL_LOCAL_DIR/env"
VL_DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

vl_log() { printf '[vigil-local] %s\n' "$*" >&2; }
vl_die() { vl_log "ERROR: $*"; exit 1; }

vl_init_dirs() { mkdir -p "$VIGIL_LOCAL_DIR" "$VL_LOG_DIR" "$VL_RUN_DIR" "$VL_BIN_DIR"; }

# Print the last lines of a log so a failed start explains itself.
vl_tail_log() {
    local file=$1
    if [[ -f $file ]]; then
        vl_log "---- last 40 lines of $file ----"
        tail -n 40 "$file" >&2 || true
        vl_log "---- end of $file ----"
    fi
}

# Fail with the tail of a log.
vl_fail() { local file=$1; shift; vl_tail_log "$file"; vl_die "$*"; }

# apt-get install the given packages if any is missing; apt-get update at most once per run.
VL_APT_UPDATED=${VL_APT_UPDATED:-0}
vl_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    if [[ $VL_APT_UPDATED != 1 ]]; then
        vl_log "apt-get update"
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null
        VL_APT_UPDATED=1
    fi
    vl_log "apt-get install ${missing[*]}"
    # policy-rc.d stops Debian's postinst from starting system-wide daemons we do not want.
    # DPkg::Lock::Timeout: wait (up to 15 min) for another install holding the dpkg lock, not fail.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# True if something accepts TCP connections on 127.0.0.1:$1.
vl_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pidfile helpers. A pidfile holds one pid; "alive" means that process exists.
vl_pidfile() { printf '%s/%s.pid' "$VL_RUN_DIR" "$1"; }
vl_pid() { local f; f=$(vl_pidfile "$1"); [[ -s $f ]] && cat "$f"; }
vl_alive() {
    local pid
    pid=$(vl_pid "$1") || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# Start a long-running command detached from this shell, logging to $VL_LOG_DIR/<name>.log.
# Usage: vl_spawn NAME COMMAND [ARGS...]
vl_spawn() {
    local name=$1; shift
    local log="$VL_LOG_DIR/$name.log"
    printf '\n==== %s start %s ====\n' "$name" "$(date -Is)" >>"$log"
    local pidfile
    pidfile=$(vl_pidfile "$name")
    rm -f "$pidfile"
    # New session so the server outlives this shell; the child records its own pid and then
    # execs the server, so the pid is right even where setsid has to fork.
    # shellcheck disable=SC2016  # expanded by the child shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 50; i++)); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
    vl_die "could not start $name"
}

# Stop the process in NAME's pidfile: SIGTERM, wait up to $2 seconds (default 30), then SIGKILL.
vl_stop_pid() {
    local name=$1 wait=${2:-30} pid i
    pid=$(vl_pid "$name") || { rm -f "$(vl_pidfile "$name")"; return 0; }
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < wait * 5; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            vl_log "$name (pid $pid) ignored SIGTERM for ${wait}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$(vl_pidfile "$name")"
}

# Wait until a command succeeds, or until NAME's process dies or TIMEOUT seconds pass.
# Usage: vl_wait_until NAME TIMEOUT COMMAND [ARGS...]
vl_wait_until() {
    local name=$1 timeout=$2; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! vl_alive "$name"; then
            vl_fail "$VL_LOG_DIR/$name.log" "$name exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            vl_fail "$VL_LOG_DIR/$name.log" "$name not healthy after ${timeout}s"
        fi
        sleep 0.5
    done
}

# Refuse to start if another process already holds the port.
vl_require_free_port() {
    local name=$1 port=$2
    if vl_port_open "$port"; then
        vl_die "port 127.0.0.1:$port is taken by another process; cannot start $name (see: ss -ltnp 'sport = :$port')"
    fi
}

# Let USER reach DIR when we are root and DIR sits under a private home (/root is 0700):
# grant only search (x) permission, through an ACL, on the ancestors that block USER.
vl_grant_traverse() {
    local user=$1 dir=$2 d path=""
    ((EUID == 0)) || return 0
    runuser -u "$user" -- test -x "$dir" 2>/dev/null && return 0
    command -v setfacl >/dev/null || vl_apt_install acl
    local IFS=/
    for d in $dir; do
        [[ -z $d ]] && continue
        path="$path/$d"
        if ! runuser -u "$user" -- test -x "$path" 2>/dev/null; then
            setfacl -m "u:$user:x" "$path" || vl_die "cannot let $user reach $path (setfacl failed)"
        fi
    done
}

# Per-service credentials (docs/security.md, "Service credentials"): one owner-only file per secret in
# $VIGIL_LOCAL_DIR/credentials (0700), read by a service through VIGIL_<NAME>_FILE.
VL_CREDENTIALS_DIR="$VIGIL_LOCAL_DIR/credentials"
vl_credential_file() { printf '%s/%s' "$VL_CREDENTIALS_DIR" "$1"; }

# Write a secret to its file (0600, created that way: never readable by others, not even briefly).
vl_write_credential() {
    local name=$1 value=$2 file
    file=$(vl_credential_file "$name")
    (umask 077 && mkdir -p "$VL_CREDENTIALS_DIR" && chmod 700 "$VL_CREDENTIALS_DIR" \
        && printf '%s\n' "$value" >"$file.tmp" && chmod 600 "$file.tmp" && mv "$file.tmp" "$file")
}

# A random secret (48 hex characters); no pipe that could end in SIGPIPE under pipefail.
vl_random_secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
