"""Whether a repeat caller's new call is about the same matter as one of their open requests.

A local, deterministic, lexical matcher: how much of an open request's summary the new call
covers (its summary, description and transcript), in content words, with reference numbers (order
and invoice numbers, error codes: four characters or more, three of them digits) counting three
times; a room or flat number ("210", "4B") counts as a word, so the same place is not the same matter. The open request with
the highest coverage at or above the threshold is the match; none reaches it: a new request.

One of two matchers behind the :class:`RepeatMatcher` port (a line's ``repeat_matcher``); the
default is the embedding one (``embedding_matcher``), which scores better on pairs neither was
shaped on. This one needs no model: it answers in microseconds and is explainable (the shared
words). Its weakness is paraphrase without shared words ("can't log in" / "password rejected") or
in another language, and another matter that shares the words (the same flat, the same VPN): on
pairs written after it was fixed (bench/repeat_callers/fresh.jsonl) its precision and recall are
far below the labelled set's, cross-validated or not (``make bench-repeat-matcher``,
bench/results/repeat-matcher-2026-12-03.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_THRESHOLD = 0.6
"""Coverage at or above which an open request is the same matter: chosen on the labelled set
(bench/repeat_callers/labelled.jsonl) for precision first, since a false match hides a new matter
in a comment on another request, while a miss only makes the duplicate request of today; the
bench's ``choose_threshold`` is that rule, and cross-validates it."""
IDENTIFIER_WEIGHT = 3.0

_WORD = re.compile(r"[^\W_]+(?:[-/.][^\W_]+)*")
_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before
    being below between both but by can cannot could did didn do does doesn doing don down during
    each few for from further get gets getting got had has hasn have haven having he her here hers
    herself him himself his how i if in into is isn it its itself just let me more most my myself
    no nor not now of off on once only or other our ours out over own same she should so some still
    such than that the their theirs them then there these they this those through to too under
    until up very was wasn we were weren what when where which while who whom why will with won
    would you your yours yourself yourselves hi hello thanks thank please calling call called again
    regarding re yes okay ok one two back today yesterday tomorrow week day now new customer
    caller request ticket issue problem support help need needs want wants like know said says
    tell told number since already ever hey um uh well really just still
    der die das ein eine einen einem und oder ist sind nicht mit von für auf bei ich sie wir ihr es
    hallo danke bitte mein meine noch schon wieder
    """.split()
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "s")


@dataclass(frozen=True)
class Candidate:
    """One of the caller's open requests: its key and its summary as Jira has it now."""

    issue_key: str
    summary: str


@dataclass(frozen=True)
class Match:
    """The matcher's answer: the open request the call is about (None: a new matter) and why."""

    issue_key: str | None
    score: float
    """The best candidate's coverage (0-1), matched or not."""


def terms(text: str) -> set[str]:
    """The content words of ``text``: lower case, accents folded, stop words dropped, stemmed."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    found: set[str] = set()
    for word in _WORD.findall(folded):
        if any(c.isdigit() for c in word):
            if len(word) >= 3:  # an identifier: kept whole
                found.add(word)
            continue
        if len(word) < 3 or word in _STOPWORDS:
            continue
        found.add(_stem(word))
    return found


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _weight(term: str) -> float:
    reference = len(term) >= 4 and sum(c.isdigit() for c in term) >= 3
    return IDENTIFIER_WEIGHT if reference else 1.0


def coverage(earlier_summary: str, new_call: str) -> float:
    """How much of the earlier request's summary the new call covers (weighted; 0 without terms)."""
    earlier = terms(earlier_summary)
    if not earlier:
        return 0.0
    new = terms(new_call)
    total = sum(_weight(t) for t in earlier)
    return sum(_weight(t) for t in earlier & new) / total


def best_match(new_call: str, candidates: Sequence[Candidate], threshold: float = DEFAULT_THRESHOLD) -> Match:
    """The candidate the new call is about, or none; ties go to the earlier one in ``candidates``
    (the caller lists the most recent first)."""
    best: Candidate | None = None
    best_score = 0.0
    for candidate in candidates:
        score = coverage(candidate.summary, new_call)
        if score > best_score:
            best, best_score = candidate, score
    if best is None or best_score < threshold:
        return Match(None, round(best_score, 3))
    return Match(best.issue_key, round(best_score, 3))


class RepeatMatcher(Protocol):
    """The seam jira-writer decides "the same matter" through (per line: ``repeat_matcher``)."""

    async def match(self, new_call: str, candidates: Sequence[Candidate]) -> Match:
        """The candidate the new call is about, or none; ties go to the earlier in ``candidates``."""
        ...


@dataclass(frozen=True)
class LexicalMatcher:
    """:func:`best_match` behind the :class:`RepeatMatcher` port (microseconds: run inline)."""

    threshold: float = DEFAULT_THRESHOLD

    async def match(self, new_call: str, candidates: Sequence[Candidate]) -> Match:
        return best_match(new_call, candidates, self.threshold)
