"""How every Kafka client of the code base authenticates and encrypts: TLS (a CA, client
certificates) and SASL (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), as one set of aiokafka arguments.

``KafkaSecurity`` is the value object the bus adapters take; ``KafkaClientSettings`` reads it from
the environment (each service's prefix) and refuses combinations that cannot work when the settings
load. Messages name settings and files, never a password.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError
from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)


class KafkaSecurityError(ValueError):
    """A security configuration no broker connection can work with (no secret in the message)."""


class KafkaConnectFailed(ConnectionError):
    """No connection to the cluster, and why (refused credentials, an unverified certificate...),
    where aiokafka only says "Unable to bootstrap" and logs the reason."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The security of a Kafka connection: the protocol and what it needs.

    ``SSL``/``SASL_SSL`` verify the broker against ``ca_file`` (the system's CAs without it) and
    its host name (unless ``check_hostname`` is off); ``cert_file``/``key_file`` present a client
    certificate (mutual TLS). ``SASL_*`` authenticate ``username`` with ``sasl_mechanism``.
    """

    protocol: SecurityProtocol = "PLAINTEXT"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    check_hostname: bool = True
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = SecretStr("")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def problems(self, prefix: str = "VOICETICKET_") -> list[str]:
        """What is wrong with this configuration, each naming the ``{prefix}KAFKA_*`` setting."""

        def name(setting: str) -> str:
            return f"{prefix}KAFKA_{setting}"

        protocol = f"{name('SECURITY_PROTOCOL')}={self.protocol}"
        found: list[str] = []
        if self.protocol not in PROTOCOLS:
            found.append(f"{name('SECURITY_PROTOCOL')} must be one of {', '.join(PROTOCOLS)}")
        if self.uses_sasl and self.sasl_mechanism not in MECHANISMS:
            found.append(f"{name('SASL_MECHANISM')} must be one of {', '.join(MECHANISMS)}")
        if self.uses_sasl:
            if not self.username:
                found.append(f"{name('SASL_USERNAME')} must be set with {protocol}")
            if not self.password.get_secret_value():
                found.append(f"{name('SASL_PASSWORD')} must be set with {protocol}")
        elif self.username or self.password.get_secret_value():
            found.append(
                f"{name('SASL_USERNAME')}/{name('SASL_PASSWORD')} are set but {protocol} does not "
                "authenticate with SASL (use SASL_SSL)"
            )
        files = {"SSL_CA_FILE": self.ca_file, "SSL_CERT_FILE": self.cert_file, "SSL_KEY_FILE": self.key_file}
        if not self.uses_tls:
            named = [name(k) for k, v in files.items() if v is not None]
            if self.key_password is not None:
                named.append(name("SSL_KEY_PASSWORD"))
            if named:
                found.append(f"{', '.join(named)} set but {protocol} does not use TLS (use SSL or SASL_SSL)")
            return found
        for setting, path in files.items():
            if path is not None and not path.is_file():
                found.append(f"{name(setting)}: no such file {path}")
        if (self.cert_file is None) != (self.key_file is None):
            found.append(f"{name('SSL_CERT_FILE')} and {name('SSL_KEY_FILE')} go together (mutual TLS)")
        if self.key_password is not None and self.key_file is None:
            found.append(f"{name('SSL_KEY_PASSWORD')} is set without {name('SSL_KEY_FILE')}")
        return found

    def check(self, prefix: str = "VOICETICKET_") -> None:
        """Raise :class:`KafkaSecurityError` listing every problem, if there is any."""

        found = self.problems(prefix)
        if found:
            raise KafkaSecurityError("Kafka security settings: " + "; ".join(found))

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of ``SSL``/``SASL_SSL`` connections (None otherwise)."""

        if not self.uses_tls:
            return None
        password = self.key_password.get_secret_value() if self.key_password is not None else None
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ca_file, certfile=self.cert_file, keyfile=self.key_file, password=password
            )
        except (ssl.SSLError, OSError) as exc:
            # OpenSSL's reason (e.g. a wrong key password), never the password itself.
            raise KafkaSecurityError(
                f"Kafka TLS files could not be loaded ({type(exc).__name__}: {exc.strerror or exc})"
            ) from None
        context.check_hostname = self.check_hostname  # the certificate itself is always verified
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient
        of the code base takes for this security (the password only inside, never logged)."""

        self.check()
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password.get_secret_value(),
            )
        return kwargs


async def connection_failure(
    bootstrap_servers: str, security: KafkaSecurity, prefix: str = "VOICETICKET_"
) -> KafkaConnectFailed:
    """Why clients with ``security`` cannot connect to ``bootstrap_servers``: one connection to
    each bootstrap server in turn, until one fails with a reason (never a password in it)."""

    reason = "every connection attempt failed"
    for server in [s.strip() for s in bootstrap_servers.split(",") if s.strip()]:
        host, _, port = server.rpartition(":")
        where = f"Kafka at {server} ({prefix}KAFKA_SECURITY_PROTOCOL={security.protocol})"
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host.strip("[]"), int(port), request_timeout_ms=10_000, **security.client_kwargs()
                ),
                15,
            )
        except Exception as exc:  # noqa: BLE001 - each kind of failure is a reason to report
            return KafkaConnectFailed(f"{where}: {_reason(exc, security, prefix)}")
        conn.close()
        reason = f"{where} accepts a connection now; the cluster's other brokers may not"
    return KafkaConnectFailed(reason)


def _reason(exc: BaseException, security: KafkaSecurity, prefix: str) -> str:
    if isinstance(exc, SaslAuthenticationFailed):
        return (
            f"SASL authentication of user {security.username!r} with {security.sasl_mechanism} was "
            f"refused ({exc}): check {prefix}KAFKA_SASL_USERNAME and {prefix}KAFKA_SASL_PASSWORD"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"{exc}: check {prefix}KAFKA_SASL_MECHANISM"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's TLS certificate was not accepted ({exc.verify_message}): check "
            f"{prefix}KAFKA_SSL_CA_FILE (and that the certificate names the host connected to)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, KafkaConnectionError):
        hint = ""
        if security.uses_tls and security.cert_file is None:
            hint = f"; a listener requiring client certificates closes it without {prefix}KAFKA_SSL_CERT_FILE"
        return f"the broker closed the connection: does this listener speak {security.protocol}?{hint}"
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time (a TLS or SASL listener spoken to in another protocol?)"
    if isinstance(exc, OSError):
        return f"cannot connect ({exc.strerror or exc})"
    return f"{type(exc).__name__}"


PLAINTEXT = KafkaSecurity()
"""No TLS, no authentication: the local broker and clusters reachable only by the services."""


class KafkaClientSettings(BaseSettings):
    """The Kafka client security settings, for any settings class (its ``env_prefix`` in front):
    ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SSL_*`` and ``KAFKA_SASL_*``."""

    # Subclasses keep this: a validation error would otherwise print every input, secrets included.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_ssl_ca_file: Path | None = None
    """PEM file of the CA(s) that signed the brokers' certificates; unset: the system's CAs."""
    kafka_ssl_cert_file: Path | None = None
    """PEM client certificate (chain) for mutual TLS, with ``kafka_ssl_key_file``."""
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    """Password of an encrypted ``kafka_ssl_key_file``."""
    kafka_ssl_check_hostname: bool = True
    """Verify that the broker's certificate names the host connected to (keep on)."""
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def kafka_security(self) -> KafkaSecurity:
        """The security of this service's Kafka clients, as these settings describe it."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            ca_file=self.kafka_ssl_ca_file,
            cert_file=self.kafka_ssl_cert_file,
            key_file=self.kafka_ssl_key_file,
            key_password=self.kafka_ssl_key_password,
            check_hostname=self.kafka_ssl_check_hostname,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
        )

    @model_validator(mode="after")
    def _kafka_security_can_work(self) -> KafkaClientSettings:
        self.kafka_security().check(str(self.model_config.get("env_prefix", "")))
        return self


def security_from_environment(prefix: str = "VOICETICKET_") -> KafkaSecurity:
    """The security the ``{prefix}KAFKA_*`` environment variables describe, for tools that have
    no service's settings (the ``voiceticket`` command's dead-letter commands)."""

    class FromEnvironment(KafkaClientSettings):
        model_config = SettingsConfigDict(env_prefix=prefix, extra="ignore")

    return FromEnvironment().kafka_security()
