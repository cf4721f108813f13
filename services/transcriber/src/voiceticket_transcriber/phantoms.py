"""Text speech-to-text models invent for silence, noise or music, and how to drop it.

Whisper-style models were trained on subtitled video, so silence often comes back as a
subtitle credit or a sign-off: "Thank you for watching.", "Subtitles by the Amara.org community",
"you". Two kinds are told apart:

- video phrases nobody says on a support line (watching, subscribing, subtitle credits): removed
  wherever they stand as a sentence of their own;
- short phrases a caller might say ("Thank you.", "Bye.", "you"): only when the whole transcript
  consists of them is it treated as empty, since then nothing actionable was said anyway.

Phrases are compared after lower-casing and stripping punctuation, so "Thanks for watching!" and
"thanks for watching" match alike. Lists cover English, German, Spanish and French, the languages
these artefacts are best documented in.
"""

from __future__ import annotations

import re
import unicodedata

VIDEO_PHRASES = frozenset(
    {
        "thank you for watching",
        "thanks for watching",
        "thank you so much for watching",
        "thank you very much for watching",
        "thank you for watching and see you next time",
        "please subscribe",
        "please like and subscribe",
        "like and subscribe",
        "dont forget to like and subscribe",
        "subscribe to my channel",
        "subtitles by the amara org community",
        "subtitles by the amaraorg community",
        "transcription by castingwords",
        "untertitel der amara org community",
        "untertitel im auftrag des zdf fur funk 2017",
        "untertitel im auftrag des zdf 2017",
        "untertitelung im auftrag des zdf 2021",
        "untertitel von stephanie geiges",
        "vielen dank furs zuschauen",
        "danke furs zuschauen",
        "subtitulos realizados por la comunidad de amara org",
        "gracias por ver el video",
        "gracias por ver",
        "sous titres realises para la communaute damara org",
        "sous titres realises par la communaute damara org",
        "merci davoir regarde",
        "merci davoir regarde cette video",
    }
)

FILLER_PHRASES = frozenset(
    {
        "you",
        "thank you",
        "thank you very much",
        "thank you so much",
        "thanks",
        "bye",
        "bye bye",
        "goodbye",
        "okay",
        "ok",
        "so",
        "oh",
        "um",
        "uh",
        "hmm",
        "mm",
        "music",
        "applause",
        "silence",
        "blank audio",
        "no speech",
        "inaudible",
        "danke",
        "vielen dank",
        "tschuss",
        "gracias",
        "adios",
        "merci",
        "au revoir",
    }
)

_FILLER_WORDS = frozenset(p for p in FILLER_PHRASES if " " not in p)

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_NOT_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, single spaces: "Thanks for watching!" →
    "thanks for watching"."""

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", plain.replace("'", "").replace("’", "")).split())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def is_filler(sentence: str) -> bool:
    """Nothing but filler: a known phrase, or filler words only ("you you you", "um, okay")."""

    plain = normalise(sentence)
    return not plain or plain in FILLER_PHRASES or all(w in _FILLER_WORDS for w in plain.split())


def without_phantoms(transcript: str) -> str:
    """``transcript`` without invented text; "" when nothing but invented text is left."""

    kept = [s for s in sentences(transcript) if normalise(s) not in VIDEO_PHRASES]
    if all(is_filler(s) for s in kept):
        return ""
    return " ".join(kept)
