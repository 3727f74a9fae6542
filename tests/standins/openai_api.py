"""A local stand-in for an OpenAI-compatible chat-completions server, speaking its wire format.

OpenAI is paid SaaS, so tests talk to this instead: `POST /v1/chat/completions` answered by a
real-shaped `chat.completion` object (or an `{"error": {...}}` body with the right status), and
`GET /v1/models`. What it answers is scripted per request:

    with OpenAIStandIn() as llm:            # base_url = llm.base_url
        llm.mode = "good"                   # the default for every request
        llm.script("slow", "error_500")     # the next two requests, then back to llm.mode
        ...
        llm.requests                        # every request: method, path, headers, body (parsed)

Modes:
- good: a valid answer written from the facts in the request, so every number is a real one
  (a different wording from Vigil's templates, so a test can tell them apart);
- fenced: the same JSON wrapped in a ```json fence with prose around it (servers that ignore
  response_format do this);
- invented_number, dose, diagnosis, no_emergency, too_long, too_hard, wrong_language: a good
  answer with exactly one rule broken in the patient text;
- malformed: content that is not JSON; missing_field: JSON without "clinician";
- slow: a good answer after `slow_s` seconds; error_500, error_429: error bodies;
- hostile: each request the next of HOSTILE (every failure but slowness, and a good answer).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("good", "fenced", "invented_number", "dose", "diagnosis", "no_emergency", "too_long", "too_hard",
         "wrong_language", "malformed", "missing_field", "slow", "error_500", "error_429", "hostile")
# "hostile" takes these in turn, request by request: every way to fail except slowness.
HOSTILE = ("invented_number", "dose", "diagnosis", "no_emergency", "too_long", "too_hard", "wrong_language",
           "malformed", "missing_field", "error_500", "error_429", "good")
INVENTED = 173.5  # a number no alert's facts hold (tests assert it)
_LABELS = {"en": {"hr": "heart rate", "spo2": "oxygen level", "rr": "breathing rate", "temp": "temperature",
                  "sbp": "blood pressure", "dbp": "blood pressure"},
           "zh": {"hr": "心率", "spo2": "血氧", "rr": "呼吸频率", "temp": "体温", "sbp": "血压", "dbp": "血压"}}


def _num(value: float) -> str:
    return str(value)  # as the JSON held it: 87 stays 87, 39.0 stays 39.0


def good_answer(facts: dict[str, Any]) -> dict[str, str]:
    """A plausible model answer built only from the facts (numbers copied, never computed)."""
    lang = facts.get("language", "en")
    number = facts.get("emergency_number", "999")
    reading = next((m for m in facts.get("values", []) if m.get("vital")), None)
    technical = facts.get("category") == "technical"
    if lang == "zh":
        seen = f"您的{_LABELS['zh'][reading['vital']]}读数是{_num(reading['value'])}{reading['unit']}。" if reading else "您的读数有了变化。"
        if technical:
            patient = "您的监测设备需要检查一下。请确认设备有电、已开机并戴好。如果您感到不适，请照常联系护理团队。"
        else:
            patient = (f"我们注意到您的读数有变化。{seen}请先坐下休息，把手机放在身边。护理团队会查看这些读数。"
                       f"如果您感到非常不适、胸痛或呼吸困难，请马上拨打{number}。Vigil帮助您的护理团队，不能代替他们。")
        severity = {"critical": "危急", "high": "高", "medium": "中", "low": "低"}[facts["severity"]]
        clinician = f"警报级别为{severity}，类型为{facts['kind']}。"
        if reading:
            clinician += f"触发读数：{_LABELS['zh'][reading['vital']]} {_num(reading['value'])} {reading['unit']}。"
        if facts.get("news2"):
            clinician += f"NEWS2评分为{facts['news2']['score']}分。"
        clinician += "请临床团队复核。"
        return {"patient": patient, "clinician": clinician}
    seen = f"Your {_LABELS['en'][reading['vital']]} reading was {_num(reading['value'])} {reading['unit']}." if reading else "Your readings have changed."
    if technical:
        patient = "Your monitor needs a quick check. Please make sure it is charged, switched on and worn. If you feel unwell, contact your care team as usual."
    else:
        patient = (f"We noticed a change in your readings. {seen} Please sit down, rest and keep your phone close. "
                   f"Your care team will look at this. If you feel very unwell, have chest pain or struggle to breathe, "
                   f"call {number} now. Vigil supports your care team and does not replace them.")
    clinician = f"{facts['severity'].upper()} {facts['kind']}." + (f" {reading['vital'].upper()} {_num(reading['value'])} {reading['unit']}." if reading else "")
    if facts.get("news2"):
        clinician += f" NEWS2 {facts['news2']['score']} ({facts['news2']['band']})."
    for c in facts.get("contributors", [])[:1]:
        clinician += f" Top driver {c['vital']} {_num(c['value'])} vs baseline {_num(c['baseline'])}."
    return {"patient": patient, "clinician": clinician}


def broken_answer(mode: str, facts: dict[str, Any]) -> dict[str, str]:
    """A good answer with exactly one rule broken in the patient text."""
    answer = good_answer(facts)
    zh = facts.get("language") == "zh"
    number = facts.get("emergency_number", "999")
    if mode == "invented_number":
        answer["patient"] += f"您的心率为每分钟{INVENTED}次。" if zh else f" Your heart rate was {INVENTED} earlier."
    elif mode == "dose":
        answer["patient"] += "现在请服用对乙酰氨基酚。" if zh else " Take a dose of paracetamol now."
    elif mode == "diagnosis":
        answer["patient"] += "这是败血症。" if zh else " This is sepsis."
    elif mode == "no_emergency":
        sentences = answer["patient"].split("。" if zh else ". ")
        answer["patient"] = ("。" if zh else ". ").join(s for s in sentences if number not in s)
    elif mode == "too_long":
        answer["patient"] += ("请休息。" if zh else " Please rest.") * 120
    elif mode == "too_hard" and zh:
        answer["patient"] = (
            "鉴于您目前多项生理监测指标呈现出显著且持续的异常波动趋势并且已经明显偏离您个人既往的基线水平因此我们强烈建议"
            f"您务必立即暂停一切日常活动保持安静坐姿同时密切留意自身任何新出现的不适症状如果出现明显呼吸困难请立即拨打{number}。")
    elif mode == "too_hard":
        answer["patient"] = (
            "Physiological measurements demonstrate considerable deterioration, necessitating immediate "
            "multidisciplinary consultation regarding cardiorespiratory parameters and contemporaneous "
            f"observations. Telephone {number} immediately if experiencing considerable respiratory difficulty.")
    elif mode == "wrong_language":
        other = dict(facts, language="en" if zh else "zh")
        answer = good_answer(other)
    return answer


class _Handler(BaseHTTPRequestHandler):
    server: "OpenAIStandIn"  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: object) -> None:  # keep test output clean
        return None

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def _error(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})

    def _authorised(self, record: dict[str, Any]) -> bool:
        key = self.server.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return False

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        record = {"method": "GET", "path": self.path, "headers": dict(self.headers), "body": None}
        self.server.requests.append(record)
        if not self._authorised(record):
            return
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"Unknown path {self.path}", "invalid_request_error", "not_found")
            return
        self._send(200, {"object": "list", "data": [
            {"id": self.server.model, "object": "model", "created": 1_700_000_000, "owned_by": "vigil-standin"}]})

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        record = {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
        self.server.requests.append(record)
        if not self._authorised(record):
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"Unknown path {self.path}", "invalid_request_error", "not_found")
            return
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            self._error(400, "'model' and 'messages' are required.", "invalid_request_error")
            return
        mode = self.server.next_mode()
        if mode == "error_500":
            self._error(500, "The server had an error while processing your request.", "server_error")
            return
        if mode == "error_429":
            self._error(429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded")
            return
        if mode == "slow":
            self.server.stopping.wait(self.server.slow_s)
        try:
            facts = json.loads(body["messages"][-1]["content"])
        except (ValueError, KeyError, TypeError):
            facts = {"language": "en", "severity": "low", "kind": "unknown", "category": "clinical"}
        if mode == "malformed":
            content = "Sure! The patient should rest and the clinician should review the readings."
        elif mode == "missing_field":
            content = json.dumps({"patient": good_answer(facts)["patient"]})
        elif mode in ("good", "slow", "fenced"):
            content = json.dumps(good_answer(facts), ensure_ascii=False)
            if mode == "fenced":
                content = f"Here is the JSON you asked for:\n```json\n{content}\n```\nLet me know if you need more."
        else:
            content = json.dumps(broken_answer(mode, facts), ensure_ascii=False)
        self.server.completions += 1
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 for m in body["messages"])
        completion_tokens = len(content) // 4
        self._send(200, {
            "id": f"chatcmpl-standin-{self.server.completions}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


class OpenAIStandIn(ThreadingHTTPServer):
    """The stand-in server on 127.0.0.1 and a free port, served from a thread while in `with`."""

    daemon_threads = True
    # socketserver's default backlog is 5: an eval with 8 requests in flight would see SYNs
    # dropped and retried a second later, a delay that belongs to the stand-in, not the explainer.
    request_queue_size = 64

    def __init__(self, mode: str = "good", *, slow_s: float = 10.0, api_key: str | None = None,
                 model: str = "standin-gpt") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.slow_s = slow_s
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.completions = 0
        self.stopping = threading.Event()  # wakes slow answers when the server closes
        self._scripted: deque[str] = deque()
        self._hostile_turn = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def script(self, *modes: str) -> None:
        """The modes of the next requests, in order; then `mode` again."""
        unknown = set(modes) - set(MODES)
        if unknown:
            raise ValueError(f"unknown modes {sorted(unknown)}")
        with self._lock:
            self._scripted.extend(modes)

    def next_mode(self) -> str:
        with self._lock:
            mode = self._scripted.popleft() if self._scripted else self.mode
            if mode == "hostile":
                mode = HOSTILE[self._hostile_turn % len(HOSTILE)]
                self._hostile_turn += 1
            return mode

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith("/v1/chat/completions")]

    def __enter__(self) -> "OpenAIStandIn":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
