"""In-memory state shared by the three stand-ins when they run in one process.

Everything is touched from the event loop only (request validation runs in worker threads but reads
no state), so no locks are needed.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MAX_RECORDS = 10_000


@dataclass
class Fault:
    """A canned response served instead of normal handling to matching requests."""

    service: str
    method: str
    path_regex: str
    status: int | None
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    times: int | None = 1  # None: until the faults are deleted
    reset: bool = False
    """Answer nothing: close the connection with a TCP reset (RST) after the delay, as a provider's
    load balancer dropping a connection does; the client sees 'connection reset by peer'."""
    served: int = 0
    in_flight: int = 0
    """Requests this fault took that are still being answered (its delay, then the handler)."""
    peak_in_flight: int = 0
    """The most at once so far: with a delay per provider stage, how many calls the product made
    to that provider concurrently (the benchmark checks per-provider limits with it)."""

    def matches(self, service: str, method: str, path: str) -> bool:
        if service != self.service or (self.times is not None and self.served >= self.times):
            return False
        if self.method not in ("*", "") and self.method.upper() != method.upper():
            return False
        return re.search(self.path_regex, path) is not None

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path_regex": self.path_regex,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay_seconds": self.delay_seconds,
            "times": self.times,
            "reset": self.reset,
            "served": self.served,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
        }


@dataclass
class StoredRecording:
    """A recording the Twilio stand-in serves, with the transcript that travels with it."""

    account_sid: str
    recording_sid: str
    audio: bytes
    content_type: str
    call_sid: str | None
    duration: int
    created: float


@dataclass
class MediaFaults:
    """How recording media misbehaves: 404 while a recording is young or for its first requests
    (Twilio right after the callback), and cut (``cut``: the connection drops mid-body) or
    truncated (``short``: a consistent but incomplete body) downloads."""

    unavailable_seconds: float = 0.0
    unavailable_requests: int = 0
    partial: str | None = None  # None | "cut" | "short"
    partial_times: int | None = 1  # None: every download
    partial_served: int = 0


@dataclass
class DeliveryOutcome:
    """What the StatusCallback of each sent message reports, in order."""

    statuses: list[str] = field(default_factory=lambda: ["sent", "delivered"])
    error_code: int | None = None


@dataclass
class TwilioState:
    """Accounts, recordings, opted-out numbers and sent messages."""

    accounts: dict[str, str] = field(default_factory=dict)  # AccountSid -> AuthToken
    recordings: dict[tuple[str, str], StoredRecording] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    media_faults: MediaFaults = field(default_factory=MediaFaults)
    media_requests: dict[str, int] = field(default_factory=dict)  # RecordingSid -> media GETs seen
    delivery: DeliveryOutcome = field(default_factory=DeliveryOutcome)


@dataclass
class OpenAIState:
    """Reference transcripts by audio sha256, accepted API keys (empty: any key), and behaviour
    knobs (see ``openai.py``: ``PUT /_sandbox/behaviour``)."""

    transcripts: dict[str, str] = field(default_factory=dict)
    api_keys: set[str] = field(default_factory=set)
    unknown_audio_text: str = ""
    """What audio with no registered transcript is answered with: "" (as for silence), or a
    phantom phrase such as "Thank you for watching." to play a Whisper-style model on silence."""
    chat_mode: str = "keyword"
    """"keyword": the schema-filling stand-in; "gullible": obeys instructions in the transcript."""


@dataclass
class RequestType:
    """A JSM request type and its fields."""

    id: str
    name: str
    fields: list[dict[str, Any]]
    can_raise_on_behalf_of: bool = True


@dataclass
class ServiceDesk:
    """A JSM service desk: its project key and request types."""

    id: str
    project_key: str
    request_types: dict[str, RequestType]
    customers: list[dict[str, Any]] = field(default_factory=list)  # JSM UserDTO fields


@dataclass
class Issue:
    """A customer request as the Jira stand-in stores it."""

    id: str
    key: str
    service_desk_id: str
    request_type_id: str
    request_field_values: dict[str, Any]
    created: float
    raise_on_behalf_of: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    indexed_at: float | None = 0.0
    """When search starts to find it (``SearchIndex``); None: not until the index is resumed."""
    status: str = "Waiting for support"
    status_category: str = "NEW"
    """JSM's ``statusCategory`` of ``status``: ``NEW``, ``INDETERMINATE`` or ``DONE`` (a test moves it)."""


@dataclass
class SearchIndex:
    """How Jira's search index lags writes: new issues are found ``lag_seconds`` after their
    creation, or, while ``paused``, not until it is resumed (deterministic tests)."""

    lag_seconds: float = 0.0
    paused: bool = False


@dataclass
class JiraState:
    """Credentials, service desks, issues and uploaded temporary attachments."""

    credentials: dict[str, str] = field(default_factory=dict)  # email -> API token
    service_desks: dict[str, ServiceDesk] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)  # by issue id
    temporary_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    oauth_tokens: dict[str, str] = field(default_factory=dict)  # OAuth access token -> cloud id
    max_attachment_bytes: int | None = None  # the site's attachment size limit; None: no limit
    search_index: SearchIndex = field(default_factory=SearchIndex)
    next_issue_id: int = 10000
    next_issue_number: dict[str, int] = field(default_factory=dict)
    next_comment_id: int = 1000

    def find_issue(self, id_or_key: str) -> Issue | None:
        if id_or_key in self.issues:
            return self.issues[id_or_key]
        return next((i for i in self.issues.values() if i.key == id_or_key.upper()), None)


@dataclass
class SandboxState:
    """What the sandboxes were configured with, what they hold and what they received."""

    records: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_RECORDS))
    faults: list[Fault] = field(default_factory=list)
    twilio: TwilioState = field(default_factory=TwilioState)
    openai: OpenAIState = field(default_factory=OpenAIState)
    jira: JiraState = field(default_factory=JiraState)
    validate_requests: bool = True
    """False: skip the OpenAPI validation (a benchmark measuring the product, not the stand-ins;
    the tests keep it on, which is what proves the requests right)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_record_id(self) -> int:
        return next(self._ids)

    def records_of(self, service: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["service"] == service]

    def clear_records(self, service: str) -> None:
        kept = [r for r in self.records if r["service"] != service]
        self.records.clear()
        self.records.extend(kept)

    def take_fault(self, service: str, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(service, method, path):
                fault.served += 1
                return fault
        return None
