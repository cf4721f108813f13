from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from voiceticket_common.settings import CallbackContextSettings, HttpServiceSettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IngressSettings(HttpServiceSettings, CallbackContextSettings):
    public_base_url: str = "http://127.0.0.1:8080"
    """The URL Twilio calls, as Twilio sees it (scheme, host, port, optional path prefix):
    signatures are checked against it and callback URLs are built from it, unless a trusted proxy
    says otherwise (``trusted_proxies``)."""
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = []
    """Direct peers (CIDRs or addresses, comma-separated or a JSON list) whose X-Forwarded-Proto,
    X-Forwarded-Host and X-Forwarded-Port name the public URL. Empty (the default): forwarded
    headers are ignored and ``public_base_url`` alone counts."""
    webhook_max_in_flight: int = Field(default=64, ge=1)
    """New calls and status callbacks handled at once (``shedding.py``); more wait for a slot.
    In-call callbacks (consent, recording status, record action) count too but are never shed."""
    webhook_max_queued: int = Field(default=512, ge=0)
    """Webhooks waiting for a slot at most (a waiting request costs a connection, no CPU); more
    are answered 503 at once."""
    webhook_queue_seconds: float = Field(default=0.5, ge=0)
    """How long a webhook over the limit waits for a slot before it is answered 503 (0: at once)."""
    webhook_retry_after_seconds: int = Field(default=1, ge=0)
    """``Retry-After`` of a shed webhook's 503."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else [p for p in text.split(",") if p.strip()]
        else:
            items = value
        # strict=False: "10.0.0.7" means that one address, "10.0.0.0/8" the range
        return [ipaddress.ip_network(str(item).strip(), strict=False) for item in items or []]
