"""The transcription ``prompt``: the tenant's product names and terms, so they are spelled right.

Whisper reads only the last 224 tokens of a prompt (OpenAI's Whisper prompting guide), so the
prompt is bounded in characters (about four per token, with room to spare): terms are taken in
the tenant's order until the next would not fit, and none is cut in half. When a long recording
is sent in parts, the end of the previous part's text follows the terms, which keeps names and
sentences consistent across the cut (also from the prompting guide).
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_PROMPT_CHARS = 600
CONTEXT_CHARS = 200


def vocabulary_prompt(terms: Sequence[str], max_chars: int = MAX_PROMPT_CHARS) -> str | None:
    """ "Acme Router X2, FlexiBill, VoIP." from the terms that fit, or None without terms."""

    chosen: list[str] = []
    used = 0
    for term in terms:
        term = " ".join(str(term).split())
        if not term or term in chosen:
            continue
        cost = len(term) + 2  # the separator, or the final full stop
        if used + cost > max_chars:
            break
        chosen.append(term)
        used += cost
    return ", ".join(chosen) + "." if chosen else None


def prompt_for_part(vocabulary: str | None, previous_text: str) -> str | None:
    """The prompt for one part of a long recording: the terms, then the end of the previous part."""

    tail = previous_text[-CONTEXT_CHARS:].lstrip()
    if tail and len(previous_text) > CONTEXT_CHARS:
        tail = tail.partition(" ")[2] or tail  # start at a word boundary
    combined = " ".join(p for p in (vocabulary, tail) if p)
    return combined or None
