"""build_channels: only fully configured channels are built, from VIGIL_* settings."""

from __future__ import annotations

import logging

import pytest
from standins.twilio_api import TwilioStandIn

from vigil.shell.notify.channels.base import Channel, Delivery
from vigil.shell.notify.channels.email import SmtpEmail
from vigil.shell.notify.channels.push import AppPush, PushHub
from vigil.shell.notify.channels.registry import ChannelSettings, build_channels
from vigil.shell.notify.channels.sms import TwilioSms
from vigil.shell.notify.channels.webhook import SignedWebhook

pytestmark = pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")


def test_nothing_configured_gives_only_in_app_push(caplog):
    with caplog.at_level(logging.INFO, logger="vigil.notify"):
        channels = build_channels(ChannelSettings())
    assert list(channels) == ["app"] and isinstance(channels["app"], AppPush)
    record = next(r for r in caplog.records if r.message == "notification channels")
    assert record.on == "app" and record.off == "sms,email,webhook"  # type: ignore[attr-defined]


async def test_everything_configured_from_the_environment(monkeypatch):
    env = {
        "VIGIL_TWILIO_ACCOUNT_SID": "AC" + "a" * 32, "VIGIL_TWILIO_AUTH_TOKEN": "tw-Zq81x",
        "VIGIL_TWILIO_FROM": "+15005550006", "VIGIL_TWILIO_API_BASE": "http://127.0.0.1:9",
        "VIGIL_SMTP_HOST": "mail.example.org", "VIGIL_SMTP_PORT": "587", "VIGIL_SMTP_SENDER": "alerts@example.org",
        "VIGIL_SMTP_USERNAME": "ward", "VIGIL_SMTP_PASSWORD": "pw", "VIGIL_SMTP_STARTTLS": "true",
        "VIGIL_WEBHOOK_SECRET": "whsec",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    hub = PushHub()
    channels = build_channels(ChannelSettings(), hub=hub)
    assert set(channels) == {"sms", "email", "webhook", "app"}
    assert all(isinstance(c, Channel) and c.name == n for n, c in channels.items())
    sms, mail, hook, app = channels["sms"], channels["email"], channels["webhook"], channels["app"]
    assert isinstance(sms, TwilioSms) and sms._api_base == "http://127.0.0.1:9"
    assert isinstance(mail, SmtpEmail) and (mail.host, mail.port, mail._starttls, mail._password) == (
        "mail.example.org", 587, True, "pw")
    assert isinstance(hook, SignedWebhook) and hook._secret == b"whsec"
    assert isinstance(app, AppPush) and app.hub is hub
    # Secrets do not leak through the settings' repr (which may end up in logs).
    assert "tw-Zq81x" not in repr(ChannelSettings()) and "whsec" not in repr(ChannelSettings())
    for channel in channels.values():
        await channel.close()


@pytest.mark.parametrize("partial, missing", [
    ({"twilio_account_sid": "AC1", "twilio_from": "+15005550006"}, "VIGIL_TWILIO_AUTH_TOKEN"),
    ({"smtp_host": "mail.example.org"}, "VIGIL_SMTP_SENDER"),
])
def test_a_half_configured_channel_fails_loudly(partial, missing):
    with pytest.raises(ValueError, match=missing):
        build_channels(ChannelSettings(**partial))


async def test_the_built_sms_channel_sends_through_the_standin():
    with TwilioStandIn() as twilio:
        settings = ChannelSettings(twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
                                   twilio_from="+15005550006", twilio_api_base=twilio.url)
        channels = build_channels(settings)
        try:
            result = await channels["sms"].send(Delivery(
                key="k", channel="sms", recipient_id="patient:p-001", address="+447700900123", audience="patient",
                subject="s", body="Call 999 if you feel worse.", payload={}, critical=True))
        finally:
            for channel in channels.values():
                await channel.close()
        assert result.provider_id == twilio.messages[0]["sid"]
