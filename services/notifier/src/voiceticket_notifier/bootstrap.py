"""Composition root: what the service consumes and produces, and its adapters built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from voiceticket_common.bus import Handler
from voiceticket_common.config_client import RuntimeConfigClient
from voiceticket_common.db import create_engine
from voiceticket_common.events import NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.service import ConsumerSpec

from .adapters import TwilioSmsSender
from .caller_hash import CallerHasher
from .handlers import NotifierDeps, notify_caller
from .ledger import SqlSmsLedger
from .settings import NotifierSettings
from .status_callback import MessageStatusCallback

SPEC = ConsumerSpec(
    name="notifier",
    group="voiceticket-notifier",
    consumes=[TicketCreated],
    produces=[NotificationSent, NotificationFailed],
)


def handler_factory(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def build(_bus: object) -> AsyncIterator[Handler]:
        engine = create_engine(settings.database_url)
        ledger = SqlSmsLedger(engine)
        await ledger.create_schema()
        sender = TwilioSmsSender(
            settings.egress_allowed_hosts, settings.twilio_api_base_url, settings.twilio_timeout_seconds
        )
        config = RuntimeConfigClient(
            settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
        )
        deps = NotifierDeps(
            config=config,
            sender=sender,
            ledger=ledger,
            hasher=CallerHasher(settings.callback_context_key),
            status_callback=(
                MessageStatusCallback(settings.public_base_url, settings.callback_context_key)
                if settings.public_base_url
                else None
            ),
            max_segments=settings.sms_max_segments,
            opt_out_recheck=timedelta(days=settings.opt_out_recheck_days),
        )
        try:
            yield partial(notify_caller, deps=deps)
        finally:
            await config.aclose()
            await sender.aclose()
            await engine.dispose()

    return build
