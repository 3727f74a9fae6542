"""One settings object for every Vigil process, read from VIGIL_* environment variables.

Defaults run the embedded mode: no server needed. Command-line flags override these.
"""
# Long file: every VIGIL_* setting is one field of this one object, with its description; split up,
# an operator (and `vigil settings`-style docs) would have to look in several places for one answer.

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:
    from vigil.core.incident import LifecyclePolicy
    from vigil.core.coverage import CoverageLimits

log = logging.getLogger("vigil.settings")
MIN_AUDIT_DAYS = 365.0  # the database refuses to delete an access-audit row younger than this, whatever the setting


class SettingsError(ValueError):
    """A setting Vigil refuses to start with. Its message names the setting, never a secret's value."""


# -- secrets from files (docs/security.md, "Secrets") ---------------------------------------------
# Every secret setting VIGIL_X may instead be given as VIGIL_X_FILE: the path of a file holding it (a
# Kubernetes secret volume, systemd's $CREDENTIALS_DIRECTORY, a Docker secret). pydantic-settings'
# own `secrets_dir` reads one directory with files named after the fields; it cannot take a path per
# secret, nor check a file's permissions, so this small source does both.

def is_secret(field: FieldInfo) -> bool:
    """A secret field: typed SecretStr, or marked json_schema_extra={"secret": True} (URLs that may hold one)."""
    extra = field.json_schema_extra
    return "SecretStr" in repr(field.annotation) or (isinstance(extra, dict) and extra.get("secret") is True)


def read_secret_file(variable: str, path: str) -> str:
    """The secret in `path`, stripped; refused when the file is missing, empty, or readable by
    anyone but its owner (group or others: a secret is only as safe as its file)."""
    try:
        info = os.stat(path)
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SettingsError(f"{variable}: {path} is readable by group or others (mode "
                                f"{stat.S_IMODE(info.st_mode):o}); make it owner-only: chmod 600 {path}")
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path} ({exc.strerror})") from None
    if not value:
        raise SettingsError(f"{variable}: {path} is empty")
    return value


class SecretFiles(PydanticBaseSettingsSource):
    """VIGIL_<NAME>_FILE for every secret field: the file's content, stripped. Setting both
    VIGIL_<NAME> and VIGIL_<NAME>_FILE is refused (which one would win is a guess)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", "")).upper()
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not is_secret(field):
                continue
            variable = f"{prefix}{name.upper()}"
            path = os.environ.get(f"{variable}_FILE")
            if not path:
                continue
            if os.environ.get(variable):
                raise SettingsError(f"set {variable} or {variable}_FILE, not both")
            values[name] = read_secret_file(f"{variable}_FILE", path)
        return values


class WithSecretFiles(BaseSettings):
    """Settings whose secrets may come from files: arguments, then VIGIL_* variables, then VIGIL_*_FILE."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFiles(settings_cls), dotenv_settings, file_secret_settings


def secret_value(secret: SecretStr | str | None) -> str | None:
    """The plain value, at the one place it is handed to a client library."""
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


# -- no secret over plain HTTP except to this machine --------------------------------------------

def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_plain_http(url: str | None, setting: str, *, allow: bool) -> None:
    """Start-up check for an endpoint Vigil sends a secret (or patient data) to: https, or
    http:// only to loopback. `allow` (VIGIL_ALLOW_PLAIN_HTTP, development only) lets it through
    with a WARNING. The error names the setting and the host, never a key."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    if parts.scheme == "http" and allow:
        log.warning("PLAIN HTTP ALLOWED to a host that is not this machine: its key and data travel unencrypted "
                    "(VIGIL_ALLOW_PLAIN_HTTP, development only)", extra={"setting": setting, "host": parts.hostname})
        return
    raise SettingsError(f"{setting}: {parts.scheme or 'no scheme'}://{parts.hostname or ''} refused: a secret is only "
                        "sent over https (http:// only to 127.0.0.1, ::1 or localhost; VIGIL_ALLOW_PLAIN_HTTP=true "
                        "allows it for development)")


class VigilSettings(WithSecretFiles):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path("vigil-data"), description="Where the embedded runtime keeps its SQLite file and logs.")
    database_url: str | None = Field(None, repr=False, json_schema_extra={"secret": True},
                                     description="SQLAlchemy URL; default sqlite:///<data_dir>/vigil.sqlite. "
                                     "May hold a password: VIGIL_DATABASE_URL_FILE reads it from a file.")
    roster: Path | None = Field(None, description="Roster YAML: patients, devices, care teams.")

    mqtt_url: str | None = Field(None, description="Existing broker, e.g. mqtt://127.0.0.1:1883; unset: embedded broker.")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_ca_file: Path | None = Field(None, description="CA that signed the broker's certificate, for mqtts:// URLs (default: the system's CAs).")
    mqtt_password: SecretStr | None = Field(None, description="The MQTT service account's password (external broker).")
    mqtt_shared_group: str | None = Field(None, description="Shared-subscription group, to split load across processes.")
    mqtt_ack_after_store: bool | None = Field(
        None, description="PUBACK a device's QoS 1 publish only once the batch holding it is stored (no loss on "
        "crash), with an external broker and with the embedded one. Default: on; off acknowledges on receipt.")

    def ack_after_store(self) -> bool:
        return self.mqtt_ack_after_store if self.mqtt_ack_after_store is not None else True

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # -- issue 15, HTTPS for the API and apps (docs/security.md, "HTTPS and reverse proxies") ----
    http_tls_cert: Path | None = Field(None, description="PEM certificate (chain) of the HTTP API and apps: with "
                                       "VIGIL_HTTP_TLS_KEY, VIGIL_HTTP_PORT speaks HTTPS only.")
    http_tls_key: Path | None = Field(None, description="PEM private key of the HTTPS listener (owner-only file).")
    http_hsts_max_age_s: int = Field(31_536_000, ge=0, description="Over HTTPS: Strict-Transport-Security max-age "
                                     "(a year); 0 sends no HSTS header.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description='JSON list of the reverse proxies\' addresses or networks, e.g. '
        '["10.0.0.5", "10.1.0.0/24"]: only from these peers are X-Forwarded-For and X-Forwarded-Proto believed. '
        "Empty (default): no forwarded header is trusted.")

    max_payload_bytes: int = 64 * 1024
    max_clock_skew_s: float = 300.0
    max_sample_age_s: float = 7 * 24 * 3600.0

    # -- bounded storage for refused input (docs/device-protocol.md, "Rejections") -------------
    deadletter_max_raw_bytes: int = Field(
        64 * 1024, ge=0, description="Bytes of a refused payload kept in its dead letter (with its full length and SHA-256).")
    deadletter_rate_per_s: float = Field(
        0.1, ge=0, description="Dead-letter rows kept per enrolled device per second once its burst is spent (devices "
        "not enrolled share one budget); every rejection is counted.")
    deadletter_burst: int = Field(20, ge=0, description="Dead-letter rows a device may fill at once.")
    deadletter_total_bytes_per_s: float = Field(
        2048.0, ge=0, description="Bytes of dead letters kept per second across all devices (a row costs its kept bytes "
        "plus 256): with the retention, the most disk bad input can take.")
    deadletter_total_burst_bytes: int = Field(8 * 1024 * 1024, ge=0,
                                              description="Bytes of dead letters all devices together may fill at once.")
    deadletter_retention_days: float = Field(
        14.0, ge=0, validation_alias=AliasChoices("VIGIL_RETAIN_DEAD_LETTERS_DAYS", "VIGIL_DEADLETTER_RETENTION_DAYS"),
        description="Dead letters (rows, counts, the vigil.deadletter topic) older than this are purged; 0 keeps them.")
    broker_retained_max: int = Field(
        20_000, ge=0, description="Embedded broker: retained messages kept (only on vigil/v1/devices/{id}/status).")
    broker_retained_max_bytes: int = Field(
        8 * 1024 * 1024, ge=0, description="Embedded broker: bytes of retained messages kept, all topics together.")

    # -- issue 11, devices: the embedded broker's logins and TLS (docs/security.md, "Devices") ----
    mqtt_allow_anonymous: bool = Field(
        False, description="Embedded broker: let clients in without credentials, with no topic limits. Development "
        "only: logged as a WARNING at start and every 5 minutes, and shown on /healthz. Never for real patients.")
    mqtt_tls_cert: Path | None = Field(None, description="Embedded broker: PEM certificate (chain) of its TLS listener; "
                                       "with VIGIL_MQTT_TLS_KEY, devices may connect with mqtts://.")
    mqtt_tls_key: Path | None = Field(None, description="Embedded broker: PEM private key of its TLS listener.")
    mqtt_tls_port: int = Field(8883, description="Embedded broker: the TLS listener's port.")
    mqtt_plain_listener: bool = Field(
        True, description="Embedded broker: also listen without TLS on VIGIL_MQTT_PORT; set false to accept TLS only "
        "(needs VIGIL_MQTT_TLS_CERT and VIGIL_MQTT_TLS_KEY).")

    log_level: str = "INFO"
    allow_plain_http: bool = Field(
        False, description="Development only: let secrets (LLM key, Twilio token) and patient data (ward webhook) go "
        "over plain http:// to a host that is not this machine. Logged as a WARNING at start.")

    # -- retention of the embedded store (docs/data.md, "Retention"); 0 keeps that kind forever --
    retain_readings_days: float = Field(
        400.0, ge=0, description="Readings and model scores older than this are purged (not those of a patient "
        "with an open incident).")
    retain_rollups_days: float = Field(
        1095.0, ge=0, description="Per-minute rollups (the trend charts' summaries: SQL `vital_rollups`, InfluxDB "
        "`rollup_1m` in VIGIL_INFLUX_ROLLUP_BUCKET) older than this are purged; kept longer than raw readings.")
    retain_notifications_days: float = Field(
        400.0, ge=0, description="Delivered or failed notifications (message bodies, phone numbers, addresses) older "
        "than this are purged (never a pending one, nor one of an open incident).")
    retain_explanations_days: float = Field(
        400.0, ge=0, description="Explanations older than this are purged (not those of an open incident's alerts).")
    retain_audit_days: float = Field(
        8 * 365.0, description="Access-audit rows older than this are purged; at least 365 days, or 0 to keep forever. "
        "The database itself refuses to delete a younger row.")
    purge_every_s: float = Field(3600.0, gt=0, description="How often the embedded runtime, and in the scaled path the "
                                 "notifier, purge (and once at start).")
    notifier_purge: bool = Field(False, description="Scaled path: the notifier purges PostgreSQL every "
                                 "VIGIL_PURGE_EVERY_S. Only where it runs as the schema's owner: on its own role "
                                 "(deploy/local) it may delete nothing, and the owner's `vigil retention run` on a "
                                 "timer purges instead.")
    purge_chunk_rows: int = Field(2000, ge=1, description="Rows deleted per transaction: ingest runs between chunks.")

    models_enabled: bool = Field(True, description="Score with the learned models (anomaly, rising risk) beside the rules.")
    model_dir: Path | None = Field(None, description="Model artifacts directory; default: the packaged models/artifacts.")

    # -- incidents and notifications (vigil.shell.desk, vigil.shell.notify); channels: ChannelSettings --
    emergency_number: str = Field("999", description="Quoted in patient messages for urgent help (112, 911, 120...).")
    approve_patient_texts: bool = Field(False, description="Hold a language model's text for the patient until a "
                                                           "clinician approves it in the ward console (the template "
                                                           "text goes out at once either way).")
    escalate_critical_s: float | None = Field(300.0, description="Unacknowledged critical incident: next contact after this.")
    escalate_high_s: float | None = Field(900.0, description="Unacknowledged high incident: next contact after this.")
    remind_critical_s: float | None = Field(300.0, description="Reminder interval until acknowledged (critical).")
    remind_high_s: float | None = Field(900.0, description="Reminder interval until acknowledged (high).")
    remind_medium_s: float | None = Field(3600.0, description="Reminder interval until acknowledged (medium).")
    escalation_max_level: int = Field(3, description="Escalations beyond the first contacts; past the last care-team "
                                      "level the whole team is paged again.")
    incident_settle_s: float = Field(600.0, description="All alerts cleared this long: the incident resolves itself.")
    ward_webhook_url: str | None = Field(None, description="Every incident event is also POSTed here (signed), e.g. an EHR.")
    notify_poll_s: float = Field(0.5, description="How often the dispatcher looks for due rows written by other processes.")
    grafana_url: str | None = Field(None, description="Grafana's address as the ward's browsers reach it: the ward "
                                    "workspace links each patient to their dashboard (/d/vigil-patient).")

    # -- single sign-on (OpenID Connect) and service accounts (docs/security.md) ----------------
    oidc_issuer: str | None = Field(None, description="The identity provider's issuer URL (https; http only on "
                                    "127.0.0.1), e.g. https://idp.hospital/realms/vigil. Unset: no single sign-on.")
    oidc_client_id: str = Field("vigil-web", description="Vigil's client at the identity provider (authorization code).")
    oidc_client_secret: SecretStr | None = Field(None, description="That client's secret (confidential client).")
    oidc_redirect_uri: str | None = Field(None, description="Registered exactly at the provider: "
                                          "https://<vigil>/auth/oidc/callback.")
    oidc_scopes: str = Field("openid profile email", description="Scopes asked for at login.")
    oidc_role_groups: dict[str, str] = Field(
        default_factory=dict, description='JSON: group -> role, e.g. {"/roles/nurse": "nurse"}; only nurse, physician '
        "and ward_admin. A user in no mapped group is refused.")
    oidc_ward_group_prefix: str = Field("/wards/", description="Groups under this prefix name the user's wards.")
    oidc_groups_claim: str = Field("groups", description="The ID token claim that lists the user's groups.")
    oidc_name_claim: str = Field("preferred_username", description="The claim shown as the person's name.")
    oidc_leeway_s: float = Field(30.0, ge=0, le=300, description="Clock skew allowed on exp/iat/nbf.")
    oidc_service_clients: list[str] = Field(
        default_factory=list, description='JSON list of client ids whose client-credentials tokens Vigil accepts as '
        'service principals, e.g. ["vigil-fhir"].')
    oidc_service_audience: str = Field("vigil-api", description="The audience (aud) a service token must carry.")
    oidc_service_role: str | None = Field("vigil-service", description="Role a service token must hold (Keycloak "
                                          "realm_access.roles or a roles claim); empty: none required.")
    # -- people: local accounts, sessions, the service token (issue 11; docs/security.md "People") --
    api_token: SecretStr | None = Field(None, description="A service's bearer token (`Authorization: Bearer`): it reads "
                                  "vitals, alerts and incidents of every ward (role service, grant \"*\"), never acts.")
    session_max_age_s: float = Field(12 * 3600.0, gt=0, description="A console login lasts at most this long.")
    session_idle_s: float = Field(1800.0, gt=0, description="A session unused this long ends.")
    patient_session_max_age_s: float = Field(
        30 * 86400.0, gt=0, description="A patient's phone session (from an enrolment code) lasts at most this long.")
    patient_session_idle_s: float = Field(14 * 86400.0, gt=0, description="A patient's phone session unused this long ends.")
    enrolment_code_ttl_s: float = Field(900.0, gt=0, description="A patient enrolment code must be redeemed within this.")
    login_max_failures: int = Field(5, ge=1, description="Failed logins per username within VIGIL_LOGIN_WINDOW_S "
                                    "before further attempts are refused (429).")
    login_max_failures_per_address: int = Field(20, ge=1, description="Failed logins (and enrolment codes) per client "
                                                "address within the window.")
    login_window_s: float = Field(900.0, gt=0, description="The login rate limit's sliding window.")
    cookie_secure: bool | None = Field(None, description="Session cookie's Secure flag; default: set when the request "
                                       "came over TLS. Behind a proxy that terminates TLS, set it to true.")
    stream_ticket_ttl_s: float = Field(60.0, gt=0, description="A push-stream ticket must be used within this.")
    # -- the patient app's Web Push (issue 16; docs/patient-app.md) ------------------------------
    vapid_private_key: SecretStr | None = Field(None, description="VAPID (RFC 8292) signing key: base64url of the raw "
                                                "P-256 private key or of its DER. Unset: no Web Push.")
    vapid_subject: str = Field("mailto:ward@vigil.invalid", description="VAPID 'sub': how a push service reaches the operator.")
    web_push_ttl_s: int = Field(86400, ge=0, description="How long a push service keeps an undelivered alert (TTL).")

    def lifecycle_policy(self) -> "LifecyclePolicy":
        from vigil.core.incident import LifecyclePolicy

        return LifecyclePolicy(
            escalate_after_s={"critical": self.escalate_critical_s, "high": self.escalate_high_s, "medium": None, "low": None},
            remind_every_s={"critical": self.remind_critical_s, "high": self.remind_high_s, "medium": self.remind_medium_s,
                            "low": None},
            settle_s=self.incident_settle_s,
            max_level=self.escalation_max_level,
        )

    # -- the scaled-out runtime (Kafka, Faust, InfluxDB, PostgreSQL) -------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    # -- how this process logs in to Kafka (issue 15; docs/security.md, "Kafka"): each service its own user --
    kafka_security_protocol: Literal["SASL_SSL", "PLAINTEXT"] = Field(
        "SASL_SSL", description="SASL_SSL: TLS plus a SCRAM login (VIGIL_KAFKA_USERNAME, VIGIL_KAFKA_PASSWORD). "
        "PLAINTEXT: no TLS, no login: development only, logged as a WARNING by every Kafka client Vigil starts.")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = Field(
        "SCRAM-SHA-512", description="The SASL mechanism of the login.")
    kafka_username: str | None = Field(None, description="This service's Kafka user (e.g. vigil-gateway).")
    kafka_password: SecretStr | None = Field(None, description="That user's password (or VIGIL_KAFKA_PASSWORD_FILE).")
    kafka_ca_file: Path | None = Field(None, description="CA that signed the brokers' certificates (default: the "
                                       "system's CAs).")
    readings_topic: str = "vigil.readings"
    alerts_topic: str = "vigil.alerts"
    deadletter_topic: str = "vigil.deadletter"
    topic_partitions: int = Field(4, description="Partitions of vigil.readings (and of the processor's tables).")
    topic_replication: int = Field(1, description="3 with the three-broker cluster.")
    influx_url: str = "http://127.0.0.1:8086"
    influx_token: str | None = Field(None, repr=False, json_schema_extra={"secret": True})
    influx_org: str = "vigil"
    influx_bucket: str = Field("vitals", description="Raw readings and scores; its retention: VIGIL_RETAIN_READINGS_DAYS.")
    influx_rollup_bucket: str | None = Field(
        None, description="Where the rollup task writes `rollup_1m` and trends read it, so rollups can be kept "
        "longer (VIGIL_RETAIN_ROLLUPS_DAYS: InfluxDB's retention is per bucket). Unset: VIGIL_INFLUX_BUCKET.")

    ward_trends_sql: bool = Field(
        True, description="The processor also stores readings and scores in PostgreSQL, which keeps each patient's "
        "latest values and per-minute rollups for the ward overview (InfluxDB answers a 1,000-patient ward in "
        "seconds); charts still read InfluxDB's rollup_1m.")

    def rollup_bucket(self) -> str:
        """The InfluxDB bucket of the per-minute rollups (VIGIL_INFLUX_ROLLUP_BUCKET, else the readings')."""
        return self.influx_rollup_bucket or self.influx_bucket

    processor_app_id: str = Field("vigil-processor", description="Faust app id: consumer group and changelog topic names.")
    processor_web_port: int = Field(6066, description="Faust worker's own web port (one per worker).")
    processor_data_dir: Path = Field(Path("vigil-data/processor"), description="Faust worker state directory.")
    device_silent_after_s: float = Field(
        15 * 60.0, gt=0, description="A wearable that sends nothing for this long raises device_offline (technical).")
    processor_silence_check_s: float = Field(
        30.0, ge=0, description="How often a worker looks for silent devices (device_offline alerts); 0 turns it off.")
    kafka_fetch_max_wait_ms: int = Field(
        100, ge=1, le=1500,
        description="Longest a Kafka fetch (processor workers, notifier) waits for new records; Faust's own 1,500 ms delayed readings by up to 1.7 s.")

    # -- monitoring coverage (issue 13): every enrolled patient monitored, or an open technical alert --
    coverage_will_after_s: float = Field(
        30.0, ge=0, description="A device's last will (offline status) raises device_offline this long after it.")
    coverage_rejected_after_s: float = Field(
        30.0, ge=0, description="Every sample of a patient's device refused this long (in 2 messages at least) raises not_monitored (the reason named).")
    coverage_clock_off_s: float = Field(
        600.0, gt=0, description="A device whose newest sample is this far from its receipt time has a wrong clock.")
    coverage_missing_after_s: float = Field(
        15 * 60.0, gt=0, description="An expected vital (coverage_expected_vitals) absent this long raises not_monitored.")
    coverage_never_seen_after_s: float = Field(
        15 * 60.0, gt=0, description="An enrolled patient with no reading this long after Vigil started watching raises not_monitored.")
    coverage_expected_vitals: str = Field(
        "hr,spo2", description="Vitals every patient's wearable is expected to send (comma-separated; empty for none).")
    device_errors: bool = Field(
        True, description="Publish each refusal back to the device on vigil/v1/devices/{id}/errors (QoS 1, not retained).")
    device_errors_every_s: float = Field(
        10.0, gt=0, description="At most one error message per device this often; the next says how many were left out.")

    def coverage_limits(self) -> "CoverageLimits":
        """The coverage bounds (core.coverage.CoverageLimits) from these settings."""
        from vigil.core.coverage import CoverageLimits

        vitals = tuple(v.strip() for v in self.coverage_expected_vitals.split(",") if v.strip())
        return CoverageLimits(will_after_s=self.coverage_will_after_s, rejected_after_s=self.coverage_rejected_after_s,
                              clock_off_s=self.coverage_clock_off_s, missing_after_s=self.coverage_missing_after_s,
                              never_seen_after_s=self.coverage_never_seen_after_s, expected_vitals=vitals)

    @field_validator("retain_audit_days")
    @classmethod
    def _audit_kept_a_year(cls, days: float) -> float:
        if days != 0 and days < MIN_AUDIT_DAYS:
            raise ValueError(f"VIGIL_RETAIN_AUDIT_DAYS must be 0 (forever) or at least {MIN_AUDIT_DAYS:g}")
        return days

    @field_validator("grafana_url")
    @classmethod
    def _grafana_is_a_web_address(cls, url: str | None) -> str | None:
        """The ward's pages put it in a link: http(s) only (a `javascript:` address would run in them)."""
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("VIGIL_GRAFANA_URL must be an http:// or https:// address")
        return url or None

    def retention_days(self) -> dict[str, float]:
        """Days each kind is kept in the SQL store (0: forever), by kind as counted in
        vigil_purged_rows_total."""
        return {"readings": self.retain_readings_days, "rollups": self.retain_rollups_days,
                "dead_letters": self.deadletter_retention_days,
                "notifications": self.retain_notifications_days, "explanations": self.retain_explanations_days,
                "audit": self.retain_audit_days}

    def check_transport(self) -> None:
        """Start-up: the ward webhook (signed, carrying patient data) goes over https, or http to loopback."""
        refuse_plain_http(self.ward_webhook_url, "VIGIL_WARD_WEBHOOK_URL", allow=self.allow_plain_http)

    def sqlite_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'vigil.sqlite').resolve()}"


def service_settings(args: Any) -> "VigilSettings":
    """Settings from VIGIL_* variables, with a service's --roster and --http-port on top."""
    settings = VigilSettings()
    if getattr(args, "roster", None):
        settings.roster = Path(args.roster)
    if getattr(args, "http_port", None) is not None:
        settings.http_port = args.http_port
    return settings
