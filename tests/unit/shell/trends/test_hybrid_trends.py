"""`HybridTrends` on two real SQLite stores: the ward and latest values from one, charts from the
other (the scaled path: PostgreSQL and InfluxDB; the contract on the real servers is
tests/integration/test_trends_hybrid.py). `scaled_trends` follows VIGIL_WARD_TRENDS_SQL."""

from __future__ import annotations

from vigil.settings import VigilSettings
from vigil.shell.stores.rows import ReadingRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.trends.hybrid_trends import HybridTrends, scaled_trends
from vigil.shell.trends.influx_trends import InfluxTrends
from vigil.shell.trends.sql_trends import SqlTrends

T = 1_700_000_040.0


def test_each_question_goes_to_its_store(tmp_path):
    ward, charts = SqlStore(f"sqlite:///{tmp_path}/ward.sqlite"), SqlStore(f"sqlite:///{tmp_path}/charts.sqlite")
    ward.write(WriteBatch(readings=[ReadingRow("pt-1", "ring-1", T + 5, 1, hr=61.0)]))
    charts.write(WriteBatch(readings=[ReadingRow("pt-1", "ring-1", T + 5, 1, hr=99.0)]))
    hybrid = HybridTrends(SqlTrends(ward.engine), SqlTrends(charts.engine))
    assert hybrid.latest(["pt-1"])["pt-1"].vitals["hr"].value == 61.0
    assert hybrid.ward(["pt-1"], T + 60)[0].sparklines["hr"][0].max == 61.0
    assert [b.max for b in hybrid.series("pt-1", "hr", T, T + 60, 60)] == [99.0]
    assert [b.max for b in hybrid.raw_series("pt-1", "hr", T, T + 60, 60)] == [99.0]
    ward.close()
    charts.close()


class _Client:
    def query_api(self) -> object:
        return object()


def test_scaled_trends_follows_the_setting(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/ward.sqlite")
    on = scaled_trends(VigilSettings(influx_bucket="b1"), store.engine, _Client())
    off = scaled_trends(VigilSettings(influx_bucket="b1", ward_trends_sql=False), store.engine, _Client())
    assert isinstance(on, HybridTrends) and isinstance(on.ward_store, SqlTrends) and on.chart_store.bucket == "b1"
    assert isinstance(off, InfluxTrends) and off.bucket == "b1"
    store.close()
