"""Settings every service shares: the public development keys are refused in production."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from voiceticket_common.settings import CallbackContextSettings

TOKEN = SecretStr("config-token")


def test_the_development_callback_context_key_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="VOICETICKET_CALLBACK_CONTEXT_KEY must be set in production"):
        CallbackContextSettings(environment="production", config_api_token=TOKEN)


def test_a_real_key_in_production_and_the_development_key_elsewhere_are_accepted() -> None:
    key = SecretStr("a-real-fernet-key")
    production = CallbackContextSettings(
        environment="production", config_api_token=TOKEN, callback_context_key=key
    )
    assert production.callback_context_key == key
    assert CallbackContextSettings(environment="development").callback_context_key.get_secret_value()
