"""The notifier composed: tickets in, one SMS per call out, over the SMS ledger and Twilio's
Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from voiceticket_common.db import open_engine
from voiceticket_common.events import NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on

from .adapters import TwilioSmsSender
from .caller_hash import CallerHasher
from .handlers import NotifierDeps, notify_caller
from .ledger import SqlSmsLedger
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
    async with open_engine(settings.database_url) as engine, sender:
        yield NotifierDeps(
            config=config,
            sender=sender,
            ledger=await SqlSmsLedger.with_schema(engine),
            hasher=CallerHasher(settings.callback_context_key),
            status_callback=MessageStatusCallback(receipts, settings.callback_context_key)
            if receipts
            else None,
            max_segments=settings.sms_max_segments,
            opt_out_recheck=timedelta(days=settings.opt_out_recheck_days),
        )


ROUTES = [on(TicketCreated, notify_caller, produces=[NotificationSent, NotificationFailed])]
SERVICE = ConsumerService("notifier", NotifierSettings, NotifierView, ROUTES, adapters)
