"""The notifier's outside world: an SMS gateway and the ledger that keeps it to one SMS per call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr


@dataclass(frozen=True)
class SmsAccount:
    account_sid: str
    auth_token: SecretStr


@dataclass(frozen=True)
class Sms:
    to: str
    sender: str
    body: str


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
    async def send(self, account: SmsAccount, sms: Sms) -> SmsReceipt: ...


class SmsLedger(Protocol):
    async def claim(self, tenant_id: str, call_sid: str) -> bool:
        """True when this attempt may send; False when a send was already attempted or done."""

    async def release(self, tenant_id: str, call_sid: str) -> None:
        """Give the claim back after a failure that certainly sent nothing (so a retry may send)."""

    async def complete(
        self, tenant_id: str, call_sid: str, outcome: str, message_sid: str | None
    ) -> None: ...
