"""jira-writer composed: analyses and missed calls in, JSM requests out, over the request ledger,
the JSM REST client and recording downloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from voiceticket_common.bus import Route
from voiceticket_common.db import open_engine
from voiceticket_common.events import CallAnalyzed, ConsentDeclined, RecordingAbsent, TicketCreated
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on
from voiceticket_common.twilio_media import TwilioMediaClient

from .adapters import JsmServiceDesk
from .declined_call import write_declined_call
from .deps import RecordingRetention
from .field_cache import RequestTypeFieldCache
from .handlers import JiraWriterDeps, write_missed_call, write_request
from .ledger import SqlRequestLedger
from .recording_retention import delete_due_recordings
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
        ledger = await SqlRequestLedger.with_schema(
            engine,
            lease=timedelta(seconds=settings.request_lease_seconds),
            search_index_lag=timedelta(seconds=settings.search_index_lag_seconds),
        )
        recordings = TwilioRecordingDownloads(media)
        yield JiraWriterDeps(
            config=config,
            desk=desk,
            ledger=ledger,
            recordings=recordings,
            max_comment_chars=settings.max_comment_chars,
            fields=RequestTypeFieldCache(desk, settings.request_type_fields_cache_seconds),
            recording_retention=RecordingRetention(ledger, recordings),
        )


async def purge(
    settings: JiraWriterSettings, deps: JiraWriterDeps, now: datetime, dry_run: bool
) -> dict[str, int]:
    """Recordings whose retention ended are deleted at Twilio, then ledger rows past
    ``request_retention_days`` go (a row waiting for its recording's deletion stays)."""
    ledger = deps.ledger
    if not isinstance(ledger, SqlRequestLedger):
        raise TypeError("jira-writer's purge needs its SQL request ledger")
    retention = deps.recording_retention
    recordings = await delete_due_recordings(
        ledger, deps.config, retention.deleter if retention else None, now, dry_run=dry_run
    )
    requests = await ledger.purge(timedelta(days=settings.request_retention_days), now=now, dry_run=dry_run)
    counts = {"requests": requests, "recordings_due": recordings.due}
    if not dry_run:
        counts |= {
            "recordings_deleted": recordings.deleted,
            "recordings_already_gone": recordings.already_gone,
            "recordings_failed": recordings.failed,
        }
    return counts


ROUTES: list[Route[Any, JiraWriterDeps]] = [
    on(CallAnalyzed, write_request, produces=[TicketCreated]),
    on(RecordingAbsent, write_missed_call, produces=[TicketCreated]),
    on(ConsentDeclined, write_declined_call, produces=[TicketCreated]),
]
SERVICE = ConsumerService("jira-writer", JiraWriterSettings, JiraWriterView, ROUTES, adapters, purge=purge)
