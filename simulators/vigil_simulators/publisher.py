"""Publish a simulated fleet over MQTT with paho, on a wall clock or as fast as possible."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from vigil.shell.contract.topics import status_topic
from vigil.shell.mqtt.client import mqtt_client
from vigil_simulators.fleet import Fleet, FleetClock, Outgoing


@dataclass(slots=True)
class PublishStats:
    messages: int = 0
    samples: int = 0
    wall_s: float = 0.0
    sent_at: dict[str, float] = field(default_factory=dict)


def connect(url: str, client_id: str, *, username: str | None = None, password: str | None = None,
            will_device: str | None = None, ca_file: str | None = None) -> mqtt.Client:
    client, host, port = mqtt_client(url, client_id, username=username, password=password, ca_file=ca_file)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if will_device:
        client.will_set(status_topic(will_device), f'{{"v":1,"device_id":"{will_device}","state":"offline"}}', qos=1, retain=True)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    return client


def drive_fleet(
    fleet: Fleet,
    publish: Callable[[Outgoing], mqtt.MQTTMessageInfo],
    clock: FleetClock | None,
    sim_end_t: float,
    stop: threading.Event,
    stats: PublishStats,
    on_sent: Callable[[Outgoing, float], None] | None = None,
) -> None:
    """Send a fleet's greetings, batches (paced to `clock`, or flat out) and farewells through
    `publish`, then wait until the broker has acknowledged every QoS 1 message: a broker may
    drop what is still in flight when its publisher goes away."""
    unacknowledged: list[mqtt.MQTTMessageInfo] = []

    def send(out: Outgoing) -> None:
        unacknowledged.append(publish(out))
        if len(unacknowledged) > 5000:  # keep the list short: drop what the broker has acknowledged
            unacknowledged[:] = [i for i in unacknowledged if not i.is_published()]
        stats.messages += 1
        stats.samples += out.sample_count
        if on_sent is not None:
            on_sent(out, time.time())

    for out in fleet.greetings():
        send(out)
    sim_now = fleet.plan.start_t
    while sim_now < sim_end_t and not stop.is_set():
        if clock is None:
            sim_now = min(sim_now + fleet.period * 50, sim_end_t)
        else:
            sim_now = min(clock.sim_time(time.time()), sim_end_t)
        for out in fleet.batches_until(sim_now):
            send(out)
        if clock is not None:
            stop.wait(0.05)
    for out in fleet.farewells(sim_now):
        send(out)
    deadline = time.time() + 120
    for info in unacknowledged:
        info.wait_for_publish(timeout=max(0.1, deadline - time.time()))


def publish_fleet(
    fleet: Fleet,
    url: str,
    clock: FleetClock | None,
    sim_end_t: float,
    *,
    stop: threading.Event | None = None,
    on_sent: Callable[[Outgoing, float], None] | None = None,
    client_id: str = "vigil-simulator",
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
) -> PublishStats:
    """Publish every batch up to `sim_end_t`. With a clock, pace to it; without, go flat out.

    Waits until the broker has acknowledged every QoS 1 message before returning.
    """
    stop = stop or threading.Event()
    client = connect(url, client_id, username=username, password=password, ca_file=ca_file)
    started = time.time()
    stats = PublishStats()
    try:
        drive_fleet(fleet, lambda out: client.publish(out.topic, out.payload, qos=1, retain=out.retain),
                    clock, sim_end_t, stop, stats, on_sent)
    finally:
        stats.wall_s = time.time() - started
        client.disconnect()
        client.loop_stop()
    return stats
