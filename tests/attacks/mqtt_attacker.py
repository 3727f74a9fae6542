"""What an attacker on the same network does over MQTT, as blocking paho helpers (run them in a thread
when the broker shares the test's event loop), and a throw-away TLS certificate authority."""

from __future__ import annotations

import datetime
import ipaddress
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def vitals(device_id: str, *, count: int = 12, spo2: float = 82, hr: float = 135, seq0: int = 1) -> bytes:
    """A well-formed batch that would raise a critical hypoxaemia alert for the device's patient."""
    now = time.time()
    samples = [{"ts": datetime.datetime.fromtimestamp(now - (count - i) * 10, datetime.timezone.utc).isoformat(),
                "seq": seq0 + i, "spo2_pct": spo2, "hr_bpm": hr, "rr_per_min": 26, "skin_contact": True,
                "accel_g": 0.01, "battery_pct": 80} for i in range(count)]
    return json.dumps({"v": 1, "device_id": device_id, "firmware": "1.0", "samples": samples}).encode()


def status(device_id: str, state: str = "online") -> bytes:
    return json.dumps({"v": 1, "device_id": device_id, "state": state}).encode()


class Client:
    """A paho client that connects (or is refused) and records what it receives."""

    def __init__(self, port: int, client_id: str, username: str | None = None, password: str | None = None, *,
                 host: str = "127.0.0.1", ca_file: str | None = None, will: tuple[str, bytes] | None = None,
                 clean_session: bool = True) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=ca_file)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[int] = []
        self.connack: int | None = None
        self.answered = threading.Event()
        self.subacked = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = self._on_subscribe
        self.disconnects = 0  # how often the broker cut this client off (or it left: close())
        self.client.on_disconnect = self._on_disconnect
        self.host, self.port = host, port

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        self.connack = reason.value
        self.answered.set()

    def _on_disconnect(self, *args: object) -> None:
        self.disconnects += 1
        self.answered.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, props) -> None:  # noqa: ANN001
        self.granted = [code.value for code in reason_codes]
        self.subacked.set()

    def connect(self, timeout: float = 10.0) -> bool:
        """Whether the broker accepted the CONNECT (False: refused or cut off)."""
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError:
            return False
        self.client.loop_start()
        self.answered.wait(timeout)
        time.sleep(0.2)  # a refused client is cut off right after its CONNACK
        return self.connack == 0 and self.client.is_connected()

    def subscribe(self, topic: str, timeout: float = 5.0) -> list[int]:
        """The SUBACK's codes (0x80: refused); [] when no SUBACK came (the broker cut us off)."""
        self.subacked.clear()
        self.client.subscribe(topic, qos=1)
        self.subacked.wait(timeout)
        return self.granted if self.subacked.is_set() else []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, timeout: float = 5.0) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            pass  # not acknowledged (Mosquitto drops a denied publish; the outcome is judged by the test)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_ca(directory: Path) -> tuple[str, str, str]:
    """A CA and a server certificate for localhost and 127.0.0.1: (ca.pem, server.pem, server.key)."""
    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Vigil test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return tuple(str(p) for p in paths)  # type: ignore[return-value]
