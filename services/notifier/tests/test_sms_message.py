"""GSM-7 vs UCS-2, segment counts, and fitting the template into the segment budget."""

from __future__ import annotations

import pytest

from voiceticket_notifier.message import DEFAULT_TEMPLATE, compose_sms
from voiceticket_notifier.sms_encoding import is_gsm7, measure


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("Grüße aus Köln, Straße 5" * 6, "GSM-7", 144, 1),  # umlauts and ß are GSM-7
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "{" + "a" * 10, "GSM-7", 164, 2),  # the escape pair moves whole to segment 2
        ("ł" * 70, "UCS-2", 70, 1),
        ("ł" * 71, "UCS-2", 71, 2),
        ("ł" * 134, "UCS-2", 134, 2),
        ("ł" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 72, 2),
        ("a" * 66 + "😀" * 34, "UCS-2", 134, 3),  # a surrogate pair never straddles segments
        ("“quoted”", "UCS-2", 8, 1),  # typographic quotes are not GSM-7
    ],
)
def test_measure(text: str, encoding: str, units: int, segments: int) -> None:
    size = measure(text)
    assert (size.encoding, size.units, size.segments) == (encoding, units, segments)


def test_gsm7_alphabet_edges() -> None:
    assert is_gsm7("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà^{}\\[~]|€")
    assert not is_gsm7("ç") and not is_gsm7("ê") and not is_gsm7("…") and not is_gsm7("–")


TEMPLATE = "Your request {request_key}: {summary}"


def test_a_short_message_is_left_alone() -> None:
    assert compose_sms(TEMPLATE, "HELP-7", "VPN down", 2) == "Your request HELP-7: VPN down"


def test_the_summary_is_shortened_at_a_word_and_the_key_kept() -> None:
    summary = "The VPN client disconnects every few minutes since the update " * 5
    body = compose_sms(TEMPLATE, "HELP-12345", summary, 1)
    assert body.startswith("Your request HELP-12345: The VPN client")
    assert body.endswith("...") and not body.endswith(" ...")
    assert measure(body).segments == 1 and len(body) > 140  # uses the budget, not far less


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_ucs2_summaries_fit_any_budget(max_segments: int) -> None:
    summary = "Drukarka w biurze nie działa 🙁 wydruk się zacina i świeci się czerwony błąd " * 3
    body = compose_sms(TEMPLATE, "HELP-42", summary.strip(), max_segments)
    assert "HELP-42" in body and measure(body).segments <= max_segments
    assert body != f"Your request HELP-42: {summary.strip()}"


def test_dropping_the_only_non_gsm_character_can_switch_to_gsm7_and_keep_more_text() -> None:
    summary = "Printer on floor 2 shows error 0x80 and the queue is stuck since Monday morning 🙁 " + "x" * 60
    body = compose_sms(TEMPLATE, "HELP-1", summary, 1)
    assert measure(body).encoding == "GSM-7" and measure(body).segments == 1
    assert "since Monday morning" in body


def test_no_half_emoji_or_dangling_joiner_at_the_cut() -> None:
    summary = "👩‍💻" * 60
    body = compose_sms(TEMPLATE, "HELP-1", summary, 1)
    assert measure(body).segments == 1
    stem = body.removesuffix("...")
    assert not stem.endswith("\u200d")
    assert body.encode("utf-16", "strict")  # no lone surrogate


def test_when_the_template_itself_is_too_long_the_key_still_goes_out() -> None:
    template = "x" * 400 + " {request_key} {summary}"
    body = compose_sms(template, "HELP-1", "VPN down", 2)
    assert body == DEFAULT_TEMPLATE.format(request_key="HELP-1")


@pytest.mark.parametrize("template", ["Hi {name}", "{summary:.10}", "no key: {summary}", "{"])
def test_a_template_config_api_would_refuse_falls_back_to_the_default(template: str) -> None:
    assert compose_sms(template, "HELP-1", "VPN down", 2) == DEFAULT_TEMPLATE.format(request_key="HELP-1")


def test_template_without_summary_is_rendered_as_is() -> None:
    assert compose_sms("Ticket {request_key} created.", "HELP-3", "ignored", 1) == "Ticket HELP-3 created."
