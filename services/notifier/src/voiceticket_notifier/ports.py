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

    async def find_sent(
        self, account: TwilioAccount, sms: Sms, marker: str, since: datetime
    ) -> SmsReceipt | None:
        """A message to ``sms.to`` from our sender, created at or after ``since`` (less a margin
        for clock skew), whose body contains ``marker``: an earlier attempt's SMS, or None."""


@dataclass
class SmsClaim:
    """This attempt's hold on the call's SMS, under a lease; ``token`` fences its writes (only
    ``send_in_flight`` changes, as the attempt goes)."""

    tenant_id: str
    call_sid: str
    token: int
    fresh: bool = True
    send_started_at: datetime | None = None
    """An earlier attempt started sending then and recorded no outcome: the SMS may exist."""
    send_in_flight: bool = False
    """This attempt's send request has left and not come back: cancelled now, its SMS may still
    be made at Twilio, so the lease is kept until the send's deadline (not given back)."""


class SmsLedger(Protocol):
    async def claim(self, tenant_id: str, call_sid: str) -> SmsClaim | None:
        """This attempt's claim, or None when the call's SMS is settled (sent, rejected, unknown,
        opted out). Takes over a crashed attempt's expired lease; ``LeaseBusy`` (a TransientError
        with Retry-After) while another attempt's lease is live."""

    def now(self) -> datetime:
        """The ledger's clock (UTC), the one leases are measured on."""

    async def begin_send(self, claim: SmsClaim) -> datetime:
        """Note that the SMS is about to go out and renew the lease; returns the lease's end, which
        the send must not outlast. ``LeaseLost`` if another attempt took the lease over."""

    async def release(self, claim: SmsClaim, *, sent_nothing: bool = False) -> None:
        """Give the lease back after a failure; ``sent_nothing``: the send certainly sent nothing,
        so a retry sends without looking first."""

    async def complete(self, claim: SmsClaim, outcome: str, message_sid: str | None) -> None:
        """Settle the call's SMS (fenced: ``LeaseLost`` if another attempt took the lease over)."""

    async def opted_out_since(self, tenant_id: str, caller_hash: str) -> datetime | None:
        """When this tenant last learnt the caller opted out of SMS (21610), or None."""

    async def record_opt_out(self, tenant_id: str, caller_hash: str) -> None:
        """Remember that the caller opted out; only a keyed hash of the number is stored."""
