"""Mapping the openai SDK's errors onto the bus's retry semantics."""

from __future__ import annotations

import openai

from .bus.errors import PermanentError, TransientError
from .http import retry_after_seconds


def translate_openai_error(exc: openai.OpenAIError, what: str) -> Exception:
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = getattr(exc, "code", None)
        message = f"openai {what} failed with HTTP {status}" + (f" ({code})" if code else "")
        if status == 429 and code == "insufficient_quota":
            return PermanentError(message)
        if status in (408, 409, 429) or status >= 500:
            return TransientError(message, retry_after=retry_after_seconds(exc.response.headers))
        return PermanentError(message)
    if isinstance(exc, openai.APIConnectionError):
        return TransientError(f"openai {what} failed: {type(exc).__name__}")
    return PermanentError(f"openai {what} failed: {type(exc).__name__}")
