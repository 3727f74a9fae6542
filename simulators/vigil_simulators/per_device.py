"""Publish a fleet with one MQTT connection per device, as real wearables do.

Each device logs in with its own username (its device id) and password, sets its last will
(`offline`, retained) and may publish only under its own topic tree on a broker with a
per-device ACL, such as the Mosquitto set up by deploy/local.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from vigil_simulators.fleet import Fleet, FleetClock, Outgoing
from vigil_simulators.publisher import PublishStats, connect, drive_fleet


def publish_fleet_per_device(
    fleet: Fleet,
    url: str,
    clock: FleetClock | None,
    sim_end_t: float,
    password_for: Callable[[str], str],
    *,
    stop: threading.Event | None = None,
) -> PublishStats:
    """Like `publish_fleet`, with a connection per device (waits for every PUBACK)."""
    stop = stop or threading.Event()
    clients: dict[str, mqtt.Client] = {}
    for wearable in fleet.wearables:
        device_id = wearable.device_id
        clients[device_id] = connect(url, f"device-{device_id}", username=device_id,
                                     password=password_for(device_id), will_device=device_id)
    deadline = time.time() + 20
    while not all(c.is_connected() for c in clients.values()):
        if time.time() > deadline:
            refused = [d for d, c in clients.items() if not c.is_connected()]
            raise ConnectionError(f"{len(refused)} device(s) could not log in, e.g. {refused[:3]}")
        time.sleep(0.05)
    stats = PublishStats()
    started = time.time()
    fallback = next(iter(clients.values()))

    def publish(out: Outgoing) -> mqtt.MQTTMessageInfo:
        return clients.get(out.device_id, fallback).publish(out.topic, out.payload, qos=1, retain=out.retain)

    try:
        drive_fleet(fleet, publish, clock, sim_end_t, stop, stats)
    finally:
        stats.wall_s = time.time() - started
        for client in clients.values():
            client.disconnect()
            client.loop_stop()
    return stats
