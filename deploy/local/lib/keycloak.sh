# shellcheck shell=bash
# Keycloak (the reference OpenID Connect provider for the SSO tests), from Maven Central.
# Sourced after lib/common.sh.
#
# `start-dev` on 127.0.0.1:18180 (management 18190) with an in-memory H2 database: every start
# imports the `vigil` realm afresh from deploy/local/keycloak/vigil-realm.json, so a test run
# never sees users or sessions left over from an earlier one. start-dev is for tests only:
# plain HTTP, a throw-away database, relaxed hostname checks (docs/security.md).

KEYCLOAK_VERSION="${VIGIL_KEYCLOAK_VERSION:-26.4.7}"
KEYCLOAK_PORT="${VIGIL_KEYCLOAK_PORT:-18180}"
KEYCLOAK_MGMT_PORT="${VIGIL_KEYCLOAK_MGMT_PORT:-18190}"
KEYCLOAK_HEAP="${VIGIL_KEYCLOAK_HEAP:--Xms64m -Xmx768m}"
KEYCLOAK_ADMIN_PASSWORD="vigil-keycloak-admin-dev-password"
KEYCLOAK_CACHE="$VIGIL_CACHE_DIR/keycloak/$KEYCLOAK_VERSION"
KEYCLOAK_HOME="$KEYCLOAK_CACHE/keycloak-$KEYCLOAK_VERSION"
KEYCLOAK_REALM_FILE="$VL_DEPLOY_DIR/keycloak/vigil-realm.json"
KEYCLOAK_URL="http://127.0.0.1:$KEYCLOAK_PORT"

keycloak_installed() { [[ -f $KEYCLOAK_CACHE/.complete ]] && command -v java >/dev/null; }

# mvn fetches the server distribution (tar.gz) into the shared Maven cache; it is unpacked once.
keycloak_install() {
    keycloak_installed && return 0
    command -v java >/dev/null || vl_apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || vl_apt_install maven
    local log="$VIGIL_CACHE_DIR/keycloak/mvn-$KEYCLOAK_VERSION.log" t0=$SECONDS
    local gav="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz"
    local tgz="$VIGIL_CACHE_DIR/m2/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
    mkdir -p "$KEYCLOAK_CACHE"
    vl_log "fetching Keycloak $KEYCLOAK_VERSION ($gav) from Maven Central"
    mvn -B -q -Dmaven.repo.local="$VIGIL_CACHE_DIR/m2" dependency:get -Dartifact="$gav" -Dtransitive=false \
        >"$log" 2>&1 || vl_fail "$log" "mvn could not fetch $gav"
    [[ -s $tgz ]] || vl_die "mvn reported success but $tgz is missing"
    rm -rf "$KEYCLOAK_HOME"
    tar -xzf "$tgz" -C "$KEYCLOAK_CACHE" || vl_die "could not unpack $tgz"
    [[ -x $KEYCLOAK_HOME/bin/kc.sh ]] || vl_die "no bin/kc.sh in $tgz"
    touch "$KEYCLOAK_CACHE/.complete"
    vl_log "Keycloak $KEYCLOAK_VERSION installed in $((SECONDS - t0))s"
}

keycloak_healthy() {
    curl -fsS -o /dev/null --max-time 5 "$KEYCLOAK_URL/realms/vigil/.well-known/openid-configuration"
}

keycloak_start() {
    if vl_alive keycloak && keycloak_healthy; then return 0; fi
    vl_stop_pid keycloak 20
    vl_require_free_port keycloak "$KEYCLOAK_PORT"
    vl_require_free_port keycloak "$KEYCLOAK_MGMT_PORT"
    [[ -f $KEYCLOAK_REALM_FILE ]] || vl_die "missing $KEYCLOAK_REALM_FILE"
    # --import-realm reads <home>/data/import; the committed realm replaces whatever is there.
    mkdir -p "$KEYCLOAK_HOME/data/import"
    rm -f "$KEYCLOAK_HOME/data/import"/*.json
    cp "$KEYCLOAK_REALM_FILE" "$KEYCLOAK_HOME/data/import/vigil-realm.json"
    local t0=$SECONDS
    vl_spawn keycloak env JAVA_OPTS_KC_HEAP="$KEYCLOAK_HEAP" \
        KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD="$KEYCLOAK_ADMIN_PASSWORD" \
        "$KEYCLOAK_HOME/bin/kc.sh" start-dev --import-realm --db=dev-mem \
        --http-host=127.0.0.1 --http-port="$KEYCLOAK_PORT" \
        --http-management-port="$KEYCLOAK_MGMT_PORT" --health-enabled=true
    vl_wait_until keycloak 300 keycloak_healthy
    vl_log "keycloak ready in $((SECONDS - t0))s"
}

keycloak_stop() { vl_stop_pid keycloak 30; }

keycloak_status() {
    if vl_alive keycloak && keycloak_healthy; then
        echo "keycloak   ok    $KEYCLOAK_URL realm=vigil ($KEYCLOAK_VERSION, start-dev)"
    else
        echo "keycloak   DOWN  $KEYCLOAK_URL"; return 1
    fi
}

# Dev-only values, also committed in the realm file; a hospital's own IdP issues its own.
keycloak_env() {
    echo "export VIGIL_KEYCLOAK_URL=$KEYCLOAK_URL"
    echo "export VIGIL_KEYCLOAK_ADMIN_PASSWORD=$KEYCLOAK_ADMIN_PASSWORD"
    echo "export VIGIL_OIDC_ISSUER=$KEYCLOAK_URL/realms/vigil"
    echo "export VIGIL_OIDC_CLIENT_ID=vigil-web"
    echo "export VIGIL_OIDC_CLIENT_SECRET=vigil-web-dev-secret-not-for-production"
    echo "export VIGIL_OIDC_REDIRECT_URI=http://127.0.0.1:8080/auth/oidc/callback"
    echo "export VIGIL_OIDC_ROLE_GROUPS='{\"/roles/physician\": \"physician\", \"/roles/nurse\": \"nurse\", \"/roles/ward_admin\": \"ward_admin\"}'"
    echo "export VIGIL_OIDC_SERVICE_CLIENTS='[\"vigil-fhir\"]'"
    echo "export VIGIL_OIDC_FHIR_TEST_SECRET=vigil-fhir-dev-secret-not-for-production"
}
