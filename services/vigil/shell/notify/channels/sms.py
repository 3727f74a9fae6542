"""SMS through Twilio's Messages API, with the `twilio` package.

Idempotency, honestly: Twilio's Messages API has no idempotency key. `I-Twilio-Idempotency-Token`
is a header Twilio *sends* on its own webhooks so that receivers can drop Twilio's retries; the
REST API does not honour one on `POST .../Messages.json`, and twilio-python's `create()` takes no
custom headers anyway. So nothing in the request can make Twilio drop a duplicate. Vigil relies on
the outbox instead: a row is marked sent once Twilio answered 201, and never sent again after that.
The duplicate window is a crash (or a timeout) between Twilio accepting the message and the outbox
commit: the retry then sends a second SMS. That is at-least-once, which is the right side to err
on for an alert. The key is logged with the returned SID so a duplicate can be traced.

The stand-in is reached by `api_base`: twilio-python's `Domain` objects carry a public
`base_url` (`client.api.base_url`, "https://api.twilio.com"), and every Messages URL is built
from it, so overriding that one attribute needs no patched HTTP client.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, SendResult, TemporaryFailure

log = logging.getLogger("vigil.notify.sms")

TWILIO_API_BASE = "https://api.twilio.com"
# Twilio rejects bodies over 1600 characters (error 21617).
TWILIO_MAX_BODY = 1600
# A trailing line at most this long is kept whole when a body is shortened: by convention that
# line is the "call emergency services" instruction, the one line a patient must never lose.
_MAX_KEPT_TAIL = 400


class TwilioSms:
    """The `sms` channel. One Twilio client (and its aiohttp session) per channel."""

    name = "sms"

    def __init__(self, account_sid: str, auth_token: str, from_number: str,
                 api_base: str = TWILIO_API_BASE, timeout: float = 10.0,
                 max_body: int = TWILIO_MAX_BODY) -> None:
        if not (account_sid and auth_token and from_number):
            raise ValueError("TwilioSms needs account_sid, auth_token and from_number")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._from = from_number
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout
        self._max_body = max_body
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    def _twilio(self) -> Client:
        # Built on first send, inside the running loop: AsyncTwilioHttpClient opens an aiohttp
        # session in its constructor, and a session must belong to the loop that uses it.
        if self._client is None:
            self._http = AsyncTwilioHttpClient()
            # environment={} would fall back to os.environ (it is falsy); TWILIO_EDGE/REGION from
            # there would rewrite the host, which must not happen to a stand-in URL.
            env = {"VIGIL": "1"} if self._api_base != TWILIO_API_BASE else None
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http,
                                  environment=env)
            self._client.api.base_url = self._api_base
        return self._client

    async def send(self, delivery: Delivery) -> SendResult:
        to = delivery.address.strip()
        if not _looks_e164(to):
            raise PermanentFailure(f"not an E.164 phone number: {to!r}")
        body = shorten_sms(delivery.body, self._max_body)
        client = self._twilio()
        try:
            # twilio-python sets no timeout on async requests; without this a hung provider would
            # hold the dispatcher's worker for ever.
            message = await asyncio.wait_for(
                client.messages.create_async(to=to, from_=self._from, body=body), self._timeout)
        except asyncio.TimeoutError as exc:
            # Twilio may have accepted it: the retry can duplicate (see the module docstring).
            raise TemporaryFailure(f"twilio: no answer in {self._timeout}s") from exc
        except TwilioRestException as exc:
            raise _classify(exc.status, exc.code, exc.msg) from exc
        except TwilioServiceException as exc:  # RFC 9457 errors from newer Twilio services
            raise _classify(exc.status, exc.code, str(exc)) from exc
        except TwilioException as exc:
            raise TemporaryFailure(f"twilio: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:  # connection refused, reset, DNS
            raise TemporaryFailure(f"twilio: {type(exc).__name__}: {exc}") from exc
        log.info("sms accepted", extra={"key": delivery.key, "sid": message.sid,
                                         "segments": message.num_segments})
        return SendResult(provider_id=message.sid)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


def _classify(status: int | None, code: int | None, message: str) -> PermanentFailure | TemporaryFailure:
    text = f"twilio {status} (error {code}): {message}"
    # 408 and 429 are "try later"; any other 4xx (21211 invalid 'To', 21610 unsubscribed recipient,
    # 20003 bad credentials) will fail the same way again. 5xx may have been accepted or not.
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return PermanentFailure(text)
    return TemporaryFailure(text)


def _looks_e164(number: str) -> bool:
    return number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16


def shorten_sms(body: str, limit: int = TWILIO_MAX_BODY) -> str:
    """Fit `body` into `limit` characters, cutting the middle rather than the last line.

    Alert texts end with the instruction on when to call emergency services; a plain head cut
    would drop exactly that. So the final line is kept whole (when it is reasonably short) and
    the text before it is cut at a word boundary, marked with an ellipsis.
    """
    if len(body) <= limit:
        return body
    head, sep, tail = body.rstrip().rpartition("\n")
    if not sep or len(tail) > min(_MAX_KEPT_TAIL, limit // 2):
        head, tail = body, ""
    room = limit - len(tail) - (2 if tail else 1)  # the ellipsis, and the newline before the tail
    cut = head[:room]
    if " " in cut[room // 2:]:
        cut = cut[: cut.rfind(" ")]
    shortened = cut.rstrip() + "…"
    return f"{shortened}\n{tail}" if tail else shortened
