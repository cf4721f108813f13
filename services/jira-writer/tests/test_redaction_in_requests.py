"""Redaction in what jira-writer writes (issue #10, point 2): no card data in the request's fields,
its internal comment or its issue property; the property records what was redacted (kinds and
counts); an event that does not say it was redacted is redacted here with the default policy."""

from __future__ import annotations

import json
import re

from jira_writer_testkit import FakeServiceDesk, analyzed, deps, handle

from voiceticket_common.events import CallAnalyzed, Entity
from voiceticket_common.redaction import WITHHELD_TRANSCRIPT
from voiceticket_jira_writer.request_content import call_property, description, transcript_comment

CARD = re.compile(r"4111|\b1111\b|\b123\b|03/27|DE89|one two three")
RAW = (
    "My card is 4111 1111 1111 1111, it expires 03/27, the CVV is 123. Refund to DE89 3704 0044 0532 0130 00."
)
REDACTED = (
    "My card is [redacted: payment card], it expires [redacted: card expiry date], the CVV is "
    "[redacted: card security code]. Refund to [redacted: IBAN]."
)
COUNTS = {"card_expiry": 1, "card_security_code": 1, "iban": 1, "payment_card": 1}


def with_texts(
    event: CallAnalyzed, transcript: str, text: str, redactions: dict[str, int] | None
) -> CallAnalyzed:
    analysis = event.analysis.model_copy(
        update={
            "summary": "Card payment",
            "description": text,
            "entities": [Entity(type="account_number", value=text[:200])],
        }  # fmt: skip
    )
    return event.model_copy(update={"transcript": transcript, "analysis": analysis, "redactions": redactions})


def written(desk: FakeServiceDesk) -> str:
    return json.dumps([desk.requests[0].fields, desk.properties, desk.comments], ensure_ascii=False)


async def test_redacted_texts_are_written_and_the_property_records_the_counts(ledger) -> None:  # type: ignore[no-untyped-def]
    desk = FakeServiceDesk()
    await handle(with_texts(analyzed(), REDACTED, REDACTED, COUNTS), deps(desk, ledger))
    assert not CARD.search(written(desk))
    [(_key, _prop, value)] = desk.properties
    assert value["redactions"] == COUNTS
    [(_ckey, body)] = desk.comments
    assert "\\[redacted: payment card\\]" in body  # wiki-escaped like any caller's words


async def test_an_event_not_marked_redacted_is_redacted_before_anything_is_written(ledger) -> None:  # type: ignore[no-untyped-def]
    # From an analyzer that did not redact yet (rolling deploy, or replayed from before it).
    desk = FakeServiceDesk()
    await handle(with_texts(analyzed(), RAW, RAW, None), deps(desk, ledger))
    assert not CARD.search(written(desk))
    [(_key, _prop, value)] = desk.properties
    # transcript, description and the entity value, each with the four kinds
    assert value["redactions"] == {kind: 3 for kind in COUNTS}
    assert "[redacted: payment card]" in value["entities"][0]["value"]


def test_nothing_redacted_is_recorded_as_empty_counts() -> None:
    event = analyzed().model_copy(update={"redactions": {}})
    assert call_property(event)["redactions"] == {}
    assert "Account 12345678." in transcript_comment(event, 30_000)


def test_a_text_that_cannot_be_redacted_is_withheld() -> None:
    huge = RAW + " " + "x" * 600_000
    event = with_texts(analyzed(), huge, RAW, None)
    comment = transcript_comment(event, 30_000)
    assert "4111" not in comment and "transcript withheld" in comment
    assert WITHHELD_TRANSCRIPT.startswith("[transcript withheld")
    assert not CARD.search(description(event))
