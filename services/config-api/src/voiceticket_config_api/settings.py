"""Settings for config-api (env prefix ``CONFIG_API_``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from voiceticket_common.bus.kafka_security import KafkaClientSettings
from voiceticket_common.exposure import is_loopback_host

from .crypto import DEV_KEY

ROLES = ("ingress", "transcriber", "analyzer", "jira-writer", "notifier")
PUBLIC_MASTER_KEYS = frozenset(
    {
        DEV_KEY.decode(),
        # docker-compose.yml's former default (base64 of "dev-only-config-api-master-key00").
        "ZGV2LW9ubHktY29uZmlnLWFwaS1tYXN0ZXIta2V5MDA=",
    }
)
"""Master keys published in this repository: they protect nothing."""
PUBLIC_TOKEN_PREFIX = "dev-only"  # noqa: S105 - a prefix of public tokens, not a secret
"""docker-compose.yml used to ship ``dev-only-*`` tokens: such a token is public, never a secret."""


class Settings(KafkaClientSettings):
    """``CONFIG_API_*``; the Kafka archive's client security is ``CONFIG_API_KAFKA_SECURITY_PROTOCOL``,
    ``_SSL_*`` and ``_SASL_*`` (``KafkaClientSettings``)."""

    model_config = SettingsConfigDict(env_prefix="CONFIG_API_", extra="ignore")

    env: Literal["development", "test", "production"] = "production"
    database_url: str = "sqlite+aiosqlite:///./config-api.db"
    # "kid:base64key,kid:base64key" - the first one encrypts, all of them decrypt.
    master_keys: SecretStr | None = None
    admin_token: SecretStr | None = None
    """``CONFIG_API_ADMIN_TOKEN``: the single admin token; its actor in the audit log is ``admin``."""
    # "name:token,name:token" - named admin tokens; the name is the actor in the audit log. A name
    # may appear more than once (token rotation).
    admin_tokens: SecretStr | None = None
    # "role:token,role:token" - a role may appear more than once (token rotation).
    service_tokens: SecretStr | None = None
    seed_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8085
    log_level: str = "INFO"
    audit_retention_days: int = Field(400, ge=1, le=36500)
    """``CONFIG_API_AUDIT_RETENTION_DAYS``: audit entries older than this are purged (at start and
    by ``audit.purge_audit``)."""
    event_log: Path | None = None
    """``CONFIG_API_EVENT_LOG``: the embedded bus's SQLite file, searched (and, on an erasure,
    cleaned) for a caller's export and erasure."""
    calls_view: bool = True
    """``CONFIG_API_CALLS_VIEW``: follow the bus (the event log, else Kafka) for the calls view
    (``/v1/calls``, calls.py); false: the view stays empty."""
    calls_retention_days: int = Field(14, ge=1, le=3650)
    """``CONFIG_API_CALLS_RETENTION_DAYS``: a call's row in the calls view is purged this long
    after the call (at start, by ``purge`` and the embedded runtime's scheduled purge)."""
    kafka_bootstrap_servers: str | None = None
    """``CONFIG_API_KAFKA_BOOTSTRAP_SERVERS``: the cluster searched for a caller's export and
    erasure (distributed deployment; records there stay sealed under destroyed keys)."""
    kafka_topic_namespace: str = ""
    # The outbox's producer creates the config.changed topic as the services create theirs
    # (VOICETICKET_KAFKA_PARTITIONS, ..._REPLICATION_FACTOR, ..._MIN_INSYNC_REPLICAS, ..._CREATE_TOPICS).
    kafka_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int | None = Field(default=None, ge=1)
    kafka_create_topics: bool = True
    outbox_relay: bool = True
    """``CONFIG_API_OUTBOX_RELAY``: publish the outbox's configuration changes (``config.changed``)
    to ``CONFIG_API_KAFKA_BOOTSTRAP_SERVERS``; without that setting nothing is relayed (the
    embedded runtime relays onto its own bus)."""
    outbox_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    """``CONFIG_API_OUTBOX_POLL_SECONDS``: how often the relay looks for changes another replica
    committed (this replica's own are relayed at once)."""
    outbox_keep_hours: float = Field(default=24, gt=0)
    """``CONFIG_API_OUTBOX_KEEP_HOURS``: sent outbox rows are deleted after this long."""
    twilio_api_base_url: str = "https://api.twilio.com"
    """Where an erasure deletes a caller's recordings (with ``delete_recordings``)."""
    egress_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["api.twilio.com", "api.openai.com", "*.atlassian.net", "api.atlassian.com"]
    )
    """``CONFIG_API_EGRESS_ALLOWED_HOSTS``: hosts config-api may call (Twilio, for recording deletion;
    each provider, for a tenant's connection test): the services' default list."""
    egress_allow_tenant_hosts: bool = True
    """``CONFIG_API_EGRESS_ALLOW_TENANT_HOSTS``: a connection test may also reach the tenant's own
    speech-to-text and LLM servers (their hosts, by the stricter tenant-host rule of
    ``voiceticket_common.http``); off, only ``egress_allowed_hosts``."""
    docs: bool | None = None
    """``CONFIG_API_DOCS``: serve ``/docs``, ``/redoc`` and ``/openapi.json`` without a token.
    Unset: only when ``env`` is development and config-api listens on loopback. Off, ``/docs`` and
    ``/redoc`` answer 404 and ``/openapi.json`` needs the admin token. Refused in production."""

    @property
    def exposed(self) -> bool:
        """Whether config-api listens beyond loopback (``host`` is not a loopback address)."""
        return not is_loopback_host(self.host)

    @property
    def docs_open(self) -> bool:
        if self.docs is not None:
            return self.docs
        return self.env == "development" and not self.exposed

    @model_validator(mode="after")
    def _no_public_secrets_where_they_could_be_abused(self) -> Settings:
        # Public values protect nothing: refused in production and whenever config-api is
        # reachable beyond loopback, whatever CONFIG_API_ENV says.
        if self.env == "production" and self.docs:
            raise ValueError(
                "CONFIG_API_DOCS=true is refused in production: fetch /openapi.json with the admin token"
            )
        if self.env == "production":
            why = "CONFIG_API_ENV=production"
        elif self.exposed:
            why = f"CONFIG_API_HOST={self.host}"
        else:
            return self
        keys = self.master_keys.get_secret_value() if self.master_keys is not None else ""
        if not keys.strip():
            if self.env == "development":
                raise ValueError(
                    f"CONFIG_API_MASTER_KEYS must be set when config-api is reachable beyond loopback "
                    f"({why}): the development master key is public"
                )
        elif {k.partition(":")[2].strip() for k in keys.split(",")} & PUBLIC_MASTER_KEYS:
            raise ValueError(f"CONFIG_API_MASTER_KEYS holds a public development key, refused here ({why})")
        tokens = [("CONFIG_API_ADMIN_TOKEN", self.admin_token)] + [
            (name, SecretStr(item.partition(":")[2]))
            for name, spec in (
                ("CONFIG_API_ADMIN_TOKENS", self.admin_tokens),
                ("CONFIG_API_SERVICE_TOKENS", self.service_tokens),
            )
            for item in (spec.get_secret_value() if spec else "").split(",")
        ]
        for name, token in tokens:
            if token is not None and token.get_secret_value().strip().startswith(PUBLIC_TOKEN_PREFIX):
                raise ValueError(f"{name} holds a public dev-only token, refused here ({why})")
        return self


def _parse_named_tokens(
    spec: SecretStr | None, setting: str, label: str, check: Callable[[str], str | None]
) -> list[tuple[str, bytes]]:
    """Parse ``<label>:token,...`` into (label, token bytes); ``check`` says what is wrong with a
    label (None: nothing). Errors never echo a token."""
    out: list[tuple[str, bytes]] = []
    if spec is None:
        return out
    for i, item in enumerate(x.strip() for x in spec.get_secret_value().split(",")):
        if not item:
            continue
        name, sep, token = item.partition(":")
        name = name.strip()
        if not sep or not token.strip():
            raise ValueError(f"{setting} entry #{i + 1} is not '{label}:token'")
        problem = check(name)
        if problem is not None:
            raise ValueError(f"{setting} entry #{i + 1}: {problem}")
        out.append((name, token.strip().encode()))
    tokens = [t for _, t in out]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{setting}: the same token is given more than once")
    return out


def _role_problem(role: str) -> str | None:
    return None if role in ROLES else f"unknown role {role!r} (expected one of {', '.join(ROLES)})"


def parse_service_tokens(spec: SecretStr | None) -> list[tuple[str, bytes]]:
    """Parse ``role:token,...`` into (role, token bytes). Errors never echo a token."""
    return _parse_named_tokens(spec, "CONFIG_API_SERVICE_TOKENS", "role", _role_problem)


ADMIN_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
_ADMIN_NAME_RE = re.compile(ADMIN_NAME_PATTERN)
RESERVED_ACTORS = frozenset({"admin", "anonymous", *ROLES})
"""Actors the audit log gives other meanings: ``admin`` is ``CONFIG_API_ADMIN_TOKEN``,
``anonymous`` a request without a known token, the roles are the service tokens."""


def _admin_name_problem(name: str) -> str | None:
    if not _ADMIN_NAME_RE.match(name):
        return "the name must be 1-64 lowercase letters, digits, '.', '_' or '-'"
    if name in RESERVED_ACTORS:
        return f"the name {name!r} is reserved ({', '.join(sorted(RESERVED_ACTORS))})"
    return None


def parse_admin_tokens(spec: SecretStr | None) -> list[tuple[str, bytes]]:
    """Parse ``name:token,...`` into (name, token bytes). Errors never echo a token."""
    return _parse_named_tokens(spec, "CONFIG_API_ADMIN_TOKENS", "name", _admin_name_problem)
