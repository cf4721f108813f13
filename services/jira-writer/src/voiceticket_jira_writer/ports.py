"""The jira-writer's outside world: a JSM site, and the ledger that makes writes happen once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr


@dataclass(frozen=True)
class JiraSite:
    base_url: str
    email: str
    api_token: SecretStr


@dataclass(frozen=True)
class RequestDraft:
    service_desk_id: str
    request_type_id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class CreatedRequest:
    issue_id: str
    issue_key: str


class ServiceDesk(Protocol):
    async def create_request(self, site: JiraSite, draft: RequestDraft) -> CreatedRequest: ...

    async def set_issue_property(
        self, site: JiraSite, issue_key: str, key: str, value: dict[str, Any]
    ) -> None: ...

    async def add_internal_comment(self, site: JiraSite, issue_key: str, body: str) -> None: ...

    async def has_comment_containing(self, site: JiraSite, issue_key: str, marker: str) -> bool:
        """Whether an internal comment with ``marker`` exists (an interrupted attempt's comment)."""

    async def find_request_for_call(self, site: JiraSite, call_sid: str) -> CreatedRequest | None:
        """The request an earlier, interrupted attempt created for this call, if any."""


@dataclass
class LedgerEntry:
    tenant_id: str
    call_sid: str
    fresh: bool
    """True when this attempt made the claim; False when an earlier attempt had claimed it."""
    issue_key: str | None = None
    issue_id: str | None = None
    property_set: bool = False
    comment_added: bool = False


class RequestLedger(Protocol):
    async def claim(self, tenant_id: str, call_sid: str) -> LedgerEntry: ...

    async def record_created(self, entry: LedgerEntry, request: CreatedRequest) -> None: ...

    async def mark(
        self, entry: LedgerEntry, *, property_set: bool = False, comment_added: bool = False
    ) -> None: ...
