"""The `vigil` command: one entry point for every Vigil process and tool."""
# Long file: one idea, the `vigil` command's parser and dispatch; new tools register their own subcommands
# (tools/*_cli.py `register`) so that it grows no further.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.settings import service_settings
from vigil.tools.iso_time import iso_time

if TYPE_CHECKING:
    from vigil.settings import VigilSettings


def _news2(args: argparse.Namespace) -> int:
    from vigil.core.news2 import Observations, score_news2

    on_oxygen = True if args.oxygen else (False if args.air else None)
    try:
        result = score_news2(Observations(rr=args.rr, spo2=args.spo2, on_oxygen=on_oxygen, sbp=args.sbp, hr=args.hr,
                                          acvpu=args.consciousness, temp=args.temp, spo2_scale=args.scale))
    except ValueError as exc:
        print(f"vigil news2: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vigil.runtimes.embedded.demo import DemoOptions, run_demo
    from vigil.shell.observability.logs import configure_logging

    from vigil.shell.stores.private_files import private_dir

    data_dir = private_dir(args.data_dir)
    configure_logging("INFO", path=str(data_dir / "vigil.log"), stderr_level="WARNING")
    options = DemoOptions(
        patients=args.patients, duration_s=args.duration, seed=args.seed, speed=args.speed, rate_hz=args.rate,
        scenarios=args.scenarios, bad_payload_rate=args.bad_payload_rate, mqtt_url=args.mqtt_url,
        mqtt_port=args.mqtt_port, http_port=args.http_port, data_dir=data_dir, json_summary=args.json,
    )
    summary = asyncio.run(run_demo(options, sys.stdout))
    if args.json:
        print(json.dumps(summary))
    return 0


def _run(args: argparse.Namespace) -> int:
    from vigil.runtimes.embedded.serve import serve
    from vigil.shell.observability.logs import configure_logging

    settings = service_settings(args)
    configure_logging(settings.log_level)
    return asyncio.run(serve(settings))


def _ingest(args: argparse.Namespace) -> int:
    from vigil.runtimes.gateway.gateway import serve_gateway
    from vigil.shell.observability.logs import configure_logging

    settings = service_settings(args)
    configure_logging(settings.log_level)
    if args.retire:
        from vigil.runtimes.gateway.gateway import retire_gateway

        retire_gateway(settings, args.id)
        return 0
    return asyncio.run(serve_gateway(settings, gateway_id=args.id))


def _processor(args: argparse.Namespace) -> int:
    from vigil.runtimes.processor.app import run_worker

    settings = service_settings(args)
    if args.data_dir:
        settings.processor_data_dir = Path(args.data_dir)
    run_worker(settings, web_port=args.web_port)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from vigil_simulators.cohort import parse_scenarios, plan_cohort
    from vigil_simulators.fleet import Fleet, FleetClock
    from vigil_simulators.publisher import publish_fleet

    now = time.time()
    sim_duration = args.duration * args.speed
    clock = FleetClock.ending_now(now, args.duration, args.speed)
    start = args.start if args.start is not None else clock.sim_start
    plan = plan_cohort(args.patients, args.seed, start, sim_duration, parse_scenarios(args.scenarios))
    fleet = Fleet(plan, args.rate, args.batch_size, args.bad_payload_rate)
    if args.truth:
        Path(args.truth).write_text("".join(json.dumps(e.as_dict()) + "\n" for e in plan.truth))
    if args.roster:
        import yaml

        Path(args.roster).write_text(yaml.safe_dump(plan.roster(), sort_keys=False))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            messages = [*fleet.greetings(), *fleet.batches_until(start + sim_duration), *fleet.farewells(start + sim_duration)]
            for out in messages:
                handle.write(json.dumps({"topic": out.topic, "retain": out.retain, "payload": out.payload.decode()}) + "\n")
        print(json.dumps({"messages": len(messages), "samples": fleet.counts.samples, "faults": fleet.counts.faults}))
        return 0
    pace = None if args.fast else FleetClock(now, start, args.speed)
    if args.passwords:  # one connection per device, each with its own login (issue 11)
        from vigil_simulators.per_device import publish_fleet_per_device

        lines = Path(args.passwords).read_text(encoding="utf-8").splitlines()
        passwords = {e["device_id"]: e["password"] for e in map(json.loads, filter(str.strip, lines))}
        stats = publish_fleet_per_device(fleet, args.mqtt_url, pace, start + sim_duration, passwords.__getitem__)
    else:
        stats = publish_fleet(fleet, args.mqtt_url, pace, start + sim_duration, username=args.username,
                              password=args.password, ca_file=args.ca_file)
    print(json.dumps({"messages": stats.messages, "samples": stats.samples, "wall_s": round(stats.wall_s, 2),
                      "faults": fleet.counts.faults, "truth": args.truth}))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from vigil.shell.contract.json_schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.target == "core":
        from vigil.tools.bench.core import bench_core

        result = bench_core(patients=args.patients, readings=args.readings, seed=args.seed)
    elif args.target == "scaled":
        from vigil.tools.bench import scaled

        parts = {"processor": lambda: scaled.bench_processor(messages=args.messages, batch_size=args.batch_size,
                                                              patients=args.patients, seed=args.seed),
                 "gateway": lambda: scaled.bench_gateway(messages=args.messages, batch_size=args.batch_size),
                 "latency": lambda: scaled.bench_latency(seconds=args.seconds, rate_msgs_per_s=args.load,
                                                         batch_size=args.batch_size),
                 "soak": lambda: scaled.bench_latency(seconds=args.seconds, rate_msgs_per_s=args.load,
                                                      batch_size=args.batch_size, soak=True)}
        result = parts[args.part]()
    elif args.target == "notify":
        from vigil.tools.bench.notify import bench_notify

        result = bench_notify(alerts=args.alerts, rate_hz=args.rate)
    elif args.target == "api":
        from vigil.tools.bench.api import bench_api

        result = bench_api(requests=args.requests, patients=args.patients, block=args.block,
                           baseline=Path(args.baseline) if args.baseline else None)
    elif args.target == "fuzz":
        from vigil.tools.bench.fuzz import bench_fuzz

        result = bench_fuzz(payloads=args.payloads, seed=args.seed)
    elif args.target == "logins":
        from vigil.tools.bench.logins import bench_logins

        result = bench_logins(devices=args.patients)
    elif args.target == "coverage":
        from vigil.tools.bench.coverage import bench_coverage

        result = bench_coverage(patients=args.patients if args.patients != 200 else 30, seeds=5, hours=6.0)
    elif args.target == "backup":
        from vigil.tools.bench.backup import bench_backup

        result = bench_backup(patient_days=args.patient_days, rate=args.ingest_rate, phase_s=args.seconds,
                              work_dir=args.work_dir, build_only=args.build_only)
    elif args.target == "ward":  # issue 16: the ward overview over HTTP, alert raised -> row (tools/bench/ward.py)
        result = __import__("vigil.tools.bench.ward", fromlist=["bench_ward"]).bench_ward(
            patients=args.patients if args.patients != 200 else 1000, alerts=30, seed=args.seed)
    elif args.target == "model":
        from vigil_models.cli import bench as bench_model

        result = bench_model(args)
    else:
        from vigil.tools.bench.ingest import bench_ingest

        result = bench_ingest(messages=args.messages, batch_size=args.batch_size, patients=args.patients, seed=args.seed,
                              publishers=args.publishers, logins=args.logins)
    print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Vigil: remote health monitoring for virtual wards.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_runtime_commands(sub)
    _add_tool_commands(sub)
    _add_bench_command(sub)
    _add_audit_command(sub)  # vigil audit export
    __import__("vigil_models.cli", fromlist=["register"]).register(sub)  # vigil model train|evaluate|info
    __import__("vigil.runtimes.notifier.cli", fromlist=["register"]).register(sub)  # vigil notifier
    __import__("vigil.tools.explain_cli", fromlist=["register"]).register(sub)  # vigil explain|explain-eval
    __import__("vigil.tools.dashboards.cli", fromlist=["register"]).register(sub)  # vigil dashboards export|publish
    __import__("vigil.tools.users_cli", fromlist=["register"]).register(sub)  # vigil user …, vigil enrolment-code
    # -- issue 11, devices: vigil device enrol|revoke|list|export-mosquitto ------------------------
    __import__("vigil.tools.device_cli", fromlist=["register"]).register(sub)
    __import__("vigil.tools.trends_cli", fromlist=["register"]).register(sub)  # vigil trends …, vigil bench trends
    # -- issue 15, backup and restore of the embedded store: vigil backup|restore -------------------
    __import__("vigil.tools.backup_cli", fromlist=["register"]).register(sub)
    __import__("vigil.tools.outcomes_cli", fromlist=["register"]).register(sub)  # issue 16: vigil outcomes export
    __import__("vigil.tools.migrate_cli", fromlist=["register"]).register(sub)  # vigil migrate
    __import__("vigil.tools.kafka_topics_cli", fromlist=["register"]).register(sub)  # vigil kafka-topics (as admin)
    __import__("vigil.tools.retention_cli", fromlist=["register"]).register(sub)  # vigil retention run|influx
    return parser


def _add_runtime_commands(sub: argparse._SubParsersAction) -> None:
    """demo, run, ingest, processor worker."""
    demo = sub.add_parser("demo", help="run a simulated virtual ward end to end, in one process, no servers")
    demo.add_argument("--patients", type=int, default=12)
    demo.add_argument("--duration", type=float, default=90.0, help="wall-clock seconds (default 90)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--speed", type=float, default=120.0, help="simulated seconds per wall second (default 120)")
    demo.add_argument("--rate", type=float, default=1 / 15, help="samples per simulated second per patient")
    demo.add_argument("--scenarios", default="all", help="all, none, clinical, or a comma-separated list")
    demo.add_argument("--bad-payload-rate", type=float, default=0.01, help="share of batches sent corrupted")
    demo.add_argument("--mqtt-url", default=None, help="use this broker instead of the embedded one")
    demo.add_argument("--mqtt-port", type=int, default=1883)
    demo.add_argument("--http-port", type=int, default=8080)
    demo.add_argument("--data-dir", default="vigil-data")
    demo.add_argument("--json", action="store_true", help="end with the summary as one JSON line")
    demo.set_defaults(func=_demo)

    run = sub.add_parser("run", help="run the embedded runtime for real devices (settings from VIGIL_* variables)")
    run.add_argument("--roster", default=None, help="roster YAML (or VIGIL_ROSTER)")
    run.set_defaults(func=_run)

    ingest = sub.add_parser("ingest", help="MQTT -> Kafka gateway (scaled mode; VIGIL_MQTT_URL: the broker's service "
                                "listener, VIGIL_KAFKA_BOOTSTRAP)")
    ingest.add_argument("--roster", default=None, help="roster YAML (or VIGIL_ROSTER)")
    ingest.add_argument("--id", default=None, help="gateway id: its persistent MQTT session, client id vigil-gw-ID (default: vigil-ingest-<host>)")
    ingest.add_argument("--http-port", type=int, default=None, help="/healthz and /metrics (default VIGIL_HTTP_PORT)")
    ingest.add_argument("--retire", action="store_true",
                        help="drop this gateway's persistent MQTT session (a gateway taken out of service) and exit")
    ingest.set_defaults(func=_ingest)

    processor = sub.add_parser("processor", help="Faust stream processor (scaled mode)")
    processor_sub = processor.add_subparsers(dest="processor_command", required=True)
    worker = processor_sub.add_parser("worker", help="start one processor worker")
    worker.add_argument("--roster", default=None, help="roster YAML (or VIGIL_ROSTER)")
    worker.add_argument("--web-port", type=int, default=None, help="the worker's web port: /healthz, /metrics")
    worker.add_argument("--data-dir", default=None, help="worker state dir (one per worker)")
    worker.set_defaults(func=_processor)


def _add_tool_commands(sub: argparse._SubParsersAction) -> None:
    """news2, simulate, schema."""
    news2 = sub.add_parser("news2", help="score one set of observations with NEWS2 (RCP 2017)")
    news2.add_argument("--rr", type=float, help="respiration rate, /min")
    news2.add_argument("--spo2", type=float, help="SpO2, %%")
    news2.add_argument("--scale", type=int, choices=(1, 2), default=1, help="SpO2 scale (2: target 88-92 %%)")
    air = news2.add_mutually_exclusive_group()
    air.add_argument("--oxygen", action="store_true", help="on supplemental oxygen")
    air.add_argument("--air", action="store_true", help="on room air")
    news2.add_argument("--sbp", type=float, help="systolic blood pressure, mmHg")
    news2.add_argument("--hr", type=float, help="pulse, /min")
    news2.add_argument("--consciousness", choices=("A", "C", "V", "P", "U"), help="ACVPU")
    news2.add_argument("--temp", type=float, help="temperature, °C")
    news2.set_defaults(func=_news2)

    sim = sub.add_parser("simulate", help="publish a simulated cohort of wearables over MQTT")
    sim.add_argument("--mqtt-url", default=os.environ.get("VIGIL_MQTT_DEVICE_URL", "mqtt://127.0.0.1:1883"),
                     help="the broker's device listener (default: $VIGIL_MQTT_DEVICE_URL, else the embedded broker's)")
    sim.add_argument("--patients", type=int, default=10)
    sim.add_argument("--rate", type=float, default=0.2, help="samples per second per patient (simulated time)")
    sim.add_argument("--duration", type=float, default=60.0, help="wall-clock seconds")
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--start", type=float, default=None, help="simulated start, epoch seconds (default: so it ends now)")
    sim.add_argument("--scenarios", default="all")
    sim.add_argument("--batch-size", type=int, default=4, help="samples per MQTT message")
    sim.add_argument("--bad-payload-rate", type=float, default=0.0)
    sim.add_argument("--truth", default="truth.jsonl", help="write the ground-truth timeline here")
    sim.add_argument("--roster", default=None, help="write the matching roster YAML here")
    sim.add_argument("--output", default=None, help="write messages as JSON lines here instead of publishing")
    sim.add_argument("--fast", action="store_true", help="publish as fast as possible, ignoring the clock")
    sim.add_argument("--ca-file", default=os.environ.get("VIGIL_MQTT_CA_FILE"),
                     help="CA of the broker's certificate, for mqtts:// (default: $VIGIL_MQTT_CA_FILE, else the system's CAs)")
    sim.add_argument("--username", default=None)
    sim.add_argument("--password", default=None)
    sim.add_argument("--passwords", default=None,
                     help="JSON lines of `vigil device enrol` output: each device connects with its own login")
    sim.set_defaults(func=_simulate)

    schema = sub.add_parser("schema", help="export the device contract as JSON Schema files")
    schema.add_argument("--out", default="docs/schema")
    schema.set_defaults(func=_schema)


def _add_bench_command(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure throughput and latency")
    bench.add_argument("target", choices=("core", "ingest", "model", "scaled", "notify", "fuzz", "api", "logins", "coverage",
                                            "backup", "trends", "ward"))
    bench.add_argument("--part", choices=("processor", "gateway", "latency", "soak"), default="processor",
                       help="scaled: which part of the scaled path to measure")
    bench.add_argument("--seconds", type=float, default=30.0, help="scaled latency/soak: how long to run; backup: each phase")
    bench.add_argument("--load", type=float, default=100.0, help="scaled latency/soak: messages per second")
    bench.add_argument("--patients", type=int, default=200)
    bench.add_argument("--readings", type=int, default=200_000, help="core: readings to score")
    bench.add_argument("--messages", type=int, default=20_000, help="ingest: MQTT messages to send")
    bench.add_argument("--batch-size", type=int, default=10, help="ingest: samples per message")
    bench.add_argument("--seed", type=int, default=11)
    bench.add_argument("--payloads", type=int, default=200_000,
                       help="fuzz: payloads through the contract (a tenth as many through the pipeline)")
    bench.add_argument("--publishers", choices=("one", "per-device"), default="one",
                       help="ingest: one MQTT connection for the ward (broker in development mode), or one per device")
    bench.add_argument("--logins", action="store_true",
                       help="ingest: with --publishers per-device, each device logs in with its own credentials")
    bench.add_argument("--alerts", type=int, default=200, help="notify: alerts raised per mode")
    bench.add_argument("--rate", type=float, default=20.0, help="notify: alerts raised per second")
    bench.add_argument("--requests", type=int, default=2000, help="api: GET /api/incidents per side")
    bench.add_argument("--block", type=int, default=50, help="api: requests per side before switching sides")
    bench.add_argument("--baseline", help="api: a source tree to compare with (services/, simulators/, models/)")
    bench.add_argument("--patient-days", type=int, default=10_000,
                       help="backup: patient-days of readings (1 a minute) in the store backed up")
    bench.add_argument("--ingest-rate", type=float, default=1_000.0,
                       help="backup: readings a second stored while the backup runs (20 batches a second)")
    bench.add_argument("--work-dir", default=None, help="backup: where the store and its backup go (default: a temp dir)")
    bench.add_argument("--build-only", action="store_true",
                       help="backup: only build the store in --work-dir (a later run there measures on it)")
    bench.set_defaults(func=_bench)


# -- vigil audit export: the access audit, streamed (issue 11; docs/security.md, "Audit") ---------


def _audit_export(args: argparse.Namespace) -> int:
    import csv
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, inspect

    from vigil.settings import VigilSettings
    from vigil.shell.stores.access_audit import EXPORT_COLUMNS, AuditTrail

    settings = VigilSettings()
    engine = create_engine(settings.database_url or settings.sqlite_url())
    if not inspect(engine).has_table("access_audit"):
        print("vigil audit export: this store has no access audit yet (VIGIL_DATABASE_URL / VIGIL_DATA_DIR)",
              file=sys.stderr)
        return 1
    rows = AuditTrail(engine).export(since=args.since, until=args.until, patient_id=args.patient)
    columns = ("when", *EXPORT_COLUMNS)
    out = csv.DictWriter(sys.stdout, columns, lineterminator="\n") if args.format == "csv" else None
    if out is not None:
        out.writeheader()
    for row in rows:
        row = {"when": datetime.fromtimestamp(row["t"], timezone.utc).isoformat(), **row}
        if out is not None:
            out.writerow(row)
        else:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    engine.dispose()
    return 0


def _add_audit_command(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="the access audit: who read or did what to which patient's data")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_sub.add_parser("export", help="stream the access audit, oldest first (VIGIL_DATABASE_URL or the "
                                  "embedded store in VIGIL_DATA_DIR)")
    export.add_argument("--since", type=iso_time, default=None, help="ISO 8601, inclusive (no zone: UTC)")
    export.add_argument("--until", type=iso_time, default=None, help="ISO 8601, exclusive (no zone: UTC)")
    export.add_argument("--patient", default=None, help="only this patient's rows")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.set_defaults(func=_audit_export)


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from vigil.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:  # its message names the setting, never a secret's value
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # pydantic's own text would quote the values given, secrets included
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or exc.title
            print(f"vigil: setting {where}: {error['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
