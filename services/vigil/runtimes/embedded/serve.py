"""`vigil run`: the embedded runtime for real devices, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.shell.registry import Registry, load_roster
from vigil.settings import VigilSettings

log = logging.getLogger("vigil.run")


async def serve(settings: VigilSettings) -> int:
    if settings.roster is None:
        log.warning("no roster: every device is unknown and its payloads go to the dead-letter store",
                    extra={"hint": "set VIGIL_ROSTER or --roster"})
        registry = Registry()
    else:
        registry = Registry(load_roster(settings.roster))
    runtime = EmbeddedRuntime(settings, registry)
    await runtime.start()
    log.info("vigil running", extra={"mqtt": runtime.mqtt_url, "http_port": settings.http_port,
                                     "patients": len(registry), "store": settings.sqlite_url().split("///")[0]})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("vigil stopping: draining")
    await runtime.drain()
    await runtime.stop()
    return 0
