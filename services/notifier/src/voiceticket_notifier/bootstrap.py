"""The notifier composed: tickets in, one SMS per call out, over the SMS ledger and Twilio's
Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from voiceticket_common.bus import Route
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.db import open_engine
from voiceticket_common.events import (
    NotificationFailed,
    NotificationSent,
    RequestStatusChanged,
    SmsAnswered,
    SmsReceived,
    SmsReplyCommented,
    SmsReplyRouted,
    StatusTextSent,
    TicketCreated,
)
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on, vault_keys

from .adapters import TwilioSmsSender
from .conversations import SqlConversations
from .handlers import CALLER_HASH_PURPOSE, NotifierDeps, notify_caller
from .ledger import SqlSmsLedger
from .replies import answer_closed_request, answer_sms, text_status
from .settings import NotifierSettings
from .status_callback import MessageStatusCallback


@asynccontextmanager
async def adapters(
    settings: NotifierSettings, config: RuntimeConfig[NotifierView]
) -> AsyncIterator[NotifierDeps]:
    """The SMS ledger and Twilio's Messages API, closed when the service stops."""
    sender = TwilioSmsSender(
        settings.egress_allowed_hosts, settings.twilio_api_base_url, settings.twilio_timeout_seconds
    )
    receipts = settings.public_base_url  # ingress turns delivery receipts into events when it is known
    async with open_engine(settings.database_url) as engine, sender, vault_keys(settings) as keys:
        yield NotifierDeps(
            config=config,
            sender=sender,
            ledger=await SqlSmsLedger.with_schema(
                engine, lease=timedelta(seconds=settings.sms_lease_seconds)
            ),
            hasher=CallerHasher(settings.callback_context_key, CALLER_HASH_PURPOSE),
            status_callback=MessageStatusCallback(receipts, settings.callback_context_key)
            if receipts
            else None,
            max_segments=settings.sms_max_segments,
            opt_out_recheck=timedelta(days=settings.opt_out_recheck_days),
            conversations=await SqlConversations.with_schema(engine),
            keys=keys,
        )


async def purge(
    settings: NotifierSettings, deps: NotifierDeps, now: datetime, dry_run: bool
) -> dict[str, int]:
    """Old message rows and opt-out hashes past the recheck window go."""
    ledger = deps.ledger
    if not isinstance(ledger, SqlSmsLedger):
        raise TypeError("the notifier's purge needs its SQL ledger")
    counts = await ledger.purge(
        timedelta(days=settings.message_retention_days),
        timedelta(days=settings.opt_out_recheck_days),
        now=now,
        dry_run=dry_run,
    )
    if deps.conversations is not None:
        counts["conversations"] = await deps.conversations.purge(
            timedelta(days=settings.message_retention_days), now=now, dry_run=dry_run
        )
    return counts


ROUTES: list[Route[Any, NotifierDeps]] = [
    on(TicketCreated, notify_caller, produces=[NotificationSent, NotificationFailed]),
    on(SmsReceived, answer_sms, produces=[SmsAnswered, SmsReplyRouted]),
    on(SmsReplyCommented, answer_closed_request, produces=[SmsAnswered]),
    on(RequestStatusChanged, text_status, produces=[StatusTextSent]),
]
SERVICE = ConsumerService("notifier", NotifierSettings, NotifierView, ROUTES, adapters, purge=purge)
