"""Reading a Twilio webhook and checking its ``X-Twilio-Signature``.

Twilio signs HMAC-SHA1 (key: the account's Auth Token) over the full URL it requested and, for
form-encoded POSTs, every parameter name followed by its value in sorted order. For webhooks with a
JSON body, Twilio adds ``bodySHA256`` (hex SHA-256 of the raw body) to the URL's query and signs
the URL alone, so the body is bound to the signature through that hash.

The rules here are stricter than twilio-python's ``RequestValidator.validate``:

* the signature is computed over exactly the URL ingress resolved (``public_url.py``), never over
  that URL with its port removed or a default port added: a signature made for another origin
  (the same host on another port) is refused;
* whenever the URL carries ``bodySHA256``, the raw body must hash to it, whatever the content type,
  and the signature covers the URL alone; a JSON body without ``bodySHA256`` is not signed at all
  and is refused;
* bodies are capped at 64 KiB (Twilio's webhook bodies are a few KiB).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import FormData
from starlette.formparsers import FormParser
from starlette.requests import Request
from twilio.request_validator import RequestValidator

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
MAX_BODY_BYTES = 64 * 1024  # Twilio's webhook bodies are small; a larger one is not Twilio's


class Forbidden(Exception):
    """The webhook's signature did not verify: answer 403 and publish nothing."""


class TooLarge(Exception):
    """The body is over :data:`MAX_BODY_BYTES`: answer 413 and publish nothing."""


@dataclass(frozen=True)
class Webhook:
    """One Twilio request: the public URL it was sent to, its parameters and its signature."""

    url: str
    params: Mapping[str, str]
    signature: str
    body: bytes = b""
    """The raw body, checked against ``bodySHA256`` when the URL carries one."""
    form: FormData | None = None
    """The form as received (repeated names kept) for form-encoded webhooks; None for JSON."""

    def get(self, name: str, default: str = "") -> str:
        return str(self.params.get(name) or default)

    def values(self, name: str) -> list[str]:
        """Every value sent for ``name`` (a form may repeat a name; JSON cannot)."""
        if self.form is not None:
            return [str(value) for value in self.form.getlist(name)]
        return [self.params[name]] if name in self.params else []

    def verify(self, auth_token: str) -> None:
        """Raise :class:`Forbidden` unless Twilio signed exactly this URL and these parameters."""
        if not self.signature or not auth_token:
            raise Forbidden()
        validator = RequestValidator(auth_token)
        claimed = _claimed_body_hash(self.url)
        if claimed is not None:
            # Whatever the content type: the URL names the body, and Twilio signs the URL alone.
            if not _same(claimed.lower(), hashlib.sha256(self.body).hexdigest()):
                raise Forbidden()
            expected = validator.compute_signature(self.url, {})
        elif self.form is not None:
            expected = validator.compute_signature(self.url, self.form)
        else:
            raise Forbidden()  # a JSON body without bodySHA256 is signed by nobody
        if not _same(expected, self.signature):
            raise Forbidden()


async def read_webhook(request: Request, public_url: str) -> Webhook:
    """Parse a form-encoded or JSON Twilio request; nothing is trusted until ``verify``."""
    signature = request.headers.get("x-twilio-signature", "")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (_FORM, _JSON, ""):
        raise Forbidden()
    body = await _read_body(request)
    if content_type == _JSON:
        try:
            data = json.loads(body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise Forbidden() from None
        params = {str(k): _text(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return Webhook(public_url, params, signature, body)
    form = FormData()
    if content_type == _FORM:
        form = await FormParser(request.headers, _replay(body)).parse()
    params = {k: str(v) for k, v in form.items()}
    return Webhook(public_url, params, signature, body, form=form)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def _replay(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body
    yield b""


def _claimed_body_hash(url: str) -> str | None:
    """The URL's ``bodySHA256``; None when it has none. Given twice, nothing verifies."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get("bodySHA256")
    if values is None:
        return None
    if len(values) != 1:
        raise Forbidden()
    return values[0]


def _same(a: str, b: str) -> bool:
    # constant time; as bytes, since compare_digest refuses non-ASCII str (a 500 otherwise)
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
