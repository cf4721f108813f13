"""Real infrastructure for the integration tier: a Kafka 4.x broker and a Postgres cluster.

``KAFKA_BOOTSTRAP_SERVERS`` points the tests at an existing broker; otherwise the broker assembled
from Maven Central (deploy/local/kafka) is started for the session. ``VOICETICKET_TEST_POSTGRES_DSN``
does the same for Postgres; otherwise a throwaway cluster is made from the Debian server binaries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from voiceticket_sandbox.devstack import Stack  # noqa: E402
from voiceticket_sandbox.kafka_broker import KafkaBrokerError, LocalKafkaBroker  # noqa: E402
from voiceticket_sandbox.postgres import throwaway_postgres  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def configured_or_started(variable: str, start: Callable[[], AbstractContextManager[str]]) -> Iterator[str]:
    """What the environment variable names, or else what ``start`` runs for as long as it is needed."""
    configured = os.environ.get(variable)
    if configured:
        yield configured
        return
    with start() as started:
        yield started


@contextmanager
def local_kafka_broker() -> Iterator[str]:
    broker = LocalKafkaBroker()
    try:
        broker.start()
    except KafkaBrokerError as first:
        # A busy 2-core machine can miss the start-up deadline once; say so and try again.
        print(f"local Kafka broker did not start, retrying once: {str(first).splitlines()[0]}")
        broker = LocalKafkaBroker()
        broker.start(timeout=150)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    yield from configured_or_started("KAFKA_BOOTSTRAP_SERVERS", local_kafka_broker)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    yield from configured_or_started("VOICETICKET_TEST_POSTGRES_DSN", throwaway_postgres)


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack"), kafka_bootstrap, postgres_dsn)
    try:
        running.start()
        yield running
    finally:
        running.stop()
