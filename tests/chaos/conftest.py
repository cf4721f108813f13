"""The chaos run (``test_under_faults.py``) runs only when asked for (``-m chaos``, or
``CHAOS=1``): the default ``pytest`` run does not even collect it; the plan's and the verdict's
own tests run with the unit tests. Postgres as in the integration tier (``VOICETICKET_TEST_POSTGRES_DSN``
or a throwaway cluster); the broker is always the suite's own, since it restarts it.

``CHAOS_SEED`` replays a run, ``CHAOS_SIZE`` (ci | full) and ``CHAOS_CALLS`` size it,
``CHAOS_WORKDIR`` keeps its logs and report somewhere else than pytest's temporary directory.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def chaos_selected(config: pytest.Config) -> bool:
    return "chaos" in str(config.getoption("markexpr") or "") or os.environ.get("CHAOS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: faults on the distributed deployment (tests/chaos)")


RUN = HERE / "test_under_faults.py"
"""The run itself; the suite's other tests (the plan, the verdict) need no infrastructure and run
with the unit tests."""


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path == RUN and not chaos_selected(config):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)) == RUN:
            item.add_marker(pytest.mark.chaos)


@pytest.fixture(scope="session")
def chaos_seed() -> int:
    given = os.environ.get("CHAOS_SEED", "").strip()
    return int(given) if given else secrets.randbelow(2**31)


@pytest.fixture(scope="session")
def chaos_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("CHAOS_WORKDIR", "").strip()
    if given:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("chaos")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    configured = os.environ.get("VOICETICKET_TEST_POSTGRES_DSN")
    if configured:
        yield configured
        return
    from voiceticket_sandbox.postgres import throwaway_postgres

    with throwaway_postgres() as dsn:
        yield dsn
