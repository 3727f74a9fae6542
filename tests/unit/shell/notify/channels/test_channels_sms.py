"""The Twilio SMS channel, through the real `twilio` package, against the Messages stand-in."""

from __future__ import annotations

import asyncio
import base64
import re
import time

import pytest
from standins.twilio_api import TwilioStandIn

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, TemporaryFailure
from vigil.shell.notify.channels.sms import TWILIO_MAX_BODY, TwilioSms, shorten_sms

SID = "AC" + "1f" * 16
TOKEN = "s3cret-token"
FROM = "+15005550006"
EMERGENCY = "If you feel worse, call 999 now."

# twilio-python's own aiohttp calls use BasicAuth, deprecated in aiohttp 3.12+: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")


def sms(body: str = "Your heart rate is high: 128 bpm.\n" + EMERGENCY, to: str = "+447700900123",
        key: str = "alert-1.sms.patient-p-001") -> Delivery:
    return Delivery(key=key, channel="sms", recipient_id="patient:p-001", address=to, audience="patient",
                    subject="Vigil alert", body=body, payload={"alert_id": "alert-1"}, critical=True)


@pytest.fixture
def twilio():
    with TwilioStandIn(SID, TOKEN) as standin:
        yield standin


@pytest.fixture
async def channel(twilio):
    ch = TwilioSms(SID, TOKEN, FROM, api_base=twilio.url, timeout=2)
    yield ch
    await ch.close()


async def test_send_posts_twilio_wire_format_and_returns_the_sid(twilio, channel):
    result = await channel.send(sms(body="心率偏高：128 次/分。\n" + EMERGENCY))

    assert len(twilio.messages) == 1
    message = twilio.messages[0]
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert result.provider_id == message["sid"]
    assert message["to"] == "+447700900123" and message["from"] == FROM
    assert message["body"] == "心率偏高：128 次/分。\n" + EMERGENCY  # UTF-8 survives the form encoding
    assert message["num_segments"] == "1"  # UCS-2, 44 characters: one 70-character segment
    request = twilio.requests[0]
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.form == {"To": "+447700900123", "From": FROM, "Body": message["body"]}
    assert base64.b64decode(request.headers["Authorization"][6:]).decode() == f"{SID}:{TOKEN}"
    assert request.headers["User-Agent"].startswith("twilio-python/9.")
    # Twilio's Messages API honours no idempotency header, so none is sent (see sms.py).
    assert not any(h.lower().startswith("i-twilio-idempotency") for h in request.headers)


async def test_invalid_to_400_is_permanent(twilio, channel):
    twilio.fail_next(1, status=400, code=21211)
    with pytest.raises(PermanentFailure, match="21211"):
        await channel.send(sms())
    assert twilio.messages == []


async def test_the_standin_validates_like_twilio(twilio):
    # Past the channel's own E.164 check, the wire-level answer is Twilio's 400/21211.
    from twilio.base.exceptions import TwilioRestException

    ch = TwilioSms(SID, TOKEN, FROM, api_base=twilio.url)
    try:
        with pytest.raises(TwilioRestException) as raised:
            await ch._twilio().messages.create_async(to="+1", from_=FROM, body="x")
        assert (raised.value.status, raised.value.code) == (400, 21211)
    finally:
        await ch.close()


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_temporary_then_a_retry_succeeds(twilio, channel, status):
    twilio.fail_next(1, status=status)
    with pytest.raises(TemporaryFailure, match=str(status)):
        await channel.send(sms())
    assert twilio.messages == []

    result = await channel.send(sms())  # what the dispatcher's retry does
    assert result.provider_id == twilio.messages[0]["sid"]


async def test_bad_credentials_are_permanent(twilio):
    ch = TwilioSms(SID, "wrong-token", FROM, api_base=twilio.url)
    try:
        with pytest.raises(PermanentFailure, match="401.*20003"):
            await ch.send(sms())
    finally:
        await ch.close()
    assert twilio.messages == []


async def test_a_hung_provider_times_out_as_temporary_and_shows_the_duplicate_window(twilio):
    ch = TwilioSms(SID, TOKEN, FROM, api_base=twilio.url, timeout=0.3)
    twilio.hang_next(1, seconds=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(TemporaryFailure, match="no answer"):
            await ch.send(sms())
        assert time.monotonic() - started < 0.9
        # The stand-in, like Twilio, still accepts the hung request: the dispatcher's retry will
        # send a second SMS. That is the documented at-least-once window.
        for _ in range(40):
            if twilio.messages:
                break
            await asyncio.sleep(0.05)
        assert len(twilio.messages) == 1
        await ch.send(sms())
        assert len(twilio.messages) == 2
    finally:
        await ch.close()


async def test_connection_refused_is_temporary(free_port):
    ch = TwilioSms(SID, TOKEN, FROM, api_base=f"http://127.0.0.1:{free_port}")
    try:
        with pytest.raises(TemporaryFailure):
            await ch.send(sms())
    finally:
        await ch.close()


async def test_an_address_that_is_not_e164_fails_permanently_without_a_request(twilio, channel):
    for bad in ("07700 900123", "+44 7700 900123", "", "+4477009001234567"):
        with pytest.raises(PermanentFailure):
            await channel.send(sms(to=bad))
    assert twilio.requests == []


async def test_an_overlong_body_is_shortened_and_accepted(twilio, channel):
    long_body = "Heart rate 128 bpm, SpO2 89 %. " * 120 + "\n" + EMERGENCY
    await channel.send(sms(body=long_body))
    sent = twilio.messages[0]["body"]
    assert len(sent) <= TWILIO_MAX_BODY
    assert sent.endswith("…\n" + EMERGENCY)


def test_shorten_keeps_short_bodies_and_the_last_line():
    assert shorten_sms("short\n" + EMERGENCY) == "short\n" + EMERGENCY
    body = "x " * 1000 + "\n" + EMERGENCY
    out = shorten_sms(body, 200)
    assert len(out) <= 200 and out.endswith("…\n" + EMERGENCY)
    assert out.startswith("x x")
    # No newline (or a huge last line): a plain head cut at a word boundary, still within limit.
    plain = shorten_sms("word " * 500, 100)
    assert len(plain) <= 100 and plain.endswith("word…")
    exact = "a" * TWILIO_MAX_BODY
    assert shorten_sms(exact) == exact
