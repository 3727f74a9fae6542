"""`vigil trends install-task|rebuild`: the scaled path's per-minute rollups in InfluxDB (`VIGIL_INFLUX_*`).

`install-task` creates (or brings up to date) the InfluxDB task that recomputes `rollup_1m` every
minute over the last `--lookback` seconds; run it once per bucket when deploying the scaled path.
`rebuild` recomputes a range now: after a backlog older than the lookback was replayed (a worker
down for an hour), or for data written before the task existed. Both are idempotent.
"""

from __future__ import annotations

import argparse
import json
import time

from vigil.tools.iso_time import iso_time


def _rollups():  # -> (InfluxRollups, client)
    from influxdb_client import InfluxDBClient

    from vigil.settings import VigilSettings
    from vigil.shell.trends.influx_rollup import InfluxRollups

    settings = VigilSettings()
    client = InfluxDBClient(url=settings.influx_url, token=settings.influx_token, org=settings.influx_org, timeout=300_000)
    return InfluxRollups(client, settings.influx_org, settings.influx_bucket, settings.rollup_bucket()), client


def _install(args: argparse.Namespace) -> int:
    rollups, client = _rollups()
    try:
        print(json.dumps({"task_id": rollups.install_task(lookback_s=args.lookback), "bucket": rollups.bucket,
                          "rollup_bucket": rollups.rollup_bucket}))
    finally:
        client.close()
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    rollups, client = _rollups()
    until = args.until if args.until is not None else time.time()
    started = time.perf_counter()
    try:
        chunks = rollups.rebuild(args.since, until)
    finally:
        client.close()
    print(json.dumps({"bucket": rollups.bucket, "since": args.since, "until": until, "chunks": chunks,
                      "seconds": round(time.perf_counter() - started, 2)}))
    return 0


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """`vigil bench trends`'s own options, on the bench command's parser."""
    bench.add_argument("--store", choices=("sqlite", "influx", "both"), default="sqlite",
                       help="trends: which store (influx: the real InfluxDB in VIGIL_INFLUX_*)")
    bench.add_argument("--days", type=float, default=7.0, help="trends: the chart patient's days of readings")
    bench.add_argument("--chart-rate", type=float, default=1.0, help="trends: the chart patient's readings per second")
    bench.add_argument("--ward-every", type=float, default=5.0, help="trends: seconds between a ward patient's readings")
    bench.add_argument("--repeats", type=int, default=40, help="trends: timed runs of each query")


def bench(args: argparse.Namespace) -> dict[str, object]:
    """`vigil bench trends`: --patients defaults to 1,000 here (the bench command's 200 is for the others)."""
    from vigil.tools.bench.trends import bench_trends

    return bench_trends(store=args.store, patients=args.patients if args.patients != 200 else 1000, days=args.days,
                        rate=args.chart_rate, ward_every_s=args.ward_every, repeats=args.repeats, seed=args.seed)


def _hook_bench(sub: argparse._SubParsersAction) -> None:
    """`vigil bench trends`: its options on the bench command's parser, and its run before the others'
    (cli.py stays within its 400 lines)."""
    parser = sub.choices["bench"]
    add_bench_arguments(parser)
    others = parser.get_default("func")

    def run(args: argparse.Namespace) -> int:
        if args.target != "trends":
            return others(args)
        print(json.dumps(bench(args)))
        return 0
    parser.set_defaults(func=run)


def register(sub: argparse._SubParsersAction) -> None:
    _hook_bench(sub)
    trends = sub.add_parser("trends", help="the scaled path's per-minute rollups in InfluxDB")
    actions = trends.add_subparsers(dest="trends_command", required=True)
    install = actions.add_parser("install-task", help="create or update the InfluxDB task that rolls up each minute")
    install.add_argument("--lookback", type=int, default=900, help="seconds recomputed each minute (default 900)")
    install.set_defaults(func=_install)
    rebuild = actions.add_parser("rebuild", help="recompute the rollups of a range now")
    rebuild.add_argument("--since", type=iso_time, required=True, help="ISO 8601 (UTC without a zone)")
    rebuild.add_argument("--until", type=iso_time, default=None, help="ISO 8601; default now")
    rebuild.set_defaults(func=_rebuild)
