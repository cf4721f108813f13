"""Settings every service shares: the environment is one of three names, and the public
development keys are refused in production and wherever the service is reachable beyond loopback."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from voiceticket_common.call_context import DEVELOPMENT_KEY
from voiceticket_common.exposure import is_loopback_host, is_loopback_url
from voiceticket_common.settings import (
    PUBLIC_CALLBACK_CONTEXT_KEYS,
    CallbackContextSettings,
    Environment,
    HttpServiceSettings,
    ServiceSettings,
)

TOKEN = SecretStr("config-token")
REFUSED = "VOICETICKET_CALLBACK_CONTEXT_KEY is a public development key"


class ListeningSealer(HttpServiceSettings, CallbackContextSettings):
    """Like ingress: listens on ``host`` and is called back at ``public_base_url``."""

    public_base_url: str = "http://127.0.0.1:8080"


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "HOST", "PUBLIC_BASE_URL", "CALLBACK_CONTEXT_KEY", "CONFIG_API_TOKEN"):
        monkeypatch.delenv(f"VOICETICKET_{name}", raising=False)


@pytest.mark.parametrize("name", ["prod", "staging", "dev", "", "production-eu"])
def test_an_unknown_environment_is_refused_with_a_clear_error(name: str) -> None:
    with pytest.raises(
        ValidationError, match="VOICETICKET_ENVIRONMENT must be one of development, test, production"
    ):
        ServiceSettings(environment=name)


def test_unknown_environment_from_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICETICKET_ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="not 'prod'"):
        ServiceSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("development", Environment.DEVELOPMENT),
        ("test", Environment.TEST),
        (" Production ", Environment.PRODUCTION),
    ],
)
def test_the_three_environments_are_accepted(name: str, expected: Environment) -> None:
    settings = ServiceSettings(environment=name, config_api_token=TOKEN, kafka_replication_factor=3)
    assert settings.environment is expected


def test_the_development_callback_context_key_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match=f"{REFUSED}.*VOICETICKET_ENVIRONMENT=production"):
        CallbackContextSettings(environment="production", config_api_token=TOKEN, kafka_replication_factor=3)


@pytest.mark.parametrize("environment", ["development", "test"])
@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("host", "0.0.0.0", "VOICETICKET_HOST=0.0.0.0"),
        ("host", "10.1.2.3", "VOICETICKET_HOST=10.1.2.3"),
        ("host", "::", "VOICETICKET_HOST=::"),
        (
            "public_base_url",
            "https://voice.example.com",
            "VOICETICKET_PUBLIC_BASE_URL=https://voice.example.com",
        ),
    ],
)
def test_the_development_key_is_refused_beyond_loopback_whatever_the_environment(
    environment: str, field: str, value: str, why: str
) -> None:
    with pytest.raises(ValidationError, match=f"{REFUSED}.*{why}"):
        ListeningSealer(environment=environment, **{field: value})


@pytest.mark.parametrize("key", sorted(PUBLIC_CALLBACK_CONTEXT_KEYS))
def test_every_published_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match=REFUSED):
        ListeningSealer(host="0.0.0.0", callback_context_key=key)


def test_a_sealer_without_a_listener_is_judged_by_its_public_url() -> None:
    class NotifierLike(CallbackContextSettings):
        public_base_url: str | None = None

    assert NotifierLike().exposure() is None
    assert NotifierLike(public_base_url="http://localhost:8080").exposure() is None
    with pytest.raises(ValidationError, match="VOICETICKET_PUBLIC_BASE_URL=https://voice.example.com"):
        NotifierLike(public_base_url="https://voice.example.com")


def test_a_real_key_anywhere_and_the_development_key_on_loopback_are_accepted() -> None:
    key = SecretStr(Fernet.generate_key().decode())
    production = ListeningSealer(
        environment="production", config_api_token=TOKEN, callback_context_key=key, host="0.0.0.0",
        kafka_replication_factor=3,
        public_base_url="https://voice.example.com",
    )  # fmt: skip
    assert production.callback_context_key == key
    local = ListeningSealer(host="127.0.0.1", public_base_url="http://localhost:8080")
    assert local.callback_context_key.get_secret_value() == DEVELOPMENT_KEY


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST.", "::1", "[::1]", "api.localhost"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "10.0.0.1", "voice.example.com", "127.0.0.1.nip.io", "::ffff:10.0.0.1"]
)
def test_hosts_beyond_loopback(host: str) -> None:
    assert not is_loopback_host(host)


def test_loopback_urls() -> None:
    assert is_loopback_url("http://127.0.0.1:8080") and is_loopback_url("http://[::1]:8080/voice")
    assert not is_loopback_url("https://voice.example.com") and not is_loopback_url("not a url")
    assert not is_loopback_url("http://0.0.0.0:8080")
