"""call.recording.absent: no ticket by default; with the line's policy on, one "missed call" request."""

from __future__ import annotations

import pytest
from jira_writer_testkit import CALL_SID, CALLER, FakeServiceDesk, absent, deps, handle

from voiceticket_common.bus import TransientError
from voiceticket_common.events import TicketCreated
from voiceticket_jira_writer.missed_call import MISSED_CALL_SUMMARY
from voiceticket_jira_writer.request_content import PROPERTY_KEY


async def test_by_default_a_call_without_a_message_makes_no_ticket(ledger) -> None:
    desk = FakeServiceDesk()
    events = await handle(absent(), deps(desk, ledger))
    assert events == [] and desk.requests == [] and desk.field_lookups == 0


@pytest.mark.parametrize(("status", "code"), [("absent", "16101"), ("failed", None)])
async def test_with_the_policy_on_one_missed_call_request_without_comment(ledger, status, code) -> None:
    desk = FakeServiceDesk()
    [event] = await handle(absent(status, code), deps(desk, ledger, ticket_on_absent_recording=True))
    assert isinstance(event, TicketCreated) and event.summary == MISSED_CALL_SUMMARY
    assert (event.request_type_id, event.language) == ("40", "en"), "the line's default request type"
    [draft] = desk.requests
    assert draft.fields["summary"] == "Missed call: caller left no message"
    assert (
        CALL_SID in draft.fields["description"]
        and f"recording status: {status}" in draft.fields["description"]
    )
    [(_, key, value)] = desk.properties
    assert key == PROPERTY_KEY
    assert (value["callSid"], value["recordingStatus"], value["twilioErrorCode"]) == (CALL_SID, status, code)
    assert value["callerNumber"] == CALLER and value["missedCall"] is True
    assert desk.comments == [] and desk.attachments == []


async def test_the_callers_number_goes_to_the_phone_field_when_the_request_type_has_it(ledger) -> None:
    from jira_writer_testkit import BASIC_FIELDS

    from voiceticket_jira_writer.ports import RequestTypeField, RequestTypeFields

    fields = RequestTypeFields((*BASIC_FIELDS.fields, RequestTypeField("customfield_10050", "Phone")))
    desk = FakeServiceDesk(fields=fields)
    line = {"ticket_on_absent_recording": True, "phone_field_id": "customfield_10050"}
    await handle(absent(), deps(desk, ledger, **line))
    assert desk.requests[0].fields["customfield_10050"] == CALLER


@pytest.mark.parametrize("step", [None, "after-create", "property"])
async def test_redelivery_and_crashes_leave_exactly_one_missed_call_request(ledger, step) -> None:
    desk = FakeServiceDesk(fail_on=step)
    call = absent()
    if step:
        with pytest.raises(TransientError):
            await handle(call, deps(desk, ledger, ticket_on_absent_recording=True))
    await handle(call, deps(desk, ledger, ticket_on_absent_recording=True))
    [again] = await handle(call, deps(desk, ledger, ticket_on_absent_recording=True))
    assert len(desk.requests) == 1 and len(desk.properties) == 1 and again.issue_key == "HELP-1"
