# shellcheck shell=bash
# Loads every server's functions. Servers in start order.
_vl_lib="$(dirname "${BASH_SOURCE[0]}")"
source "$_vl_lib/common.sh"
source "$_vl_lib/ca.sh"
source "$_vl_lib/mosquitto.sh"
source "$_vl_lib/postgres.sh"
source "$_vl_lib/kafka.sh"
source "$_vl_lib/influxdb.sh"
source "$_vl_lib/keycloak.sh"
VL_SERVERS=(mosquitto postgres kafka influxdb keycloak)

# Check and normalise server names given on the command line (none = all).
vl_select_servers() {
    local s t ok
    VL_SELECTED=()
    (($# == 0)) && { VL_SELECTED=("${VL_SERVERS[@]}"); return 0; }
    for s in "$@"; do
        [[ $s == postgresql ]] && s=postgres
        [[ $s == influx ]] && s=influxdb
        ok=0
        for t in "${VL_SERVERS[@]}"; do [[ $s == "$t" ]] && ok=1; done
        ((ok)) || vl_die "unknown server '$s' (choose from: ${VL_SERVERS[*]})"
        VL_SELECTED+=("$s")
    done
}

# True if the server's main process is alive.
vl_server_running() {
    case $1 in
    kafka) vl_alive kafka-1 ;;
    *) vl_alive "$1" ;;
    esac
}

# Export lines for every server that is running now.
vl_env_lines() {
    local s
    echo "# Vigil local servers (deploy/local/up) - dev credentials only. Source this file."
    for s in "${VL_SERVERS[@]}"; do
        vl_server_running "$s" && "${s}_env"
    done
    return 0
}
