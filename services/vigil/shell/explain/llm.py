"""Any OpenAI-compatible chat-completions endpoint as an explanation backend.

OpenAI, Azure OpenAI, vLLM, Ollama and llama.cpp all speak this wire format, so one client
(`openai.AsyncOpenAI` with a configurable base URL) covers them. The model is sent the facts
as JSON and nothing else; it answers two short fields (what changed, for the patient; a
summary, for the ward), and what it returns is only a candidate: `Explainer` checks it and falls
back to the template when it fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

from openai import AsyncOpenAI
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from vigil.shell.explain.checks import MAX_READING_GRADE
from vigil.shell.explain.facts import AlertFacts
from vigil.shell.explain.safety import PART_LIMITS
from vigil.settings import WithSecretFiles, refuse_plain_http


class LlmConfig(WithSecretFiles):
    """VIGIL_LLM_BASE_URL turns the backend on; VIGIL_LLM_MODEL, _API_KEY (or _API_KEY_FILE), _TIMEOUT_S tune it.
    The key goes only over https, or http to loopback (`check_transport`)."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_LLM_", extra="ignore")

    base_url: str | None = None
    model: str = "gpt-4o-mini"
    # Local servers (vLLM, Ollama, llama.cpp) accept any key; the client insists on one.
    api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = 4.0
    temperature: float = 0.2
    max_tokens: int = 700
    allow_plain_http: bool = Field(False, validation_alias=AliasChoices("VIGIL_ALLOW_PLAIN_HTTP", "allow_plain_http"))

    def check_transport(self) -> None:
        """Refuse (SettingsError) a base URL that would carry the API key over plain HTTP off this machine."""
        refuse_plain_http(self.base_url, "VIGIL_LLM_BASE_URL", allow=self.allow_plain_http)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    @classmethod
    def from_env(cls) -> "LlmConfig | None":
        """The configuration from the environment, or None when VIGIL_LLM_BASE_URL is unset."""
        config = cls()
        return config if config.enabled else None


class BadOutput(ValueError):
    """The model answered, but not with a JSON object holding both texts."""


LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese (简体中文)"}


def system_prompt(language: str) -> str:
    """The output contract the model is told. The checks enforce it whatever the model does."""
    p_sentences, p_chars = PART_LIMITS[("patient", language)]
    c_sentences, c_chars = PART_LIMITS[("clinician", language)]
    return (
        "You explain one remote-monitoring alert for a virtual ward. "
        "The user message is a JSON object of facts about the alert; it is all you know.\n"
        "Return only a JSON object with two string fields, "
        f"both in {LANGUAGE_NAMES.get(language, 'English')}:\n"
        f"- \"what_changed\": for the patient, at most {p_sentences} short sentences and {p_chars} characters, "
        f"reading grade {MAX_READING_GRADE:g} or below: which reading changed and how it compares with their usual value. "
        "Vigil adds, in its own words, what to do, who has been told and when to call emergency services: do not write any of that.\n"
        f"- \"clinician_summary\": for the ward, at most {c_sentences} sentences and {c_chars} characters: "
        "what the data show (values, baselines, trend, NEWS2 breakdown, model risk and its drivers). "
        "Vigil adds the full data and the severity.\n"
        "Both fields must not contain: instructions or advice of any kind (to act or not to act, to call, wait, "
        "acknowledge, dismiss, rest, remove or keep the monitor); any statement that things are normal, fine or "
        "not serious; any diagnosis or cause, in any words, hedged or not; medicines, doses or oxygen; phone numbers, "
        "links, e-mail addresses, questions or requests for information; numbers that are not in the facts, written "
        "exactly as there (no words for numbers, no computed differences)."
    )


_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
FIELDS = ("what_changed", "clinician_summary")


def parse_texts(content: str | None) -> tuple[str, str]:
    """(what_changed, clinician_summary) from the model's content: plain JSON, fenced JSON, or the
    first {...} in prose (servers that ignore response_format often wrap the object). Any other
    field is ignored: nothing the model writes outside these two is ever read."""
    if not content:
        raise BadOutput("empty content")
    candidates = [content.strip()]
    candidates += _FENCED.findall(content)
    start, end = content.find("{"), content.rfind("}")
    if 0 <= start < end:
        candidates.append(content[start:end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and all(isinstance(data.get(f), str) for f in FIELDS):
            return data["what_changed"].strip(), data["clinician_summary"].strip()
    raise BadOutput("no JSON object with string fields what_changed and clinician_summary")


class LlmBackend:
    """One AsyncOpenAI client per backend: its connection pool is reused across alerts."""

    def __init__(self, config: LlmConfig) -> None:
        config.check_transport()  # at start-up: the key never leaves over plain HTTP
        self.config = config
        self._client: AsyncOpenAI | None = None
        # The openai package imports its chat resources on first use (~0.6 s here): pay that at
        # start-up, not out of the first alert's time budget.
        _ = self.client.chat.completions

    @property
    def client(self) -> AsyncOpenAI:
        if self._client is None:
            self._client = AsyncOpenAI(
                base_url=self.config.base_url, api_key=self.config.api_key.get_secret_value(),
                # The explainer's asyncio.timeout is the hard limit; this only stops the client
                # waiting on a socket long after the caller gave up. No retries: a retry would
                # blow the time budget, and the template is always there.
                timeout=self.config.timeout_s + 1.0, max_retries=0,
            )
        return self._client

    def messages(self, facts: AlertFacts) -> list[dict[str, Any]]:
        return [{"role": "system", "content": system_prompt(facts.language)},
                {"role": "user", "content": facts.as_json()}]

    async def complete(self, facts: AlertFacts) -> tuple[str, str]:
        """Ask the model; return (what_changed, clinician_summary) unchecked. Raises on transport errors and
        BadOutput on an answer that is not the JSON object asked for."""
        response = await self.client.chat.completions.create(
            model=self.config.model,
            messages=self.messages(facts),  # type: ignore[arg-type]
            response_format={"type": "json_object"},
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
        )
        if not response.choices:
            raise BadOutput("no choices")
        return parse_texts(response.choices[0].message.content)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
