"""Jira's error answers: which are worth retrying, and what Jira said.

Jira Service Management (``/rest/servicedeskapi``) answers errors with ``ErrorResponse``
(``errorMessage`` and ``i18nErrorMessage``); the platform API (``/rest/api/3``) with
``ErrorCollection`` (``errorMessages``, a list, and ``errors``, field id -> message). The Atlassian
API gateway in front of OAuth calls answers with ``{"code", "message"}``. All of them are read, so
a dead-lettered record says what Jira objected to. Jira's messages name fields; should one echo
a value, phone numbers and email addresses in it are redacted.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import retry_after_seconds
from voiceticket_common.privacy import redact_phone_numbers

MAX_DETAIL = 500
_EMAIL = re.compile(r"[^@\s'\"]+@[^@\s'\"]+\.[A-Za-z]{2,}")


def jira_error_text(body: Any) -> str:
    """Every message in a JSM ``ErrorResponse``, a platform ``ErrorCollection`` or a gateway error."""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in ("errorMessage", "message"):
        if isinstance(body.get(key), str) and body[key]:
            parts.append(body[key])
    messages = body.get("errorMessages")
    if isinstance(messages, list):
        parts += [m for m in messages if isinstance(m, str) and m]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{field}: {message}" for field, message in errors.items()]
    elif isinstance(errors, list):  # some JSM endpoints list {field, errorMessage} objects
        parts += [
            f"{e.get('field', '')}: {e.get('errorMessage', '')}".strip(": ")
            for e in errors
            if isinstance(e, dict)
        ]
    return _EMAIL.sub("[redacted-email]", redact_phone_numbers("; ".join(parts)))[:MAX_DETAIL]


def raise_for_jira_status(response: httpx.Response, what: str, *, oauth: bool = False) -> None:
    """429, 5xx and 408 are transient, with Retry-After honoured; other 4xx are permanent.

    Under OAuth 2.0 a 401 is transient too: access tokens expire within the hour and are rotated
    through config-api, so a retry a little later, with the freshly cached token, can succeed.
    """

    status = response.status_code
    if status < 400:
        return
    try:
        detail = jira_error_text(response.json())
    except ValueError:
        detail = ""
    message = f"jira {what} failed with HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 425, 429) or status >= 500:
        raise TransientError(message, retry_after=retry_after_seconds(response.headers))
    if status == 401 and oauth:
        raise TransientError(message + " (OAuth access token expired or revoked?)")
    raise PermanentError(message)
