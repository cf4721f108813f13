"""Whether a repeat caller's new call is about the same matter, by sentence embeddings.

The new call's text (the analyzer's summary and description, then the transcript: what the
lexical matcher reads, ``repeat_callers.new_call_text``; cut to the model's 256 tokens, so the
summary always counts) and each open request's summary are embedded with all-MiniLM-L6-v2
(:mod:`.minilm`, numpy, no PyTorch); the cosine similarity of the two unit vectors is the score.
The open request with the highest score at or above the threshold is the match; none reaches it:
a new request.

Why: it sees a paraphrase with no shared word ("prompts for credentials" / "asking for
password") and weighs the matter rather than the place, where the lexical matcher counts shared
words. Measured as the lexical one is (``make bench-repeat-matcher``,
bench/results/repeat-matcher-2026-12-03.md): better on the fresh pairs in precision and recall.
Its weaknesses: it is an English model (a follow-up in German or French scores low) and two
problems in the same flat or office still score fairly high. The cost: the 83 MB wheel, the
model's memory once loaded, and tens to hundreds of milliseconds of CPU per comparison, run in a
thread so the event loop goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .minilm import MiniLm, shared_model
from .repeat_matcher import Candidate, Match

DEFAULT_EMBEDDING_THRESHOLD = 0.65
"""Cosine similarity at or above which an open request is the same matter: chosen on the labelled
set (bench/repeat_callers/labelled.jsonl) by the rule the lexical threshold was chosen by (the
bench's ``choose_threshold``: the highest precision, then the highest recall, then the lowest)."""


@dataclass(frozen=True)
class EmbeddingMatcher:
    """The :class:`~.repeat_matcher.RepeatMatcher` by all-MiniLM-L6-v2's cosine similarity.

    The model is loaded on the first match (``model``: the process's shared one), not before."""

    threshold: float = DEFAULT_EMBEDDING_THRESHOLD
    model: Callable[[], MiniLm] = field(default=shared_model, repr=False)

    def scores(self, new_call: str, summaries: Sequence[str]) -> list[float]:
        """The cosine similarity of the new call with each summary (blocking: CPU-bound)."""
        if not summaries:
            return []
        vectors = self.model().embed([new_call, *summaries])
        return [float(s) for s in vectors[1:] @ vectors[0]]

    def match_now(self, new_call: str, candidates: Sequence[Candidate]) -> Match:
        """:meth:`match`, in the calling thread."""
        scores = self.scores(new_call, [c.summary for c in candidates])
        if not scores:
            return Match(None, 0.0)
        best = int(np.argmax(scores))  # the first of equal scores: the most recent candidate
        score = scores[best]
        if score < self.threshold:
            return Match(None, round(score, 3))
        return Match(candidates[best].issue_key, round(score, 3))

    async def match(self, new_call: str, candidates: Sequence[Candidate]) -> Match:
        if not candidates:
            return Match(None, 0.0)
        return await asyncio.to_thread(self.match_now, new_call, candidates)
