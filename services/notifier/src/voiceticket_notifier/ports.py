"""The notifier's outside world: an SMS gateway and the ledger that keeps it to one SMS per call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voiceticket_common.twilio import TwilioAccount


@dataclass(frozen=True)
class Sms:
    """One message. Exactly one of ``from_number`` and ``messaging_service_sid`` names the sender
    (with a Messaging Service, Twilio picks the number from its pool)."""

    to: str
    body: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True)
class SmsReceipt:
    message_sid: str
    segments: int | None


class SmsRejected(Exception):
    """The provider refused this message for good (opted out, invalid or landline number)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SmsSender(Protocol):
    async def send(self, account: TwilioAccount, sms: Sms) -> SmsReceipt:
        """Send ``sms``; SmsRejected for refusals no retry can fix, TransientError when nothing was
        sent and a retry may succeed, AmbiguousSend when it may have been sent."""


class SmsLedger(Protocol):
    async def claim(self, tenant_id: str, call_sid: str) -> bool:
        """True when this attempt may send; False when a send was already attempted or done."""

    async def release(self, tenant_id: str, call_sid: str) -> None:
        """Give the claim back after a failure that certainly sent nothing (so a retry may send)."""

    async def complete(
        self, tenant_id: str, call_sid: str, outcome: str, message_sid: str | None
    ) -> None: ...

    async def opted_out_since(self, tenant_id: str, caller_hash: str) -> datetime | None:
        """When this tenant last learnt the caller opted out of SMS (21610), or None."""

    async def record_opt_out(self, tenant_id: str, caller_hash: str) -> None:
        """Remember that the caller opted out; only a keyed hash of the number is stored."""
