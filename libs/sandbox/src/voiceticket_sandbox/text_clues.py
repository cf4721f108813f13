"""Cheap, deterministic clues from a call transcript: sentences, language, urgency, entities.

These stand in for what a language model would infer. They are keyword rules, good enough to give
the pipeline realistic, repeatable output in tests and demos, and nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)

_LANGUAGE_WORDS = {
    "en": set("the and is my i not with please you it to have".split()),
    "de": set(
        "der die das und ist nicht ich mein meine bitte ein eine mit für habe hallo danke "
        "funktioniert kann".split()
    ),
    "es": set("el la los las que y es mi por favor no con para hola gracias tengo una funciona".split()),
    "fr": set("le la les et est je mon ma ne pas avec pour bonjour merci une fonctionne ai vous".split()),
}

_URGENT = re.compile(
    r"\b(urgent\w*|emergency|asap|as soon as possible|immediately|critical|outage|down|"
    r"dringend\w*|sofort|notfall|ausgefallen|urgente|inmediatamente|urgence)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(angry|frustrat\w*|annoy\w*|terrible|awful|unacceptable|upset|disappoint\w*|worst|"
    r"ridiculous|furious|verärgert|ärgerlich|enttäuscht|molesto|horrible|inacceptable)\b",
    re.IGNORECASE,
)
_POSITIVE = re.compile(
    r"\b(thanks?|thank you|great|happy|appreciate\w*|wonderful|excellent|love|danke|gracias|merci)\b",
    re.IGNORECASE,
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d[\d\s().-]{6,18}\d|\(\d{3}\)\s*\d{3}[\s.-]\d{4}|\d{3}[\s.-]\d{3}[\s.-]\d{4})(?!\w)"
)
_ORDER = re.compile(
    r"(?i:order|bestellung|bestellnummer|pedido|commande)(?i:\s+(?:number|no\.?|id|nummer|número))?"
    r"(?i:\s+is)?\s*[:#]?\s*(?P<value>[A-Z]{0,4}-?\d[\dA-Z-]{2,})"
)
_ACCOUNT = re.compile(
    r"(?i:account|konto|kundennummer|cuenta|compte)(?i:\s+(?:number|no\.?|id|nummer|número))?"
    r"(?i:\s+is)?\s*[:#]?\s*(?P<value>\d[\d-]{3,}\d|[A-Z]{1,4}-?\d{3,})"
)
_DIGIT_RUN = re.compile(r"(?<![\w+-])\d{6,}(?![\w-])")
_INTRODUCTION = "my name is|this is|mein name ist|ich heiße|me llamo|je m'appelle"
"""Phrases a caller introduces themself with; none is a prefix of another, so their order is free."""
_PERSON = re.compile(
    rf"(?i:{_INTRODUCTION}|ich bin|mi nombre es)\s+(?P<value>[A-ZÄÖÜ][\w'-]+(?:\s+[A-ZÄÖÜ][\w'-]+)?)"
)
_SMALL_TALK = re.compile(
    r"^(hi|hello|hey|hallo|hola|bonjour|good (morning|afternoon|evening)|guten (morgen|tag|abend))\b"
    rf"|\b({_INTRODUCTION})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entity:
    """Something worth a field of its own: ``kind`` is account_number, order_number, email,
    phone_number or person_name."""

    kind: str
    value: str


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(text)]


def clean(text: str) -> str:
    return " ".join(text.split())


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", clean(text)) if s]


def summary_sentence(text: str) -> str:
    """The first sentence that says something: leading greetings and self-introductions are skipped
    (a ticket titled "Hello, my name is Anna." helps nobody)."""
    parts = sentences(text)
    for sentence in parts:
        if len(words(sentence)) > 8 or not _SMALL_TALK.search(sentence):
            return sentence
    return parts[0] if parts else ""


def guess_language(text: str) -> str:
    """ISO 639-1 code by counting common function words; English unless another clearly wins."""
    tokens = words(text)
    scores = {lang: sum(t in vocab for t in tokens) for lang, vocab in _LANGUAGE_WORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > scores["en"] else "en"


def is_urgent(text: str) -> bool:
    return _URGENT.search(text) is not None


def sentiment(text: str) -> str:
    """``negative``, ``neutral`` or ``positive``."""
    score = len(_POSITIVE.findall(text)) - 2 * len(_NEGATIVE.findall(text))
    return "negative" if score < 0 else "positive" if score > 0 else "neutral"


def entities(text: str) -> list[Entity]:
    """Emails, phone numbers, order and account numbers, and a self-introduced name, in that order."""
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, match: re.Match[str], group: str | int = 0) -> None:
        span = match.span(group)
        if any(start < span[1] and span[0] < end for start, end in taken):
            return
        taken.append(span)
        value = match.group(group).strip()
        if Entity(kind, value) not in found:
            found.append(Entity(kind, value))

    for m in _EMAIL.finditer(text):
        add("email", m)
    for m in _ORDER.finditer(text):
        add("order_number", m, "value")
    for m in _ACCOUNT.finditer(text):
        add("account_number", m, "value")
    for m in _PHONE.finditer(text):
        add("phone_number", m)
    for m in _DIGIT_RUN.finditer(text):
        add("account_number", m)
    for m in _PERSON.finditer(text):
        add("person_name", m, "value")
    return found
