"""Send webhooks the way Twilio does: form-encoded POST (or GET), signed with X-Twilio-Signature."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from urllib.parse import urldefrag, urlencode

import httpx
from twilio.request_validator import RequestValidator

USER_AGENT = "TwilioProxy/1.1"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a request to ``url`` (exact, query included) with form ``params``."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def rfc2822(timestamp: float | None = None) -> str:
    """Twilio's date format, e.g. ``Tue, 14 Apr 2026 10:00:00 +0000``."""
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(timestamp or time.time()))


async def send_webhook(
    client: httpx.AsyncClient,
    auth_token: str,
    url: str,
    params: Mapping[str, str],
    method: str = "POST",
) -> httpx.Response:
    """Request ``url`` as Twilio would and return the response.

    Twilio requests the URL without its fragment (``#ct=...`` connection overrides), so the
    fragment is dropped before signing. For GET the parameters go into the query string and only
    the URL is signed.
    """
    url = urldefrag(url).url
    headers = {"User-Agent": USER_AGENT, "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
    if method.upper() == "GET":
        full_url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        headers["X-Twilio-Signature"] = twilio_signature(auth_token, full_url, {})
        return await client.get(full_url, headers=headers)
    headers["X-Twilio-Signature"] = twilio_signature(auth_token, url, params)
    return await client.post(url, data=dict(params), headers=headers)
