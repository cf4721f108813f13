from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from voiceticket_common.call_context import DEVELOPMENT_KEY
from voiceticket_common.settings import ServiceSettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IngressSettings(ServiceSettings):
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    """The URL Twilio calls, as Twilio sees it (scheme, host, port, optional path prefix):
    signatures are checked against it and callback URLs are built from it, unless a trusted proxy
    says otherwise (``trusted_proxies``)."""
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = []
    """Direct peers (CIDRs or addresses, comma-separated or a JSON list) whose X-Forwarded-Proto,
    X-Forwarded-Host and X-Forwarded-Port name the public URL. Empty (the default): forwarded
    headers are ignored and ``public_base_url`` alone counts."""
    callback_context_key: SecretStr = SecretStr(DEVELOPMENT_KEY)
    """Fernet key sealing the call context carried in callback URLs; shared by all ingress replicas
    and the notifier (which seals the SMS StatusCallback context with it)."""

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

    @model_validator(mode="after")
    def _real_key_in_production(self) -> IngressSettings:
        if (
            self.environment == "production"
            and self.callback_context_key.get_secret_value() == DEVELOPMENT_KEY
        ):
            raise ValueError("VOICETICKET_CALLBACK_CONTEXT_KEY must be set in production")
        return self
