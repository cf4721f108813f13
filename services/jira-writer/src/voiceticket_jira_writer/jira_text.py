"""Caller and model text made safe for Jira: no live wiki markup, no control or bidi characters.

Everything we write comes from a phone call or from a language model reading one, so it is data,
never formatting. Two steps, always in this order:

``clean_text`` / ``plain_line`` (every text we write, whatever the field's format)
    CRLF and lone CR become ``\\n``, as do U+0085, U+2028, U+2029, VT and FF; other C0/C1 controls
    (NUL, BEL, ESC, ...) and unpaired surrogates are removed, tabs kept; removed too are the bidi
    embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069, the "Trojan Source" set)
    and invisible characters that only hide text (U+200B zero-width space, U+2060-U+2064,
    U+FEFF, U+00AD soft hyphen, U+180E, U+206A-U+206F, U+FFF9-U+FFFB, tag characters
    U+E0000-U+E007F). Kept on purpose: U+200C/U+200D (ZWNJ/ZWJ, which Persian, Indic scripts and
    emoji sequences need) and the marks U+200E/U+200F/U+061C (LRM/RLM/ALM: they cannot reorder
    text the way overrides do, and right-to-left text needs them). ``plain_line`` then makes the
    text one line (every whitespace run one space).

``wiki_text`` (only text placed into a field Jira renders as wiki markup: the description, the
comment body)
    Jira's renderer honours a backslash before ``- # * _ + ? ^ ~ | % { } [ ] ( ) ! @`` and shows
    the character itself (``BackslashEscapeRendererComponent``; the Cloud wiki-to-ADF transformer
    ports the same list). So each of those is backslash-escaped, which defuses links and mentions
    ``[...]``, images ``!...!``, macros ``{quote}`` ``{code}`` ``{noformat}`` ``{color}``
    ``{panel}``, monospace ``{{...}}``, tables ``|``, list markers, rulers and dashes, emoticons
    ``(y)``, and the phrase marks ``*bold* _italic_ -strike- +ins+ ^sup^ ~sub~ ??cite??``. A
    phrase mark between two letters or digits cannot open or close a phrase (both renderers
    require a non-word character before the opening mark), so ``e-mail``, ``anna_berg``,
    ``555-0100`` and ``HELP-12`` stay as they are (the same holds for ``# @ %``). A backslash of
    the caller's is kept, unless it could start an escape or a ``\\\\`` line break (followed by
    a backslash or one of the characters above, or last): then it becomes U+FF3C FULLWIDTH
    REVERSE SOLIDUS. ``h1.``-``h6.`` and ``bq.`` at the start of a line (after spaces) cannot be
    escaped, since ``.`` is not escapable: a U+2060 WORD JOINER after the first letter breaks the
    keyword and stays invisible. Bare ``http://`` addresses and issue keys are still linked by
    Jira; they show their own text, so nothing is disguised.

The summary is a plain-text field (Jira never renders it), so it gets ``jira_summary`` (clean, one
line, at most 255 UTF-16 units, Jira's limit) and no backslashes, which would show. Issue
property values are JSON data that Jira does not render: they are cleaned, never escaped, so
automation and apps read the caller's words unchanged.
"""

from __future__ import annotations

import re

SUMMARY_LIMIT = 255  # Jira counts UTF-16 code units (Java chars)
TEXT_FIELD_LIMIT = 32_767  # the description and a comment
ELLIPSIS = "…"
WORD_JOINER = "\u2060"
FULLWIDTH_BACKSLASH = "\uff3c"
# What Jira's renderer lets a backslash escape (BackslashEscapeRendererComponent.ESCAPING_PATTERN).
ESCAPABLE = frozenset("-#*_+?^~|%{}[]()!@")
# Of those, the ones that mean nothing between two letters or digits.
_INTRA_WORD_SAFE = frozenset("*_+-^~?#@%")

_NEWLINES = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_REMOVED = re.compile(
    "["
    "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"  # C0/C1 controls but \t \n (and the newlines above)
    "\u00ad\u180e\u200b\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000e0000-\U000e007f"
    "\ud800-\udfff"  # unpaired surrogates (a JSON "\\ud83d" alone) cannot be sent as UTF-8
    "]"
)
_LEADING_KEYWORD = re.compile(r"^([ \t]*)([hH][1-6]\.|[bB][qQ]\.)", re.MULTILINE)


def clean_text(text: str) -> str:
    """``text`` without control, bidi-override or hiding characters; lines end in ``\\n``."""

    return _REMOVED.sub("", _NEWLINES.sub("\n", text))


def plain_line(text: str) -> str:
    """``clean_text`` on one line: every run of whitespace (newlines too) one space."""

    return " ".join(clean_text(text).split())


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` UTF-16 units, ``ellipsis`` marking a cut.

    Never splits a character, and never leaves a dangling escape backslash at the cut.
    """

    if utf16_len(text) <= limit:
        return text
    budget = limit - utf16_len(ellipsis)
    used = 0
    end = 0
    for end, char in enumerate(text):  # noqa: B007 - end is used after the loop
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
    return text[:end].rstrip("\\").rstrip() + ellipsis


def jira_summary(text: str, fallback: str = "Call to the support line") -> str:
    """The summary field: plain text on one line within Jira's 255 characters, never empty."""

    return fit(plain_line(text), SUMMARY_LIMIT) or fallback


def wiki_text(text: str) -> str:
    """``text`` (cleaned first) for a wiki-rendered field: it renders as the words themselves."""

    text = clean_text(text)
    out: list[str] = []
    last = len(text) - 1
    for i, char in enumerate(text):
        after = text[i + 1] if i < last else ""
        if char == "\\":
            risky = after in ESCAPABLE or after in ("\\", "")
            out.append(FULLWIDTH_BACKSLASH if risky else char)
        elif char in ESCAPABLE:
            before = text[i - 1] if i else ""
            if char in _INTRA_WORD_SAFE and before.isalnum() and after.isalnum():
                out.append(char)
            else:
                out.append("\\" + char)
        else:
            out.append(char)
    return _LEADING_KEYWORD.sub(
        lambda m: m.group(1) + m.group(2)[0] + WORD_JOINER + m.group(2)[1:], "".join(out)
    )


def wiki_line(text: str) -> str:
    """``wiki_text`` for a single-line spot, such as a list item."""

    return wiki_text(plain_line(text))
