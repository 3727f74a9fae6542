"""`vigil run`: the embedded runtime for real devices, until SIGINT or SIGTERM."""

from __future__ import annotations

import logging

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.runtimes.shared.skeleton import registry_for, until_signalled
from vigil.settings import VigilSettings

log = logging.getLogger("vigil.run")


async def serve(settings: VigilSettings) -> int:
    if settings.roster is None:
        log.warning("no roster: every device is unknown and its payloads go to the dead-letter store",
                    extra={"hint": "set VIGIL_ROSTER or --roster"})
    registry = registry_for(settings)
    runtime = EmbeddedRuntime(settings, registry)
    await runtime.start()
    log.info("vigil running", extra={"mqtt": runtime.mqtt_url, "http_port": settings.http_port,
                                     "patients": len(registry), "store": settings.sqlite_url().split("///")[0]})
    await until_signalled()
    # Devices may have delivered more than was processed: process it before the graceful stop.
    log.info("vigil stopping: draining")
    await runtime.drain()
    await runtime.stop()
    return 0
