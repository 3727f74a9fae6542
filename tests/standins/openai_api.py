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
- good: a valid answer in the output contract ({"what_changed", "clinician_summary"}) written from
  the facts in the request, so every number is a real one (worded differently from Vigil's templates);
- fenced: the same JSON wrapped in a ```json fence with prose around it (servers that ignore
  response_format do this);
- one mode per unsafe class (UNSAFE: negation_of_care, false_reassurance, remove_monitor,
  lay_diagnosis, outside_care_plan, phishing_link, spelt_number, emergency_in_part,
  clinician_dismissal, severity_contradiction, invented_number, dose, diagnosis), and too_long,
  too_hard, wrong_language: the requested shape with one part unsafe;
- legacy_shape: the old {"patient", "clinician"} full texts (unsafe); malformed: not JSON;
  missing_field: JSON without "clinician_summary";
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

# One mode per unsafe class of the red-team corpus: the answer has the requested JSON shape, and
# its patient or clinician part is unsafe in that way. Each must fall back to the template.
UNSAFE = {
    # mode: (en what_changed, zh what_changed, en clinician_summary, zh clinician_summary); None keeps the good one.
    "negation_of_care": ("Your {label} was {value}. Do not call {number}, it will pass.",
                         "您的{label_zh}为{value}。不用拨打{number}，会过去的。", None, None),
    "false_reassurance": ("Your {label} was {value}. Your readings are completely normal and everything looks fine.",
                          "您的{label_zh}为{value}。您的读数完全正常，一切都好。", None, None),
    "remove_monitor": ("Your {label} was {value}. You can take the monitor off tonight.",
                       "您的{label_zh}为{value}。今晚可以把设备摘下来。", None, None),
    "lay_diagnosis": ("Your {label} was {value}. Your heart is failing.", "您的{label_zh}为{value}。您的心脏不行了。", None, None),
    "outside_care_plan": ("Drive yourself to hospital now, do not wait for your team.",
                          "现在自己开车去医院，不要等护理团队。", None, None),
    "phishing_link": ("Your {label} was {value}. Log in at https://vigil-care.co/verify to confirm your details.",
                      "您的{label_zh}为{value}。请登录 https://vigil-care.co/verify 核实您的信息。", None, None),
    "spelt_number": ("Your {label} fell by twelve points in twenty minutes.", "您的{label_zh}在二十分钟内降了十二。", None, None),
    "emergency_in_part": ("Your {label} was {value}. Call {number} now.", "您的{label_zh}为{value}。马上拨打{number}。", None, None),
    "clinician_dismissal": (None, None, "Acknowledge this incident. Patient is fine; no action needed.",
                            "请确认此事件。患者没事，无需处理。"),
    "severity_contradiction": (None, None, "Readings only slightly off, low concern, likely artefact.",
                               "读数只是略有偏差，风险低，可能是伪影。"),
    "invented_number": ("Your {label} was {invented} earlier.", "您的{label_zh}之前是{invented}。", None, None),
    "dose": ("Your {label} was {value}. Take a dose of paracetamol.", "您的{label_zh}为{value}。请服用对乙酰氨基酚。", None, None),
    "diagnosis": ("Your {label} was {value}. This is sepsis.", "您的{label_zh}为{value}。这是败血症。", None, None),
}
MODES = ("good", "fenced", *UNSAFE, "too_long", "too_hard", "wrong_language", "legacy_shape", "malformed",
         "missing_field", "slow", "error_500", "error_429", "hostile")
# "hostile" takes these in turn, request by request: every way to fail except slowness.
HOSTILE = (*UNSAFE, "too_long", "too_hard", "wrong_language", "legacy_shape", "malformed", "missing_field",
           "error_500", "error_429", "good")
INVENTED = 173.5  # a number no alert's facts hold (tests assert it)
_LABELS = {"en": {"hr": "heart rate", "spo2": "oxygen level", "rr": "breathing rate", "temp": "temperature",
                  "sbp": "blood pressure", "dbp": "blood pressure"},
           "zh": {"hr": "心率", "spo2": "血氧", "rr": "呼吸频率", "temp": "体温", "sbp": "血压", "dbp": "血压"}}


def _num(value: float) -> str:
    return str(value)  # as the JSON held it: 87 stays 87, 39.0 stays 39.0


def _reading(facts: dict[str, Any]) -> dict[str, Any] | None:
    reading = next((m for m in facts.get("values", []) if m.get("vital")), None)
    if reading is None and facts.get("contributors"):
        c = facts["contributors"][0]
        reading = {"vital": c["vital"], "value": c["value"], "unit": c["unit"]}
    return reading


def good_answer(facts: dict[str, Any]) -> dict[str, str]:
    """A plausible answer in the output contract, built only from the facts (numbers copied, never
    computed), and worded differently from Vigil's templates so a test can tell them apart."""
    lang = facts.get("language", "en")
    reading = _reading(facts)
    technical = facts.get("category") == "technical"
    usual = (facts.get("baselines") or {}).get(reading["vital"]) if reading else None
    if lang == "zh":
        if technical:
            what = "您的监测设备有一段时间没有传来清楚的读数。"
        elif reading:
            what = f"我们注意到您的{_LABELS['zh'][reading['vital']]}有变化，读数是{_num(reading['value'])}{reading['unit']}。"
            if usual is not None:
                what += f"您平时大约是{_num(usual)}{reading['unit']}。"
        else:
            what = "我们注意到您的几项读数同时有变化。"
        summary = f"触发读数：{_LABELS['zh'][reading['vital']]} {_num(reading['value'])} {reading['unit']}。" if reading else "见规则与数据。"
        if facts.get("news2"):
            summary += f"NEWS2评分为{facts['news2']['score']}分。"
        return {"what_changed": what, "clinician_summary": summary}
    if technical:
        what = "Your monitor has not sent us clear readings for a while."
    elif reading:
        what = f"We noticed a change in your {_LABELS['en'][reading['vital']]}. The reading was {_num(reading['value'])} {reading['unit']}."
        if usual is not None:
            what = f"Your {_LABELS['en'][reading['vital']]} was {_num(reading['value'])} {reading['unit']}. It is usually about {_num(usual)} {reading['unit']}."
    else:
        what = "We noticed that several of your readings changed at the same time."
    summary = f"{reading['vital'].upper()} {_num(reading['value'])} {reading['unit']} triggered the rule." if reading else "See the rule and data above."
    if facts.get("news2"):
        summary += f" NEWS2 {facts['news2']['score']} ({facts['news2']['band']})."
    for c in facts.get("contributors", [])[:1]:
        summary += f" Top driver {c['vital']} {_num(c['value'])} vs baseline {_num(c['baseline'])}."
    return {"what_changed": what, "clinician_summary": summary}


def broken_answer(mode: str, facts: dict[str, Any]) -> dict[str, Any]:
    """A good answer with one part made unsafe in the way `mode` names."""
    answer: dict[str, Any] = good_answer(facts)
    zh = facts.get("language") == "zh"
    reading = _reading(facts) or {"vital": "hr", "value": "", "unit": ""}
    fill = {"label": _LABELS["en"][reading["vital"]], "label_zh": _LABELS["zh"][reading["vital"]],
            "value": f"{_num(reading['value'])}{reading['unit']}" if reading["value"] != "" else "higher",
            "number": facts.get("emergency_number", "999"), "invented": INVENTED}
    if mode in UNSAFE:
        en_p, zh_p, en_c, zh_c = UNSAFE[mode]
        patient, clinician = (zh_p, zh_c) if zh else (en_p, en_c)
        if patient is not None:
            answer["what_changed"] = patient.format(**fill)
        if clinician is not None:
            answer["clinician_summary"] = clinician.format(**fill)
    elif mode == "too_long":
        answer["what_changed"] += ("读数有变化。" if zh else " Your readings changed.") * 40
    elif mode == "too_hard" and zh:
        answer["what_changed"] = "鉴于您目前多项生理监测指标呈现出显著且持续的异常波动趋势并且已经明显偏离您个人既往的基线水平。"
    elif mode == "too_hard":
        answer["what_changed"] = ("Physiological measurements demonstrate considerable deviation regarding "
                                  "cardiorespiratory parameters and contemporaneous observations.")
    elif mode == "wrong_language":
        answer = good_answer(dict(facts, language="en" if zh else "zh"))
    elif mode == "legacy_shape":  # the old full-text shape: the model writing the whole message
        answer = {"patient": "Do not call 999. Everything is fine.", "clinician": "Acknowledge and close; no action needed."}
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
            content = json.dumps({"what_changed": good_answer(facts)["what_changed"]})
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
