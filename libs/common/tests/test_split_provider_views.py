"""Speech-to-text and the LLM each have their own server and key (issue #15, part 3): the
transcriber's view carries speech-to-text's, the analyzer's the LLM's, each falling back to the
tenant's OpenAI settings, and the OpenAI key never follows a provider to a server of its own."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError
from voiceticket_common.runtime_views import (
    DEFAULT_OPENAI_BASE_URL,
    AnalyzerView,
    TranscriberView,
    provider_settings,
)


def body(tenant: dict[str, object]) -> dict[str, object]:
    return {"tenant_id": "acme", "line": {"number": "+14155550100"}, "tenant": tenant}


def test_each_view_names_only_its_own_provider() -> None:
    transcriber, analyzer = set(TranscriberView.tenant_fields()), set(AnalyzerView.tenant_fields())
    assert {"speech_to_text_base_url", "speech_to_text_api_key"} <= transcriber
    assert {"llm_base_url", "llm_api_key"} <= analyzer
    assert not {"llm_base_url", "llm_api_key", "openai_api_key", "openai_base_url"} & transcriber
    assert not {"speech_to_text_base_url", "speech_to_text_api_key", "openai_api_key"} & analyzer


def test_what_config_api_serves_is_what_each_service_uses() -> None:
    stt = TranscriberView.model_validate(
        body({"speech_to_text_base_url": "http://whisper.ml:8000/v1", "speech_to_text_api_key": "stt-key"})
    )
    llm = AnalyzerView.model_validate(
        body({"llm_base_url": "https://vllm.corp/v1", "llm_api_key": "llm-key"})
    )
    assert (stt.tenant.speech_to_text_base_url, stt.speech_to_text_api_key()) == (
        "http://whisper.ml:8000/v1",
        SecretStr("stt-key"),
    )
    assert (llm.tenant.llm_base_url, llm.llm_api_key()) == ("https://vllm.corp/v1", SecretStr("llm-key"))
    assert stt.transcription_backend() == "openai"


def test_unset_means_openais_default_server_and_no_key() -> None:
    stt, llm = (
        TranscriberView.model_validate(body({})),
        AnalyzerView.model_validate(body({"llm_base_url": ""})),
    )
    assert stt.tenant.speech_to_text_base_url == llm.tenant.llm_base_url == DEFAULT_OPENAI_BASE_URL
    assert stt.transcription_backend() == "local"  # no key at all: the local engine
    with pytest.raises(PermanentError, match="tenant acme has no llm_api_key configured"):
        llm.llm_api_key()


def test_an_older_config_apis_openai_settings_stand_for_both() -> None:
    legacy = {"openai_base_url": "https://llm.corp:8443/v1/", "openai_api_key": "sk-shared"}
    stt, llm = TranscriberView.model_validate(body(legacy)), AnalyzerView.model_validate(body(legacy))
    assert stt.tenant.speech_to_text_base_url == llm.tenant.llm_base_url == "https://llm.corp:8443/v1"
    assert stt.speech_to_text_api_key() == llm.llm_api_key() == SecretStr("sk-shared")
    # a provider with a server of its own does not get the shared key
    own = TranscriberView.model_validate(body(legacy | {"speech_to_text_base_url": "https://stt.example/v1"}))
    assert own.tenant.speech_to_text_api_key is None and own.transcription_backend() == "local"


@pytest.mark.parametrize(
    ("own_url", "own_key", "expected"),
    [
        (None, None, ("https://api.openai.com/v1", "sk-openai")),  # all defaults: OpenAI's
        ("https://api.openai.com/v1/", None, ("https://api.openai.com/v1", "sk-openai")),  # same server
        (None, "own", ("https://api.openai.com/v1", "own")),  # own key at the shared server
        ("https://stt.example/v1", None, ("https://stt.example/v1", None)),  # the key stays home
        ("https://stt.example/v1", "own", ("https://stt.example/v1", "own")),
    ],
)
def test_provider_settings(
    own_url: str | None, own_key: str | None, expected: tuple[str, str | None]
) -> None:
    assert provider_settings(own_url, own_key, None, "sk-openai") == expected
