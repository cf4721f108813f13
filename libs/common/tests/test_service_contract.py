"""The service contract: typed dispatch, and one runner that serves a description on a bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import SecretStr

from voiceticket_common.bus import Dispatcher, PermanentError, RetryPolicy, on
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import CallAnalyzed, Event, NotificationSent, TicketCreated
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.service import ConsumerService, consuming
from voiceticket_common.settings import ServiceSettings


@dataclass
class Deps:
    seen: list[Event] = field(default_factory=list)
    closed: bool = False


def ticket(analyzed: CallAnalyzed) -> TicketCreated:
    return TicketCreated(
        **analyzed.call_context(),
        issue_key="HELP-1",
        issue_id="1",
        service_desk_id="4",
        request_type_id="41",
        summary="s",
    )


async def on_ticket(event: TicketCreated, deps: Deps) -> Sequence[Event]:
    deps.seen.append(event)
    return [
        NotificationSent(
            tenant_id=event.tenant_id, call_sid=event.call_sid, issue_key=event.issue_key, message_sid="SM1"
        )
    ]


async def on_analyzed(event: CallAnalyzed, deps: Deps) -> Sequence[Event]:
    deps.seen.append(event)
    return []


async def test_the_dispatcher_calls_the_handler_of_the_events_exact_class(analyzed: CallAnalyzed) -> None:
    deps = Deps()
    dispatch = Dispatcher([on(TicketCreated, on_ticket), on(CallAnalyzed, on_analyzed)], deps)
    [sent] = await dispatch(ticket(analyzed))
    assert await dispatch(analyzed) == []
    assert isinstance(sent, NotificationSent)
    assert [type(e) for e in deps.seen] == [TicketCreated, CallAnalyzed]


async def test_an_event_without_a_route_fails_permanently(analyzed: CallAnalyzed) -> None:
    dispatch = Dispatcher([on(TicketCreated, on_ticket)], Deps())
    with pytest.raises(PermanentError, match="no handler for CallAnalyzed"):
        await dispatch(analyzed)


def test_two_routes_for_one_class_are_refused() -> None:
    with pytest.raises(ValueError, match="two routes"):
        Dispatcher([on(TicketCreated, on_ticket), on(TicketCreated, on_ticket)], Deps())


async def test_the_runner_serves_a_description_on_the_bus_and_closes_its_adapters(
    tmp_path: Path, analyzed: CallAnalyzed
) -> None:
    deps = Deps()
    configs: list[RuntimeConfig[NotifierView]] = []

    @asynccontextmanager
    async def adapters(_: ServiceSettings, config: RuntimeConfig[NotifierView]) -> AsyncIterator[Deps]:
        configs.append(config)
        try:
            yield deps
        finally:
            deps.closed = True

    service = ConsumerService(
        "contract-test",
        ServiceSettings,
        NotifierView,
        [on(TicketCreated, on_ticket, produces=[NotificationSent])],
        adapters,
        RetryPolicy(max_attempts=1),
    )
    assert service.group == "voiceticket-contract-test"
    assert (service.consumes, service.produces) == ([TicketCreated], [NotificationSent])

    bus = EmbeddedEventBus(tmp_path / "bus.db", source="contract-test", poll_interval=0.02)
    await bus.start()
    try:
        settings = ServiceSettings(config_api_token=SecretStr("t"))
        async with consuming(service, settings, bus) as task:
            await bus.publish(ticket(analyzed))
            for _ in range(250):
                if any(
                    topic == NotificationSent.topic() for topic, _ in await bus.history(analyzed.call_sid)
                ):
                    break
                await asyncio.sleep(0.02)
            assert not task.done()
        assert deps.closed, "the adapters close when the runner stops"
        assert [type(e) for e in deps.seen] == [TicketCreated]
        topics = [topic for topic, _ in await bus.history(analyzed.call_sid)]
        assert topics == [TicketCreated.topic(), NotificationSent.topic()], "the outcome was published"
        assert len(configs) == 1
    finally:
        await bus.stop()


def test_every_consumer_service_keeps_its_consumer_group() -> None:
    """Consumer groups hold committed positions and name dead-letter topics: renaming one
    would re-read or strand records, so the derived names must stay what they were."""

    from voiceticket_analyzer.bootstrap import SERVICE as ANALYZER
    from voiceticket_jira_writer.bootstrap import SERVICE as JIRA_WRITER
    from voiceticket_notifier.bootstrap import SERVICE as NOTIFIER
    from voiceticket_transcriber.bootstrap import SERVICE as TRANSCRIBER

    groups = {s.name: s.group for s in (TRANSCRIBER, ANALYZER, JIRA_WRITER, NOTIFIER)}
    assert groups == {
        "transcriber": "voiceticket-transcriber",
        "analyzer": "voiceticket-analyzer",
        "jira-writer": "voiceticket-jira-writer",
        "notifier": "voiceticket-notifier",
    }
    for service in (TRANSCRIBER, ANALYZER, JIRA_WRITER, NOTIFIER):
        assert service.view.role == service.name, "config-api serves the view of the service's role"
