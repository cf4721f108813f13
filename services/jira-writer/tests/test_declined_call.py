"""call.consent.declined: no ticket by default; with on_consent_declined "ticket", one request saying
the caller declined recording, with no recording or transcript; and the call property says consent."""

from __future__ import annotations

import pytest
from jira_writer_testkit import CALL_SID, CALLER, LINE, FakeServiceDesk, analyzed, deps, handle

from voiceticket_common.bus import TransientError
from voiceticket_common.events import ConsentDeclined, TicketCreated
from voiceticket_jira_writer.declined_call import DECLINED_SUMMARY
from voiceticket_jira_writer.request_content import PROPERTY_KEY


def declined(reason: str = "no_input", attempts: int = 2) -> ConsentDeclined:
    return ConsentDeclined(
        tenant_id="acme",
        call_sid=CALL_SID,
        line_number=LINE,
        caller_number=CALLER,
        consent="declined",
        reason=reason,
        attempts=attempts,
    )


async def test_by_default_a_declined_call_makes_no_ticket(ledger) -> None:
    desk = FakeServiceDesk()
    events = await handle(declined(), deps(desk, ledger))
    assert events == [] and desk.requests == [] and desk.field_lookups == 0


async def test_absent_recording_policy_does_not_make_declined_tickets(ledger) -> None:
    desk = FakeServiceDesk()
    assert await handle(declined(), deps(desk, ledger, ticket_on_absent_recording=True)) == []
    assert desk.requests == []


@pytest.mark.parametrize(("reason", "said"), [("no_input", "pressed no key"), ("invalid_key", "another key")])
async def test_with_ticket_one_request_saying_declined_without_transcript(ledger, reason, said) -> None:
    desk = FakeServiceDesk()
    [event] = await handle(declined(reason), deps(desk, ledger, on_consent_declined="ticket"))
    assert isinstance(event, TicketCreated) and event.summary == DECLINED_SUMMARY
    assert (event.request_type_id, event.language, event.consent) == ("40", "en", "declined")
    [draft] = desk.requests
    assert draft.fields["summary"] == "Call not recorded: caller declined recording"
    description = draft.fields["description"]
    assert "declined recording" in description and said in description and CALL_SID in description
    assert "no recording and no transcript" in description
    [(_, key, value)] = desk.properties
    assert key == PROPERTY_KEY
    assert (value["callSid"], value["consent"], value["consentDeclinedReason"]) == (
        CALL_SID,
        "declined",
        reason,
    )
    assert value["callerNumber"] == CALLER
    assert desk.comments == [] and desk.attachments == []


async def test_redelivery_leaves_exactly_one_declined_request(ledger) -> None:
    desk = FakeServiceDesk(fail_on="property")
    with pytest.raises(TransientError):
        await handle(declined(), deps(desk, ledger, on_consent_declined="ticket"))
    await handle(declined(), deps(desk, ledger, on_consent_declined="ticket"))
    [again] = await handle(declined(), deps(desk, ledger, on_consent_declined="ticket"))
    assert len(desk.requests) == 1 and len(desk.properties) == 1 and again.issue_key == "HELP-1"


@pytest.mark.parametrize(
    ("consent", "shown"), [(None, "notice"), ("notice", "notice"), ("pressed", "pressed")]
)
async def test_the_call_property_records_consent(ledger, consent, shown) -> None:
    desk = FakeServiceDesk()
    event = analyzed().model_copy(update={"consent": consent})
    await handle(event, deps(desk, ledger))
    [(_, _, value)] = desk.properties
    assert value["consent"] == shown
