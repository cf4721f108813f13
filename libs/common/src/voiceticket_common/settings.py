"""Settings shared by every service; each service extends ``ServiceSettings``."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .bus.kafka_security import KafkaClientSettings
from .bus.port import DEFAULT_DRAIN_SECONDS, DEFAULT_MAX_IN_FLIGHT, TopicRetention
from .call_context import DEVELOPMENT_KEY
from .exposure import is_loopback_host, is_loopback_url

PUBLIC_CALLBACK_CONTEXT_KEYS = frozenset(
    {
        DEVELOPMENT_KEY,
        # docker-compose.yml's former default (base64 of "dev-only-compose-callback-key-00"): public too.
        "ZGV2LW9ubHktY29tcG9zZS1jYWxsYmFjay1rZXktMDA=",
    }
)
"""Callback-context keys published in this repository; refused wherever they could be abused."""


class Environment(StrEnum):
    """``VOICETICKET_ENVIRONMENT``: anything else is refused (``prod`` is not ``production``)."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(KafkaClientSettings):
    """Read from the environment (``VOICETICKET_`` prefix) and an optional ``.env`` file; the Kafka
    client security settings (``VOICETICKET_KAFKA_SECURITY_PROTOCOL``, ``_SSL_*``, ``_SASL_*``) come
    from ``KafkaClientSettings``."""

    # No input in validation errors: they would show the secrets the settings were given.
    model_config = SettingsConfigDict(
        env_prefix="VOICETICKET_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    environment: Environment = Field(
        default=Environment.DEVELOPMENT, description="development | test | production"
    )
    log_level: str = "INFO"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        description="Replicas of each topic a service creates (1 is refused in production).",
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of each topic a service creates (unset: the broker's "
        "default); with acks=all, a write needs this many replicas. At most the replication factor.",
    )
    kafka_create_topics: bool = Field(
        default=True,
        description="Create missing topics at start. Off where the platform provisions topics "
        "(managed Kafka): a service then checks its topics exist and refuses to start without them.",
    )
    kafka_topic_namespace: str = ""
    """Prefix for every topic, for environments that share one Kafka cluster."""
    config_api_url: str = "http://127.0.0.1:8085"
    config_api_token: SecretStr = SecretStr("")
    config_cache_seconds: float = 30.0
    egress_allowed_hosts: list[str] = Field(
        default=["api.twilio.com", "api.openai.com", "*.atlassian.net", "api.atlassian.com"],
        description="Egress entries: [http://]host[:port|:*] rules (https and the scheme's default "
        "port unless written; *.name wildcards) and CIDR networks that resolved addresses may be "
        "in (loopback, private and link-local addresses are refused otherwise); see "
        "voiceticket_common.http. Anything else is refused; a malformed entry fails start-up.",
    )
    egress_allow_tenant_hosts: bool = Field(
        default=True,
        description="Also allow each tenant's configured speech-to-text and LLM servers "
        "(speech_to_text_base_url, llm_base_url, openai_base_url) for that tenant's requests to that "
        "provider, by the stricter tenant-host rule of voiceticket_common.http (public addresses, or "
        "a CIDR entry's; never link-local; plain http only inside a CIDR entry). Off: only "
        "egress_allowed_hosts.",
    )
    health_host: str = "127.0.0.1"
    health_port: int = 0
    health_check_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Readiness: how long one check (the broker's metadata, config-api's /healthz, "
        "the database's SELECT 1) may take before it counts as failed.",
    )
    health_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Readiness: how long a check's answer is reused, so probes do not load the "
        "broker, config-api or the database.",
    )
    liveness_stall_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Consumers: /healthz answers 503 (Kubernetes restarts the pod) when records "
        "wait but none finished, or the consumer did not poll, for this long. Keep it above the "
        "longest a record may take (its retry budget).",
    )
    event_retention_hours: float = Field(
        default=168.0,
        gt=0,
        description="How long the bus keeps call events (personal data): Kafka's retention.ms of "
        "the topics it creates, and the embedded bus's purge. Longer than any consumer may lag.",
    )
    dead_letter_retention_hours: float = Field(
        default=336.0,
        gt=0,
        description="How long dead letters are kept for an operator to inspect and replay.",
    )
    max_in_flight: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT,
        ge=1,
        description="Consumers: events handled at once (one call's events still one after another, "
        "different calls in parallel); fetching pauses at the limit.",
    )
    drain_seconds: float = Field(
        default=DEFAULT_DRAIN_SECONDS,
        ge=0,
        description="Consumers: on SIGTERM or a rebalance, how long the events being handled may "
        "finish before the rest are handed back (delivered again); keep it within the pod's "
        "termination grace.",
    )

    def topic_retention(self) -> TopicRetention:
        """The bus retention these settings describe (both adapters take it)."""
        return TopicRetention(
            events=timedelta(hours=self.event_retention_hours),
            dead_letters=timedelta(hours=self.dead_letter_retention_hours),
        )

    @field_validator("environment", mode="before")
    @classmethod
    def _known_environment(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, Environment):
            name = value.strip().lower()
            if name not in {e.value for e in Environment}:
                raise ValueError(
                    f"VOICETICKET_ENVIRONMENT must be one of "
                    f"{', '.join(e.value for e in Environment)}, not {value!r}"
                )
            return name
        return value

    def exposure(self) -> str | None:
        """The setting that makes this service reachable beyond loopback (``NAME=value``), or None:
        a non-loopback bind address (``host``) or public URL (``public_base_url``)."""

        host = getattr(self, "host", None)
        if isinstance(host, str) and not is_loopback_host(host):
            return f"VOICETICKET_HOST={host}"
        url = getattr(self, "public_base_url", None)
        if isinstance(url, str) and not is_loopback_url(url):
            return f"VOICETICKET_PUBLIC_BASE_URL={url}"
        return None

    @model_validator(mode="after")
    def _no_empty_token_in_production(self) -> ServiceSettings:
        if self.environment == "production" and not self.config_api_token.get_secret_value():
            raise ValueError("VOICETICKET_CONFIG_API_TOKEN must be set in production")
        return self

    @model_validator(mode="after")
    def _topics_can_be_provisioned(self) -> ServiceSettings:
        minimum = self.kafka_min_insync_replicas
        if minimum is not None and minimum > self.kafka_replication_factor:
            raise ValueError(
                f"VOICETICKET_KAFKA_MIN_INSYNC_REPLICAS={minimum} exceeds "
                f"VOICETICKET_KAFKA_REPLICATION_FACTOR={self.kafka_replication_factor}: "
                "no write with acks=all could succeed"
            )
        if (
            self.environment == Environment.PRODUCTION
            and self.kafka_create_topics
            and self.kafka_replication_factor < 2
        ):
            raise ValueError(
                "VOICETICKET_KAFKA_REPLICATION_FACTOR=1 is refused in production (one broker's loss "
                "would lose calls' events): set 3 with VOICETICKET_KAFKA_MIN_INSYNC_REPLICAS=2, or "
                "VOICETICKET_KAFKA_CREATE_TOPICS=false where the platform provisions the topics"
            )
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
    def _no_public_key_where_it_could_be_abused(self) -> CallbackContextSettings:
        # The development key is public: wherever Twilio or anyone else can reach the service,
        # callback contexts sealed with it could be forged. Loopback-only development may use it.
        if self.callback_context_key.get_secret_value().strip() not in PUBLIC_CALLBACK_CONTEXT_KEYS:
            return self
        if self.environment == Environment.PRODUCTION:
            why = "VOICETICKET_ENVIRONMENT=production"
        else:
            why = self.exposure() or ""
        if why:
            raise ValueError(
                "VOICETICKET_CALLBACK_CONTEXT_KEY is a public development key, refused in production "
                f"and whenever the service is reachable beyond loopback (here {why}); set your own: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
        return self


def require_lease_outlasts(settings: BaseSettings, lease: str, timeout: str) -> None:
    """Raise ``ValueError`` unless the ``lease`` field (seconds one attempt holds a call's claim)
    is longer than the ``timeout`` field (its slowest outside call), so a holder's one call ends
    within its lease: a validator of services that work under ledger leases (ADR 3)."""
    if getattr(settings, lease) <= getattr(settings, timeout):
        prefix = settings.model_config.get("env_prefix", "")
        raise ValueError(f"{prefix}{lease.upper()} must be longer than {prefix}{timeout.upper()}")
