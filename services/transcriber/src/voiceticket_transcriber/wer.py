"""Word error rate: how far a transcript is from a reference, for the demo, the tests and the benchmark.

WER = (substitutions + deletions + insertions) / words of the reference, over words compared after
normalising both texts the same way: Unicode NFKC, lower case, digit groups joined ("44,817,723"
reads as 44817723, which is what the caller said) and punctuation dropped. It is the usual measure
of speech recognition (and can exceed 1 when the hypothesis adds many words).
"""

from __future__ import annotations

import re
import unicodedata

_DIGIT_GROUPS = re.compile(r"(?<=\d)[,.](?=\d)")
_NOT_WORD = re.compile(r"[^\w']+")


def words(text: str) -> list[str]:
    """The text as the words WER compares."""
    normal = _DIGIT_GROUPS.sub("", unicodedata.normalize("NFKC", text).casefold())
    return [w.strip("'") for w in _NOT_WORD.sub(" ", normal).split() if w.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edits per reference word turning ``reference`` into ``hypothesis`` (0.0: the same words)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else float(len(hyp))
    # Levenshtein distance over words, one row at a time.
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)
