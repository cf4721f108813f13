"""call.analyzed -> exactly one request with its property, internal comment and (optionally) recording."""

from __future__ import annotations

import json
import logging

import pytest
from jira_writer_testkit import (
    ACCOUNT_SID,
    BASIC_FIELDS,
    CALL_SID,
    CALLER,
    PRIORITIES,
    RECORDING_SID,
    SITE,
    FakeRecordings,
    FakeServiceDesk,
    analyzed,
    deps,
    handle,
)

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import Entity, TicketCreated
from voiceticket_jira_writer.handlers import write_request
from voiceticket_jira_writer.ports import Customer, RequestTypeField, RequestTypeFields
from voiceticket_jira_writer.request_content import (
    PROPERTY_KEY,
    TRUNCATION_MARKER,
    call_property,
    transcript_comment,
)
from voiceticket_jira_writer.request_steps import recording_filename

WITH_PHONE_AND_PRIORITY = RequestTypeFields(
    fields=(
        *BASIC_FIELDS.fields,
        RequestTypeField("priority", "Priority", valid_values=PRIORITIES, schema_type="priority"),
        RequestTypeField("customfield_10050", "Caller phone"),
    ),
    can_raise_on_behalf_of=True,
)


async def test_one_request_with_fields_property_and_internal_comment(ledger) -> None:
    desk = FakeServiceDesk()
    [event] = await handle(analyzed(), deps(desk, ledger))
    assert isinstance(event, TicketCreated) and event.issue_key == "HELP-1"
    [draft] = desk.requests
    assert (draft.service_desk_id, draft.request_type_id) == ("4", "41")
    assert set(draft.fields) == {"summary", "description"}, "only fields the request type has"
    assert draft.fields["summary"] == "VPN down"
    assert "account number: 12345678" in draft.fields["description"]
    assert draft.raise_on_behalf_of is None
    assert CALLER not in json.dumps(draft.fields), "phone goes to a field only when configured"
    [(key, prop, value)] = desk.properties
    assert (key, prop) == ("HELP-1", PROPERTY_KEY)
    assert value["callSid"] == CALL_SID and value["durationSeconds"] == 42
    assert value["recordingSid"] == RECORDING_SID and value["callerNumber"] == CALLER
    [(ckey, body)] = desk.comments
    assert ckey == "HELP-1" and "The VPN is down. Account 12345678." in body
    assert desk.attachments == [], "the line does not attach recordings"


async def test_priority_and_phone_go_to_fields_the_request_type_has(ledger) -> None:
    desk = FakeServiceDesk(fields=WITH_PHONE_AND_PRIORITY)
    await write_request(analyzed(), deps(desk, ledger, phone_field_id="customfield_10050"))
    fields = desk.requests[0].fields
    assert fields["priority"] == {"id": "2"}, "High, by the name of the valid value"
    assert fields["customfield_10050"] == CALLER


async def test_phone_field_missing_from_the_request_type_goes_to_the_property_only(ledger, caplog) -> None:
    caplog.set_level(logging.WARNING)
    desk = FakeServiceDesk()
    await write_request(analyzed(), deps(desk, ledger, phone_field_id="customfield_10050"))
    assert "customfield_10050" not in desk.requests[0].fields
    assert desk.properties[0][2]["callerNumber"] == CALLER
    [warning] = [r for r in caplog.records if "phone field" in r.getMessage()]
    assert CALLER not in warning.getMessage() and CALLER not in json.dumps(warning.__dict__, default=str)


@pytest.mark.parametrize(
    ("entities", "customers", "expected"),
    [
        ([Entity(type="email", value="Anna.Berg@Example.com")],
         [Customer("qm:anna", "anna.berg@example.com")], "qm:anna"),
        ([Entity(type="email", value="anna.berg@example.com")],
         [Customer("qm:anna", "anna.berg@example.com"), Customer("qm:dup", "anna.berg@example.com")], None),
        ([Entity(type="email", value="anna.berg@example.com")],
         [Customer("qm:anna", "anna.berg@example.com.au")], None),
        ([Entity(type="email", value="anna.berg@example.com")],
         [Customer("qm:anna", "anna.berg@example.com", active=False)], None),
        ([Entity(type="email", value="a@example.com"), Entity(type="email", value="b@example.com")],
         [Customer("qm:a", "a@example.com")], None),
        ([], [Customer("qm:anna", "anna.berg@example.com")], None),
    ],
    ids=["one-match-any-case", "two-customers", "substring-only", "inactive", "two-emails", "no-email"],
)  # fmt: skip
async def test_raise_on_behalf_of_only_for_exactly_one_known_customer(
    ledger, entities, customers, expected
) -> None:
    desk = FakeServiceDesk(customers=customers)
    await write_request(analyzed(entities=entities), deps(desk, ledger))
    assert desk.requests[0].raise_on_behalf_of == expected


async def test_no_customer_lookup_when_the_request_type_cannot_raise_on_behalf(ledger) -> None:
    fields = RequestTypeFields(BASIC_FIELDS.fields, can_raise_on_behalf_of=False)
    desk = FakeServiceDesk(fields=fields, customers=[Customer("qm:anna", "anna@example.com")])
    event = analyzed(entities=[Entity(type="email", value="anna@example.com")])
    await write_request(event, deps(desk, ledger))
    assert desk.customer_queries == [] and desk.requests[0].raise_on_behalf_of is None


async def test_a_refused_customer_lookup_still_creates_the_request(ledger) -> None:
    desk = FakeServiceDesk(fail_on="customers", customers=[Customer("qm:anna", "anna@example.com")])
    event = analyzed(entities=[Entity(type="email", value="anna@example.com")])
    [created] = await write_request(event, deps(desk, ledger))
    assert created.issue_key == "HELP-1" and desk.requests[0].raise_on_behalf_of is None


async def test_a_required_field_without_default_fails_permanently_naming_it(ledger) -> None:
    fields = RequestTypeFields(
        (*BASIC_FIELDS.fields, RequestTypeField("customfield_10060", "Contract", True))
    )
    desk = FakeServiceDesk(fields=fields)
    with pytest.raises(PermanentError, match=r"'Contract' \(customfield_10060\)"):
        await write_request(analyzed(), deps(desk, ledger))
    assert desk.requests == []


async def test_a_create_refused_with_cached_fields_is_retried_once_with_fresh_ones(ledger) -> None:
    desk = FakeServiceDesk()
    handler_deps = deps(desk, ledger)
    await handler_deps.fields.get(SITE, "4", "41")  # warm the cache
    desk.fields = RequestTypeFields(BASIC_FIELDS.fields[:1])  # the admin removed the description
    desk.create_error = PermanentError("jira create request failed with HTTP 400: description is not valid")
    [created] = await write_request(analyzed(), handler_deps)
    assert created.issue_key == "HELP-1" and set(desk.requests[0].fields) == {"summary"}
    assert desk.field_lookups == 2


async def test_a_create_refused_with_unchanged_fields_is_permanent(ledger) -> None:
    desk = FakeServiceDesk()
    handler_deps = deps(desk, ledger)
    await handler_deps.fields.get(SITE, "4", "41")
    desk.create_error = PermanentError("jira create request failed with HTTP 400: Summary is too long")
    with pytest.raises(PermanentError, match="Summary is too long"):
        await write_request(analyzed(), handler_deps)
    assert desk.requests == []


async def test_redelivery_creates_no_second_request(ledger) -> None:
    desk = FakeServiceDesk()
    call = analyzed()
    first = await write_request(call, deps(desk, ledger))
    second = await write_request(call, deps(desk, ledger))
    assert len(desk.requests) == 1 and len(desk.comments) == 1
    assert [e.model_dump(exclude={"occurred_at"}) for e in first] == [
        e.model_dump(exclude={"occurred_at"}) for e in second
    ]


@pytest.mark.parametrize(
    "step", ["after-create", "property", "comment", "after-comment", "attach", "after-attach"]
)
async def test_crash_at_any_step_then_retry_yields_exactly_one_request(ledger, step) -> None:
    desk, recordings = FakeServiceDesk(fail_on=step), FakeRecordings()
    call = analyzed()
    with pytest.raises(TransientError):
        await write_request(call, deps(desk, ledger, recordings, attach_recording=True))
    [event] = await write_request(call, deps(desk, ledger, recordings, attach_recording=True))
    assert len(desk.requests) == 1, "the interrupted attempt's request is found, not duplicated"
    assert len(desk.properties) == 1 and len(desk.comments) == 1
    assert len(desk.attachments) == 1, "an interrupted attempt's attachment is found, not repeated"
    assert event.issue_key == "HELP-1"


async def test_the_recording_is_attached_once_under_our_file_name(ledger) -> None:
    desk, recordings = FakeServiceDesk(), FakeRecordings(audio=b"RIFF-audio-bytes")
    call = analyzed()
    await write_request(call, deps(desk, ledger, recordings, attach_recording=True))
    await write_request(call, deps(desk, ledger, recordings, attach_recording=True))
    assert desk.attachments == [("HELP-1", recording_filename(CALL_SID), b"RIFF-audio-bytes")]
    assert recordings.downloads == [(ACCOUNT_SID, RECORDING_SID)]


async def test_a_recording_over_the_limit_is_skipped_and_the_ticket_goes_on(ledger, caplog) -> None:
    desk, recordings = FakeServiceDesk(), FakeRecordings(too_large=True)
    call = analyzed()
    [event] = await write_request(call, deps(desk, ledger, recordings, attach_recording=True))
    await write_request(call, deps(desk, ledger, recordings, attach_recording=True))
    assert event.issue_key == "HELP-1" and desk.attachments == []
    assert len(recordings.downloads) == 1, "a refused recording is not downloaded again"
    assert any("recording not attached" in r.getMessage() for r in caplog.records)


async def test_no_twilio_account_means_no_attachment_but_a_ticket(ledger) -> None:
    desk = FakeServiceDesk()
    [event] = await write_request(analyzed(), deps(desk, ledger, None, attach_recording=True))
    assert event.issue_key == "HELP-1" and desk.attachments == []


def test_long_transcripts_are_truncated_with_a_visible_marker() -> None:
    event = analyzed().model_copy(update={"transcript": "word " * 10_000})
    body = transcript_comment(event, max_chars=2_000)
    assert len(body) <= 2_000 + len("{quote}\n\n{quote}") and TRUNCATION_MARKER.strip() in body


def test_property_stays_within_jiras_limit() -> None:
    many = [Entity(type="other", value="x" * 500) for _ in range(200)]
    event = analyzed(entities=many)
    assert len(json.dumps(call_property(event))) <= 32_768


def test_property_records_triage_and_usage_per_call() -> None:
    event = analyzed().model_copy(
        update={"degraded": True, "degraded_reason": "llm_unavailable", "prompt_tokens": 812,
                "completion_tokens": 95, "estimated_cost_usd": 0.0031}
    )  # fmt: skip
    value = call_property(event)
    assert value["needsTriage"] is True and value["triageReason"] == "llm_unavailable"
    assert value["usage"] == {"promptTokens": 812, "completionTokens": 95, "estimatedCostUsd": 0.0031}


async def test_the_ticket_event_carries_the_cleaned_summary_the_sms_will_quote(ledger) -> None:
    desk = FakeServiceDesk()
    hostile = "Printer\u202e on\x00 fire\r\nnow"
    [event] = await handle(analyzed(summary=hostile), deps(desk, ledger))
    assert isinstance(event, TicketCreated)
    assert event.summary == desk.requests[0].fields["summary"]
    assert not {"\u202e", "\x00", "\r", "\n"} & set(event.summary)
