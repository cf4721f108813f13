"""config-api's outbox: each change writes its announcement in its own transaction; the relay
publishes the unsent rows in order, marks each only after the bus acknowledged it, retries a
failed publish from that row, and deletes old sent rows."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from config_api_testkit import NUMBER, PLAIN, line_body, make_settings, running, seeded_settings, tenant_body
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voiceticket_common.events import ConfigChanged, ConfigChangeKind, Event
from voiceticket_config_api.db import ConfigOutbox, Line, utcnow
from voiceticket_config_api.outbox import OutboxRelay, RelayFailed, event_of, record_change, relaying
from voiceticket_sandbox.postgres import postgres_bin_dir, throwaway_postgres
from voiceticket_sandbox.testing import eventually

OTHER = "+14155550101"


class RecordingPublisher:
    """Publishes into ``events``; a version in ``fail_once`` fails its first publish. With
    ``sessions``, each publish also notes whether its row was still unsent at that moment."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.events: list[ConfigChanged] = []
        self.attempts: list[int] = []
        self.fail_once: set[int] = set()
        self.unsent_while_publishing: list[bool] = []
        self._sessions = sessions

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        assert isinstance(event, ConfigChanged)
        self.attempts.append(event.config_version)
        if event.config_version in self.fail_once:
            self.fail_once.discard(event.config_version)
            raise ConnectionError("broker unreachable")
        if self._sessions is not None:
            async with self._sessions() as session:
                row = await session.get(ConfigOutbox, event.config_version)
                self.unsent_while_publishing.append(row is not None and row.sent_at is None)
        self.events.append(event)

    def versions(self) -> list[int]:
        return [e.config_version for e in self.events]


def sessions_of(client: httpx.AsyncClient) -> async_sessionmaker[AsyncSession]:
    return client.app.state.sessions  # type: ignore[attr-defined, no-any-return]


async def outbox_rows(client: httpx.AsyncClient) -> list[ConfigOutbox]:
    async with sessions_of(client)() as session:
        return list((await session.scalars(select(ConfigOutbox).order_by(ConfigOutbox.id))).all())


def summary(rows: list[ConfigOutbox]) -> list[tuple[str, str, list[str]]]:
    return [(r.kind, r.tenant_id, r.line_numbers) for r in rows]


async def test_every_change_writes_its_announcement(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert (await client.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 201
    assert (await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)).status_code == 201
    assert (await client.put(f"/v1/lines/{OTHER}", json=line_body(), headers=admin)).status_code == 201
    r = await client.patch("/v1/tenants/acme", json={"name": "Acme Ltd"}, headers=admin)
    assert r.status_code == 200
    r = await client.put(
        "/v1/tenants/acme/credentials/openai_api_key", json={"value": "sk-new"}, headers=admin
    )
    assert r.status_code == 200
    assert (await client.delete(f"/v1/lines/{OTHER}", headers=admin)).status_code == 204
    assert (await client.delete("/v1/tenants/acme", headers=admin)).status_code == 200

    rows = await outbox_rows(client)
    assert summary(rows) == [
        ("tenant", "acme", []),
        ("line", "acme", [NUMBER]),
        ("line", "acme", [OTHER]),
        ("tenant", "acme", [NUMBER, OTHER]),
        ("credential", "acme", [NUMBER, OTHER]),
        ("line", "acme", [OTHER]),
        ("tenant_removed", "acme", [NUMBER]),
    ]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert all(r.sent_at is None for r in rows)  # no relay in this app: nothing was published


async def test_an_announcement_carries_no_secret(seeded: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await seeded.put(
        "/v1/tenants/acme/credentials/jira_api_token", json={"value": "rotated-9"}, headers=admin
    )
    assert r.status_code == 200
    events = [event_of(row).model_dump_json() for row in await outbox_rows(seeded)]
    assert events and not any(secret in e for e in events for secret in [*PLAIN.values(), "rotated-9"])


async def test_an_unchanged_credential_announces_nothing(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    before = len(await outbox_rows(seeded))
    body = {"value": PLAIN["openai_api_key"]}  # the value already stored
    r = await seeded.put("/v1/tenants/acme/credentials/openai_api_key", json=body, headers=admin)
    assert r.status_code == 200
    assert len(await outbox_rows(seeded)) == before


async def test_a_refused_change_writes_no_announcement(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    before = len(await outbox_rows(seeded))
    r = await seeded.patch("/v1/tenants/acme", json={"jira_auth": "oauth2"}, headers=admin)
    assert r.status_code == 422
    assert len(await outbox_rows(seeded)) == before


async def test_the_row_commits_with_the_change_and_not_before(seeded: httpx.AsyncClient) -> None:
    sessions = sessions_of(seeded)
    before = len(await outbox_rows(seeded))
    async with sessions() as session:
        line = await session.get(Line, NUMBER)
        assert line is not None
        line.greeting = "Hello again"
        await record_change(session, ConfigChangeKind.LINE, "acme", [NUMBER])
        await session.flush()
        assert len(await outbox_rows(seeded)) == before  # another connection sees nothing yet
        await session.rollback()
    assert len(await outbox_rows(seeded)) == before  # rolled back: neither the change nor its row
    async with sessions() as session:
        line = await session.get(Line, NUMBER)
        assert line is not None and line.greeting != "Hello again"
        line.greeting = "Hello again"
        await record_change(session, ConfigChangeKind.LINE, "acme", [NUMBER])
        await session.commit()
    assert len(await outbox_rows(seeded)) == before + 1


async def _changes(client: httpx.AsyncClient, admin: dict[str, str], count: int) -> None:
    for i in range(count):
        r = await client.put(f"/v1/lines/{NUMBER}", json=line_body(greeting=f"Hello {i}"), headers=admin)
        assert r.status_code in (200, 201), r.text


async def test_the_relay_publishes_in_order_then_marks_sent(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _changes(seeded, admin, 3)
    publisher = RecordingPublisher(sessions_of(seeded))
    relay = OutboxRelay(sessions_of(seeded), publisher)
    assert await relay.relay_once() == 5  # tenant, line created, three replacements
    rows = await outbox_rows(seeded)
    assert publisher.versions() == [r.id for r in rows]
    assert publisher.unsent_while_publishing == [True] * 5  # published first, marked after
    assert all(r.sent_at is not None for r in rows)
    assert await relay.relay_once() == 0  # marked: not published again
    assert publisher.events[1].kind is ConfigChangeKind.LINE
    assert publisher.events[1].line_numbers == [NUMBER]


async def test_a_failed_publish_is_retried_from_that_row_in_order(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _changes(seeded, admin, 2)
    ids = [r.id for r in await outbox_rows(seeded)]
    publisher = RecordingPublisher()
    publisher.fail_once = {ids[2]}
    relay = OutboxRelay(sessions_of(seeded), publisher)
    with pytest.raises(RelayFailed):
        await relay.relay_once()
    sent = [r.sent_at is not None for r in await outbox_rows(seeded)]
    assert sent == [True, True, False, False]  # what came before the failure stays sent
    assert await relay.relay_once() == 2
    assert publisher.versions() == ids  # each once, in order
    assert publisher.attempts == [ids[0], ids[1], ids[2], ids[2], ids[3]]


async def test_the_running_relay_retries_until_the_bus_takes_it(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    publisher = RecordingPublisher()
    ids = [r.id for r in await outbox_rows(seeded)]
    publisher.fail_once = {ids[0]}
    pauses: list[float] = []

    async def no_wait(seconds: float) -> None:
        pauses.append(seconds)

    relay = OutboxRelay(sessions_of(seeded), publisher, poll_seconds=0.05, sleep=no_wait)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: publisher.versions() == ids, timeout=5, interval=0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert pauses and pauses[0] > 0  # it paused after the failure, then tried the same row again
    assert publisher.attempts[:2] == [ids[0], ids[0]]


async def test_a_change_is_relayed_at_once(seeded: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """The relay running in the app (as the embedded runtime runs it): a committed change wakes it,
    well before its poll interval would."""
    app = seeded.app  # type: ignore[attr-defined]
    publisher = RecordingPublisher()
    app.state.settings.outbox_poll_seconds = 30.0
    async with relaying(app, publisher) as relay:
        await eventually(lambda: relay.published == 2, timeout=5, interval=0.01)  # from before it started
        loop = asyncio.get_running_loop()
        started = loop.time()
        await _changes(seeded, admin, 1)
        await eventually(lambda: relay.published == 3, timeout=1, interval=0.005)
        assert loop.time() - started < 1
    assert publisher.events[-1].kind is ConfigChangeKind.LINE


async def test_old_sent_rows_are_deleted_and_unsent_ones_kept(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    sessions = sessions_of(seeded)
    now = utcnow()
    relay = OutboxRelay(
        sessions, RecordingPublisher(), keep=timedelta(hours=1), clock=lambda: now - timedelta(hours=2)
    )
    await relay.relay_once()  # the seeded two, sent "two hours ago"
    await _changes(seeded, admin, 1)  # one more, unsent
    later = OutboxRelay(sessions, RecordingPublisher(), keep=timedelta(hours=1), clock=lambda: now)
    assert await later.purge_sent() == 2
    rows = await outbox_rows(seeded)
    assert len(rows) == 1 and rows[0].sent_at is None


async def test_a_seed_announces_what_it_changed_only(tmp_path: Path) -> None:
    tenants: list[dict[str, Any]] = [tenant_body()]
    lines: list[dict[str, Any]] = [{**line_body(), "number": NUMBER}]
    settings = seeded_settings(tmp_path, tenants, lines)
    async with running(settings) as client:
        assert summary(await outbox_rows(client)) == [("tenant", "acme", [NUMBER])]
    async with running(settings) as client:  # the same seed again: nothing changed
        assert len(await outbox_rows(client)) == 1
    lines[0]["greeting"] = "Welcome to Acme"
    (tmp_path / "seed.json").write_text(json.dumps({"tenants": tenants, "lines": lines}))
    async with running(settings) as client:
        assert summary(await outbox_rows(client))[-1] == ("tenant", "acme", [NUMBER])
        assert len(await outbox_rows(client)) == 2


def test_the_event_of_a_row_is_the_change_and_its_version() -> None:
    row = ConfigOutbox(id=7, tenant_id="acme", kind="credential", line_numbers=[NUMBER], created_at=utcnow())
    event = event_of(row)
    assert (event.config_version, event.kind, event.line_numbers, event.key) == (
        7,
        ConfigChangeKind.CREDENTIAL,
        [NUMBER],
        "acme",
    )
    assert event.occurred_at.tzinfo is not None
    assert event.deterministic_id() == event_of(row).deterministic_id()  # a republished row: same id


async def test_config_api_serves_while_kafka_is_out_of_reach(tmp_path: Path, admin: dict[str, str]) -> None:
    """Its own relay connects in the background: the admin API works, the changes wait."""
    settings = make_settings(tmp_path, kafka_bootstrap_servers="127.0.0.1:9")  # nothing listens
    async with running(settings) as client:
        assert (await client.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 201
        rows = await outbox_rows(client)
        assert [r.kind for r in rows] == ["tenant"] and rows[0].sent_at is None


async def test_the_topic_is_provisioned_before_the_first_pass_and_retried(
    seeded: httpx.AsyncClient,
) -> None:
    publisher = RecordingPublisher()
    provisions: list[str] = []

    async def provision() -> None:
        provisions.append("tried")
        if len(provisions) == 1:
            raise ConnectionError("broker unreachable")

    async def no_wait(seconds: float) -> None:
        pass

    relay = OutboxRelay(sessions_of(seeded), publisher, poll_seconds=0.05, sleep=no_wait, prepare=provision)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: len(publisher.events) == 2, timeout=5, interval=0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert provisions == ["tried", "tried"]  # then not again


@pytest.mark.integration
@pytest.mark.skipif(postgres_bin_dir() is None, reason="PostgreSQL server binaries not found")
async def test_on_postgres_versions_follow_the_commit_order(tmp_path: Path, admin: dict[str, str]) -> None:
    """A change holds the outbox until it commits: one begun later waits, and gets the later
    version, so the relay never sees a version before an earlier one is committed."""
    with throwaway_postgres() as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        async with running(make_settings(tmp_path, database_url=url)) as client:
            assert (await client.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 201
            sessions = sessions_of(client)
            async with sessions() as first:
                await record_change(first, ConfigChangeKind.LINE, "acme", [NUMBER])
                await first.flush()

                async def second_change() -> None:
                    async with sessions() as second:
                        await record_change(second, ConfigChangeKind.LINE, "acme", [OTHER])
                        await second.commit()

                waiting = asyncio.create_task(second_change())
                await asyncio.sleep(0.5)
                assert not waiting.done()  # held until the first commits
                await first.commit()
            await asyncio.wait_for(waiting, 5)
            rows = await outbox_rows(client)
            assert [r.line_numbers for r in rows[-2:]] == [[NUMBER], [OTHER]]
            assert rows[-2].id < rows[-1].id
            publisher = RecordingPublisher()
            assert await OutboxRelay(sessions, publisher).relay_once() == 3
            assert publisher.versions() == [r.id for r in rows]
