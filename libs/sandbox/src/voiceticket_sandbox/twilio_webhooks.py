"""Send webhooks the way Twilio does: form-encoded POST (or GET), signed with X-Twilio-Signature."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from urllib.parse import urldefrag, urlencode, urlsplit

import httpx
from twilio.request_validator import RequestValidator

USER_AGENT = "TwilioProxy/1.1"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a request to ``url`` (exact, query included) with form ``params``."""
    # twilio ships no type information: annotate what compute_signature returns.
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


def rfc2822(timestamp: float | None = None) -> str:
    """Twilio's date format, e.g. ``Tue, 14 Apr 2026 10:00:00 +0000``."""
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(timestamp or time.time()))


async def send_webhook(
    client: httpx.AsyncClient,
    auth_token: str,
    url: str,
    params: Mapping[str, str],
    method: str = "POST",
    connect: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Request ``url`` as Twilio would and return the response.

    Twilio requests the URL without its fragment (``#ct=...`` connection overrides), so the
    fragment is dropped before signing. For GET the parameters go into the query string and only
    the URL is signed. ``connect`` maps public origins (``https://voice.example.com``) to where
    they are actually served here (a proxy on loopback, say): the signature and the Host header
    stay those of the public URL, as when DNS points that name at the proxy.
    """
    url = urldefrag(url).url
    headers = {"User-Agent": USER_AGENT, "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
    if method.upper() == "GET":
        full_url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        headers["X-Twilio-Signature"] = twilio_signature(auth_token, full_url, {})
        target, host = _route(full_url, connect)
        return await client.get(target, headers={**headers, **host})
    headers["X-Twilio-Signature"] = twilio_signature(auth_token, url, params)
    target, host = _route(url, connect)
    try:
        return await client.post(target, data=dict(params), headers={**headers, **host})
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # A kept-alive connection the server closed (its idle timeout) just as it was reused:
        # nothing was handled, so send it once more, as Twilio retries a failed connection
        # (same idempotency token).
        return await client.post(target, data=dict(params), headers={**headers, **host})


async def send_json_webhook(
    client: httpx.AsyncClient, auth_token: str, url: str, body: bytes
) -> httpx.Response:
    """POST a JSON body as Twilio does: ``bodySHA256`` (hex SHA-256 of the body) is added to the
    URL's query, and only that URL is signed."""
    url = urldefrag(url).url
    url = f"{url}{'&' if '?' in url else '?'}{urlencode({'bodySHA256': hashlib.sha256(body).hexdigest()})}"
    headers = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "X-Twilio-Signature": twilio_signature(auth_token, url, {}),
    }
    return await client.post(url, content=body, headers=headers)


def _route(url: str, connect: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """The URL to connect to, and the Host header to send when it differs from the public one."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if not connect or origin not in connect:
        return url, {}
    return connect[origin].rstrip("/") + url[len(origin) :], {"Host": parts.netloc}
