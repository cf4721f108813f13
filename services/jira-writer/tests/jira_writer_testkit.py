"""Fakes and builders for the jira-writer handler tests (the adapter tests use the Jira sandbox)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import SecretStr

from voiceticket_common.bus import Dispatcher, PermanentError, TransientError
from voiceticket_common.events import (
    Analysis,
    CallAnalyzed,
    Entity,
    Event,
    Priority,
    RecordingAbsent,
    Sentiment,
)
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_jira_writer.bootstrap import SERVICE
from voiceticket_jira_writer.deps import JiraWriterDeps
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_jira_writer.ports import (
    CreatedRequest,
    Customer,
    FieldValue,
    JiraSite,
    RecordingTooLarge,
    RequestTypeField,
    RequestTypeFields,
    Upload,
)

LINE = "+15005550006"
CALLER = "+14155550100"
CALL_SID = "CA" + "1" * 32
RECORDING_SID = "RE" + "2" * 32
ACCOUNT_SID = "AC" + "3" * 32
SITE = JiraSite("https://acme.atlassian.net", "bot@acme.test", SecretStr("t"))
PRIORITIES = tuple(
    FieldValue(str(i), name) for i, name in enumerate(["Highest", "High", "Medium", "Low", "Lowest"], 1)
)
BASIC_FIELDS = RequestTypeFields(
    fields=(
        RequestTypeField("summary", "Summary", required=True),
        RequestTypeField("description", "Description"),
    ),
    can_raise_on_behalf_of=True,
)


class Crash(BaseException):
    """The process dies here: nothing after it runs, not even the handler's clean-up."""


class FakeServiceDesk:
    """Records every write; can fail once at a chosen step, like a crash or an outage.

    ``lagging_index``: search finds only the requests ``index()`` has indexed (Jira's lag).
    ``create_gate``: each create waits for it (a slow Jira), after ``create_started`` is set.
    """

    def __init__(
        self,
        fail_on: str | None = None,
        fields: RequestTypeFields = BASIC_FIELDS,
        customers: list[Customer] | None = None,
    ) -> None:
        self.requests: list = []
        self.properties: list = []
        self.comments: list = []
        self.attachments: list[tuple[str, str, bytes]] = []
        self.searches = 0
        self.field_lookups = 0
        self.customer_queries: list[str] = []
        self.fail_on = fail_on
        self.fields = fields
        self.customers = customers or []
        self.create_error: Exception | None = None
        self.lagging_index = False
        self.indexed = 0
        self.create_gate: asyncio.Event | None = None
        self.create_started = asyncio.Event()

    def index(self) -> None:
        """The search index catches up with every request created so far."""
        self.indexed = len(self.requests)

    def _maybe_fail(self, step: str) -> None:
        if self.fail_on == step:
            self.fail_on = None
            raise TransientError(f"{step} failed")

    async def request_type_fields(self, site, desk_id, request_type_id):  # type: ignore[no-untyped-def]
        self.field_lookups += 1
        return self.fields

    async def find_customers(self, site, desk_id, query):  # type: ignore[no-untyped-def]
        self.customer_queries.append(query)
        if self.fail_on == "customers":
            raise PermanentError("jira customer lookup failed with HTTP 403: no permission")
        return [c for c in self.customers if query in (c.email or "")]

    async def create_request(self, site, draft):  # type: ignore[no-untyped-def]
        if self.create_error is not None:
            error, self.create_error = self.create_error, None
            raise error
        self.create_started.set()
        if self.create_gate is not None:
            await self.create_gate.wait()
        self.requests.append(draft)
        self._maybe_fail("after-create")
        if self.fail_on == "crash-after-create":
            self.fail_on = None
            raise Crash("killed after Jira created the request")
        return CreatedRequest(
            issue_id=str(10000 + len(self.requests)), issue_key=f"HELP-{len(self.requests)}"
        )

    async def set_issue_property(self, site, key, prop, value):  # type: ignore[no-untyped-def]
        self._maybe_fail("property")
        self.properties.append((key, prop, value))

    async def add_internal_comment(self, site, key, body):  # type: ignore[no-untyped-def]
        self._maybe_fail("comment")
        self.comments.append((key, body))
        self._maybe_fail("after-comment")

    async def has_comment_containing(self, site, key, marker):  # type: ignore[no-untyped-def]
        return any(k == key and marker in body for k, body in self.comments)

    async def find_request_for_call(self, site, call_sid):  # type: ignore[no-untyped-def]
        self.searches += 1
        searchable = self.requests[: self.indexed] if self.lagging_index else self.requests
        for index, draft in enumerate(searchable, start=1):
            if call_sid in draft.fields.get("description", ""):
                return CreatedRequest(issue_id=str(10000 + index), issue_key=f"HELP-{index}")
        return None

    async def attachment_names(self, site, key):  # type: ignore[no-untyped-def]
        return {name for k, name, _ in self.attachments if k == key}

    async def attach_internal(self, site, desk_id, key, upload):  # type: ignore[no-untyped-def]
        self._maybe_fail("attach")
        self.attachments.append((key, upload.filename, upload.file.read()))
        self._maybe_fail("after-attach")


class FakeRecordings:
    """Serves one recording's bytes; ``too_large`` makes every download refuse."""

    def __init__(self, audio: bytes = b"RIFF....WAVEfmt ", too_large: bool = False) -> None:
        self.audio = audio
        self.too_large = too_large
        self.downloads: list[tuple[str, str]] = []

    @asynccontextmanager
    async def download(self, account, recording_sid, filename) -> AsyncIterator[Upload]:  # type: ignore[no-untyped-def]
        self.downloads.append((account.account_sid, recording_sid))
        if self.too_large:
            raise RecordingTooLarge("recording exceeds 10 bytes")
        yield Upload(filename, "audio/x-wav", io.BytesIO(self.audio), len(self.audio))


def analyzed(**analysis_changes: Any) -> CallAnalyzed:
    analysis = {
        "summary": "VPN down",
        "description": "The VPN is down for the office.",
        "intent": "incident",
        "entities": [Entity(type="account_number", value="12345678")],
        "priority": Priority.HIGH,
        "sentiment": Sentiment.NEGATIVE,
        "language": "en",
        **analysis_changes,
    }
    return CallAnalyzed(
        tenant_id="acme",
        call_sid=CALL_SID,
        line_number=LINE,
        caller_number=CALLER,
        recording_sid=RECORDING_SID,
        duration_seconds=42,
        transcript="The VPN is down. Account 12345678.",
        analysis=Analysis(**analysis),
        model="gpt-4o-mini",
    )


def absent(status: str = "absent", error_code: str | None = "16101") -> RecordingAbsent:
    return RecordingAbsent(
        tenant_id="acme",
        call_sid=CALL_SID,
        line_number=LINE,
        caller_number=CALLER,
        status=status,
        error_code=error_code,
    )


def deps(
    desk: FakeServiceDesk,
    ledger: SqlRequestLedger,
    recordings: FakeRecordings | None = None,
    **line_changes: Any,
) -> JiraWriterDeps:
    line = {
        "service_desk_id": "4",
        "request_type_id": "40",
        "phone_field_id": None,
        "request_types": {"incident": "41"},
        "attach_recording": False,
        "ticket_on_absent_recording": False,
        "language": "en",
        **line_changes,
    }
    tenant = {
        "jira_base_url": "https://acme.atlassian.net",
        "jira_auth": "basic",
        "jira_email": "bot@acme.test",
        "jira_api_token": "t",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": "twilio-token",
    }
    config = StaticRuntimeConfig.of(JiraWriterView, {LINE: ("acme", line, tenant)})
    return JiraWriterDeps(config=config, desk=desk, ledger=ledger, recordings=recordings)


async def handle(event: Event, handler_deps: JiraWriterDeps) -> list[Event]:
    """Deliver ``event`` the way the bus does: through the service's own routes."""

    return list(await Dispatcher(SERVICE.routes, handler_deps)(event))
