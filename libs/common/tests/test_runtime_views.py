"""The services' views of config-api's runtime answer, and the client that fetches them."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.config_client import RuntimeConfigClient, UnknownLine
from voiceticket_common.runtime_views import (
    DEFAULT_ANALYSIS_MODEL,
    DEFAULT_OPENAI_BASE_URL,
    DEFAULT_RECORDING_NOTICE,
    AnalyzerView,
    IngressView,
    JiraWriterView,
    NotifierView,
    TranscriberView,
)
from voiceticket_common.twilio import TwilioAccount

NUMBER = "+15005550006"
SID = "AC" + "a" * 32


def body(line: dict[str, object] | None = None, tenant: dict[str, object] | None = None) -> dict[str, object]:
    return {"tenant_id": "acme", "line": {"number": NUMBER, **(line or {})}, "tenant": tenant or {}}


def test_unknown_fields_are_ignored_and_null_or_blank_means_the_default() -> None:
    view = AnalyzerView.model_validate(
        body({"language": "de", "added_later": True}, {"openai_base_url": None, "analysis_model": ""})
    )
    assert view.tenant.llm_base_url == DEFAULT_OPENAI_BASE_URL
    assert view.tenant.analysis_model == DEFAULT_ANALYSIS_MODEL
    assert view.line.enforced_language is None
    assert "added_later" not in view.line.model_dump()
    ingress = IngressView.model_validate(body({"max_recording_seconds": None, "recording_notice": ""}))
    # a blank notice is the default notice: the notice is always said before <Record>
    assert (ingress.line.max_recording_seconds, ingress.line.recording_notice) == (
        120,
        DEFAULT_RECORDING_NOTICE,
    )


def test_consent_settings_default_to_the_notice_and_no_ticket() -> None:
    ingress = IngressView.model_validate(body({"consent_mode": None, "consent_key": ""}))
    assert (ingress.line.consent_mode, ingress.line.consent_key, ingress.line.consent_repeat) == (
        "notice",
        "1",
        True,
    )
    writer = JiraWriterView.model_validate(body({"service_desk_id": "4", "request_type_id": "40"}))
    assert writer.line.on_consent_declined == "none"
    assert "on_consent_declined" not in IngressView.line_fields(), "least privilege: ingress only asks"
    assert "consent_key" not in JiraWriterView.line_fields()


def test_jsm_ids_given_as_numbers_are_still_strings() -> None:
    view = JiraWriterView.model_validate(
        body({"service_desk_id": 4, "request_type_id": 40, "request_types": {"incident": 41}})
    )
    assert (view.line.service_desk_id, view.line.request_types) == ("4", {"incident": "41"})


def test_twilio_account_names_the_missing_token() -> None:
    view = TranscriberView.model_validate(body(tenant={"twilio_auth_token": "tok"}))
    assert view.twilio_account("AC-from-the-event") == TwilioAccount("AC-from-the-event", SecretStr("tok"))
    with pytest.raises(PermanentError, match="tenant acme has no twilio_auth_token configured"):
        NotifierView.model_validate(body(tenant={"twilio_account_sid": SID})).twilio_account()
    with pytest.raises(PermanentError, match="tenant acme has no speech_to_text_api_key configured"):
        view.speech_to_text_api_key()


def client(handler: httpx.MockTransport) -> RuntimeConfigClient[NotifierView]:
    return RuntimeConfigClient(
        NotifierView, "http://config-api/", SecretStr("token"), client=httpx.AsyncClient(transport=handler)
    )


async def test_the_client_parses_into_its_view_and_caches() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=body({"sms_enabled": True}, {"twilio_auth_token": "tok"}))

    config = client(httpx.MockTransport(answer))
    first = await config.line(NUMBER)
    assert isinstance(first, NotifierView) and first.line.sms_enabled is True
    assert await config.line(NUMBER) is first
    assert len(seen) == 1 and seen[0].headers["authorization"] == "Bearer token"
    assert seen[0].url.path == f"/v1/runtime/lines/{NUMBER}"
    await config.aclose()


async def test_the_client_maps_404_transport_errors_and_bad_bodies() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "unknown line"})

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    def no_line(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"tenant_id": "acme", "tenant": {"twilio_auth_token": "s3cret"}})

    with pytest.raises(UnknownLine):
        await client(httpx.MockTransport(not_found)).line(NUMBER)
    with pytest.raises(TransientError, match="config-api unreachable"):
        await client(httpx.MockTransport(down)).line(NUMBER)
    with pytest.raises(PermanentError, match="invalid notifier view: line") as info:
        await client(httpx.MockTransport(no_line)).line(NUMBER)
    assert "s3cret" not in str(info.value)
