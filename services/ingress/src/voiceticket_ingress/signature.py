"""Reading a Twilio webhook and checking its ``X-Twilio-Signature``.

Twilio signs HMAC-SHA1 (key: the account's Auth Token) over the full URL it requested and, for
form-encoded POSTs, every parameter name followed by its value in sorted order. For webhooks with a
JSON body, Twilio adds ``bodySHA256`` (hex SHA-256 of the raw body) to the URL's query and signs
the URL alone, so the body is bound to the signature through that hash. A JSON body without
``bodySHA256`` is not signed at all and is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from twilio.request_validator import RequestValidator

_FORM = "application/x-www-form-urlencoded"
_MAX_JSON_BYTES = 64 * 1024  # Twilio's webhook bodies are small; a larger one is not Twilio's


class Forbidden(Exception):
    """The webhook's signature did not verify: answer 403 and publish nothing."""


@dataclass(frozen=True)
class Webhook:
    """One Twilio request: the public URL it was sent to, its parameters and its signature."""

    url: str
    params: Mapping[str, str]
    signature: str
    form: FormData | None = None
    """The form as received (repeated names kept) for form-encoded webhooks; None for JSON."""
    body_sha256: str | None = None
    """sha256 hex of the raw JSON body, for JSON webhooks."""

    def get(self, name: str, default: str = "") -> str:
        return str(self.params.get(name) or default)

    def verify(self, auth_token: str) -> None:
        """Raise :class:`Forbidden` unless Twilio signed exactly this URL and these parameters."""
        if not self.signature or not auth_token:
            raise Forbidden()
        validator = RequestValidator(auth_token)
        if self.form is not None:
            valid = validator.validate(self.url, self.form, self.signature)
        else:
            claimed = parse_qs(urlsplit(self.url).query).get("bodySHA256", [""])[0]
            valid = (
                bool(claimed)
                and self.body_sha256 is not None
                and hmac.compare_digest(claimed.lower(), self.body_sha256)
                and validator.validate(self.url, {}, self.signature)
            )
        if not valid:
            raise Forbidden()


async def read_webhook(request: Request, public_url: str) -> Webhook:
    """Parse a form-encoded or JSON Twilio request; nothing is trusted until ``verify``."""
    signature = request.headers.get("x-twilio-signature", "")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if len(body) > _MAX_JSON_BYTES:
            raise Forbidden()
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise Forbidden() from None
        params = {str(k): _text(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return Webhook(public_url, params, signature, body_sha256=hashlib.sha256(body).hexdigest())
    if content_type not in (_FORM, ""):
        raise Forbidden()
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    return Webhook(public_url, params, signature, form=form)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
