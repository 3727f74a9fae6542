"""The SMTP e-mail channel against a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, TemporaryFailure
from vigil.shell.notify.channels.email import SmtpEmail, message_id_for

SENDER = "alerts@ward.example.org"


class Mailbox:
    """aiosmtpd handler: keeps every accepted envelope; refuses scripted recipients."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse_rcpt: dict[str, str] = {}  # address -> SMTP reply
        self.data_reply: str | None = None  # e.g. "451 4.3.0 try later"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ARG001
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"ward", b"pw")
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535 itself


@pytest.fixture
def smtp(free_port):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port,
                            authenticator=_authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield mailbox, free_port
    finally:
        controller.stop()


def mail(key: str = "alert-7.email.team-dr-ahmed", to: str = "dr.ahmed@clinic.example.org",
         subject: str = "Vigil: 病人 p-001 心率升高", body: str = "心率 128 次/分，血氧 89%。\n请立即查看。",
         critical: bool = True) -> Delivery:
    return Delivery(key=key, channel="email", recipient_id="team:dr-ahmed", address=to, audience="clinician",
                    subject=subject, body=body, payload={"alert_id": "alert-7"}, critical=critical)


def parse(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)


async def test_send_delivers_utf8_with_stable_message_id(smtp):
    mailbox, port = smtp
    channel = SmtpEmail("127.0.0.1", port, SENDER)
    result = await channel.send(mail())

    assert len(mailbox.envelopes) == 1
    envelope = mailbox.envelopes[0]
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["dr.ahmed@clinic.example.org"]
    message = parse(envelope)
    assert message["Message-ID"] == "<alert-7.email.team-dr-ahmed@vigil>" == result.provider_id
    assert message["X-Vigil-Idempotency-Key"] == "alert-7.email.team-dr-ahmed"
    assert message["Subject"] == "Vigil: 病人 p-001 心率升高"  # decoded from RFC 2047
    assert message["From"] == SENDER and message["To"] == "dr.ahmed@clinic.example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Priority"] == "1"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().rstrip("\n") == "心率 128 次/分，血氧 89%。\n请立即查看。"
    # On the wire every header is ASCII: the Chinese subject travels encoded.
    raw_headers = (envelope.original_content or envelope.content).split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()


async def test_the_same_key_gives_the_same_message_id_even_when_the_key_needs_hashing(smtp):
    mailbox, port = smtp
    channel = SmtpEmail("127.0.0.1", port, SENDER)
    awkward = "alert:7|email|team:dr ahmed"  # ':' and ' ' are not allowed in a msg-id
    first = await channel.send(mail(key=awkward))
    second = await channel.send(mail(key=awkward))  # a crash-window resend
    assert first.provider_id == second.provider_id == message_id_for(awkward)
    assert first.provider_id is not None and ":" not in first.provider_id and " " not in first.provider_id
    ids = [parse(e)["Message-ID"] for e in mailbox.envelopes]
    assert ids == [first.provider_id, first.provider_id]
    assert [parse(e)["X-Vigil-Idempotency-Key"] for e in mailbox.envelopes] == [awkward, awkward]
    assert message_id_for("other") != message_id_for(awkward)


async def test_non_critical_mail_has_no_priority_header(smtp):
    mailbox, port = smtp
    await SmtpEmail("127.0.0.1", port, SENDER).send(mail(critical=False))
    assert parse(mailbox.envelopes[0])["X-Priority"] is None


async def test_refused_recipient_5xx_is_permanent_4xx_is_temporary(smtp):
    mailbox, port = smtp
    channel = SmtpEmail("127.0.0.1", port, SENDER)
    mailbox.refuse_rcpt["gone@clinic.example.org"] = "550 5.1.1 No such user"
    mailbox.refuse_rcpt["busy@clinic.example.org"] = "452 4.2.2 Mailbox full"
    with pytest.raises(PermanentFailure, match="550"):
        await channel.send(mail(to="gone@clinic.example.org"))
    with pytest.raises(TemporaryFailure, match="452"):
        await channel.send(mail(to="busy@clinic.example.org"))
    assert mailbox.envelopes == []


async def test_data_rejection_maps_by_reply_code(smtp):
    mailbox, port = smtp
    channel = SmtpEmail("127.0.0.1", port, SENDER)
    mailbox.data_reply = "451 4.3.0 Greylisted, try later"
    with pytest.raises(TemporaryFailure, match="451"):
        await channel.send(mail())
    mailbox.data_reply = "554 5.6.0 Message rejected"
    with pytest.raises(PermanentFailure, match="554"):
        await channel.send(mail())
    mailbox.data_reply = None
    await channel.send(mail())
    assert len(mailbox.envelopes) == 1


async def test_login(smtp):
    mailbox, port = smtp
    await SmtpEmail("127.0.0.1", port, SENDER, username="ward", password="pw").send(mail())
    assert len(mailbox.envelopes) == 1
    with pytest.raises(PermanentFailure, match="535"):
        await SmtpEmail("127.0.0.1", port, SENDER, username="ward", password="wrong").send(mail())
    assert len(mailbox.envelopes) == 1


async def test_starttls_against_a_server_without_it_is_permanent(smtp):
    _mailbox, port = smtp
    with pytest.raises(PermanentFailure, match="(?i)starttls"):
        await SmtpEmail("127.0.0.1", port, SENDER, starttls=True).send(mail())


async def test_no_server_is_temporary(free_port):
    with pytest.raises(TemporaryFailure, match="ConnectionRefused"):
        await SmtpEmail("127.0.0.1", free_port, SENDER, timeout=2).send(mail())


async def test_a_malformed_address_is_permanent_without_connecting(free_port):
    channel = SmtpEmail("127.0.0.1", free_port, SENDER)  # nothing listens: any connect would be Temporary
    for bad in ("dr.ahmed", "a@b", "two@a.org,three@b.org", "x@y.org\r\nBcc: z@q.org"):
        with pytest.raises(PermanentFailure):
            await channel.send(mail(to=bad))
