"""A store created by an earlier version (the alerts table before issue 5) keeps working:
missing columns are added, dropped ones relaxed, rows kept. SQLite, and PostgreSQL when
deploy/local runs."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from vigil.shell.stores.rows import AlertRow
from vigil.shell.stores.sql import SqlStore, WriteBatch

OLD_ALERTS = """CREATE TABLE alerts (
    alert_id VARCHAR(32) PRIMARY KEY, patient_id VARCHAR(64) NOT NULL, kind VARCHAR(32) NOT NULL,
    category VARCHAR(16) NOT NULL, severity VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL, rule TEXT NOT NULL,
    "values" JSON NOT NULL, news2 JSON, contributors JSON, model_version VARCHAR(64), onset_t FLOAT NOT NULL,
    raised_t FLOAT NOT NULL, escalation_level INTEGER NOT NULL, acknowledged_t FLOAT, cleared_t FLOAT,
    patient_message TEXT, clinician_summary TEXT)"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def old_store_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite'}"
        engine = create_engine(url)
        yield url, engine
        engine.dispose()
        return
    base = os.environ.get("VIGIL_DATABASE_URL", "")
    if os.environ.get("VIGIL_INTEGRATION") != "1" or not base.startswith("postgresql"):
        pytest.skip("PostgreSQL not started here: tests/run.sh starts it with deploy/local/up")
    schema = "u" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    yield url, engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_an_earlier_alerts_table_is_upgraded_in_place(old_store_url):
    url, engine = old_store_url
    with engine.begin() as conn:
        conn.execute(text(OLD_ALERTS))
        conn.execute(text("""INSERT INTO alerts (alert_id, patient_id, kind, category, severity, state, rule, "values",
                             onset_t, raised_t, escalation_level) VALUES ('al-old', 'p-1', 'fever', 'clinical',
                             'medium', 'open', 'T >= 38.1', '{}', 1.0, 2.0, 0)"""))
    store = SqlStore(url)
    try:
        store.write(WriteBatch(alerts=[AlertRow(
            alert_id="al-new", patient_id="p-1", kind="hypoxaemia", category="clinical", severity="high",
            state="open", rule="SpO2 <= 91 %", values={"spo2_pct": 89}, news2=None, contributors=[],
            model_version=None, onset_t=3.0, raised_t=4.0, cleared_t=None,
            baselines={"spo2": 97.0}, trends={"spo2": -3.0}, patient_message=None, clinician_summary=None)]))
        assert store.alert("al-old")["kind"] == "fever"  # kept
        assert store.alert("al-new")["baselines"] == {"spo2": 97.0}
    finally:
        store.close()
    SqlStore(url).close()  # a second start changes nothing more
