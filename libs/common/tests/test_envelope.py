from __future__ import annotations

import json

import pytest

from voiceticket_common.bus import MalformedMessage, decode, encode, envelope_for
from voiceticket_common.events import CallAnalyzed


def test_round_trip_keeps_event_and_cloudevents_attributes(analyzed: CallAnalyzed) -> None:
    envelope = envelope_for(analyzed, source="analyzer")
    envelope.extra_headers["traceparent"] = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    key, value, headers = encode(envelope)

    names = dict(headers)
    assert key == analyzed.call_sid.encode()
    assert names["ce_type"] == b"io.voiceticket.call.analyzed.v1"
    assert names["ce_subject"] == analyzed.call_sid.encode()
    assert names["ce_specversion"] == b"1.0"
    assert names["content-type"] == b"application/json"
    assert names["traceparent"].startswith(b"00-aaaa")

    back = decode(value, headers)
    assert back.event == analyzed
    assert back.id == envelope.id
    assert back.extra_headers["traceparent"] == envelope.extra_headers["traceparent"]


def test_key_is_the_call_sid_never_a_phone_number(analyzed: CallAnalyzed) -> None:
    key, _, _ = encode(envelope_for(analyzed, "x"))
    assert analyzed.caller_number.encode() not in key


def test_event_id_is_stable_per_call_and_type(analyzed: CallAnalyzed) -> None:
    assert envelope_for(analyzed, "a").id == envelope_for(analyzed, "b").id
    other = analyzed.model_copy(update={"call_sid": "CA" + "9" * 32})
    assert envelope_for(other, "a").id != envelope_for(analyzed, "a").id


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{}", [], "missing ce_type"),
        (b"{}", [("ce_type", b"io.voiceticket.nope.v1"), ("ce_specversion", b"1.0")], "unknown event type"),
        (
            b"not json",
            [("ce_type", b"io.voiceticket.call.analyzed.v1"), ("ce_specversion", b"1.0")],
            "not JSON",
        ),
        (b"{}", [("ce_type", b"io.voiceticket.call.analyzed.v1"), ("ce_specversion", b"0.3")], "specversion"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(value: bytes, headers: list, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(value, headers)


def test_validation_errors_do_not_quote_personal_data(analyzed: CallAnalyzed) -> None:
    _, value, headers = encode(envelope_for(analyzed, "x"))
    data = json.loads(value)
    data["duration_seconds"] = "ring +14155550100"  # wrong type, and a phone number
    with pytest.raises(MalformedMessage) as info:
        decode(json.dumps(data).encode(), headers)
    assert "duration_seconds" in str(info.value)
    assert "+1415" not in str(info.value)


def test_a_consumer_ignores_fields_a_newer_producer_added_also_in_nested_parts(
    analyzed: CallAnalyzed,
) -> None:
    _, value, headers = encode(envelope_for(analyzed, "x"))
    newer = json.loads(value) | {"queue_position": 2}
    newer["analysis"]["urgency_score"] = 0.9
    newer["analysis"]["entities"] = [e | {"confidence": 1.0} for e in newer["analysis"]["entities"]]
    assert decode(json.dumps(newer).encode(), headers).event == analyzed


def test_producers_stay_strict(analyzed: CallAnalyzed) -> None:
    with pytest.raises(ValueError, match="queue_position"):
        CallAnalyzed(**analyzed.model_dump(), queue_position=2)
