"""Settings shared by every service; each service extends ``ServiceSettings``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
