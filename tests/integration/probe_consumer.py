"""A consumer service for ``test_probes.py``, run as its own process as a real one is
(``python probe_consumer.py``, settings from the environment): its handler never returns, so a
record it takes stays in flight and nothing finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from voiceticket_common.events import Event, TicketCreated
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.service import ConsumerService, RuntimeConfig, main, on
from voiceticket_common.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/probe-test.db"


@asynccontextmanager
async def adapters(settings: ProbeSettings, config: RuntimeConfig[NotifierView]) -> AsyncIterator[None]:
    yield None


async def block_forever(event: TicketCreated, deps: None) -> Sequence[Event]:
    await asyncio.Event().wait()
    return []


SERVICE = ConsumerService(
    "probe-test", ProbeSettings, NotifierView, [on(TicketCreated, block_forever)], adapters
)

if __name__ == "__main__":
    main(SERVICE, [])
