"""The OpenAI (or OpenAI-compatible) server a tenant uses, and handing our egress-controlled httpx
client to the openai SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import httpx
from pydantic import SecretStr

if TYPE_CHECKING:
    import httpx2


@dataclass(frozen=True)
class OpenAIEndpoint:
    """Where a request goes: the tenant's server (OpenAI or compatible), its key and the model."""

    base_url: str
    api_key: SecretStr
    model: str


def sdk_http_client(client: httpx.AsyncClient) -> httpx2.AsyncClient:
    """``client`` (from :func:`voiceticket_common.http.provider_client`) as ``AsyncOpenAI(http_client=...)``.

    openai 3.x annotates ``http_client`` as ``httpx2.AsyncClient`` only, yet accepts a legacy
    ``httpx.AsyncClient`` at run time (``openai._httpx2.is_legacy_httpx_async_client``) and maps its
    timeouts and errors too. Our allow-list transport (``AllowListTransport``) is an httpx transport,
    so the provider clients stay httpx and only the SDK's annotation is narrower than the SDK.
    """

    return cast("httpx2.AsyncClient", client)
