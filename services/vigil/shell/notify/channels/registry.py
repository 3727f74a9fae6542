"""Which channels this process can deliver on, from VIGIL_* settings.

A channel is built only when it is fully configured; "app" (in-app push) needs nothing and is
always on. A channel configured halfway (an SMTP host without a sender, a Twilio SID without a
token) is an error at start-up rather than a channel that silently never sends: for an alerting
system a missing channel must be loud.
"""

from __future__ import annotations

import logging

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from vigil.shell.notify.channels.base import Channel
from vigil.shell.notify.channels.email import SmtpEmail
from vigil.shell.notify.channels.push import AppPush, PushHub
from vigil.shell.notify.channels.sms import TWILIO_API_BASE, TwilioSms
from vigil.shell.notify.channels.webhook import SignedWebhook
from vigil.settings import WithSecretFiles, refuse_plain_http

log = logging.getLogger("vigil.notify")


class ChannelSettings(WithSecretFiles):
    """Secrets (VIGIL_TWILIO_AUTH_TOKEN, VIGIL_SMTP_PASSWORD, VIGIL_WEBHOOK_SECRET) may come from VIGIL_*_FILE."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = Field(None, description="Sender number, E.164.")
    twilio_api_base: str = Field(TWILIO_API_BASE, description="Override for a local stand-in.")
    twilio_timeout_s: float = 10.0

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str | None = Field(None, description="From: address, e.g. alerts@ward.example.org")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0

    webhook_secret: SecretStr | None = Field(None, description="HMAC key; webhooks are off without it.")
    webhook_timeout_s: float = 5.0

    push_ring_size: int = Field(500, description="Events kept per in-app inbox for reconnect replay.")
    allow_plain_http: bool = Field(False, validation_alias=AliasChoices("VIGIL_ALLOW_PLAIN_HTTP", "allow_plain_http"))


def build_channels(settings: ChannelSettings | None = None, hub: PushHub | None = None) -> dict[str, Channel]:
    """The configured channels by name. Pass the `hub` the HTTP app mounts (add_push_routes), or
    take the one built here from `channels["app"].hub`."""
    settings = settings or ChannelSettings()
    channels: dict[str, Channel] = {}
    off: dict[str, str] = {}

    sms_parts = {"twilio_account_sid": settings.twilio_account_sid, "twilio_auth_token": settings.twilio_auth_token,
                 "twilio_from": settings.twilio_from}
    if all(sms_parts.values()):
        refuse_plain_http(settings.twilio_api_base, "VIGIL_TWILIO_API_BASE", allow=settings.allow_plain_http)
        assert settings.twilio_auth_token is not None and settings.twilio_account_sid and settings.twilio_from
        channels["sms"] = TwilioSms(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                                    settings.twilio_from, api_base=settings.twilio_api_base,
                                    timeout=settings.twilio_timeout_s)
    elif any(sms_parts.values()):
        raise ValueError("SMS half configured: set all of " + ", ".join(f"VIGIL_{n.upper()}" for n in sms_parts)
                         + f" (missing {', '.join(f'VIGIL_{n.upper()}' for n, v in sms_parts.items() if not v)})")
    else:
        off["sms"] = "VIGIL_TWILIO_ACCOUNT_SID unset"

    if settings.smtp_host and settings.smtp_sender:
        channels["email"] = SmtpEmail(settings.smtp_host, settings.smtp_port, settings.smtp_sender,
                                      username=settings.smtp_username,
                                      password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                                      starttls=settings.smtp_starttls, timeout=settings.smtp_timeout_s)
    elif settings.smtp_host or settings.smtp_sender:
        raise ValueError("e-mail half configured: set both VIGIL_SMTP_HOST and VIGIL_SMTP_SENDER")
    else:
        off["email"] = "VIGIL_SMTP_HOST unset"

    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        channels["webhook"] = SignedWebhook(settings.webhook_secret.get_secret_value().encode("utf-8"),
                                            timeout=settings.webhook_timeout_s)
    else:
        off["webhook"] = "VIGIL_WEBHOOK_SECRET unset"

    channels["app"] = AppPush(hub or PushHub(ring_size=settings.push_ring_size))

    log.info("notification channels", extra={"on": ",".join(channels), "off": ",".join(off),
                                              "why_off": "; ".join(f"{k}: {v}" for k, v in off.items())})
    return channels
