"""Repeat callers: a caller's new call about the same matter as their open request goes onto it.

On a line with ``repeat_callers`` ``comment``, before a request is created: the caller's requests
of the last ``repeat_window_hours`` (the caller index: a keyed hash of the number, never the number)
are asked of Jira, the source of truth for "still open" (status category not done); calls whose
data was erased are dropped from the index; the line's matcher (``repeat_matcher``: embedding or
lexical) compares the new call with the open requests' summaries as Jira has them now. The decision
is recorded in the call's ledger row before anything is written, so a redelivery follows it:
``existing`` (the comment goes onto that request, found again by its marker) or ``new`` (the
request is created as always).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.runtime_views import (
    REPEAT_CALLERS_COMMENT,
    REPEAT_MATCHER_EMBEDDING,
    REPEAT_MATCHER_LEXICAL,
    JiraWriterLine,
)

from .embedding_matcher import EmbeddingMatcher
from .jira_text import TEXT_FIELD_LIMIT, fit, utf16_len, wiki_line
from .ports import CallerIndex, CreatedRequest, ErasedCalls, JiraSite, LedgerEntry, ServiceDesk
from .repeat_matcher import Candidate, LexicalMatcher, RepeatMatcher
from .request_content import description, redacted, transcript_comment

log = logging.getLogger(__name__)

CALLER_HASH_PURPOSE = b"voiceticket jira-writer repeat caller v1"
"""What jira-writer's caller hashes (its index of requests by caller) are keyed for; fixed: the rows
stored under it would stop matching."""

_IDENTIFIABLE = re.compile(r"^\+[1-9][0-9]{6,14}$")
"""A caller identified by an E.164 number; a withheld (``anonymous``) or SIP caller is never matched."""


@dataclass(frozen=True)
class RepeatCallers:
    """What finding a repeat caller's open request takes."""

    index: CallerIndex
    hasher: CallerHasher
    erased: ErasedCalls
    matchers: Mapping[str, RepeatMatcher] = field(default_factory=lambda: default_matchers())
    """By the line's ``repeat_matcher``: ``embedding`` and ``lexical``."""

    def matcher(self, line: JiraWriterLine) -> RepeatMatcher:
        """The line's matcher; a name this jira-writer does not know (a newer config-api): lexical."""
        return self.matchers.get(line.repeat_matcher) or self.matchers[REPEAT_MATCHER_LEXICAL]


def default_matchers(
    lexical: LexicalMatcher | None = None, embedding: EmbeddingMatcher | None = None
) -> dict[str, RepeatMatcher]:
    return {
        REPEAT_MATCHER_LEXICAL: lexical or LexicalMatcher(),
        REPEAT_MATCHER_EMBEDDING: embedding or EmbeddingMatcher(),
    }


def repeat_enabled(line: JiraWriterLine, event: CallAnalyzed, repeat: RepeatCallers | None) -> bool:
    return (
        repeat is not None
        and line.repeat_callers == REPEAT_CALLERS_COMMENT
        and bool(_IDENTIFIABLE.match(event.caller_number))
    )


def new_call_text(event: CallAnalyzed) -> str:
    """What the matcher compares with an open request's summary: the analysis and the transcript."""
    return "\n".join((event.analysis.summary, event.analysis.description, event.transcript))


async def ensure_repeat_decision(
    repeat: RepeatCallers | None,
    desk: ServiceDesk,
    site: JiraSite,
    entry: LedgerEntry,
    event: CallAnalyzed,
    line: JiraWriterLine,
) -> CreatedRequest | None:
    """The caller's open request this call goes onto, or None (a new request is created).

    A decision taken is followed whatever the line says now (it may have been switched since)."""
    if entry.repeat_decision == "existing" and entry.issue_key and entry.issue_id:
        return CreatedRequest(issue_id=entry.issue_id, issue_key=entry.issue_key)
    if repeat is None or not repeat_enabled(line, event, repeat):
        return None
    if entry.repeat_decision is not None or entry.issue_key is not None or entry.create_settles_at:
        return None  # decided before, or a create already started: the request is this call's own
    caller = repeat.hasher.hash(event.tenant_id, event.caller_number)
    since = repeat.index.now() - timedelta(hours=line.repeat_window_hours)
    open_requests: dict[str, CreatedRequest] = {}
    candidates: list[Candidate] = []
    for earlier in await repeat.index.recent_requests(event.tenant_id, caller, since):
        if earlier.call_sid == event.call_sid or earlier.issue_key in open_requests:
            continue
        if await repeat.erased.erased(event.tenant_id, earlier.call_sid):
            await repeat.index.forget_call(event.tenant_id, earlier.call_sid)
            continue
        status = await desk.request_status(site, earlier.issue_key)
        if status is not None and not status.done:
            open_requests[earlier.issue_key] = CreatedRequest(earlier.issue_id, earlier.issue_key)
            candidates.append(Candidate(earlier.issue_key, status.summary))
    match = await repeat.matcher(line).match(new_call_text(event), candidates)
    existing = open_requests.get(match.issue_key) if match.issue_key else None
    log.info(
        "repeat caller checked",
        extra={
            "open_requests": len(candidates),
            "matcher": line.repeat_matcher,
            "score": match.score,
            "issue_key": match.issue_key,
        },
    )
    await repeat.index.decide_repeat(entry, existing)
    return existing


async def remember_request(
    repeat: RepeatCallers, entry: LedgerEntry, event: CallAnalyzed, request: CreatedRequest
) -> None:
    """Note the new request under the caller's hash, for their next call."""
    caller = repeat.hasher.hash(event.tenant_id, event.caller_number)
    await repeat.index.remember_request(entry, caller, request)


def repeat_call_comment(event: CallAnalyzed, max_chars: int) -> str:
    """Wiki markup: the repeat call's analysis (as a new request's description has it), then its
    transcript as the first call's comment has it (with the call's marker, for recovery)."""
    summary = wiki_line(redacted(event).analysis.summary)
    head = f"*Repeat call from the same caller, added to this request:* {summary}\n\n"
    analysis = fit(description(event), TEXT_FIELD_LIMIT // 2)
    first = head + analysis + "\n\n"
    return first + transcript_comment(event, min(max_chars, TEXT_FIELD_LIMIT) - utf16_len(first))
