"""Prometheus metrics of one Vigil process, in a registry of its own (safe to build twice)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.payloads = Counter("vigil_payloads_received_total", "MQTT vitals payloads received.", registry=r)
        self.readings = Counter("vigil_readings_accepted_total", "Samples accepted into the clinical core.", registry=r)
        self.rejected = Counter("vigil_rejected_total", "Payloads or samples rejected, by reason.", ["reason"], registry=r)
        self.alerts = Counter("vigil_alerts_raised_total", "Alerts raised, by kind and severity.", ["kind", "severity"], registry=r)
        self.alert_events = Counter("vigil_alert_events_total", "Alert lifecycle events.", ["event"], registry=r)
        self.suppressed = Counter("vigil_alerts_suppressed_total", "Pending alerts dropped because the signal could not be trusted.", registry=r)
        # -- what is kept of refused input (issue 12) --
        self.dead_letters_not_kept = Counter(
            "vigil_dead_letters_not_kept_total", "Rejections counted but not kept as a dead-letter row (the device's "
            "rate limit), by reason.", ["reason"], registry=r)
        self.dead_letters_purged = Counter("vigil_dead_letters_purged_total",
                                           "Dead-letter rows deleted by the retention purge.", registry=r)
        self.purged = Counter("vigil_purged_rows_total", "Rows deleted by the retention purge, by kind (readings, "
                              "dead_letters, notifications, explanations, audit).", ["kind"], registry=r)
        self.broker_retained_refused = Counter(
            "vigil_broker_retained_refused_total", "Retained publishes the embedded broker refused to keep, by reason "
            "(topic: not a device status topic; count, bytes: its caps).", ["reason"], registry=r)
        self.broker_retained = Gauge("vigil_broker_retained_messages", "Retained messages the embedded broker holds.",
                                     registry=r)
        self.broker_retained_bytes = Gauge("vigil_broker_retained_bytes",
                                           "Bytes of retained messages the embedded broker holds.", registry=r)
        self.mqtt_refused = Counter(  # issue 11, devices
            "vigil_mqtt_refused_total", "MQTT connects, publishes and subscriptions the embedded broker refused, by "
            "reason (anonymous, bad_credentials, client_id_taken, will_topic, publish_topic, subscribe_topic, "
            "receive_topic).", ["reason"], registry=r)
        self.quality = Counter("vigil_quality_flags_total", "Signal-quality flags on accepted samples.", ["flag"], registry=r)
        self.open_alerts = Gauge("vigil_open_alerts", "Alerts open now.", registry=r)
        self.patients = Gauge("vigil_patients_monitored", "Patients with state in this process.", registry=r)
        self.queue_depth = Gauge("vigil_ingest_queue_depth", "Messages received but not yet processed.", registry=r)
        self.latency = Histogram(
            "vigil_reading_to_alert_seconds", "From receipt of the reading that triggered an alert to the alert.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r,
        )
        self.batch_seconds = Histogram(
            "vigil_process_batch_seconds", "Time to check, score and store one batch of messages.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1), registry=r,
        )

        # -- monitoring coverage (issue 13) --
        self.coverage = Gauge("vigil_patients_coverage", "Patients monitored (cause=monitored) or not monitored, by "
                              "cause (past its bound).", ["cause"], registry=r)
        self.coverage_oldest = Gauge("vigil_oldest_unmonitored_seconds",
                                     "Age of the oldest unmonitored patient's cause.", registry=r)
        self.coverage_uncovered = Gauge("vigil_patients_uncovered", "Patients not monitored without an open "
                                        "technical alert (must be 0).", registry=r)
        self.delivery_failed = Counter("vigil_notifications_undelivered_total", "Recipients an incident event "
                                       "reached on no channel (every channel failed for good).", registry=r)

        # -- the alert desk and the notifier (issue 5) --
        self.incident_events = Counter("vigil_incident_events_total", "Incident lifecycle events.", ["event", "severity"], registry=r)
        self.open_incidents = Gauge("vigil_open_incidents", "Incidents not yet resolved.", registry=r)
        self.notifications_queued = Counter("vigil_notifications_queued_total", "Notifications written to the outbox.", ["channel"], registry=r)
        self.notifications = Counter("vigil_notifications_total", "Delivery attempts, by channel and outcome (sent, retry, failed).",
                                     ["channel", "outcome"], registry=r)
        self.outbox_due = Gauge("vigil_outbox_due", "Outbox rows due for delivery and not yet sent.", registry=r)
        self.raise_to_send = Histogram(
            "vigil_notification_delay_seconds", "From an outbox row written to its first successful send (critical path).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300), registry=r,
        )
        self.explanations = Counter("vigil_explanations_total", "Explanations written, by source and fallback reason.",
                                    ["source", "reason"], registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
