"""Tier 1: Gemini through google-genai `generate_content_stream` (SSE) with the clinical system instruction; a
missing key, HTTP errors, timeouts and empty or blocked answers raise `TierUnavailable` so the cascade moves on."""

from __future__ import annotations

import importlib
import os
from typing import Iterator

from medsight.chat.base import TierUnavailable
from medsight.chat.context import Prompt
from medsight.specs import ModelSpec, register_spec

GEMINI_SPEC = register_spec(
    ModelSpec(
        key="gemini",
        role="chat tier 1: cloud LLM (the paper used Gemini 2.0 Flash)",
        source="Google Gemini API via google-genai; key from GEMINI_API_KEY or GOOGLE_API_KEY",
        offline_source="none (falls through to the next tier: extractive by default)",
        input_spec="system instruction + chat history + fenced case/passages, streamed over SSE",
        memory_mb=0.0,
        priority=90,
        extra={"default_model": "gemini-2.0-flash"},
    )
)


def gemini_api_key() -> str | None:
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


def _http_errors(name: str) -> tuple:
    """The exception class `name` from each HTTP client google-genai may use (httpx, or its fork httpx2)."""
    found = []
    for module in ("httpx", "httpx2"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


class GeminiTier:
    name = "gemini"

    def __init__(self, api_key: str | None = None, model: str | None = None, base_url: str | None = None,
                 timeout_s: float | None = None, temperature: float = 0.2, max_output_tokens: int = 600):
        self.api_key = api_key if api_key is not None else gemini_api_key()
        self.model = model or os.environ.get("MEDSIGHT_GEMINI_MODEL", GEMINI_SPEC.extra["default_model"])
        self.base_url = base_url or os.environ.get("MEDSIGHT_GEMINI_BASE_URL") or None
        self.timeout_s = float(timeout_s or os.environ.get("MEDSIGHT_GEMINI_TIMEOUT", 20))
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self._client = None

    def _get_client(self):
        if self._client is None:
            from google import genai
            from google.genai import types

            http = types.HttpOptions(
                base_url=self.base_url,
                timeout=int(self.timeout_s * 1000),
                # One attempt: a failing cloud tier should hand over quickly, not retry for a minute.
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            self._client = genai.Client(api_key=self.api_key, http_options=http)
        return self._client

    def stream(self, prompt: Prompt) -> Iterator[str]:
        if not self.api_key:
            raise TierUnavailable("no Gemini API key (set GEMINI_API_KEY or GOOGLE_API_KEY)")
        from google.genai import errors, types

        contents = [
            types.Content(role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])])
            for m in prompt.history
        ]
        contents.append(types.Content(role="user", parts=[types.Part(text=prompt.user)]))
        config = types.GenerateContentConfig(
            system_instruction=prompt.system, temperature=self.temperature, max_output_tokens=self.max_output_tokens
        )
        produced = False
        try:
            for chunk in self._get_client().models.generate_content_stream(model=self.model, contents=contents, config=config):
                text = chunk.text if chunk.candidates else None
                if text:
                    produced = True
                    yield text
        except errors.APIError as exc:
            raise TierUnavailable(f"Gemini answered HTTP {exc.code}: {exc.message or exc.status}") from exc
        except _http_errors("TimeoutException") + (TimeoutError,) as exc:
            raise TierUnavailable(f"Gemini timed out after {self.timeout_s:g}s") from exc
        except _http_errors("HTTPError") + (OSError,) as exc:
            raise TierUnavailable(f"Gemini unreachable: {exc}") from exc
        if not produced:
            raise TierUnavailable("Gemini returned no text (blocked or empty answer)")
