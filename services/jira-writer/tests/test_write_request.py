from __future__ import annotations

import json

import pytest

from voiceticket_common.bus import TransientError, envelope_for
from voiceticket_common.db import create_engine
from voiceticket_common.events import Analysis, CallAnalyzed, Entity, Priority, Sentiment, TicketCreated
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_jira_writer.handlers import JiraWriterDeps, write_request
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_jira_writer.ports import CreatedRequest
from voiceticket_jira_writer.request_content import (
    PROPERTY_KEY,
    TRUNCATION_MARKER,
    call_property,
    transcript_comment,
)

LINE = "+15005550006"
CALLER = "+14155550100"


class FakeServiceDesk:
    """Records every write; can fail once at a chosen step, like a crash or an outage."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.requests: list = []
        self.properties: list = []
        self.comments: list = []
        self.searches = 0
        self.fail_on = fail_on

    def _maybe_fail(self, step: str) -> None:
        if self.fail_on == step:
            self.fail_on = None
            raise TransientError(f"{step} failed")

    async def create_request(self, site, draft):  # type: ignore[no-untyped-def]
        self.requests.append(draft)
        self._maybe_fail("after-create")
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
        for index, draft in enumerate(self.requests, start=1):
            if call_sid in draft.fields["description"]:
                return CreatedRequest(issue_id=str(10000 + index), issue_key=f"HELP-{index}")
        return None


def analyzed() -> CallAnalyzed:
    return CallAnalyzed(
        tenant_id="acme",
        call_sid="CA" + "1" * 32,
        line_number=LINE,
        caller_number=CALLER,
        recording_sid="RE" + "2" * 32,
        duration_seconds=42,
        transcript="The VPN is down. Account 12345678.",
        analysis=Analysis(
            summary="VPN down",
            description="The VPN is down for the office.",
            intent="incident",
            entities=[Entity(type="account_number", value="12345678")],
            priority=Priority.HIGH,
            sentiment=Sentiment.NEGATIVE,
            language="en",
        ),
        model="gpt-4o-mini",
    )


@pytest.fixture
async def ledger(tmp_path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    ledger = SqlRequestLedger(engine)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()


def deps(desk: FakeServiceDesk, ledger: SqlRequestLedger, phone_field: str | None = None) -> JiraWriterDeps:
    config = StaticRuntimeConfig(
        {
            LINE: (
                "acme",
                {
                    "service_desk_id": "4",
                    "request_type_id": "40",
                    "phone_field_id": phone_field,
                    "request_types": {"incident": "41"},
                },
                {
                    "jira_base_url": "https://acme.atlassian.net",
                    "jira_email": "bot@acme.test",
                    "jira_api_token": "t",
                },
            )
        }
    )
    return JiraWriterDeps(config=config, desk=desk, ledger=ledger)


async def test_one_request_with_fields_property_and_internal_comment(ledger) -> None:
    desk = FakeServiceDesk()
    [event] = await write_request(envelope_for(analyzed(), "t"), deps(desk, ledger))
    assert isinstance(event, TicketCreated) and event.issue_key == "HELP-1"
    [draft] = desk.requests
    assert (draft.service_desk_id, draft.request_type_id) == ("4", "41")
    assert draft.fields["summary"] == "VPN down"
    assert "account number: 12345678" in draft.fields["description"]
    assert CALLER not in json.dumps(draft.fields), "phone goes to a field only when configured"
    [(key, prop, value)] = desk.properties
    assert (key, prop) == ("HELP-1", PROPERTY_KEY)
    assert value["callSid"] == "CA" + "1" * 32 and value["durationSeconds"] == 42
    assert value["recordingSid"] == "RE" + "2" * 32
    [(ckey, body)] = desk.comments
    assert ckey == "HELP-1" and "The VPN is down. Account 12345678." in body


async def test_phone_number_goes_to_the_configured_custom_field(ledger) -> None:
    desk = FakeServiceDesk()
    await write_request(envelope_for(analyzed(), "t"), deps(desk, ledger, phone_field="customfield_10050"))
    assert desk.requests[0].fields["customfield_10050"] == CALLER


async def test_redelivery_creates_no_second_request(ledger) -> None:
    desk = FakeServiceDesk()
    envelope = envelope_for(analyzed(), "t")
    first = await write_request(envelope, deps(desk, ledger))
    second = await write_request(envelope, deps(desk, ledger))
    assert len(desk.requests) == 1 and len(desk.comments) == 1
    assert [e.model_dump(exclude={"occurred_at"}) for e in first] == [
        e.model_dump(exclude={"occurred_at"}) for e in second
    ]


@pytest.mark.parametrize("step", ["after-create", "property", "comment", "after-comment"])
async def test_crash_at_any_step_then_retry_yields_exactly_one_request(ledger, step) -> None:
    desk = FakeServiceDesk(fail_on=step)
    envelope = envelope_for(analyzed(), "t")
    with pytest.raises(TransientError):
        await write_request(envelope, deps(desk, ledger))
    [event] = await write_request(envelope, deps(desk, ledger))
    assert len(desk.requests) == 1, "the interrupted attempt's request is found, not duplicated"
    assert len(desk.properties) == 1 and len(desk.comments) == 1
    assert event.issue_key == "HELP-1"


def test_long_transcripts_are_truncated_with_a_visible_marker() -> None:
    event = analyzed().model_copy(update={"transcript": "word " * 10_000})
    body = transcript_comment(event, max_chars=2_000)
    assert len(body) <= 2_000 + len("{quote}\n\n{quote}") and TRUNCATION_MARKER.strip() in body


def test_property_stays_within_jiras_limit() -> None:
    many = [Entity(type="other", value="x" * 500) for _ in range(200)]
    event = analyzed()
    event = event.model_copy(update={"analysis": event.analysis.model_copy(update={"entities": many})})
    assert len(json.dumps(call_property(event))) <= 32_768
