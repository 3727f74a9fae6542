#!/usr/bin/env bash
# Install Vigil with its test dependencies into .venv, start the real servers the integration
# tests need (deploy/local/up: Mosquitto, Kafka, InfluxDB, PostgreSQL,
# Keycloak on 127.0.0.1), and run
# the whole test suite. Usage: bash tests/run.sh [pytest args…]
# VIGIL_SKIP_SERVERS=1 runs without servers (the integration tests then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/vigil/pip}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
if [ "${VIGIL_SKIP_SERVERS:-0}" != "1" ]; then
  VIGIL_CHROMIUM="$(deploy/local/browser)"  # for the ward console's browser test
  export VIGIL_CHROMIUM
  deploy/local/up >/dev/null
  set -a
  # shellcheck disable=SC1091
  . "${VIGIL_LOCAL_DIR:-$HOME/.cache/vigil/local}/env"
  set +a
  export VIGIL_INTEGRATION=1
fi
exec .venv/bin/python -m pytest "$@"
