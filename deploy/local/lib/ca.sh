# shellcheck shell=bash
# The local servers' one certificate authority (dev only): it signs Mosquitto's and Kafka's server
# certificates, so a client trusts both with one file, $VL_CA_DIR/ca.crt. Sourced after lib/common.sh.
#
# Upgrade: an install from before this file has a CA of Mosquitto's own (mosquitto/certs/ca.key);
# that CA is adopted as the shared one, so certificates already issued and clients already
# configured with mosquitto/certs/ca.crt keep working.

VL_CA_DIR="$VIGIL_LOCAL_DIR/ca"

# Create (or adopt Mosquitto's existing) CA once. Its key stays owner-only in $VL_CA_DIR.
vl_ca_ensure() {
    [[ -s $VL_CA_DIR/ca.crt && -s $VL_CA_DIR/ca.key ]] && return 0
    mkdir -p "$VL_CA_DIR"
    chmod 700 "$VL_CA_DIR"
    local old="$VIGIL_LOCAL_DIR/mosquitto/certs"
    if [[ -s $old/ca.crt && -s $old/ca.key ]]; then
        vl_log "ca: adopting Mosquitto's existing CA as the local servers' shared CA ($VL_CA_DIR)"
        (umask 077 && cp "$old/ca.key" "$VL_CA_DIR/ca.key")
        cp "$old/ca.crt" "$VL_CA_DIR/ca.crt"
    else
        local log="$VL_LOG_DIR/ca.log"
        (
            cd "$VL_CA_DIR"
            umask 077
            openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
                -keyout ca.key -out ca.crt -subj "/O=Vigil dev/CN=Vigil local dev CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -addext "subjectKeyIdentifier=hash"
        ) >"$log" 2>&1 || vl_fail "$log" "openssl could not create the local CA"
    fi
    chmod 600 "$VL_CA_DIR/ca.key"
    chmod 644 "$VL_CA_DIR/ca.crt"
}

# Issue a server certificate (SAN localhost and 127.0.0.1) signed by the shared CA, once.
# Usage: vl_ca_issue_server DIR NAME  -> DIR/NAME.crt, DIR/NAME.key (PKCS#8, owner-only)
vl_ca_issue_server() {
    local dir=$1 name=$2
    [[ -s $dir/$name.crt && -s $dir/$name.key ]] && return 0
    vl_ca_ensure
    mkdir -p "$dir"
    local log="$VL_LOG_DIR/ca.log"
    (
        cd "$dir"
        umask 077
        openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" \
            -subj "/O=Vigil dev/CN=localhost"
        cat >"$name.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EOF
        openssl x509 -req -in "$name.csr" -CA "$VL_CA_DIR/ca.crt" -CAkey "$VL_CA_DIR/ca.key" \
            -CAserial "$VL_CA_DIR/ca.srl" -CAcreateserial -days 825 -sha256 -extfile "$name.ext" -out "$name.crt"
        rm -f "$name.csr" "$name.ext"
        chmod 644 "$name.crt"
    ) >>"$log" 2>&1 || vl_fail "$log" "openssl could not issue the $name certificate"
}
