"""Any OpenAI-compatible chat-completions endpoint as an explanation backend.

OpenAI, Azure OpenAI, vLLM, Ollama and llama.cpp all speak this wire format, so one client
(`openai.AsyncOpenAI` with a configurable base URL) covers them. The model is sent the facts
as JSON and nothing else; what it returns is only a candidate: `Explainer` checks it and falls
back to the template when it fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

from openai import AsyncOpenAI
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.shell.explain.checks import MAX_CHARS, MAX_READING_GRADE
from vigil.shell.explain.facts import AlertFacts


class LlmConfig(BaseSettings):
    """VIGIL_LLM_BASE_URL turns the backend on; VIGIL_LLM_MODEL, _API_KEY, _TIMEOUT_S tune it."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_LLM_", extra="ignore")

    base_url: str | None = None
    model: str = "gpt-4o-mini"
    # Local servers (vLLM, Ollama, llama.cpp) accept any key; the client insists on one.
    api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = 4.0
    temperature: float = 0.2
    max_tokens: int = 700

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
    """The rules the model is told. The checks enforce them whatever the model does."""
    patient_limit = MAX_CHARS[("patient", language)]
    clinician_limit = MAX_CHARS[("clinician", language)]
    return (
        "You write explanations of one remote-monitoring alert for a virtual ward. "
        "The user message is a JSON object of facts about the alert; it is all you know.\n"
        "Return only a JSON object with two string fields: \"patient\" and \"clinician\". "
        f"Write both in {LANGUAGE_NAMES.get(language, 'English')}.\n"
        "Rules for both texts:\n"
        "- Use only numbers that appear in the facts, written exactly as they appear there. "
        "Do not compute, round or invent numbers, times or counts.\n"
        "- Never state a diagnosis as certain. If you mention a possible cause, hedge it (\"may\", \"could\").\n"
        "- Never mention medicines, doses, tablets or changes to oxygen.\n"
        "The patient text:\n"
        f"- calm, plain words, short sentences, reading grade {MAX_READING_GRADE:g} or below, at most {patient_limit} characters;\n"
        "- say what the reading was and what to do now;\n"
        "- for a clinical alert, say to call emergency_number now if they feel very unwell, have chest pain "
        "or struggle to breathe, and say that Vigil helps their care team and does not replace it;\n"
        "- for a technical alert (category technical), give practical device advice and no emergency warning.\n"
        "The clinician text:\n"
        f"- concise clinical shorthand, at most {clinician_limit} characters;\n"
        "- the values, baselines, trend, the rule, the NEWS2 score with its breakdown, and the model risk "
        "with its top contributors when present."
    )


_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def parse_texts(content: str | None) -> tuple[str, str]:
    """(patient, clinician) from the model's content: plain JSON, fenced JSON, or the first
    {...} in prose (servers that ignore response_format often wrap the object)."""
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
        if isinstance(data, dict) and isinstance(data.get("patient"), str) and isinstance(data.get("clinician"), str):
            return data["patient"].strip(), data["clinician"].strip()
    raise BadOutput("no JSON object with string fields patient and clinician")


class LlmBackend:
    """One AsyncOpenAI client per backend: its connection pool is reused across alerts."""

    def __init__(self, config: LlmConfig) -> None:
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
        """Ask the model; return (patient, clinician) unchecked. Raises on transport errors and
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
