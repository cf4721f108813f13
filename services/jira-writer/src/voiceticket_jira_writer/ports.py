"""The jira-writer's outside world: a JSM site, Twilio's recording media, and the ledger that makes
writes happen once."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal, Protocol

from pydantic import SecretStr

from voiceticket_common.twilio import TwilioAccount

# Re-exported: what the recording source raises is part of this port.
from voiceticket_common.twilio_media import RecordingGone as RecordingGone
from voiceticket_common.twilio_media import RecordingTooLarge as RecordingTooLarge

JiraAuth = Literal["basic", "oauth2"]


@dataclass(frozen=True)
class JiraSite:
    """Where and as whom jira-writer calls Jira.

    ``basic``: ``base_url`` is the site (``https://<site>.atlassian.net``), ``email`` and ``token``
    the bot account's address and API token. ``oauth2``: ``token`` is an OAuth 2.0 access token and
    ``base_url`` is ``https://api.atlassian.com/ex/jira/<cloudId>``; ``email`` is unused.
    ``tenant_id`` and ``concurrency`` bound the requests in flight to it (the tenant's
    ``provider_concurrency.jira``; None: unlimited).
    """

    base_url: str
    email: str
    token: SecretStr
    auth: JiraAuth = "basic"
    tenant_id: str = ""
    concurrency: int | None = None


@dataclass(frozen=True)
class FieldValue:
    """One of a field's valid or default values: ``value`` is what Jira stores (an id), ``label`` its name."""

    value: str
    label: str = ""
    children: tuple[FieldValue, ...] = ()


@dataclass(frozen=True)
class RequestTypeField:
    """One field of a request type, as ``GET .../requesttype/{id}/field`` describes it."""

    field_id: str
    name: str
    required: bool = False
    visible: bool = True
    valid_values: tuple[FieldValue, ...] = ()
    default_values: tuple[FieldValue, ...] = ()
    schema_type: str = "string"
    schema_items: str | None = None


@dataclass(frozen=True)
class RequestTypeFields:
    """What a request type takes when a request is created, and whether we may raise on behalf."""

    fields: tuple[RequestTypeField, ...]
    can_raise_on_behalf_of: bool = False

    def get(self, field_id: str) -> RequestTypeField | None:
        return next((f for f in self.fields if f.field_id == field_id), None)


@dataclass(frozen=True)
class Customer:
    """A customer of a service desk (personal data: never logged)."""

    account_id: str
    email: str | None
    active: bool = True


@dataclass(frozen=True)
class RequestDraft:
    service_desk_id: str
    request_type_id: str
    fields: dict[str, Any]
    raise_on_behalf_of: str | None = None


@dataclass(frozen=True)
class CreatedRequest:
    issue_id: str
    issue_key: str


@dataclass(frozen=True)
class RequestStatus:
    """What Jira says of a request now: its summary, and whether its status category is done."""

    issue_id: str
    issue_key: str
    summary: str
    done: bool


@dataclass(frozen=True)
class CallerRequest:
    """A request jira-writer created for a caller (the caller known only by a keyed hash)."""

    issue_key: str
    issue_id: str
    call_sid: str
    created_at: datetime


@dataclass(frozen=True)
class Upload:
    """A file to attach, read from ``file`` (positioned at its start)."""

    filename: str
    content_type: str
    file: IO[bytes]
    size: int


class ServiceDesk(Protocol):
    async def request_type_fields(
        self, site: JiraSite, service_desk_id: str, request_type_id: str
    ) -> RequestTypeFields:
        """The request type's field list (``GET .../requesttype/{id}/field``)."""

    async def find_customers(self, site: JiraSite, service_desk_id: str, query: str) -> Sequence[Customer]:
        """The desk's customers whose name or email contains ``query``."""

    async def create_request(self, site: JiraSite, draft: RequestDraft) -> CreatedRequest: ...

    async def set_issue_property(
        self, site: JiraSite, issue_key: str, key: str, value: dict[str, Any]
    ) -> None: ...

    async def add_internal_comment(self, site: JiraSite, issue_key: str, body: str) -> None: ...

    async def has_comment_containing(self, site: JiraSite, issue_key: str, marker: str) -> bool:
        """Whether an internal comment with ``marker`` exists (an interrupted attempt's comment)."""

    async def request_status(self, site: JiraSite, issue_key: str) -> RequestStatus | None:
        """The request's summary and status category (``GET .../request/{key}``); None when it is
        gone (deleted, moved, or no longer visible to the bot account)."""

    async def find_request_for_call(self, site: JiraSite, call_sid: str) -> CreatedRequest | None:
        """The request an earlier, interrupted attempt created for this call, if any.

        By search, so a request created in the last seconds may not be found yet (the index lags):
        the ledger's ``create_settles_at`` says how long to keep looking before creating again."""

    async def attachment_names(self, site: JiraSite, issue_key: str) -> set[str]:
        """File names of the request's attachments (to find an interrupted attempt's upload)."""

    async def attach_internal(
        self, site: JiraSite, service_desk_id: str, issue_key: str, upload: Upload
    ) -> None:
        """attachTemporaryFile, then attach it to the request as an internal (non-public) comment."""


class RecordingSource(Protocol):
    def download(
        self, account: TwilioAccount, recording_sid: str, filename: str
    ) -> AbstractAsyncContextManager[Upload]:
        """The recording as a WAV file named ``filename``, on local disk while the context is open.

        Raises ``RecordingTooLarge`` (over the attachment size limit) or ``RecordingGone``;
        transport failures, cut downloads and 5xx/429 raise ``TransientError``.
        """


@dataclass
class LedgerEntry:
    """The call's ledger row as this attempt holds it, under its lease."""

    tenant_id: str
    call_sid: str
    fresh: bool
    """True when this attempt made the claim; False when an earlier attempt had claimed it."""
    issue_key: str | None = None
    issue_id: str | None = None
    property_set: bool = False
    comment_added: bool = False
    attachment_added: bool = False
    repeat_decision: str | None = None
    """The repeat-caller decision, once taken: ``new`` (a request is created) or ``existing`` (the
    call goes onto ``issue_key``, the caller's open request); None: not taken (or the line is off)."""
    token: int = 0
    """The lease's fencing token: every write of this attempt is conditional on it."""
    lease_until: datetime | None = None
    create_settles_at: datetime | None = None
    """An earlier create's outcome is not recorded: its request, if any, is searchable from then."""
    create_started: bool = False
    """This attempt started a create (so a failure releases with the index's lag from now)."""
    create_outcome_unknown: bool = False
    """This attempt's create got no answer (a timeout, or the attempt was cancelled while it was
    in flight): Jira may still make the request, so its settle time stays the lease's end plus the
    index lag (``release`` does not shorten it)."""


class RequestLedger(Protocol):
    def now(self) -> datetime:
        """The ledger's clock (UTC), the one leases and ``create_settles_at`` are measured on."""

    async def claim(self, tenant_id: str, call_sid: str) -> LedgerEntry:
        """Claim the call's row, or take over its expired or released lease with a new fencing
        token; ``LeaseBusy`` (a TransientError with Retry-After) while another attempt holds it."""

    async def begin_create(self, entry: LedgerEntry) -> datetime:
        """Renew the lease and note that a create starts; returns the lease's end, which the
        create must not outlast."""

    async def record_created(self, entry: LedgerEntry, request: CreatedRequest) -> None: ...

    async def renew(self, entry: LedgerEntry) -> None:
        """Extend the lease before a write to Jira; ``LeaseLost`` if another attempt took it."""

    async def mark(
        self,
        entry: LedgerEntry,
        *,
        property_set: bool = False,
        comment_added: bool = False,
        attachment_added: bool = False,
    ) -> None:
        """Record a step as done. Every write is fenced: ``LeaseLost`` if the lease was taken over."""

    async def release(self, entry: LedgerEntry) -> None:
        """Give the lease back (after the last step, or a failure), so a retry need not wait it out."""


class CallerIndex(Protocol):
    """Which requests jira-writer created for a caller: (tenant, keyed hash of the number) ->
    request key and when, one row per call that made a request. Never the number."""

    def now(self) -> datetime: ...

    async def recent_requests(
        self, tenant_id: str, caller_hash: str, since: datetime
    ) -> Sequence[CallerRequest]:
        """The caller's requests created at or after ``since``, most recent first."""

    async def remember_request(self, entry: LedgerEntry, caller_hash: str, request: CreatedRequest) -> None:
        """Note that the call's request was created for this caller (idempotent)."""

    async def forget_call(self, tenant_id: str, call_sid: str) -> None:
        """Drop the call's row (its data was erased)."""

    async def decide_repeat(self, entry: LedgerEntry, existing: CreatedRequest | None) -> None:
        """Record the decision (fenced): ``existing`` onto that request, or a new one (None)."""


class ErasedCalls(Protocol):
    async def erased(self, tenant_id: str, call_sid: str) -> bool:
        """Whether the call's data key was destroyed (a caller's erasure, the tenant's removal)."""


@dataclass(frozen=True)
class RecordingState:
    """The call's recording-retention step in the ledger."""

    scheduled: bool
    deleted: bool


@dataclass(frozen=True)
class DueRecording:
    """A recording whose deletion at Twilio is due (the purge's work list)."""

    tenant_id: str
    call_sid: str
    line_number: str
    recording_sid: str


class RecordingDeleter(Protocol):
    async def delete(self, account: TwilioAccount, recording_sid: str) -> bool:
        """Delete the recording at Twilio: True when deleted now, False when it was already gone
        (404 counts as done); TransientError on 429/5xx and transport failures."""


class RecordingRetentionLedger(Protocol):
    def now(self) -> datetime: ...

    async def recording_state(self, entry: LedgerEntry) -> RecordingState: ...

    async def schedule_recording_deletion(
        self, entry: LedgerEntry, recording_sid: str, line_number: str, delete_at: datetime
    ) -> None:
        """Record which recording goes and when (fenced, like every step)."""

    async def mark_recording_deleted(self, entry: LedgerEntry) -> None: ...
