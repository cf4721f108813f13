"""The Kafka adapter over SASL_SSL and mutual TLS, on the real local Kafka 4.x broker.

One broker for the module, started with a SASL_SSL listener (SCRAM users written at storage
format) and an SSL listener requiring client certificates, from certificates made here: events go
through ``KafkaEventBus`` built from the services' settings; a wrong password, an untrusted CA and
a missing client certificate fail with errors saying so; with topic creation off, missing topics
stop the start.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from voiceticket_common.bus import RetryPolicy
from voiceticket_common.bus.kafka import KafkaEventBus, TopicsMissing
from voiceticket_common.bus.kafka_security import KafkaConnectFailed, KafkaSecurity
from voiceticket_common.events import Event, TicketCreated
from voiceticket_common.service import kafka_bus
from voiceticket_common.settings import ServiceSettings
from voiceticket_common.testing import cancelled, ticket_created
from voiceticket_sandbox.kafka_broker import (
    CertificateFiles,
    LocalKafkaBroker,
    SecureListeners,
    write_certificates,
)

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java 17+ for the Kafka broker")

USER = "voiceticket-test"
PASSWORD = "scram-pa55-" + uuid.uuid4().hex[:8]
FAST = RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1, max_total_seconds=5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return write_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(pki: CertificateFiles) -> Iterator[LocalKafkaBroker]:
    secure = SecureListeners(pki.broker, users={USER: PASSWORD})
    broker = LocalKafkaBroker(secure=secure)
    broker.start(timeout=150)
    try:
        yield broker
    finally:
        broker.stop()


def namespace() -> str:
    return f"sasl-{uuid.uuid4().hex[:8]}"


def sasl(
    pki: CertificateFiles, *, mechanism: str = "SCRAM-SHA-512", password: str = PASSWORD
) -> KafkaSecurity:
    return KafkaSecurity(
        protocol="SASL_SSL",
        ca_file=pki.ca_file,
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        username=USER,
        password=SecretStr(password),
    )


@asynccontextmanager
async def started(bus: KafkaEventBus) -> AsyncIterator[KafkaEventBus]:
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def round_trip(bus: KafkaEventBus, count: int = 2) -> list[str]:
    """Publish ``count`` tickets of one call and consume them back through the bus."""
    seen: list[str] = []

    async def handler(event: Event) -> Sequence[Event]:
        assert isinstance(event, TicketCreated)
        seen.append(event.issue_key)
        return []

    await bus.ensure_topics([TicketCreated], [f"group-{uuid.uuid4().hex[:6]}"])
    call_sid = f"CA{uuid.uuid4().hex}"
    keys = [f"SEC-{n}" for n in range(count)]
    for key in keys:
        await bus.publish(ticket_created(call_sid=call_sid, issue_key=key), discriminator=key)
    task = asyncio.create_task(bus.consume(f"group-{uuid.uuid4().hex[:6]}", [TicketCreated], handler, FAST))
    try:
        async with asyncio.timeout(30):
            while len(seen) < count:
                if task.done():
                    task.result()
                await asyncio.sleep(0.1)
    finally:
        await cancelled(task)
    return seen


async def test_events_go_through_the_bus_over_sasl_ssl_with_scram_sha_512(
    broker: LocalKafkaBroker, pki: CertificateFiles
) -> None:
    settings = ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_bootstrap_servers=broker.sasl_ssl_bootstrap_servers,
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_ca_file=pki.ca_file,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_partitions=2,
        kafka_min_insync_replicas=1,
        kafka_topic_namespace=namespace(),
    )
    bus = kafka_bus(settings, "sasl-test")
    async with started(bus):
        assert await round_trip(bus) == ["SEC-0", "SEC-1"]
        assert bus._producer is not None
        assert len(await bus._producer.partitions_for(bus.topic(TicketCreated.topic()))) == 2


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_scram_sha_256_and_plain_authenticate_too(
    broker: LocalKafkaBroker, pki: CertificateFiles, mechanism: str
) -> None:
    security = sasl(pki, mechanism=mechanism)
    bus = KafkaEventBus(
        broker.sasl_ssl_bootstrap_servers, "sasl-test", topic_namespace=namespace(), security=security
    )
    async with started(bus):
        await bus.ensure_topics([TicketCreated])  # the admin client, over SASL_SSL
        assert bus._producer is not None
        assert await bus._producer.partitions_for(bus.topic(TicketCreated.topic()))


async def test_a_wrong_password_fails_with_a_clear_error(
    broker: LocalKafkaBroker, pki: CertificateFiles
) -> None:
    wrong = "not-the-" + PASSWORD
    bus = KafkaEventBus(broker.sasl_ssl_bootstrap_servers, "sasl-test", security=sasl(pki, password=wrong))
    with pytest.raises(
        KafkaConnectFailed, match=f"SASL authentication of user '{USER}' with SCRAM-SHA-512 was refused"
    ) as raised:
        await bus.start()
    await bus.stop()
    message = str(raised.value)
    assert wrong not in message and PASSWORD not in message
    assert "VOICETICKET_KAFKA_SASL_PASSWORD" in message


async def test_an_untrusted_ca_fails_with_a_clear_error(
    broker: LocalKafkaBroker, pki: CertificateFiles
) -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL", ca_file=pki.untrusted_ca_file, username=USER, password=SecretStr(PASSWORD)
    )
    bus = KafkaEventBus(broker.sasl_ssl_bootstrap_servers, "sasl-test", security=security)
    with pytest.raises(
        KafkaConnectFailed, match="TLS certificate was not accepted.*VOICETICKET_KAFKA_SSL_CA_FILE"
    ):
        await bus.start()
    await bus.stop()


async def test_mutual_tls_with_a_client_certificate(broker: LocalKafkaBroker, pki: CertificateFiles) -> None:
    security = KafkaSecurity(
        protocol="SSL",
        ca_file=pki.ca_file,
        cert_file=pki.client_cert_file,
        key_file=pki.encrypted_client_key_file,
        key_password=SecretStr(pki.key_password),
    )
    bus = KafkaEventBus(
        broker.ssl_bootstrap_servers, "mtls-test", topic_namespace=namespace(), security=security
    )
    async with started(bus):
        assert await round_trip(bus, count=1) == ["SEC-0"]

    without = KafkaEventBus(
        broker.ssl_bootstrap_servers, "mtls-test", security=KafkaSecurity(protocol="SSL", ca_file=pki.ca_file)
    )
    with pytest.raises(KafkaConnectFailed, match="closed the connection.*VOICETICKET_KAFKA_SSL_CERT_FILE"):
        await without.start()
    await without.stop()


async def test_with_topic_creation_off_missing_topics_stop_the_start(
    broker: LocalKafkaBroker, pki: CertificateFiles
) -> None:
    ns = namespace()
    provisioned = KafkaEventBus(
        broker.sasl_ssl_bootstrap_servers,
        "sasl-test",
        topic_namespace=ns,
        security=sasl(pki),
        create_topics=False,
    )
    async with started(provisioned):
        with pytest.raises(TopicsMissing, match=f"{ns}.voiceticket.ticket.created.v1") as raised:
            await provisioned.ensure_topics([TicketCreated])
        assert raised.value.topics == [f"{ns}.{TicketCreated.topic()}"]
        # the platform provisions the topic (here: a bus that may create it); then the start passes
        creator = KafkaEventBus(
            broker.sasl_ssl_bootstrap_servers, "sasl-test", topic_namespace=ns, security=sasl(pki)
        )
        await creator._ensure([TicketCreated.topic()])
        await provisioned.ensure_topics([TicketCreated])


def test_the_certificates_name_the_loopback_addresses(pki: CertificateFiles) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(pki.broker.cert_file).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n.value) for n in names} == {"localhost", "127.0.0.1"}
