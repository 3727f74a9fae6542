"""The "app" channel of a process that also has Web Push: every message to a patient's app inbox
is also pushed to the patient's phones, so that it arrives with the app closed.

The in-app delivery (the hub) decides the outcome the dispatcher records; the push is best
effort on top, in the background (a slow push service never holds up the outbox), and its
failures are the sender's to log. Messages to the console and care teams are not pushed.
"""

from __future__ import annotations

import asyncio
import logging

from vigil.shell.notify.channels.base import Delivery, SendResult
from vigil.shell.notify.channels.push import AppPush
from vigil.shell.notify.web_push import WebPushSender

log = logging.getLogger("vigil.notify.web_push")


def push_message(delivery: Delivery) -> dict[str, object]:
    """What the service worker shows: title, body, a tag per incident (a newer text replaces the older
    notification), and where tapping it leads."""
    incident = (delivery.payload.get("incident") or {}) if isinstance(delivery.payload, dict) else {}
    return {"title": delivery.subject, "body": delivery.body, "tag": incident.get("incident_id") or delivery.key,
            "key": delivery.key, "url": "/app/#messages", "critical": delivery.critical}


class AppWithWebPush:
    name = "app"

    def __init__(self, app: AppPush, sender: WebPushSender) -> None:
        self.app, self.sender = app, sender
        self.hub = app.hub
        self._pushing: set[asyncio.Task[int]] = set()

    async def send(self, delivery: Delivery) -> SendResult:
        result = await self.app.send(delivery)
        if delivery.audience == "patient" and delivery.address.startswith("patient:"):
            self.push(delivery.address.split(":", 1)[1], push_message(delivery))
        return result

    def push(self, patient_id: str, message: dict[str, object]) -> None:
        """Push in the background; the task is kept until it ends."""
        task = asyncio.get_running_loop().create_task(self.sender.push_to_patient(patient_id, message),
                                                      name="web-push")
        self._pushing.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[int]) -> None:
        self._pushing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("web push failed", extra={"error": type(task.exception()).__name__})

    async def close(self) -> None:
        for task in list(self._pushing):
            task.cancel()
        await self.app.close()
        await self.sender.close()
