"""HTTPS settings refused at start (issue 15): a certificate without its key, a key others can read, a
file that is not a key; and the InfluxDB retention rules derived from VIGIL_RETAIN_*_DAYS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vigil.runtimes.shared.https import HttpTransport
from vigil.settings import SettingsError, VigilSettings
from vigil.shell.trends.influx_buckets import retention_seconds, shard_group_seconds

sys.path.insert(0, str(Path(__file__).parents[3] / "attacks"))
from mqtt_attacker import make_ca  # noqa: E402 - the attacker suite's test CA


def test_no_certificate_is_plain_http():
    assert HttpTransport.from_settings(VigilSettings()).tls is None


def test_a_certificate_and_an_owner_only_key_serve_tls(tmp_path):
    _, cert, key = make_ca(tmp_path)
    os.chmod(key, 0o600)
    assert HttpTransport.from_settings(VigilSettings(http_tls_cert=cert, http_tls_key=key)).tls is not None


def test_refused_at_start(tmp_path):
    _, cert, key = make_ca(tmp_path)
    with pytest.raises(SettingsError, match="go together"):
        HttpTransport.from_settings(VigilSettings(http_tls_cert=cert))
    os.chmod(key, 0o644)
    with pytest.raises(SettingsError, match="readable by group or others"):
        HttpTransport.from_settings(VigilSettings(http_tls_cert=cert, http_tls_key=key))
    os.chmod(cert, 0o600)
    with pytest.raises(SettingsError, match="cannot load"):
        HttpTransport.from_settings(VigilSettings(http_tls_cert=key, http_tls_key=cert))  # swapped


def test_influx_retention_rules():
    assert retention_seconds(0) == 0 and retention_seconds(400) == 400 * 86400
    with pytest.raises(ValueError, match="at least an hour"):
        retention_seconds(0.01)
    assert [shard_group_seconds(s) for s in (0, 400 * 86400, 30 * 86400, 3600)] == [604800, 604800, 86400, 3600]
