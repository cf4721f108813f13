"""Hostile words from a call reach Jira as words: no live wiki markup, no control or bidi characters.

A corpus of hostile strings goes through the real builders (request fields, description, transcript
comment, issue property, missed call). The check below is an independent model of Jira's wiki
renderer: a backslash before one of ``- # * _ + ? ^ ~ | % { } [ ] ( ) ! @`` shows that character
(BackslashEscapeRendererComponent); anything else special left unescaped is a live construct.
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from jira_writer_testkit import BASIC_FIELDS, CALL_SID, FakeServiceDesk, absent, analyzed, deps, handle

from voiceticket_common.events import Entity
from voiceticket_jira_writer.field_values import request_field_values
from voiceticket_jira_writer.missed_call import missed_call_description, missed_call_property
from voiceticket_jira_writer.ports import RequestTypeField, RequestTypeFields
from voiceticket_jira_writer.request_content import (
    call_property,
    created_from,
    description,
    transcript_comment,
    wanted,
)

ESCAPABLE = set("-#*_+?^~|%{}[]()!@")
ALWAYS_LIVE = set("[]{}|!()")  # links, mentions, media, macros, tables, emoticons: anywhere
PHRASE = set("*_+-^~?#@%")  # harmless only between two letters or digits
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
HIDING = {"\u200b", "\u2060", "\ufeff", "\u00ad"}
WORD_JOINER = "\u2060"

CORPUS = [
    "[~accountid:5b10ac8d82e05b22cc7d4ef5] please call me back",
    "ping [~jsmith] and [~accountId:123|x]",
    "see [click here|http://evil.example/phish] now, or [http://evil.example]",
    "!http://evil.example/pixel.png! look and !pixel.png|thumbnail! and [^secret.txt]",
    "it ends {quote} now I am outside the quote {quote}",
    "{code:java}System.exit(0);{code} {noformat}raw{noformat} {NOFORMAT}",
    "{color:red}alarm{color} {panel:title=Admin|bgColor=#FF0000}pay here{panel}",
    "{{monospace}} and {{{nested}}} and {unbalanced {quote and }}} {",
    "||head||head||\n|cell|cell|",
    "*bold* _italic_ -strike- +ins+ ^sup^ ~sub~ ??cite?? *_+-nested-+_*",
    "h1. Heading\nh3.Another\n   bq. quoted\nBQ. upper\nh6. six",
    "----\n-----\n---\n--\n* item\n** nested\n# numbered\n- dash item\n*# mixed",
    "line one\\\\line two \\\\ and a \\ alone and \\[ pre-escaped and \\{quote\\} and trailing \\",
    "NUL\x00BEL\x07 ESC\x1b[31mred\x1b[0m DEL\x7f C1\x9b",
    "invoice \u202egnp.exe\u202c and \u2066isolate\u2069 \u202aem\u202b\u202d, kept: Grüße, 日本語, "
    "emoji 👩\u200d💻, مرحبا, שלום, می\u200cخواهم",
    "pass\u200bword \ufeffbom \u2060wj soft\u00adhyphen",
    "first\r\nsecond\rthird\u2028fourth",
    "(y) (n) (!) (on) :) ;) (*r)",
    "issue HELP-12, e-mail anna_berg@example.com, call 555-0100, path C:\\Users\\anna, 50% off, #1 @team",
    "half a surrogate \ud83d here",
    "[~accountid:x] {quote} !x! " * 3000,
]


def unescape(wiki: str) -> list[tuple[str, bool]]:
    """Jira's reading of ``wiki``: each character and whether a backslash escaped it."""

    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(wiki):
        if wiki[i] == "\\" and i + 1 < len(wiki) and wiki[i + 1] in ESCAPABLE:
            out.append((wiki[i + 1], True))
            i += 2
        else:
            out.append((wiki[i], False))
            i += 1
    return out


def live_markup(wiki: str) -> list[str]:
    """Every construct Jira would render in ``wiki`` (empty when it is plain words)."""

    found = []
    chars = unescape(wiki)
    for i, (char, escaped) in enumerate(chars):
        if escaped:
            continue
        before = chars[i - 1][0] if i else ""
        after = chars[i + 1][0] if i + 1 < len(chars) else ""
        if char in ALWAYS_LIVE:
            found.append(f"{char!r} at {i}")
        elif char in PHRASE and not (before.isalnum() and after.isalnum()):
            found.append(f"{char!r} at {i}")
        elif char == "\\" and after in ("\\", ""):
            found.append(f"line break or dangling escape at {i}")
    for line in wiki.split("\n"):
        if re.match(r"\s*(h[1-6]|bq)\.", line, re.IGNORECASE):
            found.append(f"block keyword: {line[:20]!r}")
    return found


def visible(wiki: str) -> str:
    """What a reader sees: the escapes gone, the invisible word joiner too."""

    shown = "".join(char for char, _ in unescape(wiki))
    return shown.replace(WORD_JOINER, "").replace("\uff3c", "\\")


def words(text: str) -> str:
    """The hostile text as it should read: no controls, bidi or hiding characters, spaces collapsed."""

    text = re.sub(r"\r\n|[\r\u2028]", "\n", text)
    kept = "".join(
        c
        for c in text
        if c in "\n\t" or not (unicodedata.category(c) in ("Cc", "Cs") or c in BIDI or c in HIDING)
    )
    return " ".join(kept.split())


def assert_clean(text: str, where: str, multiline: bool = True) -> None:
    bad = [
        f"U+{ord(c):04X}"
        for c in text
        if (unicodedata.category(c) in ("Cc", "Cs") and c not in ("\n" if multiline else ""))
        or c in BIDI
        or c in HIDING - {WORD_JOINER}
    ]
    assert not bad, f"{where} carries {bad[:5]}"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def user_part_of_description(desc: str) -> str:
    assert desc.endswith(created_from(CALL_SID)), "the recovery line stays last"
    return desc.split("\n\n----\n", 1)[0]


def quoted_transcript(comment: str) -> str:
    head, _, body = comment.partition("{quote}\n")
    assert f"call {CALL_SID}" in head, "the comment marker survives"
    assert body.endswith("\n{quote}") and body.count("{quote}") == 1, "only our quote block is live"
    return body[: -len("\n{quote}")]


@pytest.mark.parametrize("hostile", CORPUS, ids=range(len(CORPUS)))
def test_the_description_renders_the_models_words_and_nothing_else(hostile: str) -> None:
    desc = description(analyzed(description=hostile))
    assert_clean(desc, "description")
    assert utf16(desc) <= 32_767, "Jira's limit for a description"
    part = user_part_of_description(desc)
    assert live_markup(part) == []
    if len(hostile) < 10_000:
        assert words(visible(part)) == words(hostile)
    else:
        assert words(hostile).startswith(words(visible(part)).rstrip("…"))


@pytest.mark.parametrize("hostile", CORPUS, ids=range(len(CORPUS)))
def test_the_transcript_comment_quotes_the_callers_words_and_nothing_else(hostile: str) -> None:
    event = analyzed().model_copy(update={"transcript": hostile})
    comment = transcript_comment(event, max_chars=30_000)
    assert_clean(comment, "comment")
    assert utf16(comment) <= 30_000 + len("{quote}\n\n{quote}")
    quoted = quoted_transcript(comment)
    assert live_markup(quoted) == []
    shown = words(visible(quoted))
    if len(hostile) < 10_000:
        assert shown == words(hostile)
    else:
        assert "transcript truncated by Voice to Ticket" in shown
        assert words(hostile).startswith(shown.split(" [… transcript truncated")[0].rstrip("…").rstrip())


@pytest.mark.parametrize("hostile", CORPUS, ids=range(len(CORPUS)))
def test_entities_in_the_description_are_text_and_in_the_property_data(hostile: str) -> None:
    event = analyzed(entities=[Entity(type="customer_name", value=hostile)])
    desc = description(event)
    items = [line for line in desc.split("\n") if line.startswith("* ")]
    assert items, "the entity is listed"
    for item in items:
        assert live_markup(item[2:]) == []
    shown = words(visible(items[0][2:]))
    if len(hostile) < 10_000:
        assert shown == words("customer name: " + hostile)
    else:
        assert words("customer name: " + hostile).startswith(shown.rstrip("…"))
    prop = call_property(event)
    text = json.dumps(prop, ensure_ascii=False)
    assert_clean(text, "property")
    assert len(text) <= 32_768
    if len(hostile) >= 10_000:
        assert prop["entities"] == [], "an entity the property cannot hold is left out, as before"
        return
    [entity] = prop["entities"]
    # Property values are data, not rendered: cleaned, never backslash-escaped.
    assert words(entity["value"]) == words(hostile)
    assert entity["value"].count("\\") == hostile.count("\\"), "no escapes added"


# Summaries that Jira would refuse or that would mislead (events refuse a lone surrogate). Markup
# alone is no hazard in the summary, a plain-text field; with a control character it must stay.
SUMMARIES = [
    s for s in CORPUS[:-1] if "\ud83d" not in s and (words(s) != s or any(c in s for c in BIDI | HIDING))
]
SUMMARIES += [
    "😀" * 255,
    "\x00\x07\u202e",
    "two\nlines\r\nhere",
    "[~accountid:abc] {quote} !x.png! *bold* h1. -strike- C:\\new\x00\x1b",
]


@pytest.mark.parametrize("hostile", SUMMARIES, ids=range(len(SUMMARIES)))
def test_the_summary_is_one_clean_line_within_jiras_limit(hostile: str) -> None:
    fields = request_field_values(wanted(analyzed(summary=hostile[:255]), None), BASIC_FIELDS, "40")
    summary = fields["summary"]
    assert_clean(summary, "summary", multiline=False)
    assert summary and "\n" not in summary and utf16(summary) <= 255
    expected = words(hostile[:255])
    if expected and utf16(expected) <= 255:
        # A plain-text field: Jira shows it as typed, so no backslashes are added.
        assert summary == expected
    elif expected:
        assert expected.startswith(summary.rstrip("…"))


@pytest.mark.parametrize("hostile", CORPUS[:-1], ids=range(len(CORPUS) - 1))
def test_a_missed_call_says_twilios_words_as_text(hostile: str) -> None:
    event = absent(status=hostile, error_code=hostile)
    desc = missed_call_description(event)
    assert_clean(desc, "missed-call description")
    first = desc.split("\n")[0]
    inner = first.split("(recording status: ", 1)[1].rsplit(").", 1)[0]
    assert live_markup(inner) == []
    assert words(visible(inner)) == words(f"{hostile}, Twilio error {hostile}")
    assert_clean(json.dumps(missed_call_property(event), ensure_ascii=False), "missed-call property")


async def test_through_the_handler_nothing_hostile_reaches_the_desk(ledger) -> None:
    hostile = "[~accountid:abc] {quote}\r\n!http://evil.example/x.png! \u202eevil\x00"
    fields = RequestTypeFields((*BASIC_FIELDS.fields, RequestTypeField("customfield_10050", "Phone")))
    desk = FakeServiceDesk(fields=fields)
    event = analyzed(
        summary=hostile, description=hostile, entities=[Entity(type="email", value=hostile)]
    ).model_copy(update={"transcript": hostile, "caller_number": "+14155550100\u202e\x00"})
    await handle(event, deps(desk, ledger, phone_field_id="customfield_10050"))
    [draft] = desk.requests
    assert draft.fields["summary"] == "[~accountid:abc] {quote} !http://evil.example/x.png! evil"
    assert draft.fields["customfield_10050"] == "+14155550100"
    assert live_markup(user_part_of_description(draft.fields["description"])) == []
    [(_, body)] = desk.comments
    assert live_markup(quoted_transcript(body)) == []
    for text in (draft.fields["description"], body, json.dumps(desk.properties[0][2], ensure_ascii=False)):
        assert_clean(text, "what reached the desk")
    assert "\n" in visible(quoted_transcript(body)), "CRLF becomes a newline, not lost"
