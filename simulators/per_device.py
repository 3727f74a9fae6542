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

from vigil.simulators.fleet import Fleet, FleetClock
from vigil.simulators.publisher import PublishStats, connect


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
    infos: list[mqtt.MQTTMessageInfo] = []

    def send(out) -> None:
        client = clients.get(out.device_id) or next(iter(clients.values()))
        infos.append(client.publish(out.topic, out.payload, qos=1, retain=out.retain))
        stats.messages += 1
        stats.samples += out.sample_count

    try:
        for out in fleet.greetings():
            send(out)
        sim_now = fleet.plan.start_t
        step = fleet.period * 50
        while sim_now < sim_end_t and not stop.is_set():
            sim_now = min(sim_now + step, sim_end_t) if clock is None else min(clock.sim_time(time.time()), sim_end_t)
            for out in fleet.batches_until(sim_now):
                send(out)
            if clock is not None:
                stop.wait(0.05)
        for out in fleet.farewells(sim_now):
            send(out)
        for info in infos:
            info.wait_for_publish(timeout=30)
    finally:
        stats.wall_s = time.time() - started
        for client in clients.values():
            client.disconnect()
            client.loop_stop()
    return stats
