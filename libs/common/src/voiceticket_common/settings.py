"""Settings shared by every service; each service extends ``ServiceSettings``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .call_context import DEVELOPMENT_KEY


class ServiceSettings(BaseSettings):
    """Read from the environment (``VOICETICKET_`` prefix) and an optional ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="VOICETICKET_", env_file=".env", extra="ignore")

    environment: str = Field(default="development", description="development | production")
    log_level: str = "INFO"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = 3
    kafka_topic_namespace: str = ""
    """Prefix for every topic, for environments that share one Kafka cluster."""
    config_api_url: str = "http://127.0.0.1:8085"
    config_api_token: SecretStr = SecretStr("")
    config_cache_seconds: float = 30.0
    egress_allowed_hosts: list[str] = Field(
        default=["api.twilio.com", "api.openai.com", "*.atlassian.net", "api.atlassian.com"],
        description="Hosts outbound provider calls may reach; anything else is refused.",
    )
    health_host: str = "127.0.0.1"
    health_port: int = 0

    @model_validator(mode="after")
    def _no_empty_token_in_production(self) -> ServiceSettings:
        if self.environment == "production" and not self.config_api_token.get_secret_value():
            raise ValueError("VOICETICKET_CONFIG_API_TOKEN must be set in production")
        return self


class HttpServiceSettings(ServiceSettings):
    """A service that listens for HTTP requests (ingress)."""

    host: str = "127.0.0.1"
    port: int = 8080


class CallbackContextSettings(ServiceSettings):
    """A service that seals the call context carried in Twilio callback URLs (ingress, and the
    notifier for the SMS StatusCallback): both hold the same key."""

    callback_context_key: SecretStr = SecretStr(DEVELOPMENT_KEY)
    """Fernet key (``VOICETICKET_CALLBACK_CONTEXT_KEY``) sealing the call context in callback URLs;
    shared by all ingress replicas and the notifier (which also keys the hash under which
    opted-out numbers are remembered with it)."""

    @model_validator(mode="after")
    def _real_key_in_production(self) -> CallbackContextSettings:
        # The development key is public: in production, callback contexts sealed with it could be forged.
        if (
            self.environment == "production"
            and self.callback_context_key.get_secret_value() == DEVELOPMENT_KEY
        ):
            raise ValueError("VOICETICKET_CALLBACK_CONTEXT_KEY must be set in production")
        return self
