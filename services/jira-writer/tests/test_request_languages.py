"""The internal comment keeps the caller's words in their language and names it; ticket.created names
the language the request is written in (the SMS follows it)."""

from __future__ import annotations

from jira_writer_testkit import analyzed

from voiceticket_jira_writer.request_content import transcript_comment


def test_a_translated_request_names_the_spoken_and_the_written_language_in_the_comment() -> None:
    event = analyzed(language="de").model_copy(
        update={"transcript": "Mein VPN geht nicht.", "ticket_language": "en"}
    )
    comment = transcript_comment(event, 10_000)
    assert "spoken language: de; request written in en" in comment.splitlines()[0]
    assert "Mein VPN geht nicht." in comment  # the original-language transcript


def test_an_untranslated_request_names_only_the_spoken_language() -> None:
    for written in ("de", None):  # None: an analyzer before ticket_language
        comment = transcript_comment(
            analyzed(language="de").model_copy(update={"ticket_language": written}), 10_000
        )
        assert "spoken language: de)" in comment.splitlines()[0] and "written in" not in comment
