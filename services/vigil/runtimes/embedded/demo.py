"""`vigil demo`: a whole virtual ward in one process, with no server to install.

An embedded broker, a simulated cohort publishing over MQTT on an accelerated clock, the
processor, SQLite, and /healthz + /metrics. Alerts are printed as they fire; at the end the
run is scored against the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from vigil.shell.observability.percentile import percentile
from vigil.shell.pipeline.pipeline import AnnouncedAlert, PipelineTotals
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil_simulators.detection import DetectionSummary, RaisedAlert, TruthEvent, score_detection
from vigil.core.identity import Role
from vigil.shell.registry.roster import DEFAULT_WARD
from vigil.shell.registry import Registry, Roster
from vigil.settings import VigilSettings
from vigil.shell.stores.private_files import private_dir, write_private
from vigil_simulators.cohort import CohortPlan, parse_scenarios, plan_cohort
from vigil_simulators.fleet import Fleet, FleetClock
from vigil_simulators.per_device import publish_fleet_per_device
from vigil_simulators.publisher import PublishStats, publish_fleet


@dataclass(slots=True)
class DemoOptions:
    patients: int = 12
    duration_s: float = 90.0
    seed: int = 7
    speed: float = 120.0
    rate_hz: float = 1 / 15
    batch_size: int = 4
    scenarios: str = "all"
    bad_payload_rate: float = 0.01
    mqtt_url: str | None = None
    mqtt_port: int = 1883
    http_port: int = 8080
    data_dir: Path = Path("vigil-data")
    json_summary: bool = False
    quiet: bool = False


class Console:
    def __init__(self, out: TextIO, started: float, quiet: bool) -> None:
        self.out, self.started, self.quiet = out, started, quiet
        self.first_alert_after_s: float | None = None

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def alert(self, announced: AnnouncedAlert) -> None:
        elapsed = time.time() - self.started
        alert = announced.alert
        sim = datetime.fromtimestamp(alert.raised_t, tz=timezone.utc).strftime("%H:%M")
        if announced.event == "raised":
            if self.first_alert_after_s is None:
                self.first_alert_after_s = elapsed
            self.say(f"[{elapsed:6.1f}s] ALERT {alert.severity.upper():8} {alert.kind} · {alert.patient_id} · sim {sim} UTC")
            self.say(f"          patient:   {announced.patient_message}")
            self.say(f"          clinician: {announced.clinician_summary}")
        else:
            self.say(f"[{elapsed:6.1f}s] {announced.event:>16} {alert.kind} · {alert.patient_id} · severity {alert.severity}")


async def run_demo(options: DemoOptions, out: TextIO) -> dict[str, object]:
    started = time.time()
    console = Console(out, started, options.quiet)
    sim_duration = options.duration_s * options.speed
    clock = FleetClock.ending_now(started, options.duration_s, options.speed)
    plan = plan_cohort(options.patients, options.seed, clock.sim_start, sim_duration, parse_scenarios(options.scenarios))
    registry = Registry(Roster.model_validate(plan.roster()))

    data_dir = options.data_dir
    private_dir(data_dir)
    for stale in data_dir.glob("vigil.sqlite*"):
        stale.unlink()  # every demo starts from a clean ward
    truth_path = data_dir / "truth.jsonl"
    write_private(truth_path, "".join(json.dumps(e.as_dict()) + "\n" for e in plan.truth))

    # The demo is the embedded mode whatever the environment says: its own SQLite file, its own
    # broker unless --mqtt-url is given.
    settings = VigilSettings(data_dir=data_dir, database_url=None, mqtt_url=options.mqtt_url, mqtt_port=options.mqtt_port,
                             http_port=options.http_port)
    runtime = EmbeddedRuntime(settings, registry, clock=lambda: clock.sim_time(time.time()), announce=console.alert)
    await runtime.start()
    console.say(f"Vigil demo: {options.patients} patients, {options.duration_s:g} s at {options.speed:g}x "
                f"({sim_duration / 3600:.1f} simulated hours), seed {options.seed}")
    console.say(f"  MQTT  {runtime.mqtt_url}  (publish to vigil/v1/devices/<id>/vitals)")
    console.say(f"  HTTP  http://{settings.http_host}:{settings.http_port}/healthz  /metrics  /api/alerts")
    console.say(f"  data  {data_dir.resolve()}  (truth: {truth_path.name})")
    # The console needs a login: a nurse of the demo's ward, with a password made for this run only.
    password = runtime.alerting.people.accounts.add("demo", Role.NURSE, wards=[DEFAULT_WARD], display_name="Demo Nurse")
    console.say(f"  console  http://{settings.http_host}:{settings.http_port}/console  (log in as demo / {password})")

    fleet = Fleet(plan, options.rate_hz, options.batch_size, options.bad_payload_rate)
    stop = threading.Event()
    result: dict[str, PublishStats] = {}

    # With its own broker the demo enrols its simulated devices, and each logs in with its own secret
    # and publishes only on its own topics, as a real wearable does (docs/security.md, "Devices").
    passwords = {w.device_id: runtime.credentials.enrol(w.device_id) for w in fleet.wearables} \
        if runtime.broker is not None else None

    def publish() -> None:
        if passwords is None:
            result["stats"] = publish_fleet(fleet, runtime.mqtt_url, clock, plan.start_t + sim_duration, stop=stop)
        else:
            result["stats"] = publish_fleet_per_device(fleet, runtime.mqtt_url, clock, plan.start_t + sim_duration,
                                                       passwords.__getitem__, stop=stop)

    publisher = threading.Thread(target=publish, name="simulator", daemon=True)
    publisher.start()
    try:
        next_progress = time.time() + 10
        while publisher.is_alive():
            await asyncio.sleep(0.2)
            if time.time() >= next_progress:
                next_progress += 10
                totals = runtime.pipeline.totals
                open_now = sum(len(m.open_alerts()) for m in runtime.patients.in_memory())
                console.say(f"[{time.time() - started:6.1f}s] progress: readings {totals.readings}, rejected "
                            f"{sum(totals.rejected.values())}, alerts {sum(totals.alerts_by_kind.values())}, open {open_now}")
        await runtime.drain()
        await runtime.tick(plan.start_t + sim_duration)  # its rows are durable before the last delivery pass
        await asyncio.sleep(0.5)  # the final tick's events are due on the simulated clock, a moment on
        await runtime.alerting.dispatcher.deliver_due()  # what the last batch queued goes out too
        incidents = runtime.alerting.store.incidents(limit=100_000)
        sim_now = clock.sim_time(time.time())
        notifications = Counter(
            f"{r['channel']}:{'deferred (quiet hours)' if r['status'] == 'pending' and r['deliver_after'] > sim_now else r['status']}"
            for r in runtime.alerting.store.outbox_rows(limit=1_000_000))
    finally:
        stop.set()
        await runtime.stop()

    return _summarise(options, console, runtime, plan, fleet, result.get("stats"), incidents, notifications,
                      sim_duration, started)


def _summarise(options: DemoOptions, console: Console, runtime: EmbeddedRuntime, plan: CohortPlan, fleet: Fleet,
               stats: PublishStats | None, incidents: list[dict[str, object]], notifications: Counter[str],
               sim_duration: float, started: float) -> dict[str, object]:
    """Score the run against the simulator's ground truth, print the summary, and return it."""
    totals = runtime.pipeline.totals
    detection = score_detection(
        [TruthEvent.from_dict(e.as_dict()) for e in plan.truth],
        [RaisedAlert(a.patient_id, a.kind, a.category, a.raised_t) for a in totals.raised],
        patient_days=options.patients * sim_duration / 86400, run_end_t=plan.start_t + sim_duration,
    )
    summary: dict[str, object] = {
        "patients": options.patients,
        "simulated_hours": round(sim_duration / 3600, 2),
        "wall_s": round(time.time() - started, 1),
        "published_messages": stats.messages if stats else 0,
        "published_samples": stats.samples if stats else 0,
        "injected_faults": dict(fleet.counts.faults),
        "readings": totals.readings,
        "rejected": sum(totals.rejected.values()),
        "rejected_by_reason": dict(totals.rejected),
        "alerts": sum(totals.alerts_by_kind.values()),
        "alerts_by_kind": dict(totals.alerts_by_kind),
        "sensitivity": detection.sensitivity,
        "false_alerts_per_patient_day": round(detection.false_alerts_per_patient_day, 3),
        "median_detection_delay_s": detection.median_detection_delay_s,
        "detection": detection.as_dict(),
        "first_alert_after_s": None if console.first_alert_after_s is None else round(console.first_alert_after_s, 1),
        "reading_to_alert_p50_s": percentile(totals.alert_latencies_s, 0.5),
        "reading_to_alert_p99_s": percentile(totals.alert_latencies_s, 0.99),
        "incidents": len(incidents),
        "incidents_by_state": dict(Counter(str(i["state"]) for i in incidents)),
        "notifications": dict(notifications),
        "coverage": runtime.coverage.tally(),
        "time_to_technical_alert_s": _time_to_technical_alert(totals),
    }
    _say_summary(console, summary, totals, detection)
    return summary


def _time_to_technical_alert(totals: PipelineTotals) -> dict[str, dict[str, float]]:
    """From each not-monitored cause's onset to its technical alert (simulated seconds), p50 and max."""
    delays: dict[str, list[float]] = {}
    for alert in totals.raised:
        if alert.kind in ("device_offline", "not_monitored"):
            delays.setdefault(str(alert.values.get("cause", alert.kind)), []).append(alert.raised_t - alert.onset_t)
    return {cause: {"p50": round(statistics.median(d), 1), "max": round(max(d), 1), "n": len(d)}
            for cause, d in sorted(delays.items())}


def _say_summary(console: Console, summary: dict[str, object], totals: PipelineTotals, detection: DetectionSummary) -> None:
    console.say("")
    console.say("Summary")
    console.say(f"  readings accepted   {totals.readings}")
    console.say(f"  rejected            {summary['rejected']}  {dict(totals.rejected) or ''}")
    console.say(f"  alerts              {summary['alerts']}  {dict(totals.alerts_by_kind) or ''}")
    console.say(f"  incidents           {summary['incidents']}  {summary['incidents_by_state'] or ''} "
                f"(related alerts grouped; /api/incidents)")
    console.say(f"  notifications       {sum(summary['notifications'].values())}  {summary['notifications'] or ''}")
    console.say(f"  detection           sensitivity {detection.sensitivity} on {detection.clinical_events} clinical events, "
                f"{summary['false_alerts_per_patient_day']} false alerts per patient-day, "
                f"median delay {detection.median_detection_delay_s} s")
    coverage = summary["coverage"]
    console.say(f"  coverage            {coverage['monitored_share'] * 100:.1f} % of {coverage['patient_minutes']:g} "
                f"patient-minutes monitored; {coverage['uncovered_minutes']:g} unmonitored without an alert; "
                f"time to technical alert {summary['time_to_technical_alert_s'] or '-'}")
    if totals.alert_latencies_s:
        console.say(f"  reading to alert    p50 {statistics.median(totals.alert_latencies_s) * 1000:.0f} ms")
    console.say("  Vigil supports clinicians; it does not replace them.")
