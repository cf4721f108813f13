"""jira-writer composed: analyses and missed calls in, JSM requests out, over the request ledger,
the JSM REST client and recording downloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

from voiceticket_common.bus import Route
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.db import open_engine
from voiceticket_common.events import (
    CallAnalyzed,
    ConsentDeclined,
    RecordingAbsent,
    SmsReplyCommented,
    SmsReplyRouted,
    TicketCreated,
)
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.sealing import VaultCallKeys
from voiceticket_common.service import ConsumerService, RuntimeConfig, on
from voiceticket_common.twilio_media import TwilioMediaClient

from .adapters import JsmServiceDesk
from .declined_call import write_declined_call
from .deps import RecordingRetention
from .embedding_matcher import EmbeddingMatcher
from .field_cache import RequestTypeFieldCache
from .handlers import JiraWriterDeps, write_missed_call, write_request
from .ledger import SqlRequestLedger
from .recording_retention import delete_due_recordings
from .recordings import TwilioRecordingDownloads
from .repeat_callers import CALLER_HASH_PURPOSE, RepeatCallers, default_matchers
from .repeat_matcher import LexicalMatcher
from .settings import JiraWriterSettings
from .sms_replies import SqlSmsReplies, comment_reply


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
    # Asked whether an earlier call of a repeat caller was erased (its data key destroyed).
    vault = VaultCallKeys(settings.config_api_url, settings.config_api_token)
    async with open_engine(settings.database_url) as engine, desk, media, _closing(vault):
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
            repeat=RepeatCallers(
                ledger,
                CallerHasher(caller_hash_key(settings), CALLER_HASH_PURPOSE),
                vault,
                default_matchers(
                    LexicalMatcher(settings.repeat_match_threshold),
                    EmbeddingMatcher(settings.repeat_embedding_threshold),
                ),
            ),
            sms_replies=await SqlSmsReplies.with_schema(engine),
        )


def caller_hash_key(settings: JiraWriterSettings) -> SecretStr:
    return settings.caller_hash_key or settings.config_api_token


@asynccontextmanager
async def _closing(vault: VaultCallKeys) -> AsyncIterator[VaultCallKeys]:
    try:
        yield vault
    finally:
        await vault.aclose()


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
    keep = timedelta(days=settings.request_retention_days)
    requests = await ledger.purge(keep, now=now, dry_run=dry_run)
    callers = await ledger.purge_callers(keep, now=now, dry_run=dry_run)
    counts = {"requests": requests, "callers": callers, "recordings_due": recordings.due}
    if deps.sms_replies is not None:
        counts["sms_replies"] = await deps.sms_replies.purge(keep, now=now, dry_run=dry_run)
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
    on(SmsReplyRouted, comment_reply, produces=[SmsReplyCommented]),
]
SERVICE = ConsumerService("jira-writer", JiraWriterSettings, JiraWriterView, ROUTES, adapters, purge=purge)
