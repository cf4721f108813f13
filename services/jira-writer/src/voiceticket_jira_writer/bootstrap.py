"""Composition root: what the service consumes and produces, and its adapters built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from voiceticket_common.bus import Handler
from voiceticket_common.config_client import RuntimeConfigClient
from voiceticket_common.db import create_engine
from voiceticket_common.events import CallAnalyzed, RecordingAbsent, TicketCreated
from voiceticket_common.service import ConsumerSpec

from .adapters import JsmServiceDesk
from .field_cache import RequestTypeFieldCache
from .handlers import JiraWriterDeps, handle
from .ledger import SqlRequestLedger
from .recordings import TwilioRecordingDownloads
from .settings import JiraWriterSettings

SPEC = ConsumerSpec(
    name="jira-writer",
    group="voiceticket-jira-writer",
    consumes=[CallAnalyzed, RecordingAbsent],
    produces=[TicketCreated],
)


def handler_factory(settings: JiraWriterSettings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def build(_bus: object) -> AsyncIterator[Handler]:
        engine = create_engine(settings.database_url)
        ledger = SqlRequestLedger(engine)
        await ledger.create_schema()
        desk = JsmServiceDesk(settings.egress_allowed_hosts, settings.jira_timeout_seconds)
        recordings = TwilioRecordingDownloads(
            settings.twilio_api_base_url,
            settings.egress_allowed_hosts,
            settings.max_attachment_bytes,
            settings.recording_download_timeout_seconds,
        )
        config = RuntimeConfigClient(
            settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
        )
        deps = JiraWriterDeps(
            config=config,
            desk=desk,
            ledger=ledger,
            recordings=recordings,
            max_comment_chars=settings.max_comment_chars,
            fields=RequestTypeFieldCache(desk, settings.request_type_fields_cache_seconds),
        )
        try:
            yield partial(handle, deps=deps)
        finally:
            await config.aclose()
            await recordings.aclose()
            await desk.aclose()
            await engine.dispose()

    return build
