"""The scaled path's processes, started as an operator starts them: `vigil ingest`, `vigil processor
worker` and `vigil notifier`, each a subprocess with its log in the work directory.

One class for the scaled bench (tools/bench/scaled.py) and the integration tests
(tests/integration): start a service, wait until its /healthz says it is up, kill one to see
what survives, stop them all, and retire the gateways' MQTT sessions at the end (a gateway
that never comes back would otherwise have the broker queue for it). What each caller needs
beyond that (the bench's CPU and memory figures, the tests' fixtures) lives with the caller.

Kafka logins (docs/security.md, "Kafka"): each service process logs in as its own user (the
gateway as vigil-gateway, ...), with that user's password file from the directory deploy/local
names in VIGIL_KAFKA_CREDENTIALS_DIR; the run's topics are created as the admin user, the only
one allowed to, and so are the callers' own Kafka helpers (reading a topic for a post-mortem).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from vigil.settings import VigilSettings, read_secret_file
from vigil.tools.ports import free_port
from vigil.tools.service_credentials import SERVICE_OF_COMMAND, service_env as store_credentials_env

T = TypeVar("T")
UP = ("ok", "degraded")  # a service that answers and works, perhaps with a dependency away


def run_topics(run: str) -> dict[str, str]:
    """A run's own Kafka topics (as VIGIL_* settings), so that runs side by side never read
    each other's records."""
    return {"VIGIL_READINGS_TOPIC": f"vigil.readings.{run}", "VIGIL_ALERTS_TOPIC": f"vigil.alerts.{run}",
            "VIGIL_DEADLETTER_TOPIC": f"vigil.deadletter.{run}"}


SERVICE_KAFKA_USERS = {"ingest": "vigil-gateway", "processor": "vigil-processor", "notifier": "vigil-notifier"}
KAFKA_ADMIN = "vigil-admin"


def kafka_login(env: Mapping[str, str], user: str) -> dict[str, str]:
    """VIGIL_KAFKA_USERNAME and VIGIL_KAFKA_PASSWORD_FILE for `user`, from the credentials directory
    deploy/local writes (VIGIL_KAFKA_CREDENTIALS_DIR: one owner-only file per user); nothing
    without that directory (a broker without logins)."""
    directory = env.get("VIGIL_KAFKA_CREDENTIALS_DIR")
    if not directory:
        return {}
    return {"VIGIL_KAFKA_USERNAME": user, "VIGIL_KAFKA_PASSWORD_FILE": str(Path(directory) / user)}


def kafka_settings(user: str = KAFKA_ADMIN, env: Mapping[str, str] | None = None, **overrides: Any) -> VigilSettings:
    """Settings for a Kafka client in this process (a test's or a bench's helper) that logs in as
    `user`, with the Kafka settings (and the run's topic names) of `env` (default: os.environ)."""
    env = os.environ if env is None else env
    fields = {"kafka_bootstrap": "VIGIL_KAFKA_BOOTSTRAP", "kafka_security_protocol": "VIGIL_KAFKA_SECURITY_PROTOCOL",
              "kafka_ca_file": "VIGIL_KAFKA_CA_FILE", "readings_topic": "VIGIL_READINGS_TOPIC",
              "alerts_topic": "VIGIL_ALERTS_TOPIC", "deadletter_topic": "VIGIL_DEADLETTER_TOPIC",
              "topic_partitions": "VIGIL_TOPIC_PARTITIONS", "topic_replication": "VIGIL_TOPIC_REPLICATION"}
    values: dict[str, Any] = {field: env[variable] for field, variable in fields.items() if env.get(variable)}
    login = kafka_login(env, user)
    if login:
        values["kafka_username"] = user
        values["kafka_password"] = read_secret_file("VIGIL_KAFKA_PASSWORD_FILE", login["VIGIL_KAFKA_PASSWORD_FILE"])
    return VigilSettings(**{**values, **overrides})


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """The predicate's first truthy value, asked every `interval` s; a service still starting
    (connection refused, a half-written answer) counts as not yet."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


class ServiceStack:
    """Vigil services as subprocesses of this one, by name (e.g. "gateway", "w1", "notifier")."""

    def __init__(self, env: Mapping[str, str], workdir: Path, *, stop_grace_s: float = 30.0,
                 own_credentials: bool = True) -> None:
        self.env = dict(env)  # what every service started from now on sees; callers may add to it
        # Each service with its own store credentials only (service_credentials.py), as in production.
        self.own_credentials = own_credentials
        self.workdir = workdir
        self.stop_grace_s = stop_grace_s
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.gateways: set[str] = set()
        self.topics_created: set[tuple[str, ...]] = set()

    def start(self, name: str, *args: str, port: int | None = None) -> subprocess.Popen:
        """Start `vigil <args>` as `name`, its output in workdir/<name>.log. With `port`, the
        service serves /healthz there (a processor worker also gets its own state directory,
        workdir/<name>), and `health(name)` reads it."""
        if args[0] == "ingest" and "--id" in args:
            self.gateways.add(args[args.index("--id") + 1])
        extra: list[str] = []
        if port is not None:
            self.ports[name] = port
            extra = (["--web-port", str(port), "--data-dir", str(self.workdir / name)] if args[0] == "processor"
                     else ["--http-port", str(port)])
        with open(self.workdir / f"{name}.log", "ab") as log:  # the child keeps its own copy of the file
            proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", *args, *extra], env=self.service_env(args[0]),
                                    stdout=log, stderr=log, cwd=self.workdir)
        self.procs[name] = proc
        return proc

    def service_env(self, command: str) -> dict[str, str]:
        """The environment of a `vigil <command>` process: the stack's, with that service's own
        Kafka login (a command that is no Kafka service gets none) and, unless the stack was made
        without, only that service's own store credentials (tools/service_credentials.py)."""
        env = {k: v for k, v in self.env.items() if k not in ("VIGIL_KAFKA_USERNAME", "VIGIL_KAFKA_PASSWORD",
                                                              "VIGIL_KAFKA_PASSWORD_FILE")}
        if command in SERVICE_KAFKA_USERS:
            env.update(kafka_login(self.env, SERVICE_KAFKA_USERS[command]))
        if self.own_credentials and command in SERVICE_OF_COMMAND:
            env = store_credentials_env(env, SERVICE_OF_COMMAND[command])
        return env

    def create_topics(self) -> None:
        """Create the run's topics as the Kafka admin (services may not create topics); once per
        set of topic names. Call it before starting the first Kafka service."""
        from vigil.shell.streams.topics import ensure_topics

        names = tuple(self.env.get(v, "") for v in ("VIGIL_READINGS_TOPIC", "VIGIL_ALERTS_TOPIC", "VIGIL_DEADLETTER_TOPIC"))
        if names not in self.topics_created:
            asyncio.run(ensure_topics(kafka_settings(KAFKA_ADMIN, self.env)))
            self.topics_created.add(names)

    def start_ready(self, name: str, *args: str, timeout: float = 120.0, statuses: tuple[str, ...] = UP) -> int:
        """Start a service on a free port and wait until it is up; its port."""
        port = free_port()
        self.start(name, *args, port=port)
        self.wait_healthy(name, timeout, statuses)
        return port

    def health(self, name: str) -> dict[str, Any]:
        """The service's /healthz answer."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/healthz", timeout=2) as response:
            return json.loads(response.read())

    def wait_healthy(self, name: str, timeout: float, statuses: tuple[str, ...] = UP) -> dict[str, Any]:
        """Wait until the service's /healthz status is one of `statuses`; fail at once if it exits."""
        def up() -> dict[str, Any] | None:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {self.procs[name].returncode}:\n{self.log(name)[-2000:]}")
            health = self.health(name)
            return health if health.get("status") in statuses else None

        return wait_until(up, timeout, f"{name} to start ({' or '.join(statuses)})")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one service with `sig` (SIGKILL: no clean shutdown, no final commit)."""
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(30)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM every service (SIGKILL after the grace period), then retire the gateways."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(self.stop_grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        for gateway_id in self.gateways:  # these gateways never come back: drop their sessions
            subprocess.run([sys.executable, "-m", "vigil.cli", "ingest", "--id", gateway_id, "--retire"],
                           env=self.service_env("ingest"),
                           cwd=self.workdir, check=True, capture_output=True, timeout=60)
        self.gateways.clear()
