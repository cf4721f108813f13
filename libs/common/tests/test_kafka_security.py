"""Kafka client security and topic provisioning settings: what every client gets, and the
combinations refused when the settings load (naming the setting, never showing a secret)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr, ValidationError

from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.bus.kafka_security import (
    KafkaConnectFailed,
    KafkaSecurity,
    KafkaSecurityError,
    security_from_environment,
)
from voiceticket_common.bus.port import dead_letter_topic
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.service import kafka_bus
from voiceticket_common.settings import ServiceSettings
from voiceticket_config_api.settings import Settings as ConfigApiSettings
from voiceticket_sandbox.kafka_broker import CertificateFiles, write_certificates

PASSWORD = "sasl-pa55word-not-for-logs"  # noqa: S105 - a test value, asserted never to be shown
TOKEN = SecretStr("a-config-api-token")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return write_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _no_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("VOICETICKET_KAFKA_", "CONFIG_API_KAFKA_")) or name == "VOICETICKET_ENVIRONMENT":
            monkeypatch.delenv(name)


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_plaintext_by_default() -> None:
    security = settings().kafka_security()
    assert security.protocol == "PLAINTEXT"
    assert security.client_kwargs() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_from_the_environment(monkeypatch: pytest.MonkeyPatch, pki: CertificateFiles) -> None:
    monkeypatch.setenv("VOICETICKET_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("VOICETICKET_KAFKA_SSL_CA_FILE", str(pki.ca_file))
    monkeypatch.setenv("VOICETICKET_KAFKA_SASL_USERNAME", "voiceticket-ingress")
    monkeypatch.setenv("VOICETICKET_KAFKA_SASL_PASSWORD", PASSWORD)
    loaded = settings()
    assert PASSWORD not in repr(loaded) and PASSWORD not in str(loaded.kafka_security())
    kwargs = loaded.kafka_security().client_kwargs()
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "voiceticket-ingress",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert {c["subject"] for c in context.get_ca_certs()} == {((("commonName", "voiceticket test CA"),),)}


async def test_every_client_kind_takes_the_arguments(pki: CertificateFiles) -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        ca_file=pki.ca_file,
        cert_file=pki.client_cert_file,
        key_file=pki.client_key_file,
        sasl_mechanism="PLAIN",
        username="svc",
        password=SecretStr(PASSWORD),
    )
    kwargs = security.client_kwargs()
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **kwargs)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **kwargs)
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1", **kwargs)
    try:
        # none connects before start(); each holds the one security configuration
        for client in (producer.client, consumer._client, admin._client):
            assert client._security_protocol == "SASL_SSL"
            assert client._sasl_mechanism == "PLAIN"
            assert client._ssl_context is kwargs["ssl_context"]
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.close()


def test_encrypted_client_key_with_its_password(pki: CertificateFiles) -> None:
    security = KafkaSecurity(
        protocol="SSL",
        ca_file=pki.ca_file,
        cert_file=pki.client_cert_file,
        key_file=pki.encrypted_client_key_file,
        key_password=SecretStr(pki.key_password),
    )
    assert isinstance(security.client_kwargs()["ssl_context"], ssl.SSLContext)
    wrong = KafkaSecurity(
        protocol="SSL",
        cert_file=pki.client_cert_file,
        key_file=pki.encrypted_client_key_file,
        key_password=SecretStr(PASSWORD),
    )
    with pytest.raises(KafkaSecurityError, match="TLS files could not be loaded") as raised:
        wrong.client_kwargs()
    assert PASSWORD not in str(raised.value) and pki.key_password not in str(raised.value)


def test_hostname_check_can_be_turned_off_but_not_the_certificate_check(pki: CertificateFiles) -> None:
    loaded = settings(
        kafka_security_protocol="SSL", kafka_ssl_ca_file=pki.ca_file, kafka_ssl_check_hostname=False
    )
    context = loaded.kafka_security().client_kwargs()["ssl_context"]
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_password": PASSWORD},
            "VOICETICKET_KAFKA_SASL_USERNAME must be set with VOICETICKET_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "svc"},
            "VOICETICKET_KAFKA_SASL_PASSWORD must be set with VOICETICKET_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
        (
            {"kafka_sasl_username": "svc", "kafka_sasl_password": PASSWORD},
            "are set but VOICETICKET_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not authenticate with SASL",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/nonexistent/ca.pem"},
            "VOICETICKET_KAFKA_SSL_CA_FILE: no such file /nonexistent/ca.pem",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_ssl_ca_file": "/etc/hostname",
             "kafka_sasl_username": "svc", "kafka_sasl_password": PASSWORD},
            "VOICETICKET_KAFKA_SSL_CA_FILE set but VOICETICKET_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS",
        ),
        (
            {"kafka_security_protocol": "TLS"},
            "kafka_security_protocol",
        ),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"},
            "kafka_sasl_mechanism",
        ),
    ],
)  # fmt: skip
def test_bad_combinations_are_refused_when_the_settings_load(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        settings(**values)
    assert PASSWORD not in str(raised.value)


def test_a_client_certificate_needs_its_key(pki: CertificateFiles) -> None:
    with pytest.raises(
        ValidationError,
        match="VOICETICKET_KAFKA_SSL_CERT_FILE and VOICETICKET_KAFKA_SSL_KEY_FILE go together",
    ):
        settings(kafka_security_protocol="SSL", kafka_ssl_cert_file=pki.client_cert_file)
    with pytest.raises(ValidationError, match="VOICETICKET_KAFKA_SSL_KEY_PASSWORD is set without"):
        settings(kafka_security_protocol="SSL", kafka_ssl_key_password=PASSWORD)


def test_config_api_names_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_API_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CONFIG_API_KAFKA_SASL_PASSWORD", PASSWORD)
    with pytest.raises(ValidationError, match="CONFIG_API_KAFKA_SASL_USERNAME must be set") as raised:
        ConfigApiSettings(env="development")
    assert PASSWORD not in str(raised.value)
    monkeypatch.setenv("CONFIG_API_KAFKA_SASL_USERNAME", "voiceticket-config-api")
    security = ConfigApiSettings(env="development").kafka_security()
    assert (security.protocol, security.username) == ("SASL_SSL", "voiceticket-config-api")


def test_tools_read_the_security_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert security_from_environment() == KafkaSecurity()
    monkeypatch.setenv("VOICETICKET_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("VOICETICKET_KAFKA_SASL_MECHANISM", "scram-sha-256")
    monkeypatch.setenv("VOICETICKET_KAFKA_SASL_USERNAME", "operator")
    monkeypatch.setenv("VOICETICKET_KAFKA_SASL_PASSWORD", PASSWORD)
    security = security_from_environment()
    assert (security.protocol, security.sasl_mechanism, security.username) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-256",
        "operator",
    )


def test_the_bus_refuses_a_security_that_cannot_work() -> None:
    with pytest.raises(KafkaSecurityError, match="VOICETICKET_KAFKA_SASL_USERNAME must be set"):
        KafkaEventBus("127.0.0.1:9092", "test", security=KafkaSecurity(protocol="SASL_SSL"))


# --- topic provisioning ---------------------------------------------------------------------------
def test_replication_factor_one_is_refused_in_production() -> None:
    with pytest.raises(
        ValidationError, match="VOICETICKET_KAFKA_REPLICATION_FACTOR=1 is refused in production"
    ):
        settings(environment="production", config_api_token=TOKEN)
    assert settings(environment="production", config_api_token=TOKEN, kafka_replication_factor=3)
    # where the platform provisions the topics, the services create none: nothing to refuse
    assert settings(environment="production", config_api_token=TOKEN, kafka_create_topics=False)
    assert settings(environment="development").kafka_replication_factor == 1


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    with pytest.raises(
        ValidationError, match="MIN_INSYNC_REPLICAS=3 exceeds VOICETICKET_KAFKA_REPLICATION_FACTOR=2"
    ):
        settings(kafka_replication_factor=2, kafka_min_insync_replicas=3)


def test_the_bus_creates_topics_as_the_settings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICETICKET_KAFKA_PARTITIONS", "12")
    monkeypatch.setenv("VOICETICKET_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("VOICETICKET_KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("VOICETICKET_KAFKA_CREATE_TOPICS", "false")
    bus = kafka_bus(settings(), "test")
    assert (bus._partitions, bus._replication, bus._create_topics) == (12, 3, False)
    for topic in (CallAnalyzed.topic(), dead_letter_topic("voiceticket-notifier")):
        assert bus._topic_configs(topic)["min.insync.replicas"] == "2"
    monkeypatch.delenv("VOICETICKET_KAFKA_MIN_INSYNC_REPLICAS")
    assert "min.insync.replicas" not in kafka_bus(settings(), "test")._topic_configs(CallAnalyzed.topic())


def test_kafka_bus_passes_the_security(pki: CertificateFiles) -> None:
    loaded = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_ca_file=pki.ca_file,
        kafka_sasl_username="svc",
        kafka_sasl_password=PASSWORD,
    )
    client = kafka_bus(loaded, "test")._client()
    assert client["bootstrap_servers"] == "127.0.0.1:9092"
    assert (client["security_protocol"], client["sasl_plain_username"]) == ("SASL_SSL", "svc")


def test_certificates_for_tests(pki: CertificateFiles, tmp_path: Path) -> None:
    context = ssl.create_default_context(cafile=pki.ca_file)
    context.load_cert_chain(pki.client_cert_file, pki.client_key_file)  # the pair matches
    assert pki.broker.ca_file == pki.ca_file and pki.untrusted_ca_file != pki.ca_file
    assert oct(pki.broker.key_file.stat().st_mode & 0o777) == "0o600"


async def test_a_broker_that_is_not_there_is_named_in_the_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    bus = KafkaEventBus(f"127.0.0.1:{port}", "test")
    with pytest.raises(KafkaConnectFailed, match=rf"Kafka at 127.0.0.1:{port} .*PLAINTEXT.*cannot connect"):
        await bus.start()
    await bus.stop()
