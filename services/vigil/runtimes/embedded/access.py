"""Who may connect to the embedded broker, and what each client may publish, subscribe to and receive.

A device logs in with its device id as username and the secret `vigil device enrol` printed
(`DeviceCredentials`, checked on a worker thread, never on the event loop). Then it may publish only
`vigil/v1/devices/{its id}/vitals` and `…/status`, set its last will only on its own status topic,
subscribe only to its own `…/errors` (no wildcards), and never take over another client's session.
Anonymous clients are refused unless `VIGIL_MQTT_ALLOW_ANONYMOUS` is set for development, which is
logged as a WARNING at start and every few minutes and shown on /healthz.

amqtt 0.12 looks up, and may delete or alter, an existing session with the same client id before it
authenticates (`_initialize_client_session`), and takes over a connected session before it refuses the
CONNECT: so `AuthenticatingBroker` authenticates right after reading CONNECT, before any of that.
amqtt is pinned (< 0.13); tests/attacks/test_mqtt_attacks.py covers each rule.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import gen_client_id

from vigil.shell.contract.topics import PREFIX, status_topic, vitals_topic
from vigil.shell.identity.devices import DeviceCredentials
from vigil.shell.observability.metrics import Metrics

log = logging.getLogger("vigil.broker.access")
ANONYMOUS_WARNING = ("MQTT anonymous access is ON (VIGIL_MQTT_ALLOW_ANONYMOUS): any client may publish as any device "
                     "and read every patient's vitals. Development only; never for real patients.")
WARN_EVERY_S = 300.0


def errors_topic(device_id: str) -> str:
    """Where Vigil may tell a device what it refused (the one topic a device may read)."""
    return f"{PREFIX}/{device_id}/errors"


class BrokerAccess:
    """The embedded broker's rules: authentication against the credential store, a per-device topic
    ACL, and the development-only anonymous mode. Refusals are counted
    (`vigil_mqtt_refused_total{reason}`) and logged (the first, then one line per hundred)."""

    def __init__(self, credentials: DeviceCredentials | None, *, allow_anonymous: bool = False,
                 metrics: Metrics | None = None) -> None:
        if credentials is None and not allow_anonymous:
            raise ValueError("the embedded broker needs a credential store unless anonymous access is allowed")
        self.credentials = credentials
        self.allow_anonymous = allow_anonymous
        self.metrics = metrics
        self.refused = 0
        # One thread: a flood of wrong passwords (scrypt each) slows logins, never the event loop.
        self._verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-mqtt-auth")
        self._nagging: asyncio.Task[None] | None = None

    @classmethod
    def anonymous_for_development(cls) -> BrokerAccess:
        return cls(None, allow_anonymous=True)

    # -- connect -------------------------------------------------------------------------------

    async def authenticate(self, session: Session) -> str | None:
        """The device id this CONNECT proves, "" for an anonymous client in development mode, or
        None (refused)."""
        username, password = session.username, session.password
        if username and self.credentials is not None:
            loop = asyncio.get_running_loop()
            if await loop.run_in_executor(self._verifier, self.credentials.verify, username, password):
                return username
            if not self.allow_anonymous:
                return self._refuse("bad_credentials", session)
        if self.allow_anonymous:
            return ""
        return self._refuse("anonymous", session)

    def may_connect(self, session: Session, device: str, existing: Session | None) -> bool:
        """A device may not take over (or inherit) another client's session, nor leave a last will
        anywhere but on its own status topic."""
        if not device:
            return True
        if existing is not None and existing.username != device:
            return self._refuse("client_id_taken", session) is not None
        if session.will_flag and session.will_topic != status_topic(device):
            return self._refuse("will_topic", session) is not None
        return True

    # -- topics --------------------------------------------------------------------------------

    def permits(self, session: Session | None, topic: str | None, action: Action) -> bool:
        device = getattr(session, "vigil_device", None)
        if device == "" or session is None:  # anonymous (development) or the broker itself
            return True
        if device is None or topic is None:
            return self._refuse(f"{action.value}_topic", session) is not None
        if action == Action.PUBLISH:
            allowed = topic in (vitals_topic(device), status_topic(device))
        else:  # SUBSCRIBE (a filter: wildcards never match the exact topic) and RECEIVE
            allowed = topic == errors_topic(device)
        return allowed or self._refuse(f"{action.value}_topic", session, topic) is not None

    def _refuse(self, reason: str, session: Session, topic: str | None = None) -> None:
        self.refused += 1
        if self.metrics is not None:
            self.metrics.mqtt_refused.labels(reason).inc()
        if self.refused == 1 or self.refused % 100 == 0:
            log.warning("MQTT client refused", extra={"reason": reason, "username": (session.username or "")[:64],
                                                      "client_id": (session.client_id or "")[:64],
                                                      "topic": (topic or "")[:128], "refused_so_far": self.refused})
        return None

    # -- the development mode's warnings ----------------------------------------------------------

    def start(self) -> None:
        if self.allow_anonymous:
            log.warning(ANONYMOUS_WARNING)
            self._nagging = asyncio.get_running_loop().create_task(self._nag())

    async def _nag(self) -> None:
        while True:
            await asyncio.sleep(WARN_EVERY_S)
            log.warning(ANONYMOUS_WARNING)

    def health(self) -> dict[str, object]:
        if self.allow_anonymous:
            return {"authentication": "anonymous allowed", "warning": ANONYMOUS_WARNING}
        return {"authentication": "device credentials", "refused": self.refused}

    def close(self) -> None:
        if self._nagging is not None:
            self._nagging.cancel()
        self._verifier.shutdown(wait=False)


def _quiet_refusals(record: logging.LogRecord) -> bool:
    """amqtt logs every refused CONNECT as a WARNING: one line per attempt would let a client flood the log."""
    return not str(record.msg).endswith(" refused")


class AuthenticatingBroker(Broker):
    """amqtt's Broker with `BrokerAccess` deciding who connects and which topics each client uses."""

    def __init__(self, config: dict[str, Any], access: BrokerAccess) -> None:
        super().__init__(config)
        self.access = access
        self.logger.addFilter(_quiet_refusals)  # counted and logged (rate-limited) by BrokerAccess instead

    async def start(self) -> None:
        await super().start()
        self.access.start()

    async def shutdown(self) -> None:
        self.access.close()
        await super().shutdown()

    async def _initialize_client_session(self, reader: Any, writer: Any, remote_address: str,
                                         remote_port: int) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt 0.12's, with authentication first: a refused CONNECT touches no existing session."""
        try:
            handler, client_session = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError:
            await writer.close()  # as amqtt does: a malformed CONNECT
            raise
        except NoDataError as exc:
            raise AMQTTError(exc) from exc
        device = await self.access.authenticate(client_session)
        existing = self._sessions.get(client_session.client_id or "", (None, None))[0]
        if device is None or not self.access.may_connect(client_session, device, existing):
            handler.attach(client_session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError(f"{remote_address}:{remote_port} refused")
        if client_session.clean_session:
            if client_session.client_id:
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif existing is not None:  # the same device's persistent session: new will, keep-alive, credentials
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive", "username", "password"):
                setattr(existing, name, getattr(client_session, name))
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0
        client_session.vigil_device = device  # type: ignore[attr-defined]
        client_session.password = None  # not kept in memory longer than needed
        delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(delay, int):
            client_session.keep_alive += delay
        return handler, client_session

    async def _authenticate(self, session: Session, _: Any) -> bool:
        """Already decided in `_initialize_client_session`."""
        return getattr(session, "vigil_device", None) is not None

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        return self.access.permits(session, topic, action)
