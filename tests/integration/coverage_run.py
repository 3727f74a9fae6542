"""One run of tests/integration/test_scaled_coverage.py: the scaled stack (notifier, gateway, two
workers), a wearable per case, the faults together, each recovery once its alert is stored, and
a Timeline of what PostgreSQL held and when this run first saw it.

The cases are named as in the test (`offline`, `rejected`, ... `healthy`); a few need their own
staging here: the clock-behind wearable is wrong from its first message (the core's 60 s
`clock_for_s` is no setting), the off-wrist one uploads 21 min of its past at once (poor signal
is 20 min of the device's time), the never-seen one logs in only to recover, and one healthy
wearable has a hypertensive crisis amid the others' faults and sends one bad message.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, select, text

from vigil.shell.stores.influx_tokens import create_service_token
from vigil.shell.stores.tables import alerts, incidents, outbox
from vigil.tools.ports import free_port
from vigil.tools.stack import ServiceStack, run_topics
from vigil_simulators.cohort import parse_scenarios, plan_cohort

from coverage_devices import CLOCK_BEHIND, CRISIS, DROPPED, GOOD, OFF_WRIST, RENAMED, Fleet, Wearable
from stack import consumer_group, enrol_devices, influx_counts_by_patient, migrate_shared, own_schema, wait_for, write_roster

WORKERS = ("w1", "w2")


def password_for(device_id: str) -> str:
    return f"{device_id}-secret"


@dataclass
class Timeline:
    """What happened, on the wall clock (and the device's, for the off-wrist upload)."""

    workers_ready: float = 0.0
    fault: dict[str, float] = field(default_factory=dict)  # case -> fault time
    recovery: dict[str, float] = field(default_factory=dict)  # case -> its first good sample
    seen: dict[tuple[str, str], float] = field(default_factory=dict)  # (alert_id, raised|cleared) -> first seen in PG
    rows: dict[str, dict] = field(default_factory=dict)  # alert_id -> the alerts row, last read
    patient: dict[str, str] = field(default_factory=dict)  # case -> patient id
    crisis_t: float = 0.0
    one_bad_message_t: float = 0.0
    fleet_errors: list = field(default_factory=list)
    coverage: list = field(default_factory=list)  # (t, worker, its /healthz coverage), sampled
    incidents: dict[str, dict] = field(default_factory=dict)  # incident_id -> the incidents row, last read
    incident_seen: dict[tuple[str, str], float] = field(default_factory=dict)  # (incident_id, opened|resolved)
    outbox: list = field(default_factory=list)  # the desk's notifications (recipient_id, event, incident_id)

    def incidents_of(self, case: str, category: str) -> list[dict]:
        return sorted((r for r in self.incidents.values() if r["patient_id"] == self.patient[case]
                       and r["category"] == category), key=lambda r: r["opened_t"])

    def alerts_of(self, case: str) -> list[dict]:
        return sorted((r for r in self.rows.values() if r["patient_id"] == self.patient[case]),
                      key=lambda r: r["raised_t"])


def read_alerts(engine, run_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(alerts.c.alert_id, alerts.c.patient_id, alerts.c.kind, alerts.c.category,
                                   alerts.c.state, alerts.c["values"], alerts.c.onset_t, alerts.c.raised_t,
                                   alerts.c.cleared_t).where(alerts.c.patient_id.like(f"{run_id}-%"))).all()
    return [dict(row._mapping) for row in rows]


def read_incidents(engine, run_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(incidents.c.incident_id, incidents.c.patient_id, incidents.c.category,
                                   incidents.c.state, incidents.c.opened_t, incidents.c.resolved_t)
                            .where(incidents.c.patient_id.like(f"{run_id}-%"))).all()
    return [dict(row._mapping) for row in rows]


def upload_off_wrist_past(w: Wearable, now: float) -> float:
    """21 min of the wearable's past at once: 4 min on the wrist, then off it, a sample every 10 s.
    The fault's onset, on the device's clock."""
    onset = now - 21 * 60
    samples = [w.sample(t, t, GOOD if t < onset else OFF_WRIST) for t in range(int(now - 25 * 60), int(now), 10)]
    for i in range(0, len(samples), 30):
        w.publish(samples[i:i + 30])
    return onset


class CoverageRun:
    """The stack, the wearables and the timeline of one run. `kinds`: case -> the alert kind
    whose appearance starts its recovery; `env`: the bounds and settings for every service."""

    def __init__(self, servers: dict[str, str], workdir: Path, names: list[str], kinds: dict[str, str],
                 env: dict[str, str], period_s: float) -> None:
        from influxdb_client import InfluxDBClient

        self.servers, self.kinds, self.period_s = servers, kinds, period_s
        self.run_id = run_id = "c" + uuid.uuid4().hex[:8]
        self.began = time.time()
        self.influx = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"],
                                     org=servers["VIGIL_INFLUX_ORG"])
        self.bucket = self.influx.buckets_api().create_bucket(bucket_name=f"vitals-{run_id}", org=servers["VIGIL_INFLUX_ORG"])
        self.processor_token = create_service_token(self.influx, self.bucket, "processor")  # write, this bucket only
        full = {**os.environ, **run_topics(run_id), **env, "VIGIL_INFLUX_BUCKET": self.bucket.name,
                "VIGIL_PROCESSOR_INFLUX_TOKEN": self.processor_token.token,
                "VIGIL_MQTT_SHARED_GROUP": f"ingest-{run_id}", "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-{run_id}",
                "VIGIL_LOG_LEVEL": "INFO"}
        self.services = ServiceStack(full, workdir, stop_grace_s=20)
        # The notifier's desk in a schema of its own: the shared database holds other runs' incidents.
        self.schema = f"n{run_id}"
        self.engine = create_engine(servers["VIGIL_DATABASE_URL"])
        migrate_shared(servers)  # the processor's alerts: the shared schema, on its own role
        urls = own_schema(servers, self.schema)  # made and granted by the owner; the notifier on its own role
        self.desk_url = urls["notifier"]
        self.desk = create_engine(urls["owner"])
        plan = plan_cohort(len(names), 13, time.time(), 600, parse_scenarios("none"), id_prefix=f"{run_id}-")
        devices = {name: p.device_id for name, p in zip(names, plan.patients)}
        self.timeline = Timeline(patient={name: p.patient_id for name, p in zip(names, plan.patients)})
        self.services.env["VIGIL_ROSTER"] = str(write_roster(workdir / "roster.yaml", plan.roster()))
        enrol_devices(list(devices.values()), password_for)
        self.wearables = {name: Wearable(d, servers["VIGIL_MQTT_DEVICE_URL"], password_for(d), run_id, seed=i)
                          for i, (name, d) in enumerate(devices.items())}
        self.fleet = Fleet([w for name, w in self.wearables.items() if name != "never_seen"], period_s)

    def step(self, what: str) -> None:
        print(f"[scaled coverage +{time.time() - self.began:.1f} s] {what}", flush=True)

    def start(self) -> None:
        """Notifier, gateway, workers; once the workers' partitions are settled, the wearables."""
        services, timeline = self.services, self.timeline
        services.create_topics()  # as the Kafka admin: no service may create topics
        shared = dict(services.env)
        services.env["VIGIL_NOTIFIER_DATABASE_URL"] = self.desk_url
        services.start_ready("notifier", "notifier", timeout=60, statuses=("ok", "degraded"))
        services.env = shared
        services.start_ready("gateway", "ingest", "--id", f"gw-{self.run_id}", timeout=60, statuses=("ok",))
        for name in WORKERS:
            services.start(name, "processor", "worker", port=free_port())
        for name in WORKERS:
            services.wait_healthy(name, 90, statuses=("ok", "degraded"))
        timeline.workers_ready = time.time()
        # Watching starts at the settled workers' next check: the never-seen patient's fault.
        timeline.fault["never_seen"] = self.settle()
        self.step("workers settled")
        w = self.wearables
        for name, wearable in w.items():
            if name != "never_seen":
                wearable.log_in()
        timeline.fault["untrusted"] = upload_off_wrist_past(w["untrusted"], time.time())
        w["untrusted"].mode = OFF_WRIST
        w["clock_behind"].mode = CLOCK_BEHIND
        timeline.fault["clock_behind"] = time.time()
        self.fleet.start()
        sending = {p for name, p in timeline.patient.items() if name != "never_seen"}
        wait_for(lambda: sending <= set(influx_counts_by_patient(self.servers, self.bucket.name)), 60,
                 "every sending wearable's readings stored")
        time.sleep(2 * self.period_s)

    def settle(self) -> float:
        """Wait until both workers are in a stable consumer group (for 3 s); since when.

        No reading goes out before: a rebalance replays what a worker applied but had not
        committed, and the replay counts as the device's duplicates (the finding of
        tests/unit/shell/pipeline/test_replay_coverage.py)."""
        group, bootstrap = self.services.env["VIGIL_PROCESSOR_APP_ID"], self.servers["VIGIL_KAFKA_BOOTSTRAP"]
        since: list[float] = []

        def settled() -> bool:
            if consumer_group(bootstrap, group) != ("Stable", len(WORKERS)):
                since.clear()
                return False
            since[:] = since or [time.time()]
            return time.time() - since[0] >= 3

        wait_for(settled, 90, "the workers' consumer group to settle")
        return since[0]

    def inject(self, faults: dict[str, str]) -> float:
        """Every fault at once (case -> wearable mode; `dropped` drops the connection). Its time."""
        self.step("faults")
        fault_t = time.time()
        with self.fleet.lock:
            for name, mode in faults.items():
                wearable = self.wearables[name]
                if mode == DROPPED:
                    self.timeline.fault[name] = time.time()
                    wearable.drop_connection()
                else:
                    wearable.mode, wearable.fault_t = mode, fault_t
                    self.timeline.fault[name] = fault_t
        self.fault_t = fault_t
        return fault_t

    def healthy_events(self, now: float) -> None:
        """A hypertensive crisis amid the others' faults (three messages of it, from 4 s in), and
        one bad message between good ones from the other healthy wearable (6 s in)."""
        timeline, crisis = self.timeline, self.wearables["healthy_crisis"]
        if not timeline.crisis_t and now >= self.fault_t + 4:
            with self.fleet.lock:
                crisis.mode, timeline.crisis_t = CRISIS, now
        elif crisis.mode == CRISIS and now >= timeline.crisis_t + 3 * self.period_s:
            with self.fleet.lock:
                crisis.mode = GOOD
        if not timeline.one_bad_message_t and now >= self.fault_t + 6:
            with self.fleet.lock:
                self.wearables["healthy"].once, timeline.one_bad_message_t = RENAMED, now

    def recover(self, name: str) -> None:
        """Good data again (back in range, the clock set, on the wrist...); its first sample's time."""
        w = self.wearables[name]
        with self.fleet.lock:
            if name in ("offline", "never_seen"):
                w.log_in()  # a new connection, `online`, then its data
            if name == "never_seen":
                self.fleet.wearables.append(w)
            w.mode = GOOD
            self.timeline.recovery[name] = time.time() - (int(self.period_s) - 1)  # the message's oldest sample
            w.publish_now(int(self.period_s))

    def poll(self) -> None:
        """Read alerts, incidents and the workers' coverage; note when each change was first seen."""
        now, timeline = time.time(), self.timeline
        for row in read_alerts(self.engine, self.run_id):
            timeline.rows[row["alert_id"]] = row
            timeline.seen.setdefault((row["alert_id"], "raised"), now)
            if row["cleared_t"] is not None:
                timeline.seen.setdefault((row["alert_id"], "cleared"), now)
        for row in read_incidents(self.desk, self.run_id):
            timeline.incidents[row["incident_id"]] = row
            timeline.incident_seen.setdefault((row["incident_id"], "opened"), now)
            if row["resolved_t"] is not None:
                timeline.incident_seen.setdefault((row["incident_id"], "resolved"), now)
        for name in WORKERS:
            try:
                timeline.coverage.append((now, name, self.services.health(name).get("coverage")))
            except OSError:
                pass

    def pending(self) -> list[str]:
        """The cases whose alert has not yet cleared, or whose incident has not yet resolved."""
        timeline = self.timeline
        return [name for name, kind in self.kinds.items() if not (
            name in timeline.recovery
            and any(r["cleared_t"] is not None and r["kind"] == kind for r in timeline.alerts_of(name))
            and any(r["resolved_t"] is not None for r in timeline.incidents_of(name, "technical")))]

    def watch(self, timeout_s: float, settle_s: float) -> Timeline:
        """Recover each case once its alert is stored; until every case is closed, or `timeout_s`."""
        timeline, pending = self.timeline, list(self.kinds)
        deadline = self.fault_t + timeout_s
        while time.time() < deadline:
            self.healthy_events(time.time())
            self.poll()
            for name, kind in self.kinds.items():
                if name not in timeline.recovery and any(r["kind"] == kind for r in timeline.alerts_of(name)):
                    self.recover(name)
            pending = self.pending()
            if not pending and timeline.crisis_t and self.wearables["healthy_crisis"].mode == GOOD:
                self.step("every alert cleared, every incident resolved")
                break
            time.sleep(0.5)
        else:
            self.step(f"gave up waiting for {pending}")
        time.sleep(settle_s)  # anything raised late shows up too
        self.poll()
        with self.desk.connect() as conn:
            timeline.outbox = [dict(r._mapping) for r in conn.execute(
                select(outbox.c.recipient_id, outbox.c.event, outbox.c.incident_id, outbox.c.status))]
        timeline.fleet_errors = list(self.fleet.errors)
        return timeline

    def close(self) -> None:
        self.fleet.close()
        self.services.stop()
        for w in self.wearables.values():
            try:
                w.clear_status()  # nothing of this run left retained on the shared broker
            except Exception:  # noqa: BLE001 - best effort, after the run
                pass
        self.desk.dispose()
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))
        self.engine.dispose()
        self.influx.authorizations_api().delete_authorization(self.processor_token)
        self.influx.buckets_api().delete_bucket(self.bucket)
        self.influx.close()
