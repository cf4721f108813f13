"""jira-writer composed: analyses and missed calls in, JSM requests out, over the request ledger,
the JSM REST client and recording downloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from voiceticket_common.bus import Route
from voiceticket_common.db import open_engine
from voiceticket_common.events import CallAnalyzed, RecordingAbsent, TicketCreated
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on
from voiceticket_common.twilio_media import TwilioMediaClient

from .adapters import JsmServiceDesk
from .field_cache import RequestTypeFieldCache
from .handlers import JiraWriterDeps, write_missed_call, write_request
from .ledger import SqlRequestLedger
from .recordings import TwilioRecordingDownloads
from .settings import JiraWriterSettings


@asynccontextmanager
async def adapters(
    settings: JiraWriterSettings, config: RuntimeConfig[JiraWriterView]
) -> AsyncIterator[JiraWriterDeps]:
    """The request ledger, the JSM client and recording downloads, closed when the service stops."""
    desk = JsmServiceDesk(settings.egress_allowed_hosts, settings.jira_timeout_seconds)
    media = TwilioMediaClient(
        settings.twilio_api_base_url,
        settings.egress_allowed_hosts,
        settings.max_attachment_bytes,
        settings.recording_download_timeout_seconds,
    )
    async with open_engine(settings.database_url) as engine, desk, media:
        yield JiraWriterDeps(
            config=config,
            desk=desk,
            ledger=await SqlRequestLedger.with_schema(engine),
            recordings=TwilioRecordingDownloads(media),
            max_comment_chars=settings.max_comment_chars,
            fields=RequestTypeFieldCache(desk, settings.request_type_fields_cache_seconds),
        )


ROUTES: list[Route[Any, JiraWriterDeps]] = [
    on(CallAnalyzed, write_request, produces=[TicketCreated]),
    on(RecordingAbsent, write_missed_call, produces=[TicketCreated]),
]
SERVICE = ConsumerService("jira-writer", JiraWriterSettings, JiraWriterView, ROUTES, adapters)
