"""One settings object for every Vigil process, read from VIGIL_* environment variables.

Defaults run the embedded mode: no server needed. Command-line flags override these.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class VigilSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    data_dir: Path = Field(Path("vigil-data"), description="Where the embedded runtime keeps its SQLite file and logs.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/vigil.sqlite.")
    roster: Path | None = Field(None, description="Roster YAML: patients, devices, care teams.")

    mqtt_url: str | None = Field(None, description="Existing broker, e.g. mqtt://127.0.0.1:1883; unset: embedded broker.")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_shared_group: str | None = Field(None, description="Shared-subscription group, to split load across processes.")
    mqtt_ack_after_store: bool | None = Field(
        None, description="PUBACK only after the reading is stored (no loss on crash). Default: on for an external "
        "broker, off for the embedded one (its memory dies with the process, so late PUBACKs would gain nothing).")

    def ack_after_store(self) -> bool:
        return self.mqtt_ack_after_store if self.mqtt_ack_after_store is not None else self.mqtt_url is not None

    http_host: str = "127.0.0.1"
    http_port: int = 8080

    max_payload_bytes: int = 64 * 1024
    max_clock_skew_s: float = 300.0
    max_sample_age_s: float = 7 * 24 * 3600.0

    log_level: str = "INFO"

    def sqlite_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'vigil.sqlite').resolve()}"
